// Command benchtool supports scripts/bench.sh: it seeds a caddy-kratos
// store directly through sessionstore (far faster than the HTTP API; into
// PostgreSQL through the engine's bulk import, CopyFrom) and drives
// password logins.
//
//	benchtool seed  -dir <storage> | -dsn postgres://… [-schema S]  -identities N -sessions M -sample W -public-url U -out <dir>
//	benchtool login -url <public url> -email E -password P -workers N -d 20s
//	benchtool warm  -url <whoami url> -file warm.txt -workers N
//
// seed writes into -out: cookies.txt (a Cookie header value per line for W
// sessions drawn uniformly from all M), warm.txt (a session of every
// identity the sample does not cover, then the sample three times: it
// loads every identity and leaves the sample in the session cache), tokens.txt (the sample's session tokens), whoami.json (the
// whoami body of one seeded session) and login.txt (email and password of
// a seeded identity). The store must not be open elsewhere.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool seed|login|register|warm [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "seed":
		err = seed(os.Args[2:])
	case "login":
		err = login(os.Args[2:])
	case "register":
		err = register(os.Args[2:])
	case "warm":
		err = warm(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

// BenchPassword is the password of every seeded identity.
const BenchPassword = "Bench-Horse-Battery-42!"

func email(i int) string { return fmt.Sprintf("user%07d@bench.example.com", i) }

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// token is a session token of Kratos's shape from a fast, seeded PRNG
// (benchmark data, not secrets).
func token(r *rand.Rand) string {
	b := make([]byte, 0, 39)
	b = append(b, "ory_st_"...)
	for range 32 {
		b = append(b, alnum[r.IntN(len(alnum))])
	}
	return string(b)
}

func uuidFrom(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func seed(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	dir := fs.String("dir", "", "Badger storage directory (created); or -dsn")
	dsn := fs.String("dsn", "", "PostgreSQL DSN to seed instead of a Badger directory (postgres://…)")
	schema := fs.String("schema", "", "PostgreSQL schema (with -dsn; default: the server's search_path)")
	nIdent := fs.Int("identities", 1000, "identities to create")
	nSess := fs.Int("sessions", 1000, "sessions to create (spread over the identities)")
	sample := fs.Int("sample", 1000, "sessions written to cookies.txt / tokens.txt")
	publicURL := fs.String("public-url", "http://127.0.0.1:9004/", "public_url of the server (cookie sealing, whoami body)")
	out := fs.String("out", ".", "output directory")
	cost := fs.Int("bcrypt-cost", 12, "bcrypt cost of the seeded password hash")
	lifespan := fs.Duration("lifespan", 24*time.Hour, "session lifetime")
	workers := fs.Int("workers", 4*runtime.NumCPU(), "concurrent writers")
	_ = fs.Parse(args)
	if (*dir == "") == (*dsn == "") {
		return fmt.Errorf("one of -dir (Badger) or -dsn (PostgreSQL) is required")
	}
	*sample = min(*sample, *nSess)
	// Interrupted, the seed stops between statements instead of leaving a
	// transaction half sent.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var st sessionstore.Storage
	var err error
	if *dsn != "" {
		// Migrated like a gateway would; the caches are useless here.
		st, err = postgres.Open(ctx, *dsn, postgres.Options{Schema: *schema, MaxConns: int32(max(4, *workers)),
			SessionCacheSize: -1})
	} else {
		st, err = sessionstore.Open(*dir, sessionstore.Options{NoSync: true, SessionCacheSize: -1})
	}
	if err != nil {
		return err
	}
	defer st.Close()
	// The engine generates and persists the cookie secret the server will
	// find, and seals the cookies.
	e, err := flows.New(flows.Config{
		SiteOptions:     flows.SiteOptions{PublicURL: *publicURL},
		BrowserOptions:  flows.BrowserOptions{Dev: true},
		PasswordOptions: flows.PasswordOptions{BcryptCost: *cost},
	}, st, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	hash, err := bcrypt.GenerateFromPassword([]byte(BenchPassword), *cost)
	if err != nil {
		return err
	}
	cfg, _ := json.Marshal(map[string]string{"hashed_password": string(hash)})

	ids := make([]string, *nIdent)
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	for i := range ids {
		ids[i] = uuidFrom(rng)
	}
	now := time.Now().UTC()
	identity := func(i int) *sessionstore.Identity {
		em := email(i)
		r := rand.New(rand.NewChaCha8([32]byte{2, byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}))
		traits, _ := json.Marshal(map[string]any{"email": em, "name": map[string]string{"first": "Bench", "last": fmt.Sprintf("User %d", i)}})
		return &sessionstore.Identity{
			ID: ids[i], SchemaID: "default", State: "active", StateChangedAt: now, Traits: traits,
			VerifiableAddresses: []sessionstore.VerifiableAddress{{ID: uuidFrom(r), Value: em, Via: "email", Status: "pending", CreatedAt: now, UpdatedAt: now}},
			RecoveryAddresses:   []sessionstore.RecoveryAddress{{ID: uuidFrom(r), Value: em, Via: "email", CreatedAt: now, UpdatedAt: now}},
			CreatedAt:           now, UpdatedAt: now,
			Credentials: map[string]sessionstore.Credential{"password": {Type: "password", Identifiers: []string{em},
				Config: cfg, Version: 0, CreatedAt: now, UpdatedAt: now}},
		}
	}
	pg, bulk := st.(*postgres.Store)
	if bulk {
		err = copyItems(ctx, pg, *nIdent, *workers, "identities", func(i int) *sessionstore.Item {
			return &sessionstore.Item{Kind: sessionstore.ItemIdentity, Identity: identity(i)}
		})
	} else {
		err = parallel(*nIdent, *workers, func(i int) error { return st.CreateIdentity(ctx, identity(i)) })
	}
	if err != nil {
		return fmt.Errorf("identities: %w", err)
	}
	identDone := time.Since(start)
	fmt.Printf("seed: %d identities in %v\n", *nIdent, identDone.Round(time.Millisecond))

	// Which sessions go to the output files: a uniform sample, and for the
	// warm-up one session per identity (session i belongs to identity
	// i % identities, so sessions 0..identities-1 cover them all).
	pick := rand.New(rand.NewChaCha8([32]byte{3}))
	inSample := make(map[int]bool, *sample)
	for len(inSample) < *sample {
		inSample[pick.IntN(*nSess)] = true
	}
	sampled := make([]int, 0, *sample)
	for i := range inSample {
		sampled = append(sampled, i)
	}
	slices.Sort(sampled)
	tokens := make(map[int]string, *sample+*nIdent)
	// Every session below nIdent is the first of its identity.
	var mu sync.Mutex
	ip, ua := "127.0.0.1:40000", "Mozilla/5.0 (X11; Linux x86_64) bench"
	session := func(i int) *sessionstore.Session {
		r := rand.New(rand.NewChaCha8([32]byte{4, byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)}))
		tok := token(r)
		if inSample[i] || i < *nIdent {
			mu.Lock()
			tokens[i] = tok
			mu.Unlock()
		}
		h := sha256Sum(tok)
		issued := now.Add(-time.Duration(r.IntN(3600)) * time.Second)
		return &sessionstore.Session{
			ID: uuidFrom(r), IdentityID: ids[i%*nIdent], Active: true,
			ExpiresAt: issued.Add(*lifespan), AuthenticatedAt: issued, IssuedAt: issued, AAL: "aal1",
			AuthenticationMethods: []sessionstore.AuthMethod{{Method: "password", AAL: "aal1", CompletedAt: issued}},
			Devices:               []sessionstore.Device{{ID: uuidFrom(r), IPAddress: &ip, UserAgent: &ua}},
			TokenHash:             h[:],
		}
	}
	sessStart := time.Now()
	if bulk {
		err = copyItems(ctx, pg, *nSess, *workers, "sessions", func(i int) *sessionstore.Item {
			return &sessionstore.Item{Kind: sessionstore.ItemSession, Session: session(i)}
		})
	} else {
		var done atomic.Int64
		err = parallel(*nSess, *workers, func(i int) error {
			err := st.CreateSession(ctx, session(i))
			if n := done.Add(1); n%100000 == 0 {
				fmt.Printf("seed: %d sessions (%v)\n", n, time.Since(sessStart).Round(time.Second))
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	fmt.Printf("seed: %d sessions in %v (%.0f/s)\n", *nSess, time.Since(sessStart).Round(time.Millisecond),
		float64(*nSess)/time.Since(sessStart).Seconds())

	cookie := func(i int) string {
		return e.CookieName() + "=" + e.SessionCookieValue(tokens[i], now.Add(*lifespan))
	}
	var cookies, toks, warm []string
	for _, i := range sampled {
		cookies = append(cookies, cookie(i))
		toks = append(toks, tokens[i])
	}
	// Identities without a sampled session get one pass with another of
	// their sessions (they pollute the session cache: the three passes
	// over the sample that follow displace them).
	covered := make([]bool, *nIdent)
	for _, i := range sampled {
		covered[i%*nIdent] = true
	}
	for i := 0; i < min(*nIdent, *nSess); i++ {
		if !covered[i] {
			warm = append(warm, cookie(i))
		}
	}
	for range 3 {
		warm = append(warm, cookies...)
	}
	for name, lines := range map[string][]string{"cookies.txt": cookies, "tokens.txt": toks, "warm.txt": warm,
		"login.txt": {email(0), BenchPassword}} {
		if err := os.WriteFile(filepath.Join(*out, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return err
		}
	}
	// The whoami body of a seeded session, for a static site of equal size.
	req := httptest.NewRequest("GET", strings.TrimSuffix(*publicURL, "/")+"/sessions/whoami", nil)
	req.Header.Set("Cookie", cookies[0])
	req.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		return fmt.Errorf("whoami of a seeded session: %d %s", w.Code, w.Body)
	}
	if err := os.WriteFile(filepath.Join(*out, "whoami.json"), w.Body.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("seed: done in %v; whoami body %d bytes\n", time.Since(start).Round(time.Millisecond), w.Body.Len())
	return nil
}

// copyItems writes items item(0..n-1) into a PostgreSQL store through its
// bulk import (CopyFrom: many rows per transaction, one statement per row,
// no read-before-write) instead of CreateIdentity and CreateSession, which
// each take a transaction of several round trips and a commit: on the
// 2-core bench machine sessions went in at 11 400/s instead of 3 000/s,
// a million in 1.5 minutes instead of 5.5. The indices are split into contiguous shards copied
// concurrently, so the database and this process both keep busy while the
// other answers. Every row is new, so none of CopyFrom's overwrites apply.
func copyItems(ctx context.Context, st *postgres.Store, n, workers int, what string, item func(int) *sessionstore.Item) error {
	shards := max(1, min(workers, n/copyShardMin))
	start := time.Now()
	var done atomic.Int64
	return parallel(shards, shards, func(s int) error {
		src := genExporter{from: s * n / shards, to: (s + 1) * n / shards, item: item}
		var last int64
		_, err := st.CopyFrom(ctx, src, postgres.CopyOptions{Progress: func(r postgres.CopyReport) {
			cur := int64(r.Identities + r.Sessions)
			delta := cur - last
			last = cur
			if after := done.Add(delta); after/100000 > (after-delta)/100000 {
				fmt.Printf("seed: %d %s (%v)\n", after/100000*100000, what, time.Since(start).Round(time.Second))
			}
		}})
		if err != nil {
			return fmt.Errorf("shard %d (items %d to %d): %w", s, src.from, src.to-1, err)
		}
		return nil
	})
}

// copyShardMin keeps small seeds in one shard: each shard's CopyFrom ends
// with a verification pass and a cache flush of its own.
const copyShardMin = 10000

// genExporter hands CopyFrom the items item(from..to-1), built on the fly
// (a million sessions are never all in memory).
type genExporter struct {
	from, to int
	item     func(int) *sessionstore.Item
}

func (g genExporter) Export(ctx context.Context, fn func(*sessionstore.Item) error) error {
	for i := g.from; i < g.to; i++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("generate item %d: %w", i, err)
		}
		if err := fn(g.item(i)); err != nil {
			return err
		}
	}
	return nil
}

// parallel runs f(0..n-1) on workers goroutines and returns the first error.
func parallel(n, workers int, f func(int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// register runs native one-step password registrations (create flow,
// submit with new traits) in a loop and reports sign-ups per second and
// latency percentiles. Each sign-up hashes its password and writes an
// identity and a session: the storage engine's write path.
func register(args []string) error {
	fs := flag.NewFlagSet("register", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:9004", "public API base URL")
	workers := fs.Int("workers", 4, "concurrent clients")
	dur := fs.Duration("d", 20*time.Second, "duration")
	prefix := fs.String("prefix", "reg", "local part prefix of the new addresses")
	_ = fs.Parse(args)
	*base = strings.TrimSuffix(*base, "/")
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *workers}}
	var seq atomic.Int64
	start := time.Now().UnixNano()
	return loop("registrations", *workers, *dur, func() error {
		return registerOnce(hc, *base, fmt.Sprintf("%s-%d-%d@bench.example.com", *prefix, start, seq.Add(1)))
	})
}

// loop runs op from workers goroutines for dur and prints
// "<what> <n> failed <n> elapsed <s> rate <r>/s p50 <d> p99 <d>"
// (bench.sh and bench-storage.sh read the fields by position and name).
func loop(what string, workers int, dur time.Duration, op func() error) error {
	var mu sync.Mutex
	var lat []time.Duration
	var failed atomic.Int64
	deadline := time.Now().Add(dur)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := op(); err != nil {
					failed.Add(1)
					fmt.Fprintln(os.Stderr, what+":", err)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(lat) == 0 {
		return fmt.Errorf("no successful %s (%d failed)", what, failed.Load())
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("%s %d failed %d elapsed %.1fs rate %.2f/s p50 %v p99 %v\n", what, len(lat), failed.Load(),
		elapsed.Seconds(), float64(len(lat))/elapsed.Seconds(), pct(0.50).Round(time.Millisecond), pct(0.99).Round(time.Millisecond))
	return nil
}

func registerOnce(hc *http.Client, base, em string) error {
	return flowOnce(hc, base, "registration", map[string]any{"method": "password", "password": BenchPassword,
		"traits": map[string]any{"email": em}})
}

// login runs native password logins (create flow, submit) in a loop and
// reports logins per second and latency percentiles.
func login(args []string) error {
	fs := flag.NewFlagSet("login", flag.ExitOnError)
	base := fs.String("url", "http://127.0.0.1:9004", "public API base URL")
	em := fs.String("email", email(0), "identifier")
	pw := fs.String("password", BenchPassword, "password")
	workers := fs.Int("workers", 4, "concurrent clients")
	dur := fs.Duration("d", 20*time.Second, "duration")
	_ = fs.Parse(args)
	*base = strings.TrimSuffix(*base, "/")
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *workers}}
	return loop("logins", *workers, *dur, func() error { return loginOnce(hc, *base, *em, *pw) })
}

func loginOnce(hc *http.Client, base, em, pw string) error {
	return flowOnce(hc, base, "login", map[string]any{"method": "password", "identifier": em, "password": pw})
}

// flowOnce creates a native flow of kind and submits body to it; 200 is
// success.
func flowOnce(hc *http.Client, base, kind string, body map[string]any) error {
	resp, err := hc.Get(base + "/self-service/" + kind + "/api")
	if err != nil {
		return err
	}
	var flow struct {
		ID string `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&flow)
	resp.Body.Close()
	if err != nil || flow.ID == "" {
		return fmt.Errorf("create flow: %d %v", resp.StatusCode, err)
	}
	b, _ := json.Marshal(body)
	resp, err = hc.Post(base+"/self-service/"+kind+"?flow="+flow.ID, "application/json", strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	out, _ := io.ReadAll(bufio.NewReader(resp.Body))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("submit: %d %.200s", resp.StatusCode, out)
	}
	return nil
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// warm sends one request per line of -file (a Cookie header value) to -url
// and reports how many were not 200: one pass over warm.txt loads every
// identity and fills the server's caches.
func warm(args []string) error {
	fs := flag.NewFlagSet("warm", flag.ExitOnError)
	u := fs.String("url", "http://127.0.0.1:9004/sessions/whoami", "URL")
	file := fs.String("file", "warm.txt", "Cookie header values, one per line")
	workers := fs.Int("workers", 8, "concurrent clients")
	_ = fs.Parse(args)
	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: *workers}}
	var bad atomic.Int64
	start := time.Now()
	err = parallel(len(lines), *workers, func(i int) error {
		req, _ := http.NewRequest("GET", *u, nil)
		req.Header.Set("Cookie", lines[i])
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			bad.Add(1)
		}
		return nil
	})
	fmt.Printf("warm: %d requests in %v, %d not 200\n", len(lines), time.Since(start).Round(time.Millisecond), bad.Load())
	if err == nil && bad.Load() > 0 {
		err = fmt.Errorf("%d warm-up requests failed", bad.Load())
	}
	return err
}

package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A Caddy reload must be invisible to clients: while whoami, the gate,
// logins and registrations run, the configuration is replaced 20 times
// (through the admin API's /load, alternately as a Caddyfile and as the
// adapted JSON, with a changed session lifespan or an added site). No 5xx,
// no session lost, no connection error.

// hrOp is one request made during the reloads.
type hrOp struct {
	kind       string
	start, end time.Time
	status     int
	err        error
	// reused: the request went out on a kept-alive connection.
	reused bool
	// email of a registration.
	email string
}

// hrSend is hbSend that also reports whether the connection was reused.
func hrSend(hc *http.Client, method, u string, h hdr, body []byte) (*http.Response, []byte, bool, error) {
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, u, rd)
	if err != nil {
		return nil, nil, false, err
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, reused, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, reused, err
}

// isConnReset: the peer reset the connection (or closed it before any
// answer).
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// hrWindow is one reload: from the POST to /load until it returned.
type hrWindow struct{ start, end time.Time }

func TestHardeningReloadUnderLoad(t *testing.T) {
	t.Parallel()
	base := []string{"rate_limits off"}
	in := startInstance(t, instanceOptions{GlobalKratos: base})
	hc := hbClient()

	// Sessions made before the reloads.
	var (
		mu     sync.Mutex
		tokens []string
		ops    []hrOp
	)
	users := make([]user, 3)
	for i := range users {
		users[i] = registerNative(t, in)
		tokens = append(tokens, users[i].Token)
	}
	fixed := append([]string(nil), tokens...)
	b := newBrowser(t, in)
	b.login(t, users[0].Email, users[0].Password)
	cookies := b.cookieHeader()

	record := func(op hrOp) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}
	// timed runs f (which sets status, err and reused) as one recorded op.
	timed := func(op hrOp, f func(op *hrOp)) hrOp {
		op.start = time.Now()
		f(&op)
		op.end = time.Now()
		record(op)
		return op
	}
	get := func(op *hrOp, u string, h hdr) {
		hh := hdr{"Accept": "application/json"}
		for k, v := range h {
			hh[k] = v
		}
		r, _, reused, err := hrSend(hc, "GET", u, hh, nil)
		op.reused, op.err = reused, err
		if err != nil {
			return
		}
		op.status = r.StatusCode
		if strings.HasPrefix(u, in.appBase) && r.StatusCode == http.StatusOK && r.Header.Get("X-Echo-Upstream") == "" {
			op.status = -1 // a 200 that did not come from the app
		}
	}
	// submit runs a native flow (create, then POST body) and returns the
	// session token of a 200.
	submit := func(kind, email string, body map[string]any) (string, int, error) {
		var token string
		var f flowJSON
		op := timed(hrOp{kind: kind + " create"}, func(op *hrOp) {
			r, rb, reused, err := hrSend(hc, "GET", in.apiBase+"/self-service/"+kind+"/api", hdr{"Accept": "application/json"}, nil)
			op.reused, op.err = reused, err
			if err == nil {
				op.status = r.StatusCode
				_ = json.Unmarshal(rb, &f)
			}
		})
		if op.err != nil || op.status != http.StatusOK || f.ID == "" {
			return "", op.status, op.err
		}
		b, _ := json.Marshal(body)
		op = timed(hrOp{kind: kind, email: email}, func(op *hrOp) {
			r, rb, reused, err := hrSend(hc, "POST", in.apiBase+"/self-service/"+kind+"?flow="+f.ID, hdr{"Accept": "application/json", "Content-Type": "application/json"}, b)
			op.reused, op.err = reused, err
			if err != nil {
				return
			}
			op.status = r.StatusCode
			var res struct {
				SessionToken string `json:"session_token"`
			}
			_ = json.Unmarshal(rb, &res)
			token = res.SessionToken
		})
		return token, op.status, op.err
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f(i)
			}
		}()
	}
	for w := 0; w < 2; w++ {
		worker(func(i int) {
			timed(hrOp{kind: "whoami"}, func(op *hrOp) {
				get(op, in.apiBase+"/sessions/whoami", hdr{"X-Session-Token": fixed[i%len(fixed)]})
			})
		})
	}
	worker(func(i int) {
		if i%2 == 0 {
			timed(hrOp{kind: "gate (token)"}, func(op *hrOp) {
				get(op, in.appBase+"/private/reload", hdr{"X-Session-Token": fixed[i%len(fixed)]})
			})
			return
		}
		timed(hrOp{kind: "gate (cookie)"}, func(op *hrOp) { get(op, in.appBase+"/private/reload", hdr{"Cookie": cookies}) })
	})
	worker(func(i int) {
		u := users[i%len(users)]
		if tok, st, err := submit("login", "", map[string]any{"method": "password", "identifier": u.Email, "password": u.Password}); err == nil && st == http.StatusOK && tok != "" {
			mu.Lock()
			tokens = append(tokens, tok)
			mu.Unlock()
		}
	})
	worker(func(int) {
		email := randEmail()
		if tok, st, err := submit("registration", email, map[string]any{"method": "password", "password": randPassword(), "traits": map[string]any{"email": email}}); err == nil && st == http.StatusOK && tok != "" {
			mu.Lock()
			tokens = append(tokens, tok)
			mu.Unlock()
		}
	})

	// 20 reloads: a new session lifespan, or an added site; as a Caddyfile
	// or as the adapted JSON.
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	var windows []hrWindow
	var lastLifespan time.Duration
	time.Sleep(200 * time.Millisecond)
	for i := 0; i < 20; i++ {
		lastLifespan = time.Duration(25+i) * time.Hour
		opts := instanceOptions{GlobalKratos: append(append([]string{}, base...), fmt.Sprintf("session_lifespan %dh", 25+i))}
		if i%2 == 1 {
			opts.ExtraSites = fmt.Sprintf("http://127.0.0.1:%d {\n\trespond \"reload %d\" 200\n}\n", ports[0], i)
		}
		cfg := in.caddyfile(opts)
		ct := "text/caddyfile"
		body := []byte(cfg)
		if i%4 >= 2 {
			r, out := do(t, plainHTTP(), "POST", in.adminBase+"/adapt", hdr{"Content-Type": "text/caddyfile"}, body)
			wantStatus(t, r, out, http.StatusOK)
			var adapted struct {
				Result json.RawMessage `json:"result"`
			}
			if err := json.Unmarshal(out, &adapted); err != nil || len(adapted.Result) == 0 {
				t.Fatalf("adapting the Caddyfile: %v %s", err, clip(out))
			}
			ct, body = "application/json", adapted.Result
		}
		w := hrWindow{start: time.Now()}
		r, out := do(t, plainHTTP(), "POST", in.adminBase+"/load", hdr{"Content-Type": ct}, body)
		w.end = time.Now()
		windows = append(windows, w)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("reload %d (%s): %d %s", i, ct, r.StatusCode, clip(out))
		}
		if i%2 == 1 {
			if r, body := do(t, plainHTTP(), "GET", fmt.Sprintf("http://127.0.0.1:%d/", ports[0]), nil, nil); r.StatusCode != http.StatusOK || string(body) != fmt.Sprintf("reload %d", i) {
				t.Errorf("reload %d: the added site answers %d %q", i, r.StatusCode, body)
			}
		}
		time.Sleep(60 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if !in.running() {
		t.Fatal("caddy-kratos died during the reloads")
	}

	// What the clients saw.
	inWindow := func(at time.Time) bool {
		for _, w := range windows {
			if !at.Before(w.start.Add(-100*time.Millisecond)) && !at.After(w.end.Add(time.Second)) {
				return true
			}
		}
		return false
	}
	counts := map[string]map[string]int{}
	var attributed []string
	for _, op := range ops {
		if counts[op.kind] == nil {
			counts[op.kind] = map[string]int{}
		}
		if op.err != nil {
			counts[op.kind]["error"]++
			at := fmt.Sprintf("%s at +%v (reused connection: %v, during a reload: %v): %v", op.kind, op.start.Sub(windows[0].start).Round(time.Millisecond), op.reused, inWindow(op.start), op.err)
			// Two things a Caddy reload does to connections, neither of
			// them ours: a kept-alive connection that the replaced server
			// closes while the client sends on it (Go's client resends
			// idempotent requests by itself, not POSTs), and a fresh
			// connection still in the old socket's accept queue when that
			// socket closes — Caddy binds the new config's socket with
			// SO_REUSEPORT, and the kernel resets what the closed one had
			// queued. Anything else (a refused connection, an error away
			// from a reload) is not the reload's doing; and a request
			// whose answer was lost must not have been applied.
			if inWindow(op.start) && (op.reused || isConnReset(op.err)) {
				attributed = append(attributed, at)
				if op.email != "" && hbIdentitiesWith(t, in, op.email) != 0 {
					t.Errorf("%s: the registration was stored although its answer was lost", at)
				}
			} else {
				t.Errorf("connection error: %s", at)
			}
			continue
		}
		counts[op.kind][fmt.Sprint(op.status)]++
		if op.status >= 500 {
			t.Errorf("%s: server error %d", op.kind, op.status)
		} else if op.status != http.StatusOK {
			t.Errorf("%s: status %d during the reloads, want 200", op.kind, op.status)
		}
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Logf("%-14s %v", k, counts[k])
	}
	var reloadTimes []string
	for _, w := range windows {
		reloadTimes = append(reloadTimes, w.end.Sub(w.start).Round(time.Millisecond).String())
	}
	t.Logf("20 reloads took %v", reloadTimes)
	for _, e := range attributed {
		t.Logf("connection error attributed to a reload: %s", e)
	}
	if counts["login"]["200"] == 0 || counts["registration"]["200"] == 0 || counts["whoami"]["200"] == 0 || counts["gate (token)"]["200"] == 0 {
		t.Fatalf("the load is vacuous: %v", counts)
	}

	// No session made before or during the reloads was lost.
	mu.Lock()
	all := append([]string(nil), tokens...)
	mu.Unlock()
	var lost int
	for _, tok := range all {
		if _, code := whoamiToken(t, in, tok); code != http.StatusOK {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d sessions made before or during the reloads no longer pass whoami", lost, len(all))
	}
	if _, resp, err := b.sdk.FrontendAPI.ToSession(ctx).Execute(); resp == nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the browser session after the reloads: %v %v", resp, err)
	}
	// The last configuration is the one in force.
	_, s := loginNative(t, in, users[0].Email, users[0].Password)
	if d := sessionLifetime(s); !within(d, lastLifespan, time.Minute) {
		t.Errorf("session lifetime after the reloads = %v, want %v", d, lastLifespan)
	}
	t.Logf("%d sessions checked after the reloads", len(all))
}

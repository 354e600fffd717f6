package sessionstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeAllMemory measures what the Badger engine holds after serving
// every session of a large store once, with its identity, the way the load
// benchmark's warm-up does (GetSessionByTokenHash, GetIdentityShared):
// RSS (anonymous and file-backed), the live and the scannable heap, and a
// full collection's time. Off unless KRATOS_MEMORY_SESSIONS is set:
//
//	KRATOS_MEMORY_SESSIONS=1000000 KRATOS_MEMORY_IDENTITIES=100000 \
//	KRATOS_MEMORY_DIR=/tmp/mem1m KRATOS_MEMORY_CACHE=default \
//	go test -tags nobadger,nomysql,nopgx -run ServeAllMemory -v -timeout 1h ./sessionstore/
//
// The first run seeds the store into KRATOS_MEMORY_DIR and stops there;
// later runs measure. KRATOS_MEMORY_CACHE=decoded-100k serves from the
// decoded-only caches of before (100 000 entries of each kind); run each
// in its own process, since RSS is the process's.
func TestServeAllMemory(t *testing.T) {
	nSess, _ := strconv.Atoi(os.Getenv("KRATOS_MEMORY_SESSIONS"))
	if nSess <= 0 {
		t.Skip("KRATOS_MEMORY_SESSIONS not set")
	}
	nIdent, _ := strconv.Atoi(os.Getenv("KRATOS_MEMORY_IDENTITIES"))
	if nIdent <= 0 {
		nIdent = max(nSess/10, 1)
	}
	dir := os.Getenv("KRATOS_MEMORY_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	marker := filepath.Join(dir, fmt.Sprintf("seeded-%d-%d", nSess, nIdent))
	if _, err := os.Stat(marker); err != nil {
		seedMemoryStore(t, dir, nSess, nIdent)
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if os.Getenv("KRATOS_MEMORY_DIR") != "" {
			t.Log("seeded; run again for figures from a process that did not seed")
			return
		}
	}
	opts := Options{}
	switch c := os.Getenv("KRATOS_MEMORY_CACHE"); c {
	case "", "default":
	case "decoded-100k":
		opts.SessionCacheSize, opts.SessionCacheBytes = 100000, -1
	default:
		t.Fatalf("KRATOS_MEMORY_CACHE=%s: default or decoded-100k", c)
	}
	rss0 := procStatus(t)
	start := time.Now()
	s := openStore(t, dir, opts)
	opened := time.Since(start)
	ctx := context.Background()
	serve := func(from, to int) {
		for i := from; i < to; i++ {
			sess, err := s.GetSessionByTokenHash(ctx, memoryToken(i))
			if err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
			if _, err := s.GetIdentityShared(ctx, sess.IdentityID); err != nil {
				t.Fatalf("identity of session %d: %v", i, err)
			}
		}
	}
	start = time.Now()
	serve(0, nSess)
	all := time.Since(start)
	// Then the active ones, as the load benchmark's warm-up does: the
	// last 100 000 (every identity's), three times; the last pass timed.
	active := min(nSess, 100000)
	serve(nSess-active, nSess)
	serve(nSess-active, nSess)
	start = time.Now()
	serve(nSess-active, nSess)
	again := time.Since(start)
	rss := procStatus(t)
	gcStart := time.Now()
	runtime.GC()
	gc := time.Since(gcStart)
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/heap:bytes"}}
	metrics.Read(m)
	decoded, compact := s.caches.Lens()
	t.Logf("cache %q, %d sessions, %d identities: opened in %v; all served once in %v (%.1f µs each), the last %d a third time in %v (%.1f µs each)",
		os.Getenv("KRATOS_MEMORY_CACHE"), nSess, nIdent, opened.Round(time.Millisecond),
		all.Round(time.Millisecond), float64(all.Microseconds())/float64(nSess),
		active, again.Round(time.Millisecond), float64(again.Microseconds())/float64(active))
	t.Logf("RSS %d MB (%d anon + %d file; before opening %d) | heap live %d MB, scannable %d MB | full GC %v | cached: %d decoded, %d compact",
		rss["VmRSS"]>>10, rss["RssAnon"]>>10, rss["RssFile"]>>10, rss0["VmRSS"]>>10,
		m[0].Value.Uint64()>>20, m[1].Value.Uint64()>>20, gc.Round(time.Millisecond), decoded, compact)
}

// memoryToken is the token hash of session i of the memory store.
func memoryToken(i int) []byte { return tokenHash("memory-" + strconv.Itoa(i)) }

func seedMemoryStore(t *testing.T, dir string, nSess, nIdent int) {
	s, err := Open(dir, Options{NoSync: true, SessionCacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	start := time.Now()
	parallel := func(n int, fn func(i int) error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n || t.Failed() {
						return
					}
					if err := fn(i); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	parallel(nIdent, func(i int) error {
		id := benchIdentity(t, i)
		id.trimmed = false
		return s.CreateIdentity(ctx, id)
	})
	t.Logf("seeded %d identities in %v", nIdent, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	parallel(nSess, func(i int) error {
		sess := benchSession(t, i, nIdent)
		sess.ExpiresAt = time.Now().Add(30 * 24 * time.Hour).UTC()
		sess.TokenHash = memoryToken(i)
		return s.CreateSession(ctx, sess)
	})
	t.Logf("seeded %d sessions in %v", nSess, time.Since(start).Round(time.Millisecond))
}

// procStatus reads the kB figures of /proc/self/status.
func procStatus(t *testing.T) map[string]int {
	out := map[string]int{}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Logf("no /proc/self/status: %v", err)
		return out
	}
	for line := range bytes.Lines(data) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		if f := bytes.Fields(v); len(f) == 2 && string(f[1]) == "kB" {
			n, _ := strconv.Atoi(string(f[0]))
			out[string(k)] = n
		}
	}
	return out
}

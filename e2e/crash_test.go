package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/caddy-kratos/caddy-kratos/sessionstore/postgres"
)

// kill ends the process with SIGKILL: no shutdown, no flush, like a power
// cut for everything the process had not handed to the kernel.
func (in *instance) kill() {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// crashClient is a raw JSON client: during a crash most calls fail, and
// only answers that arrived count as acknowledged.
type crashClient struct {
	hc   *http.Client
	base string
}

func (c *crashClient) call(method, path, token string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Session-Token", token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		// The answer did not arrive whole: not acknowledged.
		return 0, nil
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

func (c *crashClient) action(path, token string) string {
	st, m := c.call("GET", path, token, nil)
	if st != 200 {
		return ""
	}
	ui, _ := m["ui"].(map[string]any)
	a, _ := ui["action"].(string)
	if len(a) > len(c.base) {
		return a[len(c.base):]
	}
	return ""
}

type crashUser struct {
	email, password, id string
	tokens              []string
	// acked/attempted: the last first name whose change was acknowledged,
	// and the one in flight when the process died (either may be stored).
	acked, attempted string
}

// TestCrashSafety drives concurrent registrations, logins and settings
// changes, kills the process with SIGKILL at random points, restarts it on
// the same store and checks that everything the clients saw succeed is
// still there, that the store is consistent and that it opens every time.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	in := startInstance(t, instanceOptions{GlobalKratos: []string{"registration_style unified", "rate_limits off"}})
	c := &crashClient{hc: &http.Client{Timeout: 5 * time.Second}, base: in.apiBase}
	var (
		mu    sync.Mutex
		users []*crashUser
	)
	var regs, logins, changes, kills atomic.Int64
	const rounds, workers = 5, 6
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for round := 0; round < rounds; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				var mine []*crashUser
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					switch op := (i + w) % 4; {
					case op == 0 || len(mine) == 0:
						u := &crashUser{email: fmt.Sprintf("crash-%s@example.com", randHex(8)), password: randPassword()}
						a := c.action("/self-service/registration/api", "")
						if a == "" {
							continue
						}
						st, m := c.call("POST", a, "", map[string]any{"method": "password", "password": u.password, "traits": map[string]any{"email": u.email}})
						if st != 200 {
							continue
						}
						u.id = m["identity"].(map[string]any)["id"].(string)
						u.tokens = append(u.tokens, m["session_token"].(string))
						mine = append(mine, u)
						mu.Lock()
						users = append(users, u)
						mu.Unlock()
						regs.Add(1)
					case op == 1 || op == 3:
						u := mine[i%len(mine)]
						a := c.action("/self-service/login/api", "")
						if a == "" {
							continue
						}
						st, m := c.call("POST", a, "", map[string]any{"method": "password", "identifier": u.email, "password": u.password})
						if st != 200 {
							continue
						}
						mu.Lock()
						u.tokens = append(u.tokens, m["session_token"].(string))
						mu.Unlock()
						logins.Add(1)
					default:
						u := mine[i%len(mine)]
						a := c.action("/self-service/settings/api", u.tokens[0])
						if a == "" {
							continue
						}
						name := "n" + randHex(4)
						mu.Lock()
						u.attempted = name
						mu.Unlock()
						st, _ := c.call("POST", a, u.tokens[0], map[string]any{"method": "profile", "traits": map[string]any{"email": u.email, "name": map[string]any{"first": name}}})
						if st == 200 {
							mu.Lock()
							u.acked = name
							mu.Unlock()
							changes.Add(1)
						}
					}
				}
			}(w)
		}
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		in.kill()
		kills.Add(1)
		close(stop)
		wg.Wait()
		if err := in.start(); err != nil {
			t.Fatalf("round %d: restart after kill -9 failed: %v\n%s", round, err, in.logs.tail(8<<10))
		}
		// Every acknowledged identity, session and profile change survived.
		mu.Lock()
		snapshot := append([]*crashUser(nil), users...)
		mu.Unlock()
		for _, u := range snapshot {
			for _, tok := range u.tokens {
				st, m := c.call("GET", "/sessions/whoami", tok, nil)
				if st != 200 {
					t.Fatalf("round %d: acknowledged session of %s lost: whoami %d", round, u.email, st)
				}
				ident := m["identity"].(map[string]any)
				if ident["id"] != u.id {
					t.Fatalf("round %d: session of %s points at %v", round, u.email, ident["id"])
				}
				if u.acked != "" {
					traits := ident["traits"].(map[string]any)
					first, _ := traits["name"].(map[string]any)["first"].(string)
					if first != u.acked && first != u.attempted {
						t.Fatalf("round %d: acknowledged profile change of %s lost: %q (acked %q)", round, u.email, first, u.acked)
					}
				}
			}
		}
	}
	// The store itself: no half-written identity, no index without record.
	in.stop()
	st := openStore(t, in)
	rep, err := st.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("store inconsistent after %d kills: %v", kills.Load(), rep.Problems)
	}
	if rep.Identities < int(regs.Load()) {
		t.Fatalf("%d identities stored, %d registrations acknowledged", rep.Identities, regs.Load())
	}
	t.Logf("crash test: %d rounds, %d kills, acknowledged: %d registrations, %d logins, %d profile changes; stored %d identities, %d sessions; losses 0",
		rounds, kills.Load(), regs.Load(), logins.Load(), changes.Load(), rep.Identities, rep.Sessions)
}

// openStore opens the stopped instance's store directly: the Badger
// directory, or its PostgreSQL schema (no migration, no sweeper). It is
// closed when t ends.
func openStore(t *testing.T, in *instance) sessionstore.Storage {
	t.Helper()
	var st sessionstore.Storage
	var err error
	if in.onPostgres() {
		st, err = postgres.Open(ctx, in.dsn, postgres.Options{NoMigrate: true, SweepInterval: -1})
	} else {
		st, err = sessionstore.Open(in.storage, sessionstore.Options{})
	}
	if err != nil {
		t.Fatalf("store does not open after the crashes: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

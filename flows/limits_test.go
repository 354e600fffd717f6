package flows

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/budget"
	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
)

// Attempts are reserved atomically: of 50 concurrent attempts on one
// subject with a limit of 10, exactly 10 are admitted (the 11th starts
// the block and is refused), the others are refused with 429.
func TestReserveIsAtomicUnderConcurrency(t *testing.T) {
	e, _ := testEngine(t, nil)
	const n = 50
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, ee := e.kernel.Reserve(context.Background(), "login_id", "burst@example.com")
			switch {
			case ee == nil:
				admitted.Add(1)
			case ee.Code == http.StatusTooManyRequests:
				refused.Add(1)
			default:
				t.Errorf("reserve: %v", ee)
			}
		}()
	}
	close(start)
	wg.Wait()
	if admitted.Load() != 10 || refused.Load() != n-10 {
		t.Fatalf("%d concurrent attempts at limit 10: %d admitted, %d refused; want 10 and %d", n, admitted.Load(), refused.Load(), n-10)
	}
}

// A released attempt (a success) is given back: successes never block a
// subject.
func TestReleaseGivesTheAttemptBack(t *testing.T) {
	e, _ := testEngine(t, func(c *Config) { c.RateLimits = flow.RateLimits{LoginFailuresPerIP: 2} })
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		rv, ee := e.kernel.Reserve(ctx, "login_ip", "192.0.2.1")
		if ee != nil {
			t.Fatalf("success %d refused: %v", i, ee)
		}
		rv.Release()
	}
	for i := 0; i < 2; i++ { // two failures; the third starts the block
		if _, ee := e.kernel.Reserve(ctx, "login_ip", "192.0.2.1"); ee != nil {
			t.Fatalf("failure %d refused: %v", i, ee)
		}
	}
	for i := 0; i < 2; i++ {
		if _, ee := e.kernel.Reserve(ctx, "login_ip", "192.0.2.1"); ee == nil || ee.Code != http.StatusTooManyRequests {
			t.Fatalf("attempt %d after 2 failures at limit 2: %v, want 429", 3+i, ee)
		}
	}
}

// A store that cannot be read or written refuses the attempt (503), and
// blocked reports the error instead of "not blocked".
func TestLimitsFailClosed(t *testing.T) {
	e, _ := testEngine(t, nil)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	_, ee := e.kernel.Reserve(context.Background(), "login_id", "x@example.com")
	if ee == nil || ee.Code != http.StatusServiceUnavailable || ee.RetryAfter() <= 0 {
		t.Fatalf("reserve on a closed store: %+v, want 503 with Retry-After", ee)
	}
	if _, err := e.kernel.Blocked(context.Background(), "reg_ip", "192.0.2.1"); err == nil {
		t.Fatal("blocked on a closed store: no error")
	}
}

// A cancelled request context (the client went away) still counts.
func TestReserveCountsWithACancelledContext(t *testing.T) {
	e, _ := testEngine(t, func(c *Config) { c.RateLimits = flow.RateLimits{LoginFailuresPerIdentifier: 1} })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ee := e.kernel.Reserve(ctx, "login_id", "gone@example.com"); ee != nil {
		t.Fatalf("attempt 1 with a cancelled context: %v", ee)
	}
	if _, ee := e.kernel.Reserve(ctx, "login_id", "gone@example.com"); ee == nil || ee.Code != http.StatusTooManyRequests {
		t.Fatalf("second attempt at limit 1: %v, want 429", ee)
	}
}

// Clients of one IPv6 /64 share the per-IP limits; another /64 does not.
func TestPerIPLimitsAggregateIPv6(t *testing.T) {
	_, srv := testEngine(t, func(c *Config) {
		c.RateLimits = flow.RateLimits{LoginFailuresPerIP: 2}
		c.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
	})
	try := func(ip string) int {
		l := do(t, nil, "GET", srv.URL+"/self-service/login/api", nil, nil)
		return do(t, nil, "POST", actionOf(t, l), map[string]any{"method": "password", "identifier": token.RandomString(8, token.Alnum) + "@example.com", "password": "x-x-x-x-x"},
			map[string]string{"X-Test-Client": ip}).status
	}
	for i, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2:aaaa::3"} {
		if s := try(ip); s != 400 {
			t.Fatalf("failure %d from %s: %d, want 400", i, ip, s)
		}
	}
	if s := try("2001:db8:1:2:ffff::4"); s != 429 {
		t.Fatalf("third failure from the same /64: %d, want 429", s)
	}
	if s := try("2001:db8:1:3::1"); s != 400 {
		t.Fatalf("another /64: %d, want 400", s)
	}
	// IPv4-mapped IPv6 is the IPv4 address.
	for i := 0; i < 2; i++ {
		if s := try("192.0.2.9"); s != 400 {
			t.Fatalf("IPv4 failure %d: %d", i, s)
		}
	}
	if s := try("::ffff:192.0.2.9"); s != 429 {
		t.Fatalf("the same IPv4 address, IPv4-mapped: %d, want 429", s)
	}
}

// A login while hashing is saturated answers 503 in Kratos's shape with
// Retry-After, and the attempt is not counted.
func TestLoginWhileHashingSaturated(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) { c.RateLimits = flow.RateLimits{LoginFailuresPerIdentifier: 1} })
	gate := budget.New(identity.ArgonMemory, 1, 20*time.Millisecond)
	e.hasher.UseGate(gate)
	release, err := gate.Acquire(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	l := do(t, nil, "GET", srv.URL+"/self-service/login/api", nil, nil)
	a := actionOf(t, l)
	bad := map[string]any{"method": "password", "identifier": "busy@example.com", "password": "x-x-x-x-x"}
	for i := 0; i < 3; i++ {
		r := do(t, nil, "POST", a, bad, nil)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
			t.Fatalf("saturated %d: %d %v %s, want 503 with Retry-After", i, r.status, r.header, r.raw)
		}
		if e, _ := r.body["error"].(map[string]any); e == nil || e["code"] != float64(503) || e["reason"] == "" {
			t.Fatalf("saturated %d: not Kratos's error shape: %s", i, r.raw)
		}
	}
	release()
	// Nothing was counted while saturated: at limit 1, one failure is
	// evaluated, the next is refused.
	if r := do(t, nil, "POST", a, bad, nil); r.status != 400 {
		t.Fatalf("failure after the saturation: %d %s", r.status, r.raw)
	}
	if r := do(t, nil, "POST", a, bad, nil); r.status != 429 {
		t.Fatalf("second failure at limit 1: %d %s, want 429", r.status, r.raw)
	}
}

package flows

import (
	"testing"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
)

func TestLoginFailuresBlockIdentifierWithBackoff(t *testing.T) {
	e, srv := testEngine(t, func(c *Config) {
		c.RegistrationStyle = "unified"
		c.RateLimits = flow.RateLimits{LoginFailuresPerIdentifier: 3}
	})
	registerNative(t, srv.URL, "rl@example.com")
	l := do(t, nil, "GET", srv.URL+"/self-service/login/api", nil, nil)
	a := actionOf(t, l)
	bad := map[string]any{"method": "password", "identifier": "rl@example.com", "password": "not-the-password"}
	for i := 0; i < 3; i++ {
		if r := do(t, nil, "POST", a, bad, nil); r.status != 400 || !contains(messageIDs(r.body), 4000006) {
			t.Fatalf("failure %d: %d %s", i, r.status, r.raw)
		}
	}
	// The fourth guess is not evaluated: it starts the block.
	if r := do(t, nil, "POST", a, bad, nil); r.status != 429 {
		t.Fatalf("fourth guess at limit 3: %d %s, want 429", r.status, r.raw)
	}
	// Blocked now, even with the right password, and told when to retry.
	good := map[string]any{"method": "password", "identifier": "rl@example.com", "password": "Gx7!qVt2#pLr9$wZk4"}
	r := do(t, nil, "POST", a, good, nil)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("expected 429 with Retry-After, got %d %v %s", r.status, r.header, r.raw)
	}
	// Another identifier from the same client is not blocked.
	other := map[string]any{"method": "password", "identifier": "someone@example.com", "password": "x-x-x-x-x"}
	if r := do(t, nil, "POST", a, other, nil); r.status != 400 {
		t.Fatalf("other identifier: %d %s", r.status, r.raw)
	}
	// The block is a window, not a lock: after it, the right password works.
	e.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	l2 := do(t, nil, "GET", srv.URL+"/self-service/login/api", nil, nil)
	if r := do(t, nil, "POST", actionOf(t, l2), good, nil); r.status != 200 {
		t.Fatalf("after the window: %d %s", r.status, r.raw)
	}
}

func TestRegistrationsPerIPLimited(t *testing.T) {
	_, srv := testEngine(t, func(c *Config) {
		c.RegistrationStyle = "unified"
		c.RateLimits = flow.RateLimits{RegistrationsPerIP: 2}
	})
	registerNative(t, srv.URL, "a1@example.com")
	registerNative(t, srv.URL, "a2@example.com")
	f := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
	r := do(t, nil, "POST", actionOf(t, f), map[string]any{"method": "password", "password": "Gx7!qVt2#pLr9$wZk4", "traits": map[string]any{"email": "a3@example.com"}}, nil)
	if r.status != 429 {
		t.Fatalf("third registration at limit 2: %d %s", r.status, r.raw)
	}
}

// Limits live in the store, not in the engine: a new engine on the same
// store (a Caddy reload; a restart reopens the same Badger files) sees them.
func TestRateLimitsLiveInTheStore(t *testing.T) {
	e, _ := testEngine(t, nil)
	for i := 0; i < 11; i++ {
		_ = e.kernel.Hit(t.Context(), "login_id", "x@example.com")
	}
	e2, err := New(e.cfg, e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := e2.kernel.Blocked(t.Context(), "login_id", "x@example.com"); err != nil || d <= 0 {
		t.Fatal("block not persisted in the store")
	}
}

package caddymodule

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-kratos/caddy-kratos/flows"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The gate's cost per request, on requests prepared the way Caddy's
// server prepares one (a fresh header map, a replacer with the HTTP
// placeholders, the server, vars and original request in its context)
// outside the benchmark's timer, so that what is measured is the gate
// alone.

// browserHeaders are the headers of a browser's navigation, as wrk and
// the load benchmark send them, plus a few a browser adds.
var browserHeaders = http.Header{
	"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
	"Accept-Encoding": {"gzip, deflate, br"},
	"Accept-Language": {"en-US,en;q=0.5"},
	"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
	"Connection":      {"keep-alive"},
}

// preparedRequest is base as Caddy's server hands it to the first
// handler.
func preparedRequest(base *http.Request, w http.ResponseWriter, srv *caddyhttp.Server) *http.Request {
	r := new(http.Request)
	*r = *base
	r.Header = base.Header.Clone()
	return caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, srv)
}

// nopHandler is the next handler: it does nothing, so the benchmarks
// measure the gate and not what it passes the request to.
var nopHandler = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// benchGate is a gate with two mapped headers and metrics over a fake
// engine whose check passes (BenchmarkCheckGate in ./flows is the real
// check's cost).
func benchGate(tb testing.TB) *Gate {
	tb.Helper()
	auth := &fakeAuth{info: &flows.SessionInfo{IdentityID: "3b0f5f4e-6c0b-4a8b-9a57-1b2c3d4e5f60", SessionID: "s", AAL: "aal1"},
		traits: map[string]any{"email": "a@example.com"}}
	g := &Gate{Headers: map[string]string{"X-User-Email": "{kratos.identity.traits.email}", "X-AAL": "{kratos.session.aal}"}}
	if err := g.provision(); err != nil {
		tb.Fatal(err)
	}
	g.auth = auth
	g.metrics = newGateMetrics(newMetricSet(), "bench")
	return g
}

// BenchmarkGateServeHTTP is the gate's own cost per request with a valid
// session (fake engine): header stripping, the identity header, the
// placeholder provider, two mapped headers and the metrics (a decision
// counted, the check timed). The next handler does nothing.
func BenchmarkGateServeHTTP(b *testing.B) {
	benchGateRequests(b, benchGate(b), nil)
}

// benchGateRequests passes requests like base (default: a browser
// navigation) through g to a next handler that does nothing. They are
// prepared in batches with the timer stopped, so ns/op and allocs/op are
// the gate's alone: the same requests handed straight to the next
// handler measure 4 ns and no allocation. (b.N requests are prepared:
// -benchtime 200000x keeps a run short.)
func benchGateRequests(b *testing.B, g *Gate, base *http.Request) {
	if base == nil {
		base = httptest.NewRequest(http.MethodGet, "http://app.example.com/private", nil)
		base.Header = browserHeaders.Clone()
	}
	srv := new(caddyhttp.Server)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	batch := make([]*http.Request, 32)
	for i := 0; i < b.N; {
		b.StopTimer()
		n := min(len(batch), b.N-i)
		for j := range n {
			batch[j] = preparedRequest(base, w, srv)
		}
		b.StartTimer()
		for _, r := range batch[:n] {
			if err := g.ServeHTTP(w, r, nopHandler); err != nil {
				b.Fatal(err)
			}
		}
		i += n
	}
}

// gateAllocs is what the gate adds to a passing request's allocations.
func gateAllocs(t *testing.T, g *Gate, base *http.Request) float64 {
	t.Helper()
	srv := new(caddyhttp.Server)
	w := httptest.NewRecorder()
	r := preparedRequest(base, w, srv)
	next := &nextRecorder{}
	if err := g.ServeHTTP(w, r, next); err != nil || !next.called || r.Header.Get(IdentityHeader) == "" {
		t.Fatalf("the gate did not pass the request on (next %v, err %v)", next.called, err)
	}
	without := testing.AllocsPerRun(500, func() { _ = nopHandler.ServeHTTP(w, preparedRequest(base, w, srv)) })
	with := testing.AllocsPerRun(500, func() { _ = g.ServeHTTP(w, preparedRequest(base, w, srv), nopHandler) })
	return with - without
}

// gatePassAllocs is what a passing request costs the gate itself: its
// per-request state (the session, the backing array of the header values
// it sets) and the placeholder provider it hands Caddy's replacer. Caddy
// takes providers only as func values, and both stay reachable after the
// gate returns (the access log reads {http.auth.user.id} and the request
// headers then, reverse_proxy's header rules may rewrite the values in
// place), so they are the request's own and cannot be pooled or shared.
const gatePassAllocs = 2

// TestGatePassAllocs: a passing request costs the gate its two fixed
// allocations, with or without metrics and mapped headers, and when it
// strips forged copies of its headers. (A Connection header naming one of
// them is rewritten, which allocates: no browser sends one.)
func TestGatePassAllocs(t *testing.T) {
	base := httptest.NewRequest(http.MethodGet, "http://app.example.com/private", nil)
	base.Header = browserHeaders.Clone()
	if n := gateAllocs(t, benchGate(t), base); n != gatePassAllocs {
		t.Errorf("a passing request: the gate allocates %.1f times, want %d", n, gatePassAllocs)
	}
	plain := newGate(t, &Gate{}, &fakeAuth{info: &flows.SessionInfo{IdentityID: "3b0f5f4e-6c0b-4a8b-9a57-1b2c3d4e5f60", SessionID: "s", AAL: "aal1"}})
	if n := gateAllocs(t, plain, base); n != gatePassAllocs {
		t.Errorf("no metrics, no mapped headers: the gate allocates %.1f times, want %d", n, gatePassAllocs)
	}
	forged := base.Clone(context.Background())
	forged.Header["X_kratos_authenticated_identity_id"] = []string{"forged"}
	forged.Header.Set("X-User-Email", "forged@example.com")
	if n := gateAllocs(t, benchGate(t), forged); n != gatePassAllocs {
		t.Errorf("forged headers stripped: the gate allocates %.1f times, want %d", n, gatePassAllocs)
	}
}

// BenchmarkGateEngine is the whole gate, the real engine's check of a
// session cookie (from the caches) and the handler: what kratos_gate adds
// in front of reverse_proxy.
func BenchmarkGateEngine(b *testing.B) {
	st, err := sessionstore.Open(b.TempDir(), sessionstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	e, err := flows.New(flows.Config{
		SiteOptions:    flows.SiteOptions{PublicURL: "http://127.0.0.1:4433/"},
		BrowserOptions: flows.BrowserOptions{Dev: true},
	}, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().UTC()
	ident := &sessionstore.Identity{ID: "3b0f5f4e-6c0b-4a8b-9a57-1b2c3d4e5f60", SchemaID: "default", State: "active",
		StateChangedAt: now, Traits: []byte(`{"email":"bench@example.com"}`), CreatedAt: now, UpdatedAt: now}
	if err := st.CreateIdentity(ctx, ident); err != nil {
		b.Fatal(err)
	}
	const tok = "ory_st_benchbenchbenchbenchbenchbenchbe"
	h := sha256.Sum256([]byte(tok))
	if err := st.CreateSession(ctx, &sessionstore.Session{ID: "7d1c0a51-8d4e-4b44-9d7e-2f0c5e8b9a01", IdentityID: ident.ID,
		Active: true, IssuedAt: now, AuthenticatedAt: now, ExpiresAt: now.Add(time.Hour), AAL: "aal1",
		AuthenticationMethods: []sessionstore.AuthMethod{{Method: "password", AAL: "aal1", CompletedAt: now}},
		TokenHash:             h[:]}); err != nil {
		b.Fatal(err)
	}
	g := &Gate{}
	if err := g.provision(); err != nil {
		b.Fatal(err)
	}
	g.auth = e
	g.cookie = e.CookieName()
	g.metrics = newGateMetrics(newMetricSet(), "bench")

	base := httptest.NewRequest(http.MethodGet, "http://app.example.com/private", nil)
	base.Header = browserHeaders.Clone()
	base.AddCookie(&http.Cookie{Name: e.CookieName(), Value: e.SessionCookieValue(tok, now.Add(time.Hour))})
	w := httptest.NewRecorder()
	next := &nextRecorder{}
	if err := g.ServeHTTP(w, preparedRequest(base, w, new(caddyhttp.Server)), next); err != nil || !next.called {
		b.Fatalf("the gate refused the session: %v", err)
	}
	benchGateRequests(b, g, base)
}

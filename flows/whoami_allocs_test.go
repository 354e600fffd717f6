//go:build !race

// The race detector makes sync.Pool drop items at random, so the pooled
// answer buffer allocates now and then under -race.

package flows

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// TestWhoamiAllocs: a whoami answered 200 allocates once, the backing
// array of its three headers (net/http's fresh header map per response is
// its own), with the session in a cookie or X-Session-Token.
func TestWhoamiAllocs(t *testing.T) {
	e, srv := testEngine(t, nil)
	now := time.Now().UTC()
	ident := &sessionstore.Identity{ID: uuid.NewString(), SchemaID: "default", State: "active", StateChangedAt: now,
		Traits: json.RawMessage(`{"email":"allocs@example.com"}`), CreatedAt: now, UpdatedAt: now}
	if err := e.store.CreateIdentity(context.Background(), ident); err != nil {
		t.Fatal(err)
	}
	// Plain strings throughout: a value that needs escaping takes
	// encoding/json, which allocates.
	tok := token.NewSessionToken()
	ip, ua := "127.0.0.1:1234", "Mozilla/5.0 (X11; Linux x86_64)"
	s := &sessionstore.Session{ID: uuid.NewString(), IdentityID: ident.ID, Active: true,
		ExpiresAt: now.Add(time.Hour), AuthenticatedAt: now, IssuedAt: now, AAL: "aal1",
		AuthenticationMethods: []sessionstore.AuthMethod{{Method: "password", AAL: "aal1", CompletedAt: now}},
		Devices:               []sessionstore.Device{{ID: uuid.NewString(), IPAddress: &ip, UserAgent: &ua}},
		TokenHash:             token.Hash(tok)}
	if err := e.store.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	byToken := tokenRequest(srv.URL+"/sessions/whoami", tok)
	byCookie := httptest.NewRequest(http.MethodGet, srv.URL+"/sessions/whoami", nil)
	byCookie.AddCookie(&http.Cookie{Name: "ory_kratos_session", Value: e.cookies.Seal(tok, s.ExpiresAt)})
	for name, req := range map[string]*http.Request{"token": byToken, "cookie": byCookie} {
		w := &discardWriter{h: http.Header{}}
		e.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.h.Get("X-Kratos-Authenticated-Identity-Id") != ident.ID || w.h.Get("Cache-Control") == "" {
			t.Fatalf("%s: whoami %d %v", name, w.status, w.h)
		}
		if n := testing.AllocsPerRun(200, func() { clear(w.h); e.ServeHTTP(w, req) }); n != 1 {
			t.Errorf("%s: whoami allocates %.1f times, want 1", name, n)
		}
	}
}

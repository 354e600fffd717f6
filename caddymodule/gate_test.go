package caddymodule

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// fakeAuth stands in for *flows.Engine so the gate is tested without a
// store.
type fakeAuth struct {
	info  *flows.SessionInfo
	err   error
	calls int
}

func (f *fakeAuth) Authenticate(*http.Request) (*flows.SessionInfo, error) {
	f.calls++
	return f.info, f.err
}

func (f *fakeAuth) LoginBrowserURL(_ *http.Request, returnTo string) string {
	return "https://auth.example.com/self-service/login/browser?return_to=" + url.QueryEscape(returnTo)
}

// nextRecorder is the next handler; it keeps the request it saw.
type nextRecorder struct {
	called bool
	req    *http.Request
}

func (n *nextRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	n.called = true
	n.req = r
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// caddyRequest is a request as Caddy's server hands it to handlers: with
// a replacer and the original request in its context.
func caddyRequest(method, target string) (*http.Request, *caddy.Replacer) {
	r := httptest.NewRequest(method, target, nil)
	repl := caddy.NewReplacer()
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.OriginalRequestCtxKey, *r.Clone(ctx))
	return r.WithContext(ctx), repl
}

func newGate(t *testing.T, g *Gate, auth authenticator) *Gate {
	t.Helper()
	if err := g.provision(); err != nil {
		t.Fatal(err)
	}
	g.auth = auth
	return g
}

func TestGateStripsClientIdentityHeaderOnAllowedPath(t *testing.T) {
	auth := &fakeAuth{err: flows.ErrNoSession}
	g := newGate(t, &Gate{Allow: []string{"/favicon.ico", "/static/*"}}, auth)

	r, _ := caddyRequest(http.MethodGet, "/static/app.css")
	r.Header.Set(IdentityHeader, "forged")
	r.Header["x-kratos-authenticated-identity-id"] = []string{"forged"}
	r.Header["X-Kratos-Authenticated-Identity_Id"] = []string{"forged"}
	r.Header.Set("X-Other", "kept")

	next := &nextRecorder{}
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if !next.called {
		t.Fatal("next was not called on an allowed path")
	}
	if auth.calls != 0 {
		t.Errorf("Authenticate called %d times on an allowed path", auth.calls)
	}
	for k := range next.req.Header {
		if sameHeaderName(k, IdentityHeader) {
			t.Errorf("client-sent header %q reached next", k)
		}
	}
	if next.req.Header.Get("X-Other") != "kept" {
		t.Error("an unrelated header was removed")
	}
}

func TestGateAllowMatching(t *testing.T) {
	g := &Gate{Allow: []string{"/favicon.ico", "/static/*", "*.png", "/healthz"}}
	for _, tc := range []struct {
		path    string
		allowed bool
	}{
		{"/favicon.ico", true},
		{"/FAVICON.ICO", true}, // case-insensitive, like Caddy's path matcher
		{"/static/", true},
		{"/static/js/app.js", true},
		{"/static", false},
		{"/img/logo.png", true},
		{"/healthz", true},
		{"/healthz/deep", false},
		{"/static/../admin", false}, // cleaned before matching
		{"//static/x", true},        // doubled slashes are merged
		{"/", false},
		{"/admin", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			auth := &fakeAuth{info: &flows.SessionInfo{IdentityID: "id-1"}}
			newGate(t, g, auth)
			r, _ := caddyRequest(http.MethodGet, "http://app.example.com/")
			r.URL.Path = tc.path
			next := &nextRecorder{}
			if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
				t.Fatal(err)
			}
			if allowed := auth.calls == 0; allowed != tc.allowed {
				t.Errorf("path %q: allowed without a session = %v, want %v", tc.path, allowed, tc.allowed)
			}
		})
	}
}

func TestGateValidSessionSetsHeaderAndPlaceholders(t *testing.T) {
	auth := &fakeAuth{info: &flows.SessionInfo{IdentityID: "ident-1", SessionID: "sess-1", AAL: "aal1"}}
	g := newGate(t, &Gate{}, auth)

	r, repl := caddyRequest(http.MethodGet, "http://app.example.com/private")
	r.Header.Set(IdentityHeader, "forged")
	r.Header["X-Kratos-Authenticated-Identity_Id"] = []string{"forged"}
	next := &nextRecorder{}
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if !next.called {
		t.Fatal("next was not called with a valid session")
	}
	if got := next.req.Header.Values(IdentityHeader); len(got) != 1 || got[0] != "ident-1" {
		t.Errorf("%s = %q, want exactly [ident-1]", IdentityHeader, got)
	}
	if _, ok := next.req.Header["X-Kratos-Authenticated-Identity_Id"]; ok {
		t.Error("underscore variant of the identity header reached next")
	}
	for key, want := range map[string]string{
		"http.auth.user.id":  "ident-1",
		"kratos.identity.id": "ident-1",
		"kratos.session.id":  "sess-1",
		"kratos.session.aal": "aal1",
	} {
		if got, _ := repl.GetString(key); got != want {
			t.Errorf("placeholder {%s} = %q, want %q", key, got, want)
		}
	}
}

func TestGateStoreErrorIsAHandlerError(t *testing.T) {
	auth := &fakeAuth{err: errors.New("badger: closed")}
	g := newGate(t, &Gate{}, auth)
	r, _ := caddyRequest(http.MethodGet, "http://app.example.com/")
	next := &nextRecorder{}
	err := g.ServeHTTP(httptest.NewRecorder(), r, next)
	var he caddyhttp.HandlerError
	if !errors.As(err, &he) || he.StatusCode != http.StatusInternalServerError {
		t.Fatalf("err = %v, want a caddyhttp.HandlerError with status 500", err)
	}
	if next.called {
		t.Error("next was called after a store error")
	}
}

func TestGateNoSessionBrowserIsRedirected(t *testing.T) {
	auth := &fakeAuth{err: flows.ErrNoSession}
	g := newGate(t, &Gate{LoginURL: "https://auth.example.com/self-service/login/browser?refresh=false"}, auth)
	r, _ := caddyRequest(http.MethodGet, "http://app.example.com/private?x=1")
	r.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	w := httptest.NewRecorder()
	next := &nextRecorder{}
	if err := g.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusSeeOther {
		t.Fatalf("status = %d, want 303", w.Code)
	}
	want := "https://auth.example.com/self-service/login/browser?refresh=false&return_to=http%3A%2F%2Fapp.example.com%2Fprivate%3Fx%3D1"
	if got := w.Header().Get("Location"); got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if next.called {
		t.Error("next was called without a session")
	}
}

func TestGateNoSessionAPIClientGets401(t *testing.T) {
	auth := &fakeAuth{err: flows.ErrNoSession}
	g := newGate(t, &Gate{}, auth)
	r, _ := caddyRequest(http.MethodGet, "http://app.example.com/api/items")
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	next := &nextRecorder{}
	if err := g.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", w.Code)
	}
	if next.called {
		t.Error("next was called without a session")
	}
}

func TestGateLoginLocation(t *testing.T) {
	for _, tc := range []struct {
		name, loginURL, want string
	}{
		{"engine default", "",
			"https://auth.example.com/self-service/login/browser?return_to=https%3A%2F%2Fapp.example.com%2Fa%3Fb%3Dc"},
		{"absolute", "https://login.example.com/self-service/login/browser",
			"https://login.example.com/self-service/login/browser?return_to=https%3A%2F%2Fapp.example.com%2Fa%3Fb%3Dc"},
		{"path with query", "/self-service/login/browser?aal=aal1",
			"/self-service/login/browser?aal=aal1&return_to=https%3A%2F%2Fapp.example.com%2Fa%3Fb%3Dc"},
		{"placeholder", "https://auth.{http.request.host}/login",
			"https://auth.app.example.com/login?return_to=https%3A%2F%2Fapp.example.com%2Fa%3Fb%3Dc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t, &Gate{LoginURL: tc.loginURL}, &fakeAuth{})
			r, repl := caddyRequest(http.MethodGet, "https://app.example.com/a?b=c")
			repl.Set("http.request.host", "app.example.com")
			r.TLS = &tls.ConnectionState{}
			if got := g.loginLocation(r, originalURL(r)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestOriginalURLIgnoresRewrites(t *testing.T) {
	r, _ := caddyRequest(http.MethodGet, "http://app.example.com/app/page?q=1")
	r.URL.Path = "/page" // e.g. handle_path stripped /app
	if got, want := originalURL(r), "http://app.example.com/app/page?q=1"; got != want {
		t.Errorf("originalURL = %q, want %q", got, want)
	}
}

func TestGateProvisionRejectsBadLoginURL(t *testing.T) {
	g := &Gate{LoginURL: "auth.example.com/login"}
	if err := g.provision(); err == nil {
		t.Error("provision accepted a login_url that is neither absolute nor a path")
	}
}

func TestSameHeaderName(t *testing.T) {
	for _, tc := range []struct {
		name string
		same bool
	}{
		{"X-Kratos-Authenticated-Identity-Id", true},
		{"x-kratos-authenticated-identity-id", true},
		{"X_KRATOS_AUTHENTICATED_IDENTITY_ID", true},
		{"X-Kratos-Authenticated-Identity-Ids", false},
		{"X-Kratos-Authenticated-Identity", false},
		{"X-Kratos-Authenticated-Identity.Id", false},
	} {
		if got := sameHeaderName(tc.name, IdentityHeader); got != tc.same {
			t.Errorf("sameHeaderName(%q) = %v, want %v", tc.name, got, tc.same)
		}
	}
}

// fakeAPI stands in for *flows.Engine in Handler tests.
type fakeAPI struct{ served int }

func (f *fakeAPI) Handles(r *http.Request) bool { return r.URL.Path == "/sessions/whoami" }
func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.served++
	w.WriteHeader(http.StatusUnauthorized)
}

func TestHandlerServesAPIPathsAndPassesOthers(t *testing.T) {
	api := &fakeAPI{}
	h := &Handler{api: api}

	r, _ := caddyRequest(http.MethodGet, "http://auth.example.com/sessions/whoami")
	next := &nextRecorder{}
	if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if api.served != 1 || next.called {
		t.Errorf("API path: served=%d next=%v, want served=1 next=false", api.served, next.called)
	}

	r, _ = caddyRequest(http.MethodGet, "http://auth.example.com/app")
	next = &nextRecorder{}
	if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if api.served != 1 || !next.called {
		t.Errorf("other path: served=%d next=%v, want served=1 next=true", api.served, next.called)
	}
}

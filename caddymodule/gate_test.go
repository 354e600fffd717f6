package caddymodule

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

// fakeAuth stands in for *flows.Engine so the gate is tested without a
// store.
type fakeAuth struct {
	info   *flows.SessionInfo
	err    error
	calls  int
	policy flows.GatePolicy
	traits map[string]any
}

func (f *fakeAuth) CheckGate(_ http.ResponseWriter, _ *http.Request, p flows.GatePolicy, out *flows.GateSession) error {
	f.calls++
	f.policy = p
	if f.err != nil {
		return f.err
	}
	*out = flows.GateSession{SessionID: f.info.SessionID, IdentityID: f.info.IdentityID, AAL: f.info.AAL, ExpiresAt: f.info.ExpiresAt}
	return nil
}

func (f *fakeAuth) LoginBrowserURL(_ *http.Request, returnTo string) string {
	return "https://auth.example.com/self-service/login/browser?return_to=" + url.QueryEscape(returnTo)
}

func (f *fakeAuth) AAL2LoginURL(_ *http.Request, returnTo string) string {
	return "https://auth.example.com/self-service/login/browser?aal=aal2&return_to=" + url.QueryEscape(returnTo)
}

func (f *fakeAuth) SettingsBrowserURL(_ *http.Request, returnTo string) string {
	return "https://auth.example.com/self-service/settings/browser?return_to=" + url.QueryEscape(returnTo)
}

func (f *fakeAuth) Traits(*flows.GateSession) (map[string]any, error) { return f.traits, nil }

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
	// The non-canonical key is the point: CGI/FastCGI read "_" as "-".
	underscore := strings.ReplaceAll(IdentityHeader, "-Id", "_Id")
	if _, ok := next.req.Header[underscore]; ok {
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

func TestGateMethodsPassWithoutSessionAndStripMappedHeaders(t *testing.T) {
	auth := &fakeAuth{err: flows.ErrNoSession}
	g := newGate(t, &Gate{Methods: []string{"options"}, Headers: map[string]string{"X-User-Email": "{kratos.identity.traits.email}"},
		Assertion: &GateAssertion{}}, auth)
	r, _ := caddyRequest(http.MethodOptions, "http://app.example.com/api")
	r.Header.Set("Origin", "https://spa.example.com")
	r.Header.Set("Access-Control-Request-Method", "PUT")
	r.Header.Set("X-User-Email", "forged@example.com")
	r.Header["X_user_email"] = []string{"forged"}
	r.Header.Set(DefaultAssertionHeader, "forged.jwt")
	next := &nextRecorder{}
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	if !next.called || auth.calls != 0 {
		t.Fatalf("OPTIONS: next %v, session checks %d", next.called, auth.calls)
	}
	for k := range next.req.Header {
		if sameHeaderName(k, "X-User-Email") || sameHeaderName(k, DefaultAssertionHeader) {
			t.Errorf("client-sent %s reached next", k)
		}
	}
	r, _ = caddyRequest(http.MethodGet, "http://app.example.com/api")
	r.Header.Set("Accept", "application/json")
	if err := g.ServeHTTP(httptest.NewRecorder(), r, &nextRecorder{}); err != nil || auth.calls != 1 {
		t.Errorf("GET was not checked: %v, %d", err, auth.calls)
	}
}

func TestGateHeadersAndPlaceholders(t *testing.T) {
	exp := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	auth := &fakeAuth{info: &flows.SessionInfo{IdentityID: "ident-1", SessionID: "sess-1", AAL: "aal2", ExpiresAt: exp},
		traits: map[string]any{"email": "a@example.com", "name": map[string]any{"first": "Ada"}, "age": json.Number("42")}}
	g := newGate(t, &Gate{Headers: map[string]string{
		"X-User-Email": "{kratos.identity.traits.email}",
		"x-user":       "{kratos.identity.traits.name.first} on {http.request.host} ({kratos.session.aal})",
		"X-Age":        "{kratos.identity.traits.age}",
		"X-Missing":    "{kratos.identity.traits.nope}",
		"X-Expires":    "{kratos.session.expires_at}",
	}}, auth)
	r, repl := caddyRequest(http.MethodGet, "http://app.example.com/private")
	repl.Set("http.request.host", "app.example.com")
	r.Header.Set("X-User", "forged")
	next := &nextRecorder{}
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
		t.Fatal(err)
	}
	h := next.req.Header
	for name, want := range map[string]string{
		"X-User-Email": "a@example.com",
		"X-User":       "Ada on app.example.com (aal2)",
		"X-Age":        "42",
		"X-Expires":    "2031-01-02T03:04:05Z",
	} {
		if got := h.Values(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want [%q]", name, got, want)
		}
	}
	if _, ok := h["X-Missing"]; ok {
		t.Error("a header with an empty value was set")
	}
	for key, want := range map[string]string{
		"kratos.session.id":                 "sess-1",
		"kratos.session.methods":            "",
		"kratos.identity.traits.name.first": "Ada",
		"kratos.identity.traits.name":       `{"first":"Ada"}`,
	} {
		if got, ok := repl.GetString(key); !ok || got != want {
			t.Errorf("{%s} = %q (%v), want %q", key, got, ok, want)
		}
	}
	if _, ok := repl.Get("kratos.unknown"); ok {
		t.Error("unknown kratos placeholder resolved")
	}
}

func TestGateAALPolicyAndOnUnauthenticated(t *testing.T) {
	for _, tc := range []struct {
		name, mode, accept string
		err                error
		status             int
		location           string
	}{
		{"setup, browser", "", "text/html", flows.ErrAAL2SetupRequired, http.StatusSeeOther, "/self-service/settings/browser?"},
		{"setup, API", "", "application/json", flows.ErrAAL2SetupRequired, http.StatusForbidden, ""},
		{"aal2, browser", "", "text/html", flows.ErrAAL2Required, http.StatusSeeOther, "aal=aal2"},
		{"aal2, forced 401", "401", "text/html", flows.ErrAAL2Required, http.StatusForbidden, ""},
		{"no session, forced 401", "401", "text/html", flows.ErrNoSession, http.StatusUnauthorized, ""},
		{"no session, forced redirect", "redirect", "application/json", flows.ErrNoSession, http.StatusSeeOther, "/self-service/login/browser?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := &fakeAuth{err: tc.err}
			g := newGate(t, &Gate{RequiredAAL: "aal2", OnUnauthenticated: tc.mode}, auth)
			r, _ := caddyRequest(http.MethodGet, "http://app.example.com/admin")
			r.Header.Set("Accept", tc.accept)
			w := httptest.NewRecorder()
			next := &nextRecorder{}
			if err := g.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			if auth.policy.RequiredAAL != "aal2" {
				t.Errorf("policy %+v", auth.policy)
			}
			if w.Code != tc.status || next.called {
				t.Fatalf("status %d (next %v), want %d", w.Code, next.called, tc.status)
			}
			if loc := w.Header().Get("Location"); !strings.Contains(loc, tc.location) || (tc.location == "") != (loc == "") {
				t.Errorf("Location %q, want it to contain %q", loc, tc.location)
			}
			if tc.status == http.StatusForbidden {
				var body struct {
					Error    struct{ ID string } `json:"error"`
					Redirect string              `json:"redirect_browser_to"`
				}
				_ = json.Unmarshal(w.Body.Bytes(), &body)
				if body.Error.ID != "session_aal2_required" || body.Redirect == "" {
					t.Errorf("403 body %s", w.Body)
				}
				if tc.err == flows.ErrAAL2SetupRequired && !strings.Contains(body.Redirect, "/self-service/settings/browser") {
					t.Errorf("setup redirect_browser_to %q", body.Redirect)
				}
			}
		})
	}
}

func TestGateProvisionRejectsBadOptions(t *testing.T) {
	for name, g := range map[string]*Gate{
		"aal":              {RequiredAAL: "aal3"},
		"mode":             {OnUnauthenticated: "403"},
		"method":           {Methods: []string{"GET POST"}},
		"header name":      {Headers: map[string]string{"X User": "x"}},
		"identity header":  {Headers: map[string]string{"x_kratos_authenticated_identity_id": "x"}},
		"cookie header":    {Headers: map[string]string{"Cookie": "x"}},
		"assertion clash":  {Headers: map[string]string{"X-Kratos-Assertion": "x"}, Assertion: &GateAssertion{}},
		"assertion traits": {Assertion: &GateAssertion{Traits: []string{"name..first"}}},
	} {
		if err := g.provision(); err == nil {
			t.Errorf("%s: provision accepted %+v", name, g)
		}
	}
}

func TestSinglePlaceholder(t *testing.T) {
	for v, want := range map[string]string{"{kratos.session.id}": "kratos.session.id", "{a}{b}": "", "x{a}": "", "{}": "", "{a\\}}": ""} {
		if got, _ := singlePlaceholder(v); got != want {
			t.Errorf("%q: %q, want %q", v, got, want)
		}
	}
}

func TestGateOptionsPassesOnlyAsPreflight(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		passes bool
	}{
		{"plain OPTIONS", nil, false},
		{"Origin only", map[string]string{"Origin": "https://spa.example.com"}, false},
		{"request method only", map[string]string{"Access-Control-Request-Method": "GET"}, false},
		{"preflight", map[string]string{"Origin": "https://spa.example.com", "Access-Control-Request-Method": "GET"}, true},
		{"preflight with method override", map[string]string{"Origin": "https://spa.example.com", "Access-Control-Request-Method": "GET",
			"X-HTTP-Method-Override": "DELETE"}, false},
		{"preflight with X_Method_Override", map[string]string{"Origin": "https://spa.example.com", "Access-Control-Request-Method": "GET",
			"X_Method_Override": "DELETE"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := &fakeAuth{err: flows.ErrNoSession}
			g := newGate(t, &Gate{Methods: []string{"OPTIONS", "HEAD"}}, auth)
			r, _ := caddyRequest(http.MethodOptions, "http://app.example.com/api")
			r.Header.Set("Accept", "application/json")
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			next := &nextRecorder{}
			w := httptest.NewRecorder()
			if err := g.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			if next.called != tc.passes {
				t.Errorf("passed without a session = %v, want %v", next.called, tc.passes)
			}
			if !tc.passes && w.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", w.Code)
			}
		})
	}
	// Other listed methods pass as before, unless they ask to be taken as
	// another method.
	auth := &fakeAuth{err: flows.ErrNoSession}
	g := newGate(t, &Gate{Methods: []string{"OPTIONS", "HEAD"}}, auth)
	r, _ := caddyRequest(http.MethodHead, "http://app.example.com/api")
	next := &nextRecorder{}
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil || !next.called || auth.calls != 0 {
		t.Errorf("HEAD: next %v, checks %d, err %v", next.called, auth.calls, err)
	}
	for _, target := range []string{"http://app.example.com/api?_method=DELETE", "http://app.example.com/api?a=1"} {
		r, _ = caddyRequest(http.MethodHead, target)
		if strings.HasSuffix(target, "a=1") {
			r.Header.Set("X-Http-Method", "POST")
		}
		next = &nextRecorder{}
		if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil || next.called {
			t.Errorf("HEAD %s with a method override passed: %v", target, err)
		}
	}
	// A preflight with a body is not one.
	r, _ = caddyRequest(http.MethodOptions, "http://app.example.com/api")
	r.Header.Set("Origin", "https://spa.example.com")
	r.Header.Set("Access-Control-Request-Method", "GET")
	r.ContentLength = 9
	next = &nextRecorder{}
	if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil || next.called {
		t.Errorf("preflight with a body passed: %v", err)
	}
}

func TestPlainPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/":                      true,
		"/static/app.js":         true,
		"//static/x":             true,
		"/static/a%20b.js":       true,
		"/static/%E2%9C%93.png":  true,
		"/a/b.c/d":               true,
		"/static/x~1,@!$&'()*+=": true,
		"":                       false,
		"static/x":               false,
		"/static/../admin":       false,
		"/static/./x":            false,
		"/static/..":             false,
		"/static/.":              false,
		"/static/x/..":           false,
		"/..":                    false,
		"/admin/..%2fstatic":     false,
		"/admin/..%2Fstatic":     false,
		"/admin/%2e%2e/static":   false,
		"/admin/%2E./static":     false,
		"/admin/x%2ecss":         false,
		"/admin/..%5cstatic":     false,
		"/admin/..\\static":      false,
		"/admin/x;.css":          false,
		"/admin/x%3b.css":        false,
		"/admin/x%3f.css":        false,
		"/admin/x%3F.css":        false,
		"/admin/x%23.css":        false,
		"/admin/x%00.css":        false,
		"/admin/x%0a.css":        false,
		"/admin/x%7f.css":        false,
		"/admin/x%252f":          false,
		"/admin/x%2":             false,
		"/admin/x%zz":            false,
		"/admin./x.css":          false,
		"/admin/x.":              false,
		"/admin%20/x.css":        false,
		"/admin/x%20":            false,
	} {
		if got := plainPath(p); got != want {
			t.Errorf("plainPath(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestGateAllowMatchesTheEscapedPath(t *testing.T) {
	for _, tc := range []struct {
		target  string
		allowed bool
	}{
		{"/static/app.js", true},
		{"/theme/site.css", true},
		{"/static/%E2%9C%93.png", true},
		{"/admin/../static/x", false},
		{"/admin/..%2fstatic/x", false},
		{"/admin/%2e%2e/static/x", false},
		{"/admin/secret;.css", false},
		{"/admin/secret%3f.css", false},
		{"/static/..%252fadmin", false},
		{"/static/..%c0%afadmin", false},
	} {
		t.Run(tc.target, func(t *testing.T) {
			auth := &fakeAuth{err: flows.ErrNoSession}
			g := newGate(t, &Gate{Allow: []string{"/static/*", "*.css"}}, auth)
			r, _ := caddyRequest(http.MethodGet, "http://app.example.com/")
			u, err := url.ParseRequestURI(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			r.URL.Path, r.URL.RawPath = u.Path, u.RawPath
			r.Header.Set("Accept", "application/json")
			next := &nextRecorder{}
			if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
				t.Fatal(err)
			}
			if next.called != tc.allowed {
				t.Errorf("%s: allowed without a session = %v, want %v", tc.target, next.called, tc.allowed)
			}
		})
	}
}

func TestStripConnectionTokens(t *testing.T) {
	names := newHeaderSet(IdentityHeader, "X-User-Email")
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{"keep-alive"}, []string{"keep-alive"}},
		{[]string{"X-Kratos-Authenticated-Identity-Id"}, nil},
		{[]string{"keep-alive, x-kratos-authenticated-identity-id ,Upgrade"}, []string{"keep-alive, Upgrade"}},
		{[]string{"X_User_Email,\tX-Other", "close", "X-KRATOS-AUTHENTICATED-IDENTITY-ID"}, []string{"X-Other", "close"}},
		{[]string{" , X-User-Email ,, "}, nil},
	} {
		h := http.Header{}
		if tc.in != nil {
			h["Connection"] = append([]string(nil), tc.in...)
		}
		stripConnectionTokens(h, &names)
		if got := h["Connection"]; strings.Join(got, "|") != strings.Join(tc.want, "|") || (tc.want == nil) != (got == nil) {
			t.Errorf("Connection %q → %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStripCredentials(t *testing.T) {
	h := http.Header{
		"X-Session-Token": {"ory_st_abc"},
		"X_session_token": {"ory_st_abc"},
		"Cookie":          {"a=1; ory_kratos_session=sealed; b=2", "ory_kratos_session=again", "ory_kratos_session_x=keep"},
		"Authorization":   {"Bearer ory_st_0123456789abcdef", "bearer  ory_st_x", "Bearer app-token", "Basic dXNlcjpwdw=="},
		"X-Other":         {"kept"},
	}
	stripCredentials(h, "ory_kratos_session")
	want := http.Header{
		"Cookie":        {"a=1; b=2", "ory_kratos_session_x=keep"},
		"Authorization": {"Bearer app-token", "Basic dXNlcjpwdw=="},
		"X-Other":       {"kept"},
	}
	if !equalHeaders(h, want) {
		t.Errorf("after stripCredentials:\n%v\nwant\n%v", h, want)
	}

	h = http.Header{"Cookie": {"ory_kratos_session=x"}, "Authorization": {"Bearer ory_st_x"}}
	stripCredentials(h, "ory_kratos_session")
	if len(h) != 0 {
		t.Errorf("headers left: %v", h)
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, "\x00") != strings.Join(b[k], "\x00") || len(v) != len(b[k]) {
			return false
		}
	}
	return true
}

func TestGateStripCredentialsOnEveryPassedRequest(t *testing.T) {
	creds := func(r *http.Request) {
		r.Header.Set("X-Session-Token", "ory_st_0123456789abcdef")
		r.Header.Set("Cookie", "theme=dark; ory_kratos_session=sealed")
		r.Header.Set("Authorization", "Bearer ory_st_0123456789abcdef")
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		strip  bool
	}{
		{"session", http.MethodGet, "/private", true},
		{"allowed path", http.MethodGet, "/static/x.js", true},
		{"preflight", http.MethodOptions, "/private", true},
		{"off", http.MethodGet, "/private", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := &fakeAuth{info: &flows.SessionInfo{IdentityID: "id-1"}}
			g := newGate(t, &Gate{Allow: []string{"/static/*"}, Methods: []string{"OPTIONS"}, StripCredentials: tc.strip}, auth)
			g.cookie = "ory_kratos_session"
			r, _ := caddyRequest(tc.method, "http://app.example.com"+tc.path)
			creds(r)
			r.Header.Set("Origin", "https://spa.example.com")
			r.Header.Set("Access-Control-Request-Method", "GET")
			next := &nextRecorder{}
			if err := g.ServeHTTP(httptest.NewRecorder(), r, next); err != nil || !next.called {
				t.Fatalf("next %v, err %v", next.called, err)
			}
			h := next.req.Header
			if tc.strip {
				if h.Get("X-Session-Token") != "" || h.Get("Authorization") != "" || h.Get("Cookie") != "theme=dark" {
					t.Errorf("credentials reached next: %v", h)
				}
			} else if h.Get("X-Session-Token") == "" || h.Get("Authorization") == "" || h.Get("Cookie") != "theme=dark; ory_kratos_session=sealed" {
				t.Errorf("strip_credentials off changed the credentials: %v", h)
			}
		})
	}
}

func TestGateAssertionAudienceJSON(t *testing.T) {
	for raw, want := range map[string]string{
		`{"assertion":{"audience":"https://app.example.com"}}`:             "https://app.example.com",
		`{"assertion":{"audience":["https://app.example.com","billing"]}}`: "https://app.example.com,billing",
	} {
		var g Gate
		if err := json.Unmarshal([]byte(raw), &g); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := strings.Join(g.Assertion.Audience, ","); got != want {
			t.Errorf("%s: audience %q, want %q", raw, got, want)
		}
	}
	g := &Gate{Assertion: &GateAssertion{Audience: []string{"app", ""}}}
	if err := g.provision(); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Errorf("empty audience: %v", err)
	}
}

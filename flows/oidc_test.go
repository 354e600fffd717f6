package flows

import (
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider/oidctest"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
)

// oidcEngine serves an engine with one generic provider "idp" on an
// in-process OpenID provider.
func oidcEngine(t *testing.T, mod func(*Config)) (*Engine, *httptest.Server, *oidctest.Server) {
	t.Helper()
	idp := oidctest.New()
	t.Cleanup(idp.Close)
	e, srv := testEngine(t, func(c *Config) {
		c.Methods = map[string]bool{"oidc": true}
		c.RegistrationStyle = "unified"
		c.OIDCProviders = []provider.Config{{ID: "idp", Provider: "generic", Label: "Test IdP", ClientID: idp.ClientID,
			ClientSecret: idp.ClientSecret, IssuerURL: idp.Issuer}}
		if mod != nil {
			mod(c)
		}
	})
	return e, srv, idp
}

// browser is a client with a cookie jar that does not follow redirects.
func oidcBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// csrfOf is a flow's csrf_token node value.
func csrfOf(body map[string]any) string {
	return oidcNode(body, "csrf_token")
}

func oidcNode(body map[string]any, name string) string {
	ui, _ := body["ui"].(map[string]any)
	nodes, _ := ui["nodes"].([]any)
	for _, n := range nodes {
		a := n.(map[string]any)["attributes"].(map[string]any)
		if a["name"] == name {
			s, _ := a["value"].(string)
			return s
		}
	}
	return ""
}

// startSocial creates a browser flow of kind and submits the provider
// button (JSON): the answer must be 422 browser_location_change_required.
// It returns the provider's authorization URL and the flow.
func startSocial(t *testing.T, c *http.Client, srv *httptest.Server, kind string, extra map[string]any) (string, map[string]any) {
	t.Helper()
	f := do(t, c, "GET", srv.URL+"/self-service/"+kind+"/browser", nil, nil)
	if f.status != 200 {
		t.Fatalf("create %s: %d %s", kind, f.status, f.raw)
	}
	body := map[string]any{"method": "oidc", "provider": "idp", "csrf_token": csrfOf(f.body)}
	for k, v := range extra {
		body[k] = v
	}
	r := do(t, c, "POST", f.body["ui"].(map[string]any)["action"].(string), body, nil)
	if r.status != 422 || errorID(r.body) != "browser_location_change_required" {
		t.Fatalf("submit provider: %d %s", r.status, r.raw)
	}
	to, _ := r.body["redirect_browser_to"].(string)
	if !strings.HasPrefix(to, "http") {
		t.Fatalf("redirect_browser_to %q", to)
	}
	return to, f.body
}

// callback plays the provider (authorize) and returns the callback URL.
func callbackURL(t *testing.T, idp *oidctest.Server, srv *httptest.Server, authURL string) string {
	t.Helper()
	q, err := idp.Authorize(authURL)
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL + "/self-service/methods/oidc/callback/idp?" + q.Encode()
}

// flowOf follows a 303 to a flow's page: the flow, as the page reads it.
func flowOf(t *testing.T, c *http.Client, srv *httptest.Server, r resp) resp {
	t.Helper()
	if r.status != 303 {
		t.Fatalf("want a 303 to a flow page: %d %s", r.status, r.raw)
	}
	u, err := url.Parse(r.header.Get("Location"))
	if err != nil || u.Query().Get("flow") == "" {
		t.Fatalf("location %q", r.header.Get("Location"))
	}
	kind := strings.TrimPrefix(u.Path, "/ui/")
	return do(t, c, "GET", srv.URL+"/self-service/"+kind+"/flows?id="+u.Query().Get("flow"), nil, nil)
}

func whoami(t *testing.T, c *http.Client, srv *httptest.Server) resp {
	t.Helper()
	return do(t, c, "GET", srv.URL+"/sessions/whoami", nil, nil)
}

func TestOIDCSignUpThenSignIn(t *testing.T) {
	e, srv, idp := oidcEngine(t, nil)
	c := oidcBrowser()
	// The login flow shows the default group (csrf_token, identifier),
	// then the provider's button before the other methods, group oidc.
	f := do(t, c, "GET", srv.URL+"/self-service/login/browser", nil, nil)
	nodes := f.body["ui"].(map[string]any)["nodes"].([]any)
	btn := nodes[2].(map[string]any)
	attrs := btn["attributes"].(map[string]any)
	if btn["group"] != "oidc" || attrs["name"] != "provider" || attrs["value"] != "idp" || attrs["type"] != "submit" {
		t.Fatalf("first node after csrf: %v", btn)
	}
	label := btn["meta"].(map[string]any)["label"].(map[string]any)
	if label["id"].(float64) != 1010002 || label["text"] != "Sign in with Test IdP" {
		t.Fatalf("label %v", label)
	}

	auth, _ := startSocial(t, c, srv, "login", nil)
	cb := callbackURL(t, idp, srv, auth)
	r := do(t, c, "GET", cb, nil, map[string]string{"Accept": "text/html"})
	if r.status != 303 {
		t.Fatalf("callback: %d %s", r.status, r.raw)
	}
	w := whoami(t, c, srv)
	if w.status != 200 {
		t.Fatalf("whoami after sign-up: %d %s", w.status, w.raw)
	}
	ams := w.body["authentication_methods"].([]any)
	am := ams[0].(map[string]any)
	if am["method"] != "oidc" || am["provider"] != "idp" || am["aal"] != "aal1" {
		t.Fatalf("authentication_methods %v", ams)
	}
	ident := w.body["identity"].(map[string]any)
	traits := ident["traits"].(map[string]any)
	if traits["email"] != "user@example.com" {
		t.Fatalf("traits %v", traits)
	}
	va := ident["verifiable_addresses"].([]any)[0].(map[string]any)
	if va["verified"] != true || va["status"] != "completed" {
		t.Fatalf("the provider's verified email is not verified: %v", va)
	}
	// The credential: provider:subject, the tokens sealed at rest.
	stored, err := e.store.FindIdentityByCredential(t.Context(), "oidc", "idp:user-1")
	if err != nil || stored.ID != ident["id"] {
		t.Fatalf("credential lookup: %v %v", stored, err)
	}
	cfg := string(stored.Credentials["oidc"].Config)
	if !strings.Contains(cfg, `"provider":"idp"`) || !strings.Contains(cfg, `"subject":"user-1"`) || strings.Contains(cfg, "eyJ") {
		t.Fatalf("stored config (tokens must be sealed): %s", cfg)
	}
	// The admin API shows them opened with include_credential=oidc, as
	// Kratos does, and not at all without it.
	adm := httptest.NewServer(e.AdminHandler())
	defer adm.Close()
	g := do(t, nil, "GET", adm.URL+"/admin/identities/"+stored.ID+"?include_credential=oidc", nil, nil)
	prov := g.body["credentials"].(map[string]any)["oidc"].(map[string]any)["config"].(map[string]any)["providers"].([]any)[0].(map[string]any)
	if tok, _ := prov["initial_id_token"].(string); !strings.HasPrefix(tok, "eyJ") || prov["subject"] != "user-1" {
		t.Fatalf("admin credential: %s", g.raw)
	}
	if g := do(t, nil, "GET", adm.URL+"/admin/identities/"+stored.ID, nil, nil); strings.Contains(string(g.raw), "initial_id_token") {
		t.Fatalf("tokens without include_credential: %s", g.raw)
	}

	// A replayed callback finds nothing: 400, no second session.
	if r := do(t, c, "GET", cb, nil, nil); r.status != 400 {
		t.Fatalf("replayed callback: %d %s", r.status, r.raw)
	}

	// Signing in again from another browser finds the same identity.
	c2 := oidcBrowser()
	auth, _ = startSocial(t, c2, srv, "login", nil)
	if r := do(t, c2, "GET", callbackURL(t, idp, srv, auth), nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
		t.Fatalf("second sign-in: %d %s", r.status, r.raw)
	}
	w2 := whoami(t, c2, srv)
	if w2.status != 200 || w2.body["identity"].(map[string]any)["id"] != ident["id"] {
		t.Fatalf("second sign-in whoami: %d %s", w2.status, w2.raw)
	}
	ids, _, _ := e.store.ListIdentities(t.Context(), "", 100)
	if len(ids) != 1 {
		t.Fatalf("%d identities, want 1", len(ids))
	}
}

// A callback is bound to the browser that started it and to its state.
func TestOIDCCallbackBinding(t *testing.T) {
	_, srv, idp := oidcEngine(t, nil)
	c := oidcBrowser()
	auth, _ := startSocial(t, c, srv, "login", nil)
	cb := callbackURL(t, idp, srv, auth)

	// Another browser (no continuity cookie): refused, flow untouched.
	if r := do(t, oidcBrowser(), "GET", cb, nil, nil); r.status != 400 || !strings.Contains(string(r.raw), "does not belong") {
		t.Fatalf("other browser: %d %s", r.status, r.raw)
	}
	// A forged state (same flow, other secret): refused.
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("state", strings.SplitN(q.Get("state"), ".", 2)[0]+".forged")
	u.RawQuery = q.Encode()
	if r := do(t, c, "GET", u.String(), nil, nil); r.status != 400 {
		t.Fatalf("forged state: %d %s", r.status, r.raw)
	}
	// The real callback still works.
	if r := do(t, c, "GET", cb, nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
		t.Fatalf("real callback after the attempts: %d %s", r.status, r.raw)
	}
	if w := whoami(t, c, srv); w.status != 200 {
		t.Fatalf("whoami: %d", w.status)
	}
}

// A wrong nonce in the ID token, the provider down, or a user who denies
// access: the flow comes back with a message, never a 5xx, nothing made.
func TestOIDCProviderFailures(t *testing.T) {
	e, srv, idp := oidcEngine(t, nil)
	for _, tc := range []struct {
		name   string
		set    func(s *oidctest.Server)
		reason string
	}{
		{"wrong nonce", func(s *oidctest.Server) { s.MutateIDToken = func(m map[string]any) { m["nonce"] = "other" } }, "could not be verified"},
		{"denied", func(s *oidctest.Server) { s.Deny = true }, "did not sign you in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := oidcBrowser()
			auth, _ := startSocial(t, c, srv, "login", nil)
			cb := callbackURL(t, idp, srv, auth)
			idp.Set(tc.set)
			defer idp.Set(func(s *oidctest.Server) { s.MutateIDToken, s.Deny = nil, false })
			if tc.name == "denied" {
				// The provider sends the browser back with error=access_denied.
				u, _ := url.Parse(cb)
				q := u.Query()
				q.Del("code")
				q.Set("error", "access_denied")
				u.RawQuery = q.Encode()
				cb = u.String()
			}
			r := flowOf(t, c, srv, do(t, c, "GET", cb, nil, nil))
			if r.status != 200 || !contains(messageIDs(r.body), 4000001) || !strings.Contains(string(r.raw), tc.reason) {
				t.Fatalf("%s: %d %s", tc.name, r.status, r.raw)
			}
			if w := whoami(t, c, srv); w.status != 401 {
				t.Fatalf("session after %s: %d", tc.name, w.status)
			}
		})
	}
	// The provider down when the button is pressed (discovery fails): 400
	// with the flow.
	_, srv, idp = oidcEngine(t, nil)
	idp.Set(func(s *oidctest.Server) { s.Down = true })
	c := oidcBrowser()
	f := do(t, c, "GET", srv.URL+"/self-service/login/browser", nil, nil)
	r := do(t, c, "POST", f.body["ui"].(map[string]any)["action"].(string),
		map[string]any{"method": "oidc", "provider": "idp", "csrf_token": csrfOf(f.body)}, nil)
	if r.status != 400 || !strings.Contains(string(r.raw), "unavailable") {
		t.Fatalf("provider down: %d %s", r.status, r.raw)
	}
	// An unknown provider: Kratos's reason.
	r = do(t, c, "POST", f.body["ui"].(map[string]any)["action"].(string),
		map[string]any{"method": "oidc", "provider": "nope", "csrf_token": csrfOf(f.body)}, nil)
	if r.status != 400 || !strings.Contains(string(r.raw), `OpenID Connect Provider \"nope\" is unknown`) {
		t.Fatalf("unknown provider: %d %s", r.status, r.raw)
	}
	if ids, _, _ := e.store.ListIdentities(t.Context(), "", 10); len(ids) != 0 {
		t.Fatalf("%d identities after failures", len(ids))
	}
}

// A provider that does not give the schema's required email: the
// registration flow comes back with the traits it had and the missing one
// to complete; completing it signs up.
func TestOIDCMissingTraits(t *testing.T) {
	_, srv, idp := oidcEngine(t, nil)
	idp.SetUser(map[string]any{"sub": "no-mail", "given_name": "Grace", "family_name": "Hopper"})
	c := oidcBrowser()
	auth, _ := startSocial(t, c, srv, "registration", nil)
	r := flowOf(t, c, srv, do(t, c, "GET", callbackURL(t, idp, srv, auth), nil, nil))
	if r.status != 200 {
		t.Fatalf("callback without email: %d %s", r.status, r.raw)
	}
	if oidcNode(r.body, "traits.name.first") != "Grace" {
		t.Fatalf("traits not filled: %s", r.raw)
	}
	if !strings.Contains(string(r.raw), `"id":4000002`) {
		t.Fatalf("no missing-property message: %s", r.raw)
	}
	// Kratos's shape: the traits in the oidc group with the provider's
	// button labelled "Continue", so one form posts both.
	var groups []string
	for _, n := range r.body["ui"].(map[string]any)["nodes"].([]any) {
		nd := n.(map[string]any)
		a := nd["attributes"].(map[string]any)
		switch a["name"] {
		case "traits.email":
			groups = append(groups, nd["group"].(string))
		case "provider":
			if nd["group"] != "oidc" || nd["meta"].(map[string]any)["label"].(map[string]any)["id"].(float64) != 1040003 {
				t.Fatalf("provider node %v", nd)
			}
			groups = append(groups, "button")
		}
	}
	if strings.Join(groups, ",") != "oidc,button" {
		t.Fatalf("trait and button nodes: %v in %s", groups, r.raw)
	}
	// Complete the email and press the provider's button again.
	body := map[string]any{"method": "oidc", "provider": "idp", "csrf_token": csrfOf(r.body),
		"traits": map[string]any{"email": "grace@example.com", "name": map[string]any{"first": "Grace"}}}
	s := do(t, c, "POST", r.body["ui"].(map[string]any)["action"].(string), body, nil)
	if s.status != 422 {
		t.Fatalf("second submit: %d %s", s.status, s.raw)
	}
	cb := callbackURL(t, idp, srv, s.body["redirect_browser_to"].(string))
	if r := do(t, c, "GET", cb, nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
		t.Fatalf("completed sign-up: %d %s", r.status, r.raw)
	}
	w := whoami(t, c, srv)
	if w.status != 200 || w.body["identity"].(map[string]any)["traits"].(map[string]any)["email"] != "grace@example.com" {
		t.Fatalf("whoami: %d %s", w.status, w.raw)
	}
}

// A provider account whose email belongs to a password account is never
// merged silently: the user signs in to that account on a linking login
// flow, and only then is the provider linked.
func TestOIDCAccountLinking(t *testing.T) {
	e, srv, idp := oidcEngine(t, nil)
	pw := "Gx7!qVt2#pLr9$wZk4"
	reg := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
	if r := do(t, nil, "POST", reg.body["ui"].(map[string]any)["action"].(string),
		map[string]any{"method": "password", "password": pw, "traits": map[string]any{"email": "user@example.com"}}, nil); r.status != 200 {
		t.Fatalf("password sign-up: %d %s", r.status, r.raw)
	}
	c := oidcBrowser()
	auth, _ := startSocial(t, c, srv, "login", nil)
	r := flowOf(t, c, srv, do(t, c, "GET", callbackURL(t, idp, srv, auth), nil, nil))
	if r.status != 200 || !contains(messageIDs(r.body), 1010016) || r.body["active"] != "oidc" {
		t.Fatalf("linking flow: %d %s", r.status, r.raw)
	}
	if oidcNode(r.body, "identifier") != "user@example.com" {
		t.Fatalf("identifier node: %s", r.raw)
	}
	if w := whoami(t, c, srv); w.status != 401 {
		t.Fatalf("signed in before proving the account: %d", w.status)
	}
	if _, err := e.store.FindIdentityByCredential(t.Context(), "oidc", "idp:user-1"); err == nil {
		t.Fatal("linked before the password was checked")
	}
	action := r.body["ui"].(map[string]any)["action"].(string)
	// A wrong password links nothing.
	if r := do(t, c, "POST", action, map[string]any{"method": "password", "identifier": "user@example.com", "password": "wrong-password-1",
		"csrf_token": csrfOf(r.body)}, nil); r.status != 400 {
		t.Fatalf("wrong password: %d %s", r.status, r.raw)
	}
	ok := do(t, c, "POST", action, map[string]any{"method": "password", "identifier": "user@example.com", "password": pw,
		"csrf_token": csrfOf(r.body)}, nil)
	if ok.status != 200 {
		t.Fatalf("password on the linking flow: %d %s", ok.status, ok.raw)
	}
	ams := ok.body["session"].(map[string]any)["authentication_methods"].([]any)
	if len(ams) != 2 || ams[1].(map[string]any)["provider"] != "idp" {
		t.Fatalf("session methods %v", ams)
	}
	linked, err := e.store.FindIdentityByCredential(t.Context(), "oidc", "idp:user-1")
	if err != nil || linked.Traits == nil {
		t.Fatalf("not linked: %v", err)
	}
	// From now on the provider signs in to that account directly.
	c2 := oidcBrowser()
	auth, _ = startSocial(t, c2, srv, "login", nil)
	if r := do(t, c2, "GET", callbackURL(t, idp, srv, auth), nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
		t.Fatalf("sign-in after linking: %d %s", r.status, r.raw)
	}
	if w := whoami(t, c2, srv); w.status != 200 || w.body["identity"].(map[string]any)["id"] != linked.ID {
		t.Fatalf("whoami after linking: %d %s", w.status, w.raw)
	}
}

// Settings: link needs a privileged session and a trip to the provider;
// unlink is refused on the last way to sign in; a provider account of
// another identity is not linked (4000027).
func TestOIDCSettingsLinkUnlink(t *testing.T) {
	_, srv, idp := oidcEngine(t, nil)
	pw := "Gx7!qVt2#pLr9$wZk4"
	c := oidcBrowser()
	f := do(t, c, "GET", srv.URL+"/self-service/registration/browser", nil, nil)
	if r := do(t, c, "POST", f.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "password", "password": pw,
		"csrf_token": csrfOf(f.body), "traits": map[string]any{"email": "ada@example.com"}}, nil); r.status != 200 {
		t.Fatalf("sign-up: %d %s", r.status, r.raw)
	}
	settings := func() resp {
		s := do(t, c, "GET", srv.URL+"/self-service/settings/browser", nil, nil)
		if s.status != 200 {
			t.Fatalf("settings: %d %s", s.status, s.raw)
		}
		return s
	}
	s := settings()
	if oidcNode(s.body, "link") != "idp" || strings.Contains(string(s.raw), `"name":"unlink"`) {
		t.Fatalf("settings nodes before linking: %s", s.raw)
	}
	r := do(t, c, "POST", s.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "oidc", "link": "idp",
		"csrf_token": csrfOf(s.body)}, nil)
	if r.status != 422 {
		t.Fatalf("link submit: %d %s", r.status, r.raw)
	}
	auth := r.body["redirect_browser_to"].(string)
	if !strings.Contains(auth, "prompt=login") {
		t.Fatalf("a link must make the provider authenticate again: %s", auth)
	}
	done := flowOf(t, c, srv, do(t, c, "GET", callbackURL(t, idp, srv, auth), nil, nil))
	if done.body["state"] != "success" || !contains(messageIDs(done.body), 1050001) {
		t.Fatalf("link callback: %s", done.raw)
	}
	if oidcNode(done.body, "unlink") != "idp" {
		t.Fatalf("no unlink node after linking: %s", done.raw)
	}
	// Unlink, then the provider is gone; unlinking it again is refused.
	s = settings()
	r = do(t, c, "POST", s.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "oidc", "unlink": "idp",
		"csrf_token": csrfOf(s.body)}, nil)
	if r.status != 200 || r.body["state"] != "success" {
		t.Fatalf("unlink: %d %s", r.status, r.raw)
	}
	if oidcNode(r.body, "link") != "idp" {
		t.Fatalf("no link node after unlinking: %s", r.raw)
	}

	// An identity that has only the provider cannot unlink it.
	c2 := oidcBrowser()
	idp.SetUser(map[string]any{"sub": "only-oidc", "email": "only@example.com", "email_verified": true})
	a2, _ := startSocial(t, c2, srv, "registration", nil)
	if r := do(t, c2, "GET", callbackURL(t, idp, srv, a2), nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
		t.Fatalf("oidc sign-up: %d %s", r.status, r.raw)
	}
	s2 := do(t, c2, "GET", srv.URL+"/self-service/settings/browser", nil, nil)
	if strings.Contains(string(s2.raw), `"name":"unlink"`) {
		t.Fatalf("unlink offered on the last credential: %s", s2.raw)
	}
	r = do(t, c2, "POST", s2.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "oidc", "unlink": "idp",
		"csrf_token": csrfOf(s2.body)}, nil)
	if r.status != 400 || !strings.Contains(string(r.raw), "last way to sign in") {
		t.Fatalf("forged unlink of the last credential: %d %s", r.status, r.raw)
	}
	if w := whoami(t, c2, srv); w.status != 200 {
		t.Fatalf("session after refused unlink: %d", w.status)
	}

	// The first user links the provider account of the second: 4000027.
	s = settings()
	r = do(t, c, "POST", s.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "oidc", "link": "idp",
		"csrf_token": csrfOf(s.body)}, nil)
	dup := flowOf(t, c, srv, do(t, c, "GET", callbackURL(t, idp, srv, r.body["redirect_browser_to"].(string)), nil, nil))
	if !contains(messageIDs(dup.body), 4000027) || dup.body["state"] == "success" {
		t.Fatalf("linking another identity's account: %s", dup.raw)
	}
}

// Signing in to another account on a linking flow links nothing (4010009).
func TestOIDCLinkingOtherAccount(t *testing.T) {
	e, srv, idp := oidcEngine(t, nil)
	pw := "Gx7!qVt2#pLr9$wZk4"
	for _, email := range []string{"user@example.com", "other@example.com"} {
		reg := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
		if r := do(t, nil, "POST", reg.body["ui"].(map[string]any)["action"].(string),
			map[string]any{"method": "password", "password": pw, "traits": map[string]any{"email": email}}, nil); r.status != 200 {
			t.Fatalf("password sign-up: %d %s", r.status, r.raw)
		}
	}
	c := oidcBrowser()
	auth, _ := startSocial(t, c, srv, "login", nil)
	lf := flowOf(t, c, srv, do(t, c, "GET", callbackURL(t, idp, srv, auth), nil, nil))
	r := do(t, c, "POST", lf.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "password",
		"identifier": "other@example.com", "password": pw, "csrf_token": csrfOf(lf.body)}, nil)
	if r.status != 400 || !contains(messageIDs(r.body), 4010009) {
		t.Fatalf("other account on the linking flow: %d %s", r.status, r.raw)
	}
	if w := whoami(t, c, srv); w.status != 401 {
		t.Fatalf("session issued: %d", w.status)
	}
	if _, err := e.store.FindIdentityByCredential(t.Context(), "oidc", "idp:user-1"); err == nil {
		t.Fatal("provider linked to some account")
	}
}

// A password sign-up with the address of an account that signs in only
// with a provider gets 4000028 with hints (not a bare 4000007); with
// account enumeration mitigated, the plain 4000007.
func TestOIDCDuplicateHints(t *testing.T) {
	for _, mitigate := range []bool{false, true} {
		_, srv, idp := oidcEngine(t, func(c *Config) { c.MitigateAccountEnumeration = mitigate })
		c := oidcBrowser()
		auth, _ := startSocial(t, c, srv, "registration", nil)
		if r := do(t, c, "GET", callbackURL(t, idp, srv, auth), nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
			t.Fatalf("oidc sign-up: %d %s", r.status, r.raw)
		}
		reg := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
		r := do(t, nil, "POST", reg.body["ui"].(map[string]any)["action"].(string),
			map[string]any{"method": "password", "password": "Gx7!qVt2#pLr9$wZk4", "traits": map[string]any{"email": "user@example.com"}}, nil)
		want := 4000028
		if mitigate {
			want = 4000007
		}
		if r.status != 400 || !contains(messageIDs(r.body), want) {
			t.Fatalf("mitigate=%v: %d %s", mitigate, r.status, r.raw)
		}
		if !mitigate {
			msg := r.body["ui"].(map[string]any)["messages"].([]any)[0].(map[string]any)
			ctx := msg["context"].(map[string]any)
			if !strings.Contains(msg["text"].(string), "social sign in providers: idp") ||
				ctx["available_oidc_providers"].([]any)[0] != "idp" || ctx["credential_identifier_hint"] != "user@example.com" {
				t.Fatalf("hints: %v", msg)
			}
		}
	}
}

// A provider trusted for aal2 (its acr) gives aal2 sessions, which the
// session's required_aal (highest_available) accepts; an untrusted acr
// gives aal1.
func TestOIDCProviderAAL2(t *testing.T) {
	e, srv, idp := oidcEngine(t, func(c *Config) {
		c.OIDCProviders[0].AAL2ACRValues = []string{"urn:mfa"}
	})
	for _, tc := range []struct{ acr, want string }{{"urn:mfa", "aal2"}, {"urn:password", "aal1"}} {
		idp.SetUser(map[string]any{"sub": "u-" + tc.want, "email": tc.want + "@example.com", "email_verified": true, "acr": tc.acr})
		c := oidcBrowser()
		auth, _ := startSocial(t, c, srv, "registration", nil)
		if r := do(t, c, "GET", callbackURL(t, idp, srv, auth), nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
			t.Fatalf("sign-up: %d %s", r.status, r.raw)
		}
		w := whoami(t, c, srv)
		if w.status != 200 || w.body["authenticator_assurance_level"] != tc.want {
			t.Fatalf("acr %s: %d %s", tc.acr, w.status, w.raw)
		}
		am := w.body["authentication_methods"].([]any)[0].(map[string]any)
		if am["aal"] != tc.want || am["provider"] != "idp" {
			t.Fatalf("method %v", am)
		}
		// The gate's required_aal takes the provider's word as configured:
		// aal2 passes; an aal1 session of an account without a second
		// factor must set one up.
		req := httptest.NewRequest("GET", srv.URL+"/app", nil)
		for _, ck := range c.Jar.Cookies(req.URL) {
			req.AddCookie(ck)
		}
		var gs session.GateSession
		err := e.CheckGate(nil, req, session.GatePolicy{RequiredAAL: "aal2"}, &gs)
		if tc.want == "aal2" && err != nil || tc.want == "aal1" && !errors.Is(err, session.ErrAAL2SetupRequired) {
			t.Fatalf("gate with required_aal aal2 on an %s session: %v", tc.want, err)
		}
	}
}

// Re-authenticating (refresh) with the linked provider makes it sign in
// again (prompt=login) and refreshes the session; an account not linked
// to the session is refused.
func TestOIDCRefresh(t *testing.T) {
	_, srv, idp := oidcEngine(t, nil)
	c := oidcBrowser()
	auth, _ := startSocial(t, c, srv, "registration", nil)
	if r := do(t, c, "GET", callbackURL(t, idp, srv, auth), nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
		t.Fatalf("sign-up: %d %s", r.status, r.raw)
	}
	before := whoami(t, c, srv).body["authenticated_at"]
	f := do(t, c, "GET", srv.URL+"/self-service/login/browser?refresh=true", nil, nil)
	if f.status != 200 || oidcNode(f.body, "provider") != "idp" {
		t.Fatalf("refresh flow: %d %s", f.status, f.raw)
	}
	r := do(t, c, "POST", f.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "oidc", "provider": "idp",
		"csrf_token": csrfOf(f.body)}, nil)
	if r.status != 422 || !strings.Contains(r.body["redirect_browser_to"].(string), "prompt=login") {
		t.Fatalf("refresh submit: %d %s", r.status, r.raw)
	}
	if r := do(t, c, "GET", callbackURL(t, idp, srv, r.body["redirect_browser_to"].(string)), nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
		t.Fatalf("refresh callback: %d %s", r.status, r.raw)
	}
	w := whoami(t, c, srv)
	if w.status != 200 || w.body["authenticated_at"] == before || len(w.body["authentication_methods"].([]any)) != 2 {
		t.Fatalf("refreshed session: %s", w.raw)
	}
	// Another provider account cannot refresh this session.
	idp.SetUser(map[string]any{"sub": "someone-else", "email": "else@example.com"})
	f = do(t, c, "GET", srv.URL+"/self-service/login/browser?refresh=true", nil, nil)
	r = do(t, c, "POST", f.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "oidc", "provider": "idp",
		"csrf_token": csrfOf(f.body)}, nil)
	bad := flowOf(t, c, srv, do(t, c, "GET", callbackURL(t, idp, srv, r.body["redirect_browser_to"].(string)), nil, nil))
	if !strings.Contains(string(bad.raw), "not linked to your account") {
		t.Fatalf("foreign refresh: %s", bad.raw)
	}
}

// A native app signs up and in through the provider in a browser and
// trades its two codes for a session token, once.
func TestOIDCNativeTokenExchange(t *testing.T) {
	_, srv, idp := oidcEngine(t, func(c *Config) { c.AllowedReturnURLs = []string{"myapp://callback"} })
	// A login of an account nobody has continues as a sign-up (the codes
	// move to the new flow); then a sign-up; then a login that finds it.
	for i, kind := range []string{"login", "registration", "login"} {
		if i == 1 {
			idp.SetUser(map[string]any{"sub": "native-2", "email": "native2@example.com", "email_verified": true})
		}
		f := do(t, nil, "GET", srv.URL+"/self-service/"+kind+"/api?return_session_token_exchange_code=true&return_to=myapp://callback", nil, nil)
		initCode, _ := f.body["session_token_exchange_code"].(string)
		if f.status != 200 || len(initCode) != 64 {
			t.Fatalf("%s: native flow: %d %s", kind, f.status, f.raw)
		}
		r := do(t, nil, "POST", f.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "oidc", "provider": "idp"}, nil)
		if r.status != 422 || errorID(r.body) != "browser_location_change_required" {
			t.Fatalf("%s: native submit: %d %s", kind, r.status, r.raw)
		}
		// The app opens the URL in the system browser, which has no cookie
		// of ours: the callback still completes (native flows have no
		// continuity cookie) and sends the browser back to the app.
		cb := do(t, oidcBrowser(), "GET", callbackURL(t, idp, srv, r.body["redirect_browser_to"].(string)), nil, map[string]string{"Accept": "text/html"})
		loc, _ := url.Parse(cb.header.Get("Location"))
		if cb.status != 303 || loc == nil || loc.Scheme != "myapp" || loc.Query().Get("code") == "" {
			t.Fatalf("%s: callback: %d %v %s", kind, cb.status, cb.header, cb.raw)
		}
		if strings.Contains(cb.header.Get("Set-Cookie"), "ory_kratos_session") {
			t.Fatalf("%s: the browser got the app's session: %v", kind, cb.header)
		}
		ex := srv.URL + "/sessions/token-exchange?init_code=" + initCode + "&return_to_code=" + loc.Query().Get("code")
		x := do(t, nil, "GET", ex, nil, nil)
		tok, _ := x.body["session_token"].(string)
		if x.status != 200 || !strings.HasPrefix(tok, "ory_st_") {
			t.Fatalf("%s: exchange: %d %s", kind, x.status, x.raw)
		}
		w := do(t, nil, "GET", srv.URL+"/sessions/whoami", nil, map[string]string{"X-Session-Token": tok})
		am := w.body["authentication_methods"].([]any)[0].(map[string]any)
		if w.status != 200 || am["method"] != "oidc" || am["provider"] != "idp" {
			t.Fatalf("%s: whoami with the exchanged token: %d %s", kind, w.status, w.raw)
		}
		if x := do(t, nil, "GET", ex, nil, nil); x.status != 404 {
			t.Fatalf("%s: second exchange: %d %s", kind, x.status, x.raw)
		}
	}
}

// In the default registration style (profile_first) the first screen has
// the providers' buttons (between the traits and "Sign up", as Kratos
// sorts them), and a sign-up whose provider left out a required trait
// comes back to it with the button to press again.
func TestOIDCProfileFirstButtons(t *testing.T) {
	_, srv, idp := oidcEngine(t, func(c *Config) { c.RegistrationStyle = "profile_first" })
	c := oidcBrowser()
	f := do(t, c, "GET", srv.URL+"/self-service/registration/browser", nil, nil)
	var names []string
	for _, n := range f.body["ui"].(map[string]any)["nodes"].([]any) {
		nm := n.(map[string]any)
		names = append(names, nm["group"].(string)+":"+nm["attributes"].(map[string]any)["name"].(string))
	}
	want := "default:csrf_token default:traits.email default:traits.name.first default:traits.name.last oidc:provider profile:method"
	if strings.Join(names, " ") != want {
		t.Fatalf("first screen nodes %v, want %s", names, want)
	}
	if !strings.Contains(string(f.raw), `"text":"Sign up with Test IdP"`) {
		t.Fatalf("no sign-up button label: %s", f.raw)
	}

	idp.SetUser(map[string]any{"sub": "no-mail", "given_name": "Grace"})
	auth, _ := startSocial(t, c, srv, "registration", nil)
	r := flowOf(t, c, srv, do(t, c, "GET", callbackURL(t, idp, srv, auth), nil, nil))
	if r.status != 200 || oidcNode(r.body, "provider") != "idp" || oidcNode(r.body, "traits.name.first") != "Grace" ||
		!strings.Contains(string(r.raw), `"id":4000002`) {
		t.Fatalf("sign-up without email: %d %s", r.status, r.raw)
	}
	s := do(t, c, "POST", r.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "oidc", "provider": "idp",
		"csrf_token": csrfOf(r.body), "traits": map[string]any{"email": "grace@example.com"}}, nil)
	if s.status != 422 {
		t.Fatalf("completed sign-up: %d %s", s.status, s.raw)
	}
	if r := do(t, c, "GET", callbackURL(t, idp, srv, s.body["redirect_browser_to"].(string)), nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
		t.Fatalf("completed sign-up callback: %d %s", r.status, r.raw)
	}
	if w := whoami(t, c, srv); w.status != 200 || w.body["identity"].(map[string]any)["traits"].(map[string]any)["email"] != "grace@example.com" {
		t.Fatalf("whoami: %d %s", w.status, w.raw)
	}
}

// A burst of the same callback (the browser's, with its cookie) signs in
// once: the authorization request is taken in one store transaction.
func TestOIDCCallbackBurst(t *testing.T) {
	e, srv, idp := oidcEngine(t, nil)
	c := oidcBrowser()
	auth, _ := startSocial(t, c, srv, "login", nil)
	cb := callbackURL(t, idp, srv, auth)
	const n = 12
	statuses := make(chan int, n)
	start := make(chan struct{})
	for range n {
		go func() {
			<-start
			req, _ := http.NewRequest("GET", cb, nil)
			req.Header.Set("Accept", "application/json")
			for _, ck := range c.Jar.Cookies(req.URL) {
				req.AddCookie(ck)
			}
			res, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	close(start)
	got := map[int]int{}
	for range n {
		got[<-statuses]++
	}
	if got[303] != 1 || got[400] != n-1 {
		t.Fatalf("statuses of %d concurrent callbacks: %v", n, got)
	}
	if ids, _, _ := e.store.ListIdentities(t.Context(), "", 10); len(ids) != 1 {
		t.Fatalf("%d identities", len(ids))
	}
}

// A callback on another provider's path than the flow's request is
// refused before anything is taken.
func TestOIDCCallbackWrongProvider(t *testing.T) {
	_, srv, idp := oidcEngine(t, func(c *Config) {
		c.OIDCProviders = append(c.OIDCProviders, c.OIDCProviders[0])
		c.OIDCProviders[1].ID = "other"
	})
	c := oidcBrowser()
	auth, _ := startSocial(t, c, srv, "login", nil)
	cb := callbackURL(t, idp, srv, auth)
	if r := do(t, c, "GET", strings.Replace(cb, "/callback/idp?", "/callback/other?", 1), nil, nil); r.status != 400 {
		t.Fatalf("other provider's path: %d %s", r.status, r.raw)
	}
	if r := do(t, c, "GET", strings.Replace(cb, "/callback/idp?", "/callback/nope?", 1), nil, nil); r.status != 404 {
		t.Fatalf("unknown provider's path: %d %s", r.status, r.raw)
	}
	if r := do(t, c, "GET", cb, nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
		t.Fatalf("the real callback: %d %s", r.status, r.raw)
	}
	if w := whoami(t, c, srv); w.status != 200 {
		t.Fatalf("whoami after the real callback: %d", w.status)
	}
}

// Apple's form_post: the cross-site POST is re-issued as a GET of the same
// parameters, which carries the browser's cookies.
func TestOIDCFormPostCallback(t *testing.T) {
	_, srv, _ := oidcEngine(t, nil)
	r := do(t, nil, "POST", srv.URL+"/self-service/methods/oidc/callback/idp", "code=abc&state=s1&user=%7B%7D&other=x", nil)
	loc, _ := url.Parse(r.header.Get("Location"))
	if r.status != 303 || loc == nil || loc.Path != "/self-service/methods/oidc/callback/idp" || loc.Query().Get("code") != "abc" ||
		loc.Query().Get("state") != "s1" || loc.Query().Get("user") != "{}" || loc.Query().Has("other") {
		t.Fatalf("form_post: %d %v", r.status, r.header)
	}
}

// A sign-up with a provider account that is linked already signs in (the
// registration flow continues as a login); identifier-first login shows
// the provider buttons on its first screen.
func TestOIDCRegistrationOfLinkedAccountAndIdentifierFirst(t *testing.T) {
	e, srv, idp := oidcEngine(t, func(c *Config) { c.LoginStyle = "identifier_first" })
	for i := range 2 {
		c := oidcBrowser()
		auth, _ := startSocial(t, c, srv, "registration", nil)
		if r := do(t, c, "GET", callbackURL(t, idp, srv, auth), nil, map[string]string{"Accept": "text/html"}); r.status != 303 {
			t.Fatalf("sign-up %d: %d %s", i, r.status, r.raw)
		}
		if w := whoami(t, c, srv); w.status != 200 {
			t.Fatalf("whoami %d: %d", i, w.status)
		}
	}
	if ids, _, _ := e.store.ListIdentities(t.Context(), "", 10); len(ids) != 1 {
		t.Fatalf("%d identities after signing up twice with one provider account", len(ids))
	}
	c := oidcBrowser()
	f := do(t, c, "GET", srv.URL+"/self-service/login/browser", nil, nil)
	if strings.Contains(string(f.raw), `"name":"provider"`) || !strings.Contains(string(f.raw), `"name":"identifier"`) {
		t.Fatalf("identifier-first first screen: %s", f.raw)
	}
	// The second screen of the provider's account shows its button.
	s := do(t, c, "POST", f.body["ui"].(map[string]any)["action"].(string), map[string]any{"method": "identifier_first",
		"identifier": "user@example.com", "csrf_token": csrfOf(f.body)}, nil)
	if oidcNode(s.body, "provider") != "idp" || oidcNode(s.body, "identifier") != "user@example.com" {
		t.Fatalf("identifier-first second screen: %d %s", s.status, s.raw)
	}
}

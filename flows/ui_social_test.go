package flows

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/method/oidc/provider"
)

// pageForm finds the form with id on an HTML page and returns its action
// and what a browser posts when button name=value of it is pressed: its
// hidden inputs, the fields given and the button.
func pageForm(t *testing.T, page, id, name, value string, fields url.Values) (string, url.Values) {
	t.Helper()
	m := regexp.MustCompile(`(?s)<form id="` + regexp.QuoteMeta(id) + `"[^>]* action="([^"]+)" method="POST"[^>]*>(.*?)</form>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form %s on the page:\n%s", id, page)
	}
	body := m[2]
	if !strings.Contains(body, `name="`+name+`" value="`+value+`"`) {
		t.Fatalf("form %s has no button %s=%s:\n%s", id, name, value, body)
	}
	vals := url.Values{}
	for _, h := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(body, -1) {
		vals.Add(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range fields {
		vals[k] = v
	}
	vals.Set(name, value)
	return html.UnescapeString(m[1]), vals
}

// The built-in pages drive social sign-in as a browser without JavaScript
// would: the provider's button on the sign-in page posts its own form to
// the provider and back; account linking shows Kratos's message and the
// password form; settings lists the linked account with Unlink.
func TestUIPageSocialSignIn(t *testing.T) {
	_, srv, idp := oidcEngine(t, func(c *Config) {
		c.OIDCProviders[0].Icon = "https://cdn.example.com/idp.svg"
	})
	pw := "Gx7!qVt2#pLr9$wZk4"
	reg := do(t, nil, "GET", srv.URL+"/self-service/registration/api", nil, nil)
	if r := do(t, nil, "POST", reg.body["ui"].(map[string]any)["action"].(string),
		map[string]any{"method": "password", "password": pw, "traits": map[string]any{"email": "user@example.com"}}, nil); r.status != 200 {
		t.Fatalf("password sign-up: %d %s", r.status, r.raw)
	}

	c := browserClient(t)
	_, p := startPage(t, c, srv.URL, "login")
	page := string(p.raw)
	for _, want := range []string{
		`<form id="form-oidc" class="form form-social"`, `aria-label="Sign in with another provider"`,
		`name="provider" value="idp" aria-label="Sign in with Test IdP" formnovalidate><img class="provider-icon" src="https://cdn.example.com/idp.svg" width="20" height="20" alt="Test IdP"><span>Sign in with Test IdP</span></button>`,
		`<div class="sep" role="separator"><span>or</span></div>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
	if strings.Index(page, `id="form-oidc"`) > strings.Index(page, `id="form-flow"`) {
		t.Errorf("the providers are not above the other ways")
	}
	// The icon may load, and the provider's redirect chain is not blocked
	// (browsers apply form-action to every hop of it: no form-action).
	csp := p.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src 'self' data: https://cdn.example.com;") || strings.Contains(csp, "form-action") {
		t.Errorf("CSP %q", csp)
	}
	_, p = startPage(t, c, srv.URL, "registration")
	if !strings.Contains(string(p.raw), `<span>Sign up with Test IdP</span>`) {
		t.Errorf("registration page lacks the provider:\n%s", p.raw)
	}

	// The button's form as a browser posts it: 303 to the provider.
	action, form := pageForm(t, page, "form-oidc", "provider", "idp", nil)
	if form.Get("csrf_token") == "" || len(form) != 3 {
		t.Fatalf("the provider's form posts %v", form)
	}
	r := do(t, c, "POST", action, form.Encode(), htmlAccept)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), idp.Issuer+"/authorize?") {
		t.Fatalf("provider button: %d %q %s", r.status, r.header.Get("Location"), r.raw)
	}
	// The provider's account has the address of the password account:
	// account linking, on a page of its own.
	r = do(t, c, "GET", callbackURL(t, idp, srv, r.header.Get("Location")), nil, htmlAccept)
	if r.status != http.StatusSeeOther || !strings.Contains(r.header.Get("Location"), "/ui/login?flow=") {
		t.Fatalf("callback: %d %q", r.status, r.header.Get("Location"))
	}
	p = do(t, c, "GET", r.header.Get("Location"), nil, htmlAccept)
	page = string(p.raw)
	for _, want := range []string{
		`<h1>Link your accounts</h1>`, `data-message-id="1010016"`,
		`You tried to sign in with &#34;user@example.com&#34;, but that email is already used by another account.`,
		`<input type="hidden" name="identifier" value="user@example.com">`, `autocomplete="current-password"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("linking page lacks %s\n%s", want, page)
		}
	}
	action, form = pageForm(t, page, "form-password", "method", "password", url.Values{"password": {pw}})
	if r := do(t, c, "POST", action, form.Encode(), htmlAccept); r.status != http.StatusSeeOther {
		t.Fatalf("password on the linking page: %d %s", r.status, r.raw)
	}
	w := whoami(t, c, srv)
	if w.status != 200 || !strings.Contains(string(w.raw), `"provider":"idp"`) {
		t.Fatalf("whoami after linking: %d %s", w.status, w.raw)
	}

	// Settings: the linked account, with Unlink (the password remains).
	_, p = startPage(t, c, srv.URL, "settings")
	page = string(p.raw)
	for _, want := range []string{
		`<h2 id="form-oidc-h">Linked accounts</h2>`, `<div class="provider-row linked" data-provider="idp">`,
		`<span class="provider-name">Test IdP</span><span class="badge">Linked</span>`,
		`class="btn btn-danger btn-small" name="unlink" value="idp" formnovalidate>Unlink Test IdP</button>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("settings page lacks %s\n%s", want, page)
		}
	}
	action, form = pageForm(t, page, "form-oidc", "unlink", "idp", nil)
	r = do(t, c, "POST", action, form.Encode(), htmlAccept)
	if r.status != http.StatusSeeOther {
		t.Fatalf("unlink: %d %s", r.status, r.raw)
	}
	p = do(t, c, "GET", r.header.Get("Location"), nil, htmlAccept)
	if page := string(p.raw); !strings.Contains(page, `name="link" value="idp" formnovalidate>Link Test IdP</button>`) ||
		!strings.Contains(page, `data-message-id="1050001"`) {
		t.Errorf("settings after unlinking:\n%s", page)
	}
}

// Providers of a disabled method give the pages nothing: no buttons, no
// CSP sources.
func TestUIPageSocialMethodOff(t *testing.T) {
	_, srv := testEngine(t, func(c *Config) {
		c.OIDCProviders = []provider.Config{{ID: "google", Provider: "google", ClientID: "x", ClientSecret: "y", Icon: "https://cdn.example.com/g.svg"}}
	})
	_, p := startPage(t, browserClient(t), srv.URL, "login")
	if strings.Contains(string(p.raw), "form-oidc") || strings.Contains(p.header.Get("Content-Security-Policy"), "google") ||
		strings.Contains(p.header.Get("Content-Security-Policy"), "cdn.example.com") {
		t.Errorf("disabled method shows: %s\n%s", p.header.Get("Content-Security-Policy"), p.raw)
	}
}

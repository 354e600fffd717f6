package ui

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

const socialFlowID = "5f0c3a52-8b0e-4d3c-9d5e-3a1f7c2b9e10"

// socialConfig has two providers: google with an https icon, corp (the
// label only) with none.
func socialConfig() Config {
	return Config{SocialProviders: []SocialProvider{
		{ID: "google", Label: "Google", Icon: "https://cdn.example.com/icons/google.svg"},
		{ID: "corp", Label: "Corp SSO"},
	}}
}

// providerButton is the node the oidc method adds for provider id, label
// message msg (1010002, 1040002, 1010018).
func providerButton(msg int, id, name string) *node.Node {
	return node.Submit("oidc", "provider", id, node.Label(msg, map[string]any{"provider": name, "provider_id": id}, name))
}

func socialFlow(kind string) *flow.Flow {
	f := &flow.Flow{ID: socialFlowID, Kind: kind, Type: "browser"}
	f.UI.Action = "https://auth.example.com/self-service/" + kind + "?flow=" + f.ID
	f.UI.Method = "POST"
	return f
}

// socialLogin is a login flow as the engine makes it with the oidc method:
// the provider buttons right after the CSRF token, then the identifier and
// the password.
func socialLogin() *flow.Flow {
	f := socialFlow("login")
	f.UI.Nodes = []*node.Node{
		node.CSRF("tok+en/=="),
		providerButton(1010002, "google", "Google"),
		providerButton(1010002, "corp", "Corp SSO"),
		node.Input("default", "identifier", "text", node.Label(1070004, nil)).Required(),
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required(),
		node.Submit("password", "method", "password", node.Label(1010022, nil)),
	}
	return f
}

var formRe = regexp.MustCompile(`(?s)<form id="([^"]+)"([^>]*)>(.*?)</form>`)

type pageForm struct {
	id, attrs, body string
}

// forms are the page's forms (ids starting with "form-") in page order.
func forms(page string) []pageForm {
	var out []pageForm
	for _, m := range formRe.FindAllStringSubmatch(page, -1) {
		if strings.HasPrefix(m[1], "form-") {
			out = append(out, pageForm{m[1], m[2], m[3]})
		}
	}
	return out
}

func formByID(t *testing.T, page, id string) pageForm {
	t.Helper()
	for _, f := range forms(page) {
		if f.id == id {
			return f
		}
	}
	t.Fatalf("no form %s in\n%s", id, page)
	return pageForm{}
}

func renderFlow(t *testing.T, p *Pages, f *flow.Flow, lang string, ident *sessionstore.Identity) string {
	t.Helper()
	r := httptest.NewRequest("GET", "/ui/"+f.Kind+"?flow="+f.ID, nil)
	if lang != "" {
		r.Header.Set("Accept-Language", lang)
	}
	return renderView(t, p, p.flowView(p.localizer(r), r, f, ident))
}

// renderSettings renders the settings flow f's forms (the page's
// navigation needs a session manager, which these pages have not).
func renderSettings(t *testing.T, p *Pages, f *flow.Flow, lang string, ident *sessionstore.Identity) string {
	t.Helper()
	r := httptest.NewRequest("GET", "/ui/settings?flow="+f.ID, nil)
	if lang != "" {
		r.Header.Set("Accept-Language", lang)
	}
	v := p.newView(p.localizer(r), "settings")
	v.ident, v.Title, v.Wide = ident, v.l.Page("settings.title"), true
	buildForms(v, f)
	return renderView(t, p, v)
}

func wantIn(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %s\n%s", what, w, s)
		}
	}
}

func TestSocialLoginPage(t *testing.T) {
	p := testPages(socialConfig())
	page := renderFlow(t, p, socialLogin(), "", nil)
	fs := forms(page)
	if len(fs) != 2 || fs[0].id != "form-oidc" || fs[1].id != "form-flow" {
		t.Fatalf("forms %v, want the providers' form first, then the flow's", fs)
	}
	social, rest := fs[0], fs[1]
	wantIn(t, "the providers' form", `<form id="form-oidc"`+social.attrs+`>`,
		`action="https://auth.example.com/self-service/login?flow=`+socialFlowID+`"`, `method="POST"`,
		`aria-label="Sign in with another provider"`, `class="form form-social"`)
	wantIn(t, "the providers' form", social.body,
		// The CSRF token in the same form (masked tokens hold + / =).
		`<input type="hidden" name="csrf_token" value="tok&#43;en/==">`,
		`<input type="hidden" name="method" value="oidc">`,
		`<button id="n1-provider" type="submit" class="btn btn-social" name="provider" value="google" aria-label="Sign in with Google" formnovalidate>`+
			`<img class="provider-icon" src="https://cdn.example.com/icons/google.svg" width="20" height="20" alt="Google"><span>Sign in with Google</span></button>`,
		`<button id="n2-provider" type="submit" class="btn btn-social" name="provider" value="corp" aria-label="Sign in with Corp SSO" formnovalidate>`+
			`<span class="provider-icon provider-mono" aria-hidden="true">C</span><span>Sign in with Corp SSO</span></button>`)
	// Nothing in the providers' form can fail the browser's validation:
	// the identifier and password are in the other form.
	if strings.Contains(social.body, "required") || strings.Contains(social.body, `name="identifier"`) {
		t.Errorf("the providers' form has fields: %s", social.body)
	}
	wantIn(t, "the flow's form", rest.body, `name="identifier" type="text" required`, `name="password" type="password" required`,
		`class="btn btn-primary" name="method" value="password">Sign in with password</button>`, `name="csrf_token"`)
	if strings.Contains(rest.body, `name="provider"`) || strings.Contains(page, `form="form-alt`) {
		t.Errorf("a provider button outside its form")
	}
	// "or" between the providers and the other ways; the identifier keeps
	// the focus.
	between := page[strings.Index(page, "</form>"):strings.Index(page, `<form id="form-flow"`)]
	wantIn(t, "between the forms", between, `<div class="sep" role="separator"><span>or</span></div>`)
	wantIn(t, "the identifier", rest.body, `autocomplete="username" autofocus>`)

	// German.
	de := renderFlow(t, p, socialLogin(), "de", nil)
	wantIn(t, "the German page", de, `aria-label="Mit einem anderen Anbieter anmelden"`, `aria-label="Mit Google anmelden"`,
		`<span>Mit Corp SSO anmelden</span>`, `<span>oder</span>`)
}

func TestSocialRegistrationPage(t *testing.T) {
	p := testPages(socialConfig())
	f := socialFlow("registration")
	f.UI.Nodes = []*node.Node{
		node.CSRF("tok"),
		providerButton(1040002, "google", "Google"),
		node.Input("default", "traits.email", "email", node.Label(1070002, nil)).Required(),
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required(),
		node.Submit("password", "method", "password", node.Label(1040001, nil)),
	}
	page := renderFlow(t, p, f, "", nil)
	social := formByID(t, page, "form-oidc")
	if fs := forms(page); fs[0].id != "form-oidc" {
		t.Errorf("providers not first: %v", fs)
	}
	wantIn(t, "the providers' form", social.attrs, `aria-label="Sign up with another provider"`,
		`action="https://auth.example.com/self-service/registration?flow=`+socialFlowID+`"`)
	wantIn(t, "the providers' form", social.body, `<input type="hidden" name="csrf_token" value="tok">`,
		`name="provider" value="google" aria-label="Sign up with Google" formnovalidate>`, `alt="Google"`, `<span>Sign up with Google</span>`)
	if strings.Contains(social.body, "traits.email") || strings.Contains(social.body, "required") {
		t.Errorf("the traits' required fields are in the providers' form: %s", social.body)
	}
	wantIn(t, "the flow's form", formByID(t, page, "form-flow").body, `name="traits.email" type="email" required`)
	de := renderFlow(t, p, f, "de", nil)
	wantIn(t, "the German page", de, `aria-label="Mit einem anderen Anbieter registrieren"`, `<span>Mit Google registrieren</span>`)
}

// linkingFlow is the login flow account linking answers with: a provider
// account whose address belongs to an account with a password and a
// linked google.
func linkingFlow() *flow.Flow {
	f := socialFlow("login")
	f.Active, f.RequestedAAL = "oidc", "aal1"
	f.UI.Nodes = []*node.Node{
		node.CSRF("tok"),
		node.Input("default", "identifier", "hidden", node.Label(1070004, nil)).Value("ada@example.com"),
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("current-password"),
		node.Submit("password", "method", "password", node.Label(1010022, nil)),
		providerButton(1010018, "google", "Google"),
	}
	f.UI.Messages = []node.Text{node.NewText(1010016, map[string]any{
		"duplicateIdentifier": "ada@example.com", "duplicate_identifier": "ada@example.com", "provider": "Corp SSO",
		"available_credential_types": []string{"password", "oidc"}, "available_providers": []string{"google"},
	}, "ada@example.com", "Corp SSO")}
	return f
}

func TestSocialAccountLinkingPage(t *testing.T) {
	p := testPages(socialConfig())
	f := linkingFlow()
	page := renderFlow(t, p, f, "", nil)
	wantIn(t, "the linking page", page,
		`<h1>Link your accounts</h1>`,
		`<div class="alert alert-info" role="status" data-message-id="1010016">`,
		`You tried to sign in with &#34;ada@example.com&#34;, but that email is already used by another account. Sign in to your account with one of the options below to add your account &#34;ada@example.com&#34; at &#34;Corp SSO&#34; as another way to sign in.`,
		`<dd>ada@example.com</dd>`)
	// The message says what the step is: no subtitle next to it.
	if strings.Contains(page, `class="subtitle"`) {
		t.Errorf("subtitle next to 1010016")
	}
	pw := formByID(t, page, "form-password")
	wantIn(t, "the password form", pw.body, `<input type="hidden" name="csrf_token" value="tok">`,
		`<input type="hidden" name="identifier" value="ada@example.com">`, `name="password" type="password" required autocomplete="current-password"`,
		`class="btn btn-primary" name="method" value="password">Sign in with password</button>`)
	social := formByID(t, page, "form-oidc")
	wantIn(t, "the providers' form", social.body, `<input type="hidden" name="csrf_token" value="tok">`,
		`<input type="hidden" name="identifier" value="ada@example.com">`, `<input type="hidden" name="method" value="oidc">`,
		`class="btn btn-social" name="provider" value="google" aria-label="Confirm with Google" formnovalidate><img class="provider-icon" src="https://cdn.example.com/icons/google.svg" width="20" height="20" alt="Google"><span>Confirm with Google</span></button>`)
	if strings.Contains(social.body, "required") {
		t.Errorf("the providers' form has required fields")
	}
	wantIn(t, "between the forms", page[strings.Index(page, `<form id="form-password"`):strings.Index(page, `<form id="form-oidc"`)], `<span>or</span>`)

	// After a wrong password the 1010016 message is gone; the page still
	// says what the step is.
	f.UI.Messages = []node.Text{node.NewText(4000006, nil)}
	page = renderFlow(t, p, f, "", nil)
	wantIn(t, "the linking page after an error", page, `<h1>Link your accounts</h1>`,
		`<p class="subtitle">Sign in to your existing account to add the new way to sign in.</p>`, `data-message-id="4000006"`)

	// German.
	page = renderFlow(t, p, linkingFlow(), "de", nil)
	wantIn(t, "the German linking page", page, `<h1>Konten verknüpfen</h1>`,
		`Sie haben versucht, sich mit &#34;ada@example.com&#34; anzumelden`, `<span>Mit Google bestätigen</span>`)

	// A plain sign-in with a hidden identifier (refresh) is no linking.
	if !accountLinking(linkingFlow()) {
		t.Errorf("the linking flow is not recognised")
	}
	f = linkingFlow()
	f.Refresh = true
	if accountLinking(f) {
		t.Errorf("a refresh taken for linking")
	}
	f = socialLogin()
	f.Active = "oidc"
	if accountLinking(f) {
		t.Errorf("a sign-in the provider failed (active oidc, identifier typed) taken for linking")
	}
}

func TestSocialSettingsPage(t *testing.T) {
	p := testPages(socialConfig())
	f := socialFlow("settings")
	// Linked to google (with a password, so it can be unlinked), not to
	// corp.
	f.UI.Nodes = []*node.Node{
		node.CSRF("tok"),
		node.Input("profile", "traits.email", "email", node.Label(1070002, nil)).Required().Value("ada@example.com"),
		node.Submit("profile", "method", "profile", node.Label(1050017, nil)),
		node.Submit("oidc", "unlink", "google", node.Label(1050003, map[string]any{"provider": "google"}, "google")),
		node.Submit("oidc", "link", "corp", node.Label(1050002, map[string]any{"provider": "corp"}, "corp")),
	}
	ident := &sessionstore.Identity{ID: "i1", Credentials: map[string]sessionstore.Credential{
		"oidc": {Type: "oidc", Identifiers: []string{"google:1234"}}}}
	page := renderSettings(t, p, f, "", ident)
	oidc := formByID(t, page, "form-oidc")
	wantIn(t, "the linked accounts", oidc.attrs, `aria-labelledby="form-oidc-h"`, `data-group="oidc"`)
	wantIn(t, "the linked accounts", oidc.body,
		`<h2 id="form-oidc-h">Linked accounts</h2><p class="desc">Accounts at other providers you can sign in with.</p>`,
		`<input type="hidden" name="csrf_token" value="tok">`, `<input type="hidden" name="method" value="oidc">`,
		`<div class="provider-row linked" data-provider="google">`,
		`<img class="provider-icon" src="https://cdn.example.com/icons/google.svg" width="20" height="20" alt=""><span class="provider-name">Google</span><span class="badge">Linked</span>`,
		// The buttons name the provider as configured, not by its id.
		`type="submit" class="btn btn-danger btn-small" name="unlink" value="google" formnovalidate>Unlink Google</button>`,
		`<div class="provider-row" data-provider="corp">`,
		`<span class="provider-name">Corp SSO</span><span class="badge badge-off">Not linked</span>`,
		`type="submit" class="btn btn-secondary btn-small" name="link" value="corp" formnovalidate>Link Corp SSO</button>`)
	if strings.Contains(oidc.body, "required") {
		t.Errorf("the linked accounts' form has required fields")
	}
	// The flow itself keeps Kratos's text.
	if f.UI.Nodes[3].Meta.Label.Text != "Unlink google" {
		t.Errorf("the flow was relabelled: %q", f.UI.Nodes[3].Meta.Label.Text)
	}
	de := renderSettings(t, p, f, "de", ident)
	wantIn(t, "the German settings", de, `>Verknüpfte Konten</h2>`, `>Verknüpfung mit Google aufheben</button>`,
		`>Corp SSO verknüpfen</button>`, `<span class="badge">Verknüpft</span>`, `<span class="badge badge-off">Nicht verknüpft</span>`)

	// The provider is the last way to sign in: the method offers no
	// Unlink, the page still shows it linked, and says why.
	f.UI.Nodes = f.UI.Nodes[:3]
	ident.Credentials["oidc"] = sessionstore.Credential{Type: "oidc", Identifiers: []string{"google:1234"}}
	page = renderSettings(t, p, f, "", ident)
	oidc = formByID(t, page, "form-oidc")
	wantIn(t, "the last provider", oidc.body, `>Linked accounts</h2>`, `<div class="provider-row linked" data-provider="google">`,
		`<span class="provider-name">Google</span><span class="badge">Linked</span>`,
		`This is the only way to sign in to your account, so it can&#39;t be unlinked. Add another way to sign in first.`)
	if strings.Contains(oidc.body, "<button") || strings.Contains(oidc.body, "corp") {
		t.Errorf("the last provider has a button, or an unlinked provider shows: %s", oidc.body)
	}
	// No identity (or linked to nothing): no section without nodes.
	if page := renderSettings(t, p, f, "", &sessionstore.Identity{ID: "i2"}); strings.Contains(page, "form-oidc") {
		t.Errorf("linked accounts without a linked provider or a button")
	}
}

func TestSocialPageHeaders(t *testing.T) {
	p := testPages(socialConfig())
	csp := func(f *flow.Flow) string {
		w := httptest.NewRecorder()
		p.pageHeaders(w, httptest.NewRequest("GET", "/ui/login", nil), f)
		return w.Header().Get("Content-Security-Policy")
	}
	got := csp(socialLogin())
	wantIn(t, "the CSP", got, "img-src 'self' data: https://cdn.example.com;", "base-uri 'none'", "default-src 'none'")
	// The provider's redirect chain crosses origins nobody can list:
	// pages with provider buttons have no form-action.
	if strings.Contains(got, "form-action") {
		t.Errorf("form-action on a page with provider buttons: %s", got)
	}
	// A flow without providers (recovery, a sign-in without the method)
	// allows neither.
	f := socialFlow("recovery")
	f.UI.Nodes = []*node.Node{node.CSRF("tok")}
	if got := csp(f); strings.Contains(got, "cdn.example.com") || strings.Contains(got, "accounts.google.com") ||
		!strings.Contains(got, "form-action 'self'") {
		t.Errorf("CSP of a flow without providers: %s", got)
	}
}

// An icon comes from the configuration only, and only as an https URL or
// a path on the site: nothing a flow carries (node context, values) is
// ever shown as an image.
func TestSocialIconsFromConfigOnly(t *testing.T) {
	for in, want := range map[string]string{
		"https://cdn.example.com/g.svg":       "https://cdn.example.com/g.svg",
		"/static/corp.png":                    "/static/corp.png",
		"http://cdn.example.com/g.svg":        "",
		"//cdn.example.com/g.svg":             "",
		"javascript:alert(1)":                 "",
		"data:image/svg+xml;base64,PHN2Zz4=":  "",
		"https://user:pw@cdn.example.com/g":   "",
		`https://cdn.example.com/"onerror="x`: "",
		"":                                    "",
	} {
		if got, _ := iconURL(in); string(got) != want {
			t.Errorf("iconURL(%q) = %q, want %q", in, got, want)
		}
	}
	p := testPages(Config{SocialProviders: []SocialProvider{{ID: "corp", Label: "Corp", Icon: "http://insecure.example/x.png"}}})
	f := socialLogin()
	// A node that carries an icon of its own (a future method, a stored
	// flow) does not put it on the page.
	f.UI.Nodes[1].Meta.Label.Context["icon"] = "https://evil.example/x.png"
	raw, _ := json.Marshal(f.UI.Nodes[1])
	if !strings.Contains(string(raw), "evil.example") {
		t.Fatal("test setup")
	}
	page := renderFlow(t, p, f, "", nil)
	if strings.Contains(page, "evil.example") || strings.Contains(page, "insecure.example") || strings.Contains(page, "<img class=\"provider-icon\"") {
		t.Errorf("an icon not from the configuration is shown:\n%s", page)
	}
	// Unconfigured providers still get a button, named by their node.
	wantIn(t, "the page", page, `<span class="provider-icon provider-mono" aria-hidden="true">G</span><span>Sign in with Google</span>`)
}

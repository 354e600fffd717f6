package ui

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/locale"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// englishBefore are the page strings as the pages had them before they
// read the locale catalogue: English must stay exactly this.
var englishBefore = map[string]string{
	"product.default": "Account",

	"login.title":                  "Sign in",
	"login.subtitle":               "Sign in to continue to %s.",
	"login.refresh.title":          "Confirm it's you",
	"login.refresh.subtitle":       "Enter your password again to continue.",
	"login.aal2.title":             "Two-step verification",
	"login.aal2.subtitle":          "Your account is protected with a second factor.",
	"registration.title":           "Create your account",
	"registration.subtitle":        "Get started with %s.",
	"settings.title":               "Account settings",
	"settings.subtitle":            "Manage your profile and the ways you sign in.",
	"recovery.title":               "Recover your account",
	"recovery.subtitle":            "We'll email you a code to get back into your account.",
	"verification.title":           "Verify your email",
	"verification.subtitle":        "Confirm that this address belongs to you.",
	"error.title":                  "Something went wrong",
	"error.subtitle":               "The request could not be completed.",
	"error.notfound":               "This error page has expired or does not exist.",
	"sessions.title":               "Your sessions",
	"sessions.subtitle":            "Devices and browsers that are signed in to your account.",
	"welcome.title":                "Welcome",
	"welcome.title.signedin":       "Hi, %s",
	"welcome.subtitle":             "Sign in or create an account to continue.",
	"welcome.subtitle.signedin":    "You're signed in as %s.",
	"welcome.continue":             "Continue to the app",
	"welcome.settings.desc":        "Profile, password and two-step verification",
	"welcome.sessions.desc":        "See where you're signed in and sign out remotely",
	"link.signup.prompt":           "Don't have an account?",
	"link.signup":                  "Sign up",
	"link.login.prompt":            "Already have an account?",
	"link.login":                   "Sign in",
	"link.recovery":                "Forgot your password?",
	"link.back.login":              "Back to sign in",
	"link.logout":                  "Sign out",
	"link.logout.aal2":             "Use another account",
	"link.login.other":             "Use another account",
	"link.home":                    "Home",
	"link.settings":                "Account settings",
	"link.sessions":                "Sessions",
	"link.verify":                  "Verify an email address",
	"nav.label":                    "Account",
	"nav.settings":                 "Settings",
	"or":                           "or",
	"js.required":                  "This option needs JavaScript enabled in your browser.",
	"copy":                         "Copy",
	"copied":                       "Copied",
	"field.account":                "Account",
	"group.profile":                "Profile",
	"group.password":               "Password",
	"group.totp":                   "Authenticator app",
	"group.lookup_secret":          "Backup codes",
	"group.webauthn":               "Security keys",
	"group.passkey":                "Passkeys",
	"group.code":                   "Email code",
	"group.link":                   "Email link",
	"group.oidc":                   "Sign in with another provider",
	"group.saml":                   "Single sign-on",
	"desc.settings.profile":        "Your personal details.",
	"desc.settings.password":       "Choose a strong password you don't use anywhere else.",
	"desc.settings.totp":           "Use an authenticator app to generate one-time codes when you sign in.",
	"desc.settings.lookup_secret":  "Single-use codes for when you can't use your other second factor. Keep them somewhere safe.",
	"desc.settings.webauthn":       "Hardware keys such as a YubiKey, or your device's built-in authenticator.",
	"desc.settings.passkey":        "Sign in with your fingerprint, face or screen lock instead of a password.",
	"desc.settings.oidc":           "Accounts at other providers you can sign in with.",
	"sessions.current":             "This device",
	"sessions.current.desc":        "The session you are using right now.",
	"sessions.others":              "Other sessions",
	"sessions.none":                "You're not signed in anywhere else.",
	"sessions.revoke":              "Sign out",
	"sessions.revoke.label":        "Sign out %s",
	"sessions.revoke.others":       "Sign out of all other sessions",
	"sessions.revoked":             "The session was signed out.",
	"sessions.revoked.others":      "Signed out of %d other sessions.",
	"sessions.revoked.others.one":  "Signed out of 1 other session.",
	"sessions.revoked.others.none": "There were no other sessions to sign out.",
	"sessions.ip":                  "IP address",
	"sessions.signedin":            "Signed in",
	"sessions.expires":             "Expires",
	"sessions.methods":             "Signed in with",
	"sessions.unknown.device":      "Unknown device",
	"sessions.device":              "%s on %s",
	"error.code":                   "Error",
	"error.id":                     "Reference",
	"error.retry":                  "Try again",
	"error.home":                   "Go to the start page",
	"time.now":                     "just now",
	"time.minute":                  "1 minute ago",
	"time.minutes":                 "%d minutes ago",
	"time.hour":                    "1 hour ago",
	"time.hours":                   "%d hours ago",
	"time.day":                     "1 day ago",
	"time.days":                    "%d days ago",
	"time.in":                      "in %s",
	"method.password":              "Password",
	"method.totp":                  "Authenticator app",
	"method.lookup_secret":         "Backup code",
	"method.webauthn":              "Security key",
	"method.passkey":               "Passkey",
	"method.code":                  "Email code",
	"method.link_recovery":         "Recovery link",
	"method.code_recovery":         "Recovery code",
	"submit":                       "Submit",
	"skip":                         "Skip to content",
}

// englishAdded are the page strings added since, each pinned like the
// ones above: social sign-in (issue 15).
var englishAdded = map[string]string{
	"social.registration": "Sign up with another provider",
	"settings.group.oidc": "Linked accounts",
	"social.linked":       "Linked",
	"social.notlinked":    "Not linked",
	"social.last":         "This is the only way to sign in to your account, so it can't be unlinked. Add another way to sign in first.",
	"login.link.title":    "Link your accounts",
	"login.link.subtitle": "Sign in to your existing account to add the new way to sign in.",
}

func TestEnglishPageStringsUnchanged(t *testing.T) {
	en := locale.Builtin().Localizer(locale.English, nil, time.Now())
	for _, m := range []map[string]string{englishBefore, englishAdded} {
		for k, want := range m {
			if got, ok := en.PageOK(k); !ok || got != want {
				t.Errorf("%q: %q (%v), want %q", k, got, ok, want)
			}
		}
	}
	// Keys added since: the picker's, Kratos's error texts (the error
	// page's Known) and those pinned in englishAdded.
	for _, k := range pageKeys(t) {
		_, before := englishBefore[k]
		_, added := englishAdded[k]
		if !before && !added && !strings.HasPrefix(k, "language.") {
			t.Errorf("the pages use %q, which is new: new keys go under language. or kratos., or into englishAdded", k)
		}
	}
}

// keyUse finds the page keys the templates ({{t "key"}}) and the Go code
// (Page("key"), PageOK("key")) use literally.
var keyUse = regexp.MustCompile(`(?:\{\{-?\s*t |\.Page\(|\.PageOK\()"([a-z0-9_.]+)"\s*[,)}]`)

// pageKeys returns every page key the pages can ask for: the literal ones
// and those built from a flow kind.
func pageKeys(t *testing.T) []string {
	t.Helper()
	var keys []string
	for _, pat := range []string{"*.html", "*.go"} {
		files, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range keyUse.FindAllStringSubmatch(string(b), -1) {
				keys = append(keys, m[1])
			}
		}
	}
	for kind := range flowPages {
		keys = append(keys, kind+".title", kind+".subtitle")
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if len(keys) < 60 {
		t.Fatalf("only %d page keys found: %v", len(keys), keys)
	}
	return keys
}

// TestPageKeysInEveryLanguage: every key the pages use has a text in
// every shipped language of its own (not English by fallback).
func TestPageKeysInEveryLanguage(t *testing.T) {
	cat := locale.Builtin()
	gaps := cat.Gaps()
	en := cat.Localizer(locale.English, nil, time.Now())
	for _, k := range pageKeys(t) {
		if _, ok := en.PageOK(k); !ok {
			t.Errorf("%q: no English text", k)
			continue
		}
		for _, lang := range locale.BuiltinLanguages {
			if slices.Contains(gaps[lang], "pages."+k) {
				t.Errorf("%q: no %s text", k, lang)
			}
		}
	}
	for _, group := range []string{"profile", "password", "totp", "lookup_secret", "webauthn", "passkey", "code", "oidc"} {
		for _, lang := range locale.BuiltinLanguages {
			l := cat.Localizer(lang, nil, time.Now())
			if _, ok := l.PageOK("group." + group); !ok {
				t.Errorf("group %s: no %s heading", group, lang)
			}
		}
	}
}

// testPages are pages without an engine behind them, enough to render a
// view.
func testPages(cfg Config) *Pages {
	cfg.Prefix = "/ui/"
	cat := cfg.Locale
	if cat == nil {
		cat = locale.Builtin()
	}
	return &Pages{cfg: cfg, cat: cat, tmpls: templatesFor(cat), logger: zap.NewNop(), now: time.Now, social: newSocialSet(cfg.SocialProviders),
		urls: wire.NewURLs("https://auth.example.com/", "/ui/", nil, "")}
}

// loginWithError is a login flow after a wrong password (message 4000006).
func loginWithError() *flow.Flow {
	f := &flow.Flow{ID: "0b7e4f61-0d6b-4b7e-9c35-1f3c7f6a8f00", Kind: "login", Type: "browser"}
	f.UI.Action = "https://auth.example.com/self-service/login?flow=" + f.ID
	f.UI.Method = "POST"
	f.UI.Nodes = []*node.Node{
		node.CSRF("masked"),
		node.Input("default", "identifier", "text", node.Label(1070004, nil)).Required(),
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required(),
		node.Submit("password", "method", "password", node.Label(1010022, nil)),
	}
	f.UI.Messages = []node.Text{node.NewText(4000006, nil)}
	return f
}

func renderView(t *testing.T, p *Pages, v *view) string {
	t.Helper()
	w := httptest.NewRecorder()
	p.render(w, 200, v)
	if w.Code != 200 {
		t.Fatalf("render: %d %s", w.Code, w.Body)
	}
	return w.Body.String()
}

func TestGermanLoginPage(t *testing.T) {
	p := testPages(Config{ProductName: "Acme"})
	f := loginWithError()
	english := f.UI.Messages[0].Text
	r := httptest.NewRequest("GET", "/ui/login?flow="+f.ID, nil)
	r.Header.Set("Accept-Language", "de-CH, en;q=0.5")
	v := p.flowView(p.localizer(r), r, f, nil)
	v.Picker = p.picker(r, v.Lang, make([]byte, 32))
	page := renderView(t, p, v)
	for _, want := range []string{
		`<html lang="de"`,
		`<h1>Anmelden</h1>`,
		`data-message-id="4000006"><svg`,
		`Die Zugangsdaten sind ungültig. Prüfen Sie Passwort, Benutzername, E-Mail-Adresse oder Telefonnummer auf Tippfehler.`,
		`>Passwort</label>`,
		`>Mit Passwort anmelden</button>`,
		`<title>Anmelden · Acme</title>`,
		`<form class="langs" method="POST" action="/ui/language" aria-label="Sprache">`,
		`<input type="hidden" name="return_to" value="login?flow=0b7e4f61-0d6b-4b7e-9c35-1f3c7f6a8f00">`,
		`<button type="submit" name="lang" value="de" lang="de" aria-current="true" disabled>Deutsch</button>`,
		`<button type="submit" name="lang" value="en" lang="en">English</button>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("German login page lacks %s\n%s", want, page)
		}
	}
	if strings.Contains(page, english) {
		t.Errorf("German page shows the English message")
	}
	// The flow keeps Kratos's English text (its JSON is the API's).
	if f.UI.Messages[0].Text != english || f.UI.Nodes[2].Meta.Label.Text != "Password" {
		t.Errorf("the flow was translated: %q %q", f.UI.Messages[0].Text, f.UI.Nodes[2].Meta.Label.Text)
	}

	// The same flow in English: Kratos's texts.
	r = httptest.NewRequest("GET", "/ui/login?flow="+f.ID, nil)
	page = renderView(t, p, p.flowView(p.localizer(r), r, f, nil))
	for _, want := range []string{`<html lang="en"`, `<h1>Sign in</h1>`, english, `>Sign in with password</button>`} {
		if !strings.Contains(page, want) {
			t.Errorf("English login page lacks %s", want)
		}
	}
	// The cookie of the picker wins over Accept-Language.
	r = httptest.NewRequest("GET", "/ui/login?flow="+f.ID, nil)
	r.Header.Set("Accept-Language", "de")
	r.Header.Set("Cookie", locale.CookieName+"=fr")
	if v := p.flowView(p.localizer(r), r, f, nil); v.Lang != "fr" || v.Title != "Se connecter" {
		t.Errorf("cookie fr: %s %q", v.Lang, v.Title)
	}
}

func TestSessionDatesInZone(t *testing.T) {
	berlin, ok := locale.ParseZone("Europe/Berlin")
	if !ok {
		t.Skip("no time zone database")
	}
	now := time.Date(2024, 3, 5, 12, 0, 0, 0, time.UTC)
	s := &sessionstore.Session{ID: "s", AuthenticatedAt: now.Add(-5 * time.Minute), ExpiresAt: time.Date(2024, 3, 6, 18, 7, 0, 0, time.UTC)}
	de := sessionItem(locale.Builtin().Localizer("de", berlin, now), s)
	if de.Expires != "6. März 2024, 19:07 CET" || de.SignedIn != "vor 5 Minuten" || de.ExpiresISO != "2024-03-06T18:07:00Z" {
		t.Errorf("German in Berlin: %q %q %q", de.Expires, de.SignedIn, de.ExpiresISO)
	}
	en := sessionItem(locale.Builtin().Localizer("en", nil, now), s)
	if en.Expires != "6 Mar 2024, 18:07 UTC" || en.SignedIn != "5 minutes ago" {
		t.Errorf("English in UTC: %q %q", en.Expires, en.SignedIn)
	}
}

func TestCleanReturn(t *testing.T) {
	id := "0b7e4f61-0d6b-4b7e-9c35-1f3c7f6a8f00"
	for in, want := range map[string]string{
		"login?flow=" + id:                       "login?flow=" + id,
		"error?id=" + id:                         "error?id=" + id,
		"settings?flow=" + id + "&x=1":           "settings?flow=" + id,
		"sessions?done=revoked":                  "sessions",
		"":                                       "",
		"?flow=" + strings.ToUpper(id):           "?flow=" + id,
		"login?flow=nope":                        "login",
		"//evil.example/":                        "",
		"https://evil.example/login":             "",
		"../../etc/passwd":                       "",
		"login/../../x":                          "",
		"login?flow=urn:uuid:" + id:              "login?flow=" + id,
		"login?flow=" + id + "&flow=" + id + "x": "login?flow=" + id,
		"javascript:alert(1)":                    "",
		"login\r\nSet-Cookie: a=b":               "",
	} {
		if got := cleanReturn(in); got != want {
			t.Errorf("cleanReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

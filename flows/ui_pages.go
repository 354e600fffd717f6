package flows

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strings"
)

// The built-in account pages: login, registration, settings, recovery,
// verification and error render any flow's UI nodes generically (a method
// added later shows up without template changes); sessions and welcome are
// pages of their own. Everything is rendered on the server; JavaScript is
// only needed for WebAuthn and passkeys (ui.js calls the trigger functions
// of webauthn.js). Assets are embedded and served under the UI prefix, so
// the Content-Security-Policy stays strict: no inline script or style.

//go:embed ui/*.html ui/*.css ui/*.js ui/*.svg
var uiFS embed.FS

// uiStrings are the page chrome texts (headings, links, buttons that are not
// UI nodes). Node labels and flow messages come from the flow itself
// (catalogue.go). A translation replaces both maps.
var uiStrings = map[string]string{
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

// tr returns the chrome string key formatted with args (the key itself
// when it is missing, so a gap is visible rather than blank).
func tr(key string, args ...any) string {
	s, ok := uiStrings[key]
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(s, args...)
	}
	return s
}

var uiTmpl = template.Must(template.New("ui").Funcs(template.FuncMap{
	"t": tr,
	"cap": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
}).ParseFS(uiFS, "ui/*.html"))

// uiAsset is one embedded asset with its content hash (cache busting).
type uiAsset struct {
	body  []byte
	ctype string
	hash  string
}

var uiAssets = func() map[string]*uiAsset {
	out := map[string]*uiAsset{}
	for name, ctype := range map[string]string{
		"ui.css":      "text/css; charset=utf-8",
		"ui.js":       "text/javascript; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	} {
		b, err := uiFS.ReadFile("ui/" + name)
		if err != nil {
			panic("flows: missing embedded asset " + name)
		}
		out[name] = &uiAsset{body: b, ctype: ctype, hash: shortHash(b)}
	}
	return out
}()

func shortHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:6])
}

// uiRoutes mounts the built-in pages, their assets and the sessions page's
// POST endpoints under the UI prefix.
func (e *Engine) uiRoutes(m *http.ServeMux) {
	p := e.cfg.UIPrefix
	m.HandleFunc("GET "+p+"{$}", e.uiWelcome)
	m.HandleFunc("GET "+p+"{page}", e.uiPage)
	m.HandleFunc("GET "+p+"assets/{file}", e.uiAsset)
	m.HandleFunc("POST "+p+"sessions/revoke", e.uiRevokeSession)
	m.HandleFunc("POST "+p+"sessions/revoke-others", e.uiRevokeOtherSessions)
}

package flows

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
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

// --- configuration derived for the pages ---

var cssColor = regexp.MustCompile(`^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,30}|(rgb|rgba|hsl|hsla|hwb|lab|lch|oklab|oklch)\([0-9a-zA-Z.,%\s/+-]{1,80}\))$`)

// ValidCSSColor reports whether s is a CSS colour the pages accept for
// UIPrimaryColor: #hex, a named colour or a colour function.
func ValidCSSColor(s string) bool { return cssColor.MatchString(s) }

const defaultPrimaryColor = "#2563eb"

func (e *Engine) uiPrimaryColor() string {
	if c := strings.TrimSpace(e.cfg.UIPrimaryColor); c != "" && ValidCSSColor(c) {
		return c
	}
	return defaultPrimaryColor
}

func (e *Engine) uiProduct() string {
	if s := strings.TrimSpace(e.cfg.UIProductName); s != "" {
		return s
	}
	return tr("product.default")
}

// uiLogo returns the logo URL if it is one the page may show: an http(s)
// URL, an absolute path, or a data:image URL.
func (e *Engine) uiLogo() template.URL {
	s := strings.TrimSpace(e.cfg.UILogoURL)
	switch {
	case s == "":
		return ""
	case strings.HasPrefix(s, "data:image/"):
		return template.URL(s) // #nosec G203 -- data:image/ URLs only (QR codes), checked by the case above
	case strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//"):
		return template.URL(s) // #nosec G203 -- same-origin path, checked by the case above
	}
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return template.URL(u.String()) // #nosec G203 -- http(s) URL validated by the case above
	}
	return ""
}

func (e *Engine) themeCSS() []byte {
	return []byte(":root{--brand:" + e.uiPrimaryColor() + "}\n")
}

// --- assets ---

func (e *Engine) uiAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	var body []byte
	var ctype string
	if name == "theme.css" {
		body, ctype = e.themeCSS(), "text/css; charset=utf-8"
	} else if a, ok := uiAssets[name]; ok {
		body, ctype = a.body, a.ctype
	} else {
		wire.WriteError(w, r, wire.NotFound())
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "same-site")
	if r.URL.Query().Get("v") != "" {
		// Versioned URLs change with the content.
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (e *Engine) assetURL(name string) string {
	v := ""
	if name == "theme.css" {
		v = shortHash(e.themeCSS())
	} else if a, ok := uiAssets[name]; ok {
		v = a.hash
	}
	return e.cfg.UIPrefix + "assets/" + name + "?v=" + v
}

// --- view model ---

type uiView struct {
	Page       string
	Home       string
	LoginURL   string
	Title      string
	Subtitle   string
	Product    string
	Logo       template.URL
	CSS, Theme string
	JS, Icon   string
	Wide       bool
	Nav        []uiLink
	Messages   []node.Text
	Summary    []uiSummary
	Forms      []*uiForm
	AltForms   []*uiForm
	Footer     []uiFooter
	Scripts    []*node.ScriptAttrs
	Error      *uiErrorView
	Sessions   *uiSessionsView
	Welcome    *uiWelcomeView
	NeedsJS    bool
}

type uiLink struct {
	Href    string
	Text    string
	Current bool
}

// uiFooter is a line under the card: an optional prompt and a link.
type uiFooter struct {
	Prompt string
	Link   uiLink
}

// uiSummary shows a value the flow carries in a hidden field (the address
// being registered, the account being confirmed).
type uiSummary struct {
	Label, Value string
}

type uiForm struct {
	ID       string
	Action   string
	Method   string
	Heading  string
	Desc     string
	Group    string
	Sep      bool // an "or" separator above this form
	Aux      bool // auxiliary actions (e.g. Back): no heading, quiet style
	Hidden   []uiHidden
	Sections []*uiSection
}

type uiSection struct {
	Group   string
	Heading string
	Sep     bool
	Items   []*uiItem
}

type uiHidden struct {
	Name, Value string
}

type uiOption struct {
	Value, Label string
	Selected     bool
}

type uiCode struct {
	Text string
	Used bool
}

// uiItem is one rendered node. Kind picks the template branch.
type uiItem struct {
	Kind         string // field, checkbox, select, submit, trigger, text, secret, codes, img, a, div, hidden
	ID           string
	Name         string
	Type         string
	Value        string
	Label        string
	Required     bool
	Disabled     bool
	Checked      bool
	Autocomplete string
	Pattern      string
	MaxLength    int
	Autofocus    bool
	Messages     []node.Text
	Invalid      bool
	Style        string // primary, secondary, danger, quiet
	NoValidate   bool
	Form         string // form attribute: the button submits another form
	Trigger      string
	TriggerValue string
	OnLoad       string
	Options      []uiOption
	Text         string
	Codes        []uiCode
	Src          template.URL
	Href         template.URL
	Width        int
	Height       int
	Class        string
	Data         map[string]string
	Group        string
}

type uiErrorView struct {
	Found   bool
	Code    int
	Status  string
	Message string
	Reason  string
	ID      string
	Retry   string
}

type uiSessionsView struct {
	Current      *uiSession
	Others       []*uiSession
	CSRF         string
	Revoke       string
	RevokeOthers string
}

type uiSession struct {
	ID          string
	Device      string
	UserAgent   string
	IP          string
	SignedIn    string
	SignedInISO string
	Expires     string
	ExpiresISO  string
	Methods     string
	RevokeLabel string
}

type uiWelcomeView struct {
	SignedIn  bool
	Continue  string
	Settings  string
	Sessions  string
	Logout    string
	Login     string
	Register  string
	Recovery  string
	ShowReg   bool
	ShowRecov bool
}

func (e *Engine) newView(page string) *uiView {
	return &uiView{
		Page: page, Home: e.cfg.UIPrefix, Product: e.uiProduct(), Logo: e.uiLogo(),
		CSS: e.assetURL("ui.css"), Theme: e.assetURL("theme.css"),
		JS: e.assetURL("ui.js"), Icon: e.assetURL("favicon.svg"),
	}
}

// --- headers and rendering ---

// cspOrigin returns scheme://host[:port] of an absolute http(s) URL (the host
// may hold a * wildcard), or "".
func cspOrigin(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	if strings.ContainsAny(u.Host, " ;,'\"") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// addAppLink adds scheme://host of a native app's deep link (a custom-scheme
// return URL such as exp://example.com/my-app, validated against the
// allow-list before it gets here) to sources: browsers apply form-action to
// the redirect after a form post.
func addAppLink(sources *[]string, s string) {
	u, err := url.Parse(s)
	if err != nil || !flow.CustomScheme(u.Scheme) ||
		u.Host == "" || strings.ContainsAny(u.Host, " ;,'\"*") {
		return
	}
	if o := u.Scheme + "://" + u.Host; !slices.Contains(*sources, o) {
		*sources = append(*sources, o)
	}
}

// pageHeaders sets the security headers of every page. form-action lists the
// origins a form post may end on: Chrome applies it to the redirect after
// the post too, so the origins of return URLs and UI URLs are included.
func (e *Engine) pageHeaders(w http.ResponseWriter, r *http.Request, f *flow.Flow) {
	public := cspOrigin(e.urls.Base())
	formAction := []string{"'self'"}
	add := func(s string) {
		if o := cspOrigin(s); o != "" && !slices.Contains(formAction, o) {
			formAction = append(formAction, o)
		}
	}
	add(e.urls.Base())
	add(e.urls.DefaultReturn())
	for _, u := range e.cfg.AllowedReturnURLs {
		add(u)
		addAppLink(&formAction, u)
	}
	for _, u := range e.cfg.UIURLs {
		add(u)
	}
	if f != nil {
		add(f.ReturnTo)
		addAppLink(&formAction, f.ReturnTo)
		add(f.UI.Action)
	}
	script := "'self'"
	if public != "" {
		script += " " + public
	}
	img := "'self' data:"
	if o := cspOrigin(e.cfg.UILogoURL); o != "" {
		img += " " + o
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src "+script+"; img-src "+img+
		"; form-action "+strings.Join(formAction, " ")+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func (e *Engine) render(w http.ResponseWriter, status int, v *uiView) {
	var buf bytes.Buffer
	if err := uiTmpl.ExecuteTemplate(&buf, "page", v); err != nil {
		e.logger.Error("rendering page", zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// --- flow pages ---

var flowPages = map[string]bool{"login": true, "registration": true, "settings": true, "recovery": true, "verification": true}

func (e *Engine) uiPage(w http.ResponseWriter, r *http.Request) {
	page := r.PathValue("page")
	switch {
	case page == "error":
		e.uiErrorPage(w, r)
	case page == "sessions":
		e.uiSessionsPage(w, r)
	case page == "welcome":
		e.uiWelcome(w, r)
	case flowPages[page]:
		e.uiFlowPage(w, r, page)
	default:
		wire.WriteError(w, r, wire.NotFound())
	}
}

// restartURL is the browser flow init URL for kind; a known flow keeps the
// query it was created with (return_to, refresh, aal).
func (e *Engine) restartURL(r *http.Request, kind string, f *flow.Flow) string {
	u := e.urls.Public("self-service/" + kind + "/browser")
	if f != nil {
		if q, _ := flow.RequestQuery(f.RequestURL); q != "" {
			if vals, err := url.ParseQuery(q); err == nil {
				keep := url.Values{}
				for _, k := range []string{"return_to", "refresh", "aal", "login_challenge"} {
					if v := vals.Get(k); v != "" {
						keep.Set(k, v)
					}
				}
				if len(keep) > 0 {
					u += "?" + keep.Encode()
				}
			}
		}
	}
	return u
}

func (e *Engine) uiFlowPage(w http.ResponseWriter, r *http.Request, kind string) {
	f, err := e.kernel.Load(r.Context(), r.URL.Query().Get("flow"), kind)
	if err != nil && !errors.Is(err, flow.ErrNotFound) {
		e.logger.Error("loading flow for page", zap.Error(err))
	}
	if err != nil || f.Type != "browser" {
		wire.Redirect(w, r, http.StatusSeeOther, e.restartURL(r, kind, nil))
		return
	}
	cookie := e.kernel.CSRFFromCookie(r)
	if cookie == nil || !token.Equal(cookie, f.CSRFToken) || e.now().After(f.ExpiresAt) {
		wire.Redirect(w, r, http.StatusSeeOther, e.restartURL(r, kind, f))
		return
	}
	e.kernel.SetCSRFNode(f, f.CSRFToken)
	if kind == "settings" {
		// Backup codes (kept sealed on the flow) are shown only to a
		// session of the flow's identity that may use settings.
		if sess, err := e.sessions.Current(r); err == nil && sess.IdentityID == f.IdentityID {
			if ident, err := e.store.GetIdentity(r.Context(), sess.IdentityID); err == nil {
				if !e.sessions.AALSatisfied(sess, ident) {
					// A second factor is due first (getSettingsFlow's
					// 403): to the aal2 login and back to this flow.
					self := wire.WithQuery(e.urls.Public(strings.TrimPrefix(e.cfg.UIPrefix, "/")+"settings"), "flow", f.ID)
					wire.Redirect(w, r, http.StatusSeeOther, e.settings.AAL2LoginURL(r, self))
					return
				}
				e.settings.Reveal(r.Context(), f)
			}
		}
	}
	v := e.flowView(r, f)
	e.pageHeaders(w, r, f)
	e.render(w, http.StatusOK, v)
}

func (e *Engine) flowView(r *http.Request, f *flow.Flow) *uiView {
	v := e.newView(f.Kind)
	v.Title, v.Subtitle = tr(f.Kind+".title"), ""
	switch f.Kind {
	case "login":
		switch {
		case f.RequestedAAL == "aal2":
			v.Title = tr("login.aal2.title")
			if len(f.UI.Messages) == 0 {
				v.Subtitle = tr("login.aal2.subtitle")
			}
		case f.Refresh:
			v.Title, v.Subtitle = tr("login.refresh.title"), tr("login.refresh.subtitle")
		default:
			v.Subtitle = tr("login.subtitle", v.Product)
		}
	case "registration":
		v.Subtitle = tr("registration.subtitle", v.Product)
	case "settings":
		v.Subtitle = tr("settings.subtitle")
		v.Wide = true
	default:
		v.Subtitle = tr(f.Kind + ".subtitle")
	}
	v.Messages = f.UI.Messages
	e.buildForms(v, f)
	e.flowLinks(r, v, f)
	return v
}

// flowLinks adds navigation: the footer links of the unauthenticated flows,
// the account navigation on settings.
func (e *Engine) flowLinks(r *http.Request, v *uiView, f *flow.Flow) {
	withReturn := func(kind string) string {
		u := e.urls.Public("self-service/" + kind + "/browser")
		if f.ReturnTo != "" {
			u = wire.WithQuery(u, "return_to", f.ReturnTo)
		}
		return u
	}
	switch f.Kind {
	case "login":
		if f.RequestedAAL == "aal2" || f.Refresh {
			if sess, err := e.sessions.Current(r); err == nil {
				key := "link.logout"
				if f.RequestedAAL == "aal2" {
					key = "link.logout.aal2"
				}
				v.Footer = append(v.Footer, uiFooter{Link: uiLink{Href: e.logoutURL(r, sess), Text: tr(key)}})
			}
			return
		}
		if n := f.UI.Find("identifier"); n != nil && n.Input().Type == "hidden" {
			// A later step (identifier-first, code sent): the way back
			// to typing another identifier.
			v.Footer = append(v.Footer, uiFooter{Link: uiLink{Href: withReturn("login"), Text: tr("link.login.other")}})
		}
		if e.cfg.RecoveryEnabled {
			v.Footer = append(v.Footer, uiFooter{Link: uiLink{Href: withReturn("recovery"), Text: tr("link.recovery")}})
		}
		if !e.cfg.DisableRegistration {
			v.Footer = append(v.Footer, uiFooter{Prompt: tr("link.signup.prompt"), Link: uiLink{Href: withReturn("registration"), Text: tr("link.signup")}})
		}
	case "registration":
		v.Footer = append(v.Footer, uiFooter{Prompt: tr("link.login.prompt"), Link: uiLink{Href: withReturn("login"), Text: tr("link.login")}})
	case "recovery", "verification":
		if sess, err := e.sessions.Current(r); err == nil {
			e.accountNav(r, v, sess, "")
		} else {
			v.Footer = append(v.Footer, uiFooter{Link: uiLink{Href: withReturn("login"), Text: tr("link.back.login")}})
		}
	case "settings":
		if sess, err := e.sessions.Current(r); err == nil {
			e.accountNav(r, v, sess, "settings")
		}
	}
}

// accountNav is the navigation of signed-in pages.
func (e *Engine) accountNav(r *http.Request, v *uiView, sess *sessionstore.Session, current string) {
	v.Nav = []uiLink{
		{Href: e.cfg.UIPrefix, Text: tr("link.home"), Current: current == "welcome"},
		{Href: e.urls.Public("self-service/settings/browser"), Text: tr("nav.settings"), Current: current == "settings"},
		{Href: e.cfg.UIPrefix + "sessions", Text: tr("link.sessions"), Current: current == "sessions"},
		{Href: e.logoutURL(r, sess), Text: tr("link.logout")},
	}
}

func (e *Engine) logoutURL(r *http.Request, sess *sessionstore.Session) string {
	return e.urls.Public("self-service/logout?token=" + e.sessions.LogoutToken(sess.ID))
}

// --- generic node rendering ---

// nodeVisible reports whether n shows something (hidden inputs and scripts
// do not).
func nodeVisible(n *node.Node) bool {
	switch n.Type {
	case "input":
		a := n.Input()
		return a != nil && a.Type != "hidden"
	case "script":
		return false
	}
	return true
}

func isButton(n *node.Node) bool {
	a := n.Input()
	return a != nil && (a.Type == "submit" || a.Type == "button")
}

var dangerName = regexp.MustCompile(`(^|_)(unlink|remove|disable|delete)$`)

// groupOrder returns the non-default groups in order of first appearance.
func groupOrder(nodes []*node.Node) []string {
	var out []string
	for _, n := range nodes {
		if n.Group != "default" && !slices.Contains(out, n.Group) {
			out = append(out, n.Group)
		}
	}
	return out
}

func groupHeading(g string) string {
	if s, ok := uiStrings["group."+g]; ok {
		return s
	}
	// A method without a chrome string still gets a readable heading.
	s := strings.ReplaceAll(g, "_", " ")
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// buildForms turns the flow's nodes into forms. When the default group has
// visible fields (identifier, traits) every method shares them, so the flow
// is one form with a section per method group; otherwise each group is its
// own form (settings, second factors, the credential step of registration),
// so one group's required fields never block another group's submit.
func (e *Engine) buildForms(v *uiView, f *flow.Flow) {
	nodes := f.UI.Nodes
	var sharedHidden []uiHidden
	defaultVisible := false
	hasMethodNode := map[string]bool{}
	for _, n := range nodes {
		a := n.Input()
		if a != nil && a.Name == "method" {
			hasMethodNode[n.Group] = true
		}
		if n.Type == "script" {
			if s, ok := n.Attributes.(*node.ScriptAttrs); ok && !slices.ContainsFunc(v.Scripts, func(x *node.ScriptAttrs) bool { return x.Src == s.Src }) {
				v.Scripts = append(v.Scripts, s)
			}
			continue
		}
		if n.Group != "default" {
			continue
		}
		if a != nil && a.Type == "hidden" {
			sharedHidden = append(sharedHidden, uiHidden{a.Name, valueString(a.Value)})
			if s := valueString(a.Value); s != "" && (n.Meta.Label != nil || a.Name == "identifier") {
				label := tr("field.account")
				if n.Meta.Label != nil {
					label = n.Meta.Label.Text
				}
				v.Summary = append(v.Summary, uiSummary{Label: label, Value: s})
			}
			v.Messages = append(v.Messages, n.Messages...)
			continue
		}
		if nodeVisible(n) {
			defaultVisible = true
		}
	}
	groups := groupOrder(nodes)
	settings := f.Kind == "settings"

	// Headings help when several methods with fields compete; settings
	// always names its sections.
	withFields := 0
	for _, g := range groups {
		for _, n := range nodes {
			if n.Group == g && nodeVisible(n) && !isButton(n) {
				withFields++
				break
			}
		}
	}
	showHeadings := settings || withFields > 1

	idx := 0
	nextID := func(name string) string {
		idx++
		return fmt.Sprintf("n%d-%s", idx, sanitizeID(name))
	}
	primaryTaken := false
	newItems := func(form *uiForm, ns []*node.Node) []*uiItem {
		var items []*uiItem
		for _, n := range ns {
			it := e.nodeItem(n, nextID)
			if it == nil {
				continue
			}
			if it.Kind == "hidden" {
				form.Hidden = append(form.Hidden, uiHidden{it.Name, it.Value})
				continue
			}
			if it.Kind == "trigger" || it.OnLoad != "" {
				v.NeedsJS = true
			}
			if it.Kind == "submit" || it.Kind == "trigger" {
				switch {
				case dangerName.MatchString(it.Name):
					it.Style = "danger"
				case !primaryTaken:
					it.Style = "primary"
					primaryTaken = true
				default:
					it.Style = "secondary"
				}
			}
			items = append(items, it)
		}
		return items
	}

	if defaultVisible {
		form := &uiForm{ID: "form-flow", Action: f.UI.Action, Method: orPOST(f.UI.Method), Hidden: slices.Clone(sharedHidden)}
		var def []*node.Node
		for _, n := range nodes {
			if n.Group == "default" && nodeVisible(n) {
				def = append(def, n)
			}
		}
		form.Sections = append(form.Sections, &uiSection{Group: "default", Items: newItems(form, def)})
		methodSections := 0
		for _, g := range groups {
			ns := nodesOf(nodes, g)
			sec := &uiSection{Group: g}
			sec.Items = newItems(form, ns)
			if len(sec.Items) == 0 {
				continue
			}
			if isMethodSection(ns) {
				if methodSections > 0 {
					sec.Sep = true
				}
				methodSections++
				if showHeadings {
					sec.Heading = groupHeading(g)
				}
			}
			form.Sections = append(form.Sections, sec)
		}
		hiddenMethod := false
		for _, h := range form.Hidden {
			if h.Name == "method" {
				hiddenMethod = true
			}
		}
		// A submit that is not a method choice (Back, Resend) carries no
		// method in a shared form: it submits a small form of its own with
		// the flow's hidden fields and method=<its group>.
		for _, sec := range form.Sections {
			for _, it := range sec.Items {
				if it.Kind == "submit" && it.Name != "method" && !hiddenMethod && sec.Group != "default" {
					alt := &uiForm{ID: "form-alt-" + strconv.Itoa(len(v.AltForms)+1), Action: form.Action, Method: form.Method,
						Hidden: append(slices.Clone(sharedHidden), uiHidden{"method", sec.Group})}
					it.Form = alt.ID
					it.NoValidate = true
					if it.Style != "danger" {
						it.Style = "quiet"
					}
					v.AltForms = append(v.AltForms, alt)
				}
			}
		}
		markNoValidate(form)
		v.Forms = append(v.Forms, form)
		autofocus(v)
		return
	}

	methodForms := 0
	for _, g := range groups {
		ns := nodesOf(nodes, g)
		form := &uiForm{ID: "form-" + sanitizeID(g), Group: g, Action: f.UI.Action, Method: orPOST(f.UI.Method), Hidden: slices.Clone(sharedHidden)}
		if !hasMethodNode[g] {
			form.Hidden = append(form.Hidden, uiHidden{"method", g})
		}
		if settings {
			primaryTaken = false
		}
		items := newItems(form, ns)
		if len(items) == 0 {
			continue
		}
		sec := &uiSection{Group: g, Items: items}
		form.Sections = []*uiSection{sec}
		if isMethodSection(ns) || settings {
			if showHeadings {
				form.Heading = groupHeading(g)
				if settings {
					form.Desc = uiStrings["desc.settings."+g]
				}
			}
			if methodForms > 0 && !settings {
				form.Sep = true
			}
			methodForms++
		} else {
			// Only auxiliary buttons (Back): quiet, below the methods.
			form.Aux = true
			for _, it := range items {
				if it.Style != "danger" && (it.Kind == "submit" || it.Kind == "trigger") {
					if it.Style == "primary" {
						primaryTaken = false
					}
					it.Style = "quiet"
				}
			}
		}
		markNoValidate(form)
		v.Forms = append(v.Forms, form)
	}
	autofocus(v)
}

// isMethodSection: the group offers a way to complete the flow (a method
// submit, a trigger button or fields), not only auxiliary buttons.
func isMethodSection(ns []*node.Node) bool {
	for _, n := range ns {
		a := n.Input()
		switch {
		case a == nil:
			if nodeVisible(n) {
				return true
			}
		case a.Type == "hidden":
		case a.Type == "submit":
			if a.Name == "method" || a.Name == "provider" || a.Name == "link" {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// markNoValidate: a submit may skip the browser's required-field check when
// its form has required fields of another group, or when it is not the
// method's own submit (Resend, Back, Remove, …): the server validates.
func markNoValidate(form *uiForm) {
	required := map[string]bool{}
	for _, sec := range form.Sections {
		for _, it := range sec.Items {
			if it.Required && (it.Kind == "field" || it.Kind == "select" || it.Kind == "checkbox") {
				required[sec.Group] = true
			}
		}
	}
	for _, sec := range form.Sections {
		for _, it := range sec.Items {
			if it.Kind != "submit" {
				continue
			}
			if it.Name != "method" {
				it.NoValidate = true
				continue
			}
			for g := range required {
				if g != sec.Group && g != "default" {
					it.NoValidate = true
				}
			}
		}
	}
}

// autofocus focuses the first invalid field, else the first empty field
// of the first form.
func autofocus(v *uiView) {
	var firstEmpty *uiItem
	for fi, form := range v.Forms {
		for _, sec := range form.Sections {
			for _, it := range sec.Items {
				if it.Kind != "field" || it.Disabled {
					continue
				}
				if it.Invalid {
					it.Autofocus = true
					return
				}
				if firstEmpty == nil && fi == 0 && it.Value == "" {
					firstEmpty = it
				}
			}
		}
	}
	// Settings opens on its first section without jumping into a field.
	if firstEmpty != nil && len(v.Messages) == 0 && v.Page != "settings" {
		firstEmpty.Autofocus = true
	}
}

func nodesOf(nodes []*node.Node, g string) []*node.Node {
	var out []*node.Node
	for _, n := range nodes {
		if n.Group == g && n.Type != "script" {
			out = append(out, n)
		}
	}
	return out
}

func orPOST(m string) string {
	if m == "" {
		return "POST"
	}
	return m
}

var nonID = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

func sanitizeID(s string) string { return nonID.ReplaceAllString(s, "-") }

// valueString renders a node value for an HTML attribute.
func valueString(v any) string {
	switch s := v.(type) {
	case nil:
		return ""
	case string:
		return s
	case bool:
		return strconv.FormatBool(s)
	case float64:
		return strconv.FormatFloat(s, 'f', -1, 64)
	case json.Number:
		return s.String()
	case int:
		return strconv.Itoa(s)
	default:
		b, _ := json.Marshal(s)
		return string(b)
	}
}

func labelText(n *node.Node, fallback string) string {
	if n.Meta.Label != nil && n.Meta.Label.Text != "" {
		return n.Meta.Label.Text
	}
	if a := n.Input(); a != nil && a.Label != nil && a.Label.Text != "" {
		return a.Label.Text
	}
	return fallback
}

// humanName turns traits.name.first into "First".
func humanName(name string) string {
	parts := strings.Split(name, ".")
	s := strings.ReplaceAll(parts[len(parts)-1], "_", " ")
	if s == "" {
		return name
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var dataImage = regexp.MustCompile(`^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=]+$`)

// safeSrc accepts data:image URLs (QR codes), absolute paths and http(s).
func safeSrc(s string) template.URL {
	if dataImage.MatchString(s) {
		return template.URL(s) // #nosec G203 -- matched dataImage: a base64 image, nothing executable
	}
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		return template.URL(s) // #nosec G203 -- a same-origin path
	}
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return template.URL(u.String()) // #nosec G203 -- an http(s) URL; the attribute is still escaped
	}
	return ""
}

// nodeItem renders one node; nil for nodes that render nothing.
func (e *Engine) nodeItem(n *node.Node, nextID func(string) string) *uiItem {
	it := &uiItem{Messages: n.Messages, Group: n.Group}
	for _, m := range n.Messages {
		if m.Type == "error" {
			it.Invalid = true
		}
	}
	switch n.Type {
	case "input":
		a := n.Input()
		if a == nil {
			return nil
		}
		it.Name, it.Type, it.Value = a.Name, a.Type, valueString(a.Value)
		it.Required, it.Disabled = a.Required, a.Disabled
		it.Autocomplete, it.Pattern, it.MaxLength = a.Autocomplete, a.Pattern, a.MaxLength
		it.ID = nextID(a.Name)
		switch a.Type {
		case "hidden":
			it.Kind = "hidden"
			if a.OnLoadTrigger != "" {
				// A hidden input with an onload trigger (passkey
				// autocomplete) stays in the DOM where ui.js finds it.
				it.Kind, it.OnLoad = "onload", a.OnLoadTrigger
			}
		case "submit", "button":
			it.Kind = "submit"
			it.Label = labelText(n, tr("submit"))
			if a.OnClickTrigger != "" || a.Type == "button" {
				it.Kind = "trigger"
				it.Trigger, it.TriggerValue = a.OnClickTrigger, it.Value
			}
		case "checkbox":
			it.Kind = "checkbox"
			it.Label = labelText(n, humanName(a.Name))
			it.Checked = a.Value == true || it.Value == "true"
		default:
			it.Kind = "field"
			it.Label = labelText(n, humanName(a.Name))
			if it.Autocomplete == "" {
				switch {
				case a.Name == "identifier":
					it.Autocomplete = "username"
				case a.Type == "email":
					it.Autocomplete = "email"
				}
			}
			if len(a.Options) > 0 {
				it.Kind = "select"
				for _, o := range a.Options {
					opt := uiOption{}
					if m, ok := o.(map[string]any); ok {
						opt.Value = valueString(m["value"])
						opt.Label = opt.Value
						if l, ok := m["label"].(map[string]any); ok {
							if t, ok := l["text"].(string); ok && t != "" {
								opt.Label = t
							}
						}
					} else {
						opt.Value = valueString(o)
						opt.Label = opt.Value
					}
					opt.Selected = opt.Value == it.Value
					it.Options = append(it.Options, opt)
				}
			}
		}
		if a.OnLoadTrigger != "" && it.Kind != "onload" {
			it.OnLoad = a.OnLoadTrigger
		}
		return it
	case "text":
		a, ok := n.Attributes.(*node.TextAttrs)
		if !ok {
			return nil
		}
		it.ID = nextID(a.ID)
		it.Kind = "text"
		it.Label = labelText(n, "")
		it.Text = a.Text.Text
		if secrets, ok := a.Text.Context["secrets"].([]any); ok {
			it.Kind = "codes"
			for _, s := range secrets {
				c := uiCode{}
				switch x := s.(type) {
				case map[string]any:
					c.Text, _ = x["text"].(string)
					if id, ok := x["id"].(float64); ok && int(id) == 1050014 {
						c.Used = true
					}
					if ctx, ok := x["context"].(map[string]any); ok {
						if _, used := ctx["used_at"]; used {
							c.Used = true
						}
					}
				case node.Text:
					c.Text, c.Used = x.Text, x.ID == 1050014
				case string:
					c.Text = x
				}
				it.Codes = append(it.Codes, c)
			}
		} else if secrets, ok := a.Text.Context["secrets"].([]node.Text); ok {
			it.Kind = "codes"
			for _, s := range secrets {
				it.Codes = append(it.Codes, uiCode{Text: s.Text, Used: s.ID == 1050014})
			}
		} else if sec, ok := a.Text.Context["secret"].(string); ok && sec != "" {
			it.Kind = "secret"
			it.Text = sec
		}
		return it
	case "img":
		a, ok := n.Attributes.(*node.ImageAttrs)
		if !ok {
			return nil
		}
		it.Kind, it.ID = "img", nextID(a.ID)
		it.Src, it.Width, it.Height = safeSrc(a.Src), a.Width, a.Height
		it.Label = labelText(n, "")
		if it.Src == "" {
			return nil
		}
		return it
	case "a":
		a, ok := n.Attributes.(*node.AnchorAttrs)
		if !ok {
			return nil
		}
		it.Kind, it.ID = "a", nextID(a.ID)
		if !strings.HasPrefix(a.Href, "data:") {
			it.Href = safeSrc(a.Href)
		}
		it.Text = a.Title.Text
		if it.Href == "" {
			return nil
		}
		return it
	case "script":
		return nil
	default:
		// div and any node type added later: id, class and data-*.
		var m map[string]any
		if b, err := json.Marshal(n.Attributes); err == nil {
			_ = json.Unmarshal(b, &m)
		}
		it.Kind = "div"
		id, _ := m["id"].(string)
		it.ID = nextID(id)
		it.Class, _ = m["class"].(string)
		if d, ok := m["data"].(map[string]any); ok {
			it.Data = map[string]string{}
			for k, v := range d {
				it.Data[sanitizeID(k)] = valueString(v)
			}
		}
		it.Label = labelText(n, "")
		return it
	}
}

// --- error page ---

func (e *Engine) uiErrorPage(w http.ResponseWriter, r *http.Request) {
	v := e.newView("error")
	v.Title, v.Subtitle = tr("error.title"), tr("error.subtitle")
	ev := &uiErrorView{}
	status := http.StatusOK
	if fe := e.loadStoredFlowError(r); fe != nil && fe.Error != nil {
		ev.Found = true
		ev.Code, ev.Status, ev.Message, ev.Reason = fe.Error.Code, fe.Error.Status, fe.Error.Message, fe.Error.Reason
		ev.ID = fe.ID
		if to, ok := fe.Error.Details["redirect_to"].(string); ok && cspOrigin(to) != "" {
			ev.Retry = to
		}
	} else {
		status = http.StatusNotFound
		ev.Message = tr("error.notfound")
	}
	v.Error = ev
	if sess, err := e.sessions.Current(r); err == nil {
		e.accountNav(r, v, sess, "")
	}
	v.LoginURL = e.urls.Public("self-service/login/browser")
	e.pageHeaders(w, r, nil)
	e.render(w, status, v)
}

func (e *Engine) loadStoredFlowError(r *http.Request) *flow.FlowError {
	id := r.URL.Query().Get("id")
	if _, err := uuid.Parse(id); err != nil {
		return nil
	}
	fe, err := e.kernel.LoadError(r.Context(), id)
	if err != nil {
		return nil
	}
	return fe
}

// --- signed-in pages ---

// pageSession returns the session for a signed-in page, or answers with a
// redirect to login (or the second factor) and returns nil.
func (e *Engine) pageSession(w http.ResponseWriter, r *http.Request, page string) (*sessionstore.Session, *sessionstore.Identity) {
	self := e.urls.Public(strings.TrimPrefix(e.cfg.UIPrefix, "/") + page)
	sess, err := e.sessions.Current(r)
	if err != nil {
		wire.Redirect(w, r, http.StatusSeeOther, e.sessions.LoginBrowserURL(r, self))
		return nil, nil
	}
	ident, err := e.store.GetIdentity(r.Context(), sess.IdentityID)
	if err != nil {
		wire.Redirect(w, r, http.StatusSeeOther, e.sessions.LoginBrowserURL(r, self))
		return nil, nil
	}
	if !e.sessions.AALSatisfied(sess, ident) {
		wire.Redirect(w, r, http.StatusSeeOther, wire.WithQuery(e.urls.Public("self-service/login/browser"), "aal", "aal2", "return_to", self))
		return nil, nil
	}
	return sess, ident
}

func (e *Engine) uiWelcome(w http.ResponseWriter, r *http.Request) {
	e.kernel.EnsureCSRF(w, r)
	v := e.newView("welcome")
	wv := &uiWelcomeView{
		Login:     e.urls.Public("self-service/login/browser"),
		Register:  e.urls.Public("self-service/registration/browser"),
		Recovery:  e.urls.Public("self-service/recovery/browser"),
		ShowReg:   !e.cfg.DisableRegistration,
		ShowRecov: e.cfg.RecoveryEnabled,
	}
	v.Title, v.Subtitle = tr("welcome.title"), tr("welcome.subtitle")
	if sess, err := e.sessions.Current(r); err == nil {
		if ident, err := e.store.GetIdentity(r.Context(), sess.IdentityID); err == nil && e.sessions.AALSatisfied(sess, ident) {
			wv.SignedIn = true
			name, addr := identityDisplay(ident)
			if name != "" {
				v.Title = tr("welcome.title.signedin", name)
			}
			v.Subtitle = tr("welcome.subtitle.signedin", addr)
			wv.Settings = e.urls.Public("self-service/settings/browser")
			wv.Sessions = e.cfg.UIPrefix + "sessions"
			wv.Logout = e.logoutURL(r, sess)
			if ret := e.urls.DefaultReturn(); !strings.HasPrefix(ret, e.urls.Public(strings.TrimPrefix(e.cfg.UIPrefix, "/"))) {
				wv.Continue = ret
			}
			e.accountNav(r, v, sess, "welcome")
		}
	}
	v.Welcome = wv
	e.pageHeaders(w, r, nil)
	e.render(w, http.StatusOK, v)
}

// identityDisplay returns a first name (if the traits have one) and the
// identifier to show for ident.
func identityDisplay(ident *sessionstore.Identity) (name, addr string) {
	var traits map[string]any
	_ = json.Unmarshal(ident.Traits, &traits)
	if n, ok := traits["name"].(map[string]any); ok {
		name, _ = n["first"].(string)
	} else if n, ok := traits["name"].(string); ok {
		name = n
	}
	if c, ok := ident.Credentials["password"]; ok && len(c.Identifiers) > 0 {
		addr = c.Identifiers[0]
	}
	if addr == "" {
		for _, k := range []string{"email", "username", "phone"} {
			if s, ok := traits[k].(string); ok && s != "" {
				addr = s
				break
			}
		}
	}
	if addr == "" {
		addr = ident.ID
	}
	return strings.TrimSpace(name), addr
}

func (e *Engine) uiSessionsPage(w http.ResponseWriter, r *http.Request) {
	csrf := e.kernel.EnsureCSRF(w, r)
	sess, _ := e.pageSession(w, r, "sessions")
	if sess == nil {
		return
	}
	all, err := e.store.ListSessionsByIdentity(r.Context(), sess.IdentityID)
	if err != nil {
		e.logger.Error("listing sessions for page", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to list sessions"))
		return
	}
	v := e.newView("sessions")
	v.Wide = true
	v.Title, v.Subtitle = tr("sessions.title"), tr("sessions.subtitle")
	sv := &uiSessionsView{CSRF: token.MaskCSRF(csrf), Revoke: e.cfg.UIPrefix + "sessions/revoke", RevokeOthers: e.cfg.UIPrefix + "sessions/revoke-others"}
	sv.Current = e.sessionItem(sess)
	var others []*sessionstore.Session
	for _, s := range all {
		if s.ID != sess.ID && e.sessions.Active(s) {
			others = append(others, s)
		}
	}
	slices.SortFunc(others, func(a, b *sessionstore.Session) int { return b.AuthenticatedAt.Compare(a.AuthenticatedAt) })
	for _, s := range others {
		sv.Others = append(sv.Others, e.sessionItem(s))
	}
	v.Sessions = sv
	switch r.URL.Query().Get("done") {
	case "revoked":
		v.Messages = []node.Text{{Text: tr("sessions.revoked"), Type: "success"}}
	case "revoked-others":
		n, _ := strconv.Atoi(r.URL.Query().Get("count"))
		msg := tr("sessions.revoked.others", n)
		switch n {
		case 0:
			msg = tr("sessions.revoked.others.none")
		case 1:
			msg = tr("sessions.revoked.others.one")
		}
		v.Messages = []node.Text{{Text: msg, Type: "success"}}
	}
	e.accountNav(r, v, sess, "sessions")
	e.pageHeaders(w, r, nil)
	e.render(w, http.StatusOK, v)
}

func (e *Engine) sessionItem(s *sessionstore.Session) *uiSession {
	it := &uiSession{ID: s.ID, Device: tr("sessions.unknown.device")}
	if len(s.Devices) > 0 {
		d := s.Devices[len(s.Devices)-1]
		if d.UserAgent != nil && *d.UserAgent != "" {
			it.UserAgent = *d.UserAgent
			it.Device = describeUserAgent(*d.UserAgent)
		}
		if d.IPAddress != nil {
			it.IP = hostOnly(*d.IPAddress)
		}
		if d.Location != "" {
			it.IP += " · " + d.Location
		}
	}
	now := e.now()
	it.SignedIn, it.SignedInISO = relativeTime(now, s.AuthenticatedAt), s.AuthenticatedAt.UTC().Format(time.RFC3339)
	it.Expires, it.ExpiresISO = s.ExpiresAt.UTC().Format("2 Jan 2006, 15:04 MST"), s.ExpiresAt.UTC().Format(time.RFC3339)
	var methods []string
	for _, m := range s.AuthenticationMethods {
		name := m.Method
		if t, ok := uiStrings["method."+m.Method]; ok {
			name = t
		}
		if !slices.Contains(methods, name) {
			methods = append(methods, name)
		}
	}
	it.Methods = strings.Join(methods, " + ")
	it.RevokeLabel = tr("sessions.revoke.label", it.Device)
	return it
}

func hostOnly(addr string) string {
	if i := strings.LastIndex(addr, ":"); i > 0 && !strings.HasSuffix(addr, "]") && strings.Count(addr, ":") == 1 {
		return addr[:i]
	}
	if strings.HasPrefix(addr, "[") {
		if i := strings.Index(addr, "]"); i > 0 {
			return addr[1:i]
		}
	}
	return addr
}

func relativeTime(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return tr("time.now")
	case d < 2*time.Minute:
		return tr("time.minute")
	case d < time.Hour:
		return tr("time.minutes", int(d/time.Minute))
	case d < 2*time.Hour:
		return tr("time.hour")
	case d < 48*time.Hour:
		return tr("time.hours", int(d/time.Hour))
	default:
		return tr("time.days", int(d/(24*time.Hour)))
	}
}

// describeUserAgent names the browser and system of a User-Agent header
// ("Chrome on Linux"); unknown agents are shown by their first product.
func describeUserAgent(ua string) string {
	browser := ""
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"}, {"Firefox/", "Firefox"},
		{"HeadlessChrome/", "Headless Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"}, {"CriOS/", "Chrome"},
		{"FxiOS/", "Firefox"}, {"Version/", "Safari"}, {"curl/", "curl"}, {"Go-http-client/", "Go HTTP client"},
		{"okhttp/", "OkHttp"}, {"python-requests/", "Python requests"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, s := range []struct{ token, name string }{
		{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"}, {"CrOS", "ChromeOS"},
		{"Mac OS X", "macOS"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return tr("sessions.device", browser, system)
	case browser != "":
		return browser
	case system != "":
		return system
	}
	first, _, _ := strings.Cut(ua, " ")
	first, _, _ = strings.Cut(first, "/")
	if first == "" {
		return tr("sessions.unknown.device")
	}
	return first
}

// uiSessionPost checks a POST from the sessions page: the CSRF token of
// the form against the CSRF cookie, and a session.
func (e *Engine) uiSessionPost(w http.ResponseWriter, r *http.Request) (*sessionstore.Session, map[string]any) {
	body, err := wire.DecodeBody(r)
	if err != nil {
		e.kernel.WriteError(w, r, "browser", wire.BadRequest(err.Error()))
		return nil, nil
	}
	if cerr := e.kernel.CheckCSRF(r, &flow.Flow{}, wire.BodyString(body, "csrf_token")); cerr != nil {
		e.kernel.WriteError(w, r, "browser", cerr)
		return nil, nil
	}
	sess, _ := e.pageSession(w, r, "sessions")
	if sess == nil {
		return nil, nil
	}
	return sess, body
}

func (e *Engine) uiRevokeSession(w http.ResponseWriter, r *http.Request) {
	sess, body := e.uiSessionPost(w, r)
	if sess == nil {
		return
	}
	id := wire.BodyString(body, "session_id")
	if _, err := uuid.Parse(id); err != nil || id == sess.ID {
		e.kernel.WriteError(w, r, "browser", wire.BadRequest("The session id is missing or invalid."))
		return
	}
	// Only the caller's own sessions can be revoked.
	if other, err := e.store.GetSession(r.Context(), id); err == nil && other.IdentityID == sess.IdentityID {
		if err := e.store.RevokeSession(r.Context(), id); err != nil && !errors.Is(err, sessionstore.ErrNotFound) {
			wire.WriteError(w, r, wire.StoreError(err, "unable to revoke the session"))
			return
		}
	}
	wire.Redirect(w, r, http.StatusSeeOther, e.cfg.UIPrefix+"sessions?done=revoked")
}

func (e *Engine) uiRevokeOtherSessions(w http.ResponseWriter, r *http.Request) {
	sess, _ := e.uiSessionPost(w, r)
	if sess == nil {
		return
	}
	n, err := e.store.RevokeSessionsOfIdentity(r.Context(), sess.IdentityID, sess.ID)
	if err != nil {
		wire.WriteError(w, r, wire.StoreError(err, "unable to revoke sessions"))
		return
	}
	wire.Redirect(w, r, http.StatusSeeOther, e.cfg.UIPrefix+"sessions?done=revoked-others&count="+strconv.Itoa(n))
}

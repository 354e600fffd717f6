package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-kratos/caddy-kratos/flows"
)

func init() {
	caddy.RegisterModule(new(Gate))
}

// IdentityHeader is the request header through which the gate tells the
// upstream who is logged in. The gate removes any copy the client sent.
const IdentityHeader = "X-Kratos-Authenticated-Identity-Id"

// Gate lets a request through only with a valid Kratos session (the same
// check as GET /sessions/whoami). It sets the X-Kratos-Authenticated-Identity-Id
// request header and the placeholders {http.auth.user.id},
// {kratos.identity.id}, {kratos.session.id} and {kratos.session.aal}.
// Without a session, browser navigations are redirected (303) to the login
// flow with return_to set to the requested URL; other requests get 401 in
// Kratos's JSON error shape.
type Gate struct {
	// LoginURL is where browsers without a session are sent, with
	// return_to=<requested URL> added to its query. An absolute http(s)
	// URL or a path on the same host; placeholders are replaced per
	// request. Default: the login flow of the `kratos` app
	// (<public_url>/self-service/login/browser).
	LoginURL string `json:"login_url,omitempty"`

	// Allow lists request paths that pass without a session, matched like
	// Caddy's path matcher (exact, /prefix/*, *suffix, case-insensitive).
	// Default: none.
	Allow []string `json:"allow,omitempty"`

	auth  authenticator
	allow caddyhttp.MatchPath
	login *url.URL // parsed LoginURL when it has no placeholders
}

// authenticator is what Gate needs from the engine (*flows.Engine).
type authenticator interface {
	Authenticate(r *http.Request) (*flows.SessionInfo, error)
	LoginBrowserURL(r *http.Request, returnTo string) string
}

// CaddyModule returns the Caddy module information.
func (*Gate) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.kratos_gate",
		New: func() caddy.Module { return new(Gate) },
	}
}

// Provision gets the engine from the `kratos` app (created with defaults
// if the config has none) and prepares the matchers.
func (g *Gate) Provision(ctx caddy.Context) error {
	if err := g.provision(); err != nil {
		return err
	}
	app, err := kratosApp(ctx)
	if err != nil {
		return err
	}
	g.auth = app.Engine()
	return nil
}

// provision is the part of Provision that needs no Caddy context.
func (g *Gate) provision() error {
	for _, p := range g.Allow {
		if p == "" {
			return fmt.Errorf("allow: empty path pattern")
		}
	}
	if len(g.Allow) > 0 {
		g.allow = append(caddyhttp.MatchPath(nil), g.Allow...)
		if err := g.allow.Provision(caddy.Context{}); err != nil {
			return fmt.Errorf("allow: %w", err)
		}
	}
	g.login = nil
	if g.LoginURL != "" && !hasPlaceholder(g.LoginURL) {
		if err := checkURLOrPath(g.LoginURL); err != nil {
			return fmt.Errorf("login_url: %w", err)
		}
		u, err := url.Parse(g.LoginURL)
		if err != nil {
			return fmt.Errorf("login_url: %w", err)
		}
		g.login = u
	}
	return nil
}

// ServeHTTP checks the session and calls next, or answers 303/401.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Never trust the client's copy, not even on allowed paths.
	stripIdentityHeader(r.Header)

	if g.allow != nil {
		ok, err := g.allow.MatchWithError(r)
		if err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, err)
		}
		if ok {
			return next.ServeHTTP(w, r)
		}
	}

	info, err := g.auth.Authenticate(r)
	if err == nil {
		r.Header.Set(IdentityHeader, info.IdentityID)
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			repl.Set("http.auth.user.id", info.IdentityID)
			repl.Set("kratos.identity.id", info.IdentityID)
			repl.Set("kratos.session.id", info.SessionID)
			repl.Set("kratos.session.aal", info.AAL)
		}
		return next.ServeHTTP(w, r)
	}
	if errors.Is(err, flows.ErrAAL2Required) {
		// Signed in, but a second factor is due: browsers go to the aal2
		// login flow and come back; API clients get Kratos's 403.
		to := withQueryParam(g.auth.LoginBrowserURL(r, originalURL(r)), "aal", "aal2")
		if flows.PrefersHTML(r) {
			w.Header().Set("Location", to)
			w.WriteHeader(http.StatusSeeOther)
			return nil
		}
		flows.WriteAAL2Required(w, r, to)
		return nil
	}
	if !errors.Is(err, flows.ErrNoSession) {
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("kratos_gate: %w", err))
	}

	if flows.PrefersHTML(r) {
		w.Header().Set("Location", g.loginLocation(r, originalURL(r)))
		w.WriteHeader(http.StatusSeeOther)
		return nil
	}
	flows.WriteUnauthorized(w, r)
	return nil
}

// withQueryParam sets one query parameter on a URL string.
func withQueryParam(raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// loginLocation is the login URL with return_to set to returnTo.
func (g *Gate) loginLocation(r *http.Request, returnTo string) string {
	if g.LoginURL == "" {
		return g.auth.LoginBrowserURL(r, returnTo)
	}
	var u url.URL
	if g.login != nil {
		u = *g.login
	} else {
		raw := g.LoginURL
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			raw = repl.ReplaceKnown(raw, "")
		}
		p, err := url.Parse(raw)
		if err != nil {
			return g.auth.LoginBrowserURL(r, returnTo)
		}
		u = *p
	}
	q := u.Query()
	q.Set("return_to", returnTo)
	u.RawQuery = q.Encode()
	return u.String()
}

// originalURL is the absolute URL the client asked for, before any
// rewrite by earlier handlers.
func originalURL(r *http.Request) string {
	uri := r.URL.RequestURI()
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		uri = orig.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + uri
}

// stripIdentityHeader deletes every request header that an upstream could
// read as IdentityHeader: any case, and with '_' for '-' (CGI/FastCGI and
// some frameworks map both to HTTP_X_KRATOS_AUTHENTICATED_IDENTITY_ID).
func stripIdentityHeader(h http.Header) {
	for k := range h {
		if sameHeaderName(k, IdentityHeader) {
			delete(h, k)
		}
	}
}

// sameHeaderName compares header names case-insensitively, treating '_'
// and '-' as equal.
func sameHeaderName(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := fold(a[i]), fold(b[i])
		if ca != cb {
			return false
		}
	}
	return true
}

func fold(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + ('a' - 'A')
	}
	return c
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Gate)(nil)
	_ caddyhttp.MiddlewareHandler = (*Gate)(nil)
)

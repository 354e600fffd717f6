package flows

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/ui"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/locale"
)

func (e *Engine) routes() {
	m := http.NewServeMux()
	for _, kind := range []string{"login", "registration", "settings", "recovery", "verification"} {
		kind := kind
		m.HandleFunc("GET /self-service/"+kind+"/browser", func(w http.ResponseWriter, r *http.Request) { e.kernel.Create(w, r, kind, "browser") })
		m.HandleFunc("GET /self-service/"+kind+"/api", func(w http.ResponseWriter, r *http.Request) { e.kernel.Create(w, r, kind, "api") })
		m.HandleFunc("GET /self-service/"+kind+"/flows", func(w http.ResponseWriter, r *http.Request) { e.kernel.Get(w, r, kind) })
		m.HandleFunc("POST /self-service/"+kind, func(w http.ResponseWriter, r *http.Request) { e.kernel.Submit(w, r, kind) })
	}
	// Kratos routes GET on the submit paths too: mailed links.
	m.HandleFunc("GET /self-service/login", func(w http.ResponseWriter, r *http.Request) { e.kernel.Submit(w, r, "login") })
	m.HandleFunc("GET /self-service/verification", e.verification.Link)
	m.HandleFunc("GET /self-service/recovery", e.recovery.Link)

	m.HandleFunc("GET /self-service/logout/browser", e.logout.CreateBrowser)
	m.HandleFunc("GET /self-service/logout", e.logout.Update)
	m.HandleFunc("DELETE /self-service/logout/api", e.logout.PerformNative)

	m.HandleFunc("GET /sessions/whoami", e.sessions.Whoami)
	m.HandleFunc("POST /sessions/whoami", e.sessions.Whoami)
	m.HandleFunc("PUT /sessions/whoami", e.sessions.Whoami)
	m.HandleFunc("PATCH /sessions/whoami", e.sessions.Whoami)
	m.HandleFunc("HEAD /sessions/whoami", e.sessions.Whoami)
	m.HandleFunc("DELETE /sessions/whoami", e.sessions.Whoami)
	m.HandleFunc("GET /sessions/token-exchange", e.sessions.ExchangeToken)
	m.HandleFunc("GET /self-service/methods/oidc/callback/{provider}", e.oidc.Callback)
	m.HandleFunc("POST /self-service/methods/oidc/callback/{provider}", e.oidc.Callback)
	m.HandleFunc("GET /sessions", e.sessions.ListMine)
	m.HandleFunc("DELETE /sessions", e.sessions.DisableOthers)
	m.HandleFunc("DELETE /sessions/{id}", e.sessions.DisableMine)

	m.HandleFunc("GET /self-service/errors", e.kernel.GetError)
	m.HandleFunc("GET /.well-known/ory/webauthn.js", e.webauthnJS)
	m.HandleFunc("GET "+session.JWKSPath, e.sessions.JWKS) // the gate's assertion keys (assertion.go)
	m.HandleFunc("GET /schemas", e.listSchemas)
	m.HandleFunc("GET /schemas/{id}", e.getSchema)
	m.HandleFunc("GET /health/alive", e.health)
	m.HandleFunc("GET /health/ready", e.health)

	// The built-in pages, their assets and the sessions page's posts.
	prefix := e.cfg.UIPrefix
	m.HandleFunc("GET "+prefix+"{$}", e.pages.Welcome)
	m.HandleFunc("GET "+prefix+"{page}", e.pages.Page)
	m.HandleFunc("GET "+prefix+"assets/{file}", e.pages.Asset)
	m.HandleFunc("POST "+prefix+"sessions/revoke", e.pages.RevokeSession)
	m.HandleFunc("POST "+prefix+"sessions/revoke-others", e.pages.RevokeOtherSessions)
	m.HandleFunc("POST "+prefix+ui.LanguagePath, e.pages.SetLanguage)

	e.mux = m
}

// Handles reports whether r is for a path the engine serves
// (/self-service/…, /sessions…, /schemas…, /.well-known/ory/…,
// /.well-known/jwks.json, /health/…, and the built-in UI prefix). Other
// requests go to the next handler.
func (e *Engine) Handles(r *http.Request) bool {
	p := r.URL.Path
	if e.handlesPath(p) {
		return true
	}
	// "//self-service/login/flows" (a UI whose KRATOS_PUBLIC_URL ends in
	// /) or dot segments: ours when the clean path is, and ServeHTTP
	// redirects there.
	c, ok := cleanedPath(p)
	return ok && e.handlesPath(c)
}

// cleanedPath returns p with repeated slashes and dot segments removed
// (a trailing slash kept), and whether that changed anything.
func cleanedPath(p string) (string, bool) {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") {
		return p, false // the common case, without allocating
	}
	c := p
	if !strings.HasPrefix(c, "/") {
		c = "/" + c
	}
	c = path.Clean(c)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c, c != p
}

func (e *Engine) handlesPath(p string) bool {
	switch {
	case strings.HasPrefix(p, "/self-service/"),
		p == "/sessions", strings.HasPrefix(p, "/sessions/"),
		p == "/schemas", strings.HasPrefix(p, "/schemas/"),
		strings.HasPrefix(p, "/.well-known/ory/"), p == session.JWKSPath,
		p == "/health/alive", p == "/health/ready",
		strings.HasPrefix(p, e.cfg.UIPrefix):
		return true
	}
	return false
}

// ServeHTTP serves the Kratos public API. It never panics out: a panic in
// a handler becomes a 500 in Kratos's error shape.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			e.logger.Error("panic serving request", zap.Any("panic", v), zap.String("path", r.URL.Path))
			wire.WriteError(w, r, wire.Internal("internal error"))
		}
	}()
	if c, ok := cleanedPath(r.URL.Path); ok && e.handlesPath(c) {
		// Kratos answers an unclean path with a redirect to the clean one.
		// 307 keeps the method and body. The Location is a path on this
		// host: the clean path starts with one slash and one of our
		// prefixes, so it can never read as //other.host.
		wire.Redirect(w, r, http.StatusTemporaryRedirect, (&url.URL{Path: c, RawQuery: r.URL.RawQuery}).String())
		return
	}
	if r.URL.Path == "/sessions/whoami" && r.URL.RawPath == "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// The hot route, straight to the handler the mux would choose
		// (the path is clean and plain, the method one it routes there),
		// without its two lookups; the handler sets Cache-Control with
		// its other headers. TestWhoamiDirectRouteMatchesMux.
		e.cors(w, r) // never a preflight: that is OPTIONS
		e.sessions.WhoamiNoCache(w, r)
		return
	}
	if e.cors(w, r) {
		return // a CORS preflight, answered (cors.go)
	}
	// Handler only finds the pattern; ServeHTTP below also sets path values.
	_, pattern := e.mux.Handler(r)
	if pattern == "" {
		// Unknown path or method under our prefixes: Kratos's 404/405 shape.
		if allowed := e.allowedMethods(r); allowed != "" {
			w.Header().Set("Allow", allowed)
			wire.WriteError(w, r, wire.NewError(http.StatusMethodNotAllowed, "", "", ""))
			return
		}
		wire.WriteError(w, r, wire.NotFound())
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		w.Header().Set("Cache-Control", wire.NoCache)
	}
	if changesState(r) {
		// A client that goes away (or half-closes its connection, which
		// cancels the request's context) must not leave a submit half done
		// (a guess evaluated but not counted, a session half written, a
		// code mailed but not stored): the handler runs to completion on a
		// context without the client's cancellation, bounded by
		// submitTimeout.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), submitTimeout)
		defer cancel()
		// The language of the person asking, for the mails this request
		// may queue (the courier renders them in it).
		r = r.WithContext(locale.WithLanguage(ctx, e.locale.FromRequest(r)))
	}
	e.mux.ServeHTTP(w, r)
}

// submitTimeout bounds a state-changing request once it no longer follows
// the client's cancellation (hashWait plus store writes fit well inside).
const submitTimeout = 30 * time.Second

// changesState reports whether r may write state: everything under
// /self-service/ (submits, flow creation, mailed links that consume a
// token), the token exchange, and every method but GET and HEAD elsewhere
// (revoking sessions). whoami keeps the client's context (and stays
// allocation-free), whatever its method.
func changesState(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/self-service/"), p == "/sessions/token-exchange":
		return true
	case p == "/sessions/whoami":
		return false
	}
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

func (e *Engine) allowedMethods(r *http.Request) string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := e.mux.Handler(r2); p != "" {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

func (e *Engine) health(w http.ResponseWriter, r *http.Request) {
	wire.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

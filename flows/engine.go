// Package flows is the Kratos self-service engine as plain net/http handlers:
// login, registration, settings, recovery, verification, logout, sessions,
// flow errors and schemas, with their UI nodes, messages, CSRF and content
// negotiation. It imports nothing from Caddy; caddymodule turns Caddy config
// into a Config and mounts Engine.
package flows

import (
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Config is everything the engine needs. Zero values mean Kratos's defaults
// (filled by Config.withDefaults).
type Config struct {
	// PublicURL is the base URL of the public API (ui.action, schema_url,
	// CSRF cookie name). Empty: derived from each request's Host.
	PublicURL string
	// Dev allows cookies without Secure over plain http (kratos --dev).
	Dev bool
	// DefaultReturnURL is where browsers go after a flow. Default: PublicURL.
	DefaultReturnURL string
	// AllowedReturnURLs is the return_to allow-list. The public URL's
	// /self-service path is always allowed, and so is the origin of PublicURL
	// (a deliberate deviation from Kratos: the same site is never an open
	// redirect and one-Caddyfile setups need it).
	AllowedReturnURLs []string
	// UIURLs maps login, registration, settings, recovery, verification and
	// error to the UI page for that flow. Default: the built-in pages under
	// UIPrefix.
	UIURLs map[string]string
	// UIPrefix is the path prefix of the built-in pages. Default: /ui/.
	UIPrefix string
	// SessionLifespan is how long a session lives. Default: 24h.
	SessionLifespan time.Duration
	// FlowLifespan is how long a self-service flow lives. Default: 1h.
	FlowLifespan time.Duration
	// PrivilegedSessionMaxAge is the settings privileged window. Default: 1h.
	PrivilegedSessionMaxAge time.Duration
	// CookieName is the session cookie's name. Default: ory_kratos_session.
	CookieName string
	// CookieDomain is the Domain attribute of cookies. Default: host-only.
	CookieDomain string
	// CookiePath is the Path attribute of cookies. Default: /.
	CookiePath string
	// CookieSameSite is Lax, Strict or None. Default: Lax.
	CookieSameSite http.SameSite
	// CookieSecrets sign and encrypt the session cookie; the first one is
	// used for new cookies, all of them are tried on read (rotation).
	// Default: a secret generated once and persisted in the store.
	CookieSecrets []string
	// RegistrationEnabled turns self-service registration on. Default: true
	// (set DisableRegistration to close it).
	DisableRegistration bool
	// RegistrationStyle is profile_first (Kratos default) or unified.
	RegistrationStyle string
	// PasswordHasher is bcrypt (default) or argon2id.
	PasswordHasher string
	// BcryptCost is the bcrypt cost. Default: 12.
	BcryptCost int
	// IdentitySchema is the raw JSON of the identity schema. Default: the
	// built-in email + optional first/last name schema.
	IdentitySchema []byte
	// IdentitySchemaID is the schema's id. Default: "default".
	IdentitySchemaID string
}

// Engine serves the self-service API. Create it with New; it is safe for
// concurrent use. Several engines (old and new config during a Caddy
// reload) may share one store.
type Engine struct {
	cfg    Config
	store  *sessionstore.Store
	logger *zap.Logger
}

// ErrNoSession is returned by Authenticate when the request carries no
// valid session.
var ErrNoSession = errors.New("flows: no valid session")

// SessionInfo is what the gate learns about a valid session, without
// loading or encoding the identity.
type SessionInfo struct {
	SessionID  string
	IdentityID string
	AAL        string
	ExpiresAt  time.Time
	Methods    []string
}

// New validates cfg, fills defaults and returns a ready engine. It reads or
// creates the persisted cookie secret in store.
func New(cfg Config, store *sessionstore.Store, logger *zap.Logger) (*Engine, error) {
	panic("TODO")
}

// Close stops the engine's background work. It does not close the store.
func (e *Engine) Close() error { return nil }

// Handles reports whether r is for a path the engine serves
// (/self-service/…, /sessions…, /schemas…, /.well-known/ory/…, /health/…,
// and the built-in UI prefix). Other requests go to the next handler.
func (e *Engine) Handles(r *http.Request) bool { panic("TODO") }

// ServeHTTP serves the Kratos public API.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) { panic("TODO") }

// Authenticate is the toSession check without the response: it reads the
// session from X-Session-Token, the session cookie or Authorization: Bearer
// and returns ErrNoSession when there is none or it is expired/revoked.
func (e *Engine) Authenticate(r *http.Request) (*SessionInfo, error) { panic("TODO") }

// LoginBrowserURL is the public createBrowserLoginFlow URL with return_to
// set (empty returnTo: none).
func (e *Engine) LoginBrowserURL(r *http.Request, returnTo string) string { panic("TODO") }

// PrefersHTML reports whether the client prefers text/html over
// application/json (a browser navigation), with Kratos's negotiation rules.
func PrefersHTML(r *http.Request) bool { panic("TODO") }

// WriteUnauthorized answers 401 in Kratos's JSON error shape, as whoami does
// without a session.
func WriteUnauthorized(w http.ResponseWriter, r *http.Request) { panic("TODO") }

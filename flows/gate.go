package flows

import (
	"context"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// The engine's API for the gate (caddymodule's kratos_gate) and for
// tools. Each is the session manager's (flows/session): the engine only
// hands it on, so that caddymodule imports this package alone.

// The gate's vocabulary, as the session manager defines it.
type (
	// SessionInfo is what Authenticate learns about a valid session.
	SessionInfo = session.Info
	// GatePolicy is what one gate asks of a session.
	GatePolicy = session.GatePolicy
	// GateSession is a valid session as the gate sees it (read only).
	GateSession = session.GateSession
	// AssertionConfig configures one gate's signed identity assertions.
	AssertionConfig = session.AssertionConfig
	// AssertionSigner signs the assertions of one gate.
	AssertionSigner = session.AssertionSigner
)

// The answers of the session checks.
var (
	// ErrNoSession: the request carries no valid session.
	ErrNoSession = session.ErrNoSession
	// ErrAAL2Required: the session is valid but a second factor is due.
	ErrAAL2Required = session.ErrAAL2Required
	// ErrAAL2SetupRequired: the policy asks for aal2 and the identity has
	// no second factor yet (settings adds one).
	ErrAAL2SetupRequired = session.ErrAAL2SetupRequired
)

// WriteUnauthorized answers 401 in Kratos's JSON error shape, as whoami
// does without a session.
func WriteUnauthorized(w http.ResponseWriter, r *http.Request) { session.WriteUnauthorized(w, r) }

// WriteAAL2Required answers 403 session_aal2_required with
// redirect_browser_to, as whoami does when a second factor is due.
func WriteAAL2Required(w http.ResponseWriter, r *http.Request, redirectTo string) {
	session.WriteAAL2Required(w, r, redirectTo)
}

// TraitValue looks up a dotted path (name.first) in decoded traits.
func TraitValue(traits map[string]any, path string) (any, bool) {
	return session.TraitValue(traits, path)
}

// TraitString formats a trait value for a header or placeholder: strings
// as they are, numbers and booleans in JSON notation, null as "", objects
// and arrays as compact JSON.
func TraitString(v any) string { return session.TraitString(v) }

// Authenticate is the toSession check without the response: the
// request's session (X-Session-Token, the session cookie or Authorization:
// Bearer), or ErrNoSession, or ErrAAL2Required when a second factor is due
// (required_aal).
func (e *Engine) Authenticate(r *http.Request) (*session.Info, error) {
	return e.sessions.Authenticate(r)
}

// CheckGate is the gate's session check: whoami's rules with policy's AAL.
// On success it fills *out and returns nil; otherwise ErrNoSession,
// ErrAAL2Required, ErrAAL2SetupRequired, or a store error. It allocates
// nothing on a session-cache hit. With earliest_possible_extend it extends
// the session like whoami and, when w is not nil and the session came in a
// cookie, sets the renewed cookie on w.
func (e *Engine) CheckGate(w http.ResponseWriter, r *http.Request, policy session.GatePolicy, out *session.GateSession) error {
	return e.sessions.CheckGate(w, r, policy, out)
}

// IdentityTraits returns the decoded traits of an identity (shared and
// cached per stored version: callers must not modify the map).
func (e *Engine) IdentityTraits(ctx context.Context, identityID string) (map[string]any, error) {
	return e.sessions.IdentityTraits(ctx, identityID)
}

// Traits is IdentityTraits for the session's identity, without a lookup.
func (e *Engine) Traits(g *session.GateSession) (map[string]any, error) { return e.sessions.Traits(g) }

// NewAssertionSigner returns the signer of one gate's identity assertions
// (ES256 JWTs whose keys the engine serves at /.well-known/jwks.json).
func (e *Engine) NewAssertionSigner(cfg session.AssertionConfig) (*session.AssertionSigner, error) {
	return e.sessions.NewAssertionSigner(cfg)
}

// LoginBrowserURL is the public createBrowserLoginFlow URL with return_to
// set (empty returnTo: none).
func (e *Engine) LoginBrowserURL(r *http.Request, returnTo string) string {
	return e.sessions.LoginBrowserURL(r, returnTo)
}

// AAL2LoginURL is the browser login flow for a second factor (aal=aal2),
// returning to returnTo.
func (e *Engine) AAL2LoginURL(r *http.Request, returnTo string) string {
	return e.sessions.AAL2LoginURL(r, returnTo)
}

// SettingsBrowserURL is the public createBrowserSettingsFlow URL with
// return_to set (empty: none): where a user without a second factor adds
// one.
func (e *Engine) SettingsBrowserURL(r *http.Request, returnTo string) string {
	return e.sessions.SettingsBrowserURL(r, returnTo)
}

// PublicBaseURL is the configured public base URL, with a trailing slash.
func (e *Engine) PublicBaseURL(r *http.Request) string { return e.sessions.PublicBaseURL(r) }

// SessionCookieValue seals a session token into a session cookie value
// valid until expires, as login sets it. For tools that seed sessions
// directly into the store (scripts/benchseed).
func (e *Engine) SessionCookieValue(token string, expires time.Time) string {
	return e.sessions.SessionCookieValue(token, expires)
}

// CookieName is the session cookie's name.
func (e *Engine) CookieName() string { return e.sessions.CookieName() }

// PrefersHTML reports whether the client prefers text/html over
// application/json, as the engine decides between a redirect and a JSON
// error.
func PrefersHTML(r *http.Request) bool { return wire.PrefersHTML(r) }

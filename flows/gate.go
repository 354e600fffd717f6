package flows

import (
	"context"
	"net/http"
	"time"
)

// The engine's API for the gate (caddymodule's kratos_gate) and for
// tools. Each is the session manager's (flows/session): the engine only
// hands it on, so that caddymodule imports this package alone.

// Authenticate is the toSession check without the response: the
// request's session (X-Session-Token, the session cookie or Authorization:
// Bearer), or ErrNoSession, or ErrAAL2Required when a second factor is due
// (required_aal).
func (e *Engine) Authenticate(r *http.Request) (*SessionInfo, error) {
	return e.sessions.Authenticate(r)
}

// CheckGate is the gate's session check: whoami's rules with policy's AAL.
// On success it fills *out and returns nil; otherwise ErrNoSession,
// ErrAAL2Required, ErrAAL2SetupRequired, or a store error. It allocates
// nothing on a session-cache hit. With earliest_possible_extend it extends
// the session like whoami and, when w is not nil and the session came in a
// cookie, sets the renewed cookie on w.
func (e *Engine) CheckGate(w http.ResponseWriter, r *http.Request, policy GatePolicy, out *GateSession) error {
	return e.sessions.CheckGate(w, r, policy, out)
}

// IdentityTraits returns the decoded traits of an identity (shared and
// cached per stored version: callers must not modify the map).
func (e *Engine) IdentityTraits(ctx context.Context, identityID string) (map[string]any, error) {
	return e.sessions.IdentityTraits(ctx, identityID)
}

// Traits is IdentityTraits for the session's identity, without a lookup.
func (e *Engine) Traits(g *GateSession) (map[string]any, error) { return e.sessions.Traits(g) }

// NewAssertionSigner returns the signer of one gate's identity assertions
// (ES256 JWTs whose keys the engine serves at /.well-known/jwks.json).
func (e *Engine) NewAssertionSigner(cfg AssertionConfig) (*AssertionSigner, error) {
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

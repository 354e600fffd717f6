package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// GatePolicy is what one gate asks of a session.
type GatePolicy struct {
	// RequiredAAL is aal1, aal2 or highest_available. Empty: the engine's
	// required_aal.
	RequiredAAL string
}

// GateSession is a valid session as the gate sees it. It refers to the
// store's shared copies: read only.
type GateSession struct {
	SessionID  string
	IdentityID string
	AAL        string
	ExpiresAt  time.Time

	sess  *sessionstore.Session
	ident *sessionstore.Identity
}

// AppendMethods appends the session's authentication methods (password,
// totp, …) joined with sep.
func (g *GateSession) AppendMethods(b []byte, sep string) []byte {
	if g.sess == nil {
		return b
	}
	for i, m := range g.sess.AuthenticationMethods {
		if i > 0 {
			b = append(b, sep...)
		}
		b = append(b, m.Method...)
	}
	return b
}

// Methods returns the session's authentication methods (password, totp, …).
func (g *GateSession) Methods() []string {
	if g.sess == nil {
		return nil
	}
	out := make([]string, len(g.sess.AuthenticationMethods))
	for i, m := range g.sess.AuthenticationMethods {
		out[i] = m.Method
	}
	return out
}

// CheckGate is the gate's session check: whoami's rules with policy's AAL.
// On success it fills *out and returns nil; otherwise ErrNoSession,
// ErrAAL2Required (the identity has a second factor the session did not
// use), ErrAAL2SetupRequired, or a store error. With earliest_possible_extend
// it extends the session like whoami and, when w is not nil and the
// session came in a cookie, sets the renewed cookie on w.
func (m *Manager) CheckGate(w http.ResponseWriter, r *http.Request, policy GatePolicy, out *GateSession) error {
	var c requestCred
	s, ident, err := m.checkSession(r, policy.RequiredAAL, &c)
	if err != nil {
		return err
	}
	if m.cfg.EarliestPossibleExtend > 0 {
		s = m.maybeExtend(r.Context(), s)
		m.reissueCookie(w, r, &c, s)
	}
	*out = GateSession{SessionID: s.ID, IdentityID: s.IdentityID, AAL: s.AAL, ExpiresAt: s.ExpiresAt, sess: s, ident: ident}
	return nil
}

// IdentityTraits returns the traits of an identity, decoded (numbers as
// json.Number). The map is shared and cached per stored version of the
// identity: callers must not modify it.
func (m *Manager) IdentityTraits(ctx context.Context, identityID string) (map[string]any, error) {
	ident, err := m.store.GetIdentityShared(ctx, identityID)
	if err != nil {
		return nil, err
	}
	return m.identityTraits(ident)
}

func (m *Manager) identityTraits(ident *sessionstore.Identity) (map[string]any, error) {
	iv := m.views.get(ident)
	iv.traitsOnce.Do(func() {
		traits := map[string]any{}
		if len(ident.Traits) > 0 {
			d := json.NewDecoder(bytes.NewReader(ident.Traits))
			d.UseNumber()
			iv.traitsErr = d.Decode(&traits)
		}
		iv.traits = traits
	})
	return iv.traits, iv.traitsErr
}

// Traits is IdentityTraits for the session's identity, without a lookup.
func (m *Manager) Traits(g *GateSession) (map[string]any, error) {
	if g.ident == nil {
		return m.IdentityTraits(context.Background(), g.IdentityID)
	}
	return m.identityTraits(g.ident)
}

// TraitValue looks up a dotted path (name.first) in decoded traits.
func TraitValue(traits map[string]any, path string) (any, bool) {
	var cur any = traits
	for path != "" {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		var key string
		key, path, _ = strings.Cut(path, ".")
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// TraitString formats a trait value for a header or placeholder: strings
// as they are, numbers and booleans in JSON notation, null as "", objects
// and arrays as compact JSON.
func TraitString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// AAL2LoginURL is the browser login flow for a second factor (aal=aal2),
// returning to returnTo.
func (m *Manager) AAL2LoginURL(r *http.Request, returnTo string) string {
	return wire.WithQuery(m.LoginBrowserURL(r, returnTo), "aal", "aal2")
}

// SettingsBrowserURL is the public createBrowserSettingsFlow URL with
// return_to set (empty: none): where a user without a second factor adds
// one.
func (m *Manager) SettingsBrowserURL(r *http.Request, returnTo string) string {
	u := m.urls.Public("self-service/settings/browser")
	if returnTo != "" {
		u = wire.WithQuery(u, "return_to", returnTo)
	}
	return u
}

// PublicBaseURL is the public base URL (with a trailing slash) as seen by
// r: the configured public_url, or derived from r.
func (m *Manager) PublicBaseURL(r *http.Request) string { return m.urls.Base() }

// SessionCookieValue seals a session token into a session cookie value
// valid until expires, as login sets it. For tools that seed sessions
// directly into the store (scripts/benchseed).
func (m *Manager) SessionCookieValue(token string, expires time.Time) string {
	return m.cookies.Seal(token, expires)
}

// CookieName is the session cookie's name.
func (m *Manager) CookieName() string { return m.cfg.CookieName }

// Authenticate is the toSession check without the response: it reads the
// session from X-Session-Token, the session cookie or Authorization: Bearer
// and returns ErrNoSession when there is none or it is expired/revoked, or
// ErrAAL2Required when a second factor is due (required_aal). The gate uses
// CheckGate (gate_api.go), which also applies a per-route AAL policy.
func (m *Manager) Authenticate(r *http.Request) (*Info, error) {
	var c requestCred
	s, _, err := m.checkSession(r, "", &c)
	if err != nil {
		if errors.Is(err, ErrAAL2SetupRequired) {
			err = ErrAAL2Required // not reachable with the engine's policies
		}
		return nil, err
	}
	info := &Info{SessionID: s.ID, IdentityID: s.IdentityID, AAL: s.AAL, ExpiresAt: s.ExpiresAt,
		Methods: make([]string, len(s.AuthenticationMethods))}
	for i, am := range s.AuthenticationMethods {
		info.Methods[i] = am.Method
	}
	return info, nil
}

// LoginBrowserURL is the public createBrowserLoginFlow URL with return_to
// set (empty returnTo: none).
func (m *Manager) LoginBrowserURL(r *http.Request, returnTo string) string {
	u := m.urls.Public("self-service/login/browser")
	if returnTo != "" {
		u = wire.WithQuery(u, "return_to", returnTo)
	}
	return u
}

// Info is what the gate learns about a valid session, without
// loading or encoding the identity.
type Info struct {
	SessionID  string
	IdentityID string
	AAL        string
	ExpiresAt  time.Time
	Methods    []string
}

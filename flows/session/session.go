package session

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/google/uuid"
)

type IdentityWire struct {
	ID             string          `json:"id"`
	SchemaID       string          `json:"schema_id"`
	SchemaURL      string          `json:"schema_url"`
	State          string          `json:"state"`
	StateChangedAt time.Time       `json:"state_changed_at"`
	Traits         json.RawMessage `json:"traits"`
	// The address lists are interfaces so the slim identity of session
	// listings can leave them out (nil) while others send [] when empty.
	VerifiableAddresses any             `json:"verifiable_addresses,omitempty"`
	RecoveryAddresses   any             `json:"recovery_addresses,omitempty"`
	MetadataPublic      json.RawMessage `json:"metadata_public"`
	CreatedAt           time.Time       `json:"created_at"`
	UpdatedAt           time.Time       `json:"updated_at"`
	OrganizationID      *string         `json:"organization_id"`
}

// IdentityJSON is the frontend API's identity: no credentials, no admin
// metadata.
func (e *Manager) IdentityJSON(r *http.Request, id *sessionstore.Identity) *IdentityWire {
	w := &IdentityWire{
		ID: id.ID, SchemaID: id.SchemaID,
		SchemaURL: e.urls.Public("schemas/" + base64.RawURLEncoding.EncodeToString([]byte(id.SchemaID))),
		State:     id.State, StateChangedAt: id.StateChangedAt, Traits: id.Traits,
		MetadataPublic: id.MetadataPublic, CreatedAt: id.CreatedAt, UpdatedAt: id.UpdatedAt,
	}
	ver, rec := id.VerifiableAddresses, id.RecoveryAddresses
	if ver == nil {
		ver = []sessionstore.VerifiableAddress{}
	}
	if rec == nil {
		rec = []sessionstore.RecoveryAddress{}
	}
	w.VerifiableAddresses, w.RecoveryAddresses = ver, rec
	if len(w.MetadataPublic) == 0 {
		w.MetadataPublic = json.RawMessage("null")
	}
	if len(w.Traits) == 0 {
		w.Traits = json.RawMessage("{}")
	}
	return w
}

type SessionWire struct {
	ID                    string                    `json:"id"`
	Active                bool                      `json:"active"`
	ExpiresAt             time.Time                 `json:"expires_at"`
	AuthenticatedAt       time.Time                 `json:"authenticated_at"`
	AAL                   string                    `json:"authenticator_assurance_level"`
	AuthenticationMethods []sessionstore.AuthMethod `json:"authentication_methods"`
	IssuedAt              time.Time                 `json:"issued_at"`
	Identity              *IdentityWire             `json:"identity"`
	Devices               []sessionstore.Device     `json:"devices"`
}

func (e *Manager) SessionJSON(s *sessionstore.Session, idw *IdentityWire) *SessionWire {
	w := &SessionWire{
		ID: s.ID, Active: e.Active(s), ExpiresAt: s.ExpiresAt, AuthenticatedAt: s.AuthenticatedAt,
		AAL: s.AAL, AuthenticationMethods: s.AuthenticationMethods, IssuedAt: s.IssuedAt,
		Identity: idw, Devices: s.Devices,
	}
	if w.AuthenticationMethods == nil {
		w.AuthenticationMethods = []sessionstore.AuthMethod{}
	}
	if w.Devices == nil {
		w.Devices = []sessionstore.Device{}
	}
	return w
}

func (e *Manager) Active(s *sessionstore.Session) bool {
	return s.Active && e.now().Before(s.ExpiresAt)
}

// Issued is a new session with its token (shown once).
type Issued struct {
	Session *sessionstore.Session
	Token   string
	// rotated: the token replaced the one the request's session cookie
	// held, so the answer must set the cookie whatever the flow's type.
	Rotated bool
	// upgraded: the request's own session was raised or refreshed
	// (upgradeSession), not a new one created.
	Upgraded bool
}

// NewSession builds (but does not store) a session for identity after a
// first factor method.
func (e *Manager) NewSession(r *http.Request, identityID, method, aal string) *Issued {
	now := e.now().UTC()
	tok := token.NewSessionToken()
	ip := r.RemoteAddr
	var ua *string
	if s := r.UserAgent(); s != "" {
		ua = &s
	}
	s := &sessionstore.Session{
		ID: uuid.NewString(), IdentityID: identityID, Active: true,
		ExpiresAt: now.Add(e.cfg.SessionLifespan), AuthenticatedAt: now, IssuedAt: now,
		AAL:                   aal,
		AuthenticationMethods: []sessionstore.AuthMethod{{Method: method, AAL: aal, CompletedAt: now}},
		Devices:               []sessionstore.Device{{ID: uuid.NewString(), IPAddress: &ip, UserAgent: ua}},
		TokenHash:             token.Hash(tok),
	}
	s.LogoutTokenHash = token.Hash(e.LogoutToken(s.ID))
	return &Issued{Session: s, Token: tok}
}

// LogoutToken is derived from the session id with a keyed MAC, so it can be
// shown again on every createBrowserLogoutFlow without being stored.
func (e *Manager) LogoutToken(sessionID string) string {
	key := e.cookies.MACKey()
	m := hmac.New(sha256.New, key)
	m.Write([]byte("logout\x00" + sessionID))
	sum := m.Sum(nil)
	b := make([]byte, 32)
	for i := range b {
		b[i] = token.Alnum[int(sum[i])%len(token.Alnum)]
	}
	return "ory_lo_" + string(b)
}

// SetCookie sets ory_kratos_session for s.
func (e *Manager) SetCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	maxAge := int(time.Until(expires).Seconds())
	if maxAge < 1 {
		maxAge = 1
	}
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- HttpOnly and SameSite are set; Secure is off only in dev mode over plain http (kratos --dev)
		Name: e.cfg.CookieName, Value: e.cookies.Seal(token, expires),
		Path: e.cfg.CookiePath, Domain: e.cfg.CookieDomain,
		Expires: expires.UTC(), MaxAge: maxAge,
		HttpOnly: true, Secure: e.secureCookies(r), SameSite: e.cfg.CookieSameSite,
	})
}

func (e *Manager) ClearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- clears the cookie; same attributes as when it was set
		Name: e.cfg.CookieName, Value: "", Path: e.cfg.CookiePath, Domain: e.cfg.CookieDomain,
		Expires: time.Unix(1, 0).UTC(), MaxAge: -1,
		HttpOnly: true, Secure: e.secureCookies(r), SameSite: e.cfg.CookieSameSite,
	})
}

// RequestToken extracts the session token: X-Session-Token, then the
// session cookie, then Authorization: Bearer (Kratos's order).
func (e *Manager) RequestToken(r *http.Request) (string, bool) {
	if t := r.Header.Get("X-Session-Token"); t != "" {
		return t, true
	}
	var c requestCred
	if e.requestCredential(r, &c) && c.fromCookie {
		// The same choice among several session cookies as the gate's.
		if c.ncands > 1 && e.resolveCookies(r.Context(), &c) != nil {
			return "", false
		}
		if t, err := e.cookies.Open(c.cookie, e.now()); err == nil {
			return t, true
		}
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:]), true
	}
	return "", false
}

// ByToken returns the stored session for token (active or not).
func (e *Manager) ByToken(ctx context.Context, tok string) (*sessionstore.Session, error) {
	if !token.ValidShape(tok) {
		return nil, sessionstore.ErrNotFound
	}
	return e.store.GetSessionByTokenHash(ctx, token.Hash(tok))
}

// Current returns the request's active session and its token.
func (e *Manager) Current(r *http.Request) (*sessionstore.Session, string, error) {
	token, ok := e.RequestToken(r)
	if !ok {
		return nil, "", ErrNoSession
	}
	s, err := e.ByToken(r.Context(), token)
	if errors.Is(err, sessionstore.ErrNotFound) {
		return nil, "", ErrNoSession
	}
	if err != nil {
		return nil, "", fmt.Errorf("session lookup: %w", err)
	}
	if !e.Active(s) {
		return nil, "", ErrNoSession
	}
	return s, token, nil
}

// Authenticate is the toSession check without the response: it reads the
// session from X-Session-Token, the session cookie or Authorization: Bearer
// and returns ErrNoSession when there is none or it is expired/revoked, or
// ErrAAL2Required when a second factor is due (required_aal). The gate uses
// CheckGate (gate_api.go), which also applies a per-route AAL policy.
func (e *Manager) Authenticate(r *http.Request) (*Info, error) {
	var c requestCred
	s, _, err := e.checkSession(r, "", &c)
	if err != nil {
		if errors.Is(err, ErrAAL2SetupRequired) {
			err = ErrAAL2Required // not reachable with the engine's policies
		}
		return nil, err
	}
	info := &Info{SessionID: s.ID, IdentityID: s.IdentityID, AAL: s.AAL, ExpiresAt: s.ExpiresAt,
		Methods: make([]string, len(s.AuthenticationMethods))}
	for i, m := range s.AuthenticationMethods {
		info.Methods[i] = m.Method
	}
	return info, nil
}

// LoginBrowserURL is the public createBrowserLoginFlow URL with return_to
// set (empty returnTo: none).
func (e *Manager) LoginBrowserURL(r *http.Request, returnTo string) string {
	u := e.urls.Public("self-service/login/browser")
	if returnTo != "" {
		u = wire.WithQuery(u, "return_to", returnTo)
	}
	return u
}

// WriteUnauthorized answers 401 in Kratos's JSON error shape, as whoami does
// without a session.
func WriteUnauthorized(w http.ResponseWriter, r *http.Request) {
	wire.WriteError(w, r, wire.NoCredentials())
}

// WriteAAL2Required answers 403 session_aal2_required with
// redirect_browser_to, as whoami does when a second factor is due.
func WriteAAL2Required(w http.ResponseWriter, r *http.Request, redirectTo string) {
	wire.WriteError(w, r, wire.AAL2Required(redirectTo))
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

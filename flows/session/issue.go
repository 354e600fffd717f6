package session

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/google/uuid"
)

// Active reports whether s is active and not past its expiry.
func (m *Manager) Active(s *sessionstore.Session) bool {
	return activeAt(s, m.now())
}

// activeAt is Active at now: the hot paths read the clock once per
// request (time.Now costs ~70 ns on a KVM clock, and whoami used to read
// it three times).
func activeAt(s *sessionstore.Session, now time.Time) bool {
	return s.Active && now.Before(s.ExpiresAt)
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
func (m *Manager) NewSession(r *http.Request, identityID, method, aal string) *Issued {
	return m.NewSessionFrom(r, identityID, sessionstore.AuthMethod{Method: method, AAL: aal})
}

// NewSessionFrom builds (but does not store) a session for identity after
// the first method am (its CompletedAt is set here): what a social
// sign-in needs to record its provider.
func (m *Manager) NewSessionFrom(r *http.Request, identityID string, am sessionstore.AuthMethod) *Issued {
	now := m.now().UTC()
	am.CompletedAt = now
	aal := sessionAAL([]sessionstore.AuthMethod{am})
	tok := token.NewSessionToken()
	ip := r.RemoteAddr
	var ua *string
	if s := r.UserAgent(); s != "" {
		ua = &s
	}
	s := &sessionstore.Session{
		ID: uuid.NewString(), IdentityID: identityID, Active: true,
		ExpiresAt: now.Add(m.cfg.SessionLifespan), AuthenticatedAt: now, IssuedAt: now,
		AAL:                   aal,
		AuthenticationMethods: []sessionstore.AuthMethod{am},
		Devices:               []sessionstore.Device{{ID: uuid.NewString(), IPAddress: &ip, UserAgent: ua}},
		TokenHash:             token.Hash(tok),
	}
	s.LogoutTokenHash = token.Hash(m.LogoutToken(s.ID))
	return &Issued{Session: s, Token: tok}
}

// LogoutToken is derived from the session id with a keyed MAC, so it can be
// shown again on every createBrowserLogoutFlow without being stored.
func (m *Manager) LogoutToken(sessionID string) string {
	key := m.cookies.MACKey()
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("logout\x00" + sessionID))
	sum := mac.Sum(nil)
	b := make([]byte, 32)
	for i := range b {
		b[i] = token.Alnum[int(sum[i])%len(token.Alnum)]
	}
	return "ory_lo_" + string(b)
}

// SetCookie sets ory_kratos_session for s.
func (m *Manager) SetCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	maxAge := int(time.Until(expires).Seconds())
	if maxAge < 1 {
		maxAge = 1
	}
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- HttpOnly and SameSite are set; Secure is off only in dev mode over plain http (kratos --dev)
		Name: m.cfg.CookieName, Value: m.cookies.Seal(token, expires),
		Path: m.cfg.CookiePath, Domain: m.cfg.CookieDomain,
		Expires: expires.UTC(), MaxAge: maxAge,
		HttpOnly: true, Secure: m.secureCookies(r), SameSite: m.cfg.CookieSameSite,
	})
}

// ClearCookie removes the session cookie.
func (m *Manager) ClearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- clears the cookie; same attributes as when it was set
		Name: m.cfg.CookieName, Value: "", Path: m.cfg.CookiePath, Domain: m.cfg.CookieDomain,
		Expires: time.Unix(1, 0).UTC(), MaxAge: -1,
		HttpOnly: true, Secure: m.secureCookies(r), SameSite: m.cfg.CookieSameSite,
	})
}

// ErrSessionGone: the request's session was revoked, expired or got a new
// token while the request ran.
var ErrSessionGone = errors.New("flows: the session is no longer valid")

// Upgrade records a completed method on the request's session sess
// (as currentSession read it), recomputes the AAL and returns the stored
// session with the token to answer with. The change is applied to the
// stored session in one store transaction, so concurrent writers (a
// sliding extension, another step) do not undo each other.
//
// reauth: the method re-proved the first factor (a refresh login). Only
// then does authenticated_at move: privileged_session_max_age counts from
// the last first-factor authentication, so a second factor, or a
// credential linked in settings, never renews the privileged window
// (Kratos moves it on every login step).
//
// A session whose token came in the session cookie gets a new token (the
// caller sets the new cookie; issuedSession.rotated): a cookie planted
// from a sibling subdomain then never rides along into a higher AAL or a
// refreshed session, and the old value stops working at the commit, in
// the store's caches too. Tokens the client holds itself (X-Session-Token
// or Bearer: native apps) are kept, as Kratos does; a cookie cannot plant
// them.
func (m *Manager) Upgrade(r *http.Request, sess *sessionstore.Session, method, aal string, reauth bool) (*Issued, error) {
	return m.UpgradeWith(r, sess, sessionstore.AuthMethod{Method: method, AAL: aal}, reauth)
}

// UpgradeWith is Upgrade with the completed method am (its CompletedAt is
// set here), for methods that record more than their name (oidc's
// provider).
func (m *Manager) UpgradeWith(r *http.Request, sess *sessionstore.Session, am sessionstore.AuthMethod, reauth bool) (*Issued, error) {
	var c requestCred
	if !m.requestCredential(r, &c) || (c.ncands > 1 && m.resolveCookies(r.Context(), &c) != nil) || !bytes.Equal(c.hash[:], sess.TokenHash) {
		return nil, ErrSessionGone
	}
	is := &Issued{Upgraded: true}
	var newHash []byte
	if c.fromCookie {
		is.Token, is.Rotated = token.NewSessionToken(), true
		newHash = token.Hash(is.Token)
	} else {
		is.Token, _ = m.RequestToken(r)
	}
	now := m.now().UTC()
	stored, err := m.store.ModifySession(r.Context(), sess.ID, sess.TokenHash, func(up *sessionstore.Session) error {
		if !m.Active(up) {
			return ErrSessionGone
		}
		if reauth {
			up.AuthenticatedAt = now
		}
		am.CompletedAt = now
		up.AuthenticationMethods = append(up.AuthenticationMethods, am)
		up.AAL = sessionAAL(up.AuthenticationMethods)
		if newHash != nil {
			up.TokenHash = newHash
		}
		return nil
	})
	if errors.Is(err, sessionstore.ErrTokenChanged) || errors.Is(err, sessionstore.ErrNotFound) {
		return nil, ErrSessionGone
	}
	if err != nil {
		return nil, fmt.Errorf("upgrading session: %w", err)
	}
	is.Session = stored
	return is, nil
}

// Privileged reports whether sess authenticated recently enough for
// sensitive settings changes (privileged_session_max_age).
func (m *Manager) Privileged(sess *sessionstore.Session) bool {
	return m.now().Before(sess.AuthenticatedAt.Add(m.cfg.PrivilegedSessionMaxAge))
}

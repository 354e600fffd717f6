package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// FactorSet is what second factors an identity can still use.
type FactorSet uint8

const (
	// factorStrong: TOTP, a second-factor security key or an unused
	// backup code.
	FactorStrong FactorSet = 1 << iota
	// factorMailbox: a mailed code (code { mfa }) to an email address.
	FactorMailbox
)

// fromMailbox reports whether a completed method only proves control of
// the mailbox.
func fromMailbox(method string) bool {
	switch method {
	case "code", "code_recovery", "link_recovery":
		return true
	}
	return false
}

// SecondCounts reports whether completing the second-factor method on a
// session with methods ms makes it aal2, for an identity with factors fs.
func SecondCounts(method string, ms []sessionstore.AuthMethod, fs FactorSet) bool {
	if !fromMailbox(method) {
		return true
	}
	if fs&FactorStrong != 0 {
		return false
	}
	for _, m := range ms {
		if m.AAL == "aal1" && !fromMailbox(m.Method) {
			return true
		}
	}
	return false
}

// methodsAAL is the level the completed methods ms reach for an identity
// with factors fs: aal2 once a first factor and a second factor that
// counts are both completed.
func methodsAAL(ms []sessionstore.AuthMethod, fs FactorSet) string {
	first, second := false, false
	for _, m := range ms {
		switch m.AAL {
		case "aal1":
			first = true
		case "aal2":
			second = true
		}
	}
	if first && second {
		for _, m := range ms {
			if m.AAL == "aal2" && SecondCounts(m.Method, ms, fs) {
				return "aal2"
			}
		}
	}
	if first || second {
		return "aal1"
	}
	return "aal0"
}

// sessionAAL is the level stored on a session after a method completes.
// The checks (assess) apply the identity's factors on top of it.
func sessionAAL(ms []sessionstore.AuthMethod) string {
	return methodsAAL(ms, 0)
}

// canReachAAL2 reports whether a session with methods ms can still become
// aal2 with one of the identity's factors fs.
func canReachAAL2(ms []sessionstore.AuthMethod, fs FactorSet) bool {
	if fs&FactorStrong != 0 {
		return true
	}
	return fs&FactorMailbox != 0 && SecondCounts("code", ms, fs)
}

// assess applies an assurance policy (aal1, aal2, highest_available) to a
// session with methods ms of an identity with factors fs. It returns the
// session's level and nil, ErrAAL2Required (a factor the session can add
// is due) or ErrAAL2SetupRequired (aal2 required, nothing to add it with).
func assess(ms []sessionstore.AuthMethod, fs FactorSet, required string) (string, error) {
	level := methodsAAL(ms, fs)
	switch required {
	case "aal1":
		return level, nil
	case "aal2":
		switch {
		case level == "aal2":
			return level, nil
		case canReachAAL2(ms, fs):
			return level, ErrAAL2Required
		}
		return level, ErrAAL2SetupRequired
	default: // highest_available
		if level == "aal2" || !canReachAAL2(ms, fs) {
			return level, nil
		}
		return level, ErrAAL2Required
	}
}

// IdentityFactors asks every second-factor method whether the identity
// holds a credential of its kind it can still use.
func (e *Manager) IdentityFactors(ident *sessionstore.Identity) FactorSet {
	var fs FactorSet
	if ident == nil {
		return 0
	}
	for _, f := range e.factors {
		if !f.HasActive(ident) {
			continue
		}
		if fromMailbox(f.Method()) {
			fs |= FactorMailbox
		} else {
			fs |= FactorStrong
		}
	}
	return fs
}

// sharedIdentityFactors is identityFactors for an identity from the
// store's shared cache (GetIdentityShared), computed once per stored
// version: decoding credentials allocates, the gate must not. An identity
// without such credentials is answered directly.
func (e *Manager) sharedIdentityFactors(ident *sessionstore.Identity) FactorSet {
	if len(ident.Credentials) == 0 {
		return e.IdentityFactors(ident)
	}
	iv := e.views.get(ident)
	iv.factorsOnce.Do(func() { iv.factors = e.IdentityFactors(ident) })
	return iv.factors
}

// AALSatisfied applies the configured required_aal (whoami, settings,
// /sessions, the answer after a login step) to a session of ident.
func (e *Manager) AALSatisfied(sess *sessionstore.Session, ident *sessionstore.Identity) bool {
	_, err := assess(sess.AuthenticationMethods, e.IdentityFactors(ident), e.cfg.RequiredAAL)
	return err == nil
}

// checkAAL applies an assurance policy (empty: required_aal) to a session
// of an identity from the shared cache. It returns the session's level.
func (e *Manager) checkAAL(s *sessionstore.Session, ident *sessionstore.Identity, required string) (string, error) {
	if required == "" {
		required = e.cfg.RequiredAAL
	}
	return assess(s.AuthenticationMethods, e.sharedIdentityFactors(ident), required)
}

// EffectiveAAL is the session's level for its identity as it is now (the
// stored level can be higher: a mailed code that no longer counts).
func (e *Manager) EffectiveAAL(ctx context.Context, s *sessionstore.Session) string {
	ident, err := e.store.GetIdentityShared(ctx, s.IdentityID)
	if err != nil {
		return s.AAL
	}
	return methodsAAL(s.AuthenticationMethods, e.sharedIdentityFactors(ident))
}

// IdentityAAL is the highest level an identity can reach with its
// factors (aal2 with any usable second factor).
func (e *Manager) IdentityAAL(ident *sessionstore.Identity) string {
	if e.IdentityFactors(ident) != 0 {
		return "aal2"
	}
	return "aal1"
}

// errSessionGone: the request's session was revoked, expired or got a new
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
func (e *Manager) Upgrade(r *http.Request, sess *sessionstore.Session, method, aal string, reauth bool) (*Issued, error) {
	var c requestCred
	if !e.requestCredential(r, &c) || (c.ncands > 1 && e.resolveCookies(r.Context(), &c) != nil) || !bytes.Equal(c.hash[:], sess.TokenHash) {
		return nil, ErrSessionGone
	}
	is := &Issued{Upgraded: true}
	var newHash []byte
	if c.fromCookie {
		is.Token, is.Rotated = token.NewSessionToken(), true
		newHash = token.Hash(is.Token)
	} else {
		is.Token, _ = e.RequestToken(r)
	}
	now := e.now().UTC()
	stored, err := e.store.ModifySession(r.Context(), sess.ID, sess.TokenHash, func(up *sessionstore.Session) error {
		if !e.Active(up) {
			return ErrSessionGone
		}
		if reauth {
			up.AuthenticatedAt = now
		}
		up.AuthenticationMethods = append(up.AuthenticationMethods, sessionstore.AuthMethod{Method: method, AAL: aal, CompletedAt: now})
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

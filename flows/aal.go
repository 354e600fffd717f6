package flows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Every assurance question (the level stored on a session, whoami, the
// gate, settings, /sessions, the answer after a login step, which second
// factors an aal2 login flow offers and accepts) is answered here:
//
//   - A session's first factors are its aal1 methods, its second factors
//     its aal2 methods.
//   - A mailed code proves only control of the mailbox. It never counts as
//     the second factor of a session whose first factors all came from the
//     mailbox too (code sign-in, code_recovery, link_recovery): one mailbox
//     is one factor, however many codes it receives.
//   - An identity with a strong second factor (TOTP, a security key
//     registered as second factor, an unused backup code) must use it: for
//     such an identity a mailed code is no second factor at all.
//   - A second factor counts only while the identity holds an active
//     credential of its kind (loginMethod.active, Kratos's
//     CountActiveMultiFactorCredentials). A set of backup codes that are
//     all used is no factor, so its owner is not locked out:
//     highest_available is met at aal1, and a gate that requires aal2
//     sends the user to the settings flow to set one up. As in Kratos, a
//     credential still counts while its method is turned off (turning a
//     method off must not lower the bar for its users); a mailed code is a
//     factor only while code { mfa } and the code method are on.
//
// The functions below take the session's methods and the identity's
// factors (a bit set) so the gate can apply them without allocating.

// factorSet is what second factors an identity can still use.
type factorSet uint8

const (
	// factorStrong: TOTP, a second-factor security key or an unused
	// backup code.
	factorStrong factorSet = 1 << iota
	// factorMailbox: a mailed code (code { mfa }) to an email address.
	factorMailbox
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

// secondCounts reports whether completing the second-factor method on a
// session with methods ms makes it aal2, for an identity with factors fs.
func secondCounts(method string, ms []sessionstore.AuthMethod, fs factorSet) bool {
	if !fromMailbox(method) {
		return true
	}
	if fs&factorStrong != 0 {
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
func methodsAAL(ms []sessionstore.AuthMethod, fs factorSet) string {
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
			if m.AAL == "aal2" && secondCounts(m.Method, ms, fs) {
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
func canReachAAL2(ms []sessionstore.AuthMethod, fs factorSet) bool {
	if fs&factorStrong != 0 {
		return true
	}
	return fs&factorMailbox != 0 && secondCounts("code", ms, fs)
}

// assess applies an assurance policy (aal1, aal2, highest_available) to a
// session with methods ms of an identity with factors fs. It returns the
// session's level and nil, ErrAAL2Required (a factor the session can add
// is due) or ErrAAL2SetupRequired (aal2 required, nothing to add it with).
func assess(ms []sessionstore.AuthMethod, fs factorSet, required string) (string, error) {
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

// identityFactors asks every second-factor method whether the identity
// holds a credential of its kind it can still use.
func (e *sessionManager) identityFactors(ident *sessionstore.Identity) factorSet {
	var fs factorSet
	if ident == nil {
		return 0
	}
	for _, f := range e.factors {
		if !f.HasActive(ident) {
			continue
		}
		if fromMailbox(f.Method()) {
			fs |= factorMailbox
		} else {
			fs |= factorStrong
		}
	}
	return fs
}

// sharedIdentityFactors is identityFactors for an identity from the
// store's shared cache (GetIdentityShared), computed once per stored
// version: decoding credentials allocates, the gate must not. An identity
// without such credentials is answered directly.
func (e *sessionManager) sharedIdentityFactors(ident *sessionstore.Identity) factorSet {
	if len(ident.Credentials) == 0 {
		return e.identityFactors(ident)
	}
	iv := e.views.get(ident)
	iv.factorsOnce.Do(func() { iv.factors = e.identityFactors(ident) })
	return iv.factors
}

// aalSatisfied applies the configured required_aal (whoami, settings,
// /sessions, the answer after a login step) to a session of ident.
func (e *sessionManager) aalSatisfied(sess *sessionstore.Session, ident *sessionstore.Identity) bool {
	_, err := assess(sess.AuthenticationMethods, e.identityFactors(ident), e.cfg.RequiredAAL)
	return err == nil
}

// checkAAL applies an assurance policy (empty: required_aal) to a session
// of an identity from the shared cache. It returns the session's level.
func (e *sessionManager) checkAAL(s *sessionstore.Session, ident *sessionstore.Identity, required string) (string, error) {
	if required == "" {
		required = e.cfg.RequiredAAL
	}
	return assess(s.AuthenticationMethods, e.sharedIdentityFactors(ident), required)
}

// effectiveAAL is the session's level for its identity as it is now (the
// stored level can be higher: a mailed code that no longer counts).
func (e *sessionManager) effectiveAAL(ctx context.Context, s *sessionstore.Session) string {
	ident, err := e.store.GetIdentityShared(ctx, s.IdentityID)
	if err != nil {
		return s.AAL
	}
	return methodsAAL(s.AuthenticationMethods, e.sharedIdentityFactors(ident))
}

// identityAAL is the highest level an identity can reach with its
// factors (aal2 with any usable second factor).
func (e *sessionManager) identityAAL(ident *sessionstore.Identity) string {
	if e.identityFactors(ident) != 0 {
		return "aal2"
	}
	return "aal1"
}

// errSessionGone: the request's session was revoked, expired or got a new
// token while the request ran.
var errSessionGone = errors.New("flows: the session is no longer valid")

// upgradeSession records a completed method on the request's session sess
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
func (e *sessionManager) upgradeSession(r *http.Request, sess *sessionstore.Session, method, aal string, reauth bool) (*issuedSession, error) {
	var c requestCred
	if !e.requestCredential(r, &c) || (c.ncands > 1 && e.resolveCookies(r.Context(), &c) != nil) || !bytes.Equal(c.hash[:], sess.TokenHash) {
		return nil, errSessionGone
	}
	is := &issuedSession{upgraded: true}
	var newHash []byte
	if c.fromCookie {
		is.token, is.rotated = token.NewSessionToken(), true
		newHash = token.Hash(is.token)
	} else {
		is.token, _ = e.requestToken(r)
	}
	now := e.now().UTC()
	stored, err := e.store.ModifySession(r.Context(), sess.ID, sess.TokenHash, func(up *sessionstore.Session) error {
		if !e.sessionActive(up) {
			return errSessionGone
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
		return nil, errSessionGone
	}
	if err != nil {
		return nil, fmt.Errorf("upgrading session: %w", err)
	}
	is.sess = stored
	return is, nil
}

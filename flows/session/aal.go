package session

import (
	"context"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// FactorSet is what second factors an identity can still use.
type FactorSet uint8

const (
	// FactorStrong: TOTP, a second-factor security key or an unused
	// backup code.
	FactorStrong FactorSet = 1 << iota
	// FactorMailbox: a mailed code (code { mfa }) to an email address.
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
			// A social sign-in the provider asserted at aal2 (its trusted
			// acr/amr) is both factors at once.
			second = true
			first = first || m.Method == "oidc"
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
func (m *Manager) IdentityFactors(ident *sessionstore.Identity) FactorSet {
	var fs FactorSet
	if ident == nil {
		return 0
	}
	for _, f := range m.factors {
		if !f.HasActive(ident) {
			continue
		}
		if fromMailbox(f.ID()) {
			fs |= FactorMailbox
		} else {
			fs |= FactorStrong
		}
	}
	return fs
}

// sharedIdentityFactors is IdentityFactors for an identity from the
// store's shared cache (GetIdentityShared), computed once per stored
// version: decoding credentials allocates, the gate must not. An identity
// without such credentials is answered directly.
func (m *Manager) sharedIdentityFactors(ident *sessionstore.Identity) FactorSet {
	if len(ident.Credentials) == 0 {
		return m.IdentityFactors(ident)
	}
	iv := m.views.get(ident)
	iv.factorsOnce.Do(func() { iv.factors = m.IdentityFactors(ident) })
	return iv.factors
}

// AALSatisfied applies the configured required_aal (whoami, settings,
// /sessions, the answer after a login step) to a session of ident.
func (m *Manager) AALSatisfied(sess *sessionstore.Session, ident *sessionstore.Identity) bool {
	_, err := assess(sess.AuthenticationMethods, m.IdentityFactors(ident), m.cfg.RequiredAAL)
	return err == nil
}

// checkAAL applies an assurance policy (empty: required_aal) to a session
// of an identity from the shared cache. It returns the session's level.
func (m *Manager) checkAAL(s *sessionstore.Session, ident *sessionstore.Identity, required string) (string, error) {
	if required == "" {
		required = m.cfg.RequiredAAL
	}
	return assess(s.AuthenticationMethods, m.sharedIdentityFactors(ident), required)
}

// EffectiveAAL is the session's level for its identity as it is now (the
// stored level can be higher: a mailed code that no longer counts).
func (m *Manager) EffectiveAAL(ctx context.Context, s *sessionstore.Session) string {
	ident, err := m.store.GetIdentityShared(ctx, s.IdentityID)
	if err != nil {
		return s.AAL
	}
	return methodsAAL(s.AuthenticationMethods, m.sharedIdentityFactors(ident))
}

// IdentityAAL is the highest level an identity can reach with its
// factors (aal2 with any usable second factor).
func (m *Manager) IdentityAAL(ident *sessionstore.Identity) string {
	if m.IdentityFactors(ident) != 0 {
		return "aal2"
	}
	return "aal1"
}

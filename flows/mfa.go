package flows

import (
	"context"
	"net/http"
	"slices"

	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Shared pieces of the strong-authentication methods (totp, lookup_secret,
// webauthn, passkey).

// Display order of the method groups, as Kratos renders them. Methods not
// listed keep their registration order, after the listed ones.
var (
	settingsRank     = map[string]int{"profile": 1, "password": 2, "oidc": 3, "code": 4, "lookup_secret": 5, "totp": 6, "webauthn": 7, "passkey": 8}
	loginRank        = map[string]int{"code": 1, "totp": 2, "lookup_secret": 3, "webauthn": 4, "passkey": 5}
	registrationRank = map[string]int{"code": 1, "passkey": 2, "webauthn": 3}
)

func rankOf(m map[string]int, name string) int {
	if r, ok := m[name]; ok {
		return r
	}
	return 100
}

// sortRegistries puts the method registries in display order. Every
// strong-authentication file calls it from init(): init order follows file
// names, so whichever of them runs last leaves the registries sorted.
func sortRegistries() {
	slices.SortStableFunc(settingsMethods, func(a, b *settingsMethod) int {
		return rankOf(settingsRank, a.name) - rankOf(settingsRank, b.name)
	})
	slices.SortStableFunc(loginMethods, func(a, b *loginMethod) int {
		return rankOf(loginRank, a.name) - rankOf(loginRank, b.name)
	})
	slices.SortStableFunc(registrationMethods, func(a, b *registrationMethod) int {
		return rankOf(registrationRank, a.name) - rankOf(registrationRank, b.name)
	})
}

func hasCredential(ident *sessionstore.Identity, typ string) bool {
	if ident == nil {
		return false
	}
	_, ok := ident.Credentials[typ]
	return ok
}

// webauthnScriptNode is the script node every WebAuthn/passkey form
// carries (group webauthn; one per form).
func (e *Engine) webauthnScriptNode(r *http.Request) *node.Node {
	return &node.Node{Type: "script", Group: "webauthn", Messages: []node.Text{}, Attributes: &node.ScriptAttrs{
		ID:             "webauthn_script",
		Src:            e.urls.Public(".well-known/ory/webauthn.js"),
		Async:          true,
		ReferrerPolicy: "no-referrer",
		CrossOrigin:    "anonymous",
		Integrity:      webauthnIntegrity,
		Type:           "text/javascript",
		Nonce:          token.RandomString(16, token.Alnum),
		NodeType:       "script",
	}}
}

// ensureWebAuthnScript appends the script node unless the form has one.
func (e *Engine) ensureWebAuthnScript(r *http.Request, f *flow) {
	if f.UI.FindScript("webauthn_script") == nil {
		f.UI.Nodes = append(f.UI.Nodes, e.webauthnScriptNode(r))
	}
}

// internal returns f.Internal, creating it.
func (f *flow) internal() map[string]any {
	if f.Internal == nil {
		f.Internal = map[string]any{}
	}
	return f.Internal
}

// internalString returns f.Internal[k] as a string.
func (f *flow) internalString(k string) string {
	s, _ := f.Internal[k].(string)
	return s
}

// Guessing limits for one-time second factors (TOTP and recovery codes):
// wrong codes count against the client IP (rule code_ip) and the identity
// (rule login_id, subject "aal2:<identity id>"), so a stolen password does
// not allow an online search of the 6-digit code space.

func mfaLimitSubject(identityID string) string { return "aal2:" + identityID }

// mfaReserve counts a guess against the client and the identity before
// the code is checked: a 429 (or 503, fail closed) error when refused.
func (e *Engine) mfaReserve(r *http.Request, identityID string) (*reservation, *wire.Error) {
	return e.reserve(r.Context(), "code_ip", e.limitIP(r), "login_id", mfaLimitSubject(identityID))
}

// mfaPassed gives a correct code's attempt back and clears the identity's
// count.
func mfaPassed(rv *reservation) {
	rv.forgive("login_id")
	rv.release()
}

// --- the assurance rule ---
//
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
func (e *Engine) identityFactors(ident *sessionstore.Identity) factorSet {
	var fs factorSet
	if ident == nil {
		return 0
	}
	for _, m := range loginMethods {
		if m.aal != "aal2" || m.active == nil || !m.active(e, ident) {
			continue
		}
		if fromMailbox(m.name) {
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
func (e *Engine) sharedIdentityFactors(ident *sessionstore.Identity) factorSet {
	if len(ident.Credentials) == 0 {
		return e.identityFactors(ident)
	}
	iv := e.gate.views.get(ident)
	iv.factorsOnce.Do(func() { iv.factors = e.identityFactors(ident) })
	return iv.factors
}

// aalSatisfied applies the configured required_aal (whoami, settings,
// /sessions, the answer after a login step) to a session of ident.
func (e *Engine) aalSatisfied(sess *sessionstore.Session, ident *sessionstore.Identity) bool {
	_, err := assess(sess.AuthenticationMethods, e.identityFactors(ident), e.cfg.RequiredAAL)
	return err == nil
}

// checkAAL applies an assurance policy (empty: required_aal) to a session
// of an identity from the shared cache. It returns the session's level.
func (e *Engine) checkAAL(s *sessionstore.Session, ident *sessionstore.Identity, required string) (string, error) {
	if required == "" {
		required = e.cfg.RequiredAAL
	}
	return assess(s.AuthenticationMethods, e.sharedIdentityFactors(ident), required)
}

// effectiveAAL is the session's level for its identity as it is now (the
// stored level can be higher: a mailed code that no longer counts).
func (e *Engine) effectiveAAL(ctx context.Context, s *sessionstore.Session) string {
	ident, err := e.store.GetIdentityShared(ctx, s.IdentityID)
	if err != nil {
		return s.AAL
	}
	return methodsAAL(s.AuthenticationMethods, e.sharedIdentityFactors(ident))
}

// secondFactorUsable reports whether the aal2 method m may complete the
// second factor of sess: offered on an aal2 login flow and accepted there.
func (e *Engine) secondFactorUsable(m *loginMethod, sess *sessionstore.Session, ident *sessionstore.Identity) bool {
	if m.aal != "aal2" || sess == nil || ident == nil || m.active == nil || !e.methodEnabled(m.name) || !m.active(e, ident) {
		return false
	}
	return secondCounts(m.name, sess.AuthenticationMethods, e.identityFactors(ident))
}

// identityAAL is the highest level an identity can reach with its
// factors (aal2 with any usable second factor).
func (e *Engine) identityAAL(ident *sessionstore.Identity) string {
	if e.identityFactors(ident) != 0 {
		return "aal2"
	}
	return "aal1"
}

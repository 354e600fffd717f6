package flows

import (
	"net/http"
	"slices"

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

// secondFactorCheck refines secondFactors per credential type: a
// credential of a listed type makes the identity aal2-capable only when the
// check says so (webauthn keys registered for passwordless sign-in are a
// first factor).
var secondFactorCheck = map[string]func(sessionstore.Credential) bool{}

func hasCredential(ident *sessionstore.Identity, typ string) bool {
	if ident == nil {
		return false
	}
	_, ok := ident.Credentials[typ]
	return ok
}

// findScript returns the script node with that id.
func (c *Container) findScript(id string) *Node {
	for _, n := range c.Nodes {
		if a, ok := n.Attributes.(*ScriptAttrs); ok && a.ID == id {
			return n
		}
	}
	return nil
}

// webauthnScriptNode is the script node every WebAuthn/passkey form
// carries (group webauthn; one per form).
func (e *Engine) webauthnScriptNode(r *http.Request) *Node {
	return &Node{Type: "script", Group: "webauthn", Messages: []Text{}, Attributes: &ScriptAttrs{
		ID:             "webauthn_script",
		Src:            e.publicURL(r, ".well-known/ory/webauthn.js"),
		Async:          true,
		ReferrerPolicy: "no-referrer",
		CrossOrigin:    "anonymous",
		Integrity:      webauthnIntegrity,
		Type:           "text/javascript",
		Nonce:          randomString(16, alnum),
		NodeType:       "script",
	}}
}

// ensureWebAuthnScript appends the script node unless the form has one.
func (e *Engine) ensureWebAuthnScript(r *http.Request, f *flow) {
	if f.UI.findScript("webauthn_script") == nil {
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
func (e *Engine) mfaReserve(r *http.Request, identityID string) (*reservation, *Error) {
	return e.reserve(r.Context(), "code_ip", e.limitIP(r), "login_id", mfaLimitSubject(identityID))
}

// mfaPassed gives a correct code's attempt back and clears the identity's
// count.
func mfaPassed(rv *reservation) {
	rv.forgive("login_id")
	rv.release()
}

package flows

import (
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Shared pieces of the strong-authentication methods (totp, lookup_secret,
// webauthn, passkey).

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
func (e *Engine) ensureWebAuthnScript(r *http.Request, f *flow.Flow) {
	if f.UI.FindScript("webauthn_script") == nil {
		f.UI.Nodes = append(f.UI.Nodes, e.webauthnScriptNode(r))
	}
}

// Guessing limits for one-time second factors (TOTP and recovery codes):
// wrong codes count against the client IP (rule code_ip) and the identity
// (rule login_id, subject "aal2:<identity id>"), so a stolen password does
// not allow an online search of the 6-digit code space.

func mfaLimitSubject(identityID string) string { return "aal2:" + identityID }

// mfaReserve counts a guess against the client and the identity before
// the code is checked: a 429 (or 503, fail closed) error when refused.
func (e *Engine) mfaReserve(r *http.Request, identityID string) (*flow.Reservation, *wire.Error) {
	return e.kernel.Reserve(r.Context(), "code_ip", e.kernel.LimitIP(r), "login_id", mfaLimitSubject(identityID))
}

// mfaPassed gives a correct code's attempt back and clears the identity's
// count.
func mfaPassed(rv *flow.Reservation) {
	rv.Forgive("login_id")
	rv.Release()
}

// dropCredential removes the credential of type typ: what a mailbox
// sign-in does to the first factors it did not set (claimAddress).
func dropCredential(typ string) func(*sessionstore.Identity, time.Time) error {
	return func(ident *sessionstore.Identity, _ time.Time) error {
		delete(ident.Credentials, typ)
		return nil
	}
}

package flows

import (
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Shared pieces of the strong-authentication methods (totp, lookup_secret,
// webauthn, passkey).

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

// dropCredential removes the credential of type typ: what a mailbox
// sign-in does to the first factors it did not set (claimAddress).
func dropCredential(typ string) func(*sessionstore.Identity, time.Time) error {
	return func(ident *sessionstore.Identity, _ time.Time) error {
		delete(ident.Credentials, typ)
		return nil
	}
}

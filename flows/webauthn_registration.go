package flows

import (
	"net/http"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// Sign-up with a security key: with webauthn { passwordless }, the
// registration flow (the unified form, and profile_first's credential
// step) offers the webauthn group beside password, code and passkey, as
// Kratos's webauthn strategy does. The new identity gets a "webauthn"
// credential with one passwordless key, identified by the traits marked
// as webauthn identifiers (else the password ones); it then signs in with
// method webauthn.

// beginWebAuthnSignUp starts a security-key registration for a new
// identity (a random user handle: the identity id does not exist yet) and
// returns the creation options JSON.
func (e *Engine) beginWebAuthnSignUp(r *http.Request, f *flow.Flow, traits map[string]any) (string, error) {
	wa, err := e.webAuthn(r, "passwordless")
	if err != nil {
		return "", err
	}
	name := e.webauthnUserName(e.kernel.FlowSchema(f), traits, "")
	creation, sd, err := wa.BeginRegistration(&waUser{id: token.RandomBytes(16), name: name})
	if err != nil {
		return "", err
	}
	storeCeremony(f, ceremonyWebAuthnRegister, sd)
	return optionsJSON(creation), nil
}

func webauthnRegistrationNodes(e *Engine, r *http.Request, f *flow.Flow, traits map[string]any) {
	if !e.cfg.WebAuthnPasswordless || !e.canWebAuthn(r, f) {
		return
	}
	opts, err := e.beginWebAuthnSignUp(r, f, traits)
	if err != nil {
		e.logger.Error("starting a WebAuthn sign-up", zap.Error(err))
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("webauthn", "webauthn_register_displayname", "text", node.Label(1050013, nil)).Value(""),
		node.Input("webauthn", "webauthn_register", "hidden", nil).Value(""),
		node.Trigger("webauthn", "webauthn_register_trigger", "oryWebAuthnRegistration", opts, node.Label(1040004, nil)))
	e.ensureWebAuthnScript(r, f)
}

func webauthnRegister(e *Engine, r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome {
	f := st.Sub.Flow
	body := st.Sub.Body
	resp := wire.BodyString(body, "webauthn_register")
	if !e.cfg.WebAuthnPasswordless || f.Type != "browser" || resp == "" {
		// Kratos's webauthn strategy is not responsible then.
		notResponsible(f, 4010003)
		return flow.RegistrationOutcome{Invalid: true}
	}
	name := strings.TrimSpace(wire.BodyString(body, "webauthn_register_displayname"))
	f.UI.SetValue("webauthn_register_displayname", name)
	fail := func(reason string) flow.RegistrationOutcome {
		f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		f.UI.SetValue("webauthn_register", "")
		if opts, err := e.beginWebAuthnSignUp(r, f, st.Traits); err == nil {
			f.UI.SetTrigger("webauthn_register_trigger", "oryWebAuthnRegistration", opts)
		}
		return flow.RegistrationOutcome{Invalid: true}
	}
	// The identifiers passwordless sign-in looks the key up by, as in
	// settings (webauthnIdentifiers).
	sch := e.kernel.FlowSchema(f)
	identifiers := sch.Identifiers(st.Traits, "webauthn")
	if len(identifiers) == 0 {
		identifiers = sch.Identifiers(st.Traits, "password")
	}
	if len(identifiers) == 0 {
		f.UI.Messages = []node.Text{node.NewText(4000009, nil)}
		return flow.RegistrationOutcome{Invalid: true}
	}
	sd, err := e.takeCeremony(r.Context(), f, ceremonyWebAuthnRegister)
	if err != nil {
		return flow.RegistrationOutcome{Err: wire.StoreError(err, "unable to load the flow")}
	}
	if sd == nil || len(sd.UserID) == 0 {
		return fail("The security key registration expired or was already completed. Please try again.")
	}
	cred, reason := e.createCredential(r, "passwordless", sd, resp)
	if cred == nil {
		return fail(reason)
	}
	now := e.now().UTC()
	cfg := webauthnConfig{UserHandle: sd.UserID,
		Credentials: []webauthnKey{keyFromLib(cred, name, now.Round(time.Second), true)}}
	return flow.RegistrationOutcome{Creds: map[string]sessionstore.Credential{
		"webauthn": {Type: "webauthn", Identifiers: identifiers, Config: identity.EncodeConfig(cfg), CreatedAt: now, UpdatedAt: now},
	}}
}

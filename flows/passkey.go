package flows

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The passkey method: discoverable WebAuthn credentials as a first factor
// (sign-up, sign-in without an identifier, add/remove in settings).
// Browser flows only, as in Kratos.
//
// Credential "passkey": config {user_handle, credentials} (see
// webauthnConfig) with identifiers [user handle]. The user handle is the
// identity id for passkeys added in settings, and a random value for
// passkeys made at sign-up (the identity id does not exist yet); sign-in
// finds the identity by the handle the authenticator returns, through that
// identifier. Ceremony state is kept and consumed as for webauthn.

const (
	ceremonyPasskeyRegister = "passkey_registration"
	ceremonyPasskeyLogin    = "passkey_login"
)

// checkPasskeySelection refuses authenticator selections passkeys cannot
// work with.
func (c Config) checkPasskeySelection() error {
	switch c.PasskeyResidentKey {
	case "required", "preferred":
	case "discouraged":
		return errors.New("flows: passkey resident_key discouraged: passkeys sign in without an identifier, which needs a discoverable (resident) credential; want required or preferred")
	default:
		return fmt.Errorf("flows: passkey resident_key %q: want required or preferred", c.PasskeyResidentKey)
	}
	switch c.PasskeyUserVerification {
	case "required", "preferred", "discouraged":
	default:
		return fmt.Errorf("flows: passkey user_verification %q: want required, preferred or discouraged", c.PasskeyUserVerification)
	}
	switch c.PasskeyAttachment {
	case "platform", "cross-platform", "any":
	default:
		return fmt.Errorf("flows: passkey attachment %q: want platform, cross-platform or any", c.PasskeyAttachment)
	}
	return nil
}

// passkeySelection is the authenticator selection of passkey
// registrations.
func (e *Engine) passkeySelection() protocol.AuthenticatorSelection {
	required := e.cfg.PasskeyResidentKey == "required"
	sel := protocol.AuthenticatorSelection{
		RequireResidentKey: &required,
		ResidentKey:        protocol.ResidentKeyRequirement(e.cfg.PasskeyResidentKey),
		UserVerification:   protocol.UserVerificationRequirement(e.cfg.PasskeyUserVerification),
	}
	if e.cfg.PasskeyAttachment != "any" {
		sel.AuthenticatorAttachment = protocol.AuthenticatorAttachment(e.cfg.PasskeyAttachment)
	}
	return sel
}

// passkeyCreateData is the value of the passkey_create_data node that
// webauthn.js reads.
type passkeyCreateData struct {
	CredentialOptions    *protocol.CredentialCreation `json:"credentialOptions"`
	DisplayNameFieldName string                       `json:"displayNameFieldName,omitempty"`
}

// passkeyDisplayNameField is the trait whose value names the account in
// the authenticator: the one marked credentials.passkey.display_name, else
// the first identifier.
func (e *Engine) passkeyDisplayNameField(sch *identity.Schema) string {
	for _, f := range sch.Fields {
		if f.PasskeyName {
			return "traits." + f.Path
		}
	}
	for _, typ := range []string{"passkey", "webauthn", "password", "code"} {
		for _, f := range sch.Fields {
			if f.Identifier[typ] {
				return "traits." + f.Path
			}
		}
	}
	return ""
}

func (e *Engine) passkeyDisplayName(sch *identity.Schema, traits map[string]any, fallback string) string {
	if field := e.passkeyDisplayNameField(sch); field != "" {
		if v, ok := identity.LookupPath(traits, strings.TrimPrefix(field, "traits.")); ok {
			if s, ok := v.(string); ok && s != "" {
				return s
			}
		}
	}
	return fallback
}

// beginPasskeyRegistration starts a discoverable-credential registration
// on f for handle and returns the passkey_create_data JSON.
func (e *Engine) beginPasskeyRegistration(r *http.Request, f *flow.Flow, sch *identity.Schema, handle []byte, traits map[string]any, keys []webauthnKey) (string, error) {
	wa, err := e.webAuthn(r, "passkey")
	if err != nil {
		return "", err
	}
	name := e.webauthnUserName(sch, traits, "")
	user := &waUser{id: handle, name: name, display: e.passkeyDisplayName(sch, traits, name), keys: keys}
	creation, sd, err := wa.BeginRegistration(user, webauthn.WithExclusions(descriptors(keys)))
	if err != nil {
		return "", err
	}
	storeCeremony(f, ceremonyPasskeyRegister, sd)
	return optionsJSON(passkeyCreateData{CredentialOptions: creation, DisplayNameFieldName: e.passkeyDisplayNameField(sch)}), nil
}

// --- registration ---

func passkeyRegistrationNodes(e *Engine, r *http.Request, f *flow.Flow, traits map[string]any) {
	if !e.canWebAuthn(r, f) {
		return
	}
	data, err := e.beginPasskeyRegistration(r, f, e.kernel.FlowSchema(f), []byte(token.RandomString(64, token.Alnum)), traits, nil)
	if err != nil {
		e.logger.Error("starting a passkey registration", zap.Error(err))
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Trigger("passkey", "passkey_register_trigger", "oryPasskeyRegistration", "", node.Label(1040007, nil)),
		node.Input("passkey", "passkey_register", "hidden", nil),
		node.Input("passkey", "passkey_create_data", "hidden", nil).Value(data))
	e.ensureWebAuthnScript(r, f)
}

func passkeyRegister(e *Engine, r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome {
	f := st.Sub.Flow
	if f.Type != "browser" {
		notResponsible(f, 4010003)
		return flow.RegistrationOutcome{Invalid: true}
	}
	resp := wire.BodyString(st.Sub.Body, "passkey_register")
	fail := func(reason string) flow.RegistrationOutcome {
		f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		f.UI.SetValue("passkey_register", nil)
		if data, err := e.beginPasskeyRegistration(r, f, e.kernel.FlowSchema(f), []byte(token.RandomString(64, token.Alnum)), st.Traits, nil); err == nil {
			f.UI.SetValue("passkey_create_data", data)
		}
		return flow.RegistrationOutcome{Invalid: true}
	}
	sd, err := e.takeCeremony(r.Context(), f, ceremonyPasskeyRegister)
	if err != nil {
		return flow.RegistrationOutcome{Err: wire.StoreError(err, "unable to load the flow")}
	}
	if resp == "" {
		if sd != nil {
			storeCeremony(f, ceremonyPasskeyRegister, sd) // nothing was tried
		}
		f.UI.AddNodeMessage("passkey_register", node.NewText(4000002, map[string]any{"property": "passkey_register"}, "passkey_register"))
		return flow.RegistrationOutcome{Invalid: true}
	}
	if sd == nil || len(sd.UserID) == 0 {
		return fail("The passkey registration expired or was already completed. Please try again.")
	}
	cred, reason := e.createCredential(r, "passkey", sd, resp)
	if cred == nil {
		return fail(reason)
	}
	now := e.now().UTC()
	cfg := webauthnConfig{UserHandle: sd.UserID,
		Credentials: []webauthnKey{keyFromLib(cred, e.passkeyDisplayName(e.kernel.FlowSchema(f), st.Traits, ""), now.Round(time.Second), true)}}
	return flow.RegistrationOutcome{Creds: map[string]sessionstore.Credential{
		"passkey": {Type: "passkey", Identifiers: []string{string(sd.UserID)}, Config: identity.EncodeConfig(cfg), CreatedAt: now, UpdatedAt: now},
	}}
}

// createCredential verifies an attestation against a pending ceremony. On
// failure it returns nil and the reason.
func (e *Engine) createCredential(r *http.Request, kind string, sd *webauthn.SessionData, resp string) (*webauthn.Credential, string) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(resp))
	if err != nil {
		return nil, "Unable to parse WebAuthn response: " + protocolReason(err)
	}
	wa, err := e.webAuthn(r, kind)
	if err != nil {
		return nil, "Unable to configure WebAuthn."
	}
	cred, err := wa.CreateCredential(&waUser{id: sd.UserID}, *sd, parsed)
	if err != nil {
		return nil, "Unable to create WebAuthn credential: " + protocolReason(err)
	}
	return cred, ""
}

// --- login ---

func (e *Engine) beginPasskeyLogin(r *http.Request, f *flow.Flow) (string, error) {
	wa, err := e.webAuthn(r, "passkey")
	if err != nil {
		return "", err
	}
	assertion, sd, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.UserVerificationRequirement(e.cfg.PasskeyUserVerification)))
	if err != nil {
		return "", err
	}
	storeCeremony(f, ceremonyPasskeyLogin, sd)
	return optionsJSON(assertion), nil
}

func passkeyLoginNodes(e *Engine, r *http.Request, f *flow.Flow, _ *sessionstore.Identity) {
	if !e.passkeyAutofillNodes(r, f) {
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Trigger("passkey", "passkey_login_trigger", "oryPasskeyLogin", "", node.Label(1010021, nil)).Value(""))
}

// passkeyAutofillNodes appends a discoverable-login challenge, the script
// and the hidden passkey_login input that offers passkeys in the
// identifier field (Kratos's populateLoginMethodForPasskeys). It reports
// whether it did.
func (e *Engine) passkeyAutofillNodes(r *http.Request, f *flow.Flow) bool {
	if !e.canWebAuthn(r, f) || f.Refresh || f.RequestedAAL == "aal2" {
		return false
	}
	opts, err := e.beginPasskeyLogin(r, f)
	if err != nil {
		e.logger.Error("starting a passkey login", zap.Error(err))
		return false
	}
	if n := f.UI.Find("identifier"); n != nil && n.Input().Type != "hidden" {
		n.Input().Autocomplete = "username webauthn"
	} else if n == nil {
		// Without the password method no one else brought the identifier
		// (Kratos's passkey strategy renders it for autofill).
		f.UI.InsertAfterCSRF(node.Input("default", "identifier", "text", e.schemas.Default().AnyIdentifierLabel()).
			Value("").Required().Autocomplete("username webauthn"))
	}
	login := node.Input("passkey", "passkey_login", "hidden", nil)
	login.Input().OnLoad = "window.oryPasskeyLoginAutocompleteInit()"
	login.Input().OnLoadTrigger = "oryPasskeyLoginAutocompleteInit"
	f.UI.Nodes = append(f.UI.Nodes, node.Input("passkey", "passkey_challenge", "hidden", nil).Value(opts))
	e.ensureWebAuthnScript(r, f)
	f.UI.Nodes = append(f.UI.Nodes, login)
	return true
}

var errNoPasskey = errors.New("no passkey for this user handle")

func passkeyLoginVerify(e *Engine, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	if f.Type != "browser" {
		notResponsible(f, 4010002)
		return nil, nil
	}
	ctx := r.Context()
	fail := func() (*sessionstore.Identity, *wire.Error) {
		f.UI.Messages = []node.Text{node.NewText(4000043, nil)}
		f.UI.SetValue("passkey_login", nil)
		if opts, err := e.beginPasskeyLogin(r, f); err == nil {
			f.UI.SetValue("passkey_challenge", opts)
		}
		return nil, nil
	}
	resp := wire.BodyString(st.Sub.Body, "passkey_login")
	if resp == "" {
		f.UI.AddNodeMessage("passkey_login", node.NewText(4000002, map[string]any{"property": "passkey_login"}, "passkey_login"))
		return nil, nil
	}
	sd, err := e.takeCeremony(ctx, f, ceremonyPasskeyLogin)
	if err != nil {
		return nil, wire.StoreError(err, "unable to load the flow")
	}
	if sd == nil {
		return fail()
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(resp))
	if err != nil {
		return fail()
	}
	wa, err := e.webAuthn(r, "passkey")
	if err != nil {
		return nil, wire.StoreError(err, "unable to configure WebAuthn")
	}
	var ident *sessionstore.Identity
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		id, err := e.store.FindIdentityByCredential(ctx, "passkey", string(userHandle))
		if err != nil {
			return nil, errNoPasskey
		}
		cfg, ok := webauthnConfigOf(id, "passkey")
		if !ok {
			return nil, errNoPasskey
		}
		ident = id
		return &waUser{id: cfg.UserHandle, keys: cfg.Credentials}, nil
	}
	_, cred, err := wa.ValidatePasskeyLogin(handler, *sd, parsed)
	if err != nil || ident == nil {
		e.logger.Debug("passkey assertion refused", zap.Error(err))
		return fail()
	}
	if cred.Authenticator.CloneWarning {
		e.logger.Warn("passkey sign counter went backwards; refusing the key")
		return fail()
	}
	up, err := e.recordKeyUse(ctx, ident.ID, "passkey", cred)
	if err != nil {
		return nil, wire.StoreError(err, "unable to store the identity")
	}
	return up, nil
}

// --- settings ---

func (e *Engine) beginPasskeySettings(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) (string, error) {
	handle := []byte(ident.ID)
	var keys []webauthnKey
	if cfg, ok := webauthnConfigOf(ident, "passkey"); ok {
		if len(cfg.UserHandle) > 0 {
			handle = cfg.UserHandle
		}
		keys = cfg.Credentials
	}
	return e.beginPasskeyRegistration(r, f, e.schemas.Of(ident), handle, identity.TraitsOf(ident), keys)
}

func passkeySettingsNodes(e *Engine, r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if !e.canWebAuthn(r, f) {
		return
	}
	if cfg, ok := webauthnConfigOf(ident, "passkey"); ok {
		for _, k := range cfg.Credentials {
			n := node.Submit("passkey", "passkey_remove", hex.EncodeToString(k.ID), keyRemoveLabel(1050020, k))
			n.Input().Disabled = e.firstFactors(ident, k.ID) == 0
			f.UI.Nodes = append(f.UI.Nodes, n)
		}
	}
	data, err := e.beginPasskeySettings(r, f, ident)
	if err != nil {
		e.logger.Error("starting a passkey registration", zap.Error(err))
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Trigger("passkey", "passkey_register_trigger", "oryPasskeySettingsRegistration", "", node.Label(1050019, nil)),
		node.Input("passkey", "passkey_settings_register", "hidden", nil),
		node.Input("passkey", "passkey_create_data", "hidden", nil).Value(data))
	e.ensureWebAuthnScript(r, f)
}

func passkeySettingsUpdate(e *Engine, r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	body := st.Sub.Body
	register, remove := wire.BodyString(body, "passkey_settings_register"), wire.BodyString(body, "passkey_remove")
	if f.Type != "browser" || register == "" && remove == "" {
		notResponsible(f, 4010004)
		return flow.SettingsOutcome{Invalid: true}
	}
	if !e.sessions.Privileged(st.Session) {
		return flow.SettingsOutcome{Privileged: true}
	}
	if remove != "" {
		return e.removeKey(st, "passkey", remove)
	}
	fail := func(reason string) flow.SettingsOutcome {
		f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		f.UI.SetValue("passkey_settings_register", nil)
		if data, err := e.beginPasskeySettings(r, f, st.Identity); err == nil {
			f.UI.SetValue("passkey_create_data", data)
		}
		return flow.SettingsOutcome{Invalid: true, Privileged: true}
	}
	sd, err := e.takeCeremony(r.Context(), f, ceremonyPasskeyRegister)
	if err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to load the flow")}
	}
	if sd == nil || len(sd.UserID) == 0 {
		return fail("The passkey registration expired or was already completed. Please try again.")
	}
	cred, reason := e.createCredential(r, "passkey", sd, register)
	if cred == nil {
		return fail(reason)
	}
	now := e.now().UTC()
	if cfg, ok := webauthnConfigOf(st.Identity, "passkey"); ok && hasKey(cfg, cred.ID) {
		return fail("This passkey is already registered.")
	}
	return flow.SettingsOutcome{Privileged: true, Success: true, Apply: func(cur *sessionstore.Identity) error {
		cfg, _ := webauthnConfigOf(cur, "passkey")
		if cfg == nil {
			cfg = &webauthnConfig{}
		}
		if hasKey(cfg, cred.ID) {
			return &flow.SettingsRefused{Out: fail("This passkey is already registered.")}
		}
		cfg.UserHandle = sd.UserID
		cfg.Credentials = append(cfg.Credentials,
			keyFromLib(cred, e.passkeyDisplayName(e.schemas.Of(cur), identity.TraitsOf(cur), ""), now.Round(time.Second), true))
		c, had := cur.Credentials["passkey"]
		if !had {
			c = sessionstore.Credential{Type: "passkey", CreatedAt: now}
		}
		c.Identifiers, c.Config, c.UpdatedAt = []string{string(sd.UserID)}, identity.EncodeConfig(cfg), now
		identity.SetCredential(cur, "passkey", c)
		return nil
	}}
}

// In identifier-first login the first screen carries the passkey challenge
// (the browser offers passkeys in the identifier field), the second the
// passkey button for accounts that have one.
func passkeyIDFirst() *idFirstMethod {
	return &idFirstMethod{name: "passkey",
		offered: func(e *Engine, r *http.Request, f *flow.Flow) bool {
			return e.methodEnabled("passkey") && e.canWebAuthn(r, f)
		},
		has: func(_ *Engine, ident *sessionstore.Identity, _ string) bool {
			cfg, ok := webauthnConfigOf(ident, "passkey")
			return ok && len(cfg.Credentials) > 0
		},
		first:  func(e *Engine, r *http.Request, f *flow.Flow) { e.passkeyAutofillNodes(r, f) },
		second: func(e *Engine, r *http.Request, f *flow.Flow) { passkeyLoginNodes(e, r, f, nil) },
	}
}

package passkey

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/ceremony"
	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Flow Internal keys of pending ceremonies.
const (
	ceremonyRegister = "passkey_registration"
	ceremonyLogin    = "passkey_login"
)

// Method is the passkey method.
type Method struct {
	cfg      Config
	party    *ceremony.Party
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	schemas  *identity.Schemas
	logger   *zap.Logger
	now      func() time.Time
}

// Config is what the passkey method takes from the configuration.
type Config struct {
	// Enabled turns the method on (selfservice.methods.passkey.enabled).
	Enabled bool
	// UserVerification is asked of authenticators at sign-in (required,
	// preferred or discouraged).
	UserVerification string
}

// New returns the passkey method.
func New(cfg Config, party *ceremony.Party, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage,
	schemas *identity.Schemas, logger *zap.Logger, now func() time.Time) *Method {
	return &Method{cfg: cfg, party: party, kernel: k, sessions: sessions, store: store, schemas: schemas, logger: logger, now: now}
}

// ID is "passkey".
func (m *Method) ID() string { return "passkey" }

// Enabled reports whether the configuration turns the method on.
func (m *Method) Enabled() bool { return m.cfg.Enabled }

// FirstFactor is true.
func (m *Method) FirstFactor() bool { return true }

// SecondFactor is false: a passkey signs in on its own.
func (m *Method) SecondFactor() bool { return false }

// HasActive is false: passkeys are no second factor.
func (m *Method) HasActive(*sessionstore.Identity) bool { return false }

// In identifier-first login the first screen carries the passkey challenge
// (the browser offers passkeys in the identifier field), the second the
// passkey button for accounts that have one.

// Offered reports whether identifier-first login offers passkeys.
func (m *Method) Offered(_ *http.Request, f *flow.Flow) bool {
	return m.cfg.Enabled && ceremony.Usable(f)
}

// Has reports whether ident has a passkey.
func (m *Method) Has(ident *sessionstore.Identity, _ string) bool {
	cfg, ok := ceremony.KeysOf(ident, "passkey")
	return ok && len(cfg.Credentials) > 0
}

// FirstScreenNodes adds the discoverable-login challenge.
func (m *Method) FirstScreenNodes(_ *http.Request, f *flow.Flow) { m.autofillNodes(f) }

// SecondScreenNodes adds the passkey button.
func (m *Method) SecondScreenNodes(r *http.Request, f *flow.Flow) { m.LoginNodes(r, f, nil) }

// Fast is false.
func (m *Method) Fast() bool { return false }

// Interface guards.
var (
	_ flow.LoginMethod           = (*Method)(nil)
	_ flow.IdentifierFirstMethod = (*Method)(nil)
	_ flow.RegistrationMethod    = (*Method)(nil)
	_ flow.SettingsMethod        = (*Method)(nil)
)

// passkeyCreateData is the value of the passkey_create_data node that
// webauthn.js reads.
type passkeyCreateData struct {
	CredentialOptions    *protocol.CredentialCreation `json:"credentialOptions"`
	DisplayNameFieldName string                       `json:"displayNameFieldName,omitempty"`
}

// displayNameField is the trait whose value names the account in
// the authenticator: the one marked credentials.passkey.display_name, else
// the first identifier.
func displayNameField(sch *identity.Schema) string {
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

func displayName(sch *identity.Schema, traits map[string]any, fallback string) string {
	if field := displayNameField(sch); field != "" {
		if v, ok := identity.LookupPath(traits, strings.TrimPrefix(field, "traits.")); ok {
			if s, ok := v.(string); ok && s != "" {
				return s
			}
		}
	}
	return fallback
}

// beginRegistration starts a discoverable-credential registration
// on f for handle and returns the passkey_create_data JSON.
func (m *Method) beginRegistration(f *flow.Flow, sch *identity.Schema, handle []byte, traits map[string]any, keys []ceremony.Key) (string, error) {
	wa, err := m.party.WebAuthn(ceremony.KindPasskey)
	if err != nil {
		return "", err
	}
	name := ceremony.UserName(sch, traits, "")
	user := &ceremony.User{Handle: handle, Name: name, Display: displayName(sch, traits, name), Keys: keys}
	creation, sd, err := wa.BeginRegistration(user, webauthn.WithExclusions(ceremony.Descriptors(keys)))
	if err != nil {
		return "", err
	}
	ceremony.Store(f, ceremonyRegister, sd)
	return ceremony.OptionsJSON(passkeyCreateData{CredentialOptions: creation, DisplayNameFieldName: displayNameField(sch)}), nil
}

// --- registration ---

// RegistrationNodes adds the create-a-passkey trigger and its options.
func (m *Method) RegistrationNodes(_ *http.Request, f *flow.Flow, traits map[string]any) {
	if !ceremony.Usable(f) {
		return
	}
	data, err := m.beginRegistration(f, m.kernel.FlowSchema(f), []byte(token.RandomString(64, token.Alnum)), traits, nil)
	if err != nil {
		m.logger.Error("starting a passkey registration", zap.Error(err))
		return
	}
	m.createNodes(f, data, "oryPasskeyRegistration", "passkey_register", 1040007)
}

// Register checks the new passkey's attestation against the flow's
// pending ceremony (taken once) and hands the credential to the flow.
func (m *Method) Register(r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome {
	f := st.Sub.Flow
	if f.Type != "browser" {
		ceremony.NotResponsible(f, 4010003)
		return flow.RegistrationOutcome{Invalid: true}
	}
	resp := wire.BodyString(st.Sub.Body, "passkey_register")
	fail := func(reason string) flow.RegistrationOutcome {
		f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		f.UI.SetValue("passkey_register", nil)
		if data, err := m.beginRegistration(f, m.kernel.FlowSchema(f), []byte(token.RandomString(64, token.Alnum)), st.Traits, nil); err == nil {
			f.UI.SetValue("passkey_create_data", data)
		}
		return flow.RegistrationOutcome{Invalid: true}
	}
	sd, err := m.party.Take(r.Context(), f, ceremonyRegister)
	if err != nil {
		return flow.RegistrationOutcome{Err: wire.StoreError(err, "unable to load the flow")}
	}
	if resp == "" {
		if sd != nil {
			ceremony.Store(f, ceremonyRegister, sd) // nothing was tried
		}
		f.UI.AddNodeMessage("passkey_register", node.NewText(4000002, map[string]any{"property": "passkey_register"}, "passkey_register"))
		return flow.RegistrationOutcome{Invalid: true}
	}
	if sd == nil || len(sd.UserID) == 0 {
		return fail("The passkey registration expired or was already completed. Please try again.")
	}
	cred, reason := m.party.CreateCredential(ceremony.KindPasskey, sd, resp)
	if cred == nil {
		return fail(reason)
	}
	now := m.now().UTC()
	cfg := ceremony.Keys{UserHandle: sd.UserID,
		Credentials: []ceremony.Key{ceremony.KeyFromLib(cred, displayName(m.kernel.FlowSchema(f), st.Traits, ""), now.Round(time.Second), true)}}
	return flow.RegistrationOutcome{Creds: map[string]sessionstore.Credential{
		"passkey": {Type: "passkey", Identifiers: []string{string(sd.UserID)}, Config: identity.EncodeConfig(cfg), CreatedAt: now, UpdatedAt: now},
	}}
}

// --- login ---

func (m *Method) beginLogin(f *flow.Flow) (string, error) {
	wa, err := m.party.WebAuthn(ceremony.KindPasskey)
	if err != nil {
		return "", err
	}
	assertion, sd, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.UserVerificationRequirement(m.cfg.UserVerification)))
	if err != nil {
		return "", err
	}
	ceremony.Store(f, ceremonyLogin, sd)
	return ceremony.OptionsJSON(assertion), nil
}

// LoginNodes adds the passkey sign-in trigger and the discoverable
// challenge.
func (m *Method) LoginNodes(_ *http.Request, f *flow.Flow, _ *sessionstore.Identity) {
	if !m.autofillNodes(f) {
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Trigger("passkey", "passkey_login_trigger", "oryPasskeyLogin", "", node.Label(1010021, nil)).Value(""))
}

// autofillNodes appends a discoverable-login challenge, the script
// and the hidden passkey_login input that offers passkeys in the
// identifier field (Kratos's populateLoginMethodForPasskeys). It reports
// whether it did.
func (m *Method) autofillNodes(f *flow.Flow) bool {
	if !ceremony.Usable(f) || f.Refresh || f.RequestedAAL == "aal2" {
		return false
	}
	opts, err := m.beginLogin(f)
	if err != nil {
		m.logger.Error("starting a passkey login", zap.Error(err))
		return false
	}
	if n := f.UI.Find("identifier"); n != nil && n.Input().Type != "hidden" {
		n.Input().Autocomplete = "username webauthn"
	} else if n == nil {
		// Without the password method no one else brought the identifier
		// (Kratos's passkey strategy renders it for autofill).
		f.UI.InsertAfterCSRF(node.Input("default", "identifier", "text", m.schemas.Default().AnyIdentifierLabel()).
			Value("").Required().Autocomplete("username webauthn"))
	}
	login := node.Input("passkey", "passkey_login", "hidden", nil)
	login.Input().OnLoad = "window.oryPasskeyLoginAutocompleteInit()"
	login.Input().OnLoadTrigger = "oryPasskeyLoginAutocompleteInit"
	f.UI.Nodes = append(f.UI.Nodes, node.Input("passkey", "passkey_challenge", "hidden", nil).Value(opts))
	m.party.EnsureScript(f)
	f.UI.Nodes = append(f.UI.Nodes, login)
	return true
}

var errNoPasskey = errors.New("no passkey for this user handle")

// Login checks a discoverable assertion and finds the identity by the
// user handle the authenticator returns.
func (m *Method) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	if f.Type != "browser" {
		ceremony.NotResponsible(f, 4010002)
		return nil, nil
	}
	ctx := r.Context()
	fail := func() (*sessionstore.Identity, *wire.Error) {
		f.UI.Messages = []node.Text{node.NewText(4000043, nil)}
		f.UI.SetValue("passkey_login", nil)
		if opts, err := m.beginLogin(f); err == nil {
			f.UI.SetValue("passkey_challenge", opts)
		}
		return nil, nil
	}
	resp := wire.BodyString(st.Sub.Body, "passkey_login")
	if resp == "" {
		f.UI.AddNodeMessage("passkey_login", node.NewText(4000002, map[string]any{"property": "passkey_login"}, "passkey_login"))
		return nil, nil
	}
	sd, err := m.party.Take(ctx, f, ceremonyLogin)
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
	wa, err := m.party.WebAuthn(ceremony.KindPasskey)
	if err != nil {
		return nil, wire.StoreError(err, "unable to configure WebAuthn")
	}
	var ident *sessionstore.Identity
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		id, err := m.store.FindIdentityByCredential(ctx, "passkey", string(userHandle))
		if err != nil {
			return nil, errNoPasskey
		}
		cfg, ok := ceremony.KeysOf(id, "passkey")
		if !ok {
			return nil, errNoPasskey
		}
		ident = id
		return &ceremony.User{Handle: cfg.UserHandle, Keys: cfg.Credentials}, nil
	}
	_, cred, err := wa.ValidatePasskeyLogin(handler, *sd, parsed)
	if err != nil || ident == nil {
		m.logger.Debug("passkey assertion refused", zap.Error(err))
		return fail()
	}
	if cred.Authenticator.CloneWarning {
		m.logger.Warn("passkey sign counter went backwards; refusing the key")
		return fail()
	}
	up, err := m.party.RecordUse(ctx, ident.ID, "passkey", cred)
	if err != nil {
		return nil, wire.StoreError(err, "unable to store the identity")
	}
	return up, nil
}

// --- settings ---

func (m *Method) beginSettings(f *flow.Flow, ident *sessionstore.Identity) (string, error) {
	handle := []byte(ident.ID)
	var keys []ceremony.Key
	if cfg, ok := ceremony.KeysOf(ident, "passkey"); ok {
		if len(cfg.UserHandle) > 0 {
			handle = cfg.UserHandle
		}
		keys = cfg.Credentials
	}
	return m.beginRegistration(f, m.schemas.Of(ident), handle, identity.TraitsOf(ident), keys)
}

// SettingsNodes adds a remove button per passkey and the add trigger.
func (m *Method) SettingsNodes(_ *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if !ceremony.Usable(f) {
		return
	}
	m.party.RemoveNodes(f, ident, "passkey", 1050020)
	data, err := m.beginSettings(f, ident)
	if err != nil {
		m.logger.Error("starting a passkey registration", zap.Error(err))
		return
	}
	m.createNodes(f, data, "oryPasskeySettingsRegistration", "passkey_settings_register", 1050019)
}

// UpdateSettings adds or removes a passkey (in a privileged session).
func (m *Method) UpdateSettings(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	body := st.Sub.Body
	register, remove := wire.BodyString(body, "passkey_settings_register"), wire.BodyString(body, "passkey_remove")
	if f.Type != "browser" || register == "" && remove == "" {
		ceremony.NotResponsible(f, 4010004)
		return flow.SettingsOutcome{Invalid: true}
	}
	if !m.sessions.Privileged(st.Session) {
		return flow.SettingsOutcome{Privileged: true}
	}
	if remove != "" {
		return m.party.RemoveKey(st, "passkey", remove)
	}
	fail := func(reason string) flow.SettingsOutcome {
		f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		f.UI.SetValue("passkey_settings_register", nil)
		if data, err := m.beginSettings(f, st.Identity); err == nil {
			f.UI.SetValue("passkey_create_data", data)
		}
		return flow.SettingsOutcome{Invalid: true, Privileged: true}
	}
	sd, err := m.party.Take(r.Context(), f, ceremonyRegister)
	if err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to load the flow")}
	}
	if sd == nil || len(sd.UserID) == 0 {
		return fail("The passkey registration expired or was already completed. Please try again.")
	}
	cred, reason := m.party.CreateCredential(ceremony.KindPasskey, sd, register)
	if cred == nil {
		return fail(reason)
	}
	now := m.now().UTC()
	if cfg, ok := ceremony.KeysOf(st.Identity, "passkey"); ok && ceremony.HasKey(cfg, cred.ID) {
		return fail("This passkey is already registered.")
	}
	return flow.SettingsOutcome{Privileged: true, Success: true, Apply: func(cur *sessionstore.Identity) error {
		cfg, _ := ceremony.KeysOf(cur, "passkey")
		if cfg == nil {
			cfg = &ceremony.Keys{}
		}
		if ceremony.HasKey(cfg, cred.ID) {
			return &flow.SettingsRefused{Out: fail("This passkey is already registered.")}
		}
		cfg.UserHandle = sd.UserID
		cfg.Credentials = append(cfg.Credentials,
			ceremony.KeyFromLib(cred, displayName(m.schemas.Of(cur), identity.TraitsOf(cur), ""), now.Round(time.Second), true))
		c, had := cur.Credentials["passkey"]
		if !had {
			c = sessionstore.Credential{Type: "passkey", CreatedAt: now}
		}
		c.Identifiers, c.Config, c.UpdatedAt = []string{string(sd.UserID)}, identity.EncodeConfig(cfg), now
		identity.SetCredential(cur, "passkey", c)
		return nil
	}}
}

// createNodes adds what webauthn.js needs to create a passkey: the
// trigger (its script function and label), the hidden input the result
// goes to, the creation options, and the script.
func (m *Method) createNodes(f *flow.Flow, data, trigger, input string, label int) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Trigger("passkey", "passkey_register_trigger", trigger, "", node.Label(label, nil)),
		node.Input("passkey", input, "hidden", nil),
		node.Input("passkey", "passkey_create_data", "hidden", nil).Value(data))
	m.party.EnsureScript(f)
}

package webauthn

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
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
	ceremonyRegister = "webauthn_registration"
	ceremonyLogin    = "webauthn_login"
	ceremonyIdentity = "webauthn_login_identity"
)

// Method is the webauthn method.
type Method struct {
	cfg      Config
	party    *ceremony.Party
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	schemas  *identity.Schemas
	logger   *zap.Logger
	now      func() time.Time
	// decoyKey derives the made-up keys of unknown identifiers.
	decoyKey []byte
}

// Config is what the webauthn method takes from the configuration.
type Config struct {
	// Enabled turns the method on (selfservice.methods.webauthn.enabled).
	Enabled bool
	// Passwordless makes security keys a first factor instead of a second
	// one (webauthn.config.passwordless).
	Passwordless bool
	// MitigateAccountEnumeration answers unknown identifiers with the
	// options of a made-up key.
	MitigateAccountEnumeration bool
}

// New returns the webauthn method. secret keys the made-up keys of
// account enumeration mitigation.
func New(cfg Config, party *ceremony.Party, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage,
	schemas *identity.Schemas, logger *zap.Logger, now func() time.Time, secret []byte) *Method {
	return &Method{cfg: cfg, party: party, kernel: k, sessions: sessions, store: store, schemas: schemas, logger: logger, now: now,
		decoyKey: token.PurposeKey(secret, "webauthn-decoy")}
}

// ID is "webauthn".
func (m *Method) ID() string { return "webauthn" }

// Enabled reports whether the configuration turns the method on.
func (m *Method) Enabled() bool { return m.cfg.Enabled }

// FirstFactor is true: passwordless keys sign in.
func (m *Method) FirstFactor() bool { return true }

// SecondFactor is true: second-factor keys complete aal2.
func (m *Method) SecondFactor() bool { return true }

// LoginNodes adds the passwordless sign-in button (aal1) or the assertion
// of the identity's second-factor keys (aal2).
func (m *Method) LoginNodes(_ *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if f.RequestedAAL == "aal2" {
		m.mfaNodes(f, ident)
		return
	}
	m.passwordlessNodes(f)
}

// Login checks a passwordless sign-in (aal1) or a second factor (aal2).
func (m *Method) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	if st.Sub.Flow.RequestedAAL == "aal2" {
		return m.mfaVerify(r, st)
	}
	return m.passwordlessVerify(r, st)
}

// In identifier-first login, accounts with a passwordless security key get
// its button on the second screen; pressing it asks for the key's
// challenge (passwordlessVerify).

// Offered reports whether identifier-first login offers security keys.
func (m *Method) Offered(_ *http.Request, f *flow.Flow) bool {
	return m.cfg.Passwordless && m.cfg.Enabled && ceremony.Usable(f)
}

// Has reports whether ident has a passwordless key for identifier.
func (m *Method) Has(ident *sessionstore.Identity, identifier string) bool {
	cfg, ok := ceremony.KeysOf(ident, "webauthn")
	return ok && len(ceremony.PasswordlessKeys(cfg)) > 0 && identity.HasIdentifier(ident, "webauthn", identifier)
}

// FirstScreenNodes lets browsers offer security keys in the identifier
// field.
func (m *Method) FirstScreenNodes(_ *http.Request, f *flow.Flow) {
	if n := f.UI.Find("identifier"); n != nil {
		n.Input().Autocomplete = "username webauthn"
	}
}

// SecondScreenNodes adds the security key button.
func (m *Method) SecondScreenNodes(_ *http.Request, f *flow.Flow) {
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("webauthn", "method", "webauthn", node.Label(1010008, nil)))
}

// Fast is false.
func (m *Method) Fast() bool { return false }

// Interface guards.
var (
	_ flow.LoginMethod           = (*Method)(nil)
	_ flow.IdentifierFirstMethod = (*Method)(nil)
	_ flow.RegistrationMethod    = (*Method)(nil)
	_ flow.SettingsMethod        = (*Method)(nil)
)

// DropPasswordlessKeys removes the passwordless security keys of ident
// (a mailbox sign-in claiming its address: claimAddress); second-factor
// keys stay.
func DropPasswordlessKeys(ident *sessionstore.Identity, now time.Time) error {
	c, ok := ident.Credentials["webauthn"]
	if !ok {
		return nil
	}
	var cfg ceremony.Keys
	if err := identity.DecodeConfig(c.Config, &cfg); err != nil {
		return fmt.Errorf("webauthn credential: %w", err)
	}
	kept := cfg.Credentials[:0:0]
	for _, k := range cfg.Credentials {
		if !k.IsPasswordless {
			kept = append(kept, k)
		}
	}
	if len(kept) == 0 {
		delete(ident.Credentials, "webauthn")
	} else if len(kept) != len(cfg.Credentials) {
		cfg.Credentials = kept
		c.Config, c.UpdatedAt = identity.EncodeConfig(cfg), now
		ident.Credentials["webauthn"] = c
	}
	return nil
}

// identifiers are the credential identifiers of a webauthn
// credential: the traits marked for webauthn (or password), else the id.
func (m *Method) identifiers(ident *sessionstore.Identity) []string {
	traits, sch := identity.TraitsOf(ident), m.schemas.Of(ident)
	if ids := sch.Identifiers(traits, "webauthn"); len(ids) > 0 {
		return ids
	}
	if ids := sch.Identifiers(traits, "password"); len(ids) > 0 {
		return ids
	}
	return []string{ident.ID}
}

// --- settings ---

// SettingsNodes adds a remove button per security key and the add
// trigger.
func (m *Method) SettingsNodes(_ *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if !ceremony.Usable(f) {
		return
	}
	m.party.RemoveNodes(f, ident, "webauthn", 1050018)
	opts, err := m.beginRegistration(f, ident)
	if err != nil {
		m.logger.Error("starting a WebAuthn registration", zap.Error(err))
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("webauthn", "webauthn_register_displayname", "text", node.Label(1050013, nil)).Value(""),
		node.Trigger("webauthn", "webauthn_register_trigger", "oryWebAuthnRegistration", opts, node.Label(1050012, nil)),
		node.Input("webauthn", "webauthn_register", "hidden", nil).Value(""))
	m.party.EnsureScript(f)
}

// beginRegistration starts a security-key registration for ident
// on f and returns the creation options JSON.
func (m *Method) beginRegistration(f *flow.Flow, ident *sessionstore.Identity) (string, error) {
	kind := "webauthn"
	if m.cfg.Passwordless {
		kind = "passwordless"
	}
	wa, err := m.party.WebAuthn(kind)
	if err != nil {
		return "", err
	}
	cfg, _ := ceremony.KeysOf(ident, "webauthn")
	handle := []byte(ident.ID)
	var keys []ceremony.Key
	if cfg != nil {
		if len(cfg.UserHandle) > 0 {
			handle = cfg.UserHandle
		}
		keys = cfg.Credentials
	}
	user := &ceremony.User{Handle: handle, Name: ceremony.UserName(m.schemas.Of(ident), identity.TraitsOf(ident), ident.ID), Keys: keys}
	creation, sd, err := wa.BeginRegistration(user, webauthn.WithExclusions(ceremony.Descriptors(keys)))
	if err != nil {
		return "", err
	}
	ceremony.Store(f, ceremonyRegister, sd)
	return ceremony.OptionsJSON(creation), nil
}

// UpdateSettings adds or removes a security key (in a privileged
// session).
func (m *Method) UpdateSettings(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	body := st.Sub.Body
	register, remove := wire.BodyString(body, "webauthn_register"), wire.BodyString(body, "webauthn_remove")
	if f.Type != "browser" || register == "" && remove == "" {
		ceremony.NotResponsible(f, 4010004)
		return flow.SettingsOutcome{Invalid: true}
	}
	if !m.sessions.Privileged(st.Session) {
		return flow.SettingsOutcome{Privileged: true}
	}
	if remove != "" {
		return m.party.RemoveKey(st, "webauthn", remove)
	}
	fail := func(reason string) flow.SettingsOutcome {
		f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		if opts, err := m.beginRegistration(f, st.Identity); err == nil {
			f.UI.SetTrigger("webauthn_register_trigger", "oryWebAuthnRegistration", opts)
		}
		f.UI.SetValue("webauthn_register", "")
		return flow.SettingsOutcome{Invalid: true, Privileged: true}
	}
	sd, err := m.party.Take(r.Context(), f, ceremonyRegister)
	if err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to load the flow")}
	}
	if sd == nil {
		return fail("The security key registration expired or was already completed. Please try again.")
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(register))
	if err != nil {
		return fail("Unable to parse WebAuthn response: " + ceremony.ProtocolReason(err))
	}
	kind := "webauthn"
	if m.cfg.Passwordless {
		kind = "passwordless"
	}
	wa, err := m.party.WebAuthn(kind)
	if err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to configure WebAuthn")}
	}
	cred, err := wa.CreateCredential(&ceremony.User{Handle: sd.UserID}, *sd, parsed)
	if err != nil {
		return fail("Unable to create WebAuthn credential: " + ceremony.ProtocolReason(err))
	}
	now := m.now().UTC()
	if cfg, ok := ceremony.KeysOf(st.Identity, "webauthn"); ok && ceremony.HasKey(cfg, cred.ID) {
		return fail("This security key is already registered.")
	}
	name := strings.TrimSpace(wire.BodyString(body, "webauthn_register_displayname"))
	key := ceremony.KeyFromLib(cred, name, now.Round(time.Second), m.cfg.Passwordless)
	apply := func(cur *sessionstore.Identity) error {
		cfg, _ := ceremony.KeysOf(cur, "webauthn")
		if cfg == nil {
			cfg = &ceremony.Keys{}
		}
		if ceremony.HasKey(cfg, cred.ID) {
			return &flow.SettingsRefused{Out: fail("This security key is already registered.")}
		}
		cfg.UserHandle = sd.UserID
		cfg.Credentials = append(cfg.Credentials, key)
		c, had := cur.Credentials["webauthn"]
		if !had {
			c = sessionstore.Credential{Type: "webauthn", CreatedAt: now}
		}
		c.Identifiers, c.Config, c.UpdatedAt = m.identifiers(cur), identity.EncodeConfig(cfg), now
		identity.SetCredential(cur, "webauthn", c)
		return nil
	}
	aal := "aal2"
	if m.cfg.Passwordless {
		aal = "aal1"
	}
	return flow.SettingsOutcome{Apply: apply, Privileged: true, Success: true, After: func(*flow.Flow) {
		// Registering a key proves it, as signing in with it would.
		m.kernel.RecordLinkedMethod(r, st, "webauthn", aal)
	}}
}

// beginLogin starts an assertion for keys on f and returns the
// options JSON.
func (m *Method) beginLogin(f *flow.Flow, kind string, handle []byte, keys []ceremony.Key) (string, error) {
	wa, err := m.party.WebAuthn(kind)
	if err != nil {
		return "", err
	}
	assertion, sd, err := wa.BeginLogin(&ceremony.User{Handle: handle, Keys: keys})
	if err != nil {
		return "", err
	}
	ceremony.Store(f, ceremonyLogin, sd)
	return ceremony.OptionsJSON(assertion), nil
}

// assertionNodes renders the assertion step: hidden identifier, the
// trigger with the options, the hidden result input and the script.
func (m *Method) assertionNodes(f *flow.Flow, identifier, opts string, label *node.Text) {
	if n := f.UI.Find("identifier"); n != nil {
		n.Input().Type, n.Input().Value, n.Input().Required = "hidden", identifier, false
		n.Meta.Label = nil
	} else {
		f.UI.InsertAfterCSRF(node.Input("default", "identifier", "hidden", nil).Value(identifier))
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Trigger("webauthn", "webauthn_login_trigger", "oryWebAuthnLogin", opts, label),
		node.Input("webauthn", "webauthn_login", "hidden", nil).Value(""))
	m.party.EnsureScript(f)
}

func (m *Method) mfaNodes(f *flow.Flow, ident *sessionstore.Identity) {
	if m.cfg.Passwordless || !ceremony.Usable(f) {
		return
	}
	cfg, ok := ceremony.KeysOf(ident, "webauthn")
	if !ok {
		return
	}
	keys := ceremony.MFAKeys(cfg)
	if len(keys) == 0 {
		return
	}
	opts, err := m.beginLogin(f, "webauthn", cfg.UserHandle, keys)
	if err != nil {
		m.logger.Error("starting a WebAuthn login", zap.Error(err))
		return
	}
	identifier := ident.ID
	if c := ident.Credentials["webauthn"]; len(c.Identifiers) > 0 {
		identifier = c.Identifiers[0]
	}
	m.assertionNodes(f, identifier, opts, node.Label(1010008, nil))
}

// verifyAssertion checks the submitted webauthn_login of f against the
// flow's pending challenge and ident's keys. On success it stores the
// key's new sign count and returns the updated identity; on failure it
// puts 4000043 on the flow and issues a new challenge.
func (m *Method) verifyAssertion(r *http.Request, f *flow.Flow, body map[string]any, ident *sessionstore.Identity, kind string, keys func(*ceremony.Keys) []ceremony.Key) (*sessionstore.Identity, *wire.Error) {
	ctx := r.Context()
	cfg, ok := ceremony.KeysOf(ident, "webauthn")
	fail := func() (*sessionstore.Identity, *wire.Error) {
		f.UI.Messages = []node.Text{node.NewText(4000043, nil)}
		f.UI.SetValue("webauthn_login", "")
		if ok {
			if opts, err := m.beginLogin(f, kind, cfg.UserHandle, keys(cfg)); err == nil {
				f.UI.SetTrigger("webauthn_login_trigger", "oryWebAuthnLogin", opts)
			}
		}
		return nil, nil
	}
	sd, err := m.party.Take(ctx, f, ceremonyLogin)
	if err != nil {
		return nil, wire.StoreError(err, "unable to load the flow")
	}
	if !ok || len(keys(cfg)) == 0 {
		f.UI.Messages = []node.Text{node.NewText(4000013, nil)}
		return nil, nil
	}
	resp := wire.BodyString(body, "webauthn_login")
	if sd == nil || resp == "" {
		return fail()
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(resp))
	if err != nil {
		return fail()
	}
	wa, err := m.party.WebAuthn(kind)
	if err != nil {
		return nil, wire.StoreError(err, "unable to configure WebAuthn")
	}
	cred, err := wa.ValidateLogin(&ceremony.User{Handle: cfg.UserHandle, Keys: keys(cfg)}, *sd, parsed)
	if err != nil {
		m.logger.Debug("WebAuthn assertion refused", zap.Error(err))
		return fail()
	}
	if cred.Authenticator.CloneWarning {
		// The signature counter did not move forward: the key may have
		// been cloned.
		m.logger.Warn("WebAuthn sign counter went backwards; refusing the key")
		return fail()
	}
	up, err := m.party.RecordUse(ctx, ident.ID, "webauthn", cred)
	if err != nil {
		return nil, wire.StoreError(err, "unable to store the identity")
	}
	return up, nil
}

// HasActive: a key registered as second factor (keys registered
// for passwordless sign-in are a first factor).
func (m *Method) HasActive(ident *sessionstore.Identity) bool {
	cfg, ok := ceremony.KeysOf(ident, "webauthn")
	if !ok {
		return false
	}
	for _, k := range cfg.Credentials {
		if !k.IsPasswordless {
			return true
		}
	}
	return false
}

func (m *Method) mfaVerify(r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	if f.Type != "browser" || m.cfg.Passwordless {
		ceremony.NotResponsible(f, 4010002)
		return nil, nil
	}
	return m.verifyAssertion(r, f, st.Sub.Body, st.Identity, "webauthn", ceremony.MFAKeys)
}

// --- login: passwordless (first factor) ---

func (m *Method) passwordlessNodes(f *flow.Flow) {
	if !m.cfg.Passwordless || !ceremony.Usable(f) || f.Refresh {
		return
	}
	if n := f.UI.Find("identifier"); n != nil {
		n.Input().Autocomplete = "username webauthn"
	} else {
		f.UI.InsertAfterCSRF(node.Input("default", "identifier", "text", m.schemas.Default().IdentifierLabel("webauthn")).
			Value("").Required().Autocomplete("username webauthn"))
	}
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("webauthn", "method", "webauthn", node.Label(1010008, nil)))
}

func (m *Method) passwordlessVerify(r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	if !m.cfg.Passwordless || f.Type != "browser" {
		ceremony.NotResponsible(f, 4010002)
		return nil, nil
	}
	ctx := r.Context()
	if wire.BodyString(st.Sub.Body, "webauthn_login") == "" {
		// Step one: the identifier names the account whose keys to ask for.
		identifier := identity.NormalizeIdentifier(wire.BodyString(st.Sub.Body, "identifier"))
		if identifier == "" {
			f.UI.AddNodeMessage("identifier", node.NewText(4000002, map[string]any{"property": "identifier"}, "identifier"))
			return nil, nil
		}
		ident, err := m.store.FindIdentityByCredential(ctx, "webauthn", identifier)
		var keys []ceremony.Key
		var cfg *ceremony.Keys
		if err == nil {
			if c, ok := ceremony.KeysOf(ident, "webauthn"); ok {
				cfg, keys = c, ceremony.PasswordlessKeys(c)
			}
		}
		if len(keys) == 0 && m.cfg.MitigateAccountEnumeration {
			// No account, or no key: the options of a made-up key, the
			// same ones each time for this identifier.
			ident = m.DecoyIdentity(identifier)
			cfg, _ = ceremony.KeysOf(ident, "webauthn")
			keys = ceremony.PasswordlessKeys(cfg)
		}
		if len(keys) == 0 {
			f.UI.Messages = []node.Text{node.NewText(4000015, nil)}
			return nil, nil
		}
		opts, err := m.beginLogin(f, "passwordless", cfg.UserHandle, keys)
		if err != nil {
			return nil, wire.StoreError(err, "unable to start the WebAuthn login")
		}
		f.Internals()[ceremonyIdentity] = ident.ID
		if ident.ID == "" {
			f.Internals()[ceremonyDecoy] = identifier
		} else {
			delete(f.Internal, ceremonyDecoy)
		}
		csrf := ""
		if n := f.UI.Find("csrf_token"); n != nil {
			csrf, _ = n.Input().Value.(string)
		}
		f.UI.Nodes = []*node.Node{node.CSRF(csrf)}
		m.assertionNodes(f, identifier, opts, node.Label(1010011, nil))
		f.UI.Messages = []node.Text{node.NewText(1010012, nil)}
		return nil, nil
	}
	id := f.InternalString(ceremonyIdentity)
	if decoy := f.InternalString(ceremonyDecoy); id == "" && decoy != "" && m.cfg.MitigateAccountEnumeration {
		// Made-up options: the same checks as for an account, which the
		// key without a public key always fails (4000043, new options).
		if _, ferr := m.verifyAssertion(r, f, st.Sub.Body, m.DecoyIdentity(decoy), "passwordless", ceremony.PasswordlessKeys); ferr != nil {
			return nil, ferr
		}
		f.UI.Messages = []node.Text{node.NewText(4000043, nil)}
		return nil, nil
	}
	ident, err := m.store.GetIdentity(ctx, id)
	if id == "" || err != nil {
		f.UI.Messages = []node.Text{node.NewText(4000015, nil)}
		return nil, nil
	}
	return m.verifyAssertion(r, f, st.Sub.Body, ident, "passwordless", ceremony.PasswordlessKeys)
}

// beginSignUp starts a security-key registration for a new
// identity (a random user handle: the identity id does not exist yet) and
// returns the creation options JSON.
func (m *Method) beginSignUp(f *flow.Flow, traits map[string]any) (string, error) {
	wa, err := m.party.WebAuthn("passwordless")
	if err != nil {
		return "", err
	}
	name := ceremony.UserName(m.kernel.FlowSchema(f), traits, "")
	creation, sd, err := wa.BeginRegistration(&ceremony.User{Handle: token.RandomBytes(16), Name: name})
	if err != nil {
		return "", err
	}
	ceremony.Store(f, ceremonyRegister, sd)
	return ceremony.OptionsJSON(creation), nil
}

// RegistrationNodes adds the sign-up-with-a-security-key trigger
// (webauthn { passwordless } only).
func (m *Method) RegistrationNodes(_ *http.Request, f *flow.Flow, traits map[string]any) {
	if !m.cfg.Passwordless || !ceremony.Usable(f) {
		return
	}
	opts, err := m.beginSignUp(f, traits)
	if err != nil {
		m.logger.Error("starting a WebAuthn sign-up", zap.Error(err))
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("webauthn", "webauthn_register_displayname", "text", node.Label(1050013, nil)).Value(""),
		node.Input("webauthn", "webauthn_register", "hidden", nil).Value(""),
		node.Trigger("webauthn", "webauthn_register_trigger", "oryWebAuthnRegistration", opts, node.Label(1040004, nil)))
	m.party.EnsureScript(f)
}

// Register checks the new key's attestation against the flow's pending
// ceremony (taken once) and hands the passwordless key to the flow.
func (m *Method) Register(r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome {
	f := st.Sub.Flow
	body := st.Sub.Body
	resp := wire.BodyString(body, "webauthn_register")
	if !m.cfg.Passwordless || f.Type != "browser" || resp == "" {
		// Kratos's webauthn strategy is not responsible then.
		ceremony.NotResponsible(f, 4010003)
		return flow.RegistrationOutcome{Invalid: true}
	}
	name := strings.TrimSpace(wire.BodyString(body, "webauthn_register_displayname"))
	f.UI.SetValue("webauthn_register_displayname", name)
	fail := func(reason string) flow.RegistrationOutcome {
		f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		f.UI.SetValue("webauthn_register", "")
		if opts, err := m.beginSignUp(f, st.Traits); err == nil {
			f.UI.SetTrigger("webauthn_register_trigger", "oryWebAuthnRegistration", opts)
		}
		return flow.RegistrationOutcome{Invalid: true}
	}
	// The identifiers passwordless sign-in looks the key up by, as in
	// settings (webauthnIdentifiers).
	sch := m.kernel.FlowSchema(f)
	identifiers := sch.Identifiers(st.Traits, "webauthn")
	if len(identifiers) == 0 {
		identifiers = sch.Identifiers(st.Traits, "password")
	}
	if len(identifiers) == 0 {
		f.UI.Messages = []node.Text{node.NewText(4000009, nil)}
		return flow.RegistrationOutcome{Invalid: true}
	}
	sd, err := m.party.Take(r.Context(), f, ceremonyRegister)
	if err != nil {
		return flow.RegistrationOutcome{Err: wire.StoreError(err, "unable to load the flow")}
	}
	if sd == nil || len(sd.UserID) == 0 {
		return fail("The security key registration expired or was already completed. Please try again.")
	}
	cred, reason := m.party.CreateCredential("passwordless", sd, resp)
	if cred == nil {
		return fail(reason)
	}
	now := m.now().UTC()
	cfg := ceremony.Keys{UserHandle: sd.UserID,
		Credentials: []ceremony.Key{ceremony.KeyFromLib(cred, name, now.Round(time.Second), true)}}
	return flow.RegistrationOutcome{Creds: map[string]sessionstore.Credential{
		"webauthn": {Type: "webauthn", Identifiers: identifiers, Config: identity.EncodeConfig(cfg), CreatedAt: now, UpdatedAt: now},
	}}
}

// ceremonyDecoy keeps, on a flow whose WebAuthn options were made up, the
// identifier they were made for.
const ceremonyDecoy = "webauthn_login_decoy"

// DecoyIdentity is an identity that exists only in memory, with
// one passwordless security key whose id, length and transports are
// derived from a server secret and the normalized identifier. Its
// assertion options look like an account's and are the same each time;
// it has no public key, so no assertion ever passes.
func (m *Method) DecoyIdentity(identifier string) *sessionstore.Identity {
	mac := hmac.New(sha256.New, m.decoyKey)
	mac.Write([]byte(identity.NormalizeIdentifier(identifier)))
	seed := mac.Sum(nil)
	expand := func(label string, n int) []byte {
		var out []byte
		for i := byte(0); len(out) < n; i++ {
			x := hmac.New(sha256.New, seed)
			x.Write([]byte(label))
			x.Write([]byte{i})
			out = x.Sum(out)
		}
		return out[:n]
	}
	// Credential ids of common authenticators, and what browsers report
	// as their transports.
	lengths := []int{16, 32, 48, 64}
	transports := [][]string{{"usb"}, {"nfc", "usb"}, {"internal"}, {"hybrid", "internal"}}
	key := ceremony.Key{ID: expand("id", lengths[int(seed[0])%len(lengths)]),
		Transports: transports[int(seed[1])%len(transports)], IsPasswordless: true}
	cfg := ceremony.Keys{UserHandle: expand("handle", 36), Credentials: []ceremony.Key{key}}
	return &sessionstore.Identity{Credentials: map[string]sessionstore.Credential{
		"webauthn": {Type: "webauthn", Config: identity.EncodeConfig(cfg)}}}
}

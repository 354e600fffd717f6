package flows

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha512"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The webauthn method: security keys as a second factor (default) or, with
// Config.WebAuthnPasswordless, as a first factor. Browser flows only, as
// in Kratos (native apps get no webauthn nodes and their submits find no
// strategy).
//
// The ceremony state (go-webauthn's SessionData with the challenge) is kept
// on the flow (Internal) and taken out atomically when a response is
// checked, so every challenge is answered at most once: a replayed
// response, or one made for another flow's challenge, fails. A new
// challenge is issued with the re-rendered form.
//
// Credential "webauthn": config {user_handle, credentials: [...]} with per
// key id, public key, sign count, AAGUID, transports, flags, display name,
// added_at and whether it is passwordless. A sign counter that does not
// move forward (go-webauthn's CloneWarning) fails the sign-in.

// Flow Internal keys of pending ceremonies.
const (
	ceremonyWebAuthnRegister = "webauthn_registration"
	ceremonyWebAuthnLogin    = "webauthn_login"
	ceremonyIdentity         = "webauthn_login_identity"
)

// webauthnConfig is the config of a "webauthn" or "passkey" credential.
type webauthnConfig struct {
	UserHandle  []byte        `json:"user_handle"`
	Credentials []webauthnKey `json:"credentials"`
}

type webauthnKey struct {
	ID                []byte    `json:"id"`
	PublicKey         []byte    `json:"public_key"`
	AttestationType   string    `json:"attestation_type"`
	AttestationFormat string    `json:"attestation_format,omitempty"`
	Authenticator     keyAuthn  `json:"authenticator"`
	Transports        []string  `json:"transports,omitempty"`
	Flags             keyFlags  `json:"flags"`
	DisplayName       string    `json:"display_name"`
	AddedAt           time.Time `json:"added_at"`
	IsPasswordless    bool      `json:"is_passwordless"`
}

type keyAuthn struct {
	AAGUID       []byte `json:"aaguid"`
	SignCount    uint32 `json:"sign_count"`
	CloneWarning bool   `json:"clone_warning"`
}

type keyFlags struct {
	UserPresent    bool `json:"user_present"`
	UserVerified   bool `json:"user_verified"`
	BackupEligible bool `json:"backup_eligible"`
	BackupState    bool `json:"backup_state"`
	Raw            byte `json:"raw"`
}

func (k webauthnKey) toLib() webauthn.Credential {
	// The booleans are what Kratos stores (imported credentials have no raw
	// byte).
	fl := protocol.AuthenticatorFlags(k.Flags.Raw)
	for _, b := range []struct {
		set  bool
		flag protocol.AuthenticatorFlags
	}{{k.Flags.UserPresent, protocol.FlagUserPresent}, {k.Flags.UserVerified, protocol.FlagUserVerified},
		{k.Flags.BackupEligible, protocol.FlagBackupEligible}, {k.Flags.BackupState, protocol.FlagBackupState}} {
		if b.set {
			fl |= b.flag
		}
	}
	c := webauthn.Credential{
		ID: k.ID, PublicKey: k.PublicKey, AttestationType: k.AttestationType, AttestationFormat: k.AttestationFormat,
		Flags:         webauthn.NewCredentialFlags(fl),
		Authenticator: webauthn.Authenticator{AAGUID: k.Authenticator.AAGUID, SignCount: k.Authenticator.SignCount},
	}
	for _, t := range k.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

func keyFromLib(c *webauthn.Credential, displayName string, addedAt time.Time, passwordless bool) webauthnKey {
	k := webauthnKey{
		ID: c.ID, PublicKey: c.PublicKey, AttestationType: c.AttestationType, AttestationFormat: c.AttestationFormat,
		DisplayName: displayName, AddedAt: addedAt, IsPasswordless: passwordless,
	}
	k.Authenticator = keyAuthn{AAGUID: c.Authenticator.AAGUID, SignCount: c.Authenticator.SignCount}
	k.setFlags(c.Flags)
	for _, t := range c.Transport {
		k.Transports = append(k.Transports, string(t))
	}
	return k
}

func (k *webauthnKey) setFlags(f webauthn.CredentialFlags) {
	k.Flags = keyFlags{UserPresent: f.UserPresent, UserVerified: f.UserVerified,
		BackupEligible: f.BackupEligible, BackupState: f.BackupState, Raw: byte(f.ProtocolValue())}
}

// waUser is a webauthn.User over stored keys.
type waUser struct {
	id      []byte
	name    string
	display string
	keys    []webauthnKey
	cache   []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte   { return u.id }
func (u *waUser) WebAuthnName() string { return u.name }
func (u *waUser) WebAuthnDisplayName() string {
	if u.display != "" {
		return u.display
	}
	return u.name
}
func (u *waUser) WebAuthnCredentials() []webauthn.Credential {
	if u.cache == nil {
		u.cache = make([]webauthn.Credential, 0, len(u.keys))
		for _, k := range u.keys {
			u.cache = append(u.cache, k.toLib())
		}
	}
	return u.cache
}

func webauthnConfigOf(ident *sessionstore.Identity, typ string) (*webauthnConfig, bool) {
	if ident == nil {
		return nil, false
	}
	c, ok := ident.Credentials[typ]
	if !ok {
		return nil, false
	}
	var cfg webauthnConfig
	if err := identity.DecodeConfig(c.Config, &cfg); err != nil {
		return nil, false
	}
	return &cfg, true
}

// canWebAuthn: a form with WebAuthn needs the public URL (RP id, origin,
// script src).
func (e *Engine) canWebAuthn(r *http.Request, f *flow.Flow) bool {
	return f.Type == "browser" && (r != nil || e.base != nil)
}

// webAuthn returns the relying party for this request. passkey selects
// discoverable credentials with user verification.
func (e *Engine) webAuthn(r *http.Request, kind string) (*webauthn.WebAuthn, error) {
	base, err := url.Parse(e.urls.Base())
	if err != nil {
		return nil, err
	}
	rpID, name, origins := e.cfg.WebAuthnRPID, e.cfg.WebAuthnRPDisplayName, e.cfg.WebAuthnRPOrigins
	if kind == "passkey" {
		// The passkey method's own relying party: with its own id, nothing
		// of the WebAuthn one applies; otherwise what it sets wins.
		if e.cfg.PasskeyRPID != "" {
			rpID, name, origins = e.cfg.PasskeyRPID, "", nil
		}
		name = cmp.Or(e.cfg.PasskeyRPDisplayName, name)
		if len(e.cfg.PasskeyRPOrigins) > 0 {
			origins = e.cfg.PasskeyRPOrigins
		}
	}
	if rpID == "" {
		rpID = defaultRPID(base.Hostname())
	}
	if name == "" {
		name = rpID
	}
	if len(origins) == 0 {
		origins = []string{base.Scheme + "://" + base.Host}
	}
	cfg := &webauthn.Config{RPID: rpID, RPDisplayName: name, RPOrigins: origins,
		AttestationPreference: protocol.PreferNoAttestation}
	switch kind {
	case "passkey":
		cfg.AuthenticatorSelection = e.passkeySelection()
	case "passwordless":
		yes := true
		cfg.AuthenticatorSelection = protocol.AuthenticatorSelection{
			RequireResidentKey: &yes, ResidentKey: protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationRequired}
	default:
		cfg.AuthenticatorSelection = protocol.AuthenticatorSelection{UserVerification: protocol.VerificationDiscouraged}
	}
	return webauthn.New(cfg)
}

// defaultRPID is the relying party id for a public URL on host when none
// is configured: the host name, or localhost for an IP address, which
// WebAuthn does not accept as an RP id (go-webauthn refuses it, browsers
// too). localhost is what the reference Kratos setup on 127.0.0.1 uses;
// the forms then carry WebAuthn nodes as Kratos's do, and real ceremonies
// need the UI on a host name with webauthn { rp_id; rp_origins } set.
func defaultRPID(host string) string {
	if net.ParseIP(host) != nil {
		return "localhost"
	}
	return host
}

// --- ceremony state on the flow ---

func storeCeremony(f *flow.Flow, key string, sd *webauthn.SessionData) {
	b, _ := json.Marshal(sd)
	f.Internals()[key] = string(b)
}

// takeCeremony removes the pending ceremony key from the stored flow in a
// store transaction and returns it: of concurrent submits exactly one gets
// it. It is also removed from f (so saving f cannot bring it back). nil
// when there is none.
func (e *Engine) takeCeremony(ctx context.Context, f *flow.Flow, key string) (*webauthn.SessionData, error) {
	raw, err := e.kernel.TakeInternal(ctx, f, key)
	if err != nil {
		return nil, err
	}
	if raw == "" {
		return nil, nil
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal([]byte(raw), &sd); err != nil {
		return nil, nil
	}
	return &sd, nil
}

// dropPasswordlessKeys removes the passwordless security keys of ident
// (a mailbox sign-in claiming its address: claimAddress); second-factor
// keys stay.
func dropPasswordlessKeys(ident *sessionstore.Identity, now time.Time) error {
	c, ok := ident.Credentials["webauthn"]
	if !ok {
		return nil
	}
	var cfg webauthnConfig
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

// --- node helpers ---

// webauthnUserName is the name authenticators show for ident.
func (e *Engine) webauthnUserName(sch *identity.Schema, traits map[string]any, fallback string) string {
	for _, typ := range []string{"webauthn", "passkey", "password", "code"} {
		if ids := sch.Identifiers(traits, typ); len(ids) > 0 {
			return ids[0]
		}
	}
	return fallback
}

// webauthnIdentifiers are the credential identifiers of a webauthn
// credential: the traits marked for webauthn (or password), else the id.
func (e *Engine) webauthnIdentifiers(ident *sessionstore.Identity) []string {
	traits, sch := identity.TraitsOf(ident), e.schemas.Of(ident)
	if ids := sch.Identifiers(traits, "webauthn"); len(ids) > 0 {
		return ids
	}
	if ids := sch.Identifiers(traits, "password"); len(ids) > 0 {
		return ids
	}
	return []string{ident.ID}
}

func descriptors(keys []webauthnKey) []protocol.CredentialDescriptor {
	out := make([]protocol.CredentialDescriptor, 0, len(keys))
	for _, k := range keys {
		c := k.toLib()
		out = append(out, c.Descriptor())
	}
	return out
}

func optionsJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// keyRemoveLabel is 1050018 / 1050020 for a key.
func keyRemoveLabel(id int, k webauthnKey) *node.Text {
	added := k.AddedAt.UTC()
	return node.Label(id, map[string]any{"display_name": k.DisplayName, "added_at": added, "added_at_unix": added.Unix()}, k.DisplayName)
}

// firstFactors counts the ways ident can sign in without key (for
// refusing to remove the last one).
func (e *Engine) firstFactors(ident *sessionstore.Identity, exceptKey []byte) int {
	n := 0
	if e.methodEnabled("password") && identity.HasCredential(ident, "password") {
		n++
	}
	if e.cfg.CodePasswordless && len(ident.VerifiableAddresses) > 0 {
		n++
	}
	for _, typ := range []string{"passkey", "webauthn"} {
		if cfg, ok := webauthnConfigOf(ident, typ); ok {
			for _, k := range cfg.Credentials {
				if (typ == "passkey" || k.IsPasswordless) && !bytes.Equal(k.ID, exceptKey) {
					n++
				}
			}
		}
	}
	return n
}

// --- settings ---

func webauthnSettingsNodes(e *Engine, r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if !e.canWebAuthn(r, f) {
		return
	}
	cfg, _ := webauthnConfigOf(ident, "webauthn")
	if cfg != nil {
		for _, k := range cfg.Credentials {
			n := node.Submit("webauthn", "webauthn_remove", hex.EncodeToString(k.ID), keyRemoveLabel(1050018, k))
			n.Input().Disabled = k.IsPasswordless && e.firstFactors(ident, k.ID) == 0
			f.UI.Nodes = append(f.UI.Nodes, n)
		}
	}
	opts, err := e.beginWebAuthnRegistration(r, f, ident)
	if err != nil {
		e.logger.Error("starting a WebAuthn registration", zap.Error(err))
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("webauthn", "webauthn_register_displayname", "text", node.Label(1050013, nil)).Value(""),
		node.Trigger("webauthn", "webauthn_register_trigger", "oryWebAuthnRegistration", opts, node.Label(1050012, nil)),
		node.Input("webauthn", "webauthn_register", "hidden", nil).Value(""))
	e.ensureWebAuthnScript(r, f)
}

// beginWebAuthnRegistration starts a security-key registration for ident
// on f and returns the creation options JSON.
func (e *Engine) beginWebAuthnRegistration(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) (string, error) {
	kind := "webauthn"
	if e.cfg.WebAuthnPasswordless {
		kind = "passwordless"
	}
	wa, err := e.webAuthn(r, kind)
	if err != nil {
		return "", err
	}
	cfg, _ := webauthnConfigOf(ident, "webauthn")
	handle := []byte(ident.ID)
	var keys []webauthnKey
	if cfg != nil {
		if len(cfg.UserHandle) > 0 {
			handle = cfg.UserHandle
		}
		keys = cfg.Credentials
	}
	user := &waUser{id: handle, name: e.webauthnUserName(e.schemas.Of(ident), identity.TraitsOf(ident), ident.ID), keys: keys}
	creation, sd, err := wa.BeginRegistration(user, webauthn.WithExclusions(descriptors(keys)))
	if err != nil {
		return "", err
	}
	storeCeremony(f, ceremonyWebAuthnRegister, sd)
	return optionsJSON(creation), nil
}

// notResponsible answers a submit no strategy takes (4010002/3/4).
func notResponsible(f *flow.Flow, id int) {
	f.UI.Messages = []node.Text{node.NewText(id, nil)}
}

func webauthnSettingsUpdate(e *Engine, r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	body := st.Sub.Body
	register, remove := wire.BodyString(body, "webauthn_register"), wire.BodyString(body, "webauthn_remove")
	if f.Type != "browser" || register == "" && remove == "" {
		notResponsible(f, 4010004)
		return flow.SettingsOutcome{Invalid: true}
	}
	if !e.sessions.Privileged(st.Session) {
		return flow.SettingsOutcome{Privileged: true}
	}
	if remove != "" {
		return e.removeKey(st, "webauthn", remove)
	}
	fail := func(reason string) flow.SettingsOutcome {
		f.UI.Messages = []node.Text{node.TextReason(4000001, reason)}
		if opts, err := e.beginWebAuthnRegistration(r, f, st.Identity); err == nil {
			f.UI.SetTrigger("webauthn_register_trigger", "oryWebAuthnRegistration", opts)
		}
		f.UI.SetValue("webauthn_register", "")
		return flow.SettingsOutcome{Invalid: true, Privileged: true}
	}
	sd, err := e.takeCeremony(r.Context(), f, ceremonyWebAuthnRegister)
	if err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to load the flow")}
	}
	if sd == nil {
		return fail("The security key registration expired or was already completed. Please try again.")
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(register))
	if err != nil {
		return fail("Unable to parse WebAuthn response: " + protocolReason(err))
	}
	kind := "webauthn"
	if e.cfg.WebAuthnPasswordless {
		kind = "passwordless"
	}
	wa, err := e.webAuthn(r, kind)
	if err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to configure WebAuthn")}
	}
	cred, err := wa.CreateCredential(&waUser{id: sd.UserID}, *sd, parsed)
	if err != nil {
		return fail("Unable to create WebAuthn credential: " + protocolReason(err))
	}
	now := e.now().UTC()
	if cfg, ok := webauthnConfigOf(st.Identity, "webauthn"); ok && hasKey(cfg, cred.ID) {
		return fail("This security key is already registered.")
	}
	name := strings.TrimSpace(wire.BodyString(body, "webauthn_register_displayname"))
	key := keyFromLib(cred, name, now.Round(time.Second), e.cfg.WebAuthnPasswordless)
	apply := func(cur *sessionstore.Identity) error {
		cfg, _ := webauthnConfigOf(cur, "webauthn")
		if cfg == nil {
			cfg = &webauthnConfig{}
		}
		if hasKey(cfg, cred.ID) {
			return &flow.SettingsRefused{Out: fail("This security key is already registered.")}
		}
		cfg.UserHandle = sd.UserID
		cfg.Credentials = append(cfg.Credentials, key)
		c, had := cur.Credentials["webauthn"]
		if !had {
			c = sessionstore.Credential{Type: "webauthn", CreatedAt: now}
		}
		c.Identifiers, c.Config, c.UpdatedAt = e.webauthnIdentifiers(cur), identity.EncodeConfig(cfg), now
		identity.SetCredential(cur, "webauthn", c)
		return nil
	}
	aal := "aal2"
	if e.cfg.WebAuthnPasswordless {
		aal = "aal1"
	}
	return flow.SettingsOutcome{Apply: apply, Privileged: true, Success: true, After: func(*flow.Flow) {
		// Registering a key proves it, as signing in with it would.
		e.kernel.RecordLinkedMethod(r, st, "webauthn", aal)
	}}
}

// removeKey removes the key with hex id from credential typ.
func (e *Engine) removeKey(st *flow.SettingsState, typ, hexID string) flow.SettingsOutcome {
	id, err := hex.DecodeString(hexID)
	cfg, ok := webauthnConfigOf(st.Identity, typ)
	if err != nil || !ok {
		return flow.SettingsOutcome{Privileged: true, Err: wire.BadRequest("You tried to remove a WebAuthn credential which does not exist.")}
	}
	kept := cfg.Credentials[:0:0]
	var removed *webauthnKey
	for i, k := range cfg.Credentials {
		if bytes.Equal(k.ID, id) {
			removed = &cfg.Credentials[i]
			continue
		}
		kept = append(kept, k)
	}
	if removed == nil {
		return flow.SettingsOutcome{Privileged: true, Err: wire.BadRequest("You tried to remove a WebAuthn credential which does not exist.")}
	}
	lockout := func(ident *sessionstore.Identity, k *webauthnKey) bool {
		return (typ == "passkey" || k.IsPasswordless) && e.firstFactors(ident, id) == 0
	}
	if lockout(st.Identity, removed) {
		return flow.SettingsOutcome{Privileged: true, Err: errLockout()}
	}
	now := e.now().UTC()
	// Removed from the identity as it is now: a key removed meanwhile is
	// done already, and the lock-out check counts the keys left now (two
	// concurrent removals must not take the last two sign-in keys).
	return flow.SettingsOutcome{Privileged: true, Success: true, Apply: func(cur *sessionstore.Identity) error {
		cfg, ok := webauthnConfigOf(cur, typ)
		if !ok {
			return sessionstore.ErrNoChange
		}
		kept := cfg.Credentials[:0:0]
		var removed *webauthnKey
		for i, k := range cfg.Credentials {
			if bytes.Equal(k.ID, id) {
				removed = &cfg.Credentials[i]
				continue
			}
			kept = append(kept, k)
		}
		if removed == nil {
			return sessionstore.ErrNoChange
		}
		if lockout(cur, removed) {
			return &flow.SettingsRefused{Out: flow.SettingsOutcome{Privileged: true, Err: errLockout()}}
		}
		if len(kept) == 0 {
			delete(cur.Credentials, typ)
			return nil
		}
		cfg.Credentials = kept
		c := cur.Credentials[typ]
		c.Config, c.UpdatedAt = identity.EncodeConfig(cfg), now
		cur.Credentials[typ] = c
		return nil
	}}
}

func errLockout() *wire.Error {
	return wire.BadRequest("Unable to remove this security key because it would lock you out of your account.")
}

// hasKey reports whether cfg holds the key with credential id id.
func hasKey(cfg *webauthnConfig, id []byte) bool {
	for _, k := range cfg.Credentials {
		if bytes.Equal(k.ID, id) {
			return true
		}
	}
	return false
}

// protocolReason is the most useful text of a go-webauthn error.
func protocolReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		if pe.DevInfo != "" {
			return pe.Details + ": " + pe.DevInfo
		}
		if pe.Details != "" {
			return pe.Details
		}
	}
	return err.Error()
}

// --- login: second factor ---

func mfaKeys(cfg *webauthnConfig) []webauthnKey {
	var out []webauthnKey
	for _, k := range cfg.Credentials {
		if !k.IsPasswordless {
			out = append(out, k)
		}
	}
	return out
}

func passwordlessKeys(cfg *webauthnConfig) []webauthnKey {
	var out []webauthnKey
	for _, k := range cfg.Credentials {
		if k.IsPasswordless {
			out = append(out, k)
		}
	}
	return out
}

// beginWebAuthnLogin starts an assertion for keys on f and returns the
// options JSON.
func (e *Engine) beginWebAuthnLogin(r *http.Request, f *flow.Flow, kind string, handle []byte, keys []webauthnKey) (string, error) {
	wa, err := e.webAuthn(r, kind)
	if err != nil {
		return "", err
	}
	assertion, sd, err := wa.BeginLogin(&waUser{id: handle, keys: keys})
	if err != nil {
		return "", err
	}
	storeCeremony(f, ceremonyWebAuthnLogin, sd)
	return optionsJSON(assertion), nil
}

// webauthnLoginNodes renders the assertion step: hidden identifier, the
// trigger with the options, the hidden result input and the script.
func (e *Engine) webauthnLoginNodes(r *http.Request, f *flow.Flow, identifier, opts string, label *node.Text) {
	if n := f.UI.Find("identifier"); n != nil {
		n.Input().Type, n.Input().Value, n.Input().Required = "hidden", identifier, false
		n.Meta.Label = nil
	} else {
		f.UI.InsertAfterCSRF(node.Input("default", "identifier", "hidden", nil).Value(identifier))
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Trigger("webauthn", "webauthn_login_trigger", "oryWebAuthnLogin", opts, label),
		node.Input("webauthn", "webauthn_login", "hidden", nil).Value(""))
	e.ensureWebAuthnScript(r, f)
}

func webauthnMFANodes(e *Engine, r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if e.cfg.WebAuthnPasswordless || !e.canWebAuthn(r, f) {
		return
	}
	cfg, ok := webauthnConfigOf(ident, "webauthn")
	if !ok {
		return
	}
	keys := mfaKeys(cfg)
	if len(keys) == 0 {
		return
	}
	opts, err := e.beginWebAuthnLogin(r, f, "webauthn", cfg.UserHandle, keys)
	if err != nil {
		e.logger.Error("starting a WebAuthn login", zap.Error(err))
		return
	}
	identifier := ident.ID
	if c := ident.Credentials["webauthn"]; len(c.Identifiers) > 0 {
		identifier = c.Identifiers[0]
	}
	e.webauthnLoginNodes(r, f, identifier, opts, node.Label(1010008, nil))
}

// verifyAssertion checks the submitted webauthn_login of f against the
// flow's pending challenge and ident's keys. On success it stores the
// key's new sign count and returns the updated identity; on failure it
// puts 4000043 on the flow and issues a new challenge.
func (e *Engine) verifyAssertion(r *http.Request, f *flow.Flow, body map[string]any, ident *sessionstore.Identity, kind string, keys func(*webauthnConfig) []webauthnKey) (*sessionstore.Identity, *wire.Error) {
	ctx := r.Context()
	cfg, ok := webauthnConfigOf(ident, "webauthn")
	fail := func() (*sessionstore.Identity, *wire.Error) {
		f.UI.Messages = []node.Text{node.NewText(4000043, nil)}
		f.UI.SetValue("webauthn_login", "")
		if ok {
			if opts, err := e.beginWebAuthnLogin(r, f, kind, cfg.UserHandle, keys(cfg)); err == nil {
				f.UI.SetTrigger("webauthn_login_trigger", "oryWebAuthnLogin", opts)
			}
		}
		return nil, nil
	}
	sd, err := e.takeCeremony(ctx, f, ceremonyWebAuthnLogin)
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
	wa, err := e.webAuthn(r, kind)
	if err != nil {
		return nil, wire.StoreError(err, "unable to configure WebAuthn")
	}
	cred, err := wa.ValidateLogin(&waUser{id: cfg.UserHandle, keys: keys(cfg)}, *sd, parsed)
	if err != nil {
		e.logger.Debug("WebAuthn assertion refused", zap.Error(err))
		return fail()
	}
	if cred.Authenticator.CloneWarning {
		// The signature counter did not move forward: the key may have
		// been cloned.
		e.logger.Warn("WebAuthn sign counter went backwards; refusing the key")
		return fail()
	}
	up, err := e.recordKeyUse(ctx, ident.ID, "webauthn", cred)
	if err != nil {
		return nil, wire.StoreError(err, "unable to store the identity")
	}
	return up, nil
}

// recordKeyUse stores a key's new sign count and flags after a sign-in,
// on the identity as it is now.
func (e *Engine) recordKeyUse(ctx context.Context, identityID, typ string, cred *webauthn.Credential) (*sessionstore.Identity, error) {
	return e.store.ModifyIdentity(ctx, identityID, func(cur *sessionstore.Identity) error {
		cfg, ok := webauthnConfigOf(cur, typ)
		if !ok || !hasKey(cfg, cred.ID) {
			return sessionstore.ErrNoChange
		}
		for i := range cfg.Credentials {
			if bytes.Equal(cfg.Credentials[i].ID, cred.ID) {
				// Never lower the counter a concurrent sign-in stored.
				cfg.Credentials[i].Authenticator.SignCount = max(cfg.Credentials[i].Authenticator.SignCount, cred.Authenticator.SignCount)
				cfg.Credentials[i].setFlags(cred.Flags)
			}
		}
		c := cur.Credentials[typ]
		c.Config = identity.EncodeConfig(cfg)
		cur.Credentials[typ] = c
		return nil
	})
}

// webauthnMFAActive: a key registered as second factor (keys registered
// for passwordless sign-in are a first factor).
func webauthnMFAActive(_ *Engine, ident *sessionstore.Identity) bool {
	cfg, ok := webauthnConfigOf(ident, "webauthn")
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

func webauthnMFAVerify(e *Engine, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	if f.Type != "browser" || e.cfg.WebAuthnPasswordless {
		notResponsible(f, 4010002)
		return nil, nil
	}
	return e.verifyAssertion(r, f, st.Sub.Body, st.Identity, "webauthn", mfaKeys)
}

// --- login: passwordless (first factor) ---

func webauthnPasswordlessNodes(e *Engine, r *http.Request, f *flow.Flow, _ *sessionstore.Identity) {
	if !e.cfg.WebAuthnPasswordless || !e.canWebAuthn(r, f) || f.Refresh {
		return
	}
	if n := f.UI.Find("identifier"); n != nil {
		n.Input().Autocomplete = "username webauthn"
	} else {
		f.UI.InsertAfterCSRF(node.Input("default", "identifier", "text", e.schemas.Default().IdentifierLabel("webauthn")).
			Value("").Required().Autocomplete("username webauthn"))
	}
	f.UI.Nodes = append(f.UI.Nodes, node.Submit("webauthn", "method", "webauthn", node.Label(1010008, nil)))
}

func webauthnPasswordlessVerify(e *Engine, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	if !e.cfg.WebAuthnPasswordless || f.Type != "browser" {
		notResponsible(f, 4010002)
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
		ident, err := e.store.FindIdentityByCredential(ctx, "webauthn", identifier)
		var keys []webauthnKey
		var cfg *webauthnConfig
		if err == nil {
			if c, ok := webauthnConfigOf(ident, "webauthn"); ok {
				cfg, keys = c, passwordlessKeys(c)
			}
		}
		if len(keys) == 0 && e.cfg.MitigateAccountEnumeration {
			// No account, or no key: the options of a made-up key, the
			// same ones each time for this identifier.
			ident = e.decoyWebAuthnIdentity(identifier)
			cfg, _ = webauthnConfigOf(ident, "webauthn")
			keys = passwordlessKeys(cfg)
		}
		if len(keys) == 0 {
			f.UI.Messages = []node.Text{node.NewText(4000015, nil)}
			return nil, nil
		}
		opts, err := e.beginWebAuthnLogin(r, f, "passwordless", cfg.UserHandle, keys)
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
		e.webauthnLoginNodes(r, f, identifier, opts, node.Label(1010011, nil))
		f.UI.Messages = []node.Text{node.NewText(1010012, nil)}
		return nil, nil
	}
	id := f.InternalString(ceremonyIdentity)
	if decoy := f.InternalString(ceremonyDecoy); id == "" && decoy != "" && e.cfg.MitigateAccountEnumeration {
		// Made-up options: the same checks as for an account, which the
		// key without a public key always fails (4000043, new options).
		if _, ferr := e.verifyAssertion(r, f, st.Sub.Body, e.decoyWebAuthnIdentity(decoy), "passwordless", passwordlessKeys); ferr != nil {
			return nil, ferr
		}
		f.UI.Messages = []node.Text{node.NewText(4000043, nil)}
		return nil, nil
	}
	ident, err := e.store.GetIdentity(ctx, id)
	if id == "" || err != nil {
		f.UI.Messages = []node.Text{node.NewText(4000015, nil)}
		return nil, nil
	}
	return e.verifyAssertion(r, f, st.Sub.Body, ident, "passwordless", passwordlessKeys)
}

// In identifier-first login, accounts with a passwordless security key get
// its button on the second screen; pressing it asks for the key's
// challenge (webauthnPasswordlessVerify).
func webauthnIDFirst() *idFirstMethod {
	return &idFirstMethod{name: "webauthn",
		offered: func(e *Engine, r *http.Request, f *flow.Flow) bool {
			return e.cfg.WebAuthnPasswordless && e.methodEnabled("webauthn") && e.canWebAuthn(r, f)
		},
		has: func(_ *Engine, ident *sessionstore.Identity, identifier string) bool {
			cfg, ok := webauthnConfigOf(ident, "webauthn")
			return ok && len(passwordlessKeys(cfg)) > 0 && identity.HasIdentifier(ident, "webauthn", identifier)
		},
		first: func(_ *Engine, _ *http.Request, f *flow.Flow) {
			// Browsers offer security keys in the identifier field.
			if n := f.UI.Find("identifier"); n != nil {
				n.Input().Autocomplete = "username webauthn"
			}
		},
		second: func(_ *Engine, _ *http.Request, f *flow.Flow) {
			f.UI.Nodes = append(f.UI.Nodes, node.Submit("webauthn", "method", "webauthn", node.Label(1010008, nil)))
		},
	}
}

//go:embed assets/webauthn.js
var webauthnJS []byte

// webauthnIntegrity is the SRI hash script nodes advertise for webauthnJS.
var webauthnIntegrity = func() string {
	h := sha512.Sum512(webauthnJS)
	return "sha512-" + base64.StdEncoding.EncodeToString(h[:])
}()

func (e *Engine) webauthnJS(w http.ResponseWriter, r *http.Request) {
	e.kernel.EnsureCSRF(w, r)
	w.Header().Set("Content-Type", "text/javascript; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(webauthnJS)
}

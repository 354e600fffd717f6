package ceremony

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/url"
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

// The kinds of relying party a ceremony runs with.
const (
	// KindWebAuthn: security keys as a second factor (no user
	// verification asked).
	KindWebAuthn = "webauthn"
	// KindPasswordless: security keys as a first factor (resident key and
	// user verification required).
	KindPasswordless = "passwordless"
	// KindPasskey: passkeys, with the passkey method's own relying party
	// and authenticator selection.
	KindPasskey = "passkey"
)

// Config is the relying parties' configuration and what the lock-out
// rule needs to know of the other first factors.
type Config struct {
	// RPID, RPDisplayName and RPOrigins are the WebAuthn relying party.
	// Default: the public URL's host name (localhost for an IP address),
	// the RP id, the public URL's origin.
	RPID          string
	RPDisplayName string
	RPOrigins     []string
	// PasskeyRPID, PasskeyRPDisplayName and PasskeyRPOrigins are the
	// passkey method's relying party; with its own id nothing of the
	// WebAuthn one applies, otherwise what it sets wins.
	PasskeyRPID          string
	PasskeyRPDisplayName string
	PasskeyRPOrigins     []string
	// PasskeySelection is the authenticator selection of passkeys.
	PasskeySelection protocol.AuthenticatorSelection
	// ScriptIntegrity is the SRI hash of webauthn.js that script nodes
	// advertise.
	ScriptIntegrity string
	// PasswordEnabled and CodePasswordless tell the lock-out rule whether
	// a password or a mailed code can still sign an identity in.
	PasswordEnabled  bool
	CodePasswordless bool
}

// Party runs WebAuthn ceremonies for the webauthn and passkey methods.
type Party struct {
	cfg    Config
	kernel *flow.Kernel
	store  sessionstore.Storage
	urls   *wire.URLs
	logger *zap.Logger
	now    func() time.Time
}

// New returns the relying parties of cfg over the kernel.
func New(cfg Config, k *flow.Kernel, store sessionstore.Storage, urls *wire.URLs, logger *zap.Logger, now func() time.Time) *Party {
	return &Party{cfg: cfg, kernel: k, store: store, urls: urls, logger: logger, now: now}
}

// Usable reports whether a form of f may carry WebAuthn: browser flows
// only, as in Kratos (native apps get no webauthn or passkey nodes, and
// their submits find no strategy).
func Usable(f *flow.Flow) bool { return f.Type == "browser" }

// WebAuthn returns the relying party of kind (KindWebAuthn,
// KindPasswordless or KindPasskey).
func (p *Party) WebAuthn(kind string) (*webauthn.WebAuthn, error) {
	base, err := url.Parse(p.urls.Base())
	if err != nil {
		return nil, err
	}
	rpID, name, origins := p.cfg.RPID, p.cfg.RPDisplayName, p.cfg.RPOrigins
	if kind == KindPasskey {
		if p.cfg.PasskeyRPID != "" {
			rpID, name, origins = p.cfg.PasskeyRPID, "", nil
		}
		name = cmp.Or(p.cfg.PasskeyRPDisplayName, name)
		if len(p.cfg.PasskeyRPOrigins) > 0 {
			origins = p.cfg.PasskeyRPOrigins
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
	case KindPasskey:
		cfg.AuthenticatorSelection = p.cfg.PasskeySelection
	case KindPasswordless:
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

// Store keeps a pending ceremony on the flow (Internal) under key.
func Store(f *flow.Flow, key string, sd *webauthn.SessionData) {
	b, _ := json.Marshal(sd)
	f.Internals()[key] = string(b)
}

// Take removes the pending ceremony key from the stored flow in a store
// transaction and returns it: of concurrent submits exactly one gets it,
// so every challenge is answered at most once (a replayed response, or
// one made for another flow's challenge, fails). It is also removed from
// f, so saving f cannot bring it back. nil when there is none.
func (p *Party) Take(ctx context.Context, f *flow.Flow, key string) (*webauthn.SessionData, error) {
	raw, err := p.kernel.TakeInternal(ctx, f, key)
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

// OptionsJSON is the JSON of ceremony options as nodes carry it.
func OptionsJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// CreateCredential verifies an attestation against a pending ceremony of
// kind. On failure it returns nil and the reason.
func (p *Party) CreateCredential(kind string, sd *webauthn.SessionData, resp string) (*webauthn.Credential, string) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(resp))
	if err != nil {
		return nil, "Unable to parse WebAuthn response: " + ProtocolReason(err)
	}
	wa, err := p.WebAuthn(kind)
	if err != nil {
		return nil, "Unable to configure WebAuthn."
	}
	cred, err := wa.CreateCredential(&User{Handle: sd.UserID}, *sd, parsed)
	if err != nil {
		return nil, "Unable to create WebAuthn credential: " + ProtocolReason(err)
	}
	return cred, ""
}

// ProtocolReason is the most useful text of a go-webauthn error.
func ProtocolReason(err error) string {
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

// RecordUse stores a key's new sign count and flags after a sign-in, on
// the identity as it is now.
func (p *Party) RecordUse(ctx context.Context, identityID, typ string, cred *webauthn.Credential) (*sessionstore.Identity, error) {
	return p.store.ModifyIdentity(ctx, identityID, func(cur *sessionstore.Identity) error {
		cfg, ok := KeysOf(cur, typ)
		if !ok || !HasKey(cfg, cred.ID) {
			return sessionstore.ErrNoChange
		}
		for i := range cfg.Credentials {
			if bytes.Equal(cfg.Credentials[i].ID, cred.ID) {
				// Never lower the counter a concurrent sign-in stored.
				cfg.Credentials[i].Authenticator.SignCount = max(cfg.Credentials[i].Authenticator.SignCount, cred.Authenticator.SignCount)
				cfg.Credentials[i].SetFlags(cred.Flags)
			}
		}
		c := cur.Credentials[typ]
		c.Config = identity.EncodeConfig(cfg)
		cur.Credentials[typ] = c
		return nil
	})
}

// UserName is the name authenticators show for an account with traits.
func UserName(sch *identity.Schema, traits map[string]any, fallback string) string {
	for _, typ := range []string{"webauthn", "passkey", "password", "code"} {
		if ids := sch.Identifiers(traits, typ); len(ids) > 0 {
			return ids[0]
		}
	}
	return fallback
}

// FirstFactors counts the ways ident can sign in without the key
// exceptKey: the lock-out rule refuses to remove the last one.
func (p *Party) FirstFactors(ident *sessionstore.Identity, exceptKey []byte) int {
	n := 0
	if p.cfg.PasswordEnabled && identity.HasCredential(ident, "password") {
		n++
	}
	if p.cfg.CodePasswordless && len(ident.VerifiableAddresses) > 0 {
		n++
	}
	for _, typ := range []string{"passkey", "webauthn"} {
		if cfg, ok := KeysOf(ident, typ); ok {
			for _, k := range cfg.Credentials {
				if (typ == "passkey" || k.IsPasswordless) && !bytes.Equal(k.ID, exceptKey) {
					n++
				}
			}
		}
	}
	return n
}

// RemoveLabel is 1050018 (security key) / 1050020 (passkey) for a key.
func RemoveLabel(id int, k Key) *node.Text {
	added := k.AddedAt.UTC()
	return node.Label(id, map[string]any{"display_name": k.DisplayName, "added_at": added, "added_at_unix": added.Unix()}, k.DisplayName)
}

// RemoveNodes adds a remove button per key of credential typ (field
// <typ>_remove, label labelID), disabled where removing the key would
// leave ident no way to sign in.
func (p *Party) RemoveNodes(f *flow.Flow, ident *sessionstore.Identity, typ string, labelID int) {
	cfg, ok := KeysOf(ident, typ)
	if !ok {
		return
	}
	for _, k := range cfg.Credentials {
		n := node.Submit(typ, typ+"_remove", hex.EncodeToString(k.ID), RemoveLabel(labelID, k))
		n.Input().Disabled = (typ == "passkey" || k.IsPasswordless) && p.FirstFactors(ident, k.ID) == 0
		f.UI.Nodes = append(f.UI.Nodes, n)
	}
}

// ScriptNode is the script node every WebAuthn/passkey form carries
// (group webauthn; one per form).
func (p *Party) ScriptNode() *node.Node {
	return &node.Node{Type: "script", Group: "webauthn", Messages: []node.Text{}, Attributes: &node.ScriptAttrs{
		ID:             "webauthn_script",
		Src:            p.urls.Public(".well-known/ory/webauthn.js"),
		Async:          true,
		ReferrerPolicy: "no-referrer",
		CrossOrigin:    "anonymous",
		Integrity:      p.cfg.ScriptIntegrity,
		Type:           "text/javascript",
		Nonce:          token.RandomString(16, token.Alnum),
		NodeType:       "script",
	}}
}

// EnsureScript appends the script node unless the form has one.
func (p *Party) EnsureScript(f *flow.Flow) {
	if f.UI.FindScript("webauthn_script") == nil {
		f.UI.Nodes = append(f.UI.Nodes, p.ScriptNode())
	}
}

// NotResponsible answers a submit no strategy takes (4010002/3/4).
func NotResponsible(f *flow.Flow, id int) {
	f.UI.Messages = []node.Text{node.NewText(id, nil)}
}

// RemoveKey removes the key with hex id hexID from credential typ in
// settings, unless that would leave the identity no way to sign in.
func (p *Party) RemoveKey(st *flow.SettingsState, typ, hexID string) flow.SettingsOutcome {
	id, err := hex.DecodeString(hexID)
	cfg, ok := KeysOf(st.Identity, typ)
	if err != nil || !ok {
		return flow.SettingsOutcome{Privileged: true, Err: wire.BadRequest("You tried to remove a WebAuthn credential which does not exist.")}
	}
	_, removed := without(cfg, id)
	if removed == nil {
		return flow.SettingsOutcome{Privileged: true, Err: wire.BadRequest("You tried to remove a WebAuthn credential which does not exist.")}
	}
	lockout := func(ident *sessionstore.Identity, k *Key) bool {
		return (typ == "passkey" || k.IsPasswordless) && p.FirstFactors(ident, id) == 0
	}
	if lockout(st.Identity, removed) {
		return flow.SettingsOutcome{Privileged: true, Err: errLockout()}
	}
	now := p.now().UTC()
	// Removed from the identity as it is now: a key removed meanwhile is
	// done already, and the lock-out check counts the keys left now (two
	// concurrent removals must not take the last two sign-in keys).
	return flow.SettingsOutcome{Privileged: true, Success: true, Apply: func(cur *sessionstore.Identity) error {
		cfg, ok := KeysOf(cur, typ)
		if !ok {
			return sessionstore.ErrNoChange
		}
		kept, removed := without(cfg, id)
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

// without splits cfg's keys into those whose id is not id and the one
// that is (nil when none is).
func without(cfg *Keys, id []byte) (kept []Key, removed *Key) {
	kept = cfg.Credentials[:0:0]
	for i, k := range cfg.Credentials {
		if bytes.Equal(k.ID, id) {
			removed = &cfg.Credentials[i]
			continue
		}
		kept = append(kept, k)
	}
	return kept, removed
}

// errLockout refuses to remove the last way to sign in.
func errLockout() *wire.Error {
	return wire.BadRequest("Unable to remove this security key because it would lock you out of your account.")
}

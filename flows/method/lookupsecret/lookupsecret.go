package lookupsecret

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
)

// The lookup_secret method: 12 single-use backup recovery codes of 8
// characters [a-z0-9], a second factor.
//
// Settings: "regenerate" shows new codes (kept sealed on the flow) with a
// confirm button; only "confirm" stores them. Each stored code is kept as
// an HMAC (what sign-in compares, in constant time) and sealed (so
// "reveal" can show them again, as Kratos does). Sign-in marks a code used
// through a store record created in a transaction (lookupUsedNS), so two
// concurrent uses of one code succeed at most once; used_at on the
// identity is what reveal shows.

// Method is the lookup_secret method: backup codes as a second factor.
type Method struct {
	enabled  func() bool
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	sealer   *token.Sealer
	logger   *zap.Logger
	now      func() time.Time
}

// New returns the lookup_secret method; enabled reports whether the
// configuration turns it on.
func New(enabled func() bool, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, sealer *token.Sealer,
	logger *zap.Logger, now func() time.Time) *Method {
	return &Method{enabled: enabled, kernel: k, sessions: sessions, store: store, sealer: sealer, logger: logger, now: now}
}

// ID is "lookup_secret".
func (m *Method) ID() string { return "lookup_secret" }

// Enabled reports whether the configuration turns the method on.
func (m *Method) Enabled() bool { return m.enabled() }

// FirstFactor is false: a backup code never signs in alone.
func (m *Method) FirstFactor() bool { return false }

// SecondFactor is true.
func (m *Method) SecondFactor() bool { return true }

// Interface guards.
var (
	_ flow.LoginMethod      = (*Method)(nil)
	_ flow.SettingsMethod   = (*Method)(nil)
	_ flow.SettingsRevealer = (*Method)(nil)
)

const (
	lookupPurpose     = "lookup_secret"
	lookupInternalKey = "lookup_secret_regenerated"
	// ShownKey holds, sealed, the codes the flow's codes node shows
	// (regenerated or revealed): the stored flow keeps the node empty.
	ShownKey          = "lookup_secret_shown"
	lookupCodesNodeID = "lookup_secret_codes"
	lookupCodeCount   = 12
	lookupCodeLength  = 8
	lookupAlphabet    = "abcdefghijklmnopqrstuvwxyz0123456789"
	lookupUsedNS      = "lookupused"
)

// CredentialConfig is the stored configuration of a lookup_secret
// credential.
type CredentialConfig struct {
	// Salt makes each generation's hashes distinct.
	Salt          string `json:"salt,omitempty"`
	RecoveryCodes []Code `json:"recovery_codes"`
}

// Code is one stored backup code.
type Code struct {
	// Hash is the HMAC of salt and code (hex).
	Hash string `json:"hash,omitempty"`
	// Sealed is the code, encrypted, for reveal.
	Sealed string `json:"sealed,omitempty"`
	// Code is a plain code (credentials imported from Kratos).
	Code   string     `json:"code,omitempty"`
	UsedAt *time.Time `json:"used_at,omitempty"`
}

var errLookupUsed = errors.New("lookup secret already used")

func lookupMACInput(identityID, salt, code string) string {
	return identityID + "\x00" + salt + "\x00" + code
}

func newLookupCodes() []string {
	out := make([]string, lookupCodeCount)
	for i := range out {
		out[i] = token.RandomString(lookupCodeLength, lookupAlphabet)
	}
	return out
}

func lookupConfigOf(ident *sessionstore.Identity) (*CredentialConfig, bool) {
	c, ok := ident.Credentials["lookup_secret"]
	if !ok {
		return nil, false
	}
	var cfg CredentialConfig
	if err := identity.DecodeConfig(c.Config, &cfg); err != nil {
		return nil, false
	}
	return &cfg, true
}

// HasActive reports whether ident has an unused backup code: backup codes
// count as a second factor while one is unused.
func (m *Method) HasActive(ident *sessionstore.Identity) bool {
	cfg, ok := lookupConfigOf(ident)
	return ok && lookupUnused(cfg) > 0
}

// lookupUnused is the number of codes not yet used.
func lookupUnused(cfg *CredentialConfig) int {
	n := 0
	for _, c := range cfg.RecoveryCodes {
		if c.UsedAt == nil {
			n++
		}
	}
	return n
}

// SettingsNodes adds the buttons of the codes (generate, reveal, disable).
func (m *Method) SettingsNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	// The nodes are rebuilt: no codes are shown any more.
	delete(f.Internal, ShownKey)
	if identity.HasCredential(ident, "lookup_secret") {
		if !m.HasActive(ident) {
			// Every code is used: no longer a second factor. Offer new
			// codes right away (the prompt to set a factor up again).
			f.UI.Nodes = append(f.UI.Nodes, lookupRevealNode(), lookupRegenerateNode(), lookupDisableNode())
			return
		}
		f.UI.Nodes = append(f.UI.Nodes, lookupRevealNode(), lookupDisableNode())
		return
	}
	f.UI.Nodes = append(f.UI.Nodes, lookupRegenerateNode())
}

func lookupRegenerateNode() *node.Node {
	return node.Submit("lookup_secret", "lookup_secret_regenerate", "true", node.Label(1050008, nil))
}
func lookupRevealNode() *node.Node {
	return node.Submit("lookup_secret", "lookup_secret_reveal", "true", node.Label(1050007, nil))
}
func lookupDisableNode() *node.Node {
	return node.Submit("lookup_secret", "lookup_secret_disable", "true", node.Label(1050016, nil))
}
func lookupConfirmNode() *node.Node {
	return node.Submit("lookup_secret", "lookup_secret_confirm", "true", node.Label(1050011, nil))
}

// lookupEntry is one code as shown: the code, or when it was used.
type lookupEntry struct {
	code   string
	usedAt *time.Time
}

// lookupShown is a lookupEntry as sealed on the flow.
type lookupShown struct {
	Code   string     `json:"c,omitempty"`
	UsedAt *time.Time `json:"u,omitempty"`
}

// Backup codes never rest in clear in a stored flow (the README's
// promise). A regenerate or reveal answer shows them in its codes node;
// the flow keeps them sealed (ShownKey, credseal.go) and stores the
// node empty (MaskCodes, applied by saveFlow). Whatever renders the
// flow later for its identity (getSettingsFlow, the built-in page after a
// form post) fills the node in again (showLookupCodes).

// showLookupCodes seals entries on f and puts them in its codes node.
func (m *Method) showLookupCodes(ctx context.Context, f *flow.Flow, entries []lookupEntry, after ...*node.Node) error {
	shown := make([]lookupShown, len(entries))
	for i, en := range entries {
		shown[i] = lookupShown{Code: en.code, UsedAt: en.usedAt}
	}
	plain, err := json.Marshal(shown)
	if err != nil {
		return err
	}
	sealed, err := m.sealer.Seal(ctx, lookupPurpose, f.ID, plain)
	if err != nil {
		return err
	}
	f.Internals()[ShownKey] = sealed
	f.UI.RemoveGroup("lookup_secret")
	f.UI.Nodes = append(f.UI.Nodes, lookupCodesNode(entries))
	f.UI.Nodes = append(f.UI.Nodes, after...)
	return nil
}

// MaskCodes returns f as it may be stored: when it shows codes, a
// copy whose codes node is empty (f itself is not changed).
func MaskCodes(f *flow.Flow) *flow.Flow {
	i := f.UI.IndexByID(lookupCodesNodeID)
	if i < 0 {
		return f
	}
	c := *f
	c.UI.Nodes = slices.Clone(f.UI.Nodes)
	c.UI.Nodes[i] = lookupCodesNode(nil)
	return &c
}

// Reveal fills the codes node of a flow read from the store
// with the sealed codes. Callers have checked that the request's session
// belongs to the flow's identity. Codes that cannot be opened (a rotated
// secret) stay hidden.
func (m *Method) Reveal(ctx context.Context, f *flow.Flow) {
	i := f.UI.IndexByID(lookupCodesNodeID)
	s := f.InternalString(ShownKey)
	if i < 0 || s == "" {
		return
	}
	plain, _, err := m.sealer.Open(ctx, lookupPurpose, f.ID, s)
	if err != nil {
		m.logger.Warn("opening the shown recovery codes", zap.Error(err))
		return
	}
	var shown []lookupShown
	if err := json.Unmarshal(plain, &shown); err != nil {
		return
	}
	entries := make([]lookupEntry, len(shown))
	for j, sh := range shown {
		entries[j] = lookupEntry{code: sh.Code, usedAt: sh.UsedAt}
	}
	f.UI.Nodes[i] = lookupCodesNode(entries)
}

// lookupCodesNode is the text node listing codes (1050015 with one 1050009
// per code, 1050014 for used ones).
func lookupCodesNode(entries []lookupEntry) *node.Node {
	formatted := make([]string, len(entries))
	secrets := make([]node.Text, len(entries))
	for i, en := range entries {
		if en.usedAt != nil {
			t := en.usedAt.UTC()
			formatted[i] = "used"
			secrets[i] = node.NewText(1050014, map[string]any{"used_at": t, "used_at_unix": t.Unix()}, t.String())
			continue
		}
		formatted[i] = en.code
		secrets[i] = node.NewText(1050009, map[string]any{"secret": en.code}, en.code)
	}
	list := strings.Join(formatted, ", ")
	return &node.Node{Type: "text", Group: "lookup_secret", Messages: []node.Text{}, Meta: node.Meta{Label: node.Label(1050010, nil)},
		Attributes: &node.TextAttrs{ID: lookupCodesNodeID, NodeType: "text",
			Text: node.NewText(1050015, map[string]any{"secrets": secrets}, list)}}
}

// UpdateSettings generates, confirms, reveals or disables the codes.
func (m *Method) UpdateSettings(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	body := st.Sub.Body
	confirm, reveal := wire.BodyBool(body, "lookup_secret_confirm"), wire.BodyBool(body, "lookup_secret_reveal")
	disable, regenerate := wire.BodyBool(body, "lookup_secret_disable"), wire.BodyBool(body, "lookup_secret_regenerate")
	if !confirm && !reveal && !disable && !regenerate {
		f.UI.Messages = []node.Text{node.NewText(4010004, nil)}
		return flow.SettingsOutcome{Invalid: true}
	}
	if !m.sessions.Privileged(st.Session) {
		return flow.SettingsOutcome{Privileged: true}
	}
	ctx := r.Context()
	switch {
	case confirm:
		var codes []string
		if s := f.InternalString(lookupInternalKey); s != "" {
			if plain, _, err := m.sealer.Open(ctx, lookupPurpose, f.ID, s); err == nil {
				_ = json.Unmarshal(plain, &codes)
			}
		}
		if len(codes) != lookupCodeCount {
			return flow.SettingsOutcome{Privileged: true, Err: wire.BadRequest("You must (re-)generate recovery backup codes before you can save them.")}
		}
		cfg, err := m.newLookupConfig(ctx, st.Identity.ID, codes)
		if err != nil {
			return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to protect the recovery codes")}
		}
		now := m.now().UTC()
		delete(f.Internal, lookupInternalKey)
		apply := func(cur *sessionstore.Identity) error {
			identity.SetCredential(cur, "lookup_secret", sessionstore.Credential{
				Type: "lookup_secret", Identifiers: []string{cur.ID}, Config: identity.EncodeConfig(cfg),
				CreatedAt: now, UpdatedAt: now,
			})
			return nil
		}
		return flow.SettingsOutcome{Apply: apply, Privileged: true, Success: true, After: func(*flow.Flow) {
			// Kratos counts confirming the codes as completing the method.
			m.kernel.RecordLinkedMethod(r, st, "lookup_secret", "aal2")
		}}
	case reveal:
		cfg, ok := lookupConfigOf(st.Identity)
		if !ok {
			return flow.SettingsOutcome{Privileged: true, Err: wire.BadRequest("Can not reveal lookup codes because you have none.")}
		}
		entries := make([]lookupEntry, 0, len(cfg.RecoveryCodes))
		for _, c := range cfg.RecoveryCodes {
			code := c.Code
			if code == "" {
				plain, _, err := m.sealer.Open(ctx, lookupPurpose, st.Identity.ID, c.Sealed)
				if err != nil {
					return flow.SettingsOutcome{Err: wire.StoreError(err, "The recovery codes could not be read.")}
				}
				code = string(plain)
			}
			entries = append(entries, lookupEntry{code: code, usedAt: c.UsedAt})
		}
		if err := m.showLookupCodes(ctx, f, entries, lookupDisableNode(), lookupRegenerateNode()); err != nil {
			return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to protect the recovery codes")}
		}
		return flow.SettingsOutcome{Privileged: true, Show: true}
	case disable:
		delete(f.Internal, lookupInternalKey)
		return flow.SettingsOutcome{Privileged: true, Success: true, Apply: func(cur *sessionstore.Identity) error {
			if !identity.HasCredential(cur, "lookup_secret") {
				return sessionstore.ErrNoChange // disabled meanwhile
			}
			delete(cur.Credentials, "lookup_secret")
			return nil
		}}
	default: // regenerate
		codes := newLookupCodes()
		plain, _ := json.Marshal(codes)
		sealed, err := m.sealer.Seal(ctx, lookupPurpose, f.ID, plain)
		if err != nil {
			return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to protect the recovery codes")}
		}
		f.Internals()[lookupInternalKey] = sealed
		entries := make([]lookupEntry, len(codes))
		for i, c := range codes {
			entries[i] = lookupEntry{code: c}
		}
		if err := m.showLookupCodes(ctx, f, entries, lookupConfirmNode()); err != nil {
			return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to protect the recovery codes")}
		}
		return flow.SettingsOutcome{Privileged: true, Show: true}
	}
}

// newLookupConfig hashes and seals codes for identityID.
func (m *Method) newLookupConfig(ctx context.Context, identityID string, codes []string) (*CredentialConfig, error) {
	cfg := &CredentialConfig{Salt: token.RandomString(16, token.Alnum)}
	for _, c := range codes {
		sealed, err := m.sealer.Seal(ctx, lookupPurpose, identityID, []byte(c))
		if err != nil {
			return nil, err
		}
		macs, err := m.sealer.MACs(ctx, lookupPurpose, lookupMACInput(identityID, cfg.Salt, c))
		if err != nil {
			return nil, err
		}
		cfg.RecoveryCodes = append(cfg.RecoveryCodes, Code{Hash: macs[0], Sealed: sealed})
	}
	return cfg, nil
}

// LoginNodes adds the code input of an aal2 login flow.
func (m *Method) LoginNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if !identity.HasCredential(ident, "lookup_secret") {
		return
	}
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("lookup_secret", "lookup_secret", "text", node.Label(1010007, nil)).Value("").Required(),
		node.Submit("lookup_secret", "method", "lookup_secret", node.Label(1010010, nil)))
}

// lookupMatch finds the index of code among the stored codes, comparing
// every entry in constant time; -1 when none matches.
func (m *Method) lookupMatch(ctx context.Context, identityID string, cfg *CredentialConfig, code string) (int, error) {
	macs, err := m.sealer.MACs(ctx, lookupPurpose, lookupMACInput(identityID, cfg.Salt, code))
	if err != nil {
		return -1, err
	}
	found := -1
	for i, c := range cfg.RecoveryCodes {
		hit := 0
		if c.Code != "" {
			hit |= subtle.ConstantTimeCompare([]byte(c.Code), []byte(code))
		}
		for _, m := range macs {
			hit |= subtle.ConstantTimeCompare([]byte(c.Hash), []byte(m))
		}
		if hit == 1 && found < 0 {
			found = i
		}
	}
	return found, nil
}

// lookupUsedKey is the single-use marker of one stored code.
func lookupUsedKey(identityID string, c Code) string {
	h := c.Hash
	if h == "" {
		h = hex.EncodeToString(token.Hash(c.Code))
	}
	return identityID + "." + h
}

// Login checks a backup code, used once (flow.LoginMethod).
func (m *Method) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	ctx := r.Context()
	ident := st.Identity
	f.UI.SetValue("lookup_secret", "")
	cfg, ok := lookupConfigOf(ident)
	if !ok {
		f.UI.Messages = []node.Text{node.NewText(4000014, nil)}
		return nil, nil
	}
	code := strings.ToLower(strings.TrimSpace(wire.BodyString(st.Sub.Body, "lookup_secret")))
	if code == "" {
		f.UI.AddNodeMessage("lookup_secret", node.NewText(4000002, map[string]any{"property": "lookup_secret"}, "lookup_secret"))
		return nil, nil
	}
	rv, ee := m.kernel.ReserveSecondFactor(r, ident.ID)
	if ee != nil {
		return nil, ee
	}
	i, err := m.lookupMatch(ctx, ident.ID, cfg, code)
	if err != nil {
		rv.Release() // not evaluated
		return nil, wire.StoreError(err, "unable to check the recovery code")
	}
	if i < 0 {
		f.UI.Messages = []node.Text{node.NewText(4000016, nil)}
		return nil, nil
	}
	if cfg.RecoveryCodes[i].UsedAt != nil {
		f.UI.Messages = []node.Text{node.NewText(4000012, nil)}
		return nil, nil
	}
	// The marker is created in a transaction that fails when it exists:
	// of concurrent uses of one code exactly one gets past this point.
	now := m.now().UTC().Round(time.Second)
	err = m.store.UpdateRecord(ctx, lookupUsedNS, lookupUsedKey(ident.ID, cfg.RecoveryCodes[i]),
		func(old []byte) ([]byte, time.Duration, error) {
			if old != nil {
				return nil, 0, errLookupUsed
			}
			return []byte(now.Format(time.RFC3339)), 0, nil
		})
	if errors.Is(err, errLookupUsed) {
		f.UI.Messages = []node.Text{node.NewText(4000012, nil)}
		return nil, nil
	}
	if err != nil {
		rv.Release() // not evaluated
		return nil, wire.StoreError(err, "unable to record the recovery code use")
	}
	rv.SecondFactorPassed()
	// Record used_at on the identity as it is now, so a concurrent change
	// (another code, a settings update, a deactivation) is kept.
	usedKey := lookupUsedKey(ident.ID, cfg.RecoveryCodes[i])
	fresh, err := m.store.ModifyIdentity(ctx, ident.ID, func(cur *sessionstore.Identity) error {
		fcfg, ok := lookupConfigOf(cur)
		if !ok {
			return sessionstore.ErrNoChange
		}
		changed := false
		for j, c := range fcfg.RecoveryCodes {
			if lookupUsedKey(ident.ID, c) == usedKey && c.UsedAt == nil {
				fcfg.RecoveryCodes[j].UsedAt = &now
				changed = true
			}
		}
		if !changed {
			return sessionstore.ErrNoChange
		}
		cred := cur.Credentials["lookup_secret"]
		cred.Config = identity.EncodeConfig(fcfg)
		cred.UpdatedAt = now
		cur.Credentials["lookup_secret"] = cred
		cur.UpdatedAt = now
		return nil
	})
	if err != nil {
		if errors.Is(err, sessionstore.ErrNotFound) {
			return nil, wire.Internal("unable to load the identity")
		}
		// The use is recorded in lookupUsedNS already; used_at is what
		// reveal shows.
		m.logger.Error("recording a used recovery code", zap.Error(err))
		if fresh, err = m.store.GetIdentity(ctx, ident.ID); err != nil {
			return nil, wire.StoreError(err, "unable to load the identity")
		}
	}
	return fresh, nil
}

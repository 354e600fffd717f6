package totp

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/token"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The totp method: an authenticator app as second factor (RFC 6238, SHA1,
// 6 digits, 30 s, one period of clock skew either way).
//
// Settings: while no app is linked the flow shows a QR code and the secret
// of a key generated for that flow; the key stays on the flow
// (Internal["totp_url"], sealed) until a correct code links it. Linking
// stores credential "totp" {totp_url} (the URL sealed: token.Sealer)
// and upgrades the current session to aal2, as Kratos does.

// Method is the totp method: an authenticator app as a second factor.
type Method struct {
	enabled  func() bool
	issuer   string
	kernel   *flow.Kernel
	sessions *session.Manager
	store    sessionstore.Storage
	schemas  *identity.Schemas
	sealer   *token.Sealer
	logger   *zap.Logger
	now      func() time.Time
}

// New returns the totp method. issuer names the keys in authenticator
// apps; enabled reports whether the configuration turns the method on.
func New(enabled func() bool, issuer string, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage,
	schemas *identity.Schemas, sealer *token.Sealer, logger *zap.Logger, now func() time.Time) *Method {
	return &Method{enabled: enabled, issuer: issuer, kernel: k, sessions: sessions, store: store, schemas: schemas,
		sealer: sealer, logger: logger, now: now}
}

// ID is "totp".
func (m *Method) ID() string { return "totp" }

// Enabled reports whether the configuration turns the method on.
func (m *Method) Enabled() bool { return m.enabled() }

// FirstFactor is false: an app code never signs in alone.
func (m *Method) FirstFactor() bool { return false }

// SecondFactor is true.
func (m *Method) SecondFactor() bool { return true }

// HasActive reports whether ident has an app linked.
func (m *Method) HasActive(ident *sessionstore.Identity) bool {
	_, ok := ident.Credentials["totp"]
	return ident != nil && ok
}

// Interface guards.
var (
	_ flow.LoginMethod    = (*Method)(nil)
	_ flow.SettingsMethod = (*Method)(nil)
)

const (
	// Purpose keys the sealing of TOTP keys.
	Purpose = "totp"
	// InternalKey holds a settings flow's key until a code links it.
	InternalKey = "totp_url"
	totpPNGSize = 256
)

type totpConfig struct {
	// TOTPURL is the otpauth:// key URL, sealed (a plain otpauth:// URL,
	// m.g. imported from Kratos, is read too).
	TOTPURL string `json:"totp_url"`
}

// totpIssuer is the issuer shown by authenticator apps.
func (m *Method) totpIssuer(*http.Request) string { return m.issuer }

// totpAccountName is the trait marked credentials.totp.account_name, else
// the login identifier, else the identity id.
func (m *Method) totpAccountName(ident *sessionstore.Identity) string {
	traits, sch := identity.TraitsOf(ident), m.schemas.Of(ident)
	for _, f := range sch.Fields {
		if !f.TOTPAccountName {
			continue
		}
		if v, ok := identity.LookupPath(traits, f.Path); ok {
			if s, ok := v.(string); ok && strings.TrimSpace(s) != "" {
				return s
			}
		}
	}
	if ids := sch.Identifiers(traits, "password"); len(ids) > 0 {
		return ids[0]
	}
	return ident.ID
}

// pendingTOTPKey returns the flow's not yet linked key, creating one.
func (m *Method) pendingTOTPKey(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) (*otp.Key, error) {
	ctx := r.Context()
	if s := f.InternalString(InternalKey); s != "" {
		if plain, _, err := m.sealer.Open(ctx, Purpose, f.ID, s); err == nil {
			if k, err := otp.NewKeyFromURL(string(plain)); err == nil {
				return k, nil
			}
		}
	}
	k, err := totp.Generate(totp.GenerateOpts{Issuer: m.totpIssuer(r), AccountName: m.totpAccountName(ident)})
	if err != nil {
		return nil, err
	}
	sealed, err := m.sealer.Seal(ctx, Purpose, f.ID, []byte(k.URL()))
	if err != nil {
		return nil, err
	}
	f.Internals()[InternalKey] = sealed
	return k, nil
}

func totpQRDataURI(k *otp.Key) (string, error) {
	img, err := k.Image(totpPNGSize, totpPNGSize)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// SettingsNodes adds the linked app's unlink button, or the QR code, the
// secret and the code input of a new key.
func (m *Method) SettingsNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if identity.HasCredential(ident, "totp") {
		f.UI.Nodes = append(f.UI.Nodes,
			node.Submit("totp", "totp_unlink", "true", node.Label(1050004, nil)).Required())
		return
	}
	k, err := m.pendingTOTPKey(r, f, ident)
	if err != nil {
		m.logger.Error("generating a TOTP key", zap.Error(err))
		return
	}
	src, err := totpQRDataURI(k)
	if err != nil {
		m.logger.Error("rendering the TOTP QR code", zap.Error(err))
		return
	}
	secret := k.Secret()
	f.UI.Nodes = append(f.UI.Nodes,
		&node.Node{Type: "img", Group: "totp", Messages: []node.Text{}, Meta: node.Meta{Label: node.Label(1050005, nil)},
			Attributes: &node.ImageAttrs{ID: "totp_qr", Src: src, Width: totpPNGSize, Height: totpPNGSize, NodeType: "img"}},
		&node.Node{Type: "text", Group: "totp", Messages: []node.Text{}, Meta: node.Meta{Label: node.Label(1050017, nil)},
			Attributes: &node.TextAttrs{ID: "totp_secret_key", Text: node.NewText(1050006, map[string]any{"secret": secret}, secret), NodeType: "text"}},
		node.Input("totp", "totp_code", "text", node.Label(1070006, nil)).Required(),
		node.Submit("totp", "method", "totp", node.Label(1070003, nil)))
}

// UpdateSettings links a new key (a correct code) or unlinks the app.
func (m *Method) UpdateSettings(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	if !m.sessions.Privileged(st.Session) {
		return flow.SettingsOutcome{Privileged: true}
	}
	if identity.HasCredential(st.Identity, "totp") {
		if !wire.BodyBool(st.Sub.Body, "totp_unlink") {
			// Linked already and nothing asked: nothing changes (Kratos).
			return flow.SettingsOutcome{Privileged: true, Success: true}
		}
		return flow.SettingsOutcome{Privileged: true, Success: true, Apply: func(cur *sessionstore.Identity) error {
			if !identity.HasCredential(cur, "totp") {
				return sessionstore.ErrNoChange // unlinked meanwhile
			}
			delete(cur.Credentials, "totp")
			return nil
		}}
	}
	if wire.BodyBool(st.Sub.Body, "totp_unlink") {
		f.UI.Messages = []node.Text{node.NewText(4000011, nil)}
		return flow.SettingsOutcome{Invalid: true, Privileged: true}
	}
	s := f.InternalString(InternalKey)
	plain, _, err := m.sealer.Open(r.Context(), Purpose, f.ID, s)
	if s == "" || err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "Could not find the TOTP key of this flow. Please start a new settings flow.")}
	}
	k, err := otp.NewKeyFromURL(string(plain))
	if err != nil || k.Secret() == "" {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "Could not decode the TOTP key of this flow.")}
	}
	code := strings.TrimSpace(wire.BodyString(st.Sub.Body, "totp_code"))
	if code == "" {
		f.UI.AddNodeMessage("totp_code", node.NewText(4000002, map[string]any{"property": "totp_code"}, "totp_code"))
		return flow.SettingsOutcome{Invalid: true, Privileged: true}
	}
	rv, ee := m.kernel.ReserveSecondFactor(r, st.Identity.ID)
	if ee != nil {
		return flow.SettingsOutcome{Err: ee}
	}
	if !m.totpValid(k, code) {
		f.UI.AddNodeMessage("totp_code", node.NewText(4000008, nil))
		return flow.SettingsOutcome{Invalid: true, Privileged: true}
	}
	rv.Release()
	// Linking does not claim the code's time step (claimTOTPCode): clients
	// written for Kratos sign in with that same code right after linking
	// (the captured Kratos exchanges do). Sign-ins claim it, so it brings
	// one sign-in to aal2, not two.
	sealed, err := m.sealer.Seal(r.Context(), Purpose, st.Identity.ID, []byte(k.URL()))
	if err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to protect the TOTP key")}
	}
	now := m.now().UTC()
	delete(f.Internal, InternalKey)
	apply := func(cur *sessionstore.Identity) error {
		identity.SetCredential(cur, "totp", sessionstore.Credential{
			Type: "totp", Identifiers: []string{cur.ID}, Config: identity.EncodeConfig(totpConfig{TOTPURL: sealed}),
			CreatedAt: now, UpdatedAt: now,
		})
		return nil
	}
	return flow.SettingsOutcome{Apply: apply, Privileged: true, Success: true, After: func(*flow.Flow) {
		// Proving the app's code completes a second factor (Kratos adds
		// totp to the session's authentication methods).
		m.kernel.RecordLinkedMethod(r, st, "totp", "aal2")
	}}
}

// totpValid checks code against k at now with one period of skew.
func (m *Method) totpValid(k *otp.Key, code string) bool {
	_, ok := m.totpStep(k, code)
	return ok
}

// totpStep returns the time step (RFC 6238 counter) whose code is code,
// looking at now and one period either way, comparing in constant time.
func (m *Method) totpStep(k *otp.Key, code string) (uint64, bool) {
	if len(code) != int(k.Digits()) {
		return 0, false
	}
	period := uint64(k.Period())
	if period == 0 {
		period = 30
	}
	now := m.now().UTC().Unix()
	if now < 0 {
		return 0, false
	}
	cur := uint64(now) / period
	var step uint64
	found := false
	for _, c := range []uint64{cur - 1, cur, cur + 1} {
		want, err := hotp.GenerateCodeCustom(k.Secret(), c, hotp.ValidateOpts{Digits: k.Digits(), Algorithm: k.Algorithm()})
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, found = c, true
		}
	}
	return step, found
}

// totpStepNS holds per identity the last time step whose code was
// accepted (a record of its own: identity writes are not transactional
// read-modify-writes, this must be).
const totpStepNS = "totpstep"

var errTOTPReplayed = errors.New("totp: this time step was used already")

// claimTOTPCode accepts a valid code for the identity once: it records the
// code's time step unless that step or a later one was accepted before
// (false). The check and the write are one store transaction, so of
// concurrent submits of one code exactly one gets true.
func (m *Method) claimTOTPCode(ctx context.Context, identityID string, k *otp.Key, code string) (bool, error) {
	step, ok := m.totpStep(k, code)
	if !ok {
		return false, nil
	}
	// Codes of steps up to this one stop being accepted two periods later
	// at the latest (one of skew): four periods of 30 s cover it. A key
	// with a longer period (imported) keeps its tiny record.
	ttl := 2 * time.Minute
	if k.Period() > 30 {
		ttl = 0
	}
	// A right code is claimed whether or not the client is still there
	// (a client that half-closes must not turn the claim into an error
	// answer that tells right codes from wrong ones).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := m.store.UpdateRecord(ctx, totpStepNS, identityID, func(old []byte) ([]byte, time.Duration, error) {
		if last, err := strconv.ParseUint(string(old), 10, 64); err == nil && step <= last {
			return nil, 0, errTOTPReplayed
		}
		return []byte(strconv.FormatUint(step, 10)), ttl, nil
	})
	if errors.Is(err, errTOTPReplayed) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("recording the TOTP time step: %w", err)
	}
	return true, nil
}

// identityTOTPKey decodes the identity's linked key. stale: sealed under
// an older secret or stored in plain text.
func (m *Method) identityTOTPKey(ctx context.Context, ident *sessionstore.Identity) (k *otp.Key, stale bool, err error) {
	var cfg totpConfig
	if err := identity.DecodeConfig(ident.Credentials["totp"].Config, &cfg); err != nil {
		return nil, false, err
	}
	raw := cfg.TOTPURL
	if strings.HasPrefix(raw, "otpauth://") {
		stale = true
	} else {
		plain, old, err := m.sealer.Open(ctx, Purpose, ident.ID, raw)
		if err != nil {
			return nil, false, err
		}
		raw, stale = string(plain), old
	}
	k, err = otp.NewKeyFromURL(raw)
	return k, stale, err
}

// LoginNodes adds the code input of an aal2 login flow.
func (m *Method) LoginNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if !identity.HasCredential(ident, "totp") {
		return
	}
	// As captured from Kratos: value "" and no autocomplete attribute.
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("totp", "totp_code", "text", node.Label(1010006, nil)).Value("").Required(),
		node.Submit("totp", "method", "totp", node.Label(1010009, nil)))
}

// Login checks the code of the identity's app (flow.LoginMethod).
func (m *Method) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	f := st.Sub.Flow
	ident := st.Identity
	if !identity.HasCredential(ident, "totp") {
		f.UI.Messages = []node.Text{node.NewText(4000011, nil)}
		return nil, nil
	}
	f.UI.SetValue("totp_code", "")
	code := strings.TrimSpace(wire.BodyString(st.Sub.Body, "totp_code"))
	if code == "" {
		f.UI.AddNodeMessage("totp_code", node.NewText(4000002, map[string]any{"property": "totp_code"}, "totp_code"))
		return nil, nil
	}
	rv, ee := m.kernel.ReserveSecondFactor(r, ident.ID)
	if ee != nil {
		return nil, ee
	}
	k, stale, err := m.identityTOTPKey(r.Context(), ident)
	if err != nil {
		rv.Release() // not evaluated
		m.logger.Error("reading a TOTP credential", zap.Error(err))
		return nil, wire.StoreError(err, "The TOTP credential could not be read.")
	}
	if !m.totpValid(k, code) {
		f.UI.AddNodeMessage("totp_code", node.NewText(4000008, nil))
		return nil, nil
	}
	if fresh, err := m.claimTOTPCode(r.Context(), ident.ID, k, code); err != nil {
		rv.Release() // not evaluated
		m.logger.Error("accepting a TOTP code", zap.Error(err))
		return nil, wire.StoreError(err, "unable to record the TOTP code")
	} else if !fresh {
		// A code already used (here or by another session): refused like
		// a wrong one. Not counted as a guess: whoever sends it knows it.
		rv.Release()
		f.UI.AddNodeMessage("totp_code", node.NewText(4000008, nil))
		return nil, nil
	}
	rv.SecondFactorPassed()
	if stale {
		// Re-seal under the current secret.
		if sealed, err := m.sealer.Seal(r.Context(), Purpose, ident.ID, []byte(k.URL())); err == nil {
			// Only the key that was checked is re-sealed, on the identity
			// as it is now.
			checked := string(ident.Credentials["totp"].Config)
			up, err := m.store.ModifyIdentity(r.Context(), ident.ID, func(cur *sessionstore.Identity) error {
				c, ok := cur.Credentials["totp"]
				if !ok || string(c.Config) != checked {
					return sessionstore.ErrNoChange
				}
				c.Config = identity.EncodeConfig(totpConfig{TOTPURL: sealed})
				cur.Credentials["totp"] = c
				return nil
			})
			if err != nil {
				m.logger.Warn("re-sealing a TOTP credential", zap.Error(err))
			} else {
				ident = up
			}
		}
	}
	return ident, nil
}

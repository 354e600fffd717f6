package password

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/session"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Method is the password method: sign-in with an identifier and a
// password, re-authentication of a session (refresh), and its part in
// identifier-first login.
type Method struct {
	enabled        bool
	breachCheck    bool
	revokeOnChange bool
	kernel         *flow.Kernel
	sessions       *session.Manager
	store          sessionstore.Storage
	hasher         *identity.Hasher
	schemas        *identity.Schemas
	logger         *zap.Logger
	now            func() time.Time
}

// Config is what the password method takes from the configuration.
type Config struct {
	// Enabled turns the method on (selfservice.methods.password.enabled).
	Enabled bool
	// BreachCheck refuses passwords of the embedded breached list.
	BreachCheck bool
	// RevokeSessionsOnChange ends the identity's other sessions when the
	// password is changed in settings (revoke_active_sessions).
	RevokeSessionsOnChange bool
}

// New returns the password method over the kernel, checking passwords
// with hasher.
func New(cfg Config, k *flow.Kernel, sessions *session.Manager, store sessionstore.Storage, hasher *identity.Hasher,
	schemas *identity.Schemas, logger *zap.Logger, now func() time.Time) *Method {
	return &Method{enabled: cfg.Enabled, breachCheck: cfg.BreachCheck, revokeOnChange: cfg.RevokeSessionsOnChange,
		kernel: k, sessions: sessions, store: store, hasher: hasher, schemas: schemas, logger: logger, now: now}
}

// ID is "password".
func (m *Method) ID() string { return "password" }

// Enabled reports whether the configuration turns the password on.
func (m *Method) Enabled() bool { return m.enabled }

// FirstFactor is true: the password signs in.
func (m *Method) FirstFactor() bool { return true }

// SecondFactor is false.
func (m *Method) SecondFactor() bool { return false }

// HasActive is false: the password is no second factor.
func (m *Method) HasActive(*sessionstore.Identity) bool { return false }

// LoginNodes adds the identifier, the password and the sign-in button.
func (m *Method) LoginNodes(_ *http.Request, f *flow.Flow, _ *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("default", "identifier", "text", m.schemas.Default().IdentifierLabel("password")).Value("").Required(),
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("current-password"),
		node.Submit("password", "method", "password", node.Label(1010022, nil)))
}

// RefreshNodes adds the password and the confirm button (the login flow
// keeps the identifier, hidden).
func (m *Method) RefreshNodes(_ *http.Request, f *flow.Flow, _ *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("current-password"),
		node.Submit("password", "method", "password", node.Label(1010001, nil)))
}

// Login checks the identifier and the password (flow.LoginMethod).
func (m *Method) Login(w http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	return m.login(w, r, st)
}

// Offered reports whether identifier-first login offers the password.
func (m *Method) Offered(*http.Request, *flow.Flow) bool { return m.enabled }

// Has reports whether ident has a password for identifier.
func (m *Method) Has(ident *sessionstore.Identity, identifier string) bool {
	return identity.HasIdentifier(ident, "password", identifier)
}

// FirstScreenNodes adds nothing: the identifier is the login flow's.
func (m *Method) FirstScreenNodes(*http.Request, *flow.Flow) {}

// SecondScreenNodes adds the password and the sign-in button.
func (m *Method) SecondScreenNodes(_ *http.Request, f *flow.Flow) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("current-password"),
		node.Submit("password", "method", "password", node.Label(1010022, nil)))
}

// Fast is false: the password always shows the second screen.
func (m *Method) Fast() bool { return false }

// Interface guards.
var (
	_ flow.LoginMethod           = (*Method)(nil)
	_ flow.LoginRefresher        = (*Method)(nil)
	_ flow.IdentifierFirstMethod = (*Method)(nil)
	_ flow.SettingsMethod        = (*Method)(nil)
)

// login is Login: the identifier and the
// password, counted against the identifier and the client before the hash
// comparison, forgiven when they match.
func (m *Method) login(w http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	sub, sess := st.Sub, st.Session
	f := sub.Flow
	identifier := wire.BodyString(sub.Body, "identifier")
	if identifier == "" {
		identifier = wire.BodyString(sub.Body, "password_identifier")
	}
	password := wire.BodyString(sub.Body, "password")
	if f.Refresh && sess != nil {
		if n := f.UI.Find("identifier"); n != nil && identifier == "" {
			identifier, _ = n.Input().Value.(string)
		}
	}
	f.UI.SetValue("identifier", identifier)
	missing := false
	if identifier == "" {
		f.UI.AddNodeMessage("identifier", node.NewText(4000002, map[string]any{"property": "identifier"}, "identifier"))
		missing = true
	}
	if password == "" {
		f.UI.AddNodeMessage("password", node.NewText(4000002, map[string]any{"property": "password"}, "password"))
		missing = true
	}
	if missing {
		return nil, nil
	}
	// The guess is counted before it is checked; a wrong one keeps it.
	rv, lerr := m.kernel.Reserve(r.Context(), "login_id", identity.NormalizeIdentifier(identifier), "login_ip", m.kernel.LimitIP(r))
	if lerr != nil {
		m.kernel.Refuse(w, r, sub, lerr)
		return nil, flow.ErrAnswered
	}
	ident, ok, err := m.checkPassword(r.Context(), identifier, password)
	if err != nil {
		rv.Release() // not evaluated
		if errors.Is(err, identity.ErrHashBusy) {
			wire.WriteError(w, r, identity.HashersBusy())
			return nil, flow.ErrAnswered
		}
		m.logger.Error("password login", zap.Error(err))
		wire.WriteError(w, r, wire.StoreError(err, "unable to verify credentials"))
		return nil, flow.ErrAnswered
	}
	if !ok {
		f.UI.Messages = []node.Text{node.NewText(4000006, nil)}
		return nil, nil
	}
	if !identity.Active(ident) {
		rv.Release() // answered 4010011 by the login flow
		return ident, nil
	}
	rv.Forgive("login_id")
	rv.Release()
	return ident, nil
}

// checkPassword verifies identifier/password. Unknown identifiers cost the
// same hash comparison as wrong passwords (no enumeration by timing).
// Hashes in another format are upgraded on success.
func (m *Method) checkPassword(ctx context.Context, identifier, password string) (*sessionstore.Identity, bool, error) {
	ident, err := m.store.FindIdentityByCredential(ctx, "password", identity.NormalizeIdentifier(identifier))
	if errors.Is(err, sessionstore.ErrNotFound) {
		err := m.hasher.VerifyDummy(ctx, password)
		return nil, false, identity.BusyOnly(err)
	}
	if err != nil {
		return nil, false, fmt.Errorf("find identity: %w", err)
	}
	cred, ok := ident.Credentials["password"]
	if !ok {
		err := m.hasher.VerifyDummy(ctx, password)
		return nil, false, identity.BusyOnly(err)
	}
	var cfg identity.PasswordConfig
	_ = identity.DecodeConfig(cred.Config, &cfg)
	match, err := m.hasher.Verify(ctx, password, cfg.HashedPassword)
	if err != nil || !match {
		return nil, false, identity.BusyOnly(err)
	}
	if m.hasher.NeedsRehash(cfg.HashedPassword) {
		if h, err := m.hasher.Hash(ctx, password); err == nil {
			// The new hash goes into the identity as it is now (hashing
			// takes a while: an admin may have deactivated it meanwhile),
			// and only while it still holds the hash just verified.
			checked := cfg.HashedPassword
			now := m.now().UTC()
			// A client that goes away now must not decide what is stored.
			up, err := m.store.ModifyIdentity(context.WithoutCancel(ctx), ident.ID, func(cur *sessionstore.Identity) error {
				c, ok := cur.Credentials["password"]
				var cc identity.PasswordConfig
				if !ok || identity.DecodeConfig(c.Config, &cc) != nil || cc.HashedPassword != checked {
					return sessionstore.ErrNoChange
				}
				cc.HashedPassword = h
				c.Config = identity.EncodeConfig(cc)
				c.UpdatedAt = now
				cur.Credentials["password"] = c
				return nil
			})
			if err != nil {
				m.logger.Warn("upgrading password hash", zap.Error(err))
			} else {
				return up, true, nil
			}
		}
	}
	// The caller decides on the identity as it is now, not as it was
	// before the hash comparison (its state above all: a deactivation
	// during the comparison must refuse this login). A client that went
	// away meanwhile gets the same answer as one that stayed.
	fresh, err := m.store.GetIdentity(context.WithoutCancel(ctx), ident.ID)
	switch {
	case errors.Is(err, sessionstore.ErrNotFound):
		return nil, false, nil // deleted meanwhile
	case err != nil:
		return nil, false, fmt.Errorf("reload identity: %w", err)
	}
	return fresh, true, nil
}

// SettingsNodes adds the new password and its save button.
func (m *Method) SettingsNodes(_ *http.Request, f *flow.Flow, _ *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("new-password"),
		node.Submit("password", "method", "password", node.Label(1070003, nil)))
}

// UpdateSettings sets a new password: in a privileged session, by the
// policy, not the one in use.
func (m *Method) UpdateSettings(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	f := st.Sub.Flow
	password := wire.BodyString(st.Sub.Body, "password")
	fail := func(t node.Text) flow.SettingsOutcome {
		f.UI.AddNodeMessage("password", t)
		return flow.SettingsOutcome{Invalid: true, Privileged: true}
	}
	if !m.sessions.Privileged(st.Session) {
		return flow.SettingsOutcome{Privileged: true}
	}
	if password == "" {
		return fail(node.NewText(4000002, map[string]any{"property": "password"}, "password"))
	}
	ids := m.schemas.Of(st.Identity).Identifiers(identity.TraitsOf(st.Identity), "password")
	if t := identity.PolicyViolation(password, ids, m.breachCheck); t != nil {
		return fail(*t)
	}
	if cred, had := st.Identity.Credentials["password"]; had {
		var pc identity.PasswordConfig
		_ = identity.DecodeConfig(cred.Config, &pc)
		same, err := m.hasher.Verify(r.Context(), password, pc.HashedPassword)
		if errors.Is(err, identity.ErrHashBusy) {
			return flow.SettingsOutcome{Err: identity.HashersBusy()}
		}
		if same {
			return fail(node.NewText(4000039, nil))
		}
	}
	hash, err := m.hasher.Hash(r.Context(), password)
	if errors.Is(err, identity.ErrHashBusy) {
		return flow.SettingsOutcome{Err: identity.HashersBusy()}
	}
	if err != nil {
		return flow.SettingsOutcome{Err: wire.StoreError(err, "unable to hash the password")}
	}
	now := m.now().UTC()
	return flow.SettingsOutcome{Privileged: true, Success: true, RevokeOtherSessions: m.revokeOnChange, Apply: func(cur *sessionstore.Identity) error {
		cred, had := cur.Credentials["password"]
		if !had {
			cred = sessionstore.Credential{Type: "password", CreatedAt: now}
		}
		cred.Identifiers = m.schemas.Of(cur).Identifiers(identity.TraitsOf(cur), "password")
		cred.Config = identity.EncodeConfig(identity.PasswordConfig{HashedPassword: hash})
		cred.UpdatedAt = now
		identity.SetCredential(cur, "password", cred)
		return nil
	}}
}

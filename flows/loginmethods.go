package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/identity"
	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
	"go.uber.org/zap"
)

// The credential methods as the login flow knows them (flow.LoginMethod),
// until each moves into its package under method/.

// passwordMethod signs in with an identifier and a password, and
// re-authenticates sessions (refresh).
type passwordMethod struct{ e *Engine }

func (m passwordMethod) ID() string                          { return "password" }
func (m passwordMethod) Enabled() bool                       { return m.e.methodEnabled("password") }
func (passwordMethod) FirstFactor() bool                     { return true }
func (passwordMethod) SecondFactor() bool                    { return false }
func (passwordMethod) HasActive(*sessionstore.Identity) bool { return false }
func (m passwordMethod) LoginNodes(_ *http.Request, f *flow.Flow, _ *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("default", "identifier", "text", m.e.schemas.Default().IdentifierLabel("password")).Value("").Required(),
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("current-password"),
		node.Submit("password", "method", "password", node.Label(1010022, nil)))
}
func (passwordMethod) RefreshNodes(_ *http.Request, f *flow.Flow, _ *sessionstore.Identity) {
	f.UI.Nodes = append(f.UI.Nodes,
		node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("current-password"),
		node.Submit("password", "method", "password", node.Label(1010001, nil)))
}
func (m passwordMethod) Login(w http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	return m.e.passwordLogin(w, r, st)
}

// codeMethod signs in with a mailed code (code { passwordless }) and
// completes a second factor with one (code { mfa }).
type codeMethod struct{ e *Engine }

func (m codeMethod) ID() string       { return "code" }
func (m codeMethod) Enabled() bool    { return m.e.methodEnabled("code") }
func (codeMethod) FirstFactor() bool  { return true }
func (codeMethod) SecondFactor() bool { return true }
func (m codeMethod) LoginNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if f.RequestedAAL == "aal2" {
		codeMFANodes(m.e, r, f, ident)
		return
	}
	codeLoginNodes(m.e, r, f, ident)
}
func (m codeMethod) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	return codeLoginVerify(m.e, r, st)
}
func (m codeMethod) HasActive(ident *sessionstore.Identity) bool { return codeMFAActive(m.e, ident) }

// totpMethod completes a second factor with an authenticator app.
type totpMethod struct{ e *Engine }

func (m totpMethod) ID() string       { return "totp" }
func (m totpMethod) Enabled() bool    { return m.e.methodEnabled("totp") }
func (totpMethod) FirstFactor() bool  { return false }
func (totpMethod) SecondFactor() bool { return true }
func (m totpMethod) LoginNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	totpLoginNodes(m.e, r, f, ident)
}
func (m totpMethod) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	return totpLoginVerify(m.e, r, st)
}
func (totpMethod) HasActive(ident *sessionstore.Identity) bool { return hasCredential(ident, "totp") }

// lookupMethod completes a second factor with a backup code.
type lookupMethod struct{ e *Engine }

func (m lookupMethod) ID() string       { return "lookup_secret" }
func (m lookupMethod) Enabled() bool    { return m.e.methodEnabled("lookup_secret") }
func (lookupMethod) FirstFactor() bool  { return false }
func (lookupMethod) SecondFactor() bool { return true }
func (m lookupMethod) LoginNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	lookupLoginNodes(m.e, r, f, ident)
}
func (m lookupMethod) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	return lookupLoginVerify(m.e, r, st)
}
func (m lookupMethod) HasActive(ident *sessionstore.Identity) bool { return lookupActive(m.e, ident) }

// webauthnMethod signs in with a passwordless security key (webauthn {
// passwordless }) and completes a second factor with one.
type webauthnMethod struct{ e *Engine }

func (m webauthnMethod) ID() string       { return "webauthn" }
func (m webauthnMethod) Enabled() bool    { return m.e.methodEnabled("webauthn") }
func (webauthnMethod) FirstFactor() bool  { return true }
func (webauthnMethod) SecondFactor() bool { return true }
func (m webauthnMethod) LoginNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	if f.RequestedAAL == "aal2" {
		webauthnMFANodes(m.e, r, f, ident)
		return
	}
	webauthnPasswordlessNodes(m.e, r, f, ident)
}
func (m webauthnMethod) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	if st.Sub.Flow.RequestedAAL == "aal2" {
		return webauthnMFAVerify(m.e, r, st)
	}
	return webauthnPasswordlessVerify(m.e, r, st)
}
func (m webauthnMethod) HasActive(ident *sessionstore.Identity) bool {
	return webauthnMFAActive(m.e, ident)
}

// passkeyMethod signs in with a passkey.
type passkeyMethod struct{ e *Engine }

func (m passkeyMethod) ID() string                          { return "passkey" }
func (m passkeyMethod) Enabled() bool                       { return m.e.methodEnabled("passkey") }
func (passkeyMethod) FirstFactor() bool                     { return true }
func (passkeyMethod) SecondFactor() bool                    { return false }
func (passkeyMethod) HasActive(*sessionstore.Identity) bool { return false }
func (m passkeyMethod) LoginNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	passkeyLoginNodes(m.e, r, f, ident)
}
func (m passkeyMethod) Login(_ http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
	return passkeyLoginVerify(m.e, r, st)
}

// idFirstMethod is how a first factor takes part in identifier-first
// login. The engine lists them (registerMethods) in the order of the
// second screen's groups: Kratos's strategy order (password, oidc, code,
// passkey, webauthn).
type idFirstMethod struct {
	name string
	// offered reports whether the method is on for flows like f
	// (configuration, flow type).
	offered func(e *Engine, r *http.Request, f *flow.Flow) bool
	// has reports whether ident can sign in with the method using
	// identifier (Kratos's CountActiveFirstFactorCredentials > 0).
	has func(e *Engine, ident *sessionstore.Identity, identifier string) bool
	// first appends the method's nodes to the first screen (optional;
	// passkeys: the conditional-UI challenge).
	first func(e *Engine, r *http.Request, f *flow.Flow)
	// second appends the method's nodes to the second screen.
	second func(e *Engine, r *http.Request, f *flow.Flow)
	// fast: when this is the only method the account has, the second
	// screen is skipped and the method's first-factor loginMethod runs
	// with the identifier right away (Kratos's FastLogin1FA: the sign-in
	// code is mailed). Never with MitigateAccountEnumeration.
	fast bool
}

// idFirstAdapter is an idFirstMethod as the login flow asks it
// (flow.IdentifierFirstMethod), until the methods implement it themselves.
type idFirstAdapter struct {
	e *Engine
	m *idFirstMethod
}

func (a idFirstAdapter) ID() string { return a.m.name }

func (a idFirstAdapter) Offered(r *http.Request, f *flow.Flow) bool {
	return a.m.offered(a.e, r, f)
}

func (a idFirstAdapter) Has(ident *sessionstore.Identity, identifier string) bool {
	return a.m.has(a.e, ident, identifier)
}

func (a idFirstAdapter) FirstScreenNodes(r *http.Request, f *flow.Flow) {
	if a.m.first != nil {
		a.m.first(a.e, r, f)
	}
}

func (a idFirstAdapter) SecondScreenNodes(r *http.Request, f *flow.Flow) { a.m.second(a.e, r, f) }

func (a idFirstAdapter) Fast() bool { return a.m.fast }

func passwordIDFirst() *idFirstMethod {
	return &idFirstMethod{
		name:    "password",
		offered: func(e *Engine, _ *http.Request, _ *flow.Flow) bool { return e.methodEnabled("password") },
		has: func(_ *Engine, ident *sessionstore.Identity, identifier string) bool {
			return identity.HasIdentifier(ident, "password", identifier)
		},
		second: func(_ *Engine, _ *http.Request, f *flow.Flow) {
			f.UI.Nodes = append(f.UI.Nodes,
				node.Input("password", "password", "password", node.Label(1070001, nil)).Required().Autocomplete("current-password"),
				node.Submit("password", "method", "password", node.Label(1010022, nil)))
		},
	}
}

// passwordLogin is the password method's Login: the identifier and the
// password, counted against the identifier and the client before the hash
// comparison, forgiven when they match.
func (e *Engine) passwordLogin(w http.ResponseWriter, r *http.Request, st *flow.LoginState) (*sessionstore.Identity, *wire.Error) {
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
	rv, lerr := e.kernel.Reserve(r.Context(), "login_id", identity.NormalizeIdentifier(identifier), "login_ip", e.kernel.LimitIP(r))
	if lerr != nil {
		e.kernel.Refuse(w, r, sub, lerr)
		return nil, flow.ErrAnswered
	}
	ident, ok, err := e.checkPassword(r.Context(), identifier, password)
	if err != nil {
		rv.Release() // not evaluated
		if errors.Is(err, identity.ErrHashBusy) {
			wire.WriteError(w, r, identity.HashersBusy())
			return nil, flow.ErrAnswered
		}
		e.logger.Error("password login", zap.Error(err))
		wire.WriteError(w, r, wire.Internal("unable to verify credentials"))
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
func (e *Engine) checkPassword(ctx context.Context, identifier, password string) (*sessionstore.Identity, bool, error) {
	ident, err := e.store.FindIdentityByCredential(ctx, "password", identity.NormalizeIdentifier(identifier))
	if errors.Is(err, sessionstore.ErrNotFound) {
		err := e.hasher.VerifyDummy(ctx, password)
		return nil, false, identity.BusyOnly(err)
	}
	if err != nil {
		return nil, false, fmt.Errorf("find identity: %w", err)
	}
	cred, ok := ident.Credentials["password"]
	if !ok {
		err := e.hasher.VerifyDummy(ctx, password)
		return nil, false, identity.BusyOnly(err)
	}
	var cfg identity.PasswordConfig
	_ = identity.DecodeConfig(cred.Config, &cfg)
	match, err := e.hasher.Verify(ctx, password, cfg.HashedPassword)
	if err != nil || !match {
		return nil, false, identity.BusyOnly(err)
	}
	if e.hasher.NeedsRehash(cfg.HashedPassword) {
		if h, err := e.hasher.Hash(ctx, password); err == nil {
			// The new hash goes into the identity as it is now (hashing
			// takes a while: an admin may have deactivated it meanwhile),
			// and only while it still holds the hash just verified.
			checked := cfg.HashedPassword
			now := e.now().UTC()
			// A client that goes away now must not decide what is stored.
			up, err := e.store.ModifyIdentity(context.WithoutCancel(ctx), ident.ID, func(cur *sessionstore.Identity) error {
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
				e.logger.Warn("upgrading password hash", zap.Error(err))
			} else {
				return up, true, nil
			}
		}
	}
	// The caller decides on the identity as it is now, not as it was
	// before the hash comparison (its state above all: a deactivation
	// during the comparison must refuse this login). A client that went
	// away meanwhile gets the same answer as one that stayed.
	fresh, err := e.store.GetIdentity(context.WithoutCancel(ctx), ident.ID)
	switch {
	case errors.Is(err, sessionstore.ErrNotFound):
		return nil, false, nil // deleted meanwhile
	case err != nil:
		return nil, false, fmt.Errorf("reload identity: %w", err)
	}
	return fresh, true, nil
}

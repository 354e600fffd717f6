package flows

import (
	"net/http"
	"time"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/method/lookupsecret"
	"github.com/caddy-kratos/caddy-kratos/flows/method/profile"
	"github.com/caddy-kratos/caddy-kratos/flows/method/totp"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// registerMethods builds the credential methods of each flow in the order
// the flow shows them (Kratos's display order). Every method of the house
// is listed; a flow offers those the configuration enables
// (methodEnabled). Password is offered by the login and registration
// flows themselves.
func (e *Engine) registerMethods() {
	clock := func() time.Time { return e.now() }
	issuer := e.cfg.TOTPIssuer
	if issuer == "" {
		issuer = e.base.Host
	}
	e.lookup = lookupsecret.New(func() bool { return e.methodEnabled("lookup_secret") }, e.kernel, e.sessions, e.store, e.sealer,
		e.logger, clock)
	e.totp = totp.New(func() bool { return e.methodEnabled("totp") }, issuer, e.kernel, e.sessions, e.store, e.schemas, e.sealer,
		e.logger, clock)
	e.loginMethods = []flow.LoginMethod{e.password, codeMethod{e}, e.totp, e.lookup, webauthnMethod{e}, passkeyMethod{e}}
	e.registrationMethods = []flow.RegistrationMethod{
		e.password,
		&registrationMethod{e: e, name: "code", nodes: codeRegistrationNodes, register: codeRegister},
		&registrationMethod{e: e, name: "passkey", nodes: passkeyRegistrationNodes, register: passkeyRegister},
		&registrationMethod{e: e, name: "webauthn", nodes: webauthnRegistrationNodes, register: webauthnRegister},
	}
	e.idFirstMethods = []flow.IdentifierFirstMethod{e.password}
	for _, m := range []*idFirstMethod{codeIDFirst(), passkeyIDFirst(), webauthnIDFirst()} {
		e.idFirstMethods = append(e.idFirstMethods, idFirstAdapter{e, m})
	}
	e.settingsMethods = []flow.SettingsMethod{
		profile.New(e.kernel, e.sessions, e.schemas, func() time.Time { return e.now() }),
		e.password,
		e.lookup,
		e.totp,
		&settingsMethod{e: e, name: "webauthn", nodes: webauthnSettingsNodes, update: webauthnSettingsUpdate},
		&settingsMethod{e: e, name: "passkey", nodes: passkeySettingsNodes, update: passkeySettingsUpdate},
	}
}

// settingsMethod is one group of the settings flow (profile, password,
// totp, …) as the engine lists it (registerMethods), until each method
// implements flow.SettingsMethod itself.
type settingsMethod struct {
	e    *Engine
	name string
	// nodes appends the method's nodes for ident to f.
	nodes func(e *Engine, r *http.Request, f *flow.Flow, ident *sessionstore.Identity)
	// update handles a submit whose method is name.
	update func(e *Engine, r *http.Request, st *flow.SettingsState) flow.SettingsOutcome
}

func (m *settingsMethod) ID() string { return m.name }

func (m *settingsMethod) Enabled() bool { return m.e.methodEnabled(m.name) }

func (m *settingsMethod) SettingsNodes(r *http.Request, f *flow.Flow, ident *sessionstore.Identity) {
	m.nodes(m.e, r, f, ident)
}

func (m *settingsMethod) UpdateSettings(r *http.Request, st *flow.SettingsState) flow.SettingsOutcome {
	return m.update(m.e, r, st)
}

// registrationMethod is a credential offered at sign-up (code, passkey,
// webauthn) as the engine lists it, until each method implements
// flow.RegistrationMethod itself.
type registrationMethod struct {
	e    *Engine
	name string
	// nodes appends the method's nodes to the credential screen.
	nodes func(e *Engine, r *http.Request, f *flow.Flow, traits map[string]any)
	// register handles a submit whose method is name.
	register func(e *Engine, r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome
}

func (m *registrationMethod) ID() string { return m.name }

func (m *registrationMethod) Enabled() bool { return m.e.methodEnabled(m.name) }

func (m *registrationMethod) RegistrationNodes(r *http.Request, f *flow.Flow, traits map[string]any) {
	m.nodes(m.e, r, f, traits)
}

func (m *registrationMethod) Register(r *http.Request, st *flow.RegistrationState) flow.RegistrationOutcome {
	return m.register(m.e, r, st)
}

func (e *Engine) methodEnabled(name string) bool {
	switch name {
	case "profile":
		return true
	case "password":
		return !e.cfg.DisablePassword
	}
	return e.cfg.Methods[name]
}

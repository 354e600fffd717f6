package flows

import (
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/flow"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// The credential methods as the login flow knows them (flow.LoginMethod),
// until each moves into its package under method/.

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

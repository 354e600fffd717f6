package flow

import (
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/node"
	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// Method is a credential method (password, code, totp, lookup_secret,
// webauthn, passkey, profile): one strategy that adds its nodes to the
// flows it serves and handles their submits. The engine lists each flow's
// methods in display order (flows.New); a flow offers those Enabled.
// Methods never import a flow kind or each other, and the flow kinds know
// them only through these interfaces.
type Method interface {
	// ID is the method's name: the method field of its submits, the
	// group of its nodes, and what sessions record when it completes.
	ID() string
	// Enabled reports whether the configuration turns the method on.
	Enabled() bool
}

// LoginMethod is a method of the login flow: it signs in (a first
// factor, aal1 flows), completes a second factor (aal2 flows), or both.
type LoginMethod interface {
	Method
	// FirstFactor reports whether the method signs in.
	FirstFactor() bool
	// SecondFactor reports whether the method completes a second factor.
	SecondFactor() bool
	// LoginNodes adds the method's nodes to a login flow: a first-factor
	// flow (ident nil) or an aal2 flow (the session's identity; asked only
	// when the method may complete that session's second factor).
	LoginNodes(r *http.Request, f *Flow, ident *sessionstore.Identity)
	// Login checks a submit of the method on a flow of a factor it serves
	// (f.RequestedAAL). It returns the identity that passed; or nil after
	// putting messages on the flow (answered 400); ErrShowFlow when the
	// flow moved on to another step (answered 200); ErrAnswered when it
	// answered the request itself; any other error is answered with the
	// kernel's WriteError.
	Login(w http.ResponseWriter, r *http.Request, st *LoginState) (*sessionstore.Identity, *wire.Error)
	// HasActive reports whether ident holds a credential of the method it
	// can still use as a second factor (Kratos's
	// CountActiveMultiFactorCredentials): what the AAL rule asks. Methods
	// that are no second factor answer false.
	HasActive(ident *sessionstore.Identity) bool
}

// LoginRefresher is a login method that re-authenticates the request's
// session (login flows with refresh=true): the password.
type LoginRefresher interface {
	// RefreshNodes adds the method's nodes to a refresh flow of ident.
	RefreshNodes(r *http.Request, f *Flow, ident *sessionstore.Identity)
}

// IdentifierFirstMethod is a first factor's part in identifier-first
// login (selfservice.flows.login.style identifier_first): the first
// screen asks for the identifier, the second shows the methods the
// account can use.
type IdentifierFirstMethod interface {
	ID() string
	// Offered reports whether the method is on for flows like f
	// (configuration, flow type).
	Offered(r *http.Request, f *Flow) bool
	// Has reports whether ident can sign in with the method using
	// identifier (Kratos's CountActiveFirstFactorCredentials > 0).
	Has(ident *sessionstore.Identity, identifier string) bool
	// FirstScreenNodes adds the method's nodes to the first screen
	// (passkeys: the conditional-UI challenge); most add none.
	FirstScreenNodes(r *http.Request, f *Flow)
	// SecondScreenNodes adds the method's nodes to the second screen.
	SecondScreenNodes(r *http.Request, f *Flow)
	// Fast reports whether, when it is the only method the account has,
	// the second screen is skipped and the method's Login runs with the
	// identifier right away (Kratos's FastLogin1FA: the sign-in code is
	// mailed). Never with account enumeration mitigation.
	Fast() bool
}

// LoginState is what a login method's Login sees.
type LoginState struct {
	Sub *Submission
	// Session and Identity are the request's session and its identity
	// (aal2 and refresh flows), nil otherwise.
	Session  *sessionstore.Session
	Identity *sessionstore.Identity
	// AuthMethod is what the method records on the session when it is
	// more than its id and the flow's level (oidc: the provider, and aal2
	// when the provider asserted it). Nil: {ID(), the flow's aal}.
	AuthMethod *sessionstore.AuthMethod
}

// LoginCompleter is a method with a part in every successful login on a
// flow, whichever method signed in: the oidc method links the provider
// account that a sign-in was asked to confirm (account linking). It runs
// before the session is issued; a non-nil *node.Text refuses the login
// with that message (nothing is issued), extra is added to the new
// session's methods.
type LoginCompleter interface {
	LoginCompleted(r *http.Request, f *Flow, ident *sessionstore.Identity) (extra *sessionstore.AuthMethod, refuse *node.Text, err error)
}

// ErrShowFlow is returned by a method when the flow moved on to its next
// step (a code was sent, say): the flow is answered with 200.
var ErrShowFlow = &wire.Error{Code: http.StatusOK}

// ErrAnswered is returned by a method that answered the request itself.
var ErrAnswered = &wire.Error{Code: http.StatusTeapot}

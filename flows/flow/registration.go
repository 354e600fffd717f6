package flow

import (
	"net/http"

	"github.com/caddy-kratos/caddy-kratos/flows/wire"
	"github.com/caddy-kratos/caddy-kratos/sessionstore"
)

// RegistrationMethod is a credential method the registration flow offers
// at sign-up (password, code, passkey, webauthn), in the engine's display
// order. The flow owns the screens around it (profile_first's traits
// screen, "Back"), validates the traits against the schema before a
// method sees them, creates the identity and issues the session.
type RegistrationMethod interface {
	Method
	// RegistrationNodes adds the method's nodes to the credential screen
	// (profile_first) or the one-step form (unified).
	RegistrationNodes(r *http.Request, f *Flow, traits map[string]any)
	// Register handles a submit of the method with traits already valid.
	Register(r *http.Request, st *RegistrationState) RegistrationOutcome
}

// RegistrationRedirector is a registration method whose submit may leave
// for another site before it has traits to check (a social sign-in's
// provider): while StartsElsewhere, the flow does not validate the
// submitted traits — they come back with the provider's answer and are
// validated then.
type RegistrationRedirector interface {
	StartsElsewhere(r *http.Request) bool
}

// RegistrationTraitsForm is a registration method with a form of its own
// for traits that came back incomplete from elsewhere (a provider's
// claims that miss a required trait): TraitsForm replaces the flow's
// nodes with it and reports true, or reports false when it does not apply
// (the flow's first screen is shown instead). The flow adds the schema's
// messages to it.
type RegistrationTraitsForm interface {
	TraitsForm(r *http.Request, f *Flow, traits map[string]any) bool
}

// RegistrationState is what a registration method's Register sees.
type RegistrationState struct {
	Sub    *Submission
	Traits map[string]any
	// Reserve counts the sign-up attempt against the client's limit now
	// (a method about to do expensive work: hash a password, look up
	// identifiers); the flow then does not count it again. A non-nil
	// error is the refusal to answer (Outcome.Refused).
	Reserve func() *wire.Error
	// W is the response, for a method that answers itself (oidc sends the
	// browser to its provider, or to the account-linking login flow):
	// it then returns Outcome.Answered.
	W http.ResponseWriter
}

// RegistrationOutcome is what a registration method decided. Exactly one
// of its fields leads: Creds (create the identity with them), Invalid
// (400 with the flow's messages), Show (200 with the flow: a code was
// sent), Duplicate (an identifier or address is taken: 4000007 on the
// first screen), Refused (the attempt is refused as it stands: a limit's
// 429 with the flow to UIs, a busy hasher's or an unavailable store's 503
// as is, with its Retry-After, even to browsers), Err (an error for the
// error page of browsers).
type RegistrationOutcome struct {
	Creds map[string]sessionstore.Credential
	// Verified lists addresses the method proved (a mailed sign-up code):
	// they start out verified and get no verification mail.
	Verified  []string
	Invalid   bool
	Show      bool
	Duplicate bool
	Refused   *wire.Error
	Err       *wire.Error
	// Answered: the method answered the request itself (st.W).
	Answered bool
	// AuthMethod is what the new session records (nil: the method's id at
	// aal1), MetadataPublic and MetadataAdmin the new identity's metadata
	// (nil: none): a social sign-in's provider and mapper output.
	AuthMethod                    *sessionstore.AuthMethod
	MetadataPublic, MetadataAdmin []byte
}

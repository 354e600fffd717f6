// Package passkey is the passkey method: discoverable WebAuthn
// credentials as a first factor — sign-up, sign-in without an identifier
// (the browser offers passkeys in the identifier field), its part in
// identifier-first login, adding and removing passkeys in settings — on
// its own relying party and authenticator selection. Browser flows only,
// as in Kratos.
//
// Credential "passkey" has the user handle as its identifier: the
// identity id for passkeys added in settings, a random value for those
// made at sign-up (the identity does not exist yet); sign-in finds the
// identity by the handle the authenticator returns.
//
// It imports flows/ceremony, flows/flow, flows/session, flows/identity,
// flows/node, flows/token, flows/wire and sessionstore; never a flow kind
// or another method.
package passkey

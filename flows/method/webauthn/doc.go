// Package webauthn is the webauthn method: security keys as a second
// factor (the default) or, with webauthn { passwordless }, as a first
// factor — sign-up with a key, sign-in with an identifier and its key,
// its part in identifier-first login, adding and removing keys in
// settings — and, with account enumeration mitigation, assertion options
// for a made-up key when an identifier has none. Browser flows only, as
// in Kratos.
//
// A sign counter that does not move forward (go-webauthn's CloneWarning)
// fails the sign-in.
//
// It imports flows/ceremony, flows/flow, flows/session, flows/identity,
// flows/node, flows/token, flows/wire and sessionstore; never a flow kind
// or another method.
package webauthn

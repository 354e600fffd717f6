// Package totp is the totp method: an authenticator app as a second
// factor (RFC 6238). Settings shows a new key as a QR code until a correct
// code links it (the session records the linked method); login checks a
// code once per time step and identity, under the second-factor guessing
// limits. Keys are sealed at rest.
//
// It imports flows/flow, flows/session, flows/identity, flows/node,
// flows/wire and flows/token.
package totp

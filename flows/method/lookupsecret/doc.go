// Package lookupsecret is the lookup_secret method: twelve single-use
// backup codes as a second factor. Settings generates them (shown once,
// kept sealed on the flow and out of the stored flow: MaskCodes and
// Reveal), confirms, reveals and disables them; login checks a code and
// uses it up once, under the second-factor guessing limits. Each code is
// kept as an HMAC and sealed.
//
// It imports flows/flow, flows/session, flows/identity, flows/node,
// flows/wire and flows/token.
package lookupsecret

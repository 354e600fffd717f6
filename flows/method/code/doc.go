// Package code is the code method: sign-in and sign-up with a one-time
// code mailed to an address of the account (code { passwordless }), a
// mailed code as a second factor (code { mfa }), its part in
// identifier-first login, and — with account enumeration mitigation — a
// code "sent" to an unknown address exactly as to a known one, minus the
// mail.
//
// It imports flows/flow, flows/identity, flows/node, flows/token,
// flows/wire and sessionstore; never a flow kind or another method.
package code

// Package password is the password method: a strategy the login flow asks
// to sign in with an identifier and a password (counted against the
// identifier and the client, with hashes of other formats upgraded on
// success), to re-authenticate a session and to take part in
// identifier-first login; the registration flow asks to check a new
// password against the policy and hash it (counted, a taken identifier
// answered before hashing); the settings flow to set a new one (in a
// privileged session, by the policy).
//
// It imports flows/flow, flows/identity, flows/node, flows/session,
// flows/wire and sessionstore; never a flow kind or another method.
package password

// Package password is the password method: a strategy the login flow asks
// to sign in with an identifier and a password (counted against the
// identifier and the client, with hashes of other formats upgraded on
// success), to re-authenticate a session, to take part in
// identifier-first login, and the settings flow asks to set a new one (in
// a privileged session, by the policy). Registration still reaches the
// password through the engine.
//
// It imports flows/flow, flows/identity, flows/node and flows/wire; never
// a flow kind or another method.
package password

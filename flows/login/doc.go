// Package login is the login flow (a flow.Kind): sign-in with the first
// factors of its methods, a second factor for an aal1 session (the AAL
// rule decides which methods may complete it), re-authentication of a
// session (refresh), identifier-first login, and the answer with the new
// or upgraded session.
//
// It imports flows/event (what it records), flows/flow, flows/session, flows/identity, flows/node,
// flows/wire and flows/token; its methods come in as flow.LoginMethod values, never as
// packages.
package login

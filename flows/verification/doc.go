// Package verification is the verification flow (a flow.Kind): an address
// is verified with a mailed code or link. SendForAddress starts one for an
// address a sign-up or a profile change added.
//
// It imports flows/event (what it records), flows/flow, flows/identity, flows/node and flows/wire.
package verification

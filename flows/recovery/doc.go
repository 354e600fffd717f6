// Package recovery is the recovery flow (a flow.Kind): an address proves
// who the account is with a mailed code or link (the kernel's address
// challenges), the mailbox claims the address, a session is issued and a
// settings flow opens for a new password. It also opens the recovery flows
// an administrator created.
//
// It imports flows/event (what it records), flows/flow, flows/session, flows/identity, flows/node and
// flows/wire; the settings flow it ends in is handed in as a function.
package recovery

// Package flow is the kernel every self-service flow and credential method
// stands on: the stored Flow and its wire shapes; creating, reading,
// loading, saving and submitting flows (the Kernel drives the flow kinds
// through the Kind interface: Init, Submit, Disabled); CSRF; return_to;
// one-time codes; address challenges (recovery and verification codes and
// links) and the Mailer; rate limits; and the stored flow errors.
//
// It imports flows/event (what it records), flows/session, flows/identity, flows/node, flows/wire,
// flows/token and the sessionstore interface, never a flow kind or a
// method: they register with it.
package flow

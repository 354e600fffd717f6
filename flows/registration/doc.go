// Package registration is the registration flow (a flow.Kind): the
// traits screen of profile_first or the one-step form of unified, the
// credential methods' nodes and submits (password, code, passkey,
// webauthn, in the engine's order, as flow.RegistrationMethod values),
// the sign-up limit, and the end of every sign-up: the identity created
// (unique identifiers decided in the store's transaction), the session
// issued unless a verified address is required first, verification mails
// for the new addresses, and the answer per client kind.
//
// It imports flows/event (what it records), flows/flow, flows/session, flows/identity, flows/node,
// flows/wire, flows/token and sessionstore; its methods come in as
// flow.RegistrationMethod values, never as packages.
package registration

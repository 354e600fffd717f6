// Package event is the engine's record of what happened: the
// security-relevant events (sign-ins and their failures, sign-ups,
// logouts, revoked sessions, credentials added and removed, recoveries,
// verifications, administrative changes, rate-limit blocks, gate
// denials) as plain values, and the Recorder the flows, methods, the
// session layer and the admin API hand them to. What becomes of them —
// an audit trail, metrics, a log line — is the Sinks' business, which
// caddymodule wires; the engine works the same with none.
//
// An event never carries a secret: no password, code, token or cookie.
// Identifiers that name no identity (a failed sign-in for an unknown
// address) are kept as a keyed hash (Recorder.HashIdentifier), never in
// clear.
//
// It imports only the standard library, so every layer may use it.
package event

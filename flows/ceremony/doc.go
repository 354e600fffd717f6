// Package ceremony is what the webauthn and passkey methods share: the
// WebAuthn relying parties (security keys as second or first factor,
// passkeys with their own relying party), the stored form of their
// credentials (Keys: a user handle and registered keys, Kratos's shape),
// ceremonies kept on a flow and taken at most once, attestation checks,
// the sign-count record after a sign-in, key removal in settings with
// the lock-out rule (never the last way to sign in), and the script node
// of every WebAuthn form.
//
// It imports flows/flow, flows/identity, flows/node, flows/token,
// flows/wire and sessionstore; never a flow kind or a method.
package ceremony

// Package token holds the engine's secrets in motion and at rest: random
// tokens and codes, their hashes (only hashes are stored), the CSRF
// double-submit token and its masks, the session cookie codec (AES-GCM
// over the token and its expiry, allocation-free on the gate's path), and
// credential sealing (TOTP keys, backup codes, ceremony state) and MACs
// under the cipher and cookie secrets.
//
// It imports only the standard library.
package token

// Package provider is the upstream side of the oidc method: the provider
// configuration in Kratos's vocabulary (selfservice.methods.oidc.config.
// providers[]), the authorization URL with state, nonce and PKCE (S256), the
// code exchange, the ID token's verification (signature, issuer, audience,
// authorized party, expiry, nonce, at_hash), the userinfo merge, and the
// claims model Kratos's Jsonnet mappers see as std.extVar('claims').
//
// Providers: generic (OpenID Connect with discovery), google, github,
// microsoft, gitlab, apple and discord, each with the quirks Kratos handles
// (see the README section "Social sign-in").
//
// It owns no flow, cookie or storage: the oidc method (flows/method/oidc)
// keeps the AuthState in its continuity container, checks it against the
// callback and turns the Result into an identity and a session. It imports
// only the standard library, golang.org/x/oauth2, go-oidc and go-jose; never
// flows or Caddy.
package provider

// Package oidc is the social sign-in method (Kratos's oidc strategy): the
// provider buttons of the login, registration and settings flows, the
// trip to the provider and back (the callback, bound to the browser that
// started it by the continuity cookie and to its flow by the state), the
// oidc credential (provider:subject, the provider's tokens sealed at
// rest), sign-up from a provider's claims through a Jsonnet mapper,
// account linking when a provider's address belongs to an existing
// account, and link / unlink in settings.
//
// It may import the flow kernel (flows/flow) and the packages below it
// (identity, node, session, token, wire, event), its own provider and
// mapper packages, and sessionstore; never a flow kind or another method.
package oidc

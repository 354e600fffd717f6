// Package ui is the built-in account pages under the UI prefix (/ui/ by
// default). Login, registration, settings, recovery, verification and error
// render any flow's UI nodes generically (nodes.go), so a method added
// later shows up without template changes; welcome and sessions (list and
// sign out sessions, through the session package) are pages of their own.
// Everything is rendered on the server; JavaScript is only needed for
// WebAuthn and passkeys (ui.js calls the trigger functions of the
// webauthn.js the WebAuthn method serves). Templates and assets are
// embedded and served under the UI prefix, so the Content-Security-Policy
// stays strict: no inline script or style.
//
// Social sign-in (social.go) is drawn from the oidc group's nodes and the
// providers of Config (label, icon, authorization origins; the engine
// fills them from its provider configuration): the provider buttons are a
// form of their own above the other ways, the settings page lists linked
// accounts, and only configured icons and providers enter the page and its
// Content-Security-Policy.
//
// The pages speak the user's language (language.go): the one picked with
// the picker under the card (POST <prefix>language, remembered in a
// cookie), else Accept-Language. Page strings, node labels and flow
// messages come from the locale catalogue, dates are in the browser's
// time zone; the flows themselves keep Kratos's English texts.
//
// It imports flows/flow (loading flows, CSRF, stored errors),
// flows/session, flows/node, flows/wire, flows/token, locale and the
// sessionstore types, never a flow kind or a method: the settings flow
// comes in as the Settings interface, and the engine mounts the handlers
// (Page, Welcome, Asset, RevokeSession, RevokeOtherSessions, SetLanguage)
// in its route table.
package ui

// Package logout is the logout flow: createBrowserLogoutFlow (the logout
// URL with its token, derived from the session), updateLogoutFlow (the
// browser's logout), and performNativeLogout (a native app revoking its
// session token).
//
// It imports flows/event (what it records), flows/flow, flows/session and flows/wire.
package logout

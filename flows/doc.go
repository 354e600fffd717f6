// Package flows is the Kratos self-service engine as plain net/http
// handlers, the one package caddymodule imports: Config, New and Engine
// (which builds the layers bottom-up: sessions, the flow kernel, the
// credential methods in each flow's display order, the flows), the route
// table, CORS, /schemas, and the gate's API (gate.go). It imports nothing
// from Caddy; caddymodule turns Caddy config into a Config and mounts
// Engine.
//
// The flows and methods live in packages below it (login, settings,
// recovery, verification, logout; method/password, method/profile,
// method/totp, method/lookupsecret), standing on flow (the kernel),
// session, identity, node, wire, token and budget. Still in this package,
// until they move: the registration flow, the code, WebAuthn and passkey
// methods and the admin API. The built-in pages are package ui.
//
// It may import every package under flows/ and sessionstore.
package flows

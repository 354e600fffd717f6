// Package flows is the Kratos self-service engine as plain net/http
// handlers, the one package caddymodule imports: Config, New and Engine
// (which builds the layers bottom-up: sessions, the flow kernel, the
// credential methods in each flow's display order, the flows), the route
// table, CORS, /schemas, and the gate's API (gate.go). It imports nothing
// from Caddy; caddymodule turns Caddy config into a Config and mounts
// Engine.
//
// The flows, methods, the admin API and the built-in pages live in
// packages below it (login, registration, settings, recovery,
// verification, logout; method/password, method/profile, method/code,
// method/totp, method/lookupsecret, method/webauthn, method/passkey, with
// ceremony shared by the last two; admin; ui), standing on flow (the
// kernel), session, identity, node, wire, token and budget.
//
// It may import every package under flows/ and sessionstore.
package flows

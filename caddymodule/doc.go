// Package caddymodule is the Caddy glue of caddy-kratos and nothing else:
//
//   - the `kratos` app (app.go): turns Caddy config into a flows.Config,
//     shares one sessionstore.Store per storage directory across config
//     reloads through a caddy.UsagePool, and owns the flows.Engine and
//     the courier.Courier that delivers its mails (started in Start,
//     stopped in Stop; the couriers of old and new configs share the
//     store's outbox during a reload);
//   - the `http.handlers.kratos` handler (handler.go): serves the Kratos
//     public API and the built-in UI pages, passes every other request on;
//   - the `http.handlers.kratos_gate` handler (gate.go): the toSession check
//     in front of an app, setting X-Kratos-Authenticated-Identity-Id;
//   - the Kratos admin API: `admin.api.kratos` on Caddy's admin endpoint
//     (admin.go) and the `http.handlers.kratos_admin` handler on a site of
//     the operator's choosing (admin_handler.go), both the engine's
//     AdminHandler;
//   - Caddyfile parsing and directive order (caddyfile.go), with the value
//     checks shared by the Caddyfile and JSON paths in options.go. The
//     app's options are split by topic (browser_, session_, method_,
//     webauthn_, oidc_, identity_schema_, hardening_, ui_ and mail_options.go,
//     storage.go): each file holds its Caddyfile subdirectives, its JSON
//     types and its part of the mapping to flows.Config. The plain options
//     are flows' own option groups, embedded in App, so they are declared
//     once;
//   - the audit trail (audit_options.go, audit_gate.go, command_audit.go):
//     the app starts an audit.Trail over its storage and hands it to the
//     engine as an event sink and the admin API's audit log; gates tally
//     their refusals in it; `caddy-kratos kratos audit` reads it;
//   - the Prometheus metrics in Caddy's registry (metrics.go): the
//     engine's events as counters, the gates' decisions and latency, the
//     storage's operations (storemetrics.go), caches and outbox.
//
// The business logic lives in flows, sessionstore and audit, which never
// import Caddy.
package caddymodule

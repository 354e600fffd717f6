// Package caddykratos is a Caddy v2 plugin that serves the Ory Kratos
// public self-service API itself, keeps identities and sessions in an
// embedded Badger database, and gates reverse-proxied apps with the same
// session check.
//
// Importing this package registers every caddy-kratos module, so
//
//	xcaddy build --with github.com/caddy-kratos/caddy-kratos@v0.0.0=/path/to/checkout
//
// builds a Caddy with the `kratos` app, the `kratos`, `kratos_gate` and
// `kratos_admin` HTTP handlers and the admin.api.kratos admin routes (see
// xcaddy.md). The modules live in package caddymodule.
package caddykratos

import (
	_ "github.com/caddy-kratos/caddy-kratos/caddymodule"
)

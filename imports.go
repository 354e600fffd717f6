// Package caddykratos is a Caddy v2 plugin that serves the Ory Kratos
// public self-service API itself, keeps identities and sessions in an
// embedded Badger database, and gates reverse-proxied apps with the same
// session check.
//
// Importing this package registers every caddy-kratos module, so
//
//	xcaddy build --with github.com/caddy-kratos/caddy-kratos
//
// builds a Caddy with the `kratos` app and the `kratos` and `kratos_gate`
// HTTP handlers. The modules live in package caddymodule.
package caddykratos

import (
	_ "github.com/caddy-kratos/caddy-kratos/caddymodule"
)

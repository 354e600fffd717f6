// Command caddy-kratos is a full Caddy with the caddy-kratos modules built in:
// what `xcaddy build --with github.com/caddy-kratos/caddy-kratos` produces.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-kratos/caddy-kratos/caddymodule"
)

func main() {
	caddycmd.Main()
}

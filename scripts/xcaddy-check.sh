#!/usr/bin/env bash
# Builds Caddy with this checkout through xcaddy, exactly as xcaddy.md tells
# users to, and checks the result: every caddy-kratos module is listed and
# Caddyfile.example adapts. Run by ./test.sh when XCADDY=1 (and by CI).
#
# xcaddy is installed from the Go module proxy at a pinned version and kept
# in the user's cache, like the linters (scripts/lint.sh). Caddy is pinned
# to the version of go.mod, so the build needs no module that the project
# does not already use.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

xcaddy_version=v0.4.5
bin="${XDG_CACHE_HOME:-$HOME/.cache}/caddy-kratos/tools/xcaddy-${xcaddy_version#v}"
mkdir -p "$bin"
if [ ! -x "$bin/xcaddy" ]; then
	GOFLAGS= GOBIN="$bin" go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$xcaddy_version"
fi

module=github.com/caddy-kratos/caddy-kratos
caddy_version=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The command of xcaddy.md ("From a local checkout"): the module is
# published nowhere, so it is named at the placeholder version v0.0.0,
# which the replace directive xcaddy writes maps to the checkout; without a
# version `go get` would ask the network for the module's latest version.
echo "== xcaddy $xcaddy_version build $caddy_version --with $module@v0.0.0=$root"
start=$(date +%s)
(
	cd "$work"
	GOFLAGS= XCADDY_GO_BUILD_FLAGS="-tags nobadger,nomysql,nopgx -trimpath" \
		"$bin/xcaddy" build "$caddy_version" --output "$work/caddy" \
		--with "$module@v0.0.0=$root"
)
echo "xcaddy build took $(($(date +%s) - start)) s"

modules=$("$work/caddy" list-modules)
status=0
for id in kratos http.handlers.kratos http.handlers.kratos_gate http.handlers.kratos_admin admin.api.kratos; do
	if grep -qx "$id" <<<"$modules"; then
		echo "module $id: listed"
	else
		echo "module $id: MISSING from list-modules" >&2
		status=1
	fi
done

echo "== adapt Caddyfile.example"
if ! "$work/caddy" adapt --config "$root/Caddyfile.example" --adapter caddyfile >"$work/adapted.json"; then
	echo "adapt of Caddyfile.example failed" >&2
	status=1
elif ! grep -q '"handler":"kratos"' "$work/adapted.json"; then
	echo "adapted Caddyfile.example has no kratos handler" >&2
	status=1
fi
exit $status

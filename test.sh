#!/usr/bin/env bash
# The project's test command (README: "./test.sh"). Runs formatting and vet
# checks, then every package's tests, including the end-to-end suite that
# builds ./cmd/caddy-kratos and drives it through the official Ory Go SDK.
set -euo pipefail
cd "$(dirname "$0")"

export GOFLAGS="${GOFLAGS:-} -tags=nobadger,nomysql,nopgx"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -count=1 -timeout 20m "$@" ./...

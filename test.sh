#!/usr/bin/env bash
# The project's test command (README: "./test.sh"). Installs what the tests
# need (Debian's chromium for the browser suite), checks formatting, vet and
# static analysis (staticcheck, gosec), runs every package's tests —
# including the end-to-end suites that build ./cmd/caddy-kratos and drive it
# through the official Ory Go SDK and a headless Chromium — and then each
# fuzz target for a few seconds.
set -euo pipefail
cd "$(dirname "$0")"

export GOFLAGS="${GOFLAGS:-} -tags=nobadger,nomysql,nopgx"

./scripts/install-test-deps.sh

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
./scripts/lint.sh
go test -count=1 -timeout 20m "$@" ./...
FUZZTIME="${FUZZTIME:-3s}" ./scripts/fuzz.sh

#!/usr/bin/env bash
# Static analysis: staticcheck and gosec, installed from the Go module proxy
# at pinned versions (the vulnerability database govulncheck
# needs is not reachable from these machines, so it is not run). The tools
# are kept in the user's cache, keyed by version, so a fresh clone on the
# same machine does not build them again.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${XDG_CACHE_HOME:-$HOME/.cache}/caddy-kratos/tools/staticcheck-0.8.2-gosec-2.30.0"
mkdir -p "$bin"
if [ ! -x "$bin/staticcheck" ]; then
	GOFLAGS= GOBIN="$bin" go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi
if [ ! -x "$bin/gosec" ]; then
	GOFLAGS= GOBIN="$bin" go install github.com/securego/gosec/v2/cmd/gosec@v2.30.0
fi
tags="nobadger,nomysql,nopgx"
echo "== staticcheck"
"$bin/staticcheck" -tags "$tags" ./...
echo "== gosec"
# Findings that are justified are marked in the code with #nosec and the
# reason; test files are excluded (they build fixtures on purpose).
"$bin/gosec" -quiet -tags "$tags" -exclude-dir=e2e -exclude-dir=scripts ./...

#!/usr/bin/env bash
# Runs every native fuzz target of the project for a bounded time each
# (default 5s; FUZZTIME=1m ./scripts/fuzz.sh for a longer session). Seed
# corpora are committed under <package>/testdata/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-5s}"
for pkg in ./flows; do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		echo "== fuzz $pkg $target ($fuzztime)"
		go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"
	done
done

#!/usr/bin/env bash
# Captures the reference exchanges (../shared/tools/capture.py) from our
# gateway and compares them field by field with the samples captured from a
# real Kratos (../shared/tools/compare.py). Needs python3 and the shared/
# folder beside this repository. Loopback ports 4433/4434 (gateway),
# 1025/8025 (mail catcher).
#
#	./scripts/compat/run.sh            # summary
#	./scripts/compat/run.sh -v         # every differing fact
set -euo pipefail
cd "$(dirname "$0")/../.."
shared="${SHARED_DIR:-../shared}"
work=$(mktemp -d)
cleanup() {
	# Stop the servers and wait for them before removing their directory
	# (Badger would retry flushing into a deleted directory forever).
	local pids
	pids=$(jobs -p)
	if [ -n "$pids" ]; then
		kill $pids 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 $pids 2>/dev/null || break
			sleep 0.1
		done
		kill -9 $pids 2>/dev/null || true
		wait 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
if curl -fs http://127.0.0.1:4433/health/alive >/dev/null 2>&1; then
	echo "compat: something already listens on 127.0.0.1:4433; stop it first" >&2
	exit 1
fi
go build -tags nobadger,nomysql,nopgx -o "$work/caddy-kratos" ./cmd/caddy-kratos
go build -o "$work/mailcatcher" ./scripts/mailcatcher
"$work/mailcatcher" -smtp 127.0.0.1:1025 -http 127.0.0.1:8025 >"$work/mail.log" 2>&1 &
COMPAT_DIR="$work" "$work/caddy-kratos" run --config scripts/compat/Caddyfile --adapter caddyfile >"$work/caddy.log" 2>&1 &
for _ in $(seq 1 100); do
	curl -fs http://127.0.0.1:4433/health/ready >/dev/null 2>&1 && break
	sleep 0.1
done
mkdir -p "$work/out"
OUT_DIR="$work/out" PUBLIC_PORT=4433 MAIL_PORT=8025 python3 "$shared/tools/capture.py" || echo "capture stopped early (see above): that exchange is the next gap"
python3 "$shared/tools/compare.py" "$shared/spec/samples" "$work/out" "$@"

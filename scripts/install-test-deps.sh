#!/usr/bin/env bash
# Installs what the browser end-to-end tests (e2e/ui_test.go) need:
# Debian's chromium, only when /usr/bin/chromium is missing. Needs root
# (or sudo) and apt-get; test.sh calls it before `go test`. Without
# chromium the browser tests skip themselves with a message.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
	echo "install-test-deps: /usr/bin/chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: /usr/bin/chromium missing and apt-get not found; browser tests will be skipped" >&2
	exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		echo "install-test-deps: /usr/bin/chromium missing and not root (no sudo); browser tests will be skipped" >&2
		exit 0
	fi
fi

echo "install-test-deps: /usr/bin/chromium missing; running: apt-get update && apt-get install -y chromium"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y chromium
echo "install-test-deps: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"

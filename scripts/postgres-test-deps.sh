#!/usr/bin/env bash
# Makes sure the PostgreSQL server the tests use answers (issue 14: the
# conformance suite, the courier and the multi-node tests run against a
# real server). test.sh calls it before `go test`, like
# install-test-deps.sh.
#
# KRATOS_TEST_POSTGRES set: that server must answer; nothing is installed.
# Otherwise the default is the project machines' server, 127.0.0.1:5432,
# trust auth, database `test`. Where it does not answer, Debian's
# postgresql is installed (when missing), its cluster started, trust
# allowed for 127.0.0.1 and ::1, and the database `test` created. Needs
# root (or sudo) and apt-get for that; without them the PostgreSQL tests
# skip themselves (they fail instead under CI=true).
set -euo pipefail

# KRATOS_PG_PORT and KRATOS_PG_CLUSTER move the server this script starts
# to another port and cluster name, so the start path can be tried on a
# machine whose own server already runs on 5432 (scripts/postgres-deps-check.sh).
port="${KRATOS_PG_PORT:-5432}"
cluster="${KRATOS_PG_CLUSTER:-main}"
default_dsn="postgres://postgres@127.0.0.1:$port/test?sslmode=disable"
dsn="${KRATOS_TEST_POSTGRES:-$default_dsn}"
say() { echo "postgres-test-deps: $*"; }

answers() {
	if command -v psql >/dev/null 2>&1; then
		psql "$dsn" -Atqc 'SELECT 1' >/dev/null 2>&1
	else
		# No client to ask with: an open port is the best sign available.
		(exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null
	fi
}

if answers; then
	if [ -n "${KRATOS_TEST_POSTGRES:-}" ]; then
		say "the server of KRATOS_TEST_POSTGRES answers"
	else
		say "server answers on 127.0.0.1:$port (database test)"
	fi
	exit 0
fi
if [ -n "${KRATOS_TEST_POSTGRES:-}" ]; then
	say "KRATOS_TEST_POSTGRES is set but its server does not answer" >&2
	exit 1
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo="sudo"
	else
		say "no server on 127.0.0.1:$port and not root (no sudo): the PostgreSQL tests will skip (fail under CI=true)" >&2
		exit 0
	fi
fi

if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
	if ! command -v apt-get >/dev/null 2>&1; then
		say "no server on 127.0.0.1:$port and no apt-get: the PostgreSQL tests will skip (fail under CI=true)" >&2
		exit 0
	fi
	say "no server on 127.0.0.1:$port; running: apt-get update && apt-get install -y postgresql"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update
	$sudo apt-get install -y postgresql
fi

ver=$(ls /etc/postgresql | sort -V | tail -1)
conf="/etc/postgresql/$ver/$cluster"
if [ ! -d "$conf" ]; then
	$sudo pg_createcluster -p "$port" "$ver" "$cluster"
fi
# Trust for loopback TCP, first so it wins over the packaged md5/scram
# lines (test machines only: this is what the project's machines run).
if ! $sudo grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
	$sudo sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
fi
if ! $sudo grep -Eq "^listen_addresses *= *'(localhost|127.0.0.1|\*)" "$conf/postgresql.conf"; then
	echo "listen_addresses = 'localhost'" | $sudo tee -a "$conf/postgresql.conf" >/dev/null
fi
if ! $sudo grep -Eq "^port *= *$port\b" "$conf/postgresql.conf"; then
	echo "port = $port" | $sudo tee -a "$conf/postgresql.conf" >/dev/null
fi
say "starting PostgreSQL $ver"
$sudo pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" start 2>/dev/null ||
	$sudo pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" reload 2>/dev/null || true
for _ in $(seq 1 60); do
	if $sudo runuser -u postgres -- psql -p "$port" -Atqc 'SELECT 1' >/dev/null 2>&1; then
		break
	fi
	sleep 0.5
done
if ! $sudo runuser -u postgres -- psql -p "$port" -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
	$sudo runuser -u postgres -- createdb -p "$port" test
fi
if answers; then
	say "server started on 127.0.0.1:$port (database test, trust auth)"
	exit 0
fi
say "PostgreSQL was started but $default_dsn does not answer" >&2
exit 1

#!/usr/bin/env bash
# Tries the start path of scripts/postgres-test-deps.sh on this machine
# although its own server already answers on 5432: a throwaway cluster
# "ckcheck" on port 5439 is created, configured for trust, started, given
# the database `test` and asked `SELECT 1` through the DSN the tests use;
# then it is dropped. (The apt-get install step runs only where the
# postgresql package is missing.) Needs root or sudo. Not part of test.sh:
# it changes the machine's PostgreSQL clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
ver=$(ls /etc/postgresql | sort -V | tail -1)
cleanup() { $sudo pg_dropcluster --stop "$ver" ckcheck 2>/dev/null || true; }
trap cleanup EXIT
cleanup
KRATOS_PG_PORT=5439 KRATOS_PG_CLUSTER=ckcheck ./scripts/postgres-test-deps.sh
psql "postgres://postgres@127.0.0.1:5439/test?sslmode=disable" -Atc 'SELECT 1' | grep -qx 1
# A second run finds it answering and changes nothing.
KRATOS_PG_PORT=5439 KRATOS_PG_CLUSTER=ckcheck ./scripts/postgres-test-deps.sh | grep -q 'server answers on 127.0.0.1:5439'
echo "postgres-deps-check: a new cluster was created, started and answered on 127.0.0.1:5439; dropped again"

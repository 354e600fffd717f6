#!/usr/bin/env bash
# The two storage engines side by side (issue 14; docs/benchmarks.md,
# "Badger and PostgreSQL"). Not part of ./test.sh.
#
# One Badger store is seeded (scripts/benchtool) and copied into a fresh
# PostgreSQL schema with `caddy-kratos kratos storage copy`, so both
# engines hold the same identities, sessions and secrets and the same
# cookies open on both. Two caddy-kratos processes then run at once, one
# per engine, each serving a gated reverse_proxy and the API; wrk drives
# whoami and the gate against one of them at a time, alternating engines
# round by round. Then password logins and registrations (bcrypt cost
# 12) against each, and bcrypt alone as the yardstick.
#
# The machine this was written for has 2 cores: both servers are pinned
# to one (GOMAXPROCS=1), wrk and PostgreSQL's backends share the other —
# PostgreSQL's work is not counted in the server's CPU, but it is in the
# throughput.
#
# Knobs: SESSIONS=1000 CONNS="20 200" DURATION=10s ROUNDS=3 LOGIN_SECONDS=20
# SERVER_CPU=1 CLIENT_CPU=0 KRATOS_TEST_POSTGRES=<dsn> BENCH_DIR=<dir> KEEP=1
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS=${SESSIONS:-1000}
CONNS=${CONNS:-"20 200"}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
LOGIN_SECONDS=${LOGIN_SECONDS:-20}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
BASE_DSN=${KRATOS_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
WORK=${BENCH_DIR:-$(mktemp -d /tmp/caddy-kratos-bench-storage.XXXXXX)}
mkdir -p "$WORK"
# A database of its own, so PostgreSQL's work for the gateway can be told
# apart from anything else the server does (its backends' CPU, its
# transaction counters).
DB="ck_bench_$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
DSN=$(echo "$BASE_DSN" | sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\1$DB#")

log() { printf '\n== %s\n' "$*" >&2; }
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	psql "$BASE_DSN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

./scripts/postgres-test-deps.sh >&2
if ! command -v wrk >/dev/null 2>&1; then
	log "installing wrk (apt-get)"
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
for t in taskset curl psql; do command -v $t >/dev/null || { echo "bench-storage.sh: $t is required" >&2; exit 1; }; done

log "building caddy-kratos and benchtool"
export GOFLAGS="${GOFLAGS:-} -tags=nobadger,nomysql,nopgx"
go build -trimpath -o "$WORK/caddy-kratos" ./cmd/caddy-kratos
go build -trimpath -o "$WORK/benchtool" ./scripts/benchtool
go test -c -o "$WORK/flows.test" ./flows
CLIENT="taskset -c $CLIENT_CPU"
HZ=$(getconf CLK_TCK)
QUIET_WAIT=${QUIET_WAIT:-60}
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
write_cookies_lua "$WORK/cookies.lua"


# Ports: one block per engine. The seeded cookies open on both: they are
# sealed with the secrets, which the copy carries over.
P_UP=29981
declare -A P_ADMIN=([badger]=29982 [postgres]=29986) P_GATED=([badger]=29983 [postgres]=29987) P_API=([badger]=29984 [postgres]=29988)

log "seeding $SESSIONS sessions in Badger, copying them into PostgreSQL (database $DB)"
"$WORK/benchtool" seed -dir "$WORK/badger" -identities "$SESSIONS" -sessions "$SESSIONS" -sample "$SESSIONS" \
	-public-url "http://127.0.0.1:${P_API[badger]}/" -out "$WORK" >&2
psql "$BASE_DSN" -qc "CREATE DATABASE $DB" >/dev/null
"$WORK/caddy-kratos" kratos storage copy --from "$WORK/badger" --to "$DSN" >&2

write_caddyfile() { # <engine> <storage value>
	cat >"$WORK/Caddyfile.$1" <<EOF
{
	admin 127.0.0.1:${P_ADMIN[$1]}
	auto_https off
	persist_config off
	kratos {
		storage $2
		public_url http://127.0.0.1:${P_API[$1]}/
		dev
		rate_limits off
	}
}
http://127.0.0.1:${P_GATED[$1]} {
	kratos_gate
	reverse_proxy 127.0.0.1:$P_UP {
		transport http {
			keepalive_idle_conns_per_host 512
		}
	}
}
http://127.0.0.1:${P_API[$1]} {
	kratos
}
EOF
}
write_caddyfile badger "$WORK/badger"
write_caddyfile postgres "$DSN"
cat >"$WORK/Caddyfile.upstream" <<EOF
{
	admin off
	auto_https off
	persist_config off
}
http://127.0.0.1:$P_UP {
	respond "hello from upstream"
}
EOF

declare -A PID
start() { # <name> <caddyfile>
	XDG_DATA_HOME="$WORK/xdg-$1" XDG_CONFIG_HOME="$WORK/xdg-$1" GOMAXPROCS=1 \
		taskset -c "$SERVER_CPU" "$WORK/caddy-kratos" run --config "$2" --adapter caddyfile >"$WORK/$1.log" 2>&1 &
	PID[$1]=$!
	pids+=($!)
}
start upstream "$WORK/Caddyfile.upstream"
start badger "$WORK/Caddyfile.badger"
start postgres "$WORK/Caddyfile.postgres"
cookie=$(head -1 "$WORK/cookies.txt")
for e in badger postgres; do
	for _ in $(seq 1 1000); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" -H 'Accept: application/json' "http://127.0.0.1:${P_API[$e]}/sessions/whoami")" = 200 ] && break
		kill -0 "${PID[$e]}" 2>/dev/null || { echo "bench-storage.sh: the $e server exited, see $WORK/$e.log" >&2; exit 1; }
		sleep 0.02
	done
	log "warm-up of $e: one whoami per session (fills the per-node caches)"
	$CLIENT "$WORK/benchtool" warm -url "http://127.0.0.1:${P_API[$e]}/sessions/whoami" -file "$WORK/warm.txt" -workers 8 >&2
done

xacts() { psql "$BASE_DSN" -Atc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB'"; }
RESULTS="$WORK/results.tsv"; : >"$RESULTS" # engine target conns round rps p50 p99 errors cpu_us busy_before
run_wrk() { # <engine> <target> <conns> <round> <url>
	local out c0 c1 rps p50 p99 errs reqs cpu quiet
	quiet=$(wait_quiet)
	c0=$(cpu_ticks "${PID[$1]}")
	out=$(COOKIES="$WORK/cookies.txt" $CLIENT wrk -t1 -c"$3" -d"$DURATION" --latency -s "$WORK/cookies.lua" "$5")
	c1=$(cpu_ticks "${PID[$1]}")
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	p50=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
	p99=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
	errs=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {n+=$NF} /Socket errors:/ {for(i=3;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) n+=$i} END {print n+0}')
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$rps" "$p50" "$p99" "$errs" "$cpu" "$quiet" >>"$RESULTS"
	printf '   %-8s %-6s c=%-3s round %s: %10s req/s  p50 %7.3f ms  p99 %7.3f ms  CPU %6s us/req  errors %s  (machine %s%% busy before)\n' "$1" "$2" "$3" "$4" "$rps" "$p50" "$p99" "$cpu" "$errs" "$quiet" >&2
}

[ "${SKIP_WRK:-0}" = 1 ] && CONNS=""
for c in $CONNS; do
	log "whoami and the gate, $c connections, warm caches"
	for r in $(seq 1 "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then order="badger postgres"; else order="postgres badger"; fi
		for e in $order; do
			run_wrk "$e" whoami "$c" "$r" "http://127.0.0.1:${P_API[$e]}/sessions/whoami"
			run_wrk "$e" gated "$c" "$r" "http://127.0.0.1:${P_GATED[$e]}/"
		done
	done
done

log "bcrypt cost 12 alone (the yardstick), on the server's core"
# Wall time per hash (ns/op) and CPU time per hash: 20 compares plus
# the one hash the benchmark makes first. On a shared or virtual machine
# the CPU time is the steadier yardstick.
TIMEFORMAT='%U %S'
BCRYPT_CPU=$( { time taskset -c "$SERVER_CPU" "$WORK/flows.test" -test.run '^$' -test.bench 'BcryptCost12/compare' \
	-test.benchtime 20x -test.cpu 1 >"$WORK/bcrypt.txt"; } 2>&1 | awk '{printf "%.1f", ($1 + $2) * 1000 / 21}')
BCRYPT_NS=$(awk '/^BenchmarkBcryptCost12/ {print $3}' "$WORK/bcrypt.txt")
declare -A LOGIN REG PGCOST SRVCPU
# pg_cost <before ticks> <before xacts> <line>: PostgreSQL's CPU and
# transactions per operation of a benchtool line ("<n> ... failed").
pg_cost() {
	local ticks; ticks=$(pg_ticks "$BASE_DSN" "$DB")
	sleep 11 # idle backends report their transaction counts within 10 s
	awk -v t=$((ticks - $1)) -v x=$(($(xacts) - $2)) -v hz="$HZ" -v l="$3" \
		'BEGIN{split(l, f, " "); n=f[2]; printf "PostgreSQL %.2f ms CPU and %.1f transactions per operation", t / hz * 1000 / n, x / n}'
}
for e in badger postgres; do
	wait_quiet >/dev/null
	log "password logins on $e, ${LOGIN_SECONDS}s"
	t0=$(pg_ticks "$BASE_DSN" "$DB"); x0=$(xacts); s0=$(cpu_ticks "${PID[$e]}")
	LOGIN[$e]=$($CLIENT "$WORK/benchtool" login -url "http://127.0.0.1:${P_API[$e]}" \
		-email "$(sed -n 1p "$WORK/login.txt")" -password "$(sed -n 2p "$WORK/login.txt")" -workers 4 -d "${LOGIN_SECONDS}s")
	SRVCPU[$e-login]=$(awk -v t=$(($(cpu_ticks "${PID[$e]}") - s0)) -v hz="$HZ" -v l="${LOGIN[$e]}" 'BEGIN{split(l, f, " "); printf "%.1f", t / hz * 1000 / f[2]}')
	PGCOST[$e-login]=$(pg_cost "$t0" "$x0" "${LOGIN[$e]}")
	echo "   ${LOGIN[$e]}; ${PGCOST[$e-login]}" >&2
	wait_quiet >/dev/null
	log "registrations on $e, ${LOGIN_SECONDS}s"
	t0=$(pg_ticks "$BASE_DSN" "$DB"); x0=$(xacts); s0=$(cpu_ticks "${PID[$e]}")
	REG[$e]=$($CLIENT "$WORK/benchtool" register -url "http://127.0.0.1:${P_API[$e]}" -prefix "$e" -workers 4 -d "${LOGIN_SECONDS}s")
	SRVCPU[$e-reg]=$(awk -v t=$(($(cpu_ticks "${PID[$e]}") - s0)) -v hz="$HZ" -v l="${REG[$e]}" 'BEGIN{split(l, f, " "); printf "%.1f", t / hz * 1000 / f[2]}')
	PGCOST[$e-reg]=$(pg_cost "$t0" "$x0" "${REG[$e]}")
	echo "   ${REG[$e]}; ${PGCOST[$e-reg]}" >&2
done

col() { awk -F'\t' -v e="$1" -v t="$2" -v c="$3" -v k="$4" '$1==e && $2==t && $3==c {print $k}' "$RESULTS" | median; }
echo
echo "caddy-kratos storage engines, $(date -u +%Y-%m-%d), $(nproc) CPUs, $SESSIONS sessions; servers GOMAXPROCS=1 on CPU $SERVER_CPU,"
echo "runs started when the machine was below ${QUIET_PCT:-10}% busy or after ${QUIET_WAIT:-60} s (median busy before a run: $(awk -F'\t' '{print $10}' "$RESULTS" | median)%);"
echo "wrk -t1 and PostgreSQL $(psql "$BASE_DSN" -Atc 'SHOW server_version' 2>/dev/null | cut -d' ' -f1) on CPU $CLIENT_CPU (PostgreSQL unpinned), -d $DURATION, median of $ROUNDS rounds"
echo
echo "| target | conns | Badger req/s | PostgreSQL req/s | PG ÷ Badger | Badger p50 / p99 ms | PostgreSQL p50 / p99 ms | server CPU µs/req Badger / PG | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in whoami gated; do for c in $CONNS; do
	awk -v t="$t" -v c="$c" -v br="$(col badger "$t" "$c" 5)" -v pr="$(col postgres "$t" "$c" 5)" \
		-v b50="$(col badger "$t" "$c" 6)" -v b99="$(col badger "$t" "$c" 7)" -v p50="$(col postgres "$t" "$c" 6)" -v p99="$(col postgres "$t" "$c" 7)" \
		-v bc="$(col badger "$t" "$c" 9)" -v pc="$(col postgres "$t" "$c" 9)" -v be="$(col badger "$t" "$c" 8)" -v pe="$(col postgres "$t" "$c" 8)" \
		'BEGIN{printf "| %s | %s | %.0f | %.0f | %.3f | %.3f / %.3f | %.3f / %.3f | %.1f / %.1f | %d / %d |\n", t, c, br, pr, pr/br, b50, b99, p50, p99, bc, pc, be, pe}'
done; done
echo
echo "bcrypt cost 12 alone: $(awk -v ns="$BCRYPT_NS" 'BEGIN{printf "%.1f ms/op = %.2f/s on one core", ns/1e6, 1e9/ns}')"
for e in badger postgres; do
	awk -v e="$e" -v l="${LOGIN[$e]}" -v g="${REG[$e]}" -v ns="$BCRYPT_NS" 'BEGIN{
		split(l, f, " "); for (i in f) if (f[i]=="rate") r=f[i+1]; sub("/s","",r);
		split(g, h, " "); for (i in h) if (h[i]=="rate") q=h[i+1]; sub("/s","",q);
		printf "%-8s login: %s — %.3f of the hash rate\n", e, l, r/(1e9/ns);
		printf "%-8s sign-up: %s — %.3f of the hash rate\n", e, g, q/(1e9/ns)}'
done
echo "postgres login: ${PGCOST[postgres-login]}"
echo "postgres sign-up: ${PGCOST[postgres-reg]}"
echo
echo "CPU per operation (machine noise changes wall-clock rates, not these): one bcrypt hash alone $BCRYPT_CPU ms"
for e in badger postgres; do for op in login reg; do
	awk -v e="$e" -v op="$op" -v c="${SRVCPU[$e-$op]}" -v pg="${PGCOST[$e-$op]}" -v h="$BCRYPT_CPU" 'BEGIN{
		split(pg, f, " "); db = (e == "postgres") ? f[2] : 0;
		printf "%-8s %-5s: gateway %.1f ms + PostgreSQL %.1f ms CPU; hash ÷ total %.3f\n", e, op, c, db, h/(c+db)}'
done; done
echo
echo "raw results: $RESULTS (kept with KEEP=1)"

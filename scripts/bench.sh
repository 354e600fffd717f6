#!/usr/bin/env bash
# Load benchmarks of the gate and whoami (docs/benchmarks.md explains the
# setup and holds the latest numbers). Not part of ./test.sh.
#
# One caddy-kratos process serves five sites on loopback:
#   upstream  respond "hello from upstream" (the app behind both proxies)
#   plain     reverse_proxy upstream
#   gated     kratos_gate + reverse_proxy upstream
#   api       kratos (GET /sessions/whoami)
#   static    respond with a body as large as a whoami answer
# The store is seeded directly (scripts/benchtool) with 1 000 and with
# 1 000 000 sessions; wrk sends each request with the cookie of a session
# drawn at random from the active ones: all 1 000 of the small store; 1 000
# and 100 000 of the million.
# Plain/gated and static/whoami runs alternate, ROUNDS times each; the
# tables show medians.
#
# ENGINE=badger (the default) keeps the store in a Badger directory per
# size. ENGINE=postgres keeps it in PostgreSQL (issue 16: every load target
# on both engines): a database of its own per run, ck_bench_<random>,
# created through KRATOS_TEST_POSTGRES (default: the test server's DSN) and
# dropped at exit unless KEEP=1, so the CPU of its backends can be told
# apart from the rest of the server's; one schema per size (bench_<size>)
# in it, so the sizes stay apart without a database each. The seeding
# goes through the engine's bulk import (benchtool seed -dsn), then a
# VACUUM (ANALYZE) gives the planner statistics and keeps autovacuum from
# starting on the fresh rows during the load runs. Memory figures are the
# gateway process's alone; the database's memory is the database's.
#
# The machine this was written for has 2 cores: the server is pinned to
# one (GOMAXPROCS=1, taskset), wrk (-t1) and the load tools to the other.
# PostgreSQL is not pinned (its backends belong to a server others may
# use too): they may take time on the gateway's core, which shows in
# throughput, not in the gateway's CPU per request; their own CPU for the
# bench database is measured and reported apart.
#
# Knobs (environment): ENGINE=badger|postgres SIZES="1000 1000000"
# CONNS="20 200" DURATION=10s ROUNDS=3 SERVER_CPU=1 CLIENT_CPU=0
# LOGIN_SECONDS=30 SETTLE_SECONDS=15 IDLE_SECONDS=90 QUIET_PCT=10
# QUIET_WAIT=120 KRATOS_TEST_POSTGRES=<dsn> (postgres) PORT_BASE=29990 (the
# six loopback ports from there) BENCH_DIR=<dir> KEEP=1 (keep BENCH_DIR,
# and the database with ENGINE=postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"1000 1000000"}
CONNS=${CONNS:-"20 200"}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
LOGIN_SECONDS=${LOGIN_SECONDS:-30}
ENGINE=${ENGINE:-badger}
case $ENGINE in
badger | postgres) ;;
*) echo "bench.sh: ENGINE is badger or postgres, not \"$ENGINE\"" >&2; exit 2 ;;
esac
WORK=${BENCH_DIR:-$(mktemp -d /tmp/caddy-kratos-bench.XXXXXX)}
mkdir -p "$WORK"
DB="" DB_CREATED=0
if [ "$ENGINE" = postgres ]; then
	BASE_DSN=${KRATOS_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
	DB="ck_bench_$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	DSN=$(echo "$BASE_DSN" | sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\1$DB#")
	# The database name goes into the URL's path; a DSN without one
	# (key=value, or no /db) would seed and serve the base database.
	[ "$DSN" != "$BASE_DSN" ] || { echo "bench.sh: KRATOS_TEST_POSTGRES must be a postgres://host/database URL" >&2; exit 2; }
fi

PORT_BASE=${PORT_BASE:-29990}
P_ADMIN=$PORT_BASE P_UP=$((PORT_BASE + 1)) P_PLAIN=$((PORT_BASE + 2)) P_GATED=$((PORT_BASE + 3)) P_API=$((PORT_BASE + 4)) P_STATIC=$((PORT_BASE + 5))

log() { printf '\n== %s\n' "$*" >&2; }
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	if [ "$DB_CREATED" = 1 ]; then
		if [ "${KEEP:-0}" != 1 ]; then
			psql "$BASE_DSN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
		else
			echo "bench.sh: kept database $DB ($DSN)" >&2
		fi
	fi
	if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- tools -------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
	log "installing wrk (apt-get)"
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
for t in taskset curl; do command -v $t >/dev/null || { echo "bench.sh: $t is required" >&2; exit 1; }; done
if [ "$ENGINE" = postgres ]; then
	./scripts/postgres-test-deps.sh >&2
	command -v psql >/dev/null || { echo "bench.sh: psql is required with ENGINE=postgres" >&2; exit 1; }
fi

log "building caddy-kratos and benchtool"
export GOFLAGS="${GOFLAGS:-} -tags=nobadger,nomysql,nopgx"
go build -trimpath -o "$WORK/caddy-kratos" ./cmd/caddy-kratos
go build -trimpath -o "$WORK/benchtool" ./scripts/benchtool
CLIENT="taskset -c $CLIENT_CPU"
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
write_cookies_lua "$WORK/cookies.lua"


# --- results -------------------------------------------------------------------
RESULTS="$WORK/results.tsv" # case conns target round rps p50ms p99ms errors cpu_us_per_req busy_pct_before gc_pct
: >"$RESULTS"
# ENGINE=postgres: PostgreSQL's side, apart so that results.tsv keeps its
# columns for both engines.
PG_RESULTS="$WORK/postgres.tsv" # case conns target round pg_cpu_us_per_req
PG_SIZES="$WORK/postgres-sizes.tsv" # size vacuum_s schema_size
: >"$PG_RESULTS"; : >"$PG_SIZES"

HZ=$(getconf CLK_TCK)

# run_wrk <case> <conns> <target> <round> <url> <cookies file>: one wrk
# run; records req/s, p50, p99, errors, the server's CPU time per request
# (µs; machine noise skews it less than throughput) and the machine's
# busy percentage just before the run. ENGINE=postgres: also the CPU of
# the bench database's backends per request (postgres.tsv), sampled
# outside the server's CPU window (pg_ticks asks through the base
# database, whose backend is not counted).
run_wrk() {
	local out c0 c1 quiet o0 o1 p0=0 p1=0 pgnote=""
	quiet=$(wait_quiet)
	[ -z "$DB" ] || p0=$(pg_ticks "$BASE_DSN" "$DB")
	c0=$(cpu_ticks "$server_pid"); o0=$(wc -c <"$SERVER_LOG")
	out=$(COOKIES="$6" $CLIENT wrk -t1 -c"$2" -d"$DURATION" --latency -s "$WORK/cookies.lua" "$5")
	c1=$(cpu_ticks "$server_pid"); o1=$(wc -c <"$SERVER_LOG")
	[ -z "$DB" ] || p1=$(pg_ticks "$BASE_DSN" "$DB")
	echo "$out" >"$WORK/wrk-${1//\//_}-$3-c$2-r$4.txt"
	local rps p50 p99 errs reqs cpu
	rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
	p50=$(to_ms "$(echo "$out" | awk '$1=="50%" {print $2}')")
	p99=$(to_ms "$(echo "$out" | awk '$1=="99%" {print $2}')")
	errs=$(echo "$out" | awk '/Non-2xx or 3xx responses:/ {n+=$NF} /Socket errors:/ {for(i=3;i<=NF;i++) if ($i ~ /^[0-9]+,?$/) n+=$i} END {print n+0}')
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}')
	# The GC's share of the server's CPU during this run alone.
	gcpct=$(gc_ms_in "$SERVER_LOG" "$o0" "$o1" | awk -v t=$((c1 - c0)) -v hz="$HZ" '{printf "%.2f", (t > 0 ? $1 / (t / hz * 1000) * 100 : 0)}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$rps" "$p50" "$p99" "$errs" "$cpu" "$quiet" "$gcpct" >>"$RESULTS"
	if [ -n "$DB" ]; then
		local pgcpu
		pgcpu=$(awk -v t=$((p1 - p0)) -v hz="$HZ" -v n="$reqs" 'BEGIN{printf "%.1f", t / hz * 1e6 / n}')
		printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$pgcpu" >>"$PG_RESULTS"
		pgnote="  PostgreSQL CPU $pgcpu us/req"
	fi
	printf '   %-8s c=%-3s round %s: %10s req/s  p50 %7.3f ms  p99 %7.3f ms  CPU %6s us/req  GC %5s%%  errors %s  (machine %s%% busy before)%s\n' "$3" "$2" "$4" "$rps" "$p50" "$p99" "$cpu" "$gcpct" "$errs" "$quiet" "$pgnote" >&2
}

rss_mb() { awk '/^VmRSS:/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }

start_server() { # <size>
	local d="$WORK/$1" p
	# Caddy listens with SO_REUSEPORT: a second server on these ports (an
	# experiment, another bench.sh) would not make this one fail to start,
	# it would take every other connection, with its own store.
	for p in "$P_UP" "$P_PLAIN" "$P_GATED" "$P_API" "$P_STATIC" "$P_ADMIN"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "bench.sh: 127.0.0.1:$p is already in use (another caddy-kratos?); PORT_BASE moves the six ports" >&2
			exit 1
		fi
	done
	SERVER_LOG="$d/server.log"
	# gctrace: one line per collection in server.log, for the GC's share
	# of the server's CPU during the load runs (gc_share).
	XDG_DATA_HOME="$d/xdg" XDG_CONFIG_HOME="$d/xdg" GOMAXPROCS=1 GODEBUG=gctrace=1 \
		taskset -c "$SERVER_CPU" "$WORK/caddy-kratos" run --config "$d/Caddyfile" --adapter caddyfile >"$d/server.log" 2>&1 &
	server_pid=$!
}

stop_server() {
	kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

# wait_ready <size>: polls whoami with a seeded cookie; prints milliseconds
# from the process start to the first 200.
wait_ready() {
	local t0=$1 cookie; cookie=$(head -1 "$WORK/$2/cookies.txt")
	for _ in $(seq 1 1500); do
		if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" -H 'Accept: application/json' "http://127.0.0.1:$P_API/sessions/whoami")" = 200 ]; then
			echo $((($(date +%s%N) - t0) / 1000000)); return 0
		fi
		kill -0 "$server_pid" 2>/dev/null || { echo "bench.sh: server exited, see $WORK/$2/server.log" >&2; exit 1; }
		sleep 0.01
	done
	echo "bench.sh: server not ready after 15 s" >&2; exit 1
}

: >"$WORK/settled.tsv"
: >"$WORK/gc.tsv" # size gc_cpu_ms collections server_cpu_ms
CASES=""
MEM="$WORK/memory.tsv"; : >"$MEM" # size rss_idle_mb rss_loaded_mb coldstart_ms seed_s first_start_ms rss_anon_loaded_mb
LOGIN_LINE="" BCRYPT_LINE="" LOGIN_CPU="" LOGIN_PG_CPU=""

go test -c -o "$WORK/flows.test" ./flows
if [ -n "$DB" ]; then
	log "creating database $DB"
	psql "$BASE_DSN" -qc "CREATE DATABASE $DB" >/dev/null
	DB_CREATED=1
fi
for size in $SIZES; do
	d="$WORK/$size"; mkdir -p "$d"
	idents=$((size < 100000 ? size : 100000))
	sample=$((size < 100000 ? size : 100000))
	if [ -n "$DB" ]; then
		schema="bench_$size"
		seed_to=(-dsn "$DSN" -schema "$schema")
		# The Caddyfile's block form (caddymodule/storage.go, parseStorage)
		# is the one that takes a schema.
		storage_option="storage {
			dsn $DSN
			schema $schema
		}"
	else
		seed_to=(-dir "$d/data")
		storage_option="storage $d/data"
	fi
	log "seeding $size sessions over $idents identities"
	t0=$(date +%s%N)
	$CLIENT "$WORK/benchtool" seed "${seed_to[@]}" -identities "$idents" -sessions "$size" -sample "$sample" \
		-public-url "http://127.0.0.1:$P_API/" -out "$d" >&2
	seed_s=$(awk -v n=$(($(date +%s%N) - t0)) 'BEGIN{printf "%.1f", n/1e9}')
	if [ -n "$DB" ]; then
		# Badger compacts what its bulk load left at the first start; a
		# PostgreSQL bulk load leaves tables without statistics and
		# without a visibility map, which autovacuum would build during
		# the load runs instead. The whole bench database: it holds only
		# these schemas, and an earlier size's is vacuumed already.
		t0=$(date +%s%N)
		psql "$DSN" -qc 'VACUUM (ANALYZE)'
		vacuum_s=$(awk -v n=$(($(date +%s%N) - t0)) 'BEGIN{printf "%.1f", n/1e9}')
		schema_size=$(psql "$DSN" -Atc "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$schema' AND c.relkind = 'r'")
		echo "   seeded in $seed_s s; VACUUM (ANALYZE) $vacuum_s s; schema $schema: $schema_size (tables, indexes, TOAST)" >&2
		printf '%s\t%s\t%s\n' "$size" "$vacuum_s" "$schema_size" >>"$PG_SIZES"
	else
		du -sh "$d/data" >&2
	fi
	body_len=$(wc -c <"$d/whoami.json")
	static_body=$(head -c "$body_len" /dev/zero | tr '\0' 'x')
	cat >"$d/Caddyfile" <<EOF
{
	admin 127.0.0.1:$P_ADMIN
	auto_https off
	persist_config off
	kratos {
		$storage_option
		public_url http://127.0.0.1:$P_API/
		dev
		rate_limits off
	}
}
http://127.0.0.1:$P_UP {
	respond "hello from upstream"
}
http://127.0.0.1:$P_PLAIN {
	reverse_proxy 127.0.0.1:$P_UP {
		transport http {
			keepalive_idle_conns_per_host 512
		}
	}
}
http://127.0.0.1:$P_GATED {
	kratos_gate
	reverse_proxy 127.0.0.1:$P_UP {
		transport http {
			keepalive_idle_conns_per_host 512
		}
	}
}
http://127.0.0.1:$P_API {
	kratos
}
http://127.0.0.1:$P_STATIC {
	header Content-Type "application/json; charset=utf-8"
	respond "$static_body"
}
EOF
	if [ -n "$DB" ]; then
		# "Cold" is the gateway's: PostgreSQL keeps its buffers.
		log "first start after seeding, then a cold restart of the gateway"
	else
		log "first start after seeding (Badger compacts what the bulk load left), then a cold restart"
	fi
	t0=$(date +%s%N); start_server "$size"; first_ms=$(wait_ready "$t0" "$size")
	echo "   first start: first answered whoami after $first_ms ms; RSS $(rss_mb "$server_pid") MB" >&2
	sleep "${SETTLE_SECONDS:-15}"; stop_server
	t0=$(date +%s%N); start_server "$size"; cold_ms=$(wait_ready "$t0" "$size")
	rss_idle=$(rss_mb "$server_pid")
	echo "   restart: first answered whoami after $cold_ms ms; RSS $rss_idle MB" >&2
	log "warm-up: one whoami per identity and per sampled session"
	$CLIENT "$WORK/benchtool" warm -url "http://127.0.0.1:$P_API/sessions/whoami" -file "$d/warm.txt" -workers 16 >&2
	rss_loaded=$(rss_mb "$server_pid")
	echo "   RSS after loading: $rss_loaded MB" >&2
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$rss_idle" "$rss_loaded" "$cold_ms" "$seed_s" "$first_ms" "$(grep -E '^RssAnon' /proc/$server_pid/status | awk '{printf "%.0f", $2/1024}')" >>"$MEM"

	# Active sessions: all of a small store; of the million, 1 000 (the
	# same working set as the small store: only the store size differs)
	# and 100 000 (as many as the session cache holds by default).
	if [ "$size" -le 1000 ]; then actives="$size"; else actives="1000 $sample"; fi
	gc_off=$(wc -c <"$d/server.log"); gc_t0=$(cpu_ticks "$server_pid")
	for active in $actives; do
		head -n "$active" "$d/cookies.txt" >"$d/cookies-$active.txt"
		label="$size/$active"
		CASES="$CASES $label"
		for c in $CONNS; do
			log "$size sessions, $active active, $c connections"
			for r in $(seq 1 "$ROUNDS"); do
				if [ $((r % 2)) = 1 ]; then order="plain gated static whoami"; else order="gated plain whoami static"; fi
				for target in $order; do
					case $target in
					plain) url="http://127.0.0.1:$P_PLAIN/" ;;
					gated) url="http://127.0.0.1:$P_GATED/" ;;
					static) url="http://127.0.0.1:$P_STATIC/" ;;
					whoami) url="http://127.0.0.1:$P_API/sessions/whoami" ;;
					esac
					run_wrk "$label" "$c" "$target" "$r" "$url" "$d/cookies-$active.txt"
				done
			done
		done
	done
	echo "   RSS after the load runs: $(rss_mb "$server_pid") MB" >&2
	# The GC's CPU over all the load runs (gc_ms_in explains the sum).
	gc_ms=$(gc_ms_in "$d/server.log" "$gc_off" "$(wc -c <"$d/server.log")")
	printf '%s\t%s\t%s\n' "$size" "$gc_ms" "$(awk -v t=$(($(cpu_ticks "$server_pid") - gc_t0)) -v hz="$HZ" 'BEGIN{printf "%.1f", t / hz * 1000}')" >>"$WORK/gc.tsv"
	# The Go runtime returns heap it no longer needs over a minute or two.
	sleep "${IDLE_SECONDS:-90}"
	rss_settled=$(rss_mb "$server_pid")
	rss_split=$(awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} END {printf "%.0f anon + %.0f file", a/1024, f/1024}' "/proc/$server_pid/status")
	echo "   RSS ${IDLE_SECONDS:-90}s later: $rss_settled MB ($rss_split)" >&2
	printf '%s\t%s\t%s\n' "$size" "$rss_settled" "$rss_split" >>"$WORK/settled.tsv"

	if [ "$size" = "$(echo "$SIZES" | awk '{print $NF}')" ]; then
		# The yardstick right before the logins, on the server's core.
		log "bcrypt cost 12 alone (go test -bench BcryptCost12/compare -cpu 1 on CPU $SERVER_CPU)"
		BCRYPT_LINE=$(taskset -c "$SERVER_CPU" "$WORK/flows.test" -test.run '^$' -test.bench 'BcryptCost12/compare' \
			-test.benchtime 20x -test.cpu 1 | awk '/^BenchmarkBcryptCost12/ {print $3}')
		echo "   bcrypt compare: $BCRYPT_LINE ns/op" >&2
		log "password login, bcrypt cost 12, ${LOGIN_SECONDS}s"
		p0=0; [ -z "$DB" ] || p0=$(pg_ticks "$BASE_DSN" "$DB")
		c0=$(cpu_ticks "$server_pid")
		LOGIN_LINE=$($CLIENT "$WORK/benchtool" login -url "http://127.0.0.1:$P_API" \
			-email "$(sed -n 1p "$d/login.txt")" -password "$(sed -n 2p "$d/login.txt")" -workers 4 -d "${LOGIN_SECONDS}s")
		LOGIN_CPU=$(awk -v t=$(($(cpu_ticks "$server_pid") - c0)) -v hz="$HZ" -v l="$LOGIN_LINE" \
			'BEGIN{split(l, f, " "); printf "%.1f", t / hz * 1000 / f[2]}')
		if [ -n "$DB" ]; then
			LOGIN_PG_CPU=$(awk -v t=$(($(pg_ticks "$BASE_DSN" "$DB") - p0)) -v hz="$HZ" -v l="$LOGIN_LINE" \
				'BEGIN{split(l, f, " "); printf "%.1f", t / hz * 1000 / f[2]}')
			echo "   $LOGIN_LINE; server CPU $LOGIN_CPU ms/login; PostgreSQL CPU $LOGIN_PG_CPU ms/login" >&2
		else
			echo "   $LOGIN_LINE; server CPU $LOGIN_CPU ms/login" >&2
		fi
	fi
	stop_server
done

# --- report ------------------------------------------------------------------------
col() { awk -F'\t' -v s="$1" -v c="$2" -v t="$3" -v k="$4" '$1==s && $2==c && $3==t {print $k}' "$RESULTS" | median; }
# paired <case> <conns> <a> <b>: the median over rounds of b's req/s over
# a's in the same round. The two runs of a round are adjacent, so this
# cancels the swings of the virtual CPUs between rounds that the ratio
# of two medians keeps.
paired() { awk -F'\t' -v s="$1" -v c="$2" -v a="$3" -v b="$4" '$1==s && $2==c && $3==a {x[$4]=$5} $1==s && $2==c && $3==b {y[$4]=$5}
	END {for (r in x) if ((r in y) && x[r] > 0) print y[r] / x[r]}' "$RESULTS" | median; }

if [ -n "$DB" ]; then
	engine="PostgreSQL $(psql "$BASE_DSN" -Atc 'SHOW server_version' | cut -d' ' -f1) (database $DB, a schema per size)"
else
	engine="Badger"
fi
echo
echo "caddy-kratos load benchmark on $engine, $(date -u +%Y-%m-%d), $(nproc) CPUs ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')),"
if [ -n "$DB" ]; then
	echo "server GOMAXPROCS=1 on CPU $SERVER_CPU, wrk -t1 on CPU $CLIENT_CPU, PostgreSQL unpinned, -d $DURATION, median of $ROUNDS rounds;"
else
	echo "server GOMAXPROCS=1 on CPU $SERVER_CPU, wrk -t1 on CPU $CLIENT_CPU, -d $DURATION, median of $ROUNDS rounds;"
fi
echo "runs started when the machine was below ${QUIET_PCT:-10}% busy (median busy before a run: $(awk -F'\t' '{print $10}' "$RESULTS" | median)%)"
echo
echo "| sessions / active | conns | plain req/s | gated req/s | ratio | plain p99 ms | gated p99 ms | added p99 ms | plain CPU µs/req | gated CPU µs/req | CPU ratio plain/gated | GC % plain / gated | ratio per round (median) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for cs in $CASES; do for c in $CONNS; do
	pr=$(col "$cs" "$c" plain 5); gr=$(col "$cs" "$c" gated 5)
	pp=$(col "$cs" "$c" plain 7); gp=$(col "$cs" "$c" gated 7)
	pc=$(col "$cs" "$c" plain 9); gc=$(col "$cs" "$c" gated 9)
	pg=$(col "$cs" "$c" plain 11); gg=$(col "$cs" "$c" gated 11)
	pr1=$(paired "$cs" "$c" plain gated)
	awk -v s="$cs" -v c="$c" -v pr="$pr" -v gr="$gr" -v pp="$pp" -v gp="$gp" -v pc="$pc" -v gc="$gc" -v pg="$pg" -v gg="$gg" -v pr1="$pr1" \
		'BEGIN{printf "| %s | %s | %.0f | %.0f | %.3f | %.3f | %.3f | %+.3f | %.1f | %.1f | %.3f | %.2f / %.2f | %.3f |\n", s, c, pr, gr, gr/pr, pp, gp, gp-pp, pc, gc, pc/gc, pg, gg, pr1}'
done; done
echo
echo "| sessions / active | conns | static req/s | whoami req/s | ratio | static p50/p99 ms | whoami p50 ms | whoami p99 ms | static / whoami CPU µs/req | GC % static / whoami | ratio per round (median) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for cs in $CASES; do for c in $CONNS; do
	sr=$(col "$cs" "$c" static 5); wr=$(col "$cs" "$c" whoami 5)
	s50=$(col "$cs" "$c" static 6); s99=$(col "$cs" "$c" static 7)
	w50=$(col "$cs" "$c" whoami 6); w99=$(col "$cs" "$c" whoami 7)
	sc=$(col "$cs" "$c" static 9); wc=$(col "$cs" "$c" whoami 9)
	sg=$(col "$cs" "$c" static 11); wg=$(col "$cs" "$c" whoami 11)
	wr1=$(paired "$cs" "$c" static whoami)
	awk -v s="$cs" -v c="$c" -v sr="$sr" -v wr="$wr" -v s50="$s50" -v s99="$s99" -v w50="$w50" -v w99="$w99" -v sc="$sc" -v wc="$wc" -v sg="$sg" -v wg="$wg" -v wr1="$wr1" \
		'BEGIN{printf "| %s | %s | %.0f | %.0f | %.3f | %.3f / %.3f | %.3f | %.3f | %.1f / %.1f | %.2f / %.2f | %.3f |\n", s, c, sr, wr, wr/sr, s50, s99, w50, w99, sc, wc, sg, wg, wr1}'
done; done
first=$(echo "$CASES" | awk '{print $1}')
echo
for cs in $CASES; do
	[ "$cs" = "$first" ] && continue
	for c in $CONNS; do
		awk -v a="$(col "$first" "$c" whoami 7)" -v b="$(col "$cs" "$c" whoami 7)" -v c="$c" -v f="$first" -v l="$cs" \
			'BEGIN{printf "whoami p99 at %s connections: %.3f ms (%s), %.3f ms (%s): x%.2f\n", c, a, f, b, l, b/a}'
	done
done
if [ -n "$DB" ]; then
	pgcol() { awk -F'\t' -v s="$1" -v c="$2" -v t="$3" '$1==s && $2==c && $3==t {print $5}' "$PG_RESULTS" | median; }
	echo
	echo "CPU per request of the gateway and of PostgreSQL's backends for the bench database (from /proc; medians):"
	echo
	echo "| sessions / active | conns | gated µs/req gateway / PostgreSQL | whoami µs/req gateway / PostgreSQL | PostgreSQL µs/req plain / static |"
	echo "|---|---:|---:|---:|---:|"
	for cs in $CASES; do for c in $CONNS; do
		awk -v s="$cs" -v c="$c" -v gc="$(col "$cs" "$c" gated 9)" -v gp="$(pgcol "$cs" "$c" gated)" \
			-v wc="$(col "$cs" "$c" whoami 9)" -v wp="$(pgcol "$cs" "$c" whoami)" -v pp="$(pgcol "$cs" "$c" plain)" -v sp="$(pgcol "$cs" "$c" static)" \
			'BEGIN{printf "| %s | %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f |\n", s, c, gc, gp, wc, wp, pp, sp}'
	done; done
	echo
	echo "| sessions | seed s | VACUUM (ANALYZE) after seeding s | schema size (tables, indexes, TOAST) |"
	echo "|---:|---:|---:|---:|"
	awk -F'\t' 'NR==FNR {seed[$1]=$5; next} {printf "| %s | %s | %s | %s |\n", $1, seed[$1], $2, $3}' "$MEM" "$PG_SIZES"
	echo
	echo "RSS below is the gateway process's alone; PostgreSQL's memory (shared buffers, backends) is the database's."
fi
echo
echo "| sessions | seed s | first start after seeding ms | cold restart to first whoami ms | RSS idle MB | RSS loaded MB (anon) |"
echo "|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s (%s) |\n", $1, $5, $6, $4, $2, $3, $7}' "$MEM"
echo
echo "| sessions | collections in the load runs | GC CPU ms | server CPU ms | GC share of the server's CPU (GODEBUG=gctrace=1) |"
echo "|---:|---:|---:|---:|---:|"
awk -F'\t' '{printf "| %s | %s | %s | %s | %.2f%% |\n", $1, $3, $2, $4, ($4 > 0 ? 100 * $2 / $4 : 0)}' "$WORK/gc.tsv"
echo
echo "| sessions | RSS after the load runs and ${IDLE_SECONDS:-90} s idle MB |"
echo "|---:|---|"
awk -F'\t' '{printf "| %s | %s (%s) |\n", $1, $2, $3}' "$WORK/settled.tsv"
echo
if [ -n "$LOGIN_LINE" ] && [ -n "$BCRYPT_LINE" ]; then
	awk -v l="$LOGIN_LINE" -v ns="$BCRYPT_LINE" -v cpu="$LOGIN_CPU" -v pg="$LOGIN_PG_CPU" 'BEGIN{split(l, f, " "); for (i in f) if (f[i]=="rate") r=f[i+1]; sub("/s","",r);
		printf "password login: %s; server CPU %.1f ms per login%s\n", l, cpu, (pg == "" ? "" : "; PostgreSQL CPU " pg " ms per login");
		printf "bcrypt cost 12 alone: %.1f ms/op = %.2f/s on one core; login/bcrypt throughput ratio %.3f; CPU ratio bcrypt/login %.3f\n", ns/1e6, 1e9/ns, r/(1e9/ns), ns/1e6/cpu}'
fi
echo
echo "raw results: $RESULTS (kept with KEEP=1)"

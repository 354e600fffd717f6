# shellcheck shell=bash
# Shell helpers shared by scripts/bench.sh and scripts/bench-storage.sh
# (sourced, not run). HZ must be set by the caller: HZ=$(getconf CLK_TCK).

# to_ms converts wrk's 1.23ms / 456.00us / 1.20s to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) { sub(/us$/,"",v); print v/1000 } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v+0 } else if (v ~ /s$/) { sub(/s$/,"",v); print v*1000 } else print v }'; }

# cpu_ticks <pid>: user+system CPU time of a process in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wait_quiet: the machine may be shared; wait (up to QUIET_WAIT seconds)
# until the other processes use less than QUIET_PCT % of the CPUs over a
# second, so that they do not run on the server's or wrk's core during a
# run. Prints the busy percentage it saw last.
wait_quiet() {
	local busy=100
	for _ in $(seq 1 "${QUIET_WAIT:-120}"); do
		busy=$(awk '/^cpu / {b=$2+$3+$4+$7+$8+$9; t=b+$5+$6; print b, t}' /proc/stat; sleep 1; awk '/^cpu / {b=$2+$3+$4+$7+$8+$9; t=b+$5+$6; print b, t}' /proc/stat)
		# Unquoted on purpose: the two samples' lines become one awk record.
		# shellcheck disable=SC2086
		busy=$(echo $busy | awk '{printf "%.0f", ($3-$1) * 100 / ($4-$2)}')
		[ "$busy" -lt "${QUIET_PCT:-10}" ] && break
	done
	echo "$busy"
}

# gc_ms_in <log> <from byte> <to byte>: the GC's CPU milliseconds in the
# GODEBUG=gctrace=1 lines a Go process wrote to <log> between two offsets
# ("<sum>\t<collections>"). Per line "a+b/c/d+e ms cpu": the
# stop-the-world phases (a, e), mark assists (b) and background marking
# (c); idle-time marking (d) only uses a core nothing else wanted.
gc_ms_in() {
	tail -c +$(($2 + 1)) "$1" | head -c $(($3 - $2)) | awk '/^gc [0-9]+ @/ {
		for (i = 1; i <= NF; i++) if ($(i+1) == "ms" && $(i+2) == "cpu,") { split($i, p, "+"); split(p[2], m, "/"); s += p[1] + m[1] + m[2] + p[3]; n++ }
	} END { printf "%.1f\t%d", s, n }'
}

# pg_ticks <dsn> <database>: CPU ticks of the PostgreSQL backends serving
# <database>, asked through <dsn> (another database, so the asking
# connection is not counted). The gateways' pools keep their backends
# open for a run; a backend that exits takes its ticks with it. Needs the
# server on this machine (/proc).
pg_ticks() {
	local t=0 p
	for p in $(psql "$1" -Atc "SELECT pid FROM pg_stat_activity WHERE datname = '$2'"); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}

# median of the numbers on standard input ("nan" for none).
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# write_cookies_lua <file>: a wrk script that sends a random line of the
# file named by $COOKIES as the Cookie header of every request.
write_cookies_lua() {
	cat >"$1" <<'LUA'
local cookies = {}
for line in io.lines(os.getenv("COOKIES")) do cookies[#cookies + 1] = line end
local n = #cookies
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
	return wrk.format("GET", nil, { ["Cookie"] = cookies[math.random(n)], ["Accept"] = "application/json" })
end
LUA
}

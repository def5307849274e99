#!/usr/bin/env bash
# redis-server under the shim, on 127.0.0.1 at a free port: redis-benchmark
# loads it (SET, GET, INCR, LPUSH, LPOP, HSET; 20000 requests each), then a
# fixed list of commands must answer exactly as a plain redis-server does;
# the server must run on the shim, shut down cleanly, and its backend
# statistics must show it served the load.
# shellcheck source-path=SCRIPTDIR
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
SERVER=$(need redis-server)
CLI=$(need redis-cli)
BENCH=$(need redis-benchmark)
PID=

stop() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	PID=
}
trap 'stop; rm -rf "$TMP"' EXIT

# start MODE: redis-server in the background on a free port (PORT, PID).
start() {
	local mode=$1 try _
	in_mode "$mode"
	[ "$mode" = shim ] && RUN=("$KALLOC" run --stats -b "$BACKEND" --)
	mkdir -p "$TMP/$mode"
	for try in 1 2 3 4 5; do
		PORT=$((20000 + (RANDOM * 7 + try * 101 + $$) % 40000))
		"${RUN[@]}" "$SERVER" --port "$PORT" --bind 127.0.0.1 --save '' \
			--appendonly no --daemonize no --dir "$TMP/$mode" \
			--logfile "$TMP/$mode/log" >/dev/null 2>"$TMP/$mode.stderr" &
		PID=$!
		for _ in $(seq 1 100); do
			[ "$("$CLI" -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = PONG ] && return 0
			kill -0 "$PID" 2>/dev/null || break # port taken: try another
			sleep 0.1
		done
		stop
	done
	fail "redis-server ($mode) did not start: $(tail -3 "$TMP/$mode/log" 2>/dev/null)"
	finish
}

# The fixed commands, answered identically by any allocator.
commands() {
	cat <<'CMDS'
FLUSHALL
SET k1 hello
APPEND k1 " world"
GET k1
INCRBY n 41
INCR n
RPUSH l a b c d e f g
LRANGE l 0 -1
LPOP l
LLEN l
HSET h f1 v1 f2 v2 f3 v3
HGETALL h
SADD s x y z x
SCARD s
ZADD z 3 c 1 a 2 b
ZRANGE z 0 -1 WITHSCORES
SETRANGE big 20000 end
STRLEN big
EVAL "local t = {} for i = 1, 5000 do t[i] = tostring(i * 7) end return #table.concat(t, ',')" 0
DBSIZE
CMDS
}

# stop_clean: SHUTDOWN, and the server must exit with status 0.
stop_clean() {
	"$CLI" -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1
	wait "$PID"
	local rc=$?
	PID=
	[ $rc -eq 0 ] || fail "redis-server ($1) exited with status $rc"
}

start plain
commands | "$CLI" -h 127.0.0.1 -p "$PORT" >"$TMP/plain.out" 2>&1
stop_clean plain

start shim
grep -q libkalloc-shim "/proc/$PID/maps" || fail "redis-server is not running on the shim"
"$BENCH" -h 127.0.0.1 -p "$PORT" -q -n 20000 -c 20 -d 256 \
	-t set,get,incr,lpush,lpop,hset 2>&1 | tr '\r' '\n' >"$TMP/bench.out"
for t in SET GET INCR LPUSH LPOP HSET; do
	grep -Eq "^$t: [0-9.]+ requests per second" "$TMP/bench.out" ||
		fail "redis-benchmark's $t did not complete"
done
grep 'requests per second' "$TMP/bench.out"
commands | "$CLI" -h 127.0.0.1 -p "$PORT" >"$TMP/shim.out" 2>&1
stop_clean shim

if cmp -s "$TMP/plain.out" "$TMP/shim.out"; then
	echo "compared: $(wc -l <"$TMP/plain.out") lines of answers, identical on $BACKEND"
else
	fail "answers differ under the shim ($BACKEND):"
	diff "$TMP/plain.out" "$TMP/shim.out" | head -20
fi
grep -q '^hello world$' "$TMP/plain.out" || fail "unexpected answers: $(head -5 "$TMP/plain.out")"
# The statistics table printed at the server's exit (kalloc run --stats).
allocs=$(awk -v b="$BACKEND" '$1 == b { print $2; exit }' "$TMP/shim.stderr")
if [ -z "$allocs" ] || [ "$allocs" -lt 100000 ]; then
	fail "backend $BACKEND's statistics show ${allocs:-no} allocations for the load"
else
	echo "served: $BACKEND made $allocs allocations for redis-server"
fi
finish

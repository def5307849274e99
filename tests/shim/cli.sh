#!/usr/bin/env bash
# The `kalloc` command, from the build tree and from an installed layout.
#   cli.sh MODE KALLOC LIBKALLOC SHIM CHURN BACKEND...
# MODE: "shim", or "noshim" in sanitizer builds, where no program can run
# under the shim (ASan owns malloc) and only the rest is checked.  Then the
# build's kalloc, libkalloc.so.0, libkalloc-shim.so, the churn program and
# the names of the built backends.
# shellcheck disable=SC2016 # '$X' in single quotes is for the inner sh
set -u
# shellcheck disable=SC2016  # $ in single quotes: expanded by the inner sh
MODE=$1
KALLOC=$(realpath "$2") LIBKALLOC=$(realpath "$3") SHIM=$4 CHURN=$(realpath "$5")
shift 5
BACKENDS=("$@")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILED=0 PASSED=0

check() { # check NAME COMMAND...: passes if COMMAND succeeds
	local name=$1; shift
	if "$@"; then PASSED=$((PASSED + 1)); echo "ok   $name"
	else FAILED=$((FAILED + 1)); echo "FAIL $name"; fi
}

# run_k OUT ERR ARGS...: runs kalloc; stdout and stderr to files; sets RC.
run_k() {
	local out=$1 err=$2; shift 2
	"$KALLOC" "$@" >"$out" 2>"$err"
	RC=$?
}

has() { grep -q -- "$2" "$1"; }
lines() { wc -l <"$1" | tr -d ' '; }

# ---- help and errors ------------------------------------------------------
run_k "$TMP/o" "$TMP/e" --help
check "--help" [ $RC -eq 0 ]
for c in run list conform bench; do
	check "--help names $c" has "$TMP/o" "^  $c"
done
for c in run list conform; do
	run_k "$TMP/o" "$TMP/e" "$c" --help
	check "$c --help" [ $RC -eq 0 ]
	check "$c --help is its usage" has "$TMP/o" "usage: kalloc $c"
	run_k "$TMP/o2" "$TMP/e" help "$c"
	check "help $c = $c --help" cmp -s "$TMP/o" "$TMP/o2"
done
run_k "$TMP/o" "$TMP/e"
check "no command: usage error" [ $RC -eq 2 ]
run_k "$TMP/o" "$TMP/e" frobnicate
check "unknown command: exit 2" [ $RC -eq 2 ]
check "unknown command: names valid ones" \
	has "$TMP/e" "unknown command 'frobnicate'; valid commands: run, list, conform, bench, help"
run_k "$TMP/o" "$TMP/e" run --frob -- true
check "run: unknown option" [ $RC -eq 2 ]
check "run: unknown option named" has "$TMP/e" "unknown option '--frob'"
run_k "$TMP/o" "$TMP/e" run -b
check "run -b without a name" has "$TMP/e" "needs a backend name"
run_k "$TMP/o" "$TMP/e" run -b libc
check "run without a program" has "$TMP/e" "no PROGRAM given"
run_k "$TMP/o" "$TMP/e" run -b no_such_backend -- true
check "run: unknown backend exit 2" [ $RC -eq 2 ]
check "run: unknown backend names valid ones" \
	has "$TMP/e" "unknown backend 'no_such_backend'; valid backends: .*libc"
run_k "$TMP/o" "$TMP/e" run -b /nonexistent/kalloc-x.so -- true
check "run: missing plugin file" has "$TMP/e" "plugin file '/nonexistent/kalloc-x.so' not found"
run_k "$TMP/o" "$TMP/e" run -b libc -- /nonexistent/program
check "run: missing program exit 127" [ $RC -eq 127 ]
check "run: missing program named" has "$TMP/e" "cannot execute '/nonexistent/program'"
run_k "$TMP/o" "$TMP/e" list extra
check "list: extra argument refused" [ $RC -eq 2 ]

# ---- list -------------------------------------------------------------------
run_k "$TMP/o" "$TMP/e" list
check "list: exit 0" [ $RC -eq 0 ]
for b in "${BACKENDS[@]}"; do
	check "list: $b loads, with version and limits" \
		grep -Eq "^$b +[^ ].* [0-9.]+ [KMGTPE]?i?B +[0-9.]+ [KMGTPE]?i?B$" "$TMP/o"
done
check "list: libc is glibc" grep -Eq "^libc +glibc 2\.[0-9]+ +ZERO" "$TMP/o"
check "list: nothing failed" bash -c "! grep -q 'failed to load' '$TMP/o'"
run_k "$TMP/o" "$TMP/e" list --names
printf '%s\n' "${BACKENDS[@]}" | sort >"$TMP/want"
check "list --names = the built backends" cmp -s "$TMP/o" "$TMP/want"
KALLOC_PLUGIN_PATH=$TMP/empty "$KALLOC" list >"$TMP/o" 2>"$TMP/e"
check "list: none found is an error" [ $? -eq 1 ]
check "list: none found names the path" has "$TMP/e" "no backends found; searched $TMP/empty"

# ---- run ------------------------------------------------------------------
if [ "$MODE" = shim ]; then
ENVSH='printf "%s|%s|%s|%s\n" "$LD_PRELOAD" "$KALLOC_BACKEND" "${GLIBC_TUNABLES-unset}" "${KALLOC_STATS-unset}"'
env -u GLIBC_TUNABLES LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6 \
	"$KALLOC" run -b libc -- sh -c "$ENVSH" >"$TMP/o"
check "run: shim first in LD_PRELOAD, old entry kept, backend set" \
	[ "$(cat "$TMP/o")" = "$SHIM:/lib/x86_64-linux-gnu/libm.so.6|libc|unset|unset" ]
env -u GLIBC_TUNABLES -u LD_PRELOAD "$KALLOC" run --stats -b libc -- sh -c "$ENVSH" >"$TMP/o"
check "run --stats sets KALLOC_STATS=1, no tunable for libc" \
	[ "$(cat "$TMP/o")" = "$SHIM|libc|unset|1" ]
GLIBC_TUNABLES=glibc.malloc.check=0 KALLOC_BACKEND=jemalloc \
	"$KALLOC" run -- sh -c "$ENVSH" >"$TMP/o" 2>/dev/null
check "run: jemalloc appends the static TLS tunable" \
	[ "$(cut -d'|' -f2,3 "$TMP/o")" = "jemalloc|glibc.malloc.check=0:glibc.rtld.optional_static_tls=16384" ]
env -u GLIBC_TUNABLES KALLOC_BACKEND=jemalloc \
	"$KALLOC" run -- sh -c "$ENVSH" >"$TMP/o" 2>/dev/null
check "run: jemalloc sets the tunable when there is none" \
	[ "$(cut -d'|' -f3 "$TMP/o")" = "glibc.rtld.optional_static_tls=16384" ]
GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096 KALLOC_BACKEND=jemalloc \
	"$KALLOC" run -- sh -c "$ENVSH" >"$TMP/o" 2>/dev/null
check "run: the user's own static TLS value wins" \
	[ "$(cut -d'|' -f3 "$TMP/o")" = "glibc.rtld.optional_static_tls=4096" ]
"$KALLOC" run -b libc -- grep -c libkalloc-shim /proc/self/maps >"$TMP/o"
check "run: the shim is mapped in the program" [ "$(cat "$TMP/o")" -ge 1 ]
"$KALLOC" run -b libc -- sh -c 'exit 7'
check "run: exit status passes through" [ $? -eq 7 ]
"$KALLOC" run -b libc -- sh -c 'kill -TERM $$'
check "run: death by signal passes through" [ $? -eq $((128 + 15)) ]
( exec "$KALLOC" run -b libc -- sh -c 'echo $$' >"$TMP/pid" ) &
pid=$!
wait $pid
check "run: same pid (exec, no child)" [ "$(cat "$TMP/pid")" = "$pid" ]
for b in "${BACKENDS[@]}"; do
	"$KALLOC" run -b "$b" -- "$CHURN" >"$TMP/o" 2>"$TMP/e"
	rc=$?
	check "run -b $b: churn under the shim" [ $rc -eq 0 ]
	check "run -b $b: churn's output" has "$TMP/o" "churn ok"
	check "run -b $b: nothing on stderr" [ ! -s "$TMP/e" ]
done
fi

# ---- an installed layout: bin/ and lib/ copied out of the build tree --------
mkdir -p "$TMP/bin" "$TMP/lib"
cp "$KALLOC" "$TMP/bin/kalloc"
cp "$LIBKALLOC" "$TMP/lib/libkalloc.so.0"
export LD_LIBRARY_PATH=$TMP/lib
IK=$TMP/bin/kalloc
"$IK" run -b libc -- true 2>"$TMP/e"
check "installed: no shim next to libkalloc is an error" [ $? -eq 127 ]
check "installed: the error says where it looked" has "$TMP/e" "cannot find libkalloc-shim.so (looked in $TMP/lib"
cp "$SHIM" "$TMP/lib/libkalloc-shim.so"
if [ "$MODE" = shim ]; then
"$IK" run -b libc -- sh -c 'echo $LD_PRELOAD' >"$TMP/o"
check "installed: the shim next to libkalloc is used" [ "$(cat "$TMP/o")" = "$TMP/lib/libkalloc-shim.so" ]
"$IK" run -b libc -- "$CHURN" >"$TMP/o"
check "installed: a program runs under it" has "$TMP/o" "churn ok"
fi

"$IK" conform libc >"$TMP/o" 2>"$TMP/e"
check "installed: conform without kalloc-conform exits 127" [ $? -eq 127 ]
check "installed: conform says what is missing" has "$TMP/e" "kalloc-conform was not found (looked in $TMP/bin"
"$IK" bench >"$TMP/o" 2>"$TMP/e"
check "installed: bench without kalloc-bench exits 127" [ $? -eq 127 ]
check "installed: bench says what is missing" has "$TMP/e" "kalloc-bench was not found (looked in $TMP/bin"

# Stand-in helpers: they print what they were given and fail on "badone".
cat >"$TMP/bin/kalloc-conform" <<'EOF'
#!/bin/sh
echo "G1 usable length ... PASS"
if [ "$1" = badone ]; then
	echo "G3 zero-fill ... FAIL: byte 7 is 0x41"
	echo "13 passed, 1 failed"; exit 1
fi
echo "14 passed, 0 failed TLS=$GLIBC_TUNABLES"
EOF
printf '#!/bin/sh\necho "bench args: $*"\n' >"$TMP/bin/kalloc-bench"
chmod +x "$TMP/bin/kalloc-conform" "$TMP/bin/kalloc-bench"
env -u GLIBC_TUNABLES "$IK" conform libc >"$TMP/o"
check "conform BACKEND: the helper's status" [ $? -eq 0 ]
check "conform BACKEND: the helper's full report" has "$TMP/o" "^G1 usable length ... PASS"
check "conform: the helper gets the static TLS tunable" \
	has "$TMP/o" "TLS=glibc.rtld.optional_static_tls=16384"
"$IK" conform badone >"$TMP/o"
check "conform BACKEND: a failure's status" [ $? -eq 1 ]
"$IK" conform libc badone >"$TMP/o"
check "conform matrix: exit 1 when one fails" [ $? -eq 1 ]
check "conform matrix: a PASS row with its summary" grep -Eq "^libc +PASS +14 passed, 0 failed" "$TMP/o"
check "conform matrix: a FAIL row with its summary" grep -Eq "^badone +FAIL +13 passed, 1 failed" "$TMP/o"
check "conform matrix: closing count" has "$TMP/o" "^backends: 1 passed, 1 failed$"
check "conform matrix: no detail without -v" bash -c "! grep -q 'G3 zero-fill' '$TMP/o'"
"$IK" conform -v libc badone >"$TMP/o"
check "conform -v: the failing line is shown" has "$TMP/o" "| G3 zero-fill ... FAIL: byte 7"
"$IK" conform --all >"$TMP/o"
check "conform --all: exit 0" [ $? -eq 0 ]
check "conform --all: a row per listed backend" [ "$(grep -c ' PASS ' "$TMP/o")" -eq ${#BACKENDS[@]} ]
"$IK" conform --all libc >/dev/null 2>"$TMP/e"
check "conform: --all and names refused" [ $? -eq 2 ]
"$IK" bench --quick -x 3 >"$TMP/o"
check "bench: arguments pass through, after the shim" \
	[ "$(cat "$TMP/o")" = "bench args: --shim $TMP/lib/libkalloc-shim.so --quick -x 3" ]
"$IK" bench --shim /x.so --quick >"$TMP/o"
check "bench: the caller's --shim wins" [ "$(cat "$TMP/o")" = "bench args: --shim /x.so --quick" ]

echo "cli: $PASSED passed, $FAILED failed"
[ $FAILED -eq 0 ]

# shellcheck shell=bash
# Sourced by each program test:  TEST.sh KALLOC BACKEND
# A test defines `workload`, which runs its program through "${RUN[@]}",
# and calls `compare` (plain run against the run under the shim: stdout,
# stderr and exit status must be identical) and `served` (the program's
# malloc is bound to the shim and the backend's statistics count its calls).
# Exit 77 (meson: skipped) when the program is not installed.
set -u
KALLOC=$(realpath "$1") BACKEND=$2
# shellcheck disable=SC2034 # HERE and RUN are for the sourcing test
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILED=0

fail() { echo "FAIL: $*"; FAILED=1; }

# need PROGRAM: its path, or skip the test.
need() {
	local p
	p=$(command -v "$1") || { echo "SKIP: $1 is not installed"; exit 77; }
	echo "$p"
}

# in_mode plain|shim: sets RUN, the prefix that starts a program.
# shellcheck disable=SC2034
in_mode() {
	if [ "$1" = plain ]; then RUN=(env -u LD_PRELOAD -u KALLOC_BACKEND)
	else RUN=("$KALLOC" run -b "$BACKEND" --); fi
}

# compare: `workload` in $TMP/plain and $TMP/shim, then the three outputs.
compare() {
	local mode
	for mode in plain shim; do
		mkdir -p "$TMP/$mode"
		in_mode "$mode"
		(cd "$TMP/$mode" && workload) >"$TMP/$mode.out" 2>"$TMP/$mode.err"
		echo $? >"$TMP/$mode.rc"
	done
	[ "$(cat "$TMP/plain.rc")" = 0 ] ||
		fail "the plain run itself failed (status $(cat "$TMP/plain.rc")): $(head -5 "$TMP/plain.err")"
	[ -s "$TMP/plain.out" ] || fail "the plain run printed nothing"
	local same=1
	for f in rc out err; do
		if ! cmp -s "$TMP/plain.$f" "$TMP/shim.$f"; then
			fail "under the shim ($BACKEND) the $f differs:"
			diff "$TMP/plain.$f" "$TMP/shim.$f" | head -20
			same=0
		fi
	done
	[ $same = 1 ] &&
		echo "compared: $(wc -l <"$TMP/plain.out") lines of output, identical on $BACKEND"
}

# served EXE ARGS...: runs it under the shim with the loader's binding trace
# and the core's statistics; the executable's malloc must bind to the shim,
# and the backend must have served allocations.
served() {
	local exe=$1
	mkdir -p "$TMP/served"
	(cd "$TMP/served" && LD_DEBUG=bindings LD_DEBUG_OUTPUT="$TMP/ld" \
		"$KALLOC" run --stats -b "$BACKEND" -- "$@") >/dev/null 2>"$TMP/stats"
	if ! grep -qh "binding file $exe \[0\] to [^ ]*libkalloc-shim.so \[0\]: normal symbol \`malloc'" "$TMP"/ld.* 2>/dev/null; then
		fail "$exe's malloc is not bound to the shim"
	fi
	if grep -qh "binding file $exe \[0\] to [^ ]*libc.so.6 \[0\]: normal symbol \`malloc'" "$TMP"/ld.* 2>/dev/null; then
		fail "$exe's malloc is bound to glibc"
	fi
	rm -f "$TMP"/ld.*
	local allocs
	allocs=$(awk -v b="$BACKEND" '$1 == b { print $2; exit }' "$TMP/stats")
	if [ -z "$allocs" ] || [ "$allocs" -lt 100 ]; then
		fail "backend $BACKEND's statistics show ${allocs:-no} allocations"
		head -5 "$TMP/stats"
	else
		echo "served: $exe's malloc bound to the shim; $BACKEND made $allocs allocations"
	fi
}

finish() {
	[ $FAILED -eq 0 ] && echo "ok"
	exit $FAILED
}

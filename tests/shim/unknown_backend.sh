#!/usr/bin/env bash
# An unknown KALLOC_BACKEND under the shim: one line on stderr naming the
# valid backends and the fallback, once per process however many threads
# allocate, and the program runs on that fallback (slab): the statistics
# printed at exit (KALLOC_STATS=1) show slab answering the program's calls.
#   unknown_backend.sh SHIM CHURN
set -u
SHIM=$1 CHURN=$2
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
OUT=$(KALLOC_STATS=1 KALLOC_BACKEND=no_such_backend LD_PRELOAD=$SHIM "$CHURN" 2>"$ERR")
rc=$?
cat "$ERR"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -eq 0 ] || fail "the program failed ($rc)"
[ "$OUT" = "churn ok" ] || fail "unexpected output: $OUT"
[ "$(grep -c '^kalloc: ' "$ERR")" -eq 1 ] || fail "expected exactly one kalloc: line on stderr"
grep -Eq "^kalloc: KALLOC_BACKEND=no_such_backend: unknown backend 'no_such_backend'; valid backends: [a-z0-9_, ]*libc.*; using slab$" "$ERR" ||
	fail "the line does not name the valid backends and the fallback"
# the statistics row of the backend that served the program: slab, with
# the 160,000 allocations of churn's 8 threads (and a few of its own)
allocs=$(awk '$1 == "slab" && $2 ~ /^[0-9]+$/ { print $2; exit }' "$ERR")
[ -n "$allocs" ] || fail "no statistics row for slab: the program did not run on slab"
[ "$allocs" -ge 160000 ] || fail "slab answered only $allocs allocations of churn's 160000"
echo "ok: one line, valid backends named, ran on slab ($allocs allocations)"

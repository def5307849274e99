#!/usr/bin/env bash
# An unknown KALLOC_BACKEND under the shim: one line on stderr naming the
# valid backends, once per process however many threads allocate, and the
# program runs on libc.
#   unknown_backend.sh SHIM CHURN
set -u
SHIM=$1 CHURN=$2
ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
OUT=$(KALLOC_BACKEND=no_such_backend LD_PRELOAD=$SHIM "$CHURN" 2>"$ERR")
rc=$?
cat "$ERR"
fail() { echo "FAIL: $*"; exit 1; }
[ $rc -eq 0 ] || fail "the program failed ($rc)"
[ "$OUT" = "churn ok" ] || fail "unexpected output: $OUT"
[ "$(wc -l <"$ERR")" -eq 1 ] || fail "expected exactly one line on stderr"
grep -Eq "^kalloc: KALLOC_BACKEND=no_such_backend: unknown backend 'no_such_backend'; valid backends: [a-z0-9_, ]*libc.*; using slab$" "$ERR" ||
	fail "the line does not name the valid backends and the fallback"
echo "ok: one line, valid backends named, ran on libc"

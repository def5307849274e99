#!/usr/bin/env bash
# check.sh MODE ARGS... - runs kalloc-bench and checks what it produced.
#
#   check.sh fails  BENCH MESSAGE ARGS...
#       kalloc-bench ARGS must exit 1 (a kalloc subject failed) and its table
#       must show that subject FAILED with MESSAGE in the reason.
#   check.sh outputs BENCH DIR ARGS...
#       kalloc-bench ARGS --csv DIR/x.csv --svg DIR/x.svg must exit 0 and
#       write a CSV with one row per workload and subject and a complete SVG.
set -u
mode=$1 bench=$2; shift 2
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
die() { echo "check.sh: $*" >&2; echo "--- stdout" >&2; cat "$out" >&2;
        echo "--- stderr (tail)" >&2; tail -5 "$err" >&2; exit 1; }

case $mode in
fails)
	msg=$1; shift
	"$bench" "$@" >"$out" 2>"$err"
	rc=$?
	[ "$rc" -eq 1 ] || die "exit status $rc, want 1"
	grep -q "FAILED: .*$msg" "$out" || die "no FAILED row saying '$msg'"
	;;
outputs)
	dir=$1; shift
	csv=$dir/check-outputs.csv svg=$dir/check-outputs.svg
	rm -f "$csv" "$svg"
	"$bench" "$@" --csv "$csv" --svg "$svg" >"$out" 2>"$err"
	rc=$?
	[ "$rc" -eq 0 ] || die "exit status $rc, want 0"
	grep -q '^== churn:' "$out" || die "no table for churn"
	head -1 "$csv" | grep -q '^workload,subject,' || die "CSV has no header"
	# every subject row of every workload, measured ones with a median
	rows=$(grep -c '^churn,' "$csv")
	[ "$rows" -ge 2 ] || die "CSV has $rows churn rows"
	grep -q '^churn,[^,]*,[a-z]*,[a-z]*,2,[0-9]' "$csv" ||
		die "CSV has no churn row measured twice"
	grep -q '^<svg ' "$svg" && tail -1 "$svg" | grep -q '^</svg>$' ||
		die "SVG incomplete"
	;;
*)
	echo "usage: check.sh fails|outputs BENCH ..." >&2
	exit 2
	;;
esac

#!/bin/sh
# expect.sh CONFORM PLUGIN [Gn ...]
# Runs kalloc-conform on PLUGIN and checks its report: exactly the listed
# guarantees show FAIL, every other one PASS (SKIP only for G11), one line
# each, the closing line is exactly "N passed, N failed" with the right
# counts, and the exit status is 1 when something failed, else 0.
set -u
conform=$1
plugin=$2
shift 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$conform" "$plugin" >"$out"
status=$?
cat "$out"

die() {
	echo "expect.sh: $*" >&2
	exit 1
}

passed=0
failed=0
i=1
while [ $i -le 14 ]; do
	id="G$i"
	n=$(grep -c "^$id  *[a-z-]* \.\.*" "$out")
	[ "$n" = 1 ] || die "$n result lines for $id"
	line=$(grep "^$id  *[a-z-]* \.\.*" "$out")
	want=PASS
	for f in "$@"; do
		[ "$f" = "$id" ] && want=FAIL
	done
	case "$line" in
	*" PASS") got=PASS; passed=$((passed + 1)) ;;
	*" FAIL: "*) got=FAIL; failed=$((failed + 1)) ;;
	*" SKIP: "*) got=SKIP; [ "$id" = G11 ] || die "$id skipped" ;;
	*) die "no verdict in: $line" ;;
	esac
	if [ "$got" != "$want" ] && ! [ "$got" = SKIP ] && [ "$want" = PASS ]; then
		die "$id: want $want, got: $line"
	fi
	if [ "$want" = FAIL ] && [ "$got" != FAIL ]; then
		die "$id: want FAIL, got: $line"
	fi
	i=$((i + 1))
done
last=$(tail -n 1 "$out")
[ "$last" = "$passed passed, $failed failed" ] ||
	die "closing line '$last', want '$passed passed, $failed failed'"
if [ $failed -gt 0 ]; then
	[ $status = 1 ] || die "exit status $status with failures, want 1"
else
	[ $status = 0 ] || die "exit status $status without failures, want 0"
fi
echo "expect.sh: report as expected (FAIL: ${*:-none})"

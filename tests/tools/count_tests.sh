#!/bin/sh
# count_tests.sh COUNT: tools/count-tests (what tools/run counts a suite
# with) refuses a missing log and an empty one, and counts a SKIP apart,
# never as passed.
count=$1
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
fail() { echo "count-tests: $*"; exit 1; }

"$count" "$dir/none.json" >/dev/null 2>&1 && fail "a missing log counted"
: >"$dir/empty.json"
"$count" "$dir/empty.json" >/dev/null 2>&1 && fail "an empty log counted"
cat >"$dir/log.json" <<'JSON'
{"name": "a", "result": "OK"}
{"name": "b", "result": "SKIP"}
{"name": "c", "result": "FAIL"}
{"name": "d", "result": "EXPECTEDFAIL"}
{"name": "e", "result": "TIMEOUT"}
JSON
got=$("$count" "$dir/log.json" 2>"$dir/err") || fail "a good log refused"
[ "$got" = "2 2 1" ] || fail "counted '$got', want '2 2 1'"
grep -q "skipped (1): b" "$dir/err" || fail "the skipped test is not named"
echo "count-tests: missing and empty logs refused; SKIP counted apart"

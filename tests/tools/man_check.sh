#!/usr/bin/env bash
# man_check.sh SRCDIR: the manual pages cannot fall behind the code.
#  1. every page of docs/man renders with groff's warnings on (-ww, tbl
#     for the pages that ask for it) and prints none;
#  2. every KALLOC_* variable the library or a backend reads (a string
#     literal "KALLOC_..." under src/ or plugins/) is in kalloc(7);
#  3. every function of the public headers (a line starting KALLOC_API)
#     and every function-like macro of <kalloc/linux.h> and <kalloc/rcu.h>
#     is named in some page.
set -u
src=$1
man=$src/docs/man
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

command -v groff >/dev/null || { echo "groff not installed"; exit 77; }
pages=("$man"/*.[137])
[ ${#pages[@]} -ge 6 ] || fail "only ${#pages[@]} pages in $man"
for p in "${pages[@]}"; do
	pre=
	head -1 "$p" | grep -q "^'\\\\\" t" && pre=-t
	out=$(groff -ww -z $pre -man "$p" 2>&1)
	[ -z "$out" ] || fail "$(basename "$p"): $out"
done

# 2. variables
vars=$(grep -rhoE '"KALLOC_[A-Z0-9_]+"' "$src/src" "$src/plugins" | tr -d '"' | sort -u)
[ -n "$vars" ] || fail "no KALLOC_ variable found in the sources"
for v in $vars; do
	grep -q "^\.B $v\$" "$man/kalloc.7" || fail "kalloc(7) does not document $v"
done

# 3. functions and macros (their names as the pages write them: \- for -)
names=$(cat "$src"/include/kalloc.h "$src"/include/kalloc/*.h |
	python3 -c '
import re, sys
t = sys.stdin.read()
for m in re.finditer(r"^KALLOC_API\b[^;(]*?\b(\w+)\s*\(", t, re.M):
    print(m.group(1))
')
macros=$(grep -hoE '^#define +(k[a-z_]+|KMEM_CACHE[A-Z_]*|ZERO_OR_NULL_PTR)\(' \
	"$src/include/kalloc/linux.h" "$src/include/kalloc/rcu.h" |
	sed -E 's/^#define +//; s/\($//')
n=0
for f in $names $macros; do
	n=$((n + 1))
	grep -qwF -- "$f" "${pages[@]}" || fail "no page names $f"
done
[ $n -ge 100 ] || fail "only $n public names found: the extraction is broken"
echo "man_check: ${#pages[@]} pages, $(echo $vars | wc -w) variables, $n names; $fails problems"
[ $fails -eq 0 ]

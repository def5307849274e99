#!/usr/bin/env bash
# man_check.sh SRCDIR: the manual pages of docs/man cannot fall behind the
# code.  Every list below is read from the sources, so a new function,
# variable, option or guarantee without documentation fails this test.
#
#  1. every page renders with groff's warnings on (-ww, -Tutf8; tbl for a
#     page whose first line asks for it) and prints nothing; a page with a
#     table asks for tbl; docs/man/meson.build installs every page; every
#     reference to a kalloc page, kalloc...(N), names a page that exists;
#  2. every KALLOC_* environment variable read (the options table of
#     src/core/options.c, literal names passed to getenv, kalloc__env or
#     kalloc__option_long, and the `env' of plugin option specs, under src/
#     and plugins/) is a tagged entry (.TP/.B NAME) of kalloc(7); and every
#     KALLOC_* entry there is a variable that is read;
#  3. every function of <kalloc.h>, <kalloc/linux.h>, <kalloc/rcu.h> and
#     <kalloc/vec.h> (declarations starting KALLOC_API, `static inline'
#     functions at the start of a line, function-like macros) is in the
#     NAME section of a section 3 page (so whatis and man NAME find it);
#     those of <kalloc/plugin.h> are named in some page;
#  4. every constant (object-like macro, enum constant) and type
#     (typedef) of the public headers is named in some page;
#  5. kalloc(1) has every command of src/cli/kalloc.c's table and every
#     long option of src/cli/*.c (getopt tables and "--..." literals) and
#     of bench/main.c; kalloc-conform(1) has
#     every guarantee of tests/conformance/main.c, by id and name.
# Prints each problem and exits 1 if there is any; 77 (skip) without groff.
set -u
src=${1:?usage: man_check.sh SOURCE_ROOT}
man=$src/docs/man
inc=$src/include
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

command -v groff >/dev/null 2>&1 || { echo "SKIP: groff is not installed"; exit 77; }
shopt -s nullglob
pages=("$man"/*.[137])
[ ${#pages[@]} -ge 6 ] || fail "only ${#pages[@]} pages in $man"

# The text of pages as words: comments dropped, font escapes removed,
# \- as -, \& as nothing, so that grep -w finds a name however it is set.
plain() {
	sed -e '/^\.\\"/d' -e "/^'\\\\\"/d" -e 's/\\f[BIRP]//g' \
	    -e 's/\\f(..//g' -e 's/\\f\[[^]]*\]//g' -e 's/\\-/-/g' \
	    -e 's/\\&//g' -e 's/\\(dq/"/g' "$@"
}

# ---- 1. rendering, installation, cross-references ------------------------
for p in "${pages[@]}"; do
	b=$(basename "$p")
	pre=()
	if head -1 "$p" | grep -q "^'\\\\\" t"; then
		pre=(-t)
	elif grep -q '^\.TS' "$p"; then
		fail "$b has a table (.TS) but its first line is not '\\\" t (man would not run tbl)"
	fi
	out=$(groff -ww -z ${pre[@]+"${pre[@]}"} -man -Tutf8 "$p" 2>&1)
	[ -z "$out" ] || fail "$b: groff warns:"$'\n'"$out"
	grep -q "'$b'" "$man/meson.build" || fail "docs/man/meson.build does not install $b"
	for ref in $(grep -oE '(^|[ (\[])(\\fB)?kalloc[a-z_\\-]*(\\f[PR])? ?\(([1-8])\)' "$p" |
		     sed -E 's/^[ (\[]//; s/\\f[BPR]//g; s/\\-/-/g; s/ ?\(([1-8])\)$/.\1/'); do
		[ -f "$man/$ref" ] || fail "$b refers to ${ref%.*}(${ref##*.}), which has no page"
	done
done

# ---- 2. environment variables --------------------------------------------
opts=$src/src/core/options.c
table=$(sed -n '/^static const struct option options\[\]/,/^};/p' "$opts" |
	grep -oE '^[[:space:]]*\{ *"KALLOC_[A-Z0-9_]+"' | grep -oE 'KALLOC_[A-Z0-9_]+')
[ -n "$table" ] || fail "no options table found in src/core/options.c (update $0)"
read_calls=$(grep -rhoE '\b(secure_)?getenv *\( *"KALLOC_[A-Z0-9_]+"|\bkalloc__(env|option_long) *\( *"KALLOC_[A-Z0-9_]+"' \
	"$src/src" "$src/plugins" | grep -oE 'KALLOC_[A-Z0-9_]+')
spec_env=$(grep -rhoE '\{ *"[a-z_0-9]+" *, *"KALLOC_[A-Z0-9_]+"' "$src/src" "$src/plugins" |
	grep -oE 'KALLOC_[A-Z0-9_]+')
vars=$(printf '%s\n' $table $read_calls $spec_env | sort -u)
# kalloc(7)'s entries: a .B KALLOC_* line right after .TP
entries=$(awk 'prev == ".TP" && /^\.B KALLOC_[A-Z0-9_]+$/ { print $2 } { prev = $0 }' \
	"$man/kalloc.7" | sort -u)
for v in $vars; do
	grep -qx "$v" <<<"$entries" || fail "kalloc(7) has no entry (.TP/.B $v) for $v, read by the library"
done
for e in $entries; do
	grep -qx "$e" <<<"$vars" || fail "kalloc(7) documents $e, which nothing reads"
done

# ---- 3. functions ----------------------------------------------------------
# The NAME sections of the section 3 pages, one name a line.
named3=$(for p in "$man"/*.3; do
	sed -n '/^\.SH NAME/,/^\.SH /{/^\.SH/d;p}' "$p"
done | sed 's/\\-.*//; s/\\&//g' | tr ', ' '\n\n' | sed '/^$/d' | sort -u)
text=$(plain "${pages[@]}")

# The functions of one header: KALLOC_API declarations (the name is the
# last word before the first '(', which must be on the same line), inline
# functions, function-like macros.
for h in "$inc/kalloc.h" "$inc"/kalloc/*.h; do
	bad=$(grep -nE '^KALLOC_API\b' "$h" | grep -v '(')
	[ -z "$bad" ] || fail "$(basename "$h"): no '(' on the line of: $bad (update $0)"
done
functions() {
	grep -E '^KALLOC_API\b' "$1" | sed -E 's/\(.*//' | grep -oE '[A-Za-z_][A-Za-z0-9_]*$'
	grep -E '^static inline\b[^(]*\(' "$1" | sed -E 's/\(.*//' | grep -oE '[A-Za-z_][A-Za-z0-9_]*$'
	grep -oE '^#define +[A-Za-z][A-Za-z0-9_]*\(' "$1" | sed -E 's/^#define +//; s/\($//'
}
n=0
for h in "$inc/kalloc.h" "$inc/kalloc/linux.h" "$inc/kalloc/rcu.h" "$inc/kalloc/vec.h"; do
	[ -f "$h" ] || { fail "missing header $h"; continue; }
	for f in $(functions "$h"); do
		n=$((n + 1))
		grep -qxF -- "$f" <<<"$named3" ||
			fail "$f ($(basename "$h")) is in the NAME section of no section 3 page"
	done
done
for h in "$inc"/kalloc/*.h; do
	case $h in */linux.h | */rcu.h | */vec.h) continue ;; esac
	for f in $(functions "$h"); do
		n=$((n + 1))
		grep -qwF -- "$f" <<<"$text" || fail "$f ($(basename "$h")) is named in no page"
	done
done
[ $n -ge 100 ] || fail "only $n public functions found: the extraction is broken"

# ---- 4. constants and types ------------------------------------------------
# Object-like macros with a value (include guards have none), except
# KALLOC_API, the export marker of the declarations themselves; enum
# constants; typedef names and structures declared at file level.
m=0
for h in "$inc/kalloc.h" "$inc"/kalloc/*.h; do
	consts=$(grep -oE '^#define +[A-Za-z_][A-Za-z0-9_]*[[:space:]]+[^[:space:]]' "$h" |
		 sed -E 's/^#define +//; s/[[:space:]].*//' | grep -vx 'KALLOC_API')
	enums=$(sed -n '/^typedef enum/,/^}/p' "$h" | grep -oE '^[[:space:]]+[A-Z][A-Z0-9_]*' | sed 's/^[[:space:]]*//')
	types=$( { grep -oE '^typedef [^;(]*[^A-Za-z0-9_(]([A-Za-z_][A-Za-z0-9_]*);' "$h" |
		   sed -E 's/;$//' | grep -oE '[A-Za-z_][A-Za-z0-9_]*$'
		   grep -oE '^typedef [^(]*\(\**([A-Za-z_][A-Za-z0-9_]*)\)' "$h" |
		   sed -E 's/\)$//' | grep -oE '[A-Za-z_][A-Za-z0-9_]*$'
		   grep -oE '^\} *[A-Za-z_][A-Za-z0-9_]*;' "$h" | grep -oE '[A-Za-z_][A-Za-z0-9_]*'
		   grep -oE '^struct [A-Za-z_][A-Za-z0-9_]* *[{;]' "$h" | sed -E 's/^struct //; s/ *[{;]$//' ; } | sort -u)
	for c in $consts $enums $types; do
		m=$((m + 1))
		grep -qwF -- "$c" <<<"$text" || fail "$c ($(basename "$h")) is named in no page"
	done
done
[ $m -ge 100 ] || fail "only $m public constants and types found: the extraction is broken"

# ---- 5. commands, options, guarantees --------------------------------------
k1=$(plain "$man/kalloc.1")
cmds=$(sed -n '/^} commands\[\] = {/,/^};/p' "$src/src/cli/kalloc.c" | grep -oE '\{ *"[a-z]+"' | grep -oE '[a-z]+')
[ -n "$cmds" ] || fail "no command table found in src/cli/kalloc.c (update $0)"
for c in $cmds help; do
	grep -qx "\.SS kalloc $c" "$man/kalloc.1" || fail "kalloc(1) has no section .SS kalloc $c"
done
# getopt_long tables, and options compared by hand ("--version")
longopts=$( { grep -hoE '\{ *"[a-z][a-z-]*", *(no|required|optional)_argument' \
		"$src"/src/cli/*.c "$src/bench/main.c" | grep -oE '"[a-z-]+"'
	      grep -hoE '"--[a-z][a-z-]*"' "$src"/src/cli/*.c | sed 's/--//' ; } |
	tr -d '"' | sort -u)
[ -n "$longopts" ] || fail "no long options found in src/cli or bench/main.c (update $0)"
for o in $longopts; do
	grep -qE -- "(^|[^a-z-])--$o([^a-z-]|$)" <<<"$k1" || fail "kalloc(1) does not document --$o"
done
conf=$(plain "$man/kalloc-conform.1")
g=0
while read -r id name; do
	g=$((g + 1))
	grep -qE "^\.B $id\$" "$man/kalloc-conform.1" && grep -qwF -- "$name" <<<"$conf" ||
		fail "kalloc-conform(1) does not list $id ($name)"
done < <(grep -oE '\{ *"G[0-9]+", *"[a-z-]+"' "$src/tests/conformance/main.c" |
	 sed -E 's/[{",]/ /g')
[ $g -ge 17 ] || fail "only $g guarantees found in tests/conformance/main.c (update $0)"

echo "man_check: ${#pages[@]} pages, $(wc -w <<<"$vars") variables, $n functions," \
     "$m constants and types, $(wc -w <<<"$longopts") options, $g guarantees; $fails problems"
[ $fails -eq 0 ]

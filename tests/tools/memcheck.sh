#!/bin/sh
# memcheck.sh DEMO BACKEND CASE: runs `memcheck-demo CASE` under valgrind
# on BACKEND and checks that memcheck's report says what went wrong, where
# (the function of memcheck_demo.c doing it) and where the block came from
# (make_block).  Exit 0 when it does; otherwise prints the report, exit 1.
demo=$1 backend=$2 case=$3
out=$(KALLOC_BACKEND=$backend valgrind --leak-check=full --error-exitcode=0 \
	"$demo" "$case" 2>&1)
case $case in
uaf)      want="Invalid read of size 1|use_after_free (memcheck_demo.c|inside a block of size 100 free'd|make_block" ;;
overflow) want="Invalid write of size 1|overflow (memcheck_demo.c|0 bytes after a block of size 100 alloc'd|make_block" ;;
uninit)   want="Conditional jump or move depends on uninitialised value|uninit (memcheck_demo.c" ;;
leak)     want="100 bytes in 1 blocks are definitely lost|make_block|2,097,152 bytes in 1 blocks are definitely lost|make_large" ;;
*) echo "memcheck.sh: unknown case $case" >&2; exit 2 ;;
esac
missing=
IFS='|'
for w in $want; do
	printf '%s\n' "$out" | grep -qF "$w" || missing="$missing [$w]"
done
if [ -n "$missing" ]; then
	echo "$backend/$case: memcheck's report lacks$missing:"
	printf '%s\n' "$out"
	exit 1
fi
echo "$backend/$case: memcheck reports it, with the site and the block's origin"

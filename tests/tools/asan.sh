#!/bin/sh
# asan.sh DEMO BACKEND CASE: runs memcheck-demo-asan (memcheck_demo.c built
# with -fsanitize=address; libkalloc and the backend are not) on BACKEND and
# checks that ASan stops at the misuse, naming the kind of access and the
# function doing it, and that kalloc's description of the block follows
# (src/core/memtools.c): what the address is to the block, and the stacks
# of its allocation (make_block) and free.  Exit 0 when it does; otherwise prints the report.
demo=$1 backend=$2 case=$3
out=$(KALLOC_BACKEND=$backend ASAN_OPTIONS=detect_leaks=0 "$demo" "$case" 2>&1)
status=$?
case $case in
uaf)      want="AddressSanitizer: use-after-poison|READ of size 1|in use_after_free |freed (heap-use-after-free) at:|previously allocated at:|in make_block " ;;
overflow) want="AddressSanitizer: use-after-poison|WRITE of size 1|in overflow |0 bytes after the 100-byte kalloc block|(heap-buffer-overflow), allocated at:|in make_block " ;;
*) echo "asan.sh: unknown case $case" >&2; exit 2 ;;
esac
missing=
IFS='|'
for w in $want; do
	printf '%s\n' "$out" | grep -qF "$w" || missing="$missing [$w]"
done
if [ "$status" -eq 0 ] || [ -n "$missing" ]; then
	echo "$backend/$case: exit $status, ASan's report lacks$missing:"
	printf '%s\n' "$out"
	exit 1
fi
echo "$backend/$case: ASan stops at it, naming the access and the function"

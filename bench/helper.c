/*
 * kalloc-bench-{malloc,jemalloc,tcmalloc,mimalloc}: the child side only,
 * for allocators called without kalloc.  Each is its own executable so a
 * library that replaces malloc when linked (jemalloc, tcmalloc) never shares
 * a process with another.  Run by kalloc-bench, not by hand.
 */
#include "child.h"

int main(int argc, char **argv)
{
	return bench_child_main(argc, argv);
}

/*
 * kalloc bench [ARGS...]: the benchmark comparison, run by the kalloc-bench
 * program (built by bench/), with the same arguments.
 */
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HELPER "kalloc-bench"

static const char help[] =
	"usage: kalloc bench [ARGS...]\n"
	"\n"
	"Compare the backends and the reference allocators (glibc, jemalloc,\n"
	"tcmalloc, mimalloc) on the benchmark suite: runs " HELPER " with\n"
	"ARGS; `kalloc bench --help` shows its options when it is built.\n";

int cmd_bench(int argc, char **argv)
{
	char helper[PATH_MAX], looked[2048];
	if (!locate_helper(HELPER, helper, sizeof(helper), looked,
			   sizeof(looked))) {
		if (argc > 1 && (!strcmp(argv[1], "--help") ||
				 !strcmp(argv[1], "-h")))
			cli_help(help);
		fprintf(stderr, "kalloc bench: the benchmark program " HELPER
			" was not found (looked in %s); it is built by meson "
			"(bench/) and installed next to kalloc\n", looked);
		return EXIT_NOTFOUND;
	}
	env_add_static_tls(); /* so that jemalloc loads in the benchmark */
	argv[0] = helper;
	fflush(stdout);
	execv(helper, argv);
	perror(helper);
	return EXIT_NOEXEC;
}

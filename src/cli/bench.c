/*
 * kalloc bench [ARGS...]: the benchmark comparison, run by the kalloc-bench
 * program (built by bench/), with the same arguments.
 */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HELPER "kalloc-bench"

static const char help[] =
	"usage: kalloc bench [ARGS...]\n"
	"\n"
	"Compare the backends and the reference allocators (glibc, jemalloc,\n"
	"tcmalloc, mimalloc) on the benchmark suite: runs " HELPER " with\n"
	"ARGS; `kalloc bench --help` shows its options when it is built.\n"
	"Unless ARGS choose one with --shim, the shim is passed too, so the\n"
	"table has a shim:BACKEND row for each backend.\n";

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
	/* The shim's rows (shim:BACKEND) join unless the caller chose one. */
	bool chosen = false;
	for (int i = 1; i < argc; i++)
		chosen |= !strcmp(argv[i], "--shim") || !strncmp(argv[i], "--shim=", 7);
	char shim[PATH_MAX];
	char **args = calloc((size_t)argc + 3, sizeof(*args));
	if (!args) {
		perror("kalloc bench");
		return 1;
	}
	int n = 0;
	args[n++] = helper;
	if (!chosen && locate_shim(shim, sizeof(shim), true)) {
		args[n++] = "--shim";
		args[n++] = shim;
	}
	for (int i = 1; i < argc; i++)
		args[n++] = argv[i];
	fflush(stdout);
	execv(helper, args);
	perror(helper);
	return EXIT_NOEXEC;
}

/*
 * kalloc run [-b BACKEND] [--stats[=json|slabinfo]] [--] PROGRAM [ARGS...]
 *
 * Runs PROGRAM under the shim, like jemalloc.sh: prepends the shim to
 * LD_PRELOAD, sets KALLOC_BACKEND (and for jemalloc GLIBC_TUNABLES), then
 * execs it, so it keeps this process's pid and its exit status and signals
 * reach the caller unchanged.
 */
#include "cli.h"

#include <kalloc.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
	"usage: kalloc run [-b BACKEND] [--stats[=json|slabinfo]] [--] PROGRAM [ARGS...]\n"
	"\n"
	"Run PROGRAM with every malloc, free, realloc, posix_memalign ... and\n"
	"C++ new/delete served by a libkalloc backend (the LD_PRELOAD shim).\n"
	"PROGRAM replaces this process: same pid, its exit status and signals\n"
	"pass through.\n"
	"\n"
	"  -b, --backend BACKEND  slab, page, kv, jemalloc, tcmalloc, mimalloc,\n"
	"                         libc (see `kalloc list`), or a plugin .so path;\n"
	"                         default: $KALLOC_BACKEND, else slab\n"
	"      --stats            print the backend's statistics table on stderr\n"
	"                         when PROGRAM exits (sets KALLOC_STATS=1): the\n"
	"                         core's counters, the backend's, and one row\n"
	"                         per size class or cache, as /proc/slabinfo\n"
	"      --stats=json       the same as one JSON line (KALLOC_STATS=json)\n"
	"      --stats=slabinfo   the rows in the kernel's /proc/slabinfo format\n"
	"                         (KALLOC_STATS=slabinfo), for tools that read it\n"
	"  -h, --help             this help\n"
	"\n"
	"Sets LD_PRELOAD (the shim first, then what was there), KALLOC_BACKEND,\n"
	"and for jemalloc GLIBC_TUNABLES=" STATIC_TLS_TUNABLE "\n"
	"(appended to an existing GLIBC_TUNABLES): Debian's jemalloc needs that\n"
	"static TLS space to be loaded with dlopen.\n"
	"\n"
	"PROGRAM valgrind gets --soname-synonyms=somalloc=nouserintercepts\n"
	"(unless given one): else memcheck would replace the shim's malloc\n"
	"with its own and the program would never reach BACKEND; slab, page\n"
	"and kv describe their blocks to memcheck themselves.\n"
	"\n"
	"Example: kalloc run -b slab --stats -- python3 -c 'print(42)'\n"
	"         kalloc run -b slab -- valgrind ./prog\n";

/*
 * Checks that the backend exists by opening it here.  A plugin that needs
 * static TLS cannot load in this process (started without the tunable), but
 * will in PROGRAM: that counts as found, and *needs_tls says so.
 */
static bool backend_ok(const char *name, bool *needs_tls)
{
	kalloc_t *a;
	*needs_tls = false;
	int err = kalloc_open(name, NULL, &a);
	if (err == KALLOC_OK) {
		kalloc_info_t info;
		kalloc_info(a, &info);
		*needs_tls = !strcmp(info.name, "jemalloc");
		kalloc_close(a);
		return true;
	}
	const char *msg = kalloc_errmsg();
	if (err == KALLOC_ELOAD && strstr(msg, "static TLS")) {
		*needs_tls = true;
		return true;
	}
	fprintf(stderr, "kalloc run: backend '%s': %s\n", name, msg);
	return false;
}

/*
 * valgrind replaces the malloc of every library that exports one, the
 * shim's too, unless told to leave all but libc's alone: a PROGRAM that is
 * valgrind gets that option, so that it checks the program on BACKEND.
 * Returns argv, or a copy with the option after argv[0] (never freed: we
 * exec).
 */
static char **with_valgrind_option(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	if (strcmp(base ? base + 1 : argv[0], "valgrind") != 0)
		return argv;
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--soname-synonyms", 17))
			return argv; /* the user's choice */
	char **out = calloc((size_t)argc + 2, sizeof(*out));
	if (!out)
		return argv;
	out[0] = argv[0];
	out[1] = "--soname-synonyms=somalloc=nouserintercepts";
	for (int i = 1; i < argc; i++)
		out[i + 1] = argv[i];
	return out;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "stats", optional_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *backend = NULL;
	const char *stats = NULL; /* KALLOC_STATS to set */
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:b:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			backend = optarg;
			break;
		case 'S':
			if (optarg && strcmp(optarg, "json") != 0 &&
			    strcmp(optarg, "slabinfo") != 0)
				return cli_usage_error("run", "--stats=%s: valid are "
						       "--stats (a table), "
						       "--stats=json and "
						       "--stats=slabinfo", optarg);
			stats = optarg ? optarg : "1";
			break;
		case 'h':
			return cli_help(help);
		case ':':
			return cli_usage_error("run", "option '%s' needs a backend "
					       "name; valid: see `kalloc list`",
					       argv[optind - 1]);
		default:
			return cli_usage_error("run", "unknown option '%s'; valid: "
					       "-b BACKEND, --stats[=json|slabinfo], "
					       "--help",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error("run", "no PROGRAM given; usage: kalloc run "
				       "[-b BACKEND] [--stats] -- PROGRAM [ARGS...]");

	bool needs_tls = false;
	char plugin[PATH_MAX];
	if (backend) {
		if (!*backend)
			return cli_usage_error("run", "empty backend name; valid: "
					       "see `kalloc list`");
		if (!backend_ok(backend, &needs_tls))
			return EXIT_USAGE;
		/* a plugin path: absolute, since PROGRAM may change directory */
		if (strchr(backend, '/') && realpath(backend, plugin))
			backend = plugin;
		setenv("KALLOC_BACKEND", backend, 1);
	} else {
		const char *inherited = getenv("KALLOC_BACKEND");
		needs_tls = inherited && strstr(inherited, "jemalloc");
	}

	char shim[PATH_MAX];
	if (!locate_shim(shim, sizeof(shim), false))
		return EXIT_NOTFOUND;
	env_prepend_preload(shim);
	if (needs_tls)
		env_add_static_tls();
	if (stats)
		setenv("KALLOC_STATS", stats, 1);

	char **args = with_valgrind_option(argc - optind, &argv[optind]);
	execvp(args[0], args);
	int e = errno;
	fprintf(stderr, "kalloc run: cannot execute '%s': %s\n", argv[optind],
		strerror(e));
	return e == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC;
}

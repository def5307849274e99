/*
 * kalloc conform [BACKEND|PLUGIN.so ...|--all]: the conformance suite
 * (the kalloc-conform program, built by tests/conformance) on one backend
 * with its full report, or on several as a matrix, one row per backend
 * with its summary line.  Non-zero exit if any backend fails.
 */
#include "cli.h"

#include <kalloc.h>

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HELPER "kalloc-conform"

static const char help[] =
	"usage: kalloc conform [-v] [BACKEND|PLUGIN.so ...|--all]\n"
	"\n"
	"Check backends against the guarantees G1-G17 (docs/CONTRACT.md)\n"
	"with the conformance suite, each backend in its own process.\n"
	"\n"
	"  BACKEND|PLUGIN.so  one: its full report (one line per guarantee)\n"
	"                     several: one row each with its summary line\n"
	"  --all              every backend of `kalloc list` (the default)\n"
	"  -v, --verbose      in the matrix, also the failing lines\n"
	"  -h, --help         this help\n"
	"\n"
	"Exit status: 0 if every backend passes, 1 if any fails.\n";

struct names {
	char **v;
	int n, cap;
};

static void add_name(const char *name, const kalloc_info_t *info,
		     const char *err, void *ctx)
{
	(void)info;
	(void)err; /* one that fails to load is run too: it fails there */
	struct names *ns = ctx;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? 2 * ns->cap : 16;
		char **v = realloc(ns->v, (size_t)ns->cap * sizeof(*v));
		if (!v) {
			perror("kalloc conform");
			exit(1);
		}
		ns->v = v;
	}
	if (!(ns->v[ns->n++] = strdup(name))) {
		perror("kalloc conform");
		exit(1);
	}
}

/* Runs the helper on one backend, its output captured in *out. */
static int run_captured(const char *helper, const char *backend, char **out)
{
	int fds[2];
	if (pipe(fds) != 0)
		return -1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		execl(helper, helper, backend, (char *)NULL);
		perror(helper);
		_exit(EXIT_NOEXEC);
	}
	close(fds[1]);
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t r;
	while (buf && (r = read(fds[0], buf + len, cap - len - 1)) > 0) {
		len += (size_t)r;
		if (cap - len < 1024) {
			char *bigger = realloc(buf, cap *= 2);
			if (!bigger)
				break;
			buf = bigger;
		}
	}
	close(fds[0]);
	if (buf)
		buf[len] = 0;
	*out = buf;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		;
	return status;
}

/* The last line reading "... N passed, N failed ...", or NULL. */
static const char *summary_line(char *text)
{
	const char *found = NULL;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned p, f;
		const char *at = strstr(line, " passed, ");
		while (at > line && at[-1] >= '0' && at[-1] <= '9')
			at--;
		if (at && sscanf(at, "%u passed, %u failed", &p, &f) == 2)
			found = line;
	}
	return found;
}

/* The matrix: one row per backend; returns how many failed. */
static int matrix(const char *helper, char **backends, int n, bool verbose)
{
	int failed = 0;
	printf("%-10s %-8s %s\n", "BACKEND", "RESULT", "SUMMARY");
	for (int i = 0; i < n; i++) {
		printf("%-10s ", backends[i]);
		fflush(stdout);
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		char *out = NULL;
		int status = run_captured(helper, backends[i], &out);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		double secs = (double)(t1.tv_sec - t0.tv_sec) +
			      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		bool ok = status == 0;
		failed += !ok;
		char *copy = out ? strdup(out) : NULL;
		const char *sum = copy ? summary_line(copy) : NULL;
		char why[64] = "";
		if (status < 0)
			snprintf(why, sizeof(why), "could not run " HELPER);
		else if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "killed by signal %d",
				 WTERMSIG(status));
		else if (!sum)
			snprintf(why, sizeof(why), "exit status %d, no summary",
				 WEXITSTATUS(status));
		printf("%-8s %s%s(%.1f s)\n", ok ? "PASS" : "FAIL",
		       sum ? sum : why, " ", secs);
		if (!ok && verbose && out) {
			for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n"))
				if (strstr(l, "FAIL"))
					printf("           | %s\n", l);
		}
		free(copy);
		free(out);
	}
	printf("backends: %d passed, %d failed\n", n - failed, failed);
	return failed;
}

int cmd_conform(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	bool all = false, verbose = false;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else if (c == 'v')
			verbose = true;
		else if (c == 'h')
			return cli_help(help);
		else
			return cli_usage_error("conform", "unknown option '%s'; "
					       "valid: --all, -v, --help",
					       argv[optind - 1]);
	}
	int given = argc - optind;
	if (all && given)
		return cli_usage_error("conform", "give backends or --all, not "
				       "both");

	char helper[PATH_MAX], looked[2048];
	if (!locate_helper(HELPER, helper, sizeof(helper), looked,
			   sizeof(looked))) {
		fprintf(stderr, "kalloc conform: the conformance program " HELPER
			" was not found (looked in %s); it is built by meson "
			"(tests/conformance) and installed next to kalloc\n",
			looked);
		return EXIT_NOTFOUND;
	}
	env_add_static_tls(); /* so that jemalloc loads in the helper */
	fflush(stdout);

	if (given == 1) {
		execl(helper, helper, argv[optind], (char *)NULL);
		perror(helper);
		return EXIT_NOEXEC;
	}
	if (given > 1)
		return matrix(helper, &argv[optind], given, verbose) ? 1 : 0;
	struct names ns = { 0 };
	if (kalloc_list(add_name, &ns) == 0) {
		fprintf(stderr, "kalloc conform: no backends found; searched %s\n",
			kalloc_plugin_path());
		return 1;
	}
	int failed = matrix(helper, ns.v, ns.n, verbose);
	for (int i = 0; i < ns.n; i++)
		free(ns.v[i]);
	free(ns.v);
	return failed ? 1 : 0;
}

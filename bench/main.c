/*
 * kalloc-bench: compares kalloc backends with the allocators users would
 * pick instead, on the workloads of bench/workloads/.
 *
 * For each workload, R rounds; in each round every subject runs once, in a
 * freshly shuffled order, each run in a fresh process (this program or a
 * kalloc-bench-* helper, spawned with the subject's environment).  The
 * table gives medians and ratios; see --help and bench/README.md.
 */
#include "child.h"
#include "driver.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct bench B; /* large (measurements of every run): static */

static void help(FILE *f)
{
	fprintf(f,
"usage: kalloc-bench [OPTIONS]\n"
"\n"
"Measures every kalloc backend through the kalloc API, and the reference\n"
"allocators (glibc, jemalloc, tcmalloc, mimalloc) through their own API,\n"
"plainly and with LD_PRELOAD, on each workload.  Every run is a fresh\n"
"process; subjects are interleaved in a new random order each round; the\n"
"table shows median time and median peak RSS (VmHWM), and time ratios\n"
"against each reference and the fastest one.  Progress goes to stderr.\n"
"\n"
"  --rounds N        rounds per workload (default 5)\n"
"  --quick           small sizes, for tests and CI (not for conclusions)\n"
"  --only W[,W..]    only these workloads (see --list)\n"
"  --backends B[,B..] kalloc backends to measure (default: libc,slab,page,\n"
"                    kv,jemalloc,tcmalloc,mimalloc; those kalloc_open\n"
"                    refuses are skipped with the reason)\n"
"  --shim PATH       the kalloc LD_PRELOAD shim (kalloc bench passes it);\n"
"                    adds a shim:BACKEND row per backend\n"
"  --no-direct       leave out the libraries called directly\n"
"  --no-preload      leave out the LD_PRELOAD rows\n"
"  --csv FILE        also write every row as CSV\n"
"  --svg FILE        also write a bar chart of time / fastest reference\n"
"  --seed N          the workloads' random seed (default: fixed) and the\n"
"                    shuffle's (default: the clock)\n"
"  --cpu             ratios on CPU time (user + system of all threads)\n"
"                    instead of wall-clock time: steadier on a busy machine,\n"
"                    but blind to time spent waiting (locks, yields)\n"
"  --timeout SEC     kill a run after SEC seconds (default 300)\n"
"  --list            list the workloads and exit\n"
"  --help            this text\n"
"\n"
"Children run without LD_PRELOAD, KALLOC_BACKEND, MALLOC_PERTURB_ and\n"
"MALLOC_CHECK_ from this environment (only the subject's own), and with\n"
"GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 so jemalloc can be\n"
"dlopen'ed.  Plugins are found through KALLOC_PLUGIN_PATH as usual; run\n"
"from its build directory with KALLOC_PLUGIN_PATH unset, kalloc-bench uses\n"
"the plugins of that build.\n"
"Exit status: 0 all measured; 1 a run of a kalloc backend (API or shim)\n"
"failed, or nothing could be measured (the table is still printed; a\n"
"reference library's failure shows as FAILED in its row only); 2 usage\n"
"error.\n");
}

static void list_workloads(void)
{
	for (size_t i = 0; i < bench_nworkloads; i++)
		printf("%-10s %s\n", bench_workloads[i].name, bench_workloads[i].what);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "kalloc-bench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nrun 'kalloc-bench --help' for the options\n");
	return 2;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int select_workloads(struct bench *b)
{
	if (!b->cfg.only) {
		for (size_t i = 0; i < bench_nworkloads; i++)
			b->w[b->nw++] = &bench_workloads[i];
		return 0;
	}
	char list[1024];
	snprintf(list, sizeof(list), "%s", b->cfg.only);
	char *save = NULL;
	for (char *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
		const bench_workload_t *w = bench_find_workload(n);
		if (!w) {
			fprintf(stderr, "kalloc-bench: no workload '%s'; valid:", n);
			for (size_t i = 0; i < bench_nworkloads; i++)
				fprintf(stderr, " %s", bench_workloads[i].name);
			fprintf(stderr, "\n");
			return -1;
		}
		if (b->nw < (int)(sizeof(b->w) / sizeof(b->w[0])))
			b->w[b->nw++] = w;
	}
	return b->nw ? 0 : -1;
}

static int self_dir(char *out, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", out, cap - 1);
	if (n <= 0)
		return -1;
	out[n] = '\0';
	char *slash = strrchr(out, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	return 0;
}

static uint64_t shuffle_state;

static void shuffle(int *v, int n)
{
	for (int i = n - 1; i > 0; i--) {
		int j = (int)bench_range(&shuffle_state, 0, (size_t)i);
		int t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

static int measure_all(struct bench *b)
{
	int order[MAX_SUBJECTS], n = 0;
	for (int si = 0; si < b->ns; si++)
		if (b->s[si].available)
			order[n++] = si;
	int total = n * b->nw * b->cfg.rounds, done = 0, failures = 0;
	fprintf(stderr, "kalloc-bench: %d subjects x %d workloads x %d rounds = "
		"%d runs\n", n, b->nw, b->cfg.rounds, total);
	for (int wi = 0; wi < b->nw; wi++) {
		for (int r = 0; r < b->cfg.rounds; r++) {
			shuffle(order, n);
			for (int k = 0; k < n; k++) {
				int si = order[k];
				struct measure *m = &b->m[wi][si];
				done++;
				if (m->failed)
					continue;
				struct sample x;
				char why[768];
				fprintf(stderr, "[%4d/%d] %-9s round %d/%d  %-18s ",
					done, total, b->w[wi]->name, r + 1,
					b->cfg.rounds, b->s[si].label);
				if (subject_run(b, si, b->w[wi], 0, &x, why,
						sizeof(why))) {
					fprintf(stderr, "FAILED: %s\n", why);
					m->failed = 1;
					snprintf(m->why, sizeof(m->why), "%.250s", why);
					/* a reference library's own failure is
					 * reported, not held against kalloc */
					if (b->s[si].kind == K_API ||
					    b->s[si].kind == K_SHIM)
						failures++;
					continue;
				}
				m->ns[m->n] = x.ns;
				m->cpu_ns[m->n] = x.cpu_ns;
				m->hwm_kb[m->n] = x.hwm_kb;
				m->base_kb[m->n] = x.base_kb;
				m->n++;
				fprintf(stderr, "%10.2f ms (cpu %.2f) %8.1f MiB\n",
					x.ns / 1e6, x.cpu_ns / 1e6, x.hwm_kb / 1024);
			}
		}
	}
	return failures;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return bench_child_main(argc, argv);

	struct run_config *c = &B.cfg;
	*c = (struct run_config){ .rounds = 5, .direct = 1, .preload = 1,
				  .timeout = 300 };
	enum { O_NODIRECT = 256, O_NOPRELOAD, O_SHIM, O_SEED, O_TIMEOUT, O_LIST,
	       O_CPU };
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "quick", no_argument, NULL, 'q' },
		{ "only", required_argument, NULL, 'o' },
		{ "backends", required_argument, NULL, 'b' },
		{ "csv", required_argument, NULL, 'c' },
		{ "svg", required_argument, NULL, 's' },
		{ "shim", required_argument, NULL, O_SHIM },
		{ "no-direct", no_argument, NULL, O_NODIRECT },
		{ "no-preload", no_argument, NULL, O_NOPRELOAD },
		{ "seed", required_argument, NULL, O_SEED },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "list", no_argument, NULL, O_LIST },
		{ "cpu", no_argument, NULL, O_CPU },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "r:qo:b:c:s:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			if (parse_int(optarg, 1, MAX_ROUNDS - 1, &c->rounds))
				return usage_error("--rounds %s: give 1 to 100", optarg);
			break;
		case 'q': c->quick = 1; break;
		case 'o': c->only = optarg; break;
		case 'b': c->backends = optarg; break;
		case 'c': c->csv = optarg; break;
		case 's': c->svg = optarg; break;
		case O_SHIM: c->shim = optarg; break;
		case O_NODIRECT: c->direct = 0; break;
		case O_NOPRELOAD: c->preload = 0; break;
		case O_SEED: {
			char *end;
			errno = 0;
			c->seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end)
				return usage_error("--seed %s: give a number", optarg);
			c->have_seed = 1;
			break;
		}
		case O_TIMEOUT:
			if (parse_int(optarg, 1, 86400, &c->timeout))
				return usage_error("--timeout %s: give 1 to 86400 seconds",
						   optarg);
			break;
		case O_LIST: list_workloads(); return 0;
		case O_CPU: c->cpu = 1; break;
		case 'h': help(stdout); return 0;
		default: return usage_error("%s", "unknown option");
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (select_workloads(&B))
		return 2;
	if (self_dir(B.self_dir, sizeof(B.self_dir))) {
		fprintf(stderr, "kalloc-bench: cannot find my own path in "
			"/proc/self/exe\n");
		return 1;
	}
	/* From the build tree, with no plugin path given, use this build's
	 * plugins (the children inherit it), as the tests do. */
	if (!getenv("KALLOC_PLUGIN_PATH") &&
	    strcmp(B.self_dir, KALLOC_BENCH_BUILDDIR) == 0) {
		setenv("KALLOC_PLUGIN_PATH", KALLOC_BENCH_BUILD_PLUGIN_PATH, 1);
		fprintf(stderr, "kalloc-bench: run from the build tree: "
			"KALLOC_PLUGIN_PATH=%s\n", KALLOC_BENCH_BUILD_PLUGIN_PATH);
	}
	shuffle_state = bench_seed(c->have_seed ? c->seed
				   : (uint64_t)time(NULL) ^ (uint64_t)getpid(), 99);

	if (subjects_build(&B))
		return 2;
	fprintf(stderr, "kalloc-bench: probing %d subjects\n", B.ns);
	subjects_probe(&B);
	int usable = 0;
	for (int si = 0; si < B.ns; si++) {
		if (B.s[si].available)
			usable++;
		else
			fprintf(stderr, "kalloc-bench: skipping %s: %s\n",
				B.s[si].label, B.s[si].why);
	}
	int failures = usable ? measure_all(&B) : 0;

	fflush(stderr);
	report_table(&B, stdout);
	fflush(stdout);
	int rc = failures || !usable ? 1 : 0;
	if (!usable)
		fprintf(stderr, "kalloc-bench: nothing could be measured\n");
	if (c->csv && report_csv(&B, c->csv)) {
		fprintf(stderr, "kalloc-bench: cannot write %s: %s\n", c->csv,
			strerror(errno));
		rc = 1;
	}
	if (c->svg && report_svg(&B, c->svg)) {
		fprintf(stderr, "kalloc-bench: cannot write %s: %s\n", c->svg,
			strerror(errno));
		rc = 1;
	}
	return rc;
}

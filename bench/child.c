/*
 * One measurement, in a fresh process: open the allocator, run one
 * workload, time it, and report on stdout one line the driver parses:
 *
 *   ok ns=N cpu_ns=C hwm_kb=K base_kb=B origin=PATH version=V
 *   refused REASON            (exit 3: this subject cannot run here)
 *
 * ns is wall-clock time, cpu_ns the user + system time of all the process's
 * threads during the run (less sensitive to a busy machine), hwm_kb is VmHWM after the run (the process's peak RSS: fresh per run since
 * the process is), base_kb is VmRSS just before it.  A workload failure
 * exits 1 after the workload said why on stderr.
 *
 * Compiled once per allocator interface (see api.h): kalloc-bench runs this
 * for kalloc backends, the kalloc-bench-* helpers for the others.
 */
#include "child.h"
#include "api.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Everything printed goes through one stack buffer and write(2). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(1, line, (size_t)n) < 0)
		_exit(5);
}

#if !defined(BENCH_API_KALLOC)
/* The file a symbol comes from, or "?". */
static const char *origin_of(void *sym)
{
	Dl_info info;
	if (sym && dladdr(sym, &info) && info.dli_fname && *info.dli_fname)
		return info.dli_fname;
	return "?";
}
#endif

/*
 * Opens the allocator the executable was built for.  `subject` names the
 * kalloc backend (BENCH_API_KALLOC) and is ignored otherwise.  On refusal
 * writes the reason into why and returns -1.
 */
static int open_allocator(const char *subject, kalloc_t **a, char *origin,
			  char *version, size_t cap, char *why, size_t whycap)
{
	*a = NULL;
	snprintf(version, cap, "-");
#if defined(BENCH_API_KALLOC)
	if (kalloc_open(subject, NULL, a) != KALLOC_OK) {
		snprintf(why, whycap, "kalloc_open(\"%s\") refused: %s", subject,
			 kalloc_errmsg());
		return -1;
	}
	kalloc_info_t info;
	kalloc_info(*a, &info);
	snprintf(origin, cap, "%s", info.path ? info.path : "?");
	snprintf(version, cap, "%s", info.version ? info.version : "-");
#elif defined(BENCH_API_MALLOC)
	(void)subject, (void)why, (void)whycap;
	/* whoever answers to "malloc" now: libc, or a preloaded library */
	snprintf(origin, cap, "%s", origin_of(dlsym(RTLD_DEFAULT, "malloc")));
#elif defined(BENCH_API_JEMALLOC)
	(void)subject, (void)why, (void)whycap;
	const char *v = NULL;
	size_t sz = sizeof(v);
	if (mallctl("version", (void *)&v, &sz, NULL, 0) == 0 && v)
		snprintf(version, cap, "%s", v);
	snprintf(origin, cap, "%s", origin_of((void *)mallocx));
#elif defined(BENCH_API_TCMALLOC)
	(void)subject, (void)why, (void)whycap;
	int maj, min;
	const char *patch;
	snprintf(version, cap, "%s", tc_version(&maj, &min, &patch));
	snprintf(origin, cap, "%s", origin_of((void *)tc_malloc));
#elif defined(BENCH_API_MIMALLOC)
	(void)subject, (void)why, (void)whycap;
	int v = mi_version();
	snprintf(version, cap, "%d.%d.%d", v / 100, v / 10 % 10, v % 10);
	snprintf(origin, cap, "%s", origin_of((void *)mi_malloc));
#endif
	return 0;
}

static void close_allocator(kalloc_t *a)
{
#if defined(BENCH_API_KALLOC)
	kalloc_close(a);
#else
	(void)a;
#endif
}

/* User + system time of every thread of the process, ended ones included. */
static uint64_t cpu_ns(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
		       1000000000u +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static int usage(void)
{
	say("refused usage: --child WORKLOAD SUBJECT [--quick] [--probe] "
	    "[--seed N]");
	return 2;
}

int bench_child_main(int argc, char **argv)
{
	/* argv: [0] prog, [1] --child, [2] workload, [3] subject, options */
	if (argc < 4 || strcmp(argv[1], "--child") != 0)
		return usage();
	const char *wname = argv[2], *subject = argv[3];
	int quick = 0, probe = 0;
	uint64_t seed = 0;
	int have_seed = 0;
	for (int i = 4; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			quick = 1;
		} else if (strcmp(argv[i], "--probe") == 0) {
			probe = 1;
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
			have_seed = 1;
		} else {
			return usage();
		}
	}
	const bench_workload_t *w = bench_find_workload(wname);
	if (!w && !probe) {
		say("refused no workload '%s'", wname);
		return 2;
	}

	char origin[512], version[128], why[768];
	kalloc_t *a;
	if (open_allocator(subject, &a, origin, version, sizeof(origin), why,
			   sizeof(why))) {
		say("refused %s", why);
		return 3;
	}
	if (probe) {
		say("ok ns=0 cpu_ns=0 hwm_kb=0 base_kb=0 origin=%s version=%s", origin,
		    version);
		close_allocator(a);
		return 0;
	}

	bench_params_t p = quick ? w->quick : w->full;
	if (have_seed)
		p.seed = seed ? seed : 1;
	unsigned long base = bench_status_kb("VmRSS");
	uint64_t c0 = cpu_ns();
	uint64_t t0 = bench_now_ns();
	int rc = w->run(a, &p);
	uint64_t ns = bench_now_ns() - t0;
	uint64_t cpu = cpu_ns() - c0;
	unsigned long hwm = bench_status_kb("VmHWM");
	if (rc)
		return 1;
	say("ok ns=%llu cpu_ns=%llu hwm_kb=%lu base_kb=%lu origin=%s version=%s",
	    (unsigned long long)ns, (unsigned long long)cpu, hwm, base, origin,
	    version);
	close_allocator(a);
	return 0;
}

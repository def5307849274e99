/*
 * Fault injection, after the kernel's failslab: KALLOC_FAIL (or
 * kalloc_fail_config) for the whole process, kalloc_fail_nth for one thread.
 *
 * The hot path reads kalloc__fail_armed only; everything else happens when
 * some injection is configured.  Decisions are serialised by one lock so a
 * given seed and call sequence always fail the same calls.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

_Atomic int kalloc__fail_armed; /* threads with a countdown + (config on) */

/* ---- per-thread: kalloc_fail_nth -------------------------------------- */

static FAST_TLS unsigned countdown;
/* > 0 while a plugin calls another backend through the host (kv on slab):
 * such nested calls take the plain path (dispatch.c's instrumented()), so
 * injection, kalloc_fail_nth's countdown included, sees the caller's calls. */
FAST_TLS int kalloc__host_depth;

void kalloc_fail_nth(unsigned n)
{
	if (countdown && !n)
		kalloc__fail_arm(-1);
	else if (!countdown && n)
		kalloc__fail_arm(1);
	countdown = n;
}

/* ---- process-wide: KALLOC_FAIL ---------------------------------------- */

struct failslab {
	bool on;
	unsigned probability; /* percent */
	unsigned long interval;
	long times;           /* -1 unlimited */
	unsigned long long space;
	unsigned long long seed;
	int verbose;
	bool cache_filter;    /* only caches created with KALLOC_CACHE_FAILSLAB */
};

static pthread_mutex_t fs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct failslab fs;
static unsigned long long fs_calls, fs_rng, fs_space_used;
static _Atomic uint64_t fs_injected;
static _Atomic bool fs_cache_filter; /* fs.cache_filter, read unlocked */

static bool parse_num(const char *v, size_t n, long long min, long long max,
		      long long *out)
{
	char buf[32];
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, v, n);
	buf[n] = 0;
	char *end;
	errno = 0;
	long long x = strtoll(buf, &end, 0);
	if (errno || *end || x < min || x > max)
		return false;
	*out = x;
	return true;
}

static const struct field {
	const char *name;
	long long min, max;
} fields[] = {
	{ "probability", 0, 100 }, { "interval", 1, 1LL << 62 },
	{ "times", -1, 1LL << 62 }, { "space", 0, 1LL << 62 },
	{ "seed", 0, 1LL << 62 },   { "verbose", 0, 2 },
	{ "cache_filter", 0, 1 },
};

/* Parses spec into *out; KALLOC_EINVAL with errmsg on the first bad field. */
static int parse(const char *spec, struct failslab *out)
{
	long long val[7] = { -1, 1, -1, 0, 1, 0, 0 }; /* -1 probability: unset */
	const char *p = spec;
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *colon = memchr(p, ':', len);
		size_t k, nf = sizeof(fields) / sizeof(fields[0]);
		for (k = 0; colon && k < nf; k++)
			if (strlen(fields[k].name) == (size_t)(colon - p) &&
			    !strncmp(fields[k].name, p, (size_t)(colon - p)))
				break;
		if (!colon || k == nf)
			return kalloc__error(KALLOC_EINVAL,
					     "KALLOC_FAIL: unknown field '%.*s'; valid: "
					     "probability, interval, times, space, seed, "
					     "verbose, cache_filter (as name:value, comma-separated)",
					     (int)(len < 40 ? len : 40), p);
		if (!parse_num(colon + 1, len - (size_t)(colon + 1 - p),
			       fields[k].min, fields[k].max, &val[k]))
			return kalloc__error(KALLOC_EINVAL,
					     "KALLOC_FAIL: %s must be a number from "
					     "%lld to %lld", fields[k].name,
					     fields[k].min, fields[k].max);
		p += len + (p[len] == ',');
	}
	*out = (struct failslab){
		.on = spec[0] != 0,
		.probability = (unsigned)(val[0] < 0 ? 100 : val[0]),
		.interval = (unsigned long)val[1],
		.times = (long)val[2],
		.space = (unsigned long long)val[3],
		.seed = (unsigned long long)val[4],
		.verbose = (int)val[5],
		.cache_filter = val[6] != 0,
	};
	return KALLOC_OK;
}

int kalloc_fail_config(const char *spec)
{
	struct failslab next;
	int err = parse(spec ? spec : "", &next);
	if (err)
		return err;
	pthread_mutex_lock(&fs_lock);
	if (fs.on != next.on)
		kalloc__fail_arm(next.on ? 1 : -1);
	fs = next;
	atomic_store(&fs_cache_filter, next.cache_filter);
	fs_calls = fs_space_used = 0;
	fs_rng = next.seed ? next.seed : 1;
	atomic_store(&fs_injected, 0);
	pthread_mutex_unlock(&fs_lock);
	return KALLOC_OK;
}

uint64_t kalloc_fail_count(void)
{
	return atomic_load(&fs_injected);
}

void kalloc__fail_init(void)
{
	const char *spec = kalloc__env("KALLOC_FAIL");
	if (spec && kalloc_fail_config(spec))
		kalloc__log(NULL, "%s; fault injection stays off", kalloc_errmsg());
}

/* xorshift64*: small, deterministic, good enough for percentages. */
static unsigned long long next_random(void)
{
	fs_rng ^= fs_rng >> 12;
	fs_rng ^= fs_rng << 25;
	fs_rng ^= fs_rng >> 27;
	return fs_rng * 0x2545F4914F6CDD1DULL;
}

static bool failslab_decide(size_t size, int *verbose)
{
	pthread_mutex_lock(&fs_lock);
	bool fail = false;
	*verbose = fs.verbose;
	/* The kernel's order (should_fail_ex): no more failures left, then
	 * the budget, which a request passes only while more than its size
	 * remains (a larger one is a candidate and consumes nothing), then
	 * the interval, then the probability. */
	if (fs.on && fs.times != 0) {
		if (fs.space - fs_space_used > size) {
			fs_space_used += size;
		} else if (++fs_calls % fs.interval == 0 &&
			   next_random() % 100 < fs.probability) {
			fail = true;
			if (fs.times > 0)
				fs.times--;
		}
	}
	pthread_mutex_unlock(&fs_lock);
	return fail;
}

bool kalloc__fail_now(size_t size, kalloc_flags_t flags)
{
	bool fail = false;
	/* As the kernel's should_failslab: NOFAIL never fails, and with
	 * cache_filter only caches marked FAILSLAB do. */
	if ((flags & KALLOC_NOFAIL) || kalloc__cache_call == CACHE_CALL_DECIDED)
		return false;
	if (atomic_load_explicit(&fs_cache_filter, memory_order_relaxed) &&
	    kalloc__cache_call != CACHE_CALL_FAILSLAB)
		return false;
	if (countdown && --countdown == 0) {
		kalloc__fail_arm(-1);
		fail = true;
	} else {
		int verbose;
		fail = failslab_decide(size, &verbose);
		if (fail && verbose && !(flags & KALLOC_NOWARN))
			kalloc__log(NULL, "KALLOC_FAIL: injecting a failure of a "
				    "%zu-byte allocation", size);
	}
	if (fail)
		atomic_fetch_add(&fs_injected, 1);
	return fail;
}

/*
 * churn: one thread replaces random blocks of 8-512 B among 8k live ones,
 * the bread and butter of a small-object allocator (issue 4).
 * churn2t: the same on two threads at once, each with its own blocks.
 * overhead: the same loop on a small, cache-resident live set, where the
 * allocator's own work is smallest and a layer in front of it shows most
 * (issue 5: kalloc API vs the library's own entry points).
 *
 * Reads: ops (per thread), live, min, max, threads (churn2t), seed.
 */
#include "workloads.h"

static int refill(kalloc_t *a, struct wl_slot *s, size_t i, size_t size,
		  const char *name)
{
	void *p = b_alloc(a, size, WL_ALIGN);
	if (!p)
		return bench_fail(name, "allocating %zu bytes failed", size);
	bench_mark(p, size, bench_tag(i, size));
	s[i] = (struct wl_slot){ p, size };
	return 0;
}

static int release(kalloc_t *a, struct wl_slot *s, size_t i, const char *name)
{
	if (!bench_marked(s[i].p, s[i].size, bench_tag(i, s[i].size)))
		return bench_fail(name, "block %p (%zu bytes) was corrupted",
				  s[i].p, s[i].size);
	b_free(a, s[i].p, s[i].size, WL_ALIGN);
	s[i].p = NULL;
	return 0;
}

int wl_churn_loop(kalloc_t *a, const bench_params_t *p, uint64_t stream,
		  const char *name)
{
	size_t n = p->live;
	struct wl_slot *s = bench_map(n * sizeof(*s));
	uint64_t rng = bench_seed(p->seed, stream);
	int rc = 0;
	size_t filled = 0;
	for (; filled < n && !rc; filled++)
		rc = refill(a, s, filled, bench_range(&rng, p->min, p->max), name);
	for (uint64_t op = 0; op < p->ops && !rc; op++) {
		size_t i = bench_range(&rng, 0, n - 1);
		rc = release(a, s, i, name);
		if (!rc)
			rc = refill(a, s, i, bench_range(&rng, p->min, p->max),
				    name);
	}
	for (size_t i = 0; i < filled; i++)
		if (s[i].p && release(a, s, i, name))
			rc = -1;
	bench_unmap(s, n * sizeof(*s));
	return rc;
}

int wl_churn(kalloc_t *a, const bench_params_t *p)
{
	return wl_churn_loop(a, p, 0, "churn");
}

int wl_overhead(kalloc_t *a, const bench_params_t *p)
{
	return wl_churn_loop(a, p, 0, "overhead");
}

struct churn2t {
	kalloc_t *a;
	const bench_params_t *p;
};

static int churn2t_thread(void *arg, unsigned i)
{
	struct churn2t *c = arg;
	return wl_churn_loop(c->a, c->p, i, "churn2t");
}

int wl_churn2t(kalloc_t *a, const bench_params_t *p)
{
	struct churn2t c = { a, p };
	return wl_run_threads(p->threads, churn2t_thread, &c, "churn2t");
}

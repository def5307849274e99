/*
 * aligned2t: two threads each replace random blocks among `live`, every
 * block with a random power-of-two alignment from 16 to 4096 (the
 * posix_memalign / aligned_alloc pattern of SIMD and I/O buffers; issue 4).
 * A misaligned result fails the run.
 *
 * Reads: ops (per thread), live, min, max (sizes), threads, seed.
 */
#include "workloads.h"

struct aslot {
	void *p;
	size_t size, align;
};

struct aligned {
	kalloc_t *a;
	const bench_params_t *p;
};

static int take(kalloc_t *a, struct aslot *s, size_t i, uint64_t *rng,
		const bench_params_t *p)
{
	size_t size = bench_range(rng, p->min, p->max);
	size_t align = (size_t)1 << bench_range(rng, 4, 12);
	void *b = b_alloc(a, size, align);
	if (!b)
		return bench_fail("aligned2t", "allocating %zu bytes aligned to "
				  "%zu failed", size, align);
	if ((uintptr_t)b & (align - 1))
		return bench_fail("aligned2t", "%p is not aligned to %zu", b,
				  align);
	bench_mark(b, size, bench_tag(i, size));
	s[i] = (struct aslot){ b, size, align };
	return 0;
}

static int give(kalloc_t *a, struct aslot *s, size_t i)
{
	if (!bench_marked(s[i].p, s[i].size, bench_tag(i, s[i].size)))
		return bench_fail("aligned2t", "block %p (%zu bytes) was corrupted",
				  s[i].p, s[i].size);
	b_free(a, s[i].p, s[i].size, s[i].align);
	s[i].p = NULL;
	return 0;
}

static int aligned_thread(void *arg, unsigned t)
{
	struct aligned *c = arg;
	const bench_params_t *p = c->p;
	size_t n = p->live;
	struct aslot *s = bench_map(n * sizeof(*s));
	uint64_t rng = bench_seed(p->seed, t);
	int rc = 0;
	size_t filled = 0;
	for (; filled < n && !rc; filled++)
		rc = take(c->a, s, filled, &rng, p);
	for (uint64_t op = 0; op < p->ops && !rc; op++) {
		size_t i = bench_range(&rng, 0, n - 1);
		rc = give(c->a, s, i);
		if (!rc)
			rc = take(c->a, s, i, &rng, p);
	}
	for (size_t i = 0; i < filled; i++)
		if (s[i].p && give(c->a, s, i))
			rc = -1;
	bench_unmap(s, n * sizeof(*s));
	return rc;
}

int wl_aligned2t(kalloc_t *a, const bench_params_t *p)
{
	struct aligned c = { a, p };
	return wl_run_threads(p->threads, aligned_thread, &c, "aligned2t");
}

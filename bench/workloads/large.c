/*
 * large: churn of big blocks (issue 3): `live` blocks of random sizes from
 * 64 KiB to 4 MiB, `ops` times one is freed and replaced.  Only the first
 * and last byte of each block are written (the tags), so the time is the
 * allocator's: mapping, unmapping, caching, and the page faults it causes.
 *
 * Reads: ops, live, min, max, seed.
 */
#include "workloads.h"

int wl_large(kalloc_t *a, const bench_params_t *p)
{
	size_t n = p->live;
	struct wl_slot *s = bench_map(n * sizeof(*s));
	uint64_t rng = bench_seed(p->seed, 0);
	int rc = 0;
	for (uint64_t op = 0; op < p->ops + n && !rc; op++) {
		/* the first n operations fill the slots in order */
		size_t i = op < n ? (size_t)op : bench_range(&rng, 0, n - 1);
		if (s[i].p) {
			if (!bench_marked(s[i].p, s[i].size, bench_tag(i, s[i].size))) {
				rc = bench_fail("large", "block %p (%zu bytes) was "
						"corrupted", s[i].p, s[i].size);
				break;
			}
			b_free(a, s[i].p, s[i].size, WL_ALIGN);
			s[i].p = NULL;
		}
		size_t size = bench_range(&rng, p->min, p->max);
		void *b = b_alloc(a, size, WL_ALIGN);
		if (!b) {
			rc = bench_fail("large", "allocating %zu bytes failed", size);
			break;
		}
		bench_mark(b, size, bench_tag(i, size));
		s[i] = (struct wl_slot){ b, size };
	}
	for (size_t i = 0; i < n; i++)
		if (s[i].p)
			b_free(a, s[i].p, s[i].size, WL_ALIGN);
	bench_unmap(s, n * sizeof(*s));
	return rc;
}

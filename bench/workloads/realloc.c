/*
 * realloc: one thread resizes random blocks among `live`, as string
 * builders and small growable arrays do: three times in four a block grows
 * by 1-64 bytes (back to a small size once past max), otherwise it takes a
 * random size in [min, max], growing or shrinking (issue 4).  The kept
 * content is checked after every call.
 *
 * Reads: ops, live, min, max, seed.
 */
#include "workloads.h"

int wl_realloc(kalloc_t *a, const bench_params_t *p)
{
	size_t n = p->live;
	struct wl_slot *s = bench_map(n * sizeof(*s));
	uint64_t rng = bench_seed(p->seed, 0);
	int rc = 0;
	for (uint64_t op = 0; op < p->ops && !rc; op++) {
		size_t i = bench_range(&rng, 0, n - 1);
		unsigned char tag = bench_tag(i, 0);
		size_t old = s[i].size, size;
		if (old && bench_range(&rng, 0, 3) != 0) {
			size = old + bench_range(&rng, 1, 64);
			if (size > p->max)
				size = bench_range(&rng, p->min, 2 * p->min);
		} else {
			size = bench_range(&rng, p->min, p->max);
		}
		unsigned char *b = old ? b_realloc(a, s[i].p, old, size, WL_ALIGN)
				       : b_alloc(a, size, WL_ALIGN);
		if (!b) {
			rc = bench_fail("realloc", "resizing %zu to %zu bytes "
					"failed", old, size);
			break;
		}
		/* tag at 0 and at the old last byte: both must survive */
		if (old && (b[0] != tag || (size >= old && b[old - 1] != tag))) {
			rc = bench_fail("realloc", "%zu -> %zu bytes lost content",
					old, size);
			break;
		}
		bench_mark(b, size, tag);
		s[i] = (struct wl_slot){ b, size };
	}
	for (size_t i = 0; i < n; i++)
		if (s[i].p)
			b_free(a, s[i].p, s[i].size, WL_ALIGN);
	bench_unmap(s, n * sizeof(*s));
	return rc;
}

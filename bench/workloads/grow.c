/*
 * Growth, the Vmalloc / KVmalloc case (issue 3).  Every growth writes one
 * byte per new page (the cost a real fill pays in page faults, without the
 * memset that would be the same for every allocator) and checks samples of
 * the kept content.
 *
 * grow: one buffer doubling from 16 B to `max` bytes (1 GiB).
 *   Reads: max.
 * vectors: `count` vectors each growing by 1.5x from 16 B to `max` bytes
 *   (a few MiB), `live` of them at a time in round-robin, so a vector's
 *   neighbours stand in the way of growing in place; a group is freed once
 *   all its vectors are full.
 *   Reads: count, live, max.
 */
#include "workloads.h"

static unsigned char *grow_to(kalloc_t *a, unsigned char *b, size_t old,
			      size_t size, const char *name)
{
	unsigned char *n = old ? b_realloc(a, b, old, size, WL_ALIGN)
			       : b_alloc(a, size, WL_ALIGN);
	if (!n) {
		bench_fail(name, "growing %zu to %zu bytes failed", old, size);
		return NULL;
	}
	if (old && !wl_check_grown(n, old)) {
		bench_fail(name, "growing %zu to %zu bytes lost content", old,
			   size);
		b_free(a, n, size, WL_ALIGN);
		return NULL;
	}
	wl_touch(n, old, size);
	return n;
}

int wl_grow(kalloc_t *a, const bench_params_t *p)
{
	unsigned char *b = NULL;
	size_t len = 0;
	for (size_t size = 16; size <= p->max; size *= 2) {
		unsigned char *n = grow_to(a, b, len, size, "grow");
		if (!n)
			return -1; /* the old block is gone or still held: the
				    * child exits right after */
		b = n;
		len = size;
	}
	if (b)
		b_free(a, b, len, WL_ALIGN);
	return 0;
}

int wl_vectors(kalloc_t *a, const bench_params_t *p)
{
	size_t group = p->live;
	struct wl_slot *v = bench_map(group * sizeof(*v));
	int rc = 0;
	for (unsigned done = 0; done < p->count && !rc; done += group) {
		size_t n = p->count - done < group ? p->count - done : group;
		for (size_t i = 0; i < n; i++)
			v[i] = (struct wl_slot){ NULL, 0 };
		for (int growing = 1; growing && !rc; ) {
			growing = 0;
			for (size_t i = 0; i < n && !rc; i++) {
				size_t old = v[i].size;
				if (old >= p->max)
					continue;
				size_t size = old ? old + old / 2 : 16;
				size = (size + 7) & ~(size_t)7;
				if (size > p->max)
					size = p->max;
				unsigned char *b = grow_to(a, v[i].p, old, size,
							   "vectors");
				if (!b) {
					rc = -1;
					break;
				}
				v[i] = (struct wl_slot){ b, size };
				growing = 1;
			}
		}
		for (size_t i = 0; i < n && !rc; i++)
			b_free(a, v[i].p, v[i].size, WL_ALIGN);
	}
	bench_unmap(v, group * sizeof(*v));
	return rc;
}

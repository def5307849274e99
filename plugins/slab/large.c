/*
 * Large blocks: what neither a class nor a medium span holds (sizes above
 * MEDIUM_MAX, alignments above a unit), each its own anonymous mapping.
 * The mapping starts on a 4 MiB granule (so the registry and chunk_of()
 * find its header) with one header page, or `align` bytes of header space
 * for larger alignments; the block follows.
 * Pages never touched stay unbacked, so the header space costs one page.
 *
 * Growth up to WARM_COPY_MAX first looks for a cached mapping to copy into
 * (resident pages: a copy costs less than the page faults of fresh ones,
 * as a vector growing 1.5x at a time writes them all); then it tries
 * mremap in place, then moves the pages to a new granule with mremap (no
 * copy).  Grown pages come from the kernel zeroed; a cached mapping's are
 * zeroed when the caller asks (ZERO), so callers zero only up to the old
 * usable length.  A growing block (realloc) takes a cached mapping of up
 * to three times the length asked, and a later realloc keeps the mapping
 * while the block fills two thirds of it: a vector growing 1.5x at a time
 * takes its next steps in place.  Shrinking below that unmaps the tail.
 * A freed mapping goes to the large cache (lcache.c) when it fits there; a
 * reused one is dirty.  Under NOWAIT only in-place no-ops and reuse from
 * the cache run.
 */
#include "slab.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

static _Atomic uint64_t large_count, large_bytes;

static size_t header_space(size_t align)
{
	return align > PAGE_SIZE_ ? align : PAGE_SIZE_;
}

/* Bytes to map for a block of size after hdr bytes; 0 on overflow. */
static size_t map_len_for(size_t hdr, size_t size)
{
	size_t n = hdr + size;
	if (n < size || n > SIZE_MAX - PAGE_SIZE_)
		return 0;
	return (n + PAGE_SIZE_ - 1) & ~(size_t)(PAGE_SIZE_ - 1);
}

/*
 * Bytes the large cache may hold: the recent demand, the peak of live
 * large bytes, halved each decay period after it was last reached, and at
 * least LCACHE_MIN_BUDGET.  So a program churning large blocks finds
 * as many bytes cached as it recently had live (enough for a fit in every
 * size band it uses), and never more: a cached mapping's resident pages are
 * at most what the program's own blocks touched.
 */
#define LCACHE_MIN_BUDGET ((size_t)8 << 20)

/* The longest cached mapping a request for len bytes takes: 2 len, and
 * 3 len for a growing block (realloc), which will likely grow into it in
 * place (a vector growing 1.5x at a time takes its next steps there). */
static size_t cache_fit(size_t len, bool growing)
{
	size_t k = growing ? 3 : 2;
	return len <= SIZE_MAX / k ? k * len : SIZE_MAX;
}

/* Largest mapping grown by copying into a warm cached one. */
#define WARM_COPY_MAX ((size_t)4 << 20)

static _Atomic uint64_t demand, demand_ms;

/* A new peak restarts the period: the demand halves a decay period after
 * it was last reached. */
static void demand_saw(uint64_t live)
{
	uint64_t d = atomic_load_explicit(&demand, memory_order_relaxed);
	while (live > d)
		if (atomic_compare_exchange_weak_explicit(&demand, &d, live,
							  memory_order_relaxed,
							  memory_order_relaxed)) {
			atomic_store_explicit(&demand_ms, (uint64_t)slab_now_ms(),
					      memory_order_relaxed);
			return;
		}
}

/* n more bytes of large blocks live (a new block, or a grown one). */
static void live_grew(size_t n)
{
	demand_saw(atomic_fetch_add_explicit(&large_bytes, n,
					     memory_order_relaxed) + n);
}

static size_t cache_budget(void)
{
	uint64_t live = atomic_load_explicit(&large_bytes, memory_order_relaxed);
	uint64_t now = (uint64_t)slab_now_ms();
	uint64_t then = atomic_load_explicit(&demand_ms, memory_order_relaxed);
	if (now - then >= (uint64_t)slab_decay_ms &&
	    atomic_compare_exchange_strong_explicit(&demand_ms, &then, now,
						    memory_order_relaxed,
						    memory_order_relaxed)) {
		uint64_t d = atomic_load_explicit(&demand, memory_order_relaxed);
		atomic_store_explicit(&demand, d / 2 > live ? d / 2 : live,
				      memory_order_relaxed);
	}
	uint64_t d = atomic_load_explicit(&demand, memory_order_relaxed);
	return d > LCACHE_MIN_BUDGET ? (size_t)d : LCACHE_MIN_BUDGET;
}

/*
 * The last large blocks freed whose mappings slab still holds (in the large
 * cache), by address: once freed, a large block's mapping is no longer
 * registered, so without this a second free of it would look like a
 * pointer slab never made.  An entry goes when a new large block starts at
 * its address, and before its mapping goes back to the system (after
 * which the address may be anyone's).  Only misuse paths scan it.
 */
#define FREED_RING 64
static void *_Atomic freed_ring[FREED_RING];
static atomic_uint freed_next;

static void forget_freed(const void *p)
{
	for (unsigned i = 0; i < FREED_RING; i++) {
		void *q = (void *)p;
		atomic_compare_exchange_strong(&freed_ring[i], &q, NULL);
	}
}

void slab_large_forget_range(const void *base, size_t len)
{
	for (unsigned i = 0; i < FREED_RING; i++) {
		void *q = atomic_load_explicit(&freed_ring[i], memory_order_relaxed);
		if ((const char *)q >= (const char *)base &&
		    (const char *)q < (const char *)base + len)
			atomic_compare_exchange_strong(&freed_ring[i], &q, NULL);
	}
}

bool slab_large_was_freed(const void *p)
{
	for (unsigned i = 0; i < FREED_RING; i++)
		if (atomic_load_explicit(&freed_ring[i], memory_order_relaxed) == p)
			return true;
	return false;
}

void *slab_large_alloc(size_t size, size_t align, bool nowait, bool growing,
		       size_t *usable, bool *zeroed)
{
	size_t hdr = header_space(align);
	size_t len = map_len_for(hdr, size);
	if (!len)
		return NULL;
	slab_tick(nowait);
	size_t got;
	char *base = slab_lcache_get(len, cache_fit(len, growing), nowait, &got);
	*zeroed = !base;
	if (base)
		len = got;
	else if (!nowait)
		base = slab_map_aligned(len);
	if (!base)
		return NULL;
	struct large *l = (struct large *)base;
	l->kind = KIND_LARGE;
	l->map_len = len;
	l->hdr_len = hdr;
	l->usable = len - hdr;
	forget_freed(large_block(l));
	slab_register(REG_LARGE, base, true);
	atomic_fetch_add_explicit(&large_count, 1, memory_order_relaxed);
	live_grew(len);
	*usable = l->usable;
	return large_block(l);
}

/* Keeps errno: frees do (plugin.h). */
void slab_large_free(struct large *l)
{
	int saved = errno;
	size_t len = l->map_len;
	void *ptr = large_block(l); /* the cache overwrites the header */
	if (slab_tool)
		slab_tool->free(ptr);
	/* unregistered before the range can be reused or mapped again */
	slab_register(REG_LARGE, l, false);
	atomic_fetch_sub_explicit(&large_count, 1, memory_order_relaxed);
	atomic_fetch_sub_explicit(&large_bytes, len, memory_order_relaxed);
	if (slab_lcache_put(l, len, cache_budget())) {
		atomic_store_explicit(&freed_ring[atomic_fetch_add_explicit(
					      &freed_next, 1, memory_order_relaxed) %
				      FREED_RING],
				      ptr, memory_order_relaxed);
	} else {
		slab_large_forget_range(l, len);
		slab_unmap(l, len);
	}
	slab_tick(false);
	errno = saved;
}

void *slab_large_resize(struct large *l, size_t size, size_t align,
			bool nowait, bool zero, size_t *usable)
{
	char *base = (char *)l;
	size_t hdr = l->hdr_len;
	if (((uintptr_t)large_block(l) & (align - 1)) != 0)
		return NULL;
	size_t len = map_len_for(hdr, size);
	if (!len)
		return NULL;
	size_t old_len = l->map_len;
	if (len <= old_len) {
		/* the tail goes when it is over a third of the mapping: a
		 * block growing into a larger cached mapping keeps it */
		if (!nowait && old_len - len > old_len / 3) {
			slab_unmap(base + len, old_len - len);
			l->map_len = len;
			l->usable = len - hdr;
			atomic_fetch_sub_explicit(&large_bytes, old_len - len,
						  memory_order_relaxed);
		}
		*usable = l->usable;
		return large_block(l);
	}
	if (nowait)
		return NULL;
	size_t got;
	char *warm = len <= WARM_COPY_MAX ?
			     slab_lcache_get(len, cache_fit(len, true), false,
					     &got) :
			     NULL;
	if (warm) { /* dirty pages: zero what the block gains, if asked */
		struct large *n = (struct large *)warm;
		n->kind = KIND_LARGE;
		n->map_len = got;
		n->hdr_len = hdr;
		forget_freed(large_block(n));
		n->usable = got - hdr;
		memcpy(large_block(n), large_block(l), l->usable);
		if (zero)
			memset(large_block(n) + l->usable, 0,
			       n->usable - l->usable);
		slab_register(REG_LARGE, warm, true);
		atomic_fetch_add_explicit(&large_count, 1, memory_order_relaxed);
		live_grew(got);
		slab_large_free(l);
		*usable = n->usable;
		return large_block(n);
	}
	if (mremap(base, old_len, len, 0) == MAP_FAILED) {
		/* move the pages to a fresh granule-aligned range */
		char *to = slab_map_aligned(len);
		if (!to)
			return NULL;
		slab_register(REG_LARGE, base, false);
		if (slab_tool) /* base's range goes: reset the tool's view */
			slab_tool->open(base, old_len);
		if (mremap(base, old_len, old_len, MREMAP_MAYMOVE | MREMAP_FIXED,
			   to) == MAP_FAILED) {
			slab_register(REG_LARGE, base, true);
			munmap(to, len);
			return NULL;
		}
		base = to;
		l = (struct large *)base;
		l->hdr_len = hdr;
		forget_freed(large_block(l));
		slab_register(REG_LARGE, base, true);
	}
	l->map_len = len;
	l->usable = len - hdr;
	live_grew(len - old_len);
	*usable = l->usable;
	return large_block(l);
}

int slab_large_stats(kalloc_stats_fn fn, void *ctx)
{
	fn(ctx, "slab", "large_blocks",
	   atomic_load_explicit(&large_count, memory_order_relaxed));
	fn(ctx, "slab", "large_bytes",
	   atomic_load_explicit(&large_bytes, memory_order_relaxed));
	return 0;
}

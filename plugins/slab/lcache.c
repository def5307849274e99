/*
 * The large cache: freed large mappings kept for reuse, so a program that
 * keeps replacing big blocks does not pay an mmap and a munmap for each.
 *
 * A cached mapping is not ours to hand out as a block: it is unregistered
 * (owns() and the free checks see nothing there) and its header page holds
 * a struct cached instead of a struct large.  Entries sit on two lists:
 * their bin's (by length, four bins per power of two, newest first) and
 * the age list (newest first).  A request of n bytes takes an entry of
 * n..2n bytes whole (no trimming), a growing block's (realloc) one of
 * n..3n: it will likely grow into it, in place.  Its pages may be dirty,
 * never zero.
 *
 * Bounds: at most `budget` bytes cached (the caller's: the recent demand,
 * large.c's cache_budget), the oldest entries go first; but a mapping
 * that would push out more than half of what is cached is not kept (one
 * buffer freed at its peak is worth less than the many blocks it would
 * displace).  An entry freed slab_decay_ms ago is unmapped on the next
 * slow path (slab_tick).  And the cache gives way to fresh memory: a slab
 * span on units that are not resident (n bytes the program is about to
 * fault in) unmaps the oldest n bytes of entries, so a program's freed
 * large blocks are not held while it faults in as much other memory, and
 * its RSS does not carry both.  With a decay of 0 nothing is cached.
 * lcache_lock guards everything; system calls run after it is dropped.
 */
#include "slab.h"

#include <sys/mman.h>

struct cached {
	size_t len;                   /* bytes mapped */
	uint32_t freed_ms;
	unsigned bin;
	struct cached *bnext, *bprev; /* bin list, newest first */
	struct cached *anext, *aprev; /* age list, newest first */
};

#define SUB_BINS 4 /* bins per power of two */
#define BINS (64 * SUB_BINS)
#define SCAN 8     /* entries looked at per bin */

pthread_mutex_t slab_lcache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached *bins[BINS];
static struct cached *newest, *oldest;
static size_t total;                 /* bytes cached (lock) */
static _Atomic uint64_t total_stat, hits;

/* Bins are monotonic in len; bin b + SUB_BINS starts at twice bin b's start. */
static unsigned bin_of(size_t len)
{
	uint64_t x = len / PAGE_SIZE_;
	unsigned lg = 63u - (unsigned)__builtin_clzll(x | 1);
	if (lg < 2)
		return (unsigned)x;
	return lg * SUB_BINS + (unsigned)((x >> (lg - 2)) & (SUB_BINS - 1));
}

static void unlink_entry(struct cached *c)
{
	if (c->bprev)
		c->bprev->bnext = c->bnext;
	else
		bins[c->bin] = c->bnext;
	if (c->bnext)
		c->bnext->bprev = c->bprev;
	if (c->aprev)
		c->aprev->anext = c->anext;
	else
		newest = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	else
		oldest = c->aprev;
	total -= c->len;
}

/* Unlinks the oldest entries while over budget or past the decay; returns
 * them as a list through anext.  Lock held. */
static struct cached *evict_locked(size_t budget, uint32_t now)
{
	struct cached *out = NULL;
	while (oldest && (total > budget ||
			  now - oldest->freed_ms >= (uint32_t)slab_decay_ms)) {
		struct cached *c = oldest;
		unlink_entry(c);
		c->anext = out;
		out = c;
	}
	atomic_store_explicit(&total_stat, total, memory_order_relaxed);
	return out;
}

static void unmap_all(struct cached *c)
{
	while (c) {
		struct cached *next = c->anext;
		slab_large_forget_range(c, c->len); /* no longer slab's */
		slab_unmap(c, c->len);
		c = next;
	}
}

void *slab_lcache_get(size_t len, size_t max_len, bool nowait, size_t *got)
{
	if (slab_tool) /* a memory tool: freed mappings go back at once */
		return NULL;
	if (!atomic_load_explicit(&total_stat, memory_order_relaxed))
		return NULL;
	if (nowait) {
		if (pthread_mutex_trylock(&slab_lcache_lock))
			return NULL;
	} else {
		pthread_mutex_lock(&slab_lcache_lock);
	}
	struct cached *found = NULL;
	for (unsigned k = bin_of(len); k <= bin_of(max_len) && k < BINS && !found;
	     k++) {
		struct cached *c = bins[k];
		for (int i = 0; c && i < SCAN; c = c->bnext, i++)
			if (c->len >= len && c->len <= max_len) {
				found = c;
				break;
			}
	}
	if (found) {
		unlink_entry(found);
		atomic_store_explicit(&total_stat, total, memory_order_relaxed);
		atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed);
		*got = found->len;
	}
	pthread_mutex_unlock(&slab_lcache_lock);
	return found;
}

bool slab_lcache_put(void *base, size_t len, size_t budget)
{
	if (slab_tool)
		return false;
	if (slab_decay_ms == 0 || len > budget)
		return false;
	struct cached *c = base;
	uint32_t now = (uint32_t)slab_now_ms();
	c->len = len;
	c->freed_ms = now;
	c->bin = bin_of(len);
	c->bprev = c->aprev = NULL;
	pthread_mutex_lock(&slab_lcache_lock);
	if (total + len > budget && total + len - budget > total / 2) {
		/* it would displace most of the cache: one long mapping
		 * (a buffer grown to its peak) is worth less than the many
		 * it would push out */
		pthread_mutex_unlock(&slab_lcache_lock);
		return false;
	}
	c->bnext = bins[c->bin];
	if (c->bnext)
		c->bnext->bprev = c;
	bins[c->bin] = c;
	c->anext = newest;
	if (newest)
		newest->aprev = c;
	else
		oldest = c;
	newest = c;
	total += len;
	struct cached *out = evict_locked(budget, now);
	pthread_mutex_unlock(&slab_lcache_lock);
	unmap_all(out);
	return true;
}

void slab_lcache_yield(size_t len)
{
	if (!atomic_load_explicit(&total_stat, memory_order_relaxed))
		return;
	struct cached *out = NULL;
	size_t freed = 0;
	pthread_mutex_lock(&slab_lcache_lock);
	while (oldest && freed < len) {
		struct cached *c = oldest;
		unlink_entry(c);
		freed += c->len;
		c->anext = out;
		out = c;
	}
	atomic_store_explicit(&total_stat, total, memory_order_relaxed);
	pthread_mutex_unlock(&slab_lcache_lock);
	unmap_all(out);
}

void slab_lcache_decay(void)
{
	if (!atomic_load_explicit(&total_stat, memory_order_relaxed))
		return;
	pthread_mutex_lock(&slab_lcache_lock);
	struct cached *out = evict_locked(SIZE_MAX, (uint32_t)slab_now_ms());
	pthread_mutex_unlock(&slab_lcache_lock);
	unmap_all(out);
}

int slab_lcache_stats(kalloc_stats_fn fn, void *ctx)
{
	fn(ctx, "slab", "large_cached_bytes",
	   atomic_load_explicit(&total_stat, memory_order_relaxed));
	fn(ctx, "slab", "large_cache_hits",
	   atomic_load_explicit(&hits, memory_order_relaxed));
	return 0;
}

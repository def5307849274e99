/*
 * Medium blocks: sizes above the classes (CLASS_MAX) up to MEDIUM_MAX, and
 * alignments above CLASS_MAX_ALIGN up to a unit.  Each is a span of whole
 * units of a slab chunk holding one block, so it shares the chunks'
 * resident free units with the classes: a program whose blocks outgrow the
 * classes (vectors growing 1.5x at a time) takes the units its smaller
 * blocks just freed, where a mapping of its own would fault in fresh pages
 * and a page table, and make two system calls.
 *
 * The span's descriptor is a slab of one block in slot CLASS_MEDIUM, owned
 * by no heap.  So the fast free's tests hold for it as for any slab (the
 * registry, the block start), and it finds no magazine for the slot and
 * comes here.  Bit 0 of the span's bitmap says the block is live: a free
 * clears it atomically, and a free that finds it clear is a double free;
 * then the span goes back to the pool as resident free units, for any
 * class or medium block.  A freed span has no size, so a later free of the
 * pointer is caught by the block start test.  realloc resizes in place:
 * a span gives its tail units back, and takes the free units after it.
 *
 * The medium cache: a thread's heap keeps the last MEDIUM_CACHE spans its
 * thread freed (MEDIUM_CACHE_UNITS units at most), whole (WHERE_CACHED,
 * bit 0 clear: a free of the block is still a double free), and its next
 * medium block takes one that fits without the pool's lock, its pages
 * resident.  Two threads churning
 * blocks of 40-200 KiB otherwise meet at the pool's lock at every call.
 * The cache goes back to the pool when its thread ends; a thread without a
 * heap of its own (under a memory tool) frees to the pool.
 */
#include "slab.h"

#include <errno.h>
#include <string.h>

static unsigned units_for(size_t size)
{
	return size ? (unsigned)((size + SLAB_UNIT - 1) >> SLAB_UNIT_SHIFT) : 1;
}

/* Takes span i out of h's cache, keeping the others oldest first. */
static struct slab *cache_remove(struct heap *h, unsigned i)
{
	struct slab *s = h->medium[i];
	for (; i + 1 < h->medium_n; i++)
		h->medium[i] = h->medium[i + 1];
	h->medium_n--;
	h->medium_units -= s->span;
	return s;
}

/* The smallest span of h's cache holding n units but no more than 2n,
 * taken out; NULL if none.  Owner only. */
static struct slab *cache_take(struct heap *h, unsigned n)
{
	unsigned best = h->medium_n;
	for (unsigned i = 0; i < h->medium_n; i++) {
		unsigned span = h->medium[i]->span;
		if (span >= n && span <= 2 * n &&
		    (best == h->medium_n || span < h->medium[best]->span))
			best = i;
	}
	if (best == h->medium_n)
		return NULL;
	struct slab *s = cache_remove(h, best);
	__atomic_store_n(&s->where, WHERE_NONE, __ATOMIC_RELAXED);
	return s;
}

/* This thread's heap, got at its first medium block as at its first small
 * one (not under a memory tool, which keeps threads without one). */
static struct heap *own_heap(bool nowait)
{
	struct heap *h = slab_tl_heap;
	if (h == HEAP_NONE && !slab_tool)
		h = slab_heap_acquire(nowait);
	return h && heap_owned(h) ? h : NULL;
}

void *slab_medium_alloc(size_t size, bool nowait, bool atomic, bool growing,
			size_t *usable, bool *zeroed)
{
	unsigned n = units_for(size);
	unsigned more = growing ? 2 * n : n;
	if (more > MEDIUM_MAX_UNITS)
		more = MEDIUM_MAX_UNITS;
	struct heap *h = own_heap(nowait);
	struct slab *s = h ? cache_take(h, more) : NULL;
	*zeroed = false;
	if (!s) {
		slab_tick(nowait);
		s = slab_pool_get_medium(more, nowait, atomic, zeroed);
	}
	if (!s && more > n)
		s = slab_pool_get_medium(n, nowait, atomic, zeroed);
	if (!s)
		return NULL;
	struct block *b = (struct block *)slab_base(s);
	atomic_store_explicit(&s->bits[0], 1, memory_order_relaxed);
	/* a class block freed here may have left its tag (none under a
	 * memory tool, which keeps the memory closed until it is told) */
	if (!*zeroed && !slab_tool)
		b->tag = 0;
	*usable = s->size;
	return b;
}

void slab_medium_free(struct slab *s, void *p)
{
	if (!(atomic_fetch_and_explicit(&s->bits[0], ~(uint64_t)1,
					memory_order_relaxed) & 1))
		slab_double_free(p, s->size);
	int saved = errno; /* the pool may madvise */
	if (slab_tool)
		slab_tool->free(p);
	struct heap *h = own_heap(false);
	if (!h) {
		slab_pool_put(s, false);
		errno = saved;
		return;
	}
	/* the oldest go, to make room (a span is at most MEDIUM_MAX_UNITS) */
	while (h->medium_n == MEDIUM_CACHE ||
	       h->medium_units + s->span > MEDIUM_CACHE_UNITS)
		slab_pool_put(cache_remove(h, 0), false);
	__atomic_store_n(&s->where, WHERE_CACHED, __ATOMIC_RELAXED);
	h->medium[h->medium_n++] = s;
	h->medium_units += s->span;
	errno = saved;
}

void slab_medium_flush(struct heap *h)
{
	for (unsigned i = 0; i < h->medium_n; i++)
		slab_pool_put(h->medium[i], false);
	h->medium_n = 0;
	h->medium_units = 0;
}

bool slab_medium_resize(struct slab *s, size_t size, bool nowait, bool zero,
			size_t *usable)
{
	size_t had = s->size;
	bool clean;
	if (size > MEDIUM_MAX ||
	    !slab_pool_resize_medium(s, units_for(size), nowait, &clean))
		return false;
	if (zero && s->size > had && !clean)
		memset(slab_base(s) + had, 0, s->size - had);
	*usable = s->size;
	return true;
}

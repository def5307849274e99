/*
 * A heap's slabs: refilling the current slab of a class, and moving slabs
 * between "current", "partial" (has free blocks) and "full" (on no list).
 * Only the heap's owner runs this code, so nothing here is atomic except
 * what remote threads also read.
 *
 * Invariants: h->cur[c] is &slab_empty or a slab with where == WHERE_CUR;
 * h->partial[c] lists slabs with where == WHERE_PARTIAL, each with at least
 * one free block; a slab with where == WHERE_FULL has none on its free list
 * and nothing left to carve.  An empty slab that is not current goes back to
 * the pool (kept as partial only when a NOWAIT caller found the pool busy).
 */
#include "slab.h"

#include <errno.h>

/* cur of a class without a slab: nothing free, nothing to carve. */
struct slab slab_empty;

/*
 * Partial slabs queue up at the tail and are reused from the head: a slab
 * that just got its first block back waits while more frees arrive, so the
 * next refill gets many blocks, not one.
 */
static void partial_push(struct heap *h, struct slab *s)
{
	s->where = WHERE_PARTIAL;
	s->next = NULL;
	s->prev = h->partial_tail[s->cls];
	if (s->prev)
		s->prev->next = s;
	else
		h->partial[s->cls] = s;
	h->partial_tail[s->cls] = s;
}

static void partial_unlink(struct heap *h, struct slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		h->partial[s->cls] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		h->partial_tail[s->cls] = s->prev;
	s->next = s->prev = NULL;
}

/* Puts the next `batch` never-used blocks on the free list, in address
 * order (the pages are touched as they are first needed). */
static void carve(struct slab *s)
{
	uint32_t n = slab_classes[s->cls].batch;
	if (n > s->nblocks - s->bump)
		n = s->nblocks - s->bump;
	char *first = slab_base(s) + (size_t)s->bump * s->size;
	if (slab_tool)
		slab_tool->open(first, (size_t)n * s->size);
	struct block *next = s->free;
	for (uint32_t i = n; i-- > 0;) {
		struct block *b = (struct block *)(first + (size_t)i * s->size);
		b->next = link_enc(next, b);
		next = b;
	}
	if (slab_tool) /* free blocks are no-access */
		slab_tool->hide(first, (size_t)n * s->size);
	s->free = next;
	s->bump += n;
}

/* slab_pop off the fast paths: under valgrind the link is opened first
 * (the block is described to the tool once it is handed out). */
void *slab_pop_slow(struct slab *s)
{
	if (slab_tool)
		slab_tool->open(s->free, sizeof(struct block));
	return slab_pop(s);
}

void slab_retire_if_empty(struct heap *h, struct slab *s, bool nowait)
{
	if (s->where == WHERE_CUR || !slab_bits_empty(s))
		return;
	if (s->where == WHERE_PARTIAL)
		partial_unlink(h, s);
	s->where = WHERE_NONE;
	if (!slab_pool_put(s, nowait))
		partial_push(h, s); /* NOWAIT and the pool is busy: keep it */
}

/* Keeps errno: frees do (plugin.h), and retiring a slab may madvise. */
void slab_free_slow(struct heap *h, struct slab *s, bool nowait)
{
	int saved = errno;
	if (s->where == WHERE_FULL)
		partial_push(h, s);
	slab_retire_if_empty(h, s, nowait);
	errno = saved;
}

void *slab_alloc_slow(struct heap *h, unsigned cls, bool nowait, bool atomic)
{
	struct slab *s = h->cur[cls];
	bool drained = false;
	for (;;) {
		if (s->free)
			return slab_pop_slow(s);
		if (s->bump < s->nblocks) {
			carve(s);
			return slab_pop_slow(s);
		}
		if (!drained && atomic_load_explicit(&h->pending,
						     memory_order_relaxed)) {
			drained = true;
			slab_drain(h, nowait);
			s = h->cur[cls]; /* unchanged, perhaps refilled */
			continue;
		}
		/* s is exhausted: it is full until blocks come back */
		if (s != &slab_empty)
			s->where = WHERE_FULL;
		s = h->partial[cls];
		if (s) {
			partial_unlink(h, s);
		} else {
			if (!nowait)
				slab_tick(false);
			s = slab_pool_get(cls, h, nowait, atomic);
			if (!s) {
				h->cur[cls] = &slab_empty;
				return NULL;
			}
		}
		s->where = WHERE_CUR;
		h->cur[cls] = s;
	}
}

void slab_heap_drop_current(struct heap *h)
{
	for (unsigned c = 0; c < CLASS_SLOTS; c++) {
		struct slab *s = h->cur[c];
		if (s == &slab_empty)
			continue;
		h->cur[c] = &slab_empty;
		if (s->free || s->bump < s->nblocks)
			partial_push(h, s);
		else
			s->where = WHERE_FULL;
		slab_retire_if_empty(h, s, false);
	}
}

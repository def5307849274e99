/*
 * Frees from a thread that does not own the block's slab.
 *
 * The freeing thread pushes the block onto the slab's thread_free stack with
 * one CAS.  Bit 0 of thread_free says "this slab is announced": the push that
 * sets it (the first since the owner last collected) also pushes the slab
 * onto its heap's pending stack.  The owner takes the whole pending stack
 * with one exchange and, for each slab, the whole thread_free stack with one
 * exchange (which clears the bit).  Hence:
 *   - a slab is on its heap's pending stack at most once, and only while its
 *     announced bit is set;
 *   - the owner only collects a slab it popped from pending, so a slab is
 *     never released while a remote thread is still announcing it (the
 *     remote's block keeps its bit set until collected);
 *   - both stacks are popped whole, so there is no ABA.
 * A heap outlives its thread (abandoned heaps are reused), so pushing onto
 * the owner's pending stack is always safe.
 */
#include "slab.h"

#define ANNOUNCED ((uintptr_t)1)

/* Pushes the chain first..last (linked as the free list is) onto s's
 * remote stack with one CAS, announcing s to its owner if it is the first
 * since the owner last collected. */
static void push_chain(struct slab *s, struct block *first, struct block *last)
{
	uintptr_t old = atomic_load_explicit(&s->thread_free, memory_order_relaxed);
	do {
		struct block *head = (struct block *)(old & ~ANNOUNCED);
		if (unlikely(head == first))
			slab_double_free(first, s->size);
		/* the link is hidden again before the chain is published: once
		 * the exchange succeeds, it may be someone else's block */
		if (slab_tool)
			slab_tool->open(last, sizeof(*last));
		last->next = link_enc(head, last);
		if (slab_tool)
			slab_tool->hide(last, sizeof(*last));
	} while (!atomic_compare_exchange_weak_explicit(
		&s->thread_free, &old, (uintptr_t)first | ANNOUNCED,
		memory_order_acq_rel, memory_order_relaxed));
	if (old & ANNOUNCED)
		return;
	struct heap *h = atomic_load_explicit(&s->owner, memory_order_relaxed);
	struct slab *top = atomic_load_explicit(&h->pending, memory_order_relaxed);
	do {
		s->pending_next = top;
	} while (!atomic_compare_exchange_weak_explicit(
		&h->pending, &top, s, memory_order_release, memory_order_relaxed));
}

void slab_remote_free(struct slab *s, struct block *b, uint64_t idx)
{
	/* The owner sets the bit at allocation and clears it only once the
	 * block is back; a clear bit here means the block is not live. */
	if (unlikely(!slab_is_live(s, idx)))
		slab_double_free(b, s->size);
	/* every free comes here under a memory tool (slab.h) */
	if (slab_tool && !slab_tool->free(b)) /* queued: the bit is still set */
		slab_double_free(b, s->size);
	push_chain(s, b, b);
}

/* A run of a magazine's blocks, all of s (never under a memory tool: no
 * heap has a magazine then). */
void slab_remote_free_run(struct slab *s, struct block **bs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct block *b = bs[i];
		if (unlikely(!slab_is_live(s, slab_index(s, (uintptr_t)b +
							      s->neg_base))))
			slab_double_free(b, s->size);
		if (i)
			bs[i - 1]->next = link_enc(b, bs[i - 1]);
	}
	push_chain(s, bs[0], bs[n - 1]);
}

/*
 * Moves s's remote frees onto its free list.  Their links are encoded as
 * the free list's, so the stack is checked block by block (each must be a
 * block of s, allocated: a block freed twice is caught here) and spliced
 * whole in front of the free list.
 */
static void collect(struct heap *h, struct slab *s, bool nowait)
{
	/* acq_rel: our reads of s (pending_next) happen before the next
	 * announcer, which acquires this store, rewrites them */
	uintptr_t v = atomic_exchange_explicit(&s->thread_free, 0,
					       memory_order_acq_rel);
	struct block *first = (struct block *)(v & ~ANNOUNCED);
	if (!first)
		return;
	bool was_empty = !s->free;
	struct block *b = first, *prev = NULL;
	for (;;) {
		int64_t idx = slab_block_index(s, b);
		if (unlikely(idx < 0))
			slab_corrupt_list(prev ? (void *)prev : (void *)s, b);
		slab_unmark(s, b, (uint64_t)idx);
		if (slab_tool)
			slab_tool->open(b, sizeof(*b));
		struct block *next = link_dec(b->next, b);
		if (slab_tool && next)
			slab_tool->hide(b, sizeof(*b));
		if (!next)
			break;
		prev = b;
		b = next;
	}
	b->next = link_enc(s->free, b);
	if (slab_tool)
		slab_tool->hide(b, sizeof(*b));
	s->free = first;
	if (was_empty || slab_bits_empty(s))
		slab_free_slow(h, s, nowait);
}

void slab_drain(struct heap *h, bool nowait)
{
	struct slab *s = atomic_exchange_explicit(&h->pending, NULL,
						  memory_order_acquire);
	while (s) {
		struct slab *next = s->pending_next;
		collect(h, s, nowait);
		s = next;
	}
}

/*
 * The block table: what the core knows of each tracked block (debug, leak
 * and accounting modes), keyed by address and kept off the block so backend
 * pointers are never changed.
 *
 * 32 shards, each an open-addressing table with linear probing and
 * backward-shift deletion (no tombstones), in mmap'd memory: the table must
 * never call malloc, which under the shim is the allocator being tracked.
 * fork's prepare handler holds every shard lock at once, with the
 * registry's and the plugins' own: ThreadSanitizer's deadlock detector
 * aborts past 64 locks held by one thread, which 64 shards reached.
 * Invariant: a shard's load stays <= 1/2; an empty slot has ptr == NULL.
 */
#include "internal.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#define SHARDS 32
#define MIN_SLOTS 256

struct shard {
	pthread_mutex_t lock;
	struct kalloc_block *slots;
	size_t cap;  /* power of two, or 0 before first use */
	size_t used;
} __attribute__((aligned(64)));

static struct shard shards[SHARDS] = {
	[0 ... SHARDS - 1] = { .lock = PTHREAD_MUTEX_INITIALIZER },
};

static inline size_t hash(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

static struct shard *shard_of(const void *p)
{
	return &shards[(hash(p) >> 20) % SHARDS];
}

static void *map(size_t bytes)
{
	void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

/* Slot holding p, or the empty slot where it would go. */
static struct kalloc_block *probe(struct shard *s, const void *p)
{
	size_t mask = s->cap - 1;
	for (size_t i = hash(p) & mask;; i = (i + 1) & mask)
		if (s->slots[i].ptr == p || !s->slots[i].ptr)
			return &s->slots[i];
}

static bool grow(struct shard *s)
{
	size_t cap = s->cap ? s->cap * 2 : MIN_SLOTS;
	struct kalloc_block *old = s->slots;
	size_t old_cap = s->cap;
	struct kalloc_block *slots = map(cap * sizeof(*slots));
	if (!slots)
		return false;
	s->slots = slots;
	s->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].ptr)
			*probe(s, old[i].ptr) = old[i];
	if (old)
		munmap(old, old_cap * sizeof(*old));
	return true;
}

bool kalloc__block_put(const struct kalloc_block *b)
{
	struct shard *s = shard_of(b->ptr);
	pthread_mutex_lock(&s->lock);
	bool ok = (s->used + 1) * 2 <= s->cap || grow(s);
	if (ok) {
		struct kalloc_block *slot = probe(s, b->ptr);
		s->used += !slot->ptr;
		*slot = *b;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

bool kalloc__block_get(const void *ptr, struct kalloc_block *out)
{
	struct shard *s = shard_of(ptr);
	pthread_mutex_lock(&s->lock);
	bool found = s->cap && probe(s, ptr)->ptr;
	if (found)
		*out = *probe(s, ptr);
	pthread_mutex_unlock(&s->lock);
	return found;
}

bool kalloc__block_take(const void *ptr, struct kalloc_block *out)
{
	struct shard *s = shard_of(ptr);
	pthread_mutex_lock(&s->lock);
	struct kalloc_block *hole = s->cap ? probe(s, ptr) : NULL;
	bool found = hole && hole->ptr;
	if (found) {
		*out = *hole;
		/* backward-shift: pull later entries of the run into the hole */
		size_t mask = s->cap - 1, i = (size_t)(hole - s->slots);
		for (size_t j = (i + 1) & mask; s->slots[j].ptr; j = (j + 1) & mask) {
			size_t home = hash(s->slots[j].ptr) & mask;
			/* move j to i unless its home lies cyclically in (i, j] */
			if (((j - home) & mask) >= ((j - i) & mask)) {
				s->slots[i] = s->slots[j];
				i = j;
			}
		}
		memset(&s->slots[i], 0, sizeof(s->slots[i]));
		s->used--;
	}
	pthread_mutex_unlock(&s->lock);
	return found;
}

size_t kalloc__block_foreach(void (*fn)(const struct kalloc_block *, void *),
			     void *ctx)
{
	size_t n = 0;
	for (int k = 0; k < SHARDS; k++) {
		struct shard *s = &shards[k];
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < s->cap; i++)
			if (s->slots[i].ptr) {
				fn(&s->slots[i], ctx);
				n++;
			}
		pthread_mutex_unlock(&s->lock);
	}
	return n;
}

void kalloc__block_lock_all(void)
{
	for (int k = 0; k < SHARDS; k++)
		pthread_mutex_lock(&shards[k].lock);
}

void kalloc__block_unlock_all(void)
{
	/* The child unlocks as the parent does: plain mutexes have no owner
	 * to check, and re-initialising a held lock leaves it held in
	 * ThreadSanitizer's view. */
	for (int k = SHARDS - 1; k >= 0; k--)
		pthread_mutex_unlock(&shards[k].lock);
}

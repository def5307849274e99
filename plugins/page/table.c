/*
 * The block table: address -> rec, sharded, linear probing with
 * backward-shift deletion (no tombstones), each shard's slots in their own
 * mapping that is replaced by one twice as large when it fills up.
 */
#include "page.h"

#include <sys/mman.h>

#define INITIAL_CAP 128 /* 4 KiB of slots per shard */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* The top bits pick the shard, the low bits the home slot. */
static size_t home(const struct shard *s, uintptr_t key)
{
	return (size_t)mix(key) & (s->cap - 1);
}

struct shard *table_shard(struct table *t, uintptr_t key)
{
	return &t->shard[mix(key) >> 60];
}

static struct rec *new_slots(size_t cap)
{
	return map_meta(cap * sizeof(struct rec));
}

/*
 * Under a memory tool the records are off limits while no shard lock is
 * held: memcheck's leak check must not take a block's record for a
 * pointer that keeps it reachable.
 */
static const kalloc_tools_t *hide;

int table_init(struct table *t, const kalloc_tools_t *tools)
{
	hide = tools;
	for (int i = 0; i < TABLE_SHARDS; i++) {
		struct shard *s = &t->shard[i];
		pthread_mutex_init(&s->lock, NULL);
		s->cap = INITIAL_CAP;
		s->count = 0;
		s->slot = new_slots(s->cap);
		if (!s->slot) {
			table_fini(t);
			return KALLOC_ENOMEM;
		}
	}
	return KALLOC_OK;
}

void table_fini(struct table *t)
{
	for (int i = 0; i < TABLE_SHARDS; i++) {
		struct shard *s = &t->shard[i];
		if (s->slot)
			unmap_meta(s->slot, s->cap * sizeof(struct rec));
		s->slot = NULL;
	}
}

bool shard_lock(struct shard *s, bool nowait)
{
	if (nowait) {
		if (pthread_mutex_trylock(&s->lock))
			return false;
	} else {
		pthread_mutex_lock(&s->lock);
	}
	if (hide)
		hide->open(s->slot, s->cap * sizeof(struct rec));
	return true;
}

void shard_unlock(struct shard *s)
{
	if (hide)
		hide->hide(s->slot, s->cap * sizeof(struct rec));
	pthread_mutex_unlock(&s->lock);
}

struct rec *shard_find(struct shard *s, uintptr_t key)
{
	size_t mask = s->cap - 1;
	for (size_t i = home(s, key);; i = (i + 1) & mask) {
		if (s->slot[i].ptr == key)
			return &s->slot[i];
		if (s->slot[i].ptr == 0)
			return NULL;
	}
}

static void place(struct shard *s, const struct rec *r)
{
	size_t mask = s->cap - 1;
	size_t i = home(s, r->ptr);
	while (s->slot[i].ptr)
		i = (i + 1) & mask;
	s->slot[i] = *r;
	s->count++;
}

static bool grow(struct shard *s)
{
	size_t old_cap = s->cap;
	struct rec *old = s->slot, *fresh = new_slots(old_cap * 2);
	if (!fresh)
		return false;
	s->slot = fresh;
	s->cap = old_cap * 2;
	s->count = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].ptr)
			place(s, &old[i]);
	unmap_meta(old, old_cap * sizeof(struct rec));
	return true;
}

int shard_insert(struct shard *s, const struct rec *r, bool nowait)
{
	if (nowait) {
		if ((s->count + 1) * 4 > s->cap * 3)
			return KALLOC_EAGAIN;
	} else if ((s->count + 1) * 2 > s->cap && !grow(s) &&
		   s->count + 2 > s->cap) {
		return KALLOC_ENOMEM; /* must keep one empty slot */
	}
	place(s, r);
	return KALLOC_OK;
}

void shard_remove(struct shard *s, struct rec *slot)
{
	size_t mask = s->cap - 1;
	size_t hole = (size_t)(slot - s->slot);
	/* Shift back each following entry whose home does not lie in the
	 * cyclic range (hole, j]: it could not be found past the hole. */
	for (size_t j = (hole + 1) & mask; s->slot[j].ptr; j = (j + 1) & mask) {
		size_t h = home(s, s->slot[j].ptr);
		bool between = hole <= j ? (hole < h && h <= j)
					 : (hole < h || h <= j);
		if (!between) {
			s->slot[hole] = s->slot[j];
			hole = j;
		}
	}
	s->slot[hole].ptr = 0;
	s->count--;
}

bool table_lock_pair(struct table *t, uintptr_t a, uintptr_t b, bool nowait)
{
	struct shard *x = table_shard(t, a), *y = table_shard(t, b);
	if (x > y) {
		struct shard *tmp = x;
		x = y;
		y = tmp;
	}
	if (!shard_lock(x, nowait))
		return false;
	if (x != y && !shard_lock(y, nowait)) {
		shard_unlock(x);
		return false;
	}
	return true;
}

void table_unlock_pair(struct table *t, uintptr_t a, uintptr_t b)
{
	struct shard *x = table_shard(t, a), *y = table_shard(t, b);
	shard_unlock(x);
	if (x != y)
		shard_unlock(y);
}

/*
 * The pool: slab chunks and the spans carved from them, and the decay that
 * returns free spans to the OS.
 *
 * Under pool_lock: the chunk list, every chunk's free/dirty masks and
 * release times, and the descriptors of free units.  A span handed out
 * belongs to its heap until it comes back through slab_pool_put.
 *
 * Decay: a freed span stays resident ("dirty") so that it can be reused
 * cheaply; once it has been free for slab_decay_ms it is madvise'd away, and
 * a chunk whose units are all free and clean is unmapped.  Purges run on slow
 * paths (getting or returning a span, slab_tick) and never under NOWAIT.
 *
 * The reserve chunk is mapped at start-up and serves only ATOMIC requests
 * when no other chunk has room; it is never unmapped.
 */
#include "slab.h"

#include <sys/mman.h>

pthread_mutex_t slab_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct chunk *chunks;  /* mapped chunks, oldest first */
static struct chunk *reserve; /* the ATOMIC reserve */
static long last_purge;       /* ms */

#define ALL_UNITS (~(uint64_t)1)

static struct chunk *chunk_new(bool is_reserve)
{
	struct chunk *c = slab_map_aligned(CHUNK_SIZE);
	if (!c)
		return NULL;
	c->kind = KIND_CHUNK;
	c->reserve = is_reserve;
	c->free_mask = ALL_UNITS;
	slab_register(REG_CHUNK, c, true);
	return c;
}

int slab_pool_init(void)
{
	pthread_mutex_lock(&slab_pool_lock);
	if (!reserve)
		reserve = chunk_new(true);
	pthread_mutex_unlock(&slab_pool_lock);
	return reserve ? KALLOC_OK : KALLOC_ENOMEM;
}

static uint64_t run_mask(unsigned n)
{
	return ((uint64_t)1 << n) - 1;
}

/* First of n consecutive units all in `mask`; -1 if none. */
static int find_run(unsigned n, uint64_t mask)
{
	uint64_t starts = mask;
	for (unsigned i = 1; i < n; i++)
		starts &= mask >> i;
	return starts ? __builtin_ctzll(starts) : -1;
}

static struct slab *span_take(struct chunk *c, unsigned u, unsigned cls,
			      struct heap *h)
{
	const struct class_info *ci = &slab_classes[cls];
	for (unsigned k = 0; k < ci->span; k++)
		c->slabs[u + k].head = (uint8_t)k;
	c->free_mask &= ~(run_mask(ci->span) << u);
	c->dirty_mask &= ~(run_mask(ci->span) << u);
	struct slab *s = &c->slabs[u];
	s->free = NULL;
	s->base = (char *)c + (size_t)u * SLAB_UNIT;
	s->bits = c->bits[u];
	s->magic = ci->magic;
	s->size = ci->size;
	s->limit = ci->nblocks * ci->size;
	atomic_store_explicit(&s->used, 0, memory_order_relaxed);
	s->where = WHERE_CUR;
	s->cls = (uint8_t)cls;
	atomic_store_explicit(&s->owner, h, memory_order_relaxed);
	atomic_store_explicit(&s->thread_free, 0, memory_order_relaxed);
	s->pending_next = s->next = s->prev = NULL;
	s->nblocks = ci->nblocks;
	s->bump = 0;
	s->span = ci->span;
	return s;
}

/* A run of n free units in the chunk list, resident ones first (reusing
 * them costs no page faults and lets the others decay). */
static struct slab *take_run(struct chunk *list, unsigned n, unsigned cls,
			     struct heap *h)
{
	for (int pass = 0; pass < 2; pass++)
		for (struct chunk *c = list; c; c = c->next) {
			uint64_t mask = c->free_mask &
					(pass ? ~(uint64_t)0 : c->dirty_mask);
			int u = find_run(n, mask);
			if (u >= 0)
				return span_take(c, (unsigned)u, cls, h);
		}
	return NULL;
}

static void purge_locked(long now)
{
	last_purge = now;
	for (struct chunk **pp = &chunks, *c; (c = *pp);) {
		uint64_t expired = 0;
		for (uint64_t d = c->dirty_mask; d; d &= d - 1) {
			unsigned u = (unsigned)__builtin_ctzll(d);
			if ((uint32_t)now - c->released_ms[u] >= (uint64_t)slab_decay_ms)
				expired |= (uint64_t)1 << u;
		}
		c->dirty_mask &= ~expired;
		while (expired) {
			unsigned u = (unsigned)__builtin_ctzll(expired);
			unsigned n = (unsigned)__builtin_ctzll(~(expired >> u));
			madvise((char *)c + (size_t)u * SLAB_UNIT, n * SLAB_UNIT,
				MADV_DONTNEED);
			expired &= ~(run_mask(n) << u);
		}
		if (c->free_mask == ALL_UNITS && !c->dirty_mask) {
			*pp = c->next;
			slab_register(REG_CHUNK, c, false);
			munmap(c, CHUNK_SIZE);
			continue;
		}
		pp = &c->next;
	}
	/* the reserve is purged but never unmapped */
	uint64_t d = reserve ? reserve->dirty_mask : 0;
	while (d) {
		unsigned u = (unsigned)__builtin_ctzll(d);
		madvise((char *)reserve + (size_t)u * SLAB_UNIT, SLAB_UNIT,
			MADV_DONTNEED);
		d &= d - 1;
	}
	if (reserve)
		reserve->dirty_mask = 0;
}

static void maybe_purge_locked(void)
{
	long now = slab_now_ms();
	long every = slab_decay_ms / 2;
	if (now - last_purge >= (every ? every : 0))
		purge_locked(now);
}

struct slab *slab_pool_get(unsigned cls, struct heap *h, bool nowait,
			   bool atomic)
{
	unsigned n = slab_classes[cls].span;
	if (nowait) {
		if (pthread_mutex_trylock(&slab_pool_lock))
			return NULL;
	} else {
		pthread_mutex_lock(&slab_pool_lock);
	}
	struct slab *s = take_run(chunks, n, cls, h);
	if (!s && !nowait) {
		struct chunk *c = chunk_new(false);
		if (c) {
			struct chunk **pp = &chunks;
			while (*pp)
				pp = &(*pp)->next;
			*pp = c; /* oldest first: new spans prefer old chunks */
			s = take_run(c, n, cls, h);
		}
	}
	if (!s && atomic && reserve) /* (never linked: next is NULL) */
		s = take_run(reserve, n, cls, h);
	if (!nowait)
		maybe_purge_locked();
	pthread_mutex_unlock(&slab_pool_lock);
	return s;
}

bool slab_pool_put(struct slab *s, bool nowait)
{
	if (nowait) {
		if (pthread_mutex_trylock(&slab_pool_lock))
			return false;
	} else {
		pthread_mutex_lock(&slab_pool_lock);
	}
	struct chunk *c = chunk_of(s);
	unsigned u = (unsigned)(s - c->slabs);
	unsigned n = s->span;
	s->size = 0;
	s->limit = 0;
	s->where = WHERE_NONE;
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	for (unsigned k = 0; k < n; k++)
		c->slabs[u + k].head = 0;
	uint32_t now = (uint32_t)slab_now_ms();
	for (unsigned k = 0; k < n; k++)
		c->released_ms[u + k] = now;
	c->free_mask |= run_mask(n) << u;
	c->dirty_mask |= run_mask(n) << u;
	if (!nowait)
		maybe_purge_locked();
	pthread_mutex_unlock(&slab_pool_lock);
	return true;
}

void slab_pool_purge(void)
{
	pthread_mutex_lock(&slab_pool_lock);
	maybe_purge_locked();
	pthread_mutex_unlock(&slab_pool_lock);
}

void slab_pool_atfork_child(void)
{
	pthread_mutex_init(&slab_pool_lock, NULL);
}

/* ---- statistics (the /proc/slabinfo analogue) ---------------------------- */

struct class_count {
	uint64_t slabs, objs, active;
};

int slab_pool_stats(kalloc_stats_fn fn, void *ctx)
{
	struct class_count cc[CLASS_COUNT] = { { 0, 0, 0 } };
	uint64_t nchunks = 0, used_units = 0, dirty = 0, clean = 0;
	pthread_mutex_lock(&slab_pool_lock);
	for (int pass = 0; pass < 2; pass++) {
		for (struct chunk *c = pass ? reserve : chunks; c;
		     c = pass ? NULL : c->next) {
			nchunks++;
			dirty += (uint64_t)__builtin_popcountll(c->dirty_mask);
			clean += (uint64_t)__builtin_popcountll(c->free_mask &
								~c->dirty_mask);
			used_units += (uint64_t)__builtin_popcountll(~c->free_mask &
								     ALL_UNITS);
			for (unsigned u = 1; u < CHUNK_UNITS; u++) {
				struct slab *s = &c->slabs[u];
				if (!s->size || s->head)
					continue;
				cc[s->cls].slabs++;
				cc[s->cls].objs += s->nblocks;
				cc[s->cls].active += atomic_load_explicit(
					&s->used, memory_order_relaxed);
			}
		}
	}
	pthread_mutex_unlock(&slab_pool_lock);

	fn(ctx, "slab", "chunks", nchunks);
	fn(ctx, "slab", "chunk_bytes", nchunks * CHUNK_SIZE);
	fn(ctx, "slab", "units_in_use", used_units);
	fn(ctx, "slab", "units_free_resident", dirty);
	fn(ctx, "slab", "units_free_returned", clean);
	for (unsigned k = 0; k < CLASS_COUNT; k++) {
		if (!cc[k].slabs)
			continue;
		const struct class_info *ci = &slab_classes[k];
		char group[32];
		/* "kmalloc-<size>", written by hand: no stdio in the plugin */
		char digits[12];
		int nd = 0;
		for (uint32_t v = ci->size; v; v /= 10)
			digits[nd++] = (char)('0' + v % 10);
		int g = 0;
		for (const char *p = "kmalloc-"; *p; p++)
			group[g++] = *p;
		while (nd)
			group[g++] = digits[--nd];
		group[g] = 0;
		fn(ctx, group, "active_objs", cc[k].active);
		fn(ctx, group, "num_objs", cc[k].objs);
		fn(ctx, group, "objsize", ci->size);
		fn(ctx, group, "objperslab", ci->nblocks);
		fn(ctx, group, "unitsperslab", ci->span);
		fn(ctx, group, "num_slabs", cc[k].slabs);
	}
	return 0;
}

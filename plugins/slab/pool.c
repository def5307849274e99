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
 * a chunk whose units are all free and clean is unmapped.  Dirty units are
 * also capped at 1/4 of the units in use (at least 2 MiB): past half again
 * that, the oldest chunks' go back at once, down to half the cap, so a
 * program's peak RSS carries little freed memory.  Purges run on slow
 * paths (getting or returning a span, slab_tick) and never under NOWAIT.
 *
 * The reserve chunk is mapped at start-up and serves only ATOMIC requests
 * when no other chunk has room; it is never unmapped.
 */
#include "slab.h"

#include <string.h>
#include <sys/mman.h>

pthread_mutex_t slab_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct chunk *chunks;  /* mapped chunks, oldest first */
static struct chunk *reserve; /* the ATOMIC reserve */
static long last_purge;       /* ms */
static size_t units_used;     /* units in spans, all chunks */
static size_t units_dirty;    /* free units that may be resident */

/* Free units kept resident beyond this are returned soon: the decay
 * delays returning memory, it does not hoard it. */
#define DIRTY_MIN_UNITS ((size_t)(2 << 20) / SLAB_UNIT)

static size_t dirty_limit(void)
{
	size_t share = units_used / 4;
	return share > DIRTY_MIN_UNITS ? share : DIRTY_MIN_UNITS;
}

/* Returns free units [u, u + n) of c to the OS (some may be already). */
static void purge_run(struct chunk *c, unsigned u, unsigned n)
{
	madvise((char *)c + (size_t)u * SLAB_UNIT, n * SLAB_UNIT, MADV_DONTNEED);
	for (unsigned k = u; k < u + n; k++)
		units_dirty -= us_test(&c->dirty_units, k);
	us_assign(&c->dirty_units, u, n, false);
}

/* The units a chunk can give out: all but its metadata units. */
static unitset_t all_units(void)
{
	unitset_t s = { { 0 } };
	us_assign(&s, CHUNK_META_UNITS, CHUNK_UNITS - CHUNK_META_UNITS, true);
	return s;
}

static struct chunk *chunk_new(bool is_reserve)
{
	struct chunk *c = slab_map_aligned(CHUNK_SIZE);
	if (!c)
		return NULL;
	c->kind = KIND_CHUNK;
	c->reserve = is_reserve;
	c->free_units = all_units();
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

/* Units the last span_take found clean: pages the span's use will fault
 * in (pool_lock). */
static unsigned taken_clean;

/* Free units [u + from, u + to) of c join the span headed at unit u;
 * returns how many of them were not resident. */
static unsigned units_take(struct chunk *c, unsigned u, unsigned from,
			   unsigned to)
{
	unsigned clean = 0;
	for (unsigned k = from; k < to; k++) {
		c->slabs[u + k].head_off = SLAB_HEAD_OFF(k);
		unsigned dirty = us_test(&c->dirty_units, u + k);
		units_dirty -= dirty;
		clean += !dirty;
	}
	units_used += to - from;
	us_assign(&c->free_units, u + from, to - from, false);
	us_assign(&c->dirty_units, u + from, to - from, false);
	return clean;
}

/* Units [u, u + n) of c, a span's, go back free and resident. */
static void units_release(struct chunk *c, unsigned u, unsigned n)
{
	uint32_t now = (uint32_t)slab_now_ms();
	for (unsigned k = u; k < u + n; k++) {
		c->slabs[k].head_off = 0;
		c->released_ms[k] = now;
	}
	us_assign(&c->free_units, u, n, true);
	us_assign(&c->dirty_units, u, n, true);
	units_used -= n;
	units_dirty += n;
}

/* Units [u, u + ci->span) of c become a span of blocks of ci's geometry,
 * slot cls, owned by h (NULL: a medium block's, no heap's). */
static struct slab *span_take(struct chunk *c, unsigned u,
			      const struct class_info *ci, unsigned cls,
			      struct heap *h)
{
	taken_clean = units_take(c, u, 0, ci->span);
	struct slab *s = &c->slabs[u];
	s->free = NULL;
	s->neg_base = 0 - ((uintptr_t)c + (size_t)u * SLAB_UNIT);
	s->bits = c->bits[u];
	s->magic = ci->magic;
	s->size = ci->size;
	s->limit = ci->nblocks * ci->size;
	/* the bitmap is clear: a span comes back to the pool empty */
	s->where = h ? WHERE_CUR : WHERE_NONE;
	s->cls = (uint8_t)cls;
	atomic_store_explicit(&s->owner, h, memory_order_relaxed);
	atomic_store_explicit(&s->thread_free, 0, memory_order_relaxed);
	s->pending_next = s->next = s->prev = NULL;
	s->nblocks = ci->nblocks;
	s->bump = 0;
	s->span = ci->span;
	return s;
}

/* A span of ci's geometry in the chunk list, resident units first (reusing
 * them costs no page faults and lets the others decay). */
static struct slab *take_run(struct chunk *list, const struct class_info *ci,
			     unsigned cls, struct heap *h)
{
	for (int pass = 0; pass < 2; pass++)
		for (struct chunk *c = list; c; c = c->next) {
			unitset_t m = pass ? c->free_units :
				      us_and(&c->free_units, &c->dirty_units);
			int u = us_find_run(&m, ci->span, ci->span_align);
			if (u >= 0)
				return span_take(c, (unsigned)u, ci, cls, h);
		}
	return NULL;
}

/* madvises away c's dirty units freed at least the decay ago. */
static void purge_chunk(struct chunk *c, long now)
{
	unsigned u = us_next(&c->dirty_units, 0);
	while (u < CHUNK_UNITS) {
		unsigned end = u;
		while (end < CHUNK_UNITS && us_test(&c->dirty_units, end) &&
		       (uint32_t)now - c->released_ms[end] >=
			       (uint64_t)slab_decay_ms)
			end++;
		if (end > u)
			purge_run(c, u, end - u);
		u = us_next(&c->dirty_units, end + 1);
	}
}

static void purge_locked(long now)
{
	last_purge = now;
	unitset_t all = all_units();
	for (struct chunk **pp = &chunks, *c; (c = *pp);) {
		purge_chunk(c, now);
		if (us_equal(&c->free_units, &all) && us_empty(&c->dirty_units)) {
			*pp = c->next;
			slab_register(REG_CHUNK, c, false);
			slab_unmap(c, CHUNK_SIZE);
			continue;
		}
		pp = &c->next;
	}
	if (reserve) /* purged but never unmapped */
		purge_chunk(reserve, now);
}

/*
 * Dirty units past half again the cap: returns them, oldest chunks first,
 * until half the cap is left.  Each call covers a whole run of free units
 * (neighbouring spans freed one by one, and units returned already, which
 * cost nothing to cover again), so a program freeing much at once makes
 * a few long calls, not one per span.
 */
static void trim_dirty(void)
{
	size_t target = dirty_limit() / 2;
	for (struct chunk *k = chunks; k && units_dirty > target; k = k->next) {
		unsigned d = us_next(&k->dirty_units, 0);
		while (d < CHUNK_UNITS && units_dirty > target) {
			unsigned end = d;
			while (end < CHUNK_UNITS && us_test(&k->free_units, end))
				end++;
			purge_run(k, d, end - d);
			d = us_next(&k->dirty_units, end);
		}
	}
}

static bool over_dirty_limit(void)
{
	return units_dirty > dirty_limit() + dirty_limit() / 2;
}

static void maybe_purge_locked(void)
{
	long now = slab_now_ms();
	long every = slab_decay_ms / 2;
	if (now - last_purge >= every)
		purge_locked(now);
}

/* Takes pool_lock; false, not taken, if nowait and it is busy. */
static bool pool_lock(bool nowait)
{
	if (nowait)
		return pthread_mutex_trylock(&slab_pool_lock) == 0;
	pthread_mutex_lock(&slab_pool_lock);
	return true;
}

/* A span of ci's geometry (slot cls) for h, as slab_pool_get; *clean:
 * how many of its units were not resident. */
static struct slab *pool_get(const struct class_info *ci, unsigned cls,
			     struct heap *h, bool nowait, bool atomic,
			     unsigned *clean)
{
	if (!pool_lock(nowait))
		return NULL;
	taken_clean = 0;
	struct slab *s = take_run(chunks, ci, cls, h);
	if (!s && !nowait) {
		struct chunk *c = chunk_new(false);
		if (c) {
			struct chunk **pp = &chunks;
			while (*pp)
				pp = &(*pp)->next;
			*pp = c; /* oldest first: new spans prefer old chunks */
			s = take_run(c, ci, cls, h);
		}
	}
	if (!s && atomic && reserve) /* (never linked: next is NULL) */
		s = take_run(reserve, ci, cls, h);
	*clean = s ? taken_clean : 0;
	size_t fresh = (size_t)*clean * SLAB_UNIT;
	if (!nowait)
		maybe_purge_locked();
	pthread_mutex_unlock(&slab_pool_lock);
	if (fresh && !nowait) /* the large cache gives way (lcache.c) */
		slab_lcache_yield(fresh);
	return s;
}

struct slab *slab_pool_get(unsigned cls, struct heap *h, bool nowait,
			   bool atomic)
{
	unsigned clean;
	return pool_get(&slab_classes[cls], cls, h, nowait, atomic, &clean);
}

/* The geometry of a medium span of n units: one block filling it. */
static struct class_info medium_geometry(unsigned n)
{
	uint32_t size = (uint32_t)(n * SLAB_UNIT);
	return (struct class_info){ .size = size, .nblocks = 1,
				    .magic = UINT64_MAX / size + 1,
				    .span = (uint8_t)n, .span_align = 1,
				    .batch = 1 };
}

struct slab *slab_pool_get_medium(unsigned n, bool nowait, bool atomic,
				  bool *clean)
{
	struct class_info ci = medium_geometry(n);
	unsigned units;
	struct slab *s = pool_get(&ci, CLASS_MEDIUM, NULL, nowait, atomic,
				  &units);
	*clean = units == n;
	return s;
}

bool slab_pool_resize_medium(struct slab *s, unsigned n, bool nowait,
			     bool *clean)
{
	if (!pool_lock(nowait))
		return false;
	struct chunk *c = chunk_of(s);
	unsigned u = (unsigned)(s - c->slabs), had = s->span, fresh = 0;
	bool ok = true;
	if (n > had) {
		for (unsigned k = had; k < n && ok; k++)
			ok = u + k < CHUNK_UNITS && us_test(&c->free_units, u + k);
		if (ok)
			fresh = units_take(c, u, had, n);
	} else if (n < had) { /* the tail goes back, resident */
		units_release(c, u + n, had - n);
	}
	if (ok) {
		struct class_info ci = medium_geometry(n);
		s->size = ci.size;
		s->limit = ci.size;
		s->magic = ci.magic;
		s->span = ci.span;
		if (n < had && !nowait && over_dirty_limit())
			trim_dirty();
	}
	pthread_mutex_unlock(&slab_pool_lock);
	*clean = n <= had || fresh == n - had;
	if (fresh && !nowait) /* the large cache gives way (lcache.c) */
		slab_lcache_yield((size_t)fresh * SLAB_UNIT);
	return ok;
}

bool slab_pool_put(struct slab *s, bool nowait)
{
	if (!pool_lock(nowait))
		return false;
	struct chunk *c = chunk_of(s);
	unsigned u = (unsigned)(s - c->slabs);
	unsigned n = s->span;
	s->size = 0;
	s->limit = 0;
	s->where = WHERE_NONE;
	atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
	units_release(c, u, n);
	if (!nowait) {
		if (over_dirty_limit())
			trim_dirty();
		maybe_purge_locked();
	}
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
	pthread_mutex_unlock(&slab_pool_lock);
}

/* ---- statistics (the /proc/slabinfo analogue) ---------------------------- */

struct pool_count {
	uint64_t nchunks, used_units, dirty, clean, medium, medium_bytes,
		medium_cached;
};

/* Counts every chunk's units and every class's slabs, under the lock.  A
 * block waiting in a magazine is free, though its slab counts it in use. */
static void count(struct class_count cc[CLASS_SLOTS], struct pool_count *pc)
{
	uint64_t held[CLASS_COUNT];
	slab_heap_mag_held(held);
	memset(cc, 0, CLASS_SLOTS * sizeof(*cc));
	*pc = (struct pool_count){ 0, 0, 0, 0, 0, 0, 0 };
	pthread_mutex_lock(&slab_pool_lock);
	unitset_t all = all_units();
	for (int pass = 0; pass < 2; pass++) {
		for (struct chunk *c = pass ? reserve : chunks; c;
		     c = pass ? NULL : c->next) {
			pc->nchunks++;
			unsigned nfree = us_count(&c->free_units);
			unsigned ndirty = us_count(&c->dirty_units);
			pc->dirty += ndirty;
			pc->clean += nfree - ndirty;
			pc->used_units += us_count(&all) - nfree;
			for (unsigned u = CHUNK_META_UNITS; u < CHUNK_UNITS; u++) {
				struct slab *s = &c->slabs[u];
				if (!s->size || s->head_off)
					continue;
				if (s->cls == CLASS_MEDIUM) {
					if (__atomic_load_n(&s->where,
							    __ATOMIC_RELAXED) ==
					    WHERE_CACHED) {
						pc->medium_cached += s->size;
					} else {
						pc->medium++;
						pc->medium_bytes += s->size;
					}
					continue;
				}
				cc[s->cls].slabs++;
				cc[s->cls].objs += s->nblocks;
				cc[s->cls].active += slab_in_use(s);
			}
		}
	}
	pthread_mutex_unlock(&slab_pool_lock);
	for (unsigned k = 0; k < CLASS_COUNT; k++)
		cc[k].active -= held[k] < cc[k].active ? held[k] : cc[k].active;
}

void slab_pool_count(struct class_count cc[CLASS_SLOTS])
{
	struct pool_count pc;
	count(cc, &pc);
}

/* The pool and the kmalloc classes; object caches' classes are reported
 * by the core, as rows of their caches (kcache.c). */
int slab_pool_stats(kalloc_stats_fn fn, void *ctx)
{
	struct class_count cc[CLASS_SLOTS];
	struct pool_count pc;
	count(cc, &pc);
	fn(ctx, "slab", "chunks", pc.nchunks);
	fn(ctx, "slab", "chunk_bytes", pc.nchunks * CHUNK_SIZE);
	fn(ctx, "slab", "span_bytes", pc.used_units * SLAB_UNIT);
	fn(ctx, "slab", "free_resident_bytes", pc.dirty * SLAB_UNIT);
	fn(ctx, "slab", "free_returned_bytes", pc.clean * SLAB_UNIT);
	fn(ctx, "slab", "medium_blocks", pc.medium);
	fn(ctx, "slab", "medium_bytes", pc.medium_bytes);
	fn(ctx, "slab", "medium_cached_bytes", pc.medium_cached);
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
		fn(ctx, group, "pagesperslab", ci->span * (SLAB_UNIT >> 12));
		fn(ctx, group, "num_slabs", cc[k].slabs);
	}
	return 0;
}

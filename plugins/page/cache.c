/*
 * The cache of freed mappings: a small array scanned under one mutex.  It
 * saves the mmap/munmap pair and the page faults of alloc/free churn, and it
 * is what NOWAIT allocations are served from.  Bounded in bytes and entries;
 * the oldest entry is unmapped to make room.  An entry left unused for
 * CACHE_DECAY_NS gives its pages back (MADV_DONTNEED) at the next operation
 * that checks the clock, and then reads zero.
 */
#include "page.h"

#include <sys/mman.h>

/*
 * A request finding no entry of a fitting length (at most a quarter larger)
 * resizes another one with mremap (no page faults on the pages it keeps), but
 * only while the cache holds at least this many entries: a few different
 * lengths stay available for NOWAIT requests.
 */
#define RESIZE_MIN_ENTRIES 4

void cache_init(struct cache *c, size_t limit, bool exact)
{
	pthread_mutex_init(&c->lock, NULL);
	c->limit = limit;
	c->bytes = 0;
	c->n = 0;
	c->exact = exact;
	atomic_init(&c->next_decay, UINT64_MAX);
	atomic_init(&c->hits, 0);
	atomic_init(&c->misses, 0);
}

void cache_fini(struct cache *c)
{
	for (unsigned i = 0; i < c->n; i++)
		unmap(c->e[i].addr, c->e[i].len);
	c->n = 0;
	c->bytes = 0;
}

void cache_lock(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
}

void cache_unlock(struct cache *c)
{
	pthread_mutex_unlock(&c->lock);
}

static bool lock(struct cache *c, bool nowait)
{
	if (nowait)
		return pthread_mutex_trylock(&c->lock) == 0;
	pthread_mutex_lock(&c->lock);
	return true;
}

static struct cache_entry remove_at(struct cache *c, unsigned i)
{
	struct cache_entry e = c->e[i];
	c->e[i] = c->e[--c->n];
	c->bytes -= e.len;
	return e;
}

static size_t distance(size_t a, size_t b)
{
	return a > b ? a - b : b - a;
}

/* Index of the entry to serve len from, or -1; sets *resize. */
static int choose(const struct cache *c, size_t len, size_t align,
		  bool resizable, bool nowait, bool *resize)
{
	int fit = -1, near = -1;
	for (unsigned i = 0; i < c->n; i++) {
		const struct cache_entry *e = &c->e[i];
		if (e->addr & (align - 1))
			continue;
		if (e->len == len || (!c->exact && e->len > len &&
				      (fit < 0 || e->len < c->e[fit].len)))
			fit = (int)i;
		if (e->len == len)
			break;
		if (near < 0 || distance(e->len, len) <
				    distance(c->e[near].len, len))
			near = (int)i;
	}
	*resize = false;
	if (fit >= 0 && (nowait || c->e[fit].len - len <= len / 4))
		return fit;
	if (resizable && !c->exact && near >= 0 && c->n >= RESIZE_MIN_ENTRIES) {
		*resize = true;
		return near;
	}
	return -1;
}

bool cache_take(struct cache *c, size_t len, size_t align, bool resizable,
		bool nowait, struct cache_hit *hit)
{
	if (c->limit == 0 || !lock(c, nowait))
		return false;
	bool resize;
	int i = choose(c, len, align, resizable, nowait, &resize);
	if (i >= 0) {
		struct cache_entry e = remove_at(c, (unsigned)i);
		*hit = (struct cache_hit){ e.addr, e.len, e.clean,
					   resize && e.len != len };
	}
	pthread_mutex_unlock(&c->lock);
	atomic_fetch_add_explicit(i >= 0 ? &c->hits : &c->misses, 1,
				  memory_order_relaxed);
	return i >= 0;
}

void cache_put(struct cache *c, uintptr_t addr, size_t len, bool nowait)
{
	if (len > c->limit || !lock(c, nowait)) {
		unmap(addr, len);
		return;
	}
	struct cache_entry evicted[CACHE_SLOTS];
	unsigned ne = 0;
	while (c->n == CACHE_SLOTS || c->bytes + len > c->limit) {
		unsigned oldest = 0;
		for (unsigned i = 1; i < c->n; i++)
			if (c->e[i].freed < c->e[oldest].freed)
				oldest = i;
		evicted[ne++] = remove_at(c, oldest);
	}
	uint64_t now = now_ns();
	c->e[c->n++] = (struct cache_entry){ addr, len, now, false };
	c->bytes += len;
	uint64_t due = now + CACHE_DECAY_NS;
	if (due < atomic_load_explicit(&c->next_decay, memory_order_relaxed))
		atomic_store_explicit(&c->next_decay, due, memory_order_relaxed);
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < ne; i++)
		unmap(evicted[i].addr, evicted[i].len);
}

void cache_decay(struct cache *c, size_t guard)
{
	uint64_t now = now_ns();
	if (now < atomic_load_explicit(&c->next_decay, memory_order_relaxed))
		return;
	/* Opportunistic: whoever holds the lock now will check again. */
	if (pthread_mutex_trylock(&c->lock) != 0)
		return;
	uint64_t next = UINT64_MAX;
	for (unsigned i = 0; i < c->n; i++) {
		struct cache_entry *e = &c->e[i];
		if (e->clean)
			continue;
		if (now - e->freed >= CACHE_DECAY_NS) {
			madvise((void *)e->addr, e->len - guard, MADV_DONTNEED);
			e->clean = true;
		} else if (e->freed + CACHE_DECAY_NS < next) {
			next = e->freed + CACHE_DECAY_NS;
		}
	}
	atomic_store_explicit(&c->next_decay, next, memory_order_relaxed);
	pthread_mutex_unlock(&c->lock);
}

/*
 * The cache of freed page ranges: a small array scanned under one mutex.  A
 * range is cut to the size asked and the rest stays cached, so reuse costs
 * no system call: it saves the mmap/munmap pair and the page faults of
 * alloc/free churn, and it is what NOWAIT allocations are served from.
 * Bounded in bytes and entries; the oldest range is unmapped to make room.
 * A range left unused for CACHE_DECAY_NS gives its pages back
 * (MADV_DONTNEED) at the next operation that checks the clock, and then
 * reads zero.
 *
 * A freed range merges with its cached neighbours of the same VMA, so a
 * range cut into pieces comes back whole once they are freed.
 */
#include "page.h"

#include <sys/mman.h>

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

/* Needs a free slot. */
static void add(struct cache *c, uintptr_t addr, size_t len, uint64_t vma,
		uint64_t freed, bool clean)
{
	c->e[c->n++] = (struct cache_entry){ addr, len, vma, freed, clean };
	c->bytes += len;
}

static uintptr_t align_up(uintptr_t x, size_t align)
{
	return (x + align - 1) & ~(uintptr_t)(align - 1);
}

/* The smallest range holding len bytes at a multiple of align (and warm
 * if asked), or -1. */
static int best_fit(const struct cache *c, size_t len, size_t align,
		    bool warm)
{
	int best = -1;
	for (unsigned i = 0; i < c->n; i++) {
		const struct cache_entry *e = &c->e[i];
		if (warm && e->clean)
			continue;
		uintptr_t a = align_up(e->addr, align);
		bool fits = c->exact ? e->len == len && a == e->addr
				     : a >= e->addr && a - e->addr <= e->len &&
					       e->len - (a - e->addr) >= len;
		if (fits && (best < 0 || e->len < c->e[best].len))
			best = (int)i;
	}
	return best;
}

static int largest(const struct cache *c)
{
	int best = -1;
	for (unsigned i = 0; i < c->n; i++)
		if (best < 0 || c->e[i].len > c->e[best].len)
			best = (int)i;
	return best;
}

bool cache_take(struct cache *c, size_t len, size_t align, unsigned how,
		struct cache_hit *hit)
{
	if (c->limit == 0 || !lock(c, how & TAKE_NOWAIT))
		return false;
	int i = best_fit(c, len, align, how & TAKE_WARM);
	if (i >= 0) {
		struct cache_entry e = remove_at(c, (unsigned)i);
		uintptr_t a = align_up(e.addr, align);
		size_t head = a - e.addr, tail = e.len - head - len;
		*hit = (struct cache_hit){ a, len, e.vma, e.clean, false };
		if (head) /* the slot e left is free */
			add(c, e.addr, head, e.vma, e.freed, e.clean);
		if (tail && c->n < CACHE_SLOTS)
			add(c, a + len, tail, e.vma, e.freed, e.clean);
		else
			hit->len += tail;
	} else if ((how & TAKE_GROW) && !c->exact && (i = largest(c)) >= 0) {
		struct cache_entry e = remove_at(c, (unsigned)i);
		*hit = (struct cache_hit){ e.addr, e.len, e.vma, e.clean, true };
	}
	pthread_mutex_unlock(&c->lock);
	atomic_fetch_add_explicit(i >= 0 ? &c->hits : &c->misses, 1,
				  memory_order_relaxed);
	return i >= 0;
}

bool cache_take_at(struct cache *c, uintptr_t addr, size_t len, uint64_t vma,
		   bool nowait, bool *clean)
{
	if (c->exact || !lock(c, nowait))
		return false;
	bool found = false;
	for (unsigned i = 0; i < c->n && !found; i++) {
		struct cache_entry *e = &c->e[i];
		if (e->addr != addr || e->vma != vma || e->len < len)
			continue;
		found = true;
		*clean = e->clean;
		e->addr += len;
		e->len -= len;
		c->bytes -= len;
		if (e->len == 0)
			remove_at(c, i);
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* Takes the neighbours of [*addr, *addr + *len) of the same VMA out of the
 * cache and widens the range over them; the result is clean only if all of
 * it is, and as old as its oldest dirty part (clean parts have no age: an
 * old one would have the whole range given back at once, and again). */
static void absorb(struct cache *c, uintptr_t *addr, size_t *len, uint64_t vma,
		   uint64_t *freed, bool *clean)
{
	for (unsigned i = 0; i < c->n;) {
		struct cache_entry *e = &c->e[i];
		if (e->vma != vma ||
		    (e->addr + e->len != *addr && *addr + *len != e->addr)) {
			i++;
			continue;
		}
		struct cache_entry n = remove_at(c, i);
		if (n.addr < *addr)
			*addr = n.addr;
		*len += n.len;
		*clean = *clean && n.clean;
		if (!n.clean && n.freed < *freed)
			*freed = n.freed;
	}
}

void cache_put(struct cache *c, uintptr_t addr, size_t len, uint64_t vma,
	       bool nowait)
{
	size_t limit = c->limit;
	if (len > limit || !lock(c, nowait)) {
		unmap(addr, len);
		return;
	}
	uint64_t now = now_ns(), freed = now;
	bool clean = false;
	if (!c->exact)
		absorb(c, &addr, &len, vma, &freed, &clean);
	struct cache_entry evicted[CACHE_SLOTS + 1];
	unsigned ne = 0;
	if (len > limit) { /* merged beyond the bound */
		evicted[ne++] = (struct cache_entry){ addr, len, vma, freed, clean };
		len = 0;
	}
	while (len && (c->n == CACHE_SLOTS || c->bytes + len > limit)) {
		unsigned oldest = 0;
		for (unsigned i = 1; i < c->n; i++)
			if (c->e[i].freed < c->e[oldest].freed)
				oldest = i;
		evicted[ne++] = remove_at(c, oldest);
	}
	if (len) {
		add(c, addr, len, vma, freed, clean);
		uint64_t due = freed + CACHE_DECAY_NS;
		if (due < atomic_load_explicit(&c->next_decay,
					       memory_order_relaxed))
			atomic_store_explicit(&c->next_decay, due,
					      memory_order_relaxed);
	}
	pthread_mutex_unlock(&c->lock);
	for (unsigned i = 0; i < ne; i++)
		unmap(evicted[i].addr, evicted[i].len);
}

bool cache_holds(struct cache *c, uintptr_t addr)
{
	pthread_mutex_lock(&c->lock);
	bool found = false;
	for (unsigned i = 0; i < c->n && !found; i++)
		found = addr - c->e[i].addr < c->e[i].len;
	pthread_mutex_unlock(&c->lock);
	return found;
}

size_t cache_bytes(struct cache *c)
{
	pthread_mutex_lock(&c->lock);
	size_t n = c->bytes;
	pthread_mutex_unlock(&c->lock);
	return n;
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

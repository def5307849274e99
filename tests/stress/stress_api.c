/*
 * Multithreaded stress through the core API on one backend:
 *
 *     stress_api BACKEND handoff|churn|realloc|caches
 *
 *   handoff  8 threads allocate, pass blocks to each other through locked
 *            inboxes, and free (or realloc, or pass on) what they receive:
 *            most frees are cross-thread.
 *   churn    threads live for a short burst each (120 in all, 8 at a time);
 *            their blocks stay in a shared table after they exit and are
 *            freed by later threads.
 *   realloc  8 threads take turns on 64 shared realloc chains (grow, shrink,
 *            change alignment, with and without the old layout), so a chain
 *            is resized by many threads in turn.
 *   caches   churn on object caches: short-lived threads allocate (singly
 *            and in bulk) from four caches (two that merge, one with a
 *            constructor), park the objects in a shared table and free what
 *            they displace, so most frees are remote and many objects
 *            outlive their thread's magazines; some shrink.  Every cache
 *            must then destroy cleanly (no object counted live).
 *
 * Every block carries a cookie (cookie.h) checked before each free and
 * realloc; realloc must keep min(old, new) bytes, ZERO must zero the rest.
 * Under TSan the reads and writes of block contents are not instrumented
 * (COOKIE_NO_TSAN): TSan cannot see an uninstrumented allocator (glibc's,
 * jemalloc's...) hand memory from one thread to the next, so they would
 * look racy; the cookies check those bytes, TSan checks the allocators.
 * More threads than cores (2 here) on purpose: threads get preempted in the
 * middle of allocator calls.
 *
 * KALLOC_STRESS_SCALE (percent, default 100) scales the work; under valgrind
 * it defaults to 4, under TSan to 10, under ASan to 50.  The work is a count,
 * never a time: a slow machine takes longer, it does not test less.
 *
 * At the end the handle's own counters (opened with "stats=1": the core
 * counts every successful call the backend answered) must show no block
 * live and as many calls as the threads made: a block lost on the way, or
 * a call counted twice, fails the run.
 */
#include <kalloc.h>

#include "cookie.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define NTHREADS 8
#define MAX_ALIGN_TRIED 4096

static kalloc_t *heap;
static kalloc_info_t info;
static const char *backend;
static unsigned scale = 100;
static atomic_ullong n_alloc, n_free, n_realloc, n_cross;
static atomic_ullong next_tag = 1;

__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "stress_api(%s): ", backend);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static unsigned long scaled(unsigned long n)
{
	unsigned long s = n * scale / 100;
	return s ? s : 1;
}

/* xorshift64*, one per thread. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

struct blk {
	unsigned char *p;
	size_t size, align;
	uint64_t tag;
};

/* Mostly small, some pages, a few big ones. */
static size_t pick_size(uint64_t *r)
{
	uint64_t x = rnd(r);
	switch (x % 16) {
	case 15:
		return 1 + (x >> 8) % (1 << 20);
	case 13: case 14:
		return 1 + (x >> 8) % 65536;
	default:
		return 1 + (x >> 8) % 512;
	}
}

static size_t pick_align(uint64_t *r)
{
	size_t cap = info.max_align < MAX_ALIGN_TRIED ? info.max_align :
						       MAX_ALIGN_TRIED;
	uint64_t x = rnd(r);
	size_t a = x % 4 ? 16 : (size_t)1 << (x >> 8) % 13;
	return a < cap ? a : cap;
}

COOKIE_NO_TSAN
static void expect_zero(const unsigned char *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (p[i])
			fail("ZERO: byte %zu of %p (usable %zu) is 0x%02x", i,
			     (const void *)p, to, p[i]);
}

static void new_blk(struct blk *b, uint64_t *r)
{
	size_t size = pick_size(r), align = pick_align(r);
	kalloc_flags_t f = rnd(r) % 4 == 0 ? KALLOC_ZERO : 0;
	kalloc_buf_t out;
	int err = kalloc_alloc(heap, KALLOC_LAYOUT(size, align), f, &out);
	if (err)
		fail("alloc of %zu bytes (align %zu) failed: %s", size, align,
		     kalloc_errmsg());
	if ((uintptr_t)out.ptr & (align - 1))
		fail("%p is not aligned to %zu", out.ptr, align);
	if (out.len < size)
		fail("usable length %zu below the size %zu", out.len, size);
	if (f & KALLOC_ZERO)
		expect_zero(out.ptr, 0, out.len);
	*b = (struct blk){ out.ptr, size, align, atomic_fetch_add(&next_tag, 1) };
	cookie_write(b->p, b->size, b->tag);
	atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
}

static void check_blk(const struct blk *b, const char *when)
{
	size_t bad = cookie_bad(b->p, b->size, b->size, b->tag);
	if (bad != SIZE_MAX)
		fail("%s: block %p (%zu bytes, tag %llu): byte %zu was overwritten",
		     when, (void *)b->p, b->size, (unsigned long long)b->tag, bad);
}

static void free_blk(struct blk *b, uint64_t *r)
{
	check_blk(b, "before free");
	kalloc_free(heap, b->p, rnd(r) % 2 ? KALLOC_LAYOUT(b->size, b->align) :
					     KALLOC_LAYOUT_UNKNOWN);
	b->p = NULL;
	atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
}

/* Resizes b to a new size and alignment, checking what must be kept. */
static void realloc_blk(struct blk *b, size_t size, size_t align, uint64_t *r)
{
	check_blk(b, "before realloc");
	bool known = rnd(r) % 2;
	kalloc_flags_t f = rnd(r) % 4 == 0 ? KALLOC_ZERO : 0;
	kalloc_layout_t old = known ? KALLOC_LAYOUT(b->size, b->align) :
				      KALLOC_LAYOUT_UNKNOWN;
	kalloc_buf_t out;
	int err = kalloc_realloc(heap, b->p, KALLOC_LAYOUT(size, align), old, f,
				 &out);
	if (err)
		fail("realloc %zu -> %zu bytes (align %zu) failed: %s", b->size, size,
		     align, kalloc_errmsg());
	if ((uintptr_t)out.ptr & (align - 1))
		fail("realloc: %p is not aligned to %zu", out.ptr, align);
	if (out.len < size)
		fail("realloc: usable length %zu below the size %zu", out.len, size);
	size_t kept = b->size < size ? b->size : size;
	size_t bad = cookie_bad(out.ptr, b->size, kept, b->tag);
	if (bad != SIZE_MAX)
		fail("realloc %p -> %p (%zu -> %zu bytes) lost byte %zu",
		     (void *)b->p, out.ptr, b->size, size, bad);
	/* With the layout unknown, "old size" is the old usable length: the
	 * zeros start after what the backend kept, which may be more. */
	if ((f & KALLOC_ZERO) && known)
		expect_zero(out.ptr, kept, out.len);
	b->p = out.ptr;
	b->size = size;
	b->align = align;
	cookie_write(b->p, b->size, b->tag);
	atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
}

/* ---- handoff ------------------------------------------------------------ */

#define INBOX 256
#define LOCAL 32

struct inbox {
	pthread_mutex_t lock;
	struct blk q[INBOX];
	unsigned head, count;
} __attribute__((aligned(64)));

static struct inbox inboxes[NTHREADS];

static bool push(unsigned to, const struct blk *b)
{
	struct inbox *in = &inboxes[to];
	pthread_mutex_lock(&in->lock);
	bool ok = in->count < INBOX;
	if (ok)
		in->q[(in->head + in->count++) % INBOX] = *b;
	pthread_mutex_unlock(&in->lock);
	return ok;
}

static bool pop(unsigned from, struct blk *b)
{
	struct inbox *in = &inboxes[from];
	pthread_mutex_lock(&in->lock);
	bool ok = in->count > 0;
	if (ok) {
		*b = in->q[in->head];
		in->head = (in->head + 1) % INBOX;
		in->count--;
	}
	pthread_mutex_unlock(&in->lock);
	return ok;
}

static void *handoff_thread(void *arg)
{
	unsigned self = (unsigned)(uintptr_t)arg;
	uint64_t r = 0x1234567ull + self * 0x9e3779b97f4a7c15ull;
	struct blk local[LOCAL] = { 0 };
	unsigned long ops = scaled(30000);
	for (unsigned long i = 0; i < ops; i++) {
		uint64_t x = rnd(&r) % 100;
		struct blk b;
		if (x < 45) {
			new_blk(&b, &r);
			unsigned to = (unsigned)(rnd(&r) % NTHREADS);
			if (push(to, &b))
				continue;
			struct blk *l = &local[rnd(&r) % LOCAL];
			if (l->p)
				free_blk(l, &r);
			*l = b;
		} else if (x < 90) {
			if (!pop(self, &b))
				continue;
			atomic_fetch_add_explicit(&n_cross, 1, memory_order_relaxed);
			if (rnd(&r) % 4 == 0)
				realloc_blk(&b, pick_size(&r), b.align, &r);
			if (rnd(&r) % 3 == 0 && push((unsigned)(rnd(&r) % NTHREADS), &b))
				continue;
			free_blk(&b, &r);
		} else {
			struct blk *l = &local[rnd(&r) % LOCAL];
			if (l->p)
				free_blk(l, &r);
		}
	}
	for (unsigned i = 0; i < LOCAL; i++)
		if (local[i].p)
			free_blk(&local[i], &r);
	return NULL;
}

static void handoff(void)
{
	pthread_t t[NTHREADS];
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_mutex_init(&inboxes[i].lock, NULL);
	for (unsigned i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, handoff_thread, (void *)(uintptr_t)i))
			fail("pthread_create failed");
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	uint64_t r = 99;
	struct blk b;
	for (unsigned i = 0; i < NTHREADS; i++)
		while (pop(i, &b))
			free_blk(&b, &r);
}

/* ---- churn -------------------------------------------------------------- */

#define TABLE 4096

static _Atomic(struct blk *) table[TABLE];

/* A record lives in the table while its block outlives the thread that
 * made it.  Records come from malloc: they are bookkeeping, not stressed. */
static void *churn_thread(void *arg)
{
	uint64_t r = 0xabcdefull ^ (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull;
	unsigned long ops = scaled(2000);
	for (unsigned long i = 0; i < ops; i++) {
		struct blk *nb = NULL;
		if (rnd(&r) % 2) {
			nb = malloc(sizeof(*nb));
			if (!nb)
				fail("no memory for a record");
			new_blk(nb, &r);
		}
		struct blk *old = atomic_exchange(&table[rnd(&r) % TABLE], nb);
		if (old) {
			free_blk(old, &r);
			free(old);
		}
	}
	return NULL;
}

static void churn(void)
{
	pthread_t t[NTHREADS];
	unsigned long total = scaled(120), made = 0;
	if (total < 2 * NTHREADS)
		total = 2 * NTHREADS; /* at least one generation replaced */
	for (; made < NTHREADS; made++)
		if (pthread_create(&t[made], NULL, churn_thread, (void *)(uintptr_t)made))
			fail("pthread_create failed");
	/* Replace the oldest thread as it exits: 8 alive, blocks outliving them. */
	for (unsigned long done = 0; done < made; done++) {
		pthread_join(t[done % NTHREADS], NULL);
		if (made < total) {
			if (pthread_create(&t[made % NTHREADS], NULL, churn_thread,
					   (void *)(uintptr_t)made))
				fail("pthread_create failed");
			made++;
		}
	}
	uint64_t r = 7;
	for (unsigned i = 0; i < TABLE; i++) {
		struct blk *b = atomic_exchange(&table[i], NULL);
		if (b) {
			free_blk(b, &r);
			free(b);
		}
	}
	printf("churn: %lu threads created\n", made);
}

/* ---- caches ------------------------------------------------------------- */

#define NCACHES 4

static kalloc_cache_t *caches[NCACHES];
static const struct {
	const char *name;
	size_t size;
	unsigned flags;
	bool ctor;
} cache_kinds[NCACHES] = {
	{ "stress-a", 200, 0, false },          /* a and b merge on slab */
	{ "stress-b", 200, 0, false },
	{ "stress-small", 40, KALLOC_CACHE_NO_MERGE, false },
	{ "stress-ctor", 1000, 0, true },
};
static atomic_ullong n_constructed;

struct cobj {
	unsigned cache;
	uint64_t tag;
	void *p;
};

static _Atomic(struct cobj *) ctable[TABLE];

static void stress_ctor(void *p)
{
	memset(p, 0xc5, cache_kinds[3].size);
	atomic_fetch_add_explicit(&n_constructed, 1, memory_order_relaxed);
}

static void cobj_free(struct cobj *o)
{
	size_t size = cache_kinds[o->cache].size;
	size_t bad = cookie_bad(o->p, size, size, o->tag);
	if (bad != SIZE_MAX)
		fail("object %p of %s (tag %llu): byte %zu was overwritten", o->p,
		     cache_kinds[o->cache].name, (unsigned long long)o->tag, bad);
	kalloc_cache_free(caches[o->cache], o->p);
	atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
	free(o);
}

/* Parks a fresh object of cache ci, freeing the one it displaces. */
static void cobj_park(unsigned ci, void *p, uint64_t *r)
{
	if ((uintptr_t)p % 8)
		fail("object %p of %s is not aligned to 8", p, cache_kinds[ci].name);
	struct cobj *o = malloc(sizeof(*o));
	if (!o)
		fail("no memory for a record");
	*o = (struct cobj){ ci, atomic_fetch_add(&next_tag, 1), p };
	cookie_write(p, cache_kinds[ci].size, o->tag);
	atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
	struct cobj *old = atomic_exchange(&ctable[rnd(r) % TABLE], o);
	if (old)
		cobj_free(old);
}

static void *caches_thread(void *arg)
{
	uint64_t r = 0xc0ffeeull ^ (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull;
	unsigned long ops = scaled(2000);
	for (unsigned long i = 0; i < ops; i++) {
		unsigned ci = (unsigned)(rnd(&r) % NCACHES);
		uint64_t x = rnd(&r) % 64;
		if (x == 0) {
			kalloc_cache_shrink(caches[ci]);
		} else if (x < 8) {
			void *objs[16];
			size_t n = 1 + rnd(&r) % 16;
			if (kalloc_cache_alloc_bulk(caches[ci], 0, n, objs) != n)
				fail("bulk of %zu from %s failed: %s", n,
				     cache_kinds[ci].name, kalloc_errmsg());
			for (size_t k = 0; k < n; k++)
				cobj_park(ci, objs[k], &r);
		} else {
			kalloc_flags_t f = x < 12 ? KALLOC_ZERO | KALLOC_NOWARN : 0;
			void *p = kalloc_cache_alloc(caches[ci], f);
			if (!p)
				fail("alloc from %s failed: %s", cache_kinds[ci].name,
				     kalloc_errmsg());
			if (f)
				expect_zero(p, 0, cache_kinds[ci].size);
			cobj_park(ci, p, &r);
		}
	}
	return NULL;
}

static void caches_run(void)
{
	for (unsigned i = 0; i < NCACHES; i++) {
		caches[i] = kalloc_cache_create(heap, cache_kinds[i].name,
						KALLOC_LAYOUT(cache_kinds[i].size, 8),
						cache_kinds[i].flags,
						cache_kinds[i].ctor ? stress_ctor : NULL);
		if (!caches[i])
			fail("create %s: %s", cache_kinds[i].name, kalloc_errmsg());
	}
	pthread_t t[NTHREADS];
	unsigned long total = scaled(120), made = 0;
	if (total < 2 * NTHREADS)
		total = 2 * NTHREADS;
	for (; made < NTHREADS; made++)
		if (pthread_create(&t[made], NULL, caches_thread, (void *)(uintptr_t)made))
			fail("pthread_create failed");
	for (unsigned long done = 0; done < made; done++) {
		pthread_join(t[done % NTHREADS], NULL);
		if (made < total) {
			if (pthread_create(&t[made % NTHREADS], NULL, caches_thread,
					   (void *)(uintptr_t)made))
				fail("pthread_create failed");
			made++;
		}
	}
	for (unsigned i = 0; i < TABLE; i++) {
		struct cobj *o = atomic_exchange(&ctable[i], NULL);
		if (o)
			cobj_free(o);
	}
	for (unsigned i = 0; i < NCACHES; i++) {
		kalloc_cache_stats_t st;
		kalloc_cache_stats(caches[i], &st);
		if (st.active_objs)
			fail("%s counts %llu live objects after every one was freed",
			     cache_kinds[i].name, (unsigned long long)st.active_objs);
		if (cache_kinds[i].ctor &&
		    st.constructed != atomic_load(&n_constructed))
			fail("%s counted %llu constructor calls, the constructor "
			     "ran %llu times", cache_kinds[i].name,
			     (unsigned long long)st.constructed,
			     (unsigned long long)atomic_load(&n_constructed));
		if (kalloc_cache_destroy(caches[i]) != KALLOC_OK)
			fail("destroy %s: %s", cache_kinds[i].name, kalloc_errmsg());
	}
	printf("caches: %lu threads created, %llu constructed\n", made,
	       (unsigned long long)atomic_load(&n_constructed));
}

/* ---- realloc chains ----------------------------------------------------- */

#define CHAINS 64

static struct blk chains[CHAINS];
static atomic_bool chain_busy[CHAINS];

static void *realloc_thread(void *arg)
{
	uint64_t r = 0x5151ull + (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull;
	unsigned long steps = scaled(40000);
	for (unsigned long i = 0; i < steps; i++) {
		unsigned c = (unsigned)(rnd(&r) % CHAINS);
		if (atomic_exchange(&chain_busy[c], true))
			continue; /* another thread holds it */
		struct blk *b = &chains[c];
		uint64_t x = rnd(&r) % 16;
		if (!b->p) {
			new_blk(b, &r);
		} else if (x == 0) {
			free_blk(b, &r);
		} else {
			/* grow by up to 2x (capped at 1 MiB) or shrink */
			size_t size = x < 11 ? b->size + 1 + rnd(&r) % (b->size + 64)
					     : 1 + rnd(&r) % b->size;
			if (size > ((size_t)1 << 20))
				size = 1 + rnd(&r) % 4096;
			size_t align = rnd(&r) % 4 ? b->align : pick_align(&r);
			realloc_blk(b, size, align, &r);
		}
		atomic_store(&chain_busy[c], false);
	}
	return NULL;
}

static void realloc_chains(void)
{
	pthread_t t[NTHREADS];
	for (unsigned i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, realloc_thread, (void *)(uintptr_t)i))
			fail("pthread_create failed");
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	uint64_t r = 3;
	for (unsigned i = 0; i < CHAINS; i++)
		if (chains[i].p)
			free_blk(&chains[i], &r);
}

/* ------------------------------------------------------------------------- */

static unsigned default_scale(void)
{
	const char *s = getenv("KALLOC_STRESS_SCALE");
	if (s && *s)
		return (unsigned)strtoul(s, NULL, 10);
	if (RUNNING_ON_VALGRIND)
		return 4;
#if defined(__SANITIZE_THREAD__)
	return 10;
#elif defined(__SANITIZE_ADDRESS__)
	return 50;
#else
	return 100;
#endif
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s BACKEND handoff|churn|realloc|caches\n",
			argv[0]);
		return 2;
	}
	backend = argv[1];
	scale = default_scale();
	if (kalloc_open(backend, "stats=1", &heap))
		fail("cannot open: %s", kalloc_errmsg());
	kalloc_info(heap, &info);
	if (strcmp(argv[2], "handoff") == 0)
		handoff();
	else if (strcmp(argv[2], "churn") == 0)
		churn();
	else if (strcmp(argv[2], "realloc") == 0)
		realloc_chains();
	else if (strcmp(argv[2], "caches") == 0)
		caches_run();
	else
		fail("unknown scenario '%s'", argv[2]);
	unsigned long long a = n_alloc, f = n_free;
	printf("%s on %s (scale %u%%): %llu allocs, %llu frees, %llu reallocs, "
	       "%llu blocks received from another thread\n", argv[2],
	       backend, scale, a, f, (unsigned long long)n_realloc,
	       (unsigned long long)n_cross);
	if (a == 0)
		fail("nothing was allocated");
	kalloc_stats_t st;
	if (kalloc_stats(heap, &st))
		fail("no handle statistics: %s", kalloc_errmsg());
	if (st.live_blocks != 0)
		fail("the handle still counts %lld live blocks (%lld bytes) after "
		     "every block was freed", (long long)st.live_blocks,
		     (long long)st.live_bytes);
	/* (a cache's objects reach the handle in batches: only the live
	 * count compares for them) */
	bool per_call = strcmp(argv[2], "caches") != 0;
	if (per_call && (st.allocs != a || st.frees != f ||
			 st.reallocs != (unsigned long long)n_realloc))
		fail("the handle counted %llu allocs, %llu frees, %llu reallocs; "
		     "the threads made %llu, %llu, %llu",
		     (unsigned long long)st.allocs, (unsigned long long)st.frees,
		     (unsigned long long)st.reallocs, a, f,
		     (unsigned long long)n_realloc);
	if (st.failures)
		fail("%llu calls failed", (unsigned long long)st.failures);
	kalloc_close(heap);
	return 0;
}

/*
 * G17: object caches (kalloc_cache_*, the kernel's kmem_cache) on the
 * backend: every object is aligned and usable for its size and overlaps no
 * other; a constructor runs once per object and a freed object comes back
 * in its constructed state; bulk allocation is all or nothing; a failure
 * leaves the cache as it was; destroying a cache with live objects reports
 * them by name and frees nothing; objects move between threads.
 */
#include "conform.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static kalloc_cache_stats_t stats_of(kalloc_cache_t *c)
{
	kalloc_cache_stats_t s;
	kalloc_cache_stats(c, &s);
	return s;
}

static kalloc_cache_t *make(const char *name, size_t size, size_t align,
			    unsigned flags, void (*ctor)(void *))
{
	kalloc_cache_t *c = kalloc_cache_create(conform_a, name,
						KALLOC_LAYOUT(size, align),
						flags, ctor);
	REQUIRE(c, "cache '%s' (size %zu, align %zu, flags 0x%x) not created: %s",
		name, size, align, flags, kalloc_errmsg());
	return c;
}

static int by_address(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
	return x < y ? -1 : x > y;
}

/* n live objects of c: aligned, each holding its own pattern, disjoint. */
static void check_objects(kalloc_cache_t *c, size_t size, size_t align,
			  size_t n)
{
	void **objs = calloc(n, sizeof(*objs));
	REQUIRE(objs, "test: no memory");
	for (size_t i = 0; i < n; i++) {
		objs[i] = kalloc_cache_alloc(c, 0);
		REQUIRE(objs[i], "cache '%s': alloc %zu of %zu failed: %s",
			kalloc_cache_name(c), i, n, kalloc_errmsg());
		REQUIRE(is_aligned(objs[i], align), "cache '%s': object %p is "
			"not aligned to %zu", kalloc_cache_name(c), objs[i], align);
		pat_fill(objs[i], 0, size, i + 1);
	}
	for (size_t i = 0; i < n; i++) {
		size_t bad = pat_find_bad(objs[i], 0, size, i + 1);
		REQUIRE(bad == SIZE_MAX, "cache '%s': object %zu (%p, %zu bytes) "
			"changed at byte %zu: objects overlap",
			kalloc_cache_name(c), i, objs[i], size, bad);
	}
	qsort(objs, n, sizeof(*objs), by_address);
	for (size_t i = 1; i < n; i++)
		REQUIRE((uintptr_t)objs[i] - (uintptr_t)objs[i - 1] >= size,
			"cache '%s': objects %p and %p are closer than %zu bytes",
			kalloc_cache_name(c), objs[i - 1], objs[i], size);
	kalloc_cache_stats_t s = stats_of(c);
	REQUIRE(s.active_objs == n, "cache '%s': %zu objects live, stats say %llu",
		kalloc_cache_name(c), n, (unsigned long long)s.active_objs);
	REQUIRE(s.objsize >= size, "cache '%s': objsize %zu below the size %zu",
		kalloc_cache_name(c), s.objsize, size);
	kalloc_cache_free_bulk(c, n, objs);
	REQUIRE(stats_of(c).active_objs == 0, "cache '%s': objects still "
		"counted live after all were freed", kalloc_cache_name(c));
	free(objs);
}

START_TEST(layouts)
{
	static const struct {
		size_t size, align;
		unsigned flags;
	} shapes[] = {
		{ 1, 0, 0 }, { 8, 8, 0 }, { 24, 8, 0 }, { 40, 8, 0 },
		{ 52, 4, KALLOC_CACHE_HWCACHE_ALIGN }, { 96, 32, 0 },
		{ 100, 64, 0 }, { 192, 8, KALLOC_CACHE_HWCACHE_ALIGN },
		{ 700, 128, 0 }, { 4000, 4096, 0 }, { 12000, 16, 0 },
	};
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		size_t align = shapes[i].align ? shapes[i].align : 8;
		if (align > conform_info.max_align)
			continue;
		char name[32];
		snprintf(name, sizeof(name), "conform-%zu-%zu", shapes[i].size,
			 align);
		kalloc_cache_t *c = make(name, shapes[i].size, shapes[i].align,
					 shapes[i].flags, NULL);
		REQUIRE(kalloc_cache_size(c) == shapes[i].size,
			"cache '%s': kalloc_cache_size says %zu", name,
			kalloc_cache_size(c));
		REQUIRE(!strcmp(kalloc_cache_name(c), name),
			"cache '%s': kalloc_cache_name says '%s'", name,
			kalloc_cache_name(c));
		/* HWCACHE_ALIGN: 64 bytes for objects above 32 */
		size_t want = (shapes[i].flags & KALLOC_CACHE_HWCACHE_ALIGN) &&
			      align < 64 ? 64 : align;
		check_objects(c, shapes[i].size, want,
			      shapes[i].size > 1000 ? 64 : 512);
		REQUIRE(kalloc_cache_destroy(c) == KALLOC_OK,
			"cache '%s': destroy of an empty cache failed: %s", name,
			kalloc_errmsg());
	}
	/* bad arguments are refused with a message, unknown flags too */
	REQUIRE(!kalloc_cache_create(conform_a, "bad-align",
				     KALLOC_LAYOUT(64, 24), 0, NULL) &&
		kalloc_errmsg()[0], "alignment 24 was accepted");
	REQUIRE(!kalloc_cache_create(conform_a, "bad-size",
				     KALLOC_LAYOUT(0, 8), 0, NULL) &&
		kalloc_errmsg()[0], "object size 0 was accepted");
	REQUIRE(!kalloc_cache_create(conform_a, "bad-flags",
				     KALLOC_LAYOUT(64, 8),
				     KALLOC_CACHE_FLAGS_ALL + 1, NULL) &&
		strstr(kalloc_errmsg(), "bad-flags"),
		"unknown flag bits were accepted, or the message does not "
		"name the cache: %s", kalloc_errmsg());
}
END_TEST

/* ---- constructors ------------------------------------------------------- */

struct thing {
	uint64_t magic;      /* set by the constructor */
	char payload[40];
};
#define MAGIC 0x6b616c6c6f63ULL

static _Atomic unsigned long ctor_runs; /* constructor calls, all caches */

static void thing_ctor(void *p)
{
	struct thing *t = p;
	t->magic = MAGIC;
	memset(t->payload, 'c', sizeof(t->payload));
	atomic_fetch_add(&ctor_runs, 1);
}

START_TEST(constructor_state)
{
	kalloc_cache_t *c = make("conform-ctor", sizeof(struct thing), 0, 0,
				 thing_ctor);
	enum { N = 300 };
	struct thing *t[N];
	unsigned long runs_before = atomic_load(&ctor_runs);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			t[i] = kalloc_cache_alloc(c, 0);
			REQUIRE(t[i], "ctor cache: alloc failed: %s", kalloc_errmsg());
			REQUIRE(t[i]->magic == MAGIC && t[i]->payload[39] == 'c',
				"round %d: object %p is not in its constructed "
				"state (magic %llx)", round, (void *)t[i],
				(unsigned long long)t[i]->magic);
			/* users return objects in constructed state */
		}
		unsigned long runs = atomic_load(&ctor_runs) - runs_before;
		REQUIRE(runs == N, "round %d: %lu constructor calls for %d "
			"objects: the constructor ran again on reuse", round,
			runs, N);
		kalloc_cache_stats_t s = stats_of(c);
		REQUIRE(s.constructed == N, "round %d: stats count %llu "
			"constructor calls, the constructor ran %lu times",
			round, (unsigned long long)s.constructed, runs);
		kalloc_cache_free_bulk(c, N, (void **)t);
		REQUIRE(stats_of(c).num_objs == N, "a ctor cache must keep its "
			"%d freed objects constructed, it holds %llu", N,
			(unsigned long long)stats_of(c).num_objs);
	}
	/* KALLOC_ZERO on a ctor cache: the object reads zero */
	struct thing *z = kalloc_cache_alloc(c, KALLOC_ZERO);
	REQUIRE(z && zero_find_bad(z, 0, sizeof(*z)) == SIZE_MAX,
		"KALLOC_ZERO on a ctor cache did not zero the object");
	thing_ctor(z); /* give it back constructed */
	kalloc_cache_free(c, z);
	size_t shrunk = kalloc_cache_shrink(c);
	REQUIRE(shrunk == N, "shrink gave back %zu objects, not the %d free "
		"ones", shrunk, N);
	REQUIRE(stats_of(c).num_objs == 0, "objects left after shrink");
	REQUIRE(kalloc_cache_destroy(c) == KALLOC_OK, "destroy failed: %s",
		kalloc_errmsg());
}
END_TEST

/* TYPESAFE_BY_RCU: freed memory stays an object of the cache (readable,
 * same type) while the cache lives; shrink gives nothing back. */
START_TEST(typesafe_by_rcu)
{
	kalloc_cache_t *c = make("conform-rcu", 64, 0,
				 KALLOC_CACHE_TYPESAFE_BY_RCU, NULL);
	void *o[64];
	for (int i = 0; i < 64; i++) {
		o[i] = kalloc_cache_alloc(c, 0);
		REQUIRE(o[i], "alloc failed: %s", kalloc_errmsg());
		memset(o[i], 0x11, 64);
	}
	kalloc_cache_free_bulk(c, 64, o);
	REQUIRE(kalloc_cache_shrink(c) == 0, "shrink released memory of a "
		"TYPESAFE_BY_RCU cache");
	/* a reader that still holds a stale pointer may read it */
	volatile unsigned char sum = 0;
	for (int i = 0; i < 64; i++)
		sum += *(volatile unsigned char *)o[i];
	(void)sum;
	void *again[64];
	REQUIRE(kalloc_cache_alloc_bulk(c, 0, 64, again) == 64, "bulk failed");
	qsort(o, 64, sizeof(void *), by_address);
	for (int i = 0; i < 64; i++)
		REQUIRE(bsearch(&again[i], o, 64, sizeof(void *), by_address),
			"object %p is new memory: a freed object's memory left "
			"the TYPESAFE_BY_RCU cache", again[i]);
	kalloc_cache_free_bulk(c, 64, again);
	REQUIRE(kalloc_cache_destroy(c) == KALLOC_OK, "destroy failed");
}
END_TEST

/* ---- failures ----------------------------------------------------------- */

START_TEST(bulk_all_or_nothing)
{
	for (int ctor = 0; ctor < 2; ctor++) {
		kalloc_cache_t *c = make(ctor ? "conform-bulk-ctor" : "conform-bulk",
					 sizeof(struct thing), 0, 0,
					 ctor ? thing_ctor : NULL);
		void *objs[16];
		REQUIRE(kalloc_cache_alloc_bulk(c, 0, 16, objs) == 16,
			"bulk of 16 failed: %s", kalloc_errmsg());
		for (int i = 0; i < 16; i++)
			REQUIRE(objs[i] && is_aligned(objs[i], 8), "bulk object "
				"%d is %p", i, objs[i]);
		kalloc_cache_free_bulk(c, 16, objs);
		/* every free object goes back: a ctor cache keeps all 16,
		 * another may keep some (a thread's magazine) */
		size_t shrunk = kalloc_cache_shrink(c);
		REQUIRE(ctor ? shrunk == 16 : shrunk <= 16, "shrink gave back "
			"%zu of 16 free objects", shrunk);
		REQUIRE(stats_of(c).num_objs == 0, "free objects left in the "
			"cache after shrink");
		/* the 10th allocation fails: nothing may stay allocated */
		kalloc_cache_stats_t before = stats_of(c);
		kalloc_fail_nth(10);
		size_t got = kalloc_cache_alloc_bulk(c, KALLOC_NOWARN, 16, objs);
		kalloc_fail_nth(0);
		kalloc_cache_stats_t after = stats_of(c);
		REQUIRE(got == 0, "bulk with a failing 10th object returned %zu",
			got);
		REQUIRE(after.active_objs == before.active_objs,
			"a failed bulk left %llu objects live",
			(unsigned long long)(after.active_objs - before.active_objs));
		REQUIRE(after.failures == before.failures + 1,
			"the failure was not counted");
		/* a failed single alloc: NULL, errmsg, nothing changed */
		kalloc_fail_nth(1);
		void *o = kalloc_cache_alloc(c, KALLOC_NOWARN);
		kalloc_fail_nth(0);
		REQUIRE(!o && kalloc_errmsg()[0], "injected failure: got %p", o);
		REQUIRE(stats_of(c).active_objs == before.active_objs,
			"a failed alloc changed the live count");
		kalloc_cache_shrink(c);
		REQUIRE(kalloc_cache_destroy(c) == KALLOC_OK, "destroy failed");
	}
}
END_TEST

/* Destroy with live objects: one line naming the cache and the count on
 * stderr, KALLOC_EBUSY, and the objects stay usable. */
START_TEST(destroy_with_live_objects)
{
	kalloc_cache_t *c = make("conform-leaky", 48, 0, 0, NULL);
	void *o[3];
	for (int i = 0; i < 3; i++) {
		o[i] = kalloc_cache_alloc(c, 0);
		REQUIRE(o[i], "alloc failed");
		memset(o[i], 0x5a, 48);
	}
	char path[] = "/tmp/kalloc-conform-XXXXXX";
	int fd = mkstemp(path);
	REQUIRE(fd >= 0, "mkstemp failed");
	unlink(path);
	int saved = dup(2);
	dup2(fd, 2);
	int err = kalloc_cache_destroy(c);
	dup2(saved, 2);
	close(saved);
	char text[1024] = { 0 };
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	REQUIRE(err == KALLOC_EBUSY, "destroy with 3 live objects returned %d "
		"(%s), not KALLOC_EBUSY", err, kalloc_strerror(err));
	REQUIRE(n > 0 && strstr(text, "conform-leaky") && strstr(text, "3"),
		"destroy with live objects printed no line naming the cache "
		"and the count: \"%s\"", text);
	for (int i = 0; i < 3; i++) /* nothing was freed under the program */
		for (int j = 0; j < 48; j++)
			REQUIRE(((unsigned char *)o[i])[j] == 0x5a, "object %d "
				"changed after destroy", i);
	kalloc_cache_free_bulk(c, 3, o);
	REQUIRE(kalloc_cache_destroy(c) == KALLOC_OK, "destroy after the "
		"objects were freed failed: %s", kalloc_errmsg());
}
END_TEST

/* ---- threads ------------------------------------------------------------ */

struct pass {
	kalloc_cache_t *c;
	void *_Atomic slot[256];
	_Atomic int done;
	size_t size;
};

/* Allocates into empty slots; the other thread frees what it finds. */
static void *producer(void *arg)
{
	struct pass *p = arg;
	uint64_t seed = 7;
	for (int n = 0; n < 20000; n++) {
		unsigned i = (unsigned)(rng_next(&seed) % 256);
		if (atomic_load(&p->slot[i]))
			continue;
		void *o = kalloc_cache_alloc(p->c, 0);
		if (!o || !is_aligned(o, 64))
			return o; /* the main thread reports it */
		pat_fill(o, 0, p->size, (uintptr_t)o);
		atomic_store(&p->slot[i], o);
	}
	atomic_store(&p->done, 1);
	return NULL;
}

START_TEST(cross_thread)
{
	static struct pass p;
	p.size = 200;
	p.c = make("conform-threads", p.size, 64, 0, NULL);
	atomic_store(&p.done, 0);
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, producer, &p) == 0, "pthread_create");
	size_t freed = 0;
	for (;;) {
		int done = atomic_load(&p.done);
		for (int i = 0; i < 256; i++) {
			void *o = atomic_exchange(&p.slot[i], NULL);
			if (!o)
				continue;
			size_t bad = pat_find_bad(o, 0, p.size, (uintptr_t)o);
			REQUIRE(bad == SIZE_MAX, "object %p from another thread "
				"changed at byte %zu", o, bad);
			kalloc_cache_free(p.c, o);
			freed++;
		}
		if (done)
			break;
		void *r;
		if (pthread_tryjoin_np(t, &r) == 0) {
			REQUIRE(atomic_load(&p.done), "producer stopped: object "
				"%p failed or is misaligned", r);
			t = 0;
		}
	}
	if (t)
		pthread_join(t, NULL);
	for (int i = 0; i < 256; i++) {
		void *o = atomic_exchange(&p.slot[i], NULL);
		if (o)
			kalloc_cache_free(p.c, o);
	}
	REQUIRE(freed > 100, "only %zu objects crossed threads", freed);
	REQUIRE(stats_of(p.c).active_objs == 0, "objects counted live after "
		"every one was freed");
	REQUIRE(kalloc_cache_destroy(p.c) == KALLOC_OK, "destroy failed");
}
END_TEST

TCase *g17_caches(void)
{
	TCase *tc = conform_tcase("G17");
	tcase_add_test(tc, layouts);
	tcase_add_test(tc, constructor_state);
	tcase_add_test(tc, typesafe_by_rcu);
	tcase_add_test(tc, bulk_all_or_nothing);
	tcase_add_test(tc, destroy_with_live_objects);
	tcase_add_test(tc, cross_thread);
	return tc;
}

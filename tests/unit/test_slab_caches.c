/*
 * Object caches on slab: each cache's objects come from a class of its own
 * object size (slab's cache table, plugins/slab/kcache.c), with slab's fast
 * path, remote frees and hardening, merged as the kernel merges caches.
 *
 * What tells a class object from an ordinary block: its usable size is the
 * cache's object size (200 for a 200-byte cache, where kmalloc's class
 * would give 224), and the cache's stats row carries its class's slabs.
 * The guarantees every backend keeps run in the conformance suite (G17).
 */
#include <check.h>
#include <kalloc.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures/child.h"

static kalloc_t *A;

#define REQUIRE(cond, ...)                          \
	do {                                        \
		if (!(cond))                        \
			ck_abort_msg(__VA_ARGS__);  \
	} while (0)

static void open_slab(const char *options)
{
	if (kalloc_open("slab", options, &A) != KALLOC_OK)
		ck_abort_msg("cannot open slab: %s", kalloc_errmsg());
}

static kalloc_cache_t *cache(const char *name, size_t size, size_t align,
			     unsigned flags)
{
	kalloc_cache_t *c = kalloc_cache_create(A, name,
						KALLOC_LAYOUT(size, align),
						flags, NULL);
	REQUIRE(c, "create %s: %s", name, kalloc_errmsg());
	return c;
}

static kalloc_cache_stats_t stats_of(kalloc_cache_t *c)
{
	kalloc_cache_stats_t s;
	kalloc_cache_stats(c, &s);
	return s;
}

/* n objects of c, each usable for exactly `usable` bytes and written. */
static void take(kalloc_cache_t *c, void **objs, int n, size_t usable)
{
	for (int i = 0; i < n; i++) {
		objs[i] = kalloc_cache_alloc(c, 0);
		REQUIRE(objs[i], "alloc %d: %s", i, kalloc_errmsg());
		size_t u = kalloc_usable_size(A, objs[i]);
		REQUIRE(u == usable, "object %d: usable %zu, want %zu", i, u,
			usable);
		memset(objs[i], 0x5a, usable);
	}
}

static void give(kalloc_cache_t *c, void **objs, int n)
{
	for (int i = 0; i < n; i++)
		kalloc_cache_free(c, objs[i]);
}

START_TEST(objects_of_the_exact_size)
{
	open_slab(NULL);
	kalloc_cache_t *c = cache("exact-200", 200, 8, KALLOC_CACHE_NO_MERGE);
	void *objs[1000];
	take(c, objs, 1000, 200);
	kalloc_cache_stats_t s = stats_of(c);
	ck_assert_uint_eq(s.active_objs, 1000);
	ck_assert_uint_eq(s.objsize, 200);
	ck_assert_uint_eq(s.merged, 1);
	ck_assert_uint_gt(s.objperslab, 0);
	/* whole slabs of 200-byte objects hold them, and nothing else; the
	 * cache keeps at most a magazine's worth free for this thread */
	ck_assert_uint_ge(s.num_objs, 1000);
	ck_assert_uint_le(s.num_objs, 1000 + 32);
	ck_assert_uint_ge(s.num_slabs * s.objperslab, 1000);
	ck_assert_uint_le(s.num_slabs, 1000 / s.objperslab + 2);
	ck_assert_uint_eq(s.objperslab * 200 <= s.pagesperslab * 4096u, 1);
	give(c, objs, 1000);
	ck_assert_uint_eq(stats_of(c).active_objs, 0);
	ck_assert_int_eq(kalloc_cache_destroy(c), KALLOC_OK);
	kalloc_close(A);
}
END_TEST

START_TEST(alignment_rounds_the_class)
{
	open_slab(NULL);
	/* 100 bytes at 64: 128-byte objects, each on a 64-byte boundary */
	kalloc_cache_t *c = cache("aligned-100", 100, 64, KALLOC_CACHE_NO_MERGE);
	void *objs[300];
	take(c, objs, 300, 128);
	for (int i = 0; i < 300; i++)
		REQUIRE((uintptr_t)objs[i] % 64 == 0, "object %d at %p", i,
			objs[i]);
	ck_assert_uint_eq(stats_of(c).objsize, 128);
	give(c, objs, 300);
	/* 3 bytes: the smallest class, 16 */
	kalloc_cache_t *t = cache("tiny", 3, 1, KALLOC_CACHE_NO_MERGE);
	take(t, objs, 10, 16);
	give(t, objs, 10);
	kalloc_cache_destroy(t);
	kalloc_cache_destroy(c);
	kalloc_close(A);
}
END_TEST

START_TEST(equal_geometry_merges)
{
	open_slab(NULL);
	kalloc_cache_t *a = cache("merge-a", 200, 8, 0);
	kalloc_cache_t *b = cache("merge-b", 200, 8, 0);
	kalloc_cache_t *own = cache("merge-none", 200, 8, KALLOC_CACHE_NO_MERGE);
	/* a debug flag forbids merging; its objects carry a red zone */
	kalloc_cache_t *dbg = cache("merge-debug", 200, 8, KALLOC_CACHE_RED_ZONE);
	void *oa[50], *ob[50], *on[50];
	take(a, oa, 50, 200);
	take(b, ob, 50, 200);
	take(own, on, 50, 200);
	void *d = kalloc_cache_alloc(dbg, 0);
	ck_assert_ptr_nonnull(d);
	kalloc_cache_stats_t sa = stats_of(a), sb = stats_of(b),
			     sn = stats_of(own);
	ck_assert_uint_eq(sa.merged, 2);
	ck_assert_uint_eq(sb.merged, 2);
	ck_assert_uint_eq(sn.merged, 1);
	ck_assert_uint_eq(stats_of(dbg).num_slabs, 0); /* no class of its own */
	/* each cache counts its own objects; merged ones share slabs */
	ck_assert_uint_eq(sa.active_objs, 50);
	ck_assert_uint_eq(sb.active_objs, 50);
	ck_assert_uint_eq(sa.num_slabs, sb.num_slabs);
	ck_assert_uint_ge(sa.num_slabs * sa.objperslab, 100);
	/* a mergeable cache of a kmalloc size shares kmalloc's class */
	kalloc_cache_t *k = cache("merge-kmalloc", 96, 8, 0);
	void *ok[10];
	take(k, ok, 10, 96);
	ck_assert_uint_eq(stats_of(k).merged, 2);
	give(k, ok, 10);
	give(a, oa, 50);
	give(b, ob, 50);
	give(own, on, 50);
	kalloc_cache_free(dbg, d);
	ck_assert_int_eq(kalloc_cache_destroy(b), KALLOC_OK);
	ck_assert_uint_eq(stats_of(a).merged, 1);
	kalloc_cache_destroy(a);
	kalloc_cache_destroy(own);
	kalloc_cache_destroy(dbg);
	kalloc_cache_destroy(k);
	kalloc_close(A);
}
END_TEST

/* Caches destroyed and created again reuse their classes; past every
 * class slot, caches still work, on ordinary blocks. */
START_TEST(classes_reused_and_run_out)
{
	open_slab(NULL);
	for (int round = 0; round < 200; round++) {
		kalloc_cache_t *c = cache("again", 200, 8, KALLOC_CACHE_NO_MERGE);
		void *o[3];
		take(c, o, 3, 200);
		give(c, o, 3);
		ck_assert_int_eq(kalloc_cache_destroy(c), KALLOC_OK);
	}
	enum { N = 80 };
	kalloc_cache_t *cs[N];
	int exact = 0;
	for (int i = 0; i < N; i++) {
		size_t size = 1000 + 8 * (size_t)i; /* 80 geometries */
		cs[i] = cache("many", size, 8, KALLOC_CACHE_NO_MERGE);
		void *o = kalloc_cache_alloc(cs[i], 0);
		ck_assert_ptr_nonnull(o);
		size_t u = kalloc_usable_size(A, o);
		ck_assert_uint_ge(u, size);
		bool own = stats_of(cs[i]).num_slabs > 0; /* a class of its own */
		ck_assert(!own || u == size);
		exact += own;
		memset(o, 1, size);
		kalloc_cache_free(cs[i], o);
	}
	/* 64 slots, one taken by "again"'s geometry (kept for reuse) */
	ck_assert_int_eq(exact, 63);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(kalloc_cache_destroy(cs[i]), KALLOC_OK);
	kalloc_close(A);
}
END_TEST

/* ---- threads: remote frees ------------------------------------------ */

struct batch {
	kalloc_cache_t *c;
	void *objs[2000];
};

static void *alloc_batch(void *arg)
{
	struct batch *b = arg;
	take(b->c, b->objs, 2000, 200);
	return NULL;
}

static void *free_batch(void *arg)
{
	struct batch *b = arg;
	for (int i = 0; i < 2000; i++)
		REQUIRE(((unsigned char *)b->objs[i])[199] == 0x5a,
			"object %d lost its content", i);
	give(b->c, b->objs, 2000);
	return NULL;
}

START_TEST(remote_frees_across_threads)
{
	open_slab(NULL);
	kalloc_cache_t *c = cache("remote", 200, 8, KALLOC_CACHE_NO_MERGE);
	static struct batch b[2];
	for (int round = 0; round < 5; round++) {
		pthread_t t[2];
		for (int k = 0; k < 2; k++) {
			b[k].c = c;
			pthread_create(&t[k], NULL, alloc_batch, &b[k]);
		}
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		ck_assert_uint_eq(stats_of(c).active_objs, 4000);
		/* each thread frees the other's objects */
		pthread_create(&t[0], NULL, free_batch, &b[1]);
		pthread_create(&t[1], NULL, free_batch, &b[0]);
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		ck_assert_uint_eq(stats_of(c).active_objs, 0);
	}
	ck_assert_int_eq(kalloc_cache_destroy(c), KALLOC_OK);
	kalloc_close(A);
}
END_TEST

/* ---- bulk --------------------------------------------------------------- */

START_TEST(bulk_takes_class_objects)
{
	open_slab(NULL);
	kalloc_cache_t *c = cache("bulk", 200, 8, KALLOC_CACHE_NO_MERGE);
	void *objs[500];
	for (int round = 0; round < 4; round++) {
		ck_assert_uint_eq(kalloc_cache_alloc_bulk(c, 0, 500, objs), 500);
		for (int i = 0; i < 500; i++) {
			REQUIRE(kalloc_usable_size(A, objs[i]) == 200,
				"bulk object %d: usable %zu", i,
				kalloc_usable_size(A, objs[i]));
			memset(objs[i], i, 200);
		}
		for (int i = 0; i < 500; i++) /* all distinct */
			REQUIRE(((unsigned char *)objs[i])[0] == (unsigned char)i,
				"bulk object %d overlaps another", i);
		ck_assert_uint_eq(stats_of(c).active_objs, 500);
		kalloc_cache_free_bulk(c, 500, objs);
		ck_assert_uint_eq(stats_of(c).active_objs, 0);
	}
	/* ZERO takes the single calls: zeroed class objects */
	ck_assert_uint_eq(kalloc_cache_alloc_bulk(c, KALLOC_ZERO, 40, objs), 40);
	for (int i = 0; i < 40; i++)
		for (int k = 0; k < 200; k++)
			REQUIRE(((unsigned char *)objs[i])[k] == 0, "byte %d", k);
	kalloc_cache_free_bulk(c, 40, objs);
	ck_assert_int_eq(kalloc_cache_destroy(c), KALLOC_OK);
	kalloc_close(A);
}
END_TEST

/* ---- instrumentation keeps the class ---------------------------------- */

START_TEST(instrumented_handle_keeps_the_class)
{
	open_slab("stats=1,leaks=1");
	kalloc_cache_t *c = cache("counted", 200, 8, KALLOC_CACHE_NO_MERGE);
	void *objs[100];
	take(c, objs, 100, 200);
	kalloc_stats_t s;
	ck_assert_int_eq(kalloc_stats(A, &s), KALLOC_OK);
	ck_assert_uint_eq(s.live_blocks, 100); /* the stats saw each object */
	ck_assert_uint_eq(stats_of(c).active_objs, 100);
	give(c, objs, 100);
	ck_assert_int_eq(kalloc_stats(A, &s), KALLOC_OK);
	ck_assert_uint_eq(s.live_blocks, 0);
	ck_assert_int_eq(kalloc_cache_destroy(c), KALLOC_OK);
	kalloc_close(A);
}
END_TEST

/* ---- hardening ---------------------------------------------------------- */

/* Runs fn in a child (fixtures/child.h); it must abort with `want` in
 * its stderr. */
static void expect_abort(child_fn fn, const char *want)
{
	char err[2048];
	const char *v = run_child(fn, NULL, err, sizeof(err));
	ck_assert_msg(v && strstr(v, "signal 6"), "no abort (%s); stderr: %s",
		      v ? v : "it exited 0", err);
	ck_assert_msg(strstr(err, want), "stderr lacks '%s': %s", want, err);
}

static const char *double_free(void *arg)
{
	(void)arg;
	signal(SIGABRT, SIG_DFL);
	kalloc_cache_t *c = cache("twice", 200, 8, KALLOC_CACHE_NO_MERGE);
	void *p = kalloc_cache_alloc(c, 0);
	void *q = kalloc_cache_alloc(c, 0); /* p is not the freelist's head */
	kalloc_cache_free(c, p);
	kalloc_cache_free(c, q);
	kalloc_cache_free(c, p);
	return NULL;
}

static void *free_it(void *p)
{
	kalloc_cache_t **c = p;
	kalloc_cache_free(c[0], c[1]);
	return NULL;
}

static const char *remote_double_free(void *arg)
{
	(void)arg;
	signal(SIGABRT, SIG_DFL);
	kalloc_cache_t *c = cache("twice-remote", 200, 8, KALLOC_CACHE_NO_MERGE);
	void *p = kalloc_cache_alloc(c, 0);
	kalloc_cache_free(c, p);
	pthread_t t;
	void *both[2] = { c, p };
	pthread_create(&t, NULL, free_it, both);
	pthread_join(t, NULL);
	return NULL;
}

static const char *interior_free(void *arg)
{
	(void)arg;
	signal(SIGABRT, SIG_DFL);
	kalloc_cache_t *c = cache("interior", 200, 8, KALLOC_CACHE_NO_MERGE);
	char *p = kalloc_cache_alloc(c, 0);
	kalloc_cache_free(c, p + 8);
	return NULL;
}

/* Freed twice, the second time in a bulk free that overflows the
 * magazine: the objects that go straight to slab are checked too. */
static const char *bulk_double_free(void *arg)
{
	(void)arg;
	signal(SIGABRT, SIG_DFL);
	kalloc_cache_t *c = cache("twice-bulk", 200, 8, KALLOC_CACHE_NO_MERGE);
	void *objs[100];
	CHILD_REQUIRE(kalloc_cache_alloc_bulk(c, 0, 100, objs) == 100,
		      "bulk of 100: %s", kalloc_errmsg());
	kalloc_cache_free(c, objs[99]);
	kalloc_cache_free_bulk(c, 100, objs);
	return NULL;
}

START_TEST(misuse_detected)
{
	open_slab(NULL);
	/* caught by the cache's free tag, or by slab itself under a memory
	 * tool (no magazines there): the messages share these words */
	expect_abort(double_free, "double free of a 200-byte");
	expect_abort(remote_double_free, "double free of a 200-byte");
	expect_abort(interior_free, "8 bytes inside a 200-byte");
	expect_abort(bulk_double_free, "double free of a 200-byte");
	kalloc_close(A);
}
END_TEST

static Suite *slab_caches_suite(void)
{
	Suite *s = suite_create("slab-caches");
	TCase *tc = tcase_create("classes");
	tcase_add_test(tc, objects_of_the_exact_size);
	tcase_add_test(tc, alignment_rounds_the_class);
	tcase_add_test(tc, equal_geometry_merges);
	tcase_add_test(tc, classes_reused_and_run_out);
	suite_add_tcase(s, tc);

	tc = tcase_create("paths");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, remote_frees_across_threads);
	tcase_add_test(tc, bulk_takes_class_objects);
	tcase_add_test(tc, instrumented_handle_keeps_the_class);
	suite_add_tcase(s, tc);

	tc = tcase_create("hardening");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, misuse_detected);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(slab_caches_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

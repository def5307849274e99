/*
 * kmem_cache through <kalloc/linux.h>: 6.13's create forms (_Generic),
 * KMEM_CACHE, usercopy, the SLAB_* flags (PANIC, RED_ZONE, STORE_USER,
 * FAILSLAB with cache_filter, ACCOUNT), KALLOC_SLAB_DEBUG by cache name,
 * destroy's report, the stats groups.  The object-cache guarantees
 * themselves run on every backend in the conformance suite (G17).
 */
#include <kalloc/linux.h>

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures/child.h"

struct dentry {
	long d_flags;
	char d_iname[40];
	void *d_parent;
};

static int ctor_calls;

static void dentry_ctor(void *p)
{
	struct dentry *d = p;
	ctor_calls++;
	d->d_flags = 0x5a;
	d->d_parent = NULL;
}

START_TEST(both_create_forms)
{
	/* the old five-argument form */
	struct kmem_cache *a = kmem_cache_create("old-form", 100, 32,
						 SLAB_HWCACHE_ALIGN, NULL);
	/* 6.13's args form */
	struct kmem_cache_args args = { .align = 64, .ctor = dentry_ctor };
	struct kmem_cache *b = kmem_cache_create("args-form",
						 sizeof(struct dentry), &args, 0);
	/* args NULL: the defaults */
	struct kmem_cache *c = kmem_cache_create("null-args", 24, NULL, 0);
	struct kmem_cache *d = KMEM_CACHE(dentry, SLAB_NO_MERGE);
	struct kmem_cache *e = KMEM_CACHE_USERCOPY(dentry, 0, d_iname);
	ck_assert(a && b && c && d && e);
	ck_assert_uint_eq(kmem_cache_size(a), 100);
	ck_assert_uint_eq(kmem_cache_size(b), sizeof(struct dentry));
	ck_assert_uint_eq(kmem_cache_size(c), 24);
	ck_assert_str_eq(kalloc_cache_name((kalloc_cache_t *)d), "dentry");

	void *pa = kmem_cache_alloc(a, GFP_KERNEL);
	ck_assert_uint_eq((uintptr_t)pa % 64, 0); /* HWCACHE_ALIGN: 64 */
	ctor_calls = 0;
	struct dentry *pb = kmem_cache_alloc(b, GFP_KERNEL);
	ck_assert_uint_eq((uintptr_t)pb % 64, 0);
	ck_assert_int_eq(ctor_calls, 1);
	ck_assert_int_eq(pb->d_flags, 0x5a);
	kmem_cache_free(b, pb);
	pb = kmem_cache_alloc_node(b, GFP_KERNEL, NUMA_NO_NODE);
	ck_assert_int_eq(ctor_calls, 1); /* reused, not constructed again */
	unsigned char *pc = kmem_cache_zalloc(c, GFP_KERNEL);
	for (int i = 0; i < 24; i++)
		ck_assert_int_eq(pc[i], 0);
	kmem_cache_free(a, pa);
	kmem_cache_free(b, pb);
	kmem_cache_free(c, pc);
	ck_assert_int_eq(kmem_cache_shrink(b), 0);
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
	kmem_cache_destroy(c);
	kmem_cache_destroy(d);
	kmem_cache_destroy(e);
	kmem_cache_destroy(NULL);

	/* a usercopy region outside the object is refused */
	ck_assert_ptr_null(kmem_cache_create_usercopy("bad-usercopy", 32, 8, 0,
						      24, 16, NULL));
}
END_TEST

START_TEST(bulk_calls)
{
	struct kmem_cache *s = kmem_cache_create("bulk", 64, 0, 0, NULL);
	void *p[16];
	ck_assert_int_eq(kmem_cache_alloc_bulk(s, GFP_KERNEL, 16, p), 16);
	for (int i = 0; i < 16; i++) {
		ck_assert_ptr_nonnull(p[i]);
		memset(p[i], i, 64);
	}
	kmem_cache_free_bulk(s, 16, p);
	kalloc_fail_nth(5);
	ck_assert_int_eq(kmem_cache_alloc_bulk(s, GFP_KERNEL | __GFP_NOWARN,
					       16, p), 0);
	kalloc_fail_nth(0);
	kmem_cache_destroy(s);
}
END_TEST

/* An unknown flag is refused with a message naming the cache and the bit. */
START_TEST(unknown_flags_refused)
{
	struct capture cap;
	char err[4096];
	capture_start(&cap);
	struct kmem_cache *s = kmem_cache_create("strange", 64, 0, 1u << 30,
						 NULL);
	capture_stop(&cap, err, sizeof(err));
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(err, "strange") && strstr(err, "0x40000000"),
		      "message: %s", err);
}
END_TEST

static const char *panic_child(void *arg)
{
	(void)arg;
	kmem_cache_create("must-exist", 64, 3, SLAB_PANIC, NULL);
	return "SLAB_PANIC: create with alignment 3 returned";
}

START_TEST(slab_panic_aborts_naming_the_cache)
{
	char err[4096];
	const char *why = run_child(panic_child, NULL, err, sizeof(err));
	ck_assert_msg(why && strstr(why, "signal 6"), "child: %s", why ? why : "ok");
	ck_assert_msg(strstr(err, "must-exist") && strstr(err, "SLAB_PANIC"),
		      "stderr: %s", err);
}
END_TEST

/* SLAB_STORE_USER: destroy names each live object's allocation site. */
static void *__attribute__((noinline)) leak_one(struct kmem_cache *s)
{
	return kmem_cache_alloc(s, GFP_KERNEL);
}

START_TEST(destroy_reports_live_objects_and_sites)
{
	struct kmem_cache *s = kmem_cache_create("inode_cache", 128, 0,
						 SLAB_STORE_USER, NULL);
	void *keep[2] = { leak_one(s), leak_one(s) };
	void *gone = kmem_cache_alloc(s, GFP_KERNEL);
	kmem_cache_free(s, gone);
	struct capture cap;
	char err[8192];
	capture_start(&cap);
	kmem_cache_destroy(s);
	capture_stop(&cap, err, sizeof(err));
	ck_assert_msg(strstr(err, "inode_cache") &&
		      strstr(err, "Slab cache still has objects (2 left)"),
		      "stderr: %s", err);
	/* the test's symbols are not dynamic: the site is file+offset */
	ck_assert_msg(strstr(err, "allocated at test_kmem_cache"),
		      "no allocation site: %s", err);
	ck_assert_int_eq(count_lines(err), 3); /* the line, then 2 sites */
	memset(keep[0], 1, 128); /* still the program's */
	kmem_cache_free(s, keep[0]);
	kmem_cache_free(s, keep[1]);
	kmem_cache_destroy(s);
}
END_TEST

/* A free of an object that is not live in a tracked cache aborts. */
static const char *double_free_child(void *arg)
{
	(void)arg;
	struct kmem_cache *s = kmem_cache_create("twice", 64, 0,
						 SLAB_STORE_USER, NULL);
	void *o = kmem_cache_alloc(s, GFP_KERNEL);
	kmem_cache_free(s, o);
	kmem_cache_free(s, o);
	return "a double free of a SLAB_STORE_USER cache went through";
}

START_TEST(double_free_in_tracked_cache_aborts)
{
	char err[4096];
	const char *why = run_child(double_free_child, NULL, err, sizeof(err));
	ck_assert_msg(why && strstr(why, "signal 6"), "child: %s", why ? why : "ok");
	ck_assert_msg(strstr(err, "twice") && strstr(err, "double free"),
		      "stderr: %s", err);
}
END_TEST

/* SLAB_RED_ZONE, and KALLOC_SLAB_DEBUG=Z,name for a cache made without. */
static const char *overflow_child(void *arg)
{
	const char *by_name = arg;
	if (by_name)
		setenv("KALLOC_SLAB_DEBUG", "Z,other;FZ,victim", 1);
	struct kmem_cache *s = kmem_cache_create("victim", 40, 0,
						 by_name ? 0 : SLAB_RED_ZONE,
						 NULL);
	char *o = kmem_cache_alloc(s, GFP_KERNEL);
	o[40] = 'x'; /* one past the object */
	kmem_cache_free(s, o);
	return "an overflow past a red-zoned object went unreported";
}

START_TEST(red_zone_catches_overflow)
{
	for (int by_name = 0; by_name < 2; by_name++) {
		char err[4096];
		const char *why = run_child(overflow_child,
					    by_name ? "yes" : NULL, err,
					    sizeof(err));
		ck_assert_msg(why && strstr(why, "signal 6"), "%s: child: %s",
			      by_name ? "KALLOC_SLAB_DEBUG" : "SLAB_RED_ZONE",
			      why ? why : "ok");
		ck_assert_msg(strstr(err, "red zone"), "stderr: %s", err);
	}
}
END_TEST

/* cache_filter:1 fails only caches created with SLAB_FAILSLAB. */
START_TEST(failslab_cache_filter)
{
	struct kmem_cache *marked = kmem_cache_create("marked", 64, 0,
						      SLAB_FAILSLAB, NULL);
	struct kmem_cache *plain = kmem_cache_create("plain", 64, 0, 0, NULL);
	ck_assert_int_eq(kalloc_fail_config("probability:100,cache_filter:1"),
			 KALLOC_OK);
	void *m = kmem_cache_alloc(marked, GFP_KERNEL | __GFP_NOWARN);
	void *p = kmem_cache_alloc(plain, GFP_KERNEL | __GFP_NOWARN);
	void *k = kmalloc(64, GFP_KERNEL | __GFP_NOWARN);
	ck_assert_int_eq(kalloc_fail_config("probability:100"), KALLOC_OK);
	void *p2 = kmem_cache_alloc(plain, GFP_KERNEL | __GFP_NOWARN);
	ck_assert_int_eq(kalloc_fail_config(""), KALLOC_OK);
	ck_assert_ptr_null(m);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_null(p2); /* without the filter every cache fails */
	kmem_cache_free(plain, p);
	kfree(k);
	kmem_cache_destroy(marked);
	kmem_cache_destroy(plain);
}
END_TEST

/* SLAB_ACCOUNT charges objects to the thread's domain. */
START_TEST(slab_account_charges)
{
	kalloc_domain_t *d = kalloc_domain_create("cg", 0);
	kalloc_domain_t *prev = kalloc_domain_enter(d);
	struct kmem_cache *s = kmem_cache_create("accounted", 500, 0,
						 SLAB_ACCOUNT, NULL);
	void *o = kmem_cache_alloc(s, GFP_KERNEL);
	ck_assert_uint_ge(kalloc_domain_usage(d), 500);
	kmem_cache_free(s, o);
	ck_assert_uint_eq(kalloc_domain_usage(d), 0);
	kmem_cache_destroy(s);
	kalloc_domain_enter(prev);
	kalloc_domain_destroy(d);
}
END_TEST

struct seen {
	int active, num, objsize;
};

static void stat_fn(void *ctx, const char *group, const char *key,
		    uint64_t value)
{
	struct seen *s = ctx;
	if (strcmp(group, "stats-cache"))
		return;
	if (!strcmp(key, "active_objs"))
		s->active = (int)value;
	else if (!strcmp(key, "num_objs"))
		s->num = (int)value;
	else if (!strcmp(key, "objsize"))
		s->objsize = (int)value;
}

START_TEST(caches_are_stats_groups)
{
	struct kmem_cache_args args = { .ctor = dentry_ctor };
	struct kmem_cache *s = kmem_cache_create("stats-cache", 52, &args, 0);
	void *o[5];
	for (int i = 0; i < 5; i++)
		o[i] = kmem_cache_alloc(s, GFP_KERNEL);
	kmem_cache_free(s, o[4]);
	struct seen seen = { -1, -1, -1 };
	kalloc_stats_foreach(kalloc_default(), stat_fn, &seen);
	ck_assert_int_eq(seen.active, 4);
	ck_assert_int_eq(seen.num, 5);
	ck_assert_int_ge(seen.objsize, 52);
	kmem_cache_free_bulk(s, 4, o);
	kmem_cache_destroy(s);
}
END_TEST

static Suite *kmem_cache_suite(void)
{
	Suite *s = suite_create("kmem_cache");
	TCase *tc = tcase_create("api");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, both_create_forms);
	tcase_add_test(tc, bulk_calls);
	tcase_add_test(tc, unknown_flags_refused);
	tcase_add_test(tc, slab_panic_aborts_naming_the_cache);
	suite_add_tcase(s, tc);
	tc = tcase_create("debug");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, destroy_reports_live_objects_and_sites);
	tcase_add_test(tc, double_free_in_tracked_cache_aborts);
	tcase_add_test(tc, red_zone_catches_overflow);
	suite_add_tcase(s, tc);
	tc = tcase_create("kernel");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, failslab_cache_filter);
	tcase_add_test(tc, slab_account_charges);
	tcase_add_test(tc, caches_are_stats_groups);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(kmem_cache_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

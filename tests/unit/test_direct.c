/*
 * The direct path (kalloc_direct, the fast table of <kalloc/plugin.h>): on
 * every built backend, its blocks are aligned as asked, writable, of a
 * usable size at least the one asked, and any free takes them, as the fast
 * free takes blocks of kalloc_alloc; slab's fast free tells foreign
 * pointers and leaves them alone, and reports a double or interior free; a
 * plugin without a fast table is refused; and the plain word follows the
 * handle's instrumentation and fault injection, both ways.
 *
 * DIRECT_BACKENDS (from meson.build) names the built backends that must
 * have fast entries: each must load, or the test fails.
 */
#include <kalloc.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define FIXTURE(v) FIXTURE_DIR "/fixture-" v ".so"

static const char *const names[] = { DIRECT_BACKENDS };

/* malloc's and free's calls of the fast entries */
#define DALLOC(d, n) (d).alloc((d).state, KALLOC_LAYOUT((n), 16)).ptr
#define DFREE(d, p) (d).free((d).state, (p), KALLOC_LAYOUT_UNKNOWN)
#define N_NAMES ((int)(sizeof(names) / sizeof(names[0])))

static const size_t sizes[] = { 1, 7, 8, 9, 15, 16, 17, 24, 100, 255, 1000,
				4095, 4096, 5000, 32768, 40000, 70000,
				(size_t)1 << 20, ((size_t)3 << 20) + 1 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

/* The shared handle of names[i] and its direct entries. */
static kalloc_t *direct_of(int i, kalloc_direct_t *d)
{
	kalloc_t *a = kalloc_get(names[i]);
	ck_assert_msg(a, "%s: %s", names[i], kalloc_errmsg());
	ck_assert_msg(kalloc_direct(a, d) == KALLOC_OK, "%s: %s", names[i],
		      kalloc_errmsg());
	ck_assert_ptr_nonnull(d->alloc);
	ck_assert_ptr_nonnull(d->free);
	ck_assert(d->plain != NULL);
	ck_assert_msg(*d->plain, "%s: plain word 0 on a plain handle", names[i]);
	return a;
}

START_TEST(direct_blocks_aligned_writable_sized)
{
	kalloc_direct_t d;
	kalloc_t *a = direct_of(_i, &d);
	for (size_t k = 0; k < N_SIZES; k++) {
		size_t n = sizes[k];
		unsigned char *p = DALLOC(d, n);
		ck_assert_msg(p, "%s: direct alloc(%zu) failed", names[_i], n);
		ck_assert_msg(((uintptr_t)p & 15) == 0,
			      "%s: direct alloc(%zu) = %p, not 16-aligned",
			      names[_i], n, (void *)p);
		ck_assert_msg(kalloc_usable_size(a, p) >= n,
			      "%s: usable size %zu of a %zu-byte direct block",
			      names[_i], kalloc_usable_size(a, p), n);
		memset(p, 0xa5, n);
		ck_assert_uint_eq(p[0], 0xa5);
		ck_assert_uint_eq(p[n - 1], 0xa5);
		if (k % 2)
			kalloc_free(a, p, KALLOC_LAYOUT_UNKNOWN);
		else
			ck_assert_msg(DFREE(d, p) == 1, "%s: direct free of its "
				      "own %zu-byte block returned 0", names[_i], n);
	}
}
END_TEST

START_TEST(direct_free_takes_core_blocks)
{
	kalloc_direct_t d;
	kalloc_t *a = direct_of(_i, &d);
	static const size_t aligns[] = { 1, 8, 16, 64, 4096 };
	for (size_t k = 0; k < N_SIZES; k++)
		for (size_t j = 0; j < sizeof(aligns) / sizeof(aligns[0]); j++) {
			kalloc_buf_t b;
			ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(sizes[k],
						      aligns[j]), 0, &b),
					 KALLOC_OK);
			memset(b.ptr, 1, sizes[k]);
			ck_assert_msg(DFREE(d, b.ptr) == 1,
				      "%s: direct free of a kalloc_alloc block "
				      "{%zu, %zu} returned 0", names[_i], sizes[k],
				      aligns[j]);
		}
}
END_TEST

/* Many blocks live at once, freed in another order: the heap stays sane. */
START_TEST(direct_many_live_blocks)
{
	kalloc_direct_t d;
	direct_of(_i, &d);
	enum { N = 2000 };
	static unsigned char *p[N];
	for (int k = 0; k < N; k++) {
		size_t n = 1 + (size_t)k * 37 % 3000;
		p[k] = DALLOC(d, n);
		ck_assert_ptr_nonnull(p[k]);
		memset(p[k], k & 0xff, n);
	}
	for (int k = 0; k < N; k++)
		ck_assert_uint_eq(p[k][0], (unsigned)(k & 0xff));
	for (int k = N - 1; k >= 0; k -= 2)
		ck_assert_int_eq(DFREE(d, p[k]), 1);
	for (int k = 0; k < N; k += 2)
		ck_assert_int_eq(DFREE(d, p[k]), 1);
}
END_TEST

START_TEST(direct_alloc_failure_sets_enomem)
{
	/* valgrind's malloc stands in for glibc's, jemalloc's and tcmalloc's:
	 * it returns NULL without errno and reports the size as an error.
	 * slab's own failure path is checked all the same. */
	if (RUNNING_ON_VALGRIND && strcmp(names[_i], "slab") != 0)
		return;
	kalloc_direct_t d;
	direct_of(_i, &d);
	errno = 0;
	ck_assert_ptr_null(DALLOC(d, SIZE_MAX));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(DALLOC(d, (size_t)PTRDIFF_MAX + 1));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

/* ---- slab: direct_free tells foreign pointers --------------------------- */

static kalloc_t *slab_direct(kalloc_direct_t *d)
{
	for (int i = 0; i < N_NAMES; i++)
		if (!strcmp(names[i], "slab"))
			return direct_of(i, d);
	ck_abort_msg("slab is not built");
	return NULL;
}

START_TEST(slab_direct_free_leaves_foreign_alone)
{
	kalloc_direct_t d;
	kalloc_t *a = slab_direct(&d);
	static unsigned char buf[256] __attribute__((aligned(64)));
	memset(buf, 0x5a, sizeof(buf));
	ck_assert_int_eq(DFREE(d, buf + 64), 0);
	for (size_t k = 0; k < sizeof(buf); k++)
		ck_assert_uint_eq(buf[k], 0x5a);

	unsigned char *g = malloc(100); /* the process's malloc, not slab */
	ck_assert_ptr_nonnull(g);
	memset(g, 0x3c, 100);
	ck_assert_int_eq(DFREE(d, g), 0);
	for (size_t k = 0; k < 100; k++)
		ck_assert_uint_eq(g[k], 0x3c);
	free(g);

	/* its own blocks, small and large, aligned or not: freed */
	unsigned char *p = DALLOC(d, 64);
	unsigned char *l = DALLOC(d, (size_t)1 << 20);
	unsigned char *q = d.alloc(d.state, KALLOC_LAYOUT(100, 4096)).ptr;
	ck_assert(p && l && q);
	ck_assert_uint_eq((uintptr_t)q % 4096, 0);
	ck_assert_int_eq(kalloc_owns(a, l), 1);
	ck_assert_int_eq(DFREE(d, l), 1);
	ck_assert_int_eq(d.free(d.state, p, KALLOC_LAYOUT(64, 16)), 1);
	ck_assert_int_eq(DFREE(d, q), 1);
	/* freed: slab's memory, no live block there */
	ck_assert_int_eq(kalloc_owns(a, p), 2);
	/* a large block just freed is remembered while slab keeps its
	 * mapping cached (meson.build runs this with KALLOC_TOOLS=0) */
	ck_assert_int_eq(kalloc_owns(a, l), 2);
	ck_assert_int_eq(kalloc_owns(a, buf), 0);
}
END_TEST

/* Misuse slab declares it detects: reported (SIGABRT), never ignored. */
START_TEST(slab_direct_free_reports_double_free)
{
	kalloc_direct_t d;
	slab_direct(&d);
	unsigned char *p = DALLOC(d, 48);
	ck_assert_int_eq(DFREE(d, p), 1);
	DFREE(d, p);
	ck_abort_msg("a double free of a slab block returned");
}
END_TEST

START_TEST(slab_direct_free_reports_interior_pointer)
{
	kalloc_direct_t d;
	slab_direct(&d);
	unsigned char *p = DALLOC(d, 64);
	DFREE(d, p + 16);
	ck_abort_msg("a free inside a slab block returned");
}
END_TEST

START_TEST(slab_direct_free_reports_large_interior_pointer)
{
	kalloc_direct_t d;
	slab_direct(&d);
	unsigned char *l = DALLOC(d, (size_t)1 << 20);
	DFREE(d, l + 4096);
	ck_abort_msg("a free inside a large slab block returned");
}
END_TEST

/* ---- refused, and the plain word ---------------------------------------- */

START_TEST(direct_refused_without_entries)
{
	kalloc_t *a;
	ck_assert_msg(kalloc_open(FIXTURE("ok"), NULL, &a) == KALLOC_OK,
		      "fixture-ok: %s", kalloc_errmsg());
	kalloc_direct_t d = { 0 };
	ck_assert_int_eq(kalloc_direct(a, &d), KALLOC_ENOTSUP);
	ck_assert_ptr_null(d.alloc); /* untouched */
	ck_assert_msg(strstr(kalloc_errmsg(), "fixture") &&
		      strstr(kalloc_errmsg(), "fast"),
		      "errmsg does not say why: '%s'", kalloc_errmsg());
	ck_assert_int_eq(kalloc_direct(a, NULL), KALLOC_EINVAL);
	ck_assert_int_eq(kalloc_direct(NULL, &d), KALLOC_EINVAL);
	kalloc_info_t info;
	kalloc_info(a, &info);
	ck_assert_int_eq(info.fast, 0);
	kalloc_close(a);
}
END_TEST

START_TEST(plain_word_zero_with_stats)
{
	kalloc_direct_t d, ds;
	direct_of(_i, &d);
	kalloc_t *s;
	ck_assert_int_eq(kalloc_open(names[_i], "stats=1", &s), KALLOC_OK);
	ck_assert_int_eq(kalloc_direct(s, &ds), KALLOC_OK);
	ck_assert_int_eq(*ds.plain, 0);
	ck_assert_int_ne(*d.plain, 0); /* the shared handle stays plain */
	kalloc_close(s);
}
END_TEST

START_TEST(plain_word_follows_fail_nth)
{
	kalloc_direct_t d;
	kalloc_t *a = direct_of(_i, &d);
	kalloc_fail_nth(1);
	ck_assert_int_eq(*d.plain, 0);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(32, 16), KALLOC_NOWARN, &b),
			 KALLOC_ENOMEM);
	ck_assert_int_ne(*d.plain, 0); /* the failure fired: disarmed */

	kalloc_fail_nth(3);
	ck_assert_int_eq(*d.plain, 0);
	kalloc_fail_nth(0); /* cancelled */
	ck_assert_int_ne(*d.plain, 0);
}
END_TEST

START_TEST(plain_word_follows_fail_config)
{
	kalloc_direct_t d;
	direct_of(_i, &d);
	ck_assert_int_eq(kalloc_fail_config("probability:0"), KALLOC_OK);
	ck_assert_int_eq(*d.plain, 0);
	ck_assert_int_eq(kalloc_fail_config("interval:5"), KALLOC_OK);
	ck_assert_int_eq(*d.plain, 0);
	ck_assert_int_eq(kalloc_fail_config(""), KALLOC_OK);
	ck_assert_int_ne(*d.plain, 0);
	ck_assert_int_eq(kalloc_fail_config("times:1"), KALLOC_OK);
	kalloc_fail_nth(2); /* both armed: both must go */
	ck_assert_int_eq(kalloc_fail_config(NULL), KALLOC_OK);
	ck_assert_int_eq(*d.plain, 0);
	kalloc_fail_nth(0);
	ck_assert_int_ne(*d.plain, 0);
}
END_TEST

static void *arm_elsewhere(void *arg)
{
	(void)arg;
	kalloc_fail_nth(5);
	return NULL;
}

START_TEST(plain_word_zero_while_another_thread_armed)
{
	kalloc_direct_t d;
	direct_of(_i, &d);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, arm_elsewhere, NULL), 0);
	pthread_join(t, NULL);
	/* that thread's countdown is pending (it never allocated) */
	ck_assert_int_eq(*d.plain, 0);
}
END_TEST

START_TEST(plain_word_zero_once_accounted)
{
	kalloc_direct_t d;
	kalloc_t *a = direct_of(_i, &d);
	kalloc_domain_t *dom = kalloc_domain_create("job", 0);
	ck_assert_ptr_nonnull(dom);
	kalloc_domain_enter(dom);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 16), KALLOC_ACCOUNT, &b),
			 KALLOC_OK);
	/* a charged block: frees must go through the core to uncharge */
	ck_assert_int_eq(*d.plain, 0);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(100, 16));
	ck_assert_uint_eq(kalloc_domain_usage(dom), 0);
	kalloc_domain_enter(NULL);
}
END_TEST

static Suite *direct_suite(void)
{
	Suite *s = suite_create("direct");
	TCase *tc = tcase_create("entries");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, direct_blocks_aligned_writable_sized, 0, N_NAMES);
	tcase_add_loop_test(tc, direct_free_takes_core_blocks, 0, N_NAMES);
	tcase_add_loop_test(tc, direct_many_live_blocks, 0, N_NAMES);
	tcase_add_loop_test(tc, direct_alloc_failure_sets_enomem, 0, N_NAMES);
	tcase_add_test(tc, slab_direct_free_leaves_foreign_alone);
	tcase_add_test_raise_signal(tc, slab_direct_free_reports_double_free,
				    SIGABRT);
	tcase_add_test_raise_signal(tc, slab_direct_free_reports_interior_pointer,
				    SIGABRT);
	tcase_add_test_raise_signal(tc,
				    slab_direct_free_reports_large_interior_pointer,
				    SIGABRT);
	tcase_add_test(tc, direct_refused_without_entries);
	suite_add_tcase(s, tc);

	tc = tcase_create("plain word");
	tcase_add_loop_test(tc, plain_word_zero_with_stats, 0, N_NAMES);
	tcase_add_loop_test(tc, plain_word_follows_fail_nth, 0, N_NAMES);
	tcase_add_loop_test(tc, plain_word_follows_fail_config, 0, N_NAMES);
	tcase_add_loop_test(tc, plain_word_zero_while_another_thread_armed, 0,
			    N_NAMES);
	tcase_add_loop_test(tc, plain_word_zero_once_accounted, 0, N_NAMES);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(direct_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

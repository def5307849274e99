/*
 * The direct path (kalloc_direct, the fast table of <kalloc/plugin.h>): on
 * every built backend, its blocks are aligned as asked, writable, of a
 * usable size at least the one asked, and any free takes them, as the fast
 * free takes blocks of kalloc_alloc; slab's fast free tells foreign
 * pointers and leaves them alone, and reports a double or interior free; a
 * plugin without a fast table is refused; the plain word follows the
 * handle's instrumentation and fault injection, both ways; and the front
 * (kalloc_front): kv's is slab's own entries up to its threshold, whose
 * blocks cross with kv's, every other backend's is its own entries.
 *
 * DIRECT_BACKENDS (from meson.build) names the built backends that must
 * have fast entries: each must load, or the test fails.
 */
#include <kalloc.h>

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
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

/* ---- the front (kalloc_front) ------------------------------------------- */

static bool built(const char *name)
{
	for (int i = 0; i < N_NAMES; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

/* Handle a's direct entries and front. */
static void front_of(kalloc_t *a, kalloc_direct_t *d, kalloc_front_t *f)
{
	ck_assert_msg(kalloc_direct(a, d) == KALLOC_OK, "%s", kalloc_errmsg());
	ck_assert_msg(kalloc_front(a, f) == KALLOC_OK, "%s", kalloc_errmsg());
}

/* A front that is the handle's own entries: no front. */
static void expect_no_front(kalloc_t *a, const char *what)
{
	kalloc_direct_t d;
	kalloc_front_t f;
	front_of(a, &d, &f);
	kalloc_info_t info;
	kalloc_info(a, &info);
	ck_assert_msg(f.alloc == d.alloc && f.free == d.free &&
		      f.state == d.state, "%s: a front of other entries", what);
	ck_assert_uint_eq(f.max_size, SIZE_MAX);
	ck_assert_uint_eq(f.max_align, info.max_align);
	ck_assert_msg(f.rest_free == NULL, "%s: a rest free without a front",
		      what);
}

/* Every backend but kv (on slab) has no front. */
START_TEST(front_is_own_entries_without_one)
{
	if (!strcmp(names[_i], "kv"))
		return; /* kv_front_is_slabs_entries */
	kalloc_t *a = kalloc_get(names[_i]);
	ck_assert_msg(a, "%s: %s", names[_i], kalloc_errmsg());
	expect_no_front(a, names[_i]);
}
END_TEST

/* kv on slab: slab's own entries up to the threshold, kv's fast free for
 * the rest. */
START_TEST(kv_front_is_slabs_entries)
{
	kalloc_t *kv, *slab = kalloc_get("slab");
	ck_assert_ptr_nonnull(slab);
	ck_assert_msg(kalloc_open("kv", "threshold=2000", &kv) == KALLOC_OK, "%s",
		      kalloc_errmsg());
	kalloc_direct_t sd, kd;
	kalloc_front_t f;
	ck_assert_int_eq(kalloc_direct(slab, &sd), KALLOC_OK);
	front_of(kv, &kd, &f);
	ck_assert(f.alloc == sd.alloc && f.free == sd.free);
	ck_assert_ptr_eq(f.state, sd.state);
	ck_assert_uint_eq(f.max_size, 2000);
	kalloc_info_t si;
	kalloc_info(slab, &si);
	ck_assert_uint_eq(f.max_align, si.max_align);
	ck_assert(f.rest_free == kd.free);
	ck_assert_ptr_eq(f.rest_state, kd.state);
	ck_assert(kd.alloc != sd.alloc); /* kv's own entries stay kv's */
	kalloc_close(kv);
}
END_TEST

/* kv without a small backend that tells its blocks (libc) has no front;
 * on page, page's entries are its front. */
START_TEST(kv_front_follows_small_backend)
{
	kalloc_t *kv;
	ck_assert_int_eq(kalloc_open("kv", "small=libc", &kv), KALLOC_OK);
	expect_no_front(kv, "kv small=libc");
	kalloc_close(kv);

	ck_assert_int_eq(kalloc_open("kv", "small=page,threshold=100", &kv),
			 KALLOC_OK);
	kalloc_direct_t pd, kd;
	kalloc_front_t f;
	ck_assert_int_eq(kalloc_direct(kalloc_get("page"), &pd), KALLOC_OK);
	front_of(kv, &kd, &f);
	ck_assert(f.alloc == pd.alloc && f.free == pd.free);
	ck_assert_uint_eq(f.max_size, 100);
	kalloc_close(kv);
}
END_TEST

#define FALLOC(f, n) (f).alloc((f).state, KALLOC_LAYOUT((n), 16)).ptr
#define FFREE(f, p) (f).free((f).state, (p), KALLOC_LAYOUT_UNKNOWN)
#define RFREE(f, p) (f).rest_free((f).rest_state, (p), KALLOC_LAYOUT_UNKNOWN)

/* Blocks of kv's front and of kv's own entries (and of kalloc_alloc) free
 * through either path; a page block goes through the front's free
 * untouched (0), then the rest free takes it (1). */
START_TEST(kv_front_blocks_cross)
{
	kalloc_t *kv = kalloc_get("kv");
	ck_assert_ptr_nonnull(kv);
	kalloc_direct_t d;
	kalloc_front_t f;
	front_of(kv, &d, &f);
	ck_assert(f.rest_free != NULL);
	for (size_t k = 0; k < N_SIZES; k++) {
		size_t n = sizes[k];
		bool small = n <= f.max_size;
		/* made by the front (when it takes n) or by kv */
		unsigned char *p = small ? FALLOC(f, n) : DALLOC(d, n);
		unsigned char *q = DALLOC(d, n);
		kalloc_buf_t b;
		ck_assert_int_eq(kalloc_alloc(kv, KALLOC_LAYOUT(n, 16), 0, &b),
				 KALLOC_OK);
		ck_assert(p && q);
		ck_assert_int_eq(kalloc_owns(kv, p), 1);
		ck_assert_uint_ge(kalloc_usable_size(kv, p), n);
		memset(p, 0x11, n);
		memset(q, 0x22, n);
		/* a front block by kv's free, kv's block by the front's free */
		ck_assert_int_eq(DFREE(d, p), 1);
		if (small) {
			ck_assert_int_eq(FFREE(f, q), 1);
			ck_assert_int_eq(FFREE(f, b.ptr), 1);
			continue;
		}
		/* above the threshold, a block of kv's may be slab's (up to
		 * `large`) or page's: the front takes slab's, the rest page's */
		if (!FFREE(f, q)) {
			for (size_t j = 0; j < n; j += 4096)
				ck_assert_uint_eq(q[j], 0x22); /* untouched */
			ck_assert_int_eq(kalloc_owns(kv, q), 1);
			ck_assert_int_eq(RFREE(f, q), 1);
		}
		if (!FFREE(f, b.ptr))
			ck_assert_int_eq(RFREE(f, b.ptr), 1);
	}
	/* a front block resized and measured by the core */
	unsigned char *p = FALLOC(f, 100);
	memset(p, 7, 100);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_realloc(kv, p, KALLOC_LAYOUT(200, 16),
					KALLOC_LAYOUT_UNKNOWN, 0, &b), KALLOC_OK);
	ck_assert_uint_eq(((unsigned char *)b.ptr)[99], 7);
	kalloc_free(kv, b.ptr, KALLOC_LAYOUT(200, 16));
}
END_TEST

/* A page block: the front's free says 0 and leaves it, the rest frees it. */
START_TEST(kv_front_free_leaves_page_block_to_rest)
{
	kalloc_t *kv, *page = kalloc_get("page");
	ck_assert_int_eq(kalloc_open("kv", "large=262144", &kv), KALLOC_OK);
	ck_assert(page);
	kalloc_direct_t d;
	kalloc_front_t f;
	front_of(kv, &d, &f);
	unsigned char *l = DALLOC(d, (size_t)1 << 20); /* above `large` */
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(kalloc_owns(page, l), 1);
	memset(l, 0x66, (size_t)1 << 20);
	ck_assert_int_eq(FFREE(f, l), 0);
	ck_assert_int_eq(kalloc_owns(page, l), 1);
	ck_assert_uint_eq(l[0], 0x66);
	ck_assert_uint_eq(l[((size_t)1 << 20) - 1], 0x66);
	ck_assert_int_eq(RFREE(f, l), 1);
	ck_assert_int_ne(kalloc_owns(page, l), 1);
	kalloc_close(kv);
}
END_TEST

/* A pointer of neither: 0 from both, untouched. */
START_TEST(kv_front_leaves_foreign_alone)
{
	kalloc_direct_t d;
	kalloc_front_t f;
	front_of(kalloc_get("kv"), &d, &f);
	static unsigned char buf[256] __attribute__((aligned(64)));
	memset(buf, 0x5a, sizeof(buf));
	ck_assert_int_eq(FFREE(f, buf + 64), 0);
	ck_assert_int_eq(RFREE(f, buf + 64), 0);
	for (size_t k = 0; k < sizeof(buf); k++)
		ck_assert_uint_eq(buf[k], 0x5a);
}
END_TEST

/* Misuse of a front block is reported by the front's free. */
START_TEST(kv_front_free_reports_double_free)
{
	kalloc_direct_t d;
	kalloc_front_t f;
	front_of(kalloc_get("kv"), &d, &f);
	unsigned char *p = FALLOC(f, 48);
	ck_assert_int_eq(DFREE(d, p), 1);
	FFREE(f, p);
	ck_abort_msg("a double free of a kv front block returned");
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

	tc = tcase_create("front");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, front_is_own_entries_without_one, 0, N_NAMES);
	if (built("kv") && built("slab") && built("page")) {
		tcase_add_test(tc, kv_front_is_slabs_entries);
		tcase_add_test(tc, kv_front_follows_small_backend);
		tcase_add_test(tc, kv_front_blocks_cross);
		tcase_add_test(tc, kv_front_free_leaves_page_block_to_rest);
		tcase_add_test(tc, kv_front_leaves_foreign_alone);
		tcase_add_test_raise_signal(tc, kv_front_free_reports_double_free,
					    SIGABRT);
	}
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

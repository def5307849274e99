/*
 * <kalloc/linux.h>: the kernel's allocation API and its semantics
 * (mm/slab_common.c, include/linux/slab.h of Linux 6.13): ZERO_SIZE_PTR,
 * krealloc in place and on failure, natural alignment, overflow-checked
 * array helpers, zeroing, kmemdup/kstrdup, the failure warning, and the v*
 * and kv* families while their backends are missing.
 *
 * The k* calls run on the default backend.  Where a free must be seen, a
 * child process makes the fixture backend (every block its own mapping) the
 * default through KALLOC_BACKEND.
 */
#include <kalloc/linux.h>

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixtures/child.h"

#define FIXTURE(v) FIXTURE_DIR "/fixture-" v ".so"

static int all_bytes(const void *p, size_t n, unsigned char v)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i] != v)
			return 0;
	return 1;
}

/* Is the page at p mapped?  (mincore fails with ENOMEM on unmapped memory.) */
static int mapped(const void *p)
{
	void *page = (void *)((uintptr_t)p & ~(uintptr_t)(PAGE_SIZE - 1));
	unsigned char vec;
	return mincore(page, PAGE_SIZE, &vec) == 0 || errno != ENOMEM;
}

/* ---- ZERO_SIZE_PTR ------------------------------------------------------ */

START_TEST(zero_size_ptr)
{
	ck_assert_ptr_eq(ZERO_SIZE_PTR, (void *)16);
	ck_assert_ptr_eq(kmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
	ck_assert_ptr_eq(kzalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
	ck_assert_ptr_eq(kmalloc_array(0, 8, GFP_KERNEL), ZERO_SIZE_PTR);
	ck_assert_ptr_eq(kcalloc(8, 0, GFP_KERNEL), ZERO_SIZE_PTR);
	ck_assert_ptr_eq(kvmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
	ck_assert_uint_eq(ksize(ZERO_SIZE_PTR), 0);
	ck_assert_uint_eq(ksize(NULL), 0);
	kfree(ZERO_SIZE_PTR);
	kfree(NULL);
	kvfree(ZERO_SIZE_PTR);
	kvfree(NULL);
	vfree(NULL);
	vfree(ZERO_SIZE_PTR);

	ck_assert(ZERO_OR_NULL_PTR(NULL));
	ck_assert(ZERO_OR_NULL_PTR(ZERO_SIZE_PTR));
	ck_assert(ZERO_OR_NULL_PTR((void *)8));
	ck_assert(!ZERO_OR_NULL_PTR((void *)17));
	void *p = kmalloc(1, GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	ck_assert(!ZERO_OR_NULL_PTR(p));
	ck_assert_uint_ge(ksize(p), 1);
	kfree(p);
}
END_TEST

START_TEST(krealloc_zero_size)
{
	char *p = kmalloc(100, GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	memset(p, 1, 100);
	ck_assert_ptr_eq(krealloc(p, 0, GFP_KERNEL), ZERO_SIZE_PTR);
	ck_assert_ptr_eq(krealloc(NULL, 0, GFP_KERNEL), ZERO_SIZE_PTR);
	ck_assert_ptr_eq(krealloc(ZERO_SIZE_PTR, 0, GFP_KERNEL), ZERO_SIZE_PTR);
	/* krealloc of NULL or ZERO_SIZE_PTR allocates */
	char *q = krealloc(NULL, 50, GFP_KERNEL);
	char *r = krealloc(ZERO_SIZE_PTR, 50, GFP_KERNEL);
	ck_assert(!ZERO_OR_NULL_PTR(q) && !ZERO_OR_NULL_PTR(r) && q != r);
	memset(q, 2, 50);
	memset(r, 3, 50);
	kfree(q);
	kfree(r);
}
END_TEST

/* With the fixture as the default backend, frees are visible as unmaps. */
static const char *frees_child(void *arg)
{
	(void)arg;
	setenv("KALLOC_BACKEND", FIXTURE("ok"), 1);
	char *p = kmalloc(100, GFP_KERNEL);
	CHILD_REQUIRE(p, "kmalloc on the fixture failed");
	kalloc_info_t info;
	kalloc_info(kalloc_default(), &info);
	CHILD_REQUIRE(strcmp(info.name, "fixture") == 0,
		      "the default is %s, not the fixture", info.name);
	CHILD_REQUIRE(mapped(p), "fresh block not mapped");
	CHILD_REQUIRE(krealloc(p, 0, GFP_KERNEL) == ZERO_SIZE_PTR,
		      "krealloc(p, 0) did not return ZERO_SIZE_PTR");
	CHILD_REQUIRE(!mapped(p), "krealloc(p, 0) did not free p");

	p = kmalloc(100, GFP_KERNEL);
	kfree(p);
	CHILD_REQUIRE(!mapped(p), "kfree did not free");

	/* a krealloc that moves frees the old block */
	p = kmalloc(100, GFP_KERNEL);
	size_t ks = ksize(p);
	memset(p, 9, 100);
	char *q = krealloc(p, ks + 1, GFP_KERNEL);
	CHILD_REQUIRE(q && q != p, "krealloc past ksize did not move");
	CHILD_REQUIRE(all_bytes(q, 100, 9), "content lost");
	CHILD_REQUIRE(!mapped(p), "the old block of a moving krealloc leaked");
	kfree(q);
	return NULL;
}

START_TEST(frees_really_free)
{
	char err[4096];
	const char *why = run_child(frees_child, NULL, err, sizeof(err));
	ck_assert_msg(!why, "%s (stderr: %s)", why, err);
}
END_TEST

/* The fixture's counters, read through dlsym (see fixture.c). */
struct front_counts {
	unsigned allocs, frees, refused;
};
struct lean_counts {
	unsigned allocs, frees;
	size_t last_align;
};

/* With a default backend that has a front (the fixture's: up to 1000
 * bytes and 64-byte alignment), kmalloc asks the front what it takes and
 * the fast alloc the rest; kfree asks the front first, then the rest. */
static const char *front_child(void *arg)
{
	(void)arg;
	setenv("KALLOC_BACKEND", FIXTURE("front"), 1);
	kfree(kmalloc(100, GFP_KERNEL)); /* the first one sets the path up */
	void *dl = dlopen(FIXTURE("front"), RTLD_NOW | RTLD_NOLOAD);
	CHILD_REQUIRE(dl, "the fixture is not the default");
	struct front_counts *f = dlsym(dl, "fixture_front");
	struct lean_counts *l = dlsym(dl, "fixture_lean");
	CHILD_REQUIRE(f && l, "fixture counters missing");
	*f = (struct front_counts){ 0 };
	*l = (struct lean_counts){ 0 };
	char *small = kmalloc(100, GFP_KERNEL);
	CHILD_REQUIRE(small, "kmalloc on the fixture failed");
	CHILD_REQUIRE(f->allocs == 1 && l->allocs == 0,
		      "kmalloc(100) did not take the front");
	char *big = kmalloc(2000, GFP_KERNEL);      /* above max_size */
	char *aligned = kmalloc(128, GFP_KERNEL);   /* above max_align */
	CHILD_REQUIRE(big && aligned, "kmalloc on the fixture failed");
	CHILD_REQUIRE(f->allocs == 1 && l->allocs == 2,
		      "kmalloc beyond the front did not take the fast alloc");
	char *z = kzalloc(50, GFP_KERNEL);
	CHILD_REQUIRE(z && all_bytes(z, 50, 0) && f->allocs == 2,
		      "kzalloc(50) did not take the front, or is not zeroed");
	kfree(small);
	kfree(z);
	CHILD_REQUIRE(f->frees == 2 && f->refused == 0 && !mapped(small),
		      "kfree of a front block did not take the front's free");
	kfree(big);
	kfree(aligned);
	CHILD_REQUIRE(f->refused == 2 && l->frees == 2 && !mapped(big) &&
		      !mapped(aligned),
		      "kfree of another block did not go front, then rest");
	dlclose(dl);
	return NULL;
}

START_TEST(kmalloc_takes_the_front)
{
	char err[4096];
	const char *why = run_child(front_child, NULL, err, sizeof(err));
	ck_assert_msg(!why, "%s (stderr: %s)", why, err);
}
END_TEST

/* ---- krealloc in place, and on failure ---------------------------------- */

START_TEST(krealloc_that_fits_keeps_pointer)
{
	unsigned char *p = kmalloc(100, GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	size_t ks = ksize(p);
	ck_assert_uint_ge(ks, 100);
	memset(p, 0xaa, ks); /* the whole usable length is the caller's */
	ck_assert_ptr_eq(krealloc(p, 50, GFP_KERNEL), p); /* shrink never moves */
	ck_assert_ptr_eq(krealloc(p, ks, GFP_KERNEL), p);
	ck_assert(all_bytes(p, ks, 0xaa));
	/* __GFP_ZERO zeroes from the new size to ksize, keeps the rest */
	ck_assert_ptr_eq(krealloc(p, 40, GFP_KERNEL | __GFP_ZERO), p);
	ck_assert(all_bytes(p, 40, 0xaa));
	ck_assert_msg(all_bytes(p + 40, ks - 40, 0), "tail not zeroed");
	kfree(p);
}
END_TEST

START_TEST(krealloc_grow_keeps_content_and_zeroes)
{
	unsigned char *p = kzalloc(100, GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	memset(p, 0x5c, 100);
	for (size_t n = 200; n <= 1 << 20; n *= 3) {
		unsigned char *q = krealloc(p, n, GFP_KERNEL | __GFP_ZERO);
		ck_assert_ptr_nonnull(q);
		ck_assert_uint_ge(ksize(q), n);
		ck_assert_msg(all_bytes(q, 100, 0x5c), "content lost at %zu", n);
		ck_assert_msg(all_bytes(q + 100, ksize(q) - 100, 0),
			      "grown part not zero at %zu", n);
		p = q;
	}
	kfree(p);
}
END_TEST

START_TEST(krealloc_failure_keeps_block)
{
	unsigned char *p = kmalloc(100, GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	memset(p, 0x33, 100);
	size_t ks = ksize(p);
	struct capture c;
	char err[4096];

	/* injected failure: NULL, p intact, one warning line */
	kalloc_fail_nth(1);
	capture_start(&c);
	void *q = krealloc(p, 100000, GFP_KERNEL);
	capture_stop(&c, err, sizeof(err));
	ck_assert_ptr_null(q);
	ck_assert_uint_eq(ksize(p), ks);
	ck_assert(all_bytes(p, 100, 0x33));
	ck_assert_msg(count_lines(err) == 1, "want one warning line: %s", err);
	ck_assert_ptr_nonnull(strstr(err, "100000 bytes"));

	/* an impossible size, silenced by __GFP_NOWARN */
	capture_start(&c);
	q = krealloc(p, SIZE_MAX, GFP_KERNEL | __GFP_NOWARN);
	capture_stop(&c, err, sizeof(err));
	ck_assert_ptr_null(q);
	ck_assert(all_bytes(p, 100, 0x33));
	ck_assert_msg(err[0] == 0, "__GFP_NOWARN printed: %s", err);

	/* and p still grows afterwards */
	q = krealloc(p, 100000, GFP_KERNEL);
	ck_assert_ptr_nonnull(q);
	ck_assert(all_bytes(q, 100, 0x33));
	kfree(q);
}
END_TEST

START_TEST(failed_kmalloc_warns_once_unless_nowarn)
{
	struct capture c;
	char err[4096];
	capture_start(&c);
	void *p = kmalloc(SIZE_MAX, GFP_KERNEL);
	capture_stop(&c, err, sizeof(err));
	ck_assert_ptr_null(p);
	ck_assert_msg(count_lines(err) == 1 && strncmp(err, "kalloc: ", 8) == 0,
		      "want one kalloc: line: %s", err);

	kalloc_fail_nth(1);
	capture_start(&c);
	p = kzalloc(64, GFP_KERNEL);
	capture_stop(&c, err, sizeof(err));
	ck_assert_ptr_null(p);
	ck_assert_msg(count_lines(err) == 1, "injected: %s", err);

	kalloc_fail_nth(1);
	capture_start(&c);
	p = kmalloc(64, GFP_KERNEL | __GFP_NOWARN);
	void *q = kmalloc(SIZE_MAX, __GFP_NOWARN);
	capture_stop(&c, err, sizeof(err));
	ck_assert_ptr_null(p);
	ck_assert_ptr_null(q);
	ck_assert_msg(err[0] == 0, "__GFP_NOWARN printed: %s", err);
}
END_TEST

/* ---- alignment ------------------------------------------------------------ */

START_TEST(natural_alignment_of_powers_of_two)
{
	void *keep[13][4];
	int i = 0;
	for (size_t size = 1; size <= 4096; size <<= 1, i++)
		for (int k = 0; k < 4; k++) { /* several, not one lucky block */
			keep[i][k] = kmalloc(size, GFP_KERNEL);
			ck_assert_ptr_nonnull(keep[i][k]);
			ck_assert_msg((uintptr_t)keep[i][k] % size == 0,
				      "kmalloc(%zu) = %p", size, keep[i][k]);
			memset(keep[i][k], 0xee, size);
		}
	for (i = 0; i < 13; i++)
		for (int k = 0; k < 4; k++)
			kfree(keep[i][k]);

	/* krealloc to a power of two, kzalloc and kcalloc too */
	char *p = kmalloc(24, GFP_KERNEL);
	for (size_t size = 32; size <= 4096; size <<= 1) {
		p = krealloc(p, size, GFP_KERNEL);
		ck_assert_ptr_nonnull(p);
		ck_assert_msg((uintptr_t)p % size == 0, "krealloc(%zu) = %p",
			      size, (void *)p);
		void *z = kzalloc(size, GFP_KERNEL), *a = kcalloc(size / 8, 8, 0);
		ck_assert_uint_eq((uintptr_t)z % size, 0);
		ck_assert_uint_eq((uintptr_t)a % size, 0);
		kfree(z);
		kfree(a);
	}
	kfree(p);

	/* other sizes: 16 bytes */
	size_t odd[] = { 3, 24, 100, 1000, 3000, 5000, 70000 };
	for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
		p = kmalloc(odd[k], GFP_KERNEL);
		ck_assert_ptr_nonnull(p);
		ck_assert_msg((uintptr_t)p % 16 == 0, "kmalloc(%zu) = %p", odd[k],
			      (void *)p);
		kfree(p);
	}
}
END_TEST

/* ---- array helpers ------------------------------------------------------- */

START_TEST(array_helpers_fail_on_overflow)
{
	size_t big = SIZE_MAX / 2 + 1;
	ck_assert_ptr_null(kmalloc_array(big, 2, GFP_KERNEL));
	ck_assert_ptr_null(kmalloc_array(2, big, GFP_KERNEL));
	ck_assert_ptr_null(kmalloc_array(SIZE_MAX, SIZE_MAX, GFP_KERNEL));
	ck_assert_ptr_null(kcalloc(big, 2, GFP_KERNEL));
	ck_assert_ptr_null(kvcalloc(big, 2, GFP_KERNEL));
	/* (SIZE_MAX/3+1) * 3 wraps to a small number: must not be allocated */
	ck_assert_ptr_null(kmalloc_array(SIZE_MAX / 3 + 1, 3, GFP_KERNEL));

	unsigned char *p = kmalloc_array(10, 10, GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(ksize(p), 100);
	memset(p, 0x11, 100);
	ck_assert_ptr_null(krealloc_array(p, big, 4, GFP_KERNEL));
	ck_assert(all_bytes(p, 100, 0x11)); /* p untouched */
	unsigned char *q = krealloc_array(p, 300, 4, GFP_KERNEL);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_ge(ksize(q), 1200);
	ck_assert(all_bytes(q, 100, 0x11));
	kfree(q);
}
END_TEST

START_TEST(zeroing_allocations)
{
	/* dirty the heap first so zeroing is not an accident of fresh pages */
	for (size_t size = 8; size <= 65536; size *= 2) {
		void *d = kmalloc(size, GFP_KERNEL);
		memset(d, 0xff, ksize(d));
		kfree(d);
		unsigned char *z = kzalloc(size, GFP_KERNEL);
		ck_assert_ptr_nonnull(z);
		ck_assert_msg(all_bytes(z, ksize(z), 0), "kzalloc(%zu)", size);
		memset(z, 0xff, ksize(z));
		kfree(z);
		unsigned char *c = kcalloc(size / 8, 8, GFP_KERNEL);
		ck_assert_ptr_nonnull(c);
		ck_assert_msg(all_bytes(c, ksize(c), 0), "kcalloc(%zu)", size);
		kfree(c);
	}
}
END_TEST

START_TEST(kmemdup_and_kstrdup)
{
	unsigned char src[300];
	for (int i = 0; i < 300; i++)
		src[i] = (unsigned char)(i * 13);
	unsigned char *d = kmemdup(src, sizeof(src), GFP_KERNEL);
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_ne(d, src);
	ck_assert_mem_eq(d, src, sizeof(src));
	kfree(d);
	ck_assert_ptr_eq(kmemdup(src, 0, GFP_KERNEL), ZERO_SIZE_PTR);

	char *s = kstrdup("kernel style", GFP_KERNEL);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "kernel style");
	ck_assert_uint_ge(ksize(s), 13);
	kfree(s);
	s = kstrdup("", GFP_KERNEL);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "");
	kfree(s);
	ck_assert_ptr_null(kstrdup(NULL, GFP_KERNEL));

	/* failure: NULL */
	kalloc_fail_nth(1);
	ck_assert_ptr_null(kstrdup("x", GFP_KERNEL | __GFP_NOWARN));
	kalloc_fail_nth(1);
	ck_assert_ptr_null(kmemdup(src, 10, GFP_KERNEL | __GFP_NOWARN));
}
END_TEST

START_TEST(common_gfp_masks_are_accepted)
{
	/* kernel code passes these all the time; the core handles them */
	gfp_t masks[] = { GFP_KERNEL, GFP_HIGHUSER, GFP_KERNEL_ACCOUNT,
			  GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_NOWARN };
	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		void *p = kmalloc(64, masks[i]);
		ck_assert_msg(p != NULL, "kmalloc(64, 0x%x): %s", masks[i],
			      kalloc_errmsg());
		kfree(p);
	}
}
END_TEST

/* ---- v* and kv* without their backends ------------------------------------ */

/* Runs call() with stderr captured: it must fail with one line naming `who`. */
static void expect_missing(const char *what, void *(*call)(void), const char *who)
{
	struct capture c;
	char err[4096];
	capture_start(&c);
	void *p = call();
	capture_stop(&c, err, sizeof(err));
	ck_assert_msg(p == NULL, "%s succeeded without backend %s", what, who);
	ck_assert_msg(count_lines(err) == 1, "%s: want one line: %s", what, err);
	char name[32];
	snprintf(name, sizeof(name), "'%s'", who);
	ck_assert_msg(strstr(err, name), "%s: line does not name %s: %s", what,
		      name, err);
	/* the run has only slab on its plugin path */
	ck_assert_msg(strstr(err, "valid backends: slab "),
		      "%s: line does not list the valid backends: %s", what, err);
}

static void *call_vmalloc(void) { return vmalloc(100); }
static void *call_vzalloc(void) { return vzalloc(5000); }
static void *call_vrealloc(void) { return vrealloc(NULL, 100, GFP_KERNEL); }
static void *call_kvmalloc(void) { return kvmalloc(100, GFP_KERNEL); }
static void *call_kvzalloc(void) { return kvzalloc(100, GFP_KERNEL); }
static void *call_kvcalloc(void) { return kvcalloc(10, 10, GFP_KERNEL); }
static void *call_kvrealloc(void) { return kvrealloc(NULL, 100, GFP_KERNEL); }

/*
 * The missing_backends case runs twice (tests/unit/meson.build): with every
 * plugin, where vmalloc and kvmalloc work, and with only slab on the plugin
 * path and KALLOC_TEST_MISSING=1, where they fail with a message naming the
 * missing backend.  Each run asserts which one it is.
 */
static bool backends_missing(const char *name)
{
	bool missing = getenv("KALLOC_TEST_MISSING") != NULL;
	ck_assert_msg((kalloc_get(name) == NULL) == missing,
		      "backend %s is %s, but this run expects it %s", name,
		      kalloc_get(name) ? "present" : "missing",
		      missing ? "missing" : "present");
	return missing;
}

START_TEST(vmalloc_without_page_backend)
{
	ck_assert_ptr_null(vmalloc(0)); /* as in the kernel, with page or not */
	if (!backends_missing("page")) {
		void *p = vmalloc(100);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq((uintptr_t)p % PAGE_SIZE, 0);
		vfree(p);
		return;
	}
	expect_missing("vmalloc", call_vmalloc, "page");
	expect_missing("vzalloc", call_vzalloc, "page");
	expect_missing("vrealloc", call_vrealloc, "page");
}
END_TEST

START_TEST(kvmalloc_without_kv_backend)
{
	if (!backends_missing("kv")) {
		void *p = kvmalloc(100, GFP_KERNEL);
		ck_assert_ptr_nonnull(p);
		kvfree(p);
		return;
	}
	expect_missing("kvmalloc", call_kvmalloc, "kv");
	expect_missing("kvzalloc", call_kvzalloc, "kv");
	expect_missing("kvcalloc", call_kvcalloc, "kv");
	expect_missing("kvrealloc", call_kvrealloc, "kv");
	/* __GFP_NOWARN silences it */
	struct capture c;
	char err[4096];
	capture_start(&c);
	void *p = kvmalloc(100, GFP_KERNEL | __GFP_NOWARN);
	capture_stop(&c, err, sizeof(err));
	ck_assert_ptr_null(p);
	ck_assert_msg(err[0] == 0, "__GFP_NOWARN printed: %s", err);
}
END_TEST

/* linux.h promises the failure warning is rate limited, a missing
 * backend's too. */
START_TEST(missing_backend_warning_rate_limited)
{
	if (!backends_missing("page"))
		return; /* vmalloc does not fail: nothing to limit */
	struct capture c;
	static char err[65536];
	capture_start(&c);
	for (int i = 0; i < 50; i++)
		ck_assert_ptr_null(vmalloc(100));
	capture_stop(&c, err, sizeof(err));
	int lines = count_lines(err);
	ck_assert_msg(lines >= 1 && lines <= 10,
		      "50 vmalloc failures printed %d lines", lines);
}
END_TEST

/* A test case with room for valgrind and a loaded machine (Check's
 * default is 4 s). */
static TCase *new_tcase(const char *name)
{
	TCase *tc = tcase_create(name);
	tcase_set_timeout(tc, 60);
	return tc;
}

static Suite *linux_suite(void)
{
	Suite *s = suite_create("linux");
	TCase *tc = new_tcase("zero_size");
	tcase_add_test(tc, zero_size_ptr);
	tcase_add_test(tc, krealloc_zero_size);
	tcase_add_test(tc, frees_really_free);
	tcase_add_test(tc, kmalloc_takes_the_front);
	suite_add_tcase(s, tc);

	tc = new_tcase("krealloc");
	tcase_add_test(tc, krealloc_that_fits_keeps_pointer);
	tcase_add_test(tc, krealloc_grow_keeps_content_and_zeroes);
	tcase_add_test(tc, krealloc_failure_keeps_block);
	tcase_add_test(tc, failed_kmalloc_warns_once_unless_nowarn);
	suite_add_tcase(s, tc);

	tc = new_tcase("shapes");
	tcase_add_test(tc, natural_alignment_of_powers_of_two);
	tcase_add_test(tc, array_helpers_fail_on_overflow);
	tcase_add_test(tc, zeroing_allocations);
	tcase_add_test(tc, kmemdup_and_kstrdup);
	tcase_add_test(tc, common_gfp_masks_are_accepted);
	suite_add_tcase(s, tc);

	tc = new_tcase("missing_backends");
	tcase_add_test(tc, vmalloc_without_page_backend);
	tcase_add_test(tc, kvmalloc_without_kv_backend);
	tcase_add_test(tc, missing_backend_warning_rate_limited);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(linux_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

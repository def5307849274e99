/*
 * The kv backend (KVmalloc): routing between the small backend and page,
 * told apart by page's owns(); realloc across the threshold both ways with
 * content; free and usable_size of both kinds; the vmalloc/kvmalloc names of
 * <kalloc/linux.h>.
 *
 * The small backend is pinned where the routing is asserted: libc, or
 * kv-limited (plugins/kv/kv_limited.c: libc's blocks up to 64 KiB, at most
 * page-aligned), whose real refusals show kv's fallback to page.
 */
#include <check.h>
#include <kalloc.h>
#include <kalloc/linux.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define LIMIT (64 * KiB) /* kv-limited's largest block */

static size_t pagesz;
static char limited_opt[600]; /* "small=<path of kv-limited.so>" */

/* kv-limited.so sits next to kalloc-kv.so, in a KALLOC_PLUGIN_PATH dir. */
static void find_limited(void)
{
	const char *path = getenv("KALLOC_PLUGIN_PATH");
	for (const char *d = path; d && *d;) {
		size_t n = strcspn(d, ":");
		char file[512];
		snprintf(file, sizeof(file), "%.*s/kv-limited.so", (int)n, d);
		if (access(file, R_OK) == 0) {
			snprintf(limited_opt, sizeof(limited_opt), "small=%s", file);
			return;
		}
		d += n + (d[n] == ':');
	}
}

/*
 * kv over kv-limited, with more options after a comma if given.  `large` is
 * out of the way: these tests are about the small backend's fallback.
 */
#define NO_LARGE "large=1073741824"

static kalloc_t *open_limited(const char *more)
{
	char opts[700];
	ck_assert_msg(limited_opt[0], "kv-limited.so not in KALLOC_PLUGIN_PATH");
	snprintf(opts, sizeof(opts), "%s," NO_LARGE "%s%s", limited_opt,
		 more ? "," : "", more ? more : "");
	kalloc_t *a = NULL;
	int err = kalloc_open("kv", opts, &a);
	ck_assert_msg(err == KALLOC_OK, "open kv (%s): %s", opts, kalloc_errmsg());
	return a;
}

static kalloc_t *page(void)
{
	kalloc_t *p = kalloc_get("page");
	ck_assert_msg(p != NULL, "page: %s", kalloc_errmsg());
	return p;
}

static kalloc_t *open_kv(const char *opts)
{
	kalloc_t *a = NULL;
	int err = kalloc_open("kv", opts, &a);
	ck_assert_msg(err == KALLOC_OK, "open kv (%s): %s", opts ? opts : "",
		      kalloc_errmsg());
	return a;
}

static int in_page(const void *p)
{
	return kalloc_owns(page(), p) == 1;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + seed);
}

/* Check records every assertion through a pipe: one per buffer, not byte. */
static void check_fill(const unsigned char *p, size_t n, unsigned seed)
{
	size_t i = 0;
	while (i < n && p[i] == (unsigned char)(i * 31 + seed))
		i++;
	ck_assert_msg(i == n, "byte %zu of %zu lost", i, n);
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static kalloc_buf_t alloc_ok(kalloc_t *a, size_t size, size_t align,
			     kalloc_flags_t f)
{
	kalloc_buf_t b;
	int err = kalloc_alloc(a, KALLOC_LAYOUT(size, align), f, &b);
	ck_assert_msg(err == KALLOC_OK, "alloc %zu: %s", size, kalloc_errmsg());
	ck_assert_uint_ge(b.len, size);
	return b;
}

static kalloc_buf_t realloc_ok(kalloc_t *a, void *p, size_t size,
			       size_t old_size, kalloc_flags_t f)
{
	kalloc_buf_t b;
	int err = kalloc_realloc(a, p, KALLOC_LAYOUT(size, 16),
				 KALLOC_LAYOUT(old_size, old_size ? 16 : 0), f,
				 &b);
	ck_assert_msg(err == KALLOC_OK, "realloc to %zu: %s", size,
		      kalloc_errmsg());
	ck_assert_uint_ge(b.len, size);
	return b;
}

START_TEST(small_sizes_stay_on_the_small_backend)
{
	kalloc_t *a = open_kv("small=libc," NO_LARGE);
	/* the small backend serves even large sizes when it can (kvmalloc) */
	const size_t sizes[] = { 1, 100, 4096, 4097, MiB };
	for (size_t i = 0; i < 5; i++) {
		kalloc_buf_t b = alloc_ok(a, sizes[i], 16, 0);
		ck_assert(!in_page(b.ptr));
		ck_assert_uint_eq(kalloc_usable_size(a, b.ptr),
				  kalloc_usable_size(kalloc_get("libc"), b.ptr));
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(sizes[i], 16));
	}
	kalloc_close(a);
	/* at or below the threshold a failing small backend is final */
	a = open_limited("threshold=131072");
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(LIMIT + 1, 16),
				      KALLOC_NOWARN, &b), KALLOC_ENOMEM);
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(131072, 16),
				      KALLOC_NOWARN, &b), KALLOC_ENOMEM);
	/* above it, page takes over */
	b = alloc_ok(a, 131073, 16, 0);
	ck_assert(in_page(b.ptr));
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(131073, 16));
	kalloc_close(a);
}
END_TEST

/* Above `large` blocks go to page first, as kmalloc_large does, and a small
 * block growing past it moves there, content kept. */
START_TEST(sizes_above_large_go_to_page)
{
	kalloc_t *a = open_kv("small=libc,large=32768");
	kalloc_buf_t b = alloc_ok(a, 32768, 16, 0);
	ck_assert(!in_page(b.ptr));
	memset(b.ptr, 0x5c, 32768);
	kalloc_buf_t g = realloc_ok(a, b.ptr, 32769, 32768, 0);
	ck_assert(in_page(g.ptr));
	for (size_t i = 0; i < 32768; i++)
		ck_assert_int_eq(((unsigned char *)g.ptr)[i], 0x5c);
	kalloc_free(a, g.ptr, KALLOC_LAYOUT(32769, 16));
	b = alloc_ok(a, 32769, 16, KALLOC_ZERO);
	ck_assert(in_page(b.ptr));
	ck_assert_int_eq(((char *)b.ptr)[32768], 0);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(32769, 16));
	kalloc_close(a);
}
END_TEST

/* By default no size goes to page first: slab serves kvmalloc at every
 * size it can, a medium span (256 KiB) and a large mapping (64 MiB) too,
 * and grows them there; large=0 says the same. */
START_TEST(default_large_is_none)
{
	const char *opts[] = { "small=slab", "small=slab,large=0" };
	for (int i = 0; i < 2; i++) {
		kalloc_t *a = open_kv(opts[i]);
		kalloc_buf_t b = alloc_ok(a, 256 * 1024 + 1, 16, 0);
		ck_assert(!in_page(b.ptr));
		kalloc_buf_t c = alloc_ok(a, (size_t)64 << 20, 16, 0);
		ck_assert(!in_page(c.ptr));
		kalloc_buf_t g;
		ck_assert_int_eq(kalloc_realloc(a, b.ptr,
						KALLOC_LAYOUT((size_t)8 << 20, 16),
						KALLOC_LAYOUT(256 * 1024 + 1, 16),
						0, &g), KALLOC_OK);
		ck_assert(!in_page(g.ptr));
		kalloc_free(a, g.ptr, KALLOC_LAYOUT((size_t)8 << 20, 16));
		kalloc_free(a, c.ptr, KALLOC_LAYOUT((size_t)64 << 20, 16));
		kalloc_close(a);
	}
}
END_TEST

START_TEST(large_sizes_fall_back_to_page)
{
	kalloc_t *a = open_limited(NULL);
	kalloc_buf_t s = alloc_ok(a, LIMIT, 16, 0);
	ck_assert(!in_page(s.ptr));
	kalloc_buf_t b = alloc_ok(a, LIMIT + 1, 16, KALLOC_ZERO);
	ck_assert(in_page(b.ptr));
	ck_assert_int_eq(kalloc_owns(a, b.ptr), 1);
	ck_assert_uint_eq((uintptr_t)b.ptr % pagesz, 0);
	ck_assert(all_zero(b.ptr, b.len));
	ck_assert_uint_eq(kalloc_usable_size(a, b.ptr),
			  (LIMIT + pagesz) / pagesz * pagesz);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(LIMIT + 1, 16));
	ck_assert(!in_page(b.ptr));
	kalloc_free(a, s.ptr, KALLOC_LAYOUT(LIMIT, 16));
	kalloc_close(a);
}
END_TEST

START_TEST(alignments_the_small_backend_refuses_go_to_page)
{
	kalloc_t *a = open_limited(NULL);
	kalloc_buf_t s = alloc_ok(a, 100, pagesz, 0);
	ck_assert(!in_page(s.ptr));
	kalloc_buf_t p = alloc_ok(a, 100, 2 * pagesz, KALLOC_ZERO);
	ck_assert(in_page(p.ptr));
	ck_assert_uint_eq((uintptr_t)p.ptr % (2 * pagesz), 0);
	ck_assert(all_zero(p.ptr, p.len));
	/* realloc to such an alignment moves a small block to page */
	fill(s.ptr, 100, 7);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_realloc(a, s.ptr, KALLOC_LAYOUT(300, 4 * pagesz),
					KALLOC_LAYOUT(100, pagesz), KALLOC_ZERO,
					&b), KALLOC_OK);
	ck_assert(in_page(b.ptr));
	ck_assert_uint_eq((uintptr_t)b.ptr % (4 * pagesz), 0);
	check_fill(b.ptr, 100, 7);
	ck_assert(all_zero((unsigned char *)b.ptr + 100, b.len - 100));
	/* and back when the alignment allows and the size is small */
	ck_assert_int_eq(kalloc_realloc(a, b.ptr, KALLOC_LAYOUT(50, 16),
					KALLOC_LAYOUT(300, 4 * pagesz), 0, &b),
			 KALLOC_OK);
	ck_assert(!in_page(b.ptr));
	check_fill(b.ptr, 50, 7);
	/* a page block at an alignment the small backend refuses stays */
	ck_assert_int_eq(kalloc_realloc(a, p.ptr, KALLOC_LAYOUT(60, 2 * pagesz),
					KALLOC_LAYOUT(100, 2 * pagesz), 0, &p),
			 KALLOC_OK);
	ck_assert(in_page(p.ptr));
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(50, 16));
	kalloc_free(a, p.ptr, KALLOC_LAYOUT_UNKNOWN);
	ck_assert(!in_page(p.ptr));
	kalloc_close(a);
}
END_TEST

START_TEST(realloc_crosses_the_threshold_both_ways)
{
	kalloc_t *a = open_limited(NULL);
	kalloc_buf_t b = alloc_ok(a, 1000, 16, 0);
	ck_assert(!in_page(b.ptr));
	fill(b.ptr, 1000, 1);
	/* small -> page when the small backend cannot grow it */
	b = realloc_ok(a, b.ptr, 3 * MiB, 1000, KALLOC_ZERO);
	ck_assert(in_page(b.ptr));
	check_fill(b.ptr, 1000, 1);
	ck_assert(all_zero((unsigned char *)b.ptr + 1000, b.len - 1000));
	fill(b.ptr, 3 * MiB, 2);
	/* a page block grows in page */
	b = realloc_ok(a, b.ptr, 5 * MiB, 3 * MiB, 0);
	ck_assert(in_page(b.ptr));
	check_fill(b.ptr, 3 * MiB, 2);
	/* and stays there while above the threshold */
	b = realloc_ok(a, b.ptr, 5000, 5 * MiB, 0);
	ck_assert(in_page(b.ptr));
	check_fill(b.ptr, 5000, 2);
	/* page -> small when it shrinks to the threshold or below */
	b = realloc_ok(a, b.ptr, 3000, 5000, KALLOC_ZERO);
	ck_assert(!in_page(b.ptr));
	check_fill(b.ptr, 3000, 2);
	ck_assert(all_zero((unsigned char *)b.ptr + 3000, b.len - 3000));
	/* the same with the old layout unknown */
	b = realloc_ok(a, b.ptr, 90000, 0, 0);
	ck_assert(in_page(b.ptr));
	check_fill(b.ptr, 3000, 2);
	b = realloc_ok(a, b.ptr, 20, 0, 0);
	ck_assert(!in_page(b.ptr));
	check_fill(b.ptr, 20, 2);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT_UNKNOWN);
	kalloc_close(a);
}
END_TEST

/* 64 TiB: more than malloc or mmap will give on any test machine. */
#define HUGE ((size_t)1 << 46)

START_TEST(failed_realloc_keeps_the_block)
{
	kalloc_t *a = open_limited(NULL);
	kalloc_buf_t small = alloc_ok(a, 200, 16, 0), out = { 0, 0 };
	kalloc_buf_t large = alloc_ok(a, 100 * KiB, 16, 0);
	ck_assert(!in_page(small.ptr));
	ck_assert(in_page(large.ptr));
	fill(small.ptr, 200, 3);
	fill(large.ptr, 100 * KiB, 4);
	/* both backends fail: the old blocks are intact and still owned */
	ck_assert_int_eq(kalloc_realloc(a, small.ptr, KALLOC_LAYOUT(HUGE, 16),
					KALLOC_LAYOUT(200, 16), KALLOC_NOWARN,
					&out), KALLOC_ENOMEM);
	ck_assert_int_eq(kalloc_realloc(a, large.ptr, KALLOC_LAYOUT(HUGE, 16),
					KALLOC_LAYOUT_UNKNOWN, KALLOC_NOWARN,
					&out), KALLOC_ENOMEM);
	ck_assert_ptr_null(out.ptr);
	check_fill(small.ptr, 200, 3);
	check_fill(large.ptr, 100 * KiB, 4);
	ck_assert(!in_page(small.ptr));
	ck_assert(in_page(large.ptr));
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(HUGE, 16), KALLOC_NOWARN,
				      &out), KALLOC_ENOMEM);
	kalloc_free(a, small.ptr, KALLOC_LAYOUT(200, 16));
	kalloc_free(a, large.ptr, KALLOC_LAYOUT(100 * KiB, 16));
	kalloc_close(a);
}
END_TEST

START_TEST(free_and_usable_size_of_both_kinds)
{
	kalloc_t *a = open_limited(NULL);
	enum { N = 40 };
	kalloc_buf_t b[N];
	for (int i = 0; i < N; i++) {
		size_t size = (size_t)(i + 1) * 3000;
		b[i] = alloc_ok(a, size, 16, 0);
		ck_assert_int_eq(in_page(b[i].ptr), size > LIMIT);
		/* page reports its usable length exactly; libc may report
		 * the size asked for and find more later */
		if (size > LIMIT)
			ck_assert_uint_eq(kalloc_usable_size(a, b[i].ptr),
					  b[i].len);
		else
			ck_assert_uint_ge(kalloc_usable_size(a, b[i].ptr),
					  b[i].len);
		fill(b[i].ptr, size, (unsigned)i);
	}
	for (int i = 0; i < N; i++) {
		check_fill(b[i].ptr, (size_t)(i + 1) * 3000, (unsigned)i);
		kalloc_free(a, b[i].ptr, i % 3 ? KALLOC_LAYOUT_UNKNOWN
			    : KALLOC_LAYOUT((size_t)(i + 1) * 3000, 16));
		ck_assert(!in_page(b[i].ptr));
	}
	kalloc_close(a);
}
END_TEST

START_TEST(default_small_backend_and_bad_options)
{
	kalloc_t *a = kalloc_get("kv");
	ck_assert_msg(a != NULL, "kv: %s", kalloc_errmsg());
	kalloc_info_t info;
	kalloc_info(a, &info);
	ck_assert_str_eq(info.name, "kv");
	ck_assert(info.flags & KALLOC_ZERO);
	ck_assert(!(info.flags & KALLOC_NOWAIT)); /* not both backends do */
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(10, 16),
				      KALLOC_NOWAIT | KALLOC_NOWARN, &b),
			 KALLOC_ENOTSUP);
	b = alloc_ok(a, 300, 16, KALLOC_ZERO);
	ck_assert(all_zero(b.ptr, b.len));
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(300, 16));

	ck_assert_int_eq(kalloc_open("kv", "small=kv", &a), KALLOC_ELOAD);
	ck_assert_int_eq(kalloc_open("kv", "threshold=x", &a), KALLOC_ELOAD);
	ck_assert_int_eq(kalloc_open("kv", "size=1", &a), KALLOC_ELOAD);
}
END_TEST

/* ---- <kalloc/linux.h> --------------------------------------------------- */

START_TEST(linux_vmalloc_names)
{
	unsigned char *p = vmalloc(3 * pagesz + 5);
	ck_assert_ptr_nonnull(p);
	ck_assert(in_page(p));
	ck_assert_uint_eq((uintptr_t)p % pagesz, 0);
	fill(p, 3 * pagesz + 5, 4);
	p = vrealloc(p, 2 * MiB, GFP_KERNEL | __GFP_ZERO);
	ck_assert_ptr_nonnull(p);
	check_fill(p, 3 * pagesz + 5, 4);
	ck_assert(all_zero(p + 3 * pagesz + 5, 2 * MiB - 3 * pagesz - 5));
	p = vrealloc(p, 100, GFP_KERNEL);
	check_fill(p, 100, 4);
	vfree(p);
	ck_assert(!in_page(p));
	unsigned char *z = vzalloc(MiB);
	ck_assert(all_zero(z, MiB));
	vfree(z);
	ck_assert_ptr_null(vmalloc(0));
	vfree(NULL);
}
END_TEST

START_TEST(linux_kvmalloc_names)
{
	unsigned char *p = kvmalloc(100, GFP_KERNEL);
	ck_assert_ptr_nonnull(p);
	fill(p, 100, 5);
	p = kvrealloc(p, 2 * MiB, GFP_KERNEL | __GFP_ZERO);
	ck_assert_ptr_nonnull(p);
	check_fill(p, 100, 5);
	ck_assert(all_zero(p + 100, 2 * MiB - 100));
	p = kvrealloc(p, 50, GFP_KERNEL);
	check_fill(p, 50, 5);
	kvfree(p);

	unsigned *z = kvzalloc(10000, GFP_KERNEL);
	ck_assert(all_zero((unsigned char *)z, 10000));
	kvfree(z);
	unsigned *c = kvcalloc(1000, sizeof(unsigned), GFP_KERNEL);
	ck_assert(all_zero((unsigned char *)c, 1000 * sizeof(unsigned)));
	kvfree(c);
	ck_assert_ptr_null(kvcalloc(SIZE_MAX / 2, 4, GFP_KERNEL | __GFP_NOWARN));
	ck_assert_ptr_eq(kvmalloc(0, GFP_KERNEL), ZERO_SIZE_PTR);
	kvfree(ZERO_SIZE_PTR);
	kvfree(NULL);

	/* kvrealloc and kvfree take vmalloc'd blocks (is_vmalloc_addr) */
	p = vmalloc(5 * pagesz);
	ck_assert_ptr_nonnull(p);
	fill(p, 5 * pagesz, 6);
	p = kvrealloc(p, 9 * pagesz, GFP_KERNEL);
	ck_assert(in_page(p));
	check_fill(p, 5 * pagesz, 6);
	kvfree(p);
	ck_assert(!in_page(p));
}
END_TEST

int main(void)
{
	pagesz = (size_t)sysconf(_SC_PAGESIZE);
	find_limited();
	Suite *s = suite_create("kv");
	TCase *tc = tcase_create("kv");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, small_sizes_stay_on_the_small_backend);
	tcase_add_test(tc, sizes_above_large_go_to_page);
	tcase_add_test(tc, default_large_is_none);
	tcase_add_test(tc, large_sizes_fall_back_to_page);
	tcase_add_test(tc, alignments_the_small_backend_refuses_go_to_page);
	tcase_add_test(tc, realloc_crosses_the_threshold_both_ways);
	tcase_add_test(tc, failed_realloc_keeps_the_block);
	tcase_add_test(tc, free_and_usable_size_of_both_kinds);
	tcase_add_test(tc, default_small_backend_and_bad_options);
	tcase_add_test(tc, linux_vmalloc_names);
	tcase_add_test(tc, linux_kvmalloc_names);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

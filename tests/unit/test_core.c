/*
 * The dispatch rules of src/core/dispatch.c, which every backend relies on:
 * sentinels and size 0 (G6, G7), argument checks and their error codes (G2,
 * G10, G14) with the old block intact (G5), injected failures
 * (kalloc_fail_nth), error messages, the failure warning and its rate limit
 * (G12), and several handles open at once.
 *
 * Run on "libc" (always built) and on the test-only fixture backend, whose
 * blocks are their own mappings (so a free can be seen) and whose limits are
 * small (max_align 4096).
 */
#include <kalloc.h>

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fixtures/child.h"

#define FIXTURE(v) FIXTURE_DIR "/fixture-" v ".so"
#define PAGE 4096u

static kalloc_t *libc(void)
{
	kalloc_t *a = kalloc_get("libc");
	ck_assert_msg(a, "libc: %s", kalloc_errmsg());
	return a;
}

static kalloc_t *open_fixture(const char *options)
{
	kalloc_t *a;
	ck_assert_msg(kalloc_open(FIXTURE("ok"), options, &a) == KALLOC_OK,
		      "fixture: %s", kalloc_errmsg());
	return a;
}

/* Fills n bytes with a pattern derived from seed. */
static void fill(void *p, size_t n, unsigned seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		c[i] = (unsigned char)(seed + i * 7);
}

/* Index of the first byte that differs from the pattern, or n. */
static size_t check_fill(const void *p, size_t n, unsigned seed)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i] != (unsigned char)(seed + i * 7))
			return i;
	return n;
}

/* A live block of `size` bytes filled with the pattern of seed. */
static void *filled(kalloc_t *a, size_t size, size_t align, unsigned seed)
{
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(size, align), 0, &b),
			 KALLOC_OK);
	fill(b.ptr, size, seed);
	return b.ptr;
}

/* Is the page at p mapped?  (mincore fails with ENOMEM on unmapped memory.) */
static int mapped(const void *p)
{
	void *page = (void *)((uintptr_t)p & ~(uintptr_t)(PAGE - 1));
	unsigned char vec;
	return mincore(page, PAGE, &vec) == 0 || errno != ENOMEM;
}

/* ---- sentinels (G6, G7) ------------------------------------------------ */

START_TEST(sentinel_addresses)
{
	ck_assert_ptr_eq(kalloc_sentinel(1), (void *)16);
	ck_assert_ptr_eq(kalloc_sentinel(8), (void *)16);
	ck_assert_ptr_eq(kalloc_sentinel(16), (void *)16);
	ck_assert_ptr_eq(kalloc_sentinel(64), (void *)64);
	ck_assert_ptr_eq(kalloc_sentinel(4096), (void *)4096);
	ck_assert_ptr_eq(kalloc_sentinel(3), (void *)16);
	/* above a page, one address in the top GiB (the kernel's half),
	 * aligned to every alignment a handle takes */
	void *high = (void *)((uintptr_t)0 - ((uintptr_t)1 << 30));
	ck_assert_ptr_eq(kalloc_sentinel(8192), high);
	ck_assert_ptr_eq(kalloc_sentinel((size_t)1 << 30), high);
	ck_assert_ptr_eq(kalloc_sentinel((size_t)1 << 40), high);
	ck_assert_ptr_eq(KALLOC_ZERO_SIZE_PTR, kalloc_sentinel(1));

	for (size_t al = 1; al <= ((size_t)1 << 30); al <<= 1)
		ck_assert_msg(kalloc_is_sentinel(kalloc_sentinel(al)),
			      "sentinel of %zu not recognised", al);
	for (uintptr_t p = 1; p <= 16; p++)
		ck_assert(kalloc_is_sentinel((void *)p)); /* ZERO_OR_NULL_PTR */
	ck_assert(!kalloc_is_sentinel(NULL));
	ck_assert(!kalloc_is_sentinel((void *)48));
	ck_assert(!kalloc_is_sentinel((void *)4097));
	/* a power of two above page 0 may be a block (a low brk heap) */
	for (unsigned b = 13; b < 48; b++)
		ck_assert_msg(!kalloc_is_sentinel((void *)((uintptr_t)1 << b)),
			      "2^%u taken for a sentinel", b);

	void *p = filled(libc(), 32, 16, 1);
	ck_assert(!kalloc_is_sentinel(p));
	kalloc_free(libc(), p, KALLOC_LAYOUT(32, 16));
}
END_TEST

START_TEST(size_zero_alloc_gives_sentinel)
{
	kalloc_t *a = libc();
	for (size_t al = 1; al <= 8192; al <<= 1) {
		kalloc_buf_t b = { (void *)1, 99 };
		ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(0, al), 0, &b),
				 KALLOC_OK);
		ck_assert_ptr_eq(b.ptr, kalloc_sentinel(al));
		ck_assert_uint_eq(b.len, 0);
		ck_assert_uint_eq((uintptr_t)b.ptr % al, 0); /* suitably aligned */
	}
}
END_TEST

START_TEST(size_zero_frees_and_returns_sentinel)
{
	kalloc_t *a = open_fixture(NULL);
	kalloc_buf_t b, z;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 8), 0, &b), KALLOC_OK);
	ck_assert(mapped(b.ptr));
	ck_assert_int_eq(kalloc_realloc(a, b.ptr, KALLOC_LAYOUT(0, 8),
					KALLOC_LAYOUT(100, 8), 0, &z), KALLOC_OK);
	ck_assert_ptr_eq(z.ptr, KALLOC_ZERO_SIZE_PTR);
	ck_assert_uint_eq(z.len, 0);
	ck_assert_msg(!mapped(b.ptr), "realloc to size 0 did not free the block");

	/* with the old layout unknown too, and the result follows the alignment */
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 8), 0, &b), KALLOC_OK);
	ck_assert_int_eq(kalloc_realloc(a, b.ptr, KALLOC_LAYOUT(0, 256),
					KALLOC_LAYOUT_UNKNOWN, 0, &z), KALLOC_OK);
	ck_assert_ptr_eq(z.ptr, (void *)256);
	ck_assert(!mapped(b.ptr));

	/* kalloc_free frees */
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 8), 0, &b), KALLOC_OK);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(100, 8));
	ck_assert(!mapped(b.ptr));
	kalloc_close(a);
}
END_TEST

START_TEST(sentinels_accepted_everywhere)
{
	kalloc_t *a = libc();
	/* free, usable_size and owns of NULL and sentinels: no-ops */
	kalloc_free(a, NULL, KALLOC_LAYOUT(8, 8));
	kalloc_free(a, KALLOC_ZERO_SIZE_PTR, KALLOC_LAYOUT_UNKNOWN);
	kalloc_free(a, kalloc_sentinel(4096), KALLOC_LAYOUT(0, 4096));
	ck_assert_uint_eq(kalloc_usable_size(a, NULL), 0);
	ck_assert_uint_eq(kalloc_usable_size(a, KALLOC_ZERO_SIZE_PTR), 0);
	ck_assert_int_eq(kalloc_owns(a, kalloc_sentinel(64)), 0);

	/* realloc of a sentinel allocates */
	for (size_t al = 1; al <= 4096; al <<= 1) {
		kalloc_buf_t b;
		ck_assert_int_eq(kalloc_realloc(a, kalloc_sentinel(al),
						KALLOC_LAYOUT(100, al),
						KALLOC_LAYOUT(0, al), 0, &b),
				 KALLOC_OK);
		ck_assert(!kalloc_is_sentinel(b.ptr));
		ck_assert_uint_eq((uintptr_t)b.ptr % al, 0);
		memset(b.ptr, 1, 100);
		/* and with the old layout unknown */
		kalloc_buf_t c;
		ck_assert_int_eq(kalloc_realloc(a, KALLOC_ZERO_SIZE_PTR,
						KALLOC_LAYOUT(10, al),
						KALLOC_LAYOUT_UNKNOWN, 0, &c),
				 KALLOC_OK);
		ck_assert(!kalloc_is_sentinel(c.ptr));
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(100, al));
		kalloc_free(a, c.ptr, KALLOC_LAYOUT(10, al));
	}
}
END_TEST

START_TEST(zero_sized_old_layout_is_never_touched)
{
	/* An empty vector's dangling pointer: old size 0 says ptr is not a
	 * block, whatever its value (here a guard page: touching it faults). */
	kalloc_t *a = libc();
	char *guard = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			   -1, 0);
	ck_assert_ptr_ne(guard, MAP_FAILED);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_realloc(a, guard, KALLOC_LAYOUT(64, 8),
					KALLOC_LAYOUT(0, 8), 0, &b), KALLOC_OK);
	ck_assert_ptr_ne(b.ptr, guard);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(64, 8));
	kalloc_free(a, guard, KALLOC_LAYOUT(0, 8));
	ck_assert_int_eq(kalloc_realloc(a, guard, KALLOC_LAYOUT(0, 8),
					KALLOC_LAYOUT(0, 8), 0, &b), KALLOC_OK);
	munmap(guard, PAGE);
	kalloc_t *f = open_fixture(NULL);
	ck_assert_int_eq(kalloc_realloc(f, (void *)guard, KALLOC_LAYOUT(64, 8),
					KALLOC_LAYOUT(0, 8), 0, &b), KALLOC_OK);
	kalloc_free(f, b.ptr, KALLOC_LAYOUT(64, 8));
	kalloc_close(f);
}
END_TEST

#define POW2_ADDR ((void *)((uintptr_t)1 << 20))

/*
 * A block at a power-of-two address is a block like any other (a tcmalloc
 * or libc heap in a non-PIE program's brk area has such blocks): handed
 * out, resized with its content, freed.  The fixture maps its next block
 * at 1 MiB.  Until the sentinels moved out of reach, the core took that
 * address for Rust's dangling pointer of align 1 MiB: it retired the block
 * (a leak), and a realloc of it lost its content.
 */
static void expect_block_at_pow2(kalloc_t *a, kalloc_flags_t f)
{
	kalloc_buf_t b, g;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 8), f, &b), KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, POW2_ADDR);
	ck_assert(!kalloc_is_sentinel(b.ptr));
	ck_assert_uint_ge(kalloc_usable_size(a, b.ptr), 100);
	fill(b.ptr, 100, 7);
	ck_assert_int_eq(kalloc_realloc(a, b.ptr, KALLOC_LAYOUT(20000, 8),
					KALLOC_LAYOUT(100, 8), f, &g),
			 KALLOC_OK);
	ck_assert_uint_eq(check_fill(g.ptr, 100, 7), 100);
	ck_assert(!mapped(POW2_ADDR)); /* the old block freed */
	kalloc_free(a, g.ptr, KALLOC_LAYOUT(20000, 8));
	kalloc_close(a);
}

START_TEST(backend_block_at_power_of_two_address)
{
	expect_block_at_pow2(open_fixture("pow2_alloc"), 0);
}
END_TEST

/* ---- argument checks ---------------------------------------------------- */

/* A realloc of a live 64-byte block fails with err and leaves it intact. */
static void expect_realloc_refused(kalloc_t *a, kalloc_layout_t l,
				   kalloc_flags_t f, int err, const char *want)
{
	void *p = filled(a, 64, 16, 42);
	kalloc_buf_t out = { (void *)1, 1 };
	int r = kalloc_realloc(a, p, l, KALLOC_LAYOUT(64, 16), f | KALLOC_NOWARN,
			       &out);
	ck_assert_msg(r == err, "realloc(size %zu, align %zu, flags 0x%x): %d, "
		      "want %d (%s)", l.size, l.align, f, r, err, kalloc_errmsg());
	ck_assert_msg(out.ptr == (void *)1 && out.len == 1,
		      "failed call wrote *out");
	ck_assert_uint_eq(check_fill(p, 64, 42), 64);
	ck_assert_msg(strstr(kalloc_errmsg(), want), "errmsg lacks \"%s\": %s",
		      want, kalloc_errmsg());
	/* still live and owned: it can grow and be freed */
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_realloc(a, p, KALLOC_LAYOUT(200, 16),
					KALLOC_LAYOUT(64, 16), 0, &b), KALLOC_OK);
	ck_assert_uint_eq(check_fill(b.ptr, 64, 42), 64);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(200, 16));

	/* the same layout as a fresh allocation fails the same way */
	r = kalloc_alloc(a, l, f | KALLOC_NOWARN, &out);
	ck_assert_int_eq(r, err);
	ck_assert(out.ptr == (void *)1);
}

START_TEST(einval_alignment_not_power_of_two)
{
	kalloc_t *a = libc();
	size_t bad[] = { 0, 3, 24, 48, 100, 4097, SIZE_MAX };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_realloc_refused(a, KALLOC_LAYOUT(128, bad[i]), 0,
				       KALLOC_EINVAL, "power of two");
	/* errmsg names the bad value */
	expect_realloc_refused(a, KALLOC_LAYOUT(128, 24), 0, KALLOC_EINVAL,
			       "alignment 24");

	/* a free (size 0) with a bad alignment is refused and frees nothing */
	kalloc_t *f = open_fixture(NULL);
	kalloc_buf_t b, z;
	ck_assert_int_eq(kalloc_alloc(f, KALLOC_LAYOUT(100, 8), 0, &b), KALLOC_OK);
	ck_assert_int_eq(kalloc_realloc(f, b.ptr, KALLOC_LAYOUT(0, 3),
					KALLOC_LAYOUT(100, 8), KALLOC_NOWARN, &z),
			 KALLOC_EINVAL);
	ck_assert(mapped(b.ptr));
	kalloc_free(f, b.ptr, KALLOC_LAYOUT(100, 8));
	kalloc_close(f);
}
END_TEST

START_TEST(einval_unknown_flags)
{
	expect_realloc_refused(libc(), KALLOC_LAYOUT(128, 16), 1u << 20,
			       KALLOC_EINVAL, "unknown flag");
	expect_realloc_refused(libc(), KALLOC_LAYOUT(128, 16), KALLOC_FLAGS_ALL + 1,
			       KALLOC_EINVAL, "0x80");
}
END_TEST

START_TEST(ealign_above_max_align)
{
	kalloc_t *f = open_fixture(NULL);
	/* the fixture declares 4096: 4096 works, 8192 and up are refused */
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(f, KALLOC_LAYOUT(10, 4096), 0, &b), KALLOC_OK);
	ck_assert_uint_eq((uintptr_t)b.ptr % 4096, 0);
	kalloc_free(f, b.ptr, KALLOC_LAYOUT(10, 4096));
	for (size_t al = 8192; al <= ((size_t)1 << 40); al <<= 1)
		expect_realloc_refused(f, KALLOC_LAYOUT(100, al), 0,
				       KALLOC_EALIGN, "up to 4096");
	expect_realloc_refused(f, KALLOC_LAYOUT(100, 8192), 0, KALLOC_EALIGN,
			       "'fixture'");
	kalloc_close(f);
	/* libc declares 1 GiB; the core caps every backend there too */
	expect_realloc_refused(libc(), KALLOC_LAYOUT(100, (size_t)1 << 31), 0,
			       KALLOC_EALIGN, "up to 1073741824");
}
END_TEST

START_TEST(eoverflow_near_size_max)
{
	kalloc_t *a = libc();
	for (size_t al = 1; al <= 4096; al <<= 1) {
		expect_realloc_refused(a, KALLOC_LAYOUT(SIZE_MAX, al), 0,
				       KALLOC_EOVERFLOW, "overflows");
		expect_realloc_refused(a, KALLOC_LAYOUT(SIZE_MAX - al + 1, al), 0,
				       KALLOC_EOVERFLOW, "overflows");
	}
	expect_realloc_refused(a, KALLOC_LAYOUT(SIZE_MAX - 1, 16), 0,
			       KALLOC_EOVERFLOW, "alignment 16");
	/* just below: no overflow, but above libc's max_size (PTRDIFF_MAX) */
	expect_realloc_refused(a, KALLOC_LAYOUT((size_t)PTRDIFF_MAX + 1, 16), 0,
			       KALLOC_ENOMEM, "limit");
}
END_TEST

START_TEST(layout_array_overflow)
{
	kalloc_layout_t l = { 1, 1 };
	ck_assert_int_eq(kalloc_layout_array(SIZE_MAX / 2 + 1, 2, 8, &l),
			 KALLOC_EOVERFLOW);
	ck_assert_uint_eq(l.size, 1); /* untouched on failure */
	ck_assert_ptr_nonnull(strstr(kalloc_errmsg(), "overflows"));
	ck_assert_int_eq(kalloc_layout_array(SIZE_MAX, SIZE_MAX, 8, &l),
			 KALLOC_EOVERFLOW);
	ck_assert_int_eq(kalloc_layout_array(4, 3, 12, &l), KALLOC_EINVAL);
	ck_assert_int_eq(kalloc_layout_array(SIZE_MAX / 2, 2, 8, &l), KALLOC_OK);
	ck_assert_uint_eq(l.size, SIZE_MAX - 1);
	ck_assert_uint_eq(l.align, 8);
	ck_assert_int_eq(kalloc_layout_array(0, SIZE_MAX, 1, &l), KALLOC_OK);
	ck_assert_uint_eq(l.size, 0);
}
END_TEST

START_TEST(enotsup_refused_flags)
{
	kalloc_t *a = libc();
	kalloc_info_t info;
	kalloc_info(a, &info);
	ck_assert_uint_eq(info.flags & KALLOC_NOWAIT, 0); /* libc refuses it */
	expect_realloc_refused(a, KALLOC_LAYOUT(128, 16), KALLOC_NOWAIT,
			       KALLOC_ENOTSUP, "does not honor flags 0x4");
	expect_realloc_refused(a, KALLOC_LAYOUT(128, 16), KALLOC_ATOMIC,
			       KALLOC_ENOTSUP, "'libc'");
	expect_realloc_refused(a, KALLOC_LAYOUT(128, 16),
			       KALLOC_ZERO | KALLOC_ATOMIC, KALLOC_ENOTSUP,
			       "0x8");
	/* honored flags and the core's own (NOWARN, HIGHMEM) are accepted */
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(64, 16),
				      KALLOC_ZERO | KALLOC_NOWARN | KALLOC_HIGHMEM,
				      &b), KALLOC_OK);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(64, 16));
}
END_TEST

START_TEST(account_and_highmem_handled_by_core)
{
	/* plugin.h: the core handles NOWARN, ACCOUNT and HIGHMEM itself, so a
	 * backend that declares none of them still accepts them */
	kalloc_t *f = open_fixture(NULL);
	kalloc_flags_t core[] = { KALLOC_ACCOUNT, KALLOC_HIGHMEM, KALLOC_NOWARN,
				  KALLOC_ACCOUNT | KALLOC_HIGHMEM | KALLOC_NOWARN };
	for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++) {
		kalloc_buf_t b;
		int r = kalloc_alloc(f, KALLOC_LAYOUT(64, 16), core[i], &b);
		ck_assert_msg(r == KALLOC_OK, "flags 0x%x refused: %s", core[i],
			      kalloc_errmsg());
		kalloc_free(f, b.ptr, KALLOC_LAYOUT(64, 16));
	}
	kalloc_close(f);
}
END_TEST

START_TEST(strerror_texts)
{
	for (int e = 0; e < KALLOC_ERR_COUNT; e++) {
		const char *t = kalloc_strerror(e);
		ck_assert_msg(t && *t && strcmp(t, "unknown error"), "code %d", e);
		for (int f = 0; f < e; f++)
			ck_assert_str_ne(t, kalloc_strerror(f));
	}
	ck_assert_str_eq(kalloc_strerror(KALLOC_ERR_COUNT), "unknown error");
	ck_assert_str_eq(kalloc_strerror(-1), "unknown error");
}
END_TEST

/* ---- kalloc_direct_watch ------------------------------------------------ */

static int watch_last = -1;

static void watch(void *ctx, int plain)
{
	(*(int *)ctx)++;
	watch_last = plain;
}

/* The watcher sees the plain word at once, and each store of it after:
 * fault injection armed and disarmed, a feature turned on (an accounted
 * allocation), the handle closed; none once removed. */
START_TEST(direct_watch_follows_the_plain_word)
{
	kalloc_t *a;
	ck_assert_int_eq(kalloc_open("libc", NULL, &a), KALLOC_OK);
	kalloc_direct_t d;
	ck_assert_int_eq(kalloc_direct(a, &d), KALLOC_OK);
	int n = 0;
	ck_assert_int_eq(kalloc_direct_watch(a, watch, &n), KALLOC_OK);
	ck_assert(n == 1 && watch_last == 1 && *d.plain);
	kalloc_fail_nth(1);
	ck_assert(n == 2 && watch_last == 0 && !*d.plain);
	kalloc_fail_nth(0);
	ck_assert(n == 3 && watch_last == 1 && *d.plain);

	kalloc_domain_t *dom = kalloc_domain_create("watched", 0);
	ck_assert_ptr_nonnull(dom);
	kalloc_domain_t *was = kalloc_domain_enter(dom);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(64, 16), KALLOC_ACCOUNT,
				      &b), KALLOC_OK);
	ck_assert(n == 4 && watch_last == 0 && !*d.plain);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(64, 16));
	kalloc_domain_enter(was);
	ck_assert_int_eq(kalloc_domain_destroy(dom), KALLOC_OK);

	ck_assert_int_eq(kalloc_direct_watch(a, NULL, NULL), KALLOC_OK);
	kalloc_fail_nth(1);
	kalloc_fail_nth(0);
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(kalloc_direct_watch(a, watch, &n), KALLOC_OK);
	ck_assert(n == 5 && watch_last == 0);
	watch_last = -1;
	kalloc_close(a);
	ck_assert(n == 6 && watch_last == 0);
	ck_assert_int_eq(kalloc_direct_watch(NULL, watch, &n), KALLOC_EINVAL);
}
END_TEST

/* ---- kalloc_fail_nth (G5) ----------------------------------------------- */

START_TEST(fail_nth_next_call)
{
	kalloc_t *a = libc();
	void *p = filled(a, 100, 16, 9);
	kalloc_fail_nth(1);
	kalloc_buf_t b = { NULL, 0 };
	ck_assert_int_eq(kalloc_realloc(a, p, KALLOC_LAYOUT(5000, 16),
					KALLOC_LAYOUT(100, 16), KALLOC_NOWARN, &b),
			 KALLOC_ENOMEM);
	ck_assert_ptr_null(b.ptr);
	ck_assert_ptr_nonnull(strstr(kalloc_errmsg(), "injected"));
	ck_assert_uint_eq(check_fill(p, 100, 9), 100);
	/* only one call fails */
	ck_assert_int_eq(kalloc_realloc(a, p, KALLOC_LAYOUT(5000, 16),
					KALLOC_LAYOUT(100, 16), 0, &b), KALLOC_OK);
	ck_assert_uint_eq(check_fill(b.ptr, 100, 9), 100);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(5000, 16));
}
END_TEST

START_TEST(fail_nth_counts_allocating_calls)
{
	kalloc_t *a = libc();
	kalloc_buf_t b[6];
	kalloc_fail_nth(4);
	for (int i = 0; i < 6; i++) {
		int r = kalloc_alloc(a, KALLOC_LAYOUT(32, 8), KALLOC_NOWARN, &b[i]);
		ck_assert_msg(r == (i == 3 ? KALLOC_ENOMEM : KALLOC_OK),
			      "call %d returned %d", i + 1, r);
		/* frees are not allocating calls and never fail */
		if (i < 2 && r == KALLOC_OK) {
			kalloc_free(a, b[i].ptr, KALLOC_LAYOUT(32, 8));
			b[i].ptr = NULL;
		}
	}
	for (int i = 0; i < 6; i++)
		if (i != 3)
			kalloc_free(a, b[i].ptr, KALLOC_LAYOUT(32, 8));
	/* a size-0 request (no allocation) neither fails nor consumes it */
	kalloc_fail_nth(1);
	kalloc_buf_t z;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(0, 8), 0, &z), KALLOC_OK);
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(8, 8), KALLOC_NOWARN, &z),
			 KALLOC_ENOMEM);
}
END_TEST

START_TEST(fail_nth_fails_a_shrinking_resize)
{
	/* kalloc.h: "alloc or resize": a shrink is a resize, and its failure
	 * leaves the block as it was */
	kalloc_t *a = libc();
	void *p = filled(a, 1000, 16, 3);
	kalloc_fail_nth(1);
	kalloc_buf_t b = { NULL, 0 };
	ck_assert_int_eq(kalloc_realloc(a, p, KALLOC_LAYOUT(100, 16),
					KALLOC_LAYOUT(1000, 16), KALLOC_NOWARN, &b),
			 KALLOC_ENOMEM);
	ck_assert_ptr_null(b.ptr);
	ck_assert_uint_eq(check_fill(p, 1000, 3), 1000);
	ck_assert_uint_ge(kalloc_usable_size(a, p), 1000);
	kalloc_free(a, p, KALLOC_LAYOUT(1000, 16));
}
END_TEST

START_TEST(fail_nth_zero_cancels)
{
	kalloc_t *a = libc();
	kalloc_fail_nth(1);
	kalloc_fail_nth(0);
	kalloc_buf_t b;
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(32, 8), 0, &b),
				 KALLOC_OK);
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(32, 8));
	}
	/* re-arming replaces the countdown */
	kalloc_fail_nth(5);
	kalloc_fail_nth(1);
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(32, 8), KALLOC_NOWARN, &b),
			 KALLOC_ENOMEM);
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(32, 8), 0, &b),
				 KALLOC_OK);
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(32, 8));
	}
}
END_TEST

static void *allocate_many(void *arg)
{
	kalloc_t *a = arg;
	for (int i = 0; i < 50; i++) {
		kalloc_buf_t b;
		if (kalloc_alloc(a, KALLOC_LAYOUT(64, 8), KALLOC_NOWARN, &b))
			return (void *)"a call of another thread failed";
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(64, 8));
	}
	/* and this thread's errmsg was never set */
	return kalloc_errmsg()[0] ? (void *)"errmsg leaked across threads" : NULL;
}

START_TEST(fail_nth_is_per_thread)
{
	kalloc_t *a = libc();
	kalloc_fail_nth(1);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, allocate_many, a), 0);
	void *why;
	pthread_join(t, &why);
	ck_assert_msg(!why, "%s", (const char *)why);
	/* still armed here */
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(64, 8), KALLOC_NOWARN, &b),
			 KALLOC_ENOMEM);
}
END_TEST

/* ---- errmsg -------------------------------------------------------------- */

static void *fail_once(void *arg)
{
	kalloc_buf_t b;
	int r = kalloc_alloc(arg, KALLOC_LAYOUT(8, 48), KALLOC_NOWARN, &b);
	return r == KALLOC_EINVAL && strstr(kalloc_errmsg(), "48") ? NULL :
		(void *)"the other thread's call did not fail as expected";
}

START_TEST(errmsg_one_line_per_thread)
{
	kalloc_t *a = libc();
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(8, 3), KALLOC_NOWARN, &b),
			 KALLOC_EINVAL);
	char first[512];
	snprintf(first, sizeof(first), "%s", kalloc_errmsg());
	ck_assert_msg(strstr(first, "3") && strstr(first, "valid"),
		      "errmsg: %s", first);
	ck_assert_ptr_null(strchr(first, '\n'));
	/* another thread's failures leave this thread's message alone */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, fail_once, a), 0);
	void *why;
	pthread_join(t, &why);
	ck_assert_msg(!why, "%s", (const char *)why);
	ck_assert_str_eq(kalloc_errmsg(), first);
	/* the next failure replaces it */
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(SIZE_MAX, 8), KALLOC_NOWARN,
				      &b), KALLOC_EOVERFLOW);
	ck_assert_str_ne(kalloc_errmsg(), first);
	ck_assert_ptr_nonnull(strstr(kalloc_errmsg(), "overflows"));
}
END_TEST

/* ---- the failure warning (G12) ------------------------------------------ */

START_TEST(failure_prints_one_line)
{
	kalloc_t *a = libc();
	struct capture c;
	char err[4096];
	kalloc_buf_t b;
	struct {
		kalloc_layout_t l;
		kalloc_flags_t f;
		int err;
	} cases[] = {
		{ KALLOC_LAYOUT(24, 3), 0, KALLOC_EINVAL },
		{ KALLOC_LAYOUT(24, (size_t)1 << 31), 0, KALLOC_EALIGN },
		{ KALLOC_LAYOUT(SIZE_MAX, 16), 0, KALLOC_EOVERFLOW },
		{ KALLOC_LAYOUT(24, 16), KALLOC_NOWAIT, KALLOC_ENOTSUP },
		{ KALLOC_LAYOUT(24, 16), 0, KALLOC_ENOMEM }, /* injected */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].err == KALLOC_ENOMEM)
			kalloc_fail_nth(1);
		capture_start(&c);
		int r = kalloc_alloc(a, cases[i].l, cases[i].f, &b);
		capture_stop(&c, err, sizeof(err));
		ck_assert_int_eq(r, cases[i].err);
		ck_assert_msg(count_lines(err) == 1, "case %zu: %s", i, err);
		ck_assert_msg(strncmp(err, "kalloc: libc: ", 14) == 0,
			      "case %zu: no prefix: %s", i, err);
		char size[32];
		snprintf(size, sizeof(size), "%zu bytes", cases[i].l.size);
		ck_assert_msg(strstr(err, size), "case %zu lacks the size: %s", i,
			      err);
		ck_assert_msg(strstr(err, kalloc_errmsg()),
			      "case %zu lacks the reason \"%s\": %s", i,
			      kalloc_errmsg(), err);

		/* the same with NOWARN: silent */
		if (cases[i].err == KALLOC_ENOMEM)
			kalloc_fail_nth(1);
		capture_start(&c);
		r = kalloc_alloc(a, cases[i].l, cases[i].f | KALLOC_NOWARN, &b);
		capture_stop(&c, err, sizeof(err));
		ck_assert_int_eq(r, cases[i].err);
		ck_assert_msg(err[0] == 0, "NOWARN printed: %s", err);
	}
	/* a successful call prints nothing */
	capture_start(&c);
	int r = kalloc_alloc(a, KALLOC_LAYOUT(24, 16), 0, &b);
	capture_stop(&c, err, sizeof(err));
	ck_assert_int_eq(r, KALLOC_OK);
	ck_assert_str_eq(err, "");
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(24, 16));
}
END_TEST

START_TEST(warnings_rate_limited)
{
	kalloc_t *a = libc();
	struct capture c;
	static char err[16384];
	kalloc_buf_t b;
	capture_start(&c);
	for (int i = 0; i < 50; i++)
		kalloc_alloc(a, KALLOC_LAYOUT(SIZE_MAX, 16), 0, &b);
	capture_stop(&c, err, sizeof(err));
	int lines = count_lines(err);
	ck_assert_msg(lines >= 1 && lines <= 10,
		      "50 failures in a burst printed %d lines", lines);
	/* NOWARN failures are not counted as suppressed warnings */
	for (int i = 0; i < 20; i++)
		kalloc_alloc(a, KALLOC_LAYOUT(SIZE_MAX, 16), KALLOC_NOWARN, &b);

	/* after the interval (5 s) warnings resume, saying how many were lost */
	struct timespec ts = { 5, 200 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	capture_start(&c);
	kalloc_alloc(a, KALLOC_LAYOUT(SIZE_MAX, 16), 0, &b);
	capture_stop(&c, err, sizeof(err));
	ck_assert_msg(count_lines(err) == 2, "after the interval: %s", err);
	char want[64];
	snprintf(want, sizeof(want), "%d allocation failure warnings suppressed",
		 50 - lines);
	ck_assert_msg(strstr(err, want), "want \"%s\" in: %s", want, err);
	ck_assert_ptr_nonnull(strstr(err, "kalloc: libc: allocation of"));
}
END_TEST

/* ---- the plugin's fast entries (alloc, free) ----------------------------- */

struct lean_counts {
	unsigned allocs, frees;
	size_t last_align;
};

static kalloc_t *open_lean(const char *options, struct lean_counts **counts)
{
	kalloc_t *a;
	ck_assert_msg(kalloc_open(FIXTURE("lean"), options, &a) == KALLOC_OK,
		      "fixture-lean: %s", kalloc_errmsg());
	void *dl = dlopen(FIXTURE("lean"), RTLD_NOW | RTLD_NOLOAD);
	ck_assert_ptr_nonnull(dl);
	*counts = dlsym(dl, "fixture_lean");
	ck_assert_ptr_nonnull(*counts);
	dlclose(dl);
	**counts = (struct lean_counts){ 0, 0, 0 };
	return a;
}

/* Fresh allocations without plugin flags and every plain free take the
 * fast entries; ZERO, resizes and the instrumented path take realloc. */
START_TEST(lean_entries_serve_the_plain_path)
{
	struct lean_counts *n;
	kalloc_t *a = open_lean(NULL, &n);
	kalloc_buf_t b[4];
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 8), 0, &b[0]),
			 KALLOC_OK);
	ck_assert_uint_eq(n->allocs, 1);
	ck_assert_uint_ge(b[0].len, 100);
	memset(b[0].ptr, 1, b[0].len);
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(50, 64), KALLOC_NOWARN |
				      KALLOC_HIGHMEM, &b[1]), KALLOC_OK);
	ck_assert_uint_eq(n->allocs, 2); /* the core's own flags: still fast */
	ck_assert_uint_eq(n->last_align, 64);
	ck_assert_uint_eq((uintptr_t)b[1].ptr % 64, 0);
	kalloc_buf_t z;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(50, 64), KALLOC_ZERO, &z),
			 KALLOC_OK);
	ck_assert_uint_eq(n->allocs, 2); /* a plugin flag: realloc */
	ck_assert_int_eq(kalloc_realloc(a, NULL, KALLOC_LAYOUT(10, 1),
					KALLOC_LAYOUT(99, 8), 0, &b[2]), KALLOC_OK);
	ck_assert_uint_eq(n->allocs, 3);

	/* refused before the plugin: counts unchanged */
	kalloc_buf_t bad;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(10, 3), KALLOC_NOWARN,
				      &bad), KALLOC_EINVAL);
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(10, 8192), KALLOC_NOWARN,
				      &bad), KALLOC_EALIGN);
	ck_assert_uint_eq(n->allocs, 3);
	/* size 0 is the sentinel, not a plugin call */
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(0, 8), 0, &bad), KALLOC_OK);
	ck_assert_uint_eq(n->allocs, 3);

	/* frees, of a known or an unknown layout: the fast free; a resize:
	 * realloc */
	kalloc_free(a, b[0].ptr, KALLOC_LAYOUT_UNKNOWN);
	ck_assert_uint_eq(n->frees, 1);
	ck_assert(!mapped(b[0].ptr));
	kalloc_free(a, b[1].ptr, KALLOC_LAYOUT(50, 64));
	ck_assert_uint_eq(n->frees, 2);
	ck_assert(!mapped(b[1].ptr));
	kalloc_free(a, z.ptr, KALLOC_LAYOUT(50, 64));
	ck_assert_uint_eq(n->frees, 3);
	ck_assert_int_eq(kalloc_realloc(a, b[2].ptr, KALLOC_LAYOUT(8000, 8),
					KALLOC_LAYOUT_UNKNOWN, 0, &b[2]), KALLOC_OK);
	ck_assert_uint_eq(n->allocs, 3);
	kalloc_free_at(NULL, a, b[2].ptr, KALLOC_LAYOUT_UNKNOWN);
	ck_assert_uint_eq(n->frees, 4);
	ck_assert(!mapped(b[2].ptr));

	/* ACCOUNT goes through the instrumented path, which uses realloc; and
	 * once a block was charged, every free looks it up there too */
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(10, 8), KALLOC_ACCOUNT,
				      &b[3]), KALLOC_OK);
	ck_assert_uint_eq(n->allocs, 3);
	kalloc_free(a, b[3].ptr, KALLOC_LAYOUT_UNKNOWN);
	ck_assert_uint_eq(n->frees, 4);
	ck_assert(!mapped(b[3].ptr));
	kalloc_close(a);
}
END_TEST

/* With statistics on, allocations take the instrumented path (realloc)
 * and are counted; the final free of an untracked block is the fast one. */
START_TEST(lean_entries_not_used_with_stats)
{
	struct lean_counts *n;
	kalloc_t *a = open_lean("stats=1", &n);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 8), 0, &b), KALLOC_OK);
	ck_assert_uint_eq(n->allocs, 0);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT_UNKNOWN);
	ck_assert_uint_eq(n->frees, 1);
	ck_assert(!mapped(b.ptr));
	kalloc_stats_t st;
	ck_assert_int_eq(kalloc_stats(a, &st), KALLOC_OK);
	ck_assert_uint_eq(st.allocs, 1);
	ck_assert_uint_eq(st.frees, 1);
	kalloc_close(a);
}
END_TEST

/* The fast alloc's block at a power-of-two address, as realloc's. */
START_TEST(lean_block_at_power_of_two_address)
{
	struct lean_counts *n;
	kalloc_t *a = open_lean("pow2_alloc", &n);
	expect_block_at_pow2(a, 0);
	ck_assert_uint_eq(n->allocs, 1); /* it came from the fast alloc */
}
END_TEST

/* ---- several handles ------------------------------------------------------ */

START_TEST(several_handles_at_once)
{
	kalloc_t *a, *b;
	ck_assert_int_eq(kalloc_open("libc", NULL, &a), KALLOC_OK);
	ck_assert_int_eq(kalloc_open("libc", NULL, &b), KALLOC_OK);
	ck_assert_ptr_ne(a, b);
	kalloc_t *f = open_fixture(NULL);

	/* the shared handle: one per name, stable, not closed by kalloc_close */
	kalloc_t *s = kalloc_get("libc");
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_eq(kalloc_get("libc"), s);
	ck_assert_ptr_ne(s, a);
	ck_assert_ptr_ne(s, b);
	ck_assert_ptr_eq(kalloc_get(NULL), kalloc_default());
	kalloc_close(s);
	ck_assert_ptr_eq(kalloc_get("libc"), s);

	/* blocks of each, live at once, each freed by its own handle */
	kalloc_t *hs[] = { a, b, f, s };
	void *p[4];
	for (int i = 0; i < 4; i++)
		p[i] = filled(hs[i], 3000, 64, (unsigned)i);
	ck_assert_uint_eq(check_fill(p[1], 3000, 1), 3000);
	kalloc_free(b, p[1], KALLOC_LAYOUT(3000, 64));
	kalloc_close(b); /* closing one leaves the others working */
	hs[1] = NULL;
	kalloc_info_t info;
	kalloc_info(f, &info);
	ck_assert_str_eq(info.name, "fixture");
	for (int i = 0; i < 4; i++) {
		if (!hs[i])
			continue;
		ck_assert_uint_eq(check_fill(p[i], 3000, (unsigned)i), 3000);
		kalloc_buf_t g;
		ck_assert_int_eq(kalloc_realloc(hs[i], p[i], KALLOC_LAYOUT(9000, 64),
						KALLOC_LAYOUT(3000, 64), 0, &g),
				 KALLOC_OK);
		ck_assert_uint_eq(check_fill(g.ptr, 3000, (unsigned)i), 3000);
		kalloc_free(hs[i], g.ptr, KALLOC_LAYOUT(9000, 64));
	}
	kalloc_close(a);
	kalloc_close(f);
	kalloc_close(NULL); /* a no-op */
}
END_TEST

/* The same through a moving realloc that lands at 1 MiB. */
START_TEST(realloc_result_at_power_of_two_address)
{
	kalloc_t *a = open_fixture("pow2_realloc");
	void *p = filled(a, 100, 8, 5);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_realloc(a, p, KALLOC_LAYOUT(10000, 8),
					KALLOC_LAYOUT(100, 8), 0, &b), KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, POW2_ADDR);
	ck_assert_uint_eq(check_fill(b.ptr, 100, 5), 100);
	ck_assert_uint_ge(kalloc_usable_size(a, b.ptr), 10000);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(10000, 8));
	ck_assert(!mapped(POW2_ADDR));
	kalloc_close(a);
}
END_TEST

/* And through the tracked path (ACCOUNT, stats, debug, fault injection). */
START_TEST(tracked_block_at_power_of_two_address)
{
	expect_block_at_pow2(open_fixture("pow2_alloc"), KALLOC_ACCOUNT);
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

static Suite *core_suite(void)
{
	Suite *s = suite_create("core");
	TCase *tc = new_tcase("sentinels");
	tcase_add_test(tc, sentinel_addresses);
	tcase_add_test(tc, size_zero_alloc_gives_sentinel);
	tcase_add_test(tc, size_zero_frees_and_returns_sentinel);
	tcase_add_test(tc, sentinels_accepted_everywhere);
	tcase_add_test(tc, zero_sized_old_layout_is_never_touched);
	tcase_add_test(tc, backend_block_at_power_of_two_address);
	tcase_add_test(tc, realloc_result_at_power_of_two_address);
	tcase_add_test(tc, tracked_block_at_power_of_two_address);
	suite_add_tcase(s, tc);

	tc = new_tcase("checks");
	tcase_add_test(tc, einval_alignment_not_power_of_two);
	tcase_add_test(tc, einval_unknown_flags);
	tcase_add_test(tc, ealign_above_max_align);
	tcase_add_test(tc, eoverflow_near_size_max);
	tcase_add_test(tc, layout_array_overflow);
	tcase_add_test(tc, enotsup_refused_flags);
	tcase_add_test(tc, account_and_highmem_handled_by_core);
	tcase_add_test(tc, strerror_texts);
	suite_add_tcase(s, tc);

	tc = new_tcase("fail_nth");
	tcase_add_test(tc, fail_nth_next_call);
	tcase_add_test(tc, fail_nth_counts_allocating_calls);
	tcase_add_test(tc, fail_nth_fails_a_shrinking_resize);
	tcase_add_test(tc, fail_nth_zero_cancels);
	tcase_add_test(tc, fail_nth_is_per_thread);
	suite_add_tcase(s, tc);

	tc = new_tcase("messages");
	tcase_add_test(tc, errmsg_one_line_per_thread);
	tcase_add_test(tc, failure_prints_one_line);
	tcase_add_test(tc, warnings_rate_limited);
	suite_add_tcase(s, tc);

	tc = new_tcase("direct_watch");
	tcase_add_test(tc, direct_watch_follows_the_plain_word);
	suite_add_tcase(s, tc);

	tc = new_tcase("lean_entries");
	tcase_add_test(tc, lean_entries_serve_the_plain_path);
	tcase_add_test(tc, lean_entries_not_used_with_stats);
	tcase_add_test(tc, lean_block_at_power_of_two_address);
	suite_add_tcase(s, tc);

	tc = new_tcase("handles");
	tcase_add_test(tc, several_handles_at_once);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(core_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

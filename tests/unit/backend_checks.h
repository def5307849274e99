/*
 * Checks shared by the unit tests of the backends built on other allocator
 * libraries (jemalloc, tcmalloc, mimalloc).  The including file defines
 *   static kalloc_t *a;                       the handle under test
 *   static size_t checked_max_align(void);    the largest alignment to try
 * before including this, and registers the tests it wants.
 */
#ifndef KALLOC_TEST_BACKEND_CHECKS_H
#define KALLOC_TEST_BACKEND_CHECKS_H

static void fill(void *p, int c, size_t n)
{
	memset(p, c, n);
}

/* First index in [from, to) where p differs from c, or `to`. */
static size_t first_not(const void *p, int c, size_t from, size_t to)
{
	const unsigned char *b = p;
	for (size_t i = from; i < to; i++)
		if (b[i] != (unsigned char)c)
			return i;
	return to;
}

/* Leaves freed, non-zero blocks of the layout for a moved block to land on. */
static void dirty(kalloc_layout_t l)
{
	enum { N = 64 };
	kalloc_buf_t b[N];
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(kalloc_alloc(a, l, 0, &b[i]), KALLOC_OK);
		fill(b[i].ptr, 0xcd, b[i].len);
	}
	for (int i = 0; i < N; i++)
		kalloc_free(a, b[i].ptr, l);
}

static void check_zero_realloc(size_t from, size_t align, size_t to,
			       int known)
{
	kalloc_layout_t l = KALLOC_LAYOUT(from, align);
	kalloc_buf_t b, r;
	dirty(KALLOC_LAYOUT(to, align));
	ck_assert_int_eq(kalloc_alloc(a, l, 0, &b), KALLOC_OK);
	fill(b.ptr, 0xab, b.len);
	size_t old_len = known ? from : b.len;
	ck_assert_int_eq(kalloc_realloc(a, b.ptr, KALLOC_LAYOUT(to, align),
					known ? l : KALLOC_LAYOUT_UNKNOWN,
					KALLOC_ZERO, &r), KALLOC_OK);
	size_t kept = old_len < to ? old_len : to;
	ck_assert_msg(first_not(r.ptr, 0xab, 0, kept) == kept,
		      "%zu->%zu: content lost", from, to);
	size_t nz = first_not(r.ptr, 0, kept, r.len);
	ck_assert_msg(nz == r.len, "%zu->%zu (known %d): byte %zu of %zu not zero",
		      from, to, known, nz, r.len);
	kalloc_free(a, r.ptr, KALLOC_LAYOUT(to, align));
}

START_TEST(zero_on_realloc)
{
	static const size_t sizes[][2] = {
		{ 100, 5000 }, { 100, 110 }, { 5000, 100 }, { 1, 2 },
		{ 20000, 40000 }, { 40000, 20000 }, { 17, 300000 },
		{ 300000, 1000000 }, { 1000000, 17 },
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t align = 1; align <= 8192; align *= 64)
			for (int known = 0; known <= 1; known++)
				check_zero_realloc(sizes[i][0], align, sizes[i][1],
						   known);
}
END_TEST

START_TEST(zero_on_alloc)
{
	for (size_t size = 1; size < 400000; size = size * 3 + 1) {
		kalloc_buf_t b;
		ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(size, 16), 0, &b),
				 KALLOC_OK);
		fill(b.ptr, 0xee, b.len);
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(size, 16));
		ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(size, 16),
					      KALLOC_ZERO, &b), KALLOC_OK);
		ck_assert_uint_eq(first_not(b.ptr, 0, 0, b.len), b.len);
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(size, 16));
	}
}
END_TEST

START_TEST(alignments_up_to_max)
{
	static const size_t sizes[] = { 1, 8, 100, 5000, 70000 };
	for (size_t align = 1; align <= checked_max_align(); align *= 2)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			kalloc_layout_t l = KALLOC_LAYOUT(sizes[i], align);
			kalloc_buf_t b;
			ck_assert_int_eq(kalloc_alloc(a, l, 0, &b), KALLOC_OK);
			ck_assert_msg(((uintptr_t)b.ptr & (align - 1)) == 0,
				      "%p not aligned to %zu", b.ptr, align);
			ck_assert_uint_ge(b.len, sizes[i]);
			fill(b.ptr, 1, b.len);
			kalloc_free(a, b.ptr, l);
		}
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(8, (size_t)1 << 31),
				      KALLOC_NOWARN, &b), KALLOC_EALIGN);
}
END_TEST

/* realloc at 4096 and 1 MiB alignment keeps it (tc_realloc keeps only 16,
 * mi_realloc_aligned keeps an old misalignment). */
START_TEST(realloc_keeps_large_alignment)
{
	static const size_t sizes[] = { 100, 5000, 300000, 50, 9000, 4096, 1 };
	for (size_t align = 4096; align <= (1u << 20); align *= 256) {
		kalloc_layout_t l = KALLOC_LAYOUT(sizes[0], align);
		kalloc_buf_t b;
		ck_assert_int_eq(kalloc_alloc(a, l, 0, &b), KALLOC_OK);
		fill(b.ptr, 0x11, l.size);
		for (size_t i = 1; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			kalloc_layout_t n = KALLOC_LAYOUT(sizes[i], align);
			kalloc_buf_t r;
			ck_assert_int_eq(kalloc_realloc(a, b.ptr, n, l, 0, &r),
					 KALLOC_OK);
			ck_assert_msg(((uintptr_t)r.ptr & (align - 1)) == 0,
				      "%zu->%zu at %zu: %p", l.size, n.size, align,
				      r.ptr);
			size_t kept = l.size < n.size ? l.size : n.size;
			ck_assert_uint_eq(first_not(r.ptr, 0x11, 0, kept), kept);
			fill(r.ptr, 0x11, n.size);
			b = r;
			l = n;
		}
		kalloc_free(a, b.ptr, l);
	}
	/* a block made with a small alignment, reallocated to a large one */
	kalloc_buf_t b, r;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(200, 16), 0, &b), KALLOC_OK);
	fill(b.ptr, 0x22, 200);
	ck_assert_int_eq(kalloc_realloc(a, b.ptr, KALLOC_LAYOUT(200, 4096),
					KALLOC_LAYOUT_UNKNOWN, 0, &r), KALLOC_OK);
	ck_assert(((uintptr_t)r.ptr & 4095) == 0);
	ck_assert_uint_eq(first_not(r.ptr, 0x22, 0, 200), 200);
	kalloc_free(a, r.ptr, KALLOC_LAYOUT(200, 4096));
}
END_TEST

/* Finds one of the backend's own counters through kalloc_stats_foreach. */
struct found {
	const char *group, *key;
	uint64_t value;
	int seen;
};

static void find_counter(void *ctx, const char *group, const char *key,
			 uint64_t value)
{
	struct found *f = ctx;
	if (strcmp(group, f->group) == 0 && strcmp(key, f->key) == 0) {
		f->value = value;
		f->seen++;
	}
}

#endif

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

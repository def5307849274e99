/*
 * Zero sizes and null pointers: G6 (size 0 frees, NULL allocates, freeing
 * NULL or a sentinel does nothing) and G7 (a zero-size request gives a
 * non-NULL aligned sentinel that free and realloc accept).
 */
#include "conform.h"

#include <string.h>

/* Realloc to size 0 frees and yields the sentinel of the new alignment. */
START_TEST(g6_size_zero_frees)
{
	static const size_t sizes[] = { 1, 16, 100, 5000, 300000 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t a = 1; a <= align_limit(4096); a <<= 3) {
			struct blk b = blk_alloc(sizes[i], a, 0);
			blk_stamp(&b, i);
			kalloc_buf_t out = { NULL, 99 };
			int err = kalloc_realloc(conform_a, b.p, KALLOC_LAYOUT(0, a),
						 a & 8 ? KALLOC_LAYOUT_UNKNOWN :
							 blk_layout(&b),
						 0, &out);
			REQUIRE(err == KALLOC_OK,
				"realloc(size %zu -> 0) failed: %s", sizes[i],
				kalloc_errmsg());
			REQUIRE(out.ptr == kalloc_sentinel(a) && out.len == 0,
				"realloc(size %zu -> 0, align %zu) gave {%p, %zu}, "
				"not the sentinel", sizes[i], a, out.ptr, out.len);
		}
}
END_TEST

/* ptr == NULL allocates, whatever old layout comes with it. */
START_TEST(g6_null_allocates)
{
	static const kalloc_layout_t olds[] = {
		{ 12345, 64 }, { 0, 0 }, { 0, 8 }, { 1, 3 }, { SIZE_MAX, 1 },
	};
	for (size_t i = 0; i < sizeof(olds) / sizeof(olds[0]); i++) {
		kalloc_buf_t out = { NULL, 0 };
		int err = kalloc_realloc(conform_a, NULL, KALLOC_LAYOUT(200, 16),
					 olds[i], 0, &out);
		REQUIRE(err == KALLOC_OK,
			"realloc(NULL, size 200, old {%zu, %zu}) failed: %s",
			olds[i].size, olds[i].align, kalloc_errmsg());
		struct blk b = { out.ptr, out.len, 200, 16, 0 };
		REQUIRE(b.p && !kalloc_is_sentinel(b.p) && b.len >= 200 &&
				is_aligned(b.p, 16),
			"realloc(NULL, size 200) gave {%p, %zu}", b.p, b.len);
		blk_stamp(&b, i);
		blk_verify(&b, "block from realloc(NULL)");
		blk_free(&b, i & 1);
	}
}
END_TEST

/* free(NULL), free(sentinel), realloc(NULL or sentinel, 0): no-ops. */
START_TEST(g6_free_null_and_sentinel)
{
	static const kalloc_layout_t layouts[] = {
		{ 0, 0 }, { 0, 1 }, { 0, 64 }, { 100, 8 }, { 16, 16 },
	};
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		kalloc_free(conform_a, NULL, layouts[i]);
		kalloc_free(conform_a, KALLOC_ZERO_SIZE_PTR, layouts[i]);
		for (size_t a = 1; a <= align_limit((size_t)1 << 30); a <<= 1)
			kalloc_free(conform_a, kalloc_sentinel(a), layouts[i]);
	}
	for (size_t a = 1; a <= align_limit(1 << 20); a <<= 1) {
		kalloc_buf_t out = { NULL, 9 };
		int err = kalloc_realloc(conform_a, NULL, KALLOC_LAYOUT(0, a),
					 KALLOC_LAYOUT_UNKNOWN, 0, &out);
		REQUIRE(err == KALLOC_OK && out.ptr == kalloc_sentinel(a) &&
				out.len == 0,
			"realloc(NULL, size 0, align %zu) gave %s {%p, %zu}", a,
			kalloc_strerror(err), out.ptr, out.len);
		out = (kalloc_buf_t){ NULL, 9 };
		err = kalloc_realloc(conform_a, kalloc_sentinel(a),
				     KALLOC_LAYOUT(0, a), KALLOC_LAYOUT(0, a), 0,
				     &out);
		REQUIRE(err == KALLOC_OK && kalloc_is_sentinel(out.ptr) &&
				out.len == 0,
			"realloc(sentinel, size 0, align %zu) gave %s {%p, %zu}",
			a, kalloc_strerror(err), out.ptr, out.len);
	}
	REQUIRE(kalloc_usable_size(conform_a, NULL) == 0,
		"usable_size(NULL) is not 0");
	REQUIRE(kalloc_usable_size(conform_a, KALLOC_ZERO_SIZE_PTR) == 0,
		"usable_size(ZERO_SIZE_PTR) is not 0");
}
END_TEST

TCase *g6_free_null(void)
{
	TCase *tc = conform_tcase("G6");
	tcase_add_test(tc, g6_size_zero_frees);
	tcase_add_test(tc, g6_null_allocates);
	tcase_add_test(tc, g6_free_null_and_sentinel);
	return tc;
}

/* Every alignment's zero-size request: non-NULL, aligned, a sentinel. */
START_TEST(g7_zero_size_alloc)
{
	REQUIRE(kalloc_sentinel(1) == KALLOC_ZERO_SIZE_PTR,
		"kalloc_sentinel(1) is %p, not ZERO_SIZE_PTR", kalloc_sentinel(1));
	for (size_t a = 1; a <= align_limit((size_t)1 << 30); a <<= 1) {
		kalloc_flags_t fl = honors(KALLOC_ZERO) && (a & 2) ? KALLOC_ZERO : 0;
		kalloc_buf_t out = { NULL, 9 };
		int err = kalloc_alloc(conform_a, KALLOC_LAYOUT(0, a), fl, &out);
		REQUIRE(err == KALLOC_OK,
			"alloc(size 0, align %zu) failed: %s", a, kalloc_errmsg());
		REQUIRE(out.ptr && out.len == 0 && is_aligned(out.ptr, a) &&
				kalloc_is_sentinel(out.ptr),
			"alloc(size 0, align %zu) gave {%p, %zu}: not an aligned "
			"sentinel", a, out.ptr, out.len);
		REQUIRE(out.ptr == kalloc_sentinel(a),
			"alloc(size 0, align %zu) gave %p, kalloc_sentinel says %p",
			a, out.ptr, kalloc_sentinel(a));
		REQUIRE(kalloc_owns(conform_a, out.ptr) == 0,
			"the backend claims to own the sentinel %p", out.ptr);
		kalloc_free(conform_a, out.ptr, KALLOC_LAYOUT(0, a));
		kalloc_free(conform_a, out.ptr, KALLOC_LAYOUT_UNKNOWN);
	}
}
END_TEST

/* realloc from a sentinel with old layout {0, align} (or unknown)
 * allocates for real; the new block is usable and resizable. */
START_TEST(g7_realloc_from_sentinel)
{
	for (size_t a = 1; a <= align_limit(1 << 16); a <<= 1)
		for (int k = 0; k < 4; k++) {
			kalloc_buf_t s;
			int err = kalloc_alloc(conform_a, KALLOC_LAYOUT(0, a), 0, &s);
			REQUIRE(err == KALLOC_OK, "alloc(size 0) failed");
			size_t size = k < 2 ? 40 : 70000;
			kalloc_buf_t out = { NULL, 0 };
			err = kalloc_realloc(conform_a, s.ptr,
					     KALLOC_LAYOUT(size, a),
					     k & 1 ? KALLOC_LAYOUT_UNKNOWN :
						     KALLOC_LAYOUT(0, a),
					     0, &out);
			REQUIRE(err == KALLOC_OK,
				"realloc(sentinel, size %zu, align %zu) failed: %s",
				size, a, kalloc_errmsg());
			REQUIRE(out.ptr && !kalloc_is_sentinel(out.ptr) &&
					out.len >= size && is_aligned(out.ptr, a),
				"realloc(sentinel, size %zu, align %zu) gave "
				"{%p, %zu}", size, a, out.ptr, out.len);
			struct blk b = { out.ptr, out.len, size, a, 0 };
			blk_stamp(&b, a + (size_t)k);
			blk_resize(&b, size * 2, a, 0, false);
			blk_free(&b, k & 1);
		}
}
END_TEST

/*
 * A zero-sized old layout means ptr did not come from the allocator (the
 * dangling pointer of an empty vector: Rust's is the alignment itself, or
 * any address): realloc must allocate and never touch or free it.
 */
START_TEST(g7_dangling_pointer)
{
	static unsigned char not_heap[64];
	memset(not_heap, 0x77, sizeof(not_heap));
	void *dangling[] = { (void *)1, (void *)8, (void *)16, (void *)64,
			     (void *)4096, not_heap, not_heap + 3 };
	for (size_t i = 0; i < sizeof(dangling) / sizeof(dangling[0]); i++) {
		kalloc_buf_t out = { NULL, 0 };
		int err = kalloc_realloc(conform_a, dangling[i],
					 KALLOC_LAYOUT(100, 8), KALLOC_LAYOUT(0, 8),
					 0, &out);
		REQUIRE(err == KALLOC_OK && out.ptr != dangling[i] &&
				out.ptr && !kalloc_is_sentinel(out.ptr),
			"realloc(dangling %p, old {0, 8}, size 100) gave %s %p",
			dangling[i], kalloc_strerror(err), out.ptr);
		struct blk b = { out.ptr, out.len, 100, 8, 0 };
		blk_stamp(&b, i);
		blk_free(&b, false);
		kalloc_free(conform_a, dangling[i], KALLOC_LAYOUT(0, 8));
		err = kalloc_realloc(conform_a, dangling[i], KALLOC_LAYOUT(0, 8),
				     KALLOC_LAYOUT(0, 8), 0, &out);
		REQUIRE(err == KALLOC_OK && kalloc_is_sentinel(out.ptr),
			"realloc(dangling %p, old {0, 8}, size 0) gave %s %p",
			dangling[i], kalloc_strerror(err), out.ptr);
	}
	for (size_t i = 0; i < sizeof(not_heap); i++)
		REQUIRE(not_heap[i] == 0x77, "a dangling pointer's memory was "
			"written (byte %zu)", i);
}
END_TEST

TCase *g7_sentinel(void)
{
	TCase *tc = conform_tcase("G7");
	tcase_add_test(tc, g7_zero_size_alloc);
	tcase_add_test(tc, g7_realloc_from_sentinel);
	tcase_add_test(tc, g7_dangling_pointer);
	return tc;
}

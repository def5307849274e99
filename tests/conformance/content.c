/*
 * What a block holds: G3 (ZERO gives zeros up to the usable length, on
 * alloc and on the grown part after realloc) and G4 (realloc keeps
 * min(old, new) bytes, moved or not).
 */
#include "conform.h"

#include <string.h>

#define MiB ((size_t)1 << 20)

static void require_zero_declared(void)
{
	REQUIRE(honors(KALLOC_ZERO),
		"backend does not declare KALLOC_ZERO; every backend must "
		"honor it");
}

/*
 * Allocates (size, align) without ZERO and dirties it, frees it, then
 * allocates the same layout with ZERO (likely on the same memory) and
 * REQUIREs every byte up to the usable length to read 0.
 */
static void zero_after_dirty(size_t size, size_t align)
{
	struct blk d = blk_alloc(size, align, 0);
	memset(d.p, 0xFF, d.len);
	blk_free(&d, false);
	struct blk z = blk_alloc(size, align, KALLOC_ZERO);
	size_t bad = zero_find_bad(z.p, 0, z.len);
	REQUIRE(bad == SIZE_MAX,
		"alloc(size %zu, align %zu, ZERO): byte %zu of usable length "
		"%zu is 0x%02x, not 0", size, align, bad, z.len,
		bad == SIZE_MAX ? 0 : ((unsigned char *)z.p)[bad]);
	memset(z.p, 0xFF, z.len);
	blk_free(&z, true);
}

START_TEST(g3_zero_alloc_small)
{
	require_zero_declared();
	static const size_t aligns[] = { 1, 16, 64 };
	for (size_t ai = 0; ai < 3; ai++)
		for (size_t s = 1; s <= 1100; s++)
			if (aligns[ai] <= conform_info.max_align)
				zero_after_dirty(s, aligns[ai]);
}
END_TEST

START_TEST(g3_zero_alloc_boundaries)
{
	require_zero_declared();
	size_t sizes[128];
	size_t n = boundary_sizes(sizes, 128);
	for (size_t i = 0; i < n; i++)
		zero_after_dirty(sizes[i], align_limit(i & 1 ? 4096 : 8));
}
END_TEST

/* Grow and shrink between sizes on class and page boundaries, with ZERO,
 * old layout known and unknown: kept content, then zeros (blk_resize). */
START_TEST(g3_zero_realloc_tail)
{
	require_zero_declared();
	static const size_t sizes[] = {
		1, 7, 8, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 100, 127,
		128, 129, 255, 256, 257, 500, 1000, 1024, 1025, 2048, 4095,
		4096, 4097, 8192, 10000, 65536, 65537, 200000, MiB, MiB + 1,
		3 * MiB
	};
	size_t n = sizeof(sizes) / sizeof(sizes[0]);
	uint64_t rng = 0x3e70;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 1; k <= 5; k++) {
			/* the next 4 sizes up, and one random one */
			size_t j = k < 5 ? i + k : i + 1 + rng_next(&rng) % n;
			if (j >= n)
				continue;
			for (int unknown = 0; unknown < 2; unknown++) {
				size_t a = align_limit(unknown ? 16 : 64);
				struct blk b = blk_alloc(sizes[i], a, 0);
				blk_stamp(&b, i * 100 + j);
				blk_resize(&b, sizes[j], a, KALLOC_ZERO, unknown);
				blk_resize(&b, sizes[i], a, KALLOC_ZERO, !unknown);
				blk_free(&b, false);
			}
		}
}
END_TEST

/* A long chain of random grows and shrinks, all with ZERO. */
START_TEST(g3_zero_realloc_chain)
{
	require_zero_declared();
	uint64_t rng = 0x2e60;
	struct blk b = blk_alloc(1, 16, KALLOC_ZERO);
	blk_stamp(&b, 5);
	int steps = conform_slow ? 150 : 400;
	for (int i = 0; i < steps; i++)
		blk_resize(&b, rng_size(&rng, 1, MiB), 16, KALLOC_ZERO, i % 3 == 0);
	blk_free(&b, false);
}
END_TEST

/* ZERO on a realloc from the zero-size sentinel: all of it is "grown". */
START_TEST(g3_zero_from_sentinel)
{
	require_zero_declared();
	static const size_t sizes[] = { 1, 40, 1000, 70000, 1 << 20 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t a = 1; a <= align_limit(4096); a <<= 2) {
			struct blk d = blk_alloc(sizes[i], a, 0);
			memset(d.p, 0xFF, d.len);
			blk_free(&d, false);
			kalloc_buf_t out = { NULL, 0 };
			int err = kalloc_realloc(conform_a, kalloc_sentinel(a),
						 KALLOC_LAYOUT(sizes[i], a),
						 KALLOC_LAYOUT(0, a), KALLOC_ZERO,
						 &out);
			REQUIRE(err == KALLOC_OK && out.ptr && out.len >= sizes[i],
				"realloc(sentinel, size %zu, ZERO) failed: %s",
				sizes[i], kalloc_errmsg());
			size_t bad = zero_find_bad(out.ptr, 0, out.len);
			REQUIRE(bad == SIZE_MAX,
				"realloc(sentinel, size %zu, align %zu, ZERO): byte "
				"%zu of usable length %zu is not 0", sizes[i], a,
				bad, out.len);
			kalloc_free(conform_a, out.ptr, KALLOC_LAYOUT(sizes[i], a));
		}
}
END_TEST

TCase *g3_zero(void)
{
	TCase *tc = conform_tcase("G3");
	tcase_add_test(tc, g3_zero_alloc_small);
	tcase_add_test(tc, g3_zero_alloc_boundaries);
	tcase_add_test(tc, g3_zero_realloc_tail);
	tcase_add_test(tc, g3_zero_realloc_chain);
	tcase_add_test(tc, g3_zero_from_sentinel);
	return tc;
}

#define NEIGHBOURS 8

/*
 * G4: random grow/shrink chains (fixed seed), old layout known and unknown
 * in turn.  After each step a small neighbour block is allocated, so the
 * block cannot always grow in place; neighbours are checked when dropped,
 * which also catches a realloc writing outside its block.
 */
static void content_chain(size_t align, uint64_t seed, int steps)
{
	uint64_t rng = seed;
	struct blk nb[NEIGHBOURS] = { { 0 } };
	struct blk b = blk_alloc(rng_size(&rng, 1, 4096), align, 0);
	blk_stamp(&b, seed);
	int moves = 0;
	for (int i = 0; i < steps; i++) {
		size_t size = rng_size(&rng, 1, MiB);
		moves += blk_resize(&b, size, align, 0, i & 1);
		struct blk *n = &nb[i % NEIGHBOURS];
		if (n->p) {
			blk_verify(n, "neighbour of a realloc chain");
			blk_free(n, i & 2);
		}
		*n = blk_alloc(rng_size(&rng, 1, 4096), 8, 0);
		blk_stamp(n, seed + (uint64_t)i);
	}
	blk_verify(&b, "end of the realloc chain");
	blk_free(&b, false);
	for (int i = 0; i < NEIGHBOURS; i++) {
		blk_verify(&nb[i], "neighbour at the end of a chain");
		blk_free(&nb[i], false);
	}
	(void)moves; /* both moving and in-place steps are fine */
}

START_TEST(g4_random_chains)
{
	static const size_t aligns[] = { 1, 8, 16, 64, 4096 };
	int steps = conform_slow ? 120 : 300;
	for (size_t i = 0; i < 5; i++)
		if (aligns[i] <= conform_info.max_align)
			content_chain(aligns[i], 0x4c0 + i, steps);
}
END_TEST

/* G4: every small size grown by one byte and shrunk by one byte, the
 * steps where a size class changes. */
START_TEST(g4_class_steps)
{
	struct blk b = blk_alloc(1, 8, 0);
	blk_stamp(&b, 44);
	for (size_t s = 2; s <= 1100; s++)
		blk_resize(&b, s, 8, 0, s & 1);
	for (size_t s = 1099; s >= 1; s--)
		blk_resize(&b, s, 8, 0, !(s & 1));
	blk_free(&b, false);
}
END_TEST

/* G4: a block surrounded by live blocks, grown far (it must move or be
 * extended without touching its neighbours). */
START_TEST(g4_grow_between_neighbours)
{
	static const size_t sizes[] = { 8, 64, 500, 4000, 40000, 400000 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct blk before = blk_alloc(sizes[i], 8, 0);
		struct blk b = blk_alloc(sizes[i], 8, 0);
		struct blk after = blk_alloc(sizes[i], 8, 0);
		blk_stamp(&before, 1);
		blk_stamp(&b, 2);
		blk_stamp(&after, 3);
		blk_resize(&b, sizes[i] * 5 + 3, 8, 0, false);
		blk_resize(&b, sizes[i] * 40 + 3, 8, 0, true);
		blk_verify(&before, "block before the grown one");
		blk_verify(&after, "block after the grown one");
		blk_free(&before, false);
		blk_free(&after, true);
		blk_free(&b, false);
	}
}
END_TEST

TCase *g4_content(void)
{
	TCase *tc = conform_tcase("G4");
	tcase_add_test(tc, g4_random_chains);
	tcase_add_test(tc, g4_class_steps);
	tcase_add_test(tc, g4_grow_between_neighbours);
	return tc;
}

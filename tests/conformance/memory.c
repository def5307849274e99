/*
 * Blocks as memory: G1 (valid for size and usable length), G2 (alignment),
 * G8 (grow may give more, shrink may keep; G1-G4 hold) and G9 (realloc with
 * a smaller alignment still satisfies it).
 */
#include "conform.h"

#include <string.h>

#define NSMALL 1100
#define MiB ((size_t)1 << 20)

/* G1: sizes 1..1100 all live at once, so an overlap or a short block
 * clobbers a neighbour's pattern; freed in random order, sized and not. */
START_TEST(g1_small_sizes_all_live)
{
	static struct blk b[NSMALL + 1];
	static const size_t aligns[] = { 1, 8, 16 };
	uint64_t rng = 0x6731;
	for (size_t ai = 0; ai < 3; ai++) {
		size_t align = aligns[ai];
		for (size_t s = 1; s <= NSMALL; s++) {
			b[s] = blk_alloc(s, align, 0);
			blk_stamp(&b[s], s * 131 + align);
			REQUIRE(kalloc_usable_size(conform_a, b[s].p) >= s,
				"usable_size of a block of %zu bytes is %zu", s,
				kalloc_usable_size(conform_a, b[s].p));
		}
		for (size_t s = 1; s <= NSMALL; s++)
			blk_verify(&b[s], "all 1100 small blocks live");
		for (size_t i = NSMALL; i > 1; i--) { /* Fisher-Yates */
			size_t j = 1 + rng_next(&rng) % i;
			struct blk t = b[i];
			b[i] = b[j];
			b[j] = t;
		}
		for (size_t s = 1; s <= NSMALL; s++)
			blk_free(&b[s], s & 1);
	}
}
END_TEST

/* G1: both sides of every power of two and page multiple up to 4 MiB;
 * the whole usable length is written and read back. */
START_TEST(g1_boundary_sizes)
{
	size_t sizes[128];
	size_t n = boundary_sizes(sizes, 128);
	struct blk live[4] = { { 0 } };
	for (size_t i = 0; i < n; i++) {
		struct blk *b = &live[i % 4];
		if (b->p) {
			blk_verify(b, "boundary sizes, 4 live");
			blk_free(b, i & 1);
		}
		*b = blk_alloc(sizes[i], i & 2 ? 16 : 1, 0);
		blk_stamp(b, sizes[i]);
		REQUIRE(kalloc_usable_size(conform_a, b->p) >= sizes[i],
			"usable_size of a block of %zu bytes is %zu", sizes[i],
			kalloc_usable_size(conform_a, b->p));
	}
	for (int i = 0; i < 4; i++) {
		blk_verify(&live[i], "boundary sizes, last 4");
		blk_free(&live[i], false);
	}
}
END_TEST

/* Writes and checks the first and last bytes and one byte per page. */
static void touch_sparse(struct blk *b)
{
	unsigned char *c = b->p;
	size_t step = 4096;
	for (size_t i = 0; i < b->size; i += step)
		c[i] = (unsigned char)(i / step + 1);
	c[b->size - 1] = 0x5A;
	for (size_t i = 0; i + 1 < b->size; i += step)
		REQUIRE(c[i] == (unsigned char)(i / step + 1),
			"align %zu size %zu: byte %zu did not keep its value",
			b->align, b->size, i);
	REQUIRE(c[b->size - 1] == 0x5A, "last byte did not keep its value");
}

/* G2: every power of two up to min(max_align, 64 MiB), sizes around it. */
START_TEST(g2_every_alignment)
{
	size_t top = align_limit((size_t)64 << 20);
	for (size_t a = 1; a && a <= top; a <<= 1) {
		size_t sizes[] = { 1, 7, a - 1, a, a + 1, 2 * a, 3 * a + 5, 100, 4095 };
		size_t n = sizeof(sizes) / sizeof(sizes[0]);
		if (a > 64 * 1024) /* bounded cost: the block size follows a */
			n = 4;
		struct blk held[9];
		for (size_t i = 0; i < n; i++) {
			if (sizes[i] == 0)
				sizes[i] = 1;
			held[i] = blk_alloc(sizes[i], a, 0);
			if (sizes[i] <= 64 * 1024)
				blk_stamp(&held[i], a + i);
			else
				touch_sparse(&held[i]);
		}
		for (size_t i = 0; i < n; i++) {
			if (sizes[i] <= 64 * 1024)
				blk_verify(&held[i], "aligned blocks live");
			blk_free(&held[i], i & 1);
		}
	}
}
END_TEST

/* G2: realloc keeps the alignment, and a larger alignment than the block's
 * own is honoured too (kalloc.h: "the result always satisfies it"). */
START_TEST(g2_realloc_alignment)
{
	size_t top = align_limit(MiB);
	for (size_t a = 1; a <= top; a <<= 1) {
		struct blk b = blk_alloc(10, a, 0);
		blk_stamp(&b, a);
		blk_resize(&b, 5000, a, 0, false);
		blk_resize(&b, a + 3, a, 0, true);
		blk_resize(&b, 20, a, 0, false);
		blk_free(&b, false);

		struct blk c = blk_alloc(100, 1, 0);
		blk_stamp(&c, a + 1);
		blk_resize(&c, 200, a, 0, false); /* to a larger alignment */
		blk_resize(&c, 50, a, 0, false);
		blk_free(&c, true);
	}
}
END_TEST

/* G2: beyond the declared limit the call fails; never a misaligned block. */
START_TEST(g2_beyond_limit)
{
	size_t max = conform_info.max_align;
	for (size_t a = max << 1; a > max; a <<= 1) {
		kalloc_buf_t out = { (void *)1, 1 };
		int err = kalloc_alloc(conform_a, KALLOC_LAYOUT(64, a),
				       KALLOC_NOWARN, &out);
		REQUIRE(err != KALLOC_OK,
			"alloc with align %zu above max_align %zu succeeded at %p",
			a, max, out.ptr);
		REQUIRE(out.ptr == (void *)1 && out.len == 1,
			"failed alloc (align %zu) changed its result", a);
	}
	struct blk b = blk_alloc(64, 16, 0);
	blk_stamp(&b, 99);
	for (size_t a = max << 1; a > max; a <<= 1) {
		kalloc_buf_t out = { (void *)1, 1 };
		int err = kalloc_realloc(conform_a, b.p, KALLOC_LAYOUT(128, a),
					 blk_layout(&b), KALLOC_NOWARN, &out);
		REQUIRE(err != KALLOC_OK,
			"realloc to align %zu above max_align %zu succeeded", a,
			max);
		blk_verify(&b, "after a refused over-aligned realloc");
	}
	blk_free(&b, false);
}
END_TEST

TCase *g1_usable(void)
{
	TCase *tc = conform_tcase("G1");
	tcase_add_test(tc, g1_small_sizes_all_live);
	tcase_add_test(tc, g1_boundary_sizes);
	return tc;
}

TCase *g2_alignment(void)
{
	TCase *tc = conform_tcase("G2");
	tcase_add_test(tc, g2_every_alignment);
	tcase_add_test(tc, g2_realloc_alignment);
	tcase_add_test(tc, g2_beyond_limit);
	return tc;
}

/* G8: grow step by step to 4 MiB, then shrink back, filling the whole
 * usable length each time; content, alignment and length checked. */
START_TEST(g8_grow_then_shrink)
{
	static const size_t aligns[] = { 1, 16, 64, 4096 };
	for (size_t ai = 0; ai < 4; ai++) {
		size_t a = aligns[ai];
		if (a > conform_info.max_align)
			continue;
		struct blk b = blk_alloc(1, a, 0);
		blk_stamp(&b, 800 + a);
		int step = 0;
		for (size_t s = 2; s <= 4 * MiB; s = s * 3 / 2 + 1)
			blk_resize(&b, s, a, 0, ++step % 3 == 0);
		for (size_t s = b.size; s > 1; s = s * 2 / 3)
			blk_resize(&b, s, a, 0, ++step % 3 == 0);
		blk_verify(&b, "after grow and shrink");
		blk_free(&b, false);
	}
}
END_TEST

/* G8: a shrink keeps the prefix; growing again after it keeps it too,
 * whether or not the shrink gave memory back. */
START_TEST(g8_shrink_regrow)
{
	static const size_t sizes[] = { 24, 100, 1000, 4096, 70000, 300000,
					3 * MiB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct blk b = blk_alloc(sizes[i], 8, 0);
		blk_stamp(&b, i);
		blk_resize(&b, sizes[i] / 3 + 1, 8, 0, false);
		blk_resize(&b, sizes[i] / 2 + 1, 8, 0, true);
		blk_resize(&b, sizes[i] * 2, 8, 0, false);
		blk_resize(&b, 1, 8, 0, false);
		blk_resize(&b, sizes[i], 8, 0, false);
		blk_verify(&b, "after shrink and regrow");
		blk_free(&b, false);
	}
}
END_TEST

TCase *g8_grow_shrink(void)
{
	TCase *tc = conform_tcase("G8");
	tcase_add_test(tc, g8_grow_then_shrink);
	tcase_add_test(tc, g8_shrink_regrow);
	return tc;
}

/* G9: a block made with alignment A, reallocated with a <= A (grow and
 * shrink), is aligned to a and keeps its content. */
START_TEST(g9_realloc_smaller_alignment)
{
	size_t top = align_limit(MiB);
	for (size_t A = 2; A <= top; A <<= 1) {
		size_t smaller[] = { 1, 8, 16, A / 2, A };
		for (size_t i = 0; i < 5; i++) {
			size_t a = smaller[i];
			if (a > A)
				continue;
			struct blk b = blk_alloc(100, A, 0);
			blk_stamp(&b, A * 7 + a);
			blk_resize(&b, A + 5000, a, 0, false); /* grow */
			blk_resize(&b, 60, a, 0, i & 1);        /* shrink */
			blk_resize(&b, 3, a > 1 ? a / 2 : 1, 0, false);
			blk_verify(&b, "after smaller-alignment reallocs");
			blk_free(&b, false);
		}
	}
}
END_TEST

TCase *g9_smaller_align(void)
{
	TCase *tc = conform_tcase("G9");
	tcase_add_test(tc, g9_realloc_smaller_alignment);
	return tc;
}

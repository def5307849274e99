/*
 * Blocks as memory: G1 (valid for size and usable length), G2 (alignment),
 * G8 (grow may give more, shrink may keep; G1-G4 hold) and G9 (realloc with
 * a smaller alignment still satisfies it).
 */
#include "conform.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
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
			size_t u = kalloc_usable_size(conform_a, b[s].p);
			REQUIRE(u >= s && u >= b[s].len,
				"block of %zu bytes: usable_size %zu, below the "
				"size or the length %zu alloc reported", s, u,
				b[s].len);
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

/* ---- G2 from threads at once ------------------------------------------ */

#define G2_THREADS 2

static atomic_int g2_failed;
static char g2_failure[512];
static pthread_barrier_t g2_start;

static void g2_record(const char *fmt, ...)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&g2_failed, &expected, 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g2_failure, sizeof(g2_failure), fmt, ap);
	va_end(ap);
}

/* A result checked in full: aligned, long enough, kept bytes intact. */
static bool g2_check(int err, kalloc_buf_t out, size_t size, size_t align,
		     const void *kept_from, size_t kept, uint64_t seed,
		     const char *what)
{
	if (err || !out.ptr || out.len < size || !is_aligned(out.ptr, align)) {
		g2_record("%s(size %zu, align %zu) in a thread: %s {%p, %zu}",
			  what, size, align, kalloc_strerror(err), out.ptr,
			  out.len);
		return false;
	}
	size_t bad = pat_find_bad(out.ptr, 0, kept, seed);
	if (bad != SIZE_MAX) {
		g2_record("%s(size %zu, align %zu) in a thread lost byte %zu "
			  "(from %p)", what, size, align, bad, kept_from);
		return false;
	}
	return true;
}

/*
 * One thread: for every alignment a up to align_limit(1 MiB), blocks of
 * sizes around a, each raised to 2a (if allowed) and lowered to a / 2 by
 * realloc; every result checked.  Few live blocks at the largest ones.
 */
static void *g2_thread(void *arg)
{
	uint64_t rng = 0x6200 + (uint64_t)(uintptr_t)arg;
	size_t top = align_limit(MiB);
	pthread_barrier_wait(&g2_start);
	int reps = conform_slow ? 2 : 8;
	for (int r = 0; r < reps && !atomic_load(&g2_failed); r++)
		for (size_t a = 1; a <= top && !atomic_load(&g2_failed); a <<= 1) {
			int n = a > 65536 ? 2 : 8;
			struct blk b[8];
			for (int i = 0; i < n; i++) {
				size_t size = i & 1 ? rng_size(&rng, 1, 4096) :
					      a - 1 + (size_t)(i & 2);
				if (size == 0)
					size = 1;
				kalloc_buf_t out = { NULL, 0 };
				int err = kalloc_alloc(conform_a,
						       KALLOC_LAYOUT(size, a), 0, &out);
				if (!g2_check(err, out, size, a, NULL, 0, 0, "alloc"))
					return NULL;
				b[i] = (struct blk){ out.ptr, out.len, size, a,
						     rng_next(&rng) };
				pat_fill(b[i].p, 0, size, b[i].seed);
			}
			for (int i = 0; i < n; i++) {
				/* raise, then lower the alignment */
				size_t up = a * 2 <= top ? a * 2 : a;
				size_t to[2] = { up, a > 1 ? a / 2 : 1 };
				for (int k = 0; k < 2; k++) {
					size_t size = b[i].size + (k ? 0 : 100);
					kalloc_buf_t out = { NULL, 0 };
					int err = kalloc_realloc(conform_a, b[i].p,
						KALLOC_LAYOUT(size, to[k]),
						(i + k) & 1 ? KALLOC_LAYOUT_UNKNOWN :
							      blk_layout(&b[i]),
						0, &out);
					size_t kept = b[i].size < size ?
						      b[i].size : size;
					if (!g2_check(err, out, size, to[k], b[i].p,
						      kept, b[i].seed, "realloc"))
						return NULL;
					pat_fill(out.ptr, kept, size, b[i].seed);
					b[i] = (struct blk){ out.ptr, out.len, size,
							     to[k], b[i].seed };
				}
			}
			for (int i = 0; i < n; i++) {
				size_t bad = pat_find_bad(b[i].p, 0, b[i].size,
							  b[i].seed);
				if (bad != SIZE_MAX) {
					g2_record("block of size %zu align %zu lost "
						  "byte %zu while live", b[i].size,
						  b[i].align, bad);
					return NULL;
				}
				kalloc_free(conform_a, b[i].p, i & 1 ?
					    KALLOC_LAYOUT_UNKNOWN : blk_layout(&b[i]));
			}
		}
	return NULL;
}

/* G2 from G2_THREADS threads at once: an aligned path right on one thread
 * and wrong under two shows here. */
START_TEST(g2_alignment_threads)
{
	pthread_t t[G2_THREADS];
	pthread_barrier_init(&g2_start, NULL, G2_THREADS);
	for (int i = 0; i < G2_THREADS; i++)
		REQUIRE(pthread_create(&t[i], NULL, g2_thread,
				       (void *)(uintptr_t)i) == 0,
			"pthread_create failed");
	for (int i = 0; i < G2_THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&g2_start);
	REQUIRE(!atomic_load(&g2_failed), "%s", g2_failure);
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
	tcase_add_test(tc, g2_alignment_threads);
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

/*
 * Calls that must fail, and how: G5 (the old block survives a failure),
 * G10 (sizes that overflow when rounded never wrap) and G14 (what the
 * backend does not declare is refused with a clear code).
 */
#include "conform.h"

#include <stdio.h>
#include <string.h>

#define POISON_PTR ((void *)0x5a5a5a5a)
#define POISON_LEN ((size_t)0xa5a5)

/* A result that a failing call must leave untouched. */
static kalloc_buf_t poisoned(void)
{
	return (kalloc_buf_t){ POISON_PTR, POISON_LEN };
}

static bool untouched(kalloc_buf_t b)
{
	return b.ptr == POISON_PTR && b.len == POISON_LEN;
}

/*
 * REQUIREs realloc(b -> layout, flags) to fail with an error accepted by
 * `ok_err` (or any error when ok_err is NULL), leave *out alone, and leave
 * b intact and still sized as before.  Returns the error.
 */
static int realloc_must_fail(struct blk *b, kalloc_layout_t l,
			     kalloc_flags_t flags, bool unknown,
			     bool (*ok_err)(int), const char *what)
{
	size_t usable = kalloc_usable_size(conform_a, b->p);
	kalloc_buf_t out = poisoned();
	int err = kalloc_realloc(conform_a, b->p, l,
				 unknown ? KALLOC_LAYOUT_UNKNOWN : blk_layout(b),
				 flags | KALLOC_NOWARN, &out);
	REQUIRE(err != KALLOC_OK,
		"%s: realloc(size %zu -> size %zu, align %zu, flags 0x%x) "
		"succeeded", what, b->size, l.size, l.align, (unsigned)flags);
	REQUIRE(!ok_err || ok_err(err),
		"%s: realloc(size %zu -> size %zu, align %zu, flags 0x%x) "
		"failed with '%s', not the expected code", what, b->size,
		l.size, l.align, (unsigned)flags, kalloc_strerror(err));
	REQUIRE(untouched(out), "%s: failed realloc wrote its result", what);
	REQUIRE(kalloc_errmsg()[0], "%s: failed realloc left no errmsg", what);
	blk_verify(b, what);
	REQUIRE(kalloc_usable_size(conform_a, b->p) == usable,
		"%s: the block's usable size changed from %zu to %zu", what,
		usable, kalloc_usable_size(conform_a, b->p));
	return err;
}

/* As realloc_must_fail, for an allocation. */
static int alloc_must_fail(kalloc_layout_t l, kalloc_flags_t flags,
			   bool (*ok_err)(int), const char *what)
{
	kalloc_buf_t out = poisoned();
	int err = kalloc_alloc(conform_a, l, flags | KALLOC_NOWARN, &out);
	REQUIRE(err != KALLOC_OK,
		"%s: alloc(size %zu, align %zu, flags 0x%x) succeeded at %p",
		what, l.size, l.align, (unsigned)flags, out.ptr);
	REQUIRE(!ok_err || ok_err(err),
		"%s: alloc(size %zu, align %zu, flags 0x%x) failed with '%s', "
		"not the expected code", what, l.size, l.align,
		(unsigned)flags, kalloc_strerror(err));
	REQUIRE(untouched(out), "%s: failed alloc wrote its result", what);
	REQUIRE(kalloc_errmsg()[0], "%s: failed alloc left no errmsg", what);
	return err;
}

static bool is_size_error(int e)
{
	return e == KALLOC_ENOMEM || e == KALLOC_EOVERFLOW;
}

static bool is_enomem(int e)
{
	return e == KALLOC_ENOMEM;
}

static bool is_enotsup(int e)
{
	return e == KALLOC_ENOTSUP;
}

static bool is_ealign(int e)
{
	return e == KALLOC_EALIGN;
}

static bool is_einval(int e)
{
	return e == KALLOC_EINVAL;
}

static bool is_unknown_flag_error(int e)
{
	return e == KALLOC_EINVAL || e == KALLOC_ENOTSUP;
}

/* ---- G5 ---------------------------------------------------------------- */

/* Sizes no backend can serve: SIZE_MAX, SIZE_MAX/2, max_size + 1. */
static size_t impossible_sizes(size_t out[4])
{
	size_t n = 0;
	out[n++] = SIZE_MAX;
	out[n++] = SIZE_MAX / 2;
	out[n++] = SIZE_MAX - 4095;
	if (conform_info.max_size < SIZE_MAX)
		out[n++] = conform_info.max_size + 1;
	return n;
}

START_TEST(g5_impossible_sizes)
{
	size_t sizes[4];
	size_t n = impossible_sizes(sizes);
	static const size_t starts[] = { 1, 100, 1000, 70000 };
	for (size_t i = 0; i < n; i++) {
		alloc_must_fail(KALLOC_LAYOUT(sizes[i], 8), 0, is_size_error,
				"impossible alloc");
		if (honors(KALLOC_ZERO))
			alloc_must_fail(KALLOC_LAYOUT(sizes[i], 64), KALLOC_ZERO,
					is_size_error, "impossible ZERO alloc");
		for (size_t s = 0; s < 4; s++) {
			struct blk b = blk_alloc(starts[s], 16, 0);
			blk_stamp(&b, i * 4 + s);
			realloc_must_fail(&b, KALLOC_LAYOUT(sizes[i], 16), 0,
					  s & 1, is_size_error,
					  "impossible realloc");
			/* still the caller's, still usable */
			blk_resize(&b, starts[s] * 3, 16, 0, false);
			blk_free(&b, s & 2);
		}
	}
}
END_TEST

START_TEST(g5_injected_failure)
{
	/* alloc: the injected call fails, the next one does not */
	kalloc_fail_nth(1);
	alloc_must_fail(KALLOC_LAYOUT(64, 8), 0, is_enomem, "kalloc_fail_nth(1)");
	struct blk a = blk_alloc(64, 8, 0);
	blk_free(&a, false);

	/* growing realloc: old block intact, usable, then freed */
	static const size_t sizes[] = { 1, 24, 200, 4000, 100000, 1 << 21 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (int unknown = 0; unknown < 2; unknown++) {
			struct blk b = blk_alloc(sizes[i], 16, 0);
			blk_stamp(&b, i + 70);
			kalloc_fail_nth(1);
			realloc_must_fail(&b, KALLOC_LAYOUT(sizes[i] * 2 + 1, 16),
					  0, unknown, is_enomem,
					  "injected failure of a growing realloc");
			if (honors(KALLOC_ZERO)) {
				kalloc_fail_nth(1);
				realloc_must_fail(&b,
					KALLOC_LAYOUT(sizes[i] * 4 + 9, 16),
					KALLOC_ZERO, !unknown, is_enomem,
					"injected failure of a ZERO realloc");
			}
			if (unknown) /* use it once more before freeing */
				blk_resize(&b, sizes[i] + 7, 16, 0, false);
			blk_free(&b, unknown);
		}
	kalloc_fail_nth(0);
}
END_TEST

/*
 * A grow the backend accepts but the system cannot serve: a size within
 * max_size far beyond memory (min(max_size, 64 TiB)).  If it fails, the
 * block is intact and still the backend's (owns, when it can tell); if it
 * succeeds (address space reserved lazily), it is freed untouched.
 */
START_TEST(g5_grow_beyond_memory)
{
	size_t huge = (size_t)1 << 46;
	if (conform_info.max_size < huge)
		huge = conform_info.max_size;
	static const size_t starts[] = { 24, 3000, 100000 };
	for (size_t s = 0; s < 3; s++)
		for (int unknown = 0; unknown < 2; unknown++) {
			struct blk b = blk_alloc(starts[s], 16, 0);
			blk_stamp(&b, s * 2 + (size_t)unknown);
			int owned = kalloc_owns(conform_a, b.p);
			kalloc_buf_t out = poisoned();
			int err = kalloc_realloc(conform_a, b.p,
						 KALLOC_LAYOUT(huge, 16),
						 unknown ? KALLOC_LAYOUT_UNKNOWN :
							   blk_layout(&b),
						 KALLOC_NOWARN, &out);
			if (err == KALLOC_OK) {
				kalloc_free(conform_a, out.ptr,
					    KALLOC_LAYOUT(huge, 16));
				continue;
			}
			REQUIRE(untouched(out), "failed grow to %zu bytes wrote "
				"its result", huge);
			REQUIRE(owned != 1 || kalloc_owns(conform_a, b.p) == 1,
				"a failed grow (%zu -> %zu bytes, old layout %s) "
				"freed the block the caller still holds",
				starts[s], huge, unknown ? "unknown" : "known");
			blk_verify(&b, "after a failed grow beyond memory");
			blk_resize(&b, starts[s] * 2, 16, 0, false);
			blk_free(&b, false);
		}
}
END_TEST

TCase *g5_failure(void)
{
	TCase *tc = conform_tcase("G5");
	tcase_add_test(tc, g5_impossible_sizes);
	tcase_add_test(tc, g5_grow_beyond_memory);
	tcase_add_test(tc, g5_injected_failure);
	return tc;
}

/* ---- G10 --------------------------------------------------------------- */

START_TEST(g10_layout_array)
{
	static const struct {
		size_t n, size;
	} over[] = {
		{ SIZE_MAX, 2 },
		{ 2, SIZE_MAX },
		{ SIZE_MAX, SIZE_MAX },
		{ (size_t)1 << 32, (size_t)1 << 32 },
		{ SIZE_MAX / 2 + 1, 2 },
		{ SIZE_MAX / 3 + 1, 3 },
		{ SIZE_MAX / 24 + 1, 24 },
	};
	for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
		kalloc_layout_t l = KALLOC_LAYOUT(123, 456);
		int err = kalloc_layout_array(over[i].n, over[i].size, 8, &l);
		REQUIRE(err == KALLOC_EOVERFLOW,
			"kalloc_layout_array(%zu, %zu) gave '%s', not overflow",
			over[i].n, over[i].size, kalloc_strerror(err));
		REQUIRE(l.size == 123 && l.align == 456,
			"failed kalloc_layout_array wrote its result");
	}
	static const struct {
		size_t n, size, align, bytes;
	} fit[] = {
		{ 0, SIZE_MAX, 1, 0 },        { SIZE_MAX, 0, 8, 0 },
		{ SIZE_MAX, 1, 1, SIZE_MAX }, { 1000, 24, 8, 24000 },
		{ SIZE_MAX / 3, 3, 16, SIZE_MAX / 3 * 3 },
	};
	for (size_t i = 0; i < sizeof(fit) / sizeof(fit[0]); i++) {
		kalloc_layout_t l;
		int err = kalloc_layout_array(fit[i].n, fit[i].size,
					      fit[i].align, &l);
		REQUIRE(err == KALLOC_OK && l.size == fit[i].bytes &&
				l.align == fit[i].align,
			"kalloc_layout_array(%zu, %zu, %zu) gave '%s', size %zu",
			fit[i].n, fit[i].size, fit[i].align,
			kalloc_strerror(err), l.size);
	}
	kalloc_layout_t l;
	REQUIRE(kalloc_layout_array(4, 4, 24, &l) == KALLOC_EINVAL,
		"kalloc_layout_array accepted alignment 24");

	/* the largest array layout that fits still cannot be allocated */
	REQUIRE(kalloc_layout_array(SIZE_MAX / 8, 8, 8, &l) == KALLOC_OK,
		"kalloc_layout_array(SIZE_MAX / 8, 8) failed");
	alloc_must_fail(l, 0, is_size_error, "alloc of an array near SIZE_MAX");
}
END_TEST

/* Sizes whose rounding up to the alignment would wrap. */
START_TEST(g10_rounding_overflow)
{
	struct blk b = blk_alloc(300, 16, 0);
	blk_stamp(&b, 10);
	for (size_t a = 1; a && a <= conform_info.max_align; a <<= 1) {
		size_t sizes[] = { SIZE_MAX, SIZE_MAX - a + 1, SIZE_MAX - a / 2,
				   SIZE_MAX - 2 * a + 2 };
		for (size_t i = 0; i < 4; i++) {
			alloc_must_fail(KALLOC_LAYOUT(sizes[i], a), 0,
					is_size_error, "size near SIZE_MAX");
			if (a <= 16)
				realloc_must_fail(&b, KALLOC_LAYOUT(sizes[i], a),
						  0, i & 1, is_size_error,
						  "realloc to a size near SIZE_MAX");
		}
	}
	blk_free(&b, false);
}
END_TEST

TCase *g10_overflow(void)
{
	TCase *tc = conform_tcase("G10");
	tcase_add_test(tc, g10_layout_array);
	tcase_add_test(tc, g10_rounding_overflow);
	return tc;
}

/* ---- G14 --------------------------------------------------------------- */

static const kalloc_flags_t every_flag[] = {
	KALLOC_ZERO,   KALLOC_NOWARN,  KALLOC_NOWAIT,
	KALLOC_ATOMIC, KALLOC_ACCOUNT, KALLOC_HIGHMEM,
};

/* Errors a declared flag may still give: NOWAIT/ATOMIC may not be served
 * right now, ACCOUNT may hit a limit.  Anything else is a refusal. */
static bool declared_flag_may_fail(kalloc_flags_t f, int err)
{
	if (err == KALLOC_EAGAIN && (f & (KALLOC_NOWAIT | KALLOC_ATOMIC)))
		return true;
	return err == KALLOC_ELIMIT && (f & KALLOC_ACCOUNT);
}

START_TEST(g14_undeclared_flags_refused)
{
	char names[96];
	for (size_t i = 0; i < sizeof(every_flag) / sizeof(every_flag[0]); i++) {
		kalloc_flags_t f = every_flag[i];
		flag_names(f, names, sizeof(names));
		if (honors(f)) {
			kalloc_buf_t out;
			int err = kalloc_alloc(conform_a, KALLOC_LAYOUT(64, 8),
					       f | KALLOC_NOWARN, &out);
			REQUIRE(err == KALLOC_OK || declared_flag_may_fail(f, err),
				"declared flag %s refused: %s: %s", names,
				kalloc_strerror(err), kalloc_errmsg());
			if (err == KALLOC_OK)
				kalloc_free(conform_a, out.ptr, KALLOC_LAYOUT(64, 8));
			continue;
		}
		char what[160];
		snprintf(what, sizeof(what), "undeclared flag %s", names);
		alloc_must_fail(KALLOC_LAYOUT(64, 8), f, is_enotsup, what);
		alloc_must_fail(KALLOC_LAYOUT(5000, 64), f | KALLOC_ZERO,
				is_enotsup, what);
		struct blk b = blk_alloc(100, 16, 0);
		blk_stamp(&b, i);
		realloc_must_fail(&b, KALLOC_LAYOUT(10000, 16), f, false,
				  is_enotsup, what);
		realloc_must_fail(&b, KALLOC_LAYOUT(10, 16), f, true,
				  is_enotsup, what);
		blk_free(&b, false);
	}
	/* bits that name no flag at all */
	for (unsigned bit = __builtin_popcount(KALLOC_FLAGS_ALL); bit < 32; bit++) {
		kalloc_flags_t f = (kalloc_flags_t)1 << bit;
		snprintf(names, sizeof(names), "unknown flag bit %u", bit);
		alloc_must_fail(KALLOC_LAYOUT(64, 8), f, is_unknown_flag_error,
				names);
	}
}
END_TEST

START_TEST(g14_declared_limits)
{
	size_t max = conform_info.max_align;
	REQUIRE(max && !(max & (max - 1)), "max_align %zu is not a power of two",
		max);
	struct blk b = blk_alloc(100, 16, 0);
	blk_stamp(&b, 14);
	if (max <= SIZE_MAX / 2) {
		alloc_must_fail(KALLOC_LAYOUT(64, max * 2), 0, is_ealign,
				"alignment above max_align");
		realloc_must_fail(&b, KALLOC_LAYOUT(200, max * 2), 0, false,
				  is_ealign, "realloc to an alignment above max_align");
	}
	static const size_t bad_aligns[] = { 0, 3, 5, 6, 12, 24, 48, 100, 1000,
					     4097, 3 << 20, SIZE_MAX };
	for (size_t i = 0; i < sizeof(bad_aligns) / sizeof(bad_aligns[0]); i++) {
		char what[64];
		snprintf(what, sizeof(what), "alignment %zu", bad_aligns[i]);
		alloc_must_fail(KALLOC_LAYOUT(64, bad_aligns[i]), 0, is_einval,
				what);
		realloc_must_fail(&b, KALLOC_LAYOUT(300, bad_aligns[i]), 0,
				  i & 1, is_einval, what);
	}
	if (conform_info.max_size < SIZE_MAX) {
		alloc_must_fail(KALLOC_LAYOUT(conform_info.max_size + 1, 1), 0,
				is_size_error, "size above max_size");
		realloc_must_fail(&b, KALLOC_LAYOUT(conform_info.max_size + 1, 1),
				  0, false, is_size_error, "size above max_size");
	}
	blk_verify(&b, "after refused calls");
	blk_free(&b, false);

	/* the declared maximum itself is accepted (or fails for lack of
	 * memory, never for the alignment); under valgrind, its own limit */
	max = align_limit(max);
	kalloc_buf_t out;
	int err = kalloc_alloc(conform_a, KALLOC_LAYOUT(1, max), KALLOC_NOWARN,
			       &out);
	REQUIRE(err == KALLOC_OK || err == KALLOC_ENOMEM,
		"alloc at the declared max_align %zu failed: %s: %s", max,
		kalloc_strerror(err), kalloc_errmsg());
	if (err == KALLOC_OK) {
		REQUIRE(is_aligned(out.ptr, max), "alloc at max_align %zu gave %p",
			max, out.ptr);
		kalloc_free(conform_a, out.ptr, KALLOC_LAYOUT(1, max));
	}
}
END_TEST

TCase *g14_refusal(void)
{
	TCase *tc = conform_tcase("G14");
	tcase_add_test(tc, g14_undeclared_flags_refused);
	tcase_add_test(tc, g14_declared_limits);
	return tc;
}

/*
 * <kalloc/vec.h>: the typed growable vector (the kernel's KVec).  Every
 * operation's effect on (ptr, len, cap), content across many reallocations,
 * the empty vector's sentinel, failures that leave the vector unchanged,
 * overflow, and over-aligned element types.
 */
#include <kalloc/vec.h>

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE(v) FIXTURE_DIR "/fixture-" v ".so"

KVEC_DEFINE(intvec, int)
KVEC_DEFINE(bytevec, unsigned char)

struct line {
	_Alignas(64) uint64_t tag;
	char pad[40];
};
KVEC_DEFINE(linevec, struct line)

static kalloc_t *alloc(void)
{
	kalloc_t *a = kalloc_get("libc");
	ck_assert_msg(a, "libc: %s", kalloc_errmsg());
	return a;
}

/* The vector's fields are exactly these. */
#define ASSERT_VEC(v, p, l, c)                                                 \
	do {                                                                   \
		ck_assert_ptr_eq((v).ptr, (p));                                \
		ck_assert_uint_eq((v).len, (l));                               \
		ck_assert_uint_eq((v).cap, (c));                               \
	} while (0)

START_TEST(new_is_empty_sentinel)
{
	kalloc_t *a = alloc();
	struct intvec v = intvec_new(a);
	ck_assert(kalloc_is_sentinel(v.ptr));
	ck_assert_ptr_eq(v.ptr, kalloc_sentinel(_Alignof(int)));
	ck_assert_uint_eq(v.len, 0);
	ck_assert_uint_eq(v.cap, 0);
	ck_assert_ptr_eq(v.alloc, a);
	struct linevec l = linevec_new(a);
	ck_assert_ptr_eq(l.ptr, (void *)64); /* aligned like its elements */

	/* new allocates nothing: an armed failure is still pending after it */
	kalloc_fail_nth(1);
	v = intvec_new(a);
	ck_assert_int_eq(intvec_reserve(&v, 0, 0), KALLOC_OK);
	ck_assert(kalloc_is_sentinel(v.ptr));
	ck_assert_int_eq(intvec_push(&v, 1, KALLOC_NOWARN), KALLOC_ENOMEM);
	kalloc_fail_nth(0);

	/* free of an empty vector is a no-op; popping gives nothing */
	intvec_free(&v);
	ck_assert(kalloc_is_sentinel(v.ptr));
	int x = 77;
	ck_assert_int_eq(intvec_pop(&v, &x), 0);
	ck_assert_int_eq(x, 77);
}
END_TEST

START_TEST(push_pop_many)
{
	struct intvec v = intvec_new(alloc());
	size_t last_cap = 0, growths = 0;
	const int n = 100000;
	/* plain checks in the hot loop: ck_assert is slow under valgrind */
	for (int i = 0; i < n; i++) {
		if (intvec_push(&v, i * 3 + 1, 0) != KALLOC_OK ||
		    v.len != (size_t)i + 1 || v.cap < v.len)
			ck_abort_msg("push %d: len %zu cap %zu (%s)", i, v.len,
				     v.cap, kalloc_errmsg());
		if (v.cap != last_cap) {
			/* growth at least doubles: amortised O(1) pushes */
			ck_assert_uint_ge(v.cap, 2 * last_cap);
			last_cap = v.cap;
			growths++;
		}
	}
	ck_assert_uint_le(growths, 20);
	ck_assert(!kalloc_is_sentinel(v.ptr));
	for (int i = 0; i < n; i++)
		if (v.ptr[i] != i * 3 + 1)
			ck_abort_msg("element %d is %d", i, v.ptr[i]);
	/* the capacity is really usable */
	ck_assert_uint_ge(kalloc_usable_size(v.alloc, v.ptr), v.cap * sizeof(int));

	int x;
	for (int i = n - 1; i >= n - 1000; i--) {
		ck_assert_int_eq(intvec_pop(&v, &x), 1);
		ck_assert_int_eq(x, i * 3 + 1);
	}
	ck_assert_uint_eq(v.len, (size_t)n - 1000);
	ck_assert_uint_eq(v.cap, last_cap); /* pop never shrinks */
	intvec_free(&v);
	ck_assert(kalloc_is_sentinel(v.ptr));
	ck_assert_uint_eq(v.len, 0);
	ck_assert_uint_eq(v.cap, 0);
}
END_TEST

START_TEST(reserve_and_with_capacity)
{
	kalloc_t *a = alloc();
	struct intvec v = intvec_new(a);
	ck_assert_int_eq(intvec_reserve(&v, 1000, 0), KALLOC_OK);
	ck_assert_uint_ge(v.cap, 1000);
	ck_assert_uint_eq(v.len, 0);
	ck_assert(!kalloc_is_sentinel(v.ptr));
	int *p = v.ptr;
	size_t cap = v.cap;
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(intvec_push(&v, i, 0), KALLOC_OK);
	ASSERT_VEC(v, p, 1000, cap); /* reserved room: no reallocation */
	ck_assert_int_eq(intvec_reserve(&v, cap - 1000, 0), KALLOC_OK);
	ASSERT_VEC(v, p, 1000, cap);
	ck_assert_int_eq(intvec_reserve(&v, cap - 1000 + 1, 0), KALLOC_OK);
	ck_assert_uint_ge(v.cap, cap + 1);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(v.ptr[i], i);
	intvec_free(&v);

	struct intvec w = { (int *)0x1, 5, 6, NULL };
	ck_assert_int_eq(intvec_with_capacity(&w, a, 300, 0), KALLOC_OK);
	ck_assert_uint_ge(w.cap, 300);
	ck_assert_uint_eq(w.len, 0);
	ck_assert_ptr_eq(w.alloc, a);
	ck_assert(!kalloc_is_sentinel(w.ptr));
	memset(w.ptr, 0xab, w.cap * sizeof(int)); /* all of it writable */
	intvec_free(&w);
	ck_assert_int_eq(intvec_with_capacity(&w, a, 0, 0), KALLOC_OK);
	ck_assert(kalloc_is_sentinel(w.ptr));
	ck_assert_uint_eq(w.cap, 0);

	/* ZERO reaches the allocator */
	struct bytevec b;
	ck_assert_int_eq(bytevec_with_capacity(&b, a, 5000, KALLOC_ZERO), KALLOC_OK);
	for (size_t i = 0; i < b.cap; i++)
		ck_assert_uint_eq(b.ptr[i], 0);
	bytevec_free(&b);
}
END_TEST

START_TEST(clear_and_truncate)
{
	struct intvec v = intvec_new(alloc());
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(intvec_push(&v, i, 0), KALLOC_OK);
	int *p = v.ptr;
	size_t cap = v.cap;
	intvec_truncate(&v, 60); /* longer than len: no-op */
	ASSERT_VEC(v, p, 50, cap);
	intvec_truncate(&v, 50);
	ASSERT_VEC(v, p, 50, cap);
	intvec_truncate(&v, 20);
	ASSERT_VEC(v, p, 20, cap);
	int x;
	ck_assert_int_eq(intvec_pop(&v, &x), 1);
	ck_assert_int_eq(x, 19);
	intvec_clear(&v);
	ASSERT_VEC(v, p, 0, cap); /* keeps the capacity */
	ck_assert_int_eq(intvec_pop(&v, &x), 0);
	ck_assert_int_eq(intvec_push(&v, 5, 0), KALLOC_OK);
	ASSERT_VEC(v, p, 1, cap);
	ck_assert_int_eq(v.ptr[0], 5);
	intvec_free(&v);
}
END_TEST

START_TEST(raw_parts_round_trip)
{
	kalloc_t *a = alloc();
	struct intvec v = intvec_new(a);
	for (int i = 0; i < 37; i++)
		ck_assert_int_eq(intvec_push(&v, -i, 0), KALLOC_OK);
	int *p0 = v.ptr;
	size_t cap0 = v.cap;
	size_t len, cap;
	int *p = intvec_into_raw_parts(&v, &len, &cap);
	ck_assert_ptr_eq(p, p0);
	ck_assert_uint_eq(len, 37);
	ck_assert_uint_eq(cap, cap0);
	/* v is empty again, and still usable */
	ck_assert(kalloc_is_sentinel(v.ptr));
	ck_assert_uint_eq(v.len, 0);
	ck_assert_uint_eq(v.cap, 0);
	ck_assert_ptr_eq(v.alloc, a);
	intvec_free(&v);

	/* the caller owns the block now; rebuild a vector from it */
	struct intvec w = intvec_from_raw_parts(a, p, len, cap);
	ASSERT_VEC(w, p0, 37, cap0);
	ck_assert_ptr_eq(w.alloc, a);
	for (int i = 37; i < 500; i++)
		ck_assert_int_eq(intvec_push(&w, -i, 0), KALLOC_OK);
	for (int i = 0; i < 500; i++)
		ck_assert_int_eq(w.ptr[i], -i);
	intvec_free(&w);

	/* raw parts of an empty vector are the sentinel */
	struct intvec e = intvec_new(a);
	p = intvec_into_raw_parts(&e, &len, &cap);
	ck_assert(kalloc_is_sentinel(p));
	ck_assert_uint_eq(len, 0);
	ck_assert_uint_eq(cap, 0);
}
END_TEST

START_TEST(failure_leaves_vector_unchanged)
{
	kalloc_t *a = alloc();
	struct intvec v = intvec_new(a);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(intvec_push(&v, i + 100, 0), KALLOC_OK);
	while (v.len < v.cap) /* full: the next push must grow */
		ck_assert_int_eq(intvec_push(&v, (int)v.len + 100, 0), KALLOC_OK);
	struct intvec before = v;

	kalloc_fail_nth(1);
	ck_assert_int_eq(intvec_push(&v, 9, KALLOC_NOWARN), KALLOC_ENOMEM);
	ASSERT_VEC(v, before.ptr, before.len, before.cap);
	kalloc_fail_nth(1);
	ck_assert_int_eq(intvec_reserve(&v, 1000, KALLOC_NOWARN), KALLOC_ENOMEM);
	ASSERT_VEC(v, before.ptr, before.len, before.cap);
	for (size_t i = 0; i < v.len; i++)
		ck_assert_int_eq(v.ptr[i], (int)i + 100);

	/* with_capacity's failure leaves its target alone */
	struct intvec w = { (int *)0x1, 5, 6, NULL };
	kalloc_fail_nth(1);
	ck_assert_int_eq(intvec_with_capacity(&w, a, 10, KALLOC_NOWARN),
			 KALLOC_ENOMEM);
	ASSERT_VEC(w, (int *)0x1, 5, 6);
	ck_assert_ptr_null(w.alloc);

	/* the first allocation of an empty vector */
	struct intvec e = intvec_new(a);
	kalloc_fail_nth(1);
	ck_assert_int_eq(intvec_push(&e, 1, KALLOC_NOWARN), KALLOC_ENOMEM);
	ck_assert(kalloc_is_sentinel(e.ptr));
	ck_assert_uint_eq(e.cap, 0);

	/* a refused flag: same */
	ck_assert_int_eq(intvec_push(&v, 9, KALLOC_NOWAIT | KALLOC_NOWARN),
			 KALLOC_ENOTSUP);
	ASSERT_VEC(v, before.ptr, before.len, before.cap);

	/* and it recovers */
	ck_assert_int_eq(intvec_push(&v, 9, 0), KALLOC_OK);
	ck_assert_int_eq(v.ptr[v.len - 1], 9);
	intvec_free(&v);
}
END_TEST

START_TEST(reserve_overflow)
{
	struct intvec v = intvec_new(alloc());
	ck_assert_int_eq(intvec_push(&v, 1, 0), KALLOC_OK);
	struct intvec before = v;
	/* len + additional overflows */
	ck_assert_int_eq(intvec_reserve(&v, SIZE_MAX, KALLOC_NOWARN),
			 KALLOC_EOVERFLOW);
	ASSERT_VEC(v, before.ptr, before.len, before.cap);
	ck_assert_ptr_nonnull(strstr(kalloc_errmsg(), "cannot grow"));
	/* the element count fits, its bytes do not */
	ck_assert_int_eq(intvec_reserve(&v, SIZE_MAX / 2, KALLOC_NOWARN),
			 KALLOC_EOVERFLOW);
	ck_assert_int_eq(intvec_reserve(&v, SIZE_MAX / sizeof(int), KALLOC_NOWARN),
			 KALLOC_EOVERFLOW);
	ASSERT_VEC(v, before.ptr, before.len, before.cap);
	ck_assert_int_eq(v.ptr[0], 1);
	/* the byte count is SIZE_MAX: it overflows once rounded */
	struct bytevec b = bytevec_new(v.alloc);
	ck_assert_int_eq(bytevec_reserve(&b, SIZE_MAX, KALLOC_NOWARN),
			 KALLOC_EOVERFLOW);
	ck_assert(kalloc_is_sentinel(b.ptr));
	/* one less fits, but is above the backend's max_size: a clean ENOMEM */
	ck_assert_int_eq(bytevec_reserve(&b, SIZE_MAX - 1, KALLOC_NOWARN),
			 KALLOC_ENOMEM);
	ck_assert(kalloc_is_sentinel(b.ptr));
	ck_assert_uint_eq(b.cap, 0);
	struct intvec w;
	ck_assert_int_eq(intvec_with_capacity(&w, v.alloc, SIZE_MAX / 3,
					      KALLOC_NOWARN), KALLOC_EOVERFLOW);
	intvec_free(&v);
}
END_TEST

START_TEST(over_aligned_elements)
{
	struct linevec v = linevec_new(alloc());
	for (uint64_t i = 0; i < 2000; i++) {
		struct line l = { .tag = i * 0x9e3779b97f4a7c15ull };
		memset(l.pad, (int)(i & 0xff), sizeof(l.pad));
		ck_assert_int_eq(linevec_push(&v, l, 0), KALLOC_OK);
		ck_assert_msg((uintptr_t)v.ptr % 64 == 0, "ptr %p after %u pushes",
			      (void *)v.ptr, (unsigned)i + 1);
	}
	for (uint64_t i = 0; i < 2000; i++) {
		ck_assert_uint_eq(v.ptr[i].tag, i * 0x9e3779b97f4a7c15ull);
		ck_assert_uint_eq((unsigned char)v.ptr[i].pad[39], i & 0xff);
	}
	linevec_truncate(&v, 3);
	ck_assert_int_eq(linevec_reserve(&v, 100000, 0), KALLOC_OK);
	ck_assert_uint_eq((uintptr_t)v.ptr % 64, 0);
	ck_assert_uint_eq(v.ptr[2].tag, 2 * 0x9e3779b97f4a7c15ull);
	linevec_free(&v);
	ck_assert_ptr_eq(v.ptr, (void *)64);
}
END_TEST

START_TEST(vector_on_another_allocator)
{
	kalloc_t *f;
	ck_assert_int_eq(kalloc_open(FIXTURE("ok"), NULL, &f), KALLOC_OK);
	struct linevec v = linevec_new(f);
	for (uint64_t i = 0; i < 300; i++)
		ck_assert_int_eq(linevec_push(&v, (struct line){ .tag = i }, 0),
				 KALLOC_OK);
	ck_assert_ptr_eq(v.alloc, f);
	/* the block is the fixture's: a page-aligned mapping of its own */
	ck_assert_uint_eq((uintptr_t)v.ptr % 4096, 0);
	ck_assert_uint_eq(kalloc_usable_size(f, v.ptr) % 4096, 0);
	for (uint64_t i = 0; i < 300; i++)
		ck_assert_uint_eq(v.ptr[i].tag, i);
	linevec_free(&v);
	kalloc_close(f);
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

static Suite *vec_suite(void)
{
	Suite *s = suite_create("vec");
	TCase *tc = new_tcase("vec");
	tcase_add_test(tc, new_is_empty_sentinel);
	tcase_add_test(tc, push_pop_many);
	tcase_add_test(tc, reserve_and_with_capacity);
	tcase_add_test(tc, clear_and_truncate);
	tcase_add_test(tc, raw_parts_round_trip);
	tcase_add_test(tc, failure_leaves_vector_unchanged);
	tcase_add_test(tc, reserve_overflow);
	tcase_add_test(tc, over_aligned_elements);
	tcase_add_test(tc, vector_on_another_allocator);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(vec_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

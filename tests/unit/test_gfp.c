/*
 * <kalloc/linux.h>, the rest of the kernel's names: gfp_t with the kernel's
 * bit values, __GFP_NOFAIL, the _node variants, the sensitive frees, the
 * string helpers, vcalloc/vmalloc_array/__vmalloc and kmalloc_size_roundup.
 * Runs on the default backend (slab in the test environment).
 */
#include <kalloc/linux.h>

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int all_bytes(const void *p, size_t n, unsigned char v)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i] != v)
			return 0;
	return 1;
}

START_TEST(gfp_masks_are_built_from_the_kernels_bits)
{
	/* Linux 6.13's values, as kernel code may test them. */
	ck_assert_uint_eq(GFP_KERNEL, 0xcc0);
	ck_assert_uint_eq(GFP_ATOMIC, 0x820);
	ck_assert_uint_eq(GFP_NOWAIT, 0x800);
	ck_assert_uint_eq(GFP_NOIO, 0xc00);
	ck_assert_uint_eq(GFP_NOFS, 0xc40);
	ck_assert_uint_eq(GFP_USER, 0x100cc0);
	ck_assert_uint_eq(GFP_KERNEL_ACCOUNT, 0x400cc0);
	ck_assert_uint_eq(GFP_HIGHUSER_MOVABLE & (__GFP_MOVABLE | __GFP_HIGHMEM),
			  __GFP_MOVABLE | __GFP_HIGHMEM);
	ck_assert(gfpflags_allow_blocking(GFP_KERNEL));
	ck_assert(gfpflags_allow_blocking(GFP_NOFS));
	ck_assert(gfpflags_allow_blocking(GFP_NOIO));
	ck_assert(!gfpflags_allow_blocking(GFP_ATOMIC));
	ck_assert(!gfpflags_allow_blocking(GFP_NOWAIT));
	ck_assert_int_eq(NUMA_NO_NODE, -1);
}
END_TEST

START_TEST(every_common_mask_allocates)
{
	const gfp_t masks[] = {
		GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_NOIO, GFP_NOFS,
		GFP_USER, GFP_HIGHUSER, GFP_HIGHUSER_MOVABLE, GFP_KERNEL_ACCOUNT,
		GFP_KERNEL | __GFP_NORETRY, GFP_KERNEL | __GFP_RETRY_MAYFAIL,
		GFP_KERNEL | __GFP_COMP, GFP_KERNEL | __GFP_NOFAIL,
		GFP_NOWAIT | __GFP_NOWARN, GFP_ATOMIC | __GFP_ZERO,
	};
	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		unsigned char *p = kmalloc(200, masks[i]);
		ck_assert_msg(p, "kmalloc(200, 0x%x) failed", masks[i]);
		if (masks[i] & __GFP_ZERO)
			ck_assert(all_bytes(p, 200, 0));
		memset(p, 0x5a, 200);
		kfree(p);
	}
}
END_TEST

/* __GFP_NOFAIL never fails: injected failures skip it, as failslab does. */
START_TEST(nofail_skips_injected_failures)
{
	ck_assert_int_eq(kalloc_fail_config("probability:100"), KALLOC_OK);
	void *plain = kmalloc(64, GFP_KERNEL | __GFP_NOWARN);
	void *nofail[32];
	for (int i = 0; i < 32; i++)
		nofail[i] = kmalloc(64 + i, GFP_KERNEL | __GFP_NOFAIL);
	ck_assert_int_eq(kalloc_fail_config(""), KALLOC_OK);
	ck_assert_msg(plain == NULL, "injection is not on: the test proves nothing");
	for (int i = 0; i < 32; i++) {
		ck_assert_msg(nofail[i], "NOFAIL allocation %d failed", i);
		kfree(nofail[i]);
	}
}
END_TEST

/* ... and accounting limits, as the kernel's memcg charges NOFAIL past them. */
START_TEST(nofail_passes_an_accounting_limit)
{
	kalloc_domain_t *d = kalloc_domain_create("tiny", 1000);
	ck_assert(d);
	kalloc_domain_t *prev = kalloc_domain_enter(d);
	void *refused = kmalloc(4000, GFP_KERNEL_ACCOUNT | __GFP_NOWARN);
	void *forced = kmalloc(4000, GFP_KERNEL_ACCOUNT | __GFP_NOFAIL);
	kalloc_domain_enter(prev);
	ck_assert_msg(refused == NULL, "the domain's limit was not applied");
	ck_assert(forced);
	ck_assert_uint_ge(kalloc_domain_usage(d), 4000);
	kfree(forced);
	ck_assert_uint_eq(kalloc_domain_usage(d), 0);
	ck_assert_int_eq(kalloc_domain_destroy(d), KALLOC_OK);
}
END_TEST

START_TEST(node_variants)
{
	unsigned char *a = kmalloc_node(100, GFP_KERNEL, NUMA_NO_NODE);
	unsigned char *b = kzalloc_node(100, GFP_KERNEL, 0);
	unsigned char *c = kcalloc_node(10, 10, GFP_KERNEL, 0);
	unsigned char *d = kmalloc_array_node(10, 10, GFP_KERNEL, 0);
	unsigned char *e = kvmalloc_node(100, GFP_KERNEL, 0);
	unsigned char *f = kvzalloc_node(100, GFP_KERNEL, 0);
	unsigned char *g = kvmalloc_array(10, 10, GFP_KERNEL);
	ck_assert(a && b && c && d && e && f && g);
	ck_assert(all_bytes(b, 100, 0) && all_bytes(c, 100, 0) &&
		  all_bytes(f, 100, 0));
	ck_assert_ptr_null(kcalloc_node(SIZE_MAX / 2, 4, GFP_KERNEL, 0));
	ck_assert_ptr_null(kmalloc_array_node(SIZE_MAX / 2, 4, GFP_KERNEL, 0));
	ck_assert_ptr_null(kvmalloc_array(SIZE_MAX / 2, 4, GFP_KERNEL));
	kfree(a), kfree(b), kfree(c), kfree(d);
	kvfree(e), kvfree(f), kvfree(g);
}
END_TEST

/* kvmalloc with flags that may not block is kmalloc; kvfree finds it. */
START_TEST(kvmalloc_nowait_takes_kmalloc)
{
	/* NOWAIT never maps memory: each size is warmed by a kmalloc first. */
	for (size_t size = 16; size <= 1024; size *= 4) {
		kfree(kmalloc(size + 100, GFP_KERNEL));
		kfree(kmalloc(size, GFP_KERNEL));
		void *p = kvmalloc(size, GFP_NOWAIT);
		void *q = kvmalloc(size, GFP_KERNEL);
		ck_assert_msg(p && q, "kvmalloc(%zu) failed", size);
		memset(p, 1, size);
		p = kvrealloc(p, size + 100, GFP_NOWAIT);
		ck_assert(p);
		kvfree(p);
		kvfree(q);
	}
}
END_TEST

START_TEST(sensitive_frees_wipe_the_whole_block)
{
	/* The wipe must happen before the free; see it through a block that
	 * the backend hands back at once (same size, same thread). */
	unsigned char *p = kmalloc(100, GFP_KERNEL);
	size_t have = ksize(p);
	memset(p, 0xa5, have);
	kfree_sensitive(p);
	unsigned char *q = kmalloc(100, GFP_KERNEL);
	if (q == p) /* the same block: nothing of the secret is left */
		ck_assert(!memchr(q + 16, 0xa5, have - 16));
	kfree(q);
	kfree_sensitive(NULL);
	kfree_sensitive(ZERO_SIZE_PTR);

	unsigned char *v = kvmalloc(1 << 20, GFP_KERNEL);
	memset(v, 0xa5, 1 << 20);
	kvfree_sensitive(v, 1 << 20);
	kvfree_sensitive(NULL, 0);
}
END_TEST

START_TEST(string_helpers)
{
	char *s = kstrndup("hello world", 5, GFP_KERNEL);
	ck_assert_str_eq(s, "hello");
	ck_assert_uint_ge(ksize(s), 6);
	kfree(s);
	s = kstrndup("hi", 100, GFP_KERNEL);
	ck_assert_str_eq(s, "hi");
	kfree(s);
	ck_assert_ptr_null(kstrndup(NULL, 4, GFP_KERNEL));

	s = kmemdup_nul("abc\0def", 7, GFP_KERNEL);
	ck_assert(!memcmp(s, "abc\0def\0", 8));
	kfree(s);

	const char *c = kstrdup_const("constant", GFP_KERNEL);
	ck_assert_str_eq(c, "constant");
	kfree_const(c);
	kfree_const(NULL);

	int src[256];
	for (int i = 0; i < 256; i++)
		src[i] = i * 7;
	int *d = kvmemdup(src, sizeof(src), GFP_KERNEL);
	ck_assert(!memcmp(d, src, sizeof(src)));
	kvfree(d);
}
END_TEST

START_TEST(vmalloc_family)
{
	unsigned char *a = vcalloc(1000, 10);
	ck_assert(a && all_bytes(a, 10000, 0));
	ck_assert_uint_eq((uintptr_t)a % PAGE_SIZE, 0);
	unsigned char *b = vmalloc_array(1000, 10);
	unsigned char *c = __vmalloc(10000, GFP_KERNEL | __GFP_ZERO);
	ck_assert(b && c && all_bytes(c, 10000, 0));
	ck_assert_ptr_null(vcalloc(SIZE_MAX / 2, 4));
	ck_assert_ptr_null(vmalloc_array(SIZE_MAX / 2, 4));
	ck_assert_ptr_null(__vmalloc(0, GFP_KERNEL));
	vfree(a), vfree(b), vfree(c);
}
END_TEST

START_TEST(size_roundup_is_what_kmalloc_gives)
{
	ck_assert_uint_eq(kmalloc_size_roundup(0), 0);
	for (size_t size = 1; size < 100000; size = size * 3 / 2 + 1) {
		size_t r = kmalloc_size_roundup(size);
		ck_assert_uint_ge(r, size);
		void *p = kmalloc(size, GFP_KERNEL);
		ck_assert_uint_eq(ksize(p), r);
		kfree(p);
		/* a request of the rounded size fits in the same bucket */
		ck_assert_uint_eq(kmalloc_size_roundup(r), r);
	}
	ck_assert_uint_eq(kmalloc_size_roundup(SIZE_MAX), SIZE_MAX);
}
END_TEST

static Suite *gfp_suite(void)
{
	Suite *s = suite_create("gfp");
	TCase *tc = tcase_create("gfp");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, gfp_masks_are_built_from_the_kernels_bits);
	tcase_add_test(tc, every_common_mask_allocates);
	tcase_add_test(tc, nofail_skips_injected_failures);
	tcase_add_test(tc, nofail_passes_an_accounting_limit);
	suite_add_tcase(s, tc);
	tc = tcase_create("names");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, node_variants);
	tcase_add_test(tc, kvmalloc_nowait_takes_kmalloc);
	tcase_add_test(tc, sensitive_frees_wipe_the_whole_block);
	tcase_add_test(tc, string_helpers);
	tcase_add_test(tc, vmalloc_family);
	tcase_add_test(tc, size_roundup_is_what_kmalloc_gives);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gfp_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

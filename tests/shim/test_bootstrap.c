/*
 * The shim's start-up, run with KALLOC_BACKEND=<path of kalloc-shimboot.so>:
 * that backend's init allocated from five threads, past the bootstrap
 * arena's size, and called dlopen, all while the shim was opening it.  Here,
 * with the shim up, those blocks must be intact, report their usable size,
 * move to the backend on realloc with their content, and free silently.
 */
#include <kalloc.h>

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct shimboot_block {
	unsigned char *p;
	size_t size;
	unsigned char seed;
};

static struct shimboot_block *blocks;
static int count;

static void load_fixture(void)
{
	const char *path = getenv("KALLOC_BACKEND");
	ck_assert_ptr_nonnull(path);
	free(malloc(1)); /* the shim is up, the fixture loaded */
	void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	ck_assert_msg(h, "fixture %s not loaded: %s", path, dlerror());
	blocks = dlsym(h, "shimboot_blocks");
	int *n = dlsym(h, "shimboot_count");
	int *dl_ok = dlsym(h, "shimboot_dlopen_ok");
	ck_assert_ptr_nonnull(blocks);
	ck_assert_ptr_nonnull(n);
	ck_assert_ptr_nonnull(dl_ok);
	count = *n;
	ck_assert_int_eq(*dl_ok, 4); /* every init thread's dlopen worked */
}

static bool intact(const unsigned char *p, size_t n, unsigned char seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != seed)
			return false;
	return true;
}

START_TEST(backend_is_the_fixture)
{
	load_fixture();
	kalloc_info_t ki;
	kalloc_info(kalloc_default(), &ki);
	ck_assert_str_eq(ki.name, "shimboot");
	/* 4 threads x 60 blocks, calloc, realloc, posix_memalign, 3 large */
	ck_assert_int_eq(count, 4 * 60 + 3 + 3);
}
END_TEST

START_TEST(boot_blocks_are_intact_and_sized)
{
	load_fixture();
	for (int i = 0; i < count; i++) {
		struct shimboot_block *b = &blocks[i];
		ck_assert_ptr_nonnull(b->p);
		ck_assert_msg(intact(b->p, b->size, b->seed), "block %d damaged", i);
		ck_assert_uint_ge(malloc_usable_size(b->p), b->size);
		/* distinct blocks */
		for (int j = 0; j < i; j++)
			ck_assert_ptr_ne(b->p, blocks[j].p);
	}
}
END_TEST

START_TEST(boot_blocks_realloc_to_the_backend)
{
	load_fixture();
	kalloc_t *a = kalloc_default();
	for (int i = 0; i < count; i++) {
		struct shimboot_block *b = &blocks[i];
		size_t n = b->size + 1000;
		unsigned char *q = realloc(b->p, n);
		ck_assert_ptr_nonnull(q);
		ck_assert(intact(q, b->size, b->seed));
		ck_assert_uint_eq(kalloc_usable_size(a, q), malloc_usable_size(q));
		memset(q, 0, n);
		free(q);
	}
}
END_TEST

START_TEST(boot_blocks_free_silently)
{
	load_fixture();
	errno = 31;
	for (int i = 0; i < count; i++)
		free(blocks[i].p);
	ck_assert_int_eq(errno, 31);
	void *p = malloc(100);
	ck_assert_ptr_nonnull(p);
	free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shim-bootstrap");
	TCase *tc = tcase_create("bootstrap");
	tcase_add_test(tc, backend_is_the_fixture);
	tcase_add_test(tc, boot_blocks_are_intact_and_sized);
	tcase_add_test(tc, boot_blocks_realloc_to_the_backend);
	tcase_add_test(tc, boot_blocks_free_silently);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

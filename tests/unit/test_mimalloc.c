/*
 * The mimalloc backend (a reference): ZERO across realloc, alignments up to
 * the declared maximum, content and disjointness across resizes and frees
 * with and without the layout, and loading without the static-TLS tunable.
 */
#include <kalloc.h>

#include <check.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *self; /* argv[0], to run this program as a child */
static kalloc_t *a;
static size_t (*mi_usable)(const void *);

static void setup(void)
{
	int err = kalloc_open("mimalloc", NULL, &a);
	ck_assert_msg(err == KALLOC_OK, "open: %s", kalloc_errmsg());
	void *h = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_NOLOAD);
	ck_assert_msg(h, "libmimalloc.so.2 not loaded by the plugin");
	*(void **)&mi_usable = dlsym(h, "mi_usable_size");
	ck_assert_ptr_nonnull(mi_usable);
}

/* Under valgrind the backend runs on valgrind's malloc, and says so. */
static int replaced(void)
{
	kalloc_info_t info;
	kalloc_info(a, &info);
	return strstr(info.version, "replaced") != NULL;
}

static void teardown(void)
{
	kalloc_close(a);
}

/* Under valgrind its memalign serves (16 MiB at most): stop there. */
static size_t checked_max_align(void)
{
	return replaced() ? (size_t)1 << 24 : (size_t)1 << 30;
}

#include "backend_checks.h"

START_TEST(declares_zero_only)
{
	kalloc_info_t info;
	kalloc_info(a, &info);
	ck_assert_str_eq(info.name, "mimalloc");
	ck_assert_msg(strstr(info.version, "mimalloc 2."), "%s", info.version);
	ck_assert(info.flags & KALLOC_ZERO);
	ck_assert(!(info.flags & (KALLOC_NOWAIT | KALLOC_ATOMIC)));
	ck_assert_uint_eq(info.max_align, (size_t)1 << 30);
	kalloc_buf_t b = { (void *)1, 1 };
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(64, 8),
				      KALLOC_NOWAIT | KALLOC_NOWARN, &b),
			 KALLOC_ENOTSUP);
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(64, 8),
				      KALLOC_ATOMIC | KALLOC_NOWARN, &b),
			 KALLOC_ENOTSUP);
	ck_assert_ptr_eq(b.ptr, (void *)1);
}
END_TEST

/* Random allocations, resizes and frees (sized and not): content stays,
 * alignment holds, no block is handed out twice. */
START_TEST(blocks_stay_disjoint)
{
	enum { N = 400 };
	static kalloc_buf_t bufs[N];
	static kalloc_layout_t lays[N];
	unsigned seed = 777;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < N; i++) {
			if (bufs[i].ptr && (rand_r(&seed) & 1)) {
				kalloc_free(a, bufs[i].ptr, (rand_r(&seed) & 1) ?
					    lays[i] : KALLOC_LAYOUT_UNKNOWN);
				bufs[i].ptr = NULL;
			}
			if (!bufs[i].ptr) {
				lays[i] = KALLOC_LAYOUT(1 + rand_r(&seed) % 3000,
							(size_t)1 << (rand_r(&seed) % 13));
				ck_assert_int_eq(kalloc_alloc(a, lays[i], 0, &bufs[i]),
						 KALLOC_OK);
			} else {
				kalloc_layout_t l = KALLOC_LAYOUT(
					1 + rand_r(&seed) % 3000, lays[i].align);
				size_t kept = l.size < lays[i].size ? l.size
								    : lays[i].size;
				ck_assert_int_eq(kalloc_realloc(a, bufs[i].ptr, l,
								lays[i], 0, &bufs[i]),
						 KALLOC_OK);
				ck_assert_uint_eq(first_not(bufs[i].ptr, i & 0xff,
							    0, kept), kept);
				lays[i] = l;
			}
			ck_assert_msg(((uintptr_t)bufs[i].ptr & (lays[i].align - 1)) == 0, "round %d i %d {%zu, %zu} at %p", round, i, lays[i].size, lays[i].align, bufs[i].ptr);
			ck_assert_uint_eq(bufs[i].len, mi_usable(bufs[i].ptr));
			fill(bufs[i].ptr, i & 0xff, lays[i].size);
		}
		for (int i = 0; i < N; i++)
			ck_assert_uint_eq(first_not(bufs[i].ptr, i & 0xff, 0,
						    lays[i].size), lays[i].size);
	}
	for (int i = 0; i < N; i++)
		kalloc_free(a, bufs[i].ptr, lays[i]);
}
END_TEST

/* The plain path (mi_malloc of max(size, align), length from a table):
 * every small size at every alignment up to 16, aligned, with the real
 * usable length. */
START_TEST(small_layouts_aligned_with_usable_length)
{
	for (size_t size = 1; size <= 5000; size++)
		for (size_t align = 1; align <= 16; align *= 2) {
			kalloc_buf_t b;
			ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(size, align),
						      0, &b), KALLOC_OK);
			ck_assert_msg(((uintptr_t)b.ptr & (align - 1)) == 0,
				      "{%zu, %zu} at %p", size, align, b.ptr);
			ck_assert_uint_eq(b.len, mi_usable(b.ptr));
			fill(b.ptr, 0x11, b.len);
			kalloc_free(a, b.ptr, (size & 1) ? KALLOC_LAYOUT_UNKNOWN :
				    KALLOC_LAYOUT(size, align));
		}
}
END_TEST

/* mimalloc 2.0.9 misaligns some blocks whose size is a multiple of an
 * alignment of 256 to 1024 (see plugins/mimalloc/mimalloc.c). */
START_TEST(size_multiple_of_alignment)
{
	static kalloc_buf_t bufs[64];
	for (size_t align = 32; align <= 8192; align *= 2)
		for (size_t size = align; size <= 64 * align; size += align) {
			kalloc_layout_t l = KALLOC_LAYOUT(size, align);
			for (int i = 0; i < 64; i++) {
				ck_assert_int_eq(kalloc_alloc(a, l, 0, &bufs[i]),
						 KALLOC_OK);
				ck_assert_msg(((uintptr_t)bufs[i].ptr & (align - 1)) == 0,
					      "{%zu, %zu} at %p", size, align,
					      bufs[i].ptr);
			}
			for (int i = 0; i < 64; i++)
				kalloc_free(a, bufs[i].ptr, l);
		}
}
END_TEST

/* The backend's own counters reach kalloc_stats_foreach. */
START_TEST(backend_counters)
{
	if (replaced()) {
		puts("mimalloc replaced (valgrind): its counters see nothing");
		return;
	}
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(4u << 20, 16), 0, &b),
			 KALLOC_OK);
	fill(b.ptr, 1, b.len);
	struct found f = { "mimalloc", "current_commit", 0, 0 };
	ck_assert_int_gt(kalloc_stats_foreach(a, find_counter, &f), 0);
	ck_assert_int_eq(f.seen, 1);
	ck_assert_uint_ge(f.value, 4u << 20);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(4u << 20, 16));
}
END_TEST

/* ---- loading ---------------------------------------------------------- */

START_TEST(process_malloc_unaffected)
{
	void *before = malloc(1000);
	ck_assert_ptr_nonnull(before);
	void *process_malloc = dlsym(RTLD_DEFAULT, "malloc");
	kalloc_t *h;
	ck_assert_int_eq(kalloc_open("mimalloc", NULL, &h), KALLOC_OK);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(h, KALLOC_LAYOUT(1000, 16), 0, &b),
			 KALLOC_OK);
	void *after = malloc(1000);
	ck_assert_ptr_nonnull(after);
	ck_assert_ptr_eq(dlsym(RTLD_DEFAULT, "malloc"), process_malloc);
	ck_assert_ptr_null(dlsym(RTLD_DEFAULT, "mi_malloc"));
	free(before);
	free(after);
	for (int i = 0; i < 1000; i++)
		free(malloc((size_t)i * 37));
	kalloc_free(h, b.ptr, KALLOC_LAYOUT(1000, 16));
	kalloc_close(h);
}
END_TEST

/* Child mode: open mimalloc, use it, print the result. */
static int child_open(void)
{
	kalloc_t *h;
	int err = kalloc_open("mimalloc", NULL, &h);
	kalloc_buf_t b;
	if (!err)
		err = kalloc_alloc(h, KALLOC_LAYOUT(100, 64), KALLOC_ZERO, &b);
	printf("%d %s\n", err, err ? kalloc_errmsg() : "");
	return 0;
}

START_TEST(loads_without_tunable)
{
	int fd[2];
	ck_assert_int_eq(pipe(fd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd[1], 1);
		unsetenv("GLIBC_TUNABLES");
		setenv("KALLOC_TEST_CHILD", "open", 1);
		char *argv[] = { (char *)self, NULL };
		execv(self, argv);
		_exit(127);
	}
	close(fd[1]);
	char out[1024];
	ssize_t n = read(fd[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = 0;
	close(fd[0]);
	int status;
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_msg(atoi(out) == KALLOC_OK && n > 0, "child said: %s", out);
}
END_TEST

int main(int argc, char **argv)
{
	(void)argc;
	self = argv[0];
	if (getenv("KALLOC_TEST_CHILD"))
		return child_open();
	Suite *s = suite_create("mimalloc");
	TCase *tc = tcase_create("backend");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 280); /* loaded machine, valgrind */
	tcase_add_test(tc, declares_zero_only);
	tcase_add_test(tc, backend_counters);
	tcase_add_test(tc, blocks_stay_disjoint);
	tcase_add_test(tc, small_layouts_aligned_with_usable_length);
	tcase_add_test(tc, size_multiple_of_alignment);
	tcase_add_test(tc, realloc_keeps_large_alignment);
	tcase_add_test(tc, zero_on_realloc);
	tcase_add_test(tc, zero_on_alloc);
	tcase_add_test(tc, alignments_up_to_max);
	suite_add_tcase(s, tc);

	TCase *load = tcase_create("loading");
	tcase_set_timeout(load, 280);
	tcase_add_test(load, process_malloc_unaffected);
	tcase_add_test(load, loads_without_tunable);
	suite_add_tcase(s, load);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * The jemalloc backend: sized free, in-place growth, ZERO across realloc,
 * alignments up to the declared maximum, and the static-TLS message.
 *
 * jemalloc's own entry points are looked up in the copy the plugin loaded,
 * to watch where blocks go (its per-thread cache hands back the block freed
 * last of a size class).
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

#define TLS_TUNABLE "GLIBC_TUNABLES=glibc.rtld.optional_static_tls="

static kalloc_t *a;
static const char *self; /* argv[0]: /proc/self/exe is valgrind under valgrind */
static struct {
	void *(*mallocx)(size_t, int);
	void (*dallocx)(void *, int);
	size_t (*nallocx)(size_t, int);
	size_t (*sallocx)(const void *, int);
} je;

static void setup(void)
{
	int err = kalloc_open("jemalloc", NULL, &a);
	ck_assert_msg(err == KALLOC_OK, "open: %s", kalloc_errmsg());
	void *h = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_NOLOAD);
	ck_assert_msg(h, "libjemalloc.so.2 not loaded by the plugin");
	*(void **)&je.mallocx = dlsym(h, "mallocx");
	*(void **)&je.dallocx = dlsym(h, "dallocx");
	*(void **)&je.nallocx = dlsym(h, "nallocx");
	*(void **)&je.sallocx = dlsym(h, "sallocx");
	ck_assert(je.mallocx && je.dallocx && je.nallocx && je.sallocx);
}

static void teardown(void)
{
	kalloc_close(a);
}

/* jemalloc serves every alignment up to the core's 1 GiB cap. */
static size_t checked_max_align(void)
{
	return (size_t)1 << 30;
}

#include "backend_checks.h"

START_TEST(declares_zero_only)
{
	kalloc_info_t info;
	kalloc_info(a, &info);
	ck_assert_str_eq(info.name, "jemalloc");
	ck_assert_msg(strstr(info.version, "jemalloc 5."), "%s", info.version);
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
	ck_assert_ptr_eq(b.ptr, (void *)1); /* untouched on failure */
}
END_TEST

/*
 * A sized free must return the block to the bin of its own size class:
 * jemalloc's thread cache then hands exactly that block to the next
 * allocation of the class.  A wrong size would file it under another class.
 */
START_TEST(sized_free_returns_block_to_its_class)
{
	static const kalloc_layout_t layouts[] = {
		{ 1, 1 }, { 8, 16 }, { 4, 16 }, { 3, 8 }, { 9, 16 }, { 16, 2 },
		{ 24, 8 }, { 100, 16 }, { 100, 64 },
		{ 3000, 4096 }, { 5000, 8 }, { 20000, 16 }, { 20000, 8192 },
	};
	/* freed with its layout (sdallocx), then unknown (free) */
	for (size_t i = 0; i < 2 * sizeof(layouts) / sizeof(layouts[0]); i++) {
		kalloc_layout_t l = layouts[i / 2];
		kalloc_buf_t b;
		ck_assert_int_eq(kalloc_alloc(a, l, 0, &b), KALLOC_OK);
		ck_assert_uint_eq((uintptr_t)b.ptr % l.align, 0);
		ck_assert_uint_eq(b.len, je.sallocx(b.ptr, 0));
		fill(b.ptr, 0x5a, b.len);
		kalloc_free(a, b.ptr, i % 2 ? KALLOC_LAYOUT_UNKNOWN : l);
		void *again = je.mallocx(b.len, 0);
		ck_assert_msg(again == b.ptr,
			      "layout {%zu, %zu}: freed %p, next %zu-byte block %p",
			      l.size, l.align, b.ptr, b.len, again);
		je.dallocx(again, 0);
	}
}
END_TEST

/* Many sized frees and re-allocations: no block is handed out twice. */
START_TEST(sized_free_keeps_blocks_disjoint)
{
	enum { N = 400 };
	static kalloc_buf_t bufs[N];
	static kalloc_layout_t lays[N];
	unsigned seed = 12345;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < N; i++) {
			if (bufs[i].ptr && (rand_r(&seed) & 1)) {
				kalloc_free(a, bufs[i].ptr, lays[i]);
				bufs[i].ptr = NULL;
			}
			if (!bufs[i].ptr) {
				lays[i] = KALLOC_LAYOUT(1 + rand_r(&seed) % 3000,
							(size_t)1 << (rand_r(&seed) % 9));
				ck_assert_int_eq(kalloc_alloc(a, lays[i], 0, &bufs[i]),
						 KALLOC_OK);
			} else {
				/* resize, sometimes in place, keep its layout */
				kalloc_layout_t l = KALLOC_LAYOUT(
					1 + rand_r(&seed) % 3000, lays[i].align);
				ck_assert_int_eq(kalloc_realloc(a, bufs[i].ptr, l,
								lays[i], 0, &bufs[i]),
						 KALLOC_OK);
				lays[i] = l;
			}
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

/* Growing a large block whose neighbour is free keeps the pointer. */
START_TEST(grow_in_place_keeps_pointer)
{
	int kept = 0, tried = 0;
	for (size_t size = 16384; size < (8u << 20); size += size / 3) {
		kalloc_layout_t l = KALLOC_LAYOUT(size, 16);
		kalloc_buf_t b, g;
		ck_assert_int_eq(kalloc_alloc(a, l, 0, &b), KALLOC_OK);
		fill(b.ptr, 0x33, size);
		kalloc_layout_t bigger = KALLOC_LAYOUT(b.len + 1, 16);
		ck_assert_int_eq(kalloc_realloc(a, b.ptr, bigger, l, 0, &g),
				 KALLOC_OK);
		ck_assert_uint_eq(first_not(g.ptr, 0x33, 0, size), size);
		ck_assert_uint_eq(g.len, je.sallocx(g.ptr, 0));
		tried++;
		kept += g.ptr == b.ptr;
		kalloc_free(a, g.ptr, bigger);
	}
	ck_assert_msg(kept > 0, "no growth of %d stayed in place", tried);

	/* Within a size class growth always stays in place. */
	kalloc_buf_t b, g;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 8), 0, &b), KALLOC_OK);
	ck_assert_int_eq(kalloc_realloc(a, b.ptr, KALLOC_LAYOUT(110, 8),
					KALLOC_LAYOUT(100, 8), 0, &g), KALLOC_OK);
	ck_assert_ptr_eq(g.ptr, b.ptr);
	kalloc_free(a, g.ptr, KALLOC_LAYOUT(110, 8));
}
END_TEST

/*
 * ZERO on realloc: kept content, then zeros up to the usable length, even
 * the slack between the old size and the old usable size, which jemalloc
 * itself leaves alone.
 */
/* realloc to a larger alignment than the block's moves it when needed. */
START_TEST(realloc_raises_alignment)
{
	for (size_t size = 50; size < 200000; size *= 7) {
		kalloc_layout_t l = KALLOC_LAYOUT(size, 16);
		kalloc_buf_t b, r;
		ck_assert_int_eq(kalloc_alloc(a, l, 0, &b), KALLOC_OK);
		fill(b.ptr, 0x77, size);
		for (size_t align = 4096; align <= (1u << 22); align *= 32) {
			kalloc_layout_t n = KALLOC_LAYOUT(size, align);
			ck_assert_int_eq(kalloc_realloc(a, b.ptr, n, l, 0, &r),
					 KALLOC_OK);
			ck_assert(((uintptr_t)r.ptr & (align - 1)) == 0);
			ck_assert_uint_eq(first_not(r.ptr, 0x77, 0, size), size);
			b = r;
			l = n;
		}
		kalloc_free(a, b.ptr, l);
	}
}
END_TEST

/* Blocks of the process's malloc and of jemalloc live side by side. */
START_TEST(process_malloc_unaffected)
{
	void *before = malloc(1000);
	ck_assert_ptr_nonnull(before);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(1000, 16), 0, &b),
			 KALLOC_OK);
	void *after = malloc(1000);
	ck_assert_ptr_nonnull(after);
	free(before);
	free(after);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(1000, 16));
}
END_TEST

/* The backend's own counters reach kalloc_stats_foreach. */
START_TEST(backend_counters)
{
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(4u << 20, 16), 0, &b),
			 KALLOC_OK);
	fill(b.ptr, 1, b.len);
	struct found f = { "jemalloc", "allocated", 0, 0 };
	ck_assert_int_gt(kalloc_stats_foreach(a, find_counter, &f), 0);
	ck_assert_int_eq(f.seen, 1);
	ck_assert_uint_ge(f.value, 4u << 20);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(4u << 20, 16));
}
END_TEST

/* ---- without the static-TLS tunable ---------------------------------- */

/* Child mode: try to open jemalloc, print the result, exit. */
static int child_open(void)
{
	kalloc_t *h;
	int err = kalloc_open("jemalloc", NULL, &h);
	printf("%d %s\n", err, err ? kalloc_errmsg() : "");
	fflush(stdout);
	return 0;
}

/* Runs this program without GLIBC_TUNABLES; its output into buf. */
static int run_without_tunable(char *buf, size_t cap)
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
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(fd[0], buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fd[0]);
	int status;
	waitpid(pid, &status, 0);
	return status;
}

START_TEST(without_tunable_says_what_to_set)
{
	char out[2048];
	int status = run_without_tunable(out, sizeof(out));
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	int err = atoi(out);
	ck_assert_msg(err == KALLOC_ELOAD, "child said: %s", out);
	ck_assert_msg(strstr(out, "static TLS"), "child said: %s", out);
	ck_assert_msg(strstr(out, TLS_TUNABLE), "child said: %s", out);
	ck_assert_msg(strstr(out, "kalloc-jemalloc.so"), "child said: %s", out);
}
END_TEST

int main(int argc, char **argv)
{
	(void)argc;
	self = argv[0];
	if (getenv("KALLOC_TEST_CHILD"))
		return child_open();

	Suite *s = suite_create("jemalloc");
	TCase *tc = tcase_create("backend");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 280); /* loaded machine, valgrind */
	tcase_add_test(tc, declares_zero_only);
	tcase_add_test(tc, backend_counters);
	tcase_add_test(tc, sized_free_returns_block_to_its_class);
	tcase_add_test(tc, sized_free_keeps_blocks_disjoint);
	tcase_add_test(tc, grow_in_place_keeps_pointer);
	tcase_add_test(tc, zero_on_realloc);
	tcase_add_test(tc, zero_on_alloc);
	tcase_add_test(tc, alignments_up_to_max);
	tcase_add_test(tc, realloc_raises_alignment);
	tcase_add_test(tc, realloc_keeps_large_alignment);
	tcase_add_test(tc, process_malloc_unaffected);
	suite_add_tcase(s, tc);

	TCase *tls = tcase_create("static_tls");
	tcase_add_test(tls, without_tunable_says_what_to_set);
	suite_add_tcase(s, tls);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

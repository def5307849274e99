/*
 * The tcmalloc backend: sized free onto the right size class, realloc that
 * keeps large alignments, ZERO, alignments up to the declared maximum, and
 * one tcmalloc per process (the plugin adopts one already loaded).
 *
 * tcmalloc's own entry points are looked up in the copy the plugin loaded,
 * to watch where blocks go (its thread cache hands back the block freed
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

static const char *self; /* argv[0], to run this program as a child */
static kalloc_t *a;
static struct {
	void *(*malloc)(size_t);
	void (*free)(void *);
	size_t (*malloc_size)(void *);
} tc;

static void bind_tc(void *h)
{
	*(void **)&tc.malloc = dlsym(h, "tc_malloc");
	*(void **)&tc.free = dlsym(h, "tc_free");
	*(void **)&tc.malloc_size = dlsym(h, "tc_malloc_size");
}

static void setup(void)
{
	int err = kalloc_open("tcmalloc", NULL, &a);
	ck_assert_msg(err == KALLOC_OK, "open: %s", kalloc_errmsg());
	void *h = dlopen("libtcmalloc_minimal.so.4", RTLD_NOW | RTLD_NOLOAD);
	ck_assert_msg(h, "libtcmalloc_minimal.so.4 not loaded by the plugin");
	bind_tc(h);
	ck_assert(tc.malloc && tc.free && tc.malloc_size);
}

/* Under valgrind tc_* are valgrind's malloc, and the plugin says so. */
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
	ck_assert_str_eq(info.name, "tcmalloc");
	ck_assert_msg(strstr(info.version, "gperftools") &&
		      strstr(info.version, "libtcmalloc_minimal.so.4"),
		      "%s", info.version);
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

/* tc_malloc's natural alignment, which the plugin relies on: 8 up to 8
 * bytes, 16 beyond, for every small size class. */
START_TEST(natural_alignment)
{
	for (size_t size = 1; size <= 300000; size += size < 4096 ? 1 : 997) {
		size_t natural = size <= 8 ? 8 : 16;
		kalloc_buf_t b;
		ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(size, natural), 0,
					      &b), KALLOC_OK);
		ck_assert_msg(((uintptr_t)b.ptr & (natural - 1)) == 0,
			      "size %zu at %p", size, b.ptr);
		ck_assert_uint_eq(b.len, tc.malloc_size(b.ptr));
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(size, natural));
	}
}
END_TEST

/*
 * tc_free_sized files a block under the class of the size it is given,
 * without looking.  Freed under the right class, the block is the one the
 * thread cache hands out next for that class.
 */
START_TEST(sized_free_returns_block_to_its_class)
{
	if (replaced()) {
		puts("tcmalloc replaced (valgrind): no size classes to watch");
		return;
	}
	static const kalloc_layout_t layouts[] = {
		{ 1, 1 }, { 8, 16 }, { 4, 16 }, { 3, 8 }, { 9, 16 }, { 16, 2 },
		{ 24, 8 }, { 100, 16 }, { 100, 64 },
		{ 300, 256 }, { 3000, 4096 }, { 5000, 8 }, { 20000, 16 },
		{ 20000, 2048 },
	};
	/* freed with its layout (tc_free_sized), then unknown (tc_free) */
	for (size_t i = 0; i < 2 * sizeof(layouts) / sizeof(layouts[0]); i++) {
		kalloc_layout_t l = layouts[i / 2];
		kalloc_buf_t b;
		ck_assert_int_eq(kalloc_alloc(a, l, 0, &b), KALLOC_OK);
		ck_assert_uint_eq((uintptr_t)b.ptr % l.align, 0);
		ck_assert_uint_eq(b.len, tc.malloc_size(b.ptr));
		fill(b.ptr, 0x5a, b.len);
		kalloc_free(a, b.ptr, i % 2 ? KALLOC_LAYOUT_UNKNOWN : l);
		void *again = tc.malloc(b.len);
		ck_assert_msg(again == b.ptr,
			      "layout {%zu, %zu}: freed %p, next %zu-byte block %p",
			      l.size, l.align, b.ptr, b.len, again);
		tc.free(again);
	}
	/* resized in place within its class, then freed with the new size */
	kalloc_buf_t b, r;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 16), 0, &b),
			 KALLOC_OK);
	ck_assert_int_eq(kalloc_realloc(a, b.ptr, KALLOC_LAYOUT(110, 16),
					KALLOC_LAYOUT(100, 16), 0, &r), KALLOC_OK);
	ck_assert_ptr_eq(r.ptr, b.ptr);
	kalloc_free(a, r.ptr, KALLOC_LAYOUT(110, 16));
	void *again = tc.malloc(r.len);
	ck_assert_ptr_eq(again, r.ptr);
	tc.free(again);
}
END_TEST

/* Many sized frees and resizes: no block is handed out twice. */
START_TEST(sized_free_keeps_blocks_disjoint)
{
	enum { N = 400 };
	static kalloc_buf_t bufs[N];
	static kalloc_layout_t lays[N];
	unsigned seed = 54321;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < N; i++) {
			if (bufs[i].ptr && (rand_r(&seed) & 1)) {
				kalloc_free(a, bufs[i].ptr, lays[i]);
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
				ck_assert_int_eq(kalloc_realloc(a, bufs[i].ptr, l,
								lays[i], 0, &bufs[i]),
						 KALLOC_OK);
				lays[i] = l;
			}
			ck_assert(((uintptr_t)bufs[i].ptr & (lays[i].align - 1)) == 0);
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

/* The backend's own counters reach kalloc_stats_foreach. */
START_TEST(backend_counters)
{
	if (replaced()) {
		puts("tcmalloc replaced (valgrind): its counters see nothing");
		return;
	}
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(4u << 20, 16), 0, &b),
			 KALLOC_OK);
	fill(b.ptr, 1, b.len);
	struct found f = { "tcmalloc", "current_allocated_bytes", 0, 0 };
	ck_assert_int_gt(kalloc_stats_foreach(a, find_counter, &f), 0);
	ck_assert_int_eq(f.seen, 1);
	ck_assert_uint_ge(f.value, 4u << 20);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(4u << 20, 16));
}
END_TEST

/* ---- loading: the process's malloc, and one tcmalloc per process ------ */

/*
 * Loaded with RTLD_LOCAL, tcmalloc stays out of the process's way: malloc
 * is still the one it was, blocks from before and after the load free
 * fine, and
 * tcmalloc's symbols are not global.
 */
START_TEST(process_malloc_unaffected)
{
	void *before = malloc(1000);
	ck_assert_ptr_nonnull(before);
	void *process_malloc = dlsym(RTLD_DEFAULT, "malloc");
	kalloc_t *h;
	ck_assert_int_eq(kalloc_open("tcmalloc", NULL, &h), KALLOC_OK);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(h, KALLOC_LAYOUT(1000, 16), 0, &b),
			 KALLOC_OK);
	void *after = malloc(1000);
	ck_assert_ptr_nonnull(after);

	ck_assert_ptr_eq(dlsym(RTLD_DEFAULT, "malloc"), process_malloc);
	ck_assert_ptr_null(dlsym(RTLD_DEFAULT, "tc_malloc"));

	free(before);
	free(after);
	for (int i = 0; i < 1000; i++) /* glibc keeps working */
		free(malloc((size_t)i * 37));
	kalloc_free(h, b.ptr, KALLOC_LAYOUT(1000, 16));
	kalloc_close(h);
}
END_TEST

/* dlopen telling LeakSanitizer, if present, that tcmalloc's constructor
 * keeps an object for good (as the plugin does). */
static void *dlopen_tcmalloc(const char *name, int mode)
{
	void (*off)(void), (*on)(void);
	*(void **)&off = dlsym(RTLD_DEFAULT, "__lsan_disable");
	*(void **)&on = dlsym(RTLD_DEFAULT, "__lsan_enable");
	if (off && on)
		off();
	void *h = dlopen(name, mode);
	if (off && on)
		on();
	return h;
}

/* Child mode: load full tcmalloc (`how`: global, local) or none (plain),
 * then open the backend and use it. */
static int child_adopt(const char *how)
{
	if (strcmp(how, "plain") == 0) {
		kalloc_t *h;
		kalloc_buf_t b;
		int err = kalloc_open("tcmalloc", NULL, &h);
		if (!err)
			err = kalloc_alloc(h, KALLOC_LAYOUT(100, 64), 0, &b);
		printf("%d %s\n", err, err ? kalloc_errmsg() : "");
		return 0;
	}
	int mode = strcmp(how, "global") == 0 ? RTLD_GLOBAL : RTLD_LOCAL;
	void *full = dlopen_tcmalloc("libtcmalloc.so.4", RTLD_NOW | mode);
	if (!full) {
		printf("cannot load libtcmalloc.so.4: %s\n", dlerror());
		return 1;
	}
	kalloc_t *h;
	if (kalloc_open("tcmalloc", NULL, &h)) {
		printf("open failed: %s\n", kalloc_errmsg());
		return 1;
	}
	kalloc_info_t info;
	kalloc_info(h, &info);
	bind_tc(full);
	for (size_t size = 1; size < 100000; size = size * 2 + 3) {
		kalloc_buf_t b;
		if (kalloc_alloc(h, KALLOC_LAYOUT(size, 64), KALLOC_ZERO, &b))
			return 1;
		if (tc.malloc_size(b.ptr) != b.len) /* the full build's block */
			return 2;
		kalloc_free(h, b.ptr, KALLOC_LAYOUT(size, 64));
	}
	int minimal = dlopen("libtcmalloc_minimal.so.4",
			     RTLD_NOW | RTLD_NOLOAD) != NULL;
	printf("version=%s minimal_loaded=%d\n", info.version, minimal);
	return 0;
}

static int run_child(const char *mode, char *buf, size_t cap)
{
	int fd[2];
	ck_assert_int_eq(pipe(fd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd[1], 1);
		if (strcmp(mode, "plain") == 0)
			unsetenv("GLIBC_TUNABLES");
		setenv("KALLOC_TEST_CHILD", mode, 1);
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

/* A process that already has a tcmalloc: the plugin uses that one (a
 * second build would abort the process as it loads). */
START_TEST(adopts_loaded_tcmalloc)
{
	static const char *const modes[] = { "global", "local" };
	static const char *const origin[] = { "the process's own tcmalloc",
					      "libtcmalloc.so.4" };
	for (int i = 0; i < 2; i++) {
		char out[1024];
		int status = run_child(modes[i], out, sizeof(out));
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "%s: status %d: %s", modes[i], status, out);
		ck_assert_msg(strstr(out, origin[i]), "%s: %s", modes[i], out);
		ck_assert_msg(strstr(out, "minimal_loaded=0"), "%s: %s",
			      modes[i], out);
	}
}
END_TEST

/* tcmalloc's 88 bytes of initial-exec TLS fit the default surplus. */
START_TEST(loads_without_tunable)
{
	char out[1024];
	int status = run_child("plain", out, sizeof(out));
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_msg(out[0] && atoi(out) == KALLOC_OK, "child said: %s", out);
}
END_TEST

int main(int argc, char **argv)
{
	(void)argc;
	self = argv[0];
	const char *child = getenv("KALLOC_TEST_CHILD");
	if (child)
		return child_adopt(child);

	Suite *s = suite_create("tcmalloc");
	TCase *tc_backend = tcase_create("backend");
	tcase_add_checked_fixture(tc_backend, setup, teardown);
	tcase_set_timeout(tc_backend, 280); /* loaded machine, valgrind */
	tcase_add_test(tc_backend, declares_zero_only);
	tcase_add_test(tc_backend, backend_counters);
	tcase_add_test(tc_backend, natural_alignment);
	tcase_add_test(tc_backend, sized_free_returns_block_to_its_class);
	tcase_add_test(tc_backend, sized_free_keeps_blocks_disjoint);
	tcase_add_test(tc_backend, realloc_keeps_large_alignment);
	tcase_add_test(tc_backend, zero_on_realloc);
	tcase_add_test(tc_backend, zero_on_alloc);
	tcase_add_test(tc_backend, alignments_up_to_max);
	suite_add_tcase(s, tc_backend);

	TCase *load = tcase_create("loading");
	tcase_set_timeout(load, 280);
	tcase_add_test(load, process_malloc_unaffected);
	tcase_add_test(load, adopts_loaded_tcmalloc);
	tcase_add_test(load, loads_without_tunable);
	suite_add_tcase(s, load);

	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

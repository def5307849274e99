/*
 * glibc's observable malloc behaviour, checked on a program run under the
 * shim (LD_PRELOAD=libkalloc-shim.so, KALLOC_BACKEND=<backend>): one run per
 * built backend.  Every case first proves the shim and the backend are the
 * ones serving malloc, so a run that silently used glibc would fail.
 */
#include <kalloc.h>

#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The failure paths are called with impossible sizes on purpose, and the
 * foreign-pointer case reads a block after handing it to free. */
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wuse-after-free"

/* Check's ck_assert records a mark per call; in hot loops use this. */
#define REQUIRE(cond)                                                     \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                   \
			abort();                                          \
		}                                                         \
	} while (0)

static kalloc_t *backend(void)
{
	return kalloc_default();
}

static bool aligned(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Fills [p, p+n) with a pattern derived from seed, and checks it back. */
static void fill(void *p, size_t n, unsigned seed)
{
	unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		c[i] = (unsigned char)(seed + i * 7);
}

static bool holds(const void *p, size_t n, unsigned seed)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i] != (unsigned char)(seed + i * 7))
			return false;
	return true;
}

/* ---- the shim is the allocator --------------------------------------- */

START_TEST(shim_serves_malloc)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	ck_assert_ptr_nonnull(sym);
	ck_assert_int_ne(dladdr(sym, &info), 0);
	ck_assert_msg(strstr(info.dli_fname, "libkalloc-shim"),
		      "malloc comes from %s, not the shim", info.dli_fname);

	const char *want = getenv("KALLOC_BACKEND");
	ck_assert_ptr_nonnull(want);
	kalloc_info_t ki;
	kalloc_info(backend(), &ki);
	ck_assert_msg(strcmp(ki.name, want) == 0 || strstr(want, ki.name),
		      "backend is %s, KALLOC_BACKEND=%s", ki.name, want);

	/* the backend itself holds malloc's blocks */
	for (size_t n = 1; n <= (1u << 22); n *= 3) {
		void *p = malloc(n);
		ck_assert_ptr_nonnull(p);
		ck_assert_int_ne(kalloc_owns(backend(), p), 0);
		ck_assert_uint_eq(kalloc_usable_size(backend(), p),
				  malloc_usable_size(p));
		free(p);
	}
}
END_TEST

/* A C program under the shim loads no C++ runtime (new.cc binds it only
 * when it is there): its pages would be most of the program's RSS.  Only
 * for backends that are C themselves (tcmalloc's library is C++). */
START_TEST(no_cxx_runtime_in_c_programs)
{
	const char *b = getenv("KALLOC_BACKEND");
	if (!b || !(strstr(b, "slab") || strstr(b, "page") || strstr(b, "kv") ||
		    strstr(b, "libc")))
		return;
	FILE *f = fopen("/proc/self/maps", "r");
	ck_assert_ptr_nonnull(f);
	char line[512];
	while (fgets(line, sizeof(line), f))
		ck_assert_msg(!strstr(line, "libstdc++"),
			      "a C program under the shim maps %s", line);
	fclose(f);
}
END_TEST

/* ---- malloc and free -------------------------------------------------- */

START_TEST(malloc_zero_is_unique)
{
	enum { N = 200 };
	void *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = malloc(0);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert(aligned(p[i], 16));
		ck_assert_uint_ge(malloc_usable_size(p[i]), 1);
		memset(p[i], 0xa5, malloc_usable_size(p[i]));
		for (int j = 0; j < i; j++)
			REQUIRE(p[i] != p[j]);
	}
	for (int i = 0; i < N; i++)
		free(p[i]);
}
END_TEST

START_TEST(malloc_sizes_usable_aligned)
{
	size_t sizes[] = { 1, 7, 8, 15, 16, 17, 24, 31, 32, 33, 48, 64, 96, 100,
			   128, 192, 255, 256, 257, 512, 1000, 1024, 2047, 2048,
			   4095, 4096, 4097, 8192, 10000, 65536, 100000, 131072,
			   1 << 20, (1 << 20) + 1, 3 << 20, 1 << 24 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		char *p = malloc(n);
		ck_assert_ptr_nonnull(p);
		ck_assert(aligned(p, 16));
		size_t u = malloc_usable_size(p);
		ck_assert_uint_ge(u, n);
		fill(p, u, (unsigned)i); /* all of the usable size is writable */
		ck_assert(holds(p, u, (unsigned)i));
		free(p);
	}
	ck_assert_uint_eq(malloc_usable_size(NULL), 0);
}
END_TEST

START_TEST(free_preserves_errno)
{
	size_t sizes[] = { 0, 1, 100, 5000, 1 << 20, 64 << 20 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *p = malloc(sizes[i]);
		ck_assert_ptr_nonnull(p);
		errno = 4242;
		free(p);
		ck_assert_int_eq(errno, 4242);
	}
	errno = 4243;
	free(NULL);
	ck_assert_int_eq(errno, 4243);
	void *q = aligned_alloc((size_t)1 << 20, 100);
	ck_assert_ptr_nonnull(q);
	errno = 4244;
	free(q);
	ck_assert_int_eq(errno, 4244);
}
END_TEST

/* ---- calloc ----------------------------------------------------------- */

START_TEST(calloc_zeroes_even_reused_memory)
{
	size_t sizes[] = { 1, 16, 100, 4096, 50000, 1 << 20, 5 << 20 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		for (int round = 0; round < 4; round++) {
			/* dirty memory of that size, then hand it back */
			unsigned char *d = malloc(n);
			ck_assert_ptr_nonnull(d);
			memset(d, 0xff, n);
			free(d);
			unsigned char *c = calloc(n, 1);
			ck_assert_ptr_nonnull(c);
			for (size_t k = 0; k < n; k++)
				REQUIRE(c[k] == 0);
			free(c);
		}
	}
	void *z = calloc(0, 0);
	ck_assert_ptr_nonnull(z);
	void *z2 = calloc(0, 16);
	ck_assert_ptr_nonnull(z2);
	ck_assert_ptr_ne(z, z2);
	free(z);
	free(z2);
	unsigned *arr = calloc(1000, sizeof(unsigned));
	ck_assert_ptr_nonnull(arr);
	for (int k = 0; k < 1000; k++)
		REQUIRE(arr[k] == 0);
	free(arr);
}
END_TEST

/* ---- realloc ---------------------------------------------------------- */

START_TEST(realloc_edge_cases)
{
	/* realloc(NULL, n) is malloc(n) */
	char *p = realloc(NULL, 100);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_ge(malloc_usable_size(p), 100);
	/* realloc(NULL, 0) is malloc(0): a unique block */
	void *z = realloc(NULL, 0);
	ck_assert_ptr_nonnull(z);
	ck_assert_ptr_ne(z, p);
	free(z);
	/* realloc(p, 0) frees p and returns NULL, errno untouched */
	errno = 77;
	ck_assert_ptr_null(realloc(p, 0));
	ck_assert_int_eq(errno, 77);
	/* reallocarray(p, 0, n) likewise */
	p = malloc(10);
	ck_assert_ptr_null(reallocarray(p, 0, 8));
}
END_TEST

START_TEST(realloc_keeps_content)
{
	size_t steps[] = { 1, 10, 100, 17, 1000, 4000, 5000, 70000, 200000,
			   1 << 20, 3 << 20, 12345, 3, 9 << 20, 64, 0 };
	size_t have = 0;
	char *p = NULL;
	for (size_t i = 0; steps[i]; i++) {
		size_t n = steps[i];
		char *q = realloc(p, n);
		ck_assert_ptr_nonnull(q);
		ck_assert(aligned(q, 16));
		ck_assert_uint_ge(malloc_usable_size(q), n);
		size_t kept = have < n ? have : n;
		ck_assert_msg(holds(q, kept, 0x5a), "step %zu: %zu -> %zu lost content",
			      i, have, n);
		fill(q, n, 0x5a);
		p = q;
		have = n;
	}
	free(p);

	/* growing into the usable tail: the bytes written there are kept too */
	char *r = malloc(20);
	ck_assert_ptr_nonnull(r);
	size_t u = malloc_usable_size(r);
	fill(r, u, 3);
	r = realloc(r, u + 1000);
	ck_assert_ptr_nonnull(r);
	ck_assert(holds(r, u, 3));
	free(r);
}
END_TEST

START_TEST(realloc_failure_keeps_block)
{
	char *p = malloc(300);
	ck_assert_ptr_nonnull(p);
	fill(p, 300, 9);
	size_t huge[] = { SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1 };
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		errno = 0;
		ck_assert_ptr_null(realloc(p, huge[i]));
		ck_assert_int_eq(errno, ENOMEM);
		ck_assert(holds(p, 300, 9));
	}
	errno = 0;
	ck_assert_ptr_null(reallocarray(p, SIZE_MAX / 2, 3));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert(holds(p, 300, 9));
	/* a failure of the backend itself (injected): the same contract */
	kalloc_fail_nth(1);
	errno = 0;
	ck_assert_ptr_null(realloc(p, 100000));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert(holds(p, 300, 9));
	char *q = realloc(p, 100000);
	ck_assert_ptr_nonnull(q);
	ck_assert(holds(q, 300, 9));
	free(q);
}
END_TEST

/* ---- errno on every failure path --------------------------------------- */

START_TEST(failures_set_enomem)
{
#define TRY(expr)                                                    \
	do {                                                         \
		errno = 0;                                           \
		void *r_ = (expr);                                   \
		ck_assert_msg(r_ == NULL, "%s succeeded", #expr);    \
		ck_assert_msg(errno == ENOMEM, "%s: errno %d, not ENOMEM", \
			      #expr, errno);                         \
	} while (0)
	TRY(malloc(SIZE_MAX));
	TRY(malloc(SIZE_MAX - 15));
	TRY(malloc((size_t)PTRDIFF_MAX + 1));
	TRY(calloc(SIZE_MAX / 2, 3));          /* n * size overflows */
	TRY(calloc(1, SIZE_MAX));
	TRY(calloc((size_t)1 << 33, (size_t)1 << 31));
	TRY(reallocarray(NULL, SIZE_MAX / 4, 8));
	TRY(realloc(NULL, SIZE_MAX));
	TRY(memalign(64, SIZE_MAX));
	TRY(memalign((size_t)1 << 24, SIZE_MAX - 100));
	TRY(aligned_alloc(64, SIZE_MAX));
	TRY(valloc(SIZE_MAX));
	TRY(pvalloc(SIZE_MAX));
	TRY(pvalloc(SIZE_MAX - page() + 2));
	/* the backend's own failures (injected) */
	kalloc_fail_nth(1);
	TRY(malloc(100));
	kalloc_fail_nth(1);
	TRY(calloc(10, 10));
#undef TRY
	kalloc_fail_nth(1);
	errno = 0;
	ck_assert_ptr_null(memalign(64, 100));
	ck_assert_int_eq(errno, ENOMEM);
	kalloc_fail_nth(1);
	errno = 0;
	ck_assert_ptr_null(aligned_alloc(256, 100));
	ck_assert_int_eq(errno, ENOMEM);
	/* and the next call works again */
	void *ok = malloc(100);
	ck_assert_ptr_nonnull(ok);
	free(ok);
}
END_TEST

/*
 * malloc and free take the backend's direct entries while the handle is
 * plain, and the core while fault injection is armed: process-wide
 * injection fails malloc, and blocks cross from one path to the other.
 */
START_TEST(armed_injection_takes_malloc_to_the_core)
{
	enum { N = 64 };
	void *direct_made[N], *core_made[N];
	for (int i = 0; i < N; i++) {
		direct_made[i] = malloc((size_t)i * 24 + 1);
		ck_assert_ptr_nonnull(direct_made[i]);
		fill(direct_made[i], (size_t)i * 24 + 1, (unsigned)i);
	}
	/* (no check call in between: it may allocate) */
	int err = kalloc_fail_config("probability:100,times:1");
	errno = 0;
	void *q = malloc(100);
	int e = errno;
	ck_assert_int_eq(err, KALLOC_OK);
	ck_assert_ptr_null(q);
	ck_assert_int_eq(e, ENOMEM);
	/* still armed (times exhausted): the core serves, no failure */
	for (int i = 0; i < N; i++) {
		core_made[i] = malloc((size_t)i * 40 + 3);
		ck_assert_ptr_nonnull(core_made[i]);
		fill(core_made[i], (size_t)i * 40 + 3, (unsigned)i + 1);
	}
	for (int i = 0; i < N; i += 2)
		free(direct_made[i]); /* through the core */
	ck_assert_int_eq(kalloc_fail_config(""), KALLOC_OK);
	for (int i = 1; i < N; i += 2) {
		ck_assert(holds(direct_made[i], (size_t)i * 24 + 1, (unsigned)i));
		free(direct_made[i]); /* direct again */
	}
	for (int i = 0; i < N; i++) {
		ck_assert(holds(core_made[i], (size_t)i * 40 + 3, (unsigned)i + 1));
		free(core_made[i]);
	}
	void *p = malloc(100);
	ck_assert_ptr_nonnull(p);
	free(p);
}
END_TEST

/* ---- aligned allocation ------------------------------------------------ */

START_TEST(posix_memalign_einval_leaves_memptr)
{
	size_t bad[] = { 0, 1, 2, 4, 12, 24, 48, 100, 4095, SIZE_MAX,
			 ((size_t)1 << 20) + 8 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		void *p = (void *)0x1234;
		errno = 99;
		ck_assert_int_eq(posix_memalign(&p, bad[i], 64), EINVAL);
		ck_assert_ptr_eq(p, (void *)0x1234);
		ck_assert_int_eq(errno, 99); /* reports through its result only */
	}
	void *p = (void *)0x1234;
	/* a failure leaves errno ENOMEM, as glibc's */
	errno = 98;
	ck_assert_int_eq(posix_memalign(&p, 64, SIZE_MAX), ENOMEM);
	ck_assert_ptr_eq(p, (void *)0x1234);
	ck_assert_int_eq(errno, ENOMEM);
	kalloc_fail_nth(1); /* the core's path */
	errno = 98;
	ck_assert_int_eq(posix_memalign(&p, 64, 100), ENOMEM);
	ck_assert_ptr_eq(p, (void *)0x1234);
	ck_assert_int_eq(errno, ENOMEM);
	/* size 0: a unique block */
	void *a = NULL, *b = NULL;
	ck_assert_int_eq(posix_memalign(&a, 32, 0), 0);
	ck_assert_int_eq(posix_memalign(&b, 32, 0), 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_ne(a, b);
	free(a);
	free(b);
}
END_TEST

START_TEST(aligned_alloc_einval)
{
	size_t bad[] = { 0, 3, 24, 48, 1000, SIZE_MAX };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_ptr_null(aligned_alloc(bad[i], 64));
		ck_assert_int_eq(errno, EINVAL);
	}
	/* memalign: beyond SIZE_MAX/2+1 is EINVAL, other non-powers round up */
	errno = 0;
	ck_assert_ptr_null(memalign(SIZE_MAX / 2 + 2, 64));
	ck_assert_int_eq(errno, EINVAL);
	void *p = memalign(48, 10);
	ck_assert_ptr_nonnull(p);
	ck_assert(aligned(p, 64));
	free(p);
	p = memalign(0, 10);
	ck_assert_ptr_nonnull(p);
	ck_assert(aligned(p, 16));
	free(p);
}
END_TEST

static void check_aligned_block(void *p, size_t align, size_t size)
{
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(aligned(p, align), "%p not aligned to %zu", p, align);
	size_t u = malloc_usable_size(p);
	ck_assert_uint_ge(u, size);
	memset(p, 0x3c, size);
	((volatile char *)p)[u - 1] = 1;
}

START_TEST(alignments_up_to_4mib)
{
	for (size_t align = 1; align <= ((size_t)4 << 20); align *= 2) {
		size_t sizes[] = { 1, align, 3 * align + 5 };
		for (int s = 0; s < 3; s++) {
			size_t n = sizes[s];
			void *p = NULL;
			if (align >= sizeof(void *)) {
				ck_assert_int_eq(posix_memalign(&p, align, n), 0);
				check_aligned_block(p, align, n);
				free(p);
			}
			p = aligned_alloc(align, n);
			check_aligned_block(p, align, n);
			/* realloc keeps the content (not the alignment, as glibc) */
			fill(p, n, 4);
			char *q = realloc(p, n + 100);
			ck_assert_ptr_nonnull(q);
			ck_assert(holds(q, n, 4));
			free(q);
			p = memalign(align, n);
			check_aligned_block(p, align, n);
			free(p);
		}
	}
	void *v = valloc(100);
	check_aligned_block(v, page(), 100);
	free(v);
	v = pvalloc(100);
	check_aligned_block(v, page(), page()); /* rounded to whole pages */
	free(v);
	v = pvalloc(0);
	check_aligned_block(v, page(), page());
	free(v);
}
END_TEST

/* Many live blocks whose sizes are multiples of their alignment: a
 * library's shortcut for such sizes (mimalloc 2.0.9's, from 256 to 1024)
 * misaligns some of them, and only while they stay live. */
START_TEST(alignment_multiples_many_live)
{
	enum { N = 600 };
	static void *live[N];
	for (size_t align = 128; align <= 2048; align *= 2) {
		for (int i = 0; i < N; i++) {
			size_t n = align * (size_t)(1 + i % 3);
			void *p = NULL;
			if (i % 2)
				ck_assert_int_eq(posix_memalign(&p, align, n), 0);
			else
				p = aligned_alloc(align, n);
			check_aligned_block(p, align, n);
			live[i] = p;
		}
		for (int i = 0; i < N; i++)
			free(live[i]);
	}
}
END_TEST

/* Above the backend's own limit the shim maps the block itself. */
START_TEST(alignment_above_backend_limit)
{
	kalloc_info_t ki;
	kalloc_info(backend(), &ki);
	size_t align = ki.max_align * 2;
	if (align < ((size_t)1 << 21))
		align = (size_t)1 << 21;
	void *p = NULL;
	ck_assert_int_eq(posix_memalign(&p, align, 10000), 0);
	check_aligned_block(p, align, 10000);
	fill(p, 10000, 8);
	errno = 5;
	char *q = realloc(p, 20000);
	ck_assert_ptr_nonnull(q);
	ck_assert(holds(q, 10000, 8));
	free(q);
	ck_assert_int_eq(errno, 5);
	p = aligned_alloc(align, 1);
	check_aligned_block(p, align, 1);
	free(p);
}
END_TEST

/* ---- foreign pointers -------------------------------------------------- */

/* glibc's own malloc, bypassing the shim. */
static void *(*glibc_malloc(void))(size_t)
{
	void *h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	ck_assert_ptr_nonnull(h);
	void *(*fn)(size_t);
	*(void **)&fn = dlsym(h, "malloc");
	dlclose(h);
	ck_assert_ptr_nonnull(fn);
	return fn;
}

/* A backend that declares KALLOC_DETECT_FOREIGN_FREE answers 0 for glibc's
 * block and the shim leaves it alone; one that does not answers -1 ("cannot
 * tell") and the shim passes the pointer on, which only glibc survives. */
static void foreign_undetected(char *f, const kalloc_info_t *ki)
{
	ck_assert_msg(kalloc_owns(backend(), f) == -1,
		      "backend %s does not declare foreign-free detection, "
		      "yet kalloc_owns answers %d for glibc's block", ki->name,
		      kalloc_owns(backend(), f));
	if (strcmp(ki->name, "libc") == 0) {
		/* the backend is glibc: its free takes the block */
		ck_assert_uint_ge(malloc_usable_size(f), 200);
		ck_assert(holds(f, 200, 11));
		free(f);
	}
	/* (others would crash or corrupt on free(f): documented in kalloc.h,
	 * and the block is leaked here on purpose) */
}

START_TEST(foreign_pointer_is_left_alone)
{
	void *(*gmalloc)(size_t) = glibc_malloc();
	char *f = gmalloc(200);
	ck_assert_ptr_nonnull(f);
	fill(f, 200, 11);
	kalloc_info_t ki;
	kalloc_info(backend(), &ki);
	if (!(ki.detects & KALLOC_DETECT_FOREIGN_FREE)) {
		foreign_undetected(f, &ki);
		return;
	}
	ck_assert_msg(kalloc_owns(backend(), f) == 0,
		      "backend %s declares foreign-free detection but answers "
		      "%d for glibc's block", ki.name, kalloc_owns(backend(), f));
	/* capture stderr: one report, then silence */
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	int saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	free(f);
	ck_assert_uint_eq(malloc_usable_size(f), 0);
	errno = 0;
	ck_assert_ptr_null(realloc(f, 10));
	ck_assert_int_eq(errno, ENOMEM);
	free(f);
	dup2(saved, STDERR_FILENO);
	close(fds[1]);
	char buf[1024] = { 0 };
	ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	ck_assert_int_gt(n, 0);
	ck_assert_msg(strstr(buf, "not a block of backend"), "stderr: %s", buf);
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1); /* exactly one line */
	/* the block is still glibc's and intact: nothing was corrupted */
	ck_assert(holds(f, 200, 11));
	void *p = malloc(200);
	ck_assert_ptr_nonnull(p);
	free(p);
}
END_TEST

/* ---- threads and fork --------------------------------------------------- */

static atomic_int stop;

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *slot[64] = { 0 };
	while (!atomic_load(&stop)) {
		seed = seed * 1103515245 + 12345;
		int i = (seed >> 8) & 63;
		size_t n = (seed >> 16) % 3000 + 1;
		if ((seed >> 20) % 17 == 0)
			n *= 300;
		if (slot[i] && (seed & 1)) {
			slot[i] = realloc(slot[i], n);
			REQUIRE(slot[i]);
		} else {
			free(slot[i]);
			slot[i] = malloc(n);
			REQUIRE(slot[i]);
			memset(slot[i], 1, n < 64 ? n : 64);
		}
	}
	for (int i = 0; i < 64; i++)
		free(slot[i]);
	return NULL;
}

static void *child_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		free(malloc((size_t)i * 13 + 1));
	return malloc(10);
}

START_TEST(fork_from_multithreaded_program)
{
	enum { THREADS = 4, FORKS = 30 };
	pthread_t t[THREADS];
	atomic_store(&stop, 0);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn,
						(void *)(uintptr_t)(i + 1)), 0);
	for (int f = 0; f < FORKS; f++) {
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			alarm(10); /* a deadlocked child fails, not hangs */
			void *keep[100];
			for (int i = 0; i < 100; i++)
				keep[i] = malloc((size_t)i * 97 + 1);
			for (int i = 0; i < 100; i++)
				free(keep[i]);
			void *big = malloc(8 << 20);
			free(big);
			pthread_t ct;
			void *r = NULL;
			if (pthread_create(&ct, NULL, child_thread, NULL) ||
			    pthread_join(ct, &r) || !r)
				_exit(3);
			free(r);
			_exit(0);
		}
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "child %d: status 0x%x", f, status);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}
END_TEST

static void *nothing(void *arg)
{
	return arg;
}

START_TEST(threads_exit_without_allocating)
{
	for (int round = 0; round < 50; round++) {
		pthread_t t[8];
		for (int i = 0; i < 8; i++)
			ck_assert_int_eq(pthread_create(&t[i], NULL, nothing,
							NULL), 0);
		for (int i = 0; i < 8; i++)
			ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (int i = 0; i < 50; i++) {
		pthread_t t;
		ck_assert_int_eq(pthread_create(&t, &attr, nothing, NULL), 0);
	}
	pthread_attr_destroy(&attr);
	void *p = malloc(1000);
	ck_assert_ptr_nonnull(p);
	free(p);
}
END_TEST

static pthread_key_t key;
static atomic_int destructor_runs;
static void *from_main; /* a block of the main thread, freed at exit of another */

static void destructor(void *v)
{
	free(v);
	/* allocating and freeing during teardown works too */
	void *tmp = malloc(5000);
	if (tmp) {
		memset(tmp, 1, 5000);
		free(tmp);
	}
	void *other = __atomic_exchange_n(&from_main, NULL, __ATOMIC_ACQ_REL);
	free(other);
	/* re-arm once: glibc calls destructors again for a non-NULL value */
	if (atomic_fetch_add(&destructor_runs, 1) % 2 == 0)
		pthread_setspecific(key, malloc(64));
}

static void *keyed(void *arg)
{
	(void)arg;
	pthread_setspecific(key, malloc(100));
	return NULL;
}

START_TEST(frees_in_thread_destructors)
{
	ck_assert_int_eq(pthread_key_create(&key, destructor), 0);
	atomic_store(&destructor_runs, 0);
	for (int i = 0; i < 40; i++) {
		__atomic_store_n(&from_main, malloc(300), __ATOMIC_RELEASE);
		pthread_t t;
		ck_assert_int_eq(pthread_create(&t, NULL, keyed, NULL), 0);
		ck_assert_int_eq(pthread_join(t, NULL), 0);
	}
	ck_assert_int_eq(atomic_load(&destructor_runs), 80);
	pthread_key_delete(key);
}
END_TEST

static Suite *shim_suite(void)
{
	Suite *s = suite_create("shim");
	TCase *tc = tcase_create("glibc");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, shim_serves_malloc);
	tcase_add_test(tc, no_cxx_runtime_in_c_programs);
	tcase_add_test(tc, malloc_zero_is_unique);
	tcase_add_test(tc, malloc_sizes_usable_aligned);
	tcase_add_test(tc, free_preserves_errno);
	tcase_add_test(tc, calloc_zeroes_even_reused_memory);
	tcase_add_test(tc, realloc_edge_cases);
	tcase_add_test(tc, realloc_keeps_content);
	tcase_add_test(tc, realloc_failure_keeps_block);
	tcase_add_test(tc, failures_set_enomem);
	tcase_add_test(tc, armed_injection_takes_malloc_to_the_core);
	tcase_add_test(tc, posix_memalign_einval_leaves_memptr);
	tcase_add_test(tc, aligned_alloc_einval);
	tcase_add_test(tc, alignments_up_to_4mib);
	tcase_add_test(tc, alignment_multiples_many_live);
	tcase_add_test(tc, alignment_above_backend_limit);
	tcase_add_test(tc, foreign_pointer_is_left_alone);
	tcase_add_test(tc, fork_from_multithreaded_program);
	tcase_add_test(tc, threads_exit_without_allocating);
	tcase_add_test(tc, frees_in_thread_destructors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(shim_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

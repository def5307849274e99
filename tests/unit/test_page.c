/*
 * The page backend (Vmalloc): one mapping per block, mremap realloc, the
 * cache of freed mappings and its bounds, guard pages, large alignments,
 * owns() on any address, NOWAIT from the cache only, fork.
 *
 * Memory facts are read from the kernel with mincore(2): whether an address
 * is mapped at all (ENOMEM if not) and which pages are resident.
 */
#include <check.h>
#include <kalloc.h>

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

static size_t pagesz;

static kalloc_t *open_page(const char *opts)
{
	kalloc_t *a = NULL;
	int err = kalloc_open("page", opts, &a);
	ck_assert_msg(err == KALLOC_OK, "open page (%s): %s", opts ? opts : "",
		      kalloc_errmsg());
	return a;
}

static void *alloc_ok(kalloc_t *a, size_t size, size_t align,
		      kalloc_flags_t flags, size_t *len)
{
	kalloc_buf_t b;
	int err = kalloc_alloc(a, KALLOC_LAYOUT(size, align), flags, &b);
	ck_assert_msg(err == KALLOC_OK, "alloc %zu align %zu: %s", size, align,
		      kalloc_errmsg());
	ck_assert_ptr_nonnull(b.ptr);
	ck_assert_uint_ge(b.len, size);
	if (len)
		*len = b.len;
	return b.ptr;
}

static void *realloc_ok(kalloc_t *a, void *p, size_t size, size_t align,
			size_t old_size, size_t old_align, kalloc_flags_t flags,
			size_t *len)
{
	kalloc_buf_t b;
	int err = kalloc_realloc(a, p, KALLOC_LAYOUT(size, align),
				 KALLOC_LAYOUT(old_size, old_align), flags, &b);
	ck_assert_msg(err == KALLOC_OK, "realloc to %zu: %s", size,
		      kalloc_errmsg());
	ck_assert_uint_ge(b.len, size);
	if (len)
		*len = b.len;
	return b.ptr;
}

/* mincore's vector for len bytes, in n pages (munmap it). */
static unsigned char *core_vec(size_t len, size_t *n)
{
	*n = (len + pagesz - 1) / pagesz;
	unsigned char *vec = mmap(NULL, *n, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(vec, MAP_FAILED);
	return vec;
}

/* 1 if [p, p+len) is mapped, 0 if some of it is not. */
static int mapped(const void *p, size_t len)
{
	size_t n;
	unsigned char *vec = core_vec(len, &n);
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)(pagesz - 1);
	int r = mincore((void *)start, len, vec);
	int e = errno;
	munmap(vec, n);
	ck_assert(r == 0 || e == ENOMEM);
	return r == 0;
}

/* Resident pages of a mapped range. */
static size_t resident(const void *p, size_t len)
{
	size_t n, count = 0;
	unsigned char *vec = core_vec(len, &n);
	ck_assert_int_eq(mincore((void *)p, len, vec), 0);
	for (size_t i = 0; i < n; i++)
		count += vec[i] & 1;
	munmap(vec, n);
	return count;
}

/* Check records every assertion through a pipe: one per buffer, not byte. */
static int all_eq(const unsigned char *p, size_t len, unsigned char v)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

/* Index of the first byte differing from (i * mul) % mod, or len. */
static size_t pattern_end(const unsigned char *p, size_t len, size_t mul,
			  size_t mod)
{
	size_t i = 0;
	while (i < len && p[i] == (unsigned char)(i * mul % mod))
		i++;
	return i;
}

static int all_zero(const unsigned char *p, size_t len)
{
	return all_eq(p, len, 0);
}

static void copied_fn(void *ctx, const char *group, const char *key,
		      uint64_t value)
{
	if (strcmp(group, "page") == 0 && strcmp(key, "copied_bytes") == 0)
		*(uint64_t *)ctx = value;
}

/* Bytes the handle has memcpy'd to move blocks (page's own counter). */
static uint64_t copied_bytes(kalloc_t *a)
{
	uint64_t v = UINT64_MAX;
	ck_assert_int_gt(kalloc_stats_foreach(a, copied_fn, &v), 0);
	ck_assert_msg(v != UINT64_MAX, "page reports no copied_bytes counter");
	return v;
}

/* Runs fn(ctx) in a child; returns its wait status. */
static int in_child(void (*fn)(void *), void *ctx)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fn(ctx);
		_exit(0);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/* ---- basic shape -------------------------------------------------------- */

START_TEST(blocks_are_page_aligned_mappings)
{
	kalloc_t *a = open_page(NULL);
	const size_t sizes[] = { 1, 100, 4095, 4096, 4097, 65536 + 1, MiB };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len;
		unsigned char *p = alloc_ok(a, sizes[i], 16, 0, &len);
		ck_assert_uint_eq((uintptr_t)p % pagesz, 0);
		ck_assert_uint_eq(len, (sizes[i] + pagesz - 1) / pagesz * pagesz);
		ck_assert_uint_eq(kalloc_usable_size(a, p), len);
		ck_assert_int_eq(kalloc_owns(a, p), 1);
		memset(p, 0xab, len); /* the whole usable length is writable */
		kalloc_free(a, p, KALLOC_LAYOUT(sizes[i], 16));
		ck_assert_int_eq(kalloc_owns(a, p), 0);
	}
	kalloc_close(a);
}
END_TEST

START_TEST(zero_on_alloc_and_on_growth)
{
	kalloc_t *a = open_page(NULL);
	size_t len;
	unsigned char *p = alloc_ok(a, 3 * pagesz, 8, 0, &len);
	memset(p, 0x5a, len);
	kalloc_free(a, p, KALLOC_LAYOUT(3 * pagesz, 8));
	/* the cached, dirty mapping must come back zeroed */
	p = alloc_ok(a, 3 * pagesz, 8, KALLOC_ZERO, &len);
	ck_assert(all_zero(p, len));
	/* shrink (stale bytes after the new size), then grow with ZERO */
	memset(p, 0x77, len);
	p = realloc_ok(a, p, 100, 8, 3 * pagesz, 8, 0, NULL);
	p = realloc_ok(a, p, 8 * pagesz, 8, 100, 8, KALLOC_ZERO, &len);
	ck_assert(all_eq(p, 100, 0x77));
	ck_assert(all_zero(p + 100, len - 100));
	/* unknown old size: the old usable length is content, beyond is zero */
	memset(p, 0x11, len);
	size_t half = len / 2;
	p = realloc_ok(a, p, half, 8, 0, 0, 0, &len);
	ck_assert_uint_eq(len, half);
	unsigned char *q = realloc_ok(a, p, half + 10, 8, 0, 0, KALLOC_ZERO,
				      &len);
	ck_assert(all_eq(q, half, 0x11));
	ck_assert(all_zero(q + half, len - half));
	/* in place within one page: stale bytes past the old size are zeroed */
	memset(q, 0x22, len);
	q = realloc_ok(a, q, 100, 8, half + 10, 8, 0, &len);
	ck_assert_uint_eq(len, pagesz);
	unsigned char *r = realloc_ok(a, q, 200, 8, 100, 8, KALLOC_ZERO, &len);
	ck_assert_ptr_eq(r, q);
	ck_assert(all_eq(r, 100, 0x22));
	ck_assert(all_zero(r + 100, len - 100));
	q = r;
	kalloc_free(a, q, KALLOC_LAYOUT_UNKNOWN);
	kalloc_close(a);
}
END_TEST

/* ---- realloc by mremap ------------------------------------------------- */

START_TEST(growth_to_1gib_moves_pages_without_copying)
{
	kalloc_t *a = open_page(NULL);
	size_t size = MiB;
	unsigned char *p = alloc_ok(a, size, pagesz, 0, NULL);
	p[0] = 0xa1;
	p[size - 1] = 0xb2;
	uint64_t copied = copied_bytes(a);
	for (; size < GiB; size *= 2) {
		p = realloc_ok(a, p, size * 2, pagesz, size, pagesz, 0, NULL);
		ck_assert_uint_eq((uintptr_t)p % pagesz, 0);
		p[size * 2 - 1] = (unsigned char)(size >> 20);
	}
	copied = copied_bytes(a) - copied;
	ck_assert_uint_eq(p[0], 0xa1);
	ck_assert_uint_eq(p[MiB - 1], 0xb2);
	for (size_t s = MiB; s < GiB; s *= 2)
		ck_assert_uint_eq(p[s * 2 - 1], (unsigned char)(s >> 20));
	/* a copy would have made every page of the destination resident */
	size_t res = resident(p, GiB);
	ck_assert_msg(res < GiB / pagesz / 16,
		      "%zu of %zu pages resident after growth", res, GiB / pagesz);
	/* no warm cached pages on a fresh handle: every move is an mremap */
	ck_assert_msg(copied == 0, "10 doublings to 1 GiB copied %llu bytes",
		      (unsigned long long)copied);
	kalloc_free(a, p, KALLOC_LAYOUT(GiB, pagesz));
	kalloc_close(a);
}
END_TEST

START_TEST(shrink_keeps_pointer_and_unmaps_the_tail)
{
	kalloc_t *a = open_page("cache=0");
	size_t len;
	unsigned char *p = alloc_ok(a, 64 * pagesz, 16, 0, NULL);
	for (size_t i = 0; i < 64 * pagesz; i++)
		p[i] = (unsigned char)(i * 7);
	unsigned char *q = realloc_ok(a, p, 2 * pagesz + 1, 16, 64 * pagesz, 16,
				      0, &len);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(len, 3 * pagesz);
	ck_assert_uint_eq(pattern_end(q, 2 * pagesz + 1, 7, 256),
			  2 * pagesz + 1);
	ck_assert_int_eq(mapped(q, 3 * pagesz), 1);
	/* (valgrind maps its own memory into freed address ranges) */
	if (!RUNNING_ON_VALGRIND)
		ck_assert_int_eq(mapped(q + 3 * pagesz, pagesz), 0);
	kalloc_free(a, q, KALLOC_LAYOUT(2 * pagesz + 1, 16));
	if (!RUNNING_ON_VALGRIND) /* cache=0: unmapped at once */
		ck_assert_int_eq(mapped(q, pagesz), 0);
	kalloc_close(a);
}
END_TEST

START_TEST(content_survives_every_kind_of_move)
{
	kalloc_t *a = open_page(NULL);
	size_t size = 5000;
	unsigned char *p = alloc_ok(a, size, 64, 0, NULL);
	for (size_t i = 0; i < size; i++)
		p[i] = (unsigned char)(i % 251);
	const size_t steps[][2] = { /* size, align */
		{ 300000, 64 }, { 7000, 64 }, { 9000, 4 * MiB },
		{ 3 * MiB, 2 * MiB }, { 100, 1 }, { 2 * pagesz, pagesz },
	};
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		size_t ns = steps[s][0], al = steps[s][1];
		p = realloc_ok(a, p, ns, al, size, 64, 0, NULL);
		ck_assert_uint_eq((uintptr_t)p % al, 0);
		size_t kept = size < ns ? size : ns;
		ck_assert_uint_eq(pattern_end(p, kept, 1, 251), kept);
		for (size_t i = kept; i < ns; i++)
			p[i] = (unsigned char)(i % 251);
		size = ns;
	}
	kalloc_free(a, p, KALLOC_LAYOUT_UNKNOWN);
	kalloc_close(a);
}
END_TEST

/* ---- the cache of freed mappings ---------------------------------------- */

START_TEST(cache_reuses_freed_mappings)
{
	kalloc_t *a = open_page(NULL);
	unsigned char *p = alloc_ok(a, 256 * KiB, 16, 0, NULL);
	memset(p, 0x42, 256 * KiB);
	kalloc_free(a, p, KALLOC_LAYOUT(256 * KiB, 16));
	ck_assert_int_eq(kalloc_owns(a, p), 0);
	ck_assert_int_eq(mapped(p, pagesz), 1); /* kept, not unmapped */
	unsigned char *q = alloc_ok(a, 256 * KiB, 16, 0, NULL);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(q[1000], 0x42); /* the same pages, not fresh ones */
	kalloc_free(a, q, KALLOC_LAYOUT(256 * KiB, 16));
	kalloc_close(a);
}
END_TEST

START_TEST(cache_is_bounded_in_bytes)
{
	enum { N = 8 };
	kalloc_t *a = open_page("cache=1048576"); /* 1 MiB: 4 of the blocks */
	void *p[N];
	for (int i = 0; i < N; i++)
		p[i] = alloc_ok(a, 256 * KiB, 16, 0, NULL);
	for (int i = 0; i < N; i++)
		kalloc_free(a, p[i], KALLOC_LAYOUT(256 * KiB, 16));
	int still = 0;
	for (int i = 0; i < N; i++)
		still += mapped(p[i], pagesz);
	if (!RUNNING_ON_VALGRIND) /* it maps its own memory in freed ranges */
		ck_assert_int_eq(still, 4);
	kalloc_close(a);

	/* the same bound from the environment; 0 disables the cache */
	setenv("KALLOC_PAGE_CACHE", "0", 1);
	a = open_page(NULL);
	unsetenv("KALLOC_PAGE_CACHE");
	void *q = alloc_ok(a, 256 * KiB, 16, 0, NULL);
	kalloc_free(a, q, KALLOC_LAYOUT(256 * KiB, 16));
	if (!RUNNING_ON_VALGRIND)
		ck_assert_int_eq(mapped(q, pagesz), 0);
	kalloc_close(a);
}
END_TEST

START_TEST(cache_gives_memory_back_after_a_second)
{
	kalloc_t *a = open_page(NULL);
	size_t size = 128 * pagesz;
	unsigned char *p = alloc_ok(a, size, 16, 0, NULL);
	memset(p, 0x33, size);
	kalloc_free(a, p, KALLOC_LAYOUT(size, 16));
	ck_assert_uint_eq(resident(p, size), 128);
	struct timespec ts = { 1, 200 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	/* any later operation on the handle returns the old entry's pages */
	void *other = alloc_ok(a, pagesz, 16, 0, NULL);
	kalloc_free(a, other, KALLOC_LAYOUT(pagesz, 16));
	ck_assert_int_eq(mapped(p, size), 1);
	ck_assert_uint_eq(resident(p, size), 0);
	/* and the entry, now clean, is reused: it reads zero */
	unsigned char *q = alloc_ok(a, size, 16, KALLOC_ZERO, NULL);
	ck_assert_ptr_eq(q, p);
	ck_assert(all_zero(q, size));
	kalloc_free(a, q, KALLOC_LAYOUT(size, 16));
	kalloc_close(a);
}
END_TEST

START_TEST(cache_cuts_ranges_and_merges_them_back)
{
	kalloc_t *a = open_page(NULL);
	size_t whole = 64 * pagesz;
	uintptr_t base = (uintptr_t)alloc_ok(a, whole, 16, 0, NULL);
	kalloc_free(a, (void *)base, KALLOC_LAYOUT(whole, 16));
	/* smaller blocks are cut from the cached range, without a system call */
	const size_t pages[] = { 1, 2, 5, 20 };
	void *p[4];
	for (int i = 0; i < 4; i++) {
		p[i] = alloc_ok(a, pages[i] * pagesz, 16, KALLOC_NOWAIT, NULL);
		ck_assert((uintptr_t)p[i] >= base &&
			  (uintptr_t)p[i] + pages[i] * pagesz <= base + whole);
	}
	for (int i = 0; i < 4; i++)
		kalloc_free(a, p[i], KALLOC_LAYOUT_UNKNOWN);
	/* and come back whole once freed */
	void *q = alloc_ok(a, whole, 16, KALLOC_NOWAIT, NULL);
	ck_assert_ptr_eq(q, (void *)base);
	/* a block grows in place over the cached pages after it */
	memset(q, 0x6b, whole);
	kalloc_free(a, q, KALLOC_LAYOUT(whole, 16));
	q = alloc_ok(a, 10 * pagesz, 16, 0, NULL);
	ck_assert_ptr_eq(q, (void *)base);
	size_t len;
	q = realloc_ok(a, q, 30 * pagesz, 16, 10 * pagesz, 16,
		       KALLOC_NOWAIT | KALLOC_ZERO, &len);
	ck_assert_ptr_eq(q, (void *)base);
	ck_assert_uint_eq(len, 30 * pagesz);
	ck_assert(all_eq(q, 10 * pagesz, 0x6b));
	ck_assert(all_zero((unsigned char *)q + 10 * pagesz, 20 * pagesz));
	q = realloc_ok(a, q, whole, 16, 30 * pagesz, 16, KALLOC_NOWAIT, &len);
	ck_assert_ptr_eq(q, (void *)base);
	/* a shrink's tail is cached too, and serves the next request */
	q = realloc_ok(a, q, 10 * pagesz, 16, whole, 16, 0, &len);
	ck_assert_uint_eq(len, 10 * pagesz);
	void *t = alloc_ok(a, 54 * pagesz, 16, KALLOC_NOWAIT, NULL);
	ck_assert_ptr_eq(t, (char *)base + 10 * pagesz);
	kalloc_free(a, t, KALLOC_LAYOUT_UNKNOWN);
	kalloc_free(a, q, KALLOC_LAYOUT_UNKNOWN);
	kalloc_close(a);
}
END_TEST

START_TEST(growth_reuses_resident_cached_pages)
{
	kalloc_t *a = open_page(NULL);
	size_t whole = 64 * pagesz;
	unsigned char *w = alloc_ok(a, whole, 16, 0, NULL);
	memset(w, 0x44, whole); /* every page resident */
	kalloc_free(a, w, KALLOC_LAYOUT(whole, 16));
	unsigned char *x = alloc_ok(a, 2 * pagesz, 16, 0, NULL);
	unsigned char *y = alloc_ok(a, 2 * pagesz, 16, 0, NULL);
	ck_assert_ptr_eq(x, w);
	ck_assert_ptr_eq(y, w + 2 * pagesz);
	memset(x, 0x55, 2 * pagesz);
	/* x cannot grow in place (y is next): it lands in the warm pages */
	size_t len;
	unsigned char *g = realloc_ok(a, x, 20 * pagesz, 16, 2 * pagesz, 16,
				      KALLOC_ZERO, &len);
	ck_assert_ptr_eq(g, w + 4 * pagesz);
	ck_assert_uint_eq(resident(g, 20 * pagesz), 20);
	ck_assert(all_eq(g, 2 * pagesz, 0x55));
	ck_assert(all_zero(g + 2 * pagesz, len - 2 * pagesz));
	kalloc_free(a, g, KALLOC_LAYOUT_UNKNOWN);
	kalloc_free(a, y, KALLOC_LAYOUT_UNKNOWN);
	kalloc_close(a);
}
END_TEST

/* ---- guard pages -------------------------------------------------------- */

struct overflow {
	unsigned char *p;
	size_t at;
};

/* SIGSEGV's default action, past any handler a sanitizer installed (and
 * whose sigaction() it intercepts): the kernel's struct, by system call. */
static void default_segv(void)
{
	struct {
		void (*handler)(int);
		unsigned long flags;
		void (*restorer)(void);
		uint64_t mask;
	} act = { SIG_DFL, 0, NULL, 0 };
	syscall(SYS_rt_sigaction, SIGSEGV, &act, NULL, sizeof(act.mask));
}

static void write_at(void *ctx)
{
	struct overflow *o = ctx;
	default_segv();
	o->p[o->at - 1] = 1; /* the last usable byte is fine */
	o->p[o->at] = 1;     /* one past it faults */
}

static void expect_fault(unsigned char *p, size_t usable)
{
	struct overflow o = { p, usable };
	int status = in_child(write_at, &o);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		      "writing 1 byte past %zu usable bytes did not fault "
		      "(status 0x%x)", usable, status);
}

START_TEST(guard_page_faults_one_byte_past_the_end)
{
	kalloc_t *a = open_page("guard=1");
	const size_t cases[][3] = { /* size, align, usable */
		{ 1, 1, 1 }, { 100, 1, 100 }, { 4095, 1, 4095 }, { 4097, 1, 4097 },
		{ 100, 16, 112 }, { 5000, 64, 5056 }, { 5000, 8192, 8192 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		unsigned char *p = alloc_ok(a, cases[i][0], cases[i][1], 0, &len);
		ck_assert_uint_eq((uintptr_t)p % cases[i][1], 0);
		ck_assert_uint_eq(len, cases[i][2]);
		ck_assert_uint_eq(kalloc_usable_size(a, p), len);
		memset(p, 0xcd, len);
		expect_fault(p, len);
		kalloc_free(a, p, KALLOC_LAYOUT(cases[i][0], cases[i][1]));
	}
	/* realloc keeps the guard right after the end, and the content */
	size_t len;
	unsigned char *p = alloc_ok(a, 10, 1, 0, NULL);
	memcpy(p, "0123456789", 10);
	p = realloc_ok(a, p, 6000, 1, 10, 1, KALLOC_ZERO, &len);
	ck_assert_uint_eq(len, 6000);
	ck_assert(memcmp(p, "0123456789", 10) == 0);
	ck_assert(all_zero(p + 10, 5990));
	expect_fault(p, 6000);
	p = realloc_ok(a, p, 5, 1, 6000, 1, 0, &len);
	ck_assert(memcmp(p, "01234", 5) == 0);
	expect_fault(p, 5);
	kalloc_free(a, p, KALLOC_LAYOUT(5, 1));
	kalloc_close(a);
}
END_TEST

START_TEST(guard_from_the_environment)
{
	setenv("KALLOC_PAGE_GUARD", "1", 1);
	kalloc_t *a = open_page(NULL);
	unsetenv("KALLOC_PAGE_GUARD");
	size_t len;
	unsigned char *p = alloc_ok(a, 33, 1, 0, &len);
	ck_assert_uint_eq(len, 33);
	expect_fault(p, 33);
	kalloc_free(a, p, KALLOC_LAYOUT(33, 1));
	/* guard blocks are cached too, and still fault when reused */
	unsigned char *q = alloc_ok(a, 40, 1, KALLOC_ZERO, &len);
	ck_assert(all_zero(q, 40));
	expect_fault(q, 40);
	kalloc_free(a, q, KALLOC_LAYOUT(40, 1));
	kalloc_close(a);
}
END_TEST

/* ---- alignments --------------------------------------------------------- */

START_TEST(alignments_2mib_to_64mib)
{
	kalloc_t *a = open_page(NULL);
	for (size_t al = 2 * MiB; al <= 64 * MiB; al *= 2) {
		size_t size = al / 2 + 1;
		unsigned char *p = alloc_ok(a, size, al, 0, NULL);
		ck_assert_msg((uintptr_t)p % al == 0, "%p not aligned to %zu",
			      (void *)p, al);
		p[0] = 1;
		p[size - 1] = 2;
		p = realloc_ok(a, p, 3 * al, al, size, al, KALLOC_ZERO, NULL);
		ck_assert_uint_eq((uintptr_t)p % al, 0);
		ck_assert_uint_eq(p[0], 1);
		ck_assert_uint_eq(p[size - 1], 2);
		ck_assert_uint_eq(p[3 * al - 1], 0);
		kalloc_free(a, p, KALLOC_LAYOUT(3 * al, al));
	}
	/* raising a block's alignment moves it to an aligned place */
	unsigned char *p = alloc_ok(a, 10 * pagesz, pagesz, 0, NULL);
	p[5] = 9;
	p = realloc_ok(a, p, 10 * pagesz, 64 * MiB, 10 * pagesz, pagesz, 0, NULL);
	ck_assert_uint_eq((uintptr_t)p % (64 * MiB), 0);
	ck_assert_uint_eq(p[5], 9);
	kalloc_free(a, p, KALLOC_LAYOUT_UNKNOWN);
	/* above the 1 GiB limit: refused, never misaligned */
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(10, 2 * GiB), KALLOC_NOWARN,
				      &b), KALLOC_EALIGN);
	kalloc_close(a);
}
END_TEST

/* ---- owns() ------------------------------------------------------------- */

static int a_static;

/* ---- transparent huge pages --------------------------------------------- */

/* The THP mode in brackets in /sys/kernel/mm/transparent_hugepage/enabled. */
static bool thp_madvise_works(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, "[madvise]") || strstr(buf, "[always]");
}

/* The mapping's VM flags from /proc/self/smaps: "hg" is MADV_HUGEPAGE. */
static bool advised_huge(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	ck_assert_ptr_nonnull(f);
	char line[512];
	bool inside = false, hg = false;
	uintptr_t a = (uintptr_t)p;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping */
			inside = a >= lo && a < hi;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			hg = strstr(line, " hg") != NULL;
			break;
		}
	}
	fclose(f);
	return hg;
}

START_TEST(large_blocks_get_huge_pages)
{
	if (RUNNING_ON_VALGRIND)
		return; /* valgrind keeps its own view of madvise */
	kalloc_t *a = open_page(NULL); /* default threshold: 8 MiB */
	void *small = alloc_ok(a, 4 * MiB, 16, 0, NULL);
	ck_assert_msg(!advised_huge(small), "a 4 MiB block was advised huge");
	void *big = alloc_ok(a, 32 * MiB, 16, 0, NULL);
	ck_assert_msg(advised_huge(big), "a 32 MiB block was not advised huge");
	/* growth past the threshold by mremap advises the moved mapping */
	small = realloc_ok(a, small, 64 * MiB, 16, 4 * MiB, 16, 0, NULL);
	ck_assert_msg(advised_huge(small), "a block grown to 64 MiB was not "
		      "advised huge");
	memset(small, 1, 64 * MiB);
	kalloc_free(a, small, KALLOC_LAYOUT(64 * MiB, 16));
	kalloc_free(a, big, KALLOC_LAYOUT(32 * MiB, 16));
	kalloc_close(a);

	kalloc_t *off = open_page("huge=0");
	void *p = alloc_ok(off, 32 * MiB, 16, 0, NULL);
	ck_assert_msg(!advised_huge(p), "huge=0, yet a 32 MiB block was "
		      "advised huge");
	kalloc_free(off, p, KALLOC_LAYOUT(32 * MiB, 16));
	kalloc_close(off);
	/* where the kernel offers THP, a written huge block holds some */
	if (thp_madvise_works()) {
		kalloc_t *on = open_page("cache=0");
		char *q = alloc_ok(on, 32 * MiB, 16, 0, NULL);
		memset(q, 1, 32 * MiB);
		FILE *f = fopen("/proc/self/smaps_rollup", "r");
		ck_assert_ptr_nonnull(f);
		char line[256];
		long huge_kb = -1;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "AnonHugePages: %ld kB", &huge_kb) == 1)
				break;
		fclose(f);
		ck_assert_msg(huge_kb > 0, "no AnonHugePages after writing a "
			      "32 MiB block (%ld kB)", huge_kb);
		kalloc_free(on, q, KALLOC_LAYOUT(32 * MiB, 16));
		kalloc_close(on);
	}
}
END_TEST

START_TEST(owns_answers_for_any_address)
{
	kalloc_t *a = open_page(NULL);
	unsigned char *p = alloc_ok(a, 3 * pagesz, 16, 0, NULL);
	int on_stack;
	void *heap = malloc(64);
	ck_assert_int_eq(kalloc_owns(a, p), 1);
	ck_assert_int_eq(kalloc_owns(a, p + 1), 0);
	ck_assert_int_eq(kalloc_owns(a, p + pagesz), 0);
	ck_assert_int_eq(kalloc_owns(a, &on_stack), 0);
	ck_assert_int_eq(kalloc_owns(a, &a_static), 0);
	ck_assert_int_eq(kalloc_owns(a, heap), 0);
	ck_assert_int_eq(kalloc_owns(a, (void *)(uintptr_t)0x1000), 0);
	ck_assert_int_eq(kalloc_owns(a, (void *)UINTPTR_MAX), 0);
	/* a second handle does not own the first one's blocks */
	kalloc_t *b = open_page(NULL);
	ck_assert_int_eq(kalloc_owns(b, p), 0);
	kalloc_close(b);
	free(heap);
	kalloc_free(a, p, KALLOC_LAYOUT_UNKNOWN);
	ck_assert_int_eq(kalloc_owns(a, p), 0);
	kalloc_close(a);
}
END_TEST

START_TEST(many_blocks_grow_the_table)
{
	enum { N = 5000 };
	kalloc_t *a = open_page("cache=0");
	static unsigned char *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = alloc_ok(a, 1 + (size_t)i % 3 * pagesz, 16, 0, NULL);
		p[i][0] = (unsigned char)i;
	}
	for (int i = 0; i < N; i += 2) {
		kalloc_free(a, p[i], KALLOC_LAYOUT_UNKNOWN);
		ck_assert_int_eq(kalloc_owns(a, p[i]), 0);
	}
	for (int i = 1; i < N; i += 2) {
		ck_assert_int_eq(kalloc_owns(a, p[i]), 1);
		ck_assert_uint_eq(p[i][0], (unsigned char)i);
		kalloc_free(a, p[i], KALLOC_LAYOUT_UNKNOWN);
	}
	kalloc_close(a);
}
END_TEST

static void free_foreign(void *ctx)
{
	kalloc_t *a = ctx;
	int x;
	kalloc_free(a, &x, KALLOC_LAYOUT_UNKNOWN);
}

START_TEST(free_of_a_foreign_pointer_aborts)
{
	kalloc_t *a = open_page(NULL);
	int status = in_child(free_foreign, a);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		      "status 0x%x", status);
	kalloc_close(a);
}
END_TEST

/* ---- NOWAIT ------------------------------------------------------------- */

START_TEST(nowait_is_served_from_the_cache_only)
{
	kalloc_buf_t b;
	const kalloc_flags_t f[] = { KALLOC_NOWAIT, KALLOC_ATOMIC };
	for (int k = 0; k < 2; k++) {
		kalloc_t *a = open_page(NULL);
		/* nothing cached yet: refused, not mapped */
		ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(20000, 16),
					      f[k] | KALLOC_NOWARN, &b),
				 KALLOC_EAGAIN);
		void *p = alloc_ok(a, 20000, 16, 0, NULL);
		memset(p, 0x99, 20000);
		kalloc_free(a, p, KALLOC_LAYOUT(20000, 16));
		unsigned char *q = alloc_ok(a, 20000, 16, f[k] | KALLOC_ZERO, NULL);
		ck_assert_ptr_eq(q, p);
		ck_assert(all_zero(q, 20000));
		/* in-place resizing needs no mapping either */
		q = realloc_ok(a, q, 100, 16, 20000, 16, f[k], NULL);
		q = realloc_ok(a, q, 20000, 16, 100, 16, f[k], NULL);
		/* growth beyond the mapping: only from the cache */
		ck_assert_int_eq(kalloc_realloc(a, q, KALLOC_LAYOUT(MiB, 16),
						KALLOC_LAYOUT(20000, 16),
						f[k] | KALLOC_NOWARN, &b),
				 KALLOC_EAGAIN);
		kalloc_free(a, alloc_ok(a, MiB, 16, 0, NULL), KALLOC_LAYOUT_UNKNOWN);
		q[19999] = 7;
		q = realloc_ok(a, q, MiB, 16, 20000, 16, f[k] | KALLOC_ZERO, NULL);
		ck_assert_uint_eq(q[19999], 7);
		ck_assert(all_zero(q + 20000, MiB - 20000));
		kalloc_free(a, q, KALLOC_LAYOUT(MiB, 16));
		kalloc_close(a);
	}

	/* with the cache off, NOWAIT never succeeds */
	kalloc_t *a = open_page("cache=0");
	kalloc_free(a, alloc_ok(a, 20000, 16, 0, NULL), KALLOC_LAYOUT_UNKNOWN);
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(20000, 16),
				      KALLOC_NOWAIT | KALLOC_NOWARN, &b),
			 KALLOC_EAGAIN);
	kalloc_close(a);
}
END_TEST

/* The child dies of SIGSYS if it calls mmap, mremap or brk. */
static void forbid_mapping_calls(void)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mremap, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_brk, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = { sizeof(insns) / sizeof(insns[0]), insns };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		_exit(3);
}

static void nowait_under_seccomp(void *ctx)
{
	kalloc_t *a = ctx;
	const size_t sizes[] = { 1, 4096, 5000, 100000, 3 * MiB };
	for (size_t i = 0; i < 5; i++) /* warm-up: alloc + free */
		kalloc_free(a, alloc_ok(a, sizes[i], 16, 0, NULL),
			    KALLOC_LAYOUT_UNKNOWN);
	forbid_mapping_calls();
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < 5; i++) {
			kalloc_buf_t b;
			if (kalloc_alloc(a, KALLOC_LAYOUT(sizes[i], 16),
					 KALLOC_NOWAIT | KALLOC_ZERO, &b) ||
			    !all_zero(b.ptr, b.len))
				_exit(10 + (int)i);
			kalloc_free(a, b.ptr, KALLOC_LAYOUT(sizes[i], 16));
		}
}

START_TEST(nowait_never_maps_memory)
{
	if (RUNNING_ON_VALGRIND)
		return; /* valgrind maps memory for itself */
	kalloc_t *a = open_page(NULL);
	int status = in_child(nowait_under_seccomp, a);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "status 0x%x", status);
	kalloc_close(a);
}
END_TEST

/* ---- threads and fork --------------------------------------------------- */

struct churn {
	kalloc_t *a;
	volatile int stop;
};

static void *churn(void *arg)
{
	struct churn *c = arg;
	for (unsigned i = 0; !c->stop; i++) {
		kalloc_buf_t b;
		size_t size = (1 + i % 7) * 3000;
		if (kalloc_alloc(c->a, KALLOC_LAYOUT(size, 16), 0, &b) == 0) {
			memset(b.ptr, 1, size);
			kalloc_realloc(c->a, b.ptr, KALLOC_LAYOUT(size * 3, 16),
				       KALLOC_LAYOUT(size, 16), 0, &b);
			kalloc_free(c->a, b.ptr, KALLOC_LAYOUT_UNKNOWN);
		}
	}
	return NULL;
}

static void child_allocates(void *ctx)
{
	kalloc_t *a = ctx;
	for (size_t size = 100; size < 4 * MiB; size *= 3) {
		kalloc_buf_t b;
		if (kalloc_alloc(a, KALLOC_LAYOUT(size, 16), 0, &b))
			_exit(1);
		memset(b.ptr, 2, size);
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(size, 16));
	}
}

START_TEST(fork_child_can_allocate)
{
	kalloc_t *a = kalloc_get("page");
	ck_assert_ptr_nonnull(a);
	struct churn c = { a, 0 };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn, &c), 0);
	int forks = RUNNING_ON_VALGRIND ? 3 : 20;
	for (int i = 0; i < forks; i++) {
		int status = in_child(child_allocates, a);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "fork %d: status 0x%x", i, status);
	}
	c.stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
}
END_TEST

/* Threads allocate, grow, shrink and free, each checking its own bytes. */
static void *check_own(void *arg)
{
	kalloc_t *a = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed;
	for (int i = 0; i < 2000; i++) {
		seed = seed * 1103515245 + 12345;
		size_t size = 1 + (seed >> 8) % (64 * KiB), big = size * 3 + 1;
		unsigned char tag = (unsigned char)(seed >> 24);
		kalloc_buf_t b;
		if (kalloc_alloc(a, KALLOC_LAYOUT(size, 16), 0, &b))
			return "alloc failed";
		memset(b.ptr, tag, size);
		if (kalloc_realloc(a, b.ptr, KALLOC_LAYOUT(big, 16),
				   KALLOC_LAYOUT(size, 16), 0, &b))
			return "grow failed";
		unsigned char *p = b.ptr;
		if (!all_eq(p, size, tag))
			return "content lost on growth";
		memset(p + size, tag, big - size);
		if (kalloc_realloc(a, p, KALLOC_LAYOUT(size / 2 + 1, 16),
				   KALLOC_LAYOUT(big, 16), 0, &b) ||
		    !all_eq(b.ptr, size / 2 + 1, tag))
			return "content lost on shrink";
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(size / 2 + 1, 16));
	}
	return NULL;
}

START_TEST(threads_keep_their_content)
{
	kalloc_t *a = open_page(NULL);
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, check_own, a), 0);
	for (int i = 0; i < 3; i++) {
		void *why;
		pthread_join(t[i], &why);
		ck_assert_msg(why == NULL, "thread %d: %s", i, (char *)why);
	}
	kalloc_close(a);
}
END_TEST

struct handoff {
	kalloc_t *a;
	unsigned char *p;
};

static void *free_elsewhere(void *arg)
{
	struct handoff *h = arg;
	h->p = realloc_ok(h->a, h->p, 2 * MiB, 16, 0, 0, 0, NULL);
	ck_assert_uint_eq(h->p[10], 10);
	kalloc_free(h->a, h->p, KALLOC_LAYOUT_UNKNOWN);
	return NULL;
}

START_TEST(another_thread_reallocs_and_frees)
{
	kalloc_t *a = open_page(NULL);
	struct handoff h = { a, alloc_ok(a, 100, 16, 0, NULL) };
	h.p[10] = 10;
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, free_elsewhere, &h), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(kalloc_owns(a, h.p), 0);
	kalloc_close(a);
}
END_TEST

START_TEST(bad_options_are_refused)
{
	kalloc_t *a;
	ck_assert_int_eq(kalloc_open("page", "guard", &a), KALLOC_ELOAD);
	ck_assert_int_eq(kalloc_open("page", "colour=blue", &a), KALLOC_ELOAD);
	ck_assert_int_eq(kalloc_open("page", "cache=-1", &a), KALLOC_ELOAD);
	ck_assert_int_eq(kalloc_open("page", "guard=1,cache=0", &a), KALLOC_OK);
	kalloc_info_t info;
	kalloc_info(a, &info);
	ck_assert_str_eq(info.name, "page");
	ck_assert_uint_eq(info.max_align, GiB);
	ck_assert(info.flags & KALLOC_NOWAIT);
	ck_assert(info.flags & KALLOC_ATOMIC);
	ck_assert(info.flags & KALLOC_ZERO);
	kalloc_close(a);
}
END_TEST

int main(void)
{
	pagesz = (size_t)sysconf(_SC_PAGESIZE);
	Suite *s = suite_create("page");
	TCase *tc = tcase_create("page");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, blocks_are_page_aligned_mappings);
	tcase_add_test(tc, zero_on_alloc_and_on_growth);
	tcase_add_test(tc, growth_to_1gib_moves_pages_without_copying);
	tcase_add_test(tc, shrink_keeps_pointer_and_unmaps_the_tail);
	tcase_add_test(tc, content_survives_every_kind_of_move);
	tcase_add_test(tc, cache_reuses_freed_mappings);
	tcase_add_test(tc, cache_is_bounded_in_bytes);
	tcase_add_test(tc, cache_gives_memory_back_after_a_second);
	tcase_add_test(tc, cache_cuts_ranges_and_merges_them_back);
	tcase_add_test(tc, growth_reuses_resident_cached_pages);
	tcase_add_test(tc, guard_page_faults_one_byte_past_the_end);
	tcase_add_test(tc, guard_from_the_environment);
	tcase_add_test(tc, alignments_2mib_to_64mib);
	tcase_add_test(tc, large_blocks_get_huge_pages);
	tcase_add_test(tc, owns_answers_for_any_address);
	tcase_add_test(tc, many_blocks_grow_the_table);
	tcase_add_test(tc, free_of_a_foreign_pointer_aborts);
	tcase_add_test(tc, nowait_is_served_from_the_cache_only);
	tcase_add_test(tc, nowait_never_maps_memory);
	tcase_add_test(tc, fork_child_can_allocate);
	tcase_add_test(tc, another_thread_reallocs_and_frees);
	tcase_add_test(tc, threads_keep_their_content);
	tcase_add_test(tc, bad_options_are_refused);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

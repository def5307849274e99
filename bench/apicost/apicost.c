/*
 * kalloc-bench-apicost: what the kalloc API costs in front of a library,
 * against the library's own entry points (issue 12, target 6).
 *
 * One loop, nothing in it but the allocator: LIVE slots, each turn frees a
 * random slot's block and puts a new block of a random 8-512 bytes there,
 * touching its first byte.  The loop is compiled once per interface:
 *
 *   kalloc-bench-apicost           subjects `kalloc` (kalloc_alloc and the
 *                                  sized kalloc_free) and `kmalloc`
 *                                  (kmalloc/kfree), on KALLOC_BACKEND
 *   kalloc-bench-apicost-jemalloc  `jemalloc`: mallocx/dallocx
 *   kalloc-bench-apicost-tcmalloc  `tcmalloc`: tc_malloc/tc_free
 *   kalloc-bench-apicost-mimalloc  `mimalloc`: mi_malloc/mi_free
 *
 * (one executable each: jemalloc and tcmalloc replace malloc in any process
 * they are linked into).  Usage: PROG SUBJECT ITERS; prints nanoseconds per
 * pair.  Each subject's loop is its own function, run_SUBJECT, so that
 * callgrind can count it alone (apicost.py).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(APICOST_JEMALLOC)
#include <jemalloc/jemalloc.h>
#elif defined(APICOST_TCMALLOC)
#include <gperftools/tcmalloc.h>
#elif defined(APICOST_MIMALLOC)
#include <mimalloc.h>
#else
#include <kalloc.h>
#include <kalloc/linux.h>
#endif

enum { LIVE = 4096, MIN_SIZE = 8, MAX_SIZE = 512 };

static void *slot[LIVE];
static size_t slot_size[LIVE];
static uint64_t rng = 0x9e3779b97f4a7c15u;

static inline uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void *need(void *p)
{
	if (!p) {
		fprintf(stderr, "kalloc-bench-apicost: allocation failed\n");
		exit(1);
	}
	*(volatile char *)p = 1;
	return p;
}

/* The loop, with FREE(p, size) and ALLOC(size) for one interface: every
 * slot filled first, emptied at the end; ITERS turns in between. */
#define LOOP(iters, ALLOC, FREE)                                              \
	do {                                                                  \
		for (unsigned i = 0; i < LIVE; i++) {                         \
			size_t size_ = MIN_SIZE + next() % (MAX_SIZE - MIN_SIZE + 1); \
			slot[i] = need(ALLOC(size_));                         \
			slot_size[i] = size_;                                 \
		}                                                             \
		for (long n = 0; n < (iters); n++) {                          \
			unsigned i = (unsigned)(next() % LIVE);               \
			FREE(slot[i], slot_size[i]);                          \
			size_t size_ = MIN_SIZE + next() % (MAX_SIZE - MIN_SIZE + 1); \
			slot[i] = need(ALLOC(size_));                         \
			slot_size[i] = size_;                                 \
		}                                                             \
		for (unsigned i = 0; i < LIVE; i++)                           \
			FREE(slot[i], slot_size[i]);                          \
	} while (0)

#define NOINLINE __attribute__((noinline))

#if defined(APICOST_JEMALLOC)
#define JE_ALLOC(n) mallocx(n, 0)
#define JE_FREE(p, n) dallocx(p, 0)
NOINLINE static void run_jemalloc(long iters) { LOOP(iters, JE_ALLOC, JE_FREE); }
#elif defined(APICOST_TCMALLOC)
#define TC_FREE(p, n) tc_free(p)
NOINLINE static void run_tcmalloc(long iters) { LOOP(iters, tc_malloc, TC_FREE); }
#elif defined(APICOST_MIMALLOC)
#define MI_FREE(p, n) mi_free(p)
NOINLINE static void run_mimalloc(long iters) { LOOP(iters, mi_malloc, MI_FREE); }
#else
static kalloc_t *a;

static inline void *k_alloc(size_t n)
{
	kalloc_buf_t b;
	return kalloc_alloc(a, KALLOC_LAYOUT(n, 16), 0, &b) ? NULL : b.ptr;
}
#define K_FREE(p, n) kalloc_free(a, p, KALLOC_LAYOUT(n, 16))
#define KM_ALLOC(n) kmalloc(n, GFP_KERNEL)
#define KM_FREE(p, n) kfree(p)
NOINLINE static void run_kalloc(long iters) { LOOP(iters, k_alloc, K_FREE); }
NOINLINE static void run_kmalloc(long iters) { LOOP(iters, KM_ALLOC, KM_FREE); }
#endif

static const struct subject {
	const char *name;
	void (*run)(long);
} subjects[] = {
#if defined(APICOST_JEMALLOC)
	{ "jemalloc", run_jemalloc },
#elif defined(APICOST_TCMALLOC)
	{ "tcmalloc", run_tcmalloc },
#elif defined(APICOST_MIMALLOC)
	{ "mimalloc", run_mimalloc },
#else
	{ "kalloc", run_kalloc },
	{ "kmalloc", run_kmalloc },
#endif
};

int main(int argc, char **argv)
{
	const struct subject *s = NULL;
	for (size_t i = 0; argc == 3 && i < sizeof(subjects) / sizeof(*s); i++)
		if (!strcmp(argv[1], subjects[i].name))
			s = &subjects[i];
	long iters = argc == 3 ? atol(argv[2]) : 0;
	if (!s || iters <= 0) {
		fprintf(stderr, "usage: %s SUBJECT ITERS; subjects:", argv[0]);
		for (size_t i = 0; i < sizeof(subjects) / sizeof(*s); i++)
			fprintf(stderr, " %s", subjects[i].name);
		fprintf(stderr, "\n");
		return 2;
	}
#if !defined(APICOST_JEMALLOC) && !defined(APICOST_TCMALLOC) && \
	!defined(APICOST_MIMALLOC)
	a = kalloc_default(); /* kmalloc's backend too */
	kalloc_info_t info;
	kalloc_info(a, &info);
	printf("backend %s\n", info.name);
#endif
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s->run(iters);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		    (double)(t1.tv_nsec - t0.tv_nsec);
	printf("%s %.2f ns/pair\n", s->name, ns / (double)(iters + LIVE));
	return 0;
}

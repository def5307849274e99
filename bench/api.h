/*
 * api.h - the four calls every workload makes, bound at compile time to one
 * allocator interface.  Each executable compiles the workloads once with one
 * of these macros:
 *
 *   BENCH_API_KALLOC    kalloc_alloc / kalloc_free (sized) / kalloc_realloc
 *                       on the handle `a` (kalloc-bench itself);
 *   BENCH_API_MALLOC    malloc / posix_memalign / free / realloc, for plain
 *                       runs and LD_PRELOAD runs (kalloc-bench-malloc);
 *   BENCH_API_JEMALLOC  mallocx / dallocx / rallocx (kalloc-bench-jemalloc);
 *   BENCH_API_TCMALLOC  tc_malloc / tc_memalign / tc_free / tc_realloc;
 *   BENCH_API_MIMALLOC  mi_malloc / mi_malloc_aligned / mi_free / mi_realloc.
 *
 * The workload passes the size and alignment it allocated with to free and
 * realloc, as a kalloc user does; the direct interfaces ignore them where
 * their unsized call takes none (the "mallocx/dallocx", "tc_malloc/
 * tc_free" pairs).  `a` is NULL outside BENCH_API_KALLOC.
 */
#ifndef BENCH_API_H
#define BENCH_API_H

#include "bench.h"

/* What malloc-style interfaces align to without being asked. */
#define BENCH_MALLOC_ALIGN 16

#if defined(BENCH_API_KALLOC)

#define BENCH_API_NAME "kalloc"

static inline void *b_alloc(kalloc_t *a, size_t size, size_t align)
{
	kalloc_buf_t b;
	return kalloc_alloc(a, KALLOC_LAYOUT(size, align), 0, &b) ? NULL : b.ptr;
}

static inline void b_free(kalloc_t *a, void *p, size_t size, size_t align)
{
	kalloc_free(a, p, KALLOC_LAYOUT(size, align));
}

/* NULL on failure, with p still live. */
static inline void *b_realloc(kalloc_t *a, void *p, size_t old, size_t size,
			      size_t align)
{
	kalloc_buf_t b;
	return kalloc_realloc(a, p, KALLOC_LAYOUT(size, align),
			      KALLOC_LAYOUT(old, align), 0, &b) ? NULL : b.ptr;
}

#elif defined(BENCH_API_MALLOC)

#include <stdlib.h>
#define BENCH_API_NAME "malloc"

static inline void *b_alloc(kalloc_t *a, size_t size, size_t align)
{
	(void)a;
	if (align <= BENCH_MALLOC_ALIGN)
		return malloc(size);
	void *p;
	return posix_memalign(&p, align, size) ? NULL : p;
}

static inline void b_free(kalloc_t *a, void *p, size_t size, size_t align)
{
	(void)a, (void)size, (void)align;
	free(p);
}

/* Workloads only realloc blocks of alignment <= BENCH_MALLOC_ALIGN. */
static inline void *b_realloc(kalloc_t *a, void *p, size_t old, size_t size,
			      size_t align)
{
	(void)a, (void)old, (void)align;
	return realloc(p, size);
}

#elif defined(BENCH_API_JEMALLOC)

#include <jemalloc/jemalloc.h>
#define BENCH_API_NAME "jemalloc"

static inline int je_flags(size_t align)
{
	return align <= BENCH_MALLOC_ALIGN ? 0 : MALLOCX_ALIGN(align);
}

static inline void *b_alloc(kalloc_t *a, size_t size, size_t align)
{
	(void)a;
	return mallocx(size, je_flags(align));
}

static inline void b_free(kalloc_t *a, void *p, size_t size, size_t align)
{
	(void)a, (void)size;
	dallocx(p, je_flags(align));
}

static inline void *b_realloc(kalloc_t *a, void *p, size_t old, size_t size,
			      size_t align)
{
	(void)a, (void)old;
	return rallocx(p, size, je_flags(align));
}

#elif defined(BENCH_API_TCMALLOC)

#include <gperftools/tcmalloc.h>
#define BENCH_API_NAME "tcmalloc"

static inline void *b_alloc(kalloc_t *a, size_t size, size_t align)
{
	(void)a;
	return align <= BENCH_MALLOC_ALIGN ? tc_malloc(size)
					   : tc_memalign(align, size);
}

static inline void b_free(kalloc_t *a, void *p, size_t size, size_t align)
{
	(void)a, (void)size, (void)align;
	tc_free(p);
}

static inline void *b_realloc(kalloc_t *a, void *p, size_t old, size_t size,
			      size_t align)
{
	(void)a, (void)old, (void)align;
	return tc_realloc(p, size);
}

#elif defined(BENCH_API_MIMALLOC)

#include <mimalloc.h>
#define BENCH_API_NAME "mimalloc"

static inline void *b_alloc(kalloc_t *a, size_t size, size_t align)
{
	(void)a;
	return align <= BENCH_MALLOC_ALIGN ? mi_malloc(size)
					   : mi_malloc_aligned(size, align);
}

static inline void b_free(kalloc_t *a, void *p, size_t size, size_t align)
{
	(void)a, (void)size, (void)align;
	mi_free(p);
}

static inline void *b_realloc(kalloc_t *a, void *p, size_t old, size_t size,
			      size_t align)
{
	(void)a, (void)old, (void)align;
	return mi_realloc(p, size);
}

#else
#error "define one BENCH_API_* macro"
#endif

#endif /* BENCH_API_H */

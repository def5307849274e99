/*
 * bench.h - what the benchmark's parts share: workload parameters, the
 * workload table, a fast deterministic RNG, and allocation-free helpers.
 *
 * Invariant: nothing here allocates through the allocator under test.  The
 * workloads' own bookkeeping (slot arrays, queues) comes from mmap, so every
 * subject pays the same for it and a preloaded malloc sees only the
 * workload's own calls.
 */
#ifndef BENCH_H
#define BENCH_H

#include <kalloc.h> /* kalloc_t only, in the helpers that do not link it */

#include <stddef.h>
#include <stdint.h>

/* A workload's knobs; each workload documents which ones it reads. */
typedef struct bench_params {
	uint64_t ops;     /* operations (per thread for threaded workloads) */
	size_t live;      /* live blocks (per thread) */
	size_t min, max;  /* block sizes, bytes, inclusive */
	unsigned threads; /* worker threads */
	unsigned count;   /* workload-specific count: vectors, generations */
	uint64_t seed;    /* every subject replays the same sequence */
} bench_params_t;

typedef struct bench_workload {
	const char *name;
	const char *what; /* one line, for --help and the table header */
	/* 0 on success; -1 after printing why on stderr (a failed
	 * allocation or corrupted content: the subject is then broken). */
	int (*run)(kalloc_t *a, const bench_params_t *p);
	bench_params_t full, quick;
} bench_workload_t;

extern const bench_workload_t bench_workloads[];
extern const size_t bench_nworkloads;
const bench_workload_t *bench_find_workload(const char *name);

/* ---- helpers (common.c) ------------------------------------------------ */

uint64_t bench_now_ns(void);
/* A field of /proc/self/status in KiB ("VmHWM", "VmRSS"); 0 if absent. */
unsigned long bench_status_kb(const char *field);
/* Zeroed anonymous memory for bookkeeping; exits on failure. */
void *bench_map(size_t bytes);
void bench_unmap(void *p, size_t bytes);
/* Print "kalloc-bench: <workload>: <message>" on stderr; returns -1. */
int bench_fail(const char *workload, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- RNG: xorshift64*, one state per thread ----------------------------- */

static inline uint64_t bench_rng(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [lo, hi]. */
static inline size_t bench_range(uint64_t *s, size_t lo, size_t hi)
{
	unsigned __int128 m = (unsigned __int128)bench_rng(s) * (hi - lo + 1);
	return lo + (size_t)(m >> 64);
}

static inline uint64_t bench_seed(uint64_t seed, uint64_t stream)
{
	uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return z ? z : 1;
}

/*
 * Content tags: a block's first and last byte carry a tag derived from its
 * slot, written after allocation and checked before free, so a backend that
 * hands out overlapping or corrupted blocks fails the run instead of
 * winning it.
 */
static inline unsigned char bench_tag(size_t slot, size_t size)
{
	return (unsigned char)(0x5a ^ slot ^ (slot >> 8) ^ size);
}

static inline void bench_mark(void *p, size_t size, unsigned char tag)
{
	unsigned char *b = p;
	b[0] = tag;
	b[size - 1] = tag;
}

static inline int bench_marked(const void *p, size_t size, unsigned char tag)
{
	const unsigned char *b = p;
	return b[0] == tag && b[size - 1] == tag;
}

#endif /* BENCH_H */

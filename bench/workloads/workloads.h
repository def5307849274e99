/*
 * workloads.h - shared by the workload files (not by the driver).
 */
#ifndef BENCH_WORKLOADS_H
#define BENCH_WORKLOADS_H

#include "../api.h"

/* The alignment workloads ask for when they do not test alignment: what a
 * C struct of words or a Rust Vec<u64> passes. */
#define WL_ALIGN 8
#define WL_PAGE 4096

/* A live block of a slot array. */
struct wl_slot {
	void *p;
	size_t size;
};

/*
 * The churn loop (churn.c): fill p->live slots with sizes in [min, max],
 * then p->ops times free a random slot and allocate it anew, checking
 * each block's tags before freeing it; free everything at the end.
 * `stream` picks this thread's random sequence.
 */
int wl_churn_loop(kalloc_t *a, const bench_params_t *p, uint64_t stream,
		  const char *name);

/* Run fn(arg_i) on n threads (n <= 16) and join them; -1 if any failed or
 * could not start. */
int wl_run_threads(unsigned n, int (*fn)(void *arg, unsigned i), void *arg,
		   const char *name);

/* Write one byte per page of [from, to) and the last byte; the value
 * depends on the offset only, so wl_check_grown can verify it. */
void wl_touch(unsigned char *b, size_t from, size_t to);
/* Bytes 0 and len-1 and the page samples of [0, len) hold what wl_touch
 * wrote. */
int wl_check_grown(const unsigned char *b, size_t len);

#define WL_DECLARE(fn) int fn(kalloc_t *a, const bench_params_t *p)
WL_DECLARE(wl_churn);
WL_DECLARE(wl_churn2t);
WL_DECLARE(wl_prodcons);
WL_DECLARE(wl_aligned2t);
WL_DECLARE(wl_larson);
WL_DECLARE(wl_realloc);
WL_DECLARE(wl_grow);
WL_DECLARE(wl_vectors);
WL_DECLARE(wl_large);
WL_DECLARE(wl_overhead);

#endif /* BENCH_WORKLOADS_H */

/*
 * The workload table: name, one-line description, full and --quick
 * parameters.  Every subject of a run gets the same parameters and seed.
 */
#include "workloads.h"

#include <string.h>

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)
#define SEED 0x6b616c6c6f63ULL

/*                       ops      live  min       max      thr cnt */
#define P(o, l, mn, mx, t, c) { (o), (l), (mn), (mx), (t), (c), SEED }

const bench_workload_t bench_workloads[] = {
	{ "churn", "1 thread replaces random 8-512 B blocks, 8192 live", wl_churn,
	  P(4000000, 8192, 8, 512, 1, 0), P(100000, 8192, 8, 512, 1, 0) },
	{ "churn2t", "2 threads each replace random 8-512 B blocks, 8192 live each",
	  wl_churn2t,
	  P(2000000, 8192, 8, 512, 2, 0), P(50000, 8192, 8, 512, 2, 0) },
	{ "prodcons", "producer allocates 8-512 B, consumer thread frees; <= 8192 in flight",
	  wl_prodcons,
	  P(2000000, 8192, 8, 512, 2, 0), P(50000, 8192, 8, 512, 2, 0) },
	{ "aligned2t", "2 threads replace 16-1024 B blocks aligned 16-4096, 1024 live each",
	  wl_aligned2t,
	  P(1000000, 1024, 16, 1024, 2, 0), P(25000, 1024, 16, 1024, 2, 0) },
	{ "larson", "larson server: 2 chains of 100 threads inherit 4096 blocks of 8-1000 B",
	  wl_larson,
	  P(2000000, 4096, 8, 1000, 2, 100), P(50000, 1024, 8, 1000, 2, 10) },
	{ "realloc", "1 thread resizes random blocks of 8-4096 B (mostly +1-64 B), 2048 live",
	  wl_realloc,
	  P(2000000, 2048, 8, 4096, 1, 0), P(50000, 2048, 8, 4096, 1, 0) },
	{ "grow", "one buffer doubling from 16 B to 1 GiB (quick: 16 MiB)", wl_grow,
	  P(0, 1, 16, 1 * GiB, 1, 0), P(0, 1, 16, 16 * MiB, 1, 0) },
	{ "vectors", "2000 vectors growing 1.5x from 16 B to 2 MiB, 16 at a time (quick: 40)",
	  wl_vectors,
	  P(0, 16, 16, 2 * MiB, 1, 2000), P(0, 16, 16, 2 * MiB, 1, 40) },
	{ "large", "64 live blocks of 64 KiB-4 MiB, 200000 replacements (quick: 5000)",
	  wl_large,
	  P(200000, 64, 64 * KiB, 4 * MiB, 1, 0), P(5000, 64, 64 * KiB, 4 * MiB, 1, 0) },
	{ "overhead", "the churn loop on 1024 live 8-512 B blocks: the API's own cost shows most",
	  wl_overhead,
	  P(4000000, 1024, 8, 512, 1, 0), P(100000, 1024, 8, 512, 1, 0) },
};

const size_t bench_nworkloads = sizeof(bench_workloads) / sizeof(bench_workloads[0]);

const bench_workload_t *bench_find_workload(const char *name)
{
	for (size_t i = 0; i < bench_nworkloads; i++)
		if (strcmp(bench_workloads[i].name, name) == 0)
			return &bench_workloads[i];
	return NULL;
}

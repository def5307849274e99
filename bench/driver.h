/*
 * driver.h - the parent side of kalloc-bench: subjects, their measurements,
 * and the reports made from them.
 */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include "bench.h"

#include <limits.h>
#include <stdio.h>

#define MAX_SUBJECTS 40
#define MAX_ROUNDS 101

/* The reference libraries, in column order. */
enum ref { REF_GLIBC, REF_JEMALLOC, REF_TCMALLOC, REF_MIMALLOC, NREFS };
extern const char *const ref_names[NREFS];

enum kind {
	K_API,     /* a kalloc backend through the kalloc API (kalloc-bench) */
	K_DIRECT,  /* a library's own API (kalloc-bench-LIB) */
	K_PLAIN,   /* the malloc program, glibc's malloc */
	K_PRELOAD, /* the malloc program, LD_PRELOAD=library */
	K_SHIM,    /* the malloc program, LD_PRELOAD=kalloc shim, KALLOC_BACKEND */
};

/* Rows are in two groups compared within themselves: what calls an
 * allocator API (kalloc or the library's own), and what calls malloc. */
enum group { G_API, G_MALLOC, NGROUPS };

struct subject {
	char label[128];  /* "slab", "direct:jemalloc", "preload:mimalloc", ... */
	enum kind kind;
	enum group group;
	int ref;          /* enum ref this row stands for as a reference, or -1 */
	char exe[PATH_MAX];
	char arg[PATH_MAX];    /* backend name or plugin path (K_API), else "-" */
	char preload[PATH_MAX];
	char backend[PATH_MAX]; /* KALLOC_BACKEND (K_SHIM) */
	const char *expect;    /* substring the malloc origin must contain */
	int available;
	char why[768];    /* when not available */
	char origin[512];
	char version[128];
};

struct measure {
	int n;                    /* rounds measured */
	double ns[MAX_ROUNDS];     /* wall clock */
	double cpu_ns[MAX_ROUNDS]; /* user + system, all threads */
	double hwm_kb[MAX_ROUNDS];
	double base_kb[MAX_ROUNDS];
	int failed;               /* a run crashed or failed: no more runs */
	char why[256];
};

struct run_config {
	int rounds, quick, direct, preload, timeout;
	int cpu; /* ratios and spreads on CPU time instead of wall time */
	unsigned long long seed;
	int have_seed;
	const char *only, *backends, *csv, *svg, *shim;
};

struct bench {
	struct run_config cfg;
	struct subject s[MAX_SUBJECTS];
	int ns;
	const bench_workload_t *w[32];
	int nw;
	struct measure m[32][MAX_SUBJECTS];
	char self_dir[PATH_MAX];
};

/* subjects.c */
/* Builds the subjects; -1 (after a message) when an argument does not fit,
 * never a silently cut name. */
int subjects_build(struct bench *b);
void subjects_probe(struct bench *b);
/* Runs one measurement of subject si on workload wi; fills *out on
 * success and returns 0, else returns -1 with why filled. */
struct sample {
	double ns, cpu_ns, hwm_kb, base_kb;
};
int subject_run(struct bench *b, int si, const bench_workload_t *w,
		int probe, struct sample *out, char *why, size_t whycap);

/* stats.c */
double median(const double *v, int n);
double spread(const double *v, int n); /* (max - min) / median */
/* The reference rows for workload wi of group g: ref_row[r] is the subject
 * index or -1; fallback[r] says a direct row stands in for a backend. */
void refs_for(const struct bench *b, int wi, enum group g, int ref_row[NREFS],
	      int fallback[NREFS]);
/* The times ratios are made of: wall, or CPU with --cpu. */
const double *metric(const struct bench *b, const struct measure *m);
double med_ns(const struct bench *b, int wi, int si);   /* of metric(); NAN if none */
double med_wall(const struct bench *b, int wi, int si);
double med_cpu(const struct bench *b, int wi, int si);
double med_hwm(const struct bench *b, int wi, int si);  /* NAN if none */
/* The smallest get() among the references of group g on workload wi. */
double best_ref(const struct bench *b, int wi, enum group g,
		double (*get)(const struct bench *, int, int));
double best_ref_ns(const struct bench *b, int wi, enum group g);
double best_ref_hwm(const struct bench *b, int wi, enum group g);

/* report.c */
void report_table(const struct bench *b, FILE *f);
int report_csv(const struct bench *b, const char *path);
/* svg.c */
int report_svg(const struct bench *b, const char *path);

#endif /* BENCH_DRIVER_H */

/*
 * Medians, spreads and the choice of reference rows.
 */
#include "driver.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double median(const double *v, int n)
{
	if (n <= 0)
		return NAN;
	double s[MAX_ROUNDS];
	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

double spread(const double *v, int n)
{
	if (n <= 0)
		return NAN;
	double lo = v[0], hi = v[0];
	for (int i = 1; i < n; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	double m = median(v, n);
	return m > 0 ? (hi - lo) / m : NAN;
}

static int measured(const struct bench *b, int wi, int si)
{
	return b->m[wi][si].n > 0 && !b->m[wi][si].failed;
}

const double *metric(const struct bench *b, const struct measure *m)
{
	return b->cfg.cpu ? m->cpu_ns : m->ns;
}

double med_ns(const struct bench *b, int wi, int si)
{
	const struct measure *m = &b->m[wi][si];
	return measured(b, wi, si) ? median(metric(b, m), m->n) : NAN;
}

double med_wall(const struct bench *b, int wi, int si)
{
	return measured(b, wi, si) ? median(b->m[wi][si].ns, b->m[wi][si].n) : NAN;
}

double med_cpu(const struct bench *b, int wi, int si)
{
	return measured(b, wi, si) ? median(b->m[wi][si].cpu_ns, b->m[wi][si].n)
				   : NAN;
}

double med_hwm(const struct bench *b, int wi, int si)
{
	return measured(b, wi, si) ? median(b->m[wi][si].hwm_kb, b->m[wi][si].n)
				   : NAN;
}

static int find(const struct bench *b, int wi, enum kind k, int ref)
{
	for (int si = 0; si < b->ns; si++)
		if (b->s[si].kind == k && b->s[si].ref == ref &&
		    measured(b, wi, si))
			return si;
	return -1;
}

/*
 * Group API: a reference is the library behind the matching kalloc backend
 * (glibc = libc); when that backend did not run, the library called
 * directly stands in (glibc's own malloc for glibc), flagged as fallback.
 * Group MALLOC: the malloc program, plain or with the library preloaded.
 */
void refs_for(const struct bench *b, int wi, enum group g, int ref_row[NREFS],
	      int fallback[NREFS])
{
	for (int r = 0; r < NREFS; r++) {
		fallback[r] = 0;
		if (g == G_MALLOC) {
			ref_row[r] = find(b, wi, r == REF_GLIBC ? K_PLAIN : K_PRELOAD, r);
			continue;
		}
		ref_row[r] = find(b, wi, K_API, r);
		if (ref_row[r] < 0) {
			ref_row[r] = find(b, wi, r == REF_GLIBC ? K_PLAIN : K_DIRECT, r);
			fallback[r] = ref_row[r] >= 0;
		}
	}
}

double best_ref(const struct bench *b, int wi, enum group g,
		double (*get)(const struct bench *, int, int))
{
	int row[NREFS], fb[NREFS];
	refs_for(b, wi, g, row, fb);
	double best = NAN;
	for (int r = 0; r < NREFS; r++) {
		if (row[r] < 0)
			continue;
		double v = get(b, wi, row[r]);
		if (isnan(best) || v < best)
			best = v;
	}
	return best;
}

double best_ref_ns(const struct bench *b, int wi, enum group g)
{
	return best_ref(b, wi, g, med_ns);
}

double best_ref_hwm(const struct bench *b, int wi, enum group g)
{
	return best_ref(b, wi, g, med_hwm);
}

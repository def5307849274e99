/*
 * The readable table (stdout) and the CSV file.  Every number comes from
 * struct measure; a value that was not measured prints as "-".
 */
#include "driver.h"

#include <math.h>
#include <string.h>

static const char *const kind_names[] = { "kalloc", "direct", "plain",
					  "preload", "shim" };
static const char *const group_names[] = { "kalloc API and library APIs",
					   "malloc program (plain / LD_PRELOAD)" };

static void cell(FILE *f, int width, double v, const char *fmt)
{
	if (isnan(v))
		fprintf(f, "%*s", width, "-");
	else
		fprintf(f, fmt, width, v);
}

static double ratio(double a, double b)
{
	return isnan(a) || isnan(b) || b <= 0 ? NAN : a / b;
}

static void group_rows(const struct bench *b, FILE *f, int wi, enum group g)
{
	int row[NREFS], fb[NREFS];
	refs_for(b, wi, g, row, fb);
	int any = 0;
	for (int si = 0; si < b->ns; si++)
		any |= b->s[si].group == g && b->s[si].available;
	if (!any)
		return;
	fprintf(f, "  -- %s; references:", group_names[g]);
	for (int r = 0; r < NREFS; r++)
		fprintf(f, " %s=%s%s", ref_names[r],
			row[r] >= 0 ? b->s[row[r]].label : "(none)",
			fb[r] ? "*" : "");
	fprintf(f, "\n");
	double best_t = best_ref_ns(b, wi, g), best_m = best_ref_hwm(b, wi, g);
	for (int si = 0; si < b->ns; si++) {
		const struct subject *s = &b->s[si];
		const struct measure *m = &b->m[wi][si];
		if (s->group != g || !s->available)
			continue;
		fprintf(f, "  %-18s", s->label);
		if (m->failed) {
			fprintf(f, " FAILED: %s\n", m->why);
			continue;
		}
		double t = med_ns(b, wi, si), mem = med_hwm(b, wi, si);
		cell(f, 10, med_wall(b, wi, si) / 1e6, "%*.2f");
		cell(f, 10, med_cpu(b, wi, si) / 1e6, "%*.2f");
		cell(f, 7, spread(metric(b, m), m->n) * 100, "%*.1f");
		fprintf(f, "%%");
		cell(f, 9, mem / 1024, "%*.1f");
		fprintf(f, " |");
		for (int r = 0; r < NREFS; r++)
			cell(f, 10, row[r] >= 0 ? ratio(t, med_ns(b, wi, row[r])) : NAN,
			     "%*.2f");
		cell(f, 8, ratio(t, best_t), "%*.2f");
		fprintf(f, " |");
		cell(f, 9, ratio(mem, best_m), "%*.2f");
		fprintf(f, "\n");
	}
}

/* kalloc row si and the row it is the overhead over, or -1. */
static int partner(const struct bench *b, int si)
{
	const struct subject *s = &b->s[si];
	int ref = -1;
	enum kind want;
	if (s->kind == K_API) {
		ref = s->ref;
		want = ref == REF_GLIBC ? K_PLAIN : K_DIRECT;
	} else if (s->kind == K_SHIM) {
		for (int r = 0; r < NREFS; r++)
			if (strcmp(s->backend, r == REF_GLIBC ? "libc" : ref_names[r]) == 0)
				ref = r;
		want = ref == REF_GLIBC ? K_PLAIN : K_PRELOAD;
	} else {
		return -1;
	}
	if (ref < 0)
		return -1;
	for (int i = 0; i < b->ns; i++)
		if (b->s[i].kind == want && b->s[i].ref == ref && b->s[i].available)
			return i;
	return -1;
}

static int colw(const char *name)
{
	int n = (int)strlen(name) + 1;
	return n < 9 ? 9 : n;
}

static void overhead_matrix(const struct bench *b, FILE *f)
{
	int pairs = 0;
	for (int si = 0; si < b->ns; si++)
		pairs += b->s[si].available && partner(b, si) >= 0;
	fprintf(f, "\n== overhead: the kalloc layer vs the same library without "
		"it (time ratio; issue 5/6 target <= 1.05)\n");
	if (!pairs) {
		fprintf(f, "  (no pair measurable: needs a kalloc backend and its "
			"library's direct or preload row)\n");
		return;
	}
	fprintf(f, "  %-40s", "pair");
	for (int wi = 0; wi < b->nw; wi++)
		fprintf(f, "%*s", colw(b->w[wi]->name), b->w[wi]->name);
	fprintf(f, "\n");
	for (int si = 0; si < b->ns; si++) {
		int pi = b->s[si].available ? partner(b, si) : -1;
		if (pi < 0)
			continue;
		for (int cpu = 0; cpu < 2; cpu++) {
			double (*get)(const struct bench *, int, int) =
				cpu ? med_cpu : med_wall;
			char name[96];
			snprintf(name, sizeof(name), "%s / %s %s", b->s[si].label,
				 b->s[pi].label, cpu ? "(cpu)" : "(wall)");
			fprintf(f, "  %-40s", name);
			for (int wi = 0; wi < b->nw; wi++)
				cell(f, colw(b->w[wi]->name),
				     ratio(get(b, wi, si), get(b, wi, pi)), "%*.2f");
			fprintf(f, "\n");
		}
	}
}

/* One summary: rows x workloads of get() / the best reference's get(). */
static void summary_matrix(const struct bench *b, FILE *f, const char *what,
			   double (*get)(const struct bench *, int, int))
{
	fprintf(f, "\n== %s vs the best reference of the row's group "
		"(1.00 = as good as the best of glibc/jemalloc/tcmalloc/mimalloc; "
		"lower is better)\n", what);
	fprintf(f, "  %-18s", "subject");
	for (int wi = 0; wi < b->nw; wi++)
		fprintf(f, "%*s", colw(b->w[wi]->name), b->w[wi]->name);
	fprintf(f, "\n");
	for (int si = 0; si < b->ns; si++) {
		const struct subject *s = &b->s[si];
		if (!s->available)
			continue;
		fprintf(f, "  %-18s", s->label);
		for (int wi = 0; wi < b->nw; wi++) {
			double v = ratio(get(b, wi, si),
					 best_ref(b, wi, s->group, get));
			cell(f, colw(b->w[wi]->name), v, "%*.2f");
		}
		fprintf(f, "\n");
	}
}

void report_table(const struct bench *b, FILE *f)
{
	fprintf(f, "kalloc-bench: median of %d round%s per subject, each run in "
		"a fresh process, subjects interleaved%s\n", b->cfg.rounds,
		b->cfg.rounds == 1 ? "" : "s",
		b->cfg.quick ? " (--quick: small sizes, not for conclusions)" : "");
	fprintf(f, "wall ms, cpu ms (user+system, all threads) and peak MiB "
		"(VmHWM) are medians; ratios use %s time: spread = (max-min)/"
		"median; xREF = time / REF's time; xbest = time / fastest "
		"reference; rss/best = peak / smallest reference peak; "
		"* = library called directly, its kalloc backend not measured\n",
		b->cfg.cpu ? "cpu" : "wall");
	int skipped = 0;
	for (int si = 0; si < b->ns; si++)
		if (!b->s[si].available) {
			if (!skipped++)
				fprintf(f, "\nnot measured:\n");
			fprintf(f, "  %-18s %s\n", b->s[si].label, b->s[si].why);
		}
	for (int wi = 0; wi < b->nw; wi++) {
		fprintf(f, "\n== %s: %s\n", b->w[wi]->name, b->w[wi]->what);
		fprintf(f, "  %-18s%10s%10s%8s%9s |", "subject", "wall ms",
			"cpu ms", "spread", "peak MiB");
		for (int r = 0; r < NREFS; r++) {
			char h[16];
			snprintf(h, sizeof(h), "x%s", ref_names[r]);
			fprintf(f, "%10s", h);
		}
		fprintf(f, "%8s |%9s\n", "xbest", "rss/best");
		for (int g = 0; g < NGROUPS; g++)
			group_rows(b, f, wi, (enum group)g);
	}
	overhead_matrix(b, f);
	/* both clocks: on a busy machine they disagree, and how much says how
	 * far to trust either */
	summary_matrix(b, f, "wall time", med_wall);
	summary_matrix(b, f, "CPU time", med_cpu);
	summary_matrix(b, f, "peak RSS", med_hwm);
}

/* CSV field: quoted when it holds a comma, quote or newline. */
static void field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

static void num(FILE *f, double v, const char *fmt)
{
	fputc(',', f);
	if (!isnan(v))
		fprintf(f, fmt, v);
}

int report_csv(const struct bench *b, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "workload,subject,kind,group,rounds,median_wall_ms,"
		"median_cpu_ms,ratio_metric,spread,peak_mib,base_mib,x_glibc,"
		"x_jemalloc,x_tcmalloc,x_mimalloc,x_best,rss_x_best,status,"
		"wall_ms,cpu_ms,origin,version\n");
	for (int wi = 0; wi < b->nw; wi++) {
		for (int si = 0; si < b->ns; si++) {
			const struct subject *s = &b->s[si];
			const struct measure *m = &b->m[wi][si];
			int row[NREFS], fb[NREFS];
			refs_for(b, wi, s->group, row, fb);
			double t = med_ns(b, wi, si), mem = med_hwm(b, wi, si);
			field(f, b->w[wi]->name);
			fputc(',', f);
			field(f, s->label);
			fprintf(f, ",%s,%s,%d", kind_names[s->kind],
				s->group == G_API ? "api" : "malloc", m->n);
			num(f, med_wall(b, wi, si) / 1e6, "%.3f");
			num(f, med_cpu(b, wi, si) / 1e6, "%.3f");
			fprintf(f, ",%s", b->cfg.cpu ? "cpu" : "wall");
			num(f, spread(metric(b, m), m->n), "%.4f");
			num(f, mem / 1024, "%.2f");
			num(f, m->n ? median(m->base_kb, m->n) / 1024 : NAN, "%.2f");
			for (int r = 0; r < NREFS; r++)
				num(f, row[r] >= 0 ? ratio(t, med_ns(b, wi, row[r])) : NAN,
				    "%.4f");
			num(f, ratio(t, best_ref_ns(b, wi, s->group)), "%.4f");
			num(f, ratio(mem, best_ref_hwm(b, wi, s->group)), "%.4f");
			fputc(',', f);
			char status[900];
			if (!s->available)
				snprintf(status, sizeof(status), "not available: %s",
					 s->why);
			else if (m->failed)
				snprintf(status, sizeof(status), "failed: %s", m->why);
			else
				snprintf(status, sizeof(status), "ok");
			field(f, status);
			fputc(',', f);
			for (int k = 0; k < 2; k++) {
				const double *v = k ? m->cpu_ns : m->ns;
				char times[MAX_ROUNDS * 16] = "";
				for (int i = 0; i < m->n; i++) {
					size_t len = strlen(times);
					snprintf(times + len, sizeof(times) - len,
						 "%s%.3f", i ? ";" : "", v[i] / 1e6);
				}
				field(f, times);
				fputc(',', f);
			}
			field(f, s->origin);
			fputc(',', f);
			field(f, s->version);
			fputc('\n', f);
		}
	}
	return fclose(f) ? -1 : 0;
}

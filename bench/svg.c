/*
 * The SVG chart: for every workload, one horizontal bar per measured
 * subject, its median time divided by the fastest reference of its group,
 * on a log2 axis centred on 1.0 (left of the line: faster than the best
 * reference).  Plain SVG 1.1 text, no dependencies.
 */
#include "driver.h"

#include <math.h>
#include <string.h>

#define WIDTH 960
#define LABEL_W 190
#define PLOT_X0 (LABEL_W + 10)
#define PLOT_X1 (WIDTH - 70)
#define BAR_H 14
#define BAR_GAP 4
#define HEAD_H 26

static const char *const palette[] = {
	"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
	"#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
};

/* One colour per allocator, whichever way it is reached; the way shows
 * in the opacity (kalloc API solid, direct and preload lighter). */
static const char *colour(const struct subject *s)
{
	static const char *const names[] = { "libc", "jemalloc", "tcmalloc",
					     "mimalloc", "slab", "page", "kv" };
	const char *name = s->kind == K_API ? s->arg
			 : s->kind == K_SHIM ? s->backend
			 : s->ref >= 0 ? ref_names[s->ref] : "";
	if (strcmp(name, "glibc") == 0)
		name = "libc";
	size_t n = sizeof(palette) / sizeof(palette[0]);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return palette[i];
	size_t h = 0;
	for (; *name; name++)
		h = h * 31 + (unsigned char)*name;
	return palette[7 + h % (n - 7)];
}

static double opacity(const struct subject *s)
{
	return s->kind == K_API ? 1.0 : s->kind == K_SHIM ? 0.8
	     : s->kind == K_DIRECT ? 0.65 : 0.45;
}

static void text_escaped(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static double value(const struct bench *b, int wi, int si)
{
	double best = best_ref_ns(b, wi, b->s[si].group);
	double t = med_ns(b, wi, si);
	return isnan(best) || isnan(t) || best <= 0 ? NAN : t / best;
}

int report_svg(const struct bench *b, const char *path)
{
	/* the axis covers every ratio, and at least 0.5 .. 2 */
	double lo = 0.5, hi = 2;
	int bars = 0;
	for (int wi = 0; wi < b->nw; wi++)
		for (int si = 0; si < b->ns; si++) {
			double v = value(b, wi, si);
			if (isnan(v))
				continue;
			bars++;
			lo = fmin(lo, v);
			hi = fmax(hi, v);
		}
	double llo = floor(log2(lo)), lhi = ceil(log2(hi));
	int height = 56 + b->nw * (HEAD_H + 6) + bars * (BAR_H + BAR_GAP) + 30;

	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
#define X(v) (PLOT_X0 + (log2(v) - llo) / (lhi - llo) * (PLOT_X1 - PLOT_X0))
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
		"font-size=\"12\">\n", WIDTH, height, WIDTH, height);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">"
		"kalloc-bench: median %s time / fastest reference (log scale; "
		"left of 1 = faster)</text>\n", b->cfg.cpu ? "CPU" : "wall-clock");
	fprintf(f, "<text x=\"10\" y=\"40\" fill=\"#555\">%d round%s%s; "
		"references: glibc, jemalloc, tcmalloc, mimalloc of the row's group"
		"</text>\n", b->cfg.rounds, b->cfg.rounds == 1 ? "" : "s",
		b->cfg.quick ? ", --quick sizes" : "");

	int top = 56;
	int y_end = top + b->nw * (HEAD_H + 6) + bars * (BAR_H + BAR_GAP);
	/* grid: powers of two, and the 1.0 line on top */
	for (double e = llo; e <= lhi; e++) {
		double v = exp2(e), x = X(v);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
			"stroke=\"#ccc\" stroke-width=\"1\"/>\n", x, top, x, y_end);
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" "
			"fill=\"#555\">%g</text>\n", x, y_end + 16, v);
	}
	fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
		"stroke=\"#c00\" stroke-width=\"1.5\"/>\n", X(1.0), top, X(1.0), y_end);
	int y = top;
	for (int wi = 0; wi < b->nw; wi++) {
		int n = 0;
		for (int si = 0; si < b->ns; si++)
			n += !isnan(value(b, wi, si));
		fprintf(f, "<text x=\"10\" y=\"%d\" font-weight=\"bold\">", y + 18);
		text_escaped(f, b->w[wi]->name);
		fprintf(f, "</text>\n");
		if (!n)
			fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#555\">no reference "
				"measured</text>\n", PLOT_X0, y + 18);
		y += HEAD_H;
		for (int si = 0; si < b->ns; si++) {
			double v = value(b, wi, si);
			if (isnan(v))
				continue;
			double x1 = X(1.0), xv = X(v);
			double x = fmin(x1, xv), w = fmax(fabs(xv - x1), 1.0);
			fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
				LABEL_W, y + BAR_H - 3);
			text_escaped(f, b->s[si].label);
			fprintf(f, "</text>\n<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" "
				"height=\"%d\" fill=\"%s\" fill-opacity=\"%.2f\"/>\n",
				x, y, w, BAR_H, colour(&b->s[si]), opacity(&b->s[si]));
			fprintf(f, "<text x=\"%.1f\" y=\"%d\" fill=\"#333\">%.2f</text>\n",
				fmax(x1, xv) + 4, y + BAR_H - 3, v);
			y += BAR_H + BAR_GAP;
		}
		y += 6;
	}
	fprintf(f, "</svg>\n");
#undef X
	return fclose(f) ? -1 : 0;
}

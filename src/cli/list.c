/*
 * kalloc list [--names] [-v]: the backends found in the plugin path, each
 * loaded to read what it declares; those that fail to load, with why.
 */
#include "cli.h"

#include <kalloc.h>

#include <getopt.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
	"usage: kalloc list [--names] [-v]\n"
	"\n"
	"List the backends found in the plugin path (KALLOC_PLUGIN_PATH, then\n"
	"the installed plugin directory), each with its version, the flags it\n"
	"honors, its largest alignment and size; a backend that fails to load\n"
	"is listed with the reason.\n"
	"\n"
	"      --names    only the names of the backends that load, one a line\n"
	"  -v, --verbose  also each backend's description and plugin file\n"
	"  -h, --help     this help\n";

struct listing {
	bool names, verbose;
	int loaded, failed;
};

static const struct {
	kalloc_flags_t bit;
	const char *name;
} flag_names[] = {
	{ KALLOC_ZERO, "ZERO" },       { KALLOC_NOWARN, "NOWARN" },
	{ KALLOC_NOWAIT, "NOWAIT" },   { KALLOC_ATOMIC, "ATOMIC" },
	{ KALLOC_ACCOUNT, "ACCOUNT" }, { KALLOC_HIGHMEM, "HIGHMEM" },
};

static void flags_text(kalloc_flags_t f, char *buf, size_t cap)
{
	size_t n = 0;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
		if ((f & flag_names[i].bit) && n < cap)
			n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "",
					      flag_names[i].name);
	if (!buf[0])
		snprintf(buf, cap, "-");
}

/* "4 KiB", "1 GiB", "8.0 EiB" (not a whole number of units). */
static void size_text(size_t v, char *buf, size_t cap)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB",
					    "PiB", "EiB" };
	int u = 0;
	size_t whole = v;
	while (u < 6 && whole >= 1024 && whole % 1024 == 0) {
		whole /= 1024;
		u++;
	}
	if (whole < 1024) {
		snprintf(buf, cap, "%zu %s", whole, unit[u]);
		return;
	}
	double d = (double)v;
	for (u = 0; u < 6 && d >= 1024; u++)
		d /= 1024;
	snprintf(buf, cap, "%.1f %s", d, unit[u]);
}

/* Longest version shown; a longer one ends in "..." (-v shows it whole). */
#define VERSION_MAX 48
#define MAX_ROWS 64

/* One backend's line, kept until every column's width is known. */
struct row {
	char name[72];
	char version[VERSION_MAX + 1];
	char flags[96], align[32], size[32];
	const char *err; /* NULL: loaded */
	char err_text[512];
	char description[160];
	char path[PATH_MAX];
};

static struct row rows[MAX_ROWS];

/* Copies s into buf (cap > 3), ending it in "..." when it does not fit. */
static void clipped(char *buf, size_t cap, const char *s)
{
	if (strlen(s) < cap) {
		snprintf(buf, cap, "%s", s);
		return;
	}
	snprintf(buf, cap, "%.*s...", (int)(cap - 4), s);
}

static void collect(const char *name, const kalloc_info_t *info,
		    const char *err, void *ctx)
{
	struct listing *l = ctx;
	if (l->loaded + l->failed >= MAX_ROWS)
		return;
	struct row *r = &rows[l->loaded + l->failed];
	snprintf(r->name, sizeof(r->name), "%s", name);
	if (!info) {
		l->failed++;
		snprintf(r->err_text, sizeof(r->err_text), "%s", err);
		r->err = r->err_text;
		return;
	}
	l->loaded++;
	clipped(r->version, sizeof(r->version), info->version);
	flags_text(info->flags, r->flags, sizeof(r->flags));
	size_text(info->max_align, r->align, sizeof(r->align));
	size_text(info->max_size, r->size, sizeof(r->size));
	snprintf(r->description, sizeof(r->description), "%s",
		 info->description);
	snprintf(r->path, sizeof(r->path), "%s", info->path);
	if (l->verbose && strlen(info->version) > VERSION_MAX)
		snprintf(r->description, sizeof(r->description), "%s (version %s)",
			 info->description, info->version);
}

static int widest(int w, const char *s)
{
	int n = (int)strlen(s);
	return n > w ? n : w;
}

/* The table, every column as wide as its longest entry. */
static void print_rows(const struct listing *l)
{
	int n = l->loaded + l->failed;
	int wn = (int)strlen("BACKEND"), wv = (int)strlen("VERSION"),
	    wf = (int)strlen("FLAGS HONORED"), wa = (int)strlen("MAX ALIGN");
	for (int i = 0; i < n; i++) {
		wn = widest(wn, rows[i].name);
		if (rows[i].err)
			continue;
		wv = widest(wv, rows[i].version);
		wf = widest(wf, rows[i].flags);
		wa = widest(wa, rows[i].align);
	}
	if (!l->names)
		printf("%-*s  %-*s  %-*s  %-*s  %s\n", wn, "BACKEND", wv,
		       "VERSION", wf, "FLAGS HONORED", wa, "MAX ALIGN",
		       "MAX SIZE");
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		if (l->names) {
			if (!r->err)
				printf("%s\n", r->name);
			continue;
		}
		if (r->err) {
			printf("%-*s  failed to load: %s\n", wn, r->name, r->err);
			continue;
		}
		printf("%-*s  %-*s  %-*s  %-*s  %s\n", wn, r->name, wv, r->version,
		       wf, r->flags, wa, r->align, r->size);
		if (l->verbose)
			printf("%-*s  %s\n%-*s  %s\n", wn, "", r->description, wn,
			       "", r->path);
	}
}

int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "names", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct listing l = { 0 };
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		if (c == 'n')
			l.names = true;
		else if (c == 'v')
			l.verbose = true;
		else if (c == 'h')
			return cli_help(help);
		else
			return cli_usage_error("list", "unknown option '%s'; valid: "
					       "--names, -v, --help",
					       argv[optind - 1]);
	}
	if (optind < argc)
		return cli_usage_error("list", "unexpected argument '%s'; it takes "
				       "no arguments", argv[optind]);

	/* jemalloc loads only with static TLS room, set before start-up. */
	if (env_add_static_tls()) {
		fflush(stdout);
		execv("/proc/self/exe", cli_argv);
		/* could not re-execute: list anyway, jemalloc may fail */
	}
	int found = kalloc_list(collect, &l);
	print_rows(&l);
	if (found == 0) {
		fprintf(stderr, "kalloc list: no backends found; searched %s "
			"(set KALLOC_PLUGIN_PATH to a directory of kalloc-NAME.so)\n",
			kalloc_plugin_path());
		return 1;
	}
	return 0;
}

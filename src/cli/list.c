/*
 * kalloc list [--names] [-v]: the backends found in the plugin path, each
 * loaded to read what it declares; those that fail to load, with why.
 */
#include "cli.h"

#include <kalloc.h>

#include <getopt.h>
#include <stdint.h>
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

static void row(const char *name, const kalloc_info_t *info, const char *err,
		void *ctx)
{
	struct listing *l = ctx;
	if (!info) {
		l->failed++;
		if (!l->names)
			printf("%-10s failed to load: %s\n", name, err);
		return;
	}
	l->loaded++;
	if (l->names) {
		printf("%s\n", name);
		return;
	}
	char flags[96], align[32], size[32];
	flags_text(info->flags, flags, sizeof(flags));
	size_text(info->max_align, align, sizeof(align));
	size_text(info->max_size, size, sizeof(size));
	printf("%-10s %-16s %-34s %-9s %s\n", name, info->version, flags, align,
	       size);
	if (l->verbose)
		printf("%-10s %s\n%-10s %s\n", "", info->description, "",
		       info->path);
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
	if (!l.names)
		printf("%-10s %-16s %-34s %-9s %s\n", "BACKEND", "VERSION",
		       "FLAGS HONORED", "MAX ALIGN", "MAX SIZE");
	int found = kalloc_list(row, &l);
	if (found == 0) {
		fprintf(stderr, "kalloc list: no backends found; searched %s "
			"(set KALLOC_PLUGIN_PATH to a directory of kalloc-NAME.so)\n",
			kalloc_plugin_path());
		return 1;
	}
	return 0;
}

/*
 * kalloc: run programs on libkalloc backends, list and check backends,
 * compare them.  A client of the public API (<kalloc.h>) only.
 */
#include "cli.h"

#include <kalloc.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

char **cli_argv;

static const char help[] =
	"usage: kalloc COMMAND [ARGS...]\n"
	"\n"
	"The Linux kernel's allocation model on any allocator.  Commands:\n"
	"\n"
	"  run [-b BACKEND] [--stats[=json|slabinfo]] -- PROGRAM [ARGS...]\n"
	"                run PROGRAM with its malloc and new on BACKEND\n"
	"  list          the backends found, with what each declares\n"
	"  conform [BACKEND|PLUGIN.so ...|--all]\n"
	"                check backends against the guarantees G1-G17\n"
	"  bench [ARGS]  compare the backends and reference allocators\n"
	"  help [COMMAND]\n"
	"                this help, or a command's\n"
	"\n"
	"`kalloc COMMAND --help` describes each.  Backends are found in\n"
	"KALLOC_PLUGIN_PATH, then in the installed plugin directory.\n";

static const struct {
	const char *name;
	int (*fn)(int, char **);
} commands[] = {
	{ "run", cmd_run },
	{ "list", cmd_list },
	{ "conform", cmd_conform },
	{ "bench", cmd_bench },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

int cli_help(const char *text)
{
	fputs(text, stdout);
	return 0;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "kalloc %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (kalloc %s --help)\n", cmd);
	va_end(ap);
	return EXIT_USAGE;
}

static int unknown(const char *what)
{
	fprintf(stderr, "kalloc: unknown command '%s'; valid commands: run, "
		"list, conform, bench, help (kalloc --help)\n", what);
	return EXIT_USAGE;
}

static int find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return (int)i;
	return -1;
}

int main(int argc, char **argv)
{
	cli_argv = argv;
	cli_init();
	if (argc < 2) {
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
		return cli_help(help);
	if (!strcmp(cmd, "--version")) {
		printf("kalloc " KALLOC_VERSION_STRING "\n");
		return 0;
	}
	if (!strcmp(cmd, "help")) {
		if (argc < 3)
			return cli_help(help);
		int i = find(argv[2]);
		if (i < 0)
			return unknown(argv[2]);
		char *args[] = { argv[2], "--help", NULL };
		return commands[i].fn(2, args);
	}
	int i = find(cmd);
	if (i < 0)
		return unknown(cmd);
	return commands[i].fn(argc - 1, argv + 1);
}

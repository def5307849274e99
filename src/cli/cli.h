/* The `kalloc` command: shared declarations of its subcommands. */
#ifndef KALLOC_CLI_H
#define KALLOC_CLI_H

#include <stdbool.h>
#include <stddef.h>

/* Exit statuses (as the shells use them). */
#define EXIT_USAGE 2     /* bad command line */
#define EXIT_NOEXEC 126  /* found but could not be executed */
#define EXIT_NOTFOUND 127

/* The variable and value jemalloc's plugin needs: Debian builds it with
 * initial-exec TLS, which dlopen can load only with this much static TLS
 * surplus. */
#define STATIC_TLS_TUNABLE "glibc.rtld.optional_static_tls=16384"

/* The command line `kalloc` was started with (to re-execute itself). */
extern char **cli_argv;

/* Subcommands: argv[0] is the subcommand's name.  Return the exit status. */
int cmd_run(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_conform(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* locate.c: where the shim and the helper programs are. */

/* Prepares the environment every subcommand needs: when this `kalloc` is
 * the build tree's, KALLOC_PLUGIN_PATH defaults to the build's plugins. */
void cli_init(void);
/* Absolute path of libkalloc-shim.so into buf; false when it is nowhere,
 * with a message on stderr naming where it looked unless quiet. */
bool locate_shim(char *buf, size_t cap, bool quiet);
/* Absolute path of a helper program ("kalloc-conform", "kalloc-bench");
 * false if absent, with the places looked at in `looked`. */
bool locate_helper(const char *name, char *buf, size_t cap, char *looked,
		   size_t looked_cap);

/* env.c: editing the environment a program is started with. */

/* Adds STATIC_TLS_TUNABLE to GLIBC_TUNABLES (appended with ':') unless it
 * already sets glibc.rtld.optional_static_tls.  True if it changed. */
bool env_add_static_tls(void);
/* Prepends path to LD_PRELOAD unless it is already its first entry. */
void env_prepend_preload(const char *path);

/* Prints `text` (the subcommand's help) and returns 0. */
int cli_help(const char *text);
/* One line "kalloc CMD: ..." on stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

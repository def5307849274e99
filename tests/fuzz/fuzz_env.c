/*
 * Fuzz what libkalloc parses from strings: backend names and plugin paths
 * (kalloc_open), backend option strings (the plugin's init), and the
 * KALLOC_* environment variables (the core's options table, read through
 * kalloc__option_long and by the plugins at init).
 *
 * Promise checked: never crash, and every failure returns a kalloc_err code
 * with a non-empty kalloc_errmsg(); a handle that opens can allocate.
 *
 * The first input byte picks a target from `targets`; each target reads the
 * rest as NUL-separated fields.  A new parser joins by adding one row.
 *
 * The harness is linked with the core's sources, so it reaches the hidden
 * parser entry points (internal.h) directly.  Backends to open come from
 * KALLOC_FUZZ_BACKENDS (comma-separated; default "libc").  The core's log
 * lines for bad values are silenced unless KALLOC_FUZZ_VERBOSE is set.
 * Paths stay inside the plugin directories: '/' in fuzzed names and values
 * becomes '_', so no arbitrary file of the system is ever dlopen'ed.
 */
#include "internal.h"

#include "fuzz_input.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIELD 512
#define MAX_BACKENDS 16

/* KALLOC_* variables read by plugins at init (src/core/options.c). */
static const char *const plugin_vars[] = {
	"KALLOC_PAGE_GUARD", "KALLOC_PAGE_CACHE", "KALLOC_KV_THRESHOLD",
	"KALLOC_KV_SMALL", "KALLOC_SLAB_DECAY_MS",
};
#define NVARS (sizeof(plugin_vars) / sizeof(plugin_vars[0]))

static char backends[MAX_BACKENDS][64];
static size_t nbackends;
static int saved_stderr = -1; /* -1: verbose, stderr left alone */
static int devnull = -1;

__attribute__((noreturn, format(printf, 1, 2)))
static void broken(const char *fmt, ...)
{
	if (saved_stderr >= 0)
		dup2(saved_stderr, STDERR_FILENO);
	va_list ap;
	va_start(ap, fmt);
	fputs("fuzz_env: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static void quiet(bool on)
{
	if (saved_stderr >= 0)
		dup2(on ? devnull : saved_stderr, STDERR_FILENO);
}

/* No '/' in anything that may name a file. */
static void no_slash(char *s)
{
	for (; *s; s++)
		if (*s == '/')
			*s = '_';
}

static void check_error(int err, const char *what, const char *arg)
{
	if (err <= KALLOC_OK || err >= KALLOC_ERR_COUNT)
		broken("%s('%s') returned %d, not a kalloc_err failure code", what,
		       arg, err);
	if (!kalloc_errmsg()[0])
		broken("%s('%s') failed (%s) with an empty kalloc_errmsg()", what,
		       arg, kalloc_strerror(err));
}

/* Opens, uses and closes a backend; a failure must be explained. */
static void try_open(const char *name, const char *options)
{
	kalloc_t *a = NULL;
	quiet(true);
	int err = kalloc_open(name, options, &a);
	if (err) {
		quiet(false);
		check_error(err, "kalloc_open", name);
		return;
	}
	kalloc_info_t info;
	kalloc_info(a, &info);
	kalloc_buf_t b;
	err = kalloc_alloc(a, KALLOC_LAYOUT(100, 16), KALLOC_NOWARN, &b);
	if (err == KALLOC_OK) {
		memset(b.ptr, 0xa5, 100);
		kalloc_free(a, b.ptr, KALLOC_LAYOUT(100, 16));
	}
	kalloc_close(a);
	quiet(false);
	if (!info.name || !info.name[0])
		broken("kalloc_open('%s') gave a handle without a name", name);
	if (err)
		broken("backend '%s' opened with options '%s' but cannot allocate "
		       "100 bytes: %s", name, options ? options : "(null)",
		       kalloc_errmsg());
}

/* Fields after the first: "<selector byte><value>", one KALLOC_* each. */
static void set_vars(struct fuzz_input *in)
{
	char field[FIELD];
	while (fuzz_more(in)) {
		size_t len = fuzz_field(in, field, sizeof(field));
		if (!len)
			continue;
		no_slash(field);
		setenv(plugin_vars[(uint8_t)field[0] % NVARS], field + 1, 1);
	}
}

static void clear_vars(void)
{
	for (size_t i = 0; i < NVARS; i++)
		unsetenv(plugin_vars[i]);
}

/* An arbitrary backend name (no '/'), options from the next field. */
static void open_name(struct fuzz_input *in)
{
	char name[FIELD], options[FIELD];
	fuzz_field(in, name, sizeof(name));
	no_slash(name);
	bool null_opts = fuzz_u8(in) & 1;
	fuzz_field(in, options, sizeof(options));
	try_open(name, null_opts ? NULL : options);
}

/* A built backend with arbitrary options and KALLOC_* values. */
static void open_backend(struct fuzz_input *in)
{
	const char *name = backends[fuzz_u8(in) % nbackends];
	char options[FIELD];
	fuzz_field(in, options, sizeof(options));
	set_vars(in);
	try_open(name, options[0] == 1 ? NULL : options);
	clear_vars();
}

/* A file name inside one of the plugin directories. */
static void open_path(struct fuzz_input *in)
{
	const char *dirs = kalloc_plugin_path();
	size_t ndirs = 1;
	for (const char *p = dirs; *p; p++)
		ndirs += *p == ':';
	size_t pick = fuzz_u8(in) % ndirs;
	while (pick--)
		dirs = strchr(dirs, ':') + 1;
	size_t dlen = strcspn(dirs, ":");
	char file[FIELD], path[FIELD + 4096];
	fuzz_field(in, file, sizeof(file));
	no_slash(file);
	snprintf(path, sizeof(path), "%.*s/%s", (int)dlen, dirs, file);
	try_open(path, NULL);
}

/*
 * A numeric variable's value.  Whatever the text, the result is the default
 * or a number it spells; plain decimal text must give exactly its value.
 */
static void option_number(struct fuzz_input *in)
{
	const char *var = plugin_vars[fuzz_u8(in) % NVARS];
	long def = (int32_t)fuzz_u32(in);
	char value[FIELD];
	size_t len = fuzz_field(in, value, sizeof(value));
	setenv(var, value, 1);
	quiet(true);
	long got = kalloc__option_long(var, def);
	quiet(false);
	unsetenv(var);

	bool digits = len > 0 && len <= 18 && (value[0] != '0' || len == 1);
	bool any_digit = false;
	for (size_t i = 0; i < len; i++) {
		digits &= value[i] >= '0' && value[i] <= '9';
		any_digit |= value[i] >= '0' && value[i] <= '9';
	}
	if (digits && got != strtol(value, NULL, 10))
		broken("%s=%s read as %ld", var, value, got);
	if (!any_digit && got != def)
		broken("%s=%s (no digit) read as %ld, not the default %ld", var,
		       value, got, def);
}

struct target {
	const char *name;
	void (*run)(struct fuzz_input *in);
};

static const struct target targets[] = {
	{ "open-name", open_name },
	{ "open-backend", open_backend },
	{ "open-path", open_path },
	{ "option-number", option_number },
};
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *list = getenv("KALLOC_FUZZ_BACKENDS");
	if (!list || !*list)
		list = "libc";
	while (*list && nbackends < MAX_BACKENDS) {
		size_t n = strcspn(list, ",");
		if (n && n < sizeof(backends[0]))
			snprintf(backends[nbackends++], sizeof(backends[0]), "%.*s",
				 (int)n, list);
		list += n + (list[n] == ',');
	}
	if (!nbackends)
		broken("KALLOC_FUZZ_BACKENDS names no backend");
	clear_vars();
	kalloc_plugin_path(); /* fixed for the whole run, as in any process */
	if (!getenv("KALLOC_FUZZ_VERBOSE")) {
		saved_stderr = dup(STDERR_FILENO);
		devnull = open("/dev/null", O_WRONLY);
		if (saved_stderr < 0 || devnull < 0)
			broken("cannot set up the quiet mode");
	}
	for (size_t i = 0; i < nbackends; i++) {
		kalloc_t *a;
		if (kalloc_open(backends[i], NULL, &a))
			broken("backend '%s' does not open without options: %s",
			       backends[i], kalloc_errmsg());
		kalloc_close(a);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	if (!fuzz_more(&in))
		return 0;
	targets[fuzz_u8(&in) % NTARGETS].run(&in);
	return 0;
}

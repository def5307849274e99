/*
 * Fuzz what libkalloc parses from strings: backend names and plugin paths
 * (kalloc_open), option strings (split between the core and the plugin's
 * init), the KALLOC_* environment variables read at open (the plugins'
 * numbers through kalloc__option_long, KALLOC_STATS/LEAKS/DEBUG), the
 * KALLOC_FAIL syntax (kalloc_fail_config) and the debug letters.
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

/* KALLOC_* variables read whenever a backend opens (src/core/options.c):
 * the plugins' own, then the core's instrumentation. */
static const char *const open_vars[] = {
	"KALLOC_PAGE_GUARD", "KALLOC_PAGE_CACHE", "KALLOC_PAGE_HUGE",
	"KALLOC_KV_THRESHOLD", "KALLOC_SLAB_DECAY_MS", "KALLOC_KV_SMALL",
	"KALLOC_STATS",
	"KALLOC_LEAKS", "KALLOC_DEBUG",
};
#define NVARS (sizeof(open_vars) / sizeof(open_vars[0]))
#define NUMERIC_VARS 5 /* the first ones, read with kalloc__option_long */

/* Sanitizer runtimes: where reports go (kept on the real stderr). */
__attribute__((weak)) void __sanitizer_set_report_fd(void *fd);

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
		setenv(open_vars[(uint8_t)field[0] % NVARS], field + 1, 1);
	}
}

static void clear_vars(void)
{
	for (size_t i = 0; i < NVARS; i++)
		unsetenv(open_vars[i]);
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
	const char *var = open_vars[fuzz_u8(in) % NUMERIC_VARS];
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

/* KALLOC_FAIL's syntax: an unknown field (or one without ':') is refused. */
static void fail_config(struct fuzz_input *in)
{
	static const char *const names[] = { "probability", "interval", "times",
					     "space", "seed", "verbose" };
	char spec[FIELD];
	fuzz_field(in, spec, sizeof(spec));
	bool bad_name = false;
	for (const char *p = spec; *p;) {
		size_t len = strcspn(p, ","), name = strcspn(p, ":,");
		bool known = false;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			known |= strlen(names[i]) == name && !strncmp(names[i], p, name);
		bad_name |= name == len || !known;
		p += len + (p[len] == ',');
	}
	quiet(true);
	int err = kalloc_fail_config(spec);
	int off = kalloc_fail_config("");
	quiet(false);
	if (err && err != KALLOC_EINVAL)
		broken("kalloc_fail_config('%s') returned %d, not EINVAL", spec, err);
	if (err)
		check_error(err, "kalloc_fail_config", spec);
	if (bad_name && !err)
		broken("kalloc_fail_config('%s') accepted an unknown field", spec);
	if (off || kalloc_fail_count() != 0)
		broken("kalloc_fail_config(\"\") did not turn injection off");
}

/* KALLOC_DEBUG / debug=: the letters F Z P U (any case), or 1 for all. */
static void debug_letters(struct fuzz_input *in)
{
	char letters[FIELD];
	fuzz_field(in, letters, sizeof(letters));
	bool ok, all_known = true, any_foreign = false;
	for (const char *c = letters; *c; c++) {
		all_known &= strchr("FZPU", *c) != NULL;
		any_foreign |= !strchr("FZPUfzpu01-", *c);
	}
	kalloc__debug_parse(letters, &ok);
	if (all_known && !ok)
		broken("debug letters '%s' refused", letters);
	if (any_foreign && ok)
		broken("debug letters '%s' accepted", letters);
}

static size_t count_items(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p;) {
		size_t len = strcspn(p, ",");
		n += len > 0;
		p += len + (p[len] == ',');
	}
	return n;
}

static bool is_core_item(const char *p, size_t len)
{
	static const char *const keys[] = { "stats=", "leaks=", "debug=" };
	for (size_t i = 0; i < 3; i++)
		if (len >= 6 && !strncmp(p, keys[i], 6))
			return true;
	return false;
}

/* Every item of ok / core list must (not) be a core key. */
static void expect_items(const char *list, bool core, const char *opts)
{
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		if (len && is_core_item(p, len) != core)
			broken("options '%s': item '%.*s' went to the %s", opts,
			       (int)len, p, core ? "core" : "plugin");
		p += len + (p[len] == ',');
	}
}

/* kalloc_open's option string, split between the core and the plugin. */
static void options_split(struct fuzz_input *in)
{
	char opts[FIELD], plugin[128], core[64];
	size_t pcap = 8 + fuzz_u8(in) % (sizeof(plugin) - 8);
	size_t ccap = 8 + fuzz_u8(in) % (sizeof(core) - 8);
	fuzz_field(in, opts, sizeof(opts));
	if (!kalloc__options_split(opts, plugin, pcap, core, ccap)) {
		if (!kalloc_errmsg()[0])
			broken("options '%s' refused without a message", opts);
		return;
	}
	if (strlen(plugin) >= pcap || strlen(core) >= ccap)
		broken("options '%s' overflowed a buffer", opts);
	expect_items(plugin, false, opts);
	expect_items(core, true, opts);
	if (count_items(plugin) + count_items(core) != count_items(opts))
		broken("options '%s' split into '%s' and '%s': items lost", opts,
		       plugin, core);
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
	{ "fail-config", fail_config },
	{ "debug-letters", debug_letters },
	{ "options-split", options_split },
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
		if (__sanitizer_set_report_fd)
			__sanitizer_set_report_fd((void *)(intptr_t)saved_stderr);
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

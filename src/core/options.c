/*
 * Every KALLOC_* environment variable, in one table.  README.md's
 * "Environment" section mirrors this table; no other file calls getenv().
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct option {
	const char *name;
	const char *help;
};

static const struct option options[] = {
	{ "KALLOC_BACKEND", "default backend: a name or a plugin path (default slab, else libc)" },
	{ "KALLOC_PLUGIN_PATH", "':'-separated plugin directories searched before the installed one" },
	{ "KALLOC_STATS", "1: count calls and bytes per handle, print a table at exit; json: one JSON line; slabinfo: the rows as /proc/slabinfo" },
	{ "KALLOC_FAIL", "fault injection: probability:P,interval:N,times:T,space:B,seed:S,verbose:V,cache_filter:0|1" },
	{ "KALLOC_DEBUG", "debug letters: F free checks, Z red zones, P poison, U call sites" },
	{ "KALLOC_SLAB_DEBUG", "per-cache debug, the kernel's slab_debug: LETTERS[,cache...][;LETTERS,cache...] (letters F Z P U)" },
	{ "KALLOC_LEAKS", "1: list the blocks still allocated at exit, largest first" },
	{ "KALLOC_PAGE_GUARD", "page backend: 1 = a PROT_NONE page right after every block" },
	{ "KALLOC_PAGE_CACHE", "page backend: bytes of freed mappings kept for reuse" },
	{ "KALLOC_PAGE_HUGE", "page backend: blocks of this many bytes or more get transparent huge pages (default 8 MiB, 0 = never)" },
	{ "KALLOC_KV_THRESHOLD", "kv backend: largest size tried on the small backend only" },
	{ "KALLOC_KV_SMALL", "kv backend: the small backend's name (default slab, else libc)" },
	{ "KALLOC_KV_LARGE", "kv backend: sizes above it go to page first (default 0: none, page serves what the small backend fails)" },
	{ "KALLOC_SLAB_DECAY_MS", "slab backend: delay before empty slabs return to the OS" },
	{ "KALLOC_TOOLS", "0: slab and page do not describe their blocks to valgrind's memcheck or ASan (default: they do when the program runs under one)" },
};

static const struct option *find(const char *name)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

const char *kalloc__env(const char *name)
{
	if (!find(name)) {
		kalloc__log(NULL, "internal: %s is not in the options table", name);
		return NULL;
	}
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

long kalloc__option_long(const char *name, long def)
{
	const char *v = kalloc__env(name);
	if (!v)
		return def;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 0);
	if (errno || end == v || *end) {
		kalloc__log(NULL, "%s=%s is not a number; using %ld", name, v, def);
		return def;
	}
	return n;
}

/*
 * kalloc_open's option string: "stats=1", "leaks=1" and "debug=LETTERS" are
 * the core's; every other key=value goes to the plugin, in order.
 */
static bool is_core_key(const char *kv, size_t len)
{
	static const char *const keys[] = { "stats=", "leaks=", "debug=" };
	for (size_t i = 0; i < 3; i++)
		if (len >= strlen(keys[i]) && !strncmp(kv, keys[i], strlen(keys[i])))
			return true;
	return false;
}

bool kalloc__options_split(const char *opts, char *plugin, size_t pcap,
			   char *core, size_t ccap)
{
	size_t pn = 0, cn = 0;
	plugin[0] = core[0] = 0;
	for (const char *p = opts ? opts : ""; *p;) {
		size_t len = strcspn(p, ",");
		bool mine = is_core_key(p, len);
		char *dst = mine ? core : plugin;
		size_t *n = mine ? &cn : &pn, cap = mine ? ccap : pcap;
		if (len && *n + len + 2 > cap) {
			kalloc__error(KALLOC_EINVAL, "option string too long (max %zu)",
				      cap);
			return false;
		}
		if (len) {
			if (*n)
				dst[(*n)++] = ',';
			memcpy(dst + *n, p, len);
			*n += len;
			dst[*n] = 0;
		}
		p += len + (p[len] == ',');
	}
	return true;
}

/* ---- plugin options (host->options) ------------------------------------- */

/* Sets o from the value v[0..len); false if it is not valid for o. */
static bool set_value(const kalloc_plugin_option_t *o, const char *v,
		      size_t len)
{
	if (o->num) {
		char buf[32];
		if (len == 0 || len >= sizeof(buf))
			return false;
		memcpy(buf, v, len);
		buf[len] = 0;
		char *end;
		errno = 0;
		long n = strtol(buf, &end, 0);
		if (errno || *end || n < 0)
			return false;
		*o->num = n;
		return true;
	}
	if (len == 0 || len >= o->cap)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20)
			return false;
	memcpy(o->str, v, len);
	o->str[len] = 0;
	return true;
}

/* Sets errmsg: the plugin, what was wrong, and every valid key. */
static int bad_option(const char *plugin, const char *what, size_t what_len,
		      const kalloc_plugin_option_t *spec, size_t n)
{
	char *valid = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&valid, &size);
	for (size_t i = 0; f && i < n; i++) {
		fprintf(f, "%s%s=%s", i ? ", " : "", spec[i].key,
			spec[i].valid ? spec[i].valid : spec[i].num ? "N" : "NAME");
		if (spec[i].env)
			fprintf(f, " (or %s)", spec[i].env);
	}
	if (f)
		fclose(f);
	int err = kalloc__error(KALLOC_EINVAL,
				"backend '%s': invalid option '%.*s'; valid: %s "
				"(comma-separated)", plugin, (int)what_len, what,
				valid ? valid : "(no memory to list them)");
	free(valid);
	return err;
}

int kalloc__plugin_options(const char *plugin, const char *opts,
			   const kalloc_plugin_option_t *spec, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = spec[i].env ? kalloc__env(spec[i].env) : NULL;
		if (v && !set_value(&spec[i], v, strlen(v))) {
			char what[256];
			int len = snprintf(what, sizeof(what), "%s=%s", spec[i].env, v);
			return bad_option(plugin, what,
					  len < (int)sizeof(what) ? (size_t)len :
								    sizeof(what) - 1,
					  spec, n);
		}
	}
	for (const char *s = opts ? opts : ""; *s;) {
		size_t len = strcspn(s, ",");
		const char *eq = memchr(s, '=', len);
		size_t klen = eq ? (size_t)(eq - s) : len;
		const kalloc_plugin_option_t *o = NULL;
		for (size_t i = 0; eq && i < n && !o; i++)
			if (strlen(spec[i].key) == klen &&
			    memcmp(spec[i].key, s, klen) == 0)
				o = &spec[i];
		if (!o || !set_value(o, eq + 1, len - klen - 1))
			return bad_option(plugin, s, len, spec, n);
		s += len + (s[len] == ',');
	}
	return KALLOC_OK;
}

/*
 * Every KALLOC_* environment variable, in one table.  README.md's
 * "Environment" section mirrors this table; no other file calls getenv().
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct option {
	const char *name;
	const char *help;
};

static const struct option options[] = {
	{ "KALLOC_BACKEND", "default backend: a name or a plugin path (default libc)" },
	{ "KALLOC_PLUGIN_PATH", "':'-separated plugin directories searched before the installed one" },
	{ "KALLOC_PAGE_GUARD", "page backend: 1 = a PROT_NONE page right after every block" },
	{ "KALLOC_PAGE_CACHE", "page backend: bytes of freed mappings kept for reuse" },
	{ "KALLOC_KV_THRESHOLD", "kv backend: largest size tried on the small backend only" },
	{ "KALLOC_KV_SMALL", "kv backend: the small backend's name (default slab, else libc)" },
	{ "KALLOC_SLAB_DECAY_MS", "slab backend: delay before empty slabs return to the OS" },
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

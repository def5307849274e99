/*
 * Edits of the environment a program is started with: LD_PRELOAD and
 * GLIBC_TUNABLES are lists, so `kalloc` adds to them rather than replacing
 * what the user set.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* setenv("NAME", first + sep + rest); exits on failure (no memory). */
static void set_joined(const char *name, const char *first, const char *sep,
		       const char *rest)
{
	size_t len = strlen(first) + strlen(sep) + strlen(rest) + 1;
	char *v = malloc(len);
	if (!v) {
		fprintf(stderr, "kalloc: no memory for %s\n", name);
		exit(1);
	}
	snprintf(v, len, "%s%s%s", first, sep, rest);
	if (setenv(name, v, 1) != 0) {
		fprintf(stderr, "kalloc: cannot set %s\n", name);
		exit(1);
	}
	free(v);
}

bool env_add_static_tls(void)
{
	const char *old = getenv("GLIBC_TUNABLES");
	if (old && strstr(old, "glibc.rtld.optional_static_tls="))
		return false; /* the user's value wins */
	if (old && *old)
		set_joined("GLIBC_TUNABLES", old, ":", STATIC_TLS_TUNABLE);
	else
		set_joined("GLIBC_TUNABLES", STATIC_TLS_TUNABLE, "", "");
	return true;
}

void env_prepend_preload(const char *path)
{
	const char *old = getenv("LD_PRELOAD");
	if (!old || !*old) {
		set_joined("LD_PRELOAD", path, "", "");
		return;
	}
	size_t n = strlen(path);
	if (!strncmp(old, path, n) && (old[n] == 0 || old[n] == ':' || old[n] == ' '))
		return;
	set_joined("LD_PRELOAD", path, ":", old);
}

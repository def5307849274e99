/*
 * Where the shim and the helper programs are, for an installed `kalloc` and
 * for the one in a build tree (meson passes both sets of paths).
 *
 * The shim: next to the libkalloc this process loaded (installed: libdir),
 * else the build tree's, else the configured libdir.  Helpers
 * (kalloc-conform, kalloc-bench): next to this executable (installed:
 * bindir), else where the build tree builds them.  A build tree's paths are
 * used only by the build tree's own `kalloc`, so an installed one never runs
 * a stale build.
 */
#include "cli.h"

#include <kalloc.h>

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if !defined(KALLOC_CLI_BUILD_DIR) || !defined(KALLOC_BUILD_ROOT) || \
	!defined(KALLOC_BUILD_PLUGIN_PATH) || !defined(KALLOC_LIBDIR) || \
	!defined(KALLOC_BINDIR)
#error "the build must define the KALLOC_* paths (src/cli/meson.build)"
#endif

#define SHIM_FILE "libkalloc-shim.so"

/* Directory of this executable, resolved. */
static bool self_dir(char *buf, size_t cap)
{
	char exe[PATH_MAX];
	if (!realpath("/proc/self/exe", exe))
		return false;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = 0;
	return (size_t)snprintf(buf, cap, "%s", exe) < cap;
}

/* Is this `kalloc` the one built in KALLOC_BUILD_ROOT? */
static bool in_build_tree(void)
{
	char self[PATH_MAX], build[PATH_MAX];
	return self_dir(self, sizeof(self)) &&
	       realpath(KALLOC_CLI_BUILD_DIR, build) && !strcmp(self, build);
}

void cli_init(void)
{
	if (in_build_tree())
		setenv("KALLOC_PLUGIN_PATH", KALLOC_BUILD_PLUGIN_PATH, 0);
}

/* Appends "dir" to the "looked at" list. */
static void note(char *looked, size_t cap, const char *dir)
{
	size_t n = strlen(looked);
	if (n < cap)
		snprintf(looked + n, cap - n, "%s%s", n ? ", " : "", dir);
}

/* buf = realpath(dir/file) if that file exists. */
static bool try_file(const char *dir, const char *file, int mode, char *buf,
		     size_t cap, char *looked, size_t looked_cap)
{
	char path[PATH_MAX], real[PATH_MAX];
	note(looked, looked_cap, dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >=
	    sizeof(path))
		return false;
	if (access(path, mode) != 0 || !realpath(path, real))
		return false;
	return (size_t)snprintf(buf, cap, "%s", real) < cap;
}

bool locate_shim(char *buf, size_t cap, bool quiet)
{
	char looked[2048] = "";
	Dl_info info;
	if (dladdr((void *)kalloc_default, &info) && info.dli_fname) {
		char lib[PATH_MAX];
		if (realpath(info.dli_fname, lib)) {
			char *slash = strrchr(lib, '/');
			if (slash) {
				*slash = 0;
				if (try_file(lib, SHIM_FILE, R_OK, buf, cap, looked,
					     sizeof(looked)))
					return true;
			}
		}
	}
	if (in_build_tree() &&
	    try_file(KALLOC_BUILD_ROOT "/src/shim", SHIM_FILE, R_OK, buf, cap,
		     looked, sizeof(looked)))
		return true;
	if (try_file(KALLOC_LIBDIR, SHIM_FILE, R_OK, buf, cap, looked,
		     sizeof(looked)))
		return true;
	if (!quiet)
		fprintf(stderr, "kalloc: cannot find " SHIM_FILE " (looked in %s); "
		"install libkalloc, or build it with meson (src/shim)\n", looked);
	return false;
}

bool locate_helper(const char *name, char *buf, size_t cap, char *looked,
		   size_t looked_cap)
{
	char dir[PATH_MAX];
	looked[0] = 0;
	if (self_dir(dir, sizeof(dir)) &&
	    try_file(dir, name, X_OK, buf, cap, looked, looked_cap))
		return true;
	if (in_build_tree()) {
		static const char *const build_dirs[] = {
			KALLOC_BUILD_ROOT "/tests/conformance",
			KALLOC_BUILD_ROOT "/bench",
		};
		for (size_t i = 0; i < 2; i++)
			if (try_file(build_dirs[i], name, X_OK, buf, cap, looked,
				     looked_cap))
				return true;
	}
	return try_file(KALLOC_BINDIR, name, X_OK, buf, cap, looked, looked_cap);
}

/*
 * The plugin loader: finds a backend's file, dlopens it, checks its
 * descriptor against the ABI and starts an instance.  Every refusal is one
 * message naming the file, the reason and (for dlopen) dlerror().
 */
#include "internal.h"

#include <dirent.h>
#include <limits.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KALLOC_PLUGINDIR
#error "KALLOC_PLUGINDIR must be defined by the build"
#endif

#define PLUGIN_PREFIX "kalloc-"
#define PLUGIN_SUFFIX ".so"

static char plugin_path[8192];
static pthread_once_t plugin_path_once = PTHREAD_ONCE_INIT;

/* KALLOC_PLUGIN_PATH, then the installed directory, which is always kept:
 * a path too long for the buffer loses its last directories, saying so. */
static void plugin_path_init(void)
{
	const char *env = kalloc__env("KALLOC_PLUGIN_PATH");
	size_t room = sizeof(plugin_path) - sizeof(KALLOC_PLUGINDIR) - 1;
	size_t keep = env ? strlen(env) : 0;
	if (keep > room) {
		keep = room;
		while (keep && env[keep] != ':')
			keep--; /* whole directories only */
		kalloc__log(NULL, "KALLOC_PLUGIN_PATH is %zu bytes long; searching "
			    "only its first %zu bytes and %s", strlen(env), keep,
			    KALLOC_PLUGINDIR);
	}
	snprintf(plugin_path, sizeof(plugin_path), "%.*s%s%s", (int)keep,
		 keep ? env : "", keep ? ":" : "", KALLOC_PLUGINDIR);
}

/*
 * The plugin path for a message, in at most cap bytes: whole, or as many of
 * its first directories as fit, then ":...:" and the installed directory
 * (the one a user looks for), so nothing is cut silently.
 */
static void searched_dirs(char *buf, size_t cap)
{
	const char *p = kalloc_plugin_path();
	size_t len = strlen(p);
	if (len < cap) {
		memcpy(buf, p, len + 1);
		return;
	}
	const char *last = strrchr(p, ':');
	last = last ? last + 1 : p;
	size_t tail = strlen(last) + 5; /* ":...:" */
	size_t head = tail < cap ? cap - 1 - tail : 0;
	while (head && p[head] != ':')
		head--;
	size_t room = cap - 1 - head - 5; /* the installed dir is short */
	snprintf(buf, cap, "%.*s:...:%.*s", (int)head, p, (int)room, last);
}

const char *kalloc_plugin_path(void)
{
	pthread_once(&plugin_path_once, plugin_path_init);
	return plugin_path;
}

/*
 * Calls fn(dir, len) for each directory of the plugin path (dir points into
 * the static plugin_path and is not NUL-terminated); stops on non-zero.
 */
static int each_dir(int (*fn)(const char *dir, size_t len, void *ctx),
		    void *ctx)
{
	const char *p = kalloc_plugin_path();
	while (*p) {
		size_t n = strcspn(p, ":");
		if (n > 0) {
			int r = fn(p, n, ctx);
			if (r)
				return r;
		}
		p += n + (p[n] == ':');
	}
	return 0;
}

static bool valid_name(const char *s)
{
	if (!*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return false;
	return true;
}

/* Backend name of a plugin file name "kalloc-NAME.so", or false. */
static bool file_backend_name(const char *file, char *name, size_t cap)
{
	size_t len = strlen(file), pl = strlen(PLUGIN_PREFIX),
	       sl = strlen(PLUGIN_SUFFIX);
	if (len <= pl + sl || strncmp(file, PLUGIN_PREFIX, pl) ||
	    strcmp(file + len - sl, PLUGIN_SUFFIX) || len - pl - sl >= cap)
		return false;
	memcpy(name, file + pl, len - pl - sl);
	name[len - pl - sl] = 0;
	return valid_name(name);
}

/* ---- names found in the plugin path ---------------------------------- */

#define MAX_PLUGINS 32

/*
 * A few KiB on purpose: the shim serves this from its bootstrap arena.
 * Directories are referenced in plugin_path, which lives forever.
 */
struct found {
	struct entry {
		char name[72];
		const char *dir;
		size_t dir_len;
	} e[MAX_PLUGINS];
	int n;
};

/* The file of an entry: DIR/kalloc-NAME.so. */
static void entry_path(const struct entry *e, char *buf, size_t cap)
{
	snprintf(buf, cap, "%.*s/" PLUGIN_PREFIX "%s" PLUGIN_SUFFIX,
		 (int)e->dir_len, e->dir, e->name);
}

static int scan_dir(const char *dir, size_t len, void *ctx)
{
	struct found *f = ctx;
	char path[PATH_MAX];
	if (len >= sizeof(path))
		return 0;
	memcpy(path, dir, len);
	path[len] = 0;
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d)) && f->n < MAX_PLUGINS) {
		struct entry e = { .dir = dir, .dir_len = len };
		if (!file_backend_name(de->d_name, e.name, sizeof(e.name)))
			continue;
		bool dup = false; /* the first directory wins */
		for (int i = 0; i < f->n; i++)
			dup |= strcmp(f->e[i].name, e.name) == 0;
		if (!dup)
			f->e[f->n++] = e;
	}
	closedir(d);
	return 0;
}

/* Every backend in the plugin path, sorted by name.  Heap-allocated. */
static struct found *scan_all(void)
{
	struct found *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	each_dir(scan_dir, f);
	for (int i = 1; i < f->n; i++) /* insertion sort: n is small */
		for (int j = i; j > 0 && strcmp(f->e[j - 1].name, f->e[j].name) > 0;
		     j--) {
			struct entry t = f->e[j];
			f->e[j] = f->e[j - 1];
			f->e[j - 1] = t;
		}
	return f;
}

/* "kv, libc, page" into buf. */
static void valid_names(char *buf, size_t cap)
{
	struct found *f = scan_all();
	buf[0] = 0;
	size_t used = 0;
	for (int i = 0; f && i < f->n && used < cap; i++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%s",
					 i ? ", " : "", f->e[i].name);
	if (!f || f->n == 0)
		snprintf(buf, cap, "none found");
	free(f);
}

/* Resolves a backend argument to a plugin file path. */
static int resolve(const char *backend, char *path, size_t cap)
{
	size_t len = strlen(backend);
	if (strchr(backend, '/') ||
	    (len > 3 && strcmp(backend + len - 3, PLUGIN_SUFFIX) == 0)) {
		if (access(backend, R_OK) != 0)
			return kalloc__error(KALLOC_ENOENT,
					     "plugin file '%s' not found or not readable",
					     backend);
		snprintf(path, cap, "%s", backend);
		return KALLOC_OK;
	}
	if (valid_name(backend)) {
		struct found *f = scan_all();
		for (int i = 0; f && i < f->n; i++)
			if (strcmp(f->e[i].name, backend) == 0) {
				entry_path(&f->e[i], path, cap);
				free(f);
				return KALLOC_OK;
			}
		free(f);
	}
	/* both fit in a message (error.c): 32 names of at most 64 bytes */
	char names[MAX_PLUGINS * 66 + 16], dirs[1536];
	valid_names(names, sizeof(names));
	searched_dirs(dirs, sizeof(dirs));
	return kalloc__error(KALLOC_ENOENT,
			     "unknown backend '%.80s'; valid backends: %s "
			     "(or the path of a plugin .so; searched %s)",
			     backend, names, dirs);
}

/* ---- descriptor checks ------------------------------------------------ */

/* The cache table, if the descriptor has one: NULL for a descriptor
 * compiled before it was appended. */
static const kalloc_plugin_cache_t *cache_table(const kalloc_plugin_t *p)
{
	return DESC_COVERS(p, cache) ? p->cache : NULL;
}

/* Why a cache table is refused (an entry missing), or NULL. */
static const char *cache_table_missing(const kalloc_plugin_t *p)
{
	const kalloc_plugin_cache_t *t = cache_table(p);
	if (!t)
		return NULL;
	if (!p->fast)
		return "cache table without a fast table (objects are freed "
		       "by its free)";
	const struct {
		const char *name;
		bool set;
	} e[] = {
		{ "create", t->create }, { "destroy", t->destroy },
		{ "alloc", t->alloc }, { "alloc_bulk", t->alloc_bulk },
		{ "free_bulk", t->free_bulk }, { "info", t->info },
	};
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++)
		if (!e[i].set) {
			static _Thread_local char why[96];
			snprintf(why, sizeof(why), "cache table without '%s' "
				 "(every entry, or no table)", e[i].name);
			return why;
		}
	return NULL;
}

static int check_descriptor(const kalloc_plugin_t *p, const char *path)
{
	const char *why = NULL;
	char buf[200];
	const kalloc_plugin_ops_t *ops = NULL;
	if (p->abi_version != KALLOC_PLUGIN_ABI) {
		snprintf(buf, sizeof(buf),
			 "plugin ABI version %u, this libkalloc loads version %u; "
			 "rebuild it against <kalloc/plugin.h> " KALLOC_VERSION_STRING,
			 (unsigned)p->abi_version, KALLOC_PLUGIN_ABI);
		why = buf;
	} else if (!DESC_COVERS(p, fast)) {
		snprintf(buf, sizeof(buf),
			 "descriptor is %u bytes, smaller than the ABI's %zu",
			 (unsigned)p->struct_size,
			 offsetof(kalloc_plugin_t, fast) + sizeof(p->fast));
		why = buf;
	} else if (!p->name || !valid_name(p->name))
		why = "descriptor has no valid name ([a-z0-9_]+)";
	else if (!(ops = p->ops))
		why = "descriptor has no ops table";
	else if (!ops->init)
		why = "missing required entry 'init' in the ops table";
	else if (!ops->fini)
		why = "missing required entry 'fini' in the ops table";
	else if (!ops->realloc)
		why = "missing required entry 'realloc' in the ops table";
	else if (!ops->usable_size)
		why = "missing required entry 'usable_size' in the ops table";
	else if (p->fast && (!p->fast->alloc || !p->fast->free))
		why = p->fast->alloc ? "fast table without 'free' (both "
				       "entries, or no table)" :
				       "fast table without 'alloc' (both "
				       "entries, or no table)";
	else if ((why = cache_table_missing(p)))
		;
	else if (DESC_COVERS(p, front) && p->front && !p->fast)
		why = "front without a fast table (the pointers its free "
		      "refuses go to the fast free)";
	else if (DESC_COVERS(p, malloc_entries) && p->malloc_entries &&
		 !p->fast)
		why = "malloc_entries without a fast table (they are its "
		      "entries in malloc's shape)";
	else if (p->max_align == 0 || (p->max_align & (p->max_align - 1)))
		why = "max_align is not a power of two";
	else if (p->flags & ~KALLOC_PLUGIN_FLAGS)
		why = "declares flags outside KALLOC_PLUGIN_FLAGS";
	else if (p->detects & ~KALLOC_DETECT_ALL)
		why = "declares detects outside KALLOC_DETECT_ALL";
	if (!why)
		return KALLOC_OK;
	return kalloc__error(KALLOC_EABI, "refusing plugin %s: %s", path, why);
}

int kalloc__load(const char *backend, const char *options, kalloc_t **out)
{
	char path[PATH_MAX + 96];
	int err = resolve(backend, path, sizeof(path));
	if (err)
		return err;

	/* RTLD_NODELETE: allocator libraries (tcmalloc) cannot be unloaded. */
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!dl) {
		const char *e = dlerror();
		const char *hint = e && strstr(e, "static TLS") ?
			"; this library needs static TLS space: start the process "
			"with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 "
			"('kalloc run' sets it)" : "";
		return kalloc__error(KALLOC_ELOAD, "cannot load plugin %s: %s%s",
				     path, e ? e : "dlopen failed", hint);
	}
	dlerror();
	const kalloc_plugin_t *p = dlsym(dl, KALLOC_PLUGIN_SYMBOL);
	if (!p) {
		const char *e = dlerror();
		err = kalloc__error(KALLOC_EABI,
				    "refusing plugin %s: it does not export '"
				    KALLOC_PLUGIN_SYMBOL "' (%s)", path,
				    e ? e : "symbol is NULL");
		dlclose(dl);
		return err;
	}
	err = check_descriptor(p, path);
	if (err) {
		dlclose(dl);
		return err;
	}

	kalloc_t *a = calloc(1, sizeof(*a));
	char *dup = strdup(path);
	if (!a || !dup) {
		free(a);
		free(dup);
		dlclose(dl);
		return kalloc__error(KALLOC_ENOMEM, "no memory to open %s", path);
	}
	*a = (kalloc_t){
		.p = p,
		.dl = dl,
		.path = dup,
		.honored = p->flags | CORE_FLAGS,
		.max_align = p->max_align < CORE_MAX_ALIGN ? p->max_align :
							     CORE_MAX_ALIGN,
		.max_size = p->max_size < SIZE_MAX / 2 ? p->max_size : SIZE_MAX / 2,
		.direct_flags = (p->flags & KALLOC_PLUGIN_FLAGS) | KALLOC_NOWARN |
				KALLOC_HIGHMEM,
		.ops = p->ops,
		.fast = p->fast,
		.cache = cache_table(p),
	};
	char plugin_opts[512], core_opts[128];
	if (!kalloc__options_split(options, plugin_opts, sizeof(plugin_opts),
				   core_opts, sizeof(core_opts)) ||
	    kalloc__features_init(a, core_opts)) {
		err = kalloc__error(KALLOC_EINVAL, "plugin %s: %s", path,
				    kalloc_errmsg());
		free(a->path);
		free(a);
		dlclose(dl);
		return err;
	}
	kalloc__error(0, "%s", "");
	err = p->ops->init(&kalloc__host, plugin_opts, &a->state);
	if (err) {
		const char *why = kalloc_errmsg();
		err = kalloc__error(KALLOC_ELOAD, "plugin %s: init failed: %s",
				    path, why[0] ? why : kalloc_strerror(err));
		free(a->path);
		free(a);
		dlclose(dl);
		return err;
	}
	err = kalloc__front_init(a, path);
	if (err) { /* errmsg says why */
		p->ops->fini(a->state);
		free(a->path);
		free(a);
		dlclose(dl);
		return err;
	}
	kalloc__register(a);
	*out = a;
	return KALLOC_OK;
}

void kalloc__unload(kalloc_t *a)
{
	kalloc__debug_forget(a); /* its quarantined blocks, while it can */
	kalloc__unregister(a);
	a->ops->fini(a->state);
	dlclose(a->dl);
	free(a->path);
	free(a);
}

void kalloc_info(const kalloc_t *a, kalloc_info_t *out)
{
	*out = (kalloc_info_t){
		.name = a->p->name,
		.version = a->p->version ? a->p->version : "",
		.description = a->p->description ? a->p->description : "",
		.path = a->path,
		.flags = a->honored,
		.max_align = a->max_align,
		.max_size = a->max_size,
		.detects = a->p->detects,
		.fast = a->fast != NULL,
	};
}

int kalloc_list(kalloc_list_fn fn, void *ctx)
{
	struct found *f = scan_all();
	if (!f)
		return 0;
	int n = f->n;
	for (int i = 0; i < n; i++) {
		kalloc_t *a;
		char path[PATH_MAX + 96];
		entry_path(&f->e[i], path, sizeof(path));
		if (kalloc__load(path, NULL, &a) == KALLOC_OK) {
			kalloc_info_t info;
			kalloc_info(a, &info);
			fn(f->e[i].name, &info, NULL, ctx);
			kalloc__unload(a);
		} else {
			fn(f->e[i].name, NULL, kalloc_errmsg(), ctx);
		}
	}
	free(f);
	return n;
}

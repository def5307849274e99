/*
 * kalloc/plugin.h - the backend plugin ABI.
 *
 * A backend is a shared object exporting one descriptor,
 *
 *     const kalloc_plugin_t kalloc_plugin = { KALLOC_PLUGIN_HEADER, ... };
 *
 * a versioned struct of function pointers (the model is SQLite's
 * sqlite3_mem_methods and its VFS iVersion).  The core loads it with dlopen
 * and refuses it, naming the file and the reason, when abi_version differs,
 * struct_size is too small, or a required entry (init, fini, realloc,
 * usable_size) is missing.  New fields are only ever appended; the core reads
 * an optional field only when struct_size covers it.
 *
 * What the core guarantees to the plugin on every realloc call:
 *   - layout.align is a power of two <= max_align; layout.size <= max_size,
 *     and size + align does not overflow;
 *   - layout.size == 0 only with ptr != NULL, meaning "free ptr";
 *   - ptr is NULL or a live block this instance returned (never a sentinel);
 *   - flags contain only KALLOC_ZERO, KALLOC_NOWAIT and KALLOC_ATOMIC, and
 *     only those the plugin declared honored (the core refuses the others and
 *     handles NOWARN, ACCOUNT and HIGHMEM itself);
 *   - old.align == 0 means the old layout is unknown; otherwise old is the
 *     layout the block was created with (or last reallocated to).
 *
 * What the plugin guarantees (each is a conformance test, see SPEC G1-G14):
 *   - on success: out->ptr aligned to layout.align (even when larger than the
 *     block's original alignment: move the block if needed), out->len >= size
 *     and all of it usable; out->len may be less than usable_size(ptr) (the
 *     requested size, when asking for the real length would cost); min(old, new) bytes of content kept; with
 *     KALLOC_ZERO the block is "kept content, then zeros": every byte from
 *     min(old size, layout.size) up to out->len reads 0, where the old size
 *     is old.size, or the old usable length when unknown (a fresh
 *     allocation's old size is 0);
 *   - on failure: a kalloc_err code, *out untouched, ptr untouched and live;
 *   - NOWAIT/ATOMIC (when declared): no blocking lock wait, no system call
 *     that maps memory; fail with KALLOC_EAGAIN instead;
 *   - every entry is thread safe; a block may be freed by any thread.
 */
#ifndef KALLOC_PLUGIN_H
#define KALLOC_PLUGIN_H

#include <kalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KALLOC_PLUGIN_ABI 1
#define KALLOC_PLUGIN_SYMBOL "kalloc_plugin"

/* Flags a plugin's realloc may be passed. */
#define KALLOC_PLUGIN_FLAGS (KALLOC_ZERO | KALLOC_NOWAIT | KALLOC_ATOMIC)

/*
 * Services of the core, handed to init.  A plugin that builds on another
 * allocator (kv on slab and page) asks for it by name with get() and calls it
 * through realloc()/usable_size()/owns() on the handle.
 */
typedef struct kalloc_host {
	uint32_t abi_version; /* KALLOC_PLUGIN_ABI */
	uint32_t struct_size; /* sizeof(kalloc_host_t) */
	/* Shared handle of another backend; NULL (with errmsg) on failure. */
	kalloc_t *(*get)(const char *backend);
	int (*realloc)(kalloc_t *a, void *ptr, kalloc_layout_t layout,
		       kalloc_layout_t old, kalloc_flags_t flags,
		       kalloc_buf_t *out);
	size_t (*usable_size)(kalloc_t *a, const void *ptr);
	int (*owns)(kalloc_t *a, const void *ptr);
	/*
	 * A numeric KALLOC_* environment setting, parsed by the core's options
	 * table (so every variable is documented in one place); `def` if unset.
	 */
	long (*option)(const char *name, long def);
	/* One line on stderr, prefixed "kalloc: <plugin>: ". */
	void (*log)(const char *plugin, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	/* Report a detected heap corruption (double free...) naming the
	 * pointer, then abort.  Never returns. */
	void (*corruption)(const char *plugin, const void *ptr, const char *fmt,
			   ...) __attribute__((noreturn, format(printf, 3, 4)));
	/* A string KALLOC_* setting from the options table; NULL if unset. */
	const char *(*option_str)(const char *name);
	/* Sets the calling thread's kalloc_errmsg() (say why init failed);
	 * returns err. */
	int (*error)(int err, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));

	/*
	 * Appended (read only when struct_size covers them): the two commonest
	 * calls of a backend built on others, without realloc's case analysis.
	 *   alloc(a, layout, flags, out)
	 *       == realloc(a, NULL, layout, KALLOC_LAYOUT_UNKNOWN, flags, out);
	 *   free_owned(a, ptr, old), ptr a real block of some backend: frees
	 *       ptr and returns 1 when a holds it or cannot tell (owns() -1);
	 *       returns 0, touching nothing, when a says ptr is none of its
	 *       blocks.  One lookup where owns() and then a free take two.
	 */
	int (*alloc)(kalloc_t *a, kalloc_layout_t layout, kalloc_flags_t flags,
		     kalloc_buf_t *out);
	int (*free_owned)(kalloc_t *a, void *ptr, kalloc_layout_t old);
} kalloc_host_t;

typedef struct kalloc_plugin {
	uint32_t abi_version; /* KALLOC_PLUGIN_ABI */
	uint32_t struct_size; /* sizeof(kalloc_plugin_t) as compiled */
	const char *name;     /* backend name, [a-z0-9_]+ */
	const char *version;
	const char *description;
	kalloc_flags_t flags; /* honored subset of KALLOC_PLUGIN_FLAGS */
	size_t max_align;     /* power of two */
	size_t max_size;

	/* Required. */
	int (*init)(const kalloc_host_t *host, const char *options,
		    void **state);
	void (*fini)(void *state);
	int (*realloc)(void *state, void *ptr, kalloc_layout_t layout,
		       kalloc_layout_t old, kalloc_flags_t flags,
		       kalloc_buf_t *out);
	size_t (*usable_size)(void *state, const void *ptr);

	/* Optional (NULL when absent). */
	/* Free with the known layout (sdallocx, tc_free_sized). */
	void (*free_sized)(void *state, void *ptr, kalloc_layout_t old);
	/* 1 if ptr is a live block of this instance, 0 if not, -1 unknown. */
	int (*owns)(void *state, const void *ptr);
	/* fork hooks, run by the core's pthread_atfork handlers. */
	void (*atfork_prepare)(void *state);
	void (*atfork_parent)(void *state);
	void (*atfork_child)(void *state);
	/* Report counters through fn (see kalloc_stats_foreach: group is
	 * e.g. a size class "kmalloc-64", key a counter name); returns 0. */
	int (*stats)(void *state, kalloc_stats_fn fn, void *ctx);

	/*
	 * Optional lean entries (appended; read only when struct_size covers
	 * them).  Each stands for one case of realloc, with the same contract,
	 * fewer words to pass and no case analysis, for the core's plain path
	 * (a fresh allocation or a free with no instrumentation in the way):
	 *   alloc(state, layout, flags, out)
	 *       == realloc(state, NULL, layout, KALLOC_LAYOUT_UNKNOWN, flags, out)
	 *       (layout.size >= 1);
	 *   free(state, ptr)
	 *       == realloc(state, ptr, {0, 1}, KALLOC_LAYOUT_UNKNOWN, 0, &ignored)
	 *       (the unsized free; a known layout goes to free_sized).
	 * The core may call realloc for these cases all the same.
	 */
	int (*alloc)(void *state, kalloc_layout_t layout, kalloc_flags_t flags,
		     kalloc_buf_t *out);
	void (*free)(void *state, void *ptr);

	/*
	 * Optional direct entries (appended; read only when struct_size covers
	 * them), for plugins whose instances all share one process-wide heap
	 * (so no state argument).  The core hands them out through
	 * kalloc_direct() only when both are set; callers reach the backend
	 * with nothing of the core in between:
	 *   direct_alloc(size), size >= 1: a block of at least size bytes
	 *       aligned to 16 (malloc's guarantee), or NULL with errno ENOMEM
	 *       on failure (so a malloc may tail-call it); the
	 *       same block as alloc(state, {size, 16}, 0, out) would give, so
	 *       every entry may free it;
	 *   direct_free(ptr), ptr not NULL: frees ptr and returns 1 when it is
	 *       a block of this backend (of any instance); returns 0, touching
	 *       nothing, when the backend can tell ptr is none of its blocks
	 *       (what owns() would answer 0 for).  A backend that cannot tell
	 *       frees and returns 1.  Blocks of alloc and realloc are freed too.
	 */
	void *(*direct_alloc)(size_t size);
	int (*direct_free)(void *ptr);
} kalloc_plugin_t;

#define KALLOC_PLUGIN_HEADER \
	.abi_version = KALLOC_PLUGIN_ABI, .struct_size = sizeof(kalloc_plugin_t)

#if defined(__GNUC__)
#define KALLOC_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define KALLOC_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
}
#endif
#endif /* KALLOC_PLUGIN_H */

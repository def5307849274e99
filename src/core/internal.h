/* Internal interfaces of the libkalloc core.  Nothing here is exported. */
#ifndef KALLOC_INTERNAL_H
#define KALLOC_INTERNAL_H

#include <kalloc.h>
#include <kalloc/plugin.h>
#include <stdarg.h>
#include <stdbool.h>

#define HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Flags the core handles itself, whatever the backend declares. */
#define CORE_FLAGS (KALLOC_NOWARN | KALLOC_HIGHMEM)

/* Largest alignment any handle accepts; sentinels are recognised up to it. */
#define CORE_MAX_ALIGN ((size_t)1 << 30)

/*
 * One plugin instance.  Invariant: p, state and the four required entries are
 * non-NULL for the handle's whole life; optional entries are NULL unless the
 * plugin's struct_size covers them and they are set.
 */
struct kalloc {
	const kalloc_plugin_t *p;
	void *state;
	void *dl;              /* dlopen handle, dlclose'd at kalloc_close */
	char *path;            /* plugin file */
	kalloc_flags_t honored; /* plugin flags | CORE_FLAGS */
	size_t max_align;      /* min(plugin max_align, CORE_MAX_ALIGN) */
	size_t max_size;
	int (*realloc)(void *, void *, kalloc_layout_t, kalloc_layout_t,
		       kalloc_flags_t, kalloc_buf_t *);
	size_t (*usable_size)(void *, const void *);
	void (*free_sized)(void *, void *, kalloc_layout_t);
	int (*owns)(void *, const void *);
	void (*fork_prepare)(void *);
	void (*fork_parent)(void *);
	void (*fork_child)(void *);
	struct kalloc *next;   /* registry of open handles (fork hooks) */
};

/* error.c */
HIDDEN int kalloc__error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
HIDDEN void kalloc__warn_failure(const kalloc_t *a, size_t size, size_t align,
				 kalloc_flags_t flags, int err);
HIDDEN void kalloc__log(const char *who, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
HIDDEN void kalloc__corruption(const char *who, const void *ptr,
			       const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

/* options.c */
HIDDEN const char *kalloc__env(const char *name);
HIDDEN long kalloc__option_long(const char *name, long def);

/* loader.c */
HIDDEN int kalloc__load(const char *backend, const char *options,
			kalloc_t **out);
HIDDEN void kalloc__unload(kalloc_t *a);
HIDDEN extern const kalloc_host_t kalloc__host;

/* registry.c */
HIDDEN void kalloc__register(kalloc_t *a);
HIDDEN void kalloc__unregister(kalloc_t *a);

/* fault.c */
HIDDEN bool kalloc__fail_now(void);

#endif

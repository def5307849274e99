/*
 * Internal interfaces of the malloc shim (libkalloc-shim.so).  Nothing here
 * is exported; the exported names are glibc's (shim.c) and C++'s (new.cc).
 */
#ifndef KALLOC_SHIM_H
#define KALLOC_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHIM_HIDDEN __attribute__((visibility("hidden")))
#define SHIM_API __attribute__((visibility("default")))
#define shim_likely(x) __builtin_expect(!!(x), 1)
#define shim_unlikely(x) __builtin_expect(!!(x), 0)

/* What malloc guarantees (glibc's MALLOC_ALIGNMENT on x86-64 and aarch64). */
#define SHIM_MALLOC_ALIGN 16

#ifndef __cplusplus /* new.cc needs only shim_alloc and shim_free */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- bootstrap.c: the static arena used until the backend is up ------ */

#define SHIM_BOOT_SIZE ((size_t)1 << 20)
SHIM_HIDDEN extern unsigned char shim__boot_arena[SHIM_BOOT_SIZE];

/* A zeroed block of the arena, aligned to max(align, 16); NULL when full.
 * Thread safe (one atomic bump); blocks are never reused. */
SHIM_HIDDEN void *shim_boot_alloc(size_t size, size_t align);
/* Bytes usable in an arena block. */
SHIM_HIDDEN size_t shim_boot_usable(const void *p);

/* Is p inside the arena?  Forever true for its blocks: free ignores them. */
static inline bool shim_boot_owns(const void *p)
{
	return (uintptr_t)p - (uintptr_t)shim__boot_arena < SHIM_BOOT_SIZE;
}

/* ---- maps.c: blocks the shim maps itself ------------------------------ */

/* A zeroed block in its own mapping, aligned to max(align, page); NULL (no
 * errno set) when mmap fails or the table of such blocks is full. */
SHIM_HIDDEN void *shim_map_alloc(size_t size, size_t align);
/* Unmaps p and returns true if p is one of them; false otherwise. */
SHIM_HIDDEN bool shim_map_free(void *p);
/* Usable bytes of p if it is one of them, else 0. */
SHIM_HIDDEN size_t shim_map_usable(const void *p);
/* Registers the table lock's fork handlers (once, before the shim is up). */
SHIM_HIDDEN void shim_map_atfork(void);

/* Number of live mapped blocks; read on every free. */
SHIM_HIDDEN extern atomic_size_t shim__maps_live;

/* Could p be a mapped block?  They are all page aligned (4 KiB at least). */
static inline bool shim_map_maybe(const void *p)
{
	return ((uintptr_t)p & 4095) == 0 &&
	       atomic_load_explicit(&shim__maps_live, memory_order_relaxed);
}

#endif /* !__cplusplus */

/* ---- shim.c: what new.cc builds on ------------------------------------ */

/* A block of at least `size` bytes (0 counts as 1) aligned to `align` (a
 * power of two); NULL with errno ENOMEM on failure.  `caller` is the
 * program's call site, for the core's debug and leak reports. */
SHIM_HIDDEN void *shim_alloc(size_t size, size_t align, const void *caller);
/* Frees p; `size` is the size it was asked with, or 0 when unknown. */
SHIM_HIDDEN void shim_free(void *p, size_t size, size_t align,
			   const void *caller);

#ifdef __cplusplus
}
#endif
#endif

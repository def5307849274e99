/*
 * kalloc.h - the libkalloc core API.
 *
 * One operation, realloc, after the Linux kernel's Rust `Allocator` trait:
 *
 *     kalloc_realloc(a, ptr, layout, old_layout, flags, &out)
 *
 *   - ptr == NULL allocates (old_layout is ignored);
 *   - layout.size == 0 frees and yields the zero-size sentinel;
 *   - otherwise the block is resized, moving it if needed, keeping
 *     min(old, new) bytes of content.
 *
 * kalloc_alloc() and kalloc_free() are realloc with NULL and with size 0.
 *
 * An allocator handle (kalloc_t) is one backend plugin instance.  A program
 * may hold several at once, as the kernel uses Kmalloc and Vmalloc side by
 * side.  Backends: "slab", "page", "kv", "jemalloc", "tcmalloc", "mimalloc",
 * "libc", or the path of a third-party plugin (a file name containing '/'
 * or ending in ".so").
 *
 * The default backend is chosen by the environment variable KALLOC_BACKEND;
 * when unset it is "slab", or "libc" where no slab plugin is installed
 * (README.md, "Choosing a backend").
 *
 * Every function is thread safe.  Errors are returned as a kalloc_err value;
 * kalloc_errmsg() gives this thread's last failure in one readable line
 * naming what was wrong and what is valid.
 */
#ifndef KALLOC_H
#define KALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KALLOC_API __attribute__((visibility("default")))
#else
#define KALLOC_API
#endif

#define KALLOC_VERSION_MAJOR 0
#define KALLOC_VERSION_MINOR 1
#define KALLOC_VERSION_PATCH 0
#define KALLOC_VERSION_STRING "0.1.0"

/* ---- layouts ---------------------------------------------------------- */

/* A block's shape: size in bytes and alignment (a power of two). */
typedef struct kalloc_layout {
	size_t size;
	size_t align;
} kalloc_layout_t;

/* Layout literal. */
#define KALLOC_LAYOUT(sz, al) ((kalloc_layout_t){ (sz), (al) })

/*
 * Passed as old_layout when the caller does not know how the block was
 * created (free(p) without a size, as malloc's free does): the backend finds
 * the size itself.  An old_layout with size 0 and a non-zero alignment says
 * "ptr is a zero-size sentinel" (the kernel's dangling pointer of an empty
 * vector) and ptr is then never dereferenced nor freed.
 */
#define KALLOC_LAYOUT_UNKNOWN ((kalloc_layout_t){ 0, 0 })

/*
 * The layout of an array of n elements of `size` bytes: KALLOC_OK, or
 * KALLOC_EOVERFLOW (with errmsg) when n * size does not fit in size_t (G10).
 * `align` must be a power of two (KALLOC_EINVAL otherwise).
 */
KALLOC_API int kalloc_layout_array(size_t n, size_t size, size_t align,
				   kalloc_layout_t *out);

/* ---- flags (after the kernel's gfp flags) ------------------------------ */

typedef uint32_t kalloc_flags_t;

#define KALLOC_KERNEL  0u        /* may block; the default */
#define KALLOC_ZERO    (1u << 0) /* bytes up to the usable length read 0 (G3) */
#define KALLOC_NOWARN  (1u << 1) /* no failure warning on stderr (G12) */
#define KALLOC_NOWAIT  (1u << 2) /* never block, never map memory (G11) */
#define KALLOC_ATOMIC  (1u << 3) /* as NOWAIT, and may use a small reserve */
#define KALLOC_ACCOUNT (1u << 4) /* charge to the thread's accounting domain */
#define KALLOC_HIGHMEM (1u << 5) /* accepted, no effect */
#define KALLOC_NOFAIL  (1u << 6) /* never fails for want of memory: the core
                                  * retries, injected failures skip it and
                                  * accounting limits do not apply */
#define KALLOC_FLAGS_ALL 0x7fu

/* ---- results and errors ----------------------------------------------- */

/* A successful call's block: the pointer and its usable length (>= size). */
typedef struct kalloc_buf {
	void *ptr;
	size_t len;
} kalloc_buf_t;

typedef enum kalloc_err {
	KALLOC_OK = 0,
	KALLOC_ENOMEM,    /* no memory (real or injected); old block intact */
	KALLOC_EINVAL,    /* invalid argument: alignment not a power of two... */
	KALLOC_EALIGN,    /* alignment above what the backend supports */
	KALLOC_EOVERFLOW, /* size (or n * size) overflows once rounded */
	KALLOC_ENOTSUP,   /* a flag the backend does not honor (G14) */
	KALLOC_EAGAIN,    /* NOWAIT/ATOMIC could not be served without blocking */
	KALLOC_ELIMIT,    /* ACCOUNT: the accounting domain's limit is reached */
	KALLOC_ENOENT,    /* no such backend or plugin file */
	KALLOC_EABI,      /* plugin with a wrong ABI or missing entry point */
	KALLOC_ELOAD,     /* dlopen or the plugin's init failed */
	KALLOC_EBUSY,     /* still in use: a cache destroyed with live objects */
	KALLOC_ERR_COUNT
} kalloc_err_t;

/* Short constant text for an error code ("out of memory", ...). */
KALLOC_API const char *kalloc_strerror(int err);

/*
 * This thread's last failure, as one line: what failed, why, and what is
 * valid.  Valid until this thread's next failing kalloc call.  "" if none.
 */
KALLOC_API const char *kalloc_errmsg(void);

/* ---- allocator handles ------------------------------------------------ */

typedef struct kalloc kalloc_t;

/*
 * Open a backend by name ("slab", "libc", ...) or plugin path.  `options`
 * is a backend-specific "key=value,key=value" string or NULL.  Each call
 * returns a new handle; close it with kalloc_close() once every block it
 * allocated has been freed.
 */
KALLOC_API int kalloc_open(const char *backend, const char *options,
			   kalloc_t **out);
KALLOC_API void kalloc_close(kalloc_t *a);

/*
 * The process-wide shared handle of a backend, opened on first use and never
 * closed.  NULL on failure (kalloc_errmsg() says why).  kalloc_get(NULL) is
 * the default backend.
 */
KALLOC_API kalloc_t *kalloc_get(const char *backend);

/* The default backend: KALLOC_BACKEND, else "slab", else "libc".  Never
 * NULL: an invalid KALLOC_BACKEND is reported once on stderr and the default
 * is used instead. */
KALLOC_API kalloc_t *kalloc_default(void);

/*
 * Misuse a backend detects (kalloc_info_t.detects; a plugin declares them
 * in kalloc_plugin_t.detects).  Every call that frees reports a declared
 * kind in one line naming the pointer, then aborts; an undeclared kind is
 * the caller's fault and undefined.
 *   DOUBLE_FREE   a free of a block of its own that is already free;
 *   INVALID_FREE  a free of an address inside its own memory at which no
 *                 block starts (an interior or unaligned pointer);
 *   FOREIGN_FREE  it can tell a pointer outside all of its memory:
 *                 kalloc_owns() answers 0 and the direct free returns 0
 *                 (kalloc_direct), leaving it alone.
 */
#define KALLOC_DETECT_DOUBLE_FREE  (1u << 0)
#define KALLOC_DETECT_INVALID_FREE (1u << 1)
#define KALLOC_DETECT_FOREIGN_FREE (1u << 2)
#define KALLOC_DETECT_ALL          0x7u

/* What a backend declares (G14). Strings live as long as the handle. */
typedef struct kalloc_info {
	const char *name;        /* "slab" */
	const char *version;     /* the backend's own version string */
	const char *description; /* one line */
	const char *path;        /* plugin file it was loaded from */
	kalloc_flags_t flags;    /* flags honored (others are refused) */
	size_t max_align;        /* largest supported alignment */
	size_t max_size;         /* largest supported size */
	uint32_t detects;        /* misuse it reports: KALLOC_DETECT_* */
	int fast;                /* it has fast entries (kalloc_direct) */
} kalloc_info_t;

KALLOC_API void kalloc_info(const kalloc_t *a, kalloc_info_t *out);

/*
 * Call `fn` for every backend found in the plugin path, in name order.
 * `info` is NULL when the plugin could not be loaded; `err` then says why.
 * Returns the number of plugins found.
 */
typedef void (*kalloc_list_fn)(const char *name, const kalloc_info_t *info,
			       const char *err, void *ctx);
KALLOC_API int kalloc_list(kalloc_list_fn fn, void *ctx);

/* The plugin directories searched, ':'-separated (KALLOC_PLUGIN_PATH, then
 * the directory compiled in from the install prefix). */
KALLOC_API const char *kalloc_plugin_path(void);

/* ---- the core calls --------------------------------------------------- */

/*
 * The one operation (see the top of this file).  On success returns
 * KALLOC_OK and fills *out ({sentinel, 0} when layout.size == 0).  On failure
 * returns the error, leaves *out untouched, and `ptr` stays valid and owned by
 * the caller (G5).  layout.align may be smaller than, equal to or larger than
 * the block's original alignment; the result always satisfies it.
 * old_layout is the layout the block was created with, or KALLOC_LAYOUT_UNKNOWN.
 */
KALLOC_API int kalloc_realloc(kalloc_t *a, void *ptr, kalloc_layout_t layout,
			      kalloc_layout_t old_layout, kalloc_flags_t flags,
			      kalloc_buf_t *out);

/* realloc(NULL, layout, -, flags) */
KALLOC_API int kalloc_alloc(kalloc_t *a, kalloc_layout_t layout,
			    kalloc_flags_t flags, kalloc_buf_t *out);

/* realloc(ptr, {0, 1}, layout, 0).  NULL and sentinels are no-ops (G6). */
KALLOC_API void kalloc_free(kalloc_t *a, void *ptr, kalloc_layout_t layout);

/* Usable length of a live block; 0 for NULL and sentinels. */
KALLOC_API size_t kalloc_usable_size(kalloc_t *a, const void *ptr);

/*
 * Does this handle's backend own ptr?  1 yes, a live block; 2 the address
 * is the backend's but no live block starts there (a freed block, or
 * inside one); 0 no; -1 cannot tell.
 */
KALLOC_API int kalloc_owns(kalloc_t *a, const void *ptr);

/*
 * Does this handle check every free against the blocks it handed out
 * (KALLOC_DEBUG=F, or "debug=F" in kalloc_open's options)?  1 yes: a
 * kalloc_free or kalloc_realloc of any other pointer is reported, naming
 * it and the caller, and ends the process; 0 no.  Wrappers that leave
 * unknown pointers alone (the shim) hand them to the core instead when
 * this is 1.
 */
KALLOC_API int kalloc_checks_frees(const kalloc_t *a);

/*
 * The zero-size sentinel for an alignment: a non-NULL address that is never
 * dereferenced, aligned to `align`, and where no block of any backend can
 * be.  For align <= 4096 it is max(align, 16), in page 0 (the kernel's
 * ZERO_SIZE_PTR is 16, Rust's dangling pointer is `align`); for larger
 * alignments it is one address in the top GiB of the address space (the
 * kernel's half), 0xffffffffc0000000, a multiple of every alignment a
 * handle takes.  A backend's block may be at any other address, a power of
 * two too.  Recognised by every call.
 */
#define KALLOC_ZERO_SIZE_PTR ((void *)16)
KALLOC_API void *kalloc_sentinel(size_t align);
KALLOC_API int kalloc_is_sentinel(const void *ptr);

/*
 * kalloc_realloc for wrappers (the shim, language bindings): `caller` is the
 * call site reported by debug and leak reports (KALLOC_DEBUG=U, KALLOC_LEAKS)
 * instead of the wrapper's own.
 */
KALLOC_API int kalloc_realloc_at(const void *caller, kalloc_t *a, void *ptr,
				 kalloc_layout_t layout,
				 kalloc_layout_t old_layout, kalloc_flags_t flags,
				 kalloc_buf_t *out);
KALLOC_API void kalloc_free_at(const void *caller, kalloc_t *a, void *ptr,
			       kalloc_layout_t layout);

/* ---- the direct path (for the LD_PRELOAD shim and other wrappers) ------ */

/*
 * A backend's fast entries (<kalloc/plugin.h>, kalloc_plugin_fast_t), with
 * nothing of the core in between: no checks, statistics, debug, tracking,
 * accounting nor fault injection.
 *
 *   alloc(state, layout), layout.size >= 1, layout.align a power of two
 *       <= the backend's max_align: a block and its usable length, or
 *       {NULL, 0} with errno ENOMEM;
 *   free(state, ptr, old), ptr not NULL, old its layout or
 *       KALLOC_LAYOUT_UNKNOWN: frees ptr and returns 1; returns 0 and
 *       leaves ptr alone when the backend can tell ptr is outside all of
 *       its memory (kalloc_info's detects has KALLOC_DETECT_FOREIGN_FREE).
 *       A double or interior free the backend detects is reported and
 *       aborts, as kalloc_free would.  errno is kept.
 *
 * Blocks are the handle's own: a block from alloc may be freed (or
 * resized, or measured) by the kalloc_* calls on the handle, and free
 * takes any live block the handle handed out while it was plain.
 *
 * The contract: use alloc and free only while *plain is non-zero, and read
 * it before every call (one load; it is a handle's word, in place for the
 * handle's life).  It is non-zero exactly while the handle has no
 * instrumentation (stats, leaks, debug, no block charged to an accounting
 * domain) and no fault injection is armed anywhere in the process
 * (KALLOC_FAIL, kalloc_fail_config, a pending kalloc_fail_nth of any
 * thread).  It goes to 0 before kalloc_fail_nth or kalloc_fail_config
 * return, and back once nothing is armed; so a thread's own
 * kalloc_fail_nth(1) makes its next allocation take the core and fail.
 * While it is 0, go through kalloc_realloc/kalloc_free instead.
 */
typedef struct kalloc_direct {
	kalloc_buf_t (*alloc)(void *state, kalloc_layout_t layout);
	int (*free)(void *state, void *ptr, kalloc_layout_t old);
	void *state;
	const volatile int *plain;
} kalloc_direct_t;

/*
 * Fills *out with the backend's fast entries: KALLOC_OK, or
 * KALLOC_ENOTSUP (with errmsg, *out untouched) when its plugin has none,
 * or KALLOC_EINVAL when a or out is NULL.
 */
KALLOC_API int kalloc_direct(kalloc_t *a, kalloc_direct_t *out);

/*
 * Calls fn(ctx, plain) at once with the handle's plain word (*d.plain of
 * kalloc_direct), then again whenever the word is stored (a feature is
 * turned on, fault injection armed or disarmed, the handle closed: 0),
 * so that a caller can switch what it calls instead of reading the word
 * at every call.  Every call is made under a lock, in the order of the
 * stores: fn must only store (no allocation, no kalloc call, no lock).
 * By the time the call that changed the word returns, fn has run.  One
 * watcher per handle: a second replaces the first; fn NULL removes it.
 * KALLOC_EINVAL when a is NULL, KALLOC_ENOTSUP when the backend has no
 * fast entries (no plain word).
 */
KALLOC_API int kalloc_direct_watch(kalloc_t *a,
				   void (*fn)(void *ctx, int plain),
				   void *ctx);

/*
 * A backend's front (<kalloc/plugin.h>, kalloc_plugin_front_t): entries
 * that may stand for its direct ones on a range of requests, with nothing
 * of the backend in between (kv's small sizes are slab's own entries).
 * With d filled by kalloc_direct on the same handle, and under d's
 * contract (the plain word, the layouts, errno):
 *
 *   alloc: a layout with size <= max_size and align <= max_align may be
 *       asked of alloc(state, layout) instead of d.alloc;
 *   free: a pointer d.free takes may be handed to free(state, ptr, old)
 *       first: it frees a block of the front and returns 1, or returns 0,
 *       touching nothing; then, when rest_free is not NULL,
 *       rest_free(rest_state, ptr, old) frees it or returns 0, as d.free
 *       would.  0 from both (or from free with rest_free NULL): ptr is
 *       outside all of the backend's memory, as d.free's 0 says.
 *
 * A backend without a front has its own entries there: alloc, free and
 * state are d's, max_size is SIZE_MAX, max_align the backend's max_align,
 * rest_free NULL.  So callers never ask whether there is one.  Blocks
 * cross freely between the front, d and the kalloc_* calls.
 *
 * A call of its own, not more members of kalloc_direct_t: that struct is
 * filled in its caller's storage, by kalloc_direct and by plugins through
 * kalloc_host_t.direct, so its size is part of both ABIs.
 */
typedef struct kalloc_front {
	kalloc_buf_t (*alloc)(void *state, kalloc_layout_t layout);
	int (*free)(void *state, void *ptr, kalloc_layout_t old);
	void *state;
	size_t max_size;  /* alloc takes sizes up to it, */
	size_t max_align; /* and alignments up to it (a power of two) */
	int (*rest_free)(void *state, void *ptr, kalloc_layout_t old);
	void *rest_state;
} kalloc_front_t;

/*
 * Fills *out with the backend's front: KALLOC_OK, or KALLOC_ENOTSUP (with
 * errmsg, *out untouched) when it has no fast entries (kalloc_direct
 * refuses too), or KALLOC_EINVAL when a or out is NULL.
 */
KALLOC_API int kalloc_front(kalloc_t *a, kalloc_front_t *out);

/*
 * A backend's malloc entries: its direct entries in the shapes of malloc(3)
 * and free(3), for a malloc replacement (the LD_PRELOAD shim) to jump to
 * with the program's own arguments: no state, no layout, no usable length.
 * With d filled by kalloc_direct on the same handle, and under d's contract
 * (use them only while *d.plain is non-zero; errno):
 *
 *   malloc(size) is d.alloc(d.state, {size ? size : 1, 16}).ptr: a block
 *       of at least size bytes, 16-aligned, unique for 0; NULL with errno
 *       ENOMEM on failure;
 *   free(ptr), ptr > 4095, is d.free(d.state, ptr, KALLOC_LAYOUT_UNKNOWN):
 *       1 when it freed ptr; 0, touching nothing, when ptr is outside all
 *       of the backend's memory (as d.free's 0);
 *   aligned(align, size), optional (NULL: none), with 1 <= size and
 *       align a power of two >= 16, is d.alloc(d.state, {size, align}).ptr:
 *       posix_memalign's block, NULL with errno ENOMEM on failure.  A
 *       library that must look up a block's length pays nothing for it
 *       here;
 *   free_own(ptr), optional (NULL: none), is free(ptr) without its
 *       answer, for a caller to jump to.  On a backend that cannot tell
 *       its blocks from others (free always answers 1), ptr is one of its
 *       blocks (the caller rules out the rest): its library's own free.
 *       On a backend that can (KALLOC_DETECT_FOREIGN_FREE), ptr is any
 *       pointer, NULL and the addresses below 4096 too: one that is not
 *       its block goes, untouched, to the foreign-free handler
 *       (kalloc_set_foreign_free) in free's 0's place.
 *
 * They stand in the front's place (kalloc_front, f on the same handle):
 * malloc only for sizes up to f.max_size (when f.max_align >= 16; the
 * others go to d.alloc), aligned only for sizes up to f.max_size and
 * alignments up to f.max_align, and a free that answers 0 goes on to
 * f.rest_free when it is not NULL.  (A backend without a front: every
 * size, and no rest.)  Blocks cross freely between these, the front, d and
 * the kalloc_* calls.  A backend offers them when its plugin has them
 * (kalloc_plugin_t's malloc_entries); they serve the handle for its life.
 */
typedef struct kalloc_malloc {
	void *(*malloc)(size_t size);
	int (*free)(void *ptr);
	void *(*aligned)(size_t align, size_t size);
	void (*free_own)(void *ptr); /* appended: NULL from older plugins */
} kalloc_malloc_t;

/*
 * Fills *out with the backend's malloc entries: KALLOC_OK, or
 * KALLOC_ENOTSUP (with errmsg, *out untouched) when it has none (then use
 * kalloc_front), or KALLOC_EINVAL when a or out is NULL.
 */
KALLOC_API int kalloc_malloc_entries(kalloc_t *a, kalloc_malloc_t *out);

/*
 * Where the free_own of a backend that tells foreign pointers sends one
 * that is not its block: fn(ptr), for a malloc replacement whose own
 * memory (a bootstrap arena) and whose callers' mistakes reach free too.
 * Process-wide, set before the entries are used; fn must not allocate
 * through the backend that called it.  NULL restores the default: NULL
 * and kalloc's sentinels are ignored, any other pointer is reported once
 * on stderr and left alone.
 */
KALLOC_API void kalloc_set_foreign_free(void (*fn)(void *ptr));

/* ---- statistics (KALLOC_STATS=1, or the open option "stats=1") -------- */

typedef struct kalloc_stats {
	uint64_t allocs, reallocs, frees; /* successful calls */
	uint64_t failures;                /* failed calls, of any kind */
	uint64_t bytes_requested;         /* sum of sizes asked for */
	uint64_t bytes_usable;            /* sum of usable lengths handed out */
	int64_t live_bytes, live_blocks;  /* usable bytes and blocks now held */
	int64_t peak_bytes, peak_blocks;  /* their highest values */
} kalloc_stats_t;

/*
 * The handle's counters since it was opened.  KALLOC_ENOTSUP (with errmsg)
 * when statistics are off for this handle.
 */
KALLOC_API int kalloc_stats(kalloc_t *a, kalloc_stats_t *out);

/*
 * Every counter the handle has: the core's (group "core") and the backend's
 * own, such as slab's per size class (group "kmalloc-64", like
 * /proc/slabinfo).  Returns the number reported.
 */
typedef void (*kalloc_stats_fn)(void *ctx, const char *group, const char *key,
				uint64_t value);
KALLOC_API int kalloc_stats_foreach(kalloc_t *a, kalloc_stats_fn fn, void *ctx);

/*
 * Writes the table KALLOC_STATS=1 prints at exit, for every open handle
 * with statistics: the core's counters, the backend's global counters, and
 * one row per size class or object cache with /proc/slabinfo's columns
 * (name active_objs num_objs objsize objperslab pagesperslab) plus
 * num_slabs, in_use_bytes, constructed and failures, most bytes in use
 * first ("-" where the backend has no such counter).
 */
KALLOC_API void kalloc_stats_print(int fd);

/*
 * The same as one JSON object on one line (KALLOC_STATS=json):
 * {"pid": N, "handles": [{"backend": NAME, "core": {KEY: N, ...},
 * "groups": {GROUP: {KEY: N, ...}, ...}, "truncated": false}]}.
 */
KALLOC_API void kalloc_stats_print_json(int fd);

/* ---- object caches (the kernel's kmem_cache) ------------------------- */

/*
 * A cache of objects of one layout, fixed at create, on any backend.
 * Semantics as the kernel's SLUB:
 *   - a constructor runs once per object, when its memory first comes from
 *     the backend; a freed object stays constructed in the cache and is
 *     handed out again as it is (ctor not re-run).  KALLOC_ZERO on such a
 *     cache zeroes the object (the constructed state is lost; one warning);
 *   - kalloc_cache_alloc_bulk is all or nothing;
 *   - kalloc_cache_destroy of a cache with live objects reports them (one
 *     line naming the cache and the count, then each object's allocation
 *     site with KALLOC_CACHE_STORE_USER or KALLOC_LEAKS=1), frees nothing
 *     the program holds and returns KALLOC_EBUSY.
 * Objects of a cache are freed with kalloc_cache_free only.
 */
typedef struct kalloc_cache kalloc_cache_t;

#define KALLOC_CACHE_HWCACHE_ALIGN   (1u << 0) /* align objects to cache lines */
#define KALLOC_CACHE_PANIC           (1u << 1) /* a failed create aborts */
#define KALLOC_CACHE_ACCOUNT         (1u << 2) /* objects charged as KALLOC_ACCOUNT */
#define KALLOC_CACHE_TYPESAFE_BY_RCU (1u << 3) /* freed memory stays this cache's */
#define KALLOC_CACHE_POISON          (1u << 4) /* debug P for this cache */
#define KALLOC_CACHE_RED_ZONE        (1u << 5) /* debug Z for this cache */
#define KALLOC_CACHE_STORE_USER      (1u << 6) /* debug U, and sites at destroy */
#define KALLOC_CACHE_NO_MERGE        (1u << 7) /* never share slabs with another */
#define KALLOC_CACHE_RECLAIM_ACCOUNT (1u << 8) /* accepted, no effect */
#define KALLOC_CACHE_FAILSLAB        (1u << 9) /* injected failures with cache_filter:1 */
#define KALLOC_CACHE_SANITY          (1u << 10) /* debug F for this cache */
#define KALLOC_CACHE_FLAGS_ALL       0x7ffu

/*
 * A cache named name (copied; up to 63 bytes shown) of objects of
 * obj.size bytes aligned to obj.align (a power of two; 0 for the default
 * of 8), on handle a.  ctor may be NULL.  NULL with errmsg on bad
 * arguments (unknown flag bits included) or want of memory; with
 * KALLOC_CACHE_PANIC it aborts instead, naming the cache.
 */
KALLOC_API kalloc_cache_t *kalloc_cache_create(kalloc_t *a, const char *name,
					       kalloc_layout_t obj,
					       unsigned flags,
					       void (*ctor)(void *obj));
/* An object, or NULL with errmsg; flags as for kalloc_alloc. */
KALLOC_API void *kalloc_cache_alloc(kalloc_cache_t *c, kalloc_flags_t flags);
KALLOC_API void kalloc_cache_free(kalloc_cache_t *c, void *obj);
/* n objects into objs, all or none: returns n, or 0 with nothing held. */
KALLOC_API size_t kalloc_cache_alloc_bulk(kalloc_cache_t *c,
					  kalloc_flags_t flags, size_t n,
					  void **objs);
KALLOC_API void kalloc_cache_free_bulk(kalloc_cache_t *c, size_t n,
				       void **objs);
/* The object size given at create. */
KALLOC_API size_t kalloc_cache_size(const kalloc_cache_t *c);
KALLOC_API const char *kalloc_cache_name(const kalloc_cache_t *c);
/* Gives the backend the free objects the cache keeps; returns how many. */
KALLOC_API size_t kalloc_cache_shrink(kalloc_cache_t *c);
/* KALLOC_OK, or KALLOC_EBUSY when objects were still live (reported). */
KALLOC_API int kalloc_cache_destroy(kalloc_cache_t *c);

/* One cache's counters, /proc/slabinfo's columns.  On a backend with
 * classes of its own for caches (slab), the slab columns are its class's,
 * shared with the caches merged into it (merged > 1), free slots
 * included; on the others they are 0. */
typedef struct kalloc_cache_stats {
	uint64_t active_objs;  /* handed out, not freed */
	uint64_t num_objs;     /* active plus free ones kept for the cache */
	size_t objsize;        /* bytes per object, alignment included */
	uint64_t failures;     /* failed allocations */
	uint64_t constructed;  /* constructor calls */
	uint64_t num_slabs;    /* slabs of its class */
	uint32_t objperslab;
	uint32_t pagesperslab; /* 4 KiB pages */
	uint32_t merged;       /* users of its class: caches, and kmalloc */
} kalloc_cache_stats_t;
KALLOC_API void kalloc_cache_stats(const kalloc_cache_t *c,
				   kalloc_cache_stats_t *out);

/* ---- accounting (KALLOC_ACCOUNT, the kernel's GFP_KERNEL_ACCOUNT) ------- */

/*
 * An accounting domain (a memory cgroup in spirit): allocations made with
 * KALLOC_ACCOUNT are charged, by usable length, to the calling thread's
 * current domain; a charge that would pass the limit fails with
 * KALLOC_ELIMIT and the old block intact.  Frees return the charge; realloc
 * charges the difference.  Threads start in the root domain (no limit).
 */
typedef struct kalloc_domain kalloc_domain_t;

/* limit 0 = unlimited.  NULL with errmsg on failure. */
KALLOC_API kalloc_domain_t *kalloc_domain_create(const char *name, size_t limit);
/* Only when its usage is 0 (KALLOC_EINVAL otherwise). */
KALLOC_API int kalloc_domain_destroy(kalloc_domain_t *d);
/* Makes d (NULL: the root) the calling thread's domain; returns the previous. */
KALLOC_API kalloc_domain_t *kalloc_domain_enter(kalloc_domain_t *d);
KALLOC_API size_t kalloc_domain_usage(const kalloc_domain_t *d);
KALLOC_API size_t kalloc_domain_peak(const kalloc_domain_t *d);
KALLOC_API size_t kalloc_domain_failures(const kalloc_domain_t *d);

/* ---- fault injection (after the kernel's failslab) -------------------- */

/*
 * Make the nth next allocating call (alloc or resize) made by the calling
 * thread fail with KALLOC_ENOMEM, as a real failure would: the old block
 * stays intact and a warning is printed unless NOWARN.  n = 1 fails the very
 * next call; 0 cancels.
 */
KALLOC_API void kalloc_fail_nth(unsigned n);

/*
 * Process-wide fault injection, the syntax of KALLOC_FAIL:
 *   "probability:P,interval:N,times:T,space:B,seed:S,verbose:V"
 * P percent of allocating calls fail (default 100); only every Nth call is
 * a candidate (default 1); at most T
 * failures (-1 = unlimited, the default); a budget of B bytes comes first:
 * a request passes while more than its size remains, and consumes it (a
 * larger one is a candidate and consumes nothing, as the kernel's
 * failslab); S seeds the generator (deterministic for a
 * given seed and call sequence); V=1 prints a line per injected failure
 * (unless NOWARN).  NULL or "" turns injection off.
 * KALLOC_OK, or KALLOC_EINVAL with errmsg naming the bad field.
 */
KALLOC_API int kalloc_fail_config(const char *spec);
/* Failures injected since the last kalloc_fail_config. */
KALLOC_API uint64_t kalloc_fail_count(void);

#ifdef __cplusplus
}
#endif
#endif /* KALLOC_H */

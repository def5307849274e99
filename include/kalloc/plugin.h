/*
 * kalloc/plugin.h - the backend plugin ABI, version 2.
 *
 * A backend is a shared object exporting one descriptor, with a required
 * table, two optional ones and an optional entry:
 *
 *     static const kalloc_plugin_ops_t ops = { .init = ..., .realloc = ... };
 *     static const kalloc_plugin_fast_t fast = { .alloc = ..., .free = ... };
 *     KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
 *             KALLOC_PLUGIN_HEADER, .name = "mine", ..., .ops = &ops,
 *             .fast = &fast,    // optional
 *             .cache = &cache,  // optional: object caches of its own
 *             .front = front,   // optional: another backend's fast entries
 *             .malloc_entries = m, // optional: malloc and free as such
 *     };
 *
 * The model is SQLite's sqlite3_mem_methods and VFS: a versioned struct of
 * function pointers.  `ops` is what every backend writes: one operation,
 * realloc (the kernel's Rust Allocator::realloc), and a few services around
 * it.  `fast` is optional and all-or-nothing: two entries that are
 * realloc's two commonest cases, with fewer words to pass, for the malloc
 * shim and the core's plain path.  They must behave exactly as realloc
 * would (a conformance guarantee checks it).  A faster alias of an old
 * entry never bumps the ABI; a new capability is a new member (a table
 * pointer, or an entry asked once, as `front`) appended to the
 * descriptor, read only when struct_size covers it.
 *
 * The core loads the file with dlopen and refuses it, naming the file and
 * the reason, when abi_version differs, struct_size is too small, a
 * required entry is missing, `fast` is set with one entry missing, or
 * `cache`, `front` or `malloc_entries` come without `fast`.
 *
 * What the core guarantees to ops->realloc on every call:
 *   - layout.align is a power of two <= max_align; layout.size <= max_size,
 *     and size + align does not overflow;
 *   - layout.size == 0 only with ptr != NULL, meaning "free ptr";
 *   - ptr is NULL or a block of this backend (never a sentinel), live as
 *     far as the caller knows (a double free reaches the backend: see
 *     `detects`);
 *   - flags contain only KALLOC_ZERO, KALLOC_NOWAIT and KALLOC_ATOMIC, and
 *     only those the plugin declared honored (the core refuses the others and
 *     handles NOWARN, ACCOUNT and HIGHMEM itself);
 *   - old.align == 0 means the old layout is unknown; otherwise old is the
 *     layout the block was created with (or last reallocated to).
 *
 * What the plugin guarantees (the contract's G1-G16, docs/CONTRACT.md;
 * each is a conformance test):
 *   - on success: out->ptr aligned to layout.align (even when larger than
 *     the block's original alignment: move the block if needed), out->len >=
 *     size and all of it usable; out->len may be less than usable_size(ptr)
 *     (the requested size, when asking for the real length would cost);
 *     min(old, new) bytes of content kept; with KALLOC_ZERO the block is
 *     "kept content, then zeros": every byte from min(old size, layout.size)
 *     up to out->len reads 0, where the old size is old.size, or the old
 *     usable length when unknown (a fresh allocation's old size is 0);
 *   - on failure: a kalloc_err code, *out untouched, ptr untouched and live;
 *   - NOWAIT/ATOMIC (when declared): no blocking lock wait, no system call
 *     that maps memory; fail with KALLOC_EAGAIN instead;
 *   - every entry is thread safe; a block may be freed by any thread;
 *   - the misuse it declares in `detects` is reported through
 *     host->corruption (which names the pointer and aborts), never ignored.
 */
#ifndef KALLOC_PLUGIN_H
#define KALLOC_PLUGIN_H

#include <kalloc.h>

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KALLOC_PLUGIN_ABI 2
#define KALLOC_PLUGIN_SYMBOL "kalloc_plugin"

/* Flags a plugin's realloc may be passed. */
#define KALLOC_PLUGIN_FLAGS (KALLOC_ZERO | KALLOC_NOWAIT | KALLOC_ATOMIC)

/*
 * One option of a plugin, for host->options: a number (num set) or a name
 * (str set, with its buffer's size cap).  Set first from the KALLOC_*
 * variable `env` when it is set, then from the "key=value" option string.
 */
typedef struct kalloc_plugin_option {
	const char *key;   /* "threshold" */
	const char *env;   /* "KALLOC_KV_THRESHOLD", or NULL */
	long *num;         /* a number >= 0 (0x.. and 0.. prefixes allowed) */
	char *str;         /* or a string (no control characters) */
	size_t cap;
	const char *valid; /* what is valid, for messages: "BYTES", "0|1" */
} kalloc_plugin_option_t;

/*
 * What a backend that carves blocks out of its own mappings tells the
 * memory tools the program runs under (valgrind's memcheck,
 * AddressSanitizer), so that they see each block as the program does; the
 * core finds the tool and keeps the requested sizes (host->tools).
 *   alloc(p, size, usable, zeroed): p is live, `size` bytes asked of
 *       `usable`; the rest is off limits; zeroed: it reads 0;
 *   free(p): p is freed, off limits; returns its size, or 0 when p was
 *       not a live block (then nothing changes: a double free);
 *   size(p): the size p was asked with, 0 if p is not a live block;
 *   resized(old, old_usable, p, size, usable, zeroed): old (old_usable
 *       long) is now p of `size` in `usable`, moved or not; zeroed: the
 *       bytes past the kept content read 0;
 *   open(p, len) / hide(p, len): the backend's own access to memory the
 *       tool holds off limits (a free block's link), and its end.
 * A backend reporting to a tool reports the usable length of a block as
 * its requested size: what the tool lets the program use.
 */
typedef struct kalloc_tools {
	void (*alloc)(void *p, size_t size, size_t usable, int zeroed);
	size_t (*free)(void *p);
	size_t (*size)(const void *p);
	void (*resized)(void *old, size_t old_usable, void *p, size_t size,
			size_t usable, int zeroed);
	void (*open)(const void *p, size_t len);
	void (*hide)(const void *p, size_t len);
} kalloc_tools_t;

/*
 * Services of the core, handed to init.  A plugin that builds on another
 * allocator (kv on slab and page) asks for it by name with get() and calls
 * it through the handle.  Calls through the host are never instrumented,
 * counted nor fault-injected: the outer call already was.
 */
typedef struct kalloc_host {
	uint32_t abi_version; /* KALLOC_PLUGIN_ABI */
	uint32_t struct_size; /* sizeof(kalloc_host_t) */
	/* Shared handle of another backend; NULL (with errmsg) on failure. */
	kalloc_t *(*get)(const char *backend);
	/* That backend's realloc (kalloc_realloc's checks included). */
	int (*realloc)(kalloc_t *a, void *ptr, kalloc_layout_t layout,
		       kalloc_layout_t old, kalloc_flags_t flags,
		       kalloc_buf_t *out);
	/* Frees ptr, a real block of some backend, and returns 1 when a holds
	 * it or cannot tell; returns 0, touching nothing, when a can tell it
	 * does not (owns() would say 0).  One lookup, where owns() and a free
	 * take two. */
	int (*free)(kalloc_t *a, void *ptr, kalloc_layout_t old);
	size_t (*usable_size)(kalloc_t *a, const void *ptr);
	/* 1 a live block of a, 0 not, -1 a cannot tell. */
	int (*owns)(kalloc_t *a, const void *ptr);
	/* That backend's fast entries (kalloc_direct), to call with nothing
	 * in between; KALLOC_ENOTSUP when it has none. */
	int (*direct)(kalloc_t *a, kalloc_direct_t *out);
	/* What that backend declares (kalloc_info). */
	void (*info)(const kalloc_t *a, kalloc_info_t *out);
	/*
	 * Reads the plugin's options (n entries of spec) from the environment
	 * and from `options` ("key=value,key=value"); KALLOC_OK, or
	 * KALLOC_EINVAL with kalloc_errmsg() naming the plugin, the bad
	 * option and every valid key.  Every KALLOC_* variable must be listed
	 * in the core's options table (src/core/options.c).
	 */
	int (*options)(const char *plugin, const char *options,
		       const kalloc_plugin_option_t *spec, size_t n);
	/* The memory tool the program runs under, or NULL (none, or
	 * KALLOC_TOOLS=0): see kalloc_tools_t.  The same for every call. */
	const kalloc_tools_t *(*tools)(void);
	/* One line on stderr, prefixed "kalloc: <plugin>: ". */
	void (*log)(const char *plugin, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	/* Report a detected heap corruption (double free...) naming the
	 * pointer, then abort.  Never returns. */
	void (*corruption)(const char *plugin, const void *ptr, const char *fmt,
			   ...) __attribute__((noreturn, format(printf, 3, 4)));
	/* Sets the calling thread's kalloc_errmsg() (say why init failed);
	 * returns err. */
	int (*error)(int err, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));
	/* Appended: read it only when struct_size covers it.  That backend's
	 * malloc entries (kalloc_malloc_entries); KALLOC_ENOTSUP when it has
	 * none. */
	int (*malloc_entries)(kalloc_t *a, kalloc_malloc_t *out);
	/* Appended after malloc_entries, read the same way.  A pointer the
	 * plugin's free_own found is not its block: the handler of
	 * kalloc_set_foreign_free.  Returns. */
	void (*foreign_free)(void *ptr);
} kalloc_host_t;

/* The required table.  Entries marked optional may be NULL. */
typedef struct kalloc_plugin_ops {
	/* Starts an instance; *state is handed to every other entry. */
	int (*init)(const kalloc_host_t *host, const char *options,
		    void **state);
	void (*fini)(void *state);
	/* The one operation (see the top of this file). */
	int (*realloc)(void *state, void *ptr, kalloc_layout_t layout,
		       kalloc_layout_t old, kalloc_flags_t flags,
		       kalloc_buf_t *out);
	/* Usable length of a live block. */
	size_t (*usable_size)(void *state, const void *ptr);
	/* Optional: 1 if ptr is a live block of this instance; 2 if it is
	 * inside the backend's memory but no live block starts there (freed,
	 * or inside a block: misuse); 0 if it is none of the backend's (a
	 * backend that cannot tell 2 from 0 answers 0).  NULL means "cannot
	 * tell" (-1). */
	int (*owns)(void *state, const void *ptr);
	/* Optional: report counters through fn (see kalloc_stats_foreach:
	 * group is e.g. a size class "kmalloc-64", key a counter name). */
	int (*stats)(void *state, kalloc_stats_fn fn, void *ctx);
	/* Optional fork hooks, run by the core's pthread_atfork handlers. */
	void (*atfork_prepare)(void *state);
	void (*atfork_parent)(void *state);
	void (*atfork_child)(void *state);
} kalloc_plugin_ops_t;

/*
 * The optional fast table: both entries, or the table pointer NULL.
 *
 *   alloc(state, layout), layout.size >= 1 (any value), layout.align a
 *       power of two <= max_align:
 *       == realloc(state, NULL, layout, KALLOC_LAYOUT_UNKNOWN, 0, &out),
 *       returning out (two registers); on failure {NULL, 0} with errno
 *       ENOMEM (what malloc reports), including for sizes above max_size.
 *   free(state, ptr, old), ptr not NULL, old the block's layout or
 *       KALLOC_LAYOUT_UNKNOWN:
 *       == realloc(state, ptr, {0, 1}, old, 0, &ignored), returning 1;
 *       except that a pointer outside all of the backend's memory (with
 *       FOREIGN_FREE declared) returns 0 and is left alone, where realloc
 *       would report it.  A backend that cannot tell frees and returns 1.
 *       It keeps errno (a free(3) may then tail-call it): a backend of its
 *       own restores it around the system calls that return memory; a
 *       wrapper of a library's free keeps it as that free does (glibc's
 *       always; jemalloc's, tcmalloc's and mimalloc's as long as their
 *       madvise and munmap succeed, as when they are preloaded).
 *
 * Blocks cross freely between the two tables.  Backends whose instances
 * share one process-wide heap may ignore state.
 */
typedef struct kalloc_plugin_fast {
	kalloc_buf_t (*alloc)(void *state, kalloc_layout_t layout);
	int (*free)(void *state, void *ptr, kalloc_layout_t old);
} kalloc_plugin_fast_t;

/*
 * The optional cache table: object caches (kalloc_cache_*, the kernel's
 * kmem_cache) served by the backend's own classes, as SLUB serves each
 * kmem_cache from slabs of its object size.  Without it, or when create
 * declines, the core builds the cache on the backend's ordinary blocks.
 * All entries, or the table pointer NULL; only with the fast table, whose
 * free frees the objects.
 *
 *   create(state, obj, flags, &cls): a class of objects of obj.size
 *       bytes rounded up to obj.align (a power of two; a class may round
 *       a tiny size up further), each aligned to obj.align; *cls is the
 *       backend's opaque name of it, never NULL.  flags: KALLOC_PLUGIN_CACHE_MERGE lets the class be shared
 *       with other mergeable caches of the same geometry (the kernel's
 *       cache merging).  Any error declines (the core then builds the
 *       cache itself): KALLOC_ENOTSUP for a geometry it does not serve,
 *       KALLOC_ENOMEM when it has no class left.
 *   destroy(state, cls): a cache of the class is gone, all its objects
 *       freed.
 *   alloc(state, cls, flags): one object and its usable length, as
 *       realloc would allocate one (ZERO, NOWAIT, ATOMIC as declared), or
 *       {NULL, 0} when it has no memory, as the fast alloc.
 *   alloc_bulk(state, cls, flags, n, objs): n objects, or none: returns n,
 *       or 0 with every object it took given back.
 *   free_bulk(state, cls, n, objs): frees n live objects of the class,
 *       reporting misuse as the fast free does.
 *   info(state, cls, out): the class's /proc/slabinfo numbers; caches
 *       counts the caches sharing it, kmalloc's blocks as one more.
 *       span_bytes, when not 0, is a promise the core checks frees
 *       against: a power of two such that every object of the class sits
 *       at a multiple of objsize from a span_bytes-aligned address, below
 *       objperslab objects from it.
 *
 * An object is an ordinary block of the backend: realloc, the fast free
 * and usable_size take it like any other; its usable length is the
 * class's object size.
 */
#define KALLOC_PLUGIN_CACHE_MERGE 1u

typedef struct kalloc_class_info {
	uint64_t active_objs; /* objects live (of every cache sharing it) */
	uint64_t num_objs;    /* objects its slabs hold */
	uint64_t num_slabs;
	uint32_t objsize;
	uint32_t objperslab;
	uint32_t pagesperslab; /* 4 KiB pages */
	uint32_t caches;      /* caches sharing the class */
	uint64_t span_bytes;  /* 0, or where objects sit (see above) */
} kalloc_class_info_t;

typedef struct kalloc_plugin_cache {
	int (*create)(void *state, kalloc_layout_t obj, unsigned flags,
		      void **cls);
	void (*destroy)(void *state, void *cls);
	kalloc_buf_t (*alloc)(void *state, void *cls, kalloc_flags_t flags);
	size_t (*alloc_bulk)(void *state, void *cls, kalloc_flags_t flags,
			     size_t n, void **objs);
	void (*free_bulk)(void *state, void *cls, size_t n, void **objs);
	void (*info)(void *state, void *cls, kalloc_class_info_t *out);
} kalloc_plugin_cache_t;

/*
 * The optional front: a backend that serves a range of requests wholly by
 * another backend's fast entries (kv: small sizes on slab) names them, so
 * that the callers of the direct path (the malloc shim, kmalloc) call them
 * with nothing of its own in between.  Only with the fast table.
 *
 *   front(state, out): asked once, by the core, right after init.
 *       KALLOC_OK with *out filled: a front (below); KALLOC_ENOTSUP: none
 *       (the fast table serves every call).  Any other answer, or a front
 *       with alloc or free NULL or max_align not a power of two, refuses
 *       the plugin (its instance is finished).  Answer ENOTSUP when the
 *       front's free cannot tell its blocks from others (libc).
 *
 * What a front promises, for this instance's whole life:
 *   - out->alloc(out->state, layout), for any layout the fast alloc takes
 *     with layout.size <= out->max_size and layout.align <= out->max_align,
 *     may be called instead of the fast alloc: a block as the fast alloc
 *     would give it (or {NULL, 0} with ENOMEM where it fails), a block of
 *     this backend, which realloc, usable_size, owns and the fast free take;
 *   - out->free(out->state, ptr, old), for ptr any non-NULL pointer a fast
 *     free could be handed (a block of this backend or a foreign one):
 *     frees ptr and returns 1 when it is a block of the front (whichever
 *     entry or table made it); otherwise returns 0, touching nothing, and
 *     the caller hands ptr to the fast free.  Misuse of the front's blocks
 *     is reported as the fast free would.  old is the layout the block was
 *     asked of this backend, or KALLOC_LAYOUT_UNKNOWN: it says nothing of
 *     a pointer that is not the front's, so the front must find ptr before
 *     it trusts old (slab ignores old).  errno is kept.
 * The core reads max_align as min(out->max_align, max_align).
 */
typedef struct kalloc_plugin_front {
	kalloc_buf_t (*alloc)(void *state, kalloc_layout_t layout);
	int (*free)(void *state, void *ptr, kalloc_layout_t old);
	void *state;      /* handed to both */
	size_t max_size;  /* sizes up to it may go to alloc */
	size_t max_align; /* a power of two: alignments up to it */
} kalloc_plugin_front_t;

/*
 * The optional malloc entries (kalloc_malloc_t, <kalloc.h>): malloc and free
 * in their own shapes, for the malloc shim to jump to with the program's
 * arguments: an entry that needs no state, no layout and no usable length
 * costs a fraction of a fast call.  Only with the fast table.
 *
 *   malloc_entries(state, out): asked once, by the core, right after init
 *       (and the front), with *out zeroed.  KALLOC_OK with malloc and
 *       free set (aligned is optional): they serve this instance, as
 *       kalloc_malloc_t says, for its whole life; KALLOC_ENOTSUP: none.
 *       Any other answer, or malloc or free NULL, refuses the plugin.  A
 *       plugin whose entries would need an instance's state answers
 *       ENOTSUP.  (A plugin built before `aligned` or `free_own` was
 *       appended leaves them NULL.)  A plugin whose free cannot tell its
 *       blocks from others sets free_own to its library's free, which
 *       the shim then jumps to once it has ruled out its own memory; a
 *       plugin whose free can sets it to a free that hands what is not
 *       its block to host->foreign_free (when struct_size covers it), so
 *       that the shim jumps to it first, with nothing of its own before.
 *
 * malloc's blocks are 16-aligned whatever the size (malloc(1) too), and
 * free keeps errno, as the fast free does.  With a front they stand for
 * the front's entries (sizes up to its max_size, frees of its blocks):
 * kv answers with slab's, which it gets through host->malloc_entries.
 */
typedef struct kalloc_plugin {
	uint32_t abi_version; /* KALLOC_PLUGIN_ABI */
	uint32_t struct_size; /* sizeof(kalloc_plugin_t) as compiled */
	const char *name;     /* backend name, [a-z0-9_]+ */
	const char *version;
	const char *description;
	kalloc_flags_t flags; /* honored subset of KALLOC_PLUGIN_FLAGS */
	uint32_t detects;     /* KALLOC_DETECT_* it reports */
	size_t max_align;     /* power of two */
	size_t max_size;
	const kalloc_plugin_ops_t *ops;   /* required */
	const kalloc_plugin_fast_t *fast; /* optional: NULL or both entries */
	/* Appended: read only when struct_size covers it. */
	const kalloc_plugin_cache_t *cache; /* optional: NULL or every entry */
	/* Appended after cache, read the same way: optional, only with fast. */
	int (*front)(void *state, kalloc_plugin_front_t *out);
	/* Appended after front, read the same way: optional, only with fast. */
	int (*malloc_entries)(void *state, kalloc_malloc_t *out);
} kalloc_plugin_t;

#define KALLOC_PLUGIN_HEADER \
	.abi_version = KALLOC_PLUGIN_ABI, .struct_size = sizeof(kalloc_plugin_t)

#if defined(__GNUC__)
#define KALLOC_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define KALLOC_PLUGIN_EXPORT
#endif

/* ---- helpers every wrapper of a foreign allocator needs ------------------ */

/* Is p aligned to align (a power of two)? */
static inline int kalloc_aligned(const void *p, size_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

/* A malloc entry's answer to a size above PTRDIFF_MAX: NULL with errno
 * ENOMEM (some libraries and memory tools return NULL and leave errno).
 * Test the size first, so the library's malloc stays a tail call. */
static inline void *kalloc_malloc_too_big(void)
{
	errno = ENOMEM;
	return NULL;
}

/* Bytes of content a resize keeps: min(old size, new size), where an
 * unknown old layout's size is the block's usable length. */
static inline size_t kalloc_kept(kalloc_layout_t old, size_t usable,
				 size_t new_size)
{
	size_t o = old.align ? old.size : usable;
	return o < new_size ? o : new_size;
}

/*
 * Usable lengths of small requests, for an allocator whose classes are
 * multiples of 8 (jemalloc's nallocx, tcmalloc's tc_nallocx, mimalloc's
 * mi_good_size): len[(n + 7) / 8] for n <= max, filled once.  max is 0
 * (no table) unless the table agrees with the allocator for every n.
 */
#define KALLOC_CLASS_TABLE_MAX 4096
typedef struct kalloc_class_table {
	size_t max;
	uint32_t len[KALLOC_CLASS_TABLE_MAX / 8 + 1];
} kalloc_class_table_t;

static inline void kalloc_class_table_fill(kalloc_class_table_t *t,
					   size_t (*usable)(size_t n))
{
	for (size_t i = 1; i <= KALLOC_CLASS_TABLE_MAX / 8; i++)
		t->len[i] = (uint32_t)usable(i * 8);
	int exact = 1;
	for (size_t n = 1; n <= KALLOC_CLASS_TABLE_MAX; n++)
		exact &= usable(n) == t->len[(n + 7) / 8];
	t->max = exact ? KALLOC_CLASS_TABLE_MAX : 0;
}

/* The usable length of a request of n bytes, from the table or usable(). */
static inline size_t kalloc_class_len(const kalloc_class_table_t *t, size_t n,
				      size_t (*usable)(size_t n))
{
	if (__builtin_expect(n <= t->max, 1))
		return t->len[(n + 7) >> 3];
	return usable(n);
}

/* Do classes of this table above 8 bytes all come as multiples of 16?
 * (Then a request raised to 16 bytes is 16-aligned.) */
static inline int kalloc_class_table_16(size_t (*usable)(size_t n))
{
	for (size_t n = 9; n <= KALLOC_CLASS_TABLE_MAX; n++)
		if (usable(n) % 16)
			return 0;
	return 1;
}

#ifdef __cplusplus
}
#endif
#endif /* KALLOC_PLUGIN_H */

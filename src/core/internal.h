/* Internal interfaces of the libkalloc core.  Nothing here is exported. */
#ifndef KALLOC_INTERNAL_H
#define KALLOC_INTERNAL_H

#include <kalloc.h>
#include <kalloc/plugin.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>

#define HIDDEN __attribute__((visibility("hidden")))
/*
 * Small per-thread words read on hot paths: initial-exec TLS, one
 * instruction instead of a __tls_get_addr call.  A few bytes only, so a
 * dlopen'ed libkalloc still fits in glibc's static-TLS surplus.
 */
#define FAST_TLS _Thread_local __attribute__((tls_model("initial-exec")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Flags the core handles itself, whatever the backend declares. */
#define CORE_FLAGS (KALLOC_NOWARN | KALLOC_HIGHMEM | KALLOC_ACCOUNT | KALLOC_NOFAIL)

/* Largest alignment any handle accepts. */
#define CORE_MAX_ALIGN ((size_t)1 << 30)

/* The zero-size sentinels (kalloc_sentinel): max(align, 16) in page 0 up to
 * SENTINEL_LOW_MAX, else SENTINEL_HIGH, a multiple of every alignment a
 * handle accepts, in the top GiB (the kernel's half of the address space).
 * No process maps memory at either, so no backend's block is ever at a
 * sentinel, and the core never checks a backend's result for one. */
#define SENTINEL_LOW_MAX ((uintptr_t)4096)
#define SENTINEL_HIGH ((uintptr_t)0 - CORE_MAX_ALIGN)
_Static_assert(sizeof(void *) == 8, "the high sentinel needs a 64-bit "
	       "address space");

/* Instrumentation of a handle (kalloc_t.features); 0 means the plain path. */
#define FEAT_STATS   (1u << 0) /* counters (stats.c) */
#define FEAT_TRACK   (1u << 1) /* every block in the block table */
#define FEAT_LEAKS   (1u << 2) /* leak report at exit (debug.c) */
#define FEAT_ACCOUNT (1u << 3) /* some block was charged: frees look up */
#define DEBUG_F      (1u << 8) /* sanity checks on free */
#define DEBUG_Z      (1u << 9) /* red zone after the requested size */
#define DEBUG_P      (1u << 10) /* poison freed blocks, quarantine them */
#define DEBUG_U      (1u << 11) /* record and print call sites */
#define FEAT_DEBUG   (DEBUG_F | DEBUG_Z | DEBUG_P | DEBUG_U)

struct kalloc_counters {
	_Atomic uint64_t allocs, reallocs, frees, failures;
	_Atomic uint64_t bytes_requested, bytes_usable;
	_Atomic int64_t live_bytes, live_blocks;
	_Atomic int64_t peak_bytes, peak_blocks;
};

/*
 * One plugin instance.  Invariant: p, ops and state are non-NULL for the
 * handle's whole life, with ops' required entries set; fast is NULL or has
 * both entries (loader.c checks the descriptor before the handle exists).
 */
struct kalloc {
	const kalloc_plugin_t *p;
	const kalloc_plugin_ops_t *ops;
	const kalloc_plugin_fast_t *fast;
	const kalloc_plugin_cache_t *cache; /* NULL or every entry */
	kalloc_front_t front;  /* with fast: what kalloc_front hands out, set
				* once after init (front.c) */
	kalloc_malloc_t malloc; /* kalloc_malloc_entries': both NULL, or both
				 * set once after init (front.c) */
	void *state;
	void *dl;              /* dlopen handle, dlclose'd at kalloc_close */
	char *path;            /* plugin file */
	kalloc_flags_t honored; /* plugin flags | CORE_FLAGS */
	kalloc_flags_t direct_flags; /* flags the plain path passes as they are */
	size_t max_align;      /* min(plugin max_align, CORE_MAX_ALIGN) */
	size_t max_size;       /* min(plugin max_size, SIZE_MAX / 2) */
	_Atomic unsigned features; /* FEAT_* and DEBUG_* bits; set before the
				    * handle is registered, then only grow
				    * (kalloc__plain_add_features) */
	int plain;             /* !features && !kalloc__fail_armed (direct.c) */
	struct kalloc *plain_next; /* direct.c's list, under its lock */
	void (*plain_watch)(void *ctx, int plain); /* under direct.c's lock */
	void *plain_watch_ctx;
	struct kalloc_counters stats;
	struct kalloc *next;   /* registry of open handles (fork hooks) */
};

/* Frees a real block of a with no instrumentation, by the fast free when
 * the plugin has one; a pointer the backend says is not its own is
 * reported (dispatch.c). */
HIDDEN void kalloc__plain_free(kalloc_t *a, void *ptr, kalloc_layout_t old);

/* What the block table records of a tracked block. */
struct kalloc_block {
	void *ptr;             /* NULL: empty slot */
	kalloc_t *a;           /* owning handle */
	size_t size, align;    /* as requested */
	size_t len;            /* usable length the backend gave */
	const void *site;      /* caller of the allocating call */
	const void *free_site; /* caller of free (quarantined blocks) */
	int tid;
	struct kalloc_domain *domain; /* charged domain, or NULL */
	size_t charge;
};

/* blocktab.c */
HIDDEN bool kalloc__block_put(const struct kalloc_block *b);
HIDDEN bool kalloc__block_get(const void *ptr, struct kalloc_block *out);
HIDDEN bool kalloc__block_take(const void *ptr, struct kalloc_block *out);
HIDDEN size_t kalloc__block_foreach(void (*fn)(const struct kalloc_block *,
					       void *), void *ctx);
HIDDEN void kalloc__block_lock_all(void);
HIDDEN void kalloc__block_unlock_all(void);

/* track.c: the instrumented path, taken when features or ACCOUNT or an
 * injected failure may apply. */
HIDDEN int kalloc__track_realloc(const void *caller, kalloc_t *a, void *ptr,
				 kalloc_layout_t layout, kalloc_layout_t old,
				 kalloc_flags_t flags, kalloc_buf_t *out);
HIDDEN void kalloc__track_free(const void *caller, kalloc_t *a, void *ptr,
			       kalloc_layout_t old);
HIDDEN size_t kalloc__track_usable(kalloc_t *a, const void *ptr);

/* stats.c */
HIDDEN void kalloc__stats_alloc(kalloc_t *a, size_t requested, size_t len);
HIDDEN void kalloc__stats_free(kalloc_t *a, size_t len);
HIDDEN void kalloc__stats_resize(kalloc_t *a, size_t requested, size_t old_len,
				 size_t len);
HIDDEN void kalloc__stats_fail(kalloc_t *a);
/* KALLOC_STATS=slabinfo's report: every handle's rows as /proc/slabinfo. */
HIDDEN void kalloc__stats_print_slabinfo(int fd);

/* account.c */
HIDDEN int kalloc__charge(struct kalloc_domain *d, size_t bytes, bool force);
HIDDEN void kalloc__uncharge(struct kalloc_domain *d, size_t bytes);
HIDDEN struct kalloc_domain *kalloc__current_domain(void);

/* debug.c */
HIDDEN unsigned kalloc__debug_parse(const char *letters, bool *ok);
HIDDEN size_t kalloc__redzone(kalloc_t *a, size_t align);
HIDDEN void kalloc__debug_fill(kalloc_t *a, struct kalloc_block *b);
HIDDEN void kalloc__debug_check(kalloc_t *a, const struct kalloc_block *b,
				const void *caller, const char *op);
HIDDEN bool kalloc__debug_quarantine(kalloc_t *a, struct kalloc_block *b);
HIDDEN bool kalloc__debug_is_quarantined(const void *ptr,
					 struct kalloc_block *out);
HIDDEN void kalloc__report_block(const char *who, const struct kalloc_block *b,
				 const char *what, const void *caller);
HIDDEN void kalloc__debug_at_exit(bool leaks);
HIDDEN void kalloc__debug_forget(kalloc_t *a);
HIDDEN int kalloc__features_init(kalloc_t *a, const char *core_opts);

/* error.c */
HIDDEN int kalloc__error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
HIDDEN void kalloc__warn_failure(const kalloc_t *a, size_t size, size_t align,
				 kalloc_flags_t flags, int err);
HIDDEN bool kalloc__warn_ratelimit(void);
HIDDEN void kalloc__log(const char *who, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
HIDDEN void kalloc__corruption(const char *who, const void *ptr,
			       const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));

/* options.c */
HIDDEN const char *kalloc__env(const char *name);
HIDDEN long kalloc__option_long(const char *name, long def);
/* memtools.c: host->tools. */
HIDDEN const kalloc_tools_t *kalloc__tools(void);
/* fork: 0 prepare (takes the table's lock, a leaf), 1 parent, 2 child. */
HIDDEN void kalloc__tools_atfork(int phase);
/* Around a NOWAIT/ATOMIC call: false when it would wait (then EAGAIN). */
HIDDEN bool kalloc__tools_nowait_enter(void);
HIDDEN void kalloc__tools_nowait_exit(void);
/* host->options (kalloc_host_t). */
HIDDEN int kalloc__plugin_options(const char *plugin, const char *options,
				  const kalloc_plugin_option_t *spec, size_t n);
/* Splits "k=v,..." options: core keys (stats, leaks, debug) into core, the
 * rest into plugin.  Returns false (errmsg set) on a malformed core value. */
HIDDEN bool kalloc__options_split(const char *opts, char *plugin, size_t pcap,
				  char *core, size_t ccap);

/* loader.c */
HIDDEN int kalloc__load(const char *backend, const char *options,
			kalloc_t **out);
HIDDEN void kalloc__unload(kalloc_t *a);
HIDDEN extern const kalloc_host_t kalloc__host;
/* host->foreign_free: the handler of kalloc_set_foreign_free (front.c). */
HIDDEN void kalloc__foreign_free(void *ptr);

/* registry.c */
HIDDEN void kalloc__foreach_handle(void (*fn)(kalloc_t *, void *), void *ctx);
HIDDEN void kalloc__register(kalloc_t *a);
HIDDEN void kalloc__unregister(kalloc_t *a);

/* Does descriptor p, compiled with its struct_size, have member `field`
 * (one appended after the first ABI)? */
#define DESC_COVERS(p, field) \
	((p)->struct_size >= offsetof(kalloc_plugin_t, field) + sizeof((p)->field))

/* front.c: a->front from the plugin's front, or from its fast table when
 * it has none, and a->malloc from its malloc_entries; KALLOC_EABI (errmsg
 * naming path) when either answer is invalid.  Once, after init. */
HIDDEN int kalloc__front_init(kalloc_t *a, const char *path);

/* direct.c: each handle's plain word.  The inputs of a->plain change only
 * here: features after registration, and kalloc__fail_armed. */
HIDDEN void kalloc__plain_attach(kalloc_t *a);   /* at registration */
HIDDEN void kalloc__plain_detach(kalloc_t *a);   /* at unregistration */
HIDDEN void kalloc__plain_add_features(kalloc_t *a, unsigned bits);
HIDDEN void kalloc__fail_arm(int delta);         /* kalloc__fail_armed += delta */
HIDDEN void kalloc__plain_atfork(int phase);     /* 0 prepare, 1 parent, 2 child */

/* failslab.c */
HIDDEN extern _Atomic int kalloc__fail_armed; /* non-zero: consult kalloc__fail_now;
					     * changed by kalloc__fail_arm only */
HIDDEN extern FAST_TLS int kalloc__host_depth; /* nested host calls */
HIDDEN bool kalloc__fail_now(size_t size, kalloc_flags_t flags);
HIDDEN void kalloc__fail_init(void);

/* cache.c */
extern FAST_TLS int kalloc__cache_call;
#define CACHE_CALL_PLAIN    1 /* a cache allocation, no FAILSLAB */
#define CACHE_CALL_FAILSLAB 2 /* a cache allocation, FAILSLAB cache */
#define CACHE_CALL_DECIDED  3 /* the cache's backend call: already decided */
/* An object cache's backend call on a backend with a cache table: the
 * fresh block of exactly (a, size) this thread asks for next is an object
 * of class cls (the plugin's cache table), not an ordinary block.  Set
 * around the call only; a request of any other size (a red zone added)
 * takes an ordinary block. */
struct kalloc_cache_hint {
	kalloc_t *a;
	size_t size;
	void *cls;
};
HIDDEN extern FAST_TLS struct kalloc_cache_hint kalloc__cache_hint;
static inline void *kalloc__hinted_class(const kalloc_t *a, const void *ptr,
					 size_t size)
{
	const struct kalloc_cache_hint *h = &kalloc__cache_hint;
	return !ptr && h->a == a && h->size == size ? h->cls : NULL;
}
/* dispatch.c: one object of class cls; NOWAIT and ATOMIC never wait for
 * the memory tool's table (as plugin realloc) */
HIDDEN int kalloc__class_alloc(kalloc_t *a, void *cls, kalloc_flags_t pf,
			       kalloc_buf_t *out);
HIDDEN void kalloc__caches_foreach(kalloc_t *a,
				   void (*fn)(const kalloc_cache_t *, void *),
				   void *ctx);
HIDDEN void kalloc__caches_atfork(int phase);
/* kalloc_cache_* with the caller that debug and leak reports name */
HIDDEN void *kalloc__cache_alloc_at(const void *caller, kalloc_cache_t *c,
				    kalloc_flags_t flags);
HIDDEN void kalloc__cache_free_at(const void *caller, kalloc_cache_t *c,
				  void *obj);
HIDDEN size_t kalloc__cache_alloc_bulk_at(const void *caller, kalloc_cache_t *c,
					  kalloc_flags_t flags, size_t n,
					  void **objs);
HIDDEN void kalloc__cache_free_bulk_at(const void *caller, kalloc_cache_t *c,
				       size_t n, void **objs);
/* debug.c: "file(symbol+0x12) [0x...]" for a call site */
HIDDEN void kalloc__describe_caller(const void *site, char *buf, size_t cap);

#endif

/*
 * libkalloc-shim.so: glibc's allocation API served by the default kalloc
 * backend (KALLOC_BACKEND), for LD_PRELOAD.  A client of <kalloc.h> only.
 *
 * Every block is asked of the backend as a layout {size, align} with
 * align >= 16 (malloc's guarantee) and size >= 1 (malloc(0) is a unique real
 * block in glibc, not kalloc's zero-size sentinel); free and realloc pass
 * KALLOC_LAYOUT_UNKNOWN, since malloc's free has no size.  Every call passes
 * KALLOC_NOWARN: a failed malloc reports through errno, not on stderr.
 *
 * Where a pointer comes from, checked in this order by free, realloc and
 * malloc_usable_size (README.md beside this file has the whole policy):
 *   1. the bootstrap arena (bootstrap.c): blocks served while the backend
 *      is being opened; never freed;
 *   2. the shim's own mappings (maps.c): alignments above the backend's
 *      max_align, and bootstrap overflow;
 *   3. the backend, unless it says the pointer is not its block: then the
 *      pointer is foreign, reported once on stderr and left alone.  While
 *      the handle is plain, free asks the backend's fast free, which
 *      answers and frees in one lookup (0: foreign; a free_own hands such
 *      a pointer to the shim's foreign-free handler instead, and the
 *      arena and the mappings are looked at only then) and reports the
 *      misuse the backend detects (a double free of its own block aborts);
 *      otherwise, and for realloc and malloc_usable_size, kalloc_owns()
 *      answers (0: foreign).
 *
 * The direct path: when the backend has fast entries (kalloc_direct),
 * malloc, free and the aligned allocations call them, with nothing of the
 * core in between, as long as the handle's plain word is non-zero (no
 * stats, debug, leaks, accounting, and no fault injection armed:
 * kalloc_fail_nth in the program makes its next malloc take the core and
 * fail).  They call the backend's front (kalloc_front) first: the sizes
 * it takes go to its alloc, every free to its free, then to the rest free
 * on a 0 (kv's small sizes are slab's, with nothing of kv in between);
 * a backend without a front has its own entries there, so no branch asks
 * whether there is one.  malloc, free and the aligned allocations go to
 * the backend's malloc entries (kalloc_malloc_entries) in the front's
 * place, or to the shim's wrappers of the front for those it has not.
 * malloc and free do not read the plain word: each jumps through a
 * pointer that the core's watcher of the word (kalloc_direct_watch)
 * switches between those entries and the core's way.  Every other call
 * goes to the core; blocks cross freely between the paths.
 *
 * Start-up: the first allocation opens the backend with kalloc_default(),
 * which itself allocates (getenv, opendir, dlopen...).  A state word goes
 * UNINIT -> STARTING -> READY; while it is not READY every allocation, from
 * any thread, is served by the arena (then by mappings), so no lock is held
 * across dlopen and no thread waits for another.
 */
#include "shim.h"

#include <kalloc.h>

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { UNINIT, STARTING, READY };

static atomic_int state;
/*
 * The hot paths' second test (after the plain word below): set with state
 * READY (release), bits saying which calls may go straight to the core.
 * FAST_MALLOC: malloc's alignment is within the backend's limit.
 * FAST_FREE: the backend cannot tell its blocks from others, so free asks
 * nothing but "arena or mapping?".
 */
enum { FAST_MALLOC = 1, FAST_FREE = 2 };
static atomic_int fast;
/* Written once before state becomes READY (release), read after (acquire). */
static kalloc_t *backend;
static size_t backend_max_align;
static bool backend_zero; /* the backend honors KALLOC_ZERO */
static bool backend_tells; /* kalloc_owns can answer 0 (not -1 always) */
/* The backend declares KALLOC_DETECT_FOREIGN_FREE: its direct free answers
 * 0 for any pointer not its own, the arena's and the shim's mappings
 * included, so free asks it first and looks at those only on a 0. */
static bool backend_free_first;
static const char *backend_name;
/*
 * The backend's fast entries (kalloc_direct), which malloc and free call,
 * bypassing the core, while *plain is non-zero: the handle then has no
 * stats, debug... and no fault injection is armed.  plain points to a word
 * that stays 0 until the backend is up with direct entries; then to the
 * handle's (release, after direct is filled).  So the hot paths' first test
 * is one word, read at every call: fault injection is armed at run time.
 */
static kalloc_direct_t direct;
/* The backend's front, and the largest malloc it takes: its max_size when
 * malloc's alignment is within its max_align, else 0 (none).  Written
 * with direct, before plain. */
static kalloc_front_t front;
static size_t front_malloc_max;
/* What malloc, free and the aligned allocations call while plain, in the
 * front's place: the backend's malloc entries (kalloc_malloc_entries), or
 * front_malloc, front_free and front_aligned for those it has not.
 * Written with direct, before plain. */
static kalloc_malloc_t entries;
/*
 * What malloc and free jump to, with nothing before: while the handle is
 * plain, plain_malloc and plain_free; otherwise (and before the backend is
 * up) malloc_slow and free_slow_entry, the core's way.  The core's watcher
 * of the plain word (kalloc_direct_watch, plain_changed) switches them, so
 * neither reads the word.
 */
static void *malloc_slow(size_t size);
static void free_slow_entry(void *p);
static void *(*_Atomic hot_malloc)(size_t size) = malloc_slow;
static void (*_Atomic hot_free)(void *p) = free_slow_entry;
/* Chosen once in start(), before the watcher is set: plain_malloc is the
 * backend's malloc entry itself when that takes every size (no front with
 * a limit), else bounded_malloc.  plain_free, when the backend's free
 * tells foreign pointers, is its free_own, which hands them to
 * free_foreign (through kalloc_set_foreign_free), or free_first without
 * one; else free_guarded, which rules out the arena and the mappings
 * before the backend's free (own_free: its free_own, or a wrapper of its
 * free). */
static void *(*plain_malloc)(size_t size);
static void (*plain_free)(void *p);
static void (*own_free)(void *p);
static const volatile int never;
static const volatile int *_Atomic plain = &never;

/* The direct free of p: the front's, then the rest; 0 when neither takes
 * p (the backend can tell it is not its own). */
static inline int direct_free(void *p, kalloc_layout_t old)
{
	return front.free(front.state, p, old) ||
	       (front.rest_free && front.rest_free(front.rest_state, p, old));
}

/* The front's entries in malloc's shape, for a backend without malloc
 * entries.  size >= 1, within front_malloc_max (bounded_malloc sees to
 * both). */
static void *front_malloc(size_t size)
{
	return front.alloc(front.state, KALLOC_LAYOUT(size, SHIM_MALLOC_ALIGN)).ptr;
}

static int front_free(void *p)
{
	return front.free(front.state, p, KALLOC_LAYOUT_UNKNOWN);
}

static void *front_aligned(size_t align, size_t size)
{
	return front.alloc(front.state, KALLOC_LAYOUT(size, align)).ptr;
}

/* The hot entries' choices (below, with malloc and free). */
static void *bounded_malloc(size_t size);
static void free_int(void *p);
static void free_first(void *p);
static void free_guarded(void *p);
static void free_foreign(void *p);

/* The core's watcher of the plain word: it runs under the core's lock,
 * and only stores. */
static void plain_changed(void *ctx, int plain)
{
	(void)ctx;
	atomic_store_explicit(&hot_malloc, plain ? plain_malloc : malloc_slow,
			      memory_order_release);
	atomic_store_explicit(&hot_free, plain ? plain_free : free_slow_entry,
			      memory_order_release);
}

/* Set by the shim's constructor: libc is initialised, environ is final. */
static atomic_bool constructed;
extern char **environ;

__attribute__((constructor)) static void shim_constructed(void)
{
	atomic_store(&constructed, true);
}

/*
 * Opens the backend, or returns NULL while it cannot be used yet: another
 * thread (or this one, re-entered from kalloc_default) is opening it, or
 * libc has not set environ yet (ld.so allocating before libc's init), so
 * KALLOC_BACKEND could not be read.
 */
static __attribute__((noinline)) kalloc_t *start(void)
{
	int s = atomic_load(&state);
	if (s == READY)
		return backend;
	if (s == STARTING || (!environ && !atomic_load(&constructed)))
		return NULL;
	if (!atomic_compare_exchange_strong(&state, &s, STARTING))
		return s == READY ? backend : NULL;
	shim_map_atfork();
	kalloc_t *a = kalloc_default(); /* never NULL: falls back to libc */
	kalloc_info_t info;
	kalloc_info(a, &info);
	backend_max_align = info.max_align;
	backend_zero = info.flags & KALLOC_ZERO;
	backend_name = info.name;
	/* Can it tell its blocks from others?  Asked once, of an address that
	 * is certainly no block; -1 means never, so free skips the question. */
	backend_tells = kalloc_owns(a, &state) != -1;
	backend_free_first = info.detects & KALLOC_DETECT_FOREIGN_FREE;
	bool has_direct = kalloc_direct(a, &direct) == KALLOC_OK &&
			  kalloc_front(a, &front) == KALLOC_OK &&
			  backend_max_align >= SHIM_MALLOC_ALIGN;
	if (has_direct) {
		front_malloc_max = front.max_align >= SHIM_MALLOC_ALIGN ?
				   front.max_size : 0;
		bool own = kalloc_malloc_entries(a, &entries) == KALLOC_OK;
		if (!own)
			entries = (kalloc_malloc_t){ front_malloc, front_free,
						     front_aligned, NULL };
		if (!entries.aligned)
			entries.aligned = front_aligned;
		plain_malloc = own && front_malloc_max == SIZE_MAX ?
				       entries.malloc : bounded_malloc;
		own_free = entries.free_own ? entries.free_own : free_int;
		if (!backend_free_first)
			plain_free = free_guarded;
		else if (entries.free_own) {
			kalloc_set_foreign_free(free_foreign);
			plain_free = entries.free_own;
		} else {
			plain_free = free_first;
		}
		atomic_store_explicit(&plain, direct.plain, memory_order_release);
	}
	backend = a;
	atomic_store_explicit(&state, READY, memory_order_release);
	atomic_store_explicit(&fast,
			      (backend_max_align >= SHIM_MALLOC_ALIGN ? FAST_MALLOC : 0) |
			      (backend_tells ? 0 : FAST_FREE),
			      memory_order_release);
	if (has_direct)
		kalloc_direct_watch(a, plain_changed, NULL);
	return a;
}

/* The backend, opening it on first use; NULL while it is being opened.
 * A free or realloc of a pointer that is neither the arena's nor the
 * shim's opens it too: the program's first call may be a wild free, which
 * the backend's checks (KALLOC_DEBUG=F) must see. */
static inline kalloc_t *get_backend(void)
{
	if (shim_likely(atomic_load_explicit(&state, memory_order_acquire) ==
			READY))
		return backend;
	return start();
}

static inline bool is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

/* ---- foreign pointers ---------------------------------------------------- */

static atomic_bool foreign_reported;

/* One line on stderr for the first foreign pointer; later ones are silent. */
static void foreign(const char *fn, const void *p)
{
	if (atomic_exchange(&foreign_reported, true))
		return;
	int saved = errno; /* free keeps it */
	char line[256];
	int n = snprintf(line, sizeof(line),
			 "kalloc: shim: %s(%p): not a block of backend '%s' nor "
			 "of the shim; left alone (its memory leaks); further "
			 "such pointers are not reported\n",
			 fn, p, backend_name ? backend_name : "(not started)");
	if (n > 0) {
		ssize_t r = write(STDERR_FILENO, line,
				  (size_t)n < sizeof(line) ? (size_t)n :
							     sizeof(line) - 1);
		(void)r;
	}
	errno = saved;
}

/* May malloc and free take the direct entries now? */
static inline bool direct_now(void)
{
	return *atomic_load_explicit(&plain, memory_order_acquire);
}

/*
 * Is p the backend's block (or cannot it tell)?  Reports it if not, and
 * the caller leaves it alone.  But when the handle checks frees
 * (KALLOC_DEBUG=F) the answer is yes: the core's check then reports the
 * pointer and its caller and ends the process, as the user asked.
 */
static inline bool backend_block(kalloc_t *a, const char *fn, const void *p)
{
	if (shim_likely(a) && (!backend_tells || kalloc_owns(a, p) != 0))
		return true;
	if (a && kalloc_checks_frees(a))
		return true;
	foreign(fn, p);
	return false;
}

/* ---- the operations ------------------------------------------------------ */

/* Before the backend is up, or above its alignment limit: zeroed memory. */
static __attribute__((noinline)) void *alloc_elsewhere(kalloc_t *a,
						       size_t size,
						       size_t align)
{
	void *p = a ? NULL : shim_boot_alloc(size, align);
	if (!p)
		p = shim_map_alloc(size, align);
	if (!p)
		errno = ENOMEM;
	return p;
}

/* size >= 1; align a power of two >= 16; caller: the program's call site,
 * for the core's debug and leak reports. */
static inline void *alloc(size_t size, size_t align, bool zero,
			  const void *caller)
{
	kalloc_t *a = get_backend();
	if (shim_unlikely(!a || align > backend_max_align))
		return alloc_elsewhere(a, size, align);
	if (!zero && direct_now()) {
		kalloc_layout_t l = KALLOC_LAYOUT(size, align);
		if (size <= front.max_size && align <= front.max_align)
			return front.alloc(front.state, l).ptr;
		return direct.alloc(direct.state, l).ptr;
	}
	kalloc_flags_t f = KALLOC_NOWARN;
	if (zero && backend_zero)
		f |= KALLOC_ZERO;
	kalloc_buf_t b;
	if (shim_unlikely(kalloc_realloc_at(caller, a, NULL,
					    KALLOC_LAYOUT(size, align),
					    KALLOC_LAYOUT_UNKNOWN, f, &b))) {
		errno = ENOMEM;
		return NULL;
	}
	if (zero && !backend_zero)
		memset(b.ptr, 0, size);
	return b.ptr;
}

/* Frees p (not NULL) with the layout it was made with, or unknown. */
static inline void release(void *p, kalloc_layout_t old, const char *fn,
			   const void *caller)
{
	if (shim_boot_owns(p))
		return;
	int saved = errno;
	if (shim_unlikely(shim_map_maybe(p)) && shim_map_free(p))
		goto out;
	kalloc_t *a = get_backend();
	if (a && !kalloc_is_sentinel(p) && direct_now()) {
		if (!direct_free(p, old)) /* owns and free in one */
			foreign(fn, p);
	} else if (backend_block(a, fn, p)) {
		kalloc_free_at(caller, a, p, old);
	}
out:
	errno = saved;
}

/* realloc of a block the backend does not hold: allocate, copy, release. */
static void *move(void *p, size_t old_usable, size_t size,
		  const void *caller)
{
	void *q = alloc(size, SHIM_MALLOC_ALIGN, false, caller);
	if (!q)
		return NULL;
	memcpy(q, p, old_usable < size ? old_usable : size);
	if (!shim_boot_owns(p))
		shim_map_free(p);
	return q;
}

static void *do_realloc(void *p, size_t size, const void *caller)
{
	if (!p)
		return alloc(size ? size : 1, SHIM_MALLOC_ALIGN, false, caller);
	if (size == 0) { /* glibc: frees and returns NULL */
		release(p, KALLOC_LAYOUT_UNKNOWN, "realloc", caller);
		return NULL;
	}
	if (shim_boot_owns(p))
		return move(p, shim_boot_usable(p), size, caller);
	if (shim_map_maybe(p)) {
		size_t usable = shim_map_usable(p);
		if (usable)
			return move(p, usable, size, caller);
	}
	kalloc_t *a = get_backend();
	if (!backend_block(a, "realloc", p)) {
		errno = ENOMEM;
		return NULL;
	}
	kalloc_buf_t b;
	if (kalloc_realloc_at(caller, a, p, KALLOC_LAYOUT(size, SHIM_MALLOC_ALIGN),
			      KALLOC_LAYOUT_UNKNOWN, KALLOC_NOWARN, &b)) {
		errno = ENOMEM;
		return NULL;
	}
	return b.ptr;
}

/* An aligned allocation the front does not take. */
static __attribute__((noinline)) void *alloc_aligned_rest(size_t align,
							  size_t size,
							  const void *caller)
{
	return alloc(size ? size : 1, align, false, caller);
}

/* Does the front take {size, align} now?  (1 <= size in the same compare,
 * as malloc's path; align at least SHIM_MALLOC_ALIGN.) */
static inline bool front_takes(size_t size, size_t align)
{
	return direct_now() && size - 1 < front.max_size &&
	       align <= front.max_align;
}

/* align: a power of two (any size).  The aligned entry when the front
 * takes the layout. */
static inline void *alloc_aligned(size_t align, size_t size,
				  const void *caller)
{
	if (align < SHIM_MALLOC_ALIGN)
		align = SHIM_MALLOC_ALIGN;
	if (shim_likely(front_takes(size, align)))
		return entries.aligned(align, size);
	return alloc_aligned_rest(align, size, caller);
}

#define CALLER __builtin_return_address(0)

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- for new.cc ---------------------------------------------------------- */

void *shim_alloc(size_t size, size_t align, const void *caller)
{
	return alloc_aligned(align, size, caller);
}

void shim_free(void *p, size_t size, size_t align, const void *caller)
{
	if (!p)
		return;
	if (align < SHIM_MALLOC_ALIGN)
		align = SHIM_MALLOC_ALIGN;
	/* the layout shim_alloc asked for: size 0 was asked as 1 */
	kalloc_layout_t old = size ? KALLOC_LAYOUT(size, align) :
				     KALLOC_LAYOUT_UNKNOWN;
	release(p, old, "operator delete", caller);
}

/* ---- the exported API ---------------------------------------------------- */

/* The rest of malloc: the core, or the shim's own memory. */
static __attribute__((noinline)) void *malloc_core(size_t size,
						   const void *caller)
{
	if (shim_likely(atomic_load_explicit(&fast, memory_order_acquire) &
			FAST_MALLOC)) {
		kalloc_buf_t b;
		if (shim_likely(!kalloc_realloc_at(caller, backend, NULL,
						   KALLOC_LAYOUT(size, SHIM_MALLOC_ALIGN),
						   KALLOC_LAYOUT_UNKNOWN,
						   KALLOC_NOWARN, &b)))
			return b.ptr;
		errno = ENOMEM;
		return NULL;
	}
	return alloc(size, SHIM_MALLOC_ALIGN, false, caller);
}

/* A size the front does not take (0 too, as 1): the fast alloc. */
static __attribute__((noinline)) void *malloc_rest(size_t size)
{
	return direct.alloc(direct.state,
			    KALLOC_LAYOUT(size ? size : 1, SHIM_MALLOC_ALIGN)).ptr;
}

/* A size up to the front's limit (kv's) to its malloc entry (0 wraps and
 * goes the other way, as 1: malloc(0) is a real block); the others to the
 * fast alloc. */
static void *bounded_malloc(size_t size)
{
	if (shim_likely(size - 1 < front_malloc_max))
		return entries.malloc(size);
	return malloc_rest(size);
}

/* malloc and free jump to hot_malloc and hot_free: they are most of a
 * program's calls.  The fast allocs set errno themselves; the fast frees
 * keep it (plugin.h).  What they jump to sees the program's call site as
 * its own caller. */
SHIM_API void *malloc(size_t size)
{
	return atomic_load_explicit(&hot_malloc, memory_order_acquire)(size);
}

/* malloc while the handle is not plain, or before the backend is up: the
 * core, or the shim's own memory. */
static void *malloc_slow(size_t size)
{
	return malloc_core(size ? size : 1, CALLER);
}

static __attribute__((noinline)) void free_slow(void *p, const void *caller)
{
	if (p)
		release(p, KALLOC_LAYOUT_UNKNOWN, "free", caller);
}

/* The rest of free: the core, or free_slow's checks. */
static __attribute__((noinline)) void free_core(void *p, const void *caller)
{
	if (shim_likely((atomic_load_explicit(&fast, memory_order_acquire) &
			 FAST_FREE) && ((uintptr_t)p & 4095) && !shim_boot_owns(p))) {
		int saved = errno;
		kalloc_free_at(caller, backend, p, KALLOC_LAYOUT_UNKNOWN);
		errno = saved;
		return;
	}
	free_slow(p, caller);
}

/*
 * Page-aligned pointers may be the shim's mappings while it has some:
 * free_slow looks; so do NULL and the other addresses below 4096 (kalloc's
 * sentinels, ignored).  The fast free's 0 is a foreign pointer, left alone.
 */
/* The front's free answered 0: a block of the backend's rest (its fast
 * free, when it has a front), the arena's, the shim's, or foreign. */
static __attribute__((noinline)) void free_unowned(void *p)
{
	if (front.rest_free &&
	    front.rest_free(front.rest_state, p, KALLOC_LAYOUT_UNKNOWN))
		return; /* the backend's, not its front's */
	if (shim_boot_owns(p))
		return;
	if (shim_map_maybe(p)) {
		int saved = errno;
		bool mine = shim_map_free(p);
		errno = saved;
		if (mine)
			return;
	}
	foreign("free", p);
}

/* free's jumps while plain (the caller is the program's call site: free
 * jumps here).  The backend's free first, when a 0 from it says "not
 * mine"; the arena and the mappings only then. */
static void free_first(void *p)
{
	if (shim_unlikely((uintptr_t)p <= 4095))
		return free_core(p, CALLER);
	if (shim_unlikely(!entries.free(p)))
		free_unowned(p);
}

/* The foreign-free handler while the backend's free_own is free's jump:
 * what free_first does on a 0 (the caller is not the program's here; the
 * reports of the plain path name none). */
static void free_foreign(void *p)
{
	if (shim_unlikely((uintptr_t)p <= 4095))
		return free_core(p, NULL);
	free_unowned(p);
}

/* A backend that cannot tell takes every pointer (its free answers 1):
 * the arena's and the mappings' are ruled out first. */
static void free_guarded(void *p)
{
	if (shim_likely((uintptr_t)p > 4095 && !shim_map_maybe(p) &&
			!shim_boot_owns(p)))
		return own_free(p);
	free_core(p, CALLER);
}

/* own_free for a backend without free_own. */
static void free_int(void *p)
{
	(void)entries.free(p);
}

SHIM_API void free(void *p)
{
	atomic_load_explicit(&hot_free, memory_order_acquire)(p);
}

/* free while the handle is not plain, or before the backend is up. */
static void free_slow_entry(void *p)
{
	free_core(p, CALLER);
}

SHIM_API void *calloc(size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return alloc(bytes ? bytes : 1, SHIM_MALLOC_ALIGN, true, CALLER);
}

SHIM_API void *realloc(void *p, size_t size)
{
	return do_realloc(p, size, CALLER);
}

SHIM_API void *reallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return do_realloc(p, bytes, CALLER);
}

/* posix_memalign past the front, or before it is up. */
static __attribute__((noinline)) int memalign_rest(void **out, size_t align,
						   size_t size,
						   const void *caller)
{
	void *p = alloc_aligned_rest(align, size, caller);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

SHIM_API int posix_memalign(void **out, size_t align, size_t size)
{
	if (!is_pow2(align) || align % sizeof(void *))
		return EINVAL; /* *out untouched */
	if (align < SHIM_MALLOC_ALIGN)
		align = SHIM_MALLOC_ALIGN;
	if (shim_likely(front_takes(size, align))) {
		/* out waits in memory across the call, as in the core's
		 * plain path: no register to save.  errno is left as malloc
		 * leaves it: ENOMEM after a failure, as glibc's does. */
		struct {
			void **out;
		} c = { out };
		void *p = entries.aligned(align, size);
		__asm__("" : "+m"(c));
		if (shim_unlikely(!p))
			return ENOMEM;
		*c.out = p;
		return 0;
	}
	return memalign_rest(out, align, size, CALLER);
}

/* C11: a power-of-two alignment, else EINVAL (as glibc 2.38 and later). */
SHIM_API void *aligned_alloc(size_t align, size_t size)
{
	if (!is_pow2(align)) {
		errno = EINVAL;
		return NULL;
	}
	return alloc_aligned(align, size, CALLER);
}

/* glibc: an alignment that is not a power of two is rounded up to one. */
SHIM_API void *memalign(size_t align, size_t size)
{
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (align && !is_pow2(align))
		align = (size_t)1 << (64 - __builtin_clzll(align));
	return alloc_aligned(align, size, CALLER);
}

SHIM_API void *valloc(size_t size)
{
	return alloc_aligned(page_size(), size, CALLER);
}

/* Rounds the size up to whole pages (0 gives one page). */
SHIM_API void *pvalloc(size_t size)
{
	size_t page = page_size(), rounded;
	if (__builtin_add_overflow(size, page - 1, &rounded)) {
		errno = ENOMEM;
		return NULL;
	}
	rounded &= ~(page - 1);
	return alloc_aligned(page, rounded ? rounded : page, CALLER);
}

SHIM_API size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (shim_boot_owns(p))
		return shim_boot_usable(p);
	if (shim_map_maybe(p)) {
		size_t usable = shim_map_usable(p);
		if (usable)
			return usable;
	}
	kalloc_t *a = get_backend();
	if (!backend_block(a, "malloc_usable_size", p))
		return 0;
	return kalloc_usable_size(a, p);
}

/* Other names of the same functions: an old one glibc still exports, and
 * the __libc_ ones that glibc's own code and some programs call directly. */
#define SHIM_ALIAS(name, target) \
	SHIM_API __typeof(target) name __attribute__((alias(#target), copy(target)))

void cfree(void *p);
SHIM_ALIAS(cfree, free);
SHIM_ALIAS(__libc_malloc, malloc);
SHIM_ALIAS(__libc_free, free);
SHIM_ALIAS(__libc_calloc, calloc);
SHIM_ALIAS(__libc_realloc, realloc);
SHIM_ALIAS(__libc_memalign, memalign);
SHIM_ALIAS(__libc_valloc, valloc);
SHIM_ALIAS(__libc_pvalloc, pvalloc);

/*
 * The one operation, realloc, and what derives from it.  The core owns every
 * check a backend should not have to repeat: zero sizes and sentinels (G6,
 * G7), alignment and size limits (G2, G10), flags a backend refuses (G14),
 * injected failures and the failure warning (G5, G12).  A plugin's realloc
 * only ever sees the cases listed in <kalloc/plugin.h>.
 */
#include "internal.h"

#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static inline bool is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

void *kalloc_sentinel(size_t align)
{
	if (!is_pow2(align) || align < 16)
		align = 16;
	if (align > SENTINEL_LOW_MAX)
		return (void *)SENTINEL_HIGH;
	return (void *)align;
}

/*
 * Sentinels are the addresses max(align, 16) for align <= 4096, anything
 * up to 16 (the kernel's ZERO_OR_NULL_PTR), and SENTINEL_HIGH for larger
 * alignments: page 0 and the top of the address space, where no process
 * maps memory, so no block of any backend is ever at one.
 */
int kalloc_is_sentinel(const void *ptr)
{
	uintptr_t p = (uintptr_t)ptr;
	return p && (p <= 16 || (is_pow2(p) && p <= SENTINEL_LOW_MAX) ||
		     p == SENTINEL_HIGH);
}

int kalloc_layout_array(size_t n, size_t size, size_t align,
			kalloc_layout_t *out)
{
	if (!is_pow2(align))
		return kalloc__error(KALLOC_EINVAL,
				     "alignment %zu is not a power of two", align);
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes))
		return kalloc__error(KALLOC_EOVERFLOW,
				     "array of %zu elements of %zu bytes overflows "
				     "size_t (max %zu bytes)", n, size, SIZE_MAX);
	*out = KALLOC_LAYOUT(bytes, align);
	return KALLOC_OK;
}

static int fail(kalloc_t *a, int err, kalloc_layout_t l, kalloc_flags_t f)
{
	if (atomic_load_explicit(&a->features, memory_order_relaxed) & FEAT_STATS)
		kalloc__stats_fail(a);
	kalloc__warn_failure(a, l.size, l.align, f, err);
	return err;
}

static int check(kalloc_t *a, kalloc_layout_t l, kalloc_flags_t f)
{
	if (unlikely(!is_pow2(l.align)))
		return kalloc__error(KALLOC_EINVAL,
				     "alignment %zu is not a power of two; valid: "
				     "powers of two up to %zu", l.align, a->max_align);
	if (unlikely(l.align > a->max_align))
		return kalloc__error(KALLOC_EALIGN,
				     "alignment %zu is above backend '%s''s limit; "
				     "valid: powers of two up to %zu",
				     l.align, a->p->name, a->max_align);
	if (unlikely(f & ~KALLOC_FLAGS_ALL))
		return kalloc__error(KALLOC_EINVAL,
				     "unknown flag bits 0x%x; valid: KALLOC_* flags (0x%x)",
				     (unsigned)(f & ~KALLOC_FLAGS_ALL),
				     (unsigned)KALLOC_FLAGS_ALL);
	if (unlikely(f & ~a->honored))
		return kalloc__error(KALLOC_ENOTSUP,
				     "backend '%s' does not honor flags 0x%x; it "
				     "honors 0x%x", a->p->name,
				     (unsigned)(f & ~a->honored),
				     (unsigned)a->honored);
	if (unlikely(l.size > SIZE_MAX - l.align))
		return kalloc__error(KALLOC_EOVERFLOW,
				     "size %zu overflows when rounded to alignment %zu",
				     l.size, l.align);
	if (unlikely(l.size > a->max_size))
		return kalloc__error(KALLOC_ENOMEM,
				     "size %zu is above backend '%s''s limit of %zu bytes",
				     l.size, a->p->name, a->max_size);
	return KALLOC_OK;
}

__attribute__((noinline)) static int
backend_failed(kalloc_t *a, int err, kalloc_layout_t l, kalloc_flags_t f)
{
	return fail(a, kalloc__error(err, "backend '%s' could not serve %zu "
				     "bytes: %s", a->p->name, l.size,
				     kalloc_strerror(err)), l, f);
}

/* A free the backend says is none of its blocks (fast->free's 0). */
__attribute__((noinline, cold, noreturn)) static void
not_a_block(kalloc_t *a, const void *ptr)
{
	kalloc__corruption(a->p->name, ptr, "free of a pointer that backend "
			   "'%s' did not allocate, or that is no longer a "
			   "block of it (a double free)", a->p->name);
}

/* Frees a real block by the plugin's realloc (no fast entries). */
static __attribute__((noinline)) void realloc_free(kalloc_t *a, void *ptr,
						   kalloc_layout_t old)
{
	kalloc_buf_t ignored;
	a->ops->realloc(a->state, ptr, KALLOC_LAYOUT(0, 1), old, 0, &ignored);
}

/* Frees a real block without instrumentation: the fast free, or realloc.
 * a and ptr wait in memory across the fast free, for its rare 0: no
 * register to save, none to restore. */
static inline void plain_free(kalloc_t *a, void *ptr, kalloc_layout_t old)
{
	if (likely(a->fast)) {
		struct {
			kalloc_t *a;
			void *ptr;
		} c = { a, ptr };
		int ok = a->fast->free(a->state, ptr, old);
		__asm__("" : "+m"(c)); /* c is read back from memory */
		if (unlikely(!ok))
			not_a_block(c.a, c.ptr);
		return;
	}
	realloc_free(a, ptr, old);
}

void kalloc__plain_free(kalloc_t *a, void *ptr, kalloc_layout_t old)
{
	plain_free(a, ptr, old);
}

/*
 * Is this call instrumented?  Calls a backend makes through the host (kv on
 * slab and page) never are: the outer call already was, and one pointer must
 * not be tracked, charged or fault-injected twice.
 */
static inline bool instrumented(kalloc_t *a, unsigned extra)
{
	return (atomic_load_explicit(&a->features, memory_order_relaxed) | extra) &&
	       !kalloc__host_depth;
}

/* Frees a real block (not NULL, not a sentinel). */
static void release(const void *caller, kalloc_t *a, void *ptr,
		    kalloc_layout_t old)
{
	if (unlikely(instrumented(a, 0)))
		kalloc__track_free(caller, a, ptr, old);
	else
		plain_free(a, ptr, old);
}

/*
 * KALLOC_NOFAIL's wait between attempts: a yield, then sleeps growing to
 * 10 ms; one warning (unless NOWARN) once the wait passes a second.
 */
static void nofail_wait(kalloc_t *a, kalloc_layout_t l, kalloc_flags_t f,
			unsigned tries)
{
	if (tries < 8) {
		sched_yield();
		return;
	}
	unsigned ms = tries < 18 ? tries - 7 : 10;
	nanosleep(&(struct timespec){ 0, ms * 1000000L }, NULL);
	if (tries == 110 && !(f & KALLOC_NOWARN))
		kalloc__log(a->p->name, "a KALLOC_NOFAIL allocation of %zu bytes "
			    "has waited a second for memory; still retrying",
			    l.size);
}

static int realloc_once(const void *caller, kalloc_t *a, void *ptr,
			kalloc_layout_t layout, kalloc_layout_t old,
			kalloc_flags_t flags, kalloc_buf_t *out);

/* The plugin's realloc.  NOWAIT and ATOMIC hold the memory tool's table
 * for the call, or fail at once (memtools.c): they never wait for it. */
static inline int plugin_realloc(kalloc_t *a, void *ptr, kalloc_layout_t l,
				 kalloc_layout_t old, kalloc_flags_t pf,
				 kalloc_buf_t *out)
{
	if (likely(!(pf & (KALLOC_NOWAIT | KALLOC_ATOMIC))))
		return a->ops->realloc(a->state, ptr, l, old, pf, out);
	if (!kalloc__tools_nowait_enter())
		return KALLOC_EAGAIN;
	int err = a->ops->realloc(a->state, ptr, l, old, pf, out);
	kalloc__tools_nowait_exit();
	return err;
}

int kalloc__class_alloc(kalloc_t *a, void *cls, kalloc_flags_t pf,
			kalloc_buf_t *out)
{
	bool nowait = pf & (KALLOC_NOWAIT | KALLOC_ATOMIC);
	if (nowait && !kalloc__tools_nowait_enter())
		return KALLOC_EAGAIN;
	*out = a->cache->alloc(a->state, cls, pf);
	if (nowait)
		kalloc__tools_nowait_exit();
	return out->ptr ? KALLOC_OK : nowait ? KALLOC_EAGAIN : KALLOC_ENOMEM;
}

/* Every case: sentinels, zero sizes, checks, instrumentation. */
__attribute__((noinline)) static int
realloc_slow(const void *caller, kalloc_t *a, void *ptr, kalloc_layout_t layout,
	     kalloc_layout_t old, kalloc_flags_t flags, kalloc_buf_t *out)
{
	if (ptr && (kalloc_is_sentinel(ptr) || (old.size == 0 && old.align)))
		ptr = NULL;
	if (!ptr)
		old = KALLOC_LAYOUT_UNKNOWN;
	if (layout.size == 0) {
		if (unlikely(!is_pow2(layout.align)))
			return fail(a, kalloc__error(KALLOC_EINVAL,
				   "alignment %zu is not a power of two",
				   layout.align), layout, flags);
		if (ptr)
			release(caller, a, ptr, old);
		*out = (kalloc_buf_t){ kalloc_sentinel(layout.align), 0 };
		return KALLOC_OK;
	}
	int err = check(a, layout, flags);
	if (unlikely(err))
		return fail(a, err, layout, flags);
	if (!(flags & KALLOC_NOFAIL))
		return realloc_once(caller, a, ptr, layout, old, flags, out);
	/* Only a want of memory is retried: a valid request that the
	 * backend could serve later.  Warnings wait for the last word. */
	for (unsigned tries = 0;; tries++) {
		err = realloc_once(caller, a, ptr, layout, old,
				   flags | KALLOC_NOWARN, out);
		if (err != KALLOC_ENOMEM)
			break;
		nofail_wait(a, layout, flags, tries);
	}
	if (err)
		kalloc__warn_failure(a, layout.size, layout.align, flags, err);
	return err;
}

/* One attempt at a checked, non-zero-size request. */
static int realloc_once(const void *caller, kalloc_t *a, void *ptr,
			kalloc_layout_t layout, kalloc_layout_t old,
			kalloc_flags_t flags, kalloc_buf_t *out)
{
	int err;
	if (unlikely(instrumented(a, (unsigned)atomic_load_explicit(
					     &kalloc__fail_armed, memory_order_relaxed) |
				     (flags & KALLOC_ACCOUNT)))) {
		err = kalloc__track_realloc(caller, a, ptr, layout, old, flags, out);
		if (unlikely(err))
			return fail(a, err, layout, flags);
		return KALLOC_OK;
	}
	kalloc_flags_t pf = flags & KALLOC_PLUGIN_FLAGS;
	void *cls = kalloc__hinted_class(a, ptr, layout.size);
	err = unlikely(cls) ? kalloc__class_alloc(a, cls, pf, out) :
			      plugin_realloc(a, ptr, layout, old, pf, out);
	if (unlikely(err))
		return backend_failed(a, err, layout, flags);
	return KALLOC_OK;
}

/*
 * Rules a sentinel out in one cheap test: an address outside [SENTINEL_HIGH,
 * SENTINEL_LOW_MAX] (NULL is inside), the range shifted to start at 0.
 * False for the non-sentinels of that range, which no block can be at: the
 * slow path tells them apart.
 */
#define NOT_SENTINEL(p) \
	((uintptr_t)(p) - SENTINEL_HIGH > SENTINEL_LOW_MAX - SENTINEL_HIGH)

/*
 * A layout argument's two words, as registers.  GCC 12 otherwise stores a
 * struct argument to the stack and reloads it at each use, which on the
 * free path costs more than the checks.
 */
#define IN_REGS(size, align) __asm__("" : "+r"(size), "+r"(align))

/* A plain-path call, kept in memory across the plugin's call: the fast
 * path then holds no register across it (no callee-saved register to
 * save), and the rare outcomes (plain_result) read it there. */
struct plain_call {
	kalloc_t *a;
	size_t size, align;
	kalloc_flags_t flags;
	kalloc_buf_t *out;
};

/* The plain path's rare outcome: the plugin failed with err. */
__attribute__((noinline)) static int plain_failed(const struct plain_call *c,
						  int err)
{
	return backend_failed(c->a, err, KALLOC_LAYOUT(c->size, c->align),
			      c->flags);
}

/*
 * The fast alloc: a call of its own, which kalloc_alloc reaches by a jump
 * with its arguments where they are, and which keeps the call in memory
 * across the plugin's call: no register to save, none to restore.
 */
static __attribute__((noinline)) int plain_fast(kalloc_t *a, size_t size,
						size_t al, kalloc_flags_t flags,
						kalloc_buf_t *out)
{
	struct plain_call c = { a, size, al, flags, out };
	kalloc_buf_t b = a->fast->alloc(a->state, KALLOC_LAYOUT(size, al));
	__asm__("" : "+m"(c)); /* c is read back from memory */
	if (likely(b.ptr)) {
		*c.out = b;
		return KALLOC_OK;
	}
	return plain_failed(&c, KALLOC_ENOMEM);
}

/* The plain path with a plugin flag, or a plugin without fast entries. */
static __attribute__((noinline)) int plain_realloc(kalloc_t *a, size_t size,
						   size_t al,
						   kalloc_flags_t flags,
						   kalloc_buf_t *out)
{
	struct plain_call c = { a, size, al, flags, out };
	kalloc_buf_t b;
	int err = plugin_realloc(a, NULL, KALLOC_LAYOUT(size, al),
				 KALLOC_LAYOUT_UNKNOWN,
				 flags & KALLOC_PLUGIN_FLAGS, &b);
	if (likely(!err)) {
		*out = b;
		return KALLOC_OK;
	}
	return plain_failed(&c, err);
}

/*
 * The plain path: a fresh allocation with a valid layout, flags the plugin
 * takes as they are, and no instrumentation goes straight to the plugin
 * (plain_alloc).  (max_size <= SIZE_MAX / 2 and max_align <= CORE_MAX_ALIGN,
 * so size + align cannot overflow there.)  Everything else takes
 * realloc_slow.
 */
static inline __attribute__((always_inline)) bool
plain_ok(kalloc_t *a, size_t size, size_t al, kalloc_flags_t flags)
{
	return size - 1 < a->max_size && al - 1 < a->max_align &&
	       !(al & (al - 1)) && !(flags & ~a->direct_flags) &&
	       !(atomic_load_explicit(&a->features, memory_order_relaxed) |
		 atomic_load_explicit(&kalloc__fail_armed, memory_order_relaxed));
}

/* The plugin's fast alloc when no plugin flag is asked for, else its
 * realloc. */
static inline __attribute__((always_inline)) int
plain_alloc(kalloc_t *a, size_t size, size_t al, kalloc_flags_t flags,
	    kalloc_buf_t *out)
{
	if (likely(a->fast && !(flags & KALLOC_PLUGIN_FLAGS)))
		return plain_fast(a, size, al, flags, out);
	return plain_realloc(a, size, al, flags, out);
}

/* kalloc_realloc's body: the plain path when it may; a free (new size 0)
 * of a real block; realloc_slow for everything else. */
static inline __attribute__((always_inline)) int
do_realloc(const void *caller, kalloc_t *a, void *ptr, size_t size, size_t al,
	   kalloc_layout_t old, kalloc_flags_t flags, kalloc_buf_t *out)
{
	if (likely(!ptr && plain_ok(a, size, al, flags)))
		return plain_alloc(a, size, al, flags, out);
	if (size == 0 && NOT_SENTINEL(ptr) && (old.size || !old.align) && al &&
	    !(al & (al - 1)) && al <= CORE_MAX_ALIGN) {
		release(caller, a, ptr, old); /* a free: instrumented or not */
		*out = (kalloc_buf_t){ kalloc_sentinel(al), 0 };
		return KALLOC_OK;
	}
	return realloc_slow(caller, a, ptr, KALLOC_LAYOUT(size, al), old, flags,
			    out);
}

/* kalloc_alloc's other cases, in six words: the call is a jump, so the
 * plain path needs no frame (realloc_slow's nine words would take one). */
static __attribute__((noinline)) int alloc_slow(const void *caller,
						kalloc_t *a, size_t size,
						size_t al, kalloc_flags_t flags,
						kalloc_buf_t *out)
{
	return realloc_slow(caller, a, NULL, KALLOC_LAYOUT(size, al),
			    KALLOC_LAYOUT_UNKNOWN, flags, out);
}

int kalloc_realloc(kalloc_t *a, void *ptr, kalloc_layout_t layout,
		   kalloc_layout_t old, kalloc_flags_t flags, kalloc_buf_t *out)
{
	size_t size = layout.size, align = layout.align;
	IN_REGS(size, align);
	return do_realloc(__builtin_return_address(0), a, ptr, size, align, old,
			  flags, out);
}

int kalloc_realloc_at(const void *caller, kalloc_t *a, void *ptr,
		      kalloc_layout_t layout, kalloc_layout_t old,
		      kalloc_flags_t flags, kalloc_buf_t *out)
{
	size_t size = layout.size, align = layout.align;
	IN_REGS(size, align);
	return do_realloc(caller, a, ptr, size, align, old, flags, out);
}

int kalloc_alloc(kalloc_t *a, kalloc_layout_t layout, kalloc_flags_t flags,
		 kalloc_buf_t *out)
{
	size_t size = layout.size, align = layout.align;
	IN_REGS(size, align);
	if (likely(plain_ok(a, size, align, flags)))
		return plain_alloc(a, size, align, flags, out);
	return alloc_slow(__builtin_return_address(0), a, size, align, flags,
			  out);
}

/* Every free the plain path below does not take. */
__attribute__((noinline)) static void
free_slow(const void *caller, kalloc_t *a, void *ptr, kalloc_layout_t layout)
{
	if (!ptr || kalloc_is_sentinel(ptr) || (layout.size == 0 && layout.align))
		return;
	release(caller, a, ptr, layout);
}

/*
 * The plain path of a free: a pointer that is clearly no sentinel, a layout
 * that is not the zero-size one, no instrumentation.
 */
static inline __attribute__((always_inline)) void
do_free(const void *caller, kalloc_t *a, void *ptr, size_t size, size_t align)
{
	if (likely(NOT_SENTINEL(ptr) && (size || !align) &&
		   !atomic_load_explicit(&a->features, memory_order_relaxed))) {
		plain_free(a, ptr, KALLOC_LAYOUT(size, align));
		return;
	}
	free_slow(caller, a, ptr, KALLOC_LAYOUT(size, align));
}

void kalloc_free_at(const void *caller, kalloc_t *a, void *ptr,
		    kalloc_layout_t layout)
{
	size_t size = layout.size, align = layout.align;
	IN_REGS(size, align);
	do_free(caller, a, ptr, size, align);
}

void kalloc_free(kalloc_t *a, void *ptr, kalloc_layout_t layout)
{
	size_t size = layout.size, align = layout.align;
	IN_REGS(size, align);
	do_free(__builtin_return_address(0), a, ptr, size, align);
}

size_t kalloc_usable_size(kalloc_t *a, const void *ptr)
{
	if (!ptr || kalloc_is_sentinel(ptr))
		return 0;
	if (unlikely(instrumented(a, 0)))
		return kalloc__track_usable(a, ptr);
	return a->ops->usable_size(a->state, ptr);
}

int kalloc_owns(kalloc_t *a, const void *ptr)
{
	if (!ptr || kalloc_is_sentinel(ptr))
		return 0;
	return a->ops->owns ? a->ops->owns(a->state, ptr) : -1;
}

int kalloc_checks_frees(const kalloc_t *a)
{
	return (atomic_load_explicit(&a->features, memory_order_relaxed) &
		DEBUG_F) != 0;
}

/*
 * The kernel-style API of <kalloc/linux.h>, a client of the core API: every
 * call is one kalloc_realloc on the default, "page" or "kv" shared handle,
 * but for kmalloc, kzalloc and kfree of the common kind, which take the
 * default backend's front and fast entries (kalloc_front, kalloc_direct)
 * while its handle is plain, as the malloc shim does.
 */
#include "klinux.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

/* kmalloc's alignment: natural for powers of two up to a page, else 16. */
static size_t kmalloc_align(size_t size)
{
	if (size && !(size & (size - 1)))
		return size < PAGE_SIZE ? size : PAGE_SIZE;
	return 16;
}

/* A backend that cannot be opened fails the call with the loader's reason. */
static bool missing(const kalloc_t *a, gfp_t flags)
{
	if (a)
		return false;
	if (!(flags & __GFP_NOWARN) && kalloc__warn_ratelimit())
		kalloc__log(NULL, "allocation failed: %s", kalloc_errmsg());
	return true;
}

static void *alloc_on(const void *caller, kalloc_t *a, size_t size,
		      size_t align, gfp_t flags)
{
	kalloc_buf_t b;
	if (missing(a, flags) ||
	    kalloc_realloc_at(caller, a, NULL, KALLOC_LAYOUT(size, align),
			      KALLOC_LAYOUT_UNKNOWN, klinux_flags(flags), &b))
		return NULL;
	return b.ptr;
}

/*
 * krealloc/vrealloc/kvrealloc: a block that already fits stays where it is
 * (zeroing its tail under __GFP_ZERO), as the kernel does; otherwise the
 * backend's realloc grows it.
 */
static void *realloc_on(const void *caller, kalloc_t *a, const void *p,
			size_t size, size_t align, gfp_t flags)
{
	if (missing(a, flags))
		return NULL;
	void *ptr = (void *)p;
	if (!ZERO_OR_NULL_PTR(ptr) && size) {
		size_t have = kalloc_usable_size(a, ptr);
		if (have >= size && ((uintptr_t)ptr & (align - 1)) == 0) {
			if (flags & __GFP_ZERO)
				memset((char *)ptr + size, 0, have - size);
			return ptr;
		}
	}
	kalloc_buf_t b;
	if (kalloc_realloc_at(caller, a, ZERO_OR_NULL_PTR(ptr) ? NULL : ptr,
			      KALLOC_LAYOUT(size, align), KALLOC_LAYOUT_UNKNOWN,
			      klinux_flags(flags), &b))
		return NULL;
	return size ? b.ptr : ZERO_SIZE_PTR;
}

/* n * size, or 0 with errmsg set; the kernel fails array overflow quietly. */
static size_t array_bytes(size_t n, size_t size, int *overflowed)
{
	kalloc_layout_t l = { 0, 1 };
	*overflowed = kalloc_layout_array(n, size, 1, &l) != KALLOC_OK;
	return l.size;
}

static kalloc_t *k_alloc(void)
{
	return kalloc_default();
}

static kalloc_t *v_alloc(void)
{
	return kalloc_get("page");
}

/* kvmalloc with flags that may not block is kmalloc, as in the kernel:
 * the vmalloc side would have to map memory. */
static kalloc_t *kv_alloc(gfp_t flags)
{
	if (klinux_flags(flags) & (KALLOC_NOWAIT | KALLOC_ATOMIC))
		return k_alloc();
	return kalloc_get("kv");
}

/* The handle a kv* block belongs to: kv's, or the default one's for a
 * block kvmalloc took there (flags that may not block). */
static kalloc_t *kv_owner(const void *p, gfp_t flags)
{
	if (ZERO_OR_NULL_PTR(p))
		return kv_alloc(flags);
	bool may_block = !(klinux_flags(flags) & (KALLOC_NOWAIT | KALLOC_ATOMIC));
	if (!may_block && kalloc_owns(k_alloc(), p) == 1)
		return k_alloc(); /* kv would refuse the flags */
	kalloc_t *kv = kalloc_get("kv");
	return kv && kalloc_owns(kv, p) == 0 ? k_alloc() : kv;
}

/* ---- k* -------------------------------------------------------------- */

/* ---- the direct path ---------------------------------------------------
 *
 * The default handle's fast entries, used while *kplain is non-zero: the
 * handle then has no instrumentation and no fault injection is armed
 * (kalloc_direct's contract), so nothing is lost by skipping the core.
 * Its front (kalloc_front) first: the layouts it takes go to its alloc,
 * every free to its free, then its rest free (kv's small sizes are slab's,
 * with nothing of kv in between; without a front it is kdirect itself).
 * kplain points to a word that stays 0 until kdirect and kfront are filled
 * (release), then to the handle's.  A gfp that asks for more than a plain blocking
 * allocation (NOWAIT, ATOMIC, ACCOUNT, NOFAIL), a zeroed block above
 * DIRECT_ZERO_MAX (the backend may zero big ones more cheaply), and any
 * failure take the core's path, which warns, retries or reports.
 */
#define DIRECT_ZERO_MAX 4096 /* zeroed here: the whole usable length */

static kalloc_direct_t kdirect;
static kalloc_front_t kfront;
static size_t kdirect_max_align;
static const volatile int knever;
static const volatile int *_Atomic kplain = &knever;
static pthread_once_t kdirect_once = PTHREAD_ONCE_INIT;

static void kdirect_init(void)
{
	kalloc_t *a = k_alloc();
	kalloc_info_t info;
	kalloc_info(a, &info);
	if (kalloc_direct(a, &kdirect) != KALLOC_OK ||
	    kalloc_front(a, &kfront) != KALLOC_OK)
		return;
	kdirect_max_align = info.max_align;
	atomic_store_explicit(&kplain, kdirect.plain, memory_order_release);
}

static inline bool direct_now(void)
{
	return *atomic_load_explicit(&kplain, memory_order_acquire);
}

static __attribute__((noinline)) void *k_malloc_core(const void *caller,
						    size_t size, gfp_t flags)
{
	pthread_once(&kdirect_once, kdirect_init);
	return alloc_on(caller, k_alloc(), size, kmalloc_align(size), flags);
}

/* Can a request with these gfp bits take the direct path?  It may block
 * (__GFP_DIRECT_RECLAIM) and asks for no accounting nor NOFAIL; NOWARN
 * and the reclaim hints change nothing there, ZERO is the caller's. */
static inline bool direct_gfp(gfp_t flags)
{
	return (flags & (__GFP_DIRECT_RECLAIM | __GFP_ACCOUNT | __GFP_NOFAIL)) ==
	       __GFP_DIRECT_RECLAIM;
}

/*
 * The direct allocation.  The call waits in memory across the entry's call
 * (for a failure, which takes the core's path): no register to save, none
 * to restore.
 */
static __attribute__((noinline)) void *k_malloc_direct(const void *caller,
						       size_t size,
						       size_t align,
						       gfp_t flags)
{
	struct {
		const void *caller;
		size_t size;
		gfp_t flags;
	} c = { caller, size, flags };
	kalloc_layout_t l = KALLOC_LAYOUT(size, align);
	kalloc_buf_t b;
	if (likely(size <= kfront.max_size && align <= kfront.max_align))
		b = kfront.alloc(kfront.state, l);
	else
		b = kdirect.alloc(kdirect.state, l);
	__asm__("" : "+m"(c)); /* c is read back from memory */
	if (unlikely(!b.ptr))
		return k_malloc_core(c.caller, c.size, c.flags);
	if (c.flags & __GFP_ZERO) /* the whole block, as ksize() tells it */
		return memset(b.ptr, 0, b.len);
	return b.ptr;
}

static inline void *k_malloc(const void *caller, size_t size, gfp_t flags)
{
	if (!size)
		return ZERO_SIZE_PTR;
	size_t align = kmalloc_align(size);
	if (likely(direct_gfp(flags) &&
		   (!(flags & __GFP_ZERO) || size <= DIRECT_ZERO_MAX) &&
		   direct_now() && align <= kdirect_max_align))
		return k_malloc_direct(caller, size, align, flags);
	return k_malloc_core(caller, size, flags);
}

static void *k_memdup(const void *caller, const void *src, size_t len,
		      gfp_t flags)
{
	void *p = k_malloc(caller, len, flags);
	if (p && len)
		memcpy(p, src, len);
	return p;
}

/* n * size bytes, or NULL when that overflows (the kernel fails quietly). */
static void *k_array(const void *caller, size_t n, size_t size, gfp_t flags)
{
	int overflowed;
	size_t bytes = array_bytes(n, size, &overflowed);
	return overflowed ? NULL : k_malloc(caller, bytes, flags);
}

/* A free while the direct path is off (not started, instrumented, fault
 * injection armed): the core's.  A call of its own, so that k_free keeps
 * no register across a call. */
static __attribute__((noinline)) void k_free_core(const void *caller,
						  const void *p)
{
	kalloc_free_at(caller, k_alloc(), (void *)p, KALLOC_LAYOUT_UNKNOWN);
}

/* A free the front did not take: its rest free, else the core's, which
 * says what the pointer is. */
static __attribute__((noinline)) void k_free_rest(const void *caller,
						  const void *p)
{
	if (kfront.rest_free && kfront.rest_free(kfront.rest_state, (void *)p,
						 KALLOC_LAYOUT_UNKNOWN))
		return;
	k_free_core(caller, p);
}

static inline void k_free(const void *caller, const void *p)
{
	if (ZERO_OR_NULL_PTR(p))
		return;
	if (unlikely(!direct_now())) {
		k_free_core(caller, p);
		return;
	}
	/* the direct free answers 0, touching nothing, for a pointer its
	 * backend can tell is not its own; the call waits in memory across
	 * it, as in k_malloc_direct */
	struct {
		const void *caller, *p;
	} c = { caller, p };
	int ok = kfront.free(kfront.state, (void *)p, KALLOC_LAYOUT_UNKNOWN);
	__asm__("" : "+m"(c));
	if (unlikely(!ok))
		k_free_rest(c.caller, c.p);
}

/* len bytes of s and a terminating NUL. */
static char *k_strcopy(const void *caller, const char *s, size_t len,
		       gfp_t flags)
{
	char *p = k_malloc(caller, len + 1, flags);
	if (p) {
		memcpy(p, s, len);
		p[len] = 0;
	}
	return p;
}

API void *kmalloc(size_t size, gfp_t flags)
{
	return k_malloc(CALLER, size, flags);
}

API void *kzalloc(size_t size, gfp_t flags)
{
	return k_malloc(CALLER, size, flags | __GFP_ZERO);
}

API void *kmalloc_array(size_t n, size_t size, gfp_t flags)
{
	return k_array(CALLER, n, size, flags);
}

API void *kcalloc(size_t n, size_t size, gfp_t flags)
{
	return k_array(CALLER, n, size, flags | __GFP_ZERO);
}

API void *krealloc(const void *p, size_t new_size, gfp_t flags)
{
	return realloc_on(CALLER, k_alloc(), p, new_size,
			  kmalloc_align(new_size), flags);
}

API void *krealloc_array(void *p, size_t new_n, size_t new_size, gfp_t flags)
{
	int overflowed;
	size_t bytes = array_bytes(new_n, new_size, &overflowed);
	return overflowed ? NULL : realloc_on(CALLER, k_alloc(), p, bytes,
					      kmalloc_align(bytes), flags);
}

API void kfree(const void *p)
{
	k_free(CALLER, p);
}

API size_t ksize(const void *p)
{
	return ZERO_OR_NULL_PTR(p) ? 0 : kalloc_usable_size(k_alloc(), p);
}

API void *kmemdup(const void *src, size_t len, gfp_t flags)
{
	return k_memdup(CALLER, src, len, flags);
}

API char *kstrdup(const char *s, gfp_t flags)
{
	return s ? k_memdup(CALLER, s, strlen(s) + 1, flags) : NULL;
}

/* ---- v* (page backend) --------------------------------------------- */

API void *vmalloc(unsigned long size)
{
	if (!size)
		return NULL; /* the kernel's vmalloc(0) fails */
	return alloc_on(CALLER, v_alloc(), size, PAGE_SIZE, GFP_KERNEL);
}

API void *vzalloc(unsigned long size)
{
	if (!size)
		return NULL;
	return alloc_on(CALLER, v_alloc(), size, PAGE_SIZE, GFP_KERNEL | __GFP_ZERO);
}

API void *vrealloc(const void *p, size_t size, gfp_t flags)
{
	if (!size) {
		vfree(p);
		return NULL;
	}
	return realloc_on(CALLER, v_alloc(), p, size, PAGE_SIZE, flags);
}

API void vfree(const void *p)
{
	if (!ZERO_OR_NULL_PTR(p))
		kalloc_free_at(CALLER, v_alloc(), (void *)p, KALLOC_LAYOUT_UNKNOWN);
}

/* ---- kv* (kv backend) ---------------------------------------------- */

static void *kv_malloc(const void *caller, size_t size, gfp_t flags)
{
	if (!size)
		return ZERO_SIZE_PTR;
	return alloc_on(caller, kv_alloc(flags), size, kmalloc_align(size), flags);
}

API void *kvmalloc(size_t size, gfp_t flags)
{
	return kv_malloc(CALLER, size, flags);
}

API void *kvzalloc(size_t size, gfp_t flags)
{
	return kv_malloc(CALLER, size, flags | __GFP_ZERO);
}

static void *kv_array(const void *caller, size_t n, size_t size, gfp_t flags)
{
	int overflowed;
	size_t bytes = array_bytes(n, size, &overflowed);
	return overflowed ? NULL : kv_malloc(caller, bytes, flags);
}

API void *kvcalloc(size_t n, size_t size, gfp_t flags)
{
	return kv_array(CALLER, n, size, flags | __GFP_ZERO);
}

API void *kvrealloc(const void *p, size_t size, gfp_t flags)
{
	return realloc_on(CALLER, kv_owner(p, flags), p, size, kmalloc_align(size), flags);
}

API void kvfree(const void *p)
{
	if (!ZERO_OR_NULL_PTR(p))
		kalloc_free_at(CALLER, kv_owner(p, GFP_KERNEL), (void *)p, KALLOC_LAYOUT_UNKNOWN);
}

/* ---- _node variants: no NUMA, the node is ignored ------------------- */

API void *kmalloc_node(size_t size, gfp_t flags, int node)
{
	(void)node;
	return k_malloc(CALLER, size, flags);
}

API void *kzalloc_node(size_t size, gfp_t flags, int node)
{
	(void)node;
	return k_malloc(CALLER, size, flags | __GFP_ZERO);
}

API void *kmalloc_array_node(size_t n, size_t size, gfp_t flags, int node)
{
	(void)node;
	return k_array(CALLER, n, size, flags);
}

API void *kcalloc_node(size_t n, size_t size, gfp_t flags, int node)
{
	(void)node;
	return k_array(CALLER, n, size, flags | __GFP_ZERO);
}

API void *kvmalloc_node(size_t size, gfp_t flags, int node)
{
	(void)node;
	return kv_malloc(CALLER, size, flags);
}

API void *kvzalloc_node(size_t size, gfp_t flags, int node)
{
	(void)node;
	return kv_malloc(CALLER, size, flags | __GFP_ZERO);
}

API void *kvmalloc_array(size_t n, size_t size, gfp_t flags)
{
	return kv_array(CALLER, n, size, flags);
}

/* ---- sensitive frees: the block is wiped first ---------------------- */

/* A wipe the compiler may not drop as a dead store. */
static void wipe(const void *p, size_t n)
{
	memset((void *)p, 0, n);
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

API void kfree_sensitive(const void *p)
{
	if (ZERO_OR_NULL_PTR(p))
		return;
	wipe(p, kalloc_usable_size(k_alloc(), p));
	k_free(CALLER, p);
}

API void kvfree_sensitive(const void *p, size_t len)
{
	if (ZERO_OR_NULL_PTR(p))
		return;
	kalloc_t *a = kv_owner(p, GFP_KERNEL);
	size_t have = kalloc_usable_size(a, p);
	wipe(p, have > len ? have : len);
	kalloc_free_at(CALLER, a, (void *)p, KALLOC_LAYOUT_UNKNOWN);
}

/* ---- strings and copies ---------------------------------------------- */

API char *kstrndup(const char *s, size_t max, gfp_t flags)
{
	return s ? k_strcopy(CALLER, s, strnlen(s, max), flags) : NULL;
}

API char *kmemdup_nul(const char *s, size_t len, gfp_t flags)
{
	return s && len != SIZE_MAX ? k_strcopy(CALLER, s, len, flags) : NULL;
}

API const char *kstrdup_const(const char *s, gfp_t flags)
{
	return s ? k_memdup(CALLER, s, strlen(s) + 1, flags) : NULL;
}

API void kfree_const(const void *p)
{
	k_free(CALLER, p);
}

API void *kvmemdup(const void *src, size_t len, gfp_t flags)
{
	void *p = kv_malloc(CALLER, len, flags);
	if (p && len)
		memcpy(p, src, len);
	return p;
}

/* ---- more of vmalloc ------------------------------------------------- */

/* n * size bytes of vmalloc; NULL when that overflows or is 0. */
static void *v_array(const void *caller, size_t n, size_t size, gfp_t flags)
{
	int overflowed;
	size_t bytes = array_bytes(n, size, &overflowed);
	if (overflowed || !bytes)
		return NULL;
	return alloc_on(caller, v_alloc(), bytes, PAGE_SIZE, flags);
}

API void *vcalloc(size_t n, size_t size)
{
	return v_array(CALLER, n, size, GFP_KERNEL | __GFP_ZERO);
}

API void *vmalloc_array(size_t n, size_t size)
{
	return v_array(CALLER, n, size, GFP_KERNEL);
}

API void *__vmalloc(unsigned long size, gfp_t flags)
{
	if (!size)
		return NULL;
	return alloc_on(CALLER, v_alloc(), size, PAGE_SIZE, flags);
}

API size_t kmalloc_size_roundup(size_t size)
{
	if (!size)
		return 0;
	kalloc_t *a = k_alloc();
	void *p = alloc_on(CALLER, a, size, kmalloc_align(size),
			   GFP_KERNEL | __GFP_NOWARN);
	if (!p)
		return size;
	size_t have = kalloc_usable_size(a, p);
	kalloc_free_at(CALLER, a, p, KALLOC_LAYOUT_UNKNOWN);
	return have;
}

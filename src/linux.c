/*
 * The kernel-style API of <kalloc/linux.h>, a client of the core API: every
 * call is one kalloc_realloc on the default, "page" or "kv" shared handle.
 */
#include "core/internal.h"

#include <kalloc/linux.h>

#include <string.h>

#define API __attribute__((visibility("default")))

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

/* CALLER: the call site recorded by debug and leak reports, the user's. */
#define CALLER __builtin_return_address(0)

static void *alloc_on(const void *caller, kalloc_t *a, size_t size,
		      size_t align, gfp_t flags)
{
	kalloc_buf_t b;
	if (missing(a, flags) ||
	    kalloc_realloc_at(caller, a, NULL, KALLOC_LAYOUT(size, align),
			      KALLOC_LAYOUT_UNKNOWN, flags, &b))
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
			      flags, &b))
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

static kalloc_t *kv_alloc(void)
{
	return kalloc_get("kv");
}

/* ---- k* -------------------------------------------------------------- */

static void *k_malloc(const void *caller, size_t size, gfp_t flags)
{
	if (!size)
		return ZERO_SIZE_PTR;
	return alloc_on(caller, k_alloc(), size, kmalloc_align(size), flags);
}

static void *k_memdup(const void *caller, const void *src, size_t len,
		      gfp_t flags)
{
	void *p = k_malloc(caller, len, flags);
	if (p && len)
		memcpy(p, src, len);
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
	int overflowed;
	size_t bytes = array_bytes(n, size, &overflowed);
	return overflowed ? NULL : k_malloc(CALLER, bytes, flags);
}

API void *kcalloc(size_t n, size_t size, gfp_t flags)
{
	int overflowed;
	size_t bytes = array_bytes(n, size, &overflowed);
	return overflowed ? NULL : k_malloc(CALLER, bytes, flags | __GFP_ZERO);
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
	if (!ZERO_OR_NULL_PTR(p))
		kalloc_free_at(CALLER, k_alloc(), (void *)p, KALLOC_LAYOUT_UNKNOWN);
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
	return alloc_on(caller, kv_alloc(), size, kmalloc_align(size), flags);
}

API void *kvmalloc(size_t size, gfp_t flags)
{
	return kv_malloc(CALLER, size, flags);
}

API void *kvzalloc(size_t size, gfp_t flags)
{
	return kv_malloc(CALLER, size, flags | __GFP_ZERO);
}

API void *kvcalloc(size_t n, size_t size, gfp_t flags)
{
	int overflowed;
	size_t bytes = array_bytes(n, size, &overflowed);
	return overflowed ? NULL : kv_malloc(CALLER, bytes, flags | __GFP_ZERO);
}

API void *kvrealloc(const void *p, size_t size, gfp_t flags)
{
	return realloc_on(CALLER, kv_alloc(), p, size, kmalloc_align(size), flags);
}

API void kvfree(const void *p)
{
	if (!ZERO_OR_NULL_PTR(p))
		kalloc_free_at(CALLER, kv_alloc(), (void *)p, KALLOC_LAYOUT_UNKNOWN);
}

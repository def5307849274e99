/*
 * kalloc/linux.h - the Linux kernel's allocation API (6.13 names and
 * signatures), so kernel-style code compiles unchanged in user space.
 *
 *   k*   (kmalloc, krealloc, kfree...)  the default backend (KALLOC_BACKEND)
 *   v*   (vmalloc, vrealloc, vfree...)  the "page" backend
 *   kv*  (kvmalloc, kvrealloc, kvfree)  the "kv" backend
 *
 * Kernel semantics kept:
 *   - kmalloc(0) returns ZERO_SIZE_PTR; kfree/ksize accept it (ksize gives 0);
 *   - krealloc(p, 0) frees p and returns ZERO_SIZE_PTR; if ksize(p) already
 *     fits, krealloc returns p unchanged (zeroing the tail under __GFP_ZERO);
 *     on failure it returns NULL and p is untouched;
 *   - power-of-two sizes up to PAGE_SIZE are naturally aligned, others are
 *     aligned to 16 bytes (larger sizes to 16 or their power of two);
 *   - kmalloc_array, kcalloc, krealloc_array and kvcalloc return NULL when
 *     n * size overflows;
 *   - a failed call prints a one-line warning (rate limited) unless
 *     __GFP_NOWARN.
 * When a backend is missing (no "page" plugin installed), the v* and kv*
 * calls return NULL with that warning.
 */
#ifndef KALLOC_LINUX_H
#define KALLOC_LINUX_H

#include <kalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef kalloc_flags_t gfp_t;

#define __GFP_ZERO    KALLOC_ZERO
#define __GFP_NOWARN  KALLOC_NOWARN
#define __GFP_HIGHMEM KALLOC_HIGHMEM
#define __GFP_ACCOUNT KALLOC_ACCOUNT
#define GFP_KERNEL    KALLOC_KERNEL
#define GFP_NOWAIT    KALLOC_NOWAIT
#define GFP_ATOMIC    KALLOC_ATOMIC
#define GFP_KERNEL_ACCOUNT (GFP_KERNEL | __GFP_ACCOUNT)
#define GFP_HIGHUSER  (GFP_KERNEL | __GFP_HIGHMEM)

#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif

#define ZERO_SIZE_PTR KALLOC_ZERO_SIZE_PTR
#define ZERO_OR_NULL_PTR(x) ((unsigned long)(x) <= (unsigned long)ZERO_SIZE_PTR)

KALLOC_API void *kmalloc(size_t size, gfp_t flags);
KALLOC_API void *kzalloc(size_t size, gfp_t flags);
KALLOC_API void *kmalloc_array(size_t n, size_t size, gfp_t flags);
KALLOC_API void *kcalloc(size_t n, size_t size, gfp_t flags);
KALLOC_API void *krealloc(const void *p, size_t new_size, gfp_t flags);
KALLOC_API void *krealloc_array(void *p, size_t new_n, size_t new_size,
				gfp_t flags);
KALLOC_API void kfree(const void *p);
KALLOC_API size_t ksize(const void *p);
KALLOC_API void *kmemdup(const void *src, size_t len, gfp_t flags);
KALLOC_API char *kstrdup(const char *s, gfp_t flags);

KALLOC_API void *vmalloc(unsigned long size);
KALLOC_API void *vzalloc(unsigned long size);
KALLOC_API void *vrealloc(const void *p, size_t size, gfp_t flags);
KALLOC_API void vfree(const void *p);

KALLOC_API void *kvmalloc(size_t size, gfp_t flags);
KALLOC_API void *kvzalloc(size_t size, gfp_t flags);
KALLOC_API void *kvcalloc(size_t n, size_t size, gfp_t flags);
KALLOC_API void *kvrealloc(const void *p, size_t size, gfp_t flags);
KALLOC_API void kvfree(const void *p);

#ifdef __cplusplus
}
#endif
#endif /* KALLOC_LINUX_H */

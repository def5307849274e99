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
 *   - power-of-two sizes up to PAGE_SIZE are naturally aligned, larger
 *     powers of two to PAGE_SIZE, all other sizes to 16 bytes;
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
#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * gfp_t with the kernel's bit values (6.13, include/linux/gfp_types.h), so
 * code that tests bits behaves as in the kernel.  What the bits mean here:
 *   no __GFP_DIRECT_RECLAIM   the call must not block (KALLOC_NOWAIT), with
 *                             __GFP_HIGH it may use a reserve (KALLOC_ATOMIC);
 *   __GFP_ZERO, __GFP_NOWARN, __GFP_ACCOUNT   as KALLOC_ZERO, _NOWARN, _ACCOUNT;
 *   __GFP_NOFAIL              never NULL: retries; injected failures skip it;
 *   the others (IO, FS, NORETRY, RETRY_MAYFAIL, COMP, HARDWALL, MOVABLE...)
 *                             are accepted and have no effect in user space.
 */
typedef unsigned int gfp_t;

#define __GFP_DMA            0x01u
#define __GFP_HIGHMEM        0x02u
#define __GFP_DMA32          0x04u
#define __GFP_MOVABLE        0x08u
#define __GFP_RECLAIMABLE    0x10u
#define __GFP_HIGH           0x20u
#define __GFP_IO             0x40u
#define __GFP_FS             0x80u
#define __GFP_ZERO           0x100u
#define __GFP_DIRECT_RECLAIM 0x400u
#define __GFP_KSWAPD_RECLAIM 0x800u
#define __GFP_WRITE          0x1000u
#define __GFP_NOWARN         0x2000u
#define __GFP_RETRY_MAYFAIL  0x4000u
#define __GFP_NOFAIL         0x8000u
#define __GFP_NORETRY        0x10000u
#define __GFP_MEMALLOC       0x20000u
#define __GFP_COMP           0x40000u
#define __GFP_NOMEMALLOC     0x80000u
#define __GFP_HARDWALL       0x100000u
#define __GFP_THISNODE       0x200000u
#define __GFP_ACCOUNT        0x400000u
#define __GFP_RECLAIM        (__GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM)

#define GFP_ATOMIC           (__GFP_HIGH | __GFP_KSWAPD_RECLAIM)
#define GFP_KERNEL           (__GFP_RECLAIM | __GFP_IO | __GFP_FS)
#define GFP_KERNEL_ACCOUNT   (GFP_KERNEL | __GFP_ACCOUNT)
#define GFP_NOWAIT           (__GFP_KSWAPD_RECLAIM)
#define GFP_NOIO             (__GFP_RECLAIM)
#define GFP_NOFS             (__GFP_RECLAIM | __GFP_IO)
#define GFP_USER             (__GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL)
#define GFP_DMA              __GFP_DMA
#define GFP_DMA32            __GFP_DMA32
#define GFP_HIGHUSER         (GFP_USER | __GFP_HIGHMEM)
#define GFP_HIGHUSER_MOVABLE (GFP_HIGHUSER | __GFP_MOVABLE)

static inline int gfpflags_allow_blocking(const gfp_t gfp_flags)
{
	return !!(gfp_flags & __GFP_DIRECT_RECLAIM);
}

/* No NUMA here: a node argument is accepted and ignored. */
#define NUMA_NO_NODE (-1)

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

/* _node variants: the node is ignored (no NUMA in user space). */
KALLOC_API void *kmalloc_node(size_t size, gfp_t flags, int node);
KALLOC_API void *kzalloc_node(size_t size, gfp_t flags, int node);
KALLOC_API void *kcalloc_node(size_t n, size_t size, gfp_t flags, int node);
KALLOC_API void *kmalloc_array_node(size_t n, size_t size, gfp_t flags,
				    int node);
KALLOC_API void *kvmalloc_node(size_t size, gfp_t flags, int node);
KALLOC_API void *kvzalloc_node(size_t size, gfp_t flags, int node);
KALLOC_API void *kvmalloc_array(size_t n, size_t size, gfp_t flags);

/* The whole usable block (ksize bytes; len for kvfree_sensitive's vmalloc
 * side too) is wiped before it is freed. */
KALLOC_API void kfree_sensitive(const void *p);
KALLOC_API void kvfree_sensitive(const void *p, size_t len);

/* Strings and copies.  kstrdup_const always copies (user space has no
 * kernel .rodata to recognise); kfree_const frees what it returned. */
KALLOC_API char *kstrndup(const char *s, size_t max, gfp_t flags);
KALLOC_API char *kmemdup_nul(const char *s, size_t len, gfp_t flags);
KALLOC_API const char *kstrdup_const(const char *s, gfp_t flags);
KALLOC_API void kfree_const(const void *p);
KALLOC_API void *kvmemdup(const void *src, size_t len, gfp_t flags);

KALLOC_API void *vcalloc(size_t n, size_t size);
KALLOC_API void *vmalloc_array(size_t n, size_t size);
KALLOC_API void *__vmalloc(unsigned long size, gfp_t flags);

/* The usable size kmalloc(size) would give (0 for 0; size itself when
 * kmalloc cannot serve it).  It asks the backend by allocating once. */
KALLOC_API size_t kmalloc_size_roundup(size_t size);

/* ---- object caches: kmem_cache (<linux/slab.h>) ------------------------ */

/*
 * struct kmem_cache is the core's kalloc_cache_t (see <kalloc.h> for the
 * semantics: SLUB's, on the default backend).  kmem_cache_create takes
 * 6.13's two forms, told apart by _Generic as the kernel does:
 *   kmem_cache_create(name, size, align, flags, ctor)
 *   kmem_cache_create(name, size, &(struct kmem_cache_args){...}, flags)
 */
struct kmem_cache;
typedef unsigned int slab_flags_t;

#define SLAB_HWCACHE_ALIGN   KALLOC_CACHE_HWCACHE_ALIGN
#define SLAB_PANIC           KALLOC_CACHE_PANIC
#define SLAB_ACCOUNT         KALLOC_CACHE_ACCOUNT
#define SLAB_TYPESAFE_BY_RCU KALLOC_CACHE_TYPESAFE_BY_RCU
#define SLAB_POISON          KALLOC_CACHE_POISON
#define SLAB_RED_ZONE        KALLOC_CACHE_RED_ZONE
#define SLAB_STORE_USER      KALLOC_CACHE_STORE_USER
#define SLAB_NO_MERGE        KALLOC_CACHE_NO_MERGE
#define SLAB_RECLAIM_ACCOUNT KALLOC_CACHE_RECLAIM_ACCOUNT
#define SLAB_FAILSLAB        KALLOC_CACHE_FAILSLAB
#define SLAB_CONSISTENCY_CHECKS KALLOC_CACHE_SANITY

struct kmem_cache_args {
	unsigned int align;
	unsigned int useroffset;     /* usercopy region: accepted, unchecked */
	unsigned int usersize;
	unsigned int freeptr_offset; /* accepted; the free link is never in
				      * the object here */
	_Bool use_freeptr_offset;
	void (*ctor)(void *);
};

KALLOC_API struct kmem_cache *__kmem_cache_create_args(const char *name,
		unsigned int object_size, struct kmem_cache_args *args,
		slab_flags_t flags);
KALLOC_API struct kmem_cache *__kmem_cache_default_args(const char *name,
		unsigned int object_size, struct kmem_cache_args *args,
		slab_flags_t flags);
KALLOC_API struct kmem_cache *__kmem_cache_create(const char *name,
		unsigned int size, unsigned int align, slab_flags_t flags,
		void (*ctor)(void *));
KALLOC_API struct kmem_cache *kmem_cache_create_usercopy(const char *name,
		unsigned int size, unsigned int align, slab_flags_t flags,
		unsigned int useroffset, unsigned int usersize,
		void (*ctor)(void *));

#define kmem_cache_create(__name, __object_size, __args, ...)            \
	_Generic((__args),                                                \
		struct kmem_cache_args *: __kmem_cache_create_args,       \
		void *: __kmem_cache_default_args,                        \
		default: __kmem_cache_create)(__name, __object_size,      \
					      __args, __VA_ARGS__)

#define KMEM_CACHE(__struct, __flags)                                     \
	__kmem_cache_create_args(#__struct, sizeof(struct __struct),      \
		&(struct kmem_cache_args){                                \
			.align = __alignof__(struct __struct),            \
		}, (__flags))

#define KMEM_CACHE_USERCOPY(__struct, __flags, __field)                   \
	__kmem_cache_create_args(#__struct, sizeof(struct __struct),      \
		&(struct kmem_cache_args){                                \
			.align = __alignof__(struct __struct),            \
			.useroffset = __builtin_offsetof(struct __struct, __field), \
			.usersize = sizeof(((struct __struct *)0)->__field), \
		}, (__flags))

KALLOC_API void *kmem_cache_alloc(struct kmem_cache *s, gfp_t flags);
KALLOC_API void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t flags);
KALLOC_API void *kmem_cache_alloc_node(struct kmem_cache *s, gfp_t flags,
				       int node);
KALLOC_API void kmem_cache_free(struct kmem_cache *s, void *obj);
/* All or nothing: size, or 0 with nothing allocated. */
KALLOC_API int kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t flags,
				     size_t size, void **p);
KALLOC_API void kmem_cache_free_bulk(struct kmem_cache *s, size_t size,
				     void **p);
KALLOC_API unsigned int kmem_cache_size(struct kmem_cache *s);
KALLOC_API int kmem_cache_shrink(struct kmem_cache *s);
/* With live objects: "Slab cache still has objects", nothing freed. */
KALLOC_API void kmem_cache_destroy(struct kmem_cache *s);

/* ---- mempool (<linux/mempool.h>) ----------------------------------------- */

/*
 * A pool that guarantees forward progress: it keeps min_nr elements in
 * reserve.  mempool_alloc first asks the backing allocator without
 * blocking, then takes a reserved element; when none is left, a mask that
 * may block (GFP_KERNEL) waits until mempool_free returns one (retrying the
 * allocator every 5 s), so it never returns NULL; a mask that may not
 * (GFP_NOWAIT, GFP_ATOMIC) returns NULL instead.  mempool_free refills the
 * reserve before it frees to the allocator.
 */
typedef void *(mempool_alloc_t)(gfp_t gfp_mask, void *pool_data);
typedef void (mempool_free_t)(void *element, void *pool_data);

typedef struct mempool {
	pthread_mutex_t lock;
	pthread_cond_t wait;
	int min_nr;          /* elements kept in reserve */
	int curr_nr;         /* elements now in reserve */
	void **elements;
	void *pool_data;
	mempool_alloc_t *alloc;
	mempool_free_t *free;
	int nr_waiting;      /* threads waiting in mempool_alloc (under lock) */
} mempool_t;

KALLOC_API int mempool_init(mempool_t *pool, int min_nr,
			    mempool_alloc_t *alloc_fn, mempool_free_t *free_fn,
			    void *pool_data);
KALLOC_API void mempool_exit(mempool_t *pool);
KALLOC_API int mempool_initialized(mempool_t *pool);
KALLOC_API mempool_t *mempool_create(int min_nr, mempool_alloc_t *alloc_fn,
				     mempool_free_t *free_fn, void *pool_data);
KALLOC_API mempool_t *mempool_create_node(int min_nr, mempool_alloc_t *alloc_fn,
					  mempool_free_t *free_fn,
					  void *pool_data, gfp_t gfp_mask,
					  int node_id);
KALLOC_API int mempool_resize(mempool_t *pool, int new_min_nr);
KALLOC_API void mempool_destroy(mempool_t *pool);
KALLOC_API void *mempool_alloc(mempool_t *pool, gfp_t gfp_mask);
KALLOC_API void mempool_free(void *element, mempool_t *pool);

/* Pools of a cache's objects, and of kmalloc blocks of one size. */
KALLOC_API void *mempool_alloc_slab(gfp_t gfp_mask, void *pool_data);
KALLOC_API void mempool_free_slab(void *element, void *pool_data);
KALLOC_API void *mempool_kmalloc(gfp_t gfp_mask, void *pool_data);
KALLOC_API void mempool_kfree(void *element, void *pool_data);
KALLOC_API mempool_t *mempool_create_slab_pool(int min_nr,
					       struct kmem_cache *kc);
KALLOC_API mempool_t *mempool_create_kmalloc_pool(int min_nr, size_t size);
KALLOC_API int mempool_init_slab_pool(mempool_t *pool, int min_nr,
				      struct kmem_cache *kc);
KALLOC_API int mempool_init_kmalloc_pool(mempool_t *pool, int min_nr,
					 size_t size);

#ifdef __cplusplus
}
#endif
#endif /* KALLOC_LINUX_H */

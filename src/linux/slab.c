/*
 * kmem_cache: the kernel's names for the core's object caches
 * (src/core/cache.c) on the default backend.  struct kmem_cache is never
 * defined: a kmem_cache pointer is a kalloc_cache_t pointer.
 */
#include "klinux.h"

#include <stdlib.h>

#define CACHE(s) ((kalloc_cache_t *)(s))
#define KMEM(c) ((struct kmem_cache *)(c))

static struct kmem_cache *create(const char *name, unsigned int size,
				 unsigned int align, slab_flags_t flags,
				 void (*ctor)(void *))
{
	kalloc_t *a = kalloc_default();
	if (!a) {
		if (flags & SLAB_PANIC) {
			kalloc__log(NULL, "kmem_cache_create(\"%s\") failed "
				    "with SLAB_PANIC: %s", name ? name : "(null)",
				    kalloc_errmsg());
			abort();
		}
		return NULL;
	}
	/* SLAB_PANIC is handled here, so the report has the kernel's name. */
	kalloc_cache_t *c = kalloc_cache_create(a, name,
						KALLOC_LAYOUT(size, align),
						flags & ~SLAB_PANIC, ctor);
	if (!c) {
		kalloc__log(NULL, "kmem_cache_create(\"%s\") failed%s: %s",
			    name ? name : "(null)",
			    (flags & SLAB_PANIC) ? " with SLAB_PANIC" : "",
			    kalloc_errmsg());
		if (flags & SLAB_PANIC)
			abort();
	}
	return KMEM(c);
}

API struct kmem_cache *__kmem_cache_create_args(const char *name,
		unsigned int object_size, struct kmem_cache_args *args,
		slab_flags_t flags)
{
	return create(name, object_size, args ? args->align : 0, flags,
		      args ? args->ctor : NULL);
}

API struct kmem_cache *__kmem_cache_default_args(const char *name,
		unsigned int object_size, struct kmem_cache_args *args,
		slab_flags_t flags)
{
	(void)args; /* NULL */
	return create(name, object_size, 0, flags, NULL);
}

API struct kmem_cache *__kmem_cache_create(const char *name, unsigned int size,
					   unsigned int align,
					   slab_flags_t flags,
					   void (*ctor)(void *))
{
	return create(name, size, align, flags, ctor);
}

API struct kmem_cache *kmem_cache_create_usercopy(const char *name,
		unsigned int size, unsigned int align, slab_flags_t flags,
		unsigned int useroffset, unsigned int usersize,
		void (*ctor)(void *))
{
	if (usersize > size || useroffset > size - usersize) {
		kalloc__log(NULL, "kmem_cache_create_usercopy(\"%s\"): usercopy "
			    "region %u+%u passes the %u-byte object",
			    name ? name : "(null)", useroffset, usersize, size);
		if (flags & SLAB_PANIC)
			abort();
		return NULL;
	}
	return create(name, size, align, flags, ctor);
}

API void *kmem_cache_alloc(struct kmem_cache *s, gfp_t flags)
{
	return kalloc__cache_alloc_at(CALLER, CACHE(s), klinux_flags(flags));
}

API void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t flags)
{
	return kalloc__cache_alloc_at(CALLER, CACHE(s), klinux_flags(flags | __GFP_ZERO));
}

API void *kmem_cache_alloc_node(struct kmem_cache *s, gfp_t flags, int node)
{
	(void)node;
	return kalloc__cache_alloc_at(CALLER, CACHE(s), klinux_flags(flags));
}

API void kmem_cache_free(struct kmem_cache *s, void *obj)
{
	kalloc__cache_free_at(CALLER, CACHE(s), obj);
}

API int kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t flags, size_t size,
			      void **p)
{
	return (int)kalloc__cache_alloc_bulk_at(CALLER, CACHE(s),
						  klinux_flags(flags), size, p);
}

API void kmem_cache_free_bulk(struct kmem_cache *s, size_t size, void **p)
{
	kalloc__cache_free_bulk_at(CALLER, CACHE(s), size, p);
}

API unsigned int kmem_cache_size(struct kmem_cache *s)
{
	return (unsigned int)kalloc_cache_size(CACHE(s));
}

API int kmem_cache_shrink(struct kmem_cache *s)
{
	kalloc_cache_shrink(CACHE(s));
	return 0;
}

API void kmem_cache_destroy(struct kmem_cache *s)
{
	kalloc_cache_destroy(CACHE(s)); /* a busy cache is reported there */
}

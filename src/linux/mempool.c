/*
 * mempool: the kernel's forward-progress guarantee (mm/mempool.c) on
 * kalloc.  Invariants, under pool->lock: 0 <= curr_nr <= min_nr, and
 * elements[0..curr_nr) are the reserved elements.  A blocking
 * mempool_alloc never returns NULL: it waits on pool->wait, which
 * mempool_free signals after it puts an element back.
 */
#include "klinux.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* The reserve's own array: from libc, as kernel mempools take theirs from
 * kmalloc with the caller's mask, but outside kalloc's fault injection. */
static void **new_elements(int n)
{
	return calloc(n > 0 ? (size_t)n : 1, sizeof(void *));
}

static void free_reserve(mempool_t *pool)
{
	while (pool->curr_nr > 0)
		pool->free(pool->elements[--pool->curr_nr], pool->pool_data);
	free(pool->elements);
	pool->elements = NULL;
}

API int mempool_initialized(mempool_t *pool)
{
	return pool->elements != NULL;
}

API void mempool_exit(mempool_t *pool)
{
	if (!mempool_initialized(pool))
		return;
	free_reserve(pool);
	pthread_cond_destroy(&pool->wait);
	pthread_mutex_destroy(&pool->lock);
}

API int mempool_init(mempool_t *pool, int min_nr, mempool_alloc_t *alloc_fn,
		     mempool_free_t *free_fn, void *pool_data)
{
	*pool = (mempool_t){ .min_nr = min_nr, .pool_data = pool_data,
			     .alloc = alloc_fn, .free = free_fn };
	if (min_nr < 0 || !alloc_fn || !free_fn)
		return -EINVAL;
	pool->elements = new_elements(min_nr);
	if (!pool->elements)
		return -ENOMEM;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wait, NULL);
	while (pool->curr_nr < min_nr) {
		void *e = alloc_fn(GFP_KERNEL, pool_data);
		if (!e) {
			mempool_exit(pool);
			return -ENOMEM;
		}
		pool->elements[pool->curr_nr++] = e;
	}
	return 0;
}

API mempool_t *mempool_create_node(int min_nr, mempool_alloc_t *alloc_fn,
				   mempool_free_t *free_fn, void *pool_data,
				   gfp_t gfp_mask, int node_id)
{
	(void)node_id;
	mempool_t *pool = kzalloc(sizeof(*pool), gfp_mask);
	if (!pool)
		return NULL;
	if (mempool_init(pool, min_nr, alloc_fn, free_fn, pool_data)) {
		kfree(pool);
		return NULL;
	}
	return pool;
}

API mempool_t *mempool_create(int min_nr, mempool_alloc_t *alloc_fn,
			      mempool_free_t *free_fn, void *pool_data)
{
	return mempool_create_node(min_nr, alloc_fn, free_fn, pool_data,
				   GFP_KERNEL, NUMA_NO_NODE);
}

API void mempool_destroy(mempool_t *pool)
{
	if (!pool)
		return;
	mempool_exit(pool);
	kfree(pool);
}

API int mempool_resize(mempool_t *pool, int new_min_nr)
{
	if (new_min_nr <= 0)
		return -EINVAL;
	pthread_mutex_lock(&pool->lock);
	if (new_min_nr <= pool->min_nr) {
		while (pool->curr_nr > new_min_nr)
			pool->free(pool->elements[--pool->curr_nr],
				   pool->pool_data);
		pool->min_nr = new_min_nr;
		pthread_mutex_unlock(&pool->lock);
		return 0;
	}
	pthread_mutex_unlock(&pool->lock);

	void **grown = new_elements(new_min_nr);
	if (!grown)
		return -ENOMEM;
	pthread_mutex_lock(&pool->lock);
	for (int i = 0; i < pool->curr_nr; i++)
		grown[i] = pool->elements[i];
	free(pool->elements);
	pool->elements = grown;
	pool->min_nr = new_min_nr;
	while (pool->curr_nr < pool->min_nr) {
		pthread_mutex_unlock(&pool->lock);
		void *e = pool->alloc(GFP_KERNEL, pool->pool_data);
		if (!e)
			return -ENOMEM; /* the larger minimum stays, as the kernel's */
		pthread_mutex_lock(&pool->lock);
		if (pool->curr_nr < pool->min_nr) {
			pool->elements[pool->curr_nr++] = e;
			pthread_cond_signal(&pool->wait);
		} else {
			pool->free(e, pool->pool_data);
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

API void *mempool_alloc(mempool_t *pool, gfp_t gfp_mask)
{
	/* The allocator is asked quietly and without blocking first; the
	 * reserve is the fallback, then the allocator with the full mask. */
	gfp_mask |= __GFP_NOMEMALLOC | __GFP_NORETRY | __GFP_NOWARN;
	gfp_t gfp_temp = gfp_mask & ~(__GFP_DIRECT_RECLAIM | __GFP_IO);
	for (;;) {
		void *e = pool->alloc(gfp_temp, pool->pool_data);
		if (e)
			return e;
		pthread_mutex_lock(&pool->lock);
		if (pool->curr_nr > 0) {
			e = pool->elements[--pool->curr_nr];
			pthread_mutex_unlock(&pool->lock);
			return e;
		}
		if (gfp_temp != gfp_mask) {
			pthread_mutex_unlock(&pool->lock);
			gfp_temp = gfp_mask;
			continue;
		}
		if (!gfpflags_allow_blocking(gfp_mask)) {
			pthread_mutex_unlock(&pool->lock);
			return NULL;
		}
		/* Wait for a mempool_free, or 5 s, then try it all again. */
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		pool->nr_waiting++;
		while (pool->curr_nr == 0 &&
		       pthread_cond_timedwait(&pool->wait, &pool->lock,
					      &until) == 0)
			;
		pool->nr_waiting--;
		pthread_mutex_unlock(&pool->lock);
	}
}

API void mempool_free(void *element, mempool_t *pool)
{
	if (!element)
		return;
	/* Unlocked peek, then the check that counts under the lock: a free
	 * that sees a full reserve goes to the allocator (the kernel's
	 * smp_rmb dance, with a mutex's ordering). */
	if (__atomic_load_n(&pool->curr_nr, __ATOMIC_RELAXED) < pool->min_nr) {
		pthread_mutex_lock(&pool->lock);
		if (pool->curr_nr < pool->min_nr) {
			pool->elements[pool->curr_nr++] = element;
			pthread_cond_signal(&pool->wait);
			pthread_mutex_unlock(&pool->lock);
			return;
		}
		pthread_mutex_unlock(&pool->lock);
	}
	pool->free(element, pool->pool_data);
}

/* ---- the common pools ---------------------------------------------------- */

API void *mempool_alloc_slab(gfp_t gfp_mask, void *pool_data)
{
	return kmem_cache_alloc(pool_data, gfp_mask);
}

API void mempool_free_slab(void *element, void *pool_data)
{
	kmem_cache_free(pool_data, element);
}

API void *mempool_kmalloc(gfp_t gfp_mask, void *pool_data)
{
	return kmalloc((size_t)pool_data, gfp_mask);
}

API void mempool_kfree(void *element, void *pool_data)
{
	(void)pool_data;
	kfree(element);
}

API mempool_t *mempool_create_slab_pool(int min_nr, struct kmem_cache *kc)
{
	return mempool_create(min_nr, mempool_alloc_slab, mempool_free_slab, kc);
}

API mempool_t *mempool_create_kmalloc_pool(int min_nr, size_t size)
{
	return mempool_create(min_nr, mempool_kmalloc, mempool_kfree,
			      (void *)size);
}

API int mempool_init_slab_pool(mempool_t *pool, int min_nr,
			       struct kmem_cache *kc)
{
	return mempool_init(pool, min_nr, mempool_alloc_slab, mempool_free_slab,
			    kc);
}

API int mempool_init_kmalloc_pool(mempool_t *pool, int min_nr, size_t size)
{
	return mempool_init(pool, min_nr, mempool_kmalloc, mempool_kfree,
			    (void *)size);
}

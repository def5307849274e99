/*
 * kfree_rcu on liburcu, in libkalloc-rcu.so: a client of the public API,
 * so that only programs that use it load liburcu.  Each object waits in a small record of its own
 * (from the "kfree_rcu" object cache) queued with call_rcu: the record's
 * callback frees the object after the grace period.  The object's own
 * rcu_head is not used: liburcu's callback gets the head only, and the
 * head's offset in the object is not known there.
 *
 * Invariant: pending == records queued and not yet run.  The exit hook
 * runs rcu_barrier when it is non-zero, so no object outlives the program
 * unfreed.
 */
#include <kalloc/rcu.h>

#include <stdatomic.h>
#include <stdlib.h>

#define API __attribute__((visibility("default")))

struct deferred {
	struct rcu_head rh;
	void *ptr;
	void (*free)(const void *); /* kfree or kvfree */
};

static kalloc_cache_t *_Atomic records;
static _Atomic long pending;

static void flush_at_exit(void)
{
	if (atomic_load(&pending))
		rcu_barrier();
}

static kalloc_cache_t *record_cache(void)
{
	kalloc_cache_t *c = atomic_load(&records);
	if (c)
		return c;
	kalloc_t *a = kalloc_default();
	if (!a)
		return NULL;
	c = kalloc_cache_create(a, "kfree_rcu",
				KALLOC_LAYOUT(sizeof(struct deferred),
					      _Alignof(struct deferred)),
				0, NULL);
	kalloc_cache_t *none = NULL;
	if (c && !atomic_compare_exchange_strong(&records, &none, c)) {
		kalloc_cache_destroy(c); /* another thread won */
		c = none;
	} else if (c) {
		/* After libkalloc's own exit hooks were registered (a k*
		 * block exists), so it runs before them: leak reports and
		 * statistics see every queued object freed. */
		atexit(flush_at_exit);
	}
	return c;
}

static void free_deferred(struct rcu_head *rh)
{
	struct deferred *d = (struct deferred *)rh;
	d->free(d->ptr);
	kalloc_cache_free(atomic_load(&records), d);
	atomic_fetch_sub(&pending, 1);
}

static void call(void *ptr, void (*free_fn)(const void *))
{
	if (ZERO_OR_NULL_PTR(ptr))
		return;
	kalloc_cache_t *c = record_cache();
	struct deferred *d = c ? kalloc_cache_alloc(c, KALLOC_NOWARN) : NULL;
	if (!d) {
		/* No record: wait out the grace period here, as the kernel's
		 * kvfree_call_rcu does when it cannot queue. */
		synchronize_rcu();
		free_fn(ptr);
		return;
	}
	d->ptr = ptr;
	d->free = free_fn;
	atomic_fetch_add(&pending, 1);
	call_rcu(&d->rh, free_deferred);
}

API void kalloc_kfree_call_rcu(struct rcu_head *head, void *ptr)
{
	(void)head;
	call(ptr, kfree);
}

API void kalloc_kvfree_call_rcu(struct rcu_head *head, void *ptr)
{
	(void)head;
	call(ptr, kvfree);
}

API void kalloc_rcu_barrier(void)
{
	if (atomic_load(&pending))
		rcu_barrier();
}


/*
 * The direct path: a backend's fast entries handed to a caller
 * (kalloc_direct), and each handle's plain word that says when the caller
 * may use them.
 *
 * Invariant: a registered handle's word a->plain is non-zero exactly when
 * a->features == 0 and kalloc__fail_armed == 0.  Both inputs change only
 * through this file, under plain_lock, and the words they affect are stored
 * (and their watchers told, in the same order) before the lock is
 * released.  So no store of a stale value can follow a fresher one, and a
 * thread that arms fault injection finds every word 0 once its call
 * returns.  (Inputs that can only grow, a handle's features, would be safe
 * without the lock; arming goes both ways, from any thread.)
 *
 * plain_lock is a leaf: nothing under it takes another lock, allocates or
 * calls a plugin (a watcher only stores).  Taken by the registry's fork
 * hooks (after the registry's lock) and released in parent and child, so
 * a child never inherits it held.
 */
#include "internal.h"

#include <pthread.h>

static pthread_mutex_t plain_lock = PTHREAD_MUTEX_INITIALIZER;
static kalloc_t *plain_handles; /* registered handles, under plain_lock */

/* Stores a's word and tells its watcher; plain_lock held. */
static void put(kalloc_t *a, int plain)
{
	__atomic_store_n(&a->plain, plain, __ATOMIC_RELEASE);
	if (a->plain_watch)
		a->plain_watch(a->plain_watch_ctx, plain);
}

/* Recomputes a's word; plain_lock held. */
static void store(kalloc_t *a)
{
	put(a, !atomic_load_explicit(&a->features, memory_order_relaxed) &&
		       !atomic_load_explicit(&kalloc__fail_armed,
					     memory_order_relaxed));
}

void kalloc__plain_attach(kalloc_t *a)
{
	pthread_mutex_lock(&plain_lock);
	a->plain_next = plain_handles;
	plain_handles = a;
	store(a);
	pthread_mutex_unlock(&plain_lock);
}

void kalloc__plain_detach(kalloc_t *a)
{
	pthread_mutex_lock(&plain_lock);
	for (kalloc_t **pp = &plain_handles; *pp; pp = &(*pp)->plain_next)
		if (*pp == a) {
			*pp = a->plain_next;
			break;
		}
	put(a, 0);
	a->plain_watch = NULL;
	pthread_mutex_unlock(&plain_lock);
}

void kalloc__plain_add_features(kalloc_t *a, unsigned bits)
{
	pthread_mutex_lock(&plain_lock);
	atomic_fetch_or(&a->features, bits);
	put(a, 0);
	pthread_mutex_unlock(&plain_lock);
}

void kalloc__fail_arm(int delta)
{
	pthread_mutex_lock(&plain_lock);
	int before = atomic_fetch_add(&kalloc__fail_armed, delta);
	if (!before != !(before + delta)) /* armed <-> disarmed */
		for (kalloc_t *a = plain_handles; a; a = a->plain_next)
			store(a);
	pthread_mutex_unlock(&plain_lock);
}

void kalloc__plain_atfork(int phase)
{
	/* The child unlocks too: a plain mutex has no owner to check, and
	 * re-initialising a held lock leaves it held in ThreadSanitizer's
	 * view (a false lock-order report at the child's next lock). */
	if (phase == 0)
		pthread_mutex_lock(&plain_lock);
	else
		pthread_mutex_unlock(&plain_lock);
}

int kalloc_direct(kalloc_t *a, kalloc_direct_t *out)
{
	if (!a || !out)
		return kalloc__error(KALLOC_EINVAL,
				     "kalloc_direct: handle and out must not be NULL");
	if (!a->fast)
		return kalloc__error(KALLOC_ENOTSUP,
				     "backend '%s' has no fast entries (its "
				     "plugin's descriptor has no fast table); "
				     "use kalloc_alloc and kalloc_free", a->p->name);
	*out = (kalloc_direct_t){ a->fast->alloc, a->fast->free, a->state,
				  &a->plain };
	return KALLOC_OK;
}

int kalloc_direct_watch(kalloc_t *a, void (*fn)(void *ctx, int plain),
			void *ctx)
{
	if (!a)
		return kalloc__error(KALLOC_EINVAL,
				     "kalloc_direct_watch: handle must not be NULL");
	if (!a->fast)
		return kalloc__error(KALLOC_ENOTSUP,
				     "backend '%s' has no fast entries, so no "
				     "plain word to watch", a->p->name);
	pthread_mutex_lock(&plain_lock);
	a->plain_watch = fn;
	a->plain_watch_ctx = ctx;
	if (fn)
		fn(ctx, __atomic_load_n(&a->plain, __ATOMIC_RELAXED));
	pthread_mutex_unlock(&plain_lock);
	return KALLOC_OK;
}

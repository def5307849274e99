/*
 * Per-thread heaps: the thread cache of the slab backend.
 *
 * A thread reaches its heap through one initial-exec TLS pointer (8 bytes
 * of the static TLS surplus; heaps themselves are carved from mmap'd
 * arenas).  Its states: HEAP_NONE (no heap yet), a heap, or HEAP_TEARDOWN
 * once the pthread key destructor has given the heap up (both
 * placeholders, slab.h).  A tearing-down thread still frees (as a remote
 * thread: no heap is its own) and allocates from the shared fallback heap
 * under fallback_lock.
 *
 * Heaps are never unmapped.  At thread exit a heap is abandoned (its empty
 * slabs go back to the pool) and the next new thread adopts it with its
 * slabs.  Remote frees keep arriving on an abandoned heap's pending stack;
 * slab_tick collects them (under heaps_lock) every few milliseconds so its
 * slabs can empty and go back to the pool; it also runs the decay of the
 * pool and of the large cache.
 *
 * heaps_lock guards the heap list, the abandoned list, states and the arena.
 */
#include "slab.h"

#include <sys/mman.h>

struct heap slab_heap_placeholder[2];
__thread struct heap *slab_tl_heap
	__attribute__((tls_model("initial-exec"))) = HEAP_NONE;

static pthread_key_t heap_key;
static bool heap_key_ok;
static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t fallback_lock = PTHREAD_MUTEX_INITIALIZER;
static struct heap *all_heaps; /* every heap but the fallback */
static struct heap *abandoned; /* heaps without a thread */
static struct heap fallback;   /* for threads past their teardown */
static bool fallback_ready;    /* fallback set up (fallback_lock) */
static char *arena;            /* uncarved heap memory */
static size_t arena_left;
static unsigned heap_count;
static _Atomic long last_tick;

#define ARENA_BYTES ((size_t)64 << 10)

static void heap_reset(struct heap *h)
{
	slab_mag_init(h);
	for (unsigned c = 0; c < CLASS_SLOTS; c++) {
		h->cur[c] = &slab_empty;
		h->partial[c] = h->partial_tail[c] = NULL;
	}
	atomic_store_explicit(&h->pending, NULL, memory_order_relaxed);
	h->medium_n = 0;
	h->medium_units = 0;
}

/* A fresh heap from the arena; heaps_lock held. */
static struct heap *heap_new(bool nowait)
{
	if (arena_left < sizeof(struct heap)) {
		if (nowait)
			return NULL;
		void *p = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		arena = p;
		arena_left = ARENA_BYTES;
	}
	struct heap *h = (struct heap *)arena;
	arena += sizeof(struct heap);
	arena_left -= sizeof(struct heap);
	heap_reset(h);
	h->all_next = all_heaps;
	all_heaps = h;
	heap_count++;
	return h;
}

static void heap_abandon(struct heap *h)
{
	slab_mag_flush(h);
	slab_medium_flush(h);
	slab_drain(h, false);
	slab_heap_drop_current(h);
	pthread_mutex_lock(&heaps_lock);
	h->state = HEAP_ABANDONED;
	h->pool_next = abandoned;
	abandoned = h;
	pthread_mutex_unlock(&heaps_lock);
}

static void heap_destructor(void *v)
{
	slab_tl_heap = HEAP_TEARDOWN;
	heap_abandon(v);
}

int slab_heap_init(void)
{
	pthread_mutex_lock(&heaps_lock);
	int err = KALLOC_OK;
	if (!heap_key_ok) {
		if (pthread_key_create(&heap_key, heap_destructor) == 0)
			heap_key_ok = true;
		else
			err = KALLOC_ENOMEM;
		/* room for the first heaps, so NOWAIT threads can get one */
		if (!err && !heap_new(false))
			err = KALLOC_ENOMEM;
		if (!err) { /* heap_new linked it: hand it out first */
			struct heap *h = all_heaps;
			h->state = HEAP_ABANDONED;
			h->pool_next = abandoned;
			abandoned = h;
		}
	}
	pthread_mutex_unlock(&heaps_lock);
	return err;
}

struct heap *slab_heap_acquire(bool nowait)
{
	struct heap *h = slab_tl_heap;
	if (h != HEAP_NONE)
		return h;
	if (slab_tool) /* the fallback heap only (slab.h) */
		return HEAP_TEARDOWN;
	if (nowait) {
		if (pthread_mutex_trylock(&heaps_lock))
			return NULL;
	} else {
		pthread_mutex_lock(&heaps_lock);
	}
	h = abandoned;
	if (h)
		abandoned = h->pool_next;
	else
		h = heap_new(nowait);
	if (h)
		h->state = HEAP_OWNED;
	pthread_mutex_unlock(&heaps_lock);
	if (h) {
		slab_tl_heap = h; /* before setspecific, which may allocate */
		pthread_setspecific(heap_key, h);
	}
	return h;
}

/* The fallback heap, set up at its first use (fallback_lock held): most
 * programs never use it, and setting it up touches 6 pages. */
static struct heap *fallback_heap(void)
{
	if (!fallback_ready) {
		heap_reset(&fallback);
		fallback_ready = true;
	}
	return &fallback;
}

void *slab_fallback_alloc(unsigned cls, bool nowait, bool atomic)
{
	if (nowait) {
		if (pthread_mutex_trylock(&fallback_lock))
			return NULL;
	} else {
		pthread_mutex_lock(&fallback_lock);
	}
	struct heap *fb = fallback_heap();
	struct slab *s = fb->cur[cls];
	void *p = s->free ? slab_pop_slow(s) :
			    slab_alloc_slow(fb, cls, nowait, atomic);
	pthread_mutex_unlock(&fallback_lock);
	return p;
}

/* Abandoned heaps' remote frees are collected at least this often (ms),
 * so their emptied slabs go back to the pool for other heaps. */
#define COLLECT_MS 10

void slab_tick(bool nowait)
{
	if (nowait)
		return;
	long now = slab_now_ms();
	long every = slab_decay_ms / 2 < COLLECT_MS ? slab_decay_ms / 2 : COLLECT_MS;
	long last = atomic_load_explicit(&last_tick, memory_order_relaxed);
	if (now - last < every || now == last ||
	    !atomic_compare_exchange_strong(&last_tick, &last, now))
		return;

	/* Under heaps_lock (it orders before pool_lock): an adopter waits for
	 * the collection rather than making a new heap meanwhile. */
	pthread_mutex_lock(&heaps_lock);
	for (struct heap *h = abandoned; h; h = h->pool_next)
		if (atomic_load_explicit(&h->pending, memory_order_relaxed))
			slab_drain(h, false);
	pthread_mutex_unlock(&heaps_lock);
	if (pthread_mutex_trylock(&fallback_lock) == 0) {
		if (fallback_ready) /* else it has no slabs */
			slab_drain(&fallback, false);
		pthread_mutex_unlock(&fallback_lock);
	}
	slab_pool_purge();
	slab_lcache_decay();
}

unsigned slab_heap_count(void)
{
	pthread_mutex_lock(&heaps_lock);
	unsigned n = heap_count;
	pthread_mutex_unlock(&heaps_lock);
	return n;
}

void slab_heap_mag_held(uint64_t held[CLASS_COUNT])
{
	for (unsigned c = 0; c < CLASS_COUNT; c++)
		held[c] = 0;
	pthread_mutex_lock(&heaps_lock);
	for (struct heap *h = all_heaps; h; h = h->all_next)
		if (h->state == HEAP_OWNED)
			for (unsigned c = 0; c < CLASS_COUNT; c++)
				held[c] += mag_count(&h->mag[c]);
	pthread_mutex_unlock(&heaps_lock);
}

/* ---- fork: every lock in order in prepare; parent and child unlock --- */

void slab_heap_atfork_prepare(void)
{
	pthread_mutex_lock(&fallback_lock);
	pthread_mutex_lock(&heaps_lock);
	pthread_mutex_lock(&slab_pool_lock);
	pthread_mutex_lock(&slab_lcache_lock);
}

void slab_heap_atfork_parent(void)
{
	pthread_mutex_unlock(&slab_lcache_lock);
	pthread_mutex_unlock(&slab_pool_lock);
	pthread_mutex_unlock(&heaps_lock);
	pthread_mutex_unlock(&fallback_lock);
}

/*
 * Heaps owned by other threads may have been mid-update at the fork: the
 * child never touches them again (frees of their blocks still work, as
 * remote frees onto a heap no one collects).  Abandoned heaps are whole:
 * heaps_lock was held.
 */
void slab_heap_atfork_child(void)
{
	/* The forking thread holds them (prepare); plain mutexes may be
	 * unlocked in the child, which keeps sanitizers' lock state right. */
	pthread_mutex_unlock(&slab_lcache_lock);
	slab_pool_atfork_child();
	pthread_mutex_unlock(&heaps_lock);
	pthread_mutex_unlock(&fallback_lock);
	for (struct heap *h = all_heaps; h; h = h->all_next)
		if (h != slab_tl_heap && h->state != HEAP_ABANDONED)
			h->state = HEAP_DEAD;
}

/*
 * prodcons: a producer thread allocates blocks of 8-512 B and hands them
 * through a bounded queue to a consumer thread that checks and frees them,
 * so every free is a remote free (issue 4).  Up to `live` blocks are in
 * flight.
 *
 * Reads: ops (blocks passed), live (queue capacity, a power of two),
 * min, max, seed.
 *
 * The queue is single-producer single-consumer; each side publishes its
 * index every BATCH items (or when it must wait), so the queue's own cache
 * traffic stays small next to the allocator's.
 */
#include "workloads.h"

#include <sched.h>
#include <stdatomic.h>

#define BATCH 32

struct queue {
	_Alignas(64) _Atomic uint64_t head; /* written by the producer */
	_Alignas(64) _Atomic uint64_t tail; /* written by the consumer */
	_Alignas(64) atomic_int failed;
	kalloc_t *a;
	const bench_params_t *p;
	size_t mask;
	struct wl_slot *ring;
};

static void relax(unsigned *spins)
{
	if (++*spins > 64) {
		sched_yield();
		*spins = 0;
	}
}

static int producer(struct queue *q)
{
	uint64_t rng = bench_seed(q->p->seed, 0);
	uint64_t head = 0, tail = 0, published = 0;
	size_t cap = q->mask + 1;
	for (uint64_t i = 0; i < q->p->ops; i++) {
		size_t size = bench_range(&rng, q->p->min, q->p->max);
		void *b = b_alloc(q->a, size, WL_ALIGN);
		if (!b) {
			atomic_store(&q->failed, 1);
			return bench_fail("prodcons", "allocating %zu bytes failed",
					  size);
		}
		bench_mark(b, size, bench_tag((size_t)i, size));
		unsigned spins = 0;
		while (head - tail == cap) {
			if (published != head)
				atomic_store_explicit(&q->head, published = head,
						      memory_order_release);
			tail = atomic_load_explicit(&q->tail, memory_order_acquire);
			if (atomic_load(&q->failed))
				return -1;
			if (head - tail == cap)
				relax(&spins);
		}
		q->ring[head & q->mask] = (struct wl_slot){ b, size };
		head++;
		if (head - published >= BATCH)
			atomic_store_explicit(&q->head, published = head,
					      memory_order_release);
	}
	atomic_store_explicit(&q->head, head, memory_order_release);
	return 0;
}

static int consumer(struct queue *q)
{
	uint64_t tail = 0, head = 0, published = 0;
	for (uint64_t i = 0; i < q->p->ops; i++) {
		unsigned spins = 0;
		while (tail == head) {
			if (published != tail)
				atomic_store_explicit(&q->tail, published = tail,
						      memory_order_release);
			head = atomic_load_explicit(&q->head, memory_order_acquire);
			if (atomic_load(&q->failed))
				return -1;
			if (tail == head)
				relax(&spins);
		}
		struct wl_slot s = q->ring[tail & q->mask];
		if (!bench_marked(s.p, s.size, bench_tag((size_t)i, s.size))) {
			atomic_store(&q->failed, 1);
			return bench_fail("prodcons", "block %p (%zu bytes) was "
					  "corrupted", s.p, s.size);
		}
		b_free(q->a, s.p, s.size, WL_ALIGN);
		tail++;
		if (tail - published >= BATCH)
			atomic_store_explicit(&q->tail, published = tail,
					      memory_order_release);
	}
	return 0;
}

static int side(void *arg, unsigned i)
{
	return i == 0 ? producer(arg) : consumer(arg);
}

int wl_prodcons(kalloc_t *a, const bench_params_t *p)
{
	size_t cap = 1;
	while (cap < p->live)
		cap <<= 1;
	struct queue *q = bench_map(sizeof(*q));
	q->a = a;
	q->p = p;
	q->mask = cap - 1;
	q->ring = bench_map(cap * sizeof(*q->ring));
	int rc = wl_run_threads(2, side, q, "prodcons");
	/* after a failure, blocks may be left in the queue: the child process
	 * exits right after, so they are not freed here */
	bench_unmap(q->ring, cap * sizeof(*q->ring));
	bench_unmap(q, sizeof(*q));
	return rc;
}

/*
 * larson: the server pattern of Larson and Krishnan's benchmark.  `threads`
 * chains of worker threads; each worker replaces random blocks of 8-1000 B
 * among its chain's `live` slots for ops/count operations, then starts its
 * successor, which inherits the slots, and exits.  So blocks are freed by
 * threads other than the one that allocated them, and threads come and go
 * while their blocks live on (thread caches must be flushed and adopted).
 * The main thread allocates the first blocks and frees the last ones.
 *
 * Reads: ops (per chain), live (per chain), min, max, threads (chains),
 * count (generations of threads per chain), seed.
 */
#include "workloads.h"

#include <pthread.h>

struct chain {
	kalloc_t *a;
	const bench_params_t *p;
	struct wl_slot *s;
	uint64_t rng;
	unsigned gen;
	int rc;
	struct larson *l;
};

struct larson {
	pthread_mutex_t lock;
	pthread_cond_t done;
	unsigned running;
};

static void finish(struct chain *c)
{
	pthread_mutex_lock(&c->l->lock);
	c->l->running--;
	pthread_cond_signal(&c->l->done);
	pthread_mutex_unlock(&c->l->lock);
}

static int replace(struct chain *c, size_t i)
{
	struct wl_slot *s = &c->s[i];
	if (s->p) {
		if (!bench_marked(s->p, s->size, bench_tag(i, s->size)))
			return bench_fail("larson", "block %p (%zu bytes) was "
					  "corrupted", s->p, s->size);
		b_free(c->a, s->p, s->size, WL_ALIGN);
		s->p = NULL;
	}
	size_t size = bench_range(&c->rng, c->p->min, c->p->max);
	void *b = b_alloc(c->a, size, WL_ALIGN);
	if (!b)
		return bench_fail("larson", "allocating %zu bytes failed", size);
	bench_mark(b, size, bench_tag(i, size));
	*s = (struct wl_slot){ b, size };
	return 0;
}

static void *worker(void *arg)
{
	struct chain *c = arg;
	uint64_t ops = c->p->ops / c->p->count;
	for (uint64_t op = 0; op < ops && !c->rc; op++)
		c->rc = replace(c, bench_range(&c->rng, 0, c->p->live - 1));
	if (!c->rc && ++c->gen < c->p->count) {
		pthread_t next;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		int err = pthread_create(&next, &attr, worker, c);
		pthread_attr_destroy(&attr);
		if (!err)
			return NULL; /* the successor finishes the chain */
		c->rc = bench_fail("larson", "pthread_create failed");
	}
	finish(c);
	return NULL;
}

int wl_larson(kalloc_t *a, const bench_params_t *p)
{
	unsigned n = p->threads;
	struct larson *l = bench_map(sizeof(*l));
	struct chain *c = bench_map(n * sizeof(*c));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->done, NULL);
	int rc = 0;
	for (unsigned t = 0; t < n; t++)
		c[t] = (struct chain){ a, p, bench_map(p->live * sizeof(struct wl_slot)),
				       bench_seed(p->seed, t), 0, 0, l };
	for (unsigned t = 0; t < n; t++)
		for (size_t i = 0; i < p->live && !rc; i++)
			rc = replace(&c[t], i);
	for (unsigned t = 0; t < n && !rc; t++) {
		pthread_t tid;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_mutex_lock(&l->lock);
		l->running++;
		pthread_mutex_unlock(&l->lock);
		if (pthread_create(&tid, &attr, worker, &c[t])) {
			pthread_mutex_lock(&l->lock);
			l->running--;
			pthread_mutex_unlock(&l->lock);
			rc = bench_fail("larson", "pthread_create failed");
		}
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_lock(&l->lock);
	while (l->running)
		pthread_cond_wait(&l->done, &l->lock);
	pthread_mutex_unlock(&l->lock);
	for (unsigned t = 0; t < n; t++) {
		if (c[t].rc)
			rc = -1;
		for (size_t i = 0; i < p->live && !rc; i++) {
			struct wl_slot *s = &c[t].s[i];
			if (!s->p)
				continue;
			if (!bench_marked(s->p, s->size, bench_tag(i, s->size)))
				rc = bench_fail("larson", "block %p (%zu bytes) was "
						"corrupted", s->p, s->size);
			else
				b_free(a, s->p, s->size, WL_ALIGN);
		}
		bench_unmap(c[t].s, p->live * sizeof(struct wl_slot));
	}
	bench_unmap(c, n * sizeof(*c));
	pthread_cond_destroy(&l->done);
	pthread_mutex_destroy(&l->lock);
	bench_unmap(l, sizeof(*l));
	return rc;
}

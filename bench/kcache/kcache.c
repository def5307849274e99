/*
 * kcache: what an object cache costs against what kernel-style code would
 * use instead, side by side in one process (#11's targets):
 *
 *   kmalloc       a kmalloc/kfree pair of the object's size
 *   cache         a kmem_cache_alloc/kmem_cache_free pair
 *   cache+ctor    the same on a cache with a constructor
 *   emul+ctor     the kernel's user-space harness design, written here:
 *                 one mutex per cache, malloc/free under it, the constructor
 *                 run at every allocation
 *   bulk16        kmem_cache_alloc_bulk + free_bulk of 16, per object
 *   single16      16 single pairs (allocate 16, free 16), per object
 *
 * Nothing but allocation and free: no work on the memory beyond one store
 * (so the pair is not optimised away).  Each round runs every subject once,
 * in a shuffled order; the report is the median of the rounds, in ns per
 * object, with the ratios the issue asks for.  The backend is the default
 * (KALLOC_BACKEND).
 */
#include <kalloc/linux.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t obj_size = 64;
static long iters = 2000000;

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void ctor(void *p)
{
	*(long *)p = 42;
}

/* ---- the emulation: a mutex, malloc, the ctor at every allocation ---- */

struct emul_cache {
	pthread_mutex_t lock;
	size_t size;
	void (*ctor)(void *);
};

static void *emul_alloc(struct emul_cache *c)
{
	pthread_mutex_lock(&c->lock);
	void *p = malloc(c->size);
	if (p && c->ctor)
		c->ctor(p);
	pthread_mutex_unlock(&c->lock);
	return p;
}

static void emul_free(struct emul_cache *c, void *p)
{
	pthread_mutex_lock(&c->lock);
	free(p);
	pthread_mutex_unlock(&c->lock);
}

/* ---- subjects: each returns ns per object -------------------------------- */

static struct kmem_cache *plain_cache, *ctor_cache;
static struct emul_cache emul = { PTHREAD_MUTEX_INITIALIZER, 0, ctor };

#define SINK(p) __asm__ __volatile__("" : : "r"(p) : "memory")

static double run_kmalloc(void)
{
	double t = now_ns();
	for (long i = 0; i < iters; i++) {
		long *p = kmalloc(obj_size, GFP_KERNEL);
		*p = i;
		SINK(p);
		kfree(p);
	}
	return (now_ns() - t) / iters;
}

static double run_cache_on(struct kmem_cache *c)
{
	double t = now_ns();
	for (long i = 0; i < iters; i++) {
		long *p = kmem_cache_alloc(c, GFP_KERNEL);
		p[1] = i;
		SINK(p);
		kmem_cache_free(c, p);
	}
	return (now_ns() - t) / iters;
}

static double run_cache(void)
{
	return run_cache_on(plain_cache);
}

static double run_cache_ctor(void)
{
	return run_cache_on(ctor_cache);
}

static double run_emul(void)
{
	double t = now_ns();
	for (long i = 0; i < iters; i++) {
		long *p = emul_alloc(&emul);
		p[1] = i;
		SINK(p);
		emul_free(&emul, p);
	}
	return (now_ns() - t) / iters;
}

static double run_bulk16(void)
{
	void *v[16];
	long n = iters / 16;
	double t = now_ns();
	for (long i = 0; i < n; i++) {
		if (kmem_cache_alloc_bulk(plain_cache, GFP_KERNEL, 16, v) != 16)
			abort();
		SINK(v[15]);
		kmem_cache_free_bulk(plain_cache, 16, v);
	}
	return (now_ns() - t) / (n * 16);
}

static double run_single16(void)
{
	void *v[16];
	long n = iters / 16;
	double t = now_ns();
	for (long i = 0; i < n; i++) {
		for (int j = 0; j < 16; j++)
			v[j] = kmem_cache_alloc(plain_cache, GFP_KERNEL);
		SINK(v[15]);
		for (int j = 0; j < 16; j++)
			kmem_cache_free(plain_cache, v[j]);
	}
	return (now_ns() - t) / (n * 16);
}

static const struct subject {
	const char *name;
	double (*run)(void);
} subjects[] = {
	{ "kmalloc", run_kmalloc },   { "cache", run_cache },
	{ "cache+ctor", run_cache_ctor }, { "emul+ctor", run_emul },
	{ "bulk16", run_bulk16 },     { "single16", run_single16 },
};
#define NS (sizeof(subjects) / sizeof(subjects[0]))

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = 5;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atol(argv[++i]);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			obj_size = (size_t)atol(argv[++i]);
		else {
			fprintf(stderr, "usage: kalloc-bench-kcache [--rounds N] "
				"[--iters N] [--size BYTES]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 101 || iters < 16 || obj_size < 16) {
		fprintf(stderr, "kalloc-bench-kcache: rounds 1..101, iters >= 16, "
			"size >= 16\n");
		return 2;
	}
	plain_cache = kmem_cache_create("bench", obj_size, 0, 0, NULL);
	ctor_cache = kmem_cache_create("bench-ctor", obj_size, 0, 0, ctor);
	emul.size = obj_size;
	if (!plain_cache || !ctor_cache)
		return 1;

	double (*t)[NS] = calloc((size_t)rounds, sizeof(*t));
	unsigned seed = 12345;
	for (int r = 0; r < rounds; r++) {
		size_t order[NS];
		for (size_t i = 0; i < NS; i++)
			order[i] = i;
		for (size_t i = NS - 1; i > 0; i--) {
			size_t j = (size_t)rand_r(&seed) % (i + 1);
			size_t x = order[i];
			order[i] = order[j];
			order[j] = x;
		}
		for (size_t i = 0; i < NS; i++)
			t[r][order[i]] = subjects[order[i]].run();
	}
	double med[NS];
	for (size_t s = 0; s < NS; s++) {
		double v[101];
		for (int r = 0; r < rounds; r++)
			v[r] = t[r][s];
		qsort(v, (size_t)rounds, sizeof(double), cmp_double);
		med[s] = v[rounds / 2];
	}
	kalloc_info_t info;
	kalloc_info(kalloc_default(), &info);
	printf("object caches on backend %s, %zu-byte objects, %ld pairs, median "
	       "of %d interleaved rounds (ns per object)\n", info.name, obj_size,
	       iters, rounds);
	for (size_t s = 0; s < NS; s++)
		printf("  %-12s %8.2f\n", subjects[s].name, med[s]);
	printf("ratios (target):\n");
	printf("  cache / kmalloc          %5.2f  (<= 1.00)\n", med[1] / med[0]);
	printf("  cache+ctor / emul+ctor   %5.2f  (<= 0.50)\n", med[2] / med[3]);
	printf("  cache / emul+ctor        %5.2f  (<= 0.50)\n", med[1] / med[3]);
	printf("  bulk16 / single16        %5.2f  (<= 0.50)\n", med[4] / med[5]);
	free(t);
	kmem_cache_destroy(plain_cache);
	kmem_cache_destroy(ctor_cache);
	return 0;
}

/*
 * Allocation-only programs for bench/preload/run.py: each calls the malloc
 * family and does nothing else worth timing, so the allocator under it
 * (glibc, a preloaded library, or kalloc's shim) is what is measured.
 *
 *     kalloc-preload-prog WORKLOAD [SCALE [ITERATIONS]]
 *
 * tight     malloc/free of 8-263 B, 64 live, one thread
 * tight2    the same on two threads
 * xthread   one thread allocates 16-512 B, another frees (a bounded queue)
 * memalign  posix_memalign with random powers of two 16-4096, two threads
 * large     churn of 16 live blocks of 64 KiB-32 MiB, first/last page touched
 * grow      one buffer realloc'ed by doubling to 512 MiB, then 2000 vectors
 *           of 8 B growing by 1.5x to 64 KiB
 *
 * SCALE multiplies the iteration counts (1 = a tenth to half a second on
 * the fastest peer); ITERATIONS sets tight's exactly (for instruction
 * counts).  Prints "peak_rss_kib N" (VmHWM: this program's own peak, not
 * its parent's before exec).  Exit status 0, or 1 when an allocation
 * failed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long scale = 1, iterations;

static uint64_t next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *need(void *p)
{
	if (!p) {
		fprintf(stderr, "allocation failed\n");
		exit(1);
	}
	return p;
}

static void *tight(void *arg)
{
	uint64_t x = 88172645463325252ull + (uintptr_t)arg;
	void *keep[64] = { 0 };
	long n = iterations ? iterations : 10000000 * scale;
	for (long i = 0; i < n; i++) {
		void *p = need(malloc(8 + (next(&x) & 255)));
		*(volatile char *)p = 1;
		unsigned k = (x >> 20) & 63;
		free(keep[k]);
		keep[k] = p;
	}
	for (int k = 0; k < 64; k++)
		free(keep[k]);
	return NULL;
}

static void *aligned(void *arg)
{
	uint64_t x = 0x9e3779b97f4a7c15ull + (uintptr_t)arg;
	void *keep[64] = { 0 };
	for (long i = 0; i < 2000000 * scale; i++) {
		void *p;
		size_t al = (size_t)16 << (next(&x) % 9);
		if (posix_memalign(&p, al, 8 + (x >> 40 & 511)))
			need(NULL);
		*(volatile char *)p = 1;
		unsigned k = (x >> 20) & 63;
		free(keep[k]);
		keep[k] = p;
	}
	for (int k = 0; k < 64; k++)
		free(keep[k]);
	return NULL;
}

/* xthread: a single-producer single-consumer ring of pointers. */
#define RING 1024
static void *_Atomic ring[RING];

static void *consumer(void *arg)
{
	long n = (long)(intptr_t)arg;
	for (long i = 0; i < n; i++) {
		void *p;
		while (!(p = atomic_exchange_explicit(&ring[i % RING], NULL,
						      memory_order_acquire)))
			;
		free(p);
	}
	return NULL;
}

static void xthread(void)
{
	long n = 300000 * scale;
	pthread_t t;
	pthread_create(&t, NULL, consumer, (void *)(intptr_t)n);
	uint64_t x = 12345;
	for (long i = 0; i < n; i++) {
		void *p = need(malloc(16 + (next(&x) & 511)));
		*(volatile char *)p = 1;
		while (atomic_load_explicit(&ring[i % RING], memory_order_relaxed))
			;
		atomic_store_explicit(&ring[i % RING], p, memory_order_release);
	}
	pthread_join(t, NULL);
}

static void large(void)
{
	uint64_t x = 777;
	char *keep[16] = { 0 };
	for (long i = 0; i < 1000 * scale; i++) {
		size_t n = (size_t)64 << 10 << (next(&x) % 10); /* 64 KiB..32 MiB */
		n += x >> 50;
		char *p = need(malloc(n));
		p[0] = p[n - 1] = 1;
		unsigned k = (x >> 20) & 15;
		free(keep[k]);
		keep[k] = p;
	}
	for (int k = 0; k < 16; k++)
		free(keep[k]);
}

static void grow(void)
{
	for (long r = 0; r < scale; r++) {
		char *b = NULL;
		for (size_t n = 4096; n <= ((size_t)512 << 20); n *= 2) {
			b = need(realloc(b, n));
			b[n - 1] = 1;
		}
		free(b);
		enum { V = 2000 };
		static char *v[V];
		static size_t cap[V];
		for (int i = 0; i < V; i++)
			v[i] = need(malloc(cap[i] = 8));
		for (int step = 0; step < 24; step++)
			for (int i = 0; i < V; i++)
				if (cap[i] < 65536) {
					cap[i] += cap[i] / 2;
					v[i] = need(realloc(v[i], cap[i]));
					v[i][cap[i] - 1] = 1;
				}
		for (int i = 0; i < V; i++)
			free(v[i]);
	}
}

static void two(void *(*fn)(void *))
{
	pthread_t t;
	pthread_create(&t, NULL, fn, (void *)1);
	fn((void *)2);
	pthread_join(t, NULL);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s tight|tight2|xthread|memalign|large|grow "
			"[SCALE]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		scale = atol(argv[2]);
	if (argc > 3)
		iterations = atol(argv[3]);
	const char *w = argv[1];
	if (!strcmp(w, "tight"))
		tight(NULL);
	else if (!strcmp(w, "tight2"))
		two(tight);
	else if (!strcmp(w, "xthread"))
		xthread();
	else if (!strcmp(w, "memalign"))
		two(aligned);
	else if (!strcmp(w, "large"))
		large();
	else if (!strcmp(w, "grow"))
		grow();
	else {
		fprintf(stderr, "unknown workload '%s'\n", w);
		return 2;
	}
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			printf("peak_rss_kib %ld\n", atol(line + 6));
	if (f)
		fclose(f);
	return 0;
}

/*
 * A small multithreaded allocation workload for the shell tests: 8 threads
 * allocate, grow and free blocks handed between them; prints "churn ok"
 * and exits 0 when every block kept its content.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define ROUNDS 20000

static void *shared[THREADS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *work(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int i = 0; i < ROUNDS; i++) {
		seed = seed * 1103515245 + 12345;
		size_t n = (seed >> 8) % 2000 + 1;
		unsigned char *p = malloc(n);
		if (!p)
			return (void *)1;
		memset(p, (int)(n & 0xff), n);
		p = realloc(p, n * 2);
		if (!p || p[n - 1] != (unsigned char)(n & 0xff))
			return (void *)1;
		pthread_mutex_lock(&lock); /* hand it to whoever comes next */
		unsigned char *old = shared[seed % THREADS];
		shared[seed % THREADS] = p;
		pthread_mutex_unlock(&lock);
		free(old);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, work, (void *)(uintptr_t)(i + 1)))
			return 1;
	int bad = 0;
	for (int i = 0; i < THREADS; i++) {
		void *r;
		pthread_join(t[i], &r);
		bad |= r != NULL;
	}
	for (int i = 0; i < THREADS; i++)
		free(shared[i]);
	if (bad)
		return 1;
	puts("churn ok");
	return 0;
}

/*
 * Multithreaded stress through the plain malloc API, for the LD_PRELOAD
 * shim: run it with LD_PRELOAD=libkalloc-shim.so KALLOC_BACKEND=NAME.
 *
 *     stress_malloc [--expect-shim]
 *
 * 8 threads allocate with every entry point (malloc, calloc, realloc,
 * reallocarray, posix_memalign, aligned_alloc, memalign, valloc), hand
 * blocks to each other through locked inboxes, and free what they receive;
 * threads are also created and joined while their blocks live on.  Each
 * block carries a cookie checked at free; malloc_usable_size must cover the
 * request.  --expect-shim fails unless malloc is interposed (the shim is
 * really loaded), and skips (77) under valgrind, whose malloc wins.  KALLOC_STRESS_SCALE (percent) scales the work; it
 * defaults to 4 under valgrind, 10 under TSan, 50 under ASan.
 */
#include "cookie.h"

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define NTHREADS 8
#define INBOX 256
#define ROUNDS 4 /* generations of threads */

struct blk {
	unsigned char *p;
	size_t size;
	uint64_t tag;
};

struct inbox {
	pthread_mutex_t lock;
	struct blk q[INBOX];
	unsigned head, count;
};

static struct inbox inboxes[NTHREADS];
static unsigned scale = 100;
static atomic_ullong n_alloc, n_free, next_tag = 1;

__attribute__((noreturn, format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("stress_malloc: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static size_t pick_size(uint64_t *r)
{
	uint64_t x = rnd(r);
	return x % 16 == 0 ? (x >> 8) % 300000 : (x >> 8) % 600;
}

static void check(const struct blk *b, const char *when)
{
	size_t bad = cookie_bad(b->p, b->size, b->size, b->tag);
	if (bad != SIZE_MAX)
		fail("%s: block %p (%zu bytes): byte %zu was overwritten", when,
		     (void *)b->p, b->size, bad);
}

static void new_blk(struct blk *b, uint64_t *r)
{
	size_t size = pick_size(r), align = (size_t)1 << (4 + rnd(r) % 9);
	void *p = NULL;
	bool zeroed = false;
	switch (rnd(r) % 8) {
	case 0:
		p = calloc(1, size);
		zeroed = true;
		align = 16;
		break;
	case 1:
		if (posix_memalign(&p, align, size))
			p = NULL;
		break;
	case 2:
		p = aligned_alloc(align, (size + align - 1) & ~(align - 1));
		break;
	case 3:
		p = memalign(align, size);
		break;
	case 4:
		p = reallocarray(NULL, size ? size : 1, 1);
		align = 16;
		break;
	case 5:
		if (rnd(r) % 8 == 0) {
			p = valloc(size);
			align = 4096;
			break;
		}
		/* fall through */
	default:
		p = malloc(size);
		align = 16;
		break;
	}
	if (!p)
		fail("allocation of %zu bytes failed", size);
	if ((uintptr_t)p & (align - 1) && align <= 4096)
		fail("%p is not aligned to %zu", p, align);
	if (malloc_usable_size(p) < size)
		fail("malloc_usable_size(%p) = %zu, below %zu", p,
		     malloc_usable_size(p), size);
	if (zeroed)
		for (size_t i = 0; i < size; i++)
			if (((unsigned char *)p)[i])
				fail("calloc: byte %zu of %p is not 0", i, p);
	*b = (struct blk){ p, size, atomic_fetch_add(&next_tag, 1) };
	cookie_write(p, size, b->tag);
	atomic_fetch_add_explicit(&n_alloc, 1, memory_order_relaxed);
}

static void free_blk(struct blk *b, uint64_t *r)
{
	check(b, "before free");
	if (rnd(r) % 8 == 0) {
		/* realloc first, then free: content must survive */
		size_t size = pick_size(r) + 1;
		unsigned char *q = realloc(b->p, size);
		if (!q)
			fail("realloc to %zu bytes failed", size);
		size_t kept = b->size < size ? b->size : size;
		size_t bad = cookie_bad(q, b->size, kept, b->tag);
		if (bad != SIZE_MAX)
			fail("realloc %zu -> %zu lost byte %zu", b->size, size, bad);
		b->p = q;
	}
	free(b->p);
	atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
}

static bool push(unsigned to, const struct blk *b)
{
	struct inbox *in = &inboxes[to];
	pthread_mutex_lock(&in->lock);
	bool ok = in->count < INBOX;
	if (ok)
		in->q[(in->head + in->count++) % INBOX] = *b;
	pthread_mutex_unlock(&in->lock);
	return ok;
}

static bool pop(unsigned from, struct blk *b)
{
	struct inbox *in = &inboxes[from];
	pthread_mutex_lock(&in->lock);
	bool ok = in->count > 0;
	if (ok) {
		*b = in->q[in->head];
		in->head = (in->head + 1) % INBOX;
		in->count--;
	}
	pthread_mutex_unlock(&in->lock);
	return ok;
}

static void *worker(void *arg)
{
	unsigned self = (unsigned)(uintptr_t)arg % NTHREADS;
	uint64_t r = 0x77ull + (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull;
	unsigned long ops = 15000ul * scale / 100 + 1;
	for (unsigned long i = 0; i < ops; i++) {
		struct blk b;
		if (rnd(&r) % 2) {
			new_blk(&b, &r);
			if (!push((unsigned)(rnd(&r) % NTHREADS), &b))
				free_blk(&b, &r);
		} else if (pop(self, &b)) {
			free_blk(&b, &r);
		}
	}
	/* Leaves what is in the inboxes to the next generation. */
	return NULL;
}

int main(int argc, char **argv)
{
	const char *s = getenv("KALLOC_STRESS_SCALE");
	scale = s && *s ? (unsigned)strtoul(s, NULL, 10) : RUNNING_ON_VALGRIND ? 4 :
#if defined(__SANITIZE_THREAD__)
		10;
#elif defined(__SANITIZE_ADDRESS__)
		50;
#else
		100;
#endif
	if (argc > 1 && strcmp(argv[1], "--expect-shim") == 0) {
		if (RUNNING_ON_VALGRIND) {
			puts("skipped: under valgrind, valgrind's malloc replaces the shim");
			return 77;
		}
		void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
		void *theirs = libc ? dlsym(libc, "malloc") : NULL;
		if (!theirs || dlsym(RTLD_DEFAULT, "malloc") == theirs)
			fail("malloc is glibc's: the shim is not loaded (LD_PRELOAD=%s)",
			     getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		pthread_mutex_init(&inboxes[i].lock, NULL);
	for (unsigned round = 0; round < ROUNDS; round++) {
		pthread_t t[NTHREADS];
		for (unsigned i = 0; i < NTHREADS; i++)
			if (pthread_create(&t[i], NULL, worker,
					   (void *)(uintptr_t)(round * NTHREADS + i)))
				fail("pthread_create failed");
		for (unsigned i = 0; i < NTHREADS; i++)
			pthread_join(t[i], NULL);
	}
	uint64_t r = 5;
	struct blk b;
	for (unsigned i = 0; i < NTHREADS; i++)
		while (pop(i, &b))
			free_blk(&b, &r);
	printf("stress_malloc: %llu blocks allocated and freed by %u threads\n",
	       (unsigned long long)n_alloc, ROUNDS * NTHREADS);
	if (n_alloc != n_free)
		fail("%llu allocated, %llu freed", (unsigned long long)n_alloc,
		     (unsigned long long)n_free);
	return 0;
}

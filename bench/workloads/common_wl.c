/*
 * Pieces several workloads use: threads, and the page-touch pattern of the
 * growth workloads.
 */
#include "workloads.h"

#include <pthread.h>

struct thread_arg {
	int (*fn)(void *arg, unsigned i);
	void *arg;
	unsigned i;
	int rc;
};

static void *thread_main(void *v)
{
	struct thread_arg *t = v;
	t->rc = t->fn(t->arg, t->i);
	return NULL;
}

int wl_run_threads(unsigned n, int (*fn)(void *arg, unsigned i), void *arg,
		   const char *name)
{
	pthread_t tid[16];
	struct thread_arg t[16];
	if (n == 0 || n > 16)
		return bench_fail(name, "thread count %u not in 1..16", n);
	unsigned started = 0;
	int rc = 0;
	for (unsigned i = 0; i < n; i++) {
		t[i] = (struct thread_arg){ fn, arg, i, 0 };
		if (pthread_create(&tid[i], NULL, thread_main, &t[i])) {
			rc = bench_fail(name, "pthread_create failed");
			break;
		}
		started++;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(tid[i], NULL);
		if (t[i].rc)
			rc = -1;
	}
	return rc;
}

static unsigned char touch_value(size_t off)
{
	return (unsigned char)(0xa5 ^ (off >> 12) ^ (off >> 20) ^ off);
}

/*
 * Written offsets: `from`, every multiple of WL_PAGE in (from, to), and
 * to - 1.  After growths [0, l1), [l1, l2), ... every multiple of WL_PAGE
 * below the current length has been written, whichever growth wrote it.
 */
void wl_touch(unsigned char *b, size_t from, size_t to)
{
	b[from] = touch_value(from);
	size_t off = (from | (WL_PAGE - 1)) + 1;
	for (; off < to; off += WL_PAGE)
		b[off] = touch_value(off);
	b[to - 1] = touch_value(to - 1);
}

int wl_check_grown(const unsigned char *b, size_t len)
{
	if (b[0] != touch_value(0) || b[len - 1] != touch_value(len - 1))
		return 0;
	/* up to 8 page samples spread over the content */
	size_t pages = len / WL_PAGE;
	size_t step = pages / 8 + 1;
	for (size_t pg = 0; pg < pages; pg += step)
		if (b[pg * WL_PAGE] != touch_value(pg * WL_PAGE))
			return 0;
	return 1;
}

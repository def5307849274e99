/*
 * Fault injection: make the Nth next allocating call of a thread fail
 * (kalloc_fail_nth).  The hot path reads one global counter; the per-thread
 * countdown is only consulted while some thread has one armed.
 */
#include "internal.h"

#include <stdatomic.h>

static atomic_int armed_threads; /* threads with a countdown running */
static _Thread_local unsigned countdown;

void kalloc_fail_nth(unsigned n)
{
	if (countdown && !n)
		atomic_fetch_sub(&armed_threads, 1);
	else if (!countdown && n)
		atomic_fetch_add(&armed_threads, 1);
	countdown = n;
}

bool kalloc__fail_now(void)
{
	if (likely(!atomic_load_explicit(&armed_threads, memory_order_relaxed)))
		return false;
	if (!countdown || --countdown)
		return false;
	atomic_fetch_sub(&armed_threads, 1);
	return true;
}

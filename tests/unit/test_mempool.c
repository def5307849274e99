/*
 * mempool: the reserve, and the kernel's guarantee under 100% injected
 * failure (KALLOC_FAIL's probability:100, through kalloc_fail_config):
 * a blocking mempool_alloc waits for a mempool_free and never returns
 * NULL; GFP_NOWAIT returns NULL instead of waiting.  No sleeps: the
 * freeing thread waits until the pool shows the allocator waiting.
 */
#include <kalloc/linux.h>

#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void inject_all(void)
{
	ck_assert_int_eq(kalloc_fail_config("probability:100"), KALLOC_OK);
}

static void inject_none(void)
{
	ck_assert_int_eq(kalloc_fail_config(""), KALLOC_OK);
}

START_TEST(reserve_serves_when_the_allocator_fails)
{
	mempool_t *pool = mempool_create_kmalloc_pool(4, 256);
	ck_assert_ptr_nonnull(pool);
	ck_assert_int_eq(pool->curr_nr, 4);
	inject_all();
	void *e[4];
	for (int i = 0; i < 4; i++) {
		e[i] = mempool_alloc(pool, GFP_KERNEL);
		ck_assert_ptr_nonnull(e[i]);
		memset(e[i], i, 256);
	}
	ck_assert_int_eq(pool->curr_nr, 0);
	/* empty reserve, failing allocator: NOWAIT and ATOMIC give NULL */
	ck_assert_ptr_null(mempool_alloc(pool, GFP_NOWAIT));
	ck_assert_ptr_null(mempool_alloc(pool, GFP_ATOMIC));
	mempool_free(e[0], pool); /* refills the reserve first */
	ck_assert_int_eq(pool->curr_nr, 1);
	void *again = mempool_alloc(pool, GFP_NOWAIT);
	ck_assert_ptr_eq(again, e[0]);
	inject_none();
	mempool_free(again, pool);
	for (int i = 1; i < 4; i++)
		mempool_free(e[i], pool);
	ck_assert_int_eq(pool->curr_nr, 4);
	/* a full reserve: frees go to the allocator */
	void *extra = mempool_alloc(pool, GFP_KERNEL);
	ck_assert_int_eq(pool->curr_nr, 4); /* came from kmalloc */
	mempool_free(extra, pool);
	ck_assert_int_eq(pool->curr_nr, 4);
	mempool_destroy(pool);
}
END_TEST

struct waiter {
	mempool_t *pool;
	void *_Atomic got;
	_Atomic int returned;
};

static void *blocking_alloc(void *arg)
{
	struct waiter *w = arg;
	atomic_store(&w->got, mempool_alloc(w->pool, GFP_KERNEL));
	atomic_store(&w->returned, 1);
	return NULL;
}

static int waiting(mempool_t *pool)
{
	pthread_mutex_lock(&pool->lock);
	int n = pool->nr_waiting;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

/* Two threads: one blocks in mempool_alloc(GFP_KERNEL) on an empty pool
 * with a failing allocator, the other frees; the first gets the element. */
START_TEST(blocking_alloc_waits_for_a_free)
{
	struct kmem_cache *kc = kmem_cache_create("io_request", 96, 0, 0, NULL);
	mempool_t *pool = mempool_create_slab_pool(2, kc);
	ck_assert_ptr_nonnull(pool);
	inject_all();
	void *a = mempool_alloc(pool, GFP_KERNEL);
	void *b = mempool_alloc(pool, GFP_KERNEL);
	ck_assert(a && b);

	struct waiter w = { pool, NULL, 0 };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, blocking_alloc, &w), 0);
	while (waiting(pool) == 0 && !atomic_load(&w.returned))
		sched_yield();
	ck_assert_msg(!atomic_load(&w.returned),
		      "mempool_alloc(GFP_KERNEL) returned %p instead of waiting",
		      atomic_load(&w.got));
	mempool_free(b, pool);
	pthread_join(t, NULL);
	ck_assert_ptr_eq(atomic_load(&w.got), b);
	inject_none();
	mempool_free(a, pool);
	mempool_free(atomic_load(&w.got), pool);
	mempool_destroy(pool);
	kmem_cache_destroy(kc);
}
END_TEST

START_TEST(init_exit_and_resize)
{
	mempool_t pool;
	memset(&pool, 0, sizeof(pool));
	ck_assert(!mempool_initialized(&pool));
	ck_assert_int_eq(mempool_init_kmalloc_pool(&pool, 3, 64), 0);
	ck_assert(mempool_initialized(&pool));
	ck_assert_int_eq(pool.curr_nr, 3);
	ck_assert_int_eq(mempool_resize(&pool, 8), 0);
	ck_assert_int_eq(pool.min_nr, 8);
	ck_assert_int_eq(pool.curr_nr, 8);
	ck_assert_int_eq(mempool_resize(&pool, 2), 0);
	ck_assert_int_eq(pool.curr_nr, 2);
	ck_assert_int_eq(mempool_resize(&pool, 0), -EINVAL);
	mempool_exit(&pool);
	ck_assert(!mempool_initialized(&pool));

	/* create fails whole when the reserve cannot be filled */
	kalloc_fail_nth(3);
	mempool_t *p = mempool_create_kmalloc_pool(4, 64);
	kalloc_fail_nth(0);
	ck_assert_ptr_null(p);
	struct kmem_cache *kc = kmem_cache_create("pool-init", 32, 0, 0, NULL);
	ck_assert_int_eq(mempool_init_slab_pool(&pool, 2, kc), 0);
	void *e = mempool_alloc(&pool, GFP_KERNEL);
	mempool_free(e, &pool);
	mempool_exit(&pool);
	kmem_cache_destroy(kc);
}
END_TEST

static Suite *mempool_suite(void)
{
	Suite *s = suite_create("mempool");
	TCase *tc = tcase_create("mempool");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reserve_serves_when_the_allocator_fails);
	tcase_add_test(tc, blocking_alloc_waits_for_a_free);
	tcase_add_test(tc, init_exit_and_resize);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(mempool_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/*
 * kfree_rcu (<kalloc/rcu.h>, libkalloc-rcu on liburcu): an object is not
 * freed while a reader that may see it is inside rcu_read_lock, and is
 * freed after; kalloc_rcu_barrier frees everything queued; at exit nothing
 * queued is lost or leaked (the program's own leak report says 0 blocks).
 * Frees are counted by the default handle's statistics (KALLOC_STATS=1
 * in this test's environment): live_blocks drops at the free call, whatever
 * thread makes it.
 */
#include <kalloc/rcu.h>

#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct node {
	long key;
	struct rcu_head rcu;
	char data[100];
};

static struct node *_Atomic shared;
static _Atomic int reader_in, queued, reader_saw_free, reader_done;

static long live_blocks(void)
{
	kalloc_stats_t s;
	ck_assert_int_eq(kalloc_stats(kalloc_default(), &s), KALLOC_OK);
	return (long)s.live_blocks;
}

static _Atomic long baseline;

static void *reader(void *arg)
{
	(void)arg;
	rcu_register_thread();
	rcu_read_lock();
	struct node *n = rcu_dereference(shared);
	atomic_store(&reader_in, 1);
	while (!atomic_load(&queued))
		sched_yield();
	/* The grace period cannot end while we are here: n stays live. */
	for (int i = 0; i < 2000; i++) {
		kalloc_stats_t s;
		kalloc_stats(kalloc_default(), &s);
		if (s.live_blocks < atomic_load(&baseline) || n->key != 42)
			atomic_store(&reader_saw_free, 1);
		sched_yield();
	}
	rcu_read_unlock();
	rcu_unregister_thread();
	atomic_store(&reader_done, 1);
	return NULL;
}

START_TEST(freed_only_after_the_grace_period)
{
	struct node *n = kmalloc(sizeof(*n), GFP_KERNEL);
	n->key = 42;
	atomic_store(&shared, n);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, reader, NULL), 0);
	while (!atomic_load(&reader_in))
		sched_yield();
	rcu_assign_pointer(shared, NULL);
	kfree_rcu(n, rcu);
	long before = live_blocks();
	atomic_store(&baseline, before);
	atomic_store(&queued, 1);
	pthread_join(t, NULL);
	ck_assert_msg(!atomic_load(&reader_saw_free),
		      "the object was freed inside a reader's critical section");
	kalloc_rcu_barrier();
	/* the object; its record may stay in the record cache's magazine */
	ck_assert_int_le(live_blocks(), before - 1);
}
END_TEST

START_TEST(many_objects_and_mightsleep)
{
	enum { N = 5000 };
	long before = live_blocks();
	for (int i = 0; i < N; i++) {
		struct node *n = kmalloc(sizeof(*n), GFP_KERNEL);
		if (i % 2)
			kfree_rcu(n, rcu);
		else
			kfree_rcu_mightsleep(n);
	}
	void *big = kvmalloc(1 << 20, GFP_KERNEL);
	kvfree_rcu_mightsleep(big);
	kfree_rcu_mightsleep(NULL); /* nothing to do */
	kalloc_rcu_barrier();
	/* every object is freed; the records' cache may keep a thread's
	 * magazine of them (at most 32) */
	ck_assert_int_le(live_blocks(), before + 32);
}
END_TEST

static const char *self;

START_TEST(exit_loses_and_leaks_nothing)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		setenv("KALLOC_LEAKS", "1", 1);
		execl(self, self, "--exit-child", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char out[4096] = { 0 };
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(out) - 1 &&
	       (r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += (size_t)r;
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child failed: %s", out);
	ck_assert_msg(strstr(out, "leak report: 0 blocks"),
		      "objects queued at exit were not freed: %s", out);
}
END_TEST

/* Queues 1000 objects and returns: the exit hook must free them all. */
static int exit_child(void)
{
	for (int i = 0; i < 1000; i++) {
		struct node *n = kmalloc(sizeof(*n), GFP_KERNEL);
		kfree_rcu(n, rcu);
	}
	return 0;
}

int main(int argc, char **argv)
{
	self = argv[0];
	if (argc > 1 && !strcmp(argv[1], "--exit-child"))
		return exit_child();
	Suite *s = suite_create("rcu");
	TCase *tc = tcase_create("kfree_rcu");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, freed_only_after_the_grace_period);
	tcase_add_test(tc, many_objects_and_mightsleep);
	tcase_add_test(tc, exit_loses_and_leaks_nothing);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

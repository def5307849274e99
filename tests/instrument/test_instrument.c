/*
 * Stats, fault injection, accounting, debug modes and the leak report, on the
 * backend named by KALLOC_TEST_BACKEND (meson runs this once per backend).
 * Misuse cases run in a child whose stderr is captured, so each test checks
 * both how the child ended and what it said.
 */
#include <kalloc.h>
#include <kalloc/linux.h>

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *backend;
static void *volatile kept[4]; /* blocks a child leaves live on purpose (reachable) */

static kalloc_t *open_with(const char *opts)
{
	kalloc_t *a = NULL;
	int err = kalloc_open(backend, opts, &a);
	ck_assert_msg(err == KALLOC_OK, "open %s (%s): %s", backend, opts,
		      kalloc_errmsg());
	return a;
}

static void *alloc(kalloc_t *a, size_t size, kalloc_flags_t flags)
{
	kalloc_buf_t b;
	int err = kalloc_alloc(a, KALLOC_LAYOUT(size, 16), flags, &b);
	ck_assert_msg(err == KALLOC_OK, "alloc %zu: %s", size, kalloc_errmsg());
	return b.ptr;
}

/* Runs fn in a child with stderr captured into out; returns wait status. */
static int run_child(void (*fn)(void), char *out, size_t cap)
{
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		fn();
		exit(0);
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = 0;
	close(fds[0]);
	int status;
	waitpid(pid, &status, 0);
	return status;
}

#define ck_assert_aborted(status, out)                                        \
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,     \
		      "child should abort; status 0x%x, stderr: %s", status, out)

/* ---- stats ------------------------------------------------------------ */

START_TEST(stats_add_up)
{
	kalloc_t *a = open_with("stats=1");
	void *p[100];
	for (int i = 0; i < 100; i++)
		p[i] = alloc(a, 10 + (size_t)i * 7, 0);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_realloc(a, p[0], KALLOC_LAYOUT(5000, 16),
					KALLOC_LAYOUT_UNKNOWN, 0, &b), KALLOC_OK);
	p[0] = b.ptr;
	for (int i = 0; i < 60; i++)
		kalloc_free(a, p[i], KALLOC_LAYOUT_UNKNOWN);
	ck_assert_int_ne(kalloc_alloc(a, KALLOC_LAYOUT(SIZE_MAX / 2, 16),
				      KALLOC_NOWARN, &b), KALLOC_OK);

	kalloc_stats_t s;
	ck_assert_int_eq(kalloc_stats(a, &s), KALLOC_OK);
	ck_assert_uint_eq(s.allocs, 100);
	ck_assert_uint_eq(s.reallocs, 1);
	ck_assert_uint_eq(s.frees, 60);
	ck_assert_uint_eq(s.failures, 1);
	ck_assert_int_eq(s.live_blocks, (int64_t)s.allocs - (int64_t)s.frees);
	ck_assert_int_eq(s.peak_blocks, 100);
	int64_t live = 0;
	for (int i = 60; i < 100; i++)
		live += (int64_t)kalloc_usable_size(a, p[i]);
	ck_assert_int_eq(s.live_bytes, live);
	ck_assert_int_ge(s.peak_bytes, s.live_bytes);
	for (int i = 60; i < 100; i++)
		kalloc_free(a, p[i], KALLOC_LAYOUT_UNKNOWN);
	ck_assert_int_eq(kalloc_stats(a, &s), KALLOC_OK);
	ck_assert_int_eq(s.live_bytes, 0);
	ck_assert_int_eq(s.live_blocks, 0);
	kalloc_close(a);
}
END_TEST

START_TEST(stats_off_is_refused)
{
	kalloc_t *a = open_with(NULL);
	kalloc_stats_t s;
	ck_assert_int_eq(kalloc_stats(a, &s), KALLOC_ENOTSUP);
	ck_assert_ptr_nonnull(strstr(kalloc_errmsg(), "KALLOC_STATS"));
	kalloc_close(a);
}
END_TEST

static void stats_at_exit(void)
{
	setenv("KALLOC_STATS", "1", 1);
	kalloc_t *a = open_with(NULL);
	kalloc_free(a, alloc(a, 100, 0), KALLOC_LAYOUT_UNKNOWN);
	kept[0] = alloc(a, 200, 0);
}

START_TEST(stats_table_at_exit)
{
	char out[8192];
	int status = run_child(stats_at_exit, out, sizeof(out));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "kalloc statistics"));
	char row[64];
	snprintf(row, sizeof(row), "\n%s ", backend);
	ck_assert_msg(strstr(out, row), "no row for %s in: %s", backend, out);
}
END_TEST

/* ---- fault injection -------------------------------------------------- */

START_TEST(fail_keeps_old_block)
{
	kalloc_t *a = open_with(NULL);
	char *p = alloc(a, 100, 0);
	memset(p, 0x5a, 100);
	ck_assert_int_eq(kalloc_fail_config("probability:100,times:1"), KALLOC_OK);
	kalloc_buf_t b;
	int err = kalloc_realloc(a, p, KALLOC_LAYOUT(100000, 16),
				 KALLOC_LAYOUT(100, 16), KALLOC_NOWARN, &b);
	ck_assert_int_eq(err, KALLOC_ENOMEM);
	ck_assert_ptr_nonnull(strstr(kalloc_errmsg(), "injected"));
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(p[i], 0x5a);
	ck_assert_uint_eq(kalloc_fail_count(), 1);
	/* times:1 is spent: the same call now succeeds */
	ck_assert_int_eq(kalloc_realloc(a, p, KALLOC_LAYOUT(100000, 16),
					KALLOC_LAYOUT(100, 16), 0, &b), KALLOC_OK);
	ck_assert_int_eq(((char *)b.ptr)[99], 0x5a);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(100000, 16));
	kalloc_fail_config(NULL);
	kalloc_close(a);
}
END_TEST

static int count_failures(kalloc_t *a, int calls)
{
	int failed = 0;
	for (int i = 0; i < calls; i++) {
		kalloc_buf_t b;
		if (kalloc_alloc(a, KALLOC_LAYOUT(32, 16), KALLOC_NOWARN, &b))
			failed++;
		else
			kalloc_free(a, b.ptr, KALLOC_LAYOUT(32, 16));
	}
	return failed;
}

START_TEST(fail_probability_interval_space)
{
	kalloc_t *a = open_with(NULL);
	/* deterministic for a seed */
	ck_assert_int_eq(kalloc_fail_config("probability:25,seed:99"), KALLOC_OK);
	int first = count_failures(a, 2000);
	ck_assert_int_eq(kalloc_fail_config("probability:25,seed:99"), KALLOC_OK);
	ck_assert_int_eq(count_failures(a, 2000), first);
	ck_assert_int_gt(first, 400);
	ck_assert_int_lt(first, 600);
	/* every 10th call, at most 5 times */
	ck_assert_int_eq(kalloc_fail_config("interval:10,times:5"), KALLOC_OK);
	ck_assert_int_eq(count_failures(a, 1000), 5);
	/* a budget first, as the kernel's failslab: a request passes while
	 * more than its size remains, consuming it; 100 calls of 32 bytes
	 * pass on 3232 bytes (32 are left, not more than 32) */
	ck_assert_int_eq(kalloc_fail_config("space:3232"), KALLOC_OK);
	ck_assert_int_eq(count_failures(a, 100), 0);
	ck_assert_int_eq(count_failures(a, 10), 10);
	/* a request larger than what remains fails and consumes nothing */
	ck_assert_int_eq(kalloc_fail_config("space:1000"), KALLOC_OK);
	kalloc_buf_t small, big;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 16), KALLOC_NOWARN,
				      &small), KALLOC_OK); /* 900 left */
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(5000, 16), KALLOC_NOWARN,
				      &big), KALLOC_ENOMEM);
	ck_assert_int_eq(count_failures(a, 28), 0); /* 900 - 28 * 32 = 4 */
	ck_assert_int_eq(count_failures(a, 1), 1);
	kalloc_free(a, small.ptr, KALLOC_LAYOUT(100, 16));
	/* bad specs name the field */
	ck_assert_int_eq(kalloc_fail_config("probability:101"), KALLOC_EINVAL);
	ck_assert_ptr_nonnull(strstr(kalloc_errmsg(), "probability"));
	ck_assert_int_eq(kalloc_fail_config("often:1"), KALLOC_EINVAL);
	ck_assert_ptr_nonnull(strstr(kalloc_errmsg(), "often"));
	kalloc_fail_config(NULL);
	ck_assert_int_eq(count_failures(a, 100), 0);
	kalloc_close(a);
}
END_TEST

static void fail_warns(void)
{
	kalloc_t *a = open_with(NULL);
	kalloc_fail_nth(1);
	kalloc_buf_t b;
	if (kalloc_alloc(a, KALLOC_LAYOUT(77, 16), 0, &b) == KALLOC_OK)
		exit(3);
	kalloc_fail_nth(1);
	if (kalloc_alloc(a, KALLOC_LAYOUT(78, 16), KALLOC_NOWARN, &b) == KALLOC_OK)
		exit(4);
}

START_TEST(fail_reports_unless_nowarn)
{
	char out[4096];
	int status = run_child(fail_warns, out, sizeof(out));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "allocation of 77 bytes"));
	ck_assert_ptr_null(strstr(out, "78 bytes"));
}
END_TEST

/* ---- accounting ------------------------------------------------------- */

START_TEST(account_limit_and_uncharge)
{
	kalloc_t *a = open_with(NULL);
	kalloc_domain_t *d = kalloc_domain_create("job", 10000);
	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_null(kalloc_domain_enter(d));
	kalloc_buf_t b1, b2, b3;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(6000, 16), KALLOC_ACCOUNT,
				      &b1), KALLOC_OK);
	ck_assert_uint_eq(kalloc_domain_usage(d), 6000);
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(5000, 16),
				      KALLOC_ACCOUNT | KALLOC_NOWARN, &b2),
			 KALLOC_ELIMIT);
	ck_assert_ptr_nonnull(strstr(kalloc_errmsg(), "job"));
	ck_assert_uint_eq(kalloc_domain_failures(d), 1);
	/* unaccounted allocations are not charged */
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(5000, 16), 0, &b3),
			 KALLOC_OK);
	ck_assert_uint_eq(kalloc_domain_usage(d), 6000);
	/* realloc charges the difference, and fails whole past the limit */
	memset(b1.ptr, 7, 6000);
	ck_assert_int_eq(kalloc_realloc(a, b1.ptr, KALLOC_LAYOUT(9000, 16),
					KALLOC_LAYOUT(6000, 16), KALLOC_ACCOUNT,
					&b2), KALLOC_OK);
	ck_assert_uint_eq(kalloc_domain_usage(d), 9000);
	ck_assert_int_eq(kalloc_realloc(a, b2.ptr, KALLOC_LAYOUT(12000, 16),
					KALLOC_LAYOUT(9000, 16),
					KALLOC_ACCOUNT | KALLOC_NOWARN, &b1),
			 KALLOC_ELIMIT);
	ck_assert_int_eq(((char *)b2.ptr)[5999], 7);
	ck_assert_uint_eq(kalloc_domain_usage(d), 9000);
	ck_assert_int_eq(kalloc_realloc(a, b2.ptr, KALLOC_LAYOUT(1000, 16),
					KALLOC_LAYOUT(9000, 16), KALLOC_ACCOUNT,
					&b1), KALLOC_OK);
	ck_assert_uint_eq(kalloc_domain_usage(d), 1000);
	ck_assert_int_eq(kalloc_domain_destroy(d), KALLOC_EINVAL);
	/* the charge returns on free, from any thread's domain */
	kalloc_domain_enter(NULL);
	kalloc_free(a, b1.ptr, KALLOC_LAYOUT_UNKNOWN);
	ck_assert_uint_eq(kalloc_domain_usage(d), 0);
	ck_assert_uint_eq(kalloc_domain_peak(d), 9000);
	ck_assert_int_eq(kalloc_domain_destroy(d), KALLOC_OK);
	kalloc_free(a, b3.ptr, KALLOC_LAYOUT(5000, 16));
	kalloc_close(a);
}
END_TEST

/* ---- debug ------------------------------------------------------------ */

static void overflow_by_one(void)
{
	kalloc_t *a = open_with("debug=FZU");
	char *p = alloc(a, 24, 0);
	ck_assert_uint_eq(kalloc_usable_size(a, p), 24);
	p[24] = 'x'; /* one byte past the requested size */
	kalloc_free(a, p, KALLOC_LAYOUT_UNKNOWN);
}

START_TEST(debug_redzone_overflow)
{
	char out[4096];
	int status = run_child(overflow_by_one, out, sizeof(out));
	ck_assert_aborted(status, out);
	ck_assert_ptr_nonnull(strstr(out, "out-of-bounds write"));
	ck_assert_ptr_nonnull(strstr(out, "of 24 bytes"));
	ck_assert_ptr_nonnull(strstr(out, "offset 24"));
	ck_assert_ptr_nonnull(strstr(out, "allocated by thread"));
}
END_TEST

static void write_after_free(void)
{
	kalloc_t *a = open_with("debug=P");
	char *p = alloc(a, 40, 0);
	kalloc_free(a, p, KALLOC_LAYOUT_UNKNOWN);
	p[5] = 1; /* the block is in quarantine: still mapped, poisoned */
	exit(0);  /* the check runs at exit */
}

START_TEST(debug_poison_write_after_free)
{
	char out[4096];
	int status = run_child(write_after_free, out, sizeof(out));
	ck_assert_msg(WIFEXITED(status), "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "write after free"));
	ck_assert_ptr_nonnull(strstr(out, "offset 5"));
	ck_assert_ptr_nonnull(strstr(out, "of 40 bytes"));
}
END_TEST

static void double_free(void)
{
	kalloc_t *a = open_with("debug=FPU");
	char *p = alloc(a, 50, 0);
	kalloc_free(a, p, KALLOC_LAYOUT_UNKNOWN);
	kalloc_free(a, p, KALLOC_LAYOUT_UNKNOWN);
}

START_TEST(debug_double_free)
{
	char out[4096];
	int status = run_child(double_free, out, sizeof(out));
	ck_assert_aborted(status, out);
	ck_assert_ptr_nonnull(strstr(out, "double free"));
	ck_assert_ptr_nonnull(strstr(out, "freed at"));
}
END_TEST

static void interior_free(void)
{
	kalloc_t *a = open_with("debug=F");
	char *p = alloc(a, 64, 0);
	kalloc_free(a, p + 8, KALLOC_LAYOUT_UNKNOWN);
}

START_TEST(debug_interior_free)
{
	char out[4096];
	int status = run_child(interior_free, out, sizeof(out));
	ck_assert_aborted(status, out);
	ck_assert_ptr_nonnull(strstr(out, "not a live block"));
}
END_TEST

static void wrong_size_free(void)
{
	kalloc_t *a = open_with("debug=F");
	char *p = alloc(a, 64, 0);
	kalloc_free(a, p, KALLOC_LAYOUT(32, 16));
}

START_TEST(debug_sized_free_mismatch)
{
	char out[4096];
	int status = run_child(wrong_size_free, out, sizeof(out));
	ck_assert_aborted(status, out);
	ck_assert_ptr_nonnull(strstr(out, "freed as 32 bytes, allocated as 64"));
}
END_TEST

/* What the shim relies on: F is visible, and makes any unknown pointer
 * fatal, one the backend never saw included. */
static void foreign_free(void)
{
	kalloc_t *a = open_with("debug=F");
	char on_stack[64];
	fprintf(stderr, "victim %p\n", (void *)(on_stack + 16));
	kalloc_free(a, on_stack + 16, KALLOC_LAYOUT_UNKNOWN);
}

START_TEST(debug_checks_frees)
{
	const char *with[] = { "debug=F", "debug=FZPU", "debug=1" };
	const char *without[] = { NULL, "debug=ZPU", "stats=1" };
	for (int i = 0; i < 3; i++) {
		kalloc_t *a = open_with(with[i]);
		ck_assert_msg(kalloc_checks_frees(a) == 1, "%s", with[i]);
		kalloc_close(a);
		a = open_with(without[i]);
		ck_assert_msg(kalloc_checks_frees(a) == 0, "%s",
			      without[i] ? without[i] : "(no options)");
		kalloc_close(a);
	}
	char out[4096];
	int status = run_child(foreign_free, out, sizeof(out));
	ck_assert_aborted(status, out);
	char victim[32];
	ck_assert_int_eq(sscanf(out, "victim %31s", victim), 1);
	const char *report = strstr(out, "not a live block");
	ck_assert_msg(report && strstr(out + strlen("victim ") + strlen(victim),
				       victim), "%s", out);
}
END_TEST

START_TEST(debug_keeps_guarantees)
{
	/* Debug blocks still honor ZERO and keep content across realloc. */
	kalloc_t *a = open_with("debug=FZPU");
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(a, KALLOC_LAYOUT(100, 64), KALLOC_ZERO, &b),
			 KALLOC_OK);
	ck_assert_uint_eq((uintptr_t)b.ptr % 64, 0);
	for (size_t i = 0; i < b.len; i++)
		ck_assert_int_eq(((char *)b.ptr)[i], 0);
	memset(b.ptr, 3, 100);
	void *old = b.ptr;
	ck_assert_int_eq(kalloc_realloc(a, old, KALLOC_LAYOUT(300, 64),
					KALLOC_LAYOUT(100, 64), KALLOC_ZERO, &b),
			 KALLOC_OK);
	for (size_t i = 0; i < 100; i++)
		ck_assert_int_eq(((char *)b.ptr)[i], 3);
	for (size_t i = 100; i < b.len; i++)
		ck_assert_int_eq(((char *)b.ptr)[i], 0);
	kalloc_free(a, b.ptr, KALLOC_LAYOUT(300, 64));
	kalloc_close(a);
}
END_TEST

/* ---- leaks ------------------------------------------------------------ */

static void leaky(void)
{
	kalloc_t *a = open_with("leaks=1");
	kept[0] = alloc(a, 1234, 0);
	kept[1] = alloc(a, 99999, 0);
	kalloc_free(a, alloc(a, 777, 0), KALLOC_LAYOUT_UNKNOWN);
}

START_TEST(leak_report_lists_blocks)
{
	char out[8192];
	int status = run_child(leaky, out, sizeof(out));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "leak report: 2 blocks, 101233 bytes"));
	char *big = strstr(out, "99999 bytes at"), *small = strstr(out, "1234 bytes at");
	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(small);
	ck_assert_msg(big < small, "largest first: %s", out);
	ck_assert_ptr_null(strstr(out, "777 bytes"));
}
END_TEST

int main(void)
{
	backend = getenv("KALLOC_TEST_BACKEND");
	if (!backend)
		backend = "libc";
	Suite *s = suite_create("instrument");
	struct {
		const char *name;
		const TTest *tests[8];
	} cases[] = {
		{ "stats", { stats_add_up, stats_off_is_refused, stats_table_at_exit } },
		{ "fail", { fail_keeps_old_block, fail_probability_interval_space,
			    fail_reports_unless_nowarn } },
		{ "account", { account_limit_and_uncharge } },
		{ "debug", { debug_redzone_overflow, debug_poison_write_after_free,
			     debug_double_free, debug_interior_free,
			     debug_sized_free_mismatch, debug_checks_frees,
			     debug_keeps_guarantees } },
		{ "leaks", { leak_report_lists_blocks } },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 60);
		for (int j = 0; cases[i].tests[j]; j++)
			tcase_add_test(tc, cases[i].tests[j]);
		suite_add_tcase(s, tc);
	}
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

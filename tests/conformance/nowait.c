/*
 * G11: NOWAIT (and ATOMIC) never map memory.  A child process warms the
 * backend up with ordinary allocations of the sizes used, then installs a
 * seccomp filter under which mmap, mremap and brk raise SIGSYS, then makes
 * NOWAIT allocations of those sizes: each must succeed or fail with
 * KALLOC_EAGAIN, none may trap, and at least one must succeed.
 *
 * The filter lives only in that child: the test process reads the outcome
 * from a shared page and the child's exit status.
 *
 * G11 also: NOWAIT never waits for another thread.  In a second child a
 * worker thread allocates and frees in a loop; a signal stops it at an
 * arbitrary point, often inside the backend holding whatever lock it
 * takes, and while it is stopped NOWAIT calls must answer (a block or
 * KALLOC_EAGAIN).  A backend that waits for the stopped thread's lock
 * never answers, and the child is killed at the time limit.  Only run when the
 * backend declares the flag (main prints SKIP otherwise, and G14 proves the
 * refusal).
 */
#include "conform.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#define CONFORM_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CONFORM_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define EXIT_TRAPPED 42 /* the SIGSYS handler's exit status */
#define EXIT_NO_FILTER 43
#define WARM_BLOCKS 4

static const kalloc_layout_t layouts[] = {
	{ 8, 8 },     { 16, 8 },    { 24, 8 },   { 32, 8 },    { 48, 16 },
	{ 64, 8 },    { 96, 16 },   { 128, 8 },  { 200, 8 },   { 256, 64 },
	{ 512, 8 },   { 1000, 8 },  { 1024, 16 }, { 2048, 8 }, { 4000, 8 },
	{ 8192, 4096 }, { 65536, 16 },
};
#define NLAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

/* What the child tells the test process. */
struct outcome {
	volatile int step;     /* index of the call in progress, -1 none */
	volatile long sysno;   /* the trapped system call */
	volatile int err[NLAYOUTS];
};

static struct outcome *shared_outcome;
/* The child's blocks, kept reachable until its _exit (valgrind's leak
 * check); freeing them under the filter might trim with brk. */
static void *volatile nowait_blocks[NLAYOUTS];

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	shared_outcome->sysno = si->si_syscall;
	_exit(EXIT_TRAPPED);
}

static int install_filter(void)
{
#ifdef CONFORM_AUDIT_ARCH
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CONFORM_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mmap, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mremap, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_brk, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
	};
	struct sock_fprog prog = { sizeof(code) / sizeof(code[0]), code };
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGSYS, &sa, NULL) ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		return -1;
	return 0;
#else
	return -1;
#endif
}

/* The child: warm up, forbid mapping, allocate with `flag`. */
static void nowait_child(kalloc_flags_t flag)
{
	for (size_t i = 0; i < NLAYOUTS; i++) {
		kalloc_buf_t b[WARM_BLOCKS];
		for (int k = 0; k < WARM_BLOCKS; k++) {
			if (kalloc_alloc(conform_a, layouts[i], 0, &b[k]))
				_exit(3);
			memset(b[k].ptr, 0x33, layouts[i].size);
		}
		for (int k = 0; k < WARM_BLOCKS; k++)
			kalloc_free(conform_a, b[k].ptr, layouts[i]);
	}
	if (install_filter())
		_exit(EXIT_NO_FILTER);
	for (size_t i = 0; i < NLAYOUTS; i++) {
		shared_outcome->step = (int)i;
		kalloc_buf_t b = { NULL, 0 };
		int err = kalloc_alloc(conform_a, layouts[i],
				       flag | KALLOC_NOWARN, &b);
		nowait_blocks[i] = b.ptr;
		if (!err) {
			if (!b.ptr || b.len < layouts[i].size ||
			    !is_aligned(b.ptr, layouts[i].align))
				_exit(4);
			memset(b.ptr, 0x44, b.len); /* G1 holds under NOWAIT */
		}
		shared_outcome->err[i] = err;
	}
	shared_outcome->step = -1;
	_exit(0);
}

static const char *syscall_name(long nr)
{
	return nr == __NR_mmap ? "mmap" : nr == __NR_mremap ? "mremap" :
	       nr == __NR_brk ? "brk" : "another system call";
}

static void nowait_check(kalloc_flags_t flag, const char *fname)
{
	shared_outcome = mmap(NULL, sizeof(*shared_outcome),
			      PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			      -1, 0);
	REQUIRE(shared_outcome != MAP_FAILED, "mmap of a shared page failed");
	memset((void *)shared_outcome, 0, sizeof(*shared_outcome));
	for (size_t i = 0; i < NLAYOUTS; i++)
		shared_outcome->err[i] = -1;
	shared_outcome->step = -1;

	pid_t pid = conform_fork();
	REQUIRE(pid >= 0, "fork failed");
	if (pid == 0)
		nowait_child(flag);
	int status = 0;
	int timed_out = conform_wait(pid, conform_slow ? 120 : 15, &status);
	struct outcome o = *shared_outcome;
	munmap((void *)shared_outcome, sizeof(*shared_outcome));
	int step = o.step;
	size_t sz = step >= 0 ? layouts[step].size : 0;
	size_t al = step >= 0 ? layouts[step].align : 0;

	REQUIRE(!timed_out, "%s allocation of %zu bytes (align %zu) blocked "
		"(no answer in the time limit)", fname, sz, al);
	REQUIRE(!(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_TRAPPED),
		"%s allocation of %zu bytes (align %zu) called %s (syscall %ld)",
		fname, sz, al, syscall_name(o.sysno), o.sysno);
	REQUIRE(!(WIFEXITED(status) && WEXITSTATUS(status) == EXIT_NO_FILTER),
		"cannot install the seccomp filter on this system");
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"%s child ended with %s %d during the call for %zu bytes",
		fname, WIFSIGNALED(status) ? "signal" : "status",
		WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
		sz);
	int served = 0;
	for (size_t i = 0; i < NLAYOUTS; i++) {
		REQUIRE(o.err[i] == KALLOC_OK || o.err[i] == KALLOC_EAGAIN,
			"%s allocation of %zu bytes (align %zu) failed with '%s', "
			"want success or KALLOC_EAGAIN", fname, layouts[i].size,
			layouts[i].align, kalloc_strerror(o.err[i]));
		served += o.err[i] == KALLOC_OK;
	}
	REQUIRE(served > 0, "no %s allocation was served after a warm-up "
		"(all %zu returned KALLOC_EAGAIN)", fname, NLAYOUTS);
}

/* ---- never waits for a stopped thread ---------------------------------- */

#define STOPS 200       /* stops of the worker, each followed by NOWAIT calls */
#define STOP_LAYOUTS 5  /* the first layouts: the small sizes */

struct lock_outcome {
	volatile int round; /* the stop in progress, -1 none */
	volatile int layout;
	volatile int err;   /* a wrong answer, else 0 */
};

static struct lock_outcome *lock_outcome;
static int resume_fd[2];
static atomic_int stops_taken, stops_done;
static atomic_bool worker_quit;
static atomic_uint worker_rounds;

/* The worker, stopped: holds whatever it held until the test resumes it. */
static void on_stop(int sig)
{
	(void)sig;
	atomic_fetch_add(&stops_taken, 1);
	char c;
	while (read(resume_fd[0], &c, 1) < 0 && errno == EINTR)
		;
	atomic_fetch_add(&stops_done, 1);
}

static void *stop_worker(void *arg)
{
	(void)arg;
	for (unsigned i = 0; !atomic_load(&worker_quit); i++) {
		kalloc_layout_t l = layouts[i % NLAYOUTS];
		kalloc_buf_t b;
		if (kalloc_alloc(conform_a, l, 0, &b))
			_exit(5);
		((volatile char *)b.ptr)[0] = 1;
		kalloc_free(conform_a, b.ptr, l);
		atomic_store_explicit(&worker_rounds, i + 1, memory_order_relaxed);
	}
	return NULL;
}

static void nowait_lock_child(kalloc_flags_t flag)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	if (pipe(resume_fd) || sigaction(SIGUSR2, &sa, NULL))
		_exit(3);
	pthread_t worker;
	if (pthread_create(&worker, NULL, stop_worker, NULL))
		_exit(3);
	/* stopped only once started: not inside the thread library's (or a
	 * sanitizer's) thread start, which holds locks of their own */
	while (atomic_load(&worker_rounds) < NLAYOUTS)
		sched_yield();
	int stops = conform_slow ? STOPS / 10 : STOPS;
	for (int round = 0; round < stops; round++) {
		lock_outcome->round = round;
		pthread_kill(worker, SIGUSR2);
		while (atomic_load(&stops_taken) <= round)
			sched_yield();
		kalloc_buf_t b[STOP_LAYOUTS];
		for (int i = 0; i < STOP_LAYOUTS; i++) {
			lock_outcome->layout = i;
			int err = kalloc_alloc(conform_a, layouts[i],
					       flag | KALLOC_NOWARN, &b[i]);
			if (err && err != KALLOC_EAGAIN) {
				lock_outcome->err = err;
				_exit(4);
			}
			if (err)
				b[i].ptr = NULL;
		}
		lock_outcome->layout = -1;
		if (write(resume_fd[1], "", 1) != 1)
			_exit(3);
		while (atomic_load(&stops_done) <= round)
			sched_yield();
		for (int i = 0; i < STOP_LAYOUTS; i++)
			if (b[i].ptr)
				kalloc_free(conform_a, b[i].ptr, layouts[i]);
		/* The next stop lands inside the worker's loop, not where it
		 * waited for a lock these frees held: a thread woken from a
		 * lock wait is stopped before it holds the lock, and on a busy
		 * machine every stop could fall there. */
		unsigned seen = atomic_load(&worker_rounds);
		while (atomic_load(&worker_rounds) < seen + 2)
			sched_yield();
	}
	lock_outcome->round = -1;
	atomic_store(&worker_quit, true);
	pthread_join(worker, NULL);
	_exit(0);
}

static void nowait_lock_check(kalloc_flags_t flag, const char *fname)
{
	lock_outcome = mmap(NULL, sizeof(*lock_outcome), PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	REQUIRE(lock_outcome != MAP_FAILED, "mmap of a shared page failed");
	lock_outcome->round = -1;
	lock_outcome->layout = -1;
	pid_t pid = conform_fork();
	REQUIRE(pid >= 0, "fork failed");
	if (pid == 0)
		nowait_lock_child(flag);
	int status = 0;
	int timed_out = conform_wait(pid, conform_slow ? 120 : 15, &status);
	struct lock_outcome o = *lock_outcome;
	munmap(lock_outcome, sizeof(*lock_outcome));
	size_t sz = o.layout >= 0 ? layouts[o.layout].size : 0;
	REQUIRE(!timed_out, "%s allocation of %zu bytes waited for another "
		"thread, stopped inside the backend (stop %d): NOWAIT must "
		"not wait for a lock another thread holds", fname, sz, o.round);
	REQUIRE(!(WIFEXITED(status) && WEXITSTATUS(status) == 4),
		"%s allocation of %zu bytes while another thread was stopped "
		"failed with '%s', want success or KALLOC_EAGAIN", fname, sz,
		kalloc_strerror(o.err));
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		"%s stop child ended with %s %d (stop %d)", fname,
		WIFSIGNALED(status) ? "signal" : "status",
		WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
		o.round);
}

START_TEST(g11_nowait_waits_for_no_thread)
{
	if (honors(KALLOC_NOWAIT))
		nowait_lock_check(KALLOC_NOWAIT, "NOWAIT");
}
END_TEST

START_TEST(g11_nowait_maps_nothing)
{
	if (honors(KALLOC_NOWAIT))
		nowait_check(KALLOC_NOWAIT, "NOWAIT");
}
END_TEST

START_TEST(g11_atomic_maps_nothing)
{
	if (honors(KALLOC_ATOMIC))
		nowait_check(KALLOC_ATOMIC, "ATOMIC");
}
END_TEST

TCase *g11_nowait(void)
{
	TCase *tc = conform_tcase("G11");
	tcase_add_test(tc, g11_nowait_maps_nothing);
	tcase_add_test(tc, g11_atomic_maps_nothing);
	tcase_add_test(tc, g11_nowait_waits_for_no_thread);
	return tc;
}

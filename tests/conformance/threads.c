/*
 * G13: any thread may free or realloc a block allocated by another, and
 * the child of a multithreaded parent can allocate.
 *
 * Churn: threads pass blocks through shared slots; whoever takes a block
 * checks its cookie pattern, then frees it (sized or not), reallocates it
 * (content checked, pattern extended) or puts it back.  Threads end while
 * their blocks live on and fresh threads carry on with them.  Threads never
 * call Check's asserts: the first problem is recorded and reported by the
 * test's own thread after joining.
 */
#include "conform.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 2
#define NSLOTS 64
#define ROUNDS 2
#define CHURN_OPS 100000 /* per thread and round */
#define MiB ((size_t)1 << 20)

struct slot {
	pthread_mutex_t lock;
	struct blk b; /* b.p == NULL: empty */
};

static struct slot slots[NSLOTS];
static atomic_int failed;
static char failure[512];

static void record(const char *fmt, ...)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&failed, &expected, 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(failure, sizeof(failure), fmt, ap);
	va_end(ap);
}

static bool cookie_ok(const struct blk *b, const char *when)
{
	size_t bad = pat_find_bad(b->p, 0, b->size, b->seed);
	if (bad == SIZE_MAX)
		return true;
	record("%s: block %p of %zu bytes (align %zu): byte %zu is 0x%02x, "
	       "expected 0x%02x", when, b->p, b->size, b->align, bad,
	       ((unsigned char *)b->p)[bad], pat_byte(b->seed, bad));
	return false;
}

/* Mostly the common alignments; one time in four any power of two up to
 * align_limit(1 MiB), small blocks only above a page (memory bounded). */
static size_t churn_align(uint64_t *rng)
{
	static const size_t common[] = { 1, 8, 16, 64 };
	uint64_t r = rng_next(rng);
	if (r % 4)
		return align_limit(common[(r >> 8) % 4]);
	size_t top = align_limit(MiB);
	unsigned bits = (unsigned)__builtin_ctzll((unsigned long long)top);
	return (size_t)1 << ((r >> 8) % (bits + 1));
}

static size_t churn_size(uint64_t *rng, size_t align)
{
	return rng_size(rng, 1, align > 4096 ? 4096 : 16384);
}

/* What every result must be: aligned, long enough, usable that far. */
static bool churn_ok(int err, kalloc_buf_t out, size_t size, size_t align,
		     const char *what, size_t from)
{
	if (!err && out.ptr && out.len >= size && is_aligned(out.ptr, align) &&
	    kalloc_usable_size(conform_a, out.ptr) >= out.len)
		return true;
	record("%s(%zu -> %zu, align %zu) in a thread: %s {%p, %zu}, "
	       "usable_size %zu", what, from, size, align,
	       kalloc_strerror(err), out.ptr, out.len,
	       err || !out.ptr ? 0 : kalloc_usable_size(conform_a, out.ptr));
	return false;
}

static bool churn_alloc(struct blk *b, uint64_t *rng)
{
	size_t align = churn_align(rng);
	size_t size = churn_size(rng, align);
	kalloc_buf_t out = { NULL, 0 };
	int err = kalloc_alloc(conform_a, KALLOC_LAYOUT(size, align), 0, &out);
	if (!churn_ok(err, out, size, align, "alloc", 0))
		return false;
	*b = (struct blk){ out.ptr, out.len, size, align, rng_next(rng) };
	pat_fill(b->p, 0, size, b->seed);
	return true;
}

/* Resizes to a new size and alignment: raised, lowered or kept. */
static bool churn_realloc(struct blk *b, uint64_t *rng)
{
	size_t align = rng_next(rng) & 1 ? b->align : churn_align(rng);
	size_t size = churn_size(rng, align);
	bool unknown = rng_next(rng) & 1;
	kalloc_buf_t out = { NULL, 0 };
	int err = kalloc_realloc(conform_a, b->p, KALLOC_LAYOUT(size, align),
				 unknown ? KALLOC_LAYOUT_UNKNOWN : blk_layout(b),
				 0, &out);
	if (!churn_ok(err, out, size, align, "realloc of another thread's block",
		      b->size))
		return false;
	size_t kept = b->size < size ? b->size : size;
	struct blk n = { out.ptr, out.len, size, align, b->seed };
	size_t bad = pat_find_bad(n.p, 0, kept, n.seed);
	if (bad != SIZE_MAX) {
		record("realloc(%zu -> %zu, align %zu -> %zu) of another "
		       "thread's block lost byte %zu", b->size, size, b->align,
		       align, bad);
		return false;
	}
	pat_fill(n.p, kept, size, n.seed);
	*b = n;
	return true;
}

static void *churn(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;
	int ops = conform_slow ? 3000 : CHURN_OPS;
	for (int op = 0; op < ops && !atomic_load(&failed); op++) {
		struct slot *s = &slots[rng_next(&rng) % NSLOTS];
		pthread_mutex_lock(&s->lock);
		struct blk b = s->b;
		s->b.p = NULL;
		pthread_mutex_unlock(&s->lock);

		if (b.p) {
			if (!cookie_ok(&b, "block taken from a slot"))
				return NULL;
			switch (rng_next(&rng) % 4) {
			case 0:
				kalloc_free(conform_a, b.p, blk_layout(&b));
				b.p = NULL;
				break;
			case 1:
				kalloc_free(conform_a, b.p, KALLOC_LAYOUT_UNKNOWN);
				b.p = NULL;
				break;
			case 2:
				if (!churn_realloc(&b, &rng))
					return NULL;
				break;
			default:
				break;
			}
		} else if (!churn_alloc(&b, &rng)) {
			return NULL;
		}
		if (!b.p)
			continue;
		pthread_mutex_lock(&s->lock);
		bool put = s->b.p == NULL;
		if (put)
			s->b = b;
		pthread_mutex_unlock(&s->lock);
		if (!put)
			kalloc_free(conform_a, b.p, blk_layout(&b));
	}
	return NULL;
}

START_TEST(g13_cross_thread_churn)
{
	for (int i = 0; i < NSLOTS; i++)
		pthread_mutex_init(&slots[i].lock, NULL);
	for (int round = 0; round < ROUNDS; round++) {
		pthread_t t[NTHREADS];
		for (int i = 0; i < NTHREADS; i++)
			REQUIRE(pthread_create(&t[i], NULL, churn,
					       (void *)(uintptr_t)(0x1300 + round *
								   NTHREADS + i)) == 0,
				"pthread_create failed");
		for (int i = 0; i < NTHREADS; i++)
			pthread_join(t[i], NULL);
		REQUIRE(!atomic_load(&failed), "%s", failure);
	}
	/* blocks of threads that have ended, freed here */
	int left = 0;
	for (int i = 0; i < NSLOTS; i++)
		if (slots[i].b.p) {
			blk_verify(&slots[i].b, "block left by ended threads");
			blk_free(&slots[i].b, i & 1);
			left++;
		}
	(void)left;
}
END_TEST

/* ---- memory freed by a thread that never allocated comes back ----------- */

#define REMOTE_ROUNDS 300
#define REMOTE_SIZE ((size_t)4 << 20)

static void *remote_free(void *arg)
{
	struct blk *b = arg;
	blk_free(b, false);
	return NULL;
}

/* The process's mapped bytes (/proc/self/statm's first field). */
static size_t mapped_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;
	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/*
 * Blocks of 4 MiB, each allocated here and freed by a fresh thread that
 * never allocated (no cache of its own): their memory must come back for
 * reuse.  300 such blocks lost would map 1.2 GiB more; a backend keeping
 * caches (or a sanitizer's quarantine) stays far below half of that.
 */
START_TEST(g13_free_from_fresh_thread)
{
	int rounds = conform_slow ? 60 : REMOTE_ROUNDS;
	size_t before = mapped_bytes();
	for (int i = 0; i < rounds; i++) {
		struct blk b = blk_alloc(REMOTE_SIZE, 16, 0);
		((char *)b.p)[0] = 1;
		pthread_t t;
		REQUIRE(pthread_create(&t, NULL, remote_free, &b) == 0,
			"pthread_create failed");
		pthread_join(t, NULL);
	}
	size_t grown = mapped_bytes() - before;
	REQUIRE(before && grown < (size_t)rounds * REMOTE_SIZE / 2,
		"%d blocks of %zu bytes, each freed by a thread that never "
		"allocated, grew the mapped memory by %zu bytes: frees lost",
		rounds, REMOTE_SIZE, grown);
}
END_TEST

/* ---- fork from a multithreaded parent ---------------------------------- */

static atomic_int stop_busy;

#define BUSY 3
#define HELD 16
/* Not on the threads' stacks: a fork child, where those threads do not
 * exist, still reaches these blocks (valgrind's leak check at its exit). */
static struct blk busy_held[BUSY][HELD];

static void *busy(void *arg)
{
	uint64_t rng = 0xf0 + (uint64_t)(uintptr_t)arg;
	struct blk *held = busy_held[(uintptr_t)arg];
	memset(held, 0, sizeof(busy_held[0]));
	while (!atomic_load(&stop_busy)) {
		struct blk *b = &held[rng_next(&rng) % HELD];
		if (b->p) {
			if (!cookie_ok(b, "busy thread's block"))
				break;
			kalloc_free(conform_a, b->p, blk_layout(b));
			b->p = NULL;
		} else if (!churn_alloc(b, &rng)) {
			break;
		}
	}
	for (int i = 0; i < HELD; i++)
		if (held[i].p)
			kalloc_free(conform_a, held[i].p, blk_layout(&held[i]));
	return NULL;
}

/* The child: allocate, use, resize and free a few blocks, then _exit. */
static void forked_child(void)
{
	static const size_t sizes[] = { 16, 100, 5000, 70000, 1 << 20 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		kalloc_buf_t b;
		if (kalloc_alloc(conform_a, KALLOC_LAYOUT(sizes[i], 16), 0, &b))
			_exit(2);
		memset(b.ptr, 0x5C, sizes[i]);
		kalloc_buf_t r;
		if (kalloc_realloc(conform_a, b.ptr,
				   KALLOC_LAYOUT(sizes[i] * 2, 16),
				   KALLOC_LAYOUT(sizes[i], 16), 0, &r))
			_exit(3);
		for (size_t k = 0; k < sizes[i]; k += 97)
			if (((unsigned char *)r.ptr)[k] != 0x5C)
				_exit(4);
		kalloc_free(conform_a, r.ptr, KALLOC_LAYOUT(sizes[i] * 2, 16));
	}
	conform_child_done();
}

START_TEST(g13_fork_while_threads_allocate)
{
	pthread_t t[BUSY];
	atomic_store(&stop_busy, 0);
	for (int i = 0; i < BUSY; i++)
		REQUIRE(pthread_create(&t[i], NULL, busy, (void *)(uintptr_t)i) == 0,
			"pthread_create failed");
	int forks = conform_slow ? 4 : 24;
	int bad_status = -1, stuck = 0, k = 0;
	for (; k < forks && !stuck && bad_status < 0; k++) {
		struct timespec nap = { 0, (k % 5) * 300 * 1000 };
		nanosleep(&nap, NULL);
		pid_t pid = conform_fork();
		if (pid == 0)
			forked_child();
		if (pid < 0)
			break;
		int status = 0;
		if (conform_wait(pid, conform_slow ? 120 : 10, &status))
			stuck = 1;
		else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad_status = status;
	}
	atomic_store(&stop_busy, 1);
	for (int i = 0; i < BUSY; i++)
		pthread_join(t[i], NULL);
	REQUIRE(!stuck, "fork %d: the child of a multithreaded parent did not "
		"finish allocating (deadlock?)", k);
	REQUIRE(bad_status < 0, "fork %d: the child failed: %s %d", k,
		WIFSIGNALED(bad_status) ? "signal" : "exit status",
		WIFSIGNALED(bad_status) ? WTERMSIG(bad_status) :
					  WEXITSTATUS(bad_status));
	REQUIRE(!atomic_load(&failed), "%s", failure);
}
END_TEST

TCase *g13_threads(void)
{
	TCase *tc = conform_tcase("G13");
	tcase_add_test(tc, g13_cross_thread_churn);
	tcase_add_test(tc, g13_free_from_fresh_thread);
	tcase_add_test(tc, g13_fork_while_threads_allocate);
	return tc;
}

/* Patterns, random sizes and block helpers shared by every guarantee. */
#include "conform.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Junk written past a block's requested size, up to its usable length. */
#define JUNK 0xEE

/* splitmix64's finalizer: every input bit moves every output bit. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The 8 pattern bytes of word j (bytes 8j .. 8j+7). */
static void pat_word(uint64_t seed, size_t j, unsigned char out[8])
{
	uint64_t w = mix(seed ^ ((uint64_t)j * 0xd1b54a32d192ed03ull));
	for (int k = 0; k < 8; k++)
		out[k] = (unsigned char)(w >> (8 * k));
}

uint8_t pat_byte(uint64_t seed, size_t i)
{
	unsigned char w[8];
	pat_word(seed, i / 8, w);
	return w[i % 8];
}

void pat_fill(void *p, size_t from, size_t to, uint64_t seed)
{
	unsigned char *c = p;
	size_t i = from;
	for (; i < to && i % 8; i++)
		c[i] = pat_byte(seed, i);
	for (; i + 8 <= to; i += 8) {
		unsigned char w[8];
		pat_word(seed, i / 8, w);
		memcpy(c + i, w, 8);
	}
	for (; i < to; i++)
		c[i] = pat_byte(seed, i);
}

size_t pat_find_bad(const void *p, size_t from, size_t to, uint64_t seed)
{
	const unsigned char *c = p;
	size_t i = from;
	for (; i < to && i % 8; i++)
		if (c[i] != pat_byte(seed, i))
			return i;
	for (; i + 8 <= to; i += 8) {
		unsigned char w[8];
		pat_word(seed, i / 8, w);
		if (memcmp(c + i, w, 8) != 0)
			break; /* the byte loop below finds which */
	}
	for (; i < to; i++)
		if (c[i] != pat_byte(seed, i))
			return i;
	return SIZE_MAX;
}

size_t zero_find_bad(const void *p, size_t from, size_t to)
{
	const unsigned char *c = p;
	size_t i = from;
	for (; i + 8 <= to; i += 8) {
		uint64_t v;
		memcpy(&v, c + i, 8);
		if (v)
			break;
	}
	for (; i < to; i++)
		if (c[i])
			return i;
	return SIZE_MAX;
}

uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x853c49e6748fea9bull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static unsigned log2_floor(size_t x)
{
	return (unsigned)(63 - __builtin_clzll((unsigned long long)x));
}

size_t rng_size(uint64_t *s, size_t lo, size_t hi)
{
	if (lo < 1)
		lo = 1;
	unsigned lb = log2_floor(lo), hb = log2_floor(hi);
	unsigned b = lb + (unsigned)(rng_next(s) % (hb - lb + 1));
	size_t base = (size_t)1 << b;
	size_t v = base + (size_t)(rng_next(s) % base);
	return v < lo ? lo : v > hi ? hi : v;
}

/* Sizes around every power of two and page multiple up to a few MiB. */
size_t boundary_sizes(size_t *out, size_t cap)
{
	size_t n = 0, page = (size_t)sysconf(_SC_PAGESIZE);
	for (unsigned k = 10; k <= 22 && n + 3 <= cap; k++) {
		size_t p2 = (size_t)1 << k;
		out[n++] = p2 - 1;
		out[n++] = p2;
		out[n++] = p2 + 1;
	}
	static const unsigned pages[] = { 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33,
					  63, 65, 100, 127, 129, 255, 257, 511,
					  513, 767, 1023, 1025 };
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]) && n + 3 <= cap;
	     i++) {
		out[n++] = pages[i] * page - 1;
		out[n++] = pages[i] * page;
		out[n++] = pages[i] * page + 1;
	}
	return n;
}

/* valgrind's memalign aborts on alignments above 16 MiB, and above 1 MiB
 * now and then reports its own padding as a leaked block. */
#define VALGRIND_MAX_ALIGN ((size_t)1 << 20)

size_t align_limit(size_t cap)
{
	if (conform_slow && cap > VALGRIND_MAX_ALIGN)
		cap = VALGRIND_MAX_ALIGN;
	return conform_info.max_align < cap ? conform_info.max_align : cap;
}

const char *flag_names(kalloc_flags_t f, char *buf, size_t cap)
{
	static const struct {
		kalloc_flags_t bit;
		const char *name;
	} names[] = {
		{ KALLOC_ZERO, "ZERO" },       { KALLOC_NOWARN, "NOWARN" },
		{ KALLOC_NOWAIT, "NOWAIT" },   { KALLOC_ATOMIC, "ATOMIC" },
		{ KALLOC_ACCOUNT, "ACCOUNT" }, { KALLOC_HIGHMEM, "HIGHMEM" },
	};
	size_t used = (size_t)snprintf(buf, cap, "0x%x (", (unsigned)f);
	const char *sep = "";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((f & names[i].bit) && used < cap) {
			used += (size_t)snprintf(buf + used, cap - used, "%s%s",
						 sep, names[i].name);
			sep = "|";
		}
	if (f & ~KALLOC_FLAGS_ALL && used < cap)
		used += (size_t)snprintf(buf + used, cap - used, "%sunknown",
					 sep);
	if (used < cap)
		snprintf(buf + used, cap - used, ")");
	return buf;
}

struct blk blk_alloc(size_t size, size_t align, kalloc_flags_t flags)
{
	kalloc_buf_t out = { NULL, 0 };
	int err = kalloc_alloc(conform_a, KALLOC_LAYOUT(size, align), flags,
			       &out);
	REQUIRE(err == KALLOC_OK,
		"alloc(size %zu, align %zu, flags 0x%x) failed: %s: %s", size,
		align, (unsigned)flags, kalloc_strerror(err), kalloc_errmsg());
	REQUIRE(out.ptr && !kalloc_is_sentinel(out.ptr),
		"alloc(size %zu, align %zu) returned %p", size, align, out.ptr);
	REQUIRE(out.len >= size,
		"alloc(size %zu, align %zu): usable length %zu < size", size,
		align, out.len);
	REQUIRE(is_aligned(out.ptr, align),
		"alloc(size %zu, align %zu) returned misaligned %p", size,
		align, out.ptr);
	return (struct blk){ out.ptr, out.len, size, align, 0 };
}

void blk_stamp(struct blk *b, uint64_t seed)
{
	b->seed = seed;
	pat_fill(b->p, 0, b->size, seed);
	memset((char *)b->p + b->size, JUNK, b->len - b->size);
}

void blk_verify(const struct blk *b, const char *what)
{
	size_t bad = pat_find_bad(b->p, 0, b->size, b->seed);
	REQUIRE(bad == SIZE_MAX,
		"%s: block of size %zu align %zu at %p: byte %zu is 0x%02x, "
		"expected 0x%02x", what, b->size, b->align, b->p, bad,
		bad == SIZE_MAX ? 0 : ((unsigned char *)b->p)[bad],
		bad == SIZE_MAX ? 0 : pat_byte(b->seed, bad));
}

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

bool blk_resize(struct blk *b, size_t size, size_t align, kalloc_flags_t flags,
		bool unknown)
{
	kalloc_layout_t old = unknown ? KALLOC_LAYOUT_UNKNOWN : blk_layout(b);
	size_t old_usable = kalloc_usable_size(conform_a, b->p);
	kalloc_buf_t out = { NULL, 0 };
	int err = kalloc_realloc(conform_a, b->p, KALLOC_LAYOUT(size, align),
				 old, flags, &out);
	REQUIRE(err == KALLOC_OK,
		"realloc(size %zu align %zu -> size %zu align %zu, flags 0x%x, "
		"old layout %s) failed: %s: %s", b->size, b->align, size,
		align, (unsigned)flags, unknown ? "unknown" : "known",
		kalloc_strerror(err), kalloc_errmsg());
	REQUIRE(out.ptr && !kalloc_is_sentinel(out.ptr) && out.len >= size &&
			is_aligned(out.ptr, align),
		"realloc(size %zu -> size %zu align %zu) returned %p with "
		"usable length %zu", b->size, size, align, out.ptr, out.len);
	bool moved = out.ptr != b->p;
	struct blk n = { out.ptr, out.len, size, align, b->seed };

	size_t kept = min_sz(b->size, size);
	size_t bad = pat_find_bad(n.p, 0, kept, b->seed);
	REQUIRE(bad == SIZE_MAX,
		"realloc(size %zu align %zu -> size %zu align %zu, old layout "
		"%s, %s) lost content: byte %zu is 0x%02x, expected 0x%02x",
		b->size, b->align, size, align, unknown ? "unknown" : "known",
		moved ? "moved" : "in place", bad,
		bad == SIZE_MAX ? 0 : ((unsigned char *)n.p)[bad],
		bad == SIZE_MAX ? 0 : pat_byte(b->seed, bad));

	if (flags & KALLOC_ZERO) {
		/* Known old layout: zeros from the old size.  Unknown: the
		 * backend keeps its whole old usable length, then zeros. */
		size_t zfrom = unknown ? min_sz(old_usable, size) : kept;
		size_t junk_to = min_sz(zfrom, b->len);
		for (size_t i = kept; i < junk_to; i++)
			REQUIRE(((unsigned char *)n.p)[i] == JUNK,
				"realloc with ZERO, old layout unknown: byte %zu "
				"of the old usable length %zu was not kept",
				i, old_usable);
		bad = zero_find_bad(n.p, zfrom, n.len);
		REQUIRE(bad == SIZE_MAX,
			"realloc with ZERO (size %zu -> %zu, align %zu, old "
			"layout %s, %s): byte %zu of usable length %zu is "
			"0x%02x, not 0", b->size, size, align,
			unknown ? "unknown" : "known",
			moved ? "moved" : "in place", bad, n.len,
			bad == SIZE_MAX ? 0 : ((unsigned char *)n.p)[bad]);
	}
	pat_fill(n.p, kept, size, n.seed);
	memset((char *)n.p + size, JUNK, n.len - size);
	*b = n;
	return moved;
}

void blk_free(struct blk *b, bool unknown)
{
	kalloc_free(conform_a, b->p,
		    unknown ? KALLOC_LAYOUT_UNKNOWN : blk_layout(b));
	b->p = NULL;
}

/* waitpid with a deadline; kills the child when it passes. */
int conform_wait(int pid, int seconds, int *status)
{
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	for (int i = 0; i < seconds * 100; i++) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		nanosleep(&nap, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

/* Ends the test with a message when fork() has not returned by then. */
struct fork_watch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	bool started; /* waiting on cond: it holds no lock of the runtime */
	int seconds;
};

static void *fork_watchdog(void *arg)
{
	struct fork_watch *w = arg;
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += w->seconds;
	pthread_mutex_lock(&w->lock);
	w->started = true;
	pthread_cond_broadcast(&w->cond);
	while (!w->done &&
	       pthread_cond_timedwait(&w->cond, &w->lock, &deadline) != ETIMEDOUT)
		;
	bool done = w->done;
	pthread_mutex_unlock(&w->lock);
	if (!done) /* Check reports this and ends the test process */
		ck_abort_msg("fork() did not return in %d s: a fork handler "
			     "deadlocks (this process is itself a fork child "
			     "of a process that had the backend open)",
			     w->seconds);
	return NULL;
}

int conform_fork(void)
{
	const char *ckfork = getenv("CK_FORK");
	if (ckfork && strcmp(ckfork, "no") == 0)
		return fork(); /* no watchdog: Check cannot end the test */
	struct fork_watch w = { PTHREAD_MUTEX_INITIALIZER,
				PTHREAD_COND_INITIALIZER, false, false,
				conform_slow ? 120 : 10 };
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, fork_watchdog, &w) == 0,
		"pthread_create failed");
	/* Fork once the watchdog waits: a thread still starting may hold
	 * the thread library's or a sanitizer's allocator lock, which the
	 * child would inherit held. */
	pthread_mutex_lock(&w.lock);
	while (!w.started)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pid_t pid = fork();
	if (pid == 0)
		return 0; /* the watchdog thread does not exist here */
	pthread_mutex_lock(&w.lock);
	w.done = true;
	pthread_cond_broadcast(&w.cond);
	pthread_mutex_unlock(&w.lock);
	pthread_join(t, NULL);
	return pid;
}

void conform_child_done(void)
{
	if (conform_slow)
		execl("/bin/true", "true", (char *)NULL);
	_exit(0);
}

TCase *conform_tcase(const char *id)
{
	TCase *tc = tcase_create(id);
	/* Check uses CK_DEFAULT_TIMEOUT only for test cases without one. */
	if (!getenv("CK_DEFAULT_TIMEOUT"))
		tcase_set_timeout(tc, conform_slow ? 300 : 30);
	return tc;
}

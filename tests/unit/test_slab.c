/*
 * The slab backend: size classes, threads, decay, NOWAIT, hardening, fork.
 *
 * Every test opens its own "slab" handle in Check's forked child, so each
 * starts from a fresh allocator (KALLOC_SLAB_DECAY_MS is read at its init).
 * The class tables are also checked white-box, by compiling class.c in.
 */
#include <check.h>
#include <kalloc.h>
#include <kalloc/plugin.h>

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/* Tools that keep shadow memory of what was unmapped: RSS is theirs too
 * (under ASan, 1/8 of what slab touched stays resident as shadow). */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SHADOW_RSS 1
#else
#define SHADOW_RSS RUNNING_ON_VALGRIND
#endif

#include "../../plugins/slab/class.c"
#include "fixtures/child.h"

static kalloc_t *A;

/* An assertion for hot loops and threads: Check's ck_assert records every
 * passing check through its pipe, far too slow there. */
#define REQUIRE(cond, ...)                          \
	do {                                        \
		if (!(cond))                        \
			ck_abort_msg(__VA_ARGS__);  \
	} while (0)

static void open_slab(void)
{
	if (kalloc_open("slab", NULL, &A) != KALLOC_OK)
		ck_abort_msg("cannot open slab: %s", kalloc_errmsg());
}

static void close_slab(void)
{
	kalloc_close(A);
	A = NULL;
}

static void *alloc(size_t size, size_t align, kalloc_flags_t f, size_t *len)
{
	kalloc_buf_t b;
	int err = kalloc_alloc(A, KALLOC_LAYOUT(size, align), f, &b);
	REQUIRE(err == KALLOC_OK, "alloc(%zu, %zu, 0x%x): %s", size, align,
		(unsigned)f, kalloc_errmsg());
	REQUIRE(b.len >= size, "len %zu < size %zu", b.len, size);
	if (len)
		*len = b.len;
	return b.ptr;
}

static void release(void *p)
{
	kalloc_free(A, p, KALLOC_LAYOUT_UNKNOWN);
}

/* A block's cookie: its size at the start, a pattern in its first and last
 * 8 bytes (it needs size >= 24). */
static void cookie_put(void *p, size_t size)
{
	unsigned char *c = p;
	memcpy(c, &size, sizeof(size));
	for (int i = 0; i < 8; i++) {
		c[8 + i] = (unsigned char)((uintptr_t)p >> i ^ 0x5a);
		c[size - 8 + i] = (unsigned char)(size >> i ^ 0xa5);
	}
}

static size_t cookie_check(const void *p)
{
	const unsigned char *c = p;
	size_t size;
	memcpy(&size, c, sizeof(size));
	for (int i = 0; i < 8; i++) {
		REQUIRE(c[8 + i] == (unsigned char)((uintptr_t)p >> i ^ 0x5a),
			"cookie head of %p damaged", p);
		REQUIRE(c[size - 8 + i] == (unsigned char)(size >> i ^ 0xa5),
			"cookie tail of %p (%zu bytes) damaged", p, size);
	}
	return size;
}

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%ld %ld", &size, &res), 2);
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- size classes (white box) ------------------------------------------ */

START_TEST(class_table_invariants)
{
	slab_classes_init();
	for (unsigned c = 0; c < CLASS_COUNT; c++) {
		const struct class_info *ci = &slab_classes[c];
		size_t bytes = ci->span * SLAB_UNIT;
		ck_assert_uint_ge(ci->nblocks, 1);
		ck_assert_uint_le(ci->nblocks, SLAB_MAX_BLOCKS);
		ck_assert_uint_le((size_t)ci->nblocks * ci->size, bytes);
		if (c)
			ck_assert_uint_gt(ci->size, slab_classes[c - 1].size);
		/* the block index of every offset in the span is exact, and
		 * so is the test for a block's start (slab_block_index) */
		for (uint64_t off = 0; off < bytes; off++) {
			unsigned __int128 q = (unsigned __int128)off * ci->magic;
			uint64_t idx = (uint64_t)(q >> 64);
			bool start = (uint64_t)q < ci->magic;
			if (idx != off / ci->size || start != (off % ci->size == 0))
				ck_abort_msg("class %u (%u B): offset %ju gives "
					     "index %ju, start %d", c, ci->size,
					     (uintmax_t)off, (uintmax_t)idx, start);
		}
		/* a power-of-two class starts its span on a multiple of its
		 * size: naturally aligned blocks */
		if (!(ci->size & (ci->size - 1))) {
			ck_assert_uint_eq(bytes % ci->size, 0);
			size_t start_align = ci->span_align * SLAB_UNIT;
			ck_assert_uint_eq(start_align % ci->size == 0 ||
						  SLAB_UNIT % ci->size == 0,
					  1);
		}
		/* enough blocks per span that one thread's class is not a
		 * slab per block */
		ck_assert_uint_ge(ci->nblocks, SLAB_MIN_BLOCKS);
	}
	ck_assert_uint_eq(slab_classes[CLASS_COUNT - 1].size, CLASS_MAX);
}
END_TEST

START_TEST(class_lookup_waste_and_alignment)
{
	slab_classes_init();
	for (size_t align = 1; align <= CLASS_MAX_ALIGN; align *= 2) {
		for (size_t n = 1; n <= CLASS_MAX; n++) {
			int c = slab_class_of(n, align);
			size_t rounded = (n + align - 1) & ~(align - 1);
			if (rounded > CLASS_MAX) {
				REQUIRE(c == -1, "%zu/%zu: class %d", n, align, c);
				continue;
			}
			REQUIRE(c >= 0, "%zu/%zu: no class", n, align);
			uint32_t s = slab_classes[c].size;
			REQUIRE(s >= rounded, "%zu/%zu: class %u", n, align, s);
			/* the smallest class that fits */
			REQUIRE(c == 0 || slab_classes[c - 1].size < rounded,
				"%zu/%zu: class %u is not the smallest", n, align, s);
			/* blocks at multiples of s are aligned */
			REQUIRE(s % align == 0, "size %zu align %zu: class %u",
				n, align, s);
			/* at most 12.5% waste above 64 bytes */
			REQUIRE(align > 8 || n <= 64 || (s - n) * 8 <= n,
				"size %zu: class %u wastes more than 12.5%%", n, s);
			REQUIRE(align != 1 || n < 16 || (n & (n - 1)) || s == n,
				"power of two %zu: class %u", n, s);
		}
	}
	ck_assert_int_eq(slab_class_of(CLASS_MAX + 1, 1), -1);
	ck_assert_int_eq(slab_class_of(16, CLASS_MAX_ALIGN * 2), -1);
}
END_TEST

/* The same rules seen through the API. */
START_TEST(api_sizes_alignment)
{
	open_slab();
	for (size_t n = 1; n <= 40000; n += (n < 2048 ? 1 : 61)) {
		size_t len;
		void *p = alloc(n, 1, 0, &len);
		REQUIRE(kalloc_usable_size(A, p) == len, "usable of %zu", n);
		memset(p, 0xab, len);
		REQUIRE(n <= 64 || n > CLASS_MAX || (len - n) * 8 <= n,
			"%zu -> %zu", n, len);
		release(p);
	}
	for (size_t n = 1; n <= CLASS_MAX; n *= 2) {
		void *ps[8];
		for (int i = 0; i < 8; i++) {
			ps[i] = alloc(n, 1, 0, NULL);
			ck_assert_msg(((uintptr_t)ps[i] & (n - 1)) == 0,
				      "%zu-byte block %p not naturally aligned",
				      n, ps[i]);
		}
		for (int i = 0; i < 8; i++)
			release(ps[i]);
	}
	unsigned seed = 7;
	for (size_t align = 1; align <= ((size_t)2 << 20); align *= 2) {
		for (int i = 0; i < 20; i++) {
			size_t n = 1 + rnd(&seed) % (i < 10 ? 3000 : 70000);
			size_t len;
			void *p = alloc(n, align, 0, &len);
			ck_assert_msg(((uintptr_t)p & (align - 1)) == 0,
				      "%p not aligned to %zu", p, align);
			memset(p, 1, len);
			ck_assert_int_eq(kalloc_owns(A, p), 1);
			release(p);
		}
	}
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_alloc(A, KALLOC_LAYOUT(16, (size_t)4 << 20),
				      KALLOC_NOWARN, &b), KALLOC_EALIGN);
	close_slab();
}
END_TEST

START_TEST(owns_and_usable_size)
{
	open_slab();
	size_t len;
	char *p = alloc(100, 8, 0, &len);
	char *big = alloc(100000, 8, 0, NULL);
	int local;
	ck_assert_int_eq(kalloc_owns(A, p), 1);
	ck_assert_int_eq(kalloc_owns(A, big), 1);
	/* inside a block: slab's memory, no block there */
	ck_assert_int_eq(kalloc_owns(A, p + 8), 2);
	ck_assert_int_eq(kalloc_owns(A, big + 4096), 2);
	ck_assert_int_eq(kalloc_owns(A, &local), 0);
	ck_assert_int_eq(kalloc_owns(A, (void *)&rss_kib), 0);
	ck_assert_uint_eq(kalloc_usable_size(A, p), len);
	ck_assert_uint_ge(kalloc_usable_size(A, big), 100000);
	release(p);
	ck_assert_int_eq(kalloc_owns(A, p), 2); /* freed: no live block */
	release(big);
	ck_assert_int_eq(kalloc_owns(A, big), 2); /* a large block just freed */
	close_slab();
}
END_TEST

/* ---- realloc -------------------------------------------------------------- */

START_TEST(realloc_in_place_and_moves)
{
	open_slab();
	kalloc_buf_t b;
	size_t len;
	char *p = alloc(100, 8, 0, &len);
	memset(p, 7, 100);
	/* within the block: same pointer, kept content, zeros after */
	ck_assert_int_eq(kalloc_realloc(A, p, KALLOC_LAYOUT(len, 8),
					KALLOC_LAYOUT(100, 8), KALLOC_ZERO, &b), 0);
	ck_assert_ptr_eq(b.ptr, p);
	for (size_t i = 0; i < len; i++)
		REQUIRE(p[i] == (i < 100 ? 7 : 0), "byte %zu", i);
	/* a modest shrink stays */
	ck_assert_int_eq(kalloc_realloc(A, p, KALLOC_LAYOUT(90, 8),
					KALLOC_LAYOUT_UNKNOWN, 0, &b), 0);
	ck_assert_ptr_eq(b.ptr, p);
	/* a much smaller size moves to its class, keeping content */
	ck_assert_int_eq(kalloc_realloc(A, p, KALLOC_LAYOUT(20, 8),
					KALLOC_LAYOUT(90, 8), 0, &b), 0);
	ck_assert_ptr_ne(b.ptr, p);
	ck_assert_uint_eq(b.len, 32);
	for (size_t i = 0; i < 20; i++)
		REQUIRE(((char *)b.ptr)[i] == 7, "byte %zu", i);
	p = b.ptr;
	/* growth through every range: slab -> slab -> mapping -> bigger */
	size_t sizes[] = { 3000, 30000, 100000, 5000000, 20000000, 200 };
	size_t have = 20;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		ck_assert_int_eq(kalloc_realloc(A, p, KALLOC_LAYOUT(sizes[k], 8),
						KALLOC_LAYOUT(have, 8),
						KALLOC_ZERO, &b), 0);
		ck_assert_uint_ge(b.len, sizes[k]);
		char *q = b.ptr;
		size_t kept = have < sizes[k] ? have : sizes[k];
		for (size_t i = 0; i < kept; i += 1 + i / 64)
			REQUIRE(q[i] == (char)(i < 20 ? 7 : i % 101),
				"byte %zu lost growing to %zu", i, sizes[k]);
		for (size_t i = kept; i < b.len; i += 1 + i / 64)
			REQUIRE(q[i] == 0, "byte %zu not zero", i);
		for (size_t i = kept > 20 ? kept : 20; i < sizes[k]; i++)
			q[i] = (char)(i % 101);
		p = q;
		have = sizes[k];
	}
	ck_assert_int_eq(kalloc_owns(A, p), 1);
	release(p);
	/* a mapping shrinks in place */
	p = alloc(1000000, 8, 0, NULL);
	ck_assert_int_eq(kalloc_realloc(A, p, KALLOC_LAYOUT(600000, 8),
					KALLOC_LAYOUT_UNKNOWN, 0, &b), 0);
	ck_assert_ptr_eq(b.ptr, p);
	ck_assert_uint_lt(b.len, 700000);
	/* a realloc to a larger alignment moves when it must */
	char *s = alloc(48, 16, 0, NULL);
	memset(s, 3, 48);
	ck_assert_int_eq(kalloc_realloc(A, s, KALLOC_LAYOUT(48, 4096),
					KALLOC_LAYOUT(48, 16), 0, &b), 0);
	ck_assert_uint_eq((uintptr_t)b.ptr % 4096, 0);
	ck_assert_int_eq(((char *)b.ptr)[47], 3);
	release(b.ptr);
	release(p);
	close_slab();
}
END_TEST

START_TEST(zero_flag)
{
	open_slab();
	/* dirty some blocks, free them, then ask for zeroed ones */
	for (int round = 0; round < 2; round++) {
		void *ps[64];
		for (int i = 0; i < 64; i++) {
			size_t len;
			ps[i] = alloc(200, 8, round ? KALLOC_ZERO : 0, &len);
			if (round)
				for (size_t k = 0; k < len; k++)
					REQUIRE(((char *)ps[i])[k] == 0,
						"byte %zu not zero", k);
			memset(ps[i], 0xee, len);
		}
		for (int i = 0; i < 64; i++)
			release(ps[i]);
	}
	close_slab();
}
END_TEST

/* ---- threads -------------------------------------------------------------- */

#define SLOTS 2048
static _Atomic(void *) slots[SLOTS];

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	int rounds = RUNNING_ON_VALGRIND ? 20000 : 150000;
	for (int i = 0; i < rounds; i++) {
		unsigned r = rnd(&seed);
		size_t size = 24 + (r % 16 == 0 ? rnd(&seed) % 40000 :
				    rnd(&seed) % 1000);
		void *p = alloc(size, 8, 0, NULL);
		cookie_put(p, size);
		void *old = atomic_exchange(&slots[r % SLOTS], p);
		if (old) {
			cookie_check(old);
			release(old);
		}
	}
	return NULL;
}

START_TEST(cross_thread_frees_under_churn)
{
	open_slab();
	pthread_t t[4];
	for (uintptr_t i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, churn,
						(void *)(i * 7919 + 1)), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < SLOTS; i++) {
		void *p = atomic_exchange(&slots[i], NULL);
		if (p) {
			cookie_check(p);
			release(p);
		}
	}
	close_slab();
}
END_TEST

#define KEEP 20000
static void *kept_blocks[KEEP];
static pthread_key_t late_key;
static _Atomic int late_ok;

/* Runs after slab's own destructor (a later key): the thread is tearing
 * down, and still allocates and frees. */
static void late_destructor(void *v)
{
	release(v); /* a block this thread allocated before teardown */
	void *ps[100];
	for (int i = 0; i < 100; i++) {
		kalloc_buf_t b;
		if (kalloc_alloc(A, KALLOC_LAYOUT(24 + i * 10, 8), 0, &b))
			return;
		ps[i] = b.ptr;
		cookie_put(ps[i], 24 + (size_t)i * 10);
	}
	for (int i = 0; i < 100; i++) {
		cookie_check(ps[i]);
		release(ps[i]);
	}
	atomic_fetch_add(&late_ok, 1);
}

static void *make_and_exit(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	for (int i = 0; i < KEEP; i++) {
		size_t size = 24 + rnd(&seed) % 3000;
		kept_blocks[i] = alloc(size, 8, 0, NULL);
		cookie_put(kept_blocks[i], size);
	}
	pthread_setspecific(late_key, alloc(64, 8, 0, NULL));
	return NULL;
}

static void *free_half(void *arg)
{
	for (int i = (int)(uintptr_t)arg; i < KEEP; i += 2) {
		cookie_check(kept_blocks[i]);
		release(kept_blocks[i]);
	}
	return NULL;
}

struct want {
	const char *group, *key;
	uint64_t value;
	int found;
};

static void find_stat(void *ctx, const char *group, const char *key,
		      uint64_t value)
{
	struct want *w = ctx;
	if (!strcmp(group, w->group) && !strcmp(key, w->key)) {
		w->value = value;
		w->found++;
	}
}

static uint64_t stat_of(const char *group, const char *key)
{
	struct want w = { group, key, 0, 0 };
	ck_assert_int_gt(kalloc_stats_foreach(A, find_stat, &w), 0);
	return w.found ? w.value : UINT64_MAX;
}

START_TEST(thread_exit_blocks_live_on)
{
	open_slab();
	ck_assert_int_eq(pthread_key_create(&late_key, late_destructor), 0);
	for (int round = 0; round < 4; round++) {
		pthread_t t, f[2];
		ck_assert_int_eq(pthread_create(&t, NULL, make_and_exit,
						(void *)(uintptr_t)(round + 1)), 0);
		pthread_join(t, NULL);
		/* the thread is gone; its blocks are intact and freed by
		 * two other threads at once */
		for (uintptr_t k = 0; k < 2; k++)
			pthread_create(&f[k], NULL, free_half, (void *)k);
		for (int k = 0; k < 2; k++)
			pthread_join(f[k], NULL);
	}
	ck_assert_int_eq(atomic_load(&late_ok), 4);
	/* exited threads' heaps are reused, not piled up: at most the
	 * main thread's, one per live thread and the pre-mapped one */
	uint64_t heaps = stat_of("slab", "heaps");
	ck_assert_msg(heaps <= 5, "%ju heaps after 12 threads", (uintmax_t)heaps);
	close_slab();
}
END_TEST

/* A thread that only frees gets a heap at its first free, as at a first
 * allocation: it keeps what it frees in its magazines and gives it back in
 * runs.  Its frees of another thread's blocks all land (the blocks are
 * reused once it has ended). */
#define FREED_ONLY 256
static void *freed_only[FREED_ONLY];
static pthread_barrier_t freer_barrier;

static void *free_only(void *arg)
{
	(void)arg;
	for (int i = 0; i < FREED_ONLY; i++)
		release(freed_only[i]);
	pthread_barrier_wait(&freer_barrier); /* the heaps are counted */
	pthread_barrier_wait(&freer_barrier);
	return NULL;
}

START_TEST(free_only_thread_gets_a_heap)
{
	open_slab();
	for (int i = 0; i < FREED_ONLY; i++) {
		freed_only[i] = alloc(48, 8, 0, NULL);
		memset(freed_only[i], 0x3c, 48);
	}
	uint64_t before = stat_of("slab", "heaps");
	pthread_barrier_init(&freer_barrier, NULL, 2);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, free_only, NULL), 0);
	pthread_barrier_wait(&freer_barrier);
	uint64_t during = stat_of("slab", "heaps");
	pthread_barrier_wait(&freer_barrier);
	pthread_join(t, NULL);
	pthread_barrier_destroy(&freer_barrier);
	if (!RUNNING_ON_VALGRIND) /* (no heaps of their own under a tool) */
		ck_assert_msg(during == before + 1,
			      "%ju heaps before a thread that only frees, %ju "
			      "while it lives", (uintmax_t)before,
			      (uintmax_t)during);
	/* every block came back: a second round of the same size fits in
	 * the memory of the first */
	uint64_t slabs = stat_of("kmalloc-48", "num_slabs");
	for (int i = 0; i < FREED_ONLY; i++)
		freed_only[i] = alloc(48, 8, 0, NULL);
	ck_assert_uint_eq(stat_of("kmalloc-48", "num_slabs"), slabs);
	for (int i = 0; i < FREED_ONLY; i++)
		release(freed_only[i]);
	close_slab();
}
END_TEST

/* ---- memory goes back to the OS ----------------------------------------- */

#define RSS_BLOCKS (64 * 4096) /* 64 MiB of 256-byte blocks */

static void **rss_blocks;

static void *rss_alloc_part(void *arg)
{
	for (int i = (int)(uintptr_t)arg; i < RSS_BLOCKS; i += 2) {
		rss_blocks[i] = alloc(256, 8, 0, NULL);
		memset(rss_blocks[i], 1, 256);
	}
	return NULL;
}

/* Runs a slow path, where decay is checked: a page-mapped block. */
static void slow_path(void)
{
	release(alloc(1 << 20, 8, 0, NULL));
}

/* A decay of an hour: nothing decays while a test runs. */
#define DECAY_NEVER_MS 3600000L

static void rss_round(bool threads, long decay_ms)
{
	rss_blocks = calloc(RSS_BLOCKS, sizeof(void *));
	ck_assert_ptr_nonnull(rss_blocks);
	memset(rss_blocks, 0, RSS_BLOCKS * sizeof(void *));
	release(alloc(256, 8, 0, NULL));
	long base = rss_kib();
	if (threads) {
		pthread_t t[2];
		for (uintptr_t k = 0; k < 2; k++)
			pthread_create(&t[k], NULL, rss_alloc_part, (void *)k);
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
	} else {
		rss_alloc_part((void *)0);
		rss_alloc_part((void *)1);
	}
	long full = rss_kib();
	ck_assert_msg(full - base >= 60 * 1024, "RSS grew by %ld KiB only",
		      full - base);
	for (int i = 0; i < RSS_BLOCKS; i++)
		release(rss_blocks[i]);
	if (decay_ms == DECAY_NEVER_MS) {
		/* the decay keeps a little freed memory resident for reuse,
		 * never more than its cap (2 MiB while nothing is in use) */
		uint64_t kept = stat_of("slab", "free_resident_bytes");
		ck_assert_msg(kept > 0, "nothing kept resident for the decay");
		ck_assert_msg(kept <= (3u << 20), "%ju bytes kept resident",
			      (uintmax_t)kept);
		long held = rss_kib();
		ck_assert_msg(SHADOW_RSS || held - base < 8 * 1024,
			      "%ld KiB above start right after freeing", held - base);
		free(rss_blocks);
		return;
	}
	long slack = SHADOW_RSS ? (full - base) / 8 : 4 * 1024;
	long settled = 0;
	for (int tries = 0; tries < 10; tries++) {
		long ms = decay_ms + 20;
		struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };
		nanosleep(&ts, NULL);
		slow_path();
		settled = rss_kib();
		if (settled - base < slack)
			break;
	}
	ck_assert_msg(settled - base < slack,
		      "RSS %ld KiB above start after freeing everything "
		      "(was %ld above)", settled - base, full - base);
	ck_assert_uint_eq(stat_of("slab", "free_resident_bytes"), 0);
	free(rss_blocks);
}

START_TEST(rss_returns_after_free_all_decay_0)
{
	setenv("KALLOC_SLAB_DECAY_MS", "0", 1);
	open_slab();
	rss_round(false, 0);
	close_slab();
}
END_TEST

START_TEST(rss_kept_for_reuse_until_decay)
{
	setenv("KALLOC_SLAB_DECAY_MS", "3600000", 1);
	open_slab();
	rss_round(false, DECAY_NEVER_MS);
	close_slab();
}
END_TEST

START_TEST(rss_returns_after_decay)
{
	setenv("KALLOC_SLAB_DECAY_MS", "1000", 1);
	open_slab();
	rss_round(false, 1000);
	close_slab();
}
END_TEST

START_TEST(rss_returns_from_exited_threads)
{
	setenv("KALLOC_SLAB_DECAY_MS", "0", 1);
	open_slab();
	rss_round(true, 0);
	close_slab();
}
END_TEST

/* ---- NOWAIT / ATOMIC ---------------------------------------------------- */

/* From here on, any memory-mapping system call kills the process. */
static int forbid_mapping(void)
{
	static const int nrs[] = { __NR_mmap, __NR_munmap, __NR_mremap,
				   __NR_madvise, __NR_brk, __NR_mprotect };
	struct sock_filter f[2 + 2 * 6 + 1];
	int n = 0;
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	for (int i = 0; i < 6; i++) {
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						      (unsigned)nrs[i], 0, 1);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						      SECCOMP_RET_KILL_PROCESS);
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { (unsigned short)n, f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* Exit code: 0 all as expected, else the number of the failed step. */
static int nowait_child(void)
{
	if (forbid_mapping())
		return 90;
	const kalloc_flags_t NW = KALLOC_NOWAIT | KALLOC_NOWARN;
	kalloc_buf_t b, c;
	/* a class with a current slab: served from the thread's heap */
	if (kalloc_alloc(A, KALLOC_LAYOUT(64, 8), NW, &b))
		return 1;
	/* a class never used: a new slab from a chunk already mapped */
	if (kalloc_alloc(A, KALLOC_LAYOUT(3000, 8), NW | KALLOC_ZERO, &b))
		return 2;
	for (size_t i = 0; i < 3000; i++)
		if (((char *)b.ptr)[i])
			return 3;
	/* a page-mapped block needs mmap: refused */
	if (kalloc_alloc(A, KALLOC_LAYOUT(1 << 20, 8), NW, &c) != KALLOC_EAGAIN)
		return 4;
	/* growing past the classes takes a medium span of a mapped chunk */
	memset(b.ptr, 9, 3000);
	if (kalloc_realloc(A, b.ptr, KALLOC_LAYOUT(50000, 8),
			   KALLOC_LAYOUT(3000, 8), NW, &b))
		return 5;
	if (((char *)b.ptr)[2999] != 9)
		return 6;
	/* ... and a medium block does not move under NOWAIT (its free may
	 * madvise): past its span and the units after it, refused, intact */
	if (kalloc_realloc(A, b.ptr, KALLOC_LAYOUT(1 << 20, 8),
			   KALLOC_LAYOUT(50000, 8), NW, &c) != KALLOC_EAGAIN ||
	    ((char *)b.ptr)[2999] != 9)
		return 10;
	/* eat every chunk already mapped: then NOWAIT fails fast */
	int n = 0, err;
	while ((err = kalloc_alloc(A, KALLOC_LAYOUT(32768, 8), NW, &c)) == 0)
		if (++n > 100000)
			return 7;
	if (err != KALLOC_EAGAIN || n == 0)
		return 8;
	/* ATOMIC may still draw on the reserve */
	if (kalloc_alloc(A, KALLOC_LAYOUT(32768, 8), KALLOC_ATOMIC | KALLOC_NOWARN,
			 &c))
		return 9;
	memset(c.ptr, 1, 32768);
	/* frees need no system call either */
	kalloc_free(A, c.ptr, KALLOC_LAYOUT(32768, 8));
	kalloc_free(A, b.ptr, KALLOC_LAYOUT(50000, 8));
	return 0;
}

START_TEST(nowait_never_maps)
{
	open_slab();
	release(alloc(64, 8, 0, NULL)); /* warm the 64-byte class */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(nowait_child());
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS,
		      "a NOWAIT call made a memory-mapping system call");
	ck_assert_msg(WIFEXITED(st), "child died of signal %d", WTERMSIG(st));
	ck_assert_msg(WEXITSTATUS(st) == 0, "NOWAIT step %d failed",
		      WEXITSTATUS(st));
	close_slab();
}
END_TEST

/* ---- medium blocks ---------------------------------------------------------- */

static void *free_in_other_thread(void *p)
{
	release(p);
	return NULL;
}

/* A block past the classes takes units that class spans gave back,
 * resident (no page faults), where a mapping would take fresh pages. */
START_TEST(medium_takes_freed_class_units)
{
	setenv("KALLOC_SLAB_DECAY_MS", "60000", 1);
	open_slab();
	enum { N = 64 };
	void *p[N];
	for (int i = 0; i < N; i++) { /* 1 MiB of 16 KiB blocks, touched */
		p[i] = alloc(16384, 8, 0, NULL);
		memset(p[i], 7, 16384);
	}
	for (int i = 0; i < N; i++)
		release(p[i]);
	uint64_t resident = stat_of("slab", "free_resident_bytes");
	ck_assert_uint_ge(resident, 256 << 10);
	size_t len;
	char *m = alloc(60000, 8, 0, &len);
	ck_assert_uint_eq(len, 65536); /* two whole units */
	ck_assert_uint_eq(stat_of("slab", "medium_blocks"), 1);
	ck_assert_uint_eq(stat_of("slab", "medium_bytes"), 65536);
	ck_assert_uint_eq(stat_of("slab", "large_blocks"), 0);
	ck_assert_uint_eq(stat_of("slab", "free_resident_bytes"), resident - 65536);
	ck_assert_int_eq(kalloc_owns(A, m), 1);
	ck_assert_uint_eq(kalloc_usable_size(A, m), 65536);
	/* ZERO on resident units: zeroed */
	memset(m, 0x5a, len);
	release(m);
	ck_assert_int_eq(kalloc_owns(A, m), 2);
	ck_assert_uint_eq(stat_of("slab", "medium_blocks"), 0);
	char *z = alloc(60000, 8, KALLOC_ZERO, &len);
	for (size_t i = 0; i < len; i++)
		REQUIRE(z[i] == 0, "byte %zu of a ZERO medium block is %d", i, z[i]);
	/* any thread frees it: a medium span has no heap */
	pthread_t t;
	pthread_create(&t, NULL, free_in_other_thread, z);
	pthread_join(t, NULL);
	ck_assert_uint_eq(stat_of("slab", "medium_blocks"), 0);
	close_slab();
}
END_TEST

/* A growing block takes twice its units and grows into them; a shrink to
 * a third or less gives the tail back, and growth takes the free units
 * after the span again, in place, the bytes gained zeroed under ZERO. */
START_TEST(medium_realloc_in_place)
{
	setenv("KALLOC_SLAB_DECAY_MS", "60000", 1);
	open_slab();
	size_t len;
	char *p = alloc(20000, 8, 0, &len);
	memset(p, 0x21, len);
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_realloc(A, p, KALLOC_LAYOUT(100000, 8),
					KALLOC_LAYOUT_UNKNOWN, 0, &b), KALLOC_OK);
	ck_assert_uint_eq(b.len, 8 * 32768); /* 4 units asked, 8 taken */
	char *m = b.ptr;
	for (size_t i = 0; i < len; i++)
		REQUIRE(m[i] == 0x21, "byte %zu not kept: %d", i, m[i]);
	ck_assert_uint_eq(stat_of("slab", "medium_bytes"), 8 * 32768);
	/* growth within the span, and a shrink above a third: kept whole */
	ck_assert_int_eq(kalloc_realloc(A, m, KALLOC_LAYOUT(250000, 8),
					KALLOC_LAYOUT_UNKNOWN, 0, &b), KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, m);
	ck_assert_int_eq(kalloc_realloc(A, m, KALLOC_LAYOUT(90000, 8),
					KALLOC_LAYOUT_UNKNOWN, 0, &b), KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, m);
	ck_assert_uint_eq(b.len, 8 * 32768);
	memset(m, 0x5a, b.len);
	/* a third or less: 3 units kept, 5 back to the pool, resident */
	ck_assert_int_eq(kalloc_realloc(A, m, KALLOC_LAYOUT(70000, 8),
					KALLOC_LAYOUT_UNKNOWN, 0, &b), KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, m);
	ck_assert_uint_eq(b.len, 3 * 32768);
	ck_assert_uint_eq(stat_of("slab", "medium_bytes"), 3 * 32768);
	/* growing again takes them back, in place; ZERO zeros what it gains
	 * past the old size, resident units included */
	ck_assert_int_eq(kalloc_realloc(A, m, KALLOC_LAYOUT(250000, 8),
					KALLOC_LAYOUT(70000, 8), KALLOC_ZERO, &b),
			 KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, m);
	ck_assert_uint_eq(b.len, 8 * 32768);
	for (size_t i = 0; i < 70000; i++)
		REQUIRE(m[i] == 0x5a, "byte %zu not kept: %d", i, m[i]);
	for (size_t i = 70000; i < b.len; i++)
		REQUIRE(m[i] == 0, "gained byte %zu is %d, not 0", i, m[i]);
	/* past the medium sizes: a mapping, content kept */
	ck_assert_int_eq(kalloc_realloc(A, m, KALLOC_LAYOUT(1 << 20, 8),
					KALLOC_LAYOUT(250000, 8), 0, &b), KALLOC_OK);
	ck_assert_uint_eq(stat_of("slab", "medium_blocks"), 0);
	ck_assert_uint_eq(stat_of("slab", "large_blocks"), 1);
	for (size_t i = 0; i < 70000; i++)
		REQUIRE(((char *)b.ptr)[i] == 0x5a, "byte %zu lost", i);
	release(b.ptr);
	close_slab();
}
END_TEST

static void *medium_churn_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		release(alloc(100000 + i * 40000, 8, 0, NULL));
	ck_assert_uint_ge(stat_of("slab", "medium_cached_bytes"), 3 * 4 * 32768);
	return NULL;
}

/* A thread keeps its last MEDIUM_CACHE freed spans (MEDIUM_CACHE_UNITS
 * units at most) and reuses one that fits (n..2n units); the oldest go
 * back to the pool, and the rest when the thread ends.  A cached span's
 * block is still freed: not owned, and a second free is a double free
 * (double_free_detected). */
START_TEST(medium_cache_reuses_spans)
{
	open_slab();
	uint64_t base = stat_of("slab", "medium_cached_bytes");
	char *p = alloc(100000, 8, 0, NULL); /* 4 units */
	release(p);
	ck_assert_int_eq(kalloc_owns(A, p), 2);
	ck_assert_uint_eq(stat_of("slab", "medium_blocks"), 0);
	ck_assert_uint_eq(stat_of("slab", "medium_cached_bytes"), base + 131072);
	size_t len;
	char *q = alloc(90000, 8, 0, &len); /* 3 units: the 4 fit */
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(len, 131072);
	ck_assert_uint_eq(stat_of("slab", "medium_cached_bytes"), base);
	/* 2 units needed: a span of 4 is too long, a fresh one is taken */
	char *r = alloc(40000, 8, 0, &len);
	ck_assert_uint_eq(len, 65536);
	release(q);
	release(r);
	/* more freed than it keeps: the last MEDIUM_CACHE */
	char *m[MEDIUM_CACHE + 2];
	for (int i = 0; i < MEDIUM_CACHE + 2; i++)
		m[i] = alloc(40000, 8, 0, NULL);
	for (int i = 0; i < MEDIUM_CACHE + 2; i++)
		release(m[i]);
	ck_assert_uint_eq(stat_of("slab", "medium_cached_bytes"),
			  MEDIUM_CACHE * 65536);
	/* and MEDIUM_CACHE_UNITS units at most: spans of 8 units push the
	 * 2-unit ones out, then each other */
	char *big[MEDIUM_CACHE];
	for (int i = 0; i < MEDIUM_CACHE; i++)
		big[i] = alloc(250000, 8, 0, NULL);
	for (int i = 0; i < MEDIUM_CACHE; i++)
		release(big[i]);
	ck_assert_uint_eq(stat_of("slab", "medium_cached_bytes"),
			  MEDIUM_CACHE_UNITS / 8 * 262144);
	/* another thread's cache goes back to the pool when it ends */
	uint64_t mine = stat_of("slab", "medium_cached_bytes");
	pthread_t t;
	pthread_create(&t, NULL, medium_churn_thread, NULL);
	pthread_join(t, NULL);
	ck_assert_uint_eq(stat_of("slab", "medium_cached_bytes"), mine);
	close_slab();
}
END_TEST

/* Alignments above the classes' up to a unit are medium blocks of a
 * unit at least; above a unit, mappings. */
START_TEST(medium_alignment)
{
	open_slab();
	size_t len;
	char *a = alloc(100, 8192, 0, &len);
	ck_assert_uint_eq((uintptr_t)a % 8192, 0);
	ck_assert_uint_eq(len, 32768);
	char *b = alloc(40000, 32768, 0, &len);
	ck_assert_uint_eq((uintptr_t)b % 32768, 0);
	ck_assert_uint_eq(len, 65536);
	ck_assert_uint_eq(stat_of("slab", "medium_blocks"), 2);
	char *c = alloc(100, 65536, 0, NULL);
	ck_assert_uint_eq((uintptr_t)c % 65536, 0);
	ck_assert_uint_eq(stat_of("slab", "medium_blocks"), 2);
	ck_assert_uint_eq(stat_of("slab", "large_blocks"), 1);
	release(a);
	release(b);
	release(c);
	close_slab();
}
END_TEST

/* ---- the large cache ------------------------------------------------------ */

/* Child of large_cache_reuses_mappings: a NOWAIT allocation of the size just
 * freed is served from the cache, with no system call, dirty pages zeroed. */
static int reuse_child(char *freed)
{
	if (forbid_mapping())
		return 90;
	kalloc_buf_t b;
	if (kalloc_alloc(A, KALLOC_LAYOUT(1 << 20, 8),
			 KALLOC_NOWAIT | KALLOC_NOWARN | KALLOC_ZERO, &b))
		return 1;
	if (b.ptr != freed)
		return 2;
	for (size_t i = 0; i < b.len; i++)
		if (((char *)b.ptr)[i])
			return 3;
	return 0;
}

START_TEST(large_cache_reuses_mappings)
{
	setenv("KALLOC_SLAB_DECAY_MS", "60000", 1);
	open_slab();
	size_t len;
	char *p = alloc(1 << 20, 8, 0, &len);
	memset(p, 0x5a, len);
	release(p);
	/* a cached mapping is not a block: not owned (a large block just
	 * freed: 2, so a second free is a double free), not sized */
	ck_assert_int_eq(kalloc_owns(A, p), 2);
	ck_assert_uint_ge(stat_of("slab", "large_cached_bytes"), 1 << 20);
	uint64_t hits = stat_of("slab", "large_cache_hits");

	/* the same size again: the same mapping, dirty pages zeroed (ZERO) */
	char *q = alloc(1 << 20, 8, KALLOC_ZERO, &len);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(stat_of("slab", "large_cache_hits"), hits + 1);
	ck_assert_uint_eq(stat_of("slab", "large_cached_bytes"), 0);
	ck_assert_int_eq(kalloc_owns(A, q), 1);
	for (size_t i = 0; i < len; i++)
		REQUIRE(q[i] == 0, "byte %zu of a reused ZERO block is %d", i, q[i]);

	/* without ZERO, reuse keeps what was there (no page was given back) */
	memset(q, 0x77, len);
	release(q);
	char *r = alloc(900 << 10, 8, 0, NULL); /* shorter: still a fit */
	ck_assert_ptr_eq(r, p);
	ck_assert_int_eq(r[1000], 0x77);
	memset(r, 0x33, 900 << 10);
	release(r);

	/* a much shorter request does not take a long mapping */
	char *small = alloc(300 << 10, 8, 0, NULL);
	ck_assert_ptr_ne(small, p);
	release(small);

	/* NOWAIT is served from the cache without any mapping call */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(reuse_child(p));
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS,
		      "reuse from the large cache made a mapping system call");
	ck_assert_msg(WIFEXITED(st), "child died of signal %d", WTERMSIG(st));
	ck_assert_msg(WEXITSTATUS(st) == 0, "cache reuse step %d failed",
		      WEXITSTATUS(st));
	close_slab();
}
END_TEST

/* A large block grows into a warm cached mapping (copy, no page faults),
 * keeps its content, and the grown part reads zero when ZERO asks (the
 * cached pages are dirty: they are zeroed only then). */
START_TEST(large_growth_copies_into_a_cached_mapping)
{
	setenv("KALLOC_SLAB_DECAY_MS", "60000", 1);
	open_slab();
	char *warm = alloc(1 << 20, 8, 0, NULL);
	memset(warm, 0x5a, 1 << 20); /* dirty, resident */
	release(warm);
	size_t len;
	char *p = alloc(300 << 10, 8, 0, &len); /* too short for the warm one */
	ck_assert_ptr_ne(p, warm);
	memset(p, 0x21, len);
	uint64_t hits = stat_of("slab", "large_cache_hits");
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_realloc(A, p, KALLOC_LAYOUT(900 << 10, 8),
					KALLOC_LAYOUT(300 << 10, 8), KALLOC_ZERO,
					&b),
			 KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, warm);
	ck_assert_uint_eq(stat_of("slab", "large_cache_hits"), hits + 1);
	char *q = b.ptr;
	for (size_t i = 0; i < len; i++)
		REQUIRE(q[i] == 0x21, "byte %zu not kept: %d", i, q[i]);
	for (size_t i = len; i < b.len; i++)
		REQUIRE(q[i] == 0, "grown byte %zu is %d, not 0", i, q[i]);
	/* the old mapping went to the cache in its turn */
	ck_assert_uint_ge(stat_of("slab", "large_cached_bytes"), 300 << 10);
	release(q);
	close_slab();
}
END_TEST

START_TEST(large_cache_decays)
{
	setenv("KALLOC_SLAB_DECAY_MS", "200", 1);
	open_slab();
	enum { N = 16 };
	char *p[N];
	long base = rss_kib();
	for (int i = 0; i < N; i++) {
		size_t len;
		p[i] = alloc(1 << 20, 8, 0, &len);
		memset(p[i], 1, len);
	}
	long full = rss_kib();
	ck_assert_msg(full - base >= 15 * 1024, "RSS grew by %ld KiB only",
		      full - base);
	for (int i = 0; i < N; i++)
		release(p[i]);
	/* kept, resident, for reuse until the decay */
	ck_assert_uint_ge(stat_of("slab", "large_cached_bytes"), (uint64_t)N << 20);
	ck_assert_uint_eq(stat_of("slab", "large_blocks"), 0);
	long settled = 0;
	uint64_t cached = 0;
	for (int tries = 0; tries < 10; tries++) {
		struct timespec ts = { 0, 300 * 1000000L };
		nanosleep(&ts, NULL);
		/* a slow path after the decay: it releases the cache (and
		 * its own small block, too short for any cached mapping,
		 * stays cached) */
		release(alloc(40 << 10, 8, 0, NULL));
		settled = rss_kib();
		cached = stat_of("slab", "large_cached_bytes");
		if (cached < (1 << 20) && (SHADOW_RSS || settled - base < 4 * 1024))
			break;
	}
	ck_assert_msg(cached < (1 << 20), "%ju bytes still cached after the decay",
		      (uintmax_t)cached);
	ck_assert_msg(SHADOW_RSS || settled - base < 4 * 1024,
		      "RSS %ld KiB above start after the decay (was %ld above)",
		      settled - base, full - base);
	close_slab();
}
END_TEST

/* The cache holds as many bytes as the program recently had live, past any
 * fixed cut-off (it was 128 MiB), so churn in every size band finds a fit;
 * and never more than that demand. */
START_TEST(large_cache_sized_by_demand)
{
	setenv("KALLOC_SLAB_DECAY_MS", "60000", 1);
	open_slab();
	enum { N = 40 };
	char *p[N];
	for (int i = 0; i < N; i++) { /* 320 MiB live, a page of it touched */
		p[i] = alloc((size_t)8 << 20, 8, 0, NULL);
		p[i][0] = 1;
	}
	for (int i = 0; i < N; i++)
		release(p[i]);
	uint64_t cached = stat_of("slab", "large_cached_bytes");
	ck_assert_msg(cached >= (uint64_t)N << 23, "%ju bytes cached of %d MiB "
		      "freed", (uintmax_t)cached, N * 8);
	ck_assert_msg(cached <= ((uint64_t)N << 23) + ((uint64_t)N << 16),
		      "%ju bytes cached, more than the demand", (uintmax_t)cached);

	/* the same demand again, sizes of 4-8 MiB: every one a cached mapping */
	uint64_t hits = stat_of("slab", "large_cache_hits");
	for (int i = 0; i < N; i++)
		p[i] = alloc(((size_t)4 << 20) + ((size_t)i << 16), 8, 0, NULL);
	ck_assert_uint_eq(stat_of("slab", "large_cache_hits"), hits + N);
	ck_assert_uint_eq(stat_of("slab", "large_cached_bytes"), 0);
	for (int i = 0; i < N; i++)
		release(p[i]);
	close_slab();
}
END_TEST

/* A growing block (realloc) takes a cached mapping of up to three times
 * its length, where a new block takes one of up to twice; it then grows in
 * place while it fills two thirds of the mapping, and a shrink below that
 * gives the tail back. */
START_TEST(large_growth_takes_a_longer_cached_mapping)
{
	setenv("KALLOC_SLAB_DECAY_MS", "60000", 1);
	open_slab();
	size_t len; /* (first: its fresh span would make the cache give way) */
	char *p = alloc(20000, 8, 0, &len);
	memset(p, 0x21, len);
	char *warm = alloc(1 << 20, 8, 0, NULL);
	memset(warm, 0x5a, 1 << 20);
	release(warm);
	/* a new 400 KiB block: the 1 MiB mapping is more than twice that */
	char *other = alloc(400 << 10, 8, 0, NULL);
	ck_assert_ptr_ne(other, warm);
	/* a block growing to 400 KiB takes it */
	uint64_t hits = stat_of("slab", "large_cache_hits");
	kalloc_buf_t b;
	ck_assert_int_eq(kalloc_realloc(A, p, KALLOC_LAYOUT(400 << 10, 8),
					KALLOC_LAYOUT(20000, 8), 0, &b),
			 KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, warm);
	ck_assert_uint_eq(stat_of("slab", "large_cache_hits"), hits + 1);
	ck_assert_uint_ge(b.len, (1 << 20) - 4096);
	for (size_t i = 0; i < 20000; i++)
		REQUIRE(warm[i] == 0x21, "byte %zu not kept: %d", i, warm[i]);
	/* growing to 800 KiB: in place, the mapping kept whole */
	size_t whole = b.len;
	ck_assert_int_eq(kalloc_realloc(A, warm, KALLOC_LAYOUT(800 << 10, 8),
					KALLOC_LAYOUT(400 << 10, 8), 0, &b),
			 KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, warm);
	ck_assert_uint_eq(b.len, whole);
	/* down to 300 KiB, under two thirds: the tail goes */
	ck_assert_int_eq(kalloc_realloc(A, warm, KALLOC_LAYOUT(300 << 10, 8),
					KALLOC_LAYOUT(800 << 10, 8), 0, &b),
			 KALLOC_OK);
	ck_assert_ptr_eq(b.ptr, warm);
	ck_assert_uint_lt(b.len, 400 << 10);
	for (size_t i = 0; i < 20000; i++)
		REQUIRE(warm[i] == 0x21, "byte %zu not kept: %d", i, warm[i]);
	release(warm);
	release(other);
	close_slab();
}
END_TEST

/* A mapping freed at a peak far above what the cache holds does not push
 * the cached blocks out: one buffer is worth less than the many. */
START_TEST(large_cache_keeps_many_over_one_long)
{
	setenv("KALLOC_SLAB_DECAY_MS", "60000", 1);
	open_slab();
	enum { N = 8 };
	char *p[N];
	for (int i = 0; i < N; i++)
		p[i] = alloc(1 << 20, 8, 0, NULL);
	for (int i = 0; i < N; i++)
		release(p[i]);
	uint64_t cached = stat_of("slab", "large_cached_bytes");
	ck_assert_uint_ge(cached, (uint64_t)N << 20);
	char *big = alloc(64 << 20, 8, 0, NULL);
	release(big);
	ck_assert_uint_eq(stat_of("slab", "large_cached_bytes"), cached);
	/* the blocks are still there to reuse */
	uint64_t hits = stat_of("slab", "large_cache_hits");
	for (int i = 0; i < N; i++)
		p[i] = alloc(1 << 20, 8, 0, NULL);
	ck_assert_uint_eq(stat_of("slab", "large_cache_hits"), hits + N);
	for (int i = 0; i < N; i++)
		release(p[i]);
	/* alone, a long mapping is kept */
	for (int i = 0; i < N; i++)
		p[i] = alloc(1 << 20, 8, 0, NULL);
	big = alloc(64 << 20, 8, 0, NULL);
	release(big);
	ck_assert_uint_ge(stat_of("slab", "large_cached_bytes"), 64 << 20);
	for (int i = 0; i < N; i++)
		release(p[i]);
	close_slab();
}
END_TEST

/* Freed large mappings give way to memory slab faults in afresh: spans on
 * units that were not resident unmap as many bytes of cached entries, so a
 * program's RSS does not carry its freed large blocks into a phase of
 * small ones. */
START_TEST(large_cache_gives_way_to_fresh_spans)
{
	setenv("KALLOC_SLAB_DECAY_MS", "60000", 1);
	open_slab();
	enum { N = 16, SMALL = 2048, COUNT = 2048 };
	char *p[N];
	for (int i = 0; i < N; i++) {
		size_t len;
		p[i] = alloc(1 << 20, 8, 0, &len);
		memset(p[i], 1, len);
	}
	for (int i = 0; i < N; i++)
		release(p[i]);
	uint64_t before = stat_of("slab", "large_cached_bytes");
	ck_assert_uint_ge(before, (uint64_t)N << 20);
	/* 4 MiB of small blocks, on spans no one used before */
	static void *small[COUNT];
	for (int i = 0; i < COUNT; i++)
		small[i] = alloc(SMALL, 8, 0, NULL);
	uint64_t after = stat_of("slab", "large_cached_bytes");
	ck_assert_msg(after + (uint64_t)SMALL * COUNT <= before + (1 << 20),
		      "cached %ju bytes before 4 MiB of fresh spans, %ju after",
		      (uintmax_t)before, (uintmax_t)after);
	for (int i = 0; i < COUNT; i++)
		release(small[i]);
	close_slab();
}
END_TEST

/* ---- misuse: reported with the pointer, then abort ----------------------- */

typedef void (*misuse_fn)(void *p);

/* Runs fn(p) in a child; expects SIGABRT and a message naming p and want. */
static void expect_abort(misuse_fn fn, void *p, const char *want)
{
	int fd[2];
	ck_assert_int_eq(pipe(fd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		signal(SIGABRT, SIG_DFL);
		fn(p);
		_exit(0);
	}
	close(fd[1]);
	char msg[2048];
	size_t got = 0;
	ssize_t r;
	while (got < sizeof(msg) - 1 &&
	       (r = read(fd[0], msg + got, sizeof(msg) - 1 - got)) > 0)
		got += (size_t)r;
	msg[got] = 0;
	close(fd[0]);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		      "misuse not caught (want '%s'); stderr: %s", want, msg);
	char ptr[32];
	snprintf(ptr, sizeof(ptr), "%p", p);
	ck_assert_msg(strstr(msg, ptr), "message does not name %s: %s", ptr, msg);
	ck_assert_msg(strstr(msg, want), "message lacks '%s': %s", want, msg);
}

static void free_twice(void *p)
{
	release(p);
	release(p);
}

static void *free_in_thread(void *p)
{
	release(p);
	return NULL;
}

static void free_here_then_remote(void *p)
{
	release(p);
	pthread_t t;
	pthread_create(&t, NULL, free_in_thread, p);
	pthread_join(t, NULL);
}

static void *free_twice_in_thread(void *p)
{
	release(p);
	release(p);
	return NULL;
}

static void remote_free_twice(void *p)
{
	pthread_t t;
	pthread_create(&t, NULL, free_twice_in_thread, p);
	pthread_join(t, NULL);
}

static void free_interior(void *p)
{
	release((char *)p);
}

static void write_after_free(void *p)
{
	release(p);
	memset(p, 0x41, 16); /* clobbers the link and the free tag */
	release(alloc(64, 8, 0, NULL));
}

START_TEST(double_free_detected)
{
	open_slab();
	void *p = alloc(64, 8, 0, NULL);
	expect_abort(free_twice, p, "double free of a 64-byte block");
	expect_abort(free_here_then_remote, p, "double free of a 64-byte block");
	expect_abort(remote_free_twice, p, "double free of a 64-byte block");
	void *medium = alloc(200000, 8, 0, NULL);
	expect_abort(free_twice, medium, "double free");
	void *big = alloc(1 << 20, 8, 0, NULL);
	expect_abort(free_twice, big, "double free of a large block");
	close_slab();
}
END_TEST

/* p goes back to its slab before its second free: 40 more frees of its
 * class fill the thread's magazine past its 30 slots, and p, the oldest,
 * is spilled. */
static void free_spill_free(void *p)
{
	void *more[40];
	for (int i = 0; i < 40; i++)
		more[i] = alloc(64, 8, 0, NULL);
	release(p);
	for (int i = 0; i < 40; i++)
		release(more[i]);
	release(p);
}

static void realloc_freed(void *p)
{
	release(p);
	kalloc_buf_t b;
	kalloc_realloc(A, p, KALLOC_LAYOUT(100, 8), KALLOC_LAYOUT_UNKNOWN, 0, &b);
}

static void tag_written_after_free(void *p)
{
	release(p);
	memset((char *)p + 8, 0x41, 8); /* the free tag only */
	release(alloc(64, 8, 0, NULL));
}

START_TEST(magazine_misuse_detected)
{
	open_slab();
	void *p = alloc(64, 8, 0, NULL);
	expect_abort(free_spill_free, p, "double free of a 64-byte block");
	expect_abort(realloc_freed, p, "not allocated");
	if (!RUNNING_ON_VALGRIND) /* (memcheck reports the write itself) */
		expect_abort(tag_written_after_free, p, "written after its free");
	close_slab();
}
END_TEST

struct handoff {
	void *freed;
	void *got;
};

/* With a heap of its own, frees a block of another heap's slab, then
 * allocates its class. */
static void *free_then_alloc(void *arg)
{
	struct handoff *h = arg;
	void *mine = alloc(96, 8, 0, NULL);
	release(h->freed);
	h->got = alloc(96, 8, 0, NULL);
	release(h->got);
	release(mine);
	return NULL;
}

static void *churn_96(void *arg)
{
	(void)arg;
	void *ps[1000];
	for (int i = 0; i < 1000; i++)
		ps[i] = alloc(90, 8, 0, NULL);
	for (int i = 0; i < 1000; i++)
		release(ps[i]);
	return NULL;
}

/* A thread reuses the blocks it frees, whoever allocated them (its
 * magazine), and gives them back when it ends: the class's objects in use
 * return to where they were. */
START_TEST(magazine_reuse_and_return)
{
	open_slab();
	uint64_t before = stat_of("kmalloc-96", "active_objs");
	if (before == UINT64_MAX)
		before = 0;
	/* a thread allocates and frees 1000 blocks, its last 30 kept in its
	 * magazine until it ends */
	pthread_t t;
	pthread_create(&t, NULL, churn_96, NULL);
	pthread_join(t, NULL);
	uint64_t after = stat_of("kmalloc-96", "active_objs");
	ck_assert_uint_eq(after == UINT64_MAX ? 0 : after, before);
	void *p = alloc(96, 8, 0, NULL); /* of this thread's heap */
	struct handoff h = { p, NULL };
	pthread_create(&t, NULL, free_then_alloc, &h);
	pthread_join(t, NULL);
	if (!RUNNING_ON_VALGRIND) /* (no magazines under a memory tool) */
		ck_assert_ptr_eq(h.got, p);
	close_slab();
}
END_TEST

START_TEST(invalid_free_detected)
{
	open_slab();
	char *p = alloc(64, 8, 0, NULL);
	expect_abort(free_interior, p + 16, "16 bytes inside a 64-byte block");
	char *medium = alloc(200000, 8, 0, NULL);
	expect_abort(free_interior, medium + 64,
		     "64 bytes inside a 229376-byte block");
	char *big = alloc(1 << 20, 8, 0, NULL);
	expect_abort(free_interior, big + 64, "page-mapped block");
	static char not_ours[64];
	expect_abort(free_interior, not_ours + 16, "did not allocate");
	char *q = alloc(64, 8, 0, NULL);
	expect_abort(write_after_free, q, "free list corrupted");
	close_slab();
}
END_TEST

/* slab's free_own with no foreign-free handler set: the core's default
 * reports a pointer slab did not allocate once, leaves it alone, and
 * says nothing of NULL or a sentinel; slab's own blocks are freed. */
START_TEST(free_own_foreign_default)
{
	open_slab();
	kalloc_malloc_t m;
	ck_assert_int_eq(kalloc_malloc_entries(A, &m), KALLOC_OK);
	ck_assert_ptr_nonnull(m.free_own);
	static unsigned char not_ours[256];
	memset(not_ours, 0x5a, sizeof(not_ours));
	void *own = m.malloc(64);
	struct capture c;
	capture_start(&c);
	m.free_own(NULL);
	m.free_own((void *)16);
	m.free_own(not_ours + 32);
	m.free_own(not_ours + 64);
	m.free_own(own);
	char out[1024];
	capture_stop(&c, out, sizeof(out));
	char want[64];
	snprintf(want, sizeof(want), "free(%p): not a block", (void *)(not_ours + 32));
	ck_assert_msg(count_lines(out) == 1 && strstr(out, want),
		      "expected one line with \"%s\", got: %s", want, out);
	for (size_t k = 0; k < sizeof(not_ours); k++)
		ck_assert_int_eq(not_ours[k], 0x5a);
	if (!RUNNING_ON_VALGRIND) /* (memcheck: no magazines) */
		ck_assert_ptr_eq(m.malloc(64), own); /* the magazine's newest */
	close_slab();
}
END_TEST

/* ---- fork ----------------------------------------------------------------- */

static _Atomic int stop_churn;

static void *churn_until_stopped(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *mine[64] = { 0 };
	while (!atomic_load(&stop_churn)) {
		unsigned k = rnd(&seed) % 64;
		if (mine[k])
			release(mine[k]);
		kalloc_buf_t b;
		size_t size = 16 + rnd(&seed) % (k == 0 ? 100000 : 2000);
		mine[k] = kalloc_alloc(A, KALLOC_LAYOUT(size, 8), 0, &b) ?
				  NULL : b.ptr;
	}
	for (int k = 0; k < 64; k++)
		if (mine[k])
			release(mine[k]);
	return NULL;
}

static __attribute__((unused)) void *child_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 1000; i++)
		release(alloc(16 + (size_t)i * 7, 8, 0, NULL));
	return NULL;
}

START_TEST(fork_from_multithreaded_parent)
{
	open_slab();
	pthread_t t[2];
	for (uintptr_t k = 0; k < 2; k++)
		pthread_create(&t[k], NULL, churn_until_stopped, (void *)(k + 3));
	int forks = RUNNING_ON_VALGRIND ? 4 : 30; /* each child is a new VM */
	for (int i = 0; i < forks; i++) {
		void *parent_block = alloc(100, 8, 0, NULL);
		cookie_put(parent_block, 100);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			alarm(10); /* a deadlock fails the test, not hangs it */
			cookie_check(parent_block);
			release(parent_block);
			void *ps[300];
			for (int k = 0; k < 300; k++)
				ps[k] = alloc(16 + (size_t)k * 131, 8, 0, NULL);
			for (int k = 0; k < 300; k++)
				release(ps[k]);
/* TSan cannot start threads there; ASan's thread registry lock may be held
 * by a parent thread at fork time, so its pthread_create hangs the child. */
#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
			pthread_t ct;
			if (pthread_create(&ct, NULL, child_thread, NULL))
				_exit(2);
			pthread_join(ct, NULL);
#endif
			_exit(0);
		}
		int st;
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			      "fork child %d failed (status 0x%x)", i, st);
		release(parent_block);
	}
	atomic_store(&stop_churn, 1);
	for (int k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	close_slab();
}
END_TEST

/* ---- stats ---------------------------------------------------------------- */

START_TEST(stats_per_class)
{
	open_slab();
	uint64_t before = stat_of("kmalloc-96", "active_objs");
	if (before == UINT64_MAX)
		before = 0;
	void *ps[1000];
	for (int i = 0; i < 1000; i++)
		ps[i] = alloc(90, 8, 0, NULL);
	ck_assert_uint_eq(stat_of("kmalloc-96", "active_objs"), before + 1000);
	ck_assert_uint_eq(stat_of("kmalloc-96", "objsize"), 96);
	uint64_t objs = stat_of("kmalloc-96", "num_objs");
	uint64_t per = stat_of("kmalloc-96", "objperslab");
	ck_assert_uint_ge(objs, before + 1000);
	ck_assert_uint_eq(objs % per, 0);
	ck_assert_uint_eq(stat_of("kmalloc-96", "num_slabs"), objs / per);
	void *big = alloc(300000, 8, 0, NULL);
	ck_assert_uint_eq(stat_of("slab", "large_blocks"), 1);
	ck_assert_uint_ge(stat_of("slab", "large_bytes"), 300000);
	release(big);
	ck_assert_uint_eq(stat_of("slab", "large_blocks"), 0);
	for (int i = 0; i < 1000; i++)
		release(ps[i]);
	uint64_t after = stat_of("kmalloc-96", "active_objs");
	ck_assert_uint_eq(after == UINT64_MAX ? 0 : after, before);
	close_slab();
}
END_TEST

static Suite *slab_suite(void)
{
	Suite *s = suite_create("slab");
	TCase *tc = tcase_create("classes");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, class_table_invariants);
	tcase_add_test(tc, class_lookup_waste_and_alignment);
	tcase_add_test(tc, api_sizes_alignment);
	tcase_add_test(tc, owns_and_usable_size);
	suite_add_tcase(s, tc);

	tc = tcase_create("realloc");
	tcase_add_test(tc, realloc_in_place_and_moves);
	tcase_add_test(tc, zero_flag);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, cross_thread_frees_under_churn);
	tcase_add_test(tc, thread_exit_blocks_live_on);
	tcase_add_test(tc, free_only_thread_gets_a_heap);
	tcase_add_test(tc, fork_from_multithreaded_parent);
	suite_add_tcase(s, tc);

	tc = tcase_create("decay");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, rss_returns_after_free_all_decay_0);
	tcase_add_test(tc, rss_returns_after_decay);
	tcase_add_test(tc, rss_kept_for_reuse_until_decay);
	tcase_add_test(tc, rss_returns_from_exited_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("medium");
	tcase_add_test(tc, medium_takes_freed_class_units);
	tcase_add_test(tc, medium_realloc_in_place);
	tcase_add_test(tc, medium_alignment);
	tcase_add_test(tc, medium_cache_reuses_spans);
	suite_add_tcase(s, tc);

	tc = tcase_create("large cache");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, large_cache_reuses_mappings);
	tcase_add_test(tc, large_growth_copies_into_a_cached_mapping);
	tcase_add_test(tc, large_cache_decays);
	tcase_add_test(tc, large_cache_sized_by_demand);
	tcase_add_test(tc, large_growth_takes_a_longer_cached_mapping);
	tcase_add_test(tc, large_cache_keeps_many_over_one_long);
	tcase_add_test(tc, large_cache_gives_way_to_fresh_spans);
	suite_add_tcase(s, tc);

	tc = tcase_create("nowait");
	tcase_add_test(tc, nowait_never_maps);
	suite_add_tcase(s, tc);

	tc = tcase_create("hardening");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, double_free_detected);
	tcase_add_test(tc, invalid_free_detected);
	tcase_add_test(tc, free_own_foreign_default);
	tcase_add_test(tc, magazine_misuse_detected);
	tcase_add_test(tc, magazine_reuse_and_return);
	suite_add_tcase(s, tc);

	tc = tcase_create("stats");
	tcase_add_test(tc, stats_per_class);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(slab_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

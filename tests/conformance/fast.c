/*
 * G15: the fast entries (kalloc_direct, the plugin's fast table) behave
 * exactly as realloc would: aligned, long enough, writable, usable length
 * no more than usable_size, a failure as {NULL, 0} with ENOMEM, blocks
 * crossing freely between the two tables, and a foreign pointer returned
 * untouched when the backend declares it can tell; and the front
 * (kalloc_front, the plugin's `front`), when it has one, as the fast
 * entries within its limits, its free taking its own blocks and leaving
 * every other one, untouched, to the rest; and the malloc entries
 * (kalloc_malloc_entries), when it has them, as the fast entries of
 * malloc's layout (and of posix_memalign's, for the aligned entry) in the
 * front's place, on one thread and across two.
 *
 * G16: the misuse a backend declares it detects (kalloc_info's detects)
 * is reported and aborts, through kalloc_free and through the fast free,
 * with a message naming the pointer; never a silent ignore.
 */
#include "conform.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static kalloc_direct_t fast_entries(void)
{
	kalloc_direct_t d;
	REQUIRE(kalloc_direct(conform_a, &d) == KALLOC_OK,
		"kalloc_info says fast, kalloc_direct refuses: %s",
		kalloc_errmsg());
	return d;
}

static const size_t sizes[] = { 1, 7, 8, 15, 16, 17, 100, 255, 256, 1000,
				4095, 4096, 4097, 30000, 70000, 300000,
				(size_t)1 << 20, ((size_t)3 << 20) + 5 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

/* A fast block as realloc's would be: non-NULL, aligned, len in
 * [size, usable_size], writable to len. */
static struct blk fast_alloc(const kalloc_direct_t *d, size_t size,
			     size_t align)
{
	kalloc_buf_t b = d->alloc(d->state, KALLOC_LAYOUT(size, align));
	REQUIRE(b.ptr && !kalloc_is_sentinel(b.ptr),
		"fast alloc {%zu, %zu} gave %p", size, align, b.ptr);
	REQUIRE(is_aligned(b.ptr, align), "fast alloc {%zu, %zu} = %p: misaligned",
		size, align, b.ptr);
	REQUIRE(b.len >= size, "fast alloc {%zu, %zu}: len %zu < size", size,
		align, b.len);
	size_t usable = kalloc_usable_size(conform_a, b.ptr);
	REQUIRE(b.len <= usable, "fast alloc {%zu, %zu}: len %zu > usable_size %zu",
		size, align, b.len, usable);
	struct blk k = { b.ptr, b.len, size, align, 0 };
	return k;
}

START_TEST(g15_fast_blocks_as_realloc)
{
	kalloc_direct_t d = fast_entries();
	size_t amax = align_limit((size_t)1 << 20);
	unsigned n = 0;
	for (size_t i = 0; i < N_SIZES; i++)
		for (size_t a = 1; a <= amax; a <<= 1, n++) {
			if (sizes[i] > ((size_t)1 << 20) && a > 4096)
				continue; /* big and very aligned: keep it short */
			struct blk b = fast_alloc(&d, sizes[i], a);
			blk_stamp(&b, n);
			blk_verify(&b, "fast block");
			/* the other table frees it, with a known layout or not */
			if (n % 3 == 0) {
				blk_free(&b, n & 4);
			} else if (n % 3 == 1) {
				REQUIRE(d.free(d.state, b.p, n & 4 ?
					       KALLOC_LAYOUT_UNKNOWN : blk_layout(&b)) == 1,
					"fast free of its own block {%zu, %zu} "
					"returned 0", b.size, b.align);
			} else {
				/* realloc keeps a fast block's content */
				blk_resize(&b, b.size * 2 + 1, b.align, 0, n & 4);
				blk_free(&b, false);
			}
		}
}
END_TEST

/* Blocks of the core (ZERO, aligned, resized) go to the fast free. */
START_TEST(g15_fast_free_takes_core_blocks)
{
	kalloc_direct_t d = fast_entries();
	size_t amax = align_limit(4096);
	for (size_t i = 0; i < N_SIZES; i++)
		for (size_t a = 1; a <= amax; a <<= 2) {
			struct blk b = blk_alloc(sizes[i], a,
						 honors(KALLOC_ZERO) ? KALLOC_ZERO : 0);
			blk_stamp(&b, i);
			if (i & 1)
				blk_resize(&b, sizes[i] / 2 + 1, a, 0, false);
			int tells = kalloc_owns(conform_a, b.p);
			REQUIRE(d.free(d.state, b.p, i & 2 ? KALLOC_LAYOUT_UNKNOWN :
					      blk_layout(&b)) == 1,
				"fast free of a core block {%zu, %zu} returned 0",
				b.size, a);
			if (tells == 1)
				REQUIRE(kalloc_owns(conform_a, b.p) != 1,
					"block {%zu, %zu} still owned after the "
					"fast free", b.size, a);
		}
}
END_TEST

/* A failure is {NULL, 0} with errno ENOMEM, like malloc's. */
START_TEST(g15_fast_alloc_failure)
{
	kalloc_direct_t d = fast_entries();
	size_t big[] = { SIZE_MAX, SIZE_MAX / 2 + 1, conform_info.max_size + 1 };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		if (big[i] <= conform_info.max_size)
			continue; /* max_size + 1 wrapped */
		errno = 0;
		kalloc_buf_t b = d.alloc(d.state, KALLOC_LAYOUT(big[i], 16));
		REQUIRE(!b.ptr && b.len == 0,
			"fast alloc of %zu bytes gave {%p, %zu}", big[i], b.ptr,
			b.len);
		REQUIRE(errno == ENOMEM, "fast alloc of %zu bytes: errno %d, "
			"not ENOMEM", big[i], errno);
	}
}
END_TEST

/* Declared FOREIGN_FREE: a pointer outside the backend is left alone. */
START_TEST(g15_fast_free_leaves_foreign_alone)
{
	if (!(conform_info.detects & KALLOC_DETECT_FOREIGN_FREE))
		return; /* undeclared: not the backend's duty (G16 says so) */
	kalloc_direct_t d = fast_entries();
	static unsigned char buf[512] __attribute__((aligned(4096)));
	memset(buf, 0x5a, sizeof(buf));
	REQUIRE(d.free(d.state, buf + 64, KALLOC_LAYOUT_UNKNOWN) == 0,
		"fast free of a static buffer did not return 0");
	REQUIRE(d.free(d.state, buf, KALLOC_LAYOUT(64, 16)) == 0,
		"fast free of a static buffer did not return 0");
	for (size_t k = 0; k < sizeof(buf); k++)
		REQUIRE(buf[k] == 0x5a, "foreign buffer written at %zu", k);
	REQUIRE(kalloc_owns(conform_a, buf + 64) == 0,
		"owns() does not say 0 of a foreign pointer");
}
END_TEST

/* The front: blocks as the fast alloc's within max_size and max_align;
 * its free takes them (1) and leaves every other block to the rest free,
 * the two together freeing any block of the backend; a foreign pointer
 * gets 0 from both when the backend declares it can tell.  A backend
 * without a front hands out its own entries: checked the same way. */
START_TEST(g15_front_as_fast_entries)
{
	kalloc_direct_t d = fast_entries();
	kalloc_front_t f;
	REQUIRE(kalloc_front(conform_a, &f) == KALLOC_OK,
		"kalloc_direct works, kalloc_front refuses: %s", kalloc_errmsg());
	REQUIRE(f.max_align && !(f.max_align & (f.max_align - 1)) &&
		f.max_align <= conform_info.max_align,
		"front max_align %zu", f.max_align);
	kalloc_direct_t fd = { f.alloc, f.free, f.state, d.plain };
	size_t amax = align_limit(f.max_align < 4096 ? f.max_align : 4096);
	unsigned n = 0;
	for (size_t i = 0; i < N_SIZES; i++)
		for (size_t a = 1; a <= amax; a <<= 1, n++) {
			size_t size = sizes[i];
			if (size > f.max_size)
				continue;
			struct blk b = fast_alloc(&fd, size, a);
			blk_stamp(&b, n);
			blk_verify(&b, "front block");
			if (n % 3 == 0)
				blk_free(&b, n & 4);
			else if (n % 3 == 1)
				REQUIRE(f.free(f.state, b.p, KALLOC_LAYOUT_UNKNOWN) == 1,
					"front free of its own block {%zu, %zu} "
					"returned 0", size, a);
			else
				REQUIRE(d.free(d.state, b.p, blk_layout(&b)) == 1,
					"fast free of a front block {%zu, %zu} "
					"returned 0", size, a);
		}
	/* the backend's other blocks: the front's free, then the rest */
	for (size_t i = 0; i < N_SIZES; i++) {
		struct blk b = fast_alloc(&d, sizes[i], 16);
		blk_stamp(&b, i);
		int front_took = f.free(f.state, b.p, KALLOC_LAYOUT_UNKNOWN);
		if (!front_took) {
			REQUIRE(f.rest_free, "front free refused a block of "
				"{%zu, 16} with no rest free", sizes[i]);
			blk_verify(&b, "block the front's free refused");
			REQUIRE(f.rest_free(f.rest_state, b.p,
					    KALLOC_LAYOUT_UNKNOWN) == 1,
				"rest free of a block {%zu, 16} returned 0",
				sizes[i]);
		}
	}
	if (!(conform_info.detects & KALLOC_DETECT_FOREIGN_FREE))
		return;
	static unsigned char buf[512] __attribute__((aligned(4096)));
	memset(buf, 0x5a, sizeof(buf));
	REQUIRE(f.free(f.state, buf + 64, KALLOC_LAYOUT_UNKNOWN) == 0 &&
		(!f.rest_free ||
		 f.rest_free(f.rest_state, buf + 64, KALLOC_LAYOUT_UNKNOWN) == 0),
		"front or rest free of a static buffer did not return 0");
	for (size_t k = 0; k < sizeof(buf); k++)
		REQUIRE(buf[k] == 0x5a, "foreign buffer written at %zu", k);
}
END_TEST

/* ---- the malloc entries (kalloc_malloc_entries) ---------------------- */

/* The malloc entries, or false when the backend has none (optional). */
static bool malloc_entries(kalloc_malloc_t *m, kalloc_front_t *f)
{
	REQUIRE(kalloc_front(conform_a, f) == KALLOC_OK,
		"kalloc_direct works, kalloc_front refuses: %s", kalloc_errmsg());
	int err = kalloc_malloc_entries(conform_a, m);
	if (err == KALLOC_ENOTSUP) {
		REQUIRE(kalloc_errmsg()[0], "ENOTSUP from kalloc_malloc_entries "
			"without a message");
		return false;
	}
	REQUIRE(err == KALLOC_OK && m->malloc && m->free,
		"kalloc_malloc_entries: %d (%s)", err, kalloc_errmsg());
	return true;
}

/* The largest size malloc entries take: the front's, with malloc's
 * alignment within it. */
static size_t malloc_max(const kalloc_front_t *f)
{
	return f->max_align >= 16 ? f->max_size : 0;
}

/* A malloc block as the fast alloc of {size ? size : 1, 16} would be. */
static struct blk malloc_blk(const kalloc_malloc_t *m, size_t size)
{
	void *p = m->malloc(size);
	size_t n = size ? size : 1;
	REQUIRE(p && !kalloc_is_sentinel(p), "malloc(%zu) gave %p", size, p);
	REQUIRE(is_aligned(p, 16), "malloc(%zu) = %p: not 16-aligned", size, p);
	size_t usable = kalloc_usable_size(conform_a, p);
	REQUIRE(usable >= n, "malloc(%zu): usable_size %zu", size, usable);
	struct blk b = { p, n, n, 16, 0 };
	return b;
}

/* malloc as the fast alloc of {size ? size : 1, 16}: aligned, long enough,
 * unique for 0; its blocks freed by its free (1), kalloc_free and the fast
 * free; the backend's other blocks freed by its free or, when it answers 0,
 * the front's rest; a foreign pointer left alone (declared FOREIGN_FREE). */
START_TEST(g15_malloc_entries_as_fast_entries)
{
	kalloc_direct_t d = fast_entries();
	kalloc_front_t f;
	kalloc_malloc_t m;
	if (!malloc_entries(&m, &f))
		return;
	size_t max = malloc_max(&f);
	void *z1 = m.malloc(0), *z2 = m.malloc(0);
	REQUIRE(z1 && z2 && z1 != z2, "malloc(0) twice: %p, %p", z1, z2);
	REQUIRE(m.free(z1) == 1 && m.free(z2) == 1, "free of malloc(0) blocks");
	for (size_t i = 0; i < N_SIZES; i++) {
		if (sizes[i] > max)
			continue;
		struct blk b = malloc_blk(&m, sizes[i]);
		blk_stamp(&b, i);
		blk_verify(&b, "malloc block");
		if (i % 3 == 0)
			REQUIRE(m.free(b.p) == 1, "free of malloc(%zu) returned 0",
				sizes[i]);
		else if (i % 3 == 1)
			blk_free(&b, i & 4);
		else
			REQUIRE(d.free(d.state, b.p, KALLOC_LAYOUT_UNKNOWN) == 1,
				"fast free of malloc(%zu) returned 0", sizes[i]);
	}
	for (size_t i = 0; i < N_SIZES; i++) {
		struct blk b = fast_alloc(&d, sizes[i], 16);
		blk_stamp(&b, i);
		if (!m.free(b.p)) {
			REQUIRE(f.rest_free, "free refused a block of {%zu, 16} "
				"with no rest free", sizes[i]);
			blk_verify(&b, "block the malloc free refused");
			REQUIRE(f.rest_free(f.rest_state, b.p,
					    KALLOC_LAYOUT_UNKNOWN) == 1,
				"rest free of a block {%zu, 16} returned 0",
				sizes[i]);
		}
	}
	if (max == SIZE_MAX) {
		errno = 0;
		void *p = m.malloc(SIZE_MAX - 4096);
		REQUIRE(!p && errno == ENOMEM, "malloc(SIZE_MAX - 4096) gave %p, "
			"errno %d", p, errno);
	}
	if (!(conform_info.detects & KALLOC_DETECT_FOREIGN_FREE))
		return;
	static unsigned char buf[512] __attribute__((aligned(4096)));
	memset(buf, 0x5a, sizeof(buf));
	REQUIRE(m.free(buf + 64) == 0, "free of a static buffer returned 1");
	for (size_t k = 0; k < sizeof(buf); k++)
		REQUIRE(buf[k] == 0x5a, "foreign buffer written at %zu", k);
}
END_TEST

/* The largest alignment the aligned entry is asked for here: the front's,
 * up to 2 MiB. */
static size_t aligned_max(const kalloc_front_t *f)
{
	size_t cap = (size_t)1 << 21;
	return f->max_align < cap ? f->max_align : cap;
}

/* The aligned entry as the fast alloc of {size, align}: aligned, long
 * enough, writable, its blocks freed by the malloc free, kalloc_free and
 * the fast free; ENOMEM on a size no backend has. */
START_TEST(g15_malloc_aligned_as_fast_alloc)
{
	kalloc_direct_t d = fast_entries();
	kalloc_front_t f;
	kalloc_malloc_t m;
	if (!malloc_entries(&m, &f) || !m.aligned)
		return;
	unsigned k = 0;
	for (size_t align = 16; align <= aligned_max(&f); align <<= 1) {
		for (size_t i = 0; i < N_SIZES; i++, k++) {
			size_t size = sizes[i];
			if (size > f.max_size)
				continue;
			void *p = m.aligned(align, size);
			REQUIRE(p && !kalloc_is_sentinel(p),
				"aligned(%zu, %zu) gave %p", align, size, p);
			REQUIRE(is_aligned(p, align),
				"aligned(%zu, %zu) = %p: misaligned", align,
				size, p);
			size_t usable = kalloc_usable_size(conform_a, p);
			REQUIRE(usable >= size, "aligned(%zu, %zu): usable_size "
				"%zu", align, size, usable);
			struct blk b = { p, size, size, align, 0 };
			blk_stamp(&b, k);
			blk_verify(&b, "aligned block");
			if (k % 3 == 0)
				REQUIRE(m.free(p) == 1, "free of aligned(%zu, "
					"%zu) returned 0", align, size);
			else if (k % 3 == 1)
				blk_free(&b, k & 4);
			else
				REQUIRE(d.free(d.state, p, KALLOC_LAYOUT_UNKNOWN) == 1,
					"fast free of aligned(%zu, %zu) returned 0",
					align, size);
		}
	}
	if (f.max_size == SIZE_MAX) {
		errno = 0;
		void *p = m.aligned(64, SIZE_MAX - 4096);
		REQUIRE(!p && errno == ENOMEM, "aligned(64, SIZE_MAX - 4096) "
			"gave %p, errno %d", p, errno);
	}
}
END_TEST

/* What the foreign-free handler was handed, in order. */
static void *foreign_seen[4];
static unsigned foreign_n;

static void foreign_record(void *ptr)
{
	if (foreign_n < 4)
		foreign_seen[foreign_n] = ptr;
	foreign_n++;
}

/* A backend that tells foreign pointers: its free_own hands them (NULL and
 * a sentinel too) to the handler, touching nothing, and frees its own
 * blocks without calling it. */
static void free_own_foreign(const kalloc_malloc_t *m)
{
	static unsigned char buf[512] __attribute__((aligned(4096)));
	memset(buf, 0x5a, sizeof(buf));
	foreign_n = 0;
	kalloc_set_foreign_free(foreign_record);
	void *own = m->malloc(100);
	m->free_own(buf + 64);
	m->free_own(NULL);
	m->free_own((void *)16);
	m->free_own(own);
	kalloc_set_foreign_free(NULL);
	REQUIRE(foreign_n == 3 && foreign_seen[0] == buf + 64 &&
		!foreign_seen[1] && foreign_seen[2] == (void *)16,
		"free_own of a static buffer, NULL and 16, then of its own "
		"block: the handler saw %u pointers (%p, %p, %p), not the "
		"first three", foreign_n, foreign_seen[0], foreign_seen[1],
		foreign_seen[2]);
	for (size_t k = 0; k < sizeof(buf); k++)
		REQUIRE(buf[k] == 0x5a, "foreign buffer written at %zu", k);
}

/* free_own, when there is one, as free without its answer: it takes the
 * blocks of malloc, aligned, the fast alloc and kalloc_alloc, and they
 * come back: of 64 blocks freed by it, some are handed out again by the
 * next 64 mallocs of the same size (a free_own that frees nothing never
 * sees an address again, since each block stays held; not asked under a
 * memory tool). */
START_TEST(g15_malloc_free_own_as_free)
{
	kalloc_direct_t d = fast_entries();
	kalloc_front_t f;
	kalloc_malloc_t m;
	if (!malloc_entries(&m, &f) || !m.free_own)
		return;
	size_t max = malloc_max(&f);
	for (size_t i = 0; i < N_SIZES; i++) {
		if (sizes[i] > max)
			continue;
		struct blk b = malloc_blk(&m, sizes[i]);
		blk_stamp(&b, i);
		blk_verify(&b, "malloc block");
		m.free_own(b.p);
		if (m.aligned && sizes[i] <= f.max_size) {
			void *p = m.aligned(64, sizes[i]);
			REQUIRE(p, "aligned(64, %zu) failed", sizes[i]);
			m.free_own(p);
		}
		b = fast_alloc(&d, sizes[i], 16);
		blk_stamp(&b, i);
		m.free_own(b.p);
		kalloc_buf_t q;
		REQUIRE(kalloc_alloc(conform_a, KALLOC_LAYOUT(sizes[i], 16), 0,
				     &q) == KALLOC_OK, "kalloc_alloc(%zu) failed",
			sizes[i]);
		m.free_own(q.ptr);
	}
	if (conform_info.detects & KALLOC_DETECT_FOREIGN_FREE)
		free_own_foreign(&m);
	if (conform_tool)
		return; /* its quarantine holds the blocks back */
	enum { N = 64, ROUNDS = 4 };
	void *seen[N], *again[N];
	unsigned recurred = 0;
	for (int r = 0; r < ROUNDS && !recurred; r++) {
		for (int i = 0; i < N; i++) {
			seen[i] = m.malloc(48);
			REQUIRE(seen[i], "malloc(48) failed");
		}
		for (int i = 0; i < N; i++)
			m.free_own(seen[i]);
		for (int i = 0; i < N; i++) {
			again[i] = m.malloc(48);
			REQUIRE(again[i], "malloc(48) failed");
			for (int k = 0; k < N; k++)
				recurred += again[i] == seen[k];
		}
		for (int i = 0; i < N; i++)
			REQUIRE(m.free(again[i]) == 1, "free of malloc(48) "
				"returned 0");
	}
	REQUIRE(recurred, "%d rounds of %d blocks freed by free_own: none "
		"handed out again (does free_own free?)", ROUNDS, N);
}
END_TEST

/* Two threads allocate through malloc (every third block through the
 * aligned entry, when there is one, at alignments 16 to 4096), each block
 * checked for alignment and stamped, and each frees the other's: a
 * per-thread cache that misaligns or loses a block only under threads
 * shows here. */
#define MT_BLOCKS 4000
struct mt_arg {
	kalloc_malloc_t m;
	size_t max, max_align;
	unsigned seed;
	void *blocks[MT_BLOCKS];
	size_t sizes[MT_BLOCKS];
	int bad; /* 1 misaligned, 2 NULL */
};

static void *mt_alloc(void *p)
{
	struct mt_arg *a = p;
	uint64_t x = a->seed * 0x9e3779b97f4a7c15ull + 1;
	for (int i = 0; i < MT_BLOCKS; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t n = (i % 64 == 63 ? 40000 : 0) + (x >> 40) % 600;
		if (n > a->max)
			n = a->max;
		size_t align = (size_t)16 << (x >> 20) % 9;
		bool aligned = a->m.aligned && i % 3 == 0 && n &&
			       align <= a->max_align;
		void *q = aligned ? a->m.aligned(align, n) : a->m.malloc(n);
		if (!q) {
			a->bad = 2;
			return NULL;
		}
		if ((uintptr_t)q & ((aligned ? align : 16) - 1))
			a->bad = 1;
		memset(q, (int)(i & 255), n);
		a->blocks[i] = q;
		a->sizes[i] = n;
	}
	return NULL;
}

static void *mt_free(void *p)
{
	struct mt_arg *a = p;
	for (int i = 0; i < MT_BLOCKS; i++) {
		unsigned char *q = a->blocks[i];
		for (size_t k = 0; k < a->sizes[i]; k += 97)
			if (q[k] != (unsigned char)(i & 255))
				a->bad = 3;
		if (!a->m.free(q))
			a->bad = 4;
	}
	return NULL;
}

START_TEST(g15_malloc_entries_threads)
{
	kalloc_front_t f;
	kalloc_malloc_t m;
	if (!malloc_entries(&m, &f))
		return;
	static struct mt_arg args[2];
	pthread_t t[2];
	for (int round = 0; round < 3; round++) {
		for (unsigned k = 0; k < 2; k++) {
			args[k] = (struct mt_arg){ .m = m, .max = malloc_max(&f),
						   .max_align = aligned_max(&f),
						   .seed = round * 2 + k + 1 };
			REQUIRE(pthread_create(&t[k], NULL, mt_alloc, &args[k]) == 0,
				"pthread_create");
		}
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		for (int k = 0; k < 2; k++)
			REQUIRE(!args[k].bad, "thread %d: %s", k,
				args[k].bad == 1 ? "a misaligned block" :
						   "malloc returned NULL");
		/* each thread frees the other's blocks */
		for (unsigned k = 0; k < 2; k++)
			REQUIRE(pthread_create(&t[k], NULL, mt_free, &args[1 - k]) == 0,
				"pthread_create");
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		for (int k = 0; k < 2; k++)
			REQUIRE(!args[k].bad, "blocks of thread %d: %s", k,
				args[k].bad == 3 ? "content changed before the free" :
						   "free returned 0 for a block");
	}
}
END_TEST

TCase *g15_fast(void)
{
	TCase *tc = conform_tcase("G15");
	tcase_add_test(tc, g15_fast_blocks_as_realloc);
	tcase_add_test(tc, g15_fast_free_takes_core_blocks);
	tcase_add_test(tc, g15_fast_alloc_failure);
	tcase_add_test(tc, g15_fast_free_leaves_foreign_alone);
	tcase_add_test(tc, g15_front_as_fast_entries);
	tcase_add_test(tc, g15_malloc_entries_as_fast_entries);
	tcase_add_test(tc, g15_malloc_aligned_as_fast_alloc);
	tcase_add_test(tc, g15_malloc_free_own_as_free);
	tcase_add_test(tc, g15_malloc_entries_threads);
	return tc;
}

/* ---- G16: declared misuse is reported ----------------------------------- */

enum misuse { DOUBLE_FREE, INTERIOR_FREE, FOREIGN_FREE };

/* In a child: the misuse, through kalloc_free or the fast free.  Returns
 * only if it was not caught. */
static void commit(enum misuse m, bool via_fast, size_t size, void **victim)
{
	static unsigned char foreign[256] __attribute__((aligned(64)));
	kalloc_buf_t b;
	void *p;
	if (m == FOREIGN_FREE) {
		p = foreign + 64;
	} else {
		if (kalloc_alloc(conform_a, KALLOC_LAYOUT(size, 16), 0, &b))
			_exit(3);
		p = m == INTERIOR_FREE ? (char *)b.ptr + 16 : b.ptr;
		if (m == DOUBLE_FREE)
			kalloc_free(conform_a, b.ptr, KALLOC_LAYOUT_UNKNOWN);
	}
	*victim = p;
	fprintf(stderr, "victim %p\n", p);
	if (via_fast) {
		kalloc_direct_t d;
		if (kalloc_direct(conform_a, &d))
			_exit(4);
		if (!d.free(d.state, p, KALLOC_LAYOUT_UNKNOWN) &&
		    m == FOREIGN_FREE)
			_exit(5); /* the fast free's answer: left alone */
	} else {
		kalloc_free(conform_a, p, KALLOC_LAYOUT_UNKNOWN);
	}
}

/* Runs commit() in a child and REQUIREs the outcome the declaration
 * promises: SIGABRT with the pointer named (or, for a foreign pointer
 * through the fast free, the answer 0). */
static void expect_caught(enum misuse m, bool via_fast, size_t size,
			  const char *what)
{
	int fd[2];
	REQUIRE(pipe(fd) == 0, "pipe");
	fflush(NULL);
	int pid = conform_fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		signal(SIGABRT, SIG_DFL);
		void *victim;
		commit(m, via_fast, size, &victim);
		_exit(0);
	}
	close(fd[1]);
	char msg[4096];
	size_t got = 0;
	ssize_t r;
	while (got < sizeof(msg) - 1 &&
	       (r = read(fd[0], msg + got, sizeof(msg) - 1 - got)) > 0)
		got += (size_t)r;
	msg[got] = 0;
	close(fd[0]);
	int st;
	REQUIRE(conform_wait(pid, 60, &st) == 0, "%s: child hung", what);
	if (m == FOREIGN_FREE && via_fast && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 5)
		return;
	REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		"%s (%s) declared detected but not reported: child %s %d; "
		"stderr: %s", what, via_fast ? "fast free" : "kalloc_free",
		WIFSIGNALED(st) ? "killed by signal" : "exited with",
		WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), msg);
	char victim[40] = "";
	const char *v = strstr(msg, "victim ");
	if (v)
		sscanf(v + 7, "%39s", victim);
	REQUIRE(victim[0] && strstr(strchr(msg, '\n') ? strchr(msg, '\n') : msg,
				    victim),
		"%s: the report does not name the pointer %s: %s", what, victim,
		msg);
}

START_TEST(g16_double_free)
{
	if (!(conform_info.detects & KALLOC_DETECT_DOUBLE_FREE))
		return;
	expect_caught(DOUBLE_FREE, false, 48, "double free");
	expect_caught(DOUBLE_FREE, false, 3000, "double free");
	if (conform_info.fast)
		expect_caught(DOUBLE_FREE, true, 48, "double free");
}
END_TEST

START_TEST(g16_interior_free)
{
	if (!(conform_info.detects & KALLOC_DETECT_INVALID_FREE))
		return;
	expect_caught(INTERIOR_FREE, false, 64, "free of an interior pointer");
	if (conform_info.fast)
		expect_caught(INTERIOR_FREE, true, 64,
			      "free of an interior pointer");
}
END_TEST

START_TEST(g16_foreign_free)
{
	if (!(conform_info.detects & KALLOC_DETECT_FOREIGN_FREE))
		return;
	expect_caught(FOREIGN_FREE, false, 0, "free of a foreign pointer");
	if (conform_info.fast)
		expect_caught(FOREIGN_FREE, true, 0, "free of a foreign pointer");
}
END_TEST

TCase *g16_misuse(void)
{
	TCase *tc = conform_tcase("G16");
	tcase_add_test(tc, g16_double_free);
	tcase_add_test(tc, g16_interior_free);
	tcase_add_test(tc, g16_foreign_free);
	return tc;
}

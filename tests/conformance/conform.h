/*
 * Shared by the conformance suite's files: the backend under test, the
 * guarantee table, and helpers to fill, check and allocate blocks.
 *
 * Every test reads the backend's declared capabilities (conform_info) and
 * never assumes a particular backend.  Helpers abort the running Check test
 * with a message naming the size, alignment and byte that went wrong.
 * They use REQUIRE rather than ck_assert: ck_assert records a checkpoint
 * through Check's pipe on every success, far too slow in loops of millions.
 */
#ifndef CONFORM_H
#define CONFORM_H

#include <check.h>
#include <kalloc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The backend under test, opened once by main before Check forks. */
extern kalloc_t *conform_a;
extern kalloc_info_t conform_info;
/* Non-zero under valgrind: loops that only add repetitions run shorter. */
extern int conform_slow;
/* Non-zero under a memory tool kalloc describes its blocks to: valgrind
 * (whose memcheck also holds back what a replaced free(3) takes), or ASan
 * without KALLOC_TOOLS=0.  Freed blocks are held back there, so no test
 * may expect one handed out again. */
extern int conform_tool;

/* One guarantee: its id ("G3"), a short name, and its Check test case. */
struct guarantee {
	const char *id;
	const char *name;
	TCase *(*tcase)(void);
};

/* One test case per guarantee, each in the file named for its topic. */
TCase *g1_usable(void);      /* memory.c */
TCase *g2_alignment(void);   /* memory.c */
TCase *g8_grow_shrink(void); /* memory.c */
TCase *g9_smaller_align(void); /* memory.c */
TCase *g3_zero(void);        /* content.c */
TCase *g4_content(void);     /* content.c */
TCase *g5_failure(void);     /* errors.c */
TCase *g10_overflow(void);   /* errors.c */
TCase *g14_refusal(void);    /* errors.c */
TCase *g6_free_null(void);   /* sentinel.c */
TCase *g7_sentinel(void);    /* sentinel.c */
TCase *g11_nowait(void);     /* nowait.c */
TCase *g12_nowarn(void);     /* nowarn.c */
TCase *g13_threads(void);    /* threads.c */
TCase *g15_fast(void);       /* fast.c */
TCase *g16_misuse(void);     /* fast.c */
TCase *g17_caches(void);     /* cache.c */

#define REQUIRE(cond, ...)                       \
	do {                                     \
		if (__builtin_expect(!(cond), 0)) \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

/* A live block and what the test wrote in it. */
struct blk {
	void *p;
	size_t len;   /* usable length reported */
	size_t size;  /* requested size */
	size_t align; /* requested alignment */
	uint64_t seed; /* bytes [0, size) hold pattern(seed) */
};

/* ---- patterns (util.c) ---- */

/* Byte i of the pattern `seed`: position dependent, so shifts show. */
uint8_t pat_byte(uint64_t seed, size_t i);
/* Writes pattern bytes [from, to) of `seed` at p + from. */
void pat_fill(void *p, size_t from, size_t to, uint64_t seed);
/* Index of the first byte in [from, to) differing from the pattern, or
 * SIZE_MAX if none. */
size_t pat_find_bad(const void *p, size_t from, size_t to, uint64_t seed);
/* Index of the first non-zero byte in [from, to), or SIZE_MAX. */
size_t zero_find_bad(const void *p, size_t from, size_t to);

/* xorshift64*: a fixed seed gives the same sizes on every run. */
uint64_t rng_next(uint64_t *state);
/* A size in [lo, hi], log-uniform (as many small as large). */
size_t rng_size(uint64_t *state, size_t lo, size_t hi);

/* ---- capabilities ---- */

static inline bool is_aligned(const void *p, size_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

static inline bool honors(kalloc_flags_t f)
{
	return (conform_info.flags & f) == f;
}

/* Sizes on both sides of every power of two (1 KiB..4 MiB) and page
 * multiple (up to ~4 MiB) into out; returns how many. */
size_t boundary_sizes(size_t *out, size_t cap);

/* min(declared max_align, cap), and at most 1 MiB under valgrind */
size_t align_limit(size_t cap);

/* "0x5 (ZERO|NOWAIT)" into buf; returns buf. */
const char *flag_names(kalloc_flags_t f, char *buf, size_t cap);

/* ---- allocation helpers; each REQUIREs success and G1/G2 basics ---- */

/* Allocates, checks pointer, length and alignment. */
struct blk blk_alloc(size_t size, size_t align, kalloc_flags_t flags);
/* Fills [0, size) with a fresh pattern and the rest of len with junk. */
void blk_stamp(struct blk *b, uint64_t seed);
/* REQUIREs [0, size) to hold b's pattern; `what` names the step. */
void blk_verify(const struct blk *b, const char *what);
/*
 * Resizes to (size, align) passing the old layout (or UNKNOWN when
 * `unknown`), REQUIREs success, alignment, length and kept content, then
 * extends the pattern over the new part.  Returns whether the block moved.
 */
bool blk_resize(struct blk *b, size_t size, size_t align, kalloc_flags_t flags,
		bool unknown);
/* Frees with the known layout, or unknown. */
void blk_free(struct blk *b, bool unknown);

/* The old layout of b as a caller passes it. */
static inline kalloc_layout_t blk_layout(const struct blk *b)
{
	return KALLOC_LAYOUT(b->size, b->align);
}

/* waitpid with a deadline in seconds: 0 when the child ended (status in
 * *status), -1 when it did not (it is then killed). */
int conform_wait(int pid, int seconds, int *status);

/* fork() watched: the test fails with a clear message if fork() itself
 * does not return (an atfork handler deadlock).  Returns fork's value. */
int conform_fork(void);

/*
 * Ends a fork child that succeeded, with status 0.  Under valgrind by
 * exec'ing /bin/true, skipping the exit-time leak check: blocks the
 * parent's other threads had in flight at the fork are unreachable in the
 * child by nature, not leaked by the backend.
 */
void conform_child_done(void) __attribute__((noreturn));

/* A TCase with the suite's timeout (30 s unless CK_DEFAULT_TIMEOUT). */
TCase *conform_tcase(const char *id);

#endif

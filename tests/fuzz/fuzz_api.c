/*
 * Fuzz the core API on one backend (KALLOC_FUZZ_BACKEND, default libc, opened
 * with the options in KALLOC_FUZZ_OPTIONS) against a shadow model of every
 * live block.
 *
 * The input is a list of operations (alloc, realloc, free, injected failure,
 * invalid request, check a block) on NSLOTS slots.  Each live block is recorded
 * with its pointer, requested size, usable length, alignment and a fill
 * pattern written over its whole usable length.  After every call the model
 * checks what docs/CONTRACT.md and <kalloc/plugin.h> promise:
 *   - the pointer is aligned, the usable length >= the request (G1, G2);
 *   - ZERO: bytes read 0 after the kept content up to the usable length
 *     (G3), where with the old layout passed as unknown the old usable
 *     length counts as content (plugin.h's "kept content, then zeros");
 *   - realloc keeps min(old size, new size) bytes (G4);
 *   - a failed call returns an expected code, leaves *out untouched, sets
 *     kalloc_errmsg() and leaves the old block intact and owned (G5);
 *   - size 0 yields the sentinel of the alignment (G6, G7);
 *   - invalid alignments, sizes and refused flags fail with the right code
 *     (G2, G10, G14);
 *   - no two live blocks overlap (sorted interval check after each call).
 * A broken promise prints what and where, then aborts (libFuzzer keeps the
 * input as a crash file).  KALLOC_FUZZ_TRACE=1 prints every call made.
 */
#include <kalloc.h>

#include "fuzz_input.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSLOTS 64
#define LIVE_CAP ((size_t)16 << 20)  /* bytes live at once */
#define ALIGN_CAP ((size_t)1 << 20)  /* largest alignment tried */

struct block {
	unsigned char *ptr; /* NULL: free slot; a sentinel for size 0 */
	size_t size;        /* requested size (the layout's) */
	size_t len;         /* usable length reported */
	size_t align;
	uint32_t seed;      /* fill pattern of [0, len) */
};

static kalloc_t *heap;
static kalloc_info_t info;
static const char *backend = "libc";
static struct block slots[NSLOTS];
static size_t live_bytes;
static uint32_t next_seed = 1;
static unsigned long op_index; /* within the current input, for messages */
static bool trace;             /* KALLOC_FUZZ_TRACE: one line per call */

#define TRACE(...) (trace ? fprintf(stderr, "  op %lu: ", op_index), \
		    fprintf(stderr, __VA_ARGS__), fputc('\n', stderr) : 0)

__attribute__((noreturn, format(printf, 1, 2)))
static void broken(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fuzz_api: backend '%s', operation %lu: ", backend,
		op_index);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

/*
 * Fill patterns: byte i of a block with seed s is pattern(s, i), a sequence
 * of period 251 (prime, so no power-of-two shift of a block's content
 * matches it).  PATTERN_LEN bytes of it are kept in `patterns`, so filling
 * and checking are memcpy/memcmp; beyond that the byte loops take over.
 */
#define PERIOD 251
#define PATTERN_LEN (((size_t)8 << 20) + PERIOD)

static unsigned char *patterns;
static const unsigned char zeros[4096];

static inline unsigned char pattern(uint32_t seed, size_t i)
{
	return (unsigned char)(((seed + i) % PERIOD) * 151u + 17u);
}

static void make_patterns(void)
{
	patterns = malloc(PATTERN_LEN);
	if (!patterns) {
		fprintf(stderr, "fuzz_api: no memory for the patterns\n");
		exit(1);
	}
	for (size_t i = 0; i < PATTERN_LEN; i++)
		patterns[i] = pattern(0, i);
}

/* Where pattern(seed, i) starts in `patterns`, if [i, to) fits there. */
static const unsigned char *pattern_at(uint32_t seed, size_t i, size_t to)
{
	size_t off = seed % PERIOD;
	return off + to <= PATTERN_LEN ? patterns + off + i : NULL;
}

static void fill(unsigned char *p, size_t from, size_t to, uint32_t seed)
{
	if (from >= to)
		return;
	const unsigned char *src = pattern_at(seed, from, to);
	if (src) {
		memcpy(p + from, src, to - from);
		return;
	}
	for (size_t i = from; i < to; i++)
		p[i] = pattern(seed, i);
}

static void expect_pattern(const unsigned char *p, size_t from, size_t to,
			   uint32_t seed, const char *what)
{
	if (from >= to)
		return;
	const unsigned char *src = pattern_at(seed, from, to);
	if (src && memcmp(p + from, src, to - from) == 0)
		return;
	for (size_t i = from; i < to; i++)
		if (p[i] != pattern(seed, i))
			broken("%s: byte %zu of block %p is 0x%02x, expected 0x%02x",
			       what, i, (const void *)p, p[i], pattern(seed, i));
}

static void expect_zero(const unsigned char *p, size_t from, size_t to,
			const char *what)
{
	for (size_t i = from; i < to; i += sizeof(zeros)) {
		size_t n = to - i < sizeof(zeros) ? to - i : sizeof(zeros);
		if (memcmp(p + i, zeros, n) == 0)
			continue;
		for (size_t j = i; j < i + n; j++)
			if (p[j])
				broken("%s: ZERO, but byte %zu of block %p (usable %zu) "
				       "is 0x%02x", what, j, (const void *)p, to, p[j]);
	}
}

static bool is_real(const struct block *b)
{
	return b->ptr && b->size > 0;
}

/* Checks a live block is unchanged and still known to its backend. */
static void check_block(const struct block *b, const char *what)
{
	if (!is_real(b))
		return;
	expect_pattern(b->ptr, 0, b->len, b->seed, what);
	size_t us = kalloc_usable_size(heap, b->ptr);
	if (us < b->size)
		broken("%s: usable_size(%p) = %zu, below the size %zu", what,
		       (void *)b->ptr, us, b->size);
	if (kalloc_owns(heap, b->ptr) == 0)
		broken("%s: owns(%p) says 0 for a live block", what, (void *)b->ptr);
}

static int by_address(const void *x, const void *y)
{
	const struct block *a = *(const struct block *const *)x,
			   *b = *(const struct block *const *)y;
	return a->ptr < b->ptr ? -1 : a->ptr > b->ptr;
}

/* No two live blocks share a byte of their usable lengths. */
static void check_overlap(void)
{
	const struct block *v[NSLOTS];
	size_t n = 0;
	for (int i = 0; i < NSLOTS; i++)
		if (is_real(&slots[i]))
			v[n++] = &slots[i];
	qsort(v, n, sizeof(v[0]), by_address);
	for (size_t i = 1; i < n; i++)
		if (v[i - 1]->ptr + v[i - 1]->len > v[i]->ptr)
			broken("blocks overlap: %p+%zu and %p+%zu",
			       (void *)v[i - 1]->ptr, v[i - 1]->len,
			       (void *)v[i]->ptr, v[i]->len);
}

static size_t floor_log2(size_t x)
{
	size_t r = 0;
	while (x >>= 1)
		r++;
	return r;
}

/* Mostly small sizes (slab classes), some to 256 KiB, a few to 1 MiB. */
static size_t pick_size(struct fuzz_input *in)
{
	uint8_t k = fuzz_u8(in);
	switch (k & 15) {
	case 0:
		return 0;
	case 1: case 2: case 3: case 4: case 5: case 6:
		return fuzz_u8(in);
	case 7: case 8: case 9: case 10: case 11:
		return fuzz_u16(in) % 8193;
	case 12: case 13: case 14:
		return (size_t)fuzz_u16(in) * 4 + (k >> 6);
	default:
		return ((size_t)fuzz_u16(in) << 4) + fuzz_u8(in) % 16;
	}
}

/* Powers of two up to min(max_align, ALIGN_CAP), small ones more often. */
static size_t pick_align(struct fuzz_input *in)
{
	size_t cap = info.max_align < ALIGN_CAP ? info.max_align : ALIGN_CAP;
	uint8_t b = fuzz_u8(in);
	size_t shift = b < 160 ? b % 5u : b % (floor_log2(cap) + 1);
	size_t a = (size_t)1 << shift;
	return a <= cap ? a : cap;
}

/* Any subset of the flags the backend honors (the core adds NOWARN...). */
static kalloc_flags_t pick_flags(struct fuzz_input *in)
{
	static const kalloc_flags_t order[] = {
		KALLOC_ZERO, KALLOC_NOWARN, KALLOC_NOWAIT, KALLOC_ATOMIC,
		KALLOC_HIGHMEM, KALLOC_ACCOUNT,
	};
	uint8_t b = fuzz_u8(in);
	kalloc_flags_t f = KALLOC_NOWARN; /* failures are checked, not printed */
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (b & (1u << i))
			f |= order[i];
	if (b & 0x80)
		f &= ~KALLOC_NOWARN;
	return f & info.flags;
}

/* Keeps the live total under LIVE_CAP by shrinking the request. */
static size_t within_cap(size_t size, size_t replacing)
{
	if (live_bytes - replacing + size > LIVE_CAP)
		return size % 4096;
	return size;
}

/* Error codes a valid request may return, given its flags and size. */
static void expect_valid_failure(int err, size_t size, kalloc_flags_t f,
				 bool injected, const char *what)
{
	/* Under LIVE_CAP, a plain request has no reason to fail. */
	if (err == KALLOC_ENOMEM &&
	    (injected || size > info.max_size ||
	     (f & (KALLOC_NOWAIT | KALLOC_ATOMIC))))
		return;
	if (err == KALLOC_EAGAIN && (f & (KALLOC_NOWAIT | KALLOC_ATOMIC)))
		return;
	if (err == KALLOC_ELIMIT && (f & KALLOC_ACCOUNT))
		return;
	broken("%s of %zu bytes (flags 0x%x) failed: %d (%s): %s", what, size,
	       (unsigned)f, err, kalloc_strerror(err), kalloc_errmsg());
}

static const kalloc_buf_t canary = { (void *)0x5a5a5a5a5a5a5a5aull, 0xa5a5a5a5 };

/* A failed call: *out untouched, a message, the old block intact. */
static void check_failure(const kalloc_buf_t *out, const struct block *old,
			  const char *what)
{
	if (out->ptr != canary.ptr || out->len != canary.len)
		broken("%s failed but wrote *out", what);
	if (!kalloc_errmsg()[0])
		broken("%s failed with an empty kalloc_errmsg()", what);
	if (old)
		check_block(old, what);
}

static void set_block(struct block *b, const kalloc_buf_t *out, size_t size,
		      size_t align, size_t kept, uint32_t seed)
{
	*b = (struct block){ out->ptr, size, out->len, align, seed };
	if (size)
		fill(b->ptr, kept, b->len, seed);
	live_bytes += b->len;
}

static void check_result(const kalloc_buf_t *out, size_t size, size_t align,
			 const char *what)
{
	uintptr_t p = (uintptr_t)out->ptr;
	if (!out->ptr)
		broken("%s returned OK with a NULL pointer", what);
	if (p & (align - 1))
		broken("%s: %p is not aligned to %zu", what, out->ptr, align);
	if (size == 0) {
		if (out->ptr != kalloc_sentinel(align) || out->len != 0)
			broken("%s of size 0 gave {%p, %zu}, not the sentinel %p",
			       what, out->ptr, out->len, kalloc_sentinel(align));
		return;
	}
	if (kalloc_is_sentinel(out->ptr))
		broken("%s of %zu bytes returned the sentinel %p", what, size,
		       out->ptr);
	if (out->len < size)
		broken("%s: usable length %zu below the size %zu", what, out->len,
		       size);
	size_t us = kalloc_usable_size(heap, out->ptr);
	if (us < size)
		broken("%s: usable_size(%p) = %zu, below the size %zu", what,
		       out->ptr, us, size);
}

static void release_slot(struct block *b)
{
	if (is_real(b))
		live_bytes -= b->len;
	*b = (struct block){ 0 };
}

static void do_free(struct block *b, uint8_t how)
{
	if (!b->ptr)
		return;
	check_block(b, "before free");
	kalloc_layout_t known = KALLOC_LAYOUT(b->size, b->align);
	kalloc_layout_t old = how & 1 ? KALLOC_LAYOUT_UNKNOWN : known;
	TRACE("free slot %td: %p size %zu align %zu, %s, layout %s", b - slots,
	      (void *)b->ptr, b->size, b->align,
	      how & 2 ? "realloc to 0" : "kalloc_free",
	      how & 1 ? "unknown" : "known");
	if (how & 2) {
		size_t align = (size_t)1 << (how >> 4 & 7);
		kalloc_buf_t out = canary;
		int err = kalloc_realloc(heap, b->ptr, KALLOC_LAYOUT(0, align), old,
					 0, &out);
		if (err)
			broken("realloc to size 0 (free) failed: %s", kalloc_errmsg());
		check_result(&out, 0, align, "realloc to size 0");
	} else {
		kalloc_free(heap, b->ptr, old);
	}
	release_slot(b);
}

static void do_alloc(struct block *b, struct fuzz_input *in, bool inject)
{
	do_free(b, fuzz_u8(in));
	size_t size = within_cap(pick_size(in), 0), align = pick_align(in);
	kalloc_flags_t f = pick_flags(in);
	kalloc_buf_t out = canary;
	if (inject)
		kalloc_fail_nth(1);
	int err = kalloc_alloc(heap, KALLOC_LAYOUT(size, align), f, &out);
	kalloc_fail_nth(0);
	TRACE("alloc slot %td: size %zu align %zu flags 0x%x%s -> %d %p+%zu",
	      b - slots, size, align, (unsigned)f, inject ? " (injected)" : "",
	      err, err ? NULL : out.ptr, err ? 0 : out.len);
	if (err) {
		expect_valid_failure(err, size, f, inject, "alloc");
		check_failure(&out, NULL, "alloc");
		return;
	}
	if (inject && size)
		broken("alloc of %zu bytes succeeded despite an injected failure",
		       size);
	check_result(&out, size, align, "alloc");
	if (size && (f & KALLOC_ZERO))
		expect_zero(out.ptr, 0, out.len, "alloc");
	set_block(b, &out, size, align, 0, next_seed++);
}

static void do_realloc(struct block *b, struct fuzz_input *in, bool inject)
{
	if (!b->ptr) {
		do_alloc(b, in, inject);
		return;
	}
	uint8_t how = fuzz_u8(in);
	size_t size = within_cap(pick_size(in), b->len), align = pick_align(in);
	kalloc_flags_t f = pick_flags(in);
	bool unknown = how & 1;
	kalloc_layout_t old = unknown ? KALLOC_LAYOUT_UNKNOWN :
					KALLOC_LAYOUT(b->size, b->align);
	/*
	 * Kept: min(old size, new size) bytes (G4).  Zeros under ZERO start
	 * after what the block "had": its size, or with the layout unknown its
	 * usable length (plugin.h; the reported one or usable_size(), which
	 * may be larger).  In between (unknown layout only), bytes may be kept
	 * or zeroed: a core that tracks the block knows its size.
	 */
	size_t old_size = is_real(b) ? b->size : 0, had = old_size;
	if (is_real(b) && unknown) { /* the larger of the two usable lengths */
		size_t us = kalloc_usable_size(heap, b->ptr);
		had = us > b->len ? us : b->len;
	}
	size_t kept = old_size < size ? old_size : size;
	size_t zeros_from = had < size ? had : size;

	check_block(b, "before realloc");
	kalloc_buf_t out = canary;
	if (inject)
		kalloc_fail_nth(1);
	int err = kalloc_realloc(heap, b->ptr, KALLOC_LAYOUT(size, align), old, f,
				 &out);
	kalloc_fail_nth(0);
	TRACE("realloc slot %td: %p size %zu len %zu align %zu -> size %zu "
	      "align %zu flags 0x%x, old layout %s%s -> %d %p+%zu", b - slots,
	      (void *)b->ptr, b->size, b->len, b->align, size, align,
	      (unsigned)f, unknown ? "unknown" : "known",
	      inject ? " (injected)" : "", err, err ? NULL : out.ptr,
	      err ? 0 : out.len);
	if (err) {
		if (size == 0)
			broken("realloc to size 0 failed: %s", kalloc_errmsg());
		expect_valid_failure(err, size, f, inject, "realloc");
		check_failure(&out, b, "realloc");
		return;
	}
	if (inject && size > b->size)
		broken("growing realloc %zu -> %zu succeeded despite an injected "
		       "failure", b->size, size);
	check_result(&out, size, align, "realloc");
	uint32_t seed = b->seed;
	release_slot(b);
	if (size) {
		expect_pattern(out.ptr, 0, kept, seed, "realloc kept content");
		if (f & KALLOC_ZERO)
			expect_zero(out.ptr, zeros_from, out.len,
				    "realloc grown part");
	}
	set_block(b, &out, size, align, kept, seed);
}

/* Requests the core must refuse, with the code docs/CONTRACT.md names. */
static void do_invalid(struct block *b, struct fuzz_input *in)
{
	uint8_t kind = fuzz_u8(in);
	size_t size = 1 + fuzz_u16(in) % 4096, align = 16;
	kalloc_flags_t f = KALLOC_NOWARN;
	int want;
	switch (kind % 5) {
	case 0: /* not a power of two */
		align = (size_t)(fuzz_u8(in) | 1) * 3;
		if (kind & 0x80)
			align = 0;
		want = KALLOC_EINVAL;
		break;
	case 1: /* above the backend's limit */
		if (info.max_align >= ((size_t)1 << 30))
			return;
		align = info.max_align << 1;
		want = KALLOC_EALIGN;
		break;
	case 2: /* overflows once rounded (G10) */
		size = SIZE_MAX - fuzz_u8(in) % align;
		want = KALLOC_EOVERFLOW;
		break;
	case 3: { /* a flag the backend does not honor (G14) */
		kalloc_flags_t missing = KALLOC_FLAGS_ALL & ~info.flags;
		if (!missing)
			return;
		for (unsigned skip = fuzz_u8(in) % 6; skip; skip--)
			if (missing & (missing - 1))
				missing &= missing - 1; /* drop the lowest */
		f |= missing & (0u - missing); /* one refused flag */
		want = KALLOC_ENOTSUP;
		break;
	}
	default: { /* unknown flag bits: above every KALLOC_* flag */
		unsigned first = 32 - (unsigned)__builtin_clz(KALLOC_FLAGS_ALL);
		f |= 1u << (first + fuzz_u8(in) % (32 - first));
		want = KALLOC_EINVAL;
		break;
	}
	}
	kalloc_buf_t out = canary;
	int err;
	if (is_real(b) && (kind & 0x40))
		err = kalloc_realloc(heap, b->ptr, KALLOC_LAYOUT(size, align),
				     KALLOC_LAYOUT(b->size, b->align), f, &out);
	else
		err = kalloc_alloc(heap, KALLOC_LAYOUT(size, align), f, &out);
	TRACE("invalid slot %td: size %zu align %zu flags 0x%x -> %d (want %d)",
	      b - slots, size, align, (unsigned)f, err, want);
	if (err != want)
		broken("invalid request (size %zu, align %zu, flags 0x%x): got %d "
		       "(%s), expected %d (%s)", size, align, (unsigned)f, err,
		       kalloc_strerror(err), want, kalloc_strerror(want));
	check_failure(&out, b, "invalid request");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	trace = getenv("KALLOC_FUZZ_TRACE") != NULL;
	const char *env = getenv("KALLOC_FUZZ_BACKEND");
	if (env && *env)
		backend = env;
	const char *options = getenv("KALLOC_FUZZ_OPTIONS");
	if (kalloc_open(backend, options, &heap) != KALLOC_OK) {
		fprintf(stderr, "fuzz_api: cannot open backend '%s': %s\n", backend,
			kalloc_errmsg());
		exit(1);
	}
	kalloc_info(heap, &info);
	make_patterns();
	fprintf(stderr, "fuzz_api: backend '%s' (%s), options '%s', flags 0x%x, "
		"max_align %zu\n", info.name, info.path, options ? options : "",
		(unsigned)info.flags, info.max_align);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	op_index = 0;
	while (fuzz_more(&in)) {
		uint8_t op = fuzz_u8(&in);
		struct block *b = &slots[fuzz_u8(&in) % NSLOTS];
		op_index++;
		switch (op % 8) {
		case 0: case 1:
			do_alloc(b, &in, false);
			break;
		case 2: case 3:
			do_realloc(b, &in, false);
			break;
		case 4:
			do_free(b, fuzz_u8(&in));
			break;
		case 5:
			if (op & 0x80)
				do_realloc(b, &in, true);
			else
				do_alloc(b, &in, true);
			break;
		case 6:
			do_invalid(b, &in);
			break;
		default: /* every block is checked in full before it is freed */
			check_block(b, "check");
			break;
		}
		check_overlap();
	}
	for (int i = 0; i < NSLOTS; i++)
		do_free(&slots[i], (uint8_t)i);
	if (live_bytes)
		broken("model error: %zu bytes still counted live", live_bytes);
	return 0;
}

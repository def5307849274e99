/*
 * Test-only plugins over the slab backend, each with one deliberate
 * behaviour, to prove kalloc-conform catches what it claims to.  Built once
 * per mode (never installed); the mode is a -D define:
 *
 *   MOCK_BROKEN_ZERO    ignores ZERO; fresh and grown bytes read 0xA5  -> G3
 *   MOCK_BROKEN_COPY    every resize moves and forgets the last kept byte -> G4
 *   MOCK_BROKEN_ALIGN   serves alignments above a page with page
 *                       alignment (often, not always, enough)     -> G2
 *   MOCK_BROKEN_NOWAIT  maps a page on every NOWAIT/ATOMIC call        -> G11
 *   MOCK_NOWAIT_OK      the control: declares NOWAIT/ATOMIC and hands
 *                       them to slab, which honors them; it must pass
 *                       every guarantee
 *   MOCK_BROKEN_FAST    a fast table whose alloc fails without setting
 *                       errno to ENOMEM (a malloc must)               -> G15
 *   MOCK_SILENT_DOUBLE_FREE declares DOUBLE_FREE but ignores a free of a
 *                       block it freed recently                       -> G16
 *
 * Blocks come from the slab backend through the host (never malloc here);
 * inner calls carry NOWARN so only the outer call warns.  Not libc: under
 * ASan, glibc's malloc driven from these mocks tripped glibc's own arena
 * assertion (attached_threads, at thread exit in G13) in about one run in
 * three, and the inner allocator is incidental to what they test.
 */
#include <kalloc/plugin.h>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#if defined(MOCK_BROKEN_ZERO)
#define MOCK_NAME "broken_zero"
#elif defined(MOCK_BROKEN_COPY)
#define MOCK_NAME "broken_copy"
#elif defined(MOCK_BROKEN_ALIGN)
#define MOCK_NAME "broken_align"
#elif defined(MOCK_BROKEN_NOWAIT)
#define MOCK_NAME "broken_nowait"
#elif defined(MOCK_NOWAIT_OK)
#define MOCK_NAME "nowait_ok"
#elif defined(MOCK_BROKEN_FAST)
#define MOCK_NAME "broken_fast"
#elif defined(MOCK_SILENT_DOUBLE_FREE)
#define MOCK_NAME "silent_double_free"
#else
#error "define one MOCK_* mode"
#endif

#if defined(MOCK_BROKEN_NOWAIT) || defined(MOCK_NOWAIT_OK)
#define MOCK_FLAGS (KALLOC_ZERO | KALLOC_NOWAIT | KALLOC_ATOMIC)
#else
#define MOCK_FLAGS KALLOC_ZERO
#endif

#define POISON 0xA5

static const kalloc_host_t *host;
static kalloc_t *inner;

static int mock_init(const kalloc_host_t *h, const char *options, void **state)
{
	(void)options;
	host = h;
	inner = h->get("slab");
	*state = NULL;
	return inner ? KALLOC_OK : KALLOC_ELOAD;
}

static void mock_fini(void *state)
{
	(void)state;
}

static inline size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

#ifdef MOCK_BROKEN_COPY
/* Always moves; copies one byte short and spoils that byte. */
static int move_short(void *ptr, kalloc_layout_t l, kalloc_layout_t old,
		      kalloc_flags_t down, kalloc_buf_t *out)
{
	kalloc_buf_t n;
	int err = host->realloc(inner, NULL, l, KALLOC_LAYOUT_UNKNOWN, down, &n);
	if (err)
		return err;
	size_t old_size = old.align ? old.size : host->usable_size(inner, ptr);
	size_t kept = min_sz(old_size, l.size);
	if (kept) {
		memcpy(n.ptr, ptr, kept - 1);
		((unsigned char *)n.ptr)[kept - 1] =
			(unsigned char)~((unsigned char *)ptr)[kept - 1];
	}
	kalloc_buf_t ignored;
	host->realloc(inner, ptr, KALLOC_LAYOUT(0, 1), old, 0, &ignored);
	*out = n;
	return KALLOC_OK;
}
#endif

#ifdef MOCK_SILENT_DOUBLE_FREE
/* The last frees; a pointer found here is "already free": ignored. */
static void *_Atomic recent[64];
static _Atomic unsigned n_recent;

static int seen_free(void *ptr)
{
	for (unsigned i = 0; i < 64; i++)
		if (recent[i] == ptr) {
			recent[i] = NULL;
			return 1;
		}
	recent[n_recent++ % 64] = ptr;
	return 0;
}
#endif

static int mock_realloc(void *state, void *ptr, kalloc_layout_t l,
			kalloc_layout_t old, kalloc_flags_t flags,
			kalloc_buf_t *out)
{
	(void)state;
	kalloc_flags_t down = (flags & KALLOC_ZERO) | KALLOC_NOWARN;
	if (flags & (KALLOC_NOWAIT | KALLOC_ATOMIC)) {
#if defined(MOCK_NOWAIT_OK)
		down |= flags & (KALLOC_NOWAIT | KALLOC_ATOMIC);
#elif defined(MOCK_BROKEN_NOWAIT)
		/* "refill a cache": exactly what NOWAIT forbids */
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m != MAP_FAILED)
			munmap(m, 4096);
#endif
	}
#ifdef MOCK_BROKEN_ALIGN
	if (l.align > 4096)
		l.align = 4096;
#endif
#ifdef MOCK_BROKEN_COPY
	if (ptr && l.size)
		return move_short(ptr, l, old, down, out);
#endif
#ifdef MOCK_BROKEN_ZERO
	down &= ~KALLOC_ZERO;
	size_t kept = 0;
	if (ptr && l.size)
		kept = min_sz(old.align ? old.size : host->usable_size(inner, ptr),
			      l.size);
#endif
#ifdef MOCK_SILENT_DOUBLE_FREE
	if (ptr && !l.size && seen_free(ptr))
		return KALLOC_OK;
	if (!ptr)
		for (unsigned i = 0; i < 64; i++)
			recent[i] = NULL; /* cheap: any reuse starts afresh */
#endif
	int err = host->realloc(inner, ptr, l, old, down, out);
#ifdef MOCK_BROKEN_ZERO
	if (!err && l.size)
		memset((char *)out->ptr + kept, POISON, out->len - kept);
#endif
	return err;
}


#if defined(MOCK_BROKEN_FAST) || defined(MOCK_SILENT_DOUBLE_FREE)
static kalloc_buf_t mock_fast_alloc(void *state, kalloc_layout_t l)
{
	(void)state;
	kalloc_buf_t b = { NULL, 0 };
	if (l.size > ((size_t)1 << 40) ||
	    host->realloc(inner, NULL, l, KALLOC_LAYOUT_UNKNOWN, KALLOC_NOWARN,
			  &b)) {
#ifndef MOCK_BROKEN_FAST
		errno = ENOMEM;
#endif
		return (kalloc_buf_t){ NULL, 0 };
	}
#ifdef MOCK_SILENT_DOUBLE_FREE
	for (unsigned i = 0; i < 64; i++)
		if (recent[i] == b.ptr)
			recent[i] = NULL; /* reused: live again */
#endif
	return b;
}

static int mock_fast_free(void *state, void *ptr, kalloc_layout_t old)
{
	(void)state;
#ifdef MOCK_SILENT_DOUBLE_FREE
	if (seen_free(ptr))
		return 1;
#endif
	return host->free(inner, ptr, old);
}

static const kalloc_plugin_fast_t fast = {
	.alloc = mock_fast_alloc,
	.free = mock_fast_free,
};
#define MOCK_FAST &fast
#else
#define MOCK_FAST NULL
#endif

#ifdef MOCK_SILENT_DOUBLE_FREE
#define MOCK_DETECTS KALLOC_DETECT_DOUBLE_FREE
#else
#define MOCK_DETECTS 0
#endif

static size_t mock_usable_size(void *state, const void *ptr)
{
	(void)state;
	return host->usable_size(inner, ptr);
}

static const kalloc_plugin_ops_t ops = {
	.init = mock_init,
	.fini = mock_fini,
	.realloc = mock_realloc,
	.usable_size = mock_usable_size,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = MOCK_NAME,
	.version = "test",
	.description = "test-only plugin with a deliberate behaviour (" MOCK_NAME ")",
	.flags = MOCK_FLAGS,
	.max_align = (size_t)1 << 20,
	.max_size = (size_t)1 << 40,
	.detects = MOCK_DETECTS,
	.ops = &ops,
	.fast = MOCK_FAST,
};

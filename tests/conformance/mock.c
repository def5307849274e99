/*
 * Test-only plugins over the slab backend, each with one deliberate
 * behaviour, to prove kalloc-conform catches what it claims to.  Built once
 * per mode (never installed); the mode is a -D define:
 *
 *   MOCK_BROKEN_ZERO    ignores ZERO; fresh and grown bytes read 0xA5  -> G3
 *   MOCK_BROKEN_COPY    every resize moves and forgets the last kept byte -> G4
 *   MOCK_BROKEN_ALIGN   serves alignments above a page with page
 *                       alignment only (a block a page into an aligned
 *                       one: it was the page-aligned block as it came,
 *                       aligned enough or not by chance)           -> G2
 *   MOCK_BROKEN_NOWAIT  maps a page on every NOWAIT/ATOMIC call        -> G11
 *   MOCK_NOWAIT_OK      the control: declares NOWAIT/ATOMIC and hands
 *                       them to slab, which honors them; it must pass
 *                       every guarantee
 *   MOCK_BROKEN_FAST    a fast table whose alloc fails without setting
 *                       errno to ENOMEM (a malloc must)               -> G15
 *   MOCK_SILENT_DOUBLE_FREE declares DOUBLE_FREE but ignores a free of a
 *                       block it freed recently                       -> G16
 *   MOCK_MALLOC_UNDER_16 malloc entries whose blocks under 16 bytes are
 *                       8-aligned (a library's 8-byte class served as
 *                       it is)                                        -> G15
 *   MOCK_ALIGNED_CONCURRENT malloc entries whose aligned entry serves a
 *                       block 16 bytes in (16-aligned only) while another
 *                       thread is inside it too: only two threads show it
 *                                                                     -> G15
 *   MOCK_FREE_OWN_LEAKS malloc entries whose free_own frees nothing  -> G15
 *
 * The mutation set (tests/README.md, "Mutants"): each one fault in an
 * otherwise correct backend.
 *
 *   MOCK_ALIGN_ABOVE_64   alignments above 64 served 64-aligned only
 *   MOCK_ALIGN_AFTER_N    after 20000 allocations, served 16-aligned only
 *   MOCK_ALIGN_CONCURRENT served 16-aligned only while another thread is
 *                         inside an allocation too
 *   MOCK_LEN_PLUS_ONE     the fast alloc reports one byte more than the
 *                         block has
 *   MOCK_GROW_FAIL_FREES  a grow that fails frees the old block
 *   MOCK_ZERO_FRESH_ONLY  ZERO on a fresh block, not on a grown tail
 *   MOCK_LOST_REMOTE_FREE a free from a thread that never allocated is
 *                         dropped (a thread cache not set up yet)
 *   MOCK_NOWAIT_LOCK      declares NOWAIT/ATOMIC and maps nothing for
 *                         them, but every call takes one lock, and a
 *                         NOWAIT call waits for it like any other
 *
 * The three ALIGN modes serve each block at an offset into a larger inner
 * block, with the inner pointer stored just before it (an aligned malloc's
 * header); the correct offset is max(align, 16).
 *
 * Blocks come from the slab backend through the host (never malloc here);
 * inner calls carry NOWARN so only the outer call warns.  (Not libc: the
 * inner allocator is incidental to what they test.)
 */
#include <kalloc/plugin.h>

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#if defined(MOCK_BROKEN_ZERO)
#define MOCK_NAME "broken_zero"
#elif defined(MOCK_BROKEN_COPY)
#define MOCK_NAME "broken_copy"
#elif defined(MOCK_BROKEN_ALIGN)
#define MOCK_NAME "broken_align"
#define MOCK_SHIFTED
#elif defined(MOCK_BROKEN_NOWAIT)
#define MOCK_NAME "broken_nowait"
#elif defined(MOCK_NOWAIT_OK)
#define MOCK_NAME "nowait_ok"
#elif defined(MOCK_BROKEN_FAST)
#define MOCK_NAME "broken_fast"
#elif defined(MOCK_SILENT_DOUBLE_FREE)
#define MOCK_NAME "silent_double_free"
#elif defined(MOCK_MALLOC_UNDER_16)
#define MOCK_NAME "malloc_under_16"
#elif defined(MOCK_ALIGNED_CONCURRENT)
#define MOCK_NAME "aligned_concurrent"
#elif defined(MOCK_ALIGN_ABOVE_64)
#define MOCK_NAME "align_above_64"
#define MOCK_SHIFTED
#elif defined(MOCK_ALIGN_AFTER_N)
#define MOCK_NAME "align_after_n"
#define MOCK_SHIFTED
#elif defined(MOCK_ALIGN_CONCURRENT)
#define MOCK_NAME "align_concurrent"
#define MOCK_SHIFTED
#elif defined(MOCK_LEN_PLUS_ONE)
#define MOCK_NAME "len_plus_one"
#elif defined(MOCK_GROW_FAIL_FREES)
#define MOCK_NAME "grow_fail_frees"
#elif defined(MOCK_ZERO_FRESH_ONLY)
#define MOCK_NAME "zero_fresh_only"
#elif defined(MOCK_LOST_REMOTE_FREE)
#define MOCK_NAME "lost_remote_free"
#elif defined(MOCK_NOWAIT_LOCK)
#define MOCK_NAME "nowait_lock"
#elif defined(MOCK_FREE_OWN_LEAKS)
#define MOCK_NAME "free_own_leaks"
#else
#error "define one MOCK_* mode"
#endif

#if defined(MOCK_BROKEN_NOWAIT) || defined(MOCK_NOWAIT_OK) || \
	defined(MOCK_NOWAIT_LOCK)
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

#ifdef MOCK_SHIFTED
/* What sits just before a served pointer: its inner block and offset. */
struct hdr {
	void *inner;
	size_t off;
};

static struct hdr *hdr_of(const void *ptr)
{
	return (struct hdr *)ptr - 1;
}

#ifdef MOCK_ALIGN_AFTER_N
static atomic_ulong n_allocs;
#endif
#ifdef MOCK_ALIGN_CONCURRENT
static atomic_int inside; /* threads inside shifted_alloc */
#endif

/* The offset of a block of alignment `align`: max(align, 16), but for
 * the one fault. */
static size_t shift(size_t align)
{
	size_t off = align > 16 ? align : 16;
#if defined(MOCK_ALIGN_ABOVE_64)
	if (align > 64)
		off = 64; /* fault: 64-aligned only */
#elif defined(MOCK_BROKEN_ALIGN)
	if (align > 4096)
		off = 4096; /* fault: page-aligned only */
#elif defined(MOCK_ALIGN_AFTER_N)
	if (atomic_fetch_add(&n_allocs, 1) >= 20000)
		off += 16; /* fault: 16-aligned only */
#endif
	return off;
}

static int shifted_alloc(kalloc_layout_t l, kalloc_flags_t down,
			 kalloc_buf_t *out)
{
	size_t off = shift(l.align);
#ifdef MOCK_ALIGN_CONCURRENT
	/* the yield only makes overlaps common; the fault is the offset */
	if (atomic_fetch_add(&inside, 1) > 0)
		off += 16;
	else
		sched_yield();
#endif
	kalloc_buf_t n;
	int err = host->realloc(inner, NULL,
				KALLOC_LAYOUT(l.size + off, l.align > 16 ?
					      l.align : 16),
				KALLOC_LAYOUT_UNKNOWN, down, &n);
#ifdef MOCK_ALIGN_CONCURRENT
	atomic_fetch_sub(&inside, 1);
#endif
	if (err)
		return err;
	char *p = (char *)n.ptr + off;
	*hdr_of(p) = (struct hdr){ n.ptr, off };
	*out = (kalloc_buf_t){ p, n.len - off };
	return KALLOC_OK;
}

static size_t shifted_usable(const void *ptr)
{
	const struct hdr *h = hdr_of(ptr);
	return host->usable_size(inner, h->inner) - h->off;
}

static void shifted_free(void *ptr)
{
	kalloc_buf_t ignored;
	host->realloc(inner, hdr_of(ptr)->inner, KALLOC_LAYOUT(0, 1),
		      KALLOC_LAYOUT_UNKNOWN, 0, &ignored);
}

/* Every resize moves: kept content, then zeros with ZERO. */
static int shifted_realloc(void *ptr, kalloc_layout_t l, kalloc_layout_t old,
			   kalloc_flags_t down, kalloc_buf_t *out)
{
	if (!ptr)
		return shifted_alloc(l, down, out);
	if (!l.size) {
		shifted_free(ptr);
		return KALLOC_OK;
	}
	kalloc_buf_t n;
	int err = shifted_alloc(l, down & ~KALLOC_ZERO, &n);
	if (err)
		return err;
	size_t kept = kalloc_kept(old, shifted_usable(ptr), l.size);
	memcpy(n.ptr, ptr, kept);
	if (down & KALLOC_ZERO)
		memset((char *)n.ptr + kept, 0, n.len - kept);
	shifted_free(ptr);
	*out = n;
	return KALLOC_OK;
}
#endif

#if defined(MOCK_LOST_REMOTE_FREE) || defined(MOCK_NOWAIT_LOCK)
#include <pthread.h>
#endif

#ifdef MOCK_NOWAIT_LOCK
/* Taken around every call.  A fork child, alone, starts it afresh (the
 * holder may have been another thread; slab has its own fork hooks). */
static pthread_mutex_t big_lock = PTHREAD_MUTEX_INITIALIZER;

static void mock_atfork_child(void *state)
{
	(void)state;
	pthread_mutex_init(&big_lock, NULL);
}
#define MOCK_ATFORK_CHILD mock_atfork_child
#else
#define MOCK_ATFORK_CHILD NULL
#endif

#ifdef MOCK_LOST_REMOTE_FREE
/* Set on a thread's first allocation ("its cache").  A pthread key, not
 * _Thread_local: LeakSanitizer's tracer crashed on this module's TLS. */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_key_make(void)
{
	pthread_key_create(&cache_key, NULL);
}
#endif

#ifdef MOCK_LEN_PLUS_ONE
/* The inner block is one byte longer; realloc reports the true usable
 * length (inner - 1) and zeros itself. */
static int plus_one_realloc(void *ptr, kalloc_layout_t l, kalloc_layout_t old,
			    kalloc_flags_t down, kalloc_buf_t *out)
{
	size_t kept = 0;
	if (ptr && l.size)
		kept = kalloc_kept(old, host->usable_size(inner, ptr) - 1, l.size);
	if (l.size)
		l.size++;
	kalloc_flags_t in = ptr ? down & ~KALLOC_ZERO : down;
	kalloc_buf_t n;
	int err = host->realloc(inner, ptr, l, KALLOC_LAYOUT_UNKNOWN, in, &n);
	if (err || !l.size)
		return err;
	n.len = host->usable_size(inner, n.ptr) - 1;
	if (ptr && (down & KALLOC_ZERO))
		memset((char *)n.ptr + kept, 0, n.len - kept);
	*out = n;
	return KALLOC_OK;
}
#endif

static int mock_realloc(void *state, void *ptr, kalloc_layout_t l,
			kalloc_layout_t old, kalloc_flags_t flags,
			kalloc_buf_t *out)
{
	(void)state;
	kalloc_flags_t down = (flags & KALLOC_ZERO) | KALLOC_NOWARN;
#ifdef MOCK_NOWAIT_LOCK
	/* fault: NOWAIT waits for the lock (a trylock would answer EAGAIN) */
	down |= flags & (KALLOC_NOWAIT | KALLOC_ATOMIC);
	pthread_mutex_lock(&big_lock);
	int locked_err = host->realloc(inner, ptr, l, old, down, out);
	pthread_mutex_unlock(&big_lock);
	return locked_err;
#endif
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
#ifdef MOCK_BROKEN_COPY
	if (ptr && l.size)
		return move_short(ptr, l, old, down, out);
#endif
#ifdef MOCK_SHIFTED
	return shifted_realloc(ptr, l, old, down, out);
#endif
#ifdef MOCK_LEN_PLUS_ONE
	return plus_one_realloc(ptr, l, old, down, out);
#endif
#if defined(MOCK_BROKEN_ZERO) || defined(MOCK_ZERO_FRESH_ONLY)
	/* broken_zero spoils every ZERO, zero_fresh_only a resize's only */
	bool spoil = (down & KALLOC_ZERO) && l.size;
#ifdef MOCK_ZERO_FRESH_ONLY
	spoil = spoil && ptr;
#else
	spoil = l.size; /* and without ZERO too: fresh bytes read POISON */
#endif
	if (spoil)
		down &= ~KALLOC_ZERO;
	size_t kept = 0;
	if (ptr && l.size)
		kept = min_sz(old.align ? old.size : host->usable_size(inner, ptr),
			      l.size);
#endif
#ifdef MOCK_LOST_REMOTE_FREE
	pthread_once(&cache_once, cache_key_make);
	if (ptr && !l.size && !pthread_getspecific(cache_key))
		return KALLOC_OK; /* fault: no cache to take it, dropped */
	if (l.size && !pthread_getspecific(cache_key))
		pthread_setspecific(cache_key, &cache_key);
#endif
#ifdef MOCK_SILENT_DOUBLE_FREE
	if (ptr && !l.size && seen_free(ptr))
		return KALLOC_OK;
	if (!ptr)
		for (unsigned i = 0; i < 64; i++)
			recent[i] = NULL; /* cheap: any reuse starts afresh */
#endif
	int err = host->realloc(inner, ptr, l, old, down, out);
#if defined(MOCK_BROKEN_ZERO) || defined(MOCK_ZERO_FRESH_ONLY)
	if (!err && spoil)
		memset((char *)out->ptr + kept, POISON, out->len - kept);
#endif
#ifdef MOCK_GROW_FAIL_FREES
	size_t old_size = old.align ? old.size : host->usable_size(inner, ptr);
	if (err && ptr && l.size > old_size) {
		kalloc_buf_t ignored; /* fault: the caller still holds it */
		host->realloc(inner, ptr, KALLOC_LAYOUT(0, 1), old, 0, &ignored);
	}
#endif
	return err;
}


#ifdef MOCK_LEN_PLUS_ONE
/*
 * Blocks hold one byte more than usable_size says (so the fault corrupts
 * nothing); realloc reports usable_size, the fast alloc one byte more.
 */
static kalloc_buf_t mock_fast_alloc(void *state, kalloc_layout_t l)
{
	(void)state;
	kalloc_buf_t b;
	if (l.size >= ((size_t)1 << 40) ||
	    host->realloc(inner, NULL, KALLOC_LAYOUT(l.size + 1, l.align),
			  KALLOC_LAYOUT_UNKNOWN, KALLOC_NOWARN, &b)) {
		errno = ENOMEM;
		return (kalloc_buf_t){ NULL, 0 };
	}
	b.len = host->usable_size(inner, b.ptr); /* fault: not - 1 */
	return b;
}

static int mock_fast_free(void *state, void *ptr, kalloc_layout_t old)
{
	(void)state;
	(void)old;
	return host->free(inner, ptr, KALLOC_LAYOUT_UNKNOWN);
}

static const kalloc_plugin_fast_t fast = {
	.alloc = mock_fast_alloc,
	.free = mock_fast_free,
};
#define MOCK_FAST &fast
#elif defined(MOCK_BROKEN_FAST) || defined(MOCK_SILENT_DOUBLE_FREE) || \
	defined(MOCK_MALLOC_UNDER_16) || defined(MOCK_ALIGNED_CONCURRENT) || \
	defined(MOCK_FREE_OWN_LEAKS)
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

#if defined(MOCK_ALIGNED_CONCURRENT) || defined(MOCK_FREE_OWN_LEAKS)
/* malloc's block: the inner backend's {size ? size : 1, 16}, as it is. */
static void *mock_malloc(size_t size)
{
	kalloc_buf_t b;
	if (size > ((size_t)1 << 40) ||
	    host->realloc(inner, NULL, KALLOC_LAYOUT(size ? size : 1, 16),
			  KALLOC_LAYOUT_UNKNOWN, KALLOC_NOWARN, &b)) {
		errno = ENOMEM;
		return NULL;
	}
	return b.ptr;
}
#endif

#ifdef MOCK_MALLOC_UNDER_16
/* Blocks of 16 bytes more than asked; under 16 bytes the pointer handed
 * out is 8 bytes in (the fault), and free takes it back from there. */
static void *mock_malloc(size_t size)
{
	kalloc_buf_t b;
	if (size > ((size_t)1 << 40) ||
	    host->realloc(inner, NULL, KALLOC_LAYOUT(size + 16, 16),
			  KALLOC_LAYOUT_UNKNOWN, KALLOC_NOWARN, &b)) {
		errno = ENOMEM;
		return NULL;
	}
	return size < 16 ? (char *)b.ptr + 8 : b.ptr;
}

static int mock_malloc_free(void *ptr)
{
	if ((uintptr_t)ptr & 15)
		ptr = (char *)ptr - 8;
	return host->free(inner, ptr, KALLOC_LAYOUT_UNKNOWN);
}

static int mock_malloc_entries(void *state, kalloc_malloc_t *out)
{
	(void)state;
	*out = (kalloc_malloc_t){ mock_malloc, mock_malloc_free, NULL, NULL };
	return KALLOC_OK;
}
#define MOCK_MALLOC_ENTRIES mock_malloc_entries
#elif defined(MOCK_ALIGNED_CONCURRENT)
static atomic_int inside; /* threads inside mock_aligned */

/* A block served 16 bytes in (inside slab's block: owns answers 2) back
 * to the start of slab's block. */
static void *unshift(void *ptr)
{
	return host->owns(inner, ptr) == 2 ? (char *)ptr - 16 : ptr;
}

/* Blocks of 16 bytes more than asked, handed out at their start, but 16
 * bytes in (the fault) while another thread is inside too. */
static void *mock_aligned(size_t align, size_t size)
{
	size_t off = atomic_fetch_add(&inside, 1) > 0 ? 16 : 0;
	if (!off)
		sched_yield(); /* (only makes overlaps common) */
	kalloc_buf_t b;
	int err = size > ((size_t)1 << 40) ||
		  host->realloc(inner, NULL, KALLOC_LAYOUT(size + 16, align),
				KALLOC_LAYOUT_UNKNOWN, KALLOC_NOWARN, &b);
	atomic_fetch_sub(&inside, 1);
	if (err) {
		errno = ENOMEM;
		return NULL;
	}
	return (char *)b.ptr + off;
}

static int mock_malloc_free(void *ptr)
{
	return host->free(inner, unshift(ptr), KALLOC_LAYOUT_UNKNOWN);
}

static int mock_malloc_entries(void *state, kalloc_malloc_t *out)
{
	(void)state;
	*out = (kalloc_malloc_t){ mock_malloc, mock_malloc_free, mock_aligned,
				  NULL };
	return KALLOC_OK;
}
#define MOCK_MALLOC_ENTRIES mock_malloc_entries
#elif defined(MOCK_FREE_OWN_LEAKS)
static int mock_malloc_free(void *ptr)
{
	return host->free(inner, ptr, KALLOC_LAYOUT_UNKNOWN);
}

static void mock_free_own(void *ptr)
{
	(void)ptr; /* the fault: the block stays held */
}

static int mock_malloc_entries(void *state, kalloc_malloc_t *out)
{
	(void)state;
	*out = (kalloc_malloc_t){ mock_malloc, mock_malloc_free, NULL,
				  mock_free_own };
	return KALLOC_OK;
}
#define MOCK_MALLOC_ENTRIES mock_malloc_entries
#else
#define MOCK_MALLOC_ENTRIES NULL
#endif

#ifdef MOCK_SILENT_DOUBLE_FREE
#define MOCK_DETECTS KALLOC_DETECT_DOUBLE_FREE
#else
#define MOCK_DETECTS 0
#endif

static size_t mock_usable_size(void *state, const void *ptr)
{
	(void)state;
#ifdef MOCK_SHIFTED
	return shifted_usable(ptr);
#elif defined(MOCK_LEN_PLUS_ONE)
	return host->usable_size(inner, ptr) - 1;
#else
	return host->usable_size(inner, ptr);
#endif
}

#if defined(MOCK_GROW_FAIL_FREES) || defined(MOCK_LOST_REMOTE_FREE)
/* slab's answer: what lets the suite see a block freed or kept */
static int mock_owns(void *state, const void *ptr)
{
	(void)state;
	return host->owns(inner, ptr);
}
#define MOCK_OWNS mock_owns
#else
#define MOCK_OWNS NULL
#endif

static const kalloc_plugin_ops_t ops = {
	.init = mock_init,
	.fini = mock_fini,
	.realloc = mock_realloc,
	.usable_size = mock_usable_size,
	.owns = MOCK_OWNS,
	.atfork_child = MOCK_ATFORK_CHILD,
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
	.malloc_entries = MOCK_MALLOC_ENTRIES,
};

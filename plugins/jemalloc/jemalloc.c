/*
 * jemalloc: jemalloc's non-standard API as a backend.
 *
 * Every block is created by malloc/mallocx/rallocx/xallocx with
 * r = req_for(layout), and the plugin keeps one invariant:
 *
 *     the block's size class == nallocx(r.size, r.flags)
 *
 * for the layout it was last returned for.  That is what makes the sized
 * free (sdallocx) correct: jemalloc trusts the size and alignment it is
 * given to find the size class without a lookup, and a wrong class corrupts
 * its bins.  rallocx and mallocx keep the invariant by construction; an
 * xallocx result is only accepted when it lands exactly on that class.
 *
 * ZERO: jemalloc zeroes from the old *usable* size ("the real size prior to
 * reallocation defines the boundary", MALLOCX_ZERO in jemalloc(3)), and not
 * at all on a shrink; kalloc promises zeros from min(old size, new size).
 * The gap between the two is zeroed here.
 *
 * Refuses NOWAIT/ATOMIC: jemalloc may take arena locks and map memory.
 *
 * Debian builds libjemalloc.so.2 with initial-exec TLS (~2.6 KiB): dlopen
 * fails unless the process started with enough static-TLS surplus,
 * GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384.  The core's loader
 * turns that dlopen error into a message saying so.
 *
 * The fast entries.  mallocx and dallocx take jemalloc's slow path for any
 * flags argument (about 190 instructions a pair here, against 70 for its
 * malloc and free).  So requests that need no flag, alignment up to 16
 * and no ZERO, go to jemalloc's own malloc, free and sdallocx(..., 0)
 * (see req_for).  Under the LD_PRELOAD shim "malloc" is the shim: the
 * plugin takes jemalloc's malloc, free and aligned_alloc by dlsym from
 * jemalloc's own handle, and falls back to mallocx/dallocx if that fails.
 * Usable lengths of small requests come from a table filled from nallocx
 * at init.
 */
#include <kalloc/plugin.h>

#include <dlfcn.h>
#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

static char version[96];

static struct {
	/* jemalloc's own malloc, free and aligned_alloc, or mallocx/dallocx */
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*aligned)(size_t align, size_t size);
	/* a flagless request of max(size, align) bytes serves alignments up
	 * to this: 16 when every class above 8 bytes is a multiple of 16 */
	size_t plain_align;
	kalloc_class_table_t classes; /* nallocx(n, 0) */
} je;

/*
 * What a layout is allocated (and freed) as: a size and mallocx flags.
 * Size classes up to 8 bytes are 8-aligned and every larger class is a
 * multiple of 16, so up to 16 no alignment flag is needed: a size raised
 * to the alignment lands on an aligned class (a layout {4, 16} is asked
 * as 16 bytes).  That keeps jemalloc's fast path.  A pure function of the
 * layout: sdallocx must see the same value.
 */
struct req {
	size_t size;
	int flags;
};

static struct req req_for(kalloc_layout_t l)
{
	if (likely(l.align <= je.plain_align))
		return (struct req){ l.size < l.align ? l.align : l.size, 0 };
	return (struct req){ l.size, MALLOCX_LG_ALIGN(__builtin_ctzl(l.align)) };
}

static size_t nallocx0(size_t n)
{
	return nallocx(n, 0);
}

/* The usable length of a flagless request of n bytes. */
static size_t plain_len(size_t n)
{
	return kalloc_class_len(&je.classes, n, nallocx0);
}

/* The usable length of a request: the size class it lands on. */
static size_t class_of(struct req r)
{
	return r.flags ? nallocx(r.size, r.flags) : plain_len(r.size);
}

static void *mallocx_plain(size_t n)
{
	return mallocx(n, 0);
}

static void dallocx_plain(void *p)
{
	dallocx(p, 0);
}

/* align a power of two, size <= PTRDIFF_MAX (mallocx: undefined above) */
static void *mallocx_aligned(size_t align, size_t size)
{
	return mallocx(size, MALLOCX_LG_ALIGN(__builtin_ctzl(align)));
}

/* Fills je's table, and jemalloc's own malloc and free when they are found
 * and really jemalloc's. */
static void setup_entries(void)
{
	je.plain_align = kalloc_class_table_16(nallocx0) ? 16 : 8;
	kalloc_class_table_fill(&je.classes, nallocx0);

	/* The library that holds mallocx, asked for its own malloc/free. */
	je.malloc = mallocx_plain;
	je.free = dallocx_plain;
	je.aligned = mallocx_aligned;
	Dl_info info;
	void *h = NULL;
	if (dladdr((void *)mallocx, &info) && info.dli_fname)
		h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
	if (!h)
		return;
	void *(*m)(size_t);
	void (*f)(void *);
	void *(*al)(size_t, size_t);
	*(void **)&m = dlsym(h, "malloc");
	*(void **)&f = dlsym(h, "free");
	*(void **)&al = dlsym(h, "aligned_alloc");
	dlclose(h); /* the plugin's own dependency: stays loaded */
	Dl_info mi, fi, ai;
	if (!m || !f || !al || !dladdr((void *)m, &mi) ||
	    !dladdr((void *)f, &fi) || !dladdr((void *)al, &ai) ||
	    mi.dli_fbase != info.dli_fbase || fi.dli_fbase != info.dli_fbase ||
	    ai.dli_fbase != info.dli_fbase)
		return;
	/*
	 * Valgrind's memcheck replaces malloc and free inside libjemalloc too,
	 * while mallocx and sdallocx stay jemalloc's.  jemalloc's malloc hands
	 * back the block its thread cache got last; a replaced one cannot
	 * (valgrind never serves jemalloc's memory).
	 */
	void *last = mallocx(1, 0);
	dallocx(last, 0);
	void *p = m(1);
	if (p == last) {
		je.malloc = m;
		je.free = f;
		je.aligned = al;
	}
	f(p);
}

/* Fills je, once. */
static void setup(void)
{
	setup_entries();
}

static int je_init(const kalloc_host_t *host, const char *options,
		   void **state)
{
	(void)host;
	(void)options;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, setup);
	const char *v = NULL;
	size_t len = sizeof(v);
	if (mallctl("version", &v, &len, NULL, 0) != 0 || !v)
		v = JEMALLOC_VERSION;
	/* "5.3.0-0-g<hash>": the release is enough */
	snprintf(version, sizeof(version), "jemalloc %.*s", (int)strcspn(v, "-"), v);
	*state = NULL;
	return KALLOC_OK;
}

static void je_fini(void *state)
{
	(void)state;
}

/* A free, sized (sdallocx) when the layout is known. */
static void release(void *ptr, kalloc_layout_t old)
{
	if (old.align) {
		struct req r = req_for(old);
		sdallocx(ptr, r.size, r.flags);
	} else {
		je.free(ptr);
	}
}

/* Zeroes [from, to) of p when not empty. */
static void zero_range(void *p, size_t from, size_t to)
{
	if (from < to)
		memset((char *)p + from, 0, to - from);
}

/*
 * A block not aligned to the new alignment: allocate, copy, free.  The new
 * block comes zeroed from mallocx under ZERO, so "kept content, then
 * zeros" holds once `kept` bytes are copied over it.
 */
static void *move(void *ptr, kalloc_layout_t l, kalloc_layout_t old, int f)
{
	void *p = mallocx(req_for(l).size, f);
	if (!p)
		return NULL;
	size_t old_len = old.align ? old.size : sallocx(ptr, 0);
	memcpy(p, ptr, old_len < l.size ? old_len : l.size);
	release(ptr, old);
	return p;
}

static int je_realloc(void *state, void *ptr, kalloc_layout_t l,
		      kalloc_layout_t old, kalloc_flags_t flags,
		      kalloc_buf_t *out)
{
	(void)state;
	if (l.size == 0) {
		release(ptr, old);
		return KALLOC_OK;
	}
	struct req r = req_for(l);
	int f = r.flags;
	int zero = (flags & KALLOC_ZERO) ? MALLOCX_ZERO : 0;
	size_t want = class_of(r); /* the class the result will have */
	void *p;
	if (!ptr) {
		p = f | zero ? mallocx(r.size, f | zero) : je.malloc(r.size);
	} else if (!kalloc_aligned(ptr, l.align)) {
		p = move(ptr, l, old, f | zero);
	} else {
		size_t old_usable = 0;
		if (zero)
			old_usable = old.align ? class_of(req_for(old))
					       : sallocx(ptr, 0);
		p = NULL;
		/* Growing: try in place first (large extents can expand). */
		if (old.align && l.size > old.size &&
		    xallocx(ptr, r.size, 0, f | zero) == want)
			p = ptr;
		if (!p)
			p = rallocx(ptr, r.size, f | zero);
		if (p && zero) {
			size_t old_size = old.align ? old.size : old_usable;
			size_t kept = old_size < l.size ? old_size : l.size;
			zero_range(p, kept, old_usable < want ? old_usable : want);
		}
	}
	if (!p)
		return KALLOC_ENOMEM;
	*out = (kalloc_buf_t){ p, want };
	return KALLOC_OK;
}

/*
 * The fast entries (jemalloc has one heap per process): realloc's fresh
 * allocation with no flag, and release.  A {4, 16} layout is asked as 16
 * bytes (req_for): jemalloc's 8-byte class is only 8-aligned.
 */
static __attribute__((noinline)) kalloc_buf_t fast_alloc_other(kalloc_layout_t l)
{
	struct req r = req_for(l);
	void *p = likely(!r.flags) ? je.malloc(r.size) : mallocx(r.size, r.flags);
	if (!p) {
		errno = ENOMEM;
		return (kalloc_buf_t){ NULL, 0 };
	}
	return (kalloc_buf_t){ p, class_of(r) };
}

/* A small flagless request that succeeds: malloc and the class table. */
static kalloc_buf_t je_fast_alloc(void *state, kalloc_layout_t l)
{
	(void)state;
	if (unlikely(l.align > je.plain_align || l.size > je.classes.max))
		return fast_alloc_other(l);
	/* the length first: nothing but it is kept across the call */
	size_t n = l.size < l.align ? l.align : l.size;
	size_t len = je.classes.len[(n + 7) >> 3];
	void *p = je.malloc(n);
	if (likely(p))
		return (kalloc_buf_t){ p, len };
	errno = ENOMEM; /* (a memory tool's malloc may leave it) */
	return (kalloc_buf_t){ NULL, 0 };
}

/* jemalloc cannot tell its blocks from others: every pointer is freed.
 */
static int je_fast_free(void *state, void *ptr, kalloc_layout_t old)
{
	(void)state;
	release(ptr, old); /* keeps errno as the library's free does */
	return 1;
}

static size_t je_usable_size(void *state, const void *ptr)
{
	(void)state;
	return sallocx((void *)ptr, 0);
}

static int je_stats(void *state, kalloc_stats_fn fn, void *ctx)
{
	(void)state;
	uint64_t epoch = 1;
	size_t len = sizeof(epoch);
	mallctl("epoch", &epoch, &len, &epoch, len);
	static const char *const keys[] = { "allocated", "active", "metadata",
					    "resident", "mapped", "retained" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char name[32];
		size_t v;
		len = sizeof(v);
		snprintf(name, sizeof(name), "stats.%s", keys[i]);
		if (mallctl(name, &v, &len, NULL, 0) == 0)
			fn(ctx, "jemalloc", keys[i], v);
	}
	return 0;
}

static const kalloc_plugin_ops_t ops = {
	.init = je_init,
	.fini = je_fini,
	.realloc = je_realloc,
	.usable_size = je_usable_size,
	.stats = je_stats,
};

/*
 * The malloc entries: jemalloc's malloc, free and aligned_alloc (see
 * setup_entries), with requests under 16 bytes raised to 16 (its 8-byte
 * class is 8-aligned), when every larger class is a multiple of 16; above
 * PTRDIFF_MAX, ENOMEM here (under valgrind its malloc is the tool's, which
 * leaves errno).
 */
static void *je_malloc16(size_t size)
{
	if (size > PTRDIFF_MAX)
		return kalloc_malloc_too_big();
	return je.malloc(size < 16 ? 16 : size);
}

static int je_free1(void *ptr)
{
	je.free(ptr);
	return 1;
}

/* posix_memalign's block: jemalloc's aligned_alloc (or mallocx), without
 * the usable length the fast alloc looks up (nallocx).  Its free takes
 * the block unsized (no size class to trust). */
static void *je_aligned(size_t align, size_t size)
{
	if (size > PTRDIFF_MAX)
		return kalloc_malloc_too_big();
	void *p = je.aligned(align, size);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

static int malloc_entries(void *state, kalloc_malloc_t *out)
{
	(void)state;
	if (je.plain_align < 16)
		return KALLOC_ENOTSUP;
	*out = (kalloc_malloc_t){ je_malloc16, je_free1, je_aligned,
				  je.free };
	return KALLOC_OK;
}

static const kalloc_plugin_fast_t fast = {
	.alloc = je_fast_alloc,
	.free = je_fast_free,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = "jemalloc",
	.version = version,
	.description = "jemalloc (mallocx, rallocx, xallocx, sdallocx)",
	.flags = KALLOC_ZERO,
	.max_align = (size_t)1 << 30,
	.max_size = PTRDIFF_MAX,
	.ops = &ops,
	.fast = &fast,
	.malloc_entries = malloc_entries,
};

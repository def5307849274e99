/*
 * mimalloc: Microsoft's mimalloc through its mi_* API, as a reference
 * backend.
 *
 * Every request goes through the _aligned entry points.  mi_realloc_aligned
 * keeps a block in place only when it fits, wastes at most half and is
 * aligned, and otherwise allocates, copies and frees; but it keeps the old
 * pointer's offset modulo the alignment, assuming the block was made with
 * that alignment.  kalloc allows a larger one, so a block not aligned to the
 * new alignment is moved here instead.
 *
 * ZERO: mi_zalloc_aligned clears the whole usable block.  mi_rezalloc_aligned
 * clears only [old usable size, new size) and only when the block moved: the
 * slack before (old size to old usable size) and the tail after (new size
 * to new usable size) are cleared here, to keep "kept content, then zeros".
 *
 * mimalloc has no sized free; mi_free_size_aligned is mi_free with checks
 * in debug builds, and is used when the layout is known.
 *
 * Refuses NOWAIT/ATOMIC: mimalloc maps memory on demand.  Under valgrind
 * it runs on valgrind's malloc (see "Under valgrind" below).
 *
 * The fast entries: a layout aligned to 16 or less is asked of mi_malloc
 * as max(size, align) bytes when every size class above 8 bytes is a
 * multiple of 16 and comes 16-aligned (checked at init); unknown layouts
 * are freed with mi_free.
 *
 * libmimalloc.so.2 is built with initial-exec TLS too, but needs only 9
 * bytes of it, which the default static-TLS surplus holds: no tunable is
 * needed (a unit test checks).  If a process has used up that surplus, the
 * core's loader names the tunable to set, as for jemalloc.
 */
#include <kalloc/plugin.h>

#include <dlfcn.h>
#include <errno.h>
#include <mimalloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char version[64];

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

static struct {
	/* mi_malloc(max(size, align)) serves alignments up to this (0: the
	 * plain path is off, as when replaced) */
	size_t align;
	kalloc_class_table_t classes; /* mi_good_size */
} plain;

/*
 * Under valgrind.  Debian's libmimalloc also exports malloc, free, realloc
 * and malloc_usable_size, as aliases of mi_malloc, mi_free, mi_realloc and
 * mi_usable_size (one address, two names), and valgrind replaces that
 * family in it: those mi_* are then valgrind's malloc, while mi_*_aligned
 * still give mimalloc blocks that valgrind's free rejects.  Seen at init by
 * mi_usable_size not knowing a block mi_malloc_aligned just gave (the probe
 * block is left alone: no free reaches mimalloc then).  The plugin then
 * serves everything from the replaced family, like the libc backend, with
 * libmimalloc's posix_memalign (replaced too) for large alignments.
 */
static struct {
	int on;
	int broken; /* replaced, but no aligned allocation of that family */
	int (*posix_memalign)(void **, size_t, size_t);
} replaced;

/* The host's memalign aborts above this (valgrind: 16 MiB). */
#define REPLACED_MAX_ALIGN ((size_t)1 << 24)
/* What mi_malloc (the host's malloc when replaced) aligns to. */
#define MALLOC_ALIGN 16

/* Sets replaced.on, or replaced.broken when neither family fits.  Once. */
static void check_replaced(void)
{
	void *probe = mi_malloc_aligned(100, 64);
	if (probe && mi_usable_size(probe) >= 100) {
		mi_free(probe);
		return;
	}
	Dl_info info;
	void *h = NULL;
	if (dladdr((void *)mi_malloc, &info) && info.dli_fname)
		h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
	if (h)
		*(void **)&replaced.posix_memalign = dlsym(h, "posix_memalign");
	void *p = NULL;
	if (!replaced.posix_memalign || replaced.posix_memalign(&p, 64, 100) ||
	    mi_usable_size(p) < 100) {
		replaced.broken = 1;
		return;
	}
	mi_free(p);
	replaced.on = 1;
}

/*
 * Sets plain (once, after check_replaced): the alignment mi_malloc gives,
 * 16 when every class above 8 bytes is a multiple of 16 and a block of
 * each comes 16-aligned, else 8.
 */
static void plain_setup(void)
{
	if (replaced.on || replaced.broken)
		return;
	kalloc_class_table_fill(&plain.classes, mi_good_size);
	if (!plain.classes.max)
		return; /* no table: no plain path */
	size_t align = kalloc_class_table_16(mi_good_size) ? 16 : 8;
	for (size_t n = 16; n <= KALLOC_CLASS_TABLE_MAX && align == 16; n += 16) {
		void *p = mi_malloc(n);
		if (!p || !kalloc_aligned(p, 16))
			align = 8;
		mi_free(p);
	}
	plain.align = align;
}

static void setup(void)
{
	check_replaced();
	plain_setup();
}

static int plug_init(const kalloc_host_t *host, const char *options,
		     void **state)
{
	(void)options;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, setup);
	if (replaced.broken) {
		host->log("mimalloc", "mi_free is replaced by the host's free "
			  "(valgrind?) and no matching aligned allocation was "
			  "found; refusing to load");
		return KALLOC_ELOAD;
	}
	int v = mi_version();
	snprintf(version, sizeof(version), "mimalloc %d.%d.%d%s", v / 100,
		 v / 10 % 10, v % 10,
		 replaced.on ? " (replaced by the host's malloc)" : "");
	*state = NULL;
	return KALLOC_OK;
}

static void plug_fini(void *state)
{
	(void)state;
}

/* A free, with the layout when it is known. */
static void release(void *ptr, kalloc_layout_t old)
{
	if (old.align && !replaced.on)
		mi_free_size_aligned(ptr, old.size, old.align);
	else
		mi_free(ptr);
}

/*
 * The size to ask mimalloc for.  mimalloc 2.0.9's aligned allocation takes a
 * shortcut when the size is a multiple of the alignment, assuming such
 * blocks come aligned, and for alignments of 256 to 1024 they sometimes do
 * not (seen here: 120 misaligned of 13640).  One byte more avoids the
 * shortcut; its other paths check the address.  Later mimalloc releases
 * limit the shortcut to alignments up to 128.
 */
static size_t request(kalloc_layout_t l)
{
	if (l.align > 128 && (l.size & (l.align - 1)) == 0)
		return l.size + 1;
	return l.size;
}

static void zero_range(void *p, size_t from, size_t to)
{
	if (from < to)
		memset((char *)p + from, 0, to - from);
}

/* realloc on the replaced family (see the top). */
static int replaced_realloc(void *ptr, kalloc_layout_t l, kalloc_layout_t old,
			    kalloc_flags_t flags, kalloc_buf_t *out)
{
	if (l.align > REPLACED_MAX_ALIGN)
		return KALLOC_ENOMEM;
	size_t kept = 0;
	void *p = NULL;
	if (ptr) {
		size_t old_size = old.align ? old.size : mi_usable_size(ptr);
		kept = old_size < l.size ? old_size : l.size;
	}
	if (ptr && l.align <= MALLOC_ALIGN) {
		p = mi_realloc(ptr, l.size);
	} else if (ptr && kalloc_aligned(ptr, l.align) &&
		   mi_usable_size(ptr) >= l.size) {
		p = ptr;
	} else {
		if (l.align <= MALLOC_ALIGN)
			p = mi_malloc(l.size);
		else if (replaced.posix_memalign(&p, l.align, l.size))
			p = NULL;
		if (p && ptr) {
			memcpy(p, ptr, kept);
			mi_free(ptr);
		}
	}
	if (!p)
		return KALLOC_ENOMEM;
	size_t len = mi_usable_size(p);
	if (flags & KALLOC_ZERO)
		memset((char *)p + kept, 0, len - kept);
	*out = (kalloc_buf_t){ p, len };
	return KALLOC_OK;
}

static int plug_realloc(void *state, void *ptr, kalloc_layout_t l,
			kalloc_layout_t old, kalloc_flags_t flags,
			kalloc_buf_t *out)
{
	(void)state;
	if (l.size == 0) {
		release(ptr, old);
		return KALLOC_OK;
	}
	if (replaced.on)
		return replaced_realloc(ptr, l, old, flags, out);
	int zero = (flags & KALLOC_ZERO) != 0;
	void *p;
	if (!ptr || !kalloc_aligned(ptr, l.align)) {
		if (l.align <= 8) /* mi_malloc aligns to 8 at least */
			p = zero ? mi_zalloc(l.size) : mi_malloc(l.size);
		else
			p = zero ? mi_zalloc_aligned(request(l), l.align)
				 : mi_malloc_aligned(request(l), l.align);
		if (!p)
			return KALLOC_ENOMEM;
		if (ptr) { /* see the top: mimalloc would keep the offset */
			size_t old_size = old.align ? old.size : mi_usable_size(ptr);
			memcpy(p, ptr, old_size < l.size ? old_size : l.size);
			mi_free(ptr);
		}
		*out = (kalloc_buf_t){ p, mi_usable_size(p) };
		return KALLOC_OK;
	}
	if (!zero) {
		p = mi_realloc_aligned(ptr, request(l), l.align);
		if (!p)
			return KALLOC_ENOMEM;
		*out = (kalloc_buf_t){ p, mi_usable_size(p) };
		return KALLOC_OK;
	}
	size_t old_usable = mi_usable_size(ptr);
	size_t old_size = old.align ? old.size : old_usable;
	size_t kept = old_size < l.size ? old_size : l.size;
	p = mi_rezalloc_aligned(ptr, request(l), l.align);
	if (!p)
		return KALLOC_ENOMEM;
	size_t len = mi_usable_size(p);
	/* mimalloc cleared at most [old_usable, l.size): the rest is ours */
	zero_range(p, kept, old_usable < len ? old_usable : len);
	zero_range(p, old_usable > l.size ? old_usable : l.size, len);
	*out = (kalloc_buf_t){ p, len };
	return KALLOC_OK;
}

/*
 * The fast entries (mimalloc has one heap per process): mi_malloc of
 * max(size, align) bytes while that is aligned, else realloc's way.
 */
/* Every fast allocation but a small one of mi_malloc's that succeeds. */
static __attribute__((noinline)) kalloc_buf_t fast_alloc_other(kalloc_layout_t l)
{
	kalloc_buf_t b = { NULL, 0 };
	if (l.size <= PTRDIFF_MAX &&
	    !plug_realloc(NULL, NULL, l, KALLOC_LAYOUT_UNKNOWN, 0, &b))
		return b;
	errno = ENOMEM; /* mi_malloc's errno above PTRDIFF_MAX is not */
	return (kalloc_buf_t){ NULL, 0 };
}

static kalloc_buf_t plug_fast_alloc(void *state, kalloc_layout_t l)
{
	(void)state;
	if (unlikely(l.align > plain.align || l.size > plain.classes.max))
		return fast_alloc_other(l);
	/* the length first: nothing but it is kept across the call */
	size_t n = l.size < l.align ? l.align : l.size;
	size_t len = plain.classes.len[(n + 7) >> 3];
	void *p = mi_malloc(n);
	if (likely(p))
		return (kalloc_buf_t){ p, len };
	errno = ENOMEM; /* (a memory tool's malloc may leave it) */
	return (kalloc_buf_t){ NULL, 0 };
}

/* mi_free takes any pointer it is given: every pointer is freed. */
static int plug_fast_free(void *state, void *ptr, kalloc_layout_t old)
{
	(void)state;
	release(ptr, old); /* keeps errno as the library's free does */
	return 1;
}

static size_t plug_usable_size(void *state, const void *ptr)
{
	(void)state;
	return mi_usable_size(ptr);
}

static int plug_stats(void *state, kalloc_stats_fn fn, void *ctx)
{
	(void)state;
	size_t elapsed, user, sys, rss, peak_rss, commit, peak_commit, faults;
	mi_process_info(&elapsed, &user, &sys, &rss, &peak_rss, &commit,
			&peak_commit, &faults);
	fn(ctx, "mimalloc", "current_rss", rss);
	fn(ctx, "mimalloc", "peak_rss", peak_rss);
	fn(ctx, "mimalloc", "current_commit", commit);
	fn(ctx, "mimalloc", "peak_commit", peak_commit);
	return 0;
}

static const kalloc_plugin_ops_t ops = {
	.init = plug_init,
	.fini = plug_fini,
	.realloc = plug_realloc,
	.usable_size = plug_usable_size,
	.stats = plug_stats,
};

/*
 * The malloc entries: mi_malloc, mi_free and mi_malloc_aligned, with
 * requests under 16 bytes raised to 16 (its 8-byte class is 8-aligned),
 * when every larger class is a multiple of 16 (plain.align); above
 * PTRDIFF_MAX, ENOMEM here.
 */
static void *plug_malloc16(size_t size)
{
	if (size > PTRDIFF_MAX) /* mi_malloc's errno there is not ENOMEM */
		return kalloc_malloc_too_big();
	return mi_malloc(size < 16 ? 16 : size);
}

static int plug_free1(void *ptr)
{
	mi_free(ptr);
	return 1;
}

/* posix_memalign's block: mi_malloc_aligned of request()'s size (its
 * shortcut misaligns), without the usable length the fast alloc looks up
 * (mi_usable_size). */
static void *plug_aligned(size_t align, size_t size)
{
	void *p = mi_malloc_aligned(request(KALLOC_LAYOUT(size, align)), align);
	if (unlikely(!p))
		errno = ENOMEM; /* (its errno above PTRDIFF_MAX is not) */
	return p;
}

static int malloc_entries(void *state, kalloc_malloc_t *out)
{
	(void)state;
	if (plain.align < 16)
		return KALLOC_ENOTSUP;
	*out = (kalloc_malloc_t){ plug_malloc16, plug_free1, plug_aligned,
				  mi_free };
	return KALLOC_OK;
}

static const kalloc_plugin_fast_t fast = {
	.alloc = plug_fast_alloc,
	.free = plug_fast_free,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = "mimalloc",
	.version = version,
	.description = "mimalloc (mi_malloc_aligned, mi_realloc_aligned), a reference",
	.flags = KALLOC_ZERO,
	.max_align = (size_t)1 << 30,
	.max_size = PTRDIFF_MAX,
	.ops = &ops,
	.fast = &fast,
	.malloc_entries = malloc_entries,
};

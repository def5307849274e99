/*
 * jemalloc: jemalloc's non-standard API as a backend.
 *
 * Every block is created by mallocx/rallocx/xallocx with flags_for(layout),
 * and the plugin keeps one invariant:
 *
 *     the block's size class == nallocx(layout.size, flags_for(layout))
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
 * Only jemalloc's own prefixed-by-convention entry points are called
 * (mallocx...): under the LD_PRELOAD shim, "malloc" is the shim.
 */
#include <kalloc/plugin.h>

#include <jemalloc/jemalloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char version[96];

static int aligned_to(const void *p, size_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

/*
 * The flags a layout is allocated (and freed) with.  Size classes up to 8
 * bytes are 8-aligned and every larger class is a multiple of 16, so up to
 * that natural alignment no alignment flag is needed (and the fast path is
 * kept).  A pure function of the layout: sdallocx must see the same value.
 */
static int flags_for(kalloc_layout_t l)
{
	size_t natural = l.size <= 8 ? 8 : 16;
	if (l.align <= natural)
		return 0;
	return MALLOCX_LG_ALIGN(__builtin_ctzl(l.align));
}

static int je_init(const kalloc_host_t *host, const char *options,
		   void **state)
{
	(void)host;
	(void)options;
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

static void je_free_sized(void *state, void *ptr, kalloc_layout_t old)
{
	(void)state;
	sdallocx(ptr, old.size, flags_for(old));
}

static void release(void *ptr, kalloc_layout_t old)
{
	if (old.align)
		sdallocx(ptr, old.size, flags_for(old));
	else
		dallocx(ptr, 0);
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
	void *p = mallocx(l.size, f);
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
	int f = flags_for(l);
	int zero = (flags & KALLOC_ZERO) ? MALLOCX_ZERO : 0;
	size_t want = nallocx(l.size, f); /* the class the result will have */
	void *p;
	if (!ptr) {
		p = mallocx(l.size, f | zero);
	} else if (!aligned_to(ptr, l.align)) {
		p = move(ptr, l, old, f | zero);
	} else {
		size_t old_usable = 0;
		if (zero)
			old_usable = old.align ? nallocx(old.size, flags_for(old))
					       : sallocx(ptr, 0);
		p = NULL;
		/* Growing: try in place first (large extents can expand). */
		if (old.align && l.size > old.size &&
		    xallocx(ptr, l.size, 0, f | zero) == want)
			p = ptr;
		if (!p)
			p = rallocx(ptr, l.size, f | zero);
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

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = "jemalloc",
	.version = version,
	.description = "jemalloc (mallocx, rallocx, xallocx, sdallocx)",
	.flags = KALLOC_ZERO,
	.max_align = (size_t)1 << 30,
	.max_size = PTRDIFF_MAX,
	.init = je_init,
	.fini = je_fini,
	.realloc = je_realloc,
	.usable_size = je_usable_size,
	.free_sized = je_free_sized,
	.stats = je_stats,
};

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
 * Refuses NOWAIT/ATOMIC: mimalloc maps memory on demand.
 *
 * libmimalloc.so.2 is built with initial-exec TLS too, but needs only 9
 * bytes of it, which the default static-TLS surplus holds: no tunable is
 * needed (a unit test checks).  If a process has used up that surplus, the
 * core's loader names the tunable to set, as for jemalloc.
 */
#include <kalloc/plugin.h>

#include <mimalloc.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static char version[32];

/*
 * Debian's libmimalloc also exports malloc and free, and mi_free *is* free
 * there (one address, two names); valgrind replaces free in any library
 * that exports it, so under valgrind mi_free is valgrind's free and every
 * block would go to the wrong allocator.  Seen by mi_usable_size (the same
 * as malloc_usable_size) not knowing a block mi_malloc_aligned just gave.  The probe
 * block is then left alone: no free can reach mimalloc.
 */
static int entry_points_replaced(void)
{
	void *probe = mi_malloc_aligned(100, 64); /* mi_malloc = malloc too */
	if (!probe || mi_usable_size(probe) < 100)
		return 1;
	mi_free(probe);
	return 0;
}

static int plug_init(const kalloc_host_t *host, const char *options,
		   void **state)
{
	(void)options;
	if (entry_points_replaced()) {
		host->log("mimalloc", "mimalloc's free is replaced by the host's "
			  "(valgrind replaces libmimalloc's malloc/free, which "
			  "mi_free shares); refusing to load");
		return KALLOC_ELOAD;
	}
	int v = mi_version();
	snprintf(version, sizeof(version), "mimalloc %d.%d.%d", v / 100,
		 v / 10 % 10, v % 10);
	*state = NULL;
	return KALLOC_OK;
}

static void plug_fini(void *state)
{
	(void)state;
}

static void plug_free_sized(void *state, void *ptr, kalloc_layout_t old)
{
	(void)state;
	mi_free_size_aligned(ptr, old.size, old.align);
}

static int aligned_to(const void *p, size_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
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

static int plug_realloc(void *state, void *ptr, kalloc_layout_t l,
			    kalloc_layout_t old, kalloc_flags_t flags,
			    kalloc_buf_t *out)
{
	(void)state;
	if (l.size == 0) {
		if (old.align)
			mi_free_size_aligned(ptr, old.size, old.align);
		else
			mi_free(ptr);
		return KALLOC_OK;
	}
	int zero = (flags & KALLOC_ZERO) != 0;
	void *p;
	if (!ptr || !aligned_to(ptr, l.align)) {
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

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = "mimalloc",
	.version = version,
	.description = "mimalloc (mi_malloc_aligned, mi_realloc_aligned), a reference",
	.flags = KALLOC_ZERO,
	.max_align = (size_t)1 << 30,
	.max_size = PTRDIFF_MAX,
	.init = plug_init,
	.fini = plug_fini,
	.realloc = plug_realloc,
	.usable_size = plug_usable_size,
	.free_sized = plug_free_sized,
	.stats = plug_stats,
};

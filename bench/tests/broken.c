/*
 * A deliberately broken backend, for the bench's own tests: it proves that
 * kalloc-bench fails a subject that hands out bad memory instead of timing
 * it.  Built twice (never installed):
 *
 *   BROKEN_OVERLAP   every allocation returns the same block, so blocks
 *                    overlap and the workloads' tags get overwritten;
 *   BROKEN_MISALIGN  a bump allocator that ignores layout.align beyond 16
 *                    (and never frees), so aligned requests come back
 *                    misaligned.
 *
 * Memory comes from one mmap'd arena; nothing here calls malloc.
 */
#include <kalloc/plugin.h>

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA ((size_t)1 << 30)
#define BLOCK_MAX ((size_t)1 << 20)

static unsigned char *arena;
#ifndef BROKEN_OVERLAP
static _Atomic size_t used;
#endif

static int broken_init(const kalloc_host_t *host, const char *options,
		       void **state)
{
	(void)host, (void)options;
	void *p = mmap(NULL, ARENA, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return KALLOC_ELOAD;
	arena = p;
	*state = NULL;
	return KALLOC_OK;
}

static void broken_fini(void *state)
{
	(void)state;
	munmap(arena, ARENA);
}

static void *take(size_t size)
{
#ifdef BROKEN_OVERLAP
	(void)size;
	return arena + 64;
#else
	/* slots are multiples of 32 and the block starts 16 bytes in: always
	 * 16-aligned, on purpose never 32-aligned */
	size_t rounded = (size + 16 + 31) & ~(size_t)31;
	size_t at = atomic_fetch_add(&used, rounded);
	if (at + rounded > ARENA)
		return NULL;
	return arena + at + 16;
#endif
}

static int broken_realloc(void *state, void *ptr, kalloc_layout_t l,
			  kalloc_layout_t old, kalloc_flags_t flags,
			  kalloc_buf_t *out)
{
	(void)state, (void)flags;
	if (l.size == 0)
		return KALLOC_OK; /* never freed */
	void *p = take(l.size);
	if (!p)
		return KALLOC_ENOMEM;
	if (ptr && p != ptr)
		memmove(p, ptr, old.size < l.size ? old.size : l.size);
	*out = (kalloc_buf_t){ p, l.size };
	return KALLOC_OK;
}

static size_t broken_usable_size(void *state, const void *ptr)
{
	(void)state, (void)ptr;
	return 0;
}

static const kalloc_plugin_ops_t ops = {
	.init = broken_init,
	.fini = broken_fini,
	.realloc = broken_realloc,
	.usable_size = broken_usable_size,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
#ifdef BROKEN_OVERLAP
	.name = "broken_overlap",
#else
	.name = "broken_misalign",
#endif
	.version = "0",
	.description = "a broken backend for kalloc-bench's tests",
	.flags = 0,
	.max_align = 4096,
	.max_size = BLOCK_MAX,
	.ops = &ops,
};

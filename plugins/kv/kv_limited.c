/*
 * kv-limited: a test-only small backend for kv's tests, never installed and
 * not named kalloc-*.so, so no plugin path scan lists it.  It serves libc's
 * blocks but declares a 64 KiB size limit and page-sized alignments, so the
 * core refuses anything larger: kv's fall back to page then shows on a real
 * failure of its small backend, without fault injection.
 */
#include <kalloc/plugin.h>

#include <stddef.h>

static const kalloc_host_t *host;
static kalloc_t *libc;

static int limited_init(const kalloc_host_t *h, const char *options,
			void **state)
{
	(void)options;
	host = h;
	libc = h->get("libc");
	*state = NULL;
	return libc ? KALLOC_OK : KALLOC_ELOAD;
}

static void limited_fini(void *state)
{
	(void)state;
}

static int limited_realloc(void *state, void *ptr, kalloc_layout_t l,
			   kalloc_layout_t old, kalloc_flags_t flags,
			   kalloc_buf_t *out)
{
	(void)state;
	return host->realloc(libc, ptr, l, old, flags | KALLOC_NOWARN, out);
}

static size_t limited_usable_size(void *state, const void *ptr)
{
	(void)state;
	return host->usable_size(libc, ptr);
}

static const kalloc_plugin_ops_t ops = {
	.init = limited_init,
	.fini = limited_fini,
	.realloc = limited_realloc,
	.usable_size = limited_usable_size,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = "kv_limited",
	.version = "1",
	.description = "test-only: libc limited to 64 KiB blocks",
	.flags = KALLOC_ZERO,
	.max_align = 4096,
	.max_size = 65536,
	.ops = &ops,
};

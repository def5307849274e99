/* The services the core hands to plugins (kalloc_host_t). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

/* A plugin's call into another backend: nested, so it is neither
 * instrumented nor counted by kalloc_fail_nth's countdown. */
static int host_realloc(kalloc_t *a, void *ptr, kalloc_layout_t layout,
			kalloc_layout_t old, kalloc_flags_t flags,
			kalloc_buf_t *out)
{
	kalloc__host_depth++;
	int err = kalloc_realloc_at(__builtin_return_address(0), a, ptr, layout,
				    old, flags, out);
	kalloc__host_depth--;
	return err;
}

/* Nested calls are never instrumented (the outer call was), so a backend
 * with a fast table is asked directly: its free does the owner lookup and
 * the free at once. */
static int host_free(kalloc_t *a, void *ptr, kalloc_layout_t old)
{
	if (a->fast)
		return a->fast->free(a->state, ptr, old);
	if (a->ops->owns && a->ops->owns(a->state, ptr) == 0)
		return 0;
	kalloc__host_depth++;
	kalloc_free_at(__builtin_return_address(0), a, ptr, old);
	kalloc__host_depth--;
	return 1;
}

static size_t host_usable_size(kalloc_t *a, const void *ptr)
{
	kalloc__host_depth++;
	size_t n = kalloc_usable_size(a, ptr);
	kalloc__host_depth--;
	return n;
}

/* Formats fmt into a buffer sized to fit, or NULL without memory. */
static char *vformat(const char *fmt, va_list ap)
{
	char *s = NULL;
	return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

static void host_log(const char *plugin, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = vformat(fmt, ap);
	va_end(ap);
	kalloc__log(plugin, "%s", msg ? msg : fmt);
	free(msg);
}

__attribute__((noreturn)) static void host_corruption(const char *plugin,
						      const void *ptr,
						      const char *fmt, ...)
{
	/* The heap is suspect: format on the stack, never allocate. */
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kalloc__corruption(plugin, ptr, "%s", msg);
}

static int host_error(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = vformat(fmt, ap);
	va_end(ap);
	int r = kalloc__error(err, "%s", msg ? msg : fmt);
	free(msg);
	return r;
}

const kalloc_host_t kalloc__host = {
	.abi_version = KALLOC_PLUGIN_ABI,
	.struct_size = sizeof(kalloc_host_t),
	.get = kalloc_get,
	.realloc = host_realloc,
	.free = host_free,
	.usable_size = host_usable_size,
	.owns = kalloc_owns,
	.direct = kalloc_direct,
	.info = kalloc_info,
	.options = kalloc__plugin_options,
	.tools = kalloc__tools,
	.log = host_log,
	.corruption = host_corruption,
	.error = host_error,
	.malloc_entries = kalloc_malloc_entries,
	.foreign_free = kalloc__foreign_free,
};

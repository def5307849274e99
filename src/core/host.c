/* The services the core hands to plugins (kalloc_host_t). */
#include "internal.h"

#include <stdio.h>

/* A plugin's call into another backend: nested, so kalloc_fail_nth's
 * countdown keeps counting the user's calls only. */
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

static int host_alloc(kalloc_t *a, kalloc_layout_t layout,
		      kalloc_flags_t flags, kalloc_buf_t *out)
{
	kalloc__host_depth++;
	int err = kalloc_alloc(a, layout, flags, out);
	kalloc__host_depth--;
	return err;
}

/*
 * Nested calls are never instrumented (the outer call was), so a backend
 * with direct entries is asked directly: its direct_free does the owner
 * lookup and the free at once.
 */
static int host_free_owned(kalloc_t *a, void *ptr, kalloc_layout_t old)
{
	if (a->direct_free)
		return a->direct_free(ptr);
	if (a->owns && a->owns(a->state, ptr) == 0)
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

static long host_option(const char *name, long def)
{
	return kalloc__option_long(name, def);
}

static void host_log(const char *plugin, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kalloc__log(plugin, "%s", msg);
}

__attribute__((noreturn)) static void host_corruption(const char *plugin, const void *ptr,
			    const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kalloc__corruption(plugin, ptr, "%s", msg);
}

static int host_error(int err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return kalloc__error(err, "%s", msg);
}

const kalloc_host_t kalloc__host = {
	.abi_version = KALLOC_PLUGIN_ABI,
	.struct_size = sizeof(kalloc_host_t),
	.get = kalloc_get,
	.realloc = host_realloc,
	.usable_size = host_usable_size,
	.owns = kalloc_owns,
	.option = host_option,
	.option_str = kalloc__env,
	.log = host_log,
	.corruption = host_corruption,
	.error = host_error,
	.alloc = host_alloc,
	.free_owned = host_free_owned,
};

/* The services the core hands to plugins (kalloc_host_t). */
#include "internal.h"

#include <stdio.h>

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

const kalloc_host_t kalloc__host = {
	.abi_version = KALLOC_PLUGIN_ABI,
	.struct_size = sizeof(kalloc_host_t),
	.get = kalloc_get,
	.realloc = kalloc_realloc,
	.usable_size = kalloc_usable_size,
	.owns = kalloc_owns,
	.option = host_option,
	.log = host_log,
	.corruption = host_corruption,
};

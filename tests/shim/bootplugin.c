/*
 * kalloc-shimboot.so: a test backend whose init allocates through malloc,
 * from several threads, more than the shim's bootstrap arena holds, and
 * calls dlopen meanwhile -- what real start-ups do (dlopen, getenv, a
 * library's own init).  Under the shim all of it runs while the backend is
 * being opened, so it must be served by the bootstrap arena and the shim's
 * mappings.  The blocks are published in `shimboot_blocks` for
 * test_bootstrap.c to check, realloc and free once the shim is up.
 *
 * Breaks the plugin rule "never call malloc" on purpose; it forwards the
 * real work to the libc backend through the host.
 */
#include <kalloc/plugin.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BLOCKS 512

struct shimboot_block {
	unsigned char *p;
	size_t size;
	unsigned char seed;
};

KALLOC_PLUGIN_EXPORT struct shimboot_block shimboot_blocks[BLOCKS];
KALLOC_PLUGIN_EXPORT int shimboot_count;
KALLOC_PLUGIN_EXPORT int shimboot_dlopen_ok;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const kalloc_host_t *host;
static kalloc_t *libc;

static void record(unsigned char *p, size_t size, unsigned char seed)
{
	if (!p)
		return;
	memset(p, seed, size);
	pthread_mutex_lock(&lock);
	if (shimboot_count < BLOCKS)
		shimboot_blocks[shimboot_count++] =
			(struct shimboot_block){ p, size, seed };
	pthread_mutex_unlock(&lock);
}

static void *worker(void *arg)
{
	unsigned char seed = (unsigned char)(uintptr_t)arg;
	for (int i = 0; i < 60; i++) {
		size_t n = (size_t)(i * 37 % 900) + 1;
		record(malloc(n), n, seed);
		free(malloc(n)); /* a no-op in the arena */
	}
	void *h = dlopen("libm.so.6", RTLD_NOW);
	if (h) {
		__atomic_add_fetch(&shimboot_dlopen_ok, 1, __ATOMIC_RELAXED);
		dlclose(h);
	}
	return NULL;
}

static int boot_init(const kalloc_host_t *h, const char *options,
		     void **state)
{
	(void)options;
	host = h;
	libc = host->get("libc");
	if (!libc)
		return KALLOC_ELOAD;
	pthread_t t[4];
	int started = 0;
	for (int i = 0; i < 4; i++)
		started += pthread_create(&t[i], NULL, worker,
					  (void *)(uintptr_t)(i + 1)) == 0;
	record(calloc(100, 3), 300, 0x11);
	unsigned char *grown = malloc(10);
	memset(grown, 0x22, 10);
	grown = realloc(grown, 5000); /* an arena block moving in the arena */
	record(grown, 5000, 0x22);
	void *al = NULL;
	if (posix_memalign(&al, 4096, 3000) == 0)
		record(al, 3000, 0x33);
	/* more than the arena: the rest comes from the shim's mappings */
	for (int i = 0; i < 3; i++)
		record(malloc(700 << 10), 700 << 10, (unsigned char)(0x44 + i));
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	*state = libc;
	return KALLOC_OK;
}

static void boot_fini(void *state)
{
	(void)state;
}

static int boot_realloc(void *state, void *ptr, kalloc_layout_t l,
			kalloc_layout_t old, kalloc_flags_t flags,
			kalloc_buf_t *out)
{
	(void)state;
	return host->realloc(libc, ptr, l, old, flags, out);
}

static size_t boot_usable_size(void *state, const void *ptr)
{
	(void)state;
	return host->usable_size(libc, ptr);
}

static const kalloc_plugin_ops_t ops = {
	.init = boot_init,
	.fini = boot_fini,
	.realloc = boot_realloc,
	.usable_size = boot_usable_size,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = "shimboot",
	.version = "test",
	.description = "test fixture: allocates through malloc during init",
	.flags = KALLOC_ZERO,
	.max_align = 4096,
	.max_size = PTRDIFF_MAX,
	.ops = &ops,
};

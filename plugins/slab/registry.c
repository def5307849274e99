/*
 * The registry of our mappings, and the system calls that make them.
 *
 * Two bitmaps of one bit per 4 MiB granule of the 47-bit user address space
 * (4 MiB of lazily-backed address space each; only the pages covering
 * granules in use ever become resident).  A bit is set while the granule
 * starts a slab chunk (map REG_CHUNK) or a large mapping (REG_LARGE) of
 * ours; its header (struct chunk or struct large) is then mapped at the
 * granule start.  So the free path tells a slab block from anything else
 * with one load.  Readers use relaxed loads: a pointer the
 * caller legitimately holds was registered before it was handed out.
 */
#include "slab.h"

#include <sys/mman.h>
#include <time.h>

#define GRANULES REGISTRY_GRANULES

_Atomic uint64_t *slab_registry[2];

int slab_registry_init(void)
{
	if (slab_registry[REG_CHUNK])
		return KALLOC_OK;
	_Atomic uint64_t *p = mmap(NULL, 2 * (GRANULES / 8),
				   PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				   -1, 0);
	if (p == MAP_FAILED)
		return KALLOC_ENOMEM;
	slab_registry[REG_LARGE] = p + GRANULES / 64;
	slab_registry[REG_CHUNK] = p;
	return KALLOC_OK;
}

void slab_register(int map, const void *granule, bool on)
{
	uint64_t g = (uintptr_t)granule >> CHUNK_SHIFT;
	uint64_t bit = (uint64_t)1 << (g % 64);
	if (on)
		atomic_fetch_or_explicit(&slab_registry[map][g / 64], bit,
					 memory_order_release);
	else
		atomic_fetch_and_explicit(&slab_registry[map][g / 64], ~bit,
					  memory_order_release);
}

void *slab_map_aligned(size_t len)
{
	size_t over = len + CHUNK_SIZE - PAGE_SIZE_;
	if (over < len)
		return NULL;
	char *p = mmap(NULL, over, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	char *start = (char *)(((uintptr_t)p + CHUNK_SIZE - 1) &
			       ~(CHUNK_SIZE - 1));
	if (start > p)
		munmap(p, (size_t)(start - p));
	char *end = start + len;
	if (p + over > end)
		munmap(end, (size_t)(p + over - end));
	if (((uintptr_t)start >> CHUNK_SHIFT) >= GRANULES) {
		munmap(start, len); /* beyond what the registry covers */
		return NULL;
	}
	return start;
}

long slab_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

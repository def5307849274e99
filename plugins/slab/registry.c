/*
 * The registry of our mappings, and the system calls that make them.
 *
 * One byte per 4 MiB granule of the 47-bit user address space (32 MiB of
 * lazily-backed address space; only the pages covering granules in use ever
 * become resident, one page per 16 GiB of address space).  A byte is
 * REG_CHUNK while the granule starts a slab chunk, REG_LARGE while it starts
 * a large mapping of ours, REG_NONE otherwise; the header (struct chunk or
 * struct large) is then mapped at the granule start.  So the free path tells
 * a slab block from a large one and from anything else with one byte load
 * (bytes, not bits: no mask to build).  Readers use relaxed loads: a
 * pointer the caller legitimately holds was registered before it was handed
 * out.
 */
#include "slab.h"

#include <sys/mman.h>
#include <time.h>

#define GRANULES REGISTRY_GRANULES

_Atomic uint8_t *slab_registry;

int slab_registry_init(void)
{
	if (slab_registry)
		return KALLOC_OK;
	_Atomic uint8_t *p = mmap(NULL, GRANULES, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
				  -1, 0);
	if (p == MAP_FAILED)
		return KALLOC_ENOMEM;
	slab_registry = p;
	return KALLOC_OK;
}

void slab_register(int kind, const void *granule, bool on)
{
	uint64_t g = (uintptr_t)granule >> CHUNK_SHIFT;
	atomic_store_explicit(&slab_registry[g], (uint8_t)(on ? kind : REG_NONE),
			      memory_order_release);
}

/* Where the next aligned mapping is tried first: just below the last one
 * (the kernel maps top-down), so that most take one mmap, not an mmap
 * and two munmaps of what alignment cut off. */
static _Atomic uintptr_t map_hint;

static void *map_aligned_over(size_t len);

void *slab_map_aligned(size_t len)
{
	uintptr_t span = (len + CHUNK_SIZE - 1) & ~(uintptr_t)(CHUNK_SIZE - 1);
	uintptr_t last = atomic_load_explicit(&map_hint, memory_order_relaxed);
	if (last > span && span >= len) {
		char *want = (char *)(last - span);
		char *q = mmap(want, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			       -1, 0);
		if (q == want) {
			atomic_store_explicit(&map_hint, (uintptr_t)q,
					      memory_order_relaxed);
			return q;
		}
		if (q != MAP_FAILED) /* an old kernel: the hint not honored */
			munmap(q, len);
	}
	char *start = map_aligned_over(len);
	if (start)
		atomic_store_explicit(&map_hint, (uintptr_t)start,
				      memory_order_relaxed);
	return start;
}

static void *map_aligned_over(size_t len)
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

/* Anonymous mappings at any power-of-two alignment, and the clock. */
#include "page.h"

#include <sys/mman.h>
#include <time.h>

const kalloc_tools_t *page_unmap_tools;

/* The tool's view is reset first: ASan's poison would outlive the
 * mapping, onto the next one there. */
void unmap(uintptr_t addr, size_t len)
{
	if (!len)
		return;
	if (page_unmap_tools)
		page_unmap_tools->open((void *)addr, len);
	munmap((void *)addr, len);
}

#define GUARD 4096 /* at least a page on every system we build for */

void *map_meta(size_t len)
{
	char *p = mmap(NULL, GUARD + len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p, GUARD, PROT_NONE)) {
		munmap(p, GUARD + len);
		return NULL;
	}
	return p + GUARD;
}

void unmap_meta(void *p, size_t len)
{
	unmap((uintptr_t)p - GUARD, GUARD + len);
}

void *map_aligned(size_t len, size_t align, size_t pagesz)
{
	size_t extra = align > pagesz ? align - pagesz : 0;
	void *p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (!extra)
		return p;
	uintptr_t start = (uintptr_t)p;
	uintptr_t aligned = (start + align - 1) & ~(uintptr_t)(align - 1);
	unmap(start, aligned - start);
	unmap(aligned + len, start + len + extra - (aligned + len));
	return (void *)aligned;
}

/* CLOCK_MONOTONIC_COARSE is read from the vDSO: no system call. */
uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Hardening: the freelist secret and the reports of misuse.
 *
 * Free-list links are stored as next ^ secret ^ bswap(slot address) (as the
 * kernel's SLAB_FREELIST_HARDENED), so a use-after-free write or an
 * overflow into a free block yields a link outside its slab, caught when the
 * block is popped.  Free tags (slab.h) catch double frees at the free, the
 * allocation bitmap when a block goes back to its slab; the block
 * geometry catches frees of interior pointers.  Every report goes through
 * host->corruption, which names the pointer and aborts.
 */
#include "slab.h"

#include <sys/random.h>
#include <time.h>

uintptr_t slab_secret;
uintptr_t slab_tag_key;

void slab_secret_init(void)
{
	if (slab_secret)
		return;
	uint64_t v[2] = { 0, 0 };
	if (getrandom(v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^
		       (uint64_t)(uintptr_t)&v ^ (uint64_t)ts.tv_sec << 32;
		v[1] = (v[0] ^ (uint64_t)ts.tv_sec) * 0xbf58476d1ce4e5b9u;
	}
	slab_secret = (uintptr_t)(v[0] | 1); /* never 0: links never read as-is */
	slab_tag_key = (uintptr_t)(v[1] | 1); /* never 0: a tag is never p */
}

void slab_double_free(const void *p, size_t size)
{
	slab_host->corruption("slab", p, "double free of a %zu-byte block", size);
}

/* Names the block in front of the spoiled one too: an overflow of that
 * block is the commonest way a free block's link gets written. */
void slab_corrupt_list(const void *slot, const void *next)
{
	if (slab_in_chunk(slot)) {
		const struct slab *s = slab_of(chunk_of(slot), slot);
		int64_t i = slab_block_index(s, slot);
		if (i > 0)
			slab_host->corruption(
				"slab", slot, "free list corrupted: the free "
				"block's link decodes to %p, outside its slab "
				"(use after free of it, or an overflow of the "
				"%u-byte block before it, at %p)", next, s->size,
				(const void *)((const char *)slot - s->size));
	}
	slab_host->corruption("slab", slot,
			      "free list corrupted: the free block's link decodes "
			      "to %p, outside its slab (use after free or overflow "
			      "into a freed block)", next);
}

void slab_written_after_free(const void *b)
{
	const struct slab *s = slab_of(chunk_of(b), b);
	slab_host->corruption("slab", b,
			      "free list corrupted: the freed %u-byte block was "
			      "written after its free (use after free of it, or "
			      "an overflow of the block before it, at %p)",
			      s->size, (const void *)((const char *)b - s->size));
}

void slab_bad_free(const void *p)
{
	/* a memory tool reports it too, with what it knows of the block p
	 * points into (its free of p finds no block starting there) */
	if (slab_tool)
		slab_tool->free((void *)p);
	if (!slab_registered(p) && slab_large_was_freed(p))
		slab_host->corruption("slab", p, "double free of a large block "
				      "(its mapping was already given back)");
	if (!slab_registered(p) || (slab_in_large(p) && !slab_in_large_map(p)))
		slab_host->corruption("slab", p,
				      "free of a pointer that slab did not allocate");
	struct chunk *c = chunk_of(p);
	if (slab_in_large(p)) {
		const struct large *l = (const struct large *)c;
		slab_host->corruption("slab", p,
				      "free of a pointer %zu bytes into a "
				      "%zu-byte page-mapped block at %p",
				      (size_t)((const char *)p - large_block(l)),
				      l->usable, (void *)large_block(l));
	}
	struct slab *s = slab_of(c, p);
	if (!s->size)
		slab_host->corruption("slab", p,
				      "free of a pointer into a free slab (double "
				      "free, or never allocated)");
	uintptr_t off = (uintptr_t)p + s->neg_base;
	if ((const char *)p < slab_base(s) || off >= s->limit)
		slab_host->corruption("slab", p,
				      "free of a pointer outside any %u-byte block "
				      "of its slab", s->size);
	size_t inside = off % s->size;
	slab_host->corruption("slab", p,
			      "free of a pointer %zu bytes inside a %u-byte block "
			      "at %p (not the start of a block)", inside, s->size,
			      (void *)((const char *)p - inside));
}

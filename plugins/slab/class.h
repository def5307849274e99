/*
 * Size classes of the slab backend.
 *
 * 16, 32, 48, 64, then 8 classes per power of two up to 32 KiB: in
 * (2^k, 2^(k+1)] the classes are the multiples of 2^(k-3).  So a request
 * above 64 bytes wastes less than 1/8 of its size (at most 12.5%), every
 * power of two is a class, and a power-of-two size is naturally aligned
 * (blocks sit at multiples of their size from a slab start aligned to
 * min(size, SLAB_UNIT), see span_align).
 *
 * Alignment: a request (size, align) with align <= 4096 is served by the
 * class of round_up(size, align).  That class is a multiple of align: when
 * align >= the step of its band, round_up(size, align) is itself a class;
 * otherwise every class of the band is a multiple of the step.
 *
 * A class's blocks live in a span of 1-8 slab units (32 KiB each): the
 * fewest units that hold at least SLAB_MIN_BLOCKS blocks with an unused tail
 * under 1/16 (small units keep the memory a thread holds per class small;
 * 16 KiB units made refills of small classes too frequent).
 * At most SLAB_MAX_BLOCKS blocks (the allocation bitmap's size).  Block
 * index from an offset below 2^32 is the high word of the 128-bit product
 * off * magic, with magic = ceil(2^64 / size); off is a multiple of size iff
 * the low word is below magic (the "direct computation" of a remainder).
 */
#ifndef SLAB_CLASS_H
#define SLAB_CLASS_H

#include <stddef.h>
#include <stdint.h>

#define CLASS_COUNT 76          /* the kmalloc classes: slots 0..75 */
#define CACHE_CLASSES 64        /* object caches' classes (kcache.c) */
#define CLASS_SLOTS (CLASS_COUNT + CACHE_CLASSES)
#define CLASS_MAX 32768u        /* largest class; bigger goes to medium.c */
#define CLASS_MAX_ALIGN 4096u   /* larger alignments go to large.c */
#define CLASS_SMALL_MAX 1024u   /* classes up to here: lookup by size / 8 */
#define SLAB_UNIT_SHIFT 15
#define SLAB_UNIT ((size_t)1 << SLAB_UNIT_SHIFT) /* 32 KiB */
#define SLAB_MAX_SPAN 8                          /* units per span */
#define SLAB_MAX_BLOCKS 2048                     /* bitmap bits per span */
#define SLAB_MIN_BLOCKS 8                        /* blocks per span, wanted */
/* Medium blocks (medium.c): a span of whole units holding one block, for
 * sizes above CLASS_MAX or alignments above CLASS_MAX_ALIGN, up to
 * MEDIUM_MAX bytes aligned to at most a unit.  Their slot is CLASS_MEDIUM,
 * which no class has (no magazine, no heap). */
#define MEDIUM_MAX_UNITS 8u
#define MEDIUM_MAX (MEDIUM_MAX_UNITS * 32768u) /* 256 KiB */
#define CLASS_MEDIUM CLASS_SLOTS
#define MEDIUM_CACHE 8          /* spans a heap keeps for reuse (medium.c) */
#define MEDIUM_CACHE_UNITS 48u  /* and their units in all (1.5 MiB) */

struct class_info {
	uint32_t size;    /* block size */
	uint32_t nblocks; /* blocks per span */
	uint64_t magic;   /* ceil(2^64 / size) */
	uint8_t span;     /* slab units per span */
	uint8_t span_align; /* the span starts on a multiple of this many units */
	uint16_t batch;   /* blocks carved into the free list at a time */
};

/* Slots from CLASS_COUNT on are object caches' classes: size 0 until
 * kcache.c sets one up, then fixed. */
extern struct class_info slab_classes[CLASS_SLOTS];
extern uint8_t slab_class_small[CLASS_SMALL_MAX / 8 + 1]; /* by (n + 7) / 8 */
extern uint8_t slab_class_big[CLASS_MAX / 128 + 1];      /* by (n + 127) / 128 */

/* Fills the tables; idempotent. */
void slab_classes_init(void);
/* The geometry of a class of blocks of `size` bytes (16..CLASS_MAX; any
 * size for an object cache's class, at least 8). */
void slab_class_setup(struct class_info *ci, uint32_t size);

/*
 * The class for a request, or -1 when it goes to a page mapping.
 * align is a power of two.
 */
static inline int slab_class_of(size_t size, size_t align)
{
	if (align > CLASS_MAX_ALIGN)
		return -1;
	size_t n = (size + align - 1) & ~(align - 1);
	if (n <= CLASS_SMALL_MAX)
		return slab_class_small[(n + 7) >> 3];
	if (n <= CLASS_MAX)
		return slab_class_big[(n + 127) >> 7];
	return -1;
}

#endif

/* Size class tables (see class.h for the rules they follow). */
#include "class.h"

struct class_info slab_classes[CLASS_SLOTS];
uint8_t slab_class_small[CLASS_SMALL_MAX / 8 + 1];
uint8_t slab_class_big[CLASS_MAX / 128 + 1];

static size_t blocks_in(size_t bytes, uint32_t size)
{
	size_t nb = bytes / size;
	return nb > SLAB_MAX_BLOCKS ? SLAB_MAX_BLOCKS : nb;
}

/* The fewest units holding SLAB_MIN_BLOCKS blocks with a tail under 1/16;
 * else, of the spans holding enough blocks, the one wasting least. */
static unsigned choose_span(uint32_t size)
{
	unsigned best = SLAB_MAX_SPAN;
	size_t best_waste = SIZE_MAX; /* per SLAB_MAX_SPAN units, to compare */
	for (unsigned n = 1; n <= SLAB_MAX_SPAN; n++) {
		size_t bytes = n * SLAB_UNIT;
		size_t nb = blocks_in(bytes, size);
		if (nb < SLAB_MIN_BLOCKS)
			continue;
		size_t waste = bytes - nb * size;
		if (waste * 16 <= bytes)
			return n;
		size_t scaled = waste * SLAB_MAX_SPAN / n;
		if (scaled < best_waste) {
			best_waste = scaled;
			best = n;
		}
	}
	return best;
}

void slab_class_setup(struct class_info *ci, uint32_t size)
{
	unsigned span = choose_span(size);
	size_t nb = blocks_in(span * SLAB_UNIT, size);
	size_t batch = 4096 / size;
	if (batch < 4)
		batch = 4;
	if (batch > 256)
		batch = 256;
	if (batch > nb)
		batch = nb;
	/* a power of two above a unit needs a span aligned to it */
	size_t align = !(size & (size - 1)) && size > SLAB_UNIT ?
			       size / SLAB_UNIT : 1;
	*ci = (struct class_info){
		.size = size,
		.nblocks = (uint32_t)nb,
		.magic = UINT64_MAX / size + 1, /* size > 1 */
		.span = (uint8_t)span,
		.span_align = (uint8_t)align,
		.batch = (uint16_t)batch,
	};
}

void slab_classes_init(void)
{
	uint32_t sizes[CLASS_COUNT];
	unsigned n = 0;
	for (uint32_t s = 16; s <= 64; s += 16)
		sizes[n++] = s;
	for (uint32_t base = 64; base < CLASS_MAX; base *= 2)
		for (uint32_t s = base + base / 8; s <= 2 * base; s += base / 8)
			sizes[n++] = s;

	for (unsigned c = 0; c < CLASS_COUNT; c++)
		slab_class_setup(&slab_classes[c], sizes[c]);

	unsigned c = 0;
	for (size_t i = 0; i < sizeof(slab_class_small); i++) {
		while (slab_classes[c].size < i * 8)
			c++;
		slab_class_small[i] = (uint8_t)c;
	}
	c = 0;
	for (size_t i = 0; i < sizeof(slab_class_big); i++) {
		while (slab_classes[c].size < i * 128)
			c++;
		slab_class_big[i] = (uint8_t)c;
	}
}

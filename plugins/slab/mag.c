/*
 * Magazines: per heap, per kmalloc class, the blocks its thread freed last,
 * handed out again first (slab.h: struct mag, mag_pop; plugin.c's free_in_slab pushes).
 *
 * A block in a magazine is still allocated to its slab (its bitmap bit is
 * set) and carries its free tag.  It may belong to any heap's slab: a
 * thread keeps what it frees, as tcmalloc's thread cache does, and only a
 * spill sorts blocks into local frees (the owner's slab) and remote ones.
 * So a slab whose blocks wait in magazines stays in use until they go back.
 *
 * A magazine holds up to MAG_SLOTS blocks and at most MAG_BYTES of them,
 * four at least, so a thread keeps at most 76 * MAG_BYTES of freed blocks.
 */
#include "slab.h"

#include <string.h>

#define MAG_BYTES (32u << 10)
#define MAG_MIN 4u

void slab_mag_init(struct heap *h)
{
	for (unsigned c = 0; c < CLASS_COUNT; c++) {
		struct mag *m = &h->mag[c];
		uint32_t size = slab_classes[c].size;
		unsigned cap = MAG_BYTES / size;
		m->cap = (uint16_t)(cap > MAG_SLOTS ? MAG_SLOTS :
				    cap < MAG_MIN ? MAG_MIN : cap);
		m->size = size;
		mag_set_count(m, 0);
	}
}

/*
 * Gives the older blocks back to their slabs: the heap's own by local
 * frees; another heap's in runs of consecutive blocks of one slab, each
 * run pushed with one CAS (a consumer thread's magazine holds long runs of
 * its producer's blocks).
 */
void slab_mag_spill(struct heap *h, struct mag *m, unsigned keep, bool nowait)
{
	unsigned n = mag_count(m), out = n - keep;
	struct block **bs = (struct block **)m->slot;
	for (unsigned i = 0; i < out;) {
		struct slab *s = slab_of(chunk_of(bs[i]), bs[i]);
		if (atomic_load_explicit(&s->owner, memory_order_relaxed) == h) {
			uint64_t idx = slab_index(s, (uintptr_t)bs[i] + s->neg_base);
			slab_free_local(h, s, bs[i], idx, nowait);
			i++;
			continue;
		}
		unsigned j = i + 1;
		while (j < out && slab_of(chunk_of(bs[j]), bs[j]) == s)
			j++;
		slab_remote_free_run(s, bs + i, j - i);
		i = j;
	}
	memmove(m->slot, m->slot + out, keep * sizeof(m->slot[0]));
	mag_set_count(m, keep);
}

void slab_mag_flush(struct heap *h)
{
	for (unsigned c = 0; c < CLASS_COUNT; c++)
		if (mag_count(&h->mag[c]))
			slab_mag_spill(h, &h->mag[c], 0, false);
}

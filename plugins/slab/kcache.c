/*
 * Object caches' classes: the plugin's cache table behind kmem_cache.
 * A cache slot's spans start on a multiple of their length rounded up to
 * a power of two, so that the core can check a freed pointer against the
 * class's geometry without asking (info's span_bytes).
 *
 * A cache on slab is a class of blocks of its exact object size, served
 * by the same heaps, fast paths, remote frees and hardening as the
 * kmalloc classes (plugin.c's class entries).  A mergeable cache whose
 * size is a kmalloc class's takes that class, as the kernel merges caches
 * into kmalloc-<size>; otherwise it takes a slot from CLASS_COUNT on,
 * shared with the mergeable caches of the same geometry.
 *
 * Invariants (under kc_lock):
 *   - a slot whose size is 0 was never set up; once set up, its geometry
 *     never changes: heaps may still hold empty slabs of it as current
 *     after its last cache is gone, so it is reused only by a cache of the
 *     same size and alignment;
 *   - refs[c] counts the live caches on class c; a cache slot with refs
 *     > 0 is shared only while mergeable[c] (every cache on it merges).
 */
#include "slab.h"

static pthread_mutex_t kc_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t refs[CLASS_SLOTS];
static uint32_t align_of[CLASS_SLOTS]; /* cache slots: the alignment */
static bool mergeable[CLASS_SLOTS];

int slab_kcache_create(kalloc_layout_t obj, unsigned flags, unsigned *cls)
{
	size_t align = obj.align < 8 ? 8 : obj.align; /* holds a free link */
	size_t size = (obj.size + align - 1) & ~(align - 1);
	if (size < 16)
		size = 16; /* the smallest class (class.h) */
	if (align > CLASS_MAX_ALIGN || size > CLASS_MAX)
		return KALLOC_ENOTSUP; /* the core serves it from large blocks */
	bool merge = flags & KALLOC_PLUGIN_CACHE_MERGE;
	int found = -1;
	pthread_mutex_lock(&kc_lock);
	int k = slab_class_of(size, align);
	if (merge && k >= 0 && slab_classes[k].size == size) {
		found = k; /* blocks at multiples of size: aligned */
	} else {
		int fresh = -1;
		for (unsigned c = CLASS_COUNT; c < CLASS_SLOTS && found < 0; c++) {
			if (!slab_classes[c].size) {
				if (fresh < 0)
					fresh = (int)c;
			} else if (slab_classes[c].size == size &&
				   align_of[c] == align &&
				   (!refs[c] || (merge && mergeable[c]))) {
				found = (int)c;
			}
		}
		if (found < 0 && fresh >= 0) {
			found = fresh;
			struct class_info *ci = &slab_classes[found];
			slab_class_setup(ci, (uint32_t)size);
			/* spans aligned to a power of two of their length: an
			 * object's span start is its address, masked (info) */
			while (ci->span_align < ci->span)
				ci->span_align *= 2;
			align_of[found] = (uint32_t)align;
		}
		if (found >= 0 && !refs[found])
			mergeable[found] = merge;
	}
	if (found >= 0)
		refs[found]++;
	pthread_mutex_unlock(&kc_lock);
	if (found < 0)
		return KALLOC_ENOMEM; /* every slot has another geometry */
	*cls = (unsigned)found;
	return KALLOC_OK;
}

void slab_kcache_destroy(unsigned cls)
{
	pthread_mutex_lock(&kc_lock);
	if (refs[cls])
		refs[cls]--;
	pthread_mutex_unlock(&kc_lock);
}

void slab_kcache_info(unsigned cls, kalloc_class_info_t *out)
{
	struct class_count cc[CLASS_SLOTS];
	slab_pool_count(cc);
	const struct class_info *ci = &slab_classes[cls];
	pthread_mutex_lock(&kc_lock);
	uint32_t caches = refs[cls] + (cls < CLASS_COUNT); /* kmalloc's */
	pthread_mutex_unlock(&kc_lock);
	*out = (kalloc_class_info_t){
		.active_objs = cc[cls].active,
		.num_objs = cc[cls].objs,
		.num_slabs = cc[cls].slabs,
		.objsize = ci->size,
		.objperslab = ci->nblocks,
		.pagesperslab = (uint32_t)(ci->span * (SLAB_UNIT >> 12)),
		.caches = caches,
		.span_bytes = ci->span_align >= ci->span ?
				      (uint64_t)ci->span_align * SLAB_UNIT : 0,
	};
}

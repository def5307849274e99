/*
 * slab: the project's own allocator (the Kmalloc analogue).  Internal
 * interfaces shared by its files; nothing here is exported.
 *
 * Memory layout.  Slab memory comes in chunks of 4 MiB aligned to 4 MiB.  A
 * chunk is 128 units of 32 KiB; its first CHUNK_META_UNITS units hold the
 * chunk header, one slab descriptor per unit and one allocation bitmap per
 * unit.  A slab (a span of 1-8 units) holds blocks of one size class.  So
 * any block's descriptor is found from its address alone:
 *
 *     chunk = ptr & ~(CHUNK - 1);  unit = (ptr >> 15) & 127;
 *     slab  = &chunk->slabs[unit] - (its `head_off` bytes back);
 *
 * Medium blocks (above CLASS_MAX or aligned above CLASS_MAX_ALIGN, up to
 * MEDIUM_MAX aligned to a unit at most) are spans of whole units holding
 * one block each.  Large blocks (beyond) are their own mappings, also
 * 4 MiB aligned, with a header page at the mapping start.
 * The registry (registry.c) has one bit per 4 MiB granule of the address
 * space that starts a chunk or large mapping of ours, so owns() and the
 * invalid-free check never touch memory that is not ours.
 *
 * Ownership.  Every slab in use belongs to one heap (heap.c); a heap is used
 * by at most one thread at a time.  The owner allocates and frees on its
 * slabs with plain loads and stores.  Other threads push frees onto the
 * slab's atomic thread_free list and, the first time, the slab onto its
 * heap's atomic pending list (remote.c); the owner collects them.
 *
 * Locks, always taken in this order: fallback_lock (heap.c) -> heaps_lock
 * (heap.c) -> pool_lock (pool.c) -> lcache_lock (lcache.c).  The fast
 * paths take none.
 */
#ifndef SLAB_H
#define SLAB_H

#include <kalloc/plugin.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <stddef.h>
#include <stdint.h>

#include "class.h"

#define HIDDEN __attribute__((visibility("hidden")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define CHUNK_SHIFT 22
#define CHUNK_SIZE ((size_t)1 << CHUNK_SHIFT) /* 4 MiB */
#define CHUNK_UNITS ((unsigned)(CHUNK_SIZE / SLAB_UNIT)) /* 128 */
#include "units.h"
#define PAGE_SIZE_ 4096u
#define ADDR_BITS 47 /* user address space the registry covers */

/* Marks of our headers (checked in the core dump, not by the code: the
 * registry says what a granule holds). */
enum { KIND_CHUNK = 0x51ab0c4a, KIND_LARGE = 0x51ab1a46 };

/* Where a slab in use sits in its heap; WHERE_CACHED: a medium span whose
 * block was freed, kept in a heap's medium cache (medium.c). */
enum { WHERE_NONE, WHERE_CUR, WHERE_PARTIAL, WHERE_FULL, WHERE_CACHED };

/*
 * A free block's first two words (every class is 16 bytes at least): the
 * next free block, encoded (link_enc), and its free tag (slab_tag).
 */
struct block {
	uintptr_t next;
	uintptr_t tag;
};

struct heap;

/*
 * A slab descriptor.  The first cache line is what the owner's fast paths
 * touch; remote threads read owner, base, size, magic and bits.  Fields of
 * a unit that is not the head of a span are unused except `head_off`.
 * Invariant while in use: the bits set are the live blocks plus the remote
 * frees not yet collected, i.e. nblocks - (blocks on `free`) - (blocks
 * never carved).  So the bitmap is also the slab's count of blocks in use:
 * it is empty when no bit is set (slab_bits_empty); the fast paths keep no
 * separate counter.
 */
struct slab {
	struct block *free;        /* owner's free list (encoded links) */
	uintptr_t neg_base;        /* -(address of the first block): p +
				      neg_base is p's offset in the slab.
				      Not a pointer, so that memcheck's leak
				      check never finds a leaked first block
				      reachable from here (slab_base) */
	_Atomic uint64_t *bits;    /* allocation bitmap by block index:
				      bit set = live */
	uint64_t magic;            /* ceil(2^64 / size): see slab_index */
	uint32_t size;             /* block size; 0 when the unit is free */
	uint32_t limit;            /* nblocks * size */
	uint32_t pad0_;
	uint16_t head_off;         /* bytes back to the span's head
				      descriptor: units back * sizeof */
	uint8_t where;             /* WHERE_* */
	uint8_t cls;
	_Atomic(struct heap *) owner;
	/* second line: slower fields */
	_Atomic uintptr_t thread_free; /* remote frees; bit 0 = slab notified */
	struct slab *pending_next;     /* link in the owner's pending list */
	struct slab *next, *prev;      /* heap's partial list (owner only) */
	uint32_t nblocks;
	uint32_t bump;                 /* blocks carved so far */
	uint8_t span;                  /* units in the span */
	uint8_t pad_[7];
	uint64_t pad2_[2];
} __attribute__((aligned(64)));

/* Header of a slab chunk, at its start.  The descriptors come first, so a
 * block's descriptor is at a fixed multiple of its unit number. */
struct chunk {
	struct slab slabs[CHUNK_UNITS];    /* meta units' are never slabs */
	uint32_t kind;          /* KIND_CHUNK */
	bool reserve;           /* the ATOMIC reserve: served to ATOMIC only */
	struct chunk *next;     /* pool's chunk list */
	unitset_t free_units;   /* units not in a span (never a meta unit) */
	unitset_t dirty_units;  /* free units whose pages may be resident */
	uint32_t released_ms[CHUNK_UNITS]; /* when each dirty unit was freed */
	_Atomic uint64_t bits[CHUNK_UNITS][SLAB_MAX_BLOCKS / 64];
};
/* Units holding the metadata above, at the start of every chunk. */
#define CHUNK_META_UNITS \
	((unsigned)((sizeof(struct chunk) + SLAB_UNIT - 1) / SLAB_UNIT))
_Static_assert(CHUNK_META_UNITS <= CHUNK_UNITS / 32,
	       "chunk metadata stays a small part of the chunk");
_Static_assert(sizeof(struct slab) == 128, "slab descriptor is two lines");
#define SLAB_DESC_SHIFT 7 /* sizeof(struct slab) == 1 << SLAB_DESC_SHIFT */

/* Header page of a large mapping. */
struct large {
	uint32_t kind;   /* KIND_LARGE */
	size_t map_len;  /* bytes mapped from the header page on */
	size_t hdr_len;  /* the block starts this many bytes in (an offset,
			    not a pointer: memcheck's leak check must not
			    find a leaked block reachable from its header) */
	size_t usable;   /* map_len - hdr_len */
};

static inline char *large_block(const struct large *l)
{
	return (char *)l + l->hdr_len;
}

/*
 * A magazine: blocks of one kmalloc class that the heap's thread freed,
 * kept for its next allocations (the thread cache's fast path: a pop and a
 * push, no slab touched).  Blocks of any heap's slabs may wait here; each
 * is still allocated in its slab's bitmap and carries its free tag, so a
 * second free is caught at once.  Full, the older half goes back to the
 * slabs (mag.c).  n is read by statistics from other threads (relaxed).
 */
#define MAG_SLOTS 30
struct mag {
	uint32_t n;    /* blocks held: slot[0..n) */
	uint32_t cap;  /* at most MAG_SLOTS, fewer for big classes */
	uint32_t size; /* the class's block size */
	uint32_t pad_;
	void *slot[MAG_SLOTS];
};
_Static_assert(sizeof(struct mag) == 256, "a magazine is 4 lines");

/*
 * A thread's heap: a magazine and a current slab per kmalloc class, and
 * partial slabs.  Object caches' classes (slots CLASS_COUNT on) have no
 * magazine: the core keeps theirs.
 */
struct heap {
	struct mag mag[CLASS_COUNT];
	struct slab *cur[CLASS_SLOTS];     /* never NULL: &slab_empty at worst */
	struct slab *partial[CLASS_SLOTS]; /* slabs with free blocks, not cur: */
	struct slab *partial_tail[CLASS_SLOTS]; /* a FIFO (see alloc.c) */
	_Atomic(struct slab *) pending;    /* slabs with remote frees */
	struct slab *medium[MEDIUM_CACHE]; /* medium spans freed, oldest first */
	uint32_t medium_n;
	uint32_t medium_units;             /* their units in all */
	struct heap *all_next;             /* every heap (heaps_lock) */
	struct heap *pool_next;            /* abandoned heaps (heaps_lock) */
	int state;                         /* HEAP_* (heaps_lock) */
} __attribute__((aligned(64)));
enum { HEAP_OWNED, HEAP_ABANDONED, HEAP_DEAD };

static inline size_t mag_count(const struct mag *m)
{
	return __atomic_load_n(&m->n, __ATOMIC_RELAXED);
}

static inline void mag_set_count(struct mag *m, unsigned n)
{
	__atomic_store_n(&m->n, (uint32_t)n, __ATOMIC_RELAXED);
}

/* ---- globals (plugin.c) ----------------------------------------------- */

HIDDEN extern const kalloc_host_t *slab_host;

/*
 * The memory tool the program runs under (valgrind's memcheck, ASan), or
 * NULL: host->tools() at init.  While it is set, threads get no heap of
 * their own (heap.c), so every allocation takes the shared fallback heap
 * and every free the remote path, where slab tells the tool (off the fast
 * paths); the large cache is off, and slab opens a free block's link only
 * while it reads or writes it.
 */
#ifdef KALLOC_NO_TOOLS /* meson -Dmemtools=false: none, at compile time */
#define slab_tool ((const kalloc_tools_t *)0)
#else
HIDDEN extern const kalloc_tools_t *slab_tool;
#endif

/* Gives a range back to the system, the tool's view of it reset first
 * (ASan's poison would outlive the mapping, onto the next one there). */
static inline void slab_unmap(void *p, size_t len)
{
	if (slab_tool)
		slab_tool->open(p, len);
	munmap(p, len);
}
HIDDEN extern long slab_decay_ms;

/* ---- harden.c --------------------------------------------------------- */

HIDDEN extern uintptr_t slab_secret;
HIDDEN void slab_secret_init(void);
/* Diagnoses and reports an invalid free of p (never returns). */
HIDDEN __attribute__((noreturn, cold)) void slab_bad_free(const void *p);
HIDDEN __attribute__((noreturn, cold)) void slab_double_free(const void *p,
							      size_t size);
HIDDEN __attribute__((noreturn, cold)) void slab_corrupt_list(const void *slot,
							       const void *next);
/* A block in a magazine lost its free tag: written since it was freed. */
HIDDEN __attribute__((noreturn, cold)) void slab_written_after_free(const void *b);

/* Safe-linking: a free block's link, bound to its own address. */
static inline uintptr_t link_enc(const void *next, const void *slot)
{
	return (uintptr_t)next ^ slab_secret ^
	       __builtin_bswap64((uint64_t)(uintptr_t)slot);
}
static inline struct block *link_dec(uintptr_t v, const void *slot)
{
	return (struct block *)(v ^ slab_secret ^
				__builtin_bswap64((uint64_t)(uintptr_t)slot));
}

/*
 * Free tags (the double-free check of every free): a block the program
 * frees gets its tag in word 1, and every hand-out clears it, so a free of
 * a block that carries its tag is a double free, wherever the block waits
 * (a magazine, a free list, a remote list).  The key is not the links'
 * secret, which a tag would reveal.  Not under a memory tool, which tracks
 * frees itself (and keeps free blocks closed).
 */
HIDDEN extern uintptr_t slab_tag_key;
static inline uintptr_t slab_tag(const void *p)
{
	return (uintptr_t)p ^ slab_tag_key;
}

/* Does p (a block of a class) carry its free tag? */
static inline bool slab_tagged(const void *p)
{
	return ((const struct block *)p)->tag == slab_tag(p);
}

/* Tags b freed; false, b untouched, if it was already (a double free,
 * which the caller reports). */
static inline bool slab_tag_free(struct block *b)
{
	uintptr_t t = slab_tag(b);
	if (unlikely(b->tag == t))
		return false;
	b->tag = t;
	return true;
}

/* ---- registry.c ------------------------------------------------------- */

HIDDEN int slab_registry_init(void);
/* One byte per granule: what starts there (REG_NONE, REG_CHUNK, REG_LARGE). */
HIDDEN extern _Atomic uint8_t *slab_registry;
#define REGISTRY_GRANULES ((uint64_t)1 << (ADDR_BITS - CHUNK_SHIFT))
enum { REG_NONE, REG_CHUNK, REG_LARGE };

/* Does p's 4 MiB granule start a mapping of kind `kind`?  One byte load. */
static inline bool registry_test(int kind, const void *p)
{
	uint64_t g = (uintptr_t)p >> CHUNK_SHIFT;
	if (unlikely(g >= REGISTRY_GRANULES))
		return false;
	return atomic_load_explicit(&slab_registry[g], memory_order_relaxed) ==
	       kind;
}

/* Does p's 4 MiB granule start one of our slab chunks? */
static inline bool slab_in_chunk(const void *p)
{
	return registry_test(REG_CHUNK, p);
}

/* ... one of our large mappings? */
static inline bool slab_in_large(const void *p)
{
	return registry_test(REG_LARGE, p);
}

static inline bool slab_registered(const void *p)
{
	return slab_in_chunk(p) || slab_in_large(p);
}
/* Marks the granule as starting a mapping of kind `kind` (on) or none. */
HIDDEN void slab_register(int kind, const void *granule, bool on);
/* An anonymous mapping of len bytes aligned to CHUNK_SIZE, or NULL. */
HIDDEN void *slab_map_aligned(size_t len);
HIDDEN long slab_now_ms(void);

static inline struct chunk *chunk_of(const void *p)
{
	return (struct chunk *)((uintptr_t)p & ~(CHUNK_SIZE - 1));
}

/*
 * Is p inside the mapping of the large block registered for its granule?
 * A large mapping need not fill its granule: the rest may be any other
 * mapping (page's, the program's), whose pointers are not slab's.
 */
static inline bool slab_in_large_map(const void *p)
{
	const struct large *l = (const struct large *)chunk_of(p);
	return (const char *)p >= (const char *)l &&
	       (const char *)p < (const char *)l + l->map_len;
}


/*
 * The span descriptor of an address inside a slab chunk.  Descriptors are
 * 128 bytes at the chunk start, so the unit's descriptor is at byte
 * (p >> (SLAB_UNIT_SHIFT - SLAB_DESC_SHIFT)) masked to the unit bits: one
 * shift, one mask.
 */
_Static_assert(offsetof(struct chunk, slabs) == 0, "descriptors first");
static inline struct slab *slab_of(struct chunk *c, const void *p)
{
	uintptr_t at = ((uintptr_t)p >> (SLAB_UNIT_SHIFT - SLAB_DESC_SHIFT)) &
		       ((uintptr_t)(CHUNK_UNITS - 1) << SLAB_DESC_SHIFT);
	const struct slab *u = (const struct slab *)((char *)c + at);
	return (struct slab *)((char *)c + (at - u->head_off));
}
#define SLAB_HEAD_OFF(units) ((uint16_t)((units) * sizeof(struct slab)))

/* ---- pool.c ----------------------------------------------------------- */

HIDDEN extern pthread_mutex_t slab_pool_lock;
HIDDEN int slab_pool_init(void);
/* A fresh span for class cls owned by h, or NULL (nowait: trylock, no mmap;
 * atomic: may use the reserve chunk). */
HIDDEN struct slab *slab_pool_get(unsigned cls, struct heap *h, bool nowait,
				  bool atomic);
/* A medium span of n units, its one block allocated by the caller; *clean:
 * none of its pages resident (they read zero). */
HIDDEN struct slab *slab_pool_get_medium(unsigned n, bool nowait, bool atomic,
					 bool *clean);
/* Resizes a medium span to n units in place: a shorter one gives its tail
 * back, a longer one takes the free units after it; false if they are not
 * free (or nowait and the lock is busy).  *clean: the units gained were not
 * resident. */
HIDDEN bool slab_pool_resize_medium(struct slab *s, unsigned n, bool nowait,
				    bool *clean);
/* Returns an empty span; false (span kept) if nowait and the lock is busy. */
HIDDEN bool slab_pool_put(struct slab *s, bool nowait);
/* Returns to the OS the free units released more than the decay ago. */
HIDDEN void slab_pool_purge(void);
HIDDEN void slab_pool_atfork_child(void);
HIDDEN int slab_pool_stats(kalloc_stats_fn fn, void *ctx);
/* Per class slot: slabs, objects they hold, objects in use. */
struct class_count {
	uint64_t slabs, objs, active;
};
HIDDEN void slab_pool_count(struct class_count cc[CLASS_SLOTS]);

/* ---- slab ops: alloc.c ------------------------------------------------ */

HIDDEN extern struct slab slab_empty; /* the cur of a class with no slab */
HIDDEN void *slab_alloc_slow(struct heap *h, unsigned cls, bool nowait,
			     bool atomic);
/* A local free found the slab was full, or now empty. */
HIDDEN void slab_free_slow(struct heap *h, struct slab *s, bool nowait);
HIDDEN void *slab_pop_slow(struct slab *s);
/* Unlinks an empty slab from h and returns it to the pool (unless nowait
 * and the pool is busy). */
HIDDEN void slab_retire_if_empty(struct heap *h, struct slab *s, bool nowait);
/* Gives up h's current slabs (thread exit): empty ones go to the pool. */
HIDDEN void slab_heap_drop_current(struct heap *h);

/* ---- remote.c --------------------------------------------------------- */

HIDDEN void slab_remote_free(struct slab *s, struct block *b, uint64_t idx);
/* The remote free of n blocks of s at once (a magazine's run). */
HIDDEN void slab_remote_free_run(struct slab *s, struct block **bs, unsigned n);
/* Collects h's remote frees into its slabs. */
HIDDEN void slab_drain(struct heap *h, bool nowait);

/* ---- heap.c ----------------------------------------------------------- */

/*
 * What a thread without a heap of its own points at: HEAP_NONE before its
 * first allocation (or under a memory tool), HEAP_TEARDOWN once its heap is
 * given up.  Both are all zeros: every magazine empty and full at once
 * (count 0, cap 0), so a fast path pops nothing and pushes nothing and
 * takes its slow path, which asks heap_owned(), without testing which
 * heap it has.  Their other fields are never read.
 */
HIDDEN extern struct heap slab_heap_placeholder[2];
#define HEAP_NONE (&slab_heap_placeholder[0])
#define HEAP_TEARDOWN (&slab_heap_placeholder[1])
HIDDEN extern __thread struct heap *slab_tl_heap
	__attribute__((tls_model("initial-exec")));

/* Is h a heap of a thread's own (not a placeholder)? */
static inline bool heap_owned(const struct heap *h)
{
	return (uintptr_t)h - (uintptr_t)slab_heap_placeholder >=
	       sizeof(slab_heap_placeholder);
}

HIDDEN int slab_heap_init(void);
/* This thread's heap, acquiring one if needed; NULL if none can be had
 * (nowait) or the thread is tearing down (HEAP_TEARDOWN returned). */
HIDDEN struct heap *slab_heap_acquire(bool nowait);
/* Allocation on the shared fallback heap (threads past their teardown). */
HIDDEN void *slab_fallback_alloc(unsigned cls, bool nowait, bool atomic);
/* Periodic work on slow paths: abandoned heaps' remote frees, decay. */
HIDDEN void slab_tick(bool nowait);
HIDDEN void slab_heap_atfork_prepare(void);
HIDDEN void slab_heap_atfork_parent(void);
HIDDEN void slab_heap_atfork_child(void);
HIDDEN unsigned slab_heap_count(void);
/* Blocks per kmalloc class waiting in owned heaps' magazines (a snapshot:
 * their threads run on). */
HIDDEN void slab_heap_mag_held(uint64_t held[CLASS_COUNT]);

/* ---- medium.c --------------------------------------------------------- */

/* Is a request of (size, align), beyond the classes, a medium block? */
static inline bool slab_medium_fits(size_t size, size_t align)
{
	return size <= MEDIUM_MAX && align <= SLAB_UNIT;
}
/* A new medium block of size bytes (usable length in *usable); *zeroed: its
 * pages come from the kernel untouched. */
HIDDEN void *slab_medium_alloc(size_t size, bool nowait, bool atomic,
			       bool growing, size_t *usable, bool *zeroed);
/* Frees p, the block of the medium span s (checked to start it); reports a
 * second free.  Keeps errno. */
HIDDEN void slab_medium_free(struct slab *s, void *p);
/* Gives h's cached medium spans back to the pool (its thread ends). */
HIDDEN void slab_medium_flush(struct heap *h);
/* Resizes p's span in place to hold size bytes; false if it cannot (the
 * units after it are taken).  zero: bytes gained must read as zero. */
HIDDEN bool slab_medium_resize(struct slab *s, size_t size, bool nowait,
			       bool zero, size_t *usable);

/* ---- large.c ---------------------------------------------------------- */

/* Was p the start of one of the last large blocks freed (and none since)? */
HIDDEN bool slab_large_was_freed(const void *p);
/* Drops what slab_large_was_freed remembers in [base, base + len). */
HIDDEN void slab_large_forget_range(const void *base, size_t len);
/* A new large block; growing: it replaces a smaller block (realloc), and
 * may take a longer cached mapping.  *zeroed: the block comes from the
 * kernel (else from the cache, dirty). */
HIDDEN void *slab_large_alloc(size_t size, size_t align, bool nowait,
			      bool growing, size_t *usable, bool *zeroed);
HIDDEN void slab_large_free(struct large *l);
/* Resizes in place (or by moving pages); NULL if it cannot.  zero: the
 * bytes the block gains must read as zero. */
HIDDEN void *slab_large_resize(struct large *l, size_t size, size_t align,
			       bool nowait, bool zero, size_t *usable);
HIDDEN int slab_large_stats(kalloc_stats_fn fn, void *ctx);

/* ---- kcache.c: object caches' classes (the plugin's cache table) ------ */

HIDDEN int slab_kcache_create(kalloc_layout_t obj, unsigned flags,
			      unsigned *cls);
HIDDEN void slab_kcache_destroy(unsigned cls);
HIDDEN void slab_kcache_info(unsigned cls, kalloc_class_info_t *out);

/* ---- mag.c: the heaps' magazines ------------------------------------- */

/* Sets up h's empty magazines. */
HIDDEN void slab_mag_init(struct heap *h);
/* Gives m's blocks but the newest `keep` back to their slabs. */
HIDDEN void slab_mag_spill(struct heap *h, struct mag *m, unsigned keep,
			   bool nowait);
/* Gives every magazine's blocks back (the heap loses its thread). */
HIDDEN void slab_mag_flush(struct heap *h);

/* The newest block of a magazine holding k > 0, handed out; a block
 * whose tag is gone was written after its free. */
static inline struct block *mag_pop(struct mag *m, size_t k)
{
	/* (opaque, so that GCC addresses the slot from m, not from the heap) */
	__asm__("" : "+r"(m));
	struct block *b = m->slot[k - 1];
	if (unlikely(b->tag != slab_tag(b)))
		slab_written_after_free(b);
	mag_set_count(m, (unsigned)k - 1);
	b->tag = 0;
	return b;
}

/* ---- lcache.c --------------------------------------------------------- */

HIDDEN extern pthread_mutex_t slab_lcache_lock;
/* A cached mapping of len..max_len bytes (its length in *got),
 * unregistered and dirty, or NULL (nowait: trylock). */
HIDDEN void *slab_lcache_get(size_t len, size_t max_len, bool nowait,
			     size_t *got);
/* Keeps an unregistered mapping for reuse; false if the caller must unmap
 * it.  Unmaps the oldest entries beyond budget bytes or past the decay. */
HIDDEN bool slab_lcache_put(void *base, size_t len, size_t budget);
/* Unmaps the entries freed at least the decay ago. */
HIDDEN void slab_lcache_decay(void);
/* Slab is about to fault in len bytes it did not hold resident: unmaps the
 * oldest entries, len bytes of them or all. */
HIDDEN void slab_lcache_yield(size_t len);
HIDDEN int slab_lcache_stats(kalloc_stats_fn fn, void *ctx);

/* ---- block helpers (the fast paths, plugin.c and alloc.c) -------------- */

/*
 * Division by the block size through its reciprocal magic = ceil(2^64 /
 * size) (class.h): for off < 2^32, off / size is the high word of
 * off * magic, and off is a multiple of size iff the low word is below
 * magic.  One multiplication gives both.
 */
__extension__ typedef unsigned __int128 slab_u128;

/* The block index of an offset in s (exact for offsets in the span). */
static inline uint64_t slab_index(const struct slab *s, uint64_t off)
{
	return (uint64_t)(((slab_u128)off * s->magic) >> 64);
}

/* p's block index if p starts a block of the slab in use s, else -1.  (A
 * free unit's limit is 0.) */
static inline int64_t slab_block_index(const struct slab *s, const void *p)
{
	uint64_t off = (uintptr_t)p + s->neg_base;
	slab_u128 q = (slab_u128)off * s->magic;
	if (unlikely(off >= s->limit || (uint64_t)q >= s->magic))
		return -1;
	uint64_t idx = (uint64_t)(q >> 64);
	if (idx >= SLAB_MAX_BLOCKS) /* (so the caller tests no sign) */
		__builtin_unreachable();
	return (int64_t)idx;
}

/* Does p start a block of the slab in use s?  slab_block_index's test
 * alone: the low word of the product only (one imul). */
static inline bool slab_is_block(const struct slab *s, const void *p)
{
	uint64_t off = (uintptr_t)p + s->neg_base;
	return off < s->limit && off * s->magic < s->magic;
}

static inline bool slab_is_live(const struct slab *s, uint64_t idx)
{
	return atomic_load_explicit(&s->bits[idx / 64], memory_order_relaxed) &
	       ((uint64_t)1 << (idx % 64));
}

static inline char *slab_base(const struct slab *s)
{
	return (char *)(0 - s->neg_base);
}

/* Pops the first free block; the caller checked s->free. */
static inline void *slab_pop(struct slab *s)
{
	struct block *b = s->free;
	struct block *n = link_dec(b->next, b);
	/* (opaque, so that GCC tests n itself for the list's end rather than
	 * keep two halves of its decoding alive: a register to save) */
	__asm__("" : "+r"(n));
	if (unlikely((uintptr_t)n + s->neg_base >= s->limit) && n)
		slab_corrupt_list(b, n);
	s->free = n;
	b->tag = 0; /* handed out */
	uint64_t idx = slab_index(s, (uintptr_t)b + s->neg_base);
	_Atomic uint64_t *w = &s->bits[idx / 64];
	atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) |
				 (uint64_t)1 << (idx % 64),
			      memory_order_relaxed);
	return b;
}

/* Blocks of s in use (live or freed remotely, not yet collected). */
static inline uint32_t slab_in_use(const struct slab *s)
{
	uint32_t n = 0;
	for (uint32_t k = 0; k < (s->nblocks + 63) / 64; k++)
		n += (uint32_t)__builtin_popcountll(
			atomic_load_explicit(&s->bits[k], memory_order_relaxed));
	return n;
}

/* Has s no block in use?  (A scan of at most SLAB_MAX_BLOCKS / 64 words,
 * for slow paths: a free calls it only when it clears a bitmap word.) */
static inline bool slab_bits_empty(const struct slab *s)
{
	for (uint32_t k = 0; k < (s->nblocks + 63) / 64; k++)
		if (atomic_load_explicit(&s->bits[k], memory_order_relaxed))
			return false;
	return true;
}

/*
 * Clears block idx's bit in the bitmap; reports a double free of p when it
 * was not set.  Only the owner calls it (a plain read-modify-write).  The
 * test and the clear are one flip: flipping a set bit lowers the word,
 * flipping a clear one raises it (a bit-complement and a compare on x86).
 */
static inline uint64_t slab_unmark(struct slab *s, const void *p,
				   uint64_t idx)
{
	_Atomic uint64_t *w = &s->bits[idx / 64];
	uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
	uint64_t flipped = v ^ (uint64_t)1 << (idx % 64);
	/* (keeps GCC from rebuilding the mask to compare v with it, which
	 * costs more than the flip it would replace) */
	__asm__("" : "+r"(flipped));
	if (unlikely(flipped > v))
		slab_double_free(p, s->size);
	atomic_store_explicit(w, flipped, memory_order_relaxed);
	return flipped; /* 0: the slab may be empty now */
}

/* The local free of a block of s, owned by h. */
static inline void slab_free_local(struct heap *h, struct slab *s,
				   struct block *b, uint64_t idx, bool nowait)
{
	uint64_t word = slab_unmark(s, b, idx);
	struct block *head = s->free;
	b->next = link_enc(head, b);
	s->free = b;
	/* was full, or may be empty now (the current slab is never retired) */
	if (unlikely(!head || (!word && s->where != WHERE_CUR)))
		slab_free_slow(h, s, nowait);
}

#endif

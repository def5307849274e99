/*
 * The page backend's internal interfaces: the block table (table.c), the
 * cache of freed mappings (cache.c) and mapping helpers (map.c), used by the
 * plugin entry points (page.c).  Every structure lives in mmap'd memory: a
 * plugin must not call malloc (under the shim it would come back here).
 */
#ifndef KALLOC_PAGE_H
#define KALLOC_PAGE_H

#include <kalloc/plugin.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- map.c: mappings --------------------------------------------------- */

/* Anonymous read-write mapping of len bytes (a page multiple) whose start
 * is aligned to `align` (a power of two >= the page size); NULL on failure.
 * Alignments above a page over-map, then unmap the head and the tail. */
void *map_aligned(size_t len, size_t align, size_t pagesz);
void unmap(uintptr_t addr, size_t len);
/* Page's own records (its state, the table's slots): len bytes after a
 * PROT_NONE page.  Blocks are mapped top-down, below earlier mappings, so
 * a program's overflow past a block faults in that page, at its own
 * write, rather than corrupt what page knows.  NULL on failure. */
void *map_meta(size_t len);
void unmap_meta(void *p, size_t len);
uint64_t now_ns(void);

/* ---- table.c: live blocks, by address ---------------------------------- */

/*
 * One live block.  Without guard pages map == ptr and the usable length is
 * map_len.  With them the mapping ends with one PROT_NONE page and the block
 * ends right against it: usable length = map + map_len - page - ptr.
 */
struct rec {
	uintptr_t ptr;  /* the key; 0 marks an empty slot */
	uintptr_t map;  /* start of the block's mapping */
	size_t map_len; /* whole mapping, guard page included */
	size_t size;    /* requested size */
	uint64_t vma;   /* name of the VMA holding the mapping (cache.c) */
};

/*
 * An open-addressing (linear probing) hash table from block address to rec,
 * split in shards, each under its own mutex.  Lookups never touch the blocks,
 * so owns() answers for any address.  Invariant: a shard keeps at least one
 * empty slot; it grows (a new mapping, rehashed) past half full, except under
 * NOWAIT, which inserts without growing up to three quarters full.
 */
#define TABLE_SHARDS 16

struct shard {
	pthread_mutex_t lock;
	struct rec *slot; /* cap entries, mmap'd */
	size_t cap;       /* a power of two */
	size_t count;
} __attribute__((aligned(64)));

struct table {
	struct shard shard[TABLE_SHARDS];
};

int table_init(struct table *t, const kalloc_tools_t *tools);
/* map.c: the memory tool unmap() tells, or NULL (set at init). */
extern const kalloc_tools_t *page_unmap_tools;
void table_fini(struct table *t);
struct shard *table_shard(struct table *t, uintptr_t key);
/* Lock a shard; with nowait only if free at once (false otherwise). */
bool shard_lock(struct shard *s, bool nowait);
void shard_unlock(struct shard *s);
/* With the shard locked: the key's slot or NULL. */
struct rec *shard_find(struct shard *s, uintptr_t key);
/* With the shard locked: adds r (its key absent).  KALLOC_ENOMEM when the
 * table cannot grow, KALLOC_EAGAIN when nowait and it would have to. */
int shard_insert(struct shard *s, const struct rec *r, bool nowait);
/* With the shard locked: removes the slot shard_find returned. */
void shard_remove(struct shard *s, struct rec *slot);
/* Locks the shards of two keys in index order (one if they share it). */
bool table_lock_pair(struct table *t, uintptr_t a, uintptr_t b, bool nowait);
void table_unlock_pair(struct table *t, uintptr_t a, uintptr_t b);

/* ---- cache.c: freed page ranges kept for reuse -------------------------- */

#define CACHE_SLOTS 256 /* ranges; a lookup scans them all */
/* Dirty entries older than this are madvise(MADV_DONTNEED)'d. */
#define CACHE_DECAY_NS 1000000000ull

/*
 * A freed range of pages, inside one mapping (VMA) of the process.  `vma`
 * names that mapping: each mmap or moving mremap gets a new name, and every
 * split of a mapping (munmap, mremap of part of it) leaves a hole.  So two
 * adjacent ranges of the same name lie in one VMA, and merging them keeps
 * every range mremap-able (mremap needs its range inside one VMA).
 */
struct cache_entry {
	uintptr_t addr;
	size_t len;
	uint64_t vma;
	uint64_t freed; /* now_ns() when cached */
	bool clean;     /* reads zero (fresh or MADV_DONTNEED'd since) */
};

/*
 * Invariants: n <= CACHE_SLOTS; bytes = sum of the entries' len <= limit;
 * next_decay <= the earliest freed + CACHE_DECAY_NS of a dirty entry.  With
 * `exact` (guard mode: each entry ends with its guard page) entries are
 * never split and serve only requests of their very length.
 */
struct cache {
	pthread_mutex_t lock;
	size_t limit;
	size_t bytes;
	unsigned n;
	bool exact;
	_Atomic uint64_t next_decay;
	atomic_ulong hits, misses;
	struct cache_entry e[CACHE_SLOTS];
};

/* What cache_take found: `len` bytes at addr.  len is the request's unless
 * `grow` is set (then it is smaller and the caller mremaps it to size). */
struct cache_hit {
	uintptr_t addr;
	size_t len;
	uint64_t vma;
	bool clean;
	bool grow;
};

void cache_init(struct cache *c, size_t limit, bool exact);
void cache_fini(struct cache *c);
/* How cache_take may serve a request. */
#define TAKE_NOWAIT 1u /* trylock only */
#define TAKE_GROW 2u   /* may return a smaller range for the caller to grow */
#define TAKE_WARM 4u   /* only ranges whose pages are still resident */

/*
 * len bytes at a multiple of align, cut from a cached range without any
 * system call; or, with TAKE_GROW and no range large enough, the largest
 * smaller range for the caller to grow.
 */
bool cache_take(struct cache *c, size_t len, size_t align, unsigned how,
		struct cache_hit *hit);
/* The first len bytes of the cached range starting at addr in VMA vma, if
 * there is one that long (a block growing in place over it). */
bool cache_take_at(struct cache *c, uintptr_t addr, size_t len, uint64_t vma,
		   bool nowait, bool *clean);
/* Keeps a freed range, merged with its neighbours of the same VMA, and
 * unmaps the oldest ones to stay within the limit; unmaps it instead when
 * it does not fit. */
void cache_put(struct cache *c, uintptr_t addr, size_t len, uint64_t vma,
	       bool nowait);
/* Returns the memory of entries older than CACHE_DECAY_NS to the OS.
 * `guard` bytes at each entry's end are PROT_NONE and left alone. */
void cache_decay(struct cache *c, size_t guard);
void cache_lock(struct cache *c);
void cache_unlock(struct cache *c);
size_t cache_bytes(struct cache *c);
/* Whether addr lies in a cached (freed, still mapped) range. */
bool cache_holds(struct cache *c, uintptr_t addr);

#endif

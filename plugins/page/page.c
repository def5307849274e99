/*
 * page: the kernel's Vmalloc in user space.  Every block is its own anonymous
 * mapping, found by address in an off-block table (table.c), so the pointer
 * is page-aligned (or aligned to any larger power of two, by over-mapping and
 * trimming) and owns() answers for any address without touching it.
 *
 *   - realloc: a block grows in place over cached pages right after it;
 *     else, up to 4 MiB, it is copied into resident cached pages (cheaper
 *     than the page faults of fresh ones); else it moves by mremap, which
 *     copies nothing and costs no time proportional to the size.  A shrink
 *     keeps the pointer and hands the tail to the cache.
 *   - Freed pages go to a cache (cache.c, KALLOC_PAGE_CACHE bytes, 128 MiB
 *     by default) that later allocations cut their blocks from, with no
 *     system call and no page fault; pages cached for a second are given
 *     back to the OS (MADV_DONTNEED) at the next call.
 *   - Guard mode (KALLOC_PAGE_GUARD=1, or option "guard=1"): each mapping ends
 *     with a PROT_NONE page and the block ends right against it, so writing
 *     one byte past the size (rounded up to the alignment) faults at once.
 *   - NOWAIT/ATOMIC: served from the cache only, trylocks only, no mmap,
 *     mremap or brk; otherwise KALLOC_EAGAIN.
 *   - Huge pages: a mapping of KALLOC_PAGE_HUGE bytes or more (8 MiB by
 *     default, 0 = never) is advised MADV_HUGEPAGE when it is mapped or
 *     moved, so filling it costs one page fault per 2 MiB, not per 4 KiB
 *     (the kernel's transparent huge pages in "madvise" mode).  Below the
 *     threshold a sparsely written block stays small-paged.  Freeing such
 *     a mapping takes the advice back before the cache reuses its pages.
 *
 * Options ("key=value,..."): guard=0|1, cache=BYTES, huge=BYTES (overriding
 * KALLOC_PAGE_GUARD, KALLOC_PAGE_CACHE and KALLOC_PAGE_HUGE).
 */
#include "page.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NAME "page"
/* Enough for churn of 64 blocks of up to 4 MiB to run without system calls;
 * the cache keeps address space, and only the pages a program touched are
 * resident, each for at most a second once freed. */
#define DEFAULT_CACHE_BYTES ((long)128 << 20)
/* Dirty memory at least this large is zeroed by MADV_DONTNEED, not memset. */
#define ZERO_BY_MADVISE ((size_t)256 << 10)
/* Largest block copied into warm cached pages rather than mremapped. */
#define COPY_MAX ((size_t)4 << 20)
/* Mappings at least this large are advised MADV_HUGEPAGE. */
#define DEFAULT_HUGE_BYTES ((long)8 << 20)

#define FREED_RING 256

struct page {
	const kalloc_host_t *host;
	size_t pagesz;
	bool guard;
	size_t huge;         /* advise MADV_HUGEPAGE from this size; 0: never */
	atomic_ulong blocks; /* live blocks */
	atomic_ulong mapped; /* bytes of their mappings */
	atomic_ulong vmas;   /* names given to mappings (see cache_entry) */
	atomic_ulong copied; /* bytes memcpy'd by moves; mremap copies none */
	/* The addresses of the last FREED_RING blocks freed or moved away:
	 * a free of one that is not live again is a double free. */
	_Atomic uintptr_t freed[FREED_RING];
	atomic_uint freed_next;
	struct table table;
	struct cache cache;
	const kalloc_tools_t *tool_; /* the memory tool, or NULL (plugin.h):
				      read through PAGE_TOOL */
};

#ifdef KALLOC_NO_TOOLS /* meson -Dmemtools=false: none, at compile time */
#define PAGE_TOOL(pg) ((void)(pg), (const kalloc_tools_t *)0)
#else
#define PAGE_TOOL(pg) ((pg)->tool_)
#endif

static size_t round_up(size_t n, size_t unit)
{
	return (n + unit - 1) & ~(unit - 1);
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Bytes at the end of each mapping that are the PROT_NONE guard page. */
static size_t guard_bytes(const struct page *pg)
{
	return pg->guard ? pg->pagesz : 0;
}

static size_t usable(const struct page *pg, const struct rec *r)
{
	return r->map + r->map_len - guard_bytes(pg) - r->ptr;
}

/* ---- geometry ---------------------------------------------------------- */

/* Where a block of a layout sits in a mapping of its own. */
struct shape {
	size_t map_len;    /* guard page included */
	size_t offset;     /* ptr - map */
	size_t base_align; /* alignment the mapping start needs */
};

/*
 * Without guard: ptr = map, usable = map_len = size rounded to pages.
 * With guard: usable u = size rounded to min(align, page); the body (u rounded
 * to pages) is followed by the guard page and ptr = body end - u, aligned
 * because the body end is page-aligned and u is a multiple of the alignment
 * (above a page, u = body and the mapping start itself is aligned).
 */
static struct shape shape_of(const struct page *pg, kalloc_layout_t l)
{
	size_t pz = pg->pagesz;
	size_t base = l.align > pz ? l.align : pz;
	if (!pg->guard)
		return (struct shape){ round_up(l.size, pz), 0, base };
	size_t u = round_up(l.size, l.align < pz ? l.align : pz);
	size_t body = round_up(u, pz);
	return (struct shape){ body + pz, body - u, base };
}

static uint64_t new_vma(struct page *pg)
{
	return atomic_fetch_add_explicit(&pg->vmas, 1, memory_order_relaxed) + 1;
}

static size_t shape_usable(const struct page *pg, const struct shape *sh)
{
	return sh->map_len - sh->offset - guard_bytes(pg);
}

/* ---- mappings ---------------------------------------------------------- */

/*
 * Huge-page advice (on: MADV_HUGEPAGE) for a mapping that just came to be
 * (mapped, grown or moved), taken back (off) from a huge mapping's pages
 * going to the cache, which may cut smaller blocks from them.  Advice only:
 * where the kernel has no huge page to give, or THP is off, the mapping
 * works as before.  Guard mappings are left alone: a huge page cannot end
 * at a guard page.
 */
static void huge_advice(const struct page *pg, uintptr_t map, size_t len,
			bool on)
{
#if defined(MADV_HUGEPAGE) && defined(MADV_NOHUGEPAGE)
	if (pg->huge && len >= pg->huge && !pg->guard)
		(void)madvise((void *)map, len,
			      on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#else
	(void)pg, (void)map, (void)len, (void)on;
#endif
}

static void zero(const struct page *pg, uintptr_t addr, size_t len, bool nowait)
{
	if (!nowait && len >= ZERO_BY_MADVISE && !(addr & (pg->pagesz - 1)) &&
	    !(len & (pg->pagesz - 1)) &&
	    madvise((void *)addr, len, MADV_DONTNEED) == 0)
		return;
	memset((void *)addr, 0, len);
}

/* Where obtain may take its mapping from. */
enum source {
	ANYWHERE,  /* the cache, else a fresh mapping */
	NOWAIT,    /* the cache only, with trylocks only */
	WARM_ONLY, /* resident cached pages only */
};

/*
 * A mapping for shape sh.  Its length *len is sh->map_len or, from the cache
 * without guard pages, somewhat more.  With want_zero its usable part reads
 * zero.
 */
static int obtain(struct page *pg, const struct shape *sh, enum source from,
		  bool want_zero, uintptr_t *map, size_t *len, uint64_t *vma)
{
	size_t pz = pg->pagesz;
	bool nowait = from == NOWAIT;
	unsigned how = nowait ? TAKE_NOWAIT
		     : from == WARM_ONLY ? TAKE_WARM
		     : sh->base_align == pz ? TAKE_GROW : 0;
	struct cache_hit hit;
	if (cache_take(&pg->cache, sh->map_len, sh->base_align, how, &hit)) {
		size_t dirty = hit.clean ? 0 : hit.len - guard_bytes(pg);
		if (PAGE_TOOL(pg)) /* a freed block's pages: off limits to the tool */
			PAGE_TOOL(pg)->open((void *)hit.addr, hit.len);
		if (hit.grow) { /* only the pages added are fresh */
			void *p = mremap((void *)hit.addr, hit.len, sh->map_len,
					 MREMAP_MAYMOVE);
			if (p == MAP_FAILED) {
				unmap(hit.addr, hit.len);
				goto fresh;
			}
			if ((uintptr_t)p != hit.addr) /* moved: a VMA of its own */
				hit.vma = new_vma(pg);
			hit.addr = (uintptr_t)p;
			hit.len = sh->map_len;
		}
		if (!nowait)
			huge_advice(pg, hit.addr, hit.len, true);
		if (want_zero && dirty)
			zero(pg, hit.addr, dirty, nowait);
		*map = hit.addr;
		*len = hit.len;
		*vma = hit.vma;
		return KALLOC_OK;
	}
	if (from != ANYWHERE)
		return KALLOC_EAGAIN;
fresh:;
	void *p = map_aligned(sh->map_len, sh->base_align, pz);
	if (!p)
		return KALLOC_ENOMEM;
	if (pg->guard &&
	    mprotect((char *)p + sh->map_len - pz, pz, PROT_NONE) != 0) {
		unmap((uintptr_t)p, sh->map_len);
		return KALLOC_ENOMEM;
	}
	huge_advice(pg, (uintptr_t)p, sh->map_len, true);
	*map = (uintptr_t)p;
	*len = sh->map_len;
	*vma = new_vma(pg);
	return KALLOC_OK;
}

/* Pages no block uses any more: cached, or unmapped. */
static void release(struct page *pg, uintptr_t map, size_t len, uint64_t vma,
		    bool nowait)
{
	if (!nowait)
		huge_advice(pg, map, len, false);
	cache_put(&pg->cache, map, len, vma, nowait);
}

/* ---- the table of live blocks ------------------------------------------ */

static void count(struct page *pg, long blocks, long bytes)
{
	atomic_fetch_add_explicit(&pg->blocks, (unsigned long)blocks,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&pg->mapped, (unsigned long)bytes,
				  memory_order_relaxed);
}

static int track(struct page *pg, const struct rec *r, bool nowait)
{
	struct shard *s = table_shard(&pg->table, r->ptr);
	if (!shard_lock(s, nowait))
		return KALLOC_EAGAIN;
	int err = shard_insert(s, r, nowait);
	shard_unlock(s);
	if (!err)
		count(pg, 1, (long)r->map_len);
	return err;
}

static void remember_freed(struct page *pg, uintptr_t ptr)
{
	unsigned i = atomic_fetch_add_explicit(&pg->freed_next, 1,
					       memory_order_relaxed);
	atomic_store_explicit(&pg->freed[i % FREED_RING], ptr,
			      memory_order_relaxed);
}

/*
 * ptr, not a live block, was one of ours freed lately: its address is in
 * the ring and its memory is still ours (in the cache) or mapped by no
 * one.  A freed address someone else has mapped since is left to the
 * caller as foreign: it may be a block of theirs.
 */
static bool freed_by_us(struct page *pg, const void *ptr)
{
	uintptr_t p = (uintptr_t)ptr;
	bool seen = false;
	for (unsigned i = 0; i < FREED_RING && !seen; i++)
		seen = atomic_load_explicit(&pg->freed[i],
					    memory_order_relaxed) == p;
	if (!seen)
		return false;
	if (cache_holds(&pg->cache, p))
		return true;
	unsigned char vec;
	uintptr_t page = p & ~(uintptr_t)(pg->pagesz - 1);
	return mincore((void *)page, pg->pagesz, &vec) != 0 && errno == ENOMEM;
}

__attribute__((noreturn)) static void double_free(struct page *pg,
						  const void *ptr,
						  const char *op)
{
	pg->host->corruption(NAME, ptr, "%s of a block already freed (a "
			     "double free, or a pointer that a realloc moved)",
			     op);
}

__attribute__((noreturn)) static void not_ours(struct page *pg, const void *ptr,
					       const char *op)
{
	if (freed_by_us(pg, ptr))
		double_free(pg, ptr, op);
	pg->host->corruption(NAME, ptr, "%s of an address that is not a live "
			     "block of this page allocator (double free or "
			     "foreign pointer)", op);
}

/*
 * Replaces the record of the block at old_ptr by n (same key or not).  Fails
 * before changing anything: KALLOC_EAGAIN (nowait: a lock is busy or the
 * table would have to grow) or KALLOC_ENOMEM (the table cannot grow).
 */
static int swap_rec(struct page *pg, uintptr_t old_ptr, const struct rec *n,
		    bool nowait)
{
	struct table *t = &pg->table;
	if (!table_lock_pair(t, old_ptr, n->ptr, nowait))
		return KALLOC_EAGAIN;
	struct shard *so = table_shard(t, old_ptr);
	struct rec *slot = shard_find(so, old_ptr);
	long delta = (long)n->map_len - (long)slot->map_len;
	int err = KALLOC_OK;
	if (n->ptr == old_ptr) {
		*slot = *n;
	} else {
		err = shard_insert(table_shard(t, n->ptr), n, nowait);
		if (!err) /* the insert may have rehashed so's slots */
			shard_remove(so, shard_find(so, old_ptr));
	}
	table_unlock_pair(t, old_ptr, n->ptr);
	if (!err)
		count(pg, 0, delta);
	return err;
}

/* ---- alloc, free, realloc ---------------------------------------------- */

static int block_alloc(struct page *pg, kalloc_layout_t l, bool nowait,
		       bool want_zero, kalloc_buf_t *out)
{
	struct shape sh = shape_of(pg, l);
	uintptr_t map;
	size_t len;
	uint64_t vma;
	int err = obtain(pg, &sh, nowait ? NOWAIT : ANYWHERE, want_zero, &map,
			 &len, &vma);
	if (err)
		return err;
	struct rec r = { map + sh.offset, map, len, l.size, vma };
	err = track(pg, &r, nowait);
	if (err) {
		release(pg, map, len, vma, nowait);
		return err;
	}
	*out = (kalloc_buf_t){ (void *)r.ptr, usable(pg, &r) };
	return KALLOC_OK;
}

/* Frees ptr; false, touching nothing, if it is not a live block. */
static bool block_free(struct page *pg, void *ptr)
{
	struct shard *s = table_shard(&pg->table, (uintptr_t)ptr);
	shard_lock(s, false);
	struct rec *slot = shard_find(s, (uintptr_t)ptr);
	if (!slot) {
		shard_unlock(s);
		return false;
	}
	struct rec r = *slot;
	shard_remove(s, slot);
	shard_unlock(s);
	count(pg, -1, -(long)r.map_len);
	remember_freed(pg, r.ptr);
	release(pg, r.map, r.map_len, r.vma, false);
	return true;
}

/* Moves the block to a new mapping by copying `kept` bytes: in guard mode,
 * under NOWAIT (from the cache only), and into warm cached pages. */
static int move_copy(struct page *pg, const struct rec *r, kalloc_layout_t l,
		     size_t kept, enum source from, bool want_zero,
		     kalloc_buf_t *out)
{
	bool nowait = from == NOWAIT;
	struct shape sh = shape_of(pg, l);
	uintptr_t map;
	size_t len;
	uint64_t vma;
	int err = obtain(pg, &sh, from, want_zero, &map, &len, &vma);
	if (err)
		return err;
	struct rec n = { map + sh.offset, map, len, l.size, vma };
	memcpy((void *)n.ptr, (void *)r->ptr, kept);
	atomic_fetch_add_explicit(&pg->copied, kept, memory_order_relaxed);
	err = swap_rec(pg, r->ptr, &n, nowait);
	if (err) {
		release(pg, map, len, vma, nowait);
		return err;
	}
	remember_freed(pg, r->ptr);
	release(pg, r->map, r->map_len, r->vma, nowait);
	*out = (kalloc_buf_t){ (void *)n.ptr, usable(pg, &n) };
	return KALLOC_OK;
}

/*
 * The mapping at p (old_len bytes) resized to len and aligned to align,
 * moving its pages (never copying); MAP_FAILED leaves it untouched.
 */
static void *resize_mapping(struct page *pg, uintptr_t p, size_t old_len,
			    size_t len, size_t align)
{
	if (PAGE_TOOL(pg)) /* p's range may go: reset the tool's view of it */
		PAGE_TOOL(pg)->open((void *)p, old_len);
	if (align <= pg->pagesz)
		return mremap((void *)p, old_len, len, MREMAP_MAYMOVE);
	if (!(p & (align - 1))) {
		void *q = mremap((void *)p, old_len, len, 0);
		if (q != MAP_FAILED)
			return q;
	}
	/* mremap may move a block anywhere: move it onto an aligned target */
	void *t = map_aligned(len, align, pg->pagesz);
	if (!t)
		return MAP_FAILED;
	void *q = mremap((void *)p, old_len, len, MREMAP_MAYMOVE | MREMAP_FIXED, t);
	if (q == MAP_FAILED)
		unmap((uintptr_t)t, len);
	return q;
}

/*
 * Growth or realignment without guard pages, by mremap.  The caller has
 * already removed r from the table: once mremap returns, the old range is
 * free address space that another thread may map and record under the same
 * address.
 */
static int move_remap(struct page *pg, const struct rec *r, kalloc_layout_t l,
		      size_t kept, bool want_zero, kalloc_buf_t *out)
{
	size_t len = round_up(l.size, pg->pagesz);
	void *q = resize_mapping(pg, r->ptr, r->map_len, len, l.align);
	/* A shard keeps a free slot, so the removed record always fits back;
	 * a new key's shard may have to grow, and with every shard at most
	 * half full that needs the table's mmap to fail many times in a row. */
	struct rec n = { (uintptr_t)q, (uintptr_t)q, len, l.size,
			 (uintptr_t)q == r->ptr ? r->vma : new_vma(pg) };
	const struct rec *keep = q == MAP_FAILED ? r : &n;
	struct shard *s = table_shard(&pg->table, keep->ptr);
	shard_lock(s, false);
	int err = shard_insert(s, keep, false);
	shard_unlock(s);
	if (err)
		pg->host->corruption(NAME, (void *)keep->ptr, "out of memory "
				     "for the block table while moving a block");
	if (q == MAP_FAILED)
		return KALLOC_ENOMEM;
	huge_advice(pg, (uintptr_t)q, len, true);
	count(pg, 0, (long)len - (long)r->map_len);
	if ((uintptr_t)q != r->ptr)
		remember_freed(pg, r->ptr);
	/* Pages past the old mapping are fresh; the old ones may hold bytes
	 * past the old size. */
	size_t old_end = min_size(r->map_len, len);
	if (want_zero && kept < old_end)
		memset((char *)q + kept, 0, old_end - kept);
	*out = (kalloc_buf_t){ q, len };
	return KALLOC_OK;
}

static int block_realloc(struct page *pg, void *ptr, kalloc_layout_t l,
			 kalloc_layout_t old, bool nowait, bool want_zero,
			 kalloc_buf_t *out)
{
	uintptr_t p = (uintptr_t)ptr;
	struct shard *s = table_shard(&pg->table, p);
	if (!shard_lock(s, nowait))
		return KALLOC_EAGAIN;
	struct rec *slot = shard_find(s, p);
	if (!slot) {
		shard_unlock(s);
		not_ours(pg, ptr, "realloc");
	}
	size_t had = usable(pg, slot);
	size_t kept = min_size(old.align ? old.size : had, l.size);
	bool aligned = !(p & (l.align - 1));
	size_t len = round_up(l.size, pg->pagesz);
	/* In place: the block keeps its pointer and mapping (or its head). */
	struct shape sh = shape_of(pg, l);
	bool in_place = aligned && (pg->guard ? shape_usable(pg, &sh) == had
					      : len <= slot->map_len);
	/* Or grows over the cached pages right after it: no system call. */
	bool clean = true;
	if (!in_place && !pg->guard && aligned &&
	    cache_take_at(&pg->cache, p + slot->map_len, len - slot->map_len,
			  slot->vma, nowait, &clean)) {
		if (PAGE_TOOL(pg))
			PAGE_TOOL(pg)->open((void *)(p + slot->map_len),
				       len - slot->map_len);
		count(pg, 0, (long)(len - slot->map_len));
		slot->map_len = len;
		in_place = true;
		if (!nowait)
			huge_advice(pg, p, len, true);
	}
	if (in_place) {
		if (!pg->guard && !nowait && len < slot->map_len) {
			release(pg, p + len, slot->map_len - len, slot->vma,
				false);
			count(pg, 0, -(long)(slot->map_len - len));
			slot->map_len = len;
		}
		size_t have = usable(pg, slot);
		size_t stale = min_size(had, have); /* may hold old bytes */
		if (want_zero && kept < stale)
			memset((char *)p + kept, 0, stale - kept);
		if (want_zero && !clean)
			memset((char *)p + had, 0, have - had);
		slot->size = l.size;
		shard_unlock(s);
		*out = (kalloc_buf_t){ ptr, have };
		return KALLOC_OK;
	}
	struct rec r = *slot;
	if (pg->guard || nowait) {
		shard_unlock(s); /* the caller owns the block: r stays valid */
		return move_copy(pg, &r, l, kept, nowait ? NOWAIT : ANYWHERE,
				 want_zero, out);
	}
	/*
	 * A growing block up to COPY_MAX is copied into resident cached pages
	 * when there are some: a copy costs less than the page faults of the
	 * fresh pages an mremap would add (a vector grown 1.5x at a time
	 * writes them all).  Larger blocks, or no warm pages: mremap.
	 */
	if (r.map_len <= COPY_MAX) {
		shard_unlock(s);
		if (move_copy(pg, &r, l, kept, WARM_ONLY, want_zero, out) ==
		    KALLOC_OK)
			return KALLOC_OK;
		shard_lock(s, false);
		slot = shard_find(s, p);
	}
	shard_remove(s, slot);
	shard_unlock(s);
	return move_remap(pg, &r, l, kept, want_zero, out);
}

/* ---- plugin entry points ----------------------------------------------- */

/* A live block's requested size and usable length; false if none. */
static bool block_sizes(struct page *pg, const void *ptr, size_t *req,
			size_t *usable_len)
{
	struct shard *s = table_shard(&pg->table, (uintptr_t)ptr);
	shard_lock(s, false);
	struct rec *slot = shard_find(s, (uintptr_t)ptr);
	if (slot) {
		*req = slot->size;
		*usable_len = usable(pg, slot);
	}
	shard_unlock(s);
	return slot != NULL;
}

static int do_realloc(struct page *pg, void *ptr, kalloc_layout_t l,
		      kalloc_layout_t old, kalloc_flags_t flags,
		      kalloc_buf_t *out);

/*
 * A resize under a memory tool: a new block, the content copied, then the
 * old block told freed before it is freed.  (A resize in do_realloc
 * releases pages first, the old block's or a shrunk block's tail; another
 * thread could map them and tell the tool of its block before this one's
 * news reached the tool, which would then take that block for freed.)
 */
static int tool_move(struct page *pg, void *ptr, size_t req, kalloc_layout_t l,
		     kalloc_flags_t flags, kalloc_buf_t *out)
{
	kalloc_buf_t b, none;
	int err = do_realloc(pg, NULL, l, KALLOC_LAYOUT_UNKNOWN, flags, &b);
	if (err)
		return err;
	PAGE_TOOL(pg)->alloc(b.ptr, l.size, b.len, flags & KALLOC_ZERO);
	memcpy(b.ptr, ptr, req < l.size ? req : l.size);
	PAGE_TOOL(pg)->free(ptr);
	do_realloc(pg, ptr, KALLOC_LAYOUT(0, 1), KALLOC_LAYOUT_UNKNOWN, 0, &none);
	*out = (kalloc_buf_t){ b.ptr, l.size };
	return KALLOC_OK;
}

/*
 * realloc under a memory tool (plugin.h): the same, with the tool told,
 * always before page gives memory back.  Every resize moves (tool_move),
 * as the tools' own realloc does.
 */
static __attribute__((noinline)) int tool_realloc(struct page *pg, void *ptr,
						kalloc_layout_t l,
						kalloc_layout_t old,
						kalloc_flags_t flags,
						kalloc_buf_t *out)
{
	size_t req = 0, had = 0;
	bool live = ptr && block_sizes(pg, ptr, &req, &had);
	if (live && l.size)
		return tool_move(pg, ptr, req, l, flags, out);
	if (live)
		PAGE_TOOL(pg)->free(ptr);
	int err = do_realloc(pg, ptr, l, old, flags, out);
	if (err || l.size == 0)
		return err;
	PAGE_TOOL(pg)->alloc(out->ptr, l.size, out->len, flags & KALLOC_ZERO);
	out->len = l.size;
	return KALLOC_OK;
}

static int page_realloc(void *state, void *ptr, kalloc_layout_t l,
			kalloc_layout_t old, kalloc_flags_t flags,
			kalloc_buf_t *out)
{
	struct page *pg = state;
	if (PAGE_TOOL(pg))
		return tool_realloc(pg, ptr, l, old, flags, out);
	return do_realloc(pg, ptr, l, old, flags, out);
}

static int do_realloc(struct page *pg, void *ptr, kalloc_layout_t l,
		      kalloc_layout_t old, kalloc_flags_t flags,
		      kalloc_buf_t *out)
{
	bool nowait = flags & (KALLOC_NOWAIT | KALLOC_ATOMIC);
	if (!nowait)
		cache_decay(&pg->cache, guard_bytes(pg));
	if (l.size == 0) {
		if (!block_free(pg, ptr))
			not_ours(pg, ptr, "free");
		return KALLOC_OK;
	}
	bool want_zero = flags & KALLOC_ZERO;
	if (!ptr)
		return block_alloc(pg, l, nowait, want_zero, out);
	return block_realloc(pg, ptr, l, old, nowait, want_zero, out);
}

/*
 * The fast entries: realloc's fresh allocation and free.  free reports a
 * double free (freed_by_us) and returns 0 for a foreign pointer.
 */
static kalloc_buf_t page_fast_alloc(void *state, kalloc_layout_t l)
{
	struct page *pg = state;
	kalloc_buf_t b;
	if (l.size <= PTRDIFF_MAX) {
		cache_decay(&pg->cache, guard_bytes(pg));
		if (block_alloc(pg, l, false, false, &b) == KALLOC_OK) {
			if (PAGE_TOOL(pg)) {
				PAGE_TOOL(pg)->alloc(b.ptr, l.size, b.len, 0);
				b.len = l.size;
			}
			return b;
		}
	}
	errno = ENOMEM;
	return (kalloc_buf_t){ NULL, 0 };
}

static int page_fast_free(void *state, void *ptr, kalloc_layout_t old)
{
	struct page *pg = state;
	int saved = errno; /* munmap and madvise may set it */
	(void)old;
	size_t req, had;
	if (PAGE_TOOL(pg) && block_sizes(pg, ptr, &req, &had))
		PAGE_TOOL(pg)->free(ptr);
	cache_decay(&pg->cache, guard_bytes(pg));
	int freed = block_free(pg, ptr);
	if (!freed && freed_by_us(pg, ptr))
		double_free(pg, ptr, "free");
	errno = saved;
	return freed;
}

static size_t page_usable_size(void *state, const void *ptr)
{
	struct page *pg = state;
	struct shard *s = table_shard(&pg->table, (uintptr_t)ptr);
	shard_lock(s, false);
	struct rec *slot = shard_find(s, (uintptr_t)ptr);
	size_t n = !slot ? 0 : PAGE_TOOL(pg) ? slot->size : usable(pg, slot);
	shard_unlock(s);
	if (!slot)
		not_ours(pg, ptr, "usable_size");
	return n;
}

static int page_owns(void *state, const void *ptr)
{
	struct page *pg = state;
	struct shard *s = table_shard(&pg->table, (uintptr_t)ptr);
	shard_lock(s, false);
	bool found = shard_find(s, (uintptr_t)ptr) != NULL;
	shard_unlock(s);
	return found;
}

/* Every lock, in one order: the shards by index, then the cache. */
static void page_prepare(void *state)
{
	struct page *pg = state;
	for (int i = 0; i < TABLE_SHARDS; i++)
		shard_lock(&pg->table.shard[i], false);
	cache_lock(&pg->cache);
}

static void page_parent(void *state)
{
	struct page *pg = state;
	cache_unlock(&pg->cache);
	for (int i = TABLE_SHARDS - 1; i >= 0; i--)
		shard_unlock(&pg->table.shard[i]);
}

/* The child unlocks as the parent does: these are plain mutexes, which
 * check no owner (the child's thread has another id), and re-initialising
 * a held lock would leave it held in ThreadSanitizer's view. */
static void page_child(void *state)
{
	page_parent(state);
}

static int page_stats(void *state, kalloc_stats_fn fn, void *ctx)
{
	struct page *pg = state;
	fn(ctx, NAME, "blocks", atomic_load(&pg->blocks));
	fn(ctx, NAME, "mapped_bytes", atomic_load(&pg->mapped));
	fn(ctx, NAME, "cache_bytes", cache_bytes(&pg->cache));
	fn(ctx, NAME, "cache_limit", pg->cache.limit);
	fn(ctx, NAME, "cache_hits", atomic_load(&pg->cache.hits));
	fn(ctx, NAME, "cache_misses", atomic_load(&pg->cache.misses));
	fn(ctx, NAME, "copied_bytes", atomic_load(&pg->copied));
	return 0;
}

/* "guard=1,cache=1048576": overrides of the environment settings. */
static int page_init(const kalloc_host_t *host, const char *options,
		     void **state)
{
	long guard = 0, cache = DEFAULT_CACHE_BYTES, huge = DEFAULT_HUGE_BYTES;
	const kalloc_plugin_option_t spec[] = {
		{ "guard", "KALLOC_PAGE_GUARD", &guard, NULL, 0, "0|1" },
		{ "cache", "KALLOC_PAGE_CACHE", &cache, NULL, 0, "BYTES" },
		{ "huge", "KALLOC_PAGE_HUGE", &huge, NULL, 0, "BYTES" },
	};
	int err = host->options(NAME, options, spec, 3);
	if (err)
		return err;
	struct page *pg = map_meta(sizeof(*pg));
	if (!pg)
		return KALLOC_ENOMEM;
	pg->host = host;
	pg->pagesz = (size_t)sysconf(_SC_PAGESIZE);
	pg->guard = guard != 0;
	pg->tool_ = host->tools();
	page_unmap_tools = PAGE_TOOL(pg);
	pg->huge = huge > 0 ? (size_t)huge : 0;
	atomic_init(&pg->blocks, 0);
	atomic_init(&pg->mapped, 0);
	atomic_init(&pg->vmas, 0);
	atomic_init(&pg->copied, 0);
	if (table_init(&pg->table, PAGE_TOOL(pg)) != KALLOC_OK) {
		unmap_meta(pg, sizeof(*pg));
		return KALLOC_ENOMEM;
	}
	cache_init(&pg->cache, cache > 0 ? (size_t)cache : 0, pg->guard);
	*state = pg;
	return KALLOC_OK;
}

/* Live blocks are the caller's to free before closing; they stay mapped. */
static void page_fini(void *state)
{
	struct page *pg = state;
	cache_fini(&pg->cache);
	table_fini(&pg->table);
	unmap_meta(pg, sizeof(*pg));
}

static const kalloc_plugin_ops_t ops = {
	.init = page_init,
	.fini = page_fini,
	.realloc = page_realloc,
	.usable_size = page_usable_size,
	.owns = page_owns,
	.stats = page_stats,
	.atfork_prepare = page_prepare,
	.atfork_parent = page_parent,
	.atfork_child = page_child,
};

static const kalloc_plugin_fast_t fast = {
	.alloc = page_fast_alloc,
	.free = page_fast_free,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = NAME,
	.version = KALLOC_VERSION_STRING,
	.description = "Vmalloc: one mapping per block, mremap realloc, "
		       "cache of freed mappings, optional guard pages",
	.flags = KALLOC_ZERO | KALLOC_NOWAIT | KALLOC_ATOMIC,
	.detects = KALLOC_DETECT_FOREIGN_FREE | KALLOC_DETECT_DOUBLE_FREE,
	.max_align = (size_t)1 << 30,
	.max_size = PTRDIFF_MAX,
	.ops = &ops,
	.fast = &fast,
};

/*
 * slab: the plugin descriptor and its entry points.
 *
 * One process-wide allocator: every instance (kalloc_open("slab") or the
 * shared handle) serves from the same heaps and chunks, as kmalloc is one
 * allocator for the whole kernel.  So owns() answers for blocks of any slab
 * instance, and fini leaves the memory in place (blocks may outlive a
 * handle only if the caller breaks kalloc_close's contract).
 *
 * Fast paths (no lock, no atomic read-modify-write): allocation pops the
 * current slab of the thread's heap; a free of a block whose slab the
 * thread's heap owns pushes it back.  Everything else is out of line.
 *
 * Sizes: classes up to 32 KiB with alignment up to 4096 (class.h); up to
 * 256 KiB with alignment up to 32 KiB, a span of whole units per block
 * (medium.c); above, page-granular mappings (large.c) up to alignment
 * 2 MiB.  realloc: in place when the block is big enough and aligned,
 * unless the new size fits a class at most half the block's size (then it
 * moves, if that allocation succeeds); medium blocks give back or take
 * units after them, large blocks shrink by unmapping their tail and grow
 * with mremap.  Otherwise allocate, copy, free.
 */
#include "slab.h"

#include <errno.h>
#include <string.h>

/* The largest block: a large mapping's size plus its alignment and header
 * never overflow. */
#define SLAB_MAX_SIZE ((size_t)PTRDIFF_MAX - CHUNK_SIZE)

const kalloc_host_t *slab_host;
#ifndef KALLOC_NO_TOOLS
const kalloc_tools_t *slab_tool;
#endif
long slab_decay_ms = 1000;

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int instances;
static int fork_depth; /* prepare hooks run once per instance */

#define DEFAULT_DECAY_MS 1000

static int slab_init(const kalloc_host_t *host, const char *options,
		     void **state)
{
	long decay = DEFAULT_DECAY_MS;
	const kalloc_plugin_option_t spec[] = {
		{ "decay_ms", "KALLOC_SLAB_DECAY_MS", &decay, NULL, 0, "MS" },
	};
	int err = host->options("slab", options, spec, 1);
	if (err)
		return err;
	pthread_mutex_lock(&init_lock);
	if (!slab_host) { /* one allocator: the first instance's options */
		slab_decay_ms = decay;
#ifndef KALLOC_NO_TOOLS
		slab_tool = host->tools();
#endif
		slab_classes_init();
		slab_secret_init();
		err = slab_registry_init();
		if (!err)
			err = slab_pool_init();
		if (!err)
			err = slab_heap_init();
		if (!err)
			slab_host = host;
		else
			host->log("slab", "cannot map its initial memory");
	}
	if (!err)
		instances++;
	pthread_mutex_unlock(&init_lock);
	*state = &instances;
	return err;
}

static void slab_fini(void *state)
{
	(void)state;
	pthread_mutex_lock(&init_lock);
	instances--;
	pthread_mutex_unlock(&init_lock);
}

/* ---- allocation --------------------------------------------------------- */

/* c: the class, or -1 for a medium or large block of (size, align);
 * growing: the block replaces a smaller one (realloc). */
static int alloc_slow(int c, size_t size, size_t align, kalloc_flags_t f,
		      bool growing, kalloc_buf_t *out, bool *zeroed)
{
	bool nowait = f & (KALLOC_NOWAIT | KALLOC_ATOMIC);
	bool atomic = f & KALLOC_ATOMIC;
	void *p;
	size_t len = 0;
	*zeroed = false;
	if (c < 0 && slab_medium_fits(size, align)) {
		p = slab_medium_alloc(size, nowait, atomic, growing, &len,
				      zeroed);
	} else if (c < 0) {
		p = slab_large_alloc(size, align, nowait, growing, &len,
				     zeroed);
	} else {
		struct heap *h = slab_heap_acquire(nowait);
		if (h == HEAP_TEARDOWN)
			p = slab_fallback_alloc((unsigned)c, nowait, atomic);
		else if (h)
			p = slab_alloc_slow(h, (unsigned)c, nowait, atomic);
		else
			p = NULL;
		len = slab_classes[c].size;
	}
	if (!p)
		return nowait ? KALLOC_EAGAIN : KALLOC_ENOMEM;
	*out = (kalloc_buf_t){ p, len };
	return KALLOC_OK;
}

/* Any allocation not served by a fast path: of class c, or of a large
 * block (c = -1). */
static __attribute__((noinline)) int alloc_block_slow(int c, size_t size,
						    size_t align,
						    kalloc_flags_t f, size_t kept,
						    kalloc_buf_t *out)
{
	bool zeroed;
	int err = alloc_slow(c, size, align, f, kept && kept < size, out,
			     &zeroed);
	if (!err && slab_tool) { /* every allocation comes here (slab.h) */
		slab_tool->alloc(out->ptr, size, out->len, f & KALLOC_ZERO);
		out->len = size;
	}
	if (!err && (f & KALLOC_ZERO) && !zeroed)
		memset((char *)out->ptr + kept, 0, out->len - kept);
	return err;
}

/* The current slab of the class is exhausted: refill from the thread's own
 * heap (no lookups), then as alloc_block. */
static __attribute__((noinline)) int alloc_refill(struct heap *h, int c,
						kalloc_flags_t f, size_t kept,
						kalloc_buf_t *out)
{
	bool nowait = f & (KALLOC_NOWAIT | KALLOC_ATOMIC);
	void *p = slab_alloc_slow(h, (unsigned)c, nowait, f & KALLOC_ATOMIC);
	if (unlikely(!p))
		return nowait ? KALLOC_EAGAIN : KALLOC_ENOMEM;
	size_t len = slab_classes[c].size;
	if (f & KALLOC_ZERO)
		memset((char *)p + kept, 0, len - kept);
	*out = (kalloc_buf_t){ p, len };
	return KALLOC_OK;
}

/* A block from the fast path under ZERO: zeros from byte `kept` on. */
static __attribute__((noinline)) int alloc_zeroed(void *p, size_t len,
						 size_t kept, kalloc_buf_t *out)
{
	memset((char *)p + kept, 0, len - kept);
	*out = (kalloc_buf_t){ p, len };
	return KALLOC_OK;
}

/*
 * An allocation; with ZERO, zeros from byte `kept` on.  align is a power of
 * two and size + align does not overflow (plugin.h), so n >= align: a class
 * up to CLASS_SMALL_MAX never needs the alignment limit checked.
 */
static inline __attribute__((always_inline)) int
alloc_block(size_t size, size_t align, kalloc_flags_t f, size_t kept,
	    kalloc_buf_t *out)
{
	size_t n = (size + align - 1) & ~(align - 1);
	struct heap *h = slab_tl_heap;
	if (unlikely(!heap_owned(h)))
		return alloc_block_slow(slab_class_of(size, align), size, align,
					f, kept, out);
	unsigned c;
	if (likely(n <= CLASS_SMALL_MAX))
		c = slab_class_small[(n + 7) >> 3];
	else if (n <= CLASS_MAX && align <= CLASS_MAX_ALIGN)
		c = slab_class_big[(n + 127) >> 7];
	else
		return alloc_block_slow(-1, size, align, f, kept, out);
	struct mag *m = &h->mag[c];
	size_t k = mag_count(m);
	void *p;
	if (likely(k)) {
		p = mag_pop(m, k);
	} else {
		struct slab *s = h->cur[c];
		if (unlikely(!s->free))
			return alloc_refill(h, (int)c, f, kept, out);
		p = slab_pop(s);
	}
	if (unlikely(f & KALLOC_ZERO))
		return alloc_zeroed(p, m->size, kept, out);
	*out = (kalloc_buf_t){ p, m->size };
	return KALLOC_OK;
}

/* ---- free --------------------------------------------------------------- */

/* The slab of a slab block p (its block index in *idx), or NULL for a
 * large block (*large set); reports any other pointer as corruption. */
static inline struct slab *lookup(const void *p, struct large **large,
				  uint64_t *idx)
{
	struct chunk *c = chunk_of(p);
	if (unlikely(!slab_in_chunk(p))) {
		struct large *l = (struct large *)c;
		if (!slab_in_large(p) || large_block(l) != p)
			slab_bad_free(p);
		*large = l;
		return NULL;
	}
	struct slab *s = slab_of(c, p);
	int64_t i = slab_block_index(s, p);
	if (unlikely(i < 0))
		slab_bad_free(p);
	*idx = (uint64_t)i;
	return s;
}

static __attribute__((noinline)) void free_large(struct large *l)
{
	slab_large_free(l);
}

static int free_to_slab(struct slab *s, void *p, bool nowait);

/* The magazine is full: its older half goes back to the slabs first.  A
 * placeholder heap's magazines are always full: no heap of its own. */
static __attribute__((noinline)) int free_spill(struct heap *h, struct slab *s,
						struct mag *m, void *p,
						bool nowait)
{
	if (unlikely(!heap_owned(h)))
		return free_to_slab(s, p, nowait);
	if (unlikely(!slab_tag_free(p)))
		slab_double_free(p, s->size);
	unsigned k = m->cap / 2u;
	slab_mag_spill(h, m, k, nowait);
	m->slot[k] = p;
	mag_set_count(m, k + 1);
	return 1;
}

/* Misuse found by a fast path, reported by a tail call: the path needs no
 * frame for the call (noipa: not seen as noreturn, which is called). */
static __attribute__((noipa, cold)) int report_double_free(struct slab *s,
							    void *p)
{
	slab_double_free(p, s->size);
}

static __attribute__((noipa, cold)) int report_bad_free(void *p)
{
	slab_bad_free(p);
}

/* Pushes p, a kmalloc block of class c (checked), onto h's magazine.  The
 * full test comes first: a placeholder heap's free takes free_spill's
 * path before anything reads the block (a memory tool sees every free). */
static inline __attribute__((always_inline)) int
free_to_mag(struct heap *h, struct slab *s, void *p, size_t c, bool nowait)
{
	struct mag *m = &h->mag[c];
	__asm__("" : "+r"(m)); /* (the slot addressed from m, see mag_pop) */
	size_t k = mag_count(m);
	if (unlikely(k == m->cap))
		return free_spill(h, s, m, p, nowait);
	if (unlikely(!slab_tag_free(p)))
		return report_double_free(s, p);
	m->slot[k] = p;
	mag_set_count(m, k + 1);
	return 1;
}

/*
 * A free that does not go to a magazine: a medium block (never under
 * NOWAIT: its span goes back to the pool), an object cache's block (the
 * core keeps its magazines), or a thread without a heap (tearing down, or
 * under a memory tool, which sees every free).  A thread that has not
 * allocated yet gets its heap here, as at its first allocation: a thread
 * that only frees (a consumer) then keeps what it frees and gives it back
 * in runs, one atomic push per run, instead of one per block.
 */
static __attribute__((noinline)) int free_to_slab(struct slab *s, void *p,
						  bool nowait)
{
	if (s->cls == CLASS_MEDIUM) {
		slab_medium_free(s, p);
		return 1;
	}
	struct heap *h = slab_tl_heap;
	if (h == HEAP_NONE && s->cls < CLASS_COUNT && !slab_tool &&
	    (h = slab_heap_acquire(nowait)) && heap_owned(h))
		return free_to_mag(h, s, p, s->cls, nowait);
	uint64_t idx = slab_index(s, (uintptr_t)p + s->neg_base);
	if (!slab_tool && !slab_tag_free(p))
		slab_double_free(p, s->size);
	if (h && heap_owned(h) &&
	    atomic_load_explicit(&s->owner, memory_order_relaxed) == h)
		slab_free_local(h, s, p, idx, nowait);
	else
		slab_remote_free(s, p, idx);
	return 1;
}

/*
 * Frees p, a block of s (checked): a thread with a heap keeps a kmalloc
 * block in its magazine, whichever heap's slab it is from; a placeholder
 * heap's magazine sends it on (free_spill).  Returns 1.  The slow cases
 * are tail calls, so the path keeps no frame.
 */
static inline __attribute__((always_inline)) int
free_in_slab(struct slab *s, void *p, bool nowait)
{
	struct heap *h = slab_tl_heap;
	size_t c = s->cls;
	if (unlikely(c >= CLASS_COUNT))
		return free_to_slab(s, p, nowait);
	return free_to_mag(h, s, p, c, nowait);
}

static inline __attribute__((always_inline)) void free_block(void *p,
							     bool nowait)
{
	struct large *l = NULL;
	uint64_t idx;
	struct slab *s = lookup(p, &l, &idx);
	if (unlikely(!s)) {
		free_large(l);
		return;
	}
	free_in_slab(s, p, nowait);
}

/* ---- realloc of a live block ------------------------------------------ */

/* Moves ptr's first `kept` bytes to a new block; false if none was had. */
static bool move_block(void *ptr, kalloc_layout_t l, kalloc_flags_t f,
		       size_t kept, bool nowait, kalloc_buf_t *out)
{
	if (alloc_block(l.size, l.align, f, kept, out) != KALLOC_OK)
		return false;
	memcpy(out->ptr, ptr, kept);
	free_block(ptr, nowait);
	return true;
}

/* Every resize but a slab block staying as it is; s or lg is ptr's. */
static __attribute__((noinline)) int
resize_other(void *ptr, struct slab *s, struct large *lg, kalloc_layout_t l,
	     kalloc_layout_t old, kalloc_flags_t f, kalloc_buf_t *out)
{
	bool nowait = f & (KALLOC_NOWAIT | KALLOC_ATOMIC);
	size_t usable = s ? s->size : lg->usable;
	/* (a stale old layout never makes us copy past the block) */
	size_t old_size = old.align && old.size < usable ? old.size : usable;
	size_t kept = old_size < l.size ? old_size : l.size;
	bool aligned = ((uintptr_t)ptr & (l.align - 1)) == 0;
	int c = slab_class_of(l.size, l.align);
	/* a medium block resizes in place but under a memory tool (a move
	 * must be an allocation and a free, which the tool is told of), and
	 * never moves under NOWAIT (its free may madvise) */
	bool medium = s && s->cls == CLASS_MEDIUM;
	bool in_place = medium && aligned && !slab_tool;

	if (aligned && l.size <= usable) {
		/* It fits.  Move only to a much smaller class (slab) or from a
		 * mapping to a class (never under NOWAIT: that would unmap). */
		bool smaller = s ? c >= 0 && slab_classes[c].size * 2 <= usable &&
					   !(medium && nowait)
				 : c >= 0 && !nowait;
		if (smaller && move_block(ptr, l, f, kept, nowait, out))
			return KALLOC_OK;
		if (!s) /* unmaps the tail pages (not under NOWAIT) */
			slab_large_resize(lg, l.size, l.align, nowait, false,
					  &usable);
		else if (in_place && l.size * 3 <= usable - SLAB_UNIT)
			/* its tail units go back once it needs a third of
			 * them or less: a block growing 1.5x at a time, its
			 * span taken twice as long (medium.c), keeps it */
			slab_medium_resize(s, l.size, nowait, false, &usable);
		if (f & KALLOC_ZERO)
			memset((char *)ptr + kept, 0, usable - kept);
		*out = (kalloc_buf_t){ ptr, usable };
		return KALLOC_OK;
	}
	size_t len;
	if (in_place &&
	    slab_medium_resize(s, l.size, nowait, f & KALLOC_ZERO, &len)) {
		if (f & KALLOC_ZERO)
			memset((char *)ptr + kept, 0, usable - kept);
		*out = (kalloc_buf_t){ ptr, len };
		return KALLOC_OK;
	}
	if (!s && aligned && c < 0 && !slab_tool) {
		/* grow a mapping by remapping: pages past `usable` are zero */
		void *p = slab_large_resize(lg, l.size, l.align, nowait,
					    f & KALLOC_ZERO, &len);
		if (p) {
			if (f & KALLOC_ZERO)
				memset((char *)p + kept, 0, usable - kept);
			*out = (kalloc_buf_t){ p, len };
			return KALLOC_OK;
		}
	}
	if ((!s || medium) && nowait)
		return KALLOC_EAGAIN; /* freeing it may be a system call */
	if (move_block(ptr, l, f, kept, nowait, out))
		return KALLOC_OK;
	return nowait ? KALLOC_EAGAIN : KALLOC_ENOMEM;
}

static inline int resize(void *ptr, kalloc_layout_t l,
					  kalloc_layout_t old, kalloc_flags_t f,
					  kalloc_buf_t *out)
{
	struct large *lg = NULL;
	uint64_t idx = 0;
	struct slab *s = lookup(ptr, &lg, &idx);
	if (s && unlikely(!slab_is_live(s, idx) ||
			  (!slab_tool && slab_tagged(ptr))))
		slab_host->corruption("slab", ptr,
				      "realloc of a %u-byte block that is not "
				      "allocated (freed?)", s->size);
	/* A slab block that holds the new size, aligned, stays unless a
	 * class at most half its size fits, impossible above half: decided
	 * with no class lookup. */
	if (likely(s && !(f & KALLOC_ZERO)) && l.size <= s->size &&
	    l.size * 2 > s->size && !((uintptr_t)ptr & (l.align - 1))) {
		*out = (kalloc_buf_t){ ptr, s->size };
		return KALLOC_OK;
	}
	return resize_other(ptr, s, lg, l, old, f, out);
}

/* ---- entry points ------------------------------------------------------- */

static size_t real_usable(const void *ptr);

/*
 * A resize under a memory tool (slab.h): the recorded request is the old
 * layout, so slab copies only what the caller could write, and the tail
 * of the block is opened for slab's own zeroing.  A move is always an
 * allocation and a free (move_block), described as they happen; a block
 * that stays is described here.
 */
static __attribute__((noinline)) int tool_resize(void *ptr, kalloc_layout_t l,
					       kalloc_flags_t f,
					       kalloc_buf_t *out)
{
	size_t req = slab_tool->size(ptr), had = real_usable(ptr);
	if (!req) /* not a live block: the plain path reports it */
		return resize(ptr, l, KALLOC_LAYOUT_UNKNOWN, f, out);
	if (had > req)
		slab_tool->open((char *)ptr + req, had - req);
	int err = resize(ptr, l, KALLOC_LAYOUT(req, 1), f, out);
	if (err) {
		if (had > req)
			slab_tool->hide((char *)ptr + req, had - req);
		return err;
	}
	/* a move was an allocation and a free (resize_other), told already;
	 * ptr may be another thread's block by now */
	if (out->ptr == ptr)
		slab_tool->resized(ptr, had, ptr, l.size, out->len,
				   f & KALLOC_ZERO);
	out->len = l.size;
	return KALLOC_OK;
}

static int slab_realloc(void *state, void *ptr, kalloc_layout_t l,
			kalloc_layout_t old, kalloc_flags_t f, kalloc_buf_t *out)
{
	(void)state;
	if (unlikely(slab_tool) && ptr && l.size)
		return tool_resize(ptr, l, f, out);
	if (likely(!ptr))
		return alloc_block(l.size, l.align, f, 0, out);
	if (l.size == 0) {
		free_block(ptr, false);
		return KALLOC_OK;
	}
	return resize(ptr, l, old, f, out);
}

static size_t slab_usable_size(void *state, const void *ptr)
{
	(void)state;
	size_t req;
	if (unlikely(slab_tool) && (req = slab_tool->size(ptr)))
		return req; /* what the tool lets the caller use */
	return real_usable(ptr);
}

static size_t real_usable(const void *ptr)
{
	struct chunk *c = chunk_of(ptr);
	if (slab_in_large(ptr)) {
		const struct large *l = (const struct large *)c;
		return large_block(l) == ptr ? l->usable : 0;
	}
	if (!slab_in_chunk(ptr))
		return 0;
	struct slab *s = slab_of(c, ptr);
	return slab_block_index(s, ptr) >= 0 ? s->size : 0;
}

/* 1 a live block; 2 inside slab's memory but no live block (freed, or
 * inside one), or a large block just freed; 0 none of slab's.  (Under a
 * memory tool a free is queued until collected: the tool's record says
 * whether a block of slab's is live; other backends' blocks are in that
 * record too, so slab's own geometry decides first.) */
static int slab_owns(void *state, const void *ptr)
{
	(void)state;
	struct chunk *c = chunk_of(ptr);
	bool live;
	if (slab_in_large(ptr)) {
		if (large_block((const struct large *)c) != ptr)
			return slab_in_large_map(ptr) ? 2 : 0;
		live = true;
	} else if (!slab_in_chunk(ptr)) {
		return slab_large_was_freed(ptr) ? 2 : 0;
	} else {
		struct slab *s = slab_of(c, ptr);
		int64_t idx = slab_block_index(s, ptr);
		if (idx < 0)
			return 2;
		live = slab_is_live(s, (uint64_t)idx) &&
		       (slab_tool || !slab_tagged(ptr));
	}
	if (unlikely(slab_tool))
		live = slab_tool->size(ptr) != 0;
	return live ? 1 : 2;
}

/*
 * The fast entries (one slab allocator per process).  free looks p up
 * once, as realloc's free does, and reports the same misuse (a double
 * free, a pointer inside a block); a pointer outside all of slab's memory
 * returns 0, touching nothing (the shim then knows it is foreign).
 */
static __attribute__((noinline, cold)) kalloc_buf_t no_memory(void)
{
	errno = ENOMEM;
	return (kalloc_buf_t){ NULL, 0 };
}

/* Every fast allocation but a small block from the current slab.  The
 * core's checks, of which slab's large blocks need one: size within
 * max_size (so size + alignment cannot overflow). */
static __attribute__((noinline)) kalloc_buf_t fast_alloc_other(size_t size,
							    size_t align)
{
	kalloc_buf_t b;
	if (unlikely(size > SLAB_MAX_SIZE || alloc_block(size, align, 0, 0, &b)))
		return no_memory();
	return b;
}

/* The magazine is empty: the current slab's next block, or any other way
 * (fast_alloc_other, which also serves a placeholder heap). */
static __attribute__((noinline)) kalloc_buf_t fast_alloc_slab(struct heap *h,
							   size_t c,
							   size_t size,
							   size_t align)
{
	struct slab *s;
	if (likely(heap_owned(h)) && likely((s = h->cur[c])->free))
		return (kalloc_buf_t){ slab_pop(s), s->size };
	return fast_alloc_other(size, align);
}

/* A block of class c for the fast alloc: the magazine's newest, else the
 * current slab's next (or any other way). */
static inline __attribute__((always_inline)) kalloc_buf_t
fast_take(struct heap *h, size_t c, size_t size, size_t align)
{
	struct mag *m = &h->mag[c];
	size_t k = mag_count(m);
	if (likely(k))
		return (kalloc_buf_t){ mag_pop(m, k), m->size };
	return fast_alloc_slab(h, c, size, align);
}

/* A block of a class above CLASS_SMALL_MAX (classes by slab_class_big),
 * else any other way. */
static __attribute__((noinline)) kalloc_buf_t fast_alloc_big(size_t size,
							    size_t align)
{
	size_t n = (size + align - 1) & ~(align - 1);
	struct heap *h = slab_tl_heap;
	if (likely(n - 1 < CLASS_MAX && align <= CLASS_MAX_ALIGN))
		return fast_take(h, slab_class_big[(n + 127) >> 7], size, align);
	return fast_alloc_other(size, align);
}

/* A small block from the thread's magazine: the result in two registers,
 * nothing but the magazine touched, no frame.  (n - 1 < CLASS_SMALL_MAX
 * also rules out a size that wrapped to 0 when rounded.)  The layout's
 * words are taken as registers: GCC 12 otherwise spills the struct to the
 * stack and reloads it for the calls of the rare paths. */
static kalloc_buf_t slab_fast_alloc(void *state, kalloc_layout_t l)
{
	(void)state;
	size_t size = l.size, align = l.align;
	__asm__("" : "+r"(size), "+r"(align));
	size_t n = (size + align - 1) & ~(align - 1);
	struct heap *h = slab_tl_heap;
	if (likely(n - 1 < CLASS_SMALL_MAX))
		return fast_take(h, slab_class_small[(n + 7) >> 3], size, align);
	return fast_alloc_big(size, align);
}

/* A pointer outside slab's chunks: a large block, or none of slab's. */
static __attribute__((noinline)) int free_outside_chunks(void *p)
{
	struct chunk *c = chunk_of(p);
	if (!slab_in_large(p)) {
		if (unlikely(slab_large_was_freed(p)))
			slab_bad_free(p); /* a large block's double free */
		return 0;
	}
	if (large_block((struct large *)c) != p) {
		if (slab_in_large_map(p))
			slab_bad_free(p);
		return 0; /* another mapping in the granule: not slab's */
	}
	free_large((struct large *)c);
	return 1;
}

/* The fast free's body: the chunk test, the interior test, the magazine. */
static inline __attribute__((always_inline)) int free_fast(void *p)
{
	if (unlikely(!slab_in_chunk(p)))
		return free_outside_chunks(p);
	struct slab *s = slab_of(chunk_of(p), p);
	if (unlikely(!slab_is_block(s, p)))
		return report_bad_free(p);
	return free_in_slab(s, p, false); /* reports a double free */
}

static int slab_fast_free(void *state, void *p, kalloc_layout_t old)
{
	(void)state;
	(void)old; /* the slab knows the size: nothing to look up */
	return free_fast(p);
}

/*
 * The malloc entries: the fast entries for malloc's layout {size, 16}
 * (size 0 as 1), without the words malloc does not have.  A request of n
 * bytes with alignment 16 takes the class of round_up(n, 16), whose index
 * in slab_class_small is that size / 8.
 */

/* The magazine is empty (a call of its own: the path keeps no frame, which
 * fast_take(...).ptr would not allow). */
static __attribute__((noinline)) void *malloc_slab(struct heap *h, size_t c,
						   size_t size, size_t align)
{
	return fast_alloc_slab(h, c, size, align).ptr;
}

/* A block of class c for malloc and aligned, as fast_take. */
static inline __attribute__((always_inline)) void *
malloc_take(struct heap *h, size_t c, size_t size, size_t align)
{
	struct mag *m = &h->mag[c];
	size_t k = mag_count(m);
	if (likely(k))
		return mag_pop(m, k);
	return malloc_slab(h, c, size, align);
}

/* Above CLASS_SMALL_MAX: a class by slab_class_big, whose sizes are
 * multiples of 128 (so (size + 127) / 128 indexes it as round_up(size,
 * 16) would); else any other way. */
static __attribute__((noinline)) void *malloc_other(size_t size)
{
	struct heap *h = slab_tl_heap;
	if (likely(size - 1 < CLASS_MAX))
		return malloc_take(h, slab_class_big[(size + 127) >> 7], size,
				   16);
	return fast_alloc_other(size ? size : 1, 16).ptr;
}

static void *slab_malloc(size_t size)
{
	struct heap *h = slab_tl_heap;
	if (likely(size - 1 < CLASS_SMALL_MAX))
		return malloc_take(h,
				   slab_class_small[((size + 15) >> 3) & ~(size_t)1],
				   size, 16);
	return malloc_other(size);
}

static int slab_free(void *p)
{
	return free_fast(p);
}

/* A pointer outside slab's chunks for free_own: a large block, or none of
 * slab's (NULL and the sentinels below 4096 too, which nothing of slab's
 * may look up), which goes to the host's foreign-free handler. */
static __attribute__((noinline)) void free_own_outside(void *p)
{
	if ((uintptr_t)p <= 4095 || !free_outside_chunks(p))
		slab_host->foreign_free(p);
}

/* free_fast without its answer: every path ends in a jump. */
static void slab_free_own(void *p)
{
	if (unlikely(!slab_in_chunk(p)))
		return free_own_outside(p);
	struct slab *s = slab_of(chunk_of(p), p);
	if (unlikely(!slab_is_block(s, p)))
		return (void)report_bad_free(p);
	(void)free_in_slab(s, p, false);
}

/* Above CLASS_SMALL_MAX once rounded to the alignment: fast_alloc_big's
 * way. */
static __attribute__((noinline)) void *aligned_other(size_t align,
						     size_t size)
{
	return fast_alloc_big(size, align).ptr;
}

/* posix_memalign's entry: slab_fast_alloc's small path, in malloc's
 * shape. */
static void *slab_aligned(size_t align, size_t size)
{
	size_t n = (size + align - 1) & ~(align - 1);
	struct heap *h = slab_tl_heap;
	if (likely(n - 1 < CLASS_SMALL_MAX))
		return malloc_take(h, slab_class_small[(n + 7) >> 3], size,
				   align);
	return aligned_other(align, size);
}

static int slab_malloc_entries(void *state, kalloc_malloc_t *out)
{
	(void)state; /* one slab allocator per process */
	/* free_own hands foreign pointers to the host: a host too old to
	 * take them gets none */
	bool foreign = slab_host->struct_size >=
		       offsetof(kalloc_host_t, foreign_free) +
			       sizeof(slab_host->foreign_free);
	*out = (kalloc_malloc_t){ slab_malloc, slab_free, slab_aligned,
				  foreign ? slab_free_own : NULL };
	return KALLOC_OK;
}

/*
 * The cache table (kcache.c): an object cache's class is a slot of the
 * heaps like a kmalloc class, its name the slot's index plus one.  alloc
 * is the fast path with the class already known; a thread without a heap
 * (under a memory tool, or past its teardown) takes alloc_block_slow,
 * which tells the tool.
 */
#define CLASS_OF(cls) ((unsigned)((uintptr_t)(cls) - 1))

static int slab_cache_create(void *state, kalloc_layout_t obj, unsigned flags,
			     void **cls)
{
	(void)state;
	unsigned c;
	int err = slab_kcache_create(obj, flags, &c);
	if (!err)
		*cls = (void *)(uintptr_t)(c + 1);
	return err;
}

static void slab_cache_destroy(void *state, void *cls)
{
	(void)state;
	slab_kcache_destroy(CLASS_OF(cls));
}

/* The class's current slab empty, or no heap: as alloc_block does. */
static __attribute__((noinline)) kalloc_buf_t
cache_alloc_other(struct heap *h, unsigned c, kalloc_flags_t f)
{
	kalloc_buf_t b;
	uint32_t size = slab_classes[c].size;
	int err = !heap_owned(h) ?
			  alloc_block_slow((int)c, size, size, f, 0, &b) :
			  alloc_refill(h, (int)c, f, 0, &b);
	return err ? (kalloc_buf_t){ NULL, 0 } : b;
}

static kalloc_buf_t slab_cache_alloc(void *state, void *cls, kalloc_flags_t f)
{
	(void)state;
	unsigned c = CLASS_OF(cls);
	struct heap *h = slab_tl_heap;
	struct slab *s;
	if (unlikely(!heap_owned(h)) ||
	    unlikely(!(s = h->cur[c])->free))
		return cache_alloc_other(h, c, f);
	void *p = slab_pop(s);
	if (unlikely(f & KALLOC_ZERO))
		memset(p, 0, s->size);
	return (kalloc_buf_t){ p, s->size };
}

/* Pops whole runs off the current slab, then one at a time. */
static size_t slab_cache_alloc_bulk(void *state, void *cls, kalloc_flags_t f,
				    size_t n, void **objs)
{
	unsigned c = CLASS_OF(cls);
	struct heap *h = slab_tl_heap;
	size_t i = 0;
	if (likely(heap_owned(h) &&
		   !(f & KALLOC_ZERO))) {
		struct slab *s = h->cur[c];
		while (i < n && s->free)
			objs[i++] = slab_pop(s);
	}
	for (; i < n; i++) {
		kalloc_buf_t b = slab_cache_alloc(state, cls, f);
		if (!b.ptr) {
			while (i--)
				free_block(objs[i], f & (KALLOC_NOWAIT |
							 KALLOC_ATOMIC));
			return 0;
		}
		objs[i] = b.ptr;
	}
	return n;
}

static void slab_cache_free_bulk(void *state, void *cls, size_t n,
				 void **objs)
{
	(void)state;
	(void)cls;
	for (size_t i = 0; i < n; i++)
		free_block(objs[i], false);
}

static void slab_cache_info(void *state, void *cls, kalloc_class_info_t *out)
{
	(void)state;
	slab_kcache_info(CLASS_OF(cls), out);
}

static void slab_atfork_prepare(void *state)
{
	(void)state;
	if (fork_depth++ == 0)
		slab_heap_atfork_prepare();
}

static void slab_atfork_parent(void *state)
{
	(void)state;
	if (--fork_depth == 0)
		slab_heap_atfork_parent();
}

static void slab_atfork_child(void *state)
{
	(void)state;
	if (--fork_depth == 0)
		slab_heap_atfork_child();
}

static int slab_stats(void *state, kalloc_stats_fn fn, void *ctx)
{
	(void)state;
	fn(ctx, "slab", "heaps", slab_heap_count());
	fn(ctx, "slab", "decay_ms", (uint64_t)slab_decay_ms);
	slab_large_stats(fn, ctx);
	slab_lcache_stats(fn, ctx);
	return slab_pool_stats(fn, ctx);
}

static const kalloc_plugin_ops_t ops = {
	.init = slab_init,
	.fini = slab_fini,
	.realloc = slab_realloc,
	.usable_size = slab_usable_size,
	.owns = slab_owns,
	.stats = slab_stats,
	.atfork_prepare = slab_atfork_prepare,
	.atfork_parent = slab_atfork_parent,
	.atfork_child = slab_atfork_child,
};

static const kalloc_plugin_fast_t fast = {
	.alloc = slab_fast_alloc,
	.free = slab_fast_free,
};

static const kalloc_plugin_cache_t cache = {
	.create = slab_cache_create,
	.destroy = slab_cache_destroy,
	.alloc = slab_cache_alloc,
	.alloc_bulk = slab_cache_alloc_bulk,
	.free_bulk = slab_cache_free_bulk,
	.info = slab_cache_info,
};

/* A large block's double free is a foreign pointer to slab: its mapping is
 * no longer registered once freed. */
KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = "slab",
	.version = "1.0",
	.description = "own allocator: size classes, per-thread heaps, remote "
		       "frees, decay to the OS, hardened free lists",
	.flags = KALLOC_ZERO | KALLOC_NOWAIT | KALLOC_ATOMIC,
	.detects = KALLOC_DETECT_DOUBLE_FREE | KALLOC_DETECT_INVALID_FREE |
		   KALLOC_DETECT_FOREIGN_FREE,
	.max_align = CHUNK_SIZE / 2,
	.max_size = SLAB_MAX_SIZE,
	.ops = &ops,
	.fast = &fast,
	.cache = &cache,
	.malloc_entries = slab_malloc_entries,
};

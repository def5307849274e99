/*
 * Object caches (kalloc_cache_*, the kernel's kmem_cache) on any backend.
 *
 * A cache fixes one object layout at create and takes its objects from its
 * handle's backend: from a class of its own when the backend has a cache
 * table (plugin.h; slab's classes of the exact object size, merged as the
 * kernel merges caches), else as ordinary blocks of the object layout.
 * Each thread keeps a magazine of free objects per cache (below), as
 * SLUB's per-CPU freelists; a native cache's frees are checked on the way
 * in (free tags).  Past the magazine, a cache with no constructor and no
 * TYPESAFE_BY_RCU goes to the backend, by its fast entries while the
 * handle is plain, else through kalloc_realloc with its instrumentation
 * (kalloc__cache_hint names the class there); the other caches keep their
 * free objects in a stash, as SLUB keeps them in its slabs.
 *
 * Invariants:
 *   - an object of a stash cache is constructed once, when its memory
 *     first comes from the backend; free puts it in the stash unchanged
 *     (its link lives in a trailer word past the object), and only shrink
 *     (never for TYPESAFE_BY_RCU) or destroy give it back to the backend;
 *   - objects handed out and not yet freed == active + the sum over threads
 *     of net[slot] (magazine caches count per thread, without atomics);
 *     stashed == objects in the stash (under lock);
 *   - a magazine holds free objects of its slot's cache only: constructed
 *     ones for a stash cache, backend blocks for the others;
 *   - an object of a tagged cache carries its free tag (tag_free) exactly
 *     while it is free in a magazine, or went back to the class from one
 *     and was not handed out since;
 *   - with tracking (STORE_USER, or KALLOC_LEAKS on the handle), every
 *     active object is in sites[] with its caller (under lock).
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define DEBUG_FLAGS (KALLOC_CACHE_POISON | KALLOC_CACHE_RED_ZONE | \
		     KALLOC_CACHE_STORE_USER | KALLOC_CACHE_SANITY)

struct site {
	void *obj;              /* NULL: empty; TOMB: deleted */
	const void *caller;
};
#define TOMB ((void *)1)

struct kalloc_cache {
	/* the fast paths' fields, first: one cache line */
	int slot;               /* its magazine in every thread, or -1 */
	bool fast;              /* native with a slot, untagged: per call */
	bool tagged;            /* native with a slot: tagged magazine */
	kalloc_flags_t nflags;  /* flags the native fast path takes */
	void *cls;              /* the backend's class of its objects, or NULL */
	kalloc_buf_t (*nalloc)(void *, void *, kalloc_flags_t);
	kalloc_direct_t d;      /* fast entries, if the backend has them */
	uint64_t geo_mask;      /* tagged: span_bytes - 1 */
	uint64_t geo_magic;     /* tagged: ceil(2^64 / the class's objsize) */
	uint64_t geo_limit;     /* tagged: objperslab * objsize */
	uint32_t tag_off;       /* tagged: the free tag's offset (last word) */

	char name[64];
	kalloc_t *a;            /* the handle objects come from */
	bool own_handle;        /* a debug handle opened for this cache */
	bool stash_mode;        /* ctor or TYPESAFE_BY_RCU: keeps free objects */
	bool track;             /* sites[] records every active object */
	unsigned flags;
	void (*ctor)(void *);
	size_t size;            /* as asked */
	size_t objsize;         /* size rounded to the alignment (slabinfo's) */
	kalloc_layout_t obj;    /* what each object takes from the backend */
	size_t link_off;        /* stash mode: offset of the trailer link */
	kalloc_flags_t aflags;  /* flags every alloc adds (ACCOUNT) */
	bool direct;            /* d is set */
	bool native;            /* cls and no stash: objects of the class */

	_Atomic int64_t active; /* live objects, but for the magazines' nets */
	_Atomic uint64_t failures, constructed;
	_Atomic bool zero_warned;

	pthread_mutex_t lock;   /* stash and sites */
	void *stash;            /* free constructed objects, linked by trailer */
	size_t stashed;
	struct site *sites;     /* open addressing, cap a power of two */
	size_t nsites, cap_sites, used_sites;

	struct kalloc_cache *next; /* all caches, under caches_lock */
};

static pthread_mutex_t caches_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kalloc_cache *caches;

static void slot_assign(struct kalloc_cache *c); /* the magazines, below */

/* This thread's current cache call, for failslab: CACHE_CALL_* */
FAST_TLS int kalloc__cache_call;
FAST_TLS struct kalloc_cache_hint kalloc__cache_hint;

static void **link_of(const struct kalloc_cache *c, void *obj)
{
	return (void **)((char *)obj + c->link_off);
}

/* ---- sites: who allocated each active object ------------------------- */

static size_t hash_ptr(const void *p, size_t cap)
{
	uint64_t x = (uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & (cap - 1);
}

/* Grows (or cleans) the table; false when no memory: tracking stops. */
static bool sites_grow(struct kalloc_cache *c)
{
	size_t ncap = c->cap_sites ? c->cap_sites : 256;
	if (c->nsites * 2 >= ncap)
		ncap *= 2;
	struct site *n = mmap(NULL, ncap * sizeof(*n), PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (n == MAP_FAILED)
		return false;
	for (size_t i = 0; i < c->cap_sites; i++) {
		struct site s = c->sites[i];
		if (s.obj && s.obj != TOMB) {
			size_t h = hash_ptr(s.obj, ncap);
			while (n[h].obj)
				h = (h + 1) & (ncap - 1);
			n[h] = s;
		}
	}
	if (c->sites)
		munmap(c->sites, c->cap_sites * sizeof(*c->sites));
	c->sites = n;
	c->cap_sites = ncap;
	c->used_sites = c->nsites;
	return true;
}

static void sites_add(struct kalloc_cache *c, void *obj, const void *caller)
{
	pthread_mutex_lock(&c->lock);
	if ((c->used_sites + 1) * 4 >= c->cap_sites * 3 && !sites_grow(c)) {
		c->track = false; /* out of memory: no sites, never wrong ones */
		pthread_mutex_unlock(&c->lock);
		return;
	}
	size_t h = hash_ptr(obj, c->cap_sites);
	while (c->sites[h].obj && c->sites[h].obj != TOMB)
		h = (h + 1) & (c->cap_sites - 1);
	if (!c->sites[h].obj)
		c->used_sites++;
	c->sites[h] = (struct site){ obj, caller };
	c->nsites++;
	pthread_mutex_unlock(&c->lock);
}

/* False when obj is not an active object of c (a double or foreign free). */
static bool sites_del(struct kalloc_cache *c, void *obj)
{
	pthread_mutex_lock(&c->lock);
	bool found = false;
	if (c->cap_sites) {
		size_t h = hash_ptr(obj, c->cap_sites);
		while (c->sites[h].obj) {
			if (c->sites[h].obj == obj) {
				c->sites[h].obj = TOMB;
				c->nsites--;
				found = true;
				break;
			}
			h = (h + 1) & (c->cap_sites - 1);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* ---- create ------------------------------------------------------------ */

/* KALLOC_SLAB_DEBUG, the kernel's slab_debug: "FZ,dentry,inode;P,foo"
 * gives the listed caches those debug letters; letters alone (no names)
 * apply to every cache. */
static unsigned debug_by_name(const char *name)
{
	const char *spec = kalloc__env("KALLOC_SLAB_DEBUG");
	unsigned got = 0;
	while (spec && *spec) {
		size_t blen = strcspn(spec, ";");
		size_t llen = strcspn(spec, ",;");
		unsigned letters = 0;
		for (size_t i = 0; i < llen; i++)
			switch (spec[i] | 0x20) {
			case 'f': letters |= KALLOC_CACHE_SANITY; break;
			case 'z': letters |= KALLOC_CACHE_RED_ZONE; break;
			case 'p': letters |= KALLOC_CACHE_POISON; break;
			case 'u': letters |= KALLOC_CACHE_STORE_USER; break;
			}
		bool listed = llen == blen; /* no names: all caches */
		for (const char *n = spec + llen; n < spec + blen && !listed;) {
			n++; /* the ',' */
			size_t nlen = strcspn(n, ",;");
			listed = nlen == strlen(name) && !strncmp(n, name, nlen);
			n += nlen;
		}
		if (listed)
			got |= letters;
		spec += blen + (spec[blen] == ';');
	}
	return got;
}

/* A handle of a's backend with the cache's debug letters on. */
static kalloc_t *debug_handle(kalloc_t *a, unsigned flags)
{
	char opts[32] = "debug=";
	size_t n = strlen(opts);
	if (flags & KALLOC_CACHE_SANITY)
		opts[n++] = 'F';
	if (flags & KALLOC_CACHE_RED_ZONE)
		opts[n++] = 'Z';
	if (flags & KALLOC_CACHE_POISON)
		opts[n++] = 'P';
	if (flags & KALLOC_CACHE_STORE_USER)
		opts[n++] = 'U';
	opts[n] = 0;
	kalloc_t *d;
	if (kalloc_open(a->path ? a->path : a->p->name, opts, &d))
		return NULL;
	return d;
}

/* ---- free tags: a native cache's magazine checks every free ------------
 *
 * A native cache whose class promises its geometry (kalloc_class_info_t's
 * span_bytes) keeps per-thread magazines in front of the class, as SLUB's
 * per-CPU freelists sit in front of its slabs, and checks each free on
 * the way in as slab checks a block: the pointer must be an object's
 * start (its offset in its span a multiple of the object size), and must
 * not be free already.  A free object carries a tag in its last word
 * (never the first, which the class's own free list uses): its address
 * mixed with a per-process secret, written at free, cleared at every
 * hand-out.  So a double free is caught at once from any thread, whether
 * the object sits in a magazine or went back to the class.  Under a
 * memory tool no cache is tagged: every object goes through the class,
 * which tells the tool.
 */
static uint64_t tag_secret; /* set once, before the first tagged cache */
static pthread_once_t tag_once = PTHREAD_ONCE_INIT;

static void tag_secret_init(void)
{
	uint64_t x = (uintptr_t)&x ^ ((uint64_t)getpid() << 32) ^
		     (uint64_t)clock();
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ULL;
	tag_secret = x | 1;
}

static void geometry(struct kalloc_cache *c)
{
	kalloc_class_info_t ci;
	c->a->cache->info(c->a->state, c->cls, &ci);
	if (!ci.span_bytes || (ci.span_bytes & (ci.span_bytes - 1)) ||
	    ci.objsize < 16 || ci.objsize % 8 || kalloc__tools())
		return; /* no promise: the class's own free checks each */
	pthread_once(&tag_once, tag_secret_init);
	c->geo_magic = UINT64_MAX / ci.objsize + 1;
	c->geo_limit = (uint64_t)ci.objperslab * ci.objsize;
	c->tag_off = ci.objsize - 8;
	c->geo_mask = ci.span_bytes - 1;
}

static inline uint64_t *tag_of(const struct kalloc_cache *c, void *obj)
{
	return (uint64_t *)((char *)obj + c->tag_off);
}

__attribute__((cold, noreturn)) static void bad_tagged_free(
	struct kalloc_cache *c, void *obj, uint64_t off)
{
	uint64_t size = c->tag_off + 8;
	if (off < c->geo_limit && off % size)
		kalloc__corruption(c->name, obj, "free of a pointer %llu bytes "
				   "inside a %llu-byte object of cache '%s'",
				   (unsigned long long)(off % size),
				   (unsigned long long)size, c->name);
	if (off >= c->geo_limit)
		kalloc__corruption(c->name, obj, "free of a pointer that is no "
				   "object of cache '%s'", c->name);
	kalloc__corruption(c->name, obj, "double free of a %llu-byte object "
			   "of cache '%s'", (unsigned long long)size, c->name);
}

/* A free of a tagged cache: obj checked, then tagged free. */
static inline __attribute__((always_inline)) void tag_free(
	struct kalloc_cache *c, void *obj)
{
	uint64_t off = (uintptr_t)obj & c->geo_mask;
	uint64_t want = (uintptr_t)obj ^ tag_secret;
	if (unlikely(off >= c->geo_limit || off * c->geo_magic >= c->geo_magic ||
		     *tag_of(c, obj) == want))
		bad_tagged_free(c, obj, off);
	*tag_of(c, obj) = want;
}

__attribute__((cold, noreturn)) static void panic(const char *name)
{
	kalloc__log(NULL, "kalloc_cache_create(\"%s\") failed with "
		    "KALLOC_CACHE_PANIC: %s", name ? name : "(null)",
		    kalloc_errmsg());
	abort();
}

static struct kalloc_cache *create(kalloc_t *a, const char *name,
				   kalloc_layout_t obj, unsigned flags,
				   void (*ctor)(void *))
{
	if (!a || !name)
		return kalloc__error(KALLOC_EINVAL, "kalloc_cache_create: the "
				     "handle and the name must not be NULL"), NULL;
	if (flags & ~KALLOC_CACHE_FLAGS_ALL)
		return kalloc__error(KALLOC_EINVAL, "cache '%s': unknown flag bits "
				     "0x%x; valid: KALLOC_CACHE_* (SLAB_*) flags "
				     "0x%x", name, flags & ~KALLOC_CACHE_FLAGS_ALL,
				     KALLOC_CACHE_FLAGS_ALL), NULL;
	size_t align = obj.align ? obj.align : 8;
	if (align & (align - 1))
		return kalloc__error(KALLOC_EINVAL, "cache '%s': alignment %zu is "
				     "not a power of two", name, align), NULL;
	if (obj.size == 0 || obj.size > (a->max_size >> 1) ||
	    align > a->max_align)
		return kalloc__error(KALLOC_EINVAL, "cache '%s': object size %zu "
				     "alignment %zu; valid: 1 to %zu bytes, "
				     "alignment up to %zu", name, obj.size, align,
				     a->max_size >> 1, a->max_align), NULL;
	/* SLAB_HWCACHE_ALIGN: a cache line, halved while the object fits
	 * twice in it (the kernel's calculate_alignment). */
	if (flags & KALLOC_CACHE_HWCACHE_ALIGN) {
		size_t line = 64;
		while (obj.size <= line / 2)
			line /= 2;
		if (line > align)
			align = line;
	}
	flags |= debug_by_name(name);

	struct kalloc_cache *c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return kalloc__error(KALLOC_ENOMEM, "cache '%s': no memory for "
				     "the cache itself", name), NULL;
	snprintf(c->name, sizeof(c->name), "%s", name);
	pthread_mutex_init(&c->lock, NULL);
	c->flags = flags;
	c->ctor = ctor;
	c->size = obj.size;
	c->a = a;
	if (flags & DEBUG_FLAGS) {
		c->a = debug_handle(a, flags);
		if (!c->a) {
			munmap(c, sizeof(*c));
			return NULL;
		}
		c->own_handle = true;
	}
	c->stash_mode = ctor || (flags & KALLOC_CACHE_TYPESAFE_BY_RCU);
	/* Without a stash an object is a block of exactly its size, so a
	 * debug handle's red zone starts right after it. */
	size_t size = obj.size;
	c->objsize = (obj.size + align - 1) & ~(align - 1);
	if (c->stash_mode) {
		c->link_off = (obj.size + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
		size = c->link_off + sizeof(void *);
		size = (size + align - 1) & ~(align - 1);
	}
	c->obj = KALLOC_LAYOUT(size, align);
	c->aflags = (flags & KALLOC_CACHE_ACCOUNT) ? KALLOC_ACCOUNT : 0;
	c->track = (flags & KALLOC_CACHE_STORE_USER) ||
		   (atomic_load(&c->a->features) & FEAT_LEAKS);
	c->direct = kalloc_direct(c->a, &c->d) == KALLOC_OK;
	/* A class of its own, on a backend with a cache table; a debug
	 * cache's objects keep the debug handle's red zones instead.  Any
	 * error declines: the objects are then ordinary blocks. */
	if (c->direct && c->a->cache && !c->own_handle) {
		unsigned merge = ctor || (flags & (KALLOC_CACHE_NO_MERGE |
						   KALLOC_CACHE_TYPESAFE_BY_RCU)) ?
				 0 : KALLOC_PLUGIN_CACHE_MERGE;
		if (c->a->cache->create(c->a->state, c->obj, merge, &c->cls))
			c->cls = NULL;
		c->native = c->cls && !c->stash_mode;
		c->nalloc = c->a->cache->alloc;
		/* NOWAIT and ATOMIC keep the memory tool's rule (slow path) */
		c->nflags = c->a->direct_flags & ~(KALLOC_NOWAIT | KALLOC_ATOMIC);
		if (c->native)
			geometry(c);
	}

	pthread_mutex_lock(&caches_lock);
	slot_assign(c);
	c->next = caches;
	caches = c;
	pthread_mutex_unlock(&caches_lock);
	return c;
}

kalloc_cache_t *kalloc_cache_create(kalloc_t *a, const char *name,
				    kalloc_layout_t obj, unsigned flags,
				    void (*ctor)(void *))
{
	struct kalloc_cache *c = create(a, name, obj, flags, ctor);
	if (!c && (flags & KALLOC_CACHE_PANIC))
		panic(name);
	return c;
}

/* ---- per-thread magazines ----------------------------------------------
 *
 * The kernel's per-CPU freelists, per thread: a plain cache (no tracking,
 * no debug handle, no accounting) gets a slot, and each thread keeps up to
 * MAG_CAP free objects of it.  alloc pops, free pushes; only a miss or an
 * overflow reaches the stash or the backend.  A thread's magazines go back
 * at its exit (tc_key's destructor), at kalloc_cache_shrink (the caller's
 * only) and at kalloc_cache_destroy (all threads': by then the cache is
 * not in use, the kernel's contract).  tc_lock guards the list of thread
 * caches; it is taken after caches_lock, and under it only the cache
 * locks and the backend's free are.
 */
#define MAG_SLOTS 64
#define MAG_CAP 32
#define MAG_BATCH 16

struct mag {
	uint32_t n;
	void *obj[MAG_CAP];
};

struct tcache {
	struct tcache *next;       /* every thread cache, under tc_lock */
	bool in_use;               /* a live thread owns it */
	int64_t net[MAG_SLOTS];    /* allocs - frees; only the owner writes */
	struct mag mag[MAG_SLOTS];
};

static pthread_mutex_t tc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tcache *tcaches;
static struct kalloc_cache *slot_owner[MAG_SLOTS]; /* under caches_lock */
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static FAST_TLS struct tcache *my_tc;

static void tc_exit(void *arg);

static void tc_key_init(void)
{
	pthread_key_create(&tc_key, tc_exit);
}

/* This thread's cache, made (or taken from a dead thread) on first use. */
__attribute__((noinline)) static struct tcache *tc_get(void)
{
	pthread_once(&tc_once, tc_key_init);
	pthread_mutex_lock(&tc_lock);
	struct tcache *t = tcaches;
	while (t && t->in_use)
		t = t->next;
	if (!t) {
		t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (t == MAP_FAILED) {
			pthread_mutex_unlock(&tc_lock);
			return NULL;
		}
		t->next = tcaches;
		tcaches = t;
	}
	t->in_use = true;
	pthread_mutex_unlock(&tc_lock);
	pthread_setspecific(tc_key, t);
	my_tc = t;
	return t;
}

static inline void net_add(struct tcache *t, int slot, int64_t d)
{
	__atomic_store_n(&t->net[slot],
			 __atomic_load_n(&t->net[slot], __ATOMIC_RELAXED) + d,
			 __ATOMIC_RELAXED);
}

static void give_back(const void *caller, struct kalloc_cache *c, void **objs,
		      size_t n);

/* Empties t's magazine of c and folds its net into c->active; the caller
 * holds tc_lock, or is t's owner and the only user of that slot. */
static void mag_flush(struct tcache *t, struct kalloc_cache *c)
{
	struct mag *m = &t->mag[c->slot];
	give_back(NULL, c, m->obj, m->n);
	m->n = 0;
	atomic_fetch_add(&c->active, __atomic_exchange_n(&t->net[c->slot], 0,
							 __ATOMIC_RELAXED));
}

static void tc_exit(void *arg)
{
	struct tcache *t = arg;
	pthread_mutex_lock(&caches_lock);
	pthread_mutex_lock(&tc_lock);
	for (int s = 0; s < MAG_SLOTS; s++)
		if (slot_owner[s])
			mag_flush(t, slot_owner[s]);
	t->in_use = false;
	pthread_mutex_unlock(&tc_lock);
	pthread_mutex_unlock(&caches_lock);
	my_tc = NULL;
}

/* Sum of the threads' nets for c's slot (racy reads: a statistic). */
static int64_t nets(const struct kalloc_cache *c)
{
	int64_t sum = 0;
	if (c->slot < 0)
		return 0;
	pthread_mutex_lock(&tc_lock);
	for (struct tcache *t = tcaches; t; t = t->next)
		sum += __atomic_load_n(&t->net[c->slot], __ATOMIC_RELAXED);
	pthread_mutex_unlock(&tc_lock);
	return sum;
}

static uint64_t in_magazines(const struct kalloc_cache *c)
{
	uint64_t n = 0;
	if (c->slot < 0)
		return 0;
	pthread_mutex_lock(&tc_lock);
	for (struct tcache *t = tcaches; t; t = t->next)
		n += __atomic_load_n(&t->mag[c->slot].n, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&tc_lock);
	return n;
}

/* A slot for c, if it may have one; caches_lock held. */
static void slot_assign(struct kalloc_cache *c)
{
	c->slot = -1;
	if (c->track || c->own_handle || c->aflags ||
	    (!c->stash_mode && !c->direct))
		return;
	for (int s = 0; s < MAG_SLOTS; s++)
		if (!slot_owner[s]) {
			slot_owner[s] = c;
			c->slot = s;
			c->tagged = c->native && c->geo_mask;
			c->fast = c->native && !c->tagged;
			return;
		}
}

/* Every thread's magazine of c back to c, its slot freed; caches_lock held
 * and c not in use. */
static void slot_release(struct kalloc_cache *c)
{
	if (c->slot < 0)
		return;
	pthread_mutex_lock(&tc_lock);
	for (struct tcache *t = tcaches; t; t = t->next)
		mag_flush(t, c);
	pthread_mutex_unlock(&tc_lock);
	slot_owner[c->slot] = NULL;
	c->slot = -1;
	c->fast = c->tagged = false;
}

/* ---- alloc and free ---------------------------------------------------- */

/* Memory for one object from the backend; NULL with errmsg. */
static void *from_backend(const void *caller, struct kalloc_cache *c,
			  kalloc_flags_t flags)
{
	kalloc__cache_call = CACHE_CALL_DECIDED;
	if (c->cls)
		kalloc__cache_hint = (struct kalloc_cache_hint){ c->a, c->obj.size,
								  c->cls };
	kalloc_buf_t b;
	int err = kalloc_realloc_at(caller, c->a, NULL, c->obj,
				    KALLOC_LAYOUT_UNKNOWN, flags | c->aflags, &b);
	kalloc__cache_hint.a = NULL;
	kalloc__cache_call = 0;
	return err ? NULL : b.ptr;
}

static void to_backend(const void *caller, struct kalloc_cache *c, void *obj)
{
	kalloc_free_at(caller, c->a, obj, c->obj);
}

__attribute__((cold, noreturn)) static void bad_free(struct kalloc_cache *c,
						     void *obj)
{
	kalloc__corruption(c->name, obj, "free of a pointer that is no live "
			   "object of cache '%s' (a double free, or an object "
			   "of another cache)", c->name);
}

/* Free objects of c: to the stash, or to the backend. */
static void give_back(const void *caller, struct kalloc_cache *c, void **objs,
		      size_t n)
{
	if (!n)
		return;
	if (c->stash_mode) {
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < n; i++) {
			*link_of(c, objs[i]) = c->stash;
			c->stash = objs[i];
		}
		c->stashed += n;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	bool plain = c->direct && __atomic_load_n(c->d.plain, __ATOMIC_ACQUIRE);
	if (c->native && plain) {
		c->a->cache->free_bulk(c->a->state, c->cls, n, objs);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!plain)
			to_backend(caller, c, objs[i]);
		else if (unlikely(!c->d.free(c->d.state, objs[i], c->obj)))
			bad_free(c, objs[i]);
	}
}

/* Up to max stashed objects into out; NOWAIT and ATOMIC never wait for
 * the lock.  Returns how many. */
static size_t stash_take(struct kalloc_cache *c, kalloc_flags_t flags,
			 void **out, size_t max)
{
	if ((flags & (KALLOC_NOWAIT | KALLOC_ATOMIC)) ?
	    pthread_mutex_trylock(&c->lock) != 0 :
	    pthread_mutex_lock(&c->lock) != 0)
		return 0;
	size_t n = 0;
	while (n < max && c->stash) {
		out[n++] = c->stash;
		c->stash = *link_of(c, c->stash);
		c->stashed--;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* One object from the backend, constructed for a ctor cache; NULL with
 * errmsg.  The fast entries serve it when the handle is plain and no flag
 * asks for more than they do. */
static void *new_object(const void *caller, struct kalloc_cache *c,
			kalloc_flags_t flags)
{
	void *obj = NULL;
	if (c->direct && !flags && !c->aflags &&
	    __atomic_load_n(c->d.plain, __ATOMIC_ACQUIRE)) {
		kalloc_buf_t b = { NULL, 0 };
		if (c->cls)
			kalloc__class_alloc(c->a, c->cls, 0, &b);
		else
			b = c->d.alloc(c->d.state, c->obj);
		obj = b.ptr;
	}
	if (!obj)
		obj = from_backend(caller, c, flags);
	if (obj && c->ctor) {
		c->ctor(obj);
		atomic_fetch_add_explicit(&c->constructed, 1,
					  memory_order_relaxed);
	}
	return obj;
}

/* KALLOC_ZERO on an object: a ctor cache loses its constructed state. */
__attribute__((noinline)) static void *zero_obj(struct kalloc_cache *c,
						void *obj)
{
	if (obj) {
		if (c->ctor && !atomic_exchange(&c->zero_warned, true))
			kalloc__log(NULL, "cache '%s': allocation with zeroing "
				    "on a cache with a constructor; the "
				    "constructed state is lost", c->name);
		memset(obj, 0, c->size);
	}
	return obj;
}

/* Injection decides once per cache allocation, stash or not, as the
 * kernel's should_failslab runs before the freelist is looked at.  A
 * failure is counted here. */
__attribute__((noinline)) static bool inject(struct kalloc_cache *c,
					     kalloc_flags_t flags)
{
	kalloc__cache_call = (c->flags & KALLOC_CACHE_FAILSLAB) ?
			     CACHE_CALL_FAILSLAB : CACHE_CALL_PLAIN;
	bool fail = kalloc__fail_now(c->size, flags);
	kalloc__cache_call = 0;
	if (fail) {
		atomic_fetch_add_explicit(&c->failures, 1, memory_order_relaxed);
		kalloc__error(KALLOC_ENOMEM, "cache '%s': injected failure "
			      "(KALLOC_FAIL or kalloc_fail_nth)", c->name);
	}
	return fail;
}

/* An object leaving the cache: counted in t's net (else in active), or,
 * when there is none, a failure counted. */
static void *handed_out(struct kalloc_cache *c, struct tcache *t, void *obj)
{
	if (unlikely(!obj)) {
		atomic_fetch_add_explicit(&c->failures, 1, memory_order_relaxed);
		return NULL;
	}
	if (t)
		net_add(t, c->slot, 1);
	else
		atomic_fetch_add_explicit(&c->active, 1, memory_order_relaxed);
	return obj;
}

/* A magazine miss: a batch from the stash or from the class, else one
 * new object. */
__attribute__((noinline)) static void *
alloc_refill(const void *caller, struct kalloc_cache *c, kalloc_flags_t flags)
{
	struct tcache *t = my_tc ? my_tc : tc_get();
	void *obj = NULL;
	if (t) {
		struct mag *m = &t->mag[c->slot];
		if (c->stash_mode) {
			m->n += (uint32_t)stash_take(c, flags, m->obj + m->n,
						     MAG_BATCH - m->n);
		} else if (c->tagged && !m->n &&
			   __atomic_load_n(c->d.plain, __ATOMIC_ACQUIRE)) {
			size_t k = c->a->cache->alloc_bulk(
				c->a->state, c->cls, flags & KALLOC_PLUGIN_FLAGS,
				MAG_BATCH, m->obj);
			for (size_t i = 0; i < k; i++) /* free, in the magazine */
				*tag_of(c, m->obj[i]) = (uintptr_t)m->obj[i] ^
							tag_secret;
			m->n = (uint32_t)k;
		}
		if (m->n)
			obj = m->obj[--m->n];
	}
	if (!obj)
		obj = new_object(caller, c, flags);
	return handed_out(c, t, obj);
}

/* A native cache's object while the handle is plain and the flags are
 * the backend's own: its class's fast path, counted in the thread's net. */
static inline bool native_plain(const struct kalloc_cache *c,
				kalloc_flags_t flags)
{
	return !(flags & ~c->a->direct_flags) &&
	       __atomic_load_n(c->d.plain, __ATOMIC_ACQUIRE);
}

/* A native cache without magazine, past its fast path: the first call of
 * a thread, a fast path failure, and instrumentation (failslab, stats,
 * leaks, accounting, NOFAIL). */
__attribute__((noinline)) static void *
native_alloc_slow(const void *caller, struct kalloc_cache *c,
		  kalloc_flags_t flags)
{
	struct tcache *t = c->slot >= 0 ? (my_tc ? my_tc : tc_get()) : NULL;
	void *obj = NULL;
	if (t && native_plain(c, flags)) {
		kalloc_buf_t b;
		if (!kalloc__class_alloc(c->a, c->cls, flags & KALLOC_PLUGIN_FLAGS,
					 &b))
			obj = b.ptr;
	}
	if (!obj) {
		if (unlikely(atomic_load_explicit(&kalloc__fail_armed,
						  memory_order_relaxed)) &&
		    inject(c, flags))
			return NULL;
		obj = from_backend(caller, c, flags);
	}
	if (handed_out(c, t, obj) && unlikely(c->track))
		sites_add(c, obj, caller);
	return obj;
}

/* Every allocation the fast paths below do not serve. */
static inline void *take_object(const void *caller, struct kalloc_cache *c,
				kalloc_flags_t flags)
{
	void *obj = NULL;
	if (c->native && !c->tagged)
		return native_alloc_slow(caller, c, flags);
	if (likely(c->slot >= 0 &&
		   !(flags & ~(KALLOC_NOWARN | KALLOC_NOWAIT | KALLOC_ATOMIC |
			       KALLOC_ZERO)) &&
		   !atomic_load_explicit(&kalloc__fail_armed,
					 memory_order_relaxed))) {
		struct tcache *t = my_tc;
		struct mag *m = t ? &t->mag[c->slot] : NULL;
		if (likely(m && m->n)) {
			obj = m->obj[--m->n];
			net_add(t, c->slot, 1);
		} else {
			obj = alloc_refill(caller, c, flags & ~KALLOC_ZERO);
		}
		if (unlikely(flags & KALLOC_ZERO))
			return zero_obj(c, obj);
		return obj;
	}
	/* Caches without a magazine: tracked, debug, accounted, or past
	 * the slots; and any cache under failslab or unusual flags. */
	if (unlikely(atomic_load_explicit(&kalloc__fail_armed,
					  memory_order_relaxed)) &&
	    inject(c, flags))
		return NULL;
	kalloc_flags_t keep = c->stash_mode ? flags & ~KALLOC_ZERO : flags;
	if (!c->stash_mode || !stash_take(c, flags, &obj, 1))
		obj = new_object(caller, c, keep);
	if (!handed_out(c, NULL, obj))
		return NULL;
	if (c->stash_mode && (flags & KALLOC_ZERO))
		zero_obj(c, obj);
	if (unlikely(c->track))
		sites_add(c, obj, caller);
	return obj;
}

__attribute__((noinline)) static void *
cache_alloc(const void *caller, struct kalloc_cache *c, kalloc_flags_t flags)
{
	void *obj = take_object(caller, c, flags);
	if (c->tagged && obj)
		*tag_of(c, obj) = 0; /* handed out: no longer free */
	return obj;
}

/* A native cache served per call: the class's alloc while the handle is
 * plain and no flag but ZERO (and NOWARN) is asked for. */
__attribute__((noinline)) static void *
per_call_alloc(const void *caller, struct kalloc_cache *c, kalloc_flags_t flags)
{
	struct tcache *t = my_tc;
	if (likely(t && !(flags & ~c->nflags) &&
		   __atomic_load_n(c->d.plain, __ATOMIC_ACQUIRE))) {
		void *obj = c->nalloc(c->d.state, c->cls, flags & KALLOC_ZERO).ptr;
		if (likely(obj)) {
			net_add(t, c->slot, 1);
			return obj;
		}
	}
	return cache_alloc(caller, c, flags);
}

/* The fast path, a pop from the thread's magazine, calls nothing: the
 * other cases are tail calls. */
static inline __attribute__((always_inline)) void *
alloc_at(const void *caller, struct kalloc_cache *c, kalloc_flags_t flags)
{
	if (c->fast)
		return per_call_alloc(caller, c, flags);
	struct tcache *t = my_tc;
	if (likely(c->slot >= 0 && t &&
		   !(flags & ~(KALLOC_NOWARN | KALLOC_NOWAIT | KALLOC_ATOMIC)) &&
		   !atomic_load_explicit(&kalloc__fail_armed,
					 memory_order_relaxed))) {
		struct mag *m = &t->mag[c->slot];
		if (likely(m->n)) {
			void *obj = m->obj[--m->n];
			if (c->tagged)
				*tag_of(c, obj) = 0;
			net_add(t, c->slot, 1);
			return obj;
		}
	}
	return cache_alloc(caller, c, flags);
}

void *kalloc_cache_alloc(kalloc_cache_t *c, kalloc_flags_t flags)
{
	return alloc_at(__builtin_return_address(0), c, flags);
}

/* A magazine overflow: the oldest MAG_BATCH objects go back. */
__attribute__((noinline)) static void mag_spill(const void *caller,
						struct kalloc_cache *c,
						struct mag *m)
{
	give_back(caller, c, m->obj, MAG_BATCH);
	memmove(m->obj, m->obj + MAG_BATCH,
		(MAG_CAP - MAG_BATCH) * sizeof(m->obj[0]));
	m->n -= MAG_BATCH;
}

static void cache_free(const void *caller, struct kalloc_cache *c, void *obj);

/* A native cache served per call: the class's free while the handle is
 * plain; the class reports misuse, as kfree does. */
__attribute__((noinline)) static void
per_call_free(const void *caller, struct kalloc_cache *c, void *obj)
{
	struct tcache *t = my_tc ? my_tc : tc_get();
	if (likely(t && obj && __atomic_load_n(c->d.plain, __ATOMIC_ACQUIRE))) {
		if (unlikely(!c->d.free(c->d.state, obj, KALLOC_LAYOUT_UNKNOWN)))
			bad_free(c, obj);
		net_add(t, c->slot, -1);
		return;
	}
	cache_free(caller, c, obj);
}

/* The fast path, a push onto the thread's magazine after the free checks
 * (tag_free; else the freelist-hardening check: freeing the object that
 * heads the freelist is a double free), calls nothing. */
static inline __attribute__((always_inline)) void
free_at(const void *caller, struct kalloc_cache *c, void *obj)
{
	if (c->fast) {
		per_call_free(caller, c, obj);
		return;
	}
	struct tcache *t = my_tc;
	if (likely(c->slot >= 0 && t && obj)) {
		struct mag *m = &t->mag[c->slot];
		if (likely(m->n < MAG_CAP)) {
			if (c->tagged)
				tag_free(c, obj);
			else if (unlikely(m->n && m->obj[m->n - 1] == obj))
				bad_free(c, obj);
			m->obj[m->n++] = obj;
			net_add(t, c->slot, -1);
			return;
		}
	}
	cache_free(caller, c, obj);
}

__attribute__((noinline)) static void
cache_free(const void *caller, struct kalloc_cache *c, void *obj)
{
	if (unlikely(!obj))
		return;
	if ((!c->native || c->tagged) && likely(c->slot >= 0)) {
		struct tcache *t = my_tc ? my_tc : tc_get();
		if (likely(t)) { /* a full magazine, or a thread's first free */
			struct mag *m = &t->mag[c->slot];
			if (c->tagged)
				tag_free(c, obj);
			else if (unlikely(m->n && m->obj[m->n - 1] == obj))
				bad_free(c, obj);
			if (unlikely(m->n == MAG_CAP))
				mag_spill(caller, c, m);
			m->obj[m->n++] = obj;
			net_add(t, c->slot, -1);
			return;
		}
	}
	if (c->tagged)
		tag_free(c, obj); /* no thread cache: still checked */
	if (unlikely(c->track) && !sites_del(c, obj))
		bad_free(c, obj);
	atomic_fetch_sub_explicit(&c->active, 1, memory_order_relaxed);
	give_back(caller, c, &obj, 1);
}

void kalloc_cache_free(kalloc_cache_t *c, void *obj)
{
	free_at(__builtin_return_address(0), c, obj);
}

void *kalloc__cache_alloc_at(const void *caller, kalloc_cache_t *c,
			     kalloc_flags_t flags)
{
	return alloc_at(caller, c, flags);
}

void kalloc__cache_free_at(const void *caller, kalloc_cache_t *c, void *obj)
{
	free_at(caller, c, obj);
}

/* Objects handed out by a bulk call: no longer free. */
static void untag(struct kalloc_cache *c, void **objs, size_t n)
{
	if (c->tagged)
		for (size_t i = 0; i < n; i++)
			*tag_of(c, objs[i]) = 0;
}

/* Bulk on a magazine cache: whole runs copied out of and into the
 * caller's magazine, one count update per run. */
static size_t mag_take(struct kalloc_cache *c, kalloc_flags_t flags,
		       size_t n, void **objs)
{
	struct tcache *t = my_tc;
	if (c->slot < 0 || !t || c->fast ||
	    (flags & ~(KALLOC_NOWARN | KALLOC_NOWAIT | KALLOC_ATOMIC)) ||
	    atomic_load_explicit(&kalloc__fail_armed, memory_order_relaxed))
		return 0;
	struct mag *m = &t->mag[c->slot];
	size_t k = n < m->n ? n : m->n;
	m->n -= (uint32_t)k;
	memcpy(objs, m->obj + m->n, k * sizeof(void *));
	untag(c, objs, k);
	net_add(t, c->slot, (int64_t)k);
	return k;
}

static size_t mag_put(struct kalloc_cache *c, size_t n, void **objs)
{
	struct tcache *t = my_tc;
	if (c->slot < 0 || !t || c->fast)
		return 0;
	struct mag *m = &t->mag[c->slot];
	size_t k = MAG_CAP - m->n;
	if (k > n)
		k = n;
	for (size_t i = 0; i < k; i++) { /* the free checks, per object */
		if (c->tagged)
			tag_free(c, objs[i]);
		else if (m->n && m->obj[m->n - 1] == objs[i])
			bad_free(c, objs[i]);
		m->obj[m->n++] = objs[i];
	}
	net_add(t, c->slot, -(int64_t)k);
	return k;
}

/* Bulk on a native cache: the class's own bulk calls, all or nothing.
 * (NOWAIT takes the single calls, which keep the memory tool's rule.) */
static size_t native_take(struct kalloc_cache *c, kalloc_flags_t flags,
			  size_t n, void **objs)
{
	struct tcache *t = my_tc;
	if (!c->native || !t || c->slot < 0 || !native_plain(c, flags) ||
	    (flags & (KALLOC_NOWAIT | KALLOC_ATOMIC)))
		return 0;
	size_t k = c->a->cache->alloc_bulk(c->a->state, c->cls,
					   flags & KALLOC_PLUGIN_FLAGS, n, objs);
	untag(c, objs, k);
	net_add(t, c->slot, (int64_t)k);
	return k;
}

static size_t native_put(struct kalloc_cache *c, size_t n, void **objs)
{
	struct tcache *t = my_tc;
	if (!c->native || !t || c->slot < 0 ||
	    !__atomic_load_n(c->d.plain, __ATOMIC_ACQUIRE))
		return 0;
	if (c->tagged) /* not one may be free already, in a magazine */
		for (size_t i = 0; i < n; i++)
			tag_free(c, objs[i]);
	c->a->cache->free_bulk(c->a->state, c->cls, n, objs);
	net_add(t, c->slot, -(int64_t)n);
	return n;
}

size_t kalloc__cache_alloc_bulk_at(const void *caller, kalloc_cache_t *c,
				   kalloc_flags_t flags, size_t n, void **objs)
{
	size_t i = mag_take(c, flags, n, objs);
	if (i < n && native_take(c, flags, n - i, objs + i) == n - i)
		return n;
	for (; i < n; i++) {
		objs[i] = cache_alloc(caller, c, flags);
		if (!objs[i]) {
			while (i--)
				cache_free(caller, c, objs[i]);
			return 0;
		}
	}
	return n;
}

size_t kalloc_cache_alloc_bulk(kalloc_cache_t *c, kalloc_flags_t flags,
			       size_t n, void **objs)
{
	return kalloc__cache_alloc_bulk_at(__builtin_return_address(0), c,
					   flags, n, objs);
}

void kalloc__cache_free_bulk_at(const void *caller, kalloc_cache_t *c,
				size_t n, void **objs)
{
	size_t i = mag_put(c, n, objs);
	if (i < n && native_put(c, n - i, objs + i))
		return;
	for (; i < n; i++)
		cache_free(caller, c, objs[i]);
}

void kalloc_cache_free_bulk(kalloc_cache_t *c, size_t n, void **objs)
{
	kalloc__cache_free_bulk_at(__builtin_return_address(0), c, n, objs);
}

size_t kalloc_cache_size(const kalloc_cache_t *c)
{
	return c->size;
}

const char *kalloc_cache_name(const kalloc_cache_t *c)
{
	return c->name;
}

/* ---- shrink, destroy, stats -------------------------------------------- */

/* Gives every stashed object back to the backend; returns the count. */
static size_t drain(const void *caller, struct kalloc_cache *c)
{
	pthread_mutex_lock(&c->lock);
	void *list = c->stash;
	size_t n = c->stashed;
	c->stash = NULL;
	c->stashed = 0;
	pthread_mutex_unlock(&c->lock);
	while (list) {
		void *next = *link_of(c, list);
		to_backend(caller, c, list);
		list = next;
	}
	return n;
}

/* The caller's magazine and the stash go back to the backend (other
 * threads' magazines stay theirs).  Returns how many objects went. */
size_t kalloc_cache_shrink(kalloc_cache_t *c)
{
	if (c->flags & KALLOC_CACHE_TYPESAFE_BY_RCU)
		return 0; /* its memory stays its own while it lives */
	size_t n = 0;
	if (c->slot >= 0 && my_tc) {
		n = my_tc->mag[c->slot].n;
		mag_flush(my_tc, c); /* to the stash, or to the backend */
	}
	size_t drained = drain(__builtin_return_address(0), c);
	return c->stash_mode ? drained : n + drained;
}

static void report_live(struct kalloc_cache *c, int64_t live)
{
	kalloc__log(NULL, "kalloc_cache_destroy %s: Slab cache still has "
		    "objects (%lld left); none is freed", c->name,
		    (long long)live);
	if (!c->track)
		return;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->cap_sites; i++) {
		struct site s = c->sites[i];
		if (s.obj && s.obj != TOMB) {
			char where[256];
			kalloc__describe_caller(s.caller, where, sizeof(where));
			kalloc__log(NULL, "  object %p of '%s' allocated at %s",
				    s.obj, c->name, where);
		}
	}
	pthread_mutex_unlock(&c->lock);
}

int kalloc_cache_destroy(kalloc_cache_t *c)
{
	if (!c)
		return KALLOC_OK;
	drain(__builtin_return_address(0), c);
	int64_t live = atomic_load(&c->active) + nets(c);
	if (live) {
		/* Kept whole, as the kernel keeps it: the program's objects
		 * stay valid, and the cache stays listed in the stats. */
		report_live(c, live);
		return kalloc__error(KALLOC_EBUSY, "cache '%s' still has %lld "
				     "objects", c->name, (long long)live);
	}
	pthread_mutex_lock(&caches_lock);
	for (struct kalloc_cache **pp = &caches; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	slot_release(c);
	pthread_mutex_unlock(&caches_lock);
	drain(__builtin_return_address(0), c); /* what the magazines held */
	if (c->cls)
		c->a->cache->destroy(c->a->state, c->cls);
	if (c->own_handle)
		kalloc_close(c->a);
	if (c->sites)
		munmap(c->sites, c->cap_sites * sizeof(*c->sites));
	pthread_mutex_destroy(&c->lock);
	munmap(c, sizeof(*c));
	return KALLOC_OK;
}

void kalloc_cache_stats(const kalloc_cache_t *c, kalloc_cache_stats_t *out)
{
	struct kalloc_cache *m = (struct kalloc_cache *)c;
	pthread_mutex_lock(&m->lock);
	size_t stashed = m->stashed;
	pthread_mutex_unlock(&m->lock);
	int64_t active = atomic_load(&m->active) + nets(m);
	*out = (kalloc_cache_stats_t){
		.active_objs = active > 0 ? (uint64_t)active : 0,
		.num_objs = (active > 0 ? (uint64_t)active : 0) + stashed +
			    in_magazines(m),
		.objsize = m->objsize,
		.failures = atomic_load(&m->failures),
		.constructed = atomic_load(&m->constructed),
	};
	if (m->cls) {
		kalloc_class_info_t ci;
		m->a->cache->info(m->a->state, m->cls, &ci);
		out->objsize = ci.objsize;
		out->num_slabs = ci.num_slabs;
		out->objperslab = ci.objperslab;
		out->pagesperslab = ci.pagesperslab;
		out->merged = ci.caches;
	}
}

/* Every cache whose objects come from handle a (a debug handle's caches
 * too when a is the handle they were made on), for the stats. */
void kalloc__caches_foreach(kalloc_t *a,
			    void (*fn)(const kalloc_cache_t *, void *),
			    void *ctx)
{
	pthread_mutex_lock(&caches_lock);
	for (struct kalloc_cache *c = caches; c; c = c->next)
		if (c->a == a)
			fn(c, ctx);
	pthread_mutex_unlock(&caches_lock);
}

/* Fork: no cache lock may be held in the child. */
void kalloc__caches_atfork(int phase)
{
	if (phase == 0) {
		pthread_mutex_lock(&caches_lock);
		pthread_mutex_lock(&tc_lock);
		for (struct kalloc_cache *c = caches; c; c = c->next)
			pthread_mutex_lock(&c->lock);
		return;
	}
	for (struct kalloc_cache *c = caches; c; c = c->next)
		pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&tc_lock);
	pthread_mutex_unlock(&caches_lock);
}

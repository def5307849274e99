/*
 * kv: the kernel's KVmalloc.  A block lives in one of two other backends,
 * reached through the host: the small one ("slab", else "libc") or "page".
 *
 *   - alloc: the small backend first.  Sizes up to the threshold
 *     (KALLOC_KV_THRESHOLD, default 4096: one page, as the kernel) stay
 *     there, success or failure; larger ones, or alignments the small
 *     backend refuses, fall back to page when it fails (kvmalloc).  With
 *     the option large=BYTES, sizes above it go to page first (large=
 *     4194304 is the kernel's: kmalloc serves nothing above
 *     KMALLOC_MAX_SIZE).  By default none do: slab's large blocks have
 *     their own cache and mremap, and a program whose large blocks were
 *     split between slab's cache and page's held both (bench/preload's
 *     `large`: 3.4 MiB peak RSS with none, 5-9.5 MiB above 256 KiB,
 *     11.5-15 MiB above 4 MiB).
 *   - realloc (kvrealloc): a page block stays in page (vrealloc), except that
 *     shrinking to the threshold or below moves it to the small backend; a
 *     small block is resized by the small backend and moves to page when
 *     it grows above `large`, or when that fails for a size above the
 *     threshold.  Moves copy min(old, new)
 *     bytes and free the old block.
 *   - free, usable_size: the owner is page when page's owns() says so (it
 *     answers exactly, from its table, without touching the block), else the
 *     small backend (kvfree's is_vmalloc_addr).  No header in front of blocks.
 *     A free asks the host's free of the backend that can tell its
 *     blocks (slab: one lookup that frees as it finds), the other one next.
 *   - A pointer neither backend holds (a double free, an interior or
 *     foreign pointer) is reported as kv's corruption, naming both; the
 *     fast free returns 0 for it instead (declared FOREIGN_FREE: with a
 *     small backend that cannot tell its blocks, libc, it takes them all).
 *   - The front (<kalloc/plugin.h>): with a small backend whose fast free
 *     tells its blocks (slab), kv names that backend's fast entries, up to
 *     the threshold, so that the shim and kmalloc call them with nothing
 *     of kv in between, and kv's fast free only for what they refuse.
 *     Its malloc entries are that backend's malloc entries, in the same
 *     place.
 *
 * Honors ZERO only: NOWAIT/ATOMIC would need both backends to honor them, and
 * the host gives no way to ask a backend what it honors.
 *
 * Options ("key=value,..."): small=NAME (a backend other than kv),
 * threshold=BYTES (overriding KALLOC_KV_THRESHOLD), large=BYTES (overriding
 * KALLOC_KV_LARGE; 0: none).
 */
#include <kalloc/plugin.h>

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NAME "kv"
#define likely(x) __builtin_expect(!!(x), 1)
#define DEFAULT_THRESHOLD 4096L
#define DEFAULT_LARGE 0L /* none: page only when the small one fails */

struct kv {
	const kalloc_host_t *host;
	kalloc_t *small;
	kalloc_t *page;
	size_t threshold;
	size_t large; /* above it, page first */
	bool small_tells; /* the small backend's owns() never answers -1 */
	size_t small_max_align;
	/* the fast entries of both, or NULL alloc when one has none */
	kalloc_direct_t small_fast, page_fast;
	bool fast; /* small_fast and page_fast are both set */
	bool small_foreign; /* the small backend's fast free answers 0 for a
			     * pointer not its own (FOREIGN_FREE) */
	char small_name[64]; /* for reports */
};

#define STATE_GUARD 4096 /* the page before kv's state: see kv_init */

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* A call on a sub-backend; kv's own caller gets the one warning. */
static int sub(const struct kv *kv, kalloc_t *a, void *ptr, kalloc_layout_t l,
	       kalloc_layout_t old, kalloc_flags_t f, kalloc_buf_t *out)
{
	return kv->host->realloc(a, ptr, l, old, f | KALLOC_NOWARN, out);
}

static int sub_alloc(const struct kv *kv, kalloc_t *a, kalloc_layout_t l,
		     kalloc_flags_t f, kalloc_buf_t *out)
{
	return sub(kv, a, NULL, l, KALLOC_LAYOUT_UNKNOWN, f, out);
}

static void sub_free(const struct kv *kv, kalloc_t *a, void *ptr,
		     kalloc_layout_t old)
{
	kalloc_buf_t ignored;
	kv->host->realloc(a, ptr, KALLOC_LAYOUT(0, 1), old, 0, &ignored);
}

static bool in_page(const struct kv *kv, const void *ptr)
{
	return kv->host->owns(kv->page, ptr) == 1;
}

/*
 * The backend holding ptr.  The small backend is asked first: slab answers
 * from its chunk bitmap without a lock, while page looks in a locked table;
 * only a small backend that cannot tell (libc: -1) costs the page lookup.
 */
static kalloc_t *owner(const struct kv *kv, const void *ptr)
{
	int small = kv->host->owns(kv->small, ptr);
	if (small == 1)
		return kv->small;
	if (small == 0)
		return kv->page;
	return in_page(kv, ptr) ? kv->page : kv->small;
}

/* A pointer neither backend holds live (a double free, an interior or
 * foreign pointer): kv reports it as its own corruption, naming both,
 * rather than handing it to page, whose report would blame page alone. */
static __attribute__((noreturn)) void not_ours(const struct kv *kv,
					       const void *ptr, const char *op)
{
	kv->host->corruption(NAME, ptr, "%s of an address that is not a live "
			     "block of '%s' nor of 'page' (double free, "
			     "interior or foreign pointer)", op, kv->small_name);
}

/* The owner of a block kv is asked to resize or measure: owner(), and
 * when the small backend can tell, page must hold what it does not. */
static kalloc_t *owner_checked(const struct kv *kv, const void *ptr,
			       const char *op)
{
	kalloc_t *o = owner(kv, ptr);
	if (o == kv->page && kv->small_tells && !in_page(kv, ptr))
		not_ours(kv, ptr, op);
	return o;
}

/* kvfree: the backend that can tell its blocks is asked first, so the one
 * that cannot (libc) is only handed what page has refused.  0, touching
 * nothing, when neither holds ptr. */
static int release(const struct kv *kv, void *ptr, kalloc_layout_t old)
{
	kalloc_t *first = kv->small_tells ? kv->small : kv->page;
	kalloc_t *second = kv->small_tells ? kv->page : kv->small;
	return kv->host->free(first, ptr, old) ||
	       kv->host->free(second, ptr, old);
}

/* Whether a failure of the small backend may fall back to page. */
static bool page_may_serve(const struct kv *kv, kalloc_layout_t l, int err)
{
	return l.size > kv->threshold || err == KALLOC_EALIGN;
}

/*
 * Moves the block at ptr (owned by `from`) into a new block of `to`:
 * allocate, copy min(old size, new size) bytes, free the old one.
 */
static int move(const struct kv *kv, kalloc_t *from, kalloc_t *to, void *ptr,
		kalloc_layout_t l, kalloc_layout_t old, kalloc_flags_t f,
		kalloc_buf_t *out)
{
	kalloc_buf_t nb;
	int err = sub(kv, to, NULL, l, KALLOC_LAYOUT_UNKNOWN, f, &nb);
	if (err)
		return err;
	size_t old_size = old.align ? old.size : kv->host->usable_size(from, ptr);
	memcpy(nb.ptr, ptr, min_size(old_size, l.size));
	sub_free(kv, from, ptr, old);
	*out = nb;
	return KALLOC_OK;
}

static int kv_alloc(const struct kv *kv, kalloc_layout_t l, kalloc_flags_t f,
		    kalloc_buf_t *out)
{
	if (l.size > kv->large &&
	    sub_alloc(kv, kv->page, l, f, out) == KALLOC_OK)
		return KALLOC_OK;
	int err = sub_alloc(kv, kv->small, l, f, out);
	if (err && page_may_serve(kv, l, err))
		err = sub_alloc(kv, kv->page, l, f, out);
	return err;
}

static int kv_resize(const struct kv *kv, void *ptr, kalloc_layout_t l,
		     kalloc_layout_t old, kalloc_flags_t f, kalloc_buf_t *out)
{
	if (owner_checked(kv, ptr, "realloc") == kv->page) {
		if (l.size <= kv->threshold &&
		    move(kv, kv->page, kv->small, ptr, l, old, f, out) == KALLOC_OK)
			return KALLOC_OK;
		return sub(kv, kv->page, ptr, l, old, f, out);
	}
	if (l.size > kv->large &&
	    move(kv, kv->small, kv->page, ptr, l, old, f, out) == KALLOC_OK)
		return KALLOC_OK;
	int err = sub(kv, kv->small, ptr, l, old, f, out);
	if (err && page_may_serve(kv, l, err))
		err = move(kv, kv->small, kv->page, ptr, l, old, f, out);
	return err;
}

static int kv_realloc(void *state, void *ptr, kalloc_layout_t l,
		      kalloc_layout_t old, kalloc_flags_t flags,
		      kalloc_buf_t *out)
{
	const struct kv *kv = state;
	if (l.size == 0) {
		if (!release(kv, ptr, old))
			not_ours(kv, ptr, "free");
		return KALLOC_OK;
	}
	if (!ptr)
		return kv_alloc(kv, l, flags, out);
	return kv_resize(kv, ptr, l, old, flags, out);
}

/*
 * The fast entries: realloc's fresh allocation and free.  Sizes up to
 * `large` ask the small backend's fast alloc directly (the host's calls
 * would take the core's checks again); a failure above the threshold
 * falls back as kv_alloc does.  A free asks the small backend's fast free
 * first when it can tell its blocks (slab), else release().
 */
/* Above the threshold: the small backend while it succeeds, up to large,
 * then page. */
static __attribute__((noinline)) kalloc_buf_t
kv_fast_alloc_large(const struct kv *kv, kalloc_layout_t l)
{
	kalloc_buf_t b;
	if (kv->small_fast.alloc && l.size <= kv->large &&
	    l.align <= kv->small_max_align) {
		b = kv->small_fast.alloc(kv->small_fast.state, l);
		if (likely(b.ptr))
			return b;
	}
	if (l.size > PTRDIFF_MAX || kv_alloc(kv, l, 0, &b)) {
		errno = ENOMEM;
		return (kalloc_buf_t){ NULL, 0 };
	}
	return b;
}

/* Up to the threshold the small backend's answer is kv's: a tail call,
 * with no frame of kv's own (its failure sets errno to ENOMEM). */
static kalloc_buf_t kv_fast_alloc(void *state, kalloc_layout_t l)
{
	const struct kv *kv = state;
	if (likely(kv->fast && l.size <= kv->threshold &&
		   l.align <= kv->small_max_align))
		return kv->small_fast.alloc(kv->small_fast.state, l);
	return kv_fast_alloc_large(kv, l);
}

/* Page's share of a fast free: what the small backend said is not its. */
static __attribute__((noinline)) int kv_fast_free_page(const struct kv *kv,
							void *ptr)
{
	return kv->page_fast.free(kv->page_fast.state, ptr,
				  KALLOC_LAYOUT_UNKNOWN);
}

/*
 * The small backend first.  Both are passed KALLOC_LAYOUT_UNKNOWN (always
 * valid: each knows its blocks' sizes), so that only kv and ptr live
 * across the first call: two saved registers, not four.
 */
static int kv_fast_free(void *state, void *ptr, kalloc_layout_t old)
{
	const struct kv *kv = state;
	if (likely(kv->fast)) {
		if (likely(kv->small_fast.free(kv->small_fast.state, ptr,
					       KALLOC_LAYOUT_UNKNOWN)))
			return 1;
		return kv_fast_free_page(kv, ptr);
	}
	return release(kv, ptr, old);
}

/*
 * The front: up to the threshold, kv_fast_alloc is the small backend's
 * fast alloc and nothing else (its answer, failure included, is kv's), so
 * callers may call it themselves; and a free may ask the small backend's
 * fast free first, as kv_fast_free does, when that one answers 0 for
 * pointers not its own.  Otherwise (libc) no front.
 */
static int kv_front(void *state, kalloc_plugin_front_t *out)
{
	const struct kv *kv = state;
	if (!kv->fast || !kv->small_foreign)
		return KALLOC_ENOTSUP;
	*out = (kalloc_plugin_front_t){ kv->small_fast.alloc,
					kv->small_fast.free,
					kv->small_fast.state, kv->threshold,
					kv->small_max_align };
	return KALLOC_OK;
}

/* The malloc entries stand for the front's (kalloc_malloc_t): the small
 * backend's own, when it has them. */
static int kv_malloc_entries(void *state, kalloc_malloc_t *out)
{
	const struct kv *kv = state;
	const kalloc_host_t *host = kv->host;
	kalloc_plugin_front_t front;
	if (kv_front(state, &front) != KALLOC_OK ||
	    host->struct_size < offsetof(kalloc_host_t, malloc_entries) +
					sizeof(host->malloc_entries))
		return KALLOC_ENOTSUP;
	return host->malloc_entries(kv->small, out);
}

static size_t kv_usable_size(void *state, const void *ptr)
{
	const struct kv *kv = state;
	return kv->host->usable_size(owner_checked(kv, ptr, "usable_size"), ptr);
}

static int kv_owns(void *state, const void *ptr)
{
	const struct kv *kv = state;
	return owner(kv, ptr) == kv->page ? in_page(kv, ptr) :
					    kv->host->owns(kv->small, ptr);
}

static int kv_stats(void *state, kalloc_stats_fn fn, void *ctx)
{
	const struct kv *kv = state;
	fn(ctx, NAME, "threshold", kv->threshold);
	fn(ctx, NAME, "large", kv->large == LONG_MAX ? 0 : kv->large);
	return 0;
}

static int kv_init(const kalloc_host_t *host, const char *options,
		   void **state)
{
	long threshold = DEFAULT_THRESHOLD, large = DEFAULT_LARGE;
	char small_name[256] = "";
	const kalloc_plugin_option_t spec[] = {
		{ "small", "KALLOC_KV_SMALL", NULL, small_name, sizeof(small_name),
		  "NAME (a backend other than kv)" },
		{ "threshold", "KALLOC_KV_THRESHOLD", &threshold, NULL, 0, "BYTES" },
		{ "large", "KALLOC_KV_LARGE", &large, NULL, 0, "BYTES (0: none)" },
	};
	int err = host->options(NAME, options, spec, 3);
	if (err)
		return err;
	if (strcmp(small_name, NAME) == 0)
		return host->error(KALLOC_EINVAL, "backend 'kv': small=kv is not "
				   "valid; valid: small=NAME, a backend other "
				   "than kv");
	kalloc_t *page = host->get("page");
	if (!page) /* host->get has said why in kalloc_errmsg() */
		return KALLOC_ELOAD;
	kalloc_t *small;
	if (small_name[0]) {
		small = host->get(small_name);
	} else {
		small = host->get("slab");
		snprintf(small_name, sizeof(small_name), "%s",
			 small ? "slab" : "libc");
		if (!small)
			small = host->get("libc");
	}
	if (!small) /* host->get has said why */
		return KALLOC_ELOAD;
	/* after a PROT_NONE page: blocks are mapped top-down, below it, and a
	 * program's overflow past one must fault at its write, not corrupt
	 * kv's state (as page does for its own records) */
	char *m = mmap(NULL, STATE_GUARD + sizeof(struct kv),
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return KALLOC_ENOMEM;
	if (mprotect(m, STATE_GUARD, PROT_NONE)) {
		munmap(m, STATE_GUARD + sizeof(struct kv));
		return KALLOC_ENOMEM;
	}
	struct kv *kv = (struct kv *)(m + STATE_GUARD);
	if (large == 0)
		large = LONG_MAX;
	else if (large < threshold)
		large = threshold;
	/* asked of an address that is certainly no block (kv's own state) */
	bool tells = host->owns(small, kv) != -1;
	*kv = (struct kv){ host, small, page, (size_t)threshold, (size_t)large,
			   tells, 0, { 0 }, { 0 }, false, false, "" };
	kalloc_info_t info;
	host->info(small, &info);
	kv->small_max_align = info.max_align;
	kv->small_foreign = info.detects & KALLOC_DETECT_FOREIGN_FREE;
	/* The fast paths, when both backends have fast entries and the small
	 * one tells its blocks (it is asked first on a free). */
	if (!tells || host->direct(small, &kv->small_fast) != KALLOC_OK ||
	    host->direct(page, &kv->page_fast) != KALLOC_OK)
		kv->small_fast.alloc = NULL;
	kv->fast = kv->small_fast.alloc != NULL;
	snprintf(kv->small_name, sizeof(kv->small_name), "%s", small_name);
	*state = kv;
	return KALLOC_OK;
}

static void kv_fini(void *state)
{
	munmap((char *)state - STATE_GUARD, STATE_GUARD + sizeof(struct kv));
}

static const kalloc_plugin_ops_t ops = {
	.init = kv_init,
	.fini = kv_fini,
	.realloc = kv_realloc,
	.usable_size = kv_usable_size,
	.owns = kv_owns,
	.stats = kv_stats,
};

static const kalloc_plugin_fast_t fast = {
	.alloc = kv_fast_alloc,
	.free = kv_fast_free,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = NAME,
	.version = KALLOC_VERSION_STRING,
	.description = "KVmalloc: small sizes on slab (or libc), page beyond "
		       "a threshold or when that fails",
	.flags = KALLOC_ZERO,
	.detects = KALLOC_DETECT_FOREIGN_FREE,
	.max_align = (size_t)1 << 30,
	.max_size = PTRDIFF_MAX,
	.ops = &ops,
	.fast = &fast,
	.front = kv_front,
	.malloc_entries = kv_malloc_entries,
};

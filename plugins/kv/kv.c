/*
 * kv: the kernel's KVmalloc.  A block lives in one of two other backends,
 * reached through the host: the small one ("slab", else "libc") or "page".
 *
 *   - alloc: the small backend first.  Sizes up to the threshold
 *     (KALLOC_KV_THRESHOLD, default 4096: one page, as the kernel) stay
 *     there, success or failure; larger ones, or alignments the small
 *     backend refuses, fall back to page when it fails (kvmalloc).  Sizes
 *     above `large` (default 32 KiB, slab's largest class) go to page
 *     first, as kmalloc hands them to the page allocator (kmalloc_large):
 *     page caches and mremaps them, where the small backend would map and
 *     unmap each one.
 *   - realloc (kvrealloc): a page block stays in page (vrealloc), except that
 *     shrinking to the threshold or below moves it to the small backend; a
 *     small block is resized by the small backend and moves to page when
 *     it grows above `large`, or when that fails for a size above the
 *     threshold.  Moves copy min(old, new)
 *     bytes and free the old block.
 *   - free, usable_size: the owner is page when page's owns() says so (it
 *     answers exactly, from its table, without touching the block), else the
 *     small backend (kvfree's is_vmalloc_addr).  No header in front of blocks.
 *     A free asks the host's free_owned of the backend that can tell its
 *     blocks (slab: one lookup that frees as it finds), the other one next.
 *   - A pointer neither backend holds (a double free, an interior or
 *     foreign pointer) is reported as kv's corruption, naming both.
 *
 * Honors ZERO only: NOWAIT/ATOMIC would need both backends to honor them, and
 * the host gives no way to ask a backend what it honors.
 *
 * Options ("key=value,..."): small=NAME (a backend other than kv),
 * threshold=BYTES (overriding KALLOC_KV_THRESHOLD), large=BYTES.
 */
#include <kalloc/plugin.h>

#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NAME "kv"
#define DEFAULT_THRESHOLD 4096L
#define DEFAULT_LARGE 32768L

struct kv {
	const kalloc_host_t *host;
	kalloc_t *small;
	kalloc_t *page;
	size_t threshold;
	size_t large; /* above it, page first */
	bool small_tells; /* the small backend's owns() never answers -1 */
	bool lean;        /* the host has alloc and free_owned */
	char small_name[64]; /* for reports */
};

/* The host has the appended lean services (alloc, free_owned). */
static bool host_is_lean(const kalloc_host_t *h)
{
	return h->struct_size >= offsetof(kalloc_host_t, free_owned) +
				 sizeof(h->free_owned) &&
	       h->alloc && h->free_owned;
}

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
	if (kv->lean)
		return kv->host->alloc(a, l, f | KALLOC_NOWARN, out);
	return sub(kv, a, NULL, l, KALLOC_LAYOUT_UNKNOWN, f, out);
}

static void sub_free(const struct kv *kv, kalloc_t *a, void *ptr,
		     kalloc_layout_t old)
{
	kalloc_buf_t ignored;
	kv->host->realloc(a, ptr, KALLOC_LAYOUT(0, 1), old, 0, &ignored);
}

/* Frees ptr if backend a holds it (or cannot tell); 0 if a says it does
 * not. */
static int sub_free_owned(const struct kv *kv, kalloc_t *a, void *ptr,
			  kalloc_layout_t old)
{
	if (kv->lean)
		return kv->host->free_owned(a, ptr, old);
	if (kv->host->owns(a, ptr) == 0)
		return 0;
	sub_free(kv, a, ptr, old);
	return 1;
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
 * that cannot (libc) is only handed what page has refused. */
static void release(const struct kv *kv, void *ptr, kalloc_layout_t old)
{
	kalloc_t *first = kv->small_tells ? kv->small : kv->page;
	kalloc_t *second = kv->small_tells ? kv->page : kv->small;
	if (sub_free_owned(kv, first, ptr, old) ||
	    sub_free_owned(kv, second, ptr, old))
		return;
	not_ours(kv, ptr, "free");
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
		release(kv, ptr, old);
		return KALLOC_OK;
	}
	if (!ptr)
		return kv_alloc(kv, l, flags, out);
	return kv_resize(kv, ptr, l, old, flags, out);
}

static void kv_free_sized(void *state, void *ptr, kalloc_layout_t old)
{
	release(state, ptr, old);
}

/* The core's lean entries (plain path). */
static int kv_lean_alloc(void *state, kalloc_layout_t l, kalloc_flags_t f,
			 kalloc_buf_t *out)
{
	return kv_alloc(state, l, f, out);
}

static void kv_lean_free(void *state, void *ptr)
{
	release(state, ptr, KALLOC_LAYOUT_UNKNOWN);
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
	fn(ctx, NAME, "large", kv->large);
	return 0;
}

/* "small=libc,threshold=8192,large=65536" */
static bool parse_options(const kalloc_host_t *host, const char *opts,
			  char *small, size_t small_cap, long *threshold,
			  long *large)
{
	for (const char *s = opts; s && *s;) {
		size_t n = strcspn(s, ",");
		const char *eq = memchr(s, '=', n);
		if (!eq)
			goto bad;
		const char *v = eq + 1;
		size_t klen = (size_t)(eq - s), vlen = n - klen - 1;
		if (klen == 5 && memcmp(s, "small", 5) == 0) {
			if (vlen == 0 || vlen >= small_cap ||
			    (vlen == 2 && memcmp(v, "kv", 2) == 0))
				goto bad;
			memcpy(small, v, vlen);
			small[vlen] = 0;
		} else if ((klen == 9 && memcmp(s, "threshold", 9) == 0) ||
			   (klen == 5 && memcmp(s, "large", 5) == 0)) {
			char *end;
			errno = 0;
			long t = strtol(v, &end, 0);
			if (errno || end == v || end != s + n || t < 0)
				goto bad;
			*(klen == 5 ? large : threshold) = t;
		} else {
			goto bad;
		}
		s += n + (s[n] == ',');
	}
	return true;
bad:
	host->error(KALLOC_EINVAL, "invalid options '%s'; valid: small=NAME (a "
		    "backend other than kv), threshold=BYTES, large=BYTES "
		    "(comma-separated)",
		    opts);
	return false;
}

static int kv_init(const kalloc_host_t *host, const char *options,
		   void **state)
{
	long threshold = host->option("KALLOC_KV_THRESHOLD", DEFAULT_THRESHOLD);
	char small_name[512] = "";
	const char *env_small = host->option_str("KALLOC_KV_SMALL");
	if (env_small)
		snprintf(small_name, sizeof(small_name), "%s", env_small);
	long large = DEFAULT_LARGE;
	if (!parse_options(host, options, small_name, sizeof(small_name),
			   &threshold, &large))
		return KALLOC_EINVAL;
	if (threshold < 0)
		threshold = DEFAULT_THRESHOLD;
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
	struct kv *kv = mmap(NULL, sizeof(*kv), PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (kv == MAP_FAILED)
		return KALLOC_ENOMEM;
	if (large < threshold)
		large = threshold;
	/* asked of an address that is certainly no block (kv's own state) */
	bool tells = host->owns(small, kv) != -1;
	*kv = (struct kv){ host, small, page, (size_t)threshold, (size_t)large,
			   tells, host_is_lean(host), "" };
	snprintf(kv->small_name, sizeof(kv->small_name), "%s", small_name);
	*state = kv;
	return KALLOC_OK;
}

static void kv_fini(void *state)
{
	munmap(state, sizeof(struct kv));
}

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = NAME,
	.version = KALLOC_VERSION_STRING,
	.description = "KVmalloc: small sizes on slab (or libc), page beyond "
		       "a threshold or when that fails",
	.flags = KALLOC_ZERO,
	.max_align = (size_t)1 << 30,
	.max_size = PTRDIFF_MAX,
	.init = kv_init,
	.fini = kv_fini,
	.realloc = kv_realloc,
	.usable_size = kv_usable_size,
	.free_sized = kv_free_sized,
	.alloc = kv_lean_alloc,
	.free = kv_lean_free,
	.owns = kv_owns,
	.stats = kv_stats,
};

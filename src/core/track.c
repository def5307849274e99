/*
 * The instrumented path: taken instead of the plain dispatch when a handle
 * has features (stats, tracking, debug), when the call carries ACCOUNT, or
 * while fault injection is armed.  The plain path in dispatch.c has already
 * handled sentinels and zero sizes and validated the layout and flags.
 *
 * Invariant: with FEAT_TRACK every live block of the handle is in the block
 * table; its backend layout is {size + redzone(align), align}.
 */
#include "internal.h"

#include <string.h>
#include <unistd.h>

static FAST_TLS int my_tid;

static int tid(void)
{
	if (!my_tid)
		my_tid = (int)gettid();
	return my_tid;
}

static kalloc_layout_t backend_layout(kalloc_t *a, size_t size, size_t align)
{
	return KALLOC_LAYOUT(size + kalloc__redzone(a, align), align);
}

/* A free or realloc of a pointer the table does not know (F). */
__attribute__((noreturn)) static void bad_pointer(kalloc_t *a, void *ptr,
						  const void *caller,
						  const char *op)
{
	struct kalloc_block q;
	if (kalloc__debug_is_quarantined(ptr, &q)) {
		kalloc__report_block(a->p->name, &q, "double free", caller);
		kalloc__corruption(a->p->name, ptr, "%s of a %zu-byte block "
				   "already freed", op, q.size);
	}
	kalloc__corruption(a->p->name, ptr, "%s of a pointer that is not a "
			   "live block of backend '%s' (double free, interior "
			   "pointer, or another allocator's block)", op,
			   a->p->name);
}

/* Looks up ptr's record; F makes an unknown pointer fatal. */
static bool lookup(kalloc_t *a, unsigned f, void *ptr, const void *caller,
		   const char *op, struct kalloc_block *b)
{
	if (!(f & (FEAT_TRACK | FEAT_ACCOUNT)))
		return false;
	bool found = kalloc__block_get(ptr, b);
	if (f & DEBUG_F) {
		if (!found || b->a != a)
			bad_pointer(a, ptr, caller, op);
	}
	if (found)
		kalloc__debug_check(a, b, caller, op);
	return found;
}

/* Gives a tracked block back: uncharge, count, quarantine or free. */
static void release_tracked(kalloc_t *a, struct kalloc_block *b,
			    const void *caller)
{
	if (b->domain)
		kalloc__uncharge(b->domain, b->charge);
	b->free_site = caller;
	if (kalloc__debug_quarantine(a, b))
		return;
	kalloc_buf_t ignored;
	a->ops->realloc(a->state, b->ptr, KALLOC_LAYOUT(0, 1),
		   backend_layout(a, b->size, b->align), 0, &ignored);
}

void kalloc__track_free(const void *caller, kalloc_t *a, void *ptr,
			kalloc_layout_t old)
{
	unsigned f = atomic_load_explicit(&a->features, memory_order_relaxed);
	struct kalloc_block b;
	if (lookup(a, f, ptr, caller, "free", &b)) {
		if ((f & DEBUG_F) && old.align && old.size != b.size) {
			kalloc__report_block(a->p->name, &b, "free with the wrong size",
					     caller);
			kalloc__corruption(a->p->name, ptr, "freed as %zu bytes, "
					   "allocated as %zu", old.size, b.size);
		}
		kalloc__block_take(ptr, &b);
		if (f & FEAT_STATS)
			kalloc__stats_free(a, a->ops->usable_size(a->state, ptr));
		release_tracked(a, &b, caller);
		return;
	}
	if (f & FEAT_STATS)
		kalloc__stats_free(a, a->ops->usable_size(a->state, ptr));
	kalloc__plain_free(a, ptr, old);
}

size_t kalloc__track_usable(kalloc_t *a, const void *ptr)
{
	struct kalloc_block b;
	if ((atomic_load(&a->features) & DEBUG_Z) && kalloc__block_get(ptr, &b))
		return b.size;
	return a->ops->usable_size(a->state, ptr);
}

/* Failures are counted by the caller, dispatch.c's fail(). */
static int failed(kalloc_t *a, unsigned f, int err)
{
	(void)a;
	(void)f;
	return err;
}

int kalloc__track_realloc(const void *caller, kalloc_t *a, void *ptr,
			  kalloc_layout_t layout, kalloc_layout_t old,
			  kalloc_flags_t flags, kalloc_buf_t *out)
{
	unsigned f = atomic_load_explicit(&a->features, memory_order_relaxed);
	struct kalloc_block ob;
	bool have_old = ptr && lookup(a, f, ptr, caller, "realloc", &ob);

	if (atomic_load_explicit(&kalloc__fail_armed, memory_order_relaxed) &&
	    kalloc__fail_now(layout.size, flags))
		return failed(a, f, kalloc__error(KALLOC_ENOMEM,
				"injected failure (KALLOC_FAIL or kalloc_fail_nth)"));

	size_t rz = kalloc__redzone(a, layout.align);
	if (layout.size > a->max_size - rz || layout.size > SIZE_MAX - rz)
		return failed(a, f, kalloc__error(KALLOC_ENOMEM,
				"size %zu plus its %zu-byte red zone is above "
				"backend '%s''s limit", layout.size, rz, a->p->name));

	/* Accounting: a block keeps its domain; ACCOUNT gives one to others. */
	struct kalloc_domain *dom = have_old ? ob.domain : NULL;
	size_t old_charge = dom ? ob.charge : 0;
	if (!dom && (flags & KALLOC_ACCOUNT))
		dom = kalloc__current_domain();
	if (dom && layout.size > old_charge) {
		int err = kalloc__charge(dom, layout.size - old_charge,
					 (flags & KALLOC_NOFAIL) != 0);
		if (err)
			return failed(a, f, err);
		if (!(f & FEAT_ACCOUNT))
			kalloc__plain_add_features(a, FEAT_ACCOUNT);
	}

	/* Stats count usable_size on both sides, whatever len says. */
	size_t old_len = 0;
	if (ptr && (f & FEAT_STATS))
		old_len = a->ops->usable_size(a->state, ptr);

	kalloc_flags_t pf = flags & KALLOC_PLUGIN_FLAGS;
	kalloc_layout_t bl = KALLOC_LAYOUT(layout.size + rz, layout.align);
	kalloc_buf_t nb;
	int err;
	/* Debug blocks move on realloc: red zone and poison stay exact. */
	bool move = have_old && (f & (DEBUG_Z | DEBUG_P));
	if (move) {
		err = a->ops->realloc(a->state, NULL, bl, KALLOC_LAYOUT_UNKNOWN, pf, &nb);
		if (!err) {
			size_t kept = ob.size < layout.size ? ob.size : layout.size;
			memcpy(nb.ptr, ptr, kept);
			kalloc__block_take(ptr, &ob);
			ob.domain = NULL; /* its charge moves to the new block */
			release_tracked(a, &ob, caller);
		}
	} else {
		kalloc_layout_t bo = have_old ? backend_layout(a, ob.size, ob.align) :
						(ptr ? old : KALLOC_LAYOUT_UNKNOWN);
		void *cls = kalloc__hinted_class(a, ptr, bl.size);
		err = cls ? kalloc__class_alloc(a, cls, pf, &nb) :
			    a->ops->realloc(a->state, ptr, bl, bo, pf, &nb);
	}
	if (err) {
		if (dom && layout.size > old_charge)
			kalloc__uncharge(dom, layout.size - old_charge);
		return failed(a, f, kalloc__error(err, "%s", kalloc_strerror(err)));
	}
	if (dom && layout.size < old_charge)
		kalloc__uncharge(dom, old_charge - layout.size);

	if (f & FEAT_STATS) {
		size_t len = a->ops->usable_size(a->state, nb.ptr);
		if (ptr)
			kalloc__stats_resize(a, layout.size, old_len, len);
		else
			kalloc__stats_alloc(a, layout.size, len);
	}
	if ((f & FEAT_TRACK) || dom) {
		if (have_old && !move && nb.ptr != ptr)
			kalloc__block_take(ptr, &ob);
		struct kalloc_block b = {
			.ptr = nb.ptr, .a = a, .size = layout.size,
			.align = layout.align, .len = nb.len, .site = caller,
			.tid = tid(), .domain = dom, .charge = dom ? layout.size : 0,
		};
		if (!kalloc__block_put(&b))
			kalloc__log(a->p->name, "block table full: %p of %zu bytes "
				    "is not tracked", nb.ptr, layout.size);
		kalloc__debug_fill(a, &b);
	}
	*out = (kalloc_buf_t){ nb.ptr, rz ? layout.size : nb.len };
	return KALLOC_OK;
}

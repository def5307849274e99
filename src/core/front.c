/*
 * What a backend's direct callers call: its front (kalloc_front), the
 * plugin's answer to its `front` entry or its own fast entries when it has
 * none; and its malloc entries (kalloc_malloc_entries), when the plugin
 * answers its `malloc_entries`.  Both asked once after init and checked.
 *
 * Invariant: a handle with a fast table has a->front set before it is
 * registered, and never changed after: alloc, free non-NULL, max_align a
 * power of two no larger than the handle's max_align, rest_free NULL or
 * the fast table's free.  So kalloc_front is a copy, and callers never
 * test whether there is a front.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>

/* Why an entry's answer other than KALLOC_OK and KALLOC_ENOTSUP refuses
 * the plugin. */
static const char *bad_answer(const char *entry, int err)
{
	static _Thread_local char why[96];
	snprintf(why, sizeof(why), "its %s answered %d (%s), not KALLOC_OK "
		 "nor KALLOC_ENOTSUP", entry, err, kalloc_strerror(err));
	return why;
}

/* Why a front the plugin gave is refused, or NULL. */
static const char *front_invalid(int err, const kalloc_plugin_front_t *f)
{
	if (err != KALLOC_OK)
		return bad_answer("front", err);
	if (!f->alloc)
		return "its front has no 'alloc'";
	if (!f->free)
		return "its front has no 'free'";
	if (f->max_align == 0 || (f->max_align & (f->max_align - 1)))
		return "its front's max_align is not a power of two";
	return NULL;
}

/* a->malloc from the plugin's malloc_entries, when it answers them. */
static int malloc_entries_init(kalloc_t *a, const char *path)
{
	const kalloc_plugin_t *p = a->p;
	if (!DESC_COVERS(p, malloc_entries) || !p->malloc_entries)
		return KALLOC_OK;
	kalloc_malloc_t m = { 0 };
	int err = p->malloc_entries(a->state, &m);
	if (err == KALLOC_ENOTSUP)
		return KALLOC_OK;
	const char *why = NULL;
	if (err != KALLOC_OK)
		why = bad_answer("malloc_entries", err);
	else if (!m.malloc)
		why = "its malloc entries have no 'malloc'";
	else if (!m.free)
		why = "its malloc entries have no 'free'";
	if (why)
		return kalloc__error(KALLOC_EABI, "refusing plugin %s: %s", path,
				     why);
	a->malloc = m;
	return KALLOC_OK;
}

/* a->front from the plugin's front, or its fast table's entries. */
static int front_init(kalloc_t *a, const char *path)
{
	/* no front: the fast table everywhere, and nothing after its free */
	a->front = (kalloc_front_t){ a->fast->alloc, a->fast->free, a->state,
				     SIZE_MAX, a->max_align, NULL, NULL };
	const kalloc_plugin_t *p = a->p;
	if (!DESC_COVERS(p, front) || !p->front)
		return KALLOC_OK;
	kalloc_plugin_front_t f = { 0 };
	int err = p->front(a->state, &f);
	if (err == KALLOC_ENOTSUP)
		return KALLOC_OK;
	const char *why = front_invalid(err, &f);
	if (why)
		return kalloc__error(KALLOC_EABI, "refusing plugin %s: %s", path,
				     why);
	a->front = (kalloc_front_t){
		f.alloc, f.free, f.state, f.max_size,
		f.max_align < a->max_align ? f.max_align : a->max_align,
		a->fast->free, a->state,
	};
	return KALLOC_OK;
}

int kalloc__front_init(kalloc_t *a, const char *path)
{
	if (!a->fast)
		return KALLOC_OK;
	int err = front_init(a, path);
	return err ? err : malloc_entries_init(a, path);
}

int kalloc_front(kalloc_t *a, kalloc_front_t *out)
{
	if (!a || !out)
		return kalloc__error(KALLOC_EINVAL,
				     "kalloc_front: handle and out must not be NULL");
	if (!a->fast)
		return kalloc__error(KALLOC_ENOTSUP,
				     "backend '%s' has no fast entries (its "
				     "plugin's descriptor has no fast table), "
				     "so no front; use kalloc_alloc and "
				     "kalloc_free", a->p->name);
	*out = a->front;
	return KALLOC_OK;
}

int kalloc_malloc_entries(kalloc_t *a, kalloc_malloc_t *out)
{
	if (!a || !out)
		return kalloc__error(KALLOC_EINVAL, "kalloc_malloc_entries: "
				     "handle and out must not be NULL");
	if (!a->malloc.malloc)
		return kalloc__error(KALLOC_ENOTSUP,
				     "backend '%s' has no malloc entries (its "
				     "plugin's descriptor answers none); use "
				     "kalloc_front", a->p->name);
	*out = a->malloc;
	return KALLOC_OK;
}

/* ---- the foreign-free handler (kalloc_set_foreign_free) ---------------- */

static atomic_bool foreign_reported;

/* The default: a pointer no backend allocated, reported once, left alone.
 * Allocates nothing (it runs inside a free). */
static void foreign_default(void *ptr)
{
	if (!ptr || kalloc_is_sentinel(ptr) ||
	    atomic_exchange(&foreign_reported, true))
		return;
	kalloc__log("core", "free(%p): not a block of the backend; left "
		    "alone (reported once)", ptr);
}

static void (*_Atomic foreign_fn)(void *ptr) = foreign_default;

void kalloc_set_foreign_free(void (*fn)(void *ptr))
{
	atomic_store(&foreign_fn, fn ? fn : foreign_default);
}

void kalloc__foreign_free(void *ptr)
{
	atomic_load_explicit(&foreign_fn, memory_order_acquire)(ptr);
}

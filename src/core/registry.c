/*
 * Open handles: the process-wide shared handle per backend (kalloc_get), the
 * default backend, and the fork hooks that run across every open handle.
 *
 * Lock order: registry_lock, then each handle's plugin locks in registration
 * order (a plugin opened by another's init, as slab by kv, registers first).
 * registry_lock is recursive because a plugin's init may call kalloc_get.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t registry_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static kalloc_t *handles;  /* every open handle, in registration order */

struct shared {
	kalloc_t *a;
	struct shared *next;
	char name[]; /* as given: a backend name or a plugin path */
};
static struct shared *shared_list;

static void atfork_prepare(void)
{
	pthread_mutex_lock(&registry_lock);
	kalloc__caches_atfork(0);
	for (kalloc_t *a = handles; a; a = a->next)
		if (a->ops->atfork_prepare)
			a->ops->atfork_prepare(a->state);
	kalloc__block_lock_all();
	kalloc__plain_atfork(0);
	kalloc__tools_atfork(0);
}

/* Runs the parent or child hooks in reverse registration order. */
static void run_after(kalloc_t *a, bool child)
{
	if (!a)
		return;
	run_after(a->next, child);
	void (*fn)(void *) = child ? a->ops->atfork_child :
				     a->ops->atfork_parent;
	if (fn)
		fn(a->state);
}

static void atfork_parent(void)
{
	kalloc__tools_atfork(1);
	kalloc__plain_atfork(1);
	kalloc__block_unlock_all();
	run_after(handles, false);
	kalloc__caches_atfork(1);
	pthread_mutex_unlock(&registry_lock);
}

static void atfork_child(void)
{
	kalloc__tools_atfork(2);
	kalloc__plain_atfork(2);
	kalloc__block_unlock_all();
	run_after(handles, true);
	kalloc__caches_atfork(2);
	/* The child's thread has a new id: a recursive mutex refuses its
	 * unlock (EPERM) and would stay held.  Make the lock anew. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&registry_lock, &attr);
	pthread_mutexattr_destroy(&attr);
}

static pthread_once_t process_once = PTHREAD_ONCE_INIT;

/* Once per process, before the first handle is usable. */
static void process_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	kalloc__fail_init();
}

void kalloc__register(kalloc_t *a)
{
	pthread_once(&process_once, process_init);
	pthread_mutex_lock(&registry_lock);
	kalloc_t **pp = &handles;
	while (*pp)
		pp = &(*pp)->next;
	a->next = NULL;
	*pp = a;
	pthread_mutex_unlock(&registry_lock);
	kalloc__plain_attach(a); /* after process_init: KALLOC_FAIL is armed */
}

void kalloc__unregister(kalloc_t *a)
{
	kalloc__plain_detach(a);
	pthread_mutex_lock(&registry_lock);
	for (kalloc_t **pp = &handles; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	pthread_mutex_unlock(&registry_lock);
}

void kalloc__foreach_handle(void (*fn)(kalloc_t *, void *), void *ctx)
{
	pthread_mutex_lock(&registry_lock);
	for (kalloc_t *a = handles; a; a = a->next)
		fn(a, ctx);
	pthread_mutex_unlock(&registry_lock);
}

int kalloc_open(const char *backend, const char *options, kalloc_t **out)
{
	if (!backend || !out)
		return kalloc__error(KALLOC_EINVAL,
				     "kalloc_open: backend and out must not be NULL");
	return kalloc__load(backend, options, out);
}

void kalloc_close(kalloc_t *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&registry_lock);
	for (struct shared *s = shared_list; s; s = s->next)
		if (s->a == a) { /* shared handles live for the whole process */
			pthread_mutex_unlock(&registry_lock);
			return;
		}
	pthread_mutex_unlock(&registry_lock);
	kalloc__unload(a);
}

kalloc_t *kalloc_get(const char *backend)
{
	if (!backend)
		return kalloc_default();
	pthread_mutex_lock(&registry_lock);
	kalloc_t *a = NULL;
	for (struct shared *s = shared_list; s; s = s->next)
		if (strcmp(s->name, backend) == 0) {
			a = s->a;
			break;
		}
	if (!a) {
		struct shared *s = calloc(1, sizeof(*s) + strlen(backend) + 1);
		if (!s) {
			kalloc__error(KALLOC_ENOMEM, "no memory to open '%s'",
				      backend);
		} else if (kalloc__load(backend, NULL, &a) != KALLOC_OK) {
			free(s);
			a = NULL;
		} else {
			strcpy(s->name, backend);
			s->a = a;
			s->next = shared_list;
			shared_list = s;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return a;
}

/*
 * The default: our own slab, which beats libc on the benchmarks
 * (bench/README.md); libc when no slab plugin is installed.
 */
static const char *const defaults[] = { "slab", "libc" };

static _Atomic(kalloc_t *) default_handle;

static kalloc_t *first_default(void)
{
	kalloc_t *a = NULL;
	for (size_t i = 0; !a && i < sizeof(defaults) / sizeof(defaults[0]); i++)
		a = kalloc_get(defaults[i]);
	return a;
}

kalloc_t *kalloc_default(void)
{
	kalloc_t *a = atomic_load_explicit(&default_handle, memory_order_acquire);
	if (likely(a))
		return a;
	/* Resolved once, under the lock: an invalid KALLOC_BACKEND is
	 * reported once however many threads get here first. */
	pthread_mutex_lock(&registry_lock);
	a = atomic_load_explicit(&default_handle, memory_order_acquire);
	if (!a) {
		const char *want = kalloc__env("KALLOC_BACKEND");
		a = want ? kalloc_get(want) : first_default();
		if (!a && want) {
			char why[4096]; /* a whole message (error.c) */
			snprintf(why, sizeof(why), "%s", kalloc_errmsg());
			a = first_default();
			kalloc__log(NULL, "KALLOC_BACKEND=%s: %s; using %s", want,
				    why, a ? a->p->name : "nothing");
		}
		if (!a) {
			kalloc__log(NULL, "cannot open a default backend (slab, "
				    "libc): %s", kalloc_errmsg());
			abort();
		}
		atomic_store_explicit(&default_handle, a, memory_order_release);
	}
	pthread_mutex_unlock(&registry_lock);
	return a;
}

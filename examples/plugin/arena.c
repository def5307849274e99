/* arena: a whole third-party backend.  Blocks are powers of two (16 B to
 * 16 MiB), naturally aligned up to a page, carved from one reserved range;
 * each page holds one class (its byte in cls), so no block has a header.
 * Freed blocks go on their class's list, linked through their first word.
 * All instances share the one arena (like malloc, one heap per process). */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <kalloc/plugin.h>

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE 4096u
#define ARENA ((size_t)1 << 32) /* address space reserved, not used */
#define MAX_SHIFT 24

static struct {
	pthread_mutex_t lock;
	char *base, *bump;
	void *free[MAX_SHIFT + 1];	 /* by class shift: freed blocks */
	unsigned char cls[ARENA / PAGE]; /* each page's class shift */
} a = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int shift_of(size_t n) /* the class of n bytes */
{
	return n <= 16 ? 4 : 64 - __builtin_clzl(n - 1);
}

/* A block of class s, or NULL; lock held. */
static void *take(int s)
{
	size_t size = (size_t)1 << s, span = size < PAGE ? PAGE : size;
	if (!a.free[s]) { /* carve a new span into blocks of class s */
		char *p = (char *)(((uintptr_t)a.bump + span - 1) & ~(span - 1));
		if (p + span > a.base + ARENA)
			return NULL;
		a.bump = p + span;
		memset(&a.cls[(size_t)(p - a.base) / PAGE], s, span / PAGE);
		for (size_t off = span; off >= size; off -= size) {
			*(void **)(p + off - size) = a.free[s];
			a.free[s] = p + off - size;
		}
	}
	void *b = a.free[s];
	a.free[s] = *(void **)b;
	return b;
}

static size_t arena_usable(void *state, const void *p)
{
	(void)state;
	return (size_t)1 << a.cls[(size_t)((const char *)p - a.base) / PAGE];
}

/* The one operation.  ZERO, the one flag declared: zeros follow the kept
 * bytes.  A block stays when it fits; else allocate, copy, free. */
static int arena_realloc(void *state, void *ptr, kalloc_layout_t l,
			 kalloc_layout_t old, kalloc_flags_t flags, kalloc_buf_t *out)
{
	size_t have = ptr ? arena_usable(state, ptr) : 0;
	size_t kept = ptr ? kalloc_kept(old, have, l.size) : 0;
	void *p = ptr;
	if (!ptr || !l.size || l.size > have || !kalloc_aligned(ptr, l.align)) {
		int s = shift_of(l.size > l.align ? l.size : l.align);
		pthread_mutex_lock(&a.lock);
		if (l.size && !(p = take(s))) {
			pthread_mutex_unlock(&a.lock);
			return KALLOC_ENOMEM; /* ptr untouched */
		}
		if (ptr && l.size)
			memcpy(p, ptr, kept);
		if (ptr) { /* freed or moved: onto its class's list */
			*(void **)ptr = a.free[shift_of(have)];
			a.free[shift_of(have)] = ptr;
		}
		pthread_mutex_unlock(&a.lock);
		if (!l.size)
			return KALLOC_OK;
		have = (size_t)1 << s;
	}
	if (flags & KALLOC_ZERO)
		memset((char *)p + kept, 0, have - kept);
	*out = (kalloc_buf_t){ p, have };
	return KALLOC_OK;
}

static int arena_init(const kalloc_host_t *host, const char *opts, void **state)
{
	int err = host->options("arena", opts, NULL, 0); /* takes none */
	pthread_mutex_lock(&a.lock);
	if (!err && !a.base) {
		void *m = mmap(NULL, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE |
			       MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		a.base = a.bump = m == MAP_FAILED ? NULL : m;
	}
	pthread_mutex_unlock(&a.lock);
	*state = &a;
	return err ? err : a.base ? KALLOC_OK : host->error(KALLOC_ENOMEM, "no memory");
}

static void arena_fini(void *state) { (void)state; } /* blocks may outlive it */
/* fork: a lock another thread holds must not stay held in the child */
static void lock(void *state) { (void)state; pthread_mutex_lock(&a.lock); }
static void unlock(void *state) { (void)state; pthread_mutex_unlock(&a.lock); }

static const kalloc_plugin_ops_t ops = {
	.init = arena_init, .fini = arena_fini, .realloc = arena_realloc,
	.usable_size = arena_usable, .atfork_prepare = lock,
	.atfork_parent = unlock, .atfork_child = unlock,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER, .name = "arena", .version = "1",
	.description = "example: power-of-two blocks in one reserved range",
	.flags = KALLOC_ZERO, .max_align = PAGE,
	.max_size = (size_t)1 << MAX_SHIFT, .ops = &ops,
};

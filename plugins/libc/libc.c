/*
 * libc: the system allocator as a backend, the reference every other backend
 * is measured against (the kernel's user-space Cmalloc, but resizing in place
 * through realloc(3) whenever the alignment allows).
 *
 * Honors ZERO.  Refuses NOWAIT/ATOMIC: malloc(3) may wait on an arena lock
 * and may call brk/mmap.
 *
 * Under the LD_PRELOAD shim, "malloc" names the shim, which would send the
 * call straight back here.  So the entry points are looked up in libc.so.6
 * itself (dlsym on its handle searches that object first).
 */
#include <kalloc/plugin.h>

#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static struct {
	void *(*malloc)(size_t);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	void (*free)(void *);
	int (*posix_memalign)(void **, size_t, size_t);
	size_t (*malloc_usable_size)(void *);
} libc;

static char version[32];

/* What malloc(3) guarantees on x86-64 and aarch64 glibc. */
#define MALLOC_ALIGN (2 * sizeof(size_t))

static int libc_init(const kalloc_host_t *host, const char *options,
		     void **state)
{
	(void)options;
	void *h = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	if (h) {
		*(void **)&libc.malloc = dlsym(h, "malloc");
		*(void **)&libc.calloc = dlsym(h, "calloc");
		*(void **)&libc.realloc = dlsym(h, "realloc");
		*(void **)&libc.free = dlsym(h, "free");
		*(void **)&libc.posix_memalign = dlsym(h, "posix_memalign");
		*(void **)&libc.malloc_usable_size = dlsym(h, "malloc_usable_size");
		dlclose(h);
	}
	if (!libc.malloc || !libc.calloc || !libc.realloc || !libc.free ||
	    !libc.posix_memalign || !libc.malloc_usable_size) {
		const char *why = dlerror();
		return host->error(KALLOC_ELOAD, "cannot find malloc in libc.so.6: %s",
				   why ? why : "symbol missing");
	}
	/*
	 * glibc sets its malloc up on the first call (ptmalloc_init), without
	 * a lock: it takes main_arena for the calling thread and counts no
	 * attachment, expecting no other thread yet.  In a program whose
	 * malloc is someone else's (ASan's, the shim's), the first call may
	 * come from two of our callers' threads at once; both then hold
	 * main_arena counted once, and the second to exit aborts in
	 * __malloc_arena_thread_freeres (a->attached_threads > 0).  So make
	 * that first call here, on the one thread that opens the backend.
	 */
	libc.free(libc.malloc(1));
	snprintf(version, sizeof(version), "glibc %s", gnu_get_libc_version());
	*state = NULL;
	return KALLOC_OK;
}

static void libc_fini(void *state)
{
	(void)state;
}

static void *fresh(size_t size, size_t align)
{
	if (align <= MALLOC_ALIGN)
		return libc.malloc(size);
	void *p;
	return libc.posix_memalign(&p, align, size) ? NULL : p;
}

static int libc_realloc(void *state, void *ptr, kalloc_layout_t l,
			kalloc_layout_t old, kalloc_flags_t flags,
			kalloc_buf_t *out)
{
	(void)state;
	if (l.size == 0) {
		libc.free(ptr);
		return KALLOC_OK;
	}
	void *p;
	if (!ptr) {
		/* Without ZERO a fresh block reports the size asked for: asking
		 * malloc_usable_size would cost as much as the dispatch.  With
		 * ZERO all of it is zeroed (calloc clears the whole chunk), so
		 * the whole usable length is reported, as ksize() will. */
		if (!(flags & KALLOC_ZERO)) {
			p = fresh(l.size, l.align);
			if (!p)
				return KALLOC_ENOMEM;
			*out = (kalloc_buf_t){ p, l.size };
			return KALLOC_OK;
		}
		p = l.align <= MALLOC_ALIGN ? libc.calloc(1, l.size) :
					      fresh(l.size, l.align);
		if (!p)
			return KALLOC_ENOMEM;
		size_t len = libc.malloc_usable_size(p);
		if (l.align > MALLOC_ALIGN)
			memset(p, 0, len);
		*out = (kalloc_buf_t){ p, len };
		return KALLOC_OK;
	}
	size_t kept; /* bytes of content the result carries */
	{
		size_t old_len = old.align ? old.size : libc.malloc_usable_size(ptr);
		kept = old_len < l.size ? old_len : l.size;
		if (l.align <= MALLOC_ALIGN) {
			p = libc.realloc(ptr, l.size);
		} else if (kalloc_aligned(ptr, l.align) &&
			   libc.malloc_usable_size(ptr) >= l.size) {
			p = ptr; /* keeps its alignment; realloc might not */
		} else {
			p = fresh(l.size, l.align);
			if (p) {
				memcpy(p, ptr, kept);
				libc.free(ptr);
			}
		}
	}
	if (!p)
		return KALLOC_ENOMEM;
	size_t len = libc.malloc_usable_size(p);
	if (flags & KALLOC_ZERO)
		memset((char *)p + kept, 0, len - kept);
	*out = (kalloc_buf_t){ p, len };
	return KALLOC_OK;
}

/* The fast entries (one malloc per process): fresh() and free(3).  The
 * length reported is the size asked for, as realloc's. */
static kalloc_buf_t libc_fast_alloc(void *state, kalloc_layout_t l)
{
	(void)state;
	/* (above max_size: refused here, not handed to malloc, which a
	 * memory tool reports) */
	void *p = l.size <= PTRDIFF_MAX ? fresh(l.size, l.align) : NULL;
	if (!p)
		errno = ENOMEM;
	return (kalloc_buf_t){ p, p ? l.size : 0 };
}

/* free(3) cannot tell its blocks from others: every pointer is freed.
 * glibc's free keeps errno (since 2.33). */
static int libc_fast_free(void *state, void *ptr, kalloc_layout_t old)
{
	(void)state;
	(void)old;
	libc.free(ptr);
	return 1;
}

static size_t libc_usable_size(void *state, const void *ptr)
{
	(void)state;
	return libc.malloc_usable_size((void *)ptr);
}

/* The malloc entries: malloc(3) (16-aligned, malloc(0) a unique block,
 * ENOMEM), but above PTRDIFF_MAX ENOMEM here (a memory tool's malloc
 * reports such a size and leaves errno); free(3); posix_memalign(3). */
static void *libc_malloc_entry(size_t size)
{
	if (size > PTRDIFF_MAX)
		return kalloc_malloc_too_big();
	return libc.malloc(size);
}

static int libc_free1(void *ptr)
{
	libc.free(ptr);
	return 1;
}

/* posix_memalign(3) (fresh), ENOMEM where it answers an error. */
static void *libc_aligned(size_t align, size_t size)
{
	void *p = size <= PTRDIFF_MAX ? fresh(size, align) : NULL;
	if (!p)
		errno = ENOMEM;
	return p;
}

static int malloc_entries(void *state, kalloc_malloc_t *out)
{
	(void)state;
	if (MALLOC_ALIGN < 16)
		return KALLOC_ENOTSUP;
	*out = (kalloc_malloc_t){ libc_malloc_entry, libc_free1,
				  libc_aligned, libc.free };
	return KALLOC_OK;
}

static const kalloc_plugin_ops_t ops = {
	.init = libc_init,
	.fini = libc_fini,
	.realloc = libc_realloc,
	.usable_size = libc_usable_size,
};

static const kalloc_plugin_fast_t fast = {
	.alloc = libc_fast_alloc,
	.free = libc_fast_free,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = "libc",
	.version = version,
	.description = "the system allocator (malloc, posix_memalign, realloc)",
	.flags = KALLOC_ZERO,
	.max_align = (size_t)1 << 30,
	.max_size = PTRDIFF_MAX,
	.ops = &ops,
	.fast = &fast,
	.malloc_entries = malloc_entries,
};

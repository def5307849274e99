/*
 * tcmalloc: gperftools' tcmalloc through its tc_* entry points.
 *
 * One tcmalloc per process.  Two tcmalloc builds in one process abort
 * ("Attempt to free invalid pointer") as soon as the second one loads,
 * and gperftools does not support dlopen'ing tcmalloc at all.  So the plugin
 * does not link tcmalloc: at init it uses the tcmalloc the process already
 * has (its global tc_malloc, or any loaded libtcmalloc*.so), and only when
 * there is none does it dlopen libtcmalloc_minimal.  Loaded that way, with
 * RTLD_LOCAL, tcmalloc does not replace the process's malloc: its malloc
 * symbols do not interpose references already bound to glibc, and blocks
 * reach tcmalloc only through this plugin.
 *
 * Sized free.  tc_free_sized(p, n) takes the size class of n on trust,
 * without looking p up, except for page-aligned p.  So the plugin keeps one
 * invariant for every block that is not page-aligned:
 *
 *     its size class == the class of hint(layout)
 *
 * for the layout it was last returned for, where hint() is the size tcmalloc
 * itself picks the class from (tc_memalign rounds the size up to the
 * alignment).  That rules out tc_realloc: it grows to 1.25x the old class
 * and shrinks in place down to half, leaving blocks on classes no layout
 * names.  realloc here keeps a block only when it already sits on the
 * class of the new layout, and otherwise allocates, copies and frees with
 * the sized free, which is all tc_realloc would have done (tcmalloc never
 * resizes in place).
 *
 * Alignment.  tc_malloc aligns blocks of up to 8 bytes to 8 and larger ones
 * to 16 (checked at init); beyond that tc_memalign, up to 1 GiB.
 *
 * Under valgrind, tc_* are valgrind's own malloc (it replaces them in any
 * libtcmalloc*): the plugin notices at init, reports usable sizes as
 * measured, frees unsized, and fails alignments above valgrind's 16 MiB.
 *
 * ZERO: only the bytes after the kept content are cleared.  Refuses
 * NOWAIT/ATOMIC: tcmalloc takes spin locks and maps memory.
 *
 * The fast entries: a layout aligned to 16 or less is asked of tc_malloc
 * as max(size, align) bytes, which lands on an aligned class of the same
 * class as hint() names (its usable length, for realloc, comes from a
 * table of tc_nallocx filled once); unknown layouts are freed with tc_free.
 */
#include <kalloc/plugin.h>

#include <dlfcn.h>
#include <errno.h>
#include <gperftools/malloc_extension_c.h>
#include <gperftools/nallocx.h>
#include <gperftools/tcmalloc.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef TCMALLOC_SONAME
#define TCMALLOC_SONAME "libtcmalloc_minimal.so.4"
#endif

/* Valgrind's memalign, standing in for tc_memalign, aborts above this. */
#define REPLACED_MAX_ALIGN ((size_t)1 << 24)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Below this alignment tcmalloc's page-level blocks never start. */
#define PAGE_MASK ((uintptr_t)4096 - 1)

static struct {
	__typeof__(tc_malloc) *malloc;
	__typeof__(tc_memalign) *memalign;
	__typeof__(tc_free) *free;
	__typeof__(tc_free_sized) *free_sized;
	__typeof__(tc_malloc_size) *malloc_size;
	__typeof__(tc_nallocx) *nallocx;
	__typeof__(tc_version) *version;
	__typeof__(MallocExtension_GetNumericProperty) *property; /* optional */
	size_t natural16_from;  /* tc_malloc aligns sizes above this to 16 */
	int replaced;           /* tc_* are not tcmalloc's own (valgrind) */
	/* tc_malloc(max(size, align)) serves alignments up to this (0: never,
	 * when replaced) */
	size_t plain_align;
	kalloc_class_table_t classes; /* usable length of tc_malloc(n) */
	char where[256];        /* which library, for the version string */
	char error[512];        /* why resolving failed, "" if it did not */
} tc;

static char version[320];
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

/* dl_iterate_phdr callback: the path of a loaded libtcmalloc*. */
static int find_loaded(struct dl_phdr_info *info, size_t size, void *ctx)
{
	(void)size;
	const char *path = info->dlpi_name;
	const char *base = path ? strrchr(path, '/') : NULL;
	base = base ? base + 1 : path;
	if (!base || strncmp(base, "libtcmalloc", 11) != 0)
		return 0;
	snprintf(ctx, sizeof(tc.where), "%s", path);
	return 1;
}

/*
 * dlopen's tcmalloc.  Its constructor registers an object it never frees
 * (MallocExtension::Register): under LeakSanitizer, say so.  (Under
 * valgrind, plugins/tcmalloc/valgrind.supp does.)
 */
static void *load_tcmalloc(void)
{
	void (*lsan_disable)(void), (*lsan_enable)(void);
	*(void **)&lsan_disable = dlsym(RTLD_DEFAULT, "__lsan_disable");
	*(void **)&lsan_enable = dlsym(RTLD_DEFAULT, "__lsan_enable");
	if (lsan_disable && lsan_enable)
		lsan_disable();
	void *h = dlopen(TCMALLOC_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (lsan_disable && lsan_enable)
		lsan_enable();
	return h;
}

static int bind(void *h)
{
	*(void **)&tc.malloc = dlsym(h, "tc_malloc");
	*(void **)&tc.memalign = dlsym(h, "tc_memalign");
	*(void **)&tc.free = dlsym(h, "tc_free");
	*(void **)&tc.free_sized = dlsym(h, "tc_free_sized");
	*(void **)&tc.malloc_size = dlsym(h, "tc_malloc_size");
	*(void **)&tc.nallocx = dlsym(h, "tc_nallocx");
	*(void **)&tc.version = dlsym(h, "tc_version");
	*(void **)&tc.property = dlsym(h, "MallocExtension_GetNumericProperty");
	return tc.malloc && tc.memalign && tc.free && tc.free_sized &&
	       tc.malloc_size && tc.nallocx && tc.version;
}

static size_t nallocx0(size_t n)
{
	return tc.nallocx(n, 0);
}

static void resolve(void)
{
	void *h = NULL; /* RTLD_DEFAULT is NULL too: `found` says */
	int found = 1;
	if (dlsym(RTLD_DEFAULT, "tc_malloc")) {
		h = RTLD_DEFAULT;
		snprintf(tc.where, sizeof(tc.where), "the process's own tcmalloc");
	} else if (dl_iterate_phdr(find_loaded, tc.where)) {
		h = dlopen(tc.where, RTLD_NOW | RTLD_NOLOAD);
		found = h != NULL;
	} else {
		snprintf(tc.where, sizeof(tc.where), "%s", TCMALLOC_SONAME);
		h = load_tcmalloc();
		if (!h) {
			const char *e = dlerror();
			snprintf(tc.error, sizeof(tc.error), "cannot load %s: %s%s",
				 TCMALLOC_SONAME, e ? e : "dlopen failed",
				 e && strstr(e, "static TLS") ?
				 "; start the process with GLIBC_TUNABLES="
				 "glibc.rtld.optional_static_tls=16384" : "");
			return;
		}
	}
	if (!found || !bind(h)) {
		snprintf(tc.error, sizeof(tc.error),
			 "%s lacks the tc_* entry points (gperftools >= 2.6 needed)",
			 tc.where);
		return;
	}
	/* Classes above 8 bytes are multiples of 16 in default builds; a
	 * build with 8-byte alignment is served through tc_memalign instead. */
	tc.natural16_from = kalloc_class_table_16(nallocx0) ? 8 : SIZE_MAX;
	kalloc_class_table_fill(&tc.classes, nallocx0);
	int major, minor;
	const char *patch;
	/* Valgrind replaces tc_* with its own malloc: the sizes are then
	 * exact, not tcmalloc's classes, and tc_free_sized counts as a
	 * mismatched delete[].  Seen by tc_malloc_size disagreeing with
	 * tc_nallocx; then measure blocks and free unsized. */
	void *probe = tc.malloc(1);
	tc.replaced = !probe || tc.malloc_size(probe) != tc.nallocx(1, 0);
	tc.free(probe);
	tc.plain_align = tc.replaced ? 0 : tc.natural16_from == 8 ? 16 : 8;
	snprintf(version, sizeof(version), "%s (%s%s)",
		 tc.version(&major, &minor, &patch), tc.where,
		 tc.replaced ? ", replaced by the host's malloc" : "");
}

static int tc_init(const kalloc_host_t *host, const char *options,
		   void **state)
{
	(void)options;
	pthread_once(&resolve_once, resolve);
	if (tc.error[0])
		return host->error(KALLOC_ELOAD, "%s", tc.error);
	*state = NULL;
	return KALLOC_OK;
}

static void tc_fini(void *state)
{
	(void)state;
}

/* Does tc_malloc alone give this layout its alignment? */
static int natural(kalloc_layout_t l)
{
	return l.align <= 8 || (l.align == 16 && l.size > tc.natural16_from);
}

static int lg(size_t align)
{
	return __builtin_ctzl(align);
}

/* The size tcmalloc picks the block's class from (see the top). */
static size_t hint(kalloc_layout_t l)
{
	return natural(l) ? l.size : (l.size + l.align - 1) & ~(l.align - 1);
}

/* Usable length of tc_malloc(n). */
static size_t malloc_len(size_t n)
{
	return kalloc_class_len(&tc.classes, n, nallocx0);
}

/* The size tc_malloc serves a layout with, or 0 if it cannot: up to
 * plain_align, max(size, align) lands on an aligned class, the one of
 * hint(l). */
static size_t plain_size(kalloc_layout_t l)
{
	if (l.align > tc.plain_align)
		return 0;
	return l.size < l.align ? l.align : l.size;
}

/* Usable length of a fresh block for the layout. */
static size_t class_len(kalloc_layout_t l)
{
	size_t n = plain_size(l);
	if (n)
		return malloc_len(n);
	return tc.nallocx(l.size, natural(l) ? 0 : MALLOCX_LG_ALIGN(lg(l.align)));
}

static void *fresh(kalloc_layout_t l)
{
	if (tc.replaced && l.align > REPLACED_MAX_ALIGN)
		return NULL;
	size_t n = plain_size(l);
	if (n)
		return tc.malloc(n);
	return natural(l) ? tc.malloc(l.size) : tc.memalign(l.align, l.size);
}

/* A free, sized when the layout is known. */
static void release(void *ptr, kalloc_layout_t old)
{
	if (!old.align) {
		tc.free(ptr);
		return;
	}
	/* Not page-aligned, so on a class (see the top), and that class is
	 * the one of this size: what C++'s sized delete would pass. */
	if (likely(old.align <= tc.plain_align && ((uintptr_t)ptr & PAGE_MASK))) {
		tc.free_sized(ptr, old.size < old.align ? old.align : old.size);
		return;
	}
	if (((uintptr_t)ptr & PAGE_MASK) == 0 || tc.replaced)
		tc.free(ptr); /* may be a page-level block: let tcmalloc look */
	else
		tc.free_sized(ptr, hint(old));
}

static int tc_realloc_entry(void *state, void *ptr, kalloc_layout_t l,
			    kalloc_layout_t old, kalloc_flags_t flags,
			    kalloc_buf_t *out)
{
	(void)state;
	if (l.size == 0) {
		release(ptr, old);
		return KALLOC_OK;
	}
	size_t len = class_len(l);
	size_t kept = 0; /* bytes of content the result carries */
	void *p;
	if (!ptr) {
		p = fresh(l);
	} else {
		size_t cur = tc.malloc_size(ptr);
		size_t old_size = old.align ? old.size : cur;
		kept = old_size < l.size ? old_size : l.size;
		if (cur == len && kalloc_aligned(ptr, l.align)) {
			p = ptr; /* already on the new layout's class */
		} else {
			p = fresh(l);
			if (p) {
				memcpy(p, ptr, kept);
				release(ptr, old);
			}
		}
	}
	if (!p)
		return KALLOC_ENOMEM;
	if (tc.replaced)
		len = tc.malloc_size(p);
	if (flags & KALLOC_ZERO)
		memset((char *)p + kept, 0, len - kept);
	*out = (kalloc_buf_t){ p, len };
	return KALLOC_OK;
}

/* The fast entries (one tcmalloc per process): realloc's fresh
 * allocation, and release. */
static __attribute__((noinline)) kalloc_buf_t fast_alloc_other(kalloc_layout_t l)
{
	/* (above max_size: refused here, not handed to a replaced malloc,
	 * which a memory tool reports) */
	void *p = l.size <= PTRDIFF_MAX ? fresh(l) : NULL;
	if (!p) {
		errno = ENOMEM;
		return (kalloc_buf_t){ NULL, 0 };
	}
	return (kalloc_buf_t){ p, tc.replaced ? tc.malloc_size(p) : class_len(l) };
}

/* A small request tc_malloc aligns, that succeeds: the class table. */
static kalloc_buf_t tc_fast_alloc(void *state, kalloc_layout_t l)
{
	(void)state;
	if (unlikely(l.align > tc.plain_align || l.size > tc.classes.max))
		return fast_alloc_other(l);
	/* the length first: nothing but it is kept across the call */
	size_t n = l.size < l.align ? l.align : l.size;
	size_t len = tc.classes.len[(n + 7) >> 3];
	void *p = tc.malloc(n);
	if (likely(p))
		return (kalloc_buf_t){ p, len };
	errno = ENOMEM; /* (a memory tool's malloc may leave it) */
	return (kalloc_buf_t){ NULL, 0 };
}

/* tcmalloc cannot tell its blocks from others: every pointer is freed.
 */
static int tc_fast_free(void *state, void *ptr, kalloc_layout_t old)
{
	(void)state;
	release(ptr, old); /* keeps errno as the library's free does */
	return 1;
}

static size_t tc_usable_size(void *state, const void *ptr)
{
	(void)state;
	return tc.malloc_size((void *)ptr);
}

static int tc_stats(void *state, kalloc_stats_fn fn, void *ctx)
{
	(void)state;
	static const char *const props[] = {
		"generic.current_allocated_bytes", "generic.heap_size",
		"tcmalloc.pageheap_free_bytes", "tcmalloc.pageheap_unmapped_bytes",
		"tcmalloc.central_cache_free_bytes",
		"tcmalloc.thread_cache_free_bytes",
	};
	for (size_t i = 0; tc.property && i < sizeof(props) / sizeof(props[0]);
	     i++) {
		size_t v;
		if (tc.property(props[i], &v))
			fn(ctx, "tcmalloc", strchr(props[i], '.') + 1, v);
	}
	return 0;
}

static const kalloc_plugin_ops_t ops = {
	.init = tc_init,
	.fini = tc_fini,
	.realloc = tc_realloc_entry,
	.usable_size = tc_usable_size,
	.stats = tc_stats,
};

/*
 * The malloc entries: tc_malloc, tc_free and tc_memalign, with requests
 * under 16 bytes raised to 16 (its 8-byte class is 8-aligned), when every
 * larger class is a multiple of 16 (plain_align; 0 when the host replaced
 * tcmalloc); above PTRDIFF_MAX, ENOMEM here.
 */
static void *tc_malloc16(size_t size)
{
	if (size > PTRDIFF_MAX)
		return kalloc_malloc_too_big();
	return tc.malloc(size < 16 ? 16 : size);
}

static int tc_free1(void *ptr)
{
	tc.free(ptr);
	return 1;
}

/* posix_memalign's block: tc_memalign, without the usable length the fast
 * alloc looks up (tc_nallocx, a third of the pair's cost). */
static void *tc_aligned(size_t align, size_t size)
{
	if (size > PTRDIFF_MAX)
		return kalloc_malloc_too_big();
	void *p = tc.memalign(align, size);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

static int malloc_entries(void *state, kalloc_malloc_t *out)
{
	(void)state;
	if (tc.plain_align < 16)
		return KALLOC_ENOTSUP;
	*out = (kalloc_malloc_t){ tc_malloc16, tc_free1, tc_aligned,
				  tc.free };
	return KALLOC_OK;
}

static const kalloc_plugin_fast_t fast = {
	.alloc = tc_fast_alloc,
	.free = tc_fast_free,
};

KALLOC_PLUGIN_EXPORT const kalloc_plugin_t kalloc_plugin = {
	KALLOC_PLUGIN_HEADER,
	.name = "tcmalloc",
	.version = version,
	.description = "gperftools tcmalloc (tc_malloc, tc_memalign, tc_free_sized)",
	.flags = KALLOC_ZERO,
	.max_align = (size_t)1 << 30,
	.max_size = PTRDIFF_MAX,
	.ops = &ops,
	.fast = &fast,
	.malloc_entries = malloc_entries,
};

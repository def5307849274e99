/*
 * The memory tools a program may run under, valgrind's memcheck and
 * AddressSanitizer, and what a backend that carves blocks out of its own
 * mappings (slab, page) tells them through host->tools(), so that they see
 * each block as the program does: a heap block of its requested size, the
 * rest of its slot and every freed block off limits.  KALLOC_TOOLS=0 turns
 * it off.
 *
 * memcheck is found by a memcheck-only client request (other valgrind
 * tools, callgrind counting instructions, leave it unanswered); ASan by
 * its manual-poisoning entry points, weak here, so they are NULL in a
 * program without ASan.  Under ASan a misuse is reported as a
 * use-after-poison at the block's address; ASan cannot know where a block
 * of ours came from, so under ASan each record keeps the stack of its
 * allocation (and the last freed blocks those of their free too), and a
 * report callback adds a description of the block to ASan's report.
 *
 * The requested sizes live in a table of this file (a backend need keep
 * none), no-access to memcheck except under its lock so that the leak
 * check does not count its records as pointers.  Nothing here runs
 * unless a tool does: backends test the table pointer they got once.
 */
#include "internal.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HAVE_MEMCHECK 1
#endif
#endif

void __asan_poison_memory_region(void const volatile *addr, size_t size)
	__attribute__((weak));
void __asan_unpoison_memory_region(void const volatile *addr, size_t size)
	__attribute__((weak));
void __asan_set_error_report_callback(void (*callback)(const char *))
	__attribute__((weak));
void *__asan_get_report_address(void) __attribute__((weak));
void __sanitizer_symbolize_pc(void *pc, const char *fmt, char *out,
			      size_t out_size) __attribute__((weak));

enum { OFF, MEMCHECK, ASAN };
static int mode;

static void poison(const void *p, size_t len)
{
	if (!len)
		return;
#ifdef HAVE_MEMCHECK
	if (mode == MEMCHECK) {
		VALGRIND_MAKE_MEM_NOACCESS(p, len);
		return;
	}
#endif
	__asan_poison_memory_region(p, len);
}

static void unpoison(const void *p, size_t len)
{
	if (!len)
		return;
#ifdef HAVE_MEMCHECK
	if (mode == MEMCHECK) {
		VALGRIND_MAKE_MEM_DEFINED(p, len);
		return;
	}
#endif
	__asan_unpoison_memory_region(p, len);
}

/* ---- requested sizes: open addressing, backward-shift deletion --------- */

/* A call stack, innermost first (ASan mode; else unused). */
#define SITE_FRAMES 12
struct site {
	void *pc[SITE_FRAMES];
};

struct rec {
	const void *p; /* NULL: empty */
	size_t size;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec *tab;
/* ASan mode: sites[i] is the allocation stack of tab[i]'s block (a table
 * of its own, so memcheck's lock-time view change stays small) */
static struct site *sites;
static size_t cap, count; /* cap a power of two; count <= cap / 2 */

static size_t home(const void *p)
{
	return (size_t)((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull & (cap - 1);
}

/* The slot of p, or the empty slot where it would go; lock held. */
static size_t find(const void *p)
{
	size_t i = home(p);
	while (tab[i].p && tab[i].p != p)
		i = (i + 1) & (cap - 1);
	return i;
}

/* Doubles the table (or makes it); lock held, table open. */
static bool grow(void)
{
	size_t ncap = cap ? cap * 2 : 4096;
	struct rec *n = mmap(NULL, ncap * sizeof(*n), PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (n == MAP_FAILED)
		return false;
	struct site *ns = NULL;
	if (mode == ASAN) {
		ns = mmap(NULL, ncap * sizeof(*ns), PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (ns == MAP_FAILED) {
			munmap(n, ncap * sizeof(*n));
			return false;
		}
	}
	struct rec *old = tab;
	struct site *old_sites = sites;
	size_t ocap = cap;
	tab = n;
	sites = ns;
	cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		if (!old[i].p)
			continue;
		size_t j = find(old[i].p);
		tab[j] = old[i];
		if (sites)
			sites[j] = old_sites[i];
	}
	if (old)
		munmap(old, ocap * sizeof(*old));
	if (old_sites)
		munmap(old_sites, ocap * sizeof(*old_sites));
	return true;
}

/* Depth of NOWAIT calls of this thread holding `lock` (nowait_enter). */
static _Thread_local unsigned nowait_depth;

static void table_open(void)
{
	if (nowait_depth)
		return; /* held for the whole NOWAIT call */
	pthread_mutex_lock(&lock);
	if (tab && mode == MEMCHECK)
		unpoison(tab, cap * sizeof(*tab));
}

static void table_close(void)
{
	if (nowait_depth)
		return;
	if (tab && mode == MEMCHECK)
		poison(tab, cap * sizeof(*tab));
	pthread_mutex_unlock(&lock);
}

static void capture(struct site *st);
static void remember_freed(const struct rec *r, const struct site *alloc);

static void record(const void *p, size_t size)
{
	struct site st = { { 0 } };
	if (mode == ASAN && !nowait_depth)
		capture(&st);
	table_open();
	if ((count + 1) * 2 > cap && !grow()) {
		table_close();
		return; /* no memory: the block is known by its slot size */
	}
	size_t i = find(p);
	count += !tab[i].p;
	tab[i] = (struct rec){ p, size };
	if (sites)
		sites[i] = st;
	table_close();
}

/* Removes p's record; its size, or 0 if there was none. */
static size_t forget(const void *p)
{
	table_open();
	size_t size = 0;
	size_t i = tab ? find(p) : 0;
	if (tab && tab[i].p) {
		size = tab[i].size;
		if (sites)
			remember_freed(&tab[i], &sites[i]);
		count--;
		/* shift back the entries that probed past i */
		for (size_t j = (i + 1) & (cap - 1); tab[j].p;
		     j = (j + 1) & (cap - 1)) {
			size_t h = home(tab[j].p);
			if ((j > i && (h <= i || h > j)) ||
			    (j < i && h <= i && h > j)) {
				tab[i] = tab[j];
				if (sites)
					sites[i] = sites[j];
				i = j;
			}
		}
		tab[i] = (struct rec){ NULL, 0 };
	}
	table_close();
	return size;
}

/* ---- ASan: where a block came from ------------------------------------- */

/* The last blocks freed, with both stacks: a use after free names them. */
#define FREED_KEPT 1024
struct freed {
	const void *p;
	size_t size;
	struct site alloc, free;
};
static struct freed *freed_ring; /* FREED_KEPT entries, mapped at detect */
static size_t freed_next;

static void capture(struct site *st)
{
	void *pc[SITE_FRAMES + 2];
	int n = backtrace(pc, SITE_FRAMES + 2);
	/* skip capture() and its caller in this file */
	for (int i = 2; i < n; i++)
		st->pc[i - 2] = pc[i];
}

/* Lock held (forget). */
static void remember_freed(const struct rec *r, const struct site *alloc)
{
	if (!freed_ring)
		return;
	struct freed *f = &freed_ring[freed_next++ % FREED_KEPT];
	f->p = r->p;
	f->size = r->size;
	f->alloc = *alloc;
	memset(&f->free, 0, sizeof(f->free));
	if (!nowait_depth)
		capture(&f->free);
}

static void say(const char *text)
{
	ssize_t r = write(STDERR_FILENO, text, strlen(text));
	(void)r;
}

/* The frames of st from the program's own code on (libkalloc's and the
 * plugins' frames skipped), symbolized by ASan as its reports are. */
static void say_stack(const struct site *st)
{
	int from = 0;
	for (int i = 0; i < SITE_FRAMES && st->pc[i]; i++) {
		Dl_info info;
		if (dladdr(st->pc[i], &info) && info.dli_fname &&
		    (strstr(info.dli_fname, "libkalloc") ||
		     strstr(info.dli_fname, "/kalloc-")))
			from = i + 1;
	}
	if (from >= SITE_FRAMES || !st->pc[from])
		from = 0; /* all ours: show them rather than nothing */
	for (int i = from, k = 0; i < SITE_FRAMES && st->pc[i]; i++, k++) {
		char sym[512] = "";
		/* a return address: the call is the byte before */
		__sanitizer_symbolize_pc((char *)st->pc[i] - 1, "%F %L", sym,
					 sizeof(sym));
		char line[640];
		snprintf(line, sizeof(line), "    #%d %p %s\n", k, st->pc[i],
			 sym[0] ? sym : "");
		say(line);
	}
}

/*
 * Called by ASan with its report, before the process dies.  If the bad
 * address is in or just past a block of ours, or in one freed lately,
 * says which and where it was allocated (and freed).  The lock is only
 * tried: the program is dying, perhaps inside our own code.
 */
static void asan_report(const char *report)
{
	(void)report;
	const char *a = __asan_get_report_address();
	if (!a)
		return;
	bool locked = pthread_mutex_trylock(&lock) == 0;
	const struct rec *best = NULL;
	const struct site *best_site = NULL;
	for (size_t i = 0; tab && sites && i < cap; i++) {
		const char *p = tab[i].p;
		if (p && p <= a && (size_t)(a - p) < tab[i].size + 4096 &&
		    (!best || p > (const char *)best->p)) {
			best = &tab[i];
			best_site = &sites[i];
		}
	}
	const struct freed *fr = NULL;
	for (size_t k = 0; freed_ring && k < FREED_KEPT; k++) {
		/* newest first */
		const struct freed *f =
			&freed_ring[(freed_next - 1 - k) % FREED_KEPT];
		const char *p = f->p;
		if (p && p <= a && (size_t)(a - p) < (f->size ? f->size : 1)) {
			fr = f;
			break;
		}
	}
	char line[256];
	if (best && (size_t)(a - (const char *)best->p) >= best->size && fr)
		best = NULL; /* past a live block, but inside a freed one */
	if (best) {
		size_t off = (size_t)(a - (const char *)best->p);
		if (off < best->size)
			snprintf(line, sizeof(line), "kalloc: %p is %zu bytes "
				 "inside the %zu-byte kalloc block %p, "
				 "allocated at:\n", (const void *)a, off,
				 best->size, best->p);
		else
			snprintf(line, sizeof(line), "kalloc: %p is %zu bytes "
				 "after the %zu-byte kalloc block %p "
				 "(heap-buffer-overflow), allocated at:\n",
				 (const void *)a, off - best->size, best->size,
				 best->p);
		say(line);
		say_stack(best_site);
	} else if (fr) {
		snprintf(line, sizeof(line), "kalloc: %p is %zu bytes inside "
			 "the %zu-byte kalloc block %p, freed "
			 "(heap-use-after-free) at:\n", (const void *)a,
			 (size_t)(a - (const char *)fr->p), fr->size, fr->p);
		say(line);
		say_stack(&fr->free);
		say("  previously allocated at:\n");
		say_stack(&fr->alloc);
	}
	if (locked)
		pthread_mutex_unlock(&lock);
}

/* ---- the host's entries ------------------------------------------------ */

static size_t tool_size(const void *p)
{
	table_open();
	size_t i = tab ? find(p) : 0;
	size_t size = tab && tab[i].p ? tab[i].size : 0;
	table_close();
	return size;
}

static void tool_alloc(void *p, size_t size, size_t usable, int zeroed)
{
#ifdef HAVE_MEMCHECK
	if (mode == MEMCHECK)
		VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zeroed);
	else
#endif
		unpoison(p, size);
	(void)zeroed;
	if (usable > size)
		poison((char *)p + size, usable - size);
	record(p, size);
}

/*
 * A free of p, which is no live block (the backend reports it and aborts
 * next): memcheck is handed the free, and reports it as an invalid free
 * with the block's allocation and free stacks if it knew the block; under
 * ASan, kalloc says where a block freed lately at p was freed and made.
 */
static void bad_free(const void *p)
{
#ifdef HAVE_MEMCHECK
	if (mode == MEMCHECK) {
		VALGRIND_FREELIKE_BLOCK(p, 0);
		return;
	}
#endif
	if (mode != ASAN || !freed_ring)
		return;
	bool locked = pthread_mutex_trylock(&lock) == 0;
	for (size_t k = 0; k < FREED_KEPT; k++) {
		const struct freed *f = &freed_ring[(freed_next - 1 - k) % FREED_KEPT];
		if (f->p != p)
			continue;
		char line[160];
		snprintf(line, sizeof(line), "kalloc: %p: a second free of the "
			 "%zu-byte kalloc block (double-free); freed at:\n", p,
			 f->size);
		say(line);
		say_stack(&f->free);
		say("  previously allocated at:\n");
		say_stack(&f->alloc);
		break;
	}
	if (locked)
		pthread_mutex_unlock(&lock);
}

static size_t tool_free(void *p)
{
	size_t size = forget(p);
	if (!size) {
		bad_free(p);
		return 0;
	}
#ifdef HAVE_MEMCHECK
	if (mode == MEMCHECK) {
		VALGRIND_FREELIKE_BLOCK(p, 0);
		return size;
	}
#endif
	poison(p, size);
	return size;
}

static void tool_resized(void *old, size_t old_usable, void *p, size_t size,
			 size_t usable, int zeroed)
{
	size_t old_req = forget(old);
	size_t kept = old_req < size ? old_req : size;
#ifdef HAVE_MEMCHECK
	if (mode == MEMCHECK) {
		if (p == old) {
			if (old_usable > old_req)
				poison((char *)p + old_req, old_usable - old_req);
			VALGRIND_RESIZEINPLACE_BLOCK(p, old_req, size, 0);
		} else {
			VALGRIND_FREELIKE_BLOCK(old, 0);
			VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 0);
			/* carried over: counted as initialised */
			VALGRIND_MAKE_MEM_DEFINED(p, kept);
		}
		if (zeroed && size > kept)
			VALGRIND_MAKE_MEM_DEFINED((char *)p + kept, size - kept);
	} else
#endif
	{
		/* a block that moved left nothing: the backend reset the old
		 * range when it freed or unmapped it */
		unpoison(p, size);
	}
	(void)zeroed;
	if (usable > size)
		poison((char *)p + size, usable - size);
	record(p, size);
}

static const kalloc_tools_t tools = {
	.alloc = tool_alloc,
	.free = tool_free,
	.size = tool_size,
	.resized = tool_resized,
	.open = unpoison,
	.hide = poison,
};

/* The child unlocks too: a plain mutex checks no owner. */
void kalloc__tools_atfork(int phase)
{
	if (phase == 0)
		pthread_mutex_lock(&lock);
	else
		pthread_mutex_unlock(&lock);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void detect(void)
{
#ifdef KALLOC_NO_TOOLS /* meson -Dmemtools=false: a build without them */
	return;
#endif
#ifdef HAVE_MEMCHECK
	char byte = 0, vbits;
	if (RUNNING_ON_VALGRIND && VALGRIND_GET_VBITS(&byte, &vbits, 1) == 1) {
		mode = MEMCHECK;
		return;
	}
#endif
	if (!__asan_poison_memory_region || !__asan_unpoison_memory_region)
		return;
	mode = ASAN;
	if (!__asan_set_error_report_callback || !__asan_get_report_address ||
	    !__sanitizer_symbolize_pc)
		return;
	void *ring = mmap(NULL, FREED_KEPT * sizeof(struct freed),
			  PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	if (ring == MAP_FAILED)
		return;
	freed_ring = ring;
	struct site warm; /* backtrace loads its unwinder now, under no lock */
	capture(&warm);
	__asan_set_error_report_callback(asan_report);
}

/*
 * A NOWAIT or ATOMIC call under a tool must not wait for the table's lock
 * (another thread may hold it, even across the mmap of a grow) nor grow
 * the table.  So the call takes the lock once, with a trylock, for its
 * whole length, and only when the table has room for the call's record
 * (a realloc forgets one and records one); else the call is KALLOC_EAGAIN.
 * Lock order: the table's, then the backend's, which NOWAIT only tries.
 */
bool kalloc__tools_nowait_enter(void)
{
	if (!kalloc__tools())
		return true;
	if (nowait_depth) { /* kv's inner call to slab */
		nowait_depth++;
		return true;
	}
	if (pthread_mutex_trylock(&lock))
		return false;
	if (!tab || (count + 2) * 2 > cap) {
		pthread_mutex_unlock(&lock);
		return false;
	}
	if (mode == MEMCHECK)
		unpoison(tab, cap * sizeof(*tab));
	nowait_depth = 1;
	return true;
}

void kalloc__tools_nowait_exit(void)
{
	if (!nowait_depth || --nowait_depth)
		return;
	if (mode == MEMCHECK)
		poison(tab, cap * sizeof(*tab));
	pthread_mutex_unlock(&lock);
}

const kalloc_tools_t *kalloc__tools(void)
{
	pthread_once(&once, detect);
	if (kalloc__option_long("KALLOC_TOOLS", 1) == 0)
		return NULL;
	return mode == OFF ? NULL : &tools;
}

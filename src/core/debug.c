/*
 * Debug modes after the kernel's slab_debug letters, for every backend
 * (KALLOC_DEBUG=FZPU or the open option "debug=FZPU"), and the leak report
 * (KALLOC_LEAKS=1).
 *
 *   F  sanity checks on free: the pointer must be a live block of this
 *      handle, freed with the size it was allocated with; else report, abort.
 *   Z  a red zone of RED_MIN+ bytes right after the requested size, filled
 *      with RED_BYTE; checked at free and realloc; a change reports, aborts.
 *   P  freed blocks filled with POISON_BYTE and held in a quarantine; a
 *      change found when the block leaves the quarantine (to be reused) or at
 *      exit is reported as a write after free (a warning).
 *   U  reports print the allocating and freeing call sites and thread.
 */
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define RED_BYTE 0xcc    /* the kernel's SLUB_RED_ACTIVE */
#define RED_MIN 16
#define POISON_BYTE 0x6b /* the kernel's POISON_FREE */

unsigned kalloc__debug_parse(const char *letters, bool *ok)
{
	unsigned bits = 0;
	*ok = true;
	for (const char *c = letters; *c; c++) {
		switch (*c) {
		case 'F': case 'f': bits |= DEBUG_F; break;
		case 'Z': case 'z': bits |= DEBUG_Z; break;
		case 'P': case 'p': bits |= DEBUG_P; break;
		case 'U': case 'u': bits |= DEBUG_U; break;
		case '1': bits |= FEAT_DEBUG; break; /* "all", like slab_debug */
		case '0': case '-': break;
		default: *ok = false;
		}
	}
	return bits;
}

/* Bytes to add after the requested size (Z), keeping the alignment. */
size_t kalloc__redzone(kalloc_t *a, size_t align)
{
	if (!(atomic_load_explicit(&a->features, memory_order_relaxed) & DEBUG_Z))
		return 0;
	return align > RED_MIN ? align : RED_MIN;
}

/* ---- reports ---------------------------------------------------------- */

void kalloc__describe_caller(const void *site, char *buf, size_t cap)
{
	Dl_info info;
	if (!site) {
		snprintf(buf, cap, "unknown");
	} else if (dladdr(site, &info) && info.dli_fname) {
		const char *file = strrchr(info.dli_fname, '/');
		file = file ? file + 1 : info.dli_fname;
		if (info.dli_sname)
			snprintf(buf, cap, "%s(%s+0x%tx) [%p]", file, info.dli_sname,
				 (const char *)site - (const char *)info.dli_saddr,
				 site);
		else
			snprintf(buf, cap, "%s+0x%tx [%p]", file,
				 (const char *)site - (const char *)info.dli_fbase,
				 site);
	} else {
		snprintf(buf, cap, "%p", site);
	}
}

void kalloc__report_block(const char *who, const struct kalloc_block *b,
			  const char *what, const void *caller)
{
	char site[256];
	kalloc__log(who, "%s: block %p of %zu bytes (align %zu)", what, b->ptr,
		    b->size, b->align);
	if (!(atomic_load(&b->a->features) & DEBUG_U))
		return;
	kalloc__describe_caller(b->site, site, sizeof(site));
	kalloc__log(who, "  allocated by thread %d at %s", b->tid, site);
	if (b->free_site) {
		kalloc__describe_caller(b->free_site, site, sizeof(site));
		kalloc__log(who, "  freed at %s", site);
	}
	if (caller) {
		kalloc__describe_caller(caller, site, sizeof(site));
		kalloc__log(who, "  found by the call at %s", site);
	}
}

/* ---- red zones and poison --------------------------------------------- */

void kalloc__debug_fill(kalloc_t *a, struct kalloc_block *b)
{
	if (atomic_load(&a->features) & DEBUG_Z)
		memset((char *)b->ptr + b->size, RED_BYTE, b->len - b->size);
}

/* Offset of the first byte in [from, to) of p that is not `byte`, or to. */
static size_t first_changed(const void *p, size_t from, size_t to, int byte)
{
	const unsigned char *c = p;
	while (from < to && c[from] == byte)
		from++;
	return from;
}

void kalloc__debug_check(kalloc_t *a, const struct kalloc_block *b,
			 const void *caller, const char *op)
{
	if (!(atomic_load(&a->features) & DEBUG_Z))
		return;
	size_t at = first_changed(b->ptr, b->size, b->len, RED_BYTE);
	if (at == b->len)
		return;
	char what[160];
	snprintf(what, sizeof(what),
		 "out-of-bounds write found at %s: red zone byte at offset %zu "
		 "is 0x%02x, not 0x%02x", op, at,
		 ((const unsigned char *)b->ptr)[at], RED_BYTE);
	kalloc__report_block(a->p->name, b, what, caller);
	kalloc__corruption(a->p->name, b->ptr, "red zone overwritten after a "
			   "%zu-byte block", b->size);
}

/*
 * The quarantine: a ring of freed, poisoned blocks in mmap'd memory.
 * Invariant: every entry's bytes [0, len) are POISON_BYTE unless the program
 * wrote after free; an entry's memory still belongs to its backend.
 */
#define Q_SLOTS 1024
#define Q_BYTES ((size_t)32 << 20)

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kalloc_block *q_ring;
static size_t q_head, q_count, q_bytes;

static void q_check(const struct kalloc_block *b, const char *when)
{
	size_t at = first_changed(b->ptr, 0, b->len, POISON_BYTE);
	if (at == b->len)
		return;
	char what[160];
	snprintf(what, sizeof(what),
		 "write after free found %s: byte at offset %zu is 0x%02x, not "
		 "0x%02x", when, at, ((const unsigned char *)b->ptr)[at],
		 POISON_BYTE);
	kalloc__report_block(b->a->p->name, b, what, NULL);
}

/* Gives an evicted block back to its backend. */
static void q_release(const struct kalloc_block *b)
{
	q_check(b, "when its memory was reused");
	kalloc_buf_t ignored;
	b->a->ops->realloc(b->a->state, b->ptr, KALLOC_LAYOUT(0, 1),
		      KALLOC_LAYOUT(b->size + kalloc__redzone(b->a, b->align),
				    b->align), 0, &ignored);
}

bool kalloc__debug_quarantine(kalloc_t *a, struct kalloc_block *b)
{
	if (!(atomic_load(&a->features) & DEBUG_P) || b->len > Q_BYTES / 4)
		return false;
	memset(b->ptr, POISON_BYTE, b->len);
	struct kalloc_block evicted[8];
	size_t n_evicted = 0;
	pthread_mutex_lock(&q_lock);
	if (!q_ring) {
		void *m = mmap(NULL, Q_SLOTS * sizeof(*q_ring),
			       PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		q_ring = m == MAP_FAILED ? NULL : m;
	}
	if (!q_ring) {
		pthread_mutex_unlock(&q_lock);
		return false;
	}
	while ((q_count == Q_SLOTS || q_bytes + b->len > Q_BYTES) &&
	       n_evicted < 8) {
		evicted[n_evicted++] = q_ring[q_head];
		q_bytes -= q_ring[q_head].len;
		q_head = (q_head + 1) % Q_SLOTS;
		q_count--;
	}
	bool kept = q_count < Q_SLOTS && q_bytes + b->len <= Q_BYTES;
	if (kept) {
		q_ring[(q_head + q_count) % Q_SLOTS] = *b;
		q_count++;
		q_bytes += b->len;
	}
	pthread_mutex_unlock(&q_lock);
	for (size_t i = 0; i < n_evicted; i++)
		q_release(&evicted[i]);
	return kept;
}

/*
 * A handle is closing: give its quarantined blocks back to it now, while its
 * plugin can still take them.  Invariant after: no ring entry names `a`.
 */
void kalloc__debug_forget(kalloc_t *a)
{
	for (;;) {
		struct kalloc_block batch[16];
		size_t n = 0;
		pthread_mutex_lock(&q_lock);
		size_t kept = 0;
		for (size_t i = 0; i < q_count; i++) {
			struct kalloc_block *b = &q_ring[(q_head + i) % Q_SLOTS];
			if (b->a == a && n < 16) {
				batch[n++] = *b;
				q_bytes -= b->len;
			} else {
				q_ring[(q_head + kept++) % Q_SLOTS] = *b;
			}
		}
		q_count = kept;
		pthread_mutex_unlock(&q_lock);
		if (!n)
			return;
		for (size_t i = 0; i < n; i++)
			q_release(&batch[i]);
	}
}

bool kalloc__debug_is_quarantined(const void *ptr, struct kalloc_block *out)
{
	bool found = false;
	pthread_mutex_lock(&q_lock);
	for (size_t i = 0; i < q_count && !found; i++) {
		const struct kalloc_block *b = &q_ring[(q_head + i) % Q_SLOTS];
		if (b->ptr == ptr) {
			*out = *b;
			found = true;
		}
	}
	pthread_mutex_unlock(&q_lock);
	return found;
}

/* ---- at exit: quarantine check and leak report ------------------------ */

struct leaks {
	struct kalloc_block *v;
	size_t n, cap, bytes;
};

static void collect(const struct kalloc_block *b, void *ctx)
{
	struct leaks *l = ctx;
	if (!(atomic_load(&b->a->features) & FEAT_LEAKS))
		return;
	l->bytes += b->size;
	if (l->n < l->cap)
		l->v[l->n++] = *b;
}

/* Largest first; shell sort, because qsort may call malloc. */
static void sort_by_size(struct kalloc_block *v, size_t n)
{
	for (size_t gap = n / 2; gap; gap /= 2)
		for (size_t i = gap; i < n; i++) {
			struct kalloc_block t = v[i];
			size_t j = i;
			for (; j >= gap && v[j - gap].size < t.size; j -= gap)
				v[j] = v[j - gap];
			v[j] = t;
		}
}

#define LEAK_LINES 50

static void leak_report(void)
{
	struct leaks l = { .cap = 1 << 16 };
	l.v = mmap(NULL, l.cap * sizeof(*l.v), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l.v == MAP_FAILED)
		return;
	kalloc__block_foreach(collect, &l);
	sort_by_size(l.v, l.n);
	kalloc__log(NULL, "leak report: %zu blocks, %zu bytes still allocated",
		    l.n, l.bytes);
	for (size_t i = 0; i < l.n && i < LEAK_LINES; i++) {
		char site[256];
		kalloc__describe_caller(l.v[i].site, site, sizeof(site));
		kalloc__log(NULL, "  %zu bytes at %p (%s), allocated by thread "
			    "%d at %s", l.v[i].size, l.v[i].ptr, l.v[i].a->p->name,
			    l.v[i].tid, site);
	}
	if (l.n > LEAK_LINES)
		kalloc__log(NULL, "  ... and %zu smaller blocks", l.n - LEAK_LINES);
	munmap(l.v, l.cap * sizeof(*l.v));
}

void kalloc__debug_at_exit(bool leaks)
{
	pthread_mutex_lock(&q_lock);
	for (size_t i = 0; i < q_count; i++)
		q_check(&q_ring[(q_head + i) % Q_SLOTS], "at exit");
	pthread_mutex_unlock(&q_lock);
	if (leaks)
		leak_report();
}

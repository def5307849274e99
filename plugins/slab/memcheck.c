/*
 * slab's blocks as valgrind's memcheck sees them.
 *
 * Under valgrind (slab_vg, read once at init) every block is a heap block
 * of its requested size (MALLOCLIKE), the rest of its class slot is
 * no-access, and a freed block is no-access (FREELIKE).  slab reaches into
 * free blocks for their links only between slab_vg_open and slab_vg_hide.
 * The requested sizes live in a table of this file (slab keeps none
 * itself), no-access too except under its lock, so that memcheck's leak
 * check does not count its records as pointers.
 *
 * To keep this off the fast paths, threads get no heap of their own under
 * valgrind (heap.c): every allocation takes the shared fallback heap and
 * every free the remote path, where the hooks are.  Outside valgrind none
 * of this runs.
 */
#include "slab.h"

#include <sys/mman.h>

bool slab_vg;

#ifdef HAVE_VALGRIND_H
#include <valgrind/memcheck.h>

/* Under memcheck, not merely valgrind: other tools (callgrind counting
 * slab's instructions) leave memcheck's requests unanswered (0). */
bool slab_vg_running(void)
{
	char byte = 0, vbits;
	return RUNNING_ON_VALGRIND && VALGRIND_GET_VBITS(&byte, &vbits, 1) == 1;
}

void slab_vg_open(const void *p, size_t len)
{
	VALGRIND_MAKE_MEM_DEFINED(p, len);
}

void slab_vg_hide(const void *p, size_t len)
{
	VALGRIND_MAKE_MEM_NOACCESS(p, len);
}

/* ---- requested sizes: open addressing, backward-shift deletion --------- */

struct rec {
	const void *p; /* NULL: empty */
	size_t size;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct rec *tab;
static size_t cap, count; /* cap a power of two; count <= cap / 2 */

static size_t home(const void *p)
{
	return (size_t)((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull & (cap - 1);
}

/* The slot of p, or of the empty slot where it would go; lock held. */
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
	struct rec *old = tab;
	size_t ocap = cap;
	tab = n;
	cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].p)
			tab[find(old[i].p)] = old[i];
	if (old)
		munmap(old, ocap * sizeof(*old));
	return true;
}

static void table_open(void)
{
	pthread_mutex_lock(&lock);
	if (tab)
		slab_vg_open(tab, cap * sizeof(*tab));
}

static void table_close(void)
{
	if (tab)
		slab_vg_hide(tab, cap * sizeof(*tab));
	pthread_mutex_unlock(&lock);
}

static void record(const void *p, size_t size)
{
	table_open();
	if ((count + 1) * 2 > cap && !grow()) {
		table_close();
		return; /* no memory: the block is known by its slot size */
	}
	size_t i = find(p);
	count += !tab[i].p;
	tab[i] = (struct rec){ p, size };
	table_close();
}

/* Removes p's record; its size, or 0 if there was none. */
static size_t forget(const void *p)
{
	table_open();
	size_t size = 0;
	if (tab && tab[find(p)].p) {
		size_t i = find(p);
		size = tab[i].size;
		count--;
		/* shift back the entries that probed past i */
		for (size_t j = (i + 1) & (cap - 1); tab[j].p; j = (j + 1) & (cap - 1)) {
			size_t h = home(tab[j].p);
			if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
				tab[i] = tab[j];
				i = j;
			}
		}
		tab[i] = (struct rec){ NULL, 0 };
	}
	table_close();
	return size;
}

size_t slab_vg_requested(const void *p)
{
	table_open();
	size_t size = tab && tab[find(p)].p ? tab[find(p)].size : 0;
	table_close();
	return size;
}

/* ---- blocks ------------------------------------------------------------ */

void slab_vg_alloc(void *p, size_t size, size_t usable, bool zeroed)
{
	VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zeroed);
	if (usable > size)
		slab_vg_hide((char *)p + size, usable - size);
	record(p, size);
}

bool slab_vg_free(void *p)
{
	if (!forget(p))
		return false;
	VALGRIND_FREELIKE_BLOCK(p, 0);
	return true;
}

void slab_vg_resized(void *old, size_t old_req, size_t old_usable, void *p,
		     size_t size, size_t usable, bool zeroed)
{
	size_t kept = old_req < size ? old_req : size;
	if (p == old) {
		if (old_usable > old_req)
			slab_vg_hide((char *)p + old_req, old_usable - old_req);
		VALGRIND_RESIZEINPLACE_BLOCK(p, old_req, size, 0);
		record(p, size);
	} else {
		forget(old);
		VALGRIND_FREELIKE_BLOCK(old, 0);
		VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 0);
		VALGRIND_MAKE_MEM_DEFINED(p, kept);
		record(p, size);
	}
	if (zeroed && size > kept)
		VALGRIND_MAKE_MEM_DEFINED((char *)p + kept, size - kept);
	if (usable > size)
		slab_vg_hide((char *)p + size, usable - size);
}
#else
bool slab_vg_running(void)
{
	return false;
}
#endif

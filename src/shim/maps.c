/*
 * Blocks the shim maps itself, each in its own mapping: alignments above the
 * backend's max_align (so every alignment up to 1 GiB and beyond works on
 * every backend), and bootstrap requests once the arena is full.
 *
 * Invariants: every block starts on a page boundary and is exactly its
 * mapping [ptr, ptr + len); the table holds every live block, keyed by ptr,
 * in open addressing with linear probing and no tombstones (deletion shifts
 * the following entries back); shim__maps_live counts its entries.  The
 * table is fixed (MAP_SLOTS entries, 3/4 usable): past that the allocation
 * fails with ENOMEM rather than growing, since such blocks are rare.
 */
#include "shim.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAP_SLOTS_LOG2 12
#define MAP_SLOTS ((size_t)1 << MAP_SLOTS_LOG2)
#define MAP_MAX_LIVE (MAP_SLOTS / 4 * 3)

struct map {
	uintptr_t ptr; /* 0: empty slot */
	size_t len;    /* bytes mapped, a multiple of the page size */
};

static struct map table[MAP_SLOTS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
SHIM_HIDDEN atomic_size_t shim__maps_live;

static size_t home(uintptr_t p)
{
	return (size_t)(((uint64_t)p >> 12) * 0x9E3779B97F4A7C15ull >>
			(64 - MAP_SLOTS_LOG2));
}

/* Slot of p, or MAP_SLOTS.  Caller holds table_lock. */
static size_t find(uintptr_t p)
{
	for (size_t i = home(p);; i = (i + 1) & (MAP_SLOTS - 1)) {
		if (table[i].ptr == p)
			return i;
		if (!table[i].ptr)
			return MAP_SLOTS;
	}
}

static bool insert(uintptr_t p, size_t len)
{
	bool ok = false;
	pthread_mutex_lock(&table_lock);
	if (atomic_load_explicit(&shim__maps_live, memory_order_relaxed) <
	    MAP_MAX_LIVE) {
		size_t i = home(p);
		while (table[i].ptr)
			i = (i + 1) & (MAP_SLOTS - 1);
		table[i] = (struct map){ p, len };
		atomic_fetch_add(&shim__maps_live, 1);
		ok = true;
	}
	pthread_mutex_unlock(&table_lock);
	return ok;
}

/* Empties slot i, moving back the entries whose probe passed through it. */
static void remove_slot(size_t i)
{
	size_t j = i;
	for (;;) {
		j = (j + 1) & (MAP_SLOTS - 1);
		if (!table[j].ptr)
			break;
		size_t k = home(table[j].ptr);
		/* entry j may move to i unless its home lies in (i, j] */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (stays)
			continue;
		table[i] = table[j];
		i = j;
	}
	table[i].ptr = 0;
	atomic_fetch_sub(&shim__maps_live, 1);
}

void *shim_map_alloc(size_t size, size_t align)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	if (align < page)
		align = page;
	if (size > SIZE_MAX - page || align > SIZE_MAX / 2)
		return NULL;
	size_t len = (size + page - 1) & ~(page - 1);
	if (len == 0)
		len = page;
	size_t span;
	if (__builtin_add_overflow(len, align - page, &span))
		return NULL;
	/* Reserve without committing, keep the aligned part, unmap the rest. */
	char *base = mmap(NULL, span, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	uintptr_t at = ((uintptr_t)base + align - 1) & ~(uintptr_t)(align - 1);
	char *p = (char *)at;
	if (p > base)
		munmap(base, (size_t)(p - base));
	if (base + span > p + len)
		munmap(p + len, (size_t)(base + span - (p + len)));
	if (mprotect(p, len, PROT_READ | PROT_WRITE) != 0 ||
	    !insert(at, len)) {
		munmap(p, len);
		return NULL;
	}
	return p;
}

bool shim_map_free(void *p)
{
	size_t len = 0;
	pthread_mutex_lock(&table_lock);
	size_t i = find((uintptr_t)p);
	if (i < MAP_SLOTS) {
		len = table[i].len;
		remove_slot(i);
	}
	pthread_mutex_unlock(&table_lock);
	if (!len)
		return false;
	munmap(p, len);
	return true;
}

size_t shim_map_usable(const void *p)
{
	size_t len = 0;
	pthread_mutex_lock(&table_lock);
	size_t i = find((uintptr_t)p);
	if (i < MAP_SLOTS)
		len = table[i].len;
	pthread_mutex_unlock(&table_lock);
	return len;
}

static void lock_table(void)
{
	pthread_mutex_lock(&table_lock);
}

static void unlock_table(void)
{
	pthread_mutex_unlock(&table_lock);
}

void shim_map_atfork(void)
{
	pthread_atfork(lock_table, unlock_table, unlock_table);
}

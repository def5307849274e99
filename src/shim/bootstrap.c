/*
 * The bootstrap arena: memory for the allocations made while the backend is
 * being opened (getenv, opendir, dlopen and dlsym allocate, and so does the
 * core's own loader).  A static bump allocator, so it needs nothing that is
 * not up yet and takes no lock.
 *
 * Invariants: a block is 16 bytes of header (its size) then the payload;
 * blocks are never reused, so the arena's bytes are still the zeros of .bss
 * when handed out; a pointer inside the arena stays recognisable forever
 * (shim_boot_owns), and free ignores it.
 */
#include "shim.h"

struct boot_hdr {
	size_t size; /* bytes asked for */
	size_t pad;  /* keeps the payload 16-aligned */
};

SHIM_HIDDEN _Alignas(4096) unsigned char shim__boot_arena[SHIM_BOOT_SIZE];
static atomic_size_t boot_top; /* offset of the first free byte */

static size_t round16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

void *shim_boot_alloc(size_t size, size_t align)
{
	if (align < SHIM_MALLOC_ALIGN)
		align = SHIM_MALLOC_ALIGN;
	if (size > SHIM_BOOT_SIZE || align > SHIM_BOOT_SIZE)
		return NULL;
	uintptr_t base = (uintptr_t)shim__boot_arena;
	size_t top = atomic_load_explicit(&boot_top, memory_order_relaxed);
	size_t payload, end;
	do {
		/* absolute alignment: the payload address, not its offset */
		uintptr_t at = (base + top + sizeof(struct boot_hdr) + align - 1) &
			       ~(uintptr_t)(align - 1);
		payload = at - base;
		end = payload + round16(size);
		if (end > SHIM_BOOT_SIZE)
			return NULL;
	} while (!atomic_compare_exchange_weak_explicit(&boot_top, &top, end,
							memory_order_relaxed,
							memory_order_relaxed));
	struct boot_hdr *h = (struct boot_hdr *)(shim__boot_arena + payload) - 1;
	h->size = size;
	return shim__boot_arena + payload;
}

size_t shim_boot_usable(const void *p)
{
	const struct boot_hdr *h = (const struct boot_hdr *)p - 1;
	return round16(h->size);
}

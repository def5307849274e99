/*
 * page's blocks as valgrind's memcheck sees them.  Under valgrind, every
 * block is a heap block of its requested size (MALLOCLIKE), freed blocks
 * are no-access (FREELIKE), and the usable length reported is the size
 * asked for, so memcheck reports use after free, overflow past the
 * requested size, reads of uninitialised bytes and leaks, with the
 * allocation and free stacks, with no rebuild.  Outside valgrind none of
 * this runs: the entries test one word (page.c).
 *
 * Content carried across a realloc that moves keeps its definedness only
 * approximately: the kept bytes count as initialised.
 */
#include "memcheck.h"

#ifdef HAVE_VALGRIND_H
#include <valgrind/memcheck.h>

/* Under memcheck, not merely valgrind: other tools leave memcheck's
 * requests unanswered (0). */
bool page_vg_running(void)
{
	char byte = 0, vbits;
	return RUNNING_ON_VALGRIND && VALGRIND_GET_VBITS(&byte, &vbits, 1) == 1;
}

void page_vg_open_tail(void *p, size_t req, size_t usable)
{
	if (usable > req)
		VALGRIND_MAKE_MEM_UNDEFINED((char *)p + req, usable - req);
}

void page_vg_close_tail(void *p, size_t req, size_t usable)
{
	if (usable > req)
		VALGRIND_MAKE_MEM_NOACCESS((char *)p + req, usable - req);
}

void page_vg_hide(void *p, size_t len)
{
	VALGRIND_MAKE_MEM_NOACCESS(p, len);
}

void page_vg_show(void *p, size_t len)
{
	VALGRIND_MAKE_MEM_DEFINED(p, len);
}

void page_vg_alloc(void *p, size_t size, size_t usable, bool zeroed)
{
	VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zeroed);
	page_vg_close_tail(p, size, usable);
}

void page_vg_free(void *p)
{
	VALGRIND_FREELIKE_BLOCK(p, 0);
}

void page_vg_resized(void *old, size_t old_req, size_t old_usable, void *p,
		     size_t size, size_t usable, bool zeroed)
{
	size_t kept = old_req < size ? old_req : size;
	if (p == old) {
		page_vg_close_tail(old, old_req, old_usable);
		VALGRIND_RESIZEINPLACE_BLOCK(p, old_req, size, 0);
	} else {
		VALGRIND_FREELIKE_BLOCK(old, 0);
		VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 0);
		VALGRIND_MAKE_MEM_DEFINED(p, kept);
	}
	if (zeroed && size > kept)
		VALGRIND_MAKE_MEM_DEFINED((char *)p + kept, size - kept);
	page_vg_close_tail(p, size, usable);
}
#else
bool page_vg_running(void)
{
	return false;
}

void page_vg_hide(void *p, size_t len)
{
	(void)p, (void)len;
}

void page_vg_show(void *p, size_t len)
{
	(void)p, (void)len;
}
#endif

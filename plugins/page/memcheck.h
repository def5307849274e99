/* memcheck.c: telling valgrind's memcheck about page's blocks.  Every
 * function but page_vg_running is called only under valgrind. */
#ifndef PAGE_MEMCHECK_H
#define PAGE_MEMCHECK_H

#include <stdbool.h>
#include <stddef.h>

#define HIDDEN_ __attribute__((visibility("hidden")))

HIDDEN_ bool page_vg_running(void);
/* p, of `size` requested bytes in `usable`, is live (zeroed: it reads 0);
 * the rest of usable is no-access. */
HIDDEN_ void page_vg_alloc(void *p, size_t size, size_t usable, bool zeroed);
/* page's own memory that must not count as holding pointers (hide), and
 * back while page reads it (show). */
HIDDEN_ void page_vg_hide(void *p, size_t len);
HIDDEN_ void page_vg_show(void *p, size_t len);
/* p is free: no-access. */
HIDDEN_ void page_vg_free(void *p);
/* The bytes of a live block past its request, made addressable for page's
 * own copies and zeroing during a resize, and closed again. */
HIDDEN_ void page_vg_open_tail(void *p, size_t req, size_t usable);
HIDDEN_ void page_vg_close_tail(void *p, size_t req, size_t usable);
/* old (old_req requested, old_usable long) became p of `size` in
 * `usable`; zeroed: the bytes past the kept content read 0. */
HIDDEN_ void page_vg_resized(void *old, size_t old_req, size_t old_usable,
			     void *p, size_t size, size_t usable, bool zeroed);

#endif

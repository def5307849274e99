/* The growth step behind <kalloc/vec.h>. */
#include "core/internal.h"

#include <kalloc/vec.h>

#define API __attribute__((visibility("default")))

API int kalloc_vec_reserve(kalloc_t *a, void **ptr, size_t *cap, size_t len,
			   size_t additional, size_t elem_size,
			   size_t elem_align, kalloc_flags_t flags)
{
	size_t need;
	if (__builtin_add_overflow(len, additional, &need))
		return kalloc__error(KALLOC_EOVERFLOW,
				     "vector of %zu elements cannot grow by %zu",
				     len, additional);
	if (need <= *cap)
		return KALLOC_OK;
	size_t want = *cap * 2 > need ? *cap * 2 : need;
	if (want < 4)
		want = 4;
	kalloc_layout_t l;
	int err = kalloc_layout_array(want, elem_size, elem_align, &l);
	if (err && want > need) /* doubling overflowed; the exact need may fit */
		err = kalloc_layout_array(want = need, elem_size, elem_align, &l);
	if (err)
		return err;
	kalloc_buf_t b;
	err = kalloc_realloc(a, *ptr, l,
			     KALLOC_LAYOUT(*cap * elem_size, elem_align), flags, &b);
	if (err)
		return err;
	*ptr = b.ptr;
	*cap = elem_size ? b.len / elem_size : SIZE_MAX;
	return KALLOC_OK;
}

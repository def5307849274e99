/* What the files of src/linux/ (the kernel API of <kalloc/linux.h>) share. */
#ifndef KALLOC_KLINUX_H
#define KALLOC_KLINUX_H

#include "../core/internal.h"

#include <kalloc/linux.h>

#define API __attribute__((visibility("default")))

/* CALLER: the call site recorded by debug and leak reports, the user's. */
#define CALLER __builtin_return_address(0)

/* gfp_t -> kalloc flags: no __GFP_DIRECT_RECLAIM means the call must not
 * block (with __GFP_HIGH, it may use a reserve). */
static inline kalloc_flags_t klinux_flags(gfp_t gfp)
{
	kalloc_flags_t f = 0;
	if (gfp & __GFP_ZERO)
		f |= KALLOC_ZERO;
	if (gfp & __GFP_NOWARN)
		f |= KALLOC_NOWARN;
	if (gfp & __GFP_ACCOUNT)
		f |= KALLOC_ACCOUNT;
	if (gfp & __GFP_NOFAIL)
		f |= KALLOC_NOFAIL;
	if (!(gfp & __GFP_DIRECT_RECLAIM))
		f |= (gfp & __GFP_HIGH) ? KALLOC_ATOMIC : KALLOC_NOWAIT;
	return f;
}

#endif

/* <linux/gfp.h> for kernel-style code on libkalloc (gfp_t and the GFP_* masks): the
 * kalloc-linux pkg-config module puts this directory on the include path.
 * Everything is declared in <kalloc/linux.h>. */
#include <kalloc/linux.h>

/* <linux/slab.h> for kernel-style code on libkalloc (kmalloc, kmem_cache): the
 * kalloc-linux pkg-config module puts this directory on the include path.
 * Everything is declared in <kalloc/linux.h>. */
#include <kalloc/linux.h>

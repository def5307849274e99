/* <linux/mempool.h> for kernel-style code on libkalloc (mempool_t): the
 * kalloc-linux pkg-config module puts this directory on the include path.
 * Everything is declared in <kalloc/linux.h>. */
#include <kalloc/linux.h>

/*
 * Kernel-style code that includes only the kernel's own headers, compiled
 * against the installed `kalloc-linux` pkg-config module: caches with
 * constructors, bulk calls, a mempool under 100% injected failure, vmalloc
 * and kfree_rcu.  Prints one line per check; exits 0 when all hold.
 */
#include <linux/mempool.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include <stdio.h>
#include <string.h>

struct inode {
	unsigned long i_ino;
	int i_state;
	struct rcu_head i_rcu;
	char i_name[32];
};

static int constructed;

static void inode_init_once(void *p)
{
	struct inode *inode = p;
	memset(inode, 0, sizeof(*inode));
	inode->i_state = 1;
	constructed++;
}

static int failures;

static void check(int ok, const char *what)
{
	printf("%s - %s\n", ok ? "ok" : "FAIL", what);
	failures += !ok;
}

int main(void)
{
	struct kmem_cache *inode_cachep =
		kmem_cache_create("inode_cache", sizeof(struct inode), 0,
				  SLAB_HWCACHE_ALIGN | SLAB_ACCOUNT, inode_init_once);
	check(inode_cachep != NULL, "kmem_cache_create with a constructor");

	struct inode *a = kmem_cache_alloc(inode_cachep, GFP_KERNEL);
	check(a && a->i_state == 1 && constructed == 1, "object constructed");
	kmem_cache_free(inode_cachep, a);
	struct inode *b = kmem_cache_alloc(inode_cachep, GFP_KERNEL);
	check(b && constructed == 1, "freed object reused without a new ctor call");
	kmem_cache_free(inode_cachep, b);

	void *batch[16];
	check(kmem_cache_alloc_bulk(inode_cachep, GFP_KERNEL, 16, batch) == 16,
	      "kmem_cache_alloc_bulk of 16");
	kmem_cache_free_bulk(inode_cachep, 16, batch);

	mempool_t *pool = mempool_create_slab_pool(4, inode_cachep);
	check(pool != NULL, "mempool_create_slab_pool");
	kalloc_fail_config("probability:100");
	struct inode *r[4];
	int got = 0;
	for (int i = 0; i < 4; i++)
		got += (r[i] = mempool_alloc(pool, GFP_NOIO)) != NULL;
	void *none = mempool_alloc(pool, GFP_NOWAIT);
	kalloc_fail_config("");
	check(got == 4, "mempool_alloc under 100% injected failure");
	check(none == NULL, "GFP_NOWAIT on an empty pool gives NULL");
	for (int i = 0; i < 4; i++)
		mempool_free(r[i], pool);
	mempool_destroy(pool);
	kmem_cache_destroy(inode_cachep);

	char *v = vmalloc(1 << 20);
	check(v != NULL, "vmalloc of 1 MiB");
	vfree(v);

	struct inode *gone = kzalloc(sizeof(*gone), GFP_KERNEL);
	kfree_rcu(gone, i_rcu);
	kalloc_rcu_barrier();
	check(1, "kfree_rcu and the barrier");
	return failures ? 1 : 0;
}

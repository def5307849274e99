/*
 * kalloc/rcu.h - kfree_rcu and friends on liburcu (Debian's liburcu-dev,
 * its default "memb" flavor, the RCU the kernel's own user-space test
 * harness links).  Installed when libkalloc is built with the rcu feature;
 * link with `pkg-config --libs kalloc-rcu` (adds -lurcu).
 *
 *   kfree_rcu(ptr, field)       free ptr after a grace period; field is its
 *   kvfree_rcu(ptr, field)      struct rcu_head member (kept for the
 *                               kernel's layout; the wait does not use it)
 *   kfree_rcu_mightsleep(ptr)   the same for objects with no rcu_head
 *   kvfree_rcu_mightsleep(ptr)
 *   kalloc_rcu_barrier()        returns when every earlier kfree_rcu has
 *                               freed its object (also run at exit, so
 *                               nothing is lost or leaked)
 *
 * kfree_rcu takes a k* block (kfree frees it), kvfree_rcu a kv* block
 * (kvfree).  Readers
 * use liburcu's rcu_read_lock()/rcu_read_unlock() from registered threads
 * (rcu_register_thread), as liburcu requires.
 */
#ifndef KALLOC_RCU_H
#define KALLOC_RCU_H

#include <kalloc/linux.h>
#include <urcu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ptr is freed with kfree, or with kvfree for the kv forms. */
KALLOC_API void kalloc_kfree_call_rcu(struct rcu_head *head, void *ptr);
KALLOC_API void kalloc_kvfree_call_rcu(struct rcu_head *head, void *ptr);
KALLOC_API void kalloc_rcu_barrier(void);

#define kfree_rcu(ptr, rhf) \
	kalloc_kfree_call_rcu(&(ptr)->rhf, (void *)(ptr))
#define kvfree_rcu(ptr, rhf) \
	kalloc_kvfree_call_rcu(&(ptr)->rhf, (void *)(ptr))
#define kfree_rcu_mightsleep(ptr) kalloc_kfree_call_rcu(NULL, (void *)(ptr))
#define kvfree_rcu_mightsleep(ptr) kalloc_kvfree_call_rcu(NULL, (void *)(ptr))

#ifdef __cplusplus
}
#endif
#endif /* KALLOC_RCU_H */

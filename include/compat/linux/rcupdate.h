/* <linux/rcupdate.h> for kernel-style code on libkalloc: kfree_rcu and
 * kvfree_rcu (<kalloc/rcu.h>), with liburcu's rcu_read_lock,
 * synchronize_rcu and call_rcu.  Installed with libkalloc-rcu. */
#include <kalloc/rcu.h>

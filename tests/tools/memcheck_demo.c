/*
 * Kernel-style misuse for the memory tools (valgrind's memcheck, ASan):
 *
 *     memcheck-demo uaf|overflow|uninit|leak
 *
 * uaf       kmalloc(100), kfree, then a read of it
 * overflow  a write of byte 100 of a kmalloc(100)
 * uninit    a branch on a byte of kmalloc(100) never written
 * leak      a kmalloc(100) and a kmalloc(2 MiB) never freed, each the
 *           first block of its slab or mapping (slab's own records must
 *           not make them look reachable); a third block stays reachable
 *
 * Each runs on the default backend (KALLOC_BACKEND).  The misuse sits in a
 * function of its own (use_after_free...), which the tool's report must
 * name, with the allocation site (make_block).
 */
#include <kalloc/linux.h>

#include <stdio.h>
#include <string.h>

static volatile char sink;

__attribute__((noinline)) static char *make_block(void)
{
	return kmalloc(100, GFP_KERNEL);
}

__attribute__((noinline)) static void use_after_free(void)
{
	char *p = make_block();
	memset(p, 1, 100);
	kfree(p);
	sink = p[10];
}

__attribute__((noinline)) static void overflow(void)
{
	char *p = make_block();
	p[100] = 1;
	kfree(p);
}

__attribute__((noinline)) static void uninit(void)
{
	char *p = make_block();
	if (p[50] == 42)
		sink = 1;
	kfree(p);
}

__attribute__((noinline)) static char *make_large(void)
{
	return kmalloc(2 << 20, GFP_KERNEL);
}

static char *keep; /* reachable: not a leak */

__attribute__((noinline)) static void leak(void)
{
	char *p = make_block();
	memset(p, 2, 100);
	char *q = make_large();
	memset(q, 2, 4096);
	keep = make_block();
	p = q = NULL;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "uaf"))
		use_after_free();
	else if (!strcmp(c, "overflow"))
		overflow();
	else if (!strcmp(c, "uninit"))
		uninit();
	else if (!strcmp(c, "leak"))
		leak();
	else {
		fprintf(stderr, "usage: memcheck-demo uaf|overflow|uninit|leak\n");
		return 2;
	}
	return 0;
}

/*
 * Kernel-style code built against the installed libkalloc, including only
 * <kalloc/linux.h> (check-install.sh compiles it with pkg-config).  Exits 0
 * when kmalloc/krealloc/kfree keep the kernel's semantics on the default
 * backend; says which check failed otherwise.  One allocation fails on
 * purpose without __GFP_NOWARN: its warning is the only stderr line.
 */
#include <kalloc/linux.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int failures;

static void check(int ok, const char *what)
{
	printf("%s - %s\n", ok ? "ok" : "FAIL", what);
	failures += !ok;
}

static int all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return 0;
	return 1;
}

int main(void)
{
	check(kmalloc(0, GFP_KERNEL) == ZERO_SIZE_PTR, "kmalloc(0) is ZERO_SIZE_PTR");
	check(ksize(ZERO_SIZE_PTR) == 0, "ksize(ZERO_SIZE_PTR) is 0");
	kfree(ZERO_SIZE_PTR);
	kfree(NULL);

	unsigned char *p = kmalloc(100, GFP_KERNEL);
	check(p && !ZERO_OR_NULL_PTR(p), "kmalloc(100)");
	if (!p)
		return 1;
	check(ksize(p) >= 100, "ksize >= 100");
	memset(p, 0x5a, 100);
	check(krealloc(p, 60, GFP_KERNEL) == p, "shrinking krealloc keeps p");

	unsigned char *q = krealloc(p, 100000, GFP_KERNEL | __GFP_ZERO);
	check(q != NULL, "krealloc grows to 100000");
	if (!q)
		return 1;
	check(all_bytes(q, 60, 0x5a), "krealloc keeps the content");
	p = q;

	unsigned char *a = kmalloc(256, GFP_KERNEL);
	check(a && (uintptr_t)a % 256 == 0, "kmalloc(256) is 256-aligned");
	kfree(a);
	unsigned char *z = kzalloc(3000, GFP_KERNEL);
	check(z && all_bytes(z, 3000, 0), "kzalloc zeroes");
	kfree(z);
	check(kcalloc(SIZE_MAX / 2 + 1, 2, GFP_KERNEL) == NULL,
	      "kcalloc overflow is NULL");

	/* the one deliberate warning, then the same silenced */
	check(kmalloc(SIZE_MAX, GFP_KERNEL) == NULL, "kmalloc(SIZE_MAX) fails");
	check(kmalloc(SIZE_MAX, GFP_KERNEL | __GFP_NOWARN) == NULL,
	      "kmalloc(SIZE_MAX, __GFP_NOWARN) fails");
	check(all_bytes(p, 60, 0x5a), "failed calls leave other blocks alone");

	check(krealloc(p, 0, GFP_KERNEL) == ZERO_SIZE_PTR,
	      "krealloc(p, 0) frees and is ZERO_SIZE_PTR");

	char *s = kstrdup("installed", GFP_KERNEL);
	check(s && strcmp(s, "installed") == 0, "kstrdup");
	kfree(s);
	return failures ? 1 : 0;
}

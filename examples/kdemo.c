/*
 * kdemo: kernel-style code, unchanged, on libkalloc.  Builds a table of
 * strings with kmalloc_array/krealloc/kstrdup, a KVec of integers, and shows
 * the kernel's edge cases (ZERO_SIZE_PTR, overflow, __GFP_NOWARN).
 */
#include <kalloc/linux.h>
#include <kalloc/vec.h>

#include <stdio.h>
#include <string.h>

KVEC_DEFINE(u64vec, unsigned long long)

struct item {
	char *name;
	size_t len;
};

int main(void)
{
	kalloc_info_t info;
	kalloc_info(kalloc_default(), &info);
	printf("default backend: %s (%s)\n", info.name, info.version);

	size_t n = 4;
	struct item *items = kcalloc(n, sizeof(*items), GFP_KERNEL);
	const char *words[] = { "kmalloc", "krealloc", "kfree", "ksize",
				"vmalloc", "kvmalloc" };
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (i == n) {
			struct item *grown = krealloc_array(items, n * 2,
							    sizeof(*items),
							    GFP_KERNEL | __GFP_ZERO);
			if (!grown)
				return 1;
			items = grown;
			n *= 2;
		}
		items[i].name = kstrdup(words[i], GFP_KERNEL);
		items[i].len = strlen(words[i]);
	}
	for (size_t i = 0; i < n && items[i].name; i++)
		printf("  %-9s ksize=%zu\n", items[i].name, ksize(items[i].name));

	void *z = kmalloc(0, GFP_KERNEL);
	printf("kmalloc(0) = %p (ZERO_SIZE_PTR: %s), ksize = %zu\n", z,
	       z == ZERO_SIZE_PTR ? "yes" : "no", ksize(z));
	kfree(z);
	printf("kmalloc_array overflow -> %p: %s\n",
	       kmalloc_array((size_t)-1 / 2, 4, GFP_KERNEL), kalloc_errmsg());
	void *big = kmalloc((size_t)-1 / 2, GFP_KERNEL | __GFP_NOWARN);
	printf("impossible kmalloc with __GFP_NOWARN -> %p (no warning)\n", big);

	struct u64vec v = u64vec_new(kalloc_default());
	for (unsigned long long i = 1; i <= 100000; i++)
		if (u64vec_push(&v, i * i, GFP_KERNEL))
			return 1;
	unsigned long long sum = 0, x;
	while (u64vec_pop(&v, &x))
		sum += x;
	printf("KVec: pushed 100000 squares, capacity %zu, sum %llu\n", v.cap, sum);
	u64vec_free(&v);

	for (size_t i = 0; i < n; i++)
		kfree(items[i].name);
	kfree(items);
	return 0;
}

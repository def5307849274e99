/*
 * The shim's direct path through the backend's front (kalloc_front), run
 * under LD_PRELOAD with KALLOC_BACKEND set by meson.build:
 *
 *   fixture-front.so  malloc and the aligned calls ask the front what it
 *                     takes (up to 1000 bytes, 64-byte alignment) and the
 *                     fast alloc the rest, counted by the fixture;
 *   kv                small blocks are slab's, big ones page's, and free
 *                     takes both (a page block refused by the front goes
 *                     to kv's fast free, not to the foreign report).
 *
 * Exit status 0, or 1 naming the first failed check.
 */
#include <kalloc.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* on_kv asks the backends about blocks it has freed: addresses only */
#pragma GCC diagnostic ignored "-Wuse-after-free"

#define REQUIRE(c, ...)                                                    \
	do {                                                               \
		if (!(c)) {                                                \
			fprintf(stderr, "test_front:%d: ", __LINE__);      \
			fprintf(stderr, __VA_ARGS__);                      \
			fprintf(stderr, "\n");                             \
			exit(1);                                           \
		}                                                          \
	} while (0)

/* The fixture's counters (fixture.c). */
struct front_counts {
	unsigned allocs, frees, refused;
};
struct lean_counts {
	unsigned allocs, frees;
	size_t last_align;
};

static void on_fixture(const char *path)
{
	void *dl = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	REQUIRE(dl, "the fixture %s is not loaded", path);
	/* volatile: the compiler takes malloc for a call that changes no
	 * memory of the program's, and would fold the reads */
	volatile struct front_counts *f = dlsym(dl, "fixture_front");
	volatile struct lean_counts *l = dlsym(dl, "fixture_lean");
	REQUIRE(f && l, "fixture counters missing");
	f->allocs = f->frees = f->refused = 0;
	l->allocs = l->frees = 0;
	void *a = malloc(100), *b = malloc(1000);
	REQUIRE(a && b && f->allocs == 2 && l->allocs == 0,
		"malloc up to max_size did not take the front (%u, %u)",
		f->allocs, l->allocs);
	void *c = malloc(1001);
	REQUIRE(c && f->allocs == 2 && l->allocs == 1,
		"malloc above max_size took the front");
	void *d = aligned_alloc(64, 100), *e = NULL;
	REQUIRE(d && f->allocs == 3, "aligned_alloc(64) did not take the front");
	REQUIRE(posix_memalign(&e, 128, 100) == 0 && l->allocs == 2,
		"posix_memalign(128) took the front");
	free(a), free(b), free(c), free(d), free(e);
	dlclose(dl);
}

/* Run with KALLOC_KV_LARGE=262144: a 1 MiB block is page's. */
static void on_kv(void)
{
	kalloc_t *slab = kalloc_get("slab"), *page = kalloc_get("page");
	REQUIRE(slab && page, "%s", kalloc_errmsg());
	/* the foreign report would land here */
	FILE *err = tmpfile();
	REQUIRE(err, "tmpfile");
	int saved = dup(2);
	dup2(fileno(err), 2);
	char *small = malloc(100), *big = malloc((size_t)1 << 20);
	REQUIRE(small && big, "malloc failed");
	int small_owned = kalloc_owns(slab, small);
	int big_owned = kalloc_owns(page, big);
	memset(small, 1, 100);
	memset(big, 2, (size_t)1 << 20);
	free(small);
	free(big);
	int small_after = kalloc_owns(slab, small);
	int big_after = kalloc_owns(page, big);
	fflush(stderr);
	dup2(saved, 2);
	long reported = ftell(err);
	REQUIRE(small_owned == 1 && big_owned == 1,
		"malloc(100) not slab's (%d) or malloc(1 MiB) not page's (%d)",
		small_owned, big_owned);
	REQUIRE(small_after != 1 && big_after != 1, "free left a block live");
	REQUIRE(reported == 0, "free reported a block of kv's as foreign");
}

int main(void)
{
	free(malloc(1)); /* the shim opens its backend */
	kalloc_info_t info;
	kalloc_info(kalloc_default(), &info);
	if (!strcmp(info.name, "fixture"))
		on_fixture(info.path);
	else if (!strcmp(info.name, "kv"))
		on_kv();
	else
		REQUIRE(0, "run with KALLOC_BACKEND=kv or the front fixture, "
			"not %s", info.name);
	return 0;
}

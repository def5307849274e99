/*
 * The classic misuse cases of hardened allocators' test suites, each a few
 * lines of plain malloc/free, for running under the shim:
 *
 *     kalloc run -b slab -- misuse-shim CASE
 *
 * Before the misuse the program prints "victim 0x..." on stderr (the
 * pointer a report should name); if it survives the misuse it exits 0.
 * shim_run.py runs every case on a backend and classifies the outcome.
 *
 * Built with -DSHIM_CASES_KAPI, the same cases call kmalloc, kfree and
 * krealloc (GFP_KERNEL) of <kalloc/linux.h> on KALLOC_BACKEND instead: the
 * form a program built with -fsanitize=address can use, since ASan's
 * runtime must be its malloc (tools_run.py, subjects asan:B).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifdef SHIM_CASES_KAPI
#include <kalloc/linux.h>
#define malloc(n) kmalloc((n), GFP_KERNEL)
#define free(p) kfree(p)
#define realloc(p, n) krealloc((p), (n), GFP_KERNEL)
#endif

#define SMALL 64
#define MEDIUM ((size_t)100 << 10) /* between slab's classes and mappings */
#define LARGE ((size_t)1 << 20)

static void *victim(void *p)
{
	fprintf(stderr, "victim %p\n", p);
	return p;
}

/* Keeps the compiler from dropping writes to freed memory or reads. */
static void *volatile sink;

static void double_free(size_t n, int delayed)
{
	char *p = malloc(n), *q = malloc(n);
	free(p);
	if (delayed)
		free(q); /* another free in between */
	free(victim(p));
	if (!delayed)
		free(q);
}

static void bad_free(size_t n, size_t off)
{
	char *p = malloc(n);
	free(victim(p + off));
}

/* A pointer inside memory the allocator mapped, not at any block: well
 * past a small block, in its slab's chunk (or next to it). */
static void own_mapping(void)
{
	char *p = malloc(SMALL);
	sink = malloc(SMALL);
	free(victim(p + 3 * 4096 + 8));
}

static void foreign_mapping(void)
{
	char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	free(victim(m + 64));
}

static void stack_free(void)
{
	char buf[128];
	sink = buf;
	free(victim(buf + 16));
}

/* A pointer read from never-initialised memory: garbage bits. */
static void uninit(int re)
{
	uintptr_t junk = 0x6b6b6b6b6b6b6b00u; /* what MALLOC_PERTURB_ leaves */
	void *p = victim((void *)junk);
	if (re)
		sink = realloc(p, 100);
	else
		free(p);
}

static void overflow(size_t n, size_t by)
{
	char *p = malloc(n);
	victim(p);
	memset(p + n, 'x', by); /* past the requested size */
	free(p);
	for (int i = 0; i < 4; i++) /* reuse what follows, as programs do */
		sink = malloc(n);
}

static void write_after_free(size_t n, int reuse)
{
	char *p = malloc(n);
	free(victim(p));
	memset(p, 'x', 16);
	if (reuse)
		for (int i = 0; i < 4; i++)
			sink = malloc(n);
}

int main(int argc, char **argv)
{
	static const char *const names[] = {
		"double_free_small", "double_free_large",
		"double_free_small_delayed", "double_free_large_delayed",
		"interior_free_small", "interior_free_large",
		"unaligned_free_small", "unaligned_free_large",
		"free_stack", "free_own_mapping", "free_foreign_mapping",
		"realloc_uninit", "free_uninit",
		"overflow_small_1", "overflow_small_8",
		"overflow_large_1", "overflow_large_8",
		"write_after_free_small", "write_after_free_small_reuse",
		"write_after_free_large",
		"double_free_medium", "double_free_medium_delayed",
		"interior_free_medium",
	};
	int c = -1;
	for (int i = 0; argc > 1 && i < (int)(sizeof(names) / sizeof(*names)); i++)
		if (!strcmp(argv[1], names[i]))
			c = i;
	switch (c) {
	case 0: double_free(SMALL, 0); break;
	case 1: double_free(LARGE, 0); break;
	case 2: double_free(SMALL, 1); break;
	case 3: double_free(LARGE, 1); break;
	case 4: bad_free(SMALL, 16); break;
	case 5: bad_free(LARGE, 8192); break;
	case 6: bad_free(SMALL, 1); break;
	case 7: bad_free(LARGE, 1); break;
	case 8: stack_free(); break;
	case 9: own_mapping(); break;
	case 10: foreign_mapping(); break;
	case 11: uninit(1); break;
	case 12: uninit(0); break;
	case 13: overflow(SMALL, 1); break;
	case 14: overflow(SMALL, 8); break;
	case 15: overflow(LARGE, 1); break;
	case 16: overflow(LARGE, 8); break;
	case 17: write_after_free(SMALL, 0); break;
	case 18: write_after_free(SMALL, 1); break;
	case 19: write_after_free(LARGE, 0); break;
	case 20: double_free(MEDIUM, 0); break;
	case 21: double_free(MEDIUM, 1); break;
	case 22: bad_free(MEDIUM, 8192); break;
	default:
		fprintf(stderr, "usage: misuse-shim CASE; cases:");
		for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
			fprintf(stderr, " %s", names[i]);
		fprintf(stderr, "\n");
		return 2;
	}
	return 0;
}

/*
 * G15: the fast entries (kalloc_direct, the plugin's fast table) behave
 * exactly as realloc would: aligned, long enough, writable, usable length
 * no more than usable_size, a failure as {NULL, 0} with ENOMEM, blocks
 * crossing freely between the two tables, and a foreign pointer returned
 * untouched when the backend declares it can tell; and the front
 * (kalloc_front, the plugin's `front`), when it has one, as the fast
 * entries within its limits, its free taking its own blocks and leaving
 * every other one, untouched, to the rest.
 *
 * G16: the misuse a backend declares it detects (kalloc_info's detects)
 * is reported and aborts, through kalloc_free and through the fast free,
 * with a message naming the pointer; never a silent ignore.
 */
#include "conform.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static kalloc_direct_t fast_entries(void)
{
	kalloc_direct_t d;
	REQUIRE(kalloc_direct(conform_a, &d) == KALLOC_OK,
		"kalloc_info says fast, kalloc_direct refuses: %s",
		kalloc_errmsg());
	return d;
}

static const size_t sizes[] = { 1, 7, 8, 15, 16, 17, 100, 255, 256, 1000,
				4095, 4096, 4097, 30000, 70000, 300000,
				(size_t)1 << 20, ((size_t)3 << 20) + 5 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

/* A fast block as realloc's would be: non-NULL, aligned, len in
 * [size, usable_size], writable to len. */
static struct blk fast_alloc(const kalloc_direct_t *d, size_t size,
			     size_t align)
{
	kalloc_buf_t b = d->alloc(d->state, KALLOC_LAYOUT(size, align));
	REQUIRE(b.ptr && !kalloc_is_sentinel(b.ptr),
		"fast alloc {%zu, %zu} gave %p", size, align, b.ptr);
	REQUIRE(is_aligned(b.ptr, align), "fast alloc {%zu, %zu} = %p: misaligned",
		size, align, b.ptr);
	REQUIRE(b.len >= size, "fast alloc {%zu, %zu}: len %zu < size", size,
		align, b.len);
	size_t usable = kalloc_usable_size(conform_a, b.ptr);
	REQUIRE(b.len <= usable, "fast alloc {%zu, %zu}: len %zu > usable_size %zu",
		size, align, b.len, usable);
	struct blk k = { b.ptr, b.len, size, align, 0 };
	return k;
}

START_TEST(g15_fast_blocks_as_realloc)
{
	kalloc_direct_t d = fast_entries();
	size_t amax = align_limit((size_t)1 << 20);
	unsigned n = 0;
	for (size_t i = 0; i < N_SIZES; i++)
		for (size_t a = 1; a <= amax; a <<= 1, n++) {
			if (sizes[i] > ((size_t)1 << 20) && a > 4096)
				continue; /* big and very aligned: keep it short */
			struct blk b = fast_alloc(&d, sizes[i], a);
			blk_stamp(&b, n);
			blk_verify(&b, "fast block");
			/* the other table frees it, with a known layout or not */
			if (n % 3 == 0) {
				blk_free(&b, n & 4);
			} else if (n % 3 == 1) {
				REQUIRE(d.free(d.state, b.p, n & 4 ?
					       KALLOC_LAYOUT_UNKNOWN : blk_layout(&b)) == 1,
					"fast free of its own block {%zu, %zu} "
					"returned 0", b.size, b.align);
			} else {
				/* realloc keeps a fast block's content */
				blk_resize(&b, b.size * 2 + 1, b.align, 0, n & 4);
				blk_free(&b, false);
			}
		}
}
END_TEST

/* Blocks of the core (ZERO, aligned, resized) go to the fast free. */
START_TEST(g15_fast_free_takes_core_blocks)
{
	kalloc_direct_t d = fast_entries();
	size_t amax = align_limit(4096);
	for (size_t i = 0; i < N_SIZES; i++)
		for (size_t a = 1; a <= amax; a <<= 2) {
			struct blk b = blk_alloc(sizes[i], a,
						 honors(KALLOC_ZERO) ? KALLOC_ZERO : 0);
			blk_stamp(&b, i);
			if (i & 1)
				blk_resize(&b, sizes[i] / 2 + 1, a, 0, false);
			int tells = kalloc_owns(conform_a, b.p);
			REQUIRE(d.free(d.state, b.p, i & 2 ? KALLOC_LAYOUT_UNKNOWN :
					      blk_layout(&b)) == 1,
				"fast free of a core block {%zu, %zu} returned 0",
				b.size, a);
			if (tells == 1)
				REQUIRE(kalloc_owns(conform_a, b.p) != 1,
					"block {%zu, %zu} still owned after the "
					"fast free", b.size, a);
		}
}
END_TEST

/* A failure is {NULL, 0} with errno ENOMEM, like malloc's. */
START_TEST(g15_fast_alloc_failure)
{
	kalloc_direct_t d = fast_entries();
	size_t big[] = { SIZE_MAX, SIZE_MAX / 2 + 1, conform_info.max_size + 1 };
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		if (big[i] <= conform_info.max_size)
			continue; /* max_size + 1 wrapped */
		errno = 0;
		kalloc_buf_t b = d.alloc(d.state, KALLOC_LAYOUT(big[i], 16));
		REQUIRE(!b.ptr && b.len == 0,
			"fast alloc of %zu bytes gave {%p, %zu}", big[i], b.ptr,
			b.len);
		REQUIRE(errno == ENOMEM, "fast alloc of %zu bytes: errno %d, "
			"not ENOMEM", big[i], errno);
	}
}
END_TEST

/* Declared FOREIGN_FREE: a pointer outside the backend is left alone. */
START_TEST(g15_fast_free_leaves_foreign_alone)
{
	if (!(conform_info.detects & KALLOC_DETECT_FOREIGN_FREE))
		return; /* undeclared: not the backend's duty (G16 says so) */
	kalloc_direct_t d = fast_entries();
	static unsigned char buf[512] __attribute__((aligned(4096)));
	memset(buf, 0x5a, sizeof(buf));
	REQUIRE(d.free(d.state, buf + 64, KALLOC_LAYOUT_UNKNOWN) == 0,
		"fast free of a static buffer did not return 0");
	REQUIRE(d.free(d.state, buf, KALLOC_LAYOUT(64, 16)) == 0,
		"fast free of a static buffer did not return 0");
	for (size_t k = 0; k < sizeof(buf); k++)
		REQUIRE(buf[k] == 0x5a, "foreign buffer written at %zu", k);
	REQUIRE(kalloc_owns(conform_a, buf + 64) == 0,
		"owns() does not say 0 of a foreign pointer");
}
END_TEST

/* The front: blocks as the fast alloc's within max_size and max_align;
 * its free takes them (1) and leaves every other block to the rest free,
 * the two together freeing any block of the backend; a foreign pointer
 * gets 0 from both when the backend declares it can tell.  A backend
 * without a front hands out its own entries: checked the same way. */
START_TEST(g15_front_as_fast_entries)
{
	kalloc_direct_t d = fast_entries();
	kalloc_front_t f;
	REQUIRE(kalloc_front(conform_a, &f) == KALLOC_OK,
		"kalloc_direct works, kalloc_front refuses: %s", kalloc_errmsg());
	REQUIRE(f.max_align && !(f.max_align & (f.max_align - 1)) &&
		f.max_align <= conform_info.max_align,
		"front max_align %zu", f.max_align);
	kalloc_direct_t fd = { f.alloc, f.free, f.state, d.plain };
	size_t amax = align_limit(f.max_align < 4096 ? f.max_align : 4096);
	unsigned n = 0;
	for (size_t i = 0; i < N_SIZES; i++)
		for (size_t a = 1; a <= amax; a <<= 1, n++) {
			size_t size = sizes[i];
			if (size > f.max_size)
				continue;
			struct blk b = fast_alloc(&fd, size, a);
			blk_stamp(&b, n);
			blk_verify(&b, "front block");
			if (n % 3 == 0)
				blk_free(&b, n & 4);
			else if (n % 3 == 1)
				REQUIRE(f.free(f.state, b.p, KALLOC_LAYOUT_UNKNOWN) == 1,
					"front free of its own block {%zu, %zu} "
					"returned 0", size, a);
			else
				REQUIRE(d.free(d.state, b.p, blk_layout(&b)) == 1,
					"fast free of a front block {%zu, %zu} "
					"returned 0", size, a);
		}
	/* the backend's other blocks: the front's free, then the rest */
	for (size_t i = 0; i < N_SIZES; i++) {
		struct blk b = fast_alloc(&d, sizes[i], 16);
		blk_stamp(&b, i);
		int front_took = f.free(f.state, b.p, KALLOC_LAYOUT_UNKNOWN);
		if (!front_took) {
			REQUIRE(f.rest_free, "front free refused a block of "
				"{%zu, 16} with no rest free", sizes[i]);
			blk_verify(&b, "block the front's free refused");
			REQUIRE(f.rest_free(f.rest_state, b.p,
					    KALLOC_LAYOUT_UNKNOWN) == 1,
				"rest free of a block {%zu, 16} returned 0",
				sizes[i]);
		}
	}
	if (!(conform_info.detects & KALLOC_DETECT_FOREIGN_FREE))
		return;
	static unsigned char buf[512] __attribute__((aligned(4096)));
	memset(buf, 0x5a, sizeof(buf));
	REQUIRE(f.free(f.state, buf + 64, KALLOC_LAYOUT_UNKNOWN) == 0 &&
		(!f.rest_free ||
		 f.rest_free(f.rest_state, buf + 64, KALLOC_LAYOUT_UNKNOWN) == 0),
		"front or rest free of a static buffer did not return 0");
	for (size_t k = 0; k < sizeof(buf); k++)
		REQUIRE(buf[k] == 0x5a, "foreign buffer written at %zu", k);
}
END_TEST

TCase *g15_fast(void)
{
	TCase *tc = conform_tcase("G15");
	tcase_add_test(tc, g15_fast_blocks_as_realloc);
	tcase_add_test(tc, g15_fast_free_takes_core_blocks);
	tcase_add_test(tc, g15_fast_alloc_failure);
	tcase_add_test(tc, g15_fast_free_leaves_foreign_alone);
	tcase_add_test(tc, g15_front_as_fast_entries);
	return tc;
}

/* ---- G16: declared misuse is reported ----------------------------------- */

enum misuse { DOUBLE_FREE, INTERIOR_FREE, FOREIGN_FREE };

/* In a child: the misuse, through kalloc_free or the fast free.  Returns
 * only if it was not caught. */
static void commit(enum misuse m, bool via_fast, size_t size, void **victim)
{
	static unsigned char foreign[256] __attribute__((aligned(64)));
	kalloc_buf_t b;
	void *p;
	if (m == FOREIGN_FREE) {
		p = foreign + 64;
	} else {
		if (kalloc_alloc(conform_a, KALLOC_LAYOUT(size, 16), 0, &b))
			_exit(3);
		p = m == INTERIOR_FREE ? (char *)b.ptr + 16 : b.ptr;
		if (m == DOUBLE_FREE)
			kalloc_free(conform_a, b.ptr, KALLOC_LAYOUT_UNKNOWN);
	}
	*victim = p;
	fprintf(stderr, "victim %p\n", p);
	if (via_fast) {
		kalloc_direct_t d;
		if (kalloc_direct(conform_a, &d))
			_exit(4);
		if (!d.free(d.state, p, KALLOC_LAYOUT_UNKNOWN) &&
		    m == FOREIGN_FREE)
			_exit(5); /* the fast free's answer: left alone */
	} else {
		kalloc_free(conform_a, p, KALLOC_LAYOUT_UNKNOWN);
	}
}

/* Runs commit() in a child and REQUIREs the outcome the declaration
 * promises: SIGABRT with the pointer named (or, for a foreign pointer
 * through the fast free, the answer 0). */
static void expect_caught(enum misuse m, bool via_fast, size_t size,
			  const char *what)
{
	int fd[2];
	REQUIRE(pipe(fd) == 0, "pipe");
	fflush(NULL);
	int pid = conform_fork();
	if (pid == 0) {
		dup2(fd[1], 2);
		close(fd[0]);
		signal(SIGABRT, SIG_DFL);
		void *victim;
		commit(m, via_fast, size, &victim);
		_exit(0);
	}
	close(fd[1]);
	char msg[4096];
	size_t got = 0;
	ssize_t r;
	while (got < sizeof(msg) - 1 &&
	       (r = read(fd[0], msg + got, sizeof(msg) - 1 - got)) > 0)
		got += (size_t)r;
	msg[got] = 0;
	close(fd[0]);
	int st;
	REQUIRE(conform_wait(pid, 60, &st) == 0, "%s: child hung", what);
	if (m == FOREIGN_FREE && via_fast && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 5)
		return;
	REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
		"%s (%s) declared detected but not reported: child %s %d; "
		"stderr: %s", what, via_fast ? "fast free" : "kalloc_free",
		WIFSIGNALED(st) ? "killed by signal" : "exited with",
		WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), msg);
	char victim[40] = "";
	const char *v = strstr(msg, "victim ");
	if (v)
		sscanf(v + 7, "%39s", victim);
	REQUIRE(victim[0] && strstr(strchr(msg, '\n') ? strchr(msg, '\n') : msg,
				    victim),
		"%s: the report does not name the pointer %s: %s", what, victim,
		msg);
}

START_TEST(g16_double_free)
{
	if (!(conform_info.detects & KALLOC_DETECT_DOUBLE_FREE))
		return;
	expect_caught(DOUBLE_FREE, false, 48, "double free");
	expect_caught(DOUBLE_FREE, false, 3000, "double free");
	if (conform_info.fast)
		expect_caught(DOUBLE_FREE, true, 48, "double free");
}
END_TEST

START_TEST(g16_interior_free)
{
	if (!(conform_info.detects & KALLOC_DETECT_INVALID_FREE))
		return;
	expect_caught(INTERIOR_FREE, false, 64, "free of an interior pointer");
	if (conform_info.fast)
		expect_caught(INTERIOR_FREE, true, 64,
			      "free of an interior pointer");
}
END_TEST

START_TEST(g16_foreign_free)
{
	if (!(conform_info.detects & KALLOC_DETECT_FOREIGN_FREE))
		return;
	expect_caught(FOREIGN_FREE, false, 0, "free of a foreign pointer");
	if (conform_info.fast)
		expect_caught(FOREIGN_FREE, true, 0, "free of a foreign pointer");
}
END_TEST

TCase *g16_misuse(void)
{
	TCase *tc = conform_tcase("G16");
	tcase_add_test(tc, g16_double_free);
	tcase_add_test(tc, g16_interior_free);
	tcase_add_test(tc, g16_foreign_free);
	return tc;
}

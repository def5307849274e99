/*
 * G12: every failed call prints one warning line naming the backend on
 * stderr (rate limited), and NOWARN silences it.  fd 2 is captured into a
 * pipe around each failing call.
 */
#include "conform.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct capture {
	int saved; /* the real fd 2 */
	int rd;    /* read end of the pipe now on fd 2 */
};

static void capture_start(struct capture *c)
{
	int p[2];
	REQUIRE(pipe2(p, O_CLOEXEC) == 0, "pipe2 failed");
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	REQUIRE(c->saved >= 0 && dup2(p[1], STDERR_FILENO) == STDERR_FILENO,
		"cannot redirect fd 2");
	close(p[1]);
	c->rd = p[0];
}

/* Restores fd 2 and returns what was written to it (NUL-terminated). */
static size_t capture_end(struct capture *c, char *buf, size_t cap)
{
	fflush(stderr);
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(c->rd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(c->rd);
	return n;
}

/* Number of lines in s, and of those containing `needle`. */
static int count_lines(const char *s, const char *needle, int *matching)
{
	int lines = 0;
	*matching = 0;
	while (*s) {
		const char *end = strchr(s, '\n');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)len, s);
		lines++;
		*matching += strstr(line, needle) != NULL;
		s += len + (end != NULL);
	}
	return lines;
}

/* One way to make a call fail; `flags` is added to the call's flags. */
typedef int (*failing_call)(kalloc_flags_t flags);

static int fail_injected(kalloc_flags_t flags)
{
	kalloc_buf_t out;
	kalloc_fail_nth(1);
	return kalloc_alloc(conform_a, KALLOC_LAYOUT(64, 8), flags, &out);
}

static int fail_bad_align(kalloc_flags_t flags)
{
	kalloc_buf_t out;
	return kalloc_alloc(conform_a, KALLOC_LAYOUT(64, 3), flags, &out);
}

static int fail_size_max(kalloc_flags_t flags)
{
	kalloc_buf_t out;
	return kalloc_alloc(conform_a, KALLOC_LAYOUT(SIZE_MAX, 8), flags, &out);
}

static int fail_undeclared_flag(kalloc_flags_t flags)
{
	static const kalloc_flags_t cand[] = { KALLOC_NOWAIT, KALLOC_ATOMIC,
					       KALLOC_ACCOUNT, KALLOC_ZERO };
	kalloc_flags_t f = 1u << 31; /* refused if every flag is honored */
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++)
		if (!honors(cand[i])) {
			f = cand[i];
			break;
		}
	kalloc_buf_t out;
	return kalloc_alloc(conform_a, KALLOC_LAYOUT(64, 8), f | flags, &out);
}

static int fail_grow(kalloc_flags_t flags)
{
	struct blk b = blk_alloc(100, 8, 0);
	blk_stamp(&b, 12);
	kalloc_buf_t out;
	kalloc_fail_nth(1);
	int err = kalloc_realloc(conform_a, b.p, KALLOC_LAYOUT(1000, 8),
				 blk_layout(&b), flags, &out);
	blk_verify(&b, "after a failed realloc");
	blk_free(&b, false);
	return err;
}

static const struct {
	const char *what;
	failing_call call;
} core_failures[] = {
	{ "injected alloc failure", fail_injected },
	{ "alignment 3", fail_bad_align },
	{ "size SIZE_MAX", fail_size_max },
	{ "undeclared flag", fail_undeclared_flag },
	{ "injected realloc failure", fail_grow },
};

/* Failures decided before the backend runs: exactly the one line. */
START_TEST(g12_one_line_or_nothing)
{
	const char *name = conform_info.name;
	char buf[8192];
	for (size_t i = 0; i < sizeof(core_failures) / sizeof(core_failures[0]);
	     i++) {
		struct capture c;
		capture_start(&c);
		int err = core_failures[i].call(0);
		capture_end(&c, buf, sizeof(buf));
		REQUIRE(err != KALLOC_OK, "%s: the call did not fail",
			core_failures[i].what);
		int named, lines = count_lines(buf, name, &named);
		REQUIRE(lines == 1 && named == 1,
			"%s without NOWARN: want one line naming '%s' on stderr, "
			"got %d lines (%d naming it): \"%s\"",
			core_failures[i].what, name, lines, named, buf);

		capture_start(&c);
		err = core_failures[i].call(KALLOC_NOWARN);
		capture_end(&c, buf, sizeof(buf));
		REQUIRE(err != KALLOC_OK, "%s: the call did not fail",
			core_failures[i].what);
		REQUIRE(buf[0] == 0, "%s with NOWARN printed \"%s\"",
			core_failures[i].what, buf);
	}
	kalloc_fail_nth(0);
}
END_TEST

/*
 * A failure inside the backend (a size it cannot map): one line naming
 * the backend; with NOWARN none.  Lines from outside libkalloc (a
 * sanitizer's own report) are not counted.
 */
START_TEST(g12_backend_failure)
{
	size_t size = SIZE_MAX / 2;
	if (size > conform_info.max_size)
		size = conform_info.max_size;
	const char *name = conform_info.name;
	char buf[8192];
	for (int nowarn = 0; nowarn < 2; nowarn++) {
		struct capture c;
		kalloc_buf_t out;
		capture_start(&c);
		int err = kalloc_alloc(conform_a, KALLOC_LAYOUT(size, 8),
				       nowarn ? KALLOC_NOWARN : 0, &out);
		capture_end(&c, buf, sizeof(buf));
		if (err == KALLOC_OK) { /* max_size is small enough to serve */
			kalloc_free(conform_a, out.ptr, KALLOC_LAYOUT(size, 8));
			return;
		}
		int named, kallocs;
		count_lines(buf, name, &named);
		count_lines(buf, "kalloc", &kallocs);
		if (nowarn)
			REQUIRE(named == 0 && kallocs == 0,
				"failed alloc of %zu bytes with NOWARN printed "
				"\"%s\"", size, buf);
		else
			REQUIRE(named == 1,
				"failed alloc of %zu bytes without NOWARN: want "
				"one line naming '%s', got \"%s\"", size, name, buf);
	}
}
END_TEST

/* A storm of failures is rate limited, but not silenced entirely. */
START_TEST(g12_rate_limited)
{
	static char buf[1 << 16];
	struct capture c;
	capture_start(&c);
	for (int i = 0; i < 300; i++)
		fail_bad_align(0);
	capture_end(&c, buf, sizeof(buf));
	int named, lines = count_lines(buf, conform_info.name, &named);
	REQUIRE(named >= 1 && lines <= 100,
		"300 failures printed %d lines (%d naming the backend): want "
		"between 1 and 100", lines, named);
}
END_TEST

TCase *g12_nowarn(void)
{
	TCase *tc = conform_tcase("G12");
	tcase_add_test(tc, g12_one_line_or_nothing);
	tcase_add_test(tc, g12_backend_failure);
	tcase_add_test(tc, g12_rate_limited);
	return tc;
}

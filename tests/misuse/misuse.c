/*
 * Misuse of the API, one case per run, in a child process:
 *
 *     misuse BACKEND CASE [SIGNAL SUBSTRING]
 *
 * Cases: double_free, interior_free, wild_free (a static address never
 * allocated), foreign_free (a block of another backend), realloc_after_free,
 * overflow (one byte written past the usable length, then free).
 *
 * `expectations` below says what each backend promises: the signal that
 * ends the child and a substring of its stderr ("%p" stands for the misused
 * pointer, which the child reports before misusing it).  A backend/case pair
 * without a row is "not promised" (undefined behaviour, not detected): the
 * run exits 77, which meson reports as skipped.  tests/README.md has the
 * same table.  SIGNAL and SUBSTRING on the command line replace the table,
 * to explore a backend by hand (foreign_free then takes its block from
 * KALLOC_MISUSE_FROM, default libc).
 *
 * Not run under valgrind: it replaces glibc's malloc and reports instead of
 * aborting, so the outcomes differ by design.
 */
#include <kalloc.h>

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define SKIP 77
#define CHILD_NO_FROM 4 /* the child could not open the foreign backend */

struct expect {
	const char *backend;
	const char *misuse;
	const char *env;    /* "NAME=value" set before the backend opens */
	const char *from;   /* foreign_free: the backend the block comes from */
	int signal;         /* that ends the child */
	const char *stderr_has; /* "%p": the misused pointer */
};

static const struct expect expectations[] = {
	/* glibc 2.36 (Debian 12), verified here; a 64-byte block is in tcache. */
	{ "libc", "double_free", NULL, NULL, SIGABRT,
	  "free(): double free detected in tcache 2" },
	{ "libc", "interior_free", NULL, NULL, SIGABRT, "free(): invalid pointer" },
	{ "libc", "wild_free", NULL, NULL, SIGABRT, "free(): invalid pointer" },
	/* slab (harden.c): the allocation bitmap catches double frees, the
	 * block geometry interior pointers; any pointer it did not allocate is
	 * reported.  Through the core's host->corruption, then abort. */
	{ "slab", "double_free", NULL, NULL, SIGABRT,
	  "kalloc: slab: heap corruption at %p" },
	{ "slab", "interior_free", NULL, NULL, SIGABRT,
	  "kalloc: slab: heap corruption at %p" },
	{ "slab", "wild_free", NULL, NULL, SIGABRT,
	  "kalloc: slab: heap corruption at %p" },
	{ "slab", "foreign_free", NULL, "libc", SIGABRT,
	  "kalloc: slab: heap corruption at %p" },
	{ "slab", "realloc_after_free", NULL, NULL, SIGABRT,
	  "kalloc: slab: heap corruption at %p" },
	/* page: every block is found by address in an off-block table, so an
	 * address that is not a live block's start is reported; with guard
	 * pages the usable length ends at a PROT_NONE page. */
	{ "page", "double_free", NULL, NULL, SIGABRT,
	  "kalloc: page: heap corruption at %p" },
	{ "page", "interior_free", NULL, NULL, SIGABRT,
	  "kalloc: page: heap corruption at %p" },
	{ "page", "wild_free", NULL, NULL, SIGABRT,
	  "kalloc: page: heap corruption at %p" },
	{ "page", "foreign_free", NULL, "libc", SIGABRT,
	  "kalloc: page: heap corruption at %p" },
	{ "page", "realloc_after_free", NULL, NULL, SIGABRT,
	  "kalloc: page: heap corruption at %p" },
	{ "page", "overflow", "KALLOC_PAGE_GUARD=1", NULL, SIGSEGV,
	  "misuse: SIGSEGV at %p" },
	/* kv on slab: a double or interior free of a slab block is slab's
	 * own report (kv frees through slab's fast free, which detects
	 * them); a pointer neither slab nor page holds is reported by kv
	 * itself (plugins/kv/kv.c, not_ours). */
	{ "kv", "double_free", "KALLOC_KV_SMALL=slab", NULL, SIGABRT,
	  "kalloc: slab: heap corruption at %p" },
	{ "kv", "interior_free", "KALLOC_KV_SMALL=slab", NULL, SIGABRT,
	  "kalloc: slab: heap corruption at %p" },
	{ "kv", "wild_free", "KALLOC_KV_SMALL=slab", NULL, SIGABRT,
	  "kalloc: kv: heap corruption at %p" },
	{ "kv", "foreign_free", "KALLOC_KV_SMALL=slab", "libc", SIGABRT,
	  "kalloc: kv: heap corruption at %p" },
	{ "kv", "realloc_after_free", "KALLOC_KV_SMALL=slab", NULL, SIGABRT,
	  "kalloc: slab: heap corruption at %p" },
	/* gperftools 2.10: tc_free checks its page map ("Attempt to free
	 * invalid pointer"), verified here on the library itself. */
	{ "tcmalloc", "wild_free", NULL, NULL, SIGABRT,
	  "Attempt to free invalid pointer %p" },
	{ "tcmalloc", "foreign_free", NULL, "libc", SIGABRT,
	  "Attempt to free invalid pointer %p" },
};

static const char *const cases[] = {
	"double_free", "interior_free", "wild_free", "foreign_free",
	"realloc_after_free", "overflow",
};

/* Never allocated; the 16 bytes before wild + 64 read as a zero header. */
static _Alignas(64) unsigned char wild[256];

static kalloc_t *open_or_die(const char *backend)
{
	kalloc_t *a;
	if (kalloc_open(backend, NULL, &a)) {
		fprintf(stderr, "misuse: cannot open '%s': %s\n", backend,
			kalloc_errmsg());
		_exit(3);
	}
	return a;
}

static unsigned char *alloc64(kalloc_t *a, size_t *len)
{
	kalloc_buf_t b;
	if (kalloc_alloc(a, KALLOC_LAYOUT(64, 16), KALLOC_ZERO, &b)) {
		fprintf(stderr, "misuse: alloc failed: %s\n", kalloc_errmsg());
		_exit(3);
	}
	if (len)
		*len = b.len;
	return b.ptr;
}

/* Tells the parent which pointer is about to be misused. */
static void report(int fd, const void *p)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%p", p);
	if (write(fd, line, (size_t)n) != n)
		_exit(3);
}

/* Says where a SIGSEGV hit ("%p" format, by hand: in a signal handler),
 * then returns to fault again with the default action. */
static void segv_at(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char line[64] = "misuse: SIGSEGV at 0x";
	size_t n = strlen(line);
	uintptr_t v = (uintptr_t)si->si_addr;
	int shift = 60;
	while (shift > 0 && !((v >> shift) & 0xf))
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		line[n++] = "0123456789abcdef"[(v >> shift) & 0xf];
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0)
		_exit(3);
}

/* The child: does the misuse; returning means it went unnoticed. */
static void misuse(const char *backend, const char *what, const struct expect *e,
		   int fd)
{
	struct rlimit no_core = { 0, 0 };
	setrlimit(RLIMIT_CORE, &no_core);
	alarm(10);
	signal(e->signal, SIG_DFL); /* not a sanitizer's report-and-exit */
	if (e->signal == SIGSEGV) {
		struct sigaction sa = { .sa_sigaction = segv_at,
					.sa_flags = SA_SIGINFO | SA_RESETHAND };
		sigaction(SIGSEGV, &sa, NULL);
	}
	if (e->env && putenv((char *)e->env))
		_exit(3);
	kalloc_t *a = open_or_die(backend);
	kalloc_layout_t unknown = KALLOC_LAYOUT_UNKNOWN; /* as kfree() */
	size_t len;
	unsigned char *p;
	if (strcmp(what, "double_free") == 0) {
		p = alloc64(a, NULL);
		report(fd, p);
		kalloc_free(a, p, unknown);
		kalloc_free(a, p, unknown);
	} else if (strcmp(what, "interior_free") == 0) {
		p = alloc64(a, NULL);
		report(fd, p + 16);
		kalloc_free(a, p + 16, unknown);
	} else if (strcmp(what, "wild_free") == 0) {
		report(fd, wild + 64);
		kalloc_free(a, wild + 64, unknown);
	} else if (strcmp(what, "foreign_free") == 0) {
		kalloc_t *from;
		if (kalloc_open(e->from, NULL, &from))
			_exit(CHILD_NO_FROM);
		p = alloc64(from, NULL);
		report(fd, p);
		kalloc_free(a, p, unknown);
	} else if (strcmp(what, "realloc_after_free") == 0) {
		p = alloc64(a, NULL);
		kalloc_free(a, p, unknown);
		report(fd, p);
		kalloc_buf_t out;
		kalloc_realloc(a, p, KALLOC_LAYOUT(4096, 16), unknown, 0, &out);
	} else if (strcmp(what, "overflow") == 0) {
		p = alloc64(a, &len);
		report(fd, p + len);
		((volatile unsigned char *)p)[len] = 0x5a;
		kalloc_free(a, p, KALLOC_LAYOUT(64, 16));
	}
}

/* Reads fd to its end into buf (NUL-terminated, truncated to cap - 1). */
static void slurp(int fd, char *buf, size_t cap)
{
	size_t used = 0;
	for (;;) {
		char tmp[4096];
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n <= 0)
			break;
		size_t take = (size_t)n < cap - 1 - used ? (size_t)n : cap - 1 - used;
		memcpy(buf + used, tmp, take);
		used += take;
	}
	buf[used] = 0;
}

/* e->stderr_has with "%p" replaced by the reported pointer. */
static void wanted_text(const struct expect *e, const char *ptr, char *out,
			size_t cap)
{
	const char *at = strstr(e->stderr_has, "%p");
	if (!at)
		snprintf(out, cap, "%s", e->stderr_has);
	else
		snprintf(out, cap, "%.*s%s%s", (int)(at - e->stderr_has),
			 e->stderr_has, ptr, at + 2);
}

static int run(const char *backend, const char *what, const struct expect *e)
{
	int err_pipe[2], ptr_pipe[2];
	if (pipe(err_pipe) || pipe(ptr_pipe))
		return 1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(err_pipe[0]);
		close(ptr_pipe[0]);
		dup2(err_pipe[1], STDERR_FILENO);
		misuse(backend, what, e, ptr_pipe[1]);
		fprintf(stderr, "misuse: survived\n");
		_exit(0);
	}
	close(err_pipe[1]);
	close(ptr_pipe[1]);
	char err[16384], ptr[64], want[512];
	slurp(err_pipe[0], err, sizeof(err));
	slurp(ptr_pipe[0], ptr, sizeof(ptr));
	int status;
	waitpid(pid, &status, 0);
	wanted_text(e, ptr, want, sizeof(want));
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_NO_FROM) {
		printf("%s/%s: needs backend '%s', which does not open\n", backend,
		       what, e->from);
		return SKIP;
	}

	printf("%s/%s: misused pointer %s; child stderr:\n%s", backend, what,
	       ptr[0] ? ptr : "(none reported)", err);
	int got = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	if (got != e->signal) {
		if (got)
			printf("FAIL: child killed by signal %d (%s), expected %d (%s)\n",
			       got, strsignal(got), e->signal, strsignal(e->signal));
		else
			printf("FAIL: child exited with %d, expected signal %d (%s)\n",
			       WEXITSTATUS(status), e->signal, strsignal(e->signal));
		return 1;
	}
	if (!strstr(err, want)) {
		printf("FAIL: stderr lacks \"%s\"\n", want);
		return 1;
	}
	printf("ok: signal %d (%s) and \"%s\"\n", got, strsignal(got), want);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 5) {
		fprintf(stderr, "usage: %s BACKEND CASE [SIGNAL SUBSTRING]\n", argv[0]);
		return 2;
	}
	const char *backend = argv[1], *what = argv[2];
	bool known = false;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		known |= strcmp(cases[i], what) == 0;
	if (!known) {
		fprintf(stderr, "misuse: unknown case '%s'\n", what);
		return 2;
	}
	if (RUNNING_ON_VALGRIND) {
		printf("skipped under valgrind (it replaces malloc's own checks)\n");
		return SKIP;
	}
	struct expect given;
	const struct expect *e = NULL;
	if (argc == 5) {
		const char *from = getenv("KALLOC_MISUSE_FROM");
		given = (struct expect){ backend, what, NULL,
					 strcmp(what, "foreign_free") ? NULL :
					 from ? from : "libc",
					 atoi(argv[3]), argv[4] };
		e = &given;
	}
	for (size_t i = 0; !e && i < sizeof(expectations) / sizeof(expectations[0]); i++)
		if (strcmp(expectations[i].backend, backend) == 0 &&
		    strcmp(expectations[i].misuse, what) == 0)
			e = &expectations[i];
	if (!e) {
		printf("%s/%s: not promised (undefined, not detected); see "
		       "tests/README.md\n", backend, what);
		return SKIP;
	}
	/* No kalloc call here: the child starts from a process that has none. */
	return run(backend, what, e);
}

/*
 * Subjects: who is measured, and how one measurement is run (a fresh
 * child process per measurement, with the environment that subject needs).
 */
#include "driver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *const ref_names[NREFS] = { "glibc", "jemalloc", "tcmalloc",
				       "mimalloc" };

/* Backends tried when --backends is not given, in table order. */
static const char *const default_backends[] = {
	"libc", "slab", "page", "kv", "jemalloc", "tcmalloc", "mimalloc",
};

/* The libraries preloaded for the reference rows of the malloc group. */
static const struct {
	int ref;
	const char *so;
} preload_libs[] = {
	{ REF_JEMALLOC, "libjemalloc.so.2" },
	{ REF_TCMALLOC, "libtcmalloc_minimal.so.4" },
	{ REF_MIMALLOC, "libmimalloc.so.2" },
};

static int ref_of_backend(const char *name)
{
	if (strcmp(name, "libc") == 0)
		return REF_GLIBC;
	for (int r = REF_JEMALLOC; r < NREFS; r++)
		if (strcmp(name, ref_names[r]) == 0)
			return r;
	return -1;
}

static struct subject *add(struct bench *b, enum kind k, enum group g,
			   int ref, const char *label)
{
	if (b->ns == MAX_SUBJECTS) {
		fprintf(stderr, "kalloc-bench: more than %d subjects; '%s' "
			"dropped\n", MAX_SUBJECTS, label);
		return NULL;
	}
	struct subject *s = &b->s[b->ns++];
	memset(s, 0, sizeof(*s));
	snprintf(s->label, sizeof(s->label), "%s", label);
	s->kind = k;
	s->group = g;
	s->ref = ref;
	s->available = 1;
	snprintf(s->arg, sizeof(s->arg), "-");
	return s;
}

/* A helper executable: next to kalloc-bench (build tree, or an install
 * that put them together), else in the installed helper directory. */
static int find_helper(const struct bench *b, const char *name, char *out,
		       size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", b->self_dir, name);
	if (n > 0 && (size_t)n < cap && access(out, X_OK) == 0)
		return 0;
	n = snprintf(out, cap, "%s/%s", KALLOC_BENCH_HELPERDIR, name);
	return n > 0 && (size_t)n < cap ? access(out, X_OK) : -1;
}

static void need_helper(const struct bench *b, struct subject *s,
			const char *name)
{
	if (find_helper(b, name, s->exe, sizeof(s->exe))) {
		s->available = 0;
		snprintf(s->why, sizeof(s->why), "%s was not built (its library "
			 "was not found at build time)", name);
	}
}

/* Copies src into a field of cap bytes; -1 after saying so if it does not
 * fit (a cut plugin path would name another file, or none). */
static int set_field(char *dst, size_t cap, const char *src, const char *what)
{
	size_t n = strlen(src);
	if (n >= cap) {
		fprintf(stderr, "kalloc-bench: %s '%s' is %zu bytes long, more "
			"than the %zu this program keeps\n", what, src, n, cap - 1);
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int subjects_build(struct bench *b)
{
	const struct run_config *c = &b->cfg;
	char self[PATH_MAX + 16];
	if (snprintf(self, sizeof(self), "%s/kalloc-bench", b->self_dir) < 0)
		self[0] = '\0';

	/* kalloc backends through the kalloc API */
	char defaults[256] = "";
	for (size_t i = 0; i < sizeof(default_backends) /
			       sizeof(default_backends[0]); i++) {
		strcat(defaults, i ? "," : "");
		strcat(defaults, default_backends[i]);
	}
	char *list = strdup(c->backends ? c->backends : defaults);
	if (!list) {
		fprintf(stderr, "kalloc-bench: out of memory\n");
		return -1;
	}
	char *save = NULL;
	for (char *name = strtok_r(list, ",", &save); name;
	     name = strtok_r(NULL, ",", &save)) {
		/* a plugin path is labelled by its file name */
		const char *label = strrchr(name, '/') ? strrchr(name, '/') + 1
						       : name;
		if (strlen(label) >= sizeof(b->s[0].label) - 8) { /* "shim:" */
			fprintf(stderr, "kalloc-bench: backend name '%s' is longer "
				"than the %zu bytes a label keeps\n", label,
				sizeof(b->s[0].label) - 9);
			free(list);
			return -1;
		}
		struct subject *s = add(b, K_API, G_API, ref_of_backend(name),
					label);
		if (!s)
			break;
		snprintf(s->exe, sizeof(s->exe), "%s", self);
		if (set_field(s->arg, sizeof(s->arg), name, "backend")) {
			free(list);
			return -1;
		}
	}
	free(list);

	/* the libraries through their own API */
	if (c->direct) {
		for (int r = REF_JEMALLOC; r < NREFS; r++) {
			char label[64], helper[64];
			snprintf(label, sizeof(label), "direct:%s", ref_names[r]);
			snprintf(helper, sizeof(helper), "kalloc-bench-%s",
				 ref_names[r]);
			struct subject *s = add(b, K_DIRECT, G_API, r, label);
			if (s)
				need_helper(b, s, helper);
		}
	}

	/* the malloc program: plain, and with each library preloaded */
	if (c->direct || c->preload) {
		struct subject *s = add(b, K_PLAIN, G_MALLOC, REF_GLIBC,
					"malloc:glibc");
		if (s) {
			need_helper(b, s, "kalloc-bench-malloc");
			s->expect = "libc.so";
		}
	}
	if (c->preload) {
		for (size_t i = 0; i < sizeof(preload_libs) /
				       sizeof(preload_libs[0]); i++) {
			char label[64];
			snprintf(label, sizeof(label), "preload:%s",
				 ref_names[preload_libs[i].ref]);
			struct subject *s = add(b, K_PRELOAD, G_MALLOC,
						preload_libs[i].ref, label);
			if (!s)
				continue;
			need_helper(b, s, "kalloc-bench-malloc");
			snprintf(s->preload, sizeof(s->preload), "%s",
				 preload_libs[i].so);
			s->expect = ref_names[preload_libs[i].ref];
		}
	}
	return 0;
}

static void probe_one(struct bench *b, int si)
{
	struct subject *s = &b->s[si];
	if (!s->available)
		return;
	struct sample x;
	if (subject_run(b, si, NULL, 1, &x, s->why, sizeof(s->why)))
		s->available = 0;
}

/* The kalloc shim's rows: one per kalloc backend that opened. */
static void add_shim_rows(struct bench *b)
{
	const char *shim = b->cfg.shim;
	if (!shim || !*shim) {
		struct subject *s = add(b, K_SHIM, G_MALLOC, -1, "shim:*");
		if (s) {
			s->available = 0;
			snprintf(s->why, sizeof(s->why), "no shim given (--shim "
				 "PATH to libkalloc-shim.so; kalloc bench passes it)");
		}
		return;
	}
	if (access(shim, R_OK)) {
		struct subject *s = add(b, K_SHIM, G_MALLOC, -1, "shim:*");
		if (s) {
			s->available = 0;
			snprintf(s->why, sizeof(s->why), "shim %s: %s", shim,
				 strerror(errno));
		}
		return;
	}
	const char *base = strrchr(shim, '/');
	base = base ? base + 1 : shim;
	int napi = b->ns;
	for (int i = 0; i < napi; i++) {
		if (b->s[i].kind != K_API || !b->s[i].available)
			continue;
		char label[sizeof(b->s[i].label) + 8];
		snprintf(label, sizeof(label), "shim:%s", b->s[i].label);
		struct subject *s = add(b, K_SHIM, G_MALLOC, -1, label);
		if (!s)
			return;
		need_helper(b, s, "kalloc-bench-malloc");
		snprintf(s->preload, sizeof(s->preload), "%s", shim);
		memcpy(s->backend, b->s[i].arg, sizeof(s->backend));
		s->expect = base;
	}
}

void subjects_probe(struct bench *b)
{
	int n = b->ns;
	for (int i = 0; i < n; i++)
		probe_one(b, i);
	int first_shim = b->ns;
	add_shim_rows(b);
	for (int i = first_shim; i < b->ns; i++)
		probe_one(b, i);
}

/* ---- one child ---------------------------------------------------------- */

static int dropped(const char *entry)
{
	static const char *const drop[] = {
		"LD_PRELOAD=", "KALLOC_BACKEND=", "GLIBC_TUNABLES=",
		"MALLOC_PERTURB_=", "MALLOC_CHECK_=",
	};
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		if (strncmp(entry, drop[i], strlen(drop[i])) == 0)
			return 1;
	return 0;
}

/*
 * The child's environment: ours, less what would change the allocator
 * under test (a stray LD_PRELOAD or KALLOC_BACKEND, glibc's perturbation
 * and checking), plus the subject's own.  Every child gets the static-TLS
 * room Debian's jemalloc needs to be dlopen'ed, so all run alike.
 */
static char **child_env(const struct subject *s)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 4, sizeof(*env));
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!dropped(environ[i]))
			env[k++] = environ[i];
	static char tunables[1024];
	const char *old = getenv("GLIBC_TUNABLES");
	if (old && strstr(old, "glibc.rtld.optional_static_tls"))
		snprintf(tunables, sizeof(tunables), "GLIBC_TUNABLES=%s", old);
	else
		snprintf(tunables, sizeof(tunables),
			 "GLIBC_TUNABLES=%s%sglibc.rtld.optional_static_tls=16384",
			 old ? old : "", old && *old ? ":" : "");
	env[k++] = tunables;
	static char preload[PATH_MAX + 16], backend[PATH_MAX + 16];
	if (s->preload[0]) {
		snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", s->preload);
		env[k++] = preload;
	}
	if (s->backend[0]) {
		snprintf(backend, sizeof(backend), "KALLOC_BACKEND=%s", s->backend);
		env[k++] = backend;
	}
	env[k] = NULL;
	return env;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Reads the child's stdout into out and passes its stderr through to ours,
 * keeping the last line of it in last (the reason of a failure), until both
 * reach EOF or the deadline; -1 on timeout.
 */
static int collect(int fd_out, int fd_err, char *out, size_t cap, char *last,
		   size_t lastcap, double deadline)
{
	size_t len = 0;
	char err[1024];
	size_t elen = 0;
	struct pollfd pfd[2] = { { fd_out, POLLIN, 0 }, { fd_err, POLLIN, 0 } };
	int open_fds = 2;
	last[0] = '\0';
	while (open_fds) {
		double left = deadline - now_s();
		if (left <= 0)
			return -1;
		int r = poll(pfd, 2, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		if (pfd[0].revents) {
			ssize_t got = len < cap - 1 ? read(fd_out, out + len, cap - 1 - len)
						   : 0;
			if (got > 0)
				len += (size_t)got;
			else if (got == 0 || errno != EINTR) {
				pfd[0].fd = -1;
				open_fds--;
			}
		}
		if (pfd[1].revents) {
			ssize_t got = read(fd_err, err + elen, sizeof(err) - 1 - elen);
			if (got > 0) {
				if (write(2, err + elen, (size_t)got) < 0)
					got = 0;
				elen += (size_t)got;
				err[elen] = '\0';
				/* keep the last complete line, drop what precedes */
				char *nl;
				while ((nl = strchr(err, '\n'))) {
					if (nl > err)
						snprintf(last, lastcap, "%.*s",
							 (int)(nl - err), err);
					elen -= (size_t)(nl + 1 - err);
					memmove(err, nl + 1, elen + 1);
				}
				if (elen == sizeof(err) - 1)
					elen = 0;
			} else if (got == 0 || errno != EINTR) {
				pfd[1].fd = -1;
				open_fds--;
			}
		}
	}
	if (elen)
		snprintf(last, lastcap, "%.*s", (int)elen, err);
	out[len] = '\0';
	return 0;
}

static int parse_ok(const char *line, struct sample *x, char *origin,
		    size_t ocap, char *version, size_t vcap)
{
	unsigned long long n, c;
	unsigned long h, bs;
	if (sscanf(line, "ok ns=%llu cpu_ns=%llu hwm_kb=%lu base_kb=%lu", &n, &c,
		   &h, &bs) != 4)
		return -1;
	*x = (struct sample){ (double)n, (double)c, (double)h, (double)bs };
	const char *o = strstr(line, " origin="), *v = strstr(line, " version=");
	if (!o || !v || v < o)
		return -1;
	snprintf(origin, ocap, "%.*s", (int)(v - o - 8), o + 8);
	const char *end = strchr(v, '\n');
	snprintf(version, vcap, "%.*s", (int)(end ? end - v - 9 : (long)strlen(v + 9)),
		 v + 9);
	return 0;
}

int subject_run(struct bench *b, int si, const bench_workload_t *w,
		int probe, struct sample *x, char *why, size_t whycap)
{
	struct subject *s = &b->s[si];
	char seed[32];
	snprintf(seed, sizeof(seed), "%llu", b->cfg.seed);
	char *argv[12];
	int k = 0;
	argv[k++] = s->exe;
	argv[k++] = "--child";
	argv[k++] = (char *)(w ? w->name : "-");
	argv[k++] = s->arg;
	if (b->cfg.quick)
		argv[k++] = "--quick";
	if (probe)
		argv[k++] = "--probe";
	if (b->cfg.have_seed) {
		argv[k++] = "--seed";
		argv[k++] = seed;
	}
	argv[k] = NULL;

	int fds[2], efds[2];
	if (pipe2(fds, O_CLOEXEC)) {
		snprintf(why, whycap, "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(efds, O_CLOEXEC)) {
		snprintf(why, whycap, "pipe: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	char **env = child_env(s);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_adddup2(&fa, efds[1], 2);
	pid_t pid;
	int err = env ? posix_spawn(&pid, s->exe, &fa, NULL, argv, env) : ENOMEM;
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(fds[1]);
	close(efds[1]);
	if (err) {
		close(fds[0]);
		close(efds[0]);
		snprintf(why, whycap, "cannot run %s: %s", s->exe, strerror(err));
		return -1;
	}
	char out[4096], last[512];
	int timeout = probe ? 30 : b->cfg.timeout;
	int timed_out = collect(fds[0], efds[0], out, sizeof(out), last,
				sizeof(last), now_s() + timeout);
	close(fds[0]);
	close(efds[0]);
	if (timed_out)
		kill(pid, SIGKILL);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		snprintf(why, whycap, "timed out after %d s (killed)", timeout);
		return -1;
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, whycap, "crashed: %s%s%s", strsignal(WTERMSIG(status)),
			 last[0] ? "; last message: " : "", last);
		return -1;
	}
	if (strncmp(out, "refused ", 8) == 0) {
		char *nl = strchr(out, '\n');
		if (nl)
			*nl = '\0';
		snprintf(why, whycap, "%s", out + 8);
		return -1;
	}
	if (WEXITSTATUS(status) != 0) {
		snprintf(why, whycap, "exit status %d: %s", WEXITSTATUS(status),
			 last[0] ? last : "(no message)");
		return -1;
	}
	if (parse_ok(out, x, s->origin, sizeof(s->origin), s->version,
		     sizeof(s->version))) {
		snprintf(why, whycap, "unreadable result: \"%.100s\"", out);
		return -1;
	}
	if (s->expect && !strstr(s->origin, s->expect)) {
		if (s->preload[0])
			snprintf(why, whycap, "LD_PRELOAD=%s not in effect: malloc "
				 "comes from %s", s->preload, s->origin);
		else
			snprintf(why, whycap, "malloc comes from %s, not %s",
				 s->origin, s->expect);
		return -1;
	}
	return 0;
}

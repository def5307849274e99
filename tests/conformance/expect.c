/*
 * conform-expect CONFORM PLUGIN [Gn ...]
 *
 * Runs kalloc-conform on PLUGIN and checks its report: exactly the listed
 * guarantees show FAIL and every other one PASS (SKIP only for G11, G15
 * and G16, whose capability a backend may not declare), one
 * line each; the closing line is exactly "N passed, N failed" (then
 * ", N not declared" when some were skipped) with the right counts; the exit status is 1 when something failed, else 0.
 * Echoes the report.  Exit 0 when all holds, 1 otherwise.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NG 17

static int die(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "expect: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n");
	return 1;
}

/* Runs argv, its stdout into out (NUL-terminated); returns exit status. */
static int run(char **argv, char *out, size_t cap)
{
	int p[2];
	if (pipe(p))
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while ((r = read(p[0], out + n, cap - 1 - n)) > 0 && n + 1 < cap)
		n += (size_t)r;
	out[n] = 0;
	close(p[0]);
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* The line starting with "Gi " (id then at least one space), or NULL;
 * *count is how many such lines there are. */
static const char *find_line(const char *report, const char *id, int *count)
{
	const char *found = NULL;
	size_t len = strlen(id);
	*count = 0;
	for (const char *l = report; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "")
		if (strncmp(l, id, len) == 0 && l[len] == ' ') {
			(*count)++;
			found = l;
		}
	return found;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: conform-expect CONFORM PLUGIN [Gn ...]\n");
		return 2;
	}
	static char report[1 << 16];
	char *cmd[] = { argv[1], argv[2], NULL };
	int status = run(cmd, report, sizeof(report));
	fputs(report, stdout);
	if (status < 0)
		return die("%s did not run or exit normally%s", argv[1], "");

	int passed = 0, failed = 0, skipped = 0;
	for (int i = 1; i <= NG; i++) {
		char id[8];
		snprintf(id, sizeof(id), "G%d", i);
		bool want_fail = false;
		for (int k = 3; k < argc; k++)
			want_fail |= strcmp(argv[k], id) == 0;
		int count;
		const char *line = find_line(report, id, &count);
		if (count != 1)
			return die("%s: want one result line, got another count%s",
				   id, "");
		size_t len = strcspn(line, "\n");
		char text[1024];
		snprintf(text, sizeof(text), "%.*s", (int)len, line);
		bool pass = len >= 5 && strcmp(text + len - 5, " PASS") == 0;
		bool fail = strstr(text, " FAIL: ") != NULL;
		bool skip = strstr(text, " SKIP: ") != NULL;
		if (pass + fail + skip != 1)
			return die("no single verdict in: %s%s", text, "");
		if (skip && i != 11 && i != 15 && i != 16)
			return die("only G11, G15 and G16 may be skipped (a "
				   "capability not declared): %s%s", text, "");
		if (want_fail && !fail)
			return die("%s: want FAIL, got: %s", id, text);
		if (!want_fail && fail)
			return die("%s: want PASS, got: %s", id, text);
		passed += pass;
		failed += fail;
		skipped += skip;
	}

	const char *end = report + strlen(report);
	while (end > report && end[-1] == '\n')
		end--;
	const char *last = end;
	while (last > report && last[-1] != '\n')
		last--;
	char want[64], got[128];
	if (skipped)
		snprintf(want, sizeof(want), "%d passed, %d failed, %d not declared",
			 passed, failed, skipped);
	else
		snprintf(want, sizeof(want), "%d passed, %d failed", passed,
			 failed);
	snprintf(got, sizeof(got), "%.*s", (int)(end - last), last);
	if (strcmp(got, want) != 0)
		return die("closing line '%s', want '%s'", got, want);
	if (status != (failed ? 1 : 0)) {
		char s[16];
		snprintf(s, sizeof(s), "%d", status);
		return die("exit status %s does not match the failures (%s)", s,
			   want);
	}
	printf("expect: report as expected\n");
	return 0;
}

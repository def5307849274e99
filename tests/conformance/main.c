/*
 * kalloc-conform: the conformance suite, run on one backend.
 *
 *     kalloc-conform BACKEND|PLUGIN.so
 *
 * Opens the backend with kalloc_open (a name looked up in the plugin path,
 * or a plugin file), runs one Check test case per guarantee G1-G17 of the
 * contract (docs/CONTRACT.md), each test in its own process so a crash is a FAIL,
 * and prints one line per guarantee:
 *
 *     G3  zero-fill .............. PASS
 *     G5  failure-keeps-block .... FAIL: <Check's message> [file:line]
 *     G11 nowait ................. SKIP: <why>
 *
 * then `N passed, N failed` (with `, N not declared` when guarantees were
 * skipped, named on the line before).  SKIP is only for a capability the backend
 * declares it lacks: G11 when it refuses both NOWAIT and ATOMIC (G14 then
 * proves the refusal), G15 without a fast table, G16 when it detects no
 * misuse.
 * Exit status: 0 all passed, 1 some failed, 2 usage error or the backend
 * could not be opened.  Guarantees left out by CK_RUN_CASE show NOT RUN
 * and are not counted.
 *
 * Every test reads the backend's declared capabilities (kalloc_info) and
 * works on any backend.  Check's variables apply: CK_FORK=no runs tests in
 * this process (for a debugger), CK_RUN_CASE=G3 runs one guarantee,
 * CK_DEFAULT_TIMEOUT replaces the 30 s per test (300 s under valgrind),
 * CK_TIMEOUT_MULTIPLIER scales it.
 */
#include "conform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

kalloc_t *conform_a;
kalloc_info_t conform_info;
int conform_slow;
int conform_tool;

static const struct guarantee guarantees[] = {
	{ "G1", "usable-buffer", g1_usable },
	{ "G2", "alignment", g2_alignment },
	{ "G3", "zero-fill", g3_zero },
	{ "G4", "realloc-content", g4_content },
	{ "G5", "failure-keeps-block", g5_failure },
	{ "G6", "free-and-null", g6_free_null },
	{ "G7", "zero-size-sentinel", g7_sentinel },
	{ "G8", "grow-and-shrink", g8_grow_shrink },
	{ "G9", "smaller-alignment", g9_smaller_align },
	{ "G10", "size-overflow", g10_overflow },
	{ "G11", "nowait", g11_nowait },
	{ "G12", "nowarn", g12_nowarn },
	{ "G13", "threads-and-fork", g13_threads },
	{ "G14", "refuses-unhonored", g14_refusal },
	{ "G15", "fast-entries", g15_fast },
	{ "G16", "declared-misuse", g16_misuse },
	{ "G17", "object-caches", g17_caches },
};
#define NGUARANTEES (sizeof(guarantees) / sizeof(guarantees[0]))

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kalloc-conform BACKEND|PLUGIN.so\n"
		"\n"
		"Runs libkalloc's conformance suite (guarantees G1-G17) on one\n"
		"backend: a name found in the plugin path (%s)\n"
		"or the path of a plugin file (containing '/' or ending in .so).\n"
		"Prints one line per guarantee (PASS, FAIL: why, or SKIP: why)\n"
		"and `N passed, N failed` (`, N not declared` after it when some\n"
		"were skipped).  SKIP is only for a capability the\n"
		"backend declares it lacks: G11 (NOWAIT and ATOMIC refused; G14\n"
		"then proves the refusal), G15 (no fast table), G16 (no misuse\n"
		"detected).\n"
		"\n"
		"Exit status: 0 all passed, 1 a guarantee failed, 2 usage error or\n"
		"the backend could not be opened.\n"
		"\n"
		"Environment (Check's): CK_RUN_CASE=G3 runs one guarantee;\n"
		"CK_FORK=no runs tests in this process (for a debugger);\n"
		"CK_DEFAULT_TIMEOUT=S replaces the per-test limit of 30 s (300 s\n"
		"under valgrind); CK_TIMEOUT_MULTIPLIER=N scales it;\n"
		"CK_VERBOSITY=verbose prints Check's own report too.\n"
		"KALLOC_PLUGIN_PATH: plugin directories searched first.\n",
		kalloc_plugin_path());
}

/* The header: backend, version, declared flags by name, limits. */
static void print_header(void)
{
	char flags[96];
	flag_names(conform_info.flags, flags, sizeof(flags));
	printf("kalloc-conform: backend %s (%s): flags %s, max_align %zu, "
	       "max_size %zu\n", conform_info.name, conform_info.version, flags,
	       conform_info.max_align, conform_info.max_size);
	printf("  plugin %s\n", conform_info.path);
}

/* Why a guarantee is skipped, or NULL when it runs. */
static const char *skip_reason(const struct guarantee *g)
{
	if (strcmp(g->id, "G11") == 0 &&
	    !(conform_info.flags & (KALLOC_NOWAIT | KALLOC_ATOMIC)))
		return "backend declares it refuses NOWAIT and ATOMIC "
		       "(G14 checks the refusal)";
	if (strcmp(g->id, "G15") == 0 && !conform_info.fast)
		return "backend declares no fast table";
	if (strcmp(g->id, "G16") == 0 && !conform_info.detects)
		return "backend declares it detects no misuse";
	return NULL;
}

/* "G3  zero-fill ........... " */
static void print_label(const struct guarantee *g)
{
	char label[40];
	int n = snprintf(label, sizeof(label), "%-4s%s ", g->id, g->name);
	while (n < 30)
		label[n++] = '.';
	label[n] = 0;
	printf("%s ", label);
}

/* Check's message on one line, with where it was raised. */
static void print_failure(TestResult *tr)
{
	char msg[600];
	snprintf(msg, sizeof(msg), "%s", tr_msg(tr) ? tr_msg(tr) : "no message");
	for (char *c = msg; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	const char *file = tr_lfile(tr);
	if (file && strrchr(file, '/'))
		file = strrchr(file, '/') + 1;
	printf("FAIL: %s", msg);
	if (file && tr_lno(tr) > 0)
		printf(" [%s:%d%s]", file, tr_lno(tr),
		       tr_rtype(tr) == CK_ERROR ? ", last checkpoint" : "");
	printf("\n");
}

/*
 * Debian's jemalloc loads only with static TLS room reserved at start-up
 * (GLIBC_TUNABLES, read by the dynamic loader): run again with it, as
 * `kalloc run` and `kalloc list` do, unless the user set a value.
 */
static void reexec_with_static_tls(char **argv)
{
	static const char want[] = "glibc.rtld.optional_static_tls=16384";
	const char *old = getenv("GLIBC_TUNABLES");
	if (old && strstr(old, "glibc.rtld.optional_static_tls="))
		return;
	char *v = malloc((old ? strlen(old) + 1 : 0) + sizeof(want));
	if (!v)
		return;
	sprintf(v, "%s%s%s", old && *old ? old : "", old && *old ? ":" : "",
		want);
	if (setenv("GLIBC_TUNABLES", v, 1) == 0) {
		fflush(NULL);
		execv("/proc/self/exe", argv);
	}
	free(v);
}

int main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
			  strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		usage(stderr);
		return 2;
	}
	int err = kalloc_open(argv[1], NULL, &conform_a);
	if (err && strstr(kalloc_errmsg(), "static TLS"))
		reexec_with_static_tls(argv); /* returns if it cannot */
	if (err) {
		fprintf(stderr, "kalloc-conform: cannot open backend '%s': %s\n",
			argv[1], kalloc_errmsg());
		return 2;
	}
	kalloc_info(conform_a, &conform_info);
	conform_slow = RUNNING_ON_VALGRIND;
#ifdef __SANITIZE_ADDRESS__
	/* ASan is the tool unless KALLOC_TOOLS=0 (the asan setup) */
	const char *tools = getenv("KALLOC_TOOLS");
	conform_tool = !tools || strcmp(tools, "0") != 0;
#else
	conform_tool = RUNNING_ON_VALGRIND;
#endif
	print_header();

	Suite *s = suite_create("conformance");
	bool skipped[NGUARANTEES] = { false };
	for (size_t i = 0; i < NGUARANTEES; i++) {
		skipped[i] = skip_reason(&guarantees[i]) != NULL;
		if (!skipped[i])
			suite_add_tcase(s, guarantees[i].tcase());
	}
	SRunner *sr = srunner_create(s);
	const char *verbosity = getenv("CK_VERBOSITY");
	fflush(stdout); /* Check forks: nothing buffered may be copied */
	srunner_run_all(sr, verbosity ? CK_ENV : CK_SILENT);

	TestResult **res = srunner_results(sr);
	int nres = srunner_ntests_run(sr);
	int passed = 0, failed = 0, skips = 0, notrun = 0;
	char skip_list[128] = "";
	for (size_t i = 0; i < NGUARANTEES; i++) {
		const struct guarantee *g = &guarantees[i];
		print_label(g);
		if (skipped[i]) {
			printf("SKIP: %s\n", skip_reason(g));
			skips++;
			strncat(skip_list, skip_list[0] ? ", " : "",
				sizeof(skip_list) - strlen(skip_list) - 1);
			strncat(skip_list, g->id,
				sizeof(skip_list) - strlen(skip_list) - 1);
			continue;
		}
		TestResult *bad = NULL;
		int ran = 0;
		for (int r = 0; r < nres; r++) {
			if (strcmp(tr_tcname(res[r]), g->id) != 0)
				continue;
			ran++;
			if (!bad && tr_rtype(res[r]) != CK_PASS)
				bad = res[r];
		}
		if (bad) {
			print_failure(bad);
			failed++;
		} else if (ran == 0) {
			printf("NOT RUN: CK_RUN_CASE selected other guarantees\n");
			notrun++;
		} else {
			printf("PASS\n");
			passed++;
		}
	}
	free(res);
	srunner_free(sr);
	kalloc_close(conform_a);
	if (skips)
		printf("not declared by the backend: %s\n", skip_list);
	if (notrun)
		printf("%d not run\n", notrun);
	if (skips)
		printf("%d passed, %d failed, %d not declared\n", passed, failed,
		       skips);
	else
		printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

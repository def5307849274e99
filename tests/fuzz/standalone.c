/*
 * A small stand-in for libFuzzer's main(), for builds where libFuzzer cannot
 * be linked: no clang, or a gcc sanitizer build (its runtime cannot mix with
 * clang's) or valgrind.  Same harness, same command line subset:
 *
 *     fuzz_X [-max_total_time=S] [-runs=N] [-seed=N] [-max_len=N] DIR|FILE...
 *
 * It runs every file given (directly or in a directory) once, then mutated
 * copies of them and random inputs until S seconds or N runs, whichever
 * comes first.  No coverage guidance: a replay-and-random-search driver.
 * Flags starting with "--" are left to the harness, as libFuzzer does.
 * An input that crashes is written to ./crash-standalone before dying.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_SEEDS 256

struct seed {
	uint8_t *data;
	size_t len;
};

static struct seed seeds[MAX_SEEDS];
static size_t nseeds;
static size_t max_len = 4096;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* The input being run, for the crash handler. */
static const uint8_t *cur_data;
static volatile size_t cur_len;

static void on_crash(int sig)
{
	int fd = open("crash-standalone", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, cur_data, cur_len);
		(void)w;
		close(fd);
		static const char msg[] = "standalone: crashing input saved to "
					  "./crash-standalone\n";
		w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Only where no one (a sanitizer runtime) handles the signal already. */
static void catch_crashes(void)
{
	static const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction old;
		if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL)
			signal(sigs[i], on_crash);
	}
}

static void run(const uint8_t *data, size_t len)
{
	cur_data = data;
	cur_len = len;
	LLVMFuzzerTestOneInput(data, len);
}

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void load_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "standalone: cannot read %s\n", path);
		exit(1);
	}
	uint8_t *buf = malloc(max_len);
	size_t n = buf ? fread(buf, 1, max_len, f) : 0;
	fclose(f);
	if (!buf)
		exit(1);
	if (nseeds < MAX_SEEDS)
		seeds[nseeds++] = (struct seed){ buf, n };
	else
		free(buf);
}

static void load(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "standalone: %s does not exist\n", path);
		exit(1);
	}
	if (!S_ISDIR(st.st_mode)) {
		load_file(path);
		return;
	}
	struct dirent **names;
	int n = scandir(path, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char file[4096];
		snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode))
			load_file(file);
		free(names[i]);
	}
	free(names);
}

/* A mutated seed, or random bytes when there are none (or one time in 8). */
static size_t make_input(uint8_t *buf)
{
	size_t len;
	if (!nseeds || next() % 8 == 0) {
		len = (size_t)(next() % max_len);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)next();
		return len;
	}
	const struct seed *s = &seeds[next() % nseeds];
	len = s->len;
	memcpy(buf, s->data, len);
	for (int edits = 1 + (int)(next() % 8); edits; edits--) {
		size_t at = len ? (size_t)(next() % len) : 0;
		switch (next() % 4) {
		case 0: /* flip a bit */
			if (len)
				buf[at] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1: /* overwrite a byte */
			if (len)
				buf[at] = (uint8_t)next();
			break;
		case 2: /* append random bytes */
			while (len < max_len && next() % 4)
				buf[len++] = (uint8_t)next();
			break;
		default: /* truncate */
			len = at;
			break;
		}
	}
	return len;
}

int main(int argc, char **argv)
{
	double max_time = 0;
	unsigned long long runs = ~0ull;
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "-max_total_time=", 16) == 0)
			max_time = atof(a + 16);
		else if (strncmp(a, "-runs=", 6) == 0)
			runs = strtoull(a + 6, NULL, 0);
		else if (strncmp(a, "-seed=", 6) == 0)
			rng = strtoull(a + 6, NULL, 0) | 1;
		else if (strncmp(a, "-max_len=", 9) == 0)
			max_len = strtoull(a + 9, NULL, 0);
		else if (a[0] == '-')
			; /* other libFuzzer flags, and "--" ones for the harness */
		else
			load(a);
	}
	if (max_len == 0)
		max_len = 1;
	catch_crashes();
	double start = now();
	unsigned long long done = 0;
	for (size_t i = 0; i < nseeds && done < runs; i++, done++)
		run(seeds[i].data, seeds[i].len);
	uint8_t *buf = malloc(max_len);
	if (!buf)
		return 1;
	while (done < runs && (max_time <= 0 ? done < nseeds + 1000 :
				now() - start < max_time)) {
		size_t len = make_input(buf);
		run(buf, len);
		done++;
	}
	fprintf(stderr, "standalone: %llu runs (%zu seed files) in %.1f s\n",
		done, nseeds, now() - start);
	free(buf);
	for (size_t i = 0; i < nseeds; i++)
		free(seeds[i].data);
	return 0;
}

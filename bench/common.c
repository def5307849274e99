/*
 * Allocation-free helpers for the workloads and the child runner: a clock,
 * /proc/self/status fields, bookkeeping memory from mmap, error lines.
 */
#include "bench.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Read with open/read into a stack buffer: stdio would malloc. */
unsigned long bench_status_kb(const char *field)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	size_t len = strlen(field);
	for (char *line = buf; line && *line; ) {
		if (strncmp(line, field, len) == 0 && line[len] == ':')
			return strtoul(line + len + 1, NULL, 10);
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return 0;
}

void *bench_map(size_t bytes)
{
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		static const char msg[] = "kalloc-bench: mmap for bookkeeping failed\n";
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(4);
		_exit(4);
	}
	return p;
}

void bench_unmap(void *p, size_t bytes)
{
	munmap(p, bytes ? bytes : 1);
}

int bench_fail(const char *workload, const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "kalloc-bench: %s: ", workload);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n >= sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(2, line, (size_t)n) < 0)
		return -1;
	return -1;
}

/* Error codes, this thread's last error message, and stderr reports. */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const err_text[KALLOC_ERR_COUNT] = {
	[KALLOC_OK] = "success",
	[KALLOC_ENOMEM] = "out of memory",
	[KALLOC_EINVAL] = "invalid argument",
	[KALLOC_EALIGN] = "alignment not supported",
	[KALLOC_EOVERFLOW] = "size overflows",
	[KALLOC_ENOTSUP] = "flag not supported by this backend",
	[KALLOC_EAGAIN] = "would block (NOWAIT/ATOMIC)",
	[KALLOC_ELIMIT] = "accounting limit reached",
	[KALLOC_EBUSY] = "still in use",
	[KALLOC_ENOENT] = "no such backend",
	[KALLOC_EABI] = "plugin ABI mismatch",
	[KALLOC_ELOAD] = "plugin failed to load",
};

const char *kalloc_strerror(int err)
{
	if (err < 0 || err >= KALLOC_ERR_COUNT)
		return "unknown error";
	return err_text[err];
}

/* Room for a message naming every searched plugin directory of a deep
 * checkout (the unknown-backend message, which shortens its list itself
 * to fit); anything longer ends in "..." to show it was cut. */
static _Thread_local char last_msg[4096];

#define CUT_MARK "..."

/* Marks a vsnprintf result n that did not fit in buf[cap]. */
static void mark_cut(char *buf, size_t cap, int n)
{
	if (n >= 0 && (size_t)n < cap)
		return;
	memcpy(buf + cap - sizeof(CUT_MARK), CUT_MARK, sizeof(CUT_MARK));
}

const char *kalloc_errmsg(void)
{
	return last_msg;
}

/* Formats through a copy: callers may pass kalloc_errmsg() as an argument. */
int kalloc__error(int err, const char *fmt, ...)
{
	char msg[sizeof(last_msg)];
	va_list ap;
	va_start(ap, fmt);
	mark_cut(msg, sizeof(msg), vsnprintf(msg, sizeof(msg), fmt, ap));
	va_end(ap);
	memcpy(last_msg, msg, sizeof(msg));
	return err;
}

/* Writes one whole line with a single write(2): no stdio buffer, no malloc. */
static void vlog(const char *who, const char *fmt, va_list ap)
{
	/* a whole error message (last_msg) and a prefix fit */
	char line[sizeof(last_msg) + 256];
	int n = snprintf(line, sizeof(line), "kalloc: %s%s", who ? who : "",
			 who ? ": " : "");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	size_t room = sizeof(line) - (size_t)n - 1; /* and the newline */
	int m = vsnprintf(line + n, room, fmt, ap);
	mark_cut(line + n, room, m);
	size_t len = strlen(line);
	line[len++] = '\n';
	ssize_t r = write(STDERR_FILENO, line, len);
	(void)r;
}

void kalloc__log(const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(who, fmt, ap);
	va_end(ap);
}

void kalloc__corruption(const char *who, const void *ptr, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	kalloc__log(who, "heap corruption at %p: %s; aborting", ptr, what);
	abort();
}

/*
 * The kernel's printk_ratelimit in spirit: at most BURST failure warnings per
 * INTERVAL seconds, then one line saying how many were suppressed.
 */
#define WARN_BURST 10
#define WARN_INTERVAL 5

static atomic_long warn_window; /* start of the current window, seconds */
static atomic_int warn_count;   /* warnings printed in this window */
static atomic_int warn_missed;  /* warnings suppressed since last print */

bool kalloc__warn_ratelimit(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	long now = (long)ts.tv_sec;
	long start = atomic_load_explicit(&warn_window, memory_order_relaxed);
	if (now - start >= WARN_INTERVAL &&
	    atomic_compare_exchange_strong(&warn_window, &start, now)) {
		atomic_store(&warn_count, 0);
		int missed = atomic_exchange(&warn_missed, 0);
		if (missed)
			kalloc__log(NULL, "%d allocation failure warnings suppressed",
				    missed);
	}
	if (atomic_fetch_add(&warn_count, 1) < WARN_BURST)
		return true;
	atomic_fetch_add(&warn_missed, 1);
	return false;
}

void kalloc__warn_failure(const kalloc_t *a, size_t size, size_t align,
			  kalloc_flags_t flags, int err)
{
	if ((flags & KALLOC_NOWARN) || !kalloc__warn_ratelimit())
		return;
	kalloc__log(a->p->name,
		    "allocation of %zu bytes (align %zu, flags 0x%x) failed: %s",
		    size, align, (unsigned)flags, last_msg[0] ? last_msg :
		    kalloc_strerror(err));
}

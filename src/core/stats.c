/*
 * Statistics: per-handle counters kept when FEAT_STATS is on, the backend's
 * own counters through its optional `stats` entry, and the KALLOC_STATS=1
 * table printed at exit.  Invariant: live = allocated - freed, in blocks and
 * in usable bytes, for blocks allocated while the counters were on.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void raise_peak(_Atomic int64_t *peak, int64_t now)
{
	int64_t p = atomic_load_explicit(peak, memory_order_relaxed);
	while (now > p && !atomic_compare_exchange_weak(peak, &p, now))
		;
}

void kalloc__stats_alloc(kalloc_t *a, size_t requested, size_t len)
{
	struct kalloc_counters *c = &a->stats;
	atomic_fetch_add_explicit(&c->allocs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->bytes_requested, requested,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&c->bytes_usable, len, memory_order_relaxed);
	raise_peak(&c->peak_bytes, atomic_fetch_add(&c->live_bytes,
						    (int64_t)len) + (int64_t)len);
	raise_peak(&c->peak_blocks, atomic_fetch_add(&c->live_blocks, 1) + 1);
}

void kalloc__stats_free(kalloc_t *a, size_t len)
{
	struct kalloc_counters *c = &a->stats;
	atomic_fetch_add_explicit(&c->frees, 1, memory_order_relaxed);
	atomic_fetch_sub(&c->live_bytes, (int64_t)len);
	atomic_fetch_sub(&c->live_blocks, 1);
}

void kalloc__stats_resize(kalloc_t *a, size_t requested, size_t old_len,
			  size_t len)
{
	struct kalloc_counters *c = &a->stats;
	atomic_fetch_add_explicit(&c->reallocs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->bytes_requested, requested,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&c->bytes_usable, len, memory_order_relaxed);
	int64_t delta = (int64_t)len - (int64_t)old_len;
	raise_peak(&c->peak_bytes, atomic_fetch_add(&c->live_bytes, delta) + delta);
}

void kalloc__stats_fail(kalloc_t *a)
{
	atomic_fetch_add_explicit(&a->stats.failures, 1, memory_order_relaxed);
}

int kalloc_stats(kalloc_t *a, kalloc_stats_t *out)
{
	if (!(atomic_load(&a->features) & FEAT_STATS))
		return kalloc__error(KALLOC_ENOTSUP,
				     "statistics are off for backend '%s': set "
				     "KALLOC_STATS=1 or open it with \"stats=1\"",
				     a->p->name);
	struct kalloc_counters *c = &a->stats;
	*out = (kalloc_stats_t){
		.allocs = atomic_load(&c->allocs),
		.reallocs = atomic_load(&c->reallocs),
		.frees = atomic_load(&c->frees),
		.failures = atomic_load(&c->failures),
		.bytes_requested = atomic_load(&c->bytes_requested),
		.bytes_usable = atomic_load(&c->bytes_usable),
		.live_bytes = atomic_load(&c->live_bytes),
		.live_blocks = atomic_load(&c->live_blocks),
		.peak_bytes = atomic_load(&c->peak_bytes),
		.peak_blocks = atomic_load(&c->peak_blocks),
	};
	return KALLOC_OK;
}

struct counting {
	kalloc_stats_fn fn;
	void *ctx;
	int n;
};

static void count_one(void *ctx, const char *group, const char *key,
		      uint64_t value)
{
	struct counting *c = ctx;
	c->fn(c->ctx, group, key, value);
	c->n++;
}

/* A cache is a group named after it, with /proc/slabinfo's columns. */
static void count_cache(const kalloc_cache_t *cache, void *ctx)
{
	kalloc_cache_stats_t s;
	kalloc_cache_stats(cache, &s);
	const char *g = kalloc_cache_name(cache);
	count_one(ctx, g, "active_objs", s.active_objs);
	count_one(ctx, g, "num_objs", s.num_objs);
	count_one(ctx, g, "objsize", s.objsize);
	count_one(ctx, g, "failures", s.failures);
	count_one(ctx, g, "constructed", s.constructed);
}

int kalloc_stats_foreach(kalloc_t *a, kalloc_stats_fn fn, void *ctx)
{
	struct counting c = { fn, ctx, 0 };
	kalloc_stats_t s;
	if (kalloc_stats(a, &s) == KALLOC_OK) {
		const struct {
			const char *key;
			uint64_t v;
		} core[] = {
			{ "allocs", s.allocs },
			{ "reallocs", s.reallocs },
			{ "frees", s.frees },
			{ "failures", s.failures },
			{ "bytes_requested", s.bytes_requested },
			{ "bytes_usable", s.bytes_usable },
			{ "live_bytes", (uint64_t)s.live_bytes },
			{ "live_blocks", (uint64_t)s.live_blocks },
			{ "peak_bytes", (uint64_t)s.peak_bytes },
			{ "peak_blocks", (uint64_t)s.peak_blocks },
		};
		for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
			count_one(&c, "core", core[i].key, core[i].v);
	}
	if (a->ops->stats)
		a->ops->stats(a->state, count_one, &c);
	kalloc__caches_foreach(a, count_cache, &c);
	return c.n;
}

/* ---- the table -------------------------------------------------------- */

struct printer {
	int fd;
	char last_group[64];
};

static void put(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(int fd, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0) {
		ssize_t r = write(fd, line, (size_t)n < sizeof(line) ? (size_t)n :
				  sizeof(line) - 1);
		(void)r;
	}
}

static void print_backend_stat(void *ctx, const char *group, const char *key,
			       uint64_t value)
{
	struct printer *p = ctx;
	if (strcmp(p->last_group, group)) {
		snprintf(p->last_group, sizeof(p->last_group), "%s", group);
		put(p->fd, "    %-18s", group);
	} else {
		put(p->fd, "    %-18s", "");
	}
	put(p->fd, " %-20s %" PRIu64 "\n", key, value);
}

/* A cache's line under its handle, /proc/slabinfo's first columns. */
static void print_cache(const kalloc_cache_t *cache, void *ctx)
{
	int fd = *(int *)ctx;
	kalloc_cache_stats_t s;
	kalloc_cache_stats(cache, &s);
	put(fd, "    cache %-20s active_objs %8" PRIu64 "  num_objs %8" PRIu64
		"  objsize %6zu  constructed %10" PRIu64 "  failed %6" PRIu64
		"\n", kalloc_cache_name(cache), s.active_objs, s.num_objs,
	    s.objsize, s.constructed, s.failures);
}

static void print_handle(kalloc_t *a, void *ctx)
{
	int fd = *(int *)ctx;
	kalloc_stats_t s;
	if (kalloc_stats(a, &s) != KALLOC_OK)
		return;
	put(fd, "%-10s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8" PRIu64
		" %14" PRIu64 " %12" PRId64 " %12" PRId64 " %10" PRId64
		" %10" PRId64 "\n", a->p->name, s.allocs, s.reallocs, s.frees,
	    s.failures, s.bytes_requested, s.live_bytes, s.peak_bytes,
	    s.live_blocks, s.peak_blocks);
	if (a->ops->stats) {
		struct printer p = { .fd = fd };
		a->ops->stats(a->state, print_backend_stat, &p);
	}
	kalloc__caches_foreach(a, print_cache, ctx);
}

void kalloc_stats_print(int fd)
{
	put(fd, "kalloc statistics (pid %d)\n", (int)getpid());
	put(fd, "%-10s %10s %10s %10s %8s %14s %12s %12s %10s %10s\n", "backend",
	    "allocs", "reallocs", "frees", "failed", "requested", "live-bytes",
	    "peak-bytes", "live-blks", "peak-blks");
	kalloc__foreach_handle(print_handle, &fd);
}

/*
 * Statistics: per-handle counters kept when FEAT_STATS is on, the backend's
 * own counters through its optional `stats` entry, and the KALLOC_STATS=1
 * table printed at exit.  Invariant: live = allocated - freed, in blocks and
 * in usable bytes, for blocks allocated while the counters were on.
 */
#include "internal.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
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
	if (s.num_slabs) {
		count_one(ctx, g, "objperslab", s.objperslab);
		count_one(ctx, g, "pagesperslab", s.pagesperslab);
		count_one(ctx, g, "num_slabs", s.num_slabs);
		count_one(ctx, g, "merged", s.merged);
	}
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

/*
 * KALLOC_STATS=1 prints, per handle: the core's counters as one row, the
 * backend's global counters (groups without objsize) as "key value" lists
 * wrapped a few to a line, then one row per size class or cache (groups
 * with objsize) in /proc/slabinfo's columns plus ours, sorted by bytes in
 * use.  KALLOC_STATS=json prints the same as one JSON object.  Collected
 * in static memory (this runs at exit, maybe under the shim: no malloc),
 * under a lock.
 */
#define MAX_GROUPS 256
#define MAX_KEYS 1536
#define NAME_LEN 48

static const char *const row_cols[] = {
	"active_objs", "num_objs", "objsize", "objperslab", "pagesperslab",
	"num_slabs", "constructed", "failures",
};
#define NCOLS (sizeof(row_cols) / sizeof(row_cols[0]))

struct kv {
	char key[32];
	uint64_t value;
	int group;
};

static struct collected {
	struct group {
		char name[NAME_LEN];
		bool row;        /* has objsize: a class or a cache */
		uint64_t col[NCOLS];
		bool has[NCOLS];
	} g[MAX_GROUPS];
	int ng;
	struct kv kv[MAX_KEYS]; /* every counter, in order */
	int nkv;
	bool cut;               /* more than fit: said at the end */
} coll;
static pthread_mutex_t coll_lock = PTHREAD_MUTEX_INITIALIZER;

static int group_index(const char *name)
{
	for (int i = coll.ng - 1; i >= 0; i--)
		if (!strncmp(coll.g[i].name, name, NAME_LEN - 1))
			return i;
	if (coll.ng == MAX_GROUPS)
		return -1;
	struct group *g = &coll.g[coll.ng];
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	return coll.ng++;
}

static void collect(void *ctx, const char *group, const char *key,
		    uint64_t value)
{
	(void)ctx;
	int gi = group_index(group);
	if (gi < 0 || coll.nkv == MAX_KEYS) {
		coll.cut = true;
		return;
	}
	struct kv *k = &coll.kv[coll.nkv++];
	snprintf(k->key, sizeof(k->key), "%s", key);
	k->value = value;
	k->group = gi;
	for (size_t c = 0; c < NCOLS; c++)
		if (!strcmp(key, row_cols[c])) {
			coll.g[gi].col[c] = value;
			coll.g[gi].has[c] = true;
		}
	if (!strcmp(key, "objsize"))
		coll.g[gi].row = true;
}

static uint64_t in_use(const struct group *g)
{
	return g->col[0] * g->col[2]; /* active_objs * objsize */
}

static void collect_handle(kalloc_t *a)
{
	coll.ng = coll.nkv = 0;
	coll.cut = false;
	if (a->ops->stats)
		a->ops->stats(a->state, collect, NULL);
	kalloc__caches_foreach(a, count_cache,
			       &(struct counting){ collect, NULL, 0 });
}

/* Buffered output on the stack, written with write(2) when full. */
struct out {
	int fd;
	int items; /* JSON: handles written */
	size_t n;
	char buf[4096];
};

static void flush(struct out *o)
{
	size_t done = 0;
	while (done < o->n) {
		ssize_t r = write(o->fd, o->buf + done, o->n - done);
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	o->n = 0;
}

static void put(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1; /* names are at most NAME_LEN */
	if (o->n + (size_t)n > sizeof(o->buf))
		flush(o);
	memcpy(o->buf + o->n, line, (size_t)n);
	o->n += (size_t)n;
}

static void print_core(struct out *o, kalloc_t *a, const kalloc_stats_t *s)
{
	put(o, "%-12s %10s %10s %10s %8s %14s %12s %12s %10s %10s\n", "backend",
	    "allocs", "reallocs", "frees", "failed", "requested", "live-bytes",
	    "peak-bytes", "live-blks", "peak-blks");
	put(o, "%-12s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %8" PRIu64
	       " %14" PRIu64 " %12" PRId64 " %12" PRId64 " %10" PRId64
	       " %10" PRId64 "\n", a->p->name, s->allocs, s->reallocs, s->frees,
	    s->failures, s->bytes_requested, s->live_bytes, s->peak_bytes,
	    s->live_blocks, s->peak_blocks);
}

/* The backend's global counters: "group: key value, key value", wrapped. */
static void print_globals(struct out *o)
{
	for (int gi = 0; gi < coll.ng; gi++) {
		if (coll.g[gi].row)
			continue;
		int col = 0;
		for (int k = 0; k < coll.nkv; k++) {
			if (coll.kv[k].group != gi)
				continue;
			char item[96];
			int n = snprintf(item, sizeof(item), "%s %" PRIu64,
					 coll.kv[k].key, coll.kv[k].value);
			if (col == 0 || col + n + 2 > 100) {
				put(o, "%s%s:", col ? "\n" : "", coll.g[gi].name);
				col = (int)strlen(coll.g[gi].name) + 1;
			} else {
				put(o, ",");
				col++;
			}
			put(o, " %s", item);
			col += n + 1;
		}
		if (col)
			put(o, "\n");
	}
}

/* One row per class or cache, by bytes in use (most first). */
static void print_rows(struct out *o)
{
	int order[MAX_GROUPS], n = 0;
	for (int gi = 0; gi < coll.ng; gi++)
		if (coll.g[gi].row)
			order[n++] = gi;
	if (!n)
		return;
	for (int i = 1; i < n; i++) /* insertion sort: a few dozen rows */
		for (int j = i; j > 0 && in_use(&coll.g[order[j - 1]]) <
					    in_use(&coll.g[order[j]]); j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	put(o, "# %-22s %11s %10s %8s %10s %12s %9s %12s %11s %8s\n", "name",
	    "active_objs", "num_objs", "objsize", "objperslab", "pagesperslab",
	    "num_slabs", "in_use_bytes", "constructed", "failures");
	for (int i = 0; i < n; i++) {
		const struct group *g = &coll.g[order[i]];
		static const int width[NCOLS] = { 11, 10, 8, 10, 12, 9, 11, 8 };
		put(o, "  %-22s", g->name);
		for (size_t c = 0; c < 6; c++)
			g->has[c] ? put(o, " %*" PRIu64, width[c], g->col[c])
				  : put(o, " %*s", width[c], "-");
		put(o, " %12" PRIu64, in_use(g));
		for (size_t c = 6; c < NCOLS; c++)
			g->has[c] ? put(o, " %*" PRIu64, width[c], g->col[c])
				  : put(o, " %*s", width[c], "-");
		put(o, "\n");
	}
}

static void print_handle(kalloc_t *a, void *ctx)
{
	struct out *o = ctx;
	kalloc_stats_t s;
	if (kalloc_stats(a, &s) != KALLOC_OK)
		return;
	if (!o->items++) /* a title only above some table */
		put(o, "kalloc statistics (pid %d)\n", (int)getpid());
	put(o, "\n");
	print_core(o, a, &s);
	collect_handle(a);
	print_globals(o);
	print_rows(o);
	if (coll.cut)
		put(o, "(more counters than this table holds: see "
		       "kalloc_stats_foreach)\n");
}

void kalloc_stats_print(int fd)
{
	struct out o = { .fd = fd };
	pthread_mutex_lock(&coll_lock);
	kalloc__foreach_handle(print_handle, &o);
	pthread_mutex_unlock(&coll_lock);
	flush(&o);
}

/* ---- /proc/slabinfo ---------------------------------------------------- */

/*
 * KALLOC_STATS=slabinfo: the rows of every handle in the kernel's
 * /proc/slabinfo format (version 2.1, as SLUB prints it: no tunables,
 * active_slabs == num_slabs), so that tools reading that file read this.
 */
static void slabinfo_handle(kalloc_t *a, void *ctx)
{
	struct out *o = ctx;
	collect_handle(a);
	for (int gi = 0; gi < coll.ng; gi++) {
		const struct group *g = &coll.g[gi];
		if (!g->row)
			continue;
		/* active_objs num_objs objsize objperslab pagesperslab */
		put(o, "%-17s %6" PRIu64 " %6" PRIu64 " %6" PRIu64 " %4" PRIu64
		    " %4" PRIu64 " : tunables %4d %4d %4d : slabdata %6" PRIu64
		    " %6" PRIu64 " %6d\n", g->name, g->col[0], g->col[1],
		    g->col[2], g->col[3], g->col[4], 0, 0, 0, g->col[5],
		    g->col[5], 0);
	}
}

void kalloc__stats_print_slabinfo(int fd)
{
	struct out o = { .fd = fd };
	put(&o, "slabinfo - version: 2.1\n# name            <active_objs> "
	    "<num_objs> <objsize> <objperslab> <pagesperslab> : tunables "
	    "<limit> <batchcount> <sharedfactor> : slabdata <active_slabs> "
	    "<num_slabs> <sharedavail>\n");
	pthread_mutex_lock(&coll_lock);
	kalloc__foreach_handle(slabinfo_handle, &o);
	pthread_mutex_unlock(&coll_lock);
	flush(&o);
}

/* ---- JSON -------------------------------------------------------------- */

/* Names are backend and cache names: escape what JSON requires. */
static void put_json_string(struct out *o, const char *s)
{
	put(o, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c < 0x20)
			put(o, "\\u%04x", c);
		else
			put(o, "%c", c);
	}
	put(o, "\"");
}

static void json_handle(kalloc_t *a, void *ctx)
{
	struct out *o = ctx;
	kalloc_stats_t s;
	if (kalloc_stats(a, &s) != KALLOC_OK)
		return;
	if (o->items++)
		put(o, ",");
	put(o, "{\"backend\": ");
	put_json_string(o, a->p->name);
	put(o, ", \"core\": {\"allocs\": %" PRIu64 ", \"reallocs\": %" PRIu64
	       ", \"frees\": %" PRIu64 ", \"failures\": %" PRIu64
	       ", \"bytes_requested\": %" PRIu64 ", \"bytes_usable\": %" PRIu64
	       ", \"live_bytes\": %" PRId64 ", \"live_blocks\": %" PRId64
	       ", \"peak_bytes\": %" PRId64 ", \"peak_blocks\": %" PRId64 "}",
	    s.allocs, s.reallocs, s.frees, s.failures, s.bytes_requested,
	    s.bytes_usable, s.live_bytes, s.live_blocks, s.peak_bytes,
	    s.peak_blocks);
	collect_handle(a);
	put(o, ", \"groups\": {");
	for (int gi = 0; gi < coll.ng; gi++) {
		put(o, "%s", gi ? ", " : "");
		put_json_string(o, coll.g[gi].name);
		put(o, ": {");
		bool first = true;
		for (int k = 0; k < coll.nkv; k++) {
			if (coll.kv[k].group != gi)
				continue;
			put(o, "%s", first ? "" : ", ");
			put_json_string(o, coll.kv[k].key);
			put(o, ": %" PRIu64, coll.kv[k].value);
			first = false;
		}
		put(o, "}");
	}
	put(o, "}, \"truncated\": %s}", coll.cut ? "true" : "false");
}

void kalloc_stats_print_json(int fd)
{
	struct out o = { .fd = fd };
	pthread_mutex_lock(&coll_lock);
	put(&o, "{\"pid\": %d, \"handles\": [", (int)getpid());
	kalloc__foreach_handle(json_handle, &o);
	put(&o, "]}\n");
	pthread_mutex_unlock(&coll_lock);
	flush(&o);
}

/*
 * Which instrumentation a handle gets (FEAT_* and DEBUG_* bits), from the
 * environment (KALLOC_STATS, KALLOC_LEAKS, KALLOC_DEBUG) and the open
 * options ("stats=1", "leaks=1", "debug=FZPU"); and the exit hook that prints
 * the statistics, checks the quarantine and lists leaks.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* KALLOC_STATS=json or =slabinfo (or stats=...): the exit report's form */
enum { STATS_TABLE, STATS_JSON, STATS_SLABINFO };
static atomic_int stats_form;

static unsigned from_value(const char *key, const char *v, bool *ok)
{
	*ok = true;
	if (!strcmp(key, "debug")) {
		unsigned bits = kalloc__debug_parse(v, ok);
		return bits ? bits | FEAT_TRACK : 0;
	}
	if (!strcmp(key, "stats") && !strcmp(v, "json")) {
		atomic_store(&stats_form, STATS_JSON);
		return FEAT_STATS;
	}
	if (!strcmp(key, "stats") && !strcmp(v, "slabinfo")) {
		atomic_store(&stats_form, STATS_SLABINFO);
		return FEAT_STATS;
	}
	bool on = !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on");
	*ok = on || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off");
	if (!on)
		return 0;
	return !strcmp(key, "stats") ? FEAT_STATS : FEAT_LEAKS | FEAT_TRACK;
}

static unsigned exit_wants; /* union of every handle's features */
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void at_exit(void)
{
	if (exit_wants & FEAT_STATS) {
		int form = atomic_load(&stats_form);
		if (form == STATS_JSON)
			kalloc_stats_print_json(STDERR_FILENO);
		else if (form == STATS_SLABINFO)
			kalloc__stats_print_slabinfo(STDERR_FILENO);
		else
			kalloc_stats_print(STDERR_FILENO);
	}
	if (exit_wants & (DEBUG_P | FEAT_LEAKS))
		kalloc__debug_at_exit(exit_wants & FEAT_LEAKS);
}

static void install_exit_hook(void)
{
	atexit(at_exit);
}

int kalloc__features_init(kalloc_t *a, const char *core_opts)
{
	static const struct {
		const char *env, *key;
	} vars[] = {
		{ "KALLOC_STATS", "stats" },
		{ "KALLOC_LEAKS", "leaks" },
		{ "KALLOC_DEBUG", "debug" },
	};
	unsigned f = 0;
	bool ok;
	for (size_t i = 0; i < 3; i++) {
		const char *v = kalloc__env(vars[i].env);
		if (!v)
			continue;
		f |= from_value(vars[i].key, v, &ok);
		if (!ok)
			kalloc__log(NULL, "%s=%s: not understood (valid: %s); "
				    "ignoring it", vars[i].env, v,
				    i == 2 ? "letters F Z P U, or 1 for all" :
				    i == 0 ? "1, 0 or json" : "1 or 0");
	}
	for (const char *p = core_opts; *p;) {
		size_t len = strcspn(p, ","), klen = strcspn(p, "=");
		char key[8] = "", val[16] = "";
		if (klen < sizeof(key) && len - klen - 1 < sizeof(val)) {
			memcpy(key, p, klen);
			memcpy(val, p + klen + 1, len - klen - 1);
		}
		f |= from_value(key, val, &ok);
		if (!ok)
			return kalloc__error(KALLOC_EINVAL,
					     "option '%.*s' not understood; valid: "
					     "stats=0|1|json, leaks=0|1, debug=[FZPU]",
					     (int)len, p);
		p += len + (p[len] == ',');
	}
	atomic_store(&a->features, f);
	if (f & (FEAT_STATS | FEAT_LEAKS | DEBUG_P)) {
		__atomic_or_fetch(&exit_wants, f, __ATOMIC_RELAXED);
		pthread_once(&exit_once, install_exit_hook);
	}
	return KALLOC_OK;
}

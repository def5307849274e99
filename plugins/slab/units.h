/*
 * Sets of a chunk's units (CHUNK_UNITS bits), for the pool's free and
 * resident masks.  Only slow paths use them, under pool_lock.
 */
#ifndef SLAB_UNITS_H
#define SLAB_UNITS_H

#include <stdbool.h>
#include <stdint.h>

#define UNIT_WORDS (CHUNK_UNITS / 64)

typedef struct unitset {
	uint64_t w[UNIT_WORDS];
} unitset_t;

static inline bool us_test(const unitset_t *s, unsigned u)
{
	return s->w[u / 64] >> (u % 64) & 1;
}

/* Sets (on) or clears units [u, u + n). */
static inline void us_assign(unitset_t *s, unsigned u, unsigned n, bool on)
{
	for (unsigned k = u; k < u + n; k++) {
		uint64_t bit = (uint64_t)1 << (k % 64);
		s->w[k / 64] = on ? s->w[k / 64] | bit : s->w[k / 64] & ~bit;
	}
}

static inline unitset_t us_and(const unitset_t *a, const unitset_t *b)
{
	unitset_t r;
	for (unsigned i = 0; i < UNIT_WORDS; i++)
		r.w[i] = a->w[i] & b->w[i];
	return r;
}

static inline bool us_equal(const unitset_t *a, const unitset_t *b)
{
	for (unsigned i = 0; i < UNIT_WORDS; i++)
		if (a->w[i] != b->w[i])
			return false;
	return true;
}

static inline bool us_empty(const unitset_t *s)
{
	for (unsigned i = 0; i < UNIT_WORDS; i++)
		if (s->w[i])
			return false;
	return true;
}

static inline unsigned us_count(const unitset_t *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < UNIT_WORDS; i++)
		n += (unsigned)__builtin_popcountll(s->w[i]);
	return n;
}

/* The first unit at or after `from` in s; CHUNK_UNITS if none. */
static inline unsigned us_next(const unitset_t *s, unsigned from)
{
	for (unsigned i = from / 64; i < UNIT_WORDS; i++) {
		uint64_t w = s->w[i];
		if (i == from / 64)
			w &= ~(uint64_t)0 << (from % 64);
		if (w)
			return i * 64 + (unsigned)__builtin_ctzll(w);
	}
	return CHUNK_UNITS;
}

/* The first unit u, a multiple of `align` (a power of two <= 64), with
 * [u, u + n) all in s (n <= 64); -1 if none. */
static inline int us_find_run(const unitset_t *s, unsigned n, unsigned align)
{
	unitset_t starts = *s;
	for (unsigned k = 1; k < n; k++)
		for (unsigned i = 0; i < UNIT_WORDS; i++) {
			uint64_t hi = i + 1 < UNIT_WORDS ? s->w[i + 1] << (64 - k) : 0;
			starts.w[i] &= s->w[i] >> k | hi;
		}
	if (align > 1) {
		uint64_t at = 0;
		for (unsigned b = 0; b < 64; b += align)
			at |= (uint64_t)1 << b;
		for (unsigned i = 0; i < UNIT_WORDS; i++)
			starts.w[i] &= at;
	}
	unsigned u = us_next(&starts, 0);
	return u < CHUNK_UNITS ? (int)u : -1;
}

#endif

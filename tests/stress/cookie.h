/*
 * Cookies for the stress tests: a block's bytes are a function of a tag (the
 * block's id) and the offset, written at allocation and checked before the
 * block is freed or reallocated, so a block that another thread or the
 * allocator wrote into, or that two owners share, is caught.
 *
 * Blocks above COOKIE_FULL bytes are covered at their head, their tail and
 * one byte per 4 KiB, so the cost stays near that of the calls stressed.
 */
#ifndef STRESS_COOKIE_H
#define STRESS_COOKIE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Under TSan, block contents are not instrumented: memory that an
 * uninstrumented allocator hands from one thread to another would look like
 * a race between its two owners.  The cookies themselves check those bytes.
 */
#if defined(__SANITIZE_THREAD__)
#define COOKIE_NO_TSAN __attribute__((no_sanitize_thread, noinline, unused))
#else
#define COOKIE_NO_TSAN __attribute__((unused))
#endif

#define COOKIE_FULL 1024 /* blocks up to this size are covered fully */
#define COOKIE_EDGE 256  /* bytes covered at each end of a bigger block */

static inline unsigned char cookie_byte(uint64_t tag, size_t i)
{
	uint64_t x = tag * 0x9e3779b97f4a7c15ull + i * 0x2545f491ull;
	return (unsigned char)(x >> 56 ^ x >> 24);
}

/* The first offset >= i that a block of `size` bytes has a cookie byte at. */
static inline size_t cookie_next(size_t size, size_t i)
{
	if (size <= COOKIE_FULL || i < COOKIE_EDGE || i + COOKIE_EDGE >= size)
		return i;
	size_t up = (i + 4095) & ~(size_t)4095;
	return up + COOKIE_EDGE < size ? up : size - COOKIE_EDGE;
}

COOKIE_NO_TSAN static void cookie_write(void *p, size_t size, uint64_t tag)
{
	unsigned char *b = p;
	for (size_t i = cookie_next(size, 0); i < size; i = cookie_next(size, i + 1))
		b[i] = cookie_byte(tag, i);
}

/*
 * The first offset below `limit` where a block written as `size` bytes has a
 * wrong cookie, or SIZE_MAX.  (limit < size: the part a realloc kept.)
 */
COOKIE_NO_TSAN static size_t cookie_bad(const void *p, size_t size, size_t limit,
				uint64_t tag)
{
	const unsigned char *b = p;
	if (limit > size)
		limit = size;
	for (size_t i = cookie_next(size, 0); i < limit; i = cookie_next(size, i + 1))
		if (b[i] != cookie_byte(tag, i))
			return i;
	return SIZE_MAX;
}

#endif

/*
 * A cursor over a fuzzer's input bytes.  Reads past the end yield zeros, so
 * every input, however short, decodes to a valid (if dull) operation list.
 */
#ifndef FUZZ_INPUT_H
#define FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct fuzz_input {
	const uint8_t *p;
	size_t n;
};

static inline int fuzz_more(const struct fuzz_input *in)
{
	return in->n > 0;
}

static inline uint8_t fuzz_u8(struct fuzz_input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_input *in)
{
	uint16_t lo = fuzz_u8(in);
	return (uint16_t)(lo | (uint16_t)fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_input *in)
{
	uint32_t lo = fuzz_u16(in);
	return lo | (uint32_t)fuzz_u16(in) << 16;
}

/*
 * The next NUL-terminated field, copied into buf (at most cap - 1 bytes, the
 * rest of the field skipped); returns its length.  Without a NUL, the field
 * runs to the end of the input.
 */
static inline size_t fuzz_field(struct fuzz_input *in, char *buf, size_t cap)
{
	size_t len = 0;
	while (in->n) {
		uint8_t c = fuzz_u8(in);
		if (!c)
			break;
		if (len + 1 < cap)
			buf[len++] = (char)c;
	}
	buf[len] = 0;
	return len;
}

#endif

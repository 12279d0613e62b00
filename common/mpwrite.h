/* mpwrite.h - raw MessagePack writers for the encoders on the hot path
 * (record.c, scid.c). They write without bounds checks: the caller has sized
 * the output first. They pick the encodings msgpack-c's packer picks (the
 * smallest for integers, float 64 for every double, fixstr or str 8), so
 * every encoder makes the same bytes for the same map. */
#ifndef MDB_MPWRITE_H
#define MDB_MPWRITE_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* u as n = 1, 2, 4 or 8 big-endian bytes. */
static inline uint8_t *mp_put_be(uint8_t *o, uint64_t u, unsigned n)
{
	uint16_t u16 = htobe16((uint16_t)u);
	uint32_t u32 = htobe32((uint32_t)u);
	uint64_t u64 = htobe64(u);

	switch (n) {
	case 1:
		*o = (uint8_t)u;
		break;
	case 2:
		memcpy(o, &u16, 2);
		break;
	case 4:
		memcpy(o, &u32, 4);
		break;
	default:
		memcpy(o, &u64, 8);
		break;
	}
	return o + n;
}

/* The bytes mp_put_int() writes for i. */
static inline unsigned mp_int_size(int64_t i)
{
	if (i < -32)
		return i < -32768 ? (i < INT32_MIN ? 9 : 5) : (i < -128 ? 3 : 2);
	if (i < 128)
		return 1;
	return i < 65536 ? (i < 256 ? 2 : 3) : (i <= UINT32_MAX ? 5 : 9);
}

static inline uint8_t *mp_put_int(uint8_t *o, int64_t i)
{
	uint64_t u = (uint64_t)i;

	switch (mp_int_size(i)) {
	case 1: /* positive or negative fixint */
		*o = (uint8_t)u;
		return o + 1;
	case 2:
		*o = i < 0 ? 0xd0 : 0xcc;
		return mp_put_be(o + 1, u, 1);
	case 3:
		*o = i < 0 ? 0xd1 : 0xcd;
		return mp_put_be(o + 1, u, 2);
	case 5:
		*o = i < 0 ? 0xd2 : 0xce;
		return mp_put_be(o + 1, u, 4);
	default:
		*o = i < 0 ? 0xd3 : 0xcf;
		return mp_put_be(o + 1, u, 8);
	}
}

/* An unsigned integer: as mp_put_int() up to INT64_MAX, uint 64 beyond. */
static inline uint8_t *mp_put_uint(uint8_t *o, uint64_t u)
{
	if (u <= INT64_MAX)
		return mp_put_int(o, (int64_t)u);
	*o = 0xcf;
	return mp_put_be(o + 1, u, 8);
}

static inline uint8_t *mp_put_f64(uint8_t *o, double x)
{
	uint64_t u;

	memcpy(&u, &x, sizeof u);
	*o = 0xcb;
	return mp_put_be(o + 1, u, 8);
}

/* The bytes of a string head for n < 256 bytes. */
static inline unsigned mp_str_head_size(size_t n)
{
	return n < 32 ? 1 : 2; /* fixstr, str 8 */
}

/* A string of n < 32 bytes (a fixstr: a key). */
static inline uint8_t *mp_put_fixstr(uint8_t *o, const char *s, size_t n)
{
	*o++ = (uint8_t)(0xa0 | (n & 31));
	memcpy(o, s, n & 31);
	return o + (n & 31);
}

/* A string of n < 256 bytes. */
static inline uint8_t *mp_put_str(uint8_t *o, const char *s, size_t n)
{
	if (n < 32)
		return mp_put_fixstr(o, s, n);
	*o++ = 0xd9;
	*o++ = (uint8_t)n;
	memcpy(o, s, n);
	return o + n;
}

#endif

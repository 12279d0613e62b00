/* scid.c - Sierra Chart .scid headers and records (see scid.h). */
#include "scid.h"
#include "record.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

/* The machine is little-endian (x86-64, as the file format); memcpy keeps
 * the loads unaligned-safe and compiles to plain moves. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "scid.c assumes little-endian");

static uint32_t ld32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

void scid_header_make(uint8_t *buf)
{
	uint32_t hs = SCID_HEADER_SIZE, rs = SCID_RECORD_SIZE;
	uint16_t ver = SCID_VERSION;
	memset(buf, 0, SCID_HEADER_SIZE);
	memcpy(buf, "SCID", 4);
	memcpy(buf + 4, &hs, 4);
	memcpy(buf + 8, &rs, 4);
	memcpy(buf + 12, &ver, 2);
}

int scid_header_check(const uint8_t *buf, const char **why, int *at)
{
	if (memcmp(buf, "SCID", 4) != 0)
		return *why = "bad magic (not SCID)", *at = 0, -EPROTO;
	if (ld32(buf + 4) != SCID_HEADER_SIZE)
		return *why = "header size is not 56", *at = 4, -EPROTO;
	if (ld32(buf + 8) != SCID_RECORD_SIZE)
		return *why = "record size is not 40", *at = 8, -EPROTO;
	return 0;
}

void scid_record_store(uint8_t *buf, const struct scid_record *r)
{
	memcpy(buf, &r->dt, 8);
	memcpy(buf + 8, &r->open, 4);
	memcpy(buf + 12, &r->high, 4);
	memcpy(buf + 16, &r->low, 4);
	memcpy(buf + 20, &r->close, 4);
	memcpy(buf + 24, &r->num_trades, 4);
	memcpy(buf + 28, &r->total_volume, 4);
	memcpy(buf + 32, &r->bid_volume, 4);
	memcpy(buf + 36, &r->ask_volume, 4);
}

/* An SCDateTimeMS for any date up to the year 9999 is below 2.6e17; the bit
 * pattern of a positive double of days (1 .. 3e6) read as an int64 is above
 * 4.5e18. Between the two nothing valid lies, so the value tells the formats
 * apart record by record. */
#define SCID_DT_MAX_US 260000000000000000LL

void scid_record_load(const uint8_t *buf, struct scid_record *r)
{
	memcpy(r, buf, SCID_RECORD_SIZE);
	_Static_assert(sizeof *r == SCID_RECORD_SIZE, "struct scid_record is the file layout");
	if (r->dt > SCID_DT_MAX_US) {
		double days;
		memcpy(&days, &r->dt, 8);
		if (isfinite(days) && days > 0 && days < 3e6)
			r->dt = (int64_t)llround(days * 86400e6);
	}
}

int scid_map_append(uint8_t *buf, size_t len, size_t cap, unsigned n, const uint8_t *kv,
		    size_t kvlen)
{
	if (len < 1)
		return -EBADMSG;
	size_t grow = 0;
	if ((buf[0] & 0xf0) == 0x80) {
		unsigned cnt = (buf[0] & 0x0f) + n;
		if (cnt > 15)
			grow = 2; /* fixmap -> map16 */
		if (len + grow + kvlen > cap)
			return -ENOSPC;
		if (grow) {
			memmove(buf + 3, buf + 1, len - 1);
			buf[0] = 0xde;
			buf[1] = (uint8_t)(cnt >> 8);
			buf[2] = (uint8_t)cnt;
		} else {
			buf[0] = (uint8_t)(0x80 | cnt);
		}
	} else if (buf[0] == 0xde && len >= 3) {
		unsigned cnt = ((unsigned)buf[1] << 8 | buf[2]) + n;
		if (cnt > 0xffff)
			return -EBADMSG;
		if (len + kvlen > cap)
			return -ENOSPC;
		buf[1] = (uint8_t)(cnt >> 8);
		buf[2] = (uint8_t)cnt;
	} else {
		return -EBADMSG;
	}
	memcpy(buf + len + grow, kv, kvlen);
	return (int)(len + grow + kvlen);
}

static size_t put_key(uint8_t *p, const char *key)
{
	size_t klen = strnlen(key, 31);
	p[0] = (uint8_t)(0xa0 | klen);
	memcpy(p + 1, key, klen);
	return 1 + klen;
}

size_t scid_kv_f64(uint8_t *p, const char *key, double v)
{
	size_t n = put_key(p, key);
	uint64_t u;
	memcpy(&u, &v, 8);
	p[n++] = 0xcb;
	for (int i = 7; i >= 0; i--)
		p[n++] = (uint8_t)(u >> (8 * i));
	return n;
}

size_t scid_kv_uint(uint8_t *p, const char *key, uint64_t v)
{
	size_t n = put_key(p, key);
	int bytes;
	if (v < 128) {
		p[n++] = (uint8_t)v;
		return n;
	} else if (v <= 0xff) {
		p[n++] = 0xcc, bytes = 1;
	} else if (v <= 0xffff) {
		p[n++] = 0xcd, bytes = 2;
	} else if (v <= 0xffffffffu) {
		p[n++] = 0xce, bytes = 4;
	} else {
		p[n++] = 0xcf, bytes = 8;
	}
	for (int i = bytes - 1; i >= 0; i--)
		p[n++] = (uint8_t)(v >> (8 * i));
	return n;
}

/* Direct MessagePack writers for scid_encode(): the same bytes as
 * record_encode() followed by scid_map_append() (tests/test_scid.c checks
 * that), without the generic field table: catch-up encodes millions of
 * records a second. */
static inline uint8_t *w_be64(uint8_t *o, uint64_t u)
{
	u = __builtin_bswap64(u);
	memcpy(o, &u, 8);
	return o + 8;
}

/* A key of n < 8 bytes (a fixstr). */
static inline uint8_t *w_key(uint8_t *o, const char *k, size_t n)
{
	*o = (uint8_t)(0xa0 | n);
	memcpy(o + 1, k, n);
	return o + 1 + n;
}

static inline uint8_t *w_f64(uint8_t *o, double x)
{
	uint64_t u;
	memcpy(&u, &x, 8);
	*o = 0xcb;
	return w_be64(o + 1, u);
}

/* A signed int, as compact as record.c's put_int(). */
static inline uint8_t *w_int(uint8_t *o, int64_t i)
{
	uint64_t u = (uint64_t)i;
	if (i >= -32 && i < 128) {
		*o = (uint8_t)u;
		return o + 1;
	}
	if (i < 0) {
		if (i >= -128) {
			o[0] = 0xd0, o[1] = (uint8_t)u;
			return o + 2;
		}
		if (i >= -32768) {
			o[0] = 0xd1, o[1] = (uint8_t)(u >> 8), o[2] = (uint8_t)u;
			return o + 3;
		}
		if (i >= INT32_MIN) {
			uint32_t v = __builtin_bswap32((uint32_t)u);
			o[0] = 0xd2;
			memcpy(o + 1, &v, 4);
			return o + 5;
		}
		o[0] = 0xd3;
		return w_be64(o + 1, u);
	}
	if (i < 256) {
		o[0] = 0xcc, o[1] = (uint8_t)u;
		return o + 2;
	}
	if (i < 65536) {
		o[0] = 0xcd, o[1] = (uint8_t)(u >> 8), o[2] = (uint8_t)u;
		return o + 3;
	}
	if (i <= UINT32_MAX) {
		uint32_t v = __builtin_bswap32((uint32_t)u);
		o[0] = 0xce;
		memcpy(o + 1, &v, 4);
		return o + 5;
	}
	o[0] = 0xcf;
	return w_be64(o + 1, u);
}

/* More than the longest record takes: a map16 header, t, s (31 bytes), ts,
 * iv, 8 floats, n, f, src, off, fid come to 216 bytes. */
#define SCID_ENC_MAX 256

int scid_encode(const struct scid_record *r, const char *sym, int32_t bar_iv, int64_t off,
		uint32_t fid, uint8_t *buf, size_t cap, enum scid_kind *kind, const char **why)
{
	/* ts is int64 ns, which ends in 2262: a later date-time would overflow
	 * scid_to_unix_ns() (signed overflow found by fuzz_scid, issue 9) */
	if (r->dt <= 0 || r->dt > SCID_DT_MAX_US ||
	    r->dt > INT64_MAX / 1000 + (int64_t)SCID_UNIX_EPOCH_DAYS * 86400 * 1000000)
		return *why = "impossible date-time", -EBADMSG;
	if (!isfinite(r->high) || !isfinite(r->low) || !isfinite(r->close))
		return *why = "price is not a finite number", -EBADMSG;
	bool tick = r->open == 0 || r->open == SCID_FIRST_SUB_TRADE ||
		    r->open == SCID_LAST_SUB_TRADE;
	if (!tick && !isfinite(r->open))
		return *why = "price is not a finite number", -EBADMSG;
	size_t slen = strnlen(sym, MDB_SYM_MAX);
	if (slen >= MDB_SYM_MAX)
		return *why = "symbol too long", -EBADMSG;
	if (cap < SCID_ENC_MAX)
		return -ENOSPC;
	unsigned sub = !tick ? 0 : r->open == SCID_FIRST_SUB_TRADE ? 1 : r->open == SCID_LAST_SUB_TRADE ? 2 : 0;
	bool trade = !tick || r->num_trades != 0 || r->total_volume != 0;
	*kind = !tick ? SCID_BAR : trade ? SCID_TICK : SCID_QUOTE;
	unsigned nkeys = !tick ? 14 : trade ? 9 : 7;
	nkeys += (sub != 0) + (off >= 0 ? 2 : 0);
	uint8_t *o = buf;
	if (nkeys < 16) {
		*o++ = (uint8_t)(0x80 | nkeys);
	} else {
		*o++ = 0xde; /* map 16, as scid_map_append() grows a full fixmap */
		*o++ = 0;
		*o++ = (uint8_t)nkeys;
	}
	o = w_key(o, "t", 1);
	o = tick ? w_key(o, "tick", 4) : w_key(o, "bar", 3);
	o = w_key(o, "s", 1);
	*o++ = (uint8_t)(0xa0 | slen); /* a fixstr: slen < 32 */
	memcpy(o, sym, slen);
	o += slen;
	o = w_int(w_key(o, "ts", 2), scid_to_unix_ns(r->dt));
	if (tick) {
		if (trade) {
			o = w_f64(w_key(o, "p", 1), r->close);
			o = w_f64(w_key(o, "v", 1), r->total_volume);
		}
		o = w_f64(w_key(o, "b", 1), r->low);
		o = w_f64(w_key(o, "a", 1), r->high);
		o = w_int(w_key(o, "n", 1), r->num_trades);
	} else {
		o = w_int(w_key(o, "iv", 2), bar_iv);
		o = w_f64(w_key(o, "o", 1), r->open);
		o = w_f64(w_key(o, "h", 1), r->high);
		o = w_f64(w_key(o, "l", 1), r->low);
		o = w_f64(w_key(o, "c", 1), r->close);
		o = w_f64(w_key(o, "v", 1), r->total_volume);
		o = w_int(w_key(o, "n", 1), r->num_trades);
		o = w_f64(w_key(o, "bv", 2), r->bid_volume);
		o = w_f64(w_key(o, "av", 2), r->ask_volume);
		o = w_int(w_key(o, "f", 1), 0);
	}
	o = w_key(w_key(o, "src", 3), "scid", 4);
	if (sub)
		o = w_int(w_key(o, "sub", 3), sub);
	if (off >= 0) {
		o = w_int(w_key(o, "off", 3), off);
		o = w_int(w_key(o, "fid", 3), fid);
	}
	return (int)(o - buf);
}

/* scid.c - Sierra Chart .scid headers and records (see scid.h). */
#include "scid.h"
#include "mpwrite.h"
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

/* The extra keys, as the encoders write them (mpwrite.h). */
static uint8_t *put_key(uint8_t *p, const char *key)
{
	return mp_put_fixstr(p, key, strnlen(key, 31));
}

size_t scid_kv_f64(uint8_t *p, const char *key, double v)
{
	return (size_t)(mp_put_f64(put_key(p, key), v) - p);
}

size_t scid_kv_uint(uint8_t *p, const char *key, uint64_t v)
{
	return (size_t)(mp_put_uint(put_key(p, key), v) - p);
}

/* scid_encode() writes the same bytes as record_encode() followed by
 * scid_map_append() (tests/test_scid.c checks that), without the generic
 * field table: catch-up encodes millions of records a second. */

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
	bool tick =
	    r->open == 0 || r->open == SCID_FIRST_SUB_TRADE || r->open == SCID_LAST_SUB_TRADE;
	if (!tick && !isfinite(r->open))
		return *why = "price is not a finite number", -EBADMSG;
	size_t slen = strnlen(sym, MDB_SYM_MAX);
	if (slen >= MDB_SYM_MAX)
		return *why = "symbol too long", -EBADMSG;
	if (cap < SCID_ENC_MAX)
		return -ENOSPC;
	unsigned sub = !tick				 ? 0
		       : r->open == SCID_FIRST_SUB_TRADE ? 1
		       : r->open == SCID_LAST_SUB_TRADE	 ? 2
							 : 0;
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
	o = mp_put_str(o, "t", 1);
	o = tick ? mp_put_str(o, "tick", 4) : mp_put_str(o, "bar", 3);
	o = mp_put_str(o, "s", 1);
	o = mp_put_str(o, sym, slen);
	o = mp_put_int(mp_put_str(o, "ts", 2), scid_to_unix_ns(r->dt));
	if (tick) {
		if (trade) {
			o = mp_put_f64(mp_put_str(o, "p", 1), r->close);
			o = mp_put_f64(mp_put_str(o, "v", 1), r->total_volume);
		}
		o = mp_put_f64(mp_put_str(o, "b", 1), r->low);
		o = mp_put_f64(mp_put_str(o, "a", 1), r->high);
		o = mp_put_int(mp_put_str(o, "n", 1), r->num_trades);
	} else {
		o = mp_put_int(mp_put_str(o, "iv", 2), bar_iv);
		o = mp_put_f64(mp_put_str(o, "o", 1), r->open);
		o = mp_put_f64(mp_put_str(o, "h", 1), r->high);
		o = mp_put_f64(mp_put_str(o, "l", 1), r->low);
		o = mp_put_f64(mp_put_str(o, "c", 1), r->close);
		o = mp_put_f64(mp_put_str(o, "v", 1), r->total_volume);
		o = mp_put_int(mp_put_str(o, "n", 1), r->num_trades);
		o = mp_put_f64(mp_put_str(o, "bv", 2), r->bid_volume);
		o = mp_put_f64(mp_put_str(o, "av", 2), r->ask_volume);
		o = mp_put_int(mp_put_str(o, "f", 1), 0);
	}
	o = mp_put_str(mp_put_str(o, "src", 3), "scid", 4);
	if (sub)
		o = mp_put_int(mp_put_str(o, "sub", 3), sub);
	if (off >= 0) {
		o = mp_put_int(mp_put_str(o, "off", 3), off);
		o = mp_put_int(mp_put_str(o, "fid", 3), fid);
	}
	return (int)(o - buf);
}

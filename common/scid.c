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

/* A MessagePack key (fixstr) followed by an unsigned integer, compact. */
static size_t put_key_uint(uint8_t *p, const char *key, uint64_t v)
{
	size_t klen = strlen(key), n = 0;
	p[n++] = (uint8_t)(0xa0 | klen);
	memcpy(p + n, key, klen);
	n += klen;
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

int scid_encode(const struct scid_record *r, const char *sym, int32_t bar_iv, int64_t off,
		uint32_t fid, uint8_t *buf, size_t cap, enum scid_kind *kind, const char **why)
{
	if (r->dt <= 0 || r->dt > SCID_DT_MAX_US)
		return *why = "impossible date-time", -EBADMSG;
	if (!isfinite(r->high) || !isfinite(r->low) || !isfinite(r->close))
		return *why = "price is not a finite number", -EBADMSG;
	struct mdb_record rec;
	unsigned sub = 0;
	bool tick = r->open == 0 || r->open == SCID_FIRST_SUB_TRADE ||
		    r->open == SCID_LAST_SUB_TRADE;
	if (!tick && !isfinite(r->open))
		return *why = "price is not a finite number", -EBADMSG;
	record_init(&rec, tick ? MDB_REC_TICK : MDB_REC_BAR);
	size_t slen = strlen(sym);
	if (slen >= sizeof rec.s)
		return *why = "symbol too long", -EBADMSG;
	memcpy(rec.s, sym, slen + 1);
	memcpy(rec.src, "scid", 5);
	rec.ts = scid_to_unix_ns(r->dt);
	if (tick) {
		sub = r->open == SCID_FIRST_SUB_TRADE ? 1 : r->open == SCID_LAST_SUB_TRADE ? 2 : 0;
		rec.tick.b = r->low;
		rec.tick.a = r->high;
		rec.tick.n = r->num_trades;
		if (r->num_trades == 0 && r->total_volume == 0) {
			*kind = SCID_QUOTE; /* p and v stay NaN: absent */
		} else {
			*kind = SCID_TICK;
			rec.tick.p = r->close;
			rec.tick.v = r->total_volume;
		}
	} else {
		*kind = SCID_BAR;
		rec.bar.iv = bar_iv;
		rec.bar.o = r->open;
		rec.bar.h = r->high;
		rec.bar.l = r->low;
		rec.bar.c = r->close;
		rec.bar.v = r->total_volume;
		rec.bar.n = r->num_trades;
		rec.bar.bv = r->bid_volume;
		rec.bar.av = r->ask_volume;
	}
	int len = record_encode(&rec, buf, cap);
	if (len < 0)
		return len;
	uint8_t kv[64];
	size_t kvlen = 0;
	unsigned n = 0;
	if (sub) {
		kvlen += put_key_uint(kv + kvlen, "sub", sub);
		n++;
	}
	if (off >= 0) {
		kvlen += put_key_uint(kv + kvlen, "off", (uint64_t)off);
		kvlen += put_key_uint(kv + kvlen, "fid", fid);
		n += 2;
	}
	return n ? scid_map_append(buf, (size_t)len, cap, n, kv, kvlen) : len;
}

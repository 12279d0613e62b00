/* test_scid.c - common/scid: headers, records, both timestamp formats, and
 * what a record becomes. */
#include <criterion/criterion.h>

#include "record.h"
#include "scid.h"

#include <errno.h>
#include <math.h>
#include <string.h>

Test(scid, header_round_trip_and_every_bad_field)
{
	uint8_t h[SCID_HEADER_SIZE];
	const char *why = NULL;
	int at = -1;
	scid_header_make(h);
	cr_assert_eq(memcmp(h, "SCID\x38\0\0\0\x28\0\0\0\x01\0", 14), 0);
	cr_assert_eq(scid_header_check(h, &why, &at), 0);
	h[1] = 'X';
	cr_assert_eq(scid_header_check(h, &why, &at), -EPROTO);
	cr_assert_eq(at, 0);
	scid_header_make(h);
	h[4] = 60;
	cr_assert_eq(scid_header_check(h, &why, &at), -EPROTO);
	cr_assert_eq(at, 4);
	scid_header_make(h);
	h[8] = 44;
	cr_assert_eq(scid_header_check(h, &why, &at), -EPROTO);
	cr_assert_eq(at, 8);
	cr_assert_not_null(why);
}

Test(scid, record_layout_is_little_endian_40_bytes)
{
	struct scid_record r = {.dt = 0x0102030405060708LL,
				.open = 0,
				.high = 2.5f,
				.low = 2.25f,
				.close = 2.5f,
				.num_trades = 1,
				.total_volume = 7,
				.bid_volume = 0,
				.ask_volume = 7};
	uint8_t b[SCID_RECORD_SIZE], want_dt[8] = {8, 7, 6, 5, 4, 3, 2, 1};
	scid_record_store(b, &r);
	cr_assert_eq(memcmp(b, want_dt, 8), 0);
	cr_assert_eq(b[28], 7);
	cr_assert_eq(b[36], 7);
	struct scid_record back;
	scid_record_load(b, &back);
	cr_assert_eq(memcmp(&back, &r, sizeof r), 0);
}

Test(scid, double_days_timestamps_are_converted)
{
	/* 2025-09-12T13:30:00Z is 45912.5625 days after 1899-12-30 */
	double days = 45912.5625;
	uint8_t b[SCID_RECORD_SIZE] = {0};
	memcpy(b, &days, 8);
	struct scid_record r;
	scid_record_load(b, &r);
	cr_assert_eq(scid_to_unix_ns(r.dt), 1757683800LL * 1000000000LL);
	/* and the modern form of the same instant is left as it is */
	int64_t dt = scid_from_unix_ns(1757683800LL * 1000000000LL);
	memcpy(b, &dt, 8);
	scid_record_load(b, &r);
	cr_assert_eq(r.dt, dt);
	cr_assert_eq(dt, (int64_t)(45912.5625 * 86400e6));
}

static void to_json(const uint8_t *mp, int n, char *json, size_t cap)
{
	mdb_codec *c = codec_new();
	const char *why;
	cr_assert_gt(n, 0);
	cr_assert_gt(record_to_json(c, mp, (size_t)n, json, cap, &why), 0);
	codec_free(&c);
}

Test(scid, ticks_quotes_sub_trades_and_bars)
{
	uint8_t mp[MDB_REC_MAX_BYTES];
	char json[1024];
	enum scid_kind kind;
	const char *why;
	int64_t dt = scid_from_unix_ns(1757683800LL * 1000000000LL) + 1;
	struct scid_record r = {.dt = dt,
				.open = 0,
				.high = 100.25f,
				.low = 100.0f,
				.close = 100.25f,
				.num_trades = 1,
				.total_volume = 3,
				.ask_volume = 3};
	int n = scid_encode(&r, "ES", 1, 96, 7, mp, sizeof mp, &kind, &why);
	cr_assert_eq(kind, SCID_TICK);
	to_json(mp, n, json, sizeof json);
	cr_assert_str_eq(json,
			 "{\"t\":\"tick\",\"s\":\"ES\",\"ts\":1757683800000001000,\"p\":100.25,"
			 "\"v\":3.0,\"b\":100.0,\"a\":100.25,\"n\":1,\"src\":\"scid\","
			 "\"off\":96,\"fid\":7}");
	r.open = SCID_FIRST_SUB_TRADE;
	n = scid_encode(&r, "ES", 1, -1, 0, mp, sizeof mp, &kind, &why);
	to_json(mp, n, json, sizeof json);
	cr_assert(strstr(json, ",\"src\":\"scid\",\"sub\":1}"), "%s", json);
	r.open = SCID_LAST_SUB_TRADE;
	n = scid_encode(&r, "ES", 1, 70000, 0xfffffff0u, mp, sizeof mp, &kind, &why);
	to_json(mp, n, json, sizeof json);
	cr_assert(strstr(json, "\"sub\":2,\"off\":70000,\"fid\":4294967280}"), "%s", json);
	r.open = 0;
	r.num_trades = r.total_volume = r.ask_volume = 0;
	n = scid_encode(&r, "ES", 1, -1, 0, mp, sizeof mp, &kind, &why);
	cr_assert_eq(kind, SCID_QUOTE);
	to_json(mp, n, json, sizeof json);
	cr_assert_str_eq(json, "{\"t\":\"tick\",\"s\":\"ES\",\"ts\":1757683800000001000,"
			       "\"b\":100.0,\"a\":100.25,\"n\":0,\"src\":\"scid\"}");
	/* a bar has 14 keys: the two more make a map16 */
	struct scid_record b = {.dt = dt - 1,
				.open = 10,
				.high = 12,
				.low = 9,
				.close = 11,
				.num_trades = 4,
				.total_volume = 9,
				.bid_volume = 4,
				.ask_volume = 5};
	n = scid_encode(&b, "NQ", 60, 136, 1, mp, sizeof mp, &kind, &why);
	cr_assert_eq(kind, SCID_BAR);
	cr_assert_eq(mp[0], 0xde);
	to_json(mp, n, json, sizeof json);
	cr_assert_str_eq(json,
			 "{\"t\":\"bar\",\"s\":\"NQ\",\"ts\":1757683800000000000,\"iv\":60,"
			 "\"o\":10.0,\"h\":12.0,\"l\":9.0,\"c\":11.0,\"v\":9.0,\"n\":4,"
			 "\"bv\":4.0,\"av\":5.0,\"f\":0,\"src\":\"scid\",\"off\":136,\"fid\":1}");
}

Test(scid, impossible_records_are_refused)
{
	uint8_t mp[MDB_REC_MAX_BYTES];
	enum scid_kind kind;
	const char *why = NULL;
	struct scid_record r = {.dt = 0, .high = 1, .low = 1, .close = 1};
	cr_assert_eq(scid_encode(&r, "ES", 1, -1, 0, mp, sizeof mp, &kind, &why), -EBADMSG);
	cr_assert_not_null(why);
	r.dt = scid_from_unix_ns(0);
	r.close = NAN;
	cr_assert_eq(scid_encode(&r, "ES", 1, -1, 0, mp, sizeof mp, &kind, &why), -EBADMSG);
	r.close = 1;
	cr_assert_eq(scid_encode(&r, "ES", 1, -1, 0, mp, 8, &kind, &why), -ENOSPC);
}

/* What scid_encode() made before it wrote MessagePack itself: the generic
 * record_encode() plus the extra keys appended. Its bytes must not change. */
static int encode_generic(const struct scid_record *r, const char *sym, int32_t iv, int64_t off,
			  uint32_t fid, uint8_t *buf, size_t cap)
{
	struct mdb_record rec;
	bool tick =
	    r->open == 0 || r->open == SCID_FIRST_SUB_TRADE || r->open == SCID_LAST_SUB_TRADE;
	record_init(&rec, tick ? MDB_REC_TICK : MDB_REC_BAR);
	strcpy(rec.s, sym);
	strcpy(rec.src, "scid");
	rec.ts = scid_to_unix_ns(r->dt);
	unsigned sub = 0;
	if (tick) {
		sub = r->open == SCID_FIRST_SUB_TRADE ? 1 : r->open == SCID_LAST_SUB_TRADE ? 2 : 0;
		rec.tick.b = r->low;
		rec.tick.a = r->high;
		rec.tick.n = r->num_trades;
		if (r->num_trades || r->total_volume) {
			rec.tick.p = r->close;
			rec.tick.v = r->total_volume;
		}
	} else {
		rec.bar.iv = iv;
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
	uint8_t kv[64];
	size_t kvlen = 0;
	unsigned n = 0;
	if (sub)
		kvlen += scid_kv_uint(kv + kvlen, "sub", sub), n++;
	if (off >= 0) {
		kvlen += scid_kv_uint(kv + kvlen, "off", (uint64_t)off);
		kvlen += scid_kv_uint(kv + kvlen, "fid", fid);
		n += 2;
	}
	return n ? scid_map_append(buf, (size_t)len, cap, n, kv, kvlen) : len;
}

Test(scid, direct_encoder_makes_the_generic_bytes)
{
	uint64_t s = 42;
	static const float opens[] = {0, SCID_FIRST_SUB_TRADE, SCID_LAST_SUB_TRADE, 5000.25f};
	static const int64_t offs[] = {-1,  0,	   96,	  127,		128,	     255,
				       256, 65535, 65536, 4294967295LL, 4294967296LL};
	static const uint32_t counts[] = {0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295u};
	for (int i = 0; i < 20000; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		struct scid_record r = {
		    .dt = 1 + (int64_t)(s >> 20) % 11000000000000000LL,
		    .open = opens[(s >> 3) % 4],
		    .high = (float)((s >> 9) % 100000) / 4,
		    .low = -(float)((s >> 13) % 1000) / 8,
		    .close = (float)((s >> 17) % 100000) / 4,
		    .num_trades = (s >> 40) % 3 ? counts[(s >> 23) % 9] : 0,
		    .total_volume = (s >> 42) % 3 ? counts[(s >> 27) % 9] : 0,
		    .bid_volume = counts[(s >> 31) % 9],
		    .ask_volume = counts[(s >> 35) % 9],
		};
		const char *sym = (s >> 50) % 2 ? "ES" : "A-SYMBOL-OF-31-CHARACTERS-LONG!";
		int64_t off = offs[(s >> 45) % 11];
		int32_t iv = (s >> 55) % 2 ? 1 : -70000;
		uint8_t a[MDB_REC_MAX_BYTES], b[MDB_REC_MAX_BYTES];
		enum scid_kind kind;
		const char *why;
		int na =
		    scid_encode(&r, sym, iv, off, (uint32_t)(s >> 7), a, sizeof a, &kind, &why);
		int nb = encode_generic(&r, sym, iv, off, (uint32_t)(s >> 7), b, sizeof b);
		cr_assert_gt(na, 0, "record %d: %s", i, na == -EBADMSG ? why : "");
		cr_assert_eq(na, nb, "record %d: %d bytes, generic %d", i, na, nb);
		cr_assert_eq(memcmp(a, b, (size_t)na), 0, "record %d differs", i);
	}
}

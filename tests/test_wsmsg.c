/* test_wsmsg.c - common/wsmsg: which fields a delta carries, the shape of
 * snapshots and deltas (read back through record_to_json), frame headers. */
#include <criterion/criterion.h>

#include "record.h"
#include "wsmsg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static struct lvc_value bar_value(void)
{
	struct lvc_value v = {.ts = 1700000000000000000,
			      .o = 5000.25,
			      .h = 5001,
			      .l = 4999.5,
			      .c = 5000.75,
			      .v = 1200,
			      .n = 35,
			      .bv = 600,
			      .av = 600,
			      .f = 1};
	for (int i = 0; i < LVC_NFEAT; i++)
		v.feat[i] = NAN;
	v.feat[LVC_RSI] = 55.5;
	return v;
}

static const char *json(const uint8_t *mp, int n)
{
	static char out[2048];
	const char *why = NULL;
	mdb_codec *c = codec_new();
	cr_assert_gt(n, 0);
	int rc = record_to_json(c, mp, (size_t)n, out, sizeof out, &why);
	codec_free(&c);
	cr_assert_gt(rc, 0, "%s", why ? why : "");
	return out;
}

Test(wsmsg, diff_names_exactly_the_changed_fields)
{
	struct lvc_value a = bar_value(), b = a;
	cr_assert_eq(wsmsg_diff(&a, &b), 0);
	b.c = 5001.0;
	b.v = 1201;
	b.feat[LVC_MOM] = 1.5;
	uint32_t m = wsmsg_diff(&a, &b);
	cr_assert_eq(__builtin_popcount(m), 3);
	for (int i = 0; i < WSMSG_NFIELDS; i++) {
		const char *n = wsmsg_field_name(i);
		bool want = !strcmp(n, "c") || !strcmp(n, "v") || !strcmp(n, "mom");
		cr_assert_eq((m >> i) & 1, want, "field %s", n);
	}
	/* NaN stays NaN: no change; updated_ns is not a field */
	b = a;
	b.updated_ns = 42;
	cr_assert_eq(wsmsg_diff(&a, &b), 0);
	cr_assert_null(wsmsg_field_name(WSMSG_NFIELDS));
}

Test(wsmsg, apply_merges_bars_and_features)
{
	struct lvc_value v = {0};
	struct mdb_record r;
	record_init(&r, MDB_REC_BAR);
	strcpy(r.s, "ES");
	r.ts = 60;
	r.bar = (struct mdb_bar){.iv = 60,
				 .o = 1,
				 .h = 2,
				 .l = 0.5,
				 .c = 1.5,
				 .v = 10,
				 .n = 3,
				 .bv = NAN,
				 .av = NAN,
				 .f = 1};
	cr_assert_eq(wsmsg_apply(&v, &r), 1);
	cr_assert_eq(v.ts, 60);
	cr_assert_eq(v.c, 1.5);
	record_init(&r, MDB_REC_FEAT);
	r.ts = 60;
	r.feat.rsi = 70;
	r.feat.f = 1;
	cr_assert_eq(wsmsg_apply(&v, &r), 1);
	cr_assert_eq(v.feat[LVC_RSI], 70);
	cr_assert(isnan(v.feat[LVC_EMA12]));
	cr_assert_eq(v.c, 1.5, "a feat keeps the bar's fields");
	record_init(&r, MDB_REC_TICK);
	cr_assert_eq(wsmsg_apply(&v, &r), 0);
}

Test(wsmsg, snapshot_carries_every_defined_field)
{
	struct lvc_value v = bar_value();
	uint8_t buf[WSMSG_MAX];
	int n = wsmsg_snapshot(buf, sizeof buf, "ES", 60, 7, &v);
	cr_assert_str_eq(json(buf, n),
			 "{\"type\":\"snapshot\",\"s\":\"ES\",\"iv\":60,\"seq\":7,"
			 "\"ts\":1700000000000000000,\"o\":5000.25,\"h\":5001.0,\"l\":4999.5,"
			 "\"c\":5000.75,\"v\":1200.0,\"n\":35,\"bv\":600.0,\"av\":600.0,\"f\":1,"
			 "\"rsi\":55.5}");
	struct lvc_value empty = {0};
	n = wsmsg_snapshot(buf, sizeof buf, "NQ", 300, 0, &empty);
	cr_assert_str_eq(json(buf, n), "{\"type\":\"snapshot\",\"s\":\"NQ\",\"iv\":300,\"seq\":0}");
	cr_assert_eq(wsmsg_snapshot(buf, 20, "ES", 60, 7, &v), -ENOSPC);
}

Test(wsmsg, delta_carries_only_changes_and_is_much_smaller)
{
	struct lvc_value a = bar_value(), b = a;
	for (int i = 0; i < LVC_NFEAT; i++)
		a.feat[i] = b.feat[i] = 100 + i;
	b.c = 5001.5;
	b.feat[LVC_EMA12] = NAN;
	uint8_t buf[WSMSG_MAX], snap[WSMSG_MAX];
	int n = wsmsg_delta(buf, sizeof buf, "ES", 60, 9, 8, &b, wsmsg_diff(&a, &b));
	cr_assert_str_eq(json(buf, n), "{\"type\":\"delta\",\"s\":\"ES\",\"iv\":60,\"seq\":9,"
				       "\"prev_seq\":8,\"c\":5001.5,\"ema12\":null}");
	/* a typical update (close, volume, a few indicators) against the full snapshot */
	b = a;
	b.c += 0.25;
	b.v += 3;
	b.feat[LVC_RSI] += 1;
	b.feat[LVC_EMA12] += 0.1;
	int d = wsmsg_delta(buf, sizeof buf, "ES", 60, 9, 8, &b, wsmsg_diff(&a, &b));
	int s = wsmsg_snapshot(snap, sizeof snap, "ES", 60, 9, &b);
	cr_assert_lt(d * 100, s * 35, "delta %d bytes vs snapshot %d", d, s);
}

Test(wsmsg, frame_headers)
{
	uint8_t h[WSMSG_FRAME_HEADER_MAX];
	cr_assert_eq(wsmsg_frame_header(h, 1, 125), 2);
	cr_assert_eq(h[0], 0x81);
	cr_assert_eq(h[1], 125);
	cr_assert_eq(wsmsg_frame_header(h, 2, 126), 4);
	cr_assert_eq(h[0], 0x82);
	cr_assert(h[1] == 126 && h[2] == 0 && h[3] == 126);
	cr_assert_eq(wsmsg_frame_header(h, 1, 70000), 10);
	cr_assert(h[1] == 127 && h[7] == 1 && h[8] == 0x11 && h[9] == 0x70);
}

Test(wsmsg, exact_doubles_pack_as_float32_without_rounding)
{
	struct lvc_value a = bar_value(), b = a;
	uint8_t buf[WSMSG_MAX];
	b.c = 5000.5; /* on the tick grid: a float32 holds it */
	int n1 = wsmsg_delta(buf, sizeof buf, "ES", 60, 9, 8, &b, wsmsg_diff(&a, &b));
	cr_assert_str_eq(json(buf, n1), "{\"type\":\"delta\",\"s\":\"ES\",\"iv\":60,\"seq\":9,"
					"\"prev_seq\":8,\"c\":5000.5}");
	b.c = 5000.1; /* not exact in a float32: stays a double */
	int n2 = wsmsg_delta(buf, sizeof buf, "ES", 60, 9, 8, &b, wsmsg_diff(&a, &b));
	cr_assert_str_eq(json(buf, n2), "{\"type\":\"delta\",\"s\":\"ES\",\"iv\":60,\"seq\":9,"
					"\"prev_seq\":8,\"c\":5000.1}");
	cr_assert_eq(n2 - n1, 4, "float32 5 bytes, float64 9: %d vs %d", n1, n2);
	b.c = a.c;
	b.v = 16777217; /* 2^24 + 1: a float32 would round it */
	int n3 = wsmsg_delta(buf, sizeof buf, "ES", 60, 9, 8, &b, wsmsg_diff(&a, &b));
	cr_assert_str_eq(json(buf, n3), "{\"type\":\"delta\",\"s\":\"ES\",\"iv\":60,\"seq\":9,"
					"\"prev_seq\":8,\"v\":16777217.0}");
}

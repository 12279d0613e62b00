/* test_record.c - records: struct <-> MessagePack <-> JSON <-> text, and every way to fail. */
#include "record.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS0 INT64_C(1757687400000000000) /* 2025-09-12T14:30:00Z */

static mdb_codec *cc;

static void setup(void)
{
	cc = codec_new();
	cr_assert_not_null(cc);
}

static void teardown(void)
{
	codec_free(&cc);
	cr_assert_null(cc);
	codec_free(&cc); /* a second free is harmless */
	codec_free(NULL);
}

TestSuite(record, .init = setup, .fini = teardown, .timeout = 600);

/* ---- helpers ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: fixed seed, so a failure reproduces */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

/* The sample record of each type; every one has absent (NaN) fields too. */
static void sample(struct mdb_record *r, enum mdb_rtype t)
{
	struct mdb_record bar;

	record_init(r, t);
	if (t != MDB_REC_REJ) {
		strcpy(r->s, "ESZ5");
		r->ts = TS0;
	}
	switch (t) {
	case MDB_REC_TICK:
		r->tick = (struct mdb_tick){.p = 5000.25, .v = 3, .b = 5000, .a = NAN, .n = 2};
		strcpy(r->src, "cme");
		break;
	case MDB_REC_BAR:
		r->bar = (struct mdb_bar){.iv = 60,
					  .o = 5000.25,
					  .h = 5001,
					  .l = 4999.5,
					  .c = 5000.75,
					  .v = 120.5,
					  .n = 42,
					  .bv = 60,
					  .av = 60.5,
					  .f = MDB_F_FINAL | MDB_F_REVISED};
		break;
	case MDB_REC_FEAT:
		r->feat = (struct mdb_feat){.iv = 60,
					    .rsi = 55.5,
					    .ema12 = 5000.1,
					    .ema26 = 4999.9,
					    .bbm = 5000,
					    .bbu = 5010.5,
					    .bbl = 4989.5,
					    .atr = 2.25,
					    .vwap = 5000.05,
					    .vma = 1000,
					    .macd = 0.2,
					    .macds = NAN,
					    .macdh = NAN,
					    .mom = -1.75,
					    .f = MDB_F_FINAL};
		break;
	case MDB_REC_SIG:
		r->sig.iv = 300;
		strcpy(r->sig.name, "cross");
		r->sig.val = -1;
		break;
	case MDB_REC_REJ:
		strcpy(r->rej.why, "bar.o: not a number");
		strcpy(r->src, "mdb-pipe");
		sample(&bar, MDB_REC_BAR);
		int n = record_encode(&bar, r->rej.r, sizeof r->rej.r);
		cr_assert_gt(n, 0);
		r->rej.r_len = (uint32_t)n;
		break;
	default:
		break;
	}
}

#define BAR_JSON                                                                                   \
	"{\"t\":\"bar\",\"s\":\"ESZ5\",\"ts\":1757687400000000000,\"iv\":60,\"o\":5000.25,"        \
	"\"h\":5001.0,\"l\":4999.5,\"c\":5000.75,\"v\":120.5,\"n\":42,\"bv\":60.0,\"av\":60.5,"    \
	"\"f\":5}"

/* What record_to_json() must print for each sample: key order, NaN left out, floats keep a '.'. */
static const char *const sample_json[MDB_REC_MAX] = {
    [MDB_REC_TICK] = "{\"t\":\"tick\",\"s\":\"ESZ5\",\"ts\":1757687400000000000,\"p\":5000.25,"
		     "\"v\":3.0,\"b\":5000.0,\"n\":2,\"src\":\"cme\"}",
    [MDB_REC_BAR] = BAR_JSON,
    [MDB_REC_FEAT] = "{\"t\":\"feat\",\"s\":\"ESZ5\",\"ts\":1757687400000000000,\"iv\":60,"
		     "\"rsi\":55.5,\"ema12\":5000.1,\"ema26\":4999.9,\"bbm\":5000.0,"
		     "\"bbu\":5010.5,\"bbl\":4989.5,\"atr\":2.25,\"vwap\":5000.05,"
		     "\"vma\":1000.0,\"macd\":0.2,\"mom\":-1.75,\"f\":1}",
    [MDB_REC_SIG] = "{\"t\":\"sig\",\"s\":\"ESZ5\",\"ts\":1757687400000000000,\"iv\":300,"
		    "\"name\":\"cross\",\"val\":-1.0}",
    [MDB_REC_REJ] =
	"{\"t\":\"rej\",\"why\":\"bar.o: not a number\",\"r\":" BAR_JSON ",\"src\":\"mdb-pipe\"}",
};

static bool dbl_same(double a, double b)
{
	return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* Field-by-field equality; NaNs of any payload are equal (all mean "absent"). */
static void assert_rec_eq(const struct mdb_record *a, const struct mdb_record *b)
{
	cr_assert_eq(a->t, b->t);
	cr_assert_str_eq(a->s, b->s);
	cr_assert_eq(a->ts, b->ts);
	cr_assert_str_eq(a->src, b->src);
	switch (a->t) {
	case MDB_REC_TICK: {
		const struct mdb_tick *x = &a->tick, *y = &b->tick;
		cr_assert(dbl_same(x->p, y->p) && dbl_same(x->v, y->v) && dbl_same(x->b, y->b) &&
			  dbl_same(x->a, y->a) && x->n == y->n);
		break;
	}
	case MDB_REC_BAR: {
		const struct mdb_bar *x = &a->bar, *y = &b->bar;
		cr_assert(x->iv == y->iv && dbl_same(x->o, y->o) && dbl_same(x->h, y->h) &&
			  dbl_same(x->l, y->l) && dbl_same(x->c, y->c) && dbl_same(x->v, y->v) &&
			  x->n == y->n && dbl_same(x->bv, y->bv) && dbl_same(x->av, y->av) &&
			  x->f == y->f);
		break;
	}
	case MDB_REC_FEAT: {
		const struct mdb_feat *x = &a->feat, *y = &b->feat;
		const double *dx = &x->rsi, *dy = &y->rsi;
		cr_assert_eq(x->iv, y->iv);
		cr_assert_eq(x->f, y->f);
		for (int i = 0; i < 13; i++) /* rsi .. mom are consecutive doubles */
			cr_assert(dbl_same(dx[i], dy[i]), "feat double %d", i);
		break;
	}
	case MDB_REC_SIG:
		cr_assert_eq(a->sig.iv, b->sig.iv);
		cr_assert_str_eq(a->sig.name, b->sig.name);
		cr_assert(dbl_same(a->sig.val, b->sig.val));
		break;
	case MDB_REC_REJ:
		cr_assert_str_eq(a->rej.why, b->rej.why);
		cr_assert_eq(a->rej.r_len, b->rej.r_len);
		cr_assert_arr_eq(a->rej.r, b->rej.r, a->rej.r_len);
		break;
	default:
		cr_assert_fail("bad type %d", a->t);
	}
}

/* The bytes record_init() sets for type t: the common fields and t's union
 * member, but not a rej's raw bytes (r_len says how many count). */
static size_t init_span(enum mdb_rtype t)
{
	size_t u = offsetof(struct mdb_record, tick);

	switch (t) {
	case MDB_REC_TICK:
		return u + sizeof(struct mdb_tick);
	case MDB_REC_BAR:
		return u + sizeof(struct mdb_bar);
	case MDB_REC_FEAT:
		return u + sizeof(struct mdb_feat);
	case MDB_REC_SIG:
		return u + sizeof(struct mdb_sig);
	default:
		return u + offsetof(struct mdb_rej, r);
	}
}

static int enc(const struct mdb_record *r, uint8_t *buf)
{
	int n = record_encode(r, buf, MDB_REC_MAX_BYTES);
	cr_assert_gt(n, 0, "encode: %d", n);
	return n;
}

static int from_json(const char *json, uint8_t *buf)
{
	const char *why = NULL;
	int n = record_from_json(cc, json, strlen(json), buf, MDB_REC_MAX_BYTES, &why);
	cr_assert_gt(n, 0, "from_json(%s): %d %s", json, n, why ? why : "");
	return n;
}

static int decode_json(const char *json, struct mdb_record *r, const char **why)
{
	uint8_t buf[MDB_REC_MAX_BYTES];
	int n = from_json(json, buf);
	return record_decode(cc, buf, (size_t)n, r, why);
}

/* Assert that decoding fails with exactly the reason want. */
static void decode_fails(const char *json, const char *want)
{
	struct mdb_record r;
	const char *why = NULL;
	int rc = decode_json(json, &r, &why);
	cr_assert_eq(rc, -EBADMSG, "%s decoded (rc %d)", json, rc);
	cr_assert_str_eq(why, want, "%s", json);
}

static const char *to_json(const uint8_t *buf, size_t n, char *out, size_t cap)
{
	const char *why = NULL;
	int rc = record_to_json(cc, buf, n, out, cap, &why);
	cr_assert_geq(rc, 0, "to_json: %d %s", rc, why ? why : "");
	cr_assert_eq(strlen(out), (size_t)rc);
	return out;
}

static msgpack_sbuffer sb;
static msgpack_packer pk;

/* Hand-built MessagePack, for shapes record_encode() never writes. */
static void mp_begin(void)
{
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void mp_s(const char *s)
{
	msgpack_pack_str_with_body(&pk, s, strlen(s));
}

/* The common head of a keyed record: a map of n keys starting t, s, ts. */
static void mp_head(size_t n, const char *t)
{
	mp_begin();
	msgpack_pack_map(&pk, n);
	mp_s("t");
	mp_s(t);
	mp_s("s");
	mp_s("ES");
	mp_s("ts");
	msgpack_pack_int64(&pk, 1);
}

/* ---- types and init ---- */

Test(record, type_names_round_trip)
{
	cr_assert_eq(MDB_REC_TICK, 1);
	cr_assert_eq(MDB_REC_REJ, 5);
	for (int t = 1; t < MDB_REC_MAX; t++) {
		const char *n = record_type_name((enum mdb_rtype)t);
		cr_assert_not_null(n);
		cr_assert_eq(record_type_parse(n, strlen(n)), (enum mdb_rtype)t);
	}
	cr_assert_str_eq(record_type_name(MDB_REC_BAR), "bar");
	cr_assert_null(record_type_name(MDB_REC_NONE));
	cr_assert_null(record_type_name(MDB_REC_MAX));
	cr_assert_eq(record_type_parse("ba", 2), MDB_REC_NONE);
	cr_assert_eq(record_type_parse("bars", 4), MDB_REC_NONE);
	cr_assert_eq(record_type_parse("bar", 2), MDB_REC_NONE);
	cr_assert_eq(record_type_parse("", 0), MDB_REC_NONE);
}

Test(record, init_sets_absent_values)
{
	struct mdb_record r;

	memset(&r, 0x5a, sizeof r);
	record_init(&r, MDB_REC_FEAT);
	cr_assert_eq(r.t, MDB_REC_FEAT);
	cr_assert_str_eq(r.s, "");
	cr_assert_str_eq(r.src, "");
	cr_assert_eq(r.ts, 0);
	cr_assert_eq(r.feat.iv, 0);
	cr_assert_eq(r.feat.f, 0);
	cr_assert(isnan(r.feat.rsi) && isnan(r.feat.mom) && isnan(r.feat.macdh));

	record_init(&r, MDB_REC_TICK);
	cr_assert(isnan(r.tick.p) && isnan(r.tick.v) && isnan(r.tick.b) && isnan(r.tick.a));
	cr_assert_eq(r.tick.n, 0);

	record_init(&r, MDB_REC_REJ);
	cr_assert_eq(r.rej.r_len, 0);
	cr_assert_str_eq(r.rej.why, "");
}

Test(record, init_and_decode_touch_only_the_type_member)
{
	struct mdb_record r, d;
	uint8_t buf[MDB_REC_MAX_BYTES];
	const uint8_t *p = (const uint8_t *)&d;

	/* a tick leaves the bytes of the bigger members alone */
	sample(&r, MDB_REC_TICK);
	int n = enc(&r, buf);
	memset(&d, 0x5a, sizeof d);
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, NULL), 0);
	assert_rec_eq(&r, &d);
	for (size_t i = init_span(MDB_REC_TICK); i < sizeof d; i++)
		cr_assert_eq(p[i], 0x5a, "byte %zu written", i);
	/* within the span the padding and the string tails are zero */
	for (size_t i = strlen(d.s); i < sizeof d.s; i++)
		cr_assert_eq(d.s[i], 0);

	/* a rej's raw bytes past r_len are not cleared */
	sample(&r, MDB_REC_REJ);
	n = enc(&r, buf);
	memset(&d, 0x5a, sizeof d);
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, NULL), 0);
	assert_rec_eq(&r, &d);
	for (size_t i = d.rej.r_len; i < sizeof d.rej.r; i++)
		cr_assert_eq(d.rej.r[i], 0x5a, "r[%zu] written", i);
	memset(&d, 0x5a, sizeof d);
	record_init(&d, MDB_REC_REJ);
	cr_assert_eq(d.rej.r_len, 0);
	cr_assert_eq(d.rej.r[0], 0x5a);
}

/* ---- encoding ---- */

Test(record, encode_exact_bytes)
{
	struct mdb_record r;
	uint8_t buf[MDB_REC_MAX_BYTES];
	/* {"t":"tick","s":"A","ts":-1,"p":1.5,"n":300}: fixmap 5, float64 for
	 * doubles, the smallest int encodings, NaN v/b/a and empty src left out. */
	static const uint8_t want[] = {
	    0x85, 0xa1, 't', 0xa4, 't',	 'i',  'c', 'k',  0xa1, 's',  0xa1,
	    'A',  0xa2, 't', 's',  0xff, 0xa1, 'p', 0xcb, 0x3f, 0xf8, 0,
	    0,	  0,	0,   0,	   0,	 0xa1, 'n', 0xcd, 0x01, 0x2c,
	};

	record_init(&r, MDB_REC_TICK);
	strcpy(r.s, "A");
	r.ts = -1;
	r.tick.p = 1.5;
	r.tick.n = 300;
	int n = record_encode(&r, buf, sizeof buf);
	cr_assert_eq(n, (int)sizeof want);
	cr_assert_arr_eq(buf, want, sizeof want);
}

Test(record, encode_key_order_and_json_rendering)
{
	for (int t = 1; t < MDB_REC_MAX; t++) {
		struct mdb_record r;
		uint8_t buf[MDB_REC_MAX_BYTES];
		char json[4096];
		sample(&r, (enum mdb_rtype)t);
		int n = enc(&r, buf);
		cr_assert_str_eq(to_json(buf, (size_t)n, json, sizeof json), sample_json[t]);
	}
}

Test(record, encode_rejects_bad_records)
{
	struct mdb_record r;
	uint8_t buf[MDB_REC_MAX_BYTES];

	record_init(&r, MDB_REC_NONE);
	cr_assert_eq(record_encode(&r, buf, sizeof buf), -EINVAL);
	r.t = MDB_REC_MAX;
	cr_assert_eq(record_encode(&r, buf, sizeof buf), -EINVAL);
	r.t = (enum mdb_rtype) - 1;
	cr_assert_eq(record_encode(&r, buf, sizeof buf), -EINVAL);
	cr_assert_eq(record_encode(NULL, buf, sizeof buf), -EINVAL);

	sample(&r, MDB_REC_BAR); /* a symbol with no NUL in its array */
	memset(r.s, 'X', sizeof r.s);
	cr_assert_eq(record_encode(&r, buf, sizeof buf), -EINVAL);
	sample(&r, MDB_REC_TICK);
	memset(r.src, 'X', sizeof r.src);
	cr_assert_eq(record_encode(&r, buf, sizeof buf), -EINVAL);

	sample(&r, MDB_REC_REJ); /* r must be exactly one MessagePack object */
	r.rej.r_len -= 1;
	cr_assert_eq(record_encode(&r, buf, sizeof buf), -EINVAL);
	r.rej.r[r.rej.r_len++] = 0xc0; /* a second object after the map */
	r.rej.r[r.rej.r_len++] = 0xc0;
	cr_assert_eq(record_encode(&r, buf, sizeof buf), -EINVAL);
	r.rej.r_len = MDB_REJ_RAW_MAX + 1;
	cr_assert_eq(record_encode(&r, buf, sizeof buf), -EINVAL);
	r.rej.r[0] = 0xc1;
	r.rej.r_len = 1;
	cr_assert_eq(record_encode(&r, buf, sizeof buf), -EINVAL);
}

Test(record, encode_enospc_at_every_short_capacity)
{
	for (int t = 1; t < MDB_REC_MAX; t++) {
		struct mdb_record r;
		uint8_t buf[MDB_REC_MAX_BYTES], small[MDB_REC_MAX_BYTES];
		sample(&r, (enum mdb_rtype)t);
		int n = enc(&r, buf);
		for (int cap = 0; cap < n; cap++) {
			memset(small, 0xee, sizeof small);
			cr_assert_eq(record_encode(&r, small, (size_t)cap), -ENOSPC, "cap %d", cap);
			cr_assert_eq(small[cap], 0xee, "wrote past cap %d", cap);
		}
		cr_assert_eq(record_encode(&r, small, (size_t)n), n);
		cr_assert_arr_eq(small, buf, (size_t)n);
	}
}

/* The wire schema once more, independent of record.c's tables: the oracle
 * below packs a struct with msgpack-c's packer, as record_encode() once did. */
enum okind { OK_F64, OK_I64, OK_I32, OK_U32, OK_STR, OK_OPT_STR, OK_RAW };
struct okey {
	const char *key;
	enum okind kind;
	size_t off;
};
/* One key per line, as in record.c; clang-format would reflow the macros. */
/* clang-format off */
#define OKEY(k, kind, member) {#k, kind, offsetof(struct mdb_record, member)}
#define OHEAD OKEY(s, OK_STR, s), OKEY(ts, OK_I64, ts)
#define OTAIL OKEY(src, OK_OPT_STR, src), {NULL, OK_F64, 0}
static const struct okey okeys_tick[] = {OHEAD,
					 OKEY(p, OK_F64, tick.p),
					 OKEY(v, OK_F64, tick.v),
					 OKEY(b, OK_F64, tick.b),
					 OKEY(a, OK_F64, tick.a),
					 OKEY(n, OK_I64, tick.n),
					 OTAIL};
static const struct okey okeys_bar[] = {OHEAD,
					OKEY(iv, OK_I32, bar.iv),
					OKEY(o, OK_F64, bar.o),
					OKEY(h, OK_F64, bar.h),
					OKEY(l, OK_F64, bar.l),
					OKEY(c, OK_F64, bar.c),
					OKEY(v, OK_F64, bar.v),
					OKEY(n, OK_I64, bar.n),
					OKEY(bv, OK_F64, bar.bv),
					OKEY(av, OK_F64, bar.av),
					OKEY(f, OK_U32, bar.f),
					OTAIL};
static const struct okey okeys_feat[] = {OHEAD,
					 OKEY(iv, OK_I32, feat.iv),
					 OKEY(rsi, OK_F64, feat.rsi),
					 OKEY(ema12, OK_F64, feat.ema12),
					 OKEY(ema26, OK_F64, feat.ema26),
					 OKEY(bbm, OK_F64, feat.bbm),
					 OKEY(bbu, OK_F64, feat.bbu),
					 OKEY(bbl, OK_F64, feat.bbl),
					 OKEY(atr, OK_F64, feat.atr),
					 OKEY(vwap, OK_F64, feat.vwap),
					 OKEY(vma, OK_F64, feat.vma),
					 OKEY(macd, OK_F64, feat.macd),
					 OKEY(macds, OK_F64, feat.macds),
					 OKEY(macdh, OK_F64, feat.macdh),
					 OKEY(mom, OK_F64, feat.mom),
					 OKEY(f, OK_U32, feat.f),
					 OTAIL};
static const struct okey okeys_sig[] = {OHEAD, OKEY(iv, OK_I32, sig.iv),
					OKEY(name, OK_STR, sig.name), OKEY(val, OK_F64, sig.val),
					OTAIL};
static const struct okey okeys_rej[] = {OKEY(why, OK_STR, rej.why), OKEY(r, OK_RAW, rej.r), OTAIL};
/* clang-format on */
static const struct okey *const okeys[MDB_REC_MAX] = {
    [MDB_REC_TICK] = okeys_tick, [MDB_REC_BAR] = okeys_bar, [MDB_REC_FEAT] = okeys_feat,
    [MDB_REC_SIG] = okeys_sig,	 [MDB_REC_REJ] = okeys_rej,
};

static bool okey_present(const struct mdb_record *r, const struct okey *k)
{
	const char *p = (const char *)r + k->off;

	switch (k->kind) {
	case OK_F64:
		return !isnan(*(const double *)p);
	case OK_OPT_STR:
		return p[0] != '\0';
	case OK_RAW:
		return r->rej.r_len > 0;
	default:
		return true;
	}
}

static void oracle_pack(const struct mdb_record *r, msgpack_packer *o)
{
	const struct okey *k;
	size_t n = 1;
	const char *name = record_type_name(r->t);

	for (k = okeys[r->t]; k->key; k++)
		n += okey_present(r, k);
	msgpack_pack_map(o, n);
	msgpack_pack_str_with_body(o, "t", 1);
	msgpack_pack_str_with_body(o, name, strlen(name));
	for (k = okeys[r->t]; k->key; k++) {
		const char *p = (const char *)r + k->off;
		if (!okey_present(r, k))
			continue;
		msgpack_pack_str_with_body(o, k->key, strlen(k->key));
		switch (k->kind) {
		case OK_F64:
			msgpack_pack_double(o, *(const double *)p);
			break;
		case OK_I64:
			msgpack_pack_int64(o, *(const int64_t *)p);
			break;
		case OK_I32:
			msgpack_pack_int32(o, *(const int32_t *)p);
			break;
		case OK_U32:
			msgpack_pack_uint32(o, *(const uint32_t *)p);
			break;
		case OK_STR:
		case OK_OPT_STR:
			msgpack_pack_str_with_body(o, p, strlen(p));
			break;
		case OK_RAW:
			msgpack_pack_str_body(o, r->rej.r, r->rej.r_len); /* raw bytes */
			break;
		}
	}
}

/* A double that is often NaN (absent), an integer, tiny, huge or negative zero. */
static double rand_double(void)
{
	static const double odd[] = {0.0,      -0.0,	 5e-324, 1.7976931348623157e308,
				     INFINITY, -INFINITY};
	uint64_t x = rng();

	switch (x % 8) {
	case 0:
		return NAN;
	case 1:
		return odd[(x >> 8) % (sizeof odd / sizeof *odd)];
	case 2:
		return (double)((int64_t)rng() >> (x >> 8) % 64);
	default: {
		uint64_t bits = rng();
		double d;
		memcpy(&d, &bits, sizeof d);
		return d; /* any bit pattern, NaNs included */
	}
	}
}

/* An integer near every boundary of MessagePack's integer encodings. */
static int64_t rand_int(void)
{
	uint64_t x = rng();
	int64_t i = (int64_t)rng() >> (x % 64);

	return x >> 32 & 1 ? i + (int64_t)((x >> 8) % 5) - 2 : i;
}

static void rand_str(char *s, size_t size, bool often_empty)
{
	size_t n = often_empty && rng() % 2 ? 0 : rng() % size;

	for (size_t i = 0; i < n; i++)
		s[i] = (char)(' ' + rng() % 95);
	s[n] = '\0';
}

static void rand_record(struct mdb_record *r, int depth)
{
	enum mdb_rtype t = (enum mdb_rtype)(1 + rng() % (MDB_REC_MAX - 1));

	record_init(r, t);
	for (const struct okey *k = okeys[t]; k->key; k++) {
		char *p = (char *)r + k->off;
		switch (k->kind) {
		case OK_F64:
			*(double *)p = rand_double();
			break;
		case OK_I64:
			*(int64_t *)p = rand_int();
			break;
		case OK_I32:
			*(int32_t *)p = (int32_t)rand_int();
			break;
		case OK_U32:
			*(uint32_t *)p = (uint32_t)rand_int();
			break;
		case OK_STR:
		case OK_OPT_STR:
			rand_str(p,
				 k->off == offsetof(struct mdb_record, s)     ? MDB_SYM_MAX
				 : k->off == offsetof(struct mdb_record, src) ? MDB_SRC_MAX
				 : t == MDB_REC_SIG			      ? MDB_NAME_MAX
									      : MDB_WHY_MAX,
				 k->kind == OK_OPT_STR);
			break;
		case OK_RAW:
			if (depth < 2 && rng() % 4) {
				struct mdb_record in;
				rand_record(&in, depth + 1);
				int n = record_encode(&in, r->rej.r, sizeof r->rej.r);
				r->rej.r_len = n > 0 ? (uint32_t)n : 0;
			}
			break;
		}
	}
}

Test(record, encode_matches_msgpack_c_packer)
{
	rng_state = 0x5eed;
	for (int it = 0; it < 20000; it++) {
		struct mdb_record r, d;
		uint8_t buf[MDB_REC_MAX_BYTES];
		msgpack_sbuffer want;
		msgpack_packer o;
		rand_record(&r, 0);
		msgpack_sbuffer_init(&want);
		msgpack_packer_init(&o, &want, msgpack_sbuffer_write);
		oracle_pack(&r, &o);
		int n = enc(&r, buf);
		cr_assert_eq((size_t)n, want.size, "type %d: %d bytes, msgpack-c %zu", r.t, n,
			     want.size);
		cr_assert_arr_eq(buf, want.data, want.size, "type %d", r.t);
		msgpack_sbuffer_destroy(&want);
		/* and back: every value survives, NaN payloads aside */
		cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, NULL), 0);
		assert_rec_eq(&r, &d);
	}
}

Test(record, nan_doubles_are_omitted)
{
	struct mdb_record r, d;
	uint8_t buf[MDB_REC_MAX_BYTES];
	char json[1024];

	record_init(&r, MDB_REC_FEAT); /* all indicators undefined yet */
	strcpy(r.s, "ES");
	r.ts = 7;
	r.feat.iv = 60;
	int n = enc(&r, buf);
	cr_assert_eq(buf[0], 0x85, "a map of t, s, ts, iv and f only");
	cr_assert_str_eq(to_json(buf, (size_t)n, json, sizeof json),
			 "{\"t\":\"feat\",\"s\":\"ES\",\"ts\":7,\"iv\":60,\"f\":0}");
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, NULL), 0);
	cr_assert(isnan(d.feat.rsi) && isnan(d.feat.mom));

	r.feat.rsi = 50;
	r.feat.mom = -0.0;
	n = enc(&r, buf);
	cr_assert_str_eq(to_json(buf, (size_t)n, json, sizeof json),
			 "{\"t\":\"feat\",\"s\":\"ES\",\"ts\":7,\"iv\":60,\"rsi\":50.0,"
			 "\"mom\":-0.0,\"f\":0}");
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, NULL), 0);
	cr_assert(signbit(d.feat.mom) && d.feat.mom == 0);
}

/* ---- round trips ---- */

Test(record, struct_msgpack_struct_round_trip)
{
	for (int t = 1; t < MDB_REC_MAX; t++) {
		struct mdb_record r, d;
		uint8_t buf[MDB_REC_MAX_BYTES];
		const char *why = NULL;
		sample(&r, (enum mdb_rtype)t);
		int n = enc(&r, buf);
		memset(&d, 0x5a, sizeof d);
		cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, &why), 0, "%d: %s", t, why);
		assert_rec_eq(&r, &d);
		/* record_init() zeroes the padding of what it sets too: those
		 * bytes are bitwise equal */
		cr_assert_eq(memcmp(&r, &d, init_span(r.t)), 0);
	}
}

Test(record, extreme_values_round_trip)
{
	struct mdb_record r, d;
	uint8_t buf[MDB_REC_MAX_BYTES], back[MDB_REC_MAX_BYTES];
	char json[1024];

	record_init(&r, MDB_REC_BAR);
	memset(r.s, 'S', MDB_SYM_MAX - 1); /* longest symbol */
	memset(r.src, 'r', MDB_SRC_MAX - 1);
	r.ts = INT64_MIN;
	r.bar = (struct mdb_bar){.iv = INT32_MIN,
				 .o = 5e-324,
				 .h = 1.7976931348623157e308,
				 .l = -0.0,
				 .c = 0.1,
				 .v = 1.0 / 3,
				 .n = INT64_MAX,
				 .bv = 123456789012345678.0,
				 .av = -2.5e-10,
				 .f = UINT32_MAX};
	int n = enc(&r, buf);
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, NULL), 0);
	assert_rec_eq(&r, &d);
	to_json(buf, (size_t)n, json, sizeof json);
	cr_assert_eq(record_from_json(cc, json, strlen(json), back, sizeof back, NULL), n, "%s",
		     json);
	cr_assert_arr_eq(back, buf, (size_t)n, "%s", json);

	r.ts = INT64_MAX;
	r.bar.iv = INT32_MAX;
	r.bar.n = INT64_MIN;
	n = enc(&r, buf);
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, NULL), 0);
	assert_rec_eq(&r, &d);
}

Test(record, msgpack_json_msgpack_is_byte_identical)
{
	for (int t = 1; t < MDB_REC_MAX; t++) {
		struct mdb_record r;
		uint8_t buf[MDB_REC_MAX_BYTES], back[MDB_REC_MAX_BYTES];
		char json[4096];
		sample(&r, (enum mdb_rtype)t);
		strcpy(r.s, "Ünï \"q\" \\ \t"); /* escaping must round-trip too */
		int n = enc(&r, buf);
		to_json(buf, (size_t)n, json, sizeof json);
		int m = record_from_json(cc, json, strlen(json), back, sizeof back, NULL);
		cr_assert_eq(m, n, "%s", json);
		cr_assert_arr_eq(back, buf, (size_t)n, "%s", json);
	}
}

Test(record, json_msgpack_json_is_string_identical)
{
	static const char *const lines[] = {
	    "{\"t\":\"tick\",\"s\":\"ES\",\"ts\":1,\"p\":1.0,\"v\":0.1,\"n\":-3}",
	    "{\"t\":\"bar\",\"s\":\"ES\",\"ts\":-1,\"o\":1e+300,\"h\":-2.5e-08,\"x\":null}",
	    "{\"t\":\"sig\",\"name\":\"a\\\"b\\\\c\\n\\u0001\",\"val\":0.30000000000000004}",
	    "{\"t\":\"rej\",\"why\":\"ünïcödé ✓ 𝄞\",\"r\":{\"t\":\"bar\",\"a\":[1,2.5,[],{}]}}",
	    "{\"t\":\"feat\",\"z\":true,\"y\":false,\"x\":[null,\"\",{\"k\":{\"k\":[0]}}]}",
	    "{\"t\":\"tick\",\"nul\":\"a\\u0000b\"}",
	    "{\"t\":\"tick\",\"big\":18446744073709551615}",
	    "{\"z\":1,\"t\":\"tick\",\"a\":2}",
	    "{\"t\":\"bar\",\"u\":9223372036854775807,\"m\":-9223372036854775808}",
	};

	for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
		uint8_t buf[MDB_REC_MAX_BYTES];
		char out[1024];
		const char *why = NULL;
		int n = record_from_json(cc, lines[i], strlen(lines[i]), buf, sizeof buf, &why);
		if (strstr(lines[i], "\"big\"")) {
			/* jansson stops at int64: larger integers are refused, not mangled */
			cr_assert_eq(n, -EBADMSG);
			continue;
		}
		cr_assert_gt(n, 0, "%s: %s", lines[i], why);
		cr_assert_str_eq(to_json(buf, (size_t)n, out, sizeof out), lines[i]);
	}
}

Test(record, json_keys_keep_their_order)
{
	uint8_t buf[MDB_REC_MAX_BYTES];
	/* {"zz":1,"t":"bar","aa":2,"mm":3}: insertion order, not sorted or hashed */
	static const uint8_t want[] = {0x84, 0xa2, 'z', 'z', 0x01, 0xa1, 't', 0xa3, 'b', 'a',
				       'r',  0xa2, 'a', 'a', 0x02, 0xa2, 'm', 'm',  0x03};
	int n = from_json("{\"zz\":1,\"t\":\"bar\",\"aa\":2,\"mm\":3}\n", buf);
	cr_assert_eq(n, (int)sizeof want);
	cr_assert_arr_eq(buf, want, sizeof want);
}

Test(record, json_types_map_to_msgpack_types)
{
	uint8_t buf[MDB_REC_MAX_BYTES];
	/* 1 -> int, 1.0 and 1e2 -> float64, null -> nil, true -> true */
	static const uint8_t want[] = {0x86, 0xa1, 't',	 0xa3, 'b',  'a',  'r', 0xa1, 'i', 0x01,
				       0xa1, 'd',  0xcb, 0x3f, 0xf0, 0,	   0,	0,    0,   0,
				       0,    0xa1, 'e',	 0xcb, 0x40, 0x59, 0,	0,    0,   0,
				       0,    0,	   0xa1, 'n',  0xc0, 0xa1, 'b', 0xc3};
	int n = from_json("{\"t\":\"bar\",\"i\":1,\"d\":1.0,\"e\":1e2,\"n\":null,\"b\":true}", buf);
	cr_assert_eq(n, (int)sizeof want);
	cr_assert_arr_eq(buf, want, sizeof want);
}

/* ---- decode semantics ---- */

Test(record, unknown_keys_ignored_by_decode_kept_by_json)
{
	static const char *const line =
	    "{\"t\":\"bar\",\"s\":\"ES\",\"new\":{\"a\":[1,2]},\"ts\":5,\"iv\":60,"
	    "\"c\":2.5,\"zz\":\"x\",\"7\":null}";
	uint8_t buf[MDB_REC_MAX_BYTES];
	struct mdb_record r;
	char out[1024];
	const char *why = NULL;

	int n = from_json(line, buf);
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &r, &why), 0, "%s", why);
	cr_assert_eq(r.t, MDB_REC_BAR);
	cr_assert_str_eq(r.s, "ES");
	cr_assert_eq(r.ts, 5);
	cr_assert_eq(r.bar.iv, 60);
	cr_assert_eq(r.bar.c, 2.5);
	cr_assert(isnan(r.bar.o));
	cr_assert_str_eq(to_json(buf, (size_t)n, out, sizeof out), line);
}

Test(record, ints_are_accepted_as_doubles_and_nil_is_absent)
{
	struct mdb_record r;
	const char *why = NULL;

	cr_assert_eq(decode_json("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"o\":5000,\"h\":-3,"
				 "\"l\":null,\"c\":9007199254740993,\"n\":null,\"f\":null}",
				 &r, &why),
		     0, "%s", why);
	cr_assert_eq(r.bar.o, 5000.0);
	cr_assert_eq(r.bar.h, -3.0);
	cr_assert(isnan(r.bar.l));
	cr_assert_eq(r.bar.c, 9007199254740992.0); /* nearest double */
	cr_assert_eq(r.bar.n, 0);
	cr_assert_eq(r.bar.f, 0);

	/* a float32 is a number too */
	mp_head(4, "tick");
	mp_s("p");
	msgpack_pack_float(&pk, 2.5f);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), 0, "%s", why);
	cr_assert_eq(r.tick.p, 2.5);
	msgpack_sbuffer_destroy(&sb);
}

Test(record, wrong_value_types_are_named)
{
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"o\":\"5000\"}", "bar.o: not a number");
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"o\":true}", "bar.o: not a number");
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"av\":[1]}", "bar.av: not a number");
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"iv\":60.0}", "bar.iv: not an integer");
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"iv\":2147483648}",
		     "bar.iv: out of range");
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"iv\":-2147483649}",
		     "bar.iv: out of range");
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"f\":-1}", "bar.f: out of range");
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"f\":4294967296}",
		     "bar.f: out of range");
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"n\":\"1\"}", "bar.n: not an integer");
	decode_fails("{\"t\":\"tick\",\"s\":\"ES\",\"ts\":1.5}", "tick.ts: not an integer");
	decode_fails("{\"t\":\"tick\",\"s\":5,\"ts\":1}", "tick.s: not a string");
	decode_fails("{\"t\":\"tick\",\"s\":\"ES\",\"ts\":1,\"src\":{}}", "tick.src: not a string");
	decode_fails("{\"t\":\"sig\",\"s\":\"ES\",\"ts\":1,\"name\":1}", "sig.name: not a string");
	decode_fails("{\"t\":\"feat\",\"s\":\"ES\",\"ts\":1,\"macdh\":\"x\"}",
		     "feat.macdh: not a number");
	decode_fails("{\"t\":\"rej\",\"why\":false}", "rej.why: not a string");

	/* uint64 above INT64_MAX for an int64 key */
	struct mdb_record r;
	const char *why = NULL;
	mp_head(4, "tick");
	mp_s("n");
	msgpack_pack_uint64(&pk, UINT64_MAX);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "tick.n: out of range");
	msgpack_sbuffer_destroy(&sb);

	/* bin is not a string */
	mp_begin();
	msgpack_pack_map(&pk, 3);
	mp_s("t");
	mp_s("tick");
	mp_s("s");
	msgpack_pack_bin_with_body(&pk, "ES", 2);
	mp_s("ts");
	msgpack_pack_int(&pk, 1);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "tick.s: not a string");
	msgpack_sbuffer_destroy(&sb);
}

Test(record, strings_longer_than_their_field_are_refused)
{
	char line[512];
	struct mdb_record r;
	const char *why = NULL;
	char s31[32], s32[33], n32[33], w96[97], src15[16], src16[17];

	memset(s31, 'a', 31);
	s31[31] = 0;
	memset(s32, 'a', 32);
	s32[32] = 0;
	memset(n32, 'n', 32);
	n32[32] = 0;
	memset(w96, 'w', 96);
	w96[96] = 0;
	memset(src15, 'r', 15);
	src15[15] = 0;
	memset(src16, 'r', 16);
	src16[16] = 0;

	snprintf(line, sizeof line, "{\"t\":\"tick\",\"s\":\"%s\",\"ts\":1,\"src\":\"%s\"}", s31,
		 src15);
	cr_assert_eq(decode_json(line, &r, &why), 0, "%s", why);
	cr_assert_str_eq(r.s, s31);
	cr_assert_str_eq(r.src, src15);

	snprintf(line, sizeof line, "{\"t\":\"tick\",\"s\":\"%s\",\"ts\":1}", s32);
	decode_fails(line, "tick.s: too long or holds NUL");
	snprintf(line, sizeof line, "{\"t\":\"tick\",\"s\":\"a\",\"ts\":1,\"src\":\"%s\"}", src16);
	decode_fails(line, "tick.src: too long or holds NUL");
	snprintf(line, sizeof line, "{\"t\":\"sig\",\"s\":\"a\",\"ts\":1,\"name\":\"%s\"}", n32);
	decode_fails(line, "sig.name: too long or holds NUL");
	snprintf(line, sizeof line, "{\"t\":\"rej\",\"why\":\"%s\"}", w96);
	decode_fails(line, "rej.why: too long or holds NUL");
	/* an embedded NUL would silently cut the C string */
	decode_fails("{\"t\":\"tick\",\"s\":\"E\\u0000S\",\"ts\":1}",
		     "tick.s: too long or holds NUL");
}

Test(record, missing_unknown_and_duplicate_keys)
{
	struct mdb_record r;
	const char *why = NULL;

	decode_fails("{\"t\":\"bar\",\"ts\":1}", "missing s");
	decode_fails("{\"t\":\"bar\",\"s\":\"ES\"}", "missing ts");
	decode_fails("{\"t\":\"bar\",\"s\":null,\"ts\":1}", "missing s");
	decode_fails("{\"t\":\"feat\",\"s\":\"ES\",\"ts\":null}", "missing ts");
	/* a rej has no s/ts of its own */
	cr_assert_eq(decode_json("{\"t\":\"rej\"}", &r, &why), 0, "%s", why);
	cr_assert_eq(r.t, MDB_REC_REJ);
	cr_assert_eq(r.rej.r_len, 0);

	/* shapes from_json refuses, built by hand */
	mp_begin();
	msgpack_pack_map(&pk, 2);
	mp_s("s");
	mp_s("ES");
	mp_s("ts");
	msgpack_pack_int(&pk, 1);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "missing t");
	msgpack_sbuffer_destroy(&sb);

	mp_head(3, "candle");
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "unknown t");
	msgpack_sbuffer_destroy(&sb);

	mp_begin();
	msgpack_pack_map(&pk, 1);
	mp_s("t");
	msgpack_pack_true(&pk);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "t: not a string");
	msgpack_sbuffer_destroy(&sb);

	mp_head(4, "bar");
	mp_s("t");
	mp_s("bar");
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "duplicate key t");
	msgpack_sbuffer_destroy(&sb);

	mp_head(5, "bar");
	mp_s("o");
	msgpack_pack_double(&pk, 1);
	mp_s("o");
	msgpack_pack_double(&pk, 2);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "duplicate key");
	msgpack_sbuffer_destroy(&sb);

	/* a non-string key is unknown, hence ignored */
	mp_head(4, "bar");
	msgpack_pack_int(&pk, 7);
	msgpack_pack_double(&pk, 2);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), 0, "%s", why);
	msgpack_sbuffer_destroy(&sb);
}

/* One pass, but the reasons of the check-then-decode days: malformed
 * MessagePack anywhere beats a wrong value, and t need not come first. */
Test(record, malformed_input_is_reported_before_wrong_values)
{
	struct mdb_record r;
	const char *why = NULL;
	uint8_t buf[MDB_REC_MAX_BYTES];

	/* a wrong value, then trailing bytes */
	mp_head(4, "bar");
	mp_s("o");
	mp_s("x");
	msgpack_pack_nil(&pk);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "trailing bytes after the map");
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size - 1, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "bar.o: not a number");
	msgpack_sbuffer_destroy(&sb);

	/* a duplicate, then a value cut short */
	mp_head(5, "bar");
	mp_s("s");
	mp_s("ES");
	mp_s("c");
	msgpack_pack_double(&pk, 1);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size - 1, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "truncated");
	msgpack_sbuffer_destroy(&sb);

	/* an unknown t, then a byte that is no MessagePack */
	mp_head(4, "candle");
	mp_s("x");
	memcpy(buf, sb.data, sb.size);
	buf[sb.size] = 0xc1;
	cr_assert_eq(record_decode(cc, buf, sb.size + 1, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "invalid type byte 0xc1");
	msgpack_sbuffer_destroy(&sb);

	/* missing t, and an array too deep after it */
	size_t n = 0;
	buf[n++] = 0x81, buf[n++] = 0xa1, buf[n++] = 'x';
	for (int i = 0; i < 20; i++)
		buf[n++] = 0x91;
	buf[n++] = 0xc0;
	cr_assert_eq(record_decode(cc, buf, n, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "nested too deeply");
	cr_assert_eq(record_decode(cc, buf, 3, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "truncated");

	/* t after other keys: decoded all the same; a second t is still refused */
	mp_begin();
	msgpack_pack_map(&pk, 4);
	mp_s("s");
	mp_s("ES");
	mp_s("p");
	msgpack_pack_double(&pk, 2.5);
	mp_s("t");
	mp_s("tick");
	mp_s("ts");
	msgpack_pack_int(&pk, 9);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), 0, "%s", why);
	cr_assert_eq(r.t, MDB_REC_TICK);
	cr_assert_str_eq(r.s, "ES");
	cr_assert_eq(r.ts, 9);
	cr_assert_eq(r.tick.p, 2.5);
	cr_assert(isnan(r.tick.v));
	mp_s("t");
	mp_s("tick");
	((uint8_t *)sb.data)[0] = 0x85;
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "duplicate key t");
	msgpack_sbuffer_destroy(&sb);

	/* every integer width reads as its value */
	static const int64_t ints[] = {0,      127,    128,	  255,	      256,	 65535,
				       65536,  -1,     -32,	  -33,	      -128,	 -129,
				       -32768, -32769, INT32_MIN, UINT32_MAX, INT64_MAX, INT64_MIN};
	for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
		mp_head(4, "tick");
		mp_s("n");
		msgpack_pack_fix_int64(&pk, ints[i]); /* always 9 bytes */
		cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), 0);
		cr_assert_eq(r.tick.n, ints[i]);
		msgpack_sbuffer_destroy(&sb);
		mp_head(4, "tick");
		mp_s("n");
		msgpack_pack_int64(&pk, ints[i]); /* the smallest encoding */
		cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &r, &why), 0);
		cr_assert_eq(r.tick.n, ints[i]);
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(record, rej_keeps_the_rejected_bytes_verbatim)
{
	uint8_t buf[MDB_REC_MAX_BYTES];
	struct mdb_record r, d;
	char json[1024];
	const char *why = NULL;
	/* {"t":"bar","n":<int64 1 in 9 bytes>}: not how msgpack-c would pack it */
	static const uint8_t raw[] = {0x82, 0xa1, 't', 0xa3, 'b', 'a', 'r', 0xa1, 'n',
				      0xd3, 0,	  0,   0,    0,	  0,   0,   0,	  1};

	record_init(&r, MDB_REC_REJ);
	strcpy(r.rej.why, "missing s");
	memcpy(r.rej.r, raw, sizeof raw);
	r.rej.r_len = sizeof raw;
	int n = enc(&r, buf);
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, &why), 0, "%s", why);
	cr_assert_eq(d.rej.r_len, sizeof raw);
	cr_assert_arr_eq(d.rej.r, raw, sizeof raw);
	cr_assert_str_eq(to_json(buf, (size_t)n, json, sizeof json),
			 "{\"t\":\"rej\",\"why\":\"missing s\",\"r\":{\"t\":\"bar\",\"n\":1}}");

	/* any object can be the rejected thing, e.g. the line that was not JSON */
	record_init(&r, MDB_REC_REJ);
	strcpy(r.rej.why, "invalid JSON");
	r.rej.r[0] = 0xa3;
	memcpy(r.rej.r + 1, "{x}", 3);
	r.rej.r_len = 4;
	n = enc(&r, buf);
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, &why), 0, "%s", why);
	cr_assert_eq(d.rej.r_len, 4);
	cr_assert_arr_eq(d.rej.r, r.rej.r, 4);

	/* r larger than MDB_REJ_RAW_MAX cannot be held */
	mp_begin();
	msgpack_pack_map(&pk, 2);
	mp_s("t");
	mp_s("rej");
	mp_s("r");
	msgpack_pack_bin(&pk, MDB_REJ_RAW_MAX);
	static char big[MDB_REJ_RAW_MAX];
	msgpack_pack_bin_body(&pk, big, sizeof big);
	cr_assert_eq(record_decode(cc, (uint8_t *)sb.data, sb.size, &d, &why), -EBADMSG);
	cr_assert_str_eq(why, "rej.r: too long");
	msgpack_sbuffer_destroy(&sb);

	/* a rej of a rej nests */
	sample(&r, MDB_REC_REJ);
	n = enc(&r, buf);
	record_init(&d, MDB_REC_REJ);
	strcpy(d.rej.why, "again");
	memcpy(d.rej.r, buf, (size_t)n);
	d.rej.r_len = (uint32_t)n;
	n = enc(&d, buf);
	cr_assert_eq(record_decode(cc, buf, (size_t)n, &r, &why), 0, "%s", why);
	assert_rec_eq(&r, &d);
}

Test(record, trailing_bytes_and_non_maps_are_refused)
{
	struct mdb_record r, s;
	uint8_t buf[MDB_REC_MAX_BYTES + 1];
	char out[1024];
	const char *why = NULL;

	sample(&s, MDB_REC_BAR);
	int n = enc(&s, buf);
	buf[n] = 0xc0;
	cr_assert_eq(record_decode(cc, buf, (size_t)n + 1, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "trailing bytes after the map");
	cr_assert_eq(record_to_json(cc, buf, (size_t)n + 1, out, sizeof out, &why), -EBADMSG);
	cr_assert_eq(record_to_text(cc, buf, (size_t)n + 1, out, sizeof out, &why), -EBADMSG);

	static const uint8_t arr[] = {0x92, 0xa1, 't', 0xa3, 'b', 'a', 'r'};
	cr_assert_eq(record_decode(cc, arr, sizeof arr, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "not a map");
	cr_assert_eq(record_to_json(cc, arr, sizeof arr, out, sizeof out, &why), -EBADMSG);
	cr_assert_eq(record_peek(arr, sizeof arr, NULL, 0, &why), -EBADMSG);
	cr_assert_str_eq(why, "not a map");

	cr_assert_eq(record_decode(cc, buf, 0, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "empty");
	cr_assert_eq(record_decode(cc, NULL, 0, &r, NULL), -EBADMSG);
	cr_assert_eq(record_decode(NULL, buf, (size_t)n, &r, &why), -EINVAL);
}

Test(record, nesting_and_counts_are_bounded)
{
	uint8_t buf[256];
	struct mdb_record r;
	char out[1024];
	const char *why = NULL;
	size_t n = 0;

	/* {"t":"bar","x":[[[[...]]]]} 64 deep */
	memcpy(buf,
	       "\x82\xa1t\xa3"
	       "bar\xa1x",
	       9);
	n = 9;
	for (int i = 0; i < 64; i++)
		buf[n++] = 0x91;
	buf[n++] = 0xc0;
	cr_assert_eq(record_to_json(cc, buf, n, out, sizeof out, &why), -EBADMSG);
	cr_assert_str_eq(why, "nested too deeply");
	cr_assert_eq(record_decode(cc, buf, n, &r, &why), -EBADMSG);

	/* a header claiming 4 billion elements must fail fast, not allocate */
	n = 9;
	buf[n++] = 0xdd, buf[n++] = 0xff, buf[n++] = 0xff, buf[n++] = 0xff, buf[n++] = 0xff;
	cr_assert_eq(record_to_json(cc, buf, n, out, sizeof out, &why), -EBADMSG);
	cr_assert_str_eq(why, "truncated");
	n = 9;
	buf[n++] = 0xdf, buf[n++] = 0x7f, buf[n++] = 0xff, buf[n++] = 0xff, buf[n++] = 0xff;
	cr_assert_eq(record_decode(cc, buf, n, &r, &why), -EBADMSG);
	cr_assert_str_eq(why, "truncated");

	/* JSON nested deeper than MessagePack readers accept is refused too */
	char json[512] = "{\"t\":\"bar\",\"x\":";
	for (int i = 0; i < 40; i++)
		strcat(json, "[");
	for (int i = 0; i < 40; i++)
		strcat(json, "]");
	strcat(json, "}");
	cr_assert_eq(record_from_json(cc, json, strlen(json), buf, sizeof buf, &why), -EBADMSG);
	cr_assert_str_eq(why, "nested too deeply");
	/* 15 levels inside the map are fine both ways */
	strcpy(json, "{\"t\":\"bar\",\"x\":");
	for (int i = 0; i < 15; i++)
		strcat(json, "[");
	for (int i = 0; i < 15; i++)
		strcat(json, "]");
	strcat(json, "}");
	int m = from_json(json, buf);
	cr_assert_str_eq(to_json(buf, (size_t)m, out, sizeof out), json);
}

/* ---- robustness ---- */

/* Every function on every prefix of a valid record: errors, never crashes. */
Test(record, truncated_records_give_errors)
{
	for (int t = 1; t < MDB_REC_MAX; t++) {
		struct mdb_record r, d;
		uint8_t buf[MDB_REC_MAX_BYTES];
		char out[4096], sym[MDB_SYM_MAX];
		const char *why;
		sample(&r, (enum mdb_rtype)t);
		int n = enc(&r, buf);
		/* where s's value ends: map header (feat has 16 keys: map16), "t",
		 * type name, "s", "ESZ5" */
		size_t s_end =
		    (buf[0] == 0xde ? 3 : 1) + 2 + 1 + strlen(record_type_name(r.t)) + 2 + 5;
		if (t == MDB_REC_FEAT)
			cr_assert_eq(buf[0], 0xde);
		else
			cr_assert_eq(buf[0] & 0xf0, 0x80, "a fixmap");
		for (int len = 0; len < n; len++) {
			/* a copy of exactly len bytes, so valgrind sees any overread */
			uint8_t *p = malloc(len ? (size_t)len : 1);
			memcpy(p, buf, (size_t)len);
			why = NULL;
			cr_assert_eq(record_decode(cc, p, (size_t)len, &d, &why), -EBADMSG,
				     "len %d", len);
			cr_assert_not_null(why);
			cr_assert_eq(record_to_json(cc, p, (size_t)len, out, sizeof out, &why),
				     -EBADMSG);
			cr_assert_eq(record_to_text(cc, p, (size_t)len, out, sizeof out, &why),
				     -EBADMSG);
			int pt = record_peek(p, (size_t)len, sym, sizeof sym, &why);
			if (t != MDB_REC_REJ && (size_t)len >= s_end) {
				/* peek stops once it has t and s */
				cr_assert_eq(pt, t, "type %d len %d: %d %s", t, len, pt, why);
				cr_assert_str_eq(sym, "ESZ5");
			} else {
				cr_assert_eq(pt, -EBADMSG, "type %d len %d", t, len);
			}
			free(p);
		}
	}
}

/* Is out valid JSON? jansson is the judge, except for two things it refuses
 * although they are valid: integers beyond int64 and "\u0000" in keys. */
static void assert_valid_json(const char *out)
{
	json_error_t jerr;
	json_t *j = json_loads(out, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
	if (j) {
		json_decref(j);
		return;
	}
	cr_assert(strstr(jerr.text, "too big integer") ||
		      strstr(jerr.text, "NUL byte in object key"),
		  "invalid JSON %s: %s", out, jerr.text);
}

/* Check every entry point on one input; all must fail cleanly or succeed consistently. */
static void probe(const uint8_t *p, size_t len, unsigned *ok)
{
	struct mdb_record r, d;
	char out[8192], sym[8];
	uint8_t back[MDB_REC_MAX_BYTES];
	const char *why = NULL;

	int rc = record_decode(cc, p, len, &r, &why);
	cr_assert(rc == 0 || (rc == -EBADMSG && why), "decode rc %d", rc);
	if (rc == 0) {
		ok[0]++;
		int n = record_encode(&r, back, sizeof back);
		cr_assert_gt(n, 0);
		cr_assert_eq(record_decode(cc, back, (size_t)n, &d, &why), 0);
		assert_rec_eq(&r, &d);
	}
	int pt = record_peek(p, len, sym, sizeof sym, &why);
	cr_assert(pt == -EBADMSG || (pt > 0 && pt < MDB_REC_MAX), "peek %d", pt);
	cr_assert_lt(strlen(sym), sizeof sym);
	/* a rej's s is just an unknown key to decode, but peek reads it */
	if (rc == 0 && r.t != MDB_REC_REJ)
		cr_assert_eq(pt, (int)r.t, "peek and decode disagree");
	rc = record_to_json(cc, p, len, out, sizeof out, &why);
	cr_assert(rc >= 0 || rc == -EBADMSG || rc == -ENOSPC, "to_json rc %d", rc);
	if (rc >= 0) {
		ok[1]++;
		cr_assert_eq(strlen(out), (size_t)rc);
		assert_valid_json(out);
	}
	rc = record_to_text(cc, p, len, out, sizeof out, &why);
	cr_assert(rc >= 0 || rc == -EBADMSG || rc == -ENOSPC, "to_text rc %d", rc);
	if (rc >= 0)
		cr_assert_eq(strlen(out), (size_t)rc);
}

Test(record, random_garbage_never_crashes)
{
	uint8_t buf[64];
	unsigned ok[2] = {0, 0};

	rng_state = 0x9e3779b97f4a7c15;
	for (int it = 0; it < 100000; it++) {
		size_t len = rng() % sizeof buf;
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rng();
		if (len && rng() % 2)
			buf[0] = 0x80 | (rng() % 4); /* mostly a small map, to get further */
		probe(buf, len, ok);
	}
	cr_assert_gt(ok[1], 100, "some garbage is a valid map (%u)", ok[1]);
}

Test(record, mutated_records_never_crash)
{
	uint8_t good[MDB_REC_MAX][MDB_REC_MAX_BYTES], buf[MDB_REC_MAX_BYTES];
	int glen[MDB_REC_MAX];
	unsigned ok[2] = {0, 0};

	for (int t = 1; t < MDB_REC_MAX; t++) {
		struct mdb_record r;
		sample(&r, (enum mdb_rtype)t);
		glen[t] = enc(&r, good[t]);
	}
	rng_state = 12345;
	for (int it = 0; it < 100000; it++) {
		int t = 1 + (int)(rng() % (MDB_REC_MAX - 1));
		size_t len = (size_t)glen[t];
		memcpy(buf, good[t], len);
		int muts = 1 + (int)(rng() % 3);
		for (int m = 0; m < muts; m++) {
			uint64_t x = rng();
			size_t at = (size_t)(x >> 8) % len;
			switch (x % 4) {
			case 0: /* flip bits */
				buf[at] ^= (uint8_t)(1u << ((x >> 4) % 8));
				break;
			case 1: /* a random byte, often a type byte */
				buf[at] = (uint8_t)(x >> 40);
				break;
			case 2: /* cut */
				len = at + 1;
				break;
			default: /* small int edits keep structure plausible */
				buf[at] = (uint8_t)(buf[at] + 1);
				break;
			}
		}
		probe(buf, len, ok);
	}
	cr_assert_gt(ok[0], 1000, "mutants that still decode: %u", ok[0]);
}

/* ---- JSON output details ---- */

static const char *json_of_value(void (*pack)(const void *), const void *arg, char *out, size_t cap)
{
	mp_begin();
	msgpack_pack_map(&pk, 2);
	mp_s("t");
	mp_s("sig");
	mp_s("x");
	pack(arg);
	const char *why = NULL;
	int rc = record_to_json(cc, (uint8_t *)sb.data, sb.size, out, cap, &why);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_geq(rc, 0, "%s", why);
	cr_assert(strncmp(out, "{\"t\":\"sig\",\"x\":", 15) == 0);
	size_t len = strlen(out); /* keep the value alone */
	memmove(out, out + 15, len - 16);
	out[len - 16] = '\0';
	return out;
}

static void pack_dbl(const void *p)
{
	msgpack_pack_double(&pk, *(const double *)p);
}

static void pack_flt(const void *p)
{
	msgpack_pack_float(&pk, *(const float *)p);
}

static void pack_str(const void *p)
{
	const char *s = p;
	msgpack_pack_str_with_body(&pk, s + 1, (size_t)(uint8_t)s[0]); /* length-prefixed */
}

Test(record, json_doubles_are_shortest_and_stay_floats)
{
	static const struct {
		double x;
		const char *want;
	} cases[] = {
	    {100.0, "100.0"},
	    {0.1, "0.1"},
	    {-0.0, "-0.0"},
	    {1.0 / 3, "0.3333333333333333"},
	    {0.1 + 0.2, "0.30000000000000004"},
	    {1e300, "1e+300"},
	    {5e-324, "4.94065645841247e-324"}, /* %.15g reads back already */
	    {123456789012345678.0, "1.2345678901234568e+17"},
	    {1e15, "1e+15"},
	    {5000.25, "5000.25"},
	    {NAN, "null"},
	    {INFINITY, "null"},
	    {-INFINITY, "null"},
	};
	char out[256];

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		cr_assert_str_eq(json_of_value(pack_dbl, &cases[i].x, out, sizeof out),
				 cases[i].want);
	float f = 0.1f;
	cr_assert_str_eq(json_of_value(pack_flt, &f, out, sizeof out), "0.1");
	f = 3.0f;
	cr_assert_str_eq(json_of_value(pack_flt, &f, out, sizeof out), "3.0");

	/* random bit patterns: the text reads back as the same double */
	rng_state = 777;
	for (int i = 0; i < 20000; i++) {
		uint64_t bits = rng();
		double x;
		memcpy(&x, &bits, sizeof x);
		if (!isfinite(x))
			continue;
		json_of_value(pack_dbl, &x, out, sizeof out);
		double y = strtod(out, NULL);
		cr_assert(memcmp(&x, &y, sizeof x) == 0, "%a printed as %s", x, out);
		cr_assert(strpbrk(out, ".e"), "%s", out);
		cr_assert_leq(strlen(out), 24);
	}
}

/* The definition the fast path must agree with: the shortest of
 * %.15g/%.16g/%.17g that reads back, with ".0" when it looks like an int. */
static void ref_double(char *buf, size_t sz, double x)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sz, "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	if (!strpbrk(buf, ".e"))
		strcat(buf, ".0");
}

Test(record, json_doubles_match_the_printf_definition)
{
	static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11};
	char out[64], want[64];

	rng_state = 4242;
	for (int i = 0; i < 100000; i++) {
		uint64_t r = rng();
		uint64_t y = rng() % (UINT64_C(1) << (1 + r % 53)); /* 1 to 53 bits */
		double x = (double)y / p10[(r >> 8) % 12];	    /* price-like decimals */
		if ((r >> 16) % 2)
			x = -x;
		if ((r >> 17) % 4 == 0) { /* and their neighbours (no libm here) */
			uint64_t bits;
			memcpy(&bits, &x, sizeof bits);
			bits++;
			memcpy(&x, &bits, sizeof x);
		}
		json_of_value(pack_dbl, &x, out, sizeof out);
		ref_double(want, sizeof want, x);
		cr_assert_str_eq(out, want, "%a", x);
	}
}

Test(record, json_strings_are_escaped_and_valid)
{
	static const struct {
		const char *in; /* length-prefixed */
		const char *want;
	} cases[] = {
	    {"\x07"
	     "a\"b\\c/d",
	     "\"a\\\"b\\\\c/d\""},
	    {"\x08"
	     "\n\r\t\b\f\x01\x1f\x7f",
	     "\"\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\""},
	    {"\x03"
	     "\0x\0",
	     "\"\\u0000x\\u0000\""},
	    {"\x09"
	     "\xc3\xa9\xe2\x9c\x93\xf0\x9d\x84\x9e",
	     "\"\xc3\xa9\xe2\x9c\x93\xf0\x9d\x84\x9e\""},
	    /* invalid UTF-8: stray continuation, truncated sequence, overlong,
	     * surrogate, beyond U+10FFFF, 0xff */
	    {"\x03"
	     "a\x80z",
	     "\"a\\ufffdz\""},
	    {"\x03"
	     "a\xe2\x9c",
	     "\"a\\ufffd\\ufffd\""},
	    {"\x02"
	     "\xc0\xaf",
	     "\"\\ufffd\\ufffd\""},
	    {"\x03"
	     "\xed\xa0\x80",
	     "\"\\ufffd\\ufffd\\ufffd\""},
	    {"\x04"
	     "\xf4\x90\x80\x80",
	     "\"\\ufffd\\ufffd\\ufffd\\ufffd\""},
	    {"\x01"
	     "\xff",
	     "\"\\ufffd\""},
	    {"\x00", "\"\""},
	};
	char out[256];

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		json_of_value(pack_str, cases[i].in, out, sizeof out);
		cr_assert_str_eq(out, cases[i].want, "case %zu", i);
		assert_valid_json(out);
	}
}

Test(record, json_renders_every_msgpack_type)
{
	char out[512];
	const char *why = NULL;

	mp_begin();
	msgpack_pack_map(&pk, 9);
	mp_s("t");
	mp_s("bar");
	mp_s("bin");
	msgpack_pack_bin_with_body(&pk, "\x00\xab\xff", 3);
	mp_s("ext");
	msgpack_pack_ext_with_body(&pk, "\x01\x02", 2, 5);
	mp_s("b");
	msgpack_pack_false(&pk);
	msgpack_pack_int(&pk, -7); /* non-string keys are stringified */
	msgpack_pack_true(&pk);
	msgpack_pack_nil(&pk);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_double(&pk, 1.5);
	msgpack_pack_int(&pk, 2);
	msgpack_pack_map(&pk, 1); /* a map as a key: its JSON becomes the key */
	mp_s("k\"");
	msgpack_pack_array(&pk, 1);
	mp_s("q\\");
	msgpack_pack_int(&pk, 3);
	mp_s("arr");
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint64(&pk, UINT64_MAX);
	msgpack_pack_int64(&pk, INT64_MIN);
	msgpack_pack_array(&pk, 0);
	int rc = record_to_json(cc, (uint8_t *)sb.data, sb.size, out, sizeof out, &why);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_gt(rc, 0, "%s", why);
	cr_assert_str_eq(out, "{\"t\":\"bar\",\"bin\":\"00abff\",\"ext\":\"0102\",\"b\":false,"
			      "\"-7\":true,\"null\":1,\"1.5\":2,"
			      "\"{\\\"k\\\\\\\"\\\":[\\\"q\\\\\\\\\\\"]}\":3,"
			      "\"arr\":[18446744073709551615,-9223372036854775808,[]]}");
	/* and jansson reads the stringified map key back as the map's JSON */
	json_error_t jerr;
	json_t *j = json_loads(out, JSON_DECODE_INT_AS_REAL, &jerr);
	cr_assert_not_null(j, "%s", jerr.text);
	cr_assert_not_null(json_object_get(j, "{\"k\\\"\":[\"q\\\\\"]}"));
	json_decref(j);
}

Test(record, json_output_enospc)
{
	for (int t = 1; t < MDB_REC_MAX; t++) {
		struct mdb_record r;
		uint8_t buf[MDB_REC_MAX_BYTES];
		char out[4096], small[4096];
		sample(&r, (enum mdb_rtype)t);
		int n = enc(&r, buf);
		size_t len = strlen(to_json(buf, (size_t)n, out, sizeof out));
		for (size_t cap = 0; cap <= len; cap++) { /* the NUL needs a byte too */
			memset(small, 'Z', sizeof small);
			cr_assert_eq(record_to_json(cc, buf, (size_t)n, small, cap, NULL), -ENOSPC);
			cr_assert_eq(small[cap], 'Z', "wrote past cap %zu", cap);
			if (cap)
				cr_assert_str_eq(small, "");
		}
		cr_assert_eq(record_to_json(cc, buf, (size_t)n, small, len + 1, NULL), (int)len);
		cr_assert_str_eq(small, out);
	}
}

/* ---- JSON input ---- */

Test(record, invalid_json_is_refused)
{
	static const char *const bad[] = {
	    "",
	    "\n",
	    "{",
	    "{\"t\":\"bar\"",
	    "not json",
	    "[1,2]",
	    "\"bar\"",
	    "5",
	    "null",
	    "{\"t\":\"bar\"} x",
	    "{\"t\":\"bar\",}",
	    "{\"t\":\"bar\",\"t\":\"bar\"}",
	    "{\"t\":\"bar\",\"o\":1e400}",
	    "{\"t\":\"bar\",\"o\":NaN}",
	    "{'t':'bar'}",
	    "{\"t\":\"bar\",\"s\":\"\xff\"}",
	};
	uint8_t buf[MDB_REC_MAX_BYTES];

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		const char *why = NULL;
		int rc = record_from_json(cc, bad[i], strlen(bad[i]), buf, sizeof buf, &why);
		cr_assert_eq(rc, -EBADMSG, "%s gave %d", bad[i], rc);
		cr_assert_not_null(why);
	}
	/* the length is honoured: no NUL needed, bytes after len unseen */
	const char *line = "{\"t\":\"bar\"}garbage";
	cr_assert_gt(record_from_json(cc, line, 11, buf, sizeof buf, NULL), 0);
	cr_assert_eq(record_from_json(cc, NULL, 0, buf, sizeof buf, NULL), -EBADMSG);
}

Test(record, json_needs_a_known_t)
{
	static const struct {
		const char *line, *why;
	} cases[] = {
	    {"{}", "missing t"},
	    {"{\"s\":\"ES\",\"ts\":1}", "missing t"},
	    {"{\"t\":\"candle\"}", "unknown t"},
	    {"{\"t\":\"\"}", "unknown t"},
	    {"{\"t\":2}", "unknown t"},
	    {"{\"t\":null}", "unknown t"},
	    {"{\"t\":\"ba\\u0000r\"}", "unknown t"},
	    {"[{\"t\":\"bar\"}]", "not a JSON object"},
	};
	uint8_t buf[MDB_REC_MAX_BYTES];

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *why = NULL;
		int rc = record_from_json(cc, cases[i].line, strlen(cases[i].line), buf, sizeof buf,
					  &why);
		cr_assert_eq(rc, -EBADMSG, "%s", cases[i].line);
		cr_assert_str_eq(why, cases[i].why, "%s", cases[i].line);
	}
}

Test(record, json_input_enospc)
{
	uint8_t buf[MDB_REC_MAX_BYTES], small[MDB_REC_MAX_BYTES];
	const char *line = sample_json[MDB_REC_REJ];
	int n = from_json(line, buf);

	for (int cap = 0; cap < n; cap++) {
		memset(small, 0xee, sizeof small);
		cr_assert_eq(record_from_json(cc, line, strlen(line), small, (size_t)cap, NULL),
			     -ENOSPC, "cap %d", cap);
		cr_assert_eq(small[cap], 0xee);
	}
	cr_assert_eq(record_from_json(cc, line, strlen(line), small, (size_t)n, NULL), n);
	cr_assert_arr_eq(small, buf, (size_t)n);
}

/* ---- peek ---- */

Test(record, peek_finds_type_and_symbol)
{
	for (int t = 1; t < MDB_REC_MAX; t++) {
		struct mdb_record r;
		uint8_t buf[MDB_REC_MAX_BYTES];
		char sym[MDB_SYM_MAX] = "junk";
		const char *why = NULL;
		sample(&r, (enum mdb_rtype)t);
		int n = enc(&r, buf);
		cr_assert_eq(record_peek(buf, (size_t)n, sym, sizeof sym, &why), t, "%s", why);
		cr_assert_str_eq(sym, t == MDB_REC_REJ ? "" : "ESZ5");
		cr_assert_eq(record_peek(buf, (size_t)n, NULL, 0, &why), t);
	}
}

Test(record, peek_truncates_symbol_and_scans_past_values)
{
	uint8_t buf[MDB_REC_MAX_BYTES];
	char sym[4];
	const char *why = NULL;
	int n;

	/* t after nested values, s longer than sym */
	n = from_json("{\"x\":{\"a\":[1,{\"t\":\"tick\"},\"s\"],\"b\":null},\"s\":\"ESZ5\","
		      "\"y\":1.5,\"t\":\"feat\"}",
		      buf);
	cr_assert_eq(record_peek(buf, (size_t)n, sym, sizeof sym, &why), MDB_REC_FEAT, "%s", why);
	cr_assert_str_eq(sym, "ESZ");
	cr_assert_eq(record_peek(buf, (size_t)n, sym, 1, &why), MDB_REC_FEAT);
	cr_assert_str_eq(sym, "");

	/* bin, ext, float32 and wide ints are skipped too */
	mp_begin();
	msgpack_pack_map(&pk, 6);
	mp_s("b");
	msgpack_pack_bin_with_body(&pk, "xyz", 3);
	mp_s("e");
	msgpack_pack_ext_with_body(&pk, "12345678901234567", 17, 1);
	mp_s("f");
	msgpack_pack_float(&pk, 1.0f);
	mp_s("i");
	msgpack_pack_fix_int64(&pk, -1);
	mp_s("t");
	mp_s("sig");
	mp_s("s");
	msgpack_pack_nil(&pk);
	cr_assert_eq(record_peek((uint8_t *)sb.data, sb.size, sym, sizeof sym, &why), MDB_REC_SIG,
		     "%s", why);
	cr_assert_str_eq(sym, "");
	msgpack_sbuffer_destroy(&sb);
}

Test(record, peek_errors)
{
	static const struct {
		const char *json, *why;
	} cases[] = {
	    {"{\"t\":\"bar\",\"s\":5}", "s: not a string"},
	};
	uint8_t buf[MDB_REC_MAX_BYTES];
	char sym[MDB_SYM_MAX];
	const char *why = NULL;

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int n = from_json(cases[i].json, buf);
		cr_assert_eq(record_peek(buf, (size_t)n, sym, sizeof sym, &why), -EBADMSG);
		cr_assert_str_eq(why, cases[i].why);
	}
	/* without sym, s is not looked at */
	int n = from_json("{\"t\":\"bar\",\"s\":5}", buf);
	cr_assert_eq(record_peek(buf, (size_t)n, NULL, 0, &why), MDB_REC_BAR);

	mp_begin();
	msgpack_pack_map(&pk, 1);
	mp_s("s");
	mp_s("ES");
	cr_assert_eq(record_peek((uint8_t *)sb.data, sb.size, sym, sizeof sym, &why), -EBADMSG);
	cr_assert_str_eq(why, "missing t");
	msgpack_sbuffer_destroy(&sb);

	mp_head(3, "quote");
	cr_assert_eq(record_peek((uint8_t *)sb.data, sb.size, sym, sizeof sym, &why), -EBADMSG);
	cr_assert_str_eq(why, "unknown t");
	msgpack_sbuffer_destroy(&sb);

	mp_begin();
	msgpack_pack_map(&pk, 1);
	mp_s("t");
	msgpack_pack_int(&pk, 2);
	cr_assert_eq(record_peek((uint8_t *)sb.data, sb.size, NULL, 0, &why), -EBADMSG);
	cr_assert_str_eq(why, "t: not a string");
	msgpack_sbuffer_destroy(&sb);

	static const uint8_t c1[] = {0x81, 0xc1, 0xc0};
	cr_assert_eq(record_peek(c1, sizeof c1, NULL, 0, &why), -EBADMSG);
	cr_assert_str_eq(why, "invalid type byte 0xc1");
	cr_assert_eq(record_peek(NULL, 0, sym, sizeof sym, &why), -EBADMSG);
	cr_assert_str_eq(why, "empty");
	cr_assert_str_eq(sym, "");
	static const uint8_t longstr[] = {0x81, 0xdb, 0xff, 0xff, 0xff, 0xff, 't'};
	cr_assert_eq(record_peek(longstr, sizeof longstr, NULL, 0, &why), -EBADMSG);
	cr_assert_str_eq(why, "truncated");
}

/* ---- stream framing ---- */

Test(record, span_cuts_a_stream_into_records)
{
	uint8_t buf[2 * MDB_REC_MAX_BYTES + 8];
	struct mdb_record r;
	size_t total = 0;
	int lens[MDB_REC_MAX];

	for (int t = 1; t < MDB_REC_MAX; t++) {
		sample(&r, (enum mdb_rtype)t);
		lens[t] = enc(&r, buf + total);
		total += (size_t)lens[t];
	}
	size_t off = 0;
	for (int t = 1; t < MDB_REC_MAX; t++) {
		cr_assert_eq(record_span(buf + off, total - off), lens[t]);
		for (int cut = 0; cut < lens[t]; cut++) /* a prefix: wait for more */
			cr_assert_eq(record_span(buf + off, (size_t)cut), 0, "cut %d", cut);
		off += (size_t)lens[t];
	}
	cr_assert_eq(record_span(buf, 0), 0);
	cr_assert_eq(record_span(NULL, 0), 0);

	static const uint8_t c1[] = {0xc1, 0x80};
	cr_assert_eq(record_span(c1, sizeof c1), -EBADMSG);
	static const uint8_t one[] = {0x2a, 0x80}; /* any object, not only maps */
	cr_assert_eq(record_span(one, sizeof one), 1);

	/* a header promising more than any record holds is not waited for */
	memset(buf, 0, sizeof buf);
	buf[0] = 0xdb, buf[1] = 0xff, buf[2] = 0xff, buf[3] = 0xff, buf[4] = 0xff;
	cr_assert_eq(record_span(buf, 5), 0);
	cr_assert_eq(record_span(buf, MDB_REC_MAX_BYTES), -EBADMSG);
	buf[0] = 0xc5, buf[1] = 0x10, buf[2] = 0x00; /* a complete 4 KiB bin */
	cr_assert_eq(record_span(buf, 3 + 4096), -EBADMSG);
	buf[1] = 0x07, buf[2] = 0xfd; /* 2045 bytes + 3 of header: just fits */
	cr_assert_eq(record_span(buf, sizeof buf), MDB_REC_MAX_BYTES);
}

/* ---- text ---- */

static const char *text_of(const char *json, char *out, size_t cap)
{
	uint8_t buf[MDB_REC_MAX_BYTES];
	const char *why = NULL;
	int n = from_json(json, buf);
	int rc = record_to_text(cc, buf, (size_t)n, out, cap, &why);
	cr_assert_geq(rc, 0, "%s: %d %s", json, rc, why ? why : "");
	cr_assert_eq(strlen(out), (size_t)rc);
	return out;
}

Test(record, text_lines)
{
	static const char *const want[MDB_REC_MAX] = {
	    [MDB_REC_TICK] = "2025-09-12T14:30:00.000000000Z tick ESZ5 p=5000.25 v=3 b=5000 "
			     "n=2 src=cme",
	    [MDB_REC_BAR] = "2025-09-12T14:30:00.000000000Z bar ESZ5 60s o=5000.25 h=5001 "
			    "l=4999.5 c=5000.75 v=120.5 n=42 bv=60 av=60.5 f=final+revised",
	    [MDB_REC_FEAT] = "2025-09-12T14:30:00.000000000Z feat ESZ5 60s rsi=55.5 "
			     "ema12=5000.1 ema26=4999.9 bbm=5000 bbu=5010.5 bbl=4989.5 "
			     "atr=2.25 vwap=5000.05 vma=1000 macd=0.2 mom=-1.75 f=final",
	    [MDB_REC_SIG] = "2025-09-12T14:30:00.000000000Z sig ESZ5 300s name=cross val=-1",
	    [MDB_REC_REJ] = "- rej - why=\"bar.o: not a number\" r=" BAR_JSON " src=mdb-pipe",
	};
	char out[1024];

	for (int t = 1; t < MDB_REC_MAX; t++)
		cr_assert_str_eq(text_of(sample_json[t], out, sizeof out), want[t]);
}

Test(record, text_details)
{
	char out[1024];

	cr_assert_str_eq(
	    text_of("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":-1,\"iv\":1,\"f\":0}", out, sizeof out),
	    "1969-12-31T23:59:59.999999999Z bar ES 1s n=0 f=0");
	cr_assert_str_eq(text_of("{\"t\":\"bar\",\"s\":\"E S\",\"ts\":1500000001,\"iv\":3600,"
				 "\"c\":0.1,\"f\":14,\"zz\":\"a b\",\"q\":[1,2.5],\"w\":2.0}",
				 out, sizeof out),
			 "1970-01-01T00:00:01.500000001Z bar \"E S\" 3600s c=0.1 n=0 "
			 "f=filled+revised+0x8 zz=\"a b\" q=[1,2.5] w=2");
	cr_assert_str_eq(
	    text_of("{\"t\":\"tick\",\"s\":\"ES\",\"ts\":0,\"p\":1e-7}", out, sizeof out),
	    "1970-01-01T00:00:00.000000000Z tick ES p=1e-07 n=0");

	/* too small: -ENOSPC, never an overflow */
	uint8_t buf[MDB_REC_MAX_BYTES];
	int n = from_json(sample_json[MDB_REC_BAR], buf);
	size_t len = strlen(text_of(sample_json[MDB_REC_BAR], out, sizeof out));
	char small[1024];
	for (size_t cap = 0; cap <= len; cap++) {
		memset(small, 'Z', sizeof small);
		cr_assert_eq(record_to_text(cc, buf, (size_t)n, small, cap, NULL), -ENOSPC);
		cr_assert_eq(small[cap], 'Z');
	}
	cr_assert_eq(record_to_text(cc, buf, (size_t)n, small, len + 1, NULL), (int)len);

	/* text needs a decodable record */
	const char *why = NULL;
	n = from_json("{\"t\":\"bar\",\"s\":\"ES\",\"ts\":1,\"o\":\"x\"}", buf);
	cr_assert_eq(record_to_text(cc, buf, (size_t)n, out, sizeof out, &why), -EBADMSG);
	cr_assert_str_eq(why, "bar.o: not a number");
}

/* ---- the codec ---- */

Test(record, codec_is_reused_across_many_records)
{
	uint8_t buf[MDB_REC_MAX_BYTES];
	struct mdb_record r, d;
	char out[4096];

	/* interleave all calls on one codec; results must not leak between them */
	for (int i = 0; i < 20000; i++) {
		int t = 1 + i % (MDB_REC_MAX - 1);
		sample(&r, (enum mdb_rtype)t);
		if (r.t != MDB_REC_REJ)
			r.ts += i;
		int n = enc(&r, buf);
		cr_assert_eq(record_decode(cc, buf, (size_t)n, &d, NULL), 0);
		cr_assert_eq(d.ts, r.ts);
		cr_assert_eq(d.t, r.t);
		if (i % 100 == 0) {
			to_json(buf, (size_t)n, out, sizeof out);
			cr_assert_not_null(strstr(out, record_type_name(r.t)));
		}
	}
	/* two codecs are independent */
	mdb_codec *c2 = codec_new();
	cr_assert_not_null(c2);
	sample(&r, MDB_REC_SIG);
	int n = enc(&r, buf);
	cr_assert_eq(record_decode(c2, buf, (size_t)n, &d, NULL), 0);
	assert_rec_eq(&r, &d);
	codec_free(&c2);
	cr_assert_null(c2);
}

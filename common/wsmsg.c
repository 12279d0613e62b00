/* wsmsg.c - snapshots, deltas and frame headers; see wsmsg.h. */
#include "wsmsg.h"

#include <endian.h>
#include <errno.h>
#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <string.h>

/* The sent fields are the first words of struct lvc_value, in this order. */
static const char *const names[WSMSG_NFIELDS] = {
    "ts",    "o",   "h",   "l",	  "c",	 "v",	 "n",	"bv",	"av",	 "f",	  "rsi", "ema12",
    "ema26", "bbm", "bbu", "bbl", "atr", "vwap", "vma", "macd", "macds", "macdh", "mom",
};
enum { F_TS = 0, F_N = 6, F_F = 9 }; /* the integer fields; the others are doubles */

_Static_assert(offsetof(struct lvc_value, feat) == 10 * 8, "lvc_value layout");
_Static_assert(offsetof(struct lvc_value, updated_ns) == WSMSG_NFIELDS * 8, "lvc_value layout");

const char *wsmsg_field_name(int i)
{
	return i >= 0 && i < WSMSG_NFIELDS ? names[i] : NULL;
}

static uint64_t word(const struct lvc_value *v, int i)
{
	uint64_t w;
	memcpy(&w, (const char *)v + 8 * i, 8);
	return w;
}

uint32_t wsmsg_diff(const struct lvc_value *a, const struct lvc_value *b)
{
	uint32_t m = 0;
	for (int i = 0; i < WSMSG_NFIELDS; i++)
		m |= (uint32_t)(word(a, i) != word(b, i)) << i;
	return m;
}

int wsmsg_apply(struct lvc_value *v, const struct mdb_record *r)
{
	if (r->t == MDB_REC_BAR) {
		const struct mdb_bar *b = &r->bar;
		v->ts = r->ts;
		v->o = b->o;
		v->h = b->h;
		v->l = b->l;
		v->c = b->c;
		v->v = b->v;
		v->n = b->n;
		v->bv = b->bv;
		v->av = b->av;
		v->f = b->f;
		return 1;
	}
	if (r->t == MDB_REC_FEAT) {
		const struct mdb_feat *f = &r->feat;
		const double x[LVC_NFEAT] = {f->rsi,   f->ema12, f->ema26, f->bbm, f->bbu,
					     f->bbl,   f->atr,	 f->vwap,  f->vma, f->macd,
					     f->macds, f->macdh, f->mom};
		v->ts = r->ts;
		v->f = f->f;
		memcpy(v->feat, x, sizeof x);
		return 1;
	}
	return 0;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* The field i of v: an integer, a double (as a float32 when that holds
 * it exactly: shorter, not rounded), or nil for a NaN double. */
static void pack_field(msgpack_packer *pk, const struct lvc_value *v, int i)
{
	pack_str(pk, names[i]);
	uint64_t w = word(v, i);
	if (i == F_TS || i == F_N) {
		msgpack_pack_int64(pk, (int64_t)w);
	} else if (i == F_F) {
		msgpack_pack_uint64(pk, w);
	} else {
		double x;
		memcpy(&x, &w, 8);
		if (isnan(x))
			msgpack_pack_nil(pk);
		else if ((double)(float)x == x) /* a price on its grid, a volume */
			msgpack_pack_float(pk, (float)x);
		else
			msgpack_pack_double(pk, x);
	}
}

/* The fields a snapshot carries: every defined one, none before the first update. */
static uint32_t defined(const struct lvc_value *v)
{
	if (v->ts == 0)
		return 0;
	uint32_t m = 0;
	for (int i = 0; i < WSMSG_NFIELDS; i++) {
		uint64_t w = word(v, i);
		double x;
		memcpy(&x, &w, 8);
		bool is_int = i == F_TS || i == F_N || i == F_F;
		m |= (uint32_t)(is_int || !isnan(x)) << i;
	}
	return m;
}

static int encode(uint8_t *out, size_t cap, const char *type, const char *s, int32_t iv,
		  uint64_t seq, const uint64_t *prev_seq, const struct lvc_value *v, uint32_t mask)
{
	struct record_wbuf w = {.buf = out, .cap = cap};
	msgpack_packer pk;
	msgpack_packer_init(&pk, &w, record_wbuf_write);
	msgpack_pack_map(&pk, 4u + (prev_seq != NULL) + (unsigned)__builtin_popcount(mask));
	pack_str(&pk, "type");
	pack_str(&pk, type);
	pack_str(&pk, "s");
	pack_str(&pk, s);
	pack_str(&pk, "iv");
	msgpack_pack_int32(&pk, iv);
	pack_str(&pk, "seq");
	msgpack_pack_uint64(&pk, seq);
	if (prev_seq) {
		pack_str(&pk, "prev_seq");
		msgpack_pack_uint64(&pk, *prev_seq);
	}
	for (int i = 0; i < WSMSG_NFIELDS; i++)
		if (mask & (1u << i))
			pack_field(&pk, v, i);
	return w.full ? -ENOSPC : (int)w.len;
}

int wsmsg_snapshot(uint8_t *out, size_t cap, const char *s, int32_t iv, uint64_t seq,
		   const struct lvc_value *v)
{
	return encode(out, cap, "snapshot", s, iv, seq, NULL, v, defined(v));
}

int wsmsg_delta(uint8_t *out, size_t cap, const char *s, int32_t iv, uint64_t seq,
		uint64_t prev_seq, const struct lvc_value *v, uint32_t mask)
{
	return encode(out, cap, "delta", s, iv, seq, &prev_seq, v,
		      mask & ((1u << WSMSG_NFIELDS) - 1));
}

size_t wsmsg_frame_header(uint8_t out[WSMSG_FRAME_HEADER_MAX], unsigned opcode, uint64_t len)
{
	out[0] = (uint8_t)(0x80 | (opcode & 0x0f)); /* FIN, no RSV bits */
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xffff) {
		uint16_t be = htobe16((uint16_t)len);
		out[1] = 126;
		memcpy(out + 2, &be, 2);
		return 4;
	}
	uint64_t be = htobe64(len);
	out[1] = 127;
	memcpy(out + 2, &be, 8);
	return 10;
}

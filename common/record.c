/* record.c - mdb records: struct <-> MessagePack <-> JSON (see record.h and mdb-records(7)).
 *
 * One table per record type lists its keys in wire order with their C type and
 * place in struct mdb_record; encode, decode and the text rendering are driven
 * by it, so adding a key is a one-line change.
 *
 * record_encode() and record_decode() are the hot path (every record of every
 * stage) and work on the bytes directly: the encoder writes MessagePack with
 * small inline writers, the decoder reads it with a hand-written walker that
 * never reads past len and bounds nesting (mp_head, mp_val, mp_skip). Neither
 * allocates.
 *
 * The generic paths (JSON, text) build msgpack-c objects. Their input is first
 * checked by the same walker (mp_skip) and only then handed to
 * msgpack_unpack(): that API allocates an array's elements as soon as it reads
 * the header, so a 5-byte "array of 4 billion" would otherwise ask for 96 GiB.
 * After the scan every count is bounded by the input length.
 *
 * Numbers are formatted and parsed with snprintf/strtod, which follow
 * LC_NUMERIC: the tools never call setlocale(), so it stays "C".
 */
#include "record.h"
#include "mpwrite.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <msgpack.h>

/* Containers nested deeper than this are rejected. A record is a map holding
 * at most a rej's embedded record (itself maybe a rej), and msgpack_unpack()
 * gives up at 32 levels anyway. */
#define MP_MAX_DEPTH 16

/* Zone chunk kept across records: msgpack_zone_clear() keeps one chunk, and
 * 64 KiB holds the objects of any input up to MDB_REC_MAX_BYTES (each input
 * byte yields at most one 24-byte object), so decoding never mallocs then. */
#define CODEC_ZONE_CHUNK (64 * 1024)

struct mdb_codec {
	msgpack_zone zone;		     /* objects of the last record rendered */
	struct mdb_record init[MDB_REC_MAX]; /* record_init() of each type, for decoding */
};

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EBADMSG;
}

/* Keys are a few bytes: a loop beats a call to memcmp. */
static inline bool bytes_eq(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

/* ---- the schema ---- */

enum fkind {
	FK_F64, /* double; NaN is absent */
	FK_I64, /* int64_t */
	FK_I32, /* int32_t */
	FK_U32, /* uint32_t */
	FK_STR, /* char[size], NUL-terminated */
	FK_RAW, /* rej.r: one MessagePack object, verbatim */
};

struct field {
	char key[8]; /* NUL-padded, for the encoder's one-store copy */
	uint8_t klen;
	uint8_t kind;	   /* enum fkind */
	uint8_t opt;	   /* strings: left out of the map when empty */
	uint16_t off;	   /* offset in struct mdb_record */
	uint16_t size;	   /* bytes of the member */
	const char *wrong; /* static decode errors naming the key */
	const char *range;
};

/* The tables read best one key per line, in wire order; clang-format would
 * reflow the macro lists. */
/* clang-format off */
#define FLD(ty, k, kind, opt, member, wrong, range) {					\
	#k, sizeof(#k) - 1, kind, opt, offsetof(struct mdb_record, member),		\
	sizeof(((struct mdb_record *)0)->member), #ty "." #k ": " wrong, #ty "." #k ": " range	\
}
#define DBL(ty, k)		FLD(ty, k, FK_F64, 0, ty.k, "not a number", "out of range")
#define INT(ty, k, kind, member) FLD(ty, k, kind, 0, member, "not an integer", "out of range")
#define STR(ty, k, opt, member)	FLD(ty, k, FK_STR, opt, member, "not a string", \
				    "too long or holds NUL")
/* s and ts lead every keyed record (indexes 0 and 1: F_REQUIRED); src ends it. */
#define HEAD(ty)		STR(ty, s, 0, s), INT(ty, ts, FK_I64, ts)
#define TAIL(ty)		STR(ty, src, 1, src)
#define F_REQUIRED		3u

static const struct field tick_fields[] = {
	HEAD(tick),
	DBL(tick, p),
	DBL(tick, v),
	DBL(tick, b),
	DBL(tick, a),
	INT(tick, n, FK_I64, tick.n),
	TAIL(tick),
};

static const struct field bar_fields[] = {
	HEAD(bar),
	INT(bar, iv, FK_I32, bar.iv),
	DBL(bar, o),
	DBL(bar, h),
	DBL(bar, l),
	DBL(bar, c),
	DBL(bar, v),
	INT(bar, n, FK_I64, bar.n),
	DBL(bar, bv),
	DBL(bar, av),
	INT(bar, f, FK_U32, bar.f),
	TAIL(bar),
};

static const struct field feat_fields[] = {
	HEAD(feat),
	INT(feat, iv, FK_I32, feat.iv),
	DBL(feat, rsi),
	DBL(feat, ema12),
	DBL(feat, ema26),
	DBL(feat, bbm),
	DBL(feat, bbu),
	DBL(feat, bbl),
	DBL(feat, atr),
	DBL(feat, vwap),
	DBL(feat, vma),
	DBL(feat, macd),
	DBL(feat, macds),
	DBL(feat, macdh),
	DBL(feat, mom),
	INT(feat, f, FK_U32, feat.f),
	TAIL(feat),
};

static const struct field sig_fields[] = {
	HEAD(sig),
	INT(sig, iv, FK_I32, sig.iv),
	STR(sig, name, 0, sig.name),
	DBL(sig, val),
	TAIL(sig),
};

/* A rej has no s/ts of its own: they belong to the record inside r. */
static const struct field rej_fields[] = {
	STR(rej, why, 0, rej.why),
	FLD(rej, r, FK_RAW, 1, rej.r, "not MessagePack", "too long"),
	TAIL(rej),
};

struct rtype {
	char name[8]; /* NUL-padded like field.key */
	uint8_t nlen;
	uint8_t nfields;
	uint16_t isize;	   /* bytes of the union member record_init() sets */
	uint32_t required; /* bits of fields[] that must be present */
	const struct field *fields;
};

#define RTYPE(nm, req, isize)							\
	{#nm, sizeof(#nm) - 1, sizeof(nm##_fields) / sizeof(struct field), isize, req, nm##_fields}
#define MEMBER_SIZE(nm)		sizeof(((struct mdb_record *)0)->nm)

/* A rej's member ends with 768 raw bytes that only r_len makes meaningful:
 * record_init() sets why and r_len and leaves r alone. */
static const struct rtype rtypes[MDB_REC_MAX] = {
	[MDB_REC_TICK] = RTYPE(tick, F_REQUIRED, MEMBER_SIZE(tick)),
	[MDB_REC_BAR] = RTYPE(bar, F_REQUIRED, MEMBER_SIZE(bar)),
	[MDB_REC_FEAT] = RTYPE(feat, F_REQUIRED, MEMBER_SIZE(feat)),
	[MDB_REC_SIG] = RTYPE(sig, F_REQUIRED, MEMBER_SIZE(sig)),
	[MDB_REC_REJ] = RTYPE(rej, 0, offsetof(struct mdb_rej, r)),
};
/* clang-format on */

/* Field sets are bitmasks; the encoder sizes its string table by this. */
#define MAX_FIELDS 20
_Static_assert(sizeof feat_fields / sizeof *feat_fields <= MAX_FIELDS, "MAX_FIELDS");
/* Strings fit a fixstr or a str 8: the encoder writes no longer header. */
_Static_assert(MDB_WHY_MAX <= 256 && MDB_NAME_MAX <= 256 && MDB_SYM_MAX <= 256 &&
		   MDB_SRC_MAX <= 256,
	       "string fields fit a str 8");
/* STR_WORDS_OK: string fields are whole 8-byte words (short_strnlen, put_str). */
_Static_assert(MDB_WHY_MAX % 8 == 0 && MDB_NAME_MAX % 8 == 0 && MDB_SYM_MAX % 8 == 0 &&
		   MDB_SRC_MAX % 8 == 0,
	       "string fields are whole words");

static bool type_valid(int t)
{
	return t > MDB_REC_NONE && t < MDB_REC_MAX;
}

const char *record_type_name(enum mdb_rtype t)
{
	return type_valid((int)t) ? rtypes[t].name : NULL;
}

/* record_type_parse(), inlined into record_decode(). */
static inline enum mdb_rtype type_parse(const void *name, size_t len)
{
	for (int t = MDB_REC_NONE + 1; t < MDB_REC_MAX; t++)
		if (len == rtypes[t].nlen && bytes_eq(name, rtypes[t].name, len))
			return (enum mdb_rtype)t;
	return MDB_REC_NONE;
}

enum mdb_rtype record_type_parse(const char *name, size_t len)
{
	return type_parse(name, len);
}

static void *fptr(struct mdb_record *r, const struct field *f)
{
	return (char *)r + f->off;
}

static const void *fcptr(const struct mdb_record *r, const struct field *f)
{
	return (const char *)r + f->off;
}

/* Only the common fields and t's member: record_decode() does the same for
 * every record (from the image in its codec), and clearing the whole struct,
 * mostly a rej's raw buffer, each time showed in profiles. Padding inside
 * what is set is zeroed too. */
void record_init(struct mdb_record *r, enum mdb_rtype t)
{
	if (!type_valid((int)t)) {
		memset(r, 0, sizeof *r);
		r->t = t;
		return;
	}
	const struct rtype *d = &rtypes[t];
	memset(r, 0, offsetof(struct mdb_record, tick) + d->isize);
	r->t = t;
	if (t == MDB_REC_REJ)
		r->rej.r_len = 0;
	for (unsigned i = 0; i < d->nfields; i++)
		if (d->fields[i].kind == FK_F64)
			*(double *)fptr(r, &d->fields[i]) = NAN;
}

/* ---- MessagePack scanner: bounds-checked, allocation-free ---- */

/* The reason for input that ends too early; compared by address. */
static const char mp_truncated[] = "truncated";

enum mp_kind { MK_SCALAR, MK_STR, MK_BIN, MK_EXT, MK_ARRAY, MK_MAP };

struct mp_head {
	enum mp_kind kind;
	uint64_t n; /* containers: element count; others: payload bytes after the header */
};

/* Read the header of the object at *off and advance past it (not past its
 * payload). Returns NULL, or a static reason. */
static const char *mp_head(const uint8_t *p, size_t len, size_t *off, struct mp_head *h)
{
	size_t o = *off;
	unsigned lenbytes = 0; /* a big-endian length follows the type byte */

	if (o >= len)
		return mp_truncated;
	uint8_t b = p[o++];
	h->n = 0;
	if (b <= 0x7f || b >= 0xe0) {
		h->kind = MK_SCALAR;
	} else if (b <= 0x8f) {
		h->kind = MK_MAP;
		h->n = b & 0x0f;
	} else if (b <= 0x9f) {
		h->kind = MK_ARRAY;
		h->n = b & 0x0f;
	} else if (b <= 0xbf) {
		h->kind = MK_STR;
		h->n = b & 0x1f;
	} else {
		switch (b) {
		case 0xc0: /* nil */
		case 0xc2: /* false */
		case 0xc3: /* true */
			h->kind = MK_SCALAR;
			break;
		case 0xc1:
			return "invalid type byte 0xc1";
		case 0xc4: /* bin 8/16/32 */
		case 0xc5:
		case 0xc6:
			h->kind = MK_BIN;
			lenbytes = 1u << (b - 0xc4);
			break;
		case 0xc7: /* ext 8/16/32 */
		case 0xc8:
		case 0xc9:
			h->kind = MK_EXT;
			lenbytes = 1u << (b - 0xc7);
			break;
		case 0xca: /* float 32 */
			h->kind = MK_SCALAR;
			h->n = 4;
			break;
		case 0xcb: /* float 64 */
			h->kind = MK_SCALAR;
			h->n = 8;
			break;
		case 0xcc: /* uint 8..64 */
		case 0xcd:
		case 0xce:
		case 0xcf:
			h->kind = MK_SCALAR;
			h->n = 1u << (b - 0xcc);
			break;
		case 0xd0: /* int 8..64 */
		case 0xd1:
		case 0xd2:
		case 0xd3:
			h->kind = MK_SCALAR;
			h->n = 1u << (b - 0xd0);
			break;
		case 0xd4: /* fixext 1..16: type byte + data */
		case 0xd5:
		case 0xd6:
		case 0xd7:
		case 0xd8:
			h->kind = MK_EXT;
			h->n = 1 + (1u << (b - 0xd4));
			break;
		case 0xd9: /* str 8/16/32 */
		case 0xda:
		case 0xdb:
			h->kind = MK_STR;
			lenbytes = 1u << (b - 0xd9);
			break;
		case 0xdc: /* array 16/32 */
		case 0xdd:
			h->kind = MK_ARRAY;
			lenbytes = 2u << (b - 0xdc);
			break;
		default: /* 0xde, 0xdf: map 16/32 */
			h->kind = MK_MAP;
			lenbytes = 2u << (b - 0xde);
			break;
		}
	}
	if (lenbytes) {
		if (lenbytes > len - o)
			return mp_truncated;
		for (unsigned i = 0; i < lenbytes; i++)
			h->n = h->n << 8 | p[o + i];
		o += lenbytes;
		if (h->kind == MK_EXT)
			h->n += 1; /* the ext type byte */
	}
	*off = o;
	return NULL;
}

/* Skip one complete object at *off, which sits at nesting level depth (0:
 * the top). Returns NULL, or a static reason; on success *off <= len is just
 * past the object. Iterative, with a fast path for the bytes records are
 * mostly made of: this runs on every record decoded. */
static const char *mp_skip(const uint8_t *p, size_t len, size_t *off, unsigned depth)
{
	uint64_t left[MP_MAX_DEPTH + 1]; /* objects still to skip in each open container */
	unsigned top = 0;
	size_t o = *off;
	struct mp_head h;
	const char *e;

	left[0] = 1;
	for (;;) {
		while (left[top] == 0) {
			if (top == 0) {
				*off = o;
				return NULL;
			}
			top--;
		}
		left[top]--;
		if (o >= len)
			return mp_truncated;
		uint8_t b = p[o];
		if (b <= 0x7f || b >= 0xe0) { /* fixint */
			o++;
			continue;
		}
		if (b >= 0xa0 && b <= 0xbf) { /* fixstr */
			if ((size_t)(b & 0x1f) >= len - o)
				return mp_truncated;
			o += 1 + (size_t)(b & 0x1f);
			continue;
		}
		if (b == 0xcb) { /* float 64 */
			if (8 >= len - o)
				return mp_truncated;
			o += 9;
			continue;
		}
		if ((e = mp_head(p, len, &o, &h)))
			return e;
		if (h.kind != MK_MAP && h.kind != MK_ARRAY) {
			if (h.n > len - o)
				return mp_truncated;
			o += h.n;
			continue;
		}
		if (depth + top >= MP_MAX_DEPTH)
			return "nested too deeply";
		uint64_t items = h.kind == MK_MAP ? 2 * h.n : h.n;
		/* Every object takes at least one byte: refuse absurd counts at once. */
		if (items > len - o)
			return mp_truncated;
		left[++top] = items;
	}
}

/* Read a string at *off into (*s, *n); *s = NULL when the object is another
 * type, which is skipped. */
static const char *mp_str(const uint8_t *p, size_t len, size_t *off, const uint8_t **s, size_t *n)
{
	size_t o = *off;
	struct mp_head h;
	const char *e = mp_head(p, len, &o, &h);

	if (e)
		return e;
	if (h.kind != MK_STR) {
		*s = NULL;
		return mp_skip(p, len, off, 1);
	}
	if (h.n > len - o)
		return mp_truncated;
	*s = p + o;
	*n = (size_t)h.n;
	*off = o + (size_t)h.n;
	return NULL;
}

/* Big-endian unsigned integer of n = 1, 2, 4 or 8 bytes at p. */
static inline uint64_t get_be(const uint8_t *p, unsigned n)
{
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	switch (n) {
	case 1:
		return p[0];
	case 2:
		memcpy(&u16, p, 2);
		return be16toh(u16);
	case 4:
		memcpy(&u32, p, 4);
		return be32toh(u32);
	default:
		memcpy(&u64, p, 8);
		return be64toh(u64);
	}
}

/* What a record's value can be, as msgpack-c would classify it: MV_UINT is
 * any integer >= 0 (msgpack-c's POSITIVE_INTEGER), MV_NEG one < 0. Booleans,
 * containers, bin and ext are MV_OTHER. */
enum mv_kind { MV_NIL, MV_UINT, MV_NEG, MV_FLOAT, MV_STR, MV_OTHER };

struct mp_val {
	enum mv_kind kind;
	union {
		uint64_t u;	  /* MV_UINT */
		int64_t i;	  /* MV_NEG */
		double f;	  /* MV_FLOAT (a float 32 widened) */
		const uint8_t *s; /* MV_STR: n bytes */
	};
	size_t n;
};

/* mp_val() for every type byte but float 64 and positive fixint: b at
 * p[o - 1]. */
static const char *mp_val_more(const uint8_t *p, size_t len, size_t o, uint8_t b, size_t *off,
			       struct mp_val *v)
{
	size_t left = len - o;
	unsigned nb; /* bytes of a number or of a string's length */

	if (b >= 0xe0) { /* negative fixint */
		v->kind = MV_NEG;
		v->i = (int8_t)b;
		*off = o;
		return NULL;
	}
	if (b >= 0xa0 && b <= 0xbf) {
		v->n = b & 0x1f;
		nb = 0;
		goto str;
	}
	switch (b) {
	case 0xc0:
		v->kind = MV_NIL;
		*off = o;
		return NULL;
	case 0xca: { /* float 32 */
		if (left < 4)
			return mp_truncated;
		uint32_t u = (uint32_t)get_be(p + o, 4);
		float f;
		memcpy(&f, &u, sizeof f);
		v->kind = MV_FLOAT;
		v->f = f;
		*off = o + 4;
		return NULL;
	}
	case 0xcc: /* uint 8..64 */
	case 0xcd:
	case 0xce:
	case 0xcf:
		nb = 1u << (b - 0xcc);
		if (left < nb)
			return mp_truncated;
		v->kind = MV_UINT;
		v->u = get_be(p + o, nb);
		*off = o + nb;
		return NULL;
	case 0xd0: /* int 8..64 */
	case 0xd1:
	case 0xd2:
	case 0xd3: {
		nb = 1u << (b - 0xd0);
		if (left < nb)
			return mp_truncated;
		uint64_t u = get_be(p + o, nb);
		unsigned sh = 64 - 8 * nb;
		/* sign-extend: the sign bit to the top and back */
		int64_t i = (int64_t)(u << sh) >> sh;
		if (i < 0) {
			v->kind = MV_NEG;
			v->i = i;
		} else {
			v->kind = MV_UINT;
			v->u = (uint64_t)i;
		}
		*off = o + nb;
		return NULL;
	}
	case 0xd9: /* str 8/16/32 */
	case 0xda:
	case 0xdb:
		nb = 1u << (b - 0xd9);
		if (left < nb)
			return mp_truncated;
		v->n = (size_t)get_be(p + o, nb);
		goto str;
	default: /* containers, bin, ext, booleans: skipped whole */
		v->kind = MV_OTHER;
		return mp_skip(p, len, off, 1);
	}
str:
	o += nb;
	if (v->n > len - o)
		return mp_truncated;
	v->kind = MV_STR;
	v->s = p + o;
	*off = o + v->n;
	return NULL;
}

/* Read one complete object at *off (nesting level 1: a map's value) and
 * advance past it. Returns NULL, or a static reason. Float 64, small ints
 * and short strings, most of what records hold, are read inline. */
static inline const char *mp_val(const uint8_t *p, size_t len, size_t *off, struct mp_val *v)
{
	size_t o = *off;

	if (o >= len)
		return mp_truncated;
	uint8_t b = p[o++];
	if (b == 0xcb) {
		if (len - o < 8)
			return mp_truncated;
		uint64_t u = get_be(p + o, 8);
		v->kind = MV_FLOAT;
		memcpy(&v->f, &u, sizeof v->f);
		*off = o + 8;
		return NULL;
	}
	if (b <= 0x7f) {
		v->kind = MV_UINT;
		v->u = b;
		*off = o;
		return NULL;
	}
	if ((b & 0xe0) == 0xa0) { /* fixstr: t, s and src */
		v->n = b & 0x1f;
		if (v->n > len - o)
			return mp_truncated;
		v->kind = MV_STR;
		v->s = p + o;
		*off = o + v->n;
		return NULL;
	}
	return mp_val_more(p, len, o, b, off, v);
}

/* mp_str() for a key, with a fixstr read inline. */
static inline const char *mp_key(const uint8_t *p, size_t len, size_t *off, const uint8_t **k,
				 size_t *n)
{
	size_t o = *off;

	if (o < len && (p[o] & 0xe0) == 0xa0) {
		size_t kn = p[o] & 0x1f;
		if (kn >= len - o)
			return mp_truncated;
		*k = p + o + 1;
		*n = kn;
		*off = o + 1 + kn;
		return NULL;
	}
	return mp_str(p, len, off, k, n);
}

static bool key_is(const uint8_t *k, size_t n, const char *want, size_t wn)
{
	return k && n == wn && bytes_eq(k, want, wn);
}

/* Whether data[0..len) is exactly one well-formed MessagePack map. */
static const char *mp_check_map(const uint8_t *data, size_t len)
{
	struct mp_head h;
	size_t off = 0;
	const char *e;

	if (!data || len == 0)
		return "empty";
	if ((e = mp_head(data, len, &off, &h)))
		return e;
	if (h.kind != MK_MAP)
		return "not a map";
	off = 0;
	if ((e = mp_skip(data, len, &off, 0)))
		return e;
	return off == len ? NULL : "trailing bytes after the map";
}

int record_peek(const uint8_t *data, size_t len, char *sym, size_t symsz, const char **why)
{
	struct mp_head h;
	size_t off = 0;
	int type = 0;
	bool have_s = false;
	const char *e;

	if (sym && symsz)
		sym[0] = '\0';
	else
		sym = NULL;
	if (!data || len == 0)
		return bad(why, "empty");
	if ((e = mp_head(data, len, &off, &h)))
		return bad(why, e);
	if (h.kind != MK_MAP)
		return bad(why, "not a map");
	/* t and s come first in what record_encode() writes: usually two keys. */
	for (uint64_t i = 0; i < h.n; i++) {
		const uint8_t *k, *v;
		size_t kn = 0, vn = 0;
		if ((e = mp_str(data, len, &off, &k, &kn)))
			return bad(why, e);
		if (key_is(k, kn, "t", 1)) {
			if ((e = mp_str(data, len, &off, &v, &vn)))
				return bad(why, e);
			if (!v)
				return bad(why, "t: not a string");
			if (!(type = (int)record_type_parse((const char *)v, vn)))
				return bad(why, "unknown t");
		} else if (sym && !have_s && key_is(k, kn, "s", 1)) {
			if (off < len && data[off] == 0xc0) { /* nil: no symbol */
				off++;
			} else {
				if ((e = mp_str(data, len, &off, &v, &vn)))
					return bad(why, e);
				if (!v)
					return bad(why, "s: not a string");
				size_t n = vn < symsz - 1 ? vn : symsz - 1;
				memcpy(sym, v, n);
				sym[n] = '\0';
			}
			have_s = true;
		} else if ((e = mp_skip(data, len, &off, 1))) {
			return bad(why, e);
		}
		if (type && (have_s || !sym))
			return type;
	}
	return type ? type : bad(why, "missing t");
}

/* ---- writing into a caller's buffer ---- */

int record_wbuf_write(void *data, const char *p, size_t n)
{
	struct record_wbuf *w = data;

	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return -1;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

/* Every string field is whole words (STR_WORDS_OK). */
#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* strnlen() of a string field of size bytes, a word at a time: the lowest
 * byte flagged by the zero-byte test is the first NUL (a false flag can only
 * sit above a real one). Cheaper than the call, or a byte loop. */
static inline size_t short_strnlen(const char *s, size_t size)
{
	for (size_t w = 0; w < size; w += 8) {
		uint64_t x;
		memcpy(&x, s + w, 8);
		x = le64toh(x);
		uint64_t z = (x - ONES) & ~x & HIGHS;
		if (z)
			return w + ((unsigned)__builtin_ctzll(z) >> 3);
	}
	return size;
}

/* The encoder's writers (mpwrite.h). record_encode() sizes the whole map
 * first and checks it against cap once, so they write without checks. */

/* A key or a type name: a fixstr of n <= 7 bytes from k[8], NUL-padded.
 * While the record has 8 bytes left after the header, all of k goes in one
 * store and what follows overwrites the padding; never past end. */
static inline uint8_t *put_key(uint8_t *o, const uint8_t *end, const char k[8], size_t n)
{
	*o++ = (uint8_t)(0xa0 | n);
	if (end - o >= 8) {
		memcpy(o, k, 8);
	} else {
		for (size_t i = 0; i < n; i++)
			o[i] = (uint8_t)k[i];
	}
	return o + n;
}

/* The encoder for type d. Inlined with a constant d for the hot types, so
 * the compiler unrolls the loops over the constant field table and the
 * switches on the field kinds disappear (they were most of the encoder's
 * time: an indirect jump per field). */
static inline __attribute__((always_inline)) int encode_as(const struct mdb_record *r, uint8_t *buf,
							   size_t cap, const struct rtype *d)
{
	uint8_t slen[MAX_FIELDS] = {0}; /* the strings' lengths, found while sizing */
	uint32_t present = 0;
	unsigned n = 1; /* keys: t */
	size_t need = 2 + 1 + d->nlen;

	/* Which fields go into the map, and the bytes they take. Every check
	 * that gives -EINVAL comes before the one that gives -ENOSPC. */
#pragma GCC unroll 24
	for (unsigned i = 0; i < d->nfields; i++) {
		const struct field *f = &d->fields[i];
		const void *p = fcptr(r, f);
		size_t vn = 0;
		switch (f->kind) {
		case FK_F64:
			if (isnan(*(const double *)p))
				continue;
			need += 9;
			break;
		case FK_I64:
			need += mp_int_size(*(const int64_t *)p);
			break;
		case FK_I32:
			need += mp_int_size(*(const int32_t *)p);
			break;
		case FK_U32:
			need += mp_int_size(*(const uint32_t *)p);
			break;
		case FK_STR:
			vn = short_strnlen(p, f->size);
			if (vn == f->size)
				return -EINVAL; /* no NUL */
			if (vn == 0 && f->opt)
				continue;
			slen[i] = (uint8_t)vn;
			need += mp_str_head_size(vn) + vn;
			break;
		case FK_RAW: /* must be one complete MessagePack object */
			if (r->rej.r_len == 0)
				continue;
			if (r->rej.r_len > MDB_REJ_RAW_MAX)
				return -EINVAL;
			if (mp_skip(r->rej.r, r->rej.r_len, &vn, 1) || vn != r->rej.r_len)
				return -EINVAL;
			need += vn;
			break;
		}
		present |= 1u << i;
		need += 1 + f->klen;
		n++;
	}
	need += n < 16 ? 1 : 3; /* fixmap or map 16 */
	if (need > cap)
		return -ENOSPC;

	uint8_t *o = buf;
	const uint8_t *end = buf + need;
	if (n < 16) {
		*o++ = (uint8_t)(0x80 | n);
	} else {
		*o++ = 0xde;
		o = mp_put_be(o, n, 2);
	}
	*o++ = 0xa1;
	*o++ = 't';
	o = put_key(o, end, d->name, d->nlen);
#pragma GCC unroll 24
	for (unsigned i = 0; i < d->nfields; i++) {
		const struct field *f = &d->fields[i];
		const void *p = fcptr(r, f);
		if (!(present & 1u << i))
			continue;
		o = put_key(o, end, f->key, f->klen);
		switch (f->kind) {
		case FK_F64:
			o = mp_put_f64(o, *(const double *)p);
			break;
		case FK_I64:
			o = mp_put_int(o, *(const int64_t *)p);
			break;
		case FK_I32:
			o = mp_put_int(o, *(const int32_t *)p);
			break;
		case FK_U32:
			o = mp_put_int(o, *(const uint32_t *)p);
			break;
		case FK_STR:
			o = mp_put_str(o, p, slen[i]);
			break;
		case FK_RAW: /* already one complete object: copy it in */
			memcpy(o, p, r->rej.r_len);
			o += r->rej.r_len;
			break;
		}
	}
	return (int)(o - buf);
}

int record_encode(const struct mdb_record *r, uint8_t *buf, size_t cap)
{
	if (!r || !type_valid((int)r->t))
		return -EINVAL;
	switch (r->t) {
	case MDB_REC_BAR:
		return encode_as(r, buf, cap, &rtypes[MDB_REC_BAR]);
	case MDB_REC_FEAT:
		return encode_as(r, buf, cap, &rtypes[MDB_REC_FEAT]);
	case MDB_REC_TICK:
		return encode_as(r, buf, cap, &rtypes[MDB_REC_TICK]);
	default:
		return encode_as(r, buf, cap, &rtypes[r->t]);
	}
}

/* ---- decoding ---- */

mdb_codec *codec_new(void)
{
	mdb_codec *c = malloc(sizeof *c);

	if (!c)
		return NULL;
	if (!msgpack_zone_init(&c->zone, CODEC_ZONE_CHUNK)) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	for (int t = MDB_REC_NONE + 1; t < MDB_REC_MAX; t++)
		record_init(&c->init[t], (enum mdb_rtype)t);
	return c;
}

void codec_free(mdb_codec **c)
{
	if (!c || !*c)
		return;
	msgpack_zone_destroy(&(*c)->zone);
	free(*c);
	*c = NULL;
}

/* Check data[0..len) and unpack it into the codec's zone; *root stays valid
 * until the next call on c. */
static int codec_unpack(mdb_codec *c, const uint8_t *data, size_t len, msgpack_object *root,
			const char **why)
{
	const char *e;
	size_t off = 0;

	if (!c)
		return -EINVAL;
	if ((e = mp_check_map(data, len)))
		return bad(why, e);
	msgpack_zone_clear(&c->zone);
	switch (msgpack_unpack((const char *)data, len, &off, &c->zone, root)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		if (why)
			*why = "out of memory";
		return -ENOMEM;
	default: /* mp_check_map() accepted it, so this is not expected */
		return bad(why, "malformed MessagePack");
	}
	if (root->type != MSGPACK_OBJECT_MAP || off != len)
		return bad(why, "malformed MessagePack");
	return 0;
}

static bool obj_key_is(const msgpack_object *k, const char *want, size_t wn)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == wn &&
	       bytes_eq(k->via.str.ptr, want, wn);
}

/* Whether key (k, n) is f's. With 8 bytes readable at k (room), one masked
 * compare of words instead of a loop over bytes. */
static inline bool field_key_is(const struct field *f, const uint8_t *k, size_t n, size_t room)
{
	uint64_t a, b;

	if (n != f->klen)
		return false;
	if (room < 8)
		return bytes_eq(k, f->key, n);
	memcpy(&a, k, 8);
	memcpy(&b, f->key, 8);
	return ((le64toh(a) ^ le64toh(b)) & (UINT64_MAX >> (64 - 8 * n))) == 0;
}

/* The index of key (k, n) among d's fields, -1 if unknown (k == NULL: not
 * a string); room bytes are readable at k. Keys usually arrive in table
 * order, so the one after the previous match is tried first. */
static inline int find_field(const struct rtype *d, const uint8_t *k, size_t n, size_t room,
			     unsigned hint)
{
	if (!k || n == 0)
		return -1;
	if (hint < d->nfields && field_key_is(&d->fields[hint], k, n, room))
		return (int)hint;
	for (unsigned i = 0; i < d->nfields; i++)
		if (field_key_is(&d->fields[i], k, n, room))
			return (int)i;
	return -1;
}

/* Whether s[0..n) holds no NUL. The strings are short: a loop beats a call
 * to memchr. */
static inline bool nul_free(const uint8_t *s, size_t n)
{
	uint8_t all = 0xff;

	for (size_t i = 0; i < n; i++)
		all &= (uint8_t)(s[i] ? 0xff : 0);
	return all != 0;
}

/* Copy s[0..n) into a NUL-filled string field p (n < its size), by whole
 * words, the bytes past n masked to NUL, when they are readable (room bytes
 * at s): a symbol is a few bytes, and the variable-length memcpy (a rep movsb)
 * cost more than the rest of a bar's decoding. */
static inline void put_str(void *p, const uint8_t *s, size_t n, size_t room)
{
	size_t words = (n + 7) / 8;

	if (words * 8 > room) {
		memcpy(p, s, n);
		return;
	}
	for (size_t w = 0; w < words; w++) {
		uint64_t x;
		size_t keep = n - 8 * w;
		memcpy(&x, s + 8 * w, 8);
		if (keep < 8)
			x = htole64(le64toh(x) & ((1ULL << (8 * keep)) - 1));
		memcpy((char *)p + 8 * w, &x, 8);
	}
}

/* Store value v into field f of r. raw[0..rawn) are v's bytes, for rej.r; the input
 * is readable up to end.
 * Returns 1 (stored), 0 (nil: left absent) or -1 with *why set. */
static inline __attribute__((always_inline)) int
set_field(struct mdb_record *r, const struct field *f, const struct mp_val *v, const uint8_t *raw,
	  size_t rawn, const uint8_t *end, const char **why)
{
	void *p = fptr(r, f);
	int64_t i;

	if (v->kind == MV_NIL)
		return 0;
	switch (f->kind) {
	case FK_F64:
		if (v->kind == MV_FLOAT)
			*(double *)p = v->f;
		else if (v->kind == MV_UINT)
			*(double *)p = (double)v->u;
		else if (v->kind == MV_NEG)
			*(double *)p = (double)v->i;
		else
			break;
		return 1;
	case FK_I64:
	case FK_I32:
	case FK_U32:
		if (v->kind == MV_UINT) {
			if (v->u > INT64_MAX)
				goto range;
			i = (int64_t)v->u;
		} else if (v->kind == MV_NEG) {
			i = v->i;
		} else {
			break;
		}
		if (f->kind == FK_I64) {
			*(int64_t *)p = i;
		} else if (f->kind == FK_I32) {
			if (i < INT32_MIN || i > INT32_MAX)
				goto range;
			*(int32_t *)p = (int32_t)i;
		} else {
			if (i < 0 || i > UINT32_MAX)
				goto range;
			*(uint32_t *)p = (uint32_t)i;
		}
		return 1;
	case FK_STR:
		if (v->kind != MV_STR)
			break;
		if (v->n >= f->size || !nul_free(v->s, v->n))
			goto range;
		/* record_init() zeroed the array: the NUL is there already */
		put_str(p, v->s, v->n, (size_t)(end - v->s));
		return 1;
	case FK_RAW:
		/* Copy the bytes rather than re-pack the object, so r stays
		 * verbatim even when its producer chose other encodings. */
		if (rawn > MDB_REJ_RAW_MAX)
			goto range;
		memcpy(r->rej.r, raw, rawn);
		r->rej.r_len = (uint32_t)rawn;
		return 1;
	}
	*why = f->wrong;
	return -1;
range:
	*why = f->range;
	return -1;
}

/* The common case, fast: after t, the keys of type d in table order (some
 * may be missing), each value well formed and of the right type, nothing
 * else. Inlined with a constant d for the hot types, so the loop over the
 * table unrolls and set_field's switch disappears. Returns 0 with r filled,
 * or -1: anything unusual, left for the general walk to decode or report. */
static inline __attribute__((always_inline)) int decode_in_order(const uint8_t *data, size_t len,
								 size_t off, uint64_t nkeys,
								 struct mdb_record *r,
								 const struct rtype *d)
{
	uint32_t present = 0;
	const char *sem = NULL;

#pragma GCC unroll 24
	for (unsigned i = 0; i < d->nfields; i++) {
		const struct field *f = &d->fields[i];
		if (nkeys == 0)
			break;
		if (len - off < 1u + f->klen || data[off] != (0xa0 | f->klen) ||
		    !bytes_eq(data + off + 1, f->key, f->klen))
			continue; /* absent, or another key: the check at the end decides */
		size_t o = off + 1 + f->klen, voff = o;
		/* the encodings record_encode() picks for the field's kind, stored
		 * straight away (f->kind is a constant here) */
		if (f->kind == FK_F64 && len - o >= 9 && data[o] == 0xcb) {
			uint64_t u = get_be(data + o + 1, 8);
			memcpy(fptr(r, f), &u, 8);
			present |= 1u << i;
			off = o + 9;
			nkeys--;
			continue;
		}
		if (f->kind == FK_I64 && len - o >= 9 && data[o] == 0xcf) {
			uint64_t u = get_be(data + o + 1, 8);
			if (u <= INT64_MAX) {
				*(int64_t *)fptr(r, f) = (int64_t)u;
				present |= 1u << i;
				off = o + 9;
				nkeys--;
				continue;
			}
		}
		if ((f->kind == FK_I64 || f->kind == FK_I32 || f->kind == FK_U32) && len - o >= 1 &&
		    data[o] <= 0x7f) { /* positive fixint: in range for every kind */
			if (f->kind == FK_I64)
				*(int64_t *)fptr(r, f) = data[o];
			else if (f->kind == FK_I32)
				*(int32_t *)fptr(r, f) = data[o];
			else
				*(uint32_t *)fptr(r, f) = data[o];
			present |= 1u << i;
			off = o + 1;
			nkeys--;
			continue;
		}
		struct mp_val v;
		if (mp_val(data, len, &o, &v))
			return -1;
		int rc = set_field(r, f, &v, data + voff, o - voff, data + len, &sem);
		if (rc < 0)
			return -1;
		if (rc > 0)
			present |= 1u << i;
		off = o;
		nkeys--;
	}
	if (nkeys || off != len || (present & d->required) != d->required)
		return -1;
	return 0;
}

/* One pass over the bytes. Malformed MessagePack anywhere in the record is
 * reported before a wrong value (as when the whole record was checked before
 * decoding): the first wrong value is kept in sem and the walk goes on to the
 * end, only checking. */
int record_decode(mdb_codec *c, const uint8_t *data, size_t len, struct mdb_record *r,
		  const char **why)
{
	struct mp_head h;
	size_t off = 0, body;
	const char *e, *sem = NULL;
	const struct rtype *d = NULL;
	uint64_t ti, i;

	if (!c)
		return -EINVAL;
	if (!data || len == 0)
		return bad(why, "empty");
	if ((e = mp_head(data, len, &off, &h)))
		return bad(why, e);
	if (h.kind != MK_MAP)
		return bad(why, "not a map");
	/* Every key and value takes a byte: refuse absurd counts at once. */
	if (h.n > (len - off) / 2)
		return bad(why, mp_truncated);
	body = off;

	/* t first (record_encode() writes it first): it decides which keys are
	 * known. Keys before it are walked twice. */
	for (ti = 0; ti < h.n; ti++) {
		const uint8_t *k;
		size_t kn = 0;
		if ((e = mp_key(data, len, &off, &k, &kn)))
			return bad(why, e);
		if (key_is(k, kn, "t", 1))
			break;
		if ((e = mp_skip(data, len, &off, 1)))
			return bad(why, e);
	}
	if (ti == h.n) {
		sem = "missing t";
	} else {
		struct mp_val v;
		enum mdb_rtype t;
		if ((e = mp_val(data, len, &off, &v)))
			return bad(why, e);
		if (v.kind != MV_STR) {
			sem = "t: not a string";
		} else if (!(t = type_parse(v.s, v.n))) {
			sem = "unknown t";
		} else {
			/* what record_init(r, t) does, from the codec's copy */
			d = &rtypes[t];
			memcpy(r, &c->init[t], offsetof(struct mdb_record, tick) + d->isize);
			if (t == MDB_REC_REJ)
				r->rej.r_len = 0;
			if (ti == 0) { /* as record_encode() writes it */
				int fast = -1;
				if (t == MDB_REC_BAR)
					fast = decode_in_order(data, len, off, h.n - 1, r,
							       &rtypes[MDB_REC_BAR]);
				else if (t == MDB_REC_FEAT)
					fast = decode_in_order(data, len, off, h.n - 1, r,
							       &rtypes[MDB_REC_FEAT]);
				else if (t == MDB_REC_TICK)
					fast = decode_in_order(data, len, off, h.n - 1, r,
							       &rtypes[MDB_REC_TICK]);
				if (fast == 0)
					return 0;
				if (t != MDB_REC_REJ) /* start r again for the general walk */
					memcpy(r, &c->init[t],
					       offsetof(struct mdb_record, tick) + d->isize);
			}
		}
	}

	uint32_t seen = 0, present = 0;
	unsigned hint = 0;

	i = ti + 1;
	if (ti > 0 && ti < h.n) { /* t was not first: start again */
		i = 0;
		off = body;
	}
	for (; i < h.n; i++) {
		const uint8_t *k;
		size_t kn = 0, voff;
		struct mp_val v;
		int fi = -1, rc;
		if ((e = mp_key(data, len, &off, &k, &kn)))
			return bad(why, e);
		if (i != ti && !sem) {
			fi = find_field(d, k, kn, (size_t)(data + len - k), hint);
			if (fi < 0 && key_is(k, kn, "t", 1)) {
				sem = "duplicate key t";
			} else if (fi >= 0 && seen & 1u << fi) {
				sem = "duplicate key";
				fi = -1;
			}
		}
		if (fi < 0) { /* t, a key this version does not know, or checking only */
			if ((e = mp_skip(data, len, &off, 1)))
				return bad(why, e);
			continue;
		}
		hint = (unsigned)fi + 1;
		seen |= 1u << fi;
		voff = off;
		if ((e = mp_val(data, len, &off, &v)))
			return bad(why, e);
		rc = set_field(r, &d->fields[fi], &v, data + voff, off - voff, data + len, &sem);
		if (rc > 0)
			present |= 1u << fi;
	}
	if (off != len)
		return bad(why, "trailing bytes after the map");
	if (sem)
		return bad(why, sem);
	if ((present & d->required) != d->required)
		return bad(why, !(present & 1u) ? "missing s" : "missing ts");
	return 0;
}

/* ---- JSON and text output ---- */

/* Output text into out[0..cap) keeping room for the NUL. esc > 0 while a
 * non-string map key is being rendered inside a JSON string: every '"' and
 * '\\' is then escaped once per level. */
struct tbuf {
	char *out;
	size_t cap; /* usable bytes, the NUL excluded */
	size_t len;
	bool full;
	unsigned esc;
};

static void tb_init(struct tbuf *w, char *out, size_t cap)
{
	w->out = out;
	w->cap = cap ? (cap - 1 < INT_MAX ? cap - 1 : INT_MAX) : 0;
	w->len = 0;
	w->full = cap == 0;
	w->esc = 0;
}

static void tb_putc(struct tbuf *w, char ch)
{
	if (w->full || w->len >= w->cap) {
		w->full = true;
		return;
	}
	w->out[w->len++] = ch;
}

static void tb_escaped(struct tbuf *w, const char *s, size_t n)
{
	for (size_t i = 0; i < n && !w->full; i++) {
		if (s[i] == '"' || s[i] == '\\') {
			/* escaped n times, either becomes 2^n - 1 backslashes and itself */
			size_t bs = ((size_t)1 << w->esc) - 1;
			for (size_t j = 0; j < bs && !w->full; j++)
				tb_putc(w, '\\');
		}
		tb_putc(w, s[i]);
	}
}

static void tb_write(struct tbuf *w, const char *s, size_t n)
{
	if (w->esc) {
		tb_escaped(w, s, n);
		return;
	}
	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return;
	}
	if (n) /* msgpack-c gives an empty string a NULL pointer */
		memcpy(w->out + w->len, s, n);
	w->len += n;
}

static void tb_str(struct tbuf *w, const char *s)
{
	tb_write(w, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void tb_printf(struct tbuf *w, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		w->full = true; /* not reached: callers print short numbers */
	else
		tb_write(w, tmp, (size_t)n);
}

/* Decimal digits of u, right-aligned ending at end; returns the first. */
static char *fmt_u64(char *end, uint64_t u)
{
	do {
		*--end = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	return end;
}

static void tb_u64(struct tbuf *w, uint64_t u)
{
	char buf[20];
	char *p = fmt_u64(buf + sizeof buf, u);

	tb_write(w, p, (size_t)(buf + sizeof buf - p));
}

static void tb_i64(struct tbuf *w, int64_t i)
{
	char buf[21];
	char *p = fmt_u64(buf + sizeof buf, i < 0 ? 0 - (uint64_t)i : (uint64_t)i);

	if (i < 0)
		*--p = '-';
	tb_write(w, p, (size_t)(buf + sizeof buf - p));
}

/* Fast path for the doubles records carry (prices, volumes): x = y / 10^k
 * with y < 10^15 and k <= 9. Division is correctly rounded like strtod(), so
 * if y / 10^k gives back x, "y with k decimals" reads back as x; the first
 * such k gives exactly the digits %.15g prints (x is within half an ulp of
 * y / 10^k, far less than half a unit in its 15th digit) and, for
 * 1e-4 <= |x| < 1e15, in the same fixed notation. Returns the length written
 * to buf, or 0 to let snprintf() decide. */
static int fmt_decimal(char *buf, double x)
{
	static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
	double a = x < 0 ? -x : x; /* no libm: the library does not link it */

	if (!(a >= 1e-4 && a < 1e15))
		return 0;
	for (int k = 0; k < 10; k++) {
		double y = a * p10[k];
		if (y >= 1e15)
			return 0;
		uint64_t u = (uint64_t)y;
		if ((double)u != y || y / p10[k] != a)
			continue;
		if (k > 0 && u % 10 == 0)
			return 0; /* not the shortest digits; not expected */
		char digits[24], *d = fmt_u64(digits + sizeof digits, u);
		int nd = (int)(digits + sizeof digits - d), n = 0;
		if (x < 0)
			buf[n++] = '-';
		if (nd <= k) { /* 0.000ddd */
			buf[n++] = '0';
			buf[n++] = '.';
			for (int i = nd; i < k; i++)
				buf[n++] = '0';
			memcpy(buf + n, d, (size_t)nd);
			n += nd;
		} else {
			memcpy(buf + n, d, (size_t)(nd - k));
			n += nd - k;
			if (k) {
				buf[n++] = '.';
				memcpy(buf + n, d + nd - k, (size_t)k);
				n += k;
			}
		}
		buf[n] = '\0';
		return n;
	}
	return 0;
}

/* The shortest of %.15g/%.16g/%.17g that reads back as x (17 always does).
 * json: keep a '.' or an exponent so the value parses back as a float. */
static void tb_double(struct tbuf *w, double x, bool f32, bool json)
{
	char buf[40];
	int lo = f32 ? 6 : 15, hi = f32 ? 9 : 17;

	if (!isfinite(x)) {
		tb_str(w, json ? "null" : isnan(x) ? "nan" : x < 0 ? "-inf" : "inf");
		return;
	}
	int n = f32 ? 0 : fmt_decimal(buf, x);
	if (n) {
		tb_write(w, buf, (size_t)n);
		if (json && !memchr(buf, '.', (size_t)n))
			tb_write(w, ".0", 2);
		return;
	}
	for (int prec = lo; prec <= hi; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, x);
		if (prec == hi || (f32 ? strtof(buf, NULL) == (float)x : strtod(buf, NULL) == x))
			break;
	}
	tb_str(w, buf);
	if (json && !strpbrk(buf, ".e"))
		tb_write(w, ".0", 2);
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs,
 * surrogates or code points past U+10FFFF), 0 if there is none. */
static size_t utf8_len(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];
	size_t need;
	uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */

	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need;
}

/* A JSON string: quotes, backslash and control characters escaped, bytes
 * that are not UTF-8 replaced by U+FFFD, so the output is always valid. */
static void tb_json_str(struct tbuf *w, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *s = (const uint8_t *)str;
	size_t run = 0; /* start of bytes that pass unchanged */
	size_t i = 0;

	tb_write(w, "\"", 1);
	while (i < n) {
		uint8_t c = s[i];
		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			continue;
		}
		size_t u = c >= 0x80 ? utf8_len(s + i, n - i) : 0;
		if (u) {
			i += u;
			continue;
		}
		tb_write(w, str + run, i - run);
		switch (c) {
		case '"':
			tb_write(w, "\\\"", 2);
			break;
		case '\\':
			tb_write(w, "\\\\", 2);
			break;
		case '\b':
			tb_write(w, "\\b", 2);
			break;
		case '\f':
			tb_write(w, "\\f", 2);
			break;
		case '\n':
			tb_write(w, "\\n", 2);
			break;
		case '\r':
			tb_write(w, "\\r", 2);
			break;
		case '\t':
			tb_write(w, "\\t", 2);
			break;
		default:
			if (c < 0x20) {
				char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
				tb_write(w, e, sizeof e);
			} else {
				tb_write(w, "\\ufffd", 6);
			}
		}
		run = ++i;
	}
	/* msgpack-c hands an empty string as NULL: NULL + 0 is undefined
	 * behaviour (UBSan, issue 9), so skip the empty tail */
	if (run < n)
		tb_write(w, str + run, n - run);
	tb_write(w, "\"", 1);
}

static void tb_hex(struct tbuf *w, const char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char buf[64];
	size_t k = 0;

	tb_write(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		buf[k++] = hex[(uint8_t)p[i] >> 4];
		buf[k++] = hex[(uint8_t)p[i] & 15];
		if (k == sizeof buf || i + 1 == n) {
			tb_write(w, buf, k);
			k = 0;
		}
	}
	tb_write(w, "\"", 1);
}

static void tb_json(struct tbuf *w, const msgpack_object *o);

/* JSON keys are strings: any other key is rendered as JSON and that text
 * becomes the key's string (1 -> "1", nil -> "null"). */
static void tb_json_key(struct tbuf *w, const msgpack_object *k)
{
	if (k->type == MSGPACK_OBJECT_STR) {
		tb_json_str(w, k->via.str.ptr, k->via.str.size);
		return;
	}
	tb_write(w, "\"", 1);
	w->esc++;
	tb_json(w, k);
	w->esc--;
	tb_write(w, "\"", 1);
}

/* Recursion is bounded: mp_check_map() limited nesting to MP_MAX_DEPTH. */
static void tb_json(struct tbuf *w, const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		tb_write(w, "null", 4);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		tb_str(w, o->via.boolean ? "true" : "false");
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		tb_u64(w, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		tb_i64(w, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		tb_double(w, o->via.f64, o->type == MSGPACK_OBJECT_FLOAT32, true);
		break;
	case MSGPACK_OBJECT_STR:
		tb_json_str(w, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		tb_hex(w, o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_EXT: /* the ext type is lost: JSON has no such thing */
		tb_hex(w, o->via.ext.ptr, o->via.ext.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		tb_write(w, "[", 1);
		for (uint32_t i = 0; i < o->via.array.size && !w->full; i++) {
			if (i)
				tb_write(w, ",", 1);
			tb_json(w, &o->via.array.ptr[i]);
		}
		tb_write(w, "]", 1);
		break;
	case MSGPACK_OBJECT_MAP:
		tb_write(w, "{", 1);
		for (uint32_t i = 0; i < o->via.map.size && !w->full; i++) {
			if (i)
				tb_write(w, ",", 1);
			tb_json_key(w, &o->via.map.ptr[i].key);
			tb_write(w, ":", 1);
			tb_json(w, &o->via.map.ptr[i].val);
		}
		tb_write(w, "}", 1);
		break;
	default:
		tb_write(w, "null", 4);
		break;
	}
}

/* NUL-terminate and return the length, or -ENOSPC leaving "" behind. */
static int tb_finish(struct tbuf *w, size_t cap)
{
	if (w->full) {
		if (cap)
			w->out[0] = '\0';
		return -ENOSPC;
	}
	w->out[w->len] = '\0';
	return (int)w->len;
}

int record_to_json(mdb_codec *c, const uint8_t *data, size_t len, char *out, size_t cap,
		   const char **why)
{
	msgpack_object root;
	struct tbuf w;
	int rc = codec_unpack(c, data, len, &root, why);

	if (rc)
		return rc;
	tb_init(&w, out, cap);
	tb_json(&w, &root);
	return tb_finish(&w, cap);
}

/* ---- JSON input ---- */

static const char *pack_json(msgpack_packer *pk, json_t *j, unsigned depth)
{
	const char *e;

	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *key;
		size_t klen;
		json_t *v;
		if (depth >= MP_MAX_DEPTH)
			return "nested too deeply";
		msgpack_pack_map(pk, json_object_size(j));
		json_object_keylen_foreach(j, key, klen, v)
		{
			msgpack_pack_str_with_body(pk, key, klen);
			if ((e = pack_json(pk, v, depth + 1)))
				return e;
		}
		return NULL;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		if (depth >= MP_MAX_DEPTH)
			return "nested too deeply";
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v)
		{
			if ((e = pack_json(pk, v, depth + 1)))
				return e;
		}
		return NULL;
	}
	case JSON_STRING:
		msgpack_pack_str_with_body(pk, json_string_value(j), json_string_length(j));
		return NULL;
	case JSON_INTEGER:
		msgpack_pack_int64(pk, json_integer_value(j));
		return NULL;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(j));
		return NULL;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		return NULL;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		return NULL;
	case JSON_NULL:
		msgpack_pack_nil(pk);
		return NULL;
	}
	return "unknown JSON type";
}

int record_from_json(mdb_codec *c, const char *line, size_t len, uint8_t *out, size_t cap,
		     const char **why)
{
	json_error_t jerr;
	json_t *root, *t;
	const char *e = NULL;
	struct record_wbuf w = {out, cap, 0, false};
	msgpack_packer pk;

	/* jansson builds its own tree (it allocates); the codec is not needed. */
	(void)c;
	if (!line)
		return bad(why, "empty");
	/* Duplicate keys are refused rather than silently dropped; \u0000 is
	 * allowed because MessagePack strings may hold NUL. */
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!root)
		return bad(why, "invalid JSON");
	if (!json_is_object(root))
		e = "not a JSON object";
	else if (!(t = json_object_get(root, "t")))
		e = "missing t";
	else if (!json_is_string(t) ||
		 !record_type_parse(json_string_value(t), json_string_length(t)))
		e = "unknown t";
	if (!e) {
		msgpack_packer_init(&pk, &w, record_wbuf_write);
		e = pack_json(&pk, root, 0);
	}
	json_decref(root);
	if (e)
		return bad(why, e);
	if (w.full)
		return -ENOSPC;
	return w.len > INT_MAX ? -ENOSPC : (int)w.len;
}

/* ---- text ---- */

/* Strings that could be mistaken for several words or a key are quoted. */
static void tb_text_str(struct tbuf *w, const char *s, size_t n)
{
	bool plain = n > 0;

	for (size_t i = 0; i < n && plain; i++) {
		uint8_t c = (uint8_t)s[i];
		plain = c > 0x20 && c < 0x7f && c != '"' && c != '=' && c != '\\';
	}
	if (plain)
		tb_write(w, s, n);
	else
		tb_json_str(w, s, n);
}

static void tb_text_val(struct tbuf *w, const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_STR)
		tb_text_str(w, o->via.str.ptr, o->via.str.size);
	else if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
		tb_double(w, o->via.f64, o->type == MSGPACK_OBJECT_FLOAT32, false);
	else
		tb_json(w, o);
}

static void tb_time(struct tbuf *w, int64_t ts)
{
	int64_t sec = ts / 1000000000, ns = ts % 1000000000;
	struct tm tm;

	if (ns < 0) {
		ns += 1000000000;
		sec--;
	}
	time_t tt = (time_t)sec;
	if (!gmtime_r(&tt, &tm)) {
		tb_printf(w, "%" PRId64, ts);
		return;
	}
	tb_printf(w, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ns);
}

static void tb_flags(struct tbuf *w, uint32_t f)
{
	static const char *const names[] = {"final", "filled", "revised"};
	bool first = true;

	if (f == 0) {
		tb_write(w, "0", 1);
		return;
	}
	for (unsigned i = 0; i < 3; i++) {
		if (f & 1u << i) {
			if (!first)
				tb_write(w, "+", 1);
			tb_str(w, names[i]);
			first = false;
		}
	}
	if (f & ~7u)
		tb_printf(w, "%s0x%" PRIx32, first ? "" : "+", f & ~7u);
}

/* One " key=value" for a known field; NaN and empty optional strings are
 * absent and print nothing. iv prints as "60s", f as flag names. */
static void tb_text_field(struct tbuf *w, const struct mdb_record *r, const struct field *f,
			  const msgpack_object *root)
{
	const void *p = fcptr(r, f);

	if (f->kind == FK_F64 && isnan(*(const double *)p))
		return;
	if (f->kind == FK_STR && f->opt && !*(const char *)p)
		return;
	if (f->kind == FK_RAW && r->rej.r_len == 0)
		return;
	if (f->kind == FK_I32 && key_is((const uint8_t *)f->key, f->klen, "iv", 2)) {
		tb_printf(w, " %" PRId32 "s", *(const int32_t *)p);
		return;
	}
	tb_write(w, " ", 1);
	tb_write(w, f->key, f->klen);
	tb_write(w, "=", 1);
	switch (f->kind) {
	case FK_F64:
		tb_double(w, *(const double *)p, false, false);
		break;
	case FK_I64:
		tb_i64(w, *(const int64_t *)p);
		break;
	case FK_I32:
		tb_i64(w, *(const int32_t *)p);
		break;
	case FK_U32:
		if (f->klen == 1 && f->key[0] == 'f')
			tb_flags(w, *(const uint32_t *)p);
		else
			tb_printf(w, "%" PRIu32, *(const uint32_t *)p);
		break;
	case FK_STR:
		tb_text_str(w, p, strlen(p));
		break;
	case FK_RAW: /* the rejected record, as JSON */
		for (uint32_t i = 0; i < root->via.map.size; i++)
			if (obj_key_is(&root->via.map.ptr[i].key, f->key, f->klen))
				tb_json(w, &root->via.map.ptr[i].val);
		break;
	}
}

int record_to_text(mdb_codec *c, const uint8_t *data, size_t len, char *out, size_t cap,
		   const char **why)
{
	struct mdb_record r;
	msgpack_object root;
	struct tbuf w;
	/* Decoded twice: as a struct for the known keys, as objects for the
	 * rest. The second cannot fail on input the first accepted. */
	int rc = record_decode(c, data, len, &r, why);

	if (!rc)
		rc = codec_unpack(c, data, len, &root, why);
	if (rc)
		return rc;
	const struct rtype *d = &rtypes[r.t];
	unsigned first = d->required ? 2 : 0; /* s and ts lead the line */

	tb_init(&w, out, cap);
	if (d->required)
		tb_time(&w, r.ts);
	else
		tb_write(&w, "-", 1);
	tb_write(&w, " ", 1);
	tb_write(&w, d->name, d->nlen);
	tb_write(&w, " ", 1);
	if (r.s[0])
		tb_text_str(&w, r.s, strlen(r.s));
	else
		tb_write(&w, "-", 1);
	for (unsigned i = first; i < d->nfields; i++)
		tb_text_field(&w, &r, &d->fields[i], &root);
	/* Keys this version does not know, as they came. */
	for (uint32_t i = 0; i < root.via.map.size && !w.full; i++) {
		const msgpack_object_kv *kv = &root.via.map.ptr[i];
		if (obj_key_is(&kv->key, "t", 1) ||
		    (kv->key.type == MSGPACK_OBJECT_STR &&
		     find_field(d, (const uint8_t *)kv->key.via.str.ptr, kv->key.via.str.size, 0,
				0) >= 0))
			continue;
		tb_write(&w, " ", 1);
		if (kv->key.type == MSGPACK_OBJECT_STR)
			tb_text_str(&w, kv->key.via.str.ptr, kv->key.via.str.size);
		else
			tb_json(&w, &kv->key);
		tb_write(&w, "=", 1);
		tb_text_val(&w, &kv->val);
	}
	return tb_finish(&w, cap);
}

int record_span(const uint8_t *data, size_t len)
{
	size_t off = 0;
	const char *e;

	if (!data || len == 0)
		return 0;
	if (!(e = mp_skip(data, len, &off, 0)))
		return off > MDB_REC_MAX_BYTES ? -EBADMSG : (int)off;
	/* A prefix of a valid object only lacks bytes: wait for them, unless
	 * what is there already proves it larger than any record. */
	return e == mp_truncated && len < MDB_REC_MAX_BYTES ? 0 : -EBADMSG;
}

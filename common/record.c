/* record.c - mdb records: struct <-> MessagePack <-> JSON (see record.h and mdb-records(7)).
 *
 * One table per record type lists its keys in wire order with their C type and
 * place in struct mdb_record; encode, decode and the text rendering are driven
 * by it, so adding a key is a one-line change.
 *
 * Untrusted MessagePack is first checked by a hand-written scanner (mp_skip)
 * that never reads past len and bounds nesting. Only then is it handed to
 * msgpack_unpack(): that API allocates an array's elements as soon as it reads
 * the header, so a 5-byte "array of 4 billion" would otherwise ask for 96 GiB.
 * After the scan every count is bounded by the input length.
 *
 * Numbers are formatted and parsed with snprintf/strtod, which follow
 * LC_NUMERIC: the tools never call setlocale(), so it stays "C".
 */
#include "record.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
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
	msgpack_zone zone; /* objects of the last record decoded */
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
	const char *key;
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
	const char *name;
	uint8_t nlen;
	uint8_t nfields;
	uint32_t required; /* bits of fields[] that must be present */
	const struct field *fields;
};

#define RTYPE(nm, req)								\
	{#nm, sizeof(#nm) - 1, sizeof(nm##_fields) / sizeof(struct field), req, nm##_fields}

static const struct rtype rtypes[MDB_REC_MAX] = {
	[MDB_REC_TICK] = RTYPE(tick, F_REQUIRED),
	[MDB_REC_BAR] = RTYPE(bar, F_REQUIRED),
	[MDB_REC_FEAT] = RTYPE(feat, F_REQUIRED),
	[MDB_REC_SIG] = RTYPE(sig, F_REQUIRED),
	[MDB_REC_REJ] = RTYPE(rej, 0),
};
/* clang-format on */

static bool type_valid(int t)
{
	return t > MDB_REC_NONE && t < MDB_REC_MAX;
}

const char *record_type_name(enum mdb_rtype t)
{
	return type_valid((int)t) ? rtypes[t].name : NULL;
}

enum mdb_rtype record_type_parse(const char *name, size_t len)
{
	for (int t = MDB_REC_NONE + 1; t < MDB_REC_MAX; t++)
		if (len == rtypes[t].nlen && bytes_eq(name, rtypes[t].name, len))
			return (enum mdb_rtype)t;
	return MDB_REC_NONE;
}

static void *fptr(struct mdb_record *r, const struct field *f)
{
	return (char *)r + f->off;
}

static const void *fcptr(const struct mdb_record *r, const struct field *f)
{
	return (const char *)r + f->off;
}

void record_init(struct mdb_record *r, enum mdb_rtype t)
{
	memset(r, 0, sizeof *r);
	r->t = t;
	if (!type_valid((int)t))
		return;
	const struct rtype *d = &rtypes[t];
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

/* Locate the value of top-level key (key, kn) in a checked map. */
static bool mp_find(const uint8_t *data, size_t len, const char *key, size_t kn, size_t *voff,
		    size_t *vlen)
{
	struct mp_head h;
	size_t off = 0;

	if (mp_head(data, len, &off, &h) || h.kind != MK_MAP)
		return false;
	for (uint64_t i = 0; i < h.n; i++) {
		const uint8_t *k;
		size_t n = 0, v;
		if (mp_str(data, len, &off, &k, &n))
			return false;
		v = off;
		if (mp_skip(data, len, &off, 1))
			return false;
		if (key_is(k, n, key, kn)) {
			*voff = v;
			*vlen = off - v;
			return true;
		}
	}
	return false;
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

struct wbuf {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool full; /* a write did not fit: the result is -ENOSPC */
};

/* msgpack_packer callback: append or fail, never allocate. */
static int wbuf_write(void *data, const char *p, size_t n)
{
	struct wbuf *w = data;

	if (w->full || n > w->cap - w->len) {
		w->full = true;
		return -1;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

static void pack_key(msgpack_packer *pk, const char *k, size_t n)
{
	msgpack_pack_str_with_body(pk, k, n);
}

/* Whether the field goes into the map; -EINVAL when its value cannot be
 * encoded (unterminated string, r that is not one MessagePack object). */
static int field_present(const struct mdb_record *r, const struct field *f)
{
	const void *p = fcptr(r, f);
	size_t n;

	switch (f->kind) {
	case FK_F64:
		return !isnan(*(const double *)p);
	case FK_STR:
		n = strnlen(p, f->size);
		if (n == f->size)
			return -EINVAL;
		return n > 0 || !f->opt;
	case FK_RAW:
		if (r->rej.r_len == 0)
			return 0;
		if (r->rej.r_len > MDB_REJ_RAW_MAX)
			return -EINVAL;
		n = 0;
		if (mp_skip(r->rej.r, r->rej.r_len, &n, 1) || n != r->rej.r_len)
			return -EINVAL;
		return 1;
	default:
		return 1;
	}
}

int record_encode(const struct mdb_record *r, uint8_t *buf, size_t cap)
{
	if (!r || !type_valid((int)r->t))
		return -EINVAL;
	const struct rtype *d = &rtypes[r->t];
	struct wbuf w = {buf, cap, 0, false};
	msgpack_packer pk;
	uint32_t present = 0;
	size_t n = 1; /* t */

	for (unsigned i = 0; i < d->nfields; i++) {
		int rc = field_present(r, &d->fields[i]);
		if (rc < 0)
			return rc;
		if (rc) {
			present |= 1u << i;
			n++;
		}
	}
	msgpack_packer_init(&pk, &w, wbuf_write);
	msgpack_pack_map(&pk, n);
	pack_key(&pk, "t", 1);
	msgpack_pack_str_with_body(&pk, d->name, d->nlen);
	for (unsigned i = 0; i < d->nfields && !w.full; i++) {
		const struct field *f = &d->fields[i];
		const void *p = fcptr(r, f);
		if (!(present & 1u << i))
			continue;
		pack_key(&pk, f->key, f->klen);
		switch (f->kind) {
		case FK_F64:
			msgpack_pack_double(&pk, *(const double *)p);
			break;
		case FK_I64:
			msgpack_pack_int64(&pk, *(const int64_t *)p);
			break;
		case FK_I32:
			msgpack_pack_int32(&pk, *(const int32_t *)p);
			break;
		case FK_U32:
			msgpack_pack_uint32(&pk, *(const uint32_t *)p);
			break;
		case FK_STR:
			msgpack_pack_str_with_body(&pk, p, strlen(p));
			break;
		case FK_RAW: /* already one complete object: copy it in */
			wbuf_write(&w, p, r->rej.r_len);
			break;
		}
	}
	return w.full ? -ENOSPC : (int)w.len;
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

/* The index of key k among d's fields, -1 if unknown. Keys usually arrive
 * in table order, so the one after the previous match is tried first. */
static int find_field(const struct rtype *d, const msgpack_object *k, unsigned hint)
{
	if (k->type != MSGPACK_OBJECT_STR)
		return -1;
	if (hint < d->nfields && obj_key_is(k, d->fields[hint].key, d->fields[hint].klen))
		return (int)hint;
	for (unsigned i = 0; i < d->nfields; i++)
		if (obj_key_is(k, d->fields[i].key, d->fields[i].klen))
			return (int)i;
	return -1;
}

/* Store value v into field f of r. Returns 1 (stored), 0 (nil: left absent)
 * or -EBADMSG. data/len: the whole record, for rej.r's verbatim bytes. */
static int set_field(struct mdb_record *r, const struct field *f, const msgpack_object *v,
		     const uint8_t *data, size_t len, const char **why)
{
	void *p = fptr(r, f);
	int64_t i;

	if (v->type == MSGPACK_OBJECT_NIL)
		return 0;
	switch (f->kind) {
	case FK_F64:
		if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
			*(double *)p = v->via.f64;
		else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			*(double *)p = (double)v->via.u64;
		else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
			*(double *)p = (double)v->via.i64;
		else
			return bad(why, f->wrong);
		return 1;
	case FK_I64:
	case FK_I32:
	case FK_U32:
		if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			if (v->via.u64 > INT64_MAX)
				return bad(why, f->range);
			i = (int64_t)v->via.u64;
		} else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
			i = v->via.i64;
		} else {
			return bad(why, f->wrong);
		}
		if (f->kind == FK_I64) {
			*(int64_t *)p = i;
		} else if (f->kind == FK_I32) {
			if (i < INT32_MIN || i > INT32_MAX)
				return bad(why, f->range);
			*(int32_t *)p = (int32_t)i;
		} else {
			if (i < 0 || i > UINT32_MAX)
				return bad(why, f->range);
			*(uint32_t *)p = (uint32_t)i;
		}
		return 1;
	case FK_STR:
		if (v->type != MSGPACK_OBJECT_STR)
			return bad(why, f->wrong);
		if (v->via.str.size >= f->size || memchr(v->via.str.ptr, 0, v->via.str.size))
			return bad(why, f->range);
		memcpy(p, v->via.str.ptr, v->via.str.size);
		((char *)p)[v->via.str.size] = '\0';
		return 1;
	case FK_RAW: {
		/* Copy the bytes rather than re-pack the object, so r stays
		 * verbatim even when its producer chose other encodings. */
		size_t voff, vlen;
		if (!mp_find(data, len, f->key, f->klen, &voff, &vlen))
			return bad(why, f->wrong);
		if (vlen > MDB_REJ_RAW_MAX)
			return bad(why, f->range);
		memcpy(r->rej.r, data + voff, vlen);
		r->rej.r_len = (uint32_t)vlen;
		return 1;
	}
	}
	return bad(why, f->wrong);
}

/* record_decode(), also handing back the unpacked map for record_to_text(). */
static int decode(mdb_codec *c, const uint8_t *data, size_t len, struct mdb_record *r,
		  msgpack_object *root, const char **why)
{
	enum mdb_rtype t = MDB_REC_NONE;
	uint32_t ti; /* index of t */
	int rc = codec_unpack(c, data, len, root, why);

	if (rc)
		return rc;
	const msgpack_object_kv *kv = root->via.map.ptr;
	uint32_t n = root->via.map.size;

	/* t first (it is usually the first key): it decides which keys are known. */
	for (ti = 0; ti < n && !obj_key_is(&kv[ti].key, "t", 1); ti++)
		;
	if (ti == n)
		return bad(why, "missing t");
	if (kv[ti].val.type != MSGPACK_OBJECT_STR)
		return bad(why, "t: not a string");
	t = record_type_parse(kv[ti].val.via.str.ptr, kv[ti].val.via.str.size);
	if (!t)
		return bad(why, "unknown t");

	const struct rtype *d = &rtypes[t];
	uint32_t seen = 0, present = 0;
	unsigned hint = 0;

	record_init(r, t);
	for (uint32_t i = 0; i < n; i++) {
		if (i == ti)
			continue;
		int fi = find_field(d, &kv[i].key, hint);
		if (fi < 0) {
			if (obj_key_is(&kv[i].key, "t", 1))
				return bad(why, "duplicate key t");
			continue; /* a key this version does not know */
		}
		hint = (unsigned)fi + 1;
		if (seen & 1u << fi)
			return bad(why, "duplicate key");
		seen |= 1u << fi;
		if ((rc = set_field(r, &d->fields[fi], &kv[i].val, data, len, why)) < 0)
			return rc;
		if (rc)
			present |= 1u << fi;
	}
	if ((present & d->required) != d->required)
		return bad(why, !(present & 1u) ? "missing s" : "missing ts");
	return 0;
}

int record_decode(mdb_codec *c, const uint8_t *data, size_t len, struct mdb_record *r,
		  const char **why)
{
	msgpack_object root;

	return decode(c, data, len, r, &root, why);
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
	struct wbuf w = {out, cap, 0, false};
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
		msgpack_packer_init(&pk, &w, wbuf_write);
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
	int rc = decode(c, data, len, &r, &root, why);

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
		if (obj_key_is(&kv->key, "t", 1) || find_field(d, &kv->key, 0) >= 0)
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

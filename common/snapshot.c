/* snapshot.c - JSON snapshot files (see snapshot.h). Parsing goes through
 * jansson, which allocates while parsing and frees it before returning; a
 * snapshot is one parse per file version, not per record. */
#include "snapshot.h"
#include "scid.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

/* Keys a field may not take: they are the tick's own or mdb-watch's. */
static bool key_reserved(const char *k)
{
	static const char *const reserved[] = {"t", "s", "ts", "src", "n", "off", "fid", "sub"};
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
		if (strcmp(k, reserved[i]) == 0)
			return true;
	return false;
}

static bool key_ok(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n >= SNAP_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	return true;
}

static int parse_quote(const char *sym, json_t *o, int64_t ts0, struct snap_quote *q, char *why,
		       size_t whylen)
{
	if (!json_is_object(o))
		return bad(why, whylen, "symbols.%s: not an object", sym);
	size_t slen = strlen(sym);
	if (slen == 0 || slen >= sizeof q->s)
		return bad(why, whylen, "symbols.%.40s: symbol empty or too long", sym);
	memcpy(q->s, sym, slen + 1);
	q->ts = ts0;
	q->nf = 0;
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		if (strcmp(k, "ts") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) <= 0)
				return bad(why, whylen, "symbols.%s.ts: not a time in ns", sym);
			q->ts = json_integer_value(v);
			continue;
		}
		if (!key_ok(k))
			return bad(why, whylen, "symbols.%s: bad field name '%.40s'", sym, k);
		if (key_reserved(k))
			return bad(why, whylen, "symbols.%s.%s: a reserved name", sym, k);
		if (json_is_null(v))
			continue;
		if (!json_is_number(v))
			return bad(why, whylen, "symbols.%s.%s: not a number", sym, k);
		double x = json_number_value(v);
		if (!isfinite(x))
			return bad(why, whylen, "symbols.%s.%s: not a finite number", sym, k);
		if (q->nf == SNAP_MAX_FIELDS)
			return bad(why, whylen, "symbols.%s: more than %d fields", sym,
				   SNAP_MAX_FIELDS);
		memcpy(q->key[q->nf], k, strlen(k) + 1);
		q->val[q->nf++] = x;
	}
	if (q->ts <= 0)
		return bad(why, whylen, "symbols.%s: no ts (and none at the top)", sym);
	return 0;
}

int snap_parse(const char *buf, size_t len, struct snap *out, char *why, size_t whylen)
{
	if (len > SNAP_MAX_BYTES)
		return bad(why, whylen, "larger than %u bytes", SNAP_MAX_BYTES);
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return bad(why, whylen, "offset %d: %s", jerr.position, jerr.text);
	int rc = 0;
	json_t *seq = json_object_get(root, "seq"), *ts = json_object_get(root, "ts");
	json_t *syms = json_object_get(root, "symbols");
	out->n = 0;
	out->ts = 0;
	if (!json_is_object(root)) {
		rc = bad(why, whylen, "not a JSON object");
	} else if (!json_is_integer(seq) || json_integer_value(seq) < 0 ||
		   (uint64_t)json_integer_value(seq) > SNAP_SEQ_MAX) {
		rc = bad(why, whylen, "seq: missing or not an integer in 0..2^47");
	} else if (ts && (!json_is_integer(ts) || json_integer_value(ts) <= 0)) {
		rc = bad(why, whylen, "ts: not a time in ns");
	} else if (!json_is_object(syms)) {
		rc = bad(why, whylen, "symbols: missing or not an object");
	} else {
		out->seq = (uint64_t)json_integer_value(seq);
		out->ts = ts ? json_integer_value(ts) : 0;
		const char *k;
		json_t *v;
		json_object_foreach(syms, k, v)
		{
			if (out->n == SNAP_MAX_SYMBOLS) {
				rc = bad(why, whylen, "more than %d symbols", SNAP_MAX_SYMBOLS);
				break;
			}
			if ((rc = parse_quote(k, v, out->ts, &out->q[out->n], why, whylen)) < 0)
				break;
			out->n++;
		}
	}
	json_decref(root);
	return rc;
}

int snap_format(const struct snap *in, char *buf, size_t cap)
{
	size_t n = 0;
#define PUT(...)                                                                                   \
	do {                                                                                       \
		int w_ = snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__);                    \
		if (w_ < 0 || n + (size_t)w_ >= cap)                                               \
			return -ENOSPC;                                                            \
		n += (size_t)w_;                                                                   \
	} while (0)
	/* a JSON string: names may hold quotes, backslashes and control bytes */
#define PUT_STR(str)                                                                               \
	do {                                                                                       \
		PUT("\"");                                                                         \
		for (const unsigned char *c_ = (const unsigned char *)(str); *c_; c_++) {          \
			if (*c_ == '"' || *c_ == '\\')                                             \
				PUT("\\%c", *c_);                                                  \
			else if (*c_ < 0x20)                                                       \
				PUT("\\u%04x", *c_);                                               \
			else                                                                       \
				PUT("%c", *c_);                                                    \
		}                                                                                  \
		PUT("\"");                                                                         \
	} while (0)
	/* ts 0 means the file had none: leave it out, so what is written parses */
	PUT("{\"seq\":%llu", (unsigned long long)in->seq);
	if (in->ts)
		PUT(",\"ts\":%lld", (long long)in->ts);
	PUT(",\"symbols\":{");
	for (int i = 0; i < in->n; i++) {
		const struct snap_quote *q = &in->q[i];
		PUT("%s", i ? "," : "");
		PUT_STR(q->s);
		PUT(":{\"ts\":%lld", (long long)q->ts);
		for (int f = 0; f < q->nf; f++) {
			PUT(",");
			PUT_STR(q->key[f]);
			PUT(":%.17g", q->val[f]);
		}
		PUT("}");
	}
	PUT("}}\n");
#undef PUT_STR
#undef PUT
	return (int)n;
}

const struct snap_quote *snap_find(const struct snap *sn, const char *s)
{
	for (int i = 0; i < sn->n; i++)
		if (strcmp(sn->q[i].s, s) == 0)
			return &sn->q[i];
	return NULL;
}

/* The value of field k in q; false when q lacks it. */
static bool field(const struct snap_quote *q, const char *k, double *v)
{
	for (int i = 0; q && i < q->nf; i++) {
		if (strcmp(q->key[i], k) == 0) {
			*v = q->val[i];
			return true;
		}
	}
	return false;
}

int snap_encode_delta(const struct snap_quote *cur, const struct snap_quote *prev, int64_t off,
		      uint32_t fid, uint8_t *buf, size_t cap)
{
	struct mdb_record rec;
	record_init(&rec, MDB_REC_TICK);
	memcpy(rec.s, cur->s, sizeof rec.s);
	memcpy(rec.src, "snap", 5);
	rec.ts = cur->ts;
	rec.tick.n = 0;
	bool changed[SNAP_MAX_FIELDS];
	int nchanged = 0;
	for (int i = 0; i < cur->nf; i++) {
		double old;
		changed[i] =
		    !field(prev, cur->key[i], &old) || memcmp(&old, &cur->val[i], sizeof old) != 0;
		if (!changed[i])
			continue;
		nchanged++;
		const char *k = cur->key[i];
		double *slot = strcmp(k, "p") == 0   ? &rec.tick.p
			       : strcmp(k, "v") == 0 ? &rec.tick.v
			       : strcmp(k, "b") == 0 ? &rec.tick.b
			       : strcmp(k, "a") == 0 ? &rec.tick.a
						     : NULL;
		if (slot) {
			*slot = cur->val[i];
			changed[i] = false; /* in the record already */
		}
	}
	if (nchanged == 0)
		return 0;
	int len = record_encode(&rec, buf, cap);
	if (len < 0)
		return len;
	uint8_t kv[SNAP_MAX_FIELDS * (SNAP_KEY_MAX + 10) + 64];
	size_t kvlen = 0;
	unsigned n = 0;
	for (int i = 0; i < cur->nf; i++) {
		if (changed[i]) {
			kvlen += scid_kv_f64(kv + kvlen, cur->key[i], cur->val[i]);
			n++;
		}
	}
	if (off >= 0) {
		kvlen += scid_kv_uint(kv + kvlen, "off", (uint64_t)off);
		kvlen += scid_kv_uint(kv + kvlen, "fid", fid);
		n += 2;
	}
	return n ? scid_map_append(buf, (size_t)len, cap, n, kv, kvlen) : len;
}

/* record.h - mdb records: MessagePack maps with short keys (see mdb-records(7)).
 *
 * Every record that moves between stages is one MessagePack map. The same
 * bytes go into a ring, down a pipe and over ZeroMQ; --json renders the same
 * map as one JSON object per line. This module converts between three forms:
 *
 *   struct mdb_record  <->  MessagePack bytes  <->  JSON text (one line)
 *
 * Conversions never allocate per record once warmed up: encoders write into a
 * caller's buffer, record_decode() reads the bytes in place, and the JSON/text
 * renderings reuse a zone owned by an mdb_codec.
 * Unknown keys are ignored by record_decode() and kept by the generic
 * MessagePack <-> JSON conversions, so mdb-pipe and mdb-tap pass them through.
 */
#ifndef MDB_RECORD_H
#define MDB_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record types. The value is also the ring record type, so a consumer can
 * filter by type without decoding. 0 is reserved (ring padding). */
enum mdb_rtype {
	MDB_REC_NONE = 0,
	MDB_REC_TICK = 1,
	MDB_REC_BAR = 2,
	MDB_REC_FEAT = 3,
	MDB_REC_SIG = 4,
	MDB_REC_REJ = 5,
	MDB_REC_MAX = 6,
};

/* Bits of the f key. */
enum {
	MDB_F_FINAL = 1,   /* the bar is closed */
	MDB_F_FILLED = 2,  /* made by gap filling */
	MDB_F_REVISED = 4, /* a revision of a bar already sent */
};

#define MDB_SYM_MAX	  32 /* symbol, NUL included */
#define MDB_SRC_MAX	  16 /* source name, NUL included */
#define MDB_NAME_MAX	  32 /* sig name, NUL included */
#define MDB_WHY_MAX	  96 /* rej reason, NUL included */
#define MDB_REJ_RAW_MAX	  768
#define MDB_REC_MAX_BYTES 2048 /* no encoded record is larger */

struct mdb_tick {
	double p;  /* trade price */
	double v;  /* trade volume */
	double b;  /* bid (NaN: absent) */
	double a;  /* ask (NaN: absent) */
	int64_t n; /* number of trades in this tick */
};

struct mdb_bar {
	int32_t iv; /* interval, seconds */
	double o, h, l, c;
	double v;   /* volume */
	int64_t n;  /* number of trades */
	double bv;  /* bid (sell-side) volume */
	double av;  /* ask (buy-side) volume */
	uint32_t f; /* MDB_F_* */
};

/* Indicator values; NaN means "not yet defined" and is left out of the map. */
struct mdb_feat {
	int32_t iv;
	double rsi, ema12, ema26, bbm, bbu, bbl, atr, vwap, vma, macd, macds, macdh, mom;
	uint32_t f;
};

struct mdb_sig {
	int32_t iv;
	char name[MDB_NAME_MAX];
	double val;
};

struct mdb_rej {
	char why[MDB_WHY_MAX];
	uint8_t r[MDB_REJ_RAW_MAX]; /* the rejected record as MessagePack, verbatim */
	uint32_t r_len;		    /* bytes used in r; 0 when absent */
};

/* One record. s/ts/src are common; the union member is chosen by t.
 * A rej has no s/ts of its own (they are empty/0). */
struct mdb_record {
	enum mdb_rtype t;
	char s[MDB_SYM_MAX];
	int64_t ts; /* ns since the Unix epoch, UTC; a bar's open time */
	char src[MDB_SRC_MAX];
	union {
		struct mdb_tick tick;
		struct mdb_bar bar;
		struct mdb_feat feat;
		struct mdb_sig sig;
		struct mdb_rej rej;
	};
};

/* "tick", "bar", ... for a type; NULL for an unknown one. */
const char *record_type_name(enum mdb_rtype t);
/* The type named by name[0..len); MDB_REC_NONE when unknown. */
enum mdb_rtype record_type_parse(const char *name, size_t len);

/* Set t, the common fields and every field of t's union member to their
 * "absent" values (NaN doubles, 0 ints, "" strings; rej.r_len 0), padding
 * between them zeroed. The other union members and rej.r's bytes are left
 * as they were. */
void record_init(struct mdb_record *r, enum mdb_rtype t);

/* A fixed buffer that msgpack-c's packer writes into without allocating:
 * msgpack_packer_init(&pk, &wb, record_wbuf_write) with wb = {buf, cap}.
 * A write that does not fit fails and sets full (the result is -ENOSPC). */
struct record_wbuf {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool full;
};
int record_wbuf_write(void *data, const char *p, size_t n);

/* Encode r as a MessagePack map into buf[0..cap). Returns the number of
 * bytes written, or -ENOSPC / -EINVAL (unknown type). Allocates nothing. */
int record_encode(const struct mdb_record *r, uint8_t *buf, size_t cap);

/* Find t and s in the top-level map of data[0..len) without decoding the rest.
 * Writes the symbol (truncated, NUL-terminated) into sym if sym != NULL.
 * Returns the type (> 0), or -EBADMSG with *why set to a static reason. */
int record_peek(const uint8_t *data, size_t len, char *sym, size_t symsz, const char **why);

/* Size of the first complete MessagePack object in data[0..len): > 0, 0 when
 * more bytes are needed to tell, or -EBADMSG. Allocates nothing. Used to cut
 * a MessagePack stream (stdin) into records. */
int record_span(const uint8_t *data, size_t len);

/* A decoder/converter with reusable scratch memory. */
typedef struct mdb_codec mdb_codec;
mdb_codec *codec_new(void);
void codec_free(mdb_codec **c);

/* Decode one MessagePack map from data[0..len) into r, which is set as by
 * record_init() first. Unknown keys are ignored; a missing required key (t,
 * and s/ts except for rej) or a wrong value type is an error; malformed
 * MessagePack anywhere is reported before a wrong value. Returns 0, -EINVAL
 * when c is NULL, or -EBADMSG with *why set to a static string naming the
 * problem (r then holds no meaningful record). Allocates nothing. */
int record_decode(mdb_codec *c, const uint8_t *data, size_t len, struct mdb_record *r,
		  const char **why);

/* Render the MessagePack map data[0..len) as one line of compact JSON (no
 * trailing newline) into out[0..cap), NUL-terminated. Any map is accepted,
 * unknown keys included; doubles keep a '.' or exponent so the round trip to
 * MessagePack gives a float again; NaN/Inf become null; binary becomes a hex
 * string. Returns the length written, -ENOSPC, or -EBADMSG (*why set). */
int record_to_json(mdb_codec *c, const uint8_t *data, size_t len, char *out, size_t cap,
		   const char **why);

/* Parse one JSON object (a line, without or with its newline) and write it as
 * a MessagePack map into out[0..cap), keeping every key in order: integers
 * become ints, numbers with '.'/exponent become float64, null nil. The object
 * must carry a known "t". Returns bytes written, -ENOSPC, or -EBADMSG (*why). */
int record_from_json(mdb_codec *c, const char *line, size_t len, uint8_t *out, size_t cap,
		     const char **why);

/* Write a short human-readable line for the record (mdb-tap's text mode):
 * "2025-09-12T14:30:00.000000000Z bar ES 60s o=... h=..." into out[0..cap).
 * Returns the length, or -EBADMSG / -ENOSPC. */
int record_to_text(mdb_codec *c, const uint8_t *data, size_t len, char *out, size_t cap,
		   const char **why);

#endif

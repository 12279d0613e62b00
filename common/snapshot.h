/* snapshot.h - JSON snapshot files: the latest quote of each symbol, as a
 * charting study exports it, the whole file replaced at each update (written
 * to a temporary file, then renamed over the old one). Shared by the writer
 * (mdb-sim) and the reader (mdb-watch).
 *
 *   {"seq": 42, "ts": 1757683800000000000,
 *    "symbols": {"ES": {"ts": 1757683800000000000, "p": 6600.25, "b": 6600,
 *                       "a": 6600.25, "v": 1402311}, ...}}
 *
 * seq (an integer in 0 .. 2^47) grows by one or more with every version of
 * the file: the reader's exactly-once key. ts (int64 ns since the Unix epoch,
 * UTC) at the top is the default of each symbol's ts. Every other member of a
 * symbol's object is a field: a number, keyed by 1 to 15 characters of
 * [a-z0-9_] (p, b, a and v as in a tick record; other names pass through).
 * Null or absent means "no value".
 */
#ifndef MDB_SNAPSHOT_H
#define MDB_SNAPSHOT_H

#include "record.h"

#include <stddef.h>
#include <stdint.h>

#define SNAP_MAX_SYMBOLS 256
#define SNAP_MAX_FIELDS	 16
#define SNAP_KEY_MAX	 16 /* NUL included */
#define SNAP_SEQ_MAX	 ((1ULL << 47) - 1)
#define SNAP_MAX_BYTES	 (1u << 20) /* a larger file is refused */

struct snap_quote {
	char s[MDB_SYM_MAX];
	int64_t ts;
	int nf;
	char key[SNAP_MAX_FIELDS][SNAP_KEY_MAX];
	double val[SNAP_MAX_FIELDS];
};

struct snap {
	uint64_t seq;
	int64_t ts;
	int n; /* symbols, in file order */
	struct snap_quote q[SNAP_MAX_SYMBOLS];
};

/* Parse the file's bytes buf[0..len) into *out. Returns 0, or -EBADMSG with
 * a reason (naming the JSON offset or member) written into why[0..whylen). */
int snap_parse(const char *buf, size_t len, struct snap *out, char *why, size_t whylen);

/* Write *in as a snapshot file's text (one line, LF-terminated) into
 * buf[0..cap). Returns its length or -ENOSPC. */
int snap_format(const struct snap *in, char *buf, size_t cap);

/* The quote of symbol s in *sn, or NULL. */
const struct snap_quote *snap_find(const struct snap *sn, const char *s);

/* Encode the fields of cur that are new or differ from prev (NULL: all of
 * them) as a tick {s, ts, the fields, n 0, src "snap"} (p, b, a and v as the
 * tick's keys, the rest appended as float64 keys), plus "off" and "fid" when
 * off >= 0. Returns the length, 0 when no field changed, or -ENOSPC.
 * Allocates nothing. */
int snap_encode_delta(const struct snap_quote *cur, const struct snap_quote *prev, int64_t off,
		      uint32_t fid, uint8_t *buf, size_t cap);

#endif

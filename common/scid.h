/* scid.h - Sierra Chart intraday data files (.scid), shared by the writer
 * (mdb-sim) and the reader (mdb-watch).
 *
 * A file is a 56-byte header followed by 40-byte records, little-endian:
 *
 *   header  char magic[4] "SCID"; u32 header_size 56; u32 record_size 40;
 *           u16 version 1; u16 unused; u32 utc_start_index; 36 reserved bytes
 *   record  i64 date_time (SCDateTimeMS: microseconds since 1899-12-30 UTC;
 *           older files: a double, days since then); f32 open, high, low,
 *           close; u32 num_trades, total_volume, bid_volume, ask_volume
 *
 * In a tick file open is 0 (or a sub-trade marker, below), high is the ask,
 * low the bid and close the trade price; a record without volume is a bid/ask
 * update. In a bar file open..close are the bar's prices.
 */
#ifndef MDB_SCID_H
#define MDB_SCID_H

#include <stddef.h>
#include <stdint.h>

#define SCID_HEADER_SIZE 56
#define SCID_RECORD_SIZE 40
#define SCID_VERSION	 1

/* Sierra's open values that mark the first and last record of a trade it
 * split into several records (one per price level filled). */
#define SCID_FIRST_SUB_TRADE (-1.99900095e+37f)
#define SCID_LAST_SUB_TRADE  (-1.99900197e+37f)

/* Days from 1899-12-30 (Sierra's epoch) to 1970-01-01. */
#define SCID_UNIX_EPOCH_DAYS 25569

struct scid_record {
	int64_t dt; /* SCDateTimeMS, microseconds since 1899-12-30 */
	float open, high, low, close;
	uint32_t num_trades, total_volume, bid_volume, ask_volume;
};

/* Write a header for a new file into buf[0..SCID_HEADER_SIZE). */
void scid_header_make(uint8_t *buf);

/* Check a header. Returns 0, or -EPROTO with *why saying what is wrong and
 * *at the offset of the offending field. */
int scid_header_check(const uint8_t *buf, const char **why, int *at);

/* Encode / decode one record at buf[0..SCID_RECORD_SIZE). scid_record_load()
 * converts the older double-days timestamp to SCDateTimeMS, telling the two
 * apart by value (see scid.c). */
void scid_record_store(uint8_t *buf, const struct scid_record *r);
void scid_record_load(const uint8_t *buf, struct scid_record *r);

/* What scid_encode() makes of a record: a tick (open 0 or a sub-trade
 * marker), a bid/ask update (a tick without p and v: no trades, no volume),
 * or a bar (open is a price). */
enum scid_kind {
	SCID_TICK = 1,
	SCID_QUOTE = 2,
	SCID_BAR = 3,
};

/* Encode r as an mdb record into buf[0..cap): a tick {s, ts, p, v, b = low,
 * a = high, n, src "scid"}, with "sub": 1 / 2 on the first / last record of
 * a split trade; or a bar {s, ts, iv = bar_iv, o, h, l, c, v, n, bv, av, f 0,
 * src "scid"}. When off >= 0 two more keys say where the record came from:
 * "off" (the file offset just past it) and "fid" (fid). Returns the encoded
 * length and *kind, -EBADMSG with *why when the record holds an impossible
 * time or price, or -ENOSPC. Allocates nothing. */
int scid_encode(const struct scid_record *r, const char *sym, int32_t bar_iv, int64_t off,
		uint32_t fid, uint8_t *buf, size_t cap, enum scid_kind *kind, const char **why);

/* Append n key/value pairs (already MessagePack, kv[0..kvlen)) to the map
 * encoded in buf[0..len) (capacity cap). Returns the new length or -ENOSPC /
 * -EBADMSG (buf is not a map). */
int scid_map_append(uint8_t *buf, size_t len, size_t cap, unsigned n, const uint8_t *kv,
		    size_t kvlen);

/* Write one MessagePack key (a fixstr, at most 31 bytes) and its value at p,
 * compactly: an unsigned integer, a float64. Return the bytes written, at
 * most 32 + 9. For the extra keys appended with scid_map_append(). */
size_t scid_kv_uint(uint8_t *p, const char *key, uint64_t v);
size_t scid_kv_f64(uint8_t *p, const char *key, double v);

/* SCDateTimeMS <-> ns since the Unix epoch. */
static inline int64_t scid_to_unix_ns(int64_t dt)
{
	return (dt - (int64_t)SCID_UNIX_EPOCH_DAYS * 86400 * 1000000) * 1000;
}
static inline int64_t scid_from_unix_ns(int64_t ns)
{
	return ns / 1000 + (int64_t)SCID_UNIX_EPOCH_DAYS * 86400 * 1000000;
}

#endif

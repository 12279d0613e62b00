/* wsmsg.h - what mdb-ws sends: snapshots and deltas of one stream (a
 * symbol and interval: its latest bar and features), as JSON or
 * MessagePack, and the WebSocket frame header that carries them.
 *
 * A stream's value is a struct lvc_value (shm/lvc.h), whose first
 * WSMSG_NFIELDS 8-byte words are the fields sent, in this order:
 *   ts o h l c v n bv av f rsi ema12 ema26 bbm bbu bbl atr vwap vma macd
 *   macds macdh mom
 * A snapshot carries every defined field (NaN doubles are left out; none
 * at all while ts is 0); a delta carries the fields whose bits changed
 * (a field that became NaN is nil). A double that a float32 holds exactly
 * (a price on its tick grid, a volume) is packed as a float32: the same
 * value in 5 bytes instead of 9. Messages are MessagePack maps, written
 * into the caller's buffer without allocating; record_to_json() (record.h)
 * renders one as the JSON a text frame carries.
 */
#ifndef MDB_WSMSG_H
#define MDB_WSMSG_H

#include "lvc.h"
#include "record.h"

#include <stddef.h>
#include <stdint.h>

#define WSMSG_NFIELDS	       (10 + LVC_NFEAT)
#define WSMSG_FRAME_HEADER_MAX 10   /* an unmasked server frame's header */
#define WSMSG_MAX	       1024 /* no snapshot or delta is longer (symbol <= 31 bytes) */

/* The name of field i ("ts", "o", ... "mom"). */
const char *wsmsg_field_name(int i);

/* Bit i set for each field i whose 8 bytes differ between a and b. */
uint32_t wsmsg_diff(const struct lvc_value *a, const struct lvc_value *b);

/* Copy a bar's or a feat record's fields into v (a feat's f too); other
 * record types leave v alone. Returns 1 when r was applied, 0 otherwise. */
int wsmsg_apply(struct lvc_value *v, const struct mdb_record *r);

/* Encode {"type":"snapshot","s","iv","seq", fields...} into out[0..cap).
 * Returns the length or -ENOSPC. */
int wsmsg_snapshot(uint8_t *out, size_t cap, const char *s, int32_t iv, uint64_t seq,
		   const struct lvc_value *v);

/* Encode {"type":"delta","s","iv","seq","prev_seq", the fields in mask}.
 * Returns the length or -ENOSPC. */
int wsmsg_delta(uint8_t *out, size_t cap, const char *s, int32_t iv, uint64_t seq,
		uint64_t prev_seq, const struct lvc_value *v, uint32_t mask);

/* Write an unmasked, final WebSocket frame header for opcode and a payload
 * of len bytes into out. Returns the header's length (2, 4 or 10). */
size_t wsmsg_frame_header(uint8_t out[WSMSG_FRAME_HEADER_MAX], unsigned opcode, uint64_t len);

#endif

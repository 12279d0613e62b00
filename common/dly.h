/* dly.h - Sierra Chart Text/CSV data files: daily .dly files and intraday
 * text exports, shared by the writer (mdb-sim) and the reader (mdb-watch).
 *
 * The first line is a header naming the columns; each later line is one bar,
 * oldest first, its fields split by a comma, tab or semicolon, spaces around
 * a field ignored, ending in LF or CRLF. Sierra's daily files look like:
 *
 *   Date, Open, High, Low, Close, Volume, OpenInterest
 *   2025/9/12, 6590.25, 6612.5, 6571, 6603.75, 1402311, 0
 *
 * Columns known (case and spaces ignored): Date (YYYY/M/D, YYYY-MM-DD or
 * YYYYMMDD; years 1900 to 2261, as int64 ns reach), Time (HH:MM, HH:MM:SS or HH:MM:SS.ffffff),
 * Open, High, Low, Close (or Last), Volume, OpenInterest, NumberOfTrades (or Trades), BidVolume,
 * AskVolume; other columns are skipped. Date, Open, High, Low and Close are required. Times are
 * UTC. Pure functions over byte buffers: no allocation, no I/O.
 */
#ifndef MDB_DLY_H
#define MDB_DLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DLY_MAX_COLS 24
#define DLY_LINE_MAX 1024 /* a longer line is garbage */

enum dly_col {
	DLY_SKIP = 0,
	DLY_DATE,
	DLY_TIME,
	DLY_OPEN,
	DLY_HIGH,
	DLY_LOW,
	DLY_CLOSE,
	DLY_VOLUME,
	DLY_OI,
	DLY_TRADES,
	DLY_BIDVOL,
	DLY_ASKVOL,
	DLY_NCOLS,
};

/* What the header line said. */
struct dly_header {
	int ncols;		   /* fields per line */
	uint8_t col[DLY_MAX_COLS]; /* enum dly_col of each field */
	bool has_time;		   /* a Time column: intraday bars */
};

/* One data line. Fields the file has no column for are NaN. */
struct dly_bar {
	int64_t ts; /* ns since the Unix epoch, UTC: the bar's open time */
	double o, h, l, c, v, oi, n, bv, av;
};

/* The header line's standard text, without a line end. */
#define DLY_HEADER "Date, Open, High, Low, Close, Volume, OpenInterest"

/* Parse the header line line[0..len) (its line end may be included).
 * Returns 0, or -EBADMSG with *why saying what is wrong. */
int dly_header_parse(const char *line, size_t len, struct dly_header *h, const char **why);

/* Parse one data line line[0..len) (line end optional) by the header.
 * Returns 0, or -EBADMSG with *why naming the bad field. */
int dly_line_parse(const struct dly_header *h, const char *line, size_t len, struct dly_bar *b,
		   const char **why);

/* Write b as a daily line of the standard header's columns (date only, the
 * time of day dropped) with a LF into buf[0..cap). Returns its length or
 * -ENOSPC. */
int dly_line_format(const struct dly_bar *b, char *buf, size_t cap);

/* Encode b as an mdb bar {s, ts, iv, o, h, l, c, v, n, bv, av, f 0, src "dly"},
 * plus "oi" when the file has open interest and, when off >= 0, "off" and
 * "fid" as scid_encode() does. Returns the length, or -ENOSPC / -EBADMSG
 * (*why: symbol too long). Allocates nothing. */
int dly_encode(const struct dly_bar *b, const char *sym, int32_t iv, int64_t off, uint32_t fid,
	       uint8_t *buf, size_t cap, const char **why);

#endif

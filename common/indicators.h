/* indicators.h - O(1) incremental indicators for one (symbol, interval)
 * series, with commit/forming semantics.
 *
 * Definitions (DESIGN.md section 4, TA-Lib's classic ones):
 *   EMA(n)      seeded by the SMA of its first n values, then
 *               e = (x - e) * 2/(n+1) + e; defined from the n-th close.
 *   RSI(n)      Wilder: the first averages are the means of the first n
 *               gains/losses, then a = (a*(n-1) + x)/n; 100*ag/(ag+al), and
 *               50 while there are neither gains nor losses; from close n+1.
 *   ATR(n)      Wilder smoothing of the true range (from the second bar),
 *               seeded by the mean of its first n values; from bar n+1.
 *   Bollinger   SMA(n) +- k population deviations, kept stably (sums of
 *               deviations from a recent close, re-summed every n bars):
 *               on flat data the bands equal the mean exactly.
 *   VWAP        sum(tp*v)/sum(v), tp = (h+l+c)/3, reset at each session start.
 *   volume MA   SMA(n) of the volume.
 *   MACD        ema_fast - ema_slow (each seeded as above); the signal is the
 *               EMA of that line seeded by the SMA of its first n values;
 *               histogram = macd - signal. (TA_MACD instead seeds the fast
 *               EMA late so both start together; section 4 says this.)
 *   momentum(n) c - c[-n].
 * A value that is not defined yet is NaN.
 *
 * A closed bar is committed (ind_commit); a forming bar is evaluated against
 * the committed state without changing it (ind_peek), so any number of
 * revisions of it count once, when it closes. ind_uncommit undoes the last
 * commit, for a repeat or revision of the last closed bar. Gap-filled bars
 * move the price indicators but are kept out of VWAP and the volume MA.
 * Every call is O(1) (the Bollinger re-sum is O(n) every n commits) and
 * allocates nothing.
 */
#ifndef MDB_INDICATORS_H
#define MDB_INDICATORS_H

#include <stdbool.h>
#include <stdint.h>

struct ind_params {
	int rsi;		   /* RSI period (14) */
	int ema_fast;		   /* 12 */
	int ema_slow;		   /* 26 */
	int macd_signal;	   /* 9 */
	int bb;			   /* Bollinger period (20) */
	double bb_k;		   /* Bollinger width in deviations (2) */
	int atr;		   /* 14 */
	int vma;		   /* volume MA period (20) */
	int mom;		   /* momentum lag (10) */
	int64_t session_ns;	   /* VWAP session length (1 day); 0: never reset */
	int64_t session_offset_ns; /* a session starts at offset + k * session_ns (UTC) */
};

struct ind_bar {
	int64_t ts; /* open time, ns */
	double o, h, l, c, v;
	bool filled; /* made by gap filling: kept out of VWAP and volume MA */
};

struct ind_values {
	double rsi, ema_fast, ema_slow, bbm, bbu, bbl, atr, vwap, vma, macd, macds, macdh, mom;
};

/* Defaults: 14, 12, 26, 9, 20, 2, 14, 20, 10, daily sessions from 00:00 UTC. */
void ind_params_default(struct ind_params *p);
/* Check periods (1..10000), bb_k (>= 0, finite) and session. 0 or -EINVAL. */
int ind_params_check(const struct ind_params *p);

typedef struct ind_series ind_series;

/* A series with nothing committed. NULL with errno set (EINVAL, ENOMEM). */
ind_series *ind_new(const struct ind_params *p);
/* Accepts NULL; sets *s to NULL. */
void ind_free(ind_series **s);

/* Values for bar b as if it closed now, from the committed state; the state
 * is unchanged. */
void ind_peek(const ind_series *s, const struct ind_bar *b, struct ind_values *out);
/* The same values (out may be NULL), then b becomes committed. */
void ind_commit(ind_series *s, const struct ind_bar *b, struct ind_values *out);
/* Undo the last ind_commit (one level). 0, or -ENOENT when there is none. */
int ind_uncommit(ind_series *s);

/* Bars committed so far, and the ts of the last one (INT64_MIN: none). */
uint64_t ind_count(const ind_series *s);
int64_t ind_last_ts(const ind_series *s);

#endif

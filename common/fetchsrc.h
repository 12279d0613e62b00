/* fetchsrc.h - the HTTP market-data APIs mdb-fetch speaks: request URLs and
 * response parsers for
 *
 *   yahoo         Yahoo Finance v8 chart   /v8/finance/chart/T?interval=1m&period1=&period2=
 *   alphavantage  Alpha Vantage /query?function=TIME_SERIES_INTRADAY&symbol=T&interval=1min
 *   twelvedata    Twelve Data              /time_series?symbol=T&interval=1min
 *   polygon       Polygon aggregates v2    /v2/aggs/ticker/T/range/1/minute/FROM/TO
 *
 * The parsers are pure functions of a byte buffer (plus a zone cache for
 * the APIs that send local times): no I/O besides reading a zone file the
 * first time a zone is named, no global state, so they can be fuzzed. They
 * never make up a value: Yahoo's null entries and Polygon's missing
 * `results` are "no bar", never zero, and a bar whose numbers do not hold
 * together (h below l, a negative volume, NaN) is dropped and counted.
 */
#ifndef MDB_FETCHSRC_H
#define MDB_FETCHSRC_H

#include "tzconv.h"

#include <stddef.h>
#include <stdint.h>

enum fsrc_type {
	FSRC_YAHOO = 0,
	FSRC_ALPHAVANTAGE,
	FSRC_TWELVEDATA,
	FSRC_POLYGON,
	FSRC_NTYPES,
};

/* The type called name ("yahoo", "alphavantage", "twelvedata", "polygon"),
 * or -EINVAL. */
int fsrc_type_parse(const char *name);
const char *fsrc_type_name(enum fsrc_type t);
/* Whether the API needs a key. */
int fsrc_needs_key(enum fsrc_type t);
/* The zone the API's local times are in when the response does not say. */
const char *fsrc_default_zone(enum fsrc_type t);

/* One bar as the API gave it: ts is the open time, ns since the epoch, UTC. */
struct fsrc_bar {
	int64_t ts;
	double o, h, l, c, v;
	int64_t n; /* trades; 0 when the API does not say */
};

enum fsrc_status {
	FSRC_OK = 0,	/* bars parsed (possibly none) */
	FSRC_NODATA,	/* a well-formed answer with no data for the range */
	FSRC_RATELIMIT, /* the API says the limit is reached (status or body) */
	FSRC_ERROR,	/* an HTTP error, an API error, or a body that does not parse */
};

struct fsrc_result {
	enum fsrc_status status;
	char why[160];	      /* for FSRC_RATELIMIT / FSRC_ERROR: a short reason */
	struct fsrc_bar *bar; /* ascending by ts, no two with the same ts */
	int n, cap;	      /* owned by the result; reused across parses */
	int dropped;	      /* bars dropped as inconsistent */
	int symbol_only;      /* FSRC_ERROR about this symbol only (the API does
			       * not know it, or its body does not parse); 0: about
			       * the source (HTTP status, key, plan, server error) */
};

/* What to ask for. */
struct fsrc_req {
	const char *base;   /* base URL without a trailing '/', e.g. https://api.polygon.io */
	const char *ticker; /* the API's name for the symbol */
	int iv;		    /* bar interval in seconds */
	const char *key;    /* API key (NULL for yahoo) */
	int64_t from_ns;    /* bars with ts in [from, to) are wanted */
	int64_t to_ns;
	int full;	   /* alphavantage: outputsize=full and month= (history) */
	int32_t local_off; /* alphavantage: seconds east of UTC of the API's zone at
			    * from_ns; month= names the month of from in that zone */
};

/* Whether the API offers bars of iv seconds. */
int fsrc_interval_ok(enum fsrc_type t, int iv);

/* Write the request URL into buf[0..cap). The key is part of the URL, so
 * the caller must never log it. Returns its length, -ENOSPC or -EINVAL
 * (an interval the API does not offer). */
int fsrc_url(enum fsrc_type t, const struct fsrc_req *rq, char *buf, size_t cap);

/* Parse a response of type t: http_status is the HTTP status (429 and 5xx
 * are recognised before the body is looked at; another 4xx is the symbol's
 * only when its body is the API's own "unknown symbol" answer), body[0..len)
 * the body; iv the interval asked for; zones the cache local times are
 * converted with. Fills res (res->bar reused, grown as needed; symbol_only
 * tells whose an FSRC_ERROR is) and returns 0, or -ENOMEM. */
int fsrc_parse(enum fsrc_type t, long http_status, const char *body, size_t len, int iv,
	       mdb_tzcache *zones, struct fsrc_result *res);

void fsrc_result_free(struct fsrc_result *res);

#endif

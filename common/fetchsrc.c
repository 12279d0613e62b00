/* fetchsrc.c - request URLs and response parsers of the market-data APIs
 * (see fetchsrc.h). */
#include "fetchsrc.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS 1000000000LL

static const char *const type_names[FSRC_NTYPES] = {"yahoo", "alphavantage", "twelvedata",
						    "polygon"};

int fsrc_type_parse(const char *name)
{
	for (int i = 0; i < FSRC_NTYPES; i++)
		if (strcmp(name, type_names[i]) == 0)
			return i;
	return -EINVAL;
}

const char *fsrc_type_name(enum fsrc_type t)
{
	return (unsigned)t < FSRC_NTYPES ? type_names[t] : "?";
}

int fsrc_needs_key(enum fsrc_type t)
{
	return t != FSRC_YAHOO;
}

const char *fsrc_default_zone(enum fsrc_type t)
{
	/* Alpha Vantage and Twelve Data answer in US Eastern time for US
	 * symbols unless the response names another zone */
	return t == FSRC_ALPHAVANTAGE || t == FSRC_TWELVEDATA ? "America/New_York" : "UTC";
}

/* ---- intervals ---- */

struct ivname {
	int iv;
	const char *name;
};

static const struct ivname yahoo_iv[] = {{60, "1m"},	{120, "2m"},   {300, "5m"},
					 {900, "15m"},	{1800, "30m"}, {3600, "60m"},
					 {5400, "90m"}, {86400, "1d"}, {0, NULL}};
static const struct ivname av_iv[] = {{60, "1min"},    {300, "5min"},	{900, "15min"},
				      {1800, "30min"}, {3600, "60min"}, {0, NULL}};
static const struct ivname td_iv[] = {
    {60, "1min"}, {300, "5min"}, {900, "15min"}, {1800, "30min"}, {2700, "45min"},
    {3600, "1h"}, {7200, "2h"},	 {14400, "4h"},	 {86400, "1day"}, {0, NULL}};

static const char *iv_name(const struct ivname *t, int iv)
{
	for (; t->name; t++)
		if (t->iv == iv)
			return t->name;
	return NULL;
}

int fsrc_interval_ok(enum fsrc_type t, int iv)
{
	switch (t) {
	case FSRC_YAHOO:
		return iv_name(yahoo_iv, iv) != NULL;
	case FSRC_ALPHAVANTAGE:
		return iv_name(av_iv, iv) != NULL;
	case FSRC_TWELVEDATA:
		return iv_name(td_iv, iv) != NULL;
	case FSRC_POLYGON:
		return iv > 0;
	default:
		return 0;
	}
}

/* ---- URLs ---- */

struct sbuf {
	char *p;
	size_t cap, len;
	bool over;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->p + b->len, b->len < b->cap ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n < 0 || b->len + (size_t)n >= b->cap)
		b->over = true;
	else
		b->len += (size_t)n;
}

/* Percent-encode s (RFC 3986 unreserved bytes stay as they are). */
static void sb_escape(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			sb_printf(b, "%c", c);
		else
			sb_printf(b, "%%%02X", c);
	}
}

/* The UTC calendar fields of secs (gmtime_r: reentrant, no global state). */
static void civil(int64_t secs, int *y, int *m, int *d)
{
	time_t t = (time_t)secs;
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof tm);
	*y = tm.tm_year + 1900;
	*m = tm.tm_mon + 1;
	*d = tm.tm_mday;
}

int fsrc_url(enum fsrc_type t, const struct fsrc_req *rq, char *buf, size_t cap)
{
	struct sbuf b = {buf, cap, 0, false};
	const char *ivn;
	int64_t from_s = rq->from_ns / NS, to_s = (rq->to_ns + NS - 1) / NS;
	int y, m, d;
	if (cap)
		buf[0] = '\0';
	switch (t) {
	case FSRC_YAHOO:
		if (!(ivn = iv_name(yahoo_iv, rq->iv)))
			return -EINVAL;
		sb_printf(&b, "%s/v8/finance/chart/", rq->base);
		sb_escape(&b, rq->ticker);
		sb_printf(&b, "?interval=%s&period1=%lld&period2=%lld&includePrePost=false", ivn,
			  (long long)from_s, (long long)to_s);
		break;
	case FSRC_ALPHAVANTAGE:
		if (!(ivn = iv_name(av_iv, rq->iv)))
			return -EINVAL;
		sb_printf(&b, "%s/query?function=TIME_SERIES_INTRADAY&symbol=", rq->base);
		sb_escape(&b, rq->ticker);
		sb_printf(&b, "&interval=%s&outputsize=%s", ivn, rq->full ? "full" : "compact");
		if (rq->full) {
			/* history comes a calendar month per request */
			civil(from_s + rq->local_off, &y, &m, &d);
			sb_printf(&b, "&month=%04d-%02d", y, m);
		}
		sb_printf(&b, "&apikey=");
		sb_escape(&b, rq->key ? rq->key : "");
		break;
	case FSRC_TWELVEDATA:
		if (!(ivn = iv_name(td_iv, rq->iv)))
			return -EINVAL;
		sb_printf(&b, "%s/time_series?symbol=", rq->base);
		sb_escape(&b, rq->ticker);
		/* dates are read in the exchange's zone: ask in UTC dates widened
		 * by a day either side, and let the caller keep what it wants */
		civil(from_s - 86400, &y, &m, &d);
		sb_printf(&b, "&interval=%s&start_date=%04d-%02d-%02d", ivn, y, m, d);
		civil(to_s + 86400, &y, &m, &d);
		sb_printf(&b, "&end_date=%04d-%02d-%02d&order=ASC&outputsize=5000&apikey=", y, m,
			  d);
		sb_escape(&b, rq->key ? rq->key : "");
		break;
	case FSRC_POLYGON: {
		if (rq->iv <= 0)
			return -EINVAL;
		const char *span = "second";
		int mult = rq->iv;
		if (rq->iv % 86400 == 0)
			span = "day", mult = rq->iv / 86400;
		else if (rq->iv % 3600 == 0)
			span = "hour", mult = rq->iv / 3600;
		else if (rq->iv % 60 == 0)
			span = "minute", mult = rq->iv / 60;
		sb_printf(&b, "%s/v2/aggs/ticker/", rq->base);
		sb_escape(&b, rq->ticker);
		sb_printf(&b,
			  "/range/%d/%s/%lld/%lld?adjusted=true&sort=asc&limit=50000&apiKey=", mult,
			  span, (long long)(rq->from_ns / 1000000),
			  (long long)((rq->to_ns - 1) / 1000000));
		sb_escape(&b, rq->key ? rq->key : "");
		break;
	}
	default:
		return -EINVAL;
	}
	return b.over ? -ENOSPC : (int)b.len;
}

/* ---- parsing ---- */

static void set_status(struct fsrc_result *r, enum fsrc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_status(struct fsrc_result *r, enum fsrc_status st, const char *fmt, ...)
{
	r->status = st;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof r->why, fmt, ap);
	va_end(ap);
}

/* An error about this symbol only: its body does not parse (SYM_ERR), or
 * the API says it does not know the symbol (API_SYM_ERR). The source stays
 * healthy for the other symbols. fsrc_parse() tells the two apart for a 4xx
 * status, then leaves symbol_only at 1 for both. */
#define SYM_BODY	1
#define SYM_ANSWER	2
#define SYM_ERR(r, ...) ((r)->symbol_only = SYM_BODY, set_status((r), FSRC_ERROR, __VA_ARGS__))
#define API_SYM_ERR(r, ...)                                                                        \
	((r)->symbol_only = SYM_ANSWER, set_status((r), FSRC_ERROR, __VA_ARGS__))

/* A number given as a JSON number or a numeric string ("160.7800"). */
static bool num(const json_t *j, double *out)
{
	if (json_is_number(j)) {
		*out = json_number_value(j);
		return true;
	}
	if (!json_is_string(j))
		return false;
	const char *s = json_string_value(j);
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno == ERANGE)
		return false;
	*out = v;
	return true;
}

static bool bar_ok(const struct fsrc_bar *b)
{
	if (!isfinite(b->o) || !isfinite(b->h) || !isfinite(b->l) || !isfinite(b->c))
		return false;
	if (b->h < b->l || b->h < b->o || b->h < b->c || b->l > b->o || b->l > b->c)
		return false;
	if (!isnan(b->v) && (!isfinite(b->v) || b->v < 0))
		return false;
	return b->n >= 0;
}

static int push(struct fsrc_result *r, const struct fsrc_bar *b)
{
	if (!bar_ok(b)) {
		r->dropped++;
		return 0;
	}
	if (r->n == r->cap) {
		int cap = r->cap ? r->cap * 2 : 256;
		struct fsrc_bar *nb = realloc(r->bar, (size_t)cap * sizeof *nb);
		if (!nb)
			return -ENOMEM;
		r->bar = nb;
		r->cap = cap;
	}
	r->bar[r->n++] = *b;
	return 0;
}

/* Sort ascending by ts, stably (a bottom-up merge sort), then of bars with
 * the same ts keep the one given last: an API that repeats its forming bar
 * lists the newer values later. Returns 0 or -ENOMEM. */
static int sort_unique(struct fsrc_result *r)
{
	int n = r->n;
	bool asc = true, desc = true;
	for (int i = 1; i < n; i++) {
		asc &= r->bar[i - 1].ts < r->bar[i].ts;
		desc &= r->bar[i - 1].ts > r->bar[i].ts;
	}
	if (asc)
		return 0;
	if (desc) { /* Alpha Vantage: newest first */
		for (int i = 0, j = n - 1; i < j; i++, j--) {
			struct fsrc_bar t = r->bar[i];
			r->bar[i] = r->bar[j];
			r->bar[j] = t;
		}
		return 0;
	}
	struct fsrc_bar *tmp = malloc((size_t)n * sizeof *tmp), *a = r->bar, *b = tmp;
	if (!tmp)
		return -ENOMEM;
	for (int w = 1; w < n; w *= 2) {
		for (int lo = 0; lo < n; lo += 2 * w) {
			int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			int i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				b[k++] = a[j].ts < a[i].ts ? a[j++] : a[i++];
			while (i < mid)
				b[k++] = a[i++];
			while (j < hi)
				b[k++] = a[j++];
		}
		struct fsrc_bar *t = a;
		a = b;
		b = t;
	}
	if (a != r->bar)
		memcpy(r->bar, a, (size_t)n * sizeof *a);
	free(tmp);
	int w = 0;
	for (int i = 0; i < n; i++) {
		if (w > 0 && r->bar[w - 1].ts == r->bar[i].ts)
			r->bar[w - 1] = r->bar[i];
		else
			r->bar[w++] = r->bar[i];
	}
	r->n = w;
	return 0;
}

static const mdb_tz *zone_of(mdb_tzcache *zones, const char *name, enum fsrc_type t,
			     struct fsrc_result *r)
{
	int err;
	const char *use = name && *name ? name : fsrc_default_zone(t);
	const mdb_tz *z = tzcache_get(zones, use, &err);
	if (!z)
		SYM_ERR(r, "unknown time zone %.64s", use);
	return z;
}

static int parse_yahoo(json_t *root, int iv, struct fsrc_result *r)
{
	json_t *chart = json_object_get(root, "chart");
	if (!json_is_object(chart))
		return SYM_ERR(r, "no chart object"), 0;
	json_t *err = json_object_get(chart, "error");
	if (err && !json_is_null(err)) {
		const char *d = json_string_value(json_object_get(err, "description"));
		/* "Not Found" (an unknown or delisted ticker), "Bad Request" */
		return API_SYM_ERR(r, "yahoo error: %.100s", d ? d : "?"), 0;
	}
	json_t *res = json_array_get(json_object_get(chart, "result"), 0);
	if (!json_is_object(res))
		return SYM_ERR(r, "no chart result"), 0;
	json_t *ts = json_object_get(res, "timestamp");
	if (!ts || json_is_null(ts) || (json_is_array(ts) && json_array_size(ts) == 0))
		return set_status(r, FSRC_NODATA, "no timestamps"), 0;
	json_t *q = json_array_get(json_object_get(json_object_get(res, "indicators"), "quote"), 0);
	json_t *ao = json_object_get(q, "open"), *ah = json_object_get(q, "high"),
	       *al = json_object_get(q, "low"), *ac = json_object_get(q, "close"),
	       *av = json_object_get(q, "volume");
	size_t n = json_array_size(ts);
	if (!json_is_array(ts) || !json_is_array(ao) || !json_is_array(ah) || !json_is_array(al) ||
	    !json_is_array(ac) || json_array_size(ao) != n || json_array_size(ah) != n ||
	    json_array_size(al) != n || json_array_size(ac) != n ||
	    (av && json_array_size(av) != n))
		return SYM_ERR(r, "quote arrays missing or of different lengths"), 0;
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_array_get(ts, i);
		if (!json_is_integer(t))
			return SYM_ERR(r, "timestamp %zu is not an integer", i), 0;
		/* a null anywhere in OHLC means Yahoo has no bar there */
		struct fsrc_bar b = {.v = NAN};
		if (!num(json_array_get(ao, i), &b.o) || !num(json_array_get(ah, i), &b.h) ||
		    !num(json_array_get(al, i), &b.l) || !num(json_array_get(ac, i), &b.c))
			continue;
		double v;
		if (av && num(json_array_get(av, i), &v))
			b.v = v;
		int64_t s = json_integer_value(t);
		if (s < 0 || s > INT64_MAX / NS)
			return SYM_ERR(r, "timestamp %zu out of range", i), 0;
		if (iv < 86400)
			s -= s % iv; /* the live entry carries the quote's time */
		b.ts = s * NS;
		if (push(r, &b) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* "Meta Data" keys are numbered ("6. Time Zone"): match by what follows. */
static json_t *numbered(json_t *obj, const char *suffix)
{
	const char *k;
	json_t *v;
	size_t sl = strlen(suffix);
	json_object_foreach(obj, k, v)
	{
		size_t kl = strlen(k);
		if (kl >= sl && strcmp(k + kl - sl, suffix) == 0)
			return v;
	}
	return NULL;
}

static int local_bar(const mdb_tz *z, const char *when, struct fsrc_bar *b)
{
	int64_t l;
	if (tz_parse_datetime(when, &l) < 0)
		return -EINVAL;
	int64_t u = tz_local_to_utc(z, l);
	if (u > INT64_MAX / NS || u < INT64_MIN / NS)
		return -EINVAL; /* not representable in ns (beyond +-292 years) */
	b->ts = u * NS;
	return 0;
}

static int parse_av(json_t *root, mdb_tzcache *zones, struct fsrc_result *r)
{
	json_t *note = json_object_get(root, "Note");
	if (!note)
		note = json_object_get(root, "Information");
	if (note) {
		const char *s = json_string_value(note);
		return set_status(r, FSRC_RATELIMIT, "alphavantage: %.120s", s ? s : "?"), 0;
	}
	json_t *em = json_object_get(root, "Error Message");
	if (em) {
		/* "Invalid API call" is its answer to an unknown symbol; a
		 * missing or invalid apikey is the source's */
		const char *s = json_string_value(em);
		if (s && strstr(s, "apikey"))
			return set_status(r, FSRC_ERROR, "alphavantage: %.120s", s), 0;
		return API_SYM_ERR(r, "alphavantage: %.120s", s ? s : "?"), 0;
	}
	json_t *meta = json_object_get(root, "Meta Data");
	json_t *tzname = meta ? numbered(meta, ". Time Zone") : NULL;
	json_t *series = NULL;
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v)
	{
		if (strncmp(k, "Time Series", 11) == 0)
			series = v;
	}
	if (!json_is_object(series))
		return SYM_ERR(r, "no time series"), 0;
	if (json_object_size(series) == 0)
		return set_status(r, FSRC_NODATA, "empty time series"), 0;
	const mdb_tz *z = zone_of(zones, json_string_value(tzname), FSRC_ALPHAVANTAGE, r);
	if (!z)
		return 0;
	json_object_foreach(series, k, v)
	{
		struct fsrc_bar b = {0};
		if (!json_is_object(v) || local_bar(z, k, &b) < 0)
			return SYM_ERR(r, "bad time series entry %.40s", k), 0;
		if (!num(numbered(v, ". open"), &b.o) || !num(numbered(v, ". high"), &b.h) ||
		    !num(numbered(v, ". low"), &b.l) || !num(numbered(v, ". close"), &b.c) ||
		    !num(numbered(v, ". volume"), &b.v)) {
			r->dropped++;
			continue;
		}
		if (push(r, &b) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int parse_td(json_t *root, mdb_tzcache *zones, struct fsrc_result *r)
{
	json_t *code = json_object_get(root, "code");
	const char *status = json_string_value(json_object_get(root, "status"));
	const char *msg = json_string_value(json_object_get(root, "message"));
	if (json_integer_value(code) == 429)
		return set_status(r, FSRC_RATELIMIT, "twelvedata: %.120s", msg ? msg : "429"), 0;
	if ((status && strcmp(status, "error") == 0) || code) {
		if (msg && strstr(msg, "No data is available"))
			return set_status(r, FSRC_NODATA, "twelvedata: no data"), 0;
		/* 400 (an invalid or unknown symbol) and 404 are about the
		 * request; 401 (key), 403 (plan) and 5xx about the source */
		json_int_t c = json_integer_value(code);
		r->symbol_only = c == 400 || c == 404 ? SYM_ANSWER : 0;
		return set_status(r, FSRC_ERROR, "twelvedata %lld: %.120s",
				  (long long)json_integer_value(code), msg ? msg : "?"),
		       0;
	}
	json_t *values = json_object_get(root, "values");
	if (!values || (json_is_array(values) && json_array_size(values) == 0))
		return set_status(r, FSRC_NODATA, "no values"), 0;
	if (!json_is_array(values))
		return SYM_ERR(r, "values is not an array"), 0;
	json_t *tzname = json_object_get(json_object_get(root, "meta"), "exchange_timezone");
	const mdb_tz *z = zone_of(zones, json_string_value(tzname), FSRC_TWELVEDATA, r);
	if (!z)
		return 0;
	size_t i;
	json_t *v;
	int64_t prev = INT64_MIN;
	json_array_foreach(values, i, v)
	{
		struct fsrc_bar b = {.v = NAN};
		const char *when = json_string_value(json_object_get(v, "datetime"));
		int64_t l;
		if (!when || tz_parse_datetime(when, &l) < 0)
			return SYM_ERR(r, "bad datetime in value %zu", i), 0;
		/* values ascend (order=ASC): the hour repeated when clocks go
		 * back comes twice, and its second coming is the later one */
		int64_t u = tz_local_to_utc(z, l);
		if (u <= prev)
			u = tz_local_to_utc_later(z, l);
		prev = u;
		if (u > INT64_MAX / NS || u < INT64_MIN / NS)
			return SYM_ERR(r, "datetime out of range in value %zu", i), 0;
		b.ts = u * NS;
		if (!num(json_object_get(v, "open"), &b.o) ||
		    !num(json_object_get(v, "high"), &b.h) ||
		    !num(json_object_get(v, "low"), &b.l) ||
		    !num(json_object_get(v, "close"), &b.c)) {
			r->dropped++;
			continue;
		}
		double vol;
		if (num(json_object_get(v, "volume"), &vol))
			b.v = vol; /* forex and indices have no volume */
		if (push(r, &b) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int parse_polygon(json_t *root, struct fsrc_result *r)
{
	const char *status = json_string_value(json_object_get(root, "status"));
	const char *err = json_string_value(json_object_get(root, "error"));
	if (!err)
		err = json_string_value(json_object_get(root, "message"));
	if (!status)
		return SYM_ERR(r, "no status"), 0;
	if (strcmp(status, "OK") != 0 && strcmp(status, "DELAYED") != 0) {
		if (err && strstr(err, "exceeded the maximum requests"))
			return set_status(r, FSRC_RATELIMIT, "polygon: %.120s", err), 0;
		/* ERROR, NOT_AUTHORIZED: the source's */
		r->symbol_only = strcmp(status, "NOT_FOUND") == 0 ? SYM_ANSWER : 0;
		return set_status(r, FSRC_ERROR, "polygon %.20s: %.120s", status, err ? err : "?"),
		       0;
	}
	json_t *res = json_object_get(root, "results");
	if (!res || (json_is_array(res) && json_array_size(res) == 0))
		return set_status(r, FSRC_NODATA, "no results"), 0;
	if (!json_is_array(res))
		return SYM_ERR(r, "results is not an array"), 0;
	size_t i;
	json_t *v;
	json_array_foreach(res, i, v)
	{
		struct fsrc_bar b = {.v = NAN};
		json_t *t = json_object_get(v, "t");
		if (!json_is_integer(t) || json_integer_value(t) < 0 ||
		    json_integer_value(t) > INT64_MAX / 1000000)
			return SYM_ERR(r, "result %zu has no valid t", i), 0;
		b.ts = json_integer_value(t) * 1000000;
		if (!num(json_object_get(v, "o"), &b.o) || !num(json_object_get(v, "h"), &b.h) ||
		    !num(json_object_get(v, "l"), &b.l) || !num(json_object_get(v, "c"), &b.c)) {
			r->dropped++;
			continue;
		}
		double x;
		if (num(json_object_get(v, "v"), &x))
			b.v = x;
		json_t *n = json_object_get(v, "n");
		if (json_is_integer(n))
			b.n = json_integer_value(n);
		if (push(r, &b) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int fsrc_parse_body(enum fsrc_type t, const char *body, size_t len, int iv,
			   mdb_tzcache *zones, struct fsrc_result *r);

int fsrc_parse(enum fsrc_type t, long http_status, const char *body, size_t len, int iv,
	       mdb_tzcache *zones, struct fsrc_result *r)
{
	r->n = 0;
	r->dropped = 0;
	r->status = FSRC_OK;
	r->why[0] = '\0';
	r->symbol_only = 0;
	if (http_status == 429)
		return set_status(r, FSRC_RATELIMIT, "HTTP 429"), 0;
	/* a 4xx but 401/403 (key, plan) may be the API's answer about the
	 * symbol (Yahoo: 404 with chart.error): the body decides */
	bool client =
	    http_status >= 400 && http_status <= 499 && http_status != 401 && http_status != 403;
	if ((http_status < 200 || http_status > 299) && !client)
		return set_status(r, FSRC_ERROR, "HTTP %ld", http_status), 0;
	int rc = fsrc_parse_body(t, body, len, iv, zones, r);
	if (rc == 0 && client && !(r->status == FSRC_ERROR && r->symbol_only == SYM_ANSWER)) {
		r->n = 0;
		set_status(r, FSRC_ERROR, "HTTP %ld", http_status);
		r->symbol_only = 0;
	} else if (rc == 0 && client) {
		char why[sizeof r->why];
		snprintf(why, sizeof why, "%s", r->why);
		set_status(r, FSRC_ERROR, "HTTP %ld: %s", http_status, why);
	}
	r->symbol_only = r->symbol_only != 0;
	return rc;
}

/* fsrc_parse() once the status says the body is worth reading. */
static int fsrc_parse_body(enum fsrc_type t, const char *body, size_t len, int iv,
			   mdb_tzcache *zones, struct fsrc_result *r)
{
	json_error_t je;
	/* duplicate keys are taken, not refused: Alpha Vantage's series is an
	 * object keyed by local time, and the hour repeated when clocks go back
	 * appears as one key twice (the last one wins; that hour's first bar
	 * is lost to the format) */
	json_t *root = json_loadb(body, len, 0, &je);
	if (!root)
		return SYM_ERR(r, "bad JSON at byte %d: %.80s", je.position, je.text), 0;
	if (!json_is_object(root)) {
		json_decref(root);
		return SYM_ERR(r, "the body is not a JSON object"), 0;
	}
	int rc = 0;
	switch (t) {
	case FSRC_YAHOO:
		rc = parse_yahoo(root, iv > 0 ? iv : 60, r);
		break;
	case FSRC_ALPHAVANTAGE:
		rc = parse_av(root, zones, r);
		break;
	case FSRC_TWELVEDATA:
		rc = parse_td(root, zones, r);
		break;
	case FSRC_POLYGON:
		rc = parse_polygon(root, r);
		break;
	default:
		set_status(r, FSRC_ERROR, "unknown source type");
	}
	json_decref(root);
	if (rc == 0 && r->status != FSRC_OK)
		r->n = 0; /* an error answer's partial bars are not data */
	if (rc == 0)
		rc = sort_unique(r);
	return rc;
}

void fsrc_result_free(struct fsrc_result *r)
{
	free(r->bar);
	r->bar = NULL;
	r->n = r->cap = 0;
}

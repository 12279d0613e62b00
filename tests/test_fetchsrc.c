/* test_fetchsrc.c - the API adapters on recorded response shapes
 * (tests/data/fetch/): bars, "no data", rate limits, errors, garbage. */
#include "fetchsrc.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NS 1000000000LL

static mdb_tzcache *zones;
static struct fsrc_result res;

static void setup(void)
{
	zones = tzcache_new();
	memset(&res, 0, sizeof res);
}

static void teardown(void)
{
	tzcache_free(&zones);
	fsrc_result_free(&res);
}

/* tests/data/fetch/NAME, found from this source file's path (relative to
 * the build directory, which is the parent of this binary's directory). */
static char *load(const char *name, size_t *len)
{
	char path[1024], exe[1024];
	const char *src = __FILE__;
	if (src[0] == '/') {
		snprintf(path, sizeof path, "%s", src);
	} else {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		cr_assert_gt(n, 0);
		exe[n] = '\0';
		snprintf(path, sizeof path, "%s/../%s", dirname(exe), src);
	}
	char file[1200];
	snprintf(file, sizeof file, "%s/data/fetch/%s", dirname(path), name);
	FILE *f = fopen(file, "rb");
	cr_assert_not_null(f, "%s", file);
	static char buf[1 << 16];
	*len = fread(buf, 1, sizeof buf, f);
	fclose(f);
	return buf;
}

static void parse_file(enum fsrc_type t, const char *name, int iv)
{
	size_t len;
	char *b = load(name, &len);
	cr_assert_eq(fsrc_parse(t, 200, b, len, iv, zones, &res), 0);
}

Test(fetchsrc, yahoo_nulls_are_no_bar, .init = setup, .fini = teardown)
{
	parse_file(FSRC_YAHOO, "yahoo_nulls.json", 60);
	cr_assert_eq(res.status, FSRC_OK, "%s", res.why);
	/* 5 timestamps, one all-null: 4 bars, none of them zero */
	cr_assert_eq(res.n, 4);
	cr_assert_eq(res.bar[0].ts, 1699999920 * NS);
	cr_assert_eq(res.bar[1].ts, 1700000040 * NS);
	cr_assert_float_eq(res.bar[1].o, 15805.0, 1e-9);
	/* a null volume stays absent, never 0 */
	cr_assert(isnan(res.bar[2].v));
	/* the live entry (…170) is aligned to its minute, …160 */
	cr_assert_eq(res.bar[3].ts, 1700000160 * NS);
	cr_assert_float_eq(res.bar[3].c, 15810.5, 1e-9);
	for (int i = 0; i < res.n; i++)
		cr_assert(res.bar[i].o > 0 && res.bar[i].l > 0);
}

Test(fetchsrc, yahoo_error_and_empty, .init = setup, .fini = teardown)
{
	parse_file(FSRC_YAHOO, "yahoo_error.json", 60);
	cr_assert_eq(res.status, FSRC_ERROR);
	cr_assert(strstr(res.why, "No data found"), "%s", res.why);
	parse_file(FSRC_YAHOO, "yahoo_empty.json", 60);
	cr_assert_eq(res.status, FSRC_NODATA);
	cr_assert_eq(res.n, 0);
}

Test(fetchsrc, alphavantage_local_times, .init = setup, .fini = teardown)
{
	parse_file(FSRC_ALPHAVANTAGE, "av_intraday.json", 60);
	cr_assert_eq(res.status, FSRC_OK, "%s", res.why);
	cr_assert_eq(res.n, 3);
	/* newest-first in the answer, ascending out; 15:59 EST = 20:59 UTC */
	cr_assert_eq(res.bar[0].ts, (1709931600 - 60) * NS);
	cr_assert_eq(res.bar[2].ts, (1709931600 + 60) * NS);
	cr_assert_float_eq(res.bar[1].v, 310202, 1e-9);
	cr_assert_float_eq(res.bar[1].h, 196.1, 1e-9);
	/* summer: 09:30 EDT = 13:30 UTC */
	parse_file(FSRC_ALPHAVANTAGE, "av_summer.json", 60);
	cr_assert_eq(res.n, 1);
	cr_assert_eq(res.bar[0].ts, 1719840600 * NS);
}

Test(fetchsrc, alphavantage_note_and_information_are_rate_limits, .init = setup, .fini = teardown)
{
	parse_file(FSRC_ALPHAVANTAGE, "av_note.json", 60);
	cr_assert_eq(res.status, FSRC_RATELIMIT);
	cr_assert_eq(res.n, 0);
	parse_file(FSRC_ALPHAVANTAGE, "av_information.json", 60);
	cr_assert_eq(res.status, FSRC_RATELIMIT);
	parse_file(FSRC_ALPHAVANTAGE, "av_error.json", 60);
	cr_assert_eq(res.status, FSRC_ERROR);
}

Test(fetchsrc, twelvedata_zone_from_meta_and_bad_bar_dropped, .init = setup, .fini = teardown)
{
	parse_file(FSRC_TWELVEDATA, "td_time_series.json", 60);
	cr_assert_eq(res.status, FSRC_OK, "%s", res.why);
	/* the third bar has its high below its low: dropped and counted */
	cr_assert_eq(res.n, 2);
	cr_assert_eq(res.dropped, 1);
	/* 2024-11-04 09:30 EST (the day after the change) = 14:30 UTC */
	cr_assert_eq(res.bar[0].ts, 1730730600 * NS);
	cr_assert_eq(res.bar[1].ts, 1730730660 * NS);
	parse_file(FSRC_TWELVEDATA, "td_london.json", 60);
	cr_assert_eq(res.n, 1);
	cr_assert_eq(res.bar[0].ts, 1717398000 * NS); /* 08:00 BST = 07:00 UTC */
}

Test(fetchsrc, twelvedata_429_in_http_200, .init = setup, .fini = teardown)
{
	parse_file(FSRC_TWELVEDATA, "td_429.json", 60);
	cr_assert_eq(res.status, FSRC_RATELIMIT);
	parse_file(FSRC_TWELVEDATA, "td_error.json", 60);
	cr_assert_eq(res.status, FSRC_ERROR);
	cr_assert(strstr(res.why, "400"), "%s", res.why);
}

Test(fetchsrc, polygon_results_and_missing_results, .init = setup, .fini = teardown)
{
	parse_file(FSRC_POLYGON, "polygon_aggs.json", 86400);
	cr_assert_eq(res.status, FSRC_OK, "%s", res.why);
	cr_assert_eq(res.n, 2);
	cr_assert_eq(res.bar[0].ts, 1673240400000LL * 1000000);
	cr_assert_eq(res.bar[0].n, 645365);
	cr_assert_float_eq(res.bar[1].c, 130.73, 1e-9);
	parse_file(FSRC_POLYGON, "polygon_noresults.json", 60);
	cr_assert_eq(res.status, FSRC_NODATA);
	cr_assert_eq(res.n, 0);
	parse_file(FSRC_POLYGON, "polygon_429.json", 60);
	cr_assert_eq(res.status, FSRC_RATELIMIT);
}

Test(fetchsrc, http_status_first, .init = setup, .fini = teardown)
{
	size_t len;
	char *b = load("polygon_aggs.json", &len);
	cr_assert_eq(fsrc_parse(FSRC_POLYGON, 429, b, len, 60, zones, &res), 0);
	cr_assert_eq(res.status, FSRC_RATELIMIT);
	cr_assert_eq(fsrc_parse(FSRC_POLYGON, 503, b, len, 60, zones, &res), 0);
	cr_assert_eq(res.status, FSRC_ERROR);
	cr_assert_eq(res.n, 0);
}

Test(fetchsrc, truncated_and_garbage_bodies, .init = setup, .fini = teardown)
{
	static const char *files[] = {"yahoo_nulls.json", "av_intraday.json", "td_time_series.json",
				      "polygon_aggs.json"};
	static const enum fsrc_type types[] = {FSRC_YAHOO, FSRC_ALPHAVANTAGE, FSRC_TWELVEDATA,
					       FSRC_POLYGON};
	for (int f = 0; f < 4; f++) {
		size_t len;
		char *b = load(files[f], &len);
		/* every proper prefix is an error, never a bar */
		for (size_t cut = 0; cut + 2 < len; cut += 13) {
			cr_assert_eq(fsrc_parse(types[f], 200, b, cut, 60, zones, &res), 0);
			cr_assert_eq(res.status, FSRC_ERROR, "%s cut at %zu", files[f], cut);
			cr_assert_eq(res.n, 0);
		}
	}
	const char *junk[] = {"<html>Too Many Requests</html>", "[]", "null", "{\"a\":1}",
			      ("{\"chart\":{\"result\":[{\"timestamp\":[1],\"indicators\":{"
			       "\"quote\":[{\"open\":[1]}]}}]}}")};
	for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
		for (int t = 0; t < FSRC_NTYPES; t++) {
			cr_assert_eq(fsrc_parse(t, 200, junk[i], strlen(junk[i]), 60, zones, &res),
				     0);
			cr_assert_neq(res.status, FSRC_OK, "%s as %s", junk[i], fsrc_type_name(t));
			cr_assert_eq(res.n, 0);
		}
}

Test(fetchsrc, urls, .init = setup, .fini = teardown)
{
	char u[512];
	struct fsrc_req rq = {.base = "http://127.0.0.1:9/y",
			      .ticker = "NQ=F",
			      .iv = 60,
			      .from_ns = 1700000000 * NS,
			      .to_ns = 1700000060 * NS};
	cr_assert_gt(fsrc_url(FSRC_YAHOO, &rq, u, sizeof u), 0);
	cr_assert_str_eq(u, "http://127.0.0.1:9/y/v8/finance/chart/NQ%3DF?interval=1m&period1="
			    "1700000000&period2=1700000060&includePrePost=false");
	rq.key = "k&y";
	cr_assert_gt(fsrc_url(FSRC_POLYGON, &rq, u, sizeof u), 0);
	cr_assert_str_eq(
	    u, "http://127.0.0.1:9/y/v2/aggs/ticker/NQ%3DF/range/1/minute/"
	       "1700000000000/1700000059999?adjusted=true&sort=asc&limit=50000&apiKey=k%26y");
	rq.full = 1;
	cr_assert_gt(fsrc_url(FSRC_ALPHAVANTAGE, &rq, u, sizeof u), 0);
	cr_assert(strstr(u,
			 "function=TIME_SERIES_INTRADAY&symbol=NQ%3DF&interval=1min&outputsize=full"
			 "&month=2023-11&apikey=k%26y"),
		  "%s", u);
	cr_assert_gt(fsrc_url(FSRC_TWELVEDATA, &rq, u, sizeof u), 0);
	cr_assert(strstr(u, "/time_series?symbol=NQ%3DF&interval=1min&start_date=2023-11-13"
			    "&end_date=2023-11-15"),
		  "%s", u);
	rq.iv = 7;
	cr_assert_eq(fsrc_url(FSRC_YAHOO, &rq, u, sizeof u), -EINVAL);
	rq.iv = 60;
	cr_assert_eq(fsrc_url(FSRC_YAHOO, &rq, u, 20), -ENOSPC);
	cr_assert_eq(fsrc_type_parse("polygon"), FSRC_POLYGON);
	cr_assert_eq(fsrc_type_parse("bloomberg"), -EINVAL);
}

Test(fetchsrc, twelvedata_repeated_hour_at_fall_back, .init = setup, .fini = teardown)
{
	parse_file(FSRC_TWELVEDATA, "td_fallback_hour.json", 3600);
	cr_assert_eq(res.status, FSRC_OK, "%s", res.why);
	/* 00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST: four hours, none lost */
	cr_assert_eq(res.n, 4);
	cr_assert_eq(res.bar[0].ts, 1730606400 * NS);
	cr_assert_eq(res.bar[1].ts, 1730610000 * NS);
	cr_assert_eq(res.bar[2].ts, 1730613600 * NS);
	cr_assert_float_eq(res.bar[2].v, 3, 1e-9);
	cr_assert_eq(res.bar[3].ts, 1730617200 * NS);
}

/* Whose an error is: the symbol's (the API does not know it, or its body
 * does not parse) or the source's (HTTP status, key, server error). */
Test(fetchsrc, symbol_errors_are_told_from_source_errors, .init = setup, .fini = teardown)
{
	size_t len;
	char *b;
	parse_file(FSRC_YAHOO, "yahoo_error.json", 60);
	cr_assert_eq(res.status, FSRC_ERROR);
	cr_assert(res.symbol_only);
	/* Yahoo answers an unknown ticker with a 404 and chart.error */
	b = load("yahoo_error.json", &len);
	cr_assert_eq(fsrc_parse(FSRC_YAHOO, 404, b, len, 60, zones, &res), 0);
	cr_assert_eq(res.status, FSRC_ERROR);
	cr_assert(res.symbol_only);
	cr_assert(strstr(res.why, "HTTP 404: yahoo error: No data found"), "%s", res.why);
	/* a 404 that is not the API's answer (a wrong base URL) is the source's */
	const char *nf = "{\"error\":\"not found\"}";
	cr_assert_eq(fsrc_parse(FSRC_YAHOO, 404, nf, strlen(nf), 60, zones, &res), 0);
	cr_assert_eq(res.status, FSRC_ERROR);
	cr_assert(!res.symbol_only, "%s", res.why);
	cr_assert_eq(fsrc_parse(FSRC_POLYGON, 404, "<html>", 6, 60, zones, &res), 0);
	cr_assert(!res.symbol_only);
	/* 401 (key), 403 (plan), 5xx: the source's, whatever the body */
	for (int i = 0; i < 3; i++) {
		long st[] = {401, 403, 503};
		cr_assert_eq(fsrc_parse(FSRC_YAHOO, st[i], b, len, 60, zones, &res), 0);
		cr_assert_eq(res.status, FSRC_ERROR);
		cr_assert(!res.symbol_only, "HTTP %ld", st[i]);
	}
	parse_file(FSRC_TWELVEDATA, "td_error.json", 60);
	cr_assert(res.symbol_only, "%s", res.why);
	const char *td401 = "{\"code\":401,\"message\":\"**apikey** parameter is incorrect\","
			    "\"status\":\"error\"}";
	cr_assert_eq(fsrc_parse(FSRC_TWELVEDATA, 200, td401, strlen(td401), 60, zones, &res), 0);
	cr_assert_eq(res.status, FSRC_ERROR);
	cr_assert(!res.symbol_only);
	parse_file(FSRC_ALPHAVANTAGE, "av_error.json", 60);
	cr_assert(res.symbol_only, "%s", res.why);
	const char *avkey = "{\"Error Message\":\"the parameter apikey is invalid or missing.\"}";
	cr_assert_eq(fsrc_parse(FSRC_ALPHAVANTAGE, 200, avkey, strlen(avkey), 60, zones, &res), 0);
	cr_assert(!res.symbol_only);
	const char *pnf = "{\"status\":\"NOT_FOUND\",\"message\":\"Ticker not found.\"}";
	cr_assert_eq(fsrc_parse(FSRC_POLYGON, 200, pnf, strlen(pnf), 60, zones, &res), 0);
	cr_assert(res.symbol_only);
	const char *pna = "{\"status\":\"NOT_AUTHORIZED\",\"message\":\"plan\"}";
	cr_assert_eq(fsrc_parse(FSRC_POLYGON, 200, pna, strlen(pna), 60, zones, &res), 0);
	cr_assert(!res.symbol_only);
	/* a body of this symbol that does not parse */
	cr_assert_eq(fsrc_parse(FSRC_POLYGON, 200, "{\"sta", 5, 60, zones, &res), 0);
	cr_assert_eq(res.status, FSRC_ERROR);
	cr_assert(res.symbol_only);
	/* healthy answers carry no flag */
	parse_file(FSRC_POLYGON, "polygon_aggs.json", 86400);
	cr_assert_eq(res.status, FSRC_OK);
	cr_assert(!res.symbol_only);
	parse_file(FSRC_TWELVEDATA, "td_429.json", 60);
	cr_assert_eq(res.status, FSRC_RATELIMIT);
	cr_assert(!res.symbol_only);
}

/* fuzz_fetch.c - the API response adapters of mdb-fetch (common/fetchsrc.h).
 *
 * The input's first byte picks the API (Yahoo, Alpha Vantage, Twelve Data,
 * Polygon), its second the HTTP status and the interval, the rest is the
 * response body. Whatever the body, the adapter must say ok, no data, rate
 * limited or error, and the bars it keeps must be ascending with no two at
 * the same time. The result is reused across inputs, as mdb-fetch does. */
#include "fetchsrc.h"
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mdb_tzcache *zones;
	static struct fsrc_result res;
	static const long status[] = {200, 200, 200, 200, 429, 500, 404, 503};
	static const int ivs[] = {60, 300, 3600, 86400};
	if (!zones)
		FUZZ_CHECK((zones = tzcache_new()) != NULL);
	if (size < 2)
		return 0;
	enum fsrc_type t = (enum fsrc_type)(data[0] % FSRC_NTYPES);
	long st = status[data[1] & 7];
	int iv = ivs[(data[1] >> 3) & 3];
	if (fsrc_parse(t, st, (const char *)data + 2, size - 2, iv, zones, &res) < 0)
		return 0; /* -ENOMEM */
	FUZZ_CHECK(res.status == FSRC_OK || res.status == FSRC_NODATA ||
		   res.status == FSRC_RATELIMIT || res.status == FSRC_ERROR);
	FUZZ_CHECK(strnlen(res.why, sizeof res.why) < sizeof res.why);
	if (res.status != FSRC_OK)
		return 0;
	FUZZ_CHECK(res.n >= 0 && res.n <= res.cap && res.dropped >= 0);
	for (int i = 1; i < res.n; i++)
		FUZZ_CHECK(res.bar[i - 1].ts < res.bar[i].ts);
	return 0;
}

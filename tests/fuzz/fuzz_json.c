/* fuzz_json.c - JSON lines (record_from_json in common/record.h).
 *
 * The input is one line as `--json` reads it from stdin. A line that
 * converts must give MessagePack the other readers accept, and the JSON
 * rendering must be a fixed point after one round: json -> msgpack -> json
 * -> msgpack -> json gives the same text twice. */
#include "fuzzutil.h"
#include "record.h"

static uint8_t mp1[64 * 1024], mp2[64 * 1024];
static char j1[64 * 1024], j2[64 * 1024];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mdb_codec *c;
	if (!c)
		FUZZ_CHECK((c = codec_new()) != NULL);
	const char *why = NULL;
	char sym[MDB_SYM_MAX];
	struct mdb_record r;

	int n = record_from_json(c, (const char *)data, size, mp1, sizeof mp1, &why);
	if (n < 0)
		return 0;
	FUZZ_CHECK(record_span(mp1, (size_t)n) == n);
	/* a known t is all it checks: s may be missing or not a string, so
	 * only a record that decodes must also peek as its type and symbol
	 * (but a rej, which has no s of its own, ignores a bad one) */
	int t = record_peek(mp1, (size_t)n, sym, sizeof sym, &why);
	if (record_decode(c, mp1, (size_t)n, &r, &why) == 0 && r.t != MDB_REC_REJ)
		FUZZ_CHECK(t == (int)r.t && strcmp(sym, r.s) == 0);

	int l1 = record_to_json(c, mp1, (size_t)n, j1, sizeof j1, &why);
	FUZZ_CHECK(l1 >= 0 || l1 == -ENOSPC);
	if (l1 < 0)
		return 0;
	int m = record_from_json(c, j1, (size_t)l1, mp2, sizeof mp2, &why);
	FUZZ_CHECK(m > 0);
	int l2 = record_to_json(c, mp2, (size_t)m, j2, sizeof j2, &why);
	FUZZ_CHECK(l2 >= 0);
	int m3 = record_from_json(c, j2, (size_t)l2, mp1, sizeof mp1, &why);
	FUZZ_CHECK(m3 == m && memcmp(mp1, mp2, (size_t)m) == 0);
	int l3 = record_to_json(c, mp1, (size_t)m3, j1, sizeof j1, &why);
	FUZZ_CHECK(l3 == l2 && memcmp(j1, j2, (size_t)l2) == 0);
	return 0;
}

/* fuzz_snapshot.c - JSON snapshot files (common/snapshot.h), as mdb-watch
 * reads them.
 *
 * The input is a snapshot file. It must parse or be refused with a reason;
 * a parsed snapshot must format to text that parses to the same symbols,
 * and each quote must encode as a tick the other stages decode. */
#include "fuzzutil.h"
#include "record.h"
#include "snapshot.h"

static struct snap sn, again;
static char text[SNAP_MAX_BYTES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mdb_codec *c;
	if (!c)
		FUZZ_CHECK((c = codec_new()) != NULL);
	char why[160] = "";
	const char *w = NULL;
	if (snap_parse((const char *)data, size, &sn, why, sizeof why) < 0) {
		FUZZ_CHECK(why[0] != '\0' && strlen(why) < sizeof why);
		return 0;
	}
	FUZZ_CHECK(sn.n >= 0 && sn.n <= SNAP_MAX_SYMBOLS);
	uint8_t buf[MDB_REC_MAX_BYTES];
	struct mdb_record rec;
	for (int i = 0; i < sn.n; i++) {
		const struct snap_quote *q = &sn.q[i];
		FUZZ_CHECK(q->nf >= 0 && q->nf <= SNAP_MAX_FIELDS && strlen(q->s) < MDB_SYM_MAX);
		FUZZ_CHECK(snap_find(&sn, q->s) != NULL);
		int n = snap_encode_delta(q, NULL, i & 1 ? i : -1, (uint32_t)i, buf, sizeof buf);
		FUZZ_CHECK(n >= 0 || n == -ENOSPC);
		if (n > 0)
			FUZZ_CHECK(record_decode(c, buf, (size_t)n, &rec, &w) == 0 &&
				   rec.t == MDB_REC_TICK && strcmp(rec.s, q->s) == 0);
		if (i > 0)
			FUZZ_CHECK(snap_encode_delta(q, &sn.q[i - 1], -1, 0, buf, sizeof buf) >=
				       0 ||
				   n == -ENOSPC);
	}
	int len = snap_format(&sn, text, sizeof text);
	if (len > 0) {
		FUZZ_CHECK(snap_parse(text, (size_t)len, &again, why, sizeof why) == 0);
		FUZZ_CHECK(again.n == sn.n && again.seq == sn.seq);
	}
	return 0;
}

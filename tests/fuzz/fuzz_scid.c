/* fuzz_scid.c - Sierra Chart .scid headers and records (common/scid.h).
 *
 * The input is the start of a .scid file as mdb-watch reads it: a 56-byte
 * header, then 40-byte records. The header check must fail cleanly; each
 * record must either be refused with a reason or become an mdb record that
 * the other stages decode. */
#include "fuzzutil.h"
#include "record.h"
#include "scid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mdb_codec *c;
	if (!c)
		FUZZ_CHECK((c = codec_new()) != NULL);
	const char *why = NULL;
	int at = -1;
	if (size < SCID_HEADER_SIZE)
		return 0;
	if (scid_header_check(data, &why, &at) < 0)
		FUZZ_CHECK(why != NULL && at >= 0 && at < SCID_HEADER_SIZE);

	uint8_t buf[MDB_REC_MAX_BYTES], again[SCID_RECORD_SIZE];
	struct mdb_record rec;
	size_t off = SCID_HEADER_SIZE;
	for (unsigned i = 0; off + SCID_RECORD_SIZE <= size; i++, off += SCID_RECORD_SIZE) {
		struct scid_record r;
		enum scid_kind kind;
		scid_record_load(data + off, &r);
		/* every other record as from a bar file with offsets, the rest as ticks */
		int n = scid_encode(&r, "ES", i & 1 ? 60 : 0,
				    i & 1 ? (int64_t)(off + SCID_RECORD_SIZE) : -1, i, buf,
				    sizeof buf, &kind, &why);
		if (n < 0) {
			FUZZ_CHECK(n == -EBADMSG && why != NULL);
			continue;
		}
		FUZZ_CHECK(kind == SCID_TICK || kind == SCID_QUOTE || kind == SCID_BAR);
		FUZZ_CHECK(record_decode(c, buf, (size_t)n, &rec, &why) == 0);
		FUZZ_CHECK(strcmp(rec.s, "ES") == 0);
		FUZZ_CHECK(rec.ts == scid_to_unix_ns(r.dt));
		/* what was loaded stores back to the same record */
		scid_record_store(again, &r);
		struct scid_record r2;
		scid_record_load(again, &r2);
		FUZZ_CHECK(memcmp(&r, &r2, sizeof r) == 0);
	}
	return 0;
}

/* fuzz_dly.c - .dly/CSV bar files (common/dly.h), as mdb-watch reads them.
 *
 * The input is a file: its first line the header, the rest data lines.
 * A bad header or line is refused with a reason; a good line becomes a
 * bar record the other stages decode, and its standard text parses again
 * under the standard header. */
#include "dly.h"
#include "fuzzutil.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mdb_codec *c;
	if (!c)
		FUZZ_CHECK((c = codec_new()) != NULL);
	const char *text = (const char *)data, *end = text + size, *why = NULL;
	const char *nl = memchr(text, '\n', size);
	size_t len = nl ? (size_t)(nl - text) + 1 : size;
	struct dly_header h, std;
	if (dly_header_parse(text, len, &h, &why) < 0) {
		FUZZ_CHECK(why != NULL);
		return 0;
	}
	FUZZ_CHECK(h.ncols > 0 && h.ncols <= DLY_MAX_COLS);
	FUZZ_CHECK(dly_header_parse(DLY_HEADER, strlen(DLY_HEADER), &std, &why) == 0);

	uint8_t buf[MDB_REC_MAX_BYTES];
	char line[DLY_LINE_MAX + 2];
	struct mdb_record rec;
	unsigned fid = 0;
	for (const char *p = text + len; p < end; p += len, fid++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		struct dly_bar b, b2;
		if (dly_line_parse(&h, p, len, &b, &why) < 0) {
			FUZZ_CHECK(why != NULL);
			continue;
		}
		int n = dly_encode(&b, "ES", h.has_time ? 60 : 86400,
				   fid & 1 ? (int64_t)(p - text) : -1, fid, buf, sizeof buf, &why);
		if (n > 0)
			FUZZ_CHECK(record_decode(c, buf, (size_t)n, &rec, &why) == 0 &&
				   rec.t == MDB_REC_BAR && rec.ts == b.ts);
		else
			FUZZ_CHECK(n == -EBADMSG || n == -ENOSPC);
		int m = dly_line_format(&b, line, sizeof line);
		if (m > 0)
			FUZZ_CHECK(dly_line_parse(&std, line, (size_t)m, &b2, &why) == 0);
	}
	return 0;
}

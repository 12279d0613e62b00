/* fuzz_record.c - MessagePack record decoding (common/record.h).
 *
 * The input is one MessagePack object as it would arrive from a ring, a
 * pipe or ZeroMQ. Every reader of it must fail cleanly, and what decodes
 * must survive the round trip: encode(decode(x)) decodes again to bytes
 * that encode identically. */
#include "fuzzutil.h"
#include "record.h"

static uint8_t enc1[MDB_REC_MAX_BYTES], enc2[MDB_REC_MAX_BYTES];
static char text[64 * 1024];
static uint8_t back[64 * 1024];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static mdb_codec *c;
	if (!c)
		FUZZ_CHECK((c = codec_new()) != NULL);
	const char *why = NULL;
	char sym[MDB_SYM_MAX];

	int span = record_span(data, size);
	FUZZ_CHECK(span == -EBADMSG || (span >= 0 && (size_t)span <= size));
	int t = record_peek(data, size, sym, sizeof sym, &why);
	if (t > 0)
		FUZZ_CHECK(t < MDB_REC_MAX && strlen(sym) < sizeof sym);

	struct mdb_record r, r2;
	if (record_decode(c, data, size, &r, &why) == 0) {
		FUZZ_CHECK(r.t > MDB_REC_NONE && r.t < MDB_REC_MAX);
		FUZZ_CHECK(strlen(r.s) < sizeof r.s && strlen(r.src) < sizeof r.src);
		int n1 = record_encode(&r, enc1, sizeof enc1);
		FUZZ_CHECK(n1 > 0);
		FUZZ_CHECK(record_decode(c, enc1, (size_t)n1, &r2, &why) == 0);
		int n2 = record_encode(&r2, enc2, sizeof enc2);
		FUZZ_CHECK(n2 == n1 && memcmp(enc1, enc2, (size_t)n1) == 0);
		FUZZ_CHECK(record_span(enc1, (size_t)n1) == n1);
	}

	int n = record_to_json(c, data, size, text, sizeof text, &why);
	if (n >= 0) {
		FUZZ_CHECK((size_t)n < sizeof text && text[n] == '\0');
		(void)record_from_json(c, text, (size_t)n, back, sizeof back, &why);
	}
	n = record_to_text(c, data, size, text, sizeof text, &why);
	if (n >= 0)
		FUZZ_CHECK((size_t)n < sizeof text && text[n] == '\0');
	return 0;
}

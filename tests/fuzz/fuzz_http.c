/* fuzz_http.c - HTTP request heads and WebSocket handshakes (common/http.h).
 *
 * The input is what a client sends mdb-ws before the first blank line. The
 * parser must take the head, ask for more, or refuse it with the status it
 * names; every slice it returns must lie inside the head, and the helpers
 * that read the request (headers, %-decoding, the query, the upgrade check
 * and Sec-WebSocket-Accept) must stay inside their buffers. */
#include "fuzzutil.h"
#include "http.h"

static const char *head;
static size_t head_len;

static bool inside(const char *p, size_t len)
{
	return p >= head && len <= head_len && p - head <= (ptrdiff_t)(head_len - len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	char out[512];
	struct http_request rq;

	/* the whole input as a query string, as /history?... gets it (a raw
	 * NUL is copied through: the parser keeps those out of a request) */
	int d = http_url_decode(buf, size, true, out, sizeof out);
	FUZZ_CHECK(d == -EBADMSG || d == -ENOSPC || (d >= 0 && (size_t)d < sizeof out));
	(void)http_query_get(buf, size, "s", out, sizeof out);

	int n = http_parse_request(buf, size, &rq);
	FUZZ_CHECK(n <= (int)size);
	if (n <= 0) {
		FUZZ_CHECK(n == 0 || n == -EBADMSG || n == -E2BIG || n == -EPROTONOSUPPORT);
		return 0;
	}
	head = buf;
	head_len = (size_t)n;
	FUZZ_CHECK(inside(rq.method, rq.method_len) && inside(rq.path, rq.path_len));
	FUZZ_CHECK(rq.query == NULL || inside(rq.query, rq.query_len));
	FUZZ_CHECK(rq.nheaders >= 0 && rq.nheaders <= HTTP_MAX_HEADERS);
	for (int i = 0; i < rq.nheaders; i++)
		FUZZ_CHECK(inside(rq.h[i].name, rq.h[i].name_len) &&
			   inside(rq.h[i].value, rq.h[i].value_len));

	const struct http_header *h = http_header_get(&rq, "Host");
	FUZZ_CHECK(h == NULL || (h >= rq.h && h < rq.h + rq.nheaders));
	(void)http_header_has_token(&rq, "Connection", "upgrade");
	d = http_url_decode(rq.path, rq.path_len, false, out, sizeof out);
	FUZZ_CHECK(d < 0 || (size_t)d == strlen(out));
	if (rq.query) {
		d = http_query_get(rq.query, rq.query_len, "iv", out, sizeof out);
		FUZZ_CHECK(d < 0 || (size_t)d < sizeof out);
	}
	const char *key = NULL;
	size_t key_len = 0;
	int ws = http_ws_check(&rq, &key, &key_len);
	FUZZ_CHECK(ws == 0 || ws == -EBADMSG || ws == -EPROTONOSUPPORT);
	if (ws == 0) {
		char accept[HTTP_WS_ACCEPT_LEN + 1];
		FUZZ_CHECK(inside(key, key_len));
		http_ws_accept(key, key_len, accept);
		FUZZ_CHECK(strlen(accept) == HTTP_WS_ACCEPT_LEN);
	}
	return 0;
}

/* test_http.c - common/http: request heads, query strings and the
 * WebSocket handshake (RFC 6455's own sample key). */
#include <criterion/criterion.h>

#include "http.h"

#include <errno.h>
#include <string.h>

static int parse(const char *s, struct http_request *rq)
{
	return http_parse_request(s, strlen(s), rq);
}

static bool eq(const char *p, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(p, want, n) == 0;
}

Test(http, parses_a_request_head)
{
	const char *s = "GET /ws/live_data/ES?iv=60&format=msgpack HTTP/1.1\r\n"
			"Host: 127.0.0.1:8080\r\n"
			"Connection:  keep-alive, Upgrade \r\n"
			"X-Empty:\r\n"
			"\r\n"
			"body";
	struct http_request rq;
	int n = parse(s, &rq);
	cr_assert_eq(n, (int)(strstr(s, "body") - s));
	cr_assert(eq(rq.method, rq.method_len, "GET"));
	cr_assert(eq(rq.path, rq.path_len, "/ws/live_data/ES"));
	cr_assert(eq(rq.query, rq.query_len, "iv=60&format=msgpack"));
	cr_assert_eq(rq.minor, 1);
	cr_assert_eq(rq.nheaders, 3);
	const struct http_header *h = http_header_get(&rq, "host");
	cr_assert_not_null(h);
	cr_assert(eq(h->value, h->value_len, "127.0.0.1:8080"));
	cr_assert(eq(rq.h[1].value, rq.h[1].value_len, "keep-alive, Upgrade"));
	cr_assert_eq(http_header_get(&rq, "X-Empty")->value_len, 0);
	cr_assert(http_header_has_token(&rq, "connection", "upgrade"));
	cr_assert(!http_header_has_token(&rq, "connection", "close"));
	cr_assert_null(http_header_get(&rq, "Upgrade"));
	char v[16];
	cr_assert_eq(http_query_get(rq.query, rq.query_len, "format", v, sizeof v), 7);
	cr_assert_str_eq(v, "msgpack");
	cr_assert_eq(http_query_get(rq.query, rq.query_len, "i", v, sizeof v), -ENOENT);
}

Test(http, incomplete_heads_ask_for_more)
{
	struct http_request rq;
	const char *full = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	for (size_t n = 0; n < strlen(full); n++)
		cr_assert_eq(http_parse_request(full, n, &rq), 0, "prefix of %zu bytes", n);
	cr_assert_eq(http_parse_request(full, strlen(full), &rq), (int)strlen(full));
	/* bare LF line ends are tolerated */
	cr_assert_gt(parse("GET / HTTP/1.0\nA: b\n\n", &rq), 0);
	cr_assert_eq(rq.minor, 0);
}

Test(http, rejects_malformed_heads)
{
	struct http_request rq;
	cr_assert_eq(parse("GET\r\n\r\n", &rq), -EBADMSG);
	cr_assert_eq(parse("GET / HTTP/1.1 extra\r\n\r\n", &rq), -EBADMSG);
	cr_assert_eq(parse("GET nopath HTTP/1.1\r\n\r\n", &rq), -EBADMSG);
	cr_assert_eq(parse("G@T / HTTP/1.1\r\n\r\n", &rq), -EBADMSG);
	cr_assert_eq(parse("GET / HTTX/1.1\r\n\r\n", &rq), -EBADMSG);
	cr_assert_eq(parse("GET / HTTP/2.0\r\n\r\n", &rq), -EPROTONOSUPPORT);
	cr_assert_eq(parse("GET / HTTP/1.1\r\nNo colon\r\n\r\n", &rq), -EBADMSG);
	cr_assert_eq(parse("GET / HTTP/1.1\r\n folded: x\r\n\r\n", &rq), -EBADMSG);
	cr_assert_eq(parse("GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n", &rq), -EBADMSG);
	cr_assert_eq(parse("GET /a\x7f HTTP/1.1\r\n\r\n", &rq), -EBADMSG);
	char many[4096] = "GET / HTTP/1.1\r\n";
	for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
		strcat(many, "X-A: 1\r\n");
	strcat(many, "\r\n");
	cr_assert_eq(parse(many, &rq), -E2BIG);
}

Test(http, url_decoding)
{
	char out[32];
	cr_assert_eq(http_url_decode("ES%2FM%20x+y", 12, true, out, sizeof out), 8);
	cr_assert_str_eq(out, "ES/M x y");
	cr_assert_eq(http_url_decode("a+b", 3, false, out, sizeof out), 3);
	cr_assert_str_eq(out, "a+b");
	cr_assert_eq(http_url_decode("%zz", 3, false, out, sizeof out), -EBADMSG);
	cr_assert_eq(http_url_decode("%4", 2, false, out, sizeof out), -EBADMSG);
	cr_assert_eq(http_url_decode("%00", 3, false, out, sizeof out), -EBADMSG);
	cr_assert_eq(http_url_decode("abcdef", 6, false, out, 4), -ENOSPC);
}

/* RFC 6455 section 1.3: the sample handshake. */
Test(http, websocket_accept_of_the_rfc_sample)
{
	char acc[HTTP_WS_ACCEPT_LEN + 1];
	const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
	http_ws_accept(key, strlen(key), acc);
	cr_assert_str_eq(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(http, websocket_upgrade_checks)
{
	struct http_request rq;
	const char *key;
	size_t kn;
	cr_assert_gt(parse("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\n"
			   "Connection: keep-alive, Upgrade\r\n"
			   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			   "Sec-WebSocket-Version: 13\r\n\r\n",
			   &rq),
		     0);
	cr_assert_eq(http_ws_check(&rq, &key, &kn), 0);
	cr_assert(eq(key, kn, "dGhlIHNhbXBsZSBub25jZQ=="));
	/* a wrong version is 426, a short key or a missing Upgrade 400 */
	parse("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
	      &rq);
	cr_assert_eq(http_ws_check(&rq, &key, &kn), -EPROTONOSUPPORT);
	parse("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
	      &rq);
	cr_assert_eq(http_ws_check(&rq, &key, &kn), -EBADMSG);
	parse("GET /ws HTTP/1.1\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	      &rq);
	cr_assert_eq(http_ws_check(&rq, &key, &kn), -EBADMSG);
	parse("POST /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	      &rq);
	cr_assert_eq(http_ws_check(&rq, &key, &kn), -EBADMSG);
	parse("GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	      &rq);
	cr_assert_eq(http_ws_check(&rq, &key, &kn), -EBADMSG);
}

Test(http, response_heads)
{
	char out[256];
	int n = http_response_head(out, sizeof out, 404, "text/plain", 10, true, NULL);
	cr_assert_gt(n, 0);
	cr_assert(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
	cr_assert_not_null(strstr(out, "Content-Length: 10\r\n"));
	cr_assert_not_null(strstr(out, "Connection: close\r\n"));
	cr_assert(strcmp(out + n - 4, "\r\n\r\n") == 0);
	cr_assert_eq(http_response_head(out, 20, 200, NULL, 0, false, NULL), -ENOSPC);
}

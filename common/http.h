/* http.h - the HTTP/1.1 request head and the WebSocket upgrade (RFC 7230,
 * RFC 6455 section 4), for mdb-ws.
 *
 * The parser reads a request head in place: every string in a parsed
 * http_request points into the caller's buffer, so nothing is allocated and
 * the buffer must outlive the request. Bodies are not read (mdb-ws serves
 * GET only). Library code: functions return 0, a length, or -errno.
 */
#ifndef MDB_HTTP_H
#define MDB_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_MAX_HEADERS   32
#define HTTP_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

struct http_header {
	const char *name; /* not NUL-terminated */
	size_t name_len;
	const char *value; /* surrounding spaces and tabs removed */
	size_t value_len;
};

struct http_request {
	const char *method;
	size_t method_len;
	const char *path; /* the request-target up to '?', still %-encoded */
	size_t path_len;
	const char *query; /* after '?' (NULL when there is none) */
	size_t query_len;
	int minor; /* HTTP/1.minor */
	int nheaders;
	struct http_header h[HTTP_MAX_HEADERS];
};

/* Parse the request head at buf[0..len). Returns the bytes it takes (up to
 * and including the blank line) with *rq filled; 0 when the head is not
 * complete yet; -EBADMSG when it is malformed (400); -E2BIG when it has more
 * than HTTP_MAX_HEADERS headers (431); -EPROTONOSUPPORT for a version other
 * than HTTP/1.x (505). The caller bounds len (a head too large is its 431). */
int http_parse_request(const char *buf, size_t len, struct http_request *rq);

/* The first header called name (case-insensitive), or NULL. */
const struct http_header *http_header_get(const struct http_request *rq, const char *name);

/* True when header name is a comma-separated list holding token
 * (case-insensitive), as "Connection: keep-alive, Upgrade" holds "upgrade". */
bool http_header_has_token(const struct http_request *rq, const char *name, const char *token);

/* %-decode src[0..len) into out[0..cap) with a NUL; '+' becomes a space
 * when plus is true (query strings). Returns the decoded length, -EBADMSG
 * (a bad escape, or a decoded NUL), or -ENOSPC. */
int http_url_decode(const char *src, size_t len, bool plus, char *out, size_t cap);

/* The %-decoded value of key in query[0..qlen) ("a=1&b=2") into out, as
 * http_url_decode(). Returns its length, or -ENOENT when key is absent. */
int http_query_get(const char *query, size_t qlen, const char *key, char *out, size_t cap);

/* Check a WebSocket upgrade request: GET, HTTP/1.1 or later, "Upgrade:
 * websocket", "Connection: upgrade", a Sec-WebSocket-Key of 16 bytes in
 * base64. Returns 0 with *key and *key_len set; -EBADMSG (400) when it is not
 * a valid upgrade; -EPROTONOSUPPORT when Sec-WebSocket-Version is not 13
 * (426 with "Sec-WebSocket-Version: 13"). */
int http_ws_check(const struct http_request *rq, const char **key, size_t *key_len);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + RFC 6455's GUID)) into
 * out[0..HTTP_WS_ACCEPT_LEN] with a NUL. */
void http_ws_accept(const char *key, size_t key_len, char out[HTTP_WS_ACCEPT_LEN + 1]);

/* "OK", "Not Found", ... for a status code ("" for an unknown one). */
const char *http_reason(int code);

/* Write a response head into out[0..cap): status line, Content-Type (when
 * ctype is not NULL), Content-Length, "Connection: close" when close is
 * true, the lines of extra (each ending in CRLF; may be NULL) and the blank
 * line. Returns its length or -ENOSPC. */
int http_response_head(char *out, size_t cap, int code, const char *ctype, size_t content_len,
		       bool close, const char *extra);

#endif

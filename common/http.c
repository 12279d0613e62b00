/* http.c - request heads and the WebSocket handshake; see http.h. */
#include "http.h"

#include <errno.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 7230 tchar: the bytes a method or a header name may hold. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* The end of the line starting at p (its '\n'), or NULL. */
static const char *line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	return nl;
}

/* Length of the line [p, nl) without a trailing '\r'. */
static size_t line_len(const char *p, const char *nl)
{
	size_t n = (size_t)(nl - p);
	return n && p[n - 1] == '\r' ? n - 1 : n;
}

static int parse_request_line(const char *p, size_t n, struct http_request *rq)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ' ')
		return -EBADMSG;
	rq->method = p;
	rq->method_len = i++;
	size_t t = i;
	while (i < n && p[i] != ' ') {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x21 || c == 0x7f)
			return -EBADMSG;
		i++;
	}
	if (i == t || i == n || p[t] != '/')
		return -EBADMSG;
	const char *target = p + t;
	size_t tlen = i - t;
	const char *q = memchr(target, '?', tlen);
	rq->path = target;
	rq->path_len = q ? (size_t)(q - target) : tlen;
	rq->query = q ? q + 1 : NULL;
	rq->query_len = q ? tlen - rq->path_len - 1 : 0;
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || p[i + 6] != '.' || p[i + 5] < '0' ||
	    p[i + 5] > '9' || p[i + 7] < '0' || p[i + 7] > '9')
		return -EBADMSG;
	if (p[i + 5] != '1')
		return -EPROTONOSUPPORT;
	rq->minor = p[i + 7] - '0';
	return 0;
}

static int parse_header(const char *p, size_t n, struct http_request *rq)
{
	size_t i = 0;
	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i == n || p[i] != ':')
		return -EBADMSG; /* also an obs-fold line, which starts with a space */
	if (rq->nheaders == HTTP_MAX_HEADERS)
		return -E2BIG;
	struct http_header *h = &rq->h[rq->nheaders++];
	h->name = p;
	h->name_len = i++;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	size_t e = n;
	while (e > i && (p[e - 1] == ' ' || p[e - 1] == '\t'))
		e--;
	for (size_t k = i; k < e; k++) {
		unsigned char c = (unsigned char)p[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -EBADMSG;
	}
	h->value = p + i;
	h->value_len = e - i;
	return 0;
}

int http_parse_request(const char *buf, size_t len, struct http_request *rq)
{
	const char *p = buf, *end = buf + len;
	memset(rq, 0, sizeof *rq);
	/* RFC 7230 3.5: ignore empty lines before the request line */
	while (p < end && (*p == '\r' || *p == '\n'))
		p++;
	const char *nl = line_end(p, end);
	if (!nl)
		return 0;
	int rc = parse_request_line(p, line_len(p, nl), rq);
	if (rc < 0)
		return rc;
	for (p = nl + 1;; p = nl + 1) {
		if (!(nl = line_end(p, end)))
			return 0;
		size_t n = line_len(p, nl);
		if (n == 0)
			return (int)(nl + 1 - buf);
		if ((rc = parse_header(p, n, rq)) < 0)
			return rc;
	}
}

const struct http_header *http_header_get(const struct http_request *rq, const char *name)
{
	size_t n = strlen(name);
	for (int i = 0; i < rq->nheaders; i++)
		if (rq->h[i].name_len == n && strncasecmp(rq->h[i].name, name, n) == 0)
			return &rq->h[i];
	return NULL;
}

bool http_header_has_token(const struct http_request *rq, const char *name, const char *token)
{
	size_t tn = strlen(token);
	for (int i = 0; i < rq->nheaders; i++) {
		const struct http_header *h = &rq->h[i];
		if (h->name_len != strlen(name) || strncasecmp(h->name, name, h->name_len) != 0)
			continue;
		const char *p = h->value, *end = h->value + h->value_len;
		while (p < end) {
			while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
				p++;
			const char *s = p;
			while (p < end && *p != ',')
				p++;
			const char *e = p;
			while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if ((size_t)(e - s) == tn && strncasecmp(s, token, tn) == 0)
				return true;
		}
	}
	return false;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int http_url_decode(const char *src, size_t len, bool plus, char *out, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (c == '%') {
			int hi = i + 2 < len ? hexval(src[i + 1]) : -1;
			int lo = hi >= 0 ? hexval(src[i + 2]) : -1;
			if (lo < 0 || (hi | lo) == 0)
				return -EBADMSG;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus) {
			c = ' ';
		}
		if (o + 1 >= cap)
			return -ENOSPC;
		out[o++] = c;
	}
	if (cap == 0)
		return -ENOSPC;
	out[o] = '\0';
	return (int)o;
}

int http_query_get(const char *query, size_t qlen, const char *key, char *out, size_t cap)
{
	size_t kn = strlen(key);
	const char *p = query, *end = query ? query + qlen : NULL;
	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		const char *ke = eq ? eq : e;
		if ((size_t)(ke - p) == kn && memcmp(p, key, kn) == 0) {
			const char *v = eq ? eq + 1 : e;
			return http_url_decode(v, (size_t)(e - v), true, out, cap);
		}
		p = amp ? amp + 1 : end;
	}
	return -ENOENT;
}

int http_ws_check(const struct http_request *rq, const char **key, size_t *key_len)
{
	if (rq->method_len != 3 || memcmp(rq->method, "GET", 3) != 0 || rq->minor < 1)
		return -EBADMSG;
	if (!http_header_has_token(rq, "Upgrade", "websocket") ||
	    !http_header_has_token(rq, "Connection", "upgrade"))
		return -EBADMSG;
	const struct http_header *k = http_header_get(rq, "Sec-WebSocket-Key");
	if (!k || k->value_len != 24)
		return -EBADMSG;
	/* the key must be the base64 of exactly 16 bytes */
	struct base64_decode_ctx ctx;
	uint8_t raw[BASE64_DECODE_LENGTH(24)];
	size_t n = sizeof raw;
	base64_decode_init(&ctx);
	if (!base64_decode_update(&ctx, &n, raw, 24, k->value) || !base64_decode_final(&ctx) ||
	    n != 16)
		return -EBADMSG;
	const struct http_header *v = http_header_get(rq, "Sec-WebSocket-Version");
	if (!v || v->value_len != 2 || memcmp(v->value, "13", 2) != 0)
		return -EPROTONOSUPPORT;
	*key = k->value;
	*key_len = k->value_len;
	return 0;
}

void http_ws_accept(const char *key, size_t key_len, char out[HTTP_WS_ACCEPT_LEN + 1])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	struct sha1_ctx ctx;
	uint8_t digest[SHA1_DIGEST_SIZE];
	sha1_init(&ctx);
	sha1_update(&ctx, key_len, (const uint8_t *)key);
	sha1_update(&ctx, sizeof guid - 1, (const uint8_t *)guid);
	sha1_digest(&ctx, sizeof digest, digest);
	base64_encode_raw(out, sizeof digest, digest);
	out[HTTP_WS_ACCEPT_LEN] = '\0';
}

const char *http_reason(int code)
{
	switch (code) {
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "";
	}
}

int http_response_head(char *out, size_t cap, int code, const char *ctype, size_t content_len,
		       bool close, const char *extra)
{
	int n = snprintf(out, cap,
			 "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n%s"
			 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s\r\n",
			 code, http_reason(code), ctype ? "Content-Type: " : "", ctype ? ctype : "",
			 ctype ? "\r\n" : "", content_len, close ? "Connection: close\r\n" : "",
			 extra ? extra : "");
	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

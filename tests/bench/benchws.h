/* benchws.h - the WebSocket client side the benchmarks need: connect and
 * handshake, split the received bytes into frames, answer pings. Minimal on
 * purpose (no fragmentation, text and control frames only), for talking to
 * servers under test on 127.0.0.1. */
#ifndef MDB_BENCHWS_H
#define MDB_BENCHWS_H

#include <err.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct bws_conn {
	int fd;
	size_t len; /* bytes in buf not yet taken as frames */
	uint8_t buf[65536];
};

/* Connect c to ws://127.0.0.1:port/path and complete the handshake; any bytes
 * past the response head stay in c->buf. Exits on failure (err()). */
static inline void bws_connect(struct bws_conn *c, int port, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		err(1, "connect to 127.0.0.1:%d", port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char req[512];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 path);
	if (write(fd, req, (size_t)n) != n)
		err(1, "handshake");
	c->fd = fd;
	c->len = 0;
	char *end = NULL;
	while (!end) {
		ssize_t r = read(fd, c->buf + c->len, sizeof c->buf - c->len - 1);
		if (r <= 0)
			errx(1, "handshake: connection closed");
		c->len += (size_t)r;
		c->buf[c->len] = 0;
		end = strstr((char *)c->buf, "\r\n\r\n");
	}
	if (strncmp((char *)c->buf, "HTTP/1.1 101", 12) != 0)
		errx(1, "handshake refused: %.40s", c->buf);
	size_t head = (size_t)(end + 4 - (char *)c->buf);
	memmove(c->buf, c->buf + head, c->len - head);
	c->len -= head;
}

/* Send a masked control frame (opcode op, payload p[0..n), n <= 125). */
static inline void bws_control(struct bws_conn *c, int op, const uint8_t *p, size_t n)
{
	uint8_t f[2 + 4 + 125] = {(uint8_t)(0x80 | op), (uint8_t)(0x80 | n), 0, 0, 0, 0};
	memcpy(f + 6, p, n); /* mask 0: the payload goes as it is */
	if (write(c->fd, f, 6 + n) < 0)
		warn("websocket control frame");
}

/* Take the whole frames in c->buf: each text or binary frame's payload goes
 * to fn(arg, payload, len); pings are answered with pongs. Returns false when
 * the server sent a close frame. */
static inline bool bws_frames(struct bws_conn *c, void (*fn)(void *, const uint8_t *, size_t),
			      void *arg)
{
	size_t off = 0;
	bool open = true;
	for (;;) {
		if (c->len - off < 2)
			break;
		const uint8_t *p = c->buf + off;
		uint64_t n = p[1] & 0x7f;
		size_t h = 2;
		if (n == 126) {
			if (c->len - off < 4)
				break;
			n = (uint64_t)p[2] << 8 | p[3];
			h = 4;
		} else if (n == 127) {
			if (c->len - off < 10)
				break;
			n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | p[2 + i];
			h = 10;
		}
		if (n > sizeof c->buf - h)
			errx(1, "websocket frame of %llu bytes", (unsigned long long)n);
		if (c->len - off < h + n)
			break;
		int op = p[0] & 0x0f;
		if (op == 1 || op == 2)
			fn(arg, p + h, (size_t)n);
		else if (op == 9 && n <= 125)
			bws_control(c, 10, p + h, (size_t)n);
		else if (op == 8)
			open = false;
		off += h + n;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return open;
}

#endif

/* wsproto.h - the server side of mdb-ws's WebSocket protocol, without I/O:
 * a connection's frames (unmasked, checked, reassembled and UTF-8
 * validated by wslay, which sees only the bytes handed in here) and the
 * JSON control messages clients send:
 *   {"op":"subscribe"|"unsubscribe"|"resync","symbols":[...],"iv":60,"id":1}
 * answered by an ack or an error carrying the same id. Shared by mdb-ws and
 * the fuzz harness tests/fuzz/fuzz_ws.c.
 */
#ifndef MDB_WSPROTO_H
#define MDB_WSPROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- connections ---- */

typedef struct wsproto_conn wsproto_conn;

struct wsproto_ops {
	/* Queue one whole frame of len bytes for the peer. 0, or -ENOMEM
	 * (the connection then fails). */
	int (*send)(void *user, const uint8_t *frame, size_t len);
	/* A whole text message (valid UTF-8) arrived. */
	void (*on_text)(void *user, const uint8_t *msg, size_t len);
	/* A pong arrived. May be NULL. */
	void (*on_pong)(void *user);
};

/* A server-side connection that hands frames to ops (user is passed back)
 * and refuses client messages longer than max_msg bytes (1009). NULL on
 * ENOMEM. Free with wsproto_conn_free(). */
wsproto_conn *wsproto_conn_new(const struct wsproto_ops *ops, void *user, uint64_t max_msg);

/* Free c; accepts NULL and sets *c to NULL. */
void wsproto_conn_free(wsproto_conn **c);

/* Feed the bytes received, all of them; the answers (pongs, closes) are
 * sent through ops before it returns. A frame wslay refuses without
 * closing is answered with close 1002; a binary message with 1003 (control
 * messages are JSON text). Returns 0, or -EPIPE when the connection cannot
 * go on and should be shut down now. */
int wsproto_conn_input(wsproto_conn *c, const uint8_t *buf, size_t len);

/* Send a close frame with code and reason (no-op once one is sent). */
void wsproto_conn_close(wsproto_conn *c, uint16_t code, const char *reason);

/* Send a ping. */
void wsproto_conn_ping(wsproto_conn *c);

/* Whether a close frame has been sent / received. */
bool wsproto_conn_close_sent(const wsproto_conn *c);
bool wsproto_conn_close_received(const wsproto_conn *c);

/* ---- control messages ---- */

enum wsproto_op { WSPROTO_SUBSCRIBE = 1, WSPROTO_UNSUBSCRIBE, WSPROTO_RESYNC };

struct wsproto_ctl {
	json_t *root;	 /* the message; owned (wsproto_ctl_free) */
	json_t *id;	 /* the client's id, borrowed from root; NULL: none */
	json_t *symbols; /* the array, borrowed from root; NULL: none given */
	enum wsproto_op op;
	int32_t iv;   /* seconds */
	size_t nsyms; /* entries in symbols (each a good symbol) */
};

/* Parse and check a control message msg[0..len). Returns 0 with *ctl
 * filled, or -EBADMSG with *why (a static text for the error reply) and
 * ctl->id set when the message had one. Free *ctl with wsproto_ctl_free()
 * either way. An absent iv is default_iv. */
int wsproto_ctl_parse(const uint8_t *msg, size_t len, int32_t default_iv, struct wsproto_ctl *ctl,
		      const char **why);

/* Free what wsproto_ctl_parse() kept; the struct can be parsed into again. */
void wsproto_ctl_free(struct wsproto_ctl *ctl);

/* Symbol i of a parsed message (i < nsyms). */
const char *wsproto_ctl_symbol(const struct wsproto_ctl *ctl, size_t i);

/* "subscribe", "unsubscribe" or "resync". */
const char *wsproto_op_name(enum wsproto_op op);

/* A symbol a client may name: 1 to 31 printable ASCII bytes, no quote or
 * backslash. */
bool wsproto_sym_ok(const char *s);

/* {"type":"ack","op":..,"id":..,"iv":..,"symbols":[..]} for ctl, as a
 * malloc'd string the caller frees; NULL on ENOMEM. */
char *wsproto_ack(const struct wsproto_ctl *ctl);

/* {"type":"error","id":..,"error":why} (id NULL: null), malloc'd; NULL on
 * ENOMEM. */
char *wsproto_error(const json_t *id, const char *why);

#endif

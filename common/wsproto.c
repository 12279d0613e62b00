/* wsproto.c - WebSocket connections over wslay and control messages; see
 * wsproto.h. */
#include "wsproto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#define SYM_MAX 32 /* LVC_SYM_MAX: a symbol and its NUL */

struct wsproto_conn {
	wslay_event_context_ptr ws;
	const struct wsproto_ops *ops;
	void *user;
	const uint8_t *in; /* the bytes being fed, during wsproto_conn_input() */
	size_t in_len, in_off;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	(void)flags;
	wsproto_conn *c = user;
	size_t n = c->in_len - c->in_off;
	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n > len)
		n = len;
	memcpy(buf, c->in + c->in_off, n);
	c->in_off += n;
	return (ssize_t)n;
}

/* wslay may hand a frame over in pieces (header, then payload), but never
 * told to wait it finishes each within the wslay call that started it, so
 * its control frames fall between the caller's data frames, never inside
 * one (tests/fuzz/fuzz_ws.c checks this). */
static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	(void)flags;
	wsproto_conn *c = user;
	if (c->ops->send(c->user, data, len) < 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		   void *user)
{
	(void)ctx;
	wsproto_conn *c = user;
	if (arg->opcode == WSLAY_PONG) {
		if (c->ops->on_pong)
			c->ops->on_pong(c->user);
	} else if (arg->opcode == WSLAY_TEXT_FRAME) {
		c->ops->on_text(c->user, arg->msg, arg->msg_length);
	} else if (arg->opcode == WSLAY_BINARY_FRAME) {
		wsproto_conn_close(c, WSLAY_CODE_UNSUPPORTED_DATA,
				   "control messages are JSON text");
	}
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = msg_cb,
};

wsproto_conn *wsproto_conn_new(const struct wsproto_ops *ops, void *user, uint64_t max_msg)
{
	wsproto_conn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->ops = ops;
	c->user = user;
	if (wslay_event_context_server_init(&c->ws, &callbacks, c) != 0) {
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(c->ws, max_msg);
	return c;
}

void wsproto_conn_free(wsproto_conn **pc)
{
	wsproto_conn *c = pc ? *pc : NULL;
	if (!c)
		return;
	wslay_event_context_free(c->ws);
	free(c);
	*pc = NULL;
}

int wsproto_conn_input(wsproto_conn *c, const uint8_t *buf, size_t len)
{
	c->in = buf;
	c->in_len = len;
	c->in_off = 0;
	int rc = wslay_event_recv(c->ws);
	if (rc != 0 && rc != WSLAY_ERR_NOMEM && !wslay_event_get_close_sent(c->ws)) {
		/* a frame wslay refused without closing (a fragmented control
		 * frame): answer it as a protocol error */
		wslay_event_queue_close(c->ws, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
		rc = 0;
	}
	if (rc == 0)
		rc = wslay_event_send(c->ws);
	c->in = NULL;
	c->in_len = c->in_off = 0;
	return rc == 0 ? 0 : -EPIPE;
}

void wsproto_conn_close(wsproto_conn *c, uint16_t code, const char *reason)
{
	wslay_event_queue_close(c->ws, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
	wslay_event_send(c->ws);
}

void wsproto_conn_ping(wsproto_conn *c)
{
	struct wslay_event_msg ping = {.opcode = WSLAY_PING, .msg = NULL, .msg_length = 0};
	wslay_event_queue_msg(c->ws, &ping);
	wslay_event_send(c->ws);
}

bool wsproto_conn_close_sent(const wsproto_conn *c)
{
	return wslay_event_get_close_sent(c->ws);
}

bool wsproto_conn_close_received(const wsproto_conn *c)
{
	return wslay_event_get_close_received(c->ws);
}

/* ---- control messages ---- */

static const char *const op_names[] = {NULL, "subscribe", "unsubscribe", "resync"};

const char *wsproto_op_name(enum wsproto_op op)
{
	return op >= WSPROTO_SUBSCRIBE && op <= WSPROTO_RESYNC ? op_names[op] : NULL;
}

bool wsproto_sym_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= SYM_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '"' ||
		    *s == '\\')
			return false;
	return true;
}

int wsproto_ctl_parse(const uint8_t *msg, size_t len, int32_t default_iv, struct wsproto_ctl *ctl,
		      const char **why)
{
	*ctl = (struct wsproto_ctl){.iv = default_iv};
	json_error_t jerr;
	json_t *j = json_loadb((const char *)msg, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		*why = "not a JSON object";
		return -EBADMSG;
	}
	ctl->root = j;
	ctl->id = json_object_get(j, "id");
	const char *op = json_string_value(json_object_get(j, "op"));
	json_t *jiv = json_object_get(j, "iv"), *syms = json_object_get(j, "symbols");
	json_int_t iv = jiv ? json_integer_value(jiv) : default_iv;
	*why = NULL;
	if (!op)
		*why = "no op";
	else if (jiv && (!json_is_integer(jiv) || iv <= 0 || iv > INT32_MAX))
		*why = "iv must be a positive integer (seconds)";
	else if (!strcmp(op, "subscribe"))
		ctl->op = WSPROTO_SUBSCRIBE;
	else if (!strcmp(op, "unsubscribe"))
		ctl->op = WSPROTO_UNSUBSCRIBE;
	else if (!strcmp(op, "resync"))
		ctl->op = WSPROTO_RESYNC;
	else
		*why = "unknown op (subscribe, unsubscribe, resync)";
	if (!*why && syms && !json_is_array(syms))
		*why = "symbols must be an array of strings";
	else if (!*why && !syms && ctl->op == WSPROTO_SUBSCRIBE)
		*why = "subscribe needs symbols";
	if (!*why && syms) {
		size_t i;
		json_t *s;
		json_array_foreach(syms, i, s)
		{
			if (!json_is_string(s) || !wsproto_sym_ok(json_string_value(s)))
				*why = "bad symbol";
		}
	}
	if (*why)
		return -EBADMSG;
	ctl->iv = (int32_t)iv;
	ctl->symbols = syms;
	ctl->nsyms = syms ? json_array_size(syms) : 0;
	return 0;
}

void wsproto_ctl_free(struct wsproto_ctl *ctl)
{
	json_decref(ctl->root);
	*ctl = (struct wsproto_ctl){0};
}

const char *wsproto_ctl_symbol(const struct wsproto_ctl *ctl, size_t i)
{
	return json_string_value(json_array_get(ctl->symbols, i));
}

static char *dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

char *wsproto_ack(const struct wsproto_ctl *ctl)
{
	json_t *ack = json_pack("{s:s, s:s, s:O?, s:I}", "type", "ack", "op",
				wsproto_op_name(ctl->op), "id", ctl->id, "iv", (json_int_t)ctl->iv);
	if (ack)
		json_object_set_new(ack, "symbols",
				    ctl->symbols ? json_incref(ctl->symbols) : json_array());
	return dump(ack);
}

char *wsproto_error(const json_t *id, const char *why)
{
	return dump(
	    json_pack("{s:s, s:O?, s:s}", "type", "error", "id", (json_t *)id, "error", why));
}

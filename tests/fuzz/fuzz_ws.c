/* fuzz_ws.c - WebSocket frames and control messages (common/wsproto.h).
 *
 * The input is what a client sends mdb-ws after the upgrade. It goes
 * through a server connection in slices whose sizes the first byte picks
 * (frames split across reads); every frame the connection answers must be
 * one well-formed, unmasked server frame, every text message it delivers
 * valid UTF-8 no longer than the limit, and each goes through the control
 * message parser, as mdb-ws does. The whole input is also parsed as one
 * control message. A parsed message must hold only what the parser
 * promises, and the ack or error answering it must be a JSON object that
 * carries the same id. */
#include "fuzzutil.h"
#include "wsmsg.h"
#include "wsproto.h"

#include <stdbool.h>

#define MAX_MSG 4096

static bool utf8_ok(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i];
		size_t k = c < 0x80		? 1
			   : (c & 0xe0) == 0xc0 ? 2
			   : (c & 0xf0) == 0xe0 ? 3
			   : (c & 0xf8) == 0xf0 ? 4
						: 0;
		if (!k || i + k > n || (k == 2 && c < 0xc2) || (k == 4 && c > 0xf4))
			return false;
		uint32_t cp = k == 1 ? c : c & (0x7f >> k);
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k;
	}
	return true;
}

/* The answer to a control message: a JSON object of the right type with
 * the message's id. */
static void check_reply(char *s, const char *type, const json_t *id)
{
	FUZZ_CHECK(s != NULL);
	json_t *j = json_loads(s, 0, NULL);
	FUZZ_CHECK(json_is_object(j));
	FUZZ_CHECK(!strcmp(json_string_value(json_object_get(j, "type")), type));
	json_t *rid = json_object_get(j, "id");
	FUZZ_CHECK(id ? json_equal(rid, (json_t *)id) : json_is_null(rid));
	json_decref(j);
	free(s);
}

static void control(const uint8_t *msg, size_t len)
{
	struct wsproto_ctl m;
	const char *why = NULL;
	int rc = wsproto_ctl_parse(msg, len, 60, &m, &why);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	if (rc < 0) {
		FUZZ_CHECK(why != NULL);
		check_reply(wsproto_error(m.id, why), "error", m.id);
	} else {
		FUZZ_CHECK(wsproto_op_name(m.op) != NULL && m.iv > 0);
		FUZZ_CHECK(m.op != WSPROTO_SUBSCRIBE || m.symbols != NULL);
		for (size_t i = 0; i < m.nsyms; i++) {
			const char *s = wsproto_ctl_symbol(&m, i);
			FUZZ_CHECK(s && wsproto_sym_ok(s) && strlen(s) < 32);
		}
		check_reply(wsproto_ack(&m), "ack", m.id);
	}
	wsproto_ctl_free(&m);
}

/* What the connection sent since the last look: wslay may hand a frame
 * over in pieces (header, then payload). */
static uint8_t out[1 << 16];
static size_t out_len;

static int on_send(void *user, const uint8_t *f, size_t len)
{
	(void)user;
	FUZZ_CHECK(out_len + len <= sizeof out);
	memcpy(out + out_len, f, len);
	out_len += len;
	return 0;
}

/* Once a call returns, what it sent is whole server frames: FIN, no RSV
 * bits, unmasked, a known opcode, lengths as our own header writer puts
 * them (so mdb-ws's data frames never land inside one of them). */
static void check_sent(void)
{
	size_t off = 0;
	while (off < out_len) {
		const uint8_t *f = out + off;
		size_t left = out_len - off;
		FUZZ_CHECK(left >= 2 && (f[0] & 0xf0) == 0x80 && !(f[1] & 0x80));
		unsigned op = f[0] & 0x0f;
		FUZZ_CHECK(op == 0x1 || op == 0x2 || op == 0x8 || op == 0x9 || op == 0xa);
		uint64_t n = f[1] & 0x7f;
		size_t h = 2;
		if (n == 126) {
			FUZZ_CHECK(left >= 4);
			n = (uint64_t)f[2] << 8 | f[3], h = 4;
		} else if (n == 127) {
			FUZZ_CHECK(left >= 10);
			n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | f[2 + i];
			h = 10;
		}
		FUZZ_CHECK(n <= left - h);
		FUZZ_CHECK(op < 0x8 || n <= 125); /* control frames are short */
		uint8_t hdr[WSMSG_FRAME_HEADER_MAX];
		FUZZ_CHECK(wsmsg_frame_header(hdr, op, n) == h && memcmp(hdr, f, h) == 0);
		off += h + (size_t)n;
	}
	out_len = 0;
}

static void on_text(void *user, const uint8_t *msg, size_t len)
{
	(void)user;
	FUZZ_CHECK(len <= MAX_MSG && utf8_ok(msg, len));
	control(msg, len);
}

static const struct wsproto_ops ops = {.send = on_send, .on_text = on_text};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	control(data, size);
	if (size == 0)
		return 0;
	size_t step = (size_t)(data[0] % 7) * 3 + 1; /* 1 .. 19 bytes a read, or all */
	if (data[0] >= 0xf0)
		step = size;
	out_len = 0;
	wsproto_conn *c = wsproto_conn_new(&ops, NULL, MAX_MSG);
	FUZZ_CHECK(c != NULL);
	for (size_t off = 1; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;
		int rc = wsproto_conn_input(c, data + off, n);
		check_sent();
		if (rc < 0)
			break;
	}
	wsproto_conn_ping(c);
	check_sent();
	wsproto_conn_close(c, 1001, "bye");
	check_sent();
	wsproto_conn_free(&c);
	FUZZ_CHECK(c == NULL);
	return 0;
}

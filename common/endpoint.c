/* endpoint.c - rings, stdio and ZeroMQ behind one read/write interface.
 *
 * Waiting: when every input is a ring, the fan-in waits with one
 * futex_waitv() over the rings (ring_wait_any). When rings are mixed with
 * fd-based inputs (stdin, ZeroMQ), each ring gets a watcher thread that
 * sleeps on the ring's futex and signals an eventfd, and the main thread
 * sleeps in poll(). Nothing polls on a timer.
 */
#include "endpoint.h"
#include "cli.h"
#include "shm.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define STDIO_BUF_MIN (64u << 10)
#define STDIO_BUF_MAX (4u << 20) /* a single record larger than this is refused */
#define OUT_BUF (64u << 10)

enum ep_kind { EP_RING, EP_STDIO, EP_ZMQ };

struct ep_in {
	enum ep_kind kind;
	const char *uri;
	bool done;
	/* ring */
	mdb_ring *ring;
	mdb_ring_consumer *c;
	pthread_t th; /* watcher, in mixed fan-in only */
	bool has_th;
	int efd;
	bool armed;
	_Atomic uint32_t ctl;       /* bumped to arm the watcher or to stop it */
	_Atomic uint64_t armed_pos; /* the position the watcher waits to move from */
	_Atomic bool stop;
	/* stdio */
	int fd;
	uint8_t *buf;
	size_t cap, start, end;
	uint64_t offset; /* stream offset of buf[start] */
	uint64_t line;   /* JSON: number of the next line */
	bool eof;
	/* zmq */
	void *sock;
	zmq_msg_t part;
	bool part_live;
};

struct mdb_inputs {
	struct ep_in *in;
	int n;
	int next; /* round robin start */
	bool json;
	bool manual; /* durable rings advance only in inputs_release() */
	bool all_rings;
	int64_t spin_ns;
	_Atomic uint32_t *stop_word;
	int stop_fd;
	mdb_codec *codec;
	uint8_t *jout; /* JSON line converted to MessagePack */
	mdb_ring_consumer **cs; /* the ring inputs, for ring_wait_any */
	struct pollfd *pfd;
	uint64_t laps;
	char err[256];
};

struct ep_out {
	enum ep_kind kind;
	const char *uri;
	mdb_ring *ring;
	void *sock;
};

struct mdb_outputs {
	struct ep_out *out;
	int n;
	bool json;
	bool batch; /* ring records are published by outputs_flush() */
	int64_t timeout_ns;
	uint8_t *wbuf; /* stdout buffer */
	size_t wlen;
	char *jbuf;
	mdb_codec *codec;
};

void ep_opts_default(struct ep_opts *o)
{
	memset(o, 0, sizeof *o);
	o->kind = RING_DURABLE;
	o->from = RING_FROM_END;
	o->spin_ns = 20000;
	o->ring_capacity = RING_DEFAULT_CAPACITY;
	o->ring_mode = 0660;
	o->publish_timeout_ns = -1;
	o->stop_word = cli_stop_word();
	o->stop_fd = cli_stop_fd();
}

/* One ZeroMQ context per process, shared by every socket and terminated
 * with the last one, so a PUB socket's linger really flushes queued records
 * before the process exits. */
static void *zctx_ptr;
static int zctx_refs;

static void *zsocket(int type)
{
	if (!zctx_ptr && !(zctx_ptr = zmq_ctx_new()))
		return NULL;
	void *sock = zmq_socket(zctx_ptr, type);
	if (sock)
		zctx_refs++;
	return sock;
}

static void zclose(void *sock)
{
	zmq_close(sock);
	if (--zctx_refs == 0) {
		zmq_ctx_term(zctx_ptr); /* waits for lingering messages */
		zctx_ptr = NULL;
	}
}

static int parse(const char *uri, enum ep_kind *kind, const char **rest, const char **why)
{
	if (strcmp(uri, "-") == 0) {
		*kind = EP_STDIO;
		*rest = uri;
		return 0;
	}
	if (strncmp(uri, "ring:", 5) == 0) {
		*kind = EP_RING;
		*rest = uri + 5;
		if (!shm_name_ok(*rest)) {
			*why = "ring names are 1-47 characters of A-Z a-z 0-9 . _ - @";
			return -EINVAL;
		}
		return 0;
	}
	if (strncmp(uri, "zmq+tcp://", 10) == 0 || strncmp(uri, "zmq+ipc://", 10) == 0) {
		*kind = EP_ZMQ;
		*rest = uri + 4;
		if (!uri[10]) {
			*why = "a ZeroMQ endpoint needs an address";
			return -EINVAL;
		}
		return 0;
	}
	*why = "not an endpoint (ring:NAME, -, zmq+tcp://HOST:PORT or zmq+ipc://PATH)";
	return -EINVAL;
}

int ep_parse_check(const char *uri, const char **why)
{
	enum ep_kind k;
	const char *rest;
	return parse(uri, &k, &rest, why);
}

/* Open ring NAME, creating it first if it does not exist. */
static mdb_ring *ring_open_or_create(const char *name, const struct ep_opts *o, int *err)
{
	mdb_ring *r = ring_open(name, err);
	if (r || *err != -ENOENT)
		return r;
	*err = ring_create(name, o->ring_capacity, o->ring_mode);
	return *err < 0 ? NULL : ring_open(name, err);
}

/* ---- inputs ---- */

/* The watcher of a ring in a mixed fan-in: each time the main thread arms
 * it (armed_pos, ctl), sleep until the ring moves past armed_pos, then
 * signal the eventfd once. */
static void *watch_ring(void *arg)
{
	struct ep_in *e = arg;
	uint32_t seen = 0;
	for (;;) {
		uint32_t c = atomic_load_explicit(&e->ctl, memory_order_acquire);
		if (atomic_load_explicit(&e->stop, memory_order_acquire))
			return NULL;
		if (c == seen) {
			shm_futex_wait(&e->ctl, c, -1);
			continue;
		}
		seen = c;
		uint64_t p = atomic_load_explicit(&e->armed_pos, memory_order_acquire);
		if (ring_sleep_moved(e->c, p, &e->ctl, c, -1) == 1) {
			uint64_t one = 1;
			(void)!write(e->efd, &one, sizeof one);
		}
	}
}

static int in_open(struct ep_in *e, const char *uri, const struct ep_opts *o, char *errbuf,
		   size_t errlen)
{
	const char *rest, *why = NULL;
	int rc = parse(uri, &e->kind, &rest, &why);
	e->uri = uri;
	e->efd = -1;
	e->fd = -1;
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s: %s", uri, why);
		return rc;
	}
	switch (e->kind) {
	case EP_RING:
		e->ring = o->no_create ? ring_open(rest, &rc) : ring_open_or_create(rest, o, &rc);
		if (!e->ring) {
			snprintf(errbuf, errlen, "%s: %s", uri,
				 rc == -ENOENT	 ? "no such ring"
				 : rc == -EPROTO ? "not an mdb ring (or another version)"
						 : strerror(-rc));
			return rc;
		}
		e->c = ring_consumer_open(e->ring, o->name, o->kind, o->from, o->spin_ns, &rc);
		if (!e->c) {
			snprintf(errbuf, errlen, "%s: consumer %s: %s", uri, o->name,
				 rc == -EBUSY	 ? "name in use by a live process"
				 : rc == -ENOSPC ? "no free consumer slot"
				 : rc == -EEXIST ? "name registered with the other kind"
						 : strerror(-rc));
			return rc;
		}
		ring_set_manual_release(e->c, o->manual_release);
		return 0;
	case EP_STDIO:
		e->fd = STDIN_FILENO;
		e->cap = STDIO_BUF_MIN;
		e->buf = malloc(e->cap);
		e->line = 1;
		return e->buf ? 0 : -ENOMEM;
	case EP_ZMQ:
		e->sock = zsocket(ZMQ_SUB);
		if (!e->sock)
			goto zerr;
		if (o->zmq_hwm > 0)
			zmq_setsockopt(e->sock, ZMQ_RCVHWM, &o->zmq_hwm, sizeof o->zmq_hwm);
		const char *topic = o->zmq_topic ? o->zmq_topic : "";
		if (zmq_setsockopt(e->sock, ZMQ_SUBSCRIBE, topic, strlen(topic)) < 0 ||
		    zmq_connect(e->sock, rest) < 0)
			goto zerr;
		return 0;
	}
	return -EINVAL;
zerr:
	rc = -zmq_errno();
	snprintf(errbuf, errlen, "%s: %s", uri, zmq_strerror(-rc));
	return rc;
}

static void in_close(struct ep_in *e)
{
	if (e->has_th) {
		atomic_store_explicit(&e->stop, true, memory_order_release);
		atomic_fetch_add_explicit(&e->ctl, 1, memory_order_release);
		shm_futex_wake(&e->ctl);
		pthread_join(e->th, NULL);
	}
	if (e->efd >= 0)
		close(e->efd);
	ring_consumer_close(&e->c);
	ring_close(&e->ring);
	free(e->buf);
	if (e->part_live)
		zmq_msg_close(&e->part);
	if (e->sock) {
		int zero = 0;
		zmq_setsockopt(e->sock, ZMQ_LINGER, &zero, sizeof zero);
		zclose(e->sock);
	}
}

mdb_inputs *inputs_open(const char *const *uris, int n, const struct ep_opts *o, int *err,
			char *errbuf, size_t errlen)
{
	static const char *const stdin_only[] = {"-"};
	if (n == 0) {
		uris = stdin_only;
		n = 1;
	}
	mdb_inputs *in = calloc(1, sizeof *in);
	int rc = -ENOMEM;
	if (!in || !(in->in = calloc(n, sizeof *in->in)) ||
	    !(in->pfd = calloc(n + 1, sizeof *in->pfd)) ||
	    !(in->cs = calloc(n, sizeof *in->cs)) || !(in->codec = codec_new()) ||
	    !(in->jout = malloc(STDIO_BUF_MIN))) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	in->n = n;
	in->json = o->json_in;
	in->manual = o->manual_release;
	in->stop_word = o->stop_word;
	in->stop_fd = o->stop_fd;
	in->spin_ns = o->spin_ns;
	int nstdio = 0, nrings = 0;
	for (int i = 0; i < n; i++) {
		rc = in_open(&in->in[i], uris[i], o, errbuf, errlen);
		if (rc < 0) {
			in->n = i + 1;
			goto fail;
		}
		nstdio += in->in[i].kind == EP_STDIO;
		if (in->in[i].kind == EP_RING)
			in->cs[nrings++] = in->in[i].c;
	}
	if (nstdio > 1) {
		snprintf(errbuf, errlen, "stdin (-) can be an input only once");
		rc = -EINVAL;
		goto fail;
	}
	in->all_rings = nrings == n;
	if (!in->all_rings) {
		for (int i = 0; i < n; i++) {
			struct ep_in *e = &in->in[i];
			if (e->kind != EP_RING)
				continue;
			e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (e->efd < 0 || (rc = -pthread_create(&e->th, NULL, watch_ring, e)) < 0) {
				rc = rc < 0 ? rc : -errno;
				snprintf(errbuf, errlen, "%s: watcher: %s", e->uri, strerror(-rc));
				goto fail;
			}
			e->has_th = true;
		}
	}
	return in;
fail:
	*err = rc;
	inputs_close(&in);
	return NULL;
}

void inputs_close(mdb_inputs **inp)
{
	if (!inp || !*inp)
		return;
	mdb_inputs *in = *inp;
	for (int i = 0; in->in && i < in->n; i++)
		in_close(&in->in[i]);
	free(in->in);
	free(in->pfd);
	free(in->cs);
	free(in->jout);
	codec_free(&in->codec);
	free(in);
	*inp = NULL;
}

static int bad(mdb_inputs *in, struct mdb_msg *m, const uint8_t *data, size_t len, const char *fmt,
	       ...) __attribute__((format(printf, 5, 6)));
static int bad(mdb_inputs *in, struct mdb_msg *m, const uint8_t *data, size_t len, const char *fmt,
	       ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(in->err, sizeof in->err, fmt, ap);
	va_end(ap);
	m->type = MDB_REC_NONE;
	m->data = data;
	m->len = (uint32_t)len;
	return -EBADMSG;
}

static int read_ring(mdb_inputs *in, struct ep_in *e, struct mdb_msg *m)
{
	struct ring_rec rec;
	for (;;) {
		int rc = ring_next(e->c, &rec);
		if (rc == RING_LAPPED) {
			in->laps++;
			continue;
		}
		if (rc <= 0) {
			if (rc == -EPROTO)
				return bad(in, m, NULL, 0, "%s: corrupt record header", e->uri);
			return rc;
		}
		m->type = rec.type;
		m->len = rec.len;
		m->data = rec.data;
		m->pos = rec.pos;
		return 1;
	}
}

/* Take one complete record out of the stdin buffer: 1, 0 (need more), or
 * -EBADMSG (the bad bytes are skipped: a line for JSON, one byte for
 * MessagePack, so a damaged stream resynchronises). */
static int parse_stdio(mdb_inputs *in, struct ep_in *e, struct mdb_msg *m)
{
	const uint8_t *p = e->buf + e->start;
	size_t avail = e->end - e->start;
	const char *why = "";
	if (in->json) {
		const uint8_t *nl = memchr(p, '\n', avail);
		size_t len;
		if (nl)
			len = (size_t)(nl - p);
		else if (e->eof && avail)
			len = avail;
		else
			return 0;
		size_t used = nl ? len + 1 : len;
		uint64_t line = e->line++;
		e->start += used;
		e->offset += used;
		while (len && (p[len - 1] == '\r' || p[len - 1] == ' '))
			len--;
		if (len == 0)
			return 0; /* blank lines are allowed */
		int n = record_from_json(in->codec, (const char *)p, len, in->jout, STDIO_BUF_MIN, &why);
		if (n < 0)
			return bad(in, m, p, len, "stdin line %lu: %s", (unsigned long)line, why);
		int t = record_peek(in->jout, (size_t)n, NULL, 0, &why);
		m->type = t > 0 ? (uint32_t)t : MDB_REC_NONE;
		m->data = in->jout;
		m->len = (uint32_t)n;
		m->pos = 0;
		return 1;
	}
	if (avail == 0)
		return 0;
	int n = record_span(p, avail);
	if (n == 0 && !e->eof)
		return 0;
	uint64_t off = e->offset;
	if (n <= 0) {
		/* resynchronise at the next byte that can start a map, and report
		 * the skipped bytes once */
		size_t skip = 1;
		while (skip < avail && !((p[skip] & 0xf0) == 0x80 || p[skip] == 0xde || p[skip] == 0xdf))
			skip++;
		if (n == 0)
			skip = avail; /* at end of input: the rest is a torn record */
		e->start += skip;
		e->offset += skip;
		return bad(in, m, p, skip, "stdin offset %lu: %s (%zu bytes skipped)",
			   (unsigned long)off,
			   n == 0 ? "truncated record at end of input" : "not a MessagePack map", skip);
	}
	e->start += (size_t)n;
	e->offset += (size_t)n;
	int t = record_peek(p, (size_t)n, NULL, 0, &why);
	if (t <= 0)
		return bad(in, m, p, (size_t)n, "stdin offset %lu: %s", (unsigned long)off, why);
	m->type = (uint32_t)t;
	m->data = p;
	m->len = (uint32_t)n;
	m->pos = 0;
	return 1;
}

static int read_stdio(mdb_inputs *in, struct ep_in *e, struct mdb_msg *m)
{
	for (;;) {
		int rc = parse_stdio(in, e, m);
		if (rc != 0)
			return rc;
		if (e->eof) {
			if (e->start == e->end) {
				e->done = true;
				return 0;
			}
			continue; /* the rest parses (or fails) as a last record */
		}
		/* make room: move the unparsed tail to the front, grow if full */
		if (e->start > 0) {
			memmove(e->buf, e->buf + e->start, e->end - e->start);
			e->end -= e->start;
			e->start = 0;
		}
		if (e->end == e->cap) {
			if (e->cap >= STDIO_BUF_MAX) {
				e->end = 0; /* drop the oversized record */
				return bad(in, m, NULL, 0, "stdin offset %lu: record over %u bytes",
					   (unsigned long)e->offset, STDIO_BUF_MAX);
			}
			uint8_t *nb = realloc(e->buf, e->cap * 2);
			if (!nb)
				return -ENOMEM;
			e->buf = nb;
			e->cap *= 2;
		}
		struct pollfd pfd = {.fd = e->fd, .events = POLLIN};
		if (poll(&pfd, 1, 0) <= 0)
			return 0;
		ssize_t got = read(e->fd, e->buf + e->end, e->cap - e->end);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				return 0;
			return -errno;
		}
		if (got == 0)
			e->eof = true;
		e->end += (size_t)got;
	}
}

static int read_zmq(mdb_inputs *in, struct ep_in *e, struct mdb_msg *m)
{
	char topic[64];
	int tl = zmq_recv(e->sock, topic, sizeof topic - 1, ZMQ_DONTWAIT);
	if (tl < 0)
		return zmq_errno() == EAGAIN ? 0 : -zmq_errno();
	int more = 0;
	size_t ml = sizeof more;
	zmq_getsockopt(e->sock, ZMQ_RCVMORE, &more, &ml);
	if (!more)
		return bad(in, m, NULL, 0, "%s: a message without a record frame", e->uri);
	if (e->part_live)
		zmq_msg_close(&e->part);
	zmq_msg_init(&e->part);
	e->part_live = true;
	/* the second frame of a multipart message arrives with the first */
	if (zmq_msg_recv(&e->part, e->sock, 0) < 0)
		return -zmq_errno();
	while (zmq_msg_more(&e->part)) { /* extra frames: not ours, drop them */
		zmq_msg_t extra;
		zmq_msg_init(&extra);
		zmq_msg_recv(&extra, e->sock, 0);
		bool again = zmq_msg_more(&extra);
		zmq_msg_close(&extra);
		if (!again)
			break;
	}
	const uint8_t *data = zmq_msg_data(&e->part);
	size_t len = zmq_msg_size(&e->part);
	const char *why = "";
	int t = record_peek(data, len, NULL, 0, &why);
	if (t <= 0)
		return bad(in, m, data, len, "%s: %s", e->uri, why);
	m->type = (uint32_t)t;
	m->data = data;
	m->len = (uint32_t)len;
	m->pos = 0;
	return 1;
}

static int try_read(mdb_inputs *in, struct ep_in *e, struct mdb_msg *m)
{
	if (e->done)
		return 0;
	switch (e->kind) {
	case EP_RING:
		return read_ring(in, e, m);
	case EP_STDIO:
		return read_stdio(in, e, m);
	case EP_ZMQ:
		return read_zmq(in, e, m);
	}
	return 0;
}

/* Sleep in poll() until an fd-based input or a ring watcher is ready. */
static int wait_fds(mdb_inputs *in, int64_t timeout_ns)
{
	int np = 0;
	for (int i = 0; i < in->n; i++) {
		struct ep_in *e = &in->in[i];
		if (e->done)
			continue;
		switch (e->kind) {
		case EP_RING:
			if (!e->armed) {
				if (!in->manual)
					ring_release(e->c);
				atomic_store_explicit(&e->armed_pos, ring_consumer_position(e->c),
						      memory_order_release);
				atomic_fetch_add_explicit(&e->ctl, 1, memory_order_release);
				shm_futex_wake(&e->ctl);
				e->armed = true;
			}
			in->pfd[np++] = (struct pollfd){.fd = e->efd, .events = POLLIN};
			break;
		case EP_STDIO:
			in->pfd[np++] = (struct pollfd){.fd = e->fd, .events = POLLIN};
			break;
		case EP_ZMQ: {
			/* ZMQ_FD is edge-triggered: look at the events first */
			int ev = 0, fd = -1;
			size_t l = sizeof ev;
			zmq_getsockopt(e->sock, ZMQ_EVENTS, &ev, &l);
			if (ev & ZMQ_POLLIN)
				return 1;
			l = sizeof fd;
			zmq_getsockopt(e->sock, ZMQ_FD, &fd, &l);
			in->pfd[np++] = (struct pollfd){.fd = fd, .events = POLLIN};
			break;
		}
		}
	}
	if (np == 0)
		return 1;
	if (in->stop_fd >= 0)
		in->pfd[np++] = (struct pollfd){.fd = in->stop_fd, .events = POLLIN};
	int ms = timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000);
	int rc = poll(in->pfd, np, ms);
	if (rc < 0)
		return -errno;
	for (int i = 0; i < in->n; i++) {
		struct ep_in *e = &in->in[i];
		uint64_t v;
		if (e->kind == EP_RING && e->armed && read(e->efd, &v, sizeof v) == sizeof v)
			e->armed = false;
	}
	return rc > 0;
}

int inputs_read(mdb_inputs *in, struct mdb_msg *m, int64_t timeout_ns)
{
	struct timespec ts;
	int64_t t0 = -1, left = timeout_ns;
	for (;;) {
		int live = 0;
		/* round robin from in->next; no division per record */
		for (int k = 0, i = in->next; k < in->n; k++, i = i + 1 < in->n ? i + 1 : 0) {
			struct ep_in *e = &in->in[i];
			int rc = try_read(in, e, m);
			if (rc != 0) {
				m->input = i;
				in->next = i + 1 < in->n ? i + 1 : 0;
				return rc;
			}
			live += !e->done;
		}
		if (live == 0)
			return -EPIPE;
		if (timeout_ns == 0)
			return 0;
		if (timeout_ns > 0) {
			/* the clock starts at the first wait: a record that is
			 * ready costs no clock read */
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t t = ts.tv_sec * 1000000000LL + ts.tv_nsec;
			if (t0 < 0)
				t0 = t;
			left = timeout_ns - (t - t0);
			if (left <= 0)
				return 0;
		}
		/* a stop signal that came before this point must not be slept
		 * through: both waits also watch what the handler changes */
		if (in->stop_word && atomic_load_explicit(in->stop_word, memory_order_seq_cst))
			return -EINTR;
		int rc = in->all_rings
			     ? ring_wait_any_stop(in->cs, in->n, in->spin_ns, left, in->stop_word)
			     : wait_fds(in, left);
		if (rc < 0)
			return rc;
	}
}

const char *inputs_error(const mdb_inputs *in)
{
	return in->err;
}

void inputs_release(mdb_inputs *in)
{
	for (int i = 0; i < in->n; i++)
		if (in->in[i].c)
			ring_release(in->in[i].c);
}

uint64_t inputs_laps(const mdb_inputs *in)
{
	return in->laps;
}

mdb_ring_consumer *inputs_ring(mdb_inputs *in, int i)
{
	return i >= 0 && i < in->n ? in->in[i].c : NULL;
}

/* ---- outputs ---- */

static int out_open(struct ep_out *e, const char *uri, const struct ep_opts *o, char *errbuf,
		    size_t errlen)
{
	const char *rest, *why = NULL;
	int rc = parse(uri, &e->kind, &rest, &why);
	e->uri = uri;
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s: %s", uri, why);
		return rc;
	}
	switch (e->kind) {
	case EP_RING:
		e->ring = ring_open_or_create(rest, o, &rc);
		if (!e->ring) {
			snprintf(errbuf, errlen, "%s: %s", uri, strerror(-rc));
			return rc;
		}
		rc = ring_producer_begin(e->ring);
		if (rc < 0) {
			struct ring_info info;
			ring_info(e->ring, &info);
			if (rc == -EBUSY)
				snprintf(errbuf, errlen, "%s: already has a producer (pid %d)", uri,
					 (int)info.producer_pid);
			else
				snprintf(errbuf, errlen, "%s: %s", uri, strerror(-rc));
			return rc;
		}
		return 0;
	case EP_STDIO:
		return 0;
	case EP_ZMQ: {
		e->sock = zsocket(ZMQ_PUB);
		if (!e->sock)
			goto zerr;
		if (o->zmq_hwm > 0)
			zmq_setsockopt(e->sock, ZMQ_SNDHWM, &o->zmq_hwm, sizeof o->zmq_hwm);
		/* on exit, give queued records two seconds to leave */
		int linger = 2000;
		zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger);
		if (zmq_bind(e->sock, rest) < 0)
			goto zerr;
		return 0;
	}
	}
	return -EINVAL;
zerr:
	rc = -zmq_errno();
	snprintf(errbuf, errlen, "%s: %s", uri, zmq_strerror(-rc));
	return rc;
}

mdb_outputs *outputs_open(const char *const *uris, int n, const struct ep_opts *o, int *err,
			  char *errbuf, size_t errlen)
{
	static const char *const stdout_only[] = {"-"};
	if (n == 0) {
		uris = stdout_only;
		n = 1;
	}
	mdb_outputs *out = calloc(1, sizeof *out);
	int rc = -ENOMEM;
	if (!out || !(out->out = calloc(n, sizeof *out->out)) || !(out->wbuf = malloc(OUT_BUF)) ||
	    !(out->jbuf = malloc(OUT_BUF)) || !(out->codec = codec_new())) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	out->json = o->json_out;
	out->batch = o->batch_out;
	out->timeout_ns = o->publish_timeout_ns;
	int nstdio = 0;
	for (int i = 0; i < n; i++) {
		out->n = i + 1;
		rc = out_open(&out->out[i], uris[i], o, errbuf, errlen);
		if (rc < 0)
			goto fail;
		nstdio += out->out[i].kind == EP_STDIO;
	}
	if (nstdio > 1) {
		snprintf(errbuf, errlen, "stdout (-) can be an output only once");
		rc = -EINVAL;
		goto fail;
	}
	return out;
fail:
	*err = rc;
	outputs_close(&out);
	return NULL;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int outputs_flush(mdb_outputs *out)
{
	if (out->batch)
		for (int i = 0; i < out->n; i++)
			if (out->out[i].kind == EP_RING)
				ring_flush(out->out[i].ring);
	if (!out->wlen)
		return 0;
	int rc = write_all(STDOUT_FILENO, out->wbuf, out->wlen);
	out->wlen = 0;
	return rc;
}

static int stdout_put(mdb_outputs *out, const void *p, size_t n)
{
	if (out->wlen + n > OUT_BUF) {
		int rc = outputs_flush(out);
		if (rc < 0)
			return rc;
		if (n > OUT_BUF)
			return write_all(STDOUT_FILENO, p, n);
	}
	memcpy(out->wbuf + out->wlen, p, n);
	out->wlen += n;
	return 0;
}

static int write_one(mdb_outputs *out, struct ep_out *e, const struct mdb_msg *m)
{
	switch (e->kind) {
	case EP_RING: {
		if (!out->batch)
			return ring_publish(e->ring, m->type, m->data, m->len, out->timeout_ns);
		void *dst;
		int rc = ring_claim(e->ring, m->type, m->len, &dst, out->timeout_ns);
		if (rc < 0)
			return rc;
		memcpy(dst, m->data, m->len);
		ring_commit_quiet(e->ring);
		return 0;
	}
	case EP_STDIO:
		if (out->json) {
			const char *why;
			int n = record_to_json(out->codec, m->data, m->len, out->jbuf, OUT_BUF - 1, &why);
			if (n < 0)
				return n;
			out->jbuf[n++] = '\n';
			return stdout_put(out, out->jbuf, (size_t)n);
		}
		return stdout_put(out, m->data, m->len);
	case EP_ZMQ: {
		char topic[16 + MDB_SYM_MAX], sym[MDB_SYM_MAX];
		const char *why, *tn;
		if (record_peek(m->data, m->len, sym, sizeof sym, &why) <= 0)
			sym[0] = '\0';
		tn = record_type_name(m->type);
		int tl = snprintf(topic, sizeof topic, "%s/%s", tn ? tn : "?", sym);
		if (zmq_send(e->sock, topic, (size_t)tl, ZMQ_SNDMORE) < 0 ||
		    zmq_send(e->sock, m->data, m->len, 0) < 0)
			return -zmq_errno();
		return 0;
	}
	}
	return -EINVAL;
}

int outputs_write(mdb_outputs *out, const struct mdb_msg *m)
{
	int first = 0;
	for (int i = 0; i < out->n; i++) {
		int rc = write_one(out, &out->out[i], m);
		if (rc < 0 && !first)
			first = rc;
	}
	return first;
}

void outputs_close(mdb_outputs **outp)
{
	if (!outp || !*outp)
		return;
	mdb_outputs *out = *outp;
	outputs_flush(out);
	for (int i = 0; out->out && i < out->n; i++) {
		ring_close(&out->out[i].ring);
		if (out->out[i].sock)
			zclose(out->out[i].sock);
	}
	free(out->out);
	free(out->wbuf);
	free(out->jbuf);
	codec_free(&out->codec);
	free(out);
	*outp = NULL;
}

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
#include "clock.h"
#include "shm.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define STDIO_BUF_MIN	  (64u << 10)
#define STDIO_BUF_MAX	  (4u << 20) /* a single record larger than this is refused */
#define OUT_BUF		  (64u << 10)
#define OUT_PUBLISH_EVERY 32u	       /* batch mode: ring records published at least this often */
#define SEQ_FRAME	  24	       /* {ring_id, prev, pos} */
#define REPLAY_REQ	  32	       /* {id, ring_id, from, to} */
#define REPLAY_HDR	  16	       /* {id, kind, status} */
#define REPLAY_CHUNK	  2000	       /* records per reply; the client asks again */
#define REPLAY_WAIT_NS	  2000000000LL /* silence before a request is sent again */
#define REPLAY_TRIES	  5	       /* ... and before a gap is given up */
#define CURSOR_MAGIC	  0x31525543424d44ULL /* "MDBCUR1" */
#define NOTES		  8

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
	_Atomic uint32_t ctl;	    /* bumped to arm the watcher or to stop it */
	_Atomic uint64_t armed_pos; /* the position the watcher waits to move from */
	_Atomic bool stop;
	/* stdio */
	int fd;
	uint8_t *buf;
	size_t cap, start, end;
	uint64_t offset; /* stream offset of buf[start] */
	uint64_t line;	 /* JSON: number of the next line */
	bool eof;
	/* zmq */
	void *sock;
	zmq_msg_t part;
	bool part_live;
	/* zmq with a replay server */
	const char *rp_addr;
	void *rsock;	 /* DEALER to the replay server */
	uint64_t src;	 /* sender's ring_id; 0: nothing received yet */
	uint64_t expect; /* end of the last record delivered */
	bool rp_active;	 /* replaying [expect, held_pos) before the held record */
	bool rp_sent;
	int rp_tries;
	uint64_t rp_id;
	int64_t rp_deadline;
	zmq_msg_t held; /* the live record that revealed the gap */
	bool held_live;
	uint64_t held_seq[3];
	struct ep_zstats zs;
	uint64_t gap_replayed; /* records replayed for the current gap */
	int cfd;	       /* cursor file, locked */
	_Atomic uint64_t *cur; /* its {magic, src, expect} */
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
	uint8_t *jout;		/* JSON line converted to MessagePack */
	mdb_ring_consumer **cs; /* the ring inputs, for ring_wait_any */
	struct pollfd *pfd;
	uint64_t laps;
	char err[256];
	char notes[NOTES][240]; /* inputs_notice's queue */
	int note_head, note_n;
};

struct ep_out {
	enum ep_kind kind;
	const char *uri;
	mdb_ring *ring;
	void *sock;
	unsigned unpublished; /* batch mode: records committed since the last ring_flush */
};

struct mdb_outputs {
	struct ep_out *out;
	int n;
	bool json;
	bool seq;   /* ZeroMQ: add the sequence frame */
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

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

/* Receive the record frame of a multipart message into part, and the
 * sequence frame that may follow into seq. Later frames are dropped.
 * Returns 1 with a sequence, 0 without, or -errno. */
static int recv_record(void *sock, zmq_msg_t *part, uint64_t seq[3])
{
	if (zmq_msg_recv(part, sock, 0) < 0)
		return -zmq_errno();
	int has = 0;
	bool more = zmq_msg_more(part), first = true;
	while (more) {
		zmq_msg_t x;
		zmq_msg_init(&x);
		if (zmq_msg_recv(&x, sock, 0) < 0) {
			zmq_msg_close(&x);
			break;
		}
		more = zmq_msg_more(&x);
		if (first && zmq_msg_size(&x) == SEQ_FRAME) {
			const uint8_t *p = zmq_msg_data(&x);
			for (int i = 0; i < 3; i++)
				seq[i] = get64(p + 8 * i);
			has = 1;
		}
		first = false;
		zmq_msg_close(&x);
	}
	return has;
}

/* Drop what is left of a multipart message. */
static void drain(void *sock)
{
	int more = 0;
	size_t ml = sizeof more;
	while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &ml) == 0 && more) {
		zmq_msg_t x;
		zmq_msg_init(&x);
		int rc = zmq_msg_recv(&x, sock, 0);
		zmq_msg_close(&x);
		if (rc < 0)
			break;
	}
}

static void notice(mdb_inputs *in, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void notice(mdb_inputs *in, const char *fmt, ...)
{
	if (in->note_n == NOTES) { /* a full queue keeps the newest */
		in->note_head = (in->note_head + 1) % NOTES;
		in->note_n--;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(in->notes[(in->note_head + in->note_n++) % NOTES], sizeof in->notes[0], fmt, ap);
	va_end(ap);
}

const char *inputs_notice(mdb_inputs *in)
{
	if (!in->note_n)
		return NULL;
	const char *s = in->notes[in->note_head];
	in->note_head = (in->note_head + 1) % NOTES;
	in->note_n--;
	return s; /* stays intact until NOTES more notices come */
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

/* Open ring NAME, creating it first if it does not exist; on failure say
 * why in errbuf. */
static mdb_ring *ring_open_or_create(const char *uri, const char *name, bool create,
				     const struct ep_opts *o, int *err, char *errbuf, size_t errlen)
{
	mdb_ring *r = ring_open(name, err);
	if (!r && *err == -ENOENT && create) {
		*err = ring_create(name, o->ring_capacity, o->ring_mode);
		if (*err < 0) {
			snprintf(errbuf, errlen, "%s: cannot create a ring of %llu bytes in %s: %s",
				 uri, (unsigned long long)o->ring_capacity, shm_dir(),
				 strerror(-*err));
			return NULL;
		}
		r = ring_open(name, err);
	}
	if (!r)
		snprintf(errbuf, errlen, "%s: %s", uri,
			 *err == -ENOENT   ? "no such ring"
			 : *err == -EPROTO ? "not an mdb ring (or another version)"
					   : strerror(-*err));
	return r;
}

/* Open (creating) the cursor file of a ZeroMQ input with a replay server,
 * locked as ring slots are, and load where the last run stopped. */
static int cursor_open(struct ep_in *e, const char *name, char *errbuf, size_t errlen)
{
	char path[4096] = "";
	int rc = shm_path(path, sizeof path, "zcursor", name, ".pos", true);
	if (rc < 0)
		goto fail;
	e->cfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
	if (e->cfd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = shm_lock_byte(e->cfd, 0)) < 0) {
		snprintf(errbuf, errlen, "%s: cursor %s: in use by a live process", e->uri, path);
		return rc;
	}
	/* reserved, so a full directory fails here rather than faulting */
	if ((rc = -posix_fallocate(e->cfd, 0, 4096)) < 0)
		goto fail;
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, e->cfd, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	e->cur = m;
	if (atomic_load(&e->cur[0]) == CURSOR_MAGIC) {
		e->src = atomic_load(&e->cur[1]);
		e->expect = atomic_load(&e->cur[2]);
	} else {
		atomic_store(&e->cur[1], 0);
		atomic_store(&e->cur[0], CURSOR_MAGIC);
	}
	return 0;
fail:
	snprintf(errbuf, errlen, "%s: cursor %s: %s", e->uri, path, strerror(-rc));
	return rc;
}

/* Persist where the input stands (after what it delivered was written on).
 * expect before src: a run killed between the two finds the old src, which
 * the live stream no longer carries, and starts afresh. */
static void cursor_save(struct ep_in *e)
{
	if (!e->cur || atomic_load_explicit(&e->cur[2], memory_order_relaxed) == e->expect)
		return;
	atomic_store_explicit(&e->cur[2], e->expect, memory_order_relaxed);
	atomic_store_explicit(&e->cur[1], e->src, memory_order_relaxed);
}

/* (Re)connect the DEALER that asks the replay server: a new socket drops
 * requests still queued for a server that did not answer. */
static int replay_connect(struct ep_in *e)
{
	if (e->rsock)
		zclose(e->rsock);
	e->rsock = zsocket(ZMQ_DEALER);
	if (!e->rsock)
		return -zmq_errno();
	int zero = 0;
	zmq_setsockopt(e->rsock, ZMQ_LINGER, &zero, sizeof zero);
	return zmq_connect(e->rsock, e->rp_addr) < 0 ? -zmq_errno() : 0;
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
	e->cfd = -1;
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s: %s", uri, why);
		return rc;
	}
	switch (e->kind) {
	case EP_RING:
		e->ring = ring_open_or_create(uri, rest, !o->no_create, o, &rc, errbuf, errlen);
		if (!e->ring)
			return rc;
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
		if (!o->zmq_replay)
			return 0;
		e->rp_addr = o->zmq_replay;
		if ((rc = replay_connect(e)) < 0) {
			snprintf(errbuf, errlen, "%s: %s", o->zmq_replay, zmq_strerror(-rc));
			return rc;
		}
		return o->zmq_cursor ? cursor_open(e, o->name, errbuf, errlen) : 0;
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
	if (e->held_live)
		zmq_msg_close(&e->held);
	if (e->sock) {
		int zero = 0;
		zmq_setsockopt(e->sock, ZMQ_LINGER, &zero, sizeof zero);
		zclose(e->sock);
	}
	if (e->rsock)
		zclose(e->rsock);
	if (e->cur)
		munmap(e->cur, 4096);
	if (e->cfd >= 0)
		close(e->cfd); /* drops the lock */
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
	    !(in->pfd = calloc(n + 1, sizeof *in->pfd)) || !(in->cs = calloc(n, sizeof *in->cs)) ||
	    !(in->codec = codec_new()) || !(in->jout = malloc(STDIO_BUF_MIN))) {
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
		/* after a lap this is where the observer resynced: a receiver
		 * of the sequence frames sees the lost stretch as a gap */
		m->prev = ring_consumer_position(e->c);
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
		m->src = ring_id(e->ring);
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
		int n = record_from_json(in->codec, (const char *)p, len, in->jout, STDIO_BUF_MIN,
					 &why);
		if (n < 0)
			return bad(in, m, p, len, "stdin line %lu: %s", (unsigned long)line, why);
		int t = record_peek(in->jout, (size_t)n, NULL, 0, &why);
		m->type = t > 0 ? (uint32_t)t : MDB_REC_NONE;
		m->data = in->jout;
		m->len = (uint32_t)n;
		m->pos = m->prev = m->src = 0;
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
		while (skip < avail &&
		       !((p[skip] & 0xf0) == 0x80 || p[skip] == 0xde || p[skip] == 0xdf))
			skip++;
		if (n == 0)
			skip = avail; /* at end of input: the rest is a torn record */
		e->start += skip;
		e->offset += skip;
		return bad(
		    in, m, p, skip, "stdin offset %lu: %s (%zu bytes skipped)", (unsigned long)off,
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
	m->pos = m->prev = m->src = 0;
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

/* m from a record frame and its sequence (seq NULL: none). */
static int zmq_msg_fill(mdb_inputs *in, struct ep_in *e, zmq_msg_t *part, const uint64_t *seq,
			struct mdb_msg *m)
{
	const uint8_t *data = zmq_msg_data(part);
	size_t len = zmq_msg_size(part);
	const char *why = "";
	int t = record_peek(data, len, NULL, 0, &why);
	if (t <= 0)
		return bad(in, m, data, len, "%s: %s", e->uri, why);
	m->type = (uint32_t)t;
	m->data = data;
	m->len = (uint32_t)len;
	m->src = seq ? seq[0] : 0;
	m->prev = seq ? seq[1] : 0;
	m->pos = seq ? seq[2] : 0;
	return 1;
}

static int replay_request(struct ep_in *e)
{
	uint8_t req[REPLAY_REQ];
	put64(req, ++e->rp_id);
	put64(req + 8, e->src);
	put64(req + 16, e->expect);
	put64(req + 24, e->held_seq[2]);
	e->rp_sent = true;
	e->rp_deadline = mono_ns() + REPLAY_WAIT_NS;
	/* DONTWAIT: a server out of reach leaves the request queued (or
	 * refused); either way the deadline sends it again */
	return zmq_send(e->rsock, req, sizeof req, ZMQ_DONTWAIT) < 0 && zmq_errno() != EAGAIN
		   ? -zmq_errno()
		   : 0;
}

/* The gap is closed (or given up): deliver the held live record (none
 * when a heartbeat revealed the gap: 0). */
static int replay_finish(mdb_inputs *in, struct ep_in *e, struct mdb_msg *m)
{
	e->rp_active = false;
	if (e->expect < e->held_seq[1])
		notice(in, "%s: %llu bytes of the sender's ring before position %llu not received",
		       e->uri, (unsigned long long)(e->held_seq[1] - e->expect),
		       (unsigned long long)e->held_seq[2]);
	else
		notice(in, "%s: gap closed, %llu records replayed", e->uri,
		       (unsigned long long)e->gap_replayed);
	if (!e->held_live) {
		if (e->expect < e->held_seq[2])
			e->expect = e->held_seq[2];
		return 0;
	}
	if (e->part_live)
		zmq_msg_close(&e->part);
	zmq_msg_init(&e->part);
	zmq_msg_move(&e->part, &e->held);
	zmq_msg_close(&e->held);
	e->held_live = false;
	e->part_live = true;
	e->expect = ring_rec_end(e->held_seq[2], (uint32_t)zmq_msg_size(&e->part));
	return zmq_msg_fill(in, e, &e->part, e->held_seq, m);
}

/* While a gap is replayed: the next replayed record, or the held live one
 * once the replay is complete. Waits for the server (live records queue in
 * ZeroMQ meanwhile, up to the high-water mark; beyond it they are a new gap,
 * replayed next). Returns 1, -EINTR, or -errno. */
static int replay_next(mdb_inputs *in, struct ep_in *e, struct mdb_msg *m)
{
	for (;;) {
		if (!e->rp_sent) {
			int rc = replay_request(e);
			if (rc < 0)
				return rc;
		}
		int64_t left = e->rp_deadline - mono_ns();
		zmq_pollitem_t it[2] = {{e->rsock, 0, ZMQ_POLLIN, 0},
					{NULL, in->stop_fd, ZMQ_POLLIN, 0}};
		int n = left > 0 ? zmq_poll(it, in->stop_fd >= 0 ? 2 : 1, left / 1000000 + 1) : 0;
		if ((n < 0 && zmq_errno() == EINTR) || (n > 0 && it[1].revents) ||
		    (in->stop_word && atomic_load_explicit(in->stop_word, memory_order_seq_cst)))
			return -EINTR;
		if (n < 0)
			return -zmq_errno();
		if (n == 0) {
			if (mono_ns() < e->rp_deadline)
				continue;
			if (++e->rp_tries >= REPLAY_TRIES) {
				notice(in, "%s: no answer from %s: gap given up", e->uri,
				       e->rp_addr);
				e->zs.lost++;
				return replay_finish(in, e, m);
			}
			int rc = replay_connect(e);
			if (rc < 0)
				return rc;
			e->rp_sent = false;
			continue;
		}
		uint8_t hdr[REPLAY_HDR];
		int hl = zmq_recv(e->rsock, hdr, sizeof hdr, 0);
		if (hl != REPLAY_HDR || get64(hdr) != e->rp_id) {
			drain(e->rsock); /* an answer to a request given up */
			continue;
		}
		uint32_t kind, status;
		memcpy(&kind, hdr + 8, 4);
		memcpy(&status, hdr + 12, 4);
		kind = le32toh(kind);
		status = le32toh(status);
		if (kind == 1) {
			uint64_t seq[3];
			if (e->part_live)
				zmq_msg_close(&e->part);
			zmq_msg_init(&e->part);
			e->part_live = true;
			int rc = recv_record(e->rsock, &e->part, seq);
			if (rc < 0)
				return rc;
			if (rc == 0 || seq[0] != e->src || seq[2] < e->expect ||
			    seq[2] >= e->held_seq[2])
				continue;
			e->rp_deadline = mono_ns() + REPLAY_WAIT_NS; /* it is answering */
			e->rp_tries = 0;
			e->expect = ring_rec_end(seq[2], (uint32_t)zmq_msg_size(&e->part));
			e->zs.replayed++;
			e->gap_replayed++;
			return zmq_msg_fill(in, e, &e->part, seq, m);
		}
		uint8_t nb[8] = {0};
		int more = 0;
		size_t ml = sizeof more;
		zmq_getsockopt(e->rsock, ZMQ_RCVMORE, &more, &ml);
		if (more && zmq_recv(e->rsock, nb, sizeof nb, 0) == 8)
			drain(e->rsock);
		uint64_t next = get64(nb);
		switch (status) {
		case REPLAY_MORE:
			if (next > e->expect && next <= e->held_seq[2])
				e->expect = next; /* only padding lay between */
			e->rp_sent = false;
			e->rp_tries = 0;
			continue;
		case REPLAY_OVERWRITTEN:
			notice(
			    in,
			    "%s: positions %llu..%llu were overwritten in the sender's ring before "
			    "they could be replayed: records lost",
			    e->uri, (unsigned long long)e->expect,
			    (unsigned long long)(next < e->held_seq[2] ? next : e->held_seq[2]));
			e->zs.lost++;
			if (next > e->expect && next < e->held_seq[2]) {
				e->expect = next; /* replay what is left */
				e->rp_sent = false;
				continue;
			}
			return replay_finish(in, e, m);
		case REPLAY_DONE:
			if (next > e->expect && next <= e->held_seq[2])
				e->expect = next;
			return replay_finish(in, e, m);
		default:
			notice(in, "%s: replay refused (%s)", e->uri,
			       status == REPLAY_OTHER_RING ? "the sender's ring was recreated"
							   : "not a record boundary");
			e->zs.lost++;
			return replay_finish(in, e, m);
		}
	}
}

/* Sequence check of a live record (len: its size) or of a heartbeat (len
 * 0: the sender has sent everything before seq[2]): 1 deliver, 0 drop
 * (already received; a heartbeat), 2 a gap before it (the replay has
 * started; a record is held until it is closed). */
static int zmq_track(mdb_inputs *in, struct ep_in *e, const uint64_t seq[3], size_t len)
{
	if (seq[0] != e->src || !e->src) {
		if (e->src)
			notice(
			    in,
			    "%s: the sender's ring is a new one: starting from its position %llu",
			    e->uri, (unsigned long long)seq[2]);
		e->src = seq[0];
	} else if (!len && seq[1] > e->expect) {
		e->zs.gaps++;
		notice(in,
		       "%s: gap: positions %llu..%llu of the sender's ring missing (at a "
		       "heartbeat), asking %s",
		       e->uri, (unsigned long long)e->expect, (unsigned long long)seq[2],
		       e->rp_addr);
		memcpy(e->held_seq, seq, sizeof e->held_seq);
		e->rp_active = true;
		e->rp_sent = false;
		e->rp_tries = 0;
		e->gap_replayed = 0;
		return 2;
	} else if (!len) {
		return 0;
	} else if (seq[2] < e->expect) {
		e->zs.dups++;
		return 0;
	} else if (seq[1] > e->expect) {
		e->zs.gaps++;
		notice(in, "%s: gap: positions %llu..%llu of the sender's ring missing, asking %s",
		       e->uri, (unsigned long long)e->expect, (unsigned long long)seq[2],
		       e->rp_addr);
		memcpy(e->held_seq, seq, sizeof e->held_seq);
		zmq_msg_init(&e->held);
		zmq_msg_move(&e->held, &e->part);
		e->held_live = true;
		e->rp_active = true;
		e->rp_sent = false;
		e->rp_tries = 0;
		e->gap_replayed = 0;
		return 2;
	}
	if (!len) {
		e->expect = seq[2];
		return 0;
	}
	e->expect = ring_rec_end(seq[2], (uint32_t)len);
	return 1;
}

static int read_zmq(mdb_inputs *in, struct ep_in *e, struct mdb_msg *m)
{
	if (e->rp_active)
		return replay_next(in, e, m);
	for (;;) {
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
		uint64_t seq[3];
		/* the later frames of a multipart message arrive with the first */
		int has = recv_record(e->sock, &e->part, seq);
		if (has < 0)
			return has;
		if (tl == 0) { /* a heartbeat: topic "", then a sequence frame */
			if (!e->rp_addr || zmq_msg_size(&e->part) != SEQ_FRAME)
				continue;
			const uint8_t *p = zmq_msg_data(&e->part);
			for (int i = 0; i < 3; i++)
				seq[i] = get64(p + 8 * i);
			if (zmq_track(in, e, seq, 0) == 2) {
				int rc = replay_next(in, e, m);
				if (rc != 0)
					return rc;
			}
			continue;
		}
		if (has && e->rp_addr) {
			int k = zmq_track(in, e, seq, zmq_msg_size(&e->part));
			if (k == 0)
				continue;
			if (k == 2)
				return replay_next(in, e, m);
		}
		return zmq_msg_fill(in, e, &e->part, has ? seq : NULL, m);
	}
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
	for (int i = 0; i < in->n; i++) {
		if (in->in[i].c)
			ring_release(in->in[i].c);
		cursor_save(&in->in[i]);
	}
}

void inputs_zstats(const mdb_inputs *in, struct ep_zstats *st)
{
	memset(st, 0, sizeof *st);
	for (int i = 0; i < in->n; i++) {
		const struct ep_zstats *z = &in->in[i].zs;
		st->gaps += z->gaps;
		st->replayed += z->replayed;
		st->dups += z->dups;
		st->lost += z->lost;
	}
}

uint64_t inputs_laps(const mdb_inputs *in)
{
	return in->laps;
}

int inputs_position(const mdb_inputs *in, int i, uint64_t *src, uint64_t *pos)
{
	if (i < 0 || i >= in->n || !in->in[i].c)
		return -EINVAL;
	*src = ring_id(in->in[i].ring);
	*pos = ring_consumer_position(in->in[i].c);
	return 0;
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
		e->ring = ring_open_or_create(uri, rest, true, o, &rc, errbuf, errlen);
		if (!e->ring)
			return rc;
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
	out->seq = o->zmq_seq;
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
			if (out->out[i].kind == EP_RING) {
				ring_flush(out->out[i].ring);
				out->out[i].unpublished = 0;
			}
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

/* After a batched record: publish every OUT_PUBLISH_EVERY records even
 * mid-batch, so a consumer spinning its 20 us sees records before it sleeps
 * (each wake of a sleeper costs ~20 us of the producer's CPU here). */
static inline void batch_published(struct ep_out *e)
{
	if (++e->unpublished >= OUT_PUBLISH_EVERY) {
		ring_flush(e->ring);
		e->unpublished = 0;
	}
}

int outputs_claim(mdb_outputs *out, uint32_t type, uint32_t max, void **dst)
{
	if (out->n != 1 || out->out[0].kind != EP_RING || !out->batch)
		return -ENOTSUP;
	return ring_claim(out->out[0].ring, type, max, dst, out->timeout_ns);
}

void outputs_commit(mdb_outputs *out, uint32_t len)
{
	ring_commit_len_quiet(out->out[0].ring, len);
	batch_published(&out->out[0]);
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
		batch_published(e);
		return 0;
	}
	case EP_STDIO:
		if (out->json) {
			const char *why;
			int n = record_to_json(out->codec, m->data, m->len, out->jbuf, OUT_BUF - 1,
					       &why);
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
		bool seq = out->seq && m->src;
		if (zmq_send(e->sock, topic, (size_t)tl, ZMQ_SNDMORE) < 0 ||
		    zmq_send(e->sock, m->data, m->len, seq ? ZMQ_SNDMORE : 0) < 0)
			return -zmq_errno();
		if (seq) {
			uint8_t f[SEQ_FRAME];
			put64(f, m->src);
			put64(f + 8, m->prev);
			put64(f + 16, m->pos);
			if (zmq_send(e->sock, f, sizeof f, 0) < 0)
				return -zmq_errno();
		}
		return 0;
	}
	}
	return -EINVAL;
}

int outputs_heartbeat(mdb_outputs *out, uint64_t src, uint64_t pos)
{
	uint8_t f[SEQ_FRAME];
	put64(f, src);
	put64(f + 8, pos);
	put64(f + 16, pos);
	int first = 0;
	for (int i = 0; i < out->n && out->seq; i++) {
		struct ep_out *e = &out->out[i];
		if (e->kind != EP_ZMQ)
			continue;
		/* DONTWAIT: a heartbeat that finds the queue full is not needed */
		if ((zmq_send(e->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
		     zmq_send(e->sock, f, sizeof f, ZMQ_DONTWAIT) < 0) &&
		    zmq_errno() != EAGAIN && !first)
			first = -zmq_errno();
	}
	return first;
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

/* ---- replay server ---- */

struct mdb_replay {
	pthread_t th;
	void *sock;	      /* ROUTER */
	int efd;	      /* written to stop the thread */
	mdb_ring *ring;	      /* our own mapping: its own fd, so its own slot locks */
	mdb_ring_consumer *c; /* observer */
	_Atomic uint64_t records, requests;
};

/* Send one reply message to peer id (frames: id, then n parts). Returns 0
 * or -errno (the peer is gone, or not reading: the reply is abandoned). */
static int rs_send(mdb_replay *rs, zmq_msg_t *id, const void *const *part, const size_t *len, int n)
{
	zmq_msg_t copy;
	zmq_msg_init(&copy);
	zmq_msg_copy(&copy, id);
	if (zmq_msg_send(&copy, rs->sock, ZMQ_SNDMORE) < 0) {
		zmq_msg_close(&copy);
		return -zmq_errno();
	}
	for (int i = 0; i < n; i++)
		if (zmq_send(rs->sock, part[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
			return -zmq_errno();
	return 0;
}

static void rs_hdr(uint8_t *h, uint64_t id, uint32_t kind, uint32_t status)
{
	put64(h, id);
	kind = htole32(kind);
	status = htole32(status);
	memcpy(h + 8, &kind, 4);
	memcpy(h + 12, &status, 4);
}

/* Answer one request [from, to): up to REPLAY_CHUNK records, then the end. */
static void rs_serve(mdb_replay *rs, zmq_msg_t *peer, const uint8_t *req)
{
	uint64_t id = get64(req), src = get64(req + 8), from = get64(req + 16),
		 to = get64(req + 24);
	uint8_t hdr[REPLAY_HDR], seq[SEQ_FRAME], nb[8];
	uint32_t status = REPLAY_DONE;
	uint64_t next = from, n = 0, me = ring_id(rs->ring);
	int rc = src != me ? -ESRCH : ring_seek_checked(rs->c, from);
	if (rc == -ESRCH)
		status = REPLAY_OTHER_RING;
	else if (rc == -ERANGE)
		status = REPLAY_OVERWRITTEN, next = ring_oldest(rs->ring);
	else if (rc < 0)
		status = REPLAY_BAD;
	while (rc == 0) {
		struct ring_rec rec;
		uint64_t prev = ring_consumer_position(rs->c);
		int k = ring_next(rs->c, &rec);
		if (k == RING_LAPPED) {
			status = REPLAY_OVERWRITTEN;
			next = ring_oldest(rs->ring);
			break;
		}
		if (k <= 0 || rec.pos >= to) {
			next = prev;
			break;
		}
		if (n == REPLAY_CHUNK) {
			status = REPLAY_MORE;
			next = prev;
			break;
		}
		rs_hdr(hdr, id, 1, 0);
		put64(seq, me);
		put64(seq + 8, prev);
		put64(seq + 16, rec.pos);
		const void *parts[] = {hdr, rec.data, seq};
		size_t lens[] = {sizeof hdr, rec.len, sizeof seq};
		if (rs_send(rs, peer, parts, lens, 3) < 0)
			return;
		n++;
	}
	rs_hdr(hdr, id, 2, status);
	put64(nb, next);
	const void *parts[] = {hdr, nb};
	size_t lens[] = {sizeof hdr, sizeof nb};
	if (rs_send(rs, peer, parts, lens, 2) == 0) {
		atomic_fetch_add_explicit(&rs->records, n, memory_order_relaxed);
		atomic_fetch_add_explicit(&rs->requests, 1, memory_order_relaxed);
	}
}

/* The server thread: one request at a time, sleeping in zmq_poll on the
 * socket and the stop eventfd. */
static void *rs_main(void *arg)
{
	mdb_replay *rs = arg;
	for (;;) {
		zmq_pollitem_t it[2] = {{rs->sock, 0, ZMQ_POLLIN, 0},
					{NULL, rs->efd, ZMQ_POLLIN, 0}};
		if (zmq_poll(it, 2, -1) < 0) {
			if (zmq_errno() == EINTR)
				continue;
			return NULL;
		}
		if (it[1].revents)
			return NULL;
		if (!(it[0].revents & ZMQ_POLLIN))
			continue;
		zmq_msg_t peer;
		zmq_msg_init(&peer);
		uint8_t req[REPLAY_REQ];
		int rl = -1;
		if (zmq_msg_recv(&peer, rs->sock, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&peer))
			rl = zmq_recv(rs->sock, req, sizeof req, 0);
		drain(rs->sock);
		if (rl == REPLAY_REQ)
			rs_serve(rs, &peer, req);
		zmq_msg_close(&peer);
	}
}

mdb_replay *replay_serve(const char *ring_name, const char *addr, const char *name, int *err,
			 char *errbuf, size_t errlen)
{
	mdb_replay *rs = calloc(1, sizeof *rs);
	int rc = -ENOMEM;
	if (!rs) {
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	rs->efd = -1;
	if (!(rs->ring = ring_open(ring_name, &rc))) {
		snprintf(errbuf, errlen, "replay: ring:%s: %s", ring_name, strerror(-rc));
		goto fail;
	}
	if (!(rs->c = ring_consumer_open(rs->ring, name, RING_OBSERVER, RING_FROM_END, 0, &rc))) {
		snprintf(errbuf, errlen, "replay: ring:%s: observer %s: %s", ring_name, name,
			 strerror(-rc));
		goto fail;
	}
	if (!(rs->sock = zsocket(ZMQ_ROUTER)))
		goto zerr;
	/* a peer that went away makes the send fail instead of vanishing; a
	 * peer that does not read blocks a send 1 s, then its reply is dropped */
	int one = 1, zero = 0, ms = 1000;
	zmq_setsockopt(rs->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
	zmq_setsockopt(rs->sock, ZMQ_SNDTIMEO, &ms, sizeof ms);
	zmq_setsockopt(rs->sock, ZMQ_LINGER, &zero, sizeof zero);
	if (zmq_bind(rs->sock, addr) < 0)
		goto zerr;
	rs->efd = eventfd(0, EFD_CLOEXEC);
	if (rs->efd < 0 || (rc = -pthread_create(&rs->th, NULL, rs_main, rs)) < 0) {
		rc = rc < 0 ? rc : -errno;
		snprintf(errbuf, errlen, "replay: %s", strerror(-rc));
		if (rs->efd >= 0)
			close(rs->efd);
		rs->efd = -1;
		goto fail;
	}
	return rs;
zerr:
	rc = -zmq_errno();
	snprintf(errbuf, errlen, "replay: %s: %s", addr, zmq_strerror(-rc));
fail:
	*err = rc;
	if (rs && rs->sock)
		zclose(rs->sock);
	if (rs) {
		ring_consumer_close(&rs->c);
		ring_close(&rs->ring);
	}
	free(rs);
	return NULL;
}

void replay_stats(const mdb_replay *rs, uint64_t *records, uint64_t *requests)
{
	*records = atomic_load_explicit(&rs->records, memory_order_relaxed);
	*requests = atomic_load_explicit(&rs->requests, memory_order_relaxed);
}

void replay_close(mdb_replay **rsp)
{
	if (!rsp || !*rsp)
		return;
	mdb_replay *rs = *rsp;
	uint64_t one = 1;
	(void)!write(rs->efd, &one, sizeof one);
	pthread_join(rs->th, NULL);
	close(rs->efd);
	zclose(rs->sock);
	ring_consumer_close(&rs->c);
	ring_close(&rs->ring);
	free(rs);
	*rsp = NULL;
}

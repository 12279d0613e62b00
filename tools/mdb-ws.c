/* mdb-ws - the WebSocket gateway: pushes each change of a symbol's latest
 * bar and features once, as a delta, to every subscriber.
 *
 * One io_uring loop does accept, receive and send for every connection,
 * the stop signal and a housekeeping timer, and going idle it sleeps on the
 * input rings' futexes too (io_uring's FUTEX_WAIT, Linux 6.7), so a record
 * wakes it directly. On older kernels (or with MDB_WS_WATCHERS set) a
 * watcher thread per input ring turns "the ring moved" into an eventfd
 * completion instead. Either way an idle gateway sleeps. Input rings are
 * read as an observer: the gateway never holds the pipeline back. HTTP
 * heads and the upgrade are parsed by common/http.c; client frames are
 * parsed (unmasked, checked, reassembled, UTF-8 validated) by wslay, which
 * only sees our buffers and does no I/O.
 *
 * A stream is (symbol, interval). Its value is that of the last-value cache
 * (mdb-feature --lvc) when there is one, else the bar and feat records
 * folded together. Each change becomes one delta frame per format, encoded
 * once; every subscriber's queue holds a reference to the same bytes. A
 * queue past its byte or age bound drops its deltas and gets a resync
 * notice and fresh snapshots; a client that keeps falling behind is closed
 * with 1008. The protocol is documented in mdb-ws(1).
 */
#include "cli.h"
#include "clock.h"
#include "counters.h"
#include "endpoint.h"
#include "http.h"
#include "log.h"
#include "lvc.h"
#include "notify.h"
#include "record.h"
#include "ring.h"
#include "shm.h"
#include "store.h"
#include "wsframe.h"
#include "wsmsg.h"
#include "wsproto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <liburing.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define BIND_RETRY_NS	 (5 * NS_PER_SEC) /* how long a port in use is waited for */
#define DEFAULT_LISTEN	 "127.0.0.1:8080"
#define DEFAULT_INPUT	 "ring:feat"
#define DEFAULT_LVC	 "mdb"
#define DEFAULT_IV	 60
#define RBUF_SIZE	 8192	   /* receive buffer; also the largest request head */
#define IOV_MAX_SEND	 64	   /* queue entries per sendmsg */
#define QCAP_MIN	 16	   /* queue entries, grown by doubling ... */
#define QCAP_MAX	 4096	   /* ... up to this */
#define EXTRA_SLOTS	 64	   /* connections past --max-conns that get a 503 */
#define HTTP_TIMEOUT_NS	 (10 * NS) /* a request head must arrive within this */
#define CLOSE_GRACE_NS	 (2 * NS)  /* a closing client gets this long to read the close */
#define RESYNC_WINDOW_NS (30 * NS)
#define STALL_MIN_NS	 (5 * NS) /* a socket that takes nothing this long (at least) is closed */
#define DRAIN_BATCH	 4096	  /* records read between two looks at the sockets */
#define MAX_STREAMS	 65536
#define NBUCKETS	 4096
#define FRAME_SMALL	 1100	/* frames up to this size come from the pool */
#define FRAME_CHUNK	 1024	/* the pool grows by this many frames ... */
#define FRAME_MAX	 131072 /* ... up to this many (about 150 MB) */
#define FRAME_RESERVE	 4096	/* free frames before a batch of records ... */
#define FRAME_LOW	 1024	/* ... which ends early below this many */
#define NS		 1000000000LL

enum {
	OPT_LISTEN = CLI_OPT_FIRST_TOOL,
	OPT_LVC,
	OPT_NO_LVC,
	OPT_TOKEN_FILE,
	OPT_ALLOW_ORIGIN,
	OPT_PING,
	OPT_PONG_MISSES,
	OPT_MAX_CONNS,
	OPT_MAX_MSG,
	OPT_MAX_SUBS,
	OPT_MAX_RATE,
	OPT_QUEUE_BYTES,
	OPT_QUEUE_AGE,
	OPT_SLOW_RESYNCS,
	OPT_STALE,
	OPT_SNDBUF,
	OPT_DB,
	OPT_MAX_ROWS,
};

/* io_uring user data: what completed, for which connection slot and generation. */
enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_TIMER, OP_STOP, OP_RINGS, OP_FUTEX };

enum qkind {
	Q_DATA, /* a delta: dropped by conflation, bounded */
	Q_SNAP, /* a snapshot: dropped by conflation (a new one follows) */
	Q_NOTE, /* a slow-resync notice: superseded by the next one */
	Q_CTRL, /* acks, notices, wslay's control frames, HTTP: never dropped */
};

struct qent {
	struct wsframe *f;
	int64_t t_ns; /* when queued (CLOCK_MONOTONIC) */
	uint8_t kind;
};

enum cstate { C_FREE = 0, C_HTTP, C_WS, C_CLOSING };

struct stream;

struct client {
	enum cstate st;
	int fd;
	uint32_t gen; /* bumped when the slot is reused: stale completions are ignored */
	int ops;      /* io_uring operations in flight */
	bool recv_busy, send_busy;
	bool shut;	       /* shutdown() done: waiting for ops to finish */
	bool dirty;	       /* in the flush list */
	bool close_after_send; /* HTTP: shut down once the queue is empty */
	bool msgpack;	       /* data frames are MessagePack (binary) */
	bool ping_out;	       /* a ping has not been answered yet */
	int missed;	       /* pings unanswered in a row */
	int64_t born_ns, last_ping_ns, progress_ns, close_deadline;
	char *rbuf; /* RBUF_SIZE bytes */
	size_t rlen, roff;
	struct qent *q; /* circular, qcap a power of two */
	unsigned qhead, qn, qcap, inflight_n;
	uint32_t head_off; /* bytes of the head entry already sent */
	size_t qbytes;
	struct iovec iov[IOV_MAX_SEND];
	struct msghdr msg;
	wsproto_conn *ws; /* the WebSocket, once upgraded */
	struct stream **subs;
	int nsubs, subcap;
	int64_t rs_win_ns;   /* start of the resync-counting window */
	int rs_n;	     /* slow resyncs in that window */
	unsigned rs_dropped; /* frames announced by the latest resync notice */
	double tokens;	     /* control messages allowed now */
	int64_t tokens_ns;
};

struct stream {
	char s[LVC_SYM_MAX];
	int32_t iv;
	uint64_t seq;	    /* deltas made so far */
	struct lvc_value v; /* the value last sent */
	int lvc_slot;	    /* -1: not looked up */
	struct client **subs;
	int nsubs, subcap, nmp;	 /* nmp: subscribers that want MessagePack */
	struct wsframe *snap[2]; /* cached snapshot frames: JSON, MessagePack */
	uint64_t snap_seq[2];
	struct stream *next; /* hash chain */
	struct stream *all;  /* list of every stream */
};

/* Without io_uring's futex wait (kernels before 6.7, or MDB_WS_WATCHERS):
 * a watcher thread per input ring turns "the ring moved" into an eventfd
 * completion. It sleeps on the ring past a position the loop will read
 * anyway; when the ring moves it signals, and then sleeps again past the
 * position it saw, so a steady trickle costs one wake-up of it per record
 * and none of the loop's syscalls. It signals again only once the loop has
 * been idle since its last signal (seen == signalled); otherwise the loop is
 * busy reading, and the watcher parks until the loop arms it on going idle:
 * a busy loop gets no wake-ups and makes the producer wake no one. */
struct watcher {
	mdb_ring_consumer *c;
	mdb_ring *r; /* the same ring, for its write position */
	pthread_t th;
	_Atomic uint32_t ctl; /* bumped (and woken) to arm or to stop */
	_Atomic uint64_t armed_pos;
	_Atomic uint64_t signalled; /* eventfd signals sent (the watcher) */
	_Atomic uint64_t seen;	    /* signalled when the loop last went idle */
	_Atomic bool parked;	    /* waiting on ctl for the loop to arm it */
	_Atomic bool stop;
};

struct opts {
	const char *listen;
	const char *lvc_name; /* NULL: --no-lvc */
	char *token;	      /* NULL: no token required */
	const char *origins[16];
	int norigins;
	int64_t ping_ns;
	int pong_misses;
	int max_conns;
	unsigned long long max_msg;
	int max_subs;
	double max_rate;
	unsigned long long queue_bytes;
	int64_t queue_age_ns;
	int slow_resyncs;
	int64_t stale_ns;
	int sndbuf;	     /* SO_SNDBUF of client sockets; 0: the kernel's autotuning */
	const char *db_path; /* mdb-write's database for /api/bars; NULL: none */
	int max_rows;	     /* rows per /api/bars answer at most */
};

static struct {
	struct opts o;
	struct io_uring ring;
	int lfd, stop_fd, ring_efd, timer_fd;
	char bound[NI_MAXHOST + NI_MAXSERV + 4]; /* the address listened on */
	struct client *cl;
	int nslots, *freeidx, nfree;
	int nconn, nws;
	int *dirty, ndirty;
	bool accept_armed, timer_armed, stopping;
	bool accept_paused; /* out of descriptors: accept again at the next tick or close */
	bool accept_warned; /* ... and that was logged */
	uint64_t efd_val, timer_val;
	mdb_inputs *in;
	int nin;
	const char **in_names;
	mdb_ring **rings;    /* the input rings, mapped again for their positions */
	int64_t *in_last_ns; /* wall time of the newest record per input */
	struct watcher *w;   /* no futex wait in io_uring: a thread per ring */
	bool futex;	     /* io_uring sleeps on the rings' futexes itself */
	bool *fwait;	     /* ... and has a wait in flight for input i */
	mdb_lvc *lvc;
	mdb_store *db; /* opened read-only on the first /api/bars */
	mdb_codec *codec;
	struct stream *buckets[NBUCKETS], *streams;
	int nstreams;
	wsframe_pool *pool;
	int64_t now, started_ns;
	uint8_t mp[WSMSG_MAX];
	char js[WSMSG_MAX * 2];
	struct mdb_record rec;
	mdb_counters *cnt;
	struct {
		mdb_counter *conns, *accepted, *refused, *http, *http_err, *upgrades, *frames,
		    *bytes, *deltas, *snaps, *resync_slow, *resync_req, *dropped, *closed_slow,
		    *closed_ping, *ctl, *ctl_err, *limited, *in, *rejects, *laps, *last, *streams,
		    *subs, *pool, *pool_dry;
	} k;
} G;

static _Noreturn void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mdb-ws [-i ring:NAME]... [--name NAME] [-l ADDR:PORT] [--lvc NAME | --no-lvc]\n"
	    "              [--token-file FILE] [--allow-origin ORIGIN]... [--ping DURATION]\n"
	    "              [--pong-misses N] [--max-conns N] [--max-msg SIZE] [--max-subs N]\n"
	    "              [--max-rate N] [--queue-bytes SIZE] [--queue-age DURATION]\n"
	    "              [--slow-resyncs N] [--sndbuf SIZE] [--stale DURATION]\n"
	    "              [--db DATABASE] [--max-rows N]\n"
	    "Serve the latest bars and features over WebSocket and HTTP.\n"
	    "  -i, --input ring:NAME   read bar and feat records from ring NAME, as an\n"
	    "                          observer (repeatable; default ring:feat)\n"
	    "      --name NAME         consumer name in input rings (default mdb-ws)\n"
	    "  -l, --listen ADDR:PORT  where to listen (default " DEFAULT_LISTEN "; a bare PORT\n"
	    "                          is on 127.0.0.1; port 0: any free port)\n"
	    "      --lvc NAME          the last-value cache to read (default " DEFAULT_LVC ")\n"
	    "      --no-lvc            fold the records instead of reading a cache\n"
	    "      --token-file FILE   require the token in FILE on every request\n"
	    "      --allow-origin ORIGIN  accept browsers from ORIGIN only (repeatable)\n"
	    "      --ping DURATION     ping clients this often (default 20s)\n"
	    "      --pong-misses N     close after N unanswered pings (default 2)\n"
	    "      --max-conns N       connections at most (default 10000)\n"
	    "      --max-msg SIZE      largest client message (default 4k)\n"
	    "      --max-subs N        subscriptions per connection (default 256)\n"
	    "      --max-rate N        control messages per second per connection (default 20)\n"
	    "      --queue-bytes SIZE  a client's send queue bound (default 256k)\n"
	    "      --queue-age DURATION  ... and the oldest frame's age bound (default 2s)\n"
	    "      --slow-resyncs N    close a client after N slow resyncs in 30 s (default 3)\n"
	    "      --sndbuf SIZE       kernel send buffer per client (default: autotuned)\n"
	    "      --stale DURATION    /api/health is 503 when an input is quieter (default 5m)\n"
	    "      --db DATABASE       serve /api/bars from mdb-write's DATABASE (read-only)\n"
	    "      --max-rows N        rows per /api/bars answer at most (default 10000)\n"
	    "  -h, --help              show this help\n"
	    "  -V, --version           show the version\n");
	exit(out == stdout ? 0 : 2);
}

/* ---- frames ---- */

/* A frame for len bytes: a pool frame (NULL when the pool is dry at its
 * bound: the caller conflates), or for a large HTTP body a malloc'd one. */
static struct wsframe *frame_alloc(size_t len)
{
	struct wsframe *f = wsframe_get(G.pool, len);
	if (!f)
		counter_add(G.k.pool_dry, 1);
	return f;
}

/* Let go of f; the last reference recycles it. */
static void frame_put(struct wsframe *f)
{
	wsframe_put(G.pool, f);
}

/* Grow the pool, outside the per-record path, so that a batch of records
 * never finds it empty (unless it is at its bound). */
static void frames_reserve(void)
{
	if (wsframe_pool_avail(G.pool) < FRAME_RESERVE)
		wsframe_pool_reserve(G.pool, FRAME_RESERVE);
	counter_set(G.k.pool, wsframe_pool_total(G.pool));
}

/* A WebSocket frame of opcode around payload[0..len). */
static struct wsframe *frame_ws(unsigned opcode, const void *payload, size_t len)
{
	uint8_t h[WSMSG_FRAME_HEADER_MAX];
	size_t hn = wsmsg_frame_header(h, opcode, len);
	struct wsframe *f = frame_alloc(hn + len);
	if (f) {
		memcpy(f->data, h, hn);
		memcpy(f->data + hn, payload, len);
	}
	return f;
}

static struct wsframe *frame_raw(const void *p, size_t len)
{
	struct wsframe *f = frame_alloc(len);
	if (f)
		memcpy(f->data, p, len);
	return f;
}

/* ---- io_uring ---- */

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&G.ring);
	if (!sqe) {
		io_uring_submit(&G.ring);
		sqe = io_uring_get_sqe(&G.ring);
	}
	if (!sqe)
		die(1, "io_uring: no submission entry");
	return sqe;
}

static uint64_t tag(enum op op, int idx, uint32_t gen)
{
	return (uint64_t)op << 56 | (uint64_t)(gen & 0xffffffu) << 32 | (uint32_t)idx;
}

static void arm_accept(void)
{
	if (G.accept_armed || G.accept_paused || G.stopping)
		return;
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_accept(sqe, G.lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, tag(OP_ACCEPT, 0, 0));
	G.accept_armed = true;
}

static void arm_read(int fd, uint64_t *buf, enum op op)
{
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_read(sqe, fd, buf, sizeof *buf, 0);
	io_uring_sqe_set_data64(sqe, tag(op, 0, 0));
}

static int cidx(const struct client *c)
{
	return (int)(c - G.cl);
}

static void arm_recv(struct client *c)
{
	if (c->recv_busy || c->shut)
		return;
	/* a client whose queue is past its bound is not read until it drains
	 * (on_send arms again): what it sends cannot grow what is queued for
	 * it (pongs, acks and errors are never dropped); TCP holds it back.
	 * One receive of the smallest frames (6-byte pings, each answered in
	 * two entries) adds under 3/4 of QCAP_MAX entries. */
	if (c->st == C_WS && (c->qbytes > G.o.queue_bytes || c->qn > QCAP_MAX / 4))
		return;
	if (c->roff == c->rlen)
		c->roff = c->rlen = 0;
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_recv(sqe, c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, 0);
	io_uring_sqe_set_data64(sqe, tag(OP_RECV, cidx(c), c->gen));
	c->recv_busy = true;
	c->ops++;
}

static void mark_dirty(struct client *c)
{
	if (!c->dirty) {
		c->dirty = true;
		G.dirty[G.ndirty++] = cidx(c);
	}
}

static void submit_send(struct client *c)
{
	unsigned n = c->qn < IOV_MAX_SEND ? c->qn : IOV_MAX_SEND;
	for (unsigned i = 0; i < n; i++) {
		struct qent *e = &c->q[(c->qhead + i) & (c->qcap - 1)];
		uint32_t off = i ? 0 : c->head_off;
		c->iov[i] = (struct iovec){e->f->data + off, e->f->len - off};
	}
	struct io_uring_sqe *sqe = sqe_get();
	if (n == 1) { /* the usual case at a steady rate: no msghdr to import */
		io_uring_prep_send(sqe, c->fd, c->iov[0].iov_base, c->iov[0].iov_len, MSG_NOSIGNAL);
	} else {
		c->msg = (struct msghdr){.msg_iov = c->iov, .msg_iovlen = n};
		io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
	}
	io_uring_sqe_set_data64(sqe, tag(OP_SEND, cidx(c), c->gen));
	c->inflight_n = n;
	c->send_busy = true;
	c->ops++;
}

/* Start a send on every client that has queued something since the last look. */
static void flush_dirty(void)
{
	for (int i = 0; i < G.ndirty; i++) {
		struct client *c = &G.cl[G.dirty[i]];
		c->dirty = false;
		if (c->st != C_FREE && !c->shut && !c->send_busy && c->qn)
			submit_send(c);
	}
	G.ndirty = 0;
}

/* ---- client queues ---- */

static void shut(struct client *c)
{
	if (c->shut || c->st == C_FREE)
		return;
	shutdown(c->fd, SHUT_RDWR);
	c->shut = true;
}

/* Append f (taking a reference) to c's queue. Returns 0 or -ENOMEM (the
 * queue is at QCAP_MAX entries or memory ran out). */
static int q_push(struct client *c, struct wsframe *f, enum qkind kind)
{
	if (c->qn == c->qcap) {
		unsigned ncap = c->qcap ? c->qcap * 2 : QCAP_MIN;
		if (ncap > QCAP_MAX)
			return -ENOMEM;
		struct qent *nq = malloc(ncap * sizeof *nq);
		if (!nq)
			return -ENOMEM;
		for (unsigned i = 0; i < c->qn; i++)
			nq[i] = c->q[(c->qhead + i) & (c->qcap - 1)];
		free(c->q);
		c->q = nq;
		c->qcap = ncap;
		c->qhead = 0;
	}
	f->refs++;
	c->q[(c->qhead + c->qn++) & (c->qcap - 1)] = (struct qent){f, G.now, (uint8_t)kind};
	c->qbytes += f->len;
	mark_dirty(c);
	return 0;
}

/* Drop the queued entries that are not being sent, keeping Q_CTRL ones
 * unless all is true. Returns how many data frames were dropped. */
static unsigned q_drop(struct client *c, bool all, bool *note_dropped)
{
	unsigned keep = c->send_busy ? c->inflight_n : 0, w = keep, dropped = 0;
	*note_dropped = false;
	for (unsigned i = keep; i < c->qn; i++) {
		struct qent e = c->q[(c->qhead + i) & (c->qcap - 1)];
		if (e.kind == Q_CTRL && !all) {
			c->q[(c->qhead + w++) & (c->qcap - 1)] = e;
			continue;
		}
		c->qbytes -= e.f->len;
		frame_put(e.f);
		dropped += e.kind != Q_NOTE;
		*note_dropped |= e.kind == Q_NOTE;
	}
	c->qn = w;
	return dropped;
}

/* Queue a private control frame: a JSON text message. */
static void send_text(struct client *c, const char *s, size_t len, int kind)
{
	struct wsframe *f = frame_ws(WSLAY_TEXT_FRAME, s, len);
	if (f) {
		q_push(c, f, kind);
		frame_put(f);
	}
}

/* Queue a close frame through wslay and give the client CLOSE_GRACE_NS to
 * read it. */
static void ws_close(struct client *c, uint16_t code, const char *reason)
{
	if (c->st != C_WS)
		return;
	wsproto_conn_close(c->ws, code, reason);
	c->st = C_CLOSING;
	c->close_deadline = G.now + CLOSE_GRACE_NS;
}

static void close_slow(struct client *c)
{
	counter_add(G.k.closed_slow, 1);
	bool note;
	counter_add(G.k.dropped, q_drop(c, true, &note));
	logmsg(LOG_INFO, "client %d: closed as a slow consumer", cidx(c));
	ws_close(c, WSLAY_CODE_POLICY_VIOLATION, "slow consumer");
}

static struct wsframe *snapshot_frame(struct stream *st, int fmt);

/* c fell behind: drop its queued data, then a resync notice and a fresh
 * snapshot of every stream it follows; closed when it keeps happening. */
static void conflate(struct client *c)
{
	counter_add(G.k.resync_slow, 1);
	if (G.now - c->rs_win_ns > RESYNC_WINDOW_NS) {
		c->rs_win_ns = G.now;
		c->rs_n = 0;
	}
	if (++c->rs_n > G.o.slow_resyncs) {
		close_slow(c);
		return;
	}
	/* an unsent notice goes with the data it announced: the new one
	 * carries its count, so notices never pile up in a stalled queue */
	bool carried;
	unsigned n = q_drop(c, false, &carried);
	counter_add(G.k.dropped, n);
	c->rs_dropped = carried ? c->rs_dropped + n : n;
	char note[96];
	int len =
	    snprintf(note, sizeof note, "{\"type\":\"resync\",\"reason\":\"slow\",\"dropped\":%u}",
		     c->rs_dropped);
	send_text(c, note, (size_t)len, Q_NOTE);
	for (int i = 0; i < c->nsubs; i++) {
		struct wsframe *f = snapshot_frame(c->subs[i], c->msgpack);
		if (f && q_push(c, f, Q_SNAP) == 0)
			counter_add(G.k.snaps, 1);
	}
	if (c->qbytes > 2 * G.o.queue_bytes)
		close_slow(c);
}

/* Queue a delta for c, or conflate when c is past its bounds. */
static void push_delta(struct client *c, struct wsframe *f)
{
	if (c->st != C_WS)
		return;
	unsigned first = c->send_busy ? c->inflight_n : 0; /* oldest entry not being sent */
	bool old = first < c->qn &&
		   G.now - c->q[(c->qhead + first) & (c->qcap - 1)].t_ns > G.o.queue_age_ns;
	if (old || c->qbytes + f->len > G.o.queue_bytes || c->qn == QCAP_MAX ||
	    q_push(c, f, Q_DATA) < 0)
		conflate(c);
}

/* ---- streams ---- */

static unsigned hash(const char *s, int32_t iv)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	h = (h ^ (uint32_t)iv) * 16777619u;
	return h & (NBUCKETS - 1);
}

static struct stream *stream_find(const char *s, int32_t iv)
{
	for (struct stream *st = G.buckets[hash(s, iv)]; st; st = st->next)
		if (st->iv == iv && strcmp(st->s, s) == 0)
			return st;
	return NULL;
}

/* Refresh st from the last-value cache, if there is one and it has st. */
static bool lvc_load(struct stream *st, struct lvc_value *out)
{
	if (!G.lvc)
		return false;
	if (st->lvc_slot < 0)
		st->lvc_slot = lvc_find(G.lvc, st->s, st->iv);
	struct lvc_item it;
	if (st->lvc_slot < 0 || lvc_read(G.lvc, st->lvc_slot, &it) < 0) {
		st->lvc_slot = -1; /* not there yet: look again next time */
		return false;
	}
	*out = it.v;
	out->updated_ns = 0; /* not a field: keep it out of the comparison */
	return true;
}

static struct stream *stream_get(const char *s, int32_t iv)
{
	struct stream *st = stream_find(s, iv);
	if (st || G.nstreams >= MAX_STREAMS)
		return st;
	if (!(st = calloc(1, sizeof *st)))
		return NULL;
	snprintf(st->s, sizeof st->s, "%s", s);
	st->iv = iv;
	st->lvc_slot = -1;
	for (int i = 0; i < LVC_NFEAT; i++)
		st->v.feat[i] = NAN;
	st->v.o = st->v.h = st->v.l = st->v.c = st->v.v = st->v.bv = st->v.av = NAN;
	lvc_load(st, &st->v);
	unsigned b = hash(s, iv);
	st->next = G.buckets[b];
	G.buckets[b] = st;
	st->all = G.streams;
	G.streams = st;
	counter_set(G.k.streams, (uint64_t)++G.nstreams);
	return st;
}

/* Encode msg[0..n) (MessagePack) as a frame in format fmt. */
static struct wsframe *encode_frame(int fmt, int n)
{
	if (n < 0)
		return NULL;
	if (fmt)
		return frame_ws(WSLAY_BINARY_FRAME, G.mp, (size_t)n);
	const char *why;
	int jn = record_to_json(G.codec, G.mp, (size_t)n, G.js, sizeof G.js, &why);
	return jn < 0 ? NULL : frame_ws(WSLAY_TEXT_FRAME, G.js, (size_t)jn);
}

/* The snapshot of st in format fmt, made once per seq. Borrowed reference. */
static struct wsframe *snapshot_frame(struct stream *st, int fmt)
{
	if (st->snap[fmt] && st->snap_seq[fmt] == st->seq)
		return st->snap[fmt];
	frame_put(st->snap[fmt]);
	st->snap[fmt] =
	    encode_frame(fmt, wsmsg_snapshot(G.mp, sizeof G.mp, st->s, st->iv, st->seq, &st->v));
	st->snap_seq[fmt] = st->seq;
	return st->snap[fmt];
}

/* st's value becomes *nv: when fields changed, one delta per format goes to
 * every subscriber. */
static void stream_update(struct stream *st, const struct lvc_value *nv)
{
	uint32_t mask = wsmsg_diff(&st->v, nv);
	if (!mask)
		return;
	st->v = *nv;
	uint64_t prev = st->seq++;
	if (!st->nsubs)
		return;
	struct wsframe *f[2] = {NULL, NULL};
	for (int fmt = 0; fmt < 2; fmt++) {
		if ((fmt ? st->nmp : st->nsubs - st->nmp) == 0)
			continue;
		f[fmt] = encode_frame(fmt, wsmsg_delta(G.mp, sizeof G.mp, st->s, st->iv, st->seq,
						       prev, &st->v, mask));
		counter_add(G.k.deltas, 1);
	}
	for (int i = 0; i < st->nsubs; i++) {
		struct client *c = st->subs[i];
		if (f[c->msgpack])
			push_delta(c, f[c->msgpack]);
		else if (c->st == C_WS)
			conflate(c); /* the pool is dry at its bound: a resync, not a gap */
	}
	frame_put(f[0]);
	frame_put(f[1]);
}

static void on_record(const struct mdb_msg *m)
{
	if (m->type != MDB_REC_BAR && m->type != MDB_REC_FEAT)
		return;
	const char *why;
	if (record_decode(G.codec, m->data, m->len, &G.rec, &why) < 0) {
		counter_add(G.k.rejects, 1);
		logmsg(LOG_WARNING, "input %s: %s", G.in_names[m->input], why);
		return;
	}
	int32_t iv = G.rec.t == MDB_REC_BAR ? G.rec.bar.iv : G.rec.feat.iv;
	struct stream *st = stream_get(G.rec.s, iv);
	if (!st)
		return;
	struct lvc_value nv = st->v;
	if (G.lvc) {
		/* the cache holds bar and features together and is written
		 * before the feat record: the bar alone is not news, and a
		 * stream nobody follows is refreshed when someone subscribes */
		if (G.rec.t == MDB_REC_BAR || !st->nsubs)
			return;
		if (!lvc_load(st, &nv))
			wsmsg_apply(&nv, &G.rec); /* not in this cache: the record itself */
	} else {
		wsmsg_apply(&nv, &G.rec);
	}
	stream_update(st, &nv);
}

/* ---- input rings ---- */

/* Sleeping past position p is safe when the loop reads every record up to
 * p without another signal: p is what the loop had read when it armed us,
 * or the write position seen before a signal (the loop drains the ring
 * after each signal, before it goes idle). */
static void *watch(void *arg)
{
	struct watcher *w = arg;
	uint32_t cv = 0;    /* ctl as last read */
	uint64_t p = 0;	    /* the position slept past */
	bool armed = false; /* p is valid: sleep on the ring, not on ctl */
	while (!atomic_load_explicit(&w->stop, memory_order_acquire)) {
		if (!armed) {
			/* pairs with the release increment in arm_watchers() */
			uint32_t c = atomic_load_explicit(&w->ctl, memory_order_acquire);
			if (c == cv) {
				shm_futex_wait(&w->ctl, c, -1);
				continue;
			}
			cv = c;
			p = atomic_load_explicit(&w->armed_pos, memory_order_relaxed);
			armed = true;
		}
		int rc = ring_sleep_moved(w->c, p, &w->ctl, cv, -1);
		if (rc == 2) { /* armed again (a signal crossed our parking) or stopping */
			armed = false;
			continue;
		}
		/* only this thread stores signalled */
		uint64_t k = atomic_load_explicit(&w->signalled, memory_order_relaxed);
		if (rc != 1) {
			if (rc != -EINTR) /* cannot happen; the loop re-arms when idle */
				goto park;
			continue;
		}
		/* the ring moved: signal, unless the loop has not been idle since
		 * the last signal (it is reading, and arms us when done) */
		if (atomic_load_explicit(&w->seen, memory_order_seq_cst) != k) {
		park:
			/* seq_cst store, then load of seen; pairs with the seq_cst
			 * store of seen, then exchange of parked in arm_watchers():
			 * either we see the loop went idle, or it sees us parked */
			atomic_store_explicit(&w->parked, true, memory_order_seq_cst);
			armed = false;
			if (atomic_load_explicit(&w->seen, memory_order_seq_cst) != k)
				continue;
			atomic_store_explicit(&w->parked, false, memory_order_relaxed);
		}
		p = ring_position(w->r); /* read before the signal: the loop reads past it */
		atomic_store_explicit(&w->signalled, k + 1, memory_order_seq_cst);
		armed = true;
		uint64_t one = 1;
		(void)!write(G.ring_efd, &one, sizeof one);
	}
	return NULL;
}

/* Going idle, every record read: tell the watchers (a parked one is armed
 * with the position read up to; one asleep on its ring needs nothing). */
static void arm_watchers(void)
{
	for (int i = 0; i < G.nin; i++) {
		struct watcher *w = &G.w[i];
		/* see the parking in watch() */
		atomic_store_explicit(&w->seen,
				      atomic_load_explicit(&w->signalled, memory_order_relaxed),
				      memory_order_seq_cst);
		if (!atomic_exchange_explicit(&w->parked, false, memory_order_seq_cst))
			continue;
		atomic_store_explicit(&w->armed_pos, ring_consumer_position(w->c),
				      memory_order_relaxed);
		/* release: the watcher's acquire load of ctl sees armed_pos */
		atomic_fetch_add_explicit(&w->ctl, 1, memory_order_release);
		shm_futex_wake(&w->ctl);
	}
}

/* IORING_OP_FUTEX_WAIT (Linux 6.7); Debian 12's headers predate it. */
#define OPC_FUTEX_WAIT	51
#define FUTEX2_U32	0x02 /* FUTEX2_SIZE_U32; not FUTEX2_PRIVATE: the word is shared */
#define FUTEX_MATCH_ANY 0xffffffffu

/* Going idle, every record read, io_uring sleeping on the rings itself:
 * a futex wait on each ring that has none in flight. Returns true when a
 * ring moved meanwhile (read on instead of sleeping). */
static bool arm_futexes(void)
{
	bool moved = false;
	for (int i = 0; i < G.nin; i++) {
		if (G.fwait[i])
			continue; /* still asleep on it: the ring has not moved */
		mdb_ring_consumer *c = inputs_ring(G.in, i);
		_Atomic uint32_t *ua;
		uint32_t val;
		if (ring_sleep_prepare(c, ring_consumer_position(c), &ua, &val)) {
			moved = true;
			continue;
		}
		struct io_uring_sqe *sqe = sqe_get();
		io_uring_prep_rw(OPC_FUTEX_WAIT, sqe, FUTEX2_U32, (const void *)ua, 0, val);
		sqe->addr3 = FUTEX_MATCH_ANY;
		io_uring_sqe_set_data64(sqe, tag(OP_FUTEX, i, 0));
		G.fwait[i] = true;
	}
	return moved;
}

/* Read what the rings hold, up to DRAIN_BATCH records. Returns true when
 * more may be waiting. */
static bool drain_inputs(void)
{
	struct mdb_msg m;
	for (int n = 0; n < DRAIN_BATCH; n++) {
		if (wsframe_pool_avail(G.pool) < FRAME_LOW &&
		    wsframe_pool_total(G.pool) + FRAME_CHUNK <= FRAME_MAX)
			return true; /* the loop tops the pool up first (at the
				      * bound: on, and a dry pool conflates) */
		int rc = inputs_read(G.in, &m, 0);
		if (rc == 0)
			return false;
		if (rc == -EBADMSG) {
			counter_add(G.k.rejects, 1);
			logmsg(LOG_WARNING, "rejected: %s", inputs_error(G.in));
			continue;
		}
		if (rc < 0)
			return false;
		counter_add(G.k.in, 1);
		G.in_last_ns[m.input] = wall_ns();
		counter_set(G.k.last, (uint64_t)G.in_last_ns[m.input]);
		on_record(&m);
	}
	counter_set(G.k.laps, inputs_laps(G.in));
	return true;
}

/* ---- subscriptions ---- */

static int sub_index(const struct client *c, const struct stream *st)
{
	for (int i = 0; i < c->nsubs; i++)
		if (c->subs[i] == st)
			return i;
	return -1;
}

static int grow(void *pp, int *cap, size_t elem)
{
	void **p = pp;
	int ncap = *cap ? *cap * 2 : 4;
	void *np = realloc(*p, (size_t)ncap * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

/* Subscribe c to st and queue its snapshot. Returns 0, 1 when it was
 * subscribed already, or -ENOMEM. */
static int subscribe(struct client *c, struct stream *st)
{
	if (sub_index(c, st) >= 0)
		return 1;
	if ((c->nsubs == c->subcap && grow(&c->subs, &c->subcap, sizeof *c->subs) < 0) ||
	    (st->nsubs == st->subcap && grow(&st->subs, &st->subcap, sizeof *st->subs) < 0))
		return -ENOMEM;
	if (!st->nsubs && G.lvc) {
		/* nobody followed it: the cache may be ahead of what we hold */
		struct lvc_value nv;
		if (lvc_load(st, &nv))
			stream_update(st, &nv);
	}
	c->subs[c->nsubs++] = st;
	st->subs[st->nsubs++] = c;
	st->nmp += c->msgpack;
	counter_add(G.k.subs, 1);
	return 0;
}

static void unsubscribe(struct client *c, struct stream *st)
{
	int i = sub_index(c, st);
	if (i < 0)
		return;
	c->subs[i] = c->subs[--c->nsubs];
	for (int k = 0; k < st->nsubs; k++)
		if (st->subs[k] == c) {
			st->subs[k] = st->subs[--st->nsubs];
			break;
		}
	st->nmp -= c->msgpack;
	counter_set(G.k.subs, counter_value(G.k.subs) - 1);
}

static void send_snapshot(struct client *c, struct stream *st)
{
	struct wsframe *f = snapshot_frame(st, c->msgpack);
	if (f && q_push(c, f, Q_SNAP) == 0)
		counter_add(G.k.snaps, 1);
}

/* ---- control messages ---- */

/* Queue a reply (a malloc'd JSON string, taken). */
static void reply(struct client *c, char *s)
{
	if (s) {
		send_text(c, s, strlen(s), Q_CTRL);
		free(s);
	}
}

static void reply_error(struct client *c, const json_t *id, const char *msg)
{
	counter_add(G.k.ctl_err, 1);
	reply(c, wsproto_error(id, msg));
}

/* Token bucket: max_rate per second, bursts of max_rate. */
static bool rate_ok(struct client *c)
{
	c->tokens += (double)(G.now - c->tokens_ns) / NS * G.o.max_rate;
	if (c->tokens > G.o.max_rate)
		c->tokens = G.o.max_rate;
	c->tokens_ns = G.now;
	if (c->tokens < 1)
		return false;
	c->tokens -= 1;
	return true;
}

static void on_control(struct client *c, const uint8_t *msg, size_t len)
{
	counter_add(G.k.ctl, 1);
	if (!rate_ok(c)) {
		counter_add(G.k.limited, 1);
		if (c->tokens < -2 * G.o.max_rate) {
			ws_close(c, WSLAY_CODE_POLICY_VIOLATION, "too many control messages");
			return;
		}
		c->tokens -= 1; /* keeps counting down while it floods */
		reply_error(c, NULL, "rate limited");
		return;
	}
	struct wsproto_ctl m;
	const char *why;
	if (wsproto_ctl_parse(msg, len, DEFAULT_IV, &m, &why) < 0) {
		reply_error(c, m.id, why);
		wsproto_ctl_free(&m);
		return;
	}
	if (m.op == WSPROTO_SUBSCRIBE && c->nsubs + (int)m.nsyms > G.o.max_subs) {
		reply_error(c, m.id, "too many subscriptions");
		wsproto_ctl_free(&m);
		return;
	}
	/* the ack first, then the snapshots it promises */
	reply(c, wsproto_ack(&m));
	if (m.op == WSPROTO_RESYNC)
		counter_add(G.k.resync_req, 1);
	if (!m.symbols) { /* unsubscribe or resync everything */
		for (int k = c->nsubs - 1; k >= 0; k--) {
			if (m.op == WSPROTO_RESYNC)
				send_snapshot(c, c->subs[k]);
			else
				unsubscribe(c, c->subs[k]);
		}
	}
	for (size_t i = 0; i < m.nsyms; i++) {
		const char *sym = wsproto_ctl_symbol(&m, i);
		struct stream *st =
		    m.op == WSPROTO_UNSUBSCRIBE ? stream_find(sym, m.iv) : stream_get(sym, m.iv);
		if (m.op == WSPROTO_UNSUBSCRIBE) {
			if (st)
				unsubscribe(c, st);
		} else if (!st) {
			reply_error(c, m.id, "too many streams");
		} else if (m.op == WSPROTO_SUBSCRIBE) {
			if (subscribe(c, st) == 0)
				send_snapshot(c, st);
		} else if (sub_index(c, st) >= 0) {
			send_snapshot(c, st);
		} else {
			reply_error(c, m.id, "not subscribed");
		}
	}
	wsproto_ctl_free(&m);
}

/* ---- the WebSocket: our buffers in, our queue out ---- */

/* wsproto's frames (pongs, closes, pings) go into the queue as they are. */
static int ws_send(void *user, const uint8_t *data, size_t len)
{
	struct wsframe *f = frame_raw(data, len);
	int rc = f ? q_push(user, f, Q_CTRL) : -ENOMEM;
	frame_put(f);
	return rc;
}

static void ws_text(void *user, const uint8_t *msg, size_t len)
{
	struct client *c = user;
	if (c->st == C_WS)
		on_control(c, msg, len);
}

static void ws_pong(void *user)
{
	struct client *c = user;
	c->ping_out = false;
	c->missed = 0;
}

static const struct wsproto_ops ws_ops = {.send = ws_send, .on_text = ws_text, .on_pong = ws_pong};

/* Feed what was received to the WebSocket, and see whether it is over. */
static void ws_input(struct client *c)
{
	int rc = wsproto_conn_input(c->ws, (const uint8_t *)c->rbuf + c->roff, c->rlen - c->roff);
	c->roff = c->rlen = 0;
	if (rc < 0) {
		shut(c);
		return;
	}
	if (wsproto_conn_close_received(c->ws) || wsproto_conn_close_sent(c->ws)) {
		if (c->st == C_WS) {
			c->st = C_CLOSING;
			c->close_deadline = G.now + CLOSE_GRACE_NS;
		}
		if (wsproto_conn_close_sent(c->ws) && c->qn == 0)
			shut(c);
	}
}

/* ---- HTTP ---- */

/* Queue an HTTP response and close after it. */
static void respond(struct client *c, int code, const char *ctype, const char *body, size_t blen,
		    const char *extra)
{
	char head[1024];
	int hn = http_response_head(head, sizeof head, code, ctype, blen, true, extra);
	if (hn < 0) {
		shut(c);
		return;
	}
	counter_add(G.k.http, 1);
	if (code >= 400)
		counter_add(G.k.http_err, 1);
	struct wsframe *f = frame_alloc((size_t)hn + blen);
	if (!f) {
		shut(c);
		return;
	}
	memcpy(f->data, head, (size_t)hn);
	if (blen)
		memcpy(f->data + hn, body, blen);
	q_push(c, f, Q_CTRL);
	frame_put(f);
	c->close_after_send = true;
}

static void respond_error(struct client *c, int code, const char *why)
{
	char body[256];
	int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"status\":%d}\n", why, code);
	respond(c, code, "application/json", body, (size_t)n,
		code == 426 ? "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n" : NULL);
}

/* A body written with FILE functions into memory, sent as the response. */
struct body {
	FILE *f;
	char *p;
	size_t n;
};

static FILE *body_open(struct body *b)
{
	b->p = NULL;
	b->n = 0;
	b->f = open_memstream(&b->p, &b->n);
	return b->f;
}

static void body_send(struct client *c, struct body *b, int code, const char *ctype)
{
	if (fclose(b->f) != 0)
		respond_error(c, 500, "out of memory");
	else
		respond(c, code, ctype, b->p, b->n, NULL);
	free(b->p);
}

static void json_str(FILE *f, const char *s)
{
	json_t *j = json_string(s);
	char *d = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	fputs(d ? d : "null", f);
	free(d);
	json_decref(j);
}

static void http_health(struct client *c)
{
	struct body b;
	if (!body_open(&b))
		return respond_error(c, 500, "out of memory");
	int64_t now = wall_ns();
	bool stale = false;
	fprintf(b.f, "{\"up\":true,\"uptime_s\":%.3f,\"inputs\":[",
		(double)(G.now - G.started_ns) / NS);
	for (int i = 0; i < G.nin; i++) {
		int64_t last = G.in_last_ns[i];
		bool st = !last || now - last > G.o.stale_ns;
		stale |= st;
		fprintf(b.f, "%s{\"input\":", i ? "," : "");
		json_str(b.f, G.in_names[i]);
		if (last)
			fprintf(b.f, ",\"age_s\":%.3f", (double)(now - last) / NS);
		else
			fputs(",\"age_s\":null", b.f);
		fprintf(b.f, ",\"stale\":%s}", st ? "true" : "false");
	}
	fprintf(b.f, "],\"stale\":%s}\n", stale ? "true" : "false");
	body_send(c, &b, stale ? 503 : 200, "application/json");
}

/* Our counters, as /api/stats and /metrics show them. */
static const struct {
	const char *name;
	size_t off;
} stat_names[] = {
#define K(x)                                                                                       \
	{                                                                                          \
#x, offsetof(__typeof__(G.k), x)                                                   \
	}
    K(conns),	    K(accepted),   K(refused), K(http),	       K(http_err),
    K(upgrades),    K(frames),	   K(bytes),   K(deltas),      K(snaps),
    K(resync_slow), K(resync_req), K(dropped), K(closed_slow), K(closed_ping),
    K(ctl),	    K(ctl_err),	   K(limited), K(in),	       K(rejects),
    K(laps),	    K(streams),	   K(subs),    K(pool),	       K(pool_dry),
#undef K
};

static uint64_t stat_value(size_t off)
{
	mdb_counter *k;
	memcpy(&k, (const char *)&G.k + off, sizeof k);
	return counter_value(k);
}

/* Bytes published in input i's ring that this gateway has not read yet. */
static uint64_t ring_lag(int i)
{
	uint64_t pub = ring_position(G.rings[i]), pos = ring_consumer_position(G.w[i].c);
	return pub > pos ? pub - pos : 0;
}

static void http_stats(struct client *c)
{
	struct body b;
	if (!body_open(&b))
		return respond_error(c, 500, "out of memory");
	fprintf(b.f, "{\"connections\":%d,\"websockets\":%d", G.nconn, G.nws);
	for (size_t i = 0; i < sizeof stat_names / sizeof *stat_names; i++)
		fprintf(b.f, ",\"%s\":%" PRIu64, stat_names[i].name, stat_value(stat_names[i].off));
	fputs(",\"inputs\":[", b.f);
	for (int i = 0; i < G.nin; i++) {
		fprintf(b.f, "%s{\"input\":", i ? "," : "");
		json_str(b.f, G.in_names[i]);
		fprintf(b.f, ",\"lag_bytes\":%" PRIu64 ",\"laps\":%" PRIu64 "}", ring_lag(i),
			ring_consumer_laps(G.w[i].c));
	}
	fputs("]}\n", b.f);
	body_send(c, &b, 200, "application/json");
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void prom_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static int prom_process(const struct counters_view *v, void *arg)
{
	FILE *f = arg;
	if (!v->alive)
		return 0;
	for (int i = 0; i < v->n; i++) {
		fputs("mdb_counter{tool=\"", f);
		prom_label(f, v->tool);
		fputs("\",label=\"", f);
		prom_label(f, v->label);
		fprintf(f, "\",pid=\"%d\",name=\"", (int)v->pid);
		prom_label(f, v->c[i].name);
		fprintf(f, "\"} %" PRIu64 "\n", v->c[i].value);
	}
	return 0;
}

static void http_metrics(struct client *c)
{
	struct body b;
	if (!body_open(&b))
		return respond_error(c, 500, "out of memory");
	fprintf(b.f, "# TYPE mdb_ws_connections gauge\nmdb_ws_connections %d\n", G.nconn);
	fprintf(b.f, "# TYPE mdb_ws_websockets gauge\nmdb_ws_websockets %d\n", G.nws);
	for (size_t i = 0; i < sizeof stat_names / sizeof *stat_names; i++)
		fprintf(b.f, "mdb_ws_%s %" PRIu64 "\n", stat_names[i].name,
			stat_value(stat_names[i].off));
	fputs("# TYPE mdb_ws_input_lag_bytes gauge\n", b.f);
	for (int i = 0; i < G.nin; i++) {
		fputs("mdb_ws_input_lag_bytes{input=\"", b.f);
		prom_label(b.f, G.in_names[i]);
		fprintf(b.f, "\"} %" PRIu64 "\n", ring_lag(i));
	}
	fputs("# HELP mdb_counter shared-memory counters of every live mdb process\n"
	      "# TYPE mdb_counter untyped\n",
	      b.f);
	counters_scan(prom_process, b.f);
	body_send(c, &b, 200, "text/plain; version=0.0.4");
}

static void snapshot_json(FILE *f, const char *s, int32_t iv, uint64_t seq,
			  const struct lvc_value *v, bool *first)
{
	const char *why;
	int n = wsmsg_snapshot(G.mp, sizeof G.mp, s, iv, seq, v);
	int jn = n < 0 ? -1 : record_to_json(G.codec, G.mp, (size_t)n, G.js, sizeof G.js, &why);
	if (jn > 0) {
		fprintf(f, "%s%s", *first ? "" : ",\n", G.js);
		*first = false;
	}
}

/* The market overview: every entry of the cache, else every stream. */
static void http_snapshot(struct client *c)
{
	struct body b;
	if (!body_open(&b))
		return respond_error(c, 500, "out of memory");
	bool first = true;
	fputs("[", b.f);
	if (G.lvc) {
		for (uint32_t i = 0; i < lvc_capacity(G.lvc); i++) {
			struct lvc_item it;
			if (lvc_read(G.lvc, (int)i, &it) == 0)
				snapshot_json(b.f, it.s, it.iv, it.seq, &it.v, &first);
		}
	} else {
		for (struct stream *st = G.streams; st; st = st->all)
			if (st->v.ts)
				snapshot_json(b.f, st->s, st->iv, st->seq, &st->v, &first);
	}
	fputs("]\n", b.f);
	body_send(c, &b, 200, "application/json");
}

/* A query parameter as an int64 in [lo, hi]: 1 when given and good, 0 when
 * absent (*v untouched), -1 when malformed. */
static int query_i64(const struct http_request *rq, const char *key, int64_t lo, int64_t hi,
		     int64_t *v)
{
	char q[32], *end;
	if (http_query_get(rq->query, rq->query_len, key, q, sizeof q) < 0)
		return 0;
	errno = 0;
	long long x = strtoll(q, &end, 10);
	if (!*q || *end || errno || x < lo || x > hi)
		return -1;
	*v = x;
	return 1;
}

static void json_num(FILE *f, const char *k, double x)
{
	if (!isnan(x))
		fprintf(f, ",\"%s\":%.17g", k, x);
}

static int bars_row(const struct mdb_record *b, const struct mdb_record *ft, void *arg)
{
	FILE *f = arg;
	fprintf(f, "%s{\"ts\":%lld", ftell(f) > 1 ? ",\n" : "", (long long)b->ts);
	json_num(f, "o", b->bar.o);
	json_num(f, "h", b->bar.h);
	json_num(f, "l", b->bar.l);
	json_num(f, "c", b->bar.c);
	json_num(f, "v", b->bar.v);
	fprintf(f, ",\"n\":%lld,\"f\":%u", (long long)b->bar.n, b->bar.f);
	if (ft->t == MDB_REC_FEAT) {
		const struct mdb_feat *x = &ft->feat;
		json_num(f, "rsi", x->rsi);
		json_num(f, "ema12", x->ema12);
		json_num(f, "ema26", x->ema26);
		json_num(f, "bbm", x->bbm);
		json_num(f, "bbu", x->bbu);
		json_num(f, "bbl", x->bbl);
		json_num(f, "atr", x->atr);
		json_num(f, "vwap", x->vwap);
		json_num(f, "vma", x->vma);
		json_num(f, "macd", x->macd);
		json_num(f, "macds", x->macds);
		json_num(f, "macdh", x->macdh);
		json_num(f, "mom", x->mom);
	}
	fputc('}', f);
	return 0;
}

/* GET /api/bars/{symbol}?iv=&from=&to=&limit= : history from mdb-write's
 * database, read-only, as a JSON array oldest first (from/to in ns since the
 * epoch, to exclusive; without from, the newest `limit` bars). The query
 * runs in the event loop: --max-rows bounds its cost (WAL readers never wait
 * for the writer). */
static void http_bars(struct client *c, const struct http_request *rq, size_t plen)
{
	if (!G.o.db_path)
		return respond_error(c, 404, "no database (mdb-ws --db)");
	char sym[LVC_SYM_MAX];
	if (http_url_decode(rq->path + plen, rq->path_len - plen, false, sym, sizeof sym) < 0 ||
	    !*sym)
		return respond_error(c, 400, "bad symbol");
	int64_t iv = DEFAULT_IV, from = INT64_MIN, to = INT64_MAX;
	int64_t limit = G.o.max_rows < 1000 ? G.o.max_rows : 1000;
	int has_from = query_i64(rq, "from", INT64_MIN, INT64_MAX, &from);
	if (query_i64(rq, "iv", 1, INT32_MAX, &iv) < 0 || has_from < 0 ||
	    query_i64(rq, "to", INT64_MIN, INT64_MAX, &to) < 0 ||
	    query_i64(rq, "limit", 1, G.o.max_rows, &limit) < 0)
		return respond_error(c, 400, "bad iv, from, to or limit");
	bool newest = !has_from;
	if (!G.db) {
		struct store_opts so;
		store_opts_default(&so);
		so.readonly = true;
		so.busy_ms = 100;
		int err;
		char msg[256];
		if (!(G.db = store_open(G.o.db_path, &so, &err, msg, sizeof msg))) {
			counter_add(G.k.http_err, 1);
			logmsg(LOG_WARNING, "/api/bars: %s", msg);
			return respond_error(c, 503, "database not available");
		}
	}
	struct body b;
	if (!body_open(&b))
		return respond_error(c, 500, "out of memory");
	fputc('[', b.f);
	struct store_range q = {sym, iv, from, to, (int)limit, newest};
	int rc = store_history(G.db, &q, bars_row, b.f);
	fputs("]\n", b.f);
	if (rc < 0) {
		logmsg(LOG_WARNING, "/api/bars: %s", store_errmsg(G.db));
		store_close(&G.db); /* reopened by the next request */
		fclose(b.f);
		free(b.p);
		return respond_error(c, 503, "database not available");
	}
	body_send(c, &b, 200, "application/json");
}

/* The dashboard (GET /): one page, nothing from the internet. It subscribes
 * over /ws, draws candles with EMA and Bollinger overlays on a canvas (the
 * history from /api/bars when there is a database) and keeps the latest
 * values in a table; a gap in seq asks for a resync. Data is set as text,
 * never as markup. tests/tools/ws_dashboard.sh runs it in Chromium. */
static const char dashboard[] =
    "<!doctype html>\n"
    "<html><head><meta charset=\"utf-8\"><title>mdb live</title>\n"
    "<meta name=\"viewport\" content=\"width=device-width\">\n"
    "<style>\n"
    "body{font:14px system-ui,sans-serif;margin:0;background:#111;color:#ddd}\n"
    "header{padding:8px 12px;background:#222;display:flex;gap:8px;align-items:center;flex-wrap:"
    "wrap}\n"
    "input,button{background:#333;color:#eee;border:1px solid #555;padding:3px 6px}\n"
    "#price{font-size:20px;font-weight:600;margin:0 8px}.up{color:#3c6}.down{color:#e44}\n"
    "#main{display:flex}#chart{flex:1;min-width:0}canvas{width:100%;height:420px;display:block}\n"
    "table{border-collapse:collapse;margin:8px;min-width:230px}\n"
    "td{padding:1px 8px;font-variant-numeric:tabular-nums}td.k{color:#999}td.chg{background:#25"
    "3}\n"
    "#syms{padding:4px 12px}#syms span{cursor:pointer;margin-right:14px;color:#8cf}\n"
    "#status,#legend{color:#999}#legend{padding:0 12px}#legend span{margin-right:10px}\n"
    "</style></head><body>\n"
    "<header>symbol <input id=\"sym\" size=\"8\" value=\"ES\"> iv <input id=\"iv\" size=\"5\" v"
    "alue=\"60\">\n"
    "<button id=\"go\">watch</button><span id=\"price\"></span><span id=\"status\">connecting</"
    "span></header>\n"
    "<div id=\"syms\"></div>\n"
    "<div id=\"legend\"><span style=\"color:#fc3\">EMA 12</span><span style=\"color:#39f\">EMA "
    "26</span>\n"
    "<span style=\"color:#888\">Bollinger 20, 2</span></div>\n"
    "<div id=\"main\"><div id=\"chart\"><canvas id=\"cv\" width=\"1000\" height=\"420\"></canva"
    "s></div>\n"
    "<table id=\"vals\"></table></div>\n"
    "<script>\n"
    "\"use strict\";\n"
    "// Everything shown comes from this gateway: /api/snapshot (the symbols),\n"
    "// /api/bars (history, when it has a database), /ws (a snapshot, then deltas\n"
    "// chained by seq; a gap asks for a resync). Text is set with textContent\n"
    "// only: symbols are data, never markup.\n"
    "const q = new URLSearchParams(location.search), token = q.get(\"token\");\n"
    "const $ = id => document.getElementById(id);\n"
    "const META = [\"type\", \"s\", \"iv\", \"seq\", \"prev_seq\"];\n"
    "let ws, cur = null, seq = -1, bars = [], last = {}, changed = new Set(), gen = 0;\n"
    "function url(p) {\n"
    "  return p + (token ? (p.includes(\"?\") ? \"&\" : \"?\") + \"token=\" + encodeURIComponen"
    "t(token) : \"\");\n"
    "}\n"
    "function status(t) { $(\"status\").textContent = t; }\n"
    "function send(o) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(o)); }\n"
    "function fmt(k, v) {\n"
    "  if (v == null) return \"\";\n"
    "  if (k === \"ts\") return new Date(v / 1e6).toISOString().replace(\"T\", \" \").slice(0, "
    "19);\n"
    "  return typeof v === \"number\" ? String(+v.toFixed(4)) : String(v);\n"
    "}\n"
    "// a bar into the chart, in ts order, the newest 300\n"
    "function put(b) {\n"
    "  let i = bars.length;\n"
    "  while (i > 0 && bars[i - 1].ts > b.ts) i--;\n"
    "  if (i > 0 && bars[i - 1].ts === b.ts) Object.assign(bars[i - 1], b);\n"
    "  else bars.splice(i, 0, Object.assign({}, b));\n"
    "  if (bars.length > 300) bars.shift();\n"
    "}\n"
    "function watch() {\n"
    "  const s = $(\"sym\").value.trim(), iv = parseInt($(\"iv\").value, 10) || 60;\n"
    "  if (cur) send({op: \"unsubscribe\", symbols: [cur.s], iv: cur.iv, id: \"u\" + gen});\n"
    "  bars = []; last = {}; seq = -1; gen++;\n"
    "  cur = {s, iv};\n"
    "  send({op: \"subscribe\", symbols: [s], iv, id: \"s\" + gen});\n"
    "  const g = gen;\n"
    "  fetch(url(\"/api/bars/\" + encodeURIComponent(s) + \"?iv=\" + iv + \"&limit=300\"))\n"
    "    .then(r => r.ok ? r.json() : []).then(rows => {\n"
    "      if (g !== gen) return;\n"
    "      const live = new Set(bars.map(b => b.ts)); /* a live bar is newer than its row */\n"
    "      for (const r of rows) if (!live.has(r.ts)) put(r);\n"
    "      draw();\n"
    "    }).catch(() => {});\n"
    "  $(\"price\").textContent = \"\";\n"
    "  draw(); table();\n"
    "}\n"
    "function connect() {\n"
    "  ws = new WebSocket(url((location.protocol === \"https:\" ? \"wss://\" : \"ws://\") + loc"
    "ation.host + \"/ws\"));\n"
    "  ws.onopen = () => {\n"
    "    status(\"connected\");\n"
    "    if (cur) send({op: \"subscribe\", symbols: [cur.s], iv: cur.iv, id: \"s\" + gen});\n"
    "  };\n"
    "  ws.onclose = () => { status(\"disconnected; retrying\"); seq = -1; setTimeout(connect, 1"
    "000); };\n"
    "  ws.onmessage = ev => {\n"
    "    const m = JSON.parse(ev.data);\n"
    "    if (m.type === \"error\") { status(\"error: \" + m.error); return; }\n"
    "    if (m.type === \"resync\") { status(\"too slow: resync (\" + m.dropped + \" dropped)\""
    "); return; }\n"
    "    if (!cur || m.s !== cur.s || m.iv !== cur.iv) return;\n"
    "    if (m.type === \"snapshot\") {\n"
    "      last = {}; seq = m.seq;\n"
    "    } else if (m.type === \"delta\") {\n"
    "      if (seq < 0) return; /* waiting for a snapshot */\n"
    "      if (m.prev_seq !== seq) {\n"
    "        status(\"gap after seq \" + seq + \": resync\");\n"
    "        seq = -1;\n"
    "        send({op: \"resync\", symbols: [cur.s], iv: cur.iv, id: \"r\" + gen});\n"
    "        return;\n"
    "      }\n"
    "      seq = m.seq;\n"
    "    } else return;\n"
    "    changed = new Set();\n"
    "    for (const k in m) {\n"
    "      if (META.includes(k)) continue;\n"
    "      if (m[k] === null) delete last[k]; else last[k] = m[k];\n"
    "      changed.add(k);\n"
    "    }\n"
    "    table();\n"
    "    if (last.ts === undefined) { status(cur.s + \": no data yet\"); return; }\n"
    "    put(last);\n"
    "    const p = $(\"price\");\n"
    "    p.textContent = fmt(\"c\", last.c);\n"
    "    p.className = last.c >= last.o ? \"up\" : \"down\";\n"
    "    status(cur.s + \" \" + cur.iv + \"s seq \" + seq + \" at \" + fmt(\"ts\", last.ts) + "
    "\" UTC\");\n"
    "    for (const el of $(\"syms\").children)\n"
    "      if (el.dataset.k === cur.s + \"/\" + cur.iv) el.lastChild.textContent = \" \" + fmt("
    "\"c\", last.c);\n"
    "    draw();\n"
    "  };\n"
    "}\n"
    "function table() {\n"
    "  const t = $(\"vals\");\n"
    "  t.textContent = \"\";\n"
    "  for (const k of Object.keys(last)) {\n"
    "    const tr = t.insertRow(), a = tr.insertCell(), b = tr.insertCell();\n"
    "    a.className = \"k\"; a.textContent = k;\n"
    "    b.id = \"v_\" + k; b.textContent = fmt(k, last[k]);\n"
    "    if (changed.has(k)) b.className = \"chg\";\n"
    "  }\n"
    "}\n"
    "function draw() {\n"
    "  const cv = $(\"cv\"), g = cv.getContext(\"2d\"), W = cv.width, H = cv.height, R = 70;\n"
    "  g.fillStyle = \"#111\"; g.fillRect(0, 0, W, H);\n"
    "  if (!bars.length) return;\n"
    "  let lo = Infinity, hi = -Infinity;\n"
    "  for (const b of bars) for (const k of [\"l\", \"h\", \"bbl\", \"bbu\"]) {\n"
    "    if (b[k] != null) { lo = Math.min(lo, b[k]); hi = Math.max(hi, b[k]); }\n"
    "  }\n"
    "  if (hi === lo) { hi += 1; lo -= 1; }\n"
    "  const y = v => H - 10 - (v - lo) / (hi - lo) * (H - 20), w = (W - R) / Math.max(bars.len"
    "gth, 60);\n"
    "  g.font = \"12px system-ui,sans-serif\"; g.textBaseline = \"middle\";\n"
    "  for (let i = 0; i <= 4; i++) { /* price grid */\n"
    "    const v = lo + (hi - lo) * i / 4;\n"
    "    g.fillStyle = \"#2a2a2a\"; g.fillRect(0, Math.round(y(v)), W - R, 1);\n"
    "    g.fillStyle = \"#999\"; g.fillText(fmt(\"c\", v), W - R + 6, y(v));\n"
    "  }\n"
    "  bars.forEach((b, i) => {\n"
    "    if (b.o == null || b.c == null) return;\n"
    "    const x = i * w + w / 2, up = b.c >= b.o;\n"
    "    g.strokeStyle = g.fillStyle = up ? \"#3c6\" : \"#e44\";\n"
    "    g.beginPath(); g.moveTo(x, y(b.h)); g.lineTo(x, y(b.l)); g.stroke();\n"
    "    g.fillRect(x - w * 0.35, y(Math.max(b.o, b.c)), w * 0.7, Math.max(1, Math.abs(y(b.o) -"
    " y(b.c))));\n"
    "  });\n"
    "  for (const [k, col] of [[\"ema12\", \"#fc3\"], [\"ema26\", \"#39f\"], [\"bbu\", \"#888\""
    "], [\"bbl\", \"#888\"]]) {\n"
    "    g.strokeStyle = col; g.beginPath(); let on = false;\n"
    "    bars.forEach((b, i) => {\n"
    "      if (b[k] == null) return;\n"
    "      const x = i * w + w / 2;\n"
    "      if (on) g.lineTo(x, y(b[k])); else g.moveTo(x, y(b[k]));\n"
    "      on = true;\n"
    "    });\n"
    "    g.stroke();\n"
    "  }\n"
    "}\n"
    "// the market overview: every symbol of the cache, click to watch\n"
    "function overview() {\n"
    "  fetch(url(\"/api/snapshot\")).then(r => r.json()).then(list => {\n"
    "    const d = $(\"syms\");\n"
    "    d.textContent = \"\";\n"
    "    for (const m of list) {\n"
    "      const el = document.createElement(\"span\");\n"
    "      el.dataset.k = m.s + \"/\" + m.iv;\n"
    "      el.append(m.s + \" \" + m.iv + \"s\", document.createTextNode(\" \" + fmt(\"c\", m.c"
    ")));\n"
    "      el.onclick = () => { $(\"sym\").value = m.s; $(\"iv\").value = m.iv; watch(); };\n"
    "      d.append(el);\n"
    "    }\n"
    "  }).catch(() => {});\n"
    "}\n"
    "$(\"go\").onclick = watch;\n"
    "$(\"sym\").value = q.get(\"s\") || \"ES\";\n"
    "if (q.get(\"iv\")) $(\"iv\").value = q.get(\"iv\");\n"
    "watch(); connect(); overview();\n"
    "setInterval(overview, 10000);\n"
    "</script></body></html>\n";

/* Accept the upgrade: 101, wslay takes the connection. */
static void upgrade(struct client *c, const struct http_request *rq, const char *key, size_t kn,
		    const char *sym)
{
	char q[32];
	int32_t iv = DEFAULT_IV;
	if (http_query_get(rq->query, rq->query_len, "iv", q, sizeof q) >= 0) {
		char *end;
		long v = strtol(q, &end, 10);
		if (*end || v <= 0 || v > INT32_MAX)
			return respond_error(c, 400, "bad iv");
		iv = (int32_t)v;
	}
	/* the format: ?format= wins over the subprotocol; the subprotocol
	 * answered is one the client offered */
	bool off_mp = http_header_has_token(rq, "Sec-WebSocket-Protocol", "mdb.msgpack");
	bool off_js = http_header_has_token(rq, "Sec-WebSocket-Protocol", "mdb.json");
	bool mp = off_mp && !off_js;
	if (http_query_get(rq->query, rq->query_len, "format", q, sizeof q) >= 0) {
		if (strcmp(q, "msgpack") && strcmp(q, "json"))
			return respond_error(c, 400, "format must be json or msgpack");
		mp = !strcmp(q, "msgpack");
	}
	if (sym && !wsproto_sym_ok(sym))
		return respond_error(c, 400, "bad symbol");
	if (G.nws >= G.o.max_conns)
		return respond_error(c, 503, "too many connections");
	if (!(c->ws = wsproto_conn_new(&ws_ops, c, G.o.max_msg)))
		return respond_error(c, 500, "out of memory");
	char acc[HTTP_WS_ACCEPT_LEN + 1], head[256];
	http_ws_accept(key, kn, acc);
	const char *proto = mp && off_mp    ? "Sec-WebSocket-Protocol: mdb.msgpack\r\n"
			    : !mp && off_js ? "Sec-WebSocket-Protocol: mdb.json\r\n"
					    : "";
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
			 acc, proto);
	struct wsframe *f = frame_raw(head, (size_t)n);
	if (f) {
		q_push(c, f, Q_CTRL);
		frame_put(f);
	}
	c->st = C_WS;
	c->msgpack = mp;
	c->tokens = G.o.max_rate;
	c->tokens_ns = G.now;
	c->last_ping_ns = G.now;
	G.nws++;
	counter_add(G.k.upgrades, 1);
	if (sym) {
		struct stream *st = stream_get(sym, iv);
		if (st && subscribe(c, st) == 0)
			send_snapshot(c, st);
	}
}

static bool token_ok(const struct http_request *rq)
{
	if (!G.o.token)
		return true;
	char q[256];
	size_t tn = strlen(G.o.token);
	const struct http_header *h = http_header_get(rq, "Authorization");
	if (h && h->value_len == 7 + tn && strncasecmp(h->value, "Bearer ", 7) == 0 &&
	    memcmp(h->value + 7, G.o.token, tn) == 0)
		return true;
	return http_query_get(rq->query, rq->query_len, "token", q, sizeof q) >= 0 &&
	       strcmp(q, G.o.token) == 0;
}

static bool origin_ok(const struct http_request *rq)
{
	const struct http_header *h = http_header_get(rq, "Origin");
	if (!G.o.norigins || !h)
		return true; /* not a browser, or no list */
	for (int i = 0; i < G.o.norigins; i++)
		if (strlen(G.o.origins[i]) == h->value_len &&
		    strncasecmp(G.o.origins[i], h->value, h->value_len) == 0)
			return true;
	return false;
}

static bool path_is(const struct http_request *rq, const char *p)
{
	return rq->path_len == strlen(p) && memcmp(rq->path, p, rq->path_len) == 0;
}

/* Handle a whole request head of hn bytes. */
static void on_request(struct client *c, const struct http_request *rq, int hn)
{
	c->roff = (size_t)hn; /* what follows the head belongs to the WebSocket */
	if (!token_ok(rq))
		return respond_error(c, 401, "token required");
	if (!origin_ok(rq))
		return respond_error(c, 403, "origin not allowed");
	if (rq->method_len != 3 || memcmp(rq->method, "GET", 3) != 0)
		return respond_error(c, 405, "only GET");
	const char *live = "/ws/live_data/";
	size_t ln = strlen(live);
	if (path_is(rq, "/ws") || (rq->path_len > ln && memcmp(rq->path, live, ln) == 0)) {
		const char *key;
		size_t kn;
		int rc = http_ws_check(rq, &key, &kn);
		if (rc == -EPROTONOSUPPORT)
			return respond_error(c, 426, "WebSocket version 13 only");
		if (rc < 0)
			return respond_error(c, 400, "not a WebSocket upgrade");
		char sym[LVC_SYM_MAX];
		if (rq->path_len > ln &&
		    http_url_decode(rq->path + ln, rq->path_len - ln, false, sym, sizeof sym) < 0)
			return respond_error(c, 400, "bad symbol");
		return upgrade(c, rq, key, kn, rq->path_len > ln ? sym : NULL);
	}
	if (path_is(rq, "/"))
		return respond(c, 200, "text/html; charset=utf-8", dashboard, sizeof dashboard - 1,
			       NULL);
	if (path_is(rq, "/api/health"))
		return http_health(c);
	if (path_is(rq, "/api/stats"))
		return http_stats(c);
	if (path_is(rq, "/metrics"))
		return http_metrics(c);
	if (path_is(rq, "/api/snapshot"))
		return http_snapshot(c);
	const char *bars = "/api/bars/";
	if (rq->path_len > strlen(bars) && memcmp(rq->path, bars, strlen(bars)) == 0)
		return http_bars(c, rq, strlen(bars));
	respond_error(c, 404, "no such path");
}

static void http_input(struct client *c)
{
	struct http_request rq;
	int rc = http_parse_request(c->rbuf, c->rlen, &rq);
	if (rc > 0)
		return on_request(c, &rq, rc);
	if (rc == -EPROTONOSUPPORT)
		return respond_error(c, 505, "HTTP/1.x only");
	if (rc == -E2BIG)
		return respond_error(c, 431, "too many headers");
	if (rc < 0)
		return respond_error(c, 400, "malformed request");
	if (c->rlen == RBUF_SIZE)
		return respond_error(c, 431, "request head too large");
}

/* ---- connections ---- */

static void client_free(struct client *c)
{
	while (c->nsubs)
		unsubscribe(c, c->subs[c->nsubs - 1]);
	free(c->subs);
	wsproto_conn_free(&c->ws);
	for (unsigned i = 0; i < c->qn; i++)
		frame_put(c->q[(c->qhead + i) & (c->qcap - 1)].f);
	free(c->q);
	free(c->rbuf);
	close(c->fd);
	if (c->st == C_WS || c->st == C_CLOSING)
		G.nws--;
	uint32_t gen = c->gen + 1;
	bool dirty = c->dirty; /* its index stays in the flush list until the next flush */
	*c = (struct client){.gen = gen, .fd = -1, .dirty = dirty};
	G.freeidx[G.nfree++] = cidx(c);
	G.accept_paused = false; /* a descriptor is free again */
	counter_set(G.k.conns, (uint64_t)--G.nconn);
}

static void timer_set(bool on)
{
	int64_t t = G.o.ping_ns / 4;
	if (t > NS)
		t = NS;
	if (t > G.o.queue_age_ns / 2)
		t = G.o.queue_age_ns / 2;
	if (t < 10000000)
		t = 10000000;
	struct itimerspec its = {0};
	if (on)
		its.it_interval = its.it_value = (struct timespec){t / NS, t % NS};
	timerfd_settime(G.timer_fd, 0, &its, NULL);
	G.timer_armed = on;
}

static void on_accept(int fd)
{
	G.accept_armed = false;
	if (fd < 0) {
		if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
			/* accepting again at once would spin on the same error:
			 * wait for a connection to end, or the next tick */
			if (!G.accept_warned)
				logmsg(LOG_WARNING, "accept: %s: waiting for connections to end",
				       strerror(-fd));
			G.accept_paused = G.accept_warned = true;
			counter_add(G.k.refused, 1);
			if (!G.timer_armed)
				timer_set(true);
		} else if (fd != -EINTR && fd != -ECONNABORTED && !G.stopping) {
			logmsg(LOG_WARNING, "accept: %s", strerror(-fd));
		}
		return;
	}
	G.accept_warned = false;
	counter_add(G.k.accepted, 1);
	if (!G.nfree) {
		counter_add(G.k.refused, 1);
		close(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (G.o.sndbuf)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &G.o.sndbuf, sizeof G.o.sndbuf);
	struct client *c = &G.cl[G.freeidx[--G.nfree]];
	c->st = C_HTTP;
	c->fd = fd;
	c->born_ns = c->progress_ns = G.now;
	c->rbuf = malloc(RBUF_SIZE);
	counter_set(G.k.conns, (uint64_t)++G.nconn);
	if (!G.timer_armed)
		timer_set(true);
	if (!c->rbuf) {
		shut(c);
		return;
	}
	if (G.nconn > G.o.max_conns) {
		counter_add(G.k.refused, 1);
		respond_error(c, 503, "too many connections");
	}
	arm_recv(c);
}

static void on_recv(struct client *c, int res)
{
	c->recv_busy = false;
	if (res <= 0 || c->shut) {
		shut(c);
		return;
	}
	c->rlen += (size_t)res;
	if (c->st == C_HTTP && !c->close_after_send)
		http_input(c);
	if (c->st == C_WS || c->st == C_CLOSING)
		ws_input(c);
	else if (c->close_after_send)
		c->roff = c->rlen = 0; /* ignore anything after the request */
	arm_recv(c);
}

static void on_send(struct client *c, int res)
{
	c->send_busy = false;
	if (res < 0) {
		shut(c);
		return;
	}
	counter_add(G.k.bytes, (uint64_t)res);
	size_t left = (size_t)res;
	while (c->qn) {
		struct qent *e = &c->q[c->qhead];
		size_t avail = e->f->len - c->head_off;
		if (left < avail) {
			c->head_off += (uint32_t)left;
			break;
		}
		left -= avail;
		c->qbytes -= e->f->len;
		frame_put(e->f);
		c->qhead = (c->qhead + 1) & (c->qcap - 1);
		c->qn--;
		c->head_off = 0;
		counter_add(G.k.frames, 1);
	}
	if (res > 0)
		c->progress_ns = G.now;
	arm_recv(c); /* if it was held back by its queue */
	if (c->qn) {
		mark_dirty(c);
	} else if (c->close_after_send || (c->st == C_CLOSING && wsproto_conn_close_sent(c->ws))) {
		shut(c);
	}
}

/* Housekeeping: pings, lost pongs, stalled and slow clients, timeouts. */
static void on_tick(void)
{
	G.accept_paused = false; /* try accept again */
	if (!G.lvc && G.o.lvc_name) {
		int err;
		G.lvc = lvc_open(G.o.lvc_name, false, &err);
	}
	for (int i = 0; i < G.nslots; i++) {
		struct client *c = &G.cl[i];
		if (c->st == C_FREE || c->shut)
			continue;
		if (c->st == C_HTTP && G.now - c->born_ns > HTTP_TIMEOUT_NS) {
			shut(c);
		} else if (c->st == C_CLOSING && G.now > c->close_deadline) {
			shut(c);
		} else if (c->st == C_WS) {
			int64_t stall = 5 * G.o.queue_age_ns > STALL_MIN_NS ? 5 * G.o.queue_age_ns
									    : STALL_MIN_NS;
			if (c->send_busy && G.now - c->progress_ns > stall) {
				close_slow(c); /* not even the socket moves */
				continue;
			}
			if (G.now - c->last_ping_ns < G.o.ping_ns)
				continue;
			c->last_ping_ns = G.now;
			if (c->ping_out && ++c->missed >= G.o.pong_misses) {
				counter_add(G.k.closed_ping, 1);
				ws_close(c, WSLAY_CODE_POLICY_VIOLATION, "no pong");
				continue;
			}
			wsproto_conn_ping(c->ws);
			c->ping_out = true;
		}
	}
	if (!G.nconn)
		timer_set(false);
}

static void on_completion(struct io_uring_cqe *cqe)
{
	uint64_t t = io_uring_cqe_get_data64(cqe);
	enum op op = (enum op)(t >> 56);
	int res = cqe->res;
	switch (op) {
	case OP_ACCEPT:
		on_accept(res);
		return;
	case OP_STOP:
		G.stopping = true;
		return;
	case OP_RINGS:
		arm_read(G.ring_efd, &G.efd_val, OP_RINGS);
		return;
	case OP_FUTEX: /* woken (0), or the ring moved before the wait (-EAGAIN) */
		G.fwait[(uint32_t)t] = false;
		/* anything else would repeat at every re-arm: a busy loop */
		if (res < 0 && res != -EAGAIN && res != -EINTR && res != -ECANCELED)
			die(1,
			    "io_uring futex wait on %s: %s (MDB_WS_WATCHERS=1 waits with threads)",
			    G.in_names[(uint32_t)t], strerror(-res));
		return;
	case OP_TIMER:
		on_tick();
		arm_read(G.timer_fd, &G.timer_val, OP_TIMER);
		return;
	case OP_RECV:
	case OP_SEND: {
		struct client *c = &G.cl[(uint32_t)t];
		if ((c->gen & 0xffffffu) != ((t >> 32) & 0xffffffu))
			return; /* not ours: cannot happen while ops are counted */
		c->ops--;
		if (op == OP_RECV)
			on_recv(c, res);
		else
			on_send(c, res);
		if (c->shut && c->ops == 0)
			client_free(c);
		return;
	}
	}
}

/* ---- setup ---- */

/* Listen on "ADDR:PORT", "[ADDR6]:PORT", or "PORT" / ":PORT" (loopback). */
static int listen_on(const char *spec)
{
	char host[256] = "127.0.0.1";
	const char *colon = strrchr(spec, ':'), *port = colon ? colon + 1 : spec;
	if (colon && colon > spec) {
		if ((size_t)(colon - spec) >= sizeof host)
			die(2, "--listen %s: address too long", spec);
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
	}
	if (!*port)
		die(2, "--listen %s: no port", spec);
	char *h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = '\0';
		h++;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
			*ai;
	int rc = getaddrinfo(h, port, &hints, &ai);
	if (rc)
		die(2, "--listen %s: %s", spec, gai_strerror(rc));
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		die(1, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* A predecessor killed a moment ago can still hold the port: its
	 * io_uring is torn down after it is reaped, and a pending accept keeps
	 * the listening socket open until then. Wait for it, briefly. */
	int64_t give_up = mono_ns() + BIND_RETRY_NS;
	while (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EADDRINUSE || mono_ns() > give_up)
			die(1, "listen on %s: %s", spec, strerror(errno));
		nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	}
	if (listen(fd, 4096) < 0)
		die(1, "listen on %s: %s", spec, strerror(errno));
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char hb[NI_MAXHOST], pb[NI_MAXSERV];
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	getnameinfo((struct sockaddr *)&ss, sl, hb, sizeof hb, pb, sizeof pb,
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(G.bound, sizeof G.bound, "%s%s%s:%s", ss.ss_family == AF_INET6 ? "[" : "", hb,
		 ss.ss_family == AF_INET6 ? "]" : "", pb);
	return fd;
}

static char *read_token(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		die(2, "--token-file %s: %s", path, strerror(errno));
	char buf[256];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0])
		die(2, "--token-file %s: empty", path);
	return strdup(buf);
}

static long parse_count(const char *opt, const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		die(2, "%s %s: not a number from %ld to %ld", opt, s, min, max);
	return v;
}

static int64_t parse_dur(const char *opt, const char *s)
{
	long long ns;
	if (cli_parse_duration(s, &ns) < 0 || ns <= 0)
		die(2, "%s %s: not a duration", opt, s);
	return ns;
}

static unsigned long long parse_size(const char *opt, const char *s)
{
	unsigned long long v;
	if (cli_parse_size(s, &v) < 0 || v == 0)
		die(2, "%s %s: not a size", opt, s);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_LONGOPTS,
	    {"listen", required_argument, NULL, 'l'},
	    {"lvc", required_argument, NULL, OPT_LVC},
	    {"no-lvc", no_argument, NULL, OPT_NO_LVC},
	    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
	    {"allow-origin", required_argument, NULL, OPT_ALLOW_ORIGIN},
	    {"ping", required_argument, NULL, OPT_PING},
	    {"pong-misses", required_argument, NULL, OPT_PONG_MISSES},
	    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
	    {"max-msg", required_argument, NULL, OPT_MAX_MSG},
	    {"max-subs", required_argument, NULL, OPT_MAX_SUBS},
	    {"max-rate", required_argument, NULL, OPT_MAX_RATE},
	    {"queue-bytes", required_argument, NULL, OPT_QUEUE_BYTES},
	    {"queue-age", required_argument, NULL, OPT_QUEUE_AGE},
	    {"slow-resyncs", required_argument, NULL, OPT_SLOW_RESYNCS},
	    {"stale", required_argument, NULL, OPT_STALE},
	    {"sndbuf", required_argument, NULL, OPT_SNDBUF},
	    {"db", required_argument, NULL, OPT_DB},
	    {"max-rows", required_argument, NULL, OPT_MAX_ROWS},
	    {NULL, 0, NULL, 0},
	};
	struct mdb_cli cli = CLI_INIT;
	struct opts *o = &G.o;
	*o = (struct opts){.listen = DEFAULT_LISTEN,
			   .lvc_name = DEFAULT_LVC,
			   .ping_ns = 20 * NS,
			   .pong_misses = 2,
			   .max_conns = 10000,
			   .max_msg = 4096,
			   .max_subs = 256,
			   .max_rate = 20,
			   .queue_bytes = 256 << 10,
			   .queue_age_ns = 2 * NS,
			   .slow_resyncs = 3,
			   .stale_ns = 300 * NS,
			   .max_rows = 10000};
	log_init(argv[0]);
	int opt;
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS "l:", longopts, NULL)) != -1) {
		int rc = cli_option(&cli, opt, optarg);
		if (rc < 0)
			die(2, "%s", cli.err);
		if (rc > 0)
			continue;
		switch (opt) {
		case 'l':
			o->listen = optarg;
			break;
		case OPT_LVC:
			o->lvc_name = optarg;
			break;
		case OPT_NO_LVC:
			o->lvc_name = NULL;
			break;
		case OPT_TOKEN_FILE:
			o->token = read_token(optarg);
			break;
		case OPT_ALLOW_ORIGIN:
			if (o->norigins == (int)(sizeof o->origins / sizeof *o->origins))
				die(2, "too many --allow-origin");
			o->origins[o->norigins++] = optarg;
			break;
		case OPT_PING:
			o->ping_ns = parse_dur("--ping", optarg);
			break;
		case OPT_PONG_MISSES:
			o->pong_misses = (int)parse_count("--pong-misses", optarg, 1, 1000);
			break;
		case OPT_MAX_CONNS:
			o->max_conns = (int)parse_count("--max-conns", optarg, 1, 1 << 20);
			break;
		case OPT_MAX_MSG:
			o->max_msg = parse_size("--max-msg", optarg);
			break;
		case OPT_MAX_SUBS:
			o->max_subs = (int)parse_count("--max-subs", optarg, 1, 1 << 20);
			break;
		case OPT_MAX_RATE:
			o->max_rate = (double)parse_count("--max-rate", optarg, 1, 1 << 20);
			break;
		case OPT_QUEUE_BYTES:
			o->queue_bytes = parse_size("--queue-bytes", optarg);
			break;
		case OPT_QUEUE_AGE:
			o->queue_age_ns = parse_dur("--queue-age", optarg);
			break;
		case OPT_SLOW_RESYNCS:
			o->slow_resyncs = (int)parse_count("--slow-resyncs", optarg, 0, 1000);
			break;
		case OPT_STALE:
			o->stale_ns = parse_dur("--stale", optarg);
			break;
		case OPT_DB:
			o->db_path = optarg;
			break;
		case OPT_MAX_ROWS: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 1000000)
				die(2, "--max-rows %s: not a number from 1 to 1000000", optarg);
			o->max_rows = (int)v;
			break;
		}
		case OPT_SNDBUF: {
			unsigned long long v = parse_size("--sndbuf", optarg);
			if (v > (1u << 30))
				die(2, "--sndbuf %s: too large", optarg);
			o->sndbuf = (int)v;
			break;
		}
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-ws", usage);
	if (argc > 0 || cli.nout > 0 || cli.json)
		usage(stderr);
	if (cli.nin == 0)
		cli.in[cli.nin++] = DEFAULT_INPUT;
	for (int i = 0; i < cli.nin; i++)
		if (strncmp(cli.in[i], "ring:", 5) != 0)
			die(2, "-i %s: mdb-ws reads rings only (ring:NAME)", cli.in[i]);
	if (cli_check_endpoints(&cli, NULL) < 0)
		die(2, "%s", cli.err);
	struct ep_opts eo;
	ep_opts_default(&eo);
	cli_apply(&cli, &eo, "mdb-ws");
	eo.kind = RING_OBSERVER; /* never hold the pipeline back */
	eo.spin_ns = 0;

	/* init */
	cli_catch_signals();
	signal(SIGPIPE, SIG_IGN);
	G.lfd = listen_on(o->listen);
	int err = 0;
	char msg[512];
	G.cnt = counters_open("mdb-ws", eo.name, &err);
	if (!G.cnt)
		logmsg(LOG_WARNING, "counters: %s (continuing without)", strerror(-err));
#define KG(x) G.k.x = counter_get(G.cnt, #x)
	KG(conns);
	KG(accepted);
	KG(refused);
	KG(http);
	KG(http_err);
	KG(upgrades);
	KG(frames);
	KG(bytes);
	KG(deltas);
	KG(snaps);
	KG(resync_slow);
	KG(resync_req);
	KG(dropped);
	KG(closed_slow);
	KG(closed_ping);
	KG(ctl);
	KG(ctl_err);
	KG(limited);
	KG(in);
	KG(rejects);
	KG(laps);
	KG(last);
	KG(streams);
	KG(subs);
	KG(pool);
	KG(pool_dry);
#undef KG
	G.in = inputs_open(cli.in, cli.nin, &eo, &err, msg, sizeof msg);
	if (!G.in)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	G.nin = cli.nin;
	G.in_names = cli.in;
	G.in_last_ns = calloc((size_t)G.nin, sizeof *G.in_last_ns);
	G.w = calloc((size_t)G.nin, sizeof *G.w);
	G.codec = codec_new();
	G.pool = wsframe_pool_new(FRAME_SMALL, FRAME_CHUNK, FRAME_MAX);
	if (!G.pool || wsframe_pool_reserve(G.pool, FRAME_RESERVE) < 0)
		die(1, "out of memory");
	if (o->lvc_name)
		G.lvc = lvc_open(o->lvc_name, false, &err);
	G.nslots = o->max_conns + EXTRA_SLOTS;
	/* each connection is a descriptor: take all the hard limit allows
	 * (systemd's soft limit is 1024), and say when it is not enough */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)G.nslots + 64)
			logmsg(
			    LOG_WARNING,
			    "%llu file descriptors for --max-conns %d: connections past them wait",
			    (unsigned long long)rl.rlim_cur, o->max_conns);
	}
	G.cl = calloc((size_t)G.nslots, sizeof *G.cl);
	G.freeidx = malloc((size_t)G.nslots * sizeof *G.freeidx);
	G.dirty = malloc((size_t)G.nslots * sizeof *G.dirty);
	if (!G.in_last_ns || !G.w || !G.codec || !G.cl || !G.freeidx || !G.dirty)
		die(1, "out of memory");
	for (int i = G.nslots - 1; i >= 0; i--) {
		G.cl[i].fd = -1;
		G.freeidx[G.nfree++] = i;
	}
	G.ring_efd = eventfd(0, EFD_CLOEXEC);
	G.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	G.stop_fd = cli_stop_fd();
	if (G.ring_efd < 0 || G.timer_fd < 0 || G.stop_fd < 0)
		die(1, "eventfd/timerfd: %s", strerror(errno));
	G.rings = calloc((size_t)G.nin, sizeof *G.rings);
	if (!G.rings)
		die(1, "out of memory");
	/* only this thread submits, and it reaps every completion when it
	 * waits: the kernel runs completion work then, not by interrupting
	 * the loop (kernels before 6.1 lack the flags: plain setup) */
	int rc = io_uring_queue_init(4096, &G.ring,
				     IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(4096, &G.ring, 0);
	if (rc < 0)
		die(1, "io_uring: %s", strerror(-rc));
	/* io_uring that sleeps on futexes (6.7) waits for the rings itself:
	 * a record wakes the loop directly; else a watcher thread per ring
	 * turns records into eventfd completions (two more wake-ups each) */
	struct io_uring_probe *probe = io_uring_get_probe_ring(&G.ring);
	G.futex = probe && io_uring_opcode_supported(probe, OPC_FUTEX_WAIT) &&
		  !getenv("MDB_WS_WATCHERS"); /* tests take the other path too */
	io_uring_free_probe(probe);
	G.fwait = calloc((size_t)G.nin, sizeof *G.fwait);
	if (!G.fwait)
		die(1, "out of memory");
	for (int i = 0; i < G.nin; i++) {
		if (!(G.rings[i] = ring_open(cli.in[i] + 5, &err)))
			die(1, "%s: %s", cli.in[i], strerror(-err));
		G.w[i].c = inputs_ring(G.in, i);
		G.w[i].r = G.rings[i];
		G.w[i].parked = true; /* until the loop first goes idle */
		if (!G.futex && pthread_create(&G.w[i].th, NULL, watch, &G.w[i]) != 0)
			die(1, "pthread_create failed");
	}
	G.now = G.started_ns = mono_ns();
	arm_accept();
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_poll_add(sqe, G.stop_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, tag(OP_STOP, 0, 0));
	if (!G.futex)
		arm_read(G.ring_efd, &G.efd_val, OP_RINGS);
	arm_read(G.timer_fd, &G.timer_val, OP_TIMER);
	logmsg(LOG_INFO, "listening on %s", G.bound);
	notify_ready(NULL);

	/* loop */
	int64_t stop_deadline = 0;
	for (;;) {
		frames_reserve();
		bool more = drain_inputs();
		flush_dirty();
		arm_accept();
		if (G.stopping && !stop_deadline) {
			/* finish: tell every WebSocket, then give them a moment */
			stop_deadline = G.now + NS;
			close(G.lfd);
			for (int i = 0; i < G.nslots; i++) {
				struct client *c = &G.cl[i];
				if (c->st == C_WS)
					ws_close(c, WSLAY_CODE_GOING_AWAY, "server stopping");
				else if (c->st == C_HTTP)
					shut(c);
			}
			flush_dirty();
		}
		if (stop_deadline && (G.nconn == 0 || G.now > stop_deadline))
			break;
		if (!more && G.futex)
			more = arm_futexes();
		else if (!more)
			arm_watchers();
		int64_t wait = more ? 0 : notify_wait_ns(stop_deadline ? NS / 20 : -1);
		struct io_uring_cqe *cqe;
		if (wait < 0) {
			rc = io_uring_submit_and_wait(&G.ring, 1);
		} else {
			struct __kernel_timespec ts = {wait / NS, wait % NS};
			rc = io_uring_submit_and_wait_timeout(&G.ring, &cqe, 1, &ts, NULL);
		}
		if (rc < 0 && rc != -EINTR && rc != -ETIME)
			die(1, "io_uring: %s", strerror(-rc));
		G.now = mono_ns();
		unsigned head, n = 0;
		io_uring_for_each_cqe(&G.ring, head, cqe)
		{
			on_completion(cqe);
			n++;
		}
		io_uring_cq_advance(&G.ring, n);
		notify_watchdog();
	}

	/* finish */
	notify_stopping();
	for (int i = 0; i < G.nin && !G.futex; i++) {
		atomic_store_explicit(&G.w[i].stop, true, memory_order_release);
		atomic_fetch_add_explicit(&G.w[i].ctl, 1, memory_order_release);
		shm_futex_wake(&G.w[i].ctl);
		pthread_join(G.w[i].th, NULL);
	}
	io_uring_queue_exit(&G.ring);
	inputs_close(&G.in);
	for (int i = 0; i < G.nin; i++)
		ring_close(&G.rings[i]);
	lvc_close(&G.lvc);
	store_close(&G.db);
	codec_free(&G.codec);
	counters_close(&G.cnt);
	wsframe_pool_free(&G.pool); /* the clients' queues are gone with the process */
	return 0;
}

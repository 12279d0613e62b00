/* mdb-watch - turn appends to Sierra Chart .scid and .dly/.csv files, and
 * new versions of JSON snapshot files, into records.
 *
 * The kernel tells us what changed (inotify on each watched directory) and
 * io_uring does the waiting and the reads: one io_uring_wait_cqe() covers
 * the inotify fd (polled), the stop signal's eventfd and file reads, so an idle
 * watcher sleeps in the kernel and uses no CPU, with no timer armed unless
 * a deferred state save (--state-interval) or the systemd watchdog is due.
 * --spin trades CPU for latency: after events it polls the completion
 * queue for a while before it sleeps. Every event in one inotify
 * read only marks its file dirty; the dirty files are then read once each,
 * from their saved offset, complete 40-byte records only (a partial record
 * waits for its rest). A .dly/.csv file gives a bar per complete line (a
 * partial last line waits; a bad line is logged with its line number and
 * offset, counted, and skipped). A .json snapshot is read whole when it is
 * renamed into place (or closed after writing) and gives, per symbol, a tick
 * with only the fields that changed since the version before.
 *
 * Exactly once across kill -9. The state file holds, per file, its inode and
 * the offset up to which its records were published, and the position of
 * the output ring at that moment; it is replaced (temp file + rename) after
 * each chunk is published, never before. A crash between publishing and
 * saving would repeat that chunk, so every record also carries "fid" (a hash
 * of the file's path and inode) and "off" (the file offset just past it).
 * A restarted watcher reads its output ring from the saved position to its
 * end, as an observer, and takes each fid's last off from there: what was
 * published wins over what was saved. Without a ring output (stdout,
 * ZeroMQ) there is nothing to read back, and a crash in that window repeats
 * at most one chunk. A snapshot's "off" is its seq and the symbol's place in
 * it (see SNAP_DONE); "fid" hashes only its path, as every version is a new
 * inode.
 *
 * A snapshot's fields are sent only when they change, across restarts too:
 * the values downstream holds (the base of the next delta) are saved next to
 * the state file (STATE.snap-FID, snapshot text) just before each state save,
 * and a restarted watcher takes that file plus the snapshot records it reads
 * back from its output ring as its base. A record only sets values, so one
 * applied twice (saved, then read back) changes nothing.
 */
#include "cli.h"
#include "clock.h"
#include "counters.h"
#include "dly.h"
#include "endpoint.h"
#include "log.h"
#include "notify.h"
#include "ring.h"
#include "scid.h"
#include "snapshot.h"
#include "symmap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <limits.h>
#include <linux/magic.h>
#include <msgpack.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define WATCH_MAX_DIRS	  64
#define WATCH_MAX_FILES	  1024
#define WATCH_CHUNK	  (1u << 20) /* bytes of .scid read (and published) per state save */
#define WATCH_STATE_MAGIC "mdb-watch-state 1"

enum {
	OPT_STATE = CLI_OPT_FIRST_TOOL,
	OPT_STATE_IV,
	OPT_SYMBOLS,
	OPT_BAR_IV,
	OPT_RING_SIZE,
	OPT_SPIN,
};

enum { TAG_INOTIFY = 1, TAG_STOP, TAG_READ };

/* What a file holds, by its name's ending. */
enum wkind {
	K_NONE = 0,
	K_SCID, /* .scid: 40-byte records */
	K_DLY,	/* .dly, .csv: Text/CSV lines */
	K_SNAP, /* .json: a snapshot, replaced whole */
};

/* A snapshot file's offset packs the snapshot's seq and how many of its
 * symbols were published: off = seq << 16 | n, n = SNAP_DONE when all. */
#define SNAP_DONE 0xffffu
#define LAST_MAX  SCID_RECORD_SIZE /* bytes kept from before off */

struct wdir {
	char path[PATH_MAX]; /* absolute */
	int wd;
	bool all; /* every *.scid in it, not only the files named */
};

struct wfile {
	bool used;
	bool named;		 /* given on the command line: kept when deleted */
	int dir;		 /* index in dirs[] */
	char name[NAME_MAX + 1]; /* within the directory */
	char path[PATH_MAX];
	char sym[MDB_SYM_MAX];
	int fd; /* -1: not open */
	ino_t ino;
	uint32_t fid; /* hash of path and inode, in every record as "fid" */
	enum wkind kind;
	uint64_t off; /* next byte to read; 0: the header is not checked yet
			 (K_SNAP: seq and symbols done, see SNAP_DONE) */
	bool bad;     /* bad header: ignored until it shrinks or is replaced */
	bool dirty;
	int last_len;		/* bytes in last: 0 (unknown) .. LAST_MAX */
	uint8_t last[LAST_MAX]; /* the bytes before off, to spot a rewrite */
	struct dly_header hdr;	/* K_DLY: the columns */
	bool hdr_ok;		/* ... hdr is read */
	bool skip_line;		/* ... skipping the rest of an overlong line */
	long long lineno;	/* ... the line number before off; < 0: unknown */
	struct snap *prev;	/* K_SNAP: the values downstream holds (NULL: none) */
	bool prev_dirty;	/* ... changed since they were last saved */
};

/* A saved or recovered offset, by fid. */
struct saved {
	uint32_t fid;
	uint64_t off;
	char path[PATH_MAX];
	bool from_ring;
	struct snap *base; /* a snapshot's saved values, with the ring's records */
	bool base_loaded;  /* ... base is read (NULL then: none saved) */
	int last_len;
	uint8_t last[LAST_MAX]; /* the bytes before off, as saved */
};

static struct {
	struct io_uring ring;
	int ino_fd, stop_fd;
	struct wdir dirs[WATCH_MAX_DIRS];
	int ndirs;
	struct wfile files[WATCH_MAX_FILES];
	int nfiles;
	mdb_symmap *symmap;
	int32_t bar_iv;
	mdb_outputs *out;
	mdb_ring *oring; /* the first output ring, for its position */
	const char *oring_name;
	const char *state_path;
	bool state_sync;       /* the state file is on a disk: fdatasync it */
	bool published;	       /* records published since the last state save */
	int64_t save_every_ns; /* --state-interval: at most one state save per this */
	int64_t saved_ns;      /* mono_ns of the last state save */
	uint64_t saved_pos;    /* the output ring's position then */
	bool ino_ready;	       /* the inotify fd polled readable: its events wait */
	bool ino_armed;	       /* its multishot poll is armed (no re-arm per event) */
	int ino_res;
	int64_t spin_ns; /* --spin: poll the completion queue this long before sleeping */
	bool stop;
	uint8_t *rbuf;	   /* file read buffer, WATCH_CHUNK + one record */
	char *sbuf;	   /* a snapshot file, SNAP_MAX_BYTES (made on first use) */
	struct snap *scur; /* the snapshot being read (made on first use) */
	uint32_t chunk;	   /* bytes per read: a multiple of the record size */
	_Alignas(struct inotify_event) char evbuf[64 * 1024];
	uint8_t enc[MDB_REC_MAX_BYTES];
	struct saved *saved;
	int nsaved;
	mdb_counter *c_out, *c_bad, *c_err, *c_files, *c_last;
} W;

static _Noreturn void usage(FILE *out)
{
	fprintf(out,
		"usage: mdb-watch [-o ENDPOINT]... [--name NAME] [--json] [--state FILE]\n"
		"                 [--state-interval DURATION] [--symbols FILE] [--bar-interval "
		"SECONDS] [--ring-size SIZE]\n"
		"                 [--spin DURATION] PATH...\n"
		"Publish what is appended to Sierra Chart .scid files and .dly/.csv text files,\n"
		"and the fields that change in .json snapshot files. PATH is a file or a\n"
		"directory (every *.scid, *.dly, *.csv and *.json in it, including files that\n"
		"appear later).\n"
		"  -o, --output ENDPOINT   write to ENDPOINT (repeatable; default -)\n"
		"      --name NAME         instance name for counters (default mdb-watch)\n"
		"      --json              stdout carries JSON lines, not MessagePack\n"
		"      --state FILE        keep each file's offset in FILE (exactly once across "
		"restarts)\n"
		"      --state-interval DURATION  save FILE at most this often (default 50ms)\n"
		"      --symbols FILE      map file names to symbols (lines: NAME SYMBOL)\n"
		"      --bar-interval SECONDS  iv of .scid bars and of text lines with a Time "
		"(default 1)\n"
		"      --ring-size SIZE    capacity of rings this creates (default 64M)\n"
		"      --spin DURATION     after events, poll for more this long before sleeping\n"
		"                          (busy meanwhile; default 0: sleep at once)\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n" CLI_USAGE_ENDPOINTS);
	exit(out == stdout ? 0 : 2);
}

static uint32_t file_fid(const char *path, ino_t ino)
{
	uint32_t h = 2166136261u;
	for (const char *p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)((uint64_t)ino >> (8 * i))) * 16777619u;
	return h;
}

static bool ends_with(const char *name, const char *ext)
{
	size_t n = strlen(name), e = strlen(ext);
	return n > e && strcmp(name + n - e, ext) == 0;
}

static enum wkind file_kind(const char *name)
{
	return ends_with(name, ".scid")				    ? K_SCID
	       : ends_with(name, ".dly") || ends_with(name, ".csv") ? K_DLY
	       : ends_with(name, ".json")			    ? K_SNAP
								    : K_NONE;
}

/* ---- io_uring: every wait goes through here ---- */

/* A poll, not a read: io_uring cannot read an inotify fd without handing
 * the read to a kernel worker thread, which costs a wake-up and about
 * 100 us per event; a poll completes from the inotify wait queue, and the
 * events are then read with a non-blocking read(). A multishot poll stays
 * armed: it completes at every wake-up of that queue without a new SQE
 * (re-armed only when a completion says it ended, without IORING_CQE_F_MORE). */
static void arm_inotify(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&W.ring);
	io_uring_prep_poll_multishot(sqe, W.ino_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, TAG_INOTIFY);
	W.ino_armed = true;
}

static void arm_stop(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&W.ring);
	io_uring_prep_poll_add(sqe, W.stop_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, TAG_STOP);
}

/* Note a completion that is not a file read. */
static void note_cqe(uint64_t tag, int res, unsigned flags)
{
	if (tag == TAG_INOTIFY) {
		W.ino_ready = true;
		W.ino_res = res < 0 ? res : 0;
		if (!(flags & IORING_CQE_F_MORE))
			W.ino_armed = false;
	} else if (tag == TAG_STOP) {
		W.stop = true;
	}
}

/* Consume cqe and note it; returns its tag, its result in *res. */
static uint64_t take_cqe(struct io_uring_cqe *cqe, int *res)
{
	uint64_t tag = io_uring_cqe_get_data64(cqe);
	unsigned flags = cqe->flags;
	*res = cqe->res;
	io_uring_cqe_seen(&W.ring, cqe);
	note_cqe(tag, *res, flags);
	return tag;
}

/* Wait up to timeout_ns (< 0: forever) for one completion (any) and note
 * it; returns its tag and result, or 0 when the time ran out. */
static uint64_t wait_one(int *res, int64_t timeout_ns)
{
	struct io_uring_cqe *cqe = NULL;
	int rc;
	if (timeout_ns >= 0) {
		struct __kernel_timespec ts = {.tv_sec = timeout_ns / 1000000000,
					       .tv_nsec = timeout_ns % 1000000000};
		while ((rc = io_uring_submit_and_wait_timeout(&W.ring, &cqe, 1, &ts, NULL)) ==
		       -EINTR)
			;
		if (rc == -ETIME)
			return 0;
		if (rc < 0)
			die(1, "io_uring: %s", strerror(-rc));
		if (!cqe)
			return 0; /* only liburing's own timeout completed */
	} else {
		while ((rc = io_uring_submit_and_wait(&W.ring, 1)) == -EINTR)
			;
		if (rc < 0 && rc != -EBUSY)
			die(1, "io_uring: %s", strerror(-rc));
		while ((rc = io_uring_wait_cqe(&W.ring, &cqe)) == -EINTR)
			;
		if (rc < 0)
			die(1, "io_uring: %s", strerror(-rc));
	}
	return take_cqe(cqe, res);
}

/* --spin: poll the completion queue without sleeping (no syscall while it
 * is empty) for up to W.spin_ns; returns a completion's tag as wait_one()
 * does, or 0 when none came. */
static uint64_t spin_one(int *res)
{
	if (W.spin_ns <= 0)
		return 0;
	io_uring_submit(&W.ring); /* a re-arm, if one waits */
	int64_t until = mono_ns() + W.spin_ns;
	struct io_uring_cqe *cqe;
	do {
		if (io_uring_peek_cqe(&W.ring, &cqe) == 0)
			return take_cqe(cqe, res);
	} while (mono_ns() < until);
	return 0;
}

/* pread through io_uring. Returns bytes read or -errno. */
static ssize_t uring_pread(int fd, void *buf, size_t len, uint64_t off)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&W.ring);
	if (!sqe) {
		io_uring_submit(&W.ring);
		sqe = io_uring_get_sqe(&W.ring);
	}
	io_uring_prep_read(sqe, fd, buf, (unsigned)len, off);
	io_uring_sqe_set_data64(sqe, TAG_READ);
	int res;
	while (wait_one(&res, -1) != TAG_READ)
		;
	return res;
}

/* ---- the state file ---- */

/* The file that keeps snapshot fid's base: STATE.snap-FID. */
static void base_path(char *buf, size_t size, uint32_t fid)
{
	snprintf(buf, size, "%s.snap-%08x", W.state_path, fid);
}

/* The saved base of snapshot fid; NULL when there is none (or it is bad:
 * logged, and the next version is then sent in full). */
static struct snap *base_load(uint32_t fid)
{
	char path[PATH_MAX + 16], why[160];
	base_path(path, sizeof path, fid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (!W.sbuf && !(W.sbuf = malloc(SNAP_MAX_BYTES)))
		die(1, "out of memory");
	struct snap *sn = malloc(sizeof *sn);
	if (!sn)
		die(1, "out of memory");
	ssize_t n = read(fd, W.sbuf, SNAP_MAX_BYTES);
	close(fd);
	if (n < 0 || snap_parse(W.sbuf, (size_t)n, sn, why, sizeof why) < 0) {
		logmsg(LOG_WARNING, "%s: %s (its snapshot is sent in full)", path,
		       n < 0 ? strerror(errno) : why);
		free(sn);
		return NULL;
	}
	return sn;
}

/* Save wf's base (before the state that counts on it). */
static void base_save(struct wfile *wf)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 24];
	base_path(path, sizeof path, wf->fid);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if (!W.sbuf && !(W.sbuf = malloc(SNAP_MAX_BYTES)))
		die(1, "out of memory");
	int n = snap_format(wf->prev, W.sbuf, SNAP_MAX_BYTES), rc = 0;
	int fd = n < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (n < 0)
		rc = n;
	else if (fd < 0 || write(fd, W.sbuf, (size_t)n) != n || (W.state_sync && fdatasync(fd) < 0))
		rc = -errno;
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) < 0)
		rc = -errno;
	if (rc) {
		counter_add(W.c_err, 1);
		logmsg(LOG_ERR, "%s: %s", path, strerror(-rc ? -rc : EIO));
		unlink(tmp);
		return;
	}
	wf->prev_dirty = false;
}

/* Set field key of symbol s (quoted at ts) to val in sn (the symbol and the
 * field are added when new; one too many is dropped). */
static void base_set(struct snap *sn, const char *s, size_t slen, int64_t ts, const char *key,
		     size_t klen, double val)
{
	char sym[MDB_SYM_MAX], k[SNAP_KEY_MAX];
	if (slen >= sizeof sym || klen >= sizeof k)
		return;
	memcpy(sym, s, slen);
	sym[slen] = '\0';
	memcpy(k, key, klen);
	k[klen] = '\0';
	struct snap_quote *q = (struct snap_quote *)snap_find(sn, sym);
	if (!q) {
		if (sn->n == SNAP_MAX_SYMBOLS)
			return;
		q = &sn->q[sn->n++];
		memset(q, 0, sizeof *q);
		memcpy(q->s, sym, slen + 1);
	}
	if (ts > 0)
		q->ts = ts; /* a saved base must parse: every quote has a ts */
	int i = 0;
	while (i < q->nf && strcmp(q->key[i], k) != 0)
		i++;
	if (i == q->nf) {
		if (q->nf == SNAP_MAX_FIELDS)
			return;
		memcpy(q->key[q->nf++], k, klen + 1);
	}
	q->val[i] = val;
}

/* Whether msgpack string o is z. */
static bool str_is(const msgpack_object *o, const char *z)
{
	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(z) &&
	       memcmp(o->via.str.ptr, z, o->via.str.size) == 0;
}

/* Apply a tick read back from the ring (data[0..len)) to the base of its
 * fid when it is a snapshot's (src "snap", as snap_encode_delta() writes
 * it): its fields are the values downstream now holds. */
static void base_apply(struct saved *sv, const void *data, size_t len)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, data, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_MAP) {
		static const char *const meta[] = {"t", "s", "ts", "n", "src", "off", "fid"};
		const msgpack_object_map *m = &u.data.via.map;
		const msgpack_object_str *sym = NULL;
		bool snap = false;
		int64_t ts = 0;
		for (uint32_t i = 0; i < m->size; i++) {
			if (str_is(&m->ptr[i].key, "s") && m->ptr[i].val.type == MSGPACK_OBJECT_STR)
				sym = &m->ptr[i].val.via.str;
			if (str_is(&m->ptr[i].key, "ts") &&
			    m->ptr[i].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				ts = (int64_t)m->ptr[i].val.via.u64;
			snap |= str_is(&m->ptr[i].key, "src") && str_is(&m->ptr[i].val, "snap");
		}
		if (!snap)
			sym = NULL;
		if (sym && !sv->base_loaded) {
			sv->base = base_load(sv->fid);
			sv->base_loaded = true;
		}
		if (sym && !sv->base && !(sv->base = calloc(1, sizeof *sv->base)))
			die(1, "out of memory");
		for (uint32_t i = 0; sym && i < m->size; i++) {
			const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
			bool is_meta = k->type != MSGPACK_OBJECT_STR;
			for (size_t j = 0; j < sizeof meta / sizeof *meta; j++)
				is_meta |= str_is(k, meta[j]);
			double x;
			if (is_meta)
				continue;
			if (v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32)
				x = v->via.f64;
			else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				x = (double)v->via.u64;
			else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
				x = (double)v->via.i64;
			else
				continue;
			base_set(sv->base, sym->ptr, sym->size, ts, k->via.str.ptr, k->via.str.size,
				 x);
		}
	}
	msgpack_unpacked_destroy(&u);
}

static void state_save(void)
{
	if (!W.state_path)
		return;
	char tmp[PATH_MAX + 16];
	snprintf(tmp, sizeof tmp, "%s.tmp", W.state_path);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		counter_add(W.c_err, 1);
		logmsg(LOG_ERR, "%s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "%s\n", WATCH_STATE_MAGIC);
	if (W.oring)
		fprintf(f, "ring %s %llu\n", W.oring_name,
			(unsigned long long)ring_position(W.oring));
	for (int i = 0; i < W.nfiles; i++) {
		const struct wfile *wf = &W.files[i];
		if (!wf->used || wf->fd < 0 || wf->bad)
			continue; /* a bad file is checked anew by the next run */
		char hex[2 * LAST_MAX + 1] = "-";
		for (int k = 0; k < wf->last_len; k++)
			sprintf(hex + 2 * k, "%02x", wf->last[k]);
		fprintf(f, "file %u %llu %llu %s %s\n", wf->fid, (unsigned long long)wf->off,
			(unsigned long long)wf->ino, hex, wf->path);
	}
	int rc = fflush(f) == 0 && (!W.state_sync || fdatasync(fileno(f)) == 0) ? 0 : -errno;
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, W.state_path) < 0)
		rc = -errno;
	if (rc) {
		counter_add(W.c_err, 1);
		logmsg(LOG_ERR, "%s: %s", W.state_path, strerror(-rc));
		unlink(tmp);
	}
	W.published = false;
}

static struct saved *saved_find(uint32_t fid)
{
	for (int i = 0; i < W.nsaved; i++)
		if (W.saved[i].fid == fid)
			return &W.saved[i];
	return NULL;
}

static struct saved *saved_add(uint32_t fid)
{
	struct saved *s = saved_find(fid);
	if (s)
		return s;
	if (W.nsaved >= WATCH_MAX_FILES * 2)
		return NULL;
	s = &W.saved[W.nsaved++];
	memset(s, 0, sizeof *s);
	s->fid = fid;
	return s;
}

/* Read the state file. Returns the ring position it was saved at, with the
 * ring's name in ring_name ("" when it names none). */
static uint64_t state_load(char *ring_name, size_t ring_name_size)
{
	ring_name[0] = '\0'; /* no ring line (yet) */
	FILE *f = fopen(W.state_path, "r");
	if (!f) {
		if (errno != ENOENT)
			die(1, "%s: %s", W.state_path, strerror(errno));
		return 0;
	}
	char line[PATH_MAX + 128];
	uint64_t pos = 0;
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		unsigned fid;
		unsigned long long off, ino, p;
		int n = 0;
		char name[RING_NAME_MAX], hex[2 * LAST_MAX + 1];
		if (lineno == 1) {
			if (strcmp(line, WATCH_STATE_MAGIC) != 0)
				die(1, "%s: line 1: not an mdb-watch state file", W.state_path);
		} else if (sscanf(line, "ring %47s %llu", name, &p) == 2) {
			snprintf(ring_name, ring_name_size, "%s", name);
			pos = p;
		} else if (sscanf(line, "file %u %llu %llu %80s %n", &fid, &off, &ino, hex, &n) ==
			       4 &&
			   n) {
			struct saved *s = saved_add(fid);
			if (s) {
				s->off = off;
				snprintf(s->path, sizeof s->path, "%s", line + n);
				size_t hl = strlen(hex);
				s->last_len = hl % 2 == 0 && hl <= 2 * LAST_MAX ? (int)hl / 2 : 0;
				for (int k = 0; k < s->last_len; k++) {
					unsigned b;
					if (sscanf(hex + 2 * k, "%2x", &b) != 1)
						s->last_len = 0;
					s->last[k] = (uint8_t)b;
				}
			}
		} else {
			die(1, "%s: line %d: cannot parse '%s'", W.state_path, lineno, line);
		}
	}
	fclose(f);
	return pos;
}

/* The uint values of keys "fid" and "off" of one record; false if absent. */
static bool record_fid_off(const void *data, size_t len, uint32_t *fid, uint64_t *off)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	bool got_fid = false, got_off = false;
	if (msgpack_unpack_next(&u, data, len, NULL) == MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_MAP) {
		const msgpack_object_map *m = &u.data.via.map;
		for (uint32_t i = 0; i < m->size; i++) {
			const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
			if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 3 ||
			    v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
				continue;
			if (memcmp(k->via.str.ptr, "fid", 3) == 0) {
				*fid = (uint32_t)v->via.u64;
				got_fid = true;
			} else if (memcmp(k->via.str.ptr, "off", 3) == 0) {
				*off = v->via.u64;
				got_off = true;
			}
		}
	}
	msgpack_unpacked_destroy(&u);
	return got_fid && got_off;
}

/* Read what this watcher published after its last state save back from the
 * output ring: each fid's last "off" there supersedes the saved one, and a
 * snapshot's records update its saved base. */
static void recover_from_ring(uint64_t from)
{
	uint64_t end = ring_position(W.oring), oldest = ring_oldest(W.oring);
	if (end < from) {
		logmsg(LOG_WARNING,
		       "ring:%s is behind the state file (made anew?): using the state file",
		       W.oring_name);
		return;
	}
	if (end == from)
		return;
	if (from < oldest) {
		logmsg(LOG_WARNING, "ring:%s has overwritten records published after the last save",
		       W.oring_name);
		from = oldest;
	}
	char name[RING_NAME_MAX];
	snprintf(name, sizeof name, "mdb-watch.recover.%d", (int)getpid());
	int err;
	mdb_ring_consumer *c =
	    ring_consumer_open(W.oring, name, RING_OBSERVER, RING_FROM_END, 0, &err);
	if (!c)
		die(1, "ring:%s: cannot read it back: %s", W.oring_name, strerror(-err));
	ring_seek(c, from);
	struct ring_rec rec;
	int rc, n = 0;
	while (ring_consumer_position(c) < end && (rc = ring_next(c, &rec)) != 0) {
		if (rc == RING_LAPPED) {
			logmsg(LOG_WARNING, "ring:%s: lapped while reading it back", W.oring_name);
			continue;
		}
		uint32_t fid = 0;
		uint64_t off = 0;
		if (!record_fid_off(rec.data, rec.len, &fid, &off))
			continue;
		struct saved *s = saved_add(fid);
		if (s) {
			s->off = off;
			s->from_ring = true;
			s->last_len = 0; /* the ring has the record, not its bytes */
			if (rec.type == MDB_REC_TICK)
				base_apply(s, rec.data, rec.len);
			n++;
		}
	}
	ring_consumer_close(&c);
	if (n)
		logmsg(LOG_INFO, "ring:%s: %d records published after the last state save",
		       W.oring_name, n);
}

/* ---- files ---- */

static struct wfile *file_find(int dir, const char *name)
{
	for (int i = 0; i < W.nfiles; i++)
		if (W.files[i].used && W.files[i].dir == dir && strcmp(W.files[i].name, name) == 0)
			return &W.files[i];
	return NULL;
}

static struct wfile *file_add(int dir, const char *name_in, bool named)
{
	char name[NAME_MAX + 1]; /* name_in may be a slot's name, about to be cleared */
	snprintf(name, sizeof name, "%s", name_in);
	struct wfile *wf = file_find(dir, name);
	if (wf)
		return wf;
	for (int i = 0; i <= W.nfiles && i < WATCH_MAX_FILES; i++) {
		if (i < W.nfiles && W.files[i].used)
			continue;
		wf = &W.files[i];
		if (i == W.nfiles)
			W.nfiles++;
		free(wf->prev);
		memset(wf, 0, sizeof *wf);
		wf->used = true;
		wf->kind = file_kind(name);
		wf->named = named;
		wf->dir = dir;
		wf->fd = -1;
		snprintf(wf->name, sizeof wf->name, "%s", name);
		char path[PATH_MAX];
		if (snprintf(path, sizeof path, "%s/%s", W.dirs[dir].path, name) >=
		    (int)sizeof path) {
			wf->used = false;
			logmsg(LOG_ERR, "%s/%s: path too long", W.dirs[dir].path, name);
			return NULL;
		}
		memcpy(wf->path, path, sizeof path);
		char base[NAME_MAX + 1];
		snprintf(base, sizeof base, "%s", name);
		char *dot = strrchr(base, '.');
		if (dot && wf->kind != K_NONE)
			*dot = '\0';
		const char *sym = symmap_lookup(W.symmap, base);
		if (!sym)
			sym = base;
		if (strlen(sym) >= sizeof wf->sym) {
			logmsg(LOG_ERR, "%s: symbol '%s' too long (map it with --symbols)",
			       wf->path, sym);
			wf->used = false;
			return NULL;
		}
		memcpy(wf->sym, sym, strlen(sym) + 1);
		return wf;
	}
	logmsg(LOG_ERR, "%s/%s: more than %d files", W.dirs[dir].path, name, WATCH_MAX_FILES);
	return NULL;
}

static void file_close(struct wfile *wf)
{
	if (wf->fd >= 0) {
		close(wf->fd);
		wf->fd = -1;
		counter_add(W.c_files, (uint64_t)-1);
	}
	wf->dirty = false;
	if (!wf->named) {
		wf->used = false;
		free(wf->prev);
		wf->prev = NULL;
	}
}

/* Open the file now at wf->path. resume: take the offset from the state
 * file or the output ring (start-up); otherwise a new file starts at 0. */
static void file_open(struct wfile *wf, bool resume)
{
	int fd = open(wf->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			logmsg(LOG_ERR, "%s: %s", wf->path, strerror(errno));
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	wf->fd = fd;
	counter_add(W.c_files, 1);
	wf->ino = st.st_ino;
	/* a snapshot is a new inode at every version: the path is its identity */
	wf->fid = file_fid(wf->path, wf->kind == K_SNAP ? 0 : st.st_ino);
	wf->bad = false;
	wf->last_len = 0;
	wf->hdr_ok = false;
	wf->skip_line = false;
	wf->lineno = 0;
	wf->dirty = true;
	struct saved *s = resume ? saved_find(wf->fid) : NULL;
	if (wf->kind == K_SNAP) {
		/* a replaced snapshot keeps its offset (seq) and its previous
		 * values; at start-up the saved seq says what was published */
		if (s) {
			wf->off = s->off;
			logmsg(LOG_INFO, "%s: resuming after seq %llu, symbol %llu (%s)", wf->path,
			       (unsigned long long)(s->off >> 16),
			       (unsigned long long)(s->off & SNAP_DONE),
			       s->from_ring ? "from the output ring" : "from the state file");
		}
		if (s && !wf->prev && W.state_path) {
			wf->prev = s->base_loaded ? s->base : base_load(wf->fid);
			/* records read back from the ring joined it: save it with
			 * the next state, which will not read them back again */
			wf->prev_dirty = wf->prev && s->from_ring;
			s->base = NULL;
			s->base_loaded = true;
		}
		return;
	}
	wf->off = 0;
	if (wf->kind == K_DLY && s && s->off > 0) {
		if (s->off > (uint64_t)st.st_size) {
			logmsg(LOG_WARNING,
			       "%s: saved offset %llu is past its end: reading it from the start",
			       wf->path, (unsigned long long)s->off);
			return;
		}
		wf->off = s->off;
		wf->lineno = -1;
		wf->last_len = s->last_len;
		memcpy(wf->last, s->last, sizeof wf->last);
		logmsg(LOG_INFO, "%s: resuming at offset %llu (%s)", wf->path,
		       (unsigned long long)wf->off,
		       s->from_ring ? "from the output ring" : "from the state file");
		return;
	}
	if (!s || s->off < SCID_HEADER_SIZE)
		return;
	if ((s->off - SCID_HEADER_SIZE) % SCID_RECORD_SIZE || s->off > (uint64_t)st.st_size) {
		logmsg(LOG_WARNING,
		       "%s: saved offset %llu does not fit the file: reading it from the start",
		       wf->path, (unsigned long long)s->off);
		return;
	}
	/* the record before the offset, as this watcher saw it, shows a
	 * rewrite made while it was not running */
	wf->off = s->off;
	if (s->last_len == SCID_RECORD_SIZE) {
		memcpy(wf->last, s->last, SCID_RECORD_SIZE);
		wf->last_len = SCID_RECORD_SIZE;
	}
	logmsg(LOG_INFO, "%s: resuming at offset %llu (%s)", wf->path, (unsigned long long)wf->off,
	       s->from_ring ? "from the output ring" : "from the state file");
}

/* Publish one encoded record, waiting out a held-back ring in slices so a
 * stop signal is seen. Returns false when stopping before it was written. */
static bool publish(const uint8_t *data, int len, uint32_t type)
{
	struct mdb_msg m = {.type = type, .len = (uint32_t)len, .data = data};
	int rc;
	while ((rc = outputs_write(W.out, &m)) == -EINTR || rc == -ETIMEDOUT)
		if (cli_stopping())
			return false;
	if (rc == -EPIPE) {
		W.stop = true;
		return false;
	}
	if (rc < 0) {
		counter_add(W.c_err, 1);
		logmsg(LOG_WARNING, "write: %s", strerror(-rc));
	}
	counter_add(W.c_out, 1);
	W.published = true;
	return true;
}

/* Push out what was published, then (and only then) save the offsets. */
static void commit_now(void)
{
	if (!W.published)
		return;
	outputs_flush(W.out);
	/* the bases the saved seqs count on, before the state */
	for (int i = 0; W.state_path && i < W.nfiles; i++)
		if (W.files[i].used && W.files[i].kind == K_SNAP && W.files[i].prev_dirty &&
		    W.files[i].prev)
			base_save(&W.files[i]);
	state_save();
	W.published = false; /* saved, or no state file to save it in */
	W.saved_ns = mono_ns();
	W.saved_pos = W.oring ? ring_position(W.oring) : 0;
	counter_set(W.c_last, (uint64_t)wall_ns());
}

/* When the state save is due: now, or once --state-interval has passed
 * since the last one; < 0 when nothing waits to be saved. */
static int64_t save_due(void)
{
	if (!W.published)
		return -1;
	return W.saved_ns + W.save_every_ns;
}

/* After a chunk: push it out now; save the offsets now or, with an output
 * ring, at most every --state-interval (the fdatasync would otherwise be
 * most of a tick's cost). Exactly once still holds: a restart reads the
 * records published after the saved ring position back from the ring, so
 * a save only has to come before the producer could overwrite them (an
 * eighth of the ring forces one). */
static void commit(void)
{
	if (!W.published)
		return;
	if (W.oring && W.state_path && mono_ns() < save_due() &&
	    ring_position(W.oring) - W.saved_pos < ring_capacity(W.oring) / 8) {
		outputs_flush(W.out);
		return;
	}
	commit_now();
}

/* A file now of size bytes, less than it was read up to: read it again
 * from the start (a bad file: from when its header is rewritten). */
static void file_shrank(struct wfile *wf, uint64_t size)
{
	if (!wf->bad)
		logmsg(LOG_INFO, "%s: shrank to %llu bytes: reading it from the start", wf->path,
		       (unsigned long long)size);
	wf->off = 0;
	wf->bad = false;
	wf->last_len = 0;
	wf->hdr_ok = false;
	wf->skip_line = false;
	wf->lineno = 0;
}

/* scid_read()'s look at the file's size: a shrink starts it again, a new
 * file's header is checked, then the complete records past wf->off (from one
 * record back, as scid_read() wants them) are read into W.rbuf. Returns the
 * bytes read, 0 when there is nothing to read (or the file is bad), or
 * -errno (logged). */
static ssize_t scid_read_slow(struct wfile *wf)
{
	struct stat st;
	if (fstat(wf->fd, &st) < 0)
		return 0;
	uint64_t size = (uint64_t)st.st_size;
	if (size < wf->off || (wf->bad && size < SCID_HEADER_SIZE))
		file_shrank(wf, size);
	if (wf->bad)
		return 0;
	if (wf->off == 0) {
		uint8_t h[SCID_HEADER_SIZE];
		if (size < SCID_HEADER_SIZE)
			return 0; /* the header is not all there yet */
		ssize_t n = uring_pread(wf->fd, h, sizeof h, 0);
		if (n != (ssize_t)sizeof h)
			return 0;
		const char *why;
		int at;
		if (scid_header_check(h, &why, &at) < 0) {
			counter_add(W.c_bad, 1);
			logmsg(LOG_ERR,
			       "%s: offset %d: %s; ignoring the file until it is rewritten",
			       wf->path, at, why);
			wf->bad = true;
			wf->off = size; /* shrinking below this means a rewrite */
			return 0;
		}
		wf->off = SCID_HEADER_SIZE;
	}
	if (size < wf->off + SCID_RECORD_SIZE)
		return 0; /* nothing, or only part of a record */
	/* read from one record back, to check it is still the one we
	 * published: a file rewritten in place shows here */
	uint64_t from = wf->off - (uint64_t)wf->last_len;
	uint64_t want = (size - wf->off) / SCID_RECORD_SIZE * SCID_RECORD_SIZE;
	if (want > W.chunk)
		want = W.chunk;
	ssize_t n = uring_pread(wf->fd, W.rbuf, want + (wf->off - from), from);
	if (n < 0) {
		counter_add(W.c_err, 1);
		logmsg(LOG_ERR, "%s: offset %llu: %s", wf->path, (unsigned long long)from,
		       strerror((int)-n));
	}
	return n;
}

/* Read every complete record new in a .scid file, a chunk at a time. */
static void scid_read(struct wfile *wf)
{
	while (wf->fd >= 0 && !W.stop && !cli_stopping()) {
		/* An append, the usual event: read a chunk from one record back
		 * straight away; what comes back says how much is there, so the
		 * fstat (a syscall, a few us here) is left for when nothing new
		 * came (a shrink or a rewrite shows then). Through io_uring, as
		 * every file read here (the issue's design); a plain pread() of
		 * these cached bytes would save about 4 us (bench_watch). */
		uint64_t from = wf->off - (uint64_t)wf->last_len;
		ssize_t n = -1;
		if (wf->off >= SCID_HEADER_SIZE && !wf->bad) {
			n = uring_pread(wf->fd, W.rbuf, W.chunk + (wf->off - from), from);
			ssize_t back = (ssize_t)(wf->off - from);
			if (n >= back + SCID_RECORD_SIZE)
				n = back + (n - back) / SCID_RECORD_SIZE * SCID_RECORD_SIZE;
			else
				n = -1;
		}
		if (n < 0) {
			if ((n = scid_read_slow(wf)) <= 0)
				return;
			from = wf->off - (uint64_t)wf->last_len;
		}
		bool full = (uint64_t)n - (wf->off - from) == W.chunk;
		const uint8_t *p = W.rbuf;
		if (wf->last_len) {
			if (n < SCID_RECORD_SIZE || memcmp(p, wf->last, SCID_RECORD_SIZE) != 0) {
				logmsg(LOG_INFO, "%s: rewritten: reading it from the start",
				       wf->path);
				wf->off = 0;
				wf->last_len = 0;
				continue;
			}
			p += SCID_RECORD_SIZE;
			n -= SCID_RECORD_SIZE;
		}
		for (; n >= SCID_RECORD_SIZE; p += SCID_RECORD_SIZE, n -= SCID_RECORD_SIZE) {
			struct scid_record r;
			enum scid_kind kind;
			const char *why;
			scid_record_load(p, &r);
			int len = scid_encode(&r, wf->sym, W.bar_iv,
					      (int64_t)(wf->off + SCID_RECORD_SIZE), wf->fid, W.enc,
					      sizeof W.enc, &kind, &why);
			if (len < 0) {
				counter_add(W.c_bad, 1);
				logmsg(LOG_ERR, "%s: offset %llu: bad record: %s", wf->path,
				       (unsigned long long)wf->off,
				       len == -EBADMSG ? why : strerror(-len));
			} else if (!publish(W.enc, len,
					    kind == SCID_BAR ? MDB_REC_BAR : MDB_REC_TICK)) {
				break;
			}
			wf->off += SCID_RECORD_SIZE;
		}
		if (p != W.rbuf) { /* keep the last record passed (p moved past it) */
			memcpy(wf->last, p - SCID_RECORD_SIZE, SCID_RECORD_SIZE);
			wf->last_len = SCID_RECORD_SIZE;
		}
		commit();
		if (n >= SCID_RECORD_SIZE)
			return; /* stopping */
		if (!full)
			return; /* all there was: a later append is a new event */
	}
}

/* Log a bad line of a Text/CSV file; the watcher goes on after it. */
static void dly_bad_line(const struct wfile *wf, uint64_t off, const char *why)
{
	counter_add(W.c_bad, 1);
	if (wf->lineno >= 0)
		logmsg(LOG_ERR, "%s: line %lld (offset %llu): %s", wf->path, wf->lineno,
		       (unsigned long long)off, why);
	else
		logmsg(LOG_ERR, "%s: offset %llu: %s", wf->path, (unsigned long long)off, why);
}

/* Read the header line of a Text/CSV file into wf->hdr. Returns its length
 * (the offset of the first data line), 0 when it is not complete yet, or -1
 * when the file is bad (logged; ignored until it shrinks or is replaced). */
static int64_t dly_header(struct wfile *wf, uint64_t size)
{
	size_t want = size < DLY_LINE_MAX + 2 ? (size_t)size : DLY_LINE_MAX + 2;
	ssize_t n = uring_pread(wf->fd, W.rbuf, want, 0);
	if (n <= 0)
		return 0;
	const uint8_t *nl = memchr(W.rbuf, '\n', (size_t)n);
	const char *why = "header line too long";
	if (!nl && (size_t)n < DLY_LINE_MAX + 2)
		return 0; /* the header is not all there yet */
	if (nl &&
	    dly_header_parse((const char *)W.rbuf, (size_t)(nl - W.rbuf), &wf->hdr, &why) == 0) {
		wf->hdr_ok = true;
		return nl - W.rbuf + 1;
	}
	counter_add(W.c_bad, 1);
	logmsg(LOG_ERR, "%s: line 1 (offset 0): %s; ignoring the file until it is rewritten",
	       wf->path, why);
	wf->bad = true;
	wf->off = size; /* shrinking below this means a rewrite */
	return -1;
}

/* Read every complete line new in a Text/CSV file: one bar record each; a
 * partial last line waits for its end, a bad line is logged and counted. */
static void dly_read(struct wfile *wf)
{
	while (wf->fd >= 0 && !W.stop && !cli_stopping()) {
		struct stat st;
		if (fstat(wf->fd, &st) < 0)
			return;
		uint64_t size = (uint64_t)st.st_size;
		if (size < wf->off)
			file_shrank(wf, size);
		if (wf->bad)
			return;
		if (!wf->hdr_ok) {
			int64_t h = dly_header(wf, size);
			if (h <= 0)
				return;
			if (wf->off == 0) {
				wf->off = (uint64_t)h;
				wf->lineno = 1;
				wf->last_len = h < LAST_MAX ? (int)h : LAST_MAX;
				memcpy(wf->last, W.rbuf + h - wf->last_len, (size_t)wf->last_len);
			}
		}
		if (size <= wf->off)
			return;
		uint64_t from = wf->off - (uint64_t)wf->last_len;
		uint64_t want = size - wf->off;
		if (want > W.chunk)
			want = W.chunk;
		ssize_t n = uring_pread(wf->fd, W.rbuf, want + (uint64_t)wf->last_len, from);
		if (n < 0) {
			counter_add(W.c_err, 1);
			logmsg(LOG_ERR, "%s: offset %llu: %s", wf->path, (unsigned long long)from,
			       strerror((int)-n));
			return;
		}
		if (n < wf->last_len || memcmp(W.rbuf, wf->last, (size_t)wf->last_len) != 0) {
			logmsg(LOG_INFO, "%s: rewritten: reading it from the start", wf->path);
			wf->off = 0;
			wf->last_len = 0;
			wf->hdr_ok = false;
			wf->lineno = 0;
			continue;
		}
		const char *p = (const char *)W.rbuf + wf->last_len;
		const char *end = (const char *)W.rbuf + n;
		uint64_t off0 = wf->off;
		const char *nl;
		while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
			size_t len = (size_t)(nl - p) + 1;
			uint64_t at = wf->off;
			if (wf->lineno >= 0)
				wf->lineno++;
			if (wf->skip_line) {
				wf->skip_line = false; /* the end of a line reported already */
			} else if (len > 2 || (len == 2 && *p != '\r')) {
				struct dly_bar b;
				const char *why;
				int rc = dly_line_parse(&wf->hdr, p, len, &b, &why);
				if (rc == 0)
					rc = dly_encode(&b, wf->sym,
							wf->hdr.has_time ? W.bar_iv : 86400,
							(int64_t)(at + len), wf->fid, W.enc,
							sizeof W.enc, &why);
				if (rc < 0)
					dly_bad_line(wf, at, rc == -EBADMSG ? why : strerror(-rc));
				else if (!publish(W.enc, rc, MDB_REC_BAR))
					break;
			}
			wf->off += len;
			p = nl + 1;
		}
		if (p < end && end - p > DLY_LINE_MAX && !W.stop && !cli_stopping()) {
			/* no line end in sight: report it, skip to the next one */
			if (!wf->skip_line) {
				if (wf->lineno >= 0)
					wf->lineno++;
				dly_bad_line(wf, wf->off, "line too long");
			}
			wf->skip_line = true;
			wf->off += (uint64_t)(end - p);
		}
		if (wf->off != off0) {
			W.published = true; /* bad lines too: the state moves past them */
			/* the bytes before the new off are in the buffer: off - from
			 * covers the old last_len and at least one more line */
			int keep = wf->off < LAST_MAX ? (int)wf->off : LAST_MAX;
			memcpy(wf->last, W.rbuf + (wf->off - from) - (uint64_t)keep, (size_t)keep);
			wf->last_len = keep;
		}
		commit();
		if (wf->off == off0 || (p < end && size - off0 <= W.chunk))
			return; /* a partial line waits, or stopping */
	}
}

/* Read a snapshot file whole and publish, per symbol, the fields that
 * changed since the values sent before (the saved base after a restart).
 * The seq in wf->off says what was published already. */
static void snap_read(struct wfile *wf)
{
	struct stat st;
	if (wf->fd < 0 || fstat(wf->fd, &st) < 0 || st.st_size == 0)
		return;
	if (!W.sbuf && !(W.sbuf = malloc(SNAP_MAX_BYTES)))
		die(1, "out of memory");
	if (!W.scur && !(W.scur = malloc(sizeof *W.scur)))
		die(1, "out of memory");
	char why[160];
	struct snap *cur = W.scur;
	ssize_t n = st.st_size > SNAP_MAX_BYTES
			? -EFBIG
			: uring_pread(wf->fd, W.sbuf, (size_t)st.st_size, 0);
	int rc = n < 0 ? (int)n : snap_parse(W.sbuf, (size_t)n, cur, why, sizeof why);
	if (rc < 0) {
		counter_add(W.c_bad, 1);
		logmsg(LOG_ERR, "%s: %s", wf->path, rc == -EBADMSG ? why : strerror(-rc));
		return;
	}
	uint64_t seq = wf->off >> 16, done = wf->off & SNAP_DONE, skip = 0;
	if (cur->seq < seq) {
		logmsg(LOG_INFO, "%s: seq went back from %llu to %llu: taking it as new", wf->path,
		       (unsigned long long)seq, (unsigned long long)cur->seq);
		free(wf->prev);
		wf->prev = NULL;
	} else if (cur->seq == seq && wf->off) {
		skip = done; /* published up to symbol number done */
	}
	for (int i = 0; i < cur->n; i++) {
		struct snap_quote *q = &cur->q[i];
		const char *sym = symmap_lookup(W.symmap, q->s);
		if (sym && strlen(sym) < sizeof q->s)
			memcpy(q->s, sym, strlen(sym) + 1);
		if ((uint64_t)i + 1 <= skip)
			continue;
		const struct snap_quote *pq = wf->prev ? snap_find(wf->prev, q->s) : NULL;
		int len = snap_encode_delta(q, pq, (int64_t)(cur->seq << 16 | (uint64_t)(i + 1)),
					    wf->fid, W.enc, sizeof W.enc);
		if (len < 0) {
			counter_add(W.c_bad, 1);
			logmsg(LOG_ERR, "%s: symbol %s: %s", wf->path, q->s, strerror(-len));
		} else if (len > 0 && !publish(W.enc, len, MDB_REC_TICK)) {
			wf->off = cur->seq << 16 | (uint64_t)i; /* stopping: the rest next run */
			/* what was sent of this version joins the base */
			if (!wf->prev && !(wf->prev = calloc(1, sizeof *wf->prev)))
				die(1, "out of memory");
			for (int j = 0; j < i; j++)
				for (int f = 0; f < cur->q[j].nf; f++)
					base_set(wf->prev, cur->q[j].s, strlen(cur->q[j].s),
						 cur->q[j].ts, cur->q[j].key[f],
						 strlen(cur->q[j].key[f]), cur->q[j].val[f]);
			wf->prev_dirty = true;
			commit();
			return;
		}
	}
	wf->off = cur->seq << 16 | SNAP_DONE;
	W.published = true; /* even when nothing changed: the state holds the seq */
	/* this version is the base of the next one (saved by commit) */
	if (!wf->prev && !(wf->prev = malloc(sizeof *wf->prev)))
		die(1, "out of memory");
	W.scur = wf->prev;
	wf->prev = cur;
	wf->prev_dirty = true;
	commit();
}

/* Read what is new in one file. */
static void file_read(struct wfile *wf)
{
	wf->dirty = false;
	if (wf->kind == K_DLY)
		dly_read(wf);
	else if (wf->kind == K_SNAP)
		snap_read(wf);
	else
		scid_read(wf);
}

/* A file's name (re)appeared, or we are starting: read what the old file
 * still holds, then switch to the new one. */
static void file_appeared(int dir, const char *name_in, bool named, bool resume)
{
	char name[NAME_MAX + 1]; /* name_in may be the slot's name, cleared by file_close() */
	snprintf(name, sizeof name, "%s", name_in);
	struct wfile *wf = file_add(dir, name, named);
	if (!wf)
		return;
	if (wf->fd >= 0) {
		struct stat st;
		if (stat(wf->path, &st) == 0 && st.st_ino == wf->ino)
			return; /* the same file */
		if (wf->kind == K_SNAP) {
			/* a new version: keep the slot, its seq and its values */
			close(wf->fd);
			wf->fd = -1;
			counter_add(W.c_files, (uint64_t)-1);
			file_open(wf, false);
			return;
		}
		file_read(wf);
		logmsg(LOG_INFO, "%s: replaced: reading the new file", wf->path);
		file_close(wf);
		wf = file_add(dir, name, named);
		if (!wf)
			return;
	}
	file_open(wf, resume);
}

static void file_gone(struct wfile *wf)
{
	if (wf->fd >= 0) {
		file_read(wf); /* what was written before it went */
		logmsg(LOG_INFO, "%s: gone", wf->path);
	}
	file_close(wf);
	W.published = true; /* drop it from the state file */
	commit();
}

static int dir_add(const char *path, bool all)
{
	char abs[PATH_MAX];
	if (!realpath(path, abs))
		die(1, "%s: %s", path, strerror(errno));
	for (int i = 0; i < W.ndirs; i++) {
		if (strcmp(W.dirs[i].path, abs) == 0) {
			W.dirs[i].all |= all;
			return i;
		}
	}
	if (W.ndirs == WATCH_MAX_DIRS)
		die(2, "at most %d directories", WATCH_MAX_DIRS);
	struct wdir *d = &W.dirs[W.ndirs];
	snprintf(d->path, sizeof d->path, "%s", abs);
	d->all = all;
	d->wd = inotify_add_watch(W.ino_fd, abs,
				  IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO |
				      IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR);
	if (d->wd < 0)
		die(1, "%s: cannot watch: %s", abs, strerror(errno));
	return W.ndirs++;
}

/* Every *.scid already in the directories watched whole. */
static void scan_dirs(bool resume)
{
	for (int i = 0; i < W.ndirs; i++) {
		if (!W.dirs[i].all)
			continue;
		DIR *d = opendir(W.dirs[i].path);
		if (!d) {
			logmsg(LOG_ERR, "%s: %s", W.dirs[i].path, strerror(errno));
			continue;
		}
		struct dirent *de;
		while ((de = readdir(d)))
			if (file_kind(de->d_name) != K_NONE)
				file_appeared(i, de->d_name, false, resume);
		closedir(d);
	}
}

/* Apply one inotify read: structural events at once (in order), appends
 * only mark their file dirty, so a burst costs one read per file. */
static void inotify_events(int len)
{
	for (char *p = W.evbuf; p < W.evbuf + len;) {
		const struct inotify_event *ev = (const struct inotify_event *)p;
		p += sizeof *ev + ev->len;
		if (ev->mask & IN_Q_OVERFLOW) {
			logmsg(LOG_WARNING, "inotify queue overflow: rescanning");
			for (int i = 0; i < W.nfiles; i++)
				if (W.files[i].used)
					file_appeared(W.files[i].dir, W.files[i].name,
						      W.files[i].named, false);
			scan_dirs(false);
			continue;
		}
		int dir = -1;
		for (int i = 0; i < W.ndirs; i++)
			if (W.dirs[i].wd == ev->wd)
				dir = i;
		if (dir < 0 || !ev->len)
			continue;
		struct wfile *wf = file_find(dir, ev->name);
		if (!wf && !(W.dirs[dir].all && file_kind(ev->name) != K_NONE))
			continue;
		if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
			file_appeared(dir, ev->name, wf && wf->named, false);
			/* a snapshot written in place is read once it is closed */
			if ((ev->mask & IN_CREATE) && (wf = file_find(dir, ev->name)) &&
			    wf->kind == K_SNAP)
				wf->dirty = false;
		} else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
			if (wf)
				file_gone(wf);
		} else if (wf && wf->kind == K_SNAP && !(ev->mask & IN_CLOSE_WRITE)) {
			continue; /* still being written */
		} else if (wf) {
			if (wf->fd < 0)
				file_open(wf, false);
			wf->dirty = true;
		} else {
			file_appeared(dir, ev->name, false, false);
		}
	}
}

static void read_dirty(void)
{
	for (int i = 0; i < W.nfiles && !W.stop; i++)
		if (W.files[i].used && W.files[i].dirty)
			file_read(&W.files[i]);
}

/* Option opt's DURATION arg, of 0 to max_s seconds, in ns (or exit 2). */
static int64_t duration_arg(const char *opt, const char *arg, long long max_s)
{
	long long ns;
	if (cli_parse_duration(arg, &ns) < 0 || ns < 0 || ns > max_s * NS_PER_SEC)
		die(2, "%s: not a duration of 0 to %lld s: '%s'", opt, max_s, arg);
	return ns;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_LONGOPTS,
	    {"state", required_argument, NULL, OPT_STATE},
	    {"state-interval", required_argument, NULL, OPT_STATE_IV},
	    {"symbols", required_argument, NULL, OPT_SYMBOLS},
	    {"bar-interval", required_argument, NULL, OPT_BAR_IV},
	    {"ring-size", required_argument, NULL, OPT_RING_SIZE},
	    {"spin", required_argument, NULL, OPT_SPIN},
	    {NULL, 0, NULL, 0},
	};
	struct mdb_cli cli = {0};
	struct ep_opts eo;
	const char *symbols = NULL;
	char *end;
	int opt;

	ep_opts_default(&eo);
	log_init(argv[0]);
	W.bar_iv = 1;
	W.save_every_ns = 50 * NS_PER_SEC / 1000;
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS, longopts, NULL)) != -1) {
		int rc = cli_option(&cli, opt, optarg);
		if (rc < 0)
			die(2, "at most %d outputs", CLI_MAX_ENDPOINTS);
		if (rc > 0)
			continue;
		unsigned long long size;
		long iv;
		switch (opt) {
		case OPT_STATE:
			W.state_path = optarg;
			break;
		case OPT_STATE_IV:
			W.save_every_ns = duration_arg("--state-interval", optarg, 60);
			break;
		case OPT_SPIN:
			W.spin_ns = duration_arg("--spin", optarg, 10);
			break;
		case OPT_SYMBOLS:
			symbols = optarg;
			break;
		case OPT_BAR_IV:
			iv = strtol(optarg, &end, 10);
			if (*end || iv <= 0 || iv > 86400 * 366)
				die(2, "--bar-interval: not a number of seconds: '%s'", optarg);
			W.bar_iv = (int32_t)iv;
			break;
		case OPT_RING_SIZE:
			if (cli_parse_size(optarg, &size) < 0 || size < RING_MIN_CAPACITY ||
			    (size & (size - 1)))
				die(2, "--ring-size: not a power of two of at least %u: '%s'",
				    RING_MIN_CAPACITY, optarg);
			eo.ring_capacity = size;
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-watch", usage);
	if (argc < 1)
		usage(stderr);
	if (cli.nin > 0)
		die(2, "mdb-watch reads files, not endpoints: give paths, not -i");
	for (int i = 0; i < cli.nout; i++) {
		const char *why;
		if (ep_parse_check(cli.out[i], &why) < 0)
			die(2, "%s: %s", cli.out[i], why);
		if (!W.oring_name && strncmp(cli.out[i], "ring:", 5) == 0)
			W.oring_name = cli.out[i] + 5;
	}
	eo.name = cli.name ? cli.name : "mdb-watch";
	eo.json_out = cli.json;
	eo.publish_timeout_ns = 250000000; /* held back: look at the stop flag this often */
	eo.batch_out = true;		   /* a chunk is published at once, in commit() */
	if (symbols) {
		int err, line;
		const char *why;
		W.symmap = symmap_load(symbols, &err, &line, &why);
		if (!W.symmap && line)
			die(2, "%s: line %d: %s", symbols, line, why);
		if (!W.symmap)
			die(2, "%s: %s", symbols, why ? why : strerror(-err));
	}

	/* init */
	char msg[512];
	int err = 0;
	cli_catch_signals();
	W.stop_fd = cli_stop_fd();
	if (W.stop_fd < 0)
		die(1, "cannot make the stop eventfd");
	mdb_counters *cnt = counters_open("mdb-watch", eo.name, &err);
	if (!cnt)
		logmsg(LOG_WARNING, "counters: %s (continuing without)", strerror(-err));
	W.c_out = counter_get(cnt, "out");
	W.c_bad = counter_get(cnt, "bad_input");
	W.c_err = counter_get(cnt, "errors");
	W.c_files = counter_get(cnt, "files_open");
	W.c_last = counter_get(cnt, "last_update_ns");
	W.out = outputs_open(cli.out, cli.nout, &eo, &err, msg, sizeof msg);
	if (!W.out)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	W.chunk = WATCH_CHUNK;
	if (W.oring_name) {
		W.oring = ring_open(W.oring_name, &err);
		if (!W.oring)
			die(1, "ring:%s: %s", W.oring_name, strerror(-err));
		/* what one chunk publishes (about 3 bytes of record per byte of
		 * file) must stay in the ring until the state is saved, so a
		 * restart can read it back */
		uint64_t cap = ring_capacity(W.oring) / 8;
		if (cap < W.chunk)
			W.chunk = (uint32_t)cap;
	}
	W.chunk = W.chunk / SCID_RECORD_SIZE * SCID_RECORD_SIZE;
	if (W.chunk < SCID_RECORD_SIZE)
		W.chunk = SCID_RECORD_SIZE;
	W.rbuf = malloc(W.chunk + SCID_RECORD_SIZE);
	W.saved = calloc(WATCH_MAX_FILES * 2, sizeof *W.saved);
	if (!W.rbuf || !W.saved)
		die(1, "out of memory");
	/* one thread submits and waits: completions' task work runs when it
	 * waits (no signal, no IPI per event: about 4 us of CPU less per
	 * append here, bench_watch); TASKRUN_FLAG lets --spin see that work
	 * is pending. Kernels before 6.1 get the defaults. */
	int rc = io_uring_queue_init(16, &W.ring,
				     IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
					 IORING_SETUP_TASKRUN_FLAG);
	if (rc == -EINVAL)
		rc = io_uring_queue_init(16, &W.ring, 0);
	if (rc < 0)
		die(1, "io_uring: %s", strerror(-rc));
	W.ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (W.ino_fd < 0)
		die(1, "inotify: %s", strerror(errno));
	if (W.state_path) {
		struct statfs sfs;
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s", W.state_path);
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
		W.state_sync = !(statfs(slash ? dir : ".", &sfs) == 0 && sfs.f_type == TMPFS_MAGIC);
		char rname[RING_NAME_MAX];
		uint64_t pos = state_load(rname, sizeof rname);
		/* a state saved when the ring was empty holds position 0 */
		if (W.oring && rname[0] && strcmp(rname, W.oring_name) == 0)
			recover_from_ring(pos);
	}
	for (int i = 0; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			dir_add(argv[i], true);
			continue;
		}
		char dpath[PATH_MAX];
		snprintf(dpath, sizeof dpath, "%s", argv[i]);
		char *slash = strrchr(dpath, '/');
		const char *name = slash ? slash + 1 : dpath;
		if (!*name)
			die(2, "%s: not a file name", argv[i]);
		if (slash)
			*slash = '\0';
		int d = dir_add(slash ? (*dpath ? dpath : "/") : ".", false);
		struct wfile *wf = file_add(d, name, true);
		if (!wf)
			die(2, "%s: cannot watch it", argv[i]);
	}
	/* the files named, then those found in the directories; a file
	 * that is not there yet is opened when it appears */
	for (int i = 0; i < W.nfiles; i++)
		if (W.files[i].used)
			file_open(&W.files[i], true);
	scan_dirs(true);
	/* save where every file stands (and the bases read back from the ring)
	 * before publishing anything: a kill in the first chunk then finds the
	 * ring position to read back from */
	W.published = true;
	commit_now();
	arm_inotify();
	arm_stop();
	read_dirty();
	W.published = true; /* the state file now lists exactly the files open */
	commit_now();
	notify_ready(NULL);

	/* loop: sleep in the kernel until inotify or the stop fd completes (or
	 * the watchdog is due) */
	bool spin = false; /* the last turn handled inotify events: --spin before sleeping */
	while (!W.stop && !cli_stopping()) {
		int res;
		notify_watchdog();
		if (!W.ino_ready && spin && spin_one(&res) == TAG_STOP)
			break;
		spin = false;
		if (!W.ino_ready) {
			/* sleep until the watchdog or a deferred state save is due */
			int64_t t = notify_watchdog_interval(), due = save_due();
			if (due >= 0 && (t < 0 || due - mono_ns() < t))
				t = due > mono_ns() ? due - mono_ns() : 0;
			if (wait_one(&res, t) == 0 && !W.ino_ready && save_due() >= 0 &&
			    mono_ns() >= save_due())
				commit_now();
		}
		if (W.ino_ready) {
			W.ino_ready = false;
			if (W.ino_res < 0 && W.ino_res != -EINTR)
				die(1, "inotify: %s", strerror(-W.ino_res));
			/* until a read leaves room for the largest event: the queue
			 * was empty then (one read, not two, per wake-up) */
			ssize_t n;
			while ((n = read(W.ino_fd, W.evbuf, sizeof W.evbuf)) > 0) {
				inotify_events((int)n);
				if ((size_t)n + sizeof(struct inotify_event) + NAME_MAX + 1 <=
				    sizeof W.evbuf)
					break;
			}
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				die(1, "inotify: %s", strerror(errno));
			if (!W.ino_armed)
				arm_inotify();
			read_dirty();
			spin = true;
		}
	}

	/* finish */
	notify_stopping();
	commit_now();
	outputs_flush(W.out);
	outputs_close(&W.out);
	ring_close(&W.oring);
	io_uring_queue_exit(&W.ring);
	close(W.ino_fd);
	symmap_free(&W.symmap);
	free(W.rbuf);
	free(W.sbuf);
	free(W.scur);
	for (int i = 0; i < W.nfiles; i++)
		free(W.files[i].prev);
	free(W.saved);
	counters_close(&cnt);
	return 0;
}

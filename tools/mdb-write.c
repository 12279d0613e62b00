/* mdb-write - keep the history of bars and features in SQLite.
 *
 * A durable consumer of its input rings: records are upserted into the
 * database in batched transactions (every --batch-time or --batch-rows,
 * whichever comes first), and each ring's position is saved in the same
 * transaction as the rows it covers. Rings are released only after the
 * commit, so after kill -9 the ring still holds everything not committed
 * and the database says exactly where to resume: nothing is lost and
 * nothing is applied twice.
 *
 * When a transaction fails (the database is locked by another writer, the
 * disk is full, the file is corrupt) it is rolled back, the rings are moved
 * back to the saved positions, records from other inputs are replayed from
 * a buffer, and the writer retries with a growing pause. A corrupt file is
 * closed and reopened on each retry, so a restored file is picked up.
 */
#include "cli.h"
#include "clock.h"
#include "counters.h"
#include "endpoint.h"
#include "log.h"
#include "notify.h"
#include "record.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NS_PER_MS    1000000LL
#define NS_PER_S     1000000000LL
#define RETRY_MIN_NS (100 * NS_PER_MS)
#define RETRY_MAX_NS (10 * NS_PER_S)
#define EXIT_EMPTY   3 /* --check: sound, but holds no rows (bootstrap) */

enum {
	OPT_CHECK = CLI_OPT_FIRST_TOOL,
	OPT_BATCH_TIME,
	OPT_BATCH_ROWS,
	OPT_SYNC,
	OPT_RETENTION,
	OPT_PRUNE_BATCH,
	OPT_PRUNE_EVERY,
	OPT_MAX_SIZE,
};

static _Noreturn void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mdb-write [-i ENDPOINT]... [--name NAME] [--json] [--from start|end]\n"
	    "                 [--ring-size SIZE]\n"
	    "                 [--batch-time DURATION] [--batch-rows N] [--synchronous MODE]\n"
	    "                 [--retention DURATION] [--prune-batch N] [--prune-every DURATION]\n"
	    "                 [--max-size SIZE] DATABASE\n"
	    "       mdb-write --check DATABASE\n"
	    "Write bar and feat records into the SQLite database DATABASE.\n"
	    "  -i, --input ENDPOINT    read from ENDPOINT (repeatable; default -)\n"
	    "      --name NAME         consumer name in input rings (default mdb-write)\n"
	    "      --json              stdin carries JSON lines, not MessagePack\n"
	    "      --from start|end    where a new consumer starts in a ring (default start)\n"
	    "      --ring-size SIZE    capacity of input rings this creates (default 64M)\n"
	    "      --batch-time D      commit at most D after a batch's first record (default "
	    "100ms)\n"
	    "      --batch-rows N      commit after N records (default 50000)\n"
	    "      --synchronous MODE  off, normal or full (default normal)\n"
	    "      --retention D       delete rows older than D; 0 keeps all (default 90d)\n"
	    "      --prune-batch N     rows deleted per pruning transaction (default 5000)\n"
	    "      --prune-every D     start a pruning pass every D (default 1h)\n"
	    "      --max-size SIZE     never grow the database past SIZE (default no limit)\n"
	    "      --check             verify DATABASE and print a summary; exit 0 sound,\n"
	    "                          1 damaged or unreadable, 3 empty (run a backfill)\n"
	    "  -h, --help              show this help\n"
	    "  -V, --version           show the version\n" CLI_USAGE_ENDPOINTS);
	exit(out == stdout ? 0 : 2);
}

/* Sleep ns unless a stop signal comes first (it interrupts nanosleep). */
static void pause_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / NS_PER_S, .tv_nsec = ns % NS_PER_S};
	if (!cli_stopping())
		nanosleep(&ts, NULL);
}

static void fmt_ns(char *buf, size_t len, int64_t ns)
{
	time_t t = (time_t)(ns / NS_PER_S);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- --check ---- */

static int print_series(const struct store_series *s, void *arg)
{
	char a[32], b[32];
	(void)arg;
	fmt_ns(a, sizeof a, s->first_ts);
	fmt_ns(b, sizeof b, s->last_ts);
	printf("%-6s %-12s %7lld %10lld  %s  %s\n", s->table, s->symbol, (long long)s->iv,
	       (long long)s->rows, a, b);
	return 0;
}

static _Noreturn void check(const char *path)
{
	struct store_opts so;
	store_opts_default(&so);
	so.readonly = true;
	char msg[1024];
	int err = 0;
	mdb_store *db = store_open(path, &so, &err, msg, sizeof msg);
	if (!db)
		die(1, "%s%s", msg,
		    err == -EUCLEAN ? " (the file is damaged: restore it or move it aside)" : "");
	int rc = store_integrity(db, msg, sizeof msg);
	if (rc < 0) {
		printf("integrity: FAILED: %s\n", msg);
		store_close(&db);
		exit(1);
	}
	printf("integrity: ok\n");
	int v = store_found_version(db);
	uint64_t dbb = 0, walb = 0;
	if (store_size(db, &dbb, &walb) == 0)
		printf("size: %llu bytes (database %llu, write-ahead log %llu)\n",
		       (unsigned long long)(dbb + walb), (unsigned long long)dbb,
		       (unsigned long long)walb);
	if (v == 0) {
		printf("schema: none yet\nempty: no bars or feats: run a backfill\n");
		store_close(&db);
		exit(EXIT_EMPTY);
	}
	printf("schema version: %d\n", v);
	if (v != STORE_SCHEMA_VERSION) {
		printf("(mdb-write migrates it to version %d when it starts)\n",
		       STORE_SCHEMA_VERSION);
		store_close(&db);
		exit(0);
	}
	printf("table  symbol           iv       rows  first                 last\n");
	if ((rc = store_summary(db, print_series, NULL)) < 0)
		die(1, "%s", store_errmsg(db));
	int empty = store_empty(db);
	if (empty < 0)
		die(1, "%s", store_errmsg(db));
	store_close(&db);
	if (empty) {
		printf("empty: no bars or feats: run a backfill\n");
		exit(EXIT_EMPTY);
	}
	exit(0);
}

/* ---- the writer ---- */

struct input {
	const char *ring; /* ring name, or NULL for stdin and ZeroMQ */
	mdb_ring_consumer *c;
	uint64_t saved; /* the position the database holds for it */
};

struct writer {
	const char *path;
	const char *name;
	struct store_opts so;
	mdb_store *db;
	mdb_inputs *in;
	struct input inputs[CLI_MAX_ENDPOINTS];
	int nin;
	mdb_codec *codec;
	struct mdb_record rec;
	/* the open batch */
	bool in_txn;
	unsigned rows;	  /* records in it */
	int64_t deadline; /* monotonic: commit by then */
	unsigned batch_rows;
	int64_t batch_ns;
	/* records from non-ring inputs in the open batch ({u32 len, bytes}...),
	 * replayed after a failed transaction: a ring keeps its own */
	uint8_t *rb;
	size_t rb_len, rb_cap, rb_pos;
	bool replaying;
	int64_t backoff_ns;
	mdb_counter *c_in, *c_rows, *c_same, *c_skip, *c_rej, *c_err, *c_commits, *c_pruned,
	    *c_boot, *c_last, *c_pending;
};

/* Open the database (retrying while it is locked or damaged, unless asked
 * to stop). Returns 0, or -errno for a failure not worth retrying. */
static int db_open(struct writer *w, char *msg, size_t msglen)
{
	int err = 0;
	for (int64_t pause = RETRY_MIN_NS;;
	     pause = pause * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : pause * 2) {
		w->db = store_open(w->path, &w->so, &err, msg, msglen);
		if (w->db)
			break;
		if (err != -EBUSY && err != -EUCLEAN && err != -ENOSPC && err != -EIO)
			return err;
		counter_add(w->c_err, 1);
		logmsg(LOG_ERR, "%s%s; retrying in %lld ms", msg,
		       err == -EUCLEAN ? " (the file is damaged: restore it or move it aside)" : "",
		       (long long)(pause / NS_PER_MS));
		pause_ns(pause);
		if (cli_stopping())
			return -EINTR;
	}
	int v = store_found_version(w->db);
	if (v != 0 && v != STORE_SCHEMA_VERSION)
		logmsg(LOG_NOTICE, "%s: migrated the schema from version %d to %d", w->path, v,
		       STORE_SCHEMA_VERSION);
	int empty = store_empty(w->db);
	counter_set(w->c_boot, empty == 1);
	if (empty == 1)
		logmsg(LOG_NOTICE, "%s: the database is empty (bootstrap): run a backfill",
		       w->path);
	return 0;
}

/* Make each ring consumer read from the position the database holds: the
 * slot's own position may be behind it (killed between a commit and the
 * release that follows) or, for a new database, ahead of it. */
static void sync_cursors(struct writer *w)
{
	for (int i = 0; i < w->nin; i++) {
		struct input *p = &w->inputs[i];
		if (!p->c)
			continue;
		uint64_t slot = ring_consumer_position(p->c), pos;
		int rc = store_cursor_get(w->db, p->ring, w->name, &pos);
		p->saved = slot;
		if (rc == -ENOENT) {
			logmsg(LOG_INFO, "ring:%s: no saved cursor; starting at position %llu",
			       p->ring, (unsigned long long)slot);
			continue;
		}
		if (rc < 0) {
			logmsg(LOG_WARNING, "ring:%s: %s; starting at position %llu", p->ring,
			       store_errmsg(w->db), (unsigned long long)slot);
			continue;
		}
		if (pos == slot)
			continue;
		/* a second mapping, only to read where the ring's data begins and
		 * ends (a consumer does not hand out its ring) */
		int err;
		mdb_ring *r = ring_open(p->ring, &err);
		uint64_t end = r ? ring_position(r) : 0, oldest = r ? ring_oldest(r) : 0;
		ring_close(&r);
		if (pos > end) {
			logmsg(
			    LOG_WARNING,
			    "ring:%s: saved cursor %llu is past the ring's end %llu (was the ring "
			    "made anew?); starting at %llu",
			    p->ring, (unsigned long long)pos, (unsigned long long)end,
			    (unsigned long long)slot);
		} else if (pos < oldest) {
			logmsg(LOG_WARNING,
			       "ring:%s: saved cursor %llu was overwritten (oldest record %llu): "
			       "records before %llu never reached the database",
			       p->ring, (unsigned long long)pos, (unsigned long long)oldest,
			       (unsigned long long)slot);
		} else {
			logmsg(LOG_INFO,
			       "ring:%s: resuming at saved cursor %llu (slot was at %llu)", p->ring,
			       (unsigned long long)pos, (unsigned long long)slot);
			ring_seek(p->c, pos);
			p->saved = pos;
		}
	}
}

static int rb_append(struct writer *w, const uint8_t *data, uint32_t len)
{
	if (w->rb_len + 4 + len > w->rb_cap) {
		size_t cap = w->rb_cap ? w->rb_cap : 1u << 16;
		while (cap < w->rb_len + 4 + len)
			cap *= 2;
		uint8_t *nb = realloc(w->rb, cap); /* amortised: the buffer is reused */
		if (!nb)
			return -ENOMEM;
		w->rb = nb;
		w->rb_cap = cap;
	}
	memcpy(w->rb + w->rb_len, &len, 4);
	memcpy(w->rb + w->rb_len + 4, data, len);
	w->rb_len += 4 + len;
	return 0;
}

/* One record into the open batch (opening it first). Returns 0, or -errno
 * from the database: the batch must then be recovered. */
static int take(struct writer *w, uint32_t type, const uint8_t *data, uint32_t len, bool keep)
{
	int rc;
	if (keep && (rc = rb_append(w, data, len)) < 0)
		return rc;
	if (!w->in_txn) {
		if ((rc = store_begin(w->db)) < 0)
			return rc;
		w->in_txn = true;
		w->rows = 0;
		w->deadline = mono_ns() + w->batch_ns;
	}
	w->rows++;
	if (type != MDB_REC_BAR && type != MDB_REC_FEAT) {
		counter_add(w->c_skip, 1); /* ticks, signals, rejects: not history */
		return 0;
	}
	const char *why = "";
	if (record_decode(w->codec, data, len, &w->rec, &why) < 0) {
		counter_add(w->c_rej, 1);
		logmsg(LOG_WARNING, "rejected %s: %s", record_type_name(type), why);
		return 0;
	}
	if ((rc = store_put(w->db, &w->rec)) < 0)
		return rc == -EINVAL ? 0 : rc;
	return 0;
}

/* Save the cursors with the rows, commit, then release the rings. */
static int commit(struct writer *w)
{
	int rc;
	uint64_t pos[CLI_MAX_ENDPOINTS];
	for (int i = 0; i < w->nin; i++) {
		struct input *p = &w->inputs[i];
		if (!p->c)
			continue;
		pos[i] = ring_consumer_position(p->c);
		if (pos[i] != p->saved &&
		    (rc = store_cursor_put(w->db, p->ring, w->name, pos[i])) < 0)
			return rc;
	}
	if ((rc = store_commit(w->db)) < 0)
		return rc;
	w->in_txn = false;
	uint64_t put, changed;
	store_txn_counts(w->db, &put, &changed);
	counter_add(w->c_rows, changed);
	counter_add(w->c_same, put - changed);
	/* only now may the producer reuse what this batch read */
	inputs_release(w->in);
	for (int i = 0; i < w->nin; i++)
		if (w->inputs[i].c)
			w->inputs[i].saved = pos[i];
	w->rb_len = w->rb_pos = 0;
	w->replaying = false;
	w->backoff_ns = RETRY_MIN_NS;
	counter_add(w->c_commits, 1);
	counter_set(w->c_pending, 0);
	counter_set(w->c_last, (uint64_t)wall_ns());
	if (counter_value(w->c_boot) && counter_value(w->c_rows))
		counter_set(w->c_boot, 0);
	return 0;
}

/* A transaction failed: undo it, rewind every input to what the database
 * holds, explain, pause, and (for a damaged file) reopen. */
static int recover(struct writer *w, int err)
{
	counter_add(w->c_err, 1);
	const char *msg = err == -ENOMEM ? "out of memory" : store_errmsg(w->db);
	const char *hint = err == -EBUSY     ? " (another process holds the write lock)"
			   : err == -ENOSPC  ? " (free disk space, or raise --max-size)"
			   : err == -EUCLEAN ? " (the file is damaged: restore it or move it aside)"
					     : "";
	logmsg(LOG_ERR, "%s: %s%s; retrying in %lld ms", w->path, msg, hint,
	       (long long)(w->backoff_ns / NS_PER_MS));
	store_rollback(w->db);
	w->in_txn = false;
	for (int i = 0; i < w->nin; i++)
		if (w->inputs[i].c)
			ring_seek(w->inputs[i].c, w->inputs[i].saved);
	w->rb_pos = 0;
	w->replaying = w->rb_len > 0;
	pause_ns(w->backoff_ns);
	w->backoff_ns = w->backoff_ns * 2 > RETRY_MAX_NS ? RETRY_MAX_NS : w->backoff_ns * 2;
	if (err == -EUCLEAN || err == -EIO) {
		char msg[1024];
		store_close(&w->db);
		int rc = db_open(w, msg, sizeof msg);
		if (rc < 0) {
			if (rc != -EINTR)
				logmsg(LOG_ERR, "%s", msg);
			return rc;
		}
		sync_cursors(w);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_LONGOPTS,
	    {"check", no_argument, NULL, OPT_CHECK},
	    {"batch-time", required_argument, NULL, OPT_BATCH_TIME},
	    {"batch-rows", required_argument, NULL, OPT_BATCH_ROWS},
	    {"synchronous", required_argument, NULL, OPT_SYNC},
	    {"retention", required_argument, NULL, OPT_RETENTION},
	    {"prune-batch", required_argument, NULL, OPT_PRUNE_BATCH},
	    {"prune-every", required_argument, NULL, OPT_PRUNE_EVERY},
	    {"max-size", required_argument, NULL, OPT_MAX_SIZE},
	    CLI_STAGE_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	struct mdb_cli cli = CLI_INIT;
	struct writer w = {
	    .batch_rows = 50000, .batch_ns = 100 * NS_PER_MS, .backoff_ns = RETRY_MIN_NS};
	bool do_check = false;
	long long retention_ns = 90LL * 86400 * NS_PER_S, prune_every_ns = 3600LL * NS_PER_S;
	long long prune_batch = 5000;
	struct ep_opts eo;
	ep_opts_default(&eo);
	eo.from = RING_FROM_START;
	store_opts_default(&w.so);
	log_init(argv[0]);
	int opt;
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS, longopts, NULL)) != -1) {
		int rc = cli_option(&cli, opt, optarg);
		if (rc < 0)
			die(2, "%s", cli.err);
		if (rc > 0)
			continue;
		unsigned long long u;
		long long ns;
		char *end;
		switch (opt) {
		case OPT_CHECK:
			do_check = true;
			break;
		case OPT_BATCH_TIME:
			if (cli_parse_duration(optarg, &ns) < 0 || ns <= 0)
				die(2, "--batch-time: not a positive duration: '%s'", optarg);
			w.batch_ns = ns;
			break;
		case OPT_BATCH_ROWS:
		case OPT_PRUNE_BATCH:
			errno = 0;
			u = strtoull(optarg, &end, 10);
			if (errno || *end || u == 0 || u > 10000000)
				die(2, "%s: not a number from 1 to 10000000: '%s'",
				    opt == OPT_BATCH_ROWS ? "--batch-rows" : "--prune-batch",
				    optarg);
			if (opt == OPT_BATCH_ROWS)
				w.batch_rows = (unsigned)u;
			else
				prune_batch = (long long)u;
			break;
		case OPT_SYNC:
			if (strcasecmp(optarg, "off") && strcasecmp(optarg, "normal") &&
			    strcasecmp(optarg, "full"))
				die(2, "--synchronous takes off, normal or full, not '%s'", optarg);
			w.so.synchronous = optarg;
			break;
		case OPT_RETENTION:
			if (cli_parse_duration(optarg, &ns) < 0 || ns < 0)
				die(2, "--retention: not a duration: '%s'", optarg);
			retention_ns = ns;
			break;
		case OPT_PRUNE_EVERY:
			if (cli_parse_duration(optarg, &ns) < 0 || ns <= 0)
				die(2, "--prune-every: not a positive duration: '%s'", optarg);
			prune_every_ns = ns;
			break;
		case OPT_MAX_SIZE:
			if (cli_parse_size(optarg, &u) < 0 || u < 65536)
				die(2, "--max-size: not a size of at least 64k: '%s'", optarg);
			w.so.max_bytes = u;
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-write", usage);
	if (argc != 1)
		usage(stderr);
	w.path = argv[0];
	if (do_check)
		check(w.path);
	if (cli.nout > 0)
		die(2, "mdb-write has no outputs (-o): it writes to DATABASE");
	cli_apply(&cli, &eo, "mdb-write");
	w.name = eo.name;
	/* a ring advances only when the rows it holds are committed */
	eo.manual_release = true;
	if (cli_check_endpoints(&cli, NULL) < 0)
		die(2, "%s", cli.err);

	/* init */
	char msg[1024] = "";
	int err = 0;
	cli_catch_signals();
	mdb_counters *cnt = counters_open("mdb-write", w.name, &err);
	if (!cnt)
		logmsg(LOG_WARNING, "counters: %s (continuing without)", strerror(-err));
	w.c_in = counter_get(cnt, "in");
	w.c_rows = counter_get(cnt, "rows_written");
	w.c_same = counter_get(cnt, "rows_unchanged");
	w.c_skip = counter_get(cnt, "skipped");
	w.c_rej = counter_get(cnt, "rejects");
	w.c_err = counter_get(cnt, "errors");
	w.c_commits = counter_get(cnt, "commits");
	w.c_pruned = counter_get(cnt, "pruned");
	w.c_boot = counter_get(cnt, "bootstrap");
	w.c_pending = counter_get(cnt, "uncommitted");
	w.c_last = counter_get(cnt, "last_update_ns");
	if (!(w.codec = codec_new()))
		die(1, "out of memory");
	if ((err = db_open(&w, msg, sizeof msg)) < 0) {
		if (err == -EINTR)
			return 0;
		die(err == -EPROTO ? 2 : 1, "%s", msg);
	}
	w.in = inputs_open(cli.in, cli.nin, &eo, &err, msg, sizeof msg);
	if (!w.in)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	w.nin = cli.nin ? cli.nin : 1;
	for (int i = 0; i < w.nin; i++) {
		w.inputs[i].c = inputs_ring(w.in, i);
		w.inputs[i].ring = w.inputs[i].c ? cli.in[i] + strlen("ring:") : NULL;
	}
	sync_cursors(&w);

	notify_ready(NULL);

	/* loop */
	int status = 0;
	bool ended = false;
	bool pruning = retention_ns > 0;
	int64_t next_prune = mono_ns();
	struct mdb_msg m;
	while (!cli_stopping()) {
		int64_t now = mono_ns();
		int rc;
		if (w.in_txn && (w.rows >= w.batch_rows || now >= w.deadline) &&
		    (rc = commit(&w)) < 0) {
			if (recover(&w, rc) < 0) {
				status = 1;
				break;
			}
			continue;
		}
		/* retention runs between batches, one small transaction at a time */
		if (!w.in_txn && retention_ns > 0 && (pruning || now >= next_prune)) {
			int64_t deleted;
			pruning = true;
			rc = store_prune_step(w.db, wall_ns() - retention_ns, (int)prune_batch,
					      &deleted);
			counter_add(w.c_pruned, (uint64_t)deleted);
			if (rc <= 0) {
				pruning = false;
				next_prune = now + prune_every_ns;
				if (rc < 0) {
					counter_add(w.c_err, 1);
					logmsg(LOG_WARNING, "%s: %s; pruning again in %lld s",
					       w.path, store_errmsg(w.db),
					       (long long)(prune_every_ns / NS_PER_S));
				}
			}
		}
		if (w.replaying) {
			uint32_t len;
			memcpy(&len, w.rb + w.rb_pos, 4);
			const uint8_t *data = w.rb + w.rb_pos + 4;
			w.rb_pos += 4 + len;
			w.replaying = w.rb_pos < w.rb_len;
			const char *why;
			int t = record_peek(data, len, NULL, 0, &why);
			if ((rc = take(&w, t > 0 ? (uint32_t)t : 0, data, len, false)) < 0 &&
			    recover(&w, rc) < 0) {
				status = 1;
				break;
			}
			continue;
		}
		int64_t timeout = -1;
		if (w.in_txn)
			timeout = w.deadline > now ? w.deadline - now : 0;
		else if (pruning)
			timeout = 0;
		else if (retention_ns > 0)
			timeout = next_prune > now ? next_prune - now : 0;
		notify_watchdog();
		rc = inputs_read(w.in, &m, notify_wait_ns(timeout));
		if (rc == 0 || rc == -EINTR)
			continue;
		if (rc == -EPIPE) {
			ended = true; /* every input has ended */
			break;
		}
		if (rc == -EBADMSG) {
			counter_add(w.c_rej, 1);
			logmsg(LOG_WARNING, "rejected: %s", inputs_error(w.in));
			continue;
		}
		if (rc < 0) {
			logmsg(LOG_ERR, "read: %s", strerror(-rc));
			status = 1;
			break;
		}
		counter_add(w.c_in, 1);
		if ((rc = take(&w, m.type, m.data, m.len, !w.inputs[m.input].c)) < 0 &&
		    recover(&w, rc) < 0) {
			status = 1;
			break;
		}
		counter_set(w.c_pending, w.rows);
	}

	notify_stopping();
	/* finish: what was read and written is committed; if that fails, the
	 * rings still hold it for the next run */
	if (w.in_txn && (err = commit(&w)) < 0) {
		logmsg(LOG_ERR, "%s: %s: the last batch stays in the input rings", w.path,
		       store_errmsg(w.db));
		store_rollback(w.db);
		status = 1;
	}
	/* a one-shot run (stdin) finishes the pruning pass it started */
	while (ended && pruning && !status && !cli_stopping()) {
		int64_t deleted;
		int rc =
		    store_prune_step(w.db, wall_ns() - retention_ns, (int)prune_batch, &deleted);
		counter_add(w.c_pruned, (uint64_t)deleted);
		if (rc < 0)
			logmsg(LOG_WARNING, "%s: %s", w.path, store_errmsg(w.db));
		pruning = rc > 0;
	}
	inputs_close(&w.in);
	store_close(&w.db);
	codec_free(&w.codec);
	free(w.rb);
	counters_close(&cnt);
	return status;
}

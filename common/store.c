/* store.c - the SQLite history store.
 *
 * Every statement is prepared once in store_open() and reset after each
 * use: no SQL parsing and no allocation of ours per record. Records are
 * not bound one by one: store_put() copies each into a chunk (struct
 * batch), and one upsert statement per chunk reads the chunk through a
 * virtual table of this connection (mdb_bar_batch, mdb_feat_batch). Text
 * binds and results are SQLITE_STATIC: their storage outlives the step.
 */
#include "store.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Version 2, kept for the migration from version 1 (which makes it, and
 * then migrates it on to the current version). */
static const char schema_v2[] =
    "CREATE TABLE bars ("
    " symbol TEXT NOT NULL, iv INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " o REAL, h REAL, l REAL, c REAL, v REAL, n INTEGER, bv REAL, av REAL,"
    " f INTEGER NOT NULL DEFAULT 0, src TEXT,"
    " PRIMARY KEY (symbol, iv, ts)) WITHOUT ROWID;"
    "CREATE TABLE feats ("
    " symbol TEXT NOT NULL, iv INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " rsi REAL, ema12 REAL, ema26 REAL, bbm REAL, bbu REAL, bbl REAL, atr REAL,"
    " vwap REAL, vma REAL, macd REAL, macds REAL, macdh REAL, mom REAL,"
    " f INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (symbol, iv, ts)) WITHOUT ROWID;"
    "CREATE TABLE cursors ("
    " ring TEXT NOT NULL, consumer TEXT NOT NULL, position INTEGER NOT NULL,"
    " updated_ns INTEGER NOT NULL,"
    " PRIMARY KEY (ring, consumer)) WITHOUT ROWID;";

/* The current schema (version 3), made in one go on a new file; keep
 * mdb-write.1.scd's SCHEMA section in step with it. Each (symbol, iv) is a
 * row of `series`, never deleted or renumbered; rows are keyed by
 * (sid, ts): a two-integer key compares and stores cheaper than (text, iv,
 * ts) and measured ~17 % more rows/s (mdb-write(1), PERFORMANCE). The views
 * `bars` and `feats` show them as version 2's tables did, column for
 * column, for readers. */
#define SCHEMA_V3_DATA                                                                             \
	"CREATE TABLE bar_data ("                                                                  \
	" sid INTEGER NOT NULL, ts INTEGER NOT NULL,"                                              \
	" o REAL, h REAL, l REAL, c REAL, v REAL, n INTEGER, bv REAL, av REAL,"                    \
	" f INTEGER NOT NULL DEFAULT 0, src TEXT,"                                                 \
	" PRIMARY KEY (sid, ts)) WITHOUT ROWID;"                                                   \
	"CREATE TABLE feat_data ("                                                                 \
	" sid INTEGER NOT NULL, ts INTEGER NOT NULL,"                                              \
	" rsi REAL, ema12 REAL, ema26 REAL, bbm REAL, bbu REAL, bbl REAL, atr REAL,"               \
	" vwap REAL, vma REAL, macd REAL, macds REAL, macdh REAL, mom REAL,"                       \
	" f INTEGER NOT NULL DEFAULT 0,"                                                           \
	" PRIMARY KEY (sid, ts)) WITHOUT ROWID;"                                                   \
	"CREATE VIEW bars AS SELECT s.symbol AS symbol, s.iv AS iv, b.ts AS ts, b.o AS o,"         \
	" b.h AS h, b.l AS l, b.c AS c, b.v AS v, b.n AS n, b.bv AS bv, b.av AS av, b.f AS f,"     \
	" b.src AS src FROM bar_data b JOIN series s ON s.id = b.sid;"                             \
	"CREATE VIEW feats AS SELECT s.symbol AS symbol, s.iv AS iv, d.ts AS ts,"                  \
	" d.rsi AS rsi, d.ema12 AS ema12, d.ema26 AS ema26, d.bbm AS bbm, d.bbu AS bbu,"           \
	" d.bbl AS bbl, d.atr AS atr, d.vwap AS vwap, d.vma AS vma, d.macd AS macd,"               \
	" d.macds AS macds, d.macdh AS macdh, d.mom AS mom, d.f AS f"                              \
	" FROM feat_data d JOIN series s ON s.id = d.sid;"
#define SCHEMA_V3_SERIES                                                                           \
	"CREATE TABLE series (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL,"                       \
	" iv INTEGER NOT NULL, UNIQUE (symbol, iv));"
static const char schema_v3[] = SCHEMA_V3_SERIES SCHEMA_V3_DATA
    "CREATE TABLE cursors ("
    " ring TEXT NOT NULL, consumer TEXT NOT NULL, position INTEGER NOT NULL,"
    " updated_ns INTEGER NOT NULL,"
    " PRIMARY KEY (ring, consumer)) WITHOUT ROWID;";

/* migrations[v] takes a database from version v to v + 1; its %s is
 * replaced by the schema it makes. */
struct migration {
	const char *sql;
	const char *schema;
};
static const struct migration migrations[STORE_SCHEMA_VERSION] = {
    /* Version 1 (the first prototype) kept bars in a rowid table with a
     * UNIQUE index, had no bv/av/src columns and no feats, and one cursor
     * per ring:
     *   bars(symbol, iv, ts, o, h, l, c, v, n, f, UNIQUE(symbol, iv, ts))
     *   cursors(ring TEXT PRIMARY KEY, position) */
    [1] = {"ALTER TABLE bars RENAME TO bars_v1;"
	   "ALTER TABLE cursors RENAME TO cursors_v1;"
	   "%s"
	   "INSERT INTO bars (symbol, iv, ts, o, h, l, c, v, n, f)"
	   " SELECT symbol, iv, ts, o, h, l, c, v, n, f FROM bars_v1;"
	   "INSERT INTO cursors (ring, consumer, position, updated_ns)"
	   " SELECT ring, 'mdb-write', position, 0 FROM cursors_v1;"
	   "DROP TABLE bars_v1;"
	   "DROP TABLE cursors_v1;",
	   schema_v2},
    /* Version 2 keyed bars and feats by (symbol TEXT, iv, ts) in the tables
     * that are now views; its cursors table is kept as it is. */
    [2] = {"ALTER TABLE bars RENAME TO bars_v2;"
	   "ALTER TABLE feats RENAME TO feats_v2;" SCHEMA_V3_SERIES "%s"
	   "INSERT INTO series (symbol, iv)"
	   " SELECT symbol, iv FROM bars_v2 UNION SELECT symbol, iv FROM feats_v2 ORDER BY 1, 2;"
	   "INSERT INTO bar_data SELECT s.id, b.ts, b.o, b.h, b.l, b.c, b.v, b.n, b.bv, b.av,"
	   " b.f, b.src FROM bars_v2 b JOIN series s ON s.symbol = b.symbol AND s.iv = b.iv;"
	   "INSERT INTO feat_data SELECT s.id, d.ts, d.rsi, d.ema12, d.ema26, d.bbm, d.bbu,"
	   " d.bbl, d.atr, d.vwap, d.vma, d.macd, d.macds, d.macdh, d.mom, d.f"
	   " FROM feats_v2 d JOIN series s ON s.symbol = d.symbol AND s.iv = d.iv;"
	   "DROP TABLE bars_v2;"
	   "DROP TABLE feats_v2;",
	   SCHEMA_V3_DATA},
};

/* The data tables; the views readers know them by (store_series.table). */
static const char *const tables[] = {"bar_data", "feat_data"};
static const char *const views[] = {"bars", "feats"};
#define NTABLES 2

enum {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_BAR,
	Q_FEAT,
	Q_SERIES_GET,
	Q_SERIES_ADD,
	Q_SERIES_NEXT,
	Q_CURSOR_PUT,
	Q_CURSOR_GET,
	Q_PRUNE, /* + table: one per table */
	Q_N = Q_PRUNE + NTABLES,
};

/* (symbol, iv) -> series id, so that a record costs no lookup in `series`:
 * open addressing, cleared when three quarters full (series are few). */
#define SERIES_CACHE 4096 /* slots, a power of two */

struct series_slot {
	int64_t id; /* 0: empty */
	int64_t iv;
	char sym[MDB_SYM_MAX];
};

/* Records queued for one data table, written by one statement when the
 * chunk is full and at commit (batch_flush). A row holds the values as
 * SQLite gets them: the series id, not the symbol. The statement is an
 * upsert over many rows, so SQLite keeps a statement journal for it (a
 * copy of each page it changes first): 4096 rows per statement make that
 * ~1 % of a row's cost, where 256 rows made it ~20 %. */
#define BATCH_ROWS 4096

struct batch_row {
	int64_t sid, ts;
	int64_t n;    /* bars: trade count */
	double v[13]; /* bars: o h l c v bv av; feats: rsi .. mom */
	uint32_t f;   /* flags */
	int srclen;   /* bars: bytes of src, 0: NULL */
	char src[MDB_SRC_MAX];
};

struct batch {
	int table;		/* index into tables[] */
	int n;			/* rows queued */
	struct batch_row *rows; /* BATCH_ROWS; NULL when read-only */
};

struct mdb_store {
	sqlite3 *db;
	sqlite3_stmt *q[Q_N];
	struct batch batch[NTABLES]; /* what mdb_bar_batch, mdb_feat_batch hold */
	uint64_t txn_put;	     /* records put in the open (or last) transaction */
	uint64_t txn_changed;	     /* rows of them that added or changed a row */
	char path[4096];
	int found_version;
	bool readonly;
	struct series_slot *series; /* SERIES_CACHE slots; NULL when read-only */
	int nseries;		    /* slots in use */
	bool series_new;	    /* the open transaction added a series */
	/* the checkpointer (read-write stores): its connection and thread */
	sqlite3 *ckpt_db;
	pthread_t ckpt_thread;
	bool ckpt_running;
	pthread_mutex_t ckpt_mu;  /* guards the three flags below */
	pthread_cond_t ckpt_cv;	  /* ckpt_wanted or ckpt_stop became true */
	pthread_cond_t ckpt_idle; /* ckpt_busy became false */
	bool ckpt_wanted, ckpt_stop, ckpt_busy;
	int ckpt_pages; /* WAL pages that start a checkpoint */
	/* where the pruning pass is: the table and series it works on */
	int prune_table;
	int64_t prune_sid; /* 0: none yet */
	char err[512];
};

/* Upserts, one statement per chunk of queued records (struct batch): the
 * rows come from the eponymous virtual table mdb_bar_batch or
 * mdb_feat_batch, in the order they were put, so a key put twice ends with
 * the later values. A row changes only when a value differs, so a repeat
 * changes nothing. (`WHERE true` tells SQLite's parser that ON CONFLICT is
 * the upsert, not a join constraint.) One step per chunk instead of bind,
 * step, reset per record: mdb-write(1), PERFORMANCE. */
static const char bar_sql[] =
    "INSERT INTO bar_data (sid, ts, o, h, l, c, v, n, bv, av, f, src)"
    " SELECT sid, ts, o, h, l, c, v, n, bv, av, f, src FROM mdb_bar_batch WHERE true"
    " ON CONFLICT (sid, ts) DO UPDATE SET o = excluded.o, h = excluded.h, l = excluded.l,"
    " c = excluded.c, v = excluded.v, n = excluded.n,"
    " bv = excluded.bv, av = excluded.av, f = excluded.f, src = excluded.src"
    " WHERE o IS NOT excluded.o OR h IS NOT excluded.h OR l IS NOT excluded.l"
    " OR c IS NOT excluded.c OR v IS NOT excluded.v OR n IS NOT excluded.n"
    " OR bv IS NOT excluded.bv OR av IS NOT excluded.av OR f IS NOT excluded.f"
    " OR src IS NOT excluded.src";

static const char feat_sql[] =
    "INSERT INTO feat_data (sid, ts, rsi, ema12, ema26, bbm, bbu, bbl, atr, vwap, vma,"
    " macd, macds, macdh, mom, f)"
    " SELECT sid, ts, rsi, ema12, ema26, bbm, bbu, bbl, atr, vwap, vma, macd, macds, macdh,"
    " mom, f FROM mdb_feat_batch WHERE true"
    " ON CONFLICT (sid, ts) DO UPDATE SET rsi = excluded.rsi, ema12 = excluded.ema12,"
    " ema26 = excluded.ema26, bbm = excluded.bbm,"
    " bbu = excluded.bbu, bbl = excluded.bbl, atr = excluded.atr,"
    " vwap = excluded.vwap, vma = excluded.vma, macd = excluded.macd,"
    " macds = excluded.macds, macdh = excluded.macdh, mom = excluded.mom,"
    " f = excluded.f"
    " WHERE rsi IS NOT excluded.rsi OR ema12 IS NOT excluded.ema12"
    " OR ema26 IS NOT excluded.ema26 OR bbm IS NOT excluded.bbm"
    " OR bbu IS NOT excluded.bbu OR bbl IS NOT excluded.bbl"
    " OR atr IS NOT excluded.atr OR vwap IS NOT excluded.vwap"
    " OR vma IS NOT excluded.vma OR macd IS NOT excluded.macd"
    " OR macds IS NOT excluded.macds OR macdh IS NOT excluded.macdh"
    " OR mom IS NOT excluded.mom OR f IS NOT excluded.f";

/* The virtual tables' columns, in the order of the statements above. */
static const char bar_batch_ddl[] = "CREATE TABLE x (sid, ts, o, h, l, c, v, n, bv, av, f, src)";
static const char feat_batch_ddl[] =
    "CREATE TABLE x (sid, ts, rsi, ema12, ema26, bbm, bbu, bbl, atr, vwap, vma, macd, macds,"
    " macdh, mom, f)";

/* ---- the batch virtual tables ----
 *
 * mdb_bar_batch and mdb_feat_batch are eponymous-only virtual tables of
 * the writer's connection (nothing of them is stored in the file, so other
 * readers never see them): a full scan, in order, of the rows queued in
 * struct batch. xColumn hands SQLite the values as a bind would. */

struct bvtab {
	sqlite3_vtab base;
	struct batch *b;
};

struct bcursor {
	sqlite3_vtab_cursor base;
	int i; /* the row */
};

static int bv_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **vt,
		      char **errp)
{
	(void)argc;
	(void)argv;
	(void)errp;
	struct batch *b = aux;
	int rc = sqlite3_declare_vtab(db, b->table == 0 ? bar_batch_ddl : feat_batch_ddl);
	if (rc != SQLITE_OK)
		return rc;
	struct bvtab *t = sqlite3_malloc(sizeof *t); /* freed by bv_disconnect */
	if (!t)
		return SQLITE_NOMEM;
	memset(t, 0, sizeof *t);
	t->b = b;
	*vt = &t->base;
	return SQLITE_OK;
}

static int bv_disconnect(sqlite3_vtab *vt)
{
	sqlite3_free(vt);
	return SQLITE_OK;
}

static int bv_best_index(sqlite3_vtab *vt, sqlite3_index_info *info)
{
	(void)vt;
	info->estimatedCost = BATCH_ROWS; /* one full scan: there is no other plan */
	info->estimatedRows = BATCH_ROWS;
	return SQLITE_OK;
}

static int bv_open(sqlite3_vtab *vt, sqlite3_vtab_cursor **cur)
{
	(void)vt;
	struct bcursor *c = sqlite3_malloc(sizeof *c); /* freed by bv_close */
	if (!c)
		return SQLITE_NOMEM;
	memset(c, 0, sizeof *c);
	*cur = &c->base;
	return SQLITE_OK;
}

static int bv_close(sqlite3_vtab_cursor *cur)
{
	sqlite3_free(cur);
	return SQLITE_OK;
}

static int bv_filter(sqlite3_vtab_cursor *cur, int idx, const char *idxstr, int argc,
		     sqlite3_value **argv)
{
	(void)idx;
	(void)idxstr;
	(void)argc;
	(void)argv;
	((struct bcursor *)cur)->i = 0;
	return SQLITE_OK;
}

static int bv_next(sqlite3_vtab_cursor *cur)
{
	((struct bcursor *)cur)->i++;
	return SQLITE_OK;
}

static int bv_eof(sqlite3_vtab_cursor *cur)
{
	struct bcursor *c = (struct bcursor *)cur;
	return c->i >= ((struct bvtab *)cur->pVtab)->b->n;
}

/* NaN (an absent value) is NULL. */
static inline void result_real(sqlite3_context *ctx, double v)
{
	if (isnan(v))
		sqlite3_result_null(ctx);
	else
		sqlite3_result_double(ctx, v);
}

static int bv_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
	struct bcursor *c = (struct bcursor *)cur;
	const struct batch *b = ((struct bvtab *)cur->pVtab)->b;
	const struct batch_row *r = &b->rows[c->i];
	if (col == 0) {
		sqlite3_result_int64(ctx, r->sid);
	} else if (col == 1) {
		sqlite3_result_int64(ctx, r->ts);
	} else if (b->table == 0) { /* o h l c v n bv av f src */
		if (col <= 6)
			result_real(ctx, r->v[col - 2]);
		else if (col == 7)
			sqlite3_result_int64(ctx, r->n);
		else if (col <= 9)
			result_real(ctx, r->v[col - 3]);
		else if (col == 10)
			sqlite3_result_int64(ctx, r->f);
		else if (r->srclen)
			sqlite3_result_text(ctx, r->src, r->srclen, SQLITE_STATIC);
		else
			sqlite3_result_null(ctx);
	} else { /* rsi .. mom f */
		if (col <= 14)
			result_real(ctx, r->v[col - 2]);
		else
			sqlite3_result_int64(ctx, r->f);
	}
	return SQLITE_OK;
}

static int bv_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
	*rowid = ((struct bcursor *)cur)->i;
	return SQLITE_OK;
}

/* No xCreate: eponymous-only, so CREATE VIRTUAL TABLE cannot store one. */
static const sqlite3_module batch_module = {
    .xConnect = bv_connect,
    .xBestIndex = bv_best_index,
    .xDisconnect = bv_disconnect,
    .xOpen = bv_open,
    .xClose = bv_close,
    .xFilter = bv_filter,
    .xNext = bv_next,
    .xEof = bv_eof,
    .xColumn = bv_column,
    .xRowid = bv_rowid,
};

/* Page size of a new database. 16 KiB pages measured ~20 % more rows/s
 * than the 4 KiB default for our rows (fewer b-tree splits, fewer WAL
 * frame headers per row); readers are unaffected. An existing file keeps
 * its page size (WAL mode cannot change it). */
#define NEW_PAGE_SIZE 16384
/* Pages in the WAL before a commit asks for a checkpoint (SQLite's default
 * is 1000): fewer, larger checkpoints copy a page rewritten by many batches
 * once. 4096 pages of 16 KiB match journal_size_limit. The checkpoint runs
 * on a thread of its own (ckpt_main), so that copying the pages and the
 * fsync (0.4 to 4 s for 64 MiB on the build machine) do not stall the
 * writer. The WAL starts again from its beginning only when a batch begins
 * with every frame copied, which a sustained load never leaves time for;
 * past twice as many pages the writer finishes the checkpoint itself and
 * restarts it (wal_hook), which bounds it. */
#define WAL_AUTOCHECKPOINT 4096

/* Process-wide SQLite settings, before its first use: no memory statistics
 * (they take a global mutex on every allocation, ~5 % of a write). */
static void sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* MISUSE if already in use: harmless */
}

/* The checkpointer: PASSIVE checkpoints on its own connection whenever the
 * writer's commit hook asks; a writer appends to the WAL meanwhile, and
 * readers are never held. */
static void *ckpt_main(void *arg)
{
	mdb_store *s = arg;
	pthread_mutex_lock(&s->ckpt_mu); /* released around each checkpoint and in the wait */
	while (!s->ckpt_stop) {
		if (!s->ckpt_wanted) {
			pthread_cond_wait(&s->ckpt_cv, &s->ckpt_mu);
			continue;
		}
		s->ckpt_wanted = false;
		s->ckpt_busy = true;
		pthread_mutex_unlock(&s->ckpt_mu);
		/* a failure (a full disk) leaves the frames in the WAL: the next
		 * request tries again, as SQLite's autocheckpoint would */
		(void)sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
						NULL);
		pthread_mutex_lock(&s->ckpt_mu);
		s->ckpt_busy = false;
		pthread_cond_signal(&s->ckpt_idle);
	}
	pthread_mutex_unlock(&s->ckpt_mu);
	return NULL;
}

/* After each commit of the writer, with the pages now in the WAL. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	mdb_store *s = arg;
	if (pages < s->ckpt_pages)
		return SQLITE_OK;
	pthread_mutex_lock(&s->ckpt_mu);
	if (pages < 2 * s->ckpt_pages) {
		s->ckpt_wanted = true;
		pthread_cond_signal(&s->ckpt_cv);
		pthread_mutex_unlock(&s->ckpt_mu);
		return SQLITE_OK;
	}
	/* The WAL keeps growing: let the checkpointer finish (it holds the
	 * checkpoint lock meanwhile), then copy the little it has not and
	 * RESTART: wait (busy_ms at most) for readers of the old frames, so
	 * that the next batch starts the WAL from its beginning. */
	s->ckpt_wanted = false;
	while (s->ckpt_busy)
		pthread_cond_wait(&s->ckpt_idle, &s->ckpt_mu);
	pthread_mutex_unlock(&s->ckpt_mu);
	(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	return SQLITE_OK;
}

static int sq_errno(sqlite3 *db, int rc);

/* Open the checkpointer's connection and start it (read-write stores). */
static int ckpt_start(mdb_store *s, const struct store_opts *o)
{
	int rc = sqlite3_open_v2(s->path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		snprintf(s->err, sizeof s->err, "open the checkpointer's connection: %s",
			 sqlite3_errmsg(s->ckpt_db));
		return sq_errno(s->ckpt_db, rc);
	}
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", o->synchronous);
	sqlite3_exec(s->ckpt_db, sql, NULL, NULL, NULL);
	if ((rc = pthread_create(&s->ckpt_thread, NULL, ckpt_main, s)) != 0) {
		snprintf(s->err, sizeof s->err, "start the checkpointer: %s", strerror(rc));
		return -rc;
	}
	s->ckpt_running = true;
	s->ckpt_pages = o->ckpt_pages > 0 ? o->ckpt_pages : WAL_AUTOCHECKPOINT;
	sqlite3_wal_hook(s->db, wal_hook, s);
	return 0;
}

void store_opts_default(struct store_opts *o)
{
	memset(o, 0, sizeof *o);
	o->synchronous = "NORMAL";
	o->busy_ms = 1000;
	o->cache_mib = 64;
}

/* SQLite's result code as -errno. A write that failed with ENOSPC shows up
 * as an I/O error; the system errno tells it apart. */
static int sq_errno(sqlite3 *db, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EUCLEAN;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return db && sqlite3_system_errno(db) == EACCES ? -EACCES : -ENOENT;
	case SQLITE_IOERR:
		return db && sqlite3_system_errno(db) == ENOSPC ? -ENOSPC : -EIO;
	default:
		return -EIO;
	}
}

/* Remember what failed; returns the -errno for rc. */
static int fail(mdb_store *s, int rc, const char *what)
{
	snprintf(s->err, sizeof s->err, "%s: %s", what, sqlite3_errmsg(s->db));
	return sq_errno(s->db, rc);
}

static int exec(mdb_store *s, const char *sql, const char *what)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : fail(s, rc, what);
}

/* Step a statement that returns no rows (or whose rows we ignore), reset it. */
static int run(mdb_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : fail(s, rc, what);
}

/* The one integer a query returns, into *out. */
static int query_int(mdb_store *s, const char *sql, int64_t *out, const char *what)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, what);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	int e = rc == SQLITE_ROW ? 0 : fail(s, rc == SQLITE_DONE ? SQLITE_ERROR : rc, what);
	sqlite3_finalize(st);
	return e;
}

/* Bring the schema to STORE_SCHEMA_VERSION under the write lock, so two
 * writers starting at once do not both migrate. */
static int schema_up(mdb_store *s)
{
	int64_t v, ntab;
	int rc = query_int(s, "PRAGMA user_version", &v, "read the schema version");
	if (rc < 0)
		return rc;
	s->found_version = (int)v;
	if (v == STORE_SCHEMA_VERSION)
		return 0;
	if (v > STORE_SCHEMA_VERSION) {
		snprintf(s->err, sizeof s->err,
			 "schema version %d is newer than this program's (%d): upgrade mdb", (int)v,
			 STORE_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (s->readonly)
		return 0; /* --check reports it; only a writer migrates */
	if ((rc = exec(s, "BEGIN IMMEDIATE", "lock the database to create its schema")) < 0)
		return rc;
	/* again under the lock: another writer may have done it meanwhile */
	if ((rc = query_int(s, "PRAGMA user_version", &v, "read the schema version")) < 0 ||
	    (rc = query_int(s, "SELECT count(*) FROM sqlite_schema", &ntab, "read the schema")) < 0)
		goto fail;
	char sql[8192];
	if (v == 0 && ntab > 0) {
		snprintf(s->err, sizeof s->err,
			 "not an mdb database (it has tables but no schema version)");
		rc = -EPROTO;
		goto fail;
	}
	if (v == 0) {
		if ((rc = exec(s, schema_v3, "create the schema")) < 0)
			goto fail;
	} else {
		for (; v < STORE_SCHEMA_VERSION; v++) {
			char what[64];
			snprintf(what, sizeof what, "migrate the schema from version %d", (int)v);
			if (!migrations[v].sql) {
				snprintf(s->err, sizeof s->err, "no migration from version %d",
					 (int)v);
				rc = -EPROTO;
				goto fail;
			}
			snprintf(sql, sizeof sql, migrations[v].sql, migrations[v].schema);
			if ((rc = exec(s, sql, what)) < 0)
				goto fail;
		}
	}
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	if ((rc = exec(s, sql, "set the schema version")) < 0 ||
	    (rc = exec(s, "COMMIT", "commit the schema")) < 0)
		goto fail;
	return 0;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int prepare(mdb_store *s)
{
	char sql[Q_N][512];
	const char *src[Q_N] = {
	    [Q_BEGIN] = "BEGIN IMMEDIATE",
	    [Q_COMMIT] = "COMMIT",
	    [Q_ROLLBACK] = "ROLLBACK",
	    [Q_BAR] = bar_sql,
	    [Q_FEAT] = feat_sql,
	    [Q_SERIES_GET] = "SELECT id FROM series WHERE symbol = ?1 AND iv = ?2",
	    [Q_SERIES_ADD] = "INSERT INTO series (symbol, iv) VALUES (?1, ?2)",
	    [Q_SERIES_NEXT] = "SELECT id FROM series WHERE id > ?1 ORDER BY id LIMIT 1",
	    [Q_CURSOR_PUT] =
		"INSERT INTO cursors (ring, consumer, position, updated_ns)"
		" VALUES (?1, ?2, ?3, CAST((julianday('now') - 2440587.5)"
		" * 86400000000000 AS INTEGER))"
		" ON CONFLICT (ring, consumer) DO UPDATE SET position = excluded.position,"
		" updated_ns = excluded.updated_ns",
	    [Q_CURSOR_GET] = "SELECT position FROM cursors WHERE ring = ?1 AND consumer = ?2",
	};
	for (int t = 0; t < NTABLES; t++) {
		/* the limit-th oldest row's ts bounds the range: one key-range delete */
		snprintf(sql[Q_PRUNE + t], sizeof sql[0],
			 "DELETE FROM %s WHERE sid = ?1 AND ts < coalesce(("
			 "SELECT ts FROM %s WHERE sid = ?1 AND ts < ?2"
			 " ORDER BY ts LIMIT 1 OFFSET ?3), ?2)",
			 tables[t], tables[t]);
		src[Q_PRUNE + t] = sql[Q_PRUNE + t];
	}
	for (int i = 0; i < Q_N; i++) {
		int rc = sqlite3_prepare_v3(s->db, src[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i],
					    NULL);
		if (rc != SQLITE_OK)
			return fail(s, rc, "prepare the statements");
	}
	return 0;
}

mdb_store *store_open(const char *path, const struct store_opts *o, int *err, char *errbuf,
		      size_t errlen)
{
	struct store_opts def;
	if (!o) {
		store_opts_default(&def);
		o = &def;
	}
	mdb_store *s = calloc(1, sizeof *s);
	if (!s) {
		*err = -ENOMEM;
		snprintf(errbuf, errlen, "%s: out of memory", path);
		return NULL;
	}
	s->readonly = o->readonly;
	pthread_mutex_init(&s->ckpt_mu, NULL);
	pthread_cond_init(&s->ckpt_cv, NULL);
	pthread_cond_init(&s->ckpt_idle, NULL);
	if (!o->readonly && (!(s->series = calloc(SERIES_CACHE, sizeof *s->series)) ||
			     !(s->batch[0].rows = calloc(BATCH_ROWS, sizeof *s->batch[0].rows)) ||
			     !(s->batch[1].rows = calloc(BATCH_ROWS, sizeof *s->batch[1].rows)))) {
		free(s->batch[0].rows);
		free(s->series);
		free(s);
		*err = -ENOMEM;
		snprintf(errbuf, errlen, "%s: out of memory", path);
		return NULL;
	}
	snprintf(s->path, sizeof s->path, "%s", path);
	int flags = o->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, sqlite_setup);
	int rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = fail(s, rc, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, o->busy_ms);
	for (int t = 0; t < NTABLES; t++) {
		s->batch[t].table = t;
		rc = sqlite3_create_module_v2(s->db, t == 0 ? "mdb_bar_batch" : "mdb_feat_batch",
					      &batch_module, &s->batch[t], NULL);
		if (rc != SQLITE_OK) {
			rc = fail(s, rc, "register the batch tables");
			goto fail;
		}
	}
	char sql[256];
	int64_t v;
	/* the first read of the file: a corrupt file or a non-database shows here */
	if ((rc = query_int(s, "PRAGMA schema_version", &v, "read the database")) < 0)
		goto fail;
	if (!o->readonly) {
		/* only takes on a new file, and must come before WAL */
		snprintf(sql, sizeof sql, "PRAGMA page_size = %d", NEW_PAGE_SIZE);
		if ((rc = exec(s, sql, "set page_size")) < 0)
			goto fail;
		sqlite3_stmt *st;
		if ((rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL)) !=
		    SQLITE_OK) {
			rc = fail(s, rc, "switch to WAL");
			goto fail;
		}
		rc = sqlite3_step(st);
		bool wal = rc == SQLITE_ROW &&
			   strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
		sqlite3_finalize(st);
		if (!wal) {
			rc = rc == SQLITE_ROW ? -EIO : fail(s, rc, "switch to WAL");
			if (rc == -EIO)
				snprintf(s->err, sizeof s->err, "switch to WAL: refused");
			goto fail;
		}
		snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", o->synchronous);
		if ((rc = exec(s, sql, "set synchronous")) < 0)
			goto fail;
		/* keep a burst's WAL from staying on disk at its largest size */
		if ((rc = exec(s, "PRAGMA journal_size_limit = 67108864",
			       "set journal_size_limit")) < 0)
			goto fail;
		/* checkpoints are ckpt_main's (set up after the schema) */
		if ((rc = exec(s, "PRAGMA wal_autocheckpoint = 0", "set wal_autocheckpoint")) < 0)
			goto fail;
	}
	snprintf(sql, sizeof sql, "PRAGMA cache_size = %d",
		 -1024 * (o->cache_mib ? o->cache_mib : 2));
	if ((rc = exec(s, sql, "set cache_size")) < 0 ||
	    (rc = exec(s, "PRAGMA temp_store = MEMORY", "set temp_store")) < 0)
		goto fail;
	if (o->max_bytes) {
		int64_t psz;
		if ((rc = query_int(s, "PRAGMA page_size", &psz, "read page_size")) < 0)
			goto fail;
		snprintf(sql, sizeof sql, "PRAGMA max_page_count = %llu",
			 (unsigned long long)(o->max_bytes / (uint64_t)psz));
		if ((rc = exec(s, sql, "set max_page_count")) < 0)
			goto fail;
	}
	if ((rc = schema_up(s)) < 0)
		goto fail;
	if (s->found_version == STORE_SCHEMA_VERSION || !o->readonly) {
		if ((rc = prepare(s)) < 0)
			goto fail;
	}
	if (!o->readonly && (rc = ckpt_start(s, o)) < 0)
		goto fail;
	return s;
fail:
	*err = rc;
	snprintf(errbuf, errlen, "%s: %s", path, s->err[0] ? s->err : sqlite3_errstr(SQLITE_ERROR));
	store_close(&s);
	return NULL;
}

void store_close(mdb_store **sp)
{
	if (!sp || !*sp)
		return;
	mdb_store *s = *sp;
	if (s->ckpt_running) {
		pthread_mutex_lock(&s->ckpt_mu);
		s->ckpt_stop = true;
		pthread_cond_signal(&s->ckpt_cv);
		pthread_mutex_unlock(&s->ckpt_mu);
		pthread_join(s->ckpt_thread, NULL);
	}
	sqlite3_close(s->ckpt_db);
	if (s->db && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(s->q[i]);
	sqlite3_close(s->db);
	free(s->series);
	for (int t = 0; t < NTABLES; t++)
		free(s->batch[t].rows);
	pthread_mutex_destroy(&s->ckpt_mu);
	pthread_cond_destroy(&s->ckpt_cv);
	pthread_cond_destroy(&s->ckpt_idle);
	free(s);
	*sp = NULL;
}

const char *store_errmsg(const mdb_store *s)
{
	return s->err;
}

int store_found_version(const mdb_store *s)
{
	return s->found_version;
}

/* ---- the writer ---- */

/* Drop what is queued (the transaction it was for is gone). */
static void batch_clear(mdb_store *s)
{
	for (int t = 0; t < NTABLES; t++)
		s->batch[t].n = 0;
}

int store_begin(mdb_store *s)
{
	batch_clear(s);
	s->txn_put = s->txn_changed = 0;
	return run(s, s->q[Q_BEGIN], "begin a transaction");
}

/* Write table t's queued rows with one statement. Returns the rows added
 * or changed, or -errno (the chunk is dropped either way: a failure rolls
 * the transaction back). */
static int batch_flush(mdb_store *s, int t)
{
	if (!s->batch[t].n)
		return 0;
	sqlite3_stmt *st = s->q[t == 0 ? Q_BAR : Q_FEAT];
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	s->batch[t].n = 0;
	if (rc != SQLITE_DONE)
		return fail(s, rc, t == 0 ? "write bars" : "write feats");
	int n = sqlite3_changes(s->db);
	s->txn_changed += (uint64_t)n;
	return n;
}

int store_flush(mdb_store *s)
{
	int n = 0;
	for (int t = 0; t < NTABLES; t++) {
		int rc = batch_flush(s, t);
		if (rc < 0) {
			batch_clear(s);
			return rc;
		}
		n += rc;
	}
	return n;
}

/* A rolled-back transaction takes the series it added with it: forget
 * every cached id, since one of them may now name nothing (or, later,
 * another series). */
static void series_forget(mdb_store *s)
{
	if (s->series_new && s->series) {
		memset(s->series, 0, SERIES_CACHE * sizeof *s->series);
		s->nseries = 0;
	}
	s->series_new = false;
}

int store_commit(mdb_store *s)
{
	int rc = store_flush(s);
	if (rc >= 0)
		rc = run(s, s->q[Q_COMMIT], "commit");
	/* a failed COMMIT may leave the transaction open (SQLITE_BUSY does) */
	if (rc < 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	if (rc < 0)
		series_forget(s);
	s->series_new = false;
	return rc < 0 ? rc : 0;
}

void store_rollback(mdb_store *s)
{
	batch_clear(s);
	if (!sqlite3_get_autocommit(s->db))
		run(s, s->q[Q_ROLLBACK], "roll back");
	series_forget(s);
}

void store_txn_counts(const mdb_store *s, uint64_t *put, uint64_t *changed)
{
	*put = s->txn_put;
	*changed = s->txn_changed;
}

/* The id of series (sym, iv), added to `series` if new (inside the open
 * transaction). Returns 0 with *id set, or -errno. */
static int series_id(mdb_store *s, const char *sym, int64_t iv, int64_t *id)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a over the symbol, then iv */
	for (const char *c = sym; *c; c++)
		h = (h ^ (uint8_t)*c) * 1099511628211ull;
	h = (h ^ (uint64_t)iv) * 1099511628211ull;
	struct series_slot *e;
	for (size_t i = h & (SERIES_CACHE - 1);; i = (i + 1) & (SERIES_CACHE - 1)) {
		e = &s->series[i];
		if (!e->id)
			break;
		if (e->iv == iv && strcmp(e->sym, sym) == 0) {
			*id = e->id;
			return 0;
		}
	}
	sqlite3_stmt *st = s->q[Q_SERIES_GET];
	sqlite3_bind_text(st, 1, sym, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, iv);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE) {
		st = s->q[Q_SERIES_ADD];
		sqlite3_bind_text(st, 1, sym, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, iv);
		if ((rc = run(s, st, "add a series")) < 0)
			return rc;
		*id = sqlite3_last_insert_rowid(s->db);
		s->series_new = true;
	} else if (rc != SQLITE_ROW) {
		return fail(s, rc, "look up a series");
	}
	if (s->nseries >= SERIES_CACHE / 4 * 3) { /* full: start again */
		memset(s->series, 0, SERIES_CACHE * sizeof *s->series);
		s->nseries = 0;
		return 0; /* the next record of it looks it up again */
	}
	e->id = *id;
	e->iv = iv;
	snprintf(e->sym, sizeof e->sym, "%s", sym);
	s->nseries++;
	return 0;
}

int store_put(mdb_store *s, const struct mdb_record *r)
{
	int t, rc;
	int64_t sid = 0;
	if (s->readonly)
		return -EROFS;
	if (r->t == MDB_REC_BAR)
		t = 0;
	else if (r->t == MDB_REC_FEAT)
		t = 1;
	else
		return -EINVAL;
	if ((rc = series_id(s, r->s, t == 0 ? r->bar.iv : r->feat.iv, &sid)) < 0)
		return rc;
	struct batch *b = &s->batch[t];
	struct batch_row *w = &b->rows[b->n];
	w->sid = sid;
	w->ts = r->ts;
	if (t == 0) {
		const struct mdb_bar *x = &r->bar;
		w->v[0] = x->o;
		w->v[1] = x->h;
		w->v[2] = x->l;
		w->v[3] = x->c;
		w->v[4] = x->v;
		w->v[5] = x->bv;
		w->v[6] = x->av;
		w->n = x->n;
		w->f = x->f;
		w->srclen = (int)strnlen(r->src, sizeof r->src - 1);
		memcpy(w->src, r->src, (size_t)w->srclen);
	} else {
		const struct mdb_feat *x = &r->feat;
		const double v[] = {x->rsi,  x->ema12, x->ema26, x->bbm,   x->bbu,   x->bbl, x->atr,
				    x->vwap, x->vma,   x->macd,	 x->macds, x->macdh, x->mom};
		memcpy(w->v, v, sizeof v);
		w->f = x->f;
	}
	s->txn_put++;
	if (++b->n < BATCH_ROWS)
		return 0;
	rc = batch_flush(s, t);
	if (rc < 0)
		batch_clear(s);
	return rc < 0 ? rc : 0;
}

int store_cursor_put(mdb_store *s, const char *ring, const char *consumer, uint64_t pos)
{
	sqlite3_stmt *st = s->q[Q_CURSOR_PUT];
	sqlite3_bind_text(st, 1, ring, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, consumer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)pos);
	return run(s, st, "save a ring cursor");
}

int store_cursor_get(mdb_store *s, const char *ring, const char *consumer, uint64_t *pos)
{
	sqlite3_stmt *st = s->q[Q_CURSOR_GET];
	sqlite3_bind_text(st, 1, ring, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, consumer, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*pos = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? -ENOENT : fail(s, rc, "read a ring cursor");
}

/* ---- retention ---- */

/* Move the pass to the next series of its table, or to the first of the
 * next table: 1 found, 0 none left, -errno. */
static int prune_next(mdb_store *s)
{
	sqlite3_stmt *st = s->q[Q_SERIES_NEXT];
	while (s->prune_table < NTABLES) {
		sqlite3_bind_int64(st, 1, s->prune_sid);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			s->prune_sid = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (rc == SQLITE_ROW)
			return 1;
		if (rc != SQLITE_DONE)
			return fail(s, rc, "find a series to prune");
		s->prune_table++;
		s->prune_sid = 0;
	}
	return 0;
}

int store_prune_step(mdb_store *s, int64_t cutoff_ns, int limit, int64_t *deleted)
{
	*deleted = 0;
	int rc;
	if (!s->prune_sid && (rc = prune_next(s)) <= 0) {
		s->prune_table = 0; /* the pass is over; the next call starts another */
		return rc;
	}
	if ((rc = store_begin(s)) < 0)
		return rc;
	sqlite3_stmt *st = s->q[Q_PRUNE + s->prune_table];
	sqlite3_bind_int64(st, 1, s->prune_sid);
	sqlite3_bind_int64(st, 2, cutoff_ns);
	sqlite3_bind_int(st, 3, limit > 0 ? limit : 1);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		rc = fail(s, rc, "prune");
		store_rollback(s);
		return rc;
	}
	*deleted = sqlite3_changes(s->db);
	if ((rc = store_commit(s)) < 0)
		return rc;
	/* a short chunk means this series is done: on to the next */
	if (*deleted < limit && (rc = prune_next(s)) <= 0) {
		s->prune_table = 0;
		s->prune_sid = 0;
		return rc;
	}
	return 1;
}

/* ---- inspection ---- */

int store_empty(mdb_store *s)
{
	int64_t any;
	int rc = query_int(
	    s, "SELECT EXISTS (SELECT 1 FROM bar_data) OR EXISTS (SELECT 1 FROM feat_data)", &any,
	    "look for rows");
	return rc < 0 ? rc : !any;
}

int store_integrity(mdb_store *s, char *msg, size_t len)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "integrity check");
	rc = sqlite3_step(st);
	int e = 0;
	if (rc == SQLITE_ROW) {
		const char *m = (const char *)sqlite3_column_text(st, 0);
		snprintf(msg, len, "%s", m ? m : "");
		e = m && strcmp(m, "ok") == 0 ? 0 : -EUCLEAN;
	} else {
		e = fail(s, rc, "integrity check");
		snprintf(msg, len, "%s", s->err);
	}
	sqlite3_finalize(st);
	return e;
}

int store_summary(mdb_store *s, int (*fn)(const struct store_series *ser, void *arg), void *arg)
{
	for (int t = 0; t < NTABLES; t++) {
		char sql[256];
		sqlite3_stmt *st;
		snprintf(sql, sizeof sql,
			 "SELECT s.symbol, s.iv, count(*), min(d.ts), max(d.ts) FROM %s d"
			 " JOIN series s ON s.id = d.sid GROUP BY d.sid ORDER BY s.symbol, s.iv",
			 tables[t]);
		int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
		if (rc != SQLITE_OK)
			return fail(s, rc, "summary");
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const unsigned char *sym = sqlite3_column_text(st, 0);
			struct store_series ser = {
			    .table = views[t],
			    .symbol = sym ? (const char *)sym : "",
			    .iv = sqlite3_column_int64(st, 1),
			    .rows = sqlite3_column_int64(st, 2),
			    .first_ts = sqlite3_column_int64(st, 3),
			    .last_ts = sqlite3_column_int64(st, 4),
			};
			int r = fn(&ser, arg);
			if (r) {
				sqlite3_finalize(st);
				return r;
			}
		}
		int e = rc == SQLITE_DONE ? 0 : fail(s, rc, "summary");
		sqlite3_finalize(st);
		if (e < 0)
			return e;
	}
	return 0;
}

int store_history(mdb_store *s, const struct store_range *q,
		  int (*fn)(const struct mdb_record *bar, const struct mdb_record *feat, void *arg),
		  void *arg)
{
	/* the newest N are found walking the key backwards, then put in order */
	static const char cols[] =
	    "SELECT b.ts, b.o, b.h, b.l, b.c, b.v, b.n, b.bv, b.av, b.f, b.src,"
	    " f.rsi, f.ema12, f.ema26, f.bbm, f.bbu, f.bbl, f.atr, f.vwap, f.vma, f.macd,"
	    " f.macds, f.macdh, f.mom, f.f, f.ts IS NOT NULL"
	    " FROM bar_data b LEFT JOIN feat_data f ON f.sid = b.sid AND f.ts = b.ts"
	    " WHERE b.sid = (SELECT id FROM series WHERE symbol = ?1 AND iv = ?2)"
	    " AND b.ts >= ?3 AND b.ts < ?4";
	char sql[1024];
	if (q->newest)
		snprintf(sql, sizeof sql,
			 "SELECT * FROM (%s ORDER BY b.ts DESC LIMIT ?5) ORDER BY 1", cols);
	else
		snprintf(sql, sizeof sql, "%s ORDER BY b.ts LIMIT ?5", cols);
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return fail(s, rc, "history");
	sqlite3_bind_text(st, 1, q->symbol, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, q->iv);
	sqlite3_bind_int64(st, 3, q->from_ns);
	sqlite3_bind_int64(st, 4, q->to_ns);
	sqlite3_bind_int(st, 5, q->limit > 0 ? q->limit : 1);
	struct mdb_record bar, feat;
	/* a NULL column (never stored) reads back as NaN: "absent" in a record */
#define COL_D(i) (sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i))
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		record_init(&bar, MDB_REC_BAR);
		snprintf(bar.s, sizeof bar.s, "%s", q->symbol);
		bar.ts = sqlite3_column_int64(st, 0);
		bar.bar.iv = (int32_t)q->iv;
		bar.bar.o = COL_D(1);
		bar.bar.h = COL_D(2);
		bar.bar.l = COL_D(3);
		bar.bar.c = COL_D(4);
		bar.bar.v = COL_D(5);
		bar.bar.n = sqlite3_column_int64(st, 6);
		bar.bar.bv = COL_D(7);
		bar.bar.av = COL_D(8);
		bar.bar.f = (uint32_t)sqlite3_column_int64(st, 9);
		const unsigned char *src = sqlite3_column_text(st, 10);
		snprintf(bar.src, sizeof bar.src, "%s", src ? (const char *)src : "");
		record_init(&feat, sqlite3_column_int(st, 25) ? MDB_REC_FEAT : MDB_REC_NONE);
		if (feat.t == MDB_REC_FEAT) {
			memcpy(feat.s, bar.s, sizeof feat.s);
			feat.ts = bar.ts;
			feat.feat.iv = bar.bar.iv;
			double *v[] = {&feat.feat.rsi,	&feat.feat.ema12, &feat.feat.ema26,
				       &feat.feat.bbm,	&feat.feat.bbu,	  &feat.feat.bbl,
				       &feat.feat.atr,	&feat.feat.vwap,  &feat.feat.vma,
				       &feat.feat.macd, &feat.feat.macds, &feat.feat.macdh,
				       &feat.feat.mom};
			for (int i = 0; i < 13; i++)
				*v[i] = COL_D(11 + i);
			feat.feat.f = (uint32_t)sqlite3_column_int64(st, 24);
		}
		int r = fn(&bar, &feat, arg);
		if (r) {
			sqlite3_finalize(st);
			return r;
		}
	}
#undef COL_D
	int e = rc == SQLITE_DONE ? 0 : fail(s, rc, "history");
	sqlite3_finalize(st);
	return e;
}

int store_size(mdb_store *s, uint64_t *db_bytes, uint64_t *wal_bytes)
{
	int64_t pages, psz;
	int rc;
	if ((rc = query_int(s, "PRAGMA page_count", &pages, "page_count")) < 0 ||
	    (rc = query_int(s, "PRAGMA page_size", &psz, "page_size")) < 0)
		return rc;
	*db_bytes = (uint64_t)(pages * psz);
	char wal[sizeof s->path + 8];
	struct stat st;
	snprintf(wal, sizeof wal, "%s-wal", s->path);
	*wal_bytes = stat(wal, &st) == 0 ? (uint64_t)st.st_size : 0;
	return 0;
}

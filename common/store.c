/* store.c - the SQLite history store.
 *
 * Every statement is prepared once in store_open() and reset after each
 * use, so the write path is bind, step, reset: no SQL parsing and no
 * allocation of ours per record. Text binds are SQLITE_STATIC: the record
 * outlives the step that reads it.
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

/* The current schema, made in one go on a new file. Keep mdb-write.1.scd's
 * SCHEMA section in step with it. */
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

/* migrations[v] takes a database from version v to v + 1. Version 1 (the
 * first prototype) kept bars in a rowid table with a UNIQUE index, had no
 * bv/av/src columns and no feats, and one cursor per ring:
 *   bars(symbol, iv, ts, o, h, l, c, v, n, f, UNIQUE(symbol, iv, ts))
 *   cursors(ring TEXT PRIMARY KEY, position) */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
    [1] = "ALTER TABLE bars RENAME TO bars_v1;"
	  "ALTER TABLE cursors RENAME TO cursors_v1;"
	  "%s" /* schema_v2 */
	  "INSERT INTO bars (symbol, iv, ts, o, h, l, c, v, n, f)"
	  " SELECT symbol, iv, ts, o, h, l, c, v, n, f FROM bars_v1;"
	  "INSERT INTO cursors (ring, consumer, position, updated_ns)"
	  " SELECT ring, 'mdb-write', position, 0 FROM cursors_v1;"
	  "DROP TABLE bars_v1;"
	  "DROP TABLE cursors_v1;",
};

static const char *const tables[] = {"bars", "feats"};
#define NTABLES 2

enum {
	Q_BEGIN,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_BAR,
	Q_FEAT,
	Q_CURSOR_PUT,
	Q_CURSOR_GET,
	Q_FIRST_SERIES, /* + table: one per table */
	Q_NEXT_SERIES = Q_FIRST_SERIES + NTABLES,
	Q_PRUNE = Q_NEXT_SERIES + NTABLES,
	Q_N = Q_PRUNE + NTABLES,
};

struct mdb_store {
	sqlite3 *db;
	sqlite3_stmt *q[Q_N];
	char path[4096];
	int found_version;
	bool readonly;
	/* where the pruning pass is: the series it works on */
	int prune_table;
	bool prune_have;
	char prune_sym[256];
	int64_t prune_iv;
	char err[512];
};

static const char bar_sql[] =
    "INSERT INTO bars (symbol, iv, ts, o, h, l, c, v, n, bv, av, f, src)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    " ON CONFLICT (symbol, iv, ts) DO UPDATE SET o = excluded.o, h = excluded.h,"
    " l = excluded.l, c = excluded.c, v = excluded.v, n = excluded.n, bv = excluded.bv,"
    " av = excluded.av, f = excluded.f, src = excluded.src"
    " WHERE o IS NOT excluded.o OR h IS NOT excluded.h OR l IS NOT excluded.l"
    " OR c IS NOT excluded.c OR v IS NOT excluded.v OR n IS NOT excluded.n"
    " OR bv IS NOT excluded.bv OR av IS NOT excluded.av OR f IS NOT excluded.f"
    " OR src IS NOT excluded.src";

static const char feat_sql[] =
    "INSERT INTO feats (symbol, iv, ts, rsi, ema12, ema26, bbm, bbu, bbl, atr, vwap, vma,"
    " macd, macds, macdh, mom, f)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    " ON CONFLICT (symbol, iv, ts) DO UPDATE SET rsi = excluded.rsi,"
    " ema12 = excluded.ema12, ema26 = excluded.ema26, bbm = excluded.bbm,"
    " bbu = excluded.bbu, bbl = excluded.bbl, atr = excluded.atr, vwap = excluded.vwap,"
    " vma = excluded.vma, macd = excluded.macd, macds = excluded.macds,"
    " macdh = excluded.macdh, mom = excluded.mom, f = excluded.f"
    " WHERE rsi IS NOT excluded.rsi OR ema12 IS NOT excluded.ema12"
    " OR ema26 IS NOT excluded.ema26 OR bbm IS NOT excluded.bbm OR bbu IS NOT excluded.bbu"
    " OR bbl IS NOT excluded.bbl OR atr IS NOT excluded.atr OR vwap IS NOT excluded.vwap"
    " OR vma IS NOT excluded.vma OR macd IS NOT excluded.macd"
    " OR macds IS NOT excluded.macds OR macdh IS NOT excluded.macdh"
    " OR mom IS NOT excluded.mom OR f IS NOT excluded.f";

/* Page size of a new database. 16 KiB pages measured ~20 % more rows/s
 * than the 4 KiB default for our rows (fewer b-tree splits, fewer WAL
 * frame headers per row); readers are unaffected. An existing file keeps
 * its page size (WAL mode cannot change it). */
#define NEW_PAGE_SIZE 16384
/* Pages in the WAL before a commit checkpoints it (SQLite's default is
 * 1000): fewer, larger checkpoints copy a page rewritten by many batches
 * once. 4096 pages of 16 KiB match journal_size_limit. */
#define WAL_AUTOCHECKPOINT 4096

/* Process-wide SQLite settings, before its first use: no memory statistics
 * (they take a global mutex on every allocation, ~5 % of a write). */
static void sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* MISUSE if already in use: harmless */
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
	char sql[4096];
	if (v == 0 && ntab > 0) {
		snprintf(s->err, sizeof s->err,
			 "not an mdb database (it has tables but no schema version)");
		rc = -EPROTO;
		goto fail;
	}
	if (v == 0) {
		if ((rc = exec(s, schema_v2, "create the schema")) < 0)
			goto fail;
	} else {
		for (; v < STORE_SCHEMA_VERSION; v++) {
			char what[64];
			snprintf(what, sizeof what, "migrate the schema from version %d", (int)v);
			if (!migrations[v]) {
				snprintf(s->err, sizeof s->err, "no migration from version %d",
					 (int)v);
				rc = -EPROTO;
				goto fail;
			}
			snprintf(sql, sizeof sql, migrations[v], schema_v2);
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
	    [Q_CURSOR_PUT] =
		"INSERT INTO cursors (ring, consumer, position, updated_ns)"
		" VALUES (?1, ?2, ?3, CAST((julianday('now') - 2440587.5)"
		" * 86400000000000 AS INTEGER))"
		" ON CONFLICT (ring, consumer) DO UPDATE SET position = excluded.position,"
		" updated_ns = excluded.updated_ns",
	    [Q_CURSOR_GET] = "SELECT position FROM cursors WHERE ring = ?1 AND consumer = ?2",
	};
	for (int t = 0; t < NTABLES; t++) {
		snprintf(sql[Q_FIRST_SERIES + t], sizeof sql[0],
			 "SELECT symbol, iv FROM %s ORDER BY symbol, iv LIMIT 1", tables[t]);
		/* a row-value range on the key: one index seek per series */
		snprintf(sql[Q_NEXT_SERIES + t], sizeof sql[0],
			 "SELECT symbol, iv FROM %s WHERE (symbol, iv) > (?1, ?2)"
			 " ORDER BY symbol, iv LIMIT 1",
			 tables[t]);
		/* the limit-th oldest row's ts bounds the range: one key-range delete */
		snprintf(sql[Q_PRUNE + t], sizeof sql[0],
			 "DELETE FROM %s WHERE symbol = ?1 AND iv = ?2 AND ts < coalesce(("
			 "SELECT ts FROM %s WHERE symbol = ?1 AND iv = ?2 AND ts < ?3"
			 " ORDER BY ts LIMIT 1 OFFSET ?4), ?3)",
			 tables[t], tables[t]);
		src[Q_FIRST_SERIES + t] = sql[Q_FIRST_SERIES + t];
		src[Q_NEXT_SERIES + t] = sql[Q_NEXT_SERIES + t];
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
		snprintf(sql, sizeof sql, "PRAGMA wal_autocheckpoint = %d", WAL_AUTOCHECKPOINT);
		if ((rc = exec(s, sql, "set wal_autocheckpoint")) < 0)
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
	if (s->db && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	for (int i = 0; i < Q_N; i++)
		sqlite3_finalize(s->q[i]);
	sqlite3_close(s->db);
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

int store_begin(mdb_store *s)
{
	return run(s, s->q[Q_BEGIN], "begin a transaction");
}

int store_commit(mdb_store *s)
{
	int rc = run(s, s->q[Q_COMMIT], "commit");
	/* a failed COMMIT may leave the transaction open (SQLITE_BUSY does) */
	if (rc < 0 && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

void store_rollback(mdb_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		run(s, s->q[Q_ROLLBACK], "roll back");
}

/* NaN (an absent value) binds as NULL: SQLite does that itself, but say so. */
static inline void bind_real(sqlite3_stmt *st, int i, double v)
{
	if (isnan(v))
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_double(st, i, v);
}

int store_put(mdb_store *s, const struct mdb_record *r)
{
	sqlite3_stmt *st;
	if (r->t == MDB_REC_BAR) {
		const struct mdb_bar *b = &r->bar;
		st = s->q[Q_BAR];
		sqlite3_bind_int64(st, 2, b->iv);
		bind_real(st, 4, b->o);
		bind_real(st, 5, b->h);
		bind_real(st, 6, b->l);
		bind_real(st, 7, b->c);
		bind_real(st, 8, b->v);
		sqlite3_bind_int64(st, 9, b->n);
		bind_real(st, 10, b->bv);
		bind_real(st, 11, b->av);
		sqlite3_bind_int64(st, 12, b->f);
		if (r->src[0])
			sqlite3_bind_text(st, 13, r->src, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 13);
	} else if (r->t == MDB_REC_FEAT) {
		const struct mdb_feat *f = &r->feat;
		const double v[] = {f->rsi,  f->ema12, f->ema26, f->bbm,   f->bbu,   f->bbl, f->atr,
				    f->vwap, f->vma,   f->macd,	 f->macds, f->macdh, f->mom};
		st = s->q[Q_FEAT];
		sqlite3_bind_int64(st, 2, f->iv);
		for (int i = 0; i < 13; i++)
			bind_real(st, 4 + i, v[i]);
		sqlite3_bind_int64(st, 17, f->f);
	} else {
		return -EINVAL;
	}
	sqlite3_bind_text(st, 1, r->s, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, r->ts);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return fail(s, rc, r->t == MDB_REC_BAR ? "write a bar" : "write a feat");
	return sqlite3_changes(s->db) > 0;
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

/* Move the pass to the next series: 1 found, 0 none left, -errno. */
static int prune_next(mdb_store *s)
{
	while (s->prune_table < NTABLES) {
		sqlite3_stmt *st;
		if (!s->prune_have) {
			st = s->q[Q_FIRST_SERIES + s->prune_table];
		} else {
			st = s->q[Q_NEXT_SERIES + s->prune_table];
			sqlite3_bind_text(st, 1, s->prune_sym, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 2, s->prune_iv);
		}
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const unsigned char *sym = sqlite3_column_text(st, 0);
			snprintf(s->prune_sym, sizeof s->prune_sym, "%s",
				 sym ? (const char *)sym : "");
			s->prune_iv = sqlite3_column_int64(st, 1);
			s->prune_have = true;
			sqlite3_reset(st);
			return 1;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return fail(s, rc, "find a series to prune");
		s->prune_table++;
		s->prune_have = false;
	}
	return 0;
}

int store_prune_step(mdb_store *s, int64_t cutoff_ns, int limit, int64_t *deleted)
{
	*deleted = 0;
	int rc;
	if (!s->prune_have && (rc = prune_next(s)) <= 0) {
		s->prune_table = 0; /* the pass is over; the next call starts another */
		return rc;
	}
	if ((rc = store_begin(s)) < 0)
		return rc;
	sqlite3_stmt *st = s->q[Q_PRUNE + s->prune_table];
	sqlite3_bind_text(st, 1, s->prune_sym, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, s->prune_iv);
	sqlite3_bind_int64(st, 3, cutoff_ns);
	sqlite3_bind_int(st, 4, limit > 0 ? limit : 1);
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
		s->prune_have = false;
		return rc;
	}
	return 1;
}

/* ---- inspection ---- */

int store_empty(mdb_store *s)
{
	int64_t any;
	int rc = query_int(s, "SELECT EXISTS (SELECT 1 FROM bars) OR EXISTS (SELECT 1 FROM feats)",
			   &any, "look for rows");
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
			 "SELECT symbol, iv, count(*), min(ts), max(ts) FROM %s"
			 " GROUP BY symbol, iv ORDER BY symbol, iv",
			 tables[t]);
		int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
		if (rc != SQLITE_OK)
			return fail(s, rc, "summary");
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			const unsigned char *sym = sqlite3_column_text(st, 0);
			struct store_series ser = {
			    .table = tables[t],
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
	    " FROM bars b LEFT JOIN feats f ON f.symbol = b.symbol AND f.iv = b.iv AND f.ts = b.ts"
	    " WHERE b.symbol = ?1 AND b.iv = ?2 AND b.ts >= ?3 AND b.ts < ?4";
	char sql[1024];
	if (q->newest)
		snprintf(sql, sizeof sql, "SELECT * FROM (%s ORDER BY b.ts DESC LIMIT ?5) ORDER BY 1",
			 cols);
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

/* test_store.c - common/store: upserts, cursors, retention, migrations,
 * errors (locked, full, corrupt, foreign), inspection. */
#include <criterion/criterion.h>

#include "store.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY_NS (86400LL * 1000000000LL)
#define MIN_NS 60000000000LL

static char dir[64];
static char path[128];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/mdb-store-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/h.db", dir);
}

static void teardown(void)
{
	tu_rm_rf(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

static mdb_store *open_ok(const struct store_opts *o)
{
	char msg[512];
	int err = 0;
	mdb_store *s = store_open(path, o, &err, msg, sizeof msg);
	cr_assert_not_null(s, "store_open: %s (%d)", msg, err);
	return s;
}

/* Run SQL on a connection of our own (a reader, or a tool like sqlite3). */
static void sql(const char *q)
{
	sqlite3 *db;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	char *e = NULL;
	cr_assert_eq(sqlite3_exec(db, q, NULL, NULL, &e), SQLITE_OK, "%s: %s", q, e);
	sqlite3_close(db);
}

static int64_t sql_int(const char *q)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK, "%s: %s", q,
		     sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", q);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static double sql_real(const char *q)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK, "%s", q);
	cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", q);
	double v = sqlite3_column_type(st, 0) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static struct mdb_record bar(const char *s, int64_t ts, double c, uint32_t f)
{
	struct mdb_record r;
	record_init(&r, MDB_REC_BAR);
	snprintf(r.s, sizeof r.s, "%s", s);
	r.ts = ts;
	r.bar.iv = 60;
	r.bar.o = 1;
	r.bar.h = c > 2 ? c : 2;
	r.bar.l = 0.5;
	r.bar.c = c;
	r.bar.v = 100;
	r.bar.n = 7;
	r.bar.f = f;
	return r;
}

static struct mdb_record feat(const char *s, int64_t ts, double rsi)
{
	struct mdb_record r;
	record_init(&r, MDB_REC_FEAT);
	snprintf(r.s, sizeof r.s, "%s", s);
	r.ts = ts;
	r.feat.iv = 60;
	r.feat.rsi = rsi;
	r.feat.f = MDB_F_FINAL;
	return r;
}

/* Put one record and write it at once: want is 1 when it must add or
 * change a row, 0 when an identical row was there already. */
static void put(mdb_store *s, struct mdb_record r, int want)
{
	int rc = store_put(s, &r);
	cr_assert_eq(rc, 0, "store_put %s %lld: %d (%s)", r.s, (long long)r.ts, rc,
		     rc < 0 ? store_errmsg(s) : "");
	rc = store_flush(s);
	cr_assert_eq(rc, want, "store_flush %s %lld: %d (%s)", r.s, (long long)r.ts, rc,
		     rc < 0 ? store_errmsg(s) : "");
}

Test(store, creates_wal_schema_version_and_without_rowid_tables)
{
	mdb_store *s = open_ok(NULL);
	cr_expect_eq(store_found_version(s), 0);
	cr_expect_eq(store_empty(s), 1);
	store_close(&s);
	cr_assert_null(s);
	cr_expect_eq(sql_int("PRAGMA user_version"), STORE_SCHEMA_VERSION);
	cr_expect_eq(sql_int("SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"),
		     1);
	cr_expect_eq(sql_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
			     " AND sql LIKE '%WITHOUT ROWID'"),
		     3);
	/* readers see bars and feats, keyed by (symbol, iv, ts), as views */
	cr_expect_eq(sql_int("SELECT count(*) FROM sqlite_schema WHERE type = 'view'"
			     " AND name IN ('bars', 'feats')"),
		     2);
	s = open_ok(NULL);
	cr_expect_eq(store_found_version(s), STORE_SCHEMA_VERSION);
	store_close(&s);
}

Test(store, upsert_revises_and_a_repeat_changes_nothing)
{
	mdb_store *s = open_ok(NULL);
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("ES", 60, 1.5, 0), 1);	     /* new */
	put(s, bar("ES", 60, 1.75, 0), 1);	     /* the forming bar, revised */
	put(s, bar("ES", 60, 2.25, MDB_F_FINAL), 1); /* closed */
	put(s, bar("ES", 60, 2.25, MDB_F_FINAL), 0); /* a repeat */
	put(s, bar("ES", 120, 3.0, MDB_F_FINAL), 1);
	put(s, bar("NQ", 60, 9.0, MDB_F_FINAL), 1);
	put(s, feat("ES", 60, 55.5), 1);
	put(s, feat("ES", 60, 55.5), 0);
	put(s, feat("ES", 60, 56.5), 1);
	struct mdb_record tick;
	record_init(&tick, MDB_REC_TICK);
	cr_expect_eq(store_put(s, &tick), -EINVAL);
	cr_assert_eq(store_commit(s), 0);
	/* a revision after the commit overwrites too */
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("NQ", 60, 9.5, MDB_F_FINAL | MDB_F_REVISED), 1);
	cr_assert_eq(store_commit(s), 0);
	cr_expect_eq(store_empty(s), 0);
	store_close(&s);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 3);
	cr_expect_eq(sql_real("SELECT c FROM bars WHERE symbol = 'ES' AND iv = 60 AND ts = 60"),
		     2.25);
	cr_expect_eq(sql_int("SELECT f FROM bars WHERE symbol = 'ES' AND ts = 60"), MDB_F_FINAL);
	cr_expect_eq(sql_real("SELECT c FROM bars WHERE symbol = 'NQ'"), 9.5);
	cr_expect_eq(sql_int("SELECT f FROM bars WHERE symbol = 'NQ'"),
		     MDB_F_FINAL | MDB_F_REVISED);
	/* absent values (NaN) are NULL, not 0 */
	cr_expect_eq(sql_int("SELECT count(*) FROM bars WHERE bv IS NULL AND src IS NULL"), 3);
	cr_expect_eq(sql_int("SELECT count(*) FROM feats"), 1);
	cr_expect_eq(sql_real("SELECT rsi FROM feats"), 56.5);
	cr_expect_eq(sql_int("SELECT ema12 IS NULL FROM feats"), 1);
}

/* Records are queued and written a chunk (4096 rows) at a time: whatever
 * the chunk boundaries, a key put several times in one transaction ends
 * with its last values, and the counts say how many rows changed. */
Test(store, a_batch_keeps_the_last_value_of_each_key_across_chunks)
{
	mdb_store *s = open_ok(NULL);
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("ES", 0, 7, MDB_F_FINAL), 1); /* there before the batch */
	cr_assert_eq(store_commit(s), 0);
	cr_assert_eq(store_begin(s), 0);
	/* 3 passes over 5000 keys of two series: 15000 bars, 3+ chunks, so
	 * versions of one key fall in the same chunk and in different ones */
	for (int pass = 0; pass < 3; pass++)
		for (int k = 0; k < 5000; k++) {
			struct mdb_record r = bar(k % 2 ? "NQ" : "ES", (k / 2) * MIN_NS,
						  100 * pass + k % 7, pass == 2 ? MDB_F_FINAL : 0);
			cr_assert_eq(store_put(s, &r), 0, "%s", store_errmsg(s));
			/* the same key again at once (same chunk), with other values */
			if (k % 10 == 3) {
				r.bar.c += 0.5;
				cr_assert_eq(store_put(s, &r), 0);
			}
		}
	/* feats queue apart from bars; the same key twice in one chunk */
	struct mdb_record fe = feat("ES", 0, 10);
	cr_assert_eq(store_put(s, &fe), 0);
	fe.feat.rsi = 20;
	cr_assert_eq(store_put(s, &fe), 0);
	/* a record identical to the row already there changes nothing */
	struct mdb_record same = bar("YM", 0, 1, MDB_F_FINAL);
	cr_assert_eq(store_put(s, &same), 0);
	cr_assert_eq(store_put(s, &same), 0);
	cr_assert_eq(store_commit(s), 0);
	uint64_t n, changed;
	store_txn_counts(s, &n, &changed);
	cr_expect_eq(n, 15000 + 1500 + 2 + 2);
	/* every put changed its row but the repeat of YM */
	cr_expect_eq(changed, n - 1);
	store_close(&s);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 5001);
	/* the last pass's values: c = 200 + k % 7, + 0.5 for k % 10 == 3 */
	cr_expect_eq(sql_int("WITH RECURSIVE ks(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM ks"
			     " WHERE k < 4999) SELECT count(*) FROM bars b JOIN ks"
			     " ON b.symbol = iif(k % 2, 'NQ', 'ES')"
			     " AND b.ts = (k / 2) * 60000000000"
			     " AND b.c = 200 + k % 7 + iif(k % 10 = 3, 0.5, 0) AND b.f = 1"),
		     5000);
	cr_expect_eq(sql_real("SELECT rsi FROM feats"), 20);
}

/* A rolled-back transaction takes its queued records with it. */
Test(store, a_rollback_drops_queued_records)
{
	mdb_store *s = open_ok(NULL);
	cr_assert_eq(store_begin(s), 0);
	struct mdb_record r = bar("ES", 0, 1, MDB_F_FINAL);
	cr_assert_eq(store_put(s, &r), 0);
	store_rollback(s);
	cr_assert_eq(store_begin(s), 0);
	r = bar("ES", MIN_NS, 2, MDB_F_FINAL);
	cr_assert_eq(store_put(s, &r), 0);
	cr_assert_eq(store_commit(s), 0);
	store_close(&s);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 1);
	cr_expect_eq(sql_int("SELECT ts FROM bars"), MIN_NS);
}

Test(store, cursor_commits_and_rolls_back_with_the_rows)
{
	mdb_store *s = open_ok(NULL);
	uint64_t pos = 0;
	cr_expect_eq(store_cursor_get(s, "bars", "mdb-write", &pos), -ENOENT);
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("ES", 60, 1, 1), 1);
	cr_assert_eq(store_cursor_put(s, "bars", "mdb-write", 4096), 0);
	cr_assert_eq(store_commit(s), 0);
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("ES", 120, 1, 1), 1);
	cr_assert_eq(store_cursor_put(s, "bars", "mdb-write", 8192), 0);
	store_rollback(s);
	cr_assert_eq(store_cursor_get(s, "bars", "mdb-write", &pos), 0);
	cr_expect_eq(pos, 4096);
	cr_expect_eq(store_cursor_get(s, "bars", "other", &pos), -ENOENT);
	store_close(&s);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 1,
		     "the rolled-back row went with its cursor");
}

Test(store, a_series_added_by_a_rolled_back_batch_is_added_again)
{
	mdb_store *s = open_ok(NULL);
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("ES", 60, 1, 1), 1);
	cr_assert_eq(store_commit(s), 0);
	/* NQ's series goes with the batch that made it ... */
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("NQ", 60, 2, 1), 1);
	store_rollback(s);
	/* ... and another series may take its id; NQ then gets a new one */
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("YM", 60, 3, 1), 1);
	put(s, bar("NQ", 60, 4, 1), 1);
	put(s, bar("NQ", 120, 5, 1), 1);
	cr_assert_eq(store_commit(s), 0);
	store_close(&s);
	cr_expect_eq(sql_int("SELECT count(*) FROM bar_data"), 4);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 4, "every row has its series");
	cr_expect_eq(sql_real("SELECT sum(c) FROM bars WHERE symbol = 'NQ'"), 9);
	cr_expect_eq(sql_real("SELECT c FROM bars WHERE symbol = 'YM'"), 3);
}

Test(store, retention_prunes_in_small_steps_and_keeps_recent_rows)
{
	mdb_store *s = open_ok(NULL);
	int64_t now = 1000 * DAY_NS, cutoff = now - 90 * DAY_NS;
	cr_assert_eq(store_begin(s), 0);
	const char *syms[] = {"AA", "ES", "NQ"};
	for (int k = 0; k < 3; k++)
		for (int d = 0; d < 100; d++) { /* days 900..999: 10 older than 90 days */
			put(s, bar(syms[k], (900 + d) * DAY_NS, 1, 1), 1);
			put(s, feat(syms[k], (900 + d) * DAY_NS, 50), 1);
		}
	cr_assert_eq(store_commit(s), 0);
	int64_t deleted, total = 0;
	int steps = 0, rc;
	while ((rc = store_prune_step(s, cutoff, 4, &deleted)) == 1) {
		cr_assert_leq(deleted, 4);
		total += deleted;
		cr_assert_lt(++steps, 100);
	}
	cr_assert_eq(rc, 0, "prune: %s", store_errmsg(s));
	total += deleted;
	cr_expect_eq(total, 60, "3 symbols x 2 tables x 10 old days");
	cr_expect_geq(steps, 15, "at most 4 rows per transaction");
	/* a second pass finds nothing */
	total = 0;
	while ((rc = store_prune_step(s, cutoff, 1000, &deleted)) == 1)
		total += deleted;
	cr_expect_eq(rc, 0);
	cr_expect_eq(total + deleted, 0);
	store_close(&s);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 270);
	cr_expect_eq(sql_int("SELECT count(*) FROM feats"), 270);
	char q[128];
	snprintf(q, sizeof q, "SELECT min(ts) >= %lld FROM bars", (long long)cutoff);
	cr_expect_eq(sql_int(q), 1);
}

/* Open; the file had schema version `version`, and the cursor of ring
 * "bars" for mdb-write is at pos. */
static mdb_store *open_found(int version, uint64_t pos)
{
	mdb_store *s = open_ok(NULL);
	cr_expect_eq(store_found_version(s), version);
	uint64_t got = 0;
	cr_expect_eq(store_cursor_get(s, "bars", "mdb-write", &got), 0);
	cr_expect_eq(got, pos);
	return s;
}

/* The schema of version 1, as the first prototype made it. */
static const char schema_v1[] =
    "CREATE TABLE bars (symbol TEXT NOT NULL, iv INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " o REAL, h REAL, l REAL, c REAL, v REAL, n INTEGER, f INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE (symbol, iv, ts));"
    "CREATE TABLE cursors (ring TEXT PRIMARY KEY, position INTEGER NOT NULL);"
    "INSERT INTO bars VALUES ('ES', 60, 60, 1, 2, 0.5, 1.5, 10, 3, 1),"
    " ('ES', 60, 120, 1.5, 2.5, 1, 2, 11, 4, 1), ('NQ', 300, 0, 9, 9, 9, 9, 1, 1, 5);"
    "INSERT INTO cursors VALUES ('bars', 123456);"
    "PRAGMA user_version = 1;";

Test(store, migrates_version_1_to_3_keeping_rows_and_cursors)
{
	sql(schema_v1);
	mdb_store *s = open_found(1, 123456);
	/* the migrated tables take upserts like new ones */
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("ES", 120, 2, 1), 1);
	put(s, bar("ES", 120, 2.75, 1), 1);
	put(s, feat("ES", 120, 40), 1);
	cr_assert_eq(store_commit(s), 0);
	store_close(&s);
	cr_expect_eq(sql_int("PRAGMA user_version"), 3);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 3);
	cr_expect_eq(sql_real("SELECT c FROM bars WHERE symbol = 'ES' AND ts = 60"), 1.5);
	cr_expect_eq(sql_real("SELECT c FROM bars WHERE symbol = 'ES' AND ts = 120"), 2.75);
	cr_expect_eq(sql_int("SELECT f FROM bars WHERE symbol = 'NQ'"), 5);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars WHERE bv IS NULL AND av IS NULL"), 3);
	cr_expect_eq(sql_int("SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v_'"), 0);
	cr_expect_eq(sql_int("SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
			     " AND sql LIKE '%WITHOUT ROWID'"),
		     3);
	cr_expect_eq(
	    sql_int("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
	/* opening again migrates nothing */
	s = open_ok(NULL);
	cr_expect_eq(store_found_version(s), 3);
	store_close(&s);
}

/* A version 2 database, as mdb-write made it before series ids: bars and
 * feats were tables keyed by (symbol, iv, ts). */
static const char schema_v2[] =
    "CREATE TABLE bars (symbol TEXT NOT NULL, iv INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " o REAL, h REAL, l REAL, c REAL, v REAL, n INTEGER, bv REAL, av REAL,"
    " f INTEGER NOT NULL DEFAULT 0, src TEXT, PRIMARY KEY (symbol, iv, ts)) WITHOUT ROWID;"
    "CREATE TABLE feats (symbol TEXT NOT NULL, iv INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " rsi REAL, ema12 REAL, ema26 REAL, bbm REAL, bbu REAL, bbl REAL, atr REAL, vwap REAL,"
    " vma REAL, macd REAL, macds REAL, macdh REAL, mom REAL, f INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (symbol, iv, ts)) WITHOUT ROWID;"
    "CREATE TABLE cursors (ring TEXT NOT NULL, consumer TEXT NOT NULL,"
    " position INTEGER NOT NULL, updated_ns INTEGER NOT NULL,"
    " PRIMARY KEY (ring, consumer)) WITHOUT ROWID;"
    "INSERT INTO bars VALUES ('ES', 60, 60, 1, 2, 0.5, 1.5, 10, 3, 4, 6, 1, 'sc'),"
    " ('ES', 60, 120, 1.5, 2.5, 1, 2, 11, 4, NULL, NULL, 1, NULL),"
    " ('ES', 300, 0, 7, 7, 7, 7, 1, 1, NULL, NULL, 1, NULL),"
    " ('NQ', 300, 0, 9, 9, 9, 9, 1, 1, NULL, NULL, 5, 'poly');"
    "INSERT INTO feats (symbol, iv, ts, rsi, ema12, mom, f) VALUES"
    " ('ES', 60, 60, 55.5, 1.25, NULL, 1), ('YM', 60, 0, 40, NULL, -2, 1);"
    "INSERT INTO cursors VALUES ('bars', 'mdb-write', 777, 5), ('feat', 'mdb-write', 9, 5);"
    "PRAGMA user_version = 2;";

Test(store, migrates_version_2_to_3_keeping_rows_features_and_cursors)
{
	sql(schema_v2);
	char before[2][4096] = {"", ""};
	/* every row of both, as text, before and after */
	const char *dump[] = {"SELECT group_concat(r, ';') FROM (SELECT quote(symbol) || iv || ts"
			      " || quote(o) || quote(h) || quote(l) || quote(c) || quote(v) || n"
			      " || quote(bv) || quote(av) || f || quote(src) AS r FROM bars"
			      " ORDER BY symbol, iv, ts)",
			      "SELECT group_concat(r, ';') FROM (SELECT quote(symbol) || iv || ts"
			      " || quote(rsi) || quote(ema12) || quote(mom) || quote(macd) || f"
			      " AS r FROM feats ORDER BY symbol, iv, ts)"};
	sqlite3 *db;
	for (int pass = 0; pass < 2; pass++) {
		cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
		for (int t = 0; t < 2; t++) {
			sqlite3_stmt *st;
			cr_assert_eq(sqlite3_prepare_v2(db, dump[t], -1, &st, NULL), SQLITE_OK,
				     "%s", sqlite3_errmsg(db));
			cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
			const char *txt = (const char *)sqlite3_column_text(st, 0);
			if (pass == 0)
				snprintf(before[t], sizeof before[t], "%s", txt);
			else
				cr_expect_str_eq(txt, before[t], "table %d changed", t);
			sqlite3_finalize(st);
		}
		sqlite3_close(db);
		if (pass == 0) { /* migrate */
			mdb_store *s = open_ok(NULL);
			cr_expect_eq(store_found_version(s), 2);
			store_close(&s);
		}
	}
	/* the dumps compared hold every row: 4 bars, 2 feats */
	cr_expect(strstr(before[0], "'NQ'3000") && strstr(before[0], "'sc'") &&
		      strstr(before[1], "'YM'600"),
		  "%s | %s", before[0], before[1]);
	cr_expect_eq(sql_int("PRAGMA user_version"), 3);
	cr_expect_eq(sql_int("SELECT count(*) FROM series"), 4, "ES/60, ES/300, NQ/300, YM/60");
	cr_expect_eq(sql_int("SELECT count(*) FROM sqlite_schema WHERE name LIKE '%_v2'"), 0);
	cr_expect_eq(sql_int("SELECT count(*) FROM sqlite_schema WHERE type = 'view'"), 2);
	cr_expect_eq(
	    sql_int("SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"), 1);
	/* the cursors and the rows are where the writer expects them */
	mdb_store *s = open_found(3, 777);
	cr_assert_eq(store_begin(s), 0);
	struct mdb_record r = bar("NQ", 0, 9, 5);
	r.bar.iv = 300;
	r.bar.o = r.bar.h = r.bar.l = 9;
	r.bar.v = 1;
	r.bar.n = 1;
	snprintf(r.src, sizeof r.src, "poly");
	put(s, r, 0);			    /* the migrated row, repeated */
	put(s, bar("ES", 120, 2.75, 1), 1); /* revised */
	put(s, feat("YM", 0, 40), 1);	    /* ema12.. now NaN: mom NULL too */
	put(s, bar("YM", 60, 1, 1), 1);	    /* a new row of a migrated series */
	cr_assert_eq(store_commit(s), 0);
	store_close(&s);
	cr_expect_eq(sql_real("SELECT c FROM bars WHERE symbol = 'ES' AND iv = 60 AND ts = 120"),
		     2.75);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 5);
	cr_expect_eq(sql_int("SELECT count(*) FROM series"), 4);
}

Test(store, readonly_open_neither_creates_nor_migrates)
{
	struct store_opts o;
	store_opts_default(&o);
	o.readonly = true;
	char msg[256];
	int err = 0;
	cr_expect_null(store_open(path, &o, &err, msg, sizeof msg));
	cr_expect_eq(access(path, F_OK), -1, "a missing file stays missing");
	sql(schema_v1);
	mdb_store *s = open_ok(&o);
	cr_expect_eq(store_found_version(s), 1);
	store_close(&s);
	cr_expect_eq(sql_int("PRAGMA user_version"), 1);
}

Test(store, refuses_newer_and_foreign_schemas)
{
	char msg[256];
	int err = 0;
	sql("PRAGMA user_version = 9");
	cr_expect_null(store_open(path, NULL, &err, msg, sizeof msg));
	cr_expect_eq(err, -EPROTO);
	cr_expect(strstr(msg, "newer"), "%s", msg);
	unlink(path);
	sql("CREATE TABLE t (x)");
	cr_expect_null(store_open(path, NULL, &err, msg, sizeof msg));
	cr_expect_eq(err, -EPROTO);
	cr_expect(strstr(msg, "not an mdb database"), "%s", msg);
}

Test(store, a_file_that_is_not_a_database_is_reported_as_damaged)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	char junk[8192];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (char)(i * 131 + 7);
	cr_assert_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd);
	char msg[256];
	int err = 0;
	cr_expect_null(store_open(path, NULL, &err, msg, sizeof msg));
	cr_expect_eq(err, -EUCLEAN, "%d: %s", err, msg);
}

Test(store, integrity_check_finds_a_damaged_page)
{
	mdb_store *s = open_ok(NULL);
	cr_assert_eq(store_begin(s), 0);
	for (int i = 0; i < 5000; i++)
		put(s, bar("ES", i, i, 1), 1);
	cr_assert_eq(store_commit(s), 0);
	char msg[256];
	cr_expect_eq(store_integrity(s, msg, sizeof msg), 0, "%s", msg);
	store_close(&s);
	sql("PRAGMA wal_checkpoint(TRUNCATE)");
	int64_t psz = sql_int("PRAGMA page_size");
	int64_t root = sql_int("SELECT rootpage FROM sqlite_schema WHERE name = 'bar_data'");
	/* scribble over the root of bar_data (an interior b-tree page) */
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	char junk[1024];
	memset(junk, 0x5a, sizeof junk);
	cr_assert_eq(pwrite(fd, junk, sizeof junk, (root - 1) * psz + 8), (ssize_t)sizeof junk);
	close(fd);
	int err = 0;
	s = store_open(path, NULL, &err, msg, sizeof msg);
	if (s) {
		cr_expect_eq(store_integrity(s, msg, sizeof msg), -EUCLEAN);
		cr_expect_neq(strcmp(msg, "ok"), 0);
		store_close(&s);
	} else {
		cr_expect_eq(err, -EUCLEAN, "%s", msg);
	}
}

Test(store, a_new_database_has_16k_pages_an_old_one_keeps_its_own)
{
	mdb_store *s = open_ok(NULL);
	store_close(&s);
	cr_expect_eq(sql_int("PRAGMA page_size"), 16384);
	teardown();
	setup();
	sql("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA user_version = 0");
	s = open_ok(NULL);
	store_close(&s);
	cr_expect_eq(sql_int("PRAGMA page_size"), 4096);
}

static off_t file_size(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? st.st_size : 0;
}

Test(store, the_wal_is_checkpointed_by_a_thread_while_the_writer_goes_on)
{
	struct store_opts o;
	store_opts_default(&o);
	o.ckpt_pages = 8;
	mdb_store *s = open_ok(&o);
	char wal[sizeof path + 8];
	snprintf(wal, sizeof wal, "%s-wal", path);
	off_t db0 = file_size(path);
	/* 40 batches of 500 rows: ~50 pages of 16 KiB in all */
	for (int b = 0; b < 40; b++) {
		cr_assert_eq(store_begin(s), 0);
		for (int i = 0; i < 500; i++)
			put(s, bar(i % 2 ? "ES" : "NQ", (b * 500 + i) * MIN_NS, i, 1), 1);
		cr_assert_eq(store_commit(s), 0);
	}
	/* the rows reached the database file while the store is open (SQLite's
	 * own autocheckpoint is off: only the checkpointer copies them) ... */
	int64_t t0 = tu_now_ns();
	while (file_size(path) <= db0 + 16 * 16384 && tu_now_ns() - t0 < 5000000000LL)
		usleep(10000);
	cr_expect_gt(file_size(path), db0 + 16 * 16384, "%lld bytes, first %lld",
		     (long long)file_size(path), (long long)db0);
	/* ... and the WAL was started again from its beginning, not grown to
	 * hold every batch */
	cr_expect_lt(file_size(wal), 30 * 16384, "the WAL holds %lld bytes",
		     (long long)file_size(wal));
	store_close(&s);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 20000);
}

Test(store, a_locked_database_is_busy_not_an_error)
{
	struct store_opts o;
	store_opts_default(&o);
	o.busy_ms = 50;
	mdb_store *s = open_ok(&o);
	sqlite3 *other;
	cr_assert_eq(sqlite3_open(path, &other), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	int64_t t0 = tu_now_ns();
	cr_expect_eq(store_begin(s), -EBUSY);
	cr_expect_geq(tu_now_ns() - t0, 40000000, "it waited busy_ms first");
	cr_expect(strstr(store_errmsg(s), "locked"), "%s", store_errmsg(s));
	sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(other);
	cr_expect_eq(store_begin(s), 0);
	put(s, bar("ES", 60, 1, 1), 1);
	cr_expect_eq(store_commit(s), 0);
	store_close(&s);
}

Test(store, a_full_database_fails_the_batch_and_keeps_the_last_commit)
{
	struct store_opts o;
	store_opts_default(&o);
	o.max_bytes = 256 << 10;
	mdb_store *s = open_ok(&o);
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("ES", 0, 1, 1), 1);
	cr_assert_eq(store_cursor_put(s, "bars", "w", 100), 0);
	cr_assert_eq(store_commit(s), 0);
	cr_assert_eq(store_begin(s), 0);
	int rc = 0, i;
	for (i = 1; i < 100000 && rc >= 0; i++) {
		struct mdb_record r = bar("ES", i, i, 1);
		rc = store_put(s, &r);
	}
	if (rc >= 0) {
		cr_assert_eq(store_cursor_put(s, "bars", "w", 200), 0);
		rc = store_commit(s);
	}
	cr_expect_eq(rc, -ENOSPC, "%d after %d rows: %s", rc, i, store_errmsg(s));
	store_rollback(s);
	uint64_t pos = 0;
	cr_expect_eq(store_cursor_get(s, "bars", "w", &pos), 0);
	cr_expect_eq(pos, 100);
	store_close(&s);
	cr_expect_eq(sql_int("SELECT count(*) FROM bars"), 1);
}

static int collect(const struct store_series *ser, void *arg)
{
	char *out = arg;
	size_t n = strlen(out);
	snprintf(out + n, 512 - n, "%s/%s/%lld/%lld/%lld/%lld ", ser->table, ser->symbol,
		 (long long)ser->iv, (long long)ser->rows, (long long)ser->first_ts,
		 (long long)ser->last_ts);
	return 0;
}

Test(store, summary_lists_each_series_with_its_range)
{
	mdb_store *s = open_ok(NULL);
	cr_assert_eq(store_begin(s), 0);
	put(s, bar("NQ", 300, 1, 1), 1);
	put(s, bar("ES", 60, 1, 1), 1);
	put(s, bar("ES", 120, 1, 1), 1);
	put(s, feat("ES", 60, 1), 1);
	cr_assert_eq(store_commit(s), 0);
	char out[512] = "";
	cr_assert_eq(store_summary(s, collect, out), 0);
	cr_expect_str_eq(out, "bars/ES/60/2/60/120 bars/NQ/60/1/300/300 feats/ES/60/1/60/60 ");
	uint64_t db = 0, wal = 0;
	cr_expect_eq(store_size(s, &db, &wal), 0);
	cr_expect_gt(db + wal, 0);
	store_close(&s);
}

struct hist {
	int n;
	int64_t ts[16];
	double c[16], rsi[16];
	bool has_feat[16];
};

static int collect_history(const struct mdb_record *b, const struct mdb_record *f, void *arg)
{
	struct hist *h = arg;
	cr_assert_lt(h->n, 16);
	cr_expect_str_eq(b->s, "ES");
	cr_expect_eq(b->bar.iv, 60);
	h->ts[h->n] = b->ts;
	h->c[h->n] = b->bar.c;
	h->has_feat[h->n] = f->t == MDB_REC_FEAT;
	h->rsi[h->n] = f->t == MDB_REC_FEAT ? f->feat.rsi : NAN;
	h->n++;
	return 0;
}

Test(store, history_reads_ranges_oldest_first_with_features)
{
	mdb_store *s = open_ok(NULL);
	cr_assert_eq(store_begin(s), 0);
	for (int i = 0; i < 10; i++) {
		put(s, bar("ES", i * MIN_NS, 100 + i, MDB_F_FINAL), 1);
		if (i % 2 == 0)
			put(s, feat("ES", i * MIN_NS, 40 + i), 1);
	}
	put(s, bar("NQ", 0, 9, MDB_F_FINAL), 1);
	cr_assert_eq(store_commit(s), 0);
	store_close(&s);

	struct store_opts o;
	store_opts_default(&o);
	o.readonly = true;
	s = open_ok(&o);
	struct hist h = {0};
	/* the newest 3: bars 7, 8, 9 in time order, features where stored */
	struct store_range q = {"ES", 60, INT64_MIN, INT64_MAX, 3, true};
	cr_assert_eq(store_history(s, &q, collect_history, &h), 0);
	cr_assert_eq(h.n, 3);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(h.ts[i], (7 + i) * MIN_NS);
		cr_expect_eq(h.c[i], 107 + i);
		cr_expect_eq(h.has_feat[i], (7 + i) % 2 == 0);
	}
	cr_expect_eq(h.rsi[1], 48);
	/* from 2 to before 5, oldest first */
	memset(&h, 0, sizeof h);
	q = (struct store_range){"ES", 60, 2 * MIN_NS, 5 * MIN_NS, 100, false};
	cr_assert_eq(store_history(s, &q, collect_history, &h), 0);
	cr_assert_eq(h.n, 3);
	cr_expect_eq(h.ts[0], 2 * MIN_NS);
	cr_expect_eq(h.ts[2], 4 * MIN_NS);
	/* another interval, or a symbol with no rows: nothing */
	memset(&h, 0, sizeof h);
	q = (struct store_range){"ES", 300, INT64_MIN, INT64_MAX, 100, false};
	cr_assert_eq(store_history(s, &q, collect_history, &h), 0);
	cr_expect_eq(h.n, 0);
	store_close(&s);
}

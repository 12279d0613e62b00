/* store.h - the SQLite history store (mdb-write(1) documents the schema).
 *
 * Bars and features live in WITHOUT ROWID tables keyed by (series id, ts),
 * a series being one (symbol, iv) of the `series` table, so a row is stored
 * once, in key order, and a repeated or revised record is an upsert on its
 * key; readers query the views `bars` and `feats`, keyed by (symbol, iv,
 * ts). The cursors table holds, per (ring, consumer), the
 * ring position up to which records are in the database; the writer saves it
 * in the same transaction as the rows it covers, so the two never disagree.
 * PRAGMA user_version holds the schema version; store_open() migrates older
 * versions forward in one transaction. The database is in WAL mode: readers
 * never wait for the writer, and the writer never waits for readers; a
 * read-write store checkpoints the WAL on a thread of its own.
 *
 * Library code: functions return 0 (or a count) or -errno, never print:
 *   -EBUSY    another connection holds the write lock (SQLITE_BUSY/LOCKED)
 *   -ENOSPC   the disk, or the --max-size limit, is full (SQLITE_FULL)
 *   -EUCLEAN  the file is corrupt or not a database (SQLITE_CORRUPT/NOTADB)
 *   -EPROTO   not an mdb database, or a schema newer than this code
 *   -EIO, -ENOMEM, -EROFS, -EACCES, -ENOENT   as the names say
 * store_errmsg() then says what failed in words (SQLite's message).
 */
#ifndef MDB_STORE_H
#define MDB_STORE_H

#include "record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 3 /* what store_open() creates and migrates to */

struct store_opts {
	const char *synchronous; /* PRAGMA synchronous: OFF, NORMAL (default), FULL */
	uint64_t max_bytes;	 /* refuse to grow past this (-ENOSPC); 0: no limit */
	int busy_ms;		 /* wait this long for a lock before -EBUSY */
	int cache_mib;		 /* page cache per connection */
	int ckpt_pages;		 /* WAL pages that start a checkpoint; 0: 4096 */
	bool readonly;		 /* never create, migrate or write (mdb-write --check) */
};

/* NORMAL, no size limit, 1000 ms busy wait, 64 MiB cache, read-write. */
void store_opts_default(struct store_opts *o);

typedef struct mdb_store mdb_store;

/* Open (creating, in read-write mode) the database at path, switch it to
 * WAL, create or migrate the schema and prepare the statements. Returns NULL
 * with *err = -errno and a message naming the problem in errbuf. */
mdb_store *store_open(const char *path, const struct store_opts *o, int *err, char *errbuf,
		      size_t errlen);
/* Roll back an open transaction and close. Accepts NULL; sets *s to NULL. */
void store_close(mdb_store **s);

/* What the last failing call was doing and SQLite's words for it. */
const char *store_errmsg(const mdb_store *s);
/* The schema version the file had when it was opened (0: it was new). */
int store_found_version(const mdb_store *s);

/* ---- the writer: one transaction per batch ---- */

/* BEGIN IMMEDIATE: take the write lock now, waiting up to busy_ms.
 * Returns 0, -EBUSY, or -errno. */
int store_begin(mdb_store *s);
/* Queue a bar or feat record for an upsert in the open transaction, adding
 * its series when new. Queued records are written a chunk at a time, in
 * the order they were put (a key put twice ends with the later values):
 * when a chunk fills, by store_flush() and by store_commit(). Returns 0,
 * -EINVAL for other record types, -EROFS on a read-only store, or -errno
 * from writing a full chunk (then roll back). Allocates nothing: the
 * record's values are copied, series ids cached in a table made by
 * store_open(). */
int store_put(mdb_store *s, const struct mdb_record *r);
/* Write the queued records now. Returns how many of them added or changed
 * a row (an identical row already there is not changed), or -errno. */
int store_flush(mdb_store *s);
/* Records put since store_begin() and how many of them added or changed a
 * row so far (all of them once store_commit() has succeeded). */
void store_txn_counts(const mdb_store *s, uint64_t *put, uint64_t *changed);
/* Save the position of consumer `consumer` in ring `ring` (inside the
 * transaction whose rows it covers). Returns 0 or -errno. */
int store_cursor_put(mdb_store *s, const char *ring, const char *consumer, uint64_t pos);
/* Write the queued records, then COMMIT. Returns 0 or -errno; on failure
 * the transaction is rolled back. */
int store_commit(mdb_store *s);
/* ROLLBACK whatever is open and drop queued records; harmless when
 * nothing is. */
void store_rollback(mdb_store *s);

/* The saved position of (ring, consumer): 0 with *pos set, -ENOENT when
 * there is none, or -errno. */
int store_cursor_get(mdb_store *s, const char *ring, const char *consumer, uint64_t *pos);

/* ---- retention ---- */

/* One small step of a pruning pass: delete at most `limit` rows older than
 * cutoff_ns (ts < cutoff_ns) from one (symbol, iv) series, in a transaction
 * of its own. The pass walks every series of every table; call again until
 * it returns 0 (the pass is over; the next call starts a new one). Returns
 * 1 while more may remain, 0, or -errno. *deleted gets the rows deleted. */
int store_prune_step(mdb_store *s, int64_t cutoff_ns, int limit, int64_t *deleted);

/* ---- inspection (mdb-write --check) ---- */

/* True when neither bars nor feats holds a row (bootstrap: run a backfill).
 * Returns 1, 0, or -errno. */
int store_empty(mdb_store *s);

/* PRAGMA integrity_check. Returns 0 when the file is sound, -EUCLEAN with
 * the first problem in msg, or -errno. */
int store_integrity(mdb_store *s, char *msg, size_t len);

struct store_series {
	const char *table; /* "bars" or "feats" */
	const char *symbol;
	int64_t iv;
	int64_t rows;
	int64_t first_ts, last_ts; /* ns */
};

/* Call fn for every (table, symbol, iv) in key order; stops early and
 * returns fn's value when it is non-zero. Returns 0 or -errno. */
int store_summary(mdb_store *s, int (*fn)(const struct store_series *ser, void *arg), void *arg);

/* A history query: the bars of (symbol, iv) with from_ns <= ts < to_ns. */
struct store_range {
	const char *symbol;
	int64_t iv;	 /* seconds */
	int64_t from_ns; /* INT64_MIN: from the oldest */
	int64_t to_ns;	 /* INT64_MAX: up to the newest */
	int limit;	 /* at most this many rows (> 0) */
	bool newest;	 /* the newest `limit` of the range, not the oldest */
};

/* Call fn(bar, feat, arg) for each bar of the range, oldest first, with the
 * features stored for the same key (feat->t is MDB_REC_NONE when there are
 * none). Stops early and returns fn's value when it is non-zero. Read-only;
 * in WAL mode it never waits for the writer. Returns 0 or -errno. */
int store_history(mdb_store *s, const struct store_range *q,
		  int (*fn)(const struct mdb_record *bar, const struct mdb_record *feat, void *arg),
		  void *arg);

/* Bytes used by the database file and by its write-ahead log. */
int store_size(mdb_store *s, uint64_t *db_bytes, uint64_t *wal_bytes);

#endif

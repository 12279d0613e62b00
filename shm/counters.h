/* counters.h - per-process named counters in shared memory (AeronStat style).
 *
 * Each process owns one small file $MDB_SHM_DIR/stat/TOOL.PID.cnt (mode
 * 0640) holding its identity and a fixed table of named 64-bit counters. The
 * owner updates them with plain relaxed atomic stores (one writer per
 * counter, no locks, no syscalls); anyone can map the file and read them.
 * The owner holds an OFD lock on the file, so a reader can tell a live
 * process from one that died without asking it.
 */
#ifndef MDB_COUNTERS_H
#define MDB_COUNTERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define COUNTERS_MAX	   64 /* counters per process */
#define COUNTER_NAME_MAX   40 /* name, NUL included */
#define COUNTERS_LABEL_MAX 64 /* tool and instance label, NUL included */

typedef struct mdb_counters mdb_counters;

/* One counter: a 64-bit value written by its owner only. */
typedef struct mdb_counter {
	_Atomic uint64_t v;
} mdb_counter;

/* Create this process's counters file for `tool` (e.g. "mdb-pipe") with an
 * instance label (e.g. the --name; may be NULL). Returns NULL and sets *err
 * to -errno. */
mdb_counters *counters_open(const char *tool, const char *label, int *err);

/* Remove the file and unmap. Accepts NULL; sets *c to NULL. */
void counters_close(mdb_counters **c);

/* The counter called `name`, added on first use. NULL when the table is
 * full, c is NULL, or the name is invalid (empty, COUNTER_NAME_MAX or more
 * characters, spaces, control or non-ASCII bytes: rejected, not truncated,
 * so two names never become one counter). The pointer stays valid until
 * counters_close(). Do not fork after counters_open() without exec: the
 * child inherits the liveness lock. */
mdb_counter *counter_get(mdb_counters *c, const char *name);

/* Single-writer updates: a relaxed load and store, no lock prefix. Accept NULL. */
static inline void counter_add(mdb_counter *k, uint64_t n)
{
	if (k)
		atomic_store_explicit(&k->v, atomic_load_explicit(&k->v, memory_order_relaxed) + n,
				      memory_order_relaxed);
}
static inline void counter_set(mdb_counter *k, uint64_t v)
{
	if (k)
		atomic_store_explicit(&k->v, v, memory_order_relaxed);
}
static inline uint64_t counter_value(const mdb_counter *k)
{
	return k ? atomic_load_explicit(&k->v, memory_order_relaxed) : 0;
}

/* ---- readers (mdb-stat, mdb-ws /metrics) ---- */

struct counters_view {
	pid_t pid;
	bool alive;	    /* the owner still holds its lock */
	int64_t started_ns; /* CLOCK_REALTIME at counters_open */
	char tool[COUNTERS_LABEL_MAX];
	char label[COUNTERS_LABEL_MAX];
	int n;
	struct {
		char name[COUNTER_NAME_MAX];
		uint64_t value;
	} c[COUNTERS_MAX];
	char path[256];
};

/* Call fn for every counters file in the directory (sorted by tool, then
 * pid). Stops early and returns fn's value when it returns non-zero; returns
 * 0 when all were visited, or -errno (a missing directory is not an error). */
int counters_scan(int (*fn)(const struct counters_view *v, void *arg), void *arg);

/* Remove files whose owner is gone, invalid *.cnt files and temp files
 * left by a crash during counters_open() (unlocked, over 60 s old). Never a
 * live owner's file. Returns how many were removed, or -errno. */
int counters_gc(void);

#endif

/* lvc.h - the last-value cache: (symbol, interval) -> latest bar, latest
 * features and a sequence number, in one mmap'd file (DESIGN.md section 3).
 *
 * The file $MDB_SHM_DIR/NAME.lvc holds a header (magic, version stored
 * last, capacity, writer pid) and an open-addressing table of `capacity`
 * entries (a power of two), keyed by (s, iv) (FNV-1a, linear probing).
 * Keys are only ever added, never moved or removed, so an entry's slot is
 * stable for the life of the file and a restarted writer finds its entries.
 *
 * One writer (an OFD lock on the file, as for a ring's producer) updates
 * each entry under a seqlock; any number of processes read it with plain
 * loads from their own mapping: no syscall, no lock, and never a torn
 * entry. See lvc.c for the memory ordering.
 */
#ifndef MDB_LVC_H
#define MDB_LVC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define LVC_SYM_MAX	     32 /* symbol, NUL included (as MDB_SYM_MAX) */
#define LVC_NFEAT	     13 /* feature values, in mdb-records(7) order */
#define LVC_DEFAULT_CAPACITY 4096u
#define LVC_MAX_CAPACITY     (1u << 24)

/* Feature indexes in lvc_value.feat (the feat record's keys, in order). */
enum {
	LVC_RSI,
	LVC_EMA12,
	LVC_EMA26,
	LVC_BBM,
	LVC_BBU,
	LVC_BBL,
	LVC_ATR,
	LVC_VWAP,
	LVC_VMA,
	LVC_MACD,
	LVC_MACDS,
	LVC_MACDH,
	LVC_MOM,
};

/* What an entry holds. Every field is 8 bytes: the entry is copied as words. */
struct lvc_value {
	int64_t ts;	      /* the bar's open time, ns */
	double o, h, l, c, v; /* the bar */
	int64_t n;
	double bv, av;
	uint64_t f;		/* the bar's flags (MDB_F_*) */
	double feat[LVC_NFEAT]; /* NaN: not defined yet */
	int64_t updated_ns;	/* CLOCK_REALTIME of the update */
};

/* One entry as a reader sees it. */
struct lvc_item {
	char s[LVC_SYM_MAX];
	int32_t iv;
	uint64_t seq; /* updates of this entry so far (1 after the first) */
	struct lvc_value v;
};

struct lvc_info {
	uint32_t capacity;
	uint32_t used;	   /* entries with a key */
	pid_t writer_pid;  /* last writer */
	bool writer_alive; /* it holds the writer lock */
	uint64_t updates;  /* lvc_put calls since creation */
	int64_t created_ns;
};

typedef struct mdb_lvc mdb_lvc;

/* Create NAME with `capacity` entries (a power of two, 16..LVC_MAX_CAPACITY)
 * and mode `mode`, atomically; an existing file is left as it is.
 * Returns 0 or -errno. */
int lvc_create(const char *name, uint32_t capacity, mode_t mode);
/* Remove NAME's file. 0 or -errno. */
int lvc_unlink(const char *name);

/* Map NAME. A writer maps it read-write and becomes its only writer (-EBUSY
 * when a live process is); a reader maps it read-only. NULL with *err set:
 * -ENOENT, -EPROTO (not a cache, or another version), -EBUSY, -errno. */
mdb_lvc *lvc_open(const char *name, bool writer, int *err);
/* Unmap (and drop the writer lock). Accepts NULL; sets *c to NULL. */
void lvc_close(mdb_lvc **c);

uint32_t lvc_capacity(const mdb_lvc *c);

/* Writer: the slot of (s, iv), adding the key when it is new. Returns the
 * slot, -ENOSPC when the table is full (it is kept at most 3/4 full), or
 * -EINVAL (an empty or too long symbol). */
int lvc_slot(mdb_lvc *c, const char *s, int32_t iv);
/* Writer: store v in slot under the entry's seqlock. */
void lvc_put(mdb_lvc *c, int slot, const struct lvc_value *v);

/* Writer: start loading slot's entry into the cache, for an lvc_put soon
 * after (the entry has often left the cache since its last update). */
void lvc_prefetch(const mdb_lvc *c, int slot);

/* Reader: the slot of (s, iv), or -ENOENT. */
int lvc_find(const mdb_lvc *c, const char *s, int32_t iv);
/* Reader: a consistent copy of slot. Returns 0, -ENOENT (no key there, or
 * never written), or -EAGAIN if the writer stayed inside the entry for a
 * long time (it died there: the entry is rewritten by the next writer). */
int lvc_read(const mdb_lvc *c, int slot, struct lvc_item *out);

/* Header figures (fields read one by one). */
void lvc_info(const mdb_lvc *c, struct lvc_info *out);

#endif

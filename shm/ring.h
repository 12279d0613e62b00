/* ring.h - one-producer, many-consumer ring in one mmap'd file.
 *
 * The file $MDB_SHM_DIR/NAME.ring (default dir /dev/shm/mdb) holds a header
 * (magic, version stored last, capacity, producer, positions, counters, a
 * table of named consumer slots) followed by `capacity` bytes of data.
 * Positions are 64-bit byte counts that only grow; records are 8-byte
 * aligned {u32 len, u32 type} + payload and never straddle the end of the
 * data area: a padding record (type RING_PAD) fills the tail instead.
 *
 * One producer per ring (an OFD lock on the file). Consumers register by
 * name: a DURABLE consumer holds the producer back (nothing it has not read
 * is overwritten); an OBSERVER never does: if it is lapped it notices,
 * counts it and resyncs to the newest record. Liveness of the producer and
 * of each consumer is an OFD lock on a byte of the file, so a slot whose
 * process is gone is visible without asking anyone.
 *
 * See DESIGN.md section 3 and the comments in ring.c for the memory ordering.
 */
#ifndef MDB_RING_H
#define MDB_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RING_PAD	      0u /* record type of the tail padding */
#define RING_SLOTS	      32 /* consumer slots per ring */
#define RING_NAME_MAX	      48 /* consumer and ring names, NUL included */
#define RING_DEFAULT_CAPACITY (64u << 20)
#define RING_MIN_CAPACITY     4096u

enum ring_kind {
	RING_DURABLE = 1,  /* holds the producer back */
	RING_OBSERVER = 2, /* never holds the producer; may be lapped */
};

/* Where a consumer that has no saved position starts. */
enum ring_from {
	RING_FROM_END = 0,   /* only records published after it joins */
	RING_FROM_START = 1, /* the oldest record still in the ring */
};

typedef struct mdb_ring mdb_ring;
typedef struct mdb_ring_consumer mdb_ring_consumer;

struct ring_rec {
	uint32_t type;	  /* the record type (never RING_PAD) */
	uint32_t len;	  /* payload bytes */
	const void *data; /* payload; valid until the next ring_next() */
	uint64_t pos;	  /* position of the record's header */
};

/* Create NAME with `capacity` data bytes (a power of two >= RING_MIN_CAPACITY)
 * and file mode `mode`, atomically (a half-made file is never visible), every
 * page reserved (posix_fallocate) so that a full directory is an error here,
 * never a SIGBUS later. If it exists already, succeed and leave it as it is.
 * Returns 0 or -errno (-ENOSPC: no room for the whole ring). */
int ring_create(const char *name, uint64_t capacity, mode_t mode);

/* Remove NAME's file. Returns 0 or -errno. */
int ring_unlink(const char *name);

/* Map an existing ring. Returns NULL with *err = -errno (-ENOENT: missing,
 * -EPROTO: not a ring or a different version). */
mdb_ring *ring_open(const char *name, int *err);
void ring_close(mdb_ring **r);

uint64_t ring_capacity(const mdb_ring *r);
/* The largest payload a record may have: capacity / 8 - 8. */
uint32_t ring_max_payload(const mdb_ring *r);

/* ---- producer ---- */

/* Become the ring's only producer (an OFD lock, released by close or death).
 * Continues at the position a previous producer published. Returns 0,
 * -EBUSY when another live process produces, or -errno. */
int ring_producer_begin(mdb_ring *r);

/* Reserve a record of `len` payload bytes; *payload points at where to write
 * it. Waits for durable consumers up to timeout_ns (0: do not wait, <0:
 * forever). Returns 0, -ETIMEDOUT (held back), -EMSGSIZE. The record is
 * invisible until ring_commit(). */
int ring_claim(mdb_ring *r, uint32_t type, uint32_t len, void **payload, int64_t timeout_ns);

/* Publish the record reserved by the last ring_claim(). */
void ring_commit(mdb_ring *r);

/* Commit the record reserved by the last ring_claim() without publishing
 * it: it (and every record committed before it) becomes visible at the next
 * ring_flush() or ring_commit(), or when ring_claim() has to wait for space
 * or ring_close(). Saves the shared store and sleeper check per record; the
 * caller bounds the delay (flush every few records and before it sleeps). */
void ring_commit_quiet(mdb_ring *r);

/* ring_commit_quiet() of the record reserved by the last ring_claim(), cut
 * to its first len payload bytes (len <= the claimed length): for writers
 * that claim a bound and encode in place. */
void ring_commit_len_quiet(mdb_ring *r, uint32_t len);

/* Publish every record committed so far (no-op when nothing is pending). */
void ring_flush(mdb_ring *r);

/* ring_claim() + memcpy + ring_commit(). */
int ring_publish(mdb_ring *r, uint32_t type, const void *data, uint32_t len, int64_t timeout_ns);

/* Where a record of len payload bytes that starts at pos ends: where the
 * next record starts, unless a padding record comes between. */
static inline uint64_t ring_rec_end(uint64_t pos, uint32_t len)
{
	return pos + ((8 + (uint64_t)len + 7) & ~(uint64_t)7);
}

/* The published position (the end of the newest record). */
uint64_t ring_position(const mdb_ring *r);

/* ---- consumers ---- */

/* Join as consumer `name` (an existing slot of that name is resumed at its
 * saved position; otherwise a free slot starts at `from`). spin_ns is how
 * long ring_wait() spins before it sleeps (<0: spin forever, 0: never).
 * Returns NULL with *err = -EBUSY (name in use by a live process), -ENOSPC
 * (no free slot), -EINVAL, or -errno. */
mdb_ring_consumer *ring_consumer_open(mdb_ring *r, const char *name, enum ring_kind kind,
				      enum ring_from from, int64_t spin_ns, int *err);

/* Leave. A durable slot keeps its position for the next run; an observer's
 * slot is freed. Accepts NULL; sets *c to NULL. */
void ring_consumer_close(mdb_ring_consumer **c);

/* Free a consumer slot by name when its process is gone (mdb-ring drop).
 * Returns 0, -ENOENT, or -EBUSY if its process is alive. */
int ring_consumer_drop(mdb_ring *r, const char *name);

/* Take the next record. Returns 1 with *rec filled, 0 when none is ready,
 * or RING_LAPPED when an observer was overwritten and has resynced to the
 * newest record (the lap is counted; call again). Reading a record releases
 * the one returned before it: a durable consumer's slot advances then.
 * An observer's rec->data is a private copy; a durable consumer's points
 * into the ring. */
#define RING_LAPPED 2
int ring_next(mdb_ring_consumer *c, struct ring_rec *rec);

/* In manual mode only ring_release() advances a durable consumer's slot:
 * ring_next(), ring_wait() and ring_consumer_close() do not, so a caller
 * that buffers output releases only what it has really passed on. */
void ring_set_manual_release(mdb_ring_consumer *c, bool manual);

/* Release everything returned so far (store the slot position). Unless in
 * manual mode, ring_wait() and ring_consumer_close() do this too. */
void ring_release(mdb_ring_consumer *c);

/* Wait until a record is ready: spin for spin_ns, then sleep on the header's
 * futex. Returns 1 ready, 0 timed out (timeout_ns < 0: forever), -EINTR. */
int ring_wait(mdb_ring_consumer *c, int64_t timeout_ns);

/* Position of the next record this consumer will read. */
uint64_t ring_consumer_position(const mdb_ring_consumer *c);
/* Move the read position (must be a record boundary the caller knows, e.g.
 * one it saved itself, or ring_oldest()/ring_position()). */
void ring_seek(mdb_ring_consumer *c, uint64_t pos);
/* Move an observer to pos, a position a reader learnt earlier (e.g. from
 * another host, to replay from), after checking it: 0; -ERANGE when the
 * record there has been overwritten (pos < ring_oldest(), or the producer
 * lapped it while we checked); -EINVAL when pos lies beyond the published
 * position or inside a record; -EPERM for a durable consumer (moving one
 * back could race the producer: use ring_seek with positions it saved). */
int ring_seek_checked(mdb_ring_consumer *c, uint64_t pos);
/* The ring's identity: its creation time in ns since the epoch, so a reader
 * that saved a position can tell a recreated ring from the one it read. */
uint64_t ring_id(const mdb_ring *r);
/* The oldest record boundary still readable. */
uint64_t ring_oldest(const mdb_ring *r);
/* Laps this consumer has suffered since it opened. */
uint64_t ring_consumer_laps(const mdb_ring_consumer *c);

/* Wait on several consumers at once (fan-in): spin, then one futex_waitv()
 * on all their rings. Returns 1 when any is ready, 0 on timeout, -errno. */
int ring_wait_any(mdb_ring_consumer **cs, int n, int64_t spin_ns, int64_t timeout_ns);

/* ring_wait_any() that also returns -EINTR as soon as *stop is non-zero
 * (a signal handler sets it and wakes it with shm_futex_wake), even when
 * the signal came just before the sleep. stop may be NULL. */
int ring_wait_any_stop(mdb_ring_consumer **cs, int n, int64_t spin_ns, int64_t timeout_ns,
		       _Atomic uint32_t *stop);

/* For a watcher thread that turns ring activity into an fd event: sleep
 * until c's ring's published position differs from pos, or *ctl (a word another
 * thread changes and then wakes with shm_futex_wake) differs from ctl_val.
 * Returns 1 moved, 2 ctl changed, 0 timed out, -EINTR. */
int ring_sleep_moved(mdb_ring_consumer *c, uint64_t pos, _Atomic uint32_t *ctl, uint32_t ctl_val,
		     int64_t timeout_ns);

/* For an event loop that sleeps on the ring's futex itself (io_uring's
 * FUTEX_WAIT), with no watcher thread: announce that c's reader is about to
 * sleep having read up to pos. Returns 1 when the ring has already moved
 * past pos (read on, do not sleep); else 0 with *uaddr and *val set: sleep
 * while *uaddr == *val (a shared, 32-bit futex). The producer's next record
 * wakes every sleeper on *uaddr; call again before each sleep. */
int ring_sleep_prepare(mdb_ring_consumer *c, uint64_t pos, _Atomic uint32_t **uaddr, uint32_t *val);

/* ---- inspection (mdb-ring stat) ---- */

struct ring_slot_info {
	char name[RING_NAME_MAX];
	enum ring_kind kind;
	pid_t pid;	   /* last process that held it */
	bool alive;	   /* its process holds the slot's lock */
	uint64_t position; /* next byte it will read */
	uint64_t laps;
	uint64_t records; /* records read */
};

struct ring_info {
	uint64_t capacity;
	uint64_t position; /* published */
	uint64_t oldest;   /* oldest readable record boundary */
	pid_t producer_pid;
	bool producer_alive;
	uint32_t producer_epoch; /* how many times a producer began */
	uint64_t records;	 /* published since creation */
	uint64_t bytes;		 /* payload bytes published */
	uint64_t laps;		 /* observer laps, all consumers */
	uint64_t held_ns;	 /* time the producer waited for durable consumers */
	uint32_t sleepers;	 /* consumers asleep on the futex now */
	int nslots;
	struct ring_slot_info slots[RING_SLOTS];
};

/* Read a consistent-enough view of the header (fields are read one by one). */
int ring_info(mdb_ring *r, struct ring_info *out);

#endif

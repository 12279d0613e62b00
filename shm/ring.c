/* ring.c - one-producer, many-consumer shared-memory ring.
 *
 * Memory ordering, in one place (each pair is also named where it occurs):
 *
 *  P1  producer: record bytes, then seq_cst store of prod.pos (ring_flush:
 *      at once from ring_commit, later for ring_commit_quiet's records);
 *      pairs with C1: consumer's acquire load of prod.pos before it reads
 *      the record (ring_next). A record is visible only once whole.
 *  P2  producer: seq_cst store of prod.pos, then seq_cst load of
 *      wake.sleepers (ring_flush); pairs with C2: consumer's seq_cst
 *      increment of sleepers, then seq_cst load of prod.pos (ring_wait).
 *      One of the two sides sees the other, so a sleeper is never missed
 *      and the producer makes a syscall only when someone sleeps.
 *  P3  producer: store of prod.intent, release fence, then the record bytes
 *      (ring_claim); pairs with C3: observer's copy of the record, acquire
 *      fence, load of prod.intent (ring_next). If intent has moved more than
 *      a capacity past the record, the copy may be torn: the observer was
 *      lapped. This is Aeron's broadcast "tail intent" check. On x86-64 both
 *      fences are compiler barriers (TSO keeps stores and loads in order).
 *  C4  durable consumer: release store of slot.position after it is done
 *      with the bytes (ring_release); pairs with P4: producer's acquire load
 *      of every durable slot.position before it overwrites (scan_min).
 *  P5  producer: scan of slots, seq_cst store of prod_min, rescan; pairs
 *      with C5: a joining durable consumer's seq_cst store of its slot, then
 *      seq_cst load of prod_min (consumer_join). Either the producer's rescan
 *      sees the new slot or the consumer sees the new prod_min and retries.
 *  V1  creator: header fields, then release store of meta.version; pairs
 *      with V2: ring_open's acquire load of meta.version.
 */
#include "ring.h"
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_MAGIC   0x31474e495242444dULL /* "MDBRING1" in little-endian bytes */
#define RING_VERSION 1u
#define LINE	     128
#define SEGS	     16 /* entries of the oldest-boundary index */
#define HDR_SIZE     8192u

/* Lock bytes in the ring file (OFD locks, independent of the mapping). */
#define LOCK_PRODUCER 0
#define LOCK_REGISTRY 1
#define LOCK_SLOT0    16

enum slot_state {
	SLOT_FREE = 0,
	SLOT_ACTIVE = 2,
};

struct rec_hdr {
	uint32_t len;  /* payload bytes */
	uint32_t type; /* RING_PAD or the record type */
};

struct slot {
	alignas(LINE) _Atomic uint32_t state; /* enum slot_state */
	uint32_t kind;			      /* enum ring_kind */
	_Atomic int32_t pid;		      /* last holder */
	uint32_t pad0;
	_Atomic uint64_t position; /* next byte to read; written by its consumer */
	_Atomic uint64_t laps;
	_Atomic uint64_t records;
	char name[RING_NAME_MAX];
};

/* Every group of words written by one side sits on its own line. */
struct ring_hdr {
	alignas(LINE) struct { /* immutable once version is set */
		uint64_t magic;
		_Atomic uint32_t version; /* stored last (V1) */
		uint32_t hdr_size;
		uint64_t capacity;
		int64_t created_ns;
		uint32_t max_payload;
	} meta;
	alignas(LINE) struct { /* producer, once per start */
		_Atomic int32_t pid;
		_Atomic uint32_t epoch;
	} owner;
	alignas(LINE) struct {		 /* producer, every record */
		_Atomic uint64_t pos;	 /* published: end of the newest record */
		_Atomic uint64_t intent; /* end of what is being written */
		_Atomic uint64_t records;
		_Atomic uint64_t bytes;
	} prod;
	alignas(LINE) struct { /* producer, rarely */
		_Atomic uint64_t
		    prod_min; /* producer's bound: it writes below prod_min + capacity */
		_Atomic uint64_t held_ns;
		_Atomic uint32_t waiting; /* producer is asleep waiting for space */
	} slow;
	alignas(LINE) struct { /* producer: bumped before each wake */
		_Atomic uint32_t seq;
	} wake;
	alignas(LINE) struct {		    /* consumers */
		_Atomic uint32_t sleepers;  /* bit i: slot i's consumer is (about to be) asleep */
		_Atomic uint32_t space_seq; /* bumped by a durable consumer to wake the producer */
		_Atomic uint64_t laps;
	} cons;
	alignas(LINE) _Atomic uint64_t seg[SEGS]; /* producer: first record start in each 1/16 */
	struct slot slots[RING_SLOTS];
};

_Static_assert(sizeof(struct ring_hdr) <= HDR_SIZE, "ring header exceeds its page");
_Static_assert(sizeof(struct slot) == LINE, "slot is one line");

struct mdb_ring {
	struct ring_hdr *h;
	uint8_t *data;
	size_t map_size;
	uint64_t cap;
	uint64_t mask;
	uint32_t max_payload;
	unsigned seg_shift;
	int fd;
	/* producer-only state */
	bool producing;
	uint64_t pos;	    /* end of the newest committed record */
	uint64_t published; /* our last store to prod.pos (<= pos) */
	uint64_t limit;	    /* we may write below this without rescanning */
	uint64_t claim_pos; /* header position of the claimed record */
	uint64_t claim_end;
	uint64_t last_seg;
	uint64_t records, bytes;
};

struct mdb_ring_consumer {
	mdb_ring *r;
	struct slot *slot;
	int idx;
	enum ring_kind kind;
	int64_t spin_ns;
	uint64_t pos;	   /* next record */
	uint64_t released; /* last value stored in slot->position */
	uint64_t pub;	   /* last prod.pos seen */
	uint64_t laps, records;
	uint8_t *buf; /* observer's private copy of a record */
	bool manual;  /* only ring_release() releases */
};

static inline uint64_t align8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

static int ring_file(char *buf, size_t size, const char *name, bool mkdirs)
{
	if (!shm_name_ok(name))
		return -EINVAL;
	return shm_path(buf, size, NULL, name, ".ring", mkdirs);
}

static void ring_init_hdr(void *m, void *arg)
{
	struct ring_hdr *h = m;
	uint64_t capacity = *(const uint64_t *)arg;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	h->meta.magic = RING_MAGIC;
	h->meta.hdr_size = HDR_SIZE;
	h->meta.capacity = capacity;
	h->meta.created_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	h->meta.max_payload = (uint32_t)(capacity / 8 - sizeof(struct rec_hdr));
	/* V1: the version last, so a reader never trusts a half-made header */
	atomic_store_explicit(&h->meta.version, RING_VERSION, memory_order_release);
}

int ring_create(const char *name, uint64_t capacity, mode_t mode)
{
	char path[PATH_MAX];
	if (capacity < RING_MIN_CAPACITY || (capacity & (capacity - 1)) || capacity > (1ULL << 40))
		return -EINVAL;
	int rc = ring_file(path, sizeof path, name, true);
	if (rc < 0)
		return rc;
	if (access(path, F_OK) == 0)
		return 0;
	/* shm_create reserves every page (tmpfs hands them out on first touch:
	 * a sparse ring in a full directory would kill its producer with
	 * SIGBUS at some later record), as Aeron does with its non-sparse log
	 * buffers; it fails with -ENOSPC and leaves nothing when the room is
	 * not there. */
	return shm_create(path, HDR_SIZE + capacity, HDR_SIZE, mode, ring_init_hdr, &capacity);
}

int ring_unlink(const char *name)
{
	char path[PATH_MAX];
	int rc = ring_file(path, sizeof path, name, false);
	if (rc < 0)
		return rc;
	return unlink(path) < 0 ? -errno : 0;
}

/* Can this header be trusted past its magic and version? Every position a
 * reader follows (published, intent, prod_min, the oldest-boundary index,
 * consumer slots) is a record boundary, so 8-aligned, and max_payload is derived
 * from the capacity: a file corrupted otherwise made readers misalign
 * record headers (found by fuzz_ring, issue 9). Not a race: a live
 * producer keeps all of these aligned at every store. */
static bool hdr_sane(const struct ring_hdr *h)
{
	uint64_t any = atomic_load_explicit(&h->prod.pos, memory_order_relaxed) |
		       atomic_load_explicit(&h->prod.intent, memory_order_relaxed) |
		       atomic_load_explicit(&h->slow.prod_min, memory_order_relaxed);
	for (int i = 0; i < SEGS; i++)
		any |= atomic_load_explicit(&h->seg[i], memory_order_relaxed);
	for (int i = 0; i < RING_SLOTS; i++)
		any |= atomic_load_explicit(&h->slots[i].position, memory_order_relaxed);
	return (any & 7) == 0 &&
	       h->meta.max_payload == (uint32_t)(h->meta.capacity / 8 - sizeof(struct rec_hdr));
}

mdb_ring *ring_open(const char *name, int *err)
{
	char path[PATH_MAX];
	struct stat st;
	int rc = ring_file(path, sizeof path, name, false);
	if (rc < 0)
		goto fail;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < HDR_SIZE + RING_MIN_CAPACITY) {
		rc = -EPROTO;
		goto fail_fd;
	}
	void *m = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto fail_fd;
	}
	struct ring_hdr *h = m;
	/* V2: pairs with V1 in ring_create */
	if (h->meta.magic != RING_MAGIC ||
	    atomic_load_explicit(&h->meta.version, memory_order_acquire) != RING_VERSION ||
	    h->meta.hdr_size != HDR_SIZE || h->meta.capacity + HDR_SIZE != (uint64_t)st.st_size ||
	    (h->meta.capacity & (h->meta.capacity - 1)) || !hdr_sane(h)) {
		munmap(m, st.st_size);
		rc = -EPROTO;
		goto fail_fd;
	}
	mdb_ring *r = calloc(1, sizeof *r);
	if (!r) {
		munmap(m, st.st_size);
		rc = -ENOMEM;
		goto fail_fd;
	}
	r->h = h;
	r->data = (uint8_t *)m + HDR_SIZE;
	r->map_size = st.st_size;
	r->cap = h->meta.capacity;
	r->mask = r->cap - 1;
	r->max_payload = h->meta.max_payload;
	r->seg_shift = (unsigned)__builtin_ctzll(r->cap) - 4;
	r->fd = fd;
	return r;
fail_fd:
	close(fd);
fail:
	if (err)
		*err = rc;
	return NULL;
}

void ring_close(mdb_ring **rp)
{
	if (!rp || !*rp)
		return;
	mdb_ring *r = *rp;
	ring_flush(r);
	munmap(r->h, r->map_size);
	close(r->fd); /* drops our OFD locks: producer and slots */
	free(r);
	*rp = NULL;
}

uint64_t ring_capacity(const mdb_ring *r)
{
	return r->cap;
}

uint32_t ring_max_payload(const mdb_ring *r)
{
	return r->max_payload;
}

uint64_t ring_position(const mdb_ring *r)
{
	return atomic_load_explicit(&r->h->prod.pos, memory_order_acquire);
}

/* ---- producer ---- */

/* The lowest position a durable consumer still needs (or our own position).
 * P4: the acquire loads pair with each consumer's release store (C4). */
static uint64_t min_durable(mdb_ring *r)
{
	uint64_t min = r->pos;
	for (int i = 0; i < RING_SLOTS; i++) {
		struct slot *s = &r->h->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_seq_cst) != SLOT_ACTIVE ||
		    s->kind != RING_DURABLE)
			continue;
		uint64_t p = atomic_load_explicit(&s->position, memory_order_acquire);
		if (p < min)
			min = p;
	}
	return min;
}

/* Recompute the write limit; P5: scan, publish prod_min, rescan, so a
 * consumer joining meanwhile is seen either here or by itself (C5). */
static void refresh_limit(mdb_ring *r)
{
	uint64_t m = min_durable(r);
	atomic_store_explicit(&r->h->slow.prod_min, m, memory_order_seq_cst);
	uint64_t m2 = min_durable(r);
	if (m2 < m) {
		m = m2;
		atomic_store_explicit(&r->h->slow.prod_min, m, memory_order_seq_cst);
	}
	r->limit = m + r->cap;
}

int ring_producer_begin(mdb_ring *r)
{
	int rc = shm_lock_byte(r->fd, LOCK_PRODUCER);
	if (rc < 0)
		return rc;
	struct ring_hdr *h = r->h;
	r->producing = true;
	r->pos = atomic_load_explicit(&h->prod.pos, memory_order_acquire);
	r->published = r->pos;
	/* a producer that died between claim and commit left intent ahead of
	 * pos; its half-written record was never visible and is overwritten */
	atomic_store_explicit(&h->prod.intent, r->pos, memory_order_relaxed);
	r->records = atomic_load_explicit(&h->prod.records, memory_order_relaxed);
	r->bytes = atomic_load_explicit(&h->prod.bytes, memory_order_relaxed);
	r->last_seg = UINT64_MAX;
	atomic_store_explicit(&h->owner.pid, (int32_t)getpid(), memory_order_relaxed);
	atomic_fetch_add_explicit(&h->owner.epoch, 1, memory_order_relaxed);
	refresh_limit(r);
	/* pre-fault the data pages writable (Aeron's pre-touch): the first lap
	 * then takes no page fault per 4 KiB on the hot path. The pages exist
	 * already (ring_create reserved them); best effort: an old kernel
	 * without MADV_POPULATE_WRITE faults them in as it goes */
	(void)madvise(r->data, r->cap, MADV_POPULATE_WRITE);
	return 0;
}

/* Wait until positions below `end` may be written. */
static int wait_space(mdb_ring *r, uint64_t end, int64_t timeout_ns)
{
	struct ring_hdr *h = r->h;
	int64_t t0 = now_ns(), counted = t0;
	int64_t spin_until = t0 + 20000;
	int rc = 0;
	for (;;) {
		refresh_limit(r);
		if (end <= r->limit)
			break;
		int64_t t = now_ns();
		/* held_ns grows while we wait, so mdb-ring stat shows a stall as
		 * it happens */
		atomic_store_explicit(&h->slow.held_ns,
				      atomic_load_explicit(&h->slow.held_ns, memory_order_relaxed) +
					  (uint64_t)(t - counted),
				      memory_order_relaxed);
		counted = t;
		if (timeout_ns >= 0 && t - t0 >= timeout_ns) {
			rc = -ETIMEDOUT;
			break;
		}
		if (t < spin_until) {
			for (int i = 0; i < 64; i++)
				cpu_relax();
			continue;
		}
		/* sleep until a durable consumer releases (it bumps space_seq when
		 * it sees waiting set); the 1 ms cap bounds a missed wake and lets
		 * us notice a consumer that was dropped */
		uint32_t seq = atomic_load_explicit(&h->cons.space_seq, memory_order_seq_cst);
		atomic_store_explicit(&h->slow.waiting, 1, memory_order_seq_cst);
		refresh_limit(r);
		if (end > r->limit) {
			int64_t left = timeout_ns >= 0 ? timeout_ns - (t - t0) : 1000000;
			rc = shm_futex_wait(&h->cons.space_seq, seq,
					    left < 1000000 ? left : 1000000);
		}
		atomic_store_explicit(&h->slow.waiting, 0, memory_order_relaxed);
		if (rc == -EINTR)
			break; /* a signal: the caller decides whether to stop */
		rc = 0;
	}
	atomic_store_explicit(&h->slow.held_ns,
			      atomic_load_explicit(&h->slow.held_ns, memory_order_relaxed) +
				  (uint64_t)(now_ns() - counted),
			      memory_order_relaxed);
	return rc;
}

int ring_claim(mdb_ring *r, uint32_t type, uint32_t len, void **payload, int64_t timeout_ns)
{
	if (!r->producing)
		return -EPERM;
	if (len > r->max_payload || type == RING_PAD)
		return len > r->max_payload ? -EMSGSIZE : -EINVAL;
	uint64_t need = align8(sizeof(struct rec_hdr) + len);
	uint64_t p = r->pos;
	uint64_t off = p & r->mask;
	uint64_t pad = (r->cap - off < need) ? r->cap - off : 0;
	uint64_t end = p + pad + need;
	if (end > r->limit) {
		/* consumers must see what is committed before we wait on them */
		ring_flush(r);
		int rc = wait_space(r, end, timeout_ns);
		if (rc < 0)
			return rc;
	}
	/* P3: announce what we are about to overwrite before touching it;
	 * pairs with C3 in ring_next */
	atomic_store_explicit(&r->h->prod.intent, end, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	if (pad) {
		struct rec_hdr *ph = (struct rec_hdr *)(r->data + off);
		ph->len = (uint32_t)(pad - sizeof *ph);
		ph->type = RING_PAD;
		p += pad;
		off = 0;
	}
	struct rec_hdr *rh = (struct rec_hdr *)(r->data + off);
	rh->len = len;
	rh->type = type;
	r->claim_pos = p;
	r->claim_end = p + need;
	*payload = rh + 1;
	return 0;
}

/* One wake per sleep: take every sleeper's bit before waking, so the
 * records published before the sleepers have run make no syscall, and a
 * bit left by a consumer killed in its sleep costs one wake, not one per
 * record. A sleeper reads wake.seq before it sets its bit, so after the
 * exchange it either sees the new position or its futex_waitv returns. */
static void wake_sleepers(mdb_ring *r)
{
	struct ring_hdr *h = r->h;
	if (!atomic_exchange_explicit(&h->cons.sleepers, 0, memory_order_seq_cst))
		return;
	atomic_fetch_add_explicit(&h->wake.seq, 1, memory_order_seq_cst);
	shm_futex_wake(&h->wake.seq);
}

/* Take the claimed record into r->pos without making it visible. */
static void commit_local(mdb_ring *r)
{
	struct ring_hdr *h = r->h;
	uint64_t p = r->claim_pos;
	uint64_t seg = p >> r->seg_shift;
	if (seg != r->last_seg) {
		r->last_seg = seg;
		atomic_store_explicit(&h->seg[seg & (SEGS - 1)], p, memory_order_release);
	}
	r->pos = r->claim_end;
	r->records++;
	r->bytes += ((struct rec_hdr *)(r->data + (p & r->mask)))->len;
}

void ring_flush(mdb_ring *r)
{
	struct ring_hdr *h = r->h;
	if (!r->producing || r->published == r->pos)
		return;
	r->published = r->pos;
	atomic_store_explicit(&h->prod.records, r->records, memory_order_relaxed);
	atomic_store_explicit(&h->prod.bytes, r->bytes, memory_order_relaxed);
	/* P1/P2: publish every record committed so far; pairs with C1 (acquire
	 * load in ring_next) and, with the load below, with C2 in ring_wait */
	atomic_store_explicit(&h->prod.pos, r->pos, memory_order_seq_cst);
	if (atomic_load_explicit(&h->cons.sleepers, memory_order_seq_cst))
		wake_sleepers(r);
}

void ring_commit(mdb_ring *r)
{
	commit_local(r);
	ring_flush(r);
}

void ring_commit_quiet(mdb_ring *r)
{
	commit_local(r);
}

void ring_commit_len_quiet(mdb_ring *r, uint32_t len)
{
	struct rec_hdr *rh = (struct rec_hdr *)(r->data + (r->claim_pos & r->mask));
	if (len < rh->len) {
		/* the record is still private: nothing has published claim_pos */
		rh->len = len;
		r->claim_end = r->claim_pos + align8(sizeof *rh + len);
	}
	commit_local(r);
}

int ring_publish(mdb_ring *r, uint32_t type, const void *data, uint32_t len, int64_t timeout_ns)
{
	void *dst;
	int rc = ring_claim(r, type, len, &dst, timeout_ns);
	if (rc < 0)
		return rc;
	memcpy(dst, data, len);
	ring_commit(r);
	return 0;
}

uint64_t ring_oldest(const mdb_ring *r)
{
	const struct ring_hdr *h = r->h;
	uint64_t pos = atomic_load_explicit(&h->prod.pos, memory_order_acquire);
	uint64_t intent = atomic_load_explicit(&h->prod.intent, memory_order_acquire);
	if (intent < pos)
		intent = pos;
	if (intent <= r->cap)
		return 0;
	uint64_t lo = intent - r->cap, oldest = pos;
	for (uint64_t s = lo >> r->seg_shift; s <= pos >> r->seg_shift; s++) {
		uint64_t e = atomic_load_explicit(&h->seg[s & (SEGS - 1)], memory_order_acquire);
		if ((e >> r->seg_shift) == s && e >= lo && e <= pos) {
			oldest = e;
			break;
		}
	}
	/* a durable consumer's position is a boundary the producer keeps intact,
	 * and may lie before the first indexed one */
	for (int i = 0; i < RING_SLOTS; i++) {
		const struct slot *sl = &h->slots[i];
		if (atomic_load_explicit(&sl->state, memory_order_acquire) != SLOT_ACTIVE ||
		    sl->kind != RING_DURABLE)
			continue;
		uint64_t p = atomic_load_explicit(&sl->position, memory_order_acquire);
		if (p >= lo && p < oldest)
			oldest = p;
	}
	return oldest;
}

/* ---- consumers ---- */

static void slot_lap(mdb_ring_consumer *c)
{
	c->laps++;
	atomic_store_explicit(&c->slot->laps, c->laps, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->r->h->cons.laps, 1, memory_order_relaxed);
}

/* Choose where a new durable consumer starts and make the producer see it.
 * C5: seq_cst store of the slot, then seq_cst load of prod_min; pairs with
 * P5 in refresh_limit. The start must be >= prod_min: the producer only
 * writes below prod_min + capacity, so nothing from there on is in flux. */
static uint64_t durable_join(mdb_ring *r, struct slot *s, enum ring_from from)
{
	struct ring_hdr *h = r->h;
	uint64_t pm = atomic_load_explicit(&h->slow.prod_min, memory_order_seq_cst);
	for (;;) {
		uint64_t p = from == RING_FROM_START ? ring_oldest(r) : ring_position(r);
		if (p < pm)
			p = pm <= ring_position(r) ? pm : ring_position(r);
		atomic_store_explicit(&s->position, p, memory_order_seq_cst);
		atomic_store_explicit(&s->state, SLOT_ACTIVE, memory_order_seq_cst);
		uint64_t pm2 = atomic_load_explicit(&h->slow.prod_min, memory_order_seq_cst);
		if (pm2 <= p)
			return p;
		/* prod_min beyond all that is published and no producer alive to
		 * publish more (a corrupt header, or a producer that died after
		 * refresh_limit counted records it never published): waiting
		 * would spin forever (found by fuzz_ring, issue 9). p is safe:
		 * the next producer rescans the slots in ring_producer_begin. */
		if (!r->producing && !shm_byte_locked(r->fd, LOCK_PRODUCER))
			return p;
		pm = pm2;
	}
}

mdb_ring_consumer *ring_consumer_open(mdb_ring *r, const char *name, enum ring_kind kind,
				      enum ring_from from, int64_t spin_ns, int *err)
{
	int rc;
	struct ring_hdr *h = r->h;
	if (!name || !shm_name_ok(name) || (kind != RING_DURABLE && kind != RING_OBSERVER)) {
		rc = -EINVAL;
		goto fail;
	}
	mdb_ring_consumer *c = calloc(1, sizeof *c);
	if (!c) {
		rc = -ENOMEM;
		goto fail;
	}
	if (kind == RING_OBSERVER && !(c->buf = malloc(r->max_payload + 8))) {
		free(c);
		rc = -ENOMEM;
		goto fail;
	}
	/* registration is rare: serialise it with a blocking lock on the
	 * registry byte (released below: shm_unlock_byte at the end) */
	struct flock fl = {
	    .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = LOCK_REGISTRY, .l_len = 1};
	while (fcntl(r->fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno != EINTR) {
			rc = -errno;
			goto fail_c;
		}
	}
	int idx = -1, free_idx = -1;
	for (int i = 0; i < RING_SLOTS; i++) {
		struct slot *s = &h->slots[i];
		uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == SLOT_ACTIVE && strncmp(s->name, name, RING_NAME_MAX) == 0) {
			idx = i;
			break;
		}
		/* an observer whose process died (killed mdb-tap.PID) would hold
		 * its slot forever: reclaim it, proving it dead by taking its lock */
		if (st == SLOT_ACTIVE && s->kind == RING_OBSERVER &&
		    shm_lock_byte(r->fd, LOCK_SLOT0 + i) == 0) {
			atomic_store_explicit(&s->state, SLOT_FREE, memory_order_release);
			shm_unlock_byte(r->fd, LOCK_SLOT0 + i);
			st = SLOT_FREE;
		}
		if (st == SLOT_FREE && free_idx < 0)
			free_idx = i;
	}
	bool resumed = idx >= 0;
	if (!resumed && free_idx < 0) {
		rc = -ENOSPC;
		goto fail_unlock;
	}
	if (!resumed)
		idx = free_idx;
	struct slot *s = &h->slots[idx];
	rc = shm_lock_byte(r->fd, LOCK_SLOT0 + idx);
	if (rc < 0)
		goto fail_unlock; /* -EBUSY: a live process uses this name */
	if (resumed && s->kind != (uint32_t)kind) {
		/* a name changes kind only through a new slot; refuse quietly
		 * turning a durable consumer into an observer and back */
		shm_unlock_byte(r->fd, LOCK_SLOT0 + idx);
		rc = -EEXIST;
		goto fail_unlock;
	}
	atomic_fetch_and_explicit(&h->cons.sleepers, ~(1u << idx), memory_order_relaxed);
	c->r = r;
	c->slot = s;
	c->idx = idx;
	c->kind = kind;
	c->spin_ns = spin_ns;
	atomic_store_explicit(&s->pid, (int32_t)getpid(), memory_order_relaxed);
	if (resumed) {
		c->pos = atomic_load_explicit(&s->position, memory_order_acquire);
		c->laps = atomic_load_explicit(&s->laps, memory_order_relaxed);
		c->records = atomic_load_explicit(&s->records, memory_order_relaxed);
		uint64_t pub = ring_position(r);
		if (c->pos > pub) /* the ring was recreated under us */
			c->pos = pub;
	} else {
		memset(s->name, 0, sizeof s->name);
		strcpy(s->name, name);
		s->kind = kind;
		atomic_store_explicit(&s->laps, 0, memory_order_relaxed);
		atomic_store_explicit(&s->records, 0, memory_order_relaxed);
		if (kind == RING_DURABLE) {
			c->pos = durable_join(r, s, from);
		} else {
			c->pos = from == RING_FROM_START ? ring_oldest(r) : ring_position(r);
			atomic_store_explicit(&s->position, c->pos, memory_order_relaxed);
			atomic_store_explicit(&s->state, SLOT_ACTIVE, memory_order_release);
		}
	}
	c->released = c->pos;
	c->pub = ring_position(r);
	shm_unlock_byte(r->fd, LOCK_REGISTRY);
	return c;
fail_unlock:
	shm_unlock_byte(r->fd, LOCK_REGISTRY);
fail_c:
	free(c->buf);
	free(c);
fail:
	if (err)
		*err = rc;
	return NULL;
}

void ring_release(mdb_ring_consumer *c)
{
	if (c->released == c->pos)
		return;
	c->released = c->pos;
	/* C4: done with the bytes below pos; pairs with P4 in min_durable */
	atomic_store_explicit(&c->slot->position, c->pos, memory_order_release);
	atomic_store_explicit(&c->slot->records, c->records, memory_order_relaxed);
	/* the producer sleeps at most 1 ms at a time when held back, which
	 * bounds a wake missed here (the store above and the load below are
	 * not ordered); taking the flag makes it one wake per producer sleep */
	if (c->kind == RING_DURABLE &&
	    atomic_load_explicit(&c->r->h->slow.waiting, memory_order_relaxed) &&
	    atomic_exchange_explicit(&c->r->h->slow.waiting, 0, memory_order_seq_cst)) {
		atomic_fetch_add_explicit(&c->r->h->cons.space_seq, 1, memory_order_seq_cst);
		shm_futex_wake(&c->r->h->cons.space_seq);
	}
}

void ring_consumer_close(mdb_ring_consumer **cp)
{
	if (!cp || !*cp)
		return;
	mdb_ring_consumer *c = *cp;
	if (!c->manual)
		ring_release(c);
	if (c->kind == RING_OBSERVER)
		atomic_store_explicit(&c->slot->state, SLOT_FREE, memory_order_release);
	shm_unlock_byte(c->r->fd, LOCK_SLOT0 + c->idx);
	free(c->buf);
	free(c);
	*cp = NULL;
}

int ring_consumer_drop(mdb_ring *r, const char *name)
{
	for (int i = 0; i < RING_SLOTS; i++) {
		struct slot *s = &r->h->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_ACTIVE ||
		    strncmp(s->name, name, RING_NAME_MAX) != 0)
			continue;
		/* holding the slot's lock ourselves proves nobody else does */
		int rc = shm_lock_byte(r->fd, LOCK_SLOT0 + i);
		if (rc < 0)
			return rc;
		atomic_store_explicit(&s->state, SLOT_FREE, memory_order_seq_cst);
		shm_unlock_byte(r->fd, LOCK_SLOT0 + i);
		return 0;
	}
	return -ENOENT;
}

int ring_next(mdb_ring_consumer *c, struct ring_rec *rec)
{
	mdb_ring *r = c->r;
	if (!c->manual)
		ring_release(c);
	for (;;) {
		if (c->pos == c->pub) {
			/* C1: pairs with P1 in ring_commit */
			c->pub = atomic_load_explicit(&r->h->prod.pos, memory_order_acquire);
			if (c->pos == c->pub)
				return 0;
		}
		if (c->pub - c->pos > r->cap)
			goto lapped; /* only an observer can fall this far behind */
		uint64_t off = c->pos & r->mask;
		const struct rec_hdr *rh = (const struct rec_hdr *)(r->data + off);
		uint32_t len = rh->len, type = rh->type;
		if (type == RING_PAD) {
			if (c->kind == RING_OBSERVER) {
				atomic_thread_fence(memory_order_acquire);
				if (atomic_load_explicit(&r->h->prod.intent, memory_order_relaxed) -
					c->pos >
				    r->cap)
					goto lapped;
			}
			c->pos += r->cap - off;
			continue;
		}
		uint64_t need = align8(sizeof *rh + len);
		if (len > r->max_payload || off + need > r->cap) {
			if (c->kind == RING_OBSERVER)
				goto lapped; /* a torn header: we were overwritten */
			return -EPROTO;
		}
		const void *payload = rh + 1;
		if (c->kind == RING_OBSERVER) {
			memcpy(c->buf, payload, len);
			/* C3: pairs with P3 in ring_claim; if the producer announced
			 * writing past our record's lap, the copy may be torn */
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&r->h->prod.intent, memory_order_relaxed) -
				c->pos >
			    r->cap)
				goto lapped;
			payload = c->buf;
		}
		rec->type = type;
		rec->len = len;
		rec->data = payload;
		rec->pos = c->pos;
		c->pos += need;
		c->records++;
		return 1;
	lapped:
		slot_lap(c);
		c->pos = c->pub = atomic_load_explicit(&r->h->prod.pos, memory_order_acquire);
		c->released = c->pos;
		atomic_store_explicit(&c->slot->position, c->pos, memory_order_relaxed);
		return RING_LAPPED;
	}
}

static inline bool ready(mdb_ring_consumer *c, memory_order mo)
{
	return atomic_load_explicit(&c->r->h->prod.pos, mo) != c->pos;
}

/* Spin up to spin_ns (forever when < 0, bounded by deadline). True if ready. */
static bool spin(mdb_ring_consumer **cs, int n, int64_t spin_ns, int64_t deadline,
		 _Atomic uint32_t *stop)
{
	if (spin_ns == 0)
		return false;
	int64_t until = spin_ns < 0 ? deadline : now_ns() + spin_ns;
	if (deadline >= 0 && until > deadline)
		until = deadline;
	for (;;) {
		for (int k = 0; k < 128; k++) {
			for (int i = 0; i < n; i++)
				if (ready(cs[i], memory_order_acquire))
					return true;
			cpu_relax();
		}
		if ((until >= 0 && now_ns() >= until) ||
		    (stop && atomic_load_explicit(stop, memory_order_relaxed)))
			return false;
	}
}

/* C2, the first half, for consumer c about to sleep on its ring's wake
 * word: read the word (before the bit, so that a wake after the bit changes
 * it), then announce the sleep in cons.sleepers. The caller then looks at
 * prod.pos once more (the second half) and sleeps only while the word holds
 * *val. Pairs with P2 in ring_commit; sleep_over() takes the bit back.
 * Returns the word. */
static _Atomic uint32_t *announce_sleep(mdb_ring_consumer *c, uint32_t *val)
{
	struct ring_hdr *h = c->r->h;
	*val = atomic_load_explicit(&h->wake.seq, memory_order_seq_cst);
	atomic_fetch_or_explicit(&h->cons.sleepers, 1u << c->idx, memory_order_seq_cst);
	return &h->wake.seq;
}

/* The sleep announced by announce_sleep() is over (or never began). */
static void sleep_over(mdb_ring_consumer *c)
{
	atomic_fetch_and_explicit(&c->r->h->cons.sleepers, ~(1u << c->idx), memory_order_relaxed);
}

/* Sleep until some consumer's ring has moved past pos[i], the deadline
 * passes, or *ctl != ctl_val (when ctl is set): one futex_waitv() over every
 * ring's wake word (and ctl). Each consumer marks its slot's bit in
 * cons.sleepers while it may sleep. Returns 1 moved, 0 timed out, 2 ctl
 * changed, -EINTR or -errno. */
static int sleep_moved(mdb_ring_consumer **cs, const uint64_t *pos, int n, _Atomic uint32_t *ctl,
		       uint32_t ctl_val, int64_t deadline)
{
	struct futex_waitv w[FUTEX_WAITV_MAX];
	if (n <= 0 || n + (ctl != NULL) > FUTEX_WAITV_MAX)
		return -EINVAL;
	for (;;) {
		bool any = false;
		for (int i = 0; i < n; i++) {
			uint32_t val;
			_Atomic uint32_t *word = announce_sleep(cs[i], &val);
			w[i] = (struct futex_waitv){
			    .val = val, .uaddr = (uintptr_t)word, .flags = FUTEX_32};
		}
		int nw = n;
		if (ctl)
			w[nw++] = (struct futex_waitv){
			    .val = ctl_val, .uaddr = (uintptr_t)ctl, .flags = FUTEX_32};
		for (int i = 0; i < n; i++)
			any |= atomic_load_explicit(&cs[i]->r->h->prod.pos, memory_order_seq_cst) !=
			       pos[i];
		long rc = 0;
		if (!any) {
			struct timespec ts; /* futex_waitv takes an absolute time */
			if (deadline >= 0) {
				ts.tv_sec = deadline / 1000000000LL;
				ts.tv_nsec = deadline % 1000000000LL;
			}
			rc = syscall(SYS_futex_waitv, w, (unsigned)nw, 0,
				     deadline >= 0 ? &ts : NULL, CLOCK_MONOTONIC);
			if (rc < 0)
				rc = -errno;
		}
		for (int i = 0; i < n; i++)
			sleep_over(cs[i]);
		for (int i = 0; i < n; i++)
			if (atomic_load_explicit(&cs[i]->r->h->prod.pos, memory_order_acquire) !=
			    pos[i])
				return 1;
		if (ctl && atomic_load_explicit(ctl, memory_order_acquire) != ctl_val)
			return 2;
		if (rc == -EINTR)
			return -EINTR;
		if (deadline >= 0 && now_ns() >= deadline)
			return 0;
		if (rc < 0 && rc != -EAGAIN && rc != -ETIMEDOUT)
			return (int)rc;
	}
}

int ring_sleep_prepare(mdb_ring_consumer *c, uint64_t pos, _Atomic uint32_t **uaddr, uint32_t *val)
{
	*uaddr = announce_sleep(c, val);
	/* C2, the second half: look once more (as sleep_moved() does) */
	if (atomic_load_explicit(&c->r->h->prod.pos, memory_order_seq_cst) == pos)
		return 0;
	sleep_over(c);
	return 1;
}

int ring_wait_any(mdb_ring_consumer **cs, int n, int64_t spin_ns, int64_t timeout_ns)
{
	return ring_wait_any_stop(cs, n, spin_ns, timeout_ns, NULL);
}

int ring_wait_any_stop(mdb_ring_consumer **cs, int n, int64_t spin_ns, int64_t timeout_ns,
		       _Atomic uint32_t *stop)
{
	if (n <= 0 || n > FUTEX_WAITV_MAX - 1)
		return -EINVAL;
	int64_t deadline = timeout_ns >= 0 ? now_ns() + timeout_ns : -1;
	uint64_t pos[FUTEX_WAITV_MAX];
	for (int i = 0; i < n; i++) {
		if (!cs[i]->manual)
			ring_release(cs[i]);
		if (ready(cs[i], memory_order_acquire))
			return 1;
		pos[i] = cs[i]->pos;
	}
	if (spin(cs, n, spin_ns, deadline, stop))
		return 1;
	if (stop && atomic_load_explicit(stop, memory_order_seq_cst))
		return -EINTR;
	int rc = sleep_moved(cs, pos, n, stop, 0, deadline);
	return rc == 2 ? -EINTR : rc;
}

int ring_wait(mdb_ring_consumer *c, int64_t timeout_ns)
{
	return ring_wait_any(&c, 1, c->spin_ns, timeout_ns);
}

int ring_sleep_moved(mdb_ring_consumer *c, uint64_t pos, _Atomic uint32_t *ctl, uint32_t ctl_val,
		     int64_t timeout_ns)
{
	return sleep_moved(&c, &pos, 1, ctl, ctl_val, timeout_ns >= 0 ? now_ns() + timeout_ns : -1);
}

void ring_set_manual_release(mdb_ring_consumer *c, bool manual)
{
	c->manual = manual;
}

uint64_t ring_consumer_position(const mdb_ring_consumer *c)
{
	return c->pos;
}

void ring_seek(mdb_ring_consumer *c, uint64_t pos)
{
	c->pos = pos;
	c->pub = ring_position(c->r);
	if (c->pos > c->pub)
		c->pos = c->pub;
	c->released = c->pos;
	/* C4 as in ring_release: the producer may now reuse what lies below */
	atomic_store_explicit(&c->slot->position, c->pos, memory_order_release);
}

int ring_seek_checked(mdb_ring_consumer *c, uint64_t pos)
{
	mdb_ring *r = c->r;
	if (c->kind != RING_OBSERVER)
		return -EPERM;
	uint64_t pub = ring_position(r);
	if (pos > pub || (pos & 7))
		return -EINVAL;
	uint64_t oldest = ring_oldest(r);
	if (pos < oldest)
		return -ERANGE;
	/* walk the record headers from the nearest boundary we know at or
	 * before pos: the oldest one, or an entry of the index */
	uint64_t start = oldest;
	for (int i = 0; i < SEGS; i++) {
		uint64_t e = atomic_load_explicit(&r->h->seg[i], memory_order_acquire);
		if (e > start && e <= pos)
			start = e;
	}
	uint64_t q = start;
	while (q < pos) {
		uint64_t off = q & r->mask;
		const struct rec_hdr *rh = (const struct rec_hdr *)(r->data + off);
		uint32_t len = rh->len;
		if (rh->type == RING_PAD)
			q += r->cap - off;
		else if (len <= r->max_payload && off + align8(sizeof *rh + len) <= r->cap)
			q += align8(sizeof *rh + len);
		else
			break; /* torn: judged below */
	}
	/* C3 as in ring_next (pairs with P3 in ring_claim): if the producer
	 * announced writing past the start of our walk's lap, the headers we
	 * followed may have been overwritten under us */
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&r->h->prod.intent, memory_order_relaxed) - start > r->cap)
		return -ERANGE;
	if (q != pos)
		return -EINVAL;
	c->pos = pos;
	c->pub = pub;
	c->released = pos;
	atomic_store_explicit(&c->slot->position, pos, memory_order_relaxed);
	return 0;
}

uint64_t ring_id(const mdb_ring *r)
{
	return (uint64_t)r->h->meta.created_ns;
}

uint64_t ring_consumer_laps(const mdb_ring_consumer *c)
{
	return c->laps;
}

int ring_info(mdb_ring *r, struct ring_info *out)
{
	struct ring_hdr *h = r->h;
	memset(out, 0, sizeof *out);
	out->capacity = r->cap;
	out->position = ring_position(r);
	out->oldest = ring_oldest(r);
	out->producer_pid = atomic_load_explicit(&h->owner.pid, memory_order_relaxed);
	out->producer_epoch = atomic_load_explicit(&h->owner.epoch, memory_order_relaxed);
	out->producer_alive = r->producing || shm_byte_locked(r->fd, LOCK_PRODUCER);
	out->records = atomic_load_explicit(&h->prod.records, memory_order_relaxed);
	out->bytes = atomic_load_explicit(&h->prod.bytes, memory_order_relaxed);
	out->laps = atomic_load_explicit(&h->cons.laps, memory_order_relaxed);
	out->held_ns = atomic_load_explicit(&h->slow.held_ns, memory_order_relaxed);
	out->sleepers = (uint32_t)__builtin_popcount(
	    atomic_load_explicit(&h->cons.sleepers, memory_order_relaxed));
	for (int i = 0; i < RING_SLOTS; i++) {
		struct slot *s = &h->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_ACTIVE)
			continue;
		struct ring_slot_info *si = &out->slots[out->nslots++];
		memcpy(si->name, s->name, RING_NAME_MAX);
		si->name[RING_NAME_MAX - 1] = '\0';
		si->kind = s->kind;
		si->pid = atomic_load_explicit(&s->pid, memory_order_relaxed);
		si->alive = shm_byte_locked(r->fd, LOCK_SLOT0 + i);
		si->position = atomic_load_explicit(&s->position, memory_order_acquire);
		si->laps = atomic_load_explicit(&s->laps, memory_order_relaxed);
		si->records = atomic_load_explicit(&s->records, memory_order_relaxed);
	}
	return 0;
}

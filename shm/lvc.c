/* lvc.c - the last-value cache: a seqlocked open-addressing table in shm.
 *
 * File layout ($MDB_SHM_DIR/NAME.lvc):
 *
 *	struct lvc_hdr                      meta (immutable), writer words
 *	struct lvc_entry[capacity]          256 bytes each
 *
 * Memory ordering, in one place (each pair is also named where it occurs):
 *
 *  V1  creator: header fields, then release store of meta.version
 *      (lvc_create); pairs with V2: lvc_open's acquire load of it.
 *  K1  writer: the key (s, iv) of a new entry, then release store of
 *      entry.state = USED (lvc_slot); pairs with K2: a reader's acquire load
 *      of state before it compares the key (lvc_find, lvc_read). Keys never
 *      change once published.
 *  S1  writer, lvc_put: relaxed store of an odd seq, release fence, then the
 *      value words (relaxed atomic stores). Pairs with S3: a reader's
 *      relaxed loads of the words, acquire fence, relaxed reload of seq. If
 *      the reader saw any word of this update, the fences make the odd seq
 *      visible to its reload, so it retries.
 *  S2  writer: release store of the next even seq after the words; pairs
 *      with S4: the reader's acquire load of seq before it copies. A reader
 *      that starts on even seq s sees every word of the update that
 *      published s, and if seq is still s afterwards, nothing newer.
 * The words are atomics, so a torn read is a retry, never undefined
 * behaviour; on x86-64 every one of these is a plain mov.
 */
#include "lvc.h"
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LVC_MAGIC	 0x3143564c4244444dULL /* "MDDBLVC1" in little-endian bytes */
#define LVC_VERSION	 1u
#define LVC_WORDS	 (sizeof(struct lvc_value) / 8)
#define LVC_MIN_CAPACITY 16u
#define LINE		 128
#define LOCK_WRITER	 0
#define READ_GIVE_UP_NS	 100000000 /* a reader stops waiting for a stuck entry */

enum { ENTRY_FREE = 0, ENTRY_USED = 1 };

struct lvc_hdr {
	alignas(LINE) struct { /* immutable once version is set */
		uint64_t magic;
		_Atomic uint32_t version; /* stored last (V1) */
		uint32_t hdr_size;
		uint32_t entry_size;
		uint32_t capacity;
		int64_t created_ns;
	} meta;
	alignas(LINE) struct { /* the writer's */
		_Atomic int32_t pid;
		_Atomic uint32_t used;	  /* entries with a key */
		_Atomic uint64_t updates; /* lvc_put calls */
	} w;
};

struct lvc_entry {
	alignas(64) _Atomic uint32_t state; /* ENTRY_*; USED is stored after the key (K1) */
	int32_t iv;			    /* key, written once */
	_Atomic uint64_t seq;		    /* seqlock: odd while being written; seq/2 updates */
	char s[LVC_SYM_MAX];		    /* key, NUL-padded, written once */
	_Atomic uint64_t w[LVC_WORDS];	    /* struct lvc_value, word by word */
};

_Static_assert(sizeof(struct lvc_value) % 8 == 0, "lvc_value is whole words");
_Static_assert(sizeof(struct lvc_entry) == 256, "an entry is four cache lines");
_Static_assert(sizeof(struct lvc_hdr) == 2 * LINE, "header is two lines");

struct mdb_lvc {
	struct lvc_hdr *h;
	struct lvc_entry *e;
	size_t map_size;
	uint32_t cap, mask;
	int fd;
	bool writer;
};

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t mono_ns(void)
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

/* FNV-1a over s and iv, folded. */
static uint64_t key_hash(const char *s, int32_t iv)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
	for (int i = 0; i < 4; i++)
		h = (h ^ (uint8_t)((uint32_t)iv >> (8 * i))) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

static int lvc_file(char *buf, size_t size, const char *name, bool mkdirs)
{
	if (!shm_name_ok(name))
		return -EINVAL;
	return shm_path(buf, size, NULL, name, ".lvc", mkdirs);
}

static size_t file_size(uint32_t cap)
{
	return sizeof(struct lvc_hdr) + (size_t)cap * sizeof(struct lvc_entry);
}

static void lvc_init_hdr(void *m, void *arg)
{
	struct lvc_hdr *h = m;
	uint32_t capacity = *(const uint32_t *)arg;
	h->meta.magic = LVC_MAGIC;
	h->meta.hdr_size = sizeof *h;
	h->meta.entry_size = sizeof(struct lvc_entry);
	h->meta.capacity = capacity;
	h->meta.created_ns = realtime_ns();
	/* V1: the version last, so a half-made file is never trusted */
	atomic_store_explicit(&h->meta.version, LVC_VERSION, memory_order_release);
}

int lvc_create(const char *name, uint32_t capacity, mode_t mode)
{
	char path[PATH_MAX];
	if (capacity < LVC_MIN_CAPACITY || capacity > LVC_MAX_CAPACITY ||
	    (capacity & (capacity - 1)))
		return -EINVAL;
	int rc = lvc_file(path, sizeof path, name, true);
	if (rc < 0)
		return rc;
	return shm_create(path, file_size(capacity), sizeof(struct lvc_hdr), mode, lvc_init_hdr,
			  &capacity);
}

int lvc_unlink(const char *name)
{
	char path[PATH_MAX];
	int rc = lvc_file(path, sizeof path, name, false);
	if (rc < 0)
		return rc;
	return unlink(path) < 0 ? -errno : 0;
}

mdb_lvc *lvc_open(const char *name, bool writer, int *err)
{
	char path[PATH_MAX];
	struct stat st;
	mdb_lvc *c = NULL;
	void *m = MAP_FAILED;
	int fd = -1;
	int rc = lvc_file(path, sizeof path, name, false);
	if (rc < 0)
		goto fail;
	fd = open(path, (writer ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = -EPROTO;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < file_size(LVC_MIN_CAPACITY))
		goto fail;
	m = mmap(NULL, st.st_size, writer ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	struct lvc_hdr *h = m;
	/* V2: pairs with V1 in lvc_create */
	if (h->meta.magic != LVC_MAGIC ||
	    atomic_load_explicit(&h->meta.version, memory_order_acquire) != LVC_VERSION ||
	    h->meta.hdr_size != sizeof *h || h->meta.entry_size != sizeof(struct lvc_entry) ||
	    h->meta.capacity < LVC_MIN_CAPACITY || (h->meta.capacity & (h->meta.capacity - 1)) ||
	    file_size(h->meta.capacity) != (size_t)st.st_size)
		goto fail;
	if (writer && (rc = shm_lock_byte(fd, LOCK_WRITER)) < 0)
		goto fail;
	if (!(c = calloc(1, sizeof *c))) {
		rc = -ENOMEM;
		goto fail;
	}
	c->h = h;
	c->e = (struct lvc_entry *)(h + 1);
	c->map_size = st.st_size;
	c->cap = h->meta.capacity;
	c->mask = c->cap - 1;
	c->fd = fd;
	c->writer = writer;
	if (writer)
		atomic_store_explicit(&h->w.pid, (int32_t)getpid(), memory_order_relaxed);
	return c;
fail:
	if (m != MAP_FAILED)
		munmap(m, st.st_size);
	if (fd >= 0)
		close(fd);
	if (err)
		*err = rc;
	return NULL;
}

void lvc_close(mdb_lvc **cp)
{
	if (!cp || !*cp)
		return;
	munmap((*cp)->h, (*cp)->map_size);
	close((*cp)->fd); /* drops the writer lock */
	free(*cp);
	*cp = NULL;
}

uint32_t lvc_capacity(const mdb_lvc *c)
{
	return c->cap;
}

static bool key_is(const struct lvc_entry *e, const char *s, int32_t iv)
{
	return e->iv == iv && strncmp(e->s, s, LVC_SYM_MAX) == 0;
}

int lvc_find(const mdb_lvc *c, const char *s, int32_t iv)
{
	uint32_t b = (uint32_t)key_hash(s, iv) & c->mask;
	for (uint32_t i = 0; i < c->cap; i++, b = (b + 1) & c->mask) {
		const struct lvc_entry *e = &c->e[b];
		/* K2: pairs with K1 in lvc_slot; the key is complete once USED shows */
		if (atomic_load_explicit(&e->state, memory_order_acquire) != ENTRY_USED)
			return -ENOENT;
		if (key_is(e, s, iv))
			return (int)b;
	}
	return -ENOENT;
}

int lvc_slot(mdb_lvc *c, const char *s, int32_t iv)
{
	size_t len = strlen(s);
	if (!c->writer)
		return -EBADF;
	if (len == 0 || len >= LVC_SYM_MAX)
		return -EINVAL;
	uint32_t b = (uint32_t)key_hash(s, iv) & c->mask;
	for (uint32_t i = 0; i < c->cap; i++, b = (b + 1) & c->mask) {
		struct lvc_entry *e = &c->e[b];
		/* the writer is the only one that stores state: relaxed suffices */
		if (atomic_load_explicit(&e->state, memory_order_relaxed) == ENTRY_USED) {
			if (key_is(e, s, iv))
				return (int)b;
			continue;
		}
		uint32_t used = atomic_load_explicit(&c->h->w.used, memory_order_relaxed);
		if ((uint64_t)(used + 1) * 4 > (uint64_t)c->cap * 3)
			return -ENOSPC;
		memset(e->s, 0, sizeof e->s);
		memcpy(e->s, s, len);
		e->iv = iv;
		/* K1: the key before state, pairs with K2 in lvc_find/lvc_read */
		atomic_store_explicit(&e->state, ENTRY_USED, memory_order_release);
		atomic_store_explicit(&c->h->w.used, used + 1, memory_order_relaxed);
		return (int)b;
	}
	return -ENOSPC;
}

void lvc_put(mdb_lvc *c, int slot, const struct lvc_value *v)
{
	struct lvc_entry *e = &c->e[slot];
	uint64_t words[LVC_WORDS];
	memcpy(words, v, sizeof words);
	/* odd while writing; a writer that died here left seq odd: keep it odd */
	uint64_t s = atomic_load_explicit(&e->seq, memory_order_relaxed) | 1;
	atomic_store_explicit(&e->seq, s, memory_order_relaxed);
	/* S1: the odd seq before any word, pairs with S3 in lvc_read */
	atomic_thread_fence(memory_order_release);
	for (size_t i = 0; i < LVC_WORDS; i++)
		atomic_store_explicit(&e->w[i], words[i], memory_order_relaxed);
	/* S2: every word before the even seq, pairs with S4 in lvc_read */
	atomic_store_explicit(&e->seq, s + 1, memory_order_release);
	atomic_store_explicit(&c->h->w.updates,
			      atomic_load_explicit(&c->h->w.updates, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

void lvc_prefetch(const mdb_lvc *c, int slot)
{
	const char *e = (const char *)&c->e[slot];
	for (size_t i = 0; i < sizeof(struct lvc_entry); i += 64)
		__builtin_prefetch(e + i, 1, 3);
}

int lvc_read(const mdb_lvc *c, int slot, struct lvc_item *out)
{
	if (slot < 0 || (uint32_t)slot >= c->cap)
		return -ENOENT;
	const struct lvc_entry *e = &c->e[slot];
	/* K2: pairs with K1 in lvc_slot */
	if (atomic_load_explicit(&e->state, memory_order_acquire) != ENTRY_USED)
		return -ENOENT;
	memcpy(out->s, e->s, LVC_SYM_MAX);
	out->s[LVC_SYM_MAX - 1] = '\0';
	out->iv = e->iv;
	uint64_t words[LVC_WORDS];
	int64_t t0 = 0;
	for (unsigned tries = 0;; tries++) {
		/* S4: pairs with S2 in lvc_put: the words of update seq/2 are visible */
		uint64_t s0 = atomic_load_explicit(&e->seq, memory_order_acquire);
		if (s0 == 0)
			return -ENOENT;
		if (!(s0 & 1)) {
			for (size_t i = 0; i < LVC_WORDS; i++)
				words[i] = atomic_load_explicit(&e->w[i], memory_order_relaxed);
			/* S3: pairs with S1 in lvc_put: had we read a word of a newer
			 * update, the reload below sees its odd (or later) seq */
			atomic_thread_fence(memory_order_acquire);
			if (atomic_load_explicit(&e->seq, memory_order_relaxed) == s0) {
				memcpy(&out->v, words, sizeof words);
				out->seq = s0 / 2;
				return 0;
			}
		}
		/* the writer is inside the entry: spin, then yield, then give up
		 * (it died there, or is descheduled for very long) */
		if (tries < 64) {
			cpu_relax();
			continue;
		}
		if (!t0)
			t0 = mono_ns();
		else if (mono_ns() - t0 > READ_GIVE_UP_NS)
			return -EAGAIN;
		sched_yield();
	}
}

void lvc_info(const mdb_lvc *c, struct lvc_info *out)
{
	out->capacity = c->cap;
	out->used = atomic_load_explicit(&c->h->w.used, memory_order_relaxed);
	out->writer_pid = atomic_load_explicit(&c->h->w.pid, memory_order_relaxed);
	/* our open() is a description of its own, so a writer's lock shows
	 * even from inside the writer's process, unless this is the writer */
	out->writer_alive = c->writer || shm_byte_locked(c->fd, LOCK_WRITER);
	out->updates = atomic_load_explicit(&c->h->w.updates, memory_order_relaxed);
	out->created_ns = c->h->meta.created_ns;
}

/* shm.h - what the ring and counters files share: where they live, how they
 * are made and how a live owner is told from a dead one. */
#ifndef MDB_SHM_H
#define MDB_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* $MDB_SHM_DIR, or /dev/shm/mdb. */
const char *shm_dir(void);

/* Write "<shm_dir>/<sub>/<name><suffix>" (sub may be NULL) into buf. Returns 0
 * or -ENAMETOOLONG. Creates the directories (mode 0770) when mkdirs is set. */
int shm_path(char *buf, size_t size, const char *sub, const char *name, const char *suffix,
	     bool mkdirs);

/* Create the file `path` of `size` bytes with `mode`, atomically: it is made
 * under a temporary name, its first hdr_size bytes are mapped and filled by
 * init(hdr, arg) (which stores its version last), and only then is it
 * linked into place, so a half-made file is never visible. A file already
 * there is left as it is (another process made it first). 0 or -errno. */
int shm_create(const char *path, size_t size, size_t hdr_size, mode_t mode,
	       void (*init)(void *hdr, void *arg), void *arg);

/* Take an exclusive OFD lock on byte `off` of fd without waiting; it lasts
 * until the open file description is closed (or the process dies).
 * Returns 0, -EBUSY when another description holds it, or -errno. */
int shm_lock_byte(int fd, off_t off);
/* Drop the lock taken by shm_lock_byte(). */
void shm_unlock_byte(int fd, off_t off);
/* True when some other open file description holds a lock on byte `off`. */
bool shm_byte_locked(int fd, off_t off);

/* FUTEX_WAIT on a 32-bit word in shared memory while it holds val, for at
 * most timeout_ns (< 0: forever). Returns 0, -EAGAIN (it did not hold val),
 * -ETIMEDOUT or -EINTR. */
int shm_futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns);
/* Wake every waiter on addr. Returns how many were woken, or -errno. */
int shm_futex_wake(_Atomic uint32_t *addr);

/* Is `name` a safe file name component (1..47 chars of [A-Za-z0-9._@-],
 * not starting with '.')? */
bool shm_name_ok(const char *name);

#endif

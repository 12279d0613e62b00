/* shm.c - paths and liveness locks shared by rings and counters. */
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

const char *shm_dir(void)
{
	const char *d = getenv("MDB_SHM_DIR");
	return d && *d ? d : "/dev/shm/mdb";
}

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0770);
		*p = '/';
		if (rc < 0 && errno != EEXIST)
			return -errno;
	}
	if (mkdir(path, 0770) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int shm_path(char *buf, size_t size, const char *sub, const char *name, const char *suffix,
	     bool mkdirs)
{
	int n = snprintf(buf, size, "%s%s%s", shm_dir(), sub ? "/" : "", sub ? sub : "");
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	if (mkdirs) {
		int rc = mkdir_p(buf);
		if (rc < 0)
			return rc;
	}
	int m = snprintf(buf + n, size - n, "/%s%s", name, suffix ? suffix : "");
	if (m < 0 || (size_t)m >= size - n)
		return -ENAMETOOLONG;
	return 0;
}

int shm_create(const char *path, size_t size, size_t hdr_size, mode_t mode,
	       void (*init)(void *hdr, void *arg), void *arg)
{
	char tmp[PATH_MAX + 32];
	if (access(path, F_OK) == 0)
		return 0;
	snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	void *m;
	if (fchmod(fd, mode) < 0 || ftruncate(fd, (off_t)size) < 0)
		goto fail;
	/* reserve every page before anything is visible: tmpfs hands pages
	 * out on first touch, so a sparse file in a full directory would
	 * SIGBUS whoever touches it later (this header write first) */
	int e = posix_fallocate(fd, 0, (off_t)size);
	if (e && e != EOPNOTSUPP) {
		errno = e;
		goto fail;
	}
	if ((m = mmap(NULL, hdr_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
		goto fail;
	init(m, arg);
	munmap(m, hdr_size);
	/* EEXIST: another process created it first; theirs is as good as ours */
	if (link(tmp, path) < 0 && errno != EEXIST)
		goto fail;
	unlink(tmp);
	close(fd);
	return 0;
fail:;
	int rc = -errno;
	unlink(tmp);
	close(fd);
	return rc;
}

static struct flock byte_lock(short type, off_t off)
{
	struct flock fl = {0};
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = off;
	fl.l_len = 1;
	return fl;
}

int shm_lock_byte(int fd, off_t off)
{
	struct flock fl = byte_lock(F_WRLCK, off);
	if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		return (errno == EAGAIN || errno == EACCES) ? -EBUSY : -errno;
	return 0;
}

void shm_unlock_byte(int fd, off_t off)
{
	struct flock fl = byte_lock(F_UNLCK, off);
	(void)fcntl(fd, F_OFD_SETLK, &fl);
}

bool shm_byte_locked(int fd, off_t off)
{
	struct flock fl = byte_lock(F_WRLCK, off);
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return false;
	return fl.l_type != F_UNLCK;
}

bool shm_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= 48 || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == '@'))
			return false;
	}
	return true;
}

int shm_futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ns >= 0) {
		ts.tv_sec = timeout_ns / 1000000000LL;
		ts.tv_nsec = timeout_ns % 1000000000LL;
		tsp = &ts;
	}
	/* shared (not FUTEX_PRIVATE): waiter and waker may be different processes */
	long rc = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, val, tsp, NULL, 0);
	return rc < 0 ? -errno : 0;
}

int shm_futex_wake(_Atomic uint32_t *addr)
{
	long n = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	return n < 0 ? -errno : (int)n;
}

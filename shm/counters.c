/* counters.c - per-process named counters in a small mmap'd file.
 *
 * File layout ($MDB_SHM_DIR/stat/TOOL.PID.cnt, fixed size):
 *
 *	struct cnt_hdr                  identity, version, count (192 bytes)
 *	struct cnt_slot[COUNTERS_MAX]   one 64-byte line each: value, name
 *
 * The file is built under a hidden temporary name, locked, filled, marked
 * valid by a release store of `version`, and only then renamed into place,
 * so a reader never finds a half-made file under a *.cnt name. The owner's
 * OFD lock on byte 0 says it is alive; it goes away with the process.
 */
#include "counters.h"
#include "shm.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CNT_MAGIC   UINT64_C(0x00746e632d62646d) /* "mdb-cnt\0" little-endian */
#define CNT_VERSION 1
#define CNT_SUB	    "stat"
#define CNT_SUFFIX  ".cnt"
#define CNT_TMP	    ".cnt.tmp"
#define CNT_TMP_AGE 60 /* seconds before gc treats an unlocked temp file as stale */

struct cnt_hdr {
	uint64_t magic;		  /* CNT_MAGIC */
	_Atomic uint32_t version; /* CNT_VERSION, stored last: 0 means half-made */
	uint32_t hdr_size;	  /* sizeof(struct cnt_hdr) */
	uint32_t slot_size;	  /* sizeof(struct cnt_slot) */
	uint32_t max;		  /* COUNTERS_MAX */
	int64_t started_ns;	  /* CLOCK_REALTIME at counters_open */
	int32_t pid;		  /* owner */
	_Atomic uint32_t count;	  /* slots in use; grows only, owner writes */
	char tool[COUNTERS_LABEL_MAX];
	char label[COUNTERS_LABEL_MAX];
	char pad[24];
};

struct cnt_slot {
	alignas(64) mdb_counter k;   /* the value: owner stores, anyone loads */
	char name[COUNTER_NAME_MAX]; /* NUL-terminated, written once before count covers it */
};

struct cnt_file {
	struct cnt_hdr h;
	struct cnt_slot s[COUNTERS_MAX];
};

_Static_assert(sizeof(struct cnt_hdr) % 64 == 0, "header fills whole cache lines");
_Static_assert(sizeof(struct cnt_slot) == 64, "one counter per cache line");
_Static_assert(offsetof(struct cnt_file, s) == sizeof(struct cnt_hdr), "slots follow header");

struct mdb_counters {
	struct cnt_file *f; /* shared mapping, read-write */
	int fd;		    /* holds the liveness lock on byte 0 */
	char path[PATH_MAX];
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Copy at most size-1 bytes of a possibly unterminated field and terminate. */
static void copy_field(char *dst, const char *src, size_t size)
{
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Counter names are 1..COUNTER_NAME_MAX-1 printable ASCII characters with no
 * space, so they read unambiguously in "name value" lines and JSON keys. */
static bool counter_name_ok(const char *name)
{
	size_t n = strnlen(name, COUNTER_NAME_MAX);
	if (n == 0 || n >= COUNTER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f)
			return false;
	return true;
}

static bool has_suffix(const char *s, const char *sfx)
{
	size_t n = strlen(s), m = strlen(sfx);
	return n > m && strcmp(s + n - m, sfx) == 0;
}

/* Is a live process already publishing under `path`? (Only possible when two
 * pid namespaces share the directory.) */
static bool path_owned(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return false;
	bool owned = shm_byte_locked(fd, 0);
	close(fd);
	return owned;
}

mdb_counters *counters_open(const char *tool, const char *label, int *err)
{
	char name[COUNTERS_LABEL_MAX + 16], tmp[PATH_MAX];
	int rc = -EINVAL, fd = -1;
	struct cnt_file *f = MAP_FAILED;
	mdb_counters *c = NULL;

	if (!tool || !shm_name_ok(tool))
		goto fail;
	if (!(c = calloc(1, sizeof *c))) {
		rc = -ENOMEM;
		goto fail;
	}
	snprintf(name, sizeof name, "%s.%d", tool, (int)getpid());
	if ((rc = shm_path(c->path, sizeof c->path, CNT_SUB, name, CNT_SUFFIX, true)) < 0)
		goto fail;
	snprintf(name, sizeof name, ".%s.%d", tool, (int)getpid());
	if ((rc = shm_path(tmp, sizeof tmp, CNT_SUB, name, CNT_TMP, false)) < 0)
		goto fail;

	/* A temp file under our name can only be left by a dead process whose
	 * pid we reuse. Lock before sizing, so gc never takes ours for stale. */
	(void)unlink(tmp);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = shm_lock_byte(fd, 0)) < 0)
		goto fail_tmp;
	if (fchmod(fd, 0640) < 0 || ftruncate(fd, sizeof *f) < 0) {
		rc = -errno;
		goto fail_tmp;
	}
	f = mmap(NULL, sizeof *f, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED) {
		rc = -errno;
		goto fail_tmp;
	}
	f->h.magic = CNT_MAGIC;
	f->h.hdr_size = sizeof f->h;
	f->h.slot_size = sizeof f->s[0];
	f->h.max = COUNTERS_MAX;
	f->h.started_ns = now_ns();
	f->h.pid = (int32_t)getpid();
	copy_field(f->h.tool, tool, sizeof f->h.tool);
	copy_field(f->h.label, label ? label : "", sizeof f->h.label);
	/* release: pairs with the acquire load of version in view_load(), so a
	 * reader that sees the version sees every field above. */
	atomic_store_explicit(&f->h.version, CNT_VERSION, memory_order_release);

	if (path_owned(c->path)) {
		rc = -EEXIST;
		goto fail_tmp;
	}
	if (rename(tmp, c->path) < 0) {
		rc = -errno;
		goto fail_tmp;
	}
	c->f = f;
	c->fd = fd;
	return c;

fail_tmp:
	(void)unlink(tmp);
fail:
	if (f != MAP_FAILED)
		munmap(f, sizeof *f);
	if (fd >= 0)
		close(fd);
	free(c);
	if (err)
		*err = rc;
	return NULL;
}

void counters_close(mdb_counters **cp)
{
	mdb_counters *c = cp ? *cp : NULL;
	if (!c)
		return;
	/* unlink before the lock drops, so the file is never seen unowned */
	(void)unlink(c->path);
	munmap(c->f, sizeof *c->f);
	close(c->fd);
	free(c);
	*cp = NULL;
}

mdb_counter *counter_get(mdb_counters *c, const char *name)
{
	if (!c || !name || !counter_name_ok(name))
		return NULL;
	struct cnt_file *f = c->f;
	/* the owner is the only writer of count: a relaxed load sees its own store */
	uint32_t n = atomic_load_explicit(&f->h.count, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(f->s[i].name, name) == 0)
			return &f->s[i].k;
	if (n >= COUNTERS_MAX)
		return NULL;
	copy_field(f->s[n].name, name, sizeof f->s[n].name);
	atomic_store_explicit(&f->s[n].k.v, 0, memory_order_relaxed);
	/* release: pairs with the acquire load of count in view_load(), so a
	 * reader that counts this slot sees its complete name. */
	atomic_store_explicit(&f->h.count, n + 1, memory_order_release);
	return &f->s[n].k;
}

/* ---- readers ---- */

/* Fill v from the file `name` in dirfd. Returns 0, or -EINVAL for anything
 * that is not a complete counters file (wrong type, size, magic, version). */
static int view_load(int dirfd, const char *name, struct counters_view *v)
{
	struct stat st;
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size != sizeof(struct cnt_file)) {
		close(fd);
		return -EINVAL;
	}
	const struct cnt_file *f = mmap(NULL, sizeof *f, PROT_READ, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	int rc = -EINVAL;
	/* acquire: pairs with the release store of version in counters_open() */
	if (atomic_load_explicit(&f->h.version, memory_order_acquire) != CNT_VERSION ||
	    f->h.magic != CNT_MAGIC || f->h.hdr_size != sizeof f->h ||
	    f->h.slot_size != sizeof f->s[0] || f->h.max != COUNTERS_MAX || f->h.pid <= 0)
		goto out;
	v->pid = f->h.pid;
	v->started_ns = f->h.started_ns;
	copy_field(v->tool, f->h.tool, sizeof v->tool);
	copy_field(v->label, f->h.label, sizeof v->label);
	/* acquire: pairs with the release store of count in counter_get() */
	uint32_t n = atomic_load_explicit(&f->h.count, memory_order_acquire);
	v->n = n > COUNTERS_MAX ? COUNTERS_MAX : (int)n;
	for (int i = 0; i < v->n; i++) {
		copy_field(v->c[i].name, f->s[i].name, sizeof v->c[i].name);
		v->c[i].value = atomic_load_explicit(&f->s[i].k.v, memory_order_relaxed);
	}
	/* our open() is a description of its own, so the owner's lock shows
	 * even when the owner is this very process */
	v->alive = shm_byte_locked(fd, 0);
	rc = 0;
out:
	munmap((void *)f, sizeof *f);
	close(fd);
	return rc;
}

static int view_cmp(const void *a, const void *b)
{
	const struct counters_view *x = a, *y = b;
	int d = strcmp(x->tool, y->tool);
	if (d)
		return d;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Open the stat directory: *dp is NULL (and 0 returned) when it does not exist. */
static int stat_dir_open(DIR **dp, char *path, size_t size)
{
	*dp = NULL;
	/* shm_path's last component is the directory itself here */
	int rc = shm_path(path, size, NULL, CNT_SUB, NULL, false);
	if (rc < 0)
		return rc;
	*dp = opendir(path);
	if (!*dp)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

int counters_scan(int (*fn)(const struct counters_view *v, void *arg), void *arg)
{
	char dir[PATH_MAX];
	DIR *d;
	int rc = stat_dir_open(&d, dir, sizeof dir);
	if (rc < 0 || !d)
		return rc;

	struct counters_view *views = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !has_suffix(de->d_name, CNT_SUFFIX))
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			struct counters_view *nv = realloc(views, ncap * sizeof *views);
			if (!nv) {
				rc = -ENOMEM;
				goto out;
			}
			views = nv;
			cap = ncap;
		}
		struct counters_view *v = &views[n];
		memset(v, 0, sizeof *v);
		int m = snprintf(v->path, sizeof v->path, "%s/%s", dir, de->d_name);
		if (m < 0 || (size_t)m >= sizeof v->path)
			continue;
		/* garbage and files vanishing under us are skipped, not fatal */
		if (view_load(dirfd(d), de->d_name, v) == 0)
			n++;
	}
	/* views is NULL when no file was found: qsort's pointer must not be
	 * NULL even for 0 elements (UBSan, issue 9) */
	if (n)
		qsort(views, n, sizeof *views, view_cmp);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(&views[i], arg);
out:
	free(views);
	closedir(d);
	return rc;
}

int counters_gc(void)
{
	char dir[PATH_MAX];
	DIR *d;
	int rc = stat_dir_open(&d, dir, sizeof dir);
	if (rc < 0 || !d)
		return rc;

	int removed = 0;
	time_t now = time(NULL);
	struct dirent *de;
	while ((de = readdir(d))) {
		bool cnt = de->d_name[0] != '.' && has_suffix(de->d_name, CNT_SUFFIX);
		bool tmp = de->d_name[0] == '.' && has_suffix(de->d_name, CNT_TMP);
		if (!cnt && !tmp)
			continue;
		struct stat st;
		int fd =
		    openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue;
		/* An unlocked *.cnt file has no owner: the owner locks the temp
		 * file before renaming it. A temp file is locked a moment after
		 * it is made, so only an old unlocked one is stale. Garbage *.cnt
		 * files go too: nothing can ever read them. */
		bool stale = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			     !shm_byte_locked(fd, 0) && (cnt || now - st.st_mtime > CNT_TMP_AGE);
		close(fd);
		if (stale && unlinkat(dirfd(d), de->d_name, 0) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

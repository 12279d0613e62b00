/* benchutil.h - what every benchmark in tests/bench needs: the median of a
 * series, removing its scratch directory, pacing and a process's CPU time.
 * (Clocks: common/clock.h.) */
#ifndef MDB_BENCHUTIL_H
#define MDB_BENCHUTIL_H

#include "clock.h"
#include "scid.h"

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v); 0 for an empty series. */
static inline double median(double *v, int n)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static inline int bench_rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	remove(p);
	return 0; /* carry on with the rest */
}

/* rm -rf dir (best effort). */
static inline void rm_rf(const char *dir)
{
	nftw(dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* mkdtemp(tmpl), exiting on failure, and rm -rf of it at exit (exit, err,
 * errx or a return from main, in the process that made it: not in a forked
 * child), so a benchmark that stops on an error leaves nothing behind in
 * /dev/shm or the disk. Returns tmpl. */
#define BENCH_MAX_TMP 4
static char bench_tmp[BENCH_MAX_TMP][PATH_MAX];
static pid_t bench_tmp_owner;

static inline void bench_tmp_cleanup(void)
{
	if (getpid() != bench_tmp_owner)
		return;
	for (int i = 0; i < BENCH_MAX_TMP; i++)
		if (bench_tmp[i][0])
			rm_rf(bench_tmp[i]);
}

static inline char *bench_tmpdir(char *tmpl)
{
	int i = 0;
	while (i < BENCH_MAX_TMP && bench_tmp[i][0])
		i++;
	if (i == BENCH_MAX_TMP || strlen(tmpl) >= PATH_MAX)
		errx(1, "bench_tmpdir: %s: too many or too long", tmpl);
	if (!mkdtemp(tmpl))
		err(1, "mkdtemp %s", tmpl);
	if (!bench_tmp_owner) {
		bench_tmp_owner = getpid();
		atexit(bench_tmp_cleanup);
	}
	memcpy(bench_tmp[i], tmpl, strlen(tmpl) + 1);
	return tmpl;
}

/* rm -rf a directory made by bench_tmpdir() now, and forget it. */
static inline void bench_rmtmp(const char *dir)
{
	for (int i = 0; i < BENCH_MAX_TMP; i++)
		if (bench_tmp[i][0] && strcmp(bench_tmp[i], dir) == 0)
			bench_tmp[i][0] = '\0';
	rm_rf(dir);
}

/* The build directory whose tools/ the benchmark runs: $MDB_BUILD_DIR, or
 * the one this executable sits in (BUILD/tests/bench/bench_NAME). The
 * string is static. */
static inline const char *bench_build_dir(void)
{
	static char dir[PATH_MAX];
	const char *env = getenv("MDB_BUILD_DIR");
	if (env && *env) /* absolute: benches run tools from other directories */
		return realpath(env, dir) ? dir : env;
	ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
	if (n < 0)
		return ".";
	dir[n] = '\0';
	char *d = dirname(dir); /* BUILD/tests/bench */
	memmove(dir, d, strlen(d) + 1);
	if (strlen(dir) + 7 < sizeof dir)
		strcat(dir, "/../..");
	return dir;
}

/* A fresh .scid file dir/name holding its header; its fd, for appending
 * (exits on error). */
static inline int bench_scid_new(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	uint8_t h[SCID_HEADER_SIZE];
	scid_header_make(h);
	if (fd < 0 || write(fd, h, sizeof h) != (ssize_t)sizeof h)
		err(1, "%s", path);
	return fd;
}

/* The path of tool `name` (e.g. "mdb-write") in bench_build_dir()/tools,
 * into buf. */
static inline void bench_tool(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/tools/%s", bench_build_dir(), name);
}

/* Sleep until CLOCK_MONOTONIC reaches t ns (mono_ns's clock). */
static inline void bench_sleep_until(int64_t t)
{
	struct timespec ts = {t / NS_PER_SEC, t % NS_PER_SEC};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* How long pid's threads have run on a CPU, in ns (the first field of
 * /proc/PID/task/TID/schedstat, summed), and in *waited (when not NULL)
 * how long they were runnable but waited for a CPU (the second field);
 * -1 when the process is gone. */
static inline int64_t bench_task_cpu_ns(pid_t pid, int64_t *waited)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	int64_t sum = 0, w = 0;
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char p[64 + sizeof de->d_name];
		unsigned long long run = 0, wait = 0;
		snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", (int)pid, de->d_name);
		FILE *f = fopen(p, "r");
		if (f && fscanf(f, "%llu %llu", &run, &wait) == 2)
			sum += (int64_t)run, w += (int64_t)wait;
		if (f)
			fclose(f);
	}
	closedir(d);
	if (waited)
		*waited = w;
	return sum;
}

/* utime + stime of every thread of pid from /proc/PID/stat, in ns
 * (clock-tick resolution); -1 when the process is gone. */
static inline int64_t bench_cpu_ns(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* the command name may hold blanks */
	unsigned long long ut = 0, st = 0;
	/* after the name: state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (int64_t)((ut + st) * (unsigned long long)(NS_PER_SEC / sysconf(_SC_CLK_TCK)));
}

#endif

/* testutil.h - small helpers shared by the Criterion tests. */
#ifndef MDB_TESTUTIL_H
#define MDB_TESTUTIL_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Make a fresh directory for this test's rings and counters and point
 * MDB_SHM_DIR at it; /dev/shm is shared with everything else on the host. */
static inline void tu_shm_dir(char *buf, size_t size)
{
	snprintf(buf, size, "/dev/shm/mdb-test.XXXXXX");
	cr_assert_not_null(mkdtemp(buf), "mkdtemp");
	setenv("MDB_SHM_DIR", buf, 1);
}

static inline void tu_rm_rf(const char *path)
{
	char cmd[512];
	if (path[0] == '/' && snprintf(cmd, sizeof cmd, "rm -rf '%s'", path) < (int)sizeof cmd)
		(void)!system(cmd);
}

static inline int64_t tu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* n, or n/10 (at least 1) when MDB_TEST_QUICK is set, for a fast local run. */
static inline uint64_t tu_scale(uint64_t n)
{
	const char *q = getenv("MDB_TEST_QUICK");
	if (q && *q && *q != '0')
		return n / 10 ? n / 10 : 1;
	return n;
}

#endif

/* clock.h - the two clocks every stage reads, in int64 nanoseconds.
 *
 * wall_ns() is CLOCK_REALTIME (record timestamps, "last update" counters);
 * mono_ns() is CLOCK_MONOTONIC (deadlines, timeouts, latency). Both are one
 * vDSO call, no syscall. Inline so that shm/ and common/ both can use them. */
#ifndef MDB_CLOCK_H
#define MDB_CLOCK_H

#include <stdint.h>
#include <time.h>

#define NS_PER_SEC 1000000000LL

static inline int64_t wall_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * NS_PER_SEC + t.tv_nsec;
}

static inline int64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * NS_PER_SEC + t.tv_nsec;
}

#endif

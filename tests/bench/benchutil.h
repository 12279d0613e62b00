/* benchutil.h - what every benchmark in tests/bench needs: the median of a
 * series and removing its scratch directory. (Clocks: common/clock.h.) */
#ifndef MDB_BENCHUTIL_H
#define MDB_BENCHUTIL_H

#include "clock.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif

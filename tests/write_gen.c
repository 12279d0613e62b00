/* write_gen.c - a stream of bars with revisions, for the mdb-write tests.
 *
 *   write_gen N            N distinct bars as MessagePack on stdout, with
 *                          forming versions, later revisions, feats and ticks
 *   write_gen --expect N   the final rows the database must then hold, one
 *                          line per row as `sqlite3 -separator ,` prints
 *                          SELECT symbol, iv, ts, o*4, h*4, l*4, c*4, v, n, f
 *                          FROM bars ORDER BY symbol, iv, ts (prices times 4
 *                          are integers, so the text is exact)
 *
 * Bar k (k = 0 .. N-1) is symbol S<k % 8>, iv 60, ts T0 + (k / 8) minutes,
 * final o = k, h = k + 2, l = k - 1, c = k + 0.5, v = k % 1000, n = k, f = 1.
 * Every 4th bar is first sent forming (c = k + 0.25, f = 0); every 16th is
 * revised after it closed (c = k + 0.75, f = final|revised: its last value);
 * every 10th has a feat; every 1000th a tick (which mdb-write skips).
 */
#include "record.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0     1700000000000000000LL
#define MINUTE 60000000000LL

static void out(const struct mdb_record *r)
{
	uint8_t buf[MDB_REC_MAX_BYTES];
	int n = record_encode(r, buf, sizeof buf);
	if (n < 0 || fwrite(buf, 1, (size_t)n, stdout) != (size_t)n) {
		fprintf(stderr, "write_gen: encode/write failed\n");
		exit(1);
	}
}

static void bar(struct mdb_record *r, long k, double c, uint32_t f)
{
	record_init(r, MDB_REC_BAR);
	snprintf(r->s, sizeof r->s, "S%ld", k % 8);
	r->ts = T0 + (k / 8) * MINUTE;
	r->bar.iv = 60;
	r->bar.o = (double)k;
	r->bar.h = (double)k + 2;
	r->bar.l = (double)k - 1;
	r->bar.c = c;
	r->bar.v = (double)(k % 1000);
	r->bar.n = k;
	r->bar.f = f;
}

int main(int argc, char **argv)
{
	bool expect = argc == 3 && strcmp(argv[1], "--expect") == 0;
	if (argc != 2 && !expect) {
		fprintf(stderr, "usage: write_gen [--expect] N\n");
		return 2;
	}
	long n = atol(argv[argc - 1]);
	if (expect) {
		/* sqlite3 orders by symbol text: S0 < S1 < ... < S7 */
		for (long s = 0; s < 8; s++)
			for (long k = s; k < n; k += 8)
				printf("S%ld,60,%lld,%ld,%ld,%ld,%ld,%ld,%ld,%d\n", s,
				       T0 + (k / 8) * MINUTE, 4 * k, 4 * (k + 2), 4 * (k - 1),
				       4 * k + (k % 16 == 0 ? 3 : 2), k % 1000, k,
				       k % 16 == 0 ? MDB_F_FINAL | MDB_F_REVISED : MDB_F_FINAL);
		return 0;
	}
	struct mdb_record r;
	for (long k = 0; k < n; k++) {
		if (k % 4 == 0) {
			bar(&r, k, (double)k + 0.25, 0);
			out(&r);
		}
		bar(&r, k, (double)k + 0.5, MDB_F_FINAL);
		out(&r);
		if (k % 10 == 0) {
			record_init(&r, MDB_REC_FEAT);
			snprintf(r.s, sizeof r.s, "S%ld", k % 8);
			r.ts = T0 + (k / 8) * MINUTE;
			r.feat.iv = 60;
			r.feat.rsi = (double)(k % 100);
			r.feat.ema12 = (double)k;
			r.feat.f = MDB_F_FINAL;
			out(&r);
		}
		if (k % 1000 == 0) {
			record_init(&r, MDB_REC_TICK);
			snprintf(r.s, sizeof r.s, "S%ld", k % 8);
			r.ts = T0 + (k / 8) * MINUTE;
			r.tick.p = (double)k;
			r.tick.v = 1;
			out(&r);
		}
		/* the revision of an earlier bar comes a little later in the stream */
		if (k >= 16 && (k - 16) % 16 == 0) {
			bar(&r, k - 16, (double)(k - 16) + 0.75, MDB_F_FINAL | MDB_F_REVISED);
			out(&r);
		}
	}
	/* revisions of the last bars, whose turn (16 bars later) never came */
	for (long j = n > 16 ? n - 16 : 0; j < n; j++)
		if (j % 16 == 0) {
			bar(&r, j, (double)j + 0.75, MDB_F_FINAL | MDB_F_REVISED);
			out(&r);
		}
	return fflush(stdout) == 0 ? 0 : 1;
}

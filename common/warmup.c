/* warmup - replay what an input ring retains before a consumer's position. */
#include "warmup.h"

/* How many times the replay starts again when the producer overwrites the
 * oldest records before the first one was replayed. */
#define WARMUP_TRIES 8

long warmup_ring(const char *name, uint64_t until, const char *oname, warmup_fn fn, void *ctx,
		 bool *lapped)
{
	int err;
	*lapped = false;
	mdb_ring *r = ring_open(name, &err);
	if (!r)
		return err;
	mdb_ring_consumer *o =
	    ring_consumer_open(r, oname, RING_OBSERVER, RING_FROM_START, 0, &err);
	if (!o) {
		ring_close(&r);
		return err;
	}
	/* The producer may overwrite anything before `until` (the slot has
	 * read it), oldest first, and a producer held back by our slot writes
	 * right at the oldest record. So records within an eighth of the ring
	 * of being overwritten are skipped, fast and without fn, until one is
	 * clear of it; from there on all go to fn. A lap before the
	 * first record reached fn starts again from the new oldest record, a
	 * lap after it leaves a gap (*lapped). */
	uint64_t cap = ring_capacity(r), skip = cap / 8;
	long n = 0;
	struct ring_rec rec;
	int rc, tries = 0;
	while (ring_consumer_position(o) < until && (rc = ring_next(o, &rec)) != 0) {
		if (rc == RING_LAPPED) {
			if (n == 0 && ++tries < WARMUP_TRIES) {
				ring_seek(o, ring_oldest(r));
				continue;
			}
			*lapped = true;
			continue;
		}
		if (rc < 0 || rec.pos >= until)
			break;
		if (n == 0 && rec.pos + cap < ring_position(r) + skip)
			continue; /* still within the producer's reach */
		int frc = fn(ctx, &rec);
		if (frc < 0) {
			n = frc;
			break;
		}
		n++;
	}
	ring_consumer_close(&o);
	ring_close(&r);
	return n;
}

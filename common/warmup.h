/* warmup - rebuild a restarted stage's in-memory state from what its input
 * ring still retains before its consumer slot. */
#ifndef MDB_WARMUP_H
#define MDB_WARMUP_H

#include "ring.h"

#include <stdbool.h>
#include <stdint.h>

/* Called for each record replayed; a negative return stops the replay and
 * is returned by warmup_ring(). */
typedef int (*warmup_fn)(void *ctx, const struct ring_rec *rec);

/* Pass every record of ring `name` that lies before position `until`
 * (normally the caller's own consumer position), oldest retained first, to
 * fn; in a full ring, less those within an eighth of the ring of being
 * overwritten. A private observer named `oname` reads them, so the producer
 * is never held; *lapped is set when records were overwritten meanwhile
 * after the first reached fn (the state then has a gap). Returns the
 * records passed to fn, -errno when the ring or the observer cannot be
 * opened (nothing was replayed), or fn's negative value. */
long warmup_ring(const char *name, uint64_t until, const char *oname, warmup_fn fn, void *ctx,
		 bool *lapped);

#endif

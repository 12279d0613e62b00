/* keymap.h - an open-addressing table from (symbol, interval) to a dense
 * index, for tools that keep per-series state (mdb-validate, mdb-feature).
 *
 * Indexes are handed out 0, 1, 2... in order of first use and never change,
 * so a caller keeps its series in an array indexed by them. Lookups
 * allocate nothing; the table grows (doubling, amortised) only when a new
 * key is added.
 */
#ifndef MDB_KEYMAP_H
#define MDB_KEYMAP_H

#include <stdint.h>

typedef struct mdb_keymap mdb_keymap;

/* An empty map. NULL on ENOMEM. */
mdb_keymap *keymap_new(void);
/* Free the map. Accepts NULL; sets *m to NULL. */
void keymap_free(mdb_keymap **m);

/* The index of (s, iv), or -ENOENT. s is NUL-terminated. */
int keymap_find(const mdb_keymap *m, const char *s, int32_t iv);

/* The index of (s, iv), adding it (as keymap_count() before the call) when
 * it is new; *added says which. Returns the index, -ENOMEM, or -EINVAL for a
 * symbol of 32 bytes or more. */
int keymap_get(mdb_keymap *m, const char *s, int32_t iv, int *added);

/* Keys added so far. */
int keymap_count(const mdb_keymap *m);

/* The symbol and interval of index i (0 <= i < keymap_count()). */
const char *keymap_symbol(const mdb_keymap *m, int i);
int32_t keymap_interval(const mdb_keymap *m, int i);

#endif

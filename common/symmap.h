/* symmap.h - the symbol map file shared by the file and API feeds
 * (mdb-watch, mdb-fetch): which mdb symbol a source's own name stands for.
 *
 * Format, one mapping a line:
 *
 *     # comment (a line whose first non-blank is '#'); blank lines ignored
 *     NQU25-CME   NQ
 *     ESZ25-CME   ES
 *
 * Two fields separated by blanks (spaces or tabs): the source name (a file's
 * base name without its extension, an API's ticker) and the symbol written
 * to the `s` key (fewer than MDB_SYM_MAX bytes). Names are matched exactly
 * and case-sensitively; a name given twice is an error.
 */
#ifndef MDB_SYMMAP_H
#define MDB_SYMMAP_H

#include <stddef.h>

typedef struct mdb_symmap mdb_symmap;

/* Parse the map file at path. Returns the map, or NULL with *err = -errno
 * (-EINVAL for a bad line, or a name mapped twice: *line is the line (the
 * second mapping) and *why a static reason;
 * otherwise *line is 0). */
mdb_symmap *symmap_load(const char *path, int *err, int *line, const char **why);

/* Parse a map from text[0..len) (same format). Same errors as symmap_load(). */
mdb_symmap *symmap_parse(const char *text, size_t len, int *err, int *line, const char **why);

/* The symbol for name, or NULL when the map (which may be NULL) has none. */
const char *symmap_lookup(const mdb_symmap *m, const char *name);

/* Number of mappings. */
int symmap_count(const mdb_symmap *m);

/* Free the map. Accepts NULL; sets *m to NULL. */
void symmap_free(mdb_symmap **m);

#endif

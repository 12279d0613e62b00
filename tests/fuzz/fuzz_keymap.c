/* fuzz_keymap.c - the (symbol, interval) key map (common/keymap.h).
 *
 * The input is a script of operations: each byte picks get or find and a
 * length, the next bytes are the symbol and its interval. The map must
 * hand out dense, stable indexes and find every key it was given. */
#include "fuzzutil.h"
#include "keymap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mdb_keymap *m = keymap_new();
	FUZZ_CHECK(m != NULL);
	size_t i = 0;
	while (i < size) {
		uint8_t op = data[i++];
		size_t len = op & 0x3f; /* up to 63: past the 31-byte limit too */
		if (i + len + 1 > size)
			break;
		char s[64];
		memcpy(s, data + i, len);
		s[len] = '\0'; /* a NUL inside ends the symbol early */
		i += len;
		int32_t iv = (int32_t)(int8_t)data[i++] * 60;
		int before = keymap_count(m);
		if (op & 0x40) {
			int k = keymap_find(m, s, iv);
			FUZZ_CHECK(k == -ENOENT || (k >= 0 && k < before));
			continue;
		}
		int added = -1;
		int k = keymap_get(m, s, iv, &added);
		if (strlen(s) >= 32) {
			FUZZ_CHECK(k == -EINVAL);
			continue;
		}
		FUZZ_CHECK(k >= 0);
		FUZZ_CHECK(added ? k == before && keymap_count(m) == before + 1
				 : k < before && keymap_count(m) == before);
		FUZZ_CHECK(keymap_find(m, s, iv) == k);
		FUZZ_CHECK(strcmp(keymap_symbol(m, k), s) == 0 && keymap_interval(m, k) == iv);
	}
	/* every index still names the key it was given */
	for (int k = 0; k < keymap_count(m); k++)
		FUZZ_CHECK(keymap_find(m, keymap_symbol(m, k), keymap_interval(m, k)) == k);
	keymap_free(&m);
	FUZZ_CHECK(m == NULL);
	return 0;
}

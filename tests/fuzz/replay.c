/* replay.c - run a fuzz harness over its corpus without libFuzzer.
 *
 * Linked with one tests/fuzz/fuzz_<parser>.c instead of libFuzzer's main,
 * so any compiler (gcc in the normal build) replays the seed corpus and
 * every input added to it: `replay_<parser> DIR|FILE...`. Each input is
 * copied into a heap buffer of exactly its size, as libFuzzer does, so a
 * sanitizer build catches a read one byte past it. Exits 0 when every
 * input ran (the harness aborts on a finding), 1 when none was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a harness, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	struct stat st;
	if (fstat(fileno(f), &st) < 0) {
		fclose(f);
		return -1;
	}
	size_t size = (size_t)st.st_size;
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf || fread(buf, 1, size, f) != size) {
		perror(path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, size);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	int inputs = 0, errors = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			errors++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			errors += run_file(argv[i]) < 0;
			inputs++;
			continue;
		}
		struct dirent **names;
		int n = scandir(argv[i], &names, NULL, by_name);
		if (n < 0) {
			perror(argv[i]);
			errors++;
			continue;
		}
		for (int j = 0; j < n; j++) {
			char path[4096];
			if (names[j]->d_name[0] != '.' &&
			    snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name) <
				(int)sizeof path) {
				errors += run_file(path) < 0;
				inputs++;
			}
			free(names[j]);
		}
		free(names);
	}
	printf("replayed %d inputs, %d unreadable\n", inputs, errors);
	return inputs > 0 && errors == 0 ? 0 : 1;
}

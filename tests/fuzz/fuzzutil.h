/* fuzzutil.h - small helpers shared by the fuzz harnesses in tests/fuzz. */
#ifndef MDB_FUZZUTIL_H
#define MDB_FUZZUTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A harness checks a property the parser promises; when it does not hold,
 * print why and abort, which libFuzzer and the replay driver report as a
 * crash with the input that caused it. */
#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__,      \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A heap copy of data[0..size) with a NUL after it, for the parsers that
 * take C strings. The caller frees it. Aborts on ENOMEM (nothing to test). */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	FUZZ_CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Point MDB_SHM_DIR at a fresh private directory (once per process) and
 * remove it and its files at exit, so the ring and LVC harnesses never
 * touch anyone else's files in /dev/shm. */
static char fuzz_dir_path[64];

static void fuzz_dir_remove(void)
{
	char cmd[128];
	if (fuzz_dir_path[0] &&
	    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_path) < (int)sizeof cmd)
		(void)!system(cmd);
}

static inline void fuzz_private_shm_dir(void)
{
	if (fuzz_dir_path[0])
		return;
	snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "/dev/shm/mdb-fuzz.XXXXXX");
	FUZZ_CHECK(mkdtemp(fuzz_dir_path) != NULL);
	setenv("MDB_SHM_DIR", fuzz_dir_path, 1);
	atexit(fuzz_dir_remove);
}

#endif

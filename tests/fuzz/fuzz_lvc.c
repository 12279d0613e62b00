/* fuzz_lvc.c - a last-value cache file with a corrupted header (shm/lvc.h).
 *
 * As for rings (fuzz_ring.c): a real cache of 16 entries holding a few
 * keys is the template, the input is laid over its start, the result is
 * written as NAME.lvc in a private MDB_SHM_DIR, and the harness reads it
 * as mdb-lvc and mdb-ws do and writes it as mdb-feature does. Opening must
 * fail with -EPROTO, or every later call must stay inside the mapping. */
#include "fuzzutil.h"
#include "lvc.h"

#include <fcntl.h>
#include <unistd.h>

#define NAME "fuzz"

static uint8_t *tmpl;
static size_t tmpl_size;
static char path[128];
static const char *const keys[] = {"ES", "NQ", "CL"};

static void make_template(void)
{
	fuzz_private_shm_dir();
	snprintf(path, sizeof path, "%s/" NAME ".lvc", getenv("MDB_SHM_DIR"));
	FUZZ_CHECK(lvc_create(NAME, 16, 0600) == 0);
	int err = 0;
	mdb_lvc *c = lvc_open(NAME, true, &err);
	FUZZ_CHECK(c != NULL);
	struct lvc_value v = {.ts = 1, .o = 1, .h = 2, .l = 0.5, .c = 1.5};
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		int slot = lvc_slot(c, keys[i], 60);
		FUZZ_CHECK(slot >= 0);
		lvc_put(c, slot, &v);
	}
	lvc_close(&c);
	FILE *f = fopen(path, "rb");
	FUZZ_CHECK(f != NULL);
	fseek(f, 0, SEEK_END);
	tmpl_size = (size_t)ftell(f);
	rewind(f);
	FUZZ_CHECK((tmpl = malloc(tmpl_size)) != NULL);
	FUZZ_CHECK(fread(tmpl, 1, tmpl_size, f) == tmpl_size);
	fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!tmpl)
		make_template();
	uint8_t *file = malloc(tmpl_size);
	FUZZ_CHECK(file != NULL);
	memcpy(file, tmpl, tmpl_size);
	memcpy(file, data, size < tmpl_size ? size : tmpl_size);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0 && write(fd, file, tmpl_size) == (ssize_t)tmpl_size);
	close(fd);
	free(file);

	int err = 0;
	mdb_lvc *c = lvc_open(NAME, false, &err);
	if (!c) {
		FUZZ_CHECK(err == -EPROTO);
		return 0;
	}
	struct lvc_info info;
	lvc_info(c, &info);
	FUZZ_CHECK(info.capacity == lvc_capacity(c) && info.capacity == 16);
	struct lvc_item it;
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		int slot = lvc_find(c, keys[i], 60);
		FUZZ_CHECK(slot == -ENOENT || (slot >= 0 && (uint32_t)slot < info.capacity));
		if (slot >= 0 && lvc_read(c, slot, &it) == 0)
			FUZZ_CHECK(strlen(it.s) < LVC_SYM_MAX);
	}
	FUZZ_CHECK(lvc_read(c, -1, &it) == -ENOENT && lvc_read(c, 16, &it) == -ENOENT);
	lvc_close(&c);

	/* the writer adds a key and updates the known ones */
	c = lvc_open(NAME, true, &err);
	FUZZ_CHECK(c != NULL);
	struct lvc_value v = {.ts = 2};
	int slot = lvc_slot(c, "NEW", 300);
	FUZZ_CHECK(slot == -ENOSPC || (slot >= 0 && slot < 16));
	if (slot >= 0)
		lvc_put(c, slot, &v);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if ((slot = lvc_slot(c, keys[i], 60)) >= 0)
			lvc_put(c, slot, &v);
	lvc_close(&c);
	return 0;
}

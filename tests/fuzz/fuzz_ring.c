/* fuzz_ring.c - a ring file with a corrupted header (shm/ring.h).
 *
 * A ring is a file anyone with access to the ring directory can write, and
 * a crashed or foreign process may leave anything in it. The harness keeps
 * a real ring (4 KiB of data holding a few records, a wrap, a durable and
 * an observer slot) as a template, lays the input over the start of it,
 * writes the result as NAME.ring in a private MDB_SHM_DIR and then does
 * what the tools do: open, inspect, consume as observer and as the durable
 * consumer, produce. Opening must fail with -EPROTO, or every later call
 * must return without reading or writing outside the mapping. */
#include "fuzzutil.h"
#include "ring.h"

#include <fcntl.h>
#include <unistd.h>

#define NAME "fuzz"
#define CAP  4096u

static uint8_t *tmpl;
static size_t tmpl_size;
static char path[128];

static void write_file(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);
}

/* Build the template once: a ring that has wrapped, with a durable slot
 * "writer" part way through and an observer slot left by a dead tap. */
static void make_template(void)
{
	fuzz_private_shm_dir();
	snprintf(path, sizeof path, "%s/" NAME ".ring", getenv("MDB_SHM_DIR"));
	FUZZ_CHECK(ring_create(NAME, CAP, 0600) == 0);
	int err = 0;
	mdb_ring *r = ring_open(NAME, &err);
	FUZZ_CHECK(r != NULL && ring_producer_begin(r) == 0);
	mdb_ring_consumer *w =
	    ring_consumer_open(r, "writer", RING_DURABLE, RING_FROM_START, 0, &err);
	FUZZ_CHECK(w != NULL);
	uint8_t payload[300];
	struct ring_rec rec;
	for (unsigned i = 0; i < 24; i++) {
		memset(payload, (int)i, sizeof payload);
		FUZZ_CHECK(ring_publish(r, 1 + i % 5, payload, 40 + (i * 37) % 260, 0) == 0);
		while (ring_next(w, &rec) == 1 && i < 20)
			;
	}
	ring_release(w);
	ring_consumer_close(&w);
	ring_close(&r);
	FILE *f = fopen(path, "rb");
	FUZZ_CHECK(f != NULL);
	fseek(f, 0, SEEK_END);
	tmpl_size = (size_t)ftell(f);
	rewind(f);
	FUZZ_CHECK((tmpl = malloc(tmpl_size)) != NULL);
	FUZZ_CHECK(fread(tmpl, 1, tmpl_size, f) == tmpl_size);
	fclose(f);
}

/* Read every byte of each record, so ASan sees a payload outside the map. */
static void drain(mdb_ring *r, mdb_ring_consumer *c)
{
	struct ring_rec rec;
	volatile uint8_t sum = 0;
	for (int i = 0; i < 256; i++) {
		int rc = ring_next(c, &rec);
		if (rc == RING_LAPPED)
			continue;
		if (rc != 1)
			break;
		FUZZ_CHECK(rec.type != RING_PAD && rec.len <= ring_max_payload(r));
		for (uint32_t j = 0; j < rec.len; j++)
			sum += ((const uint8_t *)rec.data)[j];
	}
	(void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!tmpl)
		make_template();
	uint8_t *file = malloc(tmpl_size);
	FUZZ_CHECK(file != NULL);
	memcpy(file, tmpl, tmpl_size);
	memcpy(file, data, size < tmpl_size ? size : tmpl_size);
	write_file(file, tmpl_size);
	free(file);

	int err = 0;
	mdb_ring *r = ring_open(NAME, &err);
	if (!r) {
		FUZZ_CHECK(err == -EPROTO);
		return 0;
	}
	struct ring_info info;
	FUZZ_CHECK(ring_info(r, &info) == 0);
	FUZZ_CHECK(info.nslots >= 0 && info.nslots <= RING_SLOTS);
	for (int i = 0; i < info.nslots; i++)
		FUZZ_CHECK(strlen(info.slots[i].name) < RING_NAME_MAX);
	FUZZ_CHECK(ring_capacity(r) == CAP);

	mdb_ring_consumer *obs =
	    ring_consumer_open(r, "tap", RING_OBSERVER, RING_FROM_START, 0, &err);
	if (obs)
		drain(r, obs);
	mdb_ring_consumer *dur =
	    ring_consumer_open(r, "writer", RING_DURABLE, RING_FROM_START, 0, &err);
	if (dur)
		drain(r, dur);
	ring_consumer_close(&dur);

	if (ring_producer_begin(r) == 0) {
		uint8_t payload[512] = {0};
		for (uint32_t len = 8; len <= sizeof payload; len *= 4)
			(void)ring_publish(r, 2, payload, len, 0);
	}
	if (obs)
		drain(r, obs);
	ring_consumer_close(&obs);
	(void)ring_consumer_drop(r, "writer");
	ring_close(&r);
	return 0;
}

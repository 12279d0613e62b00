/* test_ring.c - the shared-memory ring: layout, consumers, processes, crashes. */
#include "ring.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static void setup(void)
{
	tu_shm_dir(dir, sizeof dir);
}

static void teardown(void)
{
	tu_rm_rf(dir);
}

TestSuite(ring, .init = setup, .fini = teardown, .timeout = 300);

static mdb_ring *make(const char *name, uint64_t cap)
{
	cr_assert_eq(ring_create(name, cap, 0600), 0);
	int err = 0;
	mdb_ring *r = ring_open(name, &err);
	cr_assert_not_null(r, "ring_open: %s", strerror(-err));
	return r;
}

static mdb_ring *producer(const char *name)
{
	int err = 0;
	mdb_ring *r = ring_open(name, &err);
	cr_assert_not_null(r);
	cr_assert_eq(ring_producer_begin(r), 0);
	return r;
}

/* A record whose bytes can be checked: seq, length, then seq-derived bytes. */
static uint32_t fill(uint8_t *p, uint64_t seq, uint32_t len)
{
	memcpy(p, &seq, 8);
	for (uint32_t i = 8; i < len; i++)
		p[i] = (uint8_t)(seq * 31 + i);
	return len;
}

static bool check(const uint8_t *p, uint32_t len, uint64_t *seq)
{
	if (len < 8)
		return false;
	memcpy(seq, p, 8);
	for (uint32_t i = 8; i < len; i++)
		if (p[i] != (uint8_t)(*seq * 31 + i))
			return false;
	return true;
}

Test(ring, create_rejects_bad_sizes_and_names)
{
	cr_expect_eq(ring_create("a", 1000, 0600), -EINVAL);
	cr_expect_eq(ring_create("a", 2048, 0600), -EINVAL);
	cr_expect_eq(ring_create("../x", 4096, 0600), -EINVAL);
	cr_expect_eq(ring_create("", 4096, 0600), -EINVAL);
	int err = 0;
	cr_expect_null(ring_open("missing", &err));
	cr_expect_eq(err, -ENOENT);
}

Test(ring, create_sets_mode_and_is_idempotent)
{
	cr_assert_eq(ring_create("m", 4096, 0640), 0);
	cr_assert_eq(ring_create("m", 8192, 0600), 0); /* exists: left alone */
	char path[512];
	snprintf(path, sizeof path, "%s/m.ring", dir);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0640);
	int err;
	mdb_ring *r = ring_open("m", &err);
	cr_assert_not_null(r);
	cr_expect_eq(ring_capacity(r), 4096);
	ring_close(&r);
	cr_expect_null(r);
}

Test(ring, garbage_file_is_not_a_ring)
{
	char path[512];
	snprintf(path, sizeof path, "%s/junk.ring", dir);
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 20000; i++)
		fputc(i * 7, f);
	fclose(f);
	int err = 0;
	cr_expect_null(ring_open("junk", &err));
	cr_expect_eq(err, -EPROTO);
}

Test(ring, one_producer_at_a_time)
{
	mdb_ring *a = make("p", 4096);
	cr_assert_eq(ring_producer_begin(a), 0);
	int err;
	mdb_ring *b = ring_open("p", &err);
	cr_expect_eq(ring_producer_begin(b), -EBUSY);
	ring_close(&a); /* closing releases the lock */
	cr_expect_eq(ring_producer_begin(b), 0);
	ring_close(&b);
}

Test(ring, wraps_with_padding)
{
	mdb_ring *r = make("w", 4096);
	cr_assert_eq(ring_producer_begin(r), 0);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "d", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	uint8_t buf[512];
	struct ring_rec rec;
	uint64_t pads = 0, prev_end = 0;
	for (uint64_t seq = 0; seq < 5000; seq++) {
		uint32_t len = 8 + (uint32_t)(seq * 37 % 300);
		fill(buf, seq, len);
		cr_assert_eq(ring_publish(r, 7, buf, len, 0), 0, "seq %lu", seq);
		cr_assert_eq(ring_next(c, &rec), 1);
		uint64_t got;
		cr_assert(check(rec.data, rec.len, &got), "bad bytes at seq %lu", seq);
		cr_assert_eq(got, seq);
		cr_assert_eq(rec.type, 7);
		cr_assert_eq(rec.pos % 8, 0, "records are 8-byte aligned");
		/* never straddles the end: header and payload in one lap */
		cr_assert_leq((rec.pos & 4095) + 8 + rec.len, 4096);
		if (rec.pos != prev_end)
			pads++; /* a padding record filled the tail before this one */
		cr_assert_eq(rec.pos / 4096 > prev_end / 4096 || rec.pos == prev_end, true);
		prev_end = rec.pos + ((8 + rec.len + 7) & ~7u);
		cr_assert_eq(ring_next(c, &rec), 0);
	}
	cr_expect_gt(pads, 10, "the test wrapped often enough to pad (%lu)", pads);
	cr_expect_eq(ring_position(r), prev_end);
	ring_consumer_close(&c);
	ring_close(&r);
}

Test(ring, too_big_record_is_refused)
{
	mdb_ring *r = make("big", 4096);
	cr_assert_eq(ring_producer_begin(r), 0);
	static uint8_t buf[4096];
	cr_expect_eq(ring_publish(r, 1, buf, ring_max_payload(r) + 1, 0), -EMSGSIZE);
	cr_expect_eq(ring_publish(r, 1, buf, ring_max_payload(r), 0), 0);
	cr_expect_eq(ring_publish(r, RING_PAD, buf, 8, 0), -EINVAL);
	ring_close(&r);
}

Test(ring, durable_consumer_holds_producer)
{
	mdb_ring *r = make("d", 4096);
	cr_assert_eq(ring_producer_begin(r), 0);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "slow", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	uint8_t buf[120];
	uint64_t seq = 0;
	while (ring_publish(r, 1, buf, fill(buf, seq, sizeof buf), 0) == 0)
		seq++;
	/* 128-byte records: exactly a capacity's worth fits, no more */
	cr_expect_eq(seq, 4096 / 128);
	cr_expect_eq(ring_publish(r, 1, buf, fill(buf, seq, sizeof buf), 2000000), -ETIMEDOUT);
	struct ring_info info;
	ring_info(r, &info);
	cr_expect_geq(info.held_ns, 2000000, "held back for the 2 ms timeout");
	/* nothing was overwritten: every record is intact and in order */
	struct ring_rec rec;
	for (uint64_t i = 0; i < seq; i++) {
		cr_assert_eq(ring_next(c, &rec), 1);
		uint64_t got;
		cr_assert(check(rec.data, rec.len, &got));
		cr_assert_eq(got, i);
	}
	/* after reading (and releasing) the producer may go on */
	ring_release(c);
	cr_expect_eq(ring_publish(r, 1, buf, fill(buf, seq, sizeof buf), 0), 0);
	ring_consumer_close(&c);
	ring_close(&r);
}

Test(ring, observer_never_holds_and_detects_lap)
{
	mdb_ring *r = make("o", 4096);
	cr_assert_eq(ring_producer_begin(r), 0);
	int err;
	mdb_ring_consumer *o = ring_consumer_open(r, "tap", RING_OBSERVER, RING_FROM_END, 0, &err);
	cr_assert_not_null(o);
	uint8_t buf[120];
	struct ring_rec rec;
	uint64_t seq;
	for (seq = 0; seq < 10; seq++)
		cr_assert_eq(ring_publish(r, 1, buf, fill(buf, seq, sizeof buf), 0), 0);
	cr_assert_eq(ring_next(o, &rec), 1);
	/* the producer runs three laps ahead: it is never held */
	for (; seq < 10 + 3 * 32; seq++)
		cr_assert_eq(ring_publish(r, 1, buf, fill(buf, seq, sizeof buf), 0), 0);
	cr_expect_eq(ring_next(o, &rec), RING_LAPPED);
	cr_expect_eq(ring_consumer_laps(o), 1);
	cr_expect_eq(ring_next(o, &rec), 0, "resynced to the newest position");
	cr_assert_eq(ring_publish(r, 1, buf, fill(buf, seq, sizeof buf), 0), 0);
	cr_assert_eq(ring_next(o, &rec), 1);
	uint64_t got;
	cr_assert(check(rec.data, rec.len, &got));
	cr_expect_eq(got, seq);
	struct ring_info info;
	ring_info(r, &info);
	cr_expect_eq(info.laps, 1);
	ring_consumer_close(&o);
	ring_close(&r);
}

Test(ring, observer_from_start_reads_oldest_boundary)
{
	mdb_ring *r = make("s", 1 << 16);
	cr_assert_eq(ring_producer_begin(r), 0);
	uint8_t buf[256];
	uint64_t n = 5000; /* many laps of varied sizes */
	for (uint64_t seq = 0; seq < n; seq++)
		cr_assert_eq(ring_publish(r, 1, buf, fill(buf, seq, 8 + seq % 200), 0), 0);
	int err;
	mdb_ring_consumer *o =
	    ring_consumer_open(r, "tap", RING_OBSERVER, RING_FROM_START, 0, &err);
	cr_assert_not_null(o);
	struct ring_rec rec;
	uint64_t first = UINT64_MAX, last = 0, count = 0, bytes = 0;
	int rc;
	while ((rc = ring_next(o, &rec)) == 1) {
		uint64_t got;
		cr_assert(check(rec.data, rec.len, &got), "record %lu intact", count);
		if (first == UINT64_MAX)
			first = got;
		else
			cr_assert_eq(got, last + 1);
		last = got;
		count++;
		bytes += (8 + rec.len + 7) & ~7u;
	}
	cr_expect_eq(rc, 0);
	cr_expect_eq(last, n - 1);
	/* the oldest-boundary index keeps at least 14/16 of the ring readable */
	cr_expect_geq(bytes, (1 << 16) * 14 / 16, "read %lu bytes in %lu records", bytes, count);
	ring_consumer_close(&o);
	ring_close(&r);
}

Test(ring, restarted_consumer_resumes_at_its_slot)
{
	mdb_ring *r = make("res", 1 << 16);
	cr_assert_eq(ring_producer_begin(r), 0);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "w", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	uint8_t buf[64];
	for (uint64_t seq = 0; seq < 100; seq++)
		cr_assert_eq(ring_publish(r, 1, buf, fill(buf, seq, sizeof buf), 0), 0);
	struct ring_rec rec;
	for (int i = 0; i < 40; i++)
		cr_assert_eq(ring_next(c, &rec), 1);
	ring_consumer_close(&c); /* releases all 40 */
	/* a live holder makes the name busy */
	c = ring_consumer_open(r, "w", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	int err2 = 0;
	mdb_ring *r2 = ring_open("res", &err2);
	cr_expect_null(ring_consumer_open(r2, "w", RING_DURABLE, RING_FROM_END, 0, &err2));
	cr_expect_eq(err2, -EBUSY);
	ring_close(&r2);
	uint64_t got;
	cr_assert_eq(ring_next(c, &rec), 1);
	cr_assert(check(rec.data, rec.len, &got));
	cr_expect_eq(got, 40);
	ring_consumer_close(&c);
	ring_close(&r);
}

Test(ring, killed_consumer_resumes_and_shows_gone)
{
	mdb_ring *r = make("k", 1 << 16);
	cr_assert_eq(ring_producer_begin(r), 0);
	uint8_t buf[64];
	for (uint64_t seq = 0; seq < 100; seq++)
		cr_assert_eq(ring_publish(r, 1, buf, fill(buf, seq, sizeof buf), 0), 0);
	int pipefd[2];
	cr_assert_eq(pipe(pipefd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		int err;
		mdb_ring *cr = ring_open("k", &err);
		mdb_ring_consumer *c =
		    ring_consumer_open(cr, "w", RING_DURABLE, RING_FROM_START, 0, &err);
		struct ring_rec rec;
		for (int i = 0; i < 30; i++)
			ring_next(c, &rec);
		ring_release(c); /* 30 consumed */
		(void)!write(pipefd[1], "x", 1);
		pause();
		_exit(0);
	}
	char x;
	cr_assert_eq(read(pipefd[0], &x, 1), 1);
	struct ring_info info;
	ring_info(r, &info);
	cr_assert_eq(info.nslots, 1);
	cr_expect(info.slots[0].alive);
	cr_expect_eq(info.slots[0].pid, pid);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ring_info(r, &info);
	cr_expect_not(info.slots[0].alive, "a dead consumer's slot shows as gone");
	cr_expect_eq(info.slots[0].records, 30);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "w", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	struct ring_rec rec;
	uint64_t got;
	cr_assert_eq(ring_next(c, &rec), 1);
	cr_assert(check(rec.data, rec.len, &got));
	cr_expect_eq(got, 30);
	ring_consumer_close(&c);
	cr_expect_eq(ring_consumer_drop(r, "w"), 0);
	ring_info(r, &info);
	cr_expect_eq(info.nslots, 0);
	cr_expect_eq(ring_consumer_drop(r, "w"), -ENOENT);
	ring_close(&r);
}

Test(ring, crash_between_claim_and_commit_exposes_nothing)
{
	mdb_ring *r = make("c", 1 << 16);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "w", RING_DURABLE, RING_FROM_END, 0, &err);
	pid_t pid = fork();
	if (pid == 0) {
		mdb_ring *p = producer("c");
		uint8_t buf[64];
		for (uint64_t seq = 0; seq < 10; seq++)
			ring_publish(p, 1, buf, fill(buf, seq, sizeof buf), 0);
		void *dst;
		ring_claim(p, 1, 64, &dst, 0);
		memset(dst, 0xee, 32); /* half written, never committed */
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	mdb_ring *p = producer("c");
	uint8_t buf[64];
	cr_assert_eq(ring_publish(p, 1, buf, fill(buf, 10, sizeof buf), 0), 0);
	struct ring_rec rec;
	for (uint64_t i = 0; i <= 10; i++) {
		uint64_t got;
		cr_assert_eq(ring_next(c, &rec), 1);
		cr_assert(check(rec.data, rec.len, &got), "record %lu intact", i);
		cr_assert_eq(got, i);
	}
	cr_expect_eq(ring_next(c, &rec), 0);
	struct ring_info info;
	ring_info(p, &info);
	cr_expect_eq(info.producer_epoch, 2);
	ring_consumer_close(&c);
	ring_close(&p);
	ring_close(&r);
}

/* Producer in a child that is killed -9 at a random moment, many times; a
 * new producer continues from the last published record each time. The
 * consumer must see every sequence number once, in order, never torn. */
Test(ring, kill9_producer_mid_write_loses_nothing)
{
	mdb_ring *r = make("kp", 1 << 14);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "w", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	uint64_t expect = 0;
	srand(12345);
	for (int round = 0; round < 20; round++) {
		uint64_t start = expect;
		pid_t pid = fork();
		if (pid == 0) {
			mdb_ring *p = producer("kp");
			uint8_t buf[600];
			for (uint64_t seq = start;; seq++) {
				uint32_t len = 8 + (uint32_t)(seq * 131 % 590);
				ring_publish(p, 1, buf, fill(buf, seq, len), -1);
			}
		}
		struct ring_rec rec;
		/* the kill comes 0-3 ms after the new producer is seen writing */
		while (ring_position(r) == ring_consumer_position(c))
			;
		int64_t deadline = tu_now_ns() + rand() % 3000000;
		while (tu_now_ns() < deadline) {
			while (ring_next(c, &rec) == 1) {
				uint64_t got;
				cr_assert(check(rec.data, rec.len, &got), "torn record at %lu",
					  expect);
				cr_assert_eq(got, expect);
				expect++;
			}
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		while (ring_next(c, &rec) == 1) {
			uint64_t got;
			cr_assert(check(rec.data, rec.len, &got), "torn record at %lu", expect);
			cr_assert_eq(got, expect);
			expect++;
		}
		cr_assert_gt(expect, start, "round %d made progress", round);
	}
	ring_consumer_close(&c);
	ring_close(&r);
}

/* One producer and two consumer processes move tens of millions of records;
 * each consumer checks every sequence number arrives once and in order. */
static void consume_all(const char *name, enum ring_kind kind, uint64_t n, int fd)
{
	int err;
	mdb_ring *r = ring_open("big", &err);
	mdb_ring_consumer *c = ring_consumer_open(r, name, kind, RING_FROM_START, 20000, &err);
	(void)!write(fd, "r", 1);
	struct ring_rec rec;
	uint64_t expect = 0, bad = 0;
	while (expect < n) {
		int rc = ring_next(c, &rec);
		if (rc == 0) {
			ring_wait(c, 1000000000LL);
			continue;
		}
		uint64_t got;
		memcpy(&got, rec.data, 8);
		if (rec.len != 16 || got != expect)
			bad++;
		expect++;
	}
	_exit(bad ? 1 : 0);
}

Test(ring, processes_move_tens_of_millions_in_order)
{
	uint64_t n = tu_scale(20000000);
	mdb_ring *r = make("big", 1 << 20);
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	pid_t kids[2];
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] == 0)
			consume_all(i ? "b" : "a", RING_DURABLE, n, pfd[1]);
	}
	char x;
	for (int i = 0; i < 2; i++)
		cr_assert_eq(read(pfd[0], &x, 1), 1);
	cr_assert_eq(ring_producer_begin(r), 0);
	uint64_t rec[2] = {0, 0x5a5a5a5a5a5a5a5a};
	for (uint64_t seq = 0; seq < n; seq++) {
		rec[0] = seq;
		cr_assert_eq(ring_publish(r, 1, rec, sizeof rec, -1), 0);
	}
	for (int i = 0; i < 2; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			  "consumer %d saw every record in order", i);
	}
	struct ring_info info;
	ring_info(r, &info);
	cr_expect_eq(info.records, n);
	ring_close(&r);
}

Test(ring, sleeping_consumer_is_woken)
{
	mdb_ring *r = make("wk", 1 << 16);
	cr_assert_eq(ring_producer_begin(r), 0);
	int pfd[2];
	cr_assert_eq(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		int err;
		mdb_ring *cr = ring_open("wk", &err);
		mdb_ring_consumer *c =
		    ring_consumer_open(cr, "w", RING_OBSERVER, RING_FROM_END, 0, &err);
		(void)!write(pfd[1], "r", 1);
		int rc = ring_wait(c, 5000000000LL);
		struct ring_rec rec;
		_exit(rc == 1 && ring_next(c, &rec) == 1 ? 0 : 1);
	}
	char x;
	cr_assert_eq(read(pfd[0], &x, 1), 1);
	/* wait until it sleeps, so the wake really goes through the futex */
	struct ring_info info;
	for (int i = 0; i < 2000; i++) {
		ring_info(r, &info);
		if (info.sleepers)
			break;
		usleep(1000);
	}
	cr_assert_eq(info.sleepers, 1);
	uint64_t v = 1;
	int64_t t0 = tu_now_ns();
	cr_assert_eq(ring_publish(r, 1, &v, 8, 0), 0);
	int st;
	waitpid(pid, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_expect_lt(tu_now_ns() - t0, 4000000000LL, "woken, not timed out");
	ring_close(&r);
}

/* ring_sleep_prepare(), for a loop that sleeps on the futex itself
 * (mdb-ws in io_uring): it says "moved" when the ring is past the reader,
 * else hands out a futex word whose value the next record changes, and
 * that record's publish clears the announced sleep (one wake per sleep). */
Test(ring, sleep_prepare_announces_and_the_next_record_wakes)
{
	mdb_ring *r = make("sp", 4096);
	cr_assert_eq(ring_producer_begin(r), 0);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "w", RING_OBSERVER, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	uint64_t pos = ring_consumer_position(c), v = 7;
	_Atomic uint32_t *ua = NULL;
	uint32_t val = 0;
	cr_assert_eq(ring_sleep_prepare(c, pos, &ua, &val), 0, "nothing new: may sleep");
	cr_assert_not_null(ua);
	cr_assert_eq(atomic_load(ua), val);
	struct ring_info info;
	ring_info(r, &info);
	cr_assert_eq(info.sleepers, 1);
	cr_assert_eq(ring_publish(r, 1, &v, 8, 0), 0);
	cr_expect_neq(atomic_load(ua), val, "the record changed the futex word");
	ring_info(r, &info);
	cr_expect_eq(info.sleepers, 0, "the wake cleared the announced sleep");
	/* the reader is now behind: no sleep, and no announcement left */
	cr_expect_eq(ring_sleep_prepare(c, pos, &ua, &val), 1);
	ring_info(r, &info);
	cr_expect_eq(info.sleepers, 0);
	struct ring_rec rec;
	cr_expect_eq(ring_next(c, &rec), 1);
	cr_expect_eq(ring_sleep_prepare(c, ring_consumer_position(c), &ua, &val), 0);
	ring_consumer_close(&c);
	ring_close(&r);
}

Test(ring, wait_times_out_on_idle_ring)
{
	mdb_ring *r = make("to", 4096);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "w", RING_OBSERVER, RING_FROM_END, 1000, &err);
	int64_t t0 = tu_now_ns();
	cr_expect_eq(ring_wait(c, 50000000), 0);
	int64_t dt = tu_now_ns() - t0;
	cr_expect_geq(dt, 50000000);
	cr_expect_lt(dt, 2000000000LL);
	ring_consumer_close(&c);
	ring_close(&r);
}

Test(ring, wait_any_wakes_on_either_ring)
{
	mdb_ring *a = make("wa", 4096), *b = make("wb", 4096);
	int err;
	mdb_ring_consumer *cs[2] = {
	    ring_consumer_open(a, "w", RING_OBSERVER, RING_FROM_END, 0, &err),
	    ring_consumer_open(b, "w", RING_OBSERVER, RING_FROM_END, 0, &err),
	};
	cr_expect_eq(ring_wait_any(cs, 2, 0, 20000000), 0);
	pid_t pid = fork();
	if (pid == 0) {
		usleep(50000);
		mdb_ring *p = producer("wb");
		uint64_t v = 9;
		ring_publish(p, 1, &v, 8, 0);
		_exit(0);
	}
	cr_expect_eq(ring_wait_any(cs, 2, 0, 5000000000LL), 1);
	struct ring_rec rec;
	cr_expect_eq(ring_next(cs[0], &rec), 0);
	cr_expect_eq(ring_next(cs[1], &rec), 1);
	waitpid(pid, NULL, 0);
	ring_consumer_close(&cs[0]);
	ring_consumer_close(&cs[1]);
	ring_close(&a);
	ring_close(&b);
}

/* DESIGN.md: idle stages use no CPU. A consumer waits 10 s (MDB_TEST_SCALE
 * shortens it) on an idle ring; its CPU time must stay near zero. */
Test(ring, idle_consumer_uses_no_cpu, .timeout = 60)
{
	mdb_ring *r = make("idle", 4096);
	int64_t wait_ns = tu_scale(10) * 1000000000LL;
	pid_t pid = fork();
	if (pid == 0) {
		int err;
		mdb_ring *cr = ring_open("idle", &err);
		mdb_ring_consumer *c =
		    ring_consumer_open(cr, "w", RING_DURABLE, RING_FROM_END, 50000, &err);
		_exit(ring_wait(c, wait_ns) == 0 ? 0 : 1);
	}
	int st;
	struct rusage ru;
	cr_assert_eq(wait4(pid, &st, 0, &ru), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait timed out as expected");
	double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
		     ru.ru_stime.tv_usec / 1e6;
	cr_log_info("idle consumer: %.4f s CPU over %.0f s", cpu, wait_ns / 1e9);
	cr_expect_lt(cpu, 0.05, "idle consumer burnt %.3f s of CPU", cpu);
	ring_close(&r);
}

Test(ring, durable_from_start_after_wraps_sees_intact_records)
{
	mdb_ring *r = make("dfs", 1 << 14);
	cr_assert_eq(ring_producer_begin(r), 0);
	uint8_t buf[300];
	uint64_t seq = 0;
	for (; seq < 3000; seq++)
		cr_assert_eq(ring_publish(r, 1, buf, fill(buf, seq, 8 + seq % 290), 0), 0);
	int err;
	mdb_ring_consumer *c =
	    ring_consumer_open(r, "late", RING_DURABLE, RING_FROM_START, 0, &err);
	cr_assert_not_null(c);
	/* now it holds the producer: the ring fills but never overwrites it */
	while (ring_publish(r, 1, buf, fill(buf, seq, 8 + seq % 290), 0) == 0)
		seq++;
	struct ring_rec rec;
	uint64_t got, last = 0, n = 0;
	while (ring_next(c, &rec) == 1) {
		cr_assert(check(rec.data, rec.len, &got));
		if (n++)
			cr_assert_eq(got, last + 1);
		last = got;
	}
	cr_expect_eq(last, seq - 1);
	ring_consumer_close(&c);
	ring_close(&r);
}

Test(ring, dead_observer_slots_are_reclaimed)
{
	mdb_ring *r = make("obs", 4096);
	/* more killed observers than there are slots */
	for (int i = 0; i < RING_SLOTS + 4; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			int err;
			mdb_ring *cr = ring_open("obs", &err);
			char name[32];
			snprintf(name, sizeof name, "tap.%d", i);
			_exit(ring_consumer_open(cr, name, RING_OBSERVER, RING_FROM_END, 0, &err)
				  ? 0
				  : 1);
		}
		int st;
		waitpid(pid, &st, 0);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "observer %d found a slot", i);
	}
	struct ring_info info;
	ring_info(r, &info);
	cr_expect_eq(info.nslots, 1, "only the last dead observer's slot is left");
	cr_expect_not(info.slots[0].alive);
	ring_close(&r);
}

Test(ring, manual_release_resumes_at_first_unreleased)
{
	mdb_ring *r = make("man", 1 << 16);
	cr_assert_eq(ring_producer_begin(r), 0);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "w", RING_DURABLE, RING_FROM_END, 0, &err);
	ring_set_manual_release(c, true);
	uint8_t buf[64];
	for (uint64_t seq = 0; seq < 20; seq++)
		cr_assert_eq(ring_publish(r, 1, buf, fill(buf, seq, sizeof buf), 0), 0);
	struct ring_rec rec;
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ring_next(c, &rec), 1);
	ring_release(c); /* 5 passed on */
	for (int i = 0; i < 5; i++)
		cr_assert_eq(ring_next(c, &rec), 1);
	cr_expect_eq(ring_wait(c, 0), 1, "more is ready");
	ring_consumer_close(&c); /* 5 more read but never released */
	c = ring_consumer_open(r, "w", RING_DURABLE, RING_FROM_END, 0, &err);
	uint64_t got;
	cr_assert_eq(ring_next(c, &rec), 1);
	cr_assert(check(rec.data, rec.len, &got));
	cr_expect_eq(got, 5, "resumed at the first record not released");
	ring_consumer_close(&c);
	ring_close(&r);
}

Test(ring, killed_sleeper_stops_costing_the_producer)
{
	mdb_ring *r = make("zz", 1 << 16);
	cr_assert_eq(ring_producer_begin(r), 0);
	pid_t pid = fork();
	if (pid == 0) {
		int err;
		mdb_ring *cr = ring_open("zz", &err);
		mdb_ring_consumer *c =
		    ring_consumer_open(cr, "sleepy", RING_OBSERVER, RING_FROM_END, 0, &err);
		ring_wait(c, -1);
		_exit(0);
	}
	struct ring_info info;
	for (int i = 0; i < 2000; i++) {
		ring_info(r, &info);
		if (info.sleepers)
			break;
		usleep(1000);
	}
	cr_assert_eq(info.sleepers, 1);
	/* SIGSTOP first so it cannot wake and clear its own bit, then kill it */
	kill(pid, SIGSTOP);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ring_info(r, &info);
	cr_assert_eq(info.sleepers, 1, "the dead sleeper's bit is still set");
	uint64_t v = 0;
	cr_assert_eq(ring_publish(r, 1, &v, 8, 0), 0);
	ring_info(r, &info);
	cr_expect_eq(info.sleepers, 0, "the first wake took the dead sleeper's bit");
	ring_close(&r);
}

static void on_alarm(int sig)
{
	(void)sig;
}

Test(ring, held_back_producer_wait_is_interruptible)
{
	mdb_ring *r = make("intr", 4096);
	cr_assert_eq(ring_producer_begin(r), 0);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "stuck", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	uint8_t buf[120] = {0};
	while (ring_publish(r, 1, buf, sizeof buf, 0) == 0)
		;
	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
	sigaction(SIGALRM, &sa, NULL);
	/* a signal that lands outside the futex syscall is not seen (the
	 * caller then relies on its own timeout), so keep signalling until
	 * one interrupts the wait */
	struct itimerval it = {.it_value = {.tv_usec = 100000}, .it_interval = {.tv_usec = 10000}};
	setitimer(ITIMER_REAL, &it, NULL);
	int64_t t0 = tu_now_ns();
	cr_expect_eq(ring_publish(r, 1, buf, sizeof buf, -1), -EINTR);
	struct itimerval off = {0};
	setitimer(ITIMER_REAL, &off, NULL);
	cr_expect_lt(tu_now_ns() - t0, 5000000000LL);
	struct ring_info info;
	ring_info(r, &info);
	cr_expect_geq(info.held_ns, 90000000, "held time counted: %lu", info.held_ns);
	ring_consumer_close(&c);
	ring_close(&r);
}

Test(ring, quiet_commits_are_invisible_until_flushed)
{
	mdb_ring *r = make("quiet", 1 << 12);
	cr_assert_eq(ring_producer_begin(r), 0);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "q", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	uint8_t buf[64];
	void *p;
	for (uint64_t seq = 0; seq < 10; seq++) {
		uint32_t len = fill(buf, seq, sizeof buf);
		cr_assert_eq(ring_claim(r, 1, len, &p, 0), 0);
		memcpy(p, buf, len);
		ring_commit_quiet(r);
	}
	struct ring_rec rec;
	cr_expect_eq(ring_next(c, &rec), 0, "a quiet commit became visible");
	ring_flush(r);
	uint64_t got;
	for (uint64_t seq = 0; seq < 10; seq++) {
		cr_assert_eq(ring_next(c, &rec), 1, "record %llu missing after the flush",
			     (unsigned long long)seq);
		cr_assert(check(rec.data, rec.len, &got));
		cr_expect_eq(got, seq);
	}
	/* filling the ring: a claim that must wait for space first publishes
	 * what it holds, so the durable consumer can make that space */
	ring_release(c);
	uint64_t seq = 10, seen = 10;
	for (int i = 0; i < 200; i++, seq++) {
		uint32_t len = fill(buf, seq, sizeof buf);
		int rc;
		while ((rc = ring_claim(r, 1, len, &p, 0)) == -EAGAIN || rc == -ETIMEDOUT) {
			while (ring_next(c, &rec) == 1) {
				cr_assert(check(rec.data, rec.len, &got));
				cr_assert_eq(got, seen++);
			}
			ring_release(c);
		}
		cr_assert_eq(rc, 0);
		memcpy(p, buf, len);
		ring_commit_quiet(r);
	}
	ring_flush(r);
	while (ring_next(c, &rec) == 1) {
		cr_assert(check(rec.data, rec.len, &got));
		cr_assert_eq(got, seen++);
	}
	cr_expect_eq(seen, seq, "every record arrived once, in order");
	ring_consumer_close(&c);
	ring_close(&r);
}

/* Claim a bound, write fewer bytes in place, commit what was written: the
 * records keep their cut lengths and follow each other with no gap, across
 * many wraps of a 4 KiB ring. */
Test(ring, commit_len_cuts_the_claimed_record)
{
	mdb_ring *r = make("cut", 1 << 12);
	cr_assert_eq(ring_producer_begin(r), 0);
	int err;
	mdb_ring_consumer *c = ring_consumer_open(r, "q", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(c);
	struct ring_rec rec;
	uint64_t got, seen = 0, end = ring_position(r);
	for (uint64_t seq = 0; seq < 500; seq++) {
		void *p;
		cr_assert_eq(ring_claim(r, 1, 256, &p, 0), 0);
		uint32_t len = fill(p, seq, 8 + (uint32_t)(seq * 13 % 90));
		ring_commit_len_quiet(r, len);
		ring_flush(r);
		cr_assert_eq(ring_next(c, &rec), 1);
		cr_assert_eq(rec.len, len);
		cr_assert(check(rec.data, rec.len, &got));
		cr_assert_eq(got, seen++);
		/* right after the last one, or at the next lap when the claimed
		 * bound did not fit in the tail */
		cr_assert(rec.pos == end || (rec.pos % (1 << 12) == 0 && rec.pos - end < 8 + 256),
			  "record %llu at %llu, the last ended at %llu", (unsigned long long)seq,
			  (unsigned long long)rec.pos, (unsigned long long)end);
		end = rec.pos + (8 + len + 7) / 8 * 8;
		cr_assert_eq(ring_position(r), end);
		ring_release(c);
	}
	cr_expect_eq(ring_next(c, &rec), 0, "nothing but the committed records");
	ring_consumer_close(&c);
	ring_close(&r);
}

/* Publish n records of varied sizes (wrapping a 4 KiB ring many times);
 * pos[seq] is where record seq starts. */
static void publish_varied(mdb_ring *r, uint64_t n, uint64_t *pos)
{
	uint8_t buf[256];
	for (uint64_t seq = 0; seq < n; seq++) {
		pos[seq] = ring_position(r);
		cr_assert_eq(
		    ring_publish(r, 3, buf, fill(buf, seq, 8 + (uint32_t)(seq * 37 % 200)), 0), 0);
	}
}

/* A 4 KiB ring NAME with 400 varied records (publish_varied), and an
 * observer of it that joined at the end. */
static mdb_ring_consumer *varied_observer(const char *name, uint64_t *pos, mdb_ring **r)
{
	*r = make(name, 4096);
	cr_assert_eq(ring_producer_begin(*r), 0);
	publish_varied(*r, 400, pos);
	int err;
	mdb_ring_consumer *o =
	    ring_consumer_open(*r, "replay", RING_OBSERVER, RING_FROM_END, 0, &err);
	cr_assert_not_null(o);
	return o;
}

Test(ring, seek_checked_replays_from_a_known_boundary)
{
	mdb_ring *r;
	static uint64_t pos[400];
	mdb_ring_consumer *o = varied_observer("sk", pos, &r);
	/* every record still in the ring can be a starting point, including the
	 * first one after a padding record, and reading on gives the rest in order */
	uint64_t oldest = ring_oldest(r), tried = 0, padded = 0;
	struct ring_rec rec;
	for (uint64_t seq = 0; seq < 400; seq++) {
		if (pos[seq] < oldest)
			continue;
		cr_assert_eq(ring_seek_checked(o, pos[seq]), 0, "seq %lu at %lu", seq, pos[seq]);
		cr_assert_eq(ring_next(o, &rec), 1);
		uint64_t got;
		cr_assert(check(rec.data, rec.len, &got));
		cr_assert_eq(got, seq);
		cr_assert_geq(rec.pos, pos[seq]);
		padded += rec.pos != pos[seq]; /* the end of a lap: a pad, then seq */
		tried++;
	}
	cr_expect_gt(tried, 20);
	cr_expect_gt(padded, 0, "some boundary was the start of a padding record");
	/* the published end is a boundary too: nothing to read yet */
	cr_expect_eq(ring_seek_checked(o, ring_position(r)), 0);
	cr_expect_eq(ring_next(o, &rec), 0);
	ring_consumer_close(&o);
	ring_close(&r);
}

Test(ring, seek_checked_refuses_overwritten_future_and_mid_record)
{
	mdb_ring *r;
	static uint64_t pos[400];
	mdb_ring_consumer *o = varied_observer("sk2", pos, &r);
	int err;
	uint64_t last = pos[399];
	cr_expect_eq(ring_seek_checked(o, pos[0]), -ERANGE, "lapped long ago");
	cr_expect_eq(ring_seek_checked(o, ring_oldest(r) - 8), -ERANGE);
	cr_expect_eq(ring_seek_checked(o, ring_position(r) + 8), -EINVAL, "not published yet");
	cr_expect_eq(ring_seek_checked(o, last + 8), -EINVAL, "inside a record");
	cr_expect_eq(ring_seek_checked(o, last + 3), -EINVAL, "not aligned");
	/* a refused seek leaves the reader where it was */
	cr_expect_eq(ring_consumer_position(o), ring_position(r));
	/* a position valid a moment ago is refused once the producer laps it */
	cr_assert_eq(ring_seek_checked(o, last), 0);
	uint64_t more[100];
	publish_varied(r, 100, more);
	cr_expect_eq(ring_seek_checked(o, last), -ERANGE);
	mdb_ring_consumer *d = ring_consumer_open(r, "dur", RING_DURABLE, RING_FROM_END, 0, &err);
	cr_assert_not_null(d);
	cr_expect_eq(ring_seek_checked(d, ring_position(r)), -EPERM, "only observers");
	ring_consumer_close(&d);
	ring_consumer_close(&o);
	ring_close(&r);
}

Test(ring, create_reserves_its_pages_and_ids_differ)
{
	mdb_ring *a = make("ida", 1 << 16);
	struct stat st;
	char path[600];
	snprintf(path, sizeof path, "%s/ida.ring", dir);
	cr_assert_eq(stat(path, &st), 0);
	/* not sparse: every byte of the file has its block */
	cr_expect_geq((uint64_t)st.st_blocks * 512, (uint64_t)st.st_size);
	usleep(1000);
	mdb_ring *b = make("idb", 1 << 16);
	cr_expect_neq(ring_id(a), 0);
	cr_expect_neq(ring_id(a), ring_id(b));
	ring_close(&b);
	ring_close(&a);
}

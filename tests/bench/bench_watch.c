/* bench_watch.c - mdb-watch, file append -> record in a ring (DESIGN.md
 * section 6).
 *
 * Latency. An appender (this process, as mdb-sim does) writes one 40-byte
 * record to a .scid file, noting CLOCK_MONOTONIC just before write(); the
 * real mdb-watch, started on the file's directory with -o ring:NAME, turns
 * it into a record. Appends are spaced 1-3 ms apart, so every one finds
 * the reader asleep, as a real feed does. p50 and p99 per run; CPU per
 * append is the reader's on-CPU time (/proc/PID/task/TID/schedstat, ns)
 * over the appends, divided by them (a peer's includes writing its report
 * to the pipe, a few us).
 *
 * The headline, and what the targets are judged on: nobody spins.
 *   downstream   right after its write() the appender sleeps on the ring's
 *                futex (a consumer with no spin), as an idle next stage
 *                does, and takes the clock when it wakes with the record:
 *                the figure includes that consumer's futex wake (about 20
 *                us here, see bench_ring), so it overstates mdb-watch's own
 *                path;
 *   bare asleep  the bare reader below, the appender asleep in poll() on
 *                its pipe at once; the figure is the reader's own clock
 *                after its read (no wake of ours).
 * Why not an observer that spins: this machine has two CPUs, and an
 * appender spinning after each append takes one of them while the watcher
 * wakes on the other; the kernel's work then waits, and the tail of every
 * reader grows (bare's p99 with the spinning appender is about 300 us,
 * with it asleep about half). No deployed stage spins on the ring.
 *
 * The spinning rows are still printed, as before: after its write() the
 * appender spins on the ring (ring_next(), no syscall) for up to
 * APPEND_SPIN_NS (250 us) and takes the clock when the record is there, no
 * wake-up of ours added; a sample that outlasts the spin is timed after a
 * sleep on the ring's futex (counted and printed). Each peer is timed by
 * the same appender spinning on a non-blocking read of the peer's pipe
 * just as long, then sleeping in poll().
 *   --spin      with --spin-row only: mdb-watch --spin SPIN_OPT: it polls
 *               its completion queue for that long after each event
 *               before it sleeps, which with appends 1-3 ms apart keeps
 *               it awake (a CPU busy) while they come; with the spinning
 *               appender that is both CPUs of this machine: not the
 *               default, not the headline.
 *
 * The same job, in the same run, by three peers, each a separate process
 * that reports CLOCK_MONOTONIC (the same clock in every process) on a pipe
 * once it has read the new bytes (the poller is timed without the spin):
 *   bare      a C loop: read() on inotify (IN_MODIFY), then pread() of the
 *             new bytes: the limit an inotify-driven reader can reach;
 *   watchdog  a Python script using Debian's python3-watchdog (inotify
 *             observer thread, on_modified, read of the new bytes);
 *   poll      a reader that stats the file every 5 s and reads what grew,
 *             the way the systems replaced did (appends at random phases).
 *
 * Catch-up. A .scid file of N records is written first; mdb-watch is then
 * started on it with a durable consumer (this process) draining the ring:
 * records/s from the first record to the last in the ring (and from exec).
 * The bare limit beside it: this process doing the same job alone, pread
 * of 1 MiB chunks, scid_encode() and a ring claim/commit per record, the
 * ring published once per chunk (no consumer: nothing waits on it).
 *
 * --smoke: a quick correctness run for the test suite: every append and
 * every catch-up record arrives, values are checked; the poller polls every
 * 100 ms instead of 5 s. Speeds are printed, not judged there.
 */
#include "benchutil.h"
#include "record.h"
#include "ring.h"
#include "scid.h"

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS	   99
#define TARGET_P50_US	   50.0
#define TARGET_P99_US	   200.0
#define TARGET_CATCHUP_MPS 10.0
#define DT0		   (scid_from_unix_ns(1757683800LL * 1000000000LL))
#define APPEND_SPIN_NS	   250000LL /* the appender spins this long at most per append */
#define SPIN_OPT	   "5ms"    /* mdb-watch --spin, for its row */

struct bench {
	int runs;
	long appends;	    /* latency samples per run and per reader */
	long catchup;	    /* records in the catch-up file */
	long poll_samples;  /* samples of the poller */
	double poll_period; /* seconds */
	bool smoke, verbose;
	bool spin_row; /* --spin-row: time mdb-watch --spin too */
	char dir[PATH_MAX];
	char shm[64];
	char watch[PATH_MAX]; /* the mdb-watch binary */
};

static void sleep_ns(int64_t ns)
{
	struct timespec ts = {ns / 1000000000, ns % 1000000000};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The q-quantile of v[0..n) (sorts v). */
static double quantile(double *v, long n, double q)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	long i = (long)(q * (double)(n - 1) + 0.5);
	return v[i];
}

/* Record k of a stream: a trade, its time unique. */
static void make_rec(long k, uint8_t *buf)
{
	struct scid_record r = {
	    .dt = DT0 + k,
	    .high = 5000.25f + (float)(k % 7) * 0.25f,
	    .low = 5000.0f + (float)(k % 7) * 0.25f,
	    .close = 5000.0f + (float)(k % 7) * 0.25f,
	    .num_trades = 1,
	    .total_volume = 1 + (uint32_t)(k % 10),
	    .ask_volume = 1 + (uint32_t)(k % 10),
	};
	scid_record_store(buf, &r);
}

/* What one latency run measures. */
struct lat_run {
	double p50, p99; /* us */
	double cpu_us;	 /* the reader's CPU per append, us (-1: unknown) */
	long slept;	 /* appends the appender stopped spinning on */
};

/* Fill out from lat[0..n) and the reader's CPU over the n appends. */
static void lat_sum(double *lat, long n, int64_t cpu0, int64_t cpu1, long slept,
		    struct lat_run *out)
{
	out->p50 = quantile(lat, n, 0.5);
	out->p99 = quantile(lat, n, 0.99);
	out->cpu_us = cpu0 < 0 || cpu1 < 0 ? -1 : (double)(cpu1 - cpu0) / 1e3 / (double)n;
	out->slept = slept;
}

static pid_t spawn_watch(const struct bench *b, const char *dir, const char *ring, const char *spin)
{
	char out[64];
	snprintf(out, sizeof out, "ring:%s", ring);
	pid_t pid = fork();
	if (pid < 0)
		err(1, "fork");
	if (pid == 0) {
		if (!b->verbose && !freopen("/dev/null", "w", stderr))
			_exit(127);
		if (spin)
			execl(b->watch, "mdb-watch", "--spin", spin, "-o", out, dir, (char *)NULL);
		else
			execl(b->watch, "mdb-watch", "-o", out, dir, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Stop a child; returns the CPU time it used, in seconds. */
static double stop_child(pid_t pid, const char *what)
{
	int status;
	struct rusage ru;
	kill(pid, SIGTERM);
	if (wait4(pid, &status, 0, &ru) < 0)
		err(1, "waitpid");
	if (strcmp(what, "mdb-watch") == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		errx(1, "%s: exit status %d", what, status);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ---- latency: mdb-watch ---- */

/* The next record in the ring, for an append made just now: with spin,
 * spin on ring_next() for up to APPEND_SPIN_NS first (a sleep after that
 * is counted in *slept); then sleep in ring_wait(). Returns ring_next()'s
 * answer, or 0 after 2 s without a record. */
static int take_rec(mdb_ring_consumer *c, struct ring_rec *rr, bool spin, long *slept)
{
	int got = 0;
	if (spin) {
		int64_t until = mono_ns() + APPEND_SPIN_NS;
		while ((got = ring_next(c, rr)) == 0 && mono_ns() < until)
			;
		if (got)
			return got;
		(*slept)++;
	}
	while ((got = ring_next(c, rr)) == 0)
		if (ring_wait(c, 2000000000) == 0)
			return 0;
	return got;
}

/* What lat_watch() times. */
enum wmode {
	W_SPIN,	      /* the appender spins on the ring: the headline */
	W_DOWNSTREAM, /* a consumer that sleeps on the ring's futex */
	W_SPIN_OPT,   /* as W_SPIN, mdb-watch run with --spin SPIN_OPT */
};

/* One run of append -> record in ring by mdb-watch: lat[0..n) in us. */
static void lat_watch(const struct bench *b, int run, enum wmode mode, double *lat,
		      struct lat_run *out)
{
	char dir[PATH_MAX + 32], ring[32];
	snprintf(dir, sizeof dir, "%s/lat%d-%d", b->dir, run, (int)mode);
	snprintf(ring, sizeof ring, "lat%d-%d", run, (int)mode);
	if (mkdir(dir, 0755) < 0)
		err(1, "%s", dir);
	int fd = bench_scid_new(dir, "ES.scid");
	int rc;
	if ((rc = ring_create(ring, 1 << 22, 0600)) < 0)
		errx(1, "ring_create: %s", strerror(-rc));
	mdb_ring *r = ring_open(ring, &rc);
	if (!r)
		errx(1, "ring_open: %s", strerror(-rc));
	/* no spin in ring_wait(): it sleeps on the futex at once (take_rec()
	 * spins first, except downstream) */
	mdb_ring_consumer *c = ring_consumer_open(r, "bench", RING_OBSERVER, RING_FROM_END, 0, &rc);
	if (!c)
		errx(1, "ring_consumer_open: %s", strerror(-rc));
	pid_t pid = spawn_watch(b, dir, ring, mode == W_SPIN_OPT ? SPIN_OPT : NULL);
	uint8_t rec[SCID_RECORD_SIZE];
	struct ring_rec rr;
	/* warm-up: until the watcher publishes, append one record at a time */
	long k = 0;
	for (int tries = 0;; tries++) {
		if (tries == 400)
			errx(1, "mdb-watch never published a record");
		make_rec(k++, rec);
		if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
			err(1, "write");
		if (ring_wait(c, 20000000) == 1)
			break;
	}
	while (ring_wait(c, 50000000) == 1)
		while (ring_next(c, &rr) == 1)
			; /* the warm-up records */
	unsigned seed = (unsigned)run * 7919u + 1;
	mdb_codec *codec = codec_new();
	if (!codec)
		err(1, "codec_new");
	long slept = 0;
	int64_t cpu0 = bench_task_cpu_ns(pid, NULL);
	for (long i = 0; i < b->appends; i++) {
		sleep_ns(1000000 + (int64_t)(rand_r(&seed) % 2000) * 1000);
		make_rec(k++, rec);
		int64_t t0 = mono_ns();
		if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
			err(1, "write");
		int got = take_rec(c, &rr, mode != W_DOWNSTREAM, &slept);
		int64_t t1 = mono_ns();
		if (got == 0)
			errx(1, "append %ld: no record within 2 s", i);
		if (got != 1 || rr.type != MDB_REC_TICK)
			errx(1, "append %ld: not a tick in the ring", i);
		/* the record is the one appended: its ts */
		struct mdb_record m;
		const char *why;
		if (record_decode(codec, rr.data, rr.len, &m, &why) < 0 ||
		    m.ts != scid_to_unix_ns(DT0 + k - 1))
			errx(1, "append %ld: the record in the ring is not the one appended", i);
		lat[i] = (double)(t1 - t0) / 1e3;
	}
	lat_sum(lat, b->appends, cpu0, bench_task_cpu_ns(pid, NULL), slept, out);
	codec_free(&codec);
	stop_child(pid, "mdb-watch");
	ring_consumer_close(&c);
	ring_close(&r);
	ring_unlink(ring);
	close(fd);
}

/* ---- latency: the peers, each a process reporting on a pipe ---- */

/* The bare inotify reader: report the clock when the new bytes are read. */
static _Noreturn void bare_main(const char *dir, const char *path, FILE *out)
{
	int in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, dir, IN_MODIFY) < 0)
		_exit(1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		_exit(1);
	off_t off = lseek(fd, 0, SEEK_END);
	fprintf(out, "ready\n");
	fflush(out);
	_Alignas(struct inotify_event) char ev[4096];
	uint8_t buf[65536];
	for (;;) {
		if (read(in, ev, sizeof ev) <= 0)
			_exit(1);
		ssize_t n;
		while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
			off += n;
			fprintf(out, "%lld\n", (long long)mono_ns());
			fflush(out);
		}
	}
}

/* The polling reader: every period, stat and read what grew. */
static _Noreturn void poll_main(const char *path, double period, FILE *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		_exit(1);
	off_t off = lseek(fd, 0, SEEK_END);
	fprintf(out, "ready\n");
	fflush(out);
	uint8_t buf[65536];
	for (;;) {
		sleep_ns((int64_t)(period * 1e9));
		struct stat st;
		if (fstat(fd, &st) < 0)
			_exit(1);
		if (st.st_size <= off)
			continue;
		ssize_t n;
		while ((n = pread(fd, buf, sizeof buf, off)) > 0)
			off += n;
		fprintf(out, "%lld\n", (long long)mono_ns());
		fflush(out);
	}
}

static const char watchdog_py[] = "import os, sys, time\n"
				  "from watchdog.observers import Observer\n"
				  "from watchdog.events import FileSystemEventHandler\n"
				  "d, path = sys.argv[1], sys.argv[2]\n"
				  "f = open(path, 'rb'); f.seek(0, 2)\n"
				  "class H(FileSystemEventHandler):\n"
				  "    def on_modified(self, ev):\n"
				  "        if ev.src_path != path: return\n"
				  "        if f.read():\n"
				  "            print(time.monotonic_ns(), flush=True)\n"
				  "o = Observer(); o.schedule(H(), d, recursive=False); o.start()\n"
				  "print('ready', flush=True)\n"
				  "o.join()\n";

enum peer { PEER_BARE, PEER_WATCHDOG, PEER_POLL };
static const char *const peer_name[] = {"bare inotify", "Python watchdog", "poll"};

/* Is python3-watchdog importable by the system python? */
static bool have_watchdog(void)
{
	return system("/usr/bin/python3 -c 'import watchdog.observers' >/dev/null 2>&1") == 0;
}

/* A peer's pipe (non-blocking), with the bytes read past the last line. */
struct pipe_in {
	int fd;
	size_t n;
	char buf[256];
};

/* The next line from the peer into line (without its newline): with spin,
 * spin on read() for up to APPEND_SPIN_NS first (a sleep after that is
 * counted in *slept), then sleep in poll(). False when the pipe ends. */
static bool peer_line(struct pipe_in *in, char *line, size_t size, bool spin, long *slept)
{
	int64_t until = spin ? mono_ns() + APPEND_SPIN_NS : 0;
	bool counted = !spin;
	for (;;) {
		char *nl = memchr(in->buf, '\n', in->n);
		if (nl) {
			size_t len = (size_t)(nl - in->buf);
			snprintf(line, size, "%.*s", (int)len, in->buf);
			in->n -= len + 1;
			memmove(in->buf, nl + 1, in->n);
			return true;
		}
		if (in->n == sizeof in->buf)
			errx(1, "a peer wrote an overlong line");
		ssize_t got = read(in->fd, in->buf + in->n, sizeof in->buf - in->n);
		if (got > 0) {
			in->n += (size_t)got;
			continue;
		}
		if (got == 0)
			return false;
		if (errno != EAGAIN && errno != EINTR)
			err(1, "pipe");
		if (spin && mono_ns() < until)
			continue;
		if (!counted) {
			(*slept)++;
			counted = true;
		}
		struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
		poll(&pfd, 1, -1);
	}
}

/* One run of a peer: n samples into lat[] (us). Returns false when the
 * peer cannot run. */
static bool lat_peer(const struct bench *b, enum peer p, int run, long n, double *lat,
		     struct lat_run *out, bool spin)
{
	char dir[PATH_MAX + 32], path[PATH_MAX + 64];
	snprintf(dir, sizeof dir, "%s/peer%d-%d%s", b->dir, (int)p, run, spin ? "" : "-asleep");
	if (mkdir(dir, 0755) < 0)
		err(1, "%s", dir);
	int fd = bench_scid_new(dir, "ES.scid");
	snprintf(path, sizeof path, "%s/ES.scid", dir);
	int pfd[2];
	if (pipe(pfd) < 0)
		err(1, "pipe");
	pid_t pid = fork();
	if (pid < 0)
		err(1, "fork");
	if (pid == 0) {
		close(pfd[0]);
		if (p == PEER_WATCHDOG) {
			dup2(pfd[1], 1);
			execl("/usr/bin/python3", "python3", "-c", watchdog_py, dir, path,
			      (char *)NULL);
			_exit(127);
		}
		FILE *out = fdopen(pfd[1], "w");
		if (!out)
			_exit(1);
		if (p == PEER_BARE)
			bare_main(dir, path, out);
		poll_main(path, b->poll_period, out);
	}
	close(pfd[1]);
	static struct pipe_in in;
	in.fd = pfd[0];
	in.n = 0;
	fcntl(in.fd, F_SETFL, O_NONBLOCK);
	char line[64];
	long slept = 0;
	if (!peer_line(&in, line, sizeof line, false, &slept) || strcmp(line, "ready") != 0) {
		warnx("%s: did not start", peer_name[p]);
		stop_child(pid, peer_name[p]);
		close(in.fd);
		return false;
	}
	int64_t cpu0 = bench_task_cpu_ns(pid, NULL);
	uint8_t rec[SCID_RECORD_SIZE];
	unsigned seed = (unsigned)run * 104729u + (unsigned)p;
	for (long i = 0; i < n; i++) {
		if (p == PEER_POLL) /* a random phase against the poller's period */
			sleep_ns((int64_t)((double)(rand_r(&seed) % 1000) / 1000.0 *
					   b->poll_period * 1e9));
		else
			sleep_ns(1000000 + (int64_t)(rand_r(&seed) % 2000) * 1000);
		make_rec(i, rec);
		int64_t t0 = mono_ns();
		if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
			err(1, "write");
		if (!peer_line(&in, line, sizeof line, spin, &slept))
			errx(1, "%s: ended", peer_name[p]);
		lat[i] = (double)(atoll(line) - t0) / 1e3;
		if (lat[i] < 0)
			errx(1, "%s: a report before the append", peer_name[p]);
	}
	lat_sum(lat, n, cpu0, bench_task_cpu_ns(pid, NULL), slept, out);
	stop_child(pid, peer_name[p]);
	close(in.fd);
	close(fd);
	return true;
}

/* ---- catch-up ---- */

static void catchup_file(const struct bench *b)
{
	int fd = bench_scid_new(b->dir, "CU.scid");
	enum { PER = 16384 };
	uint8_t *buf = malloc((size_t)PER * SCID_RECORD_SIZE);
	if (!buf)
		err(1, "malloc");
	for (long k = 0; k < b->catchup;) {
		long n = b->catchup - k < PER ? b->catchup - k : PER;
		for (long i = 0; i < n; i++)
			make_rec(k + i, buf + i * SCID_RECORD_SIZE);
		if (write(fd, buf, (size_t)n * SCID_RECORD_SIZE) != n * SCID_RECORD_SIZE)
			err(1, "write");
		k += n;
	}
	free(buf);
	close(fd);
}

/* mdb-watch reading the whole file into a ring. Returns records/s from the
 * first record to the last; *from_exec gets records/s from the exec, *cpu
 * records per second of mdb-watch's CPU time (user + system, start-up
 * included). */
static double catchup_watch(const struct bench *b, int run, double *from_exec, double *cpu)
{
	char dir[PATH_MAX + 32], ring[32];
	snprintf(dir, sizeof dir, "%s/cu%d", b->dir, run);
	snprintf(ring, sizeof ring, "cu%d", run);
	if (mkdir(dir, 0755) < 0)
		err(1, "%s", dir);
	char src[PATH_MAX + 64], dst[PATH_MAX + 64];
	snprintf(src, sizeof src, "%s/CU.scid", b->dir);
	snprintf(dst, sizeof dst, "%s/CU.scid", dir);
	if (link(src, dst) < 0)
		err(1, "link %s", dst);
	int rc;
	if ((rc = ring_create(ring, 1 << 26, 0600)) < 0)
		errx(1, "ring_create: %s", strerror(-rc));
	mdb_ring *r = ring_open(ring, &rc);
	/* a short spin: two CPUs, and the watcher must have one */
	mdb_ring_consumer *c =
	    r ? ring_consumer_open(r, "bench", RING_DURABLE, RING_FROM_START, 50000, &rc) : NULL;
	if (!c)
		errx(1, "ring: %s", strerror(-rc));
	int64_t t_exec = mono_ns(), t_first = 0;
	pid_t pid = spawn_watch(b, dir, ring, NULL);
	struct ring_rec rr;
	long got = 0;
	while (got < b->catchup) {
		int n = ring_next(c, &rr);
		if (n == 0) {
			if (ring_wait(c, 5000000000LL) == 0)
				errx(1, "catch-up: %ld of %ld records, then nothing for 5 s", got,
				     b->catchup);
			continue;
		}
		if (!got)
			t_first = mono_ns();
		got++;
		if (b->smoke) { /* check every value in the smoke run */
			static mdb_codec *codec;
			struct mdb_record m;
			const char *why;
			if (!codec)
				codec = codec_new();
			if (record_decode(codec, rr.data, rr.len, &m, &why) < 0 ||
			    m.ts != scid_to_unix_ns(DT0 + got - 1) ||
			    m.tick.v != (double)(1 + (got - 1) % 10))
				errx(1, "catch-up: record %ld is wrong", got - 1);
		}
	}
	int64_t t_last = mono_ns();
	ring_release(c);
	*cpu = (double)b->catchup / stop_child(pid, "mdb-watch");
	ring_consumer_close(&c);
	ring_close(&r);
	ring_unlink(ring);
	unlink(dst);
	*from_exec = (double)b->catchup / ((double)(t_last - t_exec) / 1e9);
	return (double)(b->catchup - 1) / ((double)(t_last - t_first) / 1e9);
}

/* The bare limit: pread + scid_encode + ring_publish in one process. */
static double catchup_bare(const struct bench *b, int run)
{
	char ring[32], path[PATH_MAX + 64];
	snprintf(ring, sizeof ring, "bare%d", run);
	snprintf(path, sizeof path, "%s/CU.scid", b->dir);
	int rc;
	if ((rc = ring_create(ring, 1 << 26, 0600)) < 0)
		errx(1, "ring_create: %s", strerror(-rc));
	mdb_ring *r = ring_open(ring, &rc);
	if (!r || (rc = ring_producer_begin(r)) < 0)
		errx(1, "ring: %s", strerror(-rc));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	enum { CHUNK = 1 << 20 };
	uint8_t *buf = malloc(CHUNK);
	if (fd < 0 || !buf)
		err(1, "%s", path);
	uint8_t enc[MDB_REC_MAX_BYTES];
	off_t off = SCID_HEADER_SIZE;
	long n = 0;
	int64_t t0 = mono_ns();
	ssize_t got;
	while ((got = pread(fd, buf, CHUNK / SCID_RECORD_SIZE * SCID_RECORD_SIZE, off)) > 0) {
		for (ssize_t i = 0; i + SCID_RECORD_SIZE <= got; i += SCID_RECORD_SIZE) {
			struct scid_record sr;
			enum scid_kind kind;
			const char *why;
			scid_record_load(buf + i, &sr);
			off += SCID_RECORD_SIZE;
			int len = scid_encode(&sr, "CU", 1, off, 1, enc, sizeof enc, &kind, &why);
			void *dst;
			if (len < 0 || ring_claim(r, MDB_REC_TICK, (uint32_t)len, &dst, -1) < 0)
				errx(1, "bare: publish");
			memcpy(dst, enc, (size_t)len);
			ring_commit_quiet(r);
			n++;
		}
		ring_flush(r);
	}
	int64_t t1 = mono_ns();
	if (n != b->catchup)
		errx(1, "bare: %ld records, wanted %ld", n, b->catchup);
	free(buf);
	close(fd);
	ring_close(&r);
	ring_unlink(ring);
	return (double)n / ((double)(t1 - t0) / 1e9);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bench_watch [--smoke] [-r runs] [-n appends] [--catch-up N] "
		"[--poll-samples N]\n"
		"                   [--dir DIR] [--spin-row] [-v]\n"
		"  -r, --runs R          runs of each; medians are shown (default 5)\n"
		"  -n, --appends N       latency samples per run and reader (default 2000)\n"
		"      --catch-up N      records in the catch-up file (default 5000000)\n"
		"      --poll-samples N  samples of the 5 s poller (default 6; about 5 s each)\n"
		"      --dir DIR         where the files go (default /tmp)\n"
		"      --spin-row        time mdb-watch --spin " SPIN_OPT " too (busies two CPUs)\n"
		"      --smoke           a quick correctness run for the test suite\n"
		"  -v, --verbose         per-run figures, mdb-watch's log\n");
	exit(out == stdout ? 0 : 2);
}

int main(int argc, char **argv)
{
	enum { OPT_SMOKE = 256, OPT_CATCHUP, OPT_POLL, OPT_DIR, OPT_SPIN_ROW };
	static const struct option longopts[] = {
	    {"runs", required_argument, NULL, 'r'},
	    {"appends", required_argument, NULL, 'n'},
	    {"catch-up", required_argument, NULL, OPT_CATCHUP},
	    {"poll-samples", required_argument, NULL, OPT_POLL},
	    {"dir", required_argument, NULL, OPT_DIR},
	    {"spin-row", no_argument, NULL, OPT_SPIN_ROW},
	    {"smoke", no_argument, NULL, OPT_SMOKE},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench b = {
	    .runs = 5, .appends = 2000, .catchup = 5000000, .poll_samples = 6, .poll_period = 5.0};
	long runs = 0, appends = 0, catchup = 0, polls = 0;
	const char *dir = "/tmp";
	int opt;
	while ((opt = getopt_long(argc, argv, "r:n:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			if ((runs = atol(optarg)) < 1 || runs > MAX_RUNS)
				errx(2, "bad --runs (1..%d): %s", MAX_RUNS, optarg);
			break;
		case 'n':
			if ((appends = atol(optarg)) < 10)
				errx(2, "bad --appends (at least 10): %s", optarg);
			break;
		case OPT_CATCHUP:
			if ((catchup = atol(optarg)) < 2)
				errx(2, "bad --catch-up: %s", optarg);
			break;
		case OPT_POLL:
			if ((polls = atol(optarg)) < 1)
				errx(2, "bad --poll-samples: %s", optarg);
			break;
		case OPT_DIR:
			dir = optarg;
			break;
		case OPT_SPIN_ROW:
			b.spin_row = true;
			break;
		case OPT_SMOKE:
			b.smoke = true;
			break;
		case 'v':
			b.verbose = true;
			break;
		case 'h':
			usage(stdout);
			break;
		default:
			usage(stderr);
		}
	}
	if (b.smoke) {
		b.runs = 1;
		b.appends = 200;
		b.catchup = 300000;
		b.poll_samples = 5;
		b.poll_period = 0.1;
	}
	if (runs)
		b.runs = (int)runs;
	if (appends)
		b.appends = appends;
	if (catchup)
		b.catchup = catchup;
	if (polls)
		b.poll_samples = polls;

	bench_tool(b.watch, sizeof b.watch, "mdb-watch");
	if (access(b.watch, X_OK) < 0)
		err(2, "%s (set MDB_BUILD_DIR)", b.watch);
	snprintf(b.dir, sizeof b.dir, "%s/mdb-bench-watch.XXXXXX", dir);
	snprintf(b.shm, sizeof b.shm, "/dev/shm/mdb-bench-watch.XXXXXX");
	bench_tmpdir(b.dir);
	bench_tmpdir(b.shm);
	setenv("MDB_SHM_DIR", b.shm, 1);
	signal(SIGPIPE, SIG_IGN);
	bool wd = have_watchdog();

	printf("bench_watch: %d run%s of %ld appends per reader; catch-up of %ld records; "
	       "poller: %ld samples at a %.1f s period; files in %s\n",
	       b.runs, b.runs > 1 ? "s" : "", b.appends, b.catchup, b.poll_samples, b.poll_period,
	       dir);
	fflush(stdout);
	double *lat = malloc(sizeof *lat * (size_t)b.appends);
	if (!lat)
		err(1, "malloc");
	/* readers: mdb-watch three ways, then the bare reader and watchdog */
	enum { R_WATCH, R_DOWN, R_SPIN, R_BARE, R_WD, R_BARE_ASLEEP, R_N };
	static const char *const rname[R_N] = {"mdb-watch", "downstream", "--spin",
					       "bare",	    "watchdog",	  "bare asleep"};
	static struct lat_run lr[R_N][MAX_RUNS];
	double cu[MAX_RUNS], cux[MAX_RUNS], cuc[MAX_RUNS], bare[MAX_RUNS];
	catchup_file(&b);
	for (int i = 0; i < b.runs; i++) {
		for (int r = 0; r < R_N; r++) {
			lr[r][i] = (struct lat_run){-1, -1, -1, 0};
			if (r == R_SPIN && !b.spin_row)
				continue;
			if (r <= R_SPIN)
				lat_watch(&b, i,
					  r == R_WATCH	? W_SPIN
					  : r == R_DOWN ? W_DOWNSTREAM
							: W_SPIN_OPT,
					  lat, &lr[r][i]);
			else if (r == R_BARE || r == R_BARE_ASLEEP || wd)
				lat_peer(&b, r == R_WD ? PEER_WATCHDOG : PEER_BARE, i, b.appends,
					 lat, &lr[r][i], r != R_BARE_ASLEEP);
		}
		cu[i] = catchup_watch(&b, i, &cux[i], &cuc[i]);
		bare[i] = catchup_bare(&b, i);
		if (b.verbose) {
			fprintf(stderr, "run %d:", i + 1);
			for (int r = 0; r < R_N; r++)
				fprintf(stderr, " %s %.1f/%.1f us (cpu %.1f us, %ld slept);",
					rname[r], lr[r][i].p50, lr[r][i].p99, lr[r][i].cpu_us,
					lr[r][i].slept);
			fprintf(stderr, " catch-up %.2f M/s (from exec %.2f), bare %.2f M/s\n",
				cu[i] / 1e6, cux[i] / 1e6, bare[i] / 1e6);
		}
	}
	/* the poller: slow by design, so one run of a few samples */
	double *plat = malloc(sizeof *plat * (size_t)b.poll_samples);
	struct lat_run pr;
	if (!plat || !lat_peer(&b, PEER_POLL, 0, b.poll_samples, plat, &pr, false))
		errx(1, "the poller did not run");
	double poll50 = quantile(plat, b.poll_samples, 0.5);

	/* medians over the runs, per reader */
	struct lat_run m[R_N];
	for (int r = 0; r < R_N; r++) {
		double v[4][MAX_RUNS];
		long slept = 0;
		for (int i = 0; i < b.runs; i++) {
			v[0][i] = lr[r][i].p50;
			v[1][i] = lr[r][i].p99;
			v[2][i] = lr[r][i].cpu_us;
			slept += lr[r][i].slept;
		}
		m[r] = (struct lat_run){median(v[0], b.runs), median(v[1], b.runs),
					median(v[2], b.runs), slept};
	}
	double mw50 = m[R_WATCH].p50, mw99 = m[R_WATCH].p99;
	double mb50 = m[R_BARE].p50, mb99 = m[R_BARE].p99;
	double mcu = median(cu, b.runs), mcux = median(cux, b.runs), mbare = median(bare, b.runs);
	double mcuc = median(cuc, b.runs);
	/* the headline: nobody spins; mdb-watch's figure includes the wake of
	 * the consumer that takes it, the bare reader's is its own clock */
	double md50 = m[R_DOWN].p50, md99 = m[R_DOWN].p99;
	double ma50 = m[R_BARE_ASLEEP].p50, ma99 = m[R_BARE_ASLEEP].p99;
	printf("append -> record in ring, the observer asleep (as a deployed next stage): "
	       "mdb-watch p50 %.1f us, p99 %.1f us, CPU %.1f us/append, the consumer's futex wake "
	       "included (medians of %d runs)\n",
	       md50, md99, m[R_DOWN].cpu_us, b.runs);
	printf(
	    "bare inotify reader (read event, pread), the appender asleep: p50 %.1f us, p99 "
	    "%.1f us, CPU %.1f us/append (its own clock: no wake added); ratio mdb-watch / bare: "
	    "p50 %.2f, p99 %.2f\n",
	    ma50, ma99, m[R_BARE_ASLEEP].cpu_us, md50 / ma50, md99 / ma99);
	printf("the observer spinning %lld us first (no wake added, one of the CPUs busy): "
	       "mdb-watch p50 %.1f us, p99 %.1f us, CPU %.1f us/append\n",
	       APPEND_SPIN_NS / 1000, mw50, mw99, m[R_WATCH].cpu_us);
	printf("bare inotify reader, the appender spinning on its pipe: p50 %.1f us, p99 %.1f us, "
	       "CPU %.1f us/append\n",
	       mb50, mb99, m[R_BARE].cpu_us);
	if (wd) {
		double mp50 = m[R_WD].p50, mp99 = m[R_WD].p99;
		printf(
		    "Python watchdog (python3-watchdog, inotify observer), the appender spinning: "
		    "p50 %.1f us, p99 %.1f us, CPU %.1f us/append\n",
		    mp50, mp99, m[R_WD].cpu_us);
		printf("ratio p50: watchdog / mdb-watch %.1fx; p99: %.1fx (both with the spinning "
		       "observer)\n",
		       mp50 / mw50, mp99 / mw99);
	} else {
		printf("Python watchdog: not measured: python3-watchdog is not installed "
		       "(apt-get install python3-watchdog; scripts/bench installs it)\n");
	}
	printf("%.1f s poller: p50 %.0f ms over %ld samples; ratio p50: poller / mdb-watch %.0fx\n",
	       b.poll_period, poll50 / 1e3, b.poll_samples, poll50 / md50);
	printf("ratio mdb-watch / bare inotify, both spinning: p50 %.2f, p99 %.2f, CPU per append "
	       "%.2f\n",
	       mw50 / mb50, mw99 / mb99, m[R_WATCH].cpu_us / m[R_BARE].cpu_us);
	if (b.spin_row)
		printf("mdb-watch --spin %s (not the default: busy while appends come < %s apart): "
		       "p50 %.1f us, p99 %.1f us, CPU %.1f us/append\n",
		       SPIN_OPT, SPIN_OPT, m[R_SPIN].p50, m[R_SPIN].p99, m[R_SPIN].cpu_us);
	printf("note: %ld of %ld mdb-watch samples outlasted the appender's %lld us spin (each of "
	       "those includes a futex wake)\n",
	       m[R_WATCH].slept, (long)b.runs * b.appends, APPEND_SPIN_NS / 1000);
	printf("catch-up, %ld records of an existing .scid into a ring: %.2f M records/s "
	       "(%.2f M/s from exec; %.2f M per second of mdb-watch CPU)\n",
	       b.catchup, mcu / 1e6, mcux / 1e6, mcuc / 1e6);
	printf("bare limit, one process pread + scid_encode + ring claim/commit: %.2f M records/s; "
	       "ratio mdb-watch / bare %.2f\n",
	       mbare / 1e6, mcu / mbare);
	if (!b.smoke)
		printf("targets (the observer asleep): p50 < %.0f us %s; p99 < %.0f us %s; "
		       "catch-up >= %.0f M/s %s\n",
		       TARGET_P50_US, md50 < TARGET_P50_US ? "met" : "MISSED", TARGET_P99_US,
		       md99 < TARGET_P99_US ? "met" : "MISSED", TARGET_CATCHUP_MPS,
		       mcu / 1e6 >= TARGET_CATCHUP_MPS ? "met" : "MISSED");
	free(lat);
	free(plat);
	bench_rmtmp(b.dir);
	bench_rmtmp(b.shm);
	return 0;
}

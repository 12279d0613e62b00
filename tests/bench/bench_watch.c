/* bench_watch.c - mdb-watch, file append -> record in a ring (DESIGN.md
 * section 6).
 *
 * Latency. An appender (this process, as mdb-sim does) writes one 40-byte
 * record to a .scid file, noting CLOCK_MONOTONIC just before write(); the
 * real mdb-watch, started on the file's directory with -o ring:NAME, turns
 * it into a record; a consumer in this process (an observer that spins
 * 1 ms, then sleeps on the ring's futex) takes the clock when the record is
 * in the ring. Appends are spaced 1-3 ms apart, so every one finds the
 * watcher asleep in io_uring, as a real feed does, and mostly finds the
 * consumer asleep too: the figure includes its futex wake (about 20 us
 * here, see bench_ring), as a downstream stage sees it. p50 and p99 per run.
 *
 * The same job, in the same run, by three peers, each a separate process
 * that reports CLOCK_MONOTONIC (the same clock in every process) on a pipe
 * once it has read the new bytes:
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

#define MAX_RUNS 99
#define TARGET_P50_US 50.0
#define TARGET_P99_US 200.0
#define TARGET_CATCHUP_MPS 10.0
#define DT0 (scid_from_unix_ns(1757683800LL * 1000000000LL))

struct bench {
	int runs;
	long appends;       /* latency samples per run and per reader */
	long catchup;       /* records in the catch-up file */
	long poll_samples;  /* samples of the poller */
	double poll_period; /* seconds */
	bool smoke, verbose;
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

/* A fresh .scid file dir/name with its header; returns its fd (append). */
static int scid_new(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	uint8_t h[SCID_HEADER_SIZE];
	scid_header_make(h);
	if (fd < 0 || write(fd, h, sizeof h) != (ssize_t)sizeof h)
		err(1, "%s", path);
	return fd;
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

static pid_t spawn_watch(const struct bench *b, const char *dir, const char *ring)
{
	char out[64];
	snprintf(out, sizeof out, "ring:%s", ring);
	pid_t pid = fork();
	if (pid < 0)
		err(1, "fork");
	if (pid == 0) {
		if (!b->verbose && !freopen("/dev/null", "w", stderr))
			_exit(127);
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

/* One run of append -> record in ring by mdb-watch: lat[0..n) in us. */
static void lat_watch(const struct bench *b, int run, double *lat)
{
	char dir[PATH_MAX + 32], ring[32];
	snprintf(dir, sizeof dir, "%s/lat%d", b->dir, run);
	snprintf(ring, sizeof ring, "lat%d", run);
	if (mkdir(dir, 0755) < 0)
		err(1, "%s", dir);
	int fd = scid_new(dir, "ES.scid");
	int rc;
	if ((rc = ring_create(ring, 1 << 22, 0600)) < 0)
		errx(1, "ring_create: %s", strerror(-rc));
	mdb_ring *r = ring_open(ring, &rc);
	if (!r)
		errx(1, "ring_open: %s", strerror(-rc));
	mdb_ring_consumer *c = ring_consumer_open(r, "bench", RING_OBSERVER, RING_FROM_END,
						  1000000, &rc);
	if (!c)
		errx(1, "ring_consumer_open: %s", strerror(-rc));
	pid_t pid = spawn_watch(b, dir, ring);
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
	for (long i = 0; i < b->appends; i++) {
		sleep_ns(1000000 + (int64_t)(rand_r(&seed) % 2000) * 1000);
		make_rec(k++, rec);
		int64_t t0 = mono_ns();
		if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
			err(1, "write");
		int got;
		while ((got = ring_next(c, &rr)) == 0)
			if (ring_wait(c, 2000000000) == 0)
				errx(1, "append %ld: no record within 2 s", i);
		int64_t t1 = mono_ns();
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

static const char watchdog_py[] =
    "import os, sys, time\n"
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

/* One run of a peer: n samples into lat[] (us). Returns false when the
 * peer cannot run. */
static bool lat_peer(const struct bench *b, enum peer p, int run, long n, double *lat)
{
	char dir[PATH_MAX + 32], path[PATH_MAX + 64];
	snprintf(dir, sizeof dir, "%s/peer%d-%d", b->dir, (int)p, run);
	if (mkdir(dir, 0755) < 0)
		err(1, "%s", dir);
	int fd = scid_new(dir, "ES.scid");
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
			execl("/usr/bin/python3", "python3", "-c", watchdog_py, dir, path, (char *)NULL);
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
	FILE *in = fdopen(pfd[0], "r");
	char line[64];
	if (!in || !fgets(line, sizeof line, in) || strcmp(line, "ready\n") != 0) {
		warnx("%s: did not start", peer_name[p]);
		stop_child(pid, peer_name[p]);
		return false;
	}
	uint8_t rec[SCID_RECORD_SIZE];
	unsigned seed = (unsigned)run * 104729u + (unsigned)p;
	for (long i = 0; i < n; i++) {
		if (p == PEER_POLL) /* a random phase against the poller's period */
			sleep_ns((int64_t)((double)(rand_r(&seed) % 1000) / 1000.0 * b->poll_period * 1e9));
		else
			sleep_ns(1000000 + (int64_t)(rand_r(&seed) % 2000) * 1000);
		make_rec(i, rec);
		int64_t t0 = mono_ns();
		if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec)
			err(1, "write");
		if (!fgets(line, sizeof line, in))
			errx(1, "%s: ended", peer_name[p]);
		lat[i] = (double)(atoll(line) - t0) / 1e3;
		if (lat[i] < 0)
			errx(1, "%s: a report before the append", peer_name[p]);
	}
	stop_child(pid, peer_name[p]);
	fclose(in);
	close(fd);
	return true;
}

/* ---- catch-up ---- */

static void catchup_file(const struct bench *b)
{
	int fd = scid_new(b->dir, "CU.scid");
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
	mdb_ring_consumer *c = r ? ring_consumer_open(r, "bench", RING_DURABLE, RING_FROM_START,
						      50000, &rc)
				 : NULL;
	if (!c)
		errx(1, "ring: %s", strerror(-rc));
	int64_t t_exec = mono_ns(), t_first = 0;
	pid_t pid = spawn_watch(b, dir, ring);
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
		"usage: bench_watch [--smoke] [-r runs] [-n appends] [--catch-up N] [--poll-samples N]\n"
		"                   [--dir DIR] [-v]\n"
		"  -r, --runs R          runs of each; medians are shown (default 5)\n"
		"  -n, --appends N       latency samples per run and reader (default 2000)\n"
		"      --catch-up N      records in the catch-up file (default 5000000)\n"
		"      --poll-samples N  samples of the 5 s poller (default 6; about 5 s each)\n"
		"      --dir DIR         where the files go (default /tmp)\n"
		"      --smoke           a quick correctness run for the test suite\n"
		"  -v, --verbose         per-run figures, mdb-watch's log\n");
	exit(out == stdout ? 0 : 2);
}

int main(int argc, char **argv)
{
	enum { OPT_SMOKE = 256, OPT_CATCHUP, OPT_POLL, OPT_DIR };
	static const struct option longopts[] = {
	    {"runs", required_argument, NULL, 'r'},
	    {"appends", required_argument, NULL, 'n'},
	    {"catch-up", required_argument, NULL, OPT_CATCHUP},
	    {"poll-samples", required_argument, NULL, OPT_POLL},
	    {"dir", required_argument, NULL, OPT_DIR},
	    {"smoke", no_argument, NULL, OPT_SMOKE},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench b = {.runs = 5, .appends = 2000, .catchup = 5000000, .poll_samples = 6,
			  .poll_period = 5.0};
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
	if (!mkdtemp(b.dir) || !mkdtemp(b.shm))
		err(1, "mkdtemp");
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
	double w50[MAX_RUNS], w99[MAX_RUNS], p50[2][MAX_RUNS], p99[2][MAX_RUNS];
	double cu[MAX_RUNS], cux[MAX_RUNS], cuc[MAX_RUNS], bare[MAX_RUNS];
	catchup_file(&b);
	for (int i = 0; i < b.runs; i++) {
		lat_watch(&b, i, lat);
		w50[i] = quantile(lat, b.appends, 0.5);
		w99[i] = quantile(lat, b.appends, 0.99);
		for (int p = PEER_BARE; p <= PEER_WATCHDOG; p++) {
			p50[p][i] = p99[p][i] = -1;
			if (p == PEER_WATCHDOG && !wd)
				continue;
			if (lat_peer(&b, (enum peer)p, i, b.appends, lat)) {
				p50[p][i] = quantile(lat, b.appends, 0.5);
				p99[p][i] = quantile(lat, b.appends, 0.99);
			}
		}
		cu[i] = catchup_watch(&b, i, &cux[i], &cuc[i]);
		bare[i] = catchup_bare(&b, i);
		if (b.verbose)
			fprintf(stderr,
				"run %d: mdb-watch p50 %.1f p99 %.1f us; bare p50 %.1f; watchdog p50 "
				"%.1f; catch-up %.2f M/s (from exec %.2f), bare %.2f M/s\n",
				i + 1, w50[i], w99[i], p50[PEER_BARE][i], p50[PEER_WATCHDOG][i],
				cu[i] / 1e6, cux[i] / 1e6, bare[i] / 1e6);
	}
	/* the poller: slow by design, so one run of a few samples */
	double *plat = malloc(sizeof *plat * (size_t)b.poll_samples);
	if (!plat || !lat_peer(&b, PEER_POLL, 0, b.poll_samples, plat))
		errx(1, "the poller did not run");
	double poll50 = quantile(plat, b.poll_samples, 0.5);

	double mw50 = median(w50, b.runs), mw99 = median(w99, b.runs);
	double mb50 = median(p50[PEER_BARE], b.runs), mb99 = median(p99[PEER_BARE], b.runs);
	double mcu = median(cu, b.runs), mcux = median(cux, b.runs), mbare = median(bare, b.runs);
	double mcuc = median(cuc, b.runs);
	printf("append -> record in ring, mdb-watch: p50 %.1f us, p99 %.1f us (medians of %d runs)\n",
	       mw50, mw99, b.runs);
	printf("bare inotify reader (read event, pread): p50 %.1f us, p99 %.1f us\n", mb50, mb99);
	if (wd) {
		double mp50 = median(p50[PEER_WATCHDOG], b.runs);
		double mp99 = median(p99[PEER_WATCHDOG], b.runs);
		printf("Python watchdog (python3-watchdog, inotify observer): p50 %.1f us, p99 %.1f us\n",
		       mp50, mp99);
		printf("ratio p50: watchdog / mdb-watch %.1fx\n", mp50 / mw50);
	} else {
		printf("Python watchdog: not measured: python3-watchdog is not installed "
		       "(apt-get install python3-watchdog; scripts/bench installs it)\n");
	}
	printf("%.1f s poller: p50 %.0f ms over %ld samples; ratio p50: poller / mdb-watch %.0fx\n",
	       b.poll_period, poll50 / 1e3, b.poll_samples, poll50 / mw50);
	printf("ratio p50: mdb-watch / bare inotify %.2f\n", mw50 / mb50);
	printf("catch-up, %ld records of an existing .scid into a ring: %.2f M records/s "
	       "(%.2f M/s from exec; %.2f M per second of mdb-watch CPU)\n",
	       b.catchup, mcu / 1e6, mcux / 1e6, mcuc / 1e6);
	printf("bare limit, one process pread + scid_encode + ring claim/commit: %.2f M records/s; "
	       "ratio mdb-watch / bare %.2f\n",
	       mbare / 1e6, mcu / mbare);
	if (!b.smoke)
		printf("targets: p50 < %.0f us %s; p99 < %.0f us %s; catch-up >= %.0f M/s %s\n",
		       TARGET_P50_US, mw50 < TARGET_P50_US ? "met" : "MISSED", TARGET_P99_US,
		       mw99 < TARGET_P99_US ? "met" : "MISSED", TARGET_CATCHUP_MPS,
		       mcu / 1e6 >= TARGET_CATCHUP_MPS ? "met" : "MISSED");
	free(lat);
	free(plat);
	rm_rf(b.dir);
	rm_rf(b.shm);
	return 0;
}

/* bench_feature.c - mdb-feature against full recomputation (DESIGN.md 6).
 *
 * Three figures, each the median of --runs runs:
 *   ring -> ring   the real mdb-feature process reading bars from a ring
 *                  filled beforehand and writing bars + feat records to
 *                  another ring (with the last-value cache), all indicators;
 *                  timed from its first output record to its last, as read
 *                  by a durable consumer here, so nothing can be skipped;
 *   kernel         ind_commit alone, in this process;
 *   recompute      the approach it replaces: every update recomputes all
 *                  indicators from scratch over the last 5,000 bars (the same
 *                  kernels, run over the window: O(window) per update).
 * The ratios are ring->ring and kernel over recompute, from the same run.
 * Bars are closed 60 s bars of 100 symbols in turn.
 */
#include "benchutil.h"
#include "indicators.h"
#include "record.h"
#include "ring.h"

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS       99
#define SYMBOLS	       100
#define WINDOW	       5000
#define TARGET_MBPS    2.0
#define RUN_TIMEOUT_NS (120LL * 1000000000LL)

struct opts {
	long bars;    /* ring -> ring bars per run */
	long kernel;  /* kernel bars per run */
	long updates; /* recompute updates per run */
	int runs;
	bool smoke;
	char feature[PATH_MAX]; /* the mdb-feature binary */
	char shm[64];
};

static _Noreturn void usage(FILE *out)
{
	fprintf(out, "usage: bench_feature [--smoke] [-n bars] [-r runs]\n"
		     "  -n, --bars N   bars through mdb-feature per run (default 1000000)\n"
		     "  -r, --runs R   runs; medians are shown (default 5)\n"
		     "      --smoke    a correctness check in a few seconds\n"
		     "  -h, --help     show this help\n");
	exit(out == stdout ? 0 : 2);
}

/* A deterministic random walk: bar i of symbol i % SYMBOLS. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / (double)(1ULL << 53);
}

static struct ind_bar make_bar(long i, double *price)
{
	double o = *price, c = o + rnd() - 0.5;
	struct ind_bar b = {.ts = 1700006400LL * 1000000000LL + (i / SYMBOLS) * 60000000000LL,
			    .o = o,
			    .c = c,
			    .h = fmax(o, c) + rnd() * 0.3,
			    .l = fmin(o, c) - rnd() * 0.3,
			    .v = floor(rnd() * 1000)};
	*price = c;
	return b;
}

/* CPU seconds (user + system) used so far by process pid, or -1. */
static double cpu_seconds(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	unsigned long ut, st;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* mdb-feature ring -> ring: bars/s, or < 0 on failure; *cpu_ns gets the
 * CPU time mdb-feature used per bar (robust to a busy machine). */
static double run_pipeline(const struct opts *o, int run, double *cpu_ns)
{
	char in[32], out[32];
	snprintf(in, sizeof in, "in%d", run);
	snprintf(out, sizeof out, "out%d", run);
	uint64_t cap = 1ULL << 27;
	while (cap < (uint64_t)o->bars * 128 && cap < (1ULL << 30))
		cap <<= 1;
	if (o->smoke)
		cap = 1ULL << 23;
	int rc;
	if ((rc = ring_create(in, cap, 0600)) < 0 || (rc = ring_create(out, 1ULL << 26, 0600)) < 0)
		errx(1, "ring_create: %s", strerror(-rc));
	/* a ring in service has been written around many times: its pages
	 * exist, and a write costs no page allocation. Give the fresh output
	 * ring its pages now, so the run measures that steady state rather than
	 * tmpfs zeroing 64 MiB inside mdb-feature (~15 % of its CPU otherwise). */
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s.ring", o->shm, out);
	int fd = open(path, O_RDWR);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || fallocate(fd, 0, 0, st.st_size) < 0)
		err(1, "%s", path);
	close(fd);
	mdb_ring *ri = ring_open(in, &rc), *ro = ring_open(out, &rc);
	if (!ri || !ro || ring_producer_begin(ri) < 0)
		errx(1, "ring_open: %s", strerror(-rc));
	static struct mdb_record r;
	uint8_t buf[MDB_REC_MAX_BYTES];
	double price[SYMBOLS];
	for (int s = 0; s < SYMBOLS; s++)
		price[s] = 100 + s;
	for (long i = 0; i < o->bars; i++) {
		struct ind_bar b = make_bar(i, &price[i % SYMBOLS]);
		record_init(&r, MDB_REC_BAR);
		snprintf(r.s, sizeof r.s, "S%03ld", i % SYMBOLS);
		r.ts = b.ts;
		r.bar = (struct mdb_bar){.iv = 60,
					 .o = b.o,
					 .h = b.h,
					 .l = b.l,
					 .c = b.c,
					 .v = b.v,
					 .n = 10,
					 .bv = NAN,
					 .av = NAN,
					 .f = MDB_F_FINAL};
		int n = record_encode(&r, buf, sizeof buf);
		if (n < 0 || ring_publish(ri, MDB_REC_BAR, buf, (uint32_t)n, 0) < 0)
			errx(1, "filling the input ring (%ld bars)", i);
	}
	ring_close(&ri);
	/* spin as a stage does by default (20 us), then sleep: a consumer
	 * spinning forever would take the core mdb-feature needs on a busy
	 * 2-core machine */
	mdb_ring_consumer *c =
	    ring_consumer_open(ro, "bench", RING_DURABLE, RING_FROM_START, 20000, &rc);
	if (!c)
		errx(1, "ring_consumer_open: %s", strerror(-rc));
	pid_t pid = fork();
	if (pid < 0)
		err(1, "fork");
	if (pid == 0) {
		char ia[40], oa[40];
		snprintf(ia, sizeof ia, "ring:%s", in);
		snprintf(oa, sizeof oa, "ring:%s", out);
		execl(o->feature, "mdb-feature", "-i", ia, "--from", "start", "-o", oa, "--lvc",
		      "bench", "--name", "feat", (char *)NULL);
		_exit(127);
	}
	long want = 2 * o->bars, got = 0, feats = 0;
	int64_t t0 = 0, t1 = 0, deadline = mono_ns() + RUN_TIMEOUT_NS;
	struct ring_rec rec;
	while (got < want) {
		rc = ring_next(c, &rec);
		if (rc == 1) {
			if (!got)
				t0 = mono_ns();
			got++;
			feats += rec.type == MDB_REC_FEAT;
			continue;
		}
		if (mono_ns() > deadline || waitpid(pid, NULL, WNOHANG) == pid)
			break;
		ring_wait(c, 10000000);
	}
	t1 = mono_ns();
	double cpu = cpu_seconds(pid);
	*cpu_ns = cpu < 0 ? NAN : cpu * 1e9 / (double)o->bars;
	/* SIGTERM until it goes: one that lands just before mdb-feature goes
	 * to sleep is only seen when the next record wakes it */
	do
		kill(pid, SIGTERM);
	while (usleep(50000), waitpid(pid, NULL, WNOHANG) == 0);
	ring_consumer_close(&c);
	ring_close(&ro);
	ring_unlink(in);
	ring_unlink(out);
	if (got != want || feats != o->bars) {
		warnx("ring -> ring: %ld of %ld records, %ld feats of %ld", got, want, feats,
		      o->bars);
		return -1;
	}
	return o->bars / ((t1 - t0) / 1e9);
}

/* ind_commit alone: bars/s. */
static double run_kernel(const struct opts *o, double *sink)
{
	struct ind_params p;
	ind_params_default(&p);
	ind_series *s[SYMBOLS];
	double price[SYMBOLS];
	for (int i = 0; i < SYMBOLS; i++) {
		s[i] = ind_new(&p);
		price[i] = 100 + i;
	}
	/* the bars are made beforehand, so only the kernel is timed */
	struct ind_bar *bars = malloc(sizeof *bars * (size_t)o->kernel);
	if (!bars)
		err(1, "malloc");
	for (long i = 0; i < o->kernel; i++)
		bars[i] = make_bar(i, &price[i % SYMBOLS]);
	struct ind_values v;
	int64_t t0 = mono_ns();
	for (long i = 0; i < o->kernel; i++) {
		ind_commit(s[i % SYMBOLS], &bars[i], &v);
		*sink += v.rsi;
	}
	int64_t t1 = mono_ns();
	for (int i = 0; i < SYMBOLS; i++)
		ind_free(&s[i]);
	free(bars);
	return o->kernel / ((t1 - t0) / 1e9);
}

/* Full recompute over the last WINDOW bars per update: updates/s. */
static double run_recompute(const struct opts *o, double *sink)
{
	struct ind_params p;
	ind_params_default(&p);
	long n = WINDOW + o->updates;
	struct ind_bar *bars = malloc(sizeof *bars * (size_t)n);
	if (!bars)
		err(1, "malloc");
	double price = 100;
	for (long i = 0; i < n; i++)
		bars[i] = make_bar(i * SYMBOLS, &price);
	struct ind_values v;
	int64_t t0 = mono_ns();
	for (long u = 0; u < o->updates; u++) {
		ind_series *s = ind_new(&p); /* from scratch, as the old bridges did */
		for (long i = u + 1; i <= u + WINDOW; i++)
			ind_commit(s, &bars[i], &v);
		*sink += v.rsi;
		ind_free(&s);
	}
	int64_t t1 = mono_ns();
	free(bars);
	return o->updates / ((t1 - t0) / 1e9);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"bars", required_argument, NULL, 'n'},
	    {"runs", required_argument, NULL, 'r'},
	    {"smoke", no_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o = {.bars = 1000000, .kernel = 10000000, .updates = 2000, .runs = 5};
	int opt;
	while ((opt = getopt_long(argc, argv, "n:r:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			o.bars = atol(optarg);
			if (o.bars < 1000 || o.bars > 5000000)
				errx(2, "-n: 1000 to 5000000");
			break;
		case 'r':
			o.runs = atoi(optarg);
			if (o.runs < 1 || o.runs > MAX_RUNS)
				errx(2, "-r: 1 to %d", MAX_RUNS);
			break;
		case 's':
			o.smoke = true;
			break;
		case 'h':
			usage(stdout);
		default:
			usage(stderr);
		}
	}
	if (o.smoke) {
		o.bars = 20000;
		o.kernel = 200000;
		o.updates = 50;
		o.runs = 1;
	}
	bench_tool(o.feature, sizeof o.feature, "mdb-feature");
	if (access(o.feature, X_OK) < 0)
		err(1, "%s", o.feature);
	snprintf(o.shm, sizeof o.shm, "/dev/shm/mdb-bench-feature.XXXXXX");
	bench_tmpdir(o.shm);
	setenv("MDB_SHM_DIR", o.shm, 1);
	signal(SIGPIPE, SIG_IGN);

	double pipe[MAX_RUNS], cpu[MAX_RUNS], kern[MAX_RUNS], rec[MAX_RUNS], rp[MAX_RUNS],
	    rk[MAX_RUNS];
	double sink = 0;
	int status = 0;
	for (int i = 0; i < o.runs; i++) {
		pipe[i] = run_pipeline(&o, i, &cpu[i]);
		if (pipe[i] < 0) {
			status = 1;
			break;
		}
		kern[i] = run_kernel(&o, &sink);
		rec[i] = run_recompute(&o, &sink);
		rp[i] = pipe[i] / rec[i];
		rk[i] = kern[i] / rec[i];
		fprintf(stderr,
			"run %d: ring->ring %.2f M bars/s (%.0f ns CPU/bar), kernel %.1f M bars/s, "
			"recompute %.0f updates/s\n",
			i + 1, pipe[i] / 1e6, cpu[i], kern[i] / 1e6, rec[i]);
	}
	bench_rmtmp(o.shm);
	if (status)
		return status;
	double mp = median(pipe, o.runs), mk = median(kern, o.runs), mr = median(rec, o.runs);
	printf("bench_feature: %ld bars of %d symbols per run, all indicators, medians of %d "
	       "run%s%s\n",
	       o.bars, SYMBOLS, o.runs, o.runs > 1 ? "s" : "",
	       o.smoke ? " (smoke: tiny runs)" : "");
	printf("  mdb-feature ring -> ring          %8.2f M bars/s   (target >= %.0f M/s: %s)\n",
	       mp / 1e6, TARGET_MBPS, mp >= TARGET_MBPS * 1e6 ? "met" : "NOT met");
	printf("  mdb-feature CPU per bar           %8.0f ns        (%.2f M bars per CPU-second)\n",
	       median(cpu, o.runs), 1e3 / median(cpu, o.runs));
	printf("  indicator kernel alone            %8.2f M bars/s   (%.0f ns/bar)\n", mk / 1e6,
	       1e9 / mk);
	printf("  full recompute, %d-bar window  %8.0f updates/s (%.0f us/update)\n", WINDOW, mr,
	       1e6 / mr);
	printf("  ratio ring -> ring / recompute    %8.0f x\n", median(rp, o.runs));
	printf("  ratio kernel / recompute          %8.0f x\n", median(rk, o.runs));
	if (sink == 12345.678)
		printf("%g\n", sink); /* keep the computations */
	return 0;
}

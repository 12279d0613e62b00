/* bench_e2e.c - the assembled pipeline, tick appended to a .scid file until
 * a WebSocket client holds the delta (DESIGN.md section 6), and the CPU of
 * the whole pipeline when no data arrives.
 *
 * The real tools run joined by rings in a private MDB_SHM_DIR, as
 * scripts/demo runs them:
 *   mdb-watch DIR -> ring:ticks -> mdb-validate -I 1s,1m -> ring:bars
 *   -> mdb-feature (last-value cache) -> ring:feat -> mdb-ws -l 0
 * This process appends ticks to DIR/ES.scid at a steady rate (one write() of
 * 40 bytes each, as Sierra Chart does) and holds a WebSocket client on
 * /ws/live_data/ES?iv=1. Tick k trades at price P0 + k/4, so the close
 * carried by each delta names the tick it comes from. The latency of tick k
 * runs from just before its write() to the client's read of the frame
 * whose close is tick k's price, or a later tick's (the gateway merges
 * changes that come faster than it sends them: a later close means the
 * client holds tick k's change too; such ticks are counted as "merged").
 * p50/p99/max per run, and per stage the CPU it used (utime + stime of all
 * its threads, /proc/PID/stat) over the measured ticks, per tick.
 *
 * Each run measures up to three configurations of mdb-watch (--state):
 *   disk   --state in the scratch directory on disk, as scripts/demo and the
 *          systemd units run it: an fdatasync of the state file per chunk;
 *   tmpfs  --state in the ring directory: a rename per chunk, no sync;
 *   none   no --state: the pipeline alone.
 *
 * The peer, in the same run: the kind of bridge mdb replaces, in Python
 * (tests/bench/e2e_peer.py): a web server serves the .scid file, a bridge
 * GETs it four times a second and pushes every new record over
 * WebSocket (python3-websockets); same appender, same client, fewer ticks.
 *
 * Idle: after the last run, the pipeline (and the peer) are left with no data
 * arriving for --idle seconds (default 60); the CPU every stage used over
 * that time is printed, in ms and in % of one CPU.
 *
 * --smoke: the test suite's run: a few hundred ticks, state on tmpfs (a
 * busy disk's sync times are not the pipeline's), a few seconds idle; every
 * tick must reach the client, the figures must be sane (ordered, mdb's p50
 * below the poller's, the idle pipeline under 10 % of a CPU), every stage
 * must exit 0. Targets are reported, not judged.
 */
#include "benchutil.h"
#include "benchws.h"
#include "scid.h"

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS      15
#define NSTAGE	      4
#define MAX_LIVE      (2 * NSTAGE)
#define P0	      1000.0 /* the price of tick 0 */
#define PSTEP	      0.25   /* one tick more, a quarter point higher */
#define TARGET_P99_US 2000.0

enum { ST_WATCH, ST_VALIDATE, ST_FEATURE, ST_WS };
static const char *const stage_name[NSTAGE] = {"mdb-watch", "mdb-validate", "mdb-feature",
					       "mdb-ws"};

static struct {
	int runs;
	long ticks, peer_ticks;
	double rate, idle;
	bool smoke, sanitize;
	const char *build, *src;
	const char *state[3]; /* where mdb-watch keeps --state: disk, tmpfs, none */
	int nstate;
	char dir[PATH_MAX];   /* scratch: .scid files and logs */
	char shm[PATH_MAX];   /* MDB_SHM_DIR */
	pid_t live[MAX_LIVE]; /* children to kill on the way out */
} B;

/* One pipeline (ours, or the peer: one process) and its client. */
struct session {
	const char *what;
	int fd;		   /* the .scid file, O_APPEND */
	pid_t pid[NSTAGE]; /* ours: the four stages; the peer: pid[0] */
	int npid;
	struct bws_conn *ws;
	pthread_t reader;
	int64_t *t_write, *t_recv; /* per tick, CLOCK_MONOTONIC ns; t_recv 0: not yet */
	long cap;		   /* ticks the arrays hold */
	_Atomic long seen;	   /* highest tick whose close the client has read, -1 */
	_Atomic bool stop;
	_Atomic long exact;   /* frames that brought the client a new tick */
	_Atomic long resyncs; /* resync notices from the server */
	int64_t last_dt;      /* SCDateTimeMS of the last tick appended */
};

struct figures {
	double p50, p99, max;	 /* us */
	double cpu_tick[NSTAGE]; /* us of CPU per tick */
	long merged;
};

/* CPU of pid in ns, 0 once it is gone. */
static int64_t cpu_ns0(pid_t pid)
{
	int64_t ns = bench_cpu_ns(pid);
	return ns < 0 ? 0 : ns;
}

/* Run argv with stdin /dev/null, stdout and stderr appended to log. */
static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();
	if (pid < 0)
		err(1, "fork");
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || in < 0)
			_exit(127);
		dup2(in, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; i < MAX_LIVE; i++)
		if (!B.live[i]) {
			B.live[i] = pid;
			break;
		}
	return pid;
}

/* Stop a child with SIGTERM; returns its exit status (-1: killed). */
static int stop(pid_t pid)
{
	int status;
	kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) < 0)
		err(1, "waitpid");
	for (int i = 0; i < MAX_LIVE; i++)
		if (B.live[i] == pid)
			B.live[i] = 0;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void print_log(const char *log)
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof cmd, "tail -n 5 '%s' >&2", log);
	(void)!system(cmd);
}

/* Wait until log holds want; returns the number after it. */
static int wait_log(const char *log, const char *want, pid_t pid)
{
	int64_t end = mono_ns() + 30 * NS_PER_SEC;
	char buf[8192];
	while (mono_ns() < end) {
		FILE *f = fopen(log, "r");
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		if (f)
			fclose(f);
		buf[n] = 0;
		char *w = strstr(buf, want);
		if (w)
			return atoi(w + strlen(want));
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			print_log(log);
			errx(1, "%s ended before saying '%s'", log, want);
		}
		usleep(10000);
	}
	print_log(log);
	errx(1, "%s: no '%s' within 30 s", log, want);
}

/* The client's view of one text frame: the close it carries names a tick. */
static void on_frame(void *arg, const uint8_t *p, size_t n)
{
	struct session *s = arg;
	int64_t now = mono_ns();
	if (memmem(p, n, "\"type\":\"resync\"", 15))
		atomic_fetch_add_explicit(&s->resyncs, 1, memory_order_relaxed);
	const char *c = memmem(p, n, "\"c\":", 4);
	if (!c)
		return;
	double price = strtod(c + 4, NULL);
	long k = lround((price - P0) / PSTEP);
	long seen = atomic_load_explicit(&s->seen, memory_order_relaxed);
	if (k <= seen || k >= s->cap)
		return;
	for (long j = seen + 1; j <= k; j++)
		s->t_recv[j] = now;
	atomic_fetch_add_explicit(&s->exact, 1, memory_order_relaxed);
	/* release: t_recv[] above is complete for every tick up to k; pairs with
	 * the acquire loads in wait_seen() */
	atomic_store_explicit(&s->seen, k, memory_order_release);
}

static void *reader_main(void *arg)
{
	struct session *s = arg;
	struct bws_conn *c = s->ws;
	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			break;
		}
		c->len += (size_t)r;
		if (!bws_frames(c, on_frame, s))
			break;
	}
	return NULL;
}

/* Until the client holds tick k, or the deadline; true when it does. */
static bool wait_seen(struct session *s, long k, int64_t deadline)
{
	/* acquire: pairs with the release store in on_frame() */
	while (atomic_load_explicit(&s->seen, memory_order_acquire) < k) {
		if (mono_ns() > deadline)
			return false;
		usleep(200);
	}
	return true;
}

/* Append tick k: price P0 + k * PSTEP, a unique, growing time stamp. */
static void append_tick(struct session *s, long k)
{
	int64_t dt = scid_from_unix_ns(wall_ns());
	if (dt <= s->last_dt)
		dt = s->last_dt + 1;
	s->last_dt = dt;
	float p = (float)(P0 + (double)k * PSTEP);
	struct scid_record r = {
	    .dt = dt,
	    .high = p + 0.25f,
	    .low = p - 0.25f,
	    .close = p,
	    .num_trades = 1,
	    .total_volume = 1 + (uint32_t)(k % 5),
	    .ask_volume = 1 + (uint32_t)(k % 5),
	};
	uint8_t buf[SCID_RECORD_SIZE];
	scid_record_store(buf, &r);
	/* the clock just before write(): taken after it returns, a reschedule
	 * there (the write wakes mdb-watch) could put it after the delivery */
	s->t_write[k] = mono_ns();
	if (write(s->fd, buf, sizeof buf) != (ssize_t)sizeof buf)
		err(1, "append");
}

/* A fresh dir/ES.scid holding its header; its fd, appending. */
static int scid_file(const char *dir)
{
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		err(1, "%s", dir);
	return bench_scid_new(dir, "ES.scid");
}

static void session_init(struct session *s, const char *what, long cap)
{
	memset(s, 0, sizeof *s);
	s->what = what;
	s->cap = cap;
	s->t_write = calloc((size_t)cap, sizeof *s->t_write);
	s->t_recv = calloc((size_t)cap, sizeof *s->t_recv);
	s->ws = malloc(sizeof *s->ws);
	if (!s->t_write || !s->t_recv || !s->ws)
		err(1, "malloc");
	atomic_init(&s->seen, -1);
	atomic_init(&s->stop, false);
	atomic_init(&s->exact, 0);
	atomic_init(&s->resyncs, 0);
}

/* Start the four stages in B.dir/NAME, mdb-watch's state where state says,
 * and connect the client. */
static void start_ours(struct session *s, const char *name, const char *where)
{
	char dir[PATH_MAX + 96], state[PATH_MAX + 112], exe[NSTAGE][PATH_MAX],
	    log[NSTAGE][PATH_MAX + 128];
	snprintf(dir, sizeof dir, "%s/%s", B.dir, name);
	s->fd = scid_file(dir);
	if (strcmp(where, "disk") == 0)
		snprintf(state, sizeof state, "%s/watch.state", dir);
	else
		snprintf(state, sizeof state, "%s/watch.state", getenv("MDB_SHM_DIR"));
	for (int i = 0; i < NSTAGE; i++) {
		snprintf(exe[i], sizeof exe[i], "%s/tools/%s", B.build, stage_name[i]);
		snprintf(log[i], sizeof log[i], "%s/%s.log", dir, stage_name[i]);
	}
	/* fresh rings and cache per run; consumers from the start, as the demo */
	char *const watch_state[] = {exe[0], "-o", "ring:ticks", "--state", state, dir, NULL};
	char *const watch_bare[] = {exe[0], "-o", "ring:ticks", dir, NULL};
	char *const *watch = strcmp(where, "none") == 0 ? watch_bare : watch_state;
	char *const validate[] = {exe[1], "-i",	   "ring:ticks", "-o",	  "ring:bars",
				  "-I",	  "1s,1m", "--from",	 "start", NULL};
	char *const feature[] = {exe[2],      "-i",	"ring:bars", "-o",
				 "ring:feat", "--from", "start",     NULL};
	char *const ws[] = {exe[3], "-i", "ring:feat", "-l", "0", NULL};
	char *const *argv[NSTAGE] = {watch, validate, feature, ws};
	for (int i = 0; i < NSTAGE; i++)
		s->pid[i] = spawn(argv[i], log[i]);
	s->npid = NSTAGE;
	int port = wait_log(log[ST_WS], "listening on 127.0.0.1:", s->pid[ST_WS]);
	bws_connect(s->ws, port, "/ws/live_data/ES?iv=1");
}

/* Start the Python peer on B.dir/NAME/ES.scid, connect the client. */
static void start_peer(struct session *s, const char *name)
{
	char dir[PATH_MAX + 96], path[PATH_MAX + 112], log[PATH_MAX + 112], py[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/%s", B.dir, name);
	s->fd = scid_file(dir);
	snprintf(path, sizeof path, "%s/ES.scid", dir);
	snprintf(log, sizeof log, "%s/peer.log", dir);
	snprintf(py, sizeof py, "%s/tests/bench/e2e_peer.py", B.src);
	char *const argv[] = {"/usr/bin/python3", py, path, NULL};
	s->pid[0] = spawn(argv, log);
	s->npid = 1;
	int port = wait_log(log, "ready ", s->pid[0]);
	bws_connect(s->ws, port, "/ws/live_data/ES");
}

/* Warm up: a tick every 20 ms until the client holds one. Returns the
 * index of the next tick. */
static long warm_up(struct session *s)
{
	long k = 0;
	int64_t end = mono_ns() + 30 * NS_PER_SEC;
	for (;;) {
		append_tick(s, k++);
		if (wait_seen(s, 0, mono_ns() + 20000000))
			break;
		if (mono_ns() > end || k >= s->cap / 4)
			errx(1, "%s: no tick reached the client in 30 s", s->what);
	}
	/* let the last warm-up ticks through */
	if (!wait_seen(s, k - 1, mono_ns() + 10 * NS_PER_SEC))
		errx(1, "%s: warm-up ticks lost", s->what);
	usleep(200000);
	return k;
}

/* n ticks from k0 at rate/s; fills f. */
static void measure(struct session *s, long k0, long n, struct figures *f)
{
	int64_t cpu0[NSTAGE], cpu1[NSTAGE];
	for (int i = 0; i < s->npid; i++)
		cpu0[i] = cpu_ns0(s->pid[i]);
	int64_t t0 = mono_ns();
	for (long i = 0; i < n; i++) {
		bench_sleep_until(t0 + (int64_t)((double)i * 1e9 / B.rate));
		append_tick(s, k0 + i);
	}
	int64_t grace = B.sanitize ? 30 : 10;
	if (!wait_seen(s, k0 + n - 1, mono_ns() + grace * NS_PER_SEC))
		errx(1, "%s: %ld of %ld ticks reached the client within %lld s", s->what,
		     atomic_load(&s->seen) - k0 + 1, n, (long long)grace);
	for (int i = 0; i < s->npid; i++)
		cpu1[i] = cpu_ns0(s->pid[i]);
	double *lat = malloc((size_t)n * sizeof *lat);
	if (!lat)
		err(1, "malloc");
	for (long i = 0; i < n; i++) {
		if (s->t_recv[k0 + i] < s->t_write[k0 + i])
			errx(1, "%s: tick %ld held before it was written", s->what, k0 + i);
		lat[i] = (double)(s->t_recv[k0 + i] - s->t_write[k0 + i]) / 1e3;
	}
	qsort(lat, (size_t)n, sizeof *lat, cmp_double);
	f->p50 = lat[n / 2];
	f->p99 = lat[(long)((double)(n - 1) * 0.99 + 0.5)];
	f->max = lat[n - 1];
	free(lat);
	for (int i = 0; i < NSTAGE; i++)
		f->cpu_tick[i] = i < s->npid ? (double)(cpu1[i] - cpu0[i]) / 1e3 / (double)n : 0;
}

static void session_end(struct session *s, bool check_exit)
{
	atomic_store(&s->stop, true);
	shutdown(s->ws->fd, SHUT_RDWR);
	pthread_join(s->reader, NULL);
	close(s->ws->fd);
	/* the producer end first, as the data flows */
	for (int i = 0; i < s->npid; i++) {
		int st = stop(s->pid[i]);
		if (check_exit && st != 0)
			errx(1, "%s exited %d", s->npid > 1 ? stage_name[i] : s->what, st);
	}
	close(s->fd);
	free(s->t_write);
	free(s->t_recv);
	free(s->ws);
}

/* The idle figure: no data for B.idle seconds; CPU per stage. */
static void idle(struct session *ours, struct session *peer)
{
	int64_t c0[NSTAGE + 1], c1[NSTAGE + 1];
	usleep(500000); /* what was in flight has settled */
	for (int i = 0; i < NSTAGE; i++)
		c0[i] = cpu_ns0(ours->pid[i]);
	c0[NSTAGE] = peer ? cpu_ns0(peer->pid[0]) : 0;
	int64_t t0 = mono_ns();
	bench_sleep_until(t0 + (int64_t)(B.idle * 1e9));
	double secs = (double)(mono_ns() - t0) / 1e9;
	for (int i = 0; i < NSTAGE; i++)
		c1[i] = cpu_ns0(ours->pid[i]);
	c1[NSTAGE] = peer ? cpu_ns0(peer->pid[0]) : 0;
	double total = 0;
	printf("idle, no data for %.0f s (CPU from /proc/PID/stat, %ld ms resolution):\n", secs,
	       1000 / sysconf(_SC_CLK_TCK));
	printf("  ");
	for (int i = 0; i < NSTAGE; i++) {
		double ms = (double)(c1[i] - c0[i]) / 1e6;
		total += ms;
		printf("%s %.0f ms  ", stage_name[i], ms);
	}
	printf("\n  pipeline total: %.0f ms = %.3f %% of one CPU\n", total, total / 10 / secs);
	double pms = (double)(c1[NSTAGE] - c0[NSTAGE]) / 1e6;
	if (peer)
		printf(
		    "  python bridge:  %.0f ms = %.3f %% of one CPU (polling 4 times a second)\n",
		    pms, pms / 10 / secs);
	if (B.smoke && total / 10 / secs > 10)
		errx(1, "smoke: the idle pipeline used %.1f %% of a CPU", total / 10 / secs);
}

static bool have_peer(void)
{
	char cmd[PATH_MAX + 96];
	snprintf(cmd, sizeof cmd,
		 "/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1 && test -f "
		 "'%s/tests/bench/e2e_peer.py'",
		 B.src);
	return system(cmd) == 0;
}

static void cleanup(void)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (B.live[i] > 0) {
			kill(B.live[i], SIGKILL);
			waitpid(B.live[i], NULL, 0);
		}
	if (B.dir[0])
		rm_rf(B.dir);
	if (B.shm[0])
		rm_rf(B.shm);
}

static void usage_to(FILE *out, int status)
{
	fprintf(out,
		"usage: bench_e2e [--smoke] [--runs N] [--ticks N] [--rate TICKS_PER_S] "
		"[--peer-ticks N] [--idle SECONDS] [--state disk|tmpfs|none]\n"
		"  --smoke          one short run (the test suite's)\n"
		"  --runs N         runs of each configuration (default 3)\n"
		"  --ticks N        ticks timed per run (default 5000)\n"
		"  --rate R         ticks appended per second (default 1000)\n"
		"  --peer-ticks N   ticks timed through the Python bridge (default 1000)\n"
		"  --idle S         seconds the idle pipeline is watched (default 60; 0: not)\n"
		"  --state LIST     mdb-watch's state file: disk, tmpfs, none, comma-separated\n"
		"                   (default none,tmpfs,disk)\n"
		"  --help           this text\n");
	exit(status);
}

static void usage(void)
{
	usage_to(stderr, 2);
}

/* A --state list: disk, tmpfs, none, comma-separated. */
static void parse_states(char *list)
{
	B.nstate = 0;
	for (char *w = strtok(list, ","); w; w = strtok(NULL, ",")) {
		if ((strcmp(w, "disk") && strcmp(w, "tmpfs") && strcmp(w, "none")) || B.nstate == 3)
			usage();
		B.state[B.nstate++] = w;
	}
	if (!B.nstate)
		usage();
}

/* Run the pipeline with state where, then (when peer) the peer; fills f
 * and pf. When keep, the sessions are left running in *so and *sp. */
static void one_run(int run, const char *where, bool peer, struct figures *f, struct figures *pf,
		    struct session *so, struct session *sp, bool keep)
{
	char name[64], shm[PATH_MAX + 64];
	snprintf(name, sizeof name, "r%d-%s", run, where);
	/* fresh rings and cache each time */
	snprintf(shm, sizeof shm, "%s/%s", B.shm, name);
	if (mkdir(shm, 0700) < 0)
		err(1, "%s", shm);
	setenv("MDB_SHM_DIR", shm, 1);
	session_init(so, "mdb", B.ticks + 2000);
	start_ours(so, name, where);
	pthread_create(&so->reader, NULL, reader_main, so);
	long k0 = warm_up(so);
	atomic_store(&so->exact, 0);
	measure(so, k0, B.ticks, f);
	f->merged = B.ticks - atomic_load(&so->exact);
	if (atomic_load(&so->resyncs))
		fprintf(stderr, "  (mdb-ws resynced the client %ld times)\n",
			atomic_load(&so->resyncs));
	printf("  run %d, mdb-watch state %-5s: mdb p50 %6.0f us p99 %6.0f us max %6.0f us (%ld of "
	       "%ld merged)",
	       run + 1, where, f->p50, f->p99, f->max, f->merged, B.ticks);
	if (peer) {
		char pname[80];
		snprintf(pname, sizeof pname, "%s-peer", name);
		session_init(sp, "python bridge", B.peer_ticks + 2000);
		start_peer(sp, pname);
		pthread_create(&sp->reader, NULL, reader_main, sp);
		long p0 = warm_up(sp);
		measure(sp, p0, B.peer_ticks, pf);
		printf(" | python bridge p50 %.0f ms p99 %.0f ms", pf->p50 / 1e3, pf->p99 / 1e3);
	}
	printf("\n");
	fflush(stdout);
	if (keep)
		return;
	session_end(so, B.smoke);
	if (peer)
		session_end(sp, false);
}

/* The medians of one configuration (and of the peer beside it). */
static void report(const char *where, const struct figures *f, const struct figures *pf, bool peer)
{
	double v[3 + NSTAGE][MAX_RUNS], w[3][MAX_RUNS], m[3 + NSTAGE], pm[3] = {0};
	for (int r = 0; r < B.runs; r++) {
		v[0][r] = f[r].p50, v[1][r] = f[r].p99, v[2][r] = f[r].max;
		for (int i = 0; i < NSTAGE; i++)
			v[3 + i][r] = f[r].cpu_tick[i];
		w[0][r] = pf[r].p50, w[1][r] = pf[r].p99, w[2][r] = pf[r].max;
	}
	for (int k = 0; k < 3 + NSTAGE; k++)
		m[k] = median(v[k], B.runs);
	for (int k = 0; peer && k < 3; k++)
		pm[k] = median(w[k], B.runs);
	printf("mdb-watch state %s (%s), medians over %d run%s:\n", where,
	       strcmp(where, "disk") == 0    ? "on disk, fdatasync per chunk: as deployed"
	       : strcmp(where, "tmpfs") == 0 ? "on tmpfs: rename per chunk, no sync"
					     : "no --state: the pipeline alone",
	       B.runs, B.runs > 1 ? "s" : "");
	printf("  mdb:           p50 %8.0f us  p99 %8.0f us  max %8.0f us  (target p99 < %.0f us: "
	       "%s)\n",
	       m[0], m[1], m[2], TARGET_P99_US, m[1] < TARGET_P99_US ? "met" : "missed");
	if (peer) {
		printf("  python bridge: p50 %8.0f us  p99 %8.0f us  max %8.0f us  (HTTP poll at 4 "
		       "Hz -> websockets)\n",
		       pm[0], pm[1], pm[2]);
		printf("  ratio:         p50 %.0fx, p99 %.0fx lower with mdb\n", pm[0] / m[0],
		       pm[1] / m[1]);
	} else {
		printf(
		    "  python bridge: not run (needs /usr/bin/python3 with python3-websockets)\n");
	}
	double total = 0;
	printf("  CPU per tick:  ");
	for (int i = 0; i < NSTAGE; i++) {
		printf("%s %.0f us  ", stage_name[i], m[3 + i]);
		total += m[3 + i];
	}
	printf("total %.0f us\n", total);
	if (B.smoke) {
		/* sane: every tick arrived (measure() fails otherwise), latencies
		 * ordered and bounded, and an event-driven pipeline ahead of a
		 * 4 Hz poller */
		if (!(m[0] > 0 && m[0] <= m[1] && m[1] <= m[2] && m[2] < 30e6))
			errx(1, "smoke: latencies not sane");
		if (peer && !(m[0] < pm[0]))
			errx(1, "smoke: mdb p50 %.0f us not below the 4 Hz poller's %.0f us", m[0],
			     pm[0]);
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"smoke", no_argument, NULL, 's'},
					   {"runs", required_argument, NULL, 'r'},
					   {"ticks", required_argument, NULL, 'n'},
					   {"rate", required_argument, NULL, 'R'},
					   {"peer-ticks", required_argument, NULL, 'p'},
					   {"idle", required_argument, NULL, 'i'},
					   {"state", required_argument, NULL, 'S'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	B.runs = 3, B.ticks = 5000, B.peer_ticks = 1000, B.rate = 1000, B.idle = 60;
	bool set_idle = false;
	char *states = NULL;
	int o;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 's':
			B.smoke = true;
			break;
		case 'r':
			B.runs = atoi(optarg);
			break;
		case 'n':
			B.ticks = atol(optarg);
			break;
		case 'R':
			B.rate = atof(optarg);
			break;
		case 'p':
			B.peer_ticks = atol(optarg);
			break;
		case 'i':
			B.idle = atof(optarg), set_idle = true;
			break;
		case 'S':
			states = optarg;
			break;
		case 'h':
			usage_to(stdout, 0);
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	const char *san = getenv("MDB_SANITIZE");
	B.sanitize = san && *san;
	char deflt[] = "none,tmpfs,disk", smoke_states[] = "tmpfs";
	if (B.smoke) {
		B.runs = 1, B.ticks = B.sanitize ? 200 : 400, B.peer_ticks = 100;
		if (!set_idle)
			B.idle = 3;
	}
	parse_states(states ? states : B.smoke ? smoke_states : deflt);
	if (B.runs < 1 || B.runs > MAX_RUNS || B.ticks < 10 || B.peer_ticks < 10 || B.rate <= 0 ||
	    B.idle < 0)
		usage();
	B.build = bench_build_dir();
	B.src = getenv("MDB_SOURCE_DIR") ? getenv("MDB_SOURCE_DIR") : MDB_SOURCE_ROOT;
	signal(SIGPIPE, SIG_IGN);
	snprintf(B.dir, sizeof B.dir, "/tmp/mdb-benche2e.XXXXXX");
	snprintf(B.shm, sizeof B.shm, "/dev/shm/mdb-benche2e.XXXXXX");
	if (!mkdtemp(B.dir) || !mkdtemp(B.shm))
		err(1, "mkdtemp");
	atexit(cleanup);
	bool peer_ok = have_peer();

	printf("tick appended to ES.scid -> WebSocket client holds the delta:\n"
	       "mdb-watch -> mdb-validate -I 1s,1m -> mdb-feature -> mdb-ws, joined by rings;\n"
	       "%ld ticks at %.0f/s per run, %d run%s; the peer (first configuration): %ld ticks\n",
	       B.ticks, B.rate, B.runs, B.runs > 1 ? "s" : "", B.peer_ticks);
	static struct figures ours[3][MAX_RUNS], peer[MAX_RUNS];
	struct session so, sp;
	bool idle_peer = false;
	for (int run = 0; run < B.runs; run++)
		for (int c = 0; c < B.nstate; c++) {
			/* the idle figure is taken from the last configuration of
			 * the last run, the peer beside it */
			bool keep = B.idle > 0 && run == B.runs - 1 && c == B.nstate - 1;
			bool with_peer = peer_ok && (c == 0 || keep);
			struct figures scratch;
			one_run(run, B.state[c], with_peer, &ours[c][run],
				c == 0 ? &peer[run] : &scratch, &so, &sp, keep);
			idle_peer = keep && with_peer;
		}
	for (int c = 0; c < B.nstate; c++)
		report(B.state[c], ours[c], peer, peer_ok);
	if (B.idle > 0) {
		idle(&so, idle_peer ? &sp : NULL);
		session_end(&so, B.smoke);
		if (idle_peer)
			session_end(&sp, false);
	}
	return 0;
}

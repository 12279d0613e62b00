/* bench_ring.c - the ring against ZeroMQ PUB/SUB over ipc:// (DESIGN.md 6).
 *
 * One producer process and 1, 2 and 4 consumer processes move 64-byte
 * records; consumers spin (spin_ns -1) or sleep (spin_ns 0). Each scenario
 * runs the ring and then ZeroMQ, --runs times in turn, and prints the medians
 * side by side with their ratio: the machine is shared and noisy.
 *
 * Throughput: the producer sends --records records as fast as it can; time
 * runs from its first send to the last consumer's last receive, and
 * records/s is per consumer stream. Latency: the producer paces records
 * (busy-waiting when consumers spin, clock_nanosleep when they sleep, so a
 * sleeping consumer really sleeps between records) and stamps each with
 * CLOCK_MONOTONIC just before sending; each consumer keeps now - stamp, and
 * the percentiles are over all consumers' samples of a run.
 *
 * Ring consumers are durable, so nothing may be lost: every consumer checks
 * that sequence numbers are consecutive, and a lost or misordered ring record
 * fails the benchmark. ZeroMQ runs with unlimited high-water marks after a
 * slow-joiner handshake (hellos until every subscriber has seen one); a
 * ZeroMQ loss is reported, not failed. ZeroMQ subscribers always block in
 * zmq_recv(): a subscriber polling with ZMQ_DONTWAIT starves the I/O threads
 * that do ZeroMQ's real work on 2 CPUs and is several times slower. So the
 * mode changes only the producer's pacing for ZeroMQ, and its throughput
 * runs (no pacing) are run once for both modes.
 *
 * Before each measured phase a warm-up flows through every consumer (one lap
 * of the ring), so first-touch page faults are not measured.
 *
 * Processes: the supervisor (main) forks the producer, waits until it is set
 * up, forks the consumers, waits until each has joined (one byte each on a
 * pipe), then tells the producer to go. Children report through a shared
 * anonymous mapping; SIGCHLD and SIGINT/SIGTERM/SIGHUP arrive on a signalfd.
 */
#include "benchutil.h"
#include "cli.h"
#include "ring.h"

#include <err.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_CONSUMERS 16
#define MAX_RUNS      99
#define REC_TYPE      1u
#define HELLO	      UINT64_MAX  /* seq of a ZeroMQ slow-joiner hello */
#define IDLE_NS	      100000000LL /* a consumer's longest wait before it looks up */
#define IDLE_CHECKS   10	  /* idle waits after the producer is done: the rest is lost */
#define ZMQ_WARM      20000u	  /* ZeroMQ warm-up messages (it has no lap to touch) */
#define REC_STRIDE    72u	  /* a 64-byte record in the ring: 8-byte header + payload */

/* The target numbers of DESIGN.md section 6, for 1 producer -> 1 consumer. */
#define TARGET_MPS	    30.0
#define TARGET_RATIO	    8.0
#define TARGET_P99_SPIN_US  2.0
#define TARGET_P99_SLEEP_US 100.0

enum transport { T_RING, T_ZMQ, T_N };
enum mode { M_SPIN, M_SLEEP, M_N };
enum kind { K_TPUT, K_LAT, K_N };
enum metric { V_MPS, V_P50, V_P99, V_P999, V_HELD, V_PREEMPT, V_N };

static const char *const transport_name[T_N] = {"ring", "zmq"};
static const char *const mode_name[M_N] = {"spin", "sleep"};

struct msg {	       /* one 64-byte record */
	uint64_t seq;  /* 0.. through the warm-up, then the measured records */
	int64_t ts_ns; /* CLOCK_MONOTONIC just before sending; 0 in throughput runs */
	uint8_t pad[48];
};
_Static_assert(sizeof(struct msg) == 64, "records are 64 bytes");

struct cons_out {	   /* one consumer's report, written once at its end */
	uint64_t received; /* measured records seen */
	uint64_t lost;	   /* sequence numbers skipped */
	uint64_t errors;   /* sequence numbers seen again or out of order */
	int64_t t_last;	   /* when it stopped: the last measured record's arrival */
};

struct board { /* MAP_SHARED|MAP_ANONYMOUS: children write, the supervisor reads */
	_Atomic uint32_t hellos;   /* ZeroMQ subscribers that have seen a hello */
	_Atomic uint32_t warmed;   /* consumers through the warm-up */
	_Atomic uint32_t sent;	   /* the producer has sent everything */
	int64_t t_first;	   /* the producer's first measured send */
	int64_t held_ns;	   /* ring: time its producer then waited for consumers */
	_Atomic int64_t preempted; /* involuntary context switches in every child */
	struct cons_out out[MAX_CONSUMERS];
	uint32_t lat[]; /* latency samples in ns: consumer i's at i * lat_max */
};

struct bench {
	uint64_t records;     /* throughput run length */
	uint64_t lat_records; /* spinning latency run length; sleeping runs use a tenth */
	int64_t gap[M_N];     /* latency pacing, per consumer mode */
	uint64_t capacity;    /* ring data bytes */
	int runs;
	int counts[MAX_CONSUMERS]; /* consumer counts to run */
	int ncounts;
	bool mode_on[M_N];
	bool zmq;
	bool smoke;
	bool verbose;	  /* print every run */
	bool pin;	  /* producer on CPU 0, consumer i on CPU (i + 1) % CPUs */
	char shm_dir[64]; /* our MDB_SHM_DIR under /dev/shm */
	char ipc_dir[64]; /* ZeroMQ endpoints under /tmp */
	struct board *board;
	size_t board_size;
	uint64_t lat_max; /* samples per consumer in board->lat */
	uint32_t *merged; /* the supervisor's copy of a run's samples, to sort */
	int sigfd;
	sigset_t oldmask;
	int signo; /* the signal that stopped us, or 0 */
	int nrun;  /* runs so far: names each run's ring and endpoint */
};

struct run {
	enum transport t;
	enum mode m;
	enum kind k;
	int nc;		/* consumers */
	uint64_t warm;	/* warm-up records before the measured ones */
	uint64_t count; /* measured records */
	int64_t gap;	/* latency pacing; 0: as fast as possible */
	char ring[RING_NAME_MAX];
	char endpoint[128];
	pid_t pid[MAX_CONSUMERS + 1]; /* [0] producer, then consumers */
	bool alive[MAX_CONSUMERS + 1];
	int nkids, nalive;
	int ready[2]; /* children -> supervisor: one byte each when set up */
	int go[2];    /* supervisor -> producer: start */
};

struct outcome {       /* one run */
	double v[V_N]; /* M records/s or µs; V_HELD: the share of the measured time
			* the ring's producer waited for consumers; V_PREEMPT: how
			* often a child was preempted (a noisy machine) */
	uint64_t lost, errors;
};

struct series { /* one scenario on one transport: all its runs */
	struct outcome o[MAX_RUNS];
	int n;
	bool failed; /* a run did not complete */
};

struct port { /* a child's end of a transport */
	enum transport t;
	mdb_ring *ring;
	mdb_ring_consumer *cons;
	void *ctx, *sock;
};

static void usage(FILE *out) __attribute__((noreturn));
static void usage(FILE *out)
{
	fprintf(out,
		"usage: bench_ring [--smoke] [-n records] [-r runs] [-c list] [--capacity size]\n"
		"                  [--lat-records n] [--spin-interval dur] [--sleep-interval dur]\n"
		"                  [--modes list] [--no-zmq] [--pin] [-v]\n"
		"  -n, --records N         records per throughput run (default 4000000)\n"
		"  -r, --runs R            runs per scenario; medians are shown (default 5)\n"
		"  -c, --consumers LIST    consumer process counts (default 1,2,4)\n"
		"      --capacity SIZE     ring data bytes (default 64M, the ring's default)\n"
		"      --lat-records N     records per spinning latency run; sleeping runs\n"
		"                          use N/10 (default 100000)\n"
		"      --spin-interval D   latency pacing with spinning consumers (default 10us)\n"
		"      --sleep-interval D  latency pacing with sleeping consumers (default 200us)\n"
		"      --modes LIST        spin,sleep (default both)\n"
		"      --no-zmq            skip the ZeroMQ peer\n"
		"      --pin               pin the producer to CPU 0 and consumer i to CPU\n"
		"                          (i + 1) mod CPUs (default: the scheduler places them)\n"
		"      --smoke             a correctness check in a few seconds: small runs,\n"
		"                          a 64k ring, 1 run; fails on any lost ring record\n"
		"  -v, --verbose           print every run on stderr\n"
		"  -h, --help              show this help\n");
	exit(out == stdout ? 0 : 2);
}

static void nap(int64_t ns)
{
	struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
	nanosleep(&ts, NULL);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* ---- children ---- */

static int port_open(struct port *p, const struct run *run, int idx)
{
	int rc, zero = 0, idle_ms = (int)(IDLE_NS / 1000000);
	memset(p, 0, sizeof *p);
	p->t = run->t;
	if (p->t == T_RING) {
		if (!(p->ring = ring_open(run->ring, &rc)))
			return rc;
		if (idx < 0)
			return ring_producer_begin(p->ring);
		char name[RING_NAME_MAX];
		snprintf(name, sizeof name, "bench-c%d", idx);
		p->cons = ring_consumer_open(p->ring, name, RING_DURABLE, RING_FROM_END,
					     run->m == M_SPIN ? -1 : 0, &rc);
		return p->cons ? 0 : rc;
	}
	if (!(p->ctx = zmq_ctx_new()) ||
	    !(p->sock = zmq_socket(p->ctx, idx < 0 ? ZMQ_PUB : ZMQ_SUB)))
		return -errno;
	if (idx < 0) {
		if (zmq_setsockopt(p->sock, ZMQ_SNDHWM, &zero, sizeof zero) < 0 ||
		    zmq_bind(p->sock, run->endpoint) < 0)
			return -errno;
		return 0;
	}
	if (zmq_setsockopt(p->sock, ZMQ_RCVHWM, &zero, sizeof zero) < 0 ||
	    zmq_setsockopt(p->sock, ZMQ_LINGER, &zero, sizeof zero) < 0 ||
	    zmq_setsockopt(p->sock, ZMQ_SUBSCRIBE, "", 0) < 0 ||
	    zmq_setsockopt(p->sock, ZMQ_RCVTIMEO, &idle_ms, sizeof idle_ms) < 0 ||
	    zmq_connect(p->sock, run->endpoint) < 0)
		return -errno;
	return 0;
}

/* A PUB socket lingers by default: zmq_ctx_term() returns once everything
 * queued has gone out to the subscribers. */
static void port_close(struct port *p)
{
	ring_consumer_close(&p->cons);
	ring_close(&p->ring);
	if (p->sock)
		zmq_close(p->sock);
	if (p->ctx)
		zmq_ctx_term(p->ctx);
}

static inline int port_send(struct port *p, const struct msg *m)
{
	if (p->t == T_RING)
		return ring_publish(p->ring, REC_TYPE, m, sizeof *m, -1);
	while (zmq_send(p->sock, m, sizeof *m, 0) != (int)sizeof *m)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/* Take the next record's seq and stamp into *m. Returns 1, 0 when nothing
 * came for IDLE_NS, or -errno. */
static inline int port_recv(struct port *p, struct msg *m)
{
	if (p->t == T_RING) {
		struct ring_rec rec;
		for (;;) {
			int rc = ring_next(p->cons, &rec);
			if (rc == 1) {
				if (rec.len != sizeof *m)
					return -EBADMSG;
				/* only the seq and the stamp: nobody reads the padding */
				memcpy(m, rec.data, 16);
				return 1;
			}
			if (rc != 0)
				return rc < 0 ? rc : -EPROTO; /* RING_LAPPED: not for durable */
			rc = ring_wait(p->cons, IDLE_NS);
			if (rc <= 0)
				return rc;
		}
	}
	for (;;) {
		int n = zmq_recv(p->sock, m, sizeof *m, 0);
		if (n == (int)sizeof *m)
			return 1;
		if (n >= 0)
			return -EBADMSG;
		if (errno == EAGAIN)
			return 0; /* ZMQ_RCVTIMEO */
		if (errno != EINTR)
			return -errno;
	}
}

/* The ring's count of the time its producer waited for durable consumers. */
static uint64_t held_ns(struct port *p)
{
	struct ring_info info;
	if (p->t != T_RING || ring_info(p->ring, &info) < 0)
		return 0;
	return info.held_ns;
}

static int produce(const struct bench *b, const struct run *run, struct port *p)
{
	struct board *bd = b->board;
	struct msg m = {0};
	char c;
	int rc;
	if (write(run->ready[1], "p", 1) != 1 || read(run->go[0], &c, 1) != 1)
		return -EPIPE;
	prctl(PR_SET_TIMERSLACK, 1UL); /* pace sleeping runs to the microsecond */
	if (p->t == T_ZMQ) {
		/* the slow joiner: a SUB gets messages only once its
		 * subscription has reached us, which nobody tells us */
		m.seq = HELLO;
		while (atomic_load(&bd->hellos) < (uint32_t)run->nc) {
			if ((rc = port_send(p, &m)) < 0)
				return rc;
			nap(1000000);
		}
	}
	for (m.seq = 0; m.seq < run->warm; m.seq++)
		if ((rc = port_send(p, &m)) < 0)
			return rc;
	while (atomic_load(&bd->warmed) < (uint32_t)run->nc)
		nap(20000);
	uint64_t end = run->warm + run->count, held = held_ns(p);
	bd->t_first = mono_ns();
	if (!run->gap) {
		for (m.seq = run->warm; m.seq < end; m.seq++)
			if ((rc = port_send(p, &m)) < 0)
				return rc;
	} else {
		struct timespec ts;
		int64_t next = mono_ns();
		for (m.seq = run->warm; m.seq < end; m.seq++) {
			if (run->m == M_SPIN) {
				while (mono_ns() < next)
					cpu_relax();
			} else {
				ts.tv_sec = next / 1000000000LL;
				ts.tv_nsec = next % 1000000000LL;
				while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
				       EINTR)
					;
			}
			m.ts_ns = mono_ns();
			if ((rc = port_send(p, &m)) < 0)
				return rc;
			/* after a hiccup, go on from now rather than catch up in a burst */
			next += run->gap;
			if (next < m.ts_ns)
				next = m.ts_ns;
		}
	}
	bd->held_ns = (int64_t)(held_ns(p) - held);
	atomic_store(&bd->sent, 1);
	return 0;
}

static int consume(const struct bench *b, const struct run *run, int idx, struct port *p)
{
	struct board *bd = b->board;
	uint32_t *lat = run->k == K_LAT ? bd->lat + (size_t)idx * b->lat_max : NULL;
	if (lat)
		memset(lat, 0, run->count * sizeof *lat); /* fault it in before we start */
	if (write(run->ready[1], "c", 1) != 1)
		return -EPIPE;
	uint64_t want = 0, end = run->warm + run->count;
	uint64_t received = 0, lost = 0, errors = 0;
	bool hello = false, warmed = false;
	int idle = 0, rc = 0;
	struct msg m;
	while (want < end) {
		rc = port_recv(p, &m);
		if (rc < 0)
			break;
		if (rc == 0) {
			if (atomic_load(&bd->sent) && ++idle >= IDLE_CHECKS)
				break;
			continue;
		}
		idle = 0;
		if (m.seq == HELLO) {
			if (!hello) {
				hello = true;
				atomic_fetch_add(&bd->hellos, 1);
			}
			continue;
		}
		if (m.seq < want) {
			errors++;
			continue;
		}
		if (m.seq >= run->warm) {
			if (lat) {
				int64_t d = mono_ns() - m.ts_ns;
				lat[received] = d < 0		 ? 0
						: d > UINT32_MAX ? UINT32_MAX
								 : (uint32_t)d;
			}
			received++;
		}
		lost += m.seq - want;
		want = m.seq + 1;
		if (!warmed && want >= run->warm) {
			warmed = true;
			atomic_fetch_add(&bd->warmed, 1);
		}
	}
	struct cons_out *o = &bd->out[idx];
	o->t_last = mono_ns();
	o->received = received;
	o->lost = lost + (end - want);
	o->errors = errors;
	return rc < 0 ? rc : 0;
}

/* The body of a child: idx < 0 is the producer, else consumer idx. */
static int child(const struct bench *b, const struct run *run, int idx)
{
	struct port p;
	struct rusage ru;
	int rc = port_open(&p, run, idx);
	if (rc == 0)
		rc = idx < 0 ? produce(b, run, &p) : consume(b, run, idx, &p);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		atomic_fetch_add(&b->board->preempted, ru.ru_nivcsw);
	if (rc < 0)
		warnx("%s %s %s: %s", transport_name[run->t], mode_name[run->m],
		      idx < 0 ? "producer" : "consumer", zmq_strerror(-rc));
	port_close(&p);
	return rc;
}

/* ---- the supervisor ---- */

static int spawn(const struct bench *b, struct run *run, int idx)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (b->pin) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET((idx + 1) % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
			sched_setaffinity(0, sizeof set, &set);
		}
		sigprocmask(SIG_SETMASK, &b->oldmask, NULL);
		close(b->sigfd);
		_exit(child(b, run, idx) < 0 ? 1 : 0);
	}
	run->pid[run->nkids] = pid;
	run->alive[run->nkids++] = true;
	run->nalive++;
	return 0;
}

/* Collect exited children. Returns -ECHILD if one failed, else 0. */
static int reap(struct run *run, int flags)
{
	int rc = 0;
	for (int i = 0; i < run->nkids; i++) {
		int st;
		if (!run->alive[i])
			continue;
		pid_t w = waitpid(run->pid[i], &st, flags);
		if (w == 0)
			continue;
		if (w < 0 && errno == EINTR) {
			i--;
			continue;
		}
		run->alive[i] = false;
		run->nalive--;
		if (w > 0 && WIFSIGNALED(st))
			warnx("%s child %d died of signal %d", transport_name[run->t], (int)w,
			      WTERMSIG(st));
		if (w < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			rc = -ECHILD;
	}
	return rc;
}

/* Kill what is left of a run (by pid) and wait for it. */
static void stop_kids(struct run *run)
{
	for (int i = 0; i < run->nkids; i++)
		if (run->alive[i])
			kill(run->pid[i], SIGKILL);
	for (int i = 0; i < run->nkids; i++) {
		while (run->alive[i] && waitpid(run->pid[i], NULL, 0) < 0 && errno == EINTR)
			;
		run->alive[i] = false;
	}
	run->nalive = 0;
}

/* Wait for `want` ready bytes (want > 0) or for every child to exit (want ==
 * 0). Returns 0, -ECHILD (a child failed, or left before it was ready),
 * -ETIMEDOUT, -EINTR (a signal asked us to stop: b->signo) or -errno. */
static int supervise(struct bench *b, struct run *run, int want, int64_t deadline)
{
	int got = 0;
	for (;;) {
		if (want > 0 ? got >= want : run->nalive == 0)
			return 0;
		int64_t left = deadline - mono_ns();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd pf[2] = {{.fd = b->sigfd, .events = POLLIN},
				       {.fd = run->ready[0], .events = POLLIN}};
		int n = poll(pf, want > 0 ? 2 : 1, (int)(left / 1000000) + 1);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		if (want > 0 && (pf[1].revents & POLLIN)) {
			char buf[MAX_CONSUMERS + 1];
			ssize_t k = read(run->ready[0], buf, (size_t)(want - got));
			if (k > 0)
				got += (int)k;
		}
		if (pf[0].revents & POLLIN) {
			/* take every pending signal first: a ^C also kills the
			 * children, and that is a stop, not a failed run */
			struct signalfd_siginfo si;
			while (read(b->sigfd, &si, sizeof si) == sizeof si)
				if (si.ssi_signo != SIGCHLD)
					b->signo = (int)si.ssi_signo;
			if (b->signo)
				return -EINTR;
			int before = run->nalive;
			if (reap(run, WNOHANG) < 0 || (want > 0 && run->nalive < before))
				return -ECHILD;
		}
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The q-quantile of n sorted samples (nearest rank), in µs. */
static double quantile_us(const uint32_t *s, size_t n, double q)
{
	if (!n)
		return 0;
	size_t i = (size_t)(q * (double)n + 0.999999);
	i = i ? i - 1 : 0;
	return s[i < n ? i : n - 1] / 1000.0;
}

static void collect(struct bench *b, const struct run *run, struct outcome *res)
{
	struct board *bd = b->board;
	int64_t t_last = 0;
	size_t n = 0;
	memset(res, 0, sizeof *res);
	for (int i = 0; i < run->nc; i++) {
		const struct cons_out *o = &bd->out[i];
		res->lost += o->lost;
		res->errors += o->errors;
		if (o->t_last > t_last)
			t_last = o->t_last;
		if (run->k == K_LAT) {
			memcpy(b->merged + n, bd->lat + (size_t)i * b->lat_max,
			       o->received * sizeof *b->merged);
			n += o->received;
		}
	}
	res->v[V_PREEMPT] = (double)atomic_load(&bd->preempted);
	if (t_last > bd->t_first)
		res->v[V_HELD] = (double)bd->held_ns / (double)(t_last - bd->t_first);
	if (run->k == K_TPUT) {
		res->v[V_MPS] = t_last > bd->t_first
				    ? (double)run->count * 1e3 / (double)(t_last - bd->t_first)
				    : 0;
		return;
	}
	qsort(b->merged, n, sizeof *b->merged, cmp_u32);
	res->v[V_P50] = quantile_us(b->merged, n, 0.50);
	res->v[V_P99] = quantile_us(b->merged, n, 0.99);
	res->v[V_P999] = quantile_us(b->merged, n, 0.999);
}

/* Warm-up: a lap of the ring plus a bit, so every page of it has been
 * touched by the producer and by each consumer before measuring. */
static uint64_t warm_records(const struct bench *b, enum transport t)
{
	uint64_t lap = b->capacity / REC_STRIDE + 64;
	return t == T_ZMQ && lap > ZMQ_WARM ? ZMQ_WARM : lap;
}

/* How long a run may take before it is called stuck: generous, since
 * oversubscribed spinning consumers go at the scheduler's pace. */
static int64_t budget_ns(const struct run *run)
{
	int64_t per = run->gap ? 3 * run->gap : 5000 * (int64_t)run->nc;
	return 30000000000LL + (int64_t)(run->warm + run->count) * per;
}

/* One run: set up, fork, supervise, collect, and clean up whatever happened. */
static int run_once(struct bench *b, struct run *run, struct outcome *res)
{
	int rc = 0;
	memset(b->board, 0, sizeof *b->board);
	run->nkids = run->nalive = 0;
	run->ready[0] = run->ready[1] = run->go[0] = run->go[1] = -1;
	b->nrun++;
	snprintf(run->ring, sizeof run->ring, "bench-%d", b->nrun);
	snprintf(run->endpoint, sizeof run->endpoint, "ipc://%s/bench-%d", b->ipc_dir, b->nrun);
	if (run->t == T_RING && (rc = ring_create(run->ring, b->capacity, 0600)) < 0)
		return rc;
	if (pipe(run->ready) < 0 || pipe(run->go) < 0) {
		rc = -errno;
		goto out;
	}
	int64_t deadline = mono_ns() + budget_ns(run);
	if ((rc = spawn(b, run, -1)) < 0 || (rc = supervise(b, run, 1, deadline)) < 0)
		goto out;
	for (int i = 0; i < run->nc; i++)
		if ((rc = spawn(b, run, i)) < 0)
			goto out;
	if ((rc = supervise(b, run, run->nc, deadline)) < 0)
		goto out;
	if (write(run->go[1], "g", 1) != 1) {
		rc = -EPIPE;
		goto out;
	}
	if ((rc = supervise(b, run, 0, deadline)) == 0)
		collect(b, run, res);
out:
	stop_kids(run);
	for (int i = 0; i < 2; i++) {
		if (run->ready[i] >= 0)
			close(run->ready[i]);
		if (run->go[i] >= 0)
			close(run->go[i]);
	}
	if (run->t == T_RING)
		ring_unlink(run->ring);
	else
		unlink(run->endpoint + strlen("ipc://"));
	return rc;
}

/* ---- report ---- */

/* The median of metric v over a series' runs. */
static double series_median(const struct series *s, enum metric v)
{
	double x[MAX_RUNS];
	for (int i = 0; i < s->n; i++)
		x[i] = s->o[i].v[v];
	return median(x, s->n);
}

static double extreme(const struct series *s, enum metric v, bool max)
{
	double e = s->n ? s->o[0].v[v] : 0;
	for (int i = 1; i < s->n; i++)
		if (max ? s->o[i].v[v] > e : s->o[i].v[v] < e)
			e = s->o[i].v[v];
	return e;
}

/* A scenario with a failed run still shows the runs that completed; the
 * failure was reported when it happened. */
static bool valid(const struct series *s)
{
	return s->n > 0;
}

static const char *fmt_us(char *buf, size_t size, double us)
{
	snprintf(buf, size, us < 10 ? "%.2f" : us < 100 ? "%.1f" : "%.0f", us);
	return buf;
}

static const char *fmt_ratio(char *buf, size_t size, double num, double den)
{
	double r = num / den;
	if (num > 0 && den > 0)
		snprintf(buf, size, r >= 100 ? "%.0fx" : r >= 1 ? "%.1fx" : "%.2fx", r);
	else
		snprintf(buf, size, "-");
	return buf;
}

static const char *fmt_lat(char *buf, size_t size, const struct series *s)
{
	char a[16], c[16], d[16];
	if (!valid(s))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%s / %s / %s", fmt_us(a, sizeof a, series_median(s, V_P50)),
			 fmt_us(c, sizeof c, series_median(s, V_P99)),
			 fmt_us(d, sizeof d, series_median(s, V_P999)));
	return buf;
}

static const char *fmt_mps(char *buf, size_t size, const struct series *s)
{
	if (!valid(s))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.2f", series_median(s, V_MPS));
	return buf;
}

static uint64_t total(const struct series *s, bool lost)
{
	uint64_t n = 0;
	for (int i = 0; i < s->n; i++)
		n += lost ? s->o[i].lost : s->o[i].errors;
	return n;
}

/* res[count][mode][kind][transport] */
typedef struct series results[MAX_CONSUMERS][M_N][K_N][T_N];

/* Where a scenario's runs are kept: ZeroMQ's throughput runs do not depend
 * on the mode, so both modes share the first mode's. */
static struct series *cell(const struct bench *b, results res, int ci, int m, int k, int t)
{
	if (t == T_ZMQ && k == K_TPUT)
		m = b->mode_on[M_SPIN] ? M_SPIN : M_SLEEP;
	return &res[ci][m][k][t];
}

/* The machine is shared: say how busy it was. */
static void print_load(const char *what)
{
	double l[3];
	if (getloadavg(l, 3) == 3)
		printf("%s: %.2f %.2f %.2f\n", what, l[0], l[1], l[2]);
}

static void print_header(const struct bench *b)
{
	int maj, min, pat;
	zmq_version(&maj, &min, &pat);
	printf(
	    "bench_ring: 1 producer -> N consumer processes, 64-byte records, durable consumers,\n"
	    "ring capacity %llu KiB; %ld CPUs%s; medians of %d run%s\n",
	    (unsigned long long)(b->capacity >> 10), sysconf(_SC_NPROCESSORS_ONLN),
	    b->pin ? " (pinned)" : "", b->runs, b->runs == 1 ? "" : "s");
	printf("throughput: %llu records as fast as possible; latency: %llu records every %.0f us "
	       "(spin), %llu every %.0f us (sleep)\n",
	       (unsigned long long)b->records, (unsigned long long)b->lat_records,
	       b->gap[M_SPIN] / 1e3, (unsigned long long)(b->lat_records / 10),
	       b->gap[M_SLEEP] / 1e3);
	if (b->zmq)
		printf(
		    "peer: ZeroMQ %d.%d.%d PUB/SUB over ipc://, HWM unlimited, blocking zmq_recv "
		    "in both modes (the mode sets only the pacing)\n",
		    maj, min, pat);
	print_load("load average at start");
	printf("\n");
}

static void print_table(const struct bench *b, results res)
{
	char s[8][64];
	printf("%-9s | %-26s | %-50s\n", "", "throughput M records/s",
	       "one-way latency µs, p50 / p99 / p99.9");
	printf("%-9s | %8s %8s %8s | %-21s %-21s %-6s\n", "scenario", "ring", "zmq", "ratio",
	       "ring", "zmq", "p99 ratio");
	for (int ci = 0; ci < b->ncounts; ci++) {
		for (int m = 0; m < M_N; m++) {
			if (!b->mode_on[m])
				continue;
			const struct series *tr = cell(b, res, ci, m, K_TPUT, T_RING);
			const struct series *tz = cell(b, res, ci, m, K_TPUT, T_ZMQ);
			const struct series *lr = cell(b, res, ci, m, K_LAT, T_RING);
			const struct series *lz = cell(b, res, ci, m, K_LAT, T_ZMQ);
			char name[16];
			snprintf(name, sizeof name, "%dc %s", b->counts[ci], mode_name[m]);
			printf(
			    "%-9s | %8s %8s %8s | %-21s %-21s %-6s\n", name,
			    fmt_mps(s[0], sizeof s[0], tr), fmt_mps(s[1], sizeof s[1], tz),
			    fmt_ratio(s[2], sizeof s[2], valid(tr) ? series_median(tr, V_MPS) : 0,
				      valid(tz) ? series_median(tz, V_MPS) : 0),
			    fmt_lat(s[3], sizeof s[3], lr), fmt_lat(s[4], sizeof s[4], lz),
			    fmt_ratio(s[5], sizeof s[5], valid(lz) ? series_median(lz, V_P99) : 0,
				      valid(lr) ? series_median(lr, V_P99) : 0));
		}
	}
	printf("\n");
}

static void print_lines(const struct bench *b, results res)
{
	char s[8][64];
	for (int ci = 0; ci < b->ncounts; ci++) {
		for (int m = 0; m < M_N; m++) {
			if (!b->mode_on[m])
				continue;
			const struct series *tr = cell(b, res, ci, m, K_TPUT, T_RING);
			const struct series *tz = cell(b, res, ci, m, K_TPUT, T_ZMQ);
			const struct series *lr = cell(b, res, ci, m, K_LAT, T_RING);
			const struct series *lz = cell(b, res, ci, m, K_LAT, T_ZMQ);
			char name[16];
			snprintf(name, sizeof name, "%dc %s", b->counts[ci], mode_name[m]);
			printf("ring %-8s throughput %s M/s (runs %.1f-%.1f, held %.0f%%)", name,
			       fmt_mps(s[0], sizeof s[0], tr), extreme(tr, V_MPS, false),
			       extreme(tr, V_MPS, true), series_median(tr, V_HELD) * 100);
			if (b->zmq)
				printf("  |  zmq %s M/s  |  ratio %s",
				       fmt_mps(s[1], sizeof s[1], tz),
				       fmt_ratio(s[2], sizeof s[2],
						 valid(tr) ? series_median(tr, V_MPS) : 0,
						 valid(tz) ? series_median(tz, V_MPS) : 0));
			printf("\nring %-8s latency p50 %s µs p99 %s µs p99.9 %s µs", name,
			       fmt_us(s[0], sizeof s[0], series_median(lr, V_P50)),
			       fmt_us(s[1], sizeof s[1], series_median(lr, V_P99)),
			       fmt_us(s[2], sizeof s[2], series_median(lr, V_P999)));
			if (!b->zmq) {
				printf("\n");
				continue;
			}
			printf("  |  zmq p50 %s µs p99 %s µs p99.9 %s µs  |  ratio p50 %s p99 %s\n",
			       fmt_us(s[3], sizeof s[3], series_median(lz, V_P50)),
			       fmt_us(s[4], sizeof s[4], series_median(lz, V_P99)),
			       fmt_us(s[5], sizeof s[5], series_median(lz, V_P999)),
			       fmt_ratio(s[6], sizeof s[6], series_median(lz, V_P50),
					 series_median(lr, V_P50)),
			       fmt_ratio(s[7], sizeof s[7], series_median(lz, V_P99),
					 series_median(lr, V_P99)));
			for (int k = 0; k < K_N; k++) {
				const struct series *z = cell(b, res, ci, m, k, T_ZMQ);
				if (z != &res[ci][m][k][T_ZMQ])
					continue; /* shown with the first mode */
				if (total(z, true) || total(z, false))
					printf("zmq  %-8s %s: lost %llu, out of order %llu over %d "
					       "runs\n",
					       name, k == K_TPUT ? "throughput" : "latency",
					       (unsigned long long)total(z, true),
					       (unsigned long long)total(z, false), z->n);
			}
		}
	}
	printf("\n");
}

static void print_targets(const struct bench *b, results res)
{
	int one = -1;
	for (int ci = 0; ci < b->ncounts; ci++)
		if (b->counts[ci] == 1)
			one = ci;
	if (one < 0 || !b->mode_on[M_SPIN] || !b->mode_on[M_SLEEP]) {
		printf("targets: not judged (they need 1 consumer, spin and sleep)\n");
		return;
	}
	const struct series *tr = &res[one][M_SPIN][K_TPUT][T_RING];
	const struct series *tz = &res[one][M_SPIN][K_TPUT][T_ZMQ];
	const struct series *ls = &res[one][M_SPIN][K_LAT][T_RING];
	const struct series *ll = &res[one][M_SLEEP][K_LAT][T_RING];
	double mps = valid(tr) ? series_median(tr, V_MPS) : 0;
	double zmps = valid(tz) ? series_median(tz, V_MPS) : 0;
	double p99s = valid(ls) ? series_median(ls, V_P99) : 1e9;
	double p99l = valid(ll) ? series_median(ll, V_P99) : 1e9;
	bool ok_mps = mps >= TARGET_MPS, ok_ratio = zmps > 0 && mps / zmps >= TARGET_RATIO;
	bool ok_s = p99s < TARGET_P99_SPIN_US, ok_l = p99l < TARGET_P99_SLEEP_US;
	char ratio[16];
	printf("targets (1:1): throughput >= %.0f M/s %s (%.1f); >= %.0fx zmq %s (%s); "
	       "p99 spin < %.0f µs %s (%.2f); p99 sleep < %.0f µs %s (%.1f): %s\n",
	       TARGET_MPS, ok_mps ? "met" : "MISSED", mps, TARGET_RATIO,
	       !b->zmq	  ? "not run"
	       : ok_ratio ? "met"
			  : "MISSED",
	       fmt_ratio(ratio, sizeof ratio, mps, zmps), TARGET_P99_SPIN_US,
	       ok_s ? "met" : "MISSED", p99s, TARGET_P99_SLEEP_US, ok_l ? "met" : "MISSED", p99l,
	       ok_mps && (ok_ratio || !b->zmq) && ok_s && ok_l ? "ALL MET" : "NOT ALL MET");
}

/* ---- main ---- */

static int parse_list(const char *s, int *out, int max, int lo, int hi)
{
	int n = 0;
	char *end;
	for (;;) {
		long v = strtol(s, &end, 10);
		if (end == s || v < lo || v > hi || n == max)
			return -EINVAL;
		out[n++] = (int)v;
		if (!*end)
			return n;
		if (*end != ',')
			return -EINVAL;
		s = end + 1;
	}
}

static const char *run_error(int rc)
{
	if (rc == -ECHILD)
		return "a child process failed";
	if (rc == -ETIMEDOUT)
		return "did not finish in time";
	return zmq_strerror(-rc);
}

static void print_run(const struct run *run, int r, const struct outcome *o)
{
	fprintf(stderr, "%s %dc %s run %d: ", transport_name[run->t], run->nc, mode_name[run->m],
		r + 1);
	if (run->k == K_TPUT)
		fprintf(stderr, "%.2f M/s", o->v[V_MPS]);
	else
		fprintf(stderr, "p50 %.2f p99 %.2f p99.9 %.2f µs", o->v[V_P50], o->v[V_P99],
			o->v[V_P999]);
	fprintf(stderr, ", held %.0f%%, preempted %.0f, lost %llu, out of order %llu\n",
		o->v[V_HELD] * 100, o->v[V_PREEMPT], (unsigned long long)o->lost,
		(unsigned long long)o->errors);
}

/* Run 1 of scenario (count ci, mode m, kind k) on transport t and keep it
 * in its series. Returns -EINTR when a signal stopped us, else 0. */
static int run_cell(struct bench *b, results res, int r, int ci, int m, int k, int t)
{
	struct series *s = &res[ci][m][k][t];
	if (!b->mode_on[m] || (t == T_ZMQ && !b->zmq) || s != cell(b, res, ci, m, k, t))
		return 0;
	struct run run = {
	    .t = t,
	    .m = m,
	    .k = k,
	    .nc = b->counts[ci],
	    .warm = warm_records(b, t),
	    .count = k == K_TPUT   ? b->records
		     : m == M_SPIN ? b->lat_records
				   : b->lat_records / 10,
	    .gap = k == K_LAT ? b->gap[m] : 0,
	};
	int rc = run_once(b, &run, &s->o[s->n]);
	if (rc == -EINTR)
		return rc;
	if (rc < 0) {
		warnx("%s %dc %s %s run %d: %s", transport_name[t], run.nc, mode_name[m],
		      k == K_TPUT ? "throughput" : "latency", r + 1, run_error(rc));
		s->failed = true;
		return 0;
	}
	if (b->verbose)
		print_run(&run, r, &s->o[s->n]);
	s->n++;
	return 0;
}

/* Every scenario, --runs rounds, the ring and ZeroMQ in turn so that both see
 * the same machine. Returns 0, or -EINTR when a signal stopped us. */
static int run_all(struct bench *b, results res)
{
	for (int r = 0; r < b->runs; r++) {
		for (int ci = 0; ci < b->ncounts; ci++)
			for (int m = 0; m < M_N; m++)
				for (int k = 0; k < K_N; k++)
					for (int t = 0; t < T_N; t++)
						if (run_cell(b, res, r, ci, m, k, t) < 0)
							return -EINTR;
		if (isatty(STDERR_FILENO))
			fprintf(stderr, "bench_ring: round %d of %d done\n", r + 1, b->runs);
	}
	return 0;
}

/* Correctness: every ring run completed and saw every record, in order. */
static bool ring_correct(const struct bench *b, results res)
{
	bool ok = true;
	for (int ci = 0; ci < b->ncounts; ci++)
		for (int m = 0; m < M_N; m++)
			for (int k = 0; k < K_N && b->mode_on[m]; k++) {
				const struct series *s = &res[ci][m][k][T_RING];
				if (s->failed || total(s, true) || total(s, false)) {
					warnx("ring %dc %s %s: %s, lost %llu, out of order %llu",
					      b->counts[ci], mode_name[m],
					      k == K_TPUT ? "throughput" : "latency",
					      s->failed ? "a run failed" : "runs completed",
					      (unsigned long long)total(s, true),
					      (unsigned long long)total(s, false));
					ok = false;
				}
			}
	return ok;
}

int main(int argc, char **argv)
{
	enum {
		OPT_SMOKE = CLI_OPT_FIRST_TOOL,
		OPT_CAPACITY,
		OPT_LAT,
		OPT_SPIN_GAP,
		OPT_SLEEP_GAP,
		OPT_MODES,
		OPT_NO_ZMQ,
		OPT_PIN
	};
	static const struct option longopts[] = {
	    {"records", required_argument, NULL, 'n'},
	    {"runs", required_argument, NULL, 'r'},
	    {"consumers", required_argument, NULL, 'c'},
	    {"capacity", required_argument, NULL, OPT_CAPACITY},
	    {"lat-records", required_argument, NULL, OPT_LAT},
	    {"spin-interval", required_argument, NULL, OPT_SPIN_GAP},
	    {"sleep-interval", required_argument, NULL, OPT_SLEEP_GAP},
	    {"modes", required_argument, NULL, OPT_MODES},
	    {"no-zmq", no_argument, NULL, OPT_NO_ZMQ},
	    {"smoke", no_argument, NULL, OPT_SMOKE},
	    {"verbose", no_argument, NULL, 'v'},
	    {"pin", no_argument, NULL, OPT_PIN},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench b = {
	    .records = 4000000,
	    .lat_records = 100000,
	    .gap = {10000, 200000},
	    .capacity = RING_DEFAULT_CAPACITY,
	    .runs = 5,
	    .counts = {1, 2, 4},
	    .ncounts = 3,
	    .mode_on = {true, true},
	    .zmq = true,
	    .sigfd = -1,
	};
	bool set_records = false, set_lat = false, set_capacity = false, set_runs = false;
	unsigned long long v;
	long long ns;
	int opt;
	while ((opt = getopt_long(argc, argv, "n:r:c:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (cli_parse_size(optarg, &v) < 0 || v < 1 || v > (1ULL << 40))
				errx(2, "bad --records: %s", optarg);
			b.records = v;
			set_records = true;
			break;
		case 'r':
			if (cli_parse_size(optarg, &v) < 0 || v < 1 || v > MAX_RUNS)
				errx(2, "bad --runs (1..%d): %s", MAX_RUNS, optarg);
			b.runs = (int)v;
			set_runs = true;
			break;
		case 'c':
			b.ncounts = parse_list(optarg, b.counts, MAX_CONSUMERS, 1, MAX_CONSUMERS);
			if (b.ncounts < 0)
				errx(2, "bad --consumers (a list of 1..%d): %s", MAX_CONSUMERS,
				     optarg);
			break;
		case OPT_CAPACITY:
			if (cli_parse_size(optarg, &v) < 0 || v < RING_MIN_CAPACITY ||
			    (v & (v - 1)) || v > (1ULL << 34))
				errx(2, "bad --capacity (a power of two >= %u): %s",
				     RING_MIN_CAPACITY, optarg);
			b.capacity = v;
			set_capacity = true;
			break;
		case OPT_LAT:
			if (cli_parse_size(optarg, &v) < 0 || v < 10 || v > (1ULL << 26))
				errx(2, "bad --lat-records: %s", optarg);
			b.lat_records = v;
			set_lat = true;
			break;
		case OPT_SPIN_GAP:
		case OPT_SLEEP_GAP:
			if (cli_parse_duration(optarg, &ns) < 0 || ns < 1 || ns > 1000000000LL)
				errx(2, "bad interval: %s", optarg);
			b.gap[opt == OPT_SPIN_GAP ? M_SPIN : M_SLEEP] = ns;
			break;
		case OPT_MODES: {
			int n = 0;
			b.mode_on[M_SPIN] = b.mode_on[M_SLEEP] = false;
			for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ","), n++) {
				if (strcmp(tok, "spin") && strcmp(tok, "sleep"))
					errx(2, "bad --modes (spin,sleep): %s", tok);
				b.mode_on[strcmp(tok, "spin") ? M_SLEEP : M_SPIN] = true;
			}
			if (!n)
				usage(stderr);
			break;
		}
		case OPT_NO_ZMQ:
			b.zmq = false;
			break;
		case OPT_SMOKE:
			b.smoke = true;
			break;
		case 'v':
			b.verbose = true;
			break;
		case OPT_PIN:
			b.pin = true;
			break;
		case 'h':
			usage(stdout);
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc)
		usage(stderr);
	if (b.smoke) {
		/* small enough for seconds, long enough to wrap a small ring often */
		b.records = set_records ? b.records : 50000;
		b.lat_records = set_lat ? b.lat_records : 1000;
		b.capacity = set_capacity ? b.capacity : 65536;
		b.runs = set_runs ? b.runs : 1;
	}

	/* SIGCHLD and the stop signals arrive on sigfd; children unblock them */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &b.oldmask) < 0 ||
	    (b.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		err(1, "signalfd");

	int max_nc = 0;
	for (int i = 0; i < b.ncounts; i++)
		if (b.counts[i] > max_nc)
			max_nc = b.counts[i];
	b.lat_max = b.lat_records;
	b.board_size = sizeof *b.board + (size_t)max_nc * b.lat_max * sizeof(uint32_t);
	b.board =
	    mmap(NULL, b.board_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	b.merged = malloc((size_t)max_nc * b.lat_max * sizeof(uint32_t));
	struct series(*res)[M_N][K_N][T_N] = calloc(MAX_CONSUMERS, sizeof *res);
	if (b.board == MAP_FAILED || !b.merged || !res)
		err(1, "memory");

	int status = 1;
	bool have_shm = false, have_ipc = false;
	strcpy(b.shm_dir, "/dev/shm/mdb-bench.XXXXXX");
	strcpy(b.ipc_dir, "/tmp/mdb-bench.XXXXXX");
	if (!(have_shm = mkdtemp(b.shm_dir)) || !(have_ipc = mkdtemp(b.ipc_dir))) {
		warn("mkdtemp");
		goto out;
	}
	setenv("MDB_SHM_DIR", b.shm_dir, 1);

	print_header(&b);
	fflush(stdout);
	int64_t t0 = mono_ns();
	if (run_all(&b, res) == -EINTR) {
		warnx("stopped by signal %d", b.signo);
		status = 128 + b.signo;
		goto out;
	}
	print_load("load average at end");
	printf("\n");
	print_table(&b, res);
	print_lines(&b, res);
	if (!b.smoke)
		print_targets(&b, res);
	bool ok = ring_correct(&b, res);
	/* a ZeroMQ run that fails says nothing about the ring, but in a smoke
	 * run it means the benchmark itself is broken */
	for (int ci = 0; ci < b.ncounts; ci++)
		for (int m = 0; m < M_N; m++)
			for (int k = 0; k < K_N && b.zmq && b.mode_on[m]; k++)
				if (res[ci][m][k][T_ZMQ].failed && b.smoke)
					ok = false;
	printf("%s in %.1f s: %s\n", b.smoke ? "smoke" : "bench", (mono_ns() - t0) / 1e9,
	       ok ? "every ring record seen, in order" : "FAILED");
	status = ok ? 0 : 1;
out:
	if (have_shm)
		rm_rf(b.shm_dir);
	if (have_ipc)
		rm_rf(b.ipc_dir);
	free(res);
	free(b.merged);
	munmap(b.board, b.board_size);
	return status;
}

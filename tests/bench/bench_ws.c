/* bench_ws.c - mdb-ws fan-out against broadcast servers written with
 * Node's `ws` package and Python's `websockets` doing the same job
 * (DESIGN.md 6).
 *
 * N clients (a C load client: one epoll thread, so it is not the bottleneck)
 * connect to /ws/live_data/SYM<k> over S symbols. A producer thread sends
 * updates round-robin over the symbols at a fixed rate (or as fast as the
 * rate allows), each stamped with CLOCK_REALTIME in its ts field; every
 * update becomes one delta frame to each of the N/S subscribers of its
 * symbol. mdb-ws reads the updates from a ring (feat records; --no-lvc so
 * each record is one delta); the peers (tests/bench/ws_peer.js, ws_peer.py)
 * from a TCP feed of JSON lines. Measured over a window after a warm-up: frames/s
 * delivered to the clients, p50/p99 latency from the stamp to the client's
 * read, and the server's CPU time (all its threads, from schedstat) per
 * delivered frame. Each scenario runs --runs times, ours then each peer's,
 * and prints medians and the ratios; each run's line also says how long the
 * server's threads waited for a CPU (schedstat), which is where the tail
 * latency of a loaded 2-core machine comes from (and after "load", how long
 * the load client's and the publisher's threads waited, and after "steal"
 * how long the hypervisor gave the servers' CPUs to someone else). Full mode runs 1,000 and
 * 5,000 clients (--clients picks one); the open-file limit is raised to fit.
 *
 * --pin keeps the server off the load's CPU, as clients on other hosts
 * would: every server (ours and the peers alike, with all their threads) is
 * bound to the first CPU this process may use, the load client and the
 * publisher to the others (sched_setaffinity). On loopback the kernel's
 * receive work for the clients still runs in the server's send path.
 *
 * --busy-poll makes the load client's thread poll its sockets
 * (epoll_wait with timeout 0) instead of sleeping in epoll_wait, for every
 * server alike. On loopback a send to a sleeping client wakes it from the
 * sender's context: with the client asleep on its own CPU each frame costs
 * the server a cross-CPU wake-up (an IPI; in a VM a trip to the host), which
 * a client on another host would never cost it. Polling keeps that out of
 * the server's CPU per frame. It is not the default: the polling thread
 * takes its whole CPU, so on a shared machine it competes with the
 * publisher and any neighbour there, and the latency then measures that
 * competition too; the sleeping client is what a real client does.
 *
 * Full and smoke mode first measure the payload deltas save against full
 * snapshots on real data: mdb-sim's trades and quotes through mdb-validate
 * and mdb-feature, folded as mdb-ws folds them, encoded with common/wsmsg.
 *
 * Beside the peers runs the floor, "bare send()": this program itself
 * (--bare-server, an internal mode) taking the peers' feed and sending each
 * line as one text frame with one send() per subscriber, and doing nothing
 * else (no handshake checks, no queues, no reading from clients; a frame
 * that does not fit the socket is dropped). Its CPU per frame is what this
 * kernel charges for one small frame per send; at the fixed rate every
 * frame is its own send, so no server can go below it there.
 *
 * The Node peer needs node and the ws package: MDB_WS_NODE_MODULES, or
 * tests/bench/node_modules (npm install ws in tests/bench; git ignores it),
 * or Debian's node-ws in /usr/share/nodejs.
 * The Python peer needs Debian's python3-websockets under /usr/bin/python3
 * (MDB_WS_PYTHON names another interpreter). A missing peer is reported as
 * such and the others run; --no-peers runs ours alone, without the floor
 * (to compare builds of mdb-ws: MDB_BUILD_DIR names the one to run).
 */
#include "benchutil.h"
#include "benchws.h"
#include "record.h"
#include "ring.h"
#include "wsmsg.h"

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS	   1000000000LL
#define MAX_RUNS   15
#define PUSHED_FPS 2000000 /* frames/s offered when pushed hard */

/* The servers compared: ours and the peers doing the same job. */
enum { SRV_OURS, SRV_NODE, SRV_PY, SRV_BARE, NSRV };
static const char *const srv_name[NSRV] = {"mdb-ws", "node ws", "py websockets", "bare send()"};

static struct {
	int n, nsym, runs;
	double secs, warm;
	bool smoke;
	bool pin;  /* the servers on srv_cpus, the rest on load_cpus */
	bool busy; /* the load client polls its sockets, never sleeps */
	cpu_set_t srv_cpus, load_cpus;
	const char *build, *src;
	char node_modules[512];
	char python[512];
	bool have[NSRV];
	/* the load client */
	struct bws_conn *c;
	_Atomic bool stop;
	_Atomic int64_t w0, w1;	 /* the window: frames stamped in [w0, w1) count */
	_Atomic bool open;	 /* frames received now count in the rate */
	_Atomic uint64_t rx;	 /* ... so many */
	_Atomic uint64_t frames; /* frames stamped in the window received */
	int64_t *lat;
	_Atomic size_t nlat;
	size_t caplat;
} B;

static int64_t now_real(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * NS + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* A data frame: when its ts stamp lies in the window, it counts, with its
 * latency from the stamp to now (*arg). */
static void frame_in(void *arg, const uint8_t *p, size_t n)
{
	int64_t now = *(const int64_t *)arg;
	if (atomic_load_explicit(&B.open, memory_order_relaxed))
		atomic_fetch_add_explicit(&B.rx, 1, memory_order_relaxed);
	const char *ts = memmem(p, n, "\"ts\":", 5);
	if (!ts)
		return;
	int64_t stamp = strtoll(ts + 5, NULL, 10);
	if (stamp < atomic_load_explicit(&B.w0, memory_order_relaxed) ||
	    stamp >= atomic_load_explicit(&B.w1, memory_order_relaxed))
		return;
	atomic_fetch_add_explicit(&B.frames, 1, memory_order_relaxed);
	size_t k = atomic_fetch_add_explicit(&B.nlat, 1, memory_order_relaxed);
	if (k < B.caplat)
		B.lat[k] = now - stamp;
}

static void *load_thread(void *arg)
{
	int ep = *(int *)arg;
	struct epoll_event ev[256];
	while (!atomic_load(&B.stop)) {
		int n = epoll_wait(ep, ev, 256, B.busy ? 0 : 50);
		int64_t now = now_real();
		for (int i = 0; i < n; i++) {
			struct bws_conn *c = &B.c[ev[i].data.u32];
			ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
			if (r > 0) {
				c->len += (size_t)r;
				bws_frames(c, frame_in, &now);
			} else if (r == 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			}
		}
	}
	return NULL;
}

/* CPU time of every thread of pid, ns, and *waited (their time runnable but
 * waiting for a CPU); 0 when pid is gone. */
static int64_t cpu_ns(pid_t pid, int64_t *waited)
{
	int64_t ns = bench_task_cpu_ns(pid, waited);
	if (ns < 0)
		*waited = 0;
	return ns < 0 ? 0 : ns;
}

/* Time the hypervisor ran something else on the servers' CPUs (all CPUs
 * unless --pin), ns: /proc/stat's steal ticks. This VM loses its CPUs for
 * milliseconds at a time, and a frame queued behind such a gap is that much
 * late whatever the server does. */
static int64_t steal_ns(void)
{
	FILE *f = fopen("/proc/stat", "r");
	char line[512];
	int64_t sum = 0;
	while (f && fgets(line, sizeof line, f)) {
		int cpu = -1, used = 0;
		unsigned long long v[8];
		if (strncmp(line, "cpu", 3) != 0)
			break;
		if (line[3] != ' ' && sscanf(line + 3, "%d%n", &cpu, &used) != 1)
			continue;
		if (B.pin ? cpu < 0 || !CPU_ISSET(cpu, &B.srv_cpus) : cpu >= 0)
			continue;
		if (sscanf(line + 3 + used, "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
			sum += (int64_t)v[7];
	}
	if (f)
		fclose(f);
	return sum * (NS / sysconf(_SC_CLK_TCK));
}

struct server {
	pid_t pid;
	int port;
	mdb_ring *ring; /* ours: the ring we produce into */
	int feed;	/* the peer: its TCP feed (non-blocking) */
	char pend[160]; /* ... the rest of a line it took only in part */
	size_t npend;
};

/* Run argv with stdout and stderr on a pipe; read lines until one holds
 * `want`; returns that line's text after it. */
static pid_t spawn(char *const argv[], const char *want, char *after, size_t alen)
{
	int p[2];
	if (pipe(p) < 0)
		err(1, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		if (B.pin && sched_setaffinity(0, sizeof B.srv_cpus, &B.srv_cpus) < 0)
			_exit(126);
		/* a session of its own: with autogroup scheduling the server
		 * would otherwise share one group's CPU weight with the load
		 * client and the publisher (its own load), as no deployed
		 * server does */
		setsid();
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	char line[512];
	while (fgets(line, sizeof line, f)) {
		char *w = strstr(line, want);
		if (w) {
			snprintf(after, alen, "%s", w + strlen(want));
			/* keep the pipe open but unread: the server logs little */
			return pid;
		}
	}
	errx(1, "%s did not start", argv[0]);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof a;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		err(1, "free port");
	close(fd);
	return ntohs(a.sin_port);
}

static void start_ours(struct server *s)
{
	char exe[600], conns[32], after[128];
	snprintf(exe, sizeof exe, "%s/tools/mdb-ws", B.build);
	snprintf(conns, sizeof conns, "%d", B.n + 100);
	int rc = ring_create("benchfeat", 64u << 20, 0600);
	if (rc < 0)
		errx(1, "ring_create: %s", strerror(-rc));
	char *argv[] = {exe,
			"-i",
			"ring:benchfeat",
			"--no-lvc",
			"-l",
			"0",
			"--max-conns",
			conns,
			"--queue-bytes",
			"4M",
			"--slow-resyncs",
			"1000",
			NULL};
	s->pid = spawn(argv, "listening on 127.0.0.1:", after, sizeof after);
	s->port = atoi(after);
	if (!(s->ring = ring_open("benchfeat", &rc)) || (rc = ring_producer_begin(s->ring)) < 0)
		errx(1, "ring: %s", strerror(-rc));
	s->feed = -1;
}

static int listen_port(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0)
		err(1, "bare server: port %d", port);
	return fd;
}

/* bench_ws --bare-server WS_PORT FEED_PORT: the floor, not a server. Each
 * feed line goes as one text frame, one blocking-free send() per
 * subscriber, from a loop that does nothing else: no handshake checks (the
 * accept key is not computed), no reading from clients, no queues. What it
 * costs per frame is the kernel's. */
static _Noreturn void bare_server(int wport, int fport)
{
	int lw = listen_port(wport), lf = listen_port(fport), ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lw};
	epoll_ctl(ep, EPOLL_CTL_ADD, lw, &ev);
	ev.data.fd = lf;
	epoll_ctl(ep, EPOLL_CTL_ADD, lf, &ev);
	printf("ready\n");
	fflush(stdout);
	int *subs[4096] = {0}, nsub[4096] = {0}, feed = -1; /* per symbol k (SYMk) */
	static char in[1 << 16];
	size_t len = 0;
	for (;;) {
		struct epoll_event e[8];
		int n = epoll_wait(ep, e, 8, -1);
		for (int i = 0; i < n; i++) {
			int fd = e[i].data.fd;
			if (fd == lf) {
				feed = accept(lf, NULL, NULL);
				ev.data.fd = feed;
				epoll_ctl(ep, EPOLL_CTL_ADD, feed, &ev);
			} else if (fd == lw) {
				int c = accept(lw, NULL, NULL), one = 1, k;
				char req[1024];
				ssize_t r = c < 0 ? -1 : read(c, req, sizeof req - 1);
				if (r <= 0) {
					close(c);
					continue;
				}
				req[r] = 0;
				const char *sym = strstr(req, "/SYM");
				if (!sym || (k = atoi(sym + 4)) < 0 || k >= 4096) {
					close(c);
					continue;
				}
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
				static const char ok[] =
				    "HTTP/1.1 101 Switching Protocols\r\n"
				    "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
				if (write(c, ok, sizeof ok - 1) < 0)
					err(1, "bare server");
				subs[k] = realloc(subs[k], (size_t)(nsub[k] + 1) * sizeof *subs[k]);
				subs[k][nsub[k]++] = c;
			} else {
				ssize_t r = read(feed, in + len, sizeof in - len);
				if (r <= 0)
					exit(0);
				len += (size_t)r;
				char *p = in, *nl;
				while ((nl = memchr(p, '\n', len - (size_t)(p - in)))) {
					uint8_t f[256];
					size_t pn = (size_t)(nl - p);
					const char *sym = memmem(p, pn, "\"SYM", 4);
					int k = sym ? atoi(sym + 4) : -1;
					if (pn <= 125 && k >= 0 && k < 4096) {
						f[0] = 0x81, f[1] = (uint8_t)pn;
						memcpy(f + 2, p, pn);
						for (int j = 0; j < nsub[k]; j++)
							(void)!send(subs[k][j], f, pn + 2,
								    MSG_DONTWAIT | MSG_NOSIGNAL);
					}
					p = nl + 1;
				}
				len -= (size_t)(p - in);
				memmove(in, p, len);
			}
		}
	}
}

/* A peer server (SRV_NODE, SRV_PY or SRV_BARE) and a connection to its feed port. */
static void start_peer(struct server *s, int kind)
{
	char script[600], wp[16], fp[16], after[64];
	snprintf(script, sizeof script, "%s/tests/bench/ws_peer.%s", B.src,
		 kind == SRV_NODE ? "js" : "py");
	s->port = free_port();
	int feed_port = free_port();
	snprintf(wp, sizeof wp, "%d", s->port);
	snprintf(fp, sizeof fp, "%d", feed_port);
	setenv("NODE_PATH", B.node_modules, 1);
	char *argv[] = {kind == SRV_NODE ? "node" : B.python, script, wp, fp, NULL};
	if (kind == SRV_BARE) {
		argv[0] = "/proc/self/exe";
		argv[1] = "--bare-server";
	}
	s->pid = spawn(argv, "ready", after, sizeof after);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)feed_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		err(1, "peer feed");
	/* never blocking: a peer behind on its feed would stop the publisher,
	 * and with it the clock that opens the measured window */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		err(1, "peer feed");
	s->feed = fd;
	s->npend = 0;
	s->ring = NULL;
}

static void stop_server(struct server *s)
{
	kill(s->pid, SIGTERM);
	waitpid(s->pid, NULL, 0);
	if (s->ring) {
		ring_close(&s->ring);
		ring_unlink("benchfeat");
	}
	if (s->feed >= 0)
		close(s->feed);
}

/* Write what the feed takes of p[0..n) and keep the rest in s->pend.
 * Returns false when it took nothing. */
static bool feed_write(struct server *s, const char *p, size_t n)
{
	ssize_t w = write(s->feed, p, n);
	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (w < 0)
		err(1, "peer feed");
	memmove(s->pend, p + w, n - (size_t)w);
	s->npend = n - (size_t)w;
	return w > 0;
}

/* One update for symbol k, stamped now. Returns false when a peer's feed
 * was full and the update was dropped (as a ring drops for an observer
 * that is behind: mdb-ws is never offered more than a peer would be). */
static bool send_update(struct server *s, int k, uint64_t i)
{
	char sym[16];
	snprintf(sym, sizeof sym, "SYM%d", k);
	int64_t ts = now_real();
	double c = 100 + (double)(i % 1000) * 0.25;
	if (s->ring) {
		struct mdb_record r;
		uint8_t buf[512];
		record_init(&r, MDB_REC_FEAT);
		snprintf(r.s, sizeof r.s, "%s", sym);
		r.ts = ts;
		r.feat.iv = 60;
		r.feat.rsi = c / 10;
		r.feat.vwap = c;
		int n = record_encode(&r, buf, sizeof buf);
		ring_publish(s->ring, MDB_REC_FEAT, buf, (uint32_t)n, 0);
		return true;
	}
	if (s->npend && (feed_write(s, s->pend, s->npend), s->npend))
		return false; /* a line is still half-written: drop this one */
	char line[160];
	int n = snprintf(line, sizeof line, "{\"s\":\"%s\",\"ts\":%lld,\"c\":%.2f,\"rsi\":%.3f}\n",
			 sym, (long long)ts, c, c / 10);
	return feed_write(s, line, (size_t)n);
}

struct result {
	double fps, p50_us, p99_us, cpu_ns_frame;
	double wait_ms_s;  /* the server's threads waited this long for a CPU, ms per s */
	double lwait_ms_s; /* ... and ours (the load client and the publisher) */
	double steal_ms_s; /* the hypervisor took the servers' CPUs this long */
};

/* Connect the clients, send at rate updates/s for warm + secs, measure. */
static struct result run_one(int kind, double rate)
{
	struct server s;
	if (kind == SRV_OURS)
		start_ours(&s);
	else
		start_peer(&s, kind);
	cpu_set_t on;
	if (B.pin && (sched_getaffinity(s.pid, sizeof on, &on) < 0 || !CPU_EQUAL(&on, &B.srv_cpus)))
		errx(1, "%s is not on the server's CPU", srv_name[kind]);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < B.n; i++) {
		char path[64];
		snprintf(path, sizeof path, "/ws/live_data/SYM%d?iv=60", i % B.nsym);
		bws_connect(&B.c[i], s.port, path);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, B.c[i].fd, &ev);
	}
	atomic_store(&B.stop, false);
	atomic_store(&B.w0, INT64_MAX);
	atomic_store(&B.w1, INT64_MAX);
	atomic_store(&B.frames, 0);
	atomic_store(&B.rx, 0);
	atomic_store(&B.nlat, 0);
	pthread_t th;
	pthread_create(&th, NULL, load_thread, &ep);
	usleep(200000); /* subscriptions settle */
	int64_t t0 = mono_ns(), warm_end = t0 + (int64_t)(B.warm * NS),
		end = warm_end + (int64_t)(B.secs * NS), cpu0 = 0, m0 = 0, wait0 = 0, wait1,
		lwait0 = 0, lwait1, steal0 = 0;
	uint64_t i = 0, want = 0; /* frames stamped in the window */
	bool meas = false;
	for (;;) {
		int64_t now = mono_ns();
		if (!meas && now >= warm_end) {
			meas = true;
			cpu0 = cpu_ns(s.pid, &wait0);
			cpu_ns(getpid(), &lwait0);
			steal0 = steal_ns();
			m0 = now;
			atomic_store(&B.w0, now_real());
			atomic_store(&B.open, true);
		}
		if (now >= end)
			break;
		int64_t due = t0 + (int64_t)((double)i / rate * NS);
		if (due > now) {
			struct timespec d = {0, due - now > 200000 ? 200000 : due - now};
			nanosleep(&d, NULL);
			continue;
		}
		int k = (int)(i % (uint64_t)B.nsym);
		if (send_update(&s, k, i) &&
		    meas) /* symbol k's subscribers: see the connect loop */
			want += (uint64_t)(B.n / B.nsym + (k < B.n % B.nsym));
		i++;
	}
	/* the rate: frames received while updates were sent; the CPU: over
	 * the same time */
	atomic_store(&B.open, false);
	atomic_store(&B.w1, now_real());
	int64_t m1 = mono_ns(), cpu1 = cpu_ns(s.pid, &wait1);
	cpu_ns(getpid(), &lwait1);
	int64_t steal1 = steal_ns();
	uint64_t rx = atomic_load(&B.rx);
	/* the latency: of every frame stamped in the window, late ones too
	 * (a server that dropped some, or is seconds behind, gets 3 s) */
	for (int k = 0; k < 300 && atomic_load(&B.frames) < want; k++)
		usleep(10000);
	atomic_store(&B.stop, true);
	pthread_join(th, NULL);
	for (int k = 0; k < B.n; k++)
		close(B.c[k].fd);
	close(ep);
	stop_server(&s);
	/* no frame of the window within 3 s after it: the latency is off the scale */
	struct result r = {.p50_us = INFINITY, .p99_us = INFINITY};
	size_t nl = atomic_load(&B.nlat);
	if (nl > B.caplat)
		nl = B.caplat;
	r.fps = (double)rx / ((double)(m1 - m0) / NS);
	r.cpu_ns_frame = rx ? (double)(cpu1 - cpu0) / (double)rx : 0;
	r.wait_ms_s = (double)(wait1 - wait0) / 1e6 / ((double)(m1 - m0) / NS);
	r.lwait_ms_s = (double)(lwait1 - lwait0) / 1e6 / ((double)(m1 - m0) / NS);
	r.steal_ms_s = (double)(steal1 - steal0) / 1e6 / ((double)(m1 - m0) / NS);
	if (nl) {
		qsort(B.lat, nl, sizeof *B.lat, cmp_i64);
		r.p50_us = (double)B.lat[nl / 2] / 1e3;
		r.p99_us = (double)B.lat[nl * 99 / 100] / 1e3;
	}
	return r;
}

static const char *fmt_us(char *buf, double us)
{
	if (isinf(us))
		return ">3 s late";
	sprintf(buf, "%.0f us", us);
	return buf;
}

/* One scenario, every server --runs times; medians. goal: which of the
 * issue's targets this scenario judges (0: none). */
enum { GOAL_NONE, GOAL_P99, GOAL_PUSHED };

static void scenario(const char *name, double rate, int goal)
{
	double v[NSRV][5][MAX_RUNS];
	for (int r = 0; r < B.runs; r++) {
		fprintf(stderr, "  run %d:", r + 1);
		for (int k = 0; k < NSRV; k++) {
			if (!B.have[k])
				continue;
			struct result x = run_one(k, rate);
			v[k][0][r] = x.fps, v[k][1][r] = x.p50_us, v[k][2][r] = x.p99_us,
			v[k][3][r] = x.cpu_ns_frame, v[k][4][r] = x.steal_ms_s;
			fprintf(stderr,
				"%s %s %.0f frames/s p50 %.0f us p99 %.0f us %.2f us/frame "
				"(waited for a CPU %.0f ms/s; load %.0f ms/s; steal %.0f ms/s)",
				k ? " |" : "", srv_name[k], x.fps, x.p50_us, x.p99_us,
				x.cpu_ns_frame / 1e3, x.wait_ms_s, x.lwait_ms_s, x.steal_ms_s);
		}
		fputc('\n', stderr);
	}
	double m[NSRV][5];
	printf("%s (%d clients, %d symbols, %.0f updates/s offered = %.0f frames/s):\n", name, B.n,
	       B.nsym, rate, rate * B.n / B.nsym);
	for (int k = 0; k < NSRV; k++) {
		if (!B.have[k]) {
			printf("  %-14s not run (see the top of bench_ws.c)\n", srv_name[k]);
			continue;
		}
		for (int q = 0; q < 5; q++)
			m[k][q] = median(v[k][q], B.runs);
		char p50[32], p99[32];
		printf(
		    "  %-14s %9.0f frames/s  p50 %10s  p99 %10s  %6.2f us CPU/frame  steal %3.0f "
		    "ms/s\n",
		    srv_name[k], m[k][0], fmt_us(p50, m[k][1]), fmt_us(p99, m[k][2]), m[k][3] / 1e3,
		    m[k][4]);
	}
	for (int k = 1; k < NSRV; k++) {
		if (!B.have[k])
			continue;
		printf("  vs %-13s %7.2fx frames/s, %.2fx less CPU per frame", srv_name[k],
		       m[k][0] > 0 ? m[0][0] / m[k][0] : 0, m[0][3] > 0 ? m[k][3] / m[0][3] : 0);
		if (isinf(m[k][2]) || isinf(m[0][2]))
			printf(", p99 not comparable (seconds behind)\n");
		else
			printf(", p99 %.2fx lower\n", m[0][2] > 0 ? m[k][2] / m[0][2] : 0);
	}
	if (goal == GOAL_P99) {
		printf("  target: p99 < 2 ms at 50k frames/s %s",
		       m[0][2] < 2000 ? "met" : "MISSED");
		if (m[0][2] >= 2000 && B.have[SRV_BARE] && m[SRV_BARE][2] >= 2000)
			printf(" (the bare send() floor's p99 is %.1f ms: the machine's limit)",
			       m[SRV_BARE][2] / 1e3);
		putchar('\n');
	} else if (goal == GOAL_PUSHED) {
		printf("  targets: <= 1 us server CPU per frame %s",
		       m[0][3] <= 1000 ? "met" : "MISSED");
		if (B.have[SRV_NODE])
			printf("; >= 3x node ws's frames/s %s",
			       m[SRV_NODE][0] > 0 && m[0][0] >= 3 * m[SRV_NODE][0] ? "met"
										   : "MISSED");
		putchar('\n');
	}
	if (B.smoke && (m[0][0] < 0.5 * rate * B.n / B.nsym || !(m[0][2] > 0) || isinf(m[0][2])))
		errx(1, "smoke: mdb-ws delivered %.0f frames/s of %.0f offered", m[0][0],
		     rate * B.n / B.nsym);
}

/* ---- delta against snapshot payload, on real data ---- */

struct payload {
	uint64_t n;		    /* deltas sent */
	uint64_t delta[2], snap[2]; /* bytes: JSON, MessagePack */
};

/* One stream's value, as mdb-ws keeps it (see stream_update there). */
struct pstream {
	char s[LVC_SYM_MAX];
	int32_t iv;
	uint64_t seq;
	struct lvc_value v;
};

static void payload_add(struct payload *p, mdb_codec *codec, struct pstream *st,
			const struct lvc_value *nv)
{
	uint32_t mask = wsmsg_diff(&st->v, nv);
	if (!mask)
		return;
	st->v = *nv;
	uint64_t prev = st->seq++;
	uint8_t mp[WSMSG_MAX];
	char js[WSMSG_MAX * 2];
	const char *why;
	int d = wsmsg_delta(mp, sizeof mp, st->s, st->iv, st->seq, prev, &st->v, mask);
	int dj = d < 0 ? -1 : record_to_json(codec, mp, (size_t)d, js, sizeof js, &why);
	int f = wsmsg_snapshot(mp, sizeof mp, st->s, st->iv, st->seq, &st->v);
	int fj = f < 0 ? -1 : record_to_json(codec, mp, (size_t)f, js, sizeof js, &why);
	if (d < 0 || dj < 0 || f < 0 || fj < 0)
		errx(1, "payload: cannot encode %s", st->s);
	p->n++;
	p->delta[0] += (uint64_t)dj, p->delta[1] += (uint64_t)d;
	p->snap[0] += (uint64_t)fj, p->snap[1] += (uint64_t)f;
}

/* mdb-sim's trades and quotes through mdb-validate (1 s and 1 min bars)
 * and mdb-feature, folded as mdb-ws folds them: with a last-value cache
 * (one delta per feat record, bar and features together: lvc) and without
 * (one per bar or feat record: rec). Sums the bytes of each delta and of
 * the snapshot it stands for. */
static void payload_measure(const char *syms, int ticks, struct payload *lvc, struct payload *rec,
			    uint64_t *nrec)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char dir[512], cmd[4096];
	snprintf(dir, sizeof dir, "%s/mdb-benchws-pl.XXXXXX", tmp);
	bench_tmpdir(dir);
	snprintf(cmd, sizeof cmd,
		 "cd '%s' && '%s/tools/mdb-sim' -d . %s -r 0 -n %d --quotes 0.3 "
		 "--log ticks.jsonl >/dev/null && '%s/tools/mdb-validate' --json -I 1s,1m "
		 "<ticks.jsonl 2>/dev/null | '%s/tools/mdb-feature' --json >feat.jsonl",
		 dir, B.build, syms, ticks, B.build, B.build);
	if (system(cmd) != 0)
		errx(1, "payload: the pipeline failed: %s", cmd);
	snprintf(cmd, sizeof cmd, "%s/feat.jsonl", dir);
	FILE *f = fopen(cmd, "r");
	if (!f)
		err(1, "%s", cmd);
	mdb_codec *codec = codec_new();
	enum { NS_MAX = 64 };
	static struct pstream sl[NS_MAX], sr[NS_MAX];
	static struct lvc_value cache[NS_MAX];
	int ns = 0;
	char line[4096];
	uint8_t buf[1024];
	struct mdb_record r;
	const char *why;
	*lvc = *rec = (struct payload){0};
	*nrec = 0;
	while (fgets(line, sizeof line, f)) {
		int n = record_from_json(codec, line, strlen(line), buf, sizeof buf, &why);
		if (n < 0 || record_decode(codec, buf, (size_t)n, &r, &why) < 0)
			errx(1, "payload: %s: %s", why, line);
		if (r.t != MDB_REC_BAR && r.t != MDB_REC_FEAT)
			continue;
		int32_t iv = r.t == MDB_REC_BAR ? r.bar.iv : r.feat.iv;
		int k = 0;
		while (k < ns && (sl[k].iv != iv || strcmp(sl[k].s, r.s)))
			k++;
		if (k == ns) {
			if (ns == NS_MAX)
				errx(1, "payload: too many streams");
			struct pstream st = {.iv = iv};
			snprintf(st.s, sizeof st.s, "%s", r.s);
			for (int i = 0; i < LVC_NFEAT; i++)
				st.v.feat[i] = NAN;
			st.v.o = st.v.h = st.v.l = st.v.c = st.v.v = st.v.bv = st.v.av = NAN;
			sl[k] = sr[k] = st;
			cache[k] = st.v;
			ns++;
		}
		(*nrec)++;
		struct lvc_value nv = sr[k].v;
		wsmsg_apply(&nv, &r);
		payload_add(rec, codec, &sr[k], &nv);
		/* the cache takes the bar silently; its feat record is the news,
		 * sent as what changed since the last delta */
		wsmsg_apply(&cache[k], &r);
		if (r.t == MDB_REC_FEAT)
			payload_add(lvc, codec, &sl[k], &cache[k]);
	}
	fclose(f);
	codec_free(&codec);
	bench_rmtmp(dir);
}

static double saved(uint64_t delta, uint64_t snap)
{
	return snap ? 100.0 * (1.0 - (double)delta / (double)snap) : 0;
}

static void payload_report(void)
{
	struct payload lvc, rec;
	uint64_t nrec;
	/* mdb-sim -r 0 makes about 1,000 records a second of market time: 50,000
	 * give 50 one-second bars, enough for every indicator to be defined */
	int ticks = B.smoke ? 3000 : 50000;
	const char *syms = B.smoke ? "-s ES" : "-s ES -s NQ";
	payload_measure(syms, ticks, &lvc, &rec, &nrec);
	printf("delta against full snapshot payload (mdb-sim %s: %d trades and quotes each, "
	       "mdb-validate 1s+1m bars, mdb-feature: %llu records):\n",
	       syms, ticks, (unsigned long long)nrec);
	const struct {
		const char *name;
		struct payload *p;
	} rows[] = {{"with the cache", &lvc}, {"--no-lvc", &rec}};
	for (int i = 0; i < 2; i++) {
		struct payload *p = rows[i].p;
		printf(
		    "  %-15s %7llu deltas: JSON %6.1f B vs %6.1f B a snapshot: %5.1f %% smaller; "
		    "MessagePack %6.1f B vs %6.1f B: %5.1f %% smaller\n",
		    rows[i].name, (unsigned long long)p->n, (double)p->delta[0] / (double)p->n,
		    (double)p->snap[0] / (double)p->n, saved(p->delta[0], p->snap[0]),
		    (double)p->delta[1] / (double)p->n, (double)p->snap[1] / (double)p->n,
		    saved(p->delta[1], p->snap[1]));
	}
	printf("  target: >= 80 %% smaller\n");
	if (B.smoke && (lvc.n == 0 || rec.n == 0 || saved(lvc.delta[0], lvc.snap[0]) <= 0))
		errx(1, "smoke: no delta payload measured");
}

static void find_node(void)
{
	const char *env = getenv("MDB_WS_NODE_MODULES");
	char cand[512];
	snprintf(cand, sizeof cand, "%s/tests/bench/node_modules", B.src);
	const char *dirs[] = {env, cand, "/usr/share/nodejs"}; /* the last: Debian's node-ws */
	for (int i = 0; i < 3; i++) {
		char ws[600];
		if (!dirs[i])
			continue;
		snprintf(ws, sizeof ws, "%s/ws/package.json", dirs[i]);
		if (access(ws, R_OK) == 0 && system("node --version >/dev/null 2>&1") == 0) {
			snprintf(B.node_modules, sizeof B.node_modules, "%s", dirs[i]);
			B.have[SRV_NODE] = true;
			return;
		}
	}
}

/* Debian's python3-websockets lives under /usr/bin/python3, not pyenv's. */
static void find_python(void)
{
	const char *py = getenv("MDB_WS_PYTHON") ? getenv("MDB_WS_PYTHON") : "/usr/bin/python3";
	char cmd[600];
	snprintf(B.python, sizeof B.python, "%s", py);
	snprintf(cmd, sizeof cmd, "'%s' -c 'import websockets' >/dev/null 2>&1", py);
	B.have[SRV_PY] = system(cmd) == 0;
}

/* --pin: the first CPU we may use for the servers, the others for this
 * process (the load client's thread and the publisher); prints the split.
 * With one CPU there is nothing to split: says so and runs unpinned. */
static void pin_setup(void)
{
	cpu_set_t all;
	if (sched_getaffinity(0, sizeof all, &all) < 0)
		err(1, "sched_getaffinity");
	if (CPU_COUNT(&all) < 2) {
		printf("not pinned: --pin needs 2 CPUs, this process may use 1\n");
		B.pin = false;
		return;
	}
	CPU_ZERO(&B.srv_cpus);
	B.load_cpus = all;
	int first = -1;
	char rest[256] = "";
	size_t rl = 0;
	for (int i = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &all))
			continue;
		if (first < 0) {
			first = i;
			CPU_SET(i, &B.srv_cpus);
			CPU_CLR(i, &B.load_cpus);
		} else if (rl < sizeof rest - 16) {
			rl +=
			    (size_t)snprintf(rest + rl, sizeof rest - rl, "%s%d", rl ? "," : "", i);
		}
	}
	if (sched_setaffinity(0, sizeof B.load_cpus, &B.load_cpus) < 0)
		err(1, "sched_setaffinity");
	printf("pinned: every server on CPU %d, the load client and the publisher on CPU %s\n",
	       first, rest);
}

/* Room for every client socket on both ends, and the server's (children
 * inherit the limit). */
static void raise_nofile(int clients)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)clients * 2 + 256;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		errx(1, "%d clients need %llu open files; the limit is %llu", clients,
		     (unsigned long long)want, (unsigned long long)rl.rlim_cur);
}

static _Noreturn void usage(FILE *out)
{
	fprintf(out,
		"usage: bench_ws [--smoke] [--clients N] [--symbols S] [--seconds T] [--runs R]\n"
		"                [--rate UPDATES_PER_S] [--pin] [--busy-poll] [--no-peers]\n"
		"  --smoke        40 clients, 4 symbols, one short run (the test suite's)\n"
		"  --clients N    N clients (default: 1,000, then 5,000)\n"
		"  --symbols S    over S symbols (default 100)\n"
		"  --seconds T    measured seconds per run (default 3)\n"
		"  --runs R       runs per server; medians are printed (default 3)\n"
		"  --rate U       U updates/s only (frames/s = U x clients / symbols);\n"
		"                 default: 50 k frames/s, then pushed hard (2 M offered)\n"
		"  --pin          servers on the first CPU, load client and publisher on the rest\n"
		"  --busy-poll    the load client polls (epoll_wait timeout 0) instead of\n"
		"                 sleeping: sends do not pay for waking it (see bench_ws.c)\n"
		"  --no-peers     mdb-ws alone, without the peers and the bare send() floor\n"
		"                 (MDB_BUILD_DIR names the build to run)\n");
	exit(out == stdout ? 0 : 2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"smoke", no_argument, NULL, 's'},
					   {"clients", required_argument, NULL, 'n'},
					   {"symbols", required_argument, NULL, 'y'},
					   {"seconds", required_argument, NULL, 't'},
					   {"runs", required_argument, NULL, 'r'},
					   {"rate", required_argument, NULL, 'R'},
					   {"pin", no_argument, NULL, 'p'},
					   {"no-peers", no_argument, NULL, 'P'},
					   {"busy-poll", no_argument, NULL, 'b'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	if (argc == 4 && strcmp(argv[1], "--bare-server") == 0)
		bare_server(atoi(argv[2]), atoi(argv[3]));
	B.n = 0;
	B.nsym = 100;
	B.runs = 3;
	B.secs = 3;
	B.warm = 0.5;
	double rate = 0;
	bool no_peers = false;
	int o;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 's':
			B.smoke = true;
			break;
		case 'n':
			B.n = atoi(optarg);
			if (B.n < 1)
				errx(2, "bad --clients");
			break;
		case 'y':
			B.nsym = atoi(optarg);
			break;
		case 't':
			B.secs = atof(optarg);
			break;
		case 'r':
			B.runs = atoi(optarg);
			break;
		case 'R':
			rate = atof(optarg);
			break;
		case 'p':
			B.pin = true;
			break;
		case 'P':
			no_peers = true;
			break;
		case 'b':
			B.busy = true;
			break;
		case 'h':
			usage(stdout);
		default:
			usage(stderr);
		}
	}
	if (B.smoke) {
		B.n = 40, B.nsym = 4, B.runs = 1, B.secs = 1, B.warm = 0.3;
	}
	/* full mode: 1,000 then 5,000 clients, unless --clients says */
	int sizes[2] = {B.n ? B.n : 1000, 5000}, nsizes = B.n ? 1 : 2;
	if (B.nsym < 1 || B.nsym > sizes[0] || B.runs < 1 || B.runs > MAX_RUNS || B.secs <= 0)
		errx(2, "bad arguments");
	B.build = bench_build_dir();
	B.src = getenv("MDB_SOURCE_DIR") ? getenv("MDB_SOURCE_DIR") : MDB_SOURCE_ROOT;
	B.have[SRV_OURS] = true;
	if (!no_peers) {
		find_node();
		find_python();
		B.have[SRV_BARE] = true;
	}
	if (B.pin)
		pin_setup(); /* before the load thread exists: it inherits the mask */
	else
		printf("not pinned: servers, load client and publisher share every CPU\n");
	printf("load client: %s\n",
	       B.busy ? "polls its sockets (--busy-poll)" : "sleeps in epoll_wait between frames");
	fflush(stdout); /* before the runs' lines on stderr */
	signal(SIGPIPE, SIG_IGN);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char dir[512];
	snprintf(dir, sizeof dir, "%s/mdb-benchws.XXXXXX", tmp);
	bench_tmpdir(dir);
	setenv("MDB_SHM_DIR", dir, 1);
	raise_nofile(sizes[nsizes - 1]);
	B.c = calloc((size_t)sizes[nsizes - 1], sizeof *B.c);
	B.caplat = 4u << 20;
	B.lat = malloc(B.caplat * sizeof *B.lat);
	if (!B.c || !B.lat)
		err(1, "malloc");
	if (rate <= 0)
		payload_report();
	for (int i = 0; i < nsizes; i++) {
		B.n = sizes[i];
		if (rate > 0) {
			scenario("fixed rate", rate, GOAL_NONE);
		} else if (B.smoke) {
			scenario("smoke", 500, GOAL_NONE);
		} else {
			scenario("fixed rate, 50k frames/s", 50000.0 * B.nsym / B.n, GOAL_P99);
			/* more than any of them delivers here (mdb-ws about 1.4 M
			 * frames/s at 1,000 clients): at 400 k mdb-ws kept up, so
			 * sent every frame on its own, and was not pushed */
			scenario("pushed hard", (double)PUSHED_FPS * B.nsym / B.n, GOAL_PUSHED);
		}
	}
	bench_rmtmp(dir);
	return 0;
}

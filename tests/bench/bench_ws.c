/* bench_ws.c - mdb-ws fan-out against a broadcast server written with
 * Node's `ws` package doing the same job (DESIGN.md 6).
 *
 * N clients (a C load client: one epoll thread, so it is not the bottleneck)
 * connect to /ws/live_data/SYM<k> over S symbols. A producer thread sends
 * updates round-robin over the symbols at a fixed rate (or as fast as the
 * rate allows), each stamped with CLOCK_REALTIME in its ts field; every
 * update becomes one delta frame to each of the N/S subscribers of its
 * symbol. mdb-ws reads the updates from a ring (feat records; --no-lvc so
 * each record is one delta); the Node peer (tests/bench/ws_peer.js) from a
 * TCP feed of JSON lines. Measured over a window after a warm-up: frames/s
 * delivered to the clients, p50/p99 latency from the stamp to the client's
 * read, and the server's CPU time (all its threads, from schedstat) per
 * delivered frame. Each scenario runs --runs times, ours then the peer's, and
 * prints medians and the ratios.
 *
 * The peer needs node and the ws package: MDB_WS_NODE_MODULES, or
 * tests/bench/node_modules (npm install ws in tests/bench; git ignores it).
 * Without them the peer is reported as missing and only ours runs.
 */
#include "benchutil.h"
#include "record.h"
#include "ring.h"

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS	 1000000000LL
#define MAX_RUNS 15

struct conn {
	int fd;
	size_t len;
	uint8_t buf[32768];
};

static struct {
	int n, nsym, runs;
	double secs, warm;
	bool smoke;
	const char *build, *src;
	char node_modules[512];
	/* the load client */
	struct conn *c;
	_Atomic bool stop, measuring;
	_Atomic uint64_t frames;
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

/* A WebSocket client connection to 127.0.0.1:port path; the handshake's
 * leftover bytes stay in c->buf. */
static void ws_connect(struct conn *c, int port, const char *path)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		err(1, "connect to %d", port);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char req[256];
	int n = snprintf(req, sizeof req,
			 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			 "Sec-WebSocket-Version: 13\r\n\r\n",
			 path);
	if (write(fd, req, (size_t)n) != n)
		err(1, "handshake");
	c->fd = fd;
	c->len = 0;
	char *end = NULL;
	while (!end) {
		ssize_t r = read(fd, c->buf + c->len, sizeof c->buf - c->len - 1);
		if (r <= 0)
			errx(1, "handshake: connection closed");
		c->len += (size_t)r;
		c->buf[c->len] = 0;
		end = strstr((char *)c->buf, "\r\n\r\n");
	}
	if (strncmp((char *)c->buf, "HTTP/1.1 101", 12) != 0)
		errx(1, "handshake refused: %.40s", c->buf);
	size_t head = (size_t)(end + 4 - (char *)c->buf);
	memmove(c->buf, c->buf + head, c->len - head);
	c->len -= head;
}

/* Count the whole frames in c->buf and sample their ts stamps. */
static void frames_in(struct conn *c, int64_t now)
{
	size_t off = 0;
	bool meas = atomic_load_explicit(&B.measuring, memory_order_relaxed);
	for (;;) {
		if (c->len - off < 2)
			break;
		const uint8_t *p = c->buf + off;
		uint64_t n = p[1] & 0x7f;
		size_t h = 2;
		if (n == 126) {
			if (c->len - off < 4)
				break;
			n = (uint64_t)p[2] << 8 | p[3];
			h = 4;
		} else if (n == 127) {
			if (c->len - off < 10)
				break;
			n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | p[2 + i];
			h = 10;
		}
		if (c->len - off < h + n)
			break;
		if (meas && (p[0] & 0x0f) == 1) {
			atomic_fetch_add_explicit(&B.frames, 1, memory_order_relaxed);
			const char *ts = memmem(p + h, n, "\"ts\":", 5);
			if (ts) {
				size_t k =
				    atomic_fetch_add_explicit(&B.nlat, 1, memory_order_relaxed);
				if (k < B.caplat)
					B.lat[k] = now - strtoll(ts + 5, NULL, 10);
			}
		}
		off += h + n;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
}

static void *load_thread(void *arg)
{
	int ep = *(int *)arg;
	struct epoll_event ev[256];
	while (!atomic_load(&B.stop)) {
		int n = epoll_wait(ep, ev, 256, 50);
		int64_t now = now_real();
		for (int i = 0; i < n; i++) {
			struct conn *c = &B.c[ev[i].data.u32];
			ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
			if (r > 0) {
				c->len += (size_t)r;
				frames_in(c, now);
			} else if (r == 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			}
		}
	}
	return NULL;
}

/* CPU time of every thread of pid, ns. */
static int64_t cpu_ns(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	int64_t sum = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[320];
		snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		FILE *f = fopen(p, "r");
		long long v = 0;
		if (f && fscanf(f, "%lld", &v) == 1)
			sum += v;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return sum;
}

struct server {
	pid_t pid;
	int port;
	mdb_ring *ring; /* ours: the ring we produce into */
	int feed;	/* the peer: its TCP feed */
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

static bool start_peer(struct server *s)
{
	if (!B.node_modules[0])
		return false;
	char js[600], wp[16], fp[16], after[64];
	snprintf(js, sizeof js, "%s/tests/bench/ws_peer.js", B.src);
	s->port = free_port();
	int feed_port = free_port();
	snprintf(wp, sizeof wp, "%d", s->port);
	snprintf(fp, sizeof fp, "%d", feed_port);
	setenv("NODE_PATH", B.node_modules, 1);
	char *argv[] = {"node", js, wp, fp, NULL};
	s->pid = spawn(argv, "ready", after, sizeof after);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)feed_port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
		err(1, "peer feed");
	s->feed = fd;
	s->ring = NULL;
	return true;
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

/* One update for symbol k, stamped now. */
static void send_update(struct server *s, int k, uint64_t i)
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
	} else {
		char line[160];
		int n = snprintf(line, sizeof line,
				 "{\"s\":\"%s\",\"ts\":%lld,\"c\":%.2f,\"rsi\":%.3f}\n", sym,
				 (long long)ts, c, c / 10);
		if (write(s->feed, line, (size_t)n) != n)
			err(1, "peer feed");
	}
}

struct result {
	double fps, p50_us, p99_us, cpu_ns_frame;
};

/* Connect the clients, send at rate updates/s for warm + secs, measure. */
static struct result run_one(bool peer, double rate)
{
	struct server s;
	if (peer)
		start_peer(&s);
	else
		start_ours(&s);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < B.n; i++) {
		char path[64];
		snprintf(path, sizeof path, "/ws/live_data/SYM%d?iv=60", i % B.nsym);
		ws_connect(&B.c[i], s.port, path);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, B.c[i].fd, &ev);
	}
	atomic_store(&B.stop, false);
	atomic_store(&B.measuring, false);
	atomic_store(&B.frames, 0);
	atomic_store(&B.nlat, 0);
	pthread_t th;
	pthread_create(&th, NULL, load_thread, &ep);
	usleep(200000); /* subscriptions settle */
	int64_t t0 = mono_ns(), warm_end = t0 + (int64_t)(B.warm * NS),
		end = warm_end + (int64_t)(B.secs * NS), cpu0 = 0, m0 = 0;
	uint64_t i = 0;
	bool meas = false;
	for (;;) {
		int64_t now = mono_ns();
		if (!meas && now >= warm_end) {
			meas = true;
			cpu0 = cpu_ns(s.pid);
			m0 = now;
			atomic_store(&B.measuring, true);
		}
		if (now >= end)
			break;
		int64_t due = t0 + (int64_t)((double)i / rate * NS);
		if (due > now) {
			struct timespec d = {0, due - now > 200000 ? 200000 : due - now};
			nanosleep(&d, NULL);
			continue;
		}
		send_update(&s, (int)(i % (uint64_t)B.nsym), i);
		i++;
	}
	int64_t cpu1 = cpu_ns(s.pid), m1 = mono_ns();
	usleep(100000); /* frames in flight at the end still count their latency */
	atomic_store(&B.measuring, false);
	atomic_store(&B.stop, true);
	pthread_join(th, NULL);
	for (int k = 0; k < B.n; k++)
		close(B.c[k].fd);
	close(ep);
	stop_server(&s);
	struct result r = {0};
	uint64_t frames = atomic_load(&B.frames);
	size_t nl = atomic_load(&B.nlat);
	if (nl > B.caplat)
		nl = B.caplat;
	r.fps = (double)frames / ((double)(m1 - m0) / NS);
	r.cpu_ns_frame = frames ? (double)(cpu1 - cpu0) / (double)frames : 0;
	if (nl) {
		qsort(B.lat, nl, sizeof *B.lat, cmp_i64);
		r.p50_us = (double)B.lat[nl / 2] / 1e3;
		r.p99_us = (double)B.lat[nl * 99 / 100] / 1e3;
	}
	return r;
}

static void scenario(const char *name, double rate)
{
	struct result ours[MAX_RUNS], peer[MAX_RUNS];
	double v[4][MAX_RUNS], w[4][MAX_RUNS];
	bool have_peer = B.node_modules[0] != 0;
	for (int r = 0; r < B.runs; r++) {
		ours[r] = run_one(false, rate);
		if (have_peer)
			peer[r] = run_one(true, rate);
		v[0][r] = ours[r].fps, v[1][r] = ours[r].p50_us, v[2][r] = ours[r].p99_us,
		v[3][r] = ours[r].cpu_ns_frame;
		if (have_peer)
			w[0][r] = peer[r].fps, w[1][r] = peer[r].p50_us, w[2][r] = peer[r].p99_us,
			w[3][r] = peer[r].cpu_ns_frame;
		fprintf(stderr, "  run %d: mdb-ws %.0f frames/s p99 %.0f us %.2f us/frame", r + 1,
			ours[r].fps, ours[r].p99_us, ours[r].cpu_ns_frame / 1e3);
		if (have_peer)
			fprintf(stderr, " | node ws %.0f frames/s p99 %.0f us %.2f us/frame",
				peer[r].fps, peer[r].p99_us, peer[r].cpu_ns_frame / 1e3);
		fputc('\n', stderr);
	}
	double m[4], p[4];
	for (int k = 0; k < 4; k++) {
		m[k] = median(v[k], B.runs);
		p[k] = have_peer ? median(w[k], B.runs) : 0;
	}
	printf("%s (%d clients, %d symbols, %.0f updates/s offered = %.0f frames/s):\n", name, B.n,
	       B.nsym, rate, rate * B.n / B.nsym);
	printf("  mdb-ws:  %9.0f frames/s  p50 %7.0f us  p99 %7.0f us  %6.2f us CPU/frame\n", m[0],
	       m[1], m[2], m[3] / 1e3);
	if (have_peer) {
		printf(
		    "  node ws: %9.0f frames/s  p50 %7.0f us  p99 %7.0f us  %6.2f us CPU/frame\n",
		    p[0], p[1], p[2], p[3] / 1e3);
		printf("  ratio:   %9.2fx frames/s, %.2fx less CPU per frame, p99 %.2fx lower\n",
		       p[0] > 0 ? m[0] / p[0] : 0, m[3] > 0 ? p[3] / m[3] : 0,
		       m[2] > 0 ? p[2] / m[2] : 0);
	} else {
		printf("  node ws: not run (no node or ws package; see the top of bench_ws.c)\n");
	}
	if (B.smoke && (m[0] < 0.5 * rate * B.n / B.nsym || m[2] <= 0))
		errx(1, "smoke: mdb-ws delivered %.0f frames/s of %.0f offered", m[0],
		     rate * B.n / B.nsym);
}

static void find_node(void)
{
	const char *env = getenv("MDB_WS_NODE_MODULES");
	char cand[512];
	snprintf(cand, sizeof cand, "%s/tests/bench/node_modules", B.src);
	const char *dirs[] = {env, cand};
	for (int i = 0; i < 2; i++) {
		char ws[600];
		if (!dirs[i])
			continue;
		snprintf(ws, sizeof ws, "%s/ws/package.json", dirs[i]);
		if (access(ws, R_OK) == 0 && system("node --version >/dev/null 2>&1") == 0) {
			snprintf(B.node_modules, sizeof B.node_modules, "%s", dirs[i]);
			return;
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"smoke", no_argument, NULL, 's'},
					   {"clients", required_argument, NULL, 'n'},
					   {"symbols", required_argument, NULL, 'y'},
					   {"seconds", required_argument, NULL, 't'},
					   {"runs", required_argument, NULL, 'r'},
					   {"rate", required_argument, NULL, 'R'},
					   {NULL, 0, NULL, 0}};
	B.n = 1000;
	B.nsym = 100;
	B.runs = 3;
	B.secs = 3;
	B.warm = 0.5;
	double rate = 0;
	int o;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 's':
			B.smoke = true;
			break;
		case 'n':
			B.n = atoi(optarg);
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
		default:
			fprintf(stderr, "usage: bench_ws [--smoke] [--clients N] [--symbols S] "
					"[--seconds T] [--runs R] [--rate UPDATES_PER_S]\n");
			return 2;
		}
	}
	if (B.smoke) {
		B.n = 40, B.nsym = 4, B.runs = 1, B.secs = 1, B.warm = 0.3;
	}
	if (B.n < 1 || B.nsym < 1 || B.nsym > B.n || B.runs < 1 || B.runs > MAX_RUNS || B.secs <= 0)
		errx(2, "bad arguments");
	B.build = getenv("MDB_BUILD_DIR") ? getenv("MDB_BUILD_DIR") : ".";
	B.src = getenv("MDB_SOURCE_DIR") ? getenv("MDB_SOURCE_DIR") : "..";
	find_node();
	signal(SIGPIPE, SIG_IGN);
	char dir[] = "/dev/shm/mdb-benchws.XXXXXX";
	if (!mkdtemp(dir))
		err(1, "mkdtemp");
	setenv("MDB_SHM_DIR", dir, 1);
	B.c = calloc((size_t)B.n, sizeof *B.c);
	B.caplat = 4u << 20;
	B.lat = malloc(B.caplat * sizeof *B.lat);
	if (!B.c || !B.lat)
		err(1, "malloc");
	if (rate > 0) {
		scenario("fixed rate", rate);
	} else if (B.smoke) {
		scenario("smoke", 500);
	} else {
		scenario("fixed rate, 50k frames/s", 50000.0 * B.nsym / B.n);
		scenario("pushed hard", 400000.0 * B.nsym / B.n);
	}
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	(void)!system(cmd);
	return 0;
}

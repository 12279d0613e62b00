/* bench_fetch.c - mdb-fetch, 500 symbols at a 1-second cadence against a
 * local API server (DESIGN.md section 6, issue 7).
 *
 * The server is this file's own, forked: one process, one epoll loop,
 * keep-alive HTTP/1.1, answering Polygon aggregates v2 requests from the
 * same series as tests/tools/fetch_server.py (whose Python threads topped
 * out near 460 requests/s and were the bottleneck). Its CPU is shown too,
 * so a reader can see the figures are the fetchers'. It answers in two
 * passes: at once (loopback: the fetchers' own cost) and each answer held
 * back --latency ms (20: a web API's round trip, where one request after
 * another cannot keep a 1 s cadence for 500 symbols).
 *
 * Fetchers do the same job in turn for --seconds each run: every second,
 * ask the server for every symbol's bars since its last one, parse the
 * JSON, write the new bars.
 *   mdb-fetch   the real tool (-o - to /dev/null, MessagePack), its pool of
 *               --concurrency transfers over reused connections; its figures
 *               come from its own counters (cycles, cycles_on_time,
 *               requests) and /proc/PID/stat, after a warm-up cycle;
 *   curl-seq    a C loop over the symbols, one libcurl easy transfer after
 *               another on one reused connection, parsed by the same
 *               fetchsrc.c, bars written as JSON lines: the old bridges'
 *               loop at its best;
 *   urllib      the old bridges as they were: Python, urllib.request, one
 *               request after another (a connection each), json.loads
 *               (loopback pass only: behind a round trip it is the C loop's
 *               figure, slower).
 * A cycle is on time when every symbol had its answer before the next
 * second began. Figures per fetcher: cycles on time (count and %),
 * requests/s, burst requests/s (requests per second of the time the
 * fetcher is busy, from the server's clock: the capacity the cadence leaves
 * unused shows here), CPU (% of one
 * core, and us per request); medians of --runs runs, and the ratios of the
 * medians, mdb-fetch against each peer.
 *
 * --smoke: 20 symbols, 3 s, one run: every symbol asked and answered,
 * mdb-fetch's cycles on time in both passes, no error, no bad key; figures
 * printed, not judged. */
#include "benchutil.h"
#include "counters.h"
#include "fetchsrc.h"

#include <ctype.h>
#include <curl/curl.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NS	      1000000000LL
#define MAX_RUNS      99
#define MAX_SYMS      4096
#define MAX_CONNS     4096
#define KEY	      "bench-k3y"
#define TARGET_ONTIME 100.0 /* % of cycles: issue 7 asks for every cycle on time */

struct opts {
	int nsym, runs, seconds, concurrency, latency_ms;
	bool smoke, verbose, no_python;
	char fetch[PATH_MAX]; /* the mdb-fetch binary */
	char dir[64];	      /* scratch: config, logs, counters */
};

#define MAX_TIMES (1 << 20)

/* What the server saw, shared with the bench (MAP_SHARED before fork). */
struct srv_stats {
	_Atomic uint64_t requests, bad, conns;
	_Atomic uint32_t asked[MAX_SYMS]; /* requests per symbol index */
	_Atomic uint64_t nt;		  /* requests timed in t[] */
	_Atomic int64_t latency_ns;	  /* each answer held back this long */
	int64_t t[MAX_TIMES];		  /* CLOCK_MONOTONIC of each request */
};

/* One fetcher's figures over its measured window. */
struct fig {
	double cycles, ontime, reqs, secs, cpu_s;
	double burst; /* requests/s while a cycle's requests go out */
};

/* How fast a fetcher goes through its symbols: the server's request times
 * t[i0..i1) split into bursts at pauses of 50 ms or more (a fetcher idle
 * until its next cycle); requests per second of time inside the bursts (a
 * fetcher that never pauses is one burst: its plain rate). 0 when there is
 * no burst of two requests. */
static double burst_rate(struct srv_stats *st, uint64_t i0, uint64_t i1)
{
	if (i1 > MAX_TIMES)
		i1 = MAX_TIMES;
	if (i1 <= i0 + 1)
		return 0;
	size_t n = (size_t)(i1 - i0);
	double *t = malloc(n * sizeof *t);
	if (!t)
		err(1, "malloc");
	for (size_t i = 0; i < n; i++)
		t[i] = (double)st->t[i0 + i] / 1e9;
	qsort(t, n, sizeof *t, cmp_double);
	double busy = 0, reqs = 0;
	size_t first = 0;
	for (size_t i = 1; i <= n; i++) {
		if (i < n && t[i] - t[i - 1] < 0.05)
			continue;
		busy += t[i - 1] - t[first];
		reqs += (double)(i - 1 - first);
		first = i;
	}
	free(t);
	return busy > 0 ? reqs / busy : 0;
}

static _Noreturn void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: bench_fetch [--smoke] [-s symbols] [-t seconds] [-r runs] [-c conc] [-l ms]\n"
	    "  -s, --symbols N      symbols (default 500)\n"
	    "  -t, --seconds N      measured seconds per fetcher and run (default 10)\n"
	    "  -r, --runs R         runs; medians are shown (default 3)\n"
	    "  -c, --concurrency N  mdb-fetch's transfers at once (default 32)\n"
	    "  -l, --latency MS     the held-back pass: each answer MS later (default 20)\n"
	    "      --no-python      leave the Python urllib peer out\n"
	    "  -v, --verbose        the fetchers' stderr on the terminal\n"
	    "      --smoke          a correctness check in a few seconds\n"
	    "  -h, --help           show this help\n");
	exit(out == stdout ? 0 : 2);
}

/* CPU seconds (user + system) of pid; -1 when gone. */
static double proc_cpu(pid_t pid)
{
	int64_t ns = bench_cpu_ns(pid);
	return ns < 0 ? -1 : (double)ns / 1e9;
}

/* ---- the server ---- */

/* The fixture's series (fetch_server.py): bar k of ticker T opens at
 * 100 + len(T) + (k % 40) / 4; the forming bar's close moves each second. */
static int bars_json(char *out, size_t cap, const char *t, int64_t from_ms, int64_t to_ms)
{
	int64_t now = wall_ns() / NS, iv = 60;
	int64_t first = (from_ms / 1000 + iv - 1) / iv * iv;
	size_t len = 0;
	int n = 0;
	len += (size_t)snprintf(out + len, cap - len,
				"{\"ticker\":\"%s\",\"status\":\"OK\","
				"\"adjusted\":true,\"results\":[",
				t);
	for (int64_t ts = first; ts * 1000 <= to_ms && ts <= now && len + 200 < cap;
	     ts += iv, n++) {
		int64_t k = ts / iv;
		double o = 100 + (double)strlen(t) + (double)(k % 40) / 4, c;
		c = ts + iv > now ? o + (double)((now - ts) % 4) / 4 : o + 0.5;
		len += (size_t)snprintf(out + len, cap - len,
					"%s{\"v\":%lld,\"o\":%.2f,\"c\":%.2f,\"h\":%.2f,\"l\":%.2f,"
					"\"t\":%lld,\"n\":5}",
					n ? "," : "", (long long)(100 + k % 7), o, c,
					(o > c ? o : c) + 0.25, (o < c ? o : c) - 0.25,
					(long long)ts * 1000);
	}
	len += (size_t)snprintf(out + len, cap - len, "],\"resultsCount\":%d}", n);
	return (int)len;
}

struct conn {
	char in[8192];
	size_t inlen;
	char out[65536];
	size_t outlen, outoff;
	size_t ready; /* out[outoff..ready) may be written: its time has come */
	uint32_t gen; /* tells this connection from a later one on its fd */
	bool close_after;
};

/* Answers held back by the latency wanted, in the order they are due (one
 * latency for all, so arrival order is due order: a FIFO, no heap). */
struct due {
	int fd;
	uint32_t gen;
	size_t end; /* c->ready becomes this */
	int64_t at;
};
#define DUE_MAX 65536
static struct due dueq[DUE_MAX];
static unsigned due_head, due_tail;

/* Answer one request (its head is req[0..len)) into c->out. */
static void answer(struct conn *c, const char *req, size_t len, struct srv_stats *st)
{
	char path[1024] = "", body[16384], t[64] = "";
	long long mult, from = 0, to = 0;
	char span[16];
	int code = 200, blen;
	const char *sp = memchr(req, ' ', len);
	if (sp) {
		const char *e = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - req));
		size_t pl = e ? (size_t)(e - sp - 1) : 0;
		if (pl < sizeof path) {
			memcpy(path, sp + 1, pl);
			path[pl] = '\0';
		}
	}
	char *key = strstr(path, "apiKey=");
	if (sscanf(path, "/v2/aggs/ticker/%63[^/]/range/%lld/%15[a-z]/%lld/%lld", t, &mult, span,
		   &from, &to) != 5 ||
	    !key || strcmp(key + 7, KEY) != 0) {
		atomic_fetch_add(&st->bad, 1);
		code = 404;
		blen =
		    snprintf(body, sizeof body, "{\"status\":\"ERROR\",\"error\":\"bad request\"}");
	} else {
		int idx = atoi(t + 1); /* S0001 ... */
		if (t[0] == 'S' && idx >= 0 && idx < MAX_SYMS)
			atomic_fetch_add(&st->asked[idx], 1);
		blen = bars_json(body, sizeof body, t, from, to);
	}
	atomic_fetch_add(&st->requests, 1);
	uint64_t k = atomic_fetch_add(&st->nt, 1);
	if (k < MAX_TIMES)
		st->t[k] = mono_ns();
	/* "Connection: close" (urllib) in the head: close once answered */
	for (size_t i = 0; i + 17 <= len; i++)
		if (strncasecmp(req + i, "connection: close", 17) == 0)
			c->close_after = true;
	if (c->outlen + (size_t)blen + 256 > sizeof c->out)
		return; /* a client this far behind gets no more answers */
	c->outlen += (size_t)snprintf(c->out + c->outlen, sizeof c->out - c->outlen,
				      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
				      "Content-Length: %d\r\n%s\r\n",
				      code, code == 200 ? "OK" : "Not Found", blen,
				      c->close_after ? "Connection: close\r\n" : "");
	memcpy(c->out + c->outlen, body, (size_t)blen);
	c->outlen += (size_t)blen;
}

static void conn_drop(int ep, struct conn **conns, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	free(conns[fd]);
	conns[fd] = NULL;
}

/* Write what c may; returns false when the connection is to be dropped. */
static bool conn_flush(int ep, struct conn *c, int fd)
{
	while (c->outoff < c->ready) {
		ssize_t n = write(fd, c->out + c->outoff, c->ready - c->outoff);
		if (n < 0 && errno == EAGAIN) {
			struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
			epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
			return true;
		}
		if (n <= 0)
			return false;
		c->outoff += (size_t)n;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
	if (c->outoff < c->outlen)
		return true; /* answers still held back */
	c->outoff = c->outlen = c->ready = 0;
	return !c->close_after;
}

static _Noreturn void serve(int lfd, struct srv_stats *st)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct conn **conns = calloc(MAX_CONNS, sizeof *conns);
	if (ep < 0 || !conns)
		_exit(1);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[256];
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	uint32_t gen = 0;
	for (;;) {
		int wait_ms = -1;
		if (due_head != due_tail) {
			int64_t d = dueq[due_head % DUE_MAX].at - mono_ns();
			wait_ms = d <= 0 ? 0 : (int)((d + 999999) / 1000000);
		}
		int n = epoll_wait(ep, evs, 256, wait_ms);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int cfd;
				while ((cfd = accept4(lfd, NULL, NULL,
						      SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if (cfd >= MAX_CONNS ||
					    !(conns[cfd] = calloc(1, sizeof **conns))) {
						close(cfd);
						continue;
					}
					conns[cfd]->gen = ++gen;
					int one = 1;
					setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct epoll_event ce = {.events = EPOLLIN, .data.fd = cfd};
					epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ce);
					atomic_fetch_add(&st->conns, 1);
				}
				continue;
			}
			struct conn *c = conns[fd];
			if (!c)
				continue;
			if (evs[i].events & EPOLLOUT) {
				if (!conn_flush(ep, c, fd))
					conn_drop(ep, conns, fd);
				continue;
			}
			ssize_t r = read(fd, c->in + c->inlen, sizeof c->in - c->inlen);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0) {
				conn_drop(ep, conns, fd);
				continue;
			}
			c->inlen += (size_t)r;
			char *end;
			int64_t lat = atomic_load(&st->latency_ns);
			while (c->inlen > 0 && (end = memmem(c->in, c->inlen, "\r\n\r\n", 4))) {
				size_t hl = (size_t)(end + 4 - c->in);
				answer(c, c->in, hl, st);
				if (lat > 0 && due_tail - due_head < DUE_MAX)
					dueq[due_tail++ % DUE_MAX] =
					    (struct due){fd, c->gen, c->outlen, mono_ns() + lat};
				else
					c->ready = c->outlen;
				memmove(c->in, c->in + hl, c->inlen - hl);
				c->inlen -= hl;
			}
			if (c->inlen == sizeof c->in || !conn_flush(ep, c, fd))
				conn_drop(ep, conns, fd);
		}
		/* the held-back answers whose time has come */
		int64_t now = mono_ns();
		while (due_head != due_tail && dueq[due_head % DUE_MAX].at <= now) {
			struct due d = dueq[due_head++ % DUE_MAX];
			struct conn *c = conns[d.fd];
			if (!c || c->gen != d.gen)
				continue; /* that connection is gone */
			if (d.end > c->ready && d.end <= c->outlen)
				c->ready = d.end;
			if (!conn_flush(ep, c, d.fd))
				conn_drop(ep, conns, d.fd);
		}
	}
}

static pid_t start_server(int *port, struct srv_stats *st)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
		err(1, "server socket");
	*port = ntohs(a.sin_port);
	pid_t pid = fork();
	if (pid < 0)
		err(1, "fork");
	if (pid == 0)
		serve(lfd, st);
	close(lfd);
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* ---- mdb-fetch ---- */

struct cnt_want {
	pid_t pid;
	const char *const *names;
	uint64_t *val;
	int n, found;
};

static int cnt_pick(const struct counters_view *v, void *arg)
{
	struct cnt_want *w = arg;
	if (v->pid != w->pid)
		return 0;
	for (int k = 0; k < w->n; k++)
		for (int i = 0; i < v->n; i++)
			if (strcmp(v->c[i].name, w->names[k]) == 0)
				w->val[k] = v->c[i].value, w->found++;
	return 1;
}

enum { C_CYCLES, C_ONTIME, C_REQ, C_ERR, C_OUT, C_BAD, C_N };
static const char *const cnames[C_N] = {"cycles", "cycles_on_time", "requests", "errors",
					"out",	  "bad_bars"};

static bool read_counters(pid_t pid, uint64_t *val)
{
	struct cnt_want w = {pid, cnames, val, C_N, 0};
	memset(val, 0, C_N * sizeof *val);
	counters_scan(cnt_pick, &w);
	return w.found == C_N;
}

static bool run_fetch(const struct opts *o, int port, struct srv_stats *st, int run, struct fig *f,
		      uint64_t *total)
{
	char conf[PATH_MAX], log[PATH_MAX];
	snprintf(conf, sizeof conf, "%s/fetch.conf", o->dir);
	snprintf(log, sizeof log, "%s/fetch%d.err", o->dir, run);
	FILE *c = fopen(conf, "w");
	if (!c)
		err(1, "%s", conf);
	fprintf(c,
		"source pg type=polygon url=http://127.0.0.1:%d key=BENCH_FETCH_KEY "
		"concurrency=%d timeout=5s\nsymbols",
		port, o->concurrency);
	for (int i = 0; i < o->nsym; i++)
		fprintf(c, " S%04d", i);
	fprintf(c, "\n");
	fclose(c);
	pid_t pid = fork();
	if (pid < 0)
		err(1, "fork");
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(null, STDOUT_FILENO);
		if (!o->verbose)
			dup2(lfd, STDERR_FILENO);
		setenv("BENCH_FETCH_KEY", KEY, 1);
		execl(o->fetch, "mdb-fetch", "-c", conf, "--lookback", "5m", (char *)NULL);
		_exit(127);
	}
	uint64_t a[C_N], b[C_N];
	/* warm-up: the first cycle (history of every symbol, new connections) */
	int64_t t0 = mono_ns();
	while (!read_counters(pid, a) || a[C_CYCLES] < 2) {
		if (mono_ns() - t0 > 15 * NS) {
			stop(pid);
			warnx("mdb-fetch did not start (see %s)", log);
			return false;
		}
		bench_sleep_until(mono_ns() + NS / 20);
	}
	/* align on a tick: measure whole cycles */
	uint64_t c0 = a[C_CYCLES];
	while (read_counters(pid, a) && a[C_CYCLES] == c0)
		bench_sleep_until(mono_ns() + NS / 100);
	double cpu0 = proc_cpu(pid);
	int64_t m0 = mono_ns();
	uint64_t n0 = atomic_load(&st->nt);
	bench_sleep_until(m0 + (int64_t)o->seconds * NS - NS / 2);
	c0 = a[C_CYCLES] + (uint64_t)o->seconds;
	while (read_counters(pid, b) && b[C_CYCLES] < c0 && mono_ns() - m0 < (o->seconds + 2) * NS)
		bench_sleep_until(mono_ns() + NS / 100);
	double cpu1 = proc_cpu(pid);
	int64_t m1 = mono_ns();
	f->burst = burst_rate(st, n0, atomic_load(&st->nt));
	bool ok = read_counters(pid, b);
	stop(pid);
	if (!ok)
		return false;
	f->cycles = (double)(b[C_CYCLES] - a[C_CYCLES]);
	f->ontime = (double)(b[C_ONTIME] - a[C_ONTIME]);
	f->reqs = (double)(b[C_REQ] - a[C_REQ]);
	f->secs = (double)(m1 - m0) / NS;
	f->cpu_s = cpu1 - cpu0;
	memcpy(total, b, sizeof b);
	return true;
}

/* ---- peers ---- */

struct body {
	char *p;
	size_t len, cap;
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
	struct body *b = arg;
	size_t add = sz * n;
	if (b->len + add > b->cap)
		return 0; /* too big for a bench answer: the transfer fails */
	memcpy(b->p + b->len, p, add);
	b->len += add;
	return add;
}

static double self_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The C peer, in a child: every second, each symbol in turn over one
 * reused connection, parsed by fetchsrc.c, its new bars written as JSON
 * lines (to /dev/null). The first cycle is a warm-up. Reports "cycles
 * ontime requests cpu_s secs" on fd out. */
static _Noreturn void curl_peer(const struct opts *o, int port, int out)
{
	CURL *h = curl_easy_init();
	mdb_tzcache *z = tzcache_new();
	FILE *sink = fopen("/dev/null", "w");
	if (!h || !z || !sink)
		_exit(1);
	struct fsrc_result res = {0};
	int64_t *last = calloc((size_t)o->nsym, sizeof *last);
	char base[64], url[512], tick[16];
	snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
	struct body body = {malloc(1 << 16), 0, 1 << 16};
	if (!last || !body.p)
		_exit(1);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	double cycles = 0, ontime = 0, reqs = 0, cpu0 = 0; /* CPU: getrusage, finer than /proc */
	int64_t start = mono_ns(), m0 = 0;
	for (int cyc = 0;; cyc++) {
		if (cyc == 1) {
			m0 = start;
			cpu0 = self_cpu();
		}
		if (cyc > 0 && start - m0 >= (int64_t)o->seconds * NS)
			break;
		int64_t wall = wall_ns();
		for (int i = 0; i < o->nsym; i++) {
			snprintf(tick, sizeof tick, "S%04d", i);
			struct fsrc_req rq = {
			    .base = base,
			    .ticker = tick,
			    .iv = 60,
			    .key = KEY,
			    .from_ns = last[i] ? last[i] : (wall - 300 * NS) / (60 * NS) * 60 * NS,
			    .to_ns = (wall / (60 * NS) + 1) * 60 * NS};
			if (fsrc_url(FSRC_POLYGON, &rq, url, sizeof url) < 0)
				_exit(1);
			body.len = 0;
			curl_easy_setopt(h, CURLOPT_URL, url);
			long code = 0;
			if (curl_easy_perform(h) == CURLE_OK)
				curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
			if (cyc > 0)
				reqs++;
			if (fsrc_parse(FSRC_POLYGON, code, body.p, body.len, 60, z, &res) < 0)
				_exit(1);
			for (int k = 0; k < res.n; k++) {
				const struct fsrc_bar *b = &res.bar[k];
				fprintf(
				    sink,
				    "{\"t\":\"bar\",\"s\":\"%s\",\"ts\":%lld,\"iv\":60,\"o\":%g,"
				    "\"h\":%g,\"l\":%g,\"c\":%g,\"v\":%g,\"n\":%lld}\n",
				    tick, (long long)b->ts, b->o, b->h, b->l, b->c, b->v,
				    (long long)b->n);
				last[i] = b->ts;
			}
		}
		int64_t end = mono_ns();
		if (cyc > 0) {
			cycles++;
			ontime += end <= start + NS;
		}
		if (end < start + NS) {
			bench_sleep_until(start + NS);
			start += NS;
		} else {
			start = end; /* late: the next cycle at once */
		}
	}
	double cpu = self_cpu() - cpu0;
	dprintf(out, "%.0f %.0f %.0f %.6f %.6f\n", cycles, ontime, reqs, cpu,
		(double)(mono_ns() - m0) / NS);
	_exit(0);
}

/* The old bridges: Python, urllib.request, one request after another. */
static const char PY_PEER[] =
    "import json, os, sys, time, urllib.request\n"
    "port, key, nsym, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])\n"
    "last = {}\n"
    "out = open(os.devnull, 'w')\n"
    "cycles = ontime = reqs = 0\n"
    "start = time.monotonic()\n"
    "m0 = cpu0 = None\n"
    "cyc = 0\n"
    "while True:\n"
    "    if cyc == 1:\n"
    "        m0, cpu0 = start, sum(os.times()[:2])\n"
    "    if cyc > 0 and start - m0 >= secs:\n"
    "        break\n"
    "    now = time.time()\n"
    "    for i in range(nsym):\n"
    "        t = 'S%04d' % i\n"
    "        frm = last.get(t, int(now - 300) // 60 * 60 * 1000)\n"
    "        to = (int(now) // 60 + 1) * 60 * 1000 - 1\n"
    "        url = ('http://127.0.0.1:%s/v2/aggs/ticker/%s/range/1/minute/%d/%d'\n"
    "               '?adjusted=true&sort=asc&limit=50000&apiKey=%s' % (port, t, frm, to, key))\n"
    "        with urllib.request.urlopen(url, timeout=5) as r:\n"
    "            d = json.loads(r.read())\n"
    "        if cyc > 0:\n"
    "            reqs += 1\n"
    "        for b in d.get('results', []):\n"
    "            if b['h'] < b['l']:\n"
    "                continue\n"
    "            out.write(json.dumps({'t': 'bar', 's': t, 'ts': b['t'] * 10**6, 'iv': 60,\n"
    "                'o': b['o'], 'h': b['h'], 'l': b['l'], 'c': b['c'], 'v': b['v'],\n"
    "                'n': b['n']}) + '\\n')\n"
    "            last[t] = b['t']\n"
    "    end = time.monotonic()\n"
    "    if cyc > 0:\n"
    "        cycles += 1\n"
    "        ontime += end <= start + 1\n"
    "    if end < start + 1:\n"
    "        time.sleep(start + 1 - end)\n"
    "        start += 1\n"
    "    else:\n"
    "        start = end\n"
    "    cyc += 1\n"
    "print(cycles, ontime, reqs, sum(os.times()[:2]) - cpu0, time.monotonic() - m0)\n";

/* Run a peer (curl: in a forked child; else Python) and read its figures. */
static bool run_peer(const struct opts *o, int port, struct srv_stats *st, bool python,
		     struct fig *f)
{
	uint64_t n0 = atomic_load(&st->nt);
	int p[2];
	if (pipe(p) < 0)
		err(1, "pipe");
	pid_t pid = fork();
	if (pid < 0)
		err(1, "fork");
	if (pid == 0) {
		close(p[0]);
		if (!python)
			curl_peer(o, port, p[1]);
		char ps[16], ns[16], ss[16];
		snprintf(ps, sizeof ps, "%d", port);
		snprintf(ns, sizeof ns, "%d", o->nsym);
		snprintf(ss, sizeof ss, "%d", o->seconds);
		dup2(p[1], STDOUT_FILENO);
		execlp("python3", "python3", "-c", PY_PEER, ps, KEY, ns, ss, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[256] = "";
	FILE *in = fdopen(p[0], "r");
	bool ok = in && fgets(buf, sizeof buf, in) &&
		  sscanf(buf, "%lf %lf %lf %lf %lf", &f->cycles, &f->ontime, &f->reqs, &f->cpu_s,
			 &f->secs) == 5;
	if (in)
		fclose(in);
	int status;
	waitpid(pid, &status, 0);
	f->burst = burst_rate(st, n0, atomic_load(&st->nt));
	if (!ok || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		warnx("%s peer failed (status %d)", python ? "python urllib" : "curl-seq", status);
		return false;
	}
	return true;
}

/* ---- main ---- */

enum { F_FETCH, F_CURL, F_PY, F_N };
/* the figures kept per run */
enum { V_CYC, V_ON, V_ONPCT, V_RPS, V_BURST, V_CPU, V_US, NV };
static const char *const fnames[F_N] = {"mdb-fetch", "curl-seq (C, sequential)",
					"urllib (Python, sequential)"};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"symbols", required_argument, NULL, 's'},
	    {"seconds", required_argument, NULL, 't'},
	    {"runs", required_argument, NULL, 'r'},
	    {"concurrency", required_argument, NULL, 'c'},
	    {"no-python", no_argument, NULL, 'P'},
	    {"latency", required_argument, NULL, 'l'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"smoke", no_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o = {
	    .nsym = 500, .runs = 3, .seconds = 10, .concurrency = 32, .latency_ms = 20};
	int opt;
	while ((opt = getopt_long(argc, argv, "s:t:r:c:l:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			o.nsym = atoi(optarg);
			if (o.nsym < 1 || o.nsym > MAX_SYMS)
				errx(2, "-s: 1 to %d", MAX_SYMS);
			break;
		case 't':
			o.seconds = atoi(optarg);
			if (o.seconds < 2 || o.seconds > 3600)
				errx(2, "-t: 2 to 3600");
			break;
		case 'r':
			o.runs = atoi(optarg);
			if (o.runs < 1 || o.runs > MAX_RUNS)
				errx(2, "-r: 1 to %d", MAX_RUNS);
			break;
		case 'c':
			o.concurrency = atoi(optarg);
			if (o.concurrency < 1 || o.concurrency > 256)
				errx(2, "-c: 1 to 256");
			break;
		case 'l':
			o.latency_ms = atoi(optarg);
			if (o.latency_ms < 1 || o.latency_ms > 1000)
				errx(2, "-l: 1 to 1000 ms");
			break;
		case 'P':
			o.no_python = true;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'S':
			o.smoke = true;
			break;
		case 'h':
			usage(stdout);
		default:
			usage(stderr);
		}
	}
	if (o.smoke) {
		o.nsym = 20;
		o.seconds = 3;
		o.runs = 1;
	}
	bench_tool(o.fetch, sizeof o.fetch, "mdb-fetch");
	if (access(o.fetch, X_OK) < 0)
		err(1, "%s", o.fetch);
	snprintf(o.dir, sizeof o.dir, "/tmp/mdb-bench-fetch.XXXXXX");
	bench_tmpdir(o.dir);
	setenv("MDB_SHM_DIR", o.dir, 1);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		errx(1, "curl_global_init");
	struct srv_stats *st =
	    mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st == MAP_FAILED)
		err(1, "mmap");
	int port;
	pid_t srv = start_server(&port, st);

	printf("bench_fetch: %d symbols, 1 s cadence, %d s measured per fetcher, %d run%s; "
	       "Polygon-shaped answers from a local epoll server, at once (loopback) and held "
	       "back %d ms (an API's round trip); mdb-fetch with %d transfers at once\n",
	       o.nsym, o.seconds, o.runs, o.runs > 1 ? "s (medians)" : "", o.latency_ms,
	       o.concurrency);
	int status = 0;
	static double R[2][F_N][NV][MAX_RUNS], srv_cpu[2][MAX_RUNS];
	uint64_t total[C_N] = {0};
	for (int r = 0; r < o.runs && !status; r++) {
		for (int ph = 0; ph < 2 && !status; ph++) {
			atomic_store(&st->latency_ns, ph ? (int64_t)o.latency_ms * 1000000 : 0);
			for (int k = 0; k < F_N && !status; k++) {
				/* a sequential Python loop behind a round trip is the
				 * C loop's figure, only slower: left out */
				if (k == F_PY && (o.no_python || ph == 1))
					continue;
				struct fig f = {0};
				double s0 = proc_cpu(srv);
				bool ok = k == F_FETCH ? run_fetch(&o, port, st, r, &f, total)
						       : run_peer(&o, port, st, k == F_PY, &f);
				if (k == F_FETCH)
					srv_cpu[ph][r] =
					    100 * (proc_cpu(srv) - s0) / (f.secs > 0 ? f.secs : 1);
				if (!ok || f.cycles < 1 || f.secs <= 0) {
					warnx("%s: no figures", fnames[k]);
					status = 1;
					break;
				}
				double *v[NV];
				for (int q = 0; q < NV; q++)
					v[q] = &R[ph][k][q][r];
				*v[V_CYC] = f.cycles;
				*v[V_ON] = f.ontime;
				*v[V_ONPCT] = 100 * f.ontime / f.cycles;
				*v[V_RPS] = f.reqs / f.secs;
				*v[V_BURST] = f.burst;
				*v[V_CPU] = 100 * f.cpu_s / f.secs;
				*v[V_US] = f.reqs > 0 ? 1e6 * f.cpu_s / f.reqs : 0;
				printf(
				    "  run %d %-9s %-28s cycles on time %3.0f/%-3.0f %5.1f %%  "
				    "%6.0f req/s  burst %6.0f req/s  CPU %5.1f %%  %6.1f us/req\n",
				    r + 1, ph ? "held" : "loopback", fnames[k], f.ontime, f.cycles,
				    *v[V_ONPCT], *v[V_RPS], f.burst, *v[V_CPU], *v[V_US]);
				fflush(stdout);
			}
		}
	}
	stop(srv);
	for (int ph = 0; ph < 2 && !status; ph++) {
		int n = o.runs;
		printf("\n%s, medians of %d run%s     cycles on time        req/s  burst req/s"
		       "    CPU %%   CPU us/req\n",
		       ph ? "answers held back" : "loopback", n, n > 1 ? "s" : "");
		if (ph)
			printf("  (each answer %d ms after its request)\n", o.latency_ms);
		double m[F_N][NV];
		for (int k = 0; k < F_N; k++) {
			if (k == F_PY && (o.no_python || ph == 1))
				continue;
			for (int q = 0; q < NV; q++)
				m[k][q] = median(R[ph][k][q], n);
			printf("  %-28s %4.0f/%-4.0f %5.1f %%  %8.0f  %11.0f  %7.1f  %11.1f\n",
			       fnames[k], m[k][V_ON], m[k][V_CYC], m[k][V_ONPCT], m[k][V_RPS],
			       m[k][V_BURST], m[k][V_CPU], m[k][V_US]);
		}
		for (int k = 1; k < F_N; k++) {
			if (k == F_PY && (o.no_python || ph == 1))
				continue;
			/* ratios of the medians: each figure's median over the runs */
			printf(
			    "  mdb-fetch vs %-28s req/s x%.2f, burst x%.2f; the peer spends x%.2f "
			    "the CPU per request\n",
			    fnames[k], m[F_FETCH][V_RPS] / m[k][V_RPS],
			    m[k][V_BURST] > 0 ? m[F_FETCH][V_BURST] / m[k][V_BURST] : 0,
			    m[F_FETCH][V_US] > 0 ? m[k][V_US] / m[F_FETCH][V_US] : 0);
		}
		printf("  fixture server CPU while mdb-fetch ran: %.1f %% of a core\n",
		       median(srv_cpu[ph], n));
		printf("  target: every cycle on time for %d symbols: %s\n", o.nsym,
		       m[F_FETCH][V_ONPCT] >= TARGET_ONTIME ? "met" : "NOT met");
	}
	if (o.smoke && !status) {
		/* correctness, not speed: every symbol asked every cycle and
		 * answered, nothing refused, mdb-fetch on time with 20 symbols */
		uint32_t fewest = UINT32_MAX;
		for (int i = 0; i < o.nsym; i++)
			if (atomic_load(&st->asked[i]) < fewest)
				fewest = atomic_load(&st->asked[i]);
		if (atomic_load(&st->bad))
			warnx("smoke: %llu bad requests at the server",
			      (unsigned long long)atomic_load(&st->bad)),
			    status = 1;
		if (fewest < (uint32_t)o.seconds)
			warnx("smoke: a symbol asked only %u times", fewest), status = 1;
		if (total[C_ERR] || total[C_BAD] || total[C_OUT] < (uint64_t)o.nsym)
			warnx("smoke: mdb-fetch errors %llu, bad bars %llu, bars out %llu",
			      (unsigned long long)total[C_ERR], (unsigned long long)total[C_BAD],
			      (unsigned long long)total[C_OUT]),
			    status = 1;
		for (int ph = 0; ph < 2; ph++)
			if (R[ph][F_FETCH][V_ON][0] < R[ph][F_FETCH][V_CYC][0] - 1)
				warnx("smoke: mdb-fetch (%s) on time in %.0f of %.0f cycles",
				      ph ? "held" : "loopback", R[ph][F_FETCH][V_ON][0],
				      R[ph][F_FETCH][V_CYC][0]),
				    status = 1;
		if (total[C_REQ] < (uint64_t)o.nsym * (uint64_t)o.seconds)
			warnx("smoke: mdb-fetch sent %llu requests",
			      (unsigned long long)total[C_REQ]),
			    status = 1;
		printf("smoke: %s\n", status ? "FAILED" : "ok");
	}
	munmap(st, sizeof *st);
	curl_global_cleanup();
	bench_rmtmp(o.dir);
	return status;
}

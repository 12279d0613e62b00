/* mdb-stat - show every mdb process's counters, read from shared memory.
 *
 * Like AeronStat: no process is asked anything; each keeps its counters in
 * $MDB_SHM_DIR/stat/TOOL.PID.cnt and this tool maps and prints them, once or
 * every interval (with per-second rates from the previous sample).
 */
#include "cli.h"
#include "counters.h"
#include "log.h"
#include "shm.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_INTERVAL_NS 2000000000LL /* -n without -w, as watch(1) */

enum {
	OPT_GC = CLI_OPT_FIRST_TOOL,
};

struct opts {
	bool all;	       /* -a: include processes that are gone */
	bool json;	       /* --json: one object per process per refresh */
	bool gc;	       /* --gc: remove dead processes' files and exit */
	bool tty;	       /* stdout is a terminal: redraw in place */
	long long interval_ns; /* 0: print once */
	const char *interval;  /* -w as given, for the tty header */
	long count;	       /* refreshes to print; 0: until killed */
};

/* One refresh: the views that passed the filter, and when they were taken. */
struct snap {
	struct counters_view *v;
	size_t n, cap;
	int64_t mono_ns; /* CLOCK_MONOTONIC, for rates */
	int64_t real_ns; /* CLOCK_REALTIME, for "ts" */
	bool all;
};

static _Noreturn void usage(FILE *out)
{
	fprintf(out,
		"usage: mdb-stat [-a] [--json] [-w SECONDS] [-n COUNT]\n"
		"       mdb-stat --gc [--json]\n"
		"       mdb-stat -h | -V\n"
		"Print the counters of every mdb process (live ones unless -a).\n"
		"  -a, --all               include processes that are gone\n"
		"      --json              one JSON object per process per refresh\n"
		"  -w, --watch SECONDS     refresh every SECONDS (suffix ms, s, m...), with rates\n"
		"  -n, --count COUNT       stop after COUNT refreshes (default interval 2s)\n"
		"      --gc                remove the files of processes that are gone\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n");
	exit(out == stdout ? 0 : 2);
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* "2026-03-01T12:00:00Z" */
static void fmt_time(char *buf, size_t size, int64_t ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, size, "?");
}

/* Names and labels come from files any group member can write: never let
 * them put control characters on a terminal or break a JSON string. */
static void put_clean(const char *s, bool json)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch >= 0x7f)
			putchar('?');
		else if (json && (ch == '"' || ch == '\\'))
			printf("\\%c", ch);
		else
			putchar(ch);
	}
}

static int collect(const struct counters_view *v, void *arg)
{
	struct snap *s = arg;
	if (!v->alive && !s->all)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct counters_view *nv = realloc(s->v, cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = *v;
	return 0;
}

static int take(struct snap *s)
{
	s->n = 0;
	s->mono_ns = clock_ns(CLOCK_MONOTONIC);
	s->real_ns = clock_ns(CLOCK_REALTIME);
	return counters_scan(collect, s);
}

/* The same process (not just the same pid) in the previous sample. */
static const struct counters_view *find_prev(const struct snap *prev, const struct counters_view *v)
{
	for (size_t i = 0; prev && i < prev->n; i++) {
		const struct counters_view *p = &prev->v[i];
		if (p->pid == v->pid && p->started_ns == v->started_ns &&
		    strcmp(p->tool, v->tool) == 0)
			return p;
	}
	return NULL;
}

/* Rate of counter i per second, false when there is no earlier value.
 * Counters are only ever appended, so a name keeps its index. */
static bool rate_of(const struct counters_view *v, int i, const struct counters_view *p, double dt,
		    double *rate)
{
	if (!p || dt <= 0 || i >= p->n || strcmp(p->c[i].name, v->c[i].name) != 0)
		return false;
	*rate = (double)(int64_t)(v->c[i].value - p->c[i].value) / dt;
	return true;
}

static void print_text(const struct counters_view *v, const struct counters_view *p, double dt)
{
	char started[32], num[24];
	fmt_time(started, sizeof started, v->started_ns);
	put_clean(v->tool, false);
	printf("[%d] ", (int)v->pid);
	put_clean(v->label[0] ? v->label : "-", false);
	printf(" %s started %s\n", v->alive ? "alive" : "gone", started);

	int nw = 0, vw = 0;
	for (int i = 0; i < v->n; i++) {
		int a = (int)strlen(v->c[i].name);
		int b = snprintf(num, sizeof num, "%" PRIu64, v->c[i].value);
		nw = a > nw ? a : nw;
		vw = b > vw ? b : vw;
	}
	for (int i = 0; i < v->n; i++) {
		double rate;
		printf("  ");
		put_clean(v->c[i].name, false);
		printf("%*s  %*" PRIu64, nw - (int)strlen(v->c[i].name), "", vw, v->c[i].value);
		if (rate_of(v, i, p, dt, &rate))
			printf("  %.1f/s", rate);
		putchar('\n');
	}
}

static void print_json(const struct counters_view *v, const struct counters_view *p, double dt,
		       int64_t ts)
{
	printf("{\"tool\":\"");
	put_clean(v->tool, true);
	printf("\",\"pid\":%d,\"label\":\"", (int)v->pid);
	put_clean(v->label, true);
	printf("\",\"alive\":%s,\"started_ns\":%" PRId64 ",\"ts\":%" PRId64 ",\"counters\":{",
	       v->alive ? "true" : "false", v->started_ns, ts);
	for (int i = 0; i < v->n; i++) {
		printf("%s\"", i ? "," : "");
		put_clean(v->c[i].name, true);
		printf("\":%" PRIu64, v->c[i].value);
	}
	putchar('}');
	if (p) {
		printf(",\"rates\":{");
		bool first = true;
		for (int i = 0; i < v->n; i++) {
			double rate;
			if (!rate_of(v, i, p, dt, &rate))
				continue;
			printf("%s\"", first ? "" : ",");
			put_clean(v->c[i].name, true);
			printf("\":%.3f", rate);
			first = false;
		}
		putchar('}');
	}
	printf("}\n");
}

/* Print one refresh. `prev` is the sample before (NULL on the first). */
static void print_snap(const struct opts *o, const struct snap *cur, const struct snap *prev)
{
	static bool printed; /* some refresh printed a block already */
	double dt = prev ? (double)(cur->mono_ns - prev->mono_ns) / 1e9 : 0;
	if (o->tty && o->interval_ns && !o->json) {
		char now[32];
		fmt_time(now, sizeof now, cur->real_ns);
		printf("\033[H\033[2JEvery %s: mdb-stat%s  %s\n\n", o->interval,
		       o->all ? " -a" : "", now);
		if (cur->n == 0)
			printf("no %sprocesses\n", o->all ? "" : "live ");
	} else if (!o->json && printed && cur->n > 0) {
		putchar('\n'); /* a blank line between refreshes */
	}
	printed |= cur->n > 0;
	for (size_t i = 0; i < cur->n; i++) {
		const struct counters_view *p = find_prev(prev, &cur->v[i]);
		if (o->json)
			print_json(&cur->v[i], p, dt, cur->real_ns);
		else
			print_text(&cur->v[i], p, dt);
	}
	if (fflush(stdout) == EOF)
		die(1, "stdout: %s", strerror(errno));
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Sleep until the next tick of a fixed schedule, so refreshes do not drift. */
static void wait_until(struct timespec *deadline, long long interval_ns)
{
	int64_t next = ts_ns(deadline) + interval_ns;
	/* after a stall (suspend, SIGSTOP) count again from now, no burst */
	if (clock_ns(CLOCK_MONOTONIC) > next + interval_ns)
		next = clock_ns(CLOCK_MONOTONIC);
	deadline->tv_sec = next / 1000000000;
	deadline->tv_nsec = next % 1000000000;
	int rc;
	while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL)) == EINTR)
		;
	if (rc)
		die(1, "clock_nanosleep: %s", strerror(rc));
}

static void run_gc(const struct opts *o)
{
	int n = counters_gc();
	if (n < 0)
		die(1, "gc: %s", strerror(-n));
	if (o->json)
		printf("{\"removed\":%d}\n", n);
	else
		printf("removed %d\n", n);
}

int main(int argc, char *argv[])
{
	/* clang-format off: one option per line reads better */
	static const struct option longopts[] = {
	    {"all", no_argument, NULL, 'a'},	     {"watch", required_argument, NULL, 'w'},
	    {"count", required_argument, NULL, 'n'}, {"json", no_argument, NULL, CLI_OPT_JSON},
	    {"gc", no_argument, NULL, OPT_GC},	     {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},     {NULL, 0, NULL, 0},
	};
	/* clang-format on */
	struct mdb_cli cli = {0};
	struct opts o = {0};
	char *end;
	int ch;

	log_init(argv[0]);
	while ((ch = getopt_long(argc, argv, "aw:n:hV", longopts, NULL)) != -1) {
		if (cli_option(&cli, ch, optarg) == 1)
			continue;
		switch (ch) {
		case 'a':
			o.all = true;
			break;
		case 'w':
			if (cli_parse_duration(optarg, &o.interval_ns) < 0 ||
			    o.interval_ns < 1000000)
				die(2, "bad interval '%s' (at least 1ms)", optarg);
			o.interval = optarg;
			break;
		case 'n':
			errno = 0;
			o.count = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || o.count < 1)
				die(2, "bad count '%s'", optarg);
			break;
		case OPT_GC:
			o.gc = true;
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-stat", usage);
	if (argc > 0)
		usage(stderr);
	o.json = cli.json;
	if (o.gc) {
		if (o.all || o.interval_ns || o.count)
			usage(stderr);
		run_gc(&o);
		return fflush(stdout) == EOF ? 1 : 0;
	}
	if (o.count && !o.interval_ns) {
		o.interval_ns = DEFAULT_INTERVAL_NS;
		o.interval = "2s";
	}
	if (!o.interval_ns)
		o.count = 1;
	o.tty = isatty(STDOUT_FILENO);

	struct snap s[2] = {{.all = o.all}, {.all = o.all}};
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	for (long i = 0; o.count == 0 || i < o.count; i++) {
		struct snap *cur = &s[i & 1], *prev = i ? &s[(i - 1) & 1] : NULL;
		if (i)
			wait_until(&deadline, o.interval_ns);
		int rc = take(cur);
		if (rc < 0)
			die(1, "%s/stat: %s", shm_dir(), strerror(-rc));
		print_snap(&o, cur, prev);
	}
	free(s[0].v);
	free(s[1].v);
	return 0;
}

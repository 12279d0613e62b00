/* mdb-sim - a market simulator that writes Sierra Chart .scid files, daily
 * .dly text files, and a JSON snapshot file replaced at every burst.
 *
 * Each symbol's price follows a random walk on a 0.25 tick grid; trades come
 * at a set rate (exponential gaps) and are appended in bursts every flush
 * period, as Sierra Chart does. Everything depends only on --seed and the
 * files already there, never on the clock: the same command makes the same
 * bytes. Each record's SCDateTimeMS is unique and increasing per symbol.
 * With --daily each step is one trading day (weekends skipped), a line of
 * DIR/SYMBOL.dly. With --snapshot FILE the latest quote of every symbol is
 * written after each burst to FILE.tmp, then renamed over FILE, with a seq
 * one above the version it replaces (see snapshot.h).
 */
#include "cli.h"
#include "clock.h"
#include "dly.h"
#include "log.h"
#include "record.h"
#include "scid.h"
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SIM_MAX_SYMBOLS 64
#define SIM_CHUNK	8192 /* records per symbol per write when not paced */
#define SIM_TICK	0.25
#define SIM_LINE_MAX	128 /* bytes of buffer per .dly line */

enum {
	OPT_FLUSH = CLI_OPT_FIRST_TOOL,
	OPT_SEED,
	OPT_START,
	OPT_BARS,
	OPT_QUOTES,
	OPT_SUBTRADES,
	OPT_LOG,
	OPT_DURATION,
	OPT_DAILY,
	OPT_SNAPSHOT,
};

struct sim_sym {
	char name[MDB_SYM_MAX];
	int fd;
	uint64_t rng;
	int64_t dt;		/* SCDateTimeMS of the last record */
	int64_t t0;		/* SCDateTimeMS of the first tick this run (pacing origin) */
	double mid;		/* last trade price */
	long long made;		/* ticks made this run */
	int sub_left;		/* records left of a split trade */
	struct scid_record bar; /* --bars: the bar being formed (bar.dt 0: none) */
	uint8_t *buf;		/* records waiting for the next flush */
	size_t len;
	int64_t day;  /* --daily: days since 1970-01-01 of the last line */
	int64_t q_ts; /* the latest quote, for --snapshot (q_ts 0: none yet) */
	double q_p, q_b, q_a, q_v;
};

static _Noreturn void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mdb-sim [-d DIR] [-s SYMBOL]... [-r RATE] [-n COUNT] [--duration DURATION]\n"
	    "               [--flush-period DURATION] [--seed N] [--start UNIXTIME] [--bars]\n"
	    "               [--quotes FRACTION] [--sub-trades FRACTION] [--log FILE]\n"
	    "               [--daily] [--snapshot FILE]\n"
	    "Write simulated trades to Sierra Chart .scid files DIR/SYMBOL.scid.\n"
	    "  -d, --dir DIR              where the files go (default .)\n"
	    "  -s, --symbol SYMBOL        a symbol (repeatable; default ES)\n"
	    "  -r, --rate RATE            trades per second per symbol; 0: as fast as possible "
	    "(default 10)\n"
	    "  -n, --count COUNT          stop after COUNT records per symbol (--bars: trades)\n"
	    "      --duration DURATION    stop after DURATION of wall time\n"
	    "      --flush-period DURATION  append in bursts this far apart (default 1s)\n"
	    "      --seed N               random seed (default 1)\n"
	    "      --start UNIXTIME       market time of a new file's first trade (default "
	    "1757683800)\n"
	    "      --bars                 write 1-second bars instead of ticks\n"
	    "      --quotes FRACTION      share of records that are bid/ask updates (default 0)\n"
	    "      --sub-trades FRACTION  share of trades split into sub-trades (default 0)\n"
	    "      --log FILE             also write each record as mdb-watch renders it, JSON "
	    "lines\n"
	    "      --daily                write daily bars to DIR/SYMBOL.dly, one a step, instead\n"
	    "      --snapshot FILE        after each burst replace FILE by a JSON snapshot of the\n"
	    "                             latest quote of every symbol\n"
	    "  -h, --help                 show this help\n"
	    "  -V, --version              show the version\n");
	exit(out == stdout ? 0 : 2);
}

/* splitmix64: tiny, fast, and the same on every machine */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rnd01(uint64_t *s)
{
	return (double)(rnd(s) >> 11) * 0x1.0p-53;
}

static void write_all(struct sim_sym *s, const char *dir, const char *ext)
{
	size_t done = 0;
	while (done < s->len) {
		ssize_t n = write(s->fd, s->buf + done, s->len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(1, "%s/%s%s: %s", dir, s->name, ext, strerror(errno));
		done += (size_t)n;
	}
}

/* The random state and first price of symbol number i: from the seed
 * and the name only. */
static void sim_seed(struct sim_sym *s, uint64_t seed, int i)
{
	s->rng = seed * 0x100000001b3ULL + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
	uint64_t h = 0;
	for (const char *p = s->name; *p; p++)
		h = h * 31 + (uint8_t)*p;
	s->mid = 1000 + (double)(h % 4000) * SIM_TICK * 4;
}

/* Open DIR/NAME.scid for appending; a new or empty file gets a header, an
 * existing one is continued after its last complete record. */
static void sim_open(struct sim_sym *s, const char *dir, int64_t start_dt, uint64_t seed, int i)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.scid", dir, s->name);
	s->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (s->fd < 0)
		die(1, "%s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(s->fd, &st) < 0)
		die(1, "%s: %s", path, strerror(errno));
	sim_seed(s, seed, i);
	s->dt = start_dt - 1;
	uint8_t b[SCID_HEADER_SIZE];
	if (st.st_size == 0) {
		scid_header_make(b);
		s->len = 0;
		if (write(s->fd, b, sizeof b) != (ssize_t)sizeof b)
			die(1, "%s: %s", path, strerror(errno));
	} else {
		const char *why;
		int at;
		if (pread(s->fd, b, sizeof b, 0) != (ssize_t)sizeof b ||
		    scid_header_check(b, &why, &at) < 0)
			die(1, "%s: not an SCID file this tool can append to", path);
		off_t nrec = (st.st_size - SCID_HEADER_SIZE) / SCID_RECORD_SIZE;
		if (nrec > 0) {
			struct scid_record r;
			uint8_t rb[SCID_RECORD_SIZE];
			if (pread(s->fd, rb, sizeof rb,
				  SCID_HEADER_SIZE + (nrec - 1) * SCID_RECORD_SIZE) !=
			    (ssize_t)sizeof rb)
				die(1, "%s: %s", path, strerror(errno));
			scid_record_load(rb, &r);
			s->dt = r.dt;
			if (r.close > 0)
				s->mid = r.close;
			s->rng ^= (uint64_t)nrec * 0xd1b54a32d192ed03ULL; /* a new run, new path */
		}
	}
}

/* Make the next record(s) of s into its buffer: one trade (or quote, or
 * sub-trade). In bar mode a trade updates the forming bar and a bar is
 * buffered when a trade falls in a later second. */
static void sim_step(struct sim_sym *s, double rate, bool bars, double quotes, double subs,
		     struct scid_record *out, int *nout)
{
	/* exponential gap, at least 1 us so every time is unique */
	double mean_us = rate > 0 ? 1e6 / rate : 1000;
	int64_t gap = (int64_t)(-log(1 - rnd01(&s->rng)) * mean_us) + 1;
	if (s->sub_left > 0)
		gap = 1; /* the parts of a split trade are 1 us apart */
	s->dt += gap;
	*nout = 0;
	struct scid_record r = {.dt = s->dt};
	double u = rnd01(&s->rng);
	if (s->sub_left == 0 && u < 0.5)
		s->mid += (rnd(&s->rng) & 1) ? SIM_TICK : -SIM_TICK;
	if (s->mid < SIM_TICK * 4)
		s->mid = SIM_TICK * 4;
	float bid = (float)(s->mid - SIM_TICK * (double)(rnd(&s->rng) & 1));
	float ask = bid + (float)SIM_TICK;
	r.high = ask;
	r.low = bid;
	if (!bars && s->sub_left == 0 && rnd01(&s->rng) < quotes) {
		*out = r; /* a bid/ask update: no trade, no volume */
		*nout = 1;
		return;
	}
	bool at_ask = rnd(&s->rng) & 1;
	r.close = at_ask ? ask : bid;
	r.num_trades = 1;
	r.total_volume = 1 + (uint32_t)(rnd(&s->rng) % 10);
	r.bid_volume = at_ask ? 0 : r.total_volume;
	r.ask_volume = at_ask ? r.total_volume : 0;
	if (!bars) {
		if (s->sub_left > 0) {
			s->sub_left--;
			r.open = s->sub_left == 0 ? SCID_LAST_SUB_TRADE : 0;
		} else if (rnd01(&s->rng) < subs) {
			s->sub_left = 1 + (int)(rnd(&s->rng) % 3);
			r.open = SCID_FIRST_SUB_TRADE;
		}
		*out = r;
		*nout = 1;
		return;
	}
	int64_t sec = r.dt - r.dt % 1000000;
	if (s->bar.dt && s->bar.dt != sec) {
		out[(*nout)++] = s->bar;
		s->bar.dt = 0;
	}
	if (!s->bar.dt) {
		s->bar = r;
		s->bar.dt = sec;
		s->bar.open = r.close;
		s->bar.high = r.close;
		s->bar.low = r.close;
		return;
	}
	s->bar.high = fmaxf(s->bar.high, r.close);
	s->bar.low = fminf(s->bar.low, r.close);
	s->bar.close = r.close;
	s->bar.num_trades += 1;
	s->bar.total_volume += r.total_volume;
	s->bar.bid_volume += r.bid_volume;
	s->bar.ask_volume += r.ask_volume;
}

static void sim_log(FILE *log, mdb_codec *codec, const struct sim_sym *s,
		    const struct scid_record *r)
{
	uint8_t mp[MDB_REC_MAX_BYTES];
	char json[4096];
	enum scid_kind kind;
	const char *why;
	int n = scid_encode(r, s->name, 1, -1, 0, mp, sizeof mp, &kind, &why);
	if (n < 0 || (n = record_to_json(codec, mp, (size_t)n, json, sizeof json, &why)) < 0)
		die(1, "log: cannot render a record");
	fwrite(json, 1, (size_t)n, log);
	fputc('\n', log);
}

static void sim_put(struct sim_sym *s, const struct scid_record *r, FILE *log, mdb_codec *codec)
{
	scid_record_store(s->buf + s->len, r);
	s->len += SCID_RECORD_SIZE;
	s->q_ts = scid_to_unix_ns(r->dt);
	bool bar =
	    r->open != 0 && r->open != SCID_FIRST_SUB_TRADE && r->open != SCID_LAST_SUB_TRADE;
	s->q_b = bar ? NAN : r->low;
	s->q_a = bar ? NAN : r->high;
	if (r->total_volume) {
		s->q_p = r->close;
		s->q_v = (isnan(s->q_v) ? 0 : s->q_v) + r->total_volume;
	}
	if (log)
		sim_log(log, codec, s, r);
}

/* Open DIR/NAME.dly for appending; a new or empty file gets the header, an
 * existing one is continued after its last complete line (its date and
 * close). */
static void daily_open(struct sim_sym *s, const char *dir, long long start, uint64_t seed, int i)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.dly", dir, s->name);
	s->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	struct stat st;
	if (s->fd < 0 || fstat(s->fd, &st) < 0)
		die(1, "%s: %s", path, strerror(errno));
	sim_seed(s, seed, i);
	s->day = start / 86400 - 1;
	if (st.st_size == 0) {
		static const char hdr[] = DLY_HEADER "\n";
		if (write(s->fd, hdr, sizeof hdr - 1) != (ssize_t)sizeof hdr - 1)
			die(1, "%s: %s", path, strerror(errno));
		return;
	}
	/* the header, then the last complete line */
	char buf[4 * DLY_LINE_MAX + 1];
	struct dly_header hd;
	struct dly_bar b;
	const char *why;
	ssize_t n = pread(s->fd, buf, DLY_LINE_MAX + 2, 0);
	char *nl = n > 0 ? memchr(buf, '\n', (size_t)n) : NULL;
	if (!nl || dly_header_parse(buf, (size_t)(nl - buf), &hd, &why) < 0)
		die(1, "%s: not a daily file this tool can append to", path);
	off_t from = st.st_size > (off_t)sizeof buf - 1 ? st.st_size - (off_t)sizeof buf + 1 : 0;
	n = pread(s->fd, buf, sizeof buf - 1, from);
	if (n <= 0)
		die(1, "%s: %s", path, n < 0 ? strerror(errno) : "cannot read its end");
	if (buf[n - 1] != '\n')
		die(1, "%s: ends in a partial line", path);
	buf[n - 1] = '\0';
	char *last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	if (from == 0 && last == buf)
		return; /* only the header */
	if (dly_line_parse(&hd, last, strlen(last), &b, &why) < 0)
		die(1, "%s: its last line: %s", path, why);
	s->day = b.ts / 86400000000000LL;
	s->mid = b.c;
	s->rng ^= (uint64_t)st.st_size * 0xd1b54a32d192ed03ULL; /* a new run, new path */
}

/* The next trading day of s as a daily bar (Saturdays and Sundays skipped). */
static void day_step(struct sim_sym *s, struct dly_bar *b)
{
	do
		s->day++;
	while ((s->day + 4) % 7 == 0 || (s->day + 4) % 7 == 6); /* 1970-01-01 was a Thursday */
	double o = s->mid, c = o;
	for (int k = 0; k < 40; k++)
		c += (rnd(&s->rng) & 1) ? SIM_TICK : -SIM_TICK;
	if (c < SIM_TICK * 4)
		c = SIM_TICK * 4;
	b->ts = s->day * 86400000000000LL;
	b->o = o;
	b->c = c;
	b->h = fmax(o, c) + SIM_TICK * (double)(rnd(&s->rng) % 8);
	b->l = fmax(fmin(o, c) - SIM_TICK * (double)(rnd(&s->rng) % 8), SIM_TICK);
	b->v = (double)(100000 + rnd(&s->rng) % 900000);
	b->oi = (double)(rnd(&s->rng) % 50000);
	b->n = b->bv = b->av = NAN;
	s->mid = c;
}

static void daily_put(struct sim_sym *s, const struct dly_bar *b, FILE *log, mdb_codec *codec)
{
	int n = dly_line_format(b, (char *)s->buf + s->len, SIM_LINE_MAX);
	if (n < 0)
		die(1, "%s: a line too long", s->name);
	s->len += (size_t)n;
	s->q_ts = b->ts;
	s->q_p = b->c;
	s->q_b = b->c - SIM_TICK;
	s->q_a = b->c;
	s->q_v = b->v;
	if (!log)
		return;
	/* what mdb-watch reads back: the line as written, not b */
	struct dly_header hd;
	struct dly_bar rb;
	const char *why;
	uint8_t mp[MDB_REC_MAX_BYTES];
	char json[4096];
	if (dly_header_parse(DLY_HEADER, strlen(DLY_HEADER), &hd, &why) < 0 ||
	    dly_line_parse(&hd, (char *)s->buf + s->len - n, (size_t)n, &rb, &why) < 0 ||
	    (n = dly_encode(&rb, s->name, 86400, -1, 0, mp, sizeof mp, &why)) < 0 ||
	    (n = record_to_json(codec, mp, (size_t)n, json, sizeof json, &why)) < 0)
		die(1, "log: cannot render a record");
	fwrite(json, 1, (size_t)n, log);
	fputc('\n', log);
}

/* Replace path by a snapshot of every symbol's latest quote: written to
 * path.tmp, then renamed, so a reader never sees a partial file. */
static void snapshot_write(const char *path, struct sim_sym *ss, int nsyms, uint64_t seq,
			   struct snap *sn, char *buf)
{
	sn->seq = seq;
	sn->ts = 0;
	sn->n = 0;
	for (int i = 0; i < nsyms; i++) {
		const struct sim_sym *s = &ss[i];
		if (!s->q_ts)
			continue;
		struct snap_quote *q = &sn->q[sn->n++];
		memcpy(q->s, s->name, sizeof q->s);
		q->ts = s->q_ts;
		if (q->ts > sn->ts)
			sn->ts = q->ts;
		static const char *const keys[] = {"p", "b", "a", "v"};
		const double vals[] = {s->q_p, s->q_b, s->q_a, s->q_v};
		q->nf = 0;
		for (int k = 0; k < 4; k++) {
			if (isnan(vals[k]))
				continue;
			memcpy(q->key[q->nf], keys[k], 2);
			q->val[q->nf++] = vals[k];
		}
	}
	if (sn->n == 0)
		return;
	int n = snap_format(sn, buf, SNAP_MAX_BYTES);
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = n < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)n) != n || close(fd) < 0 || rename(tmp, path) < 0)
		die(1, "%s: %s", path, n < 0 ? "snapshot too large" : strerror(errno));
}

/* The seq of the snapshot at path, 0 when there is none. */
static uint64_t snapshot_seq(const char *path, struct snap *sn, char *buf)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, SNAP_MAX_BYTES);
	close(fd);
	char why[128];
	if (n < 0 || snap_parse(buf, (size_t)n, sn, why, sizeof why) < 0)
		die(1, "%s: not a snapshot this tool can continue: %s", path,
		    n < 0 ? strerror(errno) : why);
	return sn->seq;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"symbol", required_argument, NULL, 's'},
	    {"rate", required_argument, NULL, 'r'},
	    {"count", required_argument, NULL, 'n'},
	    {"duration", required_argument, NULL, OPT_DURATION},
	    {"flush-period", required_argument, NULL, OPT_FLUSH},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"start", required_argument, NULL, OPT_START},
	    {"bars", no_argument, NULL, OPT_BARS},
	    {"quotes", required_argument, NULL, OPT_QUOTES},
	    {"sub-trades", required_argument, NULL, OPT_SUBTRADES},
	    {"log", required_argument, NULL, OPT_LOG},
	    {"daily", no_argument, NULL, OPT_DAILY},
	    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = ".", *logpath = NULL, *snappath = NULL;
	bool daily = false;
	const char *syms[SIM_MAX_SYMBOLS];
	int nsyms = 0;
	double rate = 10, quotes = 0, subs = 0;
	long long count = -1, duration_ns = -1, flush_ns = 1000000000LL;
	unsigned long long seed = 1;
	long long start = 1757683800; /* 2025-09-12T13:30:00Z */
	bool bars = false;
	struct mdb_cli cli = {0};
	char *end;
	int opt;

	log_init(argv[0]);
	while ((opt = getopt_long(argc, argv, "d:s:r:n:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 's':
			if (nsyms == SIM_MAX_SYMBOLS)
				die(2, "at most %d symbols", SIM_MAX_SYMBOLS);
			if (!*optarg || strlen(optarg) >= MDB_SYM_MAX || strchr(optarg, '/'))
				die(2, "--symbol: not a usable symbol: '%s'", optarg);
			syms[nsyms++] = optarg;
			break;
		case 'r':
			rate = strtod(optarg, &end);
			if (*end || !(rate >= 0) || rate > 1e7)
				die(2, "--rate: not a rate: '%s'", optarg);
			break;
		case 'n':
			count = strtoll(optarg, &end, 10);
			if (*end || count < 0)
				die(2, "--count: not a count: '%s'", optarg);
			break;
		case OPT_DURATION:
			if (cli_parse_duration(optarg, &duration_ns) < 0)
				die(2, "--duration: not a duration: '%s'", optarg);
			break;
		case OPT_FLUSH:
			if (cli_parse_duration(optarg, &flush_ns) < 0 || flush_ns <= 0)
				die(2, "--flush-period: not a duration: '%s'", optarg);
			break;
		case OPT_SEED:
			seed = strtoull(optarg, &end, 0);
			if (*end)
				die(2, "--seed: not a number: '%s'", optarg);
			break;
		case OPT_START:
			start = strtoll(optarg, &end, 10);
			if (*end || start < -2209161600LL || start > 253402300799LL)
				die(2, "--start: not a Unix time: '%s'", optarg);
			break;
		case OPT_BARS:
			bars = true;
			break;
		case OPT_QUOTES:
		case OPT_SUBTRADES: {
			double f = strtod(optarg, &end);
			if (*end || !(f >= 0 && f <= 1))
				die(2, "%s: not a fraction: '%s'",
				    opt == OPT_QUOTES ? "--quotes" : "--sub-trades", optarg);
			*(opt == OPT_QUOTES ? &quotes : &subs) = f;
			break;
		}
		case OPT_LOG:
			logpath = optarg;
			break;
		case OPT_DAILY:
			daily = true;
			break;
		case OPT_SNAPSHOT:
			snappath = optarg;
			break;
		case 'h':
			cli.help = true;
			break;
		case 'V':
			cli.version = true;
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-sim", usage);
	if (argc > 0)
		usage(stderr);
	if (nsyms == 0)
		syms[nsyms++] = "ES";

	/* init */
	cli_catch_signals();
	FILE *log = NULL;
	mdb_codec *codec = NULL;
	if (logpath) {
		log = fopen(logpath, "a");
		codec = codec_new();
		if (!log || !codec)
			die(1, "%s: %s", logpath, strerror(errno));
	}
	struct sim_sym *ss = calloc((size_t)nsyms, sizeof *ss);
	if (!ss)
		die(1, "out of memory");
	int64_t start_dt = scid_from_unix_ns(start * 1000000000LL);
	for (int i = 0; i < nsyms; i++) {
		snprintf(ss[i].name, sizeof ss[i].name, "%s", syms[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(ss[j].name, ss[i].name) == 0)
				die(2, "symbol %s given twice", ss[i].name);
		ss[i].q_p = ss[i].q_b = ss[i].q_a = ss[i].q_v = NAN;
		if (daily)
			daily_open(&ss[i], dir, start, seed, i);
		else
			sim_open(&ss[i], dir, start_dt, seed, i);
		ss[i].t0 = ss[i].dt;
		/* a paced burst holds flush * rate records, plus bars and sub-trades */
		double per = rate > 0 ? rate * ((double)flush_ns / 1e9) * 2 + 16 : SIM_CHUNK;
		if (per < SIM_CHUNK)
			per = SIM_CHUNK;
		ss[i].buf = malloc((size_t)(per + 8) * (daily ? SIM_LINE_MAX : SCID_RECORD_SIZE));
		if (!ss[i].buf)
			die(1, "out of memory");
	}

	struct snap *sn = NULL;
	char *snapbuf = NULL;
	uint64_t seq = 0;
	if (snappath) {
		sn = malloc(sizeof *sn);
		snapbuf = malloc(SNAP_MAX_BYTES);
		if (!sn || !snapbuf)
			die(1, "out of memory");
		seq = snapshot_seq(snappath, sn, snapbuf);
	}

	/* loop: one burst per flush period; market time runs with wall time
	 * (rate > 0; --daily: rate lines a second) or as fast as the disk
	 * takes it (rate 0) */
	int64_t wall0 = mono_ns();
	bool done = false;
	while (!done && !cli_stopping()) {
		int64_t now = mono_ns(), elapsed_us = (now - wall0) / 1000;
		if (duration_ns >= 0 && now - wall0 >= duration_ns)
			break;
		done = true;
		for (int i = 0; i < nsyms; i++) {
			struct sim_sym *s = &ss[i];
			size_t cap = rate > 0 ? (size_t)(rate * ((double)flush_ns / 1e9) * 2 + 16)
					      : SIM_CHUNK;
			if (cap < SIM_CHUNK)
				cap = SIM_CHUNK;
			s->len = 0;
			size_t nbuf = 0;
			while (daily && (count < 0 || s->made < count) && nbuf < cap &&
			       (rate == 0 || (double)s->made <= rate * (double)elapsed_us / 1e6)) {
				struct dly_bar b;
				day_step(s, &b);
				daily_put(s, &b, log, codec);
				s->made++;
				nbuf++;
			}
			while (!daily && (count < 0 || s->made < count) &&
			       s->len / SCID_RECORD_SIZE < cap &&
			       (rate == 0 || s->dt - s->t0 <= elapsed_us)) {
				struct scid_record r[2];
				int n;
				sim_step(s, rate, bars, quotes, subs, r, &n);
				for (int k = 0; k < n; k++)
					sim_put(s, &r[k], log, codec);
				s->made++;
			}
			if (bars && count >= 0 && s->made >= count && s->bar.dt) {
				sim_put(s, &s->bar, log, codec); /* the last, partial second */
				s->bar.dt = 0;
			}
			write_all(s, dir, daily ? ".dly" : ".scid");
			if (count < 0 || s->made < count)
				done = false;
		}
		if (log)
			fflush(log);
		if (snappath)
			snapshot_write(snappath, ss, nsyms, ++seq, sn, snapbuf);
		if (done || rate == 0)
			continue;
		struct timespec ts = {flush_ns / 1000000000LL, flush_ns % 1000000000LL};
		nanosleep(&ts, NULL); /* a stop signal interrupts it (no SA_RESTART) */
	}

	/* finish */
	for (int i = 0; i < nsyms; i++) {
		close(ss[i].fd);
		free(ss[i].buf);
	}
	free(ss);
	free(sn);
	free(snapbuf);
	if (log && fclose(log) != 0)
		die(1, "%s: %s", logpath, strerror(errno));
	codec_free(&codec);
	return 0;
}

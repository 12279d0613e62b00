/* mdb-feature - incremental indicators per (symbol, interval), published as
 * feat records and kept in the shared-memory last-value cache.
 *
 * Each bar is passed on, followed by a feat record with the same key
 * (s, iv, ts). A closed bar (f & final) is committed to its series' state; a
 * forming bar is evaluated against the state committed at the previous
 * close, so repeats and revisions never count twice (common/indicators.h).
 * A repeat or revision of the last closed bar undoes that commit first; a
 * bar older than the last closed one (a revision of an older closed bar, or
 * a late forming bar) cannot be applied in O(1) without corrupting the
 * state: it is passed on, gets no feat, and is counted as stale.
 *
 * Warm-up: a restarted mdb-feature resumes each input ring at its consumer
 * slot, with empty indicator state. Before it reads on, it replays the bars
 * still retained in each input ring before that position (read by a
 * private observer, from the oldest record) through the indicators only:
 * nothing is written and the cache is not touched, so the first features
 * it publishes are computed from the same history as before the restart.
 */
#include "cli.h"
#include "clock.h"
#include "counters.h"
#include "endpoint.h"
#include "indicators.h"
#include "keymap.h"
#include "log.h"
#include "lvc.h"
#include "notify.h"
#include "shm.h"
#include "warmup.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Records passed on between two releases of the input rings (and two
 * publications of the output rings). Under load each publication wakes a
 * sleeping consumer (a futex syscall): 256 makes that a few ns a bar, and a
 * record waits for at most 256 input records (about 100 us at 2 M/s). */
#define RELEASE_EVERY 256
#define DEFAULT_LVC   "mdb"
/* Entries of the recent-series cache (a power of two). */
#define RECENT 4096

enum {
	OPT_LVC = CLI_OPT_FIRST_TOOL,
	OPT_NO_LVC,
	OPT_LVC_SIZE,
	OPT_RSI,
	OPT_EMA_FAST,
	OPT_EMA_SLOW,
	OPT_MACD_SIGNAL,
	OPT_BB,
	OPT_BB_K,
	OPT_ATR,
	OPT_VMA,
	OPT_MOM,
	OPT_SESSION,
	OPT_NO_FORWARD,
};

struct series {
	char s[MDB_SYM_MAX]; /* the key, NUL-padded */
	int32_t iv;
	ind_series *ind;
	int lvc;	   /* slot in the last-value cache, -1: none */
	bool forming;	   /* fb holds the bar being formed */
	struct ind_bar fb; /* the latest values of the forming bar */
};

struct engine {
	struct ind_params p;
	mdb_keymap *keys;
	struct series *ser; /* by keymap index */
	int nser, capser;
	int recent[RECENT]; /* series index + 1 by key_slot(), 0: none */
	mdb_lvc *lvc;
	mdb_outputs *out;
	bool forward;
	int64_t now_ns; /* CLOCK_REALTIME, read once per batch of input records */
	mdb_counter *c_feat, *c_stale, *c_implicit, *c_revised, *c_bad, *c_series, *c_lvc_full,
	    *c_out, *c_err, *c_held, *c_warm;
	uint8_t fbuf[MDB_REC_MAX_BYTES]; /* the encoded feat record */
	struct mdb_record feat;
};

static _Noreturn void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mdb-feature [-i ENDPOINT]... [-o ENDPOINT]... [--name NAME] [--json]\n"
	    "                   [--lvc NAME | --no-lvc] [--lvc-size N] [--rsi N] [--ema-fast N]\n"
	    "                   [--ema-slow N] [--macd-signal N] [--bb N] [--bb-k K] [--atr N]\n"
	    "                   [--vma N] [--mom N] [--session HH:MM|none] [--no-forward]\n"
	    "                   [--from start|end] [--ring-size SIZE]\n"
	    "Pass bars on, each followed by its indicators as a feat record.\n" CLI_USAGE
	    "      --lvc NAME          the last-value cache to keep (default mdb)\n"
	    "      --no-lvc            keep no last-value cache\n"
	    "      --lvc-size N        entries of a cache this creates (default 4096)\n"
	    "      --rsi N             RSI period (default 14)\n"
	    "      --ema-fast N        fast EMA and MACD period (default 12)\n"
	    "      --ema-slow N        slow EMA and MACD period (default 26)\n"
	    "      --macd-signal N     MACD signal period (default 9)\n"
	    "      --bb N              Bollinger period (default 20)\n"
	    "      --bb-k K            Bollinger width in deviations (default 2)\n"
	    "      --atr N             ATR period (default 14)\n"
	    "      --vma N             volume MA period (default 20)\n"
	    "      --mom N             momentum lag (default 10)\n"
	    "      --session HH:MM|none  VWAP resets daily at HH:MM UTC (default 00:00)\n"
	    "      --no-forward        write only feat records, not the input "
	    "records\n" CLI_STAGE_USAGE CLI_USAGE_ENDPOINTS);
	exit(out == stdout ? 0 : 2);
}

static int parse_period(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < 1 || v > 10000)
		die(2, "%s: not a period from 1 to 10000: '%s'", opt, s);
	return (int)v;
}

static void parse_session(struct ind_params *p, const char *s)
{
	unsigned hh, mm;
	char extra;
	if (strcmp(s, "none") == 0) {
		p->session_ns = 0;
		p->session_offset_ns = 0;
		return;
	}
	if (sscanf(s, "%2u:%2u%c", &hh, &mm, &extra) != 2 || hh > 23 || mm > 59)
		die(2, "--session: not HH:MM (UTC) or none: '%s'", s);
	p->session_offset_ns = ((int64_t)hh * 3600 + mm * 60) * 1000000000LL;
}

/* Write m to every output; an output ring that holds us back is waited on
 * in slices so a stop signal is seen. Returns 0, or -EINTR when stopping
 * with m unwritten, -EPIPE, or another -errno (counted). */
static int emit(struct engine *e, const struct mdb_msg *m)
{
	int rc;
	while (((rc = outputs_write(e->out, m)) == -EINTR || rc == -ETIMEDOUT) && !cli_stopping())
		counter_add(e->c_held, rc == -ETIMEDOUT);
	if (rc == -ETIMEDOUT)
		rc = -EINTR;
	if (rc == -EINTR || rc == -EPIPE)
		return rc;
	if (rc < 0) {
		counter_add(e->c_err, 1);
		logmsg(LOG_WARNING, "write: %s", strerror(-rc));
		return 0;
	}
	counter_add(e->c_out, 1);
	return 0;
}

/* Write the feat record f: encoded straight into the output ring when that
 * is the only output (no copy), else through fbuf and emit(). Returns as
 * emit() does. */
static int emit_feat(struct engine *e, const struct mdb_record *f)
{
	void *dst;
	int rc;
	/* waited on as emit() waits in outputs_write() */
	while (((rc = outputs_claim(e->out, MDB_REC_FEAT, MDB_REC_MAX_BYTES, &dst)) == -EINTR ||
		rc == -ETIMEDOUT) &&
	       !cli_stopping())
		counter_add(e->c_held, rc == -ETIMEDOUT);
	if (rc == -ETIMEDOUT || rc == -EINTR)
		return -EINTR; /* stopping, f unwritten */
	if (rc == 0) {
		int n = record_encode(f, dst, MDB_REC_MAX_BYTES);
		if (n < 0) { /* never committed: the next claim takes the room */
			counter_add(e->c_err, 1);
			return 0;
		}
		outputs_commit(e->out, (uint32_t)n);
		counter_add(e->c_out, 1);
		return 0;
	}
	if (rc != -ENOTSUP) {
		counter_add(e->c_err, 1);
		logmsg(LOG_WARNING, "write: %s", strerror(-rc));
		return 0;
	}
	int n = record_encode(f, e->fbuf, sizeof e->fbuf);
	if (n < 0) {
		counter_add(e->c_err, 1);
		return 0;
	}
	struct mdb_msg m = {.type = MDB_REC_FEAT, .len = (uint32_t)n, .data = e->fbuf};
	return emit(e, &m);
}

/* A slot of the recent-series cache for (s, iv), from the symbol's first 16
 * bytes (most symbols fit in 8) and the interval. */
static unsigned key_slot(const char s[MDB_SYM_MAX], int32_t iv)
{
	uint64_t a, b;
	memcpy(&a, s, 8);
	memcpy(&b, s + 8, 8);
	uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)(uint32_t)iv << 40);
	h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL; /* MurmurHash3's fmix64 */
	h = (h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53ULL;
	return (unsigned)(h >> 33) & (RECENT - 1);
}

/* The series of (s, iv), made on first sight. NULL when out of memory.
 * s is a record's symbol field: NUL-padded to MDB_SYM_MAX bytes. A small
 * direct-mapped cache in front of the keymap answers most bars with one
 * hash and one fixed-size compare (no string hashing, no strcmp). */
static struct series *series_get(struct engine *e, const char s[MDB_SYM_MAX], int32_t iv)
{
	unsigned slot = key_slot(s, iv);
	int c = e->recent[slot] - 1;
	if (c >= 0 && e->ser[c].iv == iv && memcmp(e->ser[c].s, s, MDB_SYM_MAX) == 0)
		return &e->ser[c];
	int added;
	int i = keymap_get(e->keys, s, iv, &added);
	if (i < 0)
		return NULL;
	if (!added) {
		e->recent[slot] = i + 1;
		return &e->ser[i];
	}
	if (i == e->capser) {
		int ncap = e->capser ? 2 * e->capser : 64;
		struct series *ns = realloc(e->ser, (size_t)ncap * sizeof *ns);
		if (!ns)
			return NULL;
		e->ser = ns;
		e->capser = ncap;
	}
	struct series *se = &e->ser[i];
	*se = (struct series){.iv = iv, .lvc = -1};
	memcpy(se->s, s, strnlen(s, sizeof se->s - 1)); /* the rest stays NUL */
	if (!(se->ind = ind_new(&e->p)))
		return NULL;
	e->recent[slot] = i + 1;
	e->nser = i + 1;
	counter_set(e->c_series, (uint64_t)e->nser);
	if (e->lvc) {
		se->lvc = lvc_slot(e->lvc, s, iv);
		if (se->lvc < 0) {
			counter_add(e->c_lvc_full, 1);
			logmsg(LOG_WARNING, "last-value cache: no room for %s/%d: %s", s, iv,
			       strerror(-se->lvc));
		}
	}
	return se;
}

static void lvc_update(struct engine *e, struct series *se, const struct mdb_record *b,
		       const struct ind_values *v)
{
	struct lvc_value lv = {
	    .ts = b->ts,
	    .o = b->bar.o,
	    .h = b->bar.h,
	    .l = b->bar.l,
	    .c = b->bar.c,
	    .v = b->bar.v,
	    .n = b->bar.n,
	    .bv = b->bar.bv,
	    .av = b->bar.av,
	    .f = b->bar.f,
	    .feat = {v->rsi, v->ema_fast, v->ema_slow, v->bbm, v->bbu, v->bbl, v->atr, v->vwap,
		     v->vma, v->macd, v->macds, v->macdh, v->mom},
	    .updated_ns = e->now_ns,
	};
	lvc_put(e->lvc, se->lvc, &lv);
}

/* Compute the features of bar b into *v. Returns 1 when there are features
 * to publish, 0 when the bar is older than what the series has committed
 * (stale: counted), -ENOMEM. */
static int features(struct engine *e, const struct mdb_record *b, struct series **sep,
		    struct ind_values *v)
{
	struct series *se = series_get(e, b->s, b->bar.iv);
	if (!se)
		return -ENOMEM;
	*sep = se;
	if (se->lvc >= 0) /* on_bar updates it once the features are made */
		lvc_prefetch(e->lvc, se->lvc);
	struct ind_bar ib = {
	    .ts = b->ts,
	    .o = b->bar.o,
	    .h = b->bar.h,
	    .l = b->bar.l,
	    .c = b->bar.c,
	    .v = isnan(b->bar.v) ? 0 : b->bar.v,
	    .filled = (b->bar.f & MDB_F_FILLED) != 0,
	};
	int64_t last = ind_last_ts(se->ind);
	if (b->ts < last || (se->forming && b->ts < se->fb.ts))
		goto stale;
	if (b->ts == last) {
		/* a repeat or revision of the last closed bar: take it back and
		 * count this one instead */
		if (ind_uncommit(se->ind) < 0)
			goto stale;
		counter_add(e->c_revised, 1);
	}
	if (se->forming && se->fb.ts < b->ts) {
		/* a newer bar came before the forming one closed: it closed with
		 * the values it had */
		ind_commit(se->ind, &se->fb, NULL);
		counter_add(e->c_implicit, 1);
	}
	if (b->bar.f & MDB_F_FINAL) {
		ind_commit(se->ind, &ib, v);
		se->forming = false;
	} else {
		ind_peek(se->ind, &ib, v);
		se->forming = true;
		se->fb = ib;
	}
	return 1;
stale:
	counter_add(e->c_stale, 1);
	return 0;
}

static bool bar_ok(const struct mdb_record *b)
{
	return isfinite(b->bar.o) && isfinite(b->bar.h) && isfinite(b->bar.l) &&
	       isfinite(b->bar.c) && b->bar.iv > 0;
}

/* Handle one bar: its features go out as a feat record after it. */
static int on_bar(struct engine *e, const struct mdb_record *b)
{
	if (!bar_ok(b)) {
		counter_add(e->c_bad, 1);
		return 0;
	}
	struct series *se;
	struct ind_values v;
	int rc = features(e, b, &se, &v);
	if (rc <= 0)
		return rc;
	struct mdb_record *f = &e->feat;
	memcpy(f->s, b->s, sizeof f->s);
	f->ts = b->ts;
	f->feat = (struct mdb_feat){
	    .iv = b->bar.iv,
	    .rsi = v.rsi,
	    .ema12 = v.ema_fast,
	    .ema26 = v.ema_slow,
	    .bbm = v.bbm,
	    .bbu = v.bbu,
	    .bbl = v.bbl,
	    .atr = v.atr,
	    .vwap = v.vwap,
	    .vma = v.vma,
	    .macd = v.macd,
	    .macds = v.macds,
	    .macdh = v.macdh,
	    .mom = v.mom,
	    .f = b->bar.f,
	};
	/* the cache first: a reader that sees the feat record finds it there */
	if (se->lvc >= 0)
		lvc_update(e, se, b, &v);
	counter_add(e->c_feat, 1);
	return emit_feat(e, f);
}

struct warm_ctx {
	struct engine *e;
	mdb_codec *codec;
	long bars; /* replayed */
};

/* warmup_fn: one retained bar through the indicators only. */
static int warm_bar(void *ctx, const struct ring_rec *rec)
{
	struct warm_ctx *w = ctx;
	static struct mdb_record bar;
	const char *why;
	if (rec->type != MDB_REC_BAR ||
	    record_decode(w->codec, rec->data, rec->len, &bar, &why) < 0 || !bar_ok(&bar))
		return 0;
	struct series *se;
	struct ind_values v;
	w->bars++;
	return features(w->e, &bar, &se, &v) == -ENOMEM ? -ENOMEM : 0;
}

/* Replay the bars of input ring `uri` that lie before consumer c's
 * position through the indicators (see the top of the file). A lap is
 * logged: the state then has a gap. Returns the bars replayed, or
 * -ENOMEM. */
static long warm_up(struct engine *e, const char *uri, mdb_ring_consumer *c, mdb_codec *codec,
		    const char *name)
{
	uint64_t until = ring_consumer_position(c);
	char oname[RING_NAME_MAX];
	snprintf(oname, sizeof oname, "%.32s.warm%d", name, (int)getpid() % 100000);
	struct warm_ctx w = {e, codec, 0};
	bool lapped;
	long n = warmup_ring(uri + 5, until, oname, warm_bar, &w, &lapped);
	if (lapped)
		logmsg(LOG_WARNING,
		       "%s: warm-up overtaken by the producer: some bars "
		       "before position %llu are missing from the state",
		       uri, (unsigned long long)until);
	if (n < 0 && n != -ENOMEM) {
		logmsg(LOG_WARNING, "%s: warm-up: %s (starting from empty state)", uri,
		       strerror((int)-n));
		return 0;
	}
	if (n < 0)
		return n;
	if (w.bars > 0)
		logmsg(LOG_INFO, "%s: warmed up from %ld bars (up to position %llu)", uri, w.bars,
		       (unsigned long long)until);
	return w.bars;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_LONGOPTS,
	    {"lvc", required_argument, NULL, OPT_LVC},
	    {"no-lvc", no_argument, NULL, OPT_NO_LVC},
	    {"lvc-size", required_argument, NULL, OPT_LVC_SIZE},
	    {"rsi", required_argument, NULL, OPT_RSI},
	    {"ema-fast", required_argument, NULL, OPT_EMA_FAST},
	    {"ema-slow", required_argument, NULL, OPT_EMA_SLOW},
	    {"macd-signal", required_argument, NULL, OPT_MACD_SIGNAL},
	    {"bb", required_argument, NULL, OPT_BB},
	    {"bb-k", required_argument, NULL, OPT_BB_K},
	    {"atr", required_argument, NULL, OPT_ATR},
	    {"vma", required_argument, NULL, OPT_VMA},
	    {"mom", required_argument, NULL, OPT_MOM},
	    {"session", required_argument, NULL, OPT_SESSION},
	    {"no-forward", no_argument, NULL, OPT_NO_FORWARD},
	    CLI_STAGE_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	static struct engine e;
	struct mdb_cli cli = CLI_INIT;
	const char *lvc_name = DEFAULT_LVC;
	unsigned long long lvc_size = LVC_DEFAULT_CAPACITY;
	struct ep_opts eo;
	ep_opts_default(&eo);
	ind_params_default(&e.p);
	e.forward = true;
	log_init(argv[0]);
	int opt;
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS, longopts, NULL)) != -1) {
		int rc = cli_option(&cli, opt, optarg);
		if (rc < 0)
			die(2, "%s", cli.err);
		if (rc > 0)
			continue;
		char *end;
		switch (opt) {
		case OPT_LVC:
			lvc_name = optarg;
			break;
		case OPT_NO_LVC:
			lvc_name = NULL;
			break;
		case OPT_LVC_SIZE:
			if (cli_parse_size(optarg, &lvc_size) < 0 || lvc_size < 16 ||
			    lvc_size > LVC_MAX_CAPACITY || (lvc_size & (lvc_size - 1)))
				die(2, "--lvc-size: not a power of two from 16 to %u: '%s'",
				    LVC_MAX_CAPACITY, optarg);
			break;
		case OPT_RSI:
			e.p.rsi = parse_period("--rsi", optarg);
			break;
		case OPT_EMA_FAST:
			e.p.ema_fast = parse_period("--ema-fast", optarg);
			break;
		case OPT_EMA_SLOW:
			e.p.ema_slow = parse_period("--ema-slow", optarg);
			break;
		case OPT_MACD_SIGNAL:
			e.p.macd_signal = parse_period("--macd-signal", optarg);
			break;
		case OPT_BB:
			e.p.bb = parse_period("--bb", optarg);
			break;
		case OPT_BB_K:
			errno = 0;
			e.p.bb_k = strtod(optarg, &end);
			if (errno || *end || end == optarg || !isfinite(e.p.bb_k) || e.p.bb_k < 0)
				die(2, "--bb-k: not a non-negative number: '%s'", optarg);
			break;
		case OPT_ATR:
			e.p.atr = parse_period("--atr", optarg);
			break;
		case OPT_VMA:
			e.p.vma = parse_period("--vma", optarg);
			break;
		case OPT_MOM:
			e.p.mom = parse_period("--mom", optarg);
			break;
		case OPT_SESSION:
			parse_session(&e.p, optarg);
			break;
		case OPT_NO_FORWARD:
			e.forward = false;
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-feature", usage);
	if (argc > 0)
		usage(stderr);
	if (lvc_name && !shm_name_ok(lvc_name))
		die(2, "--lvc: not a valid name: '%s'", lvc_name);
	if (ind_params_check(&e.p) < 0)
		die(2, "bad indicator parameters");
	cli_apply(&cli, &eo, "mdb-feature");
	/* durable inputs advance only once what they produced has left this
	 * process, and output rings are waited on in slices (as mdb-pipe) */
	eo.manual_release = true;
	eo.publish_timeout_ns = 250000000;
	/* output rings publish once per batch (outputs_flush below): at most
	 * RELEASE_EVERY input records late, and always before we sleep */
	eo.batch_out = true;
	if (cli_check_endpoints(&cli, NULL) < 0)
		die(2, "%s", cli.err);

	/* init */
	char msg[512];
	int err = 0;
	cli_catch_signals();
	mdb_counters *cnt = counters_open("mdb-feature", eo.name, &err);
	if (!cnt)
		logmsg(LOG_WARNING, "counters: %s (continuing without)", strerror(-err));
	mdb_counter *c_in = counter_get(cnt, "in"), *c_rej = counter_get(cnt, "rejects"),
		    *c_laps = counter_get(cnt, "laps"),
		    *c_last = counter_get(cnt, "last_update_ns");
	e.c_out = counter_get(cnt, "out");
	e.c_feat = counter_get(cnt, "feat");
	e.c_bad = counter_get(cnt, "bad_bars");
	e.c_stale = counter_get(cnt, "stale");
	e.c_revised = counter_get(cnt, "revised");
	e.c_implicit = counter_get(cnt, "implicit_close");
	e.c_series = counter_get(cnt, "series");
	e.c_lvc_full = counter_get(cnt, "lvc_full");
	e.c_err = counter_get(cnt, "errors");
	e.c_held = counter_get(cnt, "held_back_250ms");
	e.c_warm = counter_get(cnt, "warmup_bars");
	if (!(e.keys = keymap_new()))
		die(1, "out of memory");
	record_init(&e.feat, MDB_REC_FEAT);
	if (lvc_name) {
		int rc = lvc_create(lvc_name, (uint32_t)lvc_size, 0660);
		if (rc < 0)
			die(1, "--lvc %s: %s", lvc_name, strerror(-rc));
		if (!(e.lvc = lvc_open(lvc_name, true, &rc)))
			die(1, "--lvc %s: %s", lvc_name,
			    rc == -EBUSY ? "another live process writes it" : strerror(-rc));
	}
	mdb_inputs *in = inputs_open(cli.in, cli.nin, &eo, &err, msg, sizeof msg);
	if (!in)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	e.out = outputs_open(cli.out, cli.nout, &eo, &err, msg, sizeof msg);
	if (!e.out)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	mdb_codec *codec = codec_new();
	if (!codec)
		die(1, "out of memory");
	/* warm-up counts only as warmup_bars, not as this run's input */
	uint64_t stale0 = counter_value(e.c_stale), revised0 = counter_value(e.c_revised),
		 implicit0 = counter_value(e.c_implicit);
	for (int i = 0; i < cli.nin; i++) {
		mdb_ring_consumer *c = inputs_ring(in, i);
		if (!c || strncmp(cli.in[i], "ring:", 5) != 0)
			continue;
		long n = warm_up(&e, cli.in[i], c, codec, eo.name);
		if (n < 0)
			die(1, "out of memory");
		counter_add(e.c_warm, (uint64_t)n);
	}
	counter_set(e.c_stale, stale0);
	counter_set(e.c_revised, revised0);
	counter_set(e.c_implicit, implicit0);

	notify_ready(NULL);

	/* loop */
	int status = 0;
	unsigned unreleased = 0;
	bool unwritten = false;
	struct mdb_msg m;
	static struct mdb_record bar;
	e.now_ns = wall_ns();
	while (!cli_stopping()) {
		if (unreleased >= RELEASE_EVERY) {
			if (outputs_flush(e.out) == -EPIPE)
				break;
			inputs_release(in);
			unreleased = 0;
			notify_watchdog();
			e.now_ns = wall_ns();
		}
		int rc = inputs_read(in, &m, 0);
		if (rc == 0) {
			if (outputs_flush(e.out) == -EPIPE)
				break;
			inputs_release(in);
			unreleased = 0;
			if (cli_stopping())
				break; /* a signal that came after the loop test */
			notify_watchdog();
			rc = inputs_read(in, &m, notify_wait_ns(-1));
			e.now_ns = wall_ns();
		}
		if (rc == 0 || rc == -EINTR)
			continue;
		if (rc == -EPIPE)
			break;
		if (rc == -EBADMSG) {
			counter_add(c_rej, 1);
			logmsg(LOG_WARNING, "rejected: %s", inputs_error(in));
			continue;
		}
		if (rc < 0) {
			logmsg(LOG_ERR, "read: %s", strerror(-rc));
			status = 1;
			break;
		}
		counter_add(c_in, 1);
		if (e.forward && (rc = emit(&e, &m)) < 0) {
			unwritten = rc == -EINTR;
			break;
		}
		if (m.type == MDB_REC_BAR) {
			const char *why;
			if (record_decode(codec, m.data, m.len, &bar, &why) < 0) {
				counter_add(e.c_bad, 1);
				logmsg(LOG_WARNING, "bad bar: %s", why);
			} else if ((rc = on_bar(&e, &bar)) < 0) {
				if (rc == -ENOMEM) {
					logmsg(LOG_ERR, "out of memory");
					status = 1;
				}
				unwritten = rc == -EINTR;
				break;
			}
		}
		unreleased++;
		counter_set(c_laps, inputs_laps(in));
		counter_set(c_last, (uint64_t)e.now_ns);
	}
	if (outputs_flush(e.out) == 0 && !status && !unwritten)
		inputs_release(in);

	/* finish */
	notify_stopping();
	outputs_close(&e.out);
	inputs_close(&in);
	codec_free(&codec);
	for (int i = 0; i < e.nser; i++)
		ind_free(&e.ser[i].ind);
	free(e.ser);
	keymap_free(&e.keys);
	lvc_close(&e.lvc);
	counters_close(&cnt);
	return status;
}

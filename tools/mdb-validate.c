/* mdb-validate - ticks and bars in, validated bars at the configured
 * intervals out; what fails a rule goes out as a rej record.
 *
 * State, all keyed by symbol:
 *   struct sym      the spike filter's reference price, recent ticks (to drop
 *                   duplicates) and the output series of each interval;
 *   struct inbar    per (s, iv) of input bars: the last one seen, so repeats
 *                   are dropped and a bar never goes backwards;
 *   struct outbar   per (s, iv) of output: the bar being formed. Built from
 *                   ticks, or from input bars of one interval that divides
 *                   it (the same interval passes bars through). Bars rolled
 *                   up from smaller ones are, like features, a committed part
 *                   (closed sub-bars) plus the forming sub-bar, so revisions
 *                   of a sub-bar replace it and never count twice.
 * A record is checked against every output it feeds before any is changed:
 * it is applied everywhere or rejected once.
 *
 * Warm-up: a restarted mdb-validate resumes each input ring at its consumer
 * slot. Before it reads on, it replays the records each input ring still
 * retains before that position through the same code with every output,
 * counter and log muted, so the bars that were forming when it stopped
 * continue with all their records (not only those after the slot), and
 * the bar before the slot is sent final when the next one opens. Records
 * read again after the slot give the same bars again: repeats by key.
 */
#include "cli.h"
#include "clock.h"
#include "counters.h"
#include "endpoint.h"
#include "keymap.h"
#include "log.h"
#include "notify.h"
#include "warmup.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RELEASE_EVERY  64
#define MAX_IV	       16 /* intervals in -I */
#define RECENT_TICKS   8  /* per symbol, for duplicate detection */
#define NS	       1000000000LL
#define SRC_TICKS      (-1)	   /* outbar.src: built from ticks; > 0: bars of that iv */
#define CLOSE_CHECK_NS 100000000LL /* how often --close-after looks at the clock */
#define LOG_REJECTS    100	   /* rejects logged one by one; then only counted */

enum {
	OPT_FILL = CLI_OPT_FIRST_TOOL,
	OPT_SPIKE,
	OPT_SPIKE_RESET,
	OPT_CLOSE_AFTER,
	OPT_FINAL_ONLY,
};

struct ohlc {
	double o, h, l, c, v, bv, av;
	int64_t n;
};

struct outbar {
	int32_t iv;	   /* seconds */
	int src;	   /* 0 none yet, SRC_TICKS, or the input bar interval */
	bool has, closed;  /* a bar exists; it was sent final */
	int64_t ts;	   /* its open time */
	struct ohlc cur;   /* its values */
	int64_t last_tick; /* ts of the tick that set cur.c */
	bool has_agg, has_sub;
	struct ohlc agg; /* closed sub-bars of this bar */
	struct ohlc sub; /* the forming sub-bar */
	int64_t sub_ts;
	char src_name[MDB_SRC_MAX];
};

struct sym {
	char s[MDB_SYM_MAX];
	double ref; /* last accepted price; 0: none */
	int spikes; /* consecutive spike rejections */
	struct recent_tick {
		int64_t ts;
		double p, v;
	} recent[RECENT_TICKS];
	int nrecent;
	int out[MAX_IV]; /* outbar index per interval, -1: not yet */
};

struct inbar {
	int64_t ts;
	bool final;
	struct ohlc v;
	uint32_t f;
};

struct validator {
	int32_t iv[MAX_IV];
	int niv;
	long fill;    /* fill gaps of at most this many bars; 0: off */
	double spike; /* fraction; 0: off */
	int spike_reset;
	int64_t close_after; /* < 0: only by data */
	bool final_only;
	bool warming; /* replaying retained input: write nothing, count nothing */
	mdb_keymap *symk, *ink, *outk;
	struct sym *syms;
	struct inbar *ins;
	struct outbar *outs;
	int capsym, capin, capout;
	mdb_outputs *out, *rej;
	mdb_counter *c_out, *c_rej, *c_dup, *c_filled, *c_err, *c_held;
	unsigned logged;
	uint8_t buf[MDB_REC_MAX_BYTES];
	struct mdb_record r; /* scratch for encoding */
	char why[MDB_WHY_MAX];
};

static _Noreturn void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mdb-validate [-i ENDPOINT]... [-o ENDPOINT]... [-r ENDPOINT] [--name NAME]\n"
	    "                    [--json] [-I IV,...] [--fill N] [--spike PCT] [--spike-reset N]\n"
	    "                    [--close-after DURATION] [--final-only] [--from start|end]\n"
	    "                    [--ring-size SIZE]\n"
	    "Validate ticks and bars; write bars at the configured intervals.\n" CLI_USAGE
	    "  -r, --rejects ENDPOINT  write rej records here (default: with the bars)\n"
	    "  -I, --intervals IV,...  bar intervals, e.g. 1s,1m,5m (default 1m)\n"
	    "      --fill N            fill gaps of up to N missing bars (default 0: off)\n"
	    "      --spike PCT         reject prices more than PCT %% from the last one (default "
	    "off)\n"
	    "      --spike-reset N     accept the new level after N spikes in a row (default 3)\n"
	    "      --close-after D     close a bar D after its end by the clock (default: by "
	    "data)\n"
	    "      --final-only        write closed bars only, not forming ones\n" CLI_STAGE_USAGE
		CLI_USAGE_ENDPOINTS);
	exit(out == stdout ? 0 : 2);
}

static int64_t floor_to(int64_t ts, int64_t step)
{
	int64_t q = ts / step;
	if (ts % step < 0)
		q--;
	return q * step;
}

static double nz(double x)
{
	return isnan(x) ? 0 : x;
}

static void parse_intervals(struct validator *v, char *list)
{
	for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		long long ns;
		if (v->niv == MAX_IV)
			die(2, "-I: at most %d intervals", MAX_IV);
		if (cli_parse_duration(tok, &ns) < 0 || ns < NS || ns % NS || ns / NS > INT32_MAX)
			die(2, "-I: not a whole number of seconds: '%s'", tok);
		int32_t iv = (int32_t)(ns / NS);
		for (int i = 0; i < v->niv; i++)
			if (v->iv[i] == iv)
				die(2, "-I: %s given twice", tok);
		v->iv[v->niv++] = iv;
	}
	if (v->niv == 0)
		die(2, "-I: no interval");
}

/* Write m to outputs o, waiting out a held-back ring in slices. Returns 0,
 * -EINTR (stopping, unwritten) or -EPIPE. */
static int write_msg(struct validator *v, mdb_outputs *o, const struct mdb_msg *m)
{
	int rc;
	if (v->warming)
		return 0;
	while (((rc = outputs_write(o, m)) == -EINTR || rc == -ETIMEDOUT) && !cli_stopping())
		counter_add(v->c_held, rc == -ETIMEDOUT);
	if (rc == -ETIMEDOUT)
		rc = -EINTR;
	if (rc == -EINTR || rc == -EPIPE)
		return rc;
	if (rc < 0) {
		counter_add(v->c_err, 1);
		logmsg(LOG_WARNING, "write: %s", strerror(-rc));
	}
	return 0;
}

/* Send a rej record for the input m with the reason in v->why. */
static int reject(struct validator *v, const struct mdb_msg *m)
{
	if (v->warming)
		return 0;
	counter_add(v->c_rej, 1);
	if (v->logged < LOG_REJECTS && ++v->logged)
		logmsg(LOG_NOTICE, "rejected: %s%s", v->why,
		       v->logged == LOG_REJECTS ? " (further rejects are only counted)" : "");
	struct mdb_record *r = &v->r;
	r->t = MDB_REC_REJ;
	r->s[0] = r->src[0] = '\0';
	r->ts = 0;
	memcpy(r->rej.why, v->why, sizeof r->rej.why);
	r->rej.r_len = 0;
	if (m->len <= MDB_REJ_RAW_MAX && record_span(m->data, m->len) == (int)m->len) {
		memcpy(r->rej.r, m->data, m->len);
		r->rej.r_len = m->len;
	}
	int n = record_encode(r, v->buf, sizeof v->buf);
	if (n < 0) {
		counter_add(v->c_err, 1);
		return 0;
	}
	struct mdb_msg out = {.type = MDB_REC_REJ, .len = (uint32_t)n, .data = v->buf};
	return write_msg(v, v->rej ? v->rej : v->out, &out);
}

static int why(struct validator *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int why(struct validator *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof v->why, fmt, ap);
	va_end(ap);
	return 1;
}

/* Send the bar of series o with flags f (its ts, or at ts for a filled one). */
static int send_bar(struct validator *v, const struct outbar *o, int oi, int64_t ts,
		    const struct ohlc *b, uint32_t f)
{
	if (!(f & MDB_F_FINAL) && v->final_only)
		return 0;
	struct mdb_record *r = &v->r;
	r->t = MDB_REC_BAR;
	memcpy(r->s, keymap_symbol(v->outk, oi), sizeof r->s);
	memcpy(r->src, o->src_name, sizeof r->src);
	r->ts = ts;
	r->bar = (struct mdb_bar){.iv = o->iv,
				  .o = b->o,
				  .h = b->h,
				  .l = b->l,
				  .c = b->c,
				  .v = b->v,
				  .n = b->n,
				  .bv = b->bv,
				  .av = b->av,
				  .f = f};
	int n = record_encode(r, v->buf, sizeof v->buf);
	if (n < 0) {
		counter_add(v->c_err, 1);
		return 0;
	}
	struct mdb_msg m = {.type = MDB_REC_BAR, .len = (uint32_t)n, .data = v->buf};
	int rc = write_msg(v, v->out, &m);
	if (rc == 0)
		counter_add(v->c_out, 1);
	return rc;
}

/* Close series oi's bar if it is still open: send it final. */
static int close_bar(struct validator *v, int oi)
{
	struct outbar *o = &v->outs[oi];
	if (!o->has || o->closed)
		return 0;
	o->closed = true;
	return send_bar(v, o, oi, o->ts, &o->cur, MDB_F_FINAL);
}

/* Move series oi to the bar opening at open: close the current one, fill
 * the gap, start an empty bar. */
static int advance(struct validator *v, int oi, int64_t open)
{
	struct outbar *o = &v->outs[oi];
	int rc = close_bar(v, oi);
	if (rc < 0)
		return rc;
	if (o->has && v->fill) {
		int64_t step = o->iv * NS, missing = (open - o->ts) / step - 1;
		double c = o->cur.c;
		struct ohlc fb = {.o = c, .h = c, .l = c, .c = c};
		for (int64_t k = 1; missing > 0 && missing <= v->fill && k <= missing; k++) {
			if ((rc = send_bar(v, o, oi, o->ts + k * step, &fb,
					   MDB_F_FINAL | MDB_F_FILLED)) < 0)
				return rc;
			counter_add(v->c_filled, 1);
		}
	}
	o->has = true;
	o->closed = false;
	o->ts = open;
	o->has_agg = o->has_sub = false;
	o->last_tick = INT64_MIN;
	return 0;
}

static void merge(struct ohlc *a, const struct ohlc *b)
{
	if (b->h > a->h)
		a->h = b->h;
	if (b->l < a->l)
		a->l = b->l;
	a->c = b->c;
	a->v += b->v;
	a->n += b->n;
	a->bv += b->bv;
	a->av += b->av;
}

/* ---- state lookup (grows only when a key is new) ---- */

static int grow(void **arr, int *cap, int need, size_t elem)
{
	if (need < *cap)
		return 0;
	int ncap = *cap ? *cap * 2 : 64;
	void *n = realloc(*arr, (size_t)ncap * elem);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

static struct sym *sym_get(struct validator *v, const char *s)
{
	int added, i = keymap_get(v->symk, s, 0, &added);
	if (i < 0 || grow((void **)&v->syms, &v->capsym, i, sizeof *v->syms) < 0)
		return NULL;
	struct sym *y = &v->syms[i];
	if (added) {
		memset(y, 0, sizeof *y);
		memcpy(y->s, s, sizeof y->s);
		for (int j = 0; j < MAX_IV; j++)
			y->out[j] = -1;
	}
	return y;
}

/* The output series of interval j for symbol y (made on first use). */
static int out_get(struct validator *v, struct sym *y, int j)
{
	if (y->out[j] >= 0)
		return y->out[j];
	int i = keymap_get(v->outk, y->s, v->iv[j], NULL);
	if (i < 0 || grow((void **)&v->outs, &v->capout, i, sizeof *v->outs) < 0)
		return -ENOMEM;
	v->outs[i] = (struct outbar){.iv = v->iv[j], .last_tick = INT64_MIN};
	return y->out[j] = i;
}

/* ---- rules ---- */

static bool price_ok(double p)
{
	return isfinite(p) && p > 0;
}

/* The spike filter: p against the symbol's reference. Returns 1 (why set)
 * for a spike. */
static int spike(struct validator *v, struct sym *y, const char *key, double p)
{
	if (!v->spike || y->ref <= 0)
		return 0;
	double d = fabs(p / y->ref - 1);
	if (d <= v->spike)
		return 0;
	return why(v, "spike: %s %.10g is %.1f%% from %.10g", key, p, 100 * d, y->ref);
}

/* After a record's spike check: a rejection counts towards --spike-reset. */
static void spike_seen(struct validator *v, struct sym *y, bool spiked, double p)
{
	if (!spiked) {
		y->spikes = 0;
		y->ref = p;
	} else if (++y->spikes >= v->spike_reset) {
		y->spikes = 0;
		y->ref = p; /* the market moved: the next price is judged from here */
	}
}

static int on_tick(struct validator *v, const struct mdb_msg *m, const struct mdb_record *r)
{
	const struct mdb_tick *t = &r->tick;
	if (!price_ok(t->p))
		return why(v, "tick.p: not a positive finite number") ? reject(v, m) : 0;
	if (!isnan(t->v) && !(isfinite(t->v) && t->v >= 0))
		return why(v, "tick.v: negative or not finite") ? reject(v, m) : 0;
	struct sym *y = sym_get(v, r->s);
	if (!y)
		return -ENOMEM;
	bool sp = spike(v, y, "p", t->p);
	spike_seen(v, y, sp, t->p);
	if (sp)
		return reject(v, m);
	/* applied everywhere or nowhere: check each interval first */
	for (int j = 0; j < v->niv; j++) {
		int oi = out_get(v, y, j);
		if (oi < 0)
			return oi;
		const struct outbar *o = &v->outs[oi];
		int64_t open = floor_to(r->ts, v->iv[j] * NS);
		if (o->src > 0)
			return why(v, "%s/%ds is built from %ds bars, not ticks", r->s, v->iv[j],
				   o->src)
				   ? reject(v, m)
				   : 0;
		if (o->has && (open < o->ts || (open == o->ts && o->closed)))
			return why(v, "ts backwards: %s/%ds bar at %" PRId64 " is closed", r->s,
				   v->iv[j], open)
				   ? reject(v, m)
				   : 0;
	}
	double vol = nz(t->v);
	for (int k = 0; k < y->nrecent && k < RECENT_TICKS; k++)
		if (y->recent[k].ts == r->ts && y->recent[k].p == t->p && y->recent[k].v == vol) {
			counter_add(v->c_dup, 1);
			return 0;
		}
	y->recent[y->nrecent++ % RECENT_TICKS] = (struct recent_tick){r->ts, t->p, vol};
	struct ohlc tb = {
	    .o = t->p, .h = t->p, .l = t->p, .c = t->p, .v = vol, .n = t->n > 0 ? t->n : 1};
	if (!isnan(t->a) && t->p >= t->a)
		tb.av = vol;
	else if (!isnan(t->b) && t->p <= t->b)
		tb.bv = vol;
	for (int j = 0; j < v->niv; j++) {
		int oi = y->out[j], rc;
		struct outbar *o = &v->outs[oi];
		int64_t open = floor_to(r->ts, v->iv[j] * NS);
		o->src = SRC_TICKS;
		memcpy(o->src_name, r->src, sizeof o->src_name);
		if (!o->has || open > o->ts) {
			if ((rc = advance(v, oi, open)) < 0)
				return rc;
			o->cur = tb;
			o->last_tick = r->ts;
		} else {
			double c = o->cur.c;
			merge(&o->cur, &tb);
			if (r->ts < o->last_tick)
				o->cur.c = c; /* a late tick inside the bar: not the close */
			else
				o->last_tick = r->ts;
		}
		if ((rc = send_bar(v, o, oi, o->ts, &o->cur, 0)) < 0)
			return rc;
	}
	return 0;
}

static bool same_bar(const struct inbar *a, const struct ohlc *b, uint32_t f)
{
	return a->f == f && !memcmp(&a->v, b, sizeof *b);
}

static int on_bar(struct validator *v, const struct mdb_msg *m, const struct mdb_record *r)
{
	const struct mdb_bar *b = &r->bar;
	const char *bad = NULL;
	if (!price_ok(b->o))
		bad = "o";
	else if (!price_ok(b->h))
		bad = "h";
	else if (!price_ok(b->l))
		bad = "l";
	else if (!price_ok(b->c))
		bad = "c";
	if (bad)
		return why(v, "bar.%s: not a positive finite number", bad) ? reject(v, m) : 0;
	if (b->h < b->o || b->h < b->c)
		return why(v, "bar.h: below max(o, c)") ? reject(v, m) : 0;
	if (b->l > b->o || b->l > b->c)
		return why(v, "bar.l: above min(o, c)") ? reject(v, m) : 0;
	if (!isnan(b->v) && !(isfinite(b->v) && b->v >= 0))
		return why(v, "bar.v: negative or not finite") ? reject(v, m) : 0;
	if (b->iv <= 0)
		return why(v, "bar.iv: not positive") ? reject(v, m) : 0;
	if (r->ts % (b->iv * NS))
		return why(v, "bar.ts: not a multiple of iv") ? reject(v, m) : 0;
	struct sym *y = sym_get(v, r->s);
	if (!y)
		return -ENOMEM;
	int sp = spike(v, y, "o", b->o) || spike(v, y, "h", b->h) || spike(v, y, "l", b->l) ||
		 spike(v, y, "c", b->c);
	spike_seen(v, y, sp, b->c);
	if (sp)
		return reject(v, m);

	struct ohlc val = {.o = b->o,
			   .h = b->h,
			   .l = b->l,
			   .c = b->c,
			   .v = nz(b->v),
			   .n = b->n,
			   .bv = b->bv,
			   .av = b->av};
	uint32_t final = b->f & MDB_F_FINAL;
	int added, ii = keymap_get(v->ink, r->s, b->iv, &added);
	if (ii < 0 || grow((void **)&v->ins, &v->capin, ii, sizeof *v->ins) < 0)
		return -ENOMEM;
	struct inbar *in = &v->ins[ii];
	if (!added) {
		if (r->ts < in->ts)
			return why(v, "ts backwards: %s/%ds bar older than %" PRId64, r->s, b->iv,
				   in->ts)
				   ? reject(v, m)
				   : 0;
		if (r->ts == in->ts && same_bar(in, &val, final)) {
			counter_add(v->c_dup, 1);
			return 0;
		}
		if (r->ts == in->ts && in->final)
			return why(v, "%s/%ds bar at %" PRId64 " is already final", r->s, b->iv,
				   r->ts)
				   ? reject(v, m)
				   : 0;
	}
	/* destinations: this interval and the multiples of it */
	int dst[MAX_IV], nd = 0;
	for (int j = 0; j < v->niv; j++) {
		if (v->iv[j] % b->iv)
			continue;
		int oi = out_get(v, y, j);
		if (oi < 0)
			return oi;
		const struct outbar *o = &v->outs[oi];
		int64_t open = floor_to(r->ts, v->iv[j] * NS);
		if (o->src && o->src != b->iv)
			return why(v, "%s/%ds is built from %s, not %ds bars", r->s, v->iv[j],
				   o->src == SRC_TICKS ? "ticks" : "other bars", b->iv)
				   ? reject(v, m)
				   : 0;
		if (o->has && (open < o->ts || (open == o->ts && o->closed)))
			return why(v, "ts backwards: %s/%ds bar at %" PRId64 " is closed", r->s,
				   v->iv[j], open)
				   ? reject(v, m)
				   : 0;
		dst[nd++] = j;
	}
	if (nd == 0)
		return why(v, "bar.iv: %ds is not in -I nor a divisor of an interval there", b->iv)
			   ? reject(v, m)
			   : 0;
	in->ts = r->ts;
	in->final = final;
	in->v = val;
	in->f = final;
	for (int k = 0; k < nd; k++) {
		int j = dst[k], oi = y->out[j], rc;
		struct outbar *o = &v->outs[oi];
		int64_t step = v->iv[j] * NS, open = floor_to(r->ts, step);
		o->src = b->iv;
		memcpy(o->src_name, r->src, sizeof o->src_name);
		if (!o->has || open > o->ts)
			if ((rc = advance(v, oi, open)) < 0)
				return rc;
		if (o->has_sub && o->sub_ts != r->ts) {
			/* a newer sub-bar: the previous one is part of the bar now */
			if (o->has_agg)
				merge(&o->agg, &o->sub);
			else
				o->agg = o->sub;
			o->has_agg = true;
		}
		o->sub = val;
		o->sub.bv = nz(val.bv);
		o->sub.av = nz(val.av);
		o->sub_ts = r->ts;
		o->has_sub = true;
		o->cur = o->sub;
		if (o->has_agg) {
			o->cur = o->agg;
			merge(&o->cur, &o->sub);
		}
		if (v->iv[j] == b->iv) {
			o->cur.bv = val.bv; /* passed through: absent stays absent */
			o->cur.av = val.av;
		}
		if (final && r->ts + b->iv * NS == open + step) {
			if ((rc = close_bar(v, oi)) < 0)
				return rc;
		} else if ((rc = send_bar(v, o, oi, o->ts, &o->cur, 0)) < 0) {
			return rc;
		}
	}
	return 0;
}

/* Close every open bar whose end is more than close_after behind the clock. */
static int close_by_clock(struct validator *v)
{
	int64_t now = wall_ns();
	int n = keymap_count(v->outk);
	for (int i = 0; i < n; i++) {
		struct outbar *o = &v->outs[i];
		if (o->has && !o->closed && now >= o->ts + o->iv * NS + v->close_after) {
			int rc = close_bar(v, i);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

static int close_all(struct validator *v)
{
	int n = keymap_count(v->outk);
	for (int i = 0; i < n; i++) {
		int rc = close_bar(v, i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

struct warm_ctx {
	struct validator *v;
	mdb_codec *codec;
	long n; /* ticks and bars replayed */
};

/* warmup_fn: one retained tick or bar through the bar builder, muted. */
static int warm_rec(void *ctx, const struct ring_rec *rec)
{
	struct warm_ctx *w = ctx;
	static struct mdb_record r;
	const char *why;
	struct mdb_msg m = {.type = rec->type, .len = rec->len, .data = rec->data};
	if ((rec->type != MDB_REC_TICK && rec->type != MDB_REC_BAR) ||
	    record_decode(w->codec, rec->data, rec->len, &r, &why) < 0)
		return 0;
	w->n++;
	int rc = rec->type == MDB_REC_TICK ? on_tick(w->v, &m, &r) : on_bar(w->v, &m, &r);
	return rc == -ENOMEM ? rc : 0;
}

/* Rebuild the state from input ring `uri` before consumer c's position
 * (see the top of the file), with the counters muted too. */
static void warm_up(struct validator *v, const char *uri, mdb_ring_consumer *c, mdb_codec *codec,
		    const char *name)
{
	uint64_t until = ring_consumer_position(c);
	char oname[RING_NAME_MAX];
	snprintf(oname, sizeof oname, "%.32s.warm%d", name, (int)getpid() % 100000);
	struct warm_ctx w = {v, codec, 0};
	mdb_counter *k[] = {v->c_out, v->c_rej, v->c_dup, v->c_filled, v->c_err, v->c_held};
	v->c_out = v->c_rej = v->c_dup = v->c_filled = v->c_err = v->c_held = NULL;
	v->warming = true;
	bool lapped;
	long rc = warmup_ring(uri + 5, until, oname, warm_rec, &w, &lapped);
	v->warming = false;
	v->c_out = k[0], v->c_rej = k[1], v->c_dup = k[2], v->c_filled = k[3], v->c_err = k[4],
	v->c_held = k[5];
	if (rc == -ENOMEM)
		die(1, "out of memory");
	if (rc < 0)
		logmsg(LOG_WARNING, "%s: warm-up: %s (starting from empty state)", uri,
		       strerror((int)-rc));
	if (lapped)
		logmsg(LOG_WARNING,
		       "%s: warm-up overtaken by the producer: the bars forming "
		       "at position %llu may miss records",
		       uri, (unsigned long long)until);
	if (w.n > 0)
		logmsg(LOG_INFO, "%s: warmed up from %ld records (up to position %llu)", uri, w.n,
		       (unsigned long long)until);
}

static long parse_count(const char *opt, const char *s, long max)
{
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno || *end || end == s || n < 0 || n > max)
		die(2, "%s: not a count from 0 to %ld: '%s'", opt, max, s);
	return n;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    CLI_LONGOPTS,
	    {"rejects", required_argument, NULL, 'r'},
	    {"intervals", required_argument, NULL, 'I'},
	    {"fill", required_argument, NULL, OPT_FILL},
	    {"spike", required_argument, NULL, OPT_SPIKE},
	    {"spike-reset", required_argument, NULL, OPT_SPIKE_RESET},
	    {"close-after", required_argument, NULL, OPT_CLOSE_AFTER},
	    {"final-only", no_argument, NULL, OPT_FINAL_ONLY},
	    CLI_STAGE_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	static struct validator v;
	struct mdb_cli cli = CLI_INIT;
	const char *rej_uri = NULL;
	struct ep_opts eo;
	ep_opts_default(&eo);
	v.spike_reset = 3;
	v.close_after = -1;
	log_init(argv[0]);
	int opt;
	while ((opt = getopt_long(argc, argv, CLI_SHORTOPTS "r:I:", longopts, NULL)) != -1) {
		int rc = cli_option(&cli, opt, optarg);
		if (rc < 0)
			die(2, "%s", cli.err);
		if (rc > 0)
			continue;
		long long ns;
		char *end;
		switch (opt) {
		case 'r':
			rej_uri = optarg;
			break;
		case 'I':
			parse_intervals(&v, optarg);
			break;
		case OPT_FILL:
			v.fill = parse_count("--fill", optarg, 1000000);
			break;
		case OPT_SPIKE:
			errno = 0;
			v.spike = strtod(optarg, &end) / 100;
			if (*end == '%')
				end++;
			if (errno || *end || end == optarg || !(v.spike > 0) || !isfinite(v.spike))
				die(2, "--spike: not a positive percentage: '%s'", optarg);
			break;
		case OPT_SPIKE_RESET:
			v.spike_reset = (int)parse_count("--spike-reset", optarg, 1000000);
			if (v.spike_reset < 1)
				die(2, "--spike-reset: at least 1");
			break;
		case OPT_CLOSE_AFTER:
			if (cli_parse_duration(optarg, &ns) < 0)
				die(2, "--close-after: not a duration: '%s'", optarg);
			v.close_after = ns;
			break;
		case OPT_FINAL_ONLY:
			v.final_only = true;
			break;
		default:
			usage(stderr);
		}
	}
	argc -= optind;
	argv += optind;
	cli_help_version(&cli, "mdb-validate", usage);
	if (argc > 0)
		usage(stderr);
	if (v.niv == 0)
		v.iv[v.niv++] = 60;
	cli_apply(&cli, &eo, "mdb-validate");
	eo.manual_release = true;
	eo.publish_timeout_ns = 250000000;
	/* output rings publish once per batch (outputs_flush in the loop): at
	 * most RELEASE_EVERY input records late, and always before we sleep */
	eo.batch_out = true;
	if (cli_check_endpoints(&cli, rej_uri) < 0)
		die(2, "%s", cli.err);
	bool stdout_used = cli.nout == 0;
	for (int i = 0; i < cli.nout; i++)
		stdout_used |= strcmp(cli.out[i], "-") == 0;
	if (rej_uri && strcmp(rej_uri, "-") == 0 && stdout_used)
		die(2, "-r -: standard output already carries the bars");

	/* init */
	char msg[512];
	int err = 0;
	cli_catch_signals();
	mdb_counters *cnt = counters_open("mdb-validate", eo.name, &err);
	if (!cnt)
		logmsg(LOG_WARNING, "counters: %s (continuing without)", strerror(-err));
	mdb_counter *c_in = counter_get(cnt, "in"), *c_bad = counter_get(cnt, "undecodable"),
		    *c_laps = counter_get(cnt, "laps"),
		    *c_last = counter_get(cnt, "last_update_ns");
	v.c_out = counter_get(cnt, "out");
	v.c_rej = counter_get(cnt, "rejects");
	v.c_dup = counter_get(cnt, "duplicates");
	v.c_filled = counter_get(cnt, "filled");
	v.c_err = counter_get(cnt, "errors");
	v.c_held = counter_get(cnt, "held_back_250ms");
	if (!(v.symk = keymap_new()) || !(v.ink = keymap_new()) || !(v.outk = keymap_new()))
		die(1, "out of memory");
	mdb_inputs *in = inputs_open(cli.in, cli.nin, &eo, &err, msg, sizeof msg);
	if (!in)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	v.out = outputs_open(cli.out, cli.nout, &eo, &err, msg, sizeof msg);
	if (!v.out)
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	if (rej_uri && !(v.rej = outputs_open(&rej_uri, 1, &eo, &err, msg, sizeof msg)))
		die(err == -EINVAL ? 2 : 1, "%s", msg);
	mdb_codec *codec = codec_new();
	if (!codec)
		die(1, "out of memory");

	/* warm-up before the first read: see the top of the file */
	for (int i = 0; i < cli.nin; i++) {
		mdb_ring_consumer *c = inputs_ring(in, i);
		if (c && strncmp(cli.in[i], "ring:", 5) == 0)
			warm_up(&v, cli.in[i], c, codec, eo.name);
	}

	notify_ready(NULL);

	/* loop */
	int status = 0, rc = 0;
	unsigned unreleased = 0;
	int64_t next_check = 0;
	struct mdb_msg m;
	static struct mdb_record r;
	while (!cli_stopping()) {
		if (unreleased >= RELEASE_EVERY) {
			if (outputs_flush(v.out) == -EPIPE ||
			    (v.rej && outputs_flush(v.rej) == -EPIPE))
				break;
			inputs_release(in);
			unreleased = 0;
			notify_watchdog();
		}
		if (v.close_after >= 0 && wall_ns() >= next_check) {
			if ((rc = close_by_clock(&v)) < 0)
				break;
			next_check = wall_ns() + CLOSE_CHECK_NS;
		}
		rc = inputs_read(in, &m, 0);
		if (rc == 0) {
			if (outputs_flush(v.out) == -EPIPE ||
			    (v.rej && outputs_flush(v.rej) == -EPIPE))
				break;
			inputs_release(in);
			unreleased = 0;
			if (cli_stopping())
				break; /* a signal that came after the loop test */
			notify_watchdog();
			rc = inputs_read(in, &m,
					 notify_wait_ns(v.close_after >= 0 ? CLOSE_CHECK_NS : -1));
		}
		if (rc == 0 || rc == -EINTR)
			continue;
		if (rc == -EPIPE) {
			/* every input ended: the bars still open are complete */
			rc = close_all(&v);
			break;
		}
		if (rc == -EBADMSG) {
			counter_add(c_bad, 1);
			why(&v, "undecodable: %s", inputs_error(in));
			if ((rc = reject(&v, &m)) < 0)
				break;
			continue;
		}
		if (rc < 0) {
			logmsg(LOG_ERR, "read: %s", strerror(-rc));
			status = 1;
			break;
		}
		counter_add(c_in, 1);
		const char *dwhy;
		if ((m.type == MDB_REC_TICK || m.type == MDB_REC_BAR) &&
		    record_decode(codec, m.data, m.len, &r, &dwhy) < 0) {
			why(&v, "%s", dwhy);
			rc = reject(&v, &m);
		} else if (m.type == MDB_REC_TICK) {
			rc = on_tick(&v, &m, &r);
		} else if (m.type == MDB_REC_BAR) {
			rc = on_bar(&v, &m, &r);
		} else {
			/* feat, sig: passed on; rej from upstream joins ours */
			rc = write_msg(&v, m.type == MDB_REC_REJ && v.rej ? v.rej : v.out, &m);
		}
		if (rc < 0)
			break;
		unreleased++;
		counter_set(c_laps, inputs_laps(in));
		counter_set(c_last, (uint64_t)wall_ns());
	}
	if (rc == -ENOMEM) {
		logmsg(LOG_ERR, "out of memory");
		status = 1;
	}
	bool flushed = outputs_flush(v.out) == 0 && (!v.rej || outputs_flush(v.rej) == 0);
	if (flushed && !status && rc != -EINTR)
		inputs_release(in);

	/* finish */
	notify_stopping();
	outputs_close(&v.out);
	outputs_close(&v.rej);
	inputs_close(&in);
	codec_free(&codec);
	keymap_free(&v.symk);
	keymap_free(&v.ink);
	keymap_free(&v.outk);
	free(v.syms);
	free(v.ins);
	free(v.outs);
	counters_close(&cnt);
	return status;
}

/* indicators.c - the O(1) kernels behind ind_peek/ind_commit.
 *
 * Each kernel has a value function that evaluates a candidate input against
 * const state (eval() collects what it computed in a struct cand), and a
 * push function that stores that candidate without computing it again.
 * ind_peek only evaluates, so a forming bar never changes anything;
 * ind_commit evaluates once and pushes, so a committed bar gets bit for bit
 * the values a peek of it would have given.
 */
#include "indicators.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PERIOD_MAX 10000

/* EMA seeded by the SMA of its first n values. */
struct ema {
	int n;
	int cnt;    /* values pushed, capped at n */
	double sum; /* of the first n values */
	double val; /* the EMA once cnt == n */
	double k;   /* 2 / (n + 1) */
};

/* RSI: Wilder averages of gains and losses over close-to-close moves. */
struct rsi {
	int n;
	int cnt;       /* moves pushed, capped at n */
	double sg, sl; /* sums of the first n gains / losses */
	double ag, al; /* averages once cnt == n */
};

/* ATR: Wilder average of the true range. */
struct atr {
	int n;
	int cnt;
	double sum;
	double val;
};

/* A window of the last n values with sums of deviations from k, a recent
 * value: mean = k + s1/n, variance = s2/n - (s1/n)^2. Deviations are small
 * next to the values, so the subtraction loses little; the sums are rebuilt
 * from the window every n pushes (k becomes the newest value), so rounding
 * never accumulates, and on flat data every deviation is exactly 0. */
struct roll {
	int n;
	int cnt;     /* values in the window */
	int head;    /* where the next value goes (the oldest when full) */
	int since;   /* pushes since the last re-sum */
	double *buf; /* n values */
	double k, s1, s2;
};

/* The value n pushes ago. */
struct lag {
	int n;
	int cnt;
	int head;
	double *buf; /* n values; buf[head] is the oldest when full */
};

struct vwap {
	bool has;     /* a session has started */
	int64_t sess; /* its number */
	double pv;    /* sum of typical price * volume */
	double vol;   /* sum of volume */
};

/* Everything a commit changes except the window slots it overwrites. */
struct state {
	struct ema fast, slow, sig;
	struct rsi rsi;
	struct atr atr;
	struct roll bb, vma;
	struct lag mom;
	struct vwap vwap;
	bool has_prev;
	double prev_c;	/* close of the last committed bar */
	uint64_t count; /* bars committed */
	int64_t last_ts;
};

struct ind_series {
	struct ind_params p;
	struct state st;
	struct state undo;		    /* st before the last commit */
	double undo_bb, undo_vma, undo_mom; /* the slots that commit overwrote */
	bool can_undo;
	double buf[]; /* bb, vma and mom windows */
};

/* ---- EMA ---- */

static double ema_value(const struct ema *e, double x)
{
	if (e->cnt + 1 < e->n)
		return NAN;
	if (e->cnt < e->n)
		return (e->sum + x) / e->n;
	return (x - e->val) * e->k + e->val;
}

/* Commit x, whose value ema_value() gave as v. */
static void ema_push(struct ema *e, double x, double v)
{
	if (e->cnt < e->n) {
		e->sum += x;
		e->cnt++;
	}
	e->val = v;
}

/* ---- RSI ---- */

static void rsi_avgs(const struct rsi *r, double d, double *ag, double *al)
{
	double g = d > 0 ? d : 0, l = d < 0 ? -d : 0;
	if (r->cnt + 1 < r->n) {
		*ag = *al = NAN;
	} else if (r->cnt < r->n) {
		*ag = (r->sg + g) / r->n;
		*al = (r->sl + l) / r->n;
	} else {
		*ag = (r->ag * (r->n - 1) + g) / r->n;
		*al = (r->al * (r->n - 1) + l) / r->n;
	}
}

static double rsi_of(double ag, double al)
{
	if (isnan(ag))
		return NAN;
	return ag + al == 0 ? 50.0 : 100.0 * (ag / (ag + al));
}

/* Commit move d, whose averages rsi_avgs() gave. */
static void rsi_push(struct rsi *r, double d, double ag, double al)
{
	if (r->cnt < r->n) {
		r->sg += d > 0 ? d : 0;
		r->sl += d < 0 ? -d : 0;
		r->cnt++;
	}
	r->ag = ag;
	r->al = al;
}

/* ---- ATR ---- */

static double true_range(double h, double l, double pc)
{
	double tr = h - l, a = fabs(pc - h), b = fabs(pc - l);
	if (a > tr)
		tr = a;
	if (b > tr)
		tr = b;
	return tr;
}

static double atr_value(const struct atr *a, double tr)
{
	if (a->cnt + 1 < a->n)
		return NAN;
	if (a->cnt < a->n)
		return (a->sum + tr) / a->n;
	return (a->val * (a->n - 1) + tr) / a->n;
}

/* Commit tr, whose value atr_value() gave as v. */
static void atr_push(struct atr *a, double tr, double v)
{
	if (a->cnt < a->n) {
		a->sum += tr;
		a->cnt++;
	}
	a->val = v;
}

/* ---- rolling window ---- */

/* The window's sums with a candidate pushed. */
struct roll_cand {
	double k, s1, s2;
};

/* The sums with x pushed (and the oldest value out when full). */
static void roll_sums(const struct roll *r, double x, struct roll_cand *c)
{
	c->k = r->cnt ? r->k : x;
	double d = x - c->k;
	c->s1 = r->s1 + d;
	c->s2 = r->s2 + d * d;
	if (r->cnt == r->n) {
		double o = r->buf[r->head] - c->k;
		c->s1 -= o;
		c->s2 -= o * o;
	}
}

/* Mean and population deviation with the candidate c pushed; NaN until the
 * window fills. sqrt only when sd is wanted. */
static void roll_value(const struct roll *r, const struct roll_cand *c, double *mean, double *sd)
{
	if (r->cnt + 1 < r->n) {
		*mean = NAN;
		if (sd)
			*sd = NAN;
		return;
	}
	double m = c->s1 / r->n, var = c->s2 / r->n - m * m;
	*mean = c->k + m;
	if (sd)
		*sd = var > 0 ? sqrt(var) : 0.0;
}

/* The mean of the window as it is (no candidate). */
static double roll_mean(const struct roll *r)
{
	return r->cnt == r->n ? r->k + r->s1 / r->n : NAN;
}

/* Commit x, whose sums roll_sums() gave as c. */
static void roll_push(struct roll *r, double x, const struct roll_cand *c)
{
	r->k = c->k;
	r->s1 = c->s1;
	r->s2 = c->s2;
	r->buf[r->head] = x;
	r->head = r->head + 1 == r->n ? 0 : r->head + 1;
	if (r->cnt < r->n)
		r->cnt++;
	if (++r->since >= r->n && r->cnt == r->n) {
		/* re-sum around the newest value: O(n) once every n pushes */
		r->k = x;
		r->s1 = r->s2 = 0;
		for (int i = 0; i < r->n; i++) {
			double d = r->buf[i] - x;
			r->s1 += d;
			r->s2 += d * d;
		}
		r->since = 0;
	}
}

/* ---- momentum ---- */

static double lag_value(const struct lag *g, double x)
{
	return g->cnt < g->n ? NAN : x - g->buf[g->head];
}

static void lag_push(struct lag *g, double x)
{
	g->buf[g->head] = x;
	g->head = g->head + 1 == g->n ? 0 : g->head + 1;
	if (g->cnt < g->n)
		g->cnt++;
}

/* ---- VWAP ---- */

static int64_t session_of(const struct ind_params *p, int64_t ts)
{
	if (!p->session_ns)
		return 0;
	int64_t t = ts - p->session_offset_ns;
	int64_t q = t / p->session_ns;
	return t % p->session_ns < 0 ? q - 1 : q;
}

/* The VWAP with bar b added (a new session starts from zero) into *c, which
 * vwap_push() commits; a gap-filled bar adds nothing (*c is left alone). */
static double vwap_value(const struct ind_params *p, const struct vwap *w, const struct ind_bar *b,
			 struct vwap *c)
{
	int64_t sess = session_of(p, b->ts);
	bool same = w->has && w->sess == sess;
	if (b->filled)
		return same && w->vol > 0 ? w->pv / w->vol : NAN;
	double v = isnan(b->v) ? 0 : b->v;
	*c = (struct vwap){
	    .has = true,
	    .sess = sess,
	    .pv = (same ? w->pv : 0) + (b->h + b->l + b->c) / 3 * v,
	    .vol = (same ? w->vol : 0) + v,
	};
	return c->vol > 0 ? c->pv / c->vol : NAN;
}

/* ---- the series ---- */

void ind_params_default(struct ind_params *p)
{
	*p = (struct ind_params){
	    .rsi = 14,
	    .ema_fast = 12,
	    .ema_slow = 26,
	    .macd_signal = 9,
	    .bb = 20,
	    .bb_k = 2.0,
	    .atr = 14,
	    .vma = 20,
	    .mom = 10,
	    .session_ns = 86400LL * 1000000000LL,
	    .session_offset_ns = 0,
	};
}

static bool period_ok(int n)
{
	return n >= 1 && n <= PERIOD_MAX;
}

int ind_params_check(const struct ind_params *p)
{
	if (!period_ok(p->rsi) || !period_ok(p->ema_fast) || !period_ok(p->ema_slow) ||
	    !period_ok(p->macd_signal) || !period_ok(p->bb) || !period_ok(p->atr) ||
	    !period_ok(p->vma) || !period_ok(p->mom) || !isfinite(p->bb_k) || p->bb_k < 0 ||
	    p->session_ns < 0 || p->session_offset_ns < 0 ||
	    (p->session_ns && p->session_offset_ns >= p->session_ns))
		return -EINVAL;
	return 0;
}

ind_series *ind_new(const struct ind_params *p)
{
	if (ind_params_check(p) < 0) {
		errno = EINVAL;
		return NULL;
	}
	size_t nbuf = (size_t)p->bb + p->vma + p->mom;
	ind_series *s = calloc(1, sizeof *s + nbuf * sizeof(double));
	if (!s)
		return NULL;
	s->p = *p;
	struct state *st = &s->st;
	st->fast = (struct ema){.n = p->ema_fast, .k = 2.0 / (p->ema_fast + 1)};
	st->slow = (struct ema){.n = p->ema_slow, .k = 2.0 / (p->ema_slow + 1)};
	st->sig = (struct ema){.n = p->macd_signal, .k = 2.0 / (p->macd_signal + 1)};
	st->rsi.n = p->rsi;
	st->atr.n = p->atr;
	st->bb = (struct roll){.n = p->bb, .buf = s->buf};
	st->vma = (struct roll){.n = p->vma, .buf = s->buf + p->bb};
	st->mom = (struct lag){.n = p->mom, .buf = s->buf + p->bb + p->vma};
	st->last_ts = INT64_MIN;
	return s;
}

void ind_free(ind_series **s)
{
	if (!s)
		return;
	free(*s);
	*s = NULL;
}

/* *dst = *src by 16-byte moves. A plain struct copy of this size becomes a
 * rep movsq, whose start-up cost was a fifth of a commit. */
static inline void copy_state(struct state *dst, const struct state *src)
{
	typedef uint64_t chunk __attribute__((vector_size(16), aligned(8), may_alias));
	_Static_assert(sizeof(struct state) % 8 == 0, "state is whole words");
	chunk *d = (chunk *)dst;
	const chunk *s = (const chunk *)src;
	size_t n = sizeof(struct state) / sizeof(chunk);
#pragma GCC unroll 32
	for (size_t i = 0; i < n; i++)
		d[i] = s[i];
	if (sizeof(struct state) % sizeof(chunk))
		memcpy((char *)dst + n * sizeof(chunk), (const char *)src + n * sizeof(chunk), 8);
}

/* What a commit of the evaluated bar stores: computed once by eval(), so a
 * commit does no arithmetic of its own and its values are a peek's bit for
 * bit. */
struct cand {
	double fast, slow, sig; /* the EMAs with the bar pushed */
	double d, ag, al;	/* RSI: the move and the averages with it */
	double tr, atr;
	struct roll_cand bb, vma;
	double vol; /* the volume the volume MA takes */
	struct vwap vwap;
};

static inline __attribute__((always_inline)) void eval(const ind_series *s, const struct ind_bar *b,
						       struct ind_values *o, struct cand *c)
{
	const struct state *st = &s->st;
	double sd;

	o->ema_fast = c->fast = ema_value(&st->fast, b->c);
	o->ema_slow = c->slow = ema_value(&st->slow, b->c);
	o->macd = o->ema_fast - o->ema_slow; /* NaN while either is */
	o->macds = c->sig = isnan(o->macd) ? NAN : ema_value(&st->sig, o->macd);
	o->macdh = o->macd - o->macds;
	if (st->has_prev) {
		c->d = b->c - st->prev_c;
		rsi_avgs(&st->rsi, c->d, &c->ag, &c->al);
		o->rsi = rsi_of(c->ag, c->al);
		c->tr = true_range(b->h, b->l, st->prev_c);
		o->atr = c->atr = atr_value(&st->atr, c->tr);
	} else {
		o->rsi = o->atr = NAN;
	}
	roll_sums(&st->bb, b->c, &c->bb);
	roll_value(&st->bb, &c->bb, &o->bbm, &sd);
	o->bbu = o->bbm + s->p.bb_k * sd;
	o->bbl = o->bbm - s->p.bb_k * sd;
	if (b->filled) {
		o->vma = roll_mean(&st->vma);
	} else {
		c->vol = isnan(b->v) ? 0 : b->v;
		roll_sums(&st->vma, c->vol, &c->vma);
		roll_value(&st->vma, &c->vma, &o->vma, NULL);
	}
	o->vwap = vwap_value(&s->p, &st->vwap, b, &c->vwap);
	o->mom = lag_value(&st->mom, b->c);
}

void ind_peek(const ind_series *s, const struct ind_bar *b, struct ind_values *o)
{
	struct cand c;
	eval(s, b, o, &c);
}

void ind_commit(ind_series *s, const struct ind_bar *b, struct ind_values *out)
{
	struct state *st = &s->st;
	struct ind_values v;
	struct cand c;
	if (!out)
		out = &v;
	eval(s, b, out, &c);
	copy_state(&s->undo, st);
	s->undo_bb = st->bb.buf[st->bb.head];
	s->undo_vma = st->vma.buf[st->vma.head];
	s->undo_mom = st->mom.buf[st->mom.head];
	s->can_undo = true;

	ema_push(&st->fast, b->c, c.fast);
	ema_push(&st->slow, b->c, c.slow);
	if (!isnan(out->macd))
		ema_push(&st->sig, out->macd, c.sig);
	if (st->has_prev) {
		rsi_push(&st->rsi, c.d, c.ag, c.al);
		atr_push(&st->atr, c.tr, c.atr);
	}
	roll_push(&st->bb, b->c, &c.bb);
	if (!b->filled) {
		roll_push(&st->vma, c.vol, &c.vma);
		st->vwap = c.vwap;
	}
	lag_push(&st->mom, b->c);
	st->prev_c = b->c;
	st->has_prev = true;
	st->count++;
	st->last_ts = b->ts;
}

int ind_uncommit(ind_series *s)
{
	if (!s->can_undo)
		return -ENOENT;
	s->st = s->undo;
	/* the heads are back where the commit wrote */
	s->st.bb.buf[s->st.bb.head] = s->undo_bb;
	s->st.vma.buf[s->st.vma.head] = s->undo_vma;
	s->st.mom.buf[s->st.mom.head] = s->undo_mom;
	s->can_undo = false;
	return 0;
}

uint64_t ind_count(const ind_series *s)
{
	return s->st.count;
}

int64_t ind_last_ts(const ind_series *s)
{
	return s->st.last_ts;
}

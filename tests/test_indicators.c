/* test_indicators.c - common/indicators: hand-computed values for every
 * indicator, flat data, sessions, gap-filled bars, undo, and the property
 * that revisions of a forming bar never change the closed-bar features.
 * (tests/tools/feature.sh checks long series against tests/ref/indicators.py.) */
#include <criterion/criterion.h>

#include "indicators.h"
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define MIN_NS (60LL * 1000000000LL)
#define T0     (1700006400LL * 1000000000LL) /* a midnight UTC */

static void near(double got, double want, const char *what, int i)
{
	cr_assert(fabs(got - want) <= 1e-12 * fmax(1, fabs(want)),
		  "%s at bar %d: %.17g, want %.17g", what, i, got, want);
}

static struct ind_bar mk(int i, double c, double h, double l, double v)
{
	return (struct ind_bar){.ts = T0 + i * MIN_NS, .o = c, .h = h, .l = l, .c = c, .v = v};
}

/* Small periods so short series reach every indicator. */
static struct ind_params small(void)
{
	struct ind_params p;
	ind_params_default(&p);
	p.rsi = 3, p.ema_fast = 2, p.ema_slow = 3, p.macd_signal = 2, p.bb = 3, p.atr = 3;
	p.vma = 2, p.mom = 2;
	return p;
}

Test(indicators, hand_computed_short_series)
{
	struct ind_params p = small();
	ind_series *s = ind_new(&p);
	cr_assert_not_null(s);
	/* closes 10, 11, 10.5, 12, 11; h = c + 1, l = c - 1 */
	double c[] = {10, 11, 10.5, 12, 11}, v[] = {10, 20, 30, 40, 50};
	struct ind_values o[5];
	for (int i = 0; i < 5; i++) {
		struct ind_bar b = mk(i, c[i], c[i] + 1, c[i] - 1, v[i]);
		ind_commit(s, &b, &o[i]);
	}
	/* EMA(2): SMA seed 10.5, then k = 2/3 */
	cr_assert(isnan(o[0].ema_fast));
	near(o[1].ema_fast, 10.5, "ema2", 1);
	near(o[2].ema_fast, 10.5, "ema2", 2);		    /* (10.5-10.5)*2/3+10.5 */
	near(o[3].ema_fast, 10.5 + 1.5 * 2 / 3, "ema2", 3); /* 11.5 */
	near(o[4].ema_fast, 11.5 - 0.5 * 2 / 3, "ema2", 4);
	/* EMA(3): SMA(10, 11, 10.5) = 10.5, then k = 1/2 */
	cr_assert(isnan(o[1].ema_slow));
	near(o[2].ema_slow, 10.5, "ema3", 2);
	near(o[3].ema_slow, 11.25, "ema3", 3);
	near(o[4].ema_slow, 11.125, "ema3", 4);
	/* MACD = ema2 - ema3 from bar 2: 0, 0.25, 11.1666.. - 11.125; signal
	 * EMA(2) seeded by SMA of the first two MACD values */
	cr_assert(isnan(o[1].macd));
	near(o[2].macd, 0, "macd", 2);
	near(o[3].macd, 0.25, "macd", 3);
	cr_assert(isnan(o[2].macds));
	near(o[3].macds, 0.125, "macds", 3);
	double m4 = (11.5 - 1.0 / 3) - 11.125;
	near(o[4].macd, m4, "macd", 4);
	near(o[4].macds, (m4 - 0.125) * 2 / 3 + 0.125, "macds", 4);
	near(o[4].macdh, m4 - ((m4 - 0.125) * 2 / 3 + 0.125), "macdh", 4);
	/* RSI(3): moves +1, -0.5, +1.5, -1: ag = 2.5/3, al = 0.5/3 -> 83.33;
	 * then ag = 5/9, al = 4/9 -> 55.56 */
	cr_assert(isnan(o[2].rsi));
	near(o[3].rsi, 100 * (2.5 / 3) / (3.0 / 3), "rsi", 3);
	near(o[4].rsi, 100.0 * 5 / 9, "rsi", 4);
	/* ATR(3): TR = 2, 2, 2.5 (h - pc = 12+1-10.5), 2 (pc - l = 12 - 10) */
	near(o[3].atr, (2 + 2 + 2.5) / 3, "atr", 3);
	near(o[4].atr, ((6.5 / 3) * 2 + 2) / 3, "atr", 4);
	/* Bollinger(3, 2): window 10, 11, 10.5: mean 10.5, pvar 1/6 */
	cr_assert(isnan(o[1].bbm));
	near(o[2].bbm, 10.5, "bbm", 2);
	near(o[2].bbu, 10.5 + 2 * sqrt(1.0 / 6), "bbu", 2);
	near(o[2].bbl, 10.5 - 2 * sqrt(1.0 / 6), "bbl", 2);
	/* window 10.5, 12, 11 at bar 4: mean 11.1666.., pvar (13/36 + 25/36 + 1/36)/3 */
	near(o[4].bbm, 33.5 / 3, "bbm", 4);
	near(o[4].bbu, 33.5 / 3 + 2 * sqrt((16.0 + 25 + 1) / 36 / 3), "bbu", 4);
	/* volume MA(2), momentum(2) */
	cr_assert(isnan(o[0].vma));
	near(o[1].vma, 15, "vma", 1);
	near(o[4].vma, 45, "vma", 4);
	cr_assert(isnan(o[1].mom));
	near(o[2].mom, 0.5, "mom", 2);
	near(o[4].mom, 0.5, "mom", 4); /* 11 - 10.5 */
	/* VWAP: typical price is c here */
	near(o[1].vwap, (10 * 10 + 11 * 20) / 30.0, "vwap", 1);
	near(o[4].vwap, (100 + 220 + 315 + 480 + 550) / 150.0, "vwap", 4);
	cr_assert_eq(ind_count(s), 5);
	cr_assert_eq(ind_last_ts(s), T0 + 4 * MIN_NS);
	ind_free(&s);
	cr_assert_null(s);
}

Test(indicators, flat_series_is_exact)
{
	struct ind_params p;
	ind_params_default(&p);
	ind_series *s = ind_new(&p);
	struct ind_values o;
	for (int i = 0; i < 500; i++) {
		struct ind_bar b = mk(i, 0.1, 0.1, 0.1, 7);
		ind_commit(s, &b, &o);
		if (i >= 19) {
			cr_assert(o.bbm == 0.1 && o.bbu == 0.1 && o.bbl == 0.1,
				  "bar %d: bands %.17g %.17g %.17g", i, o.bbl, o.bbm, o.bbu);
		}
	}
	cr_assert_eq(o.rsi, 50.0, "no gains, no losses: RSI 50");
	cr_assert_eq(o.atr, 0.0);
	cr_assert_eq(o.mom, 0.0);
	cr_assert_eq(o.vma, 7.0);
	near(o.ema_fast, 0.1, "ema12", 0);
	ind_free(&s);
}

Test(indicators, vwap_resets_at_session_and_skips_filled)
{
	struct ind_params p = small();
	p.session_offset_ns = 0; /* sessions start at 00:00 UTC; T0 is one */
	ind_series *s = ind_new(&p);
	struct ind_values o;
	struct ind_bar b = mk(-1, 10, 10, 10, 100); /* 23:59, the old session */
	ind_commit(s, &b, &o);
	near(o.vwap, 10, "vwap", 0);
	b = mk(0, 20, 20, 20, 1); /* 00:00: a new session */
	ind_commit(s, &b, &o);
	near(o.vwap, 20, "vwap after reset", 1);
	b = mk(1, 50, 50, 50, 0);
	b.filled = true; /* a filled bar moves neither VWAP nor the volume MA */
	ind_commit(s, &b, &o);
	near(o.vwap, 20, "vwap of filled", 2);
	near(o.vma, 50.5, "vma of filled", 2);
	b = mk(2, 30, 30, 30, 1);
	ind_commit(s, &b, &o);
	near(o.vwap, 25, "vwap", 3);
	near(o.vma, 1, "vma skips the filled bar", 3);
	ind_free(&s);

	p.session_ns = 0; /* never reset */
	s = ind_new(&p);
	b = mk(-1, 10, 10, 10, 1);
	ind_commit(s, &b, NULL);
	b = mk(0, 20, 20, 20, 1);
	ind_commit(s, &b, &o);
	near(o.vwap, 15, "vwap without sessions", 1);
	ind_free(&s);
}

Test(indicators, peek_leaves_state_and_uncommit_undoes)
{
	struct ind_params p;
	ind_params_default(&p);
	ind_series *s = ind_new(&p), *t = ind_new(&p);
	struct ind_values a, b, c;
	for (int i = 0; i < 100; i++) {
		struct ind_bar x = mk(i, 100 + sin(i), 101 + sin(i), 99 + sin(i), 10 + i);
		ind_commit(s, &x, NULL);
		ind_commit(t, &x, NULL);
	}
	cr_assert_eq(ind_uncommit(s), 0);
	cr_assert_eq(ind_uncommit(s), -ENOENT, "one level of undo");
	struct ind_bar x = mk(99, 100 + sin(99), 101 + sin(99), 99 + sin(99), 109);
	ind_commit(s, &x, NULL); /* both have the same history again */
	struct ind_bar y = mk(100, 103, 104, 98, 5);
	ind_peek(s, &y, &a);
	ind_peek(s, &y, &b);
	ind_commit(t, &y, &c);
	cr_assert(memcmp(&a, &b, sizeof a) == 0, "peek is repeatable");
	cr_assert(memcmp(&a, &c, sizeof a) == 0, "after undo + redo, same values as never undone");
	ind_free(&s);
	ind_free(&t);
}

/* xorshift, so the test is the same everywhere */
static uint64_t rng = 88172645463325252ULL;
static double rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / (double)(1ULL << 53);
}

static struct ind_bar random_bar(int i, double base)
{
	double o = base + rnd() - 0.5, c = o + 2 * rnd() - 1;
	double h = fmax(o, c) + rnd(), l = fmin(o, c) - rnd();
	struct ind_bar b = {
	    .ts = T0 + i * MIN_NS, .o = o, .h = h, .l = l, .c = c, .v = floor(500 * rnd())};
	b.filled = rnd() < 0.05;
	if (b.filled)
		b.o = b.h = b.l = b.c = base, b.v = 0;
	return b;
}

Test(indicators, revisions_of_forming_bar_never_count)
{
	struct ind_params p;
	ind_params_default(&p);
	ind_series *plain = ind_new(&p), *revised = ind_new(&p);
	double base = 100;
	uint64_t n = tu_scale(20000);
	for (uint64_t i = 0; i < n; i++) {
		struct ind_bar fin = random_bar((int)i, base);
		struct ind_values a, b, f;
		/* random forming versions, then a random repeat of the final bar
		 * (undo + commit again), then the final bar */
		int k = (int)(rnd() * 4);
		for (int j = 0; j < k; j++) {
			struct ind_bar fb = random_bar((int)i, base);
			ind_peek(revised, &fb, &f);
		}
		ind_commit(plain, &fin, &a);
		ind_commit(revised, &fin, &b);
		if (rnd() < 0.1) {
			cr_assert_eq(ind_uncommit(revised), 0);
			ind_commit(revised, &fin, &b);
		}
		cr_assert(memcmp(&a, &b, sizeof a) == 0, "bar %llu: closed features differ",
			  (unsigned long long)i);
		base = fin.c;
	}
	ind_free(&plain);
	ind_free(&revised);
}

Test(indicators, params_are_checked)
{
	struct ind_params p;
	ind_params_default(&p);
	cr_assert_eq(ind_params_check(&p), 0);
	p.rsi = 0;
	cr_assert_eq(ind_params_check(&p), -EINVAL);
	cr_assert_null(ind_new(&p));
	ind_params_default(&p);
	p.bb_k = NAN;
	cr_assert_eq(ind_params_check(&p), -EINVAL);
	ind_params_default(&p);
	p.session_offset_ns = p.session_ns;
	cr_assert_eq(ind_params_check(&p), -EINVAL);
}

/* test_ratelimit.c - request windows, daily quotas and the circuit breaker,
 * driven by made-up clocks. */
#include "ratelimit.h"

#include <criterion/criterion.h>

#define S 1000000000LL

Test(ratelimit, window_never_holds_more_than_n)
{
	struct rl_window w;
	cr_assert_eq(rl_window_init(&w, 5, 60 * S), 0);
	/* try every 100 ms for 5 minutes; count what was sent per sliding minute */
	int64_t sent[1000];
	int n = 0;
	for (int64_t t = 0; t < 300 * S; t += S / 10)
		if (rl_window_take(&w, t))
			sent[n++] = t;
	cr_assert_eq(n, 25, "5 per minute for 5 minutes, got %d", n);
	for (int i = 0; i + 5 < n; i++)
		cr_assert_geq(sent[i + 5] - sent[i], 60 * S, "six sends within a minute");
	/* full: the wait is until the oldest comes back */
	cr_assert_eq(rl_window_wait(&w, sent[n - 1]), sent[n - 5] + 60 * S - sent[n - 1]);
	rl_window_fini(&w);
	/* 0 is unlimited */
	cr_assert_eq(rl_window_init(&w, 0, 60 * S), 0);
	for (int i = 0; i < 1000; i++)
		cr_assert(rl_window_take(&w, 0));
	rl_window_fini(&w);
}

Test(ratelimit, quota_resets_at_utc_midnight)
{
	struct rl_quota q;
	rl_quota_init(&q, 3);
	int64_t day = 86400 * S, t = 19000 * day + 23 * 3600 * S;
	cr_assert(rl_quota_take(&q, t));
	cr_assert(rl_quota_take(&q, t + 1));
	cr_assert(rl_quota_take(&q, t + 2));
	cr_assert_not(rl_quota_take(&q, t + 3));
	cr_assert_eq(rl_quota_left(&q, t + 4), 0);
	cr_assert_eq(rl_quota_left(&q, 19001 * day), 3);
	cr_assert(rl_quota_take(&q, 19001 * day + 5));
	rl_quota_init(&q, 0);
	cr_assert_eq(rl_quota_left(&q, t), UINT64_MAX);
}

Test(ratelimit, breaker_opens_half_opens_and_closes)
{
	struct rl_breaker b;
	rl_breaker_init(&b, 3, 10 * S);
	cr_assert(rl_breaker_allow(&b, 0));
	rl_breaker_failure(&b, 1);
	rl_breaker_failure(&b, 2);
	cr_assert_eq(b.state, RL_CLOSED);
	/* a success resets the count */
	rl_breaker_success(&b);
	rl_breaker_failure(&b, 3);
	rl_breaker_failure(&b, 4);
	cr_assert_eq(rl_breaker_failure(&b, 5 * S), RL_CLOSED);
	cr_assert_eq(b.state, RL_OPEN);
	cr_assert_not(rl_breaker_allow(&b, 14 * S));
	/* after the cool-down: exactly one probe */
	cr_assert(rl_breaker_allow(&b, 15 * S));
	cr_assert_eq(b.state, RL_HALF_OPEN);
	cr_assert_not(rl_breaker_allow(&b, 15 * S + 1));
	/* the probe fails: open again, for a full cool-down from now */
	cr_assert_eq(rl_breaker_failure(&b, 16 * S), RL_HALF_OPEN);
	cr_assert_eq(b.state, RL_OPEN);
	cr_assert_not(rl_breaker_allow(&b, 25 * S));
	cr_assert(rl_breaker_allow(&b, 26 * S));
	/* the probe succeeds: closed */
	cr_assert_eq(rl_breaker_success(&b), RL_HALF_OPEN);
	cr_assert_eq(b.state, RL_CLOSED);
	cr_assert(rl_breaker_allow(&b, 26 * S));
	cr_assert_str_eq(rl_state_name(RL_HALF_OPEN), "half-open");
}

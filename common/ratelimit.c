/* ratelimit.c - request windows, daily quotas, circuit breakers (see ratelimit.h). */
#include "ratelimit.h"

#include <errno.h>
#include <stdlib.h>

int rl_window_init(struct rl_window *w, uint32_t n, int64_t window_ns)
{
	*w = (struct rl_window){.n = n, .window_ns = window_ns};
	if (n && !(w->t = calloc(n, sizeof *w->t)))
		return -ENOMEM;
	return 0;
}

void rl_window_fini(struct rl_window *w)
{
	free(w->t);
	w->t = NULL;
}

int64_t rl_window_wait(const struct rl_window *w, int64_t now)
{
	if (w->n == 0 || w->used < w->n)
		return 0;
	/* full: the oldest token comes back one window after it was taken */
	int64_t back = w->t[w->head] + w->window_ns;
	return back > now ? back - now : 0;
}

bool rl_window_take(struct rl_window *w, int64_t now)
{
	if (w->n == 0)
		return true;
	if (rl_window_wait(w, now) > 0)
		return false;
	if (w->used == w->n) {
		/* reuse the oldest slot: it is at least one window old */
		w->t[w->head] = now;
		w->head = (w->head + 1) % w->n;
	} else {
		w->t[(w->head + w->used) % w->n] = now;
		w->used++;
	}
	return true;
}

void rl_quota_init(struct rl_quota *q, uint64_t per_day)
{
	*q = (struct rl_quota){.limit = per_day, .day = -1};
}

static void quota_roll(struct rl_quota *q, int64_t now_wall_ns)
{
	int64_t day = now_wall_ns / (86400LL * 1000000000LL);
	if (day != q->day) {
		q->day = day;
		q->used = 0;
	}
}

uint64_t rl_quota_left(struct rl_quota *q, int64_t now_wall_ns)
{
	if (q->limit == 0)
		return UINT64_MAX;
	quota_roll(q, now_wall_ns);
	return q->used < q->limit ? q->limit - q->used : 0;
}

bool rl_quota_take(struct rl_quota *q, int64_t now_wall_ns)
{
	if (rl_quota_left(q, now_wall_ns) == 0)
		return false;
	q->used++;
	return true;
}

void rl_breaker_init(struct rl_breaker *b, uint32_t threshold, int64_t cooldown_ns)
{
	*b =
	    (struct rl_breaker){.threshold = threshold ? threshold : 1, .cooldown_ns = cooldown_ns};
}

bool rl_breaker_allow(struct rl_breaker *b, int64_t now)
{
	switch (b->state) {
	case RL_CLOSED:
		return true;
	case RL_OPEN:
		if (now - b->opened_at < b->cooldown_ns)
			return false;
		b->state = RL_HALF_OPEN;
		b->probing = true;
		return true;
	case RL_HALF_OPEN:
		if (b->probing)
			return false;
		b->probing = true;
		return true;
	}
	return false;
}

enum rl_state rl_breaker_success(struct rl_breaker *b)
{
	enum rl_state was = b->state;
	b->state = RL_CLOSED;
	b->failures = 0;
	b->probing = false;
	return was;
}

enum rl_state rl_breaker_failure(struct rl_breaker *b, int64_t now)
{
	enum rl_state was = b->state;
	b->probing = false;
	if (b->failures < UINT32_MAX)
		b->failures++;
	if (was == RL_HALF_OPEN || (was == RL_CLOSED && b->failures >= b->threshold)) {
		b->state = RL_OPEN;
		b->opened_at = now;
	}
	return was;
}

const char *rl_state_name(enum rl_state s)
{
	switch (s) {
	case RL_CLOSED:
		return "closed";
	case RL_OPEN:
		return "open";
	case RL_HALF_OPEN:
		return "half-open";
	}
	return "?";
}

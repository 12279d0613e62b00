/* ratelimit.h - how often a source may be asked, and whether it is healthy.
 *
 * Pure state machines over a caller's clock (nanoseconds, any monotonic
 * base): no syscalls, no allocation after init, so they are tested with
 * made-up times.
 *
 *   rl_window   N requests per window (a minute): a token bucket whose
 *               tokens come back exactly one window after they were taken,
 *               so no window of that length ever holds more than N requests,
 *               however the window is placed (a provider's count never
 *               exceeds its limit, fixed or sliding).
 *   rl_quota    N requests per UTC day (a provider's daily allowance).
 *   rl_breaker  the circuit breaker: closed (normal) -> open after
 *               `threshold` failures in a row (nothing is sent) -> half-open
 *               after `cooldown` (one probe) -> closed on its success, open
 *               again on its failure.
 */
#ifndef MDB_RATELIMIT_H
#define MDB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rl_window {
	int64_t *t;    /* send times of the last n requests, a ring */
	uint32_t n;    /* the limit; 0: unlimited */
	uint32_t head; /* oldest entry */
	uint32_t used; /* entries in the ring */
	int64_t window_ns;
};

/* Allow `n` requests per window_ns (0: unlimited). Returns 0 or -ENOMEM. */
int rl_window_init(struct rl_window *w, uint32_t n, int64_t window_ns);
void rl_window_fini(struct rl_window *w);
/* 0 when a request may be sent at now, else the nanoseconds until one may. */
int64_t rl_window_wait(const struct rl_window *w, int64_t now);
/* Take a token at now. Returns true, or false (nothing taken) when the
 * window is full. */
bool rl_window_take(struct rl_window *w, int64_t now);

struct rl_quota {
	uint64_t limit; /* per UTC day; 0: unlimited */
	uint64_t used;
	int64_t day; /* the UTC day `used` counts (days since the epoch) */
};

void rl_quota_init(struct rl_quota *q, uint64_t per_day);
/* Take one request at the wall-clock time now_wall_ns (UTC). Returns true,
 * or false when the day's quota is spent. */
bool rl_quota_take(struct rl_quota *q, int64_t now_wall_ns);
/* Requests left today (UINT64_MAX when unlimited). */
uint64_t rl_quota_left(struct rl_quota *q, int64_t now_wall_ns);

enum rl_state {
	RL_CLOSED = 0,
	RL_OPEN = 1,
	RL_HALF_OPEN = 2,
};

struct rl_breaker {
	enum rl_state state;
	uint32_t failures;  /* in a row */
	uint32_t threshold; /* failures that open it (>= 1) */
	int64_t cooldown_ns;
	int64_t opened_at;
	bool probing; /* half-open: the one probe is in flight */
};

void rl_breaker_init(struct rl_breaker *b, uint32_t threshold, int64_t cooldown_ns);
/* May a request be sent at now? An open breaker whose cool-down has passed
 * becomes half-open and allows one probe (the caller must then report its
 * outcome). Does not change state when the answer is no. */
bool rl_breaker_allow(struct rl_breaker *b, int64_t now);
/* Report a request's outcome; both return the state before, so the caller
 * can log a change. */
enum rl_state rl_breaker_success(struct rl_breaker *b);
enum rl_state rl_breaker_failure(struct rl_breaker *b, int64_t now);
/* "closed", "open", "half-open". */
const char *rl_state_name(enum rl_state s);

#endif

#!/bin/bash
# Fallback and limits: a source answering 500s, 429s, rate-limit bodies in an
# HTTP 200, time-outs, truncated or garbage bodies hands its symbols to the
# next source; its circuit breaker opens, half-opens after the cool-down and
# closes on success; a per-minute limit is never exceeded (counted at the
# server); no bad bar is ever written.
. "$(dirname "$0")/lib.sh"
. "$here/fetch_lib.sh"

cat >"$tmp/fetch.conf" <<CONF
source main type=twelvedata url=$api/main key=FETCH_TEST_KEY priority=1 failures=2 cooldown=1s timeout=500ms pause=1s rate=600
source spare type=polygon url=$api/spare key=FETCH_TEST_KEY priority=2 rate=600
symbols ES
CONF
mode main 500
start "$bin/mdb-fetch" -c "$tmp/fetch.conf" --json --cadence 0.2s --lookback 5m \
	>"$tmp/out.jsonl" 2>"$tmp/err"
fpid=$!
sleep 1.5
grep -q 'source main: circuit breaker closed -> open' "$tmp/err" || fail "breaker did not open: $(cat "$tmp/err")"
grep -q '"src":"spare"' "$tmp/out.jsonl" || fail "no fallback to spare"
grep -q '"src":"main"' "$tmp/out.jsonl" && fail "bars from the failing source"
t_open=$(date +%s%N)
n_open=$(srcstat main requests)
sleep 0.5
# open: nothing is sent to main but one probe per cool-down (1 s)
n_now=$(srcstat main requests)
probes=$((1 + ($(date +%s%N) - t_open) / 1000000000))
[ "$n_now" -le $((n_open + probes)) ] ||
	fail "requests sent through an open breaker: $n_open then $n_now: $(cat "$tmp/err")"
pass "500s: breaker opens after 2 failures, symbols fall back to the next source"

mode main ok
wait_grep '"src":"main"' "$tmp/out.jsonl" 5 "bars do not come back from main"
grep -q 'source main: circuit breaker open -> half-open' "$tmp/err" || fail "no half-open: $(cat "$tmp/err")"
grep -q 'source main: circuit breaker half-open -> closed' "$tmp/err" || fail "breaker did not close"
pass "after the cool-down: half-open, probe succeeds, closed, main serves again"

# every other kind of failure falls back too, and writes no bad bar
for m in 429 ratelimit timeout truncated garbage; do
	mode main "$m"
	n=$(srcstat spare requests)
	deadline=$((SECONDS + 5))
	until [ "$(srcstat spare requests)" -gt $((n + 1)) ]; do
		[ $SECONDS -lt $deadline ] || fail "$m: no fallback to spare"
		sleep 0.1
	done
	mode main ok
	sleep 1.1 # cool-down and probe
done
grep -q 'source main: rate limited' "$tmp/err" || fail "429 not seen as a rate limit"
grep -Eq 'source main: ES: .*(Timeout|timed out)' "$tmp/err" || fail "time-out not logged: $(cat "$tmp/err")"
grep -Eq 'source main: ES: .*(bad JSON|Transferred a partial|partial file)' "$tmp/err" ||
	fail "truncated/garbage not logged"
kill $fpid; wait $fpid
check_bars "$tmp/out.jsonl" >/dev/null
pass "429, time-out, truncated and garbage answers: fallback, logged, no bad bar"

# rate-limit bodies in an HTTP 200: Alpha Vantage's Note, Twelve Data's code 429
cat >"$tmp/rl.conf" <<CONF
source av type=alphavantage url=$api/av key=FETCH_TEST_KEY priority=1 pause=30s
source td type=twelvedata url=$api/td key=FETCH_TEST_KEY priority=2 pause=30s
source pg type=polygon url=$api/pg key=FETCH_TEST_KEY priority=3
symbols IBM
CONF
mode av ratelimit
mode td ratelimit
start "$bin/mdb-fetch" -c "$tmp/rl.conf" --json --cadence 0.2s --lookback 5m \
	>"$tmp/rl.jsonl" 2>"$tmp/rl.err"
fpid=$!
sleep 1.5
kill $fpid; wait $fpid
grep -q 'source av: rate limited (alphavantage: Thank you' "$tmp/rl.err" || fail "AV Note: $(cat "$tmp/rl.err")"
grep -q 'source td: rate limited (twelvedata: You have run out' "$tmp/rl.err" || fail "TD code 429"
[ "$(srcstat av requests)" = 1 ] || fail "a paused source was asked again: $(srcstat av requests)"
[ "$(srcstat td requests)" = 1 ] || fail "a paused source was asked again"
grep -q '"src":"pg"' "$tmp/rl.jsonl" || fail "no fallback after rate-limit bodies"
check_bars "$tmp/rl.jsonl" >/dev/null
pass "rate-limit bodies in HTTP 200 recognised: the source pauses, the next one answers"

# the per-minute limit is never exceeded: 8 symbols every 0.1 s, 5 per minute allowed
cat >"$tmp/lim.conf" <<CONF
source tight type=yahoo url=$api/tight rate=5 priority=1
source wide type=polygon url=$api/wide key=FETCH_TEST_KEY rate=40 daily=30 priority=2
symbols S1 S2 S3 S4 S5 S6 S7 S8
CONF
start "$bin/mdb-fetch" -c "$tmp/lim.conf" --json --cadence 0.1s --lookback 2m \
	>"$tmp/lim.jsonl" 2>"$tmp/lim.err"
fpid=$!
sleep 2.5
kill $fpid; wait $fpid
t=$(srcstat tight max_per_min); w=$(srcstat wide max_per_min); wr=$(srcstat wide requests)
[ "$t" = 5 ] || fail "tight: $t requests in a minute, limit 5"
[ "$w" -le 30 ] && [ "$wr" -le 30 ] || fail "wide: $w in a minute, $wr in all, limits 40/min and 30/day"
[ "$wr" -ge 20 ] || fail "wide was hardly used: $wr"
check_bars "$tmp/lim.jsonl" >"$tmp/lim.counts"
[ "$(awk '{print $1}' "$tmp/lim.counts" | sort -u | wc -l)" = 8 ] || fail "not every symbol served: $(cat "$tmp/lim.counts")"
pass "limits held at the server: tight $t/min (limit 5), wide $wr/day (limit 30); every symbol served"

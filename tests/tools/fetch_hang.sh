#!/bin/bash
# Fault: a source that hangs mid-body (headers and half the body, then
# nothing). mdb-fetch abandons the transfer at the source's time-out with a
# clear logged error, asks the symbol's next source in the same cycle, counts
# the time-outs, opens the hung source's breaker, keeps the 1 s cadence for
# the symbols of other sources, writes no bar from the half body, and goes
# back to the source once it answers again.
. "$(dirname "$0")/lib.sh"
. "$here/fetch_lib.sh"

# (no Yahoo here: its null minutes, one in 11, would leave a window without
# a new bar to write)
cat >"$tmp/fetch.conf" <<CONF
source hang type=polygon url=$api/hang key=FETCH_TEST_KEY timeout=400ms failures=3 cooldown=2s
source spare type=polygon url=$api/spare key=FETCH_TEST_KEY
source other type=alphavantage url=$api/other key=FETCH_TEST_KEY
symbol ES hang spare
symbol NQ hang spare
symbol CL hang spare
symbol GC other
CONF
start "$bin/mdb-fetch" -c "$tmp/fetch.conf" --json --lookback 5m >"$tmp/out.jsonl" 2>"$tmp/err"
fpid=$!
wait_lines "$tmp/out.jsonl" 4 10
sleep 1
[ "$(asked spare ES)" = 0 ] || fail "spare asked before the hang"
mode hang hang
gc0=$(asked other GC) t0=$(date +%s%N)
sleep 5
gc=$(($(asked other GC) - gc0)) secs=$((($(date +%s%N) - t0) / 1000000000))
es=$(asked spare ES) nq=$(asked spare NQ) cl=$(asked spare CL)
read -r -d '' timeouts cycles ontime late herr < <(counters timeouts cycles cycles_on_time cycles_late hang.errors)
grep -Eq 'source hang: (ES|NQ|CL): timed out after 400 ms with [1-9][0-9]* bytes of the body; transfer abandoned' "$tmp/err" ||
	fail "no clear time-out error (mid-body): $(cat "$tmp/err")"
grep -q 'source hang: circuit breaker closed -> open' "$tmp/err" || fail "the hung source's breaker did not open"
[ "$timeouts" -ge 3 ] && [ "$herr" -ge 3 ] || fail "time-outs counted: timeouts $timeouts, hang.errors $herr"
# the hung symbols fall back within their cycle: about one spare request a
# second each (the first cycles wait 400 ms for the time-out, then ask spare)
for n in "$es" "$nq" "$cl"; do
	[ "$n" -ge 4 ] || fail "hung symbols not served by spare each cycle: ES $es NQ $nq CL $cl in 5 s"
done
[ "$gc" -ge $((secs - 1)) ] && [ "$gc" -le $((secs + 2)) ] || fail "GC asked $gc times in $secs s at a 1 s cadence"
# a cycle is late only when a half-open probe of the hung source (one per
# 2 s cool-down) spends its 400 ms and the fallback's answer then misses the
# tick on this loaded machine
[ "$ontime" -ge $((cycles - 3)) ] || fail "cycles on time: $ontime of $cycles (symbol-lates $late)"
pass "hang mid-body: $timeouts time-outs logged and counted, breaker open; ES/NQ/CL from spare $es/$nq/$cl times in 5 s; GC kept its cadence ($gc requests in $secs s); $ontime of $cycles cycles on time"

mode hang ok
wait_grep 'source hang: circuit breaker half-open -> closed' "$tmp/err" 8 "the source did not come back"
n0=$(grep -c '"src":"hang"' "$tmp/out.jsonl")
sleep 2
kill $fpid; wait $fpid
[ "$(grep -c '"src":"hang"' "$tmp/out.jsonl")" -gt "$n0" ] || fail "no bars from hang after it recovered"
check_bars "$tmp/out.jsonl" >"$tmp/counts"
for s in ES NQ CL; do
	grep -q "^$s spare " "$tmp/counts" && grep -q "^$s hang " "$tmp/counts" || fail "$s: $(cat "$tmp/counts")"
done
pass "recovered: breaker closed, bars from hang again; every bar consistent, none repeated unchanged"

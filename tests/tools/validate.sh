#!/bin/bash
# mdb-validate: tick aggregation at several intervals, forming bars re-sent
# and closed, every validation rule as a rej on its own output, duplicates
# and out-of-order input, gap filling, bar pass-through and roll-up, two
# merged inputs, exit codes.
. "$(dirname "$0")/lib.sh"

# stop_started: SIGTERM each process this test started until it is gone. A
# signal that lands just before a stage goes to sleep is only seen when it
# wakes (the endpoint wait cannot be interrupted then), so repeat it.
stop_started()
{
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill "$p" 2>/dev/null || break
			sleep 0.05
			# exited (a zombie until waited for)?
			case $(ps -o stat= -p "$p") in Z* | "") break ;; esac
		done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	pids=()
}
val=$bin/mdb-validate
B=1700006400 # a midnight UTC, in seconds
tick() { echo "{\"t\":\"tick\",\"s\":\"$1\",\"ts\":$(($2 * 1000000000 + ${5:-0})),\"p\":$3,\"v\":$4}"; }
bar() { # bar SYM TS_S IV O H L C V F
	echo "{\"t\":\"bar\",\"s\":\"$1\",\"ts\":$(($2 * 1000000000)),\"iv\":$3,\"o\":$4,\"h\":$5,\"l\":$6,\"c\":$7,\"v\":$8,\"n\":1,\"f\":$9}"
}
# count PATTERN FILE: lines matching
count() { grep -c -- "$1" "$2"; }

# ticks -> 1s and 1m bars; forming bars re-sent; final at the next period
{
	tick ES $((B + 1)) 100.0 2.0
	tick ES $((B + 1)) 101.0 1.0 500
	tick ES $((B + 30)) 99.5 3.0
	tick ES $((B + 20)) 102.0 1.0 # late inside the minute: not the close
	tick ES $((B + 61)) 100.5 1.0
} >"$tmp/ticks.jsonl"
"$val" --json -I 1m <"$tmp/ticks.jsonl" >"$tmp/out" 2>"$tmp/err" || fail "mdb-validate on ticks"
m0=$((B * 1000000000))
grep "\"ts\":$m0,\"iv\":60," "$tmp/out" >"$tmp/m0"
[ "$(wc -l <"$tmp/m0")" = 5 ] || fail "the first minute: 4 forming + 1 final, got $(cat "$tmp/m0")"
tail -n 1 "$tmp/m0" | grep -q '"o":100.0,"h":102.0,"l":99.5,"c":99.5,"v":7.0,"n":4,.*"f":1}' ||
	fail "first minute final bar: $(tail -n 1 "$tmp/m0")"
[ "$(count '"f":1}' "$tmp/m0")" = 1 ] || fail "one final for the first minute"
tail -n 1 "$tmp/out" | grep -q '"f":1}' || fail "end of input closes the open bars"
# with 1s bars too, the late tick's second is closed: it is rejected whole,
# so the 1m bar never holds a tick the 1s bars do not
"$val" --json -I 1s,1m <"$tmp/ticks.jsonl" >"$tmp/out2" 2>/dev/null || fail "mdb-validate -I 1s,1m"
grep -q "\"ts\":$(((B + 1) * 1000000000)),\"iv\":1,\"o\":100.0,\"h\":101.0,\"l\":100.0,\"c\":101.0,\"v\":3.0,\"n\":2,.*\"f\":1}" "$tmp/out2" ||
	fail "1s bar of two ticks"
grep -q '"why":"ts backwards: ES/1s' "$tmp/out2" || fail "late tick for 1s not rejected"
grep "\"ts\":$m0,\"iv\":60," "$tmp/out2" | tail -n 1 | grep -q '"h":101.0,"l":99.5,"c":99.5,"v":6.0,"n":3' ||
	fail "1m bar took part of a rejected tick"
"$val" --json -I 1m --final-only <"$tmp/ticks.jsonl" >"$tmp/fo"
[ "$(count '"t":"bar"' "$tmp/fo")" = 2 ] && [ "$(count '"f":0' "$tmp/fo")" = 0 ] || fail "--final-only: $(cat "$tmp/fo")"
pass "ticks aggregate into 1s and 1m bars; forming bars re-sent, then final"

# every rule: each bad record is one rej with its reason, on -r's output
{
	tick ES $((B + 1)) 100.0 1.0
	echo '{"t":"tick","s":"ES","ts":'$(((B + 2) * 1000000000))',"v":1.0}'
	tick ES $((B + 2)) -5.0 1.0
	tick ES $((B + 2)) 100.0 -1.0
	bar ES $((B + 60)) 60 100.0 99.0 98.0 99.5 1.0 1   # h below o
	bar ES $((B + 60)) 60 100.0 101.0 100.5 99.5 1.0 1 # l above c
	bar ES $((B + 60)) 60 100.0 101.0 99.0 99.5 -3.0 1 # negative volume
	bar ES $((B + 61)) 60 100.0 101.0 99.0 99.5 1.0 1  # ts not on the interval
	bar ES $((B)) 45 100.0 101.0 99.0 99.5 1.0 1       # interval not configured
	echo '{"t":"bar","s":"ES","ts":'$(((B + 60) * 1000000000))',"iv":60,"o":"x"}'
	tick ES $((B + 3)) 100.2 1.0
	tick ES $((B - 60)) 100.0 1.0 # a minute before the one already started
} >"$tmp/bad.jsonl"
"$bin/mdb-ring" create -s 64K rejects || fail "mdb-ring create"
"$val" --json -I 1m -r ring:rejects <"$tmp/bad.jsonl" >"$tmp/good" 2>"$tmp/err" || fail "bad input made mdb-validate fail"
"$bin/mdb-tap" ring:rejects >"$tmp/rej"
for why in 'tick.p: not a positive finite number' 'tick.v: negative' 'bar.h: below max' \
	'bar.l: above min' 'bar.v: negative' 'bar.ts: not a multiple of iv' \
	'bar.iv: 45s is not in -I' 'bar.o: not a number' 'ts backwards: ES/60s'; do
	grep -qF "\"why\":\"$why" "$tmp/rej" || fail "no rej for '$why': $(cat "$tmp/rej")"
done
[ "$(wc -l <"$tmp/rej")" = 10 ] || fail "10 rejects expected, got $(wc -l <"$tmp/rej")"
[ "$(count '"t":"rej"' "$tmp/good")" = 0 ] || fail "rejects leaked into the bar output"
grep -q '"r":{"t":"tick","s":"ES","ts":'$(((B + 2) * 1000000000))',"p":-5.0' "$tmp/rej" || fail "rej does not carry the record"
tail -n 1 "$tmp/good" | grep -q '"c":100.2,"v":2.0,"n":2,.*"f":1}' || fail "good ticks around the bad ones: $(tail -n 1 "$tmp/good")"
grep -q 'rejected: tick.p' "$tmp/err" || fail "rejects are not logged"
"$val" --json <"$tmp/bad.jsonl" 2>/dev/null | grep -c '"t":"rej"' | grep -qx 10 || fail "without -r, rejects go with the bars"
pass "every rule rejects with its reason on the -r output, counted and logged"

# spike filter: a 20% jump is rejected until it has held --spike-reset times
{
	tick ES $((B + 1)) 100.0 1.0
	tick ES $((B + 2)) 120.0 1.0
	tick ES $((B + 3)) 101.0 1.0
	tick ES $((B + 4)) 130.0 1.0
	tick ES $((B + 5)) 130.0 1.0
	tick ES $((B + 6)) 130.5 1.0
} | "$val" --json -I 1m --spike 10 --spike-reset 2 >"$tmp/spike" 2>/dev/null
[ "$(count '"why":"spike: p' "$tmp/spike")" = 3 ] || fail "spikes: $(grep rej "$tmp/spike")"
tail -n 1 "$tmp/spike" | grep -q '"h":130.5,"l":100.0,"c":130.5' || fail "the new level is accepted after 2 spikes"
pass "spike filter, and a new level accepted after --spike-reset spikes"

# duplicates from two inputs merged are dropped, not double counted
"$bin/mdb-ring" create -s 64K a b || fail "mdb-ring create a b"
{ tick ES $((B + 1)) 100.0 1.0; tick ES $((B + 2)) 101.0 1.0; } | "$bin/mdb-pipe" --json-in -o ring:a
{ tick ES $((B + 1)) 100.0 1.0; tick NQ $((B + 1)) 200.0 5.0; tick ES $((B + 2)) 101.0 1.0; } |
	"$bin/mdb-pipe" --json-in -o ring:b
start "$val" -i ring:a -i ring:b --from start -I 1m --json -o - >"$tmp/merged"
start "$bin/mdb-stat" -w 0.2 >/dev/null
sleep 0.5
# both inputs' ticks are in; a tick in the next minute closes the bars
{ tick ES $((B + 61)) 101.0 1.0; tick NQ $((B + 61)) 201.0 1.0; } | "$bin/mdb-pipe" --json-in -o ring:a
sleep 0.5
grep '"f":1}' "$tmp/merged" >"$tmp/merged.final"
grep -q '"s":"ES",.*"o":100.0,"h":101.0,"l":100.0,"c":101.0,"v":2.0,"n":2' "$tmp/merged.final" ||
	fail "ES from two inputs: $(cat "$tmp/merged")"
grep -q '"s":"NQ",.*"c":200.0,"v":5.0' "$tmp/merged.final" || fail "NQ from the second input"
"$bin/mdb-stat" | grep -A20 'mdb-validate' | grep -Eq 'duplicates +2' || fail "duplicates not counted: $("$bin/mdb-stat")"
pass "two inputs merged; repeated ticks dropped and counted"

# gap filling: up to N missing bars, marked filled; a longer gap is left
{
	tick ES $((B + 1)) 100.0 1.0
	tick ES $((B + 181)) 101.0 1.0 # two minutes missing
	tick ES $((B + 600)) 102.0 1.0 # six missing: more than --fill 3
} | "$val" --json -I 1m --fill 3 >"$tmp/fill"
[ "$(count '"f":3}' "$tmp/fill")" = 2 ] || fail "gap filling: $(grep '"f":3' "$tmp/fill")"
grep -q "\"ts\":$(((B + 60) * 1000000000)),\"iv\":60,\"o\":100.0,\"h\":100.0,\"l\":100.0,\"c\":100.0,\"v\":0.0,\"n\":0,.*\"f\":3}" "$tmp/fill" ||
	fail "a filled bar is at the previous close with no volume"
"$val" --json -I 1m <"$tmp/ticks.jsonl" | grep -q '"f":3' && fail "filling is off by default"
pass "gaps of up to --fill bars filled at the previous close, marked filled"

# bars: passed through at their interval (revisions replace, repeats are
# dropped), rolled up into multiples; a final bar closes
{
	bar ES $((B)) 60 10.0 11.0 9.0 10.5 5.0 0
	bar ES $((B)) 60 10.0 12.0 9.0 11.5 7.0 0  # revision
	bar ES $((B)) 60 10.0 12.0 9.0 11.5 7.0 0  # repeat
	bar ES $((B)) 60 10.0 12.0 9.0 11.0 8.0 1  # final
	bar ES $((B)) 60 10.0 12.0 9.0 11.0 8.0 1  # repeat of the final
	bar ES $((B)) 60 10.0 12.0 9.0 11.5 9.0 1  # conflicts with the final
	bar ES $((B + 60)) 60 11.0 11.5 8.0 9.0 2.0 0
	bar ES $((B + 120)) 60 9.0 10.0 9.0 9.5 1.0 1 # the 5m bar is not over: no final
	bar ES $((B - 60)) 60 9.0 10.0 9.0 9.5 1.0 1  # backwards
} | "$val" --json -I 1m,5m 2>/dev/null >"$tmp/bars"
grep "^{\"t\":\"bar\",\"s\":\"ES\",\"ts\":$m0,\"iv\":60," "$tmp/bars" >"$tmp/b1"
[ "$(wc -l <"$tmp/b1")" = 3 ] || fail "1m pass-through: $(cat "$tmp/b1")"
grep "\"iv\":300," "$tmp/bars" >"$tmp/b5"
tail -n 1 "$tmp/b5" | grep -q '"o":10.0,"h":12.0,"l":8.0,"c":9.5,"v":11.0,.*"f":1}' || fail "5m roll-up: $(cat "$tmp/b5")"
[ "$(count '"f":1}' "$tmp/b5")" = 1 ] || fail "one final 5m bar (at end of input)"
grep -q '"why":"ES/60s bar at [0-9]* is already final"' "$tmp/bars" || fail "conflicting final not rejected"
grep -q '"why":"ts backwards: ES/60s bar older' "$tmp/bars" || fail "backwards bar not rejected"
[ "$(count '"t":"rej"' "$tmp/bars")" = 2 ] || fail "only two rejects: $(grep rej "$tmp/bars")"
pass "bars passed through and rolled up; revisions replace, repeats dropped"

# a tick and a bar source cannot build the same series
{ tick ES $((B + 1)) 100.0 1.0; bar ES $((B)) 60 100.0 100.0 100.0 100.0 1.0 1; } |
	"$val" --json -I 1m 2>/dev/null | grep -q '"why":"ES/60s is built from ticks, not 60s bars"' ||
	fail "mixed sources not rejected"
pass "one source per series"

# --close-after: a bar closes by the clock when no more data comes
now=$(date +%s)
start "$val" -i ring:clock --from start -I 1s --close-after 0.2 --json -o - >"$tmp/clock"
sleep 0.3
tick ES $((now)) 100.0 1.0 | "$bin/mdb-pipe" --json-in -o ring:clock
sleep 2
grep -q '"f":1}' "$tmp/clock" || fail "--close-after did not close the bar: $(cat "$tmp/clock")"
pass "--close-after closes a quiet bar by the clock"

"$val" --bogus 2>/dev/null; [ $? -eq 2 ] || fail "bad option must exit 2"
"$val" -I 1.5s 2>/dev/null; [ $? -eq 2 ] || fail "-I 1.5s must exit 2"
"$val" -r - -o - 2>/dev/null; [ $? -eq 2 ] || fail "-r - with bars on stdout must exit 2"
"$val" -h | grep -q '^usage: mdb-validate' || fail "-h"
"$val" -V | grep -q '^mdb-validate ' || fail "-V"
pass "usage and exit codes"
stop_started

#!/bin/bash
# mdb-watch on .scid files made by mdb-sim: every record once, in order, with
# the values mdb-sim wrote; a partial record; truncation and rewrite (while
# running and while stopped); a file appearing, deleted and made again; a
# corrupt header; a restart that repeats nothing; no CPU while idle.
. "$(dirname "$0")/lib.sh"

d=$tmp/d
mkdir -p "$d" "$tmp/src" "$tmp/src2"
sim() { "$bin/mdb-sim" -r 0 --quotes 0.05 --sub-trades 0.05 "$@"; }

sim -d "$d" -s ES -s NQ -n 500 --log "$tmp/sim.jsonl" || fail "mdb-sim"
[ "$(stat -c %s "$d/ES.scid")" = $((56 + 40 * 500)) ] || fail "ES.scid has the wrong size"
# mdb-sim is deterministic
sim -d "$tmp/src2" -s ES -s NQ -n 500 || fail "mdb-sim"
cmp -s "$d/ES.scid" "$tmp/src2/ES.scid" || fail "mdb-sim is not deterministic"
rm -f "$tmp/src2"/*

watch() { start "$bin/mdb-watch" --json --state "$tmp/state" "$d" >>"$tmp/out.jsonl" 2>>"$tmp/err"; }
watch
wp=$!
wait_lines "$tmp/out.jsonl" 1000
same_symbol ES "$tmp/out.jsonl" "$tmp/sim.jsonl"
same_symbol NQ "$tmp/out.jsonl" "$tmp/sim.jsonl"
# times are unique and increasing per symbol
for s in ES NQ; do
	grep -o "\"s\":\"$s\",\"ts\":[0-9]*" "$tmp/out.jsonl" | cut -d: -f3 | sort -c -u -n ||
		fail "$s: times not unique and increasing"
done
grep -q '"sub":1' "$tmp/out.jsonl" && grep -q '"sub":2' "$tmp/out.jsonl" || fail "no sub-trade markers"
grep -q '"b":[0-9.]*,"a":[0-9.]*,"n":0,"src"' "$tmp/out.jsonl" || fail "no bid/ask update"
pass "1000 records from two files, each once, in order, as written"

sim -d "$d" -s ES -s NQ -n 200 --log "$tmp/sim.jsonl" || fail "mdb-sim"
wait_lines "$tmp/out.jsonl" 1400
same_symbol ES "$tmp/out.jsonl" "$tmp/sim.jsonl"
pass "appended records follow"

# a partial record waits for the rest
sim -d "$tmp/src" -s PR -n 10 --log "$tmp/sim.jsonl" || fail "mdb-sim"
head -c $((56 + 40 * 3 + 17)) "$tmp/src/PR.scid" >"$d/PR.scid"
wait_lines "$tmp/out.jsonl" 1403
sleep 0.3
[ "$(grep -c '"s":"PR"' "$tmp/out.jsonl")" = 3 ] || fail "a partial record was published"
tail -c +$((56 + 40 * 3 + 17 + 1)) "$tmp/src/PR.scid" >>"$d/PR.scid"
wait_lines "$tmp/out.jsonl" 1410
same_symbol PR "$tmp/out.jsonl" "$tmp/sim.jsonl"
pass "a partial record waits for the rest"

# truncation and rewrite: NQ is replaced in place by a shorter file
sim -d "$tmp/src2" -s NQ -n 50 --seed 7 --log "$tmp/nq7.jsonl" || fail "mdb-sim"
cp "$tmp/src2/NQ.scid" "$d/NQ.scid"
wait_lines "$tmp/out.jsonl" 1460
sym_out "$tmp/out.jsonl" NQ | tail -n 50 >"$tmp/a"
cmp -s "$tmp/a" "$tmp/nq7.jsonl" || fail "the rewritten file's records differ"
[ "$(grep -c '"s":"NQ"' "$tmp/out.jsonl")" = 750 ] || fail "NQ: records repeated after the rewrite"
pass "a truncated and rewritten file is read again from the start, once"

# a new file appears, is deleted, appears again
sim -d "$d" -s CL -n 100 --log "$tmp/sim.jsonl" || fail "mdb-sim"
wait_lines "$tmp/out.jsonl" 1560
rm "$d/CL.scid"
sleep 0.2
sim -d "$d" -s CL -n 30 --seed 9 --log "$tmp/cl9.jsonl" || fail "mdb-sim"
wait_lines "$tmp/out.jsonl" 1590
same_symbol CL "$tmp/out.jsonl" <(cat "$tmp/sim.jsonl" "$tmp/cl9.jsonl")
grep -q "CL.scid: gone" "$tmp/err" || fail "no log line for the deleted file"
pass "a file appearing, deleted and made again"

# a corrupt header is reported with file and offset; the rest carries on
{ printf 'SCIX'; head -c 52 /dev/zero; head -c 400 /dev/urandom; } >"$d/BAD.scid"
{ head -c 4 "$d/ES.scid"; printf '\x3c\0\0\0'; head -c 48 /dev/zero; } >"$d/BAD2.scid"
sim -d "$d" -s ES -n 10 --log "$tmp/sim.jsonl" || fail "mdb-sim"
wait_lines "$tmp/out.jsonl" 1600
grep -q "BAD.scid: offset 0: bad magic" "$tmp/err" || fail "no error naming BAD.scid and its offset"
grep -q "BAD2.scid: offset 4: header size" "$tmp/err" || fail "no error naming BAD2.scid's header size"
same_symbol ES "$tmp/out.jsonl" "$tmp/sim.jsonl"
kill -0 $wp || fail "mdb-watch died"
pass "corrupt headers: a clear error, and the other files carry on"

# idle: no CPU while nothing changes
idle=${IDLE_SECONDS:-10}
t0=$(awk '{ print $14 + $15 }' /proc/$wp/stat)
sleep "$idle"
t1=$(awk '{ print $14 + $15 }' /proc/$wp/stat)
[ $((t1 - t0)) -le 1 ] || fail "idle mdb-watch used $((t1 - t0)) ticks of CPU in ${idle}s"
pass "idle for ${idle}s: $((t1 - t0)) clock ticks of CPU"

# ... and it is not woken either, with no state file too (a timer armed
# after the last chunk once woke such a watcher 20 times a second)
wakes() { awk '/^(non)?voluntary_ctxt_switches/ { n += $2 } END { print n }' /proc/$1/status; }
start "$bin/mdb-watch" --json "$d" >/dev/null 2>"$tmp/err-nostate"
wq=$!
if [ -n "${MDB_SANITIZE:-}" ]; then sleep 3; else sleep 1; fi
w0=$(wakes $wq)
sleep 3
w1=$(wakes $wq)
kill -0 $wq || fail "mdb-watch without --state died"
[ $((w1 - w0)) -le 2 ] || fail "idle mdb-watch without --state woke $((w1 - w0)) times in 3 s"
kill $wq; wait $wq || fail "mdb-watch without --state did not exit 0 on SIGTERM"
pass "idle without --state: woken $((w1 - w0)) times in 3 s"

# --spin: appends that come while it spins are read as well (each once, in
# order), and after the last one it stops spinning: idle is idle again
mkdir "$tmp/spin"
start "$bin/mdb-watch" --json --spin 20ms "$tmp/spin" >"$tmp/spin.jsonl" 2>"$tmp/err-spin"
wq=$!
"$bin/mdb-sim" -d "$tmp/spin" -s ES -r 2000 --flush-period 2ms -n 300 --log "$tmp/spin-sim.jsonl" ||
	fail "mdb-sim"
wait_lines "$tmp/spin.jsonl" 300
same_symbol ES "$tmp/spin.jsonl" "$tmp/spin-sim.jsonl"
sleep 0.5
w0=$(wakes $wq)
t0=$(awk '{ print $14 + $15 }' /proc/$wq/stat)
sleep 3
w1=$(wakes $wq)
t1=$(awk '{ print $14 + $15 }' /proc/$wq/stat)
[ $((w1 - w0)) -le 2 ] && [ $((t1 - t0)) -le 1 ] ||
	fail "mdb-watch --spin, idle: woken $((w1 - w0)) times, $((t1 - t0)) ticks of CPU in 3 s"
kill $wq; wait $wq || fail "mdb-watch --spin did not exit 0 on SIGTERM"
"$bin/mdb-watch" --spin 1x "$tmp/spin" 2>/dev/null; [ $? = 2 ] || fail "a bad --spin is not exit 2"
pass "--spin 20ms: 300 appends in 2 ms bursts, each once; then idle: $((t1 - t0)) ticks"

# a restart repeats nothing and picks up what came while it was stopped,
# including a file rewritten in place to a larger size
kill $wp; wait $wp || fail "mdb-watch did not exit 0 on SIGTERM"
sim -d "$d" -s ES -n 20 --log "$tmp/sim.jsonl" || fail "mdb-sim"
rm -f "$tmp/src2/NQ.scid"
sim -d "$tmp/src2" -s NQ -n 80 --seed 11 --log "$tmp/nq11.jsonl" || fail "mdb-sim"
cat "$tmp/src2/NQ.scid" >"$d/NQ.scid"
watch
wp=$!
wait_lines "$tmp/out.jsonl" 1700
sleep 0.3
[ "$(wc -l <"$tmp/out.jsonl")" = 1700 ] || fail "restart: $(wc -l <"$tmp/out.jsonl") lines, wanted 1700"
same_symbol ES "$tmp/out.jsonl" "$tmp/sim.jsonl"
sym_out "$tmp/out.jsonl" NQ | tail -n 80 >"$tmp/a"
cmp -s "$tmp/a" "$tmp/nq11.jsonl" || fail "the file rewritten while stopped was not read anew"
pass "a restart resumes at the saved offsets; a file rewritten meanwhile is read anew"

# bars, a symbol map and usage errors
mkdir "$tmp/bars"
"$bin/mdb-sim" -d "$tmp/bars" -s NQU25-CME -r 0 -n 300 --bars || fail "mdb-sim --bars"
printf '# map\nNQU25-CME NQ\n' >"$tmp/map"
timeout 5 "$bin/mdb-watch" --json --symbols "$tmp/map" --bar-interval 1 "$tmp/bars/NQU25-CME.scid" >"$tmp/bars.jsonl" &
p=$!; pids+=($p)
wait_lines "$tmp/bars.jsonl" 1
kill $p; wait $p
grep -q '^{"t":"bar","s":"NQ","ts":[0-9]*000000000,"iv":1,"o":' "$tmp/bars.jsonl" || fail "no 1-second bars for NQ"
printf 'NQU25-CME\n' >"$tmp/badmap"
"$bin/mdb-watch" --symbols "$tmp/badmap" "$d" 2>"$tmp/e"; [ $? = 2 ] || fail "a bad map is not exit 2"
grep -q "badmap: line 1" "$tmp/e" || fail "a bad map's error does not name its line"
"$bin/mdb-watch" 2>/dev/null; [ $? = 2 ] || fail "no path is not exit 2"
"$bin/mdb-sim" --rate x 2>/dev/null; [ $? = 2 ] || fail "mdb-sim: a bad rate is not exit 2"
pass "bars, the symbol map, usage errors"

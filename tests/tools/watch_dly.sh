#!/bin/bash
# mdb-watch on .dly/CSV text files made by mdb-sim: every line once, in
# order, with the values written; a partial last line waits; garbage lines
# are reported with file, line and offset, counted, and skipped; truncation
# and rewrite; a file deleted and made again; a restart that repeats nothing.
. "$(dirname "$0")/lib.sh"

d=$tmp/d
mkdir -p "$d"
sim() { "$bin/mdb-sim" --daily -r 0 "$@"; }

sim -d "$d" -s ES -s NQ -n 300 --log "$tmp/sim.jsonl" || fail "mdb-sim --daily"
head -1 "$d/ES.dly" | grep -qx 'Date, Open, High, Low, Close, Volume, OpenInterest' || fail "no Sierra header"
sed -n 2p "$d/ES.dly" | grep -qx '2025/9/12, [0-9.]*, [0-9.]*, [0-9.]*, [0-9.]*, [0-9]*, [0-9]*' || fail "not a Sierra daily line"
[ "$(wc -l <"$d/ES.dly")" = 301 ] || fail "ES.dly: wrong number of lines"
watch() { start "$bin/mdb-watch" --json --state "$tmp/state" "$d" >>"$tmp/out.jsonl" 2>>"$tmp/err"; }
watch
wp=$!
wait_lines "$tmp/out.jsonl" 600
same_symbol ES "$tmp/out.jsonl" "$tmp/sim.jsonl"
same_symbol NQ "$tmp/out.jsonl" "$tmp/sim.jsonl"
grep -q '"iv":86400,.*"src":"dly","oi":' "$tmp/out.jsonl" || fail "no daily bar with open interest"
pass "600 daily bars from two files, each once, in order, as written"

sim -d "$d" -s ES -n 20 --log "$tmp/sim.jsonl" || fail "mdb-sim"
wait_lines "$tmp/out.jsonl" 620
same_symbol ES "$tmp/out.jsonl" "$tmp/sim.jsonl"
pass "appended lines follow, the dates going on"

# a partial last line waits for its end
printf '2030/1/2, 10, 12, 9, 11, 5' >>"$d/NQ.dly"
sleep 0.3
[ "$(wc -l <"$tmp/out.jsonl")" = 620 ] || fail "a partial line was published"
printf '00, 7\r\n' >>"$d/NQ.dly"
wait_lines "$tmp/out.jsonl" 621
tail -n 1 "$tmp/out.jsonl" | grep -q '"s":"NQ","ts":1893542400000000000,"iv":86400,"o":10.0,"h":12.0,"l":9.0,"c":11.0,"v":500.0,.*"oi":7.0' ||
	fail "the completed line has the wrong values: $(tail -n 1 "$tmp/out.jsonl")"
pass "a partial line waits for the rest (CRLF accepted)"

# garbage lines: a clear error naming the file, line and offset; the rest goes on
lines=$(wc -l <"$d/NQ.dly"); size=$(stat -c %s "$d/NQ.dly")
printf 'this is not a line\n2030/1/3, 10, 12, 9, 11, 5, 1\n2030/2/30, 1, 1, 1, 1, 1, 1\n\n2030/1/4, 10, 12, 9, 11, 6, 1\n' >>"$d/NQ.dly"
wait_lines "$tmp/out.jsonl" 623
sleep 0.2
grep -q "NQ.dly: line $((lines + 1)) (offset $size): Date: not a date" "$tmp/err" || fail "no error naming NQ.dly's line $((lines + 1)) and offset $size"
grep -q "NQ.dly: line $((lines + 3)) (offset [0-9]*): Date: not a date" "$tmp/err" || fail "no error for 2030/2/30"
[ "$(wc -l <"$tmp/out.jsonl")" = 623 ] || fail "garbage lines made records"
n=$("$bin/mdb-stat" | awk '$1 == "bad_input" { print $2 }')
[ "$n" = 2 ] || fail "bad_input counter is '$n', wanted 2"
pass "garbage lines: an error naming file, line and offset; the good lines go on"

# rewrite in place to a shorter file, then to a longer one while running
rm -rf "$tmp/src" && mkdir "$tmp/src"
sim -d "$tmp/src" -s ES -n 40 --seed 5 --log "$tmp/es5.jsonl" || fail "mdb-sim"
cat "$tmp/src/ES.dly" >"$d/ES.dly"
wait_lines "$tmp/out.jsonl" 663
sym_out "$tmp/out.jsonl" ES | tail -n 40 >"$tmp/a"
cmp -s "$tmp/a" "$tmp/es5.jsonl" || fail "the rewritten file's records differ"
grep -q "ES.dly: shrank" "$tmp/err" || fail "no log line for the shrunk file"
pass "a truncated and rewritten file is read again from the start"

# deleted and made again, a .csv file appearing later
rm "$d/ES.dly"
sleep 0.2
sim -d "$d" -s ES -n 10 --seed 6 --log "$tmp/es6.jsonl" || fail "mdb-sim"
wait_lines "$tmp/out.jsonl" 673
sym_out "$tmp/out.jsonl" ES | tail -n 10 >"$tmp/a"
cmp -s "$tmp/a" "$tmp/es6.jsonl" || fail "the file made again gives other records"
printf 'Date,Time,Open,High,Low,Last,Volume,NumberOfTrades,BidVolume,AskVolume\n2025-09-12,13:30:00,1,2,0.5,1.5,10,3,4,6\n' >"$d/CL.csv"
wait_lines "$tmp/out.jsonl" 674
tail -n 1 "$tmp/out.jsonl" | grep -q '^{"t":"bar","s":"CL","ts":1757683800000000000,"iv":1,"o":1.0,"h":2.0,"l":0.5,"c":1.5,"v":10.0,"n":3,"bv":4.0,"av":6.0,"f":0,"src":"dly","off":[0-9]*,"fid":[0-9]*}$' ||
	fail "an intraday CSV line: $(tail -n 1 "$tmp/out.jsonl")"
printf 'Open;High\n' >"$d/BAD.csv"
sleep 0.3
grep -q "BAD.csv: line 1 (offset 0): header: not a Date, Open, High, Low, Close header" "$tmp/err" || fail "no error for a bad header"
pass "a file deleted and made again; an intraday .csv appearing; a bad header"

# a restart repeats nothing and picks up what came meanwhile
kill $wp; wait $wp || fail "mdb-watch did not exit 0 on SIGTERM"
sim -d "$d" -s NQ -n 15 --log "$tmp/nq.jsonl" || fail "mdb-sim"
printf '2025-09-12,13:30:01,1,2,0.5,1.75,10,3,4,6\n' >>"$d/CL.csv"
watch
wp=$!
wait_lines "$tmp/out.jsonl" 690
sleep 0.3
[ "$(wc -l <"$tmp/out.jsonl")" = 690 ] || fail "restart: $(wc -l <"$tmp/out.jsonl") lines, wanted 690"
sym_out "$tmp/out.jsonl" NQ | tail -n 15 >"$tmp/a"
cmp -s "$tmp/a" "$tmp/nq.jsonl" || fail "what came while stopped differs"
pass "a restart resumes at the saved offsets"
"$bin/mdb-sim" --daily -d "$tmp/nope" -n 1 2>/dev/null; [ $? = 1 ] || fail "mdb-sim: a missing dir is not exit 1"

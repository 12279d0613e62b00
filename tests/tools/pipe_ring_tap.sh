#!/bin/bash
# JSON lines through mdb-pipe into a ring come out of mdb-tap unchanged;
# MessagePack on stdio round-trips; filters, --last, bad input, exit codes.
. "$(dirname "$0")/lib.sh"

"$bin/mdb-ring" create -s 64K bars || fail "mdb-ring create"
"$bin/mdb-pipe" --json -o ring:bars <"$data/records.jsonl" || fail "mdb-pipe into the ring"
"$bin/mdb-tap" ring:bars >"$tmp/out.jsonl" || fail "mdb-tap"
diff -u "$data/records.jsonl" "$tmp/out.jsonl" >&2 || fail "ring round trip changed the records"
pass "JSON lines -> mdb-pipe -> ring -> mdb-tap unchanged"

"$bin/mdb-pipe" --json-in <"$data/records.jsonl" >"$tmp/stream.mp" || fail "JSON to MessagePack"
[ "$(head -c1 "$tmp/stream.mp" | od -An -tx1 | tr -d ' ')" != "7b" ] || fail "stdout is still JSON"
"$bin/mdb-tap" <"$tmp/stream.mp" >"$tmp/back.jsonl" || fail "mdb-tap of a MessagePack stream"
diff -u "$data/records.jsonl" "$tmp/back.jsonl" >&2 || fail "MessagePack stream round trip"
"$bin/mdb-pipe" <"$tmp/stream.mp" | cmp - "$tmp/stream.mp" || fail "MessagePack passthrough not byte-exact"
pass "MessagePack on stdio round-trips byte for byte"

n=$("$bin/mdb-tap" -t bar -s ES ring:bars | wc -l)
[ "$n" = 2 ] || fail "-t bar -s ES gave $n records, wanted 2"
n=$("$bin/mdb-tap" -t tick,sig ring:bars | wc -l)
[ "$n" = 2 ] || fail "-t tick,sig gave $n records, wanted 2"
"$bin/mdb-tap" -n 2 ring:bars >"$tmp/last2"
tail -n 2 "$data/records.jsonl" | diff -u - "$tmp/last2" >&2 || fail "--last 2"
"$bin/mdb-tap" -c 1 ring:bars | diff -u <(head -n 1 "$data/records.jsonl") - >&2 || fail "--count 1"
"$bin/mdb-tap" --text -t bar -c 1 ring:bars | grep -q '^2023-11-14T22:13:20.000000000Z bar ES 60s o=5000.25' ||
	fail "--text line"
"$bin/mdb-tap" --raw -c 1 ring:bars | head -n 1 | grep -q '^@0 tick len ' || fail "--raw header"
pass "filters, --last, --count, --text, --raw"

# bad input: reported with its line, counted, and the good records still flow
printf '%s\n' '{"t":"bar","s":"X","ts":1,"iv":60,"o":1.0,"h":1.0,"l":1.0,"c":1.0}' \
	'not json' '{"s":"no type"}' '{"t":"tick","s":"Y","ts":2,"p":1.5}' >"$tmp/bad.jsonl"
"$bin/mdb-pipe" --json-in <"$tmp/bad.jsonl" 2>"$tmp/err" | "$bin/mdb-tap" >"$tmp/good" ||
	fail "bad input killed the pipe"
[ "$(wc -l <"$tmp/good")" = 2 ] || fail "good records around bad ones were lost"
grep -q 'line 2' "$tmp/err" || fail "the bad line is not named: $(cat "$tmp/err")"
grep -q 'line 3' "$tmp/err" || fail "a record without t is not reported"
head -c 100 /dev/urandom >"$tmp/garbage"
"$bin/mdb-tap" <"$tmp/garbage" >/dev/null 2>"$tmp/err2"
[ $? -eq 0 ] || fail "garbage on stdin made mdb-tap fail"
pass "bad input is reported and skipped, never fatal"

# a durable consumer shows up in mdb-ring stat, alive while it runs
start "$bin/mdb-pipe" -i ring:bars --name writer -o /dev/null 2>"$tmp/pipe.err"
start "$bin/mdb-pipe" -i ring:bars --name writer2 -o - >/dev/null
sleep 0.3
"$bin/mdb-ring" stat bars >"$tmp/stat" || fail "mdb-ring stat"
grep -Eq 'writer2 +durable +[0-9]+ alive' "$tmp/stat" || fail "live consumer not shown: $(cat "$tmp/stat")"
"$bin/mdb-ring" rm bars 2>/dev/null && fail "rm removed a ring in use"
"$bin/mdb-ring" stat --json bars | grep -q '"name":"writer2","kind":"durable"' || fail "stat --json"
kill "${pids[-1]}"; wait "${pids[-1]}"
"$bin/mdb-ring" stat bars | grep -Eq 'writer2 +durable +[0-9]+ gone' || fail "stopped consumer not shown as gone"
"$bin/mdb-ring" drop bars writer2 || fail "drop"
pass "mdb-ring stat shows consumers alive and gone; drop; rm refuses a live ring"

# usage and exit codes
"$bin/mdb-pipe" --bogus 2>/dev/null; [ $? -eq 2 ] || fail "bad option must exit 2"
"$bin/mdb-pipe" -o nowhere 2>/dev/null; [ $? -eq 2 ] || fail "bad endpoint must exit 2"
"$bin/mdb-tap" -t candle 2>/dev/null; [ $? -eq 2 ] || fail "bad type must exit 2"
"$bin/mdb-ring" create -s 1000 x 2>/dev/null; [ $? -eq 2 ] || fail "non-power-of-two size must exit 2"
"$bin/mdb-ring" stat nosuch 2>/dev/null; [ $? -eq 2 ] || fail "missing ring must exit 2"
for t in mdb-pipe mdb-tap mdb-ring mdb-stat; do
	"$bin/$t" -h | grep -q "^usage: $t" || fail "$t -h"
	"$bin/$t" -V | grep -q "^$t " || fail "$t -V"
done
pass "usage, versions and exit codes"

# a dead durable consumer holds the producer back (nothing is overwritten);
# mdb-ring stat shows the stall growing, and SIGTERM still stops the producer
"$bin/mdb-ring" create -s 4K tiny || fail "create tiny"
"$bin/mdb-pipe" --name dead -i ring:tiny >/dev/null &
p=$!; sleep 0.2; kill -9 $p; wait $p 2>/dev/null
yes '{"t":"tick","s":"ES","ts":1,"p":1.5}' | head -n 1000 | "$bin/mdb-pipe" --json-in -o ring:tiny &
p=$!
pids+=($p)
sleep 0.5
kill -0 $p 2>/dev/null || fail "the producer finished although a durable consumer holds it"
"$bin/mdb-ring" stat tiny | grep -q 'held back 0\.[1-9]' || "$bin/mdb-ring" stat tiny | grep -q 'held back [1-9]' ||
	fail "held-back time not shown while stalled: $("$bin/mdb-ring" stat tiny)"
t0=$(date +%s%N)
kill $p; wait $p
dt=$((($(date +%s%N) - t0) / 1000000))
[ $dt -lt 2000 ] || fail "a held-back mdb-pipe took $dt ms to stop on SIGTERM"
pass "held back by a dead durable consumer: stall shown, SIGTERM stops it in $dt ms"

#!/bin/bash
# kill -9 of mdb-pipe (a durable consumer writing to a buffered stdout) at
# random moments loses nothing: after restarts, every record of the input
# ring reached the output (a record read but not yet passed on is read
# again, so repeats are allowed; its key makes them harmless).
. "$(dirname "$0")/lib.sh"

n=${N:-200000}
# a kill lands 10 to 90 ms after a start; a sanitizer build takes about that
# long to start at all on a busy machine, so there each gets 100 to 300 ms
# (and fewer records): the consumer must make progress between kills
pause() { echo "0.0$((RANDOM % 9 + 1))"; }
if [ -n "${MDB_SANITIZE:-}" ]; then
	n=${N:-50000}
	pause() { echo "0.$((RANDOM % 3 + 1))"; }
fi
"$bin/mdb-ring" create -s 256K src || fail "create"
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
	printf "{\"t\":\"tick\",\"s\":\"ES\",\"ts\":%d,\"p\":%d.5}\n", i, i }' >"$tmp/in.jsonl"
# the consumer exists before the feed starts, so it sees everything
"$bin/mdb-pipe" --name bridge -i ring:src >/dev/null & sleep 0.2; kill -9 $!; wait $! 2>/dev/null
"$bin/mdb-pipe" --json-in -o ring:src <"$tmp/in.jsonl" &
feeder=$!
pids+=($feeder)
kills=0
while :; do
	"$bin/mdb-pipe" --name bridge -i ring:src --json-out >>"$tmp/out.jsonl" &
	p=$!
	sleep "$(pause)"
	kill -9 "$p"; wait "$p" 2>/dev/null
	kills=$((kills + 1))
	kill -0 "$feeder" 2>/dev/null || break
	[ $kills -lt 300 ] || fail "the feeder never finished"
done
wait "$feeder" || fail "feeder failed"
# a last run drains the rest; mdb-ring stat shows when nothing is left
"$bin/mdb-pipe" --name bridge -i ring:src --json-out >>"$tmp/out.jsonl" &
p=$!
for _ in $(seq 200); do
	"$bin/mdb-ring" stat --json src | grep -q '"name":"bridge","kind":"durable","pid":[0-9]*,"alive":true,"position":\([0-9]*\),"backlog":0,' && break
	sleep 0.05
done
kill "$p"; wait "$p"
# a torn last line from a killed writer is not a record that was passed on
grep -o '"ts":[0-9]*' "$tmp/out.jsonl" | sort -u | wc -l >"$tmp/count"
[ "$(cat "$tmp/count")" = "$n" ] || fail "$(cat "$tmp/count") of $n distinct records arrived after $kills kills"
pass "$n records, mdb-pipe killed -9 $kills times: none lost ($(wc -l <"$tmp/out.jsonl") lines with repeats)"

#!/bin/bash
# The same records across a ZeroMQ hop: ring -> mdb-pipe -> PUB ipc:// ->
# SUB mdb-pipe -> ring -> mdb-tap, unchanged; and a SUB topic filter.
. "$(dirname "$0")/lib.sh"

sock=zmq+ipc://$tmp/feed.sock
"$bin/mdb-ring" create -s 64K a_bars b_bars || fail "mdb-ring create"
# host A: bars ring -> ZeroMQ PUB
start "$bin/mdb-pipe" -i ring:a_bars -o "$sock"
# host B: ZeroMQ SUB -> ring, and a second SUB that wants only ES bars
start "$bin/mdb-pipe" -i "$sock" -o ring:b_bars
start "$bin/mdb-pipe" -i "$sock" --topic bar/ES --json -o - >"$tmp/es.jsonl"
start "$bin/mdb-tap" -f ring:b_bars >"$tmp/b.jsonl"
sleep 0.5 # ZeroMQ subscriptions take a moment to reach the publisher
"$bin/mdb-pipe" --json -o ring:a_bars <"$data/records.jsonl" || fail "feeding host A"
wait_lines "$tmp/b.jsonl" "$(wc -l <"$data/records.jsonl")"
diff -u "$data/records.jsonl" "$tmp/b.jsonl" >&2 || fail "records changed across ZeroMQ"
pass "ring -> ZeroMQ ipc -> ring -> mdb-tap unchanged"
wait_lines "$tmp/es.jsonl" 2
grep '"t":"bar","s":"ES"' "$data/records.jsonl" | diff -u - "$tmp/es.jsonl" >&2 || fail "topic filter bar/ES"
pass "SUB topic filter bar/ES"

# over TCP on loopback too
port=$((20000 + RANDOM % 20000))
start "$bin/mdb-pipe" -i ring:t_in -o "zmq+tcp://127.0.0.1:$port"
start "$bin/mdb-pipe" -i "zmq+tcp://127.0.0.1:$port" --json -o - >"$tmp/tcp.jsonl"
sleep 0.5
"$bin/mdb-pipe" --json -o ring:t_in <"$data/records.jsonl" || fail "feeding tcp"
wait_lines "$tmp/tcp.jsonl" "$(wc -l <"$data/records.jsonl")"
diff -u "$data/records.jsonl" "$tmp/tcp.jsonl" >&2 || fail "records changed across ZeroMQ tcp"
pass "ZeroMQ over tcp://127.0.0.1 unchanged"

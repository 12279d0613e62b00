#!/bin/bash
# mdb-ws fed by mdb-feature: snapshots and deltas with seq/prev_seq,
# subscribe/unsubscribe/resync acks, a slow reader conflated, HTTP errors and
# endpoints, RFC 6455 protocol errors, pings, token and Origin checks, the
# loopback-only default bind, usage and exit codes. The WebSocket client is
# tests/tools/wsclient.py (standard library only).
. "$(dirname "$0")/lib.sh"
. "$here/ws_lib.sh"

check()
{
	python3 "$here/ws_check.py" "$@" || fail "scenario $3"
}

"$bin/mdb-ring" create -s 16M bars || fail "create bars"
"$bin/mdb-ring" create -s 16M feat || fail "create feat"
start "$bin/mdb-feature" -i ring:bars -o ring:feat --lvc wslvc 2>"$tmp/feature.err"
for _ in $(seq 100); do [ -e "$MDB_SHM_DIR/wslvc.lvc" ] && break; sleep 0.05; done
[ -e "$MDB_SHM_DIR/wslvc.lvc" ] || fail "mdb-feature made no last-value cache"
start_ws "$tmp/ws.log" -i ring:feat --lvc wslvc -l 0 --ping 10s --max-msg 4k --max-subs 256 \
	--max-rate 20 --queue-bytes 16k --queue-age 200ms --slow-resyncs 1000 --sndbuf 16k
grep -q "listening on 127.0.0.1:" "$tmp/ws.log" || fail "a bare port is not bound to 127.0.0.1"
# the default bind is loopback only: not reachable on another address of this host
other=$(hostname -I 2>/dev/null | awk '{print $1}')
if [ -n "$other" ] && [ "$other" != 127.0.0.1 ]; then
	python3 -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)" \
		"$other" "$port" 2>/dev/null && fail "mdb-ws reachable on $other"
fi
pass "binds 127.0.0.1 by default (port $port)"
sleep 0.2 # mdb-feature's consumer slot exists before the first bars

check "$port" "$bin" live_data
check "$port" "$bin" control
check "$port" "$bin" http_errors
check "$port" "$bin" protocol
check "$port" "$bin" slow
"$bin/mdb-ring" stat feat | grep -q 'mdb-ws *observer' || fail "mdb-ws is not an observer: $("$bin/mdb-ring" stat feat)"
pass "reads its input ring as an observer"

# pings and missed pongs, on a second gateway with a short interval
start_ws "$tmp/ws2.log" -i ring:feat --name ws2 --lvc wslvc -l 127.0.0.1:0 --ping 300ms --pong-misses 2
check "$port" "$bin" pings

# a client that stays slow is closed
start_ws "$tmp/ws4.log" -i ring:feat --name ws4 --lvc wslvc -l 0 --slow-resyncs 1 \
	--queue-bytes 8k --queue-age 100ms --sndbuf 8k
check "$port" "$bin" slow_close "${pids[-1]}"

# token and Origin
printf 's3cret\n' >"$tmp/token"
start_ws "$tmp/ws3.log" -i ring:feat --name ws3 -l 0 --token-file "$tmp/token" \
	--allow-origin http://good.example
check "$port" "$bin" auth s3cret

# /api/bars: history from mdb-write's database, read-only
for i in $(seq 0 9); do
	echo "{\"t\":\"bar\",\"s\":\"HB\",\"ts\":$((i * 60000000000)),\"iv\":60,\"o\":1,\"h\":$((10 + i)),\"l\":0.5,\"c\":$((5 + i)),\"v\":3,\"n\":2,\"f\":1}"
	[ $((i % 2)) -eq 0 ] &&
		echo "{\"t\":\"feat\",\"s\":\"HB\",\"ts\":$((i * 60000000000)),\"iv\":60,\"rsi\":$((40 + i)),\"f\":1}"
done | "$bin/mdb-write" --json "$tmp/hist.db" 2>"$tmp/hist.err" || fail "mdb-write: $(cat "$tmp/hist.err")"
start_ws "$tmp/ws5.log" -i ring:feat --name ws5 --lvc wslvc -l 0 --db "$tmp/hist.db" --max-rows 5
python3 - "$port" <<'PY' || fail "/api/bars"
import json, sys, urllib.request, urllib.error
base = f"http://127.0.0.1:{sys.argv[1]}/api/bars/"
def get(q):
    try:
        with urllib.request.urlopen(base + q, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None
st, rows = get("HB?iv=60&limit=3")
assert st == 200 and [r["ts"] // 60000000000 for r in rows] == [7, 8, 9], rows
assert rows[0]["c"] == 12 and "rsi" not in rows[0] and rows[1]["rsi"] == 48, rows
st, rows = get(f"HB?from={2 * 60000000000}&to={5 * 60000000000}")
assert st == 200 and [r["ts"] // 60000000000 for r in rows] == [2, 3, 4], rows
st, rows = get("HB")
assert st == 200 and len(rows) == 5, f"--max-rows 5 caps the default limit: {len(rows)}"
assert get("HB?limit=6")[0] == 400, "limit above --max-rows"
assert get("HB?from=x")[0] == 400, "bad from"
st, rows = get("NOPE")
assert st == 200 and rows == [], rows
print("ok - /api/bars: newest N, from/to ranges with features, limits, errors")
PY
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null
pass "/api/bars serves the database read-only"

# usage and exit codes
"$bin/mdb-ws" -h | grep -q '^usage: mdb-ws' || fail "-h"
"$bin/mdb-ws" -V | grep -q '^mdb-ws ' || fail "-V"
"$bin/mdb-ws" --bogus 2>/dev/null; [ $? -eq 2 ] || fail "bad option must exit 2"
"$bin/mdb-ws" -i zmq+tcp://127.0.0.1:1 2>/dev/null; [ $? -eq 2 ] || fail "non-ring input must exit 2"
"$bin/mdb-ws" -l nowhere 2>/dev/null; [ $? -eq 2 ] || fail "bad --listen must exit 2"
"$bin/mdb-ws" --queue-age never 2>/dev/null; [ $? -eq 2 ] || fail "bad duration must exit 2"
"$bin/mdb-ws" --token-file "$tmp/none" 2>/dev/null; [ $? -eq 2 ] || fail "missing token file must exit 2"
pass "usage and exit codes"

# SIGTERM: clients get 1001 and the gateway exits 0
kill "${pids[1]}"
wait "${pids[1]}"; rc=$?
[ $rc -eq 0 ] || fail "mdb-ws exit $rc on SIGTERM"
pass "SIGTERM ends mdb-ws with status 0"

#!/bin/bash
# mdb-ws fed by mdb-feature: snapshots and deltas with seq/prev_seq,
# subscribe/unsubscribe/resync acks, a slow reader conflated, HTTP errors and
# endpoints, RFC 6455 protocol errors, pings, token and Origin checks, the
# loopback-only default bind, usage and exit codes. The WebSocket client is
# tests/tools/wsclient.py (standard library only).
. "$(dirname "$0")/lib.sh"

# start_ws LOG ARGS...: start mdb-ws on a free loopback port; sets $port
start_ws()
{
	local log=$1
	shift
	start "$bin/mdb-ws" "$@" 2>"$log"
	local deadline=$((SECONDS + 10))
	port=
	while [ -z "$port" ]; do
		[ $SECONDS -lt $deadline ] || fail "mdb-ws did not start: $(cat "$log")"
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log")
		sleep 0.05
	done
}

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

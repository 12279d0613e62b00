#!/bin/bash
# notify.sh BUILD_DIR - tool test: every daemon speaks systemd's notify
# protocol when NOTIFY_SOCKET is set: READY=1 once its inputs and outputs are
# open, WATCHDOG=1 at least every WATCHDOG_USEC/2 while idle, STOPPING=1 on
# SIGTERM, then exit 0. A Python receiver plays systemd's part.
# shellcheck source=tests/tools/lib.sh
. "$(dirname "$0")/lib.sh"

# recv SOCK LOG: collect datagrams sent to SOCK into LOG, one per line
recv()
{
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", "|") + "\n")
' "$1" "$2" &
	pids+=($!)
	local i
	for i in $(seq 100); do [ -S "$1" ] && return; sleep 0.05; done
	fail "receiver on $1 did not start"
}

# count LOG WORD: lines of LOG that contain WORD
count()
{
	local n
	n=$(grep -c "$2" "$1" 2>/dev/null)
	echo "${n:-0}"
}

# check NAME CMD...: run CMD under a notify socket with a 200 ms watchdog
check()
{
	local name=$1 sock=$tmp/$1.sock log=$tmp/$1.log
	shift
	recv "$sock" "$log"
	NOTIFY_SOCKET=$sock WATCHDOG_USEC=200000 "$@" >/dev/null 2>"$tmp/$name.err" &
	local pid=$!
	pids+=("$pid")
	local deadline=$((SECONDS + 10))
	until [ "$(count "$log" READY=1)" -ge 1 ]; do
		[ $SECONDS -lt $deadline ] || fail "$name: no READY=1 ($(cat "$tmp/$name.err"))"
		sleep 0.05
	done
	# idle for a second: the 200 ms watchdog wants a ping every 100 ms
	sleep 1
	local wd
	wd=$(count "$log" WATCHDOG=1)
	[ "$wd" -ge 4 ] || fail "$name: $wd WATCHDOG=1 in 1 s idle, wanted >= 4"
	kill -TERM "$pid"
	wait "$pid"
	local rc=$?
	[ $rc -eq 0 ] || fail "$name: exit $rc after SIGTERM"
	[ "$(count "$log" STOPPING=1)" -ge 1 ] || fail "$name: no STOPPING=1"
	pass "$name: READY=1, $wd watchdog pings in 1 s idle, STOPPING=1, exit 0"
}

mkdir -p "$tmp/scid"
check mdb-pipe "$bin/mdb-pipe" -i ring:a -o ring:b
check mdb-validate "$bin/mdb-validate" -i ring:ticks -o ring:bars -I 60
check mdb-feature "$bin/mdb-feature" -i ring:bars -o ring:feat --no-lvc
check mdb-write "$bin/mdb-write" -i ring:feat "$tmp/db.sqlite"
check mdb-watch "$bin/mdb-watch" -o ring:watch --state "$tmp/watch.state" "$tmp/scid"

# without NOTIFY_SOCKET nothing is sent and nothing breaks
echo '{"t":"bar","s":"X","ts":0,"iv":60,"o":1,"h":1,"l":1,"c":1,"v":1}' |
	NOTIFY_SOCKET= "$bin/mdb-pipe" --json >"$tmp/plain.out" || fail "mdb-pipe without a socket failed"
grep -q '"s":"X"' "$tmp/plain.out" || fail "mdb-pipe without a socket lost the record"
pass "no NOTIFY_SOCKET: the record passes, nothing sent"

#!/bin/bash
# mdb-ws against hostile clients (ws_hostile.py): thousands of connections
# past --max-conns, slowloris request heads, oversized frames, too many
# fragments, control-message and ping floods, invalid UTF-8, unmasked
# frames, while a well-behaved client stays subscribed. The server stays
# up, its RSS bounded, the good client keeps an unbroken seq chain.
. "$(dirname "$0")/lib.sh"
. "$here/ws_lib.sh"

# thousands of sockets on both sides
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ -n "${MDB_SANITIZE:-}" ]; then
	conns=300 scale=0.3
	# ASan keeps freed memory in quarantine (256 MiB) and adds its shadow
	export RSS_PEAK_KB=$((640 << 10)) RSS_FLAT_KB=$((320 << 10))
else
	conns=1000 scale=1
fi
[ "$(ulimit -n)" -ge $((4 * conns + 200)) ] || fail "need $((4 * conns + 200)) file descriptors, have $(ulimit -n)"

start_feature hostlvc
start_ws "$tmp/ws.log" -i ring:feat --lvc hostlvc -l 0 --max-conns $conns --max-msg 4k \
	--ping 2s --max-rate 20
sleep 0.2 # mdb-feature's consumer slot exists before the first bars

python3 "$here/ws_hostile.py" "$port" "$bin" "$ws_pid" $conns $scale ||
	fail "hostile clients; mdb-ws log: $(tail -5 "$tmp/ws.log")"
stop_ws
pass "mdb-ws survives hostile clients"

# out of file descriptors (a soft and hard limit of 64, --max-conns 1000):
# no busy accept loop, no log flood, and accepting again once some end
(ulimit -n 64 && exec "$bin/mdb-ws" -i ring:feat --name wsfd --lvc hostlvc -l 0 \
	--max-conns 1000 2>"$tmp/fd.log") &
pids+=($!)
fd_pid=$!
for _ in $(seq 100); do
	fd_port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/fd.log")
	[ -n "$fd_port" ] && break
	sleep 0.05
done
[ -n "$fd_port" ] || fail "mdb-ws with 64 descriptors did not start: $(cat "$tmp/fd.log")"
python3 "$here/ws_hostile.py" "$fd_port" "$bin" "$fd_pid" 1000 1 fds "$tmp/fd.log" ||
	fail "out of descriptors; mdb-ws log: $(tail -3 "$tmp/fd.log")"

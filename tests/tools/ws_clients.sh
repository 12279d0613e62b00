#!/bin/bash
# mdb-ws spoken to by two real third-party clients, Python's websockets
# (ws_clients.py) and Node's ws (ws_clients.js), both from Debian packages:
# each, in JSON and in MessagePack, gets a snapshot then deltas whose
# seq/prev_seq chain rebuilds exactly the next snapshot, subscribes and
# unsubscribes with ids on /ws, repairs a lost delta with a resync, and
# closes with the right codes (1000 echoed, 1003 for a binary message,
# 1001 when the server stops).
. "$(dirname "$0")/lib.sh"
. "$here/ws_lib.sh"

py=/usr/bin/python3 # Debian's, with python3-websockets and python3-msgpack
"$py" -c 'import websockets, msgpack' 2>/dev/null ||
	fail "python3-websockets and python3-msgpack are needed (scripts/lib.sh MDB_PACKAGES)"
# Debian's node-ws lives in /usr/share/nodejs, which Debian's nodejs searches
# and other builds of node do not
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
node -e 'require("ws")' 2>/dev/null || fail "node and node-ws are needed (scripts/lib.sh MDB_PACKAGES)"

start_feature wslvc
start_ws "$tmp/ws.log" -i ring:feat --lvc wslvc -l 0
sleep 0.2 # mdb-feature's consumer slot exists before the first bars

t0=$SECONDS
"$py" "$here/ws_clients.py" "$port" "$bin" || fail "python websockets client"
t1=$SECONDS
node "$here/ws_clients.js" "$port" "$bin" || fail "node ws client"
t2=$SECONDS
echo "# python websockets $((t1 - t0)) s, node ws $((t2 - t1)) s"

# both clients connected when the server stops: 1001
"$py" "$here/ws_clients.py" "$port" "$bin" stop >"$tmp/py.stop" 2>&1 &
pyp=$!
node "$here/ws_clients.js" "$port" "$bin" stop >"$tmp/node.stop" 2>&1 &
nodep=$!
deadline=$((SECONDS + 20))
until grep -q connected "$tmp/py.stop" && grep -q connected "$tmp/node.stop"; do
	[ $SECONDS -lt $deadline ] || fail "stop clients: $(cat "$tmp/py.stop" "$tmp/node.stop")"
	sleep 0.05
done
stop_ws
wait $pyp || fail "python client at stop: $(cat "$tmp/py.stop")"
wait $nodep || fail "node client at stop: $(cat "$tmp/node.stop")"
grep '^ok' "$tmp/py.stop" "$tmp/node.stop" | sed 's/^[^:]*://'
pass "mdb-ws exits 0 on SIGTERM with both clients told 1001"

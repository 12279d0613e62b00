#!/bin/bash
# mdb-ws wakes for its input ring whatever the timing: records alone after
# pauses, at the end of bursts, at random small gaps; each reaches a
# subscriber, in order (tests/tools/ws_wakeups.py). The watcher thread
# sleeps on the ring past what it signalled and parks while the loop reads:
# a lost wake-up would leave a record undelivered.
. "$(dirname "$0")/lib.sh"
. "$here/ws_lib.sh"

"$bin/mdb-ring" create -s 16M feat || fail "create feat"
start_ws "$tmp/ws.log" -i ring:feat --no-lvc -l 0
PYTHONPATH=$here python3 "$here/ws_wakeups.py" "$port" "$bin" ||
	fail "wake-ups: $(tail -3 "$tmp/ws.log")"
stop_ws
pass "mdb-ws delivered every record, whatever the timing"

#!/bin/bash
# mdb-ws wakes for its input ring whatever the timing: records alone after
# pauses, at the end of bursts, at random small gaps; each reaches a
# subscriber, in order (tests/tools/ws_wakeups.py). Both ways of waking are
# checked: io_uring asleep on the ring's futex (Linux 6.7 and later), and the
# watcher thread (older kernels; MDB_WS_WATCHERS forces it), which sleeps on
# the ring past what it signalled and parks while the loop reads. A lost
# wake-up would leave a record undelivered.
. "$(dirname "$0")/lib.sh"
. "$here/ws_lib.sh"

"$bin/mdb-ring" create -s 16M feat || fail "create feat"
for way in futex watchers; do
	if [ $way = watchers ]; then export MDB_WS_WATCHERS=1; fi
	start_ws "$tmp/ws.$way.log" -i ring:feat --no-lvc -l 0
	threads=$(ls "/proc/$ws_pid/task" | wc -l)
	[ $way = futex ] || [ "$threads" -ge 2 ] || fail "MDB_WS_WATCHERS: no watcher thread"
	# Linux 6.7 has io_uring's futex wait: then the loop is the only thread
	IFS=. read -r kmaj kmin _ < <(uname -r)
	if [ $way = futex ] && { [ "$kmaj" -gt 6 ] || { [ "$kmaj" -eq 6 ] && [ "${kmin%%[!0-9]*}" -ge 7 ]; }; }; then
		[ "$threads" -eq 1 ] || fail "Linux $(uname -r): mdb-ws runs $threads threads, not 1 (no futex wait?)"
	fi
	echo "# $way: mdb-ws runs $threads thread(s)"
	PYTHONPATH=$here python3 "$here/ws_wakeups.py" "$port" "$bin" ||
		fail "wake-ups ($way): $(tail -3 "$tmp/ws.$way.log")"
	stop_ws
done
unset MDB_WS_WATCHERS
pass "mdb-ws delivered every record, whatever the timing, both ways of waking"

#!/bin/bash
# demo.sh BUILD_DIR - tool test: scripts/demo runs the whole pipeline on
# simulated data with BUILD_DIR's tools, records reach SQLite, the dashboard
# is served when mdb-ws is built, and when the demo ends (after --duration,
# or on SIGINT as from Ctrl-C) no process it started and no ring or scratch
# file of it remains.
# shellcheck source=tests/tools/lib.sh
. "$(dirname "$0")/lib.sh"

demo=$here/../../scripts/demo
port=$((20000 + RANDOM % 20000))

# run NAME ARGS...: run the demo in the background, its output in $tmp/NAME.out
run()
{
	local name=$1
	shift
	# A background job of a script starts with SIGINT ignored, which bash
	# cannot trap: give the demo the default, as a terminal would.
	env --default-signal=INT "$demo" --bin "$bin" --port "$port" "$@" >"$tmp/$name.out" 2>&1 &
	pids+=($!)
	demo_pid=$!
	local deadline=$((SECONDS + 20))
	until grep -q '^== running' "$tmp/$name.out"; do
		kill -0 $demo_pid 2>/dev/null || fail "$name: demo ended early: $(cat "$tmp/$name.out")"
		[ $SECONDS -lt $deadline ] || fail "$name: demo not running after 20 s: $(cat "$tmp/$name.out")"
		sleep 0.1
	done
}

# finished NAME: the demo has ended 0; its rows, processes and files are checked
finished()
{
	local name=$1 out=$tmp/$1.out
	wait $demo_pid || fail "$name: demo exited $?: $(cat "$out")"
	local rows shm work stage
	rows=$(sed -n 's/^== stopped: \([0-9]*\) bars and \([0-9]*\) feature rows.*/\1 \2/p' "$out")
	[ -n "$rows" ] || fail "$name: no row count: $(cat "$out")"
	read -r bars feats <<<"$rows"
	[ "$bars" -gt 0 ] && [ "$feats" -gt 0 ] || fail "$name: $bars bars, $feats feature rows in SQLite"
	shm=$(sed -n 's/^== rings live in \([^,]*\), files in \(.*\)/\1/p' "$out")
	work=$(sed -n 's/^== rings live in \([^,]*\), files in \(.*\)/\2/p' "$out")
	[ -n "$shm" ] && [ ! -e "$shm" ] || fail "$name: ring directory '$shm' left behind"
	[ -n "$work" ] && [ ! -e "$work" ] || fail "$name: scratch directory '$work' left behind"
	for stage in $(sed -n 's/^== pids: //p' "$out"); do
		kill -0 "$stage" 2>/dev/null && fail "$name: process $stage still running"
	done
	grep -q '^== pids: [0-9]' "$out" || fail "$name: no pids printed"
	grep -Eq ' bar (ES|NQ) ' "$out" || fail "$name: mdb-tap printed no bar: $(cat "$out")"
	pass "$name: $bars bars and $feats feature rows in SQLite; no process, ring or file left"
}

run duration --duration 3
if [ -x "$bin/mdb-ws" ]; then
	grep -q "^== dashboard: http://127.0.0.1:$port/" "$tmp/duration.out" ||
		fail "mdb-ws built but no dashboard URL: $(cat "$tmp/duration.out")"
	code=$(curl -s -o "$tmp/index.html" -w '%{http_code}' "http://127.0.0.1:$port/")
	[ "$code" = 200 ] && grep -qi '<html' "$tmp/index.html" || fail "dashboard: HTTP $code"
	pass "dashboard served at http://127.0.0.1:$port/"
fi
finished duration

run sigint
kill -INT $demo_pid
finished sigint

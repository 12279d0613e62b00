# demo_lib.sh - shared by the tests of scripts/demo (demo.sh, demo_clone.sh):
# run the demo in the background, wait for it, and check that it ended
# cleanly. Source it after lib.sh (tmp, pids, fail, pass).
# shellcheck shell=bash disable=SC2154

# demo_run NAME DEMO ARGS...: run DEMO ARGS in the background, its output in
# $tmp/NAME.out; $demo_pid is its pid
demo_run()
{
	local name=$1
	shift
	# A background job of a script starts with SIGINT ignored, which bash
	# cannot trap: give the demo the default, as a terminal would.
	env --default-signal=INT "$@" >"$tmp/$name.out" 2>&1 &
	pids+=($!)
	demo_pid=$!
}

# demo_running NAME SECONDS: until the demo says it is running, or fail
demo_running()
{
	local deadline=$((SECONDS + $2))
	until grep -q '^== running' "$tmp/$1.out"; do
		kill -0 "$demo_pid" 2>/dev/null || fail "$1: demo ended early: $(cat "$tmp/$1.out")"
		[ $SECONDS -lt $deadline ] || fail "$1: demo not running after $2 s: $(cat "$tmp/$1.out")"
		sleep 0.1
	done
}

# demo_finished NAME: the demo has ended 0; its rows, processes and files
# are checked
demo_finished()
{
	local name=$1 out=$tmp/$1.out
	wait "$demo_pid" || fail "$name: demo exited $?: $(cat "$out")"
	local rows shm work stage
	rows=$(sed -n 's/^== stopped: \([0-9]*\) bars and \([0-9]*\) feature rows.*/\1 \2/p' "$out")
	[ -n "$rows" ] || fail "$name: no row count: $(cat "$out")"
	read -r bars feats <<<"$rows"
	[ "$bars" -gt 0 ] && [ "$feats" -gt 0 ] || fail "$name: $bars bars, $feats feature rows in SQLite"
	shm=$(sed -n 's/^== rings live in \([^,]*\), files in \(.*\)/\1/p' "$out")
	work=$(sed -n 's/^== rings live in \([^,]*\), files in \(.*\)/\2/p' "$out")
	[ -n "$shm" ] && [ ! -e "$shm" ] || fail "$name: ring directory '$shm' left behind"
	[ -n "$work" ] && [ ! -e "$work" ] || fail "$name: scratch directory '$work' left behind"
	grep -q '^== pids: [0-9]' "$out" || fail "$name: no pids printed"
	for stage in $(sed -n 's/^== pids: //p' "$out"); do
		kill -0 "$stage" 2>/dev/null && fail "$name: process $stage still running"
	done
	grep -Eq ' bar (ES|NQ) ' "$out" || fail "$name: mdb-tap printed no bar: $(cat "$out")"
	pass "$name: $bars bars and $feats feature rows in SQLite; no process, ring or file left"
}

# http_get PORT PATH FILE: GET http://127.0.0.1:PORT/PATH (bash's /dev/tcp:
# no client needed), the body into FILE; prints the status code (000: no
# answer)
http_get()
{
	local line code=000
	: >"$3"
	if { exec 9<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; then
		printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&9
		if IFS= read -r -t 5 line <&9; then
			code=$(echo "$line" | cut -d' ' -f2)
			while IFS= read -r -t 5 line <&9 && [ "$line" != $'\r' ]; do :; done
			timeout 5 cat <&9 >"$3"
		fi
		exec 9<&-
	fi
	echo "$code"
}

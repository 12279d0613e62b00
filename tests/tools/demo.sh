#!/bin/bash
# demo.sh BUILD_DIR - tool test: scripts/demo runs the whole pipeline on
# simulated data with BUILD_DIR's tools, records reach SQLite, the dashboard
# is served when mdb-ws is built, and when the demo ends (after --duration,
# or on SIGINT as from Ctrl-C) no process it started and no ring or scratch
# file of it remains.
# shellcheck source=tests/tools/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/tools/demo_lib.sh
. "$here/demo_lib.sh"

demo=$here/../../scripts/demo
port=$((20000 + RANDOM % 20000))

demo_run duration "$demo" --bin "$bin" --port "$port" --duration 3
demo_running duration 20
if [ -x "$bin/mdb-ws" ]; then
	grep -q "^== dashboard: http://127.0.0.1:$port/" "$tmp/duration.out" ||
		fail "mdb-ws built but no dashboard URL: $(cat "$tmp/duration.out")"
	code=$(http_get "$port" / "$tmp/index.html")
	[ "$code" = 200 ] && grep -qi '<html' "$tmp/index.html" || fail "dashboard: HTTP $code"
	pass "dashboard served at http://127.0.0.1:$port/"
fi
demo_finished duration

demo_run sigint "$demo" --bin "$bin" --port "$port"
demo_running sigint 20
kill -INT $demo_pid
demo_finished sigint

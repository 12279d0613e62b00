#!/bin/bash
# mdb-ws's dashboard (GET /) in headless Chromium, driven over the DevTools
# protocol by ws_dashboard.py: the page draws the history of mdb-write's
# database (/api/bars), shows live values that change as new bars arrive,
# draws their candles, raises no script error; the screenshot is kept in the
# test's directory and copied to /tmp/mdb-dashboard.png.
. "$(dirname "$0")/lib.sh"
. "$here/ws_lib.sh"

py=/usr/bin/python3 # Debian's, with python3-websockets
"$py" -c 'import websockets' 2>/dev/null || fail "python3-websockets is needed (scripts/lib.sh MDB_PACKAGES)"
command -v chromium >/dev/null || fail "chromium is needed (scripts/lib.sh MDB_PACKAGES)"

start_feature dashlvc
start "$bin/mdb-write" -i ring:feat "$tmp/hist.db" 2>"$tmp/write.err"
start_ws "$tmp/ws.log" -i ring:feat --lvc dashlvc -l 0 --db "$tmp/hist.db"
sleep 0.2 # mdb-feature's consumer slot exists before the first bars

"$py" "$here/ws_dashboard.py" "$port" "$bin" "$tmp" || fail "dashboard: $(tail -5 "$tmp/ws.log")"
cp "$tmp/dashboard.png" /tmp/mdb-dashboard.png 2>/dev/null &&
	echo "# a copy of the screenshot: /tmp/mdb-dashboard.png ($(stat -c %s /tmp/mdb-dashboard.png) B)"
stop_ws
pass "dashboard shows live values"

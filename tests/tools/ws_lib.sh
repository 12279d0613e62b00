# ws_lib.sh - shared by the mdb-ws client tests (ws_clients, ws_dashboard,
# ws_hostile): a feature stage with a last-value cache in front of a
# gateway. Source it after lib.sh.

# start_ws LOG ARGS...: start mdb-ws on a free loopback port; sets $port and
# $ws_pid
start_ws()
{
	local log=$1
	shift
	start "$bin/mdb-ws" "$@" 2>"$log"
	ws_pid=$!
	local deadline=$((SECONDS + 10))
	port=
	while [ -z "$port" ]; do
		[ $SECONDS -lt $deadline ] || fail "mdb-ws did not start: $(cat "$log")"
		port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log")
		sleep 0.05
	done
}

# start_feature LVC: rings bars and feat, mdb-feature between them keeping
# the last-value cache LVC
start_feature()
{
	"$bin/mdb-ring" create -s 16M bars || fail "create bars"
	"$bin/mdb-ring" create -s 16M feat || fail "create feat"
	start "$bin/mdb-feature" -i ring:bars -o ring:feat --lvc "$1" 2>"$tmp/feature.err"
	local i
	for i in $(seq 100); do
		[ -e "$MDB_SHM_DIR/$1.lvc" ] && return 0
		sleep 0.05
	done
	fail "mdb-feature made no last-value cache: $(cat "$tmp/feature.err")"
}

# stop_ws: SIGTERM the gateway; it must exit 0
stop_ws()
{
	kill "$ws_pid"
	wait "$ws_pid"
	local rc=$?
	[ $rc -eq 0 ] || fail "mdb-ws exit $rc on SIGTERM"
}

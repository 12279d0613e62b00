#!/bin/bash
# The chaos test: the whole pipeline, mdb-watch on .scid files written by
# mdb-sim -> mdb-validate -I 1s,1m -> mdb-feature -> mdb-write (SQLite) and
# mdb-ws with a WebSocket client, replays over a million 1-second bars
# twice: once undisturbed (the reference), once while a driver SIGKILLs a
# random stage at random moments (at least KILLS times) and restarts it.
# The two databases must be equal row for row, bars and features, every
# column exactly (EXCEPT both ways): a restarted stage loses nothing,
# duplicates nothing and computes the same values. Exactly, not within a
# tolerance: a restarted mdb-feature (and mdb-validate) rebuilds its state
# by replaying what its input ring retains before its slot, the same records
# in the same order through the same code, so its floating-point state is
# bit for bit the one it lost. That holds when the ring retains the history
# the state depends on: the bars ring here holds the whole run (indicators
# such as EMA depend on every bar before), the ticks ring (64 MiB, the
# tools' default) holds far more than the bars still forming. The WebSocket
# client never sees a delta whose prev_seq is not the seq it holds unless a
# resync notice and snapshots came first.
#
# Input: mdb-sim --bars for 4 symbols, each file copied under 25 names by
# tests/tools/chaos_feed.py, which appends them over FEED seconds in the run
# with kills, so every stage is busy when it is killed (mdb-sim makes ~1,000
# simulated trades per bar at 50 ns each: a million distinct bars would take
# a minute to simulate alone).
# Environment: BARS (default 1,000,000; 100,000 under MDB_SANITIZE), KILLS
# (default 30; 20 under MDB_SANITIZE), FEED (default 40; 20).
. "$(dirname "$0")/lib.sh"

t_start=$SECONDS
if [ -n "${MDB_SANITIZE:-}" ]; then
	want_bars=${BARS:-100000} min_kills=${KILLS:-20} feed_s=${FEED:-20}
else
	want_bars=${BARS:-1000000} min_kills=${KILLS:-30} feed_s=${FEED:-40}
fi
copies=25 # names per simulated file: 4 x 25 = 100 symbols
per_sym=$(((want_bars + 4 * copies - 1) / (4 * copies)))

# on failure, show what the stages logged
fail()
{
	for f in "$tmp"/*/*.log; do
		[ -s "$f" ] && { echo "== $f"; grep -v 'resuming\|warmed up\|listening' "$f" | sort | uniq -c | sort -rn | head -8; }
	done >&2
	echo "$(basename "$0"): FAIL: $*" >&2
	exit 1
}

# the input: 4 simulated symbols, each copied under more names by the feeder
mkdir -p "$tmp/sim"
"$bin/mdb-sim" -d "$tmp/sim" -s A -s B -s C -s D --bars -r 0 -n $((per_sym * 1000)) --seed 9 ||
	fail "mdb-sim"
nbars=0
for f in "$tmp"/sim/*.scid; do
	nbars=$((nbars + ($(stat -c %s "$f") - 56) / 40 * copies))
done
t_sim=$((SECONDS - t_start))

# the stages, killed and restarted by name (w: the run's directory)
stages=(watch validate feature write ws)
declare -A spid

# run_stage NAME: start stage NAME in the background, its log in $w/NAME.log
run_stage()
{
	local name=$1
	case $name in
	watch) set -- "$bin/mdb-watch" --state "$w/watch.state" -o ring:ticks "$w/scid" ;;
	validate) set -- "$bin/mdb-validate" -i ring:ticks -o ring:bars -I 1s,1m --from start ;;
	feature) set -- "$bin/mdb-feature" -i ring:bars -o ring:feat --lvc chaos --from start ;;
	write) set -- "$bin/mdb-write" -i ring:feat --retention 0 --batch-rows 20000 "$w/h.db" ;;
	ws) set -- "$bin/mdb-ws" -i ring:feat --lvc chaos -l "127.0.0.1:$port" --slow-resyncs 1000 ;;
	esac
	"$@" 2>>"$w/$name.log" </dev/null >/dev/null &
	spid[$name]=$!
	pids+=("$!")
}

# rings: json stat of RING, as one line
ring_json() { "$bin/mdb-ring" stat --json "$1" 2>/dev/null; }

# drained: every durable consumer of the three rings has read all there is,
# and the database holds a 1 s row for every input bar
drained()
{
	local r
	for r in ticks bars feat; do
		ring_json $r | grep -q '"kind":"durable"' || return 1
		ring_json $r | grep -q '"kind":"durable","pid":[0-9]*,"alive":true,"position":[0-9]*,"backlog":[1-9]' && return 1
		ring_json $r | grep -q '"kind":"durable","pid":[0-9]*,"alive":false' && return 1
	done
	[ "$(sqlite3 "$w/h.db" 'SELECT count(*) FROM bars WHERE iv = 1' 2>/dev/null)" = "$nbars" ]
}

# run NAME FEED: the whole pipeline over the input; with FEED > 0 the input
# arrives over FEED seconds while a stage is killed -9 every FEED/(KILLS+5)
# seconds on average (at least KILLS times), else at once and no kills
run()
{
	local name=$1 feed=$2 s deadline
	w=$tmp/$name
	mkdir -p "$w/scid"
	export MDB_SHM_DIR=$shm_root/$name
	mkdir -p "$MDB_SHM_DIR"
	"$bin/mdb-ring" create -s 64M ticks && "$bin/mdb-ring" create -s "$bars_ring" bars &&
		"$bin/mdb-ring" create -s 8M feat || fail "create rings"
	# a free port below the ephemeral range: the client's reconnects to a
	# port there, while mdb-ws is down, can connect the socket to itself
	# and take the port from the restarted gateway
	port=$(python3 -c '
import random, socket
for _ in range(100):
    p = random.randrange(20000, 32000)
    try:
        socket.create_server(("127.0.0.1", p)).close()
        print(p)
        break
    except OSError:
        pass')
	# readers first, so each is registered before its producer publishes
	run_stage write
	run_stage ws
	deadline=$((SECONDS + 20))
	until grep -q "listening on 127.0.0.1:$port" "$w/ws.log" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || fail "mdb-ws did not start: $(cat "$w/ws.log")"
		sleep 0.05
	done
	run_stage feature
	run_stage validate
	deadline=$((SECONDS + 20))
	until ring_json feat | grep -q '"name":"mdb-write","kind":"durable"' &&
		ring_json bars | grep -q '"name":"mdb-feature","kind":"durable"' &&
		ring_json ticks | grep -q '"name":"mdb-validate","kind":"durable"'; do
		[ $SECONDS -lt $deadline ] || fail "the stages did not register"
		sleep 0.05
	done
	python3 "$here/chaos_ws.py" "$port" A01,B07,C13,D25 1,60 "$w/stop" >"$w/wsclient.out" \
		2>"$w/wsclient.err" &
	wsc=$!
	pids+=("$wsc")
	local t0=$SECONDS
	python3 "$here/chaos_feed.py" "$tmp/sim" "$w/scid" $copies "$feed" &
	local feeder=$!
	pids+=("$feeder")
	run_stage watch
	declare -gA kills=([watch]=0 [validate]=0 [feature]=0 [write]=0 [ws]=0)
	nkills=0
	if [ "$feed" != 0 ]; then
		# while the input arrives, and until enough kills landed
		local gap_ms=$((feed * 1000 / (min_kills + 5)))
		while kill -0 $feeder 2>/dev/null || [ $nkills -lt "$min_kills" ]; do
			[ $((SECONDS - t0)) -lt 600 ] || fail "no end after $nkills kills"
			s=$((gap_ms / 2 + RANDOM * gap_ms / 32768))
			sleep "$((s / 1000)).$(printf %03d $((s % 1000)))"
			s=${stages[RANDOM % ${#stages[@]}]}
			for x in "${stages[@]}"; do
				# a stage that ended by itself: a crash is a failure
				kill -0 "${spid[$x]}" 2>/dev/null && continue
				wait "${spid[$x]}"
				local rc=$?
				[ $rc -lt 128 ] || fail "mdb-$x died of signal $((rc - 128)): $(tail -3 "$w/$x.log")"
				echo "note: mdb-$x exited $rc by itself: $(tail -1 "$w/$x.log")" >&2
				run_stage "$x"
			done
			kill -9 "${spid[$s]}"
			wait "${spid[$s]}" 2>/dev/null
			kills[$s]=$((kills[$s] + 1))
			nkills=$((nkills + 1))
			run_stage "$s"
		done
	fi
	wait $feeder || fail "the feeder failed"
	deadline=$((SECONDS + 300))
	until drained; do
		[ $SECONDS -lt $deadline ] || fail "$name: not drained: $(sqlite3 "$w/h.db" \
			'SELECT count(*) FROM bars WHERE iv = 1') of $nbars 1 s bars"
		for s in "${stages[@]}"; do
			kill -0 "${spid[$s]}" 2>/dev/null || fail "$name: mdb-$s exited: $(tail -3 "$w/$s.log")"
		done
		sleep 0.2
	done
	elapsed=$((SECONDS - t0))
	touch "$w/stop"
	wait $wsc || fail "$name: the WebSocket client saw a gap: $(cat "$w/wsclient.err")"
	# stop in the order data flows; each exits 0
	for s in "${stages[@]}"; do
		kill "${spid[$s]}"
		wait "${spid[$s]}" || fail "$name: mdb-$s exited $? after SIGTERM"
	done
	rm -rf "$MDB_SHM_DIR"
}

shm_root=$MDB_SHM_DIR
# each run points MDB_SHM_DIR at its own subdirectory: lib.sh's cleanup
# must remove the root it made (an empty one was left behind)
trap 'MDB_SHM_DIR=$shm_root; cleanup' EXIT
# the bars ring holds the whole run (3 records of ~115 B per input bar), so a
# restarted mdb-feature warms up from all of its history
bars_ring=8
while [ $((bars_ring << 20)) -lt $((nbars * 3 * 128)) ]; do bars_ring=$((bars_ring * 2)); done
bars_ring=${bars_ring}M
run ref 0
t_ref=$elapsed
run chaos "$feed_s"
t_chaos=$elapsed

ws_ref=$(cat "$tmp/ref/wsclient.out") ws_chaos=$(cat "$tmp/chaos/wsclient.out")
echo "input: $nbars 1 s bars in $((4 * copies)) .scid files (mdb-sim and copies: ${t_sim}s)"
echo "undisturbed run: ${t_ref}s; with kills: ${t_chaos}s"
echo "kills: $nkills (watch ${kills[watch]}, validate ${kills[validate]}, feature ${kills[feature]}, write ${kills[write]}, ws ${kills[ws]})"
echo "WebSocket client, undisturbed: $ws_ref"
echo "WebSocket client, with kills: $ws_chaos"
q()
{
	sqlite3 "$tmp/ref/h.db" "ATTACH '$tmp/chaos/h.db' AS c; $1"
}
diff_rows=0
for t in bars feats; do
	n_ref=$(q "SELECT count(*) FROM main.$t")
	n_chaos=$(q "SELECT count(*) FROM c.$t")
	only_ref=$(q "SELECT count(*) FROM (SELECT * FROM main.$t EXCEPT SELECT * FROM c.$t)")
	only_chaos=$(q "SELECT count(*) FROM (SELECT * FROM c.$t EXCEPT SELECT * FROM main.$t)")
	echo "$t: $n_ref rows undisturbed, $n_chaos after kills; only in the undisturbed run: $only_ref, only after kills: $only_chaos"
	[ "$only_ref$only_chaos" = 00 ] || {
		q "SELECT 'ref', * FROM (SELECT * FROM main.$t EXCEPT SELECT * FROM c.$t) LIMIT 3;
		   SELECT 'chaos', * FROM (SELECT * FROM c.$t EXCEPT SELECT * FROM main.$t) LIMIT 3" >&2
		diff_rows=$((diff_rows + only_ref + only_chaos))
	}
	[ "$n_ref" = "$n_chaos" ] || diff_rows=$((diff_rows + 1))
done
n1=$(q "SELECT count(*) FROM main.bars WHERE iv = 1")
[ "$n1" = "$nbars" ] || fail "$n1 1 s bars in the database, $nbars in the input"
[ "$nkills" -ge "$min_kills" ] || fail "only $nkills kills"
[ $diff_rows = 0 ] || fail "$diff_rows rows differ after $nkills kills"
pass "$nbars bars, $nkills kills: the databases are equal ($(q 'SELECT count(*) FROM bars') bars, $(q 'SELECT count(*) FROM feats') feature rows), differences 0, WebSocket gaps 0"

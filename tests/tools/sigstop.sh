#!/bin/bash
# A consumer process SIGSTOPped while data keeps arriving: mdb-sim appends
# 1-second bars of 60 symbols to .scid files, mdb-watch publishes them into
# a small ring (32 KiB, ~5 s of data), mdb-write (durable) keeps them in
# SQLite and mdb-tap follows the ring as an observer.
# - The observer stopped (STOP_OBS s): the producer goes on (never held by
#   it) and laps it; after SIGCONT mdb-tap says it was lapped and resyncs.
# - The durable consumer stopped (STOP_S s, a minute; 10 s under
#   MDB_SANITIZE): the producer is held back and overwrites nothing it has
#   not read; held back, it still ends at once on SIGTERM (exit 0) and its
#   restart resumes; after SIGCONT everything catches up, and the database
#   equals every bar mdb-sim wrote, value for value.
. "$(dirname "$0")/lib.sh"

if [ -n "${MDB_SANITIZE:-}" ]; then
	stop_s=${STOP_S:-10}
else
	stop_s=${STOP_S:-60}
fi
stop_obs=${STOP_OBS:-8}
cap=32768
d=$tmp/d
mkdir -p "$d"
syms=()
for i in $(seq -w 1 60); do syms+=(-s "S$i"); done

fail()
{
	for f in "$tmp"/*.log; do
		[ -s "$f" ] && { echo "== $f"; tail -5 "$f"; }
	done >&2
	echo "$(basename "$0"): FAIL: $*" >&2
	exit 1
}

# field NAME: a number from the ring's JSON stat: position, oldest, held_ns;
# or NAME.KEY for consumer NAME's KEY (position, laps, backlog; mdb-tap's
# slot is mdb-tap.PID)
field()
{
	"$bin/mdb-ring" stat --json bars | python3 -c '
import json, sys
st, k = json.load(sys.stdin), sys.argv[1]
if "." in k:
    name, key = k.split(".")
    print(next(c[key] for c in st["consumers"] if c["name"].split(".")[0] == name))
else:
    print(st[k])' "$1"
}
rows() { sqlite3 "$tmp/h.db" 'SELECT count(*) FROM bars' 2>/dev/null || echo 0; }

"$bin/mdb-ring" create -s $cap bars || fail "create"
start "$bin/mdb-write" -i ring:bars --retention 0 --batch-time 50ms "$tmp/h.db" 2>>"$tmp/write.log"
wp=$!
start "$bin/mdb-tap" -f --text ring:bars >"$tmp/tap.out" 2>"$tmp/tap.log"
tp=$!
for _ in $(seq 200); do
	"$bin/mdb-ring" stat bars | grep -q 'mdb-write .* alive' &&
		"$bin/mdb-ring" stat bars | grep -q 'mdb-tap\.[0-9]* .* alive' && break
	sleep 0.05
done
"$bin/mdb-ring" stat bars | grep -q 'mdb-tap\.[0-9]* *observer' || fail "mdb-tap is not an observer"
start "$bin/mdb-sim" -d "$d" "${syms[@]}" --bars -r 50 --flush-period 100ms --log "$tmp/sim.jsonl"
simp=$!
watch()
{
	start "$bin/mdb-watch" --state "$tmp/state" -o ring:bars "$d" 2>>"$tmp/watch.log"
	watchp=$!
}
watch
deadline=$((SECONDS + 20))
until [ "$(rows)" -gt 100 ]; do
	[ $SECONDS -lt $deadline ] || fail "no bars reach the database"
	sleep 0.1
done

# 1. the observer stopped: it holds nothing back and is lapped
kill -STOP $tp
pos0=$(field position) held0=$(field held_ns) rows0=$(rows)
sleep "$stop_obs"
pos1=$(field position) held1=$(field held_ns) rows1=$(rows)
tap_pos=$(field mdb-tap.position)
kill -CONT $tp
[ $((pos1 - pos0)) -gt $cap ] ||
	fail "the producer wrote only $((pos1 - pos0)) B while the observer was stopped (ring: $cap B)"
[ "$rows1" -gt "$rows0" ] || fail "mdb-write stopped while the observer was stopped"
[ $((pos1 - tap_pos)) -gt $cap ] || fail "the stopped observer was not lapped"
deadline=$((SECONDS + 10))
until grep -q 'lapped by the producer' "$tmp/tap.log"; do
	[ $SECONDS -lt $deadline ] || fail "mdb-tap did not report the lap: $(cat "$tmp/tap.log")"
	sleep 0.1
done
tap_laps=$(field mdb-tap.laps)
[ "$tap_laps" -ge 1 ] || fail "the ring counts no lap of mdb-tap"
sleep 0.5
kill -0 $tp || fail "mdb-tap died after the lap"
n_tap=$(wc -l <"$tmp/tap.out")
sleep 1.5
[ "$(wc -l <"$tmp/tap.out")" -gt "$n_tap" ] || fail "mdb-tap prints nothing after its resync"
pass "observer stopped ${stop_obs}s: the producer went on ($((pos1 - pos0)) B through a $cap B ring, held $(((held1 - held0) / 1000000)) ms), mdb-tap lapped $tap_laps time(s), said so and resynced"

# 2. the durable consumer stopped: the producer is held, drops nothing
kill -STOP $wp
t0=$SECONDS
wpos=$(field mdb-write.position)
sleep $((stop_s / 3))
pos=$(field position) oldest=$(field oldest) held_a=$(field held_ns)
[ $((pos - wpos)) -le $cap ] || fail "the producer went $((pos - wpos)) B past the stopped writer (ring $cap B)"
[ "$oldest" -le "$wpos" ] || fail "records the stopped writer has not read were overwritten"
[ $((pos - wpos)) -gt $((cap / 2)) ] || fail "the producer wrote only $((pos - wpos)) B in $((stop_s / 3)) s"
sleep 1
held_b=$(field held_ns)
[ "$held_b" -gt "$held_a" ] || fail "the producer is not held back (held_ns $held_a -> $held_b)"
# held back, the producer still ends on SIGTERM, at once and with status 0
t1=$(date +%s%N)
kill $watchp
wait $watchp
rc=$? ms=$((($(date +%s%N) - t1) / 1000000))
[ $rc = 0 ] || fail "mdb-watch exited $rc on SIGTERM while held back"
[ $ms -lt 2000 ] || fail "mdb-watch took $ms ms to stop while held back"
watch
rest=$((stop_s - (SECONDS - t0)))
[ $rest -le 0 ] || sleep $rest
pos=$(field position) oldest=$(field oldest) held_c=$(field held_ns)
[ $((pos - wpos)) -le $cap ] || fail "the producer went $((pos - wpos)) B past the stopped writer"
[ "$oldest" -le "$wpos" ] || fail "records the stopped writer has not read were overwritten"
[ "$(field mdb-write.position)" = "$wpos" ] || fail "a stopped consumer's slot moved"
rows2=$(rows)
kill -CONT $wp
pass "durable consumer stopped ${stop_s}s: the producer held $(((held_c - held0) / 1000000)) ms, nothing overwritten; SIGTERM held back: exit 0 in $ms ms"

# data still arrives after SIGCONT; then mdb-sim stops and all catches up
sleep 2
kill $simp
wait $simp || fail "mdb-sim failed"
n=$(wc -l <"$tmp/sim.jsonl")
deadline=$((SECONDS + 60))
until [ "$(rows)" = "$n" ] && [ "$(field mdb-write.backlog)" = 0 ]; do
	[ $SECONDS -lt $deadline ] || fail "$(rows) rows, $n bars written by mdb-sim"
	sleep 0.2
done
kill $wp
wait $wp || fail "mdb-write exited $? on SIGTERM"
python3 - "$tmp/sim.jsonl" "$tmp/h.db" <<'PY' || fail "the database differs from what mdb-sim wrote"
import json, sqlite3, sys
want = {}
for line in open(sys.argv[1]):
    b = json.loads(line)
    want[(b["s"], b["iv"], b["ts"])] = (b["o"], b["h"], b["l"], b["c"], b["v"], b["n"], b["bv"], b["av"])
got = {(r[0], r[1], r[2]): tuple(r[3:]) for r in sqlite3.connect(sys.argv[2]).execute(
    "SELECT symbol, iv, ts, o, h, l, c, v, n, bv, av FROM bars")}
missing = [k for k in want if k not in got]
extra = [k for k in got if k not in want]
wrong = [k for k in want if k in got and got[k] != want[k]]
print(f"{len(want)} bars written, {len(got)} rows: {len(missing)} missing, {len(extra)} extra, "
      f"{len(wrong)} different", file=sys.stderr if missing or extra or wrong else sys.stdout)
sys.exit(1 if missing or extra or wrong else 0)
PY
pass "after SIGCONT the writer caught up: $n bars, $((n - rows2)) of them committed after SIGCONT, none lost or changed"

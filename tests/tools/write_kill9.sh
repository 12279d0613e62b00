#!/bin/bash
# kill -9 of mdb-write at random moments while over a million bars (with
# forming versions and later revisions) stream through a ring: after the
# restarts, the database holds exactly the input's final rows (none missing,
# none extra, every revision at its last value) and its saved cursor is the
# ring's end.
. "$(dirname "$0")/lib.sh"

n=${N:-1000000}
# under a sanitizer a writer takes ~0.3 s to start on this machine: fewer
# bars, and kills that give it the time to commit something
[ -n "${MDB_SANITIZE:-}" ] && n=${N:-300000}
nap()
{
	if [ -n "${MDB_SANITIZE:-}" ]; then
		sleep "0.$((3 + RANDOM % 7))$((RANDOM % 10))"
	else
		sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
	fi
}
gen=$build/tests/write_gen
db=$tmp/h.db
# (the bars are from 2023: --retention 0 keeps them)
# on failure, show what the writers logged
fail()
{
	sort "$tmp/log" | uniq -c | sort -rn | head -20 >&2
	echo "$(basename "$0"): FAIL: $*" >&2
	exit 1
}
"$bin/mdb-ring" create -s 8M feed || fail "create"
"$gen" "$n" >"$tmp/in.mp" || fail "generate"
# the writer's slot exists (at position 0) before the feed starts
"$bin/mdb-write" -i ring:feed --batch-rows 20000 --retention 0 "$db" 2>>"$tmp/log" &
p=$!
for _ in $(seq 100); do
	"$bin/mdb-ring" stat feed | grep -q 'mdb-write .* alive' && break
	sleep 0.05
done
kill -9 "$p"; wait "$p" 2>/dev/null
"$bin/mdb-pipe" -o ring:feed <"$tmp/in.mp" &
feeder=$!
pids+=($feeder)
kills=0
while :; do
	"$bin/mdb-write" -i ring:feed --batch-rows 20000 --retention 0 "$db" 2>>"$tmp/log" &
	p=$!
	nap
	kill -9 "$p"; wait "$p" 2>/dev/null
	kills=$((kills + 1))
	kill -0 "$feeder" 2>/dev/null || break
	[ $kills -lt 400 ] || fail "the feeder never finished"
done
wait "$feeder" || fail "feeder failed"
# a last run drains the rest and stops cleanly
"$bin/mdb-write" -i ring:feed --batch-rows 20000 --retention 0 "$db" 2>>"$tmp/log" &
p=$!
pids+=($p)
for _ in $(seq 400); do
	"$bin/mdb-ring" stat feed | grep -q 'mdb-write .* alive .* 0 B' && break
	sleep 0.05
done
kill "$p"; wait "$p" || fail "mdb-write exited $? after SIGTERM"
grep -q 'resuming at saved cursor' "$tmp/log" ||
	echo "note: no kill landed between a commit and its release" >&2

rows=$(sqlite3 "$db" "SELECT count(*) FROM bars")
[ "$rows" = "$n" ] || fail "$rows bars in the database, wanted $n ($kills kills)"
sqlite3 -separator , "$db" "SELECT symbol, iv, ts, CAST(o*4 AS INTEGER), CAST(h*4 AS INTEGER),
	CAST(l*4 AS INTEGER), CAST(c*4 AS INTEGER), CAST(v AS INTEGER), n, f
	FROM bars ORDER BY symbol, iv, ts" >"$tmp/got.csv" || fail "sqlite3"
"$gen" --expect "$n" >"$tmp/want.csv"
cmp -s "$tmp/got.csv" "$tmp/want.csv" ||
	fail "the bars differ from the input's final values: $(diff "$tmp/want.csv" "$tmp/got.csv" | head -5)"
feats=$(sqlite3 "$db" "SELECT count(*) FROM feats WHERE rsi = CAST(ema12 AS INTEGER) % 100")
[ "$feats" = $(((n + 9) / 10)) ] || fail "$feats feats, wanted $(((n + 9) / 10))"
end=$("$bin/mdb-ring" stat feed | sed -n 's/.*position \([0-9]*\) .*/\1/p' | head -1)
cursor=$(sqlite3 "$db" "SELECT position FROM cursors WHERE ring = 'feed' AND consumer = 'mdb-write'")
[ "$cursor" = "$end" ] || fail "saved cursor $cursor, ring end $end"
[ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
pass "$n bars ($(grep -c . "$tmp/want.csv") rows), mdb-write killed -9 $kills times: exactly the input's final values"

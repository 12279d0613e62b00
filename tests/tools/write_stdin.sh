#!/bin/bash
# Exactly once from standard input (mdb-write(1), "Exactly once"): mdb-write
# killed -9 at random moments while reading a stream of bars (with forming
# versions, revisions, feats and ticks) from a pipe, then fed the same
# stream again from its start, ends with exactly the database an
# uninterrupted run gives: every key at its last value, none missing, none
# doubled. A torn last record is a counted reject, not a crash.
. "$(dirname "$0")/lib.sh"

n=${N:-200000}
gen=$build/tests/write_gen
db=$tmp/h.db
"$gen" "$n" >"$tmp/in.mp" || fail "generate"
size=$(stat -c %s "$tmp/in.mp")

# rows of the database as exact text (prices times 4 are integers)
rows()
{
	sqlite3 -separator , "$db" "SELECT symbol, iv, ts, CAST(o*4 AS INTEGER),
		CAST(h*4 AS INTEGER), CAST(l*4 AS INTEGER), CAST(c*4 AS INTEGER),
		CAST(v AS INTEGER), n, f FROM bars ORDER BY symbol, iv, ts"
}

# killed -9 mid-stream, several times: each run reads a longer prefix of the
# stream (cut anywhere, mid-record included) from a pipe that stays open,
# and is killed at a random moment while it works
kills=0
committed=0
mkfifo "$tmp/pipe" || fail "mkfifo"
for part in 1 2 3 4; do
	(
		head -c $((size * part / 5 + RANDOM)) "$tmp/in.mp"
		exec sleep 30 # the pipe stays open: no end of input
	) >"$tmp/pipe" &
	feeder=$!
	pids+=($feeder)
	"$bin/mdb-write" --batch-rows 5000 --retention 0 "$db" <"$tmp/pipe" 2>>"$tmp/log" &
	p=$!
	# the last run works a second or more: under load the first three can
	# all be killed before their first commit
	if [ $part -lt 4 ]; then
		sleep "0.$((RANDOM % 5))$((RANDOM % 10))"
	else
		sleep "1.$((RANDOM % 10))"
	fi
	kill -9 "$p" 2>/dev/null && kills=$((kills + 1))
	wait "$p" 2>/dev/null
	kill "$feeder" 2>/dev/null
	wait "$feeder" 2>/dev/null
	c=$(sqlite3 "$db" "SELECT count(*) FROM bars" 2>/dev/null || echo 0)
	[ "$c" -lt "$n" ] || fail "run $part had the whole stream in $c rows: not a mid-stream kill"
	committed=$((committed > c ? committed : c))
done
[ "$kills" -ge 3 ] || fail "only $kills runs were killed"
[ "$committed" -gt 0 ] || fail "no batch was ever committed before a kill"

# the same stream again, from its start, to the end of input: exit 0
"$bin/mdb-write" --batch-rows 5000 --retention 0 "$db" <"$tmp/in.mp" 2>>"$tmp/log" ||
	fail "mdb-write exited $? at the end of input"
rows >"$tmp/got.csv" || fail "sqlite3"
"$gen" --expect "$n" >"$tmp/want.csv"
cmp -s "$tmp/got.csv" "$tmp/want.csv" ||
	fail "the bars differ from the input's final values: $(diff "$tmp/want.csv" "$tmp/got.csv" | head -5)"
feats=$(sqlite3 "$db" "SELECT count(*) FROM feats WHERE rsi = CAST(ema12 AS INTEGER) % 100")
[ "$feats" = $(((n + 9) / 10)) ] || fail "$feats feats, wanted $(((n + 9) / 10))"
[ "$(sqlite3 "$db" "SELECT count(*) FROM feats")" = "$feats" ] || fail "extra feat rows"
[ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check"
pass "stdin: killed -9 $kills times mid-stream (up to $committed rows committed), fed again: exactly the input's final values"

# an uninterrupted run gives the same file contents
rm -f "$db" "$db-wal" "$db-shm"
"$bin/mdb-write" --retention 0 "$db" <"$tmp/in.mp" 2>>"$tmp/log" || fail "uninterrupted run"
rows | cmp -s - "$tmp/got.csv" || fail "an uninterrupted run differs"
pass "the same as an uninterrupted run"

# a stream cut mid-record: the torn tail is a reject, the rest is in, exit 0
rm -f "$db" "$db-wal" "$db-shm"
head -c $((size / 2 + 3)) "$tmp/in.mp" | "$bin/mdb-write" --retention 0 "$db" 2>"$tmp/torn.log" ||
	fail "mdb-write on a torn stream exited $?"
grep -q 'truncated record at end of input' "$tmp/torn.log" || fail "torn tail not reported: $(cat "$tmp/torn.log")"
[ "$(sqlite3 "$db" "SELECT count(*) FROM bars")" -gt 0 ] || fail "nothing committed from a torn stream"
pass "a torn last record is reported; what came before it is committed"

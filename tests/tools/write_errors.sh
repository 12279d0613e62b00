#!/bin/bash
# mdb-write waits and retries, dropping nothing, while its database is
# locked by another writer, full, or not a database; it says so clearly.
. "$(dirname "$0")/lib.sh"

# bars K..K+N-1 of symbol S as JSON lines, a day old (inside the retention)
bars()
{
	local ts0=$((($(date +%s) - 86400) / 60 * 60))
	awk -v s="$1" -v k="$2" -v n="$3" -v t="$ts0" 'BEGIN { for (i = k; i < k + n; i++)
		printf "{\"t\":\"bar\",\"s\":\"%s\",\"ts\":%d000000000,\"iv\":60,\"o\":%d.0,\"h\":1.0,\"l\":1.0,\"c\":1.0,\"v\":1.0,\"n\":1,\"f\":1}\n", s, t - i * 60, i }'
}

# wait_rows DB N [SECONDS]: until DB holds N bars, or fail
wait_rows()
{
	local deadline=$((SECONDS + ${3:-15})) got
	while :; do
		got=$(sqlite3 "$1" "SELECT count(*) FROM bars" 2>/dev/null)
		[ "$got" = "$2" ] && return 0
		[ $SECONDS -lt $deadline ] || fail "$1: ${got:-no} bars, wanted $2: $(cat "$tmp/log")"
		sleep 0.1
	done
}

# joined: until consumer mdb-write is in ring $1
joined()
{
	for _ in $(seq 100); do
		"$bin/mdb-ring" stat "$1" | grep -q 'mdb-write .* alive' && return 0
		sleep 0.05
	done
	fail "mdb-write never joined ring $1"
}

# locked: another connection holds the write lock until mdb-write has
# waited its second and said so (however slow the machine, or a sanitizer,
# makes the feed), then lets go
db=$tmp/locked.db
"$bin/mdb-ring" create -s 1M a || fail "create"
start "$bin/mdb-write" -i ring:a --batch-time 20ms "$db" 2>"$tmp/log"
w=$!
joined a
bars ES 0 100 | "$bin/mdb-pipe" --json-in -o ring:a || fail "feed"
wait_rows "$db" 100
{
	echo "BEGIN IMMEDIATE;"
	until [ -e "$tmp/unlock" ]; do sleep 0.05; done
	echo "COMMIT;"
} | sqlite3 "$db" &
locker=$!
# the lock is held once another writer cannot take it at once
until ! sqlite3 -cmd ".timeout 0" "$db" "BEGIN IMMEDIATE; ROLLBACK;" 2>/dev/null; do
	sleep 0.05
done
bars ES 100 900 | "$bin/mdb-pipe" --json-in -o ring:a || fail "feed"
locked='database is locked (another process holds the write lock); retrying in'
deadline=$((SECONDS + 30))
until grep -q "$locked" "$tmp/log"; do
	[ $SECONDS -lt $deadline ] || fail "no clear message in 30 s: $(cat "$tmp/log")"
	sleep 0.1
done
[ "$(sqlite3 "$db" "SELECT count(*) FROM bars")" = 100 ] || fail "rows went in while the lock was held"
kill -0 "$w" || fail "mdb-write gave up on a locked database"
touch "$tmp/unlock"
wait "$locker"
wait_rows "$db" 1000
kill "$w"; wait "$w" || fail "mdb-write exited $? after SIGTERM"
pass "locked database: logged, retried, all 1000 rows in after the lock went"

# full: --max-size stops the growth; nothing is lost, a restart without it catches up
db=$tmp/full.db
"$bin/mdb-ring" create -s 4M b || fail "create"
start "$bin/mdb-write" -i ring:b --max-size 128k --batch-rows 500 "$db" 2>"$tmp/log"
w=$!
joined b
bars NQ 0 5000 | "$bin/mdb-pipe" --json-in -o ring:b || fail "feed"
for _ in $(seq 100); do
	grep -q 'full (free disk space, or raise --max-size); retrying' "$tmp/log" && break
	sleep 0.05
done
grep -q 'full (free disk space, or raise --max-size); retrying' "$tmp/log" ||
	fail "no clear message: $(cat "$tmp/log")"
kill -0 "$w" || fail "mdb-write gave up"
kill "$w"; wait "$w" || fail "mdb-write exited $? after SIGTERM"
before=$(sqlite3 "$db" "SELECT count(*) FROM bars")
[ "$before" -lt 5000 ] || fail "$before rows fit in 128k?"
start "$bin/mdb-write" -i ring:b "$db" 2>"$tmp/log"
w=$!
wait_rows "$db" 5000
kill "$w"; wait "$w"
pass "full database: logged, retried; $before rows fitted, the rest stayed in the ring until it had room"

# not a database: logged, retried, reopened once the file is replaced
db=$tmp/junk.db
head -c 65536 /dev/urandom >"$db"
"$bin/mdb-ring" create -s 1M c || fail "create"
bars CL 0 300 | "$bin/mdb-pipe" --json-in -o ring:c || fail "feed"
start "$bin/mdb-write" -i ring:c "$db" 2>"$tmp/log"
w=$!
sleep 0.5
kill -0 "$w" || fail "mdb-write gave up on a damaged file"
grep -q 'file is not a database (the file is damaged: restore it or move it aside); retrying in' \
	"$tmp/log" || fail "no clear message: $(cat "$tmp/log")"
mv "$db" "$db.bad"
wait_rows "$db" 300
kill "$w"; wait "$w" || fail "mdb-write exited $? after SIGTERM"
pass "damaged file: logged, retried, and the file put in its place got every row"

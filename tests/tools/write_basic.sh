#!/bin/bash
# mdb-write from JSON lines: upserts and revisions, skipped types, bootstrap
# detection, --check's summary and exit status, migration of a version 1
# database, retention.
. "$(dirname "$0")/lib.sh"

db=$tmp/h.db
now=$(date +%s)
ts() { echo "$(((now - $1 * 86400) / 60 * 60))000000000"; } # DAYS ago, on a minute

# usage errors exit 2
"$bin/mdb-write" 2>/dev/null; [ $? = 2 ] || fail "no DATABASE: not exit 2"
"$bin/mdb-write" --batch-rows 0 "$db" 2>/dev/null; [ $? = 2 ] || fail "--batch-rows 0: not exit 2"
"$bin/mdb-write" -o - "$db" 2>/dev/null; [ $? = 2 ] || fail "-o: not exit 2"
"$bin/mdb-write" -h | grep -q -- '--check' || fail "-h"

# a new database: created, empty, reported as such
"$bin/mdb-write" --json "$db" </dev/null 2>"$tmp/log" || fail "empty run"
grep -q 'empty (bootstrap)' "$tmp/log" || fail "no bootstrap message: $(cat "$tmp/log")"
"$bin/mdb-write" --check "$db" >"$tmp/check"; rc=$?
[ $rc = 3 ] || fail "--check of an empty database: exit $rc, wanted 3"
grep -q '^integrity: ok' "$tmp/check" || fail "--check: $(cat "$tmp/check")"
[ "$(sqlite3 "$db" 'PRAGMA user_version; PRAGMA journal_mode')" = "3
wal" ] || fail "schema version / WAL"
pass "new database: schema 3, WAL, bootstrap reported, --check exits 3"

t1=$(ts 1) t2=$(ts 2)
cat >"$tmp/in.jsonl" <<EOF
{"t":"bar","s":"ES","ts":$t1,"iv":60,"o":1.0,"h":2.0,"l":0.5,"c":1.5,"v":10.0,"n":3,"f":0,"src":"sc"}
{"t":"tick","s":"ES","ts":$t1,"p":1.5,"v":1.0}
{"t":"bar","s":"ES","ts":$t1,"iv":60,"o":1.0,"h":2.5,"l":0.5,"c":2.25,"v":12.0,"n":4,"f":1,"src":"sc"}
{"t":"bar","s":"ES","ts":$t1,"iv":60,"o":1.0,"h":2.5,"l":0.5,"c":2.25,"v":12.0,"n":4,"f":1,"src":"sc"}
{"t":"bar","s":"ES","ts":$t2,"iv":60,"o":3.0,"h":3.0,"l":3.0,"c":3.0,"v":1.0,"n":1,"f":1}
{"t":"bar","s":"NQ","ts":$t1,"iv":300,"o":9.0,"h":9.0,"l":9.0,"c":9.0,"v":1.0,"n":1,"f":1}
{"t":"feat","s":"ES","ts":$t1,"iv":60,"rsi":40.0,"ema12":1.5,"f":0}
{"t":"feat","s":"ES","ts":$t1,"iv":60,"rsi":45.5,"ema12":1.75,"f":1}
{"t":"sig","s":"ES","ts":$t1,"iv":60,"name":"x","val":1.0}
not json
EOF
"$bin/mdb-write" --json "$db" <"$tmp/in.jsonl" 2>"$tmp/log" || fail "write: $(cat "$tmp/log")"
grep -q 'rejected' "$tmp/log" || fail "a bad line was not reported"
got=$(sqlite3 "$db" "SELECT symbol, iv, c, h, v, n, f, src FROM bars ORDER BY symbol, iv, ts")
want="ES|60|3.0|3.0|1.0|1|1|
ES|60|2.25|2.5|12.0|4|1|sc
NQ|300|9.0|9.0|1.0|1|1|"
[ "$got" = "$want" ] || fail "bars: got
$got"
[ "$(sqlite3 "$db" "SELECT rsi, ema12, f, bbm IS NULL FROM feats")" = "45.5|1.75|1|1" ] ||
	fail "feats: $(sqlite3 "$db" 'SELECT * FROM feats')"
# the same input again changes nothing
sqlite3 "$db" "SELECT * FROM bars ORDER BY 1, 2, 3; SELECT * FROM feats" >"$tmp/before"
"$bin/mdb-write" --json "$db" <"$tmp/in.jsonl" 2>/dev/null || fail "rewrite"
sqlite3 "$db" "SELECT * FROM bars ORDER BY 1, 2, 3; SELECT * FROM feats" >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" || fail "a repeated input changed rows"
pass "upserts: revisions at their last value, repeats change nothing, ticks/sigs skipped"

"$bin/mdb-write" --check "$db" >"$tmp/check"; rc=$?
[ $rc = 0 ] || fail "--check: exit $rc"
grep -Eq '^bars +ES +60 +2 ' "$tmp/check" || fail "--check summary: $(cat "$tmp/check")"
grep -Eq '^feats +ES +60 +1 ' "$tmp/check" || fail "--check summary: $(cat "$tmp/check")"
grep -q '^size: ' "$tmp/check" || fail "--check size"
head -c 65536 /dev/urandom >"$tmp/junk.db"
"$bin/mdb-write" --check "$tmp/junk.db" >/dev/null 2>"$tmp/log"; rc=$?
[ $rc = 1 ] || fail "--check of junk: exit $rc"
grep -q 'damaged' "$tmp/log" || fail "junk: $(cat "$tmp/log")"
pass "--check: summary per symbol and interval, exit 0; junk exits 1"

# retention: rows older than --retention go, in batches of --prune-batch
for d in 100 95 91 89 1; do
	echo "{\"t\":\"bar\",\"s\":\"OLD\",\"ts\":$(ts $d),\"iv\":60,\"o\":1.0,\"h\":1.0,\"l\":1.0,\"c\":1.0,\"v\":1.0,\"n\":1,\"f\":1}"
	echo "{\"t\":\"feat\",\"s\":\"OLD\",\"ts\":$(ts $d),\"iv\":60,\"rsi\":1.0,\"f\":1}"
done >"$tmp/old.jsonl"
"$bin/mdb-write" --json --retention 0 "$db" <"$tmp/old.jsonl" 2>/dev/null || fail "old rows"
[ "$(sqlite3 "$db" "SELECT count(*) FROM bars WHERE symbol = 'OLD'")" = 5 ] || fail "--retention 0 pruned"
"$bin/mdb-write" --json --prune-batch 1 "$db" </dev/null 2>/dev/null || fail "prune run"
[ "$(sqlite3 "$db" "SELECT count(*) FROM bars WHERE symbol = 'OLD'")" = 2 ] ||
	fail "after pruning: $(sqlite3 "$db" "SELECT ts FROM bars WHERE symbol = 'OLD'")"
[ "$(sqlite3 "$db" "SELECT count(*) FROM feats WHERE symbol = 'OLD'")" = 2 ] || fail "feats not pruned"
[ "$(sqlite3 "$db" "SELECT count(*) FROM bars")" = 5 ] || fail "pruning took recent rows"
"$bin/mdb-write" --json --retention 1h "$db" </dev/null 2>/dev/null || fail "prune run"
[ "$(sqlite3 "$db" "SELECT count(*) FROM bars")" = 0 ] || fail "--retention 1h kept rows"
pass "retention: 90 days by default (--prune-batch 1: one row per transaction), --retention 0 keeps all"

# a version 1 database (the first prototype's schema) is migrated in place
v1=$tmp/v1.db
sqlite3 "$v1" "CREATE TABLE bars (symbol TEXT NOT NULL, iv INTEGER NOT NULL, ts INTEGER NOT NULL,
	o REAL, h REAL, l REAL, c REAL, v REAL, n INTEGER, f INTEGER NOT NULL DEFAULT 0,
	UNIQUE (symbol, iv, ts));
	CREATE TABLE cursors (ring TEXT PRIMARY KEY, position INTEGER NOT NULL);
	INSERT INTO bars VALUES ('ES', 60, $t1, 1, 2, 0.5, 1.5, 10, 3, 1), ('ES', 60, $t2, 1, 1, 1, 1, 1, 1, 1);
	INSERT INTO cursors VALUES ('bars', 4096);
	PRAGMA user_version = 1;" || fail "make v1"
"$bin/mdb-write" --check "$v1" | grep -q 'schema version: 1' || fail "--check v1"
[ "$(sqlite3 "$v1" 'PRAGMA user_version')" = 1 ] || fail "--check migrated"
"$bin/mdb-write" --json "$v1" <"$tmp/in.jsonl" 2>"$tmp/log" || fail "migrate: $(cat "$tmp/log")"
grep -q "migrated the schema from version 1 to 3" "$tmp/log" || fail "no migration message"
[ "$(sqlite3 "$v1" 'PRAGMA user_version')" = 3 ] || fail "not migrated"
[ "$(sqlite3 "$v1" "SELECT c, src FROM bars WHERE symbol = 'ES' AND ts = $t1")" = "2.25|sc" ] ||
	fail "v1 row not revised"
[ "$(sqlite3 "$v1" "SELECT c FROM bars WHERE symbol = 'ES' AND ts = $t2")" = "3.0" ] || fail "v1 row"
[ "$(sqlite3 "$v1" "SELECT ring, consumer, position FROM cursors")" = "bars|mdb-write|4096" ] ||
	fail "v1 cursor"
[ "$(sqlite3 "$v1" "SELECT count(*) FROM sqlite_schema WHERE sql LIKE '%WITHOUT ROWID'")" = 3 ] ||
	fail "v3 tables"
"$bin/mdb-write" --check "$v1" >/dev/null || fail "--check after migration"
pass "a version 1 database is migrated to 3 in place, its rows and cursor kept"

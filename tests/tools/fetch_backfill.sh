#!/bin/bash
# --backfill 89d of hourly bars for four symbols, one per API, against the
# fake server: only final bars, contiguous (Yahoo's nulls aside), paced
# inside the limits (a 3/min source hands the rest to its fallback), a
# progress line on stderr, exit 0; the stream ends up in SQLite through
# mdb-write.
. "$(dirname "$0")/lib.sh"
. "$here/fetch_lib.sh"

cat >"$tmp/fetch.conf" <<CONF
interval 3600
source yh type=yahoo url=$api/yh chunk=30d rate=60
source av type=alphavantage url=$api/av key=FETCH_TEST_KEY rate=3
source td type=twelvedata url=$api/td key=FETCH_TEST_KEY chunk=30d rate=60
source pg type=polygon url=$api/pg key=FETCH_TEST_KEY chunk=30d rate=60
symbol NQ yh
symbol IBM av pg
symbol AAPL td
symbol MSFT pg
CONF
t0=$SECONDS
"$bin/mdb-fetch" -c "$tmp/fetch.conf" --json --backfill 89d >"$tmp/bf.jsonl" 2>"$tmp/err" ||
	fail "backfill failed: $(cat "$tmp/err")"
grep -Eq '^mdb-fetch: backfill: 4 symbols, [0-9]+ requests, [0-9]+ bars, 100%, done$' "$tmp/err" ||
	grep -Eq '^backfill: 4 symbols, [0-9]+ requests, [0-9]+ bars, 100%, done$' "$tmp/err" ||
	fail "no final progress line: $(cat "$tmp/err")"
check_bars "$tmp/bf.jsonl" >"$tmp/counts"
python3 - "$tmp/bf.jsonl" <<'PY' || fail "backfilled bars: $(cat "$tmp/counts")"
import json, sys, time, collections
iv = 3600
by = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["f"] == 1, ("not final", r)
    assert r["iv"] == iv
    by[r["s"]].append(r["ts"] // 10**9)
now = time.time()
assert sorted(by) == ["AAPL", "IBM", "MSFT", "NQ"], by.keys()
for s, ts in by.items():
    assert ts == sorted(ts) and len(set(ts)) == len(ts), (s, "repeated or out of order")
    assert abs(ts[0] - (now - 89 * 86400)) <= 2 * iv, (s, "first", ts[0])
    assert ts[-1] == (int(now) // iv) * iv - iv, (s, "last", ts[-1])
    want = [k * iv for k in range(ts[0] // iv, ts[-1] // iv + 1)
            if s != "NQ" or k % 11 != 5]
    assert ts == want, (s, "gaps", len(ts), len(want), sorted(set(want) - set(ts))[:8])
print({s: len(t) for s, t in by.items()})
PY
pass "89 days of final hourly bars for 4 symbols from 4 APIs, contiguous, in $((SECONDS - t0)) s"

[ "$(srcstat av max_per_min)" -le 3 ] || fail "av asked $(srcstat av max_per_min) times in a minute, limit 3"
[ "$(srcstat av requests)" = 3 ] || fail "av: $(srcstat av requests) requests"
grep -q '^IBM pg ' "$tmp/counts" || fail "IBM did not fall back to pg: $(cat "$tmp/counts")"
grep -q '^IBM av ' "$tmp/counts" || fail "IBM got nothing from av"
for s in yh td pg; do
	[ "$(srcstat $s max_per_min)" -le 60 ] || fail "$s over its limit"
done
pass "paced: av held to 3 requests a minute, the rest of IBM from its fallback"

# bootstrap a database: mdb-fetch | mdb-write
db=$tmp/hist.db
"$bin/mdb-fetch" -c "$tmp/fetch.conf" --backfill 10d 2>"$tmp/err2" |
	"$bin/mdb-write" --retention 30d "$db" 2>"$tmp/werr" || fail "mdb-fetch | mdb-write: $(cat "$tmp/err2" "$tmp/werr")"
for s in NQ IBM AAPL MSFT; do
	n=$(sqlite3 "$db" "SELECT count(*) FROM bars WHERE symbol = '$s' AND iv = 3600")
	want=$(grep -c "\"s\":\"$s\"" <(python3 - "$tmp/bf.jsonl" "$s" <<'PY'
import json, sys, time
iv = 3600; now = time.time()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["s"] == sys.argv[2] and r["ts"] // 10**9 >= (int(now - 10 * 86400) // iv) * iv:
        print(json.dumps(r, separators=(",", ":")))
PY
))
	[ "$n" -ge 200 ] && [ $((n - want)) -le 1 ] && [ $((want - n)) -le 1 ] ||
		fail "$s: $n rows in SQLite, wanted $want"
done
pass "backfill into SQLite through mdb-write: 10 days per symbol"

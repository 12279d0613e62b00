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
bf_start=$(date +%s)
"$bin/mdb-fetch" -c "$tmp/fetch.conf" --json --backfill 89d >"$tmp/bf.jsonl" 2>"$tmp/err" ||
	fail "backfill failed: $(cat "$tmp/err")"
grep -Eq '^mdb-fetch: backfill: 4 symbols, [0-9]+ requests, [0-9]+ bars, 100%, done$' "$tmp/err" ||
	grep -Eq '^backfill: 4 symbols, [0-9]+ requests, [0-9]+ bars, 100%, done$' "$tmp/err" ||
	fail "no final progress line: $(cat "$tmp/err")"
check_bars "$tmp/bf.jsonl" >"$tmp/counts"
python3 - "$tmp/bf.jsonl" "$bf_start" <<'PY' || fail "backfilled bars: $(cat "$tmp/counts")"
import json, sys, time, collections
iv = 3600
by = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["f"] == 1, ("not final", r)
    assert r["iv"] == iv
    by[r["s"]].append(r["ts"] // 10**9)
now, started = time.time(), int(sys.argv[2])
assert sorted(by) == ["AAPL", "IBM", "MSFT", "NQ"], by.keys()
for s, ts in by.items():
    assert ts == sorted(ts) and len(set(ts)) == len(ts), (s, "repeated or out of order")
    assert abs(ts[0] - (now - 89 * 86400)) <= 2 * iv, (s, "first", ts[0])
    # the last final hour, or for NQ the last one Yahoo has (none where
    # k % 11 == 5), as of when the backfill started or ended: the hour may
    # have turned while it ran
    def last_final(t):
        last = int(t) // iv - 1
        while s == "NQ" and last % 11 == 5:
            last -= 1
        return last * iv
    assert ts[-1] in (last_final(started), last_final(now)), (s, "last", ts[-1])
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

# bootstrap a database: mdb-fetch | mdb-validate | mdb-write, then check
# the database against the fixture's series: every bar the server has for
# the 90 days is there once, value for value, and nothing else
db=$tmp/hist.db
days=90
t_before=$(date +%s)
"$bin/mdb-fetch" -c "$tmp/fetch.conf" --json --backfill ${days}d 2>"$tmp/err2" |
	"$bin/mdb-validate" --json -I 1h 2>"$tmp/verr" | tee "$tmp/valid.jsonl" |
	"$bin/mdb-write" --json --retention $((days + 30))d "$db" 2>"$tmp/werr" ||
	fail "mdb-fetch | mdb-validate | mdb-write: $(cat "$tmp/err2" "$tmp/verr" "$tmp/werr")"
t_after=$(date +%s)
grep -q '"t":"rej"' "$tmp/valid.jsonl" && fail "mdb-validate rejected bars: $(grep -m3 '"t":"rej"' "$tmp/valid.jsonl")"
check_bars "$tmp/valid.jsonl" >/dev/null
python3 - "$db" "$t_before" "$t_after" "$days" <<'PY' || fail "the database does not hold what the server served"
import sqlite3, sys
db, t0, t1, days = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
iv, NS = 3600, 10**9
con = sqlite3.connect(db)
rows = {}
for s, ts, o, h, l, c, v, f in con.execute(
        "SELECT symbol, ts, o, h, l, c, v, f FROM bars WHERE iv = ?", (iv,)):
    rows.setdefault(s, {})[ts // NS] = (o, h, l, c, v, f)
assert sorted(rows) == ["AAPL", "IBM", "MSFT", "NQ"], sorted(rows)
def want(sym, now):
    # the fixture's series (fetch_server.py): the final bars of the last
    # `days` days (Yahoo has none where k % 11 == 5)
    first, end = (now - days * 86400) // iv * iv, now // iv * iv
    out = {}
    for k in range(first // iv, end // iv):
        if sym == "NQ" and k % 11 == 5:
            continue
        o = 100 + len(sym) + (k % 40) / 4
        out[k * iv] = (o, o + 0.75, o - 0.25, o + 0.5, 100 + k % 7, 1)
    return out
for sym, got in sorted(rows.items()):
    # the hour may have turned while the backfill ran
    ok = [w for w in (want(sym, t0), want(sym, t1)) if set(w) == set(got)]
    assert ok, (sym, len(got), len(want(sym, t0)), sorted(set(want(sym, t0)) ^ set(got))[:6])
    for ts, val in got.items():
        assert val == ok[0][ts], (sym, ts, "bad bar", val, ok[0][ts])
    print(sym, len(got), "rows")
PY
pass "backfill through mdb-validate into SQLite: every fixture bar of $days days per symbol, value for value, no rejects, no bad bar"

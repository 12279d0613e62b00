#!/bin/bash
# mdb-fetch against a fake server speaking each API: the right bars, from the
# right source, with symbol maps; Yahoo's nulls never become bars; later
# requests ask only from the last bar; forming bars re-sent only when they
# change; connections reused; output to a ring; the key never in stderr.
. "$(dirname "$0")/lib.sh"
. "$here/fetch_lib.sh"

cat >"$tmp/yahoo.map" <<MAP
# Yahoo's name for the front NQ future
NQ=F   NQ
MAP
cat >"$tmp/fetch.conf" <<CONF
# one source per API; each symbol names the source it is asked of
source yh type=yahoo url=$api/yh map=$tmp/yahoo.map rate=600
source av type=alphavantage url=$api/av key=FETCH_TEST_KEY rate=600
source td type=twelvedata url=$api/td key=FETCH_TEST_KEY rate=600
source pg type=polygon url=$api/pg key=FETCH_TEST_KEY rate=600
symbol NQ yh
symbol IBM av
symbol AAPL td
symbol MSFT pg
CONF
start "$bin/mdb-fetch" -c "$tmp/fetch.conf" --json --cadence 0.25s --lookback 30m \
	>"$tmp/out.jsonl" 2>"$tmp/err"
fpid=$!
sleep 3
kill $fpid; wait $fpid
check_bars "$tmp/out.jsonl" >"$tmp/counts"
for s in "NQ yh" "IBM av" "AAPL td" "MSFT pg"; do
	grep -q "^$s " "$tmp/counts" || fail "no bars for $s: $(cat "$tmp/counts"; cat "$tmp/err")"
done
pass "bars from Yahoo, Alpha Vantage, Twelve Data and Polygon shapes"

python3 - "$tmp/out.jsonl" <<'PY' || fail "bar values differ from what the server sent"
import json, sys
finals = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    k = r["ts"] // 10**9 // 60
    if r["s"] == "NQ":
        assert k % 11 != 5, ("a Yahoo null became a bar", r)
    ticker = "NQ=F" if r["s"] == "NQ" else r["s"]
    o = 100 + len(ticker) + (k % 40) / 4
    assert abs(r["o"] - o) < 1e-6, ("open", o, r)   # also proves the local times were converted
    if r["f"] & 1:
        assert abs(r["c"] - (o + 0.5)) < 1e-6, ("close", r)
        finals.setdefault(r["s"], []).append(r["ts"])
for s, ts in finals.items():
    assert len(ts) >= 25, (s, len(ts))
    assert ts == sorted(ts) and len(set(ts)) == len(ts), (s, "final bars repeated or out of order")
PY
pass "values and times match the server's; Yahoo nulls are no bar; finals once each, in order"

# the map: Yahoo was asked for NQ=F; later requests start at the last bar
stats >"$tmp/stats"
python3 - "$tmp/stats" <<'PY' || fail "requests: $(cat "$tmp/stats")"
import json, sys
st = json.load(open(sys.argv[1]))
yh = st["sources"]["yh"]["periods"]
assert yh[0][0] == "NQ=F", yh
assert len(yh) >= 5, yh
first = yh[0][1]
# the first asks for the lookback, every later one for at most two bars back
import time
for t, p1 in yh[1:]:
    assert p1 > first and p1 >= time.time() - 240, ("asked for old bars again", yh)
reqs = sum(s["requests"] for s in st["sources"].values())
assert st["conns"] < reqs, ("connections not reused", st["conns"], reqs)
for s in st["sources"].values():
    assert s["bad_keys"] == 0, st
print(reqs, st["conns"])
PY
pass "symbol map used; later requests ask only from the last bar; connections reused"

grep -q "$FETCH_TEST_KEY" "$tmp/err" "$tmp/out.jsonl" && fail "the API key appears in the output"
pass "the API key never appears on stderr or stdout"

# into a ring
start "$bin/mdb-fetch" -c "$tmp/fetch.conf" --cadence 0.25s --lookback 5m -o ring:bars 2>"$tmp/err2"
fpid=$!
sleep 1.5
"$bin/mdb-tap" ring:bars >"$tmp/ring.jsonl" || fail "mdb-tap"
kill $fpid; wait $fpid
check_bars "$tmp/ring.jsonl" >"$tmp/counts2"
[ "$(wc -l <"$tmp/counts2")" = 4 ] || fail "ring: $(cat "$tmp/counts2")"
pass "bars into a ring"

# configuration errors exit 2 with a clear message
echo "source x type=bloomberg" >"$tmp/bad.conf"
"$bin/mdb-fetch" -c "$tmp/bad.conf" 2>"$tmp/e"; [ $? -eq 2 ] || fail "unknown type must exit 2"
grep -q "unknown type" "$tmp/e" || fail "unclear message: $(cat "$tmp/e")"
printf 'source p type=polygon key=NO_SUCH_VAR_X\nsymbols A\n' >"$tmp/bad.conf"
"$bin/mdb-fetch" -c "$tmp/bad.conf" 2>"$tmp/e"; [ $? -eq 2 ] || fail "missing key must exit 2"
grep -q 'no key' "$tmp/e" || fail "unclear message: $(cat "$tmp/e")"
mkdir "$tmp/cred" && printf '%s\n' "$FETCH_TEST_KEY" >"$tmp/cred/PGKEY"
printf 'source pg type=polygon key=PGKEY url=%s/pg\nsymbols CRED\n' "$api" >"$tmp/cred.conf"
CREDENTIALS_DIRECTORY=$tmp/cred timeout 1.5 "$bin/mdb-fetch" -c "$tmp/cred.conf" --json >"$tmp/cred.out" 2>"$tmp/cred.err"
grep -q '"s":"CRED"' "$tmp/cred.out" || fail "key from \$CREDENTIALS_DIRECTORY not used: $(cat "$tmp/cred.err")"
grep -q "$FETCH_TEST_KEY" "$tmp/cred.err" && fail "key in stderr"
"$bin/mdb-fetch" 2>/dev/null; [ $? -eq 2 ] || fail "no -c must exit 2"
"$bin/mdb-fetch" -c "$tmp/fetch.conf" --cadence x 2>/dev/null; [ $? -eq 2 ] || fail "bad cadence must exit 2"
"$bin/mdb-fetch" -h | grep -q '^usage: mdb-fetch' || fail "-h"
"$bin/mdb-fetch" -V | grep -q '^mdb-fetch ' || fail "-V"
pass "configuration errors, credentials directory, usage"

# fetch_lib.sh - shared by the mdb-fetch tool tests: start the fake API
# server (fetch_server.py) on a free port and check mdb-fetch's output.
# Source after lib.sh.
export FETCH_TEST_KEY=k3y-$RANDOM-s3cr3t-$$
start python3 "$here/fetch_server.py" "$tmp/port"
deadline=$((SECONDS + 10))
until [ -s "$tmp/port" ]; do
	[ $SECONDS -lt $deadline ] || fail "the fake API server did not start"
	sleep 0.05
done
port=$(cat "$tmp/port")
api=http://127.0.0.1:$port

# mode SOURCE MODE: how the fake server answers SOURCE from now on
mode() { curl -sf "$api/_mode/$1/$2" >/dev/null || fail "cannot set mode $2 for $1"; }
# stats: the server's JSON statistics
stats() { curl -sf "$api/_stats"; }
# srcstat SOURCE FIELD: one number from the statistics (0 when never asked)
srcstat() { stats | python3 -c "import json,sys; print(json.load(sys.stdin)['sources'].get('$1',{}).get('$2',0))"; }
# tickers SOURCE: the server's requests per ticker of SOURCE, as "T N" lines
tickers() { stats | python3 -c "import json,sys; [print(t, n) for t, n in sorted(json.load(sys.stdin)['sources'].get('$1',{}).get('tickers',{}).items())]"; }
# asked SOURCE TICKER: the server's count of requests for TICKER at SOURCE
asked() { tickers "$1" | awk -v t="$2" '$1 == t {n = $2} END {print n + 0}'; }

# wait_grep PATTERN FILE SECONDS WHY: until FILE has a line matching
# PATTERN, or fail with WHY and the end of mdb-fetch's log $tmp/err
wait_grep()
{
	local deadline=$((SECONDS + $3))
	until grep -q -- "$1" "$2"; do
		[ $SECONDS -lt $deadline ] || fail "$4: $(tail -n 5 "$tmp/err" 2>/dev/null)"
		sleep 0.1
	done
}

# counters NAME...: the running mdb-fetch's counters NAME..., read at once
# from outside with mdb-stat, one a line
counters()
{
	"$bin/mdb-stat" --json | python3 -c "
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    if r['tool'] == 'mdb-fetch':
        for n in sys.argv[1:]:
            print(r['counters'].get(n, 'missing'))" "$@"
}

# check_bars FILE: every line is a consistent bar record, and a bar is
# written again only when something in it changed (a forming bar's close
# may well return to an earlier value); prints "SYMBOL SRC COUNT" lines
check_bars()
{
	python3 - "$1" <<'PY' || fail "bad bars in $1"
import json, sys, collections
last, count = {}, collections.Counter()
for n, line in enumerate(open(sys.argv[1]), 1):
    r = json.loads(line)
    assert r["t"] == "bar", (n, r)
    o, h, l, c = r["o"], r["h"], r["l"], r["c"]
    assert h >= max(o, c, l) and l <= min(o, c) and l > 0, ("inconsistent", n, r)
    assert r.get("v", 0) >= 0, (n, r)
    val = (o, h, l, c, r.get("v"), r.get("n"), r["f"], r["src"])
    assert last.get((r["s"], r["ts"])) != val, ("written twice unchanged", n, r)
    last[(r["s"], r["ts"])] = val
    count[(r["s"], r["src"])] += 1
for (s, src), k in sorted(count.items()):
    print(s, src, k)
PY
}

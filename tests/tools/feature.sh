#!/bin/bash
# mdb-feature: every indicator against the independent reference
# (tests/ref/indicators.py) to 1e-9 relative; revisions and repeats of the
# forming bar give exactly the closed-bar features of the closed bars alone;
# the last-value cache through mdb-lvc; ring -> ring; ZeroMQ; exit codes.
. "$(dirname "$0")/lib.sh"

# stop_started: SIGTERM each process this test started until it is gone. A
# signal that lands just before a stage goes to sleep is only seen when it
# wakes (the endpoint wait cannot be interrupted then), so repeat it.
stop_started()
{
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill "$p" 2>/dev/null || break
			sleep 0.05
			# exited (a zombie until waited for)?
			case $(ps -o stat= -p "$p") in Z* | "") break ;; esac
		done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	pids=()
}
ref=$here/../ref/indicators.py
feat=$bin/mdb-feature

python3 "$ref" gen 400 7 --revisions >"$tmp/rev.jsonl" || fail "reference generator"
# the closed bars alone: the last final version of each key
python3 - "$tmp/rev.jsonl" >"$tmp/closed.jsonl" <<'PY' || fail "closed bars"
import json, sys
last = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["f"] & 1:
        last[r["ts"]] = line
sys.stdout.write("".join(last[k] for k in sorted(last)))
PY
[ "$(wc -l <"$tmp/closed.jsonl")" = 400 ] || fail "generator: not 400 closed bars"
[ "$(wc -l <"$tmp/rev.jsonl")" -gt 600 ] || fail "generator: too few revisions"
python3 "$ref" expect <"$tmp/closed.jsonl" >"$tmp/expect.jsonl" || fail "reference values"
"$feat" --no-lvc --json <"$tmp/closed.jsonl" >"$tmp/closed.out" || fail "mdb-feature on closed bars"
python3 "$ref" compare "$tmp/expect.jsonl" "$tmp/closed.out" 1e-9 || fail "closed bars differ from the reference"
"$feat" --no-lvc --json <"$tmp/rev.jsonl" >"$tmp/rev.out" || fail "mdb-feature on revisions"
python3 "$ref" compare "$tmp/expect.jsonl" "$tmp/rev.out" 1e-9 || fail "revisions differ from the reference"
pass "every indicator within 1e-9 of the reference, with and without revisions"

finals() { grep '"t":"feat"' "$1" | grep -E '"f":(1|3)}$' | awk '!seen[$0]++'; }
diff <(finals "$tmp/closed.out") <(finals "$tmp/rev.out") >&2 || fail "revisions changed closed-bar features"
[ "$(finals "$tmp/rev.out" | wc -l)" = 400 ] || fail "not one closed feat per bar"
# every input record is passed on, each bar followed by its feat
[ "$(grep -c '"t":"bar"' "$tmp/rev.out")" = "$(wc -l <"$tmp/rev.jsonl")" ] || fail "bars not passed on"
[ "$(grep -c '"t":"feat"' "$tmp/rev.out")" = "$(wc -l <"$tmp/rev.jsonl")" ] || fail "not one feat per bar"
"$feat" --no-lvc --no-forward --json <"$tmp/closed.jsonl" | grep -qv '"t":"feat"' && fail "--no-forward passed bars on"
pass "revisions and repeats never double count: closed features identical bit for bit"

# flat data: bands equal the mean, RSI 50
python3 -c '
import json
for i in range(40):
    print(json.dumps({"t":"bar","s":"F","ts":i*60*10**9,"iv":60,"o":0.1,"h":0.1,"l":0.1,"c":0.1,"v":5.0,"n":1,"f":1}))
' | "$feat" --no-lvc --json | tail -n 1 >"$tmp/flat"
grep -q '"rsi":50.0,.*"bbm":0.1,"bbu":0.1,"bbl":0.1,"atr":0.0' "$tmp/flat" || fail "flat series: $(cat "$tmp/flat")"
pass "flat series: bands equal the mean, RSI 50, ATR 0"

# periods are options: RSI(3) of 10, 11, 10.5, 12 is 83.33...
i=0
for c in 10.0 11.0 10.5 12.0; do
	i=$((i + 1))
	echo "{\"t\":\"bar\",\"s\":\"P\",\"ts\":$((i * 60000000000)),\"iv\":60,\"o\":$c,\"h\":$c,\"l\":$c,\"c\":$c,\"v\":1.0,\"n\":1,\"f\":1}"
done |
	"$feat" --no-lvc --json --rsi 3 --mom 2 --no-forward | tail -n 1 >"$tmp/p3"
grep -q '"rsi":83.333333333333' "$tmp/p3" || fail "--rsi 3: $(cat "$tmp/p3")"
grep -q '"mom":1.0' "$tmp/p3" || fail "--mom 2: $(cat "$tmp/p3")"
pass "periods are options"

# ring -> ring, the last-value cache, and mdb-lvc
"$bin/mdb-ring" create -s 1M bars feat zin || fail "mdb-ring create"
"$bin/mdb-pipe" --json-in -o ring:bars <"$tmp/rev.jsonl" || fail "feeding the ring"
start "$feat" -i ring:bars --from start -o ring:feat --lvc cache
start "$bin/mdb-tap" -f --from start -t feat ring:feat >"$tmp/ring.out"
wait_lines "$tmp/ring.out" "$(wc -l <"$tmp/rev.jsonl")"
"$bin/mdb-lvc" cache >"$tmp/lvc" || fail "mdb-lvc"
[ "$(wc -l <"$tmp/lvc")" = 1 ] || fail "mdb-lvc: $(cat "$tmp/lvc")"
tail -n 1 "$tmp/ring.out" >"$tmp/lastfeat"
grep -qF "\"feat\":$(cat "$tmp/lastfeat")}" "$tmp/lvc" || fail "the cache does not hold the last feat: $(cat "$tmp/lvc")"
grep -qF "\"bar\":$(tail -n 1 "$tmp/rev.jsonl")" "$tmp/lvc" || fail "the cache does not hold the last bar"
grep -q "\"seq\":$(wc -l <"$tmp/rev.jsonl")," "$tmp/lvc" || fail "sequence is not the number of updates"
"$bin/mdb-lvc" --text -s GOLD -I 1m cache | grep -q '^GOLD/60s seq' || fail "mdb-lvc --text"
[ -z "$("$bin/mdb-lvc" -s NOPE cache)" ] || fail "mdb-lvc -s filter"
"$bin/mdb-lvc" --stat cache | grep -q 'entries 1 .* alive' || fail "mdb-lvc --stat: $("$bin/mdb-lvc" --stat cache)"
"$feat" -i ring:other --lvc cache -o ring:sink 2>"$tmp/busy"; [ $? -eq 1 ] || fail "a second writer of the cache must exit 1"
grep -q 'another live process' "$tmp/busy" || fail "second writer message: $(cat "$tmp/busy")"
pass "ring -> mdb-feature -> ring; the last-value cache read by mdb-lvc"

# features on ZeroMQ for other hosts: a SUB filtered to feat/ gets them
sock=zmq+ipc://$tmp/feat.sock
start "$feat" -i ring:zin --from start -o "$sock" --no-lvc
start "$bin/mdb-pipe" -i "$sock" --topic feat/GOLD --json -o - >"$tmp/zmq.out"
sleep 0.5 # ZeroMQ subscriptions take a moment to reach the publisher
"$bin/mdb-pipe" --json-in -o ring:zin <"$tmp/closed.jsonl" || fail "feeding zin"
wait_lines "$tmp/zmq.out" 400
diff <(grep '"t":"feat"' "$tmp/closed.out") "$tmp/zmq.out" >&2 || fail "features over ZeroMQ differ"
pass "features published on ZeroMQ (SUB --topic feat/GOLD)"

# only the last closed bar may be revised: a revision of an older closed bar
# (and a late forming bar) is passed on without a feat and leaves the state
# alone; a revision of the last closed bar is applied
python3 - "$tmp/closed.jsonl" >"$tmp/late.jsonl" <<'PY' || fail "late revisions"
import json, sys
bars = [json.loads(l) for l in open(sys.argv[1])][:40]
out = bars[:30]
old = dict(bars[24], c=bars[24]["c"] + 7.5, h=bars[24]["h"] + 7.5, f=5)  # bar 25 revised
late = dict(bars[20], f=0)                                              # bar 21 forming again
last = dict(bars[29], c=bars[29]["c"] + 1.0, h=bars[29]["h"] + 1.0, f=5)  # bar 30 revised
out += [old, late, last, bars[29]] + bars[30:]                          # ... and back
for b in out:
    print(json.dumps(b, separators=(",", ":")))
PY
head -n 40 "$tmp/closed.jsonl" | "$feat" --no-lvc --json --no-forward >"$tmp/late.want" || fail "mdb-feature"
"$feat" --no-lvc --json <"$tmp/late.jsonl" >"$tmp/late.out" || fail "mdb-feature on late revisions"
[ "$(grep -c '"t":"bar"' "$tmp/late.out")" = 44 ] || fail "late revisions: bars not all passed on"
[ "$(grep -c '"t":"feat"' "$tmp/late.out")" = 42 ] || fail "late revisions got features"
diff <(tail -n 10 "$tmp/late.want") <(grep '"t":"feat"' "$tmp/late.out" | tail -n 10) >&2 ||
	fail "a rejected revision changed later features"
grep '"t":"feat"' "$tmp/late.out" | sed -n 31p | grep -qF "$(sed -n 30p "$tmp/late.want")" &&
	fail "the revision of the last closed bar was not applied"
pass "only the last closed bar may be revised; older revisions get no feat and change nothing"

# warm-up: killed with -9 and restarted, mdb-feature replays the bars still
# in its input ring before its position, so its features go on exactly as
# those of an uninterrupted run
"$bin/mdb-ring" create -s 1M wbars wfeat || fail "mdb-ring create"
head -n 250 "$tmp/closed.jsonl" | "$bin/mdb-pipe" --json-in -o ring:wbars || fail "feeding wbars"
start "$bin/mdb-tap" -f --from start -t feat ring:wfeat >"$tmp/warm.out"
start "$feat" -i ring:wbars --from start -o ring:wfeat --no-lvc --name wf
wpid=$!
wait_lines "$tmp/warm.out" 250
kill -9 "$wpid"
wait "$wpid" 2>/dev/null
tail -n 150 "$tmp/closed.jsonl" | "$bin/mdb-pipe" --json-in -o ring:wbars || fail "feeding wbars"
start "$feat" -i ring:wbars -o ring:wfeat --no-lvc --name wf
wait_lines "$tmp/warm.out" 400
sleep 0.2
diff <(grep '"t":"feat"' "$tmp/closed.out" | tail -n 150) <(tail -n 150 "$tmp/warm.out") >&2 ||
	fail "features after a restart differ from an uninterrupted run"
pass "after kill -9, warm-up from the input ring: features as without the restart"

"$feat" --bogus 2>/dev/null; [ $? -eq 2 ] || fail "bad option must exit 2"
"$feat" --rsi 0 2>/dev/null; [ $? -eq 2 ] || fail "--rsi 0 must exit 2"
"$feat" --session 25:00 2>/dev/null; [ $? -eq 2 ] || fail "bad --session must exit 2"
"$bin/mdb-lvc" nosuch 2>/dev/null; [ $? -eq 2 ] || fail "mdb-lvc of a missing cache must exit 2"
for t in mdb-feature mdb-lvc; do
	"$bin/$t" -h | grep -q "^usage: $t" || fail "$t -h"
	"$bin/$t" -V | grep -q "^$t " || fail "$t -V"
done
pass "usage and exit codes"
stop_started

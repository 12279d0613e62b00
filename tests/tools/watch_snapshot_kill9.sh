#!/bin/bash
# kill -9 of mdb-watch at random moments while a writer replaces a JSON
# snapshot of many symbols (many fields changing in every version): after
# every restart each field change is emitted exactly once. Downstream, every
# record holds exactly the fields of its version that differ from what was
# emitted before for its symbol (none lost, none repeated, unchanged ones
# not sent again after a restart), and at the end what was emitted equals
# the last version.
. "$(dirname "$0")/lib.sh"

d=$tmp/d
mkdir -p "$d"
secs=${SIM_SECONDS:-8}
[ -n "${MDB_SANITIZE:-}" ] && secs=5
"$bin/mdb-ring" create -s 64M ticks || fail "create"
start "$bin/mdb-pipe" --name sink --from start -i ring:ticks --json-out >"$tmp/out.jsonl"

# the writer: 200 symbols x 6 fields, a random half of them changing in each
# version; every version is logged (one JSON line) before it is renamed into
# place, as a study export replaces its file
python3 - "$d/q.json" "$tmp/versions.jsonl" "$tmp/stop" <<'PY' &
import json, os, random, sys, time
path, log, stop = sys.argv[1], sys.argv[2], sys.argv[3]
rnd = random.Random(7)
syms = ["S%03d" % i for i in range(200)]
keys = ["p", "b", "a", "v", "hi", "lo"]
cur = {s: {k: round(rnd.uniform(10, 1000), 2) for k in keys} for s in syms}
end = time.monotonic() + 100  # until told to stop
seq = 0
with open(log, "w") as lf:
    while time.monotonic() < end and not os.path.exists(stop):
        seq += 1
        for s in syms:
            for k in keys:
                if rnd.random() < 0.5:
                    cur[s][k] = round(cur[s][k] + rnd.uniform(-1, 1), 2)
        doc = {"seq": seq, "ts": 1757683800000000000 + seq * 1000000, "symbols": cur}
        text = json.dumps(doc, separators=(",", ":"))
        lf.write(text + "\n")
        lf.flush()
        with open(path + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(path + ".tmp", path)
        time.sleep(0.005)
PY
wp=$!
pids+=($wp)
# kill -9 at random moments for $secs seconds, and on (up to 3x as long)
# until at least 3 kills landed while a version was being published: a
# restart that found, in the ring, records the state file does not count
# ("symbol K" short of all, 65535)
mid() { grep "resuming after seq" "$tmp/err" 2>/dev/null | grep "from the output ring" | grep -vc "symbol 65535 "; }
t_end=$((SECONDS + secs))
t_max=$((SECONDS + 3 * secs))
(
	while [ $SECONDS -lt $t_end ] || { [ "$(mid)" -lt 3 ] && [ $SECONDS -lt $t_max ]; }; do
		sleep 0.2
	done
	touch "$tmp/stop" # the writer ends, and with it the kills
) &
pids+=($!)
kill9_loop $wp "$tmp/err" "$bin/mdb-watch" --state "$tmp/state" -o ring:ticks "$d"
wait $wp || fail "the snapshot writer failed"
[ "$(mid)" -ge 3 ] || fail "only $(mid) of $kills kills landed while a version was being published"
last=$(tail -n 1 "$tmp/versions.jsonl" | grep -o '"seq":[0-9]*' | cut -d: -f2)
[ "${last:-0}" -gt 100 ] || fail "the writer made only ${last:-0} versions"
start "$bin/mdb-watch" --state "$tmp/state" -o ring:ticks "$d" 2>>"$tmp/err"
# until the last version is downstream (its records carry off = seq << 16 | i)
deadline=$((SECONDS + 30))
until tail -n 300 "$tmp/out.jsonl" | grep -q "\"off\":$((last * 65536 + 1))[0-9]*,"; do
	[ $SECONDS -lt $deadline ] || break
	sleep 0.1
done
sleep 0.5

python3 - "$tmp/versions.jsonl" "$tmp/out.jsonl" <<'PY' || fail "downstream is not each field change exactly once (after $kills kills)"
import json, sys
versions = {}
for line in open(sys.argv[1]):
    v = json.loads(line)
    versions[v["seq"]] = v["symbols"]
meta = {"t", "s", "ts", "n", "src", "off", "fid"}
down, lastseq, partial, n = {}, {}, set(), 0
for line in open(sys.argv[2]):
    r = json.loads(line)
    s, seq, pos = r["s"], r["off"] >> 16, r["off"] & 0xFFFF
    got = {k: v for k, v in r.items() if k not in meta}
    have = down.setdefault(s, {})
    want = {k: v for k, v in versions[seq][s].items() if have.get(k) != v}
    if got != want or not got:
        print("record %d (%s, seq %d): sent %s, changed since the last sent: %s"
              % (n + 1, s, seq, sorted(got.items()), sorted(want.items())), file=sys.stderr)
        sys.exit(1)
    if seq < lastseq.get(s, 0):
        print("record %d (%s): seq %d after %d" % (n + 1, s, seq, lastseq[s]), file=sys.stderr)
        sys.exit(1)
    lastseq[s] = seq
    have.update(got)
    n += 1
final = versions[max(versions)]
for s, fields in final.items():
    if down.get(s) != fields:
        print("%s: downstream ends with %s, the last version has %s" % (s, down.get(s), fields),
              file=sys.stderr)
        sys.exit(1)
print("%d records, %d versions written" % (n, len(versions)), file=sys.stderr)
PY
! grep -q "sent in full" "$tmp/err" || fail "a saved base did not load: $(grep -m1 'sent in full' "$tmp/err")"
pass "$last versions of 200 symbols, mdb-watch killed -9 $kills times ($(mid) during a version's publication): every field change downstream exactly once"

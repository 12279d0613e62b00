#!/bin/bash
# mdb-watch on JSON snapshot files replaced by rename: per symbol, only the
# fields that changed since the version before; garbage is reported and the
# last good values kept; a version already published is not published again
# after a restart; a snapshot deleted and made again; mdb-sim --snapshot.
. "$(dirname "$0")/lib.sh"

d=$tmp/d
mkdir -p "$d"
# put SEQ BODY: replace d/q.json atomically, as a study export does
put() { printf '{"seq":%s,"ts":1757683800000000000,"symbols":{%s}}\n' "$1" "$2" >"$d/q.json.tmp"; mv "$d/q.json.tmp" "$d/q.json"; }
strip() { sed 's/,"off":[0-9]*,"fid":[0-9]*}$/}/'; }
printf 'NQU25-CME NQ\n' >"$tmp/map"
put 1 '"ES":{"p":6600.25,"b":6600,"a":6600.25,"v":10},"NQU25-CME":{"ts":1757683801000000000,"p":23000.5,"v":3}'
watch() { start "$bin/mdb-watch" --json --symbols "$tmp/map" --state "$tmp/state" "$d" >>"$tmp/out.jsonl" 2>>"$tmp/err"; }
watch
wp=$!
wait_lines "$tmp/out.jsonl" 2
cat >"$tmp/want" <<'W'
{"t":"tick","s":"ES","ts":1757683800000000000,"p":6600.25,"v":10.0,"b":6600.0,"a":6600.25,"n":0,"src":"snap"}
{"t":"tick","s":"NQ","ts":1757683801000000000,"p":23000.5,"v":3.0,"n":0,"src":"snap"}
W
strip <"$tmp/out.jsonl" | cmp -s - "$tmp/want" || fail "first snapshot: $(cat "$tmp/out.jsonl")"
pass "the first snapshot in full, symbols mapped"

put 2 '"ES":{"p":6600.25,"b":6600.25,"a":6600.5,"v":10,"hi":6610},"NQU25-CME":{"ts":1757683801000000000,"p":23000.5,"v":3}'
wait_lines "$tmp/out.jsonl" 3
sleep 0.2
[ "$(wc -l <"$tmp/out.jsonl")" = 3 ] || fail "an unchanged symbol made a record"
tail -n 1 "$tmp/out.jsonl" | strip | grep -qx '{"t":"tick","s":"ES","ts":1757683800000000000,"b":6600.25,"a":6600.5,"n":0,"src":"snap","hi":6610.0}' ||
	fail "delta: $(tail -n 1 "$tmp/out.jsonl")"
pass "a new version: only the changed fields, new fields included"

printf '{"seq":3,"symbols":{"ES":{"p":1' >"$d/q.json.tmp"; mv "$d/q.json.tmp" "$d/q.json"
sleep 0.3
put 4 '"ES":{"p":6601,"b":6600.25,"a":6600.5,"v":12,"hi":6610}'
wait_lines "$tmp/out.jsonl" 4
grep -q "q.json: offset [0-9]*: " "$tmp/err" || fail "no error naming the bad snapshot and its offset"
tail -n 1 "$tmp/out.jsonl" | strip | grep -qx '{"t":"tick","s":"ES","ts":1757683800000000000,"p":6601.0,"v":12.0,"n":0,"src":"snap"}' ||
	fail "after garbage: $(tail -n 1 "$tmp/out.jsonl")"
pass "a garbage version: an error with its offset, the last good values kept"

# a restart: the version published is not published again, and serves as
# the base of the next; a version made while stopped gives only what changed
# (the values sent are kept across a restart, next to the state file)
kill $wp; wait $wp || fail "mdb-watch did not exit 0"
watch
wp=$!
sleep 0.5
[ "$(wc -l <"$tmp/out.jsonl")" = 4 ] || fail "a restart published seq 4 again"
put 5 '"ES":{"p":6601,"b":6600.25,"a":6600.75,"v":12,"hi":6610}'
wait_lines "$tmp/out.jsonl" 5
tail -n 1 "$tmp/out.jsonl" | strip | grep -qx '{"t":"tick","s":"ES","ts":1757683800000000000,"a":6600.75,"n":0,"src":"snap"}' ||
	fail "after a restart: $(tail -n 1 "$tmp/out.jsonl")"
kill $wp; wait $wp || fail "mdb-watch did not exit 0"
put 6 '"ES":{"p":6601,"b":6600.25,"a":6600.75,"v":13,"hi":6610}'
watch
wp=$!
wait_lines "$tmp/out.jsonl" 6
tail -n 1 "$tmp/out.jsonl" | grep -q '^{"t":"tick","s":"ES","ts":1757683800000000000,"v":13.0,"n":0,"src":"snap","off":393217,' ||
	fail "a version made while stopped: $(tail -n 1 "$tmp/out.jsonl") (only v changed; off must be seq << 16 | 1)"
pass "a restart repeats no version"

# deleted, then made again (a new writer, seq starting over); mdb-sim writes one
rm "$d/q.json"
sleep 0.2
put 1 '"CL":{"p":60.5}'
wait_lines "$tmp/out.jsonl" 7
tail -n 1 "$tmp/out.jsonl" | strip | grep -qx '{"t":"tick","s":"CL","ts":1757683800000000000,"p":60.5,"n":0,"src":"snap"}' || fail "made again: $(tail -n 1 "$tmp/out.jsonl")"
"$bin/mdb-sim" -d "$tmp" -s GC -s SI -r 200 --flush-period 50ms --duration 400ms --snapshot "$d/sim.json" || fail "mdb-sim --snapshot"
sleep 0.3
s=$(grep -o '"seq":[0-9]*' "$d/sim.json" | cut -d: -f2)
[ "$s" -ge 4 ] || fail "mdb-sim wrote only $s versions"
p=$(grep -o '"GC":{[^}]*}' "$d/sim.json" | grep -o '"p":[0-9.]*' | cut -d: -f2)
grep '"s":"GC"' "$tmp/out.jsonl" | grep '"p":' | tail -n 1 | grep -q "\"p\":$p" || fail "GC's last price $p is not the last one published"
[ ! -e "$d/sim.json.tmp" ] || fail "mdb-sim left its temporary file"
kill -0 $wp || fail "mdb-watch died"
pass "a snapshot deleted and made again; mdb-sim's snapshots followed to the last price"

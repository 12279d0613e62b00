#!/bin/bash
# Circuit breaker scope: one ticker a source does not know (the API's own
# "unknown symbol" answer) counts against that (source, symbol) only. The
# bad symbol falls back to its next source and is set aside at the first
# for a cool-down; the good symbols keep using the first source, whose
# breaker stays closed; the counters say so. For Yahoo (an HTTP 404 with
# chart.error) and Twelve Data (code 400 inside an HTTP 200).
. "$(dirname "$0")/lib.sh"
. "$here/fetch_lib.sh"

run=3
for type in yahoo twelvedata; do
	m=m-$type s=s-$type
	cat >"$tmp/$type.conf" <<CONF
source $m type=$type url=$api/$m key=FETCH_TEST_KEY priority=1 failures=2 cooldown=2s
source $s type=polygon url=$api/$s key=FETCH_TEST_KEY priority=2
symbols AA BB BAD CC DD
CONF
	curl -sf "$api/_unknown/$m/BAD" >/dev/null || fail "cannot mark BAD unknown"
	start "$bin/mdb-fetch" -c "$tmp/$type.conf" --json --cadence 0.2s --lookback 5m \
		>"$tmp/$type.jsonl" 2>"$tmp/$type.err"
	fpid=$!
	t0=$(date +%s%N)
	sleep $run
	read -r -d '' symerr err br all < <(counters "$m.symbol_errors" "$m.errors" "$m.breaker" symbol_errors)
	kill $fpid; wait $fpid
	secs=$((($(date +%s%N) - t0) / 1000000000 + 1))
	e=$tmp/$type.err
	grep -q "source $m: BAD: .*(this symbol only)" "$e" || fail "$type: no per-symbol error logged: $(cat "$e")"
	grep -q "source $m: BAD: symbol breaker closed -> open" "$e" || fail "$type: BAD not set aside: $(cat "$e")"
	grep -q "source $m: circuit breaker" "$e" && fail "$type: the source's breaker moved: $(grep breaker "$e")"
	grep -Eq "source $m: (AA|BB|CC|DD):" "$e" && fail "$type: a good symbol had an error: $(cat "$e")"
	[ "$symerr" -ge 2 ] && [ "$symerr" = "$all" ] || fail "$type: $m.symbol_errors $symerr, symbol_errors $all"
	[ "$err" = 0 ] && [ "$br" = 0 ] || fail "$type: $m.errors $err, $m.breaker $br (0 closed)"
	check_bars "$tmp/$type.jsonl" >"$tmp/$type.counts"
	for sym in AA BB CC DD; do
		grep -q "^$sym $m " "$tmp/$type.counts" || fail "$type: $sym has no bars from $m: $(cat "$tmp/$type.counts")"
		grep -q "^$sym $s " "$tmp/$type.counts" && fail "$type: $sym fell back: $(cat "$tmp/$type.counts")"
	done
	grep -q "^BAD $s " "$tmp/$type.counts" || fail "$type: BAD got no bars from $s: $(cat "$tmp/$type.counts")"
	grep -q "^BAD $m " "$tmp/$type.counts" && fail "$type: BAD has bars from $m"
	tickers $m >"$tmp/$type.tickers"
	bad=$(awk '$1 == "BAD" {print $2}' "$tmp/$type.tickers")
	good=$(awk '$1 == "AA" {print $2}' "$tmp/$type.tickers")
	# 2 failures open BAD's breaker at $m; then one probe per 2 s cool-down
	[ "$bad" -le $((3 + secs / 2)) ] || fail "$type: BAD asked of $m $bad times in $secs s"
	[ "$good" -ge 5 ] && [ "$good" -gt "$bad" ] || fail "$type: AA asked of $m only $good times (BAD $bad)"
	[ "$(tickers $s | awk '$1 != "BAD" {n += $2} END {print n + 0}')" = 0 ] ||
		fail "$type: good symbols asked of $s: $(tickers $s)"
	pass "$type: unknown ticker: $m.symbol_errors $symerr, $m.errors 0, breaker closed; BAD asked of $m $bad times (AA $good), served by $s; the others stay on $m"
done

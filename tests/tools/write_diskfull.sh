#!/bin/bash
# mdb-write on a disk that fills up while bars keep arriving through a ring:
# it says so clearly, keeps running and drops nothing (it is a durable
# consumer: the ring holds what is not committed); once space is freed it
# catches up, and the database then holds exactly the input.
#
# The disk is a small tmpfs mounted in a private mount namespace: the test
# runs itself again under unshare(1) (as root, or as root of a new user
# namespace), so the mount is gone when it ends.
if [ -z "${MDB_DISKFULL_NS:-}" ]; then
	userns=
	[ "$(id -u)" = 0 ] || userns=-r
	MDB_DISKFULL_NS=1 exec unshare $userns -m --propagation private /bin/bash "$0" "$@"
	echo "$(basename "$0"): FAIL: unshare -m $userns: cannot make a mount namespace" >&2
	exit 1
fi
. "$(dirname "$0")/lib.sh"

disk=$(mktemp -d) || fail "mktemp"
# lib.sh's cleanup ends the processes that hold files there, then it goes
trap 'cleanup; umount "$disk"; rmdir "$disk"' EXIT
mount -t tmpfs -o size=8m mdb-diskfull "$disk" || fail "mount a tmpfs in the namespace"
db=$disk/h.db
n=24000	   # bars: 4 symbols x 6000 minutes
chunk=2000 # fed at a time, every 0.2 s

# bars K..K+N-1 as JSON lines: bar i is symbol S<i % 4>, minute i / 4, c = i
bars()
{
	awk -v k="$1" -v n="$2" 'BEGIN { for (i = k; i < k + n; i++)
		printf "{\"t\":\"bar\",\"s\":\"S%d\",\"ts\":%d000000000,\"iv\":60,\"o\":1.0,\"h\":%d.5,\"l\":0.5,\"c\":%d.0,\"v\":%d.0,\"n\":%d,\"f\":1}\n",
			i % 4, 1700000000 + int(i / 4) * 60, i, i, i % 1000, i }'
}
# the rows the database must hold, as sqlite3 prints the query below
expect()
{
	awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
		printf "S%d|60|%d000000000|%d.5|%d.0|%d\n", i % 4, 1700000000 + int(i / 4) * 60, i, i, i }' |
		sort -t'|' -k1,1 -k3,3n
}
rows()
{
	sqlite3 "$db" "SELECT count(*) FROM bars" 2>/dev/null
}

"$bin/mdb-ring" create -s 16M bars || fail "create the ring"
start "$bin/mdb-write" -i ring:bars --batch-rows 1000 --batch-time 50ms --retention 0 "$db" \
	2>"$tmp/log"
w=$!
for _ in $(seq 100); do
	"$bin/mdb-ring" stat bars | grep -q 'mdb-write .* alive' && break
	sleep 0.05
done
"$bin/mdb-ring" stat bars | grep -q 'mdb-write .* alive' || fail "mdb-write never joined"
# leave about 1 MiB: room for the first few thousand bars, not for all
avail=$(df -k --output=avail "$disk" | tail -1)
head -c $(((avail - 1024) * 1024)) /dev/zero >"$disk/filler" 2>/dev/null
[ "$(df -k --output=avail "$disk" | tail -1)" -lt 1100 ] || fail "the filler left too much room"

# the feed: a chunk every 0.2 s, whatever the writer is doing
(
	for ((k = 0; k < n; k += chunk)); do
		bars $k $chunk | "$bin/mdb-pipe" --json-in -o ring:bars || exit 1
		sleep 0.2
	done
) &
feeder=$!
pids+=($feeder)

# the disk fills: a clear message, the writer keeps running and retrying
deadline=$((SECONDS + 30))
until grep -q 'full (free disk space, or raise --max-size); retrying in' "$tmp/log"; do
	[ $SECONDS -lt $deadline ] || fail "no clear message in 30 s: $(cat "$tmp/log")"
	sleep 0.1
done
wait "$feeder" || fail "the feed failed"
sleep 1
kill -0 "$w" || fail "mdb-write gave up on a full disk: $(cat "$tmp/log")"
stuck=$(rows)
[ "${stuck:-0}" -gt 0 ] && [ "$stuck" -lt $n ] || fail "$stuck of $n bars in while the disk was full"
retries=$(grep -c 'full (free disk space' "$tmp/log")
[ "$retries" -ge 2 ] || fail "it tried $retries time(s) in 1 s of a full disk"
sleep 1
[ "$(rows)" = "$stuck" ] || fail "rows went in on a full disk: $stuck, then $(rows)"

# space comes back: it catches up by itself
rm "$disk/filler"
deadline=$((SECONDS + 30))
while [ "$(rows)" != $n ]; do
	[ $SECONDS -lt $deadline ] || fail "$(rows) of $n bars 30 s after the space came back: $(tail -3 "$tmp/log")"
	sleep 0.2
done
kill "$w"
wait "$w" || fail "mdb-write exited $? after SIGTERM"
sqlite3 "$db" "SELECT symbol, iv, ts, h, c, n FROM bars ORDER BY symbol, ts" >"$tmp/got" ||
	fail "sqlite3"
expect $n >"$tmp/want"
cmp -s "$tmp/got" "$tmp/want" ||
	fail "the database is not the input: $(diff "$tmp/want" "$tmp/got" | head -5)"
[ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] || fail "integrity check"
[ -n "${V:-}" ] && cat "$tmp/log"
pass "disk full at $stuck of $n bars: logged $retries times, retried, nothing dropped; after space came back the database holds exactly the input"

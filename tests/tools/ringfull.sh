#!/bin/bash
# The ring directory is full (a small tmpfs in a private mount namespace as
# MDB_SHM_DIR): making a ring fails at once with a clear error and exit 1,
# never a SIGBUS at some later record, and leaves no file behind; a stage
# that failed so keeps its durable slot upstream, so once space is freed
# its restart delivers every record, in order, none lost.
if [ -z "${RINGFULL_NS:-}" ]; then
	RINGFULL_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"

lib_shm=$MDB_SHM_DIR
shm=$tmp/shm
mkdir "$shm" && mount -t tmpfs -o size=6m,mode=0700 tmpfs "$shm" || fail "mount tmpfs"
cleanup_full()
{
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	pids=()
	umount "$shm"
	MDB_SHM_DIR=$lib_shm
	cleanup
}
trap cleanup_full EXIT
trap 'exit 1' TERM INT
export MDB_SHM_DIR=$shm

n=30000 # about 3.3 MB of records: more than the free space left below
[ -n "${MDB_SANITIZE:-}" ] && n=20000
python3 - "$n" >"$tmp/in.jsonl" <<'PY' || fail "generator"
import json, sys
for i in range(int(sys.argv[1])):
    print(json.dumps({"t": "bar", "s": "ES" if i % 2 else "NQ", "ts": 1757683800000000000 + i * 10**9,
                      "iv": 1, "o": 100.25, "h": 101.5, "l": 99.75, "c": 100.5 + i % 7, "v": i,
                      "n": 3, "f": 1}))
PY
# the canonical rendering, to compare with what comes out of the ring
"$bin/mdb-pipe" --json <"$tmp/in.jsonl" >"$tmp/want.jsonl" || fail "canonical JSON"

"$bin/mdb-ring" create -s 1M in || fail "a 1 MiB ring in an empty 6 MiB directory"
# take all but about 2 MiB
avail=$(df -k --output=avail "$shm" | tail -1)
fallocate -l $(((avail - 2048) * 1024)) "$shm/filler" || fail "filler"

# 1. a 4 MiB output ring does not fit: exit 1 at once, a clear message
# (a stage that does start runs until stopped: the timeout ends it, 124)
timeout 10 "$bin/mdb-pipe" -i ring:in -o ring:out --ring-size 4M 2>"$tmp/err1" </dev/null
rc=$?
[ $rc = 1 ] || fail "creating a ring in a full directory: exit $rc (wanted 1; 135 is SIGBUS): $(cat "$tmp/err1")"
grep -q "ring:out: cannot create a ring of 4194304 bytes in $shm: No space left on device" "$tmp/err1" ||
	fail "unclear error: $(cat "$tmp/err1")"
ls "$shm" | grep -q '^out' && fail "a failed creation left a file: $(ls "$shm")"
pass "no room for the ring: exit 1, '$(head -1 "$tmp/err1")'"

# 2. with the directory completely full even the header page must not fault
fallocate -l $(($(df -k --output=avail "$shm" | tail -1) * 1024)) "$shm/filler2" || fail "filler2"
"$bin/mdb-ring" create -s 64K tiny 2>"$tmp/err2"
rc=$?
[ $rc = 1 ] && grep -q "No space left on device" "$tmp/err2" ||
	fail "creating a 64 KiB ring in a full directory: exit $rc: $(cat "$tmp/err2")"
[ -e "$shm/tiny.ring" ] && fail "a failed creation left tiny.ring"
rm -f "$shm/filler2"
pass "directory completely full: exit 1, no file left"

# 3. the records arrive meanwhile: the failed stage's durable slot holds
# them in ring:in (its 1 MiB holds a third of them; the feeder waits)
"$bin/mdb-ring" stat in | grep -q 'mdb-pipe' || fail "the failed stage left no slot in ring:in"
"$bin/mdb-pipe" --json-in -o ring:in <"$tmp/in.jsonl" &
feeder=$!
pids+=($feeder)
sleep 1
kill -0 $feeder 2>/dev/null || fail "the feeder was not held back by the failed stage's slot"

# 4. space is freed: the stage's restart creates its ring and catches up
rm -f "$shm/filler"
start "$bin/mdb-pipe" -i ring:in -o ring:out --ring-size 4M 2>"$tmp/err3"
stage=$!
wait $feeder || fail "feeder: exit $?"
deadline=$((SECONDS + 30))
while :; do
	"$bin/mdb-tap" --from start ring:out >"$tmp/got.jsonl" 2>/dev/null
	[ "$(wc -l <"$tmp/got.jsonl")" -ge "$n" ] && break
	[ $SECONDS -lt $deadline ] || fail "ring:out holds $(wc -l <"$tmp/got.jsonl") of $n records"
	sleep 0.2
done
kill -0 $stage 2>/dev/null || fail "the restarted stage died: $(cat "$tmp/err3")"
cmp -s "$tmp/want.jsonl" "$tmp/got.jsonl" || {
	diff "$tmp/want.jsonl" "$tmp/got.jsonl" | head -5 >&2
	fail "ring:out differs from what was fed"
}
pass "space freed: the restarted stage delivered all $n records in order, none lost"

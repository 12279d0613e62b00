#!/bin/bash
# demo_clone.sh BUILD_DIR - tool test: scripts/demo run from a fresh clone of
# the source tree serves the dashboard and data within a minute.
#
# The source tree ($MDB_SOURCE_DIR) is cloned with git into a scratch
# directory, and the working versions of its files (tracked, and untracked
# but not ignored: what a commit of the tree would hold) are copied over the
# clone. Its scripts/demo then installs what is missing (nothing, in CI),
# builds into the clone's own build/ and starts the pipeline; timed from the
# start until GET / answers 200 with the dashboard and GET /api/snapshot
# serves a bar. Then Ctrl-C (SIGINT): the demo ends 0 and leaves no process,
# ring or file behind. In a sanitizer build (MDB_SANITIZE set) the clone's
# demo runs BUILD_DIR's tools (--bin) instead of building its own.
# shellcheck source=tests/tools/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/tools/demo_lib.sh
. "$here/demo_lib.sh"

src=${MDB_SOURCE_DIR:-$here/../..}
limit=60
clone=$tmp/clone
git() { command git -c safe.directory='*' "$@"; }
git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || fail "$src is not a git checkout"
git clone -q "$src" "$clone" 2>"$tmp/clone.err" || fail "git clone $src: $(cat "$tmp/clone.err")"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -C "$clone" -xf - || fail "copying the working tree"
[ -x "$clone/scripts/demo" ] || fail "no scripts/demo in the clone"

port=$((20000 + RANDOM % 20000))
args=(--port "$port")
how="builds the clone into its own build/"
if [ -n "${MDB_SANITIZE:-}" ]; then
	args+=(--bin "$bin")
	how="runs $bin's tools (sanitizer build: no build of its own)"
fi
echo "# the clone's scripts/demo $how"
ms() { echo $(($(date +%s%N) / 1000000)); }
t0=$(ms)
# In a process group of its own: a test that fails during the build stops
# the build too (the demo's trap runs only once its ninja has finished).
demo_run clone setsid env -u MDB_BUILD_DIR "$clone/scripts/demo" "${args[@]}"
trap '[ -n "${demo_pid:-}" ] && kill -TERM -- "-$demo_pid" 2>/dev/null; cleanup' EXIT

# until the dashboard and a snapshot with a bar are served, or the limit
built=0 dash=0 data=0
while :; do
	kill -0 $demo_pid 2>/dev/null || fail "the demo ended: $(tail -n 20 "$tmp/clone.out")"
	elapsed=$(($(ms) - t0))
	[ $elapsed -lt $((limit * 1000)) ] ||
		fail "built at $built ms, dashboard at $dash ms, data at $data ms (0: not yet) after ${limit} s, load average $(cut -d' ' -f1-3 /proc/loadavg): $(tail -n 20 "$tmp/clone.out")"
	[ $built = 0 ] && grep -q '^== rings live in' "$tmp/clone.out" && built=$elapsed
	if [ $dash = 0 ] && [ "$(http_get "$port" / "$tmp/index.html")" = 200 ] &&
		grep -qi '<html' "$tmp/index.html"; then
		dash=$elapsed
	fi
	if [ $data = 0 ] && [ "$(http_get "$port" /api/snapshot "$tmp/snap.json")" = 200 ] &&
		grep -q '"c":' "$tmp/snap.json"; then
		data=$elapsed
	fi
	[ $dash != 0 ] && [ $data != 0 ] && break
	sleep 0.2
done
grep -q '"s":"\(ES\|NQ\)"' "$tmp/snap.json" || fail "snapshot without ES or NQ: $(head -c 300 "$tmp/snap.json")"
sec() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }
pass "from a fresh clone: pipeline starting after $(sec $built) s, dashboard after $(sec $dash) s, data after $(sec $data) s (limit $limit s; load average $(cut -d' ' -f1-3 /proc/loadavg))"

demo_running clone 20
kill -INT $demo_pid
demo_finished clone

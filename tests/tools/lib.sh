# lib.sh - shared by the tool tests: a private ring directory, cleanup of
# every process the test started, and failure reporting.
# Source it after setting nothing; it reads the build directory from $1.
set -u
build=${1:?usage: $0 BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
data=$here/../data
bin=$build/tools
MDB_SHM_DIR=$(mktemp -d /dev/shm/mdb-tooltest.XXXXXX) || exit 1
export MDB_SHM_DIR
tmp=$(mktemp -d) || exit 1
pids=()

cleanup()
{
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$MDB_SHM_DIR" "$tmp"
}
trap cleanup EXIT

fail()
{
	echo "$(basename "$0"): FAIL: $*" >&2
	exit 1
}

pass()
{
	echo "ok - $*"
}

# start CMD...: run in the background, remembered for cleanup; $! is its pid.
# (Its stdin is /dev/null: a redirect on the start call does not reach it.)
start()
{
	"$@" &
	pids+=($!)
}

# wait_lines FILE N [SECONDS]: until FILE has N lines, or fail
wait_lines()
{
	local deadline=$((SECONDS + ${3:-10}))
	while [ "$(wc -l <"$1" 2>/dev/null || echo 0)" -lt "$2" ]; do
		[ $SECONDS -lt $deadline ] || fail "$1: $(wc -l <"$1") lines, wanted $2"
		sleep 0.05
	done
}

# kill9_loop PID ERRFILE CMD...: while PID lives, start CMD (stderr appended
# to ERRFILE) and SIGKILL it 0-0.29 s later, again and again; $kills counts.
kill9_loop()
{
	local live=$1 errf=$2 p
	shift 2
	kills=0
	while kill -0 "$live" 2>/dev/null; do
		"$@" 2>>"$errf" &
		p=$!
		sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
		kill -9 $p
		wait $p 2>/dev/null
		kills=$((kills + 1))
	done
}

# sym_out GOT SYM: the records of SYM in mdb-watch's JSON output GOT, less
# the off/fid keys it adds
sym_out()
{
	grep "\"s\":\"$2\"" "$1" | sed 's/,"off":[0-9]*,"fid":[0-9]*}$/}/'
}

# same_symbol SYM GOT WANT: the records of SYM in GOT (as sym_out) equal
# those in WANT line by line, or fail showing the first differences
same_symbol()
{
	sym_out "$2" "$1" >"$tmp/a"
	grep "\"s\":\"$1\"" "$3" >"$tmp/b"
	cmp -s "$tmp/a" "$tmp/b" || {
		diff "$tmp/a" "$tmp/b" | head -5 >&2
		fail "$1: $(wc -l <"$tmp/a") records downstream, $(wc -l <"$tmp/b") written${kills:+, after $kills kills}"
	}
}

# same_per_symbol GOT WANT SYM...: same_symbol for each SYM, and GOT holds
# as many records as WANT
same_per_symbol()
{
	local got=$1 want=$2 s
	shift 2
	for s in "$@"; do
		same_symbol "$s" "$got" "$want"
	done
	[ "$(wc -l <"$got")" = "$(wc -l <"$want")" ] ||
		fail "$(wc -l <"$got") records downstream, $(wc -l <"$want") written"
}

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

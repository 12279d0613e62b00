#!/bin/bash
# mdb-stat.sh BUILD_DIR - tool test: runs the real mdb-stat against real
# counters owners (tests/counters_helper) in a private MDB_SHM_DIR.
# Exits 0 when every check passes, 1 with a message at the first failure.
# shellcheck source=tests/tools/lib.sh
. "$(dirname "$0")/lib.sh"

stat=$bin/mdb-stat
helper=${COUNTERS_HELPER:-$build/tests/counters_helper}
man=$here/../../man/mdb-stat.1.scd
out=$tmp

# reap PID: SIGKILL a helper and wait for it, without bash's "Killed" notice
reap()
{
	{
		kill -9 "$1"
		wait "$1"
	} 2>/dev/null
}

# fail_out MESSAGE: fail, showing what the last run printed
fail_out()
{
	for f in "$out"/stdout "$out"/stderr; do
		[ -s "$f" ] && { echo "--- $(basename "$f"):" >&2; cat "$f" >&2; }
	done
	fail "$@"
}

# run ARGS...: run mdb-stat, leave stdout/stderr in files and status in $rc
run()
{
	"$stat" "$@" >"$out/stdout" 2>"$out/stderr"
	rc=$?
}

expect_rc()
{
	[ "$rc" -eq "$1" ] || fail_out "mdb-stat ${*:2}: exit $rc, expected $1"
}

has()
{
	grep -Eq -- "$1" "$out/stdout" || fail_out "stdout lacks /$1/"
}

hasnt()
{
	! grep -Eq -- "$1" "$out/stdout" || fail_out "stdout has /$1/"
}

# start_owner TOOL LABEL [NAME=VALUE...]: a live counters owner; sets $owner
start_owner()
{
	local ready=$out/ready.$#.$RANDOM
	start "$helper" "$@" >"$ready"
	owner=$!
	wait_lines "$ready" 1 5
}

[ -x "$stat" ] || fail_out "no $stat"
[ -x "$helper" ] || fail_out "no $helper"

# --- options and usage
run -h
expect_rc 0 -h
has '^usage: mdb-stat '
[ -s "$out/stderr" ] && fail_out "-h wrote to stderr"
usage=$(sed -n -e 's/^usage: //p' -e 's/^ \{7\}\(mdb-stat\)/\1/p' "$out/stdout")

run --help
expect_rc 0 --help

run -V
expect_rc 0 -V
has '^mdb-stat [0-9]'

for bad in --bogus -x "-w" "-w 0" "-w soon" "-n 0" "-n x" "--gc -a" "--gc -w 1" "extra"; do
	# shellcheck disable=SC2086
	run $bad
	expect_rc 2 "$bad"
	[ -s "$out/stdout" ] && fail_out "mdb-stat $bad wrote to stdout"
	[ -s "$out/stderr" ] || fail_out "mdb-stat $bad said nothing on stderr"
done
run --bogus
grep -q '^usage: mdb-stat ' "$out/stderr" || fail_out "a bad option must print usage on stderr"

# the usage text and the man page SYNOPSIS say the same thing
if [ -r "$man" ]; then
	synopsis=$(sed -n '/^# SYNOPSIS/,/^# /{/^# /d;/^$/d;p}' "$man" | sed 's/[*_]//g')
	[ "$usage" = "$synopsis" ] ||
		fail_out "usage and SYNOPSIS differ:"$'\n'"$usage"$'\n---\n'"$synopsis"
fi

# --- nothing to show
run
expect_rc 0 "(no processes)"
[ -s "$out/stdout" ] && fail_out "no processes must print nothing"
run --json -a
expect_rc 0 --json -a
[ -s "$out/stdout" ] && fail_out "no processes must print nothing (--json -a)"
run --gc
expect_rc 0 --gc
has '^removed 0$'

# --- one live owner, one dead one
start_owner mdb-helper feedA in=42 out=7
a=$owner
start_owner mdb-helper feedB in=5
b=$owner
reap "$b"

run
expect_rc 0 "(live)"
has "^mdb-helper\\[$a\\] feedA alive started [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\$"
has '^  in +42$'
has '^  out +7$'
has '^  ticks +[0-9]+$'
hasnt "mdb-helper\\[$b\\]"
hasnt '/s$'

run -a
expect_rc 0 -a
has "^mdb-helper\\[$a\\] feedA alive "
has "^mdb-helper\\[$b\\] feedB gone "
[ "$(grep -c '^mdb-helper' "$out/stdout")" -eq 2 ] || fail_out "-a must list two processes"
# sorted by pid within a tool
first=$(grep -o '^mdb-helper\[[0-9]*\]' "$out/stdout" | head -1 | tr -dc 0-9)
[ "$first" -eq $((a < b ? a : b)) ] || fail_out "-a is not sorted by pid"

run --json -a
expect_rc 0 --json -a
[ "$(wc -l <"$out/stdout")" -eq 2 ] || fail_out "--json -a must print one line per process"
has "^\\{\"tool\":\"mdb-helper\",\"pid\":$a,\"label\":\"feedA\",\"alive\":true,.*\"counters\":\\{\"in\":42,\"out\":7,\"ticks\":[0-9]+\\}\\}\$"
has "^\\{\"tool\":\"mdb-helper\",\"pid\":$b,\"label\":\"feedB\",\"alive\":false,.*\"counters\":\\{\"in\":5,\"ticks\":[0-9]+\\}\\}\$"
if command -v jq >/dev/null; then
	jq -e . "$out/stdout" >/dev/null || fail_out "--json output is not JSON"
fi

# --- refreshing: rates, blank line between refreshes, real waiting
t0=$(date +%s%N)
run --json -w 0.2 -n 3
t1=$(date +%s%N)
expect_rc 0 --json -w 0.2 -n 3
[ "$(wc -l <"$out/stdout")" -eq 3 ] || fail_out "-n 3 must print 3 refreshes of one process"
[ $(((t1 - t0) / 1000000)) -ge 350 ] || fail_out "-w 0.2 -n 3 returned after $(((t1 - t0) / 1000000)) ms"
[ "$(grep -c '"rates"' "$out/stdout")" -eq 2 ] || fail_out "refreshes after the first carry rates"
head -1 "$out/stdout" | grep -q '"rates"' && fail_out "the first refresh has no rates"
grep -Eq '"rates":\{"in":0\.000,"out":0\.000,"ticks":[1-9][0-9]*\.[0-9]+\}' "$out/stdout" ||
	fail_out "ticks must show a positive rate, in/out zero"

run -w 100ms -n 2
expect_rc 0 -w 100ms -n 2
[ "$(grep -c "^mdb-helper\\[$a\\]" "$out/stdout")" -eq 2 ] || fail_out "two refreshes expected"
[ "$(grep -c '^$' "$out/stdout")" -eq 1 ] || fail_out "refreshes are separated by one blank line"
has '^  ticks +[0-9]+  [0-9]+\.[0-9]/s$'
has '^  in +42  0\.0/s$'

# --- gc removes only the dead owner's file
run --gc
expect_rc 0 --gc
has '^removed 1$'
ls "$MDB_SHM_DIR"/stat/mdb-helper."$b".cnt >/dev/null 2>&1 && fail_out "--gc left $b's file"
ls "$MDB_SHM_DIR"/stat/mdb-helper."$a".cnt >/dev/null 2>&1 || fail_out "--gc removed live $a's file"
run -a
hasnt "mdb-helper\\[$b\\]"
has "^mdb-helper\\[$a\\] feedA alive "

# --- the live owner dies: hidden by default, gone with -a, then collected
reap "$a"
run
expect_rc 0 "(after kill)"
[ -s "$out/stdout" ] && fail_out "a dead owner must not show without -a"
run -a
has "^mdb-helper\\[$a\\] feedA gone "
run --gc --json
expect_rc 0 --gc --json
has '^\{"removed":1\}$'

# --- a broken counters directory is a runtime failure
rm -rf "$MDB_SHM_DIR/stat"
: >"$MDB_SHM_DIR/stat"
run -a
expect_rc 1 "(stat is a file)"
[ -s "$out/stderr" ] || fail_out "a runtime failure must say why"

echo "mdb-stat.sh: ok"

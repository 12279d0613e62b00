#!/bin/bash
# systemd_pid1.sh BUILD_DIR - tool test: the pipeline supervised by a real
# systemd. systemd runs as PID 1 of private pid, mount and cgroup namespaces
# (with private tmpfs on /tmp, /run, /var/tmp, /var/lib, /var/log and
# /dev/shm, and a private cgroup subtree, so nothing of the host is
# touched) with this build's units, tmpfiles.d and sysusers.d:
#   - mdb.target starts mdb-write, -feature, -validate, -watch and -ws,
#     running as user mdb with all their hardening;
#   - mdb-sim appends trades to .scid files; kill -9 of mdb-watch and then
#     of mdb-write is followed by systemd restarting each, and afterwards
#     SQLite holds every 1-second bar of the trades, complete (volume and
#     trade count equal the trades'), none twice;
#   - a stage that stops calling the watchdog (SIGSTOP) is restarted.
# The units are the configured ones with ExecStart= pointing at copies of
# the built tools; drop-ins only add the test's configuration, log files,
# a 3 s watchdog and DefaultDependencies=no (so nothing of the host's boot,
# sysinit.target and its services, is started).
# shellcheck source=tests/tools/lib.sh
. "$(dirname "$0")/lib.sh"

src=$(cd "$here/../.." && pwd)
[ "$(id -u)" -eq 0 ] || fail "needs root: systemd runs as PID 1 of a private namespace"
[ -x /lib/systemd/systemd ] || fail "no /lib/systemd/systemd"
out=$tmp/out
mkdir -p "$out"
sd= # systemd's pid, as seen from here

# The cgroup hierarchies mounted here: "MOUNTPOINT TYPE OPTIONS OURPATH".
python3 - >"$tmp/cgroups" <<'PY'
paths = {}
for l in open('/proc/self/cgroup'):
    _, ctrl, path = l.rstrip('\n').split(':', 2)
    paths[ctrl] = path
skip = {'rw', 'ro', 'relatime', 'nosuid', 'nodev', 'noexec', 'clone_children', 'xattr', 'nsdelegate',
        'memory_recursiveprot'}
for l in open('/proc/self/mountinfo'):
    pre, post = l.split(' - ', 1)
    mnt = pre.split()[4]
    fstype, _, sopts = post.split()[:3]
    if fstype == 'cgroup2' and '' in paths:
        print(mnt, fstype, '-', paths[''])
    elif fstype == 'cgroup':
        opts = [o for o in sopts.split(',') if o not in skip]
        for ctrl, path in paths.items():
            if ctrl and set(ctrl.split(',')) == set(opts):
                print(mnt, fstype, ','.join(opts), path)
PY
[ -s "$tmp/cgroups" ] || fail "no cgroup hierarchy found"
cgname=mdb-systemd-test.$$

# Remove what systemd left of our cgroup subtree (empty dirs, deepest first).
cg_cleanup()
{
	local mnt path
	while read -r mnt _ _ path; do
		[ -d "$mnt$path/$cgname" ] &&
			find "$mnt$path/$cgname" -depth -type d -exec rmdir {} + 2>/dev/null
	done <"$tmp/cgroups"
}
sd_cleanup()
{
	# the namespace's PID 1 (whatever it is by now): killing it ends the namespace
	[ -n "${outer:-}" ] && [ -z "$sd" ] && sd=$(ps -o pid= --ppid "$outer" 2>/dev/null | head -n 1)
	[ -n "$sd" ] && kill -9 $sd 2>/dev/null
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	sleep 0.2
	cg_cleanup
	cleanup
}
trap sd_cleanup EXIT

# inner.sh: PID 1 of the new namespaces, until it becomes systemd.
cat >"$tmp/inner.sh" <<'INNER'
set -e
build=$1 src=$2 out=$3 cgroups=$4
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/mdb-test/bin /run/mdb-test/out /run/mdb-test/root/etc /run/systemd/system
mount --bind "$out" /run/mdb-test/out
cp "$cgroups" /run/mdb-test/cgroups
# the source may be under /tmp, which is about to be a private tmpfs
cp "$src/systemd/mdb.tmpfiles" /run/mdb-test/mdb.tmpfiles
for t in "$build"/tools/mdb-*; do [ -f "$t" ] && [ -x "$t" ] && cp "$t" /run/mdb-test/bin/; done
for u in "$build"/systemd/*.service "$build"/systemd/mdb.target; do
	sed 's|^ExecStart=[^ ]*/\(mdb-[a-z]*\)|ExecStart=/run/mdb-test/bin/\1|' "$u" >"/run/systemd/system/${u##*/}"
done
for u in mdb-watch mdb-validate mdb-feature mdb-write mdb-ws; do
	mkdir -p "/run/systemd/system/$u.service.d"
	cat >"/run/systemd/system/$u.service.d/test.conf" <<DROPIN
[Unit]
DefaultDependencies=no
[Service]
EnvironmentFile=
EnvironmentFile=/run/mdb-test/mdb.conf
StandardOutput=append:/run/mdb-test/out/$u.log
StandardError=append:/run/mdb-test/out/$u.log
WatchdogSec=3s
RestartSec=300ms
LimitCORE=0
# in the sanitizer pass: LeakSanitizer stops the world with ptrace, which the
# units' hardening refuses; leaks are checked by the other tool tests
Environment=ASAN_OPTIONS=detect_leaks=0
# how each run ended, as systemd saw it: "RESULT CODE STATUS" per line
ExecStopPost=/bin/sh -c 'echo "\$SERVICE_RESULT \$EXIT_CODE \$EXIT_STATUS" >>/var/lib/mdb/$u.result'
DROPIN
done
# the shipped configuration, then the test's changes (a later line wins)
{
	cat "$src/systemd/mdb.conf"
	echo 'MDB_VALIDATE_OPTS="-i ring:ticks -o ring:bars -I 1s --from start"'
	echo 'MDB_WRITE_OPTS="-i ring:feat --batch-time 50ms /var/lib/mdb/mdb.sqlite"'
	echo 'MDB_WS_OPTS="-i ring:feat -l 127.0.0.1:0"'
} >/run/mdb-test/mdb.conf
# user mdb by the shipped sysusers.d, in copies of passwd and group
cp /etc/passwd /etc/group /etc/shadow /etc/gshadow /run/mdb-test/root/etc/
systemd-sysusers --root=/run/mdb-test/root "$src/systemd/mdb.sysusers" >/dev/null
mount --bind /run/mdb-test/root/etc/passwd /etc/passwd
mount --bind /run/mdb-test/root/etc/group /etc/group
for d in /tmp /var/tmp /var/lib /var/log /dev/shm; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
chmod 1777 /tmp /var/tmp /dev/shm
mount -t proc proc /proc
# the cgroup hierarchies again, rooted at our subtree (cgroup namespace)
mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
while read -r mnt type opts path; do
	mkdir -p "$mnt"
	if [ "$type" = cgroup2 ]; then mount -t cgroup2 cgroup2 "$mnt"
	else mount -t cgroup -o "$opts" cgroup "$mnt"; fi
done </run/mdb-test/cgroups
# the ring and data directories by the shipped tmpfiles.d (only those)
systemd-tmpfiles --create --prefix=/dev/shm --prefix=/var/lib /run/mdb-test/mdb.tmpfiles
install -d -o mdb -g mdb -m 0750 /var/lib/mdb/scid
export container=mdb-test
# its own log would go to the host's console: none (the stages log to files)
exec /lib/systemd/systemd --system --unit=mdb.target --log-target=null --show-status=no
INNER

# Into our own cgroup in every hierarchy, then the namespaces.
(
	while read -r mnt _ _ path; do
		d=$mnt$path/$cgname
		mkdir "$d" || exit 1
		if [ -f "$d/cpuset.cpus" ]; then
			cat "$mnt$path/cpuset.cpus" >"$d/cpuset.cpus"
			cat "$mnt$path/cpuset.mems" >"$d/cpuset.mems"
		fi
		echo $BASHPID >"$d/cgroup.procs" || exit 1
	done <"$tmp/cgroups"
	exec unshare --pid --mount --cgroup --fork --propagation private \
		bash "$tmp/inner.sh" "$build" "$src" "$out" "$tmp/cgroups"
) >"$tmp/systemd.log" 2>&1 &
pids+=($!)
outer=$!
# The subshell became unshare; its child is the namespace's PID 1.
deadline=$((SECONDS + 10))
while :; do
	sd=$(ps -o pid= --ppid $outer 2>/dev/null | head -n 1)
	sd=${sd// /}
	[ -n "$sd" ] && [ "$(cat "/proc/$sd/comm" 2>/dev/null)" = systemd ] && break
	kill -0 $outer 2>/dev/null || fail "systemd did not start: $(cat "$tmp/systemd.log")"
	[ $SECONDS -lt $deadline ] || fail "systemd did not start in 10 s: $(cat "$tmp/systemd.log")"
	sleep 0.1
done

# ns CMD...: run CMD inside the namespaces (as root)
ns() { nsenter -t "$sd" -m -p -- "$@"; }
# show UNIT PROP: a unit property's value
show() { ns systemctl show -P "$2" "$1"; }
# wait_for SECONDS WHAT CMD...: until CMD succeeds
wait_for()
{
	local deadline=$((SECONDS + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || fail "$what: $(tail -n 3 "$out"/mdb-*.log 2>/dev/null)"
		sleep 0.2
	done
}
stages="mdb-write mdb-feature mdb-validate mdb-watch mdb-ws"
all_active() { ns systemctl is-active --quiet $stages; }
wait_for 20 "mdb.target did not bring every stage up" all_active
for u in $stages; do
	[ "$(show "$u" User)" = mdb ] || fail "$u does not run as mdb"
done
pass "systemd as PID 1 started mdb.target: $stages active, user mdb"

# Trades for 6 s; kill -9 mdb-watch after 2 s and mdb-write after 4 s.
ns /run/mdb-test/bin/mdb-sim -d /var/lib/mdb/scid -s ES -s NQ -r 200 --flush-period 50ms \
	--duration 6 --start "$(date +%s)" --log /run/mdb-test/out/trades.jsonl &
pids+=($!)
sim=$!
restarted()
{
	[ "$(show "$1" NRestarts)" -ge 1 ] && ns systemctl is-active --quiet "$1"
}
sleep 2
old=$(show mdb-watch MainPID)
ns systemctl kill -s KILL mdb-watch
wait_for 10 "mdb-watch was not restarted after kill -9" restarted mdb-watch
[ "$(show mdb-watch MainPID)" != "$old" ] || fail "mdb-watch: same pid after restart"
ended() { ns tail -n 1 "/var/lib/mdb/$1.result" 2>/dev/null; }
[ "$(ended mdb-watch)" = "signal killed KILL" ] || fail "mdb-watch ended '$(ended mdb-watch)'"
pass "kill -9 mdb-watch: restarted by systemd"
sleep 2
ns systemctl kill -s KILL mdb-write
wait_for 10 "mdb-write was not restarted after kill -9" restarted mdb-write
[ "$(ended mdb-write)" = "signal killed KILL" ] || fail "mdb-write ended '$(ended mdb-write)'"
pass "kill -9 mdb-write: restarted by systemd"
wait $sim || fail "mdb-sim failed"

# Every second of trades is one bar in SQLite, with their volume and count.
check_db()
{
	ns sqlite3 -separator ' ' /var/lib/mdb/mdb.sqlite \
		'SELECT symbol, ts, v, n, f FROM bars WHERE iv = 1 ORDER BY symbol, ts' >"$tmp/bars" &&
		python3 - "$out/trades.jsonl" "$tmp/bars" >"$tmp/check" 2>&1 <<'PY'
import json, sys
want = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("t") != "tick":
        continue
    k = (r["s"], r["ts"] // 10**9 * 10**9)
    v, n = want.get(k, (0.0, 0))
    want[k] = (v + r["v"], n + r.get("n", 1))
got = {}
for line in open(sys.argv[2]):
    s, ts, v, n, f = line.split()
    got[(s, int(ts))] = (float(v), int(n), int(f))
bad = [k for k in want if k not in got or abs(got[k][0] - want[k][0]) > 1e-6 or got[k][1] != want[k][1]]
extra = [k for k in got if k not in want]
print(f"{len(want)} bars expected, {len(got)} in SQLite, {len(bad)} wrong or missing, {len(extra)} extra")
for k in sorted(bad)[:5]:
    print("  ", k, "want", want[k], "got", got.get(k))
sys.exit(1 if bad or extra or not want else 0)
PY
}
wait_for 15 "SQLite incomplete after the restarts: $(cat "$tmp/check" 2>/dev/null)" check_db
pass "SQLite after two kill -9: $(head -n 1 "$tmp/check")"

# A stage that stops calling the watchdog is killed and restarted.
before=$(show mdb-feature NRestarts)
old=$(show mdb-feature MainPID)
ns kill -STOP "$old"
feature_back()
{
	[ "$(show mdb-feature NRestarts)" -gt "$before" ] && ns systemctl is-active --quiet mdb-feature &&
		[ "$(show mdb-feature MainPID)" != "$old" ]
}
wait_for 20 "mdb-feature (SIGSTOP) was not restarted by the watchdog" feature_back
[ "$(ended mdb-feature)" = "watchdog killed ABRT" ] ||
	fail "mdb-feature ended '$(ended mdb-feature)', wanted a watchdog kill"
pass "mdb-feature stopped answering: watchdog timeout, restarted"

# Stop the target: every stage stops cleanly on SIGTERM (exit 0).
ns systemctl stop mdb.target || fail "systemctl stop mdb.target failed"
# the target stops at once; its stages follow, upstream first (After= reversed)
all_inactive() { [ -z "$(ns systemctl is-active $stages | grep -v '^inactive$')" ]; }
wait_for 30 "the stages did not stop with mdb.target" all_inactive
for u in $stages; do
	[ "$(ended "$u")" = "success exited 0" ] || fail "$u stopped as '$(ended "$u")': $(ns cat /var/lib/mdb/$u.result; ns systemctl status $u --no-pager | head -n 8)"
done
pass "systemctl stop mdb.target: every stage exited 0"

# A configuration error (exit 2) is not restarted.
ns sh -c 'echo MDB_FEATURE_OPTS=--no-such-option >>/run/mdb-test/mdb.conf'
before=$(show mdb-feature NRestarts)
ns systemctl start --no-block mdb-feature
feature_failed() { [ "$(show mdb-feature ActiveState)" = failed ]; }
wait_for 10 "mdb-feature with a bad option did not fail" feature_failed
sleep 1
[ "$(show mdb-feature ActiveState)" = failed ] && [ "$(show mdb-feature NRestarts)" = "$before" ] ||
	fail "mdb-feature exiting 2 was restarted"
[ "$(ended mdb-feature)" = "exit-code exited 2" ] || fail "mdb-feature ended '$(ended mdb-feature)'"
pass "a bad option: mdb-feature exits 2 and is not restarted"

# systemd exits, and nothing of the namespace remains.
ns systemctl exit 0 || fail "systemctl exit failed"
deadline=$((SECONDS + 20))
while kill -0 "$sd" 2>/dev/null; do
	[ $SECONDS -lt $deadline ] || fail "systemd did not exit in 20 s"
	sleep 0.1
done
wait $outer
rc=$?
[ $rc -eq 0 ] || fail "systemd exited $rc: $(tail -n 20 "$tmp/systemd.log")"
sd=
pass "systemctl exit: systemd exited 0"

#!/bin/bash
# systemd_units.sh BUILD_DIR - tool test: every unit in systemd/ passes
# `systemd-analyze verify`, and `systemd-analyze security --offline=true`
# rates every service at 2.0 or lower ("OK" or "SAFE"); each score is printed.
#
# The units meson configured into BUILD_DIR/systemd name the installed
# binaries (PREFIX/bin/mdb-*), which verify requires to exist. So they are
# checked as copies whose ExecStart= names the binaries in BUILD_DIR/tools;
# a unit whose tool is not built yet is verified with /bin/true in its place
# (said so in the output). Its Documentation= pages are looked up in a man
# tree made of the pages built in BUILD_DIR/man, so a reference to a missing
# page fails, except for the units of tools not built yet.
# shellcheck source=tests/tools/lib.sh
. "$(dirname "$0")/lib.sh"

units=$build/systemd
[ -d "$units" ] || fail "no $units: systemd/ not configured"
command -v systemd-analyze >/dev/null || fail "systemd-analyze not installed"

mkdir -p "$tmp/units" "$tmp/man/man1" "$tmp/man/man5" "$tmp/man/man7"
for page in "$build"/man/*.[157]; do
	[ -f "$page" ] && ln -s "$page" "$tmp/man/man${page##*.}/"
done

n=0
for f in "$units"/*.service "$units"/*.target; do
	u=$(basename "$f")
	cp "$f" "$tmp/units/$u"
	man=yes
	exe=$(sed -n 's|^ExecStart=\([^ ]*\).*|\1|p' "$f")
	if [ -n "$exe" ]; then
		tool=$(basename "$exe")
		if [ -x "$bin/$tool" ]; then
			sed -i "s|^ExecStart=[^ ]*|ExecStart=$bin/$tool|" "$tmp/units/$u"
		else
			sed -i "s|^ExecStart=[^ ]*|ExecStart=/bin/true|" "$tmp/units/$u"
			echo "# $u: $tool not built, verified with ExecStart=/bin/true, man pages not checked"
			man=no
		fi
	fi
	(cd "$tmp/units" && MANPATH=$tmp/man systemd-analyze verify --man=$man "./$u") \
		>"$tmp/verify.out" 2>&1 || fail "$u: systemd-analyze verify: $(cat "$tmp/verify.out")"
	# verify exits 0 on some warnings; none is accepted
	[ -s "$tmp/verify.out" ] && fail "$u: systemd-analyze verify: $(cat "$tmp/verify.out")"
	pass "$u: systemd-analyze verify"
	n=$((n + 1))
done
[ $n -ge 8 ] || fail "only $n units in $units"

for f in "$tmp"/units/*.service; do
	u=$(basename "$f")
	out=$(cd "$tmp/units" && systemd-analyze security --offline=true "./$u" 2>&1)
	line=$(grep 'Overall exposure level' <<<"$out") || fail "$u: no score: $out"
	score=$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<<"$line")
	[ -n "$score" ] || fail "$u: cannot read the score in: $line"
	awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
		fail "$u: exposure $score > 2.0: $(grep '✗' <<<"$out")"
	pass "$u: systemd-analyze security: $score"
done

# scripts/lib.sh - shared by scripts/test, scripts/demo and scripts/bench.

# Debian packages the build and the tests need.
MDB_PACKAGES="meson ninja-build pkg-config gcc libc6-dev liburing-dev libzmq3-dev libmsgpack-dev
libsqlite3-dev libjansson-dev libcriterion-dev scdoc python3 sqlite3 libwslay-dev
libcurl4-openssl-dev nettle-dev systemd clang libclang-rt-14-dev python3-websockets python3-msgpack nodejs node-ws chromium git clang-format"

# Install whatever of MDB_PACKAGES is missing (apt-get, as root).
need_packages()
{
	local missing=()
	for p in $MDB_PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}" >&2
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >&2 || return 1
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Configure (once) and build into ${MDB_BUILD_DIR:-build}.
build()
{
	local dir=${MDB_BUILD_DIR:-build}
	# MDB_MESON_OPTS: options for a new build dir (scripts/bench's release build)
	[ -f "$dir/build.ninja" ] || meson setup ${MDB_MESON_OPTS:-} "$dir" >&2 || return 1
	ninja -C "$dir" >&2
}

#!/bin/bash
# format.sh BUILD_DIR - tool test: every C source and header of the tree
# (common/, shm/, tools/, tests/) is as clang-format makes it with the
# tree's .clang-format (STYLE.md 11: formatting is mechanical). A file that
# differs fails the test with the diff; `clang-format -i FILE` mends it.
# shellcheck source=tests/tools/lib.sh
. "$(dirname "$0")/lib.sh"

src=$(cd "$here/../.." && pwd)
command -v clang-format >/dev/null || fail "clang-format is not installed (scripts/test installs it)"
[ -f "$src/.clang-format" ] || fail "no .clang-format in $src"
mapfile -t files < <(cd "$src" && find common shm tools tests -name '*.[ch]' -not -path '*/node_modules/*' | sort)
[ ${#files[@]} -ge 50 ] || fail "found only ${#files[@]} C files under $src"
bad=()
for f in "${files[@]}"; do
	if ! (cd "$src" && clang-format --style=file "$f" | diff -u "$f" - >"$tmp/diff") 2>&1; then
		bad+=("$f")
		head -20 "$tmp/diff" >&2
	fi
done
[ ${#bad[@]} -eq 0 ] || fail "${#bad[@]} of ${#files[@]} files are not clang-formatted: ${bad[*]}"
pass "${#files[@]} C files are clang-formatted"

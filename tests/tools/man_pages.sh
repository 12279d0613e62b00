#!/bin/bash
# man_pages.sh BUILD_DIR - tool test: every tool built in BUILD_DIR/tools has
# a manual, man/TOOL.1.scd, and the manual agrees with the tool's --help:
#
# 1. SYNOPSIS: the usage forms of --help (the "usage:" line and each line
#    that starts with the tool's name, each joined with its indented
#    continuation lines) are, in order, the paragraphs of the SYNOPSIS
#    section, once scdoc markup (*bold*, _underline_, \ escapes) is removed
#    and runs of blanks are made one space.
# 2. OPTIONS: the options --help lists (its lines that start with blanks and
#    a dash: "-x, --long ARG   text") are the options the OPTIONS section
#    describes (its lines that start with "*-"), as sets of spellings:
#    every -x and --long on one side is on the other, and nothing more.
#
# Tools that are not built are not checked; every manual of a built tool is.
# shellcheck source=tests/tools/lib.sh
. "$(dirname "$0")/lib.sh"

man=$here/../../man
n=0
failed=()
for exe in "$bin"/mdb-*; do
	[ -f "$exe" ] && [ -x "$exe" ] || continue
	tool=$(basename "$exe")
	page=$man/$tool.1.scd
	[ -f "$page" ] || fail "$tool is built but has no manual $page"
	"$exe" --help >"$tmp/$tool.help" 2>&1 || fail "$tool --help exited $?"
	python3 - "$tool" "$tmp/$tool.help" "$page" >"$tmp/$tool.out" 2>&1 <<'PY' ||
import re, sys
tool, help_file, page_file = sys.argv[1:]
help_lines = open(help_file).read().splitlines()
page = open(page_file).read().splitlines()

def squeeze(s):
    return " ".join(s.split())

def unmark(s):
    s = s.replace("\\_", "\0").replace("*", "").replace("_", "").replace("\0", "_")
    return squeeze(s.replace("\\", ""))

# --help: usage forms
forms, opts_help = [], set()
in_usage = False
for line in help_lines:
    if line.startswith("usage: "):
        forms.append(line[len("usage: "):]); in_usage = True
    elif in_usage and line.strip().startswith(tool + " ") or line.strip() == tool:
        forms.append(line.strip())
    elif in_usage and line.startswith(" ") and line.strip().startswith("[") :
        forms[-1] += " " + line.strip()
    else:
        in_usage = False
    if re.match(r"^\s+-", line):
        term = re.split(r"\s{2,}", line.strip(), 1)[0]
        opts_help |= set(re.findall(r"(?<![\w-])--?[A-Za-z0-9][\w-]*", term))
forms = [squeeze(f) for f in forms]

# the manual: sections
sections, cur = {}, None
for line in page:
    m = re.match(r"^# (.*)", line)
    if m:
        cur = m.group(1).strip(); sections[cur] = []
    elif cur:
        sections[cur].append(line)
bad = []
syn = [unmark(p) for p in "\n".join(sections.get("SYNOPSIS", [])).split("\n\n") if p.strip()]
if syn != forms:
    bad.append("SYNOPSIS differs from --help usage:\n  --help: %s\n  manual: %s" %
               ("\n          ".join(forms), "\n          ".join(syn)))
opts_man = set()
for line in sections.get("OPTIONS", []):
    if line.startswith("*-"):
        opts_man |= set(re.findall(r"(?<![\w-])--?[A-Za-z0-9][\w-]*", unmark(line)))
if not opts_help:
    bad.append("--help lists no options")
if opts_help - opts_man:
    bad.append("in --help, not in OPTIONS: " + " ".join(sorted(opts_help - opts_man)))
if opts_man - opts_help:
    bad.append("in OPTIONS, not in --help: " + " ".join(sorted(opts_man - opts_help)))
print("\n".join(bad) if bad else "%d usage forms, %d options" % (len(forms), len(opts_help)))
sys.exit(1 if bad else 0)
PY
		{ echo "$tool: $(cat "$tmp/$tool.out")" >&2; failed+=("$tool"); continue; }
	pass "$tool: $(cat "$tmp/$tool.out")"
	n=$((n + 1))
done
[ $n -ge 1 ] || fail "no tools in $bin"
[ -z "${failed[*]:-}" ] || fail "manual and --help disagree: ${failed[*]}"

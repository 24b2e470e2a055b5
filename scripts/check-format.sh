#!/bin/sh
# check-format.sh — the C files a change touches are laid out as
# .clang-format says (clang-format 14, Debian 12); `make check` runs it.
#
# Only changed files are checked: kura is formatted file by file, as files
# are changed, so that no change has to carry a reformatting of code it does
# not touch.  Changed means the .c and .h files under src/, include/,
# tests/unit/, fuzz/ and bench/ that differ between BASE and the working
# tree (committed since BASE, staged or not), and new files not yet added.
# BASE is the first of:
#
#   $FORMAT_BASE           when set: a CI job names the commit it builds on
#   merge-base(HEAD, main) on a branch (or a detached HEAD) that is not
#                          contained in main, then the same with origin/main
#   HEAD~1                 on main itself (a clean CI checkout): what the
#                          last commit, typically a merge, changed
#   HEAD                   a clone without that history (a shallow CI
#                          checkout): only uncommitted files, and it says so
#
# Prints one line per file that is not formatted and exits 1 (fix with
# `clang-format -i FILE`); exits 0 when there is nothing to check,
# including outside a git checkout.  Needs POSIX sh, git and clang-format;
# CLANG_FORMAT names another binary.
set -eu

cd "$(dirname "$0")/.."

if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	echo "check-format: not a git checkout with a commit: nothing to compare"
	exit 0
fi

CLANG_FORMAT=${CLANG_FORMAT:-}
if [ -z "$CLANG_FORMAT" ]; then
	for c in clang-format clang-format-14; do
		if command -v "$c" >/dev/null 2>&1; then
			CLANG_FORMAT=$c
			break
		fi
	done
fi
if [ -z "$CLANG_FORMAT" ]; then
	echo "check-format: clang-format is not installed (scripts/setup.sh)"
	exit 1
fi

rev() {
	git rev-parse --verify -q "$1^{commit}" 2>/dev/null
}

head=$(rev HEAD)
base=
how=
if [ -n "${FORMAT_BASE:-}" ]; then
	base=$(rev "$FORMAT_BASE") || {
		echo "check-format: FORMAT_BASE '$FORMAT_BASE' is not a commit"
		exit 1
	}
	how="FORMAT_BASE $FORMAT_BASE"
else
	for ref in main origin/main; do
		r=$(rev "$ref") || continue
		mb=$(git merge-base "$head" "$r" 2>/dev/null) || continue
		if [ "$mb" != "$head" ]; then
			base=$mb
			how="the merge base with $ref"
		fi
		break
	done
	if [ -z "$base" ] && base=$(rev HEAD~1); then
		how="HEAD~1 (HEAD is on main)"
	fi
	if [ -z "$base" ]; then
		base=$head
		how="HEAD (no history to compare with: uncommitted files only)"
	fi
fi

# Newline-separated, so that the loop below splits on nothing else; paths
# with newlines are not C sources of this project.
files=$({
	git diff --name-only --diff-filter=d "$base" -- \
		'src/*.[ch]' 'include/*.[ch]' 'tests/unit/*.[ch]' \
		'fuzz/*.[ch]' 'bench/*.[ch]'
	git ls-files --others --exclude-standard -- \
		'src/*.[ch]' 'include/*.[ch]' 'tests/unit/*.[ch]' \
		'fuzz/*.[ch]' 'bench/*.[ch]'
} | LC_ALL=C sort -u)

if [ -z "$files" ]; then
	echo "check-format: no C file changed since $how"
	exit 0
fi

n=0
bad=0
old_ifs=$IFS
IFS='
'
for f in $files; do
	n=$((n + 1))
	out=$("$CLANG_FORMAT" --dry-run --Werror --style=file "$f" 2>&1) &&
		continue
	bad=$((bad + 1))
	# One line per file; `clang-format --dry-run FILE` shows the places.
	lines=$(printf '%s\n' "$out" | grep -c 'Wclang-format-violations' ||
		true)
	if [ "$lines" -eq 0 ]; then
		echo "$f: clang-format failed: $(printf '%s\n' "$out" | head -n 1)"
	else
		echo "$f: $lines places not formatted as .clang-format says" \
			"(clang-format -i $f)"
	fi
done
IFS=$old_ifs

if [ "$bad" -ne 0 ]; then
	echo "check-format: FAILED: $bad of $n C files changed since $how"
	exit 1
fi
echo "check-format: ok ($n C files changed since $how)"

#!/bin/sh
# check-source.sh — the house rules a compiler does not check.
#
#   1. every .c under src/, tests/unit/ and fuzz/ has "kura/banned.h" as its
#      last #include (so banned functions cannot sneak in after it);
#   2. every .c/.h under src/ and include/ opens with a /* comment block
#      (purpose, invariants, threading);
#   3. no // comments in src/ and include/ (string literals such as
#      "http://" are fine);
#   4. getenv() only in src/core/envsecret.c: every variable kura reads is
#      a credential, captured into locked memory and wiped from the
#      environment there (secret.h), never read again from environ.
#
# Layout is .clang-format's business and is not policed here.
# Prints one "path:line: problem" per offence and exits 1 if there is any.
# Needs only POSIX sh, find and awk.
set -eu

cd "$(dirname "$0")/.."

list() {
	# $1: extension pattern, rest: directories (missing ones are skipped)
	pat=$1
	shift
	for d in "$@"; do
		[ -d "$d" ] && find "$d" -type f -name "$pat"
	done | LC_ALL=C sort
	return 0
}

status=0
report() {
	echo "$1"
	status=1
}

# Rule 1: banned.h is the last include.
for f in $(list '*.c' src tests/unit fuzz); do
	last=$(awk '/^[ \t]*#[ \t]*include[ \t]/ { n = FNR; l = $0 }
		    END { if (n) printf "%d:%s", n, l }' "$f")
	case "$last" in
	*'"kura/banned.h"'*) ;;
	'')
		report "$f:1: no #include \"kura/banned.h\" (it must be the last include)" ;;
	*)
		report "$f:${last%%:*}: last #include is not \"kura/banned.h\": ${last#*:}" ;;
	esac
done

# Rule 2: a header comment opens the file.
for f in $(list '*.[ch]' src include); do
	first=$(head -n 1 "$f")
	case "$first" in
	'/*'*) ;;
	*) report "$f:1: file does not open with a /* comment (purpose, invariants, threading)" ;;
	esac
done

# Rule 3: no // comments.  A small scanner that knows block comments,
# string and character literals, so "http://x" and '/' are not offences.
for f in $(list '*.[ch]' src include); do
	awk -v file="$f" '
	BEGIN { inblock = 0 }
	{
		line = $0
		n = length(line)
		i = 1
		instr = 0	# 1 in "...", 2 in '\''...'\''
		while (i <= n) {
			c = substr(line, i, 1)
			d = substr(line, i, 2)
			if (inblock) {
				if (d == "*/") { inblock = 0; i += 2; continue }
				i++
				continue
			}
			if (instr) {
				if (c == "\\") { i += 2; continue }
				if ((instr == 1 && c == "\"") || (instr == 2 && c == "'\''"))
					instr = 0
				i++
				continue
			}
			if (d == "/*") { inblock = 1; i += 2; continue }
			if (d == "//") {
				printf "%s:%d: // comment (use /* */)\n", file, FNR
				bad = 1
				break
			}
			if (c == "\"") instr = 1
			else if (c == "'\''") instr = 2
			i++
		}
	}
	END { exit bad ? 1 : 0 }' "$f" || status=1
done

# Rule 4: the environment is read in one place.
for f in $(list '*.c' src); do
	[ "$f" = src/core/envsecret.c ] && continue
	grep -n 'getenv *(' "$f" | while IFS=: read -r line _; do
		echo "$f:$line: getenv() outside src/core/envsecret.c (use kura_env_secret)"
	done
	if grep -q 'getenv *(' "$f"; then
		status=1
	fi
done

if [ "$status" -ne 0 ]; then
	echo "check-source: FAILED (rules at the top of scripts/check-source.sh)"
else
	echo "check-source: ok"
fi
exit "$status"

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
#      environment there (secret.h), never read again from environ;
#   5. the layer table of docs/ARCHITECTURE.md holds (the table is read
#      from there, so the rule and its documentation are one text): every
#      include/kura/*.h belongs to one layer and every src/<layer>/ has a
#      row; a layer uses only layers in rows before its own; a file under
#      src/<layer>/ includes only headers of its layer and of the layers it
#      uses, and so do those headers (followed through include/kura); a
#      header includes only what its own layer may; a private header
#      ("s3_int.h") is included only from its own directory;
#   6. the slots of the store, metadata and key-provider interfaces are
#      called only through their wrappers (kura_store_remove(store, ...),
#      not store->ops->remove(store->priv, ...)): no "ops->slot(" in src/,
#      fuzz/ or bench/ outside the three files that define the wrappers,
#      src/store/store.c, src/meta/meta.c and src/keys/keys.c.
#
# Layout is .clang-format's business and is not policed here.
# Prints one "path:line: problem" per offence and exits 1 if there is any.
# Needs only POSIX sh, find and awk.  With an argument, checks the tree at
# that path instead of this one (the tests of this script use it).
set -eu

cd "${1:-$(dirname "$0")/..}"

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

# Rule 5: the layer table.  One line per fact on stdin: "H header",
# "D layer-directory", "I file line target" (each #include "target"); the
# table itself is read from the document.
layer_facts() {
	for f in $(list '*.h' include/kura); do
		echo "H $f"
	done
	for d in src/*/; do
		[ -d "$d" ] && echo "D ${d%/}"
	done
	for f in $(list '*.[ch]' include/kura src); do
		awk -v file="$f" '
		/^[ \t]*#[ \t]*include[ \t]*"/ {
			t = $0
			sub(/^[^"]*"/, "", t)
			sub(/".*$/, "", t)
			print "I", file, FNR, t
		}' "$f"
	done
}

layer_facts | awk -v doc=docs/ARCHITECTURE.md '
function bad(msg) { print msg; failed = 1 }
function base(p) { sub(/^.*\//, "", p); return p }
function trim(s) { gsub(/`/, "", s); gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
function layer_of(p,   a) { split(p, a, "/"); return a[2] }
function dir_of(p) { sub(/\/[^\/]*$/, "", p); return p }
BEGIN {
	where = doc ": layer table"
	intable = 0
	while ((getline line < doc) > 0) {
		if (line ~ /<!-- layer table: begin/) { intable = 1; continue }
		if (line ~ /<!-- layer table: end/) { intable = 2; break }
		if (intable != 1 || line !~ /^\|/) continue
		n = split(line, c, "|")
		name = trim(c[2])
		if (name == "layer" || name ~ /^-+$/ || n < 5) continue
		if (name in order) { bad(where ": layer " name " has two rows"); continue }
		order[name] = ++nlayers
		k = split(trim(c[3]), hs, /[ ,]+/)
		for (i = 1; i <= k; i++) {
			if (hs[i] == "") continue
			if (hs[i] in owner)
				bad(where ": " hs[i] " belongs to both " owner[hs[i]] " and " name)
			owner[hs[i]] = name
		}
		uses[name] = trim(c[4])
	}
	close(doc)
	if (intable != 2) {
		bad(doc ": no layer table (<!-- layer table: begin --> ... end -->)")
		exit
	}
	for (l in order) {
		ok[l, l] = 1
		k = split(uses[l], us, /[ ,]+/)
		for (i = 1; i <= k; i++) {
			if (us[i] == "") continue
			if (!(us[i] in order) || order[us[i]] >= order[l])
				bad(where ": " l " uses " us[i] ", which is not a layer in a row before it")
			ok[l, us[i]] = 1
		}
	}
}
$1 == "H" {
	h = base($2)
	hdr[h] = 1
	if (!(h in owner)) bad($2 ":1: header not in the layer table (docs/ARCHITECTURE.md)")
	next
}
$1 == "D" {
	if (!(base($2) in order)) bad($2 ": layer without a row in the layer table (docs/ARCHITECTURE.md)")
	next
}
$1 == "I" {
	file = $2; ln = $3; t = $4
	if (t !~ /^kura\//) {
		p = dir_of(file) "/" t
		if (t ~ /\.\./ || (getline junk < p) < 0)
			bad(file ":" ln ": \"" t "\" is not a header of its own directory")
		close(p)
		next
	}
	h = base(t)
	if (file ~ /^include\/kura\//) {
		from = base(file)
		ninc[from]++
		inc[from, ninc[from]] = h
		incline[from, ninc[from]] = ln
	} else {
		nsrc++
		sfile[nsrc] = file; sline[nsrc] = ln; shdr[nsrc] = h
	}
	next
}
END {
	if (intable != 2) exit 1
	# What each header brings in, followed through include/kura.
	for (h in hdr)
		for (i = 1; i <= ninc[h]; i++)
			reach[h, inc[h, i]] = 1
	do {
		grew = 0
		for (pair in reach) {
			split(pair, hp, SUBSEP)
			x = hp[2]
			for (i = 1; i <= ninc[x]; i++)
				if (!((hp[1], inc[x, i]) in reach)) {
					reach[hp[1], inc[x, i]] = 1
					grew = 1
				}
		}
	} while (grew)
	for (h in hdr) {
		if (!(h in owner)) continue
		l = owner[h]
		for (i = 1; i <= ninc[h]; i++) {
			x = inc[h, i]
			if ((x in owner) && !((l, owner[x]) in ok))
				bad("include/kura/" h ":" incline[h, i] ": includes kura/" x \
				    " (layer " owner[x] "), which layer " l " does not use")
		}
	}
	for (i = 1; i <= nsrc; i++) {
		f = sfile[i]; x = shdr[i]; l = layer_of(f)
		if (!(l in order) || !(x in owner)) continue
		if (!((l, owner[x]) in ok)) {
			bad(f ":" sline[i] ": includes kura/" x " (layer " owner[x] \
			    "), which src/" l " does not use (docs/ARCHITECTURE.md)")
			continue
		}
		for (pair in reach) {
			split(pair, hp, SUBSEP)
			y = hp[2]
			if (hp[1] != x || !(y in owner) || ((l, owner[y]) in ok)) continue
			bad(f ":" sline[i] ": kura/" x " brings in kura/" y " (layer " \
			    owner[y] "), which src/" l " does not use (docs/ARCHITECTURE.md)")
		}
	}
	exit failed
}' || status=1

# Rule 6: interface calls go through the wrappers.
for f in $(list '*.[ch]' src fuzz bench); do
	case "$f" in
	src/store/store.c | src/meta/meta.c | src/keys/keys.c) continue ;;
	esac
	if grep -n 'ops->[a-z_][a-z_0-9]* *(' "$f" >/dev/null; then
		grep -n 'ops->[a-z_][a-z_0-9]* *(' "$f" | while IFS=: read -r line _; do
			echo "$f:$line: a slot called directly (call its wrapper: store.h, meta.h, keys.h)"
		done
		status=1
	fi
done

if [ "$status" -ne 0 ]; then
	echo "check-source: FAILED (rules at the top of scripts/check-source.sh)"
else
	echo "check-source: ok"
fi
exit "$status"

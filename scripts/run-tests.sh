#!/bin/bash
# run-tests.sh — every test of kura, as run by `make test` and CI.
#
# Stages, each counted per test case:
#   1. source check        scripts/check-source.sh, one test
#   2. harness tests       pytest tests/harness: the counting script
#                          (scripts/count_results.py), check-format.sh and
#                          the integration fixtures
#   3. unit tests          build/ (normal build), cmocka cases via meson test
#   4. unit tests again    build-san/ (ASan + UBSan, leaks are errors)
#   5. integration tests   pytest tests/integration against each build in
#                          KURA_TEST_BUILDS (default "san normal":
#                          build-san/kura, then build/kura)
#   6. fuzz smoke          build-fuzz/ (clang, libFuzzer, ASan + UBSan): each
#                          fuzz/<target>.c runs FUZZ_SECONDS (default 30) over
#                          its committed corpus fuzz/corpus/<target>/ (with
#                          fuzz/<target>.dict when present), FUZZ_JOBS (2) at
#                          a time, one test per target
# The last line of output is exactly "N passed, N failed"; the exit status
# is 1 when anything failed.  A stage that cannot run (a build that fails, a
# missing tool, a target without a corpus) counts as a failure, never as a
# skip.  Only pytest tests that skip themselves (with a reason) are counted
# neither passed nor failed; they are listed.
#
# Environment: KURA_TEST_BUILDS, FUZZ_SECONDS, FUZZ_JOBS, JOBS (parallel unit test
# programs, default nproc).  Logs go to build-logs/.
set -u -o pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

# Debian's tools first (see Makefile), and no .pyc files in the tree.
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
export PYTHONDONTWRITEBYTECODE=1
PY=/usr/bin/python3

KURA_TEST_BUILDS=${KURA_TEST_BUILDS:-san normal}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}	# budget: see fuzz_stage
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
INTEGRATION_TIMEOUT=${INTEGRATION_TIMEOUT:-1800}
LOGS=$ROOT/build-logs

SAN_OPTS=(-Db_sanitize=address,undefined -Db_lundef=false)
SAN_ENV=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)

rm -rf "$LOGS"
mkdir -p "$LOGS"

# BUILT[dir]=1 when the last compile of dir succeeded: its outputs are then
# current.  After a failed compile, outputs are checked one by one with
# `ninja -n` so that stale leftovers of an earlier build are not tested.
declare -A BUILT=()

# current DIR TARGET: is TARGET of DIR built and current?
current() {
	[ -e "$1/$2" ] || return 1
	[ "${BUILT[$1]:-0}" = 1 ] && return 0
	ninja -C "$1" -n "$2" 2>/dev/null | grep -q 'no work to do'
}

STAGE_NAMES=()
STAGE_PASS=()
STAGE_FAIL=()
STAGE_SKIP=()
STAGE_SECS=()
FAILS=()
SKIPS=()
START=$SECONDS

# Current stage's counters.
s_pass=0
s_fail=0
s_skip=0
s_start=0

say() {
	printf '%s\n' "$*"
}

stage_begin() {
	s_pass=0
	s_fail=0
	s_skip=0
	s_start=$SECONDS
	say ""
	say "==> $1"
}

stage_end() {
	STAGE_NAMES+=("$1")
	STAGE_PASS+=("$s_pass")
	STAGE_FAIL+=("$s_fail")
	STAGE_SKIP+=("$s_skip")
	STAGE_SECS+=($((SECONDS - s_start)))
	say "    $1: $s_pass pass, $s_fail fail, $s_skip skip" \
	    "($((SECONDS - s_start)) s)"
}

failure() {
	s_fail=$((s_fail + 1))
	FAILS+=("$1")
	say "    FAIL $1"
}

# Show at most $2 lines of file $1, indented.
show() {
	local n=${2:-30}
	[ -s "$1" ] || return 0
	say "    ---- $(basename "$1") (last $n lines; full log in ${1#"$ROOT"/}) ----"
	tail -n "$n" "$1" | sed -e 's/^/    | /'
}

# Show compiler errors from a build log (first lines around "error").
show_errors() {
	local out
	out=$(grep -n -A2 -E '(error|Error|ERROR):|^FAILED:|undefined reference' \
		"$1" | grep -v '^[0-9]*-\[[0-9]*/[0-9]*\] ' | head -n 40)
	if [ -n "$out" ]; then
		say "    ---- errors from ${1#"$ROOT"/} ----"
		printf '%s\n' "$out" | sed -e 's/^/    | /'
	else
		show "$1" 30
	fi
}

# helper CMD ARGS...: scripts/count_results.py, which reads meson's and
# pytest's result files and prints COUNTS / FAIL / SKIP / MISSING / RUN
# lines for absorb (the format is described at its top).  If the counter
# itself fails, that is one failure, never a silent zero.
helper() {
	"$PY" "$ROOT/scripts/count_results.py" "$@" ||
		echo "MISSING scripts/count_results.py $1 failed (exit status $?)"
}

# Read helper output into the current stage's counters and lists.
absorb() {
	local kind rest p f s
	while IFS= read -r line; do
		kind=${line%% *}
		rest=${line#* }
		case "$kind" in
		COUNTS)
			read -r p f s <<<"$rest"
			s_pass=$((s_pass + p))
			s_fail=$((s_fail + f))
			s_skip=$((s_skip + s))
			;;
		FAIL)
			FAILS+=("$rest")
			say "    FAIL $rest"
			;;
		SKIP)
			SKIPS+=("$rest")
			;;
		MISSING)
			failure "$rest"
			;;
		RUN)
			RUN_NAMES+=("$rest")
			;;
		esac
	done
}

# ensure_builddir DIR CC_ID [meson options...]: configure DIR if needed.
# CC_ID "clang" forces CC=clang; "" accepts the default compiler.
ensure_builddir() {
	local dir=$1 cc=$2
	shift 2
	local log=$LOGS/$dir-build.log
	local kv=()
	local o
	for o in "$@"; do
		kv+=("${o#-D}")
	done
	if [ -f "$dir/build.ninja" ]; then
		"$PY" "$ROOT/scripts/count_results.py" options "$dir" "$cc" "${kv[@]}"
		case $? in
		0) return 0 ;;
		1)
			meson configure "$dir" "$@" >>"$log" 2>&1 && return 0
			;;
		esac
	fi
	# Missing, half-configured or configured with another compiler.
	rm -rf "$dir"
	if [ -n "$cc" ]; then
		CC=$cc meson setup "$dir" "$@" >>"$log" 2>&1
	else
		meson setup "$dir" "$@" >>"$log" 2>&1
	fi
}

# build DIR CC_ID [meson options...]: configure and compile everything that
# compiles (-k 0), so one broken file does not hide the other results.
# Returns 1 (after counting one failure) when anything failed to build.
build() {
	local dir=$1
	local log=$LOGS/$dir-build.log
	: >"$log"
	if ! ensure_builddir "$@"; then
		failure "$dir: meson setup failed"
		show "$log" 30
		return 2
	fi
	BUILT[$dir]=0
	if ! ninja -C "$dir" -k 0 >>"$log" 2>&1; then
		failure "$dir: compile errors (log: ${log#"$ROOT"/})"
		show_errors "$log"
		return 1
	fi
	BUILT[$dir]=1
	return 0
}

# unit_stage LABEL DIR TIMEOUT_MULTIPLIER ENV... -- MESON_OPTIONS...
unit_stage() {
	local label=$1 dir=$2 mult=$3
	shift 3
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		envs+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	stage_begin "$label"
	build "$dir" "" "$@"
	if [ $? -eq 2 ]; then
		stage_end "$label"
		return
	fi
	RUN_NAMES=()
	local before=$s_fail
	absorb < <(helper tests-present "$dir" "$((1 - ${BUILT[$dir]:-0}))")
	if [ ${#RUN_NAMES[@]} -eq 0 ]; then
		[ "$s_fail" -gt "$before" ] ||
			failure "$dir: no unit test program to run"
		stage_end "$label"
		return
	fi
	local log=$LOGS/$dir-unit.log
	rm -f "$dir/meson-logs/testlog.json"
	env "${envs[@]}" meson test -C "$dir" --no-rebuild --print-errorlogs \
		--num-processes "$JOBS" --timeout-multiplier "$mult" \
		"${RUN_NAMES[@]}" >"$log" 2>&1
	before=$s_fail
	absorb < <(helper tap "$dir/meson-logs/testlog.json" "$dir" \
		"${RUN_NAMES[@]}")
	if [ "$s_fail" -gt "$before" ]; then
		show "$log" 40
	fi
	stage_end "$label"
}

integration_stage() {
	local which=$1 dir bin envs=()
	case "$which" in
	san) dir=build-san ;;
	normal) dir=build ;;
	*) dir=$which ;;
	esac
	bin=$dir/kura
	[ "$dir" = build-san ] && envs=("${SAN_ENV[@]}")
	local label="integration ($bin)"
	stage_begin "$label"
	if [ ! -x "$bin" ] || ! current "$dir" kura; then
		failure "$label: $bin was not built (or is out of date: build failed)"
		stage_end "$label"
		return
	fi
	pytest_counted "integration-$which" "$which" "$label" \
		"${envs[@]}" KURA_BIN="$bin" -- tests/integration
	stage_end "$label"
}

# pytest_counted NAME TAG LABEL [VAR=VALUE...] -- PYTEST_ARGS...: run pytest
# (log and JUnit report in $LOGS/NAME.*) and count its cases into the
# current stage; failures are listed as "TAG: module::test: message".
pytest_counted() {
	local name=$1 tag=$2 label=$3
	shift 3
	local envs=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		envs+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	local xml=$LOGS/$name.xml
	local log=$LOGS/$name.log
	env "${envs[@]}" timeout "$INTEGRATION_TIMEOUT" \
		"$PY" -m pytest "$@" -p no:cacheprovider -q -rfEs \
		--tb=short \
		--junitxml="$xml" -o junit_family=xunit2 >"$log" 2>&1
	local rc=$?
	local before=$s_fail
	absorb < <(helper junit "$xml" "$tag")
	case $rc in
	0 | 1) ;;
	124) failure "$label: pytest timed out after $INTEGRATION_TIMEOUT s" ;;
	5) failure "$label: pytest collected no test" ;;
	*) failure "$label: pytest could not run (exit status $rc)" ;;
	esac
	if [ "$s_fail" -gt "$before" ]; then
		if grep -q 'short test summary info' "$log"; then
			say "    ---- pytest summary (full log in ${log#"$ROOT"/}) ----"
			sed -n '/short test summary info/,$p' "$log" |
				head -n 40 | sed -e 's/^/    | /'
		else
			show "$log" 40
		fi
	fi
}

# The tests of the test machinery itself: count_results.py (which counts
# everything else), check-format.sh, the integration tests' fixtures.
harness_stage() {
	local label="harness tests (tests/harness)"
	stage_begin "$label"
	pytest_counted harness harness "$label" -- tests/harness
	stage_end "$label"
}

# Fuzz budget.  15 targets (fuzz/*.c) run FUZZ_JOBS (2) at a time: 8 rounds
# of FUZZ_SECONDS (default 30) plus ~2 s each for start-up (seed replay, the
# S3 target opening its service) and exit (leak check) = ~260 s, plus
# compiling build-fuzz from scratch (the library twice, plain and
# coverage-instrumented: ~90 s on 2 cores) = ~350 s, inside the 6 minutes
# this stage may take (measured: 361 s with the build, machine loaded).
# Each target added costs FUZZ_SECONDS / 2.  Longer runs: FUZZ_SECONDS=600
# make test, or one target by hand (docs/FUZZING.md).
fuzz_stage() {
	local jobs=${FUZZ_JOBS:-2}
	local label="fuzz smoke (build-fuzz, ${FUZZ_SECONDS} s per target, $jobs at a time)"
	stage_begin "$label"
	if ! command -v clang >/dev/null 2>&1; then
		failure "fuzz: clang is not installed (run scripts/setup.sh)"
		stage_end "$label"
		return
	fi
	build build-fuzz clang -Dfuzz=true -Dtests=false "${SAN_OPTS[@]}"
	if [ $? -eq 2 ]; then
		stage_end "$label"
		return
	fi
	local src t bin corpus work log
	local found=0 done_n=0
	local names=() pids=() dict=()
	mkdir -p fuzz/corpus-work/artifacts
	# fuzz_report I: wait for the I-th started target and count its result.
	fuzz_report() {
		local i=$1 t=${names[$1]} rc=0 art
		local log=$LOGS/fuzz-$t.log
		wait "${pids[$i]}" || rc=$?
		if [ "$rc" -eq 0 ]; then
			s_pass=$((s_pass + 1))
			say "    ok   $t ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?') runs)"
			return
		fi
		art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		if [ -z "$art" ]; then
			art="none written (exit status $rc: timeout or out of memory?); see the log"
		fi
		failure "fuzz: $t found a problem (artifact: $art; log ${log#"$ROOT"/})"
		show "$log" 30
	}
	for src in fuzz/*.c; do
		[ -e "$src" ] || continue
		found=1
		t=$(basename "$src" .c)
		bin=build-fuzz/fuzz/$t
		corpus=fuzz/corpus/$t
		work=fuzz/corpus-work/$t
		log=$LOGS/fuzz-$t.log
		if [ ! -x "$bin" ] || ! current build-fuzz "fuzz/$t"; then
			failure "fuzz: $t was not built (compile error, or missing from fuzz/meson.build)"
			continue
		fi
		if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
			failure "fuzz: $t has no seed corpus in $corpus/"
			continue
		fi
		dict=()
		[ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
		mkdir -p "$work"
		# New inputs go to the work corpus (git-ignored); the committed
		# corpus is only read.
		env ASAN_OPTIONS=detect_leaks=1 \
			UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
			timeout $((FUZZ_SECONDS + 300)) "$bin" \
			-max_total_time="$FUZZ_SECONDS" -timeout=25 \
			-rss_limit_mb=4096 -print_final_stats=1 "${dict[@]}" \
			-artifact_prefix="fuzz/corpus-work/artifacts/$t-" \
			"$work" "$corpus" >"$log" 2>&1 &
		names+=("$t")
		pids+=($!)
		# At most $jobs at once: collect the oldest before starting
		# another (all run equally long, so it finishes first).
		if [ $((${#pids[@]} - done_n)) -ge "$jobs" ]; then
			fuzz_report "$done_n"
			done_n=$((done_n + 1))
		fi
	done
	while [ "$done_n" -lt "${#pids[@]}" ]; do
		fuzz_report "$done_n"
		done_n=$((done_n + 1))
	done
	[ "$found" -eq 1 ] || say "    (no fuzz targets yet)"
	stage_end "$label"
}

# ---------------------------------------------------------------------------

stage_begin "source check"
if sh scripts/check-source.sh >"$LOGS/check-source.log" 2>&1; then
	s_pass=1
else
	failure "source check: scripts/check-source.sh found problems"
	sed -e 's/^/    | /' "$LOGS/check-source.log" | head -n 40
fi
stage_end "source check"

harness_stage

unit_stage "unit tests (build)" build 1 -- -Dtests=true -Db_sanitize=none
unit_stage "unit tests, ASan+UBSan (build-san)" build-san 3 "${SAN_ENV[@]}" \
	-- -Dtests=true "${SAN_OPTS[@]}"

for b in $KURA_TEST_BUILDS; do
	integration_stage "$b"
done

fuzz_stage

# ---------------------------------------------------------------------------

total_pass=0
total_fail=0
total_skip=0
say ""
say "================================ kura tests ================================"
printf '%-52s %5s %5s %5s %7s\n' "stage" "pass" "fail" "skip" "time"
for i in "${!STAGE_NAMES[@]}"; do
	printf '%-52s %5d %5d %5d %6ds\n' "${STAGE_NAMES[$i]}" \
		"${STAGE_PASS[$i]}" "${STAGE_FAIL[$i]}" "${STAGE_SKIP[$i]}" \
		"${STAGE_SECS[$i]}"
	total_pass=$((total_pass + STAGE_PASS[i]))
	total_fail=$((total_fail + STAGE_FAIL[i]))
	total_skip=$((total_skip + STAGE_SKIP[i]))
done
if [ ${#SKIPS[@]} -gt 0 ]; then
	say "skipped ($total_skip, counted neither passed nor failed):"
	for s in "${SKIPS[@]}"; do
		say "  - $s"
	done
fi
if [ ${#FAILS[@]} -gt 0 ]; then
	say "failures:"
	for s in "${FAILS[@]}"; do
		say "  - $s"
	done
fi
elapsed=$((SECONDS - START))
say "total time $((elapsed / 60))m $((elapsed % 60))s; logs in build-logs/"
say "$total_pass passed, $total_fail failed"
if [ "$total_fail" -ne 0 ] || [ "$total_pass" -eq 0 ]; then
	exit 1
fi
exit 0

"""scripts/count_results.py, the counter behind `make test`'s summary line:
every way a unit test program or a pytest run can go wrong is counted as a
failure, never as a pass or a silent nothing.  Each case writes the files
meson or pytest would have written and reads the script's output lines."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "count_results.py"


def run(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=60, env=env)


def lines(*args, **kw):
    r = run(*args, **kw)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def counts(out):
    """(pass, fail, skip) of the one COUNTS line."""
    c = [line for line in out if line.startswith("COUNTS ")]
    assert len(c) == 1, out
    return tuple(int(x) for x in c[0].split()[1:])


def of(kind, out):
    return [line[len(kind) + 1:] for line in out if line.startswith(kind + " ")]


# -- tap: meson's testlog.json -------------------------------------------------

def write_testlog(tmp_path, *programs):
    """A testlog.json with one line per program: (name, stdout, returncode,
    result, stderr)."""
    path = tmp_path / "testlog.json"
    with open(path, "w") as f:
        for name, out, rc, result, err in programs:
            f.write(json.dumps({"name": name, "stdout": out, "stderr": err,
                                "returncode": rc, "result": result}) + "\n")
    return path


def prog(name, out, rc=0, result=None, err=""):
    return (name, out, rc, result or ("OK" if rc == 0 else "FAIL"), err)


def test_tap_all_passed(tmp_path):
    log = write_testlog(tmp_path, prog("test_a", "1..3\nok 1 - one\nok 2 - two\nok 3 - three\n"),
                  prog("test_b", "1..1\nok 1 - only\n"))
    out = lines("tap", log, "build", "test_a", "test_b")
    assert counts(out) == (4, 0, 0)
    assert of("FAIL", out) == []


def test_tap_failed_case_with_its_diagnostics(tmp_path):
    log = write_testlog(tmp_path, prog("test_a", "1..3\nok 1 - one\nnot ok 2 - two\n"
                                 "# 0x1 != 0x2\n# test_a.c:42: error: Failure!\n"
                                 "ok 3 - three\n", rc=1))
    out = lines("tap", log, "build", "test_a")
    assert counts(out) == (2, 1, 0)
    assert of("FAIL", out) == ["build: test_a: two -- 0x1 != 0x2 | "
                               "test_a.c:42: error: Failure!"]


def test_tap_skip_and_todo_are_neither(tmp_path):
    log = write_testlog(tmp_path, prog("test_a", "1..3\nok 1 - one # SKIP no token\n"
                                 "not ok 2 - two # TODO later\nok 3 - three\n"))
    out = lines("tap", log, "build", "test_a")
    assert counts(out) == (1, 0, 2)
    assert of("SKIP", out) == ["build: test_a: one no token",
                               "build: test_a: two (TODO)"]


def test_tap_cmocka_group_summary_is_not_a_case(tmp_path):
    log = write_testlog(tmp_path, prog("test_a", "1..1\nok 1 - one\n# ok - tests\n"))
    assert counts(lines("tap", log, "build", "test_a")) == (1, 0, 0)


def test_tap_crash_counts_the_cases_that_did_not_run(tmp_path):
    err = ("==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\n"
           "SUMMARY: AddressSanitizer: heap-use-after-free x.c:1\n")
    log = write_testlog(tmp_path, prog("test_a", "1..5\nok 1 - one\nok 2 - two\n",
                                 rc=-6, err=err))
    out = lines("tap", log, "build-san", "test_a")
    assert counts(out) == (2, 3, 0)
    (fail,) = of("FAIL", out)
    assert "3 of 5 cases did not run" in fail
    assert "exit status -6" in fail and "heap-use-after-free" in fail


def test_tap_program_without_output_fails(tmp_path):
    log = write_testlog(tmp_path, prog("test_a", "", rc=1))
    out = lines("tap", log, "build", "test_a")
    assert counts(out) == (0, 1, 0)
    assert "produced no TAP output (exit status 1)" in of("FAIL", out)[0]


def test_tap_leak_at_exit_after_passing_cases_fails(tmp_path):
    log = write_testlog(tmp_path, prog("test_a", "1..2\nok 1 - one\nok 2 - two\n", rc=1,
                                 err="SUMMARY: AddressSanitizer: 24 byte(s) leaked\n"))
    out = lines("tap", log, "build-san", "test_a")
    assert counts(out) == (2, 1, 0)
    assert "all cases passed but the program failed" in of("FAIL", out)[0]


def test_tap_timeout_is_named(tmp_path):
    log = write_testlog(tmp_path, prog("test_a", "1..2\nok 1 - one\n", rc=None,
                                 result="TIMEOUT"))
    out = lines("tap", log, "build", "test_a")
    assert counts(out) == (1, 1, 0)
    assert "timed out" in of("FAIL", out)[0]


def test_tap_bail_out_fails(tmp_path):
    log = write_testlog(tmp_path, prog("test_a", "1..2\nok 1 - one\nBail out! no database\n",
                                 rc=1))
    out = lines("tap", log, "build", "test_a")
    p, f, s = counts(out)
    assert p == 1 and f >= 1
    assert "build: test_a: Bail out! no database" in of("FAIL", out)


def test_tap_program_that_did_not_run_fails(tmp_path):
    log = write_testlog(tmp_path, prog("test_a", "1..1\nok 1 - one\n"))
    out = lines("tap", log, "build", "test_a", "test_b")
    assert counts(out) == (1, 1, 0)
    assert of("FAIL", out) == ["build: test_b: did not run"]


def test_tap_without_a_log_every_program_fails(tmp_path):
    out = lines("tap", tmp_path / "absent.json", "build", "test_a", "test_b")
    assert counts(out) == (0, 2, 0)
    assert "no meson test log" in of("FAIL", out)[0]


# -- junit: pytest's report ----------------------------------------------------

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.integration.test_x" name="test_ok" time="0.1"/>
<testcase classname="tests.integration.test_x" name="test_bad" time="0.1">
  <failure message="AssertionError: 1 == 2&#10;second line">trace</failure></testcase>
<testcase classname="tests.integration.test_y" name="test_broken" time="0.1">
  <error message="fixture 'srv' not found">trace</error></testcase>
<testcase classname="tests.integration.test_y" name="test_later" time="0.0">
  <skipped type="pytest.skip" message="needs root">skip</skipped></testcase>
<testcase classname="tests.integration.test_y" name="test_ok2" time="0.1"/>
</testsuite></testsuites>
"""


def test_junit_counts_and_names(tmp_path):
    xml = tmp_path / "report.xml"
    xml.write_text(JUNIT)
    out = lines("junit", xml, "san")
    assert counts(out) == (2, 2, 1)
    assert of("FAIL", out) == [
        "san: test_x::test_bad: AssertionError: 1 == 2 | second line",
        "san: test_y::test_broken: fixture 'srv' not found"]
    assert of("SKIP", out) == ["san: test_y::test_later: needs root"]


@pytest.mark.parametrize("content", [None, "<testsuites><testcase"])
def test_junit_without_a_report_is_one_failure(tmp_path, content):
    xml = tmp_path / "report.xml"
    if content is not None:
        xml.write_text(content)
    out = lines("junit", xml, "normal")
    assert counts(out) == (0, 1, 0)
    assert "normal: no pytest report" in of("FAIL", out)[0]


# -- tests-present: what meson would run ------------------------------------------

def builddir(tmp_path, names, built):
    d = tmp_path / "build"
    (d / "meson-info").mkdir(parents=True)
    tests = []
    for n in names:
        exe = d / "tests" / "unit" / n
        if n in built:
            exe.parent.mkdir(parents=True, exist_ok=True)
            exe.write_text("")
        tests.append({"name": n, "cmd": [str(exe)]})
    (d / "meson-info" / "intro-tests.json").write_text(json.dumps(tests))
    return d


def test_present_runs_built_programs_and_misses_the_others(tmp_path):
    d = builddir(tmp_path, ["test_a", "test_b"], built={"test_a"})
    out = lines("tests-present", d, "0")
    assert of("RUN", out) == ["test_a"]
    assert of("MISSING", out) == [f"{d}: test_b: not built (compile error above)"]


def fake_ninja(tmp_path, says):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ninja = bindir / "ninja"
    ninja.write_text(f"#!/bin/sh\necho '{says}'\n")
    ninja.chmod(ninja.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}


@pytest.mark.parametrize("says,runs", [("ninja: no work to do.", True),
                                       ("[1/2] Compiling C object", False)])
def test_present_strict_asks_ninja_whether_current(tmp_path, says, runs):
    d = builddir(tmp_path, ["test_a"], built={"test_a"})
    out = lines("tests-present", d, "1", env=fake_ninja(tmp_path, says))
    assert of("RUN", out) == (["test_a"] if runs else [])
    assert len(of("MISSING", out)) == (0 if runs else 1)


def test_present_without_a_test_list_is_missing(tmp_path):
    out = lines("tests-present", tmp_path / "nowhere", "0")
    assert of("RUN", out) == []
    assert "cannot read the test list" in of("MISSING", out)[0]


# -- options: is a build directory configured so? -----------------------------------

def configured(tmp_path, compiler="gcc", **opts):
    d = tmp_path / "build-x"
    (d / "meson-info").mkdir(parents=True)
    (d / "meson-info" / "intro-buildoptions.json").write_text(json.dumps(
        [{"name": k, "value": v} for k, v in opts.items()]))
    (d / "meson-info" / "intro-compilers.json").write_text(json.dumps(
        {"host": {"c": {"id": compiler}}}))
    return d


@pytest.mark.parametrize("args,status", [
    (["", "tests=true", "b_sanitize=address,undefined"], 0),
    (["gcc", "tests=true"], 0),
    (["", "tests=false"], 1),
    (["", "b_sanitize=none"], 1),
    (["clang", "tests=true"], 2),
])
def test_options(tmp_path, args, status):
    d = configured(tmp_path, tests=True, b_sanitize=["address", "undefined"])
    assert run("options", d, *args).returncode == status


def test_options_of_an_unconfigured_dir(tmp_path):
    assert run("options", tmp_path / "none", "").returncode == 2


def test_bad_command_line_is_an_error():
    r = run("count-everything")
    assert r.returncode == 2 and "usage" in r.stderr

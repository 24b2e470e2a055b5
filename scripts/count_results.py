#!/usr/bin/python3
"""count_results.py — count test results for scripts/run-tests.sh.

After git's t/aggregate-results.sh: run-tests.sh runs the tests, this script
reads what they left behind (meson's test list and log, pytest's JUnit XML)
and prints one line per finding, which run-tests.sh adds to its stage:

    COUNTS pass fail skip   the FAIL and SKIP lines are included in these
    FAIL description
    SKIP description
    MISSING description     a failure not included in any COUNTS
    RUN name                a unit test program to run

Commands:
    tests-present BUILDDIR STRICT
        RUN for each unit test program of BUILDDIR that is built; MISSING for
        the others.  STRICT=1 (the build failed) also asks ninja whether the
        program is up to date, so that a leftover of an earlier build does
        not count.
    tap TESTLOG.JSON LABEL [NAMES...]
        Count the TAP cases of each program in meson's testlog.json.  A
        program that crashed, bailed out, ran fewer cases than planned,
        printed no TAP, or failed after all its cases passed (a leak report
        at exit) counts as failed; so does each of NAMES that did not run.
    junit FILE LABEL
        Count pytest's cases (--junitxml, xunit2); an unreadable report is
        one failure.
    options BUILDDIR COMPILER KEY=VALUE...
        No output; exit status 0 when BUILDDIR is configured with those
        options (and compiler id, unless COMPILER is empty), 1 when an option
        differs, 2 when the compiler differs or BUILDDIR is not configured.

Exit status 0 (except for options); a bad command line is status 2.  The
tests are tests/harness/test_count_results.py.
"""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET


def emit(kind, text=""):
    text = " ".join(str(text).split())
    print(f"{kind} {text}".rstrip())


def up_to_date(builddir, path):
    rel = os.path.relpath(path, os.path.abspath(builddir))
    r = subprocess.run(["ninja", "-C", builddir, "-n", rel],
                       capture_output=True, text=True)
    return r.returncode == 0 and "no work to do" in r.stdout


def tests_present(builddir, strict):
    path = os.path.join(builddir, "meson-info", "intro-tests.json")
    try:
        with open(path) as f:
            tests = json.load(f)
    except (OSError, ValueError) as e:
        emit("MISSING", f"{builddir}: cannot read the test list ({e})")
        return
    for t in tests:
        exe = t["cmd"][0] if t.get("cmd") else ""
        if exe and os.path.exists(exe) and \
                (not strict or up_to_date(builddir, exe)):
            emit("RUN", t["name"])
        else:
            emit("MISSING", f"{builddir}: {t['name']}: not built "
                            "(compile error above)")


def tap(log, label, want):
    """Count the TAP output of every program in meson's testlog.json."""
    seen_names = set()
    p = f = s = 0
    try:
        with open(log) as fh:
            lines = fh.read().splitlines()
    except OSError as e:
        emit("FAIL", f"{label}: no meson test log ({e})")
        lines = []
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        name = t["name"]
        seen_names.add(name)
        rc = t.get("returncode")
        result = t.get("result")
        plan = None
        results = 0
        failed_here = 0
        last_fail = None
        bail = None
        for out in (t.get("stdout") or "").splitlines():
            m = re.match(r"^1\.\.(\d+)", out)
            if m:
                plan = int(m.group(1))
                continue
            if out.startswith("Bail out!"):
                bail = out
                continue
            if re.match(r"^#\s*(not )?ok - ", out):
                continue        # cmocka's group summary
            if last_fail is not None and out.startswith("#") and \
                    len(last_fail[1]) < 3:
                last_fail[1].append(out[1:].strip())
                continue
            m = re.match(r"^(not )?ok\b\s*(\d*)\s*-?\s*([^#]*)(#\s*(\w+)\s*(.*))?",
                         out)
            if not m:
                continue
            results += 1
            case = m.group(3).strip() or m.group(2)
            directive = (m.group(5) or "").upper()
            if directive == "SKIP":
                s += 1
                emit("SKIP", f"{label}: {name}: {case} "
                             f"{m.group(6) or ''}".strip())
            elif directive == "TODO":
                s += 1
                emit("SKIP", f"{label}: {name}: {case} (TODO)")
            elif m.group(1):
                f += 1
                failed_here += 1
                if last_fail is not None:
                    emit("FAIL", f"{label}: {name}: {last_fail[0]} -- "
                                 + " | ".join(last_fail[1]))
                last_fail = (case, [])
            else:
                p += 1
        if last_fail is not None:
            emit("FAIL", f"{label}: {name}: {last_fail[0]} -- "
                         + " | ".join(last_fail[1]))
        status = f"exit status {rc}" if rc is not None else str(result)
        if result == "TIMEOUT":
            status = "timed out"
        # The first sanitizer or crash lines say what happened.
        why = [x.strip() for x in (t.get("stderr") or "").splitlines()
               if re.search(r"ERROR: \w+Sanitizer|runtime error:|SUMMARY: ", x)]
        if why:
            status += "; " + " | ".join(why[:2])
        if bail:
            f += 1
            emit("FAIL", f"{label}: {name}: {bail}")
        if plan is None and results == 0:
            f += 1
            emit("FAIL", f"{label}: {name}: produced no TAP output "
                         f"({status})")
            continue
        if plan is not None and results < plan:
            missing = plan - results
            f += missing
            emit("FAIL", f"{label}: {name}: {missing} of {plan} cases did not "
                         f"run ({status}; crash or sanitizer abort?)")
        elif (rc not in (0, None) or result == "TIMEOUT") and \
                failed_here == 0 and not bail:
            f += 1
            emit("FAIL", f"{label}: {name}: all cases passed but the program "
                         f"failed ({status}; leak or sanitizer report at exit?)")
    for name in sorted(set(want) - seen_names):
        f += 1
        emit("FAIL", f"{label}: {name}: did not run")
    emit("COUNTS", f"{p} {f} {s}")


def junit(path, label):
    """Count pytest's cases in a JUnit XML report."""
    p = f = s = 0
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        emit("FAIL", f"{label}: no pytest report ({e})")
        emit("COUNTS", "0 1 0")
        return
    for case in root.iter("testcase"):
        name = case.get("classname", "") + "::" + case.get("name", "")
        name = name.replace("tests.integration.", "")
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        skip = case.find("skipped")
        if bad is not None:
            f += 1
            msg = bad.get("message") or (bad.text or "").strip()
            msg = " | ".join([x for x in msg.splitlines() if x.strip()][:3])
            emit("FAIL", f"{label}: {name}: {msg[:300]}")
        elif skip is not None:
            s += 1
            emit("SKIP", f"{label}: {name}: {skip.get('message', '')[:300]}")
        else:
            p += 1
    emit("COUNTS", f"{p} {f} {s}")


def options(builddir, compiler, kvs):
    """0 when builddir is configured so, 1 when options differ, 2 when the
    compiler differs or builddir is not configured."""
    try:
        with open(os.path.join(builddir, "meson-info",
                               "intro-buildoptions.json")) as f:
            opts = json.load(f)
        with open(os.path.join(builddir, "meson-info",
                               "intro-compilers.json")) as f:
            comps = json.load(f)
    except (OSError, ValueError):
        return 2
    if compiler:
        cc = comps.get("host", {}).get("c", {}).get("id", "")
        if cc != compiler:
            return 2
    have = {o["name"]: o["value"] for o in opts}
    for kv in kvs:
        k, v = kv.split("=", 1)
        cur = have.get(k)
        if isinstance(cur, list):
            cur = ",".join(cur)
        elif isinstance(cur, bool):
            cur = "true" if cur else "false"
        if str(cur) != v:
            return 1
    return 0


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if cmd == "tests-present" and len(args) == 2:
        tests_present(args[0], args[1] == "1")
    elif cmd == "tap" and len(args) >= 2:
        tap(args[0], args[1], args[2:])
    elif cmd == "junit" and len(args) == 2:
        junit(args[0], args[1])
    elif cmd == "options" and len(args) >= 2:
        return options(args[0], args[1], args[2:])
    else:
        print(f"usage: {os.path.basename(argv[0])} tests-present|tap|junit|"
              f"options ARGS... (see the top of this file)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

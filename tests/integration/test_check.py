"""`kura check` (issue 10, items 5 and 7): each finding explained in words
with the requirement ids of docs/REQUIREMENTS.md after it, every
configuration problem reported at once, the audit log switched off flagged,
the owner of the data directory named, and configuration syntax errors
described with file and line."""

import re

from conftest import run_cli, write_config

FINDING = re.compile(r"^(ERROR|WARN|INFO|OK)\s+\S+\s+(.+) \(([A-F]-\d+(?:, [A-F]-\d+)*)\)$")


def findings(stdout):
    lines = stdout.splitlines()
    assert re.match(r"^\d+ errors, \d+ warnings$", lines[-1]), lines[-1]
    out = []
    for line in lines[:-1]:
        m = FINDING.match(line)
        assert m, f"finding without words or requirement ids: {line!r}"
        assert len(m.group(2).split()) >= 4, f"too terse: {line!r}"
        out.append((m.group(1), line))
    return out


def test_findings_carry_words_and_requirement_ids(kura_server):
    r = kura_server.cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
    fs = findings(r.stdout)
    assert any("local keystore" in line and "A-4" in line for _, line in fs)
    # The running server is named.
    assert any(f"pid {kura_server.proc.pid}" in line for _, line in fs), r.stdout


def test_audit_disabled_is_an_error(tmp_path):
    cfg = write_config(tmp_path, "[audit]\nenabled = false\n")
    r = run_cli("check", "--config", cfg, "--data-dir", tmp_path / "d")
    assert r.returncode == 1, r.stdout
    fs = findings(r.stdout)
    assert any(level == "ERROR" and "audit.enabled" in line and "(B-6)" in line
               for level, line in fs), r.stdout


def test_every_configuration_problem_is_reported(tmp_path):
    cfg = write_config(tmp_path, "[server]\nlisten = 0.0.0.0:9000\nregion = no/slash\n"
                                 "[keys]\nkek_scope = sideways\nprovider = vault\n")
    r = run_cli("check", "--config", cfg, "--data-dir", tmp_path / "d")
    assert r.returncode == 1
    fs = findings(r.stdout)
    errors = [line for level, line in fs if level == "ERROR"]
    for word in ("plain HTTP", "region", "kek_scope", "vault"):
        assert any(word in line and "(A-16)" in line for line in errors), (word, r.stdout)
    assert not (tmp_path / "d").exists()


def test_syntax_error_named_with_file_and_line(tmp_path):
    cfg = write_config(tmp_path, "[server\nlisten = 127.0.0.1:9000\n")
    r = run_cli("check", "--config", cfg)
    assert r.returncode == 2
    assert f"{cfg}:1: section header '[server' has no closing ']'" in r.stderr, r.stderr

"""tests/unit/meson.build refuses a listed unit test whose source does not
exist, instead of skipping it silently (a program that is never built is
never counted as failing).  Each case configures a copy of the source tree
with meson; nothing is compiled."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("meson") is None,
                                reason="meson is needed (scripts/packages.txt)")


def source_copy(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "build-*", "var", "corpus-work", "__pycache__"))
    return src


def configure(src):
    r = subprocess.run(["meson", "setup", str(src / "b"), "-Dtests=true"],
                       cwd=src, capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def test_listed_test_without_source_fails_the_configuration(tmp_path):
    src = source_copy(tmp_path)
    build = src / "tests" / "unit" / "meson.build"
    text = build.read_text()
    assert "unit_tests = [\n" in text
    build.write_text(text.replace("unit_tests = [\n",
                                  "unit_tests = [\n  'test_not_written_yet',\n"))
    rc, out = configure(src)
    assert rc != 0, out
    assert "lists test_not_written_yet, but tests/unit/test_not_written_yet.c " \
        "does not exist" in out, out


def test_every_listed_test_exists(tmp_path):
    rc, out = configure(source_copy(tmp_path))
    assert rc == 0, out

"""scripts/check-format.sh, the layout half of `make check`: it checks the C
files a change touches against .clang-format, and finds what changed on a
branch, on main (a clean CI checkout) and in a clone without history.  Each
case builds a small git repository with the project's script and
.clang-format."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORMATTED = "int f(int a)\n{\n\treturn a + 1;\n}\n"
UNFORMATTED = "int f(int a){return a+1;}\n"

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or (shutil.which("clang-format") is None and
                                    shutil.which("clang-format-14") is None),
    reason="git and clang-format are needed (scripts/packages.txt)")


def git(repo, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def write(repo, path, text):
    p = repo / path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def commit(repo, msg, files):
    for path, text in files.items():
        write(repo, path, text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", msg)


def check(repo, **env):
    r = subprocess.run(["sh", str(repo / "scripts" / "check-format.sh")],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, **env})
    return r.returncode, r.stdout + r.stderr


@pytest.fixture
def repo(tmp_path):
    """main: the script and .clang-format, then an old unformatted file,
    then another commit."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "check-format.sh", r / "scripts")
    shutil.copy(ROOT / ".clang-format", r)
    commit(r, "base", {})
    commit(r, "legacy", {"src/old/legacy.c": UNFORMATTED})
    commit(r, "more", {"README": "kura\n"})
    return r


def test_untouched_unformatted_file_is_not_checked(repo):
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, "new file", {"src/new.c": FORMATTED})
    rc, out = check(repo)
    assert rc == 0, out
    assert "ok (1 C files changed since the merge base with main)" in out


def test_changed_unformatted_file_fails_by_name(repo):
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo, "src/old/legacy.c", UNFORMATTED + "int g(void){return 0;}\n")
    rc, out = check(repo)
    assert rc == 1, out
    assert "src/old/legacy.c:" in out and "clang-format -i src/old/legacy.c" in out
    assert "FAILED: 1 of 1 C files" in out


def test_new_untracked_file_is_checked(repo):
    git(repo, "checkout", "-q", "-b", "topic")
    write(repo, "include/kura/new.h", UNFORMATTED)
    rc, out = check(repo)
    assert rc == 1 and "include/kura/new.h:" in out, out


def test_deleted_and_non_c_files_are_ignored(repo):
    git(repo, "checkout", "-q", "-b", "topic")
    git(repo, "rm", "-q", "src/old/legacy.c")
    commit(repo, "docs", {"docs/x.md": "text\n", "src/notes.txt": UNFORMATTED})
    rc, out = check(repo)
    assert rc == 0 and "no C file changed" in out, out


def test_on_main_the_last_commit_is_checked(repo):
    commit(repo, "bad on main", {"src/main.c": UNFORMATTED})
    rc, out = check(repo)
    assert rc == 1 and "src/main.c:" in out and "HEAD~1" in out, out
    commit(repo, "good on main", {"src/other.c": FORMATTED})
    rc, out = check(repo)
    assert rc == 0 and "ok (1 C files changed since HEAD~1" in out, out


def test_format_base_names_the_comparison(repo):
    first = git(repo, "rev-list", "--max-parents=0", "HEAD")
    git(repo, "checkout", "-q", "-b", "topic")
    commit(repo, "good", {"src/new.c": FORMATTED})
    rc, out = check(repo, FORMAT_BASE=first)
    assert rc == 1 and "src/old/legacy.c:" in out, out
    rc, out = check(repo, FORMAT_BASE="HEAD")
    assert rc == 0 and "no C file changed" in out, out
    rc, out = check(repo, FORMAT_BASE="no-such-ref")
    assert rc == 1 and "is not a commit" in out, out


def test_shallow_clone_checks_uncommitted_files_only(repo, tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)],
                   check=True, capture_output=True)
    rc, out = check(clone)
    assert rc == 0 and "uncommitted files only" in out, out
    write(clone, "src/old/legacy.c", UNFORMATTED + "int h(void){return 1;}\n")
    rc, out = check(clone)
    assert rc == 1 and "src/old/legacy.c:" in out, out


def test_outside_git_nothing_to_compare(tmp_path):
    d = tmp_path / "tarball"
    (d / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "check-format.sh", d / "scripts")
    rc, out = check(d, GIT_CEILING_DIRECTORIES=str(tmp_path))
    assert rc == 0 and "not a git checkout" in out, out

"""The layer rules of scripts/check-source.sh (rules 5 and 6): the table in
docs/ARCHITECTURE.md is read by the script, and each way of breaking it —
an include that points up, a header that smuggles another layer in, a
header or a layer directory missing from the table, a cycle in the table, a
private header included from another directory, a table that is gone, an
interface slot called without its wrapper — is reported with its file and
line, and fails the check.

Each of those tests copies the parts of the tree the script reads (src,
include, docs/ARCHITECTURE.md, the script) to a temporary directory, breaks
one thing there and runs the script on the copy.

The last two look at what was built instead ($KURA_BIN's directory): which
object file calls which (nm), so that the table holds for calls as well as
includes, and no two files of src/ need each other."""

import collections
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check-source.sh"


@pytest.fixture
def tree(tmp_path):
    """A copy of what check-source.sh reads."""
    for d in ("src", "include"):
        shutil.copytree(ROOT / d, tmp_path / d)
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "ARCHITECTURE.md", tmp_path / "docs")
    return tmp_path


def check(root):
    r = subprocess.run(["sh", str(SCRIPT), str(root)], capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def add_include(path, header, after='#include "s3_int.h"'):
    """Insert #include "header" after the line `after` of path."""
    text = path.read_text()
    assert after in text, (path, after)
    path.write_text(text.replace(after, after + f'\n#include "{header}"', 1))
    return text[:text.index(after)].count("\n") + 2    # the new line's number


def set_row(root, layer, owns=None, uses=None):
    """Rewrite one row of the layer table."""
    doc = root / "docs" / "ARCHITECTURE.md"
    lines = doc.read_text().split("\n")
    for i, line in enumerate(lines):
        cells = line.split("|")
        if len(cells) >= 5 and cells[1].strip() == layer:
            if owns is not None:
                cells[2] = f" {owns} "
            if uses is not None:
                cells[3] = f" {uses} "
            lines[i] = "|".join(cells)
            doc.write_text("\n".join(lines))
            return
    raise AssertionError(f"no row for {layer}")


def test_the_tree_as_it_is_passes(tree):
    rc, out = check(tree)
    assert rc == 0, out
    assert "check-source: ok" in out


def test_an_include_that_points_up_fails(tree):
    f = tree / "src" / "s3" / "range.c"
    line = add_include(f, "kura/daemon.h")
    rc, out = check(tree)
    assert rc == 1, out
    assert f"src/s3/range.c:{line}: includes kura/daemon.h (layer daemon), " \
           "which src/s3 does not use" in out, out


def test_a_backend_including_another_layer_fails(tree):
    f = tree / "src" / "store" / "fs.c"
    line = add_include(f, "kura/meta.h", after='#include "kura/store.h"')
    rc, out = check(tree)
    assert rc == 1, out
    assert f"src/store/fs.c:{line}: includes kura/meta.h (layer meta)" in out, out


def test_a_header_that_brings_in_a_forbidden_layer_fails(tree):
    # meta.h including crypt.h again: the header rule, and every file of
    # the meta layer that includes meta.h now brings in crypt.h.
    h = tree / "include" / "kura" / "meta.h"
    line = add_include(h, "kura/crypt.h", after='#include "kura/config.h"')
    rc, out = check(tree)
    assert rc == 1, out
    assert f"include/kura/meta.h:{line}: includes kura/crypt.h (layer crypt), " \
           "which layer meta does not use" in out, out
    assert re.search(r"src/meta/meta\.c:\d+: kura/meta\.h brings in "
                     r"kura/crypt\.h \(layer crypt\), which src/meta does not use",
                     out), out


def test_what_a_used_header_brings_in_counts(tree):
    # s3 includes service.h, which includes store.h: without store in its
    # row, s3 may not have it.
    set_row(tree, "s3", uses="core audit auth crypt http keys kms meta service")
    rc, out = check(tree)
    assert rc == 1, out
    assert re.search(r"src/s3/s3_int\.h:\d+: kura/service\.h brings in "
                     r"kura/store\.h \(layer store\)", out), out


def test_a_header_missing_from_the_table_fails(tree):
    (tree / "include" / "kura" / "newthing.h").write_text(
        "/* newthing.h — not in the table. */\n")
    rc, out = check(tree)
    assert rc == 1, out
    assert "include/kura/newthing.h:1: header not in the layer table" in out, out


def test_a_layer_missing_from_the_table_fails(tree):
    (tree / "src" / "postgres").mkdir()
    rc, out = check(tree)
    assert rc == 1, out
    assert "src/postgres: layer without a row in the layer table" in out, out


def test_a_cycle_in_the_table_fails(tree):
    set_row(tree, "crypt", uses="core keys kms")
    rc, out = check(tree)
    assert rc == 1, out
    assert "crypt uses kms, which is not a layer in a row before it" in out, out


def test_a_header_owned_twice_fails(tree):
    set_row(tree, "http", owns="http.h s3.h")
    rc, out = check(tree)
    assert rc == 1, out
    assert "s3.h belongs to both http and s3" in out, out


def test_a_private_header_of_another_directory_fails(tree):
    f = tree / "src" / "kms" / "cert.c"
    line = add_include(f, "../s3/s3_int.h", after='#include "kura/cert.h"')
    rc, out = check(tree)
    assert rc == 1, out
    assert f'src/kms/cert.c:{line}: "../s3/s3_int.h" is not a header of its ' \
           "own directory" in out, out


def test_a_missing_table_fails(tree):
    doc = tree / "docs" / "ARCHITECTURE.md"
    doc.write_text(doc.read_text().replace("<!-- layer table: end", "<!-- x"))
    rc, out = check(tree)
    assert rc == 1, out
    assert "no layer table" in out, out


def test_a_slot_called_directly_fails(tree):
    # Rule 6: interface slots are called through their wrappers.
    f = tree / "src" / "s3" / "object_delete.c"
    text = f.read_text()
    call = "kura_meta_object_delete(meta, "
    assert call in text
    f.write_text(text.replace(call, "meta->ops->object_delete(meta->priv, ", 1))
    line = text[:text.index(call)].count("\n") + 1
    rc, out = check(tree)
    assert rc == 1, out
    assert f"src/s3/object_delete.c:{line}: a slot called directly" in out, out
    # The files that define the wrappers call the slots, of course.
    assert "src/meta/meta.c" not in out, out


# -- the built objects --------------------------------------------------------

def layer_table():
    """{layer: set of layers it may use (itself included)} from the doc."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    table = text.split("<!-- layer table: begin")[1].split("<!-- layer table: end")[0]
    uses = {}
    for line in table.splitlines():
        cells = [c.strip().strip("`") for c in line.split("|")]
        if len(cells) < 5 or cells[1] in ("layer", "") or set(cells[1]) == {"-"}:
            continue
        uses[cells[1]] = set(cells[3].replace(",", " ").split()) | {cells[1]}
    return uses


def object_calls():
    """{object: {object: symbols}} over libkura.a and the kura command's
    objects: who calls (or reads) what another file defines."""
    build = (ROOT / os.environ.get("KURA_BIN", "build/kura")).parent
    archive = build / "libkura.a"
    objs = sorted((build / "kura.p").glob("*.o")) if (build / "kura.p").is_dir() else []
    if not archive.exists() or not objs or shutil.which("nm") is None:
        pytest.skip(f"no built objects next to $KURA_BIN ({build}) or no nm")
    defs, undef = {}, collections.defaultdict(set)
    out = subprocess.run(["nm", str(archive)] + [str(o) for o in objs],
                         capture_output=True, text=True, check=True).stdout
    member = None
    for line in out.splitlines():
        if line.endswith(".o:"):
            member = Path(line[:-1]).name[:-len(".o")]     # src_s3_list.c
            continue
        parts = line.split()
        if member is None or not member.startswith("src_"):
            continue
        if len(parts) == 3 and parts[1] in "TDBR":
            defs[parts[2]] = member
        elif len(parts) == 2 and parts[0] == "U":
            undef[member].add(parts[1])
    calls = collections.defaultdict(lambda: collections.defaultdict(set))
    for member, syms in undef.items():
        for sym in syms:
            if sym in defs and defs[sym] != member:
                calls[member][defs[sym]].add(sym)
    return calls


def layer(member):
    return member.split("_")[1]           # src_<layer>_<file>.c


def test_calls_follow_the_layer_table():
    uses = layer_table()
    wrong = []
    for a, targets in object_calls().items():
        for b, syms in targets.items():
            if layer(b) not in uses.get(layer(a), set()):
                wrong.append(f"{a} -> {b}: {sorted(syms)[:3]}")
    assert not wrong, "calls against the layer table:\n" + "\n".join(sorted(wrong))


def backend_units():
    """{object: unit} for the files of a backend split into its own
    directory below a layer (src/meta/sqlite/*.c around sqlite_int.h, as
    SQLite's vdbe*.c around vdbeInt.h): they are one unit, as the one file
    they replace was, and may call each other."""
    units = {}
    for c in (ROOT / "src").glob("*/*/*.c"):
        rel = c.relative_to(ROOT)
        units["_".join(rel.parts)] = "_".join(rel.parts[:-1]) + "/"
    return units


def unit_calls():
    """object_calls() with each backend directory's files as one unit."""
    units = backend_units()
    calls = collections.defaultdict(lambda: collections.defaultdict(set))
    for a, called in object_calls().items():
        for b, syms in called.items():
            ua, ub = units.get(a, a), units.get(b, b)
            if ua != ub:
                calls[ua][ub] |= syms
    return calls


def test_no_two_files_need_each_other():
    calls = unit_calls()
    # Tarjan's strongly connected components over the call graph.
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in calls.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(calls):
        if v not in index:
            visit(v)
    detail = [" <-> ".join(c) + ": " + "; ".join(
        f"{a} calls {sorted(calls[a][b])[:2]} of {b}"
        for a in c for b in calls[a] if b in c) for c in cycles]
    assert not cycles, "files in a cycle:\n" + "\n".join(detail)

"""The integration tests' conftest.py refuses a module that overrides one of
its fixtures with another scope (the `s3` a test asks for is what conftest
promises, not silently a module's shared one), and accepts the overrides
its factories make.  Each case collects a small test directory holding a
copy of tests/integration/conftest.py; no server is started."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def collect(tmp_path, **modules):
    d = tmp_path / "suite"
    d.mkdir()
    shutil.copy(ROOT / "tests" / "integration" / "conftest.py", d)
    for name, text in modules.items():
        (d / f"{name}.py").write_text(textwrap.dedent(text))
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                        "-p", "no:cacheprovider", str(d)], cwd=d,
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_override_with_another_scope_is_refused(tmp_path):
    rc, out = collect(tmp_path, test_mod="""
        import pytest

        @pytest.fixture(scope="module")
        def s3(kura_server_module):
            return kura_server_module.client()

        def test_x(s3):
            pass
        """)
    assert rc != 0, out
    assert "fixture 's3' of test_mod.py (scope module) overrides" in out, out
    assert "(scope function)" in out, out


def test_override_of_a_module_fixture_with_function_scope_is_refused(tmp_path):
    rc, out = collect(tmp_path, test_mod="""
        from conftest import server_fixture

        kura_server_module = server_fixture()

        def test_x(kura_server_module):
            pass
        """)
    assert rc != 0, out
    assert "fixture 'kura_server_module' of test_mod.py (scope function)" in out, out


def test_factory_overrides_with_the_same_scope_are_accepted(tmp_path):
    rc, out = collect(tmp_path, test_a="""
        from conftest import client_fixture, server_fixture, tenant_fixture

        srv = server_fixture("[limits]\\nmax_object_size = 1M\\n", scope="module",
                             buckets=["b"], objects={("b", "k"): b"v"})
        s3 = client_fixture("srv")
        tenant_module = tenant_fixture("srv", scope="module")

        def test_x(srv, s3, tenant_module):
            pass
        """, test_b="""
        import pytest

        @pytest.fixture
        def srv():
            return None

        def test_y(srv, s3):
            pass
        """)
    assert rc == 0, out
    assert "2 tests collected" in out, out

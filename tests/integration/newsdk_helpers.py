"""A current AWS SDK for Python next to Debian 12's old one.

Debian 12's botocore (1.29) predates the SDKs' default checksums (botocore
1.36, January 2025: every upload carries a CRC32 unless configured
otherwise, and downloads are checked against the returned value).  To test
kura against that behaviour, botocore, boto3 and s3transfer are taken from
Debian 13 (trixie): the .debs are fetched with apt-get through a private
apt configuration (its own sources list, lists and cache under the build
directory; the system's apt state is not touched) and unpacked with
dpkg-deb -x into BUILD/trixie-sdk.  The packages are pure Python and run on
Debian 12's python3.  A test runs its client code in a subprocess whose
sys.path starts with that directory, so the two versions never meet in one
interpreter.

Without network access, apt-get or dpkg-deb, the tests that need it are
skipped, saying why.  $KURA_NEWSDK_DIR names an unpacked tree to use
instead (its usr/lib/python3/dist-packages, or a directory holding botocore
itself).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ("python3-botocore", "python3-boto3", "python3-s3transfer")
SOURCE = ("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
          "http://deb.debian.org/debian trixie main")


def _site(root):
    for cand in (root / "usr/lib/python3/dist-packages", root):
        if (cand / "botocore").is_dir() and (cand / "boto3").is_dir():
            return cand
    return None


def _run(cmd, cwd=None):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])}: {r.stderr.strip()[-300:]}")


def _fetch(root):
    """apt-get update/download with a private configuration, then unpack."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not found")
    apt = root.parent / "trixie-apt"
    for d in ("state/lists/partial", "cache/archives/partial", "etc", "debs"):
        (apt / d).mkdir(parents=True, exist_ok=True)
    (apt / "etc/sources.list").write_text(SOURCE + "\n")
    (apt / "state/status").touch()
    opts = ["-o", f"Dir::Etc::SourceList={apt}/etc/sources.list",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State={apt}/state",
            "-o", f"Dir::State::status={apt}/state/status",
            "-o", f"Dir::Cache={apt}/cache",
            "-o", "Acquire::Retries=1", "-o", "Acquire::http::Timeout=20"]
    if os.geteuid() == 0:
        opts += ["-o", "APT::Sandbox::User=root"]
    _run(["apt-get", "-q", *opts, "update"])
    _run(["apt-get", "-q", *opts, "download", *PACKAGES], cwd=apt / "debs")
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for deb in sorted((apt / "debs").glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(tmp)])
    tmp.rename(root)


def trixie_sdk(build_dir):
    """The directory to put first on sys.path, or pytest.skip."""
    env = os.environ.get("KURA_NEWSDK_DIR")
    if env:
        site = _site(Path(env))
        if site is None:
            pytest.skip(f"KURA_NEWSDK_DIR={env} holds no botocore and boto3")
        return site
    root = Path(build_dir) / "trixie-sdk"
    if _site(root) is None:
        try:
            _fetch(root)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            pytest.skip("botocore 1.36+ from Debian 13 is not available "
                        f"(offline?): {e}")
    site = _site(root)
    if site is None:
        pytest.skip(f"unpacking Debian 13's SDK into {root} gave no botocore")
    return site


def run_with_sdk(site, script, **params):
    """Run script (Python source) under the new SDK; params are handed in
    as the JSON object PARAMS; the script prints one JSON object, returned.
    """
    prelude = ("import json, sys\n"
               f"sys.path.insert(0, {str(site)!r})\n"
               f"PARAMS = json.loads({json.dumps(json.dumps(params))})\n")
    r = subprocess.run([sys.executable, "-c", prelude + script],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])

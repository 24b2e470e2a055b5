"""The remote S3 data store (src/store/s3/) against real kura servers as
its remote: tests/unit/test_store_s3.c is the client, run with a remote in
its environment, once over http to 127.0.0.1 and once over https with the
remote's self-signed certificate.

What the C program checks (see its header): small and empty blobs byte
for byte, a 12 MiB blob in 5 MiB parts (multipart) read back in segments
and at ranges, the writer never holding more than a part, ENOENT for a
missing blob, remove, abort, the health probe, a wrong secret refused with
the remote's words, TLS verified with ca_file and refused without, plain
http refused beyond loopback, KURA_EIO after the retries when the remote is
down.  What this file adds: the remote bucket afterwards holds only
PREFIX + 32 hex names (nothing else of kura's: no staging, no leftovers of
aborted multipart uploads), and every remote case ran rather than
skipped."""

import os
import re
import subprocess

import pytest

from conftest import kura_bin, running_server

BUCKET = "kura-dr"
PREFIX = "blobs/"
REMOTE_TESTS = ("test_small_round_trip", "test_multipart_and_ranges",
                "test_missing_and_remove", "test_abort_leaves_nothing",
                "test_probe", "test_wrong_secret", "test_concurrent")


def unit_binary():
    b = kura_bin().parent / "tests" / "unit" / "test_store_s3"
    if not b.is_file():
        pytest.skip(f"{b} not built (libcurl missing: meson -Ds3=enabled)")
    return b


def run_client(server, workdir, ca_file=None):
    """Run the C tests against server; returns their output."""
    secret = workdir / "remote.secret"
    secret.write_text(server.secret_key + "\n")
    secret.chmod(0o600)
    env = dict(os.environ)
    env.update({
        "KURA_S3_TEST_ENDPOINT": server.endpoint,
        "KURA_S3_TEST_BUCKET": BUCKET,
        "KURA_S3_TEST_ACCESS_KEY": server.access_key,
        "KURA_S3_TEST_SECRET_FILE": str(secret),
        "KURA_S3_TEST_PREFIX": PREFIX,
    })
    if ca_file:
        env["KURA_S3_TEST_CA_FILE"] = str(ca_file)
    r = subprocess.run([str(unit_binary())], capture_output=True, text=True,
                       env=env, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    return out


def ran(out, name):
    return re.search(r"\[\s+OK\s+\] " + name + r"\b", out) is not None


def remote_names(server):
    c = server.root_client()
    names = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        names += [o["Key"] for o in page.get("Contents", [])]
    return names


def check_remote_bucket(server):
    names = remote_names(server)
    assert names, "the small round trip leaves its blob on the remote"
    for n in names:
        assert re.fullmatch(re.escape(PREFIX) + r"[0-9a-f]{32}", n), n
    uploads = server.root_client().list_multipart_uploads(Bucket=BUCKET)
    assert not uploads.get("Uploads"), uploads


def test_against_kura_over_http(tmp_path):
    with running_server(tmp_path / "remote", buckets=[BUCKET]) as server:
        out = run_client(server, tmp_path)
        for name in REMOTE_TESTS + ("test_remote_down",
                                    "test_config_refusals"):
            assert ran(out, name), f"{name} did not run:\n{out}"
        check_remote_bucket(server)


def test_against_kura_over_https(tmp_path):
    with running_server(tmp_path / "remote", tls=True,
                        buckets=[BUCKET]) as server:
        assert server.endpoint.startswith("https://")
        out = run_client(server, tmp_path, ca_file=server.verify)
        for name in REMOTE_TESTS + ("test_tls_verification",):
            assert ran(out, name), f"{name} did not run:\n{out}"
        check_remote_bucket(server)

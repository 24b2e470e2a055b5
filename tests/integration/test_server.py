"""The server process itself: first start, credentials, TLS, the loopback
rule for plain HTTP, configuration checking, signals.

These tests start kura by hand where the shared fixture's assumptions
(credentials from the environment, plain HTTP) are what is being tested.
"""

import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from conftest import (kura_bin, parse_credentials, pick_free_port, run_cli, running_server,
                      s3_client, sanitizer_lines, write_config)

ROOT = Path(__file__).resolve().parents[2]


def start_raw(args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KURA_ROOT_")}
    env.update(env_extra or {})
    return subprocess.Popen([str(kura_bin()), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                            text=True)


def wait_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"server exited early ({proc.returncode}):\n{err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("server did not start")


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not sanitizer_lines(err), err
    return out, err


def test_first_start_generates_credentials_once(tmp_path):
    data = tmp_path / "data"
    port = pick_free_port()
    proc = start_raw(["server", "--data-dir", data, "--listen", f"127.0.0.1:{port}"])
    wait_port(port, proc)
    _, err1 = stop(proc)
    access, secret = parse_credentials(err1)
    cred_file = data / "root-credentials"
    assert stat.S_IMODE(cred_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert parse_credentials(cred_file.read_text()) == (access, secret)

    # Second start: the secret is not printed again, the credentials work.
    proc = start_raw(["server", "--data-dir", data, "--listen", f"127.0.0.1:{port}"])
    wait_port(port, proc)
    try:
        s3 = s3_client(f"http://127.0.0.1:{port}", access, secret)
        s3.create_bucket(Bucket="firststart")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["firststart"]
    finally:
        _, err2 = stop(proc)
    assert secret not in err2
    assert "root-credentials" in err2      # the banner says where they are


def test_secrets_are_not_stored_in_clear(kura_server, tenant):
    """Access-key secrets are sealed in meta.db; neither the root's nor a
    tenant's secret appears in any file but root-credentials."""
    kura_server.client().create_bucket(Bucket="secrets")
    kura_server.stop()
    try:
        secrets_ = [kura_server.secret_key.encode(), tenant.kura_secret_key.encode()]
        for path in kura_server.data_dir.rglob("*"):
            if not path.is_file() or path.name == "root-credentials":
                continue
            blob = path.read_bytes()
            for s in secrets_:
                assert s not in blob, f"secret found in {path}"
    finally:
        kura_server.start()


def test_tls_listener(tmp_path):
    with running_server(tmp_path, tls=True) as server:
        cert = server.verify
        session = boto3.session.Session(aws_access_key_id=server.access_key,
                                        aws_secret_access_key=server.secret_key,
                                        region_name="us-east-1")
        s3 = session.client("s3", endpoint_url=server.endpoint, verify=str(cert),
                            config=Config(signature_version="s3v4",
                                          s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="tls")
        s3.put_object(Bucket="tls", Key="k", Body=b"over TLS")
        assert s3.get_object(Bucket="tls", Key="k")["Body"].read() == b"over TLS"

        # Both TLS 1.2 and 1.3 are offered, with the certificate given.
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(str(cert))
            ctx.minimum_version = ctx.maximum_version = version
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    assert tls.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                             ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    assert tls.recv(12).startswith(b"HTTP/1.1 403")

        # Plain HTTP to the TLS port gets no S3 answer.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            raw.settimeout(5)
            try:
                data = raw.recv(100)
            except (ConnectionError, socket.timeout):
                data = b""
            assert b"ListAllMyBucketsResult" not in data


@pytest.mark.parametrize("addr", ["0.0.0.0", "[::]"])
def test_plain_http_refused_off_loopback(tmp_path, addr):
    port = pick_free_port()
    r = run_cli("server", "--data-dir", tmp_path / "d", "--listen",
                f"{addr}:{port}", timeout=30)
    assert r.returncode != 0
    assert "refusing plain HTTP" in r.stderr


def test_unknown_config_key_refused(tmp_path):
    cfg = write_config(tmp_path, "[server]\nlisten = 127.0.0.1:1\nlisen_typo = 1\n", "bad.ini")
    r = run_cli("server", "--config", cfg, "--data-dir", tmp_path / "d")
    assert r.returncode != 0
    assert "lisen_typo" in r.stderr and "bad.ini" in r.stderr


@pytest.mark.parametrize("section,key,value", [
    ("limits", "max_object_size", "lots"),
    ("server", "listen", "nowhere"),
    ("server", "max_connections", "-1"),
    ("storage", "segment_size", "3000"),     # not a power of two
    ("server", "log_level", "chatty"),
    ("keys", "provider", "vault"),
])
def test_bad_config_values_refused(tmp_path, section, key, value):
    cfg = write_config(tmp_path, f"[{section}]\n{key} = {value}\n", "bad.ini")
    r = run_cli("server", "--config", cfg, "--data-dir", tmp_path / "d",
                "--listen", f"127.0.0.1:{pick_free_port()}", timeout=30)
    assert r.returncode != 0, r.stderr
    assert key in r.stderr or value in r.stderr, r.stderr


def test_config_doc_matches_code():
    """docs/CONFIG.md's table is what `kura config-keys` prints."""
    r = run_cli("config-keys")
    assert r.returncode == 0
    doc = (ROOT / "docs" / "CONFIG.md").read_text()
    marker = "<!-- generated by `kura config-keys`: do not edit below this line -->\n"
    assert marker in doc
    assert doc.split(marker, 1)[1] == r.stdout, \
        "docs/CONFIG.md is stale: regenerate it with `build/kura config-keys`"


def test_sigint_stops_cleanly(tmp_path):
    port = pick_free_port()
    proc = start_raw(["server", "--data-dir", tmp_path / "d", "--listen",
                      f"127.0.0.1:{port}"])
    wait_port(port, proc)
    _, err = stop(proc, signal.SIGINT)
    assert "SIGINT" in err


def test_tenant_add_rejects_bad_and_duplicate_names(kura_server):
    r = kura_server.cli("tenant", "add", "Bad Name!")
    assert r.returncode != 0
    ok = kura_server.cli("tenant", "add", "dupe")
    assert ok.returncode == 0
    again = kura_server.cli("tenant", "add", "dupe")
    assert again.returncode != 0 and "exists" in again.stderr


def test_log_lines_carry_request_ids_and_no_keys(kura_server):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="logs")
    secret_name = "very-private-object-name-7f3a"
    resp = s3.put_object(Bucket="logs", Key=secret_name, Body=b"x")
    rid = resp["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    time.sleep(0.2)
    log = kura_server.stderr_text()
    assert re.search(rf"req={rid} .*op=PutObject .*status=200", log), log
    assert secret_name not in log
    assert kura_server.secret_key not in log


def test_abandoned_uploads_are_swept(tmp_path):
    """[storage] abandoned_upload_age: an upload older than that is aborted
    by the background sweeper and its parts' blobs are deleted; a fresh one
    stays."""
    with running_server(tmp_path, "[storage]\nbackground_interval = 1\n"
                                  "abandoned_upload_age = 2\n") as server:
        s3 = server.client()
        s3.create_bucket(Bucket="sweep")
        old = s3.create_multipart_upload(Bucket="sweep", Key="old")["UploadId"]
        s3.upload_part(Bucket="sweep", Key="old", UploadId=old, PartNumber=1,
                       Body=b"x" * 1000)
        blobs = lambda: [p for p in (server.data_dir / "blobs").rglob("*")
                         if p.is_file()]
        assert len(blobs()) == 1
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ups = s3.list_multipart_uploads(Bucket="sweep").get("Uploads", [])
            if not ups:
                break
            time.sleep(0.5)
        assert s3.list_multipart_uploads(Bucket="sweep").get("Uploads", []) == []
        with pytest.raises(s3.exceptions.NoSuchUpload):
            s3.list_parts(Bucket="sweep", Key="old", UploadId=old)
        # The part's blob goes in the same or the next background run.
        deadline = time.monotonic() + 10
        while blobs() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert blobs() == []
        fresh = s3.create_multipart_upload(Bucket="sweep", Key="fresh")["UploadId"]
        ups = s3.list_multipart_uploads(Bucket="sweep")["Uploads"]
        assert [u["UploadId"] for u in ups] == [fresh]
        assert "aborted abandoned multipart upload" in server.stderr_text()


def test_background_interval_is_checked(tmp_path):
    cfg = write_config(tmp_path, "[storage]\nbackground_interval = 0\n")
    r = run_cli("server", "--config", cfg, "--data-dir", tmp_path / "d",
                "--listen", f"127.0.0.1:{pick_free_port()}", timeout=30)
    assert r.returncode != 0 and "background_interval" in r.stderr

"""One server per data directory, one server per port, and a configuration
checked before anything is created (issue 10, item 3).

- A second `kura server` on a data directory that a server owns exits at
  once naming the owner's pid, and the owner's upload in flight (100 MiB)
  completes and reads back: the second server never runs recovery.
- CLI commands (tenant, key, audit, check) work beside a running server
  and leave its staged uploads alone.
- A second server on a port in use is a start-up error (no SO_REUSEPORT).
- A bad configuration on a fresh data directory creates nothing: no
  directory, no meta.db, no root tenant, no printed secret.
"""

import hashlib
import http.client
import os
import signal
import subprocess
import time

import pytest

import helpers as H
from conftest import (kura_bin, make_cert, pick_free_port, random_access_key,
                      random_secret_key, running_server, write_config)

BIG = 100 * 1024 * 1024
FIRST = 60 * 1024 * 1024
EXIT_WITHIN = 10.0


def start_second(data_dir, port, config=None):
    """A `kura server` on data_dir and port with fresh root credentials in
    the environment; returns the Popen (text output, piped)."""
    env = dict(os.environ)
    env["KURA_ROOT_ACCESS_KEY"] = random_access_key()
    env["KURA_ROOT_SECRET_KEY"] = random_secret_key()
    cmd = [str(kura_bin()), "server", "--data-dir", str(data_dir),
           "--listen", f"127.0.0.1:{port}"]
    if config is not None:
        cmd += ["--config", str(config)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=env, text=True)


def must_exit(proc, within=EXIT_WITHIN):
    """The process exits on its own, non-zero, within `within` seconds;
    returns its stderr.  A process still running is killed and fails the
    test."""
    try:
        _, err = proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the second server did not exit within {within} s:\n{err}")
    assert proc.returncode != 0, err
    return err


class SlowPut:
    """A signed PUT of `data` sent in two parts over its own connection:
    begin() sends the head and the first `first` bytes, finish() the rest
    and returns the response."""

    def __init__(self, server, bucket, key, data, first):
        self.server, self.data, self.first = server, data, first
        self.path = H.key_path(bucket, key)
        self.conn = http.client.HTTPConnection(server.host, server.port, timeout=120)

    def begin(self):
        s = H.sign(self.server, "PUT", self.path,
                   headers={"Content-Length": str(len(self.data))},
                   payload_hash="UNSIGNED-PAYLOAD")
        self.conn.putrequest("PUT", self.path, skip_host=True,
                             skip_accept_encoding=True)
        for k, v in s.headers.items():
            self.conn.putheader(k, v)
        self.conn.endheaders()
        self.conn.send(self.data[:self.first])

    def finish(self):
        self.conn.send(self.data[self.first:])
        r = self.conn.getresponse()
        body = r.read()
        self.conn.close()
        return r.status, body


def staged(server):
    d = server.data_dir / "blobs" / "staging"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_second_server_on_owned_data_dir_exits_and_upload_survives(kura_server):
    """The reviewer's reproduction: a 100 MiB PUT in flight on server A,
    server B started on the same data directory.  B exits at once naming
    A's pid; A's PUT completes with 200 and reads back exactly."""
    a = kura_server
    s3 = a.client()
    s3.create_bucket(Bucket="owned")
    data = os.urandom(BIG)
    put = SlowPut(a, "owned", "big", data, FIRST)
    put.begin()
    # Wait until A has staged part of the body: that is what B's recovery
    # removed.
    deadline = time.monotonic() + 20
    while not staged(a) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert staged(a), "the upload never reached the staging directory"

    t0 = time.monotonic()
    err = must_exit(start_second(a.data_dir, pick_free_port()))
    assert time.monotonic() - t0 < EXIT_WITHIN
    assert f"pid {a.proc.pid}" in err, err
    assert "in use" in err and str(a.data_dir) in err, err
    assert "recovery" not in err
    assert staged(a), "the second server removed the upload in flight"

    status, body = put.finish()
    assert status == 200, body
    got = s3.get_object(Bucket="owned", Key="big")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert a.running
    assert (a.data_dir / "server.lock").read_text().strip() == str(a.proc.pid)
    # A restart of A (the owner) still works, and the object survives it.
    a.restart()
    head = a.client().head_object(Bucket="owned", Key="big")
    assert head["ContentLength"] == BIG


def test_owner_killed_hard_releases_the_data_dir(tmp_path):
    """The lock dies with its owner, however it dies: after kill -9 the
    next server starts (and recovers)."""
    with running_server(tmp_path) as server:
        server.client().create_bucket(Bucket="kill")
        server.kill9()
        server.start()
        assert [b["Name"] for b in server.client().list_buckets()["Buckets"]] == ["kill"]
        assert (server.data_dir / "server.lock").read_text().strip() == \
            str(server.proc.pid)


def test_second_server_on_a_shared_blob_store_exits(tmp_path):
    """Two data directories, one [storage] path: the blob store has one
    owner too, or the second server's recovery would remove the first
    one's uploads in flight (its metadata knows none of them)."""
    store = tmp_path / "shared-blobs"
    cfg = write_config(tmp_path, f"[storage]\npath = {store}\n")
    with running_server(tmp_path / "a", config_file=cfg) as a:
        err = must_exit(start_second(tmp_path / "b-data", pick_free_port(), config=cfg))
        assert f"pid {a.proc.pid}" in err and str(store) in err, err
        assert a.running


def test_cli_commands_beside_a_server_leave_uploads_alone(kura_server):
    """tenant, key, audit and check commands run while the server owns the
    directory: they work, and an upload in flight keeps its staged blob."""
    a = kura_server
    s3 = a.client()
    s3.create_bucket(Bucket="beside")
    data = os.urandom(8 * 1024 * 1024)
    put = SlowPut(a, "beside", "k", data, 4 * 1024 * 1024)
    put.begin()
    deadline = time.monotonic() + 20
    while not staged(a) and time.monotonic() < deadline:
        time.sleep(0.05)
    before = staged(a)
    assert before
    for args in (("tenant", "add", "beside-t"), ("key", "list"),
                 ("key", "create", "beside-k"), ("audit", "verify"), ("check",)):
        r = a.cli(*args)
        assert r.returncode in (0, 1), (args, r.stdout, r.stderr)
        if args[0] != "check":
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        assert staged(a) == before, args
    status, body = put.finish()
    assert status == 200, body
    assert s3.get_object(Bucket="beside", Key="k")["Body"].read() == data


def test_second_server_on_a_busy_port_is_a_start_up_error(kura_server, tmp_path):
    """No SO_REUSEPORT: a second server cannot bind the first one's port
    (the kernel would split clients between them).  It fails before it
    creates its data directory."""
    other = tmp_path / "other-data"
    err = must_exit(start_second(other, kura_server.port))
    assert "in use" in err, err
    assert str(kura_server.port) in err, err
    assert not other.exists()
    assert kura_server.running
    assert kura_server.client().list_buckets()["Buckets"] == []


BAD_CONFIGS = {
    # name: (ini text, listen override or None, words the error must name)
    "tls_cert_missing": ("[server]\ntls_cert = {tmp}/nope.crt\ntls_key = {tmp}/nope.key\n",
                         None, ["nope.crt"]),
    "tls_key_without_cert": ("[server]\ntls_key = {key}\n", None, ["tls_cert"]),
    "tls_cert_not_pem": ("[server]\ntls_cert = {ini}\ntls_key = {key}\n", None,
                         ["tls_cert"]),
    "tls_key_of_another_cert": ("[server]\ntls_cert = {cert}\ntls_key = {key2}\n",
                                None, ["tls_key"]),
    "plain_http_off_loopback": ("", "0.0.0.0:{port}", ["plain HTTP"]),
    "unknown_provider": ("[keys]\nprovider = vault\n", None, ["vault"]),
    "pkcs11_without_module": ("[keys]\nprovider = pkcs11\n", None, ["module"]),
    "kmip_without_server": ("[keys]\nprovider = kmip\n", None, ["server"]),
    "kek_scope": ("[keys]\nkek_scope = sideways\n", None, ["kek_scope"]),
    "region": ("[server]\nregion = us east 1\n", None, ["region"]),
    "storage_backend": ("[storage]\nbackend = tape\n", None, ["tape"]),
    "meta_driver": ("[meta]\ndriver = oracle\n", None, ["oracle"]),
    "bad_vhost": ("[server]\nvirtual_host_domains = " + ",".join(["d"] * 40) + "\n",
                  None, ["virtual_host_domains"]),
    "timeout_zero": ("[server]\nconnection_timeout = 0\n", None,
                     ["connection_timeout"]),
    "huge_ttl": ("[keys]\nbucket_key_ttl = 99999999999\n", None, ["bucket_key_ttl"]),
    "section_typo": ("[server\nregion = us-east-1\n", None, ["[server", "]"]),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_bad_config_creates_nothing(tmp_path, name):
    text, listen, words = BAD_CONFIGS[name]
    cert, key = make_cert(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, key2 = make_cert(other)
    port = pick_free_port()
    ini = write_config(tmp_path, text.format(tmp=tmp_path, cert=cert, key=key, key2=key2,
                                             ini=tmp_path / "kura.ini", port=port))
    data = tmp_path / "fresh-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    r = subprocess.run([str(kura_bin()), "server", "--config", str(ini),
                        "--data-dir", str(data), "--listen",
                        listen.format(port=port) if listen else f"127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=30, env=env,
                       stdin=subprocess.DEVNULL)
    assert r.returncode != 0, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    assert not data.exists(), f"{name}: created {sorted(os.listdir(data))}"
    assert "AWS_SECRET_ACCESS_KEY" not in r.stderr + r.stdout
    assert "root tenant" not in r.stderr

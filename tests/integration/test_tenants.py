"""Secrets do not linger, and leaked credentials can be revoked (issue 10,
item 4), checked against a running server:

- credentials from the environment never reach DATA_DIR/root-credentials
  and are wiped from the process environment (/proc/PID/environ), the
  PKCS#11 PIN too;
- the generated root secret's file goes away when its key is rotated, and
  `kura check` warns while it exists (fails with an external provider);
- `kura tenant list|suspend|resume|delete` and `kura tenant key
  list|create|rotate|revoke`: a revoked key or a suspended tenant is
  refused at the very next request; delete refuses a tenant with buckets
  unless --shred-buckets; every change is in the audit log.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError

import providers
from conftest import (KuraServer, kura_bin, parse_credentials, pick_free_port,
                      run_cli, running_server, s3_client, write_config)


def error_code(fn, *args, **kwargs):
    with pytest.raises(ClientError) as e:
        fn(*args, **kwargs)
    return (e.value.response["Error"]["Code"],
            e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def environ_of(pid):
    return Path(f"/proc/{pid}/environ").read_bytes()


def audit_ops(server):
    r = server.cli("audit", "export")
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return [(x.get("op"), x.get("phase"), x.get("tenant"), x.get("subject"),
             x.get("error")) for x in recs if x.get("type") == "admin"]


def cli_ok(server, *args):
    r = server.cli(*args)
    assert r.returncode == 0, f"{args}: {r.stdout}\n{r.stderr}"
    return r


def test_env_credentials_leave_no_trace(kura_server):
    """The fixture passes KURA_ROOT_ACCESS_KEY/KURA_ROOT_SECRET_KEY: they
    are not written to root-credentials, and the running server's
    /proc/PID/environ no longer holds the secret."""
    assert not (kura_server.data_dir / "root-credentials").exists()
    env = environ_of(kura_server.proc.pid)
    assert kura_server.secret_key.encode() not in env
    assert b"KURA_ROOT_SECRET_KEY=" + kura_server.secret_key[:8].encode() not in env
    # The credentials work all the same.
    assert kura_server.client().list_buckets()["Buckets"] == []


def test_pkcs11_pin_wiped_from_environ(tmp_path):
    """A PIN given in KURA_PKCS11_PIN is in locked memory, not in the
    server's environment."""
    pin = "pin-" + os.urandom(12).hex()
    hsm = providers.SoftHSM(tmp_path)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "pinenv",
                    "--pin", pin, "--so-pin", "5678"], check=True,
                   capture_output=True, env={**os.environ, **hsm.env})
    config = (f"[keys]\nprovider = pkcs11\nmodule = {providers.SOFTHSM_MODULE}\n"
              "token = pinenv\n")
    with running_server(tmp_path, config,
                        env={**hsm.env, "KURA_PKCS11_PIN": pin}) as server:
        cfg = server.config
        s3 = server.client()
        s3.create_bucket(Bucket="pin")
        s3.put_object(Bucket="pin", Key="k", Body=b"under the token")
        assert s3.get_object(Bucket="pin", Key="k")["Body"].read() == b"under the token"
        env = environ_of(server.proc.pid)
        assert pin.encode() not in env
        assert server.secret_key.encode() not in env
        # A CLI command beside it takes the PIN from its own environment.
        r = subprocess.run([str(kura_bin()), "key", "list", "--config", str(cfg),
                            "--data-dir", str(server.data_dir)],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, **hsm.env, "KURA_PKCS11_PIN": pin})
        assert r.returncode == 0, r.stderr


def start_without_env(tmp_path):
    """A server whose root credentials are generated (first start)."""
    server = KuraServer(tmp_path)
    server.access_key = server.secret_key = None
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    port = server.port
    out = tmp_path / "first.stderr"
    with open(out, "wb") as fe:
        proc = subprocess.Popen([str(kura_bin()), "server", "--data-dir",
                                 str(server.data_dir), "--listen", f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=fe,
                                stdin=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 20
    while "kura is ready" not in out.read_text():
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)
    return server, proc, parse_credentials(out.read_text())


def test_root_credentials_file_goes_with_rotation(tmp_path):
    server, proc, (ak, sk) = start_without_env(tmp_path)
    try:
        cred = server.data_dir / "root-credentials"
        assert parse_credentials(cred.read_text()) == (ak, sk)
        r = server.cli("check")
        assert r.returncode == 0, r.stdout          # a warning with the local keystore
        assert "WARN  root-credentials" in r.stdout and "(A-1)" in r.stdout
        s3 = s3_client(server.endpoint, ak, sk)
        s3.create_bucket(Bucket="rootdata")

        r = cli_ok(server, "tenant", "key", "rotate", "root")
        nak, nsk = parse_credentials(r.stdout)
        assert nak != ak
        assert not cred.exists()
        assert "root-credentials" in r.stdout       # it says so
        # The old secret fails at once, the new one works.
        assert error_code(s3.list_buckets) == ("InvalidAccessKeyId", 403)
        s3n = s3_client(server.endpoint, nak, nsk)
        assert [b["Name"] for b in s3n.list_buckets()["Buckets"]] == ["rootdata"]
        assert "root-credentials" not in server.cli("check").stdout
        # Nothing holds the new secret but the output it was printed to.
        for p in server.data_dir.rglob("*"):
            if p.is_file():
                assert nsk.encode() not in p.read_bytes(), p
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_check_fails_root_credentials_with_external_provider(tmp_path):
    hsm = providers.SoftHSM(tmp_path)
    cfg = write_config(tmp_path, hsm.config())
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "root-credentials").write_text("AWS_ACCESS_KEY_ID=KX\n")
    env = {**os.environ, **hsm.env}
    r = subprocess.run([str(kura_bin()), "check", "--config", str(cfg), "--data-dir",
                        str(data)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ERROR root-credentials" in r.stdout, r.stdout


def test_revoked_key_fails_at_once(kura_server):
    ak, sk = kura_server.add_tenant("acme")
    s3 = kura_server.client(ak, sk)
    s3.create_bucket(Bucket="acme-b")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "acme-b",
                                                          "Key": "k"})
    s3.put_object(Bucket="acme-b", Key="k", Body=b"v")
    assert requests.get(url, timeout=10).status_code == 200
    r = cli_ok(kura_server, "tenant", "key", "list", "acme")
    assert ak in r.stdout and "active" in r.stdout

    cli_ok(kura_server, "tenant", "key", "revoke", "acme", ak)
    assert error_code(s3.list_buckets) == ("InvalidAccessKeyId", 403)
    assert requests.get(url, timeout=10).status_code == 403
    assert "revoked" in kura_server.cli("tenant", "key", "list", "acme").stdout
    # Revocation is for good: there is no command to undo it, and
    # rotating a revoked key is refused.
    assert kura_server.cli("tenant", "key", "rotate", "acme", ak).returncode == 1
    # Another tenant's key cannot be revoked through this one.
    assert kura_server.cli("tenant", "key", "revoke", "acme",
                           kura_server.access_key).returncode == 1
    assert kura_server.client().list_buckets() is not None
    # A new key for the tenant reaches its data.
    nak, nsk = parse_credentials(cli_ok(kura_server, "tenant", "key", "create",
                                        "acme").stdout)
    assert kura_server.client(nak, nsk).get_object(
        Bucket="acme-b", Key="k")["Body"].read() == b"v"


def test_rotation_of_one_of_several_keys(kura_server):
    ak, sk = kura_server.add_tenant("multi")
    ak2, sk2 = parse_credentials(cli_ok(kura_server, "tenant", "key", "create",
                                        "multi").stdout)
    # Two active keys: which one to rotate must be said.
    r = kura_server.cli("tenant", "key", "rotate", "multi")
    assert r.returncode == 1 and "2 active" in r.stderr
    nak, nsk = parse_credentials(cli_ok(kura_server, "tenant", "key", "rotate",
                                        "multi", ak).stdout)
    assert error_code(kura_server.client(ak, sk).list_buckets)[0] == "InvalidAccessKeyId"
    kura_server.client(ak2, sk2).list_buckets()
    kura_server.client(nak, nsk).list_buckets()
    listing = cli_ok(kura_server, "tenant", "key", "list", "multi").stdout
    assert listing.count("active") == 2 and listing.count("revoked") == 1


def test_suspended_tenant_is_refused_and_resumed(kura_server):
    ak, sk = kura_server.add_tenant("susp")
    s3 = kura_server.client(ak, sk)
    s3.create_bucket(Bucket="susp-b")
    s3.put_object(Bucket="susp-b", Key="k", Body=b"kept")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "susp-b",
                                                          "Key": "k"})
    r = cli_ok(kura_server, "tenant", "suspend", "susp")
    assert error_code(s3.get_object, Bucket="susp-b", Key="k") == ("AccessDenied", 403)
    assert error_code(s3.put_object, Bucket="susp-b", Key="k2", Body=b"x") == \
        ("AccessDenied", 403)
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 403 and b"AccessDenied" in resp.content
    assert "suspended" in resp.text
    listing = cli_ok(kura_server, "tenant", "list").stdout
    assert any(line.split()[:2] == ["susp", "suspended"] for line in listing.splitlines())
    # Other tenants are unaffected.
    kura_server.client().list_buckets()

    cli_ok(kura_server, "tenant", "resume", "susp")
    assert s3.get_object(Bucket="susp-b", Key="k")["Body"].read() == b"kept"
    assert requests.get(url, timeout=10).status_code == 200


def test_tenant_delete(kura_server):
    ak, sk = kura_server.add_tenant("gone")
    s3 = kura_server.client(ak, sk)
    s3.create_bucket(Bucket="gone-a")
    s3.create_bucket(Bucket="gone-b")
    s3.put_object(Bucket="gone-a", Key="doc", Body=b"secret stuff")
    cli_ok(kura_server, "key", "create", "gone-kms", "--tenant", "gone")

    # Refused while it owns buckets: nothing changes.
    r = kura_server.cli("tenant", "delete", "gone", "--yes")
    assert r.returncode == 1
    assert "gone-a" in r.stderr and "--shred-buckets" in r.stderr
    assert s3.get_object(Bucket="gone-a", Key="doc")["Body"].read() == b"secret stuff"
    # No --yes: refused too.
    r = kura_server.cli("tenant", "delete", "gone", "--shred-buckets")
    assert r.returncode == 2 and "--yes" in r.stderr
    s3.list_buckets()

    r = cli_ok(kura_server, "tenant", "delete", "gone", "--shred-buckets", "--yes")
    certs = [line for line in r.stdout.splitlines() if line.endswith(".json")]
    assert len(certs) == 2
    for c in certs:
        v = kura_server.cli("cert", "verify", c)
        assert v.returncode == 0, v.stdout + v.stderr
    assert "gone-kms" in r.stdout                   # its key destroyed
    assert "gone" not in [line.split()[0] for line in
                          cli_ok(kura_server, "tenant", "list").stdout.splitlines()[1:]]
    code, status = error_code(s3.list_buckets)
    assert (code, status) == ("InvalidAccessKeyId", 403)
    assert kura_server.client().list_buckets()["Buckets"] == []
    # The name is free again, for a new tenant that sees nothing old.
    ak2, sk2 = kura_server.add_tenant("gone")
    assert kura_server.client(ak2, sk2).list_buckets()["Buckets"] == []

    r = kura_server.cli("tenant", "delete", "root", "--yes", "--shred-buckets")
    assert r.returncode == 1 and "root tenant cannot be deleted" in r.stderr
    assert kura_server.cli("tenant", "delete", "nobody", "--yes").returncode == 1


def test_every_change_is_audited(kura_server):
    ak, _ = kura_server.add_tenant("aud")
    cli_ok(kura_server, "tenant", "suspend", "aud")
    cli_ok(kura_server, "tenant", "resume", "aud")
    nak, _ = parse_credentials(cli_ok(kura_server, "tenant", "key", "create",
                                      "aud").stdout)
    cli_ok(kura_server, "tenant", "key", "revoke", "aud", nak)
    cli_ok(kura_server, "tenant", "key", "rotate", "aud", ak)
    cli_ok(kura_server, "tenant", "delete", "aud", "--yes")
    ops = audit_ops(kura_server)
    for op, subject in (("tenant.suspend", "aud"), ("tenant.resume", "aud"),
                        ("access_key.create", "aud"), ("access_key.revoke", nak),
                        ("access_key.rotate", ak), ("tenant.delete", "aud")):
        for phase in ("request", "result"):
            assert (op, phase, "aud", subject, None) in ops, (op, phase, ops[-20:])
    r = kura_server.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


def test_version_flag():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("kura ")
    assert r.stdout == run_cli("version").stdout

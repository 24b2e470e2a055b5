"""kura with external key providers: a SoftHSM2 token through PKCS#11 and
a PyKMIP server through KMIP, both real and started by these tests.

For each provider: PUT/GET, SSE-KMS / SSE-C / bucket default encryption,
rotation with reads of old and new objects, disable/enable, destroy then
read, provider outage then recovery, and shredding with a certificate
(signed inside the token for PKCS#11; by kura's own sealed signing key for
KMIP, since PyKMIP cannot sign with a scheme kura accepts).
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import run_cli, running_server
from helpers import eventually
from providers import PyKMIP, SoftHSM

PROVIDERS = {"pkcs11": SoftHSM, "kmip": PyKMIP}


@pytest.fixture(params=sorted(PROVIDERS), scope="module")
def env(request, tmp_path_factory):
    """(server, peer, config path) with the server using the provider."""
    work = tmp_path_factory.mktemp(request.param)
    peer = PROVIDERS[request.param](work)
    # SSE-C over plain HTTP: the loopback exception (AWS, and kura by
    # default, refuse it; test_keys.py runs SSE-C over TLS).
    config = (peer.config() + "rotation_grace = 1\n"
              "[storage]\nbackground_interval = 1\n"
              "[server]\nallow_ssec_over_http = true\n")
    try:
        with running_server(work, config, env=getattr(peer, "env", {})) as server:
            server.provider = request.param
            yield server, peer, server.config
    finally:
        peer.close()


def cli(server, cfg, peer, *args):
    env = {**os.environ, **getattr(peer, "env", {})}
    r = run_cli(*args, "--data-dir", server.data_dir, "--config", cfg, env=env,
                timeout=120)
    assert r.returncode == 0, f"kura {' '.join(map(str, args))}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_put_get_through_provider(env):
    server, peer, cfg = env
    s3 = server.client()
    s3.create_bucket(Bucket="putget")
    data = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket="putget", Key="k", Body=data)
    assert s3.get_object(Bucket="putget", Key="k")["Body"].read() == data
    keys = cli(server, cfg, peer, "key", "list")
    line = [l for l in keys.splitlines() if l.startswith("bucket/putget ")][0]
    assert server.provider in line
    kek = {"pkcs11": "p11:", "kmip": "kmip:"}[server.provider]
    assert kek in line


def test_sse_kms_sse_c_and_default(env):
    server, peer, cfg = env
    s3 = server.client()
    s3.create_bucket(Bucket="sse")
    cli(server, cfg, peer, "key", "create", "named")
    s3.put_object(Bucket="sse", Key="kms", Body=b"kms", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId="named")
    key = os.urandom(32)
    s3.put_object(Bucket="sse", Key="c", Body=b"ssec", SSECustomerAlgorithm="AES256",
                  SSECustomerKey=key)
    s3.put_bucket_encryption(Bucket="sse", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "named"}}]})
    s3.put_object(Bucket="sse", Key="def", Body=b"default")
    assert s3.get_object(Bucket="sse", Key="kms")["SSEKMSKeyId"] == "named"
    assert s3.get_object(Bucket="sse", Key="def")["Body"].read() == b"default"
    assert s3.get_object(Bucket="sse", Key="c", SSECustomerAlgorithm="AES256",
                         SSECustomerKey=key)["Body"].read() == b"ssec"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="sse", Key="c", SSECustomerAlgorithm="AES256",
                      SSECustomerKey=os.urandom(32))
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_rotation(env):
    server, peer, cfg = env
    s3 = server.client()
    s3.create_bucket(Bucket="rot")
    s3.put_object(Bucket="rot", Key="old", Body=b"before rotation")
    cli(server, cfg, peer, "key", "rotate", "bucket/rot")
    s3.put_object(Bucket="rot", Key="new", Body=b"after rotation")
    assert s3.get_object(Bucket="rot", Key="old")["Body"].read() == b"before rotation"
    assert s3.get_object(Bucket="rot", Key="new")["Body"].read() == b"after rotation"

    def old_version_destroyed():
        line = [l for l in cli(server, cfg, peer, "key", "list").splitlines()
                if l.startswith("bucket/rot ")][0]
        assert " retired" not in line and " destroyed" in line, line
    eventually(old_version_destroyed, timeout=30)
    assert s3.get_object(Bucket="rot", Key="old")["Body"].read() == b"before rotation"


def test_disable_enable_destroy(env):
    server, peer, cfg = env
    s3 = server.client()
    s3.create_bucket(Bucket="life")
    cli(server, cfg, peer, "key", "create", "life-key")
    s3.put_object(Bucket="life", Key="k", Body=b"v", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId="life-key")
    cli(server, cfg, peer, "key", "disable", "life-key")

    def disabled():
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="life", Key="k")
        assert e.value.response["Error"]["Code"] == "KMS.DisabledException"
    eventually(disabled, timeout=5)
    cli(server, cfg, peer, "key", "enable", "life-key")
    eventually(lambda: s3.get_object(Bucket="life", Key="k"), timeout=5)
    cli(server, cfg, peer, "key", "destroy", "life-key", "--yes")

    def destroyed():
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="life", Key="k")
        assert e.value.response["Error"]["Code"] == "KMS.KMSInvalidStateException"
    eventually(destroyed, timeout=5)


def test_provider_outage_and_recovery(env):
    server, peer, cfg = env
    s3 = server.client()
    s3.create_bucket(Bucket="outage")
    s3.put_object(Bucket="outage", Key="k", Body=b"survives")
    # Force provider round trips: a new bucket needs a new KEK.
    peer.outage()
    try:
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket="during-outage")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (500, 503)
    finally:
        peer.recover()

    def works_again():
        s3.create_bucket(Bucket="after-outage")
    eventually(works_again, timeout=60)
    s3.put_object(Bucket="after-outage", Key="k", Body=b"again")
    assert s3.get_object(Bucket="after-outage", Key="k")["Body"].read() == b"again"
    assert s3.get_object(Bucket="outage", Key="k")["Body"].read() == b"survives"


def test_shred_and_certificate(env, tmp_path):
    server, peer, cfg = env
    s3 = server.client()
    s3.create_bucket(Bucket="gone")
    bodies = {f"o{i}": os.urandom(100) for i in range(3)}
    for k, v in bodies.items():
        s3.put_object(Bucket="gone", Key=k, Body=v)
    # A copy of everything on disk from before the shred (the keys stay in
    # the token or the key manager, where shredding destroys them).
    server.stop()
    before = tmp_path / "before"
    shutil.copytree(server.data_dir, before)
    server.start()
    out = cli(server, cfg, peer, "bucket", "shred", "gone", "--yes")
    cert = Path(out.strip())
    doc = json.loads(cert.read_text())
    assert doc["keys_destroyed"][0]["provider"] == server.provider
    assert len(doc["objects"]) == 3
    expect_alg = "ECDSA-P256-SHA256"
    assert doc["signature"]["algorithm"] == expect_alg
    if server.provider == "pkcs11":
        assert doc["signature"]["signer"].startswith("p11sig:")
    else:
        assert doc["signature"]["signer"] == "kura-local-signer"
    v = run_cli("cert", "verify", cert, "--data-dir", server.data_dir, "--config", cfg,
                env={**os.environ, **getattr(peer, "env", {})})
    assert v.returncode == 0 and "matches" in v.stdout, v.stdout + v.stderr
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="gone")

    # Served from the pre-shred copy with the same provider, not one byte.
    with running_server(tmp_path, config_file=cfg, env=getattr(peer, "env", {}),
                        start=False) as old:
        shutil.copytree(before, old.data_dir)
        old.access_key, old.secret_key = server.access_key, server.secret_key
        old.start()
        s3old = old.client()
        for k in bodies:
            with pytest.raises(ClientError):
                s3old.get_object(Bucket="gone", Key=k)

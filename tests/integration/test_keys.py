"""Key lifecycle and server-side encryption through real clients:
SSE-KMS, bucket default encryption, SSE-C, rotation with background
re-wrapping, disable/enable, destroy, BYOK import, crypto-shredding with a
deletion certificate, and `kura check`.

These run against the local keystore; test_key_providers.py repeats the
provider-specific parts against SoftHSM2 (PKCS#11) and PyKMIP (KMIP).
"""

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import run_cli, running_server, server_fixture, write_config
from helpers import eventually

ROOT = Path(__file__).resolve().parents[2]


def error_code(exc):
    return exc.value.response["Error"]["Code"]


def status(exc):
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def cli_ok(server, *args):
    r = server.cli(*args)
    assert r.returncode == 0, f"kura {' '.join(map(str, args))}: {r.stdout}\n{r.stderr}"
    return r.stdout


# A server whose background work runs every second and whose rotation grace
# period is one second, so re-wrapping finishes during a test.  (The server
# notices key changes made by the CLI within about a second: eventually.)
fast_server = server_fixture("[storage]\nbackground_interval = 1\n"
                             "[keys]\nrotation_grace = 1\n")


# -- SSE-KMS ------------------------------------------------------------------

def test_sse_kms_named_key(kura_server):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="kmsb")
    cli_ok(kura_server, "key", "create", "app-key")
    put = s3.put_object(Bucket="kmsb", Key="k", Body=b"kms data",
                        ServerSideEncryption="aws:kms", SSEKMSKeyId="app-key")
    assert put["ServerSideEncryption"] == "aws:kms"
    assert put["SSEKMSKeyId"] == "app-key"
    assert put["BucketKeyEnabled"] is True
    got = s3.get_object(Bucket="kmsb", Key="k")
    assert got["Body"].read() == b"kms data"
    assert got["ServerSideEncryption"] == "aws:kms"
    assert got["SSEKMSKeyId"] == "app-key"
    head = s3.head_object(Bucket="kmsb", Key="k")
    assert head["SSEKMSKeyId"] == "app-key"

    # An ARN naming the key works as AWS SDKs send it.
    arn = "arn:aws:kms:us-east-1:123456789012:key/app-key"
    s3.put_object(Bucket="kmsb", Key="arn", Body=b"x",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId=arn)
    assert s3.head_object(Bucket="kmsb", Key="arn")["SSEKMSKeyId"] == "app-key"

    # aws:kms without a key id: the bucket's own key.
    s3.put_object(Bucket="kmsb", Key="own", Body=b"x", ServerSideEncryption="aws:kms")
    assert s3.head_object(Bucket="kmsb", Key="own")["SSEKMSKeyId"] == "bucket/kmsb"

    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="kmsb", Key="nokey", Body=b"x",
                      ServerSideEncryption="aws:kms", SSEKMSKeyId="no-such-key")
    assert error_code(e) == "KMS.NotFoundException" and status(e) == 400
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="kmsb", Key="nokey")
    assert status(e) == 404


def test_sse_kms_key_of_another_tenant_is_not_found(kura_server, tenant):
    cli_ok(kura_server, "key", "create", "roots-key")
    tenant.create_bucket(Bucket="tenantb")
    with pytest.raises(ClientError) as e:
        tenant.put_object(Bucket="tenantb", Key="k", Body=b"x",
                          ServerSideEncryption="aws:kms", SSEKMSKeyId="roots-key")
    assert error_code(e) == "KMS.NotFoundException"


def test_bucket_default_encryption(kura_server):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="defenc")
    cfg = s3.get_bucket_encryption(Bucket="defenc")
    rule = cfg["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    cli_ok(kura_server, "key", "create", "default-key")
    s3.put_bucket_encryption(Bucket="defenc", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "default-key"},
            "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket="defenc")[
        "ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "default-key"}
    put = s3.put_object(Bucket="defenc", Key="d", Body=b"default")
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == "default-key"
    # An explicit header still wins over the default.
    put = s3.put_object(Bucket="defenc", Key="e", Body=b"explicit",
                        ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    # Multipart uploads follow the default too.
    mpu = s3.create_multipart_upload(Bucket="defenc", Key="m")
    assert mpu["SSEKMSKeyId"] == "default-key"
    s3.abort_multipart_upload(Bucket="defenc", Key="m", UploadId=mpu["UploadId"])

    s3.delete_bucket_encryption(Bucket="defenc")
    put = s3.put_object(Bucket="defenc", Key="f", Body=b"x")
    assert put["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket="defenc", Key="d")["Body"].read() == b"default"

    with pytest.raises(ClientError) as e:
        s3.put_bucket_encryption(Bucket="defenc", ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "missing"}}]})
    assert error_code(e) == "KMS.NotFoundException"


# -- SSE-C ------------------------------------------------------------------

def ssec(key):
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def test_sse_c_put_get_head(tls_server):
    kura_server = tls_server
    s3 = kura_server.client()
    s3.create_bucket(Bucket="ssec")
    key, other = os.urandom(32), os.urandom(32)
    put = s3.put_object(Bucket="ssec", Key="c", Body=b"customer keyed", **ssec(key))
    assert put["SSECustomerAlgorithm"] == "AES256"
    assert put["SSECustomerKeyMD5"] == base64.b64encode(hashlib.md5(key).digest()).decode()
    assert "ServerSideEncryption" not in put

    got = s3.get_object(Bucket="ssec", Key="c", **ssec(key))
    assert got["Body"].read() == b"customer keyed"
    assert got["SSECustomerAlgorithm"] == "AES256"
    assert s3.head_object(Bucket="ssec", Key="c", **ssec(key))["ContentLength"] == 14

    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="ssec", Key="c")
    assert status(e) == 400 and error_code(e) == "InvalidRequest"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="ssec", Key="c", **ssec(other))
    assert status(e) == 403 and error_code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="ssec", Key="c", **ssec(other))
    assert status(e) == 403

    # The key is never stored: it appears in no file of the data dir.
    for p in kura_server.data_dir.rglob("*"):
        if p.is_file():
            assert key not in p.read_bytes(), p

    # SSE-C headers on an object that is not SSE-C are refused.
    s3.put_object(Bucket="ssec", Key="plain", Body=b"p")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="ssec", Key="plain", **ssec(key))
    assert status(e) == 400


# A plain-HTTP server with the loopback exception for SSE-C on.
ssec_http_server = server_fixture("[server]\nallow_ssec_over_http = true\n")


SSEC_OVER_HTTP = ("Requests specifying Server Side Encryption with Customer provided "
                  "keys must be made over a secure connection.")


def test_sse_c_refused_over_plain_http(kura_server):
    """AWS refuses SSE-C keys sent over plain HTTP; so does kura, before it
    acts on anything (item 6 of issue 10)."""
    from tools_helpers import raw_request
    s3 = kura_server.client()
    s3.create_bucket(Bucket="plainc")
    s3.put_object(Bucket="plainc", Key="plain", Body=b"no customer key")
    up = s3.create_multipart_upload(Bucket="plainc", Key="mp")
    key = os.urandom(32)
    md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    sse = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
           "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
           "x-amz-server-side-encryption-customer-key-MD5": md5}
    copy_sse = {k.replace("x-amz-", "x-amz-copy-source-"): v for k, v in sse.items()}
    cases = [
        ("PUT", "/plainc/new", "", sse),
        ("GET", "/plainc/plain", "", sse),
        ("HEAD", "/plainc/plain", "", sse),
        ("POST", "/plainc/newmp", "uploads=", sse),
        ("PUT", "/plainc/mp", f"partNumber=1&uploadId={up['UploadId']}", sse),
        ("PUT", "/plainc/copy", "", {**copy_sse, "x-amz-copy-source": "/plainc/plain"}),
    ]
    for method, path, query, headers in cases:
        r = raw_request(kura_server, method, path, query=query, body=b"data" if
                        method == "PUT" and "copy" not in path else b"",
                        headers=headers)
        assert r.status == 400, (method, path, r.status, r.body)
        if method != "HEAD":
            assert r.error_code() == "InvalidRequest", r.body
            assert SSEC_OVER_HTTP.encode() in r.body, r.body
    for k in ("new", "copy"):
        with pytest.raises(ClientError):
            s3.head_object(Bucket="plainc", Key=k)
    assert s3.list_parts(Bucket="plainc", Key="mp", UploadId=up["UploadId"]).get(
        "Parts", []) == []
    assert not s3.list_multipart_uploads(Bucket="plainc", Prefix="newmp").get("Uploads")


def test_sse_c_etag_is_not_the_plaintext_md5(tls_server):
    """As AWS: an SSE-C object's ETag is no MD5 of its plaintext, which
    would let anyone who sees ETags confirm a guess of the content."""
    s3 = tls_server.client()
    s3.create_bucket(Bucket="ssecetag")
    key = os.urandom(32)
    body = b"a short guessable secret"
    put = s3.put_object(Bucket="ssecetag", Key="c", Body=body, **ssec(key))
    etag = put["ETag"].strip('"')
    assert re.fullmatch(r"[0-9a-f]{32}", etag) and etag != hashlib.md5(body).hexdigest()
    assert s3.head_object(Bucket="ssecetag", Key="c", **ssec(key))["ETag"] == put["ETag"]
    listed = s3.list_objects_v2(Bucket="ssecetag")["Contents"][0]["ETag"]
    assert listed == put["ETag"]
    # A second PUT of the same bytes gets another ETag (nothing derived
    # from the content).
    again = s3.put_object(Bucket="ssecetag", Key="d", Body=body, **ssec(key))
    assert again["ETag"] != put["ETag"]


def test_sse_c_bad_key_headers(ssec_http_server):
    kura_server = ssec_http_server
    s3 = kura_server.client()
    s3.create_bucket(Bucket="ssecbad")
    from tools_helpers import raw_request
    key = os.urandom(32)
    good_md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    cases = [
        ({"x-amz-server-side-encryption-customer-algorithm": "AES256",
          "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
          "x-amz-server-side-encryption-customer-key-MD5":
              base64.b64encode(hashlib.md5(b"x").digest()).decode()}, 400),
        ({"x-amz-server-side-encryption-customer-algorithm": "AES256",
          "x-amz-server-side-encryption-customer-key": base64.b64encode(key[:16]).decode(),
          "x-amz-server-side-encryption-customer-key-MD5": good_md5}, 400),
        ({"x-amz-server-side-encryption-customer-algorithm": "DES",
          "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
          "x-amz-server-side-encryption-customer-key-MD5": good_md5}, 400),
    ]
    for headers, want in cases:
        r = raw_request(kura_server, "PUT", "/ssecbad/k", body=b"x", headers=headers)
        assert r.status == want, (headers, r.status, r.body)
        assert r.error_code() in ("InvalidArgument", "InvalidEncryptionAlgorithmError")
    with pytest.raises(ClientError):
        s3.head_object(Bucket="ssecbad", Key="k")


def test_sse_c_multipart_and_copy(tls_server):
    s3 = tls_server.client()
    s3.create_bucket(Bucket="ssecmp")
    key, other = os.urandom(32), os.urandom(32)
    part1, part2 = os.urandom(5 * 1024 * 1024), os.urandom(1000)
    mpu = s3.create_multipart_upload(Bucket="ssecmp", Key="big", **ssec(key))
    uid = mpu["UploadId"]
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket="ssecmp", Key="big", UploadId=uid, PartNumber=1,
                       Body=part1, **ssec(other))
    assert status(e) == 403
    p1 = s3.upload_part(Bucket="ssecmp", Key="big", UploadId=uid, PartNumber=1,
                        Body=part1, **ssec(key))
    p2 = s3.upload_part(Bucket="ssecmp", Key="big", UploadId=uid, PartNumber=2,
                        Body=part2, **ssec(key))
    s3.complete_multipart_upload(Bucket="ssecmp", Key="big", UploadId=uid,
                                 MultipartUpload={"Parts": [
                                     {"PartNumber": 1, "ETag": p1["ETag"]},
                                     {"PartNumber": 2, "ETag": p2["ETag"]}]})
    got = s3.get_object(Bucket="ssecmp", Key="big", Range="bytes=5242870-5242889",
                        **ssec(key))
    assert got["Body"].read() == (part1 + part2)[5242870:5242890]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="ssecmp", Key="big")
    assert status(e) == 400

    # Copy an SSE-C source to an SSE-S3 target and to another SSE-C key.
    s3.copy_object(Bucket="ssecmp", Key="plaincopy",
                   CopySource={"Bucket": "ssecmp", "Key": "big"},
                   CopySourceSSECustomerAlgorithm="AES256",
                   CopySourceSSECustomerKey=key)
    assert s3.get_object(Bucket="ssecmp", Key="plaincopy")["Body"].read() == part1 + part2
    s3.copy_object(Bucket="ssecmp", Key="rekeyed",
                   CopySource={"Bucket": "ssecmp", "Key": "big"},
                   CopySourceSSECustomerAlgorithm="AES256",
                   CopySourceSSECustomerKey=key, **ssec(other))
    assert s3.get_object(Bucket="ssecmp", Key="rekeyed",
                         **ssec(other))["Body"].read() == part1 + part2
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket="ssecmp", Key="nokey",
                       CopySource={"Bucket": "ssecmp", "Key": "big"})
    assert status(e) == 400


# -- lifecycle ----------------------------------------------------------------

def list_keys(server):
    return cli_ok(server, "key", "list")


def test_rotation_rewraps_in_background(fast_server):
    s3 = fast_server.client()
    s3.create_bucket(Bucket="rot")
    before = {f"old{i}": os.urandom(1000 + i) for i in range(20)}
    for k, v in before.items():
        s3.put_object(Bucket="rot", Key=k, Body=v)
    mpu = s3.create_multipart_upload(Bucket="rot", Key="inflight")
    p1 = s3.upload_part(Bucket="rot", Key="inflight", UploadId=mpu["UploadId"],
                        PartNumber=1, Body=b"p" * 100)

    out = cli_ok(fast_server, "key", "rotate", "bucket/rot")
    assert "version 2" in out
    after = {"new": os.urandom(3000)}
    s3.put_object(Bucket="rot", Key="new", Body=after["new"])
    for k, v in {**before, **after}.items():
        assert s3.get_object(Bucket="rot", Key=k)["Body"].read() == v

    # The upload begun before the rotation still completes and reads.
    s3.complete_multipart_upload(Bucket="rot", Key="inflight", UploadId=mpu["UploadId"],
                                 MultipartUpload={"Parts": [
                                     {"PartNumber": 1, "ETag": p1["ETag"]}]})
    assert s3.get_object(Bucket="rot", Key="inflight")["Body"].read() == b"p" * 100

    # Background work moves every DEK to the new bucket key, then destroys
    # version 1's KEK.
    def v1_destroyed():
        line = [l for l in list_keys(fast_server).splitlines()
                if l.startswith("bucket/rot ")][0]
        assert "1:" in line and " destroyed" in line.split("2:")[0], line
        assert "2:" in line and "active" in line, line
    eventually(v1_destroyed, timeout=20)
    for k, v in {**before, **after}.items():
        assert s3.get_object(Bucket="rot", Key=k)["Body"].read() == v
    assert "re-wrapped" in fast_server.stderr_text()


def test_disable_enable(kura_server):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="dis")
    cli_ok(kura_server, "key", "create", "switch")
    s3.put_object(Bucket="dis", Key="k", Body=b"v",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId="switch")
    s3.put_object(Bucket="dis", Key="other", Body=b"own key")
    cli_ok(kura_server, "key", "disable", "switch")

    def refused():
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="dis", Key="k")
        assert error_code(e) == "KMS.DisabledException" and status(e) == 400
    eventually(refused, timeout=5)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="dis", Key="k2", Body=b"v",
                      ServerSideEncryption="aws:kms", SSEKMSKeyId="switch")
    assert error_code(e) == "KMS.DisabledException"
    # Data under other keys is unaffected.
    assert s3.get_object(Bucket="dis", Key="other")["Body"].read() == b"own key"

    cli_ok(kura_server, "key", "enable", "switch")
    eventually(lambda: s3.get_object(Bucket="dis", Key="k")["Body"].read(), timeout=5)
    assert s3.get_object(Bucket="dis", Key="k")["Body"].read() == b"v"


def test_destroy_makes_data_unreadable(kura_server):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="des")
    cli_ok(kura_server, "key", "create", "doomed")
    s3.put_object(Bucket="des", Key="k", Body=b"secret",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId="doomed")
    assert s3.get_object(Bucket="des", Key="k")["Body"].read() == b"secret"
    r = kura_server.cli("key", "destroy", "doomed")
    assert r.returncode != 0 and "--yes" in r.stderr
    cli_ok(kura_server, "key", "destroy", "doomed", "--yes")

    def gone():
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket="des", Key="k")
        assert error_code(e) == "KMS.KMSInvalidStateException"
    eventually(gone, timeout=5)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="des", Key="k2", Body=b"v",
                      ServerSideEncryption="aws:kms", SSEKMSKeyId="doomed")
    assert error_code(e) == "KMS.NotFoundException"
    # The name can be used again for a new, different key.
    cli_ok(kura_server, "key", "create", "doomed")
    with pytest.raises(ClientError):
        s3.get_object(Bucket="des", Key="k")
    assert "destroyed" in list_keys(kura_server)


def test_byok_import(kura_server, tmp_path):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="byok")
    material = tmp_path / "key.hex"
    material.write_text(os.urandom(32).hex() + "\n")
    material.chmod(0o600)
    cli_ok(kura_server, "key", "import", "mine", "--from", material)
    assert "(imported)" in list_keys(kura_server)
    s3.put_object(Bucket="byok", Key="k", Body=b"byok",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId="mine")
    assert s3.get_object(Bucket="byok", Key="k")["Body"].read() == b"byok"
    bad = tmp_path / "bad.hex"
    bad.write_text("abcd\n")
    assert kura_server.cli("key", "import", "bad", "--from", bad).returncode != 0
    assert kura_server.cli("key", "create", "bucket/sneaky").returncode != 0


def test_check_reports_local_keystore(kura_server):
    r = kura_server.cli("check")
    assert "keys.provider" in r.stdout and "local keystore" in r.stdout
    assert "master key is stored with the data" in r.stdout
    assert r.returncode == 0          # warnings only
    os.chmod(kura_server.data_dir, 0o755)
    try:
        r = kura_server.cli("check")
        assert r.returncode == 1 and "ERROR" in r.stdout
    finally:
        os.chmod(kura_server.data_dir, 0o700)


# -- shredding ------------------------------------------------------------------

def external_keys_config(tmp_path):
    """A configuration whose keystore and master key live outside the data
    directory (as a real deployment keeps keys apart from the data)."""
    keys = tmp_path / "keys-elsewhere"
    keys.mkdir(mode=0o700)
    return write_config(tmp_path, f"[keys]\nmaster_key_file = {keys}/master.key\n"
                                  f"keystore_file = {keys}/keystore\n")


def test_shred_with_certificate(tmp_path):
    cfg = external_keys_config(tmp_path)
    with running_server(tmp_path / "srv", config_file=cfg) as server:
        s3 = server.client()
        s3.create_bucket(Bucket="shredme")
        s3.create_bucket(Bucket="keepme")
        bodies = {f"doc{i}.txt": os.urandom(2000 + i) for i in range(5)}
        for k, v in bodies.items():
            s3.put_object(Bucket="shredme", Key=k, Body=v)
        s3.put_object(Bucket="keepme", Key="k", Body=b"kept")
        server.stop()
        before = tmp_path / "copy-before-shred"
        shutil.copytree(server.data_dir, before)
        server.start()

        r = server.cli("bucket", "shred", "shredme", "--config", cfg)
        assert r.returncode != 0 and "--yes" in r.stderr
        out = server.cli("bucket", "shred", "shredme", "--yes", "--config", cfg)
        assert out.returncode == 0, out.stderr
        cert = Path(out.stdout.strip())
        assert cert.is_file()

        doc = json.loads(cert.read_text())
        assert doc["format"] == "kura-deletion-certificate/2"
        # Objects are named by version, never by a function of their
        # plaintext such as an MD5 ETag.
        assert all(set(o) == {"key", "size", "version", "last_modified"} and
                   re.fullmatch(r"[0-9a-f]{32}", o["version"])
                   for o in doc["objects"])
        assert doc["bucket"]["name"] == "shredme"
        assert sorted(o["key"] for o in doc["objects"]) == sorted(bodies)
        assert {o["key"]: o["size"] for o in doc["objects"]} == \
            {k: len(v) for k, v in bodies.items()}
        assert doc["keys_destroyed"][0]["name"] == "bucket/shredme"
        assert len(doc["replicas_removed"]) == len(bodies)

        # Verify: valid against the data dir's signer and the pinned key.
        v = run_cli("cert", "verify", cert, "--data-dir", server.data_dir,
                    "--config", cfg)
        assert v.returncode == 0 and "matches" in v.stdout, v.stdout + v.stderr
        pem = tmp_path / "signer.pem"
        pem.write_text(server.cli("cert", "public-key", "--config", cfg).stdout)
        v = run_cli("cert", "verify", cert, "--public-key", pem)
        assert v.returncode == 0, v.stdout

        # An auditor's own verifier, written from docs/CERTIFICATE.md.
        assert independent_verify(json.loads(cert.read_text()), pem, tmp_path)

        # Tampering: change a size; remove an object; any of these fails.
        for mutate in (lambda d: d["objects"][0].__setitem__("size", 1),
                       lambda d: d["objects"].pop(),
                       lambda d: d["bucket"].__setitem__("name", "other"),
                       lambda d: d.__setitem__("completed_at", "2020-01-01T00:00:00.000Z")):
            d = json.loads(cert.read_text())
            mutate(d)
            bad = tmp_path / "tampered.json"
            bad.write_text(json.dumps(d))
            v = run_cli("cert", "verify", bad, "--public-key", pem)
            assert v.returncode != 0 and "INVALID" in v.stdout
        # A forgery signed with another key fails against the pinned key.
        forged = forge_certificate(json.loads(cert.read_text()), tmp_path)
        v = run_cli("cert", "verify", forged, "--public-key", pem)
        assert v.returncode != 0

        # The bucket is gone; the other bucket is untouched.
        with pytest.raises(ClientError) as e:
            s3.head_bucket(Bucket="shredme")
        assert status(e) == 404
        assert s3.get_object(Bucket="keepme", Key="k")["Body"].read() == b"kept"
        assert not [p for p in (server.data_dir / "blobs").rglob("*")
                    if p.is_file() and p.stat().st_size > 2000]

    # A copy of the data directory from before the shred, served with the
    # (shared) key provider, yields no byte of the data.
    with running_server(tmp_path / "old", config_file=cfg, start=False) as old:
        shutil.copytree(before, old.data_dir)
        old.access_key, old.secret_key = server.access_key, server.secret_key
        old.start()
        s3 = old.client()
        for k in bodies:
            with pytest.raises(ClientError):
                s3.get_object(Bucket="shredme", Key=k)
        assert s3.get_object(Bucket="keepme", Key="k")["Body"].read() == b"kept"
    # Nor does any file of that copy contain a plaintext body.
    for p in before.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            for v in bodies.values():
                assert v[:64] not in data


def canonical(doc):
    """docs/CERTIFICATE.md: members sorted, no white space, ASCII only with
    \\uXXXX escapes in upper-case hex."""
    import re
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(),
                  text).encode()


def independent_verify(doc, pem, tmp_path):
    sig = base64.b64decode(doc["signature"]["value"])
    pub_der = base64.b64decode(doc["signature"]["public_key"])
    pinned = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pem), "-outform",
                             "DER"], check=True, capture_output=True).stdout
    if pub_der != pinned:
        return False
    body = dict(doc)
    body.pop("signature")
    (tmp_path / "iv-canon").write_bytes(canonical(body))
    (tmp_path / "iv-sig").write_bytes(sig)
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(pem), "-signature",
                        str(tmp_path / "iv-sig"), str(tmp_path / "iv-canon")],
                       capture_output=True, text=True)
    return r.returncode == 0 and "Verified OK" in r.stdout


def forge_certificate(doc, tmp_path):
    """Re-sign a modified certificate with a freshly made key."""
    key = tmp_path / "forger.key"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                    "-out", str(key)], check=True, capture_output=True)
    doc["objects"] = doc["objects"][:1]
    doc.pop("signature")
    msg = tmp_path / "canon"
    msg.write_bytes(canonical(doc))
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key), str(msg)],
                         check=True, capture_output=True).stdout
    pub = subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    doc["signature"] = {"algorithm": "ECDSA-P256-SHA256", "signer": "forger",
                        "public_key": base64.b64encode(pub).decode(),
                        "value": base64.b64encode(sig).decode()}
    out = tmp_path / "forged.json"
    out.write_text(json.dumps(doc))
    # Unpinned, the forgery's own signature is valid: that is why pinning
    # matters, and why the verifier says so.
    v = run_cli("cert", "verify", out)
    assert v.returncode == 0 and "NOT pinned" in v.stdout
    return out


def test_tenant_scope_keys(tmp_path):
    """[keys] kek_scope = tenant: a tenant's buckets share one key, which
    shredding one bucket cannot destroy (the certificate says so)."""
    with running_server(tmp_path, "[keys]\nkek_scope = tenant\n") as server:
        cfg = server.config
        s3 = server.client()
        s3.create_bucket(Bucket="tena")
        s3.create_bucket(Bucket="tenb")
        s3.put_object(Bucket="tena", Key="k", Body=b"a")
        s3.put_object(Bucket="tenb", Key="k", Body=b"b")
        keys = server.cli("key", "list", "--config", cfg).stdout
        assert "tenant/default" in keys and "bucket/tena" not in keys
        out = server.cli("bucket", "shred", "tena", "--yes", "--config", cfg)
        assert out.returncode == 0, out.stderr
        doc = json.loads(Path(out.stdout.strip()).read_text())
        assert doc["keys_destroyed"] == []
        assert doc["keys_retained"][0]["name"] == "tenant/default"
        assert s3.get_object(Bucket="tenb", Key="k")["Body"].read() == b"b"
        with pytest.raises(ClientError):
            s3.head_bucket(Bucket="tena")


def test_copy_to_kms_target(kura_server):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="cpk")
    cli_ok(kura_server, "key", "create", "copy-key")
    s3.put_object(Bucket="cpk", Key="src", Body=b"copy me")
    r = s3.copy_object(Bucket="cpk", Key="dst", CopySource={"Bucket": "cpk", "Key": "src"},
                       ServerSideEncryption="aws:kms", SSEKMSKeyId="copy-key")
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == "copy-key"
    got = s3.get_object(Bucket="cpk", Key="dst")
    assert got["Body"].read() == b"copy me" and got["SSEKMSKeyId"] == "copy-key"
    # The source keeps its own key.
    assert s3.head_object(Bucket="cpk", Key="src")["ServerSideEncryption"] == "AES256"
    # Copying onto itself to change the encryption is allowed.
    s3.copy_object(Bucket="cpk", Key="src", CopySource={"Bucket": "cpk", "Key": "src"},
                   ServerSideEncryption="aws:kms", SSEKMSKeyId="copy-key")
    assert s3.head_object(Bucket="cpk", Key="src")["SSEKMSKeyId"] == "copy-key"


def test_shred_lists_retained_kms_keys(kura_server):
    """A shred destroys the bucket's own key; an SSE-KMS key that other
    buckets may use is listed as retained, not silently left out."""
    s3 = kura_server.client()
    s3.create_bucket(Bucket="mixed")
    cli_ok(kura_server, "key", "create", "shared-key")
    s3.put_object(Bucket="mixed", Key="own", Body=b"own")
    s3.put_object(Bucket="mixed", Key="kms", Body=b"kms", ServerSideEncryption="aws:kms",
                  SSEKMSKeyId="shared-key")
    out = cli_ok(kura_server, "bucket", "shred", "mixed", "--yes")
    doc = json.loads(Path(out.strip()).read_text())
    assert [k["name"] for k in doc["keys_destroyed"]] == ["bucket/mixed"]
    assert [k["name"] for k in doc["keys_retained"]] == ["shared-key"]
    assert "SSE-KMS" in doc["keys_retained"][0]["reason"]
    assert "shared-key" in list_keys(kura_server)

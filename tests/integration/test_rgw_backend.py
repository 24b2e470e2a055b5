"""kura's remote S3 store (src/store/s3/) against a real Ceph RADOS Gateway
(Debian 12's Ceph 16.2.15), as issue 13 asks: "tested against other kura
instances and, where the machine can run it, Ceph RGW".

One throwaway cluster per module (tests/integration/ceph_rgw.py: one mon,
one memstore OSD, radosgw on 127.0.0.1; about 15 s to start on a 2-core
machine), one S3 user made with radosgw-admin.

  test_store_client_against_rgw
      tests/unit/test_store_s3.c (the C store through store.h: small,
      empty, 12 MiB multipart with ranges, missing, remove, abort, probe,
      wrong secret, concurrency, remote down) with RGW as the remote, then
      the bucket holds only blobs/ + 32 hex and no multipart upload is left
      behind: what test_store_s3.py checks with kura as the remote.
  test_store_client_against_rgw_over_https
      the same over beast's https listener (a self-signed certificate):
      verified with ca_file, refused without.
  test_gateway_on_rgw
      a kura gateway whose default policy is `sync = rgw` (the RGW backend
      labelled JP); boto3 PUTs a small and a 20 MiB multipart object
      through it, reads them back byte for byte (whole and a range), finds
      the blobs on RGW (names = 32 hex, bodies = ciphertext, not the
      plaintext), `kura object locate` names the rgw backend; deleting the
      objects removes RGW's copies once the background garbage collector
      has run ([storage] background_interval = 1) and RGW's bucket is
      empty again.
  test_async_copy_on_rgw
      `sync = local, async = rgw`: the replication queue copies a 6 MiB
      object to RGW (locate: stored or verified on rgw), the GET still
      answers, the delete removes the copy from RGW.

The tests skip (with the reason) when the Ceph packages are not installed
(they are in scripts/packages.txt) and when KURA_TEST_RGW=0.
"""

import hashlib
import json
import os
import re

import pytest

import ceph_rgw
from conftest import make_cert, running_server, write_config
from helpers import eventually
from placement_helpers import (HEX32, MiB, local_keys, put_multipart,
                               section)
from test_store_s3 import (BUCKET as STORE_BUCKET, PREFIX as STORE_PREFIX,
                           REMOTE_TESTS, ran, run_client)

GW_BUCKET = "kura-gw"           # the gateway's bucket on RGW


@pytest.fixture(scope="module")
def rgw(tmp_path_factory):
    if os.environ.get("KURA_TEST_RGW") == "0":
        pytest.skip("KURA_TEST_RGW=0")
    missing = ceph_rgw.missing_binaries()
    if missing:
        pytest.skip(f"Ceph not installed ({' '.join(missing)} missing; "
                    f"Debian packages ceph-mon ceph-osd radosgw are in "
                    f"scripts/packages.txt: make setup)")
    work = tmp_path_factory.mktemp("ceph")
    cert, key = make_cert(work)
    with ceph_rgw.cluster(work, tls=(cert, key)) as c:
        c.ca_file = cert
        print(f"ceph cluster started in {c.timings['total']:.1f} s "
              f"({', '.join(f'{k} {v:.1f} s' for k, v in c.timings.items())})")
        yield c
        assert c.rgw_alive(), "radosgw died during the tests\n" + \
            c.log_tail("rgw")


def ensure_bucket(rgw, bucket):
    """The bucket exists (made by the first test that needs it)."""
    if bucket not in [b["Name"] for b in
                      rgw.client().list_buckets()["Buckets"]]:
        rgw.client().create_bucket(Bucket=bucket)


def blob_names(rgw, bucket, prefix=""):
    return [n for n in rgw.names(bucket)
            if n.startswith(prefix) and HEX32.fullmatch(n[len(prefix):])]


# -- (a) the store's own tests, RGW as the remote -------------------------------

def test_store_client_against_rgw(rgw, tmp_path):
    s3 = rgw.client()
    ensure_bucket(rgw, STORE_BUCKET)
    out = run_client(rgw, tmp_path)
    for name in REMOTE_TESTS + ("test_remote_down", "test_config_refusals"):
        assert ran(out, name), f"{name} did not run:\n{out}"
    names = rgw.names(STORE_BUCKET)
    assert names, "the small round trip leaves its blob on RGW"
    for n in names:
        assert re.fullmatch(re.escape(STORE_PREFIX) + r"[0-9a-f]{32}", n), n
    uploads = s3.list_multipart_uploads(Bucket=STORE_BUCKET)
    assert not uploads.get("Uploads"), uploads
    assert rgw.rgw_alive(), rgw.log_tail("rgw")


class HttpsRgw:
    """What run_client needs of a remote: RGW's https listener."""

    def __init__(self, rgw):
        self.endpoint = rgw.https_endpoint
        self.access_key = rgw.access_key
        self.secret_key = rgw.secret_key


def test_store_client_against_rgw_over_https(rgw, tmp_path):
    """The same over beast's TLS listener with a self-signed certificate:
    verified with ca_file, refused without (test_tls_verification)."""
    s3 = rgw.client()
    ensure_bucket(rgw, STORE_BUCKET)
    out = run_client(HttpsRgw(rgw), tmp_path, ca_file=rgw.ca_file)
    for name in REMOTE_TESTS + ("test_tls_verification",):
        assert ran(out, name), f"{name} did not run:\n{out}"
    for n in rgw.names(STORE_BUCKET):
        assert re.fullmatch(re.escape(STORE_PREFIX) + r"[0-9a-f]{32}", n), n
    assert not s3.list_multipart_uploads(Bucket=STORE_BUCKET).get("Uploads")
    assert rgw.rgw_alive(), rgw.log_tail("rgw")


# -- (b) a kura gateway storing its blobs on RGW ---------------------------------

POLICIES = {
    "sync": {"sync": ["rgw"]},
    "async": {"sync": ["local"], "async": ["rgw"]},
}


def gateway_config(rgw, secret_file, policy="sync"):
    return ("[server]\nhome_jurisdiction = JP\n" + local_keys("JP") +
            section("storage", {"placement": "on-rgw",
                                "background_interval": 1,
                                "replication_interval": 1}) +
            section("scrub", {"interval": 0}) +
            section("backend.rgw", {
                "type": "s3",
                "endpoint": rgw.endpoint,
                "bucket": GW_BUCKET,
                "access_key_id": rgw.access_key,
                "secret_key_file": str(secret_file),
                "signing_region": rgw.region,
                "part_size": "5M",
                "timeout": "20",
                "retries": "2",
                "site": "ceph-1",
                "region": "jp-east",
                "jurisdiction": "JP",
            }) +
            section("placement.on-rgw", POLICIES[policy]))


def write_secret(path, secret):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.chmod(path, 0o600)
    return path


def locate(gw, cfg, bucket, key):
    r = gw.cli("object", "locate", bucket, key, "--config", cfg, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_gateway_on_rgw(rgw, tmp_path):
    rgw.client().create_bucket(Bucket=GW_BUCKET)
    secret = write_secret(tmp_path / "rgw.secret", rgw.secret_key)
    cfg = write_config(tmp_path, gateway_config(rgw, secret), "gateway.ini")
    small = b"a small object kept on Ceph RGW\n" * 3
    big = os.urandom(20 * MiB + 12345)
    with running_server(tmp_path / "gw", config_file=cfg) as gw:
        s3 = gw.root_client()
        s3.create_bucket(Bucket="docs")
        s3.put_object(Bucket="docs", Key="small.txt", Body=small)
        put_multipart(s3, "docs", "big.bin", big, part_size=5 * MiB)

        assert s3.get_object(Bucket="docs", Key="small.txt")["Body"].read() \
            == small
        got = s3.get_object(Bucket="docs", Key="big.bin")["Body"].read()
        assert len(got) == len(big)
        assert hashlib.sha256(got).digest() == hashlib.sha256(big).digest()
        part = s3.get_object(Bucket="docs", Key="big.bin",
                             Range="bytes=7340000-12582999")["Body"].read()
        assert part == big[7340000:12583000]

        # The blobs are on RGW: 32-hex names, ciphertext bodies.
        on_rgw = set(blob_names(rgw, GW_BUCKET))
        assert set(rgw.names(GW_BUCKET)) == on_rgw, rgw.names(GW_BUCKET)
        located = {}
        for key in ("small.txt", "big.bin"):
            loc = locate(gw, cfg, "docs", key)
            located[key] = [p["blob_id"] for p in loc["parts"]]
            for p in loc["parts"]:
                backends = {x["backend"] for x in p["replicas"]}
                assert backends == {"rgw"}, p
                assert p["blob_id"] in on_rgw, (p["blob_id"], on_rgw)
        assert len(located["big.bin"]) >= 4, located   # 5 MiB parts
        blob = rgw.client().get_object(
            Bucket=GW_BUCKET, Key=located["small.txt"][0])["Body"].read()
        assert small not in blob and b"a small object" not in blob
        assert len(blob) > len(small)

        # Nothing of kura's beyond the blobs, no multipart uploads left.
        uploads = rgw.client().list_multipart_uploads(Bucket=GW_BUCKET)
        assert not uploads.get("Uploads"), uploads

        # kura status probes RGW (HEAD of the bucket).
        r = gw.cli("status", "--config", cfg, "--json")
        assert r.returncode == 0, r.stdout + r.stderr
        st = {b["backend"]: b for b in json.loads(r.stdout)["backends"]}
        assert st["rgw"]["reachable"] is True, st["rgw"]

        # Deleting the objects removes RGW's copies after garbage
        # collection.
        s3.delete_object(Bucket="docs", Key="small.txt")
        s3.delete_object(Bucket="docs", Key="big.bin")
        gone = set(located["small.txt"] + located["big.bin"])

        def collected():
            left = gone & set(blob_names(rgw, GW_BUCKET))
            assert not left, f"still on RGW: {sorted(left)}"
        eventually(collected, timeout=60, interval=1)
        assert rgw.names(GW_BUCKET) == [], "RGW's bucket is empty again"
        assert rgw.rgw_alive(), rgw.log_tail("rgw")


def test_async_copy_on_rgw(rgw, tmp_path):
    """sync = local, async = rgw: the copy reaches RGW after the PUT (the
    replication queue, [storage] replication_interval = 1) and leaves it
    when the object is deleted."""
    bucket = "kura-gw-async"
    rgw.client().create_bucket(Bucket=bucket)
    secret = write_secret(tmp_path / "rgw.secret", rgw.secret_key)
    text = gateway_config(rgw, secret, "async").replace(
        f"bucket = {GW_BUCKET}\n", f"bucket = {bucket}\n")
    cfg = write_config(tmp_path, text, "gateway.ini")
    body = os.urandom(6 * MiB + 7)
    with running_server(tmp_path / "gw", config_file=cfg) as gw:
        s3 = gw.root_client()
        s3.create_bucket(Bucket="later")
        s3.put_object(Bucket="later", Key="k", Body=body)

        def copied():
            loc = locate(gw, cfg, "later", "k")
            for p in loc["parts"]:
                reps = {x["backend"]: x["state"] for x in p["replicas"]}
                assert reps.get("rgw") in ("stored", "verified"), reps
            return [p["blob_id"] for p in loc["parts"]]
        ids = eventually(copied, timeout=60, interval=0.5)
        assert set(ids) <= set(blob_names(rgw, bucket)), \
            (ids, rgw.names(bucket))
        got = s3.get_object(Bucket="later", Key="k")["Body"].read()
        assert got == body
        s3.delete_object(Bucket="later", Key="k")

        def collected():
            left = set(ids) & set(blob_names(rgw, bucket))
            assert not left, f"still on RGW: {sorted(left)}"
        eventually(collected, timeout=60, interval=1)
        assert rgw.rgw_alive(), rgw.log_tail("rgw")

"""Keeping copies healthy and removing them all (issue 13), on the standard
topology of placement_helpers.py (tokyo fs + osaka remote synchronously,
virginia remote asynchronously, keys in a SoftHSM2 token labelled JP):

- read failover: with tokyo's copy of a blob corrupted and osaka's deleted,
  GETs through the gateway still return exactly the right bytes; `kura
  scrub` finds both, repairs both from a good replica (the files are equal
  again), records it in the audit log and the location history;
- shredding a replicated bucket removes every replica on every backend,
  and the deletion certificate lists each one with its backend and
  jurisdiction.
"""

import json
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers import eventually
from placement_helpers import (GOOD_STATES, MiB, history_states,
                               put_multipart, replicas, standard_topology,
                               unique, wait_replicated)

ALL3 = ("tokyo", "osaka", "virginia")


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    with standard_topology(tmp_path_factory.mktemp("scrub")) as t:
        yield t


def audit_records(gw):
    r = gw.cli_ok("audit", "export")
    return [json.loads(line) for line in r.stdout.splitlines()
            if line.strip() and "seq" in json.loads(line)]


def failed_then_good(replica):
    """The history shows a failure and, after it, a good state again."""
    hist = history_states(replica)
    assert "failed" in hist, replica
    last_fail = max(i for i, s in enumerate(hist) if s == "failed")
    assert any(s in GOOD_STATES for s in hist[last_fail + 1:]), hist
    assert replica["state"] in GOOD_STATES, replica


# -- 7. read failover, then scrub ----------------------------------------------------

def test_failover_then_scrub_repairs_corrupt_and_missing(topo):
    bk, _, gw = topo
    s3 = gw.client()
    bucket = unique("scrub")
    s3.create_bucket(Bucket=bucket)
    body = os.urandom(MiB + 333)          # several segments
    s3.put_object(Bucket=bucket, Key="victim", Body=body)
    s3.put_object(Bucket=bucket, Key="intact", Body=b"untouched" * 100)
    locs = wait_replicated(gw, bucket, ["victim", "intact"])
    [(_, blob, reps)] = replicas(locs["victim"])
    good = bk.virginia.read(blob)
    assert bk.tokyo.read(blob) == good == bk.osaka.read(blob)

    bk.tokyo.flip_middle_byte(blob)
    assert bk.tokyo.read(blob) != good
    bk.osaka.delete(blob)
    assert not bk.osaka.has(blob)

    # Reads fail over to the one good replica, whole and ranged.
    for _ in range(2):
        assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == body
    mid = len(body) // 2
    got = s3.get_object(Bucket=bucket, Key="victim",
                        Range=f"bytes={mid - 1000}-{mid + 1000}")
    assert got["Body"].read() == body[mid - 1000:mid + 1001]

    rc, doc = gw.scrub(bucket)
    assert rc == 0, doc
    assert doc["corrupt"] >= 1 and doc["missing"] >= 1, doc
    assert doc["repaired"] >= 2 and doc["unrepairable"] == 0, doc
    assert doc["blobs"] == 2 and doc["replicas"] == 6, doc
    assert doc["ok"] + doc["missing"] + doc["corrupt"] == doc["replicas"], doc

    # Repaired: the same ciphertext on all three again.
    assert bk.tokyo.read(blob) == good
    assert bk.osaka.has(blob) and bk.osaka.read(blob) == good
    assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == body

    # The location history shows the failure and the repair of both.
    [(_, _, reps)] = replicas(gw.locate(bucket, "victim"))
    failed_then_good(reps["tokyo"])
    failed_then_good(reps["osaka"])
    assert reps["virginia"]["state"] in GOOD_STATES
    assert "failed" not in history_states(reps["virginia"]), reps["virginia"]
    [(_, _, ireps)] = replicas(gw.locate(bucket, "intact"))
    for name in ALL3:
        assert "failed" not in history_states(ireps[name]), ireps[name]

    # The scrub read and authenticated every replica: verified now.
    for name in ALL3:
        assert ireps[name]["state"] == "verified", ireps[name]
        assert ireps[name]["verified_at"], ireps[name]

    # A second scrub finds nothing to do.
    rc, doc = gw.scrub(bucket)
    assert rc == 0, doc
    assert (doc["missing"], doc["corrupt"], doc["repaired"],
            doc["unrepairable"]) == (0, 0, 0, 0), doc
    assert doc["ok"] == doc["replicas"] == 6, doc

    # The audit log has what the scrub found.
    scrubs = [r for r in audit_records(gw) if "scrub" in r.get("op", "")]
    assert scrubs, "no scrub record in the audit log"
    assert any(blob in json.dumps(r) or bucket in json.dumps(r)
               for r in scrubs), scrubs


def test_scrub_reports_unrepairable(topo):
    """Every replica of a blob gone: exit status 1, unrepairable counted."""
    bk, _, gw = topo
    s3 = gw.client()
    bucket = unique("lost")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="doomed", Body=os.urandom(4096))
    locs = wait_replicated(gw, bucket, ["doomed"])
    [(_, blob, _)] = replicas(locs["doomed"])
    bk.tokyo.flip_middle_byte(blob)
    bk.osaka.delete(blob)
    bk.virginia.delete(blob)
    rc, doc = gw.scrub(bucket)
    assert rc == 1, doc
    assert doc["unrepairable"] == 1 and doc["repaired"] == 0, doc
    # No good replica left: the GET fails (an error status, or a body cut
    # short if the answer had begun), never wrong bytes.
    with pytest.raises(Exception) as e:
        s3.get_object(Bucket=bucket, Key="doomed")["Body"].read()
    if isinstance(e.value, ClientError):
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 500


# -- 8. shredding a replicated bucket ----------------------------------------------

def test_shred_removes_every_replica_and_lists_them(topo):
    bk, _, gw = topo
    s3 = gw.client()
    bucket = unique("shred")
    keep = unique("keep")
    for b in (bucket, keep):
        s3.create_bucket(Bucket=b)
    bodies = {"a": os.urandom(1000), "b": os.urandom(200 * 1024)}
    for k, v in bodies.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v)
    put_multipart(s3, bucket, "m", os.urandom(12 * MiB), part_size=8 * MiB)
    s3.put_object(Bucket=keep, Key="k", Body=b"stays")
    locs = wait_replicated(gw, bucket, ["a", "b", "m"])
    kept = [p["blob_id"] for p in
            wait_replicated(gw, keep, ["k"])["k"]["parts"]]
    blobs = {p["blob_id"] for loc in locs.values() for p in loc["parts"]}
    assert len(blobs) == 4, blobs         # a, b and two parts of m
    for name in ALL3:
        for blob in blobs:
            assert bk[name].has(blob), (name, blob)

    r = gw.cli_ok("bucket", "shred", bucket, "--yes")
    cert = Path(r.stdout.strip().splitlines()[-1])
    doc = json.loads(cert.read_text())
    removed = doc["replicas_removed"]
    assert len(removed) == len(blobs) * 3, removed
    assert sorted((e["backend"], e["blob"]) for e in removed) == \
        sorted((name, blob) for name in ALL3 for blob in blobs)
    for e in removed:
        b = bk[e["backend"]]
        assert (e["site"], e["region"], e["jurisdiction"]) == \
            (b.site, b.region, b.jurisdiction), e
    assert {e["jurisdiction"] for e in removed} == {"JP", "US"}
    v = gw.cli("cert", "verify", cert)
    assert v.returncode == 0 and "matches" in v.stdout, v.stdout + v.stderr

    def all_gone():
        for name in ALL3:
            left = [b for b in blobs if bk[name].has(b)]
            assert not left, (name, left)
    eventually(all_gone, timeout=30, interval=0.5)
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=bucket)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    # The other bucket keeps all of its replicas.
    for name in ALL3:
        for blob in kept:
            assert bk[name].has(blob), (name, blob)
    assert s3.get_object(Bucket=keep, Key="k")["Body"].read() == b"stays"

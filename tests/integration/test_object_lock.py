"""Object Lock (WORM) as S3 has it — and enforced: every path that could
remove a locked version (DeleteObject with a version id, DeleteObjects,
deleting the bucket, `kura bucket shred`, `kura tenant delete`, a metadata
edit that takes the lock away) is tried against a locked version and must
fail, and succeed once the retention has ended or the hold is lifted.
Every retention change and refused deletion is in the audit log."""

import datetime
import json
import sqlite3
import time
import uuid

import pytest

import helpers as H
from conftest import aws_fixture, client_fixture, server_fixture
from tools_helpers import expect_error, raw_request

lkura = server_fixture(scope="module")
ls3 = client_fixture("lkura", scope="module")


def new_lock_bucket(s3, default=None):
    name = "lock-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    if default:
        s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": default}})
    return name


def in_(seconds):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=seconds)


def put_locked(s3, bucket, key, mode="COMPLIANCE", seconds=3600, hold=None, body=b"kept"):
    kw = {}
    if mode:
        kw.update(ObjectLockMode=mode, ObjectLockRetainUntilDate=in_(seconds))
    if hold:
        kw["ObjectLockLegalHoldStatus"] = hold
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **kw)["VersionId"]


def read(s3, bucket, key, vid):
    return s3.get_object(Bucket=bucket, Key=key, VersionId=vid)["Body"].read()


def bypass(s3, fn, **kw):
    """Call fn with x-amz-bypass-governance-retention: true."""
    return fn(BypassGovernanceRetention=True, **kw)


# -- configuration -------------------------------------------------------------

def test_lock_bucket_configuration(ls3):
    b = new_lock_bucket(ls3)
    assert ls3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    cfg = ls3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
    assert cfg == {"ObjectLockEnabled": "Enabled"}
    expect_error(ls3.put_bucket_versioning, "InvalidBucketState", 409, Bucket=b,
                 VersioningConfiguration={"Status": "Suspended"})
    ls3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}})
    cfg = ls3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
    assert cfg["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 2}
    for bad in ({"Mode": "GOVERNANCE", "Days": 0}, {"Mode": "FOREVER", "Days": 1},
                {"Mode": "COMPLIANCE", "Days": 1, "Years": 1}):
        with pytest.raises(Exception):
            ls3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": bad}})
    assert ls3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"][
        "Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 2}


def test_lock_needs_a_lock_bucket(ls3):
    plain = "plain-" + uuid.uuid4().hex[:8]
    ls3.create_bucket(Bucket=plain)
    expect_error(ls3.get_object_lock_configuration,
                 "ObjectLockConfigurationNotFoundError", 404, Bucket=plain)
    expect_error(ls3.put_object, "InvalidRequest", 400, Bucket=plain, Key="k",
                 Body=b"x", ObjectLockMode="GOVERNANCE",
                 ObjectLockRetainUntilDate=in_(60))
    expect_error(ls3.put_object_lock_configuration, "InvalidBucketState", 409,
                 Bucket=plain, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    # An existing bucket with versioning enabled can get Object Lock.
    ls3.put_bucket_versioning(Bucket=plain, VersioningConfiguration={"Status": "Enabled"})
    ls3.put_object_lock_configuration(Bucket=plain,
                                      ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    put_locked(ls3, plain, "now-locked", seconds=60)


def test_bad_lock_headers(ls3):
    b = new_lock_bucket(ls3)
    expect_error(ls3.put_object, "InvalidArgument", 400, Bucket=b, Key="k", Body=b"x",
                 ObjectLockMode="GOVERNANCE")
    expect_error(ls3.put_object, "InvalidArgument", 400, Bucket=b, Key="k", Body=b"x",
                 ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=in_(-60))
    expect_error(ls3.put_object, "InvalidArgument", 400, Bucket=b, Key="k", Body=b"x",
                 ObjectLockMode="NEVER", ObjectLockRetainUntilDate=in_(60))
    assert "Versions" not in ls3.list_object_versions(Bucket=b)


# -- every deletion path against a locked version ----------------------------

@pytest.mark.parametrize("mode", ["COMPLIANCE", "GOVERNANCE"])
def test_locked_version_survives_every_s3_deletion(lkura, ls3, mode):
    b = new_lock_bucket(ls3)
    vid = put_locked(ls3, b, "doc", mode=mode)
    h = ls3.head_object(Bucket=b, Key="doc")
    assert h["ObjectLockMode"] == mode and h["ObjectLockLegalHoldStatus"] == "OFF"
    r = expect_error(ls3.delete_object, "AccessDenied", 403, Bucket=b, Key="doc",
                     VersionId=vid)
    assert "object lock" in r["Error"]["Message"]
    res = ls3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "doc",
                                                            "VersionId": vid}]})
    assert [e["Code"] for e in res["Errors"]] == ["AccessDenied"]
    # A delete marker hides the key but destroys nothing.
    ls3.delete_object(Bucket=b, Key="doc")
    assert read(ls3, b, "doc", vid) == b"kept"
    expect_error(ls3.delete_bucket, "BucketNotEmpty", 409, Bucket=b)
    if mode == "COMPLIANCE":
        # Nobody bypasses COMPLIANCE.
        expect_error(bypass, "AccessDenied", 403, ls3, ls3.delete_object, Bucket=b,
                     Key="doc", VersionId=vid)
        r = raw_request(lkura, "DELETE", f"/{b}/doc", f"versionId={vid}",
                        headers={"x-amz-bypass-governance-retention": "true"})
        assert r.status == 403, r
        assert read(ls3, b, "doc", vid) == b"kept"
    else:
        bypass(ls3, ls3.delete_object, Bucket=b, Key="doc", VersionId=vid)
        expect_error(ls3.get_object, "NoSuchVersion", 404, Bucket=b, Key="doc",
                     VersionId=vid)


def test_retention_extends_never_shortens(ls3):
    b = new_lock_bucket(ls3)
    vid = put_locked(ls3, b, "c", mode="COMPLIANCE", seconds=3600)
    ret = ls3.get_object_retention(Bucket=b, Key="c", VersionId=vid)["Retention"]
    assert ret["Mode"] == "COMPLIANCE"
    until = ret["RetainUntilDate"]
    for shorter in ({"Mode": "COMPLIANCE", "RetainUntilDate": in_(60)},
                    {"Mode": "GOVERNANCE", "RetainUntilDate": in_(7200)}):
        expect_error(ls3.put_object_retention, "AccessDenied", 403, Bucket=b, Key="c",
                     VersionId=vid, Retention=shorter)
        expect_error(bypass, "AccessDenied", 403, ls3, ls3.put_object_retention,
                     Bucket=b, Key="c", VersionId=vid, Retention=shorter)
    assert ls3.get_object_retention(Bucket=b, Key="c", VersionId=vid)[
        "Retention"]["RetainUntilDate"] == until
    ls3.put_object_retention(Bucket=b, Key="c", VersionId=vid,
                             Retention={"Mode": "COMPLIANCE", "RetainUntilDate": in_(7200)})
    assert ls3.get_object_retention(Bucket=b, Key="c", VersionId=vid)[
        "Retention"]["RetainUntilDate"] > until
    # GOVERNANCE: shortened or removed only with the bypass.
    g = put_locked(ls3, b, "g", mode="GOVERNANCE", seconds=3600)
    expect_error(ls3.put_object_retention, "AccessDenied", 403, Bucket=b, Key="g",
                 VersionId=g, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": in_(60)})
    bypass(ls3, ls3.put_object_retention, Bucket=b, Key="g", VersionId=g,
           Retention={"Mode": "GOVERNANCE", "RetainUntilDate": in_(60)})
    bypass(ls3, ls3.put_object_retention, Bucket=b, Key="g", VersionId=g, Retention={})
    expect_error(ls3.get_object_retention, "NoSuchObjectLockConfiguration", 404,
                 Bucket=b, Key="g", VersionId=g)
    ls3.delete_object(Bucket=b, Key="g", VersionId=g)
    # GOVERNANCE may become COMPLIANCE (stricter) without a bypass.
    g2 = put_locked(ls3, b, "g2", mode="GOVERNANCE", seconds=3600)
    ls3.put_object_retention(Bucket=b, Key="g2", VersionId=g2,
                             Retention={"Mode": "COMPLIANCE", "RetainUntilDate": in_(3600)})
    expect_error(bypass, "AccessDenied", 403, ls3, ls3.delete_object, Bucket=b,
                 Key="g2", VersionId=g2)


def test_legal_hold_blocks_even_the_bypass(ls3):
    b = new_lock_bucket(ls3)
    vid = put_locked(ls3, b, "h", mode=None, hold="ON")
    assert ls3.get_object_legal_hold(Bucket=b, Key="h", VersionId=vid)[
        "LegalHold"]["Status"] == "ON"
    expect_error(bypass, "AccessDenied", 403, ls3, ls3.delete_object, Bucket=b, Key="h",
                 VersionId=vid)
    ls3.put_object_legal_hold(Bucket=b, Key="h", VersionId=vid, LegalHold={"Status": "OFF"})
    ls3.delete_object(Bucket=b, Key="h", VersionId=vid)
    v2 = s = ls3.put_object(Bucket=b, Key="h2", Body=b"x")["VersionId"]
    ls3.put_object_legal_hold(Bucket=b, Key="h2", VersionId=v2, LegalHold={"Status": "ON"})
    expect_error(ls3.delete_object, "AccessDenied", 403, Bucket=b, Key="h2", VersionId=s)


def test_retention_ends(ls3):
    b = new_lock_bucket(ls3)
    vid = put_locked(ls3, b, "short", mode="COMPLIANCE", seconds=3)
    expect_error(ls3.delete_object, "AccessDenied", 403, Bucket=b, Key="short",
                 VersionId=vid)
    time.sleep(3.5)
    ls3.delete_object(Bucket=b, Key="short", VersionId=vid)
    ls3.delete_bucket(Bucket=b)


def test_default_retention_applies_to_every_write(ls3):
    b = new_lock_bucket(ls3, {"Mode": "GOVERNANCE", "Days": 1})
    v1 = ls3.put_object(Bucket=b, Key="p", Body=b"x")["VersionId"]
    ls3.copy_object(Bucket=b, Key="c", CopySource={"Bucket": b, "Key": "p"})
    up = ls3.create_multipart_upload(Bucket=b, Key="m")["UploadId"]
    e = ls3.upload_part(Bucket=b, Key="m", UploadId=up, PartNumber=1, Body=b"y")["ETag"]
    ls3.complete_multipart_upload(Bucket=b, Key="m", UploadId=up,
                                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    soon = in_(86400 + 120)
    for key in ("p", "c", "m"):
        h = ls3.head_object(Bucket=b, Key=key)
        assert h["ObjectLockMode"] == "GOVERNANCE", key
        assert in_(86400 - 120) < h["ObjectLockRetainUntilDate"] < soon, key
        expect_error(ls3.delete_object, "AccessDenied", 403, Bucket=b, Key=key,
                     VersionId=h["VersionId"])
    # Explicit headers win over the default, on multipart too.
    up = ls3.create_multipart_upload(Bucket=b, Key="mc", ObjectLockMode="COMPLIANCE",
                                     ObjectLockRetainUntilDate=in_(7200),
                                     ObjectLockLegalHoldStatus="ON")["UploadId"]
    e = ls3.upload_part(Bucket=b, Key="mc", UploadId=up, PartNumber=1, Body=b"z")["ETag"]
    ls3.complete_multipart_upload(Bucket=b, Key="mc", UploadId=up,
                                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    h = ls3.head_object(Bucket=b, Key="mc")
    assert h["ObjectLockMode"] == "COMPLIANCE" and h["ObjectLockLegalHoldStatus"] == "ON"
    assert v1


# -- the operator's paths --------------------------------------------------------

def test_shred_and_tenant_delete_refuse_locked_buckets(lkura):
    ak, sk = lkura.add_tenant("lockowner-" + uuid.uuid4().hex[:6])
    s3 = lkura.client(ak, sk)
    b = new_lock_bucket(s3)
    vid = put_locked(s3, b, "evidence", mode="GOVERNANCE")
    r = lkura.cli("bucket", "shred", b, "--yes")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Object Lock" in r.stdout + r.stderr
    assert read(s3, b, "evidence", vid) == b"kept"
    tenant = [t for t in lkura.cli("tenant", "list").stdout.splitlines()
              if t.startswith("lockowner")]
    name = tenant[0].split()[0]
    r = lkura.cli("tenant", "delete", name, "--shred-buckets", "--yes")
    assert r.returncode != 0
    # The deletion stopped with the tenant suspended (its first step).
    assert lkura.cli("tenant", "resume", name).returncode == 0
    assert read(s3, b, "evidence", vid) == b"kept"
    # Once the lock is gone, both work.
    bypass(s3, s3.put_object_retention, Bucket=b, Key="evidence", VersionId=vid,
           Retention={})
    r = lkura.cli("tenant", "delete", name, "--shred-buckets", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_lock_edited_out_of_the_metadata_unlocks_nothing(lkura, ls3):
    b = new_lock_bucket(ls3)
    vid = put_locked(ls3, b, "k", mode="COMPLIANCE")
    con = sqlite3.connect(str(lkura.data_dir / "meta.db"))
    uid = bytes.fromhex(vid)
    (mode, until), = con.execute("SELECT lock_mode, lock_until_ms FROM objects "
                                 "WHERE version_uid = ?", (uid,)).fetchall()
    con.execute("UPDATE objects SET lock_mode = 0, lock_until_ms = 0 "
                "WHERE version_uid = ?", (uid,))
    con.commit()
    con.close()
    # The row fails its seal: refused (500 and an integrity record),
    # never deleted.
    r = raw_request(lkura, "DELETE", f"/{b}/k", f"versionId={vid}")
    assert r.status == 500, r
    r = lkura.cli("bucket", "shred", b, "--yes")
    assert r.returncode != 0
    con = sqlite3.connect(str(lkura.data_dir / "meta.db"))
    assert con.execute("SELECT count(*) FROM objects WHERE version_uid = ?",
                       (uid,)).fetchone()[0] == 1
    # Put the lock back: the row opens again (for the module's later
    # checks of the whole metadata).
    con.execute("UPDATE objects SET lock_mode = ?, lock_until_ms = ? "
                "WHERE version_uid = ?", (mode, until, uid))
    con.commit()
    con.close()
    assert read(ls3, b, "k", vid) == b"kept"


def test_lock_changes_and_refusals_are_audited(lkura, ls3):
    b = new_lock_bucket(ls3)
    vid = put_locked(ls3, b, "a", mode="GOVERNANCE")
    r1 = ls3.put_object_retention(Bucket=b, Key="a", VersionId=vid, Retention={
        "Mode": "GOVERNANCE", "RetainUntilDate": in_(7200)})
    r2 = ls3.put_object_legal_hold(Bucket=b, Key="a", VersionId=vid,
                                   LegalHold={"Status": "ON"})
    with pytest.raises(Exception) as ei:
        ls3.delete_object(Bucket=b, Key="a", VersionId=vid)
    refused = ei.value.response["ResponseMetadata"]["RequestId"]
    recs = {r["request_id"]: r for r in H.audit_export(lkura)[0]
            if r.get("type") == "s3"}
    ret = recs[r1["ResponseMetadata"]["RequestId"]]
    assert ret["op"] == "PutObjectRetention" and ret["lock_mode"] == "GOVERNANCE"
    assert ret["version"] == vid
    hold = recs[r2["ResponseMetadata"]["RequestId"]]
    assert hold["op"] == "PutObjectLegalHold" and hold["legal_hold"] is True
    den = recs[refused]
    assert den["op"] == "DeleteObject" and den["error"] == "AccessDenied"
    assert den["refused"] == "object lock"
    # The replay knows lock changes rewrite a version's row.
    r = lkura.cli("audit", "verify", "--against-meta")
    assert r.returncode == 0, r.stdout + r.stderr


laws = aws_fixture("lkura", scope="module")


def test_aws_cli_worm_round_trip(laws, tmp_path):
    """The README's example: aws-cli creates a lock bucket, stores a
    COMPLIANCE version, and cannot delete it."""
    b = "cli-" + uuid.uuid4().hex[:8]
    f = tmp_path / "report.pdf"
    f.write_bytes(b"%PDF report")
    laws("s3api", "create-bucket", "--bucket", b, "--object-lock-enabled-for-bucket",
         check=True)
    until = in_(3600).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = laws("s3api", "put-object", "--bucket", b, "--key", "report.pdf", "--body", str(f),
             "--object-lock-mode", "COMPLIANCE", "--object-lock-retain-until-date", until,
             check=True)
    vid = json.loads(r.stdout)["VersionId"]
    r = laws("s3api", "delete-object", "--bucket", b, "--key", "report.pdf",
             "--version-id", vid, "--bypass-governance-retention")
    assert r.returncode != 0 and "AccessDenied" in r.stderr, r.stderr
    r = laws("s3api", "get-object-retention", "--bucket", b, "--key", "report.pdf",
             "--version-id", vid, check=True)
    assert json.loads(r.stdout)["Retention"]["Mode"] == "COMPLIANCE"


def test_destroying_a_key_of_locked_versions_is_refused(lkura, ls3):
    """Crypto-shredding by key: neither the SSE-KMS key of a locked
    version nor its bucket's own key can be destroyed while it is locked."""
    b = new_lock_bucket(ls3)
    r = lkura.cli("key", "create", "worm-kms")
    assert r.returncode == 0, r.stderr
    vid = ls3.put_object(Bucket=b, Key="k", Body=b"kms data",
                         ServerSideEncryption="aws:kms", SSEKMSKeyId="worm-kms",
                         ObjectLockMode="COMPLIANCE",
                         ObjectLockRetainUntilDate=in_(3600))["VersionId"]
    for key in ("worm-kms", f"bucket/{b}"):
        r = lkura.cli("key", "destroy", key, "--yes")
        assert r.returncode != 0, (key, r.stdout + r.stderr)
        assert "Object Lock" in r.stdout + r.stderr, r.stderr
    assert read(ls3, b, "k", vid) == b"kms data"


def test_a_planted_default_retention_is_detected(lkura, ls3):
    """A default retention written into a plain bucket's row behind kura's
    back (which would lock every later write for a century) fails the
    bucket's row MAC: writes are refused, nothing gets locked."""
    plain = "plant-" + uuid.uuid4().hex[:8]
    ls3.create_bucket(Bucket=plain)
    con = sqlite3.connect(str(lkura.data_dir / "meta.db"))
    con.execute("UPDATE buckets SET lock_default_mode = 2, lock_default_days = 36500 "
                "WHERE name = ?", (plain,))
    con.commit()
    con.close()
    r = raw_request(lkura, "PUT", f"/{plain}/k", body=b"x")
    assert r.status == 500, r
    con = sqlite3.connect(str(lkura.data_dir / "meta.db"))
    assert con.execute("SELECT count(*) FROM objects o JOIN buckets b ON "
                       "o.bucket_id = b.id WHERE b.name = ?", (plain,)).fetchone()[0] == 0
    con.execute("UPDATE buckets SET lock_default_mode = 0, lock_default_days = 0 "
                "WHERE name = ?", (plain,))
    con.commit()
    con.close()


def test_a_noncurrent_version_put_back_from_before_its_hold_is_reported(lkura, ls3):
    """An older row of a noncurrent version put back (its legal hold gone,
    its old seal still valid) is consistent under every key; the audit log
    saw the hold placed: --against-meta reports the version."""
    b = new_lock_bucket(ls3)
    v1 = ls3.put_object(Bucket=b, Key="k", Body=b"evidence")["VersionId"]
    uid = bytes.fromhex(v1)
    con = sqlite3.connect(str(lkura.data_dir / "meta.db"))
    old = con.execute("SELECT seal, seal_bk_id, legal_hold FROM objects "
                      "WHERE version_uid = ?", (uid,)).fetchone()
    con.close()
    ls3.put_object_legal_hold(Bucket=b, Key="k", VersionId=v1, LegalHold={"Status": "ON"})
    ls3.put_object(Bucket=b, Key="k", Body=b"newer")        # v1 now noncurrent
    r = lkura.cli("audit", "verify", "--against-meta")
    assert r.returncode == 0, r.stdout + r.stderr
    con = sqlite3.connect(str(lkura.data_dir / "meta.db"))
    con.execute("UPDATE objects SET seal = ?, seal_bk_id = ?, legal_hold = ? "
                "WHERE version_uid = ?", (*old, uid))
    con.commit()
    con.close()
    # The old row opens: the hold is gone as far as requests can tell...
    assert ls3.get_object_legal_hold(Bucket=b, Key="k", VersionId=v1)[
        "LegalHold"]["Status"] == "OFF"
    # ...but the log saw it placed.
    r = lkura.cli("audit", "verify", "--against-meta")
    assert r.returncode != 0
    assert f"ROLLED BACK {b}/k: version {v1}" in r.stdout, r.stdout
    # Put the hold back for the module's later checks.
    ls3.put_object_legal_hold(Bucket=b, Key="k", VersionId=v1, LegalHold={"Status": "ON"})
    r = lkura.cli("audit", "verify", "--against-meta")
    assert r.returncode == 0, r.stdout + r.stderr

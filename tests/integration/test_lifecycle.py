"""Bucket lifecycle configuration (Put/Get/DeleteBucketLifecycleConfiguration)
as S3 answers it — round trips of every rule form and every refusal with
AWS's code and message — its protection under the bucket's row MAC, and the
x-amz-expiration header of PUT, HEAD and GET."""

import datetime
import sqlite3
import uuid

import pytest

from conftest import server_fixture, client_fixture
from tools_helpers import expect_error, raw_request

lckura = server_fixture(scope="module")
lcs3 = client_fixture("lckura", scope="module")


def new_bucket(s3, versioning=None):
    name = "lc-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=name)
    if versioning:
        s3.put_bucket_versioning(Bucket=name,
                                 VersioningConfiguration={"Status": versioning})
    return name


def put_rules(s3, bucket, rules):
    return s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules})


def put_raw(server, bucket, body, md5=True):
    """PUT a lifecycle document exactly as given (what boto3 would refuse
    to build), with its Content-MD5 as S3 requires; returns the
    RawResponse."""
    import base64
    import hashlib
    if isinstance(body, str):
        body = body.encode()
    headers = {"Content-MD5": base64.b64encode(
        hashlib.md5(body).digest()).decode()} if md5 else {}
    return raw_request(server, "PUT", f"/{bucket}", query="lifecycle",
                       body=body, headers=headers)


def doc(*rules):
    return ("<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/"
            "2006-03-01/\">" + "".join(f"<Rule>{r}</Rule>" for r in rules) +
            "</LifecycleConfiguration>")


def error_of(resp):
    from tools_helpers import parse_xml
    root = parse_xml(resp.body)
    return resp.status, root.findtext("Code"), root.findtext("Message")


# -- round trips ---------------------------------------------------------------

ROUND_TRIPS = [
    {"ID": "all", "Status": "Enabled", "Filter": {},
     "Expiration": {"Days": 30}},
    {"ID": "pre", "Status": "Disabled", "Filter": {"Prefix": "logs/"},
     "Expiration": {"Date": datetime.datetime(2031, 1, 1,
                                              tzinfo=datetime.timezone.utc)}},
    {"ID": "tag", "Status": "Enabled",
     "Filter": {"Tag": {"Key": "class", "Value": "tmp"}},
     "Expiration": {"Days": 1}},
    {"ID": "sizes", "Status": "Enabled",
     "Filter": {"ObjectSizeGreaterThan": 10},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 3}},
    {"ID": "and", "Status": "Enabled",
     "Filter": {"And": {"Prefix": "a/", "Tags": [
         {"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": "v2"}],
         "ObjectSizeGreaterThan": 1, "ObjectSizeLessThan": 1000}},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 5,
                                     "NewerNoncurrentVersions": 2}},
    {"ID": "marker", "Status": "Enabled", "Filter": {"Prefix": "m/"},
     "Expiration": {"ExpiredObjectDeleteMarker": True},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
]


def test_round_trip_every_form(lcs3):
    b = new_bucket(lcs3)
    put_rules(lcs3, b, ROUND_TRIPS)
    got = lcs3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert got == ROUND_TRIPS


def test_legacy_prefix_round_trip(lcs3, lckura):
    b = new_bucket(lcs3)
    r = put_raw(lckura, b, doc(
        "<ID>v1</ID><Prefix>old/</Prefix><Status>Enabled</Status>"
        "<Expiration><Days>2</Days></Expiration>"))
    assert r.status == 200, r
    got = lcs3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert got == [{"ID": "v1", "Prefix": "old/", "Status": "Enabled",
                    "Expiration": {"Days": 2}}]


def test_missing_id_is_given_one(lcs3):
    b = new_bucket(lcs3)
    put_rules(lcs3, b, [
        {"Status": "Enabled", "Filter": {"Prefix": "x"},
         "Expiration": {"Days": 1}},
        {"ID": "rule-1", "Status": "Enabled", "Filter": {"Prefix": "y"},
         "Expiration": {"Days": 1}}])
    ids = [r["ID"] for r in
           lcs3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]]
    assert ids[1] == "rule-1" and ids[0] and ids[0] != "rule-1"


def test_replace_and_delete(lcs3):
    b = new_bucket(lcs3)
    expect_error(lcs3.get_bucket_lifecycle_configuration,
                 "NoSuchLifecycleConfiguration", 404, Bucket=b)
    put_rules(lcs3, b, ROUND_TRIPS[:1])
    put_rules(lcs3, b, ROUND_TRIPS[1:2])
    got = lcs3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert [r["ID"] for r in got] == ["pre"]
    lcs3.delete_bucket_lifecycle(Bucket=b)
    expect_error(lcs3.get_bucket_lifecycle_configuration,
                 "NoSuchLifecycleConfiguration", 404, Bucket=b)
    lcs3.delete_bucket_lifecycle(Bucket=b)  # none: still 204


def test_thousand_rules(lcs3, lckura):
    b = new_bucket(lcs3)
    rules = [{"ID": f"r{i}", "Status": "Enabled",
              "Filter": {"Prefix": f"p{i}/"}, "Expiration": {"Days": i + 1}}
             for i in range(1000)]
    put_rules(lcs3, b, rules)
    got = lcs3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert len(got) == 1000 and got[999]["Expiration"]["Days"] == 1000
    r = put_raw(lckura, b, doc(*[
        f"<ID>r{i}</ID><Filter><Prefix>p{i}</Prefix></Filter>"
        "<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"
        for i in range(1001)]))
    assert error_of(r) == (
        400, "InvalidRequest", "The number of lifecycle rules must not "
        "exceed the allowed limit of 1000 rules.")


def test_no_such_bucket(lcs3):
    expect_error(lcs3.get_bucket_lifecycle_configuration, "NoSuchBucket",
                 404, Bucket="lc-none-" + uuid.uuid4().hex[:8])


# -- refusals ------------------------------------------------------------------

F = "<Filter></Filter>"
ON = "<Status>Enabled</Status>"
EXP1 = "<Expiration><Days>1</Days></Expiration>"

REFUSALS = [
    # (rules, status, code, message or None)
    ([f"<ID>{'x' * 256}</ID>{F}{ON}{EXP1}"], 400, "InvalidArgument",
     "ID length should not exceed allowed limit of 255"),
    ([f"<ID>a</ID>{F}{ON}{EXP1}", f"<ID>a</ID>{F}{ON}{EXP1}"], 400,
     "InvalidArgument",
     "Rule ID must be unique. Found same ID for more than one rule"),
    ([f"<ID>a</ID>{F}<Status>On</Status>{EXP1}"], 400, "MalformedXML", None),
    ([f"<ID>a</ID>{F}{EXP1}"], 400, "MalformedXML", None),
    ([f"<ID>a</ID>{ON}{EXP1}"], 400, "MalformedXML", None),
    ([f"<ID>a</ID>{F}{ON}"], 400, "InvalidRequest",
     "At least one action needs to be specified in a rule"),
    ([f"<ID>a</ID>{F}{ON}<Expiration><Days>0</Days></Expiration>"], 400,
     "InvalidArgument", "'Days' for Expiration action must be a positive "
     "integer"),
    ([f"<ID>a</ID>{F}{ON}<Expiration><Days>x</Days></Expiration>"], 400,
     "MalformedXML", None),
    ([f"<ID>a</ID>{F}{ON}<Expiration><Date>2030-01-01T10:00:00Z</Date>"
      "</Expiration>"], 400, "InvalidArgument",
     "'Date' must be at midnight GMT"),
    ([f"<ID>a</ID>{F}{ON}<Expiration><Days>1</Days><ExpiredObjectDelete"
      "Marker>true</ExpiredObjectDeleteMarker></Expiration>"], 400,
     "MalformedXML", None),
    ([f"<ID>a</ID>{F}{ON}<Expiration></Expiration>"], 400, "MalformedXML",
     None),
    ([f"<ID>a</ID>{F}{ON}<NoncurrentVersionExpiration><NoncurrentDays>0"
      "</NoncurrentDays></NoncurrentVersionExpiration>"], 400,
     "InvalidArgument", "'NoncurrentDays' for NoncurrentVersionExpiration "
     "action must be a positive integer"),
    ([f"<ID>a</ID>{F}{ON}<NoncurrentVersionExpiration>"
      "<NewerNoncurrentVersions>1</NewerNoncurrentVersions>"
      "</NoncurrentVersionExpiration>"], 400, "MalformedXML", None),
    ([f"<ID>a</ID>{F}{ON}<NoncurrentVersionExpiration><NoncurrentDays>1"
      "</NoncurrentDays><NewerNoncurrentVersions>0</NewerNoncurrentVersions>"
      "</NoncurrentVersionExpiration>"], 400, "InvalidArgument",
     "'NewerNoncurrentVersions' must be a positive integer"),
    ([f"<ID>a</ID>{F}{ON}<AbortIncompleteMultipartUpload><DaysAfter"
      "Initiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>"],
     400, "InvalidArgument", "'DaysAfterInitiation' for "
     "AbortIncompleteMultipartUpload action must be a positive integer"),
    ([f"<ID>a</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"
      f"{ON}<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDelete"
      "Marker></Expiration>"], 400, "InvalidRequest",
     "ExpiredObjectDeleteMarker cannot be specified with Tags."),
    ([f"<ID>a</ID><Filter><ObjectSizeLessThan>5</ObjectSizeLessThan>"
      f"</Filter>{ON}<AbortIncompleteMultipartUpload><DaysAfterInitiation>1"
      "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"], 400,
     "InvalidRequest",
     "AbortIncompleteMultipartUpload cannot be specified with Object Size."),
    ([f"<ID>a</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>"
      f"{ON}<AbortIncompleteMultipartUpload><DaysAfterInitiation>1"
      "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"], 400,
     "InvalidRequest",
     "AbortIncompleteMultipartUpload cannot be specified with Tags."),
    ([f"<ID>a</ID><Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v"
      f"</Value></Tag></Filter>{ON}{EXP1}"], 400, "MalformedXML", None),
    ([f"<ID>a</ID><Filter><And><Tag><Key>k</Key><Value>1</Value></Tag>"
      "<Tag><Key>k</Key><Value>2</Value></Tag></And></Filter>"
      f"{ON}{EXP1}"], 400, "InvalidRequest",
     "Duplicate Tag Keys are not allowed."),
    ([f"<ID>a</ID><Filter><And><ObjectSizeGreaterThan>10</ObjectSize"
      "GreaterThan><ObjectSizeLessThan>10</ObjectSizeLessThan></And>"
      f"</Filter>{ON}{EXP1}"], 400, "InvalidRequest",
     "'ObjectSizeLessThan' has to be a value greater than "
     "'ObjectSizeGreaterThan'."),
    ([f"<ID>a</ID><Filter><ObjectSizeLessThan>0</ObjectSizeLessThan>"
      f"</Filter>{ON}{EXP1}"], 400, "InvalidRequest",
     "'ObjectSizeLessThan' should be between 1 and 1099511627776000."),
    ([f"<ID>a</ID>{F}<Prefix>x</Prefix>{ON}{EXP1}"], 400, "InvalidRequest",
     "Base level prefix cannot be used in Lifecycle V2, prefixes are only "
     "supported in the Filter."),
    ([f"<ID>a</ID>{F}{ON}{EXP1}", f"<ID>b</ID><Prefix>x</Prefix>{ON}{EXP1}"],
     400, "InvalidRequest", "Base level prefix cannot be used in Lifecycle "
     "V2, prefixes are only supported in the Filter."),
    ([f"<ID>a</ID><Prefix>x</Prefix>{ON}{EXP1}", f"<ID>b</ID>{F}{ON}{EXP1}"],
     400, "InvalidRequest",
     "Filter element can only be used in Lifecycle V2."),
    ([f"<ID>a</ID><Prefix>x</Prefix>{ON}{EXP1}",
      f"<ID>b</ID><Prefix>xy</Prefix>{ON}{EXP1}"], 400, "InvalidRequest",
     "Found overlapping prefixes 'x' and 'xy' for same action type "
     "'Expiration'"),
    ([f"<ID>a</ID>{F}{ON}<Transition><Days>30</Days><StorageClass>GLACIER"
      "</StorageClass></Transition>"], 501, "NotImplemented", None),
    ([f"<ID>a</ID>{F}{ON}<NoncurrentVersionTransition><NoncurrentDays>30"
      "</NoncurrentDays><StorageClass>GLACIER</StorageClass>"
      "</NoncurrentVersionTransition>"], 501, "NotImplemented", None),
    ([f"<ID>a</ID>{F}{ON}{EXP1}<Bogus/>"], 400, "MalformedXML", None),
]


@pytest.mark.parametrize("rules,status,code,message", REFUSALS)
def test_refusals(lcs3, lckura, rules, status, code, message):
    b = new_bucket(lcs3)
    r = put_raw(lckura, b, doc(*rules))
    got = error_of(r)
    assert got[:2] == (status, code), r
    if message is not None:
        assert got[2] == message
    # Nothing was stored.
    expect_error(lcs3.get_bucket_lifecycle_configuration,
                 "NoSuchLifecycleConfiguration", 404, Bucket=b)


def test_content_md5_required(lcs3, lckura):
    b = new_bucket(lcs3)
    body = doc(f"<ID>a</ID>{F}{ON}{EXP1}")
    assert error_of(put_raw(lckura, b, body, md5=False)) == (
        400, "InvalidRequest",
        "Missing required header for this request: Content-Md5")
    r = put_raw(lckura, b, body)
    assert r.status == 200, r


def test_refusals_of_the_document(lcs3, lckura):
    b = new_bucket(lcs3)
    for body in (b"", b"<LifecycleConfiguration/>", b"<Other/>",
                 b"<LifecycleConfiguration><Rule>"):
        r = put_raw(lckura, b, body)
        assert error_of(r)[:2] == (400, "MalformedXML"), (body, r)


# -- protection ----------------------------------------------------------------

def test_planted_rule_is_an_integrity_failure(lcs3, lckura):
    """Someone who can only write meta.db cannot add a rule: the text's
    digest is under the bucket's row MAC."""
    b = new_bucket(lcs3)
    put_rules(lcs3, b, ROUND_TRIPS[:1])
    db = sqlite3.connect(str(lckura.data_dir / "meta.db"))
    try:
        db.execute("UPDATE buckets SET lifecycle = replace(lifecycle, "
                   "'\"days\":30', '\"days\":1') WHERE name = ?", (b,))
        db.commit()
    finally:
        db.close()
    r = raw_request(lckura, "GET", f"/{b}", query="lifecycle")
    assert r.status == 500, r


# -- x-amz-expiration ----------------------------------------------------------

def test_expiration_header(lcs3):
    b = new_bucket(lcs3)
    put_rules(lcs3, b, [
        {"ID": "soon \"quoted\"", "Status": "Enabled",
         "Filter": {"Prefix": "e/"}, "Expiration": {"Days": 2}},
        {"ID": "later", "Status": "Enabled", "Filter": {"Prefix": "e/"},
         "Expiration": {"Days": 9}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "e/"},
         "Expiration": {"Days": 1}}])
    put = lcs3.put_object(Bucket=b, Key="e/1", Body=b"x")
    head = lcs3.head_object(Bucket=b, Key="e/1")
    mtime = head["LastModified"]
    day = (mtime + datetime.timedelta(days=2)).replace(
        hour=0, minute=0, second=0, microsecond=0)
    if day < mtime + datetime.timedelta(days=2):
        day += datetime.timedelta(days=1)
    want = ('expiry-date="' + day.strftime("%a, %d %b %Y %H:%M:%S GMT") +
            '", rule-id="soon %22quoted%22"')
    assert put["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"] == want
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"] == want
    get = lcs3.get_object(Bucket=b, Key="e/1")
    assert get["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"] == want
    other = lcs3.put_object(Bucket=b, Key="f/1", Body=b"x")
    assert "x-amz-expiration" not in other["ResponseMetadata"]["HTTPHeaders"]
    # CopyObject and CompleteMultipartUpload say it as well.
    cp = lcs3.copy_object(Bucket=b, Key="e/2", CopySource=f"{b}/f/1")
    assert cp["ResponseMetadata"]["HTTPHeaders"]["x-amz-expiration"].endswith(
        'rule-id="soon %22quoted%22"')
    up = lcs3.create_multipart_upload(Bucket=b, Key="e/3")["UploadId"]
    part = lcs3.upload_part(Bucket=b, Key="e/3", UploadId=up, PartNumber=1,
                            Body=b"z")
    done = lcs3.complete_multipart_upload(
        Bucket=b, Key="e/3", UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert done["ResponseMetadata"]["HTTPHeaders"][
        "x-amz-expiration"].endswith('rule-id="soon %22quoted%22"')


# -- the job -------------------------------------------------------------------
#
# [lifecycle] day_seconds = 1 makes a rule's day one second, interval = 1
# runs a round every second: what takes days on S3 takes seconds here.

import os
import json
import time

from conftest import running_server

FAST = "[lifecycle]\nday_seconds = 1\ninterval = 1\n"
jobkura = server_fixture(FAST, scope="module")
jobs3 = client_fixture("jobkura", scope="module")


def wait_for(cond, timeout=30, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def versions(s3, bucket, prefix=""):
    r = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    return ([(v["Key"], v["VersionId"]) for v in r.get("Versions", [])],
            [(m["Key"], m["VersionId"]) for m in r.get("DeleteMarkers", [])])


def lifecycle_records(server):
    out = server.cli("audit", "export").stdout.splitlines()
    return [json.loads(line) for line in out if '"lifecycle"' in line]


def test_job_unversioned_removes(jobs3, jobkura):
    b = new_bucket(jobs3)
    jobs3.put_object(Bucket=b, Key="e/a", Body=b"x")
    jobs3.put_object(Bucket=b, Key="keep/b", Body=b"y")
    put_rules(jobs3, b, [{"ID": "exp", "Status": "Enabled",
                          "Filter": {"Prefix": "e/"},
                          "Expiration": {"Days": 1}}])
    wait_for(lambda: versions(jobs3, b, "e/") == ([], []), what="e/a gone")
    assert versions(jobs3, b, "keep/")[0][0][0] == "keep/b"
    recs = [r for r in lifecycle_records(jobkura) if r.get("bucket") == b]
    assert [(r["op"], r["key"], r.get("version_effect")) for r in recs] == [
        ("lifecycle.expire", "e/a", "gone")]
    assert recs[0]["rule"] == "exp"


def test_job_versioned_marker_noncurrent_and_lone_marker(jobs3):
    b = new_bucket(jobs3, "Enabled")
    for body in (b"1", b"2"):
        jobs3.put_object(Bucket=b, Key="e/k", Body=body)
    put_rules(jobs3, b, [
        {"ID": "exp", "Status": "Enabled", "Filter": {"Prefix": "e/"},
         "Expiration": {"Days": 1},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "e/"},
         "Expiration": {"ExpiredObjectDeleteMarker": True}}])
    # First a marker over the current version ...
    wait_for(lambda: versions(jobs3, b)[1] != [], what="a delete marker")
    # ... then the noncurrent versions go, then the lone marker.
    wait_for(lambda: versions(jobs3, b) == ([], []), what="everything gone")


def test_job_newer_noncurrent_versions_kept(jobs3):
    b = new_bucket(jobs3, "Enabled")
    ids = [jobs3.put_object(Bucket=b, Key="n/k", Body=str(i).encode())
           ["VersionId"] for i in range(5)]
    put_rules(jobs3, b, [{"ID": "nc", "Status": "Enabled", "Filter": {},
                          "NoncurrentVersionExpiration": {
                              "NoncurrentDays": 1,
                              "NewerNoncurrentVersions": 2}}])
    wait_for(lambda: len(versions(jobs3, b)[0]) == 3, what="two kept")
    time.sleep(2.5)
    got = [v for _, v in versions(jobs3, b)[0]]
    assert got == ids[::-1][:3]


def test_job_key_with_more_versions_than_a_page(jobs3):
    """A key's versions are judged together even beyond a page (500)."""
    b = new_bucket(jobs3, "Enabled")
    for i in range(620):
        jobs3.put_object(Bucket=b, Key="many", Body=b"%d" % i)
    put_rules(jobs3, b, [{"ID": "nc", "Status": "Enabled", "Filter": {},
                          "NoncurrentVersionExpiration": {
                              "NoncurrentDays": 1,
                              "NewerNoncurrentVersions": 1}}])
    wait_for(lambda: len(versions(jobs3, b)[0]) == 2, timeout=60,
             what="all but two versions gone")


def test_job_suspended_null_marker(jobs3):
    b = new_bucket(jobs3, "Enabled")
    jobs3.put_bucket_versioning(Bucket=b,
                                VersioningConfiguration={"Status": "Suspended"})
    jobs3.put_object(Bucket=b, Key="s/k", Body=b"x")
    put_rules(jobs3, b, [{"ID": "exp", "Status": "Enabled", "Filter": {},
                          "Expiration": {"Days": 1}}])
    wait_for(lambda: versions(jobs3, b) == ([], [("s/k", "null")]),
             what="a null delete marker")


def test_job_filters_tags_and_sizes(jobs3):
    b = new_bucket(jobs3)
    jobs3.put_object(Bucket=b, Key="t/tagged", Body=b"x" * 20,
                     Tagging="class=tmp")
    jobs3.put_object(Bucket=b, Key="t/small", Body=b"x", Tagging="class=tmp")
    jobs3.put_object(Bucket=b, Key="t/other", Body=b"x" * 20,
                     Tagging="class=keep")
    put_rules(jobs3, b, [{"ID": "tag", "Status": "Enabled",
                          "Filter": {"And": {"Prefix": "t/", "Tags": [
                              {"Key": "class", "Value": "tmp"}],
                              "ObjectSizeGreaterThan": 10}},
                          "Expiration": {"Days": 1}},
                         {"ID": "off", "Status": "Disabled", "Filter": {},
                          "Expiration": {"Days": 1}}])
    wait_for(lambda: "t/tagged" not in [k for k, _ in versions(jobs3, b)[0]],
             what="tagged object gone")
    time.sleep(2.5)
    assert sorted(k for k, _ in versions(jobs3, b)[0]) == ["t/other",
                                                           "t/small"]


def test_job_aborts_uploads(jobs3):
    b = new_bucket(jobs3)
    up = jobs3.create_multipart_upload(Bucket=b, Key="u/k")["UploadId"]
    keep = jobs3.create_multipart_upload(Bucket=b, Key="v/k")["UploadId"]
    put_rules(jobs3, b, [{"ID": "ab", "Status": "Enabled",
                          "Filter": {"Prefix": "u/"},
                          "AbortIncompleteMultipartUpload": {
                              "DaysAfterInitiation": 1}}])
    wait_for(lambda: [u["UploadId"] for u in jobs3.list_multipart_uploads(
        Bucket=b).get("Uploads", [])] == [keep], what="upload aborted")
    assert up != keep


def test_job_never_removes_locked_versions(jobs3, jobkura):
    b = "lc-lock-" + uuid.uuid4().hex[:8]
    jobs3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    until = (datetime.datetime.now(datetime.timezone.utc) +
             datetime.timedelta(seconds=6))
    locked = jobs3.put_object(Bucket=b, Key="l/k", Body=b"old",
                              ObjectLockMode="COMPLIANCE",
                              ObjectLockRetainUntilDate=until)["VersionId"]
    held = jobs3.put_object(Bucket=b, Key="l/h", Body=b"held",
                            ObjectLockLegalHoldStatus="ON")["VersionId"]
    jobs3.put_object(Bucket=b, Key="l/k", Body=b"new")
    jobs3.put_object(Bucket=b, Key="l/h", Body=b"new")
    put_rules(jobs3, b, [{"ID": "nc", "Status": "Enabled", "Filter": {},
                          "NoncurrentVersionExpiration": {
                              "NoncurrentDays": 1}}])
    wait_for(lambda: any(r.get("bucket") == b and r["op"] ==
                         "lifecycle.locked" for r in
                         lifecycle_records(jobkura)), what="a skip record")
    assert ("l/k", locked) in versions(jobs3, b)[0]
    # Retention over: the version goes; the legal hold still keeps its.
    wait_for(lambda: ("l/k", locked) not in versions(jobs3, b)[0],
             timeout=30, what="expired retention removed")
    assert ("l/h", held) in versions(jobs3, b)[0]
    jobs3.put_object_legal_hold(Bucket=b, Key="l/h", VersionId=held,
                                LegalHold={"Status": "OFF"})
    wait_for(lambda: ("l/h", held) not in versions(jobs3, b)[0],
             what="released hold removed")


def test_job_ignores_planted_rule(jobs3, jobkura):
    """A rule edited in meta.db to expire sooner is an integrity failure
    for the job too: it deletes nothing."""
    b = new_bucket(jobs3)
    jobs3.put_object(Bucket=b, Key="p/k", Body=b"x")
    put_rules(jobs3, b, [{"ID": "slow", "Status": "Enabled", "Filter": {},
                          "Expiration": {"Days": 100000}}])
    db = sqlite3.connect(str(jobkura.data_dir / "meta.db"), timeout=10)
    try:
        db.execute("UPDATE buckets SET lifecycle = replace(lifecycle, "
                   "'\"days\":100000', '\"days\":1') WHERE name = ?", (b,))
        db.commit()
    finally:
        db.close()
    out = jobkura.cli("audit", "export").stdout
    wait_for(lambda: jobkura.cli("audit", "export").stdout.count(
        "integrity.failure") > out.count("integrity.failure"),
        what="an integrity record")
    time.sleep(2)
    assert versions(jobs3, b)[0] == [("p/k", "null")]


def test_job_audit_verifies_against_meta(jobs3, jobkura):
    # After the tests above: every lifecycle action replays.
    r = jobkura.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    r = jobkura.cli("audit", "verify", "--against-meta")
    assert r.returncode == 0, r.stdout + r.stderr


def window_away():
    """A maintenance window that does not hold now: two hours on."""
    t = datetime.datetime.now(datetime.timezone.utc)
    a = t + datetime.timedelta(hours=2)
    z = t + datetime.timedelta(hours=3)
    return f"{a:%H:%M}-{z:%H:%M}"


def test_job_waits_for_maintenance_window(tmp_path):
    cfg = FAST + f"[maintenance]\nwindow = {window_away()}\n"
    with running_server(tmp_path / "w", cfg) as srv:
        s3 = srv.root_client()
        b = new_bucket(s3)
        s3.put_object(Bucket=b, Key="a", Body=b"x")
        put_rules(s3, b, [{"ID": "exp", "Status": "Enabled", "Filter": {},
                           "Expiration": {"Days": 1}}])
        time.sleep(5)
        assert versions(s3, b)[0] == [("a", "null")]
        assert lifecycle_records(srv) == []


def test_job_acts_inside_window(tmp_path):
    t = datetime.datetime.now(datetime.timezone.utc)
    a = t - datetime.timedelta(hours=1)
    z = t + datetime.timedelta(hours=1)
    cfg = FAST + f"[maintenance]\nwindow = {a:%H:%M}-{z:%H:%M}\n"
    with running_server(tmp_path / "w", cfg) as srv:
        s3 = srv.root_client()
        b = new_bucket(s3)
        s3.put_object(Bucket=b, Key="a", Body=b"x")
        put_rules(s3, b, [{"ID": "exp", "Status": "Enabled", "Filter": {},
                           "Expiration": {"Days": 1}}])
        wait_for(lambda: versions(s3, b) == ([], []), what="expired")


@pytest.mark.parametrize("window", ["25:00-01:00", "10:00-10:00", "1:00-2:00",
                                    "10:00"])
def test_bad_window_refused(tmp_path, window):
    from conftest import run_cli
    cfg = write_cfg(tmp_path, f"[maintenance]\nwindow = {window}\n")
    r = run_cli("check", "--config", cfg, "--data-dir", tmp_path / "d")
    assert r.returncode != 0 and "window" in (r.stdout + r.stderr)


def write_cfg(tmp_path, text):
    p = tmp_path / "kura.ini"
    p.write_text(text)
    return p


def many_objects(s3, bucket, n):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: s3.put_object(Bucket=bucket, Key=f"o/{i:06d}",
                                            Body=b"x"), range(n)))


def cursor_of(server):
    db = sqlite3.connect(str(server.data_dir / "meta.db"), timeout=10)
    try:
        row = db.execute("SELECT value FROM settings WHERE name = "
                         "'lifecycle_cursor'").fetchone()
        return row[0] if row else None
    finally:
        db.close()


# The issue asks for 100,000 objects; creating them through S3 and
# expiring them (each removal its own durable transaction and audit
# record) takes far longer than the normal suite may on two shared cores,
# so `make test` runs 3,000 and KURA_LIFECYCLE_OBJECTS=100000 runs the
# issue's size (about four minutes alone on two cores, most of it the
# PUTs; longer beside other work).
N_OBJECTS = int(os.environ.get("KURA_LIFECYCLE_OBJECTS", "3000"))


def test_job_resumes_after_kill9(tmp_path):
    window = window_away()
    cfg = FAST + f"[maintenance]\nwindow = {window}\n"
    with running_server(tmp_path / "k", cfg) as srv:
        s3 = srv.root_client()
        b = new_bucket(s3)
        many_objects(s3, b, N_OBJECTS)
        put_rules(s3, b, [{"ID": "exp", "Status": "Enabled", "Filter": {},
                           "Expiration": {"Days": 1}}])
        # Open the window: restart with none, kill -9 mid-round.
        srv.stop()
        srv.config.write_text(FAST)
        srv.start()
        wait_for(lambda: cursor_of(srv) is not None, what="a cursor")
        srv.kill9()
        left = s3_count(srv, b)
        assert 0 < left < N_OBJECTS, left
        srv.start()
        wait_for(lambda: s3_count(srv, b) == 0,
                 timeout=max(600, N_OBJECTS // 20), what="all expired")
        recs = [r for r in lifecycle_records(srv) if r.get("bucket") == b]
        # Each object expired once: a repeated page repeats nothing but
        # the removal cut by the kill, recorded before it was done.
        assert N_OBJECTS <= len(recs) <= N_OBJECTS + 1
        assert len({r["key"] for r in recs}) == N_OBJECTS
        r = srv.cli("audit", "verify", "--against-meta")
        assert r.returncode == 0, r.stdout + r.stderr


def s3_count(srv, bucket):
    db = sqlite3.connect(str(srv.data_dir / "meta.db"), timeout=10)
    try:
        return db.execute("SELECT count(*) FROM objects WHERE bucket_id = "
                          "(SELECT id FROM buckets WHERE name = ?)",
                          (bucket,)).fetchone()[0]
    finally:
        db.close()

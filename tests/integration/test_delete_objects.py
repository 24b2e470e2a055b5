"""DeleteObjects (POST /bucket?delete): the key limit, Quiet mode, the
Content-MD5 requirement (raw requests), existing and missing keys, keys
that need XML escaping, and malformed documents."""

import base64
import concurrent.futures
import hashlib
from xml.sax.saxutils import escape

import pytest

from tools_helpers import expect_error, raw_request

BUCKET = "delobj"


@pytest.fixture(scope="module")
def s3d(s3_module):
    s3_module.create_bucket(Bucket=BUCKET)
    return s3_module


def put_many(s3, keys, bucket=BUCKET):
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))


def all_keys(s3, bucket=BUCKET):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def delete_doc(keys, quiet=False):
    objs = "".join(f"<Object><Key>{escape(k)}</Key></Object>" for k in keys)
    q = "<Quiet>true</Quiet>" if quiet else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{q}{objs}</Delete>'
            ).encode()


def md5_b64(body):
    return base64.b64encode(hashlib.md5(body).digest()).decode()


def raw_delete(server, body, headers):
    return raw_request(server, "POST", f"/{BUCKET}", query="delete", body=body,
                       headers=headers)


def test_delete_1000_keys_mixed_existing_and_missing(s3d):
    existing = [f"bulk/{i:04d}" for i in range(0, 1000, 10)]
    put_many(s3d, existing)
    s3d.put_object(Bucket=BUCKET, Key="survivor", Body=b"stay")
    keys = [f"bulk/{i:04d}" for i in range(1000)]
    r = s3d.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "Errors" not in r
    # Missing keys are reported deleted too, as S3 does.
    assert sorted(d["Key"] for d in r["Deleted"]) == keys
    assert all_keys(s3d) == ["survivor"]


def test_1001_keys_malformed_xml(s3d):
    s3d.put_object(Bucket=BUCKET, Key="k0000", Body=b"x")
    keys = [f"k{i:04d}" for i in range(1001)]
    expect_error(s3d.delete_objects, "MalformedXML", 400, Bucket=BUCKET,
                 Delete={"Objects": [{"Key": k} for k in keys]})
    # Nothing was deleted.
    assert "k0000" in all_keys(s3d)
    s3d.delete_object(Bucket=BUCKET, Key="k0000")


def test_quiet_lists_only_errors(s3d):
    put_many(s3d, ["q1", "q2"])
    r = s3d.delete_objects(Bucket=BUCKET, Delete={
        "Quiet": True, "Objects": [{"Key": "q1"}, {"Key": "q2"}, {"Key": "q-missing"}]})
    assert r.get("Deleted", []) == []
    assert r.get("Errors", []) == []
    assert not {"q1", "q2"} & set(all_keys(s3d))
    # Errors are listed even in quiet mode: an unknown version, a key too long.
    put_many(s3d, ["q3"])
    long_key = "L" * 1025
    r = s3d.delete_objects(Bucket=BUCKET, Delete={
        "Quiet": True,
        "Objects": [{"Key": "q3", "VersionId": "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"},
                    {"Key": "q4"}, {"Key": long_key}]})
    assert r.get("Deleted", []) == []
    errors = {e["Key"]: e["Code"] for e in r["Errors"]}
    assert errors == {"q3": "NoSuchVersion", long_key: "KeyTooLongError"}
    assert "q3" in all_keys(s3d)
    # Not quiet: both lists.
    r = s3d.delete_objects(Bucket=BUCKET, Delete={
        "Objects": [{"Key": "q3"}, {"Key": long_key}]})
    assert [d["Key"] for d in r["Deleted"]] == ["q3"]
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [(long_key, "KeyTooLongError")]
    assert "q3" not in all_keys(s3d)


def test_version_id_null_deletes(s3d):
    put_many(s3d, ["vnull"])
    r = s3d.delete_objects(Bucket=BUCKET, Delete={
        "Objects": [{"Key": "vnull", "VersionId": "null"}]})
    assert [d["Key"] for d in r["Deleted"]] == ["vnull"]
    assert "vnull" not in all_keys(s3d)


def test_content_md5_required(kura_server_module, s3d):
    put_many(s3d, ["md5-a", "md5-b"])
    body = delete_doc(["md5-a"])
    r = raw_delete(kura_server_module, body, {"Content-Type": "application/xml"})
    assert r.status == 400, r
    assert r.error_code() == "InvalidRequest"
    assert "md5-a" in all_keys(s3d)
    # A wrong Content-MD5 is a bad digest, and deletes nothing.
    r = raw_delete(kura_server_module, body, {"Content-MD5": md5_b64(b"other")})
    assert r.status == 400, r
    assert r.error_code() == "BadDigest"
    assert "md5-a" in all_keys(s3d)
    # The same raw request with the right Content-MD5 works.
    r = raw_delete(kura_server_module, body, {"Content-MD5": md5_b64(body)})
    assert r.status == 200, r
    root = r.xml()
    assert root.tag == "DeleteResult"
    assert [d.findtext("Key") for d in root.findall("Deleted")] == ["md5-a"]
    assert "md5-a" not in all_keys(s3d)
    # An additional checksum header stands in for Content-MD5.
    body = delete_doc(["md5-b"])
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    r = raw_delete(kura_server_module, body, {"x-amz-checksum-sha256": sha})
    assert r.status == 200, r
    assert "md5-b" not in all_keys(s3d)


def test_keys_with_special_characters(kura_server_module, s3d):
    keys = ["a & b", "<tag>", 'quote"s', "apos'trophe", "sp ace/and/slash",
            "ü日本語🎉", "percent%20literal", "plus+sign", "tab\there", "line\nbreak",
            "semi;colon?query=1#frag", "]]>cdata"]
    put_many(s3d, keys)
    r = s3d.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(keys)
    assert not set(keys) & set(all_keys(s3d))
    # Hand-escaped character references in the request are decoded too.
    s3d.put_object(Bucket=BUCKET, Key="x<y>&z", Body=b"1")
    body = (b'<Delete><Object><Key>x&#60;y&gt;&amp;z</Key></Object></Delete>')
    r = raw_delete(kura_server_module, body, {"Content-MD5": md5_b64(body)})
    assert r.status == 200, r
    assert [d.findtext("Key") for d in r.xml().findall("Deleted")] == ["x<y>&z"]
    assert "x<y>&z" not in all_keys(s3d)


@pytest.mark.parametrize("body", [
    b"",
    b"<Delete></Delete>",
    b"<Delete><Object><Key>a</Key></Object>",
    b"<NotDelete><Object><Key>a</Key></Object></NotDelete>",
    b"<Delete><Object><VersionId>null</VersionId></Object></Delete>",
    b"not xml at all",
])
def test_malformed_documents(kura_server_module, s3d, body):
    r = raw_delete(kura_server_module, body, {"Content-MD5": md5_b64(body)})
    assert r.status == 400, r
    assert r.error_code() == "MalformedXML"


def test_delete_objects_missing_bucket(s3d):
    expect_error(s3d.delete_objects, "NoSuchBucket", 404, Bucket="no-such-bucket-del",
                 Delete={"Objects": [{"Key": "a"}]})

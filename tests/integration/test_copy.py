"""CopyObject through boto3 (and a raw request where boto3 would help too
much): within and across buckets, across tenants, metadata directives,
copy-source conditions, copy onto itself, re-encryption of the copy on
disk, multipart sources, and source keys that need URL-encoding."""

import datetime
import os
import urllib.parse

import pytest

from helpers import wait_for
from tools_helpers import (MiB, blob_files, expect_error, md5_hex,
                           multipart_etag, raw_request)

SRC = "copy-src"
DST = "copy-dst"


@pytest.fixture(scope="module")
def s3c(s3_module):
    s3_module.create_bucket(Bucket=SRC)
    s3_module.create_bucket(Bucket=DST)
    return s3_module


def put(s3, key, body, bucket=SRC, **kw):
    return s3.put_object(Bucket=bucket, Key=key, Body=body, **kw)["ETag"]


def body_of(s3, key, bucket):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def copy(s3, src_key, dst_key, src_bucket=SRC, dst_bucket=DST, **kw):
    return s3.copy_object(Bucket=dst_bucket, Key=dst_key,
                          CopySource={"Bucket": src_bucket, "Key": src_key}, **kw)


def test_copy_within_bucket_keeps_metadata_and_tags(s3c):
    body = os.urandom(70000)
    etag = put(s3c, "orig", body, ContentType="text/x-orig", Metadata={"m1": "one"},
               CacheControl="no-cache", ContentDisposition="inline",
               Tagging="t=1")
    r = copy(s3c, "orig", "orig-copy", dst_bucket=SRC)
    assert r["CopyObjectResult"]["ETag"] == etag == f'"{md5_hex(body)}"'
    g = s3c.get_object(Bucket=SRC, Key="orig-copy")
    assert g["Body"].read() == body
    assert g["ContentType"] == "text/x-orig"
    assert g["Metadata"] == {"m1": "one"}
    assert g["CacheControl"] == "no-cache"
    assert g["ContentDisposition"] == "inline"
    assert g["TagCount"] == 1
    assert s3c.get_object_tagging(Bucket=SRC, Key="orig-copy")["TagSet"] == \
        [{"Key": "t", "Value": "1"}]
    # The source is untouched.
    assert body_of(s3c, "orig", SRC) == body


def test_copy_across_buckets(s3c):
    body = b"across buckets\n" * 1000
    put(s3c, "a/b/c.txt", body, Metadata={"x": "y"})
    r = copy(s3c, "a/b/c.txt", "elsewhere/c.txt", Metadata={"ignored": "yes"})
    assert r["CopyObjectResult"]["ETag"] == f'"{md5_hex(body)}"'
    g = s3c.get_object(Bucket=DST, Key="elsewhere/c.txt")
    assert g["Body"].read() == body
    # COPY (the default directive) ignores metadata given with the request.
    assert g["Metadata"] == {"x": "y"}
    # Overwriting an existing target replaces it.
    put(s3c, "second", b"second body")
    copy(s3c, "second", "elsewhere/c.txt")
    assert body_of(s3c, "elsewhere/c.txt", DST) == b"second body"


def test_copy_empty_object(s3c):
    put(s3c, "empty", b"")
    r = copy(s3c, "empty", "empty-copy")
    assert r["CopyObjectResult"]["ETag"] == f'"{md5_hex(b"")}"'
    g = s3c.get_object(Bucket=DST, Key="empty-copy")
    assert g["ContentLength"] == 0 and g["Body"].read() == b""


def test_copy_metadata_directive_replace(s3c):
    put(s3c, "meta-src", b"payload", ContentType="text/plain",
        Metadata={"old": "1", "keep": "no"}, ContentLanguage="en")
    copy(s3c, "meta-src", "meta-replaced", MetadataDirective="REPLACE",
         ContentType="application/json", Metadata={"new": "2"})
    h = s3c.head_object(Bucket=DST, Key="meta-replaced")
    assert h["ContentType"] == "application/json"
    assert h["Metadata"] == {"new": "2"}
    assert "ContentLanguage" not in h
    assert body_of(s3c, "meta-replaced", DST) == b"payload"
    copy(s3c, "meta-src", "meta-copied", MetadataDirective="COPY",
         ContentType="application/json", Metadata={"new": "2"})
    h = s3c.head_object(Bucket=DST, Key="meta-copied")
    assert h["ContentType"] == "text/plain"
    assert h["Metadata"] == {"old": "1", "keep": "no"}
    assert h["ContentLanguage"] == "en"
    expect_error(copy, "InvalidArgument", 400, s3c, "meta-src", "bad-directive",
                 MetadataDirective="MERGE")


def test_copy_tagging_directive(s3c):
    put(s3c, "tag-src", b"t", Tagging="a=1&b=2")
    copy(s3c, "tag-src", "tag-copy")
    assert s3c.head_object(Bucket=DST, Key="tag-copy")["ResponseMetadata"][
        "HTTPHeaders"]["x-amz-tagging-count"] == "2"
    copy(s3c, "tag-src", "tag-replaced", TaggingDirective="REPLACE", Tagging="c=3")
    assert s3c.get_object_tagging(Bucket=DST, Key="tag-replaced")["TagSet"] == \
        [{"Key": "c", "Value": "3"}]


def test_copy_onto_itself(s3c):
    body = os.urandom(5000)
    etag = put(s3c, "self", body, ContentType="text/old", Metadata={"v": "1"})
    expect_error(copy, "InvalidRequest", 400, s3c, "self", "self", dst_bucket=SRC)
    expect_error(copy, "InvalidRequest", 400, s3c, "self", "self", dst_bucket=SRC,
                 MetadataDirective="COPY")
    h = s3c.head_object(Bucket=SRC, Key="self")
    assert h["Metadata"] == {"v": "1"}
    r = copy(s3c, "self", "self", dst_bucket=SRC, MetadataDirective="REPLACE",
             ContentType="text/new", Metadata={"v": "2"})
    assert r["CopyObjectResult"]["ETag"] == etag
    g = s3c.get_object(Bucket=SRC, Key="self")
    assert g["Body"].read() == body
    assert g["ContentType"] == "text/new"
    assert g["Metadata"] == {"v": "2"}
    assert g["ETag"] == etag


def _http_date(dt):
    return dt.strftime("%a, %d %b %Y %H:%M:%S GMT")


def test_copy_source_conditions(s3c):
    body = b"conditional"
    etag = put(s3c, "cond", body)
    mtime = s3c.head_object(Bucket=SRC, Key="cond")["LastModified"]
    past = mtime - datetime.timedelta(days=1)
    future = mtime + datetime.timedelta(days=1)
    failing = [
        {"CopySourceIfMatch": '"' + "0" * 32 + '"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfNoneMatch": "*"},
        {"CopySourceIfModifiedSince": future},
        {"CopySourceIfUnmodifiedSince": past},
    ]
    for i, cond in enumerate(failing):
        expect_error(copy, "PreconditionFailed", 412, s3c, "cond", f"cond-fail-{i}", **cond)
        expect_error(s3c.head_object, "404", 404, Bucket=DST, Key=f"cond-fail-{i}")
    passing = [
        {"CopySourceIfMatch": etag},
        {"CopySourceIfMatch": "*"},
        {"CopySourceIfNoneMatch": '"' + "0" * 32 + '"'},
        {"CopySourceIfModifiedSince": past},
        {"CopySourceIfUnmodifiedSince": future},
        # If-Match wins over a failing If-Unmodified-Since (as S3).
        {"CopySourceIfMatch": etag, "CopySourceIfUnmodifiedSince": past},
    ]
    for i, cond in enumerate(passing):
        copy(s3c, "cond", f"cond-ok-{i}", **cond)
        assert body_of(s3c, f"cond-ok-{i}", DST) == body


def test_copy_missing_source(s3c):
    expect_error(copy, "NoSuchKey", 404, s3c, "no-such-key", "x")
    expect_error(copy, "NoSuchBucket", 404, s3c, "x", "x", src_bucket="no-such-bucket")


def test_copy_source_with_special_characters(kura_server_module, s3c):
    keys = ["dir/a b+c&d=e?f#g%h ü 日本.txt", "semi;colon,comma:'quote'", "trailing/",
            "plus+only", "tilde~and*star(paren)"]
    for i, k in enumerate(keys):
        body = f"special {i}".encode()
        put(s3c, k, body)
        copy(s3c, k, "special/" + k)
        assert body_of(s3c, "special/" + k, DST) == body
    # The raw header too, with and without a leading slash, fully encoded.
    k = keys[0]
    for i, src in enumerate([f"/{SRC}/" + urllib.parse.quote(k, safe="/"),
                             f"{SRC}/" + urllib.parse.quote(k, safe="")]):
        r = raw_request(kura_server_module, "PUT", f"/{DST}/raw-{i}",
                        headers={"x-amz-copy-source": src})
        assert r.status == 200, r
        assert r.xml().tag == "CopyObjectResult"
        assert body_of(s3c, f"raw-{i}", DST) == b"special 0"


def test_copy_of_multipart_object(s3c):
    p = [os.urandom(5 * MiB), os.urandom(123457)]
    uid = s3c.create_multipart_upload(Bucket=SRC, Key="mp-src", ContentType="video/x-test",
                                      Metadata={"mp": "yes"})["UploadId"]
    etags = [s3c.upload_part(Bucket=SRC, Key="mp-src", UploadId=uid, PartNumber=n + 1,
                             Body=p[n])["ETag"] for n in range(2)]
    s3c.complete_multipart_upload(Bucket=SRC, Key="mp-src", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": n + 1, "ETag": etags[n]} for n in range(2)]})
    assert s3c.head_object(Bucket=SRC, Key="mp-src")["ETag"] == f'"{multipart_etag(p)}"'
    r = copy(s3c, "mp-src", "mp-copy")
    whole = b"".join(p)
    # The copy is one new object: a plain MD5 ETag over the whole content.
    assert r["CopyObjectResult"]["ETag"] == f'"{md5_hex(whole)}"'
    g = s3c.get_object(Bucket=DST, Key="mp-copy")
    assert g["Body"].read() == whole
    assert g["ContentType"] == "video/x-test"
    assert g["Metadata"] == {"mp": "yes"}
    # Ranges across the old part boundary read back right.
    cut = 5 * MiB
    rg = s3c.get_object(Bucket=DST, Key="mp-copy", Range=f"bytes={cut - 10}-{cut + 9}")
    assert rg["Body"].read() == whole[cut - 10:cut + 10]
    # UploadPartCopy of a range straddling the source's part boundary.
    uid = s3c.create_multipart_upload(Bucket=DST, Key="mp-range")["UploadId"]
    lo, hi = cut - 1000, cut + 999
    r = s3c.upload_part_copy(Bucket=DST, Key="mp-range", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": SRC, "Key": "mp-src"},
                             CopySourceRange=f"bytes={lo}-{hi}")
    assert r["CopyPartResult"]["ETag"] == f'"{md5_hex(whole[lo:hi + 1])}"'
    s3c.complete_multipart_upload(Bucket=DST, Key="mp-range", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"]}]})
    assert body_of(s3c, "mp-range", DST) == whole[lo:hi + 1]


def test_copy_across_tenants_denied(kura_server_module, s3c, tenant_module):
    other = tenant_module
    other.create_bucket(Bucket="tenant-copy-bucket")
    other.put_object(Bucket="tenant-copy-bucket", Key="secret", Body=b"tenant data")
    put(s3c, "root-secret", b"root data")
    # Another tenant's source, into my own bucket: denied both ways.
    expect_error(copy, "AccessDenied", 403, s3c, "secret", "stolen",
                 src_bucket="tenant-copy-bucket")
    expect_error(copy, "AccessDenied", 403, other, "root-secret", "stolen",
                 dst_bucket="tenant-copy-bucket")
    expect_error(other.head_object, "404", 404, Bucket="tenant-copy-bucket", Key="stolen")
    expect_error(s3c.head_object, "404", 404, Bucket=DST, Key="stolen")
    # UploadPartCopy obeys the same rule.
    uid = s3c.create_multipart_upload(Bucket=DST, Key="mp-stolen")["UploadId"]
    expect_error(s3c.upload_part_copy, "AccessDenied", 403, Bucket=DST, Key="mp-stolen",
                 UploadId=uid, PartNumber=1,
                 CopySource={"Bucket": "tenant-copy-bucket", "Key": "secret"})
    s3c.abort_multipart_upload(Bucket=DST, Key="mp-stolen", UploadId=uid)
    # Within the other tenant, copying works.
    other.copy_object(Bucket="tenant-copy-bucket", Key="mine",
                      CopySource={"Bucket": "tenant-copy-bucket", "Key": "secret"})
    assert other.get_object(Bucket="tenant-copy-bucket", Key="mine")["Body"].read() == \
        b"tenant data"


def test_copy_is_reencrypted(kura_server):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="reenc-a")
    s3.create_bucket(Bucket="reenc-b")
    body = os.urandom(300000)
    b0 = set(blob_files(kura_server))
    s3.put_object(Bucket="reenc-a", Key="src", Body=body)
    b1 = blob_files(kura_server)
    src_blobs = set(b1) - b0
    assert len(src_blobs) == 1
    src_blob = src_blobs.pop()
    for bucket in ("reenc-a", "reenc-b"):
        before = blob_files(kura_server)
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": "reenc-a", "Key": "src"})
        after = blob_files(kura_server)
        new = set(after) - set(before)
        assert len(new) == 1, "a copy writes exactly one new blob"
        dst_blob = new.pop()
        assert dst_blob != src_blob
        src_bytes = b1[src_blob].read_bytes()
        dst_bytes = after[dst_blob].read_bytes()
        assert src_bytes != dst_bytes
        # No run of plaintext appears in either file.
        for f in (src_bytes, dst_bytes):
            assert body[1000:1064] not in f
        # Not the same ciphertext under another header either.
        assert src_bytes[-4096:] != dst_bytes[-4096:]
    # Delete the source: the copies still read back, and its blob goes.
    s3.delete_object(Bucket="reenc-a", Key="src")
    wait_for(lambda: src_blob not in blob_files(kura_server))
    assert src_blob not in blob_files(kura_server)
    for bucket in ("reenc-a", "reenc-b"):
        assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == body

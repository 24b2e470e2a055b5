"""Multipart uploads through boto3: create, upload (and copy) parts,
complete, abort, ListParts, ListMultipartUploads, GET/HEAD by partNumber,
and the blob files on disk (parts freed on abort, no copy on complete)."""

import base64
import concurrent.futures
import hashlib
import os

import pytest

from helpers import wait_for
from tools_helpers import (MiB, blob_files, expect_error, md5_hex,
                           multipart_etag, raw_request)

BUCKET = "mp-bucket"


@pytest.fixture(scope="module")
def s3m(s3_module):
    s3_module.create_bucket(Bucket=BUCKET)
    return s3_module


def rnd(n):
    return os.urandom(n)


def create(s3, key, bucket=BUCKET, **kw):
    return s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)["UploadId"]


def put_part(s3, key, uid, n, body, bucket=BUCKET):
    r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=body)
    return r["ETag"]


def complete(s3, key, uid, parts, bucket=BUCKET):
    """parts: [(number, etag)] in the order given."""
    return s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})


def get_body(s3, key, bucket=BUCKET, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


# -- completing -------------------------------------------------------------------

def test_complete_etag_content_and_headers_from_create(s3m):
    key = "dir/multi part ü.bin"
    p = [rnd(5 * MiB), rnd(5 * MiB + 17), rnd(1234)]
    uid = create(s3m, key, ContentType="application/x-kura-test",
                 ContentDisposition='attachment; filename="x.bin"',
                 CacheControl="max-age=60", ContentLanguage="de",
                 Metadata={"color": "blue", "owner": "itest"},
                 Tagging="k1=v1&k2=v%202")
    # Upload out of order: the order of completion is what counts.
    etags = {}
    for n in (3, 1, 2):
        etags[n] = put_part(s3m, key, uid, n, p[n - 1])
        assert etags[n] == f'"{md5_hex(p[n - 1])}"'
    r = complete(s3m, key, uid, [(1, etags[1]), (2, etags[2]), (3, etags[3])])
    want_etag = f'"{multipart_etag(p)}"'
    assert r["ETag"] == want_etag
    assert r["Key"] == key and r["Bucket"] == BUCKET

    g = s3m.get_object(Bucket=BUCKET, Key=key)
    assert g["Body"].read() == b"".join(p)
    assert g["ETag"] == want_etag
    assert g["ContentLength"] == sum(map(len, p))
    assert g["ContentType"] == "application/x-kura-test"
    assert g["ContentDisposition"] == 'attachment; filename="x.bin"'
    assert g["CacheControl"] == "max-age=60"
    assert g["ContentLanguage"] == "de"
    assert g["Metadata"] == {"color": "blue", "owner": "itest"}
    assert g["TagCount"] == 2
    tags = s3m.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("k1", "v1"), ("k2", "v 2")]
    h = s3m.head_object(Bucket=BUCKET, Key=key)
    assert h["ETag"] == want_etag and h["ContentLength"] == sum(map(len, p))
    assert h["Metadata"] == {"color": "blue", "owner": "itest"}


def test_complete_unquoted_etags_accepted(s3m):
    key = "unquoted"
    body = rnd(100)
    uid = create(s3m, key)
    e = put_part(s3m, key, uid, 1, body)
    r = complete(s3m, key, uid, [(1, e.strip('"'))])
    assert r["ETag"] == f'"{multipart_etag([body])}"'
    assert get_body(s3m, key) == body


def test_parts_out_of_order_invalid_part_order(s3m):
    key = "order"
    p1, p2 = rnd(5 * MiB), rnd(10)
    uid = create(s3m, key)
    e1 = put_part(s3m, key, uid, 1, p1)
    e2 = put_part(s3m, key, uid, 2, p2)
    expect_error(complete, "InvalidPartOrder", 400, s3m, key, uid, [(2, e2), (1, e1)])
    expect_error(complete, "InvalidPartOrder", 400, s3m, key, uid, [(1, e1), (1, e1)])
    # The failed attempts left the upload intact.
    r = complete(s3m, key, uid, [(1, e1), (2, e2)])
    assert r["ETag"] == f'"{multipart_etag([p1, p2])}"'
    assert get_body(s3m, key) == p1 + p2


def test_unknown_part_or_wrong_etag_invalid_part(s3m):
    key = "invalid-part"
    p1, p2 = rnd(5 * MiB), rnd(10)
    uid = create(s3m, key)
    e1 = put_part(s3m, key, uid, 1, p1)
    e2 = put_part(s3m, key, uid, 2, p2)
    expect_error(complete, "InvalidPart", 400, s3m, key, uid, [(1, e1), (3, e2)])
    expect_error(complete, "InvalidPart", 400, s3m, key, uid, [(1, e1), (2, e1)])
    expect_error(complete, "InvalidPart", 400, s3m, key, uid,
                 [(1, '"' + "0" * 32 + '"')])
    expect_error(s3m.head_object, "404", 404, Bucket=BUCKET, Key=key)
    complete(s3m, key, uid, [(1, e1), (2, e2)])
    assert get_body(s3m, key) == p1 + p2


def test_non_last_part_under_5mib_entity_too_small(s3m):
    key = "too-small"
    p1, p2, p3 = rnd(5 * MiB - 1), rnd(5 * MiB), rnd(3)
    uid = create(s3m, key)
    e1 = put_part(s3m, key, uid, 1, p1)
    e2 = put_part(s3m, key, uid, 2, p2)
    e3 = put_part(s3m, key, uid, 3, p3)
    expect_error(complete, "EntityTooSmall", 400, s3m, key, uid, [(1, e1), (2, e2)])
    expect_error(complete, "EntityTooSmall", 400, s3m, key, uid,
                 [(1, e1), (2, e2), (3, e3)])
    # Exactly 5 MiB is enough for a non-last part; the last may be tiny.
    r = complete(s3m, key, uid, [(2, e2), (3, e3)])
    assert r["ETag"] == f'"{multipart_etag([p2, p3])}"'
    assert get_body(s3m, key) == p2 + p3


def test_single_small_part_is_fine(s3m):
    key = "one-small"
    body = rnd(1)
    uid = create(s3m, key)
    e = put_part(s3m, key, uid, 1, body)
    complete(s3m, key, uid, [(1, e)])
    assert get_body(s3m, key) == body
    assert s3m.head_object(Bucket=BUCKET, Key=key)["ETag"] == f'"{multipart_etag([body])}"'


def test_reupload_replaces_part(s3m):
    key = "replace"
    old, new, tail = rnd(5 * MiB), rnd(5 * MiB + 1), rnd(50)
    uid = create(s3m, key)
    e_old = put_part(s3m, key, uid, 1, old)
    e_new = put_part(s3m, key, uid, 1, new)
    assert e_old != e_new
    e2 = put_part(s3m, key, uid, 2, tail)
    parts = s3m.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == \
        [(1, e_new, len(new)), (2, e2, len(tail))]
    expect_error(complete, "InvalidPart", 400, s3m, key, uid, [(1, e_old), (2, e2)])
    complete(s3m, key, uid, [(1, e_new), (2, e2)])
    assert get_body(s3m, key) == new + tail


def test_complete_with_subset_of_parts(s3m):
    key = "subset"
    p = [rnd(5 * MiB), rnd(5 * MiB), rnd(5 * MiB), rnd(777)]
    uid = create(s3m, key)
    e = {n: put_part(s3m, key, uid, n, p[n - 1]) for n in (1, 2, 3, 4)}
    r = complete(s3m, key, uid, [(1, e[1]), (3, e[3]), (4, e[4])])
    chosen = [p[0], p[2], p[3]]
    assert r["ETag"] == f'"{multipart_etag(chosen)}"'
    assert get_body(s3m, key) == b"".join(chosen)
    # Part numbers of the object are its positions, not the upload's numbers.
    g = s3m.get_object(Bucket=BUCKET, Key=key, PartNumber=2)
    assert g["Body"].read() == p[2]
    assert g["PartsCount"] == 3


# -- unknown and finished uploads ------------------------------------------------

def _assert_upload_gone(s3, key, uid):
    expect_error(s3.upload_part, "NoSuchUpload", 404, Bucket=BUCKET, Key=key,
                 UploadId=uid, PartNumber=1, Body=b"x")
    expect_error(s3.list_parts, "NoSuchUpload", 404, Bucket=BUCKET, Key=key, UploadId=uid)
    expect_error(complete, "NoSuchUpload", 404, s3, key, uid, [(1, '"' + "0" * 32 + '"')])
    expect_error(s3.abort_multipart_upload, "NoSuchUpload", 404, Bucket=BUCKET, Key=key,
                 UploadId=uid)
    ups = s3.list_multipart_uploads(Bucket=BUCKET, Prefix=key).get("Uploads", [])
    assert uid not in [u["UploadId"] for u in ups]


def test_no_such_upload_unknown_id(s3m):
    _assert_upload_gone(s3m, "nokey", "0" * 32)
    _assert_upload_gone(s3m, "nokey", "not-an-upload-id")


def test_no_such_upload_for_other_key(s3m):
    uid = create(s3m, "key-a")
    expect_error(s3m.upload_part, "NoSuchUpload", 404, Bucket=BUCKET, Key="key-b",
                 UploadId=uid, PartNumber=1, Body=b"x")
    expect_error(s3m.list_parts, "NoSuchUpload", 404, Bucket=BUCKET, Key="key-b",
                 UploadId=uid)
    s3m.abort_multipart_upload(Bucket=BUCKET, Key="key-a", UploadId=uid)


def test_no_such_upload_after_abort(s3m):
    key = "aborted"
    uid = create(s3m, key)
    put_part(s3m, key, uid, 1, rnd(10))
    r = s3m.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    _assert_upload_gone(s3m, key, uid)
    expect_error(s3m.head_object, "404", 404, Bucket=BUCKET, Key=key)


def test_no_such_upload_after_complete(s3m):
    key = "completed"
    uid = create(s3m, key)
    e = put_part(s3m, key, uid, 1, b"abc")
    complete(s3m, key, uid, [(1, e)])
    _assert_upload_gone(s3m, key, uid)
    assert get_body(s3m, key) == b"abc"


def test_part_number_out_of_range(s3m):
    key = "partnum"
    uid = create(s3m, key)
    for n in (0, 10001):
        expect_error(s3m.upload_part, "InvalidArgument", 400, Bucket=BUCKET, Key=key,
                     UploadId=uid, PartNumber=n, Body=b"x")
    put_part(s3m, key, uid, 10000, b"x")
    s3m.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)


# -- GET/HEAD by part number ----------------------------------------------------------

def test_get_and_head_part_number(s3m):
    key = "by-part"
    p = [rnd(5 * MiB), rnd(5 * MiB + 3), rnd(4321)]
    uid = create(s3m, key)
    e = [put_part(s3m, key, uid, n + 1, p[n]) for n in range(3)]
    complete(s3m, key, uid, [(n + 1, e[n]) for n in range(3)])
    total = sum(map(len, p))
    start = 0
    for n in range(3):
        g = s3m.get_object(Bucket=BUCKET, Key=key, PartNumber=n + 1)
        assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert g["Body"].read() == p[n]
        hdrs = g["ResponseMetadata"]["HTTPHeaders"]
        assert hdrs["x-amz-mp-parts-count"] == "3"
        assert g["ContentRange"] == f"bytes {start}-{start + len(p[n]) - 1}/{total}"
        assert g["ETag"] == f'"{multipart_etag(p)}"'
        h = s3m.head_object(Bucket=BUCKET, Key=key, PartNumber=n + 1)
        assert h["ContentLength"] == len(p[n])
        assert h["PartsCount"] == 3
        start += len(p[n])
    expect_error(s3m.get_object, "InvalidPartNumber", 416, Bucket=BUCKET, Key=key,
                 PartNumber=4)
    # A simple object has exactly one part: the whole object.
    s3m.put_object(Bucket=BUCKET, Key="simple", Body=b"hello")
    assert get_body(s3m, "simple", PartNumber=1) == b"hello"
    expect_error(s3m.get_object, "InvalidPartNumber", 416, Bucket=BUCKET, Key="simple",
                 PartNumber=2)


def test_empty_parts(s3m):
    # An object of one empty part, and one whose last part is empty.
    uid = create(s3m, "empty-mp")
    e = put_part(s3m, "empty-mp", uid, 1, b"")
    r = complete(s3m, "empty-mp", uid, [(1, e)])
    assert r["ETag"] == f'"{multipart_etag([b""])}"'
    g = s3m.get_object(Bucket=BUCKET, Key="empty-mp")
    assert g["ContentLength"] == 0 and g["Body"].read() == b""
    g = s3m.get_object(Bucket=BUCKET, Key="empty-mp", PartNumber=1)
    assert g["ContentLength"] == 0 and g["Body"].read() == b""
    assert g["PartsCount"] == 1

    p1 = rnd(5 * MiB)
    uid = create(s3m, "empty-last")
    e1 = put_part(s3m, "empty-last", uid, 1, p1)
    e2 = put_part(s3m, "empty-last", uid, 2, b"")
    r = complete(s3m, "empty-last", uid, [(1, e1), (2, e2)])
    assert r["ETag"] == f'"{multipart_etag([p1, b""])}"'
    assert get_body(s3m, "empty-last") == p1
    g = s3m.get_object(Bucket=BUCKET, Key="empty-last", PartNumber=2)
    assert g["ResponseMetadata"]["HTTPStatusCode"] in (200, 206)
    assert g["ContentLength"] == 0 and g["Body"].read() == b""
    assert g["PartsCount"] == 2
    h = s3m.head_object(Bucket=BUCKET, Key="empty-last", PartNumber=2)
    assert h["ContentLength"] == 0 and h["PartsCount"] == 2
    g = s3m.get_object(Bucket=BUCKET, Key="empty-last", PartNumber=1)
    assert g["ContentLength"] == len(p1) and g["Body"].read() == p1


# -- UploadPartCopy -------------------------------------------------------------------

def test_upload_part_copy_with_ranges(s3m):
    src = rnd(11 * MiB + 5)
    other = rnd(333)
    s3m.put_object(Bucket=BUCKET, Key="copy-src", Body=src)
    s3m.put_object(Bucket=BUCKET, Key="copy-src-small", Body=other)
    key = "copied-parts"
    uid = create(s3m, key)
    cut = 5 * MiB
    r1 = s3m.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1,
                              CopySource={"Bucket": BUCKET, "Key": "copy-src"},
                              CopySourceRange=f"bytes={cut}-{len(src) - 1}")
    assert r1["CopyPartResult"]["ETag"] == f'"{md5_hex(src[cut:])}"'
    r2 = s3m.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=2,
                              CopySource={"Bucket": BUCKET, "Key": "copy-src"},
                              CopySourceRange=f"bytes=0-{cut - 1}")
    assert r2["CopyPartResult"]["ETag"] == f'"{md5_hex(src[:cut])}"'
    # Whole source without a range; one uploaded part for good measure.
    r3 = s3m.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=3,
                              CopySource={"Bucket": BUCKET, "Key": "copy-src-small"})
    assert r3["CopyPartResult"]["ETag"] == f'"{md5_hex(other)}"'
    tail = rnd(99)
    e4 = put_part(s3m, key, uid, 4, tail)
    # A range past the end of the source is refused, never clamped; so are
    # the forms a GET Range allows but a copy range does not.
    for bad in ("bytes=0-333", "bytes=300-400", "bytes=10-", "bytes=-10",
                "bytes=5-4", "0-10", "bytes=0-10,20-30"):
        expect_error(s3m.upload_part_copy, "InvalidArgument", 400, Bucket=BUCKET,
                     Key=key, UploadId=uid, PartNumber=5,
                     CopySource={"Bucket": BUCKET, "Key": "copy-src-small"},
                     CopySourceRange=bad)
    assert [p["PartNumber"] for p in
            s3m.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)["Parts"]] == [1, 2, 3, 4]
    r5 = s3m.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=5,
                              CopySource={"Bucket": BUCKET, "Key": "copy-src-small"},
                              CopySourceRange="bytes=332-332")
    assert r5["CopyPartResult"]["ETag"] == f'"{md5_hex(other[332:])}"'
    parts = [(1, r1["CopyPartResult"]["ETag"]), (2, r2["CopyPartResult"]["ETag"])]
    # Part 3 (333 bytes) is not last, so it would be too small: leave it out.
    expect_error(complete, "EntityTooSmall", 400, s3m, key, uid,
                 parts + [(3, r3["CopyPartResult"]["ETag"]), (4, e4)])
    r = complete(s3m, key, uid, parts + [(4, e4)])
    want = [src[cut:], src[:cut], tail]
    assert r["ETag"] == f'"{multipart_etag(want)}"'
    assert get_body(s3m, key) == b"".join(want)


def test_upload_part_copy_missing_source(s3m):
    key = "copy-missing"
    uid = create(s3m, key)
    expect_error(s3m.upload_part_copy, "NoSuchKey", 404, Bucket=BUCKET, Key=key,
                 UploadId=uid, PartNumber=1,
                 CopySource={"Bucket": BUCKET, "Key": "does-not-exist"})
    s3m.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)


# -- ListParts --------------------------------------------------------------------------

def test_list_parts_paging(kura_server_module, s3m):
    key = "list-parts"
    uid = create(s3m, key)
    bodies = {n: rnd(100 + n) for n in (1, 2, 3, 5, 8)}
    etags = {n: put_part(s3m, key, uid, n, b) for n, b in bodies.items()}
    full = s3m.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert full["IsTruncated"] is False
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in full["Parts"]] == \
        [(n, etags[n], len(bodies[n])) for n in (1, 2, 3, 5, 8)]
    assert full["UploadId"] == uid and full["Key"] == key

    seen, marker, pages = [], 0, 0
    while True:
        r = s3m.list_parts(Bucket=BUCKET, Key=key, UploadId=uid, MaxParts=2,
                           PartNumberMarker=marker)
        pages += 1
        assert r["MaxParts"] == 2
        assert r.get("PartNumberMarker", 0) == marker
        nums = [p["PartNumber"] for p in r.get("Parts", [])]
        assert len(nums) <= 2
        seen += nums
        if not r["IsTruncated"]:
            break
        assert len(nums) == 2
        assert r["NextPartNumberMarker"] == nums[-1]
        marker = r["NextPartNumberMarker"]
    assert seen == [1, 2, 3, 5, 8]
    assert pages == 3
    # A marker in a gap starts after it.
    r = s3m.list_parts(Bucket=BUCKET, Key=key, UploadId=uid, PartNumberMarker=4)
    assert [p["PartNumber"] for p in r["Parts"]] == [5, 8]
    r = s3m.list_parts(Bucket=BUCKET, Key=key, UploadId=uid, PartNumberMarker=8)
    assert r.get("Parts", []) == [] and r["IsTruncated"] is False
    # max-parts is capped at 1000, as S3 does.
    r = s3m.list_parts(Bucket=BUCKET, Key=key, UploadId=uid, MaxParts=5000)
    assert r["MaxParts"] == 1000 and len(r["Parts"]) == 5
    r = raw_request(kura_server_module, "GET", f"/{BUCKET}/{key}",
                    query=[("uploadId", uid), ("max-parts", "abc")])
    assert r.status == 400 and r.error_code() == "InvalidArgument", r
    s3m.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)


# -- ListMultipartUploads ------------------------------------------------------------------

def test_list_multipart_uploads(s3m):
    b = "mp-list"
    s3m.create_bucket(Bucket=b)
    keys = ["a/1", "a/2", "b", "b", "c", "c/d", "e"]
    made = []
    for k in keys:
        made.append((k, create(s3m, k, bucket=b)))
    # S3 order: key (bytes), then initiation time for one key.
    want = sorted(made, key=lambda kv: kv[0].encode())
    r = s3m.list_multipart_uploads(Bucket=b)
    assert r["IsTruncated"] is False
    got = [(u["Key"], u["UploadId"]) for u in r["Uploads"]]
    assert got == want
    assert [u for k, u in got if k == "b"] == [u for k, u in made if k == "b"]

    # Paging with max-uploads and both markers.
    seen, km, im, pages = [], None, None, 0
    while True:
        kw = {"MaxUploads": 2}
        if km is not None:
            kw.update(KeyMarker=km, UploadIdMarker=im)
        r = s3m.list_multipart_uploads(Bucket=b, **kw)
        pages += 1
        assert r["MaxUploads"] == 2
        page = [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]
        assert len(page) <= 2
        seen += page
        if not r["IsTruncated"]:
            break
        assert (r["NextKeyMarker"], r["NextUploadIdMarker"]) == page[-1]
        km, im = r["NextKeyMarker"], r["NextUploadIdMarker"]
    assert seen == want
    assert pages == 4

    r = s3m.list_multipart_uploads(Bucket=b, MaxUploads=5000)
    assert r["MaxUploads"] == 1000 and len(r["Uploads"]) == len(made)

    # key-marker alone: only keys strictly after it.
    r = s3m.list_multipart_uploads(Bucket=b, KeyMarker="b")
    assert [u["Key"] for u in r["Uploads"]] == ["c", "c/d", "e"]

    # Prefix and delimiter.
    r = s3m.list_multipart_uploads(Bucket=b, Prefix="a/")
    assert [u["Key"] for u in r["Uploads"]] == ["a/1", "a/2"]
    r = s3m.list_multipart_uploads(Bucket=b, Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["b", "b", "c", "e"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "c/"]

    # Paging with a delimiter: a common prefix handed out as NextKeyMarker
    # resumes after everything under it (never the same prefix again).
    entries, km, im, pages = [], None, None, 0
    while True:
        kw = {"MaxUploads": 1, "Delimiter": "/"}
        if km is not None:
            kw.update(KeyMarker=km, UploadIdMarker=im)
        r = s3m.list_multipart_uploads(Bucket=b, **kw)
        pages += 1
        assert pages <= 10, f"paging does not end: {entries}"
        page = [u["Key"] for u in r.get("Uploads", [])] + \
            [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        assert len(page) == 1
        entries += page
        if not r["IsTruncated"]:
            break
        km, im = r["NextKeyMarker"], r.get("NextUploadIdMarker", "")
        assert km == page[0]
    assert entries == ["a/", "b", "b", "c", "c/", "e"]

    # Finished uploads leave the list.
    done = dict((k, u) for k, u in made if k in ("e", "a/1"))
    s3m.abort_multipart_upload(Bucket=b, Key="e", UploadId=done["e"])
    e = put_part(s3m, "a/1", done["a/1"], 1, b"z", bucket=b)
    complete(s3m, "a/1", done["a/1"], [(1, e)], bucket=b)
    r = s3m.list_multipart_uploads(Bucket=b)
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]] == \
        [kv for kv in want if kv[0] not in ("e", "a/1")]


def test_list_multipart_uploads_encoding_type_url(kura_server_module, s3m):
    b = "mp-list-enc"
    s3m.create_bucket(Bucket=b)
    key = "sp ace+ü/x"
    uid = create(s3m, key, bucket=b)
    r = raw_request(kura_server_module, "GET", f"/{b}",
                    query=[("uploads", ""), ("encoding-type", "url"), ("delimiter", "/")])
    assert r.status == 200, r
    root = r.xml()
    assert root.findtext("EncodingType") == "url"
    assert [p.findtext("Prefix") for p in root.findall("CommonPrefixes")] == \
        ["sp%20ace%2B%C3%BC/"]
    r = raw_request(kura_server_module, "GET", f"/{b}",
                    query=[("uploads", ""), ("encoding-type", "url")])
    assert [u.findtext("Key") for u in r.xml().findall("Upload")] == \
        ["sp%20ace%2B%C3%BC/x"]
    ups = s3m.list_multipart_uploads(Bucket=b)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [(key, uid)]


def test_upload_part_bad_digest(s3m):
    key = "bad-digest"
    uid = create(s3m, key)
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    expect_error(s3m.upload_part, "BadDigest", 400, Bucket=BUCKET, Key=key, UploadId=uid,
                 PartNumber=1, Body=b"payload", ContentMD5=wrong)
    assert s3m.list_parts(Bucket=BUCKET, Key=key, UploadId=uid).get("Parts", []) == []
    s3m.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)


@pytest.mark.parametrize("body", [
    b"",
    b"<CompleteMultipartUpload></CompleteMultipartUpload>",
    b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part>"
    b"</CompleteMultipartUpload>",
    b"<Other><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></Other>",
    b"<CompleteMultipartUpload><Part><PartNumber>one</PartNumber><ETag>x</ETag></Part>"
    b"</CompleteMultipartUpload>",
    b"not xml",
])
def test_complete_malformed_xml(kura_server_module, s3m, body):
    key = "malformed-complete"
    uid = create(s3m, key)
    put_part(s3m, key, uid, 1, b"data")
    r = raw_request(kura_server_module, "POST", f"/{BUCKET}/{key}",
                    query=[("uploadId", uid)], body=body)
    assert r.status == 400, r
    assert r.error_code() == "MalformedXML"
    # The upload survives a bad request.
    assert len(s3m.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)["Parts"]) == 1
    s3m.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)


# -- blob files: abort frees, complete does not copy ----------------------------------------

def test_abort_frees_part_blobs(kura_server):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="gc-bucket")
    s3.put_object(Bucket="gc-bucket", Key="keep", Body=b"keep me")
    before = set(blob_files(kura_server))
    uid = s3.create_multipart_upload(Bucket="gc-bucket", Key="k")["UploadId"]
    for n in (1, 2, 3):
        s3.upload_part(Bucket="gc-bucket", Key="k", UploadId=uid, PartNumber=n,
                       Body=rnd(64 * 1024))
    # Replace one part: the old blob goes, the count stays 3.
    s3.upload_part(Bucket="gc-bucket", Key="k", UploadId=uid, PartNumber=2,
                   Body=rnd(1000))
    during = set(blob_files(kura_server))
    assert before <= during
    assert len(during - before) == 3, "three parts, three blob files"
    s3.abort_multipart_upload(Bucket="gc-bucket", Key="k", UploadId=uid)
    wait_for(lambda: set(blob_files(kura_server)) == before)
    assert set(blob_files(kura_server)) == before, \
        "the parts' blob files are still there after the abort"
    assert get_body(s3, "keep", bucket="gc-bucket") == b"keep me"


def test_complete_does_not_copy_bytes(kura_server):
    s3 = kura_server.client()
    s3.create_bucket(Bucket="nocopy")
    key = "assembled"
    uid = s3.create_multipart_upload(Bucket="nocopy", Key=key)["UploadId"]
    p = [rnd(5 * MiB), rnd(5 * MiB), rnd(5 * MiB), rnd(10)]
    part_blob, etags = {}, {}
    for n in (1, 2, 3, 4):
        before = set(blob_files(kura_server))
        etags[n] = put_part(s3, key, uid, n, p[n - 1], bucket="nocopy")
        new = set(blob_files(kura_server)) - before
        assert len(new) == 1, f"part {n} made {len(new)} blob files"
        part_blob[n] = new.pop()
    before_complete = set(blob_files(kura_server))
    assert set(part_blob.values()) <= before_complete
    complete(s3, key, uid, [(1, etags[1]), (2, etags[2]), (4, etags[4])], bucket="nocopy")
    # The object is exactly the chosen parts' blobs; the unchosen part's blob
    # goes, and no new blob file appears.
    want = before_complete - {part_blob[3]}
    wait_for(lambda: set(blob_files(kura_server)) == want)
    assert set(blob_files(kura_server)) == want
    assert get_body(s3, key, bucket="nocopy") == p[0] + p[1] + p[3]
    # Deleting the object frees exactly those blobs.
    s3.delete_object(Bucket="nocopy", Key=key)
    rest = want - {part_blob[1], part_blob[2], part_blob[4]}
    wait_for(lambda: set(blob_files(kura_server)) == rest)
    assert set(blob_files(kura_server)) == rest


def test_concurrent_part_uploads(s3m):
    key = "parallel"
    p = [rnd(5 * MiB) for _ in range(5)] + [rnd(100)]
    uid = create(s3m, key)
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        etags = list(ex.map(lambda n: put_part(s3m, key, uid, n + 1, p[n]), range(6)))
    r = complete(s3m, key, uid, [(n + 1, etags[n]) for n in range(6)])
    assert r["ETag"] == f'"{multipart_etag(p)}"'
    assert get_body(s3m, key) == b"".join(p)

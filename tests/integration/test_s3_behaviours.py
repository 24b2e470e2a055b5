"""S3 behaviours that real clients and conformance suites trip on (issue
12): ListBuckets pagination, partNumber beyond the parts, the SSE headers of
copies, SSE-KMS headers on reads and the default KMS key, ListObjectsV2's
echoes and encoding-type=url, copy-source ranges outside the source, parts
uploaded twice, non-ASCII user metadata and Content-Encoding as sent.

Each test states what AWS does; the docs/S3.md rows name the same."""

import base64
import email.header
import hashlib
import os
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest

import helpers as H
from conftest import client_fixture, server_fixture

# SSE-C needs TLS unless the loopback exemption is on.
srv = server_fixture("[server]\nallow_ssec_over_http = true\n", scope="module")
s3m = client_fixture("srv", scope="module")

MiB = 1024 * 1024


def new_ssec_key():
    return base64.b32encode(os.urandom(20)).decode()  # 32 characters


def ssec_args(key, prefix="SSECustomer"):
    """boto3 arguments for SSE-C key (a 32-character str; boto3 adds the
    base64 and the MD5)."""
    return {f"{prefix}Algorithm": "AES256", f"{prefix}Key": key}


def key_md5(key):
    return base64.b64encode(hashlib.md5(key.encode()).digest()).decode()


def cli_ok(server, *args):
    r = server.cli(*args)
    assert r.returncode == 0, f"kura {' '.join(args)}: {r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def bucket(s3m):
    s3m.create_bucket(Bucket="behave")
    return "behave"


# -- ListBuckets: max-buckets, continuation-token, prefix ---------------------
# (Debian's botocore predates these parameters: raw signed requests.)

LB_NAMES = ["lb-a0", "lb-a1", "lb-a2", "lb-a3", "lb-b0"]


@pytest.fixture(scope="module")
def lb_tenant(srv):
    ak, sk = srv.add_tenant("lister")
    c = srv.client(ak, sk)
    for n in LB_NAMES:
        c.create_bucket(Bucket=n)
    return ak, sk


def list_buckets(server, creds, params):
    r = H.raw(server, "GET", "/", query=params, access_key=creds[0],
              secret_key=creds[1])
    return r


def page_of(r):
    assert r.status == 200, r
    root = ET.fromstring(r.body)
    names = [b.findtext(H.S3NS + "Name")
             for b in root.iter(H.S3NS + "Bucket")]
    return root, names


def test_list_buckets_pages(srv, lb_tenant):
    got, token, pages = [], None, 0
    while True:
        params = [("max-buckets", "2")]
        if token is not None:
            params.append(("continuation-token", token))
        root, names = page_of(list_buckets(srv, lb_tenant, params))
        got += names
        pages += 1
        assert len(names) <= 2
        token = root.findtext(H.S3NS + "ContinuationToken")
        if token is None:
            break
        assert token not in LB_NAMES  # opaque, not a bucket name
    assert got == LB_NAMES
    assert pages == 3


def test_list_buckets_prefix_is_echoed(srv, lb_tenant):
    root, names = page_of(list_buckets(srv, lb_tenant, [("prefix", "lb-a")]))
    assert names == LB_NAMES[:4]
    assert root.findtext(H.S3NS + "Prefix") == "lb-a"
    assert root.findtext(H.S3NS + "ContinuationToken") is None
    root, names = page_of(list_buckets(srv, lb_tenant, [("prefix", "lb-a"),
                                                        ("max-buckets", "3")]))
    assert names == LB_NAMES[:3]
    token = root.findtext(H.S3NS + "ContinuationToken")
    root, names = page_of(list_buckets(srv, lb_tenant, [
        ("prefix", "lb-a"), ("max-buckets", "3"), ("continuation-token", token)]))
    assert names == ["lb-a3"]
    assert root.findtext(H.S3NS + "ContinuationToken") is None


def test_list_buckets_without_parameters_lists_all(srv, lb_tenant):
    root, names = page_of(list_buckets(srv, lb_tenant, []))
    assert names == LB_NAMES
    assert root.findtext(H.S3NS + "ContinuationToken") is None
    assert root.findtext(H.S3NS + "Prefix") is None
    assert [b.findtext(H.S3NS + "BucketRegion")
            for b in root.iter(H.S3NS + "Bucket")] == ["us-east-1"] * 5


@pytest.mark.parametrize("value", ["0", "10001", "-1", "abc", ""])
def test_list_buckets_bad_max_buckets(srv, lb_tenant, value):
    r = list_buckets(srv, lb_tenant, [("max-buckets", value)])
    err = H.assert_s3_error(r, 400, "InvalidArgument")
    assert err["ArgumentName"] == "max-buckets"


@pytest.mark.parametrize("token", [
    "lb-a1", "!!!", "", "QQ==", pytest.param("A" * 2000, id="long"),
    pytest.param(base64.b64encode(b"B" + b"x" * 70).decode(), id="long-name"),
    pytest.param(base64.b64encode(b"BNot_A_Bucket").decode(), id="bad-name")])
def test_list_buckets_bad_token(srv, lb_tenant, token):
    r = list_buckets(srv, lb_tenant, [("continuation-token", token)])
    err = H.assert_s3_error(r, 400, "InvalidArgument")
    assert err["ArgumentName"] == "continuation-token"


def test_list_buckets_bucket_region(srv, lb_tenant):
    root, names = page_of(list_buckets(srv, lb_tenant,
                                       [("bucket-region", "us-east-1")]))
    assert names == LB_NAMES
    root, names = page_of(list_buckets(srv, lb_tenant,
                                       [("bucket-region", "eu-west-1")]))
    assert names == []


# -- partNumber beyond the parts: 416 InvalidPartNumber, as AWS ---------------
# AWS answers 416 (moto's AWS-verified tests, versitygw), with the part
# counts in the error document; partNumber=1 of a simple object is the whole
# object as a range (206).

def test_part_number_beyond_the_parts(srv, s3m, bucket):
    up = s3m.create_multipart_upload(Bucket=bucket, Key="two-parts")
    uid = up["UploadId"]
    e1 = s3m.upload_part(Bucket=bucket, Key="two-parts", UploadId=uid,
                         PartNumber=1, Body=os.urandom(5 * MiB))["ETag"]
    e2 = s3m.upload_part(Bucket=bucket, Key="two-parts", UploadId=uid,
                         PartNumber=2, Body=b"tail")["ETag"]
    s3m.complete_multipart_upload(
        Bucket=bucket, Key="two-parts", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                   {"PartNumber": 2, "ETag": e2}]})
    s3m.put_object(Bucket=bucket, Key="one-part", Body=b"hello")
    for key, count in (("two-parts", 2), ("one-part", 1)):
        path = H.key_path(bucket, key)
        r = H.raw(srv, "GET", path, query=[("partNumber", str(count + 1))])
        err = H.assert_s3_error(r, 416, "InvalidPartNumber")
        assert err["Message"] == "The requested partnumber is not satisfiable."
        assert err["ActualPartCount"] == str(count)
        assert err["PartNumberRequested"] == str(count + 1)
        r = H.raw(srv, "HEAD", path, query=[("partNumber", str(count + 1))])
        assert r.status == 416 and r.body == b""
    g = s3m.get_object(Bucket=bucket, Key="one-part", PartNumber=1)
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["ContentRange"] == "bytes 0-4/5"
    assert g["Body"].read() == b"hello"
    h = s3m.head_object(Bucket=bucket, Key="one-part", PartNumber=1)
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert h["ContentLength"] == 5


# -- x-amz-copy-source-range outside the source -------------------------------
# AWS: 400 InvalidArgument "Range specified is not valid for source object
# of size: N" (observed by versitygw against AWS; s3-tests' InvalidRange is
# RGW's answer).

@pytest.mark.parametrize("rng", ["bytes=0-5", "bytes=5-5", "bytes=3-100",
                                 "bytes=100-200"])
def test_copy_source_range_outside_the_source(s3m, bucket, rng):
    s3m.put_object(Bucket=bucket, Key="five", Body=b"12345")
    uid = s3m.create_multipart_upload(Bucket=bucket, Key="rng")["UploadId"]
    resp = H.expect_error("InvalidArgument", 400, s3m.upload_part_copy,
                          Bucket=bucket, Key="rng", UploadId=uid, PartNumber=1,
                          CopySource={"Bucket": bucket, "Key": "five"},
                          CopySourceRange=rng)
    assert resp["Error"]["Message"] == \
        "Range specified is not valid for source object of size: 5"
    assert resp["Error"]["ArgumentName"] == "x-amz-copy-source-range"
    s3m.abort_multipart_upload(Bucket=bucket, Key="rng", UploadId=uid)


@pytest.mark.parametrize("rng", ["0-2", "bytes=0", "bytes=hello-world",
                                 "bytes=0-bar", "bytes=hello-", "bytes=0-2,3-4",
                                 "bytes=3-1"])
def test_copy_source_range_malformed(s3m, bucket, rng):
    s3m.put_object(Bucket=bucket, Key="five", Body=b"12345")
    uid = s3m.create_multipart_upload(Bucket=bucket, Key="rng")["UploadId"]
    resp = H.expect_error("InvalidArgument", 400, s3m.upload_part_copy,
                          Bucket=bucket, Key="rng", UploadId=uid, PartNumber=1,
                          CopySource={"Bucket": bucket, "Key": "five"},
                          CopySourceRange=rng)
    assert resp["Error"]["ArgumentName"] == "x-amz-copy-source-range"
    assert resp["Error"]["ArgumentValue"] == rng
    s3m.abort_multipart_upload(Bucket=bucket, Key="rng", UploadId=uid)


# -- copies answer with the SSE headers of their target -----------------------

def test_copy_object_answers_the_targets_ssec_headers(s3m, bucket):
    key = new_ssec_key()
    s3m.put_object(Bucket=bucket, Key="plain-src", Body=b"x" * 100)
    r = s3m.copy_object(Bucket=bucket, Key="ssec-dst",
                        CopySource={"Bucket": bucket, "Key": "plain-src"},
                        **ssec_args(key))
    assert r["SSECustomerAlgorithm"] == "AES256"
    assert r["SSECustomerKeyMD5"] == key_md5(key)
    assert "ServerSideEncryption" not in r


def test_copy_object_answers_the_targets_kms_headers(srv, s3m, bucket):
    cli_ok(srv, "key", "create", "copy-kms")
    src_key = new_ssec_key()
    s3m.put_object(Bucket=bucket, Key="ssec-src", Body=b"y" * 100,
                   **ssec_args(src_key))
    r = s3m.copy_object(Bucket=bucket, Key="kms-dst",
                        CopySource={"Bucket": bucket, "Key": "ssec-src"},
                        ServerSideEncryption="aws:kms", SSEKMSKeyId="copy-kms",
                        **ssec_args(src_key, "CopySourceSSECustomer"))
    assert r["ServerSideEncryption"] == "aws:kms"
    assert r["SSEKMSKeyId"] == "copy-kms"
    assert "SSECustomerAlgorithm" not in r


def test_upload_part_copy_answers_the_targets_sse_headers(srv, s3m, bucket):
    cli_ok(srv, "key", "create", "part-copy-kms")
    s3m.put_object(Bucket=bucket, Key="part-src", Body=b"z" * 1000)
    src = {"Bucket": bucket, "Key": "part-src"}
    key = new_ssec_key()
    cases = [
        (ssec_args(key), {"SSECustomerAlgorithm": "AES256",
                          "SSECustomerKeyMD5": key_md5(key)}),
        ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "part-copy-kms"},
         {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "part-copy-kms"}),
        ({}, {"ServerSideEncryption": "AES256"}),
    ]
    for create_args, want in cases:
        up = s3m.create_multipart_upload(Bucket=bucket, Key="part-dst",
                                         **create_args)
        part_args = create_args if "SSECustomerKey" in create_args else {}
        r = s3m.upload_part_copy(Bucket=bucket, Key="part-dst",
                                 UploadId=up["UploadId"], PartNumber=1,
                                 CopySource=src, **part_args)
        assert {k: r.get(k) for k in want} == want, r
        s3m.abort_multipart_upload(Bucket=bucket, Key="part-dst",
                                   UploadId=up["UploadId"])


# -- SSE-KMS headers are for writes; aws:kms without a key id -----------------

READ_REFUSED = [
    ("x-amz-server-side-encryption", "aws:kms"),
    ("x-amz-server-side-encryption", "AES256"),
    ("x-amz-server-side-encryption-aws-kms-key-id", "copy-kms"),
    ("x-amz-server-side-encryption-context",
     base64.b64encode(b'{"a":"b"}').decode()),
]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("header,value", READ_REFUSED)
def test_sse_kms_headers_refused_on_reads(srv, s3m, bucket, method, header,
                                          value):
    s3m.put_object(Bucket=bucket, Key="kms-read", Body=b"data",
                   ServerSideEncryption="aws:kms")
    r = H.raw(srv, method, H.key_path(bucket, "kms-read"),
              headers={header: value})
    assert r.status == 400, r
    if method == "GET":
        err = H.assert_s3_error(r, 400, "InvalidArgument")
        assert err["Message"] == \
            f"{header} header is not supported for this operation."


def test_kms_without_key_id_uses_the_buckets_kms_default(srv, s3m):
    cli_ok(srv, "key", "create", "dflt-kms")
    s3m.create_bucket(Bucket="kms-default")
    s3m.put_bucket_encryption(
        Bucket="kms-default",
        ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "dflt-kms"}}]})
    kms = {"ServerSideEncryption": "aws:kms"}
    put = s3m.put_object(Bucket="kms-default", Key="k", Body=b"1", **kms)
    assert put["SSEKMSKeyId"] == "dflt-kms"
    assert s3m.head_object(Bucket="kms-default", Key="k")["SSEKMSKeyId"] == \
        "dflt-kms"
    up = s3m.create_multipart_upload(Bucket="kms-default", Key="m", **kms)
    assert up["SSEKMSKeyId"] == "dflt-kms"
    s3m.abort_multipart_upload(Bucket="kms-default", Key="m",
                               UploadId=up["UploadId"])
    cp = s3m.copy_object(Bucket="kms-default", Key="c",
                         CopySource={"Bucket": "kms-default", "Key": "k"},
                         **kms)
    assert cp["SSEKMSKeyId"] == "dflt-kms"


def test_kms_without_key_id_uses_the_buckets_own_key(s3m, bucket):
    # No SSE-KMS default: the bucket's own key stands in for AWS's aws/s3.
    put = s3m.put_object(Bucket=bucket, Key="own-kms", Body=b"1",
                         ServerSideEncryption="aws:kms")
    assert put["ServerSideEncryption"] == "aws:kms"
    assert put["SSEKMSKeyId"] == f"bucket/{bucket}"
    assert s3m.get_object(Bucket=bucket, Key="own-kms")["Body"].read() == b"1"


# -- ListObjectsV2 echoes and encoding-type=url -------------------------------

ODD_KEYS = ["a b/1", "a b/2", "c+d", "c+d/e f", "x&y", "é/ü"]


@pytest.fixture(scope="module")
def odd(s3m):
    s3m.create_bucket(Bucket="list-odd")
    for k in ODD_KEYS:
        s3m.put_object(Bucket="list-odd", Key=k, Body=b"")
    return "list-odd"


def list_raw(server, bucket, params):
    r = H.raw(server, "GET", "/" + bucket, query=params)
    assert r.status == 200, r
    return ET.fromstring(r.body)


def test_v2_echoes_start_after_with_a_continuation_token(srv, s3m, odd):
    first = s3m.list_objects_v2(Bucket=odd, StartAfter="a b/1", MaxKeys=1)
    assert first["StartAfter"] == "a b/1" and first["IsTruncated"]
    token = first["NextContinuationToken"]
    nxt = s3m.list_objects_v2(Bucket=odd, StartAfter="a b/1", MaxKeys=1,
                              ContinuationToken=token)
    # AWS echoes both; the token decides where the page begins.
    assert nxt["StartAfter"] == "a b/1"
    assert nxt["ContinuationToken"] == token
    assert [o["Key"] for o in nxt["Contents"]] == ["c+d"]


def test_v2_empty_continuation_token_lists_from_the_start(s3m, odd):
    # boto3 sends `continuation-token=`; AWS lists as without a token and
    # echoes the empty token.
    r = s3m.list_objects_v2(Bucket=odd, ContinuationToken="")
    assert r["ContinuationToken"] == ""
    assert not r["IsTruncated"]
    assert [o["Key"] for o in r["Contents"]] == sorted(
        ODD_KEYS, key=lambda k: k.encode())
    r = s3m.list_objects_v2(Bucket=odd, ContinuationToken="", StartAfter="c+d")
    assert [o["Key"] for o in r["Contents"]] == ["c+d/e f", "x&y", "é/ü"]


def enc(s):
    return quote(s, safe="-_.~/")


def test_v2_encoding_type_url_covers_every_field(srv, odd):
    root = list_raw(srv, odd, [("list-type", "2"), ("encoding-type", "url"),
                               ("prefix", "a b"), ("delimiter", " "),
                               ("start-after", "a")])
    assert root.findtext(H.S3NS + "Prefix") == enc("a b")
    assert root.findtext(H.S3NS + "Delimiter") == enc(" ")
    assert root.findtext(H.S3NS + "StartAfter") == enc("a")
    root = list_raw(srv, odd, [("list-type", "2"), ("encoding-type", "url"),
                               ("delimiter", "/"), ("start-after", "a b/2"),
                               ("max-keys", "1")])
    token = root.findtext(H.S3NS + "NextContinuationToken")
    root = list_raw(srv, odd, [("list-type", "2"), ("encoding-type", "url"),
                               ("delimiter", "/"), ("start-after", "a b/2"),
                               ("continuation-token", token)])
    assert root.findtext(H.S3NS + "StartAfter") == enc("a b/2")
    keys = [c.findtext(H.S3NS + "Key") for c in root.iter(H.S3NS + "Contents")]
    prefixes = [c.findtext(H.S3NS + "Prefix")
                for c in root.iter(H.S3NS + "CommonPrefixes")]
    assert keys == [enc("x&y")]
    assert prefixes == [enc("c+d/"), enc("é/")]


def test_v1_encoding_type_url_covers_every_field(srv, odd):
    root = list_raw(srv, odd, [("encoding-type", "url"), ("delimiter", "/"),
                               ("marker", "a b/2"), ("max-keys", "1")])
    assert root.findtext(H.S3NS + "Marker") == enc("a b/2")
    assert root.findtext(H.S3NS + "Delimiter") == enc("/")
    assert root.findtext(H.S3NS + "NextMarker") == enc("c+d")
    assert [c.findtext(H.S3NS + "Key")
            for c in root.iter(H.S3NS + "Contents")] == [enc("c+d")]
    root = list_raw(srv, odd, [("encoding-type", "url"), ("delimiter", "/"),
                               ("prefix", "é"), ("marker", "c+d")])
    assert root.findtext(H.S3NS + "Prefix") == enc("é")
    assert [c.findtext(H.S3NS + "Prefix")
            for c in root.iter(H.S3NS + "CommonPrefixes")] == [enc("é/")]


# -- a part uploaded twice: the later completed upload wins -------------------
# (test_multipart.py covers a re-upload, out-of-order and repeated part
# numbers in CompleteMultipartUpload: InvalidPartOrder.)

def test_resend_that_finishes_last_is_the_part(srv, s3m, bucket):
    from tools_helpers import blob_files
    key = "resend"
    uid = s3m.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    slow, fast = os.urandom(256 * 1024), os.urandom(100 * 1024)
    before = set(blob_files(srv))
    # The first upload of part 1 sends half its body and stalls ...
    path = H.key_path(bucket, key)
    query = H.encode_query([("partNumber", "1"), ("uploadId", uid)])
    signed = H.sign(srv, "PUT", path, query, body=slow)
    conn = H.http.client.HTTPConnection(srv.host, srv.port, timeout=60)
    conn.putrequest("PUT", f"{path}?{query}", skip_host=True,
                    skip_accept_encoding=True)
    for k, v in signed.headers.items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(slow)))
    conn.endheaders()
    conn.send(slow[:len(slow) // 2])
    # ... while a resend of part 1 completes ...
    e_fast = s3m.upload_part(Bucket=bucket, Key=key, UploadId=uid,
                             PartNumber=1, Body=fast)["ETag"]
    # ... and then finishes: it completed last, so it is part 1.
    conn.send(slow[len(slow) // 2:])
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    e_slow = resp.getheader("ETag")
    conn.close()
    assert e_slow == f'"{hashlib.md5(slow).hexdigest()}"' != e_fast
    parts = s3m.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] == [(1, e_slow)]
    # The replaced upload's blob is collected: one blob for the one part.
    H.wait_for(lambda: len(set(blob_files(srv)) - before) == 1)
    assert len(set(blob_files(srv)) - before) == 1
    H.expect_error("InvalidPart", 400, s3m.complete_multipart_upload,
                   Bucket=bucket, Key=key, UploadId=uid,
                   MultipartUpload={"Parts": [{"PartNumber": 1,
                                               "ETag": e_fast}]})
    s3m.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e_slow}]})
    assert s3m.get_object(Bucket=bucket, Key=key)["Body"].read() == slow


@pytest.mark.parametrize("order", [[2, 1], [1, 1], [1, 2, 2]])
def test_parts_listed_once_each_in_ascending_order(s3m, bucket, order):
    key = "order"
    uid = s3m.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    etags = {n: s3m.upload_part(Bucket=bucket, Key=key, UploadId=uid,
                                PartNumber=n, Body=os.urandom(5 * MiB)
                                if n == 1 else b"tail")["ETag"]
             for n in sorted(set(order))}
    resp = H.expect_error(
        "InvalidPartOrder", 400, s3m.complete_multipart_upload, Bucket=bucket,
        Key=key, UploadId=uid, MultipartUpload={"Parts": [
            {"PartNumber": n, "ETag": etags[n]} for n in order]})
    assert resp["Error"]["Message"] == (
        "The list of parts was not in ascending order. The parts list must "
        "be specified in order by part number.")
    s3m.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)


# -- non-ASCII user metadata: RFC 2047, as AWS --------------------------------
# AWS decodes RFC 2047 encoded words before storing a value and returns a
# value with non-ASCII characters RFC 2047-encoded ("=?UTF-8?B?...?="), which
# botocore hands over as it is.  Stock boto3 refuses non-ASCII Metadata
# before sending anything; clients that send UTF-8 (s3-tests does, with a
# before-call hook) get the encoded form back, as from AWS.

def put_raw_meta(s3c, bucket, key, value):
    def hook(params, **_):
        params["headers"]["x-amz-meta-k"] = value
    s3c.meta.events.register("before-call.s3.PutObject", hook)
    try:
        s3c.put_object(Bucket=bucket, Key=key, Body=b"m")
    finally:
        s3c.meta.events.unregister("before-call.s3.PutObject", hook)


def test_boto3_refuses_non_ascii_metadata_itself(s3m, bucket):
    from botocore.exceptions import ParamValidationError
    with pytest.raises(ParamValidationError):
        s3m.put_object(Bucket=bucket, Key="meta", Body=b"m",
                       Metadata={"k": "héllo"})


def test_utf8_metadata_comes_back_rfc2047_encoded(srv, bucket):
    s3c = srv.client()
    put_raw_meta(s3c, bucket, "meta-utf8", "héllo ™")
    got = s3c.get_object(Bucket=bucket, Key="meta-utf8")["Metadata"]["k"]
    assert got == "=?UTF-8?B?" + base64.b64encode(
        "héllo ™".encode()).decode() + "?="
    assert str(email.header.make_header(email.header.decode_header(got))) == \
        "héllo ™"
    assert s3c.head_object(Bucket=bucket, Key="meta-utf8")["Metadata"]["k"] == got


@pytest.mark.parametrize("sent,returned", [
    ("=?UTF-8?B?aMOpbGxv?=", "=?UTF-8?B?aMOpbGxv?="),
    ("=?utf-8?q?h=C3=A9llo_w?=", "=?UTF-8?B?" +
     base64.b64encode("héllo w".encode()).decode() + "?="),
    ("=?ISO-8859-1?Q?h=E9llo?=", "=?UTF-8?B?aMOpbGxv?="),
    ("=?UTF-8?B?aMOp?= =?UTF-8?B?bGxv?=", "=?UTF-8?B?aMOpbGxv?="),
    ("=?UTF-8?B?aGVsbG8=?=", "hello"),
    ("plain ascii", "plain ascii"),
    ("=?UTF-8?X?bad?=", "=?UTF-8?X?bad?="),
    ("=?UTF-8?B?not base64?=", "=?UTF-8?B?not base64?="),
    ("a =?UTF-8?B?aMOpbGxv?=", "a =?UTF-8?B?aMOpbGxv?="),
])
def test_rfc2047_metadata_is_decoded_when_stored(s3m, bucket, sent, returned):
    s3m.put_object(Bucket=bucket, Key="meta-2047", Body=b"m",
                   Metadata={"k": sent})
    assert s3m.get_object(Bucket=bucket,
                          Key="meta-2047")["Metadata"]["k"] == returned


def test_decoded_control_characters_are_refused(s3m, bucket):
    H.expect_error("InvalidArgument", 400, s3m.put_object, Bucket=bucket,
                   Key="meta-ctl", Body=b"m",
                   Metadata={"k": "=?UTF-8?B?YQpi?="})  # "a\nb"


def test_metadata_size_counts_decoded_bytes(s3m, bucket):
    # 2 KiB of names and values, as UTF-8: the encoded form is longer.
    value = "é" * 1000  # 2000 bytes of UTF-8
    enc = "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="
    s3m.put_object(Bucket=bucket, Key="meta-size", Body=b"m",
                   Metadata={"k": enc})
    H.expect_error("MetadataTooLarge", 400, s3m.put_object, Bucket=bucket,
                   Key="meta-size", Body=b"m",
                   Metadata={"k": enc, "k2": "x" * 60})


# -- Content-Encoding as sent -------------------------------------------------

@pytest.mark.parametrize("sent,stored", [
    ("gzip", "gzip"),
    ("identity", "identity"),
    ("GZip", "GZip"),
    ("gzip, br", "gzip, br"),
    ("gzip,deflate", "gzip,deflate"),
    ("aws-chunked,gzip", "gzip"),
    ("aws-chunked, gzip, br", "gzip, br"),
    ("gzip, aws-chunked", "gzip"),
    ("x-custom;q=1", "x-custom;q=1"),
])
def test_content_encoding_is_returned_as_sent(srv, s3m, bucket, sent, stored):
    r = H.raw(srv, "PUT", H.key_path(bucket, "enc"), body=b"abc",
              headers={"Content-Encoding": sent})
    assert r.status == 200, r
    for method in ("GET", "HEAD"):
        g = H.raw(srv, method, H.key_path(bucket, "enc"))
        assert g.header("Content-Encoding") == stored
    assert s3m.head_object(Bucket=bucket, Key="enc")["ContentEncoding"] == stored


def test_aws_chunked_alone_stores_no_content_encoding(srv, s3m, bucket):
    r = H.raw(srv, "PUT", H.key_path(bucket, "enc-chunked"), body=b"abc",
              headers={"Content-Encoding": "aws-chunked"})
    assert r.status == 200, r
    assert "ContentEncoding" not in s3m.head_object(Bucket=bucket,
                                                    Key="enc-chunked")


def test_content_encoding_through_boto3_streaming_upload(s3m, bucket):
    # boto3 uploads with aws-chunked when it adds a trailing checksum (newer
    # botocore); either way the object's own encoding comes back alone.
    s3m.put_object(Bucket=bucket, Key="enc-boto", Body=b"x" * 1000,
                   ContentEncoding="gzip")
    g = s3m.get_object(Bucket=bucket, Key="enc-boto")
    assert g["ContentEncoding"] == "gzip"

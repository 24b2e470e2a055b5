"""Signatures cover what the server acts on (issue 10, item 1).

Every x-amz-* request header must be named in SignedHeaders (header auth)
or X-Amz-SignedHeaders (presigned URLs), as AWS requires; a request
carrying one that is not is refused with 403 AccessDenied, AWS's message
and a <HeadersNotSigned> element naming them, before anything is done.
Without this rule the holder of a presigned PUT URL could turn the PUT into
a copy of any object of the signer's tenant (x-amz-copy-source), lock the
owner out (SSE-C headers), or change keys, tags, metadata, ACL and storage
class.  Each case checks that the object is unchanged afterwards.

The one exemption is x-amz-content-sha256: its value is the payload-hash
line of the canonical request, so the signature covers it either way.
"""

import base64
import hashlib
import http.client
import os

import pytest
import requests

import helpers as H
from conftest import client_fixture, server_fixture

BUCKET = "signed-hdrs"
PRIVATE = "signed-hdrs-private"
MESSAGE = "There were headers present in the request which were not signed"
ORIGINAL = b"the owner's original content"

srv = server_fixture(scope="module", buckets=[BUCKET, PRIVATE],
                     objects={(PRIVATE, "secret"): b"private data of the tenant"})
s3 = client_fixture("srv")


def ssec_headers(key=b"K" * 32):
    return {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
        "x-amz-server-side-encryption-customer-key-MD5":
            base64.b64encode(hashlib.md5(key).digest()).decode(),
    }


# Each kind of header a presigned-URL holder could add to a PUT.
ADDED_TO_PUT = {
    "copy-source": {"x-amz-copy-source": f"/{PRIVATE}/secret"},
    "sse-c": ssec_headers(),
    "sse-kms": {"x-amz-server-side-encryption": "aws:kms",
                "x-amz-server-side-encryption-aws-kms-key-id": "some-key"},
    "sse-s3": {"x-amz-server-side-encryption": "AES256"},
    "tagging": {"x-amz-tagging": "owner=mallory"},
    "metadata": {"x-amz-meta-owner": "mallory"},
    "metadata-mixed-case": {"X-Amz-Meta-Owner": "mallory"},
    "acl": {"x-amz-acl": "private"},
    "grant": {"x-amz-grant-read": 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'},
    "storage-class": {"x-amz-storage-class": "STANDARD"},
    "website-redirect": {"x-amz-website-redirect-location": "/elsewhere"},
    "object-lock": {"x-amz-object-lock-mode": "GOVERNANCE",
                    "x-amz-object-lock-retain-until-date": "2030-01-01T00:00:00Z"},
    "checksum": {"x-amz-checksum-crc32": H.crc32_b64(b"mallory's data")},
    "metadata-directive": {"x-amz-metadata-directive": "REPLACE"},
    "security-token": {"x-amz-security-token": "FwoGZXIvYXdzEXAMPLE"},
    "date": {"x-amz-date": "20300101T000000Z"},
    "unknown": {"x-amz-something-new": "1"},
}


def assert_unsigned_refused(status, body, headers, names):
    """An AWS 'headers not signed' refusal naming exactly these headers."""
    assert status == 403, body
    err = H.parse_error(body)
    assert err["Code"] == "AccessDenied", body
    assert err["Message"] == MESSAGE, body
    assert err["RequestId"] == headers["x-amz-request-id"], body
    listed = [n.strip() for n in err["HeadersNotSigned"].split(",")]
    assert sorted(listed) == sorted(n.lower() for n in names), body
    return err


def original_state(s3, key):
    h = s3.head_object(Bucket=BUCKET, Key=key)
    tags = s3.get_object_tagging(Bucket=BUCKET, Key=key)["TagSet"]
    return (h["ETag"], h["ContentLength"], h.get("Metadata"), h.get("ServerSideEncryption"),
            h.get("SSECustomerAlgorithm"), tags)


# -- presigned PUT -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(ADDED_TO_PUT))
def test_presigned_put_with_added_header_is_refused(srv, s3, kind):
    added = ADDED_TO_PUT[kind]
    existing, fresh = f"put-{kind}/existing", f"put-{kind}/fresh"
    s3.put_object(Bucket=BUCKET, Key=existing, Body=ORIGINAL,
                  Metadata={"owner": "alice"}, Tagging="owner=alice")
    before = original_state(s3, existing)
    for key in (existing, fresh):
        url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key},
                                        ExpiresIn=300)
        r = requests.put(url, data=b"mallory's data", headers=added, timeout=30)
        assert_unsigned_refused(r.status_code, r.content, r.headers, added)
    # Nothing changed: the old object reads back as it was, with its
    # metadata, tags and encryption; no new object appeared.
    assert original_state(s3, existing) == before
    assert s3.get_object(Bucket=BUCKET, Key=existing)["Body"].read() == ORIGINAL
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key=fresh)


def test_presigned_put_copy_source_does_not_copy(srv, s3):
    """The reproduction of the review: a presigned PUT plus x-amz-copy-source
    became a CopyObject of another bucket's private object."""
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "stolen"},
                                    ExpiresIn=300)
    r = requests.put(url, headers={"x-amz-copy-source": f"/{PRIVATE}/secret"}, timeout=30)
    assert_unsigned_refused(r.status_code, r.content, r.headers, ["x-amz-copy-source"])
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="stolen")


def test_presigned_put_lists_every_unsigned_header_once(srv, s3):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "many"},
                                    ExpiresIn=300)
    path_query = url.split(f"{srv.port}", 1)[1]
    path, query = path_query.split("?", 1)
    # The same header twice, and in two spellings: named once, lowercase.
    headers = [("X-Amz-Meta-A", "1"), ("x-amz-meta-a", "2"), ("x-amz-tagging", "a=b"),
               ("Content-Type", "text/plain")]
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    try:
        conn.putrequest("PUT", f"{path}?{query}", skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("Content-Length", "1")
        conn.endheaders()
        conn.send(b"x")
        resp = conn.getresponse()
        body = resp.read()
        assert_unsigned_refused(resp.status, body, resp.headers,
                                ["x-amz-meta-a", "x-amz-tagging"])
        assert H.parse_error(body)["HeadersNotSigned"] == "x-amz-meta-a, x-amz-tagging"
    finally:
        conn.close()
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="many")


def test_presigned_put_with_signed_headers_still_works(srv, s3):
    """Headers the signer put in X-Amz-SignedHeaders are honoured."""
    url = s3.generate_presigned_url(
        "put_object", ExpiresIn=300,
        Params={"Bucket": BUCKET, "Key": "signed-meta", "Metadata": {"owner": "alice"},
                "Tagging": "team=blue"})
    assert "x-amz-meta-owner" in requests.utils.unquote(url)
    r = requests.put(url, data=b"signed", timeout=30,
                     headers={"x-amz-meta-owner": "alice", "x-amz-tagging": "team=blue"})
    assert r.status_code == 200, r.text
    h = s3.head_object(Bucket=BUCKET, Key="signed-meta")
    assert h["Metadata"] == {"owner": "alice"}
    assert s3.get_object_tagging(Bucket=BUCKET, Key="signed-meta")["TagSet"] == [
        {"Key": "team", "Value": "blue"}]
    # ... but the value is bound too: another value breaks the signature.
    r = requests.put(url, data=b"changed", timeout=30,
                     headers={"x-amz-meta-owner": "mallory", "x-amz-tagging": "team=blue"})
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    assert s3.get_object(Bucket=BUCKET, Key="signed-meta")["Body"].read() == b"signed"


def test_presigned_put_plain_still_works(srv, s3):
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "plain"},
                                    ExpiresIn=300)
    # Ordinary HTTP headers (not x-amz-*) are the uploader's business.
    r = requests.put(url, data=b"plain upload", timeout=30,
                     headers={"Content-Type": "text/plain", "Cache-Control": "no-cache"})
    assert r.status_code == 200, r.text
    assert s3.get_object(Bucket=BUCKET, Key="plain")["Body"].read() == b"plain upload"


# -- presigned GET -------------------------------------------------------------------------

@pytest.mark.parametrize("added", [
    ssec_headers(),
    {"x-amz-checksum-mode": "ENABLED"},
    {"x-amz-request-payer": "requester"},
    {"x-amz-expected-bucket-owner": "1"},
    {"x-amz-content-sha256-extra": "x"},
], ids=["sse-c", "checksum-mode", "request-payer", "expected-owner", "unknown"])
def test_presigned_get_with_added_header_is_refused(srv, s3, added):
    s3.put_object(Bucket=BUCKET, Key="get-target", Body=ORIGINAL)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "get-target"},
                                    ExpiresIn=300)
    r = requests.get(url, headers=added, timeout=30)
    assert_unsigned_refused(r.status_code, r.content, r.headers, added)
    assert ORIGINAL not in r.content
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == ORIGINAL


def test_presigned_get_response_overrides_are_query_parameters(srv, s3):
    """response-* overrides travel in the (signed) query, not as headers."""
    s3.put_object(Bucket=BUCKET, Key="override", Body=ORIGINAL)
    url = s3.generate_presigned_url(
        "get_object", ExpiresIn=300,
        Params={"Bucket": BUCKET, "Key": "override", "ResponseContentType": "text/x-override"})
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/x-override"
    tampered = url.replace("text%2Fx-override", "text%2Fhtml")
    assert tampered != url
    r = requests.get(tampered, timeout=30)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text


def test_presigned_head_with_added_header_is_refused(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="head-target", Body=ORIGINAL)
    url = s3.generate_presigned_url("head_object", Params={"Bucket": BUCKET, "Key": "head-target"},
                                    ExpiresIn=300)
    r = requests.head(url, headers=ssec_headers(), timeout=30)
    assert r.status_code == 403 and r.content == b""
    assert requests.head(url, timeout=30).status_code == 200


# -- header auth ---------------------------------------------------------------------------

# x-amz-date is the signer's own header in header auth (always signed).
@pytest.mark.parametrize("kind", sorted(k for k in ADDED_TO_PUT if k != "date"))
def test_header_auth_put_with_unsigned_header_is_refused(srv, s3, kind):
    added = ADDED_TO_PUT[kind]
    key = f"hdr-{kind}"
    s3.put_object(Bucket=BUCKET, Key=key, Body=ORIGINAL, Metadata={"owner": "alice"},
                  Tagging="owner=alice")
    before = original_state(s3, key)
    r = H.raw(srv, "PUT", H.key_path(BUCKET, key), headers=added, body=b"mallory's data",
              unsigned_headers=tuple(added))
    assert_unsigned_refused(r.status, r.body, r.headers, added)
    assert original_state(s3, key) == before
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == ORIGINAL


def test_header_auth_partly_signed(srv, s3):
    """Signing some x-amz-* headers does not excuse the others."""
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "partly"), body=b"x",
              headers={"x-amz-meta-a": "signed", "x-amz-meta-b": "unsigned",
                       "x-amz-tagging": "t=unsigned"},
              unsigned_headers=("x-amz-meta-b", "x-amz-tagging"))
    assert_unsigned_refused(r.status, r.body, r.headers, ["x-amz-meta-b", "x-amz-tagging"])
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="partly")


@pytest.mark.parametrize("method,query", [
    ("GET", ""), ("HEAD", ""), ("DELETE", ""), ("GET", "tagging"), ("GET", "acl"),
])
def test_header_auth_other_operations_refused(srv, s3, method, query):
    s3.put_object(Bucket=BUCKET, Key="ops", Body=ORIGINAL)
    r = H.raw(srv, method, H.key_path(BUCKET, "ops"), query=query, headers=ssec_headers(),
              unsigned_headers=tuple(ssec_headers()))
    if method == "HEAD":
        assert r.status == 403 and r.body == b""
    else:
        assert_unsigned_refused(r.status, r.body, r.headers, ssec_headers())
    assert s3.get_object(Bucket=BUCKET, Key="ops")["Body"].read() == ORIGINAL


def test_header_auth_bucket_and_service_operations_refused(srv, s3):
    for method, path in (("GET", "/"), ("GET", "/" + BUCKET), ("PUT", "/signed-hdrs-new"),
                         ("DELETE", "/" + PRIVATE)):
        r = H.raw(srv, method, path, headers={"x-amz-acl": "private"},
                  unsigned_headers=("x-amz-acl",))
        assert_unsigned_refused(r.status, r.body, r.headers, ["x-amz-acl"])
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "signed-hdrs-new" not in names and PRIVATE in names


def test_header_auth_copy_source_unsigned_refused(srv, s3):
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "copied"),
              headers={"x-amz-copy-source": f"/{PRIVATE}/secret"},
              unsigned_headers=("x-amz-copy-source",))
    assert_unsigned_refused(r.status, r.body, r.headers, ["x-amz-copy-source"])
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="copied")


def test_header_auth_all_signed_works(srv, s3):
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "all-signed"), body=b"fine",
              headers={"x-amz-meta-a": "1", "x-amz-tagging": "t=1",
                       "x-amz-storage-class": "STANDARD"})
    assert r.status == 200, r
    assert s3.head_object(Bucket=BUCKET, Key="all-signed")["Metadata"] == {"a": "1"}


def test_content_sha256_is_bound_without_being_listed(srv, s3):
    """x-amz-content-sha256 is the exemption: its value is the last line of
    the canonical request, so changing it breaks the signature anyway."""
    r = H.raw(srv, "GET", "/", unsigned_headers=("X-Amz-Content-SHA256",))
    assert r.status == 200, r
    signed = H.sign(srv, "GET", "/", unsigned_headers=("X-Amz-Content-SHA256",))
    headers = dict(signed.headers)
    headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    r = H.send(srv, "GET", "/", headers=headers)
    H.assert_s3_error(r, 403, "SignatureDoesNotMatch")


def test_content_sha256_on_presigned_url_is_bound(srv, s3):
    """A presigned URL signs UNSIGNED-PAYLOAD; a holder who adds another
    x-amz-content-sha256 (a digest, or a streaming mode) breaks it."""
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "pre-sha"},
                                    ExpiresIn=300)
    body = b"presigned body"
    for value in (H.sha256_hex(body), "STREAMING-UNSIGNED-PAYLOAD-TRAILER"):
        r = requests.put(url, data=body, headers={"x-amz-content-sha256": value}, timeout=30)
        assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text, r.text
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="pre-sha")
    r = requests.put(url, data=body, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
                     timeout=30)
    assert r.status_code == 200, r.text


def test_not_x_amz_prefixed_headers_may_stay_unsigned(srv, s3):
    """The rule is about the x-amz- prefix exactly: x-amzn-trace-id (which
    SDKs leave unsigned on purpose) and ordinary headers pass."""
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "trace"), body=b"traced",
              headers={"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793",
                       "Content-Type": "text/plain", "x-amzfoo": "1"},
              unsigned_headers=("X-Amzn-Trace-Id", "Content-Type", "x-amzfoo"))
    assert r.status == 200, r


# -- streaming uploads -----------------------------------------------------------------------

def test_streaming_upload_with_unsigned_decoded_length_refused(srv, s3):
    data = os.urandom(3000)
    chunks = H.split_chunks(data, 1000)
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data)),
               "Content-Length": str(H.signed_chunked_length(len(c) for c in chunks))}
    path = H.key_path(BUCKET, "chunked-unsigned")
    s = H.sign(srv, "PUT", path, headers=headers,
               payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
               unsigned_headers=("x-amz-decoded-content-length",))
    r = H.send(srv, "PUT", path, headers=s.headers, body=H.signed_chunked_body(s, chunks))
    assert_unsigned_refused(r.status, r.body, r.headers, ["x-amz-decoded-content-length"])
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="chunked-unsigned")


def test_streaming_uploads_fully_signed_still_work(srv, s3):
    data = os.urandom(5000)
    r = H.put_streaming_signed(srv, BUCKET, "chunked-ok", data, chunk_size=2048,
                               extra_headers={"x-amz-meta-x": "y"})
    assert r.status == 200, r
    r = H.put_unsigned_trailer(srv, BUCKET, "trailer-ok", data, chunk_size=2048)
    assert r.status == 200, r
    assert s3.get_object(Bucket=BUCKET, Key="chunked-ok")["Body"].read() == data
    assert s3.get_object(Bucket=BUCKET, Key="trailer-ok")["Body"].read() == data


def test_refusal_is_audited_and_logged(srv, s3):
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "audited"), body=b"x",
              headers={"x-amz-meta-z": "1"}, unsigned_headers=("x-amz-meta-z",))
    err = assert_unsigned_refused(r.status, r.body, r.headers, ["x-amz-meta-z"])
    H.assert_logged(srv, err["RequestId"])

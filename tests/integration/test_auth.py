"""Authentication: SigV4 header and presigned-query auth, payload hashes,
aws-chunked uploads (signed chunks, unsigned payload with a checksum
trailer), clock skew, credential scope, virtual-host-style addressing, and
the shape of every error response."""

import datetime
import hashlib
import hmac
import os
import time

import pytest
import requests

import helpers as H
from conftest import client_fixture, server_fixture

BUCKET = "auth"

srv = server_fixture(scope="module", buckets=[BUCKET])
s3 = client_fixture("srv")


def absent(s3, key):
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key=key)


def read(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


# -- header auth -------------------------------------------------------------

def test_valid_header_auth(srv, s3):
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "hdr"), body=b"signed body")
    assert r.status == 200, r
    assert r.header("ETag") == f'"{H.md5_hex(b"signed body")}"'
    r = H.raw(srv, "GET", H.key_path(BUCKET, "hdr"))
    assert r.status == 200 and r.body == b"signed body"
    assert read(s3, "hdr") == b"signed body"


def test_wrong_secret(srv, s3):
    bad = srv.client(srv.access_key, srv.secret_key[:-1] + ("A" if srv.secret_key[-1] != "A" else "B"))
    H.expect_error("SignatureDoesNotMatch", 403, bad.list_buckets)
    H.expect_error("SignatureDoesNotMatch", 403, bad.put_object, Bucket=BUCKET,
                   Key="wrong-secret", Body=b"x")
    absent(s3, "wrong-secret")


def test_unknown_access_key(srv, s3):
    bad = srv.client("KTUNKNOWNKEY00000000", srv.secret_key)
    H.expect_error("InvalidAccessKeyId", 403, bad.list_buckets)
    H.expect_error("InvalidAccessKeyId", 403, bad.get_object, Bucket=BUCKET, Key="hdr")


def test_anonymous_is_denied(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="anon-target", Body=b"private")
    for method, path, body in [
        ("GET", "/", b""),
        ("GET", "/" + BUCKET, b""),
        ("GET", H.key_path(BUCKET, "anon-target"), b""),
        ("PUT", H.key_path(BUCKET, "anon-new"), b"anonymous data"),
        ("PUT", H.key_path(BUCKET, "anon-target"), b"overwrite"),
        ("DELETE", H.key_path(BUCKET, "anon-target"), b""),
        ("PUT", "/anon-bucket", b""),
    ]:
        r = H.anonymous(srv, method, path, body=body)
        H.assert_s3_error(r, 403, "AccessDenied", srv)
    r = H.anonymous(srv, "HEAD", H.key_path(BUCKET, "anon-target"))
    assert r.status == 403 and r.body == b""
    absent(s3, "anon-new")
    assert read(s3, "anon-target") == b"private"
    assert "anon-bucket" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_tampered_signed_header(srv, s3):
    path = H.key_path(BUCKET, "tampered-header")
    signed = H.sign(srv, "PUT", path, headers={"x-amz-meta-owner": "alice"}, body=b"data")
    headers = dict(signed.headers)
    headers["x-amz-meta-owner"] = "mallory"
    r = H.send(srv, "PUT", path, headers=headers, body=b"data")
    H.assert_s3_error(r, 403, "SignatureDoesNotMatch", srv)
    absent(s3, "tampered-header")


def test_missing_content_sha256(srv):
    r = H.raw(srv, "GET", "/", payload_hash=False)
    H.assert_s3_error(r, 400, "InvalidRequest")


# -- payload hash --------------------------------------------------------------

def test_payload_differs_from_signed_hash(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="sha-existing", Body=b"keep me")
    for key in ("sha-new", "sha-existing"):
        path = H.key_path(BUCKET, key)
        good = b"the body that was signed"
        evil = b"the body that was SENT!!"
        assert len(good) == len(evil)
        signed = H.sign(srv, "PUT", path, body=good)
        r = H.send(srv, "PUT", path, headers=signed.headers, body=evil)
        H.assert_s3_error(r, 400, "XAmzContentSHA256Mismatch", srv)
    absent(s3, "sha-new")
    assert read(s3, "sha-existing") == b"keep me"


def test_payload_hash_not_hex(srv, s3):
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "sha-garbage"), body=b"x",
              payload_hash="not-a-hash")
    assert r.status == 400, r
    absent(s3, "sha-garbage")


def test_unsigned_payload_accepted(srv, s3):
    data = os.urandom(70000)
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "unsigned"), body=data,
              payload_hash="UNSIGNED-PAYLOAD")
    assert r.status == 200, r
    assert read(s3, "unsigned") == data


# -- time and scope ------------------------------------------------------------

@pytest.mark.parametrize("minutes", [-20, 20, -60 * 24])
def test_request_time_too_skewed(srv, s3, minutes):
    when = H.utcnow() + datetime.timedelta(minutes=minutes)
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "skewed"), body=b"late", when=when)
    H.assert_s3_error(r, 403, "RequestTimeTooSkewed", srv)
    absent(s3, "skewed")


def test_small_skew_is_accepted(srv):
    when = H.utcnow() - datetime.timedelta(minutes=10)
    r = H.raw(srv, "GET", "/", when=when)
    assert r.status == 200, r


def test_date_header_instead_of_x_amz_date(srv):
    """SigV4 accepts the Date header when X-Amz-Date is absent."""
    r = H.raw(srv, "GET", "/", headers={"Date": "placeholder"})
    assert r.status == 200, r
    assert r.header("x-amz-request-id")
    old = H.utcnow() - datetime.timedelta(minutes=20)
    r = H.raw(srv, "GET", "/", when=old, headers={"Date": "placeholder"})
    H.assert_s3_error(r, 403, "RequestTimeTooSkewed")


def test_wrong_region_in_scope(srv, s3):
    r = H.raw(srv, "GET", "/", region="eu-west-1")
    err = H.assert_s3_error(r, 400, "AuthorizationHeaderMalformed", srv)
    assert "us-east-1" in err["Message"]
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "wrong-region"), body=b"x", region="us-west-2")
    H.assert_s3_error(r, 400, "AuthorizationHeaderMalformed")
    absent(s3, "wrong-region")


# -- presigned URLs ------------------------------------------------------------

def test_presigned_get_and_put(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="pre/get me", Body=b"presigned content")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "pre/get me"},
                                    ExpiresIn=300)
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == b"presigned content"
    url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "pre/put+me"},
                                    ExpiresIn=300)
    r = requests.put(url, data=b"uploaded via presigned PUT", timeout=30)
    assert r.status_code == 200, r.text
    assert read(s3, "pre/put+me") == b"uploaded via presigned PUT"
    # The signature covers the key: another key with the same query fails.
    bad = url.replace("put%2Bme", "put%2Bmf")
    assert bad != url
    r = requests.put(bad, data=b"x", timeout=30)
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    absent(s3, "pre/put+mf")


def test_presigned_expired(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="pre/expiring", Body=b"short-lived")
    get_url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "pre/expiring"}, ExpiresIn=1)
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET, "Key": "pre/expired-put"}, ExpiresIn=1)
    time.sleep(2.2)
    for r in (requests.get(get_url, timeout=30),
              requests.put(put_url, data=b"too late", timeout=30)):
        assert r.status_code == 403, r.text
        err = H.parse_error(r.content)
        assert err["Code"] == "AccessDenied"
        assert err["RequestId"] == r.headers["x-amz-request-id"]
    absent(s3, "pre/expired-put")


# -- aws-chunked ---------------------------------------------------------------

@pytest.mark.parametrize("size,chunk", [
    (0, 65536),
    (1, 65536),
    (65536, 65536),
    (300 * 1024 + 5, 65536),
    (H.SEG * 2 + 17, 8192),
    (1 << 20, 1 << 20),
])
def test_streaming_signed_upload(srv, s3, size, chunk):
    data = os.urandom(size)
    key = f"chunked/{size}-{chunk}"
    r = H.put_streaming_signed(srv, BUCKET, key, data, chunk_size=chunk,
                               extra_headers={"Content-Type": "text/x-chunked"})
    assert r.status == 200, r
    assert r.header("ETag") == f'"{H.md5_hex(data)}"'
    g = s3.get_object(Bucket=BUCKET, Key=key)
    assert g["Body"].read() == data
    assert g["ContentLength"] == size
    # aws-chunked describes the transfer, not the object.
    assert g.get("ContentEncoding") in (None, "")
    assert g["ContentType"] == "text/x-chunked"


@pytest.mark.parametrize("corrupt", [0, 2, 4])       # first, middle, final chunk
def test_streaming_bad_chunk_signature(srv, s3, corrupt):
    s3.put_object(Bucket=BUCKET, Key="chunked/existing", Body=b"previous")
    data = os.urandom(4 * 1000)
    for key in ("chunked/bad-sig", "chunked/existing"):
        r = H.put_streaming_signed(srv, BUCKET, key, data, chunk_size=1000, corrupt=corrupt)
        H.assert_s3_error(r, 403, "SignatureDoesNotMatch", srv)
    absent(s3, "chunked/bad-sig")
    assert read(s3, "chunked/existing") == b"previous"


def test_streaming_with_content_md5(srv, s3):
    data = os.urandom(10000)
    r = H.put_streaming_signed(srv, BUCKET, "chunked/md5-good", data, chunk_size=4096,
                               extra_headers={"Content-MD5": H.md5_b64(data)})
    assert r.status == 200, r
    assert read(s3, "chunked/md5-good") == data
    r = H.put_streaming_signed(srv, BUCKET, "chunked/md5-bad", data, chunk_size=4096,
                               extra_headers={"Content-MD5": H.md5_b64(data[1:])})
    H.assert_s3_error(r, 400, "BadDigest")
    absent(s3, "chunked/md5-bad")


def test_streaming_tampered_chunk_data(srv, s3):
    data = b"A" * 3000

    def tamper(body):
        i = body.index(b"A" * 100) + 50
        return body[:i] + b"B" + body[i + 1:]

    r = H.put_streaming_signed(srv, BUCKET, "chunked/tampered", data, chunk_size=1000,
                               tamper=tamper)
    H.assert_s3_error(r, 403, "SignatureDoesNotMatch")
    absent(s3, "chunked/tampered")


def test_streaming_decoded_length_mismatch(srv, s3):
    data = os.urandom(2000)
    r = H.put_streaming_signed(srv, BUCKET, "chunked/short", data, chunk_size=1000,
                               extra_headers={"x-amz-decoded-content-length": "2001"})
    assert r.status == 400, r
    absent(s3, "chunked/short")


@pytest.mark.parametrize("size", [0, 10, 200 * 1024 + 3])
def test_unsigned_payload_with_crc32_trailer(srv, s3, size):
    data = os.urandom(size)
    key = f"trailer/{size}"
    r = H.put_unsigned_trailer(srv, BUCKET, key, data, chunk_size=64 * 1024)
    assert r.status == 200, r
    assert read(s3, key) == data


def test_unsigned_trailer_wrong_checksum_rejected(srv, s3):
    data = b"trailer checked data" * 100
    r = H.put_unsigned_trailer(srv, BUCKET, "trailer/bad", data,
                               checksum=H.crc32_b64(data + b"x"))
    assert 400 <= r.status < 500, r
    assert H.parse_error(r.body)["Code"]
    absent(s3, "trailer/bad")


def test_unsigned_trailer_wrong_checksum_is_bad_digest(srv, s3):
    data = b"trailer checked data" * 100
    r = H.put_unsigned_trailer(srv, BUCKET, "trailer/bad-digest", data,
                               checksum=H.crc32_b64(data + b"x"))
    H.assert_s3_error(r, 400, "BadDigest", srv)


def _signed_trailer_body(signed, chunks, checksum):
    prev = signed.signature
    out = []
    for data in list(chunks) + [b""]:
        sig = H.chunk_signature(signed, prev, data)
        prev = sig
        out.append(b"%x;chunk-signature=%s\r\n" % (len(data), sig.encode()) + data)
        if data:
            out.append(b"\r\n")
    trailer = f"x-amz-checksum-crc32:{checksum}\n"
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", signed.timestamp, signed.scope, prev,
                     H.sha256_hex(trailer.encode())])
    tsig = hmac.new(signed.key, sts.encode(), hashlib.sha256).hexdigest()
    out.append(f"x-amz-checksum-crc32:{checksum}\r\n"
               f"x-amz-trailer-signature:{tsig}\r\n\r\n".encode())
    return b"".join(out)


def _put_signed_trailer(srv, key, data, checksum):
    chunks = H.split_chunks(data, 2048)
    path = H.key_path(BUCKET, key)
    # Content-Length is signed: measure the body built with a probe
    # signature of the same length first.
    probe = H.sign(srv, "PUT", path, payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
    length = len(_signed_trailer_body(probe, chunks, checksum))
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": "x-amz-checksum-crc32",
               "Content-Length": str(length)}
    signed = H.sign(srv, "PUT", path, headers=headers,
                    payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")
    body = _signed_trailer_body(signed, chunks, checksum)
    return H.send(srv, "PUT", path, headers=signed.headers, body=body)


def test_streaming_signed_with_trailer(srv, s3):
    data = os.urandom(5000)
    r = _put_signed_trailer(srv, "trailer/signed", data, H.crc32_b64(data))
    assert r.status == 200, r
    assert read(s3, "trailer/signed") == data
    r = _put_signed_trailer(srv, "trailer/signed-bad", data, H.crc32_b64(data[:-1]))
    assert 400 <= r.status < 500, r
    absent(s3, "trailer/signed-bad")


def test_streaming_signed_trailer_wrong_checksum_is_bad_digest(srv, s3):
    data = os.urandom(5000)
    r = _put_signed_trailer(srv, "trailer/signed-bad2", data, H.crc32_b64(data[:-1]))
    H.assert_s3_error(r, 400, "BadDigest")


# -- virtual-host-style addressing --------------------------------------------

def test_virtual_host_style(srv, s3):
    host = f"{BUCKET}.localhost:{srv.port}"
    r = H.raw(srv, "PUT", "/vhost/key.txt", body=b"via virtual host", host=host)
    assert r.status == 200, r
    assert read(s3, "vhost/key.txt") == b"via virtual host"
    r = H.raw(srv, "GET", "/vhost/key.txt", host=host)
    assert r.status == 200 and r.body == b"via virtual host"
    r = H.raw(srv, "GET", "/", query=[("list-type", "2"), ("prefix", "vhost/")], host=host)
    assert r.status == 200, r
    assert b"<Key>vhost/key.txt</Key>" in r.body
    assert f"<Name>{BUCKET}</Name>".encode() in r.body
    r = H.raw(srv, "GET", "/missing", host=host)
    H.assert_s3_error(r, 404, "NoSuchKey")
    r = H.raw(srv, "GET", "/", host=f"no-such-vhost-bucket.localhost:{srv.port}")
    H.assert_s3_error(r, 404, "NoSuchBucket")
    # A dotted bucket name: everything before the configured domain.
    s3.create_bucket(Bucket="dotted.vhost.bucket")
    r = H.raw(srv, "PUT", "/k", body=b"dotted", host=f"dotted.vhost.bucket.localhost:{srv.port}")
    assert r.status == 200, r
    assert s3.get_object(Bucket="dotted.vhost.bucket", Key="k")["Body"].read() == b"dotted"


# -- error documents -----------------------------------------------------------

def test_error_documents_carry_request_id(srv, s3):
    bad_secret = srv.secret_key[::-1]
    cases = [
        (H.raw(srv, "GET", H.key_path(BUCKET, "no/such/key")), 404, "NoSuchKey"),
        (H.raw(srv, "GET", "/no-such-bucket-x"), 404, "NoSuchBucket"),
        (H.anonymous(srv, "GET", "/"), 403, "AccessDenied"),
        (H.raw(srv, "GET", "/", secret_key=bad_secret), 403, "SignatureDoesNotMatch"),
        (H.raw(srv, "GET", "/", access_key="KTNOSUCHKEY000000000"), 403, "InvalidAccessKeyId"),
        (H.raw(srv, "POST", H.key_path(BUCKET, "no-such-op")), 405, "MethodNotAllowed"),
        (H.raw(srv, "PUT", "/" + BUCKET), 409, "BucketAlreadyOwnedByYou"),
    ]
    ids = set()
    for resp, status, code in cases:
        err = H.assert_s3_error(resp, status, code, srv)
        assert resp.header("Content-Type") == "application/xml"
        assert resp.body.startswith(b"<?xml")
        ids.add(err["RequestId"])
    assert len(ids) == len(cases)          # every request has its own id
    # Successful responses carry an id too, also logged.
    ok = H.raw(srv, "GET", "/")
    assert ok.status == 200
    H.assert_logged(srv, ok.header("x-amz-request-id"))

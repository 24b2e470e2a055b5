"""Request limits and HTTP framing: metadata size, max object size from a
config file, oversized headers and URLs, missing Content-Length,
Expect: 100-continue, HTTP chunked transfer-encoding and keep-alive; the cap
of a listing document."""

import http.client
import os
import socket

import pytest

import helpers as H
from conftest import client_fixture, server_fixture

BUCKET = "limits"
MAX_OBJECT = 1024 * 1024          # [limits] max_object_size = 1M
                                  # [limits] max_list_response = 64K


srv = server_fixture("[limits]\nmax_object_size = 1M\nmax_list_response = 64K\n",
                     scope="module", buckets=[BUCKET])
s3 = client_fixture("srv")


def absent(s3, key):
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key=key)


def read(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def still_serving(s3):
    assert s3.list_objects_v2(Bucket=BUCKET, MaxKeys=1)["ResponseMetadata"]["HTTPStatusCode"] == 200


# -- metadata ------------------------------------------------------------------

def test_metadata_within_limit(s3):
    meta = {"a": "x" * 1000, "b": "y" * 990}
    s3.put_object(Bucket=BUCKET, Key="meta-ok", Body=b"x", Metadata=meta)
    assert s3.head_object(Bucket=BUCKET, Key="meta-ok")["Metadata"] == meta


@pytest.mark.parametrize("meta", [
    {"big": "v" * 2100},
    {"a": "x" * 1100, "b": "y" * 1100},
    {f"k{i:03d}": "v" * 20 for i in range(120)},
])
def test_metadata_too_large(srv, s3, meta):
    H.expect_error("MetadataTooLarge", 400, s3.put_object, Bucket=BUCKET, Key="meta-big",
                   Body=b"x", Metadata=meta)
    absent(s3, "meta-big")


# -- object size -----------------------------------------------------------------

def test_object_at_max_size(s3):
    data = os.urandom(MAX_OBJECT)
    s3.put_object(Bucket=BUCKET, Key="max-size", Body=data)
    assert read(s3, "max-size") == data


def test_object_over_max_size(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="too-big-existing", Body=b"small")
    data = os.urandom(MAX_OBJECT + 1)
    for key in ("too-big", "too-big-existing"):
        r = H.raw(srv, "PUT", H.key_path(BUCKET, key), body=data,
                  payload_hash="UNSIGNED-PAYLOAD")
        H.assert_s3_error(r, 400, "EntityTooLarge", srv)
    absent(s3, "too-big")
    assert read(s3, "too-big-existing") == b"small"
    H.expect_error("EntityTooLarge", 400, s3.put_object, Bucket=BUCKET, Key="too-big",
                   Body=data)
    still_serving(s3)


def test_chunked_transfer_over_max_size(srv, s3):
    """No declared length: the limit is found mid-body."""
    pieces = [os.urandom(64 * 1024) for _ in range(MAX_OBJECT // (64 * 1024) + 2)]
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "too-big-chunked"), body=pieces, chunked=True,
              payload_hash="UNSIGNED-PAYLOAD")
    H.assert_s3_error(r, 400, "EntityTooLarge", srv)
    absent(s3, "too-big-chunked")
    still_serving(s3)


def test_aws_chunked_over_max_size(srv, s3):
    data = os.urandom(MAX_OBJECT + 10)
    r = H.put_streaming_signed(srv, BUCKET, "too-big-aws-chunked", data, chunk_size=256 * 1024)
    H.assert_s3_error(r, 400, "EntityTooLarge")
    absent(s3, "too-big-aws-chunked")


# -- headers and URLs ------------------------------------------------------------

def _fresh_request_works(srv):
    r = H.raw(srv, "GET", "/" + BUCKET, query=[("list-type", "2"), ("max-keys", "1")])
    assert r.status == 200, r


def test_oversized_headers(srv, s3):
    """Over [limits] max_header_bytes (16K): an S3 error."""
    headers = {f"x-filler-{i}": "f" * 1000 for i in range(20)}
    r = H.raw(srv, "GET", "/" + BUCKET, headers=headers)
    H.assert_s3_error(r, 400, "RequestHeaderSectionTooLarge", srv)
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "big-headers"), headers=headers, body=b"x")
    H.assert_s3_error(r, 400, "RequestHeaderSectionTooLarge")
    absent(s3, "big-headers")
    _fresh_request_works(srv)


def test_too_many_headers(srv, s3):
    """More header fields than kura collects (256), though few bytes: an
    oversized header section, never a silently shortened one."""
    headers = {f"x-h-{i}": "v" for i in range(300)}
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "many-headers"), headers=headers, body=b"x")
    H.assert_s3_error(r, 400, "RequestHeaderSectionTooLarge")
    absent(s3, "many-headers")
    _fresh_request_works(srv)


def test_huge_headers_beyond_connection_memory(srv, s3):
    """Far beyond the limit (more than the connection buffer): libmicrohttpd
    answers 431 (not an S3 document) and closes, or the connection is reset
    while the client still sends; kura keeps serving."""
    sock = socket.create_connection((srv.host, srv.port), timeout=30)
    try:
        req = (f"GET /{BUCKET} HTTP/1.1\r\nHost: {srv.host}:{srv.port}\r\n").encode()
        req += b"".join(b"x-filler-%d: %s\r\n" % (i, b"f" * 8000) for i in range(100))
        req += b"\r\n"
        try:
            sock.sendall(req)
            reply = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            reply = b""
        if reply:
            assert reply.startswith(b"HTTP/1.1 431 "), reply[:200]
    finally:
        sock.close()
    _fresh_request_works(srv)
    still_serving(s3)


def test_url_too_long(srv):
    r = H.raw(srv, "GET", "/" + BUCKET, query=[("list-type", "2"), ("prefix", "p" * 9000)])
    err = H.assert_s3_error(r, 400, "InvalidURI", srv)
    assert "long" in err["Message"]
    _fresh_request_works(srv)


# -- framing ---------------------------------------------------------------------

def test_put_without_content_length(srv, s3):
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "no-length"), body=b"",
              payload_hash="UNSIGNED-PAYLOAD", content_length=False)
    H.assert_s3_error(r, 411, "MissingContentLength", srv)
    absent(s3, "no-length")


def test_http_chunked_transfer_encoding(srv, s3):
    pieces = [os.urandom(n) for n in (1, 1000, 65536, 300000, 7)]
    data = b"".join(pieces)
    for key, payload_hash in [("te-signed", None), ("te-unsigned", "UNSIGNED-PAYLOAD")]:
        r = H.raw(srv, "PUT", H.key_path(BUCKET, key), body=pieces, chunked=True,
                  payload_hash=payload_hash, headers={"Content-MD5": H.md5_b64(data)})
        assert r.status == 200, r
        assert r.header("ETag") == f'"{H.md5_hex(data)}"'
        assert read(s3, key) == data
    # A chunked body that does not match the signed hash stores nothing.
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "te-bad"), body=pieces, chunked=True,
              payload_hash=H.sha256_hex(data[:-1]))
    H.assert_s3_error(r, 400, "XAmzContentSHA256Mismatch")
    absent(s3, "te-bad")


def _read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        piece = sock.recv(4096)
        if not piece:
            break
        buf += piece
    return buf


def test_expect_100_continue(srv, s3):
    data = os.urandom(200000)
    path = H.key_path(BUCKET, "expect")
    signed = H.sign(srv, "PUT", path, body=data,
                    headers={"Content-Length": str(len(data)), "Expect": "100-continue"},
                    unsigned_headers=("Expect",))
    sock = socket.create_connection((srv.host, srv.port), timeout=30)
    try:
        head = f"PUT {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in signed.headers.items()) + "\r\n"
        sock.sendall(head.encode())
        interim = _read_head(sock)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        body = resp.read()
        assert resp.status == 200, body
        assert resp.getheader("ETag") == f'"{H.md5_hex(data)}"'
    finally:
        sock.close()
    assert read(s3, "expect") == data


def test_expect_100_continue_refused_early(srv, s3):
    """An error known from the headers is the final answer: no 100."""
    path = H.key_path("no-such-bucket-expect", "k")
    signed = H.sign(srv, "PUT", path, body=b"x" * 1000,
                    headers={"Content-Length": "1000", "Expect": "100-continue"},
                    unsigned_headers=("Expect",))
    sock = socket.create_connection((srv.host, srv.port), timeout=30)
    try:
        head = f"PUT {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in signed.headers.items()) + "\r\n"
        sock.sendall(head.encode())
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        body = resp.read()
        assert resp.status == 404
        assert H.parse_error(body)["Code"] == "NoSuchBucket"
    finally:
        sock.close()
    still_serving(s3)


def test_keep_alive(srv, s3):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    try:
        conn.connect()
        local = conn.sock.getsockname()
        sock = conn.sock
        steps = [
            ("PUT", H.key_path(BUCKET, "ka/1"), b"one", 200),
            ("GET", H.key_path(BUCKET, "ka/1"), b"", 200),
            ("HEAD", H.key_path(BUCKET, "ka/1"), b"", 200),
            ("GET", H.key_path(BUCKET, "ka/missing"), b"", 404),
            ("HEAD", H.key_path(BUCKET, "ka/missing"), b"", 404),
            ("PUT", H.key_path(BUCKET, "ka/2"), os.urandom(300000), 200),
            ("GET", "/" + BUCKET, b"", 200),
            ("DELETE", H.key_path(BUCKET, "ka/1"), b"", 204),
            ("GET", "/", b"", 200),
        ]
        for method, path, body, status in steps:
            r = H.raw(srv, method, path, body=body, conn=conn)
            assert r.status == status, (method, path, r)
            assert (r.header("Connection") or "").lower() != "close", (method, path, r)
            assert conn.sock is sock and conn.sock.getsockname() == local, \
                f"reconnected before {method} {path}"
        assert read(s3, "ka/2") and H.raw(srv, "GET", H.key_path(BUCKET, "ka/1")).status == 404
    finally:
        conn.close()


# -- the cap of a listing document -------------------------------------------------

def test_listing_over_its_cap_is_an_error(s3):
    """A listing page whose XML would pass [limits] max_list_response is
    answered InternalError, never a 200 whose document lacks entries; smaller
    pages of the same listing still answer."""
    keys = [f"cap/{i:03d}-" + "k" * 1000 for i in range(80)]   # 80 KiB of keys
    H.put_many(s3, BUCKET, keys)
    uploads = []
    try:
        for list_op in (s3.list_objects, s3.list_objects_v2):
            H.expect_error("InternalError", 500, list_op, Bucket=BUCKET, Prefix="cap/")
        r = s3.list_objects_v2(Bucket=BUCKET, Prefix="cap/", MaxKeys=20)
        assert [o["Key"] for o in r["Contents"]] == keys[:20] and r["IsTruncated"]
        r = s3.list_objects(Bucket=BUCKET, Prefix="c", Delimiter="/")
        assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["cap/"]

        uploads = [(k, s3.create_multipart_upload(Bucket=BUCKET, Key=k)["UploadId"])
                   for k in keys]
        H.expect_error("InternalError", 500, s3.list_multipart_uploads, Bucket=BUCKET,
                       Prefix="cap/")
        r = s3.list_multipart_uploads(Bucket=BUCKET, Prefix="cap/", MaxUploads=20)
        assert [u["Key"] for u in r["Uploads"]] == keys[:20] and r["IsTruncated"]
    finally:
        for k, upload_id in uploads:
            s3.abort_multipart_upload(Bucket=BUCKET, Key=k, UploadId=upload_id)
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    still_serving(s3)

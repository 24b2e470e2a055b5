"""Hostile clients: malformed, lying, oversized and slow requests against a
real kura server.  Each case asserts the S3 error the AWS S3 API Reference
gives for it (status and <Code>), or that the server closed the connection,
and then that the server still serves a normal GET to another client.

The server runs with [server] connection_timeout = 2 so that slow and stuck
clients are cut off quickly; the whole file is meant to run in well under a
minute (also under ASan+UBSan).  See test_limits.py for the configured size
limits and test_auth.py for well-formed aws-chunked uploads."""

import hashlib
import os
import socket
import threading
import time

import pytest

import helpers as H
import hostile_helpers as X
from conftest import client_fixture, server_fixture

BUCKET = "hostile"
CANARY = "canary"
CANARY_DATA = b"still alive " * 100
TIMEOUT = 2                     # [server] connection_timeout
CUT_OFF = TIMEOUT + 4           # a stuck connection must be closed by then


srv = server_fixture(f"[server]\nconnection_timeout = {TIMEOUT}\n", scope="module",
                     buckets=[BUCKET], objects={(BUCKET, CANARY): CANARY_DATA})
s3 = client_fixture("srv")


def still_serving(srv):
    """Another client gets a normal answer promptly."""
    status, body, took = X.fetch(srv, BUCKET, CANARY)
    assert (status, body) == (200, CANARY_DATA)
    assert took < 3.0, f"a normal GET took {took:.1f} s"
    assert srv.running, "server died"


def absent(s3, key):
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key=key)


def assert_error(reply, status, code):
    rs = reply.responses()
    assert rs, reply
    assert rs[0][0] == status, reply
    assert H.parse_error(rs[0][2]).get("Code") == code, reply


def assert_closed_or_status(reply, statuses):
    """Either no response and a closed connection, or one of statuses."""
    if reply.status() is None:
        assert reply.closed, reply
    else:
        assert reply.status() in statuses, reply


def put_head(srv, key, length, body_for_hash=None, extra=None):
    """Signed PUT request head declaring this Content-Length; the payload
    hash is UNSIGNED-PAYLOAD unless body_for_hash is given."""
    headers = {"Content-Length": str(length)}
    headers.update(extra or {})
    ph = "UNSIGNED-PAYLOAD" if body_for_hash is None else H.sha256_hex(body_for_hash)
    s = H.sign(srv, "PUT", H.key_path(BUCKET, key), headers=headers, payload_hash=ph)
    return X.request_bytes("PUT", H.key_path(BUCKET, key), s.headers)


# -- truncated bodies and lying Content-Length -----------------------------------

def test_truncated_body_then_close(srv, s3):
    head = put_head(srv, "trunc-close", 100000)
    sock = X.connect(srv)
    sock.sendall(head + os.urandom(1000))
    sock.close()
    time.sleep(0.3)
    absent(s3, "trunc-close")
    still_serving(srv)


def test_truncated_body_half_close(srv, s3):
    """The client says it has sent everything (FIN) but 99 KB are missing:
    the connection is closed (S3 would say IncompleteBody if it can)."""
    reply = X.exchange(srv, put_head(srv, "trunc-fin", 100000) + os.urandom(1000),
                       shut_write=True, wait=CUT_OFF)
    if reply.status() is not None:
        assert_error(reply, 400, "IncompleteBody")
    assert reply.closed, reply
    absent(s3, "trunc-fin")
    still_serving(srv)


def test_truncated_body_held_open_times_out(srv, s3):
    """Content-Length larger than what is sent, connection kept open: the
    server's timeout frees it (closed, or S3's 400 RequestTimeout)."""
    sock = X.connect(srv)
    try:
        sock.sendall(put_head(srv, "trunc-open", 100000) + os.urandom(1000))
        reply = X.read_until_closed(sock, time.monotonic() + CUT_OFF)
    finally:
        sock.close()
    assert reply.closed, f"connection still open after {CUT_OFF} s: {reply}"
    if reply.status() is not None:
        assert_error(reply, 400, "RequestTimeout")
    absent(s3, "trunc-open")
    still_serving(srv)


def test_content_length_smaller_than_body_signed(srv, s3):
    """The signed hash covers the whole body but Content-Length only a
    prefix: the PUT fails on the hash; the rest of the bytes are then a
    (garbage) next request, never a second PUT."""
    body = os.urandom(5000)
    s = H.sign(srv, "PUT", H.key_path(BUCKET, "lie-small"), body=body,
               headers={"Content-Length": "100"})
    payload = X.request_bytes("PUT", H.key_path(BUCKET, "lie-small"), s.headers, body)
    reply = X.exchange(srv, payload, wait=CUT_OFF)
    assert_error(reply, 400, "XAmzContentSHA256Mismatch")
    for status, _, _ in reply.responses()[1:]:
        assert status == 400, reply
    absent(s3, "lie-small")
    still_serving(srv)


def test_content_length_smaller_smuggles_no_request(srv, s3):
    """What follows a short Content-Length is parsed as the next request: a
    smuggled, unsigned DELETE of the canary is refused (AccessDenied), and
    the PUT stores exactly Content-Length bytes."""
    s3.put_object(Bucket=BUCKET, Key="victim", Body=b"precious")
    prefix = b"0123456789"
    smuggled = (f"DELETE {H.key_path(BUCKET, 'victim')} HTTP/1.1\r\n"
                f"Host: {srv.host}:{srv.port}\r\nContent-Length: 0\r\n\r\n").encode()
    payload = put_head(srv, "lie-smuggle", len(prefix)) + prefix + smuggled
    reply = X.exchange(srv, payload, wait=CUT_OFF, until_responses=2)
    rs = reply.responses()
    assert rs and rs[0][0] == 200, reply
    if len(rs) > 1:
        assert rs[1][0] == 403, reply
        assert H.parse_error(rs[1][2])["Code"] == "AccessDenied", reply
    assert s3.get_object(Bucket=BUCKET, Key="victim")["Body"].read() == b"precious"
    assert s3.get_object(Bucket=BUCKET, Key="lie-smuggle")["Body"].read() == prefix
    still_serving(srv)


def test_content_length_larger_with_md5(srv, s3):
    """Content-Length 2000 but 1000 bytes and FIN: nothing stored."""
    body = os.urandom(1000)
    payload = put_head(srv, "lie-large", 2000,
                       extra={"Content-MD5": H.md5_b64(body)}) + body
    reply = X.exchange(srv, payload, shut_write=True, wait=CUT_OFF)
    assert_closed_or_status(reply, {400})
    absent(s3, "lie-large")
    still_serving(srv)


@pytest.mark.parametrize("value", ["-1", "1e3", "0x10", "abc", "10 10",
                                   "99999999999999999999999"])
def test_content_length_not_a_number(srv, s3, value):
    head = put_head(srv, "cl-bad", 0).replace(b"Content-Length: 0", f"Content-Length: {value}".encode())
    reply = X.exchange(srv, head + b"0123456789", shut_write=True, wait=CUT_OFF)
    assert_closed_or_status(reply, {400, 413})
    absent(s3, "cl-bad")
    still_serving(srv)


def test_conflicting_content_lengths(srv, s3):
    """Two different Content-Length fields are a framing error (RFC 9112
    6.3): refused, never one of them picked."""
    head = put_head(srv, "cl-two", 5).replace(b"Content-Length: 5\r\n",
                                              b"Content-Length: 5\r\nContent-Length: 50\r\n")
    reply = X.exchange(srv, head + b"x" * 50, shut_write=True, wait=CUT_OFF)
    assert_closed_or_status(reply, {400, 403})
    if reply.status() == 403:       # the signed Content-Length no longer matches
        assert reply.error_code() == "SignatureDoesNotMatch", reply
    assert reply.closed, reply
    absent(s3, "cl-two")
    still_serving(srv)


def test_content_length_and_chunked(srv, s3):
    """Transfer-Encoding: chunked with a Content-Length: the chunked framing
    wins (RFC 9112 6.3) or the request is refused; either way the body is
    not read as Content-Length bytes followed by a request."""
    body = b"5\r\nhello\r\n0\r\n\r\n"
    head = put_head(srv, "cl-te", 5, extra={"Transfer-Encoding": "chunked"})
    reply = X.exchange(srv, head + body, wait=CUT_OFF, until_responses=1)
    assert_closed_or_status(reply, {200, 400})
    if reply.status() == 200:
        assert s3.get_object(Bucket=BUCKET, Key="cl-te")["Body"].read() == b"hello"
    assert len(reply.responses()) <= 1, reply
    still_serving(srv)


# -- header and request-line sizes -------------------------------------------------

def test_one_huge_header(srv):
    payload = X.signed_bytes(srv, "GET", H.key_path(BUCKET, CANARY),
                             headers={"x-big": "b" * 20000})
    reply = X.exchange(srv, payload, wait=CUT_OFF, until_responses=1)
    if reply.status() == 431:
        pass        # libmicrohttpd's own answer when it cannot buffer them
    else:
        assert_error(reply, 400, "RequestHeaderSectionTooLarge")
    still_serving(srv)


def test_header_far_beyond_connection_memory(srv):
    """A 2 MB header line: 431 or a closed connection, quickly."""
    payload = (f"GET /{BUCKET}/{CANARY} HTTP/1.1\r\nHost: x\r\nx-big: ").encode() + \
        b"b" * (2 << 20) + b"\r\n\r\n"
    reply = X.exchange(srv, payload, wait=CUT_OFF)
    assert_closed_or_status(reply, {431, 400})
    assert reply.elapsed < CUT_OFF, reply
    still_serving(srv)


def test_many_small_headers(srv):
    headers = {f"x-h{i}": "v" for i in range(3000)}
    payload = X.signed_bytes(srv, "GET", H.key_path(BUCKET, CANARY), headers=headers)
    reply = X.exchange(srv, payload, wait=CUT_OFF, until_responses=1)
    if reply.status() != 431:
        assert_error(reply, 400, "RequestHeaderSectionTooLarge")
    still_serving(srv)


def test_huge_request_line(srv):
    """A 1 MB request target: 414/431/400 or closed, never a hang."""
    payload = (f"GET /{BUCKET}/" + "a" * (1 << 20) +
               f" HTTP/1.1\r\nHost: {srv.host}\r\n\r\n").encode()
    reply = X.exchange(srv, payload, wait=CUT_OFF)
    assert_closed_or_status(reply, {400, 414, 431})
    if reply.status() == 400:
        assert reply.error_code() == "InvalidURI", reply
    still_serving(srv)


def test_long_url_within_connection_memory(srv):
    """Over [limits] max_url_bytes (8K) but bufferable: S3's InvalidURI."""
    key = "k" * 9000
    payload = X.signed_bytes(srv, "GET", H.key_path(BUCKET, key))
    reply = X.exchange(srv, payload, wait=CUT_OFF, until_responses=1)
    assert_error(reply, 400, "InvalidURI")
    still_serving(srv)


# -- slowloris -----------------------------------------------------------------------

def test_slowloris(srv):
    """Many connections trickling one header byte a second: others are
    served meanwhile, and the server cuts the slow ones off."""
    n = 24
    socks = []
    for _ in range(n):
        s = X.connect(srv)
        s.sendall(f"GET /{BUCKET}/{CANARY} HTTP/1.1\r\nHost: {srv.host}\r\nx-slow: ".encode())
        socks.append(s)
    closed_at = [None] * n
    stop = threading.Event()
    t0 = time.monotonic()

    def trickle():
        while not stop.is_set() and any(c is None for c in closed_at):
            for i, s in enumerate(socks):
                if closed_at[i] is not None:
                    continue
                try:
                    s.sendall(b"a")
                    s.settimeout(0.001)
                    try:
                        if s.recv(4096) == b"":
                            closed_at[i] = time.monotonic() - t0
                    except socket.timeout:
                        pass
                except OSError:
                    closed_at[i] = time.monotonic() - t0
            stop.wait(1.0)

    th = threading.Thread(target=trickle, daemon=True)
    th.start()
    try:
        worst = 0.0
        deadline = t0 + 10
        while time.monotonic() < deadline and any(c is None for c in closed_at):
            status, body, took = X.fetch(srv, BUCKET, CANARY)
            assert (status, body) == (200, CANARY_DATA)
            worst = max(worst, took)
            time.sleep(0.2)
        assert worst < 2.0, f"a normal GET took {worst:.1f} s during slowloris"
        open_ones = [i for i, c in enumerate(closed_at) if c is None]
        assert not open_ones, (f"{len(open_ones)} of {n} slow connections still "
                               f"open after 10 s (timeout {TIMEOUT} s)")
    finally:
        stop.set()
        th.join()
        for s in socks:
            s.close()
    still_serving(srv)


def test_slow_body_is_cut_off(srv, s3):
    """A body trickled a byte at a time is cut off like a slow head: below
    1 KiB/s over a connection_timeout window (src/http/server.c,
    BODY_RATE_MIN); nothing of it is stored."""
    sock = X.connect(srv)
    try:
        sock.sendall(put_head(srv, "slow-body", 1000))
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < CUT_OFF and not closed:
            try:
                sock.sendall(b"x")
                sock.settimeout(0.5)
                closed = sock.recv(4096) == b""
            except socket.timeout:
                pass
            except OSError:
                closed = True
    finally:
        sock.close()
    assert closed, f"a body trickled at 2 bytes/s was still accepted after {CUT_OFF} s"
    absent(s3, "slow-body")
    still_serving(srv)


def test_slow_but_steady_body_is_accepted(srv, s3):
    """A body above the minimum rate is not cut off, however long it takes
    (here 2.5 timeout windows at 4 KiB/s)."""
    body = os.urandom(4096 * 5 * TIMEOUT // 2)
    sock = X.connect(srv)
    try:
        sock.sendall(put_head(srv, "steady-body", len(body)))
        for i in range(0, len(body), 1024):
            sock.sendall(body[i:i + 1024])
            time.sleep(0.25)
        sock.settimeout(5)
        first = sock.recv(4096)
    finally:
        sock.close()
    assert first.startswith(b"HTTP/1.1 200"), first
    assert s3.get_object(Bucket=BUCKET, Key="steady-body")["Body"].read() == body


def test_idle_connection_closed(srv):
    """A connection that sends nothing at all is closed by the timeout."""
    sock = X.connect(srv)
    try:
        reply = X.read_until_closed(sock, time.monotonic() + CUT_OFF)
    finally:
        sock.close()
    assert reply.closed and reply.data == b"", reply
    still_serving(srv)


# -- keys ------------------------------------------------------------------------------

@pytest.mark.parametrize("encoded", [
    "%ff%fe", "bad-%c0%af", "surrogate-%ed%a0%80", "trunc-%e2%82", "over-%f8%88%80%80%80",
])
def test_invalid_utf8_keys(srv, encoded):
    for method, body in (("PUT", b"x"), ("GET", b"")):
        path = f"/{BUCKET}/{encoded}"
        reply = X.exchange(srv, X.signed_bytes(srv, method, path, body=body),
                           wait=CUT_OFF, until_responses=1)
        assert_error(reply, 400, "InvalidArgument")
    still_serving(srv)


def test_raw_non_ascii_bytes_in_target(srv):
    """Bytes above 0x7f not percent-encoded are not a valid URI."""
    payload = (f"GET /{BUCKET}/".encode() + b"\xff\xfe" +
               f" HTTP/1.1\r\nHost: {srv.host}:{srv.port}\r\n\r\n".encode())
    reply = X.exchange(srv, payload, wait=CUT_OFF, until_responses=1)
    assert_closed_or_status(reply, {400, 403})
    still_serving(srv)


@pytest.mark.parametrize("encoded", ["nul%00key", "%00", "a/%00/b"])
def test_nul_in_key(srv, s3, encoded):
    reply = X.exchange(srv, X.signed_bytes(srv, "PUT", f"/{BUCKET}/{encoded}", body=b"x"),
                       wait=CUT_OFF, until_responses=1)
    assert_error(reply, 400, "InvalidArgument")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert not any("\0" in k or k.startswith("nul") for k in keys), keys
    still_serving(srv)


@pytest.mark.parametrize("raw_path, key", [
    ("/hostile/a/../b", "a/../b"),
    ("/hostile/a/%2e%2e/b", "a/../b"),
    ("/hostile/%2E%2E/%2e%2e/etc/passwd", "../../etc/passwd"),
    ("/hostile/..", ".."),
    ("/hostile/./x/.", "./x/."),
])
def test_dot_segments_are_literal_keys(srv, s3, raw_path, key):
    """S3 keys are names, not paths: dot segments are stored literally and
    never resolved against the bucket or the data directory."""
    data = os.urandom(100)
    reply = X.exchange(srv, X.signed_bytes(srv, "PUT", raw_path, body=data,
                                           sign_path=H.key_path(BUCKET, key)),
                       wait=CUT_OFF, until_responses=1)
    assert reply.status() == 200, reply
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    s3.delete_object(Bucket=BUCKET, Key=key)
    assert s3.get_object(Bucket=BUCKET, Key=CANARY)["Body"].read() == CANARY_DATA
    for p in H.all_files(srv.workdir):
        assert os.path.realpath(p).startswith(os.path.realpath(srv.workdir))
    still_serving(srv)


def test_dot_dot_bucket(srv):
    """A bucket named '..' or '.' is not a valid bucket name."""
    for path, signed in (("/../hostile/canary", None),
                         ("/%2e%2e/hostile/canary", "/../hostile/canary"),
                         ("/./x", None)):
        reply = X.exchange(srv, X.signed_bytes(srv, "GET", path, sign_path=signed),
                           wait=CUT_OFF, until_responses=1)
        assert reply.status() in (400, 404), reply
        assert reply.error_code() in ("InvalidBucketName", "NoSuchBucket", "InvalidURI"), reply
    still_serving(srv)


def test_key_too_long(srv, s3):
    ok = "k" * 1024
    s3.put_object(Bucket=BUCKET, Key=ok, Body=b"1024")
    for key in ("k" * 1025, "\u00e9" * 513):          # 1025 / 1026 bytes
        reply = X.exchange(srv, X.signed_bytes(srv, "PUT", H.key_path(BUCKET, key), body=b"x"),
                           wait=CUT_OFF, until_responses=1)
        assert_error(reply, 400, "KeyTooLongError")
    assert s3.get_object(Bucket=BUCKET, Key=ok)["Body"].read() == b"1024"
    still_serving(srv)


# -- aws-chunked -----------------------------------------------------------------------

def _chunked_put(srv, key, data, chunk_size, tamper):
    return H.put_streaming_signed(srv, BUCKET, key, data, chunk_size=chunk_size,
                                  tamper=tamper)


@pytest.mark.parametrize("corrupt", [0, 2, 4])          # 4: the final empty chunk
def test_bad_chunk_signature(srv, s3, corrupt):
    data = os.urandom(4 * 8192)
    r = H.put_streaming_signed(srv, BUCKET, "bad-chunk-sig", data, chunk_size=8192,
                               corrupt=corrupt)
    H.assert_s3_error(r, 403, "SignatureDoesNotMatch")
    absent(s3, "bad-chunk-sig")
    still_serving(srv)


def _replace_first_size(body, new):
    head, sep, rest = body.partition(b";")
    return new + sep + rest


@pytest.mark.parametrize("size, status, code", [
    (b"4000", 403, "SignatureDoesNotMatch"),        # larger: swallows the next chunk
    (b"1fff", 403, "SignatureDoesNotMatch"),        # smaller: the data is not what was signed
    (b"ffffffffffffffffff", 400, "IncompleteBody"),  # overflows 64 bits
    (b"zz", 400, "IncompleteBody"),
    (b"-1", 400, "IncompleteBody"),
    (b"", 400, "IncompleteBody"),
])
def test_chunk_size_lies(srv, s3, size, status, code):
    """The first chunk's size does not match its bytes (Content-Length is
    adjusted so HTTP framing is intact): refused, nothing stored."""
    data = os.urandom(3 * 8192)
    chunks = H.split_chunks(data, 8192)
    path = H.key_path(BUCKET, "chunk-lie")
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data))}
    s = H.sign(srv, "PUT", path, headers=headers,
               payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    body = _replace_first_size(H.signed_chunked_body(s, chunks), size)
    s.headers["Content-Length"] = str(len(body))
    reply = X.exchange(srv, X.request_bytes("PUT", path, s.headers, body),
                       wait=CUT_OFF, until_responses=1)
    assert_error(reply, status, code)
    absent(s3, "chunk-lie")
    still_serving(srv)


def test_chunked_body_truncated_held_open(srv, s3):
    """aws-chunked body cut in the middle of a chunk, connection kept
    open: freed by the timeout, nothing stored."""
    data = os.urandom(3 * 8192)
    chunks = H.split_chunks(data, 8192)
    path = H.key_path(BUCKET, "chunk-trunc")
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data)),
               "Content-Length": str(H.signed_chunked_length(len(c) for c in chunks))}
    s = H.sign(srv, "PUT", path, headers=headers,
               payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    body = H.signed_chunked_body(s, chunks)
    sock = X.connect(srv)
    try:
        sock.sendall(X.request_bytes("PUT", path, s.headers, body[:10000]))
        reply = X.read_until_closed(sock, time.monotonic() + CUT_OFF)
    finally:
        sock.close()
    assert reply.closed, reply
    absent(s3, "chunk-trunc")
    still_serving(srv)


# -- XML bodies ------------------------------------------------------------------------

def post_xml(srv, query, body, path=None):
    path = path or f"/{BUCKET}"
    headers = {"Content-MD5": H.md5_b64(body), "Content-Type": "application/xml"}
    return H.raw(srv, "POST", path, query=query, headers=headers, body=body)


def test_delete_objects_over_1000_keys(srv, s3):
    body = ("<Delete>" + "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(1001)) +
            "</Delete>").encode()
    r = post_xml(srv, "delete", body)
    H.assert_s3_error(r, 400, "MalformedXML")
    still_serving(srv)


def test_delete_objects_multi_megabyte(srv, s3):
    """Far past any DeleteObjects document (8 MiB): refused from the
    declared length without reading it; the connection then closes."""
    body = b"<Delete>" + b"<Object><Key>" + b"k" * (12 << 20) + b"</Key></Object></Delete>"
    payload = X.signed_bytes(srv, "POST", f"/{BUCKET}", query="delete", body=body,
                             headers={"Content-MD5": H.md5_b64(body)})
    reply = X.exchange(srv, payload, wait=CUT_OFF)
    if reply.status() is not None:
        assert_error(reply, 400, "MaxMessageLengthExceeded")
    assert reply.closed, reply
    still_serving(srv)


@pytest.fixture
def upload(s3):
    u = s3.create_multipart_upload(Bucket=BUCKET, Key="mpu-hostile")
    yield u["UploadId"]
    try:
        s3.abort_multipart_upload(Bucket=BUCKET, Key="mpu-hostile", UploadId=u["UploadId"])
    except Exception:
        pass


def test_complete_multipart_multi_megabyte(srv, s3, upload):
    """A 3 MB CompleteMultipartUpload document (past the 2 MB kura takes)."""
    part = "<Part><PartNumber>1</PartNumber><ETag>\"%s\"</ETag></Part>" % ("0" * 32)
    n = (3 << 20) // len(part) + 1
    body = ("<CompleteMultipartUpload>" + part * n + "</CompleteMultipartUpload>").encode()
    try:
        r = H.raw(srv, "POST", H.key_path(BUCKET, "mpu-hostile"),
                  query=[("uploadId", upload)], body=body)
    except (ConnectionResetError, BrokenPipeError):
        r = None
    if r is not None:
        H.assert_s3_error(r, 400, "MaxMessageLengthExceeded")
    absent(s3, "mpu-hostile")
    still_serving(srv)


def test_deeply_nested_xml(srv, s3):
    depth = 100000
    body = (b"<Delete>" + b"<a>" * depth + b"x" + b"</a>" * depth + b"</Delete>")
    t0 = time.monotonic()
    r = post_xml(srv, "delete", body)
    H.assert_s3_error(r, 400, "MalformedXML")
    assert time.monotonic() - t0 < 5
    still_serving(srv)


def test_deeply_nested_xml_in_complete_multipart(srv, s3, upload):
    depth = 100000
    body = (b"<CompleteMultipartUpload>" + b"<Part>" * depth + b"</Part>" * depth +
            b"</CompleteMultipartUpload>")
    r = H.raw(srv, "POST", H.key_path(BUCKET, "mpu-hostile"),
              query=[("uploadId", upload)], body=body)
    H.assert_s3_error(r, 400, "MalformedXML")
    still_serving(srv)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Delete><Object><Key>&lol9;</Key></Object></Delete>"""


def test_billion_laughs(srv, s3):
    t0 = time.monotonic()
    r = post_xml(srv, "delete", BILLION_LAUGHS)
    H.assert_s3_error(r, 400, "MalformedXML")
    assert time.monotonic() - t0 < 5
    still_serving(srv)


def test_xxe_external_entity(srv, s3, tmp_path):
    secret = tmp_path / "secret.txt"
    marker = "XXE-" + hashlib.sha256(os.urandom(8)).hexdigest()[:16]
    secret.write_text(marker)
    s3.put_object(Bucket=BUCKET, Key=marker, Body=b"bait")
    for doc in (
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file://{secret}">]>'
        f'<Delete><Object><Key>&x;</Key></Object></Delete>',
        f'<?xml version="1.0"?><!DOCTYPE d SYSTEM "file://{secret}">'
        f'<Delete><Object><Key>k</Key></Object></Delete>',
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "file://{secret}">%p;]>'
        f'<Delete><Object><Key>k</Key></Object></Delete>',
    ):
        r = post_xml(srv, "delete", doc.encode())
        H.assert_s3_error(r, 400, "MalformedXML")
        assert marker.encode() not in r.body
    # The entity never resolved to the file's content: the bait survives.
    assert s3.get_object(Bucket=BUCKET, Key=marker)["Body"].read() == b"bait"
    still_serving(srv)


def test_xml_not_utf8_and_binary(srv, s3):
    for body in (b"\xff\xfe<\x00D\x00", os.urandom(4096), b"<Delete>\xff</Delete>"):
        r = post_xml(srv, "delete", body)
        H.assert_s3_error(r, 400, "MalformedXML")
    still_serving(srv)


# -- HTTP oddities ----------------------------------------------------------------------

def test_missing_host(srv):
    """HTTP/1.1 without Host is a 400 (RFC 9112 3.2)."""
    payload = f"GET /{BUCKET}/{CANARY} HTTP/1.1\r\n\r\n".encode()
    reply = X.exchange(srv, payload, wait=CUT_OFF, until_responses=1)
    assert_closed_or_status(reply, {400})
    assert reply.status() == 400, reply
    still_serving(srv)


@pytest.mark.parametrize("host", ["evil.example", "", "a" * 400, "127.0.0.1:1"])
def test_bad_host_breaks_signature(srv, host):
    """The signed Host differs from the one sent: SignatureDoesNotMatch
    (or 400 for a Host that is not a valid name)."""
    signed = H.sign(srv, "GET", H.key_path(BUCKET, CANARY))
    headers = dict(signed.headers)
    headers["Host"] = host
    reply = X.exchange(srv, X.request_bytes("GET", H.key_path(BUCKET, CANARY), headers),
                       wait=CUT_OFF, until_responses=1)
    assert reply.status() in (400, 403, 404), reply
    if reply.status() == 403:
        assert reply.error_code() == "SignatureDoesNotMatch", reply
    assert CANARY_DATA not in reply.data
    still_serving(srv)


def test_two_host_headers(srv):
    signed = H.sign(srv, "GET", H.key_path(BUCKET, CANARY))
    raw_req = X.request_bytes("GET", H.key_path(BUCKET, CANARY), signed.headers)
    raw_req = raw_req.replace(b"\r\n\r\n", b"\r\nHost: evil.example\r\n\r\n", 1)
    reply = X.exchange(srv, raw_req, wait=CUT_OFF, until_responses=1)
    assert reply.status() in (400, 403), reply
    assert CANARY_DATA not in reply.data
    still_serving(srv)


def test_http_1_0(srv):
    payload = X.signed_bytes(srv, "GET", H.key_path(BUCKET, CANARY), version="HTTP/1.0")
    reply = X.exchange(srv, payload, wait=CUT_OFF)
    rs = reply.responses()
    assert rs and rs[0][0] == 200 and rs[0][2] == CANARY_DATA, reply
    assert reply.closed, "HTTP/1.0 without keep-alive must be closed after the response"
    still_serving(srv)


def test_pipelined_requests(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="pipe-1", Body=b"one")
    reqs = [X.signed_bytes(srv, "GET", H.key_path(BUCKET, "pipe-1")),
            X.signed_bytes(srv, "PUT", H.key_path(BUCKET, "pipe-2"), body=b"two"),
            X.signed_bytes(srv, "GET", H.key_path(BUCKET, "pipe-2")),
            X.signed_bytes(srv, "GET", H.key_path(BUCKET, "pipe-missing")),
            X.signed_bytes(srv, "GET", H.key_path(BUCKET, CANARY))]
    reply = X.exchange(srv, b"".join(reqs), wait=CUT_OFF, until_responses=len(reqs))
    rs = reply.responses()
    assert [r[0] for r in rs] == [200, 200, 200, 404, 200], reply
    assert rs[0][2] == b"one" and rs[2][2] == b"two" and rs[4][2] == CANARY_DATA
    still_serving(srv)


@pytest.mark.parametrize("name, payload", [
    ("binary", os.urandom(8192)),
    ("no-crlf", b"GET / HTTP/1.1"),
    ("bad-version", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n"),
    ("bad-method", b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("lf-only", b"GET /hostile/canary HTTP/1.1\nHost: x\n\n"),
    ("header-no-colon", b"GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n"),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nx-a: b\r\n c\r\n\r\n"),
    ("space-before-colon", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
    ("nul-in-header", b"GET / HTTP/1.1\r\nHost: x\r\nx-a: b\x00c\r\n\r\n"),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
])
def test_garbage(srv, name, payload):
    reply = X.exchange(srv, payload, wait=CUT_OFF)
    assert_closed_or_status(reply, {400, 403, 404, 405, 501, 505})
    assert reply.closed or reply.status() is not None, reply
    still_serving(srv)


def test_tls_client_hello_on_plain_port(srv):
    """A TLS ClientHello is not HTTP: refused or closed promptly."""
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    assert hello[:1] == b"\x16"
    reply = X.exchange(srv, hello, wait=CUT_OFF)
    assert_closed_or_status(reply, {400})
    assert reply.closed, reply
    still_serving(srv)


def test_server_survived_everything(srv, s3):
    """Last: the server is up, the canary intact, no sanitizer report yet."""
    assert srv.running
    assert s3.get_object(Bucket=BUCKET, Key=CANARY)["Body"].read() == CANARY_DATA
    assert not [line for line in srv.stderr_text().splitlines()
                if "AddressSanitizer" in line or "runtime error:" in line]

"""Small helpers shared by kura's integration tests.

- raw(): one HTTP/1.1 request with full control over method, target,
  headers, body and SigV4 signature (botocore's signer, with a chosen
  clock, region and payload hash), over http.client or an existing
  connection, returning status, headers and body as sent by the server.
- aws-chunked bodies: the STREAMING-AWS4-HMAC-SHA256-PAYLOAD chunk
  signatures and the STREAMING-UNSIGNED-PAYLOAD-TRAILER framing, written
  from the S3 API Reference ("Signature Calculations for the Authorization
  Header: Transferring Payload in Multiple Chunks").
- A model of ListObjectsV2 (UTF-8 byte order, delimiter roll-up, paging).
- S3 error documents, grep over a data directory, bulk PUTs.
- The audit log as `kura audit export` prints it.
"""

import base64
import binascii
import concurrent.futures
import datetime
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import re
import time
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REGION = "us-east-1"
S3NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AMZ_FMT = "%Y%m%dT%H%M%SZ"
SEG = 256 * 1024            # kura's default segment size


def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


# -- boto3 errors ------------------------------------------------------------

def client_error(fn, *args, **kwargs):
    """Call fn expecting a ClientError; returns (code, status, response)."""
    with pytest.raises(ClientError) as ei:
        fn(*args, **kwargs)
    resp = ei.value.response
    return (resp["Error"].get("Code"),
            resp["ResponseMetadata"]["HTTPStatusCode"], resp)


def expect_error(code, status, fn, *args, **kwargs):
    got_code, got_status, resp = client_error(fn, *args, **kwargs)
    assert (got_code, got_status) == (code, status), resp
    return resp


# -- raw signed requests -----------------------------------------------------

class _Signer(SigV4Auth):
    """botocore's SigV4 with a chosen clock and S3's (unnormalised) path."""

    def __init__(self, credentials, region, when):
        super().__init__(credentials, "s3", region)
        self._when = when
        self.last_signature = None

    def _normalize_url_path(self, path):
        return path

    def _set_necessary_date_headers(self, request):
        # A Date header (instead of X-Amz-Date) as an IMF-fixdate, which is
        # what HTTP requires; botocore writes RFC 2822 "-0000" there.
        if "Date" in request.headers:
            del request.headers["Date"]
            request.headers["Date"] = email.utils.format_datetime(
                self._when.replace(tzinfo=datetime.timezone.utc, microsecond=0),
                usegmt=True)
            if "X-Amz-Date" in request.headers:
                del request.headers["X-Amz-Date"]
        else:
            super()._set_necessary_date_headers(request)

    def add_auth(self, request):
        request.context["timestamp"] = self._when.strftime(AMZ_FMT)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        sts = self.string_to_sign(request, canonical)
        self.last_signature = self.signature(sts, request)
        self._inject_signature_to_request(request, self.last_signature)


def signing_key(secret, date, region=REGION, service="s3"):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def key_path(bucket, key=None):
    """The request path for bucket[/key], percent-encoded as SDKs do."""
    if key is None:
        return "/" + bucket
    return "/" + bucket + "/" + quote(key, safe="/~")


def encode_query(params):
    """params: list of (name, value) or dict -> canonical-encoded query."""
    if isinstance(params, dict):
        params = list(params.items())
    parts = []
    for k, v in params:
        k = quote(k, safe="-_.~")
        parts.append(k if v is None else f"{k}={quote(str(v), safe='-_.~')}")
    return "&".join(parts)


class RawResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers          # http.client.HTTPMessage
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def error(self):
        return parse_error(self.body)

    def __repr__(self):
        return (f"<RawResponse {self.status} {self.reason} "
                f"{dict(self.headers)} {self.body[:600]!r}>")


class Signed:
    """What a signed request carries (for aws-chunked bodies)."""

    def __init__(self, headers, signature, timestamp, scope, key):
        self.headers = headers
        self.signature = signature
        self.timestamp = timestamp
        self.scope = scope
        self.key = key


def sign(server, method, path, query="", headers=None, payload_hash=None,
         body=b"", access_key=None, secret_key=None, region=REGION,
         when=None, host=None, unsigned_headers=()):
    """Return a Signed with the full header dict for the wire."""
    access_key = access_key or server.access_key
    secret_key = secret_key or server.secret_key
    when = when or utcnow()
    host = host or f"{server.host}:{server.port}"
    hdrs = {"Host": host}
    hdrs.update(headers or {})
    if payload_hash is None:
        payload_hash = sha256_hex(body if isinstance(body, bytes) else b"")
    if payload_hash is not False:
        hdrs["X-Amz-Content-SHA256"] = payload_hash
    to_sign = {k: v for k, v in hdrs.items()
               if k.lower() not in {u.lower() for u in unsigned_headers}}
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, headers=to_sign, data=b"")
    signer = _Signer(Credentials(access_key, secret_key), region, when)
    signer.add_auth(req)
    out = dict(req.headers.items())
    for k, v in hdrs.items():
        if k not in out:
            out[k] = v
    ts = when.strftime(AMZ_FMT)
    scope = f"{ts[:8]}/{region}/s3/aws4_request"
    return Signed(out, signer.last_signature, ts, scope,
                  signing_key(secret_key, ts[:8], region))


def send(server, method, path, query="", headers=None, body=b"", conn=None,
         host=None, chunked=False, content_length=True):
    """Send one request with exactly these headers (a Host header is added
    if missing); body is bytes, or an iterable of byte chunks when chunked
    (HTTP Transfer-Encoding: chunked).  Returns a RawResponse."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    target = path + (f"?{query}" if query else "")
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if not any(k.lower() == "host" for k in hdrs):
            hdrs["Host"] = host or f"{server.host}:{server.port}"
        if chunked:
            hdrs["Transfer-Encoding"] = "chunked"
        elif content_length and (body or method in ("PUT", "POST")) and \
                not any(k.lower() == "content-length" for k in hdrs):
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders()
        if chunked:
            for piece in body:
                if piece:
                    conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        elif body:
            conn.send(body)
        r = conn.getresponse()
        data = r.read()
        return RawResponse(r.status, r.reason, r.headers, data)
    finally:
        if own:
            conn.close()


def raw(server, method, path, query="", headers=None, body=b"", conn=None,
        host=None, chunked=False, content_length=True, **signopts):
    """Sign (see sign()) and send one request.  With chunked, body is a
    list of pieces and the signed payload hash covers their concatenation
    unless payload_hash is given."""
    if isinstance(query, (list, dict)):
        query = encode_query(query)
    unsigned = tuple(signopts.pop("unsigned_headers", ()))
    sign_body = b"".join(body) if chunked else body
    s = sign(server, method, path, query, headers, body=sign_body, host=host,
             unsigned_headers=unsigned, **signopts)
    return send(server, method, path, query, s.headers, body, conn=conn,
                host=host, chunked=chunked, content_length=content_length)


def anonymous(server, method, path, query="", headers=None, body=b""):
    return send(server, method, path, query, headers, body)


# -- S3 XML ------------------------------------------------------------------

def parse_error(body):
    """The fields of an S3 <Error> document (asserting it is one)."""
    assert body, "empty error body"
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    return {child.tag: (child.text or "") for child in root}


def assert_s3_error(resp, status, code, server=None):
    """resp is an S3 XML error with this status and code, whose RequestId
    equals x-amz-request-id (and appears in the server's log)."""
    assert resp.status == status, resp
    err = parse_error(resp.body)
    assert err.get("Code") == code, resp
    assert err.get("Message"), resp
    rid = err.get("RequestId")
    assert rid and rid == resp.header("x-amz-request-id"), resp
    if server is not None:
        assert_logged(server, rid)
    return err


def assert_logged(server, request_id, timeout=3.0):
    if not wait_for(lambda: request_id in server.stderr_text(), timeout):
        raise AssertionError(f"request id {request_id} not in server log")


def xml_children(elem, name):
    return elem.findall(S3NS + name)


def xml_text(elem, name):
    e = elem.find(S3NS + name)
    return None if e is None else (e.text or "")


# -- aws-chunked -------------------------------------------------------------

CHUNK_SIG_LEN = 64


def chunk_signature(signed, prev, data):
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", signed.timestamp, signed.scope,
                     prev, EMPTY_SHA256, sha256_hex(data)])
    return hmac.new(signed.key, sts.encode(), hashlib.sha256).hexdigest()


def split_chunks(data, chunk_size):
    return [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]


def signed_chunked_length(sizes):
    n = 0
    for size in list(sizes) + [0]:
        n += len(b"%x" % size) + len(b";chunk-signature=") + CHUNK_SIG_LEN + 2
        n += size + 2
    return n


def signed_chunked_body(signed, chunks, corrupt=None):
    """The aws-chunked body for these chunks (a final empty chunk is added).
    corrupt: index of a chunk whose signature is damaged."""
    out = []
    prev = signed.signature
    for i, data in enumerate(list(chunks) + [b""]):
        sig = chunk_signature(signed, prev, data)
        prev = sig
        if i == corrupt:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        out.append(b"%x;chunk-signature=%s\r\n" % (len(data), sig.encode()) +
                   data + b"\r\n")
    return b"".join(out)


def put_streaming_signed(server, bucket, key, data, chunk_size=64 * 1024,
                         corrupt=None, extra_headers=None, tamper=None):
    """PutObject with STREAMING-AWS4-HMAC-SHA256-PAYLOAD; returns RawResponse.
    tamper(body) may change the encoded body after signing."""
    chunks = split_chunks(data, chunk_size)
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "Content-Length": str(signed_chunked_length(len(c) for c in chunks)),
    }
    headers.update(extra_headers or {})
    path = key_path(bucket, key)
    s = sign(server, "PUT", path, headers=headers,
             payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    body = signed_chunked_body(s, chunks, corrupt=corrupt)
    if tamper:
        body = tamper(body)
    assert len(body) == int(headers["Content-Length"])
    return send(server, "PUT", path, headers=s.headers, body=body)


def crc32_b64(data):
    return base64.b64encode((binascii.crc32(data) & 0xFFFFFFFF)
                            .to_bytes(4, "big")).decode()


def put_unsigned_trailer(server, bucket, key, data, chunk_size=64 * 1024,
                         checksum=None):
    """PutObject with STREAMING-UNSIGNED-PAYLOAD-TRAILER and an
    x-amz-checksum-crc32 trailer (the correct one unless given)."""
    checksum = checksum or crc32_b64(data)
    body = b"".join(b"%x\r\n" % len(c) + c + b"\r\n"
                    for c in split_chunks(data, chunk_size))
    body += b"0\r\nx-amz-checksum-crc32:" + checksum.encode() + b"\r\n\r\n"
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
        "Content-Length": str(len(body)),
    }
    path = key_path(bucket, key)
    s = sign(server, "PUT", path, headers=headers,
             payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    return send(server, "PUT", path, headers=s.headers, body=body)


# -- listing model -----------------------------------------------------------

def list_model(keys, prefix="", delimiter="", start_after=""):
    """The ordered items S3 lists: ("K", key) or ("P", common prefix), in
    UTF-8 byte order, after start_after, with delimiter roll-up."""
    ordered = sorted(set(keys), key=lambda k: k.encode())
    items = []
    seen_prefixes = set()
    sa = start_after.encode()
    for k in ordered:
        if not k.startswith(prefix) or k.encode() <= sa:
            continue
        if delimiter:
            i = k.find(delimiter, len(prefix))
            if i >= 0:
                cp = k[:i + len(delimiter)]
                if cp not in seen_prefixes and cp.encode() > sa:
                    seen_prefixes.add(cp)
                    items.append(("P", cp))
                continue
        items.append(("K", k))
    return items


def list_pages(items, max_keys):
    """The pages S3 returns for these items: a list of (slice, truncated)."""
    if max_keys == 0:
        return [([], False)]
    pages = []
    for i in range(0, max(len(items), 1), max_keys):
        page = items[i:i + max_keys]
        pages.append((page, i + max_keys < len(items)))
    return pages


# -- files and bulk operations -----------------------------------------------

def all_files(root):
    for dirpath, _, files in os.walk(root):
        for f in files:
            yield os.path.join(dirpath, f)


def files_containing(paths, needle):
    hits = []
    for p in paths:
        with open(p, "rb") as f:
            if needle in f.read():
                hits.append(p)
    return hits


BLOB_NAME = re.compile(r"^[0-9a-f]{32}$")


def blob_files(data_dir):
    """Published and staged blob files under DATA_DIR/blobs."""
    return [p for p in all_files(os.path.join(data_dir, "blobs"))]


def put_many(client, bucket, keys, body=lambda k: b"", threads=16):
    """PUT every key (in parallel); returns {key: etag}."""
    def one(k):
        data = body(k)
        r = client.put_object(Bucket=bucket, Key=k, Body=data)
        return k, r["ETag"]
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        return dict(ex.map(one, keys))


def client_with_pool(server, access_key=None, secret_key=None, size=32):
    return server.client(access_key, secret_key, max_pool_connections=size)


# -- waiting -------------------------------------------------------------------
# What the server does a moment later (a log line, an audit record, a blob
# deleted by background work, a key change noticed) is waited for with one
# of these two, never with a loop of its own.

def eventually(fn, timeout=10.0, interval=0.2):
    """Retry fn until it returns without raising an AssertionError or a
    ClientError; returns what it returned (raises the last error when time
    is up)."""
    return _retry(fn, (AssertionError, ClientError), timeout, interval)


class _NotYet(Exception):
    pass


def wait_for(pred, timeout=10.0, interval=0.05):
    """Poll pred() until it returns a true value, and return that value;
    when time is up, return the last (false) value for the caller to
    assert on."""
    def attempt():
        value = pred()
        if not value:
            raise _NotYet(value)
        return value
    try:
        return _retry(attempt, (_NotYet,), timeout, interval)
    except _NotYet as e:
        return e.args[0]


def _retry(fn, retry_on, timeout, interval):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except retry_on:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)

# -- the audit log -----------------------------------------------------------

def audit_export(server):
    """(records, checkpoints) of the server's audit log, read with `kura
    audit export` (safe while the server runs); records are checked to be
    numbered 0, 1, 2 ... without a gap."""
    r = server.cli("audit", "export")
    assert r.returncode == 0, r.stderr
    records, checkpoints = [], []
    for line in r.stdout.splitlines():
        doc = json.loads(line)
        (records if "seq" in doc else checkpoints).append(doc)
    assert [rec["seq"] for rec in records] == list(range(len(records)))
    return records, checkpoints

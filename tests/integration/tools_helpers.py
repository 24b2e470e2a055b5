"""Helpers shared by the integration tests of the wider S3 surface
(multipart, copy, DeleteObjects, tagging/ACLs, listing v1, real tools).

Nothing here starts a server: the fixtures of conftest.py do that.  These
are small functions: a raw SigV4-signed request (for requests boto3 will not
craft, such as DeleteObjects without Content-MD5), XML parsing without
namespaces, the blob files a server keeps on disk, and the S3 multipart
ETag computed independently of the server.
"""

import hashlib
import http.client
import os
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

REGION = "us-east-1"
MiB = 1024 * 1024
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


# -- digests -----------------------------------------------------------------

def md5_hex(data):
    return hashlib.md5(data).hexdigest()


def multipart_etag(parts):
    """S3's ETag of a completed multipart upload made of these part bodies:
    the MD5 of the concatenated binary MD5s of the parts, then -N."""
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            h.update(chunk)
    return h.hexdigest()


def tree_hashes(root):
    """{relative path: sha256} of every regular file under root."""
    root = Path(root)
    out = {}
    for p in root.rglob("*"):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = file_sha256(p)
    return out


# -- errors ------------------------------------------------------------------

def expect_error(fn, code, status=None, *args, **kwargs):
    """Call fn(*args, **kwargs); assert it fails with this S3 error code
    (and HTTP status when given).  Returns the ClientError's response."""
    with pytest.raises(ClientError) as ei:
        fn(*args, **kwargs)
    resp = ei.value.response
    got = resp.get("Error", {}).get("Code")
    got_status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
    assert got == code, f"expected {code}, got {got} ({got_status}): {resp}"
    if status is not None:
        assert got_status == status, f"expected HTTP {status} for {code}, got {got_status}"
    return resp


# -- raw requests --------------------------------------------------------------

class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def xml(self):
        return parse_xml(self.body)

    def error_code(self):
        root = self.xml()
        assert root.tag == "Error", f"not an S3 error document: {self.body[:300]!r}"
        return root.findtext("Code")

    def __repr__(self):
        return f"<RawResponse {self.status} {self.body[:300]!r}>"


def raw_request(server, method, path, query=None, headers=None, body=b"",
                access_key=None, secret_key=None, sign=True):
    """Send one SigV4-signed (header auth) request to the server exactly as
    given and return a RawResponse.  path is the already URL-encoded path
    ("/bucket/key"); query is a list of (name, value) pairs or a string."""
    if isinstance(query, (list, tuple)):
        query = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    target = path + ("?" + query if query else "")
    url = server.endpoint + target
    hdrs = dict(headers or {})
    if sign:
        hdrs.setdefault("x-amz-content-sha256", hashlib.sha256(body).hexdigest())
        req = AWSRequest(method=method, url=url, data=body, headers=hdrs)
        creds = Credentials(access_key or server.access_key,
                            secret_key or server.secret_key)
        S3SigV4Auth(creds, "s3", REGION).add_auth(req)
        hdrs = dict(req.headers.items())
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request(method, target, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, resp.getheaders(), data)
    finally:
        conn.close()


def strip_ns(root):
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    return root


def parse_xml(body):
    """ElementTree root with the S3 namespace removed from every tag."""
    return strip_ns(ET.fromstring(body))


# -- blob files on disk ----------------------------------------------------------

def blob_files(server):
    """{blob id: path} of every blob file of the server (published and
    staged), from DATA_DIR/blobs.  Blob files are named by 32 hex digits."""
    root = Path(server.data_dir) / "blobs"
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if len(name) == 32 and all(c in "0123456789abcdef" for c in name):
                out[name] = Path(dirpath) / name
    return out


def new_blob(server, before, action):
    """Run action(); return the set of blob ids that appeared."""
    action()
    return set(blob_files(server)) - set(before)

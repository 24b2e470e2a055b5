"""Additional checksums (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1,
-sha256): verified on PutObject, UploadPart and CompleteMultipartUpload,
stored inside the metadata seals and returned — on writes, on HEAD/GET
with x-amz-checksum-mode: ENABLED (not for ranges or partNumber), in
ListParts and in GetObjectAttributes — for simple objects, composite
("<base64>-N") and full-object multipart checksums, from headers and from
aws-chunked trailers.  The values are computed here independently of the
server (CRC-32C and CRC-64/NVME from their definitions)."""

import base64
import hashlib
import hmac
import os
import zlib

import pytest

import helpers as H
from conftest import server_fixture
from helpers import expect_error
from tools_helpers import MiB, S3_NS

BUCKET = "sums"


@pytest.fixture(scope="module")
def srv(kura_server_module, s3_module):
    s3_module.create_bucket(Bucket=BUCKET)
    return kura_server_module


@pytest.fixture(scope="module")
def s3c(srv, s3_module):
    return s3_module


# -- the algorithms, from their definitions -----------------------------------

def _table(poly, width):
    mask = (1 << width) - 1
    out = []
    for i in range(256):
        v = i
        for _ in range(8):
            v = (v >> 1) ^ (poly if v & 1 else 0)
        out.append(v & mask)
    return out


def _reflect(v, width):
    return int(f"{v:0{width}b}"[::-1], 2)


_CRC32C = _table(0x82F63B78, 32)
_CRC64 = _table(_reflect(0xAD93D23594C93659, 64), 64)


def _crc(table, width, data, crc=0):
    mask = (1 << width) - 1
    crc ^= mask
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ mask


def digest(algo, data):
    if algo == "crc32":
        return (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    if algo == "crc32c":
        return _crc(_CRC32C, 32, data).to_bytes(4, "big")
    if algo == "crc64nvme":
        return _crc(_CRC64, 64, data).to_bytes(8, "big")
    return hashlib.new(algo, data).digest()


def b64(raw):
    return base64.b64encode(raw).decode()


def value(algo, data):
    return b64(digest(algo, data))


def composite(algo, parts):
    """S3's composite checksum: the checksum of the parts' digests, -N."""
    cat = b"".join(digest(algo, p) for p in parts)
    return f"{value(algo, cat)}-{len(parts)}"


def test_reference_values():
    # The catalogue check values, so the helpers above are trusted.
    assert digest("crc32c", b"123456789").hex() == "e3069283"
    assert digest("crc64nvme", b"123456789").hex() == "ae8b14860a799888"


# -- raw requests --------------------------------------------------------------

def path(key):
    return H.key_path(BUCKET, key)


def raw_put(srv, key, body, headers):
    return H.raw(srv, "PUT", path(key), headers=headers, body=body)


def raw_head(srv, key, mode=True, **kw):
    hdrs = {"x-amz-checksum-mode": "ENABLED"} if mode else {}
    hdrs.update(kw.pop("headers", {}))
    return H.raw(srv, "HEAD", path(key), headers=hdrs, **kw)


def assert_error(resp, status, code):
    assert resp.status == status, resp
    assert H.parse_error(resp.body)["Code"] == code, resp


def unsigned_trailer_put(srv, key, data, algo, val=None, chunk=4096):
    name = f"x-amz-checksum-{algo}"
    body = b"".join(b"%x\r\n" % len(c) + c + b"\r\n"
                    for c in H.split_chunks(data, chunk))
    body += b"0\r\n" + f"{name}:{val or value(algo, data)}".encode() + \
        b"\r\n\r\n"
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": name,
               "x-amz-sdk-checksum-algorithm": algo.upper(),
               "Content-Length": str(len(body))}
    s = H.sign(srv, "PUT", path(key), headers=headers,
               payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    return H.send(srv, "PUT", path(key), headers=s.headers, body=body)


def _signed_trailer_body(signed, chunks, name, val):
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER framing: signed chunks,
    the trailing checksum and its signature (S3 API Reference, "Signature
    calculations for trailing headers")."""
    prev = signed.signature
    out = []
    for data in list(chunks) + [b""]:
        sig = H.chunk_signature(signed, prev, data)
        prev = sig
        out.append(b"%x;chunk-signature=%s\r\n" % (len(data), sig.encode())
                   + data)
        if data:
            out.append(b"\r\n")
    trailer = f"{name}:{val}\n"
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", signed.timestamp,
                     signed.scope, prev, H.sha256_hex(trailer.encode())])
    tsig = hmac.new(signed.key, sts.encode(), hashlib.sha256).hexdigest()
    out.append(f"{name}:{val}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n"
               .encode())
    return b"".join(out)


def signed_trailer_put(srv, key, data, algo, query="", val=None):
    """A PUT (PutObject, or UploadPart with query) whose body is signed
    aws-chunked with a trailing x-amz-checksum-<algo>."""
    name = f"x-amz-checksum-{algo}"
    val = val or value(algo, data)
    chunks = H.split_chunks(data, 2048)
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    if isinstance(query, dict):
        query = H.encode_query(query)
    # Content-Length is signed: measure with a probe signature first.
    probe = H.sign(srv, "PUT", path(key), query, payload_hash=mode)
    length = len(_signed_trailer_body(probe, chunks, name, val))
    headers = {"Content-Encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": name, "Content-Length": str(length)}
    signed = H.sign(srv, "PUT", path(key), query, headers=headers,
                    payload_hash=mode)
    body = _signed_trailer_body(signed, chunks, name, val)
    return H.send(srv, "PUT", path(key), query, headers=signed.headers,
                  body=body)


# -- PutObject, HEAD and GET -----------------------------------------------------

BOTO_ALGOS = ["crc32", "crc32c", "sha1", "sha256"]
BOTO_NAME = {"crc32": "ChecksumCRC32", "crc32c": "ChecksumCRC32C",
             "sha1": "ChecksumSHA1", "sha256": "ChecksumSHA256"}


@pytest.mark.parametrize("algo", BOTO_ALGOS)
def test_put_stores_and_returns_the_checksum(s3c, algo):
    data = b"kura checksum " * 1000 + algo.encode()
    key = f"put-{algo}"
    want = value(algo, data)
    r = s3c.put_object(Bucket=BUCKET, Key=key, Body=data,
                      **{BOTO_NAME[algo]: want})
    assert r[BOTO_NAME[algo]] == want
    h = s3c.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert h[BOTO_NAME[algo]] == want
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == \
        "FULL_OBJECT"
    # botocore checks the returned value against the body it reads.
    g = s3c.get_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert g[BOTO_NAME[algo]] == want
    assert g["Body"].read() == data
    # Not asked for, not for a range, not for a part.
    assert BOTO_NAME[algo] not in s3c.head_object(Bucket=BUCKET, Key=key)
    rg = s3c.get_object(Bucket=BUCKET, Key=key, Range="bytes=0-9",
                       ChecksumMode="ENABLED")
    assert BOTO_NAME[algo] not in rg and rg["Body"].read() == data[:10]
    pn = s3c.head_object(Bucket=BUCKET, Key=key, PartNumber=1,
                        ChecksumMode="ENABLED")
    assert BOTO_NAME[algo] not in pn


def test_boto_computes_and_kura_keeps(s3c):
    # ChecksumAlgorithm: botocore computes the value itself and sends it.
    data = b"x" * 70000
    s3c.put_object(Bucket=BUCKET, Key="sdk-sha256", Body=data,
                  ChecksumAlgorithm="SHA256")
    h = s3c.head_object(Bucket=BUCKET, Key="sdk-sha256", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == value("sha256", data)


def test_crc64nvme_put_head_get(srv):
    data = b"123456789" * 3000
    want = value("crc64nvme", data)
    r = raw_put(srv, "crc64", data, {"x-amz-checksum-crc64nvme": want})
    assert r.status == 200, r
    assert r.header("x-amz-checksum-crc64nvme") == want
    assert r.header("x-amz-checksum-type") == "FULL_OBJECT"
    h = raw_head(srv, "crc64")
    assert h.status == 200
    assert h.header("x-amz-checksum-crc64nvme") == want
    assert h.header("x-amz-checksum-type") == "FULL_OBJECT"
    g = H.raw(srv, "GET", path("crc64"),
              headers={"x-amz-checksum-mode": "ENABLED"})
    assert g.body == data and g.header("x-amz-checksum-crc64nvme") == want
    assert raw_head(srv, "crc64", mode=False).header(
        "x-amz-checksum-crc64nvme") is None


@pytest.mark.parametrize("algo", ["crc32", "crc32c", "crc64nvme", "sha1",
                                  "sha256"])
def test_trailing_checksum_is_stored(srv, algo):
    data = bytes(range(256)) * 97
    key = f"trailer-{algo}"
    r = unsigned_trailer_put(srv, key, data, algo)
    assert r.status == 200, r
    assert r.header(f"x-amz-checksum-{algo}") == value(algo, data)
    h = raw_head(srv, key)
    assert h.header(f"x-amz-checksum-{algo}") == value(algo, data)


@pytest.mark.parametrize("algo", ["crc32c", "crc64nvme", "sha256"])
def test_signed_trailing_checksum_is_stored(srv, s3c, algo):
    data = bytes(range(256)) * 41
    key = f"signed-trailer-{algo}"
    r = signed_trailer_put(srv, key, data, algo)
    assert r.status == 200, r
    assert r.header(f"x-amz-checksum-{algo}") == value(algo, data)
    assert raw_head(srv, key).header(f"x-amz-checksum-{algo}") == \
        value(algo, data)
    bad = signed_trailer_put(srv, key + "-bad", data, algo,
                             val=value(algo, data + b"?"))
    assert_error(bad, 400, "BadDigest")
    # An upload part, the same way.
    uid = s3c.create_multipart_upload(Bucket=BUCKET, Key=key + "-mp",
                                      ChecksumAlgorithm=algo.upper())
    uid = uid["UploadId"]
    p = signed_trailer_put(srv, key + "-mp", data, algo,
                           query={"partNumber": "1", "uploadId": uid})
    assert p.status == 200, p
    # Raw ListParts: Debian 12's botocore does not know ChecksumCRC64NVME.
    lp = H.raw(srv, "GET", path(key + "-mp"), query={"uploadId": uid})
    tag = {"crc32c": "ChecksumCRC32C", "crc64nvme": "ChecksumCRC64NVME",
           "sha256": "ChecksumSHA256"}[algo]
    part = H.ET.fromstring(lp.body).find(f"{S3_NS}Part")
    assert part.find(f"{S3_NS}{tag}").text == value(algo, data)
    s3c.abort_multipart_upload(Bucket=BUCKET, Key=key + "-mp", UploadId=uid)


def test_wrong_trailing_checksum_stores_nothing(srv, s3c):
    data = b"trailing" * 100
    r = unsigned_trailer_put(srv, "trailer-bad", data, "crc64nvme",
                             val=value("crc64nvme", data + b"!"))
    assert_error(r, 400, "BadDigest")
    expect_error("404", 404, s3c.head_object, Bucket=BUCKET, Key="trailer-bad")


def test_wrong_checksum_is_bad_digest(srv, s3c):
    for algo in ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]:
        r = raw_put(srv, "bad", b"data", {f"x-amz-checksum-{algo}":
                                          value(algo, b"other")})
        assert_error(r, 400, "BadDigest")
    expect_error("404", 404, s3c.head_object, Bucket=BUCKET, Key="bad")


@pytest.mark.parametrize("headers", [
    {"x-amz-checksum-crc32": "not base64!"},
    {"x-amz-checksum-crc32": ""},
    {"x-amz-checksum-crc64nvme": value("crc32", b"data")},   # wrong length
    {"x-amz-checksum-sha256": value("sha1", b"data")},
    {"x-amz-checksum-crc32": value("crc32", b"data"),
     "x-amz-checksum-sha1": value("sha1", b"data")},          # two of them
    {"x-amz-sdk-checksum-algorithm": "SHA256",
     "x-amz-checksum-crc32": value("crc32", b"data")},       # not the one named
    {"x-amz-sdk-checksum-algorithm": "CRC32"},               # named, not sent
    {"x-amz-sdk-checksum-algorithm": "MD5",
     "x-amz-checksum-crc32": value("crc32", b"data")},       # unknown
])
def test_malformed_or_mismatched_checksum_headers(srv, s3c, headers):
    r = raw_put(srv, "malformed", b"data", headers)
    assert_error(r, 400, "InvalidRequest")
    expect_error("404", 404, s3c.head_object, Bucket=BUCKET, Key="malformed")


def test_overwrite_without_checksum_drops_it(s3c):
    s3c.put_object(Bucket=BUCKET, Key="over", Body=b"a",
                  ChecksumCRC32=value("crc32", b"a"))
    s3c.put_object(Bucket=BUCKET, Key="over", Body=b"b")
    h = s3c.head_object(Bucket=BUCKET, Key="over", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in h


# -- multipart ---------------------------------------------------------------------

def parts_data():
    return [bytes([i]) * (5 * MiB) + b"p%d" % i for i in range(2)] + [b"tail"]


@pytest.mark.parametrize("algo", BOTO_ALGOS)
def test_composite_multipart(s3c, algo):
    name = BOTO_NAME[algo]
    key = f"mp-composite-{algo}"
    parts = parts_data()
    uid = s3c.create_multipart_upload(Bucket=BUCKET, Key=key,
                                     ChecksumAlgorithm=algo.upper())
    assert uid["ChecksumAlgorithm"] == algo.upper()
    uid = uid["UploadId"]
    done = []
    for n, body in enumerate(parts, 1):
        r = s3c.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n,
                           Body=body, ChecksumAlgorithm=algo.upper())
        assert r[name] == value(algo, body)
        done.append({"PartNumber": n, "ETag": r["ETag"], name: r[name]})
    lp = s3c.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert lp["ChecksumAlgorithm"] == algo.upper()
    assert [p[name] for p in lp["Parts"]] == [value(algo, p) for p in parts]
    c = s3c.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                     MultipartUpload={"Parts": done})
    want = composite(algo, parts)
    assert c[name] == want
    h = s3c.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert h[name] == want
    assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == \
        "COMPOSITE"
    a = s3c.get_object_attributes(Bucket=BUCKET, Key=key,
                                 ObjectAttributes=["Checksum", "ObjectParts"])
    assert a["Checksum"][name] == want
    assert a["ObjectParts"]["TotalPartsCount"] == 3


def test_upload_part_without_checksum_gets_kuras_own(s3c):
    key = "mp-computed"
    uid = s3c.create_multipart_upload(Bucket=BUCKET, Key=key,
                                     ChecksumAlgorithm="CRC32C")["UploadId"]
    s3c.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1,
                   Body=b"no checksum sent")
    lp = s3c.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert lp["Parts"][0]["ChecksumCRC32C"] == value("crc32c",
                                                     b"no checksum sent")
    s3c.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)


def test_composite_complete_needs_every_part_checksum(s3c):
    key = "mp-missing"
    parts = parts_data()[:2]
    uid = s3c.create_multipart_upload(Bucket=BUCKET, Key=key,
                                     ChecksumAlgorithm="SHA1")["UploadId"]
    done = []
    for n, body in enumerate(parts, 1):
        r = s3c.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n,
                           Body=body, ChecksumAlgorithm="SHA1")
        done.append({"PartNumber": n, "ETag": r["ETag"],
                     "ChecksumSHA1": r["ChecksumSHA1"]})
    missing = [dict(done[0]), {k: v for k, v in done[1].items()
                               if k != "ChecksumSHA1"}]
    expect_error("InvalidRequest", 400, s3c.complete_multipart_upload,
                 Bucket=BUCKET, Key=key, UploadId=uid,
                 MultipartUpload={"Parts": missing})
    wrong = [dict(done[0]), dict(done[1], ChecksumSHA1=value("sha1", b"x"))]
    expect_error("InvalidPart", 400, s3c.complete_multipart_upload,
                 Bucket=BUCKET, Key=key, UploadId=uid,
                 MultipartUpload={"Parts": wrong})
    c = s3c.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                     MultipartUpload={"Parts": done})
    assert c["ChecksumSHA1"] == composite("sha1", parts)


def test_upload_part_with_another_algorithm_is_refused(s3c):
    key = "mp-mismatch"
    uid = s3c.create_multipart_upload(Bucket=BUCKET, Key=key,
                                     ChecksumAlgorithm="CRC32")["UploadId"]
    expect_error("InvalidRequest", 400, s3c.upload_part, Bucket=BUCKET,
                 Key=key, UploadId=uid, PartNumber=1, Body=b"x",
                 ChecksumAlgorithm="SHA256")
    s3c.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)


def raw_create(srv, key, headers):
    r = H.raw(srv, "POST", path(key), query="uploads", headers=headers)
    if r.status != 200:
        return r, None
    root = H.ET.fromstring(r.body)
    return r, root.find(f"{S3_NS}UploadId").text


def raw_part(srv, key, uid, n, body, headers=None):
    return H.raw(srv, "PUT", path(key),
                 query={"partNumber": str(n), "uploadId": uid},
                 headers=headers or {}, body=body)


def complete_doc(parts):
    xml = "<CompleteMultipartUpload>"
    for n, etag, extra in parts:
        xml += f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag>{extra}</Part>"
    return (xml + "</CompleteMultipartUpload>").encode()


@pytest.mark.parametrize("algo,typ", [("crc64nvme", None),
                                      ("crc32", "FULL_OBJECT"),
                                      ("crc32c", "FULL_OBJECT")])
def test_full_object_multipart(srv, s3c, algo, typ):
    key = f"mp-full-{algo}"
    parts = parts_data()
    hdrs = {"x-amz-checksum-algorithm": algo.upper()}
    if typ:
        hdrs["x-amz-checksum-type"] = typ
    r, uid = raw_create(srv, key, hdrs)
    assert r.status == 200, r
    assert r.header("x-amz-checksum-type") == "FULL_OBJECT"
    done = []
    for n, body in enumerate(parts, 1):
        # The first with the client's value, the others computed by kura.
        h = {f"x-amz-checksum-{algo}": value(algo, body)} if n == 1 else {}
        p = raw_part(srv, key, uid, n, body, h)
        assert p.status == 200, p
        assert p.header(f"x-amz-checksum-{algo}") == value(algo, body)
        done.append((n, p.header("ETag"), ""))
    whole = value(algo, b"".join(parts))
    bad = H.raw(srv, "POST", path(key), query={"uploadId": uid},
                headers={f"x-amz-checksum-{algo}": value(algo, b"nope"),
                         "x-amz-checksum-type": "FULL_OBJECT"},
                body=complete_doc(done))
    assert_error(bad, 400, "BadDigest")
    wrong_type = H.raw(srv, "POST", path(key), query={"uploadId": uid},
                       headers={"x-amz-checksum-type": "COMPOSITE"},
                       body=complete_doc(done))
    assert_error(wrong_type, 400, "InvalidRequest")
    c = H.raw(srv, "POST", path(key), query={"uploadId": uid},
              headers={f"x-amz-checksum-{algo}": whole,
                       "x-amz-checksum-type": "FULL_OBJECT"},
              body=complete_doc(done))
    assert c.status == 200, c
    root = H.ET.fromstring(c.body)
    tag = {"crc64nvme": "ChecksumCRC64NVME", "crc32": "ChecksumCRC32",
           "crc32c": "ChecksumCRC32C"}[algo]
    assert root.find(f"{S3_NS}{tag}").text == whole
    assert root.find(f"{S3_NS}ChecksumType").text == "FULL_OBJECT"
    h = raw_head(srv, key)
    assert h.header(f"x-amz-checksum-{algo}") == whole
    assert h.header("x-amz-checksum-type") == "FULL_OBJECT"
    assert s3c.get_object(Bucket=BUCKET, Key=key)["Body"].read() == \
        b"".join(parts)


@pytest.mark.parametrize("headers", [
    {"x-amz-checksum-algorithm": "SHA1", "x-amz-checksum-type": "FULL_OBJECT"},
    {"x-amz-checksum-algorithm": "SHA256",
     "x-amz-checksum-type": "FULL_OBJECT"},
    {"x-amz-checksum-algorithm": "CRC64NVME",
     "x-amz-checksum-type": "COMPOSITE"},
    {"x-amz-checksum-type": "COMPOSITE"},
    {"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "PARTIAL"},
    {"x-amz-checksum-algorithm": "MD5"},
])
def test_create_refuses_what_s3_does_not_allow(srv, headers):
    r, _ = raw_create(srv, "mp-refused", headers)
    assert_error(r, 400, "InvalidRequest")


def test_complete_without_declared_algorithm_refuses_one(srv, s3c):
    key = "mp-undeclared"
    uid = s3c.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    p = s3c.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1,
                       Body=b"x", ChecksumCRC32=value("crc32", b"x"))
    # The part's checksum is verified and listed all the same.
    lp = s3c.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert lp["Parts"][0]["ChecksumCRC32"] == value("crc32", b"x")
    c = H.raw(srv, "POST", path(key), query={"uploadId": uid},
              headers={"x-amz-checksum-crc32": value("crc32", b"x")},
              body=complete_doc([(1, p["ETag"], "")]))
    assert_error(c, 400, "InvalidRequest")
    s3c.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    h = s3c.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in h


# -- GetObjectAttributes -------------------------------------------------------------

def test_get_object_attributes_simple(s3c):
    data = b"attributes" * 10
    r = s3c.put_object(Bucket=BUCKET, Key="attr", Body=data,
                      ChecksumSHA256=value("sha256", data))
    a = s3c.get_object_attributes(
        Bucket=BUCKET, Key="attr",
        ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass",
                          "ObjectSize"])
    assert a["ETag"] == r["ETag"].strip('"')
    assert a["Checksum"]["ChecksumSHA256"] == value("sha256", data)
    assert a["StorageClass"] == "STANDARD"
    assert a["ObjectSize"] == len(data)
    assert "ObjectParts" not in a          # not a multipart object
    assert "LastModified" in a
    only = s3c.get_object_attributes(Bucket=BUCKET, Key="attr",
                                    ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == len(data) and "ETag" not in only
    none = s3c.put_object(Bucket=BUCKET, Key="attr-plain", Body=b"x")
    a = s3c.get_object_attributes(Bucket=BUCKET, Key="attr-plain",
                                 ObjectAttributes=["ETag", "Checksum"])
    assert "Checksum" not in a and a["ETag"] == none["ETag"].strip('"')


def test_get_object_attributes_parts_paging(s3c):
    key = "attr-mp"
    parts = parts_data()
    uid = s3c.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    done = []
    for n, body in zip((2, 5, 9), parts):
        e = s3c.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n,
                           Body=body)["ETag"]
        done.append({"PartNumber": n, "ETag": e})
    s3c.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                 MultipartUpload={"Parts": done})
    a = s3c.get_object_attributes(Bucket=BUCKET, Key=key,
                                 ObjectAttributes=["ObjectParts"], MaxParts=2)
    op = a["ObjectParts"]
    assert op["TotalPartsCount"] == 3 and op["IsTruncated"] is True
    assert [(p["PartNumber"], p["Size"]) for p in op["Parts"]] == \
        [(2, len(parts[0])), (5, len(parts[1]))]
    assert op["NextPartNumberMarker"] == 5 and op["MaxParts"] == 2
    b = s3c.get_object_attributes(Bucket=BUCKET, Key=key,
                                 ObjectAttributes=["ObjectParts"],
                                 PartNumberMarker=5)["ObjectParts"]
    assert [p["PartNumber"] for p in b["Parts"]] == [9]
    assert b["IsTruncated"] is False and b["PartNumberMarker"] == 5


def test_get_object_attributes_errors(srv, s3c):
    s3c.put_object(Bucket=BUCKET, Key="attr-err", Body=b"x")
    r = H.raw(srv, "GET", path("attr-err"), query="attributes")
    assert_error(r, 400, "InvalidRequest")
    r = H.raw(srv, "GET", path("attr-err"), query="attributes",
              headers={"x-amz-object-attributes": "ETag,Colour"})
    assert_error(r, 400, "InvalidArgument")
    r = H.raw(srv, "GET", path("no-such-key"), query="attributes",
              headers={"x-amz-object-attributes": "ETag"})
    assert_error(r, 404, "NoSuchKey")
    r = H.raw(srv, "PUT", path("attr-err"), query="attributes", body=b"")
    assert_error(r, 501, "NotImplemented")


# -- sealed, never in the clear ------------------------------------------------------

def test_checksums_are_not_in_the_clear_at_rest(srv, s3c):
    data = b"a secret whose checksum must not be readable" * 50
    algos = ["crc32", "crc32c", "sha1", "sha256"]
    for algo in algos:
        s3c.put_object(Bucket=BUCKET, Key=f"rest-{algo}", Body=data,
                      **{BOTO_NAME[algo]: value(algo, data)})
    r = raw_put(srv, "rest-crc64", data,
                {"x-amz-checksum-crc64nvme": value("crc64nvme", data)})
    assert r.status == 200
    # Everything but the blobs (ciphertext, where a 4-byte CRC could turn
    # up by chance): meta.db and its WAL, the audit log, the logs.
    blobs = set(H.blob_files(srv.data_dir))
    files = [f for f in H.all_files(srv.workdir) if f not in blobs]
    assert any(f.endswith("meta.db") for f in files)
    for algo in algos + ["crc64nvme"]:
        for needle in (digest(algo, data), value(algo, data).encode()):
            assert H.files_containing(files, needle) == [], algo


# -- copies --------------------------------------------------------------------------

def test_copy_computes_its_own_checksum(s3c):
    data = b"copy me" * 1000
    s3c.put_object(Bucket=BUCKET, Key="copy-src", Body=data,
                   ChecksumCRC32C=value("crc32c", data))
    r = s3c.copy_object(Bucket=BUCKET, Key="copy-dst",
                        CopySource={"Bucket": BUCKET, "Key": "copy-src"})
    assert r["CopyObjectResult"]["ChecksumCRC32C"] == value("crc32c", data)
    h = s3c.head_object(Bucket=BUCKET, Key="copy-dst", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32C"] == value("crc32c", data)
    # Another algorithm asked for; none asked for and none at the source.
    s3c.copy_object(Bucket=BUCKET, Key="copy-sha",
                    CopySource={"Bucket": BUCKET, "Key": "copy-src"},
                    ChecksumAlgorithm="SHA256")
    h = s3c.head_object(Bucket=BUCKET, Key="copy-sha", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == value("sha256", data)
    assert "ChecksumCRC32C" not in h
    s3c.put_object(Bucket=BUCKET, Key="copy-plain", Body=data)
    s3c.copy_object(Bucket=BUCKET, Key="copy-plain2",
                    CopySource={"Bucket": BUCKET, "Key": "copy-plain"})
    h = s3c.head_object(Bucket=BUCKET, Key="copy-plain2",
                        ChecksumMode="ENABLED")
    assert not [k for k in h if k.startswith("Checksum")]


def test_copy_of_a_composite_object_is_a_full_object_value(srv, s3c):
    test_composite_multipart(s3c, "sha1")
    src = "mp-composite-sha1"
    whole = s3c.get_object(Bucket=BUCKET, Key=src)["Body"].read()
    s3c.copy_object(Bucket=BUCKET, Key="copy-of-composite",
                    CopySource={"Bucket": BUCKET, "Key": src})
    h = raw_head(srv, "copy-of-composite")
    assert h.header("x-amz-checksum-sha1") == value("sha1", whole)
    assert h.header("x-amz-checksum-type") == "FULL_OBJECT"


def test_upload_part_copy_gets_the_uploads_checksum(s3c):
    data = b"q" * (5 * MiB)
    s3c.put_object(Bucket=BUCKET, Key="upc-src", Body=data)
    key = "upc-dst"
    uid = s3c.create_multipart_upload(Bucket=BUCKET, Key=key,
                                      ChecksumAlgorithm="CRC32")["UploadId"]
    r = s3c.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=uid,
                             PartNumber=1,
                             CopySource={"Bucket": BUCKET, "Key": "upc-src"})
    assert r["CopyPartResult"]["ChecksumCRC32"] == value("crc32", data)
    p2 = s3c.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=2,
                         Body=b"end", ChecksumAlgorithm="CRC32")
    c = s3c.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=uid,
        MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": r["CopyPartResult"]["ETag"],
             "ChecksumCRC32": r["CopyPartResult"]["ChecksumCRC32"]},
            {"PartNumber": 2, "ETag": p2["ETag"],
             "ChecksumCRC32": p2["ChecksumCRC32"]}]})
    assert c["ChecksumCRC32"] == composite("crc32", [data, b"end"])


# -- a rotation re-seals checksums with the ETags ----------------------------------------

fast = server_fixture("[storage]\nbackground_interval = 1\n"
                      "[keys]\nrotation_grace = 1\n")


def test_checksums_survive_the_reseal_after_a_rotation(fast):
    s3 = fast.client()
    s3.create_bucket(Bucket="rot")
    data = b"rotate me" * 100
    s3.put_object(Bucket="rot", Key="simple", Body=data,
                  ChecksumSHA1=value("sha1", data))
    parts = parts_data()[:2]
    done_uid = s3.create_multipart_upload(Bucket="rot", Key="done",
                                          ChecksumAlgorithm="CRC32C")["UploadId"]
    done = []
    for n, body in enumerate(parts, 1):
        r = s3.upload_part(Bucket="rot", Key="done", UploadId=done_uid,
                           PartNumber=n, Body=body, ChecksumAlgorithm="CRC32C")
        done.append({"PartNumber": n, "ETag": r["ETag"],
                     "ChecksumCRC32C": r["ChecksumCRC32C"]})
    s3.complete_multipart_upload(Bucket="rot", Key="done", UploadId=done_uid,
                                 MultipartUpload={"Parts": done})
    # An upload in progress: its declared algorithm and its part's checksum
    # are in seals too.
    uid = s3.create_multipart_upload(Bucket="rot", Key="inflight",
                                     ChecksumAlgorithm="SHA256")["UploadId"]
    p1 = s3.upload_part(Bucket="rot", Key="inflight", UploadId=uid,
                        PartNumber=1, Body=b"late", ChecksumAlgorithm="SHA256")

    r = fast.cli("key", "rotate", "bucket/rot")
    assert r.returncode == 0, r.stderr

    def old_version_gone():
        line = [ln for ln in fast.cli("key", "list").stdout.splitlines()
                if ln.startswith("bucket/rot ")][0]
        assert " destroyed" in line.split("2:")[0], line
    H.eventually(old_version_gone, timeout=30)

    h = s3.head_object(Bucket="rot", Key="simple", ChecksumMode="ENABLED")
    assert h["ChecksumSHA1"] == value("sha1", data)
    h = s3.head_object(Bucket="rot", Key="done", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32C"] == composite("crc32c", parts)
    lp = s3.list_parts(Bucket="rot", Key="inflight", UploadId=uid)
    assert lp["ChecksumAlgorithm"] == "SHA256"
    assert lp["Parts"][0]["ChecksumSHA256"] == value("sha256", b"late")
    c = s3.complete_multipart_upload(
        Bucket="rot", Key="inflight", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["ETag"],
                                    "ChecksumSHA256": p1["ChecksumSHA256"]}]})
    assert c["ChecksumSHA256"] == composite("sha256", [b"late"])


# -- aws-cli (Debian 12's) ------------------------------------------------------------

def test_aws_cli_checksums_and_attributes(srv, aws_module, tmp_path):
    from conftest import have_aws_cli
    if not have_aws_cli():
        pytest.skip("aws CLI not installed")
    import json
    data = b"aws cli body " * 500
    f = tmp_path / "body"
    f.write_bytes(data)
    put = aws_module("s3api", "put-object", "--bucket", BUCKET, "--key",
                     "cli-obj", "--body", str(f), "--checksum-algorithm",
                     "SHA256", check=True)
    assert json.loads(put.stdout)["ChecksumSHA256"] == value("sha256", data)
    head = aws_module("s3api", "head-object", "--bucket", BUCKET, "--key",
                      "cli-obj", "--checksum-mode", "ENABLED", check=True)
    assert json.loads(head.stdout)["ChecksumSHA256"] == value("sha256", data)
    attrs = aws_module("s3api", "get-object-attributes", "--bucket", BUCKET,
                       "--key", "cli-obj", "--object-attributes", "ETag",
                       "Checksum", "ObjectSize", check=True)
    a = json.loads(attrs.stdout)
    assert a["Checksum"]["ChecksumSHA256"] == value("sha256", data)
    assert a["ObjectSize"] == len(data)
    bad = aws_module("s3api", "put-object", "--bucket", BUCKET, "--key",
                     "cli-bad", "--body", str(f), "--checksum-crc32",
                     value("crc32", b"other"))
    assert bad.returncode != 0 and "BadDigest" in bad.stderr


# -- a current SDK's default checksums (botocore 1.36+, from Debian 13) ----------------

NEW_SDK_SCRIPT = r'''
import base64, io, os
import boto3, botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

P = PARAMS
cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
             retries={"total_max_attempts": 1})
c = boto3.client("s3", endpoint_url=P["endpoint"], region_name="us-east-1",
                 aws_access_key_id=P["access"], aws_secret_access_key=P["secret"],
                 config=cfg)
out = {"version": botocore.__version__}
b = P["bucket"]

def sums(resp):
    return {k: v for k, v in resp.items() if k.startswith("Checksum")}

data = os.urandom(100000)
out["data"] = base64.b64encode(data).decode()
# No checksum asked for: the SDK adds its default (CRC32) by itself.
r = c.put_object(Bucket=b, Key="new-sdk", Body=data)
out["put"] = sums(r)
out["head"] = sums(c.head_object(Bucket=b, Key="new-sdk", ChecksumMode="ENABLED"))
# The SDK asks for the checksum and checks the body against it.
g = c.get_object(Bucket=b, Key="new-sdk")
out["get"] = sums(g)
out["get_ok"] = g["Body"].read() == data

# s3transfer's multipart upload with the defaults, then its download.
big = os.urandom(11 * 1024 * 1024)
out["big"] = [base64.b64encode(big[i:i + 5 * 1024 * 1024]).decode()
              for i in range(0, len(big), 5 * 1024 * 1024)]
tc = TransferConfig(multipart_threshold=5 * 1024 * 1024,
                    multipart_chunksize=5 * 1024 * 1024, use_threads=False)
c.upload_fileobj(io.BytesIO(big), b, "new-sdk-mp", Config=tc)
out["mp_head"] = sums(c.head_object(Bucket=b, Key="new-sdk-mp",
                                    ChecksumMode="ENABLED"))
sink = io.BytesIO()
c.download_fileobj(b, "new-sdk-mp", sink, Config=tc)
out["mp_ok"] = sink.getvalue() == big

# A full-object CRC32 multipart upload, as the SDK builds it.
u = c.create_multipart_upload(Bucket=b, Key="new-sdk-full",
                              ChecksumAlgorithm="CRC32",
                              ChecksumType="FULL_OBJECT")
out["create"] = sums(u)
parts = []
for n, i in enumerate(range(0, len(big), 5 * 1024 * 1024), 1):
    p = c.upload_part(Bucket=b, Key="new-sdk-full", UploadId=u["UploadId"],
                      PartNumber=n, Body=big[i:i + 5 * 1024 * 1024],
                      ChecksumAlgorithm="CRC32")
    parts.append({"PartNumber": n, "ETag": p["ETag"],
                  "ChecksumCRC32": p["ChecksumCRC32"]})
done = c.complete_multipart_upload(Bucket=b, Key="new-sdk-full",
                                   UploadId=u["UploadId"],
                                   MultipartUpload={"Parts": parts},
                                   ChecksumType="FULL_OBJECT")
out["full"] = sums(done)
attrs = c.get_object_attributes(Bucket=b, Key="new-sdk-full",
                                ObjectAttributes=["Checksum", "ObjectParts"])
out["attrs"] = {"Checksum": attrs.get("Checksum"),
                "PartsCount": attrs["ObjectParts"]["TotalPartsCount"]}

print(json.dumps(out))
'''


def test_current_sdk_default_checksums_round_trip(srv):
    from conftest import kura_bin
    from newsdk_helpers import run_with_sdk, trixie_sdk
    site = trixie_sdk(kura_bin().parent)
    out = run_with_sdk(site, NEW_SDK_SCRIPT, endpoint=srv.endpoint,
                       access=srv.access_key, secret=srv.secret_key,
                       bucket=BUCKET)
    major, minor = (int(x) for x in out["version"].split(".")[:2])
    assert (major, minor) >= (1, 36), out["version"]
    data = base64.b64decode(out["data"])
    crc = value("crc32", data)
    assert out["put"]["ChecksumCRC32"] == crc
    assert out["head"] == {"ChecksumCRC32": crc, "ChecksumType": "FULL_OBJECT"}
    assert out["get"]["ChecksumCRC32"] == crc and out["get_ok"]

    big_parts = [base64.b64decode(p) for p in out["big"]]
    big = b"".join(big_parts)
    assert out["mp_ok"]
    mp = out["mp_head"]
    # s3transfer declares CRC32 for its uploads: a composite or a
    # full-object value, whichever it asked for, and the right one.
    if mp.get("ChecksumType") == "COMPOSITE":
        assert mp["ChecksumCRC32"] == composite("crc32", big_parts)
    else:
        assert mp == {"ChecksumCRC32": value("crc32", big),
                      "ChecksumType": "FULL_OBJECT"}, mp

    assert out["create"] == {"ChecksumAlgorithm": "CRC32",
                             "ChecksumType": "FULL_OBJECT"}
    assert out["full"] == {"ChecksumCRC32": value("crc32", big),
                           "ChecksumType": "FULL_OBJECT"}
    assert out["attrs"] == {"Checksum": {"ChecksumCRC32": value("crc32", big),
                                         "ChecksumType": "FULL_OBJECT"},
                            "PartsCount": 3}


CRC64_SCRIPT = r'''
import base64, os
import boto3, botocore
from botocore.config import Config

P = PARAMS
cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
             retries={"total_max_attempts": 1})
c = boto3.client("s3", endpoint_url=P["endpoint"], region_name="us-east-1",
                 aws_access_key_id=P["access"], aws_secret_access_key=P["secret"],
                 config=cfg)
b = P["bucket"]
out = {}

def sums(resp):
    return {k: v for k, v in resp.items() if k.startswith("Checksum")}

data = os.urandom(100000)
out["data"] = base64.b64encode(data).decode()
# CRC64NVME needs awscrt with crc64nvme, which Debian 12's lacks.
try:
    r = c.put_object(Bucket=b, Key="new-sdk-crc64", Body=data,
                     ChecksumAlgorithm="CRC64NVME")
    out["crc64"] = sums(r)
    out["crc64_head"] = sums(c.head_object(Bucket=b, Key="new-sdk-crc64",
                                           ChecksumMode="ENABLED"))
except (botocore.exceptions.MissingDependencyException,
        botocore.exceptions.FlexibleChecksumError) as e:
    out["crc64_skip"] = str(e)
print(json.dumps(out))
'''


def test_current_sdk_crc64nvme(srv):
    from conftest import kura_bin
    from newsdk_helpers import run_with_sdk, trixie_sdk
    site = trixie_sdk(kura_bin().parent)
    out = run_with_sdk(site, CRC64_SCRIPT, endpoint=srv.endpoint,
                       access=srv.access_key, secret=srv.secret_key,
                       bucket=BUCKET)
    if "crc64_skip" in out:
        pytest.skip("CRC64NVME in botocore needs awscrt with crc64nvme "
                    f"(Debian 12's has none): {out['crc64_skip']}")
    data = base64.b64decode(out["data"])
    assert out["crc64"]["ChecksumCRC64NVME"] == value("crc64nvme", data)
    assert out["crc64_head"] == {
        "ChecksumCRC64NVME": value("crc64nvme", data),
        "ChecksumType": "FULL_OBJECT"}


# -- the audit log's row digests cover checksums ---------------------------------------

def test_tagging_keeps_the_checksum_and_the_audit_agrees(srv, s3c):
    data = b"tag me" * 100
    s3c.put_object(Bucket=BUCKET, Key="tagged", Body=data,
                   ChecksumCRC32=value("crc32", data))
    s3c.put_object_tagging(Bucket=BUCKET, Key="tagged",
                           Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    h = s3c.head_object(Bucket=BUCKET, Key="tagged", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == value("crc32", data)
    # Every object row this module wrote (checksums of all kinds) against
    # the row digests the audit log recorded when they were written.
    r = srv.cli("audit", "verify", "--against-meta")
    assert r.returncode == 0, r.stdout + r.stderr


# -- SSE-KMS and SSE-C: the stored digest is tied to the data's key -------------------

kms_srv = server_fixture("[server]\nallow_ssec_over_http = true\n",
                         scope="module")


@pytest.fixture(scope="module")
def kms(kms_srv):
    s3 = kms_srv.client()
    s3.create_bucket(Bucket="enc")
    r = kms_srv.cli("key", "create", "sumkey")
    assert r.returncode == 0, r.stderr
    return s3


KMS = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "sumkey"}


def ssec_args(key):
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def ssec_headers(key):
    return {"x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": b64(key),
            "x-amz-server-side-encryption-customer-key-MD5":
                b64(hashlib.md5(key).digest())}


def test_sse_kms_checksums_round_trip(kms_srv, kms):
    data = b"kms protected" * 700
    r = kms.put_object(Bucket="enc", Key="k", Body=data,
                       ChecksumSHA256=value("sha256", data), **KMS)
    assert r["ChecksumSHA256"] == value("sha256", data)
    h = kms.head_object(Bucket="enc", Key="k", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == value("sha256", data)
    g = kms.get_object(Bucket="enc", Key="k", ChecksumMode="ENABLED")
    assert g["ChecksumSHA256"] == value("sha256", data)
    assert g["Body"].read() == data
    a = kms.get_object_attributes(Bucket="enc", Key="k",
                                  ObjectAttributes=["Checksum"])
    assert a["Checksum"]["ChecksumSHA256"] == value("sha256", data)
    c = kms.copy_object(Bucket="enc", Key="k-copy",
                        CopySource={"Bucket": "enc", "Key": "k"}, **KMS)
    assert c["CopyObjectResult"]["ChecksumSHA256"] == value("sha256", data)
    h = kms.head_object(Bucket="enc", Key="k-copy", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == value("sha256", data)

    parts = parts_data()
    uid = kms.create_multipart_upload(Bucket="enc", Key="mp",
                                      ChecksumAlgorithm="CRC32",
                                      **KMS)["UploadId"]
    done = []
    for n, body in enumerate(parts, 1):
        p = kms.upload_part(Bucket="enc", Key="mp", UploadId=uid, PartNumber=n,
                            Body=body, ChecksumAlgorithm="CRC32")
        assert p["ChecksumCRC32"] == value("crc32", body)
        done.append({"PartNumber": n, "ETag": p["ETag"],
                     "ChecksumCRC32": p["ChecksumCRC32"]})
    lp = kms.list_parts(Bucket="enc", Key="mp", UploadId=uid)
    assert [p["ChecksumCRC32"] for p in lp["Parts"]] == \
        [value("crc32", p) for p in parts]
    bad = [dict(done[0], ChecksumCRC32=value("crc32", b"x"))] + done[1:]
    expect_error("InvalidPart", 400, kms.complete_multipart_upload,
                 Bucket="enc", Key="mp", UploadId=uid,
                 MultipartUpload={"Parts": bad})
    c = kms.complete_multipart_upload(Bucket="enc", Key="mp", UploadId=uid,
                                      MultipartUpload={"Parts": done})
    assert c["ChecksumCRC32"] == composite("crc32", parts)
    h = kms.head_object(Bucket="enc", Key="mp", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == composite("crc32", parts)

    # Without the KMS key the checksum cannot be read: it is tied to the
    # data's key, not only to the seal's (the bucket's own key).
    assert kms_srv.cli("key", "disable", "sumkey").returncode == 0

    def refused():
        expect_error("400", 400, kms.head_object,   # HEAD: no error body
                     Bucket="enc", Key="k", ChecksumMode="ENABLED")
        expect_error("KMS.DisabledException", 400, kms.get_object_attributes,
                     Bucket="enc", Key="k", ObjectAttributes=["Checksum"])
    H.eventually(refused, timeout=10)
    # What needs no checksum still answers.
    assert kms.get_object_attributes(Bucket="enc", Key="k",
                                     ObjectAttributes=["ObjectSize"])[
        "ObjectSize"] == len(data)
    assert "ChecksumSHA256" not in kms.head_object(Bucket="enc", Key="k")
    assert kms_srv.cli("key", "enable", "sumkey").returncode == 0
    H.eventually(lambda: kms.head_object(Bucket="enc", Key="k",
                                         ChecksumMode="ENABLED"), timeout=10)


def test_sse_kms_full_object_multipart(kms_srv, kms):
    key = "mp-full"
    parts = parts_data()
    r, uid = raw_create_in(kms_srv, "enc", key, {
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "sumkey",
        "x-amz-checksum-algorithm": "CRC64NVME"})
    assert r.status == 200, r
    done = []
    for n, body in enumerate(parts, 1):
        p = H.raw(kms_srv, "PUT", H.key_path("enc", key),
                  query={"partNumber": str(n), "uploadId": uid}, body=body)
        assert p.header("x-amz-checksum-crc64nvme") == \
            value("crc64nvme", body), p
        done.append((n, p.header("ETag"), ""))
    whole = value("crc64nvme", b"".join(parts))
    c = H.raw(kms_srv, "POST", H.key_path("enc", key), query={"uploadId": uid},
              headers={"x-amz-checksum-crc64nvme": whole},
              body=complete_doc(done))
    assert c.status == 200, c
    h = H.raw(kms_srv, "HEAD", H.key_path("enc", key),
              headers={"x-amz-checksum-mode": "ENABLED"})
    assert h.header("x-amz-checksum-crc64nvme") == whole


def raw_create_in(srv, bucket, key, headers):
    r = H.raw(srv, "POST", H.key_path(bucket, key), query="uploads",
              headers=headers)
    if r.status != 200:
        return r, None
    return r, H.ET.fromstring(r.body).find(f"{S3_NS}UploadId").text


def test_sse_c_checksums_need_the_customer_key(kms_srv, kms):
    ck = os.urandom(32)
    data = b"customer keyed" * 300
    r = kms.put_object(Bucket="enc", Key="c", Body=data,
                       ChecksumCRC32C=value("crc32c", data), **ssec_args(ck))
    assert r["ChecksumCRC32C"] == value("crc32c", data)
    h = kms.head_object(Bucket="enc", Key="c", ChecksumMode="ENABLED",
                        **ssec_args(ck))
    assert h["ChecksumCRC32C"] == value("crc32c", data)
    # Raw: Debian 12's botocore does not encode SSE-C keys for this one.
    a = H.raw(kms_srv, "GET", H.key_path("enc", "c"), query="attributes",
              headers={**ssec_headers(ck),
                       "x-amz-object-attributes": "Checksum"})
    assert H.ET.fromstring(a.body).find(
        f"{S3_NS}Checksum/{S3_NS}ChecksumCRC32C").text == value("crc32c", data)
    a = H.raw(kms_srv, "GET", H.key_path("enc", "c"), query="attributes",
              headers={"x-amz-object-attributes": "Checksum"})
    assert a.status == 400, a
    expect_error("400", 400, kms.head_object, Bucket="enc", Key="c",
                 ChecksumMode="ENABLED")

    key = "c-mp"
    parts = parts_data()[:2]
    r, uid = raw_create_in(kms_srv, "enc", key, {
        **ssec_headers(ck), "x-amz-checksum-algorithm": "SHA1"})
    assert r.status == 200, r
    done = []
    for n, body in enumerate(parts, 1):
        p = H.raw(kms_srv, "PUT", H.key_path("enc", key),
                  query={"partNumber": str(n), "uploadId": uid},
                  headers={**ssec_headers(ck),
                           "x-amz-checksum-sha1": value("sha1", body)},
                  body=body)
        assert p.status == 200, p
        done.append((n, p.header("ETag"),
                     f"<ChecksumSHA1>{value('sha1', body)}</ChecksumSHA1>"))
    path = H.key_path("enc", key)
    lp = H.raw(kms_srv, "GET", path, query={"uploadId": uid})
    assert b"ChecksumSHA1>" not in lp.body.replace(b"<ChecksumAlgorithm>", b"")
    lp = H.raw(kms_srv, "GET", path, query={"uploadId": uid},
               headers=ssec_headers(ck))
    shown = [e.text for e in H.ET.fromstring(lp.body).iter(
        f"{S3_NS}ChecksumSHA1")]
    assert shown == [value("sha1", p) for p in parts]
    # Completing needs the key to read the parts' checksums.
    c = H.raw(kms_srv, "POST", path, query={"uploadId": uid},
              body=complete_doc(done))
    assert c.status == 400, c
    c = H.raw(kms_srv, "POST", path, query={"uploadId": uid},
              headers=ssec_headers(ck), body=complete_doc(done))
    assert c.status == 200, c
    got = H.ET.fromstring(c.body).find(f"{S3_NS}ChecksumSHA1").text
    assert got == composite("sha1", parts)
    h = kms.head_object(Bucket="enc", Key=key, ChecksumMode="ENABLED",
                        **ssec_args(ck))
    assert h["ChecksumSHA1"] == composite("sha1", parts)

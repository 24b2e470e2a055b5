"""Object operations: PutObject (Content-MD5, stored headers, metadata),
GetObject (ranges, conditionals, response-* overrides), HeadObject,
DeleteObject, overwrite, sizes around the segment size, awkward keys, and
multi-MB round trips through the aws CLI."""

import datetime
import email.utils
import os
import threading

import pytest

import helpers as H
from conftest import aws_fixture, client_fixture, have_aws_cli, server_fixture

BUCKET = "objects"

srv = server_fixture(scope="module", buckets=[BUCKET])
s3 = client_fixture("srv")
aws_module = aws_fixture("srv", scope="module")


def get_bytes(s3, key, **kw):
    return s3.get_object(Bucket=BUCKET, Key=key, **kw)["Body"].read()


def etag_of(resp):
    return resp["ETag"].strip('"')


# -- PUT, Content-MD5, ETag ----------------------------------------------------

def test_put_etag_is_md5_of_plaintext(s3):
    data = os.urandom(5000)
    r = s3.put_object(Bucket=BUCKET, Key="etag", Body=data)
    assert etag_of(r) == H.md5_hex(data)
    assert r["ServerSideEncryption"] == "AES256"
    g = s3.get_object(Bucket=BUCKET, Key="etag")
    assert g["Body"].read() == data
    assert etag_of(g) == H.md5_hex(data)
    assert g["ContentLength"] == len(data)
    assert etag_of(s3.head_object(Bucket=BUCKET, Key="etag")) == H.md5_hex(data)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="etag")["Contents"]
    assert [(o["Key"], o["ETag"].strip('"'), o["Size"]) for o in listed] == \
        [("etag", H.md5_hex(data), len(data))]


def test_content_md5_good(s3):
    data = b"content-md5 checked body\n" * 100
    r = s3.put_object(Bucket=BUCKET, Key="md5-good", Body=data, ContentMD5=H.md5_b64(data))
    assert etag_of(r) == H.md5_hex(data)
    assert get_bytes(s3, "md5-good") == data


def test_content_md5_wrong_is_bad_digest(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="md5-bad", Body=b"original")
    data = b"new body"
    H.expect_error("BadDigest", 400, s3.put_object, Bucket=BUCKET, Key="md5-bad",
                   Body=data, ContentMD5=H.md5_b64(b"something else"))
    assert get_bytes(s3, "md5-bad") == b"original"
    H.expect_error("BadDigest", 400, s3.put_object, Bucket=BUCKET, Key="md5-bad-new",
                   Body=data, ContentMD5=H.md5_b64(b"something else"))
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="md5-bad-new")


@pytest.mark.parametrize("value", [
    "not base64!",
    "AAAA",                                         # 3 bytes
    "AAAAAAAAAAAAAAAAAAAA",                         # 15 bytes
    "AAAAAAAAAAAAAAAAAAAAAAAA",                     # 18 bytes
    H.md5_hex(b"abc"),                              # hex, not base64
    "",
])
def test_content_md5_malformed_is_invalid_digest(srv, s3, value):
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "md5-malformed"), body=b"abc",
              headers={"Content-MD5": value})
    H.assert_s3_error(r, 400, "InvalidDigest")
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="md5-malformed")


STORED = {
    "Content-Type": "text/x-kura; charset=utf-8",
    "Content-Encoding": "gzip",
    "Content-Language": "fr-CA",
    "Cache-Control": "max-age=3600, must-revalidate",
    "Content-Disposition": 'attachment; filename="report 2024.txt"',
    "Expires": "Wed, 21 Oct 2037 07:28:00 GMT",
}
META = {"color": "Blue Green", "x-Odd_Name": "v a l u e;=,", "empty": "", "n": "1"}


def test_stored_headers_and_metadata_returned_exactly(srv, s3):
    data = b"\x1f\x8b not really gzip"
    headers = dict(STORED)
    headers.update({f"x-amz-meta-{k}": v for k, v in META.items()})
    r = H.raw(srv, "PUT", H.key_path(BUCKET, "with-headers"), body=data, headers=headers)
    assert r.status == 200, r
    for method in ("GET", "HEAD"):
        g = H.raw(srv, method, H.key_path(BUCKET, "with-headers"))
        assert g.status == 200, g
        for name, value in STORED.items():
            assert g.header(name) == value, (method, name, g)
        for name, value in META.items():
            assert g.header(f"x-amz-meta-{name.lower()}") == value, (method, name, g)
        metas = [h for h in g.headers.keys() if h.lower().startswith("x-amz-meta-")]
        assert len(metas) == len(META), metas
        assert g.header("Content-Length") == str(len(data))
        assert g.header("ETag") == f'"{H.md5_hex(data)}"'
        assert g.header("Last-Modified")
        assert g.header("x-amz-server-side-encryption") == "AES256"
    assert g.body == b""
    assert H.raw(srv, "GET", H.key_path(BUCKET, "with-headers")).body == data
    # boto3 sees the same.
    h = s3.head_object(Bucket=BUCKET, Key="with-headers")
    assert h["ContentType"] == STORED["Content-Type"]
    assert h["Metadata"] == {k.lower(): v for k, v in META.items()}


def test_default_content_type(s3):
    s3.put_object(Bucket=BUCKET, Key="no-type", Body=b"x")
    h = s3.head_object(Bucket=BUCKET, Key="no-type")
    assert h["ContentType"] in ("binary/octet-stream", "application/octet-stream")


def test_response_overrides(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="override", Body=b"body", ContentType="text/plain",
                  CacheControl="no-cache")
    g = s3.get_object(Bucket=BUCKET, Key="override",
                      ResponseContentType="application/json",
                      ResponseContentLanguage="de",
                      ResponseExpires=datetime.datetime(2031, 1, 2, 3, 4, 5),
                      ResponseCacheControl="private",
                      ResponseContentDisposition='inline; filename="x.json"',
                      ResponseContentEncoding="identity")
    hh = g["ResponseMetadata"]["HTTPHeaders"]
    assert hh["content-type"] == "application/json"
    assert hh["content-language"] == "de"
    assert hh["cache-control"] == "private"
    assert hh["content-disposition"] == 'inline; filename="x.json"'
    assert hh["content-encoding"] == "identity"
    assert hh["expires"] == "Thu, 02 Jan 2031 03:04:05 GMT"
    assert g["Body"].read() == b"body"
    # Stored values are untouched.
    h = s3.head_object(Bucket=BUCKET, Key="override")
    assert h["ContentType"] == "text/plain" and h["CacheControl"] == "no-cache"


# -- ranges ------------------------------------------------------------------

RANGE_DATA = os.urandom(1000)


def _range(srv, key, spec):
    return H.raw(srv, "GET", H.key_path(BUCKET, key), headers={"Range": spec})


@pytest.fixture(scope="module")
def range_obj(srv):
    srv.root_client().put_object(Bucket=BUCKET, Key="range", Body=RANGE_DATA)
    return "range"


@pytest.mark.parametrize("spec,first,last", [
    ("bytes=0-9", 0, 9),
    ("bytes=0-0", 0, 0),
    ("bytes=10-19", 10, 19),
    ("bytes=999-999", 999, 999),
    ("bytes=100-", 100, 999),
    ("bytes=0-", 0, 999),
    ("bytes=-50", 950, 999),
    ("bytes=-1", 999, 999),
    ("bytes=-1000", 0, 999),
    ("bytes=-5000", 0, 999),       # suffix longer than the object
    ("bytes=990-5000", 990, 999),  # end beyond the object clamps
])
def test_range_satisfiable(srv, range_obj, spec, first, last):
    r = _range(srv, range_obj, spec)
    assert r.status == 206, r
    assert r.header("Content-Range") == f"bytes {first}-{last}/1000"
    assert r.header("Content-Length") == str(last - first + 1)
    assert r.body == RANGE_DATA[first:last + 1]


@pytest.mark.parametrize("spec", ["bytes=1000-", "bytes=1000-2000", "bytes=5000-6000"])
def test_range_start_past_end_is_416(srv, range_obj, spec):
    r = _range(srv, range_obj, spec)
    H.assert_s3_error(r, 416, "InvalidRange")
    assert r.header("Content-Range") == "bytes */1000"


@pytest.mark.parametrize("spec", ["bytes=abc", "bytes=5-2", "items=0-5", "bytes=0-1,5-6",
                                  "bytes=", "0-5", "bytes=--5", "bytes=1-2-3"])
def test_range_invalid_syntax_serves_whole_object(srv, range_obj, spec):
    r = _range(srv, range_obj, spec)
    assert r.status == 200, r
    assert r.header("Content-Range") is None
    assert r.body == RANGE_DATA


def test_range_on_empty_object(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="empty-range", Body=b"")
    r = _range(srv, "empty-range", "bytes=0-0")
    H.assert_s3_error(r, 416, "InvalidRange")
    assert r.header("Content-Range") == "bytes */0"


def test_range_on_head(srv, range_obj):
    r = H.raw(srv, "HEAD", H.key_path(BUCKET, range_obj), headers={"Range": "bytes=0-9"})
    assert r.status == 206, r
    assert r.header("Content-Range") == "bytes 0-9/1000"
    assert r.header("Content-Length") == "10"
    assert r.body == b""
    r = H.raw(srv, "HEAD", H.key_path(BUCKET, range_obj), headers={"Range": "bytes=2000-"})
    assert r.status == 416 and r.body == b""


def test_range_with_boto3(s3, range_obj):
    g = s3.get_object(Bucket=BUCKET, Key=range_obj, Range="bytes=5-14")
    assert g["ContentRange"] == "bytes 5-14/1000"
    assert g["Body"].read() == RANGE_DATA[5:15]


# -- HEAD, DELETE, overwrite, empty ------------------------------------------

def test_head_object(srv, s3):
    data = b"head me" * 3
    s3.put_object(Bucket=BUCKET, Key="head", Body=data, Metadata={"k": "v"})
    h = s3.head_object(Bucket=BUCKET, Key="head")
    assert h["ContentLength"] == len(data)
    assert etag_of(h) == H.md5_hex(data)
    assert h["Metadata"] == {"k": "v"}
    assert h["LastModified"] is not None
    r = H.raw(srv, "HEAD", H.key_path(BUCKET, "head-missing"))
    assert r.status == 404 and r.body == b""
    assert r.header("x-amz-request-id")
    _, status, _ = H.client_error(s3.head_object, Bucket=BUCKET, Key="head-missing")
    assert status == 404


def test_delete_object(srv, s3):
    s3.put_object(Bucket=BUCKET, Key="del", Body=b"bye")
    r = s3.delete_object(Bucket=BUCKET, Key="del")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="del")
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="del")
    r = s3.delete_object(Bucket=BUCKET, Key="del-never-existed")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    r = H.raw(srv, "GET", H.key_path(BUCKET, "del"))
    err = H.assert_s3_error(r, 404, "NoSuchKey", srv)
    assert err.get("Key") == "del"


def test_overwrite_replaces(s3):
    s3.put_object(Bucket=BUCKET, Key="ow", Body=b"first version, longer", ContentType="a/b",
                  Metadata={"gen": "1"})
    s3.put_object(Bucket=BUCKET, Key="ow", Body=b"second")
    g = s3.get_object(Bucket=BUCKET, Key="ow")
    assert g["Body"].read() == b"second"
    assert etag_of(g) == H.md5_hex(b"second")
    assert g["Metadata"] == {}
    assert g["ContentType"] != "a/b"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="ow")["Contents"]] == ["ow"]


def test_overwrite_is_atomic_for_concurrent_readers(srv, s3):
    """While one thread keeps replacing an object with one of two bodies,
    every concurrent GET returns one of them whole, with its own ETag."""
    a = os.urandom(H.SEG + 1000)
    b = os.urandom(3 * H.SEG // 2)
    bodies = {H.md5_hex(a): a, H.md5_hex(b): b}
    s3.put_object(Bucket=BUCKET, Key="atomic", Body=a)
    stop = threading.Event()
    problems = []

    def writer():
        c = srv.client()
        i = 0
        while not stop.is_set() and i < 40:
            c.put_object(Bucket=BUCKET, Key="atomic", Body=(a, b)[i % 2])
            i += 1

    def reader():
        c = srv.client()
        for _ in range(15):
            try:
                g = c.get_object(Bucket=BUCKET, Key="atomic")
                body = g["Body"].read()
            except Exception as e:       # noqa: BLE001 - reported below
                problems.append(repr(e))
                continue
            tag = etag_of(g)
            if tag not in bodies or bodies[tag] != body:
                problems.append(f"GET returned {len(body)} bytes with ETag {tag}")

    threads = [threading.Thread(target=writer)] + \
        [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert problems == []


def test_empty_object(srv, s3):
    r = s3.put_object(Bucket=BUCKET, Key="empty", Body=b"")
    assert etag_of(r) == H.md5_hex(b"")
    g = s3.get_object(Bucket=BUCKET, Key="empty")
    assert g["ContentLength"] == 0 and g["Body"].read() == b""
    assert etag_of(g) == H.md5_hex(b"")
    raw = H.raw(srv, "GET", H.key_path(BUCKET, "empty"))
    assert raw.status == 200 and raw.header("Content-Length") == "0" and raw.body == b""
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="empty")["Contents"][0]["Size"] == 0


# -- sizes around the segment size -------------------------------------------

SIZES = [1, H.SEG - 1, H.SEG, H.SEG + 1, 2 * H.SEG, 2 * H.SEG + 1, 5 * 1024 * 1024 + 3]


@pytest.mark.parametrize("size", SIZES)
def test_sizes_round_trip(srv, s3, size):
    data = os.urandom(size)
    key = f"size-{size}"
    r = s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    assert etag_of(r) == H.md5_hex(data)
    assert get_bytes(s3, key) == data
    # Ranges that cross and touch segment boundaries.
    for first, last in [(0, 0), (size - 1, size - 1), (H.SEG - 2, H.SEG + 1),
                        (H.SEG, 2 * H.SEG), (size // 2, size - 1)]:
        if first >= size:
            continue
        last = min(last, size - 1)
        if last < first:
            continue
        rr = _range(srv, key, f"bytes={first}-{last}")
        assert rr.status == 206, (first, last, rr)
        assert rr.body == data[first:last + 1], (first, last)


# -- keys ----------------------------------------------------------------------

ODD_KEYS = [
    "with space",
    "  leading and trailing  ",
    "unicode-\u00e9\u00e8\u00ea-\u65e5\u672c\u8a9e-\U0001F600",
    "plus+sign",
    "percent%20literal%",
    "question?mark",
    "hash#tag",
    "amp&eq=semi;",
    "..",
    "../escape",
    "a/../b",
    "./dot",
    "/leading-slash",
    "//double//slash//",
    "trailing/",
    "tilde~star*quote'\"",
    "brackets[]{}<>|^`\\",
    "tab\there",
    ".",
    "a/.",
]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_round_trip(s3, key):
    data = f"body of {key!r}".encode()
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    assert get_bytes(s3, key) == data
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(data)
    listed = [o["Key"] for o in
              s3.list_objects_v2(Bucket=BUCKET, Prefix=key).get("Contents", [])]
    assert key in listed
    s3.delete_object(Bucket=BUCKET, Key=key)
    H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key=key)


def test_odd_keys_are_distinct(s3):
    """Keys that a normalising server would merge stay distinct."""
    keys = ["dist/a", "dist//a", "dist/./a", "dist/x/../a", "dist/a/", "dist%2Fa",
            "dist+a", "dist a", "dist/A", "dist/\u00e9", "dist/e\u0301"]   # NFC vs NFD
    for i, k in enumerate(keys):
        s3.put_object(Bucket=BUCKET, Key=k, Body=str(i).encode())
    for i, k in enumerate(keys):
        assert get_bytes(s3, k) == str(i).encode(), k
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="dist")["Contents"]]
    assert sorted(listed, key=str.encode) == sorted(keys, key=str.encode)


def test_key_length_limit(srv, s3):
    ok = "k" * 1024
    s3.put_object(Bucket=BUCKET, Key=ok, Body=b"long")
    assert get_bytes(s3, ok) == b"long"
    ok_multibyte = "\u00e9" * 512           # 1024 bytes of UTF-8
    s3.put_object(Bucket=BUCKET, Key=ok_multibyte, Body=b"mb")
    assert get_bytes(s3, ok_multibyte) == b"mb"
    for bad in ["k" * 1025, "\u00e9" * 512 + "x"]:
        H.expect_error("KeyTooLongError", 400, s3.put_object, Bucket=BUCKET, Key=bad,
                       Body=b"x")
        r = H.raw(srv, "GET", H.key_path(BUCKET, bad))
        H.assert_s3_error(r, 400, "KeyTooLongError")


# -- conditional requests ----------------------------------------------------

@pytest.fixture(scope="module")
def cond_obj(srv):
    r = srv.root_client().put_object(Bucket=BUCKET, Key="cond", Body=b"conditional body")
    h = H.raw(srv, "HEAD", H.key_path(BUCKET, "cond"))
    lm = h.header("Last-Modified")
    mtime = email.utils.parsedate_to_datetime(lm)
    return {"etag": r["ETag"], "lm": lm, "mtime": mtime}


def _http_date(dt):
    return email.utils.format_datetime(dt.astimezone(datetime.timezone.utc), usegmt=True)


def _cond_cases(o):
    etag, other = o["etag"], '"0123456789abcdef0123456789abcdef"'
    lm = o["lm"]
    before = _http_date(o["mtime"] - datetime.timedelta(days=1))
    after = _http_date(o["mtime"] + datetime.timedelta(seconds=5))
    return [
        ({}, 200),
        ({"If-Match": etag}, 200),
        ({"If-Match": etag.strip('"')}, 200),
        ({"If-Match": "*"}, 200),
        ({"If-Match": f"{other}, {etag}"}, 200),
        ({"If-Match": other}, 412),
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": f"{other}, {etag}"}, 304),
        ({"If-None-Match": other}, 200),
        ({"If-Modified-Since": lm}, 304),
        ({"If-Modified-Since": after}, 304),
        ({"If-Modified-Since": before}, 200),
        ({"If-Modified-Since": "not a date"}, 200),
        ({"If-Unmodified-Since": lm}, 200),
        ({"If-Unmodified-Since": after}, 200),
        ({"If-Unmodified-Since": before}, 412),
        ({"If-Unmodified-Since": "garbage"}, 200),
        # AWS: If-Match true and If-Unmodified-Since false -> 200.
        ({"If-Match": etag, "If-Unmodified-Since": before}, 200),
        # AWS: If-None-Match false and If-Modified-Since true -> 304.
        ({"If-None-Match": etag, "If-Modified-Since": before}, 304),
        # If-None-Match true: If-Modified-Since is not evaluated (RFC 9110).
        ({"If-None-Match": other, "If-Modified-Since": lm}, 200),
        ({"If-Match": other, "If-Unmodified-Since": after}, 412),
        # If-Match is evaluated before If-None-Match.
        ({"If-Match": other, "If-None-Match": etag}, 412),
        ({"If-Match": etag, "If-None-Match": etag}, 304),
        ({"If-Unmodified-Since": before, "If-None-Match": etag}, 412),
    ]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_conditionals(srv, cond_obj, method):
    failures = []
    for headers, want in _cond_cases(cond_obj):
        r = H.raw(srv, method, H.key_path(BUCKET, "cond"), headers=headers)
        if r.status != want:
            failures.append((headers, want, r.status))
            continue
        if want == 304:
            if r.body != b"" or r.header("ETag") != cond_obj["etag"]:
                failures.append((headers, "304 must carry the ETag and no body", r))
        elif want == 412:
            if method == "GET":
                err = r.error()
                if err.get("Code") != "PreconditionFailed":
                    failures.append((headers, err))
            elif r.body != b"":
                failures.append((headers, "HEAD 412 with a body", r))
        elif want == 200 and method == "GET" and r.body != b"conditional body":
            failures.append((headers, "wrong body", r))
    assert failures == []


def test_conditionals_with_boto3(s3, cond_obj):
    g = s3.get_object(Bucket=BUCKET, Key="cond", IfMatch=cond_obj["etag"])
    assert g["Body"].read() == b"conditional body"
    H.expect_error("PreconditionFailed", 412, s3.get_object, Bucket=BUCKET, Key="cond",
                   IfMatch='"nope"')
    _, status, _ = H.client_error(s3.get_object, Bucket=BUCKET, Key="cond",
                                  IfNoneMatch=cond_obj["etag"])
    assert status == 304
    _, status, _ = H.client_error(s3.head_object, Bucket=BUCKET, Key="cond",
                                  IfModifiedSince=cond_obj["mtime"])
    assert status == 304


# -- the aws CLI ---------------------------------------------------------------

pytestmark_cli = pytest.mark.skipif(not have_aws_cli(), reason="aws CLI not installed")


@pytestmark_cli
def test_aws_cli_cp_round_trip(aws_module, s3, tmp_path):
    """aws s3 cp (multipart above 8 MiB) up and down, multi-MB."""
    src = tmp_path / "big.bin"
    data = os.urandom(9 * 1024 * 1024 + 123)
    src.write_bytes(data)
    aws_module("s3", "cp", str(src), f"s3://{BUCKET}/cli/big.bin", check=True)
    dst = tmp_path / "back.bin"
    aws_module("s3", "cp", f"s3://{BUCKET}/cli/big.bin", str(dst), check=True)
    assert dst.read_bytes() == data
    h = s3.head_object(Bucket=BUCKET, Key="cli/big.bin")
    assert h["ContentLength"] == len(data)


@pytestmark_cli
def test_aws_cli_s3api_round_trip(aws_module, s3, tmp_path):
    src = tmp_path / "api.bin"
    data = os.urandom(3 * 1024 * 1024 + 7)
    src.write_bytes(data)
    r = aws_module("s3api", "put-object", "--bucket", BUCKET, "--key", "cli/api.bin",
                   "--body", str(src), "--content-type", "application/x-test",
                   "--metadata", "origin=cli", check=True)
    assert H.md5_hex(data) in r.stdout
    dst = tmp_path / "api-back.bin"
    r = aws_module("s3api", "get-object", "--bucket", BUCKET, "--key", "cli/api.bin",
                   str(dst), check=True)
    assert dst.read_bytes() == data
    assert "application/x-test" in r.stdout and "origin" in r.stdout

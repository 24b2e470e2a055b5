"""ListObjectsV2 against a Python model: prefix, delimiter roll-up into
CommonPrefixes, max-keys, start-after, continuation tokens, fetch-owner,
encoding-type=url, and S3's IsTruncated / KeyCount / NextContinuationToken
semantics, paging through a bucket of ~2500 keys in UTF-8 byte order."""

import http.client
import xml.etree.ElementTree as ET
from urllib.parse import unquote_plus

import pytest

import helpers as H

BUCKET = "listing"

SPECIAL = [
    "sp ace/x", "plus+/y", "pct%25/z", "amp&lt;/k", "<tag>&'\"", "hash#frag",
    "q?x=1&y=2", "e/1", "\u00e9/1", "\u00e9/2", "\u00e9", "z", "\u00ff", "\uff61",
    "\U00010000", "\U0001F600/smile", "\ufffd", "\u65e5\u672c/\u8a9e", "a//b",
    "/leading", "trailing/", "//", "dir1/", "dir1", "dir1/sub0/", "dir10x",
    "dir1-dash", "dir1/sub0", "~tilde", "!bang", "0zero", "Zupper",
]


def make_keys():
    keys = [f"dir{i % 13}/sub{i % 5}/f{i:04d}" for i in range(2050)]
    keys += [f"top{i:03d}" for i in range(300)]
    keys += [f"deep/a/b/c/d/{i}" for i in range(120)]
    keys += SPECIAL
    assert len(set(keys)) == len(keys)
    return keys


KEYS = make_keys()


@pytest.fixture(scope="module")
def srv(kura_server_module):
    c = H.client_with_pool(kura_server_module)
    c.create_bucket(Bucket=BUCKET)
    c.create_bucket(Bucket="listing-empty")
    H.put_many(c, BUCKET, KEYS, threads=16)
    return kura_server_module


@pytest.fixture(scope="module")
def conn(srv):
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
    yield c
    c.close()


class Page:
    def __init__(self, body):
        self.root = ET.fromstring(body)
        r = self.root
        self.url = H.xml_text(r, "EncodingType") == "url"
        dec = unquote_plus if self.url else (lambda s: s)
        self.raw_keys = [H.xml_text(c, "Key") for c in H.xml_children(r, "Contents")]
        self.keys = [dec(k) for k in self.raw_keys]
        self.prefixes = [dec(H.xml_text(c, "Prefix"))
                         for c in H.xml_children(r, "CommonPrefixes")]
        self.key_count = int(H.xml_text(r, "KeyCount"))
        self.max_keys = int(H.xml_text(r, "MaxKeys"))
        self.truncated = H.xml_text(r, "IsTruncated")
        self.token = H.xml_text(r, "NextContinuationToken")
        self.contents = H.xml_children(r, "Contents")


def list_raw(srv, conn=None, bucket=BUCKET, **params):
    q = [("list-type", "2")] + [(k.replace("_", "-"), v) for k, v in params.items()
                                if v is not None]
    r = H.raw(srv, "GET", "/" + bucket, query=q, conn=conn)
    assert r.status == 200, r
    return Page(r.body)


def walk(srv, conn, max_keys, prefix=None, delimiter=None, start_after=None,
         encoding=None):
    """Page through a listing, checking each page against the model."""
    items = H.list_model(KEYS, prefix or "", delimiter or "", start_after or "")
    expected = H.list_pages(items, max_keys)
    token = None
    got = []
    for n, (want, truncated) in enumerate(expected):
        p = list_raw(srv, conn, max_keys=max_keys, prefix=prefix, delimiter=delimiter,
                     start_after=start_after if token is None else None,
                     continuation_token=token, encoding_type=encoding)
        want_keys = [v for t, v in want if t == "K"]
        want_prefixes = [v for t, v in want if t == "P"]
        assert p.keys == want_keys, f"page {n}"
        assert p.prefixes == want_prefixes, f"page {n}"
        assert p.key_count == len(want), f"page {n}"
        assert p.max_keys == max_keys
        assert p.truncated == ("true" if truncated else "false"), f"page {n}"
        if truncated:
            assert p.token, f"page {n}: truncated without NextContinuationToken"
            if token is not None:
                assert p.token != token
        else:
            assert p.token is None, f"page {n}: NextContinuationToken on the last page"
        if token is not None:
            assert H.xml_text(p.root, "ContinuationToken") == token
        token = p.token
        got += want
    # Everything exactly once, in UTF-8 byte order.
    flat = [v for _, v in got]
    assert len(flat) == len(set(flat))
    assert flat == sorted(flat, key=str.encode)
    return got


@pytest.mark.parametrize("max_keys", [1000, 7])
def test_page_whole_bucket(srv, conn, max_keys):
    got = walk(srv, conn, max_keys)
    assert sorted(v for _, v in got) == sorted(KEYS)


@pytest.mark.parametrize("max_keys", [1000, 7])
def test_page_with_delimiter(srv, conn, max_keys):
    got = walk(srv, conn, max_keys, delimiter="/")
    prefixes = [v for t, v in got if t == "P"]
    assert "dir1/" in prefixes and "/" in prefixes and "deep/" in prefixes
    assert "dir1" in [v for t, v in got if t == "K"]


@pytest.mark.parametrize("prefix,delimiter,max_keys", [
    ("dir3/", "/", 7),
    ("dir3/", "/", 1000),
    ("dir1/", "/", 2),
    ("dir1", "/", 3),
    ("dir1/sub0/", None, 50),
    ("deep/", "/", 1),
    ("deep/a/", "/c/", 5),
    ("", "sub", 11),
    ("", "-", 500),
    ("\u00e9", None, 1),
    ("", "\u00e9", 5),
    ("no-such-prefix", "/", 10),
])
def test_prefix_and_delimiter(srv, conn, prefix, delimiter, max_keys):
    walk(srv, conn, max_keys, prefix=prefix, delimiter=delimiter)


@pytest.mark.parametrize("start_after,delimiter,max_keys", [
    ("dir5/sub2/f0500", None, 1000),
    ("dir5/sub2/f0500", None, 13),
    ("top150", None, 7),
    ("dir3", "/", 7),
    ("a", "/", 4),
    ("\u00e9/1", None, 3),
    ("zzzz-after-everything", None, 10),
    ("", None, 1000),
])
def test_start_after(srv, conn, start_after, delimiter, max_keys):
    walk(srv, conn, max_keys, delimiter=delimiter, start_after=start_after)


@pytest.mark.parametrize("delimiter", [None, "/"])
def test_url_encoding_pages(srv, conn, delimiter):
    walk(srv, conn, 97, delimiter=delimiter, encoding="url")


def test_url_encoding_round_trips_special_keys(srv, conn):
    specials = [k for k in SPECIAL if not k.startswith("dir")]
    p = list_raw(srv, conn, encoding_type="url", max_keys=1000, start_after="top299")
    raw = dict(zip(p.keys, p.raw_keys))
    for k in specials:
        if k.encode() <= b"top299":
            continue
        assert k in raw, k
    # Without encoding the same keys come back as XML text.
    plain = list_raw(srv, conn, max_keys=1000, start_after="top299")
    assert plain.keys == p.keys
    for k in ["sp ace/x", "<tag>&'\"", "\u00e9/1", "plus+/y", "pct%25/z"]:
        page = list_raw(srv, conn, encoding_type="url", prefix=k)
        assert page.keys == [k]
        assert page.raw_keys[0] != k          # really encoded
        assert "<" not in page.raw_keys[0] and " " not in page.raw_keys[0]
        assert H.xml_text(page.root, "Prefix") != k
        assert unquote_plus(H.xml_text(page.root, "Prefix")) == k
        page = list_raw(srv, conn, prefix=k)
        assert page.keys == [k] and H.xml_text(page.root, "Prefix") == k


def test_boto3_paginator_agrees(srv):
    c = srv.client()
    pages = c.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, PaginationConfig={"PageSize": 333})
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert keys == sorted(KEYS, key=str.encode)
    pages = c.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Delimiter="/", PaginationConfig={"PageSize": 5})
    prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    assert prefixes == [v for t, v in H.list_model(KEYS, "", "/") if t == "P"]


def test_continuation_token_overrides_start_after(srv, conn):
    first = list_raw(srv, conn, max_keys=5)
    p = list_raw(srv, conn, max_keys=5, continuation_token=first.token,
                 start_after="top100")
    model = H.list_model(KEYS)
    assert p.keys == [v for _, v in model[5:10]]
    # Echoed all the same, as AWS does.
    assert H.xml_text(p.root, "StartAfter") == "top100"


def test_fetch_owner(srv, conn):
    p = list_raw(srv, conn, max_keys=3)
    assert all(c.find(H.S3NS + "Owner") is None for c in p.contents)
    p = list_raw(srv, conn, max_keys=3, fetch_owner="true")
    for c in p.contents:
        owner = c.find(H.S3NS + "Owner")
        assert owner is not None and H.xml_text(owner, "ID")
    c = srv.client()
    r = c.list_objects_v2(Bucket=BUCKET, MaxKeys=2, FetchOwner=True)
    assert all("Owner" in o for o in r["Contents"])
    r = c.list_objects_v2(Bucket=BUCKET, MaxKeys=2)
    assert all("Owner" not in o for o in r["Contents"])


def test_contents_fields(srv, conn):
    p = list_raw(srv, conn, prefix="top000")
    (c,) = p.contents
    assert H.xml_text(c, "ETag") == f'"{H.md5_hex(b"")}"'
    assert H.xml_text(c, "Size") == "0"
    assert H.xml_text(c, "LastModified").endswith("Z")
    assert H.xml_text(c, "StorageClass") == "STANDARD"
    assert H.xml_text(p.root, "Name") == BUCKET


def test_max_keys_zero_and_above_limit(srv, conn):
    p = list_raw(srv, conn, max_keys=0)
    assert p.keys == [] and p.prefixes == [] and p.key_count == 0
    p = list_raw(srv, conn, max_keys=5000)
    assert p.key_count == 1000 and p.truncated == "true"
    assert p.keys == [v for _, v in H.list_model(KEYS)[:1000]]


def test_empty_bucket(srv, conn):
    p = list_raw(srv, conn, bucket="listing-empty")
    assert p.keys == [] and p.key_count == 0 and p.truncated == "false" and p.token is None


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", "99999999999999999999", "0x10"])
def test_invalid_max_keys(srv, conn, value):
    r = H.raw(srv, "GET", "/" + BUCKET, query=[("list-type", "2"), ("max-keys", value)],
              conn=conn)
    H.assert_s3_error(r, 400, "InvalidArgument", srv)


# An empty token is no token (test_s3_behaviours.py), as on AWS.
@pytest.mark.parametrize("token", ["!!!not-base64!!!", "Zm9v", "QQ==",
                                   "S" + "A" * 3000])
def test_bad_continuation_token(srv, conn, token):
    r = H.raw(srv, "GET", "/" + BUCKET,
              query=[("list-type", "2"), ("continuation-token", token)], conn=conn)
    H.assert_s3_error(r, 400, "InvalidArgument")


def test_invalid_encoding_type(srv, conn):
    r = H.raw(srv, "GET", "/" + BUCKET, query=[("list-type", "2"), ("encoding-type", "xml")],
              conn=conn)
    H.assert_s3_error(r, 400, "InvalidArgument")

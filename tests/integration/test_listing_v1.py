"""ListObjects (v1): marker, delimiter, NextMarker (only with a delimiter,
as AWS), IsTruncated, max-keys and encoding-type=url, paging through about
2500 keys with and without a delimiter, every page compared with a Python
model of S3's rules in UTF-8 byte order."""

import concurrent.futures
import urllib.parse

import pytest

from tools_helpers import expect_error, raw_request

BUCKET = "listv1"


def make_keys():
    keys = set()
    for i in range(1580):
        keys.add(f"dir{i % 5}/sub{i % 4}/file{i:04d}")
    for j in range(200):
        # "many/007.txt" sorts before "many/007/..." ('.' < '/'), and
        # "many/007-a" before both: the listing must skip past a rolled-up
        # prefix without losing the keys around it.
        keys.add(f"many/{j:03d}/x")
        keys.add(f"many/{j:03d}/y/z")
        if j % 2 == 0:
            keys.add(f"many/{j:03d}.txt")
        if j % 5 == 0:
            keys.add(f"many/{j:03d}-a")
    for i in range(120):
        keys.add(f"ünïcødé/{i:03d} ü")
        keys.add(f"日本/{i:03d}/語")
        keys.add(f"emoji🎉/{i:03d}")
    extra = ["a", "b", "dir1", "dir1-x", "dir1.y", "dir1~z", "dir10/x", "dir2/",
             "dir2/sub0/", "dir3//double", "space key", "plus+key", "per%cent",
             "amp&lt", "z", "~tilde", "!bang", "Zupper", "dir1/sub1-a", "dir1/sub1.b",
             "many/", "many", "\u00ff", "\u0100", "\uffef", "\U0001F600"]
    keys.update(extra)
    return sorted(keys, key=lambda k: k.encode())


KEYS = make_keys()


def model_v1(prefix="", delimiter="", marker="", max_keys=1000):
    """(contents, common prefixes, is_truncated, next_marker) as S3 answers
    ListObjects v1 over KEYS."""
    entries, seen = [], set()
    for k in KEYS:
        if not k.startswith(prefix):
            continue
        rest = k[len(prefix):]
        if delimiter and delimiter in rest:
            cp = prefix + rest[:rest.index(delimiter) + len(delimiter)]
            if cp not in seen:
                seen.add(cp)
                entries.append((cp, True))
        else:
            entries.append((k, False))
    assert entries == sorted(entries, key=lambda e: e[0].encode())
    page = [e for e in entries if e[0].encode() > marker.encode()]
    truncated = len(page) > max_keys
    page = page[:max_keys]
    next_marker = page[-1][0] if truncated and delimiter else None
    return ([k for k, cp in page if not cp], [k for k, cp in page if cp], truncated,
            next_marker)


@pytest.fixture(scope="module")
def s3l(s3_module):
    s3_module.create_bucket(Bucket=BUCKET)
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: s3_module.put_object(Bucket=BUCKET, Key=k, Body=b""), KEYS))
    return s3_module


def list_v1(s3, **kw):
    r = s3.list_objects(Bucket=BUCKET, **kw)
    contents = [o["Key"] for o in r.get("Contents", [])]
    cps = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    return r, contents, cps


def walk(s3, prefix="", delimiter="", max_keys=None):
    """Page through the listing as a client does, checking each page
    against the model; returns (all contents, all prefixes, pages)."""
    marker, pages = "", 0
    all_contents, all_cps = [], []
    while True:
        kw = {"Prefix": prefix, "Marker": marker}
        if delimiter:
            kw["Delimiter"] = delimiter
        if max_keys is not None:
            kw["MaxKeys"] = max_keys
        r, contents, cps = list_v1(s3, **kw)
        pages += 1
        want = model_v1(prefix, delimiter, marker, 1000 if max_keys is None else max_keys)
        assert (contents, cps) == (want[0], want[1]), f"page {pages} after {marker!r}"
        assert r["IsTruncated"] is want[2], f"IsTruncated of page {pages}"
        assert r.get("NextMarker") == want[3], f"NextMarker of page {pages}"
        assert r["MaxKeys"] == (1000 if max_keys is None else max_keys)
        assert r.get("Marker", "") == marker
        all_contents += contents
        all_cps += cps
        if not r["IsTruncated"]:
            return all_contents, all_cps, pages
        assert pages < 3000, "listing does not end"
        marker = r["NextMarker"] if delimiter else contents[-1]


def test_key_count(s3l):
    assert len(KEYS) >= 2500


def test_walk_no_delimiter_default_max_keys(s3l):
    contents, cps, pages = walk(s3l)
    assert contents == KEYS and cps == []
    assert pages == -(-len(KEYS) // 1000)


def test_walk_no_delimiter_small_pages(s3l):
    contents, cps, pages = walk(s3l, max_keys=333)
    assert contents == KEYS and cps == []
    assert pages == -(-len(KEYS) // 333)


def test_walk_delimiter_from_root(s3l):
    contents, cps, _ = walk(s3l, delimiter="/", max_keys=3)
    assert "many/" in cps and "dir1/" in cps and "日本/" in cps
    assert "dir1" in contents and "dir1-x" in contents and "many" in contents
    assert len(cps) == len(set(cps))


def test_walk_delimiter_many_prefixes(s3l):
    contents, cps, pages = walk(s3l, prefix="many/", delimiter="/", max_keys=17)
    assert len(cps) == 200 and cps[0] == "many/000/" and cps[-1] == "many/199/"
    assert "many/" in contents and "many/004.txt" in contents and "many/005-a" in contents
    assert pages > 20


def test_walk_delimiter_with_prefix(s3l):
    contents, cps, _ = walk(s3l, prefix="dir1/", delimiter="/", max_keys=2)
    assert cps == ["dir1/sub0/", "dir1/sub1/", "dir1/sub2/", "dir1/sub3/"]
    assert contents == ["dir1/sub1-a", "dir1/sub1.b"]
    contents, cps, _ = walk(s3l, prefix="dir2/", delimiter="/", max_keys=1)
    assert contents == ["dir2/"]


def test_walk_prefix_without_delimiter(s3l):
    contents, _, _ = walk(s3l, prefix="日本/", max_keys=50)
    assert contents == [k for k in KEYS if k.startswith("日本/")]
    assert len(contents) == 120


def test_multi_character_delimiter(s3l):
    walk(s3l, delimiter="sub", max_keys=500)
    walk(s3l, prefix="dir3/", delimiter="/double")


def test_unicode_delimiter_and_prefix(s3l):
    walk(s3l, prefix="ünïcødé/", delimiter=" ", max_keys=40)
    walk(s3l, delimiter="🎉", max_keys=300)


def test_marker_between_keys_and_past_end(s3l):
    _, contents, _ = list_v1(s3l, Marker="dir0/sub0/file0000a", MaxKeys=2)
    assert contents == model_v1(marker="dir0/sub0/file0000a", max_keys=2)[0]
    r, contents, cps = list_v1(s3l, Marker="\U0010ffff")
    assert contents == [] and cps == [] and r["IsTruncated"] is False
    # A marker that is a prefix (not a key) with a delimiter skips its group.
    r, contents, cps = list_v1(s3l, Delimiter="/", Marker="dir1/")
    want = model_v1(delimiter="/", marker="dir1/")
    assert (contents, cps) == (want[0], want[1])
    assert "dir1/" not in cps and "dir10/" in cps


def test_marker_outside_prefix(s3l):
    _, contents, _ = list_v1(s3l, Prefix="dir3/", Marker="a")
    assert contents == [k for k in KEYS if k.startswith("dir3/")][:1000]
    _, contents, cps = list_v1(s3l, Prefix="dir3/", Marker="dir4", Delimiter="/")
    assert contents == [] and cps == []


def test_max_keys_values(s3l):
    r, contents, cps = list_v1(s3l, MaxKeys=0)
    assert contents == [] and cps == []
    r, contents, _ = list_v1(s3l, MaxKeys=1)
    assert contents == KEYS[:1] and r["IsTruncated"] is True
    assert "NextMarker" not in r
    r, contents, _ = list_v1(s3l, MaxKeys=5000)
    assert r["MaxKeys"] == 1000 and len(contents) == 1000 and r["IsTruncated"] is True


def test_invalid_parameters(kura_server_module, s3l):
    for q in ("max-keys=abc", "max-keys=-1", "encoding-type=base64"):
        r = raw_request(kura_server_module, "GET", f"/{BUCKET}", query=q)
        assert r.status == 400, r
        assert r.error_code() == "InvalidArgument"


# -- encoding-type=url, raw -----------------------------------------------------------

ODD = ["odd/ctl\x01char", "odd/sp ace", "odd/plus+sign", "odd/per%cent", "odd/amp&<>",
       "odd/ü日本🎉", "odd/tab\tx", "odd/sub dir/k"]


@pytest.fixture(scope="module")
def odd_bucket(s3l):
    s3l.create_bucket(Bucket="listv1-odd")
    for k in ODD:
        s3l.put_object(Bucket="listv1-odd", Key=k, Body=k.encode())
    return "listv1-odd"


def raw_list(server, bucket, **params):
    q = [(k.replace("_", "-"), v) for k, v in params.items()]
    r = raw_request(server, "GET", f"/{bucket}", query=q)
    assert r.status == 200, r
    return r.xml()


def test_encoding_type_url_raw(kura_server_module, odd_bucket):
    root = raw_list(kura_server_module, odd_bucket, encoding_type="url", prefix="odd/",
                    marker="odd/amp&<>")
    assert root.findtext("EncodingType") == "url"
    raw_keys = [c.findtext("Key") for c in root.findall("Contents")]
    # Every key is percent-encoded: no raw control, space, '+' or non-ASCII.
    for rk in raw_keys:
        assert all(0x21 <= ord(ch) < 0x7f for ch in rk), rk
        assert "+" not in rk, rk
    got = [urllib.parse.unquote_plus(rk) for rk in raw_keys]
    want = sorted((k for k in ODD if k.encode() > b"odd/amp&<>"), key=lambda k: k.encode())
    assert got == want
    assert urllib.parse.unquote_plus(root.findtext("Marker")) == "odd/amp&<>"
    assert root.findtext("Prefix") == "odd/"

    root = raw_list(kura_server_module, odd_bucket, encoding_type="url", prefix="odd/",
                    delimiter=" ", max_keys="2")
    assert root.findtext("IsTruncated") == "true"
    assert urllib.parse.unquote_plus(root.findtext("Delimiter")) == " "
    nm = root.findtext("NextMarker")
    assert " " not in nm and urllib.parse.unquote_plus(nm) == "odd/ctl\x01char"
    root = raw_list(kura_server_module, odd_bucket, encoding_type="url", prefix="odd/",
                    delimiter=" ", marker="odd/ctl\x01char")
    cps = [urllib.parse.unquote_plus(p.findtext("Prefix"))
           for p in root.findall("CommonPrefixes")]
    assert cps == ["odd/sp ", "odd/sub "]


def test_encoding_type_url_through_boto3(s3l, odd_bucket):
    # boto3 asks for encoding-type=url and decodes; keys come back intact.
    r = s3l.list_objects(Bucket=odd_bucket)
    assert [o["Key"] for o in r["Contents"]] == sorted(ODD, key=lambda k: k.encode())
    for k in ODD:
        assert s3l.get_object(Bucket=odd_bucket, Key=k)["Body"].read() == k.encode()


def test_without_encoding_special_keys_are_escaped(kura_server_module, odd_bucket):
    root = raw_list(kura_server_module, odd_bucket, prefix="odd/a")
    assert [c.findtext("Key") for c in root.findall("Contents")] == ["odd/amp&<>"]
    root = raw_list(kura_server_module, odd_bucket, prefix="odd/", delimiter="/")
    assert [p.findtext("Prefix") for p in root.findall("CommonPrefixes")] == ["odd/sub dir/"]
    assert "odd/ü日本🎉" in [c.findtext("Key") for c in root.findall("Contents")]

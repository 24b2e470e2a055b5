"""Versioning as S3 has it: Put/GetBucketVersioning, version ids on every
write, versionId on GET/HEAD/DELETE/copy/tagging, delete markers, the null
version of unversioned and suspended buckets, ListObjectVersions — and
conditional writes (If-None-Match: *, If-Match) with their races.

Every expectation is AWS's documented behaviour, checked with boto3 and
raw requests where boto3 hides the header."""

import tarfile
import threading
import uuid
from pathlib import Path

import pytest

from conftest import server_fixture, client_fixture, running_server
from tools_helpers import expect_error, raw_request

FIXTURES = Path(__file__).parent / "fixtures"


vkura = server_fixture(scope="module")
vs3 = client_fixture("vkura", scope="module")


def new_bucket(s3, versioning=None):
    name = "v-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    if versioning:
        s3.put_bucket_versioning(Bucket=name,
                                 VersioningConfiguration={"Status": versioning})
    return name


def body(s3, bucket, key, **kw):
    return s3.get_object(Bucket=bucket, Key=key, **kw)["Body"].read()


def versions(s3, bucket, **kw):
    r = s3.list_object_versions(Bucket=bucket, **kw)
    out = [(v["Key"], v["VersionId"], v["IsLatest"], "v")
           for v in r.get("Versions", [])]
    out += [(m["Key"], m["VersionId"], m["IsLatest"], "m")
            for m in r.get("DeleteMarkers", [])]
    return r, out


# -- configuration -----------------------------------------------------------

def test_bucket_versioning_states(vs3):
    b = new_bucket(vs3)
    assert "Status" not in vs3.get_bucket_versioning(Bucket=b)
    vs3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    assert vs3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    vs3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    assert vs3.get_bucket_versioning(Bucket=b)["Status"] == "Suspended"
    vs3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    assert vs3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"


def test_bucket_versioning_bad_configurations(vkura, vs3):
    b = new_bucket(vs3)
    for doc in (b"<VersioningConfiguration><Status>On</Status></VersioningConfiguration>",
                b"<VersioningConfiguration><Status></Status></VersioningConfiguration>",
                b"not xml"):
        r = raw_request(vkura, "PUT", f"/{b}", "versioning", body=doc)
        assert r.status == 400 and r.error_code() == "MalformedXML", r
    r = raw_request(vkura, "PUT", f"/{b}", "versioning", body=(
        b"<VersioningConfiguration><Status>Enabled</Status>"
        b"<MfaDelete>Enabled</MfaDelete></VersioningConfiguration>"))
    assert r.status == 501 and r.error_code() == "NotImplemented", r
    assert "Status" not in vs3.get_bucket_versioning(Bucket=b)


# -- enabled -----------------------------------------------------------------

def test_every_put_is_a_version(vs3):
    b = new_bucket(vs3, "Enabled")
    ids = [vs3.put_object(Bucket=b, Key="k", Body=f"v{i}".encode())["VersionId"]
           for i in range(3)]
    assert len(set(ids)) == 3 and "null" not in ids
    assert body(vs3, b, "k") == b"v2"
    for i, vid in enumerate(ids):
        assert body(vs3, b, "k", VersionId=vid) == f"v{i}".encode()
        h = vs3.head_object(Bucket=b, Key="k", VersionId=vid)
        assert h["VersionId"] == vid and h["ContentLength"] == 2
    assert vs3.get_object(Bucket=b, Key="k")["VersionId"] == ids[2]
    _, vs = versions(vs3, b)
    assert vs == [("k", ids[2], True, "v"), ("k", ids[1], False, "v"),
                  ("k", ids[0], False, "v")]


def test_delete_marker_hides_and_removing_it_restores(vkura, vs3):
    b = new_bucket(vs3, "Enabled")
    v1 = vs3.put_object(Bucket=b, Key="doc", Body=b"one")["VersionId"]
    d = vs3.delete_object(Bucket=b, Key="doc")
    assert d["DeleteMarker"] is True
    marker = d["VersionId"]
    assert marker not in (v1, "null")
    # GET of the key: 404 saying it is a marker; the data is still there.
    r = raw_request(vkura, "GET", f"/{b}/doc")
    assert r.status == 404 and r.error_code() == "NoSuchKey"
    assert r.headers.get("x-amz-delete-marker") == "true"
    assert r.headers.get("x-amz-version-id") == marker
    r = raw_request(vkura, "HEAD", f"/{b}/doc", f"versionId={marker}")
    assert r.status == 405
    assert r.headers.get("x-amz-delete-marker") == "true"
    assert body(vs3, b, "doc", VersionId=v1) == b"one"
    assert vs3.list_objects_v2(Bucket=b).get("KeyCount") == 0
    _, vs = versions(vs3, b)
    assert ("doc", marker, True, "m") in vs and ("doc", v1, False, "v") in vs
    # Removing the marker brings the key back.
    d = vs3.delete_object(Bucket=b, Key="doc", VersionId=marker)
    assert d["DeleteMarker"] is True and d["VersionId"] == marker
    assert body(vs3, b, "doc") == b"one"
    assert [o["Key"] for o in vs3.list_objects_v2(Bucket=b)["Contents"]] == ["doc"]


def test_delete_a_version_for_good(vs3):
    b = new_bucket(vs3, "Enabled")
    v1 = vs3.put_object(Bucket=b, Key="k", Body=b"1")["VersionId"]
    v2 = vs3.put_object(Bucket=b, Key="k", Body=b"2")["VersionId"]
    d = vs3.delete_object(Bucket=b, Key="k", VersionId=v2)
    assert d["VersionId"] == v2 and "DeleteMarker" not in d
    assert body(vs3, b, "k") == b"1"
    expect_error(vs3.get_object, "NoSuchVersion", 404, Bucket=b, Key="k", VersionId=v2)
    # Deleting a version that is not there succeeds, as on AWS.
    vs3.delete_object(Bucket=b, Key="k", VersionId=v2)
    vs3.delete_object(Bucket=b, Key="k", VersionId=v1)
    expect_error(vs3.get_object, "NoSuchKey", 404, Bucket=b, Key="k")
    assert versions(vs3, b)[1] == []


def test_bad_version_ids(vkura, vs3):
    b = new_bucket(vs3, "Enabled")
    vs3.put_object(Bucket=b, Key="k", Body=b"x")
    for vid in ("nope", "0" * 31, "g" * 32, "0" * 33):
        r = raw_request(vkura, "GET", f"/{b}/k", f"versionId={vid}")
        assert r.status == 400 and r.error_code() == "InvalidArgument", (vid, r)
    r = raw_request(vkura, "GET", f"/{b}/k", "versionId=")
    assert r.status == 400 and r.error_code() == "InvalidArgument"
    expect_error(vs3.get_object, "NoSuchVersion", 404, Bucket=b, Key="k",
                 VersionId="0" * 32)


def test_bucket_with_versions_is_not_empty(vs3):
    b = new_bucket(vs3, "Enabled")
    v = vs3.put_object(Bucket=b, Key="k", Body=b"x")["VersionId"]
    m = vs3.delete_object(Bucket=b, Key="k")["VersionId"]
    expect_error(vs3.delete_bucket, "BucketNotEmpty", 409, Bucket=b)
    vs3.delete_object(Bucket=b, Key="k", VersionId=v)
    expect_error(vs3.delete_bucket, "BucketNotEmpty", 409, Bucket=b)
    vs3.delete_object(Bucket=b, Key="k", VersionId=m)
    vs3.delete_bucket(Bucket=b)


# -- the null version ----------------------------------------------------------

def test_unversioned_bucket_has_null_versions(vkura, vs3):
    b = new_bucket(vs3)
    r = vs3.put_object(Bucket=b, Key="k", Body=b"1")
    assert "VersionId" not in r
    vs3.put_object(Bucket=b, Key="k", Body=b"2")
    h = raw_request(vkura, "HEAD", f"/{b}/k")
    assert "x-amz-version-id" not in h.headers
    assert body(vs3, b, "k", VersionId="null") == b"2"
    _, vs = versions(vs3, b)
    assert vs == [("k", "null", True, "v")]
    vs3.delete_object(Bucket=b, Key="k")
    assert versions(vs3, b)[1] == []


def test_suspended_bucket_writes_the_null_version(vs3):
    b = new_bucket(vs3, "Enabled")
    v1 = vs3.put_object(Bucket=b, Key="k", Body=b"kept")["VersionId"]
    vs3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    vs3.put_object(Bucket=b, Key="k", Body=b"null-1")
    assert vs3.head_object(Bucket=b, Key="k")["VersionId"] == "null"
    vs3.put_object(Bucket=b, Key="k", Body=b"null-2")   # replaces the null version
    _, vs = versions(vs3, b)
    assert vs == [("k", "null", True, "v"), ("k", v1, False, "v")]
    assert body(vs3, b, "k") == b"null-2"
    # DELETE puts a null delete marker in its place.
    d = vs3.delete_object(Bucket=b, Key="k")
    assert d["DeleteMarker"] is True and d["VersionId"] == "null"
    _, vs = versions(vs3, b)
    assert vs == [("k", v1, False, "v"), ("k", "null", True, "m")]
    assert body(vs3, b, "k", VersionId=v1) == b"kept"
    # Enabled again: new versions above the null marker.
    vs3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    v3 = vs3.put_object(Bucket=b, Key="k", Body=b"three")["VersionId"]
    assert v3 != "null" and body(vs3, b, "k") == b"three"


def test_versioning_survives_a_restart(vkura, vs3):
    b = new_bucket(vs3, "Enabled")
    v1 = vs3.put_object(Bucket=b, Key="k", Body=b"1")["VersionId"]
    v2 = vs3.put_object(Bucket=b, Key="k", Body=b"2")["VersionId"]
    vkura.restart()
    client = vkura.root_client()
    assert client.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    assert body(client, b, "k", VersionId=v1) == b"1"
    assert body(client, b, "k") == b"2"
    assert client.get_object(Bucket=b, Key="k")["VersionId"] == v2


def test_upgrade_from_schema5_keeps_every_object(tmp_path):
    """A data directory written by the kura before versions (schema 5,
    sealed rows; fixtures/make_schema5.py) opens: every object is its key's
    null version, its seal still holds, and the bucket can be versioned."""
    with running_server(tmp_path, start=False) as srv:
        with tarfile.open(FIXTURES / "schema5-data.tar.gz") as tar:
            tar.extractall(tmp_path)
        srv.access_key = "KSCHEMAFIVEFIXTURE00"
        srv.secret_key = "schema5schema5schema5schema5schema5sch"
        srv.start()
        c = srv.root_client()
        got = c.get_object(Bucket="legacy", Key="plain.txt")
        assert got["Body"].read() == b"written by schema 5"
        assert got["Metadata"] == {"origin": "b3602b8"}
        assert c.get_object_tagging(Bucket="legacy", Key="plain.txt")["TagSet"] == [
            {"Key": "era", "Value": "schema5"}]
        assert body(c, "legacy", "mp.bin") == b"m" * 100
        assert body(c, "legacy", "dir/nested", VersionId="null") == b"nested"
        _, vs = versions(c, "legacy")
        assert vs == [("dir/nested", "null", True, "v"), ("mp.bin", "null", True, "v"),
                      ("plain.txt", "null", True, "v")]
        c.put_bucket_versioning(Bucket="legacy",
                                VersioningConfiguration={"Status": "Enabled"})
        vid = c.put_object(Bucket="legacy", Key="plain.txt", Body=b"v2")["VersionId"]
        assert body(c, "legacy", "plain.txt", VersionId="null") == b"written by schema 5"
        assert c.get_object(Bucket="legacy", Key="plain.txt")["VersionId"] == vid
        r = srv.cli("audit", "verify")
        assert r.returncode == 0, r.stdout + r.stderr


# -- other operations with versions --------------------------------------------

def test_copy_from_a_version(vs3):
    b = new_bucket(vs3, "Enabled")
    v1 = vs3.put_object(Bucket=b, Key="src", Body=b"old")["VersionId"]
    vs3.put_object(Bucket=b, Key="src", Body=b"new")
    r = vs3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src",
                                                        "VersionId": v1})
    assert r["CopySourceVersionId"] == v1
    assert r["VersionId"] not in (v1, "null")
    assert body(vs3, b, "dst") == b"old"
    m = vs3.delete_object(Bucket=b, Key="src")["VersionId"]
    expect_error(vs3.copy_object, "NoSuchKey", 404, Bucket=b, Key="dst2",
                 CopySource={"Bucket": b, "Key": "src"})
    expect_error(vs3.copy_object, "NoSuchVersion", 404, Bucket=b, Key="dst2",
                 CopySource={"Bucket": b, "Key": "src", "VersionId": "0" * 32})
    assert m


def test_tagging_a_version(vs3):
    b = new_bucket(vs3, "Enabled")
    v1 = vs3.put_object(Bucket=b, Key="k", Body=b"1")["VersionId"]
    v2 = vs3.put_object(Bucket=b, Key="k", Body=b"2")["VersionId"]
    r = vs3.put_object_tagging(Bucket=b, Key="k", VersionId=v1,
                              Tagging={"TagSet": [{"Key": "old", "Value": "yes"}]})
    assert r["VersionId"] == v1
    t = vs3.get_object_tagging(Bucket=b, Key="k", VersionId=v1)
    assert t["TagSet"] == [{"Key": "old", "Value": "yes"}] and t["VersionId"] == v1
    assert vs3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == []
    assert body(vs3, b, "k", VersionId=v1) == b"1"
    assert vs3.get_object(Bucket=b, Key="k")["VersionId"] == v2


def test_multipart_completion_is_a_version(vs3):
    b = new_bucket(vs3, "Enabled")
    v1 = vs3.put_object(Bucket=b, Key="mp", Body=b"small")["VersionId"]
    up = vs3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
    part = b"p" * (5 * 1024 * 1024)
    e = vs3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=part)["ETag"]
    r = vs3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert r["VersionId"] not in (v1, "null")
    assert body(vs3, b, "mp") == part
    assert body(vs3, b, "mp", VersionId=v1) == b"small"


def test_delete_objects_with_versions(vs3):
    b = new_bucket(vs3, "Enabled")
    va = vs3.put_object(Bucket=b, Key="a", Body=b"a")["VersionId"]
    vs3.put_object(Bucket=b, Key="b", Body=b"b")
    r = vs3.delete_objects(Bucket=b, Delete={"Objects": [
        {"Key": "a", "VersionId": va}, {"Key": "b"},
        {"Key": "c", "VersionId": "bogus"}]})
    deleted = {d["Key"]: d for d in r["Deleted"]}
    assert deleted["a"]["VersionId"] == va and "DeleteMarker" not in deleted["a"]
    assert deleted["b"]["DeleteMarker"] is True
    assert deleted["b"]["DeleteMarkerVersionId"] not in ("", "null")
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("c", "NoSuchVersion")]
    _, vs = versions(vs3, b)
    assert [(k, kind) for k, _, _, kind in vs] == [("b", "v"), ("b", "m")]


def test_list_object_versions_pages(vs3):
    b = new_bucket(vs3, "Enabled")
    want = []
    for key in ("a", "b/1", "b/2", "c"):
        vids = [vs3.put_object(Bucket=b, Key=key, Body=b"x")["VersionId"] for _ in range(3)]
        want += [(key, v) for v in reversed(vids)]
    got, kw = [], {}
    while True:
        r = vs3.list_object_versions(Bucket=b, MaxKeys=2, **kw)
        page = [(v["Key"], v["VersionId"]) for v in r.get("Versions", [])]
        assert len(page) <= 2
        got += page
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"], "VersionIdMarker": r["NextVersionIdMarker"]}
    assert got == want
    # Delimiter and prefix roll up as in ListObjects.
    r = vs3.list_object_versions(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["b/"]
    assert {v["Key"] for v in r["Versions"]} == {"a", "c"}
    r = vs3.list_object_versions(Bucket=b, Prefix="b/")
    assert [v["Key"] for v in r["Versions"]] == ["b/1"] * 3 + ["b/2"] * 3
    # A version marker without a key marker, or naming nothing.
    expect_error(vs3.list_object_versions, "InvalidArgument", 400, Bucket=b,
                 VersionIdMarker=want[0][1])
    expect_error(vs3.list_object_versions, "InvalidArgument", 400, Bucket=b,
                 KeyMarker="a", VersionIdMarker="0" * 32)


def test_list_objects_skips_keys_whose_newest_is_a_marker(vs3):
    b = new_bucket(vs3, "Enabled")
    for i in range(30):
        vs3.put_object(Bucket=b, Key="many", Body=str(i).encode())
    for key in ("a", "gone", "z"):
        vs3.put_object(Bucket=b, Key=key, Body=b"x")
    vs3.delete_object(Bucket=b, Key="gone")
    r = vs3.list_objects_v2(Bucket=b)
    assert [o["Key"] for o in r["Contents"]] == ["a", "many", "z"]
    r = vs3.list_objects_v2(Bucket=b, MaxKeys=1, StartAfter="a")
    assert [o["Key"] for o in r["Contents"]] == ["many"]
    assert body(vs3, b, "many") == b"29"


# -- conditional writes ---------------------------------------------------------

def put_raw(kura, bucket, key, data, **headers):
    return raw_request(kura, "PUT", f"/{bucket}/{key}", headers=headers, body=data)


@pytest.mark.parametrize("versioning", [None, "Enabled"])
def test_if_none_match_creates_only_once(vkura, vs3, versioning):
    b = new_bucket(vs3, versioning)
    r = put_raw(vkura, b, "lock", b"first", **{"If-None-Match": "*"})
    assert r.status == 200, r
    r = put_raw(vkura, b, "lock", b"second", **{"If-None-Match": "*"})
    assert r.status == 412 and r.error_code() == "PreconditionFailed", r
    assert body(vs3, b, "lock") == b"first"
    r = put_raw(vkura, b, "lock", b"x", **{"If-None-Match": '"abc"'})
    assert r.status == 501, r


def test_if_none_match_after_a_delete_marker(vkura, vs3):
    b = new_bucket(vs3, "Enabled")
    vs3.put_object(Bucket=b, Key="k", Body=b"1")
    vs3.delete_object(Bucket=b, Key="k")
    r = put_raw(vkura, b, "k", b"2", **{"If-None-Match": "*"})
    assert r.status == 200, r


def test_if_match_on_put_and_delete(vkura, vs3):
    b = new_bucket(vs3)
    etag = vs3.put_object(Bucket=b, Key="k", Body=b"one")["ETag"]
    r = put_raw(vkura, b, "k", b"two", **{"If-Match": '"0123"'})
    assert r.status == 412, r
    r = put_raw(vkura, b, "k", b"two", **{"If-Match": etag})
    assert r.status == 200, r
    r = put_raw(vkura, b, "missing", b"x", **{"If-Match": etag})
    assert r.status == 404 and r.error_code() == "NoSuchKey", r
    r = raw_request(vkura, "DELETE", f"/{b}/k", headers={"If-Match": etag})
    assert r.status == 412, r
    new = vs3.head_object(Bucket=b, Key="k")["ETag"]
    r = raw_request(vkura, "DELETE", f"/{b}/k", headers={"If-Match": new})
    assert r.status == 204, r
    expect_error(vs3.head_object, "404", 404, Bucket=b, Key="k")


def test_complete_multipart_if_none_match(vkura, vs3):
    b = new_bucket(vs3)
    vs3.put_object(Bucket=b, Key="k", Body=b"there")
    up = vs3.create_multipart_upload(Bucket=b, Key="k")["UploadId"]
    e = vs3.upload_part(Bucket=b, Key="k", UploadId=up, PartNumber=1, Body=b"x")["ETag"]
    doc = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
           f"<ETag>{e}</ETag></Part></CompleteMultipartUpload>").encode()
    r = raw_request(vkura, "POST", f"/{b}/k", f"uploadId={up}",
                    headers={"If-None-Match": "*"}, body=doc)
    assert r.status == 412, r
    assert body(vs3, b, "k") == b"there"
    vs3.delete_object(Bucket=b, Key="k")
    r = raw_request(vkura, "POST", f"/{b}/k", f"uploadId={up}",
                    headers={"If-None-Match": "*"}, body=doc)
    assert r.status == 200, r
    assert body(vs3, b, "k") == b"x"


@pytest.mark.parametrize("versioning", [None, "Enabled"])
def test_racing_conditional_writers_one_wins(vkura, vs3, versioning):
    b = new_bucket(vs3, versioning)
    results = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def writer(i):
        start.wait()
        r = put_raw(vkura, b, "terraform.tflock", f"writer-{i}".encode(),
                    **{"If-None-Match": "*"})
        with lock:
            results.append((i, r.status))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, status in results if status == 200]
    assert len(winners) == 1, results
    assert all(status in (412, 409) for _, status in results if status != 200), results
    assert body(vs3, b, "terraform.tflock") == f"writer-{winners[0]}".encode()
    _, vs = versions(vs3, b)
    assert len(vs) == 1


def test_racing_unconditional_writers_keep_every_version(vkura, vs3):
    b = new_bucket(vs3, "Enabled")
    ids, lock = [], threading.Lock()
    start = threading.Barrier(8)

    def writer(i):
        start.wait()
        r = put_raw(vkura, b, "hot", f"w{i}".encode())
        assert r.status == 200, r
        with lock:
            ids.append(r.headers["x-amz-version-id"])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, vs = versions(vs3, b)
    assert sorted(v for _, v, _, _ in vs) == sorted(ids)
    latest = [v for _, v, latest, _ in vs if latest]
    assert latest == [vs3.head_object(Bucket=b, Key="hot")["VersionId"]]


def test_against_meta_agrees_with_versions(vkura, vs3):
    """The audit log's replay (`kura audit verify --against-meta`) knows
    versions: markers, versions deleted for good and null versions are no
    rollback."""
    b = new_bucket(vs3, "Enabled")
    v1 = vs3.put_object(Bucket=b, Key="k", Body=b"1")["VersionId"]
    vs3.put_object(Bucket=b, Key="k", Body=b"2")
    vs3.delete_object(Bucket=b, Key="k")                     # marker newest
    vs3.delete_object(Bucket=b, Key="k", VersionId=v1)       # an old one, for good
    v3 = vs3.put_object(Bucket=b, Key="j", Body=b"3")["VersionId"]
    vs3.put_object(Bucket=b, Key="j", Body=b"4")
    vs3.delete_object(Bucket=b, Key="j", VersionId=vs3.head_object(
        Bucket=b, Key="j")["VersionId"])                      # newest, for good
    assert body(vs3, b, "j") == b"3" and vs3.head_object(
        Bucket=b, Key="j")["VersionId"] == v3
    vs3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    vs3.put_object(Bucket=b, Key="n", Body=b"null")
    vs3.delete_object(Bucket=b, Key="n")
    vs3.delete_object(Bucket=b, Key="j", VersionId="0" * 32)   # no such version
    vs3.delete_objects(Bucket=b, Delete={"Objects": [
        {"Key": "j", "VersionId": "1" * 32}, {"Key": "k"}]})
    r = vkura.cli("audit", "verify", "--against-meta")
    assert r.returncode == 0, r.stdout + r.stderr

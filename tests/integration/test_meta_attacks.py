"""The metadata cannot lie (issue 10, item 2): attacks by someone who can
read and rewrite meta.db and the blob store but holds no key.

Each attack edits meta.db with sqlite3 — on a stopped server and on a
running one — and must fail loudly: never a 200 with other bytes or other
headers, but an error, an "integrity.failure" audit record naming the
request and the object, and a count in the server's log.  The database
must not hold a function of any object's plaintext either (no MD5 ETags).
"""

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import time

import pytest
from botocore.exceptions import ClientError

import helpers as H
from conftest import running_server, server_fixture

MIB = 1024 * 1024


# -- the attacker's tools ----------------------------------------------------

def db_path(server):
    return os.path.join(server.data_dir, "meta.db")


def sql(server, statement, params=()):
    """Run one statement on meta.db as the attacker would (the server may be
    running: WAL lets a second writer in)."""
    con = sqlite3.connect(db_path(server), timeout=30)
    try:
        cur = con.execute(statement, params)
        rows = cur.fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def bucket_id(server, name):
    return sql(server, "SELECT id FROM buckets WHERE name = ?", (name,))[0][0]


def obj_row(server, bucket, key):
    rows = sql(server, "SELECT version_uid, size, part_count FROM objects "
                       "WHERE bucket_id = ? AND key = ?",
               (bucket_id(server, bucket), key.encode()))
    assert rows, f"no row for {bucket}/{key}"
    return rows[0]


def parts_of(server, bucket, key):
    uid = obj_row(server, bucket, key)[0]
    return sql(server, "SELECT part_no, blob_id, size, seg_size, dek_wrapped "
                       "FROM parts WHERE version_uid = ? ORDER BY part_no", (uid,))


def blob_file(server, blob_id):
    h = blob_id.hex()
    return os.path.join(server.data_dir, "blobs", h[:2], h[2:4], h)


def integrity_records(server):
    r = server.cli("audit", "export")
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    return [d for d in docs if d.get("op") == "integrity.failure"]


def failures_logged(server):
    return server.stderr_text().count("integrity failure #")


def assert_refused(fn, *args, head=False, **kwargs):
    """The request fails with 500 InternalError (not a 200, not a 404 that
    would hide the tampering).  A HEAD answer has no body to name the
    error."""
    with pytest.raises(ClientError) as e:
        fn(*args, **kwargs)
    status = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status == 500, e.value.response
    if not head:
        assert e.value.response["Error"]["Code"] == "InternalError"
    return e.value.response


def assert_get_refused(s3, bucket, key):
    assert_refused(s3.get_object, Bucket=bucket, Key=key)
    assert_refused(s3.head_object, Bucket=bucket, Key=key, head=True)


def assert_recorded(server, before, bucket, key=None):
    """A new integrity.failure record for bucket (and key) with the request
    id of a failed request, and the failure counted in the log."""
    recs = integrity_records(server)[before:]
    assert recs, "no integrity.failure record"
    assert any(r.get("bucket") == bucket and (key is None or r.get("key") == key)
               for r in recs), recs
    assert all(r.get("request_id") and r.get("what") for r in recs), recs


# -- fixtures ----------------------------------------------------------------

server = server_fixture()


@pytest.fixture(params=["stopped", "running"])
def mode(request):
    return request.param


def tamper(server, mode, *statements):
    """Apply sqlite3 statements (text, params) with the server stopped and
    restarted afterwards, or while it runs."""
    if mode == "stopped":
        problems = server.stop()
        assert not problems, problems
    for st in statements:
        sql(server, *st) if isinstance(st, tuple) else sql(server, st)
    if mode == "stopped":
        server.start()


def put_two(s3):
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="alice", Body=b"alice's secret",
                  ContentType="text/plain", Metadata={"owner": "alice"})
    s3.put_object(Bucket="bkt", Key="bob", Body=b"bob's data")


def put_multipart(s3, bucket, key, sizes):
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)
    parts, body = [], b""
    for n, size in enumerate(sizes, 1):
        data = bytes([n]) * size
        body += data
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"],
                           PartNumber=n, Body=data)
        parts.append({"PartNumber": n, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": parts})
    return body


# -- swapping objects ----------------------------------------------------------

def test_swap_keys_within_a_bucket(server, mode):
    s3 = server.client()
    put_two(s3)
    before = len(integrity_records(server))
    b = bucket_id(server, "bkt")
    tamper(server, mode,
           ("UPDATE objects SET key = x'00' WHERE bucket_id = ? AND key = ?", (b, b"alice")),
           ("UPDATE objects SET key = ? WHERE bucket_id = ? AND key = ?", (b"alice", b, b"bob")),
           ("UPDATE objects SET key = ? WHERE bucket_id = ? AND key = x'00'", (b"bob", b)))
    s3 = server.client()
    assert_get_refused(s3, "bkt", "alice")
    assert_get_refused(s3, "bkt", "bob")
    assert_refused(s3.list_objects_v2, Bucket="bkt")
    assert_recorded(server, before, "bkt", "alice")
    assert failures_logged(server) >= 1
    # The run's count is in the server's stop record.
    if mode == "running":
        n = failures_logged(server)
        server.restart()
        stops = [json.loads(l) for l in server.cli("audit", "export").stdout.splitlines()
                 if '"server.stop"' in l]
        assert stops[-1]["integrity_failures"] == n


def test_move_object_to_another_bucket(server, mode):
    s3 = server.client()
    put_two(s3)
    s3.create_bucket(Bucket="other")
    s3.put_object(Bucket="other", Key="x", Body=b"x")
    before = len(integrity_records(server))
    tamper(server, mode,
           ("UPDATE objects SET bucket_id = ? WHERE bucket_id = ? AND key = ?",
            (bucket_id(server, "other"), bucket_id(server, "bkt"), b"alice")))
    s3 = server.client()
    assert_get_refused(s3, "other", "alice")
    assert_recorded(server, before, "other", "alice")
    # The untouched object of that bucket is still served.
    assert s3.get_object(Bucket="other", Key="x")["Body"].read() == b"x"


def test_move_object_to_another_tenant(server, mode):
    s3 = server.client()
    put_two(s3)
    access, secret = server.add_tenant("mallory")
    mallory = server.client(access, secret)
    mallory.create_bucket(Bucket="mallorys")
    before = len(integrity_records(server))
    tamper(server, mode,
           ("UPDATE objects SET bucket_id = ? WHERE bucket_id = ? AND key = ?",
            (bucket_id(server, "mallorys"), bucket_id(server, "bkt"), b"alice")))
    mallory = server.client(access, secret)
    assert_get_refused(mallory, "mallorys", "alice")
    assert_refused(mallory.list_objects_v2, Bucket="mallorys")
    assert_recorded(server, before, "mallorys", "alice")


def test_point_a_row_at_another_objects_blob(server, mode):
    s3 = server.client()
    put_two(s3)
    (bno, bblob, bsize, bseg, bdek), = parts_of(server, "bkt", "bob")
    (ano, ablob, asize, aseg, adek), = parts_of(server, "bkt", "alice")
    before = len(integrity_records(server))
    if mode == "stopped":
        server.stop()
    # A copy of bob's blob file under a fresh id, named by alice's row.
    fresh = os.urandom(16)
    os.makedirs(os.path.dirname(blob_file(server, fresh)), exist_ok=True)
    shutil.copy(blob_file(server, bblob), blob_file(server, fresh))
    sql(server, "UPDATE parts SET blob_id = ?, dek_wrapped = ?, size = ? "
                "WHERE version_uid = ?", (fresh, bdek, bsize,
                                          obj_row(server, "bkt", "alice")[0]))
    sql(server, "UPDATE objects SET size = ? WHERE key = ?", (bsize, b"alice"))
    if mode == "stopped":
        server.start()
    assert_get_refused(server.client(), "bkt", "alice")
    assert_recorded(server, before, "bkt", "alice")


# -- the part list ---------------------------------------------------------------

SIZES = [5 * MIB, 5 * MIB, 1000]


@pytest.fixture
def multipart(server):
    s3 = server.client()
    s3.create_bucket(Bucket="mpb")
    body = put_multipart(s3, "mpb", "big", SIZES)
    assert s3.get_object(Bucket="mpb", Key="big")["Body"].read() == body
    return s3


def test_drop_a_middle_part(server, multipart, mode):
    uid, size, count = obj_row(server, "mpb", "big")
    before = len(integrity_records(server))
    tamper(server, mode,
           ("DELETE FROM parts WHERE version_uid = ? AND part_no = 2", (uid,)),
           ("UPDATE objects SET part_count = 2, size = ? WHERE version_uid = ?",
            (size - SIZES[1], uid)))
    assert_get_refused(server.client(), "mpb", "big")
    assert_recorded(server, before, "mpb", "big")


def test_truncate_at_a_part_boundary(server, multipart, mode):
    uid, size, count = obj_row(server, "mpb", "big")
    before = len(integrity_records(server))
    tamper(server, mode,
           ("DELETE FROM parts WHERE version_uid = ? AND part_no = 3", (uid,)),
           ("UPDATE objects SET part_count = 2, size = ? WHERE version_uid = ?",
            (size - SIZES[2], uid)))
    s3 = server.client()
    assert_get_refused(s3, "mpb", "big")
    assert_refused(s3.get_object, Bucket="mpb", Key="big", PartNumber=1)
    assert_recorded(server, before, "mpb", "big")


def test_reorder_parts(server, multipart, mode):
    uid = obj_row(server, "mpb", "big")[0]
    before = len(integrity_records(server))
    tamper(server, mode,
           ("UPDATE parts SET part_no = 100 WHERE version_uid = ? AND part_no = 1", (uid,)),
           ("UPDATE parts SET part_no = 1 WHERE version_uid = ? AND part_no = 2", (uid,)),
           ("UPDATE parts SET part_no = 2 WHERE version_uid = ? AND part_no = 100", (uid,)))
    assert_get_refused(server.client(), "mpb", "big")
    assert_recorded(server, before, "mpb", "big")


def test_duplicate_a_part(server, multipart, mode):
    """Part 2 replaced by a second copy of part 1 (its blob copied to a new
    id, its wrapped DEK taken along)."""
    uid = obj_row(server, "mpb", "big")[0]
    p1 = parts_of(server, "mpb", "big")[0]
    before = len(integrity_records(server))
    if mode == "stopped":
        server.stop()
    fresh = os.urandom(16)
    os.makedirs(os.path.dirname(blob_file(server, fresh)), exist_ok=True)
    shutil.copy(blob_file(server, p1[1]), blob_file(server, fresh))
    sql(server, "UPDATE parts SET blob_id = ?, dek_wrapped = ?, size = ? "
                "WHERE version_uid = ? AND part_no = 2", (fresh, p1[4], p1[2], uid))
    if mode == "stopped":
        server.start()
    assert_get_refused(server.client(), "mpb", "big")
    assert_recorded(server, before, "mpb", "big")


# -- fields a client receives ------------------------------------------------------

FIELD_EDITS = {
    "size": "UPDATE objects SET size = size - 1",
    "etag": "UPDATE objects SET etag = '0123456789abcdef0123456789abcdef'",
    "seal": "UPDATE objects SET seal = zeroblob(length(seal))",
    "no-seal": "UPDATE objects SET seal = NULL, seal_bk_id = NULL",
    "content-type": "UPDATE objects SET content_type = 'text/html'",
    "user-metadata": "UPDATE objects SET user_meta_json = '{\"owner\":\"mallory\"}'",
    "tags": "UPDATE objects SET tags_json = '{\"class\":\"public\"}'",
    "mtime": "UPDATE objects SET mtime_ms = mtime_ms - 86400000",
    "sse": "UPDATE objects SET sse = 1, kms_key_id = (SELECT key_id FROM buckets LIMIT 1)",
}


@pytest.mark.parametrize("field", sorted(FIELD_EDITS))
def test_change_a_field(server, mode, field):
    s3 = server.client()
    put_two(s3)
    s3.put_object_tagging(Bucket="bkt", Key="alice",
                          Tagging={"TagSet": [{"Key": "class", "Value": "secret"}]})
    before = len(integrity_records(server))
    b = bucket_id(server, "bkt")
    tamper(server, mode, (FIELD_EDITS[field] + " WHERE bucket_id = ? AND key = ?",
                          (b, b"alice")))
    s3 = server.client()
    assert_get_refused(s3, "bkt", "alice")
    assert_refused(s3.get_object_tagging, Bucket="bkt", Key="alice")
    assert_refused(s3.list_objects_v2, Bucket="bkt")
    assert_refused(s3.copy_object, Bucket="bkt", Key="copy",
                   CopySource={"Bucket": "bkt", "Key": "alice"})
    assert_recorded(server, before, "bkt", "alice")
    # The neighbour is untouched and still served.
    assert s3.get_object(Bucket="bkt", Key="bob")["Body"].read() == b"bob's data"


# -- uploads in progress -----------------------------------------------------------

def test_upload_headers_and_parts_are_sealed(server, mode):
    s3 = server.client()
    s3.create_bucket(Bucket="upl")
    up = s3.create_multipart_upload(Bucket="upl", Key="k", ContentType="text/plain")
    uid_text = up["UploadId"]
    r = s3.upload_part(Bucket="upl", Key="k", UploadId=uid_text, PartNumber=1,
                       Body=b"p" * 1000)
    before = len(integrity_records(server))
    tamper(server, mode,
           ("UPDATE upload_parts SET size = 999", ()),
           ("UPDATE uploads SET content_type = 'text/html'", ()))
    s3 = server.client()
    assert_refused(s3.list_parts, Bucket="upl", Key="k", UploadId=uid_text)
    assert_refused(s3.complete_multipart_upload, Bucket="upl", Key="k",
                   UploadId=uid_text,
                   MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]})
    assert_refused(s3.list_multipart_uploads, Bucket="upl")
    assert_recorded(server, before, "upl", "k")
    with pytest.raises(ClientError):
        s3.head_object(Bucket="upl", Key="k")


# -- what meta.db reveals ------------------------------------------------------------

def test_no_function_of_plaintext_in_meta_db(tmp_path):
    """No object's plaintext MD5 (an ETag) appears anywhere in meta.db or
    its WAL, for simple, multipart, copied, SSE-C and SSE-KMS objects; and
    SSE-C and SSE-KMS ETags are not MD5s at all (AWS's behaviour)."""
    with running_server(tmp_path, tls=True) as server:
        no_function_of_plaintext(server)


def no_function_of_plaintext(server):
    s3 = server.client()
    s3.create_bucket(Bucket="priv")
    bodies = {f"obj{i}": os.urandom(100 + i) for i in range(5)}
    for k, v in bodies.items():
        s3.put_object(Bucket="priv", Key=k, Body=v)
    mp = put_multipart(s3, "priv", "mp", [5 * MIB, 123])
    s3.copy_object(Bucket="priv", Key="copied", CopySource={"Bucket": "priv", "Key": "obj0"})
    ckey = os.urandom(32)
    sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(ckey).decode(),
             "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(ckey).digest()).decode()}
    secret = b"a guessable SSE-C secret"
    r = s3.put_object(Bucket="priv", Key="ssec", Body=secret, **sse_c)
    assert r["ETag"].strip('"') != H.md5_hex(secret)
    kms = s3.put_object(Bucket="priv", Key="kms", Body=b"kms body",
                        ServerSideEncryption="aws:kms")
    assert kms["ETag"].strip('"') != H.md5_hex(b"kms body")
    # SSE-S3 ETags stay MD5s for the clients that check them.
    assert s3.head_object(Bucket="priv", Key="obj1")["ETag"].strip('"') == \
        H.md5_hex(bodies["obj1"])
    part_md5s = [hashlib.md5(mp[:5 * MIB]).digest(), hashlib.md5(mp[5 * MIB:]).digest()]
    needles = [hashlib.md5(v).hexdigest() for v in list(bodies.values()) + [secret]]
    needles += [m.hex() for m in part_md5s]
    needles += [hashlib.md5(b"".join(part_md5s)).hexdigest()]
    raw = [hashlib.md5(v).digest() for v in bodies.values()] + part_md5s
    files = [p for p in (db_path(server), db_path(server) + "-wal") if os.path.exists(p)]
    assert files
    for path in files:
        data = open(path, "rb").read()
        for n in needles:
            assert n.encode() not in data, f"MD5 {n} found in {path}"
        for n in raw:
            assert n not in data, f"raw MD5 found in {path}"
    # Everything still reads back.
    for k, v in bodies.items():
        assert s3.get_object(Bucket="priv", Key=k)["Body"].read() == v
    assert s3.get_object(Bucket="priv", Key="ssec", **sse_c)["Body"].read() == secret


def test_tagging_reseals_and_survives_restart(server):
    s3 = server.client()
    put_two(s3)
    s3.put_object_tagging(Bucket="bkt", Key="alice",
                          Tagging={"TagSet": [{"Key": "a", "Value": "1"}]})
    s3.delete_object_tagging(Bucket="bkt", Key="bob")
    server.restart()
    s3 = server.client()
    assert s3.get_object_tagging(Bucket="bkt", Key="alice")["TagSet"] == \
        [{"Key": "a", "Value": "1"}]
    assert s3.get_object(Bucket="bkt", Key="alice")["Body"].read() == b"alice's secret"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]] == ["alice", "bob"]
    assert not integrity_records(server)


# -- rollback ---------------------------------------------------------------------

def test_rollback_of_a_whole_row_is_out_of_reach_of_seals(server):
    """Replaying an object's older row with its older blobs is consistent
    under every seal: the seals cannot detect it (docs/SECURITY.md says
    so), the audit cross-check does: `kura audit verify --against-meta`."""
    s3 = server.client()
    s3.create_bucket(Bucket="rbk")
    s3.put_object(Bucket="rbk", Key="doc", Body=b"version one")
    server.stop()
    shutil.copytree(server.data_dir, str(server.data_dir) + ".old")
    server.start()
    s3 = server.client()
    s3.put_object(Bucket="rbk", Key="doc", Body=b"version two")
    assert server.cli("audit", "verify", "--against-meta").returncode == 0
    server.stop()
    # Put the old meta.db and blobs back, keep the newer audit log.
    old = str(server.data_dir) + ".old"
    for name in ("meta.db", "meta.db-wal", "meta.db-shm"):
        if os.path.exists(os.path.join(server.data_dir, name)):
            os.unlink(os.path.join(server.data_dir, name))
        if os.path.exists(os.path.join(old, name)):
            shutil.copy(os.path.join(old, name), os.path.join(server.data_dir, name))
    shutil.rmtree(os.path.join(server.data_dir, "blobs"))
    shutil.copytree(os.path.join(old, "blobs"), os.path.join(server.data_dir, "blobs"))
    server.start()
    s3 = server.client()
    assert s3.get_object(Bucket="rbk", Key="doc")["Body"].read() == b"version one"
    r = server.cli("audit", "verify", "--against-meta")
    assert r.returncode != 0
    assert "rbk" in r.stdout + r.stderr and "doc" in r.stdout + r.stderr


def test_versions_cannot_be_reordered_and_a_dropped_newest_is_found(server):
    """A key's versions carry their order in their seals: swapping two
    versions' vseq fails both; deleting the newest row outright (a
    rollback) is reported by --against-meta."""
    s3 = server.client()
    s3.create_bucket(Bucket="vorder")
    s3.put_bucket_versioning(Bucket="vorder",
                             VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="vorder", Key="k", Body=b"old")["VersionId"]
    v2 = s3.put_object(Bucket="vorder", Key="k", Body=b"new")["VersionId"]
    server.stop()
    con = sqlite3.connect(db_path(server))
    rows = con.execute("SELECT version_uid, vseq FROM objects WHERE key = ?",
                       (b"k",)).fetchall()
    (u_new, s_new), (u_old, s_old) = sorted(rows, key=lambda r: -r[1])
    assert u_new.hex() == v2 and u_old.hex() == v1
    con.execute("UPDATE objects SET vseq = vseq + 4000000000000000 WHERE key = ?",
                (b"k",))
    con.execute("UPDATE objects SET vseq = ? WHERE version_uid = ?", (s_new, u_old))
    con.execute("UPDATE objects SET vseq = ? WHERE version_uid = ?", (s_old, u_new))
    con.commit()
    server.start()
    s3 = server.client()
    for vid in (None, v1, v2):
        kw = {"VersionId": vid} if vid else {}
        H.expect_error("InternalError", 500, s3.get_object, Bucket="vorder", Key="k", **kw)
    # Put the order back, then drop the newest version's rows.
    server.stop()
    con.execute("UPDATE objects SET vseq = 1 WHERE version_uid = ?", (u_old,))
    con.execute("UPDATE objects SET vseq = ? WHERE version_uid = ?", (s_new, u_new))
    con.execute("UPDATE objects SET vseq = ? WHERE version_uid = ?", (s_old, u_old))
    con.execute("DELETE FROM parts WHERE version_uid = ?", (u_new,))
    con.execute("DELETE FROM objects WHERE version_uid = ?", (u_new,))
    con.commit()
    con.close()
    server.start()
    s3 = server.client()
    assert s3.get_object(Bucket="vorder", Key="k")["Body"].read() == b"old"
    r = server.cli("audit", "verify", "--against-meta")
    assert r.returncode != 0
    assert "ROLLED BACK vorder/k" in r.stdout, r.stdout


def test_a_bucket_put_back_from_before_versioning_is_reported(server):
    """A bucket row put back as it was before versioning was enabled (its
    old MAC still holds) would make writes replace data in place again:
    --against-meta compares it with the log's last PutBucketVersioning."""
    s3 = server.client()
    s3.create_bucket(Bucket="vback")
    con = sqlite3.connect(db_path(server))
    (old_mac,) = con.execute("SELECT mac FROM buckets WHERE name = 'vback'").fetchone()
    con.close()
    s3.put_bucket_versioning(Bucket="vback", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="vback", Key="k", Body=b"1")
    r = server.cli("audit", "verify", "--against-meta")
    assert r.returncode == 0, r.stdout + r.stderr
    server.stop()
    con = sqlite3.connect(db_path(server))
    con.execute("UPDATE buckets SET versioning = 0, mac = ? WHERE name = 'vback'",
                (old_mac,))
    con.commit()
    con.close()
    server.start()
    # The row is one kura wrote: requests take it.
    assert "Status" not in server.client().get_bucket_versioning(Bucket="vback")
    r = server.cli("audit", "verify", "--against-meta")
    assert r.returncode != 0
    assert "ROLLED BACK bucket 'vback'" in r.stdout, r.stdout
    assert "Enabled/-" in r.stdout and "off/-" in r.stdout, r.stdout


# -- the upgrade of metadata written before seals existed -----------------------

# objects as schema 5 had it (one row per key), for make_legacy.
OBJECTS_V5 = """CREATE TABLE objects_v5 (
  bucket_id INTEGER NOT NULL REFERENCES buckets(id), key BLOB NOT NULL,
  version_uid BLOB NOT NULL UNIQUE, size INTEGER NOT NULL, etag TEXT NOT NULL,
  mtime_ms INTEGER NOT NULL, content_type TEXT, content_encoding TEXT,
  content_language TEXT, content_disposition TEXT, cache_control TEXT,
  expires TEXT, user_meta_json TEXT, part_count INTEGER NOT NULL,
  tags_json TEXT, sse INTEGER NOT NULL DEFAULT 0,
  kms_key_id INTEGER REFERENCES keys(id), ssec_hmac BLOB, seal BLOB,
  seal_bk_id INTEGER, parts_digest BLOB, PRIMARY KEY (bucket_id, key)
) WITHOUT ROWID, STRICT"""
OBJECTS_V5_COLS = ("bucket_id, key, version_uid, size, etag, mtime_ms, content_type, "
                   "content_encoding, content_language, content_disposition, "
                   "cache_control, expires, user_meta_json, part_count, tags_json, sse, "
                   "kms_key_id, ssec_hmac, seal, seal_bk_id, parts_digest")


def undo_placement(con):
    """Schema 7 -> 6: no placement column, no replica tables."""
    con.execute("ALTER TABLE buckets DROP COLUMN placement")
    con.execute("DROP TABLE replicas")
    con.execute("DROP TABLE replica_events")


def undo_versions(con):
    """Schema 7 -> 5: objects keyed by (bucket, key) again, no versioning
    or Object Lock columns (the test's keys each have one version)."""
    undo_placement(con)
    con.execute("DROP INDEX objects_null")
    con.execute(OBJECTS_V5)
    con.execute(f"INSERT INTO objects_v5 SELECT {OBJECTS_V5_COLS} FROM objects")
    con.execute("DROP TABLE objects")
    con.execute("ALTER TABLE objects_v5 RENAME TO objects")
    con.execute("CREATE INDEX objects_seal_bk ON objects(seal_bk_id, bucket_id)")
    con.execute("ALTER TABLE buckets DROP COLUMN versioning")
    # The rest of schema 6: Object Lock and lifecycle columns.
    con.execute("DROP INDEX IF EXISTS objects_locked")
    for col in ("object_lock", "lock_default_mode", "lock_default_days",
                "lock_default_years", "lifecycle", "lifecycle_digest"):
        con.execute(f"ALTER TABLE buckets DROP COLUMN {col}")
    for col in ("lock_mode", "lock_until_ms", "legal_hold"):
        con.execute(f"ALTER TABLE uploads DROP COLUMN {col}")


def make_legacy(server, etags, part_etags, upload_part_etags):
    """Turn a stopped server's meta.db back into a schema-4 database (the
    last one without seals): objects without versions, no seal or row MAC
    columns, ETags in the clear."""
    con = sqlite3.connect(db_path(server))
    try:
        undo_versions(con)
        for idx in ("objects_seal_bk", "uploads_seal_bk", "upload_parts_seal_bk"):
            con.execute(f"DROP INDEX {idx}")
        for table, cols in (("objects", ("seal", "seal_bk_id", "parts_digest")),
                            ("uploads", ("seal", "seal_bk_id")),
                            ("upload_parts", ("seal", "seal_bk_id")),
                            ("tenants", ("mac",)), ("access_keys", ("mac",)),
                            ("buckets", ("mac",)), ("keys", ("mac",)),
                            ("key_versions", ("mac",)), ("bucket_keys", ("mac",))):
            for col in cols:
                con.execute(f"ALTER TABLE {table} DROP COLUMN {col}")
        for (bucket, key), etag in etags.items():
            con.execute("UPDATE objects SET etag = ? WHERE key = ? AND bucket_id = "
                        "(SELECT id FROM buckets WHERE name = ?)",
                        (etag, key.encode(), bucket))
        for (uid, part_no), etag in part_etags.items():
            con.execute("UPDATE parts SET etag = ? WHERE version_uid = ? AND part_no = ?",
                        (etag, uid, part_no))
        for part_no, etag in upload_part_etags.items():
            con.execute("UPDATE upload_parts SET etag = ? WHERE part_no = ?",
                        (etag, part_no))
        con.execute("DELETE FROM settings WHERE name = 'seal_pending'")
        con.execute("PRAGMA user_version = 4")
        con.commit()
    finally:
        con.close()
    # The audit log of a kura from before seals holds no start on sealed
    # metadata: start the upgraded server with a fresh log (this one's
    # records say a server already ran sealed, and the upgrade would — as
    # it must for a planted marker — refuse to seal anything).
    shutil.rmtree(os.path.join(server.data_dir, "audit"))


def test_rows_written_before_seals_are_sealed_at_start(server):
    s3 = server.client()
    s3.create_bucket(Bucket="old")
    etags, part_etags = {}, {}
    for k in ("a", "b", "c"):
        body = k.encode() * 100
        s3.put_object(Bucket="old", Key=k, Body=body, ContentType="text/plain",
                      Tagging="t=1")
        etags[("old", k)] = H.md5_hex(body)
    mp_body = put_multipart(s3, "old", "mp", [5 * MIB, 10])
    uid = obj_row(server, "old", "mp")[0]
    part_etags[(uid, 1)] = hashlib.md5(mp_body[:5 * MIB]).hexdigest()
    part_etags[(uid, 2)] = hashlib.md5(mp_body[5 * MIB:]).hexdigest()
    mp_etag = s3.head_object(Bucket="old", Key="mp")["ETag"].strip('"')
    etags[("old", "mp")] = mp_etag
    for k in ("a", "b", "c"):
        u = obj_row(server, "old", k)[0]
        part_etags[(u, 0)] = etags[("old", k)]
    up = s3.create_multipart_upload(Bucket="old", Key="pending")
    s3.upload_part(Bucket="old", Key="pending", UploadId=up["UploadId"], PartNumber=1,
                   Body=b"x" * 100)
    upload_part_etags = {1: H.md5_hex(b"x" * 100)}
    assert not server.stop()
    make_legacy(server, etags, part_etags, upload_part_etags)
    # The old-style database holds the MD5s in the clear...
    assert etags[("old", "a")].encode() in open(db_path(server), "rb").read()
    server.start()
    s3 = server.client()
    # ...and after the start-up upgrade everything reads back as before.
    for (b, k), etag in etags.items():
        h = s3.head_object(Bucket=b, Key=k)
        assert h["ETag"].strip('"') == etag
    assert s3.get_object(Bucket="old", Key="a")["Body"].read() == b"a" * 100
    assert s3.get_object(Bucket="old", Key="mp")["Body"].read() == mp_body
    assert [o["ETag"].strip('"') for o in
            s3.list_objects_v2(Bucket="old")["Contents"]] == \
        [etags[("old", k)] for k in ("a", "b", "c", "mp")]
    parts = s3.list_parts(Bucket="old", Key="pending", UploadId=up["UploadId"])["Parts"]
    assert [p["ETag"].strip('"') for p in parts] == [upload_part_etags[1]]
    s3.complete_multipart_upload(Bucket="old", Key="pending", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": [
                                     {"PartNumber": 1, "ETag": parts[0]["ETag"]}]})
    # Every row is sealed, the upgrade is on record, and the marker is gone.
    assert sql(server, "SELECT count(*) FROM objects WHERE seal IS NULL")[0][0] == 0
    assert sql(server, "SELECT count(*) FROM settings WHERE name = 'seal_pending'")[0][0] == 0
    r = server.cli("audit", "export")
    seals = [json.loads(l) for l in r.stdout.splitlines() if '"meta.seal"' in l]
    assert len(seals) == 1 and seals[0]["objects"] == 4 and seals[0]["uploads"] == 1 \
        and seals[0]["upload_parts"] == 1 and seals[0]["done"] is True, seals
    # From now on a row without a seal is an attack, not an old row.
    before = len(integrity_records(server))
    sql(server, "UPDATE objects SET seal = NULL, seal_bk_id = NULL WHERE key = ?", (b"a",))
    assert_get_refused(s3, "old", "a")
    assert_recorded(server, before, "old", "a")
    # The MD5s in the clear are gone from the database file once the log
    # of old pages has been folded back (at the clean stop).
    assert not server.stop()
    data = open(db_path(server), "rb").read()
    for etag in etags.values():
        assert etag.encode() not in data, etag
    server.start()


def test_upgrade_waits_for_a_disabled_key(tmp_path):
    with running_server(tmp_path, "[storage]\nbackground_interval = 1\n") as server:
        upgrade_waits_for_a_disabled_key(server)


def upgrade_waits_for_a_disabled_key(server):
    s3 = server.client()
    s3.create_bucket(Bucket="frozen")
    s3.put_object(Bucket="frozen", Key="k", Body=b"cold")
    etag = H.md5_hex(b"cold")
    uid = obj_row(server, "frozen", "k")[0]
    assert server.cli("key", "disable", "bucket/frozen").returncode == 0
    assert not server.stop()
    make_legacy(server, {("frozen", "k"): etag}, {(uid, 0): etag}, {})
    server.start()
    s3 = server.client()
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="frozen", Key="k")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert not integrity_records(server)
    assert server.cli("key", "enable", "bucket/frozen").returncode == 0
    def readable():
        assert s3.get_object(Bucket="frozen", Key="k")["Body"].read() == b"cold"
    H.eventually(readable, timeout=30)
    assert s3.head_object(Bucket="frozen", Key="k")["ETag"].strip('"') == etag
    assert sql(server, "SELECT count(*) FROM settings WHERE name = 'seal_pending'")[0][0] == 0


# -- attacks an outside review found after the first round --------------------

def test_planted_upgrade_marker_launders_nothing(server):
    """Stripping a row's seal and planting the upgrade's marker does not get
    the forged row sealed: the audit log shows this database's upgrade
    already ran, so the next start refuses — the row stays a failure, and
    the refusal is logged and recorded."""
    s3 = server.client()
    s3.create_bucket(Bucket="docs")
    parts = [b"A" * (5 * MIB), b"B" * (5 * MIB), b"<script>alert(1)</script>"]
    put_multipart(s3, "docs", "report.pdf", [len(p) for p in parts])
    server.restart()    # a start with nothing to upgrade is on record too
    before = len(integrity_records(server))
    assert not server.stop()
    uid = obj_row(server, "docs", "report.pdf")[0]
    sql(server, "DELETE FROM parts WHERE version_uid = ? AND part_no IN (1, 2)", (uid,))
    sql(server, "UPDATE objects SET part_count = 1, size = 100, content_type = 'text/html', "
                "seal = NULL, seal_bk_id = NULL, parts_digest = NULL, "
                "etag = '0123456789abcdef0123456789abcdef-1' WHERE version_uid = ?", (uid,))
    sql(server, "INSERT INTO settings (name, value) VALUES ('seal_pending', x'01')")
    server.start()
    s3 = server.client()
    assert_get_refused(s3, "docs", "report.pdf")
    assert_recorded(server, before, "docs", "report.pdf")
    assert "no upgrade may seal" in server.stderr_text()
    seals = [json.loads(l) for l in server.cli("audit", "export").stdout.splitlines()
             if '"meta.seal"' in l]
    assert seals and seals[-1]["refused_buckets"] == 1 and seals[-1]["objects"] == 0
    assert sql(server, "SELECT count(*) FROM settings WHERE name = 'seal_pending'")[0][0] == 0


def test_stripped_seal_on_a_running_server_is_a_failure_not_a_wait(tmp_path):
    """An upgraded server (with a bucket whose key was destroyed, which can
    never be sealed) treats a seal stripped while it runs as an integrity
    failure at once — never as "upgrade running", never sealed later."""
    with running_server(tmp_path, "[storage]\nbackground_interval = 1\n") as server:
        s3 = server.client()
        s3.create_bucket(Bucket="dead")
        s3.put_object(Bucket="dead", Key="k", Body=b"gone")
        s3.create_bucket(Bucket="live")
        s3.put_object(Bucket="live", Key="page", Body=b"<p>x</p>", ContentType="text/plain")
        assert server.cli("key", "destroy", "bucket/dead", "--yes").returncode == 0
        assert not server.stop()
        uid_dead = obj_row(server, "dead", "k")[0]
        uid_live = obj_row(server, "live", "page")[0]
        make_legacy(server, {("live", "page"): H.md5_hex(b"<p>x</p>"),
                             ("dead", "k"): H.md5_hex(b"gone")},
                    {(uid_live, 0): H.md5_hex(b"<p>x</p>"),
                     (uid_dead, 0): H.md5_hex(b"gone")}, {})
        server.start()
        s3 = server.client()
        assert s3.head_object(Bucket="live", Key="page")["ContentType"] == "text/plain"
        # The destroyed bucket does not keep the upgrade open.
        assert sql(server, "SELECT count(*) FROM settings WHERE name = 'seal_pending'") \
            == [(0,)]
        before = len(integrity_records(server))
        sql(server, "UPDATE objects SET seal = NULL, seal_bk_id = NULL, parts_digest = NULL, "
                    "etag = '00000000000000000000000000000000', content_type = 'text/html' "
                    "WHERE version_uid = ?", (uid_live,))
        assert_refused(s3.head_object, Bucket="live", Key="page", head=True)
        time.sleep(2.5)     # background rounds seal nothing
        assert_get_refused(s3, "live", "page")
        assert_recorded(server, before, "live", "page")


def test_seal_naming_a_foreign_or_missing_bucket_key(server):
    """A seal_bk_id changed to a missing bucket key, to none, or to one of
    another bucket is an integrity failure, not a "key destroyed" answer
    that would pass tampering off as a crypto-shred."""
    s3 = server.client()
    s3.create_bucket(Bucket="bkt1")
    s3.create_bucket(Bucket="bkt2")
    s3.put_object(Bucket="bkt1", Key="x", Body=b"xxxx")
    s3.put_object(Bucket="bkt2", Key="y", Body=b"yyyy")
    uid = obj_row(server, "bkt1", "x")[0]
    other = sql(server, "SELECT seal_bk_id FROM objects WHERE key = ?", (b"y",))[0][0]
    for bk in (999999, None, other):
        before = len(integrity_records(server))
        sql(server, "UPDATE objects SET seal_bk_id = ? WHERE version_uid = ?", (bk, uid))
        assert_get_refused(s3, "bkt1", "x")
        assert_recorded(server, before, "bkt1", "x")


def test_a_part_row_deleted_alone(server):
    """Deleting one part row (the object row untouched) is an integrity
    failure with its record, not an I/O error."""
    s3 = server.client()
    s3.create_bucket(Bucket="docs")
    put_multipart(s3, "docs", "f", [5 * MIB, 100])
    uid = obj_row(server, "docs", "f")[0]
    before = len(integrity_records(server))
    sql(server, "DELETE FROM parts WHERE version_uid = ? AND part_no = 2", (uid,))
    assert_get_refused(s3, "docs", "f")
    assert_recorded(server, before, "docs")

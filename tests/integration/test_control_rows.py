"""The rows that decide who may do what cannot be edited either (issue 10,
item 2, after the outside review): tenants, access keys, buckets and keys
carry a MAC under a key derived from the system key, so whoever rewrites
meta.db without the key provider cannot move an access key into another
tenant, give a bucket another's name, bring back a revoked key, resume a
suspended tenant or enable a disabled key.

Each attack edits meta.db with sqlite3 — on a stopped server and on a
running one — and must fail loudly: 500 InternalError instead of an answer,
an "integrity.failure" audit record and a count in the server's log.
"""

import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import running_server, server_fixture
from test_meta_attacks import (assert_refused, failures_logged, integrity_records,
                               make_legacy, sql)
import helpers as H


server = server_fixture()


@pytest.fixture(params=["stopped", "running"])
def mode(request):
    return request.param


def tamper(server, mode, *statements):
    if mode == "stopped":
        assert not server.stop()
    for st in statements:
        sql(server, *st) if isinstance(st, tuple) else sql(server, st)
    if mode == "stopped":
        server.start()


def assert_new_record(server, before):
    recs = integrity_records(server)[before:]
    assert recs, "no integrity.failure record"
    assert all(r.get("what") for r in recs), recs
    assert failures_logged(server) > 0
    return recs


def test_bucket_names_swapped(server, mode):
    s3 = server.client()
    s3.create_bucket(Bucket="public-site")
    s3.create_bucket(Bucket="private-data")
    s3.put_object(Bucket="public-site", Key="index.html", Body=b"hello world")
    s3.put_object(Bucket="private-data", Key="index.html", Body=b"TOP SECRET PAYROLL")
    before = len(integrity_records(server))
    tamper(server, mode,
           "UPDATE buckets SET name = 'tmp-x' WHERE name = 'public-site'",
           "UPDATE buckets SET name = 'public-site' WHERE name = 'private-data'",
           "UPDATE buckets SET name = 'private-data' WHERE name = 'tmp-x'")
    s3 = server.client()
    assert_refused(s3.get_object, Bucket="public-site", Key="index.html")
    assert_refused(s3.put_object, Bucket="public-site", Key="new.txt", Body=b"x")
    assert_refused(s3.list_objects_v2, Bucket="private-data")
    # No listing of buckets hides a row that fails its check.
    assert_refused(s3.list_buckets)
    recs = assert_new_record(server, before)
    assert any(r.get("bucket") == "public-site" for r in recs), recs
    # Putting the names back makes everything as it was.
    sql(server, "UPDATE buckets SET name = 'tmp-x' WHERE name = 'public-site'")
    sql(server, "UPDATE buckets SET name = 'public-site' WHERE name = 'private-data'")
    sql(server, "UPDATE buckets SET name = 'private-data' WHERE name = 'tmp-x'")
    assert s3.get_object(Bucket="public-site",
                         Key="index.html")["Body"].read() == b"hello world"


def test_bucket_moved_to_another_tenant(server, mode):
    s3 = server.client()
    s3.create_bucket(Bucket="victim")
    s3.put_object(Bucket="victim", Key="secret.txt", Body=b"victim's secret")
    ak, sk = server.add_tenant("mallory")
    mallory = server.client(ak, sk)
    mallory.create_bucket(Bucket="mallorys")
    before = len(integrity_records(server))
    tamper(server, mode,
           "UPDATE buckets SET tenant_id = (SELECT tenant_id FROM buckets WHERE "
           "name = 'mallorys') WHERE name = 'victim'")
    mallory = server.client(ak, sk)
    assert_refused(mallory.get_object, Bucket="victim", Key="secret.txt")
    assert_new_record(server, before)


def test_access_key_moved_to_the_victims_tenant(server, mode):
    s3 = server.client()
    s3.create_bucket(Bucket="victim")
    s3.put_object(Bucket="victim", Key="secret.txt", Body=b"victim's secret")
    ak, sk = server.add_tenant("mallory")
    mallory = server.client(ak, sk)
    with pytest.raises(ClientError):
        mallory.get_object(Bucket="victim", Key="secret.txt")
    before = len(integrity_records(server))
    tamper(server, mode,
           ("UPDATE access_keys SET tenant_id = (SELECT tenant_id FROM buckets "
            "WHERE name = 'victim') WHERE id = ?", (ak,)))
    mallory = server.client(ak, sk)
    assert_refused(mallory.get_object, Bucket="victim", Key="secret.txt")
    assert_refused(mallory.list_buckets)
    recs = assert_new_record(server, before)
    assert any(ak in r["what"] for r in recs), recs
    # The CLI will not list the tenant's keys as if nothing happened.
    r = server.cli("tenant", "key", "list", "root")
    assert r.returncode != 0 and "MAC" in r.stderr, (r.stdout, r.stderr)


def test_revoked_key_made_active_again(server, mode):
    ak, sk = server.add_tenant("t2")
    t2 = server.client(ak, sk)
    t2.create_bucket(Bucket="t2-bucket")
    assert server.cli("tenant", "key", "revoke", "t2", ak).returncode == 0
    with pytest.raises(ClientError) as e:
        t2.list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    before = len(integrity_records(server))
    tamper(server, mode, ("UPDATE access_keys SET active = 1 WHERE id = ?", (ak,)))
    t2 = server.client(ak, sk)
    assert_refused(t2.list_buckets)
    assert_new_record(server, before)


def test_suspended_tenant_resumed_behind_kuras_back(server, mode):
    ak, sk = server.add_tenant("t2")
    t2 = server.client(ak, sk)
    t2.create_bucket(Bucket="t2-bucket")
    assert server.cli("tenant", "suspend", "t2").returncode == 0
    with pytest.raises(ClientError) as e:
        t2.list_buckets()
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    before = len(integrity_records(server))
    tamper(server, mode, "UPDATE tenants SET state = 0 WHERE name = 't2'")
    t2 = server.client(ak, sk)
    assert_refused(t2.list_buckets)
    assert_new_record(server, before)
    r = server.cli("tenant", "resume", "t2")
    assert r.returncode != 0 and "MAC" in r.stderr, (r.stdout, r.stderr)


def test_disabled_key_enabled_behind_kuras_back(server, mode):
    s3 = server.client()
    s3.create_bucket(Bucket="kms")
    assert server.cli("key", "create", "payroll").returncode == 0
    s3.put_object(Bucket="kms", Key="salaries", Body=b"confidential",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId="payroll")
    assert server.cli("key", "disable", "payroll").returncode == 0
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="kms", Key="salaries")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] != 200
    before = len(integrity_records(server))
    tamper(server, mode, "UPDATE keys SET state = 1 WHERE name = 'payroll'")
    s3 = server.client()
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="kms", Key="salaries")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket="kms", Key="more", Body=b"x",
                      ServerSideEncryption="aws:kms", SSEKMSKeyId="payroll")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert_new_record(server, before)


def test_a_row_given_another_rows_mac(server):
    """A MAC is bound to its table and every field: copying a valid MAC
    from one row to another is caught like any other edit."""
    ak, _ = server.add_tenant("t2")
    ak3, sk3 = server.add_tenant("t3")
    before = len(integrity_records(server))
    sql(server, "UPDATE access_keys SET mac = (SELECT mac FROM access_keys WHERE id = ?) "
                "WHERE id = ?", (ak, ak3))
    assert_refused(server.client(ak3, sk3).list_buckets)
    assert_new_record(server, before)


def test_the_server_refuses_to_start_on_a_forged_root_tenant(server):
    """The start reads the root tenant: a forged one stops the start, and
    the refusal is on record."""
    before = len(integrity_records(server))
    assert not server.stop()
    sql(server, "UPDATE tenants SET created_ms = created_ms + 1 WHERE name = 'root'")
    with pytest.raises(pytest.fail.Exception):
        server.start()
    assert "does not match its MAC" in server.stderr_text()
    assert len(integrity_records(server)) > before
    sql(server, "UPDATE tenants SET created_ms = created_ms - 1 WHERE name = 'root'")
    server.start()
    assert server.client().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_rows_from_before_macs_get_theirs_once(server):
    """A database from before row MACs gets them on the upgrade's first
    start; a MAC stripped later, with the upgrade's marker planted, is not
    laundered on the next start."""
    ak, sk = server.add_tenant("t2")
    server.client(ak, sk).create_bucket(Bucket="t2-bucket")
    assert not server.stop()
    make_legacy(server, {}, {}, {})
    server.start()
    for table in ("tenants", "access_keys", "buckets", "keys"):
        assert sql(server, f"SELECT count(*) FROM {table} WHERE mac IS NULL")[0][0] == 0
    macd = [json.loads(line) for line in server.cli("audit", "export").stdout.splitlines()
            if '"meta.rowmac"' in line]
    assert len(macd) == 1 and macd[0]["rows"] >= 8, macd
    assert server.client(ak, sk).list_buckets()["Buckets"][0]["Name"] == "t2-bucket"

    before = len(integrity_records(server))
    assert not server.stop()
    sql(server, "UPDATE access_keys SET mac = NULL, tenant_id = (SELECT id FROM tenants "
                "WHERE name = 'root') WHERE id = ?", (ak,))
    sql(server, "INSERT INTO settings (name, value) VALUES ('seal_pending', x'01')")
    server.start()
    assert sql(server, "SELECT mac FROM access_keys WHERE id = ?", (ak,))[0][0] is None
    assert_refused(server.client(ak, sk).list_buckets)
    assert_new_record(server, before)


def test_tenant_and_key_changes_keep_their_macs(server):
    """Every change kura makes itself rewrites the MAC: suspend and resume,
    revoke and rotate, default encryption, key disable, enable and rotate,
    all survive a restart."""
    ak, sk = server.add_tenant("t2")
    t2 = server.client(ak, sk)
    t2.create_bucket(Bucket="t2-bucket")
    assert server.cli("tenant", "suspend", "t2").returncode == 0
    assert server.cli("tenant", "resume", "t2").returncode == 0
    r = server.cli("tenant", "key", "rotate", "t2", ak)
    assert r.returncode == 0, r.stderr
    assert server.cli("key", "create", "k1", "--tenant", "t2").returncode == 0
    for step in (("disable",), ("enable",), ("rotate",)):
        r = server.cli("key", *step, "k1", "--tenant", "t2")
        assert r.returncode == 0, r.stderr
    server.restart()
    s3 = server.client()
    s3.create_bucket(Bucket="enc")
    s3.put_bucket_encryption(Bucket="enc", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    server.restart()
    H.eventually(lambda: server.client().head_bucket(Bucket="enc"))
    r = server.cli("tenant", "list")
    assert r.returncode == 0 and "t2" in r.stdout, r.stderr
    r = server.cli("key", "list", "--tenant", "t2")
    assert r.returncode == 0 and "k1" in r.stdout, r.stderr
    assert not integrity_records(server)


# -- rollbacks: a whole row put back as it was -------------------------------
#
# A row put back exactly as it was earlier passes its MAC or seal: the audit
# log is the witness that finds it (`kura audit verify --against-meta`).

def against_meta(server):
    return server.cli("audit", "verify", "--against-meta")


def test_against_meta_is_quiet_after_ordinary_changes(tmp_path):
    """Tagging, a key rotation (every row re-sealed in the background),
    suspension and resumption, revocation: nothing to report."""
    with running_server(tmp_path, "[storage]\nbackground_interval = 1\n") as server:
        s3 = server.client()
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="doc", Body=b"data", Tagging="a=1")
        s3.put_object_tagging(Bucket="bkt", Key="doc",
                              Tagging={"TagSet": [{"Key": "a", "Value": "2"}]})
        s3.delete_object_tagging(Bucket="bkt", Key="doc")
        s3.put_object_tagging(Bucket="bkt", Key="doc",
                              Tagging={"TagSet": [{"Key": "a", "Value": "3"}]})
        sealed_by = sql(server, "SELECT seal_bk_id FROM objects")[0][0]
        assert server.cli("key", "rotate", "bucket/bkt").returncode == 0
        ak, _ = server.add_tenant("t2")
        assert server.cli("tenant", "suspend", "t2").returncode == 0
        assert server.cli("tenant", "resume", "t2").returncode == 0
        assert server.cli("tenant", "key", "revoke", "t2", ak).returncode == 0

        def resealed():
            assert sql(server, "SELECT seal_bk_id FROM objects")[0][0] != sealed_by
        H.eventually(resealed, timeout=30)
        r = against_meta(server)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "0 disagree" in r.stdout


def test_tags_put_back_are_found(server):
    s3 = server.client()
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="doc", Body=b"data", Tagging="classification=secret")
    old = sql(server, "SELECT tags_json, seal, seal_bk_id FROM objects WHERE key = ?",
              (b"doc",))[0]
    s3.put_object_tagging(Bucket="bkt", Key="doc", Tagging={"TagSet": [
        {"Key": "classification", "Value": "public"}]})
    sql(server, "UPDATE objects SET tags_json = ?, seal = ?, seal_bk_id = ? WHERE key = ?",
        (*old, b"doc"))
    # Every seal accepts the older row...
    assert s3.get_object_tagging(Bucket="bkt", Key="doc")["TagSet"] == [
        {"Key": "classification", "Value": "secret"}]
    # ...the log does not.
    r = against_meta(server)
    assert r.returncode == 1, r.stdout
    assert "ROLLED BACK bkt/doc" in r.stdout and "other tags or headers" in r.stdout


def test_control_rows_put_back_are_found(server):
    ak, sk = server.add_tenant("t2")
    key_row = sql(server, "SELECT active, mac FROM access_keys WHERE id = ?", (ak,))[0]
    tenant_row = sql(server, "SELECT state, mac FROM tenants WHERE name = 't2'")[0]
    assert server.cli("key", "create", "k1").returncode == 0
    k1_row = sql(server, "SELECT state, changed_ms, mac FROM keys WHERE name = 'k1'")[0]
    assert server.cli("tenant", "key", "revoke", "t2", ak).returncode == 0
    assert server.cli("tenant", "suspend", "t2").returncode == 0
    assert server.cli("key", "disable", "k1").returncode == 0
    assert against_meta(server).returncode == 0
    sql(server, "UPDATE access_keys SET active = ?, mac = ? WHERE id = ?", (*key_row, ak))
    sql(server, "UPDATE tenants SET state = ?, mac = ? WHERE name = 't2'", tenant_row)
    sql(server, "UPDATE keys SET state = ?, changed_ms = ?, mac = ? WHERE name = 'k1'",
        k1_row)
    # The older rows pass their MACs: the key works again...
    assert server.client(ak, sk).list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    # ...until the log is asked.
    r = against_meta(server)
    assert r.returncode == 1, r.stdout
    assert f"ROLLED BACK access key '{ak}'" in r.stdout
    assert "ROLLED BACK tenant 't2'" in r.stdout
    assert "ROLLED BACK key 'k1'" in r.stdout


def test_objects_the_log_never_saw_are_found(tmp_path):
    """An object written while the audit log was off has no record: with
    the whole log at hand, the check names it."""
    off = tmp_path / "off.ini"
    off.write_text("[audit]\nenabled = false\n")
    with running_server(tmp_path) as server:
        s3 = server.client()
        s3.create_bucket(Bucket="bkt")
        s3.put_object(Bucket="bkt", Key="seen", Body=b"1")
        assert not server.stop()
        server.config = off
        server.start()
        server.client().put_object(Bucket="bkt", Key="unseen", Body=b"2")
        assert not server.stop()
        server.config = None
        server.start()
        r = against_meta(server)
        assert r.returncode == 1, r.stdout
        assert "UNRECORDED bkt/unseen" in r.stdout
        assert "bkt/seen" not in r.stdout


# -- key versions and bucket keys ---------------------------------------------

def test_disabled_key_not_bypassed_through_another_keys_version(server):
    """A disabled key's bucket key handed to an enabled key through a
    planted version naming the same KEK: refused, not unwrapped."""
    s3 = server.client()
    s3.create_bucket(Bucket="frozen")
    s3.put_object(Bucket="frozen", Key="k", Body=b"cold secret")
    s3.create_bucket(Bucket="warm")
    assert server.cli("key", "disable", "bucket/frozen").returncode == 0
    with pytest.raises(ClientError):
        s3.get_object(Bucket="frozen", Key="k")
    frozen_key, bk_id = sql(server, "SELECT b.key_id, bk.id FROM buckets b JOIN bucket_keys "
                                    "bk ON bk.bucket_id = b.id WHERE b.name = 'frozen'")[0]
    kek = sql(server, "SELECT kek_id FROM key_versions WHERE key_id = ?", (frozen_key,))[0][0]
    warm_key = sql(server, "SELECT key_id FROM buckets WHERE name = 'warm'")[0][0]
    before = len(integrity_records(server))
    sql(server, "INSERT INTO key_versions (key_id, version, kek_id, state, created_ms, "
                "destroyed_ms) VALUES (?, 99, ?, 2, 1, 0)", (warm_key, kek))
    sql(server, "UPDATE bucket_keys SET key_id = ?, key_version = 99 WHERE id = ?",
        (warm_key, bk_id))
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="frozen", Key="k")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert_new_record(server, before)


def test_no_kek_destroyed_for_a_planted_version(tmp_path):
    """A planted version 99 of a bucket's key naming its current KEK, with
    a planted retired copy of the bucket key under it, does not get that
    KEK destroyed by the background re-wrapping (version 99 "drained"):
    the data under it stays readable."""
    cfg = "[storage]\nbackground_interval = 1\n[keys]\nrotation_grace = 0\n"
    with running_server(tmp_path, cfg) as server:
        s3 = server.client()
        s3.create_bucket(Bucket="victim")
        s3.put_object(Bucket="victim", Key="k", Body=b"keep me")
        key_id, kek = sql(server, "SELECT kv.key_id, kv.kek_id FROM key_versions kv JOIN "
                                  "buckets b ON b.key_id = kv.key_id WHERE b.name = "
                                  "'victim'")[0]
        bucket, wrapped, created = sql(server, "SELECT bucket_id, wrapped, created_ms FROM "
                                               "bucket_keys WHERE key_id = ?", (key_id,))[0]
        before = len(integrity_records(server))
        sql(server, "INSERT INTO key_versions (key_id, version, kek_id, state, created_ms, "
                    "destroyed_ms) VALUES (?, 99, ?, 2, 1, 0)", (key_id, kek))
        sql(server, "INSERT INTO bucket_keys (bucket_id, key_id, key_version, wrapped, "
                    "current, created_ms, retired_ms) VALUES (?, ?, 99, ?, 0, ?, 1)",
            (bucket, key_id, wrapped, created))
        time.sleep(4)   # several background rounds
        assert "KEK destroyed" not in server.stderr_text()
        sql(server, "DELETE FROM bucket_keys WHERE key_version = 99")
        sql(server, "DELETE FROM key_versions WHERE version = 99")
        assert s3.get_object(Bucket="victim", Key="k")["Body"].read() == b"keep me"
        assert len(integrity_records(server)) > before

"""What the running server and the CLI put in the audit log (B-6): every S3
request with its outcome, every key-provider use, admin and key commands
with who and before/after, server start and stop — and that a request is
never answered when its record cannot be written.

The log's format and its tamper evidence are test_audit_log.py's and the
unit tests'; here the records are read with `kura audit export`.
"""

import fault_helpers as F
import helpers as H
from conftest import running_server, server_fixture

BUCKET = "audited"


export = H.audit_export


def by_request(records):
    return {r["request_id"]: r for r in records if r.get("type") == "s3"}


def request_id(resp):
    return resp["ResponseMetadata"]["RequestId"]


def verify(server):
    r = server.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


# A server whose bucket keys are not cached: every object request uses the
# key provider.
cold_server = server_fixture("[keys]\nbucket_key_ttl = 0\n")


def test_every_s3_request_is_recorded_with_its_outcome(cold_server):
    srv = cold_server
    s3 = srv.client()
    body = b"audited body " * 100
    ids = {}
    ids["create"] = request_id(s3.create_bucket(Bucket=BUCKET))
    ids["put"] = request_id(s3.put_object(Bucket=BUCKET, Key="dir/ä.txt", Body=body))
    ids["get"] = request_id(s3.get_object(Bucket=BUCKET, Key="dir/ä.txt"))
    ids["head"] = request_id(s3.head_object(Bucket=BUCKET, Key="dir/ä.txt"))
    ids["copy"] = request_id(s3.copy_object(Bucket=BUCKET, Key="copy",
                                            CopySource={"Bucket": BUCKET,
                                                        "Key": "dir/ä.txt"}))
    ids["list"] = request_id(s3.list_objects_v2(Bucket=BUCKET))
    missing = H.expect_error("NoSuchKey", 404, s3.get_object, Bucket=BUCKET, Key="nope")
    ids["missing"] = missing["ResponseMetadata"]["RequestId"]
    ids["delete"] = request_id(s3.delete_object(Bucket=BUCKET, Key="copy"))
    # A forged request: right access key id, wrong secret.
    forged = srv.client(srv.access_key, "x" * 40)
    denied = H.expect_error("SignatureDoesNotMatch", 403, forged.get_object,
                            Bucket=BUCKET, Key="dir/ä.txt")
    ids["forged"] = denied["ResponseMetadata"]["RequestId"]

    records, _ = export(srv)
    s3recs = by_request(records)
    assert set(ids.values()) <= set(s3recs), "a request has no audit record"
    put = s3recs[ids["put"]]
    assert (put["op"], put["bucket"], put["key"], put["status"]) == \
        ("PutObject", BUCKET, "dir/ä.txt", 200)
    assert put["bytes_in"] == len(body)
    assert put["access_key"] == srv.access_key and put["tenant_id"] >= 1
    assert put["source"] == "127.0.0.1" and put["latency_us"] > 0
    assert len(put["version"]) == 32
    get = s3recs[ids["get"]]
    assert (get["op"], get["bytes_out"], get["version"]) == \
        ("GetObject", len(body), put["version"])
    head = s3recs[ids["head"]]
    assert head["op"] == "HeadObject" and "bytes_out" not in head
    copy = s3recs[ids["copy"]]
    assert (copy["op"], copy["source_bucket"], copy["source_key"], copy["key"]) == \
        ("CopyObject", BUCKET, "dir/ä.txt", "copy")
    assert copy["version"] != put["version"]
    assert s3recs[ids["list"]]["op"] == "ListObjectsV2"
    miss = s3recs[ids["missing"]]
    assert (miss["status"], miss["error"]) == (404, "NoSuchKey")
    assert s3recs[ids["delete"]]["op"] == "DeleteObject"
    bad = s3recs[ids["forged"]]
    assert (bad["status"], bad["error"], bad["access_key"]) == \
        (403, "SignatureDoesNotMatch", srv.access_key)
    assert "tenant_id" not in bad       # never authenticated

    # Never secrets, signatures or data: not in any file of the log.
    audit = srv.data_dir / "audit"
    for f in audit.iterdir():
        raw = f.read_bytes()
        assert srv.secret_key.encode() not in raw, f
        assert b"audited body" not in raw, f
        assert b"Signature=" not in raw and b"X-Amz-Signature" not in raw, f
    verify(srv)


def test_unrouted_and_unauthenticated_requests_are_recorded(kura_server):
    srv = kura_server
    r = H.anonymous(srv, "GET", H.key_path("some-bucket", "k"))
    assert r.status == 403
    r2 = H.raw(srv, "PATCH", H.key_path("some-bucket", "k"))
    assert r2.status in (405, 501)
    records, _ = export(srv)
    s3recs = by_request(records)
    anon = s3recs[r.headers["x-amz-request-id"]]
    assert anon["status"] == 403 and anon["bucket"] == "some-bucket"
    assert "access_key" not in anon
    patch = s3recs[r2.headers["x-amz-request-id"]]
    assert patch["op"] == "-" and patch["method"] == "PATCH"


def test_key_provider_uses_are_recorded(cold_server):
    srv = cold_server
    s3 = srv.client()
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="k", Body=b"x")
    before = len(export(srv)[0])
    gid = request_id(s3.get_object(Bucket=BUCKET, Key="k"))
    records, _ = export(srv)
    created = [r for r in records if r["op"] == "kek.create"
               and r.get("label") == f"kura bucket {BUCKET}"]
    assert len(created) == 1 and created[0]["type"] == "provider"
    kek = created[0]["kek_id"]
    wraps = [r for r in records if r["op"] == "kek.wrap" and r["kek_id"] == kek]
    assert wraps and wraps[0]["purpose"] == "bucket-key"
    bucket_id, tenant_id = wraps[0]["bucket_id"], wraps[0]["tenant_id"]
    # The GET's unwrap precedes the GET's own record, and names the bucket.
    new = records[before:]
    get_pos = next(i for i, r in enumerate(new) if r.get("request_id") == gid)
    unwraps = [r for r in new[:get_pos] if r["op"] == "kek.unwrap"]
    assert unwraps, "a cold GET did not record its key-provider use"
    u = unwraps[-1]
    assert (u["kek_id"], u["purpose"], u["bucket_id"], u["tenant_id"], u["provider"]) == \
        (kek, "bucket-key", bucket_id, tenant_id, "local")
    assert "error" not in u


def test_admin_and_key_commands_are_recorded(kura_server):
    srv = kura_server
    s3 = srv.client()
    s3.create_bucket(Bucket="shredme")
    s3.put_object(Bucket="shredme", Key="k", Body=b"x")
    for args in (("tenant", "add", "acme"), ("key", "create", "fin"),
                 ("key", "rotate", "fin"), ("key", "disable", "fin"),
                 ("key", "enable", "fin"), ("key", "destroy", "fin", "--yes"),
                 ("bucket", "shred", "shredme", "--yes")):
        r = srv.cli(*args)
        assert r.returncode == 0, (args, r.stderr)
    assert srv.cli("key", "rotate", "missing").returncode == 1
    records, checkpoints = export(srv)
    admin = [r for r in records if r["type"] == "admin"]
    for r in admin:
        assert "@" in r["actor"]

    def results(op):
        return [r for r in admin if r["op"] == op and r.get("phase") == "result"]

    def requests(op):
        return [r for r in admin if r["op"] == op and r.get("phase") == "request"]

    acme = results("tenant.create")[-1]
    assert acme["tenant"] == "acme" and acme["after"].startswith("created; access key ")
    assert requests("tenant.create")[-1]["seq"] < acme["seq"]
    assert results("key.create")[0]["after"] == "enabled, version 1"
    rot = results("key.rotate")[0]
    assert (rot["subject"], rot["before"], rot["after"]) == ("fin", "version 1", "version 2")
    assert (results("key.disable")[0]["before"], results("key.disable")[0]["after"]) == \
        ("enabled", "disabled")
    assert results("key.enable")[0]["after"] == "enabled"
    destroy = results("key.destroy")[0]
    assert destroy["after"] == "destroyed" and "error" not in destroy
    # Both KEK versions were destroyed, each recorded before the result.
    kek_destroys = [r for r in records if r["op"] == "kek.destroy"
                    and requests("key.destroy")[0]["seq"] < r["seq"] < destroy["seq"]]
    assert len(kek_destroys) == 2
    shred = results("bucket.shred")[0]
    assert shred["subject"] == "shredme" and "shredded; certificate " in shred["after"]
    assert any(r["op"] == "kek.destroy" and r["seq"] < shred["seq"] for r in records)
    # A command refused before it acts (no such key) records nothing.
    assert not [r for r in admin if r.get("subject") == "missing"]
    # Each command signed a checkpoint covering its result.
    assert max(c["tree_size"] for c in checkpoints) > shred["seq"]
    verify(srv)


def test_server_start_stop_and_final_checkpoint(kura_server):
    srv = kura_server
    srv.client().create_bucket(Bucket=BUCKET)
    srv.restart()
    records, checkpoints = export(srv)
    starts = [r for r in records if r["op"] == "server.start"]
    stops = [r for r in records if r["op"] == "server.stop"]
    assert len(starts) == 2 and len(stops) == 1
    assert stops[0]["reason"] == "SIGTERM"
    cfg = starts[0]["config"]
    assert cfg["server.data_dir"] == str(srv.data_dir)
    assert cfg["keys.provider"] == "local" and cfg["audit.enabled"] == "true"
    assert starts[0]["endpoint"] == srv.endpoint and starts[0]["version"]
    # The stop's checkpoint covers everything before it, the stop included;
    # the second start is signed at once.
    sizes = {c["tree_size"] for c in checkpoints}
    assert stops[0]["seq"] + 1 in sizes
    assert starts[1]["seq"] + 1 in sizes
    verify(srv)


def test_audit_off_records_nothing(tmp_path):
    with running_server(tmp_path, "[audit]\nenabled = false\n") as srv:
        srv.client().create_bucket(Bucket=BUCKET)
        assert "audit log is off" in srv.stderr_text()
    assert not (srv.data_dir / "audit").exists()


def test_requests_fail_closed_when_the_log_cannot_record(tmp_path):
    """The audit directory on a small tmpfs: once it is full every request
    is answered 503 (never acknowledged without a record); when space
    returns, service resumes and the log verifies."""
    audit = tmp_path / "data" / "audit"
    with F.tmpfs(audit, "4m"), running_server(tmp_path) as srv:
        s3 = srv.client()
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="before", Body=b"1")
        filler = audit / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        # The segment's last page may still hold a few records after the
        # filesystem is full (tmpfs allocates whole pages; how many depends
        # on the sizes of the records before): those requests are
        # recorded and answered.  From the first that cannot be, every
        # request is 503.
        seen = []
        for i in range(64):
            r = H.raw(srv, "PUT", H.key_path(BUCKET, f"during-{i}"), body=b"2")
            seen.append(r.status)
            if r.status != 200:
                break
        assert seen[-1] == 503 and set(seen[:-1]) <= {200}, seen
        H.assert_s3_error(r, 503, "ServiceUnavailable")
        statuses = set()
        for i in range(5):
            r = H.raw(srv, "PUT", H.key_path(BUCKET, f"full-{i}"), body=b"2")
            statuses.add(r.status)
            if r.status == 503:
                H.assert_s3_error(r, 503, "ServiceUnavailable")
        assert statuses == {503}, statuses
        r = H.raw(srv, "GET", H.key_path(BUCKET, "before"))
        assert r.status == 503
        filler.unlink()
        s3.put_object(Bucket=BUCKET, Key="after", Body=b"3")
        assert s3.get_object(Bucket=BUCKET, Key="before")["Body"].read() == b"1"
        srv.restart()
        verify(srv)
        records, _ = export(srv)
        keys = {r.get("key") for r in records if r.get("status") == 200}
        assert {"before", "after"} <= keys

"""Location evidence and scrubs on the default configuration (one backend,
"local"): `kura object locate`, `kura bucket locate`, `kura scrub` and
`kura status`, run beside a server as an operator would.

A replica is "stored" when written and "verified" once a scrub read it
back and authenticated every segment; a flipped byte in a blob file (or a
blob file gone) is found by the scrub, which has no good copy to repair
it from with one backend: the replica becomes "failed", the scrub exits
1, and the audit log holds an integrity.failure record for it.  The
multi-backend cases (repairs, failover) are test_placement.py's."""

import datetime
import json
import os
import re
import secrets
import time

from conftest import client_fixture, run_cli, server_fixture
from helpers import eventually

SUMMARY = re.compile(r"^scrub: (\d+) blobs, (\d+) replicas, (\d+) ok, "
                     r"(\d+) missing, (\d+) corrupt, (\d+) repaired, "
                     r"(\d+) unrepairable$")


# The default configuration; SSE-C over plain HTTP only so that an SSE-C
# object can be written without a TLS listener.
srv = server_fixture("[server]\nallow_ssec_over_http = true\n",
                     scope="module")
client = client_fixture("srv", scope="module")


def unique(prefix):
    return f"{prefix}-{secrets.token_hex(4)}"


def cli_json(srv, *args):
    r = srv.cli(*args, "--json")
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return json.loads(r.stdout)


def locate(srv, bucket, key, version=None):
    extra = ("--version", version) if version is not None else ()
    return cli_json(srv, "object", "locate", bucket, key, *extra)


def scrub(srv, bucket):
    r = srv.cli("scrub", bucket, "--json")
    return r.returncode, json.loads(r.stdout), r.stderr


def only_replica(doc):
    [part] = doc["parts"]
    [rep] = part["replicas"]
    return part, rep


def blob_path(srv, blob_id):
    return os.path.join(srv.data_dir, "blobs", blob_id[:2], blob_id[2:4],
                        blob_id)


def test_locate_shows_the_local_replica(srv, client):
    bucket = unique("where")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"x" * 1000)
    doc = locate(srv, bucket, "a/b.txt")
    assert (doc["bucket"], doc["key"], doc["placement"]) == \
        (bucket, "a/b.txt", "default"), doc
    assert doc["version_id"] is None, doc     # a never-versioned bucket
    part, rep = only_replica(doc)
    assert re.fullmatch(r"[0-9a-f]{32}", part["blob_id"]), part
    assert part["bytes"] >= 1000, part
    assert os.path.exists(blob_path(srv, part["blob_id"]))
    assert (rep["backend"], rep["type"], rep["jurisdiction"]) == \
        ("local", "fs", "JP"), rep
    assert rep["state"] == "stored", rep
    assert rep["stored_at"].endswith("Z") and rep["verified_at"] is None, rep
    assert rep["history"] and rep["history"][-1]["state"] == "stored", rep

    text = srv.cli("object", "locate", bucket, "a/b.txt")
    assert text.returncode == 0, text.stderr
    assert "BACKEND" in text.stdout and "VERIFIED" in text.stdout
    row = [line for line in text.stdout.splitlines()
           if line.split()[1:2] == ["local"]]
    assert row and "stored" in row[0] and "JP" in row[0], text.stdout


def test_scrub_verifies_every_replica(srv, client):
    bucket = unique("clean")
    client.create_bucket(Bucket=bucket)
    sizes = {"empty": 0, "small": 10, "segments": 700 * 1024}
    for key, n in sizes.items():
        client.put_object(Bucket=bucket, Key=key, Body=os.urandom(n))
    code, rep, err = scrub(srv, bucket)
    assert code == 0, (rep, err)
    assert rep == {"blobs": 3, "replicas": 3, "ok": 3, "missing": 0,
                   "corrupt": 0, "repaired": 0, "unrepairable": 0}, rep
    for key in sizes:
        _, r = only_replica(locate(srv, bucket, key))
        assert r["state"] == "verified", r
        assert r["verified_at"] is not None, r
        last = r["history"][-1]
        assert last["state"] == "verified", r
        assert last["note"].startswith("scrub: verified"), r
    text = srv.cli("scrub", bucket)
    assert text.returncode == 0, text.stderr
    m = SUMMARY.match(text.stdout.strip())
    assert m and m.groups() == ("3", "3", "3", "0", "0", "0", "0"), text.stdout


def test_scrub_of_an_ssec_object_compares_bytes(srv, client):
    bucket = unique("ssec")
    client.create_bucket(Bucket=bucket)
    key = secrets.token_bytes(32)
    client.put_object(Bucket=bucket, Key="c", Body=b"customer" * 100,
                      SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    code, rep, err = scrub(srv, bucket)
    assert code == 0 and rep["ok"] == 1, (rep, err)
    _, r = only_replica(locate(srv, bucket, "c"))
    assert r["state"] == "verified", r
    assert "not authenticated" in r["history"][-1]["note"], r


def test_scrub_finds_a_flipped_byte(srv, client):
    bucket = unique("flip")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="good", Body=b"g" * 5000)
    client.put_object(Bucket=bucket, Key="bad", Body=b"b" * 5000)
    part, _ = only_replica(locate(srv, bucket, "bad"))
    path = blob_path(srv, part["blob_id"])
    with open(path, "r+b") as f:
        f.seek(100)                 # inside the first segment
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0x01]))
    code, rep, err = scrub(srv, bucket)
    assert code == 1, (rep, err)
    assert rep == {"blobs": 2, "replicas": 2, "ok": 1, "missing": 0,
                   "corrupt": 1, "repaired": 0, "unrepairable": 1}, rep
    _, bad = only_replica(locate(srv, bucket, "bad"))
    assert bad["state"] == "failed", bad
    assert bad["history"][-1]["note"].startswith("scrub: corrupt"), bad
    _, good = only_replica(locate(srv, bucket, "good"))
    assert good["state"] == "verified", good

    r = srv.cli("audit", "search", "--op", "integrity.failure", "--bucket",
                bucket)
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert any(rec.get("blob") == part["blob_id"] and
               rec.get("backend") == "local" for rec in recs), recs
    # The damage stays found: the next scrub reports it again.
    code, rep, _ = scrub(srv, bucket)
    assert (code, rep["corrupt"], rep["unrepairable"]) == (1, 1, 1), rep


def test_scrub_finds_a_missing_blob(srv, client):
    bucket = unique("gone")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"soon gone")
    part, _ = only_replica(locate(srv, bucket, "k"))
    os.unlink(blob_path(srv, part["blob_id"]))
    code, rep, err = scrub(srv, bucket)
    assert code == 1, (rep, err)
    assert (rep["missing"], rep["corrupt"], rep["unrepairable"]) == \
        (1, 0, 1), rep
    _, r = only_replica(locate(srv, bucket, "k"))
    assert r["state"] == "failed", r
    assert r["history"][-1]["note"] == "scrub: missing", r


def test_bucket_locate_counts(srv, client):
    bucket = unique("count")
    client.create_bucket(Bucket=bucket)
    sizes = [10, 1000, 300 * 1024]
    for i, n in enumerate(sizes):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=os.urandom(n))
    doc = cli_json(srv, "bucket", "locate", bucket)
    assert (doc["bucket"], doc["placement"]) == (bucket, "default"), doc
    [b] = doc["backends"]
    assert (b["backend"], b["jurisdiction"], b["replicas"]) == \
        ("local", "JP", 3), doc
    assert b["bytes"] >= sum(sizes), b
    assert b["states"]["stored"] + b["states"].get("verified", 0) == 3, b
    assert doc["jurisdictions"] == {"JP": {"replicas": 3,
                                           "bytes": b["bytes"]}}, doc
    # A scrub moves them to verified; the totals stay.
    code, _, err = scrub(srv, bucket)
    assert code == 0, err
    doc2 = cli_json(srv, "bucket", "locate", bucket)
    assert doc2["backends"][0]["states"]["verified"] == 3, doc2
    assert doc2["jurisdictions"] == doc["jurisdictions"], doc2
    text = srv.cli("bucket", "locate", bucket)
    assert text.returncode == 0 and "local" in text.stdout, text.stderr
    assert "jurisdiction JP: 3 replicas" in text.stdout, text.stdout


def test_locate_names_versions(srv, client):
    bucket = unique("vers")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"null one")
    client.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v2 = client.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    cur = locate(srv, bucket, "k")
    assert cur["version_id"] == v2, cur
    assert locate(srv, bucket, "k", version=v2)["parts"] == cur["parts"]
    old = locate(srv, bucket, "k", version="null")
    assert old["version_id"] is None, old
    assert old["parts"][0]["blob_id"] != cur["parts"][0]["blob_id"]
    client.delete_object(Bucket=bucket, Key="k")    # a delete marker
    r = srv.cli("object", "locate", bucket, "k", "--json")
    assert r.returncode != 0 and "delete marker" in r.stderr, r
    # The old versions are still there to locate.
    assert locate(srv, bucket, "k", version=v2)["parts"] == cur["parts"]
    for bad in (("--version", "nonsense"), ("--version", "0" * 32)):
        r = srv.cli("object", "locate", bucket, "k", *bad)
        assert r.returncode != 0, r
    r = srv.cli("object", "locate", bucket, "no-such-key")
    assert r.returncode == 1 and "no object" in r.stderr, r
    r = srv.cli("object", "locate", unique("nobucket"), "k")
    assert r.returncode == 1 and "no bucket" in r.stderr, r
    r = srv.cli("scrub", unique("nobucket"))
    assert r.returncode == 1 and "no bucket" in r.stderr, r


def test_status_shows_the_local_backend(srv):
    doc = cli_json(srv, "status")
    [b] = doc["backends"]
    assert (b["backend"], b["type"], b["jurisdiction"]) == \
        ("local", "fs", "JP"), b
    assert b["reachable"] is True, b
    assert b["latency_ms"] >= 0 and b["queue"] == 0, b
    assert b["lag_seconds"] == 0, b
    text = srv.cli("status")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].split()[:2] == ["BACKEND", "TYPE"]
    assert any(line.startswith("local") and " yes " in line
               for line in text.stdout.splitlines()), text.stdout


def test_version_flag_and_usage():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("kura "), r
    r = run_cli("--help")
    for cmd in ("object locate", "bucket locate", "scrub [BUCKET]",
                "status [--json]"):
        assert cmd in r.stdout, cmd


# -- the scheduled scrub ---------------------------------------------------

def far_window():
    """A maintenance window (UTC) that starts two hours from now."""
    now = datetime.datetime.now(datetime.timezone.utc)
    a, b = now + datetime.timedelta(hours=2), now + datetime.timedelta(hours=3)
    return f"{a:%H:%M}-{b:%H:%M}"


scheduled = server_fixture("[scrub]\ninterval = 1\n")
scheduled_closed = server_fixture(
    f"[scrub]\ninterval = 1\n[maintenance]\nwindow = {far_window()}\n")


def test_scheduled_scrub_verifies_and_finds_damage(scheduled):
    s3 = scheduled.client()
    s3.create_bucket(Bucket="sched")
    s3.put_object(Bucket="sched", Key="k", Body=b"scheduled" * 100)
    part, _ = only_replica(locate(scheduled, "sched", "k"))

    def verified():
        _, r = only_replica(locate(scheduled, "sched", "k"))
        assert r["state"] == "verified", r
    eventually(verified, timeout=15)
    with open(blob_path(scheduled, part["blob_id"]), "r+b") as f:
        f.seek(60)
        byte = f.read(1)
        f.seek(60)
        f.write(bytes([byte[0] ^ 0x80]))

    def failed():
        _, r = only_replica(locate(scheduled, "sched", "k"))
        assert r["state"] == "failed", r
        assert r["history"][-1]["note"].startswith("scrub: corrupt"), r
    eventually(failed, timeout=15)
    assert "scheduled scrub:" in scheduled.stderr_text()


def test_scheduled_scrub_waits_for_the_window(scheduled_closed):
    s3 = scheduled_closed.client()
    s3.create_bucket(Bucket="later")
    s3.put_object(Bucket="later", Key="k", Body=b"not now")
    time.sleep(3)       # three intervals: every one of them outside
    _, r = only_replica(locate(scheduled_closed, "later", "k"))
    assert r["state"] == "stored", r
    assert "scheduled scrub: 1 blobs" not in scheduled_closed.stderr_text()

"""The audit log end to end (docs/AUDIT.md): a real server, a mixed S3
workload, then `kura audit verify | proof | export | search` and the
independent verifier (audit_verifier.py, written from docs/AUDIT.md), the
mutations of issue 5 on a copy of DATA_DIR/audit (flipped byte, deleted
record, reordered records, truncated tail, re-hashed forgery without the
signing key) each detected with its position, verification while the
server writes, a published copy of the checkpoints, and kill -9 during a
workload (the log verifies after restart and holds a record for every
acknowledged request).
"""

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

import audit_verifier as av
from conftest import run_cli, running_server

BODY = os.urandom(4096)


def request_id(resp_or_exc):
    meta = (resp_or_exc.response if isinstance(resp_or_exc, ClientError)
            else resp_or_exc)["ResponseMetadata"]
    return meta["RequestId"]


def workload(s3, bucket, n=12):
    """A mixed workload; returns {request id: (operation, key, bucket)} of every
    request that got an answer."""
    seen = {}

    def rec(op, key, fn, *args, **kwargs):
        try:
            r = fn(*args, **kwargs)
        except ClientError as e:
            seen[request_id(e)] = (op, key, bucket)
            return None
        seen[request_id(r)] = (op, key, bucket)
        return r

    rec("CreateBucket", None, s3.create_bucket, Bucket=bucket)
    for i in range(n):
        key = f"docs/report-{i}.pdf"
        rec("PutObject", key, s3.put_object, Bucket=bucket, Key=key, Body=BODY)
    for i in range(n):
        key = f"docs/report-{i % 3}.pdf"
        r = rec("GetObject", key, s3.get_object, Bucket=bucket, Key=key)
        assert r["Body"].read() == BODY
    rec("HeadObject", "docs/report-1.pdf", s3.head_object, Bucket=bucket,
        Key="docs/report-1.pdf")
    rec("ListObjectsV2", None, s3.list_objects_v2, Bucket=bucket, Prefix="docs/")
    rec("GetObject", "missing", s3.get_object, Bucket=bucket, Key="missing")
    rec("DeleteObject", "docs/report-0.pdf", s3.delete_object, Bucket=bucket,
        Key="docs/report-0.pdf")
    return seen


def cli(server, *args, data_dir=None):
    if data_dir is None:
        return server.cli(*args)
    return run_cli(*args, "--data-dir", data_dir)


def audit_dir(server):
    return os.path.join(server.data_dir, "audit")


def export(server, data_dir=None):
    r = cli(server, "audit", "export", data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    records, checkpoints = [], []
    for line in r.stdout.splitlines():
        doc = json.loads(line)
        (records if "seq" in doc else checkpoints).append((line, doc))
    return records, checkpoints


def signer_pem(server, tmp_path):
    r = server.cli("cert", "public-key")
    assert r.returncode == 0, r.stderr
    pem = tmp_path / "signer.pem"
    pem.write_text(r.stdout)
    return pem


@pytest.fixture
def audited(tmp_path):
    """A server that ran a workload and was stopped cleanly twice (so the
    log holds two shutdown checkpoints)."""
    with running_server(tmp_path / "srv") as server:
        s3 = server.client()
        seen = workload(s3, "audited")
        server.restart()
        seen.update(workload(server.client(), "audited2", n=4))
        problems = server.stop()
        assert not problems, problems
        yield server, seen


def test_every_request_recorded_and_no_secret(audited, tmp_path):
    server, seen = audited
    records, checkpoints = export(server)
    by_req = {}
    for _, doc in records:
        if "request_id" in doc:
            by_req.setdefault(doc["request_id"], []).append(doc)
    for rid, (op, key, _) in seen.items():
        assert rid in by_req, f"no audit record for {op} {key} ({rid})"
        docs = by_req[rid]
        assert any(d.get("op") == op for d in docs), (op, docs)
        if key is not None:
            assert any(d.get("key") == key for d in docs), (key, docs)
    ops = [doc.get("op") for _, doc in records]
    assert ops.count("server.start") == 2
    assert ops.count("server.stop") == 2
    assert len(checkpoints) >= 2
    assert [doc["seq"] for _, doc in records] == list(range(len(records)))
    text = "\n".join(line for line, _ in records)
    assert server.secret_key not in text
    assert "Signature=" not in text and "AWS4-HMAC-SHA256" not in text
    missing = [d for docs in by_req.values() for d in docs if d.get("key") == "missing"]
    assert missing and missing[0].get("status") == 404


def test_verify_and_independent_verifier(audited, tmp_path):
    server, _ = audited
    r = server.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "intact" in r.stdout
    pem = signer_pem(server, tmp_path)
    r = server.cli("audit", "verify", "--public-key", pem)
    assert r.returncode == 0, r.stdout + r.stderr
    n = av.verify_log(audit_dir(server), pinned_der=av.pem_to_der(str(pem)))
    records, _ = export(server)
    assert n == len(records)


def test_proofs_checked_independently(audited, tmp_path):
    server, _ = audited
    pinned = av.pem_to_der(str(signer_pem(server, tmp_path)))
    records, checkpoints = export(server)
    sizes = [doc["tree_size"] for _, doc in checkpoints]
    for seq in (0, len(records) // 2, sizes[-1] - 1):
        r = server.cli("audit", "proof", "--seq", seq)
        assert r.returncode == 0, r.stderr
        rec = av.verify_inclusion_output(r.stdout, pinned)
        assert json.dumps(rec, sort_keys=True) == json.dumps(records[seq][1], sort_keys=True)
    # in an older tree too
    r = server.cli("audit", "proof", "--seq", 1, "--size", sizes[0])
    assert r.returncode == 0, r.stderr
    av.verify_inclusion_output(r.stdout, pinned)
    # a tampered proof fails the independent check
    doc = json.loads(r.stdout)
    doc["path"][0] = "00" * 32
    with pytest.raises(av.Bad):
        av.verify_inclusion_output(json.dumps(doc), pinned)
    # consistency between every pair of checkpoints
    for a in sizes:
        for b in sizes:
            if a > b:
                continue
            r = server.cli("audit", "proof", "consistency", a, b)
            assert r.returncode == 0, r.stderr
            got = av.verify_consistency_output(r.stdout, pinned)
            assert got["checkpoint1"] is not None and got["checkpoint2"] is not None
    r = server.cli("audit", "proof", "consistency", sizes[0], sizes[-1])
    doc = json.loads(r.stdout)
    if doc["path"]:
        doc["path"][-1] = "11" * 32
        with pytest.raises(av.Bad):
            av.verify_consistency_output(json.dumps(doc), pinned)


def test_search_who_read_this_object(audited):
    server, seen = audited
    today = datetime.now(timezone.utc)
    frm = (today - timedelta(days=31)).strftime("%Y-%m-%d")
    to = (today + timedelta(days=1)).strftime("%Y-%m-%d")
    r = server.cli("audit", "search", "--bucket", "audited", "--key", "docs/report-1.pdf",
                   "--op", "GetObject", "--from", frm, "--to", to)
    assert r.returncode == 0, r.stderr
    got = [json.loads(line)["request_id"] for line in r.stdout.splitlines()]
    want = [rid for rid, (op, key, bucket) in seen.items()
            if op == "GetObject" and key == "docs/report-1.pdf" and bucket == "audited"]
    assert sorted(got) == sorted(want)
    # by request id
    rid = want[0]
    r = server.cli("audit", "search", "--request-id", rid)
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[0])["request_id"] == rid
    # nothing in a range long ago
    r = server.cli("audit", "search", "--bucket", "audited", "--from", "2001-01-01",
                   "--to", "2001-02-01")
    assert r.returncode == 0 and r.stdout == ""


# -- mutations ------------------------------------------------------------------

def segments(adir):
    return [os.path.join(adir, f"seg-{n:08d}.log") for n in av.segment_numbers(adir)]


def load_seg(path):
    data = open(path, "rb").read()
    _, _, _, length = av.parse_header(data, path)
    return data[:length], [(rec, h) for _, rec, h in av.entries(data, length, True, path)]


def save_seg(path, header, entries):
    with open(path, "wb") as f:
        f.write(header)
        for rec, h in entries:
            f.write(len(rec).to_bytes(4, "big") + rec + h)


def largest_segment(adir):
    return max(segments(adir), key=lambda p: len(load_seg(p)[1]))


def copy_log(server, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(audit_dir(server), dst / "audit")
    return dst


def expect_detected(server, data_dir, pem, words, seq=None, published=None):
    args = ["audit", "verify", "--public-key", pem]
    if published:
        args += ["--published", published]
    r = cli(server, *args, data_dir=str(data_dir))
    assert r.returncode == 1, r.stdout + r.stderr
    assert words in r.stdout, r.stdout
    if seq is not None:
        assert f"first bad record: {seq}" in r.stdout or f"first unverifiable record: {seq}" \
            in r.stdout, r.stdout
    with pytest.raises(av.Bad):
        av.verify_log(os.path.join(data_dir, "audit"), published,
                      av.pem_to_der(str(pem)))


def first_seq_of(path):
    data = open(path, "rb").read()
    return av.parse_header(data, path)[1]


def test_mutations_detected(audited, tmp_path):
    server, _ = audited
    pem = signer_pem(server, tmp_path)

    untouched = copy_log(server, tmp_path, "untouched")
    r = cli(server, "audit", "verify", "--public-key", pem, data_dir=str(untouched))
    assert r.returncode == 0, r.stdout + r.stderr

    # one byte flipped inside a record
    d = copy_log(server, tmp_path, "flip")
    seg = largest_segment(d / "audit")
    hdr, ents = load_seg(seg)
    base = first_seq_of(seg)
    i = len(ents) // 2
    rec = bytearray(ents[i][0])
    rec[len(rec) // 2] ^= 0x01
    ents[i] = (bytes(rec), ents[i][1])
    save_seg(seg, hdr, ents)
    expect_detected(server, d, pem, f"record {base + i}", base + i)

    # one record deleted
    d = copy_log(server, tmp_path, "delete")
    seg = largest_segment(d / "audit")
    hdr, ents = load_seg(seg)
    del ents[i]
    save_seg(seg, hdr, ents)
    expect_detected(server, d, pem, f"position {base + i}", base + i)

    # two records swapped
    d = copy_log(server, tmp_path, "reorder")
    seg = largest_segment(d / "audit")
    hdr, ents = load_seg(seg)
    ents[i], ents[i + 1] = ents[i + 1], ents[i]
    save_seg(seg, hdr, ents)
    expect_detected(server, d, pem, f"position {base + i}", base + i)

    # tail truncated (the last segment loses its last three entries)
    d = copy_log(server, tmp_path, "truncate")
    last = segments(d / "audit")[-1]
    hdr, ents = load_seg(last)
    assert len(ents) >= 3
    cut = first_seq_of(last) + len(ents) - 3
    save_seg(last, hdr, ents[:-3])
    expect_detected(server, d, pem, "truncated", cut)

    # re-hashed forgery without the signing key: every record rewritten,
    # leaf hashes recomputed, checkpoints re-signed with a key of our own
    d = copy_log(server, tmp_path, "forgery")
    adir = d / "audit"
    tree = av.Frontier()
    roots = {}
    for path in segments(adir):
        hdr, ents = load_seg(path)
        new = []
        for rec, _ in ents:
            rec = rec.replace(b'"audited"', b'"AUDITED"')
            h = av.leaf_hash(rec)
            new.append((rec, h))
            tree.push(h)
            roots[tree.size] = tree.root().hex()
        save_seg(path, hdr, new)
    forge_checkpoints(adir, roots, tmp_path)
    expect_detected(server, d, pem, "another key")
    # and with the original checkpoints kept, their roots disagree
    shutil.copy(os.path.join(audit_dir(server), "checkpoints.log"), adir / "checkpoints.log")
    expect_detected(server, d, pem, "does not match the log")


def forge_checkpoints(adir, roots, tmp_path):
    key = tmp_path / "forger.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                    "-out", str(key)], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    lines = []
    with open(adir / "checkpoints.log") as f:
        old = [json.loads(line) for line in f]
    for cp in old:
        cp = dict(cp)
        cp["root"] = roots[cp["tree_size"]]
        msg = tmp_path / "msg"
        msg.write_bytes(av.checkpoint_text(cp))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key), str(msg)],
                             check=True, capture_output=True).stdout
        cp["signature"] = base64.b64encode(sig).decode()
        cp["public_key"] = base64.b64encode(pub).decode()
        cp["signer"] = "forger"
        lines.append(av.canonical(cp) + "\n")
    (adir / "checkpoints.log").write_text("".join(lines))


# -- while running, published copy, crashes ----------------------------------------

def test_verify_while_server_writes(tmp_path):
    with running_server(tmp_path / "srv") as server:
        s3 = server.client()
        s3.create_bucket(Bucket="busy")
        stop = threading.Event()
        errors = []

        def load():
            c = server.client()
            i = 0
            while not stop.is_set():
                try:
                    c.put_object(Bucket="busy", Key=f"k{i % 50}", Body=BODY)
                except Exception as e:   # noqa: BLE001 - reported below
                    errors.append(e)
                i += 1

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for _ in range(5):
                r = server.cli("audit", "verify")
                assert r.returncode == 0, r.stdout + r.stderr
                time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[:3]
    r = server.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


def test_published_checkpoints(tmp_path):
    pub = tmp_path / "published"
    with running_server(tmp_path / "srv", f"[audit]\npublish_dir = {pub}\n") as server:
        workload(server.client(), "pub")
        server.restart()
    assert (pub / "checkpoints.log").exists()
    r = server.cli("audit", "verify", "--published", pub)
    assert r.returncode == 0, r.stdout + r.stderr
    av.verify_log(audit_dir(server), str(pub))
    # the local checkpoints rewritten (last one dropped): the published copy
    # still has it
    d = copy_log(server, tmp_path, "droplocal")
    lines = (d / "audit" / "checkpoints.log").read_text().splitlines(keepends=True)
    (d / "audit" / "checkpoints.log").write_text("".join(lines[:-1]))
    pem = signer_pem(server, tmp_path)
    expect_detected(server, d, pem, "published", published=str(pub))


def test_kill9_during_workload(tmp_path):
    acked = {}
    lock = threading.Lock()
    with running_server(tmp_path / "srv") as server:
        server.client().create_bucket(Bucket="crash")
        stop = threading.Event()

        def load(n):
            c = server.client()
            i = 0
            while not stop.is_set():
                key = f"t{n}-{i}"
                try:
                    r = c.put_object(Bucket="crash", Key=key, Body=BODY)
                except Exception:        # noqa: BLE001 - the crash cuts requests
                    break
                with lock:
                    acked[request_id(r)] = key
                i += 1

        threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        server.kill9()
        stop.set()
        for t in threads:
            t.join()
        assert len(acked) > 10
        server.start()
        server.client().head_bucket(Bucket="crash")
    r = server.cli("audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    av.verify_log(audit_dir(server))
    records, _ = export(server)
    logged = {doc.get("request_id"): doc for _, doc in records}
    missing = [rid for rid in acked if rid not in logged]
    assert not missing, f"{len(missing)} acknowledged requests have no record"
    for rid, key in acked.items():
        assert logged[rid].get("key") == key and logged[rid].get("op") == "PutObject"

"""The audit trail has no gaps (issue 10, item 5): every request leaves
evidence that says what really happened, whatever the client does.

- The access log (one line per request on the server's standard error)
  cannot be forged: values that come from the client (bucket names from
  the path or the Host header, the method, the claimed access key) are
  quoted and escaped, so an unauthenticated client cannot add `tenant=`,
  `ak=` or `status=` fields or a second line.
- A request that does not end normally (half a body, a download the
  client or the server cuts short, a body too slow for the watchdog, a
  head never finished or refused by libmicrohttpd) still gets an audit
  record: no `status`, an `aborted` reason, the bytes that moved.
- DeleteObjects records every key it deleted or failed to delete, one
  record per key, found by `kura audit search --key`.

Raw sockets throughout: the clients here misbehave on purpose.
"""

import json
import os
import re
import socket
import time

import pytest

import fault_helpers as F
import helpers as H
import hostile_helpers as X
from conftest import running_server, server_fixture

BUCKET = "gaps"
TIMEOUT = 2                     # [server] connection_timeout

srv = server_fixture(f"[server]\nconnection_timeout = {TIMEOUT}\n",
                     scope="module", buckets=[BUCKET])


# -- the access log ----------------------------------------------------------

LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                        r"(DEBUG|INFO|WARN|ERROR) req=([0-9A-F]{16}|-) (.*)$")
# One field: name=value or a positional value; a value is a bare run of
# characters without space, quote or '=' , or a double-quoted string with
# backslash escapes.
FIELD = re.compile(r'(?:([a-z_]+)=)?("(?:[^"\\]|\\.)*"|[^\s"=]+)(?: |$)')


def parse_fields(message):
    """(positionals, {name: value}) of one access-log message, asserting the
    whole message splits into fields and no name appears twice."""
    pos, named, i = [], {}, 0
    while i < len(message):
        m = FIELD.match(message, i)
        assert m, f"unparseable at {i}: {message!r}"
        name, value = m.group(1), unquote(m.group(2))
        if name is None:
            pos.append(value)
        else:
            assert name not in named, f"field {name}= twice: {message!r}"
            named[name] = value
        i = m.end()
    return pos, named


def unquote(v):
    if not v.startswith('"'):
        return v
    out, i, body = bytearray(), 0, v[1:-1]
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
        elif body[i + 1] == "x":
            out.append(int(body[i + 2:i + 4], 16))
            i += 4
        else:
            out += body[i + 1].encode()
            i += 2
    return out.decode("utf-8", errors="surrogateescape")


def access_line(srv, rid, timeout=3.0):
    """The access-log line (the one with op=) of request rid."""
    def find():
        for line in srv.stderr_text().splitlines():
            m = LOG_PREFIX.match(line)
            if m and m.group(2) == rid and " op=" in m.group(3):
                return m.group(3)
        return None
    line = H.wait_for(find, timeout)
    assert line, f"no access line for {rid}"
    return line


# (what is attacked, raw request head) — each names bucket FORGED... so
# that every line mentioning it can be found.
FORGERIES = [
    ("percent-encoded spaces in the bucket",
     b"GET /FORGED%20tenant=7%20ak=ROOTKEY%20status=200/k HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("quotes and backslashes",
     b"GET /FORGED%22%20tenant=7%5C%22%20status=200/k HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("a raw quote",
     b'GET /FORGED"tenant=7"status=200/k HTTP/1.1\r\nHost: x\r\n\r\n'),
    ("encoded CR LF: a second line",
     b"GET /FORGED%0D%0A2026-01-01T00:00:00.000Z%20INFO%20req=AAAAAAAAAAAAAAAA"
     b"%20127.0.0.1%20GET%20op=GetObject%20bucket=x%20tenant=1%20ak=ROOTKEY"
     b"%20status=200/k HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("non-ASCII and control bytes",
     b"GET /FORGED%C3%A9%FF%1B[31m%09tenant=7/k HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("the method",
     b"tenant=7 /FORGED/k HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("a virtual-host bucket from the Host header",
     b"GET /k HTTP/1.1\r\nHost: FORGED tenant=7 ak=ROOTKEY status=200.localhost\r\n\r\n"),
    ("a claimed access key",
     b"GET /FORGED/k HTTP/1.1\r\nHost: x\r\nx-amz-date: 20260101T000000Z\r\n"
     b"Authorization: AWS4-HMAC-SHA256 Credential=AK tenant=7/20260101/us-east-1/s3/"
     b"aws4_request, SignedHeaders=host, Signature=00\r\n\r\n"),
]


@pytest.mark.parametrize("what,head", FORGERIES, ids=[f[0] for f in FORGERIES])
def test_access_log_fields_cannot_be_forged(srv, what, head):
    reply = X.exchange(srv, head, until_responses=1)
    rs = reply.responses()
    assert rs, reply
    status, headers, _ = rs[0]
    rid = headers["x-amz-request-id"]
    msg = access_line(srv, rid)
    pos, f = parse_fields(msg)
    # Never authenticated: the true values, once each.
    assert (f["tenant"], f["ak"], f["status"]) == ("0", "-", str(status)), msg
    assert pos[0] == "127.0.0.1", msg
    if what == "the method":
        assert pos[1] == "tenant=7", msg
    else:
        assert "FORGED" in f["bucket"], msg
    # Every line that mentions the attack is a whole log line of its own.
    for line in srv.stderr_text().splitlines():
        if "FORGED" in line or "tenant=7" in line:
            assert LOG_PREFIX.match(line), f"forged line: {line!r}"


def test_access_log_round_trips_the_bucket_name(srv):
    """What the escaping writes decodes back to the bytes the client sent."""
    name = 'FORGED a"b\\c=d\té'
    path = "/" + "".join("%%%02X" % b for b in name.encode()) + "/k"
    reply = X.exchange(srv, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                       until_responses=1)
    rid = reply.responses()[0][1]["x-amz-request-id"]
    _, f = parse_fields(access_line(srv, rid))
    assert f["bucket"] == name


# -- aborted requests ----------------------------------------------------------

def wait_records(srv, pred, timeout=5.0):
    """The audit records pred accepts, once there is at least one (the
    server writes an aborted request's record when it sees the connection
    end, a moment after the client left)."""
    return H.wait_for(lambda: [r for r in H.audit_export(srv)[0] if pred(r)],
                      timeout, interval=0.1)


def new_records(srv, before, pred=lambda r: True, timeout=5.0):
    return wait_records(srv, lambda r: r["seq"] >= before and pred(r), timeout)


def record_count(srv):
    return len(H.audit_export(srv)[0])


def put_head(srv, key, length):
    """A signed PUT head (UNSIGNED-PAYLOAD) announcing length body bytes."""
    return X.signed_bytes(srv, "PUT", H.key_path(BUCKET, key),
                          headers={"Content-Length": str(length)},
                          payload_hash="UNSIGNED-PAYLOAD")


def test_put_aborted_mid_body_is_recorded(srv):
    """Headers and a third of the body, then the client closes: the
    request has a record (no status, aborted by the client, the bytes that
    arrived) and nothing was stored."""
    sent = 300 * 1024
    sock = X.connect(srv)
    sock.sendall(put_head(srv, "half-put", 3 * sent) + b"x" * sent)
    sock.close()
    recs = wait_records(srv, lambda r: r.get("key") == "half-put")
    assert len(recs) == 1, recs
    rec = recs[0]
    assert (rec["type"], rec["op"], rec["bucket"], rec["aborted"]) == \
        ("s3", "PutObject", BUCKET, "client"), rec
    assert "status" not in rec and "bytes_out" not in rec, rec
    assert rec["bytes_in"] == sent, rec
    assert rec["access_key"] == srv.access_key and rec["tenant_id"] >= 1, rec
    assert len(rec["request_id"]) == 16 and rec["source"] == "127.0.0.1", rec
    H.expect_error("NoSuchKey", 404, srv.client().get_object, Bucket=BUCKET,
                   Key="half-put")
    assert "aborted=client" in access_line(srv, rec["request_id"])


def test_get_cut_short_by_the_client_is_recorded(srv):
    """A download the client resets after the first bytes: the answer's
    record (status 200, the body's length) is followed by one saying the
    response was aborted, with the bytes handed to the connection."""
    size = 48 << 20
    srv.client().put_object(Bucket=BUCKET, Key="big", Body=b"\0" * size)
    sock = X.connect(srv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(X.signed_bytes(srv, "GET", H.key_path(BUCKET, "big")))
    got = X.read_until_closed(sock, time.monotonic() + 5,
                              enough=lambda d: len(d) > 65536)
    head = got.data.split(b"\r\n\r\n", 1)[0].decode()
    rid = re.search(r"x-amz-request-id: (\w+)", head, re.I).group(1)
    # Reset, not a clean close: unread data is pending.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    sock.close()
    recs = wait_records(srv, lambda r: r.get("request_id") == rid and "aborted" in r)
    assert len(recs) == 1, recs
    allrecs = [r for r in H.audit_export(srv)[0] if r.get("request_id") == rid]
    assert len(allrecs) == 2, allrecs
    answer, aborted = allrecs
    assert (answer["op"], answer["status"], answer["bytes_out"]) == \
        ("GetObject", 200, size), answer
    assert "aborted" not in answer
    assert (aborted["op"], aborted["key"], aborted["version"]) == \
        ("GetObject", "big", answer["version"]), aborted
    assert aborted["aborted"] == "connection" and "status" not in aborted, aborted
    assert 0 < aborted.get("bytes_out", 0) < size, aborted
    assert "aborted=connection" in access_line(srv, rid)


def test_get_cut_by_the_server_is_recorded(srv):
    """Damage found mid-stream: kura cuts the answer (the client gets a
    short body, never wrong bytes) and the cut is on record as the server's
    (aborted=server), after the answer's own record."""
    before = F.blob_set(srv)
    data = os.urandom(4 * H.SEG)
    srv.client().put_object(Bucket=BUCKET, Key="damaged", Body=data)
    (blob,) = F.blob_set(srv) - before
    F.flip_byte(blob, F.segment_offset(2) + 40)
    got = F.raw_get(srv, BUCKET, "damaged")
    assert got.status == 200 and not got.complete, got
    rid = got.headers["x-amz-request-id"]
    recs = wait_records(srv, lambda r: r.get("request_id") == rid and "aborted" in r)
    assert len(recs) == 1, recs
    assert recs[0]["aborted"] == "server" and "status" not in recs[0], recs[0]
    assert len(got.body) <= recs[0]["bytes_out"] < len(data), recs[0]

def test_body_too_slow_for_the_watchdog_is_recorded(srv):
    """A body trickled below the minimum rate is cut off by the server
    (connection_timeout): the record says so."""
    sock = X.connect(srv)
    try:
        sock.sendall(put_head(srv, "trickle", 100000) + b"y" * 100)
        recs = wait_records(srv, lambda r: r.get("key") == "trickle",
                            timeout=TIMEOUT + 6)
    finally:
        sock.close()
    assert len(recs) == 1, recs
    assert (recs[0]["aborted"], recs[0]["bytes_in"]) == ("timeout", 100), recs[0]
    assert "status" not in recs[0]


def test_head_never_finished_is_recorded(srv):
    """A request line and part of the head, then the client leaves: not
    a request kura could route, but it is on record."""
    before = record_count(srv)
    sock = X.connect(srv)
    sock.sendall(f"GET /{BUCKET}/head-only HTTP/1.1\r\nHost: x\r\nX-Half: ".encode())
    time.sleep(0.2)
    sock.close()
    recs = new_records(srv, before, lambda r: r.get("type") == "s3")
    assert len(recs) == 1, recs
    rec = recs[0]
    assert (rec["op"], rec["head"], rec["aborted"], rec["source"]) == \
        ("-", "incomplete", "client", "127.0.0.1"), rec
    assert "status" not in rec and len(rec["request_id"]) == 16, rec
    assert "aborted=client" in access_line(srv, rec["request_id"])


def test_head_refused_by_the_http_layer_is_recorded(srv):
    """An HTTP/1.1 request without Host is refused by libmicrohttpd before
    kura sees it (400): on record all the same."""
    before = record_count(srv)
    reply = X.exchange(srv, f"GET /{BUCKET}/no-host HTTP/1.1\r\n\r\n".encode(),
                       until_responses=1)
    assert reply.status() == 400, reply
    recs = new_records(srv, before, lambda r: r.get("type") == "s3")
    assert len(recs) == 1, recs
    rec = recs[0]
    assert (rec["op"], rec["head"], rec["status"]) == ("-", "refused", 400), rec
    assert "aborted" not in rec, rec
    _, f = parse_fields(access_line(srv, rec["request_id"]))
    assert (f["op"], f["status"]) == ("-", "400")


# -- DeleteObjects -------------------------------------------------------------

def search(srv, *args):
    r = srv.cli("audit", "search", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_delete_objects_records_every_key(srv):
    """One record per key with its outcome (deleted, absent, failed with
    the S3 code the client saw), then the request's own record with the
    counts; each key is found by `kura audit search --key`."""
    s3 = srv.client()
    present = ["del/a", "del/é x", 'del/q"uote\\']
    for k in present:
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    long_key = "del/" + "é" * 700           # 1404 bytes: over the limit
    objects = [{"Key": k} for k in present] + [
        {"Key": "del/missing"},
        {"Key": "del/versioned", "VersionId": "3HL4kqtJlcpXroDTDmJ"},
        {"Key": long_key},
    ]
    resp = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": objects})
    rid = resp["ResponseMetadata"]["RequestId"]
    assert sorted(d["Key"] for d in resp["Deleted"]) == sorted(present + ["del/missing"])
    assert sorted(e["Code"] for e in resp["Errors"]) == ["KeyTooLongError", "NoSuchVersion"]

    recs = search(srv, "--request-id", rid)
    per_key, summary = recs[:-1], recs[-1]
    assert [r["seq"] for r in recs] == list(range(recs[0]["seq"], recs[0]["seq"] + 7))
    assert (summary["op"], summary["status"], summary.get("key")) == \
        ("DeleteObjects", 200, None), summary
    assert (summary["deleted"], summary["absent"], summary["failed"]) == (3, 1, 2)
    for r in per_key:
        assert (r["type"], r["op"], r["bucket"], r["access_key"]) == \
            ("s3", "DeleteObjects", BUCKET, srv.access_key), r
        assert r["tenant_id"] == summary["tenant_id"] and "status" not in r, r
    outcome = {r["key"]: (r["result"], r.get("error")) for r in per_key}
    cut = long_key.encode()[:1024].decode()
    assert outcome == {
        "del/a": ("deleted", None), "del/é x": ("deleted", None),
        'del/q"uote\\': ("deleted", None), "del/missing": ("absent", None),
        "del/versioned": ("failed", "NoSuchVersion"),
        cut: ("failed", "KeyTooLongError"),
    }, outcome
    assert next(r for r in per_key if r["key"] == cut)["key_length"] == \
        len(long_key.encode())

    # Who deleted "del/é x"?  The search finds it by name.
    found = search(srv, "--bucket", BUCKET, "--key", "del/é x", "--op", "DeleteObjects")
    assert [(r["request_id"], r["result"]) for r in found] == [(rid, "deleted")]
    assert srv.cli("audit", "verify").returncode == 0


def test_delete_objects_1000_keys_one_batch(srv):
    """The limit of 1000 keys: 1001 records, written together (one group
    commit: this takes well under the 1000 fdatasyncs it would otherwise)."""
    s3 = srv.client()
    keys = [f"bulk/{i:04d}" for i in range(1000)]
    H.put_many(s3, BUCKET, keys[::50])
    t0 = time.monotonic()
    resp = s3.delete_objects(Bucket=BUCKET, Delete={
        "Quiet": True, "Objects": [{"Key": k} for k in keys]})
    took = time.monotonic() - t0
    rid = resp["ResponseMetadata"]["RequestId"]
    recs = search(srv, "--request-id", rid, "--limit", "2000")
    assert len(recs) == 1001
    results = {r["key"]: r["result"] for r in recs[:-1]}
    assert results == {k: "deleted" if i % 50 == 0 else "absent"
                       for i, k in enumerate(keys)}
    assert (recs[-1]["deleted"], recs[-1]["absent"]) == (20, 980)
    found = search(srv, "--bucket", BUCKET, "--key", "bulk/0777")
    assert [r["request_id"] for r in found] == [rid]
    assert took < 20, took


def test_delete_objects_fails_closed_when_its_records_cannot_be_written(tmp_path):
    """The audit directory on a full tmpfs: DeleteObjects answers 503, not
    a result the log does not hold (the deletions may have happened, as
    for any request whose record was refused; AUDIT.md)."""
    audit = tmp_path / "data" / "audit"
    with F.tmpfs(audit, "4m"), running_server(tmp_path) as server:
        s3 = server.client()
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="k1", Body=b"1")
        F.fill(str(audit / "filler"))
        # The segment's last page may still hold a few records (tmpfs
        # allocates whole pages): use it up with requests whose records
        # do not matter, until the log refuses one.
        for _ in range(500):
            if H.send(server, "HEAD", f"/{BUCKET}").status == 503:
                break
        else:
            raise AssertionError("the audit log never filled up")
        body = (f'<Delete><Object><Key>k1</Key></Object>'
                f'<Object><Key>k2</Key></Object></Delete>').encode()
        r = H.raw(server, "POST", f"/{BUCKET}", query="delete", body=body,
                  headers={"Content-MD5": H.md5_b64(body)})
        H.assert_s3_error(r, 503, "ServiceUnavailable")
        (audit / "filler").unlink()
        r = H.raw(server, "POST", f"/{BUCKET}", query="delete", body=body,
                  headers={"Content-MD5": H.md5_b64(body)})
        assert r.status == 200, r
        assert server.cli("audit", "verify").returncode == 0


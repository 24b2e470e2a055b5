"""Crash and shutdown safety: kill -9 during a stream of concurrent PUTs
(acknowledged objects survive exactly, nothing is half-visible, recovery
empties the staging area), and a clean SIGTERM while uploads are in
flight."""

import http.client
import os
import random
import threading
import time

import helpers as H

BUCKET = "durable"
SIZES = [0, 100, 5000, H.SEG - 1, H.SEG + 1, 2 * H.SEG + 3, 600000]


class Writer(threading.Thread):
    """PUTs new keys (and keeps overwriting one key) until the server dies;
    records every attempt and which were acknowledged."""

    def __init__(self, server, prefix, seed):
        super().__init__(daemon=True)
        self.client = server.client()
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.attempts = {}      # key -> [bodies attempted, in order]
        self.acked = {}         # key -> index of the last acknowledged attempt
        self.problems = []

    def run(self):
        i = 0
        while True:
            key = f"{self.prefix}/ow" if i % 4 == 3 else f"{self.prefix}/k{i:04d}"
            data = os.urandom(self.rng.choice(SIZES))
            self.attempts.setdefault(key, []).append(data)
            try:
                r = self.client.put_object(Bucket=BUCKET, Key=key, Body=data)
            except Exception:            # noqa: BLE001 - the server was killed
                return
            if r["ResponseMetadata"]["HTTPStatusCode"] != 200 or \
                    r["ETag"].strip('"') != H.md5_hex(data):
                self.problems.append((key, r["ResponseMetadata"]))
            else:
                self.acked[key] = len(self.attempts[key]) - 1
            i += 1


def staging_files(server):
    d = os.path.join(server.data_dir, "blobs", "staging")
    return os.listdir(d) if os.path.isdir(d) else []


def published_blob_count(server):
    root = os.path.join(server.data_dir, "blobs")
    return sum(1 for p in H.all_files(root)
               if os.path.relpath(p, root).split(os.sep)[0] != "staging")


def all_objects(client):
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            out[o["Key"]] = o
    return out


def verify(server, writers):
    """After restart: acknowledged data is there exactly; every visible
    object is one complete attempted body; staging is empty."""
    c = server.client()
    assert staging_files(server) == [], "staged blobs left after recovery"
    listed = all_objects(c)
    attempts, acked = {}, {}
    for w in writers:
        assert w.problems == []
        attempts.update(w.attempts)
        acked.update(w.acked)
    for key, bodies in attempts.items():
        try:
            g = c.get_object(Bucket=BUCKET, Key=key)
        except c.exceptions.NoSuchKey:
            assert key not in acked, f"acknowledged {key} lost"
            assert key not in listed, f"{key} listed but not readable"
            continue
        data = g["Body"].read()
        first = acked.get(key, 0)
        candidates = bodies[first:]
        assert any(data == b for b in candidates), \
            f"{key}: {len(data)} bytes that are not an attempted version"
        assert g["ETag"].strip('"') == H.md5_hex(data)
        assert key in listed
        assert listed[key]["Size"] == len(data)
        assert listed[key]["ETag"].strip('"') == H.md5_hex(data)
    for key in listed:
        if key.split("/")[0] in {w.prefix.split("/")[0] for w in writers}:
            assert key in attempts, f"listed {key} was never written"
    # Every blob on disk belongs to exactly one visible object.
    assert published_blob_count(server) == len(listed)
    return len(acked)


def test_kill9_during_puts(kura_server):
    server = kura_server
    server.client().create_bucket(Bucket=BUCKET)
    total_acked = 0
    all_writers = []
    for rnd, delay in enumerate([0.15, 0.6, 1.3]):
        writers = [Writer(server, f"r{rnd}/t{t}", seed=rnd * 10 + t) for t in range(4)]
        for w in writers:
            w.start()
        time.sleep(delay)
        server.kill9()
        for w in writers:
            w.join(timeout=60)
            assert not w.is_alive()
        server.start()
        all_writers += writers
        total_acked = verify(server, all_writers)
    assert total_acked > 0, "no PUT was acknowledged before the kills"


def _put_slowly(server, key, total, first, release, result, pace=None):
    """Send `first` bytes of a `total`-byte PUT, wait for `release`, then
    send the rest (at `pace` bytes per 10 ms if given); store the outcome."""
    path = H.key_path(BUCKET, key)
    signed = H.sign(server, "PUT", path, payload_hash="UNSIGNED-PAYLOAD",
                    headers={"Content-Length": str(total)})
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    block = os.urandom(64 * 1024)
    sent = 0
    try:
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for k, v in signed.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        while sent < first:
            n = min(len(block), first - sent)
            conn.send(block[:n])
            sent += n
        result["started"] = True
        release.wait(30)
        while sent < total:
            n = min(pace or len(block), total - sent)
            conn.send(block[:n])
            sent += n
            if pace:
                time.sleep(0.01)
        r = conn.getresponse()
        result["status"] = r.status
        result["body"] = r.read()
    except (OSError, http.client.HTTPException) as e:
        result["error"] = repr(e)
    finally:
        result["sent"] = sent
        conn.close()


def test_sigterm_with_upload_in_flight(kura_server):
    server = kura_server
    c = server.client()
    c.create_bucket(Bucket=BUCKET)
    c.put_object(Bucket=BUCKET, Key="before", Body=b"committed before shutdown")
    release = threading.Event()
    big, small = {}, {}
    # A large upload that cannot finish within the shutdown grace period...
    t_big = threading.Thread(target=_put_slowly, args=(
        server, "big-in-flight", 4 << 30, 3 << 20, release, big, 64 * 1024))
    # ...and one that completes once shutdown has begun.
    t_small = threading.Thread(target=_put_slowly, args=(
        server, "small-in-flight", 2 << 20, 1 << 20, release, small))
    t_big.start()
    t_small.start()
    deadline = time.monotonic() + 10
    while not (big.get("started") and small.get("started")):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)
    stopper = {}
    t_stop = threading.Thread(target=lambda: stopper.update(problems=server.stop()))
    t_stop.start()
    time.sleep(0.3)               # SIGTERM delivered; shutdown under way
    release.set()
    t_stop.join(60)
    t_small.join(60)
    t_big.join(60)
    assert stopper["problems"] == []          # exit status 0, no sanitizer report
    assert small.get("status") == 200, small
    assert big.get("status") != 200, big
    server.start()
    c = server.client()
    assert staging_files(server) == []
    keys = set(all_objects(c))
    assert keys == {"before", "small-in-flight"}
    assert c.get_object(Bucket=BUCKET, Key="before")["Body"].read() == b"committed before shutdown"
    assert c.get_object(Bucket=BUCKET, Key="small-in-flight")["ContentLength"] == 2 << 20
    H.expect_error("NoSuchKey", 404, c.get_object, Bucket=BUCKET, Key="big-in-flight")
    assert published_blob_count(server) == 2


def test_client_disconnect_mid_upload(kura_server):
    """A client that goes away mid-body leaves nothing behind."""
    server = kura_server
    c = server.client()
    c.create_bucket(Bucket=BUCKET)
    c.put_object(Bucket=BUCKET, Key="cut-existing", Body=b"old")
    for key in ("cut-new", "cut-existing"):
        path = H.key_path(BUCKET, key)
        total = 3 * H.SEG
        signed = H.sign(server, "PUT", path, payload_hash="UNSIGNED-PAYLOAD",
                        headers={"Content-Length": str(total)})
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
        for k, v in signed.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        conn.send(os.urandom(total // 2))
        time.sleep(0.2)
        conn.close()
    deadline = time.monotonic() + 10
    while staging_files(server):
        assert time.monotonic() < deadline, staging_files(server)
        time.sleep(0.05)
    H.expect_error("NoSuchKey", 404, c.get_object, Bucket=BUCKET, Key="cut-new")
    assert c.get_object(Bucket=BUCKET, Key="cut-existing")["Body"].read() == b"old"
    assert set(all_objects(c)) == {"cut-existing"}
    assert published_blob_count(server) == 1

#!/usr/bin/python3
"""ListObjectsV2 on a bucket of a million keys: time to the first page.

Builds a data directory whose bucket holds N keys (default 1,000,000; the
rows are inserted straight into meta.db in large transactions, because a
million PUTs would measure PUT, not listing), starts kura on it, and times
ListObjectsV2 requests with boto3 over keep-alive:

  - first page (max-keys 1000) of the whole bucket
  - first page under a prefix in the middle of the key space
  - a page from a continuation token half-way through
  - a delimiter listing that rolls the whole bucket up into 1000 prefixes

Reference, measured in the same run: the same range query run directly
with Python's sqlite3 on meta.db (what the metadata store alone costs).

Usage: bench/list_million.py [--keys N] [--runs R] [--kura build/kura]
Prints one table and one machine-readable line per case:
  BENCH list case=<name> keys=N client_p50_ms=... server_p50_ms=...
        ref_sqlite_p50_ms=... (and p99s)
"""

import argparse
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
AK, SK = "KBENCHLISTMILLION000", "benchbenchbenchbenchbenchbenchbenchbench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kura, data, port, log=subprocess.DEVNULL):
    env = dict(os.environ, KURA_ROOT_ACCESS_KEY=AK, KURA_ROOT_SECRET_KEY=SK)
    p = subprocess.Popen([kura, "server", "--data-dir", data, "--listen",
                          f"127.0.0.1:{port}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("kura did not start")


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)


def key_of(i):
    # Two-level "directories" so that delimiters have something to do.
    return f"dir{i % 1000:03d}/sub{(i // 1000) % 100:02d}/object-{i:08d}.dat"


def fill(db_path, bucket, n):
    db = sqlite3.connect(db_path)
    (bucket_id,) = db.execute("SELECT id FROM buckets WHERE name = ?",
                              (bucket,)).fetchone()
    now = int(time.time() * 1000)
    batch = 100_000
    for start_i in range(0, n, batch):
        rows = [(bucket_id, key_of(i).encode(), os.urandom(16), 0,
                 "d41d8cd98f00b204e9800998ecf8427e", now, 0)
                for i in range(start_i, min(n, start_i + batch))]
        db.executemany("INSERT INTO objects (bucket_id, key, version_uid, size, "
                       "etag, mtime_ms, part_count) VALUES (?,?,?,?,?,?,?)", rows)
        db.commit()
    db.close()
    return bucket_id


def timed(fn, runs):
    fn()                                            # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--kura", default=str(ROOT / "build" / "kura"))
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="kura-bench-list-") as tmp:
        data, port = Path(tmp) / "data", free_port()
        p = start(a.kura, data, port)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}",
                          aws_access_key_id=AK, aws_secret_access_key=SK,
                          region_name="us-east-1",
                          config=Config(signature_version="s3v4",
                                        s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket="big")
        stop(p)
        t = time.perf_counter()
        bucket_id = fill(data / "meta.db", "big", a.keys)
        print(f"inserted {a.keys} keys in {time.perf_counter() - t:.1f} s")
        logf = open(Path(tmp) / "server.log", "w+")
        p = start(a.kura, data, port, logf)
        try:
            mid = "dir500/"
            token = s3.list_objects_v2(Bucket="big", StartAfter=key_of(a.keys // 2),
                                       MaxKeys=1)["NextContinuationToken"]
            cases = {
                "first-page": lambda: s3.list_objects_v2(Bucket="big", MaxKeys=1000),
                "prefix-page": lambda: s3.list_objects_v2(Bucket="big", Prefix=mid,
                                                          MaxKeys=1000),
                "continuation": lambda: s3.list_objects_v2(
                    Bucket="big", ContinuationToken=token, MaxKeys=1000),
                "delimiter-1000-prefixes": lambda: s3.list_objects_v2(
                    Bucket="big", Delimiter="/", MaxKeys=1000),
            }
            got = s3.list_objects_v2(Bucket="big", MaxKeys=1000)
            assert got["KeyCount"] == 1000 and got["IsTruncated"]
            got = s3.list_objects_v2(Bucket="big", Delimiter="/", MaxKeys=1000)
            assert len(got["CommonPrefixes"]) == 1000

            db = sqlite3.connect(f"file:{data / 'meta.db'}?mode=ro", uri=True)
            ref_sql = ("SELECT key, size, etag, mtime_ms FROM objects WHERE "
                       "bucket_id = ? AND key >= ? AND key < ? ORDER BY key LIMIT 1001")
            refs = {
                "first-page": (b"", b"\xff"),
                "prefix-page": (mid.encode(), b"dir5000"),
                "continuation": (key_of(a.keys // 2).encode(), b"\xff"),
                "delimiter-1000-prefixes": (b"", b"\xff"),
            }
            print(f"\n{'case':28} {'client p50':>10} {'p99':>8} {'server p50':>10} "
                  f"{'p99':>8} {'sqlite p50':>10}   (ms)")
            lines = []
            for name, fn in cases.items():
                logf.seek(0, os.SEEK_END)
                mark = logf.tell()
                xs = timed(fn, a.runs)
                time.sleep(0.2)
                logf.seek(mark)
                ss = [int(m.group(1)) / 1000 for m in
                      re.finditer(r"op=ListObjectsV2 .* us=(\d+)", logf.read())][1:]
                lo, hi = refs[name]
                rs = timed(lambda: db.execute(ref_sql, (bucket_id, lo, hi)).fetchall(),
                           a.runs)
                print(f"{name:28} {pct(xs, 50):10.2f} {pct(xs, 99):8.2f} "
                      f"{pct(ss, 50):10.2f} {pct(ss, 99):8.2f} {pct(rs, 50):10.2f}")
                lines.append(f"BENCH list case={name} keys={a.keys} "
                             f"client_p50_ms={pct(xs, 50):.2f} client_p99_ms={pct(xs, 99):.2f} "
                             f"server_p50_ms={pct(ss, 50):.2f} server_p99_ms={pct(ss, 99):.2f} "
                             f"ref_sqlite_p50_ms={pct(rs, 50):.2f}")
            print()
            print("\n".join(lines))
            print("(client: boto3 in this process, including its own XML parsing "
                  "of each page; server: the request's latency in kura's log, from "
                  "headers received to response complete; sqlite: the same range "
                  "query run directly on meta.db)")
        finally:
            stop(p)


if __name__ == "__main__":
    main()

"""Helpers of the fault tests (test_faults.py): a small tmpfs as a full
disk, the blob files of an object, a raw GET that reports exactly what the
client received, and a crash workload whose every operation is recorded
with whether the server acknowledged it.

The data directory layout they rely on (src/store/fs.c):
    DATA/blobs/staging/<32 hex>        staged (temporary) blobs
    DATA/blobs/<h0>/<h1>/<32 hex>      published blobs
A blob is a 32-byte header followed by segments of seg_size plaintext
bytes plus a 16-byte GCM tag each (docs/FORMAT.md section 4-5).
"""

import contextlib
import hashlib
import http.client
import os
import random
import subprocess
import threading

import pytest
from botocore.exceptions import ClientError

import helpers as H
from test_durability import published_blob_count, staging_files  # noqa: F401

BLOB_HDR = 32
TAG = 16


# -- a full disk -------------------------------------------------------------

def mount_tmpfs(path, size):
    """Mount a tmpfs of `size` (e.g. "64m") on path; (ok, why)."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700",
                        "tmpfs", str(path)], capture_output=True, text=True)
    return r.returncode == 0, r.stderr.strip()


def umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextlib.contextmanager
def tmpfs(path, size):
    """A tmpfs of `size` on path for the block, unmounted after it; the test
    is skipped where it cannot be mounted (mounting needs root)."""
    ok, why = mount_tmpfs(path, size)
    if not ok:
        pytest.skip(f"cannot mount a tmpfs (needs root): {why}")
    try:
        yield path
    finally:
        umount(path)


def fill(path, leave=0, block=1 << 20):
    """Write a filler file at path until the filesystem has at most `leave`
    bytes free (or is full); returns the bytes written."""
    st = os.statvfs(os.path.dirname(path))
    free = st.f_bavail * st.f_frsize
    want = max(free - leave, 0)
    done = 0
    with open(path, "wb") as f:
        try:
            while done < want:
                n = min(block, want - done)
                f.write(b"\xa5" * n)
                f.flush()
                done += n
        except OSError:
            pass
    return done


# -- blobs -------------------------------------------------------------------

def blob_set(server):
    """Paths of the published blob files."""
    root = os.path.join(server.data_dir, "blobs")
    return {p for p in H.all_files(root)
            if os.path.relpath(p, root).split(os.sep)[0] != "staging"}


def segment_offset(index, seg=H.SEG):
    """File offset of segment `index` of a blob."""
    return BLOB_HDR + index * (seg + TAG)


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


# -- what a client receives --------------------------------------------------

class Received:
    """Outcome of one raw GET: status (None if no response), the headers,
    the bytes received and whether the body ended early."""

    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""
        self.complete = False
        self.error = None

    def __repr__(self):
        return (f"Received(status={self.status}, len={len(self.body)}, "
                f"complete={self.complete}, error={self.error!r})")


def raw_get(server, bucket, key, headers=None):
    """A signed GET read to the end; never raises for a cut connection."""
    out = Received()
    path = H.key_path(bucket, key)
    s = H.sign(server, "GET", path, headers=headers or {})
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for k, v in s.headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        r = conn.getresponse()
        out.status = r.status
        out.headers = {k.lower(): v for k, v in r.getheaders()}
        chunks = []
        try:
            while True:
                c = r.read(65536)
                if not c:
                    break
                chunks.append(c)
            out.complete = True
        except http.client.IncompleteRead as e:
            chunks.append(e.partial)
            out.error = repr(e)
        except OSError as e:
            out.error = repr(e)
        out.body = b"".join(chunks)
        if out.complete and "content-length" in out.headers and \
                len(out.body) != int(out.headers["content-length"]):
            out.complete = False
    except (OSError, http.client.HTTPException) as e:
        out.error = repr(e)
    finally:
        conn.close()
    return out


def assert_never_wrong(got, expected):
    """A response is either an error, or cut short, or exactly the
    expected bytes: a complete 2xx with other bytes is a failure."""
    if got.status is not None and 200 <= got.status < 300:
        # Even a body cut short carries only authenticated bytes.
        assert expected.startswith(got.body), \
            f"wrong bytes in a body cut short: {got}"
    if got.status is not None and 200 <= got.status < 300 and got.complete:
        assert got.body == expected, \
            f"wrong bytes served as a complete success: {got}"
        return True
    return False


# -- crash workload ----------------------------------------------------------

SIZES = [0, 1, 4096, H.SEG - 1, H.SEG + 1, 3 * H.SEG + 5, 1200 * 1024]
BIG_PART = 5 * 1024 * 1024


def digest(data):
    return hashlib.sha256(data).hexdigest()


class KeyState:
    """What the client knows of one key: `confirmed` is its state (a
    (sha256, parts) pair, or None for absent) as acknowledged or as seen
    after the last restart; `pending` is the state the one unacknowledged
    operation in flight at the crash would leave (or the marker NONE_PENDING)."""
    NONE_PENDING = object()

    def __init__(self):
        self.confirmed = None
        self.pending = KeyState.NONE_PENDING

    def allowed(self):
        states = [self.confirmed]
        if self.pending is not KeyState.NONE_PENDING:
            states.append(self.pending)
        return states


class Worker(threading.Thread):
    """Runs PUTs (single and multi segment, overwrites), multipart uploads
    ending in CompleteMultipartUpload, and DELETEs on the keys it owns
    until an operation fails (the server was killed).  Each key is touched
    by this thread only, so its operations are ordered."""

    def __init__(self, server, bucket, keys, states, seed, big_parts=True):
        super().__init__(daemon=True)
        self.client = server.client()
        self.bucket = bucket
        self.keys = keys
        self.states = states
        self.rng = random.Random(seed)
        self.big_parts = big_parts
        self.acked = 0
        self.counts = {}        # operation name -> acknowledged count
        self.problems = []

    def op_put(self, key):
        data = os.urandom(self.rng.choice(SIZES))
        st = self.states[key]
        st.pending = (digest(data), 1)
        r = self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        if r["ETag"].strip('"') != H.md5_hex(data):
            self.problems.append(f"PUT {key}: ETag {r['ETag']}")

    def op_multipart(self, key):
        if self.big_parts and self.rng.random() < 0.3:
            parts = [os.urandom(BIG_PART), os.urandom(self.rng.choice(SIZES[1:]))]
        else:
            parts = [os.urandom(self.rng.choice(SIZES[1:]))]
        st = self.states[key]
        up = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)
        uid = up["UploadId"]
        done = []
        for n, p in enumerate(parts, 1):
            r = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=uid,
                                        PartNumber=n, Body=p)
            done.append({"PartNumber": n, "ETag": r["ETag"]})
        st.pending = (digest(b"".join(parts)), len(parts))
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=uid,
            MultipartUpload={"Parts": done})

    def op_delete(self, key):
        self.states[key].pending = None
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def run(self):
        ops = [self.op_put] * 5 + [self.op_multipart] * 2 + [self.op_delete] * 2
        while True:
            key = self.rng.choice(self.keys)
            op = self.rng.choice(ops)
            try:
                op(key)
            except ClientError as e:
                # An S3 error is a definite answer: not applied.
                self.problems.append(f"{op.__name__} {key}: {e.response['Error']}")
                self.states[key].pending = KeyState.NONE_PENDING
                return
            except Exception:            # noqa: BLE001 - server killed
                return
            st = self.states[key]
            st.confirmed = st.pending
            st.pending = KeyState.NONE_PENDING
            self.acked += 1
            self.counts[op.__name__] = self.counts.get(op.__name__, 0) + 1


def observe(server, bucket, states):
    """After a restart: check every key against what is allowed, check the
    listing agrees with GETs, and set each key's confirmed state to what is
    there now.  Returns (blobs the visible objects use, keys whose
    unacknowledged in-flight operation took effect)."""
    c = server.client()
    listed = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            listed[o["Key"]] = o
    assert set(listed) <= set(states), f"listed keys never written: " \
        f"{set(listed) - set(states)}"
    blobs = inflight = 0
    for key, st in states.items():
        try:
            g = c.get_object(Bucket=bucket, Key=key)
            data = g["Body"].read()
            assert len(data) == g["ContentLength"]
            seen = digest(data)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "NoSuchKey", (key, e.response)
            seen = None
        allowed = st.allowed()
        match = [s for s in allowed if (s is None and seen is None) or
                 (s is not None and s[0] == seen)]
        assert match, (f"{key}: state after restart is "
                       f"{'absent' if seen is None else seen[:12]}, allowed "
                       f"{[None if s is None else s[0][:12] for s in allowed]}"
                       f" (lost acknowledged write or half-visible object)")
        assert (seen is not None) == (key in listed), \
            f"{key}: listing ({key in listed}) disagrees with GET ({seen})"
        if seen is not None:
            assert listed[key]["Size"] == len(data)
            assert listed[key]["ETag"] == g["ETag"]
            blobs += match[0][1]
        if match[0] is not st.confirmed and match[0] != st.confirmed:
            inflight += 1
        st.confirmed = match[0]
        st.pending = KeyState.NONE_PENDING
    return blobs, inflight


def open_upload_blobs(server, bucket):
    """Blobs held by incomplete multipart uploads (their uploaded parts)."""
    c = server.client()
    n = 0
    for u in c.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        parts = c.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
        n += len(parts.get("Parts", []))
    return n


def abort_open_uploads(server, bucket):
    c = server.client()
    for u in c.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        c.abort_multipart_upload(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])

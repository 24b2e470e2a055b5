"""What kura leaves on disk: no plaintext of object bodies anywhere, no
object keys or metadata in blobs or the keystore (they are in meta.db, as
documented), random blob names, private file modes; and damaged blobs
(flipped byte, truncation, swapped or deleted files) never read back as
wrong bytes."""

import http.client
import os
import secrets
import stat

import pytest

import helpers as H
from conftest import client_fixture, server_fixture

BUCKET = "atrest"

srv = server_fixture(scope="module", buckets=[BUCKET])
s3 = client_fixture("srv")


def published_blobs(data_dir):
    root = os.path.join(data_dir, "blobs")
    return {p for p in H.all_files(root)
            if os.path.relpath(p, root).split(os.sep)[0] != "staging"}


def put_and_find_blob(srv, s3, key, data):
    """PUT a new key and return the path of the one blob it created."""
    before = published_blobs(srv.data_dir)
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    new = published_blobs(srv.data_dir) - before
    assert len(new) == 1, new
    return new.pop()


# -- plaintext never at rest -------------------------------------------------------

def test_no_plaintext_at_rest(srv, s3):
    body_marker = secrets.token_hex(32).encode()          # 64 hex chars
    key_marker = secrets.token_hex(16)
    meta_marker = secrets.token_hex(16)
    data = body_marker * 5000                             # ~320 KB, several segments
    small = body_marker + b" small object"
    key = f"private/{key_marker}/report.txt"
    s3.put_object(Bucket=BUCKET, Key=key, Body=data,
                  Metadata={"note": f"meta {meta_marker} here"})
    s3.put_object(Bucket=BUCKET, Key=key + ".small", Body=small,
                  Metadata={"note": meta_marker})
    r = H.put_streaming_signed(srv, BUCKET, key + ".chunked", data, chunk_size=100000)
    assert r.status == 200, r
    r = H.raw(srv, "PUT", H.key_path(BUCKET, key + ".te"), body=[data[:70000], data[70000:]],
              chunked=True, payload_hash="UNSIGNED-PAYLOAD")
    assert r.status == 200, r
    # An overwritten version's blob must not linger in the clear either.
    s3.put_object(Bucket=BUCKET, Key=key + ".ow", Body=small)
    s3.put_object(Bucket=BUCKET, Key=key + ".ow", Body=b"replaced")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data

    def check():
        data_dir = str(srv.data_dir)
        everything = list(H.all_files(data_dir))
        blobs = [p for p in everything if "/blobs/" in p]
        keystore = [p for p in everything if "/keys/" in p]
        assert blobs and keystore and any(p.endswith("meta.db") for p in everything)
        assert H.files_containing(everything, body_marker) == []
        # A 32-byte window of the marker, in case a file holds a fragment.
        assert H.files_containing(everything, body_marker[16:48]) == []
        for m in (key_marker.encode(), meta_marker.encode()):
            assert H.files_containing(blobs + keystore, m) == []
        # User metadata: only in the metadata database.  Object names also
        # in the audit log (it records who touched which object) and its
        # search index, both under audit/.
        assert all("meta.db" in os.path.basename(p)
                   for p in H.files_containing(everything, meta_marker.encode()))
        key_files = H.files_containing(everything, key_marker.encode())
        assert any("/audit/" in p for p in key_files)
        assert all("meta.db" in os.path.basename(p) or "/audit/" in p for p in key_files)
        # Neither body nor key reaches the server's log.
        log = srv.stderr_text()
        assert body_marker.decode() not in log
        assert key_marker not in log

    check()
    # And after a clean shutdown (WAL checkpointed into meta.db).
    srv.restart()
    check()
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


def test_blob_names_are_random_hex(srv, s3):
    data = b"same body for every key"
    names = []
    for i in range(5):
        key = f"names/{i}"
        path = put_and_find_blob(srv, s3, key, data)
        rel = os.path.relpath(path, os.path.join(srv.data_dir, "blobs")).split(os.sep)
        assert len(rel) == 3, rel
        name = rel[2]
        assert H.BLOB_NAME.match(name), name
        assert rel[0] == name[0:2] and rel[1] == name[2:4], rel
        derived = {H.md5_hex(key.encode()), H.md5_hex(data), H.sha256_hex(key.encode())[:32],
                   H.sha256_hex(data)[:32]}
        assert name not in derived
        names.append(name)
    assert len(set(names)) == len(names)
    # Distinct blobs even for identical content: no deduplication leak.
    assert len({open(os.path.join(srv.data_dir, "blobs", n[:2], n[2:4], n), "rb").read()
                for n in names}) == len(names)


def test_file_modes(srv):
    d = srv.data_dir
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)     # noqa: E731
    assert mode(d) == 0o700
    keys = os.path.join(d, "keys")
    assert mode(keys) == 0o700
    key_files = os.listdir(keys)
    assert "master.key" in key_files and "keystore" in key_files
    for f in key_files:
        assert mode(os.path.join(keys, f)) == 0o600, f
    for f in os.listdir(d):
        p = os.path.join(d, f)
        if os.path.isfile(p) and (f.startswith("meta.db") or f == "root-credentials"):
            assert mode(p) == 0o600, f
    for dirpath, dirs, files in os.walk(os.path.join(d, "blobs")):
        assert mode(dirpath) == 0o700, dirpath
        for f in files:
            assert mode(os.path.join(dirpath, f)) == 0o600, f


# -- tampering ---------------------------------------------------------------------

def get_partial(srv, key, headers=None):
    """(status, body bytes received, complete?) for a GET that may be cut."""
    signed = H.sign(srv, "GET", H.key_path(BUCKET, key), headers=headers)
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    try:
        conn.request("GET", H.key_path(BUCKET, key), headers=signed.headers)
        r = conn.getresponse()
        try:
            return r.status, r.read(), True
        except http.client.IncompleteRead as e:
            return r.status, e.partial, False
        except (ConnectionError, OSError):
            return r.status, b"", False
    finally:
        conn.close()


def assert_error_status(srv, key, headers=None):
    status, body, _ = get_partial(srv, key, headers)
    assert status >= 500, (status, body[:300])
    err = H.parse_error(body)
    assert err["Code"] == "InternalError"
    return err


def assert_never_wrong(srv, key, data, headers=None, first=0):
    status, body, complete = get_partial(srv, key, headers)
    if status in (200, 206):
        assert not complete or len(body) < len(data) - first or body != data[first:], \
            "a damaged object was served whole"
        assert data[first:first + len(body)] == body, "wrong bytes served"
    else:
        assert status >= 500, status


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x01]))


@pytest.mark.parametrize("where", ["middle", "header", "tag"])
def test_flipped_byte_single_segment(srv, s3, where):
    data = os.urandom(5000)
    key = f"tamper/flip-{where}"
    path = put_and_find_blob(srv, s3, key, data)
    size = os.path.getsize(path)
    offset = {"middle": size // 2, "header": 5, "tag": size - 3}[where]
    flip(path, offset)
    assert_error_status(srv, key)
    flip(path, offset)                                    # undo: readable again
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


def test_flipped_byte_in_later_segment(srv, s3):
    data = os.urandom(3 * H.SEG + 100)
    key = "tamper/flip-late"
    path = put_and_find_blob(srv, s3, key, data)
    size = os.path.getsize(path)
    flip(path, size - 50)                 # inside the last segment (100 bytes + tag)
    assert_never_wrong(srv, key, data)
    # A range inside the damaged segment is refused outright...
    assert_error_status(srv, key, {"Range": f"bytes={3 * H.SEG + 10}-{3 * H.SEG + 20}"})
    # ...while an undamaged segment still reads correctly.
    status, body, complete = get_partial(srv, key, {"Range": "bytes=10-1000"})
    assert status == 206 and complete and body == data[10:1001]
    # A range that starts in a good segment and runs into the bad one.
    assert_never_wrong(srv, key, data, {"Range": f"bytes={2 * H.SEG}-"}, first=2 * H.SEG)


@pytest.mark.parametrize("cut", [1, 16, 1000])
def test_truncated_blob(srv, s3, cut):
    data = os.urandom(4000)
    key = f"tamper/truncated-{cut}"
    path = put_and_find_blob(srv, s3, key, data)
    os.truncate(path, os.path.getsize(path) - cut)
    assert_error_status(srv, key)


def test_truncated_multi_segment_blob(srv, s3):
    data = os.urandom(2 * H.SEG + 5000)
    key = "tamper/truncated-multi"
    path = put_and_find_blob(srv, s3, key, data)
    os.truncate(path, os.path.getsize(path) - 100)
    assert_never_wrong(srv, key, data)


def test_swapped_blobs(srv, s3):
    a, b = os.urandom(3000), os.urandom(3000)
    pa = put_and_find_blob(srv, s3, "tamper/swap-a", a)
    pb = put_and_find_blob(srv, s3, "tamper/swap-b", b)
    assert os.path.getsize(pa) == os.path.getsize(pb)
    tmp = pa + ".tmp"
    os.rename(pa, tmp)
    os.rename(pb, pa)
    os.rename(tmp, pb)
    assert_error_status(srv, "tamper/swap-a")
    assert_error_status(srv, "tamper/swap-b")


def test_blob_replaced_by_other_object_of_same_key(srv, s3):
    """An old version's blob put back in place of the new one is refused."""
    old_data, new_data = os.urandom(3000), os.urandom(3000)
    old = put_and_find_blob(srv, s3, "tamper/rollback", old_data)
    saved = open(old, "rb").read()
    before = published_blobs(srv.data_dir)
    s3.put_object(Bucket=BUCKET, Key="tamper/rollback", Body=new_data)
    (new,) = published_blobs(srv.data_dir) - before
    with open(new, "wb") as f:
        f.write(saved)
    assert_error_status(srv, "tamper/rollback")


def test_deleted_blob(srv, s3):
    data = os.urandom(3000)
    path = put_and_find_blob(srv, s3, "tamper/deleted", data)
    os.unlink(path)
    assert_error_status(srv, "tamper/deleted")
    # The server is otherwise fine.
    s3.put_object(Bucket=BUCKET, Key="tamper/after", Body=b"ok")
    assert s3.get_object(Bucket=BUCKET, Key="tamper/after")["Body"].read() == b"ok"

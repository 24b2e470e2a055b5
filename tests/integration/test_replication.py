"""Replication across backends with locations (issue 13): a gateway kura
placing every object on tokyo (fs, JP) and osaka (remote kura, JP)
synchronously and on virginia (remote kura, US) asynchronously, keys in a
SoftHSM2 token labelled JP (placement_helpers.py builds all of it).

- the sync and async replicas hold the same ciphertext, byte for byte,
  under names that are random blob ids; the gateway returns the plaintext;
  `kura object locate` names every replica with its labels and history;
- a sync backend down: the PUT fails (5xx) and leaves nothing anywhere;
- an async backend down: PUTs succeed, the queue survives a kill -9 of the
  gateway and drains once the backend is back;
- what a foreign backend learns: no key names, no user metadata, no tags,
  no bucket name, no plaintext — in its objects, its listing, its request
  log, its audit log or anywhere in its data directory.
"""

import os
import re

import pytest
from botocore.exceptions import ClientError

from helpers import all_files, audit_export, eventually
from placement_helpers import (GOOD_STATES, HEX32, MiB, history_states,
                               put_multipart, replicas, standard_topology,
                               states_on, unique, wait_replicated)

ALL3 = {"tokyo", "osaka", "virginia"}


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    """(backends, token, gateway) shared by this module's tests."""
    with standard_topology(tmp_path_factory.mktemp("replication")) as t:
        yield t


def current_blobs(gw, bucket, keys):
    """{blob id: the part's "bytes"} of the objects' parts."""
    out = {}
    for k in keys:
        for p in gw.locate(bucket, k)["parts"]:
            out[p["blob_id"]] = p["bytes"]
    return out


def assert_labels(bk, reps):
    for name, r in reps.items():
        b = bk[name]
        got = (r["type"], r["site"], r["region"], r["jurisdiction"])
        assert got == (b.type, b.site, b.region, b.jurisdiction), (name, r)


# -- 1. sync + async, byte-exact -------------------------------------------------

def test_replicas_are_one_ciphertext_under_blob_ids(topo):
    bk, _, gw = topo
    s3 = gw.client()
    bucket = unique("rep")
    s3.create_bucket(Bucket=bucket)
    marker = b"PLAINTEXT-MARKER-" + os.urandom(4).hex().encode()
    bodies = {
        "small.txt": marker * 40 + os.urandom(1000),
        "empty": b"",
        "big.bin": marker + os.urandom(20 * MiB + 12345) + marker,
    }
    s3.put_object(Bucket=bucket, Key="small.txt", Body=bodies["small.txt"])
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    # 8 MiB parts: each more than one part of the remote store's own
    # multipart upload (part_size = 5M in the backend sections).
    put_multipart(s3, bucket, "big.bin", bodies["big.bin"], part_size=8 * MiB)
    big = len(bodies["big.bin"])
    part_sizes = {"small.txt": [len(bodies["small.txt"])], "empty": [0],
                  "big.bin": [8 * MiB, 8 * MiB, big - 16 * MiB]}

    # Acknowledged: both sync replicas durable; the async one queued or done.
    for key, body in bodies.items():
        loc = gw.locate(bucket, key)
        assert (loc["bucket"], loc["key"], loc["placement"]) == \
            (bucket, key, "jp2us"), loc
        assert len(loc["parts"]) == len(part_sizes[key]) or \
            (not body and not loc["parts"]), loc
        for part_no, blob, reps in replicas(loc):
            assert HEX32.fullmatch(blob), loc
            assert set(reps) == ALL3, loc
            assert_labels(bk, reps)
            for sync in ("tokyo", "osaka"):
                assert reps[sync]["state"] in GOOD_STATES, (key, reps[sync])
                assert reps[sync]["stored_at"], (key, reps[sync])
            assert reps["virginia"]["state"] in ("pending",) + GOOD_STATES, \
                (key, reps["virginia"])
    big_parts = gw.locate(bucket, "big.bin")["parts"]
    assert len(big_parts) == 3, big_parts       # 8 + 8 + 4 MiB

    locs = wait_replicated(gw, bucket, bodies)

    # Remote names are blob ids (virginia's under its prefix), nothing else.
    assert all(HEX32.fullmatch(n) for n in bk.osaka.names()), bk.osaka.names()
    assert all(re.fullmatch(r"dr/[0-9a-f]{32}", n)
               for n in bk.virginia.names()), bk.virginia.names()

    for key, body in bodies.items():
        for part_no, blob, reps in replicas(locs[key]):
            # The async replica was queued first, then stored.
            hv = history_states(reps["virginia"])
            assert "pending" in hv, reps["virginia"]
            firsts = [i for i, s in enumerate(hv) if s in GOOD_STATES]
            assert firsts and hv.index("pending") < firsts[0], hv
            assert reps["virginia"]["stored_at"], reps["virginia"]
            for name, r in reps.items():
                assert r["state"] in GOOD_STATES, (name, r)
                assert blob in r["remote_id"], (name, r)
            # One ciphertext on all three backends.
            t = bk.tokyo.read(blob)
            o = bk.osaka.read(blob)
            v = bk.virginia.read(blob)
            assert t == o, f"{key} part {part_no}: tokyo and osaka differ"
            assert t == v, f"{key} part {part_no}: tokyo and virginia differ"
            # A part's "bytes": its plaintext or its ciphertext size (the
            # spec does not say which; either is checked exactly).
            i = [p["blob_id"] for p in locs[key]["parts"]].index(blob)
            plain = part_sizes[key][i]
            given = locs[key]["parts"][i]["bytes"]
            assert len(t) > plain, (key, len(t), plain)
            assert given in (plain, len(t)), (key, given, plain, len(t))
            assert marker not in t, f"{key}: plaintext in the ciphertext"
        got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert got == body, key


# -- 2. a sync backend down ------------------------------------------------------

def test_sync_backend_down_put_fails_and_leaves_nothing(topo):
    bk, _, gw = topo
    s3 = gw.client()
    bucket = unique("syncdown")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="old", Body=b"before the outage")
    s3.put_object(Bucket=bucket, Key="keep", Body=b"kept")
    wait_replicated(gw, bucket, ["old", "keep"])
    blobs_before = set(current_blobs(gw, bucket, ["old", "keep"]))
    tokyo_before = bk.tokyo.all_files()
    virginia_before = set(bk.virginia.blob_ids())

    with bk.osaka.down():
        for key in ("new", "old"):
            with pytest.raises(ClientError) as e:
                s3.put_object(Bucket=bucket, Key=key,
                              Body=os.urandom(300 * 1024))
            st = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
            assert 500 <= st < 600, e.value.response
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=bucket, Key="new")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert s3.get_object(Bucket=bucket, Key="old")["Body"].read() == \
            b"before the outage"
        listed = [o["Key"] for o in
                  s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert sorted(listed) == ["keep", "old"], listed

        # No blob of the failed writes on the other sync backend (final
        # or staging), once whatever cleanup there is has run.
        def tokyo_unchanged():
            assert bk.tokyo.all_files() == tokyo_before, \
                sorted(bk.tokyo.all_files() - tokyo_before)
        eventually(tokyo_unchanged, timeout=10)

    # Back: PUTs work again.
    body = os.urandom(300 * 1024)
    eventually(lambda: s3.put_object(Bucket=bucket, Key="new", Body=body),
               timeout=30, interval=0.5)
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == body
    locs = wait_replicated(gw, bucket, ["old", "keep", "new"])
    assert all(s in GOOD_STATES for s in states_on(locs["new"], "osaka"))

    # What the backends gained is exactly the blob of the one PUT that
    # succeeded: the failed writes left nothing on tokyo and sent nothing
    # to virginia.
    eventually(lambda: _queue_empty(gw, "virginia"), timeout=30)
    live = set(current_blobs(gw, bucket, ["old", "keep", "new"]))
    assert live >= blobs_before and live - blobs_before, live
    added = live - blobs_before
    new_tokyo = {os.path.basename(f) for f in
                 bk.tokyo.all_files() - tokyo_before}
    assert new_tokyo == added, (new_tokyo, added)
    assert set(bk.virginia.blob_ids()) - virginia_before == added


def _queue_empty(gw, backend):
    st = gw.backend_status()[backend]
    assert st["queue"] == 0, st


# -- 3. an async backend down, across a gateway crash ---------------------------

def test_async_queue_survives_crash_and_drains(topo):
    bk, _, gw = topo
    s3 = gw.client()
    bucket = unique("asyncdown")
    s3.create_bucket(Bucket=bucket)
    bodies = {f"q{i}": os.urandom(50 * 1024 + i) for i in range(5)}

    with bk.virginia.down():
        for k, v in bodies.items():
            s3.put_object(Bucket=bucket, Key=k, Body=v)       # acknowledged
        blobs = {}
        for k in bodies:
            loc = gw.locate(bucket, k)
            for sync in ("tokyo", "osaka"):
                assert all(s in GOOD_STATES for s in states_on(loc, sync)), loc
            st = states_on(loc, "virginia")
            assert st and all(s in ("pending", "failed") for s in st), loc
            blobs.update({b: k for b in (p["blob_id"] for p in loc["parts"])})

        def unreachable_with_queue():
            v = gw.backend_status()["virginia"]
            assert v["reachable"] is False and v["queue"] >= len(blobs), v
        eventually(unreachable_with_queue, timeout=30)

        # A crash of the gateway loses nothing of the queue.
        gw.crash_and_restart()
        for k in bodies:
            st = states_on(gw.locate(bucket, k), "virginia")
            assert st and all(s in ("pending", "failed") for s in st), (k, st)
        assert gw.backend_status()["virginia"]["queue"] >= len(blobs)

    # virginia is back: the queue drains.
    locs = wait_replicated(gw, bucket, bodies, timeout=90)
    eventually(lambda: _queue_empty(gw, "virginia"), timeout=30)
    held = bk.virginia.blob_ids()
    for blob in blobs:
        assert blob in held, blob
        assert bk.virginia.read(blob) == bk.tokyo.read(blob), blob
    for k, loc in locs.items():
        for _, _, reps in replicas(loc):
            hv = history_states(reps["virginia"])
            assert hv[0] == "pending" and hv[-1] in GOOD_STATES, hv
    for k, v in bodies.items():
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == v
    assert gw.backend_status()["virginia"]["reachable"] is True


# -- 4. what a foreign backend learns ---------------------------------------------

def test_foreign_backend_sees_only_ciphertext_under_random_names(topo):
    bk, _, gw = topo
    s3 = gw.client()
    tag = os.urandom(5).hex()
    bucket = f"confidential-{tag}"
    s3.create_bucket(Bucket=bucket)
    body_marker = f"BODYMARK{tag}".encode()
    objects = {
        f"payroll/KEYMARK{tag}-2026.csv": (body_marker * 300, "METAMARK-a"),
        f"minister-KEYMARK{tag}.txt": (body_marker + os.urandom(200),
                                       "METAMARK-b"),
        f"big/KEYMARK{tag}.bin": (body_marker * 2 + os.urandom(6 * MiB) +
                                  body_marker, "METAMARK-c"),
    }
    needles = {bucket, body_marker.decode(), f"KEYMARK{tag}", f"TAGMARK{tag}",
               f"METAMARK{tag}", f"CTMARK{tag}", "payroll", "minister"}
    for key, (body, meta) in objects.items():
        needles.add(key)
        s3.put_object(Bucket=bucket, Key=key, Body=body,
                      Metadata={"owner": f"{meta}-METAMARK{tag}",
                                f"x-METAMARK{tag}": "yes"},
                      ContentType=f"text/CTMARK{tag}",
                      Tagging=f"class=TAGMARK{tag}&who=METAMARK{tag}")
    needles |= {n.lower() for n in needles}     # header names fold case
    locs = wait_replicated(gw, bucket, objects)
    blobs = {p["blob_id"] for loc in locs.values() for p in loc["parts"]}

    for remote in (bk.virginia, bk.osaka):
        names = remote.names()
        held = remote.blob_ids()
        assert blobs <= set(held), (remote.name, blobs - set(held))
        assert len(held) == len(names), (remote.name, names)
        for needle in needles:
            assert not [n for n in names if needle.lower() in n.lower()], \
                (remote.name, needle)
        for blob in blobs:
            name = remote.name_of(blob)
            data = remote.read(blob)
            for needle in needles:
                assert needle.encode() not in data, (remote.name, needle)
            head = remote.client.head_object(Bucket=remote.bucket, Key=name)
            assert head.get("Metadata", {}) == {}, (remote.name, head)
            assert "CTMARK" not in head.get("ContentType", ""), head
            tags = remote.client.get_object_tagging(Bucket=remote.bucket,
                                                    Key=name)["TagSet"]
            assert tags == [], (remote.name, tags)
        # The remote's request log, its audit log, its data directory.
        log = "".join(remote.server.stderr_text(run)
                      for run in range(1, remote.server.runs + 1))
        records, _ = audit_export(remote.server)
        audit = "\n".join(map(str, records))
        for needle in needles:
            assert needle not in log, (remote.name, needle)
            assert needle not in audit, (remote.name, needle)
        for path in all_files(remote.server.data_dir):
            with open(path, "rb") as f:
                content = f.read()
            for needle in needles:
                assert needle.encode() not in content, (remote.name, path,
                                                        needle)
    # The gateway still answers with all of it.
    for key, (body, meta) in objects.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == body
        assert got["Metadata"]["owner"] == f"{meta}-METAMARK{tag}"

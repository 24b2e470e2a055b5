"""Placement policies (issue 13): the seed-001 rule at start-up and in
`kura check`, configuration errors refused with a clear message, the
policy a bucket chooses at CreateBucket (LocationConstraint) and
GetBucketLocation, dedicated backends, `kura bucket locate` and backend
health in `kura status`.

The backends are those of placement_helpers.py (tokyo fs JP, osaka remote
JP, virginia remote US, vault fs JP dedicated to tenant "acme"); the
module's gateway keeps its keys in a SoftHSM2 token labelled JP.  Servers
that must refuse to start get a fresh data directory, fs paths of their
own and their own key prefix on the remotes.
"""

import os
import re

import pytest
from botocore.exceptions import ClientError

from conftest import running_server, write_config
from helpers import eventually
from placement_helpers import (backends, check_config, gateway_config,
                               hsm_keys, local_keys, replicas,
                               standard_gateway, start_refused, unique,
                               wait_replicated)
from providers import PyKMIP, SoftHSM

ALL3 = ("tokyo", "osaka", "virginia")
DR = "jp-with-us-dr"            # a policy with a copy in the US
DR_POLICY = {DR: {"sync": ["tokyo"], "async": ["virginia"],
                  "jurisdictions": ["JP", "US"]}}


@pytest.fixture(scope="module")
def bk(tmp_path_factory):
    """The backends alone (the rule tests start gateways of their own)."""
    with backends(tmp_path_factory.mktemp("placement-backends")) as b:
        yield b


@pytest.fixture(scope="module")
def topo(bk, tmp_path_factory):
    with standard_gateway(tmp_path_factory.mktemp("placement"), bk) as t:
        yield t


def own_config(bk, workdir, keys, placements=None, default=DR, home="JP",
               names=ALL3, overrides=None):
    """A configuration for a second gateway: its own tokyo directory, its
    own prefix on the remotes."""
    tokyo = workdir / "tokyo-own"
    tokyo.mkdir(mode=0o700, parents=True, exist_ok=True)
    prefix = f"own-{os.urandom(3).hex()}/"
    ov = {"tokyo": {"path": str(tokyo)}, "osaka": {"prefix": prefix},
          "virginia": {"prefix": prefix}}
    for name, keys_ in (overrides or {}).items():
        ov.setdefault(name, {}).update(keys_)
    return gateway_config(bk, keys, DR_POLICY if placements is None
                          else placements, default, home=home,
                          backend_names=names, overrides=ov), prefix


def one_line_names(text, *words):
    """Some line of text names every word."""
    lines = [line for line in text.splitlines()
             if all(w in line for w in words)]
    assert lines, f"no line naming {words}:\n{text}"
    return lines


# -- 5. the seed-001 rule -------------------------------------------------------------

def _local(hsm):
    return local_keys("JP")


REFUSED = {
    # name: ([keys] text from the token, placements, default, words)
    "local-keystore": (_local, None, DR, ("seed-001", DR, "virginia")),
    "hsm-labelled-us": (lambda h: hsm_keys(h, "US"), None, DR,
                        ("seed-001", DR, "virginia")),
    "hsm-unlabelled": (lambda h: hsm_keys(h, None), None, DR,
                       ("seed-001", DR, "virginia")),
    "not-the-default": (_local, {"home": {"sync": ["tokyo"]},
                                 **DR_POLICY}, "home",
                        ("seed-001", DR, "virginia")),
    "foreign-forbidden": (lambda h: hsm_keys(h, "JP"),
                          {DR: {**DR_POLICY[DR], "foreign": "forbid"}}, DR,
                          (DR, "virginia")),
    "jurisdictions-jp-only": (lambda h: hsm_keys(h, "JP"),
                              {DR: {**DR_POLICY[DR],
                                    "jurisdictions": ["JP"]}}, DR,
                              (DR, "virginia", "US")),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_seed001_refusals(bk, tmp_path, case):
    keys_of, placements, default, words = REFUSED[case]
    hsm = SoftHSM(tmp_path)
    text, _ = own_config(bk, tmp_path, keys_of(hsm), placements, default)
    r = start_refused(tmp_path / "srv", text, env=hsm.env)
    assert r.returncode != 0, r.text
    one_line_names(r.stderr, *words)
    c = check_config(tmp_path / "chk", text, env=hsm.env)
    assert c.returncode == 1, c.stdout + c.stderr
    one_line_names(c.stdout + c.stderr, *words)


def allowed_with(bk, tmp_path, keys, env):
    """The DR policy is accepted by `kura check` and at start-up, and the
    foreign copy is made."""
    text, prefix = own_config(bk, tmp_path, keys)
    c = check_config(tmp_path / "chk", text, env=env)
    assert c.returncode == 0, c.stdout + c.stderr
    assert (f"policy {DR}: sync=tokyo async=virginia "
            f"jurisdictions=JP,US (default)") in c.stdout, c.stdout
    cfg = write_config(tmp_path, text, "allowed.ini")
    with running_server(tmp_path / "gw", config_file=cfg, env=env) as srv:
        s3 = srv.root_client()
        s3.create_bucket(Bucket="abroad")
        s3.put_object(Bucket="abroad", Key="k", Body=b"copy in the US")
        assert s3.get_object(Bucket="abroad", Key="k")["Body"].read() == \
            b"copy in the US"

        def copied():
            assert [n for n in bk.virginia.names() if n.startswith(prefix)]
        eventually(copied, timeout=30, interval=0.5)


def test_seed001_allows_foreign_copy_with_keys_in_home_hsm(bk, tmp_path):
    hsm = SoftHSM(tmp_path)
    allowed_with(bk, tmp_path, hsm_keys(hsm, "JP"), hsm.env)


def test_seed001_with_kmip(bk, tmp_path):
    peer = PyKMIP(tmp_path)
    try:
        text, _ = own_config(bk, tmp_path / "us", peer.config() +
                             "jurisdiction = US\n")
        r = start_refused(tmp_path / "us-srv", text)
        assert r.returncode != 0
        one_line_names(r.stderr, "seed-001", DR, "virginia")
        allowed_with(bk, tmp_path / "jp", peer.config() +
                     "jurisdiction = JP\n", {})
    finally:
        peer.close()


def test_home_jurisdiction_decides_what_is_foreign(bk, tmp_path):
    """With home US a copy in Japan is what the rule refuses: under the
    local keystore even a Japanese backend no policy names is (a replica
    row could still send a copy there); with the keys in a provider in
    the US, a US-only policy is listed as the default."""
    text, _ = own_config(bk, tmp_path, local_keys("US"), home="US",
                         placements={"us-only": {"sync": ["virginia"],
                                                 "jurisdictions": ["US"]}},
                         default="us-only")
    c = check_config(tmp_path / "chk", text)
    assert c.returncode == 1, c.stdout + c.stderr
    one_line_names(c.stdout, "seed-001", "tokyo", "outside home "
                   "jurisdiction US")
    text = text.replace("provider = local", "provider = kmip", 1)
    c = check_config(tmp_path / "chk2", text)
    # (Whether a line without async copies says "async=" is not fixed.)
    assert re.search(r"policy us-only: sync=virginia( async=\S*)? "
                     r"jurisdictions=US \(default\)", c.stdout), c.stdout
    text, _ = own_config(bk, tmp_path, local_keys("US"), home="US",
                         placements={"to-japan": {"sync": ["virginia"],
                                                  "async": ["tokyo"],
                                                  "jurisdictions":
                                                  ["US", "JP"]}},
                         default="to-japan")
    r = start_refused(tmp_path / "srv", text)
    assert r.returncode != 0
    one_line_names(r.stderr, "seed-001", "to-japan", "tokyo")


# -- 10. configuration errors ----------------------------------------------------------

def _loose_secret(bk, workdir):
    p = workdir / "loose.secret"
    p.write_text(bk.osaka.secret_file.read_text())
    os.chmod(p, 0o644)
    return str(p)


# name: (placements, default, backend names, overrides(bk, workdir), words)
CONFIG_ERRORS = {
    "unknown-backend": ({"p": {"sync": ["tokyo", "nowhere"]}}, "p",
                        ("tokyo",), None, ("nowhere",)),
    "missing-jurisdiction": ({"p": {"sync": ["tokyo"]}}, "p", ("tokyo",),
                             lambda bk, w: {"tokyo": {"jurisdiction": None}},
                             ("tokyo", "jurisdiction")),
    "bad-jurisdiction": ({"p": {"sync": ["tokyo"]}}, "p", ("tokyo",),
                         lambda bk, w: {"tokyo": {"jurisdiction": "JPN"}},
                         ("tokyo", "JPN")),
    "secret-file-0644": ({"p": {"sync": ["tokyo", "osaka"]}}, "p",
                         ("tokyo", "osaka"),
                         lambda bk, w: {"osaka": {
                             "secret_key_file": _loose_secret(bk, w)}},
                         ("loose.secret",)),
    "http-not-loopback": ({"p": {"sync": ["tokyo", "osaka"]}}, "p",
                          ("tokyo", "osaka"),
                          lambda bk, w: {"osaka": {
                              "endpoint": "http://192.0.2.1:9"}},
                          ("osaka", "http")),
    "no-sync": ({"no-sync-policy": {"async": ["osaka"]}}, "no-sync-policy",
                ("tokyo", "osaka"), None, ("no-sync-policy", "sync")),
    "unknown-default": ({"p": {"sync": ["tokyo"]}}, "nowhere-policy",
                        ("tokyo",), None, ("nowhere-policy",)),
    "dedicated-in-default": ({"p": {"sync": ["vault"]}}, "p", ("vault",),
                             None, ("vault", "dedicated")),
}


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_configuration_errors_refused(bk, tmp_path, case):
    placements, default, names, overrides, words = CONFIG_ERRORS[case]
    ov = overrides(bk, tmp_path) if overrides else {}
    if "vault" in names:
        own = tmp_path / "vault-own"
        own.mkdir(mode=0o700)
        ov.setdefault("vault", {})["path"] = str(own)
    text, _ = own_config(bk, tmp_path, local_keys("JP"), placements, default,
                         names=names, overrides=ov)
    r = start_refused(tmp_path / "srv", text)
    assert r.returncode != 0, r.text
    one_line_names(r.stderr, *words)
    c = check_config(tmp_path / "chk", text)
    assert c.returncode != 0, c.stdout + c.stderr
    one_line_names(c.stdout + c.stderr, *words)


# -- 6. CreateBucket LocationConstraint -------------------------------------------------

def create_in(client, bucket, policy):
    return client.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": policy})


def location_of(client, bucket):
    return client.get_bucket_location(Bucket=bucket)["LocationConstraint"]


def backends_of(gw, bucket, key):
    return {name for _, _, reps in replicas(gw.locate(bucket, key))
            for name in reps}


def test_location_constraint_chooses_the_policy(topo):
    bk, _, gw = topo
    s3 = gw.client()
    japan, only, dflt, region = (unique(p) for p in
                                 ("japan", "tonly", "dflt", "region"))
    create_in(s3, japan, "japan")
    create_in(s3, only, "tokyo-only")
    s3.create_bucket(Bucket=dflt)
    create_in(s3, region, "us-east-1")          # the server's region
    assert location_of(s3, japan) == "japan"
    assert location_of(s3, only) == "tokyo-only"
    assert location_of(s3, dflt) == "jp2us"
    assert location_of(s3, region) == "jp2us"
    for b in (japan, only, dflt, region):
        s3.put_object(Bucket=b, Key="k", Body=b"where am I")
    assert gw.bucket_locate(japan)["placement"] == "japan"
    assert gw.locate(japan, "k")["placement"] == "japan"
    assert backends_of(gw, japan, "k") == {"tokyo", "osaka"}
    assert backends_of(gw, only, "k") == {"tokyo"}
    [(_, blob, _)] = replicas(gw.locate(only, "k"))
    assert bk.tokyo.has(blob) and not bk.osaka.has(blob)
    wait_replicated(gw, dflt, ["k"])
    assert backends_of(gw, dflt, "k") == set(ALL3)
    assert gw.bucket_locate(region)["placement"] == "jp2us"

    with pytest.raises(ClientError) as e:
        create_in(s3, unique("mars"), "mars-base")
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) \
        == ("InvalidLocationConstraint", 400), err


def test_dedicated_backend_only_for_its_tenant(topo):
    bk, _, gw = topo
    other = gw.new_tenant()
    for client in (other, gw.client()):
        with pytest.raises(ClientError) as e:
            create_in(client, unique("notmine"), "acme-vault")
        err = e.value.response
        assert (err["Error"]["Code"],
                err["ResponseMetadata"]["HTTPStatusCode"]) == \
            ("InvalidLocationConstraint", 400), err
    bucket = unique("acme")
    create_in(gw.acme, bucket, "acme-vault")
    assert location_of(gw.acme, bucket) == "acme-vault"
    gw.acme.put_object(Bucket=bucket, Key="k", Body=b"acme only")
    assert gw.acme.get_object(Bucket=bucket, Key="k")["Body"].read() == \
        b"acme only"
    [(_, blob, reps)] = replicas(gw.locate(bucket, "k"))
    assert set(reps) == {"vault"} and bk.vault.has(blob)
    assert not bk.tokyo.has(blob)
    # The other tenant's data never lands on the dedicated backend.
    before = set(bk.vault.blob_files())
    b2 = unique("other")
    other.create_bucket(Bucket=b2)
    other.put_object(Bucket=b2, Key="k", Body=b"not acme")
    assert set(bk.vault.blob_files()) == before


# -- 9. bucket locate and status ----------------------------------------------------------

def test_bucket_locate_summarises_by_backend_and_jurisdiction(topo):
    bk, _, gw = topo
    s3 = gw.client()
    bucket = unique("summary")
    s3.create_bucket(Bucket=bucket)
    sizes = {"a": 10, "b": 1000, "c": 100 * 1024, "d": 1024 * 1024}
    for k, n in sizes.items():
        s3.put_object(Bucket=bucket, Key=k, Body=os.urandom(n))
    locs = wait_replicated(gw, bucket, sizes)
    n_blobs = sum(len(loc["parts"]) for loc in locs.values())
    plain = sum(sizes.values())

    doc = gw.bucket_locate(bucket)
    assert (doc["bucket"], doc["placement"]) == (bucket, "jp2us"), doc
    by = {e["backend"]: e for e in doc["backends"]}
    assert set(by) == set(ALL3), doc
    for name, e in by.items():
        b = bk[name]
        assert (e["site"], e["region"], e["jurisdiction"]) == \
            (b.site, b.region, b.jurisdiction), e
        assert e["replicas"] == n_blobs, e
        st = e["states"]
        assert st.get("stored", 0) + st.get("verified", 0) == n_blobs, e
        assert st.get("pending", 0) == 0 and st.get("failed", 0) == 0, e
        assert e["bytes"] >= plain, e
    assert by["tokyo"]["bytes"] == by["osaka"]["bytes"] == \
        by["virginia"]["bytes"], by
    assert doc["jurisdictions"] == {
        "JP": {"replicas": 2 * n_blobs,
               "bytes": by["tokyo"]["bytes"] + by["osaka"]["bytes"]},
        "US": {"replicas": n_blobs, "bytes": by["virginia"]["bytes"]},
    }, doc

    # One more object: one more replica on each backend.
    s3.put_object(Bucket=bucket, Key="e", Body=os.urandom(5000))
    wait_replicated(gw, bucket, ["e"])
    doc2 = gw.bucket_locate(bucket)
    by2 = {e["backend"]: e for e in doc2["backends"]}
    for name in ALL3:
        assert by2[name]["replicas"] == n_blobs + 1, by2[name]
        assert by2[name]["bytes"] >= by[name]["bytes"] + 5000, by2[name]
    # A policy without the US: no US line.
    jb = unique("jponly")
    create_in(s3, jb, "japan")
    s3.put_object(Bucket=jb, Key="k", Body=b"home")
    jdoc = gw.bucket_locate(jb)
    assert {e["backend"] for e in jdoc["backends"]} == {"tokyo", "osaka"}
    assert set(jdoc["jurisdictions"]) == {"JP"}, jdoc


def test_locate_names_the_version(topo):
    bk, _, gw = topo
    s3 = gw.client()
    bucket = unique("versions")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket,
                             VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two!")["VersionId"]
    cur = gw.locate(bucket, "k")
    old = gw.locate(bucket, "k", version=v1)
    assert cur["version_id"] == v2 and old["version_id"] == v1, (cur, old)
    assert len(old["parts"]) == len(cur["parts"]) == 1, (old, cur)
    assert old["parts"][0]["bytes"] < cur["parts"][0]["bytes"], (old, cur)
    assert {p["blob_id"] for p in old["parts"]}.isdisjoint(
        p["blob_id"] for p in cur["parts"])
    for doc in (cur, old):
        for _, blob, reps in replicas(doc):
            assert {"tokyo", "osaka"} <= set(reps), doc
            assert bk.tokyo.has(blob) and bk.osaka.has(blob)
    # An unversioned bucket's object is the null version.
    plain = unique("plain")
    s3.create_bucket(Bucket=plain)
    s3.put_object(Bucket=plain, Key="k", Body=b"null version")
    doc = gw.locate(plain, "k")
    assert doc["version_id"] is None, doc
    assert [p["blob_id"] for p in
            gw.locate(plain, "k", version="null")["parts"]] == \
        [p["blob_id"] for p in doc["parts"]]
    r = gw.cli("object", "locate", plain, "missing-key", "--json")
    assert r.returncode != 0, r.stdout


def test_status_shows_backend_health(topo):
    bk, _, gw = topo

    def all_reachable():
        st = gw.backend_status()
        for name in ("tokyo", "osaka", "virginia", "vault"):
            assert st[name]["reachable"] is True, st[name]
        return st
    st = eventually(all_reachable, timeout=30, interval=0.5)
    for name in ("tokyo", "osaka", "virginia", "vault"):
        e, b = st[name], bk[name]
        assert (e["type"], e["site"], e["region"], e["jurisdiction"]) == \
            (b.type, b.site, b.region, b.jurisdiction), e
        assert isinstance(e["latency_ms"], (int, float)) and \
            e["latency_ms"] >= 0, e
        assert isinstance(e["queue"], int) and e["queue"] >= 0, e
        assert isinstance(e["lag_seconds"], (int, float)), e

    with bk.osaka.down():
        def osaka_down():
            s = gw.backend_status()
            assert s["osaka"]["reachable"] is False, s["osaka"]
            assert s["virginia"]["reachable"] is True, s["virginia"]
            assert s["tokyo"]["reachable"] is True, s["tokyo"]
        eventually(osaka_down, timeout=30, interval=0.5)
    eventually(all_reachable, timeout=30, interval=0.5)

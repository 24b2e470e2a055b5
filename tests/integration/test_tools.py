"""Real S3 tools end to end against a running kura: the aws CLI's
`s3 sync`, rclone, s3cmd, boto3's TransferManager, and s3fs (a FUSE mount,
where FUSE works).  Every transfer is checked byte for byte with hashes.
Also: requests for features kura does not build answer 501 NotImplemented
in S3 XML."""

import hashlib
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig

from tools_helpers import (MiB, expect_error, file_sha256, multipart_etag,
                           raw_request, tree_hashes)

TOOL_TIMEOUT = 300


def tool_env(home):
    """A clean environment for a third-party tool: its own HOME, no AWS
    variables of the developer, UTF-8 locale."""
    Path(home).mkdir(parents=True, exist_ok=True)
    return {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def run(cmd, env, timeout=TOOL_TIMEOUT, check=True, cwd=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                       timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n"
                             f"--- stdout ---\n{r.stdout[-4000:]}\n"
                             f"--- stderr ---\n{r.stderr[-4000:]}")
    return r


def require_tool(name):
    path = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package listed in "
                    f"scripts/packages.txt; run scripts/setup.sh)")
    return path


def all_keys(s3, bucket, prefix=""):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


# -- test trees ----------------------------------------------------------------------------

NAME_STYLES = ["file {:03d}.txt", "Datei ü {:03d}", "日本語 {:03d}.bin", "plus+{:03d}",
               "paren({:03d})", "dash-{:03d}.dat", "émoji 🎉 {:03d}", "{:03d}"]
DIRS = ["", "top/", "top/nested/", "top/nested/deeper/", "ünï dir/", "a b/c d/",
        "x/y/z/w/"]


def make_tree(root, count, big_sizes, seed):
    """count files under root: three empty files, files of big_sizes, a
    few of 1-3 MiB, the rest up to 64 KiB; names with spaces and unicode,
    nested directories.  Returns {relative path: size}."""
    rng = random.Random(seed)
    root = Path(root)
    sizes = {}
    for i in range(count):
        rel = DIRS[i % len(DIRS)] + NAME_STYLES[(i // len(DIRS)) % len(NAME_STYLES)].format(i)
        if i < 3:
            size = 0
        elif i - 3 < len(big_sizes):
            size = big_sizes[i - 3]
        elif i % 17 == 0:
            size = rng.randint(1 * MiB, 3 * MiB)
        else:
            size = rng.randint(1, 64 * 1024)
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(size))
        sizes[rel] = size
    return sizes


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory):
    """~200 files, 0 bytes to 20 MiB, four above the aws CLI's 8 MiB
    multipart threshold."""
    root = tmp_path_factory.mktemp("tree-big") / "src"
    sizes = make_tree(root, 200, [9 * MiB, 12 * MiB + 7, 17 * MiB, 20 * MiB], seed=1)
    assert len(sizes) == 200
    return root, sizes


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    """40 files, one of 12 MiB (multipart for a 5 MiB chunk size)."""
    root = tmp_path_factory.mktemp("tree-small") / "src"
    sizes = make_tree(root, 40, [12 * MiB + 3], seed=2)
    return root, sizes


# -- aws s3 sync ----------------------------------------------------------------------------

def test_aws_s3_sync_round_trip(kura_server_module, s3_module, aws_module, big_tree,
                                tmp_path):
    src, sizes = big_tree
    s3 = s3_module
    s3.create_bucket(Bucket="sync-bucket")
    dest = "s3://sync-bucket/tree/"
    r = aws_module("s3", "sync", src, dest, "--no-progress", timeout=TOOL_TIMEOUT, check=True)
    uploads = [ln for ln in r.stdout.splitlines() if ln.startswith("upload:")]
    assert len(uploads) == 200, r.stdout[-3000:]
    keys = all_keys(s3, "sync-bucket")
    assert sorted(keys) == sorted("tree/" + rel for rel in sizes)
    # Files above 8 MiB went up as multipart uploads, with S3's ETag.
    for rel, size in sizes.items():
        if size > 8 * MiB:
            data = (src / rel).read_bytes()
            chunks = [data[i:i + 8 * MiB] for i in range(0, len(data), 8 * MiB)]
            h = s3.head_object(Bucket="sync-bucket", Key="tree/" + rel)
            assert h["ETag"] == f'"{multipart_etag(chunks)}"', rel
            assert h["ContentLength"] == size

    # A second sync has nothing to do.
    r = aws_module("s3", "sync", src, dest, "--no-progress", timeout=TOOL_TIMEOUT, check=True)
    assert "upload:" not in r.stdout, r.stdout[-3000:]

    # Down again, byte-identical.
    down = tmp_path / "down"
    aws_module("s3", "sync", dest, down, "--no-progress", timeout=TOOL_TIMEOUT, check=True)
    assert tree_hashes(down) == tree_hashes(src)

    r = aws_module("s3", "ls", "--recursive", "s3://sync-bucket/", check=True)
    assert len([ln for ln in r.stdout.splitlines() if ln.strip()]) == 200

    # Server-side copies: the 20 MiB file goes through UploadPartCopy with
    # copy-source ranges, the small ones through CopyObject.
    sub = "x/y/z/w/"
    in_sub = {rel: size for rel, size in sizes.items() if rel.startswith(sub)}
    assert max(in_sub.values()) == 20 * MiB
    aws_module("s3", "cp", "--recursive", "--no-progress", f"{dest}{sub}",
               f"s3://sync-bucket/copied/{sub}", timeout=TOOL_TIMEOUT, check=True)
    down2 = tmp_path / "down2"
    aws_module("s3", "sync", "--no-progress", f"s3://sync-bucket/copied/{sub}", down2,
               timeout=TOOL_TIMEOUT, check=True)
    assert tree_hashes(down2) == {rel[len(sub):]: h for rel, h in tree_hashes(src).items()
                                  if rel.startswith(sub)}
    big = next(rel for rel, size in in_sub.items() if size == 20 * MiB)
    assert s3.head_object(Bucket="sync-bucket", Key="copied/" + big)["ETag"].endswith('-3"')
    # mv: a copy, then a delete of the source.
    aws_module("s3", "mv", "--no-progress", f"s3://sync-bucket/copied/{big}",
               "s3://sync-bucket/moved.bin", check=True)
    expect_error(s3.head_object, "404", 404, Bucket="sync-bucket", Key="copied/" + big)
    assert s3.head_object(Bucket="sync-bucket", Key="moved.bin")["ContentLength"] == 20 * MiB
    ncopies = len(in_sub)

    r = aws_module("s3", "rm", "--recursive", "s3://sync-bucket/", timeout=TOOL_TIMEOUT,
                   check=True)
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("delete:")]) == \
        200 + ncopies
    assert all_keys(s3, "sync-bucket") == []
    s3.delete_bucket(Bucket="sync-bucket")


# -- rclone ----------------------------------------------------------------------------------

def rclone_setup(server, tmp_path):
    require_tool("rclone")
    conf = tmp_path / "rclone.conf"
    conf.write_text(
        "[kura]\n"
        "type = s3\n"
        "provider = Other\n"
        "env_auth = false\n"
        f"access_key_id = {server.access_key}\n"
        f"secret_access_key = {server.secret_key}\n"
        f"endpoint = {server.endpoint}\n"
        "region = us-east-1\n"
        "force_path_style = true\n")
    env = tool_env(tmp_path / "rclone-home")

    def rclone(*args, check=True):
        return run(["rclone", "--config", conf, "--retries", "1",
                    "--low-level-retries", "1", *args], env, check=check)
    return rclone


def test_rclone_copy_check_lsf_delete(kura_server_module, s3_module, small_tree, tmp_path):
    rclone = rclone_setup(kura_server_module, tmp_path)
    src, sizes = small_tree
    rclone("mkdir", "kura:rclone-bucket")
    rclone("copy", src, "kura:rclone-bucket/tree", "--s3-upload-cutoff", "5M",
           "--s3-chunk-size", "5M", "--transfers", "4")
    keys = all_keys(s3_module, "rclone-bucket")
    assert sorted(keys) == sorted("tree/" + rel for rel in sizes)
    big = next(rel for rel, size in sizes.items() if size > 5 * MiB)
    assert s3_module.head_object(Bucket="rclone-bucket", Key="tree/" + big)["ETag"].endswith(
        '-3"'), "rclone's 12 MiB upload was not multipart"
    # Sizes and hashes, then bytes.
    r = rclone("check", src, "kura:rclone-bucket/tree")
    assert "0 differences found" in r.stderr, r.stderr
    assert "hashes could not be checked" not in r.stderr, r.stderr
    assert f"{len(sizes)} matching files" in r.stderr, r.stderr
    rclone("check", "--download", src, "kura:rclone-bucket/tree")
    r = rclone("lsf", "-R", "--files-only", "kura:rclone-bucket/tree")
    assert sorted(r.stdout.splitlines()) == sorted(sizes)
    r = rclone("md5sum", "kura:rclone-bucket/tree")
    remote_md5 = dict(reversed(ln.split("  ", 1)) for ln in r.stdout.splitlines())
    assert remote_md5 == {rel: hashlib.md5((src / rel).read_bytes()).hexdigest()
                          for rel in sizes}
    r = rclone("size", "--json", "kura:rclone-bucket/tree")
    got = json.loads(r.stdout)
    assert (got["count"], got["bytes"]) == (len(sizes), sum(sizes.values()))
    rclone("moveto", f"kura:rclone-bucket/tree/{big}", "kura:rclone-bucket/moved.bin")
    expect_error(s3_module.head_object, "404", 404, Bucket="rclone-bucket", Key="tree/" + big)
    rclone("moveto", "kura:rclone-bucket/moved.bin", f"kura:rclone-bucket/tree/{big}")
    down = tmp_path / "down"
    rclone("copy", "kura:rclone-bucket/tree", down)
    assert tree_hashes(down) == tree_hashes(src)
    # check notices a difference.
    (down / big).write_bytes(b"changed")
    assert rclone("check", down, "kura:rclone-bucket/tree", check=False).returncode != 0
    rclone("delete", "kura:rclone-bucket/tree")
    assert rclone("lsf", "-R", "--files-only", "kura:rclone-bucket").stdout == ""
    assert all_keys(s3_module, "rclone-bucket") == []


# -- s3cmd ------------------------------------------------------------------------------------

def s3cmd_setup(server, tmp_path):
    require_tool("s3cmd")
    conf = tmp_path / "s3cfg"
    hostport = f"{server.host}:{server.port}"
    conf.write_text(
        "[default]\n"
        f"access_key = {server.access_key}\n"
        f"secret_key = {server.secret_key}\n"
        f"host_base = {hostport}\n"
        f"host_bucket = {hostport}\n"
        "use_https = False\n"
        "signature_v2 = False\n"
        "bucket_location = us-east-1\n"
        "check_ssl_certificate = False\n"
        "progress_meter = False\n")
    env = tool_env(tmp_path / "s3cmd-home")

    def s3cmd(*args, check=True):
        return run(["s3cmd", "-c", conf, *args], env, check=check)
    return s3cmd


def test_s3cmd_put_get_ls_del(kura_server_module, s3_module, tmp_path):
    s3cmd = s3cmd_setup(kura_server_module, tmp_path)
    s3cmd("mb", "s3://s3cmd-bucket")
    files = {}
    rng = random.Random(3)
    for name, size in (("small.txt", 100), ("empty", 0), ("with space ü.bin", 70000),
                       ("dir/nested.dat", 3 * MiB)):
        p = tmp_path / "up" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(size))
        files[name] = p
        s3cmd("put", p, f"s3://s3cmd-bucket/{name}")
    big = tmp_path / "up" / "big.bin"
    big.write_bytes(rng.randbytes(12 * MiB + 1))
    files["big.bin"] = big
    s3cmd("put", "--multipart-chunk-size-mb=5", big, "s3://s3cmd-bucket/big.bin")
    data = big.read_bytes()
    h = s3_module.head_object(Bucket="s3cmd-bucket", Key="big.bin")
    chunks = [data[i:i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    assert h["ETag"] == f'"{multipart_etag(chunks)}"'

    r = s3cmd("ls", "--recursive", "s3://s3cmd-bucket")
    listed = sorted(ln.split("s3://s3cmd-bucket/", 1)[1] for ln in r.stdout.splitlines()
                    if "s3://s3cmd-bucket/" in ln)
    assert listed == sorted(files)
    r = s3cmd("ls", "s3://s3cmd-bucket/")
    assert "DIR" in r.stdout and "s3://s3cmd-bucket/dir/" in r.stdout

    for name, p in files.items():
        out = tmp_path / "down" / name
        out.parent.mkdir(parents=True, exist_ok=True)
        s3cmd("get", "--force", f"s3://s3cmd-bucket/{name}", out)
        assert file_sha256(out) == file_sha256(p), name

    # info reads HEAD and the ACL (and survives the 501s for policy/CORS).
    r = s3cmd("info", "s3://s3cmd-bucket/small.txt")
    assert "FULL_CONTROL" in r.stdout and "File size: 100" in r.stdout, r.stdout
    s3cmd("setacl", "--acl-private", "s3://s3cmd-bucket/small.txt")
    r = s3cmd("setacl", "--acl-public", "s3://s3cmd-bucket/small.txt", check=False)
    assert r.returncode != 0 and "AccessDenied" in r.stderr, r.stderr
    # Server-side copy, and modify (a copy onto itself with REPLACE).
    s3cmd("cp", "s3://s3cmd-bucket/small.txt", "s3://s3cmd-bucket/copy.txt")
    s3cmd("modify", "--add-header=x-amz-meta-color:green", "s3://s3cmd-bucket/copy.txt")
    g = s3_module.get_object(Bucket="s3cmd-bucket", Key="copy.txt")
    assert g["Metadata"].get("color") == "green"
    assert g["Body"].read() == files["small.txt"].read_bytes()
    files["copy.txt"] = files["small.txt"]
    r = s3cmd("multipart", "s3://s3cmd-bucket")
    assert "Initiated" in r.stdout

    for name in files:
        s3cmd("del", f"s3://s3cmd-bucket/{name}")
    assert all_keys(s3_module, "s3cmd-bucket") == []
    s3cmd("rb", "s3://s3cmd-bucket")
    assert "s3cmd-bucket" not in [b["Name"] for b in s3_module.list_buckets()["Buckets"]]


# -- boto3 TransferManager -----------------------------------------------------------------

def test_boto3_transfer_manager_100mib(kura_server_module, tmp_path):
    s3 = kura_server_module.client(max_pool_connections=16)
    s3.create_bucket(Bucket="transfer")
    src = tmp_path / "big.bin"
    rng = random.Random(4)
    with open(src, "wb") as f:
        for _ in range(10):
            f.write(rng.randbytes(10 * MiB))
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                         max_concurrency=8, use_threads=True)
    s3.upload_file(str(src), "transfer", "big.bin", Config=cfg)
    data = src.read_bytes()
    chunks = [data[i:i + 8 * MiB] for i in range(0, len(data), 8 * MiB)]
    h = s3.head_object(Bucket="transfer", Key="big.bin")
    assert h["ContentLength"] == 100 * MiB
    assert h["ETag"] == f'"{multipart_etag(chunks)}"'
    down = tmp_path / "down.bin"
    s3.download_file("transfer", "big.bin", str(down), Config=cfg)
    assert file_sha256(down) == file_sha256(src)
    s3.delete_object(Bucket="transfer", Key="big.bin")


# -- s3fs ----------------------------------------------------------------------------------------

def fuse_unavailable_reason():
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist (no FUSE in this environment)"
    if shutil.which("s3fs", path="/usr/bin:/bin") is None:
        return "s3fs is not installed (Debian package s3fs; run scripts/setup.sh)"
    if shutil.which("fusermount3", path="/usr/bin:/bin") is None and \
            shutil.which("fusermount", path="/usr/bin:/bin") is None:
        return "fusermount is not installed (Debian package fuse3)"
    return None


def unmount(mnt):
    for tool in ("fusermount3", "fusermount"):
        if shutil.which(tool, path="/usr/bin:/bin"):
            subprocess.run([tool, "-u", str(mnt)], capture_output=True, timeout=30)
            break
    deadline = time.monotonic() + 10
    while os.path.ismount(mnt) and time.monotonic() < deadline:
        time.sleep(0.1)


def test_s3fs_mount(kura_server_module, s3_module, tmp_path):
    why = fuse_unavailable_reason()
    if why:
        pytest.skip(why)
    s3 = s3_module
    s3.create_bucket(Bucket="fuse-bucket")
    s3.put_object(Bucket="fuse-bucket", Key="from-boto3.txt", Body=b"written by boto3\n")
    passwd = tmp_path / "passwd"
    passwd.write_text(f"{kura_server_module.access_key}:{kura_server_module.secret_key}\n")
    passwd.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = tool_env(tmp_path / "s3fs-home")
    r = subprocess.run(
        ["s3fs", "fuse-bucket", str(mnt), "-o", f"passwd_file={passwd}",
         "-o", f"url={kura_server_module.endpoint}", "-o", "use_path_request_style",
         "-o", "endpoint=us-east-1", "-o", "multipart_size=5", "-o", "retries=1",
         "-o", "stat_cache_expire=1"],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while r.returncode == 0 and not os.path.ismount(mnt) and time.monotonic() < deadline:
        time.sleep(0.1)
    if r.returncode != 0 or not os.path.ismount(mnt):
        unmount(mnt)
        pytest.skip(f"s3fs could not mount here (FUSE not permitted?): exit "
                    f"{r.returncode}: {r.stderr.strip()[-500:]}")
    try:
        # Read what boto3 wrote.
        assert (mnt / "from-boto3.txt").read_bytes() == b"written by boto3\n"
        # Write through the mount; check through boto3.
        rng = random.Random(5)
        files = {"hello.txt": b"hello through fuse\n",
                 "sub dir/ü 日本.bin": rng.randbytes(300000),
                 "deep/er/big.bin": rng.randbytes(12 * MiB + 5),
                 "empty": b""}
        for name, data in files.items():
            p = mnt / name
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        for name, data in files.items():
            got = s3.get_object(Bucket="fuse-bucket", Key=name)["Body"].read()
            assert got == data, name
            assert (mnt / name).read_bytes() == data, name
        assert sorted(os.listdir(mnt)) == sorted(
            ["from-boto3.txt", "hello.txt", "sub dir", "deep", "empty"])
        # Rename (a server-side copy and a delete) and remove.
        os.rename(mnt / "hello.txt", mnt / "renamed.txt")
        assert s3.get_object(Bucket="fuse-bucket", Key="renamed.txt")["Body"].read() == \
            files["hello.txt"]
        expect_error(s3.head_object, "404", 404, Bucket="fuse-bucket", Key="hello.txt")
        os.unlink(mnt / "deep/er/big.bin")
        expect_error(s3.head_object, "404", 404, Bucket="fuse-bucket", Key="deep/er/big.bin")
        # Overwrite in place.
        with open(mnt / "renamed.txt", "ab") as f:
            f.write(b"appended\n")
        assert s3.get_object(Bucket="fuse-bucket", Key="renamed.txt")["Body"].read() == \
            files["hello.txt"] + b"appended\n"
    finally:
        unmount(mnt)
    assert not os.path.ismount(mnt)


# -- the unimplemented surface ---------------------------------------------------------------

# Transitions need placement classes kura does not have yet.
LIFECYCLE = {"Rules": [{"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": ""},
                        "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}]}


@pytest.mark.parametrize("call", [
    lambda s3: s3.put_bucket_policy(Bucket="unimpl", Policy='{"Version":"2012-10-17",'
                                    '"Statement":[]}'),
    lambda s3: s3.put_bucket_lifecycle_configuration(Bucket="unimpl",
                                                     LifecycleConfiguration=LIFECYCLE),
    lambda s3: s3.get_bucket_cors(Bucket="unimpl"),
    lambda s3: s3.get_bucket_replication(Bucket="unimpl"),
    lambda s3: s3.get_bucket_website(Bucket="unimpl"),
    lambda s3: s3.get_bucket_tagging(Bucket="unimpl"),
], ids=["PutBucketPolicy", "PutBucketLifecycleConfiguration-Transition",
        "GetBucketCors", "GetBucketReplication", "GetBucketWebsite",
        "GetBucketTagging"])
def test_unimplemented_answers_501(s3_module, call):
    s3 = s3_module
    if "unimpl" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="unimpl")
        s3.put_object(Bucket="unimpl", Key="obj", Body=b"still here")
    expect_error(call, "NotImplemented", 501, s3)
    # Nothing changed: the object still reads back.
    assert s3.get_object(Bucket="unimpl", Key="obj")["Body"].read() == b"still here"


def test_unimplemented_is_s3_xml(kura_server_module, s3_module):
    s3_module.create_bucket(Bucket="unimpl-raw")
    for q in ("website", "logging", "cors", "replication"):
        r = raw_request(kura_server_module, "GET", "/unimpl-raw", query=q)
        assert r.status == 501, (q, r)
        assert r.headers.get("content-type", "").startswith("application/xml"), q
        root = r.xml()
        assert root.tag == "Error" and root.findtext("Code") == "NotImplemented", q
        assert root.findtext("Message"), q
        assert root.findtext("RequestId") == r.headers.get("x-amz-request-id"), q

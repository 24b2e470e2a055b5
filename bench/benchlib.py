"""What the benchmarks share: starting kura, a boto3 client, presigned-URL
scripts for wrk (a C load generator), reading wrk's figures, a process's
RSS and the disk's rate of single fdatasyncs."""

import os
import re
import socket
import subprocess
import sys
import time

import boto3
from botocore.config import Config

AK, SK = "KBENCHKEYPROVIDERS00", "benchbenchbenchbenchbenchbenchbenchbench"
CONNS = 16

LUA = r"""
local urls = {}
for line in io.lines("%(urls)s") do urls[#urls + 1] = line end
local counter = 0
function setup(thread)
  thread:set("offset", %(offset)s)
  counter = counter + 1
end
local i = 0
function init(args)
  i = tonumber(offset) or 0
  %(body)s
end
function request()
  i = i + 1
  return wrk.format("%(method)s", urls[(i %% #urls) + 1], nil, %(bodyvar)s)
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_kura(kura, data, port, cfg, env=None):
    env = dict(os.environ, KURA_ROOT_ACCESS_KEY=AK, KURA_ROOT_SECRET_KEY=SK,
               **(env or {}))
    p = subprocess.Popen([kura, "server", "--data-dir", str(data), "--listen",
                          f"127.0.0.1:{port}", "--config", str(cfg)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("kura did not start")


def s3_client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=AK,
                        aws_secret_access_key=SK, region_name="us-east-1",
                        config=Config(signature_version="s3v4",
                                      s3={"addressing_style": "path"},
                                      max_pool_connections=16))


def wrk_script(work, s3, endpoint, name, method, bucket, keys, size):
    """A wrk Lua script cycling through presigned URLs of keys; PUTs send
    size bytes."""
    urls = work / f"{name}.urls"
    op = "get_object" if method == "GET" else "put_object"
    with open(urls, "w") as f:
        for k in keys:
            u = s3.generate_presigned_url(op, Params={"Bucket": bucket, "Key": k},
                                          ExpiresIn=3600)
            f.write(u[len(endpoint):] + "\n")
    lua = work / f"{name}.lua"
    lua.write_text(LUA % {
        "urls": urls, "method": method,
        "body": (f'payload = string.rep("x", {size})' if method == "PUT"
                 else "payload = nil"),
        "bodyvar": "payload", "offset": "counter * 7919"})
    return lua


def wrk(script, url, seconds, conns=CONNS):
    """(requests/s, p50 ms, p99 ms, non-2xx responses)"""
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency",
                          "-s", str(script), url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, pct(50), pct(99), int(errors.group(1)) if errors else 0


def rss_kib(pid):
    """Resident set size of pid in KiB (VmRSS), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fdatasync_rate(directory, seconds=1.0):
    """Single 256-byte appends each followed by fdatasync, per second: what
    one flush per request would allow on this disk."""
    path = os.path.join(directory, "sync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    n, end = 0, time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            os.write(fd, b"x" * 256)
            os.fdatasync(fd)
            n += 1
    finally:
        os.close(fd)
        os.unlink(path)
    return n / seconds

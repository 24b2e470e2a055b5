#!/usr/bin/python3
"""Soak: minutes of mixed S3 load at 64 connections against one kura
server, sampling its RSS, to show zero errors and a flat RSS (no leak).

The load is wrk (a C load generator) running a Lua script over presigned
URLs; each connection walks a fixed list of requests whose proportions are
the mix:
    50 %  GET of a 4 KiB object          (ro/s*, never written during the run)
    10 %  GET of a 256 KiB object        (ro/m*: one full segment)
    20 %  PUT of 4 KiB                   (rw/s*: overwrites, and new versions)
     5 %  PUT of 256 KiB + 1 byte        (rw/m*: two segments)
    10 %  DELETE                         (rw/*: delete of an absent key is 204)
     5 %  ListObjectsV2, 100 keys        (prefix ro/)
Every request of this mix succeeds whatever the interleaving (GETs read
keys nothing deletes; DELETE is idempotent), so any non-2xx response or
socket error is a failure.

The RSS slope is a least-squares fit over the samples after warm-up (the
first 20 % of the run, at least 5 s): the allocator's and caches' steady
state is reached there, and a leak shows as a steady rise after it.

Usage: bench/soak.py [--kura build/kura] [--minutes 10] [--conns 64]
Prints a summary and one line:
  BENCH soak minutes=... conns=... rps=... errors=... rss_start_mib=...
        rss_mid_mib=... rss_end_mib=... rss_slope_mib_per_min=...
Exit status 1 when there were errors or the server died.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from benchlib import AK, SK, free_port, rss_kib, s3_client  # noqa: E402

BUCKET = "soak"
SMALL, MEDIUM = 4096, 256 * 1024
N_RO_SMALL, N_RO_MEDIUM, N_RW = 200, 40, 200

# (count in the 100-entry cycle, method, key kind)
MIX = [(50, "GET", "ro/s"), (10, "GET", "ro/m"), (20, "PUT", "rw/s"),
       (5, "PUT", "rw/m"), (10, "DELETE", "rw/"), (5, "LIST", "ro/")]

LUA = r"""
-- Each line: METHOD SIZE PATH  (SIZE: body bytes of a PUT, else 0)
local reqs = {}
for line in io.lines("%(reqs)s") do
  local m, n, p = line:match("^(%%S+) (%%d+) (.+)$")
  reqs[#reqs + 1] = {m, tonumber(n), p}
end
local bodies = {}
local counter = 0
function setup(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end
local i = 0
function init(args)
  i = tonumber(offset) or 0
  bodies[%(small)d] = string.rep("s", %(small)d)
  bodies[%(medium)d] = string.rep("m", %(medium)d)
end
function request()
  i = i + 1
  local r = reqs[(i %% #reqs) + 1]
  return wrk.format(r[1], r[3], nil, r[2] > 0 and bodies[r[2]] or nil)
end
"""


class RssSampler(threading.Thread):
    """Samples (seconds since start, RSS KiB) every `interval` seconds."""

    def __init__(self, pid, interval):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self):
        while not self.stop.is_set():
            v = rss_kib(self.pid)
            if v is None:
                return
            self.samples.append((time.monotonic() - self.t0, v))
            self.stop.wait(self.interval)


def slope_mib_per_min(samples):
    """Least-squares slope of RSS over time, MiB per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    if den == 0:
        return 0.0
    num = sum((t - mt) * (v - mv) for t, v in samples)
    return num / den * 60 / 1024


def prepare(endpoint, work, s3=None):
    """Create the bucket and the read-only objects; write the request list
    and the wrk script; returns the script's path."""
    s3 = s3 or s3_client(endpoint)
    s3.create_bucket(Bucket=BUCKET)
    small, medium = os.urandom(SMALL), os.urandom(MEDIUM)
    for i in range(N_RO_SMALL):
        s3.put_object(Bucket=BUCKET, Key=f"ro/s{i:04d}", Body=small)
    for i in range(N_RO_MEDIUM):
        s3.put_object(Bucket=BUCKET, Key=f"ro/m{i:04d}", Body=medium)

    counters = {}

    def url(method, kind):
        n = counters.get(kind, 0)
        counters[kind] = n + 1
        if method == "LIST":
            u = s3.generate_presigned_url(
                "list_objects_v2", ExpiresIn=7 * 86400,
                Params={"Bucket": BUCKET, "Prefix": kind, "MaxKeys": 100,
                        "StartAfter": f"ro/s{(n * 37) % N_RO_SMALL:04d}"})
            return "GET", 0, u
        if kind == "ro/s":
            key = f"ro/s{(n * 7) % N_RO_SMALL:04d}"
        elif kind == "ro/m":
            key = f"ro/m{(n * 3) % N_RO_MEDIUM:04d}"
        else:
            key = f"rw/{(n * 13) % N_RW:04d}"
        op = {"GET": "get_object", "PUT": "put_object",
              "DELETE": "delete_object"}[method]
        size = {"rw/s": SMALL, "rw/m": MEDIUM + 1}.get(kind, 0) \
            if method == "PUT" else 0
        if kind == "rw/m" or (kind == "rw/" and n % 2):
            key = f"rw/m{(n * 13) % N_RW:04d}"
        u = s3.generate_presigned_url(op, Params={"Bucket": BUCKET, "Key": key},
                                      ExpiresIn=7 * 86400)
        return method, size, u

    # 8 cycles of the 100-entry mix, interleaved so that each stretch of a
    # connection's walk already has the mix's proportions.
    plan = []
    for count, method, kind in MIX:
        plan += [(method, kind)] * count
    order = [plan[(j * 37) % len(plan)] for j in range(len(plan))]
    lines = []
    for _ in range(8):
        for method, kind in order:
            m, size, u = url(method, kind)
            lines.append(f"{m} {size} {u[len(endpoint):]}")
    reqs = Path(work) / "soak.reqs"
    reqs.write_text("\n".join(lines) + "\n")
    lua = Path(work) / "soak.lua"
    lua.write_text(LUA % {"reqs": reqs, "small": SMALL, "medium": MEDIUM + 1})
    return lua


def run_wrk(lua, endpoint, seconds, conns, threads=2):
    """Run wrk; returns a dict of its figures (requests, rps, non2xx,
    socket errors) and its output."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{int(seconds)}s", "--timeout",
         "30s", "--latency", "-s", str(lua), endpoint],
        capture_output=True, text=True, timeout=seconds + 120).stdout
    res = {"output": out}
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    res["socket_errors"] = sum(map(int, m.groups())) if m else 0
    for p in ("50", "99"):
        m = re.search(rf"\s{p}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
        if m:
            v = float(m.group(1))
            res[f"p{p}_ms"] = {"us": v / 1000, "ms": v, "s": v * 1000}[m.group(2)]
    return res


def soak(endpoint, pid, work, seconds, conns, interval, s3=None):
    """Prepare, run the load while sampling RSS; returns a result dict."""
    lua = prepare(endpoint, work, s3)
    sampler = RssSampler(pid, interval)
    sampler.start()
    res = run_wrk(lua, endpoint, seconds, conns)
    sampler.stop.set()
    sampler.join()
    s = sampler.samples
    warm = max(5.0, seconds * 0.2)
    after = [x for x in s if x[0] >= warm] or s
    res["samples"] = s
    res["warm_s"] = warm
    res["rss_start_kib"] = after[0][1] if after else 0
    res["rss_mid_kib"] = after[len(after) // 2][1] if after else 0
    res["rss_end_kib"] = after[-1][1] if after else 0
    res["rss_max_kib"] = max((v for _, v in after), default=0)
    res["slope"] = slope_mib_per_min(after)
    res["errors"] = res["non2xx"] + res["socket_errors"]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kura", default=str(ROOT / "build/kura"))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--interval", type=float, default=5.0,
                    help="seconds between RSS samples")
    a = ap.parse_args()
    seconds = max(10, int(a.minutes * 60))
    with tempfile.TemporaryDirectory(prefix="kura-soak-") as tmp:
        work = Path(tmp)
        cfg = work / "kura.ini"
        cfg.write_text("[server]\nlog_level = warn\n")
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        env = dict(os.environ, KURA_ROOT_ACCESS_KEY=AK, KURA_ROOT_SECRET_KEY=SK)
        errlog = work / "server.stderr"
        with open(errlog, "wb") as fe:
            proc = subprocess.Popen([a.kura, "server", "--data-dir",
                                     str(work / "data"), "--listen",
                                     f"127.0.0.1:{port}", "--config", str(cfg)],
                                    env=env, stdout=subprocess.DEVNULL,
                                    stderr=fe, stdin=subprocess.DEVNULL)
        try:
            for _ in range(400):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            idle = rss_kib(proc.pid)
            res = soak(endpoint, proc.pid, work, seconds, a.conns, a.interval)
            alive = proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        tail = errlog.read_text(errors="replace").splitlines()[-5:]
        # Print before the data directory (tens of thousands of shard
        # directories) is removed, which takes a while.
        return report(a, seconds, res, idle, rc, alive, tail)


def report(a, seconds, res, idle, rc, alive, tail):

    mib = lambda k: k / 1024                                  # noqa: E731
    print(f"soak: {seconds} s at {a.conns} connections, kura {a.kura}")
    print(f"  requests      {res['requests']}  ({res['rps']:.0f}/s, "
          f"p50 {res.get('p50_ms', float('nan')):.2f} ms, "
          f"p99 {res.get('p99_ms', float('nan')):.2f} ms)")
    print(f"  errors        non-2xx {res['non2xx']}, socket {res['socket_errors']}")
    print(f"  RSS idle      {mib(idle or 0):.1f} MiB")
    print(f"  RSS after warm-up ({res['warm_s']:.0f} s): start "
          f"{mib(res['rss_start_kib']):.1f}, mid {mib(res['rss_mid_kib']):.1f}, "
          f"end {mib(res['rss_end_kib']):.1f}, max {mib(res['rss_max_kib']):.1f} MiB; "
          f"slope {res['slope']:+.3f} MiB/min over {len(res['samples'])} samples")
    print(f"  server exit status {rc}")
    if tail:
        print("  server log tail: " + " | ".join(tail))
    print(f"BENCH soak minutes={seconds / 60:g} conns={a.conns} "
          f"rps={res['rps']:.0f} requests={res['requests']} errors={res['errors']} "
          f"rss_idle_mib={mib(idle or 0):.1f} "
          f"rss_start_mib={mib(res['rss_start_kib']):.1f} "
          f"rss_mid_mib={mib(res['rss_mid_kib']):.1f} "
          f"rss_end_mib={mib(res['rss_end_kib']):.1f} "
          f"rss_slope_mib_per_min={res['slope']:.3f} exit={rc}")
    return 0 if res["errors"] == 0 and alive and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

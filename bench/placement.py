#!/usr/bin/python3
"""What placement costs (issue 13): PUT and GET of 4 KiB and 64 MiB objects
through three placements, in the same run, rounds interleaved:

  local        a gateway whose policy is sync = one fs backend (the reference)
  async        sync = the fs backend, async = a remote kura (S3 over http on
               127.0.0.1), [storage] replication_interval = 1: the PUTs are
               measured while replication runs, then the time the queue takes
               to drain is measured
  sync         sync = the fs backend and the remote: a PUT is acknowledged
               only when both copies are durable

The remote is another kura server (its own tenant and bucket "kura-dr", the
secret in a 0600 file, as tests/integration/placement_helpers.py does), on the
same 2 cores and the same disk: its work (decrypting nothing, but encrypting
the ciphertext again, fsyncs, audit log) is part of what a sync copy costs
here.  Every gateway and remote starts from an empty data directory, with
the shipped defaults otherwise (audit log on); keys in the local keystore,
every backend labelled JP (home), so the seed-001 rule allows the policies.

Load: wrk (a C client, 2 threads) over presigned URLs, an untimed 1-second
warm-up before each timed run: 4 KiB GETs and PUTs at 16 connections (PUTs
to distinct new keys: every PUT is one new blob to replicate), 64 MiB GETs
at 4 connections for twice the seconds.  64 MiB PUTs: Python threads, 4 at a
time, 16 objects timed from the first byte to the last answer, one untimed
first (Python only hands one 64 MiB buffer to the socket, far below the
server's rate; a fixed count avoids wrk's partial-request rounding at a few
requests per second).  GETs read objects written before the timed runs (in
the async case after their copies are made, so a GET measures the read path,
not the replication beside it).

The queue: without `kura status` in this build, it is measured by counting
the remote bucket's objects (boto3, one listing per second) against the
objects the gateway holds (one blob each: single PUTs).

Usage: bench/placement.py [--rounds N] [--seconds S] [--drain-timeout S]
                          [--cases local,async,sync] [--kura build/kura]
Prints a table (median of the rounds, ratio to local) and lines:
  BENCH placement case=PUT-4K placement=async rps=... mbps=... ratio=...
  BENCH placement-drain placement=async backlog=... drained_s=... rate=...
  BENCH placement-target ... met=yes|no
"""

import argparse
import concurrent.futures
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from benchlib import (AK, LUA, SK, free_port, s3_client,  # noqa: E402
                      start_kura, wrk)

MiB = 1 << 20
SMALL, LARGE = 4096, 64 * MiB
GET_SMALL_KEYS = 500      # wrk cycles over them
LARGE_GET_KEYS = 4        # wrk cycles over them
LARGE_OBJECTS = 16        # per timed 64 MiB PUT run
LARGE_CONNS = 4
CONNS = 16
SERIAL = 3                # 64 MiB PUTs one at a time (latency)
PLACEMENTS = ("local", "async", "sync")
# Each wrk thread starts half the URL list further on: PUTs to distinct
# new keys never collide between its two threads.
OFFSET = "counter * math.floor(#urls / 2)"
DR_BUCKET = "kura-dr"

# Targets (issue 13): (case, placement) -> (minimum ratio to local, what)
TARGETS = {
    ("PUT-4K", "async"): (0.9, "async costs < 10 % of PUT throughput"),
    ("PUT-64M", "async"): (0.9, "async costs < 10 % of PUT throughput"),
    ("PUT-64M", "sync"): (0.5, "sync >= 0.5 x local for 64 MiB PUTs"),
    ("GET-4K", "async"): (0.9, "GETs from the local replica unchanged"),
    ("GET-64M", "async"): (0.9, "GETs from the local replica unchanged"),
    ("GET-4K", "sync"): (0.9, "GETs from the local replica unchanged"),
    ("GET-64M", "sync"): (0.9, "GETs from the local replica unchanged"),
}

def log(msg):
    print(f"[placement {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_secret(path, secret):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")


def parse_credentials(out):
    found = {}
    for line in out.splitlines():
        line = line.strip().removeprefix("export ")
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if line.startswith(k + "="):
                found[k] = line.split("=", 1)[1].strip("'\"")
    return found["AWS_ACCESS_KEY_ID"], found["AWS_SECRET_ACCESS_KEY"]


class Remote:
    """A kura server acting as the remote S3 backend: tenant "bench-gw"
    owns bucket kura-dr; its secret key in a 0600 file."""

    def __init__(self, kura, work, port):
        self.dir = work / "remote"
        self.dir.mkdir()
        cfg = self.dir / "kura.ini"
        cfg.write_text("[scrub]\ninterval = 0\n")
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.proc = start_kura(kura, self.dir / "data", port, cfg)
        r = subprocess.run([kura, "tenant", "add", "bench-gw", "--data-dir",
                            str(self.dir / "data"), "--config", str(cfg)],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            stop(self.proc)
            sys.exit(f"kura tenant add on the remote: {r.stdout}{r.stderr}")
        self.access, secret = parse_credentials(r.stdout)
        self.secret_file = work / "remote.secret"
        write_secret(self.secret_file, secret)
        import boto3
        from botocore.config import Config
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint,
                               aws_access_key_id=self.access,
                               aws_secret_access_key=secret, region_name="us-east-1",
                               config=Config(signature_version="s3v4",
                                             s3={"addressing_style": "path"}))
        self.s3.create_bucket(Bucket=DR_BUCKET)

    def section(self):
        return (f"[backend.remote]\ntype = s3\nendpoint = {self.endpoint}\n"
                f"bucket = {DR_BUCKET}\naccess_key_id = {self.access}\n"
                f"secret_key_file = {self.secret_file}\n"
                "site = osaka-1\nregion = jp-west\njurisdiction = JP\n")

    def count(self):
        n = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=DR_BUCKET):
            n += page.get("KeyCount", 0)
        return n

    def close(self):
        stop(self.proc)


def gateway_config(work, placement, remote):
    disk = work / "fs-disk"
    disk.mkdir(mode=0o700)
    pol = {"local": "sync = disk\n",
           "async": "sync = disk\nasync = remote\n",
           "sync": "sync = disk,remote\n"}[placement]
    return ("[server]\nhome_jurisdiction = JP\n"
            "[keys]\nprovider = local\njurisdiction = JP\n"
            "[storage]\nplacement = bench\nreplication_interval = 1\n"
            "[scrub]\ninterval = 0\n"
            f"[backend.disk]\ntype = fs\npath = {disk}\nsite = tokyo-1\n"
            "region = jp-east\njurisdiction = JP\n"
            + (remote.section() if remote else "")
            + "[placement.bench]\n" + pol + "jurisdictions = JP\n")


class Urls:
    """Presigned URLs, made once for the run: every gateway listens on the
    same port with the same root keys, so they stay valid."""

    def __init__(self, work, endpoint, seconds):
        s3 = s3_client(endpoint)
        self.work, self.endpoint = work, endpoint

        def sign(op, key):
            u = s3.generate_presigned_url(op, Params={"Bucket": "bench", "Key": key},
                                          ExpiresIn=6 * 3600)
            return u[len(endpoint):]
        # Distinct keys for every PUT wrk can make in the run (no overwrite:
        # each PUT is one new blob to replicate).
        nput = max(8000, int(seconds * 2500))
        self.small_get = [f"s/get-{i:05d}" for i in range(GET_SMALL_KEYS)]
        self.lua = {}
        for name, method, keys in (
                ("GET-4K", "GET", self.small_get),
                ("GET-4K-warm", "GET", self.small_get),
                ("PUT-4K", "PUT", [f"s/put-{i:06d}" for i in range(nput)]),
                ("PUT-4K-warm", "PUT", [f"s/warm-{i:05d}" for i in range(3000)])):
            urls = work / f"{name}.urls"
            urls.write_text("".join(sign("get_object" if method == "GET" else "put_object", k)
                                    + "\n" for k in keys))
            lua = work / f"{name}.lua"
            lua.write_text(LUA % {"urls": urls, "method": method,
                                  "body": (f'payload = string.rep("x", {SMALL})'
                                           if method == "PUT" else "payload = nil"),
                                  "bodyvar": "payload", "offset": OFFSET})
            self.lua[name] = lua
        self.large_get = [f"l/get-{i}" for i in range(LARGE_GET_KEYS)]
        urls = work / "GET-64M.urls"
        urls.write_text("".join(sign("get_object", k) + "\n" for k in self.large_get))
        lua = work / "GET-64M.lua"
        lua.write_text(LUA % {"urls": urls, "method": "GET", "body": "payload = nil",
                              "bodyvar": "payload", "offset": OFFSET})
        self.lua["GET-64M"] = lua
        self.large_put = [sign("put_object", f"l/put-{i}") for i in range(LARGE_OBJECTS)]
        self.large_warm = sign("put_object", "l/warm")
        self.large_serial = [sign("put_object", f"l/serial-{i}") for i in range(SERIAL)]


def http_put(port, path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        c.request("PUT", path, body=body, headers={"Content-Length": str(len(body))})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serial_puts(port, paths, body):
    """64 MiB PUTs one after another: seconds per PUT (median)."""
    secs, errs = [], 0
    for p in paths:
        t0 = time.monotonic()
        errs += http_put(port, p, body) != 200
        secs.append(time.monotonic() - t0)
    return {"s": statistics.median(secs), "errors": errs}


def large_run(fn, items):
    """(MB/s, objects/s, errors): fn over items, LARGE_CONNS at a time."""
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(LARGE_CONNS) as ex:
        codes = list(ex.map(fn, items))
    secs = time.monotonic() - t0
    errs = sum(1 for c in codes if c != 200)
    return len(items) * LARGE / secs / 1e6, len(items) / secs, errs


def wait_drain(remote, expected, timeout):
    """Seconds until the remote holds expected objects (None: not within
    timeout), and (count, seconds) samples."""
    t0 = time.monotonic()
    samples = []
    while True:
        n = remote.count()
        t = time.monotonic() - t0
        samples.append((t, n))
        if n >= expected:
            return t, samples
        if t >= timeout:
            return None, samples
        time.sleep(1.0)


def gateway_objects(s3):
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench"):
        n += page.get("KeyCount", 0)
    return n


def run_case(kura, placement, urls, port, seconds, drain_timeout, work):
    res = {}
    remote = Remote(kura, work, free_port()) if placement != "local" else None
    cfg = work / "gateway.ini"
    cfg.write_text(gateway_config(work, placement, remote))
    gw = start_kura(kura, work / "gw", port, cfg)
    ep = f"http://127.0.0.1:{port}"
    try:
        if gw.poll() is not None:
            sys.exit(f"gateway exited: {gw.returncode}")
        s3 = s3_client(ep)
        s3.create_bucket(Bucket="bench")
        small = os.urandom(SMALL)
        large = os.urandom(LARGE)
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda k: s3.put_object(Bucket="bench", Key=k, Body=small),
                        urls.small_get))
        for key in urls.large_get:
            s3.put_object(Bucket="bench", Key=key, Body=large)
        if placement == "async":
            n0 = gateway_objects(s3)
            t, samples = wait_drain(remote, n0, drain_timeout)
            res["drain-populate"] = (n0, t, samples)
        # GETs (the remote's CPU time meanwhile: a GET from the local
        # replica gives it nothing to do)
        rcpu0 = cpu_s(remote.proc.pid) if remote else 0.0
        wrk(urls.lua["GET-4K-warm"], ep, 1, CONNS)
        rps, p50, p99, errs = wrk(urls.lua["GET-4K"], ep, seconds, CONNS)
        res["GET-4K"] = {"rps": rps, "mbps": rps * SMALL / 1e6, "p50": p50, "p99": p99,
                         "errors": errs}
        wrk(urls.lua["GET-64M"], ep, 1, LARGE_CONNS)
        rps, p50, p99, errs = wrk(urls.lua["GET-64M"], ep, 2 * seconds, LARGE_CONNS)
        res["GET-64M"] = {"rps": rps, "mbps": rps * LARGE / 1e6, "p50": p50, "p99": p99,
                          "errors": errs}
        res["remote_cpu_during_gets_s"] = cpu_s(remote.proc.pid) - rcpu0 if remote else 0.0
        # PUTs (async: replication runs from the first one on)
        before = remote.count() if remote else 0
        t_put0 = time.monotonic()
        wrk(urls.lua["PUT-4K-warm"], ep, 1, CONNS)
        rps, p50, p99, errs = wrk(urls.lua["PUT-4K"], ep, seconds, CONNS)
        res["PUT-4K"] = {"rps": rps, "mbps": rps * SMALL / 1e6, "p50": p50, "p99": p99,
                         "errors": errs}
        http_put(port, urls.large_warm, large)
        mbps, ops, errs = large_run(lambda p: http_put(port, p, large), urls.large_put)
        res["PUT-64M"] = {"rps": ops, "mbps": mbps, "errors": errs}
        # One at a time: the latency of a single 64 MiB PUT, and (remote
        # cases) the same PUT straight to the remote kura, which a sync
        # copy also waits for.
        res["PUT-64M-1"] = serial_puts(port, urls.large_serial, large)
        if remote:
            paths = []
            for i in range(SERIAL):
                u = remote.s3.generate_presigned_url(
                    "put_object", Params={"Bucket": DR_BUCKET, "Key": f"direct-{i}"},
                    ExpiresIn=3600)
                paths.append(u[len(remote.endpoint):])
            res["REMOTE-PUT-64M-1"] = serial_puts(remote.port, paths, large)
            for i in range(SERIAL):
                remote.s3.delete_object(Bucket=DR_BUCKET, Key=f"direct-{i}")
        t_put = time.monotonic() - t_put0
        if placement == "async":
            expected = gateway_objects(s3)
            at_end = remote.count()
            t, samples = wait_drain(remote, expected, drain_timeout)
            res["drain"] = {"expected": expected, "copied_during_puts": at_end - before,
                            "put_phase_s": t_put, "backlog": expected - at_end,
                            "drained_s": t, "samples": samples}
    finally:
        stop(gw)
        if remote:
            remote.close()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=4,
                    help="seconds per timed wrk run (4 KiB cases)")
    ap.add_argument("--drain-timeout", type=float, default=60,
                    help="seconds to wait for the async queue to drain")
    ap.add_argument("--cases", default=",".join(PLACEMENTS))
    ap.add_argument("--kura", default=str(ROOT / "build" / "kura"))
    a = ap.parse_args()
    cases = a.cases.split(",")
    t_start = time.monotonic()
    port = free_port()
    runs = {c: [] for c in cases}
    with tempfile.TemporaryDirectory(prefix="kura-bench-placement-") as tmp:
        tmp = Path(tmp)
        urls = Urls(tmp, f"http://127.0.0.1:{port}", a.seconds)
        for rnd in range(a.rounds):
            for c in cases:
                work = tmp / f"r{rnd}-{c}"
                work.mkdir()
                log(f"round {rnd + 1}/{a.rounds}: {c}")
                res = run_case(a.kura, c, urls, port, a.seconds, a.drain_timeout, work)
                runs[c].append(res)
                subprocess.run(["rm", "-rf", str(work)])
                log("  " + "  ".join(f"{k} {v['rps']:.1f} op/s {v['mbps']:.1f} MB/s"
                                     for k, v in res.items() if isinstance(v, dict) and "rps" in v)
                    + f"  remote CPU during GETs {res['remote_cpu_during_gets_s']:.2f} s")
    elapsed = time.monotonic() - t_start

    kinds = ["PUT-4K", "PUT-64M", "GET-4K", "GET-64M"]
    metric = {"PUT-4K": "rps", "GET-4K": "rps", "PUT-64M": "mbps", "GET-64M": "mbps"}
    unit = {"rps": "op/s", "mbps": "MB/s"}
    med = {c: {k: statistics.median(r[k][metric[k]] for r in runs[c]) for k in kinds}
           for c in cases}
    errs = {c: {k: sum(r[k]["errors"] for r in runs[c]) for k in kinds} for c in cases}
    print()
    print(f"kura {a.kura}; {a.rounds} rounds, medians; 4 KiB: wrk {CONNS} conns "
          f"{a.seconds} s; 64 MiB: GETs wrk {LARGE_CONNS} conns {2 * a.seconds} s, "
          f"{LARGE_OBJECTS} PUTs {LARGE_CONNS} at a time; machine shared, figures noisy")
    hdr = f"{'case':8} | " + " | ".join(f"{c:>22}" for c in cases)
    print(hdr)
    print(" " * 8 + " | " + " | ".join(f"{'median  ratio':>22}" for _ in cases))
    print("-" * len(hdr))
    lines = []
    summary = []
    for k in kinds:
        row = f"{k:8} | "
        cells = []
        for c in cases:
            v = med[c][k]
            ref = med["local"][k] if "local" in med else float("nan")
            ratio = v / ref if ref else float("nan")
            per = [r[k][metric[k]] for r in runs[c]]
            cells.append(f"{v:14.1f} {ratio:6.2f}" + ("!" if errs[c][k] else " "))
            per_ratio = ([r[k][metric[k]] / l[k][metric[k]]
                          for r, l in zip(runs[c], runs["local"])] if "local" in runs else [])
            lines.append(f"BENCH placement case={k} placement={c} {metric[k]}={v:.1f} "
                         f"unit={unit[metric[k]]} ratio_to_local={ratio:.3f} "
                         f"per_round={','.join(f'{x:.1f}' for x in per)} "
                         f"per_round_ratio={','.join(f'{x:.2f}' for x in per_ratio)} "
                         f"errors={errs[c][k]}")
            tgt = TARGETS.get((k, c))
            if tgt:
                summary.append((f"{k} {c} >= {tgt[0]} x local ({tgt[1]})", ratio,
                                "yes" if ratio >= tgt[0] else "no"))
        print(row + " | ".join(cells))
    for c in cases:
        for k in ("PUT-4K", "GET-4K", "GET-64M"):
            p50 = statistics.median(r[k]["p50"] for r in runs[c])
            p99 = statistics.median(r[k]["p99"] for r in runs[c])
            lines.append(f"BENCH placement-latency case={k} placement={c} "
                         f"p50_ms={p50:.2f} p99_ms={p99:.2f}")
    print()
    for c in cases:
        one = statistics.median(r["PUT-64M-1"]["s"] for r in runs[c])
        line = f"BENCH placement-serial case=PUT-64M-1 placement={c} seconds={one:.3f}"
        text = f"one 64 MiB PUT at a time, {c}: {one:.2f} s"
        if "REMOTE-PUT-64M-1" in runs[c][0]:
            rem = statistics.median(r["REMOTE-PUT-64M-1"]["s"] for r in runs[c])
            line += f" remote_direct_seconds={rem:.3f}"
            text += f" (the same PUT straight to the remote kura: {rem:.2f} s)"
        if c != "local":
            rc = statistics.median(r["remote_cpu_during_gets_s"] for r in runs[c])
            line += f" remote_cpu_during_gets_s={rc:.2f}"
            text += f"; remote kura CPU during the GET runs: {rc:.2f} s"
        print(text)
        lines.append(line)
    if "async" in runs:
        print()
        for i, r in enumerate(runs["async"]):
            d = r["drain"]
            n0, t0, _ = r["drain-populate"]
            s = d["samples"]
            copied = s[-1][1] - s[0][1]
            rate = copied / s[-1][0] if s[-1][0] > 0 else float("nan")
            left = d["expected"] - s[-1][1]
            steps = [b[1] - a_[1] for a_, b in zip(s, s[1:])]
            drained = f"{d['drained_s']:.1f}" if d["drained_s"] is not None else \
                f">{a.drain_timeout:.0f}"
            print(f"async round {i + 1}: {d['expected']} objects; during the "
                  f"{d['put_phase_s']:.1f} s of PUTs {d['copied_during_puts']} copied, "
                  f"backlog {d['backlog']} at their end; drained in {drained} s "
                  f"({copied} copies at {rate:.1f}/s"
                  + (f", {left} left: about {left / rate:.0f} s more at that rate"
                     if left > 0 and rate > 0 else "") + f"); the {n0} objects written "
                  f"before the GETs drained in "
                  f"{t0 if t0 is None else round(t0, 1)} s")
            lines.append(f"BENCH placement-drain placement=async round={i + 1} "
                         f"objects={d['expected']} put_phase_s={d['put_phase_s']:.1f} "
                         f"copied_during_puts={d['copied_during_puts']} "
                         f"backlog={d['backlog']} drained_s={drained} "
                         f"drain_copies={copied} drain_rate_per_s={rate:.1f} left={left} "
                         f"projected_drain_s={(d['drained_s'] or 0) if left <= 0 else s[-1][0] + left / rate:.0f} "
                         f"copies_per_poll={','.join(map(str, steps))} "
                         f"populate_objects={n0} populate_drained_s="
                         f"{'-' if t0 is None else f'{t0:.1f}'}")
    print()
    print("targets:")
    for what, val, met in summary:
        print(f"  {'MET   ' if met == 'yes' else 'MISSED'} {what}: {val:.2f}")
        lines.append(f"BENCH placement-target what=\"{what}\" ratio={val:.3f} met={met}")
    lines.append(f"BENCH placement-summary rounds={a.rounds} seconds={a.seconds} "
                 f"elapsed_s={elapsed:.0f} targets_met="
                 f"{sum(1 for s in summary if s[2] == 'yes')}/{len(summary)}")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()

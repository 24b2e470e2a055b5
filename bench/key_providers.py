#!/usr/bin/python3
"""GET and PUT of 4 KiB and 1 MiB objects with the local keystore, PKCS#11
(SoftHSM2) and KMIP (PyKMIP) key providers side by side.

For each provider kura runs twice: with bucket keys cached (the default,
bucket_key_ttl = 300) and with the cache off (bucket_key_ttl = 0), so every
request makes a provider round trip.  Load comes from wrk (a C client)
cycling through presigned URLs of distinct objects, 16 connections.

The reference is the local keystore in the same run: with the cache on,
each external provider should cost under 5 % in requests/s; with it off,
the per-request provider cost is 1/rate(cold) - 1/rate(cached).

Usage: bench/key_providers.py [--seconds S] [--providers local,pkcs11,kmip]
Prints a table and one line per case:
  BENCH keys provider=P cache=on|off case=GET-4K rps=... p50_ms=... p99_ms=...
"""

import argparse
import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from providers import PyKMIP, SoftHSM  # noqa: E402

AK, SK = "KBENCHKEYPROVIDERS00", "benchbenchbenchbenchbenchbenchbenchbench"
SIZES = {"4K": 4096, "1M": 1 << 20}
OBJECTS = {"4K": 3000, "1M": 300}
CONNS = 16

LUA = r"""
local urls = {}
for line in io.lines("%(urls)s") do urls[#urls + 1] = line end
local counter = 0
function setup(thread)
  thread:set("offset", counter * 7919)
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


def start_kura(kura, data, port, cfg, env):
    env = dict(os.environ, KURA_ROOT_ACCESS_KEY=AK, KURA_ROOT_SECRET_KEY=SK, **env)
    p = subprocess.Popen([kura, "server", "--data-dir", data, "--listen",
                          f"127.0.0.1:{port}", "--config", cfg], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("kura did not start")


def wrk(script, url, seconds):
    out = subprocess.run(["wrk", "-t2", f"-c{CONNS}", f"-d{seconds}s", "--latency",
                          "-s", script, url], capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, pct(50), pct(99), int(errors.group(1)) if errors else 0


def kmip_decrypts(peer):
    """Decrypt operations the PyKMIP server has logged (provider round trips
    for bucket keys)."""
    log = peer.dir / "server.log"
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if "Processing operation: Decrypt" in line)


def run_provider(kura, name, cache, seconds, work):
    peer = None
    env = {}
    keys_cfg = "[keys]\nprovider = local\n"
    if name == "pkcs11":
        peer = SoftHSM(work)
        env = peer.env
        keys_cfg = peer.config()
    elif name == "kmip":
        peer = PyKMIP(work)
        keys_cfg = peer.config()
    cfg = work / "kura.ini"
    cfg.write_text(keys_cfg + f"bucket_key_ttl = {300 if cache else 0}\n")
    port = free_port()
    proc = start_kura(kura, work / "data", port, cfg, env)
    results = {}
    try:
        ep = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=AK,
                          aws_secret_access_key=SK, region_name="us-east-1",
                          config=Config(signature_version="s3v4",
                                        s3={"addressing_style": "path"},
                                        max_pool_connections=16))
        s3.create_bucket(Bucket="bench")
        for label, size in SIZES.items():
            body = os.urandom(size)
            keys = [f"{label}/obj-{i:06d}" for i in range(OBJECTS[label])]
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                list(ex.map(lambda k: s3.put_object(Bucket="bench", Key=k, Body=body),
                            keys))
            for method in ("GET", "PUT"):
                urls = work / f"{label}-{method}.urls"
                op = "get_object" if method == "GET" else "put_object"
                targets = keys if method == "GET" else [f"{label}/new-{i:06d}"
                                                        for i in range(OBJECTS[label])]
                with open(urls, "w") as f:
                    for k in targets:
                        u = s3.generate_presigned_url(op, Params={"Bucket": "bench",
                                                                  "Key": k},
                                                      ExpiresIn=3600)
                        f.write(u[len(ep):] + "\n")
                lua = work / f"{label}-{method}.lua"
                lua.write_text(LUA % {
                    "urls": urls, "method": method,
                    "body": (f'payload = string.rep("x", {size})' if method == "PUT"
                             else "payload = nil"),
                    "bodyvar": "payload"})
                before = kmip_decrypts(peer) if name == "kmip" else 0
                rps, p50, p99, errs = wrk(str(lua), ep, seconds)
                calls = kmip_decrypts(peer) - before if name == "kmip" else -1
                results[f"{method}-{label}"] = (rps, p50, p99, errs, calls,
                                                int(rps * seconds))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        if peer:
            peer.close()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--providers", default="local,pkcs11,kmip")
    ap.add_argument("--kura", default=str(ROOT / "build" / "kura"))
    ap.add_argument("--cache", choices=("both", "on", "off"), default="both")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every run and keep the median req/s")
    a = ap.parse_args()
    table = {}
    caches = {"both": (True, False), "on": (True,), "off": (False,)}[a.cache]
    runs = {}
    # Rounds interleave the providers so that drift in the machine's speed
    # affects them alike.
    for _ in range(a.rounds):
        for name in a.providers.split(","):
            for cache in caches:
                with tempfile.TemporaryDirectory(prefix=f"kura-bench-{name}-") as tmp:
                    runs.setdefault((name, cache), []).append(
                        run_provider(a.kura, name, cache, a.seconds, Path(tmp)))
    for key, rs in runs.items():
        table[key] = {c: sorted((r[c] for r in rs), key=lambda t: t[0])[len(rs) // 2]
                      for c in rs[0]}
    cases = list(table[next(iter(table))].keys())
    print(f"\n{'provider':8} {'cache':5} " + " ".join(f"{c:>22}" for c in cases))
    print(" " * 15 + " ".join(f"{'req/s  p50  p99 ms':>22}" for _ in cases))
    lines = []
    for (name, cache), res in table.items():
        row = f"{name:8} {'on' if cache else 'off':5} "
        for c in cases:
            rps, p50, p99, errs, calls, reqs = res[c]
            row += f"{rps:9.0f} {p50:5.1f} {p99:6.1f}" + ("!" if errs else " ")
            lines.append(f"BENCH keys provider={name} cache={'on' if cache else 'off'} "
                         f"case={c} rps={rps:.0f} p50_ms={p50:.2f} p99_ms={p99:.2f} "
                         f"errors={errs}" +
                         (f" provider_calls={calls} requests={reqs}" if calls >= 0 else ""))
        print(row)
    print()
    for name in a.providers.split(","):
        if name == "local" or ("local", True) not in table or (name, True) not in table:
            continue
        for c in cases:
            ref = table[("local", True)][c][0]
            on = table[(name, True)][c][0]
            off = table[(name, False)][c][0] if (name, False) in table else 0
            cost_ms = (1 / off - 1 / on) * 1000 * CONNS if off > 0 and on > 0 else float("nan")
            lines.append(f"BENCH keys-ratio provider={name} case={c} "
                         f"cached_vs_local={on / ref:.3f} "
                         f"cold_roundtrip_ms_per_request={cost_ms:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

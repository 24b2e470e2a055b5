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
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "bench"))
from providers import PyKMIP, SoftHSM  # noqa: E402

from benchlib import CONNS, s3_client, start_kura, free_port, wrk, wrk_script  # noqa: E402

SIZES = {"4K": 4096, "1M": 1 << 20}
OBJECTS = {"4K": 3000, "1M": 300}


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
        s3 = s3_client(ep)
        s3.create_bucket(Bucket="bench")
        for label, size in SIZES.items():
            body = os.urandom(size)
            keys = [f"{label}/obj-{i:06d}" for i in range(OBJECTS[label])]
            with concurrent.futures.ThreadPoolExecutor(8) as ex:
                list(ex.map(lambda k: s3.put_object(Bucket="bench", Key=k, Body=body),
                            keys))
            for method in ("GET", "PUT"):
                targets = keys if method == "GET" else [f"{label}/new-{i:06d}"
                                                        for i in range(OBJECTS[label])]
                lua = wrk_script(work, s3, ep, f"{label}-{method}", method, "bench",
                                 targets, size)
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

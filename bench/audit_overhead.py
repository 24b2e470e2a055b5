#!/usr/bin/python3
"""What the audit log costs: 4 KiB GET and PUT requests per second with the
audit log on (every request recorded and fdatasync'ed before it is
answered) and off, in the same run, rounds interleaved.

Every record is durable before its response is sent; group commit lets
concurrent requests share one fdatasync.  So the reference printed beside
the figures is also this disk's rate of single fdatasyncs (what one sync per
request would allow): audit-on PUTs above it show the sharing at work.

Usage: bench/audit_overhead.py [--seconds S] [--rounds N]
Prints a table and lines:
  BENCH audit log=on|off case=GET-4K rps=... p50_ms=... p99_ms=...
  BENCH audit-ratio case=GET-4K on_vs_off=...
  BENCH audit-disk fdatasync_per_s=... record_bytes=...
"""

import argparse
import concurrent.futures
import os
import signal
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from benchlib import (fdatasync_rate, free_port, s3_client, start_kura, wrk,  # noqa: E402
                      wrk_script)

OBJECTS = 3000
SIZE = 4096


def run_once(kura, audit_on, seconds, work, conns):
    cfg = work / "kura.ini"
    cfg.write_text(f"[audit]\nenabled = {'true' if audit_on else 'false'}\n")
    port = free_port()
    proc = start_kura(kura, work / "data", port, cfg)
    results = {}
    try:
        ep = f"http://127.0.0.1:{port}"
        s3 = s3_client(ep)
        s3.create_bucket(Bucket="bench")
        body = os.urandom(SIZE)
        keys = [f"obj-{i:06d}" for i in range(OBJECTS)]
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            list(ex.map(lambda k: s3.put_object(Bucket="bench", Key=k, Body=body), keys))
        for method in ("GET", "PUT"):
            for c in conns:
                targets = keys if method == "GET" else [f"new{c}-{i:06d}" for i in range(OBJECTS)]
                lua = wrk_script(work, s3, ep, f"4K-{method}-{c}", method, "bench", targets, SIZE)
                results[f"{method}-4K-c{c}"] = wrk(lua, ep, seconds, c)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    seg_bytes = sum(p.stat().st_size for p in (work / "data" / "audit").glob("seg-*.log")) \
        if audit_on else 0
    return results, seg_bytes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kura", default=str(ROOT / "build" / "kura"))
    ap.add_argument("--conns", default="16,64",
                    help="comma-separated connection counts")
    a = ap.parse_args()
    conns = [int(c) for c in a.conns.split(",")]
    runs = {True: [], False: []}
    seg_bytes = []
    for _ in range(a.rounds):
        for audit_on in (True, False):
            with tempfile.TemporaryDirectory(prefix="kura-bench-audit-") as tmp:
                res, nbytes = run_once(a.kura, audit_on, a.seconds, Path(tmp), conns)
                runs[audit_on].append(res)
                if audit_on:
                    total = sum(r[0] for r in res.values()) * a.seconds + OBJECTS + 1
                    seg_bytes.append(nbytes / total)
    with tempfile.TemporaryDirectory(prefix="kura-bench-sync-") as tmp:
        syncs = fdatasync_rate(tmp, seconds=2.0)
    cases = list(runs[True][0].keys())
    med = {on: {c: sorted((r[c] for r in runs[on]), key=lambda t: t[0])[len(runs[on]) // 2]
                for c in cases} for on in runs}
    print(f"\n{'audit':6} " + " ".join(f"{c:>24}" for c in cases))
    print(" " * 7 + " ".join(f"{'req/s   p50   p99 ms':>24}" for _ in cases))
    lines = []
    for on in (True, False):
        row = f"{'on' if on else 'off':6} "
        for c in cases:
            rps, p50, p99, errs = med[on][c]
            row += f"{rps:10.0f} {p50:6.2f} {p99:6.2f}" + ("!" if errs else " ")
            lines.append(f"BENCH audit log={'on' if on else 'off'} case={c} rps={rps:.0f} "
                         f"p50_ms={p50:.2f} p99_ms={p99:.2f} errors={errs}")
        print(row)
    for c in cases:
        ratios = [on[c][0] / off[c][0] for on, off in zip(runs[True], runs[False])]
        lines.append(f"BENCH audit-ratio case={c} on_vs_off={med[True][c][0] / med[False][c][0]:.3f} "
                     f"per_round={','.join(f'{r:.3f}' for r in ratios)}")
    lines.append(f"BENCH audit-disk fdatasync_per_s={syncs:.0f} "
                 f"record_bytes={statistics.median(seg_bytes):.0f}")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()

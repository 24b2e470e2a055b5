"""A short soak (CI's version of bench/soak.py): ~25 s of the soak's mixed
GET/PUT/DELETE/List load at 64 connections against the binary under test.

- Every response is 2xx and no connection fails (the mix is designed so).
- RSS after warm-up does not grow beyond a bound (see RSS_GROWTH_*).
- The server exits 0 on SIGTERM with no sanitizer report: under the ASan
  build (scripts/run-tests.sh sets ASAN_OPTIONS=detect_leaks=1), LeakSanitizer
  runs at that exit and a leak makes the exit status non-zero and prints
  "ERROR: LeakSanitizer", both of which fail this test.
"""

import os
import shutil
import statistics
import subprocess
import sys

import pytest

from conftest import ROOT, kura_bin, running_server

sys.path.insert(0, str(ROOT / "bench"))
import soak  # noqa: E402

SECONDS = 24          # of load; the first WARM_S are warm-up
WARM_S = 8
CONNS = 64
# Growth allowed between the RSS right after warm-up and at the end.  The
# normal build's steady state under this mix is reached within seconds
# (per-connection buffers, the SQLite page cache, malloc arenas for the
# server's threads); what remains is allocator noise of a few MiB, so 16 MiB
# in ~16 s (60 MiB/min) is far above noise and far below what a leak of one
# buffer per request would add (about 1,000 requests/s).  Under ASan freed
# memory first sits in the quarantine (its size is capped below for this
# server) and every allocation carries redzones, so the bound is wider;
# there LeakSanitizer's exit report is the leak check that counts.
RSS_GROWTH_NORMAL_MIB = 16
RSS_GROWTH_ASAN_MIB = 64
ASAN_QUARANTINE_MB = 32


def is_asan(binary):
    r = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    return "libasan" in r.stdout


@pytest.mark.skipif(shutil.which("wrk") is None,
                    reason="wrk is not installed (scripts/packages.txt)")
def test_mixed_load_no_errors_no_leak(tmp_path):
    asan = is_asan(kura_bin())
    env = {}
    if asan:
        base = os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env["ASAN_OPTIONS"] = f"{base}:quarantine_size_mb={ASAN_QUARANTINE_MB}"
    with running_server(tmp_path, "[server]\nlog_level = warn\n", env=env) as srv:
        try:
            s3 = srv.client(max_pool_connections=4)
            res = soak.soak(srv.endpoint, srv.proc.pid, tmp_path, SECONDS, CONNS,
                            interval=1.0, s3=s3)
            assert srv.running, "server died under load"
        finally:
            problems = srv.stop()
    assert problems == [], "\n".join(problems)
    assert res["requests"] > 0, res["output"]
    assert res["non2xx"] == 0 and res["socket_errors"] == 0, res["output"]
    after = [v for t, v in res["samples"] if t >= WARM_S]
    assert len(after) >= 6, res["samples"]
    start = statistics.median(after[:3]) / 1024
    end = statistics.median(after[-3:]) / 1024
    bound = RSS_GROWTH_ASAN_MIB if asan else RSS_GROWTH_NORMAL_MIB
    print(f"soak {SECONDS} s x {CONNS}: {res['rps']:.0f} req/s, RSS "
          f"{start:.1f} -> {end:.1f} MiB (max {max(after) / 1024:.1f}), "
          f"slope {soak.slope_mib_per_min([(t, v) for t, v in res['samples'] if t >= WARM_S]):+.2f} MiB/min")
    assert end - start <= bound, \
        f"RSS grew {end - start:.1f} MiB after warm-up (bound {bound} MiB): {res['samples']}"

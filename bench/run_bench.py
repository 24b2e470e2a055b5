#!/usr/bin/python3
"""The benchmark of `make bench`: kura and its references side by side, in
one run, on the same bytes.

References measured in the same run:
  nginx      Debian's nginx on 127.0.0.1 (bench/nginx/nginx.conf.in): the
             objects as static files for GET (sendfile), the DAV module for
             PUT (no fsync), autoindex for the listing;
  openssl    `openssl speed -evp aes-256-gcm [-decrypt] -bytes 16384`: the
             AES-256-GCM ceiling of one core, CPU time per byte;
  dd         1 GiB written with conv=fdatasync and with oflag=direct, and a
             1-second probe of single fdatasyncs: the disk's ceilings.

Load generator: wrk with bench/bench.lua over presigned kura URLs (signed
query strings, body UNSIGNED-PAYLOAD) or plain nginx paths; the 1 GiB
multipart upload uses boto3 (throughput-bound, 64 MiB parts, 4 at a time)
against a single 1 GiB curl PUT to nginx and to kura.

Cases: GET and PUT of 4 KiB, 1 MiB and 64 MiB at 1, 16 and 64 connections;
ListObjectsV2 of 1,000 keys; multipart upload of 1 GiB; mixed 80/20 GET/PUT
of 64 KiB objects.  Per case: requests/s, MB/s (10^6 bytes/s on the wire:
bytes wrk read for GETs, bytes it wrote for PUTs), p50/p99 latency, the
server's peak RSS (VmRSS polled at 20 Hz; nginx: master + workers) and its
CPU time per byte.  Targets (issue 6) are printed met/missed.

kura runs with its shipped defaults — audit log ON, every request's record
fdatasync'ed before its response — unless --audit off.

Usage: bench/run_bench.py [--quick] [--seconds N] [--audit on|off]
                          [--kura build/kura] [--only GET,PUT,LIST,MIX,MPU]
                          [--perf DIR]
Output: a table, then one line per case:
  BENCH case=GET size=64M conns=16 server=kura rps=... mbps=... p50_ms=...
        p99_ms=... rss_peak_mb=... cpu_ns_per_byte=... errors=...
        ratio_to_nginx=... target=0.6 met=yes
Every server started is stopped at the end, also on Ctrl-C or an error.
"""

import argparse
import concurrent.futures
import ctypes
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))
from benchlib import AK, SK, fdatasync_rate, free_port, rss_kib, s3_client  # noqa: E402

from boto3.s3.transfer import TransferConfig  # noqa: E402

MiB = 1 << 20
SIZES = [("4K", 4096), ("1M", MiB), ("64M", 64 * MiB)]
# Objects per size for GETs (the 4 KiB bucket doubles as the 1,000-key
# listing) and distinct keys PUTs cycle through (overwrites beyond that).
GET_KEYS = {"4K": 1000, "1M": 64, "64M": 8}
PUT_KEYS = {"4K": 4096, "1M": 512, "64M": 64}
MIX_SIZE, MIX_KEYS, MIX_PUT = 64 * 1024, 256, 0.2
CLK = os.sysconf("SC_CLK_TCK")

# Targets: (case, size) -> (metric, ratio, note)
TARGETS = {
    ("GET", "64M"): ("mbps", 0.6, "while decrypting every byte"),
    ("PUT", "64M"): ("mbps", 0.6, "while encrypting and fsyncing every byte"),
    ("GET", "4K"): ("rps", 0.5, "kura authenticates, looks up and decrypts every GET"),
    ("PUT", "4K"): ("rps", 0.25, "kura fsyncs every PUT, nginx dav does not"),
}
RSS_PUT_LIMIT_MB = 256
RSS_IDLE_LIMIT_MB = 32
CPU_RATIO_LIMIT = 1.5

_started = []          # every process we started, stopped in cleanup()
PERF_DIR = None        # --perf: record kura's profile per case here


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    """Child side of Popen: get SIGTERM if the driver dies (even by
    SIGKILL), so no server outlives it."""
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, preexec_fn=_die_with_parent, **kw)
    _started.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=60):
    if p.poll() is None:
        try:
            p.send_signal(sig)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in _started:
        _started.remove(p)


def cleanup():
    for p in list(_started):
        stop(p, timeout=30)


def wait_port(port, proc, what, seconds=30):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode} at start")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start listening on {port}")


def proc_tree(pid):
    """pid and its descendants (nginx: master and workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def rss_kb(pids):
    return sum(rss_kib(p) or 0 for p in pids)


def cpu_seconds(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK


def wchar(pid):
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Monitor(threading.Thread):
    """Polls at 20 Hz while a case runs: the server's RSS (peak) and, when
    given, the bytes the load generator has written (PUT throughput)."""

    def __init__(self, server_pids, client_pid=None):
        super().__init__(daemon=True)
        self.server_pids, self.client_pid = server_pids, client_pid
        self.peak_kb = rss_kb(server_pids)
        self.written = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.peak_kb = max(self.peak_kb, rss_kb(self.server_pids))
            if self.client_pid:
                self.written = max(self.written, wchar(self.client_pid))
            self.halt.wait(0.05)

    def finish(self):
        self.halt.set()
        self.join()
        return self.peak_kb / 1024


# ------------------------------------------------------------------ servers

class Kura:
    name = "kura"

    def __init__(self, binary, work, audit):
        self.work = work
        cfg = work / "kura.ini"
        cfg.write_text("" if audit else "[audit]\nenabled = false\n")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, KURA_ROOT_ACCESS_KEY=AK, KURA_ROOT_SECRET_KEY=SK)
        self.logf = open(work / "kura.log", "wb")
        self.proc = spawn([binary, "server", "--data-dir", str(work / "data"),
                           "--listen", f"127.0.0.1:{self.port}", "--config", str(cfg)],
                          env=env, stdout=self.logf, stderr=self.logf)
        wait_port(self.port, self.proc, "kura")
        self.s3 = s3_client(self.endpoint)

    def pids(self):
        return [self.proc.pid]

    def get_target(self, bucket, key):
        return self._presign("get_object", {"Bucket": bucket, "Key": key})

    def put_target(self, bucket, key):
        return self._presign("put_object", {"Bucket": bucket, "Key": key})

    def list_target(self, bucket):
        return self._presign("list_objects_v2", {"Bucket": bucket, "MaxKeys": 1000})

    def _presign(self, op, params):
        u = self.s3.generate_presigned_url(op, Params=params, ExpiresIn=6 * 3600)
        return u[len(self.endpoint):]

    def stop(self):
        stop(self.proc)
        self.logf.close()


class Nginx:
    name = "nginx"

    def __init__(self, work):
        self.work = work
        for d in ("docroot", "tmp", "logs"):
            (work / d).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        conf = (BENCH / "nginx" / "nginx.conf.in").read_text()
        user = "user root;" if os.geteuid() == 0 else ""
        conf = (conf.replace("@WORK@", str(work)).replace("@PORT@", str(self.port))
                .replace("@USER@", user))
        (work / "nginx.conf").write_text(conf)
        self.proc = spawn(["/usr/sbin/nginx", "-p", str(work), "-e", str(work / "error.log"),
                           "-c", str(work / "nginx.conf")],
                          stdout=subprocess.DEVNULL, stderr=open(work / "stderr.log", "wb"))
        wait_port(self.port, self.proc, "nginx")

    def pids(self):
        return proc_tree(self.proc.pid)

    def path(self, bucket, key):
        return f"/{bucket}/{key}"

    def get_target(self, bucket, key):
        return self.path(bucket, key)

    put_target = get_target

    def list_target(self, bucket):
        return f"/{bucket}/"

    def stop(self):
        stop(self.proc, sig=signal.SIGTERM)


# -------------------------------------------------------------------- setup

def populate(kura, nginx, sizes):
    """The same bytes into kura (boto3 PUTs) and nginx's document root."""
    def put(args):
        bucket, key, body = args
        kura.s3.put_object(Bucket=bucket, Key=key, Body=body)
        p = nginx.work / "docroot" / bucket / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)

    jobs = []
    for label, size in sizes:
        body = os.urandom(size)
        bucket = f"g{label.lower()}"
        kura.s3.create_bucket(Bucket=bucket)
        jobs += [(bucket, f"obj-{i:05d}", body) for i in range(GET_KEYS[label])]
    kura.s3.create_bucket(Bucket="put")
    kura.s3.create_bucket(Bucket="mix")
    body = os.urandom(MIX_SIZE)
    jobs += [("mix", f"get-{i:05d}", body) for i in range(MIX_KEYS)]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        list(ex.map(put, jobs))


def write_list(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# ------------------------------------------------------------------- wrk run

def run_wrk(server, work, name, seconds, conns, gets=(), puts=(), put_frac=0.0,
            body=0):
    """One wrk run against one server; returns the case's figures."""
    gl = write_list(work / f"{name}-{server.name}.get", gets) if gets else "-"
    pl = write_list(work / f"{name}-{server.name}.put", puts) if puts else "-"
    os.sync()  # earlier PUTs' dirty pages must not be flushed inside this case
    threads = 1 if conns < 2 else 2
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "120s",
           "-s", str(BENCH / "bench.lua"), server.endpoint, "--",
           gl, pl, str(put_frac), str(body)]
    pids = server.pids()
    cpu0 = cpu_seconds(pids)
    perf = None
    if PERF_DIR and server.name == "kura":
        # System-wide: `perf record -p` misses the threads libmicrohttpd
        # starts per connection.  Read with `perf report --pid PID`.
        perf = spawn(["perf", "record", "-q", "-F", "499", "-g", "-a",
                      "-o", str(PERF_DIR / f"{name}-kura{server.proc.pid}.perf")],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mon = Monitor(pids, p.pid)
    mon.start()
    out, errout = p.communicate()
    _started.remove(p)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    peak = mon.finish()
    if perf:
        stop(perf, sig=signal.SIGINT)
    cpu = cpu_seconds(pids) - cpu0
    m = re.search(r"^WRKJSON (\{.*\})$", out, re.M)
    if not m:
        raise RuntimeError(f"wrk failed for {name} on {server.name}: {out}\n{errout}")
    j = json.loads(m.group(1))
    dur = j["duration_us"] / 1e6
    written = mon.written if puts and put_frac > 0 else 0
    wire = (j["bytes"] if gets and put_frac < 1 else 0) + written
    errors = j["connect"] + j["read"] + j["write"] + j["status"] + j["timeout"]
    nan = float("nan")  # no request completed: no latency to report
    return {"rps": j["requests"] / dur, "mbps": wire / dur / 1e6,
            "p50_ms": j["p50_us"] / 1000 if j["requests"] else nan,
            "p99_ms": j["p99_us"] / 1000 if j["requests"] else nan,
            "rss_peak_mb": peak, "cpu_s": cpu,
            "cpu_ns_per_byte": cpu * 1e9 / wire if wire else float("nan"),
            "errors": errors, "requests": j["requests"], "seconds": dur,
            "client_cpu_s": client_cpu}


# --------------------------------------------------------------- references

def openssl_speed(decrypt, seconds, alg="aes-256-gcm"):
    cmd = ["openssl", "speed", "-evp", alg, "-bytes", "16384",
           "-seconds", str(seconds), "-mr"]
    if decrypt:
        cmd.insert(4, "-decrypt")
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    m = re.search(r"^\+F:\d+:[^:]+:([\d.]+)", out, re.M)
    return float(m.group(1)) if m else float("nan")  # bytes per CPU second


def dd_write(work, mib, flag):
    path = work / "dd.bin"
    cmd = ["dd", "if=/dev/zero", f"of={path}", "bs=4M", f"count={mib // 4}", flag]
    r = subprocess.run(cmd, capture_output=True, text=True)
    path.unlink(missing_ok=True)
    m = re.search(r"^(\d+) bytes .* copied, ([\d.]+) s", r.stderr, re.M)
    return int(m.group(1)) / float(m.group(2)) / 1e6 if m else float("nan")


# ---------------------------------------------------------------- multipart

def big_file(work, mib):
    path = work / "big.bin"
    chunk = os.urandom(64 * MiB if mib >= 64 else mib * MiB)
    with open(path, "wb") as f:
        for _ in range(max(1, mib // 64)):
            f.write(chunk)
    return path


def curl_put(url, path):
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", "Expect:", "-T", str(path),
                        "-w", "%{http_code} %{time_total}", url],
                       capture_output=True, text=True)
    code, t = r.stdout.split()
    return int(code), float(t)


def timed(server, fn):
    """Run fn() while monitoring the server; (seconds, peak MB, cpu s, result)."""
    pids = server.pids()
    cpu0 = cpu_seconds(pids)
    mon = Monitor(pids)
    mon.start()
    t0 = time.monotonic()
    try:
        res = fn()
    finally:
        secs = time.monotonic() - t0
        peak = mon.finish()
    return secs, peak, cpu_seconds(pids) - cpu0, res


def multipart_cases(kura, nginx, work, mib):
    path = big_file(work, mib)
    size = path.stat().st_size
    rows = []
    os.sync()
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=64 * MiB,
                         max_concurrency=4)
    secs, peak, cpu, _ = timed(kura, lambda: kura.s3.upload_file(
        str(path), "put", "big-multipart", Config=cfg))
    rows.append(("MPU", "kura", secs, peak, cpu, 0))
    os.sync()
    url = kura.endpoint + kura.put_target("put", "big-single")
    secs, peak, cpu, (code, _) = timed(kura, lambda: curl_put(url, path))
    rows.append(("PUT-1G", "kura", secs, peak, cpu, int(code != 200)))
    os.sync()
    url = nginx.endpoint + "/put/big-single"
    secs, peak, cpu, (code, _) = timed(nginx, lambda: curl_put(url, path))
    rows.append(("PUT-1G", "nginx", secs, peak, cpu, int(code not in (200, 201, 204))))
    path.unlink()
    out = {}
    for case, server, secs, peak, cpu, err in rows:
        out[(case, server)] = {"rps": 1 / secs, "mbps": size / secs / 1e6,
                               "p50_ms": secs * 1000, "p99_ms": secs * 1000,
                               "rss_peak_mb": peak, "cpu_s": cpu,
                               "cpu_ns_per_byte": cpu * 1e9 / size, "errors": err}
    return out, size


# --------------------------------------------------------------------- main

def fmt(v, nd=1):
    if v != v:  # nan
        return "-"
    return f"{v:.{nd}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="short runs, 1 and 16 connections, 256 MiB upload")
    ap.add_argument("--seconds", type=float, default=None,
                    help="seconds per wrk run, twice that for 64 MiB objects "
                         "(default 5, --quick 2)")
    ap.add_argument("--audit", choices=("on", "off"), default="on")
    ap.add_argument("--kura", default=str(ROOT / "build" / "kura"))
    ap.add_argument("--perf", metavar="DIR",
                    help="record `perf record -a -g` per kura wrk case into DIR/CASE-kuraPID.perf "
                         "(costs some CPU: figures are then not comparable)")
    ap.add_argument("--only", default="GET,PUT,LIST,MIX,MPU",
                    help="comma-separated subset of GET,PUT,LIST,MIX,MPU")
    a = ap.parse_args()
    seconds = a.seconds or (2 if a.quick else 5)
    conns_list = [1, 16] if a.quick else [1, 16, 64]
    big_mib = 256 if a.quick else 1024
    only = set(a.only.upper().split(","))
    sec_arg = f"{seconds:g}"
    if a.perf:
        global PERF_DIR
        PERF_DIR = Path(a.perf).resolve()
        PERF_DIR.mkdir(parents=True, exist_ok=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    t_start = time.monotonic()
    results = {}    # (case, size, conns) -> {server: figures}
    with tempfile.TemporaryDirectory(prefix="kura-bench-") as tmp:
        work = Path(tmp)
        (work / "kura").mkdir()
        (work / "nginx").mkdir()
        kura = nginx = None
        try:
            log(f"references: openssl speed, dd ({big_mib} MiB), fdatasync probe")
            ossl_enc = openssl_speed(False, 2)
            ossl_dec = openssl_speed(True, 2)
            ossl_md5 = openssl_speed(False, 2, "md5")
            dd_sync = dd_write(work, big_mib, "conv=fdatasync")
            dd_direct = dd_write(work, big_mib, "oflag=direct")
            syncs = fdatasync_rate(work)

            kura = Kura(a.kura, work / "kura", a.audit == "on")
            nginx = Nginx(work / "nginx")
            time.sleep(1.0)
            idle_rss = rss_kb(kura.pids()) / 1024
            log(f"kura pid {kura.proc.pid} idle RSS {idle_rss:.1f} MiB; "
                f"nginx pid {nginx.proc.pid}; populating")
            populate(kura, nginx, SIZES)
            for d in ("put", "mix"):
                (nginx.work / "docroot" / d).mkdir(exist_ok=True)

            servers = (kura, nginx)
            for method in ("GET", "PUT"):
                if method not in only:
                    continue
                for label, size in SIZES:
                    for c in conns_list:
                        name = f"{method}-{label}-c{c}"
                        # 64 MiB requests take seconds each at 64 connections:
                        # twice the time, so that several complete.
                        secs = f"{seconds * (2 if size >= 64 * MiB else 1):g}"
                        row = results[(method, label, c)] = {}
                        for srv in servers:
                            if method == "GET":
                                keys = [f"obj-{i:05d}" for i in range(GET_KEYS[label])]
                                tg = [srv.get_target(f"g{label.lower()}", k) for k in keys]
                                row[srv.name] = run_wrk(srv, work, name, secs, c, gets=tg)
                            else:
                                keys = [f"{label}-c{c}/k{i:05d}" for i in range(PUT_KEYS[label])]
                                tp = [srv.put_target("put", k) for k in keys]
                                row[srv.name] = run_wrk(srv, work, name, secs, c, puts=tp,
                                                        put_frac=1.0, body=size)
                        log(f"{name}: kura {row['kura']['mbps']:.1f} MB/s "
                            f"{row['kura']['rps']:.0f} req/s, nginx "
                            f"{row['nginx']['mbps']:.1f} MB/s {row['nginx']['rps']:.0f} req/s")
            if "LIST" in only:
                row = results[("LIST", "1000", 16)] = {}
                for srv in servers:
                    row[srv.name] = run_wrk(srv, work, "LIST", sec_arg, 16,
                                            gets=[srv.list_target("g4k")])
                log(f"LIST: kura {row['kura']['rps']:.0f} req/s, nginx {row['nginx']['rps']:.0f}")
            if "MIX" in only:
                row = results[("MIX", "64K", 16)] = {}
                for srv in servers:
                    tg = [srv.get_target("mix", f"get-{i:05d}") for i in range(MIX_KEYS)]
                    tp = [srv.put_target("mix", f"put-{i:05d}") for i in range(MIX_KEYS)]
                    row[srv.name] = run_wrk(srv, work, "MIX", sec_arg, 16, gets=tg, puts=tp,
                                            put_frac=MIX_PUT, body=MIX_SIZE)
                log(f"MIX: kura {row['kura']['rps']:.0f} req/s, nginx {row['nginx']['rps']:.0f}")
            big = 0
            if "MPU" in only:
                log(f"multipart upload of {big_mib} MiB, single {big_mib} MiB PUTs")
                mp, big = multipart_cases(kura, nginx, work, big_mib)
                lab = f"{big_mib // 1024}G" if big_mib >= 1024 else f"{big_mib}M"
                results[("MPU", lab, 4)] = {"kura": mp[("MPU", "kura")],
                                            "nginx": mp[("PUT-1G", "nginx")]}
                results[("PUT-1REQ", lab, 1)] = {"kura": mp[("PUT-1G", "kura")],
                                                 "nginx": mp[("PUT-1G", "nginx")]}
            time.sleep(1.0)
            idle_after = rss_kb(kura.pids()) / 1024
        finally:
            for s in (kura, nginx):
                if s is not None:
                    s.stop()
            cleanup()

    report(results, a, seconds, ossl_enc, ossl_dec, ossl_md5, dd_sync, dd_direct, syncs,
           idle_rss, idle_after, time.monotonic() - t_start)


def limits(results, a, ossl_enc, ossl_dec, ossl_md5, dd_sync, syncs):
    """Why the targets kura misses are out of reach here, each with the
    limit measured in this run."""
    out = []
    get4 = results.get(("GET", "4K", 16))
    if get4:
        k, n = get4["kura"], get4["nginx"]
        per_k = k["cpu_s"] / max(k["requests"], 1) * 1e6
        per_n = n["cpu_s"] / max(n["requests"], 1) * 1e6
        out.append(f"4 KiB GET: server CPU per request {per_k:.0f} µs for kura against "
                   f"{per_n:.0f} µs for nginx (16 connections): SigV4 (five HMACs), an "
                   f"access-key and an object lookup in SQLite, opening the blob, unwrapping "
                   f"its key and decrypting, one thread per connection; on two cores "
                   f"shared with the load generator, CPU per request sets the rate")
    if a.audit == "on":
        out.append(f"4 KiB GET: each response waits for its audit record's fdatasync "
                   f"(nothing acknowledged is lost); this disk does {syncs:.0f} single "
                   f"fdatasync/s, group commit shares one among concurrent requests; "
                   f"`--audit off` shows the request path without it")
    out.append("4 KiB PUT: durable before the answer — blob fsync, staging directory "
               "fsync, SQLite WAL commit, shard directory fsync after the rename"
               + (", audit record" if a.audit == "on" else "")
               + f" — against none for nginx dav; single fdatasync/s here: {syncs:.0f}")
    out.append(f"64 MiB PUT: every byte is hashed for the S3 ETag (MD5 of the content, "
               f"{ossl_md5 / 1e6:.0f} MB/s per CPU-second = {1e9 / ossl_md5:.2f} ns/B, "
               f"{ossl_enc / ossl_md5:.1f}x the AES-GCM encryption), encrypted and "
               f"fsynced; the disk's fdatasync'ed streaming rate is {dd_sync:.0f} MB/s, "
               f"while nginx's PUT ends in the page cache")
    get64 = results.get(("GET", "64M", 16))
    if get64:
        k, n = get64["kura"]["cpu_ns_per_byte"], get64["nginx"]["cpu_ns_per_byte"]
        out.append(f"64 MiB GET CPU: decryption alone is {1e9 / ossl_dec:.3f} ns/B; kura "
                   f"spends {k:.3f} ns/B — the rest is the kernel's two copies of every "
                   f"byte (pread of ciphertext from the page cache, send into the socket) "
                   f"that encryption at rest makes unavoidable (no sendfile); nginx's "
                   f"sendfile delivery alone costs {n:.3f} ns/B here")
    return out


def report(results, a, seconds, ossl_enc, ossl_dec, ossl_md5, dd_sync, dd_direct, syncs,
           idle_rss, idle_after, elapsed):
    nan = float("nan")
    lines, summary = [], []
    hdr = (f"{'case':8} {'size':>5} {'conns':>5} | {'kura req/s':>10} {'MB/s':>8} "
           f"{'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'ns/B':>6} | "
           f"{'nginx req/s':>11} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} | "
           f"{'ratio':>5} {'target':>6} {'met':>4}")
    print()
    print(f"kura {a.kura} audit={a.audit} seconds/run={seconds:g}"
          f"{' quick' if a.quick else ''}; machine shared, figures noisy")
    print(hdr)
    print("-" * len(hdr))
    for (case, size, conns), row in results.items():
        k, n = row["kura"], row["nginx"]
        tgt = TARGETS.get((case, size))
        metric = tgt[0] if tgt else ("rps" if size in ("4K", "1000") else "mbps")
        ratio = k[metric] / n[metric] if n[metric] else float("nan")
        met = "-"
        if tgt:
            met = "yes" if ratio >= tgt[1] else "no"
            summary.append((f"{case} {size} c{conns} >= {tgt[1]} x nginx {metric} "
                            f"({tgt[2]})", ratio, met))
        print(f"{case:8} {size:>5} {conns:>5} | {fmt(k['rps']):>10} {fmt(k['mbps']):>8} "
              f"{fmt(k['p50_ms'], 2):>8} {fmt(k['p99_ms'], 2):>8} {fmt(k['rss_peak_mb']):>8} "
              f"{fmt(k['cpu_ns_per_byte'], 2):>6} | {fmt(n['rps']):>11} {fmt(n['mbps']):>8} "
              f"{fmt(n['p50_ms'], 2):>8} {fmt(n['p99_ms'], 2):>8} | {fmt(ratio, 2):>5} "
              f"{(str(tgt[1]) if tgt else '-'):>6} {met:>4}"
              + (f"  errors kura={k['errors']} nginx={n['errors']}"
                 if k["errors"] or n["errors"] else ""))
        for srv, f in (("kura", k), ("nginx", n)):
            line = (f"BENCH case={case} size={size} conns={conns} server={srv} "
                    f"rps={f['rps']:.1f} mbps={f['mbps']:.1f} p50_ms={f['p50_ms']:.2f} "
                    f"p99_ms={f['p99_ms']:.2f} rss_peak_mb={f['rss_peak_mb']:.1f} "
                    f"cpu_ns_per_byte={f['cpu_ns_per_byte']:.3f} "
                    f"server_cpu_s={f['cpu_s']:.2f} client_cpu_s={f.get('client_cpu_s', nan):.2f} "
                    f"errors={f['errors']}")
            if srv == "kura":
                line += (f" ratio_to_nginx={ratio:.3f} metric={metric}"
                         + (f" target={tgt[1]} met={met}" if tgt else ""))
            lines.append(line)

    # RSS, CPU per byte
    put64 = results.get(("PUT", "64M", 64)) or results.get(("PUT", "64M", 16))
    if put64:
        peak = put64["kura"]["rss_peak_mb"]
        summary.append((f"peak RSS, 64 MiB PUTs at {64 if ('PUT', '64M', 64) in results else 16}"
                        f" conns < {RSS_PUT_LIMIT_MB} MiB", peak,
                        "yes" if peak < RSS_PUT_LIMIT_MB else "no"))
    summary.append((f"idle RSS after start < {RSS_IDLE_LIMIT_MB} MiB", idle_rss,
                    "yes" if idle_rss < RSS_IDLE_LIMIT_MB else "no"))
    dec_ns = 1e9 / ossl_dec
    get64 = results.get(("GET", "64M", 16))
    cpu_ratio = float("nan")
    if get64:
        cpu_ratio = get64["kura"]["cpu_ns_per_byte"] / dec_ns
        summary.append((f"64 MiB GET (16 conns) CPU/byte <= {CPU_RATIO_LIMIT} x openssl "
                        f"decrypt ({get64['kura']['cpu_ns_per_byte']:.3f} vs {dec_ns:.3f} ns/B)",
                        cpu_ratio, "yes" if cpu_ratio <= CPU_RATIO_LIMIT else "no"))
    print()
    print(f"references: openssl aes-256-gcm 16 KiB: encrypt {ossl_enc / 1e6:.0f} MB/s, "
          f"decrypt {ossl_dec / 1e6:.0f} MB/s per CPU-second "
          f"({1e9 / ossl_enc:.3f} / {dec_ns:.3f} ns/B); md5 {ossl_md5 / 1e6:.0f} MB/s; "
          f"disk: dd conv=fdatasync {dd_sync:.0f} MB/s, oflag=direct {dd_direct:.0f} MB/s, "
          f"{syncs:.0f} fdatasync/s")
    print(f"kura idle RSS: {idle_rss:.1f} MiB after start, {idle_after:.1f} MiB after the run")
    print("notes: nginx PUT (dav) does not fsync, kura fsyncs every PUT (object + metadata) "
          "before answering;")
    print(f"       kura audit log {a.audit}"
          + (" (shipped default): every request's record is fdatasync'ed (group commit) "
             "before its response" if a.audit == "on" else " (not the shipped default)"))
    print("       MPU = boto3 multipart (64 MiB parts, 4 at a time) vs a single nginx PUT; "
          "PUT-1REQ = one curl PUT each; ns/B = server CPU time per byte moved")
    print()
    print("targets:")
    for what, val, met in summary:
        print(f"  {'MET   ' if met == 'yes' else 'MISSED'} {what}: {val:.2f}")
    nmet = sum(1 for s in summary if s[2] == "yes")
    if nmet < len(summary):
        print()
        print("limits (measured in this run; docs/PERFORMANCE.md explains them):")
        for why in limits(results, a, ossl_enc, ossl_dec, ossl_md5, dd_sync, syncs):
            print(f"  - {why}")
    lines.append(f"BENCH case=openssl-aes-256-gcm bytes=16384 enc_mbps={ossl_enc / 1e6:.0f} "
                 f"dec_mbps={ossl_dec / 1e6:.0f} dec_ns_per_byte={dec_ns:.4f}")
    lines.append(f"BENCH case=openssl-md5 bytes=16384 mbps={ossl_md5 / 1e6:.0f}")
    lines.append(f"BENCH case=disk dd_fdatasync_mbps={dd_sync:.0f} dd_direct_mbps={dd_direct:.0f} "
                 f"fdatasync_per_s={syncs:.0f}")
    lines.append(f"BENCH case=idle-rss server=kura rss_mb={idle_rss:.1f} "
                 f"after_run_mb={idle_after:.1f} target={RSS_IDLE_LIMIT_MB} "
                 f"met={'yes' if idle_rss < RSS_IDLE_LIMIT_MB else 'no'}")
    if put64:
        lines.append(f"BENCH case=put-rss size=64M server=kura rss_peak_mb={peak:.1f} "
                     f"target={RSS_PUT_LIMIT_MB} met={'yes' if peak < RSS_PUT_LIMIT_MB else 'no'}")
    if get64:
        lines.append(f"BENCH case=cpu-per-byte size=64M conns=16 server=kura "
                     f"kura_ns_per_byte={get64['kura']['cpu_ns_per_byte']:.4f} "
                     f"openssl_dec_ns_per_byte={dec_ns:.4f} ratio={cpu_ratio:.3f} "
                     f"target={CPU_RATIO_LIMIT} met={'yes' if cpu_ratio <= CPU_RATIO_LIMIT else 'no'}")
    lines.append(f"BENCH summary targets_met={nmet}/{len(summary)} audit={a.audit} "
                 f"seconds={seconds:g} elapsed_s={elapsed:.0f}")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        cleanup()
        sys.exit("interrupted; servers stopped")

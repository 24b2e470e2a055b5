"""A throwaway single-host Ceph cluster with a RADOS Gateway, for testing
kura's remote S3 store against an S3 service that is not kura (issue 13).

Debian 12's Ceph 16.2.15 (packages ceph-mon, ceph-osd, radosgw; their
dependency ceph-common brings the `ceph` command and radosgw-admin).
Everything lives in one temporary directory and listens on 127.0.0.1 only:

  ceph.conf   its own fsid, auth none, pool size 1, small pg counts, every
              path (mon/osd data, run dir, admin sockets, logs) inside the
              directory
  mon.a       ceph-mon -f, msgr2 and msgr1 on two free ports
  osd.0       ceph-osd -f on memstore (RAM, 1 GiB cap): no disk set-up,
              nothing to clean up but the process
  rgw         radosgw -f, `rgw frontends = beast endpoint=127.0.0.1:PORT`
              (and ssl_endpoint=127.0.0.1:PORT2 with a certificate given);
              it makes its own pools (.rgw.root, default.rgw.*) at first
              start
  user        `radosgw-admin user create` (keys from its JSON)

No mgr: RADOS and RGW work without one (the health is HEALTH_WARN for
that, which nothing here reads).  Every daemon runs in the foreground as a
child of this process, so teardown kills exactly the PIDs started here
(SIGTERM, then SIGKILL) and removes the directory if it made it (a
directory given to it, a pytest tmp dir, is kept with the logs).

    with ceph_rgw.cluster() as rgw:
        rgw.endpoint, rgw.access_key, rgw.secret_key, rgw.client()
        rgw.timings   {"mon": s, "osd": s, "rgw": s, "user": s, "total": s}

Run as a script it starts a cluster, makes a bucket with boto3, puts and
gets an object, tears everything down and prints the timings.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph",
            "monmaptool")
START_TIMEOUT = float(os.environ.get("KURA_RGW_START_TIMEOUT", "120"))
REGION = "us-east-1"


class CephError(Exception):
    pass


def missing_binaries():
    return [b for b in BINARIES if shutil.which(b) is None]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


CONF = """\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon2},v1:127.0.0.1:{mon1}]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
run dir = {dir}/run
admin socket = {dir}/run/$name.asok
pid file = {dir}/run/$name.pid
log file = {dir}/log/$name.log
keyring = {dir}/keyring
erasure code dir = /usr/lib/x86_64-linux-gnu/ceph/erasure-code
osd class dir = /usr/lib/x86_64-linux-gnu/rados-classes
debug ms = 0
crash dir = {dir}/crash

[mon]
mon data = {dir}/mon/$cluster-$id

[osd]
osd data = {dir}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = 1073741824
osd max object name len = 256
osd max object namespace len = 64
osd memory target = 536870912

[client.rgw]
; radosgw defaults to ms_mon_client_mode = secure, which auth none cannot
; give (it then fails every mon connection with -13)
ms mon client mode = crc
rgw data = {dir}/rgw
rgw frontends = beast endpoint=127.0.0.1:{rgw}{tls}
rgw thread pool size = 64
rgw gc processor period = 5
rgw gc obj min wait = 5
rgw dns name = 127.0.0.1
"""


class Cluster:
    """One throwaway cluster; use cluster() (a context manager)."""

    def __init__(self, workdir=None, tls=None):
        """tls: (certificate file, key file) for a second, https listener
        (beast's ssl_endpoint) at https_endpoint."""
        self.own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="kura-ceph-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fsid = str(uuid.uuid4())
        self.ports = {"mon2": free_port(), "mon1": free_port(),
                      "rgw": free_port()}
        self.conf = self.dir / "ceph.conf"
        self.procs = {}     # name -> Popen
        self.timings = {}
        self.endpoint = f"http://127.0.0.1:{self.ports['rgw']}"
        self.tls = tls
        self.https_endpoint = None
        if tls:
            self.ports["rgw_tls"] = free_port()
            self.https_endpoint = f"https://127.0.0.1:{self.ports['rgw_tls']}"
        self.access_key = None
        self.secret_key = None
        self.region = REGION

    # -- running things -------------------------------------------------

    def run(self, *args, timeout=60, check=True):
        r = subprocess.run([*map(str, args)], capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL,
                           cwd=self.dir, env=self._env())
        if check and r.returncode != 0:
            raise CephError(f"{' '.join(map(str, args))} -> {r.returncode}:"
                            f"\n{r.stdout}\n{r.stderr}")
        return r

    def ceph(self, *args, timeout=60):
        """`ceph -c CONF ARGS --format json`, parsed (None if no output)."""
        r = self.run("ceph", "-c", self.conf, "--connect-timeout", "20",
                     *args, "--format", "json", timeout=timeout)
        return json.loads(r.stdout) if r.stdout.strip() else None

    def _env(self):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": str(self.dir), "CEPH_CONF": str(self.conf)}
        return env

    def spawn(self, name, *args):
        log = open(self.dir / "log" / f"{name}.out", "wb")
        try:
            self.procs[name] = subprocess.Popen(
                [*map(str, args)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.dir, env=self._env())
        finally:
            log.close()

    def alive(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            raise CephError(f"{name} exited ({p.returncode if p else '-'})"
                            f"\n{self.log_tail(name)}")

    def log_tail(self, name, n=30):
        out = []
        for f in (self.dir / "log" / f"{name}.out",
                  self.dir / "log" / f"{self.daemon_name(name)}.log"):
            if f.exists():
                lines = f.read_text(errors="replace").splitlines()[-n:]
                out.append(f"--- {f} ---\n" + "\n".join(lines))
        return "\n".join(out)

    @staticmethod
    def daemon_name(name):
        return {"mon": "mon.a", "osd": "osd.0", "rgw": "client.rgw"}.get(
            name, name)

    def wait(self, what, cond, name, timeout=START_TIMEOUT, interval=0.2):
        deadline = time.monotonic() + timeout
        while True:
            self.alive(name)
            try:
                if cond():
                    return
            except (CephError, subprocess.TimeoutExpired, ValueError):
                pass
            if time.monotonic() > deadline:
                raise CephError(f"{what}: not within {timeout:.0f} s\n"
                                f"{self.log_tail(name)}")
            time.sleep(interval)

    # -- start-up -------------------------------------------------------

    def start(self):
        t0 = time.monotonic()
        for d in ("run", "log", "mon", "osd/ceph-0", "rgw", "crash"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        tls = ""
        if self.tls:
            tls = (f" ssl_endpoint=127.0.0.1:{self.ports['rgw_tls']}"
                   f" ssl_certificate={self.tls[0]}"
                   f" ssl_private_key={self.tls[1]}")
        self.conf.write_text(CONF.format(fsid=self.fsid, dir=self.dir,
                                         tls=tls, **self.ports))
        (self.dir / "keyring").write_text("")
        # mon
        monmap = self.dir / "monmap"
        self.run("monmaptool", "--create", "--fsid", self.fsid,
                 "--addv", "a", f"[v2:127.0.0.1:{self.ports['mon2']},"
                 f"v1:127.0.0.1:{self.ports['mon1']}]",
                 "--enable-all-features", "--set-min-mon-release", "pacific",
                 monmap)
        self.run("ceph-mon", "-c", self.conf, "--mkfs", "-i", "a",
                 "--monmap", monmap)
        self.spawn("mon", "ceph-mon", "-c", self.conf, "-i", "a", "-f")
        self.wait("mon", lambda: self.ceph("mon", "stat", timeout=30), "mon")
        t1 = time.monotonic()
        self.timings["mon"] = t1 - t0
        # osd
        osd_uuid = str(uuid.uuid4())
        osd_id = self.run("ceph", "-c", self.conf, "osd", "new",
                          osd_uuid).stdout.strip()
        if osd_id != "0":
            raise CephError(f"ceph osd new -> {osd_id!r}, expected 0")
        self.run("ceph-osd", "-c", self.conf, "-i", "0", "--mkfs",
                 "--osd-uuid", osd_uuid)
        self.spawn("osd", "ceph-osd", "-c", self.conf, "-i", "0", "-f")

        def osd_up():
            st = self.ceph("osd", "stat")
            return st.get("num_up_osds") == 1 and st.get("num_in_osds") == 1
        self.wait("osd.0 up", osd_up, "osd")
        t2 = time.monotonic()
        self.timings["osd"] = t2 - t1
        # rgw
        self.spawn("rgw", "radosgw", "-c", self.conf, "-n", "client.rgw",
                   "-f")
        self.wait("radosgw listening", lambda: self._rgw_answers(), "rgw")
        t3 = time.monotonic()
        self.timings["rgw"] = t3 - t2
        # user
        r = self.run("radosgw-admin", "-c", self.conf, "user", "create",
                     "--uid", "kura", "--display-name", "kura test",
                     timeout=60)
        keys = json.loads(r.stdout)["keys"][0]
        self.access_key, self.secret_key = keys["access_key"], \
            keys["secret_key"]
        t4 = time.monotonic()
        self.timings["user"] = t4 - t3
        self.timings["total"] = t4 - t0
        return self

    def _rgw_answers(self):
        """An anonymous GET / answered (any HTTP status) by beast."""
        if not listening(self.ports["rgw"]):
            return False
        with socket.create_connection(("127.0.0.1", self.ports["rgw"]),
                                      timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Connection: close\r\n\r\n")
            answer = b""
            while True:     # read to the end: no broken pipe in its log
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            return answer.startswith(b"HTTP/1.1 ")

    # -- clients --------------------------------------------------------

    def client(self, **config):
        """A boto3 client of the S3 user: SigV4, path style, us-east-1."""
        import boto3
        from botocore.config import Config
        cfg = Config(signature_version="s3v4",
                     s3={"addressing_style": "path"},
                     retries={"total_max_attempts": 1, "mode": "standard"},
                     connect_timeout=10, read_timeout=60, **config)
        return boto3.session.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region).client("s3", endpoint_url=self.endpoint,
                                            config=cfg)

    def names(self, bucket):
        out = []
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=bucket)
        for page in pages:
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def rgw_alive(self):
        p = self.procs.get("rgw")
        return p is not None and p.poll() is None

    # -- teardown -------------------------------------------------------

    def stop(self):
        """SIGTERM every daemon started here (rgw, osd, mon), SIGKILL what
        has not exited after 10 s; returns {name: exit status}."""
        t0 = time.monotonic()
        status = {}
        for name in ("rgw", "osd", "mon"):
            p = self.procs.get(name)
            if p is None:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            status[name] = p.returncode
        self.procs.clear()
        self.timings["stop"] = time.monotonic() - t0
        return status

    def remove(self):
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def cluster(workdir=None, keep=False, tls=None):
    """A started cluster; stopped (and its own temp dir removed unless
    keep) on exit, also when start-up fails."""
    c = Cluster(workdir, tls)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        if not keep:
            c.remove()


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", action="store_true",
                    help="keep the directory (logs) after teardown")
    args = ap.parse_args()
    missing = missing_binaries()
    if missing:
        raise SystemExit(f"missing: {' '.join(missing)}")
    t0 = time.monotonic()
    with cluster(keep=args.keep) as c:
        s3 = c.client()
        s3.create_bucket(Bucket="kura-smoke")
        s3.put_object(Bucket="kura-smoke", Key="k", Body=b"hello rgw")
        body = s3.get_object(Bucket="kura-smoke", Key="k")["Body"].read()
        assert body == b"hello rgw", body
        print(f"dir {c.dir}\nendpoint {c.endpoint}")
        timings = c.timings
    timings["all"] = time.monotonic() - t0
    print(" ".join(f"{k}={v:.1f}s" for k, v in timings.items()))


if __name__ == "__main__":
    main()

"""Harness for the placement / replication / location-evidence tests (issue
13; interfaces in the issue's shared spec): kura instances acting as remote
S3 backends, a local fs backend, and a gateway kura whose configuration
places data on them.

Topology (what `backends()` and `gateway()` build, all on 127.0.0.1):

  osaka     a plain kura server; tenant "osaka-gw" owns bucket "kura-dr";
            labels site osaka-1, region jp-west, jurisdiction JP
  virginia  the same, tenant "virginia-gw", objects under prefix "dr/";
            labels site us-east-dr, region us-east, jurisdiction US
  tokyo     an fs backend (a directory under tmp): tokyo-1, jp-east, JP
  vault     an fs backend dedicated to tenant "acme": vault-1, jp-east, JP
  gateway   kura with [backend.*] sections for the four, the policies of
            STANDARD_PLACEMENTS (default "jp2us"), keys in a SoftHSM2 token
            labelled JP (the seed-001 rule allows the US copy only so),
            [storage] replication_interval = 1 and scheduled scrubs off.

A remote's secret key is written to a 0600 file that the gateway's
configuration names (secret_key_file).  Remote.down() stops a remote for
an outage (KuraServer.stop()/start() keep its port and data).

CLI calls go through Gateway.cli(), which adds --data-dir and --config and
the token's environment (SOFTHSM2_CONF).
"""

import contextlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from conftest import (KuraServer, kura_bin, parse_credentials,
                      pick_free_port, run_cli, running_server, write_config)
from helpers import eventually
from providers import SoftHSM

DR_BUCKET = "kura-dr"
HEX32 = re.compile(r"[0-9a-f]{32}")
GOOD_STATES = ("stored", "verified")
MiB = 1024 * 1024

# name -> (site, region, jurisdiction, prefix)
REMOTE_LABELS = {
    "osaka": ("osaka-1", "jp-west", "JP", ""),
    "virginia": ("us-east-dr", "us-east", "US", "dr/"),
}
# name -> (site, region, jurisdiction, dedicated_to)
FS_LABELS = {
    "tokyo": ("tokyo-1", "jp-east", "JP", None),
    "vault": ("vault-1", "jp-east", "JP", "acme"),
}
DEDICATED_TENANT = "acme"

# name -> policy; the first is the default.
STANDARD_PLACEMENTS = {
    "jp2us": {"sync": ["tokyo", "osaka"], "async": ["virginia"],
              "jurisdictions": ["JP", "US"]},
    "japan": {"sync": ["tokyo", "osaka"], "jurisdictions": ["JP"]},
    "tokyo-only": {"sync": ["tokyo"]},
    "acme-vault": {"sync": ["vault"]},
}
DEFAULT_PLACEMENT = "jp2us"


# -- backends --------------------------------------------------------------------

class Remote:
    """A kura server acting as a remote S3 backend of the gateway."""

    type = "s3"

    def __init__(self, name, server, tenant, access_key, secret_key,
                 secret_file, site, region, jurisdiction, prefix=""):
        self.name = name
        self.server = server
        self.tenant = tenant
        self.access_key = access_key
        self.secret_key = secret_key
        self.secret_file = Path(secret_file)
        self.site = site
        self.region = region
        self.jurisdiction = jurisdiction
        self.prefix = prefix
        self.bucket = DR_BUCKET
        self.client = server.client(access_key, secret_key)

    def section(self, **override):
        """The [backend.NAME] section for a gateway configuration; keyword
        arguments replace or add keys (None drops one)."""
        keys = {
            "type": "s3",
            "endpoint": self.server.endpoint,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "access_key_id": self.access_key,
            "secret_key_file": str(self.secret_file),
            "part_size": "5M",
            "timeout": "5",
            "retries": "1",
            "site": self.site,
            "region": self.region,
            "jurisdiction": self.jurisdiction,
        }
        keys.update(override)
        if not keys.get("prefix"):
            keys.pop("prefix", None)
        return section(f"backend.{self.name}", keys)

    # -- outages --

    def stop(self):
        problems = self.server.stop()
        assert not problems, "\n".join(problems)

    def start(self):
        if not self.server.running:
            self.server.start()

    @contextlib.contextmanager
    def down(self):
        """The remote is stopped inside the block and started again after
        it (also when the block fails)."""
        self.stop()
        try:
            yield self
        finally:
            self.start()

    # -- what the remote holds --

    def names(self):
        """Every object name in the remote bucket (all pages)."""
        out = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket)
        for page in pages:
            out += [o["Key"] for o in page.get("Contents", [])]
        return out

    def name_of(self, blob_id):
        return self.prefix + blob_id

    def blob_ids(self):
        """{blob id: object name} of the names that have the blob form."""
        out = {}
        for n in self.names():
            if n.startswith(self.prefix) and \
                    HEX32.fullmatch(n[len(self.prefix):]):
                out[n[len(self.prefix):]] = n
        return out

    def has(self, blob_id):
        return blob_id in self.blob_ids()

    def read(self, blob_id):
        return self.client.get_object(Bucket=self.bucket,
                                      Key=self.name_of(blob_id))["Body"].read()

    def delete(self, blob_id):
        self.client.delete_object(Bucket=self.bucket, Key=self.name_of(blob_id))


class FsBackend:
    """A directory that the gateway uses as an fs backend."""

    type = "fs"

    def __init__(self, name, path, site, region, jurisdiction,
                 dedicated_to=None):
        self.name = name
        self.path = Path(path)
        self.site = site
        self.region = region
        self.jurisdiction = jurisdiction
        self.dedicated_to = dedicated_to

    def section(self, **override):
        keys = {"type": "fs", "path": str(self.path), "site": self.site,
                "region": self.region, "jurisdiction": self.jurisdiction,
                "dedicated_to": self.dedicated_to}
        keys.update(override)
        return section(f"backend.{self.name}", keys)

    def all_files(self):
        """Every regular file under the directory (staging included), as
        paths relative to it; lock files are not blobs and are left out."""
        out = set()
        if not self.path.exists():
            return out
        for p in self.path.rglob("*"):
            if p.is_file() and not p.name.endswith(".lock"):
                out.add(str(p.relative_to(self.path)))
        return out

    def blob_files(self):
        """{blob id: path} of published blob files (not staging)."""
        out = {}
        if not self.path.exists():
            return out
        for p in self.path.rglob("*"):
            rel = p.relative_to(self.path)
            if p.is_file() and HEX32.fullmatch(p.name) and \
                    "staging" not in rel.parts:
                out[p.name] = p
        return out

    def has(self, blob_id):
        return blob_id in self.blob_files()

    def read(self, blob_id):
        return self.blob_files()[blob_id].read_bytes()

    def flip_middle_byte(self, blob_id):
        """Corrupt the published copy of a blob in place: one bit of the
        byte in the middle of the file."""
        p = self.blob_files()[blob_id]
        data = bytearray(p.read_bytes())
        assert data, f"{p} is empty"
        i = len(data) // 2
        data[i] ^= 0x40
        mode = p.stat().st_mode
        os.chmod(p, 0o600)
        p.write_bytes(bytes(data))
        os.chmod(p, mode & 0o7777)
        return i


class Backends:
    """The four backends of the standard topology, by name."""

    def __init__(self, workdir, remotes, fs):
        self.workdir = Path(workdir)
        self.remotes = remotes
        self.fs = fs
        self.by_name = {**fs, **remotes}

    def __getattr__(self, name):
        try:
            return self.__dict__["by_name"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name):
        return self.by_name[name]

    def sections(self, only=None, **overrides):
        """Config text for every backend (or those in `only`);
        overrides: {backend name: {key: value}}."""
        return "".join(b.section(**overrides.get(n, {}))
                       for n, b in self.by_name.items()
                       if only is None or n in only)


@contextlib.contextmanager
def remote_backend(workdir, name, site, region, jurisdiction, prefix=""):
    """A kura server acting as a remote: a tenant of its own, bucket
    kura-dr made with that tenant's client, its secret in a 0600 file."""
    workdir = Path(workdir)
    with running_server(workdir / name) as server:
        tenant = f"{name}-gw"
        access, secret = server.add_tenant(tenant)
        client = server.client(access, secret)
        client.create_bucket(Bucket=DR_BUCKET)
        secret_file = workdir / f"{name}.secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        os.chmod(secret_file, 0o600)
        yield Remote(name, server, tenant, access, secret, secret_file,
                     site, region, jurisdiction, prefix)


@contextlib.contextmanager
def backends(workdir):
    """osaka and virginia (running remotes) and tokyo and vault (fs
    directories, created empty with mode 0700)."""
    workdir = Path(workdir)
    with contextlib.ExitStack() as stack:
        remotes = {}
        for name, (site, region, jur, prefix) in REMOTE_LABELS.items():
            remotes[name] = stack.enter_context(
                remote_backend(workdir, name, site, region, jur, prefix))
        fs = {}
        for name, (site, region, jur, dedicated) in FS_LABELS.items():
            path = workdir / f"fs-{name}"
            path.mkdir(mode=0o700)
            fs[name] = FsBackend(name, path, site, region, jur, dedicated)
        yield Backends(workdir, remotes, fs)


# -- configuration -----------------------------------------------------------------

def section(name, keys):
    lines = [f"[{name}]"]
    for k, v in keys.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            v = ",".join(v)
        lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


def placement_sections(placements):
    """[placement.NAME] sections from {name: {"sync": [...], "async": [...],
    "jurisdictions": [...], "foreign": "allow|forbid"}}."""
    return "".join(section(f"placement.{name}", dict(p))
                   for name, p in placements.items())


def gateway_config(bk, keys, placements=None, default=DEFAULT_PLACEMENT,
                   home="JP", backend_names=None, overrides=None, extra=""):
    """A gateway configuration: [server] home_jurisdiction, the [keys]
    text given, [storage] placement/replication_interval, [scrub]
    interval = 0, the backends' sections and the placements'."""
    placements = STANDARD_PLACEMENTS if placements is None else placements
    storage = {"replication_interval": 1}
    if default is not None:
        storage["placement"] = default
    return ("[server]\n" + f"home_jurisdiction = {home}\n" +
            keys +
            section("storage", storage) +
            section("scrub", {"interval": 0}) +
            bk.sections(backend_names, **(overrides or {})) +
            placement_sections(placements) + extra)


def hsm_keys(hsm, jurisdiction="JP"):
    """The [keys] section for a SoftHSM2 token, labelled with a
    jurisdiction (None: no label)."""
    text = hsm.config()
    if jurisdiction is not None:
        text += f"jurisdiction = {jurisdiction}\n"
    return text


def local_keys(jurisdiction="JP"):
    text = "[keys]\nprovider = local\n"
    if jurisdiction is not None:
        text += f"jurisdiction = {jurisdiction}\n"
    return text


# -- the gateway -------------------------------------------------------------------

class CliError(Exception):
    """A kura command failed (not an AssertionError: eventually() and
    wait_for() do not retry it, so a missing or broken command fails the
    test at once instead of after the whole wait)."""

class Gateway:
    """A gateway kura server with its configuration file and environment."""

    def __init__(self, server, config, env, backends):
        self.server = server
        self.config = Path(config)
        self.env = dict(env or {})
        self.bk = backends
        self.acme = None        # client of the tenant the vault is for

    @property
    def data_dir(self):
        return self.server.data_dir

    def client(self):
        return self.server.root_client()

    def cli(self, *args, timeout=120):
        """`kura ARGS --data-dir D --config F` with the token's environment;
        returns the CompletedProcess."""
        return run_cli(*args, "--data-dir", self.data_dir, "--config",
                       self.config, env={**os.environ, **self.env},
                       timeout=timeout)

    def cli_ok(self, *args, timeout=120):
        r = self.cli(*args, timeout=timeout)
        if r.returncode != 0:
            raise CliError(f"kura {' '.join(map(str, args))} -> "
                           f"{r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def cli_json(self, *args, timeout=120):
        r = self.cli_ok(*args, "--json", timeout=timeout)
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise CliError(f"kura {' '.join(map(str, args))} --json: "
                           f"not JSON ({e}):\n{r.stdout}") from None

    def locate(self, bucket, key, version=None):
        args = ["object", "locate", bucket, key]
        if version is not None:
            args += ["--version", version]
        return self.cli_json(*args)

    def bucket_locate(self, bucket):
        return self.cli_json("bucket", "locate", bucket)

    def status(self):
        return self.cli_json("status")

    def backend_status(self):
        """{backend name: entry} of `kura status --json`."""
        doc = self.status()
        return {b["backend"]: b for b in doc["backends"]}

    def scrub(self, bucket=None):
        """(exit status, summary) of `kura scrub [BUCKET] --json`."""
        args = ["scrub"] + ([bucket] if bucket else []) + ["--json"]
        r = self.cli(*args, timeout=300)
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            raise CliError(f"kura scrub --json -> {r.returncode}, "
                           f"not JSON:\n{r.stdout}\n{r.stderr}") from None
        return r.returncode, doc

    def new_tenant(self, name=None):
        """A client of a tenant added with `kura tenant add` (through the
        gateway's configuration: its keys are in the token)."""
        name = name or f"t-{os.urandom(3).hex()}"
        r = self.cli_ok("tenant", "add", name)
        access, secret = parse_credentials(r.stdout)
        client = self.server.client(access, secret)
        client.kura_tenant = name
        return client

    def crash_and_restart(self):
        """kill -9 the gateway and start it again (same port and data)."""
        self.server.kill9()
        self.server.start()


@contextlib.contextmanager
def gateway(workdir, bk, hsm, config_text=None):
    """A started gateway over the backends `bk`, keys in the SoftHSM2 token
    `hsm` (labelled JP) unless config_text is a whole configuration.  The
    tenant the vault is dedicated to ("acme") is added before the first
    start; gw.acme is its client."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    text = config_text or gateway_config(bk, hsm_keys(hsm))
    cfg = write_config(workdir, text, "gateway.ini")
    with running_server(workdir / "gw", config_file=cfg, env=hsm.env,
                        start=False) as server:
        gw = Gateway(server, cfg, hsm.env, bk)
        acme = gw.new_tenant(DEDICATED_TENANT)
        server.start()
        gw.acme = acme
        yield gw


@contextlib.contextmanager
def standard_gateway(workdir, bk):
    """(backends, token, gateway): the standard gateway over `bk`."""
    workdir = Path(workdir)
    hsm = SoftHSM(workdir / "hsm")
    with gateway(workdir / "gateway", bk, hsm) as gw:
        yield bk, hsm, gw


@contextlib.contextmanager
def standard_topology(workdir):
    """(backends, token, gateway) of the standard topology."""
    workdir = Path(workdir)
    with backends(workdir / "backends") as bk:
        with standard_gateway(workdir, bk) as t:
            yield t


# -- servers that must not start ---------------------------------------------------

class Refusal:
    def __init__(self, returncode, stderr, stdout):
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout

    @property
    def text(self):
        return self.stdout + self.stderr


def start_refused(workdir, config_text, env=None, timeout=30.0):
    """Start `kura server` with this configuration in a fresh data
    directory, expecting it to refuse: returns a Refusal (exit status and
    output).  A server that comes up (accepts connections) instead is
    killed and the test fails."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = write_config(workdir, config_text, "refused.ini")
    port = pick_free_port()
    srv = KuraServer(workdir, config=cfg)
    run_env = {**os.environ, **(env or {}),
               "KURA_ROOT_ACCESS_KEY": srv.access_key,
               "KURA_ROOT_SECRET_KEY": srv.secret_key}
    cmd = [str(kura_bin()), "server", "--data-dir", str(workdir / "data"),
           "--listen", f"127.0.0.1:{port}", "--config", str(cfg)]
    out, err = workdir / "refused.stdout", workdir / "refused.stderr"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=run_env,
                                stdin=subprocess.DEVNULL, cwd=workdir)
    deadline = time.monotonic() + timeout
    started = False
    while proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                started = True
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        text = err.read_text(errors="replace")
        raise AssertionError(
            ("server started (accepted connections)" if started else
             f"server neither exited nor listened within {timeout:.0f} s") +
            f" with configuration:\n{config_text}\n--- stderr ---\n{text}")
    return Refusal(proc.returncode, err.read_text(errors="replace"),
                   out.read_text(errors="replace"))


def check_config(workdir, config_text, env=None):
    """`kura check --config F --data-dir D` on this configuration."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = write_config(workdir, config_text, "check.ini")
    return run_cli("check", "--config", cfg, "--data-dir", workdir / "data",
                   env={**os.environ, **(env or {})})


# -- location documents ------------------------------------------------------------

def replicas(loc, part=None):
    """[(part_no, blob_id, {backend: replica})] of an `object locate`
    document (or only the part numbered `part`)."""
    out = []
    for p in loc["parts"]:
        if part is not None and p["part_no"] != part:
            continue
        out.append((p["part_no"], p["blob_id"],
                    {r["backend"]: r for r in p["replicas"]}))
    return out


def blob_ids(loc):
    return [p["blob_id"] for p in loc["parts"]]


def history_states(replica):
    return [h["state"] for h in replica.get("history", [])]


def states_on(loc, backend):
    """The state of the backend's replica of every part (None if absent)."""
    return [reps.get(backend, {}).get("state") for _, _, reps in replicas(loc)]


def wait_replicated(gw, bucket, keys, backend="virginia", timeout=60.0):
    """Wait until every part of every key has a stored or verified replica
    on `backend` (an object without parts has nothing to wait for);
    returns {key: locate document}."""
    def done():
        out = {}
        for k in keys:
            loc = gw.locate(bucket, k)
            st = states_on(loc, backend)
            assert all(s in GOOD_STATES for s in st), \
                f"{bucket}/{k} on {backend}: {st}"
            out[k] = loc
        return out
    return eventually(done, timeout=timeout, interval=0.5)


def put_multipart(client, bucket, key, data, part_size=8 * MiB):
    """Upload with boto3's transfer manager, multipart above 5 MiB."""
    cfg = TransferConfig(multipart_threshold=5 * MiB,
                         multipart_chunksize=part_size, max_concurrency=4,
                         use_threads=True)
    client.upload_fileobj(io.BytesIO(data), bucket, key, Config=cfg)


def unique(prefix):
    return f"{prefix}-{os.urandom(4).hex()}"

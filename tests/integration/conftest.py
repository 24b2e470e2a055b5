"""Fixtures for kura's integration tests: the real server binary, real clients.

The binary under test is $KURA_BIN (default build/kura, relative to the
repository root); scripts/run-tests.sh points it at the sanitizer build and
the normal build in turn.  Run by hand with:

    KURA_BIN=build-san/kura /usr/bin/python3 -m pytest tests/integration

Contract with the binary:
  kura server --data-dir DIR --listen 127.0.0.1:PORT [--config FILE]
      with KURA_ROOT_ACCESS_KEY / KURA_ROOT_SECRET_KEY in the environment
      (the root tenant's credentials on first start); ready when the port
      accepts connections; SIGTERM stops it cleanly with exit status 0.
  kura tenant add NAME --data-dir DIR
      prints AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... lines.
  Region us-east-1; path-style addressing.

Fixtures (all made by the factories below, which modules use too):
  free_port                     an unused TCP port on 127.0.0.1
  kura_server / kura_server_module
                                a running server (per test / per module)
  tls_server                    a running server whose listener speaks TLS
  s3 / s3_module                boto3 client of the root tenant
  aws / aws_module              runs the aws CLI against the server
  tenant / tenant_module        boto3 client of a freshly added tenant
  kura_cli                      runs `$KURA_BIN ARGS...` and returns the result

The factory (after git's t/test-lib.sh: one way to get a server):
  server_fixture(config, scope=, buckets=, objects=, tls=, env=)
                                a fixture yielding a started server with that
                                configuration text, those buckets and objects
  client_fixture / tenant_fixture / aws_fixture(server, scope=)
                                a client of the server fixture named `server`
  running_server(workdir, config, ...)
                                the same as a context manager, for a server a
                                test starts itself (start=False: not started)
  write_config(dir, text)       a configuration file for a CLI command

A module that needs another server defines its own fixture with the factory
(`srv = server_fixture("[limits]\nmax_object_size = 1M\n", scope="module")`)
and may override a shared fixture (`s3 = client_fixture("srv")`), but only
with the scope the shared one has: a fixture overriding another with a
different scope is a collection error (pytest_collection_modifyitems below).

Every server is stopped with SIGTERM at the end; a non-zero exit status or a
sanitizer report on its stderr fails the test that owned it.
"""

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import time
from pathlib import Path

import pytest

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
AWS_CLI = os.environ.get("AWS_CLI", "/usr/bin/aws")

# Lines a sanitizer writes when it finds a bug.
SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
)

# A sanitizer build must turn every finding into a failure that a test sees.
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")

# Keep the developer's own AWS configuration out of the tests.
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
             "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def kura_bin():
    """Absolute path of the binary under test ($KURA_BIN, default build/kura)."""
    p = Path(os.environ.get("KURA_BIN", "build/kura"))
    if not p.is_absolute():
        p = ROOT / p
    return p


def pytest_report_header(config):
    return f"kura binary: {kura_bin()}"


def _require_bin():
    b = kura_bin()
    if not b.is_file() or not os.access(b, os.X_OK):
        pytest.fail(f"kura binary {b} not found: build it first "
                    f"(make build, or make san for build-san/kura)",
                    pytrace=False)
    return b


def pick_free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_access_key():
    alphabet = string.ascii_uppercase + string.digits
    return "KT" + "".join(secrets.choice(alphabet) for _ in range(18))


def random_secret_key():
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(secrets.choice(alphabet) for _ in range(40))


def sanitizer_lines(text):
    return [line for line in text.splitlines()
            if any(p in line for p in SANITIZER_PATTERNS)]


def run_cli(*args, timeout=60, env=None):
    """Run `$KURA_BIN args...`; returns the CompletedProcess (text)."""
    b = _require_bin()
    return subprocess.run([str(b), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def parse_credentials(output):
    """(access_key, secret_key) from AWS_ACCESS_KEY_ID=/AWS_SECRET_ACCESS_KEY= lines."""
    found = {}
    for line in output.splitlines():
        m = re.match(r"\s*(?:export\s+)?(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)=(\S+)",
                     line)
        if m:
            found[m.group(1)] = m.group(2).strip("'\"")
    if "AWS_ACCESS_KEY_ID" not in found or "AWS_SECRET_ACCESS_KEY" not in found:
        raise AssertionError(f"no credentials in output:\n{output}")
    return found["AWS_ACCESS_KEY_ID"], found["AWS_SECRET_ACCESS_KEY"]


class KuraServer:
    """One kura server process on 127.0.0.1, restartable on the same port
    and data directory.  Logs of every incarnation are kept in workdir."""

    def __init__(self, workdir, config=None, extra_args=(), env=None):
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.port = pick_free_port()
        self.host = "127.0.0.1"
        self.endpoint = f"http://{self.host}:{self.port}"
        self.access_key = random_access_key()
        self.secret_key = random_secret_key()
        self.region = REGION
        self.config = config
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.verify = None      # CA file for an https endpoint (tls_server)
        self.proc = None
        self.runs = 0
        self.logs = []          # (stdout path, stderr path) per start
        self.problems = []      # found at stops; reported at teardown
        self._root_client = None

    # -- process control -------------------------------------------------

    def command(self):
        cmd = [str(_require_bin()), "server", "--data-dir", str(self.data_dir),
               "--listen", f"{self.host}:{self.port}"]
        if self.config:
            cmd += ["--config", str(self.config)]
        return cmd + self.extra_args

    def start(self):
        assert self.proc is None, "server already running"
        self.runs += 1
        out = self.workdir / f"server-{self.runs}.stdout"
        err = self.workdir / f"server-{self.runs}.stderr"
        self.logs.append((out, err))
        env = dict(os.environ)
        env["KURA_ROOT_ACCESS_KEY"] = self.access_key
        env["KURA_ROOT_SECRET_KEY"] = self.secret_key
        env.update(self.extra_env)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            self.proc = subprocess.Popen(self.command(), stdout=fo, stderr=fe,
                                         stdin=subprocess.DEVNULL, env=env,
                                         cwd=self.workdir)
        self._wait_ready()

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                pytest.fail(f"kura server exited with status {rc} during "
                            f"start-up\n{self._tail()}", pytrace=False)
            try:
                with socket.create_connection((self.host, self.port),
                                              timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                pytest.fail(f"kura server did not accept connections on "
                            f"{self.endpoint} within {START_TIMEOUT:.0f} s"
                            f"\n{self._tail()}", pytrace=False)
            time.sleep(0.05)

    def stop(self):
        """SIGTERM and wait; returns the problems found (exit status,
        sanitizer reports) instead of raising, so teardown can collect
        them all."""
        problems = []
        if self.proc is None:
            return problems
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
            problems.append(f"server did not exit within {STOP_TIMEOUT:.0f} s "
                            f"of SIGTERM (killed)")
        self.proc = None
        if rc is not None and rc != 0:
            problems.append(f"server exited with status {rc} after SIGTERM")
        problems += self._sanitizer_problems(self.runs)
        if problems:
            problems.append(self._tail())
        return problems

    def kill9(self):
        """SIGKILL the server (a crash); restart() brings it back."""
        assert self.proc is not None, "server not running"
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        problems = self._sanitizer_problems(self.runs)
        if problems:
            self.problems += problems + [self._tail()]

    def restart(self):
        """Clean stop (checked) and start again on the same port and data."""
        problems = self.stop()
        if problems:
            self.problems += problems
            pytest.fail("\n".join(problems), pytrace=False)
        self.start()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def close(self):
        """Teardown: stop and assert everything was clean."""
        self.problems += self.stop()
        if self.problems:
            pytest.fail("kura server problems:\n" + "\n".join(self.problems),
                        pytrace=False)

    # -- helpers ---------------------------------------------------------

    def stderr_text(self, run=None):
        run = self.runs if run is None else run
        if run < 1 or run > len(self.logs):
            return ""
        return self.logs[run - 1][1].read_text(errors="replace")

    def stdout_text(self, run=None):
        run = self.runs if run is None else run
        if run < 1 or run > len(self.logs):
            return ""
        return self.logs[run - 1][0].read_text(errors="replace")

    def _sanitizer_problems(self, run):
        lines = sanitizer_lines(self.stderr_text(run))
        return [f"sanitizer report (run {run}): {line}" for line in lines]

    def _tail(self, n=40):
        text = self.stderr_text()
        lines = text.splitlines()[-n:]
        return (f"--- server stderr ({self.logs[-1][1] if self.logs else '-'}), "
                f"last {len(lines)} lines ---\n" + "\n".join(lines))

    def cli(self, *args, timeout=60):
        """Run `$KURA_BIN ARGS... --data-dir DATA_DIR`."""
        return run_cli(*args, "--data-dir", self.data_dir, timeout=timeout)

    def add_tenant(self, name):
        """Create a tenant with the CLI; returns (access_key, secret_key)."""
        r = self.cli("tenant", "add", name)
        assert r.returncode == 0, (f"kura tenant add {name} failed "
                                   f"({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return parse_credentials(r.stdout)

    def client(self, access_key=None, secret_key=None, **config):
        return s3_client(self.endpoint, access_key or self.access_key,
                         secret_key or self.secret_key, verify=self.verify,
                         **config)

    def root_client(self):
        """The root tenant's client, made once per server: what the s3
        fixtures return, so that a module's tests share one client as they
        share one server."""
        if self._root_client is None:
            self._root_client = self.client()
        return self._root_client


def s3_client(endpoint, access_key, secret_key, verify=None, **config):
    """A boto3 S3 client: SigV4, path-style, us-east-1, no retries; verify
    names the CA file of an https endpoint."""
    cfg = Config(signature_version="s3v4",
                 s3={"addressing_style": "path"},
                 retries={"total_max_attempts": 1, "mode": "standard"},
                 connect_timeout=10, read_timeout=60, **config)
    session = boto3.session.Session(aws_access_key_id=access_key,
                                    aws_secret_access_key=secret_key,
                                    region_name=REGION)
    return session.client("s3", endpoint_url=endpoint, config=cfg,
                          verify=verify)


def make_cert(workdir):
    """A self-signed P-256 certificate for 127.0.0.1 and localhost:
    (cert path, key path)."""
    key = Path(workdir) / "tls.key"
    cert = Path(workdir) / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


class AwsCli:
    """Runs the aws CLI (Debian's, /usr/bin/aws) against a kura server."""

    def __init__(self, server, workdir, access_key=None, secret_key=None):
        self.server = server
        self.home = Path(workdir) / "aws-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file = self.home / "config"
        self.config_file.write_text(
            "[default]\n"
            f"region = {REGION}\n"
            "s3 =\n"
            "    addressing_style = path\n")
        self.access_key = access_key or server.access_key
        self.secret_key = secret_key or server.secret_key

    def env(self):
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(self.config_file),
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_PAGER": "",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def __call__(self, *args, input=None, timeout=120, check=False):
        """aws --endpoint-url ENDPOINT ARGS...; returns CompletedProcess."""
        cmd = [AWS_CLI, "--endpoint-url", self.server.endpoint, *map(str, args)]
        r = subprocess.run(cmd, capture_output=True, text=True, input=input,
                           timeout=timeout, env=self.env(),
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n"
                                 f"{r.stdout}\n{r.stderr}")
        return r


# -- the server factory -------------------------------------------------------

def write_config(directory, text, name="kura.ini"):
    """Write configuration text to DIRECTORY/NAME; returns the path."""
    path = Path(directory) / name
    path.write_text(text)
    return path


def populate(server, buckets=(), objects=None):
    """Create buckets, then PUT objects ({(bucket, key): body}), as root."""
    c = server.root_client()
    for b in buckets:
        c.create_bucket(Bucket=b)
    for (b, k), body in (objects or {}).items():
        c.put_object(Bucket=b, Key=k, Body=body)


@contextlib.contextmanager
def running_server(workdir, config=None, *, config_file=None, tls=False,
                   env=None, buckets=(), objects=None, start=True):
    """A server in workdir (created if missing), started, with buckets and
    objects created; stopped and checked (KuraServer.close) on exit.  The
    server object stays usable after the block.

    config is configuration text, written to workdir/kura.ini; config_file
    an existing file instead (one shared by several servers).  tls=True
    gives the listener a self-signed certificate (prepended to config) that
    the server's clients verify: what SSE-C needs, as on AWS.  env adds to
    the server's environment.  start=False yields the server unstarted (for
    a test that prepares its data directory first) and creates nothing."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    assert config_file is None or (config is None and not tls), \
        "config_file is a whole configuration: no config text, no tls"
    cert = None
    if tls:
        cert, key = make_cert(workdir)
        config = f"[server]\ntls_cert = {cert}\ntls_key = {key}\n{config or ''}"
    if config is not None:
        config_file = write_config(workdir, config)
    server = KuraServer(workdir, config=config_file, env=env)
    if tls:
        server.endpoint = f"https://127.0.0.1:{server.port}"
        server.verify = str(cert)
    try:
        if start:
            server.start()
            populate(server, buckets, objects)
        yield server
    finally:
        server.close()


def server_fixture(config=None, *, scope="function", buckets=(), objects=None,
                   tls=False, env=None):
    """A fixture that yields a running server (running_server's arguments),
    one per test or one per module (scope).  A function-scoped server works
    in the test's tmp_path, so that the test finds its files there."""

    @pytest.fixture(scope=scope)
    def fixture(request, tmp_path_factory):
        if scope == "function":
            work = request.getfixturevalue("tmp_path")
        else:
            work = tmp_path_factory.mktemp(request.fixturename)
        with running_server(work, config, tls=tls, env=env, buckets=buckets,
                            objects=objects) as server:
            yield server
    return fixture


def client_fixture(server, scope="function"):
    """A fixture: the root tenant's boto3 client of the server fixture
    named `server`."""

    @pytest.fixture(scope=scope)
    def fixture(request):
        return request.getfixturevalue(server).root_client()
    return fixture


_tenant_seq = 0


def new_tenant(server):
    """A boto3 client of a tenant added with the CLI; the tenant's name and
    credentials are attributes kura_tenant, kura_access_key and
    kura_secret_key of the client."""
    global _tenant_seq
    _tenant_seq += 1
    name = f"tenant{_tenant_seq}-{secrets.token_hex(3)}"
    access, secret = server.add_tenant(name)
    client = server.client(access, secret)
    client.kura_tenant = name           # for tests that need the name
    client.kura_access_key = access
    client.kura_secret_key = secret
    return client


def tenant_fixture(server, scope="function"):
    """A fixture: a client of a fresh tenant of the server fixture named
    `server`."""

    @pytest.fixture(scope=scope)
    def fixture(request):
        return new_tenant(request.getfixturevalue(server))
    return fixture


def aws_fixture(server, scope="function"):
    """A fixture: the aws CLI (AwsCli) against the server fixture named
    `server`, as its root tenant."""

    @pytest.fixture(scope=scope)
    def fixture(request, tmp_path_factory):
        if scope == "function":
            work = request.getfixturevalue("tmp_path")
        else:
            work = tmp_path_factory.mktemp("aws")
        return AwsCli(request.getfixturevalue(server), work)
    return fixture


# -- the shared fixtures ------------------------------------------------------

@pytest.fixture
def free_port():
    return pick_free_port()


@pytest.fixture
def kura_cli():
    return run_cli


kura_server = server_fixture()
kura_server_module = server_fixture(scope="module")
tls_server = server_fixture(tls=True)
s3 = client_fixture("kura_server")
s3_module = client_fixture("kura_server_module", scope="module")
aws = aws_fixture("kura_server")
aws_module = aws_fixture("kura_server_module", scope="module")
tenant = tenant_fixture("kura_server")
tenant_module = tenant_fixture("kura_server_module", scope="module")


def have_aws_cli():
    return shutil.which(AWS_CLI) is not None


# -- overrides keep their scope ----------------------------------------------

def scope_overrides(fixturedefs):
    """For {name: [FixtureDef, ...]}: one line per definition that overrides
    another of the same name (its baseid lies under the other's) with a
    different scope.  A test that asks for s3 must get what conftest
    promises, a client per test, not silently a module's shared one."""
    problems = []
    for name, defs in sorted(fixturedefs.items()):
        for base in defs:
            for over in defs:
                if over is base or over.baseid == base.baseid:
                    continue
                under = base.baseid == "" or \
                    over.baseid.startswith(base.baseid.rstrip("/") + "/")
                if under and over.scope != base.scope:
                    problems.append(
                        f"fixture '{name}' of {over.baseid} (scope "
                        f"{over.scope}) overrides the one for "
                        f"{base.baseid or 'all tests'} (scope {base.scope}); "
                        f"give it another name or the same scope")
    return problems


def pytest_collection_modifyitems(session, config, items):
    defs = getattr(session._fixturemanager, "_arg2fixturedefs", None)
    if defs is None:
        raise pytest.UsageError("conftest.py: this pytest keeps its fixture "
                                "definitions elsewhere; update "
                                "scope_overrides()")
    problems = scope_overrides(defs)
    if problems:
        raise pytest.UsageError("\n".join(problems))

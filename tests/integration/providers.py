"""Real key-provider peers for integration tests: a private SoftHSM2 token
(PKCS#11) and a PyKMIP server (KMIP) on 127.0.0.1, each with the `[keys]`
configuration a kura server needs to use it.  Both are torn down by the
tests that start them.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PYTHON = "/usr/bin/python3"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"peer exited early with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"peer did not listen on {port}")


class SoftHSM:
    """A private token "kura" in its own token directory."""

    def __init__(self, workdir):
        self.dir = Path(workdir) / "softhsm"
        self.tokens = self.dir / "tokens"
        self.tokens.mkdir(parents=True)
        self.conf = self.dir / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {self.tokens}\n"
                             "objectstore.backend = file\nlog.level = ERROR\n")
        self.env = {"SOFTHSM2_CONF": str(self.conf)}
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "kura",
                        "--pin", PIN, "--so-pin", "5678"], check=True,
                       capture_output=True, env={**os.environ, **self.env})
        self.pin_file = self.dir / "pin"
        self.pin_file.write_text(PIN + "\n")
        self.pin_file.chmod(0o600)

    def config(self):
        return (f"[keys]\nprovider = pkcs11\nmodule = {SOFTHSM_MODULE}\n"
                f"token = kura\npin_file = {self.pin_file}\n")

    def outage(self):
        """The token disappears (its directory moves away)."""
        self.tokens.rename(self.dir / "tokens-away")

    def recover(self):
        (self.dir / "tokens-away").rename(self.tokens)

    def close(self):
        pass


MKCERTS = r"""
set -e
cd "$1"
ca() {
  openssl ecparam -name prime256v1 -genkey -noout -out $1.key
  openssl req -x509 -new -key $1.key -subj /CN=$1 -days 2 -out $1.pem \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() {
  openssl ecparam -name prime256v1 -genkey -noout -out $1.key
  openssl req -new -key $1.key -subj /CN=$3 -out $1.csr
  printf '%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n' "$4" > $1.ext
  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial \
    -days 2 -extfile $1.ext -out $1.pem 2>/dev/null
}
ca ca
leaf server ca kmip-server 'extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost'
leaf client ca kura extendedKeyUsage=clientAuth
chmod 600 *.key
"""


class PyKMIP:
    """A PyKMIP server with throwaway P-256 certificates and its own
    database; stop() and start() keep the database (an outage)."""

    def __init__(self, workdir):
        self.dir = Path(workdir) / "kmip"
        (self.dir / "policies").mkdir(parents=True)
        subprocess.run(["sh", "-c", MKCERTS, "mkcerts", str(self.dir)], check=True,
                       capture_output=True)
        self.port = free_port()
        self.conf = self.dir / "server.conf"
        self.conf.write_text(
            "[server]\nhostname=127.0.0.1\n"
            f"port={self.port}\n"
            f"certificate_path={self.dir}/server.pem\nkey_path={self.dir}/server.key\n"
            f"ca_path={self.dir}/ca.pem\nauth_suite=TLS1.2\n"
            f"policy_path={self.dir}/policies\nenable_tls_client_auth=True\n"
            f"logging_level=INFO\ndatabase_path={self.dir}/kmip.db\n")
        self.proc = None
        self.start()

    def start(self):
        log = open(self.dir / "server.out", "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-c", "import sys; from kmip.services.server import server; "
             "sys.argv = ['pykmip-server'] + sys.argv[1:]; server.main()",
             "-f", str(self.conf), "-l", str(self.dir / "server.log")],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        wait_port(self.port, self.proc)

    def stop(self):
        if self.proc is None:
            return
        # PyKMIP takes ~10 s to stop cleanly and forks helpers: kill the
        # whole group.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def config(self):
        return (f"[keys]\nprovider = kmip\nserver = 127.0.0.1:{self.port}\n"
                f"ca_file = {self.dir}/ca.pem\ncert_file = {self.dir}/client.pem\n"
                f"key_file = {self.dir}/client.key\ntimeout = 5\n")

    def outage(self):
        self.stop()

    def recover(self):
        self.start()

    def close(self):
        self.stop()

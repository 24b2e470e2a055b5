"""Raw-socket helpers for test_hostile.py: send arbitrary bytes to a kura
server and read back whatever it answers (a response, a close, a reset, or
nothing before a deadline), and check the server still serves others."""

import http.client
import socket
import time

import helpers as H


class Reply:
    """What came back on one connection: the raw bytes read, whether the
    server closed (EOF or reset) and how long that took."""

    def __init__(self, data, closed, elapsed):
        self.data = data
        self.closed = closed
        self.elapsed = elapsed

    def status(self):
        """Status code of the first response, or None if none arrived."""
        if not self.data.startswith(b"HTTP/1."):
            return None
        return int(self.data.split(b" ", 2)[1])

    def responses(self):
        """Every complete HTTP response in the bytes: (status, headers, body)."""
        out = []
        rest = self.data
        while rest.startswith(b"HTTP/1."):
            head, sep, rest = rest.partition(b"\r\n\r\n")
            if not sep:
                break
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                headers[k.strip().lower().decode()] = v.strip().decode()
            n = int(headers.get("content-length", "0"))
            if len(rest) < n:
                break               # body not complete yet
            body, rest = rest[:n], rest[n:]
            out.append((status, headers, body))
        return out

    def error_code(self):
        rs = self.responses()
        if not rs or not rs[0][2]:
            return None
        return H.parse_error(rs[0][2]).get("Code")

    def __repr__(self):
        return (f"<Reply closed={self.closed} after {self.elapsed:.2f}s "
                f"{self.data[:600]!r}>")


def connect(srv, timeout=10):
    return socket.create_connection((srv.host, srv.port), timeout=timeout)


def read_until_closed(sock, deadline, enough=None):
    """Read until the server closes or resets, or the deadline passes, or
    enough(data so far) says so."""
    data = b""
    closed = False
    t0 = time.monotonic()
    while enough is None or not enough(data):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            piece = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if not piece:
            closed = True
            break
        data += piece
    return Reply(data, closed, time.monotonic() - t0)


def exchange(srv, payload, wait=5.0, shut_write=False, until_responses=None):
    """Send payload bytes on a fresh connection and collect the reply.
    shut_write: half-close after sending (the client has nothing more).
    until_responses: stop as soon as that many complete responses came."""
    sock = connect(srv)
    try:
        try:
            sock.sendall(payload)
            if shut_write:
                sock.shutdown(socket.SHUT_WR)
        except (ConnectionResetError, BrokenPipeError):
            # The server answered early and closed: read what it said.
            return read_until_closed(sock, time.monotonic() + 1.0)
        enough = None
        if until_responses is not None:
            def enough(data):
                return len(Reply(data, False, 0).responses()) >= until_responses
        return read_until_closed(sock, time.monotonic() + wait, enough)
    finally:
        sock.close()


def request_bytes(method, target, headers, body=b"", version="HTTP/1.1"):
    head = f"{method} {target} {version}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode("latin-1") + body


def signed_bytes(srv, method, path, query="", headers=None, body=b"",
                 version="HTTP/1.1", sign_path=None, **signopts):
    """The wire bytes of a correctly signed request (Host included).
    sign_path: the path as a client encodes the key when signing, where
    the target sent differs (S3 signs the path decoded, encoded once)."""
    hdrs = dict(headers or {})
    if (body or method in ("PUT", "POST")) and \
            not any(k.lower() == "content-length" for k in hdrs):
        hdrs["Content-Length"] = str(len(body))
    s = H.sign(srv, method, sign_path or path, query, hdrs, body=body, **signopts)
    target = path + (f"?{query}" if query else "")
    return request_bytes(method, target, s.headers, body, version)


def fetch(srv, bucket, key, timeout=5.0):
    """A normal signed GET on its own connection: (status, body, seconds)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    try:
        r = H.raw(srv, "GET", H.key_path(bucket, key), conn=conn)
    finally:
        conn.close()
    return r.status, r.body, time.monotonic() - t0

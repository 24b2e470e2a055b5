"""An independent verifier of kura audit logs, written from docs/AUDIT.md
alone: Python's hashlib for SHA-256 and the Merkle tree (RFC 9162 §2.1),
the openssl command for checkpoint signatures.  It shares no code with
kura; the integration tests run it beside `kura audit verify`.

    /usr/bin/python3 audit_verifier.py AUDIT_DIR [--published DIR] [--public-key PEM]

exits 0 when the log is intact, 1 (printing the first problem) otherwise.

Functions: leaf_hash, node_hash, mth, verify_inclusion and
verify_consistency (RFC 9162 §2.1.3.2 and §2.1.4.2), check_checkpoint
(signature via openssl), verify_log (the whole procedure of the
"Verifying a log" section), verify_inclusion_output and
verify_consistency_output (the JSON printed by `kura audit proof`).
"""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

CHECKPOINT_DOMAIN = "kura-audit-checkpoint-v1"
MAGIC = b"KURAAUD1"
RECORD_MAX = 1 << 20


class Bad(Exception):
    """The log is not intact: message names the position; seq is the first
    bad record (or the start of the range that failed)."""

    def __init__(self, message, seq=None):
        super().__init__(message)
        self.seq = seq


# -- Merkle tree (RFC 9162 §2.1) ----------------------------------------------

def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(record):
    return sha256(b"\x00" + record)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def mth(leaves):
    """Merkle Tree Hash of a list of leaf hashes."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


class Frontier:
    """The perfect subtrees of the binary decomposition of the size,
    largest first; appending merges like a binary carry."""

    def __init__(self, size=0, hashes=()):
        self.size = size
        self.hashes = list(hashes)

    def push(self, leaf):
        h, k = leaf, self.size
        while k & 1:
            h = node_hash(self.hashes.pop(), h)
            k >>= 1
        self.hashes.append(h)
        self.size += 1

    def root(self):
        if not self.hashes:
            return sha256(b"")
        r = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            r = node_hash(h, r)
        return r


def verify_inclusion(index, size, leaf, path, root):
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1, size2, path, root1, root2):
    """RFC 9162 §2.1.4.2 (size1 > 0)."""
    if size1 > size2 or size1 == 0:
        return False
    if size1 == size2:
        return not path and root1 == root2
    if not path:
        return False
    path = list(path)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


# -- checkpoints --------------------------------------------------------------

def canonical(doc):
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), text)


def parse_checkpoint(line):
    doc = json.loads(line)
    want = {"algorithm", "public_key", "root", "signature", "signer", "time", "tree_size"}
    if set(doc) != want:
        raise ValueError("members are not those of a checkpoint")
    if canonical(doc) != line:
        raise ValueError("not in canonical form")
    return doc


def checkpoint_text(cp):
    return (f"{CHECKPOINT_DOMAIN}\n{cp['tree_size']}\n{cp['root']}\n"
            f"{cp['time']}\n").encode()


_verified = {}


def check_checkpoint(cp):
    """True when the signature over the checkpoint text verifies with the
    checkpoint's own public key (openssl dgst -sha256 -verify)."""
    text = checkpoint_text(cp)
    key = (cp["public_key"], cp["signature"], text)
    if key in _verified:
        return _verified[key]
    with tempfile.TemporaryDirectory() as tmp:
        der = os.path.join(tmp, "pub.der")
        pem = os.path.join(tmp, "pub.pem")
        sig = os.path.join(tmp, "sig.bin")
        msg = os.path.join(tmp, "text")
        with open(der, "wb") as f:
            f.write(base64.b64decode(cp["public_key"], validate=True))
        with open(sig, "wb") as f:
            f.write(base64.b64decode(cp["signature"], validate=True))
        with open(msg, "wb") as f:
            f.write(text)
        r = subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", der,
                            "-out", pem], capture_output=True)
        if r.returncode != 0:
            _verified[key] = False
            return False
        cmd = ["openssl", "dgst", "-sha256", "-verify", pem, "-signature", sig]
        if cp["algorithm"] == "RSA-PSS-SHA256":
            cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                    "-sigopt", "rsa_mgf1_md:sha256"]
        elif cp["algorithm"] != "ECDSA-P256-SHA256":
            _verified[key] = False
            return False
        r = subprocess.run(cmd + [msg], capture_output=True)
        _verified[key] = r.returncode == 0
        return _verified[key]


def pem_to_der(pem_path):
    r = subprocess.run(["openssl", "pkey", "-pubin", "-in", pem_path, "-outform", "DER"],
                       capture_output=True, check=True)
    return r.stdout


def load_checkpoints(path, name, pinned_der=None):
    """Checkpoint lines of a file ([] when missing), each checked."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        lines.pop()         # an unfinished last line: a crashed writer's
    cps = []
    for i, raw in enumerate(lines, 1):
        try:
            cp = parse_checkpoint(raw.decode("ascii"))
        except (ValueError, UnicodeDecodeError) as e:
            raise Bad(f"{name} line {i}: {e}")
        if not check_checkpoint(cp):
            raise Bad(f"{name} line {i}: signature does not verify", cp["tree_size"])
        anchor = pinned_der if pinned_der is not None else (
            base64.b64decode(cps[0]["public_key"]) if cps else None)
        if anchor is not None and base64.b64decode(cp["public_key"]) != anchor:
            raise Bad(f"{name} line {i}: signed by another key", cp["tree_size"])
        if cps and (cp["tree_size"] < cps[-1]["tree_size"] or
                    (cp["tree_size"] == cps[-1]["tree_size"] and
                     cp["root"] != cps[-1]["root"])):
            raise Bad(f"{name} line {i}: does not follow the line before", cp["tree_size"])
        cp["line"] = i
        cps.append(cp)
    return cps


# -- segments -----------------------------------------------------------------

def parse_header(data, name):
    if len(data) < 44 or data[:8] != MAGIC:
        raise Bad(f"{name}: not a segment")
    version = int.from_bytes(data[8:12], "big")
    length = int.from_bytes(data[12:16], "big")
    segno = int.from_bytes(data[16:24], "big")
    first = int.from_bytes(data[24:32], "big")
    count = int.from_bytes(data[40:44], "big")
    if version != 1 or count != bin(first).count("1") or length != 44 + 32 * count + 32 \
            or len(data) < length:
        raise Bad(f"{name}: header damaged")
    if sha256(data[:length - 32]) != data[length - 32:length]:
        raise Bad(f"{name}: header checksum")
    frontier = [data[44 + 32 * i:76 + 32 * i] for i in range(count)]
    return segno, first, Frontier(first, frontier), length


def entries(data, start, last_segment, name):
    """(offset, record, stored hash) for each entry; an unfinished tail of
    the last segment is not an entry."""
    off = start
    while off < len(data):
        rest = data[off:]
        if len(rest) >= 4:
            n = int.from_bytes(rest[:4], "big")
        else:
            n = None
        if n is not None and (n == 0 or n > RECORD_MAX):
            if last_segment and not any(rest):
                return
            raise Bad(f"{name} offset {off}: damaged entry length")
        if n is None or len(rest) < 4 + n + 32:
            if last_segment:
                return
            raise Bad(f"{name} offset {off}: truncated entry")
        yield off, rest[4:4 + n], rest[4 + n:4 + n + 32]
        off += 4 + n + 32


def segment_numbers(audit_dir):
    nums = []
    for name in os.listdir(audit_dir):
        m = re.fullmatch(r"seg-(\d{8,})\.log", name)
        if m:
            nums.append(int(m.group(1)))
    return sorted(nums)


def read_records(audit_dir):
    """All present records as (seq, bytes), with the first seq; checks only
    the structure."""
    out = []
    first = None
    for segno in segment_numbers(audit_dir):
        path = os.path.join(audit_dir, f"seg-{segno:08d}.log")
        with open(path, "rb") as f:
            data = f.read()
        _, f0, _, length = parse_header(data, path)
        if first is None:
            first = f0
        for _, rec, _ in entries(data, length, True, path):
            out.append(rec)
    return first or 0, out


def verify_log(audit_dir, published=None, pinned_der=None):
    """The procedure of docs/AUDIT.md "Verifying a log".  Returns the
    number of records checked; raises Bad naming the first problem."""
    cps = load_checkpoints(os.path.join(audit_dir, "checkpoints.log"), "checkpoints.log",
                           pinned_der)
    if published is not None:
        anchor = pinned_der if pinned_der is not None else (
            base64.b64decode(cps[0]["public_key"]) if cps else None)
        pub = load_checkpoints(os.path.join(published, "checkpoints.log"),
                               "published checkpoints.log", anchor)
        by_size = {cp["tree_size"]: cp for cp in cps}
        for p in pub:
            local = by_size.get(p["tree_size"])
            if local is None:
                raise Bad(f"published checkpoint line {p['line']} "
                          f"(tree_size {p['tree_size']}) is missing locally", p["tree_size"])
            if any(local[k] != p[k] for k in ("root", "time", "signature", "public_key")):
                raise Bad(f"published checkpoint line {p['line']} differs from the local one",
                          p["tree_size"])
    segs = segment_numbers(audit_dir)
    tree = Frontier()
    ci = 0
    last_good = 0
    records = 0
    for i, segno in enumerate(segs):
        path = os.path.join(audit_dir, f"seg-{segno:08d}.log")
        if i > 0 and segno != segs[i - 1] + 1:
            raise Bad(f"segment {segs[i - 1] + 1} is missing", tree.size)
        with open(path, "rb") as f:
            data = f.read()
        hdr_no, first, frontier, length = parse_header(data, path)
        if hdr_no != segno:
            raise Bad(f"{path}: header names segment {hdr_no}", tree.size)
        if i == 0:
            tree = frontier
            while ci < len(cps) and cps[ci]["tree_size"] < first:
                ci += 1
            last_good = first
            if first > 0:
                if ci == len(cps) or cps[ci]["tree_size"] != first:
                    raise Bad(f"segment {segno} starts at {first} but no checkpoint "
                              f"has that size", first)
                if tree.root().hex() != cps[ci]["root"]:
                    raise Bad(f"segment {segno} header does not match checkpoint line "
                              f"{cps[ci]['line']}", first)
                ci += 1
        elif first != tree.size or frontier.hashes != tree.hashes:
            raise Bad(f"segment {segno} header does not continue the records before it",
                      tree.size)
        last = i == len(segs) - 1
        for off, rec, stored in entries(data, length, last, path):
            seq = tree.size
            h = leaf_hash(rec)
            if h != stored:
                raise Bad(f"record {seq} ({path} offset {off}) changed", seq)
            try:
                doc = json.loads(rec)
            except ValueError:
                raise Bad(f"record {seq} is not JSON", seq)
            if not isinstance(doc, dict) or doc.get("seq") != seq:
                raise Bad(f"position {seq} holds record {doc.get('seq') if isinstance(doc, dict) else '?'}", seq)
            tree.push(h)
            records += 1
            while ci < len(cps) and cps[ci]["tree_size"] == tree.size:
                if tree.root().hex() != cps[ci]["root"]:
                    raise Bad(f"checkpoint line {cps[ci]['line']} does not match the log: "
                              f"a record in [{last_good}, {tree.size}) changed", last_good)
                last_good = tree.size
                ci += 1
    if ci < len(cps):
        raise Bad(f"log truncated: checkpoint line {cps[ci]['line']} covers "
                  f"{cps[ci]['tree_size']} records, the log holds {tree.size}", tree.size)
    return records


# -- proofs printed by `kura audit proof` ----------------------------------------

def _checkpoint_vouches(cp, size, root_hex):
    return cp is not None and cp["tree_size"] == size and cp["root"] == root_hex and \
        check_checkpoint(cp)


def verify_inclusion_output(text, pinned_der=None):
    """Check an inclusion proof as printed by kura: record → leaf hash →
    path → root → signed checkpoint.  Returns the record as a dict."""
    doc = json.loads(text)
    record = doc["record"].encode("ascii")
    leaf = leaf_hash(record)
    if leaf.hex() != doc["leaf_hash"]:
        raise Bad("leaf hash is not the hash of the record")
    path = [bytes.fromhex(h) for h in doc["path"]]
    if not verify_inclusion(doc["leaf_index"], doc["tree_size"], leaf, path,
                            bytes.fromhex(doc["root"])):
        raise Bad("inclusion path does not lead to the root")
    cp = doc["checkpoint"]
    if not _checkpoint_vouches(cp, doc["tree_size"], doc["root"]):
        raise Bad("no valid checkpoint vouches for the root")
    if pinned_der is not None and base64.b64decode(cp["public_key"]) != pinned_der:
        raise Bad("checkpoint signed by another key")
    rec = json.loads(record)
    if rec["seq"] != doc["leaf_index"]:
        raise Bad("record's seq is not the leaf index")
    return rec


def verify_consistency_output(text, pinned_der=None):
    doc = json.loads(text)
    path = [bytes.fromhex(h) for h in doc["path"]]
    if not verify_consistency(doc["size1"], doc["size2"], path,
                              bytes.fromhex(doc["root1"]), bytes.fromhex(doc["root2"])):
        raise Bad("consistency proof does not verify")
    for k, size, root in (("checkpoint1", doc["size1"], doc["root1"]),
                          ("checkpoint2", doc["size2"], doc["root2"])):
        cp = doc[k]
        if cp is not None:
            if not _checkpoint_vouches(cp, size, root):
                raise Bad(f"{k} does not vouch for the root")
            if pinned_der is not None and base64.b64decode(cp["public_key"]) != pinned_der:
                raise Bad(f"{k} signed by another key")
    return doc


def main(argv):
    args = list(argv)
    published = pinned = None
    if "--published" in args:
        i = args.index("--published")
        published = args[i + 1]
        del args[i:i + 2]
    if "--public-key" in args:
        i = args.index("--public-key")
        pinned = pem_to_der(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        n = verify_log(args[0], published, pinned)
    except Bad as e:
        print(f"BAD: {e}" + (f" (first bad record {e.seq})" if e.seq is not None else ""))
        return 1
    print(f"intact: {n} records")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

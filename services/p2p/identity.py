"""A node's long-lived p2p keys, kept under `<base_path>/p2p/` (`key_dir`).

- `node_key`: the hex Ed25519 seed whose public key is the node id (hello, PEX, bans);
  generated on first start, mode 0600.
- `curve.key` / `curve.key_secret`: the CurveZMQ key pair (pyzmq's certificate format),
  used as the server key of the bound socket and the client key of outbound links; its
  public half is advertised in hello and to discovery.

`ccoin devnet --curve` creates the Curve pairs ahead of the first start with these same
functions, so that bootnode addresses can name the server key (`tcp://host:port#<hex>`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import zmq.auth
from zmq.utils import z85

from common.crypto import KeyType, PrivateKey, Signer


def _write_secret(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def key_dir(base_path: Path) -> Path:
    """Where a node with data dir `base_path` keeps its p2p keys."""
    return base_path / "p2p"


def load_node_key(directory: Path) -> Signer:
    """The node's identity key; created on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "node_key"
    if not path.exists():
        _write_secret(path, PrivateKey.generate(KeyType.ED25519).secret.hex() + "\n")
    seed = bytes.fromhex(path.read_text().strip())
    if len(seed) != 32:
        raise ValueError(f"{path} does not hold a 32-byte hex seed")
    return Signer(PrivateKey(KeyType.ED25519, seed))


def load_curve_keys(directory: Path) -> tuple[bytes, bytes]:
    """(public, secret) CurveZMQ keys, raw 32 bytes each; created on first use."""
    directory.mkdir(parents=True, exist_ok=True)
    secret_path = directory / "curve.key_secret"
    if not secret_path.exists():
        zmq.auth.create_certificates(str(directory), "curve")
        secret_path.chmod(0o600)
    public, secret = zmq.auth.load_certificate(str(secret_path))
    assert secret is not None
    return z85.decode(public), z85.decode(secret)


def load_allow_list(path: Path) -> frozenset[bytes]:
    """Curve client public keys allowed to connect: one per line, 64 hex characters (or 40
    z85 characters); `#` starts a comment."""
    keys = set()
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            key = bytes.fromhex(text) if len(text) == 64 else z85.decode(text.encode())
        except (ValueError, KeyError, TypeError):
            key = b""
        if len(key) != 32:
            raise ValueError(f"{path}:{number}: not a curve public key")
        keys.add(key)
    return frozenset(keys)


def write_allow_list(path: Path, keys: Iterable[tuple[str, bytes]], header: str = "") -> Path:
    """Write an allow-list `load_allow_list` reads: one `(label, public key)` a line, as
    `<64 hex>  # label`, under an optional `# header` comment."""
    lines = [f"# {header}"] if header else []
    for label, key in keys:
        if len(key) != 32:
            raise ValueError(f"{label or 'key'}: not a 32-byte curve public key")
        lines.append(f"{key.hex()}  # {label}" if label else key.hex())
    path.write_text("\n".join(lines) + "\n")
    return path

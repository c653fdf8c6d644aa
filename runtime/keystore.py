"""Encrypted key files: scrypt (n=2^15, r=8, p=1) derives an AES-256-GCM key from the
password; the file is JSON with the address, key type and the sealed secret (all hex).
The address and key type are authenticated as associated data, so a file whose address
was edited does not decrypt."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from common.crypto import KeyType, PrivateKey
from common.errors import CcoinError, Malformed, WrongPassword

SCRYPT_N = 2**15
MAX_SCRYPT_N = 2**20  # a key file is input too: an edited `n` must not exhaust memory



# `cryptography` (OpenSSL, ~8 MiB per process) is imported where a key file is opened, not
# with this module: state, p2p and discovery import the config that names the keystore but
# never open a key.


def _kdf(password: str, salt: bytes, n: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(password.encode())


def encrypt_key(key: PrivateKey, password: str, n: int = SCRYPT_N) -> dict[str, Any]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(16), os.urandom(12)
    address = key.address.hex()
    aad = f"{address}:{int(key.key_type)}".encode()
    sealed = AESGCM(_kdf(password, salt, n)).encrypt(nonce, key.secret, aad)
    return {"version": 1, "address": address, "key_type": int(key.key_type),
            "crypto": {"kdf": "scrypt", "n": n, "r": 8, "p": 1, "salt": salt.hex(),
                       "cipher": "aes-256-gcm", "nonce": nonce.hex(),
                       "ciphertext": sealed.hex()}}


def decrypt_key(doc: dict[str, Any], password: str) -> PrivateKey:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        c = doc["crypto"]
        key_type = KeyType(doc["key_type"])
        aad = f"{doc['address']}:{int(key_type)}".encode()
        n = int(c["n"])
        if not 2 <= n <= MAX_SCRYPT_N or n & (n - 1):
            raise Malformed(f"key file scrypt n={n} is not a power of two up to 2^20")
        key = _kdf(password, bytes.fromhex(c["salt"]), n)
        secret = AESGCM(key).decrypt(bytes.fromhex(c["nonce"]), bytes.fromhex(c["ciphertext"]),
                                     aad)
    except InvalidTag:
        raise WrongPassword(f"wrong password for key {doc.get('address', '?')}") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise Malformed(f"not a ccoin key file: {exc}") from None
    pk = PrivateKey(key_type, secret)
    if pk.address.hex() != doc["address"]:
        raise Malformed("key file address does not match its key")
    return pk


class Keystore:
    """A directory of key files named `<address>.json`."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)

    def path_of(self, address: bytes) -> Path:
        return self.dir / f"{address.hex()}.json"

    def save(self, key: PrivateKey, password: str, n: int = SCRYPT_N) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.path_of(key.address)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(encrypt_key(key, password, n), f, indent=2)
        os.replace(tmp, path)
        return path

    def addresses(self) -> list[bytes]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in sorted(self.dir.glob("*.json")):
            try:
                out.append(bytes.fromhex(p.stem))
            except ValueError:
                continue
        return out

    def load(self, address: bytes, password: str) -> PrivateKey:
        path = self.path_of(address)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise CcoinError(f"no key for {address.hex()} in {self.dir}") from None
        except (OSError, ValueError) as exc:
            raise Malformed(f"cannot read key file {path}: {exc}") from None
        return decrypt_key(doc, password)

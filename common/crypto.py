"""Hashing, keys, signatures and addresses.

Ed25519 (key type 0) is the default and is verified through libsodium (PyNaCl); RSA (key
type 1, the ccoin seed's choice) is accepted as a second key type through `cryptography`,
loaded only when an RSA key is met (`common.rsakeys`).
An address is the first 20 bytes of SHA-256(key_type byte || public key).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from enum import IntEnum

import nacl.bindings
import nacl.exceptions

ADDRESS_LEN = 20
HASH_LEN = 32
ED25519_PUBLIC_LEN = 32
ED25519_SIGNATURE_LEN = 64
RSA_BITS = (2048, 3072, 4096)
RSA_MAX_PUBLIC_LEN = 600  # DER SubjectPublicKeyInfo of a 4096-bit key is 550 bytes
RSA_MAX_SIGNATURE_LEN = 512


class KeyType(IntEnum):
    ED25519 = 0
    RSA = 1


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# Every transaction decoded derives its sender's address, and a node sees the same senders
# again and again: a hit costs a fifth of the hash. Bounded: at most ~2 MB per process.
@functools.lru_cache(maxsize=8192)
def address_of(key_type: int, public_key: bytes) -> bytes:
    """The 20-byte address of a public key; the key type is hashed in, so keys of two types
    can never share an address."""
    return hashlib.sha256(bytes((key_type,)) + public_key).digest()[:ADDRESS_LEN]


def address_from_hex(text: str) -> bytes | None:
    """The 20-byte address written as 40 hex characters (an optional `0x` and surrounding
    whitespace are accepted), or None when `text` is not one: the caller says what it was."""
    try:
        raw = bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        return None
    return raw if len(raw) == ADDRESS_LEN else None


def check_public_key_shape(key_type: int, public_key: bytes) -> bool:
    """Cheap structural check used when decoding (no curve/RSA math)."""
    if key_type == KeyType.ED25519:
        return len(public_key) == ED25519_PUBLIC_LEN
    if key_type == KeyType.RSA:
        return 0 < len(public_key) <= RSA_MAX_PUBLIC_LEN
    return False


def check_signature_shape(key_type: int, signature: bytes) -> bool:
    if key_type == KeyType.ED25519:
        return len(signature) == ED25519_SIGNATURE_LEN
    if key_type == KeyType.RSA:
        return 0 < len(signature) <= RSA_MAX_SIGNATURE_LEN
    return False


def verify(key_type: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is `public_key`'s signature of `message`. Never raises on bad input."""
    if key_type == KeyType.ED25519:
        if len(public_key) != ED25519_PUBLIC_LEN or len(signature) != ED25519_SIGNATURE_LEN:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + message, public_key)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
            return False
        return True
    if key_type == KeyType.RSA:
        from common import rsakeys

        return rsakeys.verify(public_key, message, signature)
    return False


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """A signing key. `secret` is the 32-byte Ed25519 seed or the RSA key's PKCS#8 DER."""

    key_type: KeyType
    secret: bytes

    @staticmethod
    def generate(key_type: KeyType = KeyType.ED25519) -> PrivateKey:
        if key_type == KeyType.ED25519:
            import os

            return PrivateKey(KeyType.ED25519, os.urandom(32))
        from common import rsakeys

        return PrivateKey(KeyType.RSA, rsakeys.generate())

    @property
    def public_key(self) -> bytes:
        if self.key_type == KeyType.ED25519:
            pk, _ = nacl.bindings.crypto_sign_seed_keypair(self.secret)
            return bytes(pk)
        from common import rsakeys

        return rsakeys.public_key_of(self.secret)

    @property
    def address(self) -> bytes:
        return address_of(self.key_type, self.public_key)

    def sign(self, message: bytes) -> bytes:
        if self.key_type == KeyType.ED25519:
            _, sk = nacl.bindings.crypto_sign_seed_keypair(self.secret)
            return bytes(nacl.bindings.crypto_sign(message, sk)[:ED25519_SIGNATURE_LEN])
        from common import rsakeys

        return rsakeys.sign(self.secret, message)


class Signer:
    """A PrivateKey with its derived values computed once; for hot loops (bench, miner)."""

    __slots__ = ("key", "public_key", "address", "_sk")

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        self.public_key = key.public_key
        self.address = address_of(key.key_type, self.public_key)
        self._sk = (
            bytes(nacl.bindings.crypto_sign_seed_keypair(key.secret)[1])
            if key.key_type == KeyType.ED25519
            else b""
        )

    def sign(self, message: bytes) -> bytes:
        if self._sk:
            return bytes(nacl.bindings.crypto_sign(message, self._sk)[:ED25519_SIGNATURE_LEN])
        return self.key.sign(message)


def leading_zero_bits(digest: bytes) -> int:
    """Number of leading zero bits of a hash (HashCash proof strength)."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()

"""Hashing, keys, signatures and addresses.

Ed25519 (key type 0) is the default and is verified through libsodium (PyNaCl); RSA (key
type 1, the ccoin seed's choice) is accepted as a second key type through `cryptography`.
An address is the first 20 bytes of SHA-256(key_type byte || public key).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
        try:
            key = serialization.load_der_public_key(public_key)
        except (ValueError, TypeError):
            return False
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size not in RSA_BITS:
            return False
        try:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True
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
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return PrivateKey(KeyType.RSA, der)

    @property
    def public_key(self) -> bytes:
        if self.key_type == KeyType.ED25519:
            pk, _ = nacl.bindings.crypto_sign_seed_keypair(self.secret)
            return bytes(pk)
        key = serialization.load_der_private_key(self.secret, password=None)
        return key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def address(self) -> bytes:
        return address_of(self.key_type, self.public_key)

    def sign(self, message: bytes) -> bytes:
        if self.key_type == KeyType.ED25519:
            _, sk = nacl.bindings.crypto_sign_seed_keypair(self.secret)
            return bytes(nacl.bindings.crypto_sign(message, sk)[:ED25519_SIGNATURE_LEN])
        key = serialization.load_der_private_key(self.secret, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


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

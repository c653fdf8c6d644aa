"""Hashes, keys, signatures and addresses."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from common import crypto
from common.crypto import KeyType, PrivateKey, Signer
from tests.framework.rules import key


@pytest.fixture(scope="module")
def rsa_key() -> PrivateKey:
    return PrivateKey.generate(KeyType.RSA)


def test_sha256() -> None:
    assert crypto.sha256(b"abc").hex() == hashlib.sha256(b"abc").hexdigest()


def test_address_hashes_the_key_type_in() -> None:
    pk = key(1).public_key
    assert crypto.address_of(0, pk) == hashlib.sha256(b"\x00" + pk).digest()[:20]
    assert crypto.address_of(1, pk) == hashlib.sha256(b"\x01" + pk).digest()[:20]
    assert crypto.address_of(0, pk) != crypto.address_of(1, pk)
    assert len(key(1).address) == crypto.ADDRESS_LEN
    assert key(1).address == crypto.address_of(0, pk)


def test_ed25519_sign_and_verify() -> None:
    k = key(1)
    sig = k.sign(b"message")
    assert len(sig) == 64 and len(k.public_key) == 32
    assert crypto.verify(0, k.public_key, b"message", sig)
    assert not crypto.verify(0, k.public_key, b"messagf", sig)
    assert not crypto.verify(0, key(2).public_key, b"message", sig)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not crypto.verify(0, k.public_key, b"message", flipped)


def test_ed25519_is_deterministic_and_signer_matches() -> None:
    k = key(1)
    assert k.sign(b"m") == k.sign(b"m") == Signer(k).sign(b"m")
    s = Signer(k)
    assert s.public_key == k.public_key and s.address == k.address


@pytest.mark.parametrize("public_key, signature", [
    (bytes(31), bytes(64)), (bytes(32), bytes(63)), (bytes(33), bytes(64)), (b"", b""),
    (bytes(32), bytes(64)),  # the all-zero key is a small-order point: refused, not an error
])
def test_verify_never_raises_on_bad_shapes(public_key: bytes, signature: bytes) -> None:
    assert crypto.verify(0, public_key, b"m", signature) is False


def test_verify_rejects_unknown_key_type() -> None:
    k = key(1)
    assert not crypto.verify(2, k.public_key, b"m", k.sign(b"m"))
    assert not crypto.verify(1, k.public_key, b"m", k.sign(b"m"))  # not RSA DER


def test_rsa_sign_and_verify(rsa_key: PrivateKey) -> None:
    pub = rsa_key.public_key
    sig = rsa_key.sign(b"message")
    assert len(sig) == 256
    assert crypto.verify(1, pub, b"message", sig)
    assert not crypto.verify(1, pub, b"other", sig)
    assert not crypto.verify(0, pub, b"message", sig)
    assert not crypto.verify(1, pub[:-1], b"message", sig)  # broken DER
    assert not crypto.verify(1, b"\x30\x00", b"message", sig)
    assert Signer(rsa_key).sign(b"message") == sig  # PKCS#1 v1.5 is deterministic
    # the public key is DER SubjectPublicKeyInfo
    loaded = serialization.load_der_public_key(pub)
    assert isinstance(loaded, rsa.RSAPublicKey) and loaded.key_size == 2048


def test_rsa_keys_of_unsupported_size_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = small.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    k = PrivateKey(KeyType.RSA, der)
    assert not crypto.verify(1, k.public_key, b"m", k.sign(b"m"))


def test_generate_ed25519_is_random() -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()
    assert a.key_type == KeyType.ED25519 and len(a.secret) == 32
    assert a.secret != b.secret and a.address != b.address


def test_shape_checks() -> None:
    assert crypto.check_public_key_shape(0, bytes(32))
    assert not crypto.check_public_key_shape(0, bytes(33))
    assert crypto.check_public_key_shape(1, bytes(300))
    assert not crypto.check_public_key_shape(1, bytes(601))
    assert not crypto.check_public_key_shape(1, b"")
    assert not crypto.check_public_key_shape(9, bytes(32))
    assert crypto.check_signature_shape(0, bytes(64))
    assert not crypto.check_signature_shape(0, bytes(65))
    assert crypto.check_signature_shape(1, bytes(256))
    assert not crypto.check_signature_shape(1, b"")
    assert not crypto.check_signature_shape(9, bytes(64))


@pytest.mark.parametrize("digest, bits", [
    (bytes(32), 256), (b"\x80" + bytes(31), 0), (b"\x01" + bytes(31), 7),
    (b"\x00\x0f" + bytes(30), 12), (b"\x00" * 31 + b"\x01", 255),
])
def test_leading_zero_bits(digest: bytes, bits: int) -> None:
    assert crypto.leading_zero_bits(digest) == bits

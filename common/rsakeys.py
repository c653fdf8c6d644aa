"""The second key type, RSA (PKCS#1 v1.5 over SHA-256, DER keys), through `cryptography`.

`common.crypto` imports this module only when it meets an RSA key: loading OpenSSL costs
each process about 8 MiB of memory, and most chains never carry an RSA key.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from common.crypto import RSA_BITS


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is the DER `public_key`'s signature of `message`; a key that
    does not parse or has a size outside `RSA_BITS` verifies nothing."""
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


def generate() -> bytes:
    """A new 2048-bit key as PKCS#8 DER."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_of(secret: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of the PKCS#8 DER private key `secret`."""
    key = serialization.load_der_private_key(secret, password=None)
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(secret: bytes, message: bytes) -> bytes:
    key = serialization.load_der_private_key(secret, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())

"""Transactions on the client side: parse what a user types, sign locally, and the JSON body
the gateway takes. The private key never leaves this process (`sign_transfer`)."""

from __future__ import annotations

from typing import Any

from common.crypto import KeyType, Signer, address_from_hex
from common.errors import Malformed
from common.types import Transaction

KEY_TYPE_NAMES = {KeyType.ED25519: "ed25519", KeyType.RSA: "rsa"}


def parse_address(text: str, what: str = "address") -> bytes:
    """A 40-hex-character address (an optional 0x is accepted) as 20 bytes."""
    value = address_from_hex(text)
    if value is None:
        raise Malformed(f"{what} {text!r} is not a 40-hex-character address")
    return value


def parse_hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text.strip().removeprefix("0x"))
    except ValueError:
        raise Malformed(f"{what} {text!r} is not hex") from None


def as_hex(value: bytes | str) -> str:
    """Bytes, or text that may carry a `0x`, as bare hex for a URL or a comparison."""
    return value.hex() if isinstance(value, bytes) else value.strip().removeprefix("0x")


def tx_to_json(tx: Transaction) -> dict[str, Any]:
    """The JSON body of POST /api/v1/txs for a signed transaction."""
    return {
        "chain_id": tx.chain_id,
        "nonce": tx.nonce,
        "key_type": KEY_TYPE_NAMES[KeyType(tx.key_type)],
        "public_key": tx.public_key.hex(),
        "to": tx.to.hex(),
        "amount": tx.amount,
        "fee": tx.fee,
        "data": tx.data.hex(),
        "signature": tx.signature.hex(),
    }


def sign_transfer(signer: Signer, *, chain_id: int, nonce: int, to: bytes, amount: int,
                  fee: int = 0, data: bytes = b"") -> Transaction:
    """Build and sign a transfer locally (the node never sees the key)."""
    return Transaction.create(signer, chain_id=chain_id, nonce=nonce, to=to, amount=amount,
                              fee=fee, data=data)

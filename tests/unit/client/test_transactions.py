"""The client library's transactions (client/transactions.py): what `tx_to_json` writes is
exactly what the gateway's parser reads back, for both key types."""

from __future__ import annotations

from client import sign_transfer, tx_to_json
from common.crypto import KeyType, PrivateKey, Signer
from services.api import schema


def test_tx_json_is_what_the_gateway_parses() -> None:
    for key_type in (KeyType.ED25519, KeyType.RSA):
        signer = Signer(PrivateKey.generate(key_type))
        tx = sign_transfer(signer, chain_id=9, nonce=4, to=b"\x05" * 20, amount=7, fee=1,
                           data=b"\x00\x01")
        assert schema.parse_submission(tx_to_json(tx), 9) == tx

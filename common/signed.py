"""What checking a block's signatures needs, read from its bytes without building it.

p2p verifies every signature of a block before state sees the block; state then decodes each
transaction in full (`Block.decode`) to apply it. Building every `Transaction` in p2p as well
cost about as much again as state's decode, on the process whose signature checks already
fill the cores. So p2p reads only a transaction's id, chain id, key and signed message here:
one msgpack read, one re-encode and one hash per transaction, and the full decode happens
once, in state (issue 13: each block decoded once). Every other rule on a transaction's
fields is state's, which refuses the whole block when one of them fails.

The api reads a submitted batch's transactions the same way (`services.api.schema`): their
full decode is state's, which admits none it cannot decode.

The signed message is a slice of the transaction's own bytes (`common.types.signed_part`),
once the encoding is proven canonical here by re-encoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from common import crypto
from common.encoding import pack, unpack
from common.errors import Malformed, TooLarge
from common.types import (
    MAX_TX_BYTES,
    BlockHeader,
    Headed,
    Transaction,
    block_parts,
    signed_part,
)

_FIELDS = 9


# A tuple rather than a frozen dataclass: one is made per transaction of every block p2p
# checks, and a NamedTuple is built in a quarter of the time, immutable all the same.
class SignedTx(NamedTuple):
    """A transaction as its signature check sees it."""

    id: bytes
    chain_id: int
    key_type: int
    public_key: bytes
    message: bytes  # what the sender signed: Transaction.signing_payload()
    signature: bytes
    raw: bytes  # the canonical encoding all of it was read from

    @staticmethod
    def of(tx: Transaction) -> SignedTx:
        """What a decoded transaction's signature check needs."""
        return SignedTx(tx.id, tx.chain_id, tx.key_type, tx.public_key, tx.signing_payload(),
                        tx.signature, tx.raw)

    def verifies(self) -> bool:
        return crypto.verify(self.key_type, self.public_key, self.message, self.signature)


@dataclass(frozen=True, slots=True)
class SignedBlock(Headed):
    """A block's header and, per transaction, what its signature check needs."""

    header: BlockHeader
    txs: tuple[SignedTx, ...]
    size: int

    @property
    def tx_ids(self) -> list[bytes]:
        return [tx.id for tx in self.txs]

    def chain_ids(self) -> Iterator[int]:
        return (tx.chain_id for tx in self.txs)


def read_tx(raw: bytes) -> SignedTx:
    """`raw`'s id, chain id, key, signed message and signature; `Malformed` (or `TooLarge`)
    unless it is a canonical nine-field array whose signature-related fields have their
    types. Value ranges are not checked here (state's decode checks them)."""
    if len(raw) > MAX_TX_BYTES:
        raise TooLarge("transaction too large")
    value = unpack(raw, MAX_TX_BYTES)
    if type(value) is not tuple or len(value) != _FIELDS:
        raise Malformed("transaction must be an array of 9 fields")
    chain_id, _, key_type, public_key, *_, signature = value
    if type(chain_id) is not int or type(key_type) is not int \
            or type(public_key) is not bytes or type(signature) is not bytes:
        raise Malformed("transaction fields have the wrong types")
    if pack(value) != raw:
        raise Malformed("non-canonical encoding")
    return SignedTx(crypto.sha256(raw), chain_id, key_type, public_key,
                    signed_part(raw, len(signature)), signature, raw)


def read_block(raw: bytes) -> SignedBlock:
    """The header and each transaction's `read_tx`; `Malformed` (or `TooLarge`) unless `raw`
    is a canonical `[header, [tx...]]` with a well-formed header."""
    header, items = block_parts(raw)
    txs = tuple(map(read_tx, items))
    if pack((header.fields(), items)) != raw:
        raise Malformed("non-canonical encoding")
    return SignedBlock(header, txs, len(raw))

"""Reading a block's signatures from its bytes (`common.signed`): the message read is exactly
what the sender signed, and every encoding `Block.decode` refuses for its shape is refused
here too."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common import crypto, signed
from common.encoding import pack
from common.errors import Malformed, TooLarge
from common.types import (
    MAX_AMOUNT,
    MAX_BLOCK_TXS,
    MAX_TX_BYTES,
    MAX_TX_DATA,
    TX_DOMAIN,
    Block,
    BlockHeader,
    Transaction,
)
from tests.framework import rules

U63 = 2**63 - 1


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    """Any valid transaction, with field widths on both sides of msgpack's size steps (the
    signature as bin8 and bin16 among them)."""
    key_type = draw(st.sampled_from([0, 1]))
    key_len = 32 if key_type == 0 else draw(st.integers(1, crypto.RSA_MAX_PUBLIC_LEN))
    edge = st.sampled_from([0, 1, 127, 128, 255, 256, 2**16, 2**32, U63])
    signature = draw(st.sampled_from([0, 1, 64, 255, 256, crypto.RSA_MAX_SIGNATURE_LEN]))
    room = MAX_TX_BYTES - 100 - key_len - signature  # the largest data that still fits
    return Transaction(
        chain_id=draw(st.integers(0, 2**32 - 1)),
        nonce=draw(edge | st.integers(0, U63)),
        key_type=key_type,
        public_key=draw(st.binary(min_size=key_len, max_size=key_len)),
        to=draw(st.binary(min_size=20, max_size=20)),
        amount=draw(st.sampled_from([1, 255, 256, MAX_AMOUNT]) | st.integers(1, MAX_AMOUNT)),
        fee=draw(edge | st.integers(0, U63)),
        data=draw(st.sampled_from([0, 255, 256, min(room, MAX_TX_DATA)]).map(bytes)
                  | st.binary(max_size=40)),
        signature=bytes(signature))


@given(transactions())
def test_the_message_read_is_the_signing_payload(tx: Transaction) -> None:
    read = signed.read_tx(tx.raw)
    # both take the slice (common.types.signed_part): held to the payload's definition
    assert read.message == tx.signing_payload() == pack([TX_DOMAIN, *tx.fields()[:-1]])
    assert (read.id, read.chain_id, read.key_type, read.public_key, read.signature) == (
        tx.id, tx.chain_id, tx.key_type, tx.public_key, tx.signature)


def test_a_signature_verifies_over_the_bytes_read_and_a_forgery_does_not() -> None:
    tx = rules.transfer(1, rules.address(2), 5, nonce=0)
    assert signed.read_tx(tx.raw).verifies()
    assert not signed.read_tx(tx.with_signature(bytes(64)).raw).verifies()
    other = Transaction.create(rules.signer(1), chain_id=tx.chain_id, nonce=tx.nonce + 1,
                               to=tx.to, amount=tx.amount)
    assert not signed.read_tx(tx.with_signature(other.signature).raw).verifies()


@pytest.mark.parametrize(("raw", "error"), [
    (pack([1, 2, 3]), Malformed),  # not nine fields
    (pack({"a": 1}), Malformed),
    (pack([7, 0, "0", bytes(32), bytes(20), 5, 0, b"", bytes(64)]), Malformed),  # key type
    (pack([7, 0, 0, "key", bytes(20), 5, 0, b"", bytes(64)]), Malformed),
    (pack([7, 0, 0, bytes(32), bytes(20), 5, 0, b"", "signature"]), Malformed),
    (pack([b"7", 0, 0, bytes(32), bytes(20), 5, 0, b"", bytes(64)]), Malformed),
    # the nonce as a uint64 where a fixint is canonical: the signed message would differ
    (b"\x99" + pack(7) + b"\xcf" + bytes(8) + b"".join(
        pack(v) for v in [0, bytes(32), bytes(20), 5, 0, b"", bytes(64)]), Malformed),
    (bytes(MAX_TX_BYTES + 1), TooLarge),
])
def test_what_is_not_a_canonical_transaction_is_refused(raw: bytes, error: type) -> None:
    with pytest.raises(error):
        signed.read_tx(raw)


def test_a_block_reads_as_its_header_and_its_transactions() -> None:
    genesis = rules.poa_genesis(n_miners=1)
    txs = tuple(rules.transfer(1, rules.address(2), 1, nonce=i) for i in range(5))
    block = rules.Chain(genesis).build(txs)
    read = signed.read_block(block.raw)
    assert read.header == block.header and read.hash == block.hash
    assert read.height == block.height and read.size == block.size
    assert read.tx_ids == list(block.tx_ids)
    assert list(read.chain_ids()) == [tx.chain_id for tx in txs]
    assert [tx.message for tx in read.txs] == [tx.signing_payload() for tx in txs]


def test_what_is_not_a_canonical_block_is_refused() -> None:
    genesis = rules.poa_genesis(n_miners=1)
    tx = rules.transfer(1, rules.address(2), 1, nonce=0)
    block = rules.Chain(genesis).build((tx,))
    fields = block.header.fields()
    bad = [
        pack([fields]),
        pack([fields, tx.raw]),
        pack([fields, [tx.raw, 7]]),
        pack([fields[:5], [tx.raw]]),
        pack([fields, [tx.raw[:-1]]]),
        # the array of transactions as an array16 where a fixarray is canonical
        b"\x92" + pack(fields) + b"\xdc\x00\x01" + pack(tx.raw),
    ]
    for raw in bad:
        with pytest.raises(Malformed):
            signed.read_block(raw)
    assert Block.decode(pack([fields, [tx.raw]])) == block  # the canonical form reads fine
    with pytest.raises(TooLarge):
        signed.read_block(pack([fields, [tx.raw] * (MAX_BLOCK_TXS + 1)]))


def test_a_header_out_of_its_bounds_is_refused_as_block_decode_refuses_it() -> None:
    genesis = rules.poa_genesis(n_miners=1)
    block = rules.Chain(genesis).build(())
    fields = block.header.fields()
    fields[0] = -1
    raw = pack([fields, []])
    with pytest.raises(Malformed) as read:
        signed.read_block(raw)
    with pytest.raises(Malformed) as decoded:
        Block.decode(raw)
    assert str(read.value) == str(decoded.value)
    assert BlockHeader.from_fields(tuple(block.header.fields())) == block.header

"""Domain types: every out-of-range field is refused at construction, derived values are
the hashes docs/protocol.md defines."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from common import crypto
from common.encoding import pack
from common.errors import Malformed, TooLarge
from common.types import (
    EMPTY_ACCOUNT,
    HEADER_DOMAIN,
    MAX_AMOUNT,
    MAX_EXTRA,
    MAX_TX_BYTES,
    MAX_TX_DATA,
    TX_DOMAIN,
    ZERO_HASH,
    Account,
    Block,
    BlockHeader,
    BlockOutline,
    Transaction,
    block_raw,
    peek_header,
)
from tests.framework.rules import address, key, signer, transfer


def unsigned(**changes: Any) -> Transaction:
    values: dict[str, Any] = dict(chain_id=7, nonce=0, key_type=0,
                                  public_key=key(1).public_key, to=address(2), amount=5,
                                  fee=1, data=b"", signature=b"")
    values.update(changes)
    return Transaction(**values)


def header(**changes: Any) -> BlockHeader:
    values: dict[str, Any] = dict(height=1, parent=bytes(range(32)), timestamp=1000,
                                  coinbase=address(3), tx_root=bytes(32), state_root=bytes(32),
                                  difficulty=4, nonce=9, extra=b"x")
    values.update(changes)
    return BlockHeader(**values)


# --- Account ----------------------------------------------------------------------------------


def test_account_emptiness() -> None:
    assert EMPTY_ACCOUNT.is_empty() and Account().is_empty()
    assert not Account(1, 0).is_empty()
    assert not Account(0, 1).is_empty()


# --- Transaction ------------------------------------------------------------------------------


def test_transaction_derived_values() -> None:
    tx = transfer(1, address(2), 5, nonce=3, fee=1, data=b"memo")
    assert tx.raw == pack(tx.fields())
    assert tx.fields() == [7, 3, 0, key(1).public_key, address(2), 5, 1, b"memo", tx.signature]
    assert tx.id == crypto.sha256(tx.raw)
    assert tx.sender == address(1) == crypto.address_of(0, key(1).public_key)
    assert tx.cost == 6


def test_signing_payload_is_domain_tagged_and_excludes_the_signature() -> None:
    tx = transfer(1, address(2), 5, nonce=0)
    assert tx.signing_payload() == pack([TX_DOMAIN, *tx.fields()[:-1]])
    assert tx.signing_payload() == tx.with_signature(b"").signing_payload()
    assert tx.id != tx.with_signature(b"").id  # the id covers the signature
    assert crypto.verify(0, tx.public_key, tx.signing_payload(), tx.signature)


def test_create_equals_manual_signing() -> None:
    tx = transfer(1, address(2), 5, nonce=0, fee=2, data=b"d")
    manual = unsigned(fee=2, data=b"d")
    manual = manual.with_signature(key(1).sign(manual.signing_payload()))
    assert manual == tx and manual.raw == tx.raw


@pytest.mark.parametrize("amount", [0, -1, MAX_AMOUNT + 1, 2**64, True, False, 1.0, "5", None])
def test_transaction_rejects_bad_amounts(amount: Any) -> None:
    with pytest.raises(Malformed, match="amount") as info:
        unsigned(amount=amount)
    assert info.value.code == "malformed"


@pytest.mark.parametrize("changes, text", [
    ({"amount": 0}, f"amount out of range [1, {MAX_AMOUNT}]"),
    ({"to": bytes(19)}, "to must be 20 bytes"),
    ({"data": "memo"}, "data must be bytes"),
    ({"key_type": 2}, "key_type out of range [0, 1]"),
    ({"public_key": bytes(31)}, "public_key has the wrong length for its key type"),
])
def test_transaction_refusals_name_the_field(changes: dict[str, Any], text: str) -> None:
    with pytest.raises(Malformed) as info:
        unsigned(**changes)
    assert text in info.value.message


def test_transaction_accepts_amount_bounds() -> None:
    assert unsigned(amount=1).amount == 1
    assert unsigned(amount=MAX_AMOUNT).amount == MAX_AMOUNT


@pytest.mark.parametrize("name, value", [
    ("chain_id", -1), ("chain_id", 2**32), ("chain_id", True),
    ("nonce", -1), ("nonce", 2**63), ("nonce", 1.0),
    ("key_type", 2), ("key_type", 255), ("key_type", True),
    ("fee", -1), ("fee", 2**63), ("fee", False),
    ("to", bytes(19)), ("to", bytes(21)), ("to", "00" * 20), ("to", bytearray(20)),
    ("public_key", bytes(31)), ("public_key", b""), ("public_key", "key"),
    ("data", "text"), ("signature", "sig"),
])
def test_transaction_rejects_bad_fields(name: str, value: Any) -> None:
    with pytest.raises(Malformed):
        unsigned(**{name: value})


def test_transaction_data_is_bounded() -> None:
    assert len(unsigned(data=bytes(MAX_TX_DATA)).data) == MAX_TX_DATA
    with pytest.raises(TooLarge) as info:
        unsigned(data=bytes(MAX_TX_DATA + 1))
    assert info.value.code == "too_large"
    with pytest.raises(TooLarge):
        unsigned(signature=bytes(crypto.RSA_MAX_SIGNATURE_LEN + 1))


def test_transaction_that_would_not_decode_is_not_built() -> None:
    # An RSA-4096-sized key, signature and full data encode to more than MAX_TX_BYTES:
    # decode() refuses such bytes, so the constructor must refuse the value too.
    with pytest.raises(TooLarge):
        unsigned(key_type=1, public_key=bytes(550), signature=bytes(512),
                 data=bytes(MAX_TX_DATA))
    ok = unsigned(key_type=1, public_key=bytes(294), signature=bytes(256),
                  data=bytes(MAX_TX_DATA))
    assert len(ok.raw) <= MAX_TX_BYTES
    assert Transaction.decode(ok.raw) == ok


def test_transaction_is_frozen() -> None:
    tx = transfer(1, address(2), 5, nonce=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tx.amount = 6  # type: ignore[misc]


# --- BlockHeader ------------------------------------------------------------------------------


def test_header_hash_and_seal_hash() -> None:
    h = header()
    assert h.raw == pack(h.fields())
    assert h.hash == crypto.sha256(h.raw)
    assert h.seal_hash == crypto.sha256(pack([HEADER_DOMAIN, *h.fields()[:-1]]))
    signed = h.replace(signer_key_type=0, signer_public_key=key(1).public_key,
                       signature=bytes(64))
    resigned = signed.replace(signature=b"\x01" * 64)
    assert resigned.seal_hash == signed.seal_hash  # the seal does not cover itself
    assert resigned.hash != signed.hash  # the block hash does
    assert h.replace(nonce=10).seal_hash != h.seal_hash  # the proof covers the nonce
    assert signed.seal_hash != h.seal_hash  # and the signer's key


def test_header_replace_and_fields_order() -> None:
    h = header()
    assert h.fields() == [1, bytes(range(32)), 1000, address(3), bytes(32), bytes(32), 4, 9,
                          b"x", b"", 0, b"", b""]
    assert h.replace(height=2).height == 2 and h.replace(height=2).parent == h.parent
    voting = h.replace(vote=bytes(20) + b"\x01")
    assert voting.fields()[9] == bytes(20) + b"\x01" and voting.hash != h.hash
    assert voting.seal_hash != h.seal_hash  # the seal and the proof cover the vote
    assert BlockHeader.from_fields(tuple(h.fields())) == h
    with pytest.raises(Malformed):
        BlockHeader.from_fields(h.fields())  # lists are not what decode produces
    with pytest.raises(Malformed):
        BlockHeader.from_fields(tuple(h.fields()[:-1]))


def test_header_signer_address() -> None:
    assert header().signer == b""
    s = signer(5)
    h = header(signer_key_type=0, signer_public_key=s.public_key)
    assert h.signer == s.address


@pytest.mark.parametrize("name, value", [
    ("height", -1), ("height", True), ("parent", bytes(31)), ("parent", ZERO_HASH.hex()),
    ("timestamp", -1), ("timestamp", 1.5), ("coinbase", bytes(19)), ("tx_root", bytes(33)),
    ("state_root", b""), ("difficulty", 256), ("difficulty", -1), ("nonce", 2**64),
    ("nonce", -1), ("extra", "x"), ("signer_key_type", 256),
    ("signer_public_key", bytes(crypto.RSA_MAX_PUBLIC_LEN + 1)),
])
def test_header_rejects_bad_fields(name: str, value: Any) -> None:
    with pytest.raises(Malformed):
        header(**{name: value})


def test_header_refusals_name_the_field() -> None:
    with pytest.raises(Malformed, match="parent must be 32 bytes"):
        header(parent=bytes(31))
    with pytest.raises(TooLarge, match=f"extra longer than {MAX_EXTRA} bytes"):
        header(extra=bytes(MAX_EXTRA + 1))


def test_header_extra_is_bounded() -> None:
    assert header(extra=bytes(MAX_EXTRA)).extra == bytes(MAX_EXTRA)
    with pytest.raises(TooLarge):
        header(extra=bytes(MAX_EXTRA + 1))
    assert header(nonce=2**64 - 1).nonce == 2**64 - 1


# --- Block ------------------------------------------------------------------------------------


def test_block_encoding() -> None:
    txs = (transfer(1, address(2), 5, nonce=0), transfer(1, address(2), 5, nonce=1))
    b = Block(header(), txs)
    assert b.raw == pack([b.header.fields(), [tx.raw for tx in txs]])
    assert b.hash == b.header.hash and b.height == 1
    assert Block.decode(b.raw) == b
    empty = Block(header(), ())
    assert Block.decode(empty.raw).txs == ()


def test_a_block_is_its_header_then_its_body() -> None:
    for txs in ((), tuple(transfer(1, address(2), 5, nonce=n) for n in range(20))):
        b = Block(header(), txs)
        assert b.body == pack([tx.raw for tx in txs])
        assert block_raw(b.header, b.body) == b.raw
        # another header over the same body: the block it would be
        other = header(height=7, extra=b"x" * 40)
        assert block_raw(other, b.body) == Block(other, txs).raw


def test_an_offered_body_is_taken_only_for_the_very_bytes() -> None:
    txs = tuple(transfer(1, address(2), 5, nonce=n) for n in range(3))
    template = Block(header(), txs)
    sealed = Block(header(nonce=9), txs)
    offered = Block.decode(sealed.raw, body=lambda _: template)
    assert offered == sealed and offered.raw == sealed.raw and offered.txs is txs
    # a header encoded another way (a height as uint64, not a fixint) before the same body
    # is not those bytes: decoded in full, and refused as non-canonical
    fields = sealed.header.fields()
    wide = b"\x92\x9d\xcf" + (1).to_bytes(8, "big") + pack(fields)[2:] + template.body
    with pytest.raises(Malformed, match="non-canonical"):
        Block.decode(wide, body=lambda _: template)
    # another body under the template's header: its own transactions, read one by one
    fewer = Block(sealed.header, txs[:2])
    decoded = Block.decode(fewer.raw, body=lambda _: template)
    assert decoded.txs == txs[:2] and decoded.txs is not txs
    with pytest.raises(Malformed):
        Block.decode(b"\xc1", body=lambda _: template)


def test_a_block_outline_is_the_header_and_the_transaction_ids() -> None:
    txs = (transfer(1, address(2), 5, nonce=0), transfer(1, address(2), 5, nonce=1))
    b = Block(header(), txs)
    outline = BlockOutline.decode(b.raw)
    assert outline.header == b.header and outline.hash == b.hash
    assert outline.tx_ids == b.tx_ids == (txs[0].id, txs[1].id)
    assert outline.size == b.size == len(b.raw) and outline.height == 1
    assert BlockOutline.decode(Block(header(), ()).raw).tx_ids == ()
    # with the ids known already, only the header is read
    known = BlockOutline.decode(b.raw, b"".join(b.tx_ids))
    assert known == outline
    with pytest.raises(Malformed):
        BlockOutline.decode(b"\xc1", b"".join(b.tx_ids))
    for bad in (pack([b.header.fields()]), pack([b.header.fields(), [1]]),
                pack([b.header.fields()[:5], []]), b"\xc1"):
        with pytest.raises(Malformed):
            BlockOutline.decode(bad)


def test_a_block_s_header_is_read_without_its_transactions() -> None:
    txs = (transfer(1, address(2), 5, nonce=0),)
    b = Block(header(), txs)
    assert peek_header(b.raw) == b.header
    # what comes after the header is not read: a body that is no transaction list still
    # names its block (reading it in full refuses it)
    assert peek_header(pack([b.header.fields(), 7])) == b.header
    with pytest.raises(Malformed):
        Block.decode(pack([b.header.fields(), 7]))
    for bad in (pack([b.header.fields()]), pack([b.header.fields()[:5], []]),
                pack({"h": 1}), pack([]), b"", b"\xc1", b"\x92"):
        assert peek_header(bad) is None

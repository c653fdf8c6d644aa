"""Canonical msgpack: one value, one byte form; everything else is `Malformed`."""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor

import msgpack
import pytest

from common.encoding import pack, unpack, unpack_canonical
from common.errors import Malformed, TooLarge
from common.types import Block, Transaction
from tests.framework.rules import Chain, address, make_genesis, transfer


def tx_fields_raw(parts: list[bytes], header: bytes = b"\x99") -> bytes:
    return header + b"".join(parts)


@pytest.fixture(scope="module")
def tx() -> Transaction:
    return transfer(1, address(2), 5, nonce=0, fee=1, data=b"hi")


def encoded_fields(tx: Transaction) -> list[bytes]:
    parts = [pack(f) for f in tx.fields()]
    assert tx_fields_raw(parts) == tx.raw  # the array header is a fixarray of 9
    return parts


def test_pack_uses_bin_for_bytes_and_str_for_text() -> None:
    assert pack(b"\x01") == b"\xc4\x01\x01"
    assert pack("a") == b"\xa1a"
    assert pack([1, 2]) == b"\x92\x01\x02"


def test_pack_rejects_unencodable_values_as_malformed() -> None:
    for value in (2**64, -(2**63) - 1, object(), {1, 2}):
        with pytest.raises(Malformed) as info:
            pack(value)
        assert info.value.code == "malformed"


def test_a_failed_pack_leaves_nothing_for_the_next() -> None:
    # packers are reused: half a value written before the failure must not lead the next
    with pytest.raises(Malformed):
        pack([b"\x07" * 300, object()])
    assert pack([1]) == b"\x91\x01"


def test_threads_packing_at_once_each_get_their_own_values() -> None:
    values = [[bytes([t]) * (50 + i), i] for t in range(4) for i in range(500)]
    with ThreadPoolExecutor(4) as pool:
        packed = list(pool.map(pack, values))
    assert packed == [msgpack.packb(v, use_bin_type=True) for v in values]


def test_unpack_returns_tuples_and_round_trips() -> None:
    value = [1, b"x", "y", [True, None], {"k": 2}]
    assert unpack(pack(value)) == (1, b"x", "y", (True, None), {"k": 2})
    assert unpack_canonical(pack(value)) == unpack(pack(value))


@pytest.mark.parametrize("data", [b"", b"\x92\x01", b"\xc1", b"\x01\x02", b"\xa2\xff\xfe",
                                  b"\x81\x01\x02"])
def test_unpack_rejects_garbage(data: bytes) -> None:
    # empty, truncated, reserved byte, trailing bytes, bad UTF-8, int map key
    with pytest.raises(Malformed):
        unpack(data)


def test_unpack_bounds_the_input_size() -> None:
    with pytest.raises(TooLarge) as info:
        unpack(pack(b"x" * 100), max_size=50)
    assert info.value.code == "too_large"


@pytest.mark.parametrize("data", [
    b"\xcc\x05",                        # uint8 for a fixint
    b"\xce\x00\x00\x00\x05",            # uint32 for a fixint
    b"\xcd\x00\xff",                    # uint16 for a uint8
    b"\xd0\x05",                        # int8 for a positive fixint
    b"\xd9\x01a",                       # str8 for a fixstr
    b"\xc5\x00\x01x",                   # bin16 for a bin8
    b"\xdc\x00\x01\x01",                # array16 for a fixarray
    b"\xca" + struct.pack(">f", 1.5),   # float32 (packb always writes float64)
])
def test_unpack_canonical_rejects_non_minimal_forms(data: bytes) -> None:
    unpack(data)  # msgpack itself accepts them...
    with pytest.raises(Malformed, match="non-canonical"):
        unpack_canonical(data)  # ...the canonical decoder does not


# --- Transaction.decode -----------------------------------------------------------------------


def test_transaction_decode_round_trip(tx: Transaction) -> None:
    again = Transaction.decode(tx.raw)
    assert again == tx and again.id == tx.id and again.raw == tx.raw


@pytest.mark.parametrize("index, encoding", [
    (1, b"\xcc\x00"),                          # nonce 0 as uint8
    (1, b"\xce\x00\x00\x00\x00"),              # nonce 0 as uint32
    (5, b"\xcf" + (5).to_bytes(8, "big")),     # amount 5 as uint64
    (6, b"\xd1\x00\x01"),                      # fee 1 as int16
    (7, b"\xc5\x00\x02hi"),                    # data as bin16
])
def test_transaction_decode_rejects_non_canonical_ints_and_bins(
        tx: Transaction, index: int, encoding: bytes) -> None:
    parts = encoded_fields(tx)
    parts[index] = encoding
    raw = tx_fields_raw(parts)
    assert unpack(raw) == unpack(tx.raw)  # same value, other bytes
    with pytest.raises(Malformed) as info:
        Transaction.decode(raw)
    assert info.value.code == "malformed"


def test_transaction_decode_rejects_float_for_int(tx: Transaction) -> None:
    parts = encoded_fields(tx)
    parts[5] = b"\xcb" + struct.pack(">d", 5.0)
    with pytest.raises(Malformed, match="amount"):
        Transaction.decode(tx_fields_raw(parts))


def test_transaction_decode_rejects_true_for_amount(tx: Transaction) -> None:
    parts = encoded_fields(tx)
    parts[5] = b"\xc3"  # true
    with pytest.raises(Malformed, match="amount"):
        Transaction.decode(tx_fields_raw(parts))


def test_transaction_decode_rejects_out_of_range_amounts(tx: Transaction) -> None:
    parts = encoded_fields(tx)
    for amount in (2**63, 2**64 - 1, 0, -1):
        parts[5] = pack(amount)
        with pytest.raises(Malformed, match="amount"):
            Transaction.decode(tx_fields_raw(parts))
    # 2**64 does not even have a msgpack encoding
    with pytest.raises(Malformed):
        pack([*tx.fields()[:5], 2**64, *tx.fields()[6:]])


def test_transaction_decode_rejects_array16_header(tx: Transaction) -> None:
    raw = tx_fields_raw(encoded_fields(tx), header=b"\xdc\x00\x09")
    with pytest.raises(Malformed, match="non-canonical"):
        Transaction.decode(raw)


def test_transaction_decode_rejects_map_instead_of_array(tx: Transaction) -> None:
    names = ["chain_id", "nonce", "key_type", "public_key", "to", "amount", "fee", "data",
             "signature"]
    raw = pack(dict(zip(names, tx.fields(), strict=True)))
    with pytest.raises(Malformed, match="array"):
        Transaction.decode(raw)


def test_transaction_decode_rejects_trailing_bytes(tx: Transaction) -> None:
    with pytest.raises(Malformed):
        Transaction.decode(tx.raw + b"\x00")


def test_transaction_decode_rejects_wrong_arity_and_types(tx: Transaction) -> None:
    with pytest.raises(Malformed):
        Transaction.decode(pack(tx.fields()[:-1]))
    with pytest.raises(Malformed):
        Transaction.decode(pack([*tx.fields(), b""]))
    with pytest.raises(Malformed, match="to"):
        Transaction.decode(pack([*tx.fields()[:4], tx.to.hex(), *tx.fields()[5:]]))
    with pytest.raises(Malformed):
        Transaction.decode(pack(b"not an array"))


def test_transaction_decode_bounds_size(tx: Transaction) -> None:
    with pytest.raises(TooLarge):
        Transaction.decode(tx.raw + bytes(5000))


# --- Block.decode -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def block() -> Block:
    chain = Chain(make_genesis())
    return chain.build([transfer(1, address(2), 5, nonce=0, fee=1)])


def test_block_decode_round_trip(block: Block) -> None:
    again = Block.decode(block.raw)
    assert again == block and again.hash == block.hash and again.raw == block.raw


def test_block_decode_rejects_trailing_bytes(block: Block) -> None:
    with pytest.raises(Malformed):
        Block.decode(block.raw + b"\xc0")


def test_block_decode_rejects_non_canonical_header_int(block: Block) -> None:
    header = [pack(f) for f in block.header.fields()]
    header[0] = b"\xce" + block.height.to_bytes(4, "big")  # height as uint32
    raw = b"\x92" + b"\x9d" + b"".join(header) + pack([tx.raw for tx in block.txs])
    assert unpack(raw) == unpack(block.raw)
    with pytest.raises(Malformed, match="non-canonical"):
        Block.decode(raw)


def test_block_decode_rejects_float_height(block: Block) -> None:
    fields = block.header.fields()
    fields[0] = float(fields[0])
    with pytest.raises(Malformed, match="height"):
        Block.decode(pack([fields, [tx.raw for tx in block.txs]]))


def test_block_decode_rejects_map_and_bad_shapes(block: Block) -> None:
    txs = [tx.raw for tx in block.txs]
    with pytest.raises(Malformed):
        Block.decode(pack({"header": block.header.fields(), "txs": txs}))
    with pytest.raises(Malformed):
        Block.decode(pack([block.header.fields()[:-1], txs]))
    with pytest.raises(Malformed):
        Block.decode(pack([block.header.fields(), [list(block.txs[0].fields())]]))
    with pytest.raises(Malformed):
        Block.decode(pack([block.header.fields(), txs, b""]))
    with pytest.raises(Malformed):
        Block.decode(pack([block.header.fields(), txs[0]]))


def test_block_decode_rejects_non_canonical_transaction_inside(block: Block) -> None:
    tx = block.txs[0]
    parts = encoded_fields(tx)
    parts[1] = b"\xcc\x00"
    inner = tx_fields_raw(parts)
    raw = pack([block.header.fields(), [inner]])  # outer encoding canonical, inner not
    with pytest.raises(Malformed, match="non-canonical"):
        Block.decode(raw)


def test_msgpack_itself_is_lenient_which_is_why_we_check() -> None:
    # The trap recorded in DESIGN §10: different bytes, same value.
    assert msgpack.unpackb(b"\xcc\x05") == msgpack.unpackb(b"\x05")

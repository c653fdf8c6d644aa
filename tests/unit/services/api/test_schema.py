"""The gateway's request checks (`services.api.schema`): every class of bad input gets its
error code, a transaction is accepted in each of its forms, a batch fails item by item."""

from __future__ import annotations

from typing import Any

import msgpack
import orjson
import pytest

from common.crypto import KeyType, PrivateKey, Signer
from common.errors import Malformed
from common.signed import SignedTx, read_tx
from common.types import MAX_AMOUNT, Transaction
from services.api import schema
from tests.unit.services.api.support import (
    CHAIN,
    DROP,
    TO,
    as_json,
    code_of,
    signed,
    signed_anyway,
)

# --- transactions in -------------------------------------------------------------------------


def test_valid_transaction_round_trips_in_every_accepted_form() -> None:
    tx = signed(data=b"\x01\x02")
    assert schema.parse_submission(as_json(tx), CHAIN) == tx
    assert schema.parse_submission(as_json(tx, key_type=0), CHAIN) == tx
    assert schema.parse_submission(as_json(tx, to="0x" + TO.hex().upper()), CHAIN) == tx
    assert schema.parse_submission({"raw": tx.raw.hex()}, CHAIN) == tx
    # what GET /txs/{id} shows can be posted back: id and from are checked, not refused
    echoed = as_json(tx, id=tx.id.hex(), **{"from": tx.sender.hex()})
    assert schema.parse_submission(echoed, CHAIN) == tx
    no_data = signed()
    assert schema.parse_submission(as_json(no_data, data=DROP), CHAIN) == no_data


def test_rsa_transaction_is_accepted() -> None:
    rsa = Signer(PrivateKey.generate(KeyType.RSA))
    tx = signed(signer=rsa)
    assert schema.parse_submission(as_json(tx), CHAIN) == tx
    assert schema.parse_submission(as_json(tx, key_type=1), CHAIN) == tx


BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("amount is a bool", {"amount": True}, "malformed"),
    ("fee is a bool", {"fee": False}, "malformed"),
    ("amount is a float", {"amount": 10.0}, "malformed"),
    ("amount is a string", {"amount": "10"}, "malformed"),
    ("amount is null", {"amount": None}, "malformed"),
    ("amount is 2^64", {"amount": 2**64}, "malformed"),
    ("amount is 2^63", {"amount": MAX_AMOUNT + 1}, "malformed"),
    ("amount is negative", {"amount": -1}, "malformed"),
    ("amount is zero", {"amount": 0}, "malformed"),
    ("nonce is negative", {"nonce": -1}, "malformed"),
    ("chain id is 2^32", {"chain_id": 2**32}, "malformed"),
    ("fee is missing", {"fee": DROP}, "malformed"),
    ("signature is missing", {"signature": DROP}, "malformed"),
    ("unknown field", {"memo": "hi"}, "malformed"),
    ("unknown key type", {"key_type": "secp256k1"}, "malformed"),
    ("key type 2", {"key_type": 2}, "malformed"),
    ("key type true", {"key_type": True}, "malformed"),
    ("to is short", {"to": "11" * 19}, "malformed"),
    ("to is long", {"to": "11" * 21}, "malformed"),
    ("to is not hex", {"to": "zz" * 20}, "malformed"),
    ("to has whitespace", {"to": "11 " + "11" * 19}, "malformed"),
    ("to is a number", {"to": 11}, "malformed"),
    ("data has odd length", {"data": "abc"}, "malformed"),
    ("data has unicode digits", {"data": "\u0661\u0662"}, "malformed"),
    ("data is too long", {"data": "00" * 1025}, "too_large"),
    ("public key too long", {"public_key": "00" * 601}, "too_large"),
    ("public key wrong length", {"public_key": "00" * 31}, "malformed"),
    ("signature too long", {"signature": "00" * 513}, "too_large"),
    ("signature flipped", {"signature": "00" * 64}, "bad_signature"),
    ("signature empty", {"signature": ""}, "bad_signature"),
    ("amount changed after signing", {"amount": 11}, "bad_signature"),
    ("id does not match", {"id": "00" * 32}, "malformed"),
    ("from does not match", {"from": "00" * 20}, "malformed"),
]


@pytest.mark.parametrize("why,changes,code", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_bad_transaction_field(why: str, changes: dict[str, Any], code: str) -> None:
    assert code_of(schema.parse_submission, as_json(signed(), **changes), CHAIN) == code


def test_wrong_chain_is_refused_before_the_signature_check() -> None:
    tx = signed(chain_id=CHAIN + 1)
    assert code_of(schema.parse_submission, as_json(tx), CHAIN) == "wrong_chain"
    assert code_of(schema.parse_submission, as_json(tx, signature="00" * 64), CHAIN) \
        == "wrong_chain"


@pytest.mark.parametrize("value", [None, [], "tx", 1, True, {"raw": 1}, {"raw": "zz"},
                                   {"raw": ""}, {"raw": "90"}, {"raw": "00" * 3000},
                                   {"raw": "aa", "amount": 1}])
def test_bad_transaction_shapes(value: Any) -> None:
    assert code_of(schema.parse_submission, value, CHAIN) in ("malformed", "too_large")


def test_raw_must_be_canonical() -> None:
    tx = signed()
    # nonce 0 packed as a uint8 (0xcc 0x00) instead of a fixint: same value, other bytes
    fields = tx.fields()
    noncanon = b"\x99" + msgpack.packb(fields[0]) + b"\xcc\x00" + b"".join(
        msgpack.packb(f, use_bin_type=True) for f in fields[2:])
    assert msgpack.unpackb(noncanon) == msgpack.unpackb(tx.raw) and noncanon != tx.raw
    assert code_of(schema.parse_submission, {"raw": noncanon.hex()}, CHAIN) == "malformed"


def test_loads_refuses_what_is_not_json() -> None:
    for body in (b"", b"{", b"NaN", b"\xff", b'{"a": 1}x', b"[" * 2000 + b"]" * 2000):
        assert code_of(schema.loads, body) == "malformed"
    # integers beyond 64 bits come back as floats, which no int field accepts
    assert type(schema.loads(b"18446744073709551616")) is float


# --- batches ---------------------------------------------------------------------------------


def test_batch_gives_one_outcome_per_item_in_order() -> None:
    good = [signed(n) for n in range(3)]
    items = [as_json(good[0]), {"raw": good[1].raw.hex()}, as_json(good[2], amount=True),
             as_json(signed(3), signature="00" * 64), as_json(signed(4, chain_id=7)),
             as_json(good[0]), "nonsense"]
    out = schema.parse_batch(orjson.dumps({"txs": items}), CHAIN)
    assert out[:2] == [SignedTx.of(t) for t in good[:2]]
    codes = [o.error.code if isinstance(o, schema.Rejected) else "ok" for o in out]
    assert codes == ["ok", "ok", "malformed", "bad_signature", "wrong_chain", "duplicate",
                     "malformed"]
    ids = [o.id if isinstance(o, schema.Rejected) else o.id for o in out]
    assert ids[2] == b"" and ids[5] == good[0].id and len(ids[3]) == len(ids[4]) == 32


@pytest.mark.parametrize("body,code", [
    (b"[]", "malformed"), (b"{}", "malformed"), (b'{"txs": {}}', "malformed"),
    (b'{"txs": [], "extra": 1}', "malformed"), (b"not json", "malformed"),
    (orjson.dumps({"txs": [{}] * (schema.MAX_BATCH + 1)}), "too_large"),
])
def test_bad_batch_bodies(body: bytes, code: str) -> None:
    assert code_of(schema.parse_batch, body, CHAIN) == code


def test_empty_batch_is_fine() -> None:
    assert schema.parse_batch(b'{"txs": []}', CHAIN) == []


def test_binary_batch_gives_the_same_outcomes_as_json() -> None:
    good = [signed(n) for n in range(3)]
    forged = signed(3).with_signature(bytes(64))
    fields = good[2].fields()
    noncanon = b"\x99" + msgpack.packb(fields[0]) + b"\xcc\x00" + b"".join(
        msgpack.packb(f, use_bin_type=True) for f in fields[2:])
    items = [good[0].raw, good[1].raw, forged.raw, signed(4, chain_id=7).raw, good[0].raw,
             good[0].raw.hex(), 7, good[2].raw[:-1], noncanon, good[2].raw]
    out = schema.parse_batch(msgpack.packb(items, use_bin_type=True), CHAIN, binary=True)
    codes = [o.error.code if isinstance(o, schema.Rejected) else "ok" for o in out]
    assert codes == ["ok", "ok", "bad_signature", "wrong_chain", "duplicate", "malformed",
                     "malformed", "malformed", "malformed", "ok"]
    assert [o for o in out if not isinstance(o, schema.Rejected)] == [SignedTx.of(t)
                                                                       for t in good]
    assert out[2].id == forged.id and out[5].id == b""
    # the JSON form of the same items reads alike
    as_raw = [{"raw": t.raw.hex()} for t in (good[0], good[1], forged)]
    assert schema.parse_batch(orjson.dumps({"txs": as_raw}), CHAIN)[:2] == out[:2]


def test_a_binary_item_s_other_fields_are_state_s_to_refuse_unless_its_signature_fails() -> None:
    # a signature that verifies over an amount of 0: read for its signature only, and
    # passed on (state decodes it in full and refuses it, `malformed`, in the same place)
    zero = signed_anyway(0)
    with pytest.raises(Malformed, match="amount"):
        Transaction.decode(zero)
    out = schema.parse_batch(msgpack.packb([zero], use_bin_type=True), CHAIN, binary=True)
    assert out == [read_tx(zero)]
    # a signature that does not verify either: refused for the first rule a full decode
    # breaks, as before the signature was checked
    forged = signed_anyway(MAX_AMOUNT + 1, signature=bytes(64))
    out = schema.parse_batch(msgpack.packb([forged], use_bin_type=True), CHAIN, binary=True)
    assert isinstance(out[0], schema.Rejected) and out[0].error.code == "malformed"
    assert out[0].id == b""


@pytest.mark.parametrize("body,code", [
    (msgpack.packb({"txs": []}), "malformed"), (msgpack.packb(b"\x99"), "malformed"),
    (b"", "malformed"), (b"\x92\xc4\x01", "malformed"), (msgpack.packb([]) + b"\x90", "malformed"),
    (msgpack.packb([b""] * (schema.MAX_BATCH + 1), use_bin_type=True), "too_large"),
])
def test_bad_binary_batch_bodies(body: bytes, code: str) -> None:
    assert code_of(schema.parse_batch, body, CHAIN, binary=True) == code


def test_the_binary_form_is_named_by_its_media_type() -> None:
    for header in ("application/msgpack", "Application/MsgPack", "application/msgpack; x=1"):
        assert schema.is_msgpack(header)
    for header in ("", "application/json", "application/x-msgpack", "text/plain"):
        assert not schema.is_msgpack(header)
    assert schema.parse_batch(msgpack.packb([]), CHAIN, binary=True) == []


def test_a_msgpack_reply_is_given_to_who_accepts_it() -> None:
    for header in ("application/msgpack", "application/json, Application/MsgPack;q=0.9",
                   "text/html,application/msgpack ; q=1"):
        assert schema.accepts_msgpack(header)
    for header in ("", "*/*", "application/json", "application/msgpack;q=0",
                   "application/msgpack; q=0.0, application/json", "application/x-msgpack",
                   "application/msgpack;q=x"):
        assert not schema.accepts_msgpack(header)


# --- other inputs ----------------------------------------------------------------------------


def test_block_ref() -> None:
    parse = schema.BLOCK_REF.parse
    assert parse("0") == (0, b"")
    assert parse("42") == (42, b"")
    assert parse("ab" * 32) == (0, b"\xab" * 32)
    assert parse("0x" + "ab" * 32) == (0, b"\xab" * 32)
    for bad in ("", "-1", "01", "1.0", "1e3", "\u0661", "9" * 19, "ab" * 31, "zz" * 32,
                "head", " 1"):
        assert code_of(parse, bad) == "malformed", bad


def test_send_request() -> None:
    req = schema.parse_send({"to": TO.hex(), "amount": 5})
    assert (req.to, req.amount, req.fee, req.data) == (TO, 5, 0, b"")
    req = schema.parse_send({"to": TO.hex(), "amount": 5, "fee": 2, "data": "ff"})
    assert (req.fee, req.data) == (2, b"\xff")
    bad: Any
    for bad in ({"to": TO.hex()}, {"amount": 5}, {"to": TO.hex(), "amount": 0},
                {"to": TO.hex(), "amount": 5, "from": TO.hex()},
                {"to": TO.hex(), "amount": 5.5}, [], {"to": "x", "amount": 1},
                {"to": TO.hex(), "amount": 1, "fee": -1}):
        assert code_of(schema.parse_send, bad) == "malformed", bad


def test_peer_endpoint_and_wait() -> None:
    assert schema.parse_add_peer({"endpoint": "tcp://10.0.0.7:30333"}) == (
        "tcp://10.0.0.7:30333", schema.ADD_PEER_WAIT_MS)
    keyed = "tcp://[::1]:30333#" + "ab" * 32
    assert schema.parse_add_peer({"endpoint": keyed, "wait_ms": 60_000}) == (keyed, 60_000)
    bad: Any
    for bad in ({}, {"endpoint": 1}, {"endpoint": "udp://h:1"}, {"endpoint": "tcp://h"},
                {"endpoint": "tcp://h:1", "key": "x"}, {"endpoint": "tcp://" + "h" * 300 + ":1"},
                {"endpoint": "tcp://h:1#abc"}, ["tcp://h:1"],
                {"endpoint": "tcp://h:1", "wait_ms": 0},
                {"endpoint": "tcp://h:1", "wait_ms": 60_001},
                {"endpoint": "tcp://h:1", "wait_ms": 1.5}):
        assert code_of(schema.parse_add_peer, bad) == "malformed", bad


def test_history_cursor() -> None:
    parse = schema.BEFORE.parse
    assert parse("42:0") == (42, 0)
    assert parse(f"{2**64 - 1}:{2**32 - 1}") == (2**64 - 1, 2**32 - 1)
    for bad in ("42", "42:", ":0", "a:b", f"{2**64}:0", f"0:{2**32}", "1:2:3", 7):
        assert code_of(parse, bad) == "malformed", bad


def test_path_parameters_name_what_is_wrong() -> None:
    with pytest.raises(Malformed, match="transaction id"):
        schema.TX_ID.parse("1234")
    assert schema.ACCOUNT.parse("0x" + "AB" * 20) == b"\xab" * 20
    assert code_of(schema.SENDER.parse, "ab" * 19) == "malformed"

"""The gateway's reply shapes (`services.api.replies`): rendering from domain objects and bus
replies, and that every shape's documented examples are valid instances of its own model."""

from __future__ import annotations

from typing import Any

import pytest

from common import messages
from common.status import TxStatus
from common.types import Block, BlockHeader, BlockOutline
from services.api import chainhealth, node_replies, replies, schema
from services.api.spec import Shape
from tests.unit.services.api.support import CHAIN, TO, signed

SHAPES = [v for module in (replies, node_replies, chainhealth) for v in vars(module).values()
          if isinstance(v, Shape)]


def test_tx_json_is_what_clients_can_post_back() -> None:
    tx = signed(data=b"hello")
    doc = replies.TX_OUT.render(tx)
    assert doc["id"] == tx.id.hex() and doc["from"] == tx.sender.hex()
    assert doc["amount"] == 10 and doc["key_type"] == "ed25519" and doc["data"] == "68656c6c6f"
    assert doc["size"] == len(tx.raw)
    doc.pop("size")
    assert schema.parse_submission(doc, CHAIN) == tx


def header() -> BlockHeader:
    return BlockHeader(height=3, parent=b"\x01" * 32, timestamp=5, coinbase=TO,
                       tx_root=b"\x02" * 32, state_root=b"\x03" * 32, difficulty=4, nonce=9,
                       extra=b"x")


def test_block_json() -> None:
    tx = signed()
    block = Block(header(), (tx,))
    doc = replies.BLOCK_OUT.render(block, total_weight=6, confirmations=2, on_main_chain=True)
    assert doc["hash"] == block.hash.hex() and doc["txs"][0]["id"] == tx.id.hex()
    assert doc["header"]["state_root"] == "03" * 32 and doc["total_weight"] == 6
    assert doc["header"]["signer_key_type"] == ""  # an unsigned (PoW) header names no key
    assert (doc["tx_count"], doc["size"]) == (1, len(block.raw))
    replies.BLOCK_OUT.model.model_validate(doc)
    outline = BlockOutline.decode(block.raw)  # a page's block: its ids, undecoded txs
    assert (outline.hash, outline.tx_ids, outline.size) == (block.hash, (tx.id,),
                                                            len(block.raw))
    summary = replies.block_summary_json(outline, confirmations=1)
    assert summary["txs"] == [tx.id.hex()]
    assert (summary["tx_count"], summary["size"]) == (1, len(block.raw))
    full = replies.block_summary_json(block, confirmations=1)
    assert full["txs"] == [replies.TX_OUT.render(tx)]
    assert {k: v for k, v in full.items() if k != "txs"} == \
        {k: v for k, v in summary.items() if k != "txs"}
    for page in (summary, full):
        replies.BLOCK_SUMMARY.model.model_validate(page)


def reply(tx_raw: bytes, status: str, **kw: Any) -> messages.TxReply:
    base: dict[str, Any] = dict(block_hash=b"", height=-1, index=-1, confirmations=0)
    base.update(kw)
    return messages.TxReply(tx_raw, TxStatus(status), **base)


def test_every_transaction_status_is_explained_and_documented() -> None:
    tx = signed(nonce=7)
    other = signed(nonce=7, fee=9)
    block_hash = b"\x05" * 32
    cases: dict[TxStatus, tuple[messages.TxReply, dict[str, Any]]] = {
        TxStatus.PENDING: (reply(tx.raw, "pending"), {}),
        TxStatus.QUEUED: (reply(tx.raw, "queued", expected_nonce=3), {"expected_nonce": 3}),
        TxStatus.CONFIRMED: (reply(tx.raw, "confirmed", block_hash=block_hash, height=3,
                                   index=0, confirmations=2),
                             {"block": block_hash.hex(), "height": 3, "index": 0,
                              "confirmations": 2}),
        TxStatus.REJECTED: (reply(tx.raw, "rejected", reason="nonce_too_low"),
                            {"reason": "nonce_too_low"}),
        TxStatus.REPLACED: (reply(tx.raw, "replaced", replaced_by=other.id),
                            {"replaced_by": other.id.hex()}),
        TxStatus.DROPPED: (reply(tx.raw, "dropped", reason="evicted"), {"reason": "evicted"}),
    }
    assert set(cases) == set(TxStatus)
    for status, (bus_reply, shown) in cases.items():
        doc = replies.tx_status_json(bus_reply)
        replies.TX_STATUS_OUT.model.model_validate(doc)
        assert doc["status"] == status and doc["id"] == tx.id.hex()
        nulls = {"block", "height", "index", "expected_nonce", "reason", "replaced_by"}
        assert {k: doc[k] for k in shown} == shown
        assert all(doc[k] is None for k in nulls - set(shown)), doc
        assert doc["explanation"] and doc["explanation"] != status


def test_error_body_of_an_error_and_of_a_state_result() -> None:
    from common.errors import NonceGap

    assert replies.error_body(NonceGap("nonce 9 is ahead")) == {
        "error": {"code": "nonce_gap", "message": "nonce 9 is ahead"}}
    result = messages.TxRefusal(0, b"\x01" * 32, "underpriced", "pays too little")
    assert replies.error_body(result)["error"] == {"code": "underpriced",
                                                   "message": "pays too little"}


def test_absent_services_render_their_documented_empty_forms() -> None:
    for doc, shape in ((node_replies.mining_json(None), node_replies.MINING_OUT),
                       (node_replies.peers_json(None), node_replies.PEERS_OUT)):
        shape.model.model_validate(doc)
    assert node_replies.mining_json(None)["validator"] is False
    assert node_replies.peers_json(None)["p2p"] is False
    mining = node_replies.mining_json(messages.MiningReply(True, TO, 4, b"", 0, 0, 0, ""))
    assert mining == {"mining": True, "validator": True, "address": TO.hex(),
                      "blocks_sealed": 4, "last_block": None, "last_sealed_ms": None,
                      "failing_since_ms": None, "last_error": ""}
    failing = node_replies.mining_json(messages.MiningReply(
        True, TO, 4, b"", 0, 7, 5, "rejected by state: bad_state_root"))
    assert (failing["failing_since_ms"], failing["last_error"]) == (
        5, "rejected by state: bad_state_root")


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
def test_documented_examples_are_valid_replies(shape: Shape) -> None:
    for example in shape.examples:
        shape.model.model_validate(example)


def test_render_refuses_a_name_the_shape_does_not_declare() -> None:
    with pytest.raises(TypeError, match="no field"):
        replies.COUNT_OUT.render(count=1, total=2)
    with pytest.raises(TypeError, match="pass it by name"):
        node_replies.HEALTH.render(status="ok")  # `gateway`, `state`... are not given

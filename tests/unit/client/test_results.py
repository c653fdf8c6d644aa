"""What the client reads from the node's JSON (client/results.py): here `GET /status`'s
assume-valid sync, typed, and in one line as `ccoin status` and `ccoin node status` print
it."""

from __future__ import annotations

from typing import Any

import pytest

from client import AssumeValidStatus, NodeStatus
from common.errors import Malformed
from common.status import AssumeValidState

BLOCK = "6a" * 32


def status(assume_valid: Any = None, **more: Any) -> NodeStatus:
    doc = {"network_id": 7, "genesis": "00" * 32, "height": 7, "head": "11" * 32,
           "total_weight": 8, **more}
    if assume_valid is not None:
        doc["assume_valid"] = assume_valid
    return NodeStatus.from_json(doc)


def assume_valid(state: str, height: int | None = None, skipped: int = 0,
                 blocks: int = 0) -> dict[str, Any]:
    return {"block": BLOCK, "state": state, "height": height, "signatures_skipped": skipped,
            "blocks_skipped": blocks}


@pytest.mark.parametrize(("doc", "line"), [
    (assume_valid("searching"),
     f"block {BLOCK} not found yet in the peers' headers; 0 signatures skipped in 0 blocks"),
    (assume_valid("found", 40_000, 1_250, 500),
     f"block {BLOCK} found at height 40000 on a peer's chain; 1,250 signatures skipped in "
     "500 blocks"),
    (assume_valid("missing"),
     f"block {BLOCK} not on the last peer's chain: its blocks are verified in full; 0 "
     "signatures skipped in 0 blocks"),
    (assume_valid("reached", 40_000, 1_250_000, 40_000),
     f"block {BLOCK} reached at height 40000: later blocks are verified in full; 1,250,000 "
     "signatures skipped in 40,000 blocks"),
])
def test_assume_valid_says_where_the_block_is_and_what_was_skipped(
        doc: dict[str, Any], line: str) -> None:
    av = status(doc).assume_valid
    assert av is not None and av.line() == line
    assert av.state == AssumeValidState(doc["state"]) and av.height == doc["height"]
    assert (av.signatures_skipped, av.blocks_skipped) == (doc["signatures_skipped"],
                                                          doc["blocks_skipped"])


def test_no_line_when_assume_valid_is_off_or_unknown() -> None:
    off = {"block": None, "state": "off", "height": None, "signatures_skipped": 0,
           "blocks_skipped": 0}
    av = status(off).assume_valid
    assert av == AssumeValidStatus(None, AssumeValidState.OFF, None, 0, 0)
    assert av.line() is None
    assert status().assume_valid is None  # no p2p answers, or a node from before the field
    newer = status(assume_valid("pondering")).assume_valid  # a state this client predates
    assert newer is not None and newer.state == "pondering"
    assert newer.line() == f"block {BLOCK} pondering; 0 signatures skipped in 0 blocks"


def test_an_assume_valid_of_the_wrong_shape_is_malformed() -> None:
    with pytest.raises(Malformed):
        status(["off"])
    with pytest.raises(Malformed):
        status({"block": BLOCK})  # no state

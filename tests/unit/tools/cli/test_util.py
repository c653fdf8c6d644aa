"""What the `ccoin` commands share (tools/cli/util.py): assume-valid sync in one line, as
`ccoin status` and `ccoin node status` print it from `GET /api/v1/status`."""

from __future__ import annotations

from typing import Any

import pytest

from tools.cli.util import assume_valid_line

BLOCK = "6a" * 32


def status(state: str, height: int | None = None, skipped: int = 0,
           blocks: int = 0) -> dict[str, Any]:
    return {"height": 7, "assume_valid": {"block": BLOCK, "state": state, "height": height,
                                          "signatures_skipped": skipped,
                                          "blocks_skipped": blocks}}


@pytest.mark.parametrize(("doc", "line"), [
    (status("searching"),
     f"block {BLOCK} not found yet in the peers' headers; 0 signatures skipped in 0 blocks"),
    (status("found", 40_000, 1_250, 500),
     f"block {BLOCK} found at height 40000 on a peer's chain; 1,250 signatures skipped in "
     "500 blocks"),
    (status("missing"),
     f"block {BLOCK} not on the last peer's chain: its blocks are verified in full; 0 "
     "signatures skipped in 0 blocks"),
    (status("reached", 40_000, 1_250_000, 40_000),
     f"block {BLOCK} reached at height 40000: later blocks are verified in full; 1,250,000 "
     "signatures skipped in 40,000 blocks"),
])
def test_assume_valid_says_where_the_block_is_and_what_was_skipped(
        doc: dict[str, Any], line: str) -> None:
    assert assume_valid_line(doc) == line


def test_no_line_when_assume_valid_is_off_or_unknown() -> None:
    off = {"block": None, "state": "off", "height": None, "signatures_skipped": 0,
           "blocks_skipped": 0}
    assert assume_valid_line({"assume_valid": off}) is None
    assert assume_valid_line({"assume_valid": None}) is None  # no p2p service answers
    assert assume_valid_line({"height": 7}) is None  # a node from before the field

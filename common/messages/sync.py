"""The state service's requests and replies for p2p's sync: where two chains part, the
headers and blocks after it, and whole verified blocks imported in order (see
`services/p2p/sync.py`). Declared and checked as `common.messages.state` declares its own.
"""

from __future__ import annotations

from typing import Annotated

from common.fields import U63, Hash32, Len, OptHash32
from common.messages.envelope import Message, message
from common.messages.state import MAX_IDS, Height, Limit
from common.status import BlockStatus

MAX_LOCATOR = 200  # hashes in a locator: ~log2 of any chain's height, and then some


@message("get_locator")
class GetLocator(Message):
    """Block locator of the main chain: head, then exponentially sparser, then genesis."""

    pass


@message("locator")
class LocatorReply(Message):
    hashes: tuple[Hash32, ...]


@message("get_blocks_after")
class GetBlocksAfter(Message):
    """Main-chain blocks after the first `locator` hash found on the main chain, oldest
    first, at most `limit` of them and about `max_bytes`."""

    locator: Annotated[tuple[Hash32, ...], Len(0, MAX_LOCATOR)]
    limit: Limit
    max_bytes: U63


@message("get_headers_after")
class GetHeadersAfter(Message):
    """Main-chain headers (their encodings) after the first `locator` hash found on the main
    chain, oldest first, at most `limit` of them (p2p's `GHD`)."""

    locator: Annotated[tuple[Hash32, ...], Len(0, MAX_LOCATOR)]
    limit: Limit


@message("header_range")
class HeaderRangeReply(Message):
    headers: tuple[bytes, ...]
    height: U63


@message("has_blocks")
class HasBlocks(Message):
    hashes: Annotated[tuple[Hash32, ...], Len(0, MAX_IDS)]


@message("has_blocks_reply")
class HasBlocksReply(Message):
    known: tuple[bool, ...]


@message("submit_blocks")
class SubmitBlocks(Message):
    """Blocks whose seals and transaction signatures p2p has verified, parents first."""

    blocks: tuple[bytes, ...]


@message("block_outcome")
class BlockOutcome(Message):
    """`status`: head | side | known | error (`code`, `message`; `hash` empty and `height`
    -1 when the bytes were not a block)."""

    hash: OptHash32
    height: Height
    status: BlockStatus
    code: str
    message: str


@message("submit_blocks_result")
class SubmitBlocksResult(Message):
    outcomes: tuple[BlockOutcome, ...]


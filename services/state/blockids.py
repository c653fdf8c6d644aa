"""The transaction ids of the blocks state imported lately, kept joined for pages of blocks.

A page of blocks (`GET /blocks`) shows each block's transaction ids. The blocks are stored
as they were sent, so their ids are not: whoever shows a page would hash every transaction
of every block again. A client following the chain reads each new block soon after it is
imported, when state had every id at hand; it keeps them for the last blocks, bounded by
how many ids in all, not by blocks, since a block may hold one transaction or thousands.
A block's ids are a function of its hash, so a reorg leaves the kept ones true.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from common.types import Block

KEEP_IDS = 1 << 16  # 2 MiB of ids: the last 16 blocks of 4,000 transfers


class RecentBlockIds:
    """Block hash -> its transactions' ids joined, for the blocks remembered last."""

    __slots__ = ("_ids", "_count", "_limit")

    def __init__(self, limit: int = KEEP_IDS) -> None:
        self._ids: OrderedDict[bytes, bytes] = OrderedDict()
        self._count = 0
        self._limit = limit

    def remember(self, blocks: Iterable[Block]) -> None:
        for block in blocks:
            if block.hash in self._ids or len(block.txs) > self._limit:
                continue
            self._ids[block.hash] = joined = b"".join([tx.id for tx in block.txs])
            self._count += len(joined) // 32
            while self._count > self._limit:
                _, old = self._ids.popitem(last=False)
                self._count -= len(old) // 32

    def get(self, block_hash: bytes) -> bytes:
        """The block's ids joined, or empty when they are not kept."""
        return self._ids.get(block_hash, b"")

"""A batch's signatures checked on every core of the gateway's host.

libsodium releases the GIL while it verifies, so threads of this one process verify in
parallel: a batch is cut into one part per core, each checked on a thread of the pool (p2p
does the same with a block's transactions, `services.p2p.blocks`). Without it one batch is
verified on one core while the other waits for the next request, and the signature check
is most of what a transfer costs the node. A few signatures are checked on the calling
thread: handing them to the pool would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from common.signed import SignedTx

PARALLEL_MIN = 64  # fewer signatures than this (2-3 ms of work) stay on the event loop


def verify_part(txs: Sequence[SignedTx]) -> list[bool]:
    return [tx.verifies() for tx in txs]


class SignatureChecker:
    """Verifies transactions' signatures across `threads` threads (default: one per core)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="verify")

    async def verify(self, txs: Sequence[SignedTx]) -> list[bool]:
        """Whether each transaction's signature verifies, in order."""
        if len(txs) < PARALLEL_MIN:
            return verify_part(txs)
        step = -(-len(txs) // self.threads)
        loop = asyncio.get_running_loop()
        parts = await asyncio.gather(*(loop.run_in_executor(self._pool, verify_part,
                                                            txs[i:i + step])
                                       for i in range(0, len(txs), step)))
        return [ok for part in parts for ok in part]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

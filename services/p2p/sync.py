"""The sync state machine (ccoin feature 17): idle → syncing from the best peer → idle.

A round starts when a peer's tip is better than ours by the fork-choice rule
(`consensus.is_better_tip`: more total weight; in PoA a lower hash at equal weight) — in its
hello, a ping, a
block announce), when a block arrives whose parent we lack (an orphan: its sender is asked
first), or when `SyncNow` forces one. The syncer then repeatedly asks that peer for the
blocks after a locator (`GBL`), has each batch verified and imported, and stops when the
peer's head is reached, our weight is not below the peer's, the peer has nothing more, or
it fails to answer in time or sends a bad batch (then the next-best peer gets its turn, and
the failed one waits a minute before it is asked again).

The locator starts with the last block this session received (its "cursor") and continues
with state's main-chain locator: while a heavier fork is still lighter than our chain its
blocks import as a side branch and our locator does not move, but the cursor does, so the
next batch continues the fork instead of repeating it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from common import wire
from common.errors import CcoinError
from services.p2p import scoring

if TYPE_CHECKING:
    from services.p2p.peer import Peer

log = logging.getLogger("ccoin.p2p.sync")

BATCH_BLOCKS = 500
BATCH_BYTES = 8 * 1024 * 1024
REPLY_TIMEOUT_S = 15.0
FAILED_PAUSE_S = 60.0  # a peer that let a round down is not asked again for this long
IDLE_CHECK_S = 2.0
MAX_ROUNDS = 100_000


class PeerGone(Exception):
    """The link closed while a round waited for its reply."""


class Syncer:
    def __init__(self, peers: Callable[[], list[Peer]], tip: Callable[[], tuple[int, bytes, int]],
                 locator: Callable[[], Awaitable[tuple[bytes, ...]]],
                 import_blocks: Callable[[Peer, tuple[bytes, ...]], Awaitable[bytes | None]],
                 refresh_tip: Callable[[], Awaitable[None]],
                 punish: Callable[[Peer, int, str], None],
                 better: Callable[[int, bytes, int, bytes], bool], *,
                 reply_timeout: float = REPLY_TIMEOUT_S) -> None:
        """`reply_timeout`: how long a round waits for a peer's `BLS` before it gives up on
        that peer (the protocol's 15 s; tests of the machine alone pass less)."""
        self._peers = peers
        self._tip = tip
        self._locator = locator
        self._import = import_blocks
        self._refresh_tip = refresh_tip
        self._punish = punish
        self._better = better  # (their weight, their head, our weight, our head)
        self.reply_timeout = reply_timeout
        self.state = "idle"
        self.target: Peer | None = None
        self.rounds = 0
        self._seq = 0
        self._pending: tuple[Peer, int, asyncio.Future[wire.Blocks]] | None = None
        self._wake = asyncio.Event()
        self._forced = False
        self._orphan_from: Peer | None = None

    # --- triggers ---------------------------------------------------------------------------

    def poke(self) -> None:
        """Something changed (a peer's tip, our head): look again."""
        self._wake.set()

    def force(self) -> None:
        self._forced = True
        self._wake.set()

    def orphan(self, peer: Peer) -> None:
        """`peer` sent a block whose parent we lack: fetch its chain first."""
        if self.state == "idle":
            self._orphan_from = peer
        self._wake.set()

    @property
    def sync_target(self) -> int:
        return self.target.height if self.target is not None else 0

    # --- replies -----------------------------------------------------------------------------

    def on_blocks(self, peer: Peer, msg: wire.Blocks) -> bool:
        """Hand a `BLS` to the waiting round; False when nobody asked for it."""
        pending = self._pending
        if pending is None or pending[0] is not peer or pending[1] != msg.request:
            return False
        if not pending[2].done():
            pending[2].set_result(msg)
        return True

    def peer_closed(self, peer: Peer) -> None:
        pending = self._pending
        if pending is not None and pending[0] is peer and not pending[2].done():
            pending[2].set_exception(PeerGone())

    # --- the machine ---------------------------------------------------------------------------

    def choose(self) -> Peer | None:
        """The peer to sync from now, or None (stay idle)."""
        ready = [p for p in self._peers() if p.ready and not p.closed]
        now = time.monotonic()
        orphan, self._orphan_from = self._orphan_from, None
        if orphan is not None and orphan in ready and now - orphan.sync_failed_at > FAILED_PAUSE_S:
            return orphan
        heavier = [p for p in ready
                   if self._ahead(p) and p.total_weight != p.sync_exhausted_at
                   and now - p.sync_failed_at > FAILED_PAUSE_S]
        if not heavier and self._forced:
            heavier = ready
        self._forced = False
        if not heavier:
            return None
        return max(heavier, key=lambda p: (p.total_weight, -p.latency_ms))

    def _ahead(self, peer: Peer) -> bool:
        """Whether `peer`'s tip is better than ours by the fork-choice rule."""
        _, head, weight = self._tip()
        return self._better(peer.total_weight, peer.head, weight, head)

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), IDLE_CHECK_S)
            except TimeoutError:
                pass
            self._wake.clear()
            peer = self.choose()
            if peer is None:
                continue
            try:
                await self.sync_from(peer)
            except CcoinError as exc:  # state unavailable and the like: try again later
                log.warning("sync from %s stopped: %s", peer.label, exc)
                await asyncio.sleep(1.0)

    async def sync_from(self, peer: Peer) -> None:
        self.state, self.target = "syncing", peer
        start = self._tip()
        log.info("syncing from %s (its height %d, weight %d; ours %d, weight %d)",
                 peer.label, peer.height, peer.total_weight, start[0], start[2],
                 extra={"peer": peer.label})
        cursor = b""
        try:
            for _ in range(MAX_ROUNDS):
                if peer.closed:
                    break
                locator = await self._locator()
                if cursor:
                    locator = (cursor, *locator)
                if len(locator) > wire.MAX_LOCATOR:  # keep the genesis hash last
                    locator = (*locator[:wire.MAX_LOCATOR - 1], locator[-1])
                reply = await self._ask(peer, locator)
                if reply is None:
                    break
                self.rounds += 1
                peer.update_tip(reply.height, reply.head, reply.total_weight)
                if not reply.blocks:
                    if peer.total_weight > self._tip()[2]:
                        self._punish(peer, scoring.EMPTY_SYNC, "claimed more weight, sent nothing")
                    peer.sync_exhausted_at = peer.total_weight
                    break
                last = await self._import(peer, reply.blocks)
                await self._refresh_tip()
                if last is None:
                    peer.sync_failed_at = time.monotonic()
                    break  # a bad batch: the peer has been penalized
                cursor = last
                if last == reply.head or not self._ahead(peer):
                    break
        finally:
            self.state, self.target = "idle", None
            end = self._tip()
            log.info("sync from %s done: height %d -> %d", peer.label, start[0], end[0],
                     extra={"peer": peer.label})
            self._wake.set()  # another peer may still be ahead

    async def _ask(self, peer: Peer, locator: tuple[bytes, ...]) -> wire.Blocks | None:
        self._seq = (self._seq + 1) % 2**32
        fut: asyncio.Future[wire.Blocks] = asyncio.get_running_loop().create_future()
        self._pending = (peer, self._seq, fut)
        try:
            if not peer.send(wire.GetBlocks(self._seq, locator, BATCH_BLOCKS)):
                # its link is full or gone: pause it, or the next round picks it again at
                # once, and as nothing in that loop waits the event loop itself would spin
                peer.sync_failed_at = time.monotonic()
                return None
            return await asyncio.wait_for(fut, self.reply_timeout)
        except TimeoutError:
            self._punish(peer, scoring.SYNC_TIMEOUT, "no blocks in time")
            peer.sync_failed_at = time.monotonic()
            return None
        except PeerGone:
            return None
        finally:
            self._pending = None

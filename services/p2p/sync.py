"""The sync state machine (ccoin feature 17): idle → syncing from the best peer → idle.

A round starts when a peer's tip is better than ours by the fork-choice rule
(`consensus.is_better_tip`: more total weight; in PoA a lower hash at equal weight) — in its
hello, a ping, a block announce — when a block arrives whose parent we lack (an orphan: its
sender is asked first), or when `SyncNow` forces one. The syncer then repeatedly asks that
peer for the blocks after a locator (`GBL`), has each batch verified and imported, and
stops when the peer's head is reached, our weight is not below the peer's, the peer has
nothing more, or it fails to answer in time or sends a bad batch (then the next-best peer
gets its turn, and the failed one waits a minute before it is asked again).

The locator starts with the last block this session received (its "cursor") and continues
with state's main-chain locator: while a heavier fork is still lighter than our chain its
blocks import as a side branch and our locator does not move, but the cursor does, so the
next batch continues the fork instead of repeating it.

Everything the machine needs from the node comes through one collaborator, `SyncHost`: the
ready peers, our tip and the fork-choice rule, state's locator, the import of a batch, and
the penalty for a peer that fails us.

With assume-valid (`services/p2p/assumevalid.py`), while our chain lacks the assumed block a
round first walks the peer's headers (`GHD`/`HDS`) to learn which blocks are its ancestors;
those skip their signature checks when the batches come (`BlockRelay`). A peer whose chain
does not reach the hash is said so once and then synced from with every signature verified.

A state that cannot store blocks (`storage_unavailable`: low disk space, a failed write,
damage; services/state/storage.py) cannot follow: the syncer says so once and asks again
only every `STORAGE_PAUSE_S`, rather than fetching batches it cannot hand over.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from typing import Any, Protocol, TypeVar

from common import wire
from common.errors import CcoinError, InvalidBlock, Malformed, StorageUnavailable
from common.types import BlockHeader, peek_header
from services.p2p import scoring
from services.p2p.assumevalid import (
    MAX_ASSUMED,
    AssumeValid,
    BrokenRun,
    ancestry,
    check_run,
    decode_header,
)
from services.p2p.chainview import Tip
from services.p2p.peer import Peer

log = logging.getLogger("ccoin.p2p.sync")

BATCH_BLOCKS = 500
# A sync's first batch is small, so verifying starts after a short fetch; the next (full)
# batch is asked for as soon as it is in, and arrives while it is verified.
FIRST_BATCH_BLOCKS = 4
BATCH_BYTES = 8 * 1024 * 1024
REPLY_TIMEOUT_S = 15.0
FAILED_PAUSE_S = 60.0  # a peer that let a round down is not asked again for this long
IDLE_CHECK_S = 2.0
STORAGE_PAUSE_S = 10.0
MAX_ROUNDS = 100_000
HEADERS_BATCH = wire.MAX_HEADERS_PER_MESSAGE

R = TypeVar("R", wire.Blocks, wire.Headers)
# A batch handed to state: true once state accepted every block of it (see SyncHost).
Handover = asyncio.Future[bool]


def _consume(handed: Handover) -> None:
    """Retrieve a hand-over's outcome nobody waits for any more, so asyncio does not report
    its exception as never retrieved; the batch's own requests logged what went wrong."""
    if not handed.cancelled():
        handed.exception()


class SyncState(enum.Enum):
    IDLE = "idle"
    SYNCING = "syncing"


class SyncHost(Protocol):
    """What the sync machine needs from the node."""

    @property
    def tip(self) -> Tip:
        """Our tip, as state last told it."""

    def ready_peers(self) -> list[Peer]: ...

    def better(self, candidate: Tip, current: Tip) -> bool:
        """The fork-choice rule: whether `candidate` beats `current`."""

    async def height_of(self, block_hash: bytes) -> int | None:
        """The block's height when state stores it, else None."""

    async def locator(self) -> tuple[bytes, ...]:
        """State's block locator of our main chain (head first, genesis last)."""

    async def import_blocks(self, peer: Peer, raws: tuple[bytes, ...],
                            after: Handover | None = None) -> tuple[bytes | None, Handover]:
        """Verify a batch from `peer` and hand it to state after the batch before it
        (`after`). Returns once it is verified: the last block's hash (None when a block
        failed its checks: the peer has been penalized) and the hand-over, which comes true
        when state accepted all of it (false when state refused a block: the peer has been
        penalized) and raises what state's requests raised."""

    async def refresh_tip(self) -> None:
        """Re-read our tip from state."""

    def punish(self, peer: Peer, points: int, why: str) -> None: ...


class PeerGone(Exception):
    """The link closed while a round waited for its reply."""


class Syncer:
    def __init__(self, host: SyncHost, *, reply_timeout: float = REPLY_TIMEOUT_S,
                 storage_pause: float = STORAGE_PAUSE_S,
                 assume: AssumeValid | None = None) -> None:
        """`reply_timeout`: how long a round waits for a peer's `BLS` before it gives up on
        that peer (the protocol's 15 s); `storage_pause`: how long it waits before trying
        again when state could not store what it fetched; `assume`: the assume-valid block
        (None: every signature is verified)."""
        self.host = host
        self.assume = assume
        self.reply_timeout = reply_timeout
        self.storage_pause = storage_pause
        self.state = SyncState.IDLE
        self.target: Peer | None = None
        self.rounds = 0
        self._seq = 0
        self._pending: tuple[Peer, int, asyncio.Future[Any], type[Any]] | None = None
        # requests asked ahead and then not wanted (the round ended): their replies are
        # dropped when they come, not charged to the peer as unsolicited
        self._dropped: deque[tuple[Peer, int]] = deque(maxlen=4)
        self._wake = asyncio.Event()
        self._forced = False
        self._orphan_from: Peer | None = None
        self._storage_paused = False

    # --- triggers ---------------------------------------------------------------------------

    def poke(self) -> None:
        """Something changed (a peer's tip, our head): look again."""
        self._wake.set()

    def force(self) -> None:
        self._forced = True
        self._wake.set()

    def orphan(self, peer: Peer) -> None:
        """`peer` sent a block whose parent we lack: fetch its chain first."""
        if self.state is SyncState.IDLE:
            self._orphan_from = peer
        self._wake.set()

    @property
    def syncing(self) -> bool:
        return self.state is SyncState.SYNCING

    @property
    def sync_target(self) -> int:
        return self.target.tip.height if self.target is not None else 0

    # --- replies -----------------------------------------------------------------------------

    def on_blocks(self, peer: Peer, msg: wire.Blocks) -> bool:
        """Hand a `BLS` to the waiting round; one nobody asked for (or asked for too long
        ago) costs the peer points, and False is returned."""
        return self._answer(peer, msg, "blocks")

    def on_headers(self, peer: Peer, msg: wire.Headers) -> bool:
        """Hand an `HDS` to the waiting headers phase, as `on_blocks`."""
        return self._answer(peer, msg, "headers")

    def _answer(self, peer: Peer, msg: wire.Blocks | wire.Headers, what: str) -> bool:
        pending = self._pending
        if (pending is None or pending[0] is not peer or pending[1] != msg.request
                or not isinstance(msg, pending[3])):
            if (peer, msg.request) in self._dropped:
                return True
            self.host.punish(peer, scoring.UNSOLICITED, f"{what} we did not ask for")
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
        ready = [p for p in self.host.ready_peers() if p.ready]
        now = time.monotonic()
        orphan, self._orphan_from = self._orphan_from, None
        if orphan is not None and orphan in ready and now - orphan.sync.failed_at > FAILED_PAUSE_S:
            return orphan
        heavier = [p for p in ready
                   if self._ahead(p) and p.tip.total_weight != p.sync.exhausted_at
                   and now - p.sync.failed_at > FAILED_PAUSE_S]
        if not heavier and self._forced:
            heavier = ready
        self._forced = False
        if not heavier:
            return None
        return max(heavier, key=lambda p: (p.tip.total_weight, -p.liveness.latency_ms))

    def _ahead(self, peer: Peer) -> bool:
        """Whether `peer`'s tip is better than ours by the fork-choice rule."""
        return self.host.better(peer.tip, self.host.tip)

    async def run(self) -> None:
        try:  # a node restarted after syncing past the assumed block says so at once
            await self.check_reached()
        except CcoinError as exc:
            log.warning("assume-valid: cannot ask state for block %s: %s",
                        self.assume.target.hex() if self.assume else "", exc)
        while True:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that arrives as the wait completes, and the node would not stop
                async with asyncio.timeout(IDLE_CHECK_S):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            peer = self.choose()
            if peer is None:
                continue
            try:
                await self.sync_from(peer)
            except StorageUnavailable as exc:
                if not self._storage_paused:
                    log.warning("sync paused: state cannot store blocks: %s", exc.message)
                    self._storage_paused = True
                await asyncio.sleep(self.storage_pause)
                self._wake.set()  # the pause was the wait: look again at once
                continue
            except CcoinError as exc:  # state unavailable and the like: try again later
                log.warning("sync from %s stopped: %s", peer.label, exc)
                await asyncio.sleep(1.0)
                continue
            if self._storage_paused:
                log.info("sync resumed: state stores blocks again")
                self._storage_paused = False

    async def sync_from(self, peer: Peer) -> None:
        host = self.host
        self.state, self.target = SyncState.SYNCING, peer
        start = host.tip
        log.info("syncing from %s (its height %d, weight %d; ours %d, weight %d)",
                 peer.label, peer.tip.height, peer.tip.total_weight, start.height,
                 start.total_weight, extra={"peer": peer.label})
        skipped = self.assume.skipped if self.assume is not None else 0
        ahead: asyncio.Task[wire.Blocks | None] | None = None
        handed: Handover | None = None  # the last batch handed to state
        try:
            rounds = MAX_ROUNDS if await self._find_assumed(peer) else 0
            limit = FIRST_BATCH_BLOCKS
            reply: wire.Blocks | None = None
            for _ in range(rounds):
                if peer.closed:
                    break
                if ahead is not None:
                    reply, ahead = await ahead, None
                else:
                    reply = await self._ask(peer, await self._get_blocks(b"", limit),
                                            wire.Blocks)
                if reply is None:
                    break
                self.rounds += 1
                peer.tip = Tip(reply.height, reply.head, reply.total_weight)
                if not reply.blocks:
                    if peer.tip.total_weight > host.tip.total_weight:
                        host.punish(peer, scoring.EMPTY_SYNC, "claimed more weight, sent nothing")
                    peer.sync.exhausted_at = peer.tip.total_weight
                    break
                # Ask for the next batch now, after the last block of this one, so that it
                # arrives while this one is verified and imported.
                # (a last block that does not parse ends this round when it is imported)
                last_header = peek_header(reply.blocks[-1])
                cursor = last_header.hash if last_header is not None else None
                if cursor is not None and cursor != reply.head:
                    ahead = asyncio.create_task(self._ask(
                        peer, await self._get_blocks(cursor, BATCH_BLOCKS), wire.Blocks))
                limit = BATCH_BLOCKS
                # State imports this batch's last blocks while the next one is verified,
                # but no more than that: the batch before must be in by now. (Memory stays
                # bounded when state is the slower side, and a refusal is seen a batch late
                # at most; the last batch's, when the round ends.)
                previous = handed
                last, handed = await host.import_blocks(peer, reply.blocks, after=previous)
                if last is None or (previous is not None and not await previous):
                    peer.sync.failed_at = time.monotonic()
                    break  # a bad batch: the peer has been penalized
                if last == reply.head or not self._ahead(peer):
                    break
            if handed is not None:
                accepted, handed = await handed, None
                await host.refresh_tip()
                if not accepted:
                    peer.sync.failed_at = time.monotonic()
            if self.assume is not None and self.assume.height:  # shown by a peer: ours yet?
                await self.check_reached()
        finally:
            if ahead is not None:  # the round ended early: the batch asked for is not wanted
                ahead.cancel()
            if handed is not None:  # left by an error: state still gets what was verified
                handed.add_done_callback(_consume)
            self.state, self.target = SyncState.IDLE, None
            skipped = self.assume.skipped - skipped if self.assume is not None else 0
            log.info("sync from %s done: height %d -> %d%s", peer.label, start.height,
                     host.tip.height,
                     f" ({skipped} signatures skipped under assume-valid)" if skipped else "",
                     extra={"peer": peer.label})
            self._wake.set()  # another peer may still be ahead

    # --- assume-valid: the headers phase ----------------------------------------------------

    async def check_reached(self) -> None:
        """Whether our chain holds the assumed block now (then nothing more is skipped)."""
        av = self.assume
        if av is None or av.reached:
            return
        height = await self.host.height_of(av.target)
        if height is not None:
            av.reach(height)
            log.info("assume-valid: block %s is ours (height %d): every signature is "
                     "verified from here on", av.target.hex(), height)

    async def _find_assumed(self, peer: Peer) -> bool:
        """While our chain lacks the assumed block and no peer has shown its ancestry yet,
        walk `peer`'s headers from our locator on and learn the ancestry if it is there.
        False when the peer let us down (no answer, a bad header): the round ends."""
        av = self.assume
        if av is None or not av.enabled or av.found:
            return True
        await self.check_reached()
        if av.reached:
            return True
        if peer.sync.assume_missing_at == peer.tip.total_weight:
            return True  # its chain did not have it, and has not changed since
        locator = await self.host.locator()
        if len(locator) > wire.MAX_LOCATOR:
            locator = (*locator[:wire.MAX_LOCATOR - 1], locator[-1])
        run: list[bytes] = []
        last: BlockHeader | None = None
        while len(run) < MAX_ASSUMED:
            reply = await self._ask(peer, wire.GetHeaders(self._next_seq(), locator,
                                                          HEADERS_BATCH), wire.Headers)
            if reply is None:
                return False  # no answer (it has been charged and paused)
            try:
                headers = [decode_header(raw) for raw in reply.headers]
                check_run(av.genesis, headers, last, locator)
            except (InvalidBlock, Malformed) as exc:
                self.host.punish(peer, scoring.block_penalty(exc) if isinstance(
                    exc, InvalidBlock) else scoring.MALFORMED, f"bad header: {exc}")
                peer.sync.failed_at = time.monotonic()
                return False
            except BrokenRun as exc:
                log.info("assume-valid: headers from %s stopped: %s", peer.label, exc)
                break
            run.extend(h.hash for h in headers)
            # only this reply is searched: the run before it did not hold the target
            found = (ancestry(run, av.target)
                     if any(h.hash == av.target for h in headers) else None)
            if found is not None:
                av.learn(found, next(h.height for h in headers if h.hash == av.target))
                log.info("assume-valid: block %s found on %s's chain, %d blocks above ours: "
                         "their signatures are not checked", av.target.hex(), peer.label,
                         len(found), extra={"peer": peer.label})
                return True
            if len(headers) < HEADERS_BATCH:
                break  # the peer has nothing more
            last = headers[-1]
            locator = (last.hash,)
        peer.sync.assume_missing_at = peer.tip.total_weight
        av.missing = True
        log.info("assume-valid: block %s is not on %s's chain (%d headers above ours): "
                 "syncing from it with every signature verified", av.target.hex(),
                 peer.label, len(run), extra={"peer": peer.label})
        return True

    # --- requests -----------------------------------------------------------------------------

    async def _get_blocks(self, cursor: bytes, limit: int) -> wire.GetBlocks:
        """The request for the blocks after `cursor` (the last block of the batch before;
        b"": none yet) or else after our chain's locator."""
        locator = await self.host.locator()
        if cursor:
            locator = (cursor, *locator)
        if len(locator) > wire.MAX_LOCATOR:  # keep the genesis hash last
            locator = (*locator[:wire.MAX_LOCATOR - 1], locator[-1])
        return wire.GetBlocks(self._next_seq(), locator, limit)

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % 2**32
        return self._seq

    async def _ask(self, peer: Peer, request: wire.GetBlocks | wire.GetHeaders,
                   reply: type[R]) -> R | None:
        """Send `request` and wait for its `reply` (None: no answer in time, link gone)."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending = (peer, request.request, fut, reply)
        try:
            if not peer.send(request):
                # its link is full or gone: pause it, or the next round picks it again at
                # once, and as nothing in that loop waits the event loop itself would spin
                peer.sync.failed_at = time.monotonic()
                return None
            async with asyncio.timeout(self.reply_timeout):
                return await fut
        except TimeoutError:
            what = "blocks" if reply is wire.Blocks else "headers"
            self.host.punish(peer, scoring.SYNC_TIMEOUT, f"no {what} in time")
            peer.sync.failed_at = time.monotonic()
            return None
        except PeerGone:
            return None
        except asyncio.CancelledError:
            self._dropped.append((peer, request.request))
            raise
        finally:
            self._pending = None

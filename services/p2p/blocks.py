"""Block relay (docs/protocol.md §13.4, §13.5): blocks in from peers, our heads out to them,
and the main chain served to peers that sync from us.

A `BLK` is checked without state first (`verify.py`: decode, proof, seal, body, signatures
split over worker threads), then handed to state; a block whose parent we lack starts a
sync from its sender instead. Every new head state publishes is announced as `BLK` to each
ready peer that does not know it, once (per-peer seen caches). A `GBL` is answered with the
blocks after the first locator hash state knows on its main chain.

A block of a sync batch that assume-valid vouches for (`assumevalid.py`: an ancestor of the
assumed block, learnt from the peer's headers) skips its transactions' signatures, and
nothing else; a block announced live never does. `GHD` is answered with the main-chain
headers after the locator, as `GBL` with blocks.

Sync batches are imported by a pipeline that keeps both cores busy: while the verify threads
check one block's signatures, the event loop reads the next block, and state imports the
blocks already verified, each block as soon as it is (a chunk of small ones together). The
pipeline runs on across a batch's end: the next batch is verified while state imports the
last blocks of this one (`import_blocks` returns its hand-over to state, not state's answer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from common import messages, wire
from common.errors import (
    CcoinError,
    InvalidBlock,
    Malformed,
    NotFound,
    StorageUnavailable,
    UnknownParent,
    error_from_code,
)
from common.signed import SignedBlock, SignedTx
from common.status import BlockStatus
from common.types import BlockHeader, peek_header
from runtime import bus
from services.p2p import scoring
from services.p2p.assumevalid import AssumeValid
from services.p2p.chainview import ChainView, Tip
from services.p2p.discipline import Discipline
from services.p2p.peer import Peer
from services.p2p.peers import PeerTable
from services.p2p.scoring import LruDict, LruSet
from services.p2p.sync import BATCH_BLOCKS, BATCH_BYTES, HEADERS_BATCH, Handover, Syncer
from services.p2p.verify import Verifier, bad_signature_in, first_bad_signature

log = logging.getLogger("ccoin.p2p")

SEEN_BLOCKS = 8192  # hashes of blocks state accepted
RECENT_BLOCKS = 32  # encodings kept to announce without asking state for them
RECENT_BLOCK_MAX = 4 * 1024 * 1024
# A SubmitBlocks request holds at most this many blocks and about this many bytes: small
# enough that state answers other clients in between, and that the pipeline's last stage
# (state importing the final chunk while p2p has nothing left to verify) is short.
SUBMIT_CHUNK = 100
SUBMIT_CHUNK_BYTES = 64 * 1024
SUBMIT_TIMEOUT_S = 30.0
VERIFY_THREADS = 2
PARALLEL_VERIFY_MIN = 64  # fewer signatures than this are not worth a thread hand-off


class _Checking:
    """A block read and checked but for its signatures, which the verify threads check."""

    def __init__(self, block: SignedBlock, raw: bytes, todo: list[SignedTx],
                 parts: list[list[SignedTx]], found: list[asyncio.Future[int | None]],
                 cache: bool) -> None:
        self.block = block
        self.raw = raw
        self.todo = todo
        self.parts = parts
        self.found = found
        self.cache = cache  # keep the verified ids (see _start_check)

    async def checked(self, verifier: Verifier) -> None:
        """Wait for the signature checks; the typed error of the first bad signature."""
        try:
            bad_at = await asyncio.gather(*self.found)
        finally:
            self.cancel()
        for part, bad in zip(self.parts, bad_at, strict=True):
            if bad is not None:
                raise bad_signature_in(self.block, part[bad])
        verifier.remember(self.todo, cache=self.cache)

    def cancel(self) -> None:
        """Drop the checks not started yet (a bad block before this one ended the batch)."""
        for future in self.found:
            future.cancel()


def _rejection(outcome: messages.BlockOutcome) -> CcoinError:
    """State's refusal of one block, as the typed error it raised."""
    return error_from_code(outcome.code, outcome.message)


class BlockRelay:
    def __init__(self, state: bus.BusClient, chain: ChainView, peers: PeerTable,
                 discipline: Discipline, verifier: Verifier, syncer: Syncer,
                 assume: AssumeValid | None = None) -> None:
        self.state = state
        self.assume = assume
        self.chain = chain
        self.peers = peers
        self.discipline = discipline
        self.verifier = verifier
        self.syncer = syncer
        self.seen: LruSet[bytes] = LruSet(SEEN_BLOCKS)
        self.recent: LruDict[bytes, bytes] = LruDict(RECENT_BLOCKS)
        # libsodium releases the GIL: block signatures are verified on these threads,
        # which also keeps the event loop (pings, other peers) responsive meanwhile
        self.pool = ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="verify")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # --- in ---------------------------------------------------------------------------------

    async def on_new_block(self, peer: Peer, msg: wire.NewBlock) -> None:
        known = peek_header(msg.block)
        if known is not None and known.hash in self.seen:
            # state has it already: its body is not even read, let alone its signatures
            # checked (a syncing peer may announce every block it imports, each a second of
            # both cores to verify again)
            self._note_tip(peer, known, msg.total_weight)
            return
        block = await self._check_block(peer, msg.block)
        if block is None:
            return
        h = block.hash
        self._note_tip(peer, block.header, msg.total_weight)
        if h in self.seen:
            return
        if block.height > self.chain.tip.height + 1:  # cannot connect yet: fetch what lies between
            self.syncer.orphan(peer)
            return
        if len(msg.block) <= RECENT_BLOCK_MAX:
            self.recent.put(h, msg.block)
        try:
            result = await self.state.request(messages.SubmitBlocks((msg.block,)),
                                              messages.SubmitBlocksResult,
                                              timeout=SUBMIT_TIMEOUT_S, retries=1)
        except StorageUnavailable as exc:  # ours, not the peer's: sync fetches it later
            log.debug("block %d from %s not stored: %s", block.height, peer.label, exc)
            return
        outcome = result.outcomes[0]
        if outcome.status != BlockStatus.ERROR:
            self.seen.add(h)
            if outcome.status != BlockStatus.KNOWN:
                peer.last_new_block = time.monotonic()  # useful work: eviction protects it
            log.debug("block %d from %s: %s", block.height, peer.label, outcome.status)
            return
        err = _rejection(outcome)
        if isinstance(err, UnknownParent):
            self.syncer.orphan(peer)
        else:
            self.discipline.punish(peer, scoring.block_penalty(err),
                                   f"block {block.height} rejected: {err.code}: {err.message}")

    @staticmethod
    def _note_tip(peer: Peer, header: BlockHeader, total_weight: int) -> None:
        peer.known_blocks.add(header.hash)
        if total_weight >= peer.tip.total_weight:
            peer.tip = Tip(header.height, header.hash, total_weight)

    async def import_blocks(self, peer: Peer, raws: tuple[bytes, ...],
                            after: Handover | None = None) -> tuple[bytes | None, Handover]:
        """Verify a batch from `peer` and hand it to state in order, after the batch before
        it (`after`) was accepted. Returns once every block is verified, with the last
        block's hash (None when one failed its checks: the peer has been penalized) and the
        hand-over, which comes true when state accepted the whole batch.

        Chunks are submitted strictly in order, each after the previous one was accepted, so
        a block never reaches state before its parent and an honest peer is never blamed for
        an orphan we made. The caller does not wait for state's last import: the next batch
        is verified meanwhile, or one core would idle at every batch's end."""
        chunk: list[bytes] = []
        size = 0
        last = b""
        previous = after
        complete = True
        try:
            async for block, raw in self._verified(raws):
                chunk.append(raw)
                size += len(raw)
                last = block.hash
                peer.known_blocks.add(block.hash)
                if len(chunk) >= SUBMIT_CHUNK or size >= SUBMIT_CHUNK_BYTES:
                    previous = asyncio.create_task(
                        self._submit_after(peer, tuple(chunk), previous))
                    chunk, size = [], 0
                await asyncio.sleep(0)  # let the submission go out; keep pings flowing
        except (InvalidBlock, Malformed) as exc:
            self._punish_block(peer, exc)
            complete = False
        if chunk or previous is None:
            previous = asyncio.create_task(self._submit_after(peer, tuple(chunk), previous))
        return (last if complete else None), previous

    async def _submit_after(self, peer: Peer, chunk: tuple[bytes, ...],
                            previous: Handover | None) -> bool:
        if previous is not None and not await previous:
            return False
        if not chunk:
            return True
        result = await self.state.request(messages.SubmitBlocks(chunk),
                                          messages.SubmitBlocksResult,
                                          timeout=SUBMIT_TIMEOUT_S, retries=2)
        for outcome in result.outcomes:
            if outcome.status == BlockStatus.ERROR:
                err = _rejection(outcome)
                self.discipline.punish(peer, scoring.block_penalty(err),
                                       f"block {outcome.height} rejected: {err.code}: "
                                       f"{err.message}")
                return False
            self.seen.add(outcome.hash)
            if outcome.status != BlockStatus.KNOWN:
                peer.last_new_block = time.monotonic()
        return True

    async def _verified(self, raws: tuple[bytes, ...],
                        ) -> AsyncIterator[tuple[SignedBlock, bytes]]:
        """The blocks of a sync batch in order, each once its signatures verified. Reading a
        block overlaps the signature checks of the one before it; the first bad block raises
        its typed error, after every good block before it was yielded."""
        inflight: deque[_Checking] = deque()
        error: InvalidBlock | Malformed | None = None

        async def oldest() -> tuple[SignedBlock, bytes]:
            await inflight[0].checked(self.verifier)
            done = inflight.popleft()
            return done.block, done.raw

        try:
            for raw in raws:
                try:
                    inflight.append(self._start_check(raw, sync=True))
                except (InvalidBlock, Malformed) as exc:
                    error = exc
                    break
                if len(inflight) > 1:
                    yield await oldest()
            while inflight:
                yield await oldest()
            if error is not None:
                raise error
        finally:
            for checking in inflight:
                checking.cancel()

    async def _check_block(self, peer: Peer, raw: bytes) -> SignedBlock | None:
        """A block announced live, fully checked; None (the peer punished) when it fails."""
        try:
            checking = self._start_check(raw)
            await checking.checked(self.verifier)
            return checking.block
        except (InvalidBlock, Malformed) as exc:
            self._punish_block(peer, exc)
        return None

    def _punish_block(self, peer: Peer, exc: InvalidBlock | Malformed) -> None:
        if isinstance(exc, InvalidBlock):
            self.discipline.punish(peer, scoring.block_penalty(exc),
                                   f"invalid block: {exc.code}: {exc}")
        else:
            self.discipline.punish(peer, scoring.MALFORMED, f"undecodable block: {exc}")

    def _start_check(self, raw: bytes, sync: bool = False) -> _Checking:
        """`Verifier.check_block_shape` now, and the block's signatures started on the verify
        threads. In a sync batch, a block assume-valid vouches for has none checked."""
        block, todo = self.verifier.check_block_shape(raw)
        if sync and self.assume is not None and self.assume.skips(block.hash, len(todo)):
            todo = []
        if len(todo) < PARALLEL_VERIFY_MIN:
            parts = [todo] if todo else []
        else:
            step = -(-len(todo) // VERIFY_THREADS)
            parts = [todo[i:i + step] for i in range(0, len(todo), step)]
        loop = asyncio.get_running_loop()
        found = [loop.run_in_executor(self.pool, first_bad_signature, part) for part in parts]
        # The ids of verified transactions are kept so that a block of transactions relayed
        # to us before costs no second check. A synced block's transactions are history: no
        # block to come holds them again, and caching them cost a sync ~1 us a transfer.
        return _Checking(block, raw, todo, parts, found, cache=not sync)

    # --- out --------------------------------------------------------------------------------

    async def announce(self) -> None:
        """Announce our head to the peers that lack it, forever. Heads are coalesced: after
        a burst (a sync batch) only the newest is announced, and a peer that missed one in
        between fetches it as the orphan's parent."""
        changed = self.chain.head_changed
        while True:
            await changed.wait()
            changed.clear()
            await self.announce_head()

    async def announce_head(self) -> None:
        tip = self.chain.tip
        # a peer that has our head or a heavier chain has no use for it: no syncing node
        # sends the blocks it catches up on to peers already past them
        peers = [p for p in self.peers.ready() if tip.hash not in p.known_blocks
                 and p.tip.hash != tip.hash and p.tip.total_weight <= tip.total_weight]
        if not peers or tip.height == 0:
            return  # the genesis block is never announced
        raw = self.recent.get(tip.hash)
        if raw is None:
            try:
                reply = await self.state.request(messages.GetBlock(tip.height, tip.hash),
                                                 messages.BlockReply)
            except NotFound:
                return  # reorged away meanwhile
            except CcoinError as exc:
                log.warning("cannot read block %d to announce it: %s", tip.height, exc)
                return
            raw = reply.block
        frame = wire.encode(wire.NewBlock(raw, tip.total_weight))
        for p in peers:
            p.known_blocks.add(tip.hash)
            p.send_frame(frame)

    async def on_get_headers(self, peer: Peer, msg: wire.GetHeaders) -> None:
        reply = await self.state.request(
            messages.GetHeadersAfter(msg.locator, min(msg.limit, HEADERS_BATCH)),
            messages.HeaderRangeReply)
        tip = self.chain.tip
        peer.send(wire.Headers(msg.request, reply.headers[:wire.MAX_HEADERS_PER_MESSAGE],
                               tip.height, tip.hash, tip.total_weight))

    async def on_get_blocks(self, peer: Peer, msg: wire.GetBlocks) -> None:
        reply = await self.state.request(
            messages.GetBlocksAfter(msg.locator, min(msg.limit, BATCH_BLOCKS), BATCH_BYTES),
            messages.BlockRangeReply)
        tip = self.chain.tip
        peer.send(wire.Blocks(msg.request, reply.blocks[:wire.MAX_BLOCKS_PER_MESSAGE],
                              tip.height, tip.hash, tip.total_weight))

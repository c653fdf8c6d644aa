"""Transaction relay (docs/protocol.md §13.4): transactions in from peers, and what state
pooled out to them.

A `TXS` from a peer is checked without state (strict decoding, our chain id, a signature
that verifies, or one verified before: `verify.py`'s cache) and queued for state, which
gets them in batches (`SubmitTxs`: one round trip for many). Each transaction is handed to
state once (a global seen cache) and a batch with bad ones costs its sender points.

What state accepted into its pool (its `txs` events) is relayed to every ready peer that
does not know it, once per peer, in `TXS` batches of up to 1000 transactions and ~1 MiB.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from common import messages, wire
from common.errors import CcoinError, Malformed
from common.types import Transaction
from runtime import bus
from services.p2p import scoring
from services.p2p.discipline import Discipline
from services.p2p.peer import Peer
from services.p2p.peers import PeerTable
from services.p2p.scoring import LruDict, LruSet
from services.p2p.verify import Verifier

log = logging.getLogger("ccoin.p2p")

TX_BATCH = 1000
TX_BATCH_WAIT_S = 0.01
TX_QUEUE = 50_000
TX_RELAY_BYTES = 1024 * 1024
SEEN_TXS = 200_000
RECENT_TXS = 50_000
POOL_READ = 10_000  # ids per GetTxs request


class TxRelay:
    def __init__(self, state: bus.BusClient, network_id: int, peers: PeerTable,
                 discipline: Discipline, verifier: Verifier) -> None:
        self.state = state
        self.network_id = network_id
        self.peers = peers
        self.discipline = discipline
        self.verifier = verifier
        self.seen: LruSet[bytes] = LruSet(SEEN_TXS)  # handed to state
        self.recent: LruDict[bytes, bytes] = LruDict(RECENT_TXS)  # id -> encoding
        # verified transactions for state, each with the peer that sent it first
        self.inbound: asyncio.Queue[tuple[bytes, Peer]] = asyncio.Queue(TX_QUEUE)
        self.pooled: deque[bytes] = deque(maxlen=TX_QUEUE)  # ids state pooled, to relay
        self._pooled_ready = asyncio.Event()
        self.handed = 0  # transactions handed to state

    # --- in ---------------------------------------------------------------------------------

    def on_txs(self, peer: Peer, msg: wire.Txs) -> None:
        bad = 0
        for raw in msg.txs:
            try:
                tx = Transaction.decode(raw)
            except Malformed:
                bad += 1
                continue
            peer.known_txs.add(tx.id)
            if tx.id in self.seen:
                continue
            if tx.chain_id != self.network_id:
                bad += 1
                continue
            try:
                self.verifier.check_signature(tx)
            except CcoinError:
                bad += 1
                continue
            self.seen.add(tx.id)
            self.recent.put(tx.id, raw)
            try:
                self.inbound.put_nowait((raw, peer))
            except asyncio.QueueFull:
                self.seen.discard(tx.id)  # let a later copy in
        if bad:
            self.discipline.punish(peer, scoring.BAD_TX, f"{bad} bad transaction(s)")

    async def submit(self) -> None:
        """Hand verified transactions to state in batches, forever."""
        while True:
            batch = [await self.inbound.get()]
            deadline = time.monotonic() + TX_BATCH_WAIT_S
            while len(batch) < TX_BATCH:
                try:
                    batch.append(self.inbound.get_nowait())
                except asyncio.QueueEmpty:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    await asyncio.sleep(min(left, 0.002))
            self.handed += len(batch)
            try:
                result = await self.state.request(
                    messages.SubmitTxs(tuple(raw for raw, _ in batch)), messages.SubmitResult)
            except CcoinError as exc:
                log.warning("state did not take %d relayed transaction(s): %s", len(batch), exc)
                continue
            now = time.monotonic()
            for (_, sender), refusal in zip(batch, result.refusals(), strict=False):
                if refusal is None:
                    sender.last_new_tx = now  # useful work: eviction protects it
            if result.refused:
                log.debug("state refused %d of %d relayed transactions (first: %s)",
                          len(result.refused), len(batch), result.refused[0].code)

    # --- out --------------------------------------------------------------------------------

    def pooled_by_state(self, ids: tuple[bytes, ...]) -> None:
        """State's `txs` event: these entered its pool."""
        self.pooled.extend(ids)
        self._pooled_ready.set()

    async def relay(self) -> None:
        """Relay what state accepted into its pool to every peer that lacks it, forever."""
        while True:
            await self._pooled_ready.wait()
            self._pooled_ready.clear()
            ids = list(self.pooled)
            self.pooled.clear()
            peers = self.peers.ready()
            if not peers or not ids:
                continue
            raws = await self._raw_txs(ids)
            for p in peers:
                self._send_unknown(p, raws)
            await asyncio.sleep(0)

    @staticmethod
    def _send_unknown(peer: Peer, raws: list[tuple[bytes, bytes]]) -> None:
        batch: list[bytes] = []
        size = 0
        for tx_id, raw in raws:
            if tx_id in peer.known_txs:
                continue
            peer.known_txs.add(tx_id)
            if len(batch) >= wire.MAX_TXS_PER_MESSAGE or size + len(raw) > TX_RELAY_BYTES:
                peer.send(wire.Txs(tuple(batch)))
                batch, size = [], 0
            batch.append(raw)
            size += len(raw)
        if batch:
            peer.send(wire.Txs(tuple(batch)))

    async def _raw_txs(self, ids: list[bytes]) -> list[tuple[bytes, bytes]]:
        """The encodings of newly pooled transactions: from our cache (what peers sent),
        else from state's pool in one request per `POOL_READ` (a block may have taken
        some)."""
        found: dict[bytes, bytes] = {}
        missing: list[bytes] = []
        for tx_id in ids:
            raw = self.recent.get(tx_id)
            if raw is None:
                missing.append(tx_id)
            else:
                found[tx_id] = raw
        for start in range(0, len(missing), POOL_READ):
            chunk = tuple(missing[start:start + POOL_READ])
            try:
                reply = await self.state.request(messages.GetTxs(chunk), messages.TxsReply)
            except CcoinError as exc:
                log.warning("cannot read the pool to relay transactions: %s", exc)
                break
            for tx_id, raw in zip(chunk, reply.txs, strict=True):
                if raw:
                    found[tx_id] = raw
                    self.recent.put(tx_id, raw)
        return [(i, found[i]) for i in ids if i in found]

"""What the p2p service knows of its own chain, and the requests it makes to state for it.

The state service owns the chain; p2p keeps only its current tip (`Tip`: height, head hash,
total weight), refreshed from state's `head` events and re-read from `GetStatus` after an
event gap, plus the fork-choice rule to compare a peer's tip with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import zmq.asyncio

from common import consensus, messages
from common.errors import CcoinError, Malformed
from common.genesis import Genesis
from runtime import bus
from runtime.buscurve import BusCurve

log = logging.getLogger("ccoin.p2p")

STATE_TIMEOUT_S = 10.0
WAIT_MAX_S = 5.0


@dataclass(frozen=True, slots=True)
class Tip:
    """A chain tip as nodes tell each other: the head's height and hash, and the chain's
    total weight up to it (sosocoin's cumulative difficulty, Clique's summed seal weights)."""

    height: int
    hash: bytes
    total_weight: int


NO_TIP = Tip(0, b"", 0)


class ChainView:
    """Our tip, as state last told it, and the state requests sync and relay need."""

    def __init__(self, state: bus.BusClient, genesis: Genesis) -> None:
        self.state = state
        self.genesis = genesis
        self.network_id = genesis.network_id
        self.genesis_hash = b""
        self.tip = NO_TIP
        self._moves = 0  # how often the tip changed (a refresh compares it across its wait)
        self.head_changed = asyncio.Event()  # set when the head moves (the announcer waits)
        self._better = partial(consensus.is_better_tip, genesis)

    def better(self, candidate: Tip, current: Tip) -> bool:
        """Whether `candidate` beats `current` by the fork-choice rule."""
        return self._better(candidate.total_weight, candidate.hash, current.total_weight,
                            current.hash)

    async def wait_ready(self) -> None:
        """Wait until state answers, then take the genesis hash and the tip from it; a state
        on another network is a configuration error."""
        delay = 0.25
        while True:
            try:
                status = await self.state.request(messages.GetStatus(), messages.StatusReply,
                                                  timeout=2.0, retries=0)
                break
            except CcoinError as exc:
                log.warning("waiting for state: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, WAIT_MAX_S)
        if status.network_id != self.network_id:
            raise Malformed(f"state runs network {status.network_id}, the genesis file says "
                            f"{self.network_id}")
        self.genesis_hash = status.genesis
        self.tip = Tip(status.height, status.head, status.total_weight)

    async def refresh(self) -> None:
        """Re-read the tip from state. The answer is taken unless a heavier head arrived
        while the request was out (its event overtook the reply, which is then older); taken
        as it is, it may lower the tip (a state that restarted behind where it was)."""
        moves = self._moves
        status = await self.state.request(messages.GetStatus(), messages.StatusReply)
        if self._moves == moves or status.total_weight >= self.tip.total_weight:
            self.set_tip(Tip(status.height, status.head, status.total_weight))

    def on_head(self, tip: Tip) -> None:
        """A head event. Heads are published in order of rising weight, so one lighter than
        the tip is older than what a status read already told us."""
        if tip.total_weight >= self.tip.total_weight:
            self.set_tip(tip)

    def set_tip(self, tip: Tip) -> None:
        if tip.hash != self.tip.hash:
            self._moves += 1
            self.tip = tip
            self.head_changed.set()

    async def locator(self) -> tuple[bytes, ...]:
        return (await self.state.request(messages.GetLocator(), messages.LocatorReply)).hashes

    async def follow(self, ctx: zmq.asyncio.Context, endpoint: str,
                     on_head: Callable[[], None],
                     on_txs: Callable[[tuple[bytes, ...]], None],
                     curve: BusCurve | None = None) -> None:
        """State's `head` and `txs` events, forever: a new head moves our tip (then
        `on_head`), newly pooled transaction ids go to `on_txs`. Anything missed (a sequence
        gap, a restarted state, a new link) re-reads the status: a lost event may have been
        the last head, and a restarted state may have published its first head before this
        subscription was back."""
        events = bus.Subscription(ctx, endpoint, (b"head", b"txs"), curve=curve)
        try:
            try:
                await self.refresh()  # what happened before the subscription took
            except CcoinError as exc:
                log.warning("cannot read the status: %s", exc)
            async for event in events:
                message = event.message
                if isinstance(message, messages.HeadEvent):
                    self.on_head(Tip(message.height, message.hash, message.total_weight))
                    on_head()
                elif isinstance(message, messages.TxsEvent):
                    on_txs(message.ids)
                if event.missed:  # lost events, or state (or the link) restarted
                    try:
                        await self.refresh()
                    except CcoinError as exc:
                        log.warning("cannot re-read the status after an event gap: %s", exc)
        finally:
            events.close()

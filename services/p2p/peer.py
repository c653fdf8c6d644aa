"""One peer, in parts: its link (transport.py), where its handshake stands, the tip it
claims, what it knows, its liveness, its sync record and its standing (score and limits).

A peer's link state moves one way, OPENING → GREETED → READY, and any state may end in
CLOSED (see handshake.py for what moves it). Received work that needs state (blocks,
transactions, block requests) goes through the peer's own bounded inbox and worker, so one
peer flooding us delays only itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from enum import Enum

from common import messages, wire
from common.status import PeerDirection
from services.p2p import scoring
from services.p2p.chainview import NO_TIP
from services.p2p.scoring import LruSet, RateLimiter
from services.p2p.transport import Link

log = logging.getLogger("ccoin.p2p")

INBOX = 64  # queued heavy messages per peer
KNOWN_TXS = 20_000  # per-peer memory of transaction ids it has or was sent
KNOWN_BLOCKS = 4_096


class LinkState(Enum):
    """Where a link's handshake stands (docs/protocol.md §13.3)."""

    OPENING = "opening"  # no hello accepted from it yet
    GREETED = "greeted"  # its hello accepted and our ACK queued: waiting for its ACK
    STALLED = "stalled"  # its hello accepted, our ACK not queued: it only waits to time out
    READY = "ready"  # both ACKs verified: any message may flow
    CLOSED = "closed"


@dataclass(slots=True)
class Handshake:
    """Our side of one handshake: the challenge we sent, our hello frame (which our ACK
    signs), the peer's hello once accepted, and when the link opened and became ready."""

    nonce: bytes = field(default_factory=lambda: os.urandom(wire.NONCE_LEN))
    sent_hello: bytes = b""
    hello: wire.Hello | None = None
    said_hello_first: bool = False  # told it (BYE handshake) to say hello first, once
    opened: float = field(default_factory=time.monotonic)
    ready_at: float = 0.0  # monotonic; set once its ACK proved its node id
    connected_ms: int = 0  # wall clock (ms since the epoch) when it became ready


@dataclass(slots=True)
class Liveness:
    ping_nonce: int | None = None  # the ping in flight
    ping_sent: float = 0.0
    last_recv: float = field(default_factory=time.monotonic)
    latency_ms: int = -1


@dataclass(frozen=True, slots=True)
class Ending:
    """Why a link closed: the `BYE` code and reason, and whether the peer said it
    (`theirs`) or we did; `code` is "" for a link that just went away."""

    code: str
    reason: str
    theirs: bool


@dataclass(slots=True)
class SyncRecord:
    exhausted_at: int = -1  # its total weight when it last had nothing for us
    failed_at: float = -1e9  # monotonic time it last let a sync round down
    assume_missing_at: int = -1  # its total weight when its chain lacked the assumed block


class Standing:
    """The peer's score (0 at best, regaining a point every `RECOVERY_S`), its per-type
    rate limits, and the counters the maintenance tick watches."""

    __slots__ = ("score", "_stamp", "limits", "dropped_seen", "inbox_drops")

    def __init__(self, score: int = 0) -> None:
        self.score = score
        self._stamp = time.monotonic()
        self.limits = RateLimiter()
        self.dropped_seen = 0  # the link's dropped sends at the last maintenance tick
        self.inbox_drops = 0

    def penalize(self, points: int, now: float | None = None) -> None:
        self.current(now)
        self.score -= points

    def current(self, now: float | None = None) -> int:
        """The score with good behaviour since the last offence credited."""
        now = time.monotonic() if now is None else now
        if self.score < 0:
            gained = int((now - self._stamp) / scoring.RECOVERY_S)
            if gained:
                self.score = min(0, self.score + gained)
                self._stamp = now
        else:
            self._stamp = now
        return self.score

    @property
    def below_floor(self) -> bool:
        return self.score <= scoring.BAN_FLOOR


class Peer:
    def __init__(self, link: Link, *, score: int = 0, manual: bool = False) -> None:
        self.link = link
        self.manual = manual  # an outbound link the operator asked for (its own slots)
        # dialed (outbound), or the listen address its hello announced (inbound)
        self.endpoint = link.endpoint
        self.state = LinkState.OPENING
        self.handshake = Handshake()
        self.tip = NO_TIP
        self.known_txs: LruSet[bytes] = LruSet(KNOWN_TXS)
        self.known_blocks: LruSet[bytes] = LruSet(KNOWN_BLOCKS)
        self.liveness = Liveness()
        self.sync = SyncRecord()
        self.standing = Standing(score)
        self.inbox: asyncio.Queue[wire.WireMessage] = asyncio.Queue(INBOX)
        self.worker: asyncio.Task[None] | None = None
        self.ending: Ending | None = None  # set when the link closes
        # when it last did useful work (monotonic; 0: never): what eviction protects
        self.last_new_block = 0.0
        self.last_new_tx = 0.0

    # --- identity ---------------------------------------------------------------------------

    @property
    def direction(self) -> PeerDirection:
        return self.link.direction

    @property
    def outbound(self) -> bool:
        return self.link.outbound

    @property
    def hello(self) -> wire.Hello | None:
        return self.handshake.hello

    @property
    def node_id(self) -> bytes:
        hello = self.handshake.hello
        return hello.node_id if hello is not None else b""

    @property
    def label(self) -> str:
        who = self.node_id.hex()[:12] if self.handshake.hello is not None else "?"
        where = self.endpoint or self.link.remote or self.link.routing_id.hex()[:8]
        return f"{who}@{where}"

    @property
    def proven(self) -> bool:
        """Whether its ACK proved that it holds the key of its node id."""
        return self.handshake.ready_at > 0

    @property
    def ready(self) -> bool:
        return self.state is LinkState.READY

    @property
    def closed(self) -> bool:
        return self.state is LinkState.CLOSED

    # --- sending ------------------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> bool:
        """Queue one frame; False when it could not be (closed, full, or gone)."""
        return not self.closed and self.link.send_frame(frame)

    def send(self, msg: wire.WireMessage) -> bool:
        return self.send_frame(wire.encode(msg))

    # --- what it says -------------------------------------------------------------------------

    def penalize(self, points: int, why: str) -> None:
        if points <= 0:
            return
        self.standing.penalize(points)
        log.info("peer %s: -%d (%s), score %d", self.label, points, why, self.standing.score,
                 extra={"peer": self.label})

    def info(self) -> messages.PeerEntry:
        return messages.PeerEntry(
            node_id=self.node_id, endpoint=self.endpoint or self.link.remote,
            direction=self.direction, height=self.tip.height, head=self.tip.hash,
            total_weight=self.tip.total_weight, score=self.standing.current(),
            latency_ms=self.liveness.latency_ms, connected_ms=self.handshake.connected_ms)

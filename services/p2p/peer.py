"""One link to another node: its handshake state, what it knows, its score and its queues.

A link is either outbound (our DEALER connected to the peer's ROUTER) or inbound (a routing
id on our ROUTER). Sends never block: a full ZeroMQ queue (SNDHWM) drops the message and
counts it against the link, so a slow peer cannot stall the node. Received work that needs
state (blocks, transactions, block requests) goes through the link's own bounded inbox and
worker, so one peer flooding us delays only itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import zmq
import zmq.asyncio

from common import messages, wire
from common.status import PeerDirection
from services.p2p import scoring
from services.p2p.scoring import LruSet, RateLimiter

log = logging.getLogger("ccoin.p2p")

INBOX = 64  # queued heavy messages per peer
KNOWN_TXS = 20_000  # per-peer memory of transaction ids it has or was sent
KNOWN_BLOCKS = 4_096


def send_nowait(sock: zmq.asyncio.Socket, parts: list[Any]) -> BaseException | None:
    """Send without ever waiting: None when queued, else the error (zmq.Again at the
    high-water mark, EHOSTUNREACH for a routing id that is gone)."""
    fut: Any = sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
    if fut.done():
        return fut.exception()  # type: ignore[no-any-return]
    return None


class Peer:
    def __init__(self, direction: str, endpoint: str = "", *,
                 sock: zmq.asyncio.Socket | None = None, router: zmq.asyncio.Socket | None = None,
                 routing_id: bytes = b"", curve_key: bytes = b"", remote: str = "") -> None:
        assert direction in ("inbound", "outbound")
        self.direction = direction
        self.endpoint = endpoint  # dialed (outbound) or announced in hello (inbound)
        self.sock = sock
        self.router = router
        self.routing_id = routing_id
        self.curve_key = curve_key  # the server key we dialed, or the client key ZAP saw
        self.remote = remote  # transport address, for logs
        self.reader: asyncio.Task[None] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.inbox: asyncio.Queue[wire.WireMessage] = asyncio.Queue(INBOX)
        # handshake
        self.nonce = os.urandom(wire.NONCE_LEN)
        self.sent_hello = b""  # our hello frame, signed in our ACK
        self.hello: wire.Hello | None = None
        self.hello_frame = b""
        self.ack_sent = False
        self.acked = False
        self.ready = False
        self.closed = False
        self.created = time.monotonic()
        self.ready_at = 0.0
        self.connected_ms = 0  # wall clock (ms since the epoch) when the handshake completed
        self.told_handshake = False  # sent BYE "handshake" for a message before it
        # what it knows and says
        self.known_txs: LruSet[bytes] = LruSet(KNOWN_TXS)
        self.known_blocks: LruSet[bytes] = LruSet(KNOWN_BLOCKS)
        self.height = 0
        self.head = b""
        self.total_weight = 0
        self.sync_exhausted_at = -1  # its total weight when it last had nothing for us
        self.sync_failed_at = -1e9  # monotonic time it last let a sync round down
        # liveness
        self.ping_nonce: int | None = None
        self.ping_sent = 0.0
        self.last_recv = time.monotonic()
        self.latency_ms = -1
        # discipline
        self.score = 0
        self._score_stamp = time.monotonic()
        self.limits = RateLimiter()
        self.dropped_sends = 0
        self.dropped_seen = 0  # dropped_sends at the last maintenance tick
        self.inbox_drops = 0
        self.unreachable = False  # the router has no route to it any more

    # --- identity ---------------------------------------------------------------------------

    @property
    def node_id(self) -> bytes:
        return self.hello.node_id if self.hello is not None else b""

    @property
    def label(self) -> str:
        who = self.node_id.hex()[:12] if self.hello is not None else "?"
        where = self.endpoint or self.remote or self.routing_id.hex()[:8]
        return f"{who}@{where}"

    @property
    def outbound(self) -> bool:
        return self.direction == "outbound"

    # --- sending ------------------------------------------------------------------------------

    def send_frame(self, frame: bytes) -> bool:
        """Queue one frame; False (and counted) when it could not be queued."""
        if self.closed:
            return False
        if self.sock is not None:
            err = send_nowait(self.sock, [frame])
        else:
            assert self.router is not None
            err = send_nowait(self.router, [self.routing_id, frame])
        if err is None:
            return True
        self.dropped_sends += 1
        if isinstance(err, zmq.Again):
            pass  # its queue is full: dropped; the node disconnects a peer that stays behind
        elif isinstance(err, zmq.ZMQError) and err.errno == zmq.EHOSTUNREACH:
            self.unreachable = True
        else:
            log.warning("peer %s: send failed: %s", self.label, err)
        return False

    def send(self, msg: wire.WireMessage) -> bool:
        return self.send_frame(wire.encode(msg))

    # --- state ----------------------------------------------------------------------------------

    def update_tip(self, height: int, head: bytes, total_weight: int) -> None:
        self.height, self.head, self.total_weight = height, head, total_weight

    def penalize(self, points: int, why: str) -> None:
        if points <= 0:
            return
        self.current_score()
        self.score -= points
        log.info("peer %s: -%d (%s), score %d", self.label, points, why, self.score,
                 extra={"peer": self.label})

    def current_score(self) -> int:
        """The score with good behaviour since the last offence credited."""
        now = time.monotonic()
        if self.score < 0:
            gained = int((now - self._score_stamp) / scoring.RECOVERY_S)
            if gained:
                self.score = min(0, self.score + gained)
                self._score_stamp = now
        else:
            self._score_stamp = now
        return self.score

    @property
    def below_floor(self) -> bool:
        return self.score <= scoring.BAN_FLOOR

    def info(self) -> messages.PeerEntry:
        return messages.PeerEntry(
            node_id=self.node_id, endpoint=self.endpoint or self.remote,
            direction=PeerDirection(self.direction), height=self.height, head=self.head,
            total_weight=self.total_weight, score=self.current_score(),
            latency_ms=self.latency_ms, connected_ms=self.connected_ms)

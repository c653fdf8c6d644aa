"""The peer table: every link the node has, by how it can be found, and how a link ends.

Inbound links are found by routing id, outbound ones by the endpoint dialed, and ready
links by node id (at most one per node: handshake.py settles duplicates). Closing a link
says `BYE` when there is a reason to give, records why (`Peer.ending`), forgets it
everywhere, lets the address book know how an outbound link went, and tells whoever listens
(the syncer waiting on it, an operator's `AddPeer` waiting for its outcome).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from common import wire
from common.wire import ByeCode
from services.p2p.book import AddressBook
from services.p2p.peer import Ending, LinkState, Peer
from services.p2p.scoring import LruDict, LruSet
from services.p2p.transport import Link

log = logging.getLogger("ccoin.p2p")

MAX_PENDING_INBOUND = 64  # inbound links still in their handshake
REMEMBERED_RIDS = 4096


class PeerTable:
    def __init__(self, book: AddressBook, stable_link_s: float) -> None:
        self.book = book
        self.stable_link_s = stable_link_s
        self.inbound: dict[bytes, Peer] = {}  # routing id -> link
        self.outbound: dict[str, Peer] = {}  # dialed endpoint -> link
        self.by_id: dict[bytes, Peer] = {}  # node id -> the ready link
        # a closed inbound link's debt: a new link on the same routing id starts from it
        self.closed_rids: LruDict[bytes, int] = LruDict(REMEMBERED_RIDS)
        self.banned_rids: LruSet[bytes] = LruSet(REMEMBERED_RIDS)  # their frames go unread
        self.on_close: list[Callable[[Peer], None]] = []
        self.on_ready: list[Callable[[Peer], None]] = []

    def ready(self) -> list[Peer]:
        return [p for p in self.by_id.values() if p.ready]

    def all(self) -> list[Peer]:
        return [*self.inbound.values(), *self.outbound.values()]

    def dialed(self, *, manual: bool) -> int:
        """Outbound links, ready or not, the operator's (`manual`) or the node's own."""
        return sum(1 for p in self.outbound.values() if p.manual is manual)

    def ready_inbound(self) -> list[Peer]:
        return [p for p in self.by_id.values() if not p.outbound]

    def accept(self, link: Link) -> Peer:
        """A new inbound link; the oldest of too many still shaking hands makes room."""
        pending = [p for p in self.inbound.values() if not p.ready]
        if len(pending) >= MAX_PENDING_INBOUND:
            oldest = min(pending, key=lambda p: p.handshake.opened)
            self.close(oldest, ByeCode.HANDSHAKE, "too many pending")
        peer = Peer(link, score=self.closed_rids.get(link.routing_id) or 0)
        self.inbound[link.routing_id] = peer
        return peer

    def add_outbound(self, link: Link, *, manual: bool = False) -> Peer:
        peer = Peer(link, manual=manual)
        self.outbound[link.endpoint] = peer
        return peer

    def mark_ready(self, peer: Peer) -> None:
        peer.state = LinkState.READY
        peer.handshake.ready_at = time.monotonic()
        peer.handshake.connected_ms = int(time.time() * 1000)
        self.by_id[peer.node_id] = peer
        for listener in self.on_ready:
            listener(peer)

    def close(self, peer: Peer, code: ByeCode | None = None, reason: str = "") -> None:
        """Say BYE (when `code`) and forget the link."""
        if peer.closed:
            return
        if code is not None:
            peer.send(wire.Bye(code.value, reason[:wire.MAX_REASON]))
        if peer.ending is None:  # a BYE it sent us was recorded first (handshake.on_bye)
            peer.ending = Ending(code.value if code is not None else "", reason, theirs=False)
        was_ready = peer.ready
        peer.state = LinkState.CLOSED
        if peer.worker is not None:
            peer.worker.cancel()
        link = peer.link
        if link.outbound:
            link.close(linger_ms=100 if code is not None else 0)
            if self.outbound.get(link.endpoint) is peer:
                del self.outbound[link.endpoint]
            if was_ready and time.monotonic() - peer.handshake.ready_at > self.stable_link_s:
                self.book.reset(link.endpoint)  # it worked for a while: redial soon
            self.book.failed(link.endpoint)
        else:
            if self.inbound.get(link.routing_id) is peer:
                del self.inbound[link.routing_id]
            self.closed_rids.put(link.routing_id, min(peer.standing.current(), 0))
        if self.by_id.get(peer.node_id) is peer:
            del self.by_id[peer.node_id]
        for listener in self.on_close:
            listener(peer)
        if was_ready:
            log.info("peer %s disconnected%s", peer.label,
                     f" ({code}: {reason})" if code is not None else "",
                     extra={"peer": peer.label})

"""Peer exchange and dialing (docs/protocol.md §13.7): where addresses come from, and which
of them the node dials.

Addresses come from the configured bootnodes, `AddPeer`, discovery, `PEX` replies and the
listen addresses inbound peers announce, into the address book (book.py). A `GPX` is sent
on every new link and, while the node is short of outbound links, to one random peer every
`pex_interval`; it is answered with the ready peers we know a listen address of. Every tick
the node dials book entries whose back-off has expired while it has free outbound slots
(slots.py: the operator's addresses, from `AddPeer`, in slots of their own), skipping
itself, nodes it is linked to, and anything banned.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from common import wire
from common.errors import Malformed
from services.p2p.book import AddressBook
from services.p2p.chainview import ChainView
from services.p2p.discipline import Discipline
from services.p2p.handshake import Identity
from services.p2p.peer import Peer
from services.p2p.peers import PeerTable
from services.p2p.settings import P2PSettings
from services.p2p.slots import Slots

# dial(endpoint, curve key, manual) -> the new link, or None when it could not be opened
Dial = Callable[[str, bytes, bool], Peer | None]


class PeerExchange:
    def __init__(self, me: Identity, chain: ChainView, peers: PeerTable, book: AddressBook,
                 discipline: Discipline, settings: P2PSettings, slots: Slots, dial: Dial,
                 now: float) -> None:
        self.me = me
        self.slots = slots
        self.chain = chain
        self.peers = peers
        self.book = book
        self.discipline = discipline
        self.settings = settings
        self.dial = dial
        self._last_ask = now

    # --- messages -------------------------------------------------------------------------

    def on_get_addrs(self, peer: Peer, msg: wire.GetPeerAddrs) -> None:
        self.send_addresses(peer)

    def send_addresses(self, peer: Peer) -> None:
        addrs: list[wire.PeerAddr] = []
        for other in self.peers.ready():
            if other is peer or other.hello is None or not other.endpoint:
                continue
            try:
                addrs.append(wire.PeerAddr(other.node_id, other.endpoint,
                                           other.hello.curve_key))
            except Malformed:
                continue
            if len(addrs) >= wire.MAX_PEX:
                break
        peer.send(wire.PeerAddrs(tuple(addrs)))

    def on_addrs(self, peer: Peer, msg: wire.PeerAddrs) -> None:
        self.learn(msg.peers, "pex")

    def learn(self, addrs: Iterable[wire.PeerAddr], source: str) -> None:
        for a in addrs:
            if a.node_id == self.me.node_id or a.endpoint in self.me.self_endpoints:
                continue
            self.book.add(a.endpoint, a.node_id, a.curve_key, source)

    # --- discovery ------------------------------------------------------------------------

    def registration(self) -> dict[str, Any]:
        """What the discovery service is told about this node."""
        return {"network_id": self.chain.network_id, "genesis": self.chain.genesis_hash.hex(),
                "node_id": self.me.node_id.hex(), "endpoint": self.me.listen,
                "curve_key": self.me.curve_public.hex()}

    def discovered(self, addrs: list[wire.PeerAddr]) -> None:
        self.learn(addrs, "discovery")

    # --- every tick -----------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self.dial_more(now)
        self.ask_addresses(now)

    def dial_more(self, now: float) -> None:
        free = {manual: self.slots.outbound_free(manual=manual) for manual in (False, True)}
        by_id = self.peers.by_id
        for addr in self.book.due(now):
            if not any(free.values()):
                return
            manual = addr.source == "manual"
            if not free[manual]:
                continue
            if addr.endpoint in self.peers.outbound or addr.endpoint in self.me.self_endpoints:
                continue
            if addr.node_id and (addr.node_id in by_id or addr.node_id == self.me.node_id):
                continue
            if self.discipline.endpoint_banned(addr.endpoint) or (
                    addr.node_id and self.discipline.bans.banned(("node", addr.node_id))):
                continue
            # A failed or refused dial pushes next_try forward; this stops a tight loop
            # before the handshake outcome is known.
            self.book.hold(addr.endpoint, self.settings.timing.handshake)
            if self.dial(addr.endpoint, addr.curve_key, manual) is not None:
                free[manual] -= 1

    def ask_addresses(self, now: float) -> None:
        """While short of outbound links, ask one peer every `pex_interval` for more."""
        if (not self.slots.outbound_free(manual=False)
                or now - self._last_ask < self.settings.timing.pex_interval):
            return
        self._last_ask = now
        peers = self.peers.ready()
        if peers:
            random.choice(peers).send(wire.GetPeerAddrs())

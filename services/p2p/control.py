"""The p2p service's control socket: the bus requests other services and operators send it
(docs/protocol.md §11, §13.9).

- `GetPeers`: the ready links (oldest first), whether a sync round runs and to what height,
  our node id, and how many node ids are banned.
- `AddPeer`: dial a `tcp://host:port[#curve key]` now and keep it in the address book for
  good; refused for our own address, a banned one, or a full book.
- `SyncNow`: start a sync round, from any ready peer if none is ahead of us.
"""

from __future__ import annotations

import logging
from typing import Any

from common import messages, wire
from common.errors import Refused
from services.p2p.book import AddressBook
from services.p2p.discipline import Discipline
from services.p2p.handshake import Identity
from services.p2p.peers import PeerTable
from services.p2p.pex import Dial
from services.p2p.settings import P2PSettings
from services.p2p.sync import Syncer

log = logging.getLogger("ccoin.p2p")


class Control:
    def __init__(self, me: Identity, peers: PeerTable, book: AddressBook,
                 discipline: Discipline, syncer: Syncer, settings: P2PSettings,
                 dial: Dial) -> None:
        self.me = me
        self.peers = peers
        self.book = book
        self.discipline = discipline
        self.syncer = syncer
        self.settings = settings
        self.dial = dial

    def handlers(self) -> dict[type[messages.Message], Any]:
        return {
            messages.GetPeers: self.get_peers,
            messages.AddPeer: self.add_peer,
            messages.SyncNow: self.sync_now,
        }

    def get_peers(self, _: messages.GetPeers) -> messages.PeersReply:
        peers = sorted(self.peers.ready(), key=lambda p: p.handshake.connected_ms)
        return messages.PeersReply(tuple(p.info() for p in peers), self.syncer.syncing,
                                   self.syncer.sync_target, self.me.node_id,
                                   self.discipline.bans.count("node"))

    def add_peer(self, req: messages.AddPeer) -> messages.Ok:
        endpoint, key = wire.parse_peer_uri(req.endpoint)
        if endpoint in self.me.self_endpoints:
            raise Refused(f"{endpoint} is this node")
        if self.discipline.endpoint_banned(endpoint):
            raise Refused(f"{endpoint} is banned")
        entry = self.book.add(endpoint, curve_key=key, source="manual")
        if entry is None:
            raise Refused("the address book is full")
        self.book.reset(endpoint)
        log.info("peer %s added by the operator", endpoint)
        if endpoint not in self.peers.outbound and len(self.peers.by_id) < self.settings.max_peers:
            self.book.hold(endpoint, self.settings.timing.handshake)
            self.dial(endpoint, entry.curve_key)
        return messages.Ok()

    def sync_now(self, _: messages.SyncNow) -> messages.Ok:
        log.info("sync requested by the operator")
        self.syncer.force()
        return messages.Ok()

"""Peer slots (docs/protocol.md §13.10): which links the node may open or accept.

`max_peers` is split in two budgets (`P2PSettings.max_outbound`, `max_inbound`), so that
peers dialing us, however many, never take the slots of the links the node chose itself;
the operator's own links (`AddPeer`) have `MAX_MANUAL` more. An inbound peer whose
handshake is done is admitted unless its IP address or subnet already holds its share of
the inbound slots (loopback exempt unless `limit_loopback`: every local node shares it);
when the inbound slots are full, the worst inbound peer is evicted for it (eviction.py), or
the newcomer is refused when every inbound peer is protected.
"""

from __future__ import annotations

import ipaddress
import logging
import os

from common.wire import ByeCode
from services.p2p import eviction
from services.p2p.peer import Peer
from services.p2p.peers import PeerTable
from services.p2p.settings import MAX_MANUAL, P2PSettings

log = logging.getLogger("ccoin.p2p")


def source_ip(remote: str) -> str | None:
    """The IP address an inbound link came from (an IPv4-mapped IPv6 one as IPv4), None
    when it has none (an inproc:// link)."""
    ip = eviction.host_ip(remote)
    return None if ip is None else str(ip)


class Slots:
    def __init__(self, settings: P2PSettings, peers: PeerTable, salt: bytes | None = None) -> None:
        self.settings = settings
        self.peers = peers
        # keys the netgroup ranking eviction protects by: secret, so not predictable
        self.salt = salt if salt is not None else os.urandom(32)
        self.evicted = 0

    # --- outbound --------------------------------------------------------------------------

    def outbound_free(self, *, manual: bool) -> int:
        """Free outbound slots: the operator's (`manual`) or the node's own."""
        cap = MAX_MANUAL if manual else self.settings.max_outbound
        return max(0, cap - self.peers.dialed(manual=manual))

    # --- inbound ---------------------------------------------------------------------------

    def _limited_ip(self, peer: Peer) -> str | None:
        """The source IP the per-address limits apply to, None when exempt."""
        ip = source_ip(peer.link.remote)
        if ip is None or (ipaddress.ip_address(ip).is_loopback
                          and not self.settings.limit_loopback):
            return None
        return ip

    def admit_inbound(self, peer: Peer) -> str | None:
        """None when `peer` (inbound, its handshake just done) may take a slot, after an
        eviction if need be; otherwise why it may not."""
        settings = self.settings
        present = self.peers.ready_inbound()
        ip = self._limited_ip(peer)
        if ip is not None:
            same_ip = [p for p in present if self._limited_ip(p) == ip]
            if settings.max_inbound_per_ip and len(same_ip) >= settings.max_inbound_per_ip:
                return f"{len(same_ip)} inbound peers from {ip} already"
            group = eviction.netgroup(ip)
            same_group = [p for p in present if (q := self._limited_ip(p)) is not None
                          and eviction.netgroup(q) == group]
            if (settings.max_inbound_per_subnet
                    and len(same_group) >= settings.max_inbound_per_subnet):
                return f"{len(same_group)} inbound peers from {group} already"
        if len(present) < settings.max_inbound:
            return None
        if settings.max_inbound == 0:
            return "this node takes no inbound peers"
        victim_id = eviction.select_victim([self.candidate(p) for p in present], self.salt)
        if victim_id is None:
            return f"at {settings.max_inbound} inbound peers, none of them evictable"
        victim = self.peers.by_id[victim_id]
        self.evicted += 1
        log.info("evicting inbound peer %s for %s (%d inbound slots full)", victim.label,
                 peer.label, settings.max_inbound, extra={"peer": victim.label})
        self.peers.close(victim, ByeCode.TOO_MANY_PEERS, "evicted for a newcomer")
        return None

    @staticmethod
    def candidate(peer: Peer) -> eviction.Candidate:
        remote = peer.link.remote
        ip = source_ip(remote)
        return eviction.Candidate(
            key=peer.node_id, outbound=peer.outbound, connected=peer.handshake.ready_at,
            latency_ms=peer.liveness.latency_ms, last_block=peer.last_new_block,
            last_tx=peer.last_new_tx, score=peer.standing.current(),
            netgroup=eviction.netgroup(ip) if ip is not None else remote)

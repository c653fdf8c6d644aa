"""Discipline: penalties that add up to a ban, what a ban covers, and who may connect.

What each offence costs and the rate limits are in scoring.py; this module applies them. A
peer whose score reaches the floor gets `BYE banned` and is banned by everything that
identifies it (`Discipline.ban`). Bans are also enforced at the door: the ZAP decision
(`admit`) refuses a new connection from a banned IP address or Curve key (and, on a private
network, a key not on the allow-list) before any frame of it arrives; `screen` drops the
frames of a connection from an IP address banned after it opened; and an endpoint on a
banned address is never dialed (`endpoint_banned`).
"""

from __future__ import annotations

import logging
import time

from common.wire import ByeCode
from runtime import zap
from services.p2p import curve, scoring
from services.p2p.book import AddressBook
from services.p2p.peer import Peer
from services.p2p.peers import PeerTable
from services.p2p.scoring import BanList
from services.p2p.transport import Link

log = logging.getLogger("ccoin.p2p")


class Discipline:
    def __init__(self, bans: BanList, peers: PeerTable, book: AddressBook, *,
                 allow_list: frozenset[bytes] | None = None,
                 ip_log_interval_s: float = 60.0) -> None:
        self.bans = bans
        self.peers = peers
        self.book = book
        self.allow_list = allow_list
        self.ip_log_interval_s = ip_log_interval_s
        self.ip_refused = 0  # inbound connections ignored because their IP address is banned
        self._ip_refused_logged = 0
        self._ip_logged_at = -ip_log_interval_s

    # --- scores ---------------------------------------------------------------------------

    def punish(self, peer: Peer, points: int, why: str) -> None:
        peer.penalize(points, why)
        if peer.standing.below_floor and not peer.closed:
            self.ban(peer, why)

    def enforce(self, peer: Peer) -> None:
        """Ban a peer a handler left at or under the floor."""
        if peer.standing.below_floor and not peer.closed:
            self.ban(peer, "score below the floor")

    def ban(self, peer: Peer, why: str) -> None:
        """Disconnect and ban what identifies the peer: its node id only when it proved
        the key, its endpoint only when we dialed it (an announced one may be a victim's),
        the IP address it connected from when it is inbound and not on loopback (a fresh
        node key and socket from the same host must not buy a fresh start)."""
        link = peer.link
        keys: list[tuple[str, object]] = []
        ip = None if link.outbound else scoring.bannable_ip(link.remote)
        if ip is not None:
            keys.append(("ip", ip))
        if peer.proven:
            keys.append(("node", peer.node_id))
        if link.outbound:
            keys.append(("endpoint", link.endpoint))
            self.book.hold(link.endpoint, self.bans.seconds)
        if link.curve_key and (peer.proven or not link.outbound):
            keys.append(("curve", link.curve_key))
        self.bans.ban(keys)
        if not link.outbound:
            self.peers.banned_rids.add(link.routing_id)
        also = "" if ip is None else (f"; its IP address {ip} too "
                                      f"({self.bans.count('ip')} IP address(es) banned)")
        log.warning("banning peer %s for %d s: %s (score %d)%s", peer.label, self.bans.seconds,
                    why, peer.standing.score, also, extra={"peer": peer.label})
        self.peers.close(peer, ByeCode.BANNED, why)

    # --- the door -------------------------------------------------------------------------

    def admit(self, req: zap.ZapRequest) -> str | None:
        """The ZAP decision: whether a new inbound connection may exist (None) or why not:
        not from a banned IP address, and with Curve, not with a banned or (private network)
        unlisted key."""
        ip = scoring.bannable_ip(req.address)
        if ip is not None and self.bans.banned(("ip", ip)):
            self.refused_ip(ip)
            return "banned address"
        if req.mechanism == b"CURVE":
            key = req.curve_key
            why = curve.refusal(key, self.allow_list, self.bans.banned(("curve", key)))
            if why is not None:
                log.info("refused curve key %s from %s: %s", key.hex()[:16], req.address, why)
            return why
        return None

    def screen(self, link: Link) -> bool:
        """Whether the frames of an inbound link new to us may be read. ZAP refuses new
        connections from a banned IP; this catches a connection opened before the ban
        whose peer we closed (a ROUTER cannot hang up)."""
        ip = scoring.bannable_ip(link.remote)
        if ip is not None and self.bans.banned(("ip", ip)):
            self.peers.banned_rids.add(link.routing_id)  # its later frames are dropped unread
            self.refused_ip(ip)
            return False
        return True

    def endpoint_banned(self, endpoint: str) -> bool:
        """Whether `endpoint` must not be dialed: banned itself, or on a banned IP address
        (a banned host must not get back in by being dialed at another port)."""
        ip = scoring.endpoint_ip(endpoint)
        return self.bans.banned(("endpoint", endpoint)) or (
            ip is not None and self.bans.banned(("ip", ip)))

    def refused_ip(self, ip: str) -> None:
        """Count a new connection from a banned IP address, which gets no answer at all. The
        first is logged, then at most one line every `ip_log_interval_s` with how many came
        since: a banned host reconnecting in a loop must not flood the log."""
        self.ip_refused += 1
        now = time.monotonic()
        if now - self._ip_logged_at < self.ip_log_interval_s:
            return
        log.warning("refused a new connection from %s: its IP address is banned (%d such "
                    "connection(s) since the last report, %d in all; %d IP address(es) banned)",
                    ip, self.ip_refused - self._ip_refused_logged, self.ip_refused,
                    self.bans.count("ip"))
        self._ip_logged_at = now
        self._ip_refused_logged = self.ip_refused

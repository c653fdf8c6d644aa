"""Liveness: pings, and the checks that end links which no longer work.

Every `ping_interval` a ready link gets a `PNG` with our tip, and answers with a `PON`
carrying its own, so both sides learn when they are behind (a tip change wakes the syncer).
On every maintenance tick a link is closed when the ROUTER has no route to it any more,
when its handshake is not done within `handshake` seconds, when nothing came from it for
`peer_timeout` seconds, or when more than `SLOW_DROPS` of our sends to it were dropped since
the last tick (it does not read what we send).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from common import wire
from common.wire import ByeCode
from services.p2p import scoring
from services.p2p.chainview import ChainView, Tip
from services.p2p.discipline import Discipline
from services.p2p.peer import Peer
from services.p2p.peers import PeerTable
from services.p2p.settings import Timing

SLOW_DROPS = 200  # sends dropped at its high-water mark within one tick: disconnect it


class Liveness:
    def __init__(self, chain: ChainView, peers: PeerTable, discipline: Discipline,
                 timing: Timing, tip_changed: Callable[[], None]) -> None:
        self.chain = chain
        self.peers = peers
        self.discipline = discipline
        self.timing = timing
        self.tip_changed = tip_changed  # a peer's tip moved: the syncer looks again

    def on_ping(self, peer: Peer, msg: wire.Ping) -> None:
        peer.tip = Tip(msg.height, msg.head, msg.total_weight)
        tip = self.chain.tip
        peer.send(wire.Pong(msg.nonce, tip.height, tip.hash, tip.total_weight))
        self.tip_changed()

    def on_pong(self, peer: Peer, msg: wire.Pong) -> None:
        live = peer.liveness
        if live.ping_nonce != msg.nonce:
            self.discipline.punish(peer, scoring.UNSOLICITED, "pong without a ping")
            return
        live.ping_nonce = None
        live.latency_ms = max(0, int((time.monotonic() - live.ping_sent) * 1000))
        peer.tip = Tip(msg.height, msg.head, msg.total_weight)
        self.tip_changed()

    def tick(self, now: float) -> None:
        timing = self.timing
        for peer in self.peers.all():
            if peer.link.unreachable:
                self.peers.close(peer)  # the router has no route to it: its connection is gone
                continue
            if not peer.ready:
                if now - peer.handshake.opened > timing.handshake:
                    self.peers.close(peer, ByeCode.HANDSHAKE, "handshake timed out")
                continue
            live = peer.liveness
            if now - live.last_recv > timing.peer_timeout:
                self.peers.close(peer, ByeCode.TIMEOUT, f"silent for {timing.peer_timeout:.0f} s")
                continue
            standing = peer.standing
            dropped, standing.dropped_seen = (peer.link.dropped - standing.dropped_seen,
                                              peer.link.dropped)
            if dropped > SLOW_DROPS:
                self.peers.close(peer, ByeCode.SLOW, f"{dropped} messages to it dropped: it "
                                                     "cannot keep up")
                continue
            if live.ping_nonce is None and now - live.ping_sent >= timing.ping_interval:
                live.ping_nonce = int.from_bytes(os.urandom(8), "big")
                live.ping_sent = now
                tip = self.chain.tip
                peer.send(wire.Ping(live.ping_nonce, tip.height, tip.hash, tip.total_weight))
            elif live.ping_nonce is not None and now - live.ping_sent > timing.peer_timeout / 2:
                live.ping_nonce = None  # lost: ask again (silence closes it above)

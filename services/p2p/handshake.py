"""The handshake (docs/protocol.md §13.3): hello both ways, then each side proves its node key.

A link starts OPENING. The dialer says hello first; the listener answers a hello with its
own. Whoever accepts a hello queues its `ACK` (a signature over the peer's nonce and its own
hello frame) and the link is GREETED; the peer's valid `ACK` then makes it READY, unless it
duplicates a link to the same node (the link dialed by the smaller node id wins, on both
sides) or, for an inbound link, no inbound slot can be had (slots.py: per-address limits,
full slots and eviction). Until READY only `HEL`, `ACK` and `BYE` may arrive.

A hello is refused with a `BYE` naming why (`wire.ByeCode`): another network or genesis,
another protocol version, our own node id, a banned node id. A `BYE` the peer sends us with
one of those refusals keeps us from dialing its address again for the ban time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from common import __version__, wire
from common.crypto import Signer
from common.wire import ByeCode
from services.p2p import scoring
from services.p2p.book import AddressBook
from services.p2p.chainview import ChainView, Tip
from services.p2p.discipline import Discipline
from services.p2p.peer import Ending, LinkState, Peer
from services.p2p.peers import PeerTable
from services.p2p.slots import Slots

log = logging.getLogger("ccoin.p2p")

AGENT = f"ccoin/{__version__}"
SELF_HOLD_S = 10.0**9  # our own address is never dialed again
HANDSHAKE = (wire.Hello, wire.HelloAck, wire.Bye)  # all a link may say before it is ready
# a peer that refused us with one of these will refuse us again: do not redial it soon
REFUSALS = frozenset({ByeCode.WRONG_NETWORK, ByeCode.BANNED, ByeCode.VERSION, ByeCode.SELF})


@dataclass(slots=True)
class Identity:
    """Who this node is to its peers: its node key, its Curve server key, and the tcp
    address it announces once bound (`listen`; "" while it listens nowhere dialable).
    `self_endpoints` are addresses found to be our own, never to be dialed."""

    signer: Signer
    curve_public: bytes = b""
    listen: str = ""
    self_endpoints: set[str] = field(default_factory=set)

    @property
    def node_id(self) -> bytes:
        return self.signer.public_key

    @property
    def use_curve(self) -> bool:
        return bool(self.curve_public)


class Handshaker:
    """HEL, ACK and BYE, and the gate that keeps everything else out until a link is
    ready. `on_ready` is called once per link that becomes ready; `offer_addresses` sends
    a PEX to a peer refused for `too_many_peers`, so it has somewhere else to go."""

    def __init__(self, me: Identity, chain: ChainView, peers: PeerTable,
                 discipline: Discipline, book: AddressBook, slots: Slots,
                 on_ready: Callable[[Peer], None],
                 offer_addresses: Callable[[Peer], None]) -> None:
        self.me = me
        self.chain = chain
        self.peers = peers
        self.discipline = discipline
        self.book = book
        self.slots = slots
        self.on_ready = on_ready
        self.offer_addresses = offer_addresses

    # --- ours ---------------------------------------------------------------------------

    def send_hello(self, peer: Peer) -> None:
        tip: Tip = self.chain.tip
        hello = wire.Hello(wire.PROTOCOL_VERSION, self.chain.network_id,
                           self.chain.genesis_hash, tip.hash, tip.height, tip.total_weight,
                           self.me.node_id, self.me.listen, self.me.curve_public,
                           peer.handshake.nonce, AGENT)
        peer.handshake.sent_hello = wire.encode(hello)
        peer.send_frame(peer.handshake.sent_hello)

    def admits(self, peer: Peer, msg: wire.WireMessage) -> bool:
        """Whether `msg` may be handled on this link now; anything but the handshake's own
        messages before the link is ready costs points, and is answered once with
        `BYE handshake` (the link stays open for its hello)."""
        if peer.ready or isinstance(msg, HANDSHAKE):
            return True
        if not peer.handshake.said_hello_first:
            peer.handshake.said_hello_first = True
            peer.send(wire.Bye(ByeCode.HANDSHAKE.value, "hello first"))
        self.discipline.punish(peer, scoring.BEFORE_HANDSHAKE,
                               f"{msg.msgtype!r} before the handshake")
        return False

    def refuse(self, peer: Peer, code: ByeCode, reason: str) -> None:
        log.info("refusing peer %s: %s", peer.label, reason, extra={"peer": peer.label})
        self.peers.close(peer, code, reason)

    # --- theirs ---------------------------------------------------------------------------

    def on_hello(self, peer: Peer, msg: wire.Hello) -> None:
        if peer.hello is not None:
            self.discipline.punish(peer, scoring.MALFORMED, "second hello")
            return
        chain, link = self.chain, peer.link
        if msg.version != wire.PROTOCOL_VERSION:
            self.refuse(peer, ByeCode.VERSION, f"protocol {msg.version}, we speak "
                                               f"{wire.PROTOCOL_VERSION}")
            return
        if msg.network_id != chain.network_id or msg.genesis != chain.genesis_hash:
            log.warning("refusing peer %s: it runs network %d genesis %s, we run network %d "
                        "genesis %s", peer.endpoint or msg.listen or link.remote,
                        msg.network_id, msg.genesis.hex()[:16], chain.network_id,
                        chain.genesis_hash.hex()[:16], extra={"peer": peer.label})
            if link.outbound:
                self.book.hold(link.endpoint, self.discipline.bans.seconds)
            else:
                self.peers.banned_rids.add(link.routing_id)
            self.peers.close(peer, ByeCode.WRONG_NETWORK, f"we run network {chain.network_id} "
                                                          f"genesis {chain.genesis_hash.hex()}")
            return
        if msg.node_id == self.me.node_id:
            self.me.self_endpoints.add(peer.endpoint)
            self.book.hold(peer.endpoint, SELF_HOLD_S)
            self.refuse(peer, ByeCode.SELF, "connected to ourselves")
            return
        if self.discipline.bans.banned(("node", msg.node_id)):
            if not link.outbound:
                self.peers.banned_rids.add(link.routing_id)
            self.refuse(peer, ByeCode.BANNED, "node id is banned")
            return
        if self.me.use_curve and link.curve_key != msg.curve_key:
            self.discipline.punish(peer, scoring.BAD_ACK,
                                   "hello names another curve key than the link")
            self.peers.close(peer, ByeCode.HANDSHAKE, "curve key mismatch")
            return
        peer.handshake.hello = msg
        peer.tip = Tip(msg.height, msg.head, msg.total_weight)
        if not link.outbound:
            peer.endpoint = msg.listen
            self.send_hello(peer)
        signature = self.me.signer.sign(wire.ack_payload(msg.nonce, peer.handshake.sent_hello))
        queued = peer.send(wire.HelloAck(signature))
        peer.state = LinkState.GREETED if queued else LinkState.STALLED

    def on_ack(self, peer: Peer, msg: wire.HelloAck) -> None:
        hello = peer.hello
        if hello is None or peer.state not in (LinkState.GREETED, LinkState.STALLED):
            self.discipline.punish(peer, scoring.MALFORMED, "ACK out of order")
            return
        # decoding is canonical, so the hello re-encoded is byte for byte the frame it signed
        if not wire.verify_ack(msg, hello.node_id, peer.handshake.nonce, wire.encode(hello)):
            self.discipline.punish(peer, scoring.BAD_ACK, "hello signature does not verify")
            if not peer.closed:
                self.peers.close(peer, ByeCode.HANDSHAKE, "bad hello signature")
            return
        if peer.state is LinkState.GREETED:
            self._ready(peer)

    def on_bye(self, peer: Peer, msg: wire.Bye) -> None:
        refused = msg.code in REFUSALS
        log.log(logging.WARNING if refused else logging.INFO, "peer %s %s: %s: %s", peer.label,
                "refused us" if refused else "said bye", msg.code, msg.reason,
                extra={"peer": peer.label})
        if peer.outbound and refused:
            self.book.hold(peer.link.endpoint, self.discipline.bans.seconds)
        if peer.ending is None:
            peer.ending = Ending(msg.code, msg.reason, theirs=True)
        self.peers.close(peer)

    # --- ready ----------------------------------------------------------------------------

    def _dialer(self, peer: Peer) -> bytes:
        """The node id of the side that dialed this link."""
        return self.me.node_id if peer.outbound else peer.node_id

    def _ready(self, peer: Peer) -> None:
        existing = self.peers.by_id.get(peer.node_id)
        if existing is not None and existing is not peer:
            # Both nodes keep the link dialed by the smaller node id, so a simultaneous
            # dial in both directions leaves exactly one link.
            if self._dialer(peer) < self._dialer(existing):
                self.peers.close(existing, ByeCode.DUPLICATE, "already connected")
            else:
                self.peers.close(peer, ByeCode.DUPLICATE, "already connected")
                return
        # outbound links were counted when dialed (slots.outbound_free)
        why = None if peer.outbound else self.slots.admit_inbound(peer)
        if why is not None:
            self.offer_addresses(peer)
            self.refuse(peer, ByeCode.TOO_MANY_PEERS, why)
            return
        self.peers.mark_ready(peer)
        hello = peer.hello
        assert hello is not None
        if peer.outbound:
            self.book.connected(peer.link.endpoint, peer.node_id)
        elif hello.listen:
            self.book.add(hello.listen, peer.node_id, hello.curve_key, "inbound")
        log.info("peer %s connected (%s, height %d, agent %s)", peer.label, peer.direction,
                 peer.tip.height, hello.agent, extra={"peer": peer.label})
        self.on_ready(peer)

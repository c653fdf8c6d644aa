"""The p2p service's control socket: the bus requests other services and operators send it
(docs/protocol.md §11, §13.9).

- `GetPeers`: the ready links (oldest first), whether a sync round runs and to what height,
  our node id, how many node ids are banned, the endpoint other nodes reach us on, and what
  assume-valid sync is doing (`assumevalid.info`).
- `AddPeer`: dial a `tcp://host:port[#curve key]` now, keep it in the address book for
  good, and answer with what happened once it is known: linked (`AddPeerReply`: connected,
  or already connected), refused by either side (`PeerRefused` and its kinds: our own
  address, a banned one, another network, no free slot...), or no handshake within
  `wait_ms` (`PeerUnreachable`). The bus server runs it apart (`bus.Server(concurrent=)`),
  so other requests are answered while it waits.
- `SyncNow`: start a sync round, from any ready peer if none is ahead of us.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from common import messages, wire
from common.errors import (
    CcoinError,
    Malformed,
    PeerBanned,
    PeerFull,
    PeerIsSelf,
    PeerRefused,
    PeerUnreachable,
    PeerWrongNetwork,
)
from common.status import PeerOutcome
from common.wire import ByeCode
from services.p2p import assumevalid
from services.p2p.book import AddressBook
from services.p2p.discipline import Discipline
from services.p2p.handshake import Identity
from services.p2p.peer import Peer
from services.p2p.peers import PeerTable
from services.p2p.pex import Dial
from services.p2p.settings import MAX_MANUAL, P2PSettings
from services.p2p.slots import Slots
from services.p2p.sync import Syncer

log = logging.getLogger("ccoin.p2p")

# a BYE code, ours or the peer's, as the error the operator gets
REFUSALS: dict[str, type[PeerRefused]] = {
    ByeCode.WRONG_NETWORK: PeerWrongNetwork,
    ByeCode.BANNED: PeerBanned,
    ByeCode.TOO_MANY_PEERS: PeerFull,
    ByeCode.SELF: PeerIsSelf,
}


def own_endpoint(me: Identity) -> str:
    """Where other nodes reach us, as `AddPeer` takes it; "" while we listen nowhere
    dialable."""
    if not me.listen:
        return ""
    return f"{me.listen}#{me.curve_public.hex()}" if me.use_curve else me.listen


def refusal(endpoint: str, peer: Peer) -> CcoinError:
    """The error for a link that closed before it was ready, from why it closed."""
    end = peer.ending
    if end is None or not end.code or (end.code == ByeCode.HANDSHAKE and not end.theirs
                                       and peer.hello is None):
        # it went away, or never said hello before our handshake timeout
        return PeerUnreachable(f"no handshake with {endpoint}: the link closed before it "
                               "said hello")
    kind = REFUSALS.get(end.code, PeerRefused)
    who = f"{endpoint} refused the link" if end.theirs else f"this node refused {endpoint}"
    return kind(f"{who}: {end.code}" + (f": {end.reason}" if end.reason else ""))


class Control:
    def __init__(self, me: Identity, peers: PeerTable, book: AddressBook,
                 discipline: Discipline, syncer: Syncer, settings: P2PSettings, slots: Slots,
                 dial: Dial, assume: assumevalid.AssumeValid | None = None) -> None:
        self.me = me
        self.peers = peers
        self.book = book
        self.discipline = discipline
        self.syncer = syncer
        self.settings = settings
        self.slots = slots
        self.dial = dial
        self.assume = assume

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
                                   self.discipline.bans.count("node"), own_endpoint(self.me),
                                   assumevalid.info(self.assume))

    # --- AddPeer ---------------------------------------------------------------------------

    async def add_peer(self, req: messages.AddPeer) -> messages.AddPeerReply:
        endpoint, key = wire.parse_peer_uri(req.endpoint)
        if endpoint in self.me.self_endpoints:
            raise PeerIsSelf(f"{endpoint} is this node")
        if self.discipline.endpoint_banned(endpoint):
            raise PeerBanned(f"{endpoint} is banned on this node")
        entry = self.book.add(endpoint, curve_key=key, source="manual")
        if entry is None:
            raise PeerRefused("the address book is full")
        if self.me.use_curve and not entry.curve_key:
            raise Malformed(f"this node uses CurveZMQ: give the peer's key, as "
                            f"{endpoint}#<64 hex>")
        self.book.reset(endpoint)
        log.info("peer %s added by the operator", endpoint)
        peer = self._link_to(endpoint, entry.node_id)
        if peer is not None and peer.ready:
            return self._reply(PeerOutcome.ALREADY_CONNECTED, peer)
        if peer is None:  # none opening either: dial it now
            if not self.slots.outbound_free(manual=True):
                raise PeerFull(f"all {MAX_MANUAL} slots for operator-added peers are taken "
                               "(linked, or still dialing)")
            self.book.hold(endpoint, self.settings.timing.handshake)
            peer = self.dial(endpoint, entry.curve_key, True)
            if peer is None:
                raise PeerUnreachable(f"cannot dial {endpoint} (see the p2p log)")
        wait = req.wait_ms / 1000
        if not await self._settled(peer, wait):
            raise PeerUnreachable(f"no handshake with {endpoint} within {wait:g} s: nothing "
                                  "answers there, or not in time; it stays in the address "
                                  "book and is retried")
        if peer.ready:
            return self._reply(PeerOutcome.CONNECTED, peer)
        end = peer.ending
        linked = self.peers.by_id.get(peer.node_id) if peer.hello is not None else None
        if end is not None and end.code == ByeCode.DUPLICATE and linked is not None:
            return self._reply(PeerOutcome.ALREADY_CONNECTED, linked)  # linked the other way
        raise refusal(endpoint, peer)

    def _link_to(self, endpoint: str, node_id: bytes) -> Peer | None:
        """Our link to that address or node: the outbound one dialed there (ready or not),
        else a ready one that announced it or that is the node the book knows there."""
        peer = self.peers.outbound.get(endpoint)
        if peer is not None:
            return peer
        for p in self.peers.ready():
            if p.endpoint == endpoint:
                return p
        return self.peers.by_id.get(node_id) if node_id else None

    async def _settled(self, peer: Peer, wait: float) -> bool:
        """Wait until `peer` is ready or closed; False when `wait` seconds pass first."""
        if peer.ready or peer.closed:
            return True
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle(p: Peer) -> None:
            if p is peer and not done.done():
                done.set_result(None)

        self.peers.on_ready.append(settle)
        self.peers.on_close.append(settle)
        try:
            async with asyncio.timeout(wait):
                await done
            return True
        except TimeoutError:
            return False
        finally:
            self.peers.on_ready.remove(settle)
            self.peers.on_close.remove(settle)

    @staticmethod
    def _reply(outcome: PeerOutcome, peer: Peer) -> messages.AddPeerReply:
        return messages.AddPeerReply(outcome, peer.node_id, peer.endpoint or peer.link.remote,
                                     peer.direction)

    # --- SyncNow ---------------------------------------------------------------------------

    def sync_now(self, _: messages.SyncNow) -> messages.Ok:
        log.info("sync requested by the operator")
        self.syncer.force()
        return messages.Ok()

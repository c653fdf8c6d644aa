"""The p2p service: a small node that wires the transport to the handlers, by concern.

    transport.py   sockets, ZAP, one frame per message        (Bitcoin's P2PConnection)
    handshake.py   HEL / ACK / BYE and the link state         \\
    liveness.py    PNG / PON, timeouts, slow peers             |
    txs.py         TXS in and out                              |  the handlers
    blocks.py      BLK in and out, GBL served, batch import    |  (Bitcoin's P2PInterface
    sync.py        the sync state machine, BLS, HDS            |
    assumevalid.py which synced blocks skip signatures          |   `on_<msgtype>`)
    pex.py         GPX / PEX, the address book, dialing        |
    discipline.py  scores, bans, who may connect              /
    slots.py       outbound and inbound budgets, per-address limits, eviction (eviction.py)
    control.py     GetPeers, AddPeer, SyncNow on the bus

Every frame goes through `on_frame`: the peer's rate limit for its header, strict decoding
(`common.wire`), the handshake gate, then the handler of its class in ONE dispatch table
covering `wire.MESSAGEMAP`. Blocks, transactions and block requests, which need state, go
through the peer's own bounded inbox and worker instead of being handled inline, so one
peer flooding us delays only itself.

Nothing binds in a constructor: `start` binds the control socket and the ROUTER (an address
it cannot bind is fatal, unless the node is `outbound_only`), waits for state, and starts
the loops; `stop` says BYE and closes everything. The context and every
endpoint are injected (`P2PSettings`), so tests run a node in-process over inproc://.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import zmq
import zmq.asyncio

from common import messages, wire
from common.crypto import Signer
from common.errors import CcoinError, Malformed, NotFound
from common.genesis import Genesis
from common.types import BlockOutline
from common.wire import ByeCode
from runtime import bus, buscurve
from runtime.config import ConfigError, NodeConfig, load_genesis
from services.p2p import identity, scoring
from services.p2p.assumevalid import AssumeValid
from services.p2p.blocks import BlockRelay
from services.p2p.book import AddressBook
from services.p2p.chainview import STATE_TIMEOUT_S, ChainView, Tip
from services.p2p.control import Control
from services.p2p.discipline import Discipline
from services.p2p.discovery import DiscoveryClient
from services.p2p.handshake import Handshaker, Identity
from services.p2p.liveness import Liveness
from services.p2p.peer import Peer
from services.p2p.peers import PeerTable
from services.p2p.pex import PeerExchange
from services.p2p.scoring import BanList
from services.p2p.settings import P2PSettings
from services.p2p.slots import Slots
from services.p2p.sync import Handover, Syncer
from services.p2p.transport import Link, Transport, advertised_host, tcp_address
from services.p2p.txs import TxRelay
from services.p2p.verify import Verifier

log = logging.getLogger("ccoin.p2p")

# a handler takes the peer and the decoded message; those that ask state are coroutines
Handler = Callable[[Peer, Any], Any]
# handled by the peer's worker, one at a time, as they need state
HEAVY: frozenset[type[wire.WireMessage]] = frozenset({wire.Txs, wire.NewBlock, wire.GetBlocks,
                                                     wire.GetHeaders})


class CannotListen(CcoinError):
    """p2p cannot listen on its address (fatal: the service exits)"""


class P2PNode:
    def __init__(self, settings: P2PSettings, genesis: Genesis, ctx: zmq.asyncio.Context,
                 node_key: Signer, curve_keys: tuple[bytes, bytes] | None = None,
                 allow_list: frozenset[bytes] | None = None) -> None:
        self.settings = settings
        self.ctx = ctx
        timing = settings.timing
        self.me = Identity(node_key, curve_keys[0] if curve_keys else b"")
        self.state = bus.BusClient(settings.state, ctx, timeout=STATE_TIMEOUT_S,
                                   curve=settings.bus_curve)
        self.chain = ChainView(self.state, genesis)
        self.book = AddressBook()
        self.peers = PeerTable(self.book, timing.stable_link)
        self.discipline = Discipline(BanList(settings.ban_seconds), self.peers, self.book,
                                     allow_list=allow_list,
                                     ip_log_interval_s=timing.ip_log_interval)
        self.transport = Transport(ctx, curve_keys=curve_keys, admit=self.discipline.admit)
        self.slots = Slots(settings, self.peers)
        self.verifier = Verifier(genesis)
        self.assume = (AssumeValid(settings.assume_valid, genesis) if settings.assume_valid
                       else None)
        self.syncer = Syncer(self, reply_timeout=timing.sync_reply, assume=self.assume)
        self.peers.on_close.append(self.syncer.peer_closed)
        self.blocks = BlockRelay(self.state, self.chain, self.peers, self.discipline,
                                 self.verifier, self.syncer, self.assume)
        self.txs = TxRelay(self.state, genesis.network_id, self.peers, self.discipline,
                           self.verifier)
        self.pex = PeerExchange(self.me, self.chain, self.peers, self.book, self.discipline,
                                settings, self.slots, self.dial, time.monotonic())
        self.handshake = Handshaker(self.me, self.chain, self.peers, self.discipline,
                                    self.book, self.slots, self._on_ready,
                                    self.pex.send_addresses)
        self.liveness = Liveness(self.chain, self.peers, self.discipline, timing,
                                 self.syncer.poke)
        self.control = Control(self.me, self.peers, self.book, self.discipline, self.syncer,
                               settings, self.slots, self.dial, self.assume)
        self.handlers: dict[type[wire.WireMessage], Handler] = {
            wire.Hello: self.handshake.on_hello,
            wire.HelloAck: self.handshake.on_ack,
            wire.Bye: self.handshake.on_bye,
            wire.Ping: self.liveness.on_ping,
            wire.Pong: self.liveness.on_pong,
            wire.Txs: self.txs.on_txs,
            wire.NewBlock: self.blocks.on_new_block,
            wire.GetBlocks: self.blocks.on_get_blocks,
            wire.Blocks: self.syncer.on_blocks,
            wire.GetHeaders: self.blocks.on_get_headers,
            wire.Headers: self.syncer.on_headers,
            wire.GetPeerAddrs: self.pex.on_get_addrs,
            wire.PeerAddrs: self.pex.on_addrs,
        }
        unhandled = set(wire.MESSAGEMAP.values()) - set(self.handlers)
        if unhandled:  # a message added to the catalogue must get its handler here
            raise TypeError(f"no handler for {sorted(c.__name__ for c in unhandled)}")
        self.server: bus.Server | None = None
        # a Curve control socket needs a ZAP handler, and the transport's owns this context's
        # ZAP endpoint: the control socket then gets a context of its own (runtime/zap.py)
        curve = settings.bus_curve
        self.bus_ctx = (zmq.asyncio.Context() if curve is not None
                        and curve.mode(settings.control) == buscurve.CURVE else None)
        self.bus_guard = buscurve.Guard(self.bus_ctx or ctx, curve)
        self.discovery: DiscoveryClient | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def node_id(self) -> bytes:
        return self.me.node_id

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the control socket, wait for state, listen, and start every loop."""
        # AddPeer waits for a handshake: it must not hold up GetPeers meanwhile
        self.server = bus.Server(self.bus_ctx or self.ctx, self.settings.control, "p2p",
                                 self.control.handlers(),
                                 concurrent=frozenset({messages.AddPeer}),
                                 guard=self.bus_guard)
        self._spawn("control", self.server.serve_forever())
        # bound before state is awaited: a port in use fails the process within moments of
        # its start, which is what lets supervisord count it as a failed start (FATAL)
        self.transport.start(guard=not self.settings.listen.startswith("inproc://"))
        self._listen()
        await self.chain.wait_ready()
        for uri in self.settings.bootnodes:
            try:
                endpoint, key = wire.parse_peer_uri(uri)
            except Malformed as exc:
                log.error("ignoring bootnode %r: %s", uri, exc)
                continue
            self.book.add(endpoint, curve_key=key, source="bootnode")
        self._spawn("router", self.transport.read_router(self._on_router))
        self._spawn("events", self.chain.follow(self.ctx, self.settings.events,
                                                self.syncer.poke, self.txs.pooled_by_state,
                                                self.settings.bus_curve))
        self._spawn("announce", self.blocks.announce())
        self._spawn("tx-relay", self.txs.relay())
        self._spawn("tx-submit", self.txs.submit())
        self._spawn("sync", self.syncer.run())
        self._spawn("tick", self._maintain())
        if self.settings.discovery:
            self.discovery = DiscoveryClient(self.settings.discovery, self.pex.registration,
                                             self.pex.discovered)
            self._spawn("discovery", self.discovery.run())
        log.info("p2p ready: node %s %s, max peers %d%s", self.node_id.hex(),
                 "outbound only" if self.settings.outbound_only
                 else f"listening on {self.me.listen or self.settings.listen}",
                 self.settings.max_peers, ", CurveZMQ" if self.me.use_curve else "")

    async def stop(self) -> None:
        # The loops first: a link closed under a waiting sync round completes the future
        # the round awaits, and a cancellation arriving in the same step can be lost by an
        # awaited library call (3.11's `asyncio.wait_for` did so in the bus client), so a
        # loop is cancelled again until it has ended rather than trusted to stop at once.
        pending = set(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.1)
        for task in self._tasks:
            if not task.cancelled() and task.exception() is not None:
                log.error("p2p loop %s had failed: %r", task.get_name(), task.exception())
        self._tasks.clear()
        for peer in self.peers.all():
            self.peers.close(peer, ByeCode.SHUTDOWN, "node stopping")
        self.blocks.close()
        self.transport.close()
        if self.server is not None:
            self.server.close()
        self.bus_guard.close()
        if self.bus_ctx is not None:
            self.bus_ctx.destroy(linger=0)
        self.state.close()

    async def run(self) -> None:
        """Run until a loop fails (a bug: it is raised) or the task is cancelled."""
        try:
            await self.start()
            done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            await self.stop()

    def _spawn(self, name: str, work: Coroutine[Any, Any, Any]) -> None:
        self._tasks.append(asyncio.create_task(work, name=f"p2p-{name}"))

    def _listen(self) -> None:
        """Bind the ROUTER, or, with `outbound_only`, bind nothing and say so once.

        A node that was asked to listen and cannot is not doing its job (no peer can reach
        it), so that is fatal: `CannotListen` ends the process with one line naming the
        address and the OS error, and supervisord, after its retries, marks p2p FATAL."""
        if self.settings.outbound_only:
            log.info("outbound only (p2p.outbound_only): not listening, dialing out only")
            return
        endpoint = self.settings.listen
        try:
            bound = self.transport.listen(endpoint)
        except zmq.ZMQError as exc:
            why = zmq.strerror(exc.errno) if exc.errno else str(exc)  # without pyzmq's addr=
            raise CannotListen(
                f"cannot listen on {endpoint}: {why} (free the port, change p2p.port, or set "
                f"p2p.outbound_only to only dial out)") from None
        if bound.startswith("tcp://"):
            host, _, port = bound.removeprefix("tcp://").rpartition(":")
            host = self.settings.advertise_host or host.removeprefix("[").removesuffix("]")
            self.me.listen = tcp_address(advertised_host(host), int(port))
            self.me.self_endpoints.add(self.me.listen)
        else:
            self.me.self_endpoints.add(bound)  # not announced, but never dialed either

    async def _maintain(self) -> None:
        timing = self.settings.timing
        checked = time.monotonic()
        while True:
            await asyncio.sleep(timing.tick)
            now = time.monotonic()
            self.tick(now)
            if now - checked >= timing.head_check:
                # the backstop: a head no event told us about (a subscription that has not
                # noticed its loss) is found within one check, and then announced
                checked = now
                try:
                    await self.chain.refresh()
                except CcoinError as exc:
                    log.debug("head check: %s", exc)

    def tick(self, now: float) -> None:
        """The periodic work: liveness of every link, dialing, PEX."""
        self.liveness.tick(now)
        self.pex.tick(now)

    # --- links --------------------------------------------------------------------------------

    def dial(self, endpoint: str, curve_key: bytes = b"", manual: bool = False) -> Peer | None:
        """Open an outbound link (`manual`: one the operator asked for) and say hello; None
        when it cannot be opened."""
        if self.me.use_curve and not curve_key:
            log.info("cannot dial %s: CurveZMQ needs its key (tcp://host:port#<hex key>)",
                     endpoint)
            self.book.hold(endpoint, self.discipline.bans.seconds)
            return None
        try:
            link = self.transport.dial(endpoint, curve_key)
        except zmq.ZMQError as exc:
            log.warning("cannot dial %s: %s", endpoint, exc)
            self.book.failed(endpoint)
            return None
        peer = self.peers.add_outbound(link, manual=manual)
        self.transport.follow(link, lambda frames: self._on_link(peer, frames))
        self.handshake.send_hello(peer)
        log.debug("dialing %s", endpoint)
        return peer

    def _on_router(self, routing_id: bytes, frames: list[zmq.Frame]) -> None:
        peer = self.peers.inbound.get(routing_id)
        if peer is None:
            if routing_id in self.peers.banned_rids:
                return
            link: Link = self.transport.inbound_link(routing_id, frames[-1])
            if not self.discipline.screen(link):
                return
            peer = self.peers.accept(link)
        if len(frames) != 1:
            self.discipline.punish(peer, scoring.MALFORMED, "multi-part frame")
            return
        self.on_frame(peer, frames[0].bytes)

    def _on_link(self, peer: Peer, frames: list[bytes]) -> None:
        if len(frames) != 1:
            self.discipline.punish(peer, scoring.MALFORMED, "multi-part frame")
            return
        self.on_frame(peer, frames[0])

    def _on_ready(self, peer: Peer) -> None:
        peer.worker = asyncio.create_task(self._work(peer), name=f"p2p-work-{peer.label}")
        peer.send(wire.GetPeerAddrs())
        self.syncer.poke()
        self.chain.head_changed.set()  # tell it our head if it lacks it

    # --- dispatch -------------------------------------------------------------------------------

    def on_frame(self, peer: Peer, frame: bytes) -> None:
        if peer.closed:
            return
        peer.liveness.last_recv = time.monotonic()
        header = wire.header_of(frame)
        if not peer.standing.limits.allow(header):
            self.discipline.punish(peer, scoring.FLOOD, f"{header!r} over its rate limit")
            return
        try:
            msg = wire.decode(frame)
        except Malformed as exc:
            self.discipline.punish(peer, scoring.decode_penalty(exc), f"{exc.code}: {exc}")
            return
        if not self.handshake.admits(peer, msg):
            return
        if type(msg) in HEAVY:
            self._queue(peer, msg)
            return
        self.handlers[type(msg)](peer, msg)
        self.discipline.enforce(peer)

    def _queue(self, peer: Peer, msg: wire.WireMessage) -> None:
        try:
            peer.inbox.put_nowait(msg)
        except asyncio.QueueFull:
            standing = peer.standing
            standing.inbox_drops += 1
            if standing.inbox_drops in (1, 100, 10_000):
                log.info("peer %s: work queue full, %d message(s) dropped", peer.label,
                         standing.inbox_drops, extra={"peer": peer.label})
            self.discipline.punish(peer, scoring.QUEUE_FULL, "inbox full")

    async def _work(self, peer: Peer) -> None:
        """The link's worker: blocks, transactions and block requests, one at a time."""
        while not peer.closed:
            msg = await peer.inbox.get()
            try:
                result = self.handlers[type(msg)](peer, msg)
                if asyncio.iscoroutine(result):
                    await result
            except CcoinError as exc:
                log.warning("peer %s: %s not handled: %s", peer.label, msg.msgtype.decode(),
                            exc, extra={"peer": peer.label})
            except Exception:
                log.exception("peer %s: handler failed", peer.label)
            self.discipline.enforce(peer)
            await asyncio.sleep(0)

    # --- what the syncer needs (sync.SyncHost) ---------------------------------------------------

    @property
    def tip(self) -> Tip:
        return self.chain.tip

    def ready_peers(self) -> list[Peer]:
        return self.peers.ready()

    def better(self, candidate: Tip, current: Tip) -> bool:
        return self.chain.better(candidate, current)

    async def locator(self) -> tuple[bytes, ...]:
        return await self.chain.locator()

    async def height_of(self, block_hash: bytes) -> int | None:
        try:
            reply = await self.state.request(messages.GetBlock(0, block_hash),
                                             messages.BlockReply)
        except NotFound:
            return None
        return BlockOutline.decode(reply.block).height

    async def import_blocks(self, peer: Peer, raws: tuple[bytes, ...],
                            after: Handover | None = None) -> tuple[bytes | None, Handover]:
        return await self.blocks.import_blocks(peer, raws, after)

    async def refresh_tip(self) -> None:
        await self.chain.refresh()

    def punish(self, peer: Peer, points: int, why: str) -> None:
        self.discipline.punish(peer, points, why)


async def main(config: NodeConfig) -> None:
    genesis = load_genesis(config.genesis_file())
    key_dir = identity.key_dir(config.base_path)
    try:
        node_key = identity.load_node_key(key_dir)
        curve_keys = identity.load_curve_keys(key_dir) if config.p2p_curve else None
        allow = (identity.load_allow_list(config.p2p_allow_list) if config.p2p_allow_list
                 else None)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"p2p keys: {exc}") from None
    ctx = zmq.asyncio.Context()
    try:
        await P2PNode(P2PSettings.from_config(config, genesis), genesis, ctx, node_key,
                      curve_keys, allow).run()
    finally:
        ctx.destroy(linger=0)

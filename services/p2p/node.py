"""The p2p service: links to other nodes, gossip, sync, and the control socket.

Sockets: one ROUTER bound on `p2p.host:p2p.port` accepts inbound links (one routing id per
peer); one DEALER per outbound link. Every socket has `zmq.MAXMSGSIZE = wire.MAX_MESSAGE`
and bounded high-water marks, and every send is non-blocking (see `peer.py`).

Per link: hello both ways (`HEL`), then each side proves its node key (`ACK` signs the
other's nonce and its own hello). A peer on another network or genesis is refused with a
log line and `BYE wrong_network`; a connection to ourselves, a second link to a connected
node (the link dialed by the smaller node id wins, on both sides), or one past `max_peers`
is closed with a `BYE` naming why.

Gossip: what state accepted is relayed, once per peer (per-peer seen caches): new heads
(from state's `head` events) as `BLK`, new pool transactions (`txs` events) as `TXS`
batches. What peers send is checked statelessly first (`verify.py`), then handed to state
(`SubmitTxs` in batches, `SubmitBlocks`); an orphan starts a sync from its sender.

Discipline (`scoring.py`): per-peer, per-type rate limits before decoding; a score that
bad frames, invalid blocks and transactions, floods and protocol violations lower; at the
floor `BYE banned`, disconnect, and a ban of the node id (and dialed endpoint, routing id,
curve key, and an inbound peer's IP address unless it is loopback) for `p2p.ban_seconds`. A
new inbound connection from a banned IP address is ignored from its first frame on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import zmq
import zmq.asyncio

from common import __version__, consensus, messages, wire
from common.crypto import Signer
from common.errors import CcoinError, InvalidBlock, Malformed, NotFound, Refused
from common.genesis import Genesis, load_genesis
from common.types import Block, Transaction
from runtime import bus
from runtime.config import ConfigError, NodeConfig
from services.p2p import curve, identity, scoring, zap
from services.p2p.book import AddressBook
from services.p2p.discovery import DiscoveryClient
from services.p2p.identity import load_allow_list, load_curve_keys, load_node_key
from services.p2p.peer import Peer
from services.p2p.scoring import BanList, LruDict, LruSet
from services.p2p.sync import BATCH_BLOCKS, BATCH_BYTES, Syncer
from services.p2p.verify import Verifier, bad_signature_in, first_bad_signature

log = logging.getLogger("ccoin.p2p")

AGENT = f"ccoin/{__version__}"
SOCKET_HWM = 1000
HANDSHAKE_TIMEOUT_S = 10.0
PING_INTERVAL_S = 5.0
PEER_TIMEOUT_S = 30.0
TICK_S = 0.5
RELISTEN_S = 10
STABLE_LINK_S = 60.0
IP_LOG_INTERVAL_S = 60.0  # at most one line this often about connections from banned IPs
PEX_INTERVAL_S = 60.0
SLOW_DROPS = 200  # sends dropped at its high-water mark within one tick: disconnect it
MAX_OUTBOUND = 8
MAX_PENDING_INBOUND = 64
DEFAULT_MAX_PEERS = 25
TX_BATCH = 1000
TX_BATCH_WAIT_S = 0.01
TX_QUEUE = 50_000
TX_RELAY_BYTES = 1024 * 1024
RECENT_BLOCKS = 32
RECENT_BLOCK_MAX = 4 * 1024 * 1024
# A SubmitBlocks request holds at most this many blocks and about this many bytes: small
# enough that state answers other clients in between, and that the pipeline's last stage
# (state importing the final chunk while p2p has nothing left to verify) is short.
SUBMIT_CHUNK = 100
SUBMIT_CHUNK_BYTES = 512 * 1024
STATE_TIMEOUT_S = 10.0
SUBMIT_TIMEOUT_S = 30.0
VERIFY_THREADS = 2
PARALLEL_VERIFY_MIN = 64  # fewer signatures than this are not worth a thread hand-off

HEAVY = (wire.Txs, wire.NewBlock, wire.GetBlocks)
HANDSHAKE = (wire.Hello, wire.HelloAck, wire.Bye)


def _tune(sock: zmq.Socket[Any]) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE)
    sock.setsockopt(zmq.SNDHWM, SOCKET_HWM)
    sock.setsockopt(zmq.RCVHWM, SOCKET_HWM)
    # ZMTP heartbeats notice a dead TCP connection without waiting for our pings
    sock.setsockopt(zmq.HEARTBEAT_IVL, 5_000)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 15_000)


def _frame_property(frame: zmq.Frame, name: str) -> str:
    """A ZeroMQ message property ("Peer-Address", "User-Id") of a received frame, "" when
    the transport has none."""
    try:
        return str(frame.get(name) or "")
    except zmq.ZMQError:
        return ""


def _zap_user_id(req: zap.ZapRequest) -> str:
    return curve.user_id(req.curve_key) if req.curve_key else ""


def advertised_host(host: str) -> str:
    """The address peers can reach us on when we bind every interface."""
    if host not in ("0.0.0.0", "*", "::", ""):
        return host
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


class P2PNode:
    def __init__(self, config: NodeConfig, genesis: Genesis, ctx: zmq.asyncio.Context,
                 node_key: Signer, curve_keys: tuple[bytes, bytes] | None = None,
                 allow_list: frozenset[bytes] | None = None) -> None:
        self.config = config
        self.genesis = genesis
        self.ctx = ctx
        self.signer = node_key
        self.node_id = node_key.public_key
        self.curve_public, self.curve_secret = curve_keys or (b"", b"")
        self.allow_list = allow_list
        self.max_peers = config.p2p_max_peers or genesis.max_peers or DEFAULT_MAX_PEERS
        self.max_outbound = min(MAX_OUTBOUND, self.max_peers)
        self.listen = ""  # set once bound
        self.state = bus.BusClient(config.endpoint("state"), ctx, timeout=STATE_TIMEOUT_S)
        self.verifier = Verifier(genesis)
        # libsodium releases the GIL: block signatures are verified on these threads,
        # which also keeps the event loop (pings, other peers) responsive meanwhile
        self.verify_pool = ThreadPoolExecutor(VERIFY_THREADS, thread_name_prefix="verify")
        self.bans = BanList(config.p2p_ban_seconds)
        self.book = AddressBook()
        self.inbound: dict[bytes, Peer] = {}  # routing id -> link
        self.outbound: dict[str, Peer] = {}  # dialed endpoint -> link
        self.by_id: dict[bytes, Peer] = {}  # node id -> the ready link
        self.closed_rids: LruDict[bytes, int] = LruDict(4096)  # routing id -> its last score
        self.banned_rids: LruSet[bytes] = LruSet(4096)
        self.ip_refused = 0  # inbound connections ignored because their IP address is banned
        self._ip_refused_logged = 0
        self._ip_logged_at = -IP_LOG_INTERVAL_S
        self.self_endpoints: set[str] = set()
        self.network_id = genesis.network_id
        self.genesis_hash = b""
        self.tip: tuple[int, bytes, int] = (0, b"", 0)  # height, head, total weight
        self.seen_blocks: LruSet[bytes] = LruSet(8192)  # accepted by state
        self.seen_txs: LruSet[bytes] = LruSet(200_000)  # handed to state
        self.recent_blocks: LruDict[bytes, bytes] = LruDict(RECENT_BLOCKS)
        self.recent_txs: LruDict[bytes, bytes] = LruDict(50_000)
        self.tx_in: asyncio.Queue[bytes] = asyncio.Queue(TX_QUEUE)
        self.tx_out: deque[bytes] = deque(maxlen=TX_QUEUE)
        self._tx_out_ready = asyncio.Event()
        self._head_changed = asyncio.Event()
        self.router: zmq.asyncio.Socket | None = None
        self.gatekeeper: zap.Gatekeeper | None = None
        self.discovery: DiscoveryClient | None = None
        self.syncer = Syncer(self.ready_peers, lambda: self.tip, self._locator,
                             self.import_blocks, self.refresh_tip, self._punish,
                             partial(consensus.is_better_tip, genesis))
        self.control = bus.Server(ctx, config.endpoint("p2p"), "p2p", {
            messages.GetPeers: self.get_peers,
            messages.AddPeer: self.add_peer,
            messages.SyncNow: self.sync_now,
        })
        self._tasks: list[asyncio.Task[Any]] = []
        self._listen_failed = False
        self._last_listen_try = 0.0
        self._last_pex = time.monotonic()

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def use_curve(self) -> bool:
        return bool(self.curve_secret)

    async def run(self) -> None:
        control = asyncio.create_task(self.control.serve_forever(), name="p2p-control")
        try:
            await self._wait_for_state()
            self._bind()
            for uri in self.config.bootnodes:
                try:
                    endpoint, key = wire.parse_peer_uri(uri)
                except Malformed as exc:
                    log.error("ignoring bootnode %r: %s", uri, exc)
                    continue
                self.book.add(endpoint, curve_key=key, source="bootnode")
            loops: list[tuple[str, Callable[[], Any]]] = [
                ("router", self._read_router), ("events", self._events),
                ("announce", self._announcer), ("tx-relay", self._tx_relayer),
                ("tx-submit", self._tx_submitter), ("sync", self.syncer.run),
                ("tick", self._maintain)]
            if self.config.discovery:
                self.discovery = DiscoveryClient(self.config.discovery, self._registration,
                                                 self._discovered)
                loops.append(("discovery", self.discovery.run))
            self._tasks = [asyncio.create_task(fn(), name=f"p2p-{name}") for name, fn in loops]
            log.info("p2p ready: node %s listening on %s, max peers %d%s",
                     self.node_id.hex(), self.listen, self.max_peers,
                     ", CurveZMQ" if self.use_curve else "")
            done, _ = await asyncio.wait([control, *self._tasks],
                                         return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a crashed loop is a bug: surface it
        finally:
            for peer in list(self.inbound.values()) + list(self.outbound.values()):
                self.close(peer, "shutdown", "node stopping")
            for task in [control, *self._tasks]:
                task.cancel()
            await asyncio.gather(control, *self._tasks, return_exceptions=True)
            self.verify_pool.shutdown(wait=False, cancel_futures=True)
            if self.gatekeeper is not None:
                self.gatekeeper.stop()
            if self.router is not None:
                self.router.close(linger=200)
            self.control.close()
            self.state.close()

    async def _wait_for_state(self) -> None:
        delay = 0.25
        while True:
            try:
                status = await self.state.request(messages.GetStatus(), messages.StatusReply,
                                                  timeout=2.0, retries=0)
                break
            except CcoinError as exc:
                log.warning("waiting for state: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if status.network_id != self.genesis.network_id:
            raise Malformed(f"state runs network {status.network_id}, the genesis file says "
                            f"{self.genesis.network_id}")
        self.genesis_hash = status.genesis
        self.tip = (status.height, status.head, status.total_weight)

    def _bind(self) -> None:
        router = self.ctx.socket(zmq.ROUTER)
        _tune(router)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # every new connection, plain or Curve, is put to `_admit` during its handshake
        self.gatekeeper = zap.Gatekeeper(self.ctx, self._admit, _zap_user_id)
        self.gatekeeper.start()
        router.setsockopt(zmq.ZAP_DOMAIN, zap.DOMAIN)
        if self.use_curve:
            curve.make_server(router, self.curve_public, self.curve_secret)
        self.router = router
        self._try_listen()

    def _try_listen(self) -> bool:
        """Bind the ROUTER. A port in use is logged, not fatal: the node still dials out,
        and the bind is retried every `RELISTEN_S`."""
        assert self.router is not None
        host = self.config.p2p_host
        bind_host = f"[{host}]" if ":" in host else host
        self._last_listen_try = time.monotonic()
        try:
            self.router.bind(f"tcp://{bind_host}:{self.config.p2p_port}")
        except zmq.ZMQError as exc:
            if not self._listen_failed:
                log.error("cannot listen on %s:%d (%s): dialing out only, retrying every %d s",
                          bind_host, self.config.p2p_port, exc, RELISTEN_S)
            self._listen_failed = True
            return False
        last = self.router.getsockopt(zmq.LAST_ENDPOINT)
        assert isinstance(last, bytes)
        port = int(last.decode().rsplit(":", 1)[1])
        adv = advertised_host(host)
        self.listen = f"tcp://[{adv}]:{port}" if ":" in adv else f"tcp://{adv}:{port}"
        self.self_endpoints.add(self.listen)
        if self._listen_failed:
            log.info("listening on %s now", self.listen)
        self._listen_failed = False
        return True

    def _admit(self, req: zap.ZapRequest) -> str | None:
        """Whether a new inbound connection may exist (None) or why not: not from a banned IP
        address, and with Curve, not with a banned or (private network) unlisted key."""
        ip = scoring.bannable_ip(req.address)
        if ip is not None and self.bans.banned(("ip", ip)):
            self._refused_ip(ip)
            return "banned address"
        if req.mechanism == b"CURVE":
            key = req.curve_key
            why = curve.refusal(key, self.allow_list, self.bans.banned(("curve", key)))
            if why is not None:
                log.info("refused curve key %s from %s: %s", key.hex()[:16], req.address, why)
            return why
        return None

    # --- state ----------------------------------------------------------------------------------

    async def refresh_tip(self) -> None:
        status = await self.state.request(messages.GetStatus(), messages.StatusReply)
        self._set_tip(status.height, status.head, status.total_weight)

    def _set_tip(self, height: int, head: bytes, weight: int) -> None:
        if head != self.tip[1]:
            self.tip = (height, head, weight)
            self._head_changed.set()

    async def _locator(self) -> tuple[bytes, ...]:
        return (await self.state.request(messages.GetLocator(), messages.LocatorReply)).hashes

    async def _events(self) -> None:
        """State's head and txs events drive relay; a sequence gap re-reads the status."""
        sock = bus.subscriber(self.ctx, self.config.endpoint("events"), (b"head", b"txs"))
        last: dict[bytes, int] = {}
        try:
            try:
                await self.refresh_tip()  # what happened before the subscription took
            except CcoinError as exc:
                log.warning("cannot read the status: %s", exc)
            while True:
                frames = await sock.recv_multipart()
                try:
                    topic, seq, event = bus.parse_event(frames)
                except CcoinError as exc:
                    log.warning("bad event from state: %s", exc)
                    continue
                gap = topic in last and seq != last[topic] + 1
                last[topic] = seq
                if isinstance(event, messages.HeadEvent):
                    self._set_tip(event.height, event.hash, event.total_weight)
                    self.syncer.poke()
                elif isinstance(event, messages.TxsEvent):
                    self.tx_out.extend(event.ids)
                    self._tx_out_ready.set()
                if gap and topic == b"head":
                    try:
                        await self.refresh_tip()
                    except CcoinError as exc:
                        log.warning("cannot re-read the status after an event gap: %s", exc)
        finally:
            sock.close(0)

    # --- peers: sockets and framing -------------------------------------------------------------

    def ready_peers(self) -> list[Peer]:
        return [p for p in self.by_id.values() if p.ready and not p.closed]

    def all_peers(self) -> list[Peer]:
        return [*self.inbound.values(), *self.outbound.values()]

    async def _read_router(self) -> None:
        assert self.router is not None
        while True:
            frames = await self.router.recv_multipart(copy=False)
            rid = frames[0].bytes
            peer = self.inbound.get(rid)
            if peer is None:
                if rid in self.banned_rids:
                    continue
                remote = _frame_property(frames[-1], "Peer-Address")
                ip = scoring.bannable_ip(remote)
                # ZAP refuses new connections from a banned IP; this catches a connection
                # opened before the ban whose peer we closed (a ROUTER cannot hang up)
                if ip is not None and self.bans.banned(("ip", ip)):
                    self.banned_rids.add(rid)  # its later frames are dropped unread
                    self._refused_ip(ip)
                    continue
                peer = self._new_inbound(rid, frames[-1], remote)
            if len(frames) != 2:
                self._punish(peer, scoring.MALFORMED, "multi-part frame")
                continue
            self.on_frame(peer, frames[1].bytes)

    def _endpoint_banned(self, endpoint: str) -> bool:
        """Whether `endpoint` must not be dialed: banned itself, or on a banned IP address
        (a banned host must not get back in by being dialed at another port)."""
        ip = scoring.endpoint_ip(endpoint)
        return self.bans.banned(("endpoint", endpoint)) or (
            ip is not None and self.bans.banned(("ip", ip)))

    def _refused_ip(self, ip: str) -> None:
        """Count a new connection from a banned IP address, which gets no answer at all. The
        first is logged, then at most one line every `IP_LOG_INTERVAL_S` with how many came
        since: a banned host reconnecting in a loop must not flood the log."""
        self.ip_refused += 1
        now = time.monotonic()
        if now - self._ip_logged_at < IP_LOG_INTERVAL_S:
            return
        log.warning("refused a new connection from %s: its IP address is banned (%d such "
                    "connection(s) since the last report, %d in all; %d IP address(es) banned)",
                    ip, self.ip_refused - self._ip_refused_logged, self.ip_refused,
                    self.bans.count("ip"))
        self._ip_logged_at = now
        self._ip_refused_logged = self.ip_refused

    def _new_inbound(self, rid: bytes, frame: zmq.Frame, remote: str) -> Peer:
        pending = [p for p in self.inbound.values() if not p.ready]
        if len(pending) >= MAX_PENDING_INBOUND:
            self.close(min(pending, key=lambda p: p.created), "handshake", "too many pending")
        user = _frame_property(frame, "User-Id") if self.use_curve else ""
        # `remote`, the source IP address, is what an IP ban of this peer bans
        peer = Peer("inbound", router=self.router, routing_id=rid,
                    curve_key=curve.user_key(user), remote=remote)
        peer.score = self.closed_rids.get(rid) or 0  # a closed link does not reset its debt
        self.inbound[rid] = peer
        return peer

    async def _read_outbound(self, peer: Peer) -> None:
        assert peer.sock is not None
        try:
            while not peer.closed:
                frames = await peer.sock.recv_multipart(copy=True)
                if len(frames) != 1:
                    self._punish(peer, scoring.MALFORMED, "multi-part frame")
                    continue
                self.on_frame(peer, frames[0])
        except (asyncio.CancelledError, zmq.ZMQError):
            pass

    def dial(self, endpoint: str, curve_key: bytes = b"") -> Peer | None:
        if self.use_curve and not curve_key:
            log.info("cannot dial %s: CurveZMQ needs its key (tcp://host:port#<hex key>)",
                     endpoint)
            self.book.hold(endpoint, self.bans.seconds)
            return None
        sock = self.ctx.socket(zmq.DEALER)
        _tune(sock)
        if self.use_curve:
            curve.make_client(sock, self.curve_public, self.curve_secret, curve_key)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            log.warning("cannot dial %s: %s", endpoint, exc)
            self.book.failed(endpoint)
            return None
        peer = Peer("outbound", endpoint, sock=sock, curve_key=curve_key)
        self.outbound[endpoint] = peer
        peer.reader = asyncio.create_task(self._read_outbound(peer), name=f"p2p-out-{endpoint}")
        self._send_hello(peer)
        log.debug("dialing %s", endpoint)
        return peer

    def close(self, peer: Peer, code: str = "", reason: str = "") -> None:
        """Say BYE (when `code`) and forget the link."""
        if peer.closed:
            return
        if code:
            peer.send(wire.Bye(code, reason[:wire.MAX_REASON]))
        peer.closed = True
        if peer.worker is not None:
            peer.worker.cancel()
        if peer.outbound:
            if peer.reader is not None:
                peer.reader.cancel()
            assert peer.sock is not None
            peer.sock.close(linger=100 if code else 0)
            if self.outbound.get(peer.endpoint) is peer:
                del self.outbound[peer.endpoint]
            if peer.ready and time.monotonic() - peer.ready_at > STABLE_LINK_S:
                self.book.reset(peer.endpoint)  # it worked for a while: redial soon
            self.book.failed(peer.endpoint)
        else:
            if self.inbound.get(peer.routing_id) is peer:
                del self.inbound[peer.routing_id]
            self.closed_rids.put(peer.routing_id, min(peer.current_score(), 0))
        if self.by_id.get(peer.node_id) is peer:
            del self.by_id[peer.node_id]
        self.syncer.peer_closed(peer)
        if peer.ready:
            log.info("peer %s disconnected%s", peer.label,
                     f" ({code}: {reason})" if code else "", extra={"peer": peer.label})

    def _punish(self, peer: Peer, points: int, why: str) -> None:
        peer.penalize(points, why)
        if peer.below_floor and not peer.closed:
            self.ban(peer, why)

    def ban(self, peer: Peer, why: str) -> None:
        """Disconnect and ban what identifies the peer: its node id only when it proved
        the key, its endpoint only when we dialed it (an announced one may be a victim's),
        the IP address it connected from when it is inbound and not on loopback (a fresh
        node key and socket from the same host must not buy a fresh start)."""
        keys: list[tuple[str, object]] = []
        ip = None if peer.outbound else scoring.bannable_ip(peer.remote)
        if ip is not None:
            keys.append(("ip", ip))
        if peer.acked:
            keys.append(("node", peer.node_id))
        if peer.outbound:
            keys.append(("endpoint", peer.endpoint))
            self.book.hold(peer.endpoint, self.bans.seconds)
        if peer.curve_key and (peer.acked or not peer.outbound):
            keys.append(("curve", peer.curve_key))
        self.bans.ban(keys)
        if not peer.outbound:
            self.banned_rids.add(peer.routing_id)
        also = "" if ip is None else (f"; its IP address {ip} too "
                                      f"({self.bans.count('ip')} IP address(es) banned)")
        log.warning("banning peer %s for %d s: %s (score %d)%s", peer.label, self.bans.seconds,
                    why, peer.score, also, extra={"peer": peer.label})
        self.close(peer, "banned", why)

    # --- dispatch -------------------------------------------------------------------------------

    def on_frame(self, peer: Peer, frame: bytes) -> None:
        if peer.closed:
            return
        peer.last_recv = time.monotonic()
        header = wire.header_of(frame)
        if not peer.limits.allow(header):
            self._punish(peer, scoring.FLOOD, f"{header!r} over its rate limit")
            return
        try:
            msg = wire.decode(frame)
        except Malformed as exc:
            self._punish(peer, scoring.decode_penalty(exc), f"{exc.code}: {exc}")
            return
        if not peer.ready and not isinstance(msg, HANDSHAKE):
            if not peer.told_handshake:
                peer.told_handshake = True
                peer.send(wire.Bye("handshake", "hello first"))
            self._punish(peer, scoring.BEFORE_HANDSHAKE, f"{msg.msgtype!r} before the handshake")
            return
        if isinstance(msg, HEAVY):
            try:
                peer.inbox.put_nowait(msg)
            except asyncio.QueueFull:
                peer.inbox_drops += 1
                if peer.inbox_drops in (1, 100, 10_000):
                    log.info("peer %s: work queue full, %d message(s) dropped", peer.label,
                             peer.inbox_drops, extra={"peer": peer.label})
                self._punish(peer, scoring.QUEUE_FULL, "inbox full")
            return
        handler = getattr(self, f"on_{msg.msgtype.decode()}")
        if isinstance(msg, wire.Hello):
            handler(peer, msg, frame)
        else:
            handler(peer, msg)
        if peer.below_floor and not peer.closed:
            self.ban(peer, "score below the floor")

    async def _work(self, peer: Peer) -> None:
        """The link's worker: blocks, transactions and block requests, one at a time."""
        while not peer.closed:
            msg = await peer.inbox.get()
            try:
                if isinstance(msg, wire.Txs):
                    self.on_TXS(peer, msg)
                elif isinstance(msg, wire.NewBlock):
                    await self.on_BLK(peer, msg)
                elif isinstance(msg, wire.GetBlocks):
                    await self.on_GBL(peer, msg)
            except CcoinError as exc:
                log.warning("peer %s: %s not handled: %s", peer.label, msg.msgtype.decode(),
                            exc, extra={"peer": peer.label})
            except Exception:
                log.exception("peer %s: handler failed", peer.label)
            if peer.below_floor and not peer.closed:
                self.ban(peer, "score below the floor")
            await asyncio.sleep(0)

    # --- handshake ------------------------------------------------------------------------------

    def _send_hello(self, peer: Peer) -> None:
        height, head, weight = self.tip
        hello = wire.Hello(wire.PROTOCOL_VERSION, self.network_id, self.genesis_hash, head,
                           height, weight, self.node_id, self.listen, self.curve_public,
                           peer.nonce, AGENT)
        peer.sent_hello = wire.encode(hello)
        peer.send_frame(peer.sent_hello)

    def _refuse(self, peer: Peer, code: str, reason: str) -> None:
        log.info("refusing peer %s: %s", peer.label, reason, extra={"peer": peer.label})
        self.close(peer, code, reason)

    def on_HEL(self, peer: Peer, msg: wire.Hello, frame: bytes) -> None:
        if peer.hello is not None:
            self._punish(peer, scoring.MALFORMED, "second hello")
            return
        if msg.version != wire.PROTOCOL_VERSION:
            self._refuse(peer, "version", f"protocol {msg.version}, we speak "
                                          f"{wire.PROTOCOL_VERSION}")
            return
        if msg.network_id != self.network_id or msg.genesis != self.genesis_hash:
            log.warning("refusing peer %s: it runs network %d genesis %s, we run network %d "
                        "genesis %s", peer.endpoint or msg.listen or peer.remote, msg.network_id,
                        msg.genesis.hex()[:16], self.network_id, self.genesis_hash.hex()[:16],
                        extra={"peer": peer.label})
            if peer.outbound:
                self.book.hold(peer.endpoint, self.bans.seconds)
            else:
                self.banned_rids.add(peer.routing_id)
            self.close(peer, "wrong_network", f"we run network {self.network_id} genesis "
                                              f"{self.genesis_hash.hex()}")
            return
        if msg.node_id == self.node_id:
            self.self_endpoints.add(peer.endpoint)
            self.book.hold(peer.endpoint, 10**9)
            self._refuse(peer, "self", "connected to ourselves")
            return
        if self.bans.banned(("node", msg.node_id)):
            if not peer.outbound:
                self.banned_rids.add(peer.routing_id)
            self._refuse(peer, "banned", "node id is banned")
            return
        if self.use_curve and peer.curve_key != msg.curve_key:
            self._punish(peer, scoring.BAD_ACK, "hello names another curve key than the link")
            self.close(peer, "handshake", "curve key mismatch")
            return
        peer.hello, peer.hello_frame = msg, frame
        peer.update_tip(msg.height, msg.head, msg.total_weight)
        if not peer.outbound:
            peer.endpoint = msg.listen
            self._send_hello(peer)
        signature = self.signer.sign(wire.ack_payload(msg.nonce, peer.sent_hello))
        peer.ack_sent = peer.send(wire.HelloAck(signature))
        self._maybe_ready(peer)

    def on_ACK(self, peer: Peer, msg: wire.HelloAck) -> None:
        if peer.hello is None or peer.acked:
            self._punish(peer, scoring.MALFORMED, "ACK out of order")
            return
        if not wire.verify_ack(msg, peer.hello.node_id, peer.nonce, peer.hello_frame):
            self._punish(peer, scoring.BAD_ACK, "hello signature does not verify")
            if not peer.closed:
                self.close(peer, "handshake", "bad hello signature")
            return
        peer.acked = True
        self._maybe_ready(peer)

    def _outbound_side(self, peer: Peer) -> bytes:
        return self.node_id if peer.outbound else peer.node_id

    def _maybe_ready(self, peer: Peer) -> None:
        if peer.ready or peer.closed or not (peer.acked and peer.ack_sent):
            return
        existing = self.by_id.get(peer.node_id)
        if existing is not None and existing is not peer:
            # Both nodes keep the link dialed by the smaller node id, so a simultaneous
            # dial in both directions leaves exactly one link.
            if self._outbound_side(peer) < self._outbound_side(existing):
                self.close(existing, "duplicate", "already connected")
            else:
                self.close(peer, "duplicate", "already connected")
                return
        if len(self.by_id) >= self.max_peers:
            self._send_addresses(peer)
            self._refuse(peer, "too_many_peers", f"at {self.max_peers} peers")
            return
        peer.ready = True
        peer.ready_at = time.monotonic()
        peer.connected_ms = int(time.time() * 1000)
        self.by_id[peer.node_id] = peer
        assert peer.hello is not None
        if peer.outbound:
            self.book.connected(peer.endpoint, peer.node_id)
        elif peer.hello.listen:
            self.book.add(peer.hello.listen, peer.node_id, peer.hello.curve_key, "inbound")
        log.info("peer %s connected (%s, height %d, agent %s)", peer.label, peer.direction,
                 peer.height, peer.hello.agent, extra={"peer": peer.label})
        peer.worker = asyncio.create_task(self._work(peer), name=f"p2p-work-{peer.label}")
        peer.send(wire.GetPeerAddrs())
        self.syncer.poke()
        self._head_changed.set()  # tell it our head if it lacks it

    def on_BYE(self, peer: Peer, msg: wire.Bye) -> None:
        refused = msg.code in ("wrong_network", "banned", "version", "self")
        log.log(logging.WARNING if refused else logging.INFO, "peer %s %s: %s: %s", peer.label,
                "refused us" if refused else "said bye", msg.code, msg.reason,
                extra={"peer": peer.label})
        if peer.outbound and refused:
            self.book.hold(peer.endpoint, self.bans.seconds)
        self.close(peer)

    # --- liveness and addresses -------------------------------------------------------------------

    def on_PNG(self, peer: Peer, msg: wire.Ping) -> None:
        peer.update_tip(msg.height, msg.head, msg.total_weight)
        height, head, weight = self.tip
        peer.send(wire.Pong(msg.nonce, height, head, weight))
        self.syncer.poke()

    def on_PON(self, peer: Peer, msg: wire.Pong) -> None:
        if peer.ping_nonce != msg.nonce:
            self._punish(peer, scoring.UNSOLICITED, "pong without a ping")
            return
        peer.ping_nonce = None
        peer.latency_ms = int((time.monotonic() - peer.ping_sent) * 1000)
        peer.update_tip(msg.height, msg.head, msg.total_weight)
        self.syncer.poke()

    def on_GPX(self, peer: Peer, msg: wire.GetPeerAddrs) -> None:
        self._send_addresses(peer)

    def _send_addresses(self, peer: Peer) -> None:
        addrs: list[wire.PeerAddr] = []
        for other in self.ready_peers():
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

    def on_PEX(self, peer: Peer, msg: wire.PeerAddrs) -> None:
        self._learn(msg.peers, "pex")

    def _learn(self, addrs: Iterable[wire.PeerAddr], source: str) -> None:
        for a in addrs:
            if a.node_id == self.node_id or a.endpoint in self.self_endpoints:
                continue
            self.book.add(a.endpoint, a.node_id, a.curve_key, source)

    # --- sync -------------------------------------------------------------------------------------

    def on_BLS(self, peer: Peer, msg: wire.Blocks) -> None:
        if not self.syncer.on_blocks(peer, msg):
            self._punish(peer, scoring.UNSOLICITED, "blocks we did not ask for")

    async def on_GBL(self, peer: Peer, msg: wire.GetBlocks) -> None:
        reply = await self.state.request(
            messages.GetBlocksAfter(msg.locator, min(msg.limit, BATCH_BLOCKS), BATCH_BYTES),
            messages.BlockRangeReply)
        height, head, weight = self.tip
        peer.send(wire.Blocks(msg.request, reply.blocks[:wire.MAX_BLOCKS_PER_MESSAGE],
                              height, head, weight))

    async def import_blocks(self, peer: Peer, raws: tuple[bytes, ...]) -> bytes | None:
        """Verify a batch from `peer` and import it in order; the last block's hash when the
        whole batch was accepted, None when it stopped at a bad block.

        A two-stage pipeline: while state imports one chunk (its CPU), this process verifies
        the next (ours), so sync uses both cores. Chunks are submitted strictly in order,
        each after the previous one was accepted, so a block never reaches state before its
        parent and an honest peer is never blamed for an orphan we made."""
        chunk: list[bytes] = []
        size = 0
        last = b""
        previous: asyncio.Task[bool] | None = None
        complete = True
        for raw in raws:
            block = await self._check_block(peer, raw)
            if block is None:
                complete = False
                break
            chunk.append(raw)
            size += len(raw)
            last = block.hash
            peer.known_blocks.add(block.hash)
            if len(chunk) >= SUBMIT_CHUNK or size >= SUBMIT_CHUNK_BYTES:
                previous = asyncio.create_task(self._submit_after(peer, tuple(chunk), previous))
                chunk, size = [], 0
            await asyncio.sleep(0)  # let the submission go out; keep pings flowing
        if chunk:
            previous = asyncio.create_task(self._submit_after(peer, tuple(chunk), previous))
        accepted = await previous if previous is not None else True
        return last if accepted and complete else None

    async def _submit_after(self, peer: Peer, chunk: tuple[bytes, ...],
                            previous: asyncio.Task[bool] | None) -> bool:
        if previous is not None and not await previous:
            return False
        result = await self.state.request(messages.SubmitBlocks(chunk),
                                          messages.SubmitBlocksResult,
                                          timeout=SUBMIT_TIMEOUT_S, retries=2)
        for outcome in result.outcomes:
            if outcome.status == "error":
                self._punish(peer, scoring.block_penalty(outcome.code),
                             f"block {outcome.height} rejected: {outcome.code}: "
                             f"{outcome.message}")
                return False
            self.seen_blocks.add(outcome.hash)
        return True

    async def _check_block(self, peer: Peer, raw: bytes) -> Block | None:
        try:
            return await self._verify_block(raw)
        except InvalidBlock as exc:
            self._punish(peer, scoring.block_penalty(exc.code), f"invalid block: {exc.code}: "
                                                                f"{exc}")
        except Malformed as exc:
            self._punish(peer, scoring.MALFORMED, f"undecodable block: {exc}")
        return None

    async def _verify_block(self, raw: bytes) -> Block:
        """`Verifier.check_block`, with the signatures split over the verify threads."""
        block, todo = self.verifier.check_block_shape(raw)
        if len(todo) < PARALLEL_VERIFY_MIN:
            parts = [todo] if todo else []
        else:
            step = -(-len(todo) // VERIFY_THREADS)
            parts = [todo[i:i + step] for i in range(0, len(todo), step)]
        loop = asyncio.get_running_loop()
        found = await asyncio.gather(*(loop.run_in_executor(self.verify_pool,
                                                            first_bad_signature, part)
                                       for part in parts))
        for part, bad in zip(parts, found, strict=True):
            if bad is not None:
                raise bad_signature_in(block, part[bad])
        self.verifier.remember(todo)
        return block

    # --- blocks -----------------------------------------------------------------------------------

    async def on_BLK(self, peer: Peer, msg: wire.NewBlock) -> None:
        block = await self._check_block(peer, msg.block)
        if block is None:
            return
        h = block.hash
        peer.known_blocks.add(h)
        if msg.total_weight >= peer.total_weight:
            peer.update_tip(block.height, h, msg.total_weight)
        if h in self.seen_blocks:
            return
        if block.height > self.tip[0] + 1:  # cannot connect yet: fetch what lies between
            self.syncer.orphan(peer)
            return
        if len(msg.block) <= RECENT_BLOCK_MAX:
            self.recent_blocks.put(h, msg.block)
        result = await self.state.request(messages.SubmitBlocks((msg.block,)),
                                          messages.SubmitBlocksResult,
                                          timeout=SUBMIT_TIMEOUT_S, retries=1)
        outcome = result.outcomes[0]
        if outcome.status != "error":
            self.seen_blocks.add(h)
            log.debug("block %d from %s: %s", block.height, peer.label, outcome.status)
        elif outcome.code == "unknown_parent":
            self.syncer.orphan(peer)
        else:
            self._punish(peer, scoring.block_penalty(outcome.code),
                         f"block {block.height} rejected: {outcome.code}: {outcome.message}")

    async def _announcer(self) -> None:
        """Announce our head to the peers that lack it. Heads are coalesced: after a burst
        (a sync batch) only the newest is announced, and a peer that missed one in between
        fetches it as the orphan's parent."""
        while True:
            await self._head_changed.wait()
            self._head_changed.clear()
            height, head, weight = self.tip
            peers = [p for p in self.ready_peers() if head not in p.known_blocks]
            if not peers or height == 0:
                continue  # the genesis block is never announced
            raw = self.recent_blocks.get(head)
            if raw is None:
                try:
                    reply = await self.state.request(messages.GetBlock(height, head),
                                                     messages.BlockReply)
                except NotFound:
                    continue  # reorged away meanwhile
                except CcoinError as exc:
                    log.warning("cannot read block %d to announce it: %s", height, exc)
                    continue
                raw = reply.block
            frame = wire.encode(wire.NewBlock(raw, weight))
            for p in peers:
                p.known_blocks.add(head)
                p.send_frame(frame)

    # --- transactions -----------------------------------------------------------------------------

    def on_TXS(self, peer: Peer, msg: wire.Txs) -> None:
        bad = 0
        for raw in msg.txs:
            try:
                tx = Transaction.decode(raw)
            except Malformed:
                bad += 1
                continue
            peer.known_txs.add(tx.id)
            if tx.id in self.seen_txs:
                continue
            if tx.chain_id != self.network_id:
                bad += 1
                continue
            try:
                self.verifier.check_signature(tx)
            except CcoinError:
                bad += 1
                continue
            self.seen_txs.add(tx.id)
            self.recent_txs.put(tx.id, raw)
            try:
                self.tx_in.put_nowait(raw)
            except asyncio.QueueFull:
                self.seen_txs.discard(tx.id)  # let a later copy in
        if bad:
            self._punish(peer, scoring.BAD_TX, f"{bad} bad transaction(s)")

    async def _tx_submitter(self) -> None:
        """Hand verified transactions to state in batches (one round trip for many)."""
        while True:
            batch = [await self.tx_in.get()]
            deadline = time.monotonic() + TX_BATCH_WAIT_S
            while len(batch) < TX_BATCH:
                try:
                    batch.append(self.tx_in.get_nowait())
                except asyncio.QueueEmpty:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    await asyncio.sleep(min(left, 0.002))
            try:
                result = await self.state.request(messages.SubmitTxs(tuple(batch)),
                                                  messages.SubmitResult)
            except CcoinError as exc:
                log.warning("state did not take %d relayed transaction(s): %s", len(batch), exc)
                continue
            refused = [r for r in result.results if r.code]
            if refused:
                log.debug("state refused %d of %d relayed transactions (first: %s)",
                          len(refused), len(batch), refused[0].code)

    async def _tx_relayer(self) -> None:
        """Relay what state accepted into its pool to every peer that lacks it."""
        while True:
            await self._tx_out_ready.wait()
            self._tx_out_ready.clear()
            ids = list(self.tx_out)
            self.tx_out.clear()
            peers = self.ready_peers()
            if not peers or not ids:
                continue
            raws = await self._raw_txs(ids)
            for p in peers:
                batch: list[bytes] = []
                size = 0
                for tx_id, raw in raws:
                    if tx_id in p.known_txs:
                        continue
                    p.known_txs.add(tx_id)
                    if len(batch) >= wire.MAX_TXS_PER_MESSAGE or size + len(raw) > TX_RELAY_BYTES:
                        p.send(wire.Txs(tuple(batch)))
                        batch, size = [], 0
                    batch.append(raw)
                    size += len(raw)
                if batch:
                    p.send(wire.Txs(tuple(batch)))
            await asyncio.sleep(0)

    async def _raw_txs(self, ids: list[bytes]) -> list[tuple[bytes, bytes]]:
        """The encodings of newly pooled transactions: from our cache (what peers sent),
        else from state's pool in one request per 10,000 (a block may have taken some)."""
        found: dict[bytes, bytes] = {}
        missing: list[bytes] = []
        for tx_id in ids:
            raw = self.recent_txs.get(tx_id)
            if raw is None:
                missing.append(tx_id)
            else:
                found[tx_id] = raw
        for start in range(0, len(missing), 10_000):
            chunk = tuple(missing[start:start + 10_000])
            try:
                reply = await self.state.request(messages.GetTxs(chunk), messages.TxsReply)
            except CcoinError as exc:
                log.warning("cannot read the pool to relay transactions: %s", exc)
                break
            for tx_id, raw in zip(chunk, reply.txs, strict=True):
                if raw:
                    found[tx_id] = raw
                    self.recent_txs.put(tx_id, raw)
        return [(i, found[i]) for i in ids if i in found]

    # --- periodic work ----------------------------------------------------------------------------

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            for peer in self.all_peers():
                if peer.unreachable:
                    self.close(peer)  # the router has no route to it: its connection is gone
                    continue
                if not peer.ready:
                    if now - peer.created > HANDSHAKE_TIMEOUT_S:
                        self.close(peer, "handshake", "handshake timed out")
                    continue
                if now - peer.last_recv > PEER_TIMEOUT_S:
                    self.close(peer, "timeout", f"silent for {PEER_TIMEOUT_S:.0f} s")
                    continue
                dropped, peer.dropped_seen = peer.dropped_sends - peer.dropped_seen, \
                    peer.dropped_sends
                if dropped > SLOW_DROPS:
                    self.close(peer, "slow", f"{dropped} messages to it dropped: it cannot "
                                             "keep up")
                    continue
                if peer.ping_nonce is None and now - peer.ping_sent >= PING_INTERVAL_S:
                    peer.ping_nonce = int.from_bytes(os.urandom(8), "big")
                    peer.ping_sent = now
                    height, head, weight = self.tip
                    peer.send(wire.Ping(peer.ping_nonce, height, head, weight))
                elif peer.ping_nonce is not None and now - peer.ping_sent > PEER_TIMEOUT_S / 2:
                    peer.ping_nonce = None  # lost: ask again (silence closes it above)
            self._dial_more(now)
            self._ask_addresses(now)
            if self._listen_failed and now - self._last_listen_try >= RELISTEN_S:
                self._try_listen()

    def _dial_more(self, now: float) -> None:
        outbound = len(self.outbound)
        for addr in self.book.due(now):
            if outbound >= self.max_outbound or len(self.by_id) >= self.max_peers:
                return
            if addr.endpoint in self.outbound or addr.endpoint in self.self_endpoints:
                continue
            if addr.node_id and (addr.node_id in self.by_id or addr.node_id == self.node_id):
                continue
            if self._endpoint_banned(addr.endpoint) or (
                    addr.node_id and self.bans.banned(("node", addr.node_id))):
                continue
            # A failed or refused dial pushes next_try forward; this stops a tight loop
            # before the handshake outcome is known.
            self.book.hold(addr.endpoint, HANDSHAKE_TIMEOUT_S)
            if self.dial(addr.endpoint, addr.curve_key) is not None:
                outbound += 1

    def _ask_addresses(self, now: float) -> None:
        """While short of outbound links, ask one peer a minute for more addresses."""
        if len(self.outbound) >= self.max_outbound or now - self._last_pex < PEX_INTERVAL_S:
            return
        self._last_pex = now
        peers = self.ready_peers()
        if peers:
            random.choice(peers).send(wire.GetPeerAddrs())

    def _registration(self) -> dict[str, Any]:
        return {"network_id": self.network_id, "genesis": self.genesis_hash.hex(),
                "node_id": self.node_id.hex(), "endpoint": self.listen,
                "curve_key": self.curve_public.hex()}

    def _discovered(self, addrs: list[wire.PeerAddr]) -> None:
        self._learn(addrs, "discovery")

    # --- control --------------------------------------------------------------------------------

    def get_peers(self, _: messages.GetPeers) -> messages.PeersReply:
        peers = sorted(self.ready_peers(), key=lambda p: p.connected_ms)
        return messages.PeersReply(tuple(p.info() for p in peers),
                                   self.syncer.state == "syncing", self.syncer.sync_target,
                                   self.node_id, self.bans.count("node"))

    def add_peer(self, req: messages.AddPeer) -> messages.Ok:
        endpoint, key = wire.parse_peer_uri(req.endpoint)
        if endpoint in self.self_endpoints:
            raise Refused(f"{endpoint} is this node")
        if self._endpoint_banned(endpoint):
            raise Refused(f"{endpoint} is banned")
        entry = self.book.add(endpoint, curve_key=key, source="manual")
        if entry is None:
            raise Refused("the address book is full")
        self.book.reset(endpoint)
        log.info("peer %s added by the operator", endpoint)
        if endpoint not in self.outbound and len(self.by_id) < self.max_peers:
            self.book.hold(endpoint, HANDSHAKE_TIMEOUT_S)
            self.dial(endpoint, entry.curve_key)
        return messages.Ok()

    def sync_now(self, _: messages.SyncNow) -> messages.Ok:
        log.info("sync requested by the operator")
        self.syncer.force()
        return messages.Ok()


async def main(config: NodeConfig) -> None:
    genesis = load_genesis(config.genesis_file())
    key_dir = identity.key_dir(config.base_path)
    try:
        node_key = load_node_key(key_dir)
        curve_keys = load_curve_keys(key_dir) if config.p2p_curve else None
        allow = load_allow_list(config.p2p_allow_list) if config.p2p_allow_list else None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"p2p keys: {exc}") from None
    ctx = zmq.asyncio.Context()
    try:
        await P2PNode(config, genesis, ctx, node_key, curve_keys, allow).run()
    finally:
        ctx.destroy(linger=0)

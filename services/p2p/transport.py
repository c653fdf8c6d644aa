"""The p2p transport: ZeroMQ sockets, the ZAP gatekeeper, and one frame per message.

Like Bitcoin Core's `P2PConnection`, this layer moves frames and knows nothing of what they
say. One ROUTER, bound by `listen` (never by the constructor), accepts inbound links (one
ZeroMQ routing id per peer); one DEALER per outbound link is opened by `dial`. Every socket
has `zmq.MAXMSGSIZE = wire.MAX_MESSAGE` (a bigger frame makes ZeroMQ drop the sender's
connection before any code sees it), bounded high-water marks and ZMTP heartbeats.

A `Link` is one peer's end. Its sends never wait: a frame that does not fit the peer's
queue is dropped and counted (the node disconnects a peer that keeps falling behind), and a
ROUTER send to a routing id whose connection is gone marks the link unreachable.

With an `admit` decision, `start` binds the context's ZAP handler (runtime/zap.py) and puts the
ROUTER in its domain, so every new tcp connection, plain or Curve, is admitted or refused
during the ZeroMQ handshake. ZeroMQ runs no ZAP on inproc:// (where in-process tests put
nodes), and a context has only one ZAP endpoint, so an inproc node starts none.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from common import wire
from common.status import PeerDirection
from runtime import zap
from services.p2p import curve

log = logging.getLogger("ccoin.p2p")

SOCKET_HWM = 1000
HEARTBEAT_IVL_MS = 5_000  # ZMTP heartbeats notice a dead TCP connection before our pings do
HEARTBEAT_TIMEOUT_MS = 15_000

# (routing id, the frames after it) of a message on the ROUTER
RouterReceiver = Callable[[bytes, list[zmq.Frame]], None]
# the frames of a message on an outbound DEALER
LinkReceiver = Callable[[list[bytes]], None]


def tune(sock: zmq.Socket[Any], hwm: int = SOCKET_HWM) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE)
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)


def send_nowait(sock: zmq.asyncio.Socket, parts: list[Any]) -> BaseException | None:
    """Send without ever waiting: None when queued, else the error (zmq.Again at the
    high-water mark, EHOSTUNREACH for a routing id that is gone)."""
    fut: Any = sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
    if fut.done():
        return fut.exception()  # type: ignore[no-any-return]
    return None


def frame_property(frame: zmq.Frame, name: str) -> str:
    """A ZeroMQ message property ("Peer-Address", "User-Id") of a received frame, "" when
    the transport has none."""
    try:
        return str(frame.get(name) or "")
    except zmq.ZMQError:
        return ""


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


def tcp_address(host: str, port: int) -> str:
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


class Link:
    """One peer's end of the transport: a DEALER of our own (outbound), or a routing id on
    the shared ROUTER (inbound). `remote` is the source address ZeroMQ saw (inbound), and
    `curve_key` the Curve key of the link: the server key we dialed, or the client key ZAP
    admitted."""

    __slots__ = ("direction", "endpoint", "routing_id", "remote", "curve_key", "sock",
                 "router", "dropped", "unreachable", "reader")

    def __init__(self, direction: PeerDirection, *, endpoint: str = "",
                 sock: zmq.asyncio.Socket | None = None,
                 router: zmq.asyncio.Socket | None = None, routing_id: bytes = b"",
                 remote: str = "", curve_key: bytes = b"") -> None:
        self.direction = direction
        self.endpoint = endpoint
        self.sock = sock
        self.router = router
        self.routing_id = routing_id
        self.remote = remote
        self.curve_key = curve_key
        self.dropped = 0  # frames that could not be queued
        self.unreachable = False  # the ROUTER has no route to it any more
        self.reader: asyncio.Task[None] | None = None

    @property
    def outbound(self) -> bool:
        return self.direction is PeerDirection.OUTBOUND

    @property
    def where(self) -> str:
        return self.endpoint or self.remote or self.routing_id.hex()[:8]

    def send_frame(self, frame: bytes) -> bool:
        """Queue one frame; False (and counted) when it could not be queued."""
        if self.sock is not None:
            err = send_nowait(self.sock, [frame])
        else:
            assert self.router is not None
            err = send_nowait(self.router, [self.routing_id, frame])
        if err is None:
            return True
        self.dropped += 1
        if isinstance(err, zmq.Again):
            pass  # its queue is full: dropped; the node disconnects a peer that stays behind
        elif isinstance(err, zmq.ZMQError) and err.errno == zmq.EHOSTUNREACH:
            self.unreachable = True
        else:
            log.warning("link %s: send failed: %s", self.where, err)
        return False

    def close(self, linger_ms: int = 0) -> None:
        """Close an outbound link's socket (`linger_ms` to let a last BYE out). A ROUTER
        cannot hang up on one routing id: an inbound link is only forgotten."""
        if self.reader is not None:
            self.reader.cancel()
        if self.sock is not None:
            self.sock.close(linger=linger_ms)


class Transport:
    """The node's sockets. `ctx` is injected, so in-process tests share one context with
    their test peers and put everything on inproc:// endpoints."""

    def __init__(self, ctx: zmq.asyncio.Context, *,
                 curve_keys: tuple[bytes, bytes] | None = None,
                 admit: zap.Admit | None = None, hwm: int = SOCKET_HWM) -> None:
        self.ctx = ctx
        self.curve_public, self.curve_secret = curve_keys or (b"", b"")
        self.admit = admit
        self.hwm = hwm
        self.router: zmq.asyncio.Socket | None = None
        self.gatekeeper: zap.Gatekeeper | None = None

    @property
    def use_curve(self) -> bool:
        return bool(self.curve_secret)

    def start(self, *, guard: bool = True) -> None:
        """Open the ROUTER (not bound yet) and, when `guard` and an `admit` decision are
        given, the ZAP handler that screens its connections."""
        router = self.ctx.socket(zmq.ROUTER)
        tune(router, self.hwm)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        if guard and self.admit is not None:
            self.gatekeeper = zap.Gatekeeper(self.ctx, self.admit, _zap_user_id)
            self.gatekeeper.start()
            router.setsockopt(zmq.ZAP_DOMAIN, zap.P2P_DOMAIN)
        if self.use_curve:
            curve.make_server(router, self.curve_public, self.curve_secret)
        self.router = router

    def listen(self, endpoint: str) -> str:
        """Bind the ROUTER to `endpoint`; the endpoint it bound (a tcp port 0 resolved).
        Raises `zmq.ZMQError` (a port in use, say)."""
        assert self.router is not None, "start() first"
        self.router.bind(endpoint)
        last = self.router.getsockopt(zmq.LAST_ENDPOINT)
        assert isinstance(last, bytes)
        return last.decode()

    def dial(self, endpoint: str, server_key: bytes = b"") -> Link:
        """A DEALER connected to `endpoint` (a Curve client of `server_key` when Curve is
        on); `follow` starts reading it. Raises `zmq.ZMQError`."""
        sock = self.ctx.socket(zmq.DEALER)
        tune(sock, self.hwm)
        if self.use_curve:
            curve.make_client(sock, self.curve_public, self.curve_secret, server_key)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError:
            sock.close(0)
            raise
        return Link(PeerDirection.OUTBOUND, endpoint=endpoint, sock=sock, curve_key=server_key)

    @staticmethod
    def follow(link: Link, receive: LinkReceiver) -> None:
        """Hand every message of an outbound link to `receive` until the link closes."""
        link.reader = asyncio.create_task(Transport._read_link(link, receive),
                                          name=f"p2p-out-{link.endpoint}")

    def inbound_link(self, routing_id: bytes, frame: zmq.Frame) -> Link:
        """The link of a routing id seen for the first time on the ROUTER (`frame` one of
        its frames, which carry the connection's properties)."""
        user = frame_property(frame, "User-Id") if self.use_curve else ""
        return Link(PeerDirection.INBOUND, router=self.router, routing_id=routing_id,
                    remote=frame_property(frame, "Peer-Address"),
                    curve_key=curve.user_key(user))

    async def read_router(self, receive: RouterReceiver) -> None:
        assert self.router is not None, "start() first"
        while True:
            frames = await self.router.recv_multipart(copy=False)
            receive(frames[0].bytes, frames[1:])

    @staticmethod
    async def _read_link(link: Link, receive: LinkReceiver) -> None:
        assert link.sock is not None
        try:
            while True:
                receive(await link.sock.recv_multipart(copy=True))
        except (asyncio.CancelledError, zmq.ZMQError):
            pass

    def close(self) -> None:
        if self.gatekeeper is not None:
            self.gatekeeper.stop()
        if self.router is not None:
            self.router.close(linger=200)


def _zap_user_id(req: zap.ZapRequest) -> str:
    return curve.user_id(req.curve_key) if req.curve_key else ""

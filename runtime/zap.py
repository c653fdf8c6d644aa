"""A gatekeeper: a ZAP handler (ZeroMQ RFC 27) that decides, during the ZeroMQ handshake,
whether a new connection may exist at all (p2p's ROUTER, and the bus's tcp:// sockets).

libzmq asks the handler bound at `inproc://zeromq.zap.01` of the socket's context about every
connection to a socket with a ZAP domain, with the peer's IP address and, for CurveZMQ, its
public key. A refused connection is closed by libzmq before any frame of it reaches the
node, so a banned host costs a handshake, not a live connection whose frames are read and
dropped. Plain (NULL) links go through it too, so p2p's IP bans work with Curve off.

What to admit is the caller's decision (`Admit`); this module only speaks the protocol. A
context has one ZAP endpoint, so one gatekeeper per context: the p2p service and the bus
(runtime/buscurve.py) each run theirs in a context of their own, told apart by domain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import zmq
import zmq.asyncio

log = logging.getLogger("ccoin.zap")

ENDPOINT = "inproc://zeromq.zap.01"  # fixed by RFC 27
P2P_DOMAIN = b"ccoin-p2p"  # p2p's ROUTER (services/p2p/transport.py)
BUS_DOMAIN = b"ccoin-bus"  # the bus's tcp:// servers (runtime/buscurve.py)
VERSION = b"1.0"


@dataclass(frozen=True, slots=True)
class ZapRequest:
    request_id: bytes
    domain: bytes
    address: str  # the peer's IP address as libzmq saw it
    mechanism: bytes  # b"NULL" | b"CURVE" | ...
    credentials: tuple[bytes, ...]  # CURVE: (the client's 32-byte public key,)

    @property
    def curve_key(self) -> bytes:
        if self.mechanism == b"CURVE" and len(self.credentials) == 1:
            return self.credentials[0]
        return b""


# The node's verdict on a request: None to admit, else why not (logged by the node).
Admit = Callable[[ZapRequest], str | None]


def parse_request(frames: list[bytes]) -> ZapRequest | None:
    """A ZAP request from its frames (after REP strips the envelope); None if malformed."""
    if len(frames) < 6 or frames[0] != VERSION:
        return None
    _, request_id, domain, address, _identity, mechanism, *credentials = frames
    return ZapRequest(request_id, domain, address.decode("ascii", "replace"), mechanism,
                      tuple(credentials))


def reply(request_id: bytes, refusal: str | None, user_id: str = "") -> list[bytes]:
    """The reply frames: 200 with the user id the node reads back as "User-Id", or 400."""
    if refusal is None:
        return [VERSION, request_id, b"200", b"OK", user_id.encode("ascii"), b""]
    return [VERSION, request_id, b"400", refusal.encode("utf-8", "replace")[:255], b"", b""]


class Gatekeeper:
    """Answers the context's ZAP requests with `admit` until stopped."""

    def __init__(self, ctx: zmq.asyncio.Context, admit: Admit,
                 user_id: Callable[[ZapRequest], str], name: str = "p2p-zap") -> None:
        self.name = name
        self.admit = admit
        self.user_id = user_id
        self.sock = ctx.socket(zmq.REP)
        self.sock.linger = 0
        self.sock.bind(ENDPOINT)  # before any socket with our domain accepts a connection
        self.task: asyncio.Task[None] | None = None
        self.answered = 0
        self.refused = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._serve(), name=self.name)

    async def _serve(self) -> None:
        while True:
            frames = await self.sock.recv_multipart()
            req = parse_request(frames)
            if req is None:
                # a REP socket must answer before it can read again; libzmq wrote this, so
                # it does not happen, but a handler stuck on it would lock every handshake
                log.error("malformed ZAP request (%d frames)", len(frames))
                await self.sock.send_multipart(
                    [VERSION, frames[1] if len(frames) > 1 else b"", b"500", b"malformed",
                     b"", b""])
                continue
            try:
                refusal = self.admit(req)
            except Exception:  # a bug must not leave libzmq waiting: refuse, and say so
                log.exception("ZAP decision failed for %s", req.address)
                refusal = "internal error"
            self.answered += 1
            if refusal is not None:
                self.refused += 1
            await self.sock.send_multipart(
                reply(req.request_id, refusal, self.user_id(req) if refusal is None else ""))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.sock.close(0)

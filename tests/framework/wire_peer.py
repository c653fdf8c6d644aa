"""A test peer that speaks the p2p wire protocol in the test's own event loop.

Modelled on Bitcoin Core's functional-test `P2PInterface`: it keeps every message the node
sent it (`received`, `message_count` by class), waits for the next one of a kind
(`expect`), does the handshake right or wrong on request, and `sync_with_ping` proves the
node has handled everything sent before (a `PNG` is answered only after the messages ahead
of it, except the heavy ones, which the node queues for the link's worker).

It links either way: `connect` dials the node's ROUTER (an inbound link for the node), and
`bind` listens on a ROUTER for the node to dial (an outbound one). The message builders
(`hello_message`, `ack_message`, `blocks_reply`) are shared with the process-level
`tests.framework.scripted_peer.ScriptedPeer`.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypeVar

import zmq
import zmq.asyncio

from common import wire
from common.crypto import KeyType, PrivateKey, Signer
from common.types import Block
from services.p2p import curve

W = TypeVar("W", bound=wire.WireMessage)
AGENT = "scripted/1"


def hello_message(signer: Signer, *, network_id: int, genesis: bytes, nonce: bytes,
                  height: int = 0, head: bytes = bytes(32), total_weight: int = 0,
                  listen: str = "", curve_key: bytes = b"",
                  version: int = wire.PROTOCOL_VERSION) -> wire.Hello:
    return wire.Hello(version, network_id, genesis, head, height, total_weight,
                      signer.public_key, listen, curve_key, nonce, AGENT)


def ack_message(signer: Signer, their_nonce: bytes, our_hello_frame: bytes) -> wire.HelloAck:
    """The ACK that proves `signer`'s key to a peer that sent `their_nonce`."""
    return wire.HelloAck(signer.sign(wire.ack_payload(their_nonce, our_hello_frame)))


def blocks_reply(request: wire.GetBlocks, genesis_hash: bytes, blocks: Sequence[Block],
                 total_weight: int, limit: int | None = None) -> wire.Blocks:
    """An honest answer to `request` from a chain of `blocks` (genesis excluded, oldest
    first) of `total_weight`: the blocks after the first locator hash the chain has, at
    most `limit` of them (the request's own limit by default)."""
    index = {genesis_hash: 0}
    index.update({b.hash: i + 1 for i, b in enumerate(blocks)})
    start = next((index[h] for h in request.locator if h in index), 0)
    count = min(request.limit, limit if limit is not None else request.limit)
    head = blocks[-1].header if blocks else None
    return wire.Blocks(request.request, tuple(b.raw for b in blocks[start:start + count]),
                       head.height if head else 0, head.hash if head else genesis_hash,
                       total_weight)


def headers_reply(request: wire.GetHeaders, genesis_hash: bytes, blocks: Sequence[Block],
                  total_weight: int) -> wire.Headers:
    """An honest answer to `request` from the chain of `blocks`, as `blocks_reply`."""
    index = {genesis_hash: 0}
    index.update({b.hash: i + 1 for i, b in enumerate(blocks)})
    start = next((index[h] for h in request.locator if h in index), 0)
    head = blocks[-1].header if blocks else None
    return wire.Headers(request.request,
                        tuple(b.header.raw for b in blocks[start:start + request.limit]),
                        head.height if head else 0, head.hash if head else genesis_hash,
                        total_weight)


class WirePeer:
    """One scripted peer on one socket of the test's context."""

    def __init__(self, ctx: zmq.asyncio.Context, *, network_id: int, genesis: bytes,
                 key: PrivateKey | None = None, listen: str = "",
                 curve: tuple[bytes, bytes, bytes] | None = None) -> None:
        """`curve`: (the node's server key, our public key, our secret key), raw bytes."""
        self.ctx = ctx
        self.network_id = network_id
        self.genesis = genesis
        self.signer = Signer(key or PrivateKey.generate(KeyType.ED25519))
        self.listen = listen
        self.curve = curve
        self.nonce = os.urandom(wire.NONCE_LEN)
        self.sock: zmq.asyncio.Socket | None = None
        self.endpoint = ""
        self.dialer = True  # we dialed the node (DEALER), else it dialed us (ROUTER)
        self.node_rid: bytes | None = None  # the node's routing id on our ROUTER
        self.monitor: zmq.asyncio.Socket | None = None
        self.sent_hello = b""
        self.their_hello: wire.Hello | None = None
        self.tip = (0, genesis, 0)  # the tip we claim (height, head, total weight)
        self.received: list[wire.WireMessage] = []
        self.message_count: Counter[type[wire.WireMessage]] = Counter()
        self._ping = 0

    @property
    def node_id(self) -> bytes:
        return self.signer.public_key

    # --- linking ------------------------------------------------------------------------------

    def connect(self, endpoint: str, *, monitor: int = 0) -> WirePeer:
        """Dial the node's ROUTER at `endpoint`: an inbound link on its side. `monitor`:
        ZeroMQ socket events to report on `self.monitor`, watched from before the dial."""
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            server, public, secret = self.curve
            curve.make_client(sock, public, secret, server)
        if monitor:
            self.monitor = sock.get_monitor_socket(monitor)
        sock.connect(endpoint)
        self.sock, self.endpoint, self.dialer = sock, endpoint, True
        return self

    def bind(self, endpoint: str) -> WirePeer:
        """Listen at `endpoint` for the node to dial (an outbound link on its side)."""
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(endpoint)
        # the endpoint bound (a tcp port 0 resolved): where the node is to dial
        self.sock, self.dialer = sock, False
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        return self

    def reconnect(self) -> None:
        """A fresh DEALER: the node sees a new connection (a new routing id)."""
        self.close()
        self.nonce = os.urandom(wire.NONCE_LEN)
        self.their_hello = None
        self.connect(self.endpoint)

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close(0)
            self.monitor = None
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    # --- frames -------------------------------------------------------------------------------

    async def send_raw(self, *parts: bytes) -> None:
        """Send one ZeroMQ message of `parts` (one part is one frame, as the protocol wants)."""
        assert self.sock is not None
        if not self.dialer:
            assert self.node_rid is not None, "the node has not dialed us yet"
            await self.sock.send_multipart([self.node_rid, *parts])
        else:
            await self.sock.send_multipart(list(parts))

    async def send(self, msg: wire.WireMessage) -> bytes:
        frame = wire.encode(msg)
        await self.send_raw(frame)
        return frame

    async def recv(self, timeout: float = 2.0) -> wire.WireMessage | None:
        """The next message from the node, or None after `timeout` seconds."""
        assert self.sock is not None
        if not await self.sock.poll(int(timeout * 1000)):
            return None
        frames = await self.sock.recv_multipart()
        if not self.dialer:
            self.node_rid = frames[0]
            frames = frames[1:]
        assert len(frames) == 1, "the node sent a multi-part message"
        msg = wire.decode(frames[0])
        self.received.append(msg)
        self.message_count[type(msg)] += 1
        return msg

    async def expect(self, kind: type[W], timeout: float = 5.0) -> W:
        """The next message of `kind`; others are kept in `received` and skipped."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = await self.recv(left)
            if isinstance(msg, kind):
                return msg
        raise TimeoutError(f"no {kind.__name__} within {timeout:g} s; got "
                           f"{[type(x).__name__ for x in self.received[-5:]]}")

    async def sync_with_ping(self, timeout: float = 5.0) -> list[wire.WireMessage]:
        """Ping (with the tip we claimed) and wait for the pong: the node has handled every
        (inline) message we sent before it. Returns what it sent us meanwhile."""
        self._ping += 1
        before = len(self.received)
        await self.send(wire.Ping(self._ping, *self.tip))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = await self.recv(left)
            if isinstance(msg, wire.Pong) and msg.nonce == self._ping:
                return self.received[before:-1]
        raise TimeoutError(f"no pong within {timeout:g} s")

    # --- the handshake --------------------------------------------------------------------------

    def hello_message(self, **overrides: Any) -> wire.Hello:
        # by default a fresh node: its head is the genesis block
        fields: dict[str, Any] = {"network_id": self.network_id, "genesis": self.genesis,
                                  "head": self.genesis, "nonce": self.nonce,
                                  "listen": self.listen,
                                  "curve_key": self.curve[1] if self.curve else b""}
        return hello_message(self.signer, **{**fields, **overrides})

    async def hello(self, **overrides: Any) -> bytes:
        """Say hello (fields as given, else ours); the frame sent."""
        hello = self.hello_message(**overrides)
        self.tip = (hello.height, hello.head, hello.total_weight)
        self.sent_hello = await self.send(hello)
        return self.sent_hello

    async def ack(self, key: Signer | None = None) -> None:
        """Our ACK to the node's hello (signed by `key`, ours by default)."""
        assert self.their_hello is not None
        await self.send(ack_message(key or self.signer, self.their_hello.nonce,
                                    self.sent_hello))

    async def greet(self, **hello: Any) -> wire.HelloAck:
        """Hellos both ways and the node's ACK (checked), in the order our side of the link
        calls for; our ACK is still to send."""
        if self.dialer:
            await self.hello(**hello)
            self.their_hello = await self.expect(wire.Hello)
        else:
            self.their_hello = await self.expect(wire.Hello)
            await self.hello(**hello)
        ack = await self.expect(wire.HelloAck)
        assert wire.verify_ack(ack, self.their_hello.node_id, self.nonce,
                               wire.encode(self.their_hello)), "the node's ACK does not verify"
        return ack

    async def handshake(self, **hello: Any) -> wire.Hello:
        """A complete handshake; the node's hello."""
        await self.greet(**hello)
        await self.ack()
        await self.expect(wire.GetPeerAddrs)  # the first thing a node says on a ready link
        assert self.their_hello is not None
        return self.their_hello

    # --- serving a chain ------------------------------------------------------------------------

    async def serve(self, request: wire.GetBlocks, blocks: Sequence[Block],
                    total_weight: int, limit: int | None = None) -> wire.Blocks:
        """Answer a GBL from `blocks` (see `blocks_reply`)."""
        reply = blocks_reply(request, self.genesis, blocks, total_weight, limit)
        await self.send(reply)
        return reply

    async def serve_forever(self, blocks: Sequence[Block], total_weight: int,
                            limit: int | None = None) -> None:
        """Answer every GBL and GHD from `blocks`, and every PNG with their tip (run it as a
        task; what arrives is still recorded in `received`)."""
        head = blocks[-1].header if blocks else None
        while True:
            msg = await self.recv(3600)
            if isinstance(msg, wire.GetBlocks):
                await self.serve(msg, blocks, total_weight, limit)
            elif isinstance(msg, wire.GetHeaders):
                await self.send(headers_reply(msg, self.genesis, blocks, total_weight))
            elif isinstance(msg, wire.Ping):
                await self.send(wire.Pong(msg.nonce, head.height if head else 0,
                                          head.hash if head else self.genesis, total_weight))


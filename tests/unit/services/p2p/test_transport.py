"""The transport (transport.py): sockets come from an injected context and bind only when
told to; sends never wait; a listen address in use is retried; frames cross as one message
each."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from common import wire
from common.crypto import KeyType, PrivateKey, Signer
from common.status import PeerDirection
from services.p2p.node import P2PNode
from services.p2p.transport import Link, Transport
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async

pytestmark = pytest.mark.anyio


async def test_nothing_binds_before_start(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        settings = net.settings("a")
        P2PNode(settings, net.genesis, net.ctx, Signer(PrivateKey.generate(KeyType.ED25519)))
        Transport(net.ctx).start()  # a ROUTER, unbound
        for endpoint in (settings.listen, settings.control):  # still free: we can take them
            sock = net.ctx.socket(zmq.ROUTER)
            sock.bind(endpoint)
            sock.close(0)


async def test_frames_cross_as_one_message_each(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        transport = Transport(net.ctx)
        transport.start()
        assert transport.listen("inproc://t") == "inproc://t"
        arrived: list[tuple[bytes, list[bytes]]] = []
        reader = asyncio.create_task(transport.read_router(
            lambda rid, frames: arrived.append((rid, [f.bytes for f in frames]))))
        link = transport.dial("inproc://t")
        replies: list[list[bytes]] = []
        transport.follow(link, replies.append)
        assert link.send_frame(b"PNG one")
        await wait_until_async(lambda: arrived, timeout=5, what="the frame at the ROUTER")
        rid, frames = arrived[0]
        assert frames == [b"PNG one"]
        inbound = transport.inbound_link(rid, zmq.Frame(b""))
        assert inbound.direction is PeerDirection.INBOUND and inbound.routing_id == rid
        assert inbound.send_frame(b"PON two")
        await wait_until_async(lambda: replies, timeout=5, what="the answer at the DEALER")
        assert replies == [[b"PON two"]]
        link.close()
        reader.cancel()
        transport.close()


async def test_a_send_never_waits() -> None:
    ctx = zmq.asyncio.Context()
    try:
        nowhere = Link(PeerDirection.OUTBOUND, endpoint="inproc://nowhere",
                       sock=ctx.socket(zmq.DEALER))  # no connection: nothing can be queued
        assert not nowhere.send_frame(b"GPX\x90")
        assert (nowhere.dropped, nowhere.unreachable) == (1, False)
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        gone = Link(PeerDirection.INBOUND, router=router, routing_id=b"gone")
        assert not gone.send_frame(b"GPX\x90")
        assert (gone.dropped, gone.unreachable) == (1, True)
        nowhere.close()
        router.close(0)
    finally:
        ctx.destroy(linger=0)


async def test_a_listen_address_in_use_is_retried(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p")
    async with LocalNet(tmp_path) as net:
        blocker_ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        blocker = blocker_ctx.socket(zmq.ROUTER)
        port = blocker.bind_to_random_port("tcp://127.0.0.1")
        node = await net.node("a", listen=f"tcp://127.0.0.1:{port}")
        assert node.me.listen == "" and "cannot listen on" in caplog.text
        out = net.peer().bind("inproc://out")  # it still dials out
        node.dial("inproc://out")
        await out.handshake()
        assert out.their_hello is not None and out.their_hello.listen == ""
        blocker.close(0)
        blocker_ctx.term()  # returns once its I/O thread has let go of the port
        node.tick(time.monotonic())  # too soon to retry
        assert node.me.listen == ""
        node.tick(time.monotonic() + node.settings.timing.relisten)
        assert node.me.listen == f"tcp://127.0.0.1:{port}"
        assert f"listening on tcp://127.0.0.1:{port} now" in caplog.text
        assert node.me.listen in node.me.self_endpoints


async def test_every_interface_is_announced_by_a_routable_address(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://0.0.0.0:0")
        host, _, port = node.me.listen.removeprefix("tcp://").rpartition(":")
        assert host not in ("0.0.0.0", "") and int(port) > 0
        wire.check_endpoint(node.me.listen)  # what its hello says must be dialable

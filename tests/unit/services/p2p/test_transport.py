"""The transport (transport.py): sockets come from an injected context and bind only when
told to; sends never wait; a listen address in use ends the service (unless it is outbound
only); frames cross as one message each."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from common import wire
from common.crypto import KeyType, PrivateKey, Signer
from common.status import PeerDirection
from services.p2p.node import CannotListen, P2PNode
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


async def test_a_listen_address_in_use_ends_the_service(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        blocker_ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        blocker = blocker_ctx.socket(zmq.ROUTER)
        port = blocker.bind_to_random_port("tcp://127.0.0.1")
        try:
            node = P2PNode(net.settings("a", listen=f"tcp://127.0.0.1:{port}"), net.genesis,
                           net.ctx, Signer(PrivateKey.generate(KeyType.ED25519)))
            # what the service's main awaits ends with the error (run_service: exit 1)
            with pytest.raises(CannotListen, match=f"cannot listen on tcp://127.0.0.1:{port}: "
                                                   "Address already in use"):
                await asyncio.wait_for(node.run(), timeout=10)
        finally:
            blocker.close(0)
            blocker_ctx.term()


async def test_outbound_only_binds_nothing_and_dials_out(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p")
    async with LocalNet(tmp_path) as net:
        blocker_ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        blocker = blocker_ctx.socket(zmq.ROUTER)
        port = blocker.bind_to_random_port("tcp://127.0.0.1")  # its port taken: no matter
        try:
            node = await net.node("a", listen=f"tcp://127.0.0.1:{port}", outbound_only=True)
            assert node.me.listen == "" and not node.me.self_endpoints
            assert caplog.text.count("outbound only (p2p.outbound_only)") == 1
            out = net.peer().bind("inproc://out")
            node.dial("inproc://out")
            await out.handshake()
            assert out.their_hello is not None and out.their_hello.listen == ""
        finally:
            blocker.close(0)
            blocker_ctx.term()


async def test_every_interface_is_announced_by_a_routable_address(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://0.0.0.0:0")
        host, _, port = node.me.listen.removeprefix("tcp://").rpartition(":")
        assert host not in ("0.0.0.0", "") and int(port) > 0
        wire.check_endpoint(node.me.listen)  # what its hello says must be dialable

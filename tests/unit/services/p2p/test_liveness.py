"""Liveness (liveness.py): pings both ways carry tips, and the maintenance tick ends links
that went silent, stopped reading, or lost their route."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from common import wire
from common.wire import ByeCode
from services.p2p.chainview import Tip
from services.p2p.liveness import SLOW_DROPS
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async

pytestmark = pytest.mark.anyio


async def test_pings_carry_tips_both_ways_and_measure_latency(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()
        link = node.peers.by_id[peer.node_id]
        assert link.liveness.latency_ms == -1  # before the first ping
        node.tick(time.monotonic())  # pings are due at once on a new link
        ping = await peer.expect(wire.Ping)
        assert (ping.height, ping.head, ping.total_weight) == (0, net.genesis_hash, 0)
        await peer.send(wire.Pong(ping.nonce, 0, net.genesis_hash, 0))
        await wait_until_async(lambda: link.liveness.latency_ms >= 0,
                               timeout=5, what="a measured round trip")
        assert link.liveness.ping_nonce is None and link.standing.score == 0
        node.tick(time.monotonic())  # not due again yet
        await peer.sync_with_ping()
        assert peer.message_count[wire.Ping] == 1
        # their ping tells us their tip, and is answered with ours
        await peer.send(wire.Ping(99, 4, b"\x04" * 32, 8))
        pong = await peer.expect(wire.Pong)
        assert (pong.nonce, pong.head) == (99, net.genesis_hash)
        assert link.tip == Tip(4, b"\x04" * 32, 8)
        await peer.expect(wire.GetBlocks)  # it is ahead of us now: the node syncs


async def test_a_lost_ping_is_sent_again(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()
        timing = node.settings.timing
        now = time.monotonic()
        node.tick(now)
        first = await peer.expect(wire.Ping)
        node.tick(now + timing.peer_timeout / 2 + 1)  # no answer in time: given up...
        node.tick(now + timing.peer_timeout / 2 + 2)  # ...and asked again
        second = await peer.expect(wire.Ping)
        assert second.nonce != first.nonce


async def test_a_silent_peer_is_closed(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()
        node.tick(time.monotonic() + node.settings.timing.peer_timeout + 1)
        bye = await peer.expect(wire.Bye)
        assert (bye.code, bye.reason) == (ByeCode.TIMEOUT, "silent for 30 s")
        assert not node.peers.all()


async def test_a_peer_that_does_not_read_is_closed(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p")
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        sluggard = net.peer()
        sluggard.bind("inproc://sluggard")
        node.dial("inproc://sluggard")
        await sluggard.handshake()
        link = node.peers.by_id[sluggard.node_id]
        frame = wire.encode(wire.GetPeerAddrs())
        while link.link.dropped <= SLOW_DROPS:  # it reads nothing: our queue to it fills
            link.send_frame(frame)
        node.tick(time.monotonic())
        assert sluggard.node_id not in node.peers.by_id
        assert "messages to it dropped: it cannot keep up" in caplog.text


async def test_a_link_without_a_route_is_closed(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()
        link = node.peers.by_id[peer.node_id]
        peer.close()  # its connection is gone; the ROUTER finds out at the next send
        await wait_until_async(lambda: not link.send(wire.GetPeerAddrs()),
                               timeout=5, what="no route")
        assert link.link.unreachable
        node.tick(time.monotonic())
        assert not node.peers.all()

"""The control socket (control.py): GetPeers, AddPeer and SyncNow over the real bus, as the
API gateway and the CLI send them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from common import messages as m
from common import wire
from common.errors import Malformed, Refused
from common.status import PeerDirection
from tests.framework.localnet import LocalNet

pytestmark = pytest.mark.anyio


async def test_get_peers_describes_the_ready_links(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        control = net.control("a")
        empty = await control.request(m.GetPeers(), m.PeersReply)
        assert empty == m.PeersReply((), False, 0, node.node_id, 0)
        first = net.peer(listen="tcp://10.0.0.1:7000").connect("inproc://p2p-a")
        await first.handshake(height=3, head=b"\x03" * 32, total_weight=6)
        second = net.peer().bind("inproc://second")
        node.dial("inproc://second")
        await second.handshake()
        opening = net.peer().connect("inproc://p2p-a")
        await opening.hello()  # not ready: not listed
        await opening.expect(wire.HelloAck)
        reply = await control.request(m.GetPeers(), m.PeersReply)
        assert reply.node_id == node.node_id and reply.banned == 0
        assert reply.syncing and reply.sync_target == 3  # the first one is ahead of us
        one, two = reply.peers  # oldest first
        assert (one.node_id, one.endpoint, one.direction) == (
            first.node_id, "tcp://10.0.0.1:7000", PeerDirection.INBOUND)
        assert (one.height, one.head, one.total_weight, one.score) == (3, b"\x03" * 32, 6, 0)
        assert one.latency_ms == -1 and one.connected_ms > 1_600_000_000_000
        assert (two.node_id, two.endpoint, two.direction) == (
            second.node_id, "inproc://second", PeerDirection.OUTBOUND)
        control.close()


async def test_add_peer_checks_the_address_and_dials_it(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0")
        control = net.control("a")
        for bad in ("not an endpoint", "tcp://127.0.0.1:99999", "tcp://h:1#abcd"):
            with pytest.raises(Malformed):
                await control.request(m.AddPeer(bad), m.Ok)
        with pytest.raises(Refused, match="is this node"):
            await control.request(m.AddPeer(node.me.listen), m.Ok)
        node.discipline.bans.ban([("ip", "192.0.2.7")])
        with pytest.raises(Refused, match="is banned"):
            await control.request(m.AddPeer("tcp://192.0.2.7:7000"), m.Ok)
        listener = net.peer().bind("tcp://127.0.0.1:0")
        address = listener.endpoint
        assert isinstance(await control.request(m.AddPeer(address), m.Ok), m.Ok)
        await listener.handshake()  # dialed at once
        entry = node.book.get(address)
        assert entry is not None and entry.source == "manual" and entry.persistent
        await control.request(m.AddPeer(address), m.Ok)  # linked already: no second dial
        assert list(node.peers.outbound) == [address]
        control.close()


async def test_sync_now_starts_a_round_even_with_nobody_ahead(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p")
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        control = net.control("a")
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()
        await peer.sync_with_ping()
        assert wire.GetBlocks not in peer.message_count and not node.syncer.syncing
        assert isinstance(await control.request(m.SyncNow(), m.Ok), m.Ok)
        request = await peer.expect(wire.GetBlocks)
        assert request.locator == (net.genesis_hash,)
        assert "sync requested by the operator" in caplog.text
        control.close()

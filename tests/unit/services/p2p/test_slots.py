"""Peer slots (slots.py, docs/protocol.md §13.10), in-process with the real state service:
inbound peers, however many, never take the outbound slots; when the inbound slots are
full a newcomer gets in by evicting the worst inbound peer, and a peer that does useful
work keeps its slot; one IP address or subnet holds only its share."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from common import messages as m
from common import wire
from common.status import PeerOutcome
from common.wire import ByeCode
from tests.framework import rules
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async
from tests.framework.wire_peer import WirePeer

pytestmark = pytest.mark.anyio


async def join(peer: WirePeer) -> wire.Bye | None:
    """A whole handshake from `peer`; None when the node took it, else its `BYE`."""
    await peer.greet()
    await peer.ack()
    while True:
        msg = await peer.recv(5)
        if msg is None:
            raise TimeoutError("the node neither took nor refused the peer")
        if isinstance(msg, wire.GetPeerAddrs):  # the first thing said on a ready link
            return None
        if isinstance(msg, wire.Bye):
            return msg


async def test_a_swarm_of_inbound_peers_cannot_take_the_outbound_slots_nor_keep_out_an_honest_one(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", max_peers=10)
        settings = node.settings
        assert (settings.max_outbound, settings.max_inbound) == (5, 5)
        swarm = [net.peer().connect("inproc://p2p-a") for _ in range(12)]  # 12 node keys
        for rogue in swarm:
            assert await join(rogue) is None  # each gets in, by evicting another
            assert len(node.peers.ready_inbound()) <= settings.max_inbound
        assert len(node.peers.ready_inbound()) == 5 and node.slots.evicted == 7
        evicted = [r for r in swarm if r.node_id not in node.peers.by_id]
        for rogue in evicted:
            bye = await rogue.expect(wire.Bye)
            assert (bye.code, bye.reason) == (ByeCode.TOO_MANY_PEERS, "evicted for a newcomer")
        # every outbound slot is still the node's to fill
        far = [net.peer().bind(f"inproc://far{i}") for i in range(6)]
        for i, listener in enumerate(far):
            node.book.add(f"inproc://far{i}", listener.node_id, source="pex")
        node.tick(time.monotonic())
        assert len(node.peers.outbound) == settings.max_outbound
        for listener in far[:5]:
            await listener.handshake()
        assert len(node.peers.ready()) == 10
        # an honest newcomer still gets in, and doing useful work keeps it in
        honest = net.peer().connect("inproc://p2p-a")
        assert await join(honest) is None
        tx = rules.transfer(1, rules.address(2), 5, nonce=0)
        await honest.send(wire.Txs((tx.raw,)))
        await wait_until_async(lambda: node.peers.by_id[honest.node_id].last_new_tx > 0,
                               timeout=5, what="state took the honest peer's transaction")
        for rogue in [net.peer().connect("inproc://p2p-a") for _ in range(6)]:
            await join(rogue)
        assert honest.node_id in node.peers.by_id
        await honest.sync_with_ping()
        assert len(node.peers.ready_inbound()) == 5
        assert all(p.outbound for p in node.peers.outbound.values())
        assert len(node.peers.outbound) == settings.max_outbound  # untouched by the churn


def from_ip(net: LocalNet, ip: str, node_listen: str) -> WirePeer:
    """A peer dialing the node from source address `ip` (127.0.0.0/8 is all loopback)."""
    return net.peer().connect(f"tcp://{ip}:0;{node_listen.removeprefix('tcp://')}")


async def test_one_address_or_subnet_holds_only_its_share_of_inbound_slots(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0", limit_loopback=True,
                              max_inbound_per_ip=2, max_inbound_per_subnet=3)
        listen = node.me.listen
        for _ in range(2):
            assert await join(from_ip(net, "127.0.0.2", listen)) is None
        third = await join(from_ip(net, "127.0.0.2", listen))
        assert third is not None and (third.code, third.reason) == (
            ByeCode.TOO_MANY_PEERS, "2 inbound peers from 127.0.0.2 already")
        assert await join(from_ip(net, "127.0.0.3", listen)) is None
        crowded = await join(from_ip(net, "127.0.0.4", listen))
        assert crowded is not None and crowded.reason == (
            "3 inbound peers from 127.0.0.0/24 already")
        assert await join(from_ip(net, "127.0.1.4", listen)) is None  # another /24
        assert len(node.peers.ready_inbound()) == 4
        # the node's own dialing is not limited by address
        control = net.control("a")
        listener = net.peer().bind("tcp://127.0.0.2:0")
        joined, _ = await asyncio.gather(
            control.request(m.AddPeer(listener.endpoint, 5000), m.AddPeerReply),
            listener.handshake())
        assert joined.outcome is PeerOutcome.CONNECTED
        control.close()


async def test_loopback_peers_are_exempt_from_the_address_limits_by_default(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0", max_inbound_per_ip=1)
        for _ in range(3):  # every node of this machine dials from 127.0.0.1
            assert await join(from_ip(net, "127.0.0.1", node.me.listen)) is None
        assert len(node.peers.ready_inbound()) == 3


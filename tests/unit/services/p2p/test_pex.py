"""Peer exchange and dialing (pex.py, docs/protocol.md §13.7): addresses in from PEX,
discovery, hellos and bootnodes; addresses out to askers; and which of them the tick dials."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from common import wire
from common.crypto import KeyType, PrivateKey
from services.p2p.settings import Timing
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async

pytestmark = pytest.mark.anyio

CURVE_KEY = b"\x07" * 32


async def test_a_peer_asking_gets_the_other_ready_peers_it_can_dial(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        await net.node("a")
        listed = net.peer(listen="tcp://10.0.0.1:7000").connect("inproc://p2p-a")
        await listed.handshake()
        unlisted = net.peer().connect("inproc://p2p-a")  # announces no address
        await unlisted.handshake()
        asker = net.peer(listen="tcp://10.0.0.2:7000").connect("inproc://p2p-a")
        await asker.handshake()
        await asker.send(wire.GetPeerAddrs())
        reply = await asker.expect(wire.PeerAddrs)
        assert [(a.node_id, a.endpoint) for a in reply.peers] == [
            (listed.node_id, "tcp://10.0.0.1:7000")]


async def test_addresses_learned_are_dialed_within_the_limits(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", max_peers=4)  # 2 outbound slots, 2 inbound
        teller = net.peer().connect("inproc://p2p-a")
        await teller.handshake()
        banned_id = PrivateKey.generate(KeyType.ED25519).public_key
        node.discipline.bans.ban([("node", banned_id), ("endpoint", "inproc://banned-ep")])
        far = [net.peer().bind(f"inproc://far{i}") for i in range(3)]
        addrs = [wire.PeerAddr(p.node_id, f"tcp://10.9.0.{i}:7000", b"")
                 for i, p in enumerate(far)]
        addrs += [wire.PeerAddr(node.node_id, "tcp://10.9.9.9:7000", b""),  # ourselves
                  wire.PeerAddr(banned_id, "tcp://10.9.9.8:7000", b""),
                  wire.PeerAddr(teller.node_id, "tcp://10.9.9.7:7000", b"")]  # linked already
        await teller.send(wire.PeerAddrs(tuple(addrs)))
        await teller.sync_with_ping()
        book = node.book
        assert book.get("tcp://10.9.9.9:7000") is None  # our own id is never learned
        assert {book.get(a.endpoint).source for a in addrs[:3]} == {"pex"}  # type: ignore[union-attr]
        # the tcp addresses above are unreachable here: dial in-process ones instead
        for i, p in enumerate(far):
            book.add(f"inproc://far{i}", p.node_id, source="pex")
        book.add("inproc://banned-ep", source="pex")
        for endpoint in [a.endpoint for a in addrs]:
            book.hold(endpoint, 3600)
        node.tick(time.monotonic())
        # up to max_outbound links (half of max_peers); nothing banned, held or linked already
        assert sorted(node.peers.outbound) == ["inproc://far0", "inproc://far1"]
        await far[0].handshake()
        await far[1].handshake()
        assert len(node.peers.ready()) == 3  # with the teller, which takes an inbound slot
        node.tick(time.monotonic())
        assert sorted(node.peers.outbound) == ["inproc://far0", "inproc://far1"]
        node.peers.close(node.peers.outbound["inproc://far0"])  # a slot frees up
        node.tick(time.monotonic())
        assert sorted(node.peers.outbound) == ["inproc://far1", "inproc://far2"]


async def test_short_of_links_the_node_asks_for_addresses_now_and_then(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", timing=Timing(tick=3600.0, pex_interval=5.0))
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()  # its first GPX comes with the link
        node.tick(time.monotonic())
        await peer.sync_with_ping()
        assert peer.message_count[wire.GetPeerAddrs] == 1  # not again so soon
        node.tick(time.monotonic() + 6.0)
        await peer.expect(wire.GetPeerAddrs)
        assert peer.message_count[wire.GetPeerAddrs] == 2


async def test_bootnodes_discovery_and_hellos_fill_the_book(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p")
    async with LocalNet(tmp_path) as net:
        bootnode = f"tcp://10.1.0.1:7000#{CURVE_KEY.hex()}"
        node = await net.node("a", bootnodes=(bootnode, "not an address"))
        entry = node.book.get("tcp://10.1.0.1:7000")
        assert entry is not None and entry.persistent and entry.curve_key == CURVE_KEY
        assert "ignoring bootnode 'not an address'" in caplog.text
        registration = node.pex.registration()
        assert registration == {"network_id": net.genesis.network_id,
                                "genesis": net.genesis_hash.hex(),
                                "node_id": node.node_id.hex(), "endpoint": "",
                                "curve_key": ""}
        someone = PrivateKey.generate(KeyType.ED25519).public_key
        node.pex.discovered([wire.PeerAddr(someone, "tcp://10.1.0.2:7000", b"")])
        assert node.book.get("tcp://10.1.0.2:7000").source == "discovery"  # type: ignore[union-attr]
        inbound = net.peer(listen="tcp://10.1.0.3:7000").connect("inproc://p2p-a")
        await inbound.handshake()
        await wait_until_async(lambda: node.book.get("tcp://10.1.0.3:7000") is not None,
                               timeout=5, what="the address in the book")

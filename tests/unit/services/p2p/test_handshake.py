"""The handshake (handshake.py, docs/protocol.md §13.3), in-process: a real node over
inproc:// against test peers that greet it right or wrong."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from common import wire
from common.crypto import KeyType, PrivateKey, Signer
from common.status import PeerDirection
from common.wire import ByeCode
from services.p2p import scoring
from services.p2p.node import P2PNode
from services.p2p.peer import LinkState
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async
from tests.framework.wire_peer import WirePeer

pytestmark = pytest.mark.anyio


def _linked(node: P2PNode, peer: WirePeer) -> bool:
    return peer.node_id in node.peers.by_id


async def test_a_hello_both_ways_and_both_acks_make_a_ready_link(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        inbound = net.peer(listen="tcp://10.0.0.9:7000").connect("inproc://p2p-a")
        theirs = await inbound.handshake()  # checks the node's ACK against its hello
        status = await net.state("a").status()
        assert (theirs.version, theirs.network_id, theirs.genesis) == (
            wire.PROTOCOL_VERSION, status.network_id, status.genesis)
        assert (theirs.height, theirs.head, theirs.total_weight) == (0, status.head, 0)
        assert theirs.node_id == node.node_id and theirs.agent.startswith("ccoin/")
        link = node.peers.by_id[inbound.node_id]
        assert link.state is LinkState.READY and link.direction is PeerDirection.INBOUND
        assert link.endpoint == "tcp://10.0.0.9:7000"  # announced, and learned for dialing
        assert node.book.get("tcp://10.0.0.9:7000").source == "inbound"  # type: ignore[union-attr]

        outbound = net.peer().bind("inproc://b")
        node.dial("inproc://b")
        await outbound.handshake()
        link = node.peers.by_id[outbound.node_id]
        assert link.direction is PeerDirection.OUTBOUND and link.endpoint == "inproc://b"
        assert link.handshake.connected_ms > 1_600_000_000_000
        assert [p.standing.score for p in node.peers.ready()] == [0, 0]


async def test_another_network_or_genesis_is_refused(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        for hello in ({"network_id": net.genesis.network_id + 1},
                      {"genesis": bytes(32), "head": bytes(32)}):
            peer = net.peer().connect("inproc://p2p-a")
            await peer.hello(**hello)
            bye = await peer.expect(wire.Bye)
            assert bye.code == ByeCode.WRONG_NETWORK
            assert f"network {net.genesis.network_id}" in bye.reason
            assert wire.Hello not in peer.message_count  # refused before ours went out
        assert "refusing peer" in caplog.text and "genesis" in caplog.text
        # the refused connections' later frames are not read at all
        assert len(node.peers.banned_rids) == 2 and not node.peers.inbound

        log = net.peer(genesis=bytes(32)).bind("inproc://other")  # a node of another chain
        node.book.add("inproc://other", source="bootnode")
        node.tick(time.monotonic())  # dials what the book has
        await log.expect(wire.Hello)
        await log.hello(head=bytes(32))
        assert (await log.expect(wire.Bye)).code == ByeCode.WRONG_NETWORK
        assert not node.peers.outbound
        node.tick(time.monotonic())  # not dialed again: held for the ban time
        assert not node.peers.outbound
        entry = node.book.get("inproc://other")
        assert entry is not None and entry.next_try > time.monotonic() + 500


async def test_a_peer_that_refuses_us_is_not_dialed_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        refuser = net.peer().bind("inproc://refuser")
        node.book.add("inproc://refuser", source="bootnode")
        node.tick(time.monotonic())
        await refuser.expect(wire.Hello)
        await refuser.send(wire.Bye(ByeCode.WRONG_NETWORK.value, "we run another chain"))
        await wait_until_async(lambda: not node.peers.outbound, timeout=5, what="the link closed")
        assert "refused us: wrong_network" in caplog.text
        node.tick(time.monotonic())
        assert not node.peers.outbound  # held, not redialed at once
        assert refuser.message_count[wire.Hello] == 1
        # a plain goodbye is no refusal: that address is only held as long as any dial is
        other = net.peer().bind("inproc://leaver")
        node.book.add("inproc://leaver", source="bootnode")
        node.tick(time.monotonic())
        await other.expect(wire.Hello)
        await other.send(wire.Bye(ByeCode.SHUTDOWN.value, "stopping"))
        await wait_until_async(lambda: "inproc://leaver" not in node.peers.outbound,
                               timeout=5, what="closed")
        entry = node.book.get("inproc://leaver")
        assert entry is not None
        assert entry.next_try < time.monotonic() + node.settings.timing.handshake + 1


async def test_another_protocol_version_is_refused(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        await net.node("a")
        peer = net.peer().connect("inproc://p2p-a")
        await peer.hello(version=wire.PROTOCOL_VERSION + 1)
        bye = await peer.expect(wire.Bye)
        assert bye.code == ByeCode.VERSION and "we speak" in bye.reason


async def test_a_node_refuses_itself(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        key = PrivateKey.generate(KeyType.ED25519)
        node = await net.node("a", key=key)
        assert "inproc://p2p-a" in node.me.self_endpoints  # its own address: never dialed
        impostor = net.peer(key=key).connect("inproc://p2p-a")  # a hello with our node id
        await impostor.hello()
        assert (await impostor.expect(wire.Bye)).code == ByeCode.SELF

        # dialing its own listening address: the listening side refuses, the dialing
        # side holds the address
        node.book.add("inproc://p2p-a", source="pex")
        node.dial("inproc://p2p-a")
        await wait_until_async(lambda: not node.peers.outbound and not node.peers.inbound,
                               timeout=5, what="both ends closed")
        assert not node.peers.ready()
        entry = node.book.get("inproc://p2p-a")
        assert entry is not None and entry.next_try > time.monotonic() + 500


async def test_a_second_link_to_a_connected_node_is_closed(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        key = PrivateKey.generate(KeyType.ED25519)
        first = net.peer(key=key).connect("inproc://p2p-a")
        await first.handshake()
        second = net.peer(key=key).connect("inproc://p2p-a")
        await second.greet()
        await second.ack()
        bye = await second.expect(wire.Bye)
        assert bye.code == ByeCode.DUPLICATE and bye.reason == "already connected"
        await first.sync_with_ping()  # the first link is untouched
        assert node.peers.by_id[first.node_id].link.direction is PeerDirection.INBOUND
        assert len(node.peers.ready()) == 1


@pytest.mark.parametrize("node_dials_smaller", [True, False])
async def test_crossed_dials_keep_the_link_dialed_by_the_smaller_node_id(
        tmp_path: Path, node_dials_smaller: bool) -> None:
    keys = sorted((PrivateKey.generate(KeyType.ED25519) for _ in range(2)),
                  key=lambda k: Signer(k).public_key)
    node_key, peer_key = keys if node_dials_smaller else keys[::-1]
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", key=node_key)
        dialer = net.peer(key=peer_key).connect("inproc://p2p-a")  # it dials us...
        await dialer.handshake()
        dialed = net.peer(key=peer_key).bind("inproc://it")  # ...as we dial it
        node.dial("inproc://it")
        await dialed.greet()
        await dialed.ack()
        loser, winner = (dialer, dialed) if node_dials_smaller else (dialed, dialer)
        assert (await loser.expect(wire.Bye)).code == ByeCode.DUPLICATE
        await winner.sync_with_ping()
        kept = node.peers.by_id[peer_key.public_key]
        assert kept.outbound is node_dials_smaller
        assert len(node.peers.ready()) == 1


async def test_past_its_inbound_slots_a_peer_gets_addresses_and_is_refused(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        await net.node("a", max_peers=2)  # one outbound slot, one inbound
        first = net.peer(listen="tcp://10.0.0.1:7000").connect("inproc://p2p-a")
        await first.handshake()
        late = net.peer().connect("inproc://p2p-a")
        await late.greet()
        await late.ack()
        addrs = await late.expect(wire.PeerAddrs)
        assert [(a.node_id, a.endpoint) for a in addrs.peers] == [
            (first.node_id, "tcp://10.0.0.1:7000")]
        bye = await late.expect(wire.Bye)
        # one inbound peer is always protected from eviction: the newcomer is no better
        assert (bye.code, bye.reason) == (ByeCode.TOO_MANY_PEERS,
                                          "at 1 inbound peers, none of them evictable")


async def test_messages_before_the_handshake_cost_points(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        early = net.peer().connect("inproc://p2p-a")
        await early.send(wire.Ping(1, 0, bytes(32), 0))
        bye = await early.expect(wire.Bye)
        assert (bye.code, bye.reason) == (ByeCode.HANDSHAKE, "hello first")
        (link,) = node.peers.inbound.values()
        assert link.standing.score == -scoring.BEFORE_HANDSHAKE
        await early.send(wire.GetPeerAddrs())
        await wait_until_async(lambda: link.standing.score == -2 * scoring.BEFORE_HANDSHAKE,
                               timeout=5, what="the early PEX request charged")
        await early.send(wire.HelloAck(bytes(64)))  # an ACK before any hello
        await wait_until_async(lambda: link.standing.score == -2 * scoring.BEFORE_HANDSHAKE
                               - scoring.MALFORMED, timeout=5, what="the early ACK charged")
        assert early.message_count[wire.Bye] == 1  # told once
        await early.hello()  # it may still say hello, and its link goes on
        await early.expect(wire.HelloAck)
        await early.hello()
        await wait_until_async(lambda: link.standing.score == -2 * scoring.BEFORE_HANDSHAKE
                               - 2 * scoring.MALFORMED, timeout=5, what="a second hello charged")
        for _ in range(2):
            await early.send(wire.GetPeerAddrs())
        bye = await early.expect(wire.Bye)
        assert bye.code == ByeCode.BANNED
        # its node id never proved: only its connection is banned
        assert node.discipline.bans.count("node") == 0 and not node.peers.inbound


async def test_a_bad_ack_is_refused_and_bans_no_node_id(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        victim = PrivateKey.generate(KeyType.ED25519)
        impostor = net.peer(key=victim).connect("inproc://p2p-a")
        await impostor.greet()
        await impostor.ack(Signer(PrivateKey.generate(KeyType.ED25519)))  # not the key's
        bye = await impostor.expect(wire.Bye)
        assert bye.code == ByeCode.BANNED and "hello signature does not verify" in bye.reason
        assert node.discipline.bans.count("node") == 0
        owner = net.peer(key=victim).connect("inproc://p2p-a")  # the real owner gets in
        await owner.handshake()
        assert _linked(node, owner)


async def test_a_handshake_not_done_in_time_is_closed(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        slow = net.peer().connect("inproc://p2p-a")
        await slow.greet()  # and never acks
        silent = net.peer().bind("inproc://silent")  # dialed, never answers
        node.dial("inproc://silent")
        await silent.expect(wire.Hello)
        node.tick(time.monotonic())  # in time: nothing happens
        assert len(node.peers.all()) == 2
        node.tick(time.monotonic() + node.settings.timing.handshake + 1)
        for peer in (slow, silent):
            bye = await peer.expect(wire.Bye)
            assert (bye.code, bye.reason) == (ByeCode.HANDSHAKE, "handshake timed out")
        assert not node.peers.all()


async def test_a_link_that_says_bye_is_forgotten(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()
        await peer.send(wire.Bye(ByeCode.SHUTDOWN.value, "stopping"))
        await wait_until_async(lambda: not _linked(node, peer),
                               timeout=5, what="the link forgotten")
        assert not node.peers.all() and node.discipline.bans.count("node") == 0


@pytest.fixture(autouse=True)
def _p2p_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p")

"""The control socket (control.py): GetPeers, AddPeer and SyncNow over the real bus, as the
API gateway and the CLI send them. AddPeer answers with what happened: each outcome and
each refusal has its test here."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest

from common import messages as m
from common import wire
from common.crypto import KeyType, PrivateKey, Signer
from common.errors import (
    Malformed,
    PeerBanned,
    PeerFull,
    PeerIsSelf,
    PeerUnreachable,
    PeerWrongNetwork,
    Refused,
)
from common.status import PeerDirection, PeerOutcome
from common.wire import ByeCode
from runtime.bus import BusClient
from services.p2p.control import own_endpoint
from services.p2p.handshake import Identity
from services.p2p.settings import MAX_MANUAL
from tests.framework.localnet import LocalNet
from tests.framework.wire_peer import WirePeer

pytestmark = pytest.mark.anyio


def free_tcp() -> str:
    """A loopback endpoint nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def add_peer(control: BusClient, endpoint: str,
             wait_ms: int = 5000) -> asyncio.Task[m.AddPeerReply]:
    """AddPeer sent now; its reply comes once the node knows the outcome."""
    return asyncio.create_task(control.request(m.AddPeer(endpoint, wait_ms), m.AddPeerReply,
                                               timeout=wait_ms / 1000 + 5))


async def test_get_peers_describes_the_ready_links(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        control = net.control("a")
        empty = await control.request(m.GetPeers(), m.PeersReply)
        # on inproc:// it listens nowhere another node could dial
        assert empty == m.PeersReply((), False, 0, node.node_id, 0, "")
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


async def test_get_peers_gives_the_endpoint_other_nodes_dial(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0")
        control = net.control("a")
        reply = await control.request(m.GetPeers(), m.PeersReply)
        assert reply.endpoint == node.me.listen and reply.endpoint.startswith("tcp://127.0.0.1:")
        assert wire.parse_peer_uri(reply.endpoint) == (node.me.listen, b"")
        control.close()
    signer = Signer(PrivateKey.generate(KeyType.ED25519))
    curve = Identity(signer, b"\x07" * 32, listen="tcp://10.0.0.9:30333")
    # with CurveZMQ the key comes along, in the form AddPeer takes
    assert own_endpoint(curve) == "tcp://10.0.0.9:30333#" + "07" * 32
    assert wire.parse_peer_uri(own_endpoint(curve)) == ("tcp://10.0.0.9:30333", b"\x07" * 32)
    assert own_endpoint(Identity(signer, b"\x07" * 32)) == ""  # listening nowhere


async def test_add_peer_refuses_bad_addresses_ourselves_and_banned_ones(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0")
        control = net.control("a")
        for bad in ("not an endpoint", "tcp://127.0.0.1:99999", "tcp://h:1#abcd"):
            with pytest.raises(Malformed):
                await control.request(m.AddPeer(bad, 1000), m.AddPeerReply)
        with pytest.raises(PeerIsSelf, match="is this node"):
            await control.request(m.AddPeer(node.me.listen, 1000), m.AddPeerReply)
        node.discipline.bans.ban([("ip", "192.0.2.7")])
        with pytest.raises(PeerBanned, match="is banned on this node") as banned:
            await control.request(m.AddPeer("tcp://192.0.2.7:7000", 1000), m.AddPeerReply)
        assert isinstance(banned.value, Refused) and banned.value.http_status == 409
        assert node.peers.outbound == {}  # nothing was dialed
        control.close()


async def test_add_peer_answers_connected_then_already_connected(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0")
        control = net.control("a")
        listener = net.peer().bind("tcp://127.0.0.1:0")
        address = listener.endpoint
        pending = add_peer(control, address)
        await listener.handshake()  # dialed at once; the answer waits for the handshake
        reply = await pending
        assert reply == m.AddPeerReply(PeerOutcome.CONNECTED, listener.node_id, address,
                                       PeerDirection.OUTBOUND)
        entry = node.book.get(address)
        assert entry is not None and entry.source == "manual" and entry.persistent
        again = await add_peer(control, address)  # linked already: no second dial
        assert again.outcome is PeerOutcome.ALREADY_CONNECTED
        assert again.node_id == listener.node_id
        assert list(node.peers.outbound) == [address] and node.peers.outbound[address].manual
        # a node linked the other way round, by the listen address its hello announced
        inbound = net.peer(listen="tcp://10.0.0.1:7000").connect(node.me.listen)
        await inbound.handshake()
        other = await add_peer(control, "tcp://10.0.0.1:7000")
        assert (other.outcome, other.node_id, other.direction) == (
            PeerOutcome.ALREADY_CONNECTED, inbound.node_id, PeerDirection.INBOUND)
        control.close()


async def test_add_peer_with_nothing_there_is_unreachable_and_others_are_answered_meanwhile(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0")
        control, other = net.control("a"), net.control("a")
        address = free_tcp()
        pending = add_peer(control, address, wait_ms=1500)
        started = time.monotonic()
        # the wait runs apart: GetPeers is answered at once meanwhile
        peers = await other.request(m.GetPeers(), m.PeersReply, timeout=0.5)
        assert peers.peers == () and not pending.done()
        with pytest.raises(PeerUnreachable, match=f"no handshake with {address} within 1.5 s"):
            await pending
        assert time.monotonic() - started >= 1.4
        entry = node.book.get(address)
        assert entry is not None and entry.persistent  # kept, and retried
        control.close()
        other.close()


async def _refused_by(net: LocalNet, control: BusClient, code: ByeCode,
                      reason: str) -> BaseException:
    """AddPeer of a listener that answers our hello with `BYE code`; the error raised."""
    listener = net.peer().bind("tcp://127.0.0.1:0")
    pending = add_peer(control, listener.endpoint)
    await listener.expect(wire.Hello)
    await listener.send(wire.Bye(code.value, reason))
    with pytest.raises(Refused) as refused:
        await pending
    assert f"{listener.endpoint} refused the link: {code.value}: {reason}" in str(refused.value)
    return refused.value


async def test_add_peer_reports_each_refusal_by_its_kind(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0")
        control = net.control("a")
        # theirs: the peer says why in its BYE
        assert isinstance(await _refused_by(net, control, ByeCode.TOO_MANY_PEERS,
                                            "at 17 inbound peers"), PeerFull)
        assert isinstance(await _refused_by(net, control, ByeCode.BANNED, "node id is banned"),
                          PeerBanned)
        assert isinstance(await _refused_by(net, control, ByeCode.WRONG_NETWORK,
                                            "we run network 9"), PeerWrongNetwork)
        # ours: its hello names another network
        stranger = WirePeer(net.ctx, network_id=net.genesis.network_id + 1,
                            genesis=b"\x09" * 32).bind("tcp://127.0.0.1:0")
        net.peers.append(stranger)
        pending = add_peer(control, stranger.endpoint)
        await stranger.expect(wire.Hello)
        await stranger.hello()
        with pytest.raises(PeerWrongNetwork, match=f"this node refused {stranger.endpoint}: "
                                                   f"wrong_network: we run network "
                                                   f"{net.genesis.network_id} genesis"):
            await pending
        assert (await stranger.expect(wire.Bye)).code == ByeCode.WRONG_NETWORK
        # ours: a node id banned here
        outlaw = net.peer().bind("tcp://127.0.0.1:0")
        node.discipline.bans.ban([("node", outlaw.node_id)])
        pending = add_peer(control, outlaw.endpoint)
        await outlaw.expect(wire.Hello)
        await outlaw.hello()
        with pytest.raises(PeerBanned, match="this node refused .*: banned"):
            await pending
        control.close()


async def test_add_peer_is_full_when_the_operator_slots_are_taken(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p")
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0", max_peers=2)
        control = net.control("a")
        silent = [free_tcp() for _ in range(MAX_MANUAL + 1)]
        for address in silent[:MAX_MANUAL]:  # each stays dialing (the handshake timeout)
            with pytest.raises(PeerUnreachable):
                await add_peer(control, address, wait_ms=50)
        assert node.peers.dialed(manual=True) == MAX_MANUAL
        assert node.slots.outbound_free(manual=False) == 1  # the node's own slot is untouched
        with pytest.raises(PeerFull, match=f"all {MAX_MANUAL} slots for operator-added"):
            await add_peer(control, silent[-1])
        assert f"peer {silent[0]} added by the operator" in caplog.text
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

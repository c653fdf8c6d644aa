"""Discipline (discipline.py, scoring.py; docs/protocol.md §13.6), in-process: what hostile
peers' frames cost, how a ban ends a link and keeps its node id out, and that an honest
peer is untouched meanwhile."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import zmq
from zmq.utils.monitor import parse_monitor_message

from common import wire
from common.status import PeerDirection
from common.wire import ByeCode
from runtime import zap
from services.p2p import scoring
from services.p2p.node import P2PNode
from services.p2p.peer import Peer, Standing
from services.p2p.transport import Link
from tests.framework import rules
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async
from tests.framework.wire_peer import WirePeer

pytestmark = pytest.mark.anyio


async def _ready(net: LocalNet, **kwargs: object) -> WirePeer:
    peer = net.peer(**kwargs).connect("inproc://p2p-a")
    await peer.handshake()
    return peer


def _score(node: P2PNode, peer: WirePeer) -> int:
    return node.peers.by_id[peer.node_id].standing.score


async def _banned(peer: WirePeer) -> wire.Bye:
    bye = await peer.expect(wire.Bye)
    while bye.code != ByeCode.BANNED:
        bye = await peer.expect(wire.Bye)
    return bye


@pytest.mark.parametrize(("parts", "points"), [
    ((b"\x00",), scoring.MALFORMED),  # shorter than a header and a body
    ((b"PNG\x94",), scoring.MALFORMED),  # a truncated body
    ((b"GPX\xdc\x00\x00",), scoring.MALFORMED),  # a non-canonical empty array
    ((b"XYZ\x90",), scoring.UNKNOWN_MESSAGE),
    ((b"TXS" + b"\x00" * (wire.Txs.max_body + 1),), scoring.TOO_LARGE),
    ((wire.encode(wire.GetPeerAddrs()), b"more"), scoring.MALFORMED),  # two frames
])
async def test_a_bad_frame_costs_its_penalty(tmp_path: Path, parts: tuple[bytes, ...],
                                             points: int) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = await _ready(net)
        await peer.send_raw(*parts)
        await peer.sync_with_ping()
        assert _score(node, peer) == -points


async def test_garbage_before_any_hello_bans_the_connection(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        honest = await _ready(net)
        junk = net.peer().connect("inproc://p2p-a")
        for frame in (b"\x00", b"HEL\xc1", b"XYZ\x90", b"PNG\x94", b"GPX\xdc\x00\x00",
                      b"\xff" * 99):
            await junk.send_raw(frame)
        bye = await _banned(junk)
        assert bye.reason
        assert [p.node_id for p in node.peers.inbound.values()] == [honest.node_id]
        await honest.sync_with_ping()
        assert _score(node, honest) == 0


async def test_bad_transactions_ban_the_node_id_for_good(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        liar = await _ready(net)
        forged = rules.transfer(1, bytes(20), 1, nonce=10**6).with_signature(bytes(64))
        other_chain = rules.transfer(1, bytes(20), 1, nonce=0, chain_id=rules.CHAIN_ID + 1)
        for raw in (forged.raw, other_chain.raw, b"\x01\x02", forged.raw):
            await liar.send(wire.Txs((raw,)))
        bye = await _banned(liar)
        assert bye.reason == "1 bad transaction(s)"
        assert node.discipline.bans.count("node") == 1
        liar.reconnect()  # a new connection under the same key
        await liar.hello()
        bye = await liar.expect(wire.Bye)
        assert (bye.code, bye.reason) == (ByeCode.BANNED, "node id is banned")
        assert node.txs.handed == 0  # none of it reached state


async def test_a_block_sealed_by_an_intruder_bans_at_once(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        await net.node("a")
        intruder = await _ready(net)
        block = rules.Chain(net.genesis).build(sealer=rules.signer(999))
        await intruder.send(wire.NewBlock(block.raw, 10**9))
        assert "not an authority" in (await _banned(intruder)).reason
        assert not await net.state("a").has_block(block.hash)


async def test_a_block_only_state_finds_invalid_bans_too(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        forger = await _ready(net)
        block = rules.Chain(net.genesis).build(state_root=b"\x01" * 32)  # sealed, stateless ok
        await forger.send(wire.NewBlock(block.raw, 10**9))
        bye = await _banned(forger)
        assert "rejected: bad_state_root" in bye.reason
        assert node.discipline.bans.count("node") == 1


async def test_a_block_from_a_clock_ahead_costs_little(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = await _ready(net)
        ahead = int(time.time() * 1000) + 3_600_000
        block = rules.Chain(net.genesis).build(timestamp=ahead)
        await peer.send(wire.NewBlock(block.raw, 10**9))
        await wait_until_async(lambda: _score(node, peer) == -scoring.MINOR_BLOCK,
                               timeout=5, what="the charge")


async def test_a_flood_is_dropped_and_costs_until_the_ban(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        flooder = await _ready(net)
        burst = int(scoring.RATE_LIMITS[b"PNG"][1])
        for i in range(burst + 3):  # a new link's bucket holds one burst
            await flooder.send(wire.Ping(i, 0, bytes(32), 0))
        pongs = [await flooder.expect(wire.Pong) for _ in range(burst)]
        assert [p.nonce for p in pongs] == list(range(burst))  # the rest were dropped
        await wait_until_async(lambda: _score(node, flooder) == -3 * scoring.FLOOD,
                               timeout=5, what="charged")
        for i in range(200):
            await flooder.send(wire.Ping(i, 0, bytes(32), 0))
        await _banned(flooder)
        assert node.discipline.bans.count("node") == 1


async def test_unsolicited_answers_cost_points(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = await _ready(net)
        await peer.send(wire.Pong(7, 0, net.genesis_hash, 0))  # no ping of ours
        await peer.send(wire.Blocks(3, (), 0, net.genesis_hash, 0))  # no request of ours
        await peer.sync_with_ping()
        assert _score(node, peer) == -2 * scoring.UNSOLICITED


async def test_a_frame_over_the_socket_limit_drops_the_connection(tmp_path: Path) -> None:
    """Past `zmq.MAXMSGSIZE` ZeroMQ drops the sender's tcp connection before any code sees
    the frame; the node finds the link gone at its next send."""
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", listen="tcp://127.0.0.1:0")
        giant = net.peer().connect(node.me.listen)
        await giant.handshake()
        assert giant.sock is not None
        monitor = giant.sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        await giant.send_raw(b"BLK" + bytes(wire.MAX_MESSAGE + 1))
        event = parse_monitor_message(await monitor.recv_multipart())  # the node hung up
        assert event["event"] == zmq.EVENT_DISCONNECTED
        link = node.peers.by_id[giant.node_id]
        assert link.standing.score == 0  # it never reached the decoder
        # the node's next sends find no route (once its ROUTER has taken the news)
        await wait_until_async(lambda: not link.send(wire.GetPeerAddrs()),
                               timeout=5, what="a send failing")
        assert link.link.unreachable
        node.tick(time.monotonic())
        assert giant.node_id not in node.peers.by_id
        giant.sock.disable_monitor()
        monitor.close(0)


async def test_hostile_peers_are_banned_while_an_honest_one_goes_on(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        honest = await _ready(net)
        chain = rules.Chain(net.genesis)
        for peer_frames in ([b"\xff" * 99] * 10, [b"PNG\xc1"] * 5):
            hostile = await _ready(net)
            for frame in peer_frames:
                await hostile.send_raw(frame)
            await _banned(hostile)
        block = chain.build_and_apply()
        await honest.send(wire.NewBlock(block.raw, 2))
        await wait_until_async(lambda: node.chain.tip.hash == block.hash,
                               timeout=5, what="the honest block in")
        await honest.sync_with_ping()
        assert _score(node, honest) == 0 and node.discipline.bans.count("node") == 2
        assert [p.node_id for p in node.peers.ready()] == [honest.node_id]


def test_a_score_recovers_a_point_every_ten_seconds_up_to_zero() -> None:
    standing = Standing()
    standing.penalize(30, now=100.0)
    assert standing.current(now=100.0 + 2.5 * scoring.RECOVERY_S) == -28
    assert standing.current(now=100.0 + 1000 * scoring.RECOVERY_S) == 0
    assert not standing.below_floor
    standing.penalize(-scoring.BAN_FLOOR, now=200.0)
    assert standing.below_floor


async def test_what_a_ban_covers_and_the_door_it_closes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A remote inbound peer is banned with its IP address (loopback never is): a new
    connection from it is refused by the ZAP decision, logged once a minute, and its
    address is dialed at no port."""
    caplog.set_level(logging.INFO, logger="ccoin.p2p")
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        discipline = node.discipline
        router = node.transport.router  # a routing id it has no route to stands for them
        remote = Peer(Link(PeerDirection.INBOUND, router=router, routing_id=b"r1",
                           remote="192.0.2.7", curve_key=b"k" * 32))
        node.peers.inbound[b"r1"] = remote
        discipline.punish(remote, 100, "a test offence")
        assert remote.closed and b"r1" in node.peers.banned_rids
        assert discipline.bans.banned(("ip", "192.0.2.7"))
        assert discipline.bans.banned(("curve", b"k" * 32))
        assert discipline.bans.count("node") == 0  # it never proved a node id
        assert "its IP address 192.0.2.7 too" in caplog.text

        req = zap.ZapRequest(b"1", zap.P2P_DOMAIN, "192.0.2.7", b"NULL", ())
        assert discipline.admit(req) == "banned address"
        assert discipline.admit(req) == "banned address"
        assert discipline.ip_refused == 2
        assert caplog.text.count("refused a new connection from 192.0.2.7") == 1
        assert discipline.admit(zap.ZapRequest(b"2", zap.P2P_DOMAIN, "192.0.2.8", b"NULL", ())) \
            is None
        assert not discipline.screen(Link(PeerDirection.INBOUND, routing_id=b"r2",
                                          remote="192.0.2.7"))
        assert b"r2" in node.peers.banned_rids  # its later frames go unread
        assert discipline.endpoint_banned("tcp://192.0.2.7:9999")

        local = Peer(Link(PeerDirection.INBOUND, router=router, routing_id=b"r3",
                          remote="127.0.0.1"))
        node.peers.inbound[b"r3"] = local
        discipline.punish(local, 100, "a test offence")
        assert discipline.bans.count("ip") == 1  # loopback is never banned


@pytest.fixture(autouse=True)
def _p2p_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p")


"""p2p sync when the chosen peer never answers (docs/protocol.md §13.5, §13.6).

A peer that claims the heavier tip but does not answer a `GBL` within `REPLY_TIMEOUT_S`
loses `SYNC_TIMEOUT` points (not enough to be banned: being slow is no proof of malice), is
not asked again for `FAILED_PAUSE_S`, and the next-best peer gets its turn. Two tests: the
sync machine alone (services/p2p/sync.py) on real asyncio and real ZeroMQ sockets with a
short reply timeout, and whole nodes (real state + p2p processes) with the real 15 s one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.asyncio

from common import messages as m
from common import wire
from common.crypto import Signer
from common.genesis import load_genesis
from services.p2p import scoring
from services.p2p.peer import Peer
from services.p2p.sync import FAILED_PAUSE_S, IDLE_CHECK_S, REPLY_TIMEOUT_S, Syncer
from tests.framework.p2p import (
    ChainBuilder,
    ScriptedPeer,
    TestNode,
    first_node,
    peer_dir,
    submit_blocks,
    wait_until,
)
from tests.framework.process import free_port

log = logging.getLogger("test_p2p_sync_timeout")

GENESIS = b"\x00" * 32


# --- the machine alone ------------------------------------------------------------------------


def test_syncer_gives_up_on_a_silent_peer_and_asks_the_next_best() -> None:
    asyncio.run(_silent_then_honest(reply_timeout=0.5))


async def _silent_then_honest(reply_timeout: float) -> None:
    """Two linked peers on one ROUTER standing for the network: "silent" claims the most
    weight and never answers; "honest" claims less (still more than ours) and answers."""
    ctx = zmq.asyncio.Context()
    network = ctx.socket(zmq.ROUTER)
    network.bind("inproc://sync-timeout")

    def link(name: bytes, weight: int) -> Peer:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, name)
        sock.connect("inproc://sync-timeout")
        peer = Peer("outbound", f"tcp://{name.decode()}:1", sock=sock)
        peer.ready = True
        peer.update_tip(weight, bytes([weight]) * 32, weight)
        return peer

    silent, honest = link(b"silent", 9), link(b"honest", 2)
    ours: list[tuple[int, bytes, int]] = [(0, GENESIS, 0)]  # our tip: height, head, weight
    imported: list[tuple[Peer, tuple[bytes, ...]]] = []
    punished: list[tuple[Peer, int, float]] = []

    async def locator() -> tuple[bytes, ...]:
        return (ours[0][1],)

    async def import_blocks(peer: Peer, raws: tuple[bytes, ...]) -> bytes | None:
        imported.append((peer, raws))
        ours[0] = (peer.height, peer.head, peer.total_weight)
        return peer.head

    async def refresh_tip() -> None:
        return None

    def punish(peer: Peer, points: int, why: str) -> None:
        punished.append((peer, points, time.monotonic()))

    syncer = Syncer(lambda: [silent, honest], lambda: ours[0], locator, import_blocks,
                    refresh_tip, punish,
                    lambda their_w, _th, our_w, _oh: their_w > our_w,
                    reply_timeout=reply_timeout)
    asked: list[tuple[bytes, wire.GetBlocks, float]] = []
    started = time.monotonic()
    machine = asyncio.create_task(syncer.run())
    try:
        syncer.poke()
        while not imported:
            rid, frame = await asyncio.wait_for(network.recv_multipart(), reply_timeout + 10)
            msg = wire.decode(frame)
            assert isinstance(msg, wire.GetBlocks)
            asked.append((rid, msg, time.monotonic()))
            order = [r for r, _, _ in asked]
            assert order in ([b"silent"], [b"silent", b"honest"]), f"asked {order}"
            if rid == b"honest":
                assert syncer.on_blocks(honest, wire.Blocks(
                    msg.request, (b"block 1", b"block 2"), honest.height, honest.head,
                    honest.total_weight))
                await asyncio.wait_for(_until(lambda: bool(imported)), 10)
        await asyncio.wait_for(_until(lambda: syncer.state == "idle"), 10)
    finally:
        await _shut(machine, ctx, network, silent, honest)

    # the heaviest claim was asked first, once (checked as they came); the next one only
    # after the timeout
    silent_gbl, honest_asked_at = asked[0][1], asked[1][2]
    assert honest_asked_at - started >= reply_timeout
    assert [(p, points) for p, points, _ in punished] == [(silent, scoring.SYNC_TIMEOUT)]
    assert punished[0][2] <= honest_asked_at
    assert started < silent.sync_failed_at <= honest_asked_at
    assert honest.sync_failed_at < 0  # untouched
    # we ended on the honest peer's tip, in one round
    assert imported == [(honest, (b"block 1", b"block 2"))]
    assert ours == [(honest.height, honest.head, honest.total_weight)]
    assert syncer.rounds == 1
    # its late answer is no longer awaited (node.py charges it as unsolicited)
    assert not syncer.on_blocks(silent, wire.Blocks(silent_gbl.request, (b"late",), 9,
                                                    silent.head, 9))
    # it still claims more than we have, but is paused; after the pause it is asked again
    assert syncer.choose() is None
    silent.sync_failed_at -= FAILED_PAUSE_S
    assert syncer.choose() is silent



def test_a_peer_whose_link_takes_no_request_is_paused_not_spun_on() -> None:
    asyncio.run(_unsendable_then_honest())


async def _unsendable_then_honest() -> None:
    """The heaviest peer's link cannot queue the `GBL` (a DEALER with no connection refuses
    a non-blocking send, as a full one does): it is paused without points and the next-best
    peer is asked, instead of the round picking it again and again."""
    ctx = zmq.asyncio.Context()
    network = ctx.socket(zmq.ROUTER)
    network.bind("inproc://sync-unsendable")
    stuck = Peer("outbound", "tcp://stuck:1", sock=ctx.socket(zmq.DEALER))  # never connected
    stuck.ready = True
    stuck.update_tip(9, b"\x09" * 32, 9)
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.ROUTING_ID, b"honest")
    sock.connect("inproc://sync-unsendable")
    honest = Peer("outbound", "tcp://honest:1", sock=sock)
    honest.ready = True
    honest.update_tip(2, b"\x02" * 32, 2)
    ours = [(0, GENESIS, 0)]
    locators: list[float] = []
    punished: list[tuple[Peer, int]] = []

    async def locator() -> tuple[bytes, ...]:
        locators.append(time.monotonic())
        return (ours[0][1],)

    async def import_blocks(peer: Peer, raws: tuple[bytes, ...]) -> bytes | None:
        ours[0] = (peer.height, peer.head, peer.total_weight)
        return peer.head

    async def refresh_tip() -> None:
        return None

    syncer = Syncer(lambda: [stuck, honest], lambda: ours[0], locator, import_blocks,
                    refresh_tip, lambda peer, points, _why: punished.append((peer, points)),
                    lambda their_w, _th, our_w, _oh: their_w > our_w)
    started = time.monotonic()
    machine = asyncio.create_task(syncer.run())
    try:
        syncer.poke()
        rid, frame = await asyncio.wait_for(network.recv_multipart(), 10)
        msg = wire.decode(frame)
        assert rid == b"honest" and isinstance(msg, wire.GetBlocks)
        assert syncer.on_blocks(honest, wire.Blocks(msg.request, (b"block 1",), 2,
                                                    honest.head, 2))
        await asyncio.wait_for(_until(lambda: ours[0][2] == 2 and syncer.state == "idle"), 10)
    finally:
        await _shut(machine, ctx, network, stuck, honest)
    assert started < stuck.sync_failed_at  # paused for FAILED_PAUSE_S
    assert punished == []  # a full link is no offence
    assert len(locators) == 2  # one round for the stuck peer, one for the honest one


async def _shut(machine: asyncio.Task[None], ctx: zmq.asyncio.Context,
                network: zmq.asyncio.Socket, *peers: Peer) -> None:
    machine.cancel()
    await asyncio.gather(machine, return_exceptions=True)
    for sock in (network, *(p.sock for p in peers)):
        assert sock is not None
        sock.close(0)
    ctx.term()


async def _until(pred: Callable[[], bool]) -> None:
    while not pred():
        await asyncio.sleep(0.01)


# --- whole nodes ----------------------------------------------------------------------------


@dataclass
class SilentPeer:
    """A scripted peer that claims `tip` and keeps its link alive (answers pings) but
    swallows every block request."""

    peer: ScriptedPeer
    tip: tuple[int, bytes, int]  # height, head, total weight
    asked: list[float] = field(default_factory=list)  # when each GBL arrived
    byes: list[wire.Bye] = field(default_factory=list)

    def pump(self) -> None:
        while (msg := self.peer.recv(0)) is not None:
            if isinstance(msg, wire.GetBlocks):
                self.asked.append(time.monotonic())
            elif isinstance(msg, wire.Ping):
                self.peer.send(wire.Pong(msg.nonce, *self.tip))
            elif isinstance(msg, wire.Bye):
                self.byes.append(msg)

    def meanwhile(self, pred: Callable[[], bool]) -> Callable[[], bool]:
        """`pred` for wait_until, with this peer's traffic handled at every poll."""
        def polled() -> bool:
            self.pump()
            return pred()
        return polled


def _line_of(text: str, *needles: str) -> int:
    """The index of the first log line that contains all `needles`."""
    for i, line in enumerate(text.splitlines()):
        if all(n in line for n in needles):
            return i
    raise AssertionError(f"no log line with {needles}")


def test_a_silent_peer_times_out_and_the_honest_one_syncs_the_node(tmp_path: Path) -> None:
    """Node X (empty chain) first links only to a scripted peer that claims a tip heavier
    than anything real and never answers `GBL`; then to an honest node H with a real
    30-block chain. X stays with the silent peer until the 15 s reply timeout, then syncs
    from H; the silent peer loses points but is neither banned nor dropped, and is not asked
    again during its pause."""
    dev, _ = first_node(tmp_path / "honest")
    chain = ChainBuilder(load_genesis(dev.genesis_path), Signer(dev.validator))
    blocks = chain.extend(30)
    honest = TestNode(dev.config_path, "honest")
    x = TestNode(peer_dir(dev, tmp_path / "x", p2p_port=free_port()), "x")
    scripted: ScriptedPeer | None = None
    try:
        honest.start("state")
        submit_blocks(honest, blocks)
        honest.start("p2p")
        x.start("state", "p2p")
        status = x.status()
        assert status.height == 0
        honest_id = honest.peers().node_id

        log.info("the silent peer links first and claims twice H's weight")
        scripted = ScriptedPeer(x.p2p_endpoint, network_id=status.network_id,
                                genesis=status.genesis)
        claim = (2 * chain.head.height, os.urandom(32), 2 * chain.weight)
        silent = SilentPeer(scripted, claim)
        scripted.handshake(height=claim[0], head=claim[1], total_weight=claim[2])
        scripted.expect(wire.GetBlocks, timeout=10)
        asked_at = time.monotonic()
        silent.asked.append(asked_at)

        log.info("H links while X waits for the silent peer's blocks")
        x.request("p2p", m.AddPeer(honest.p2p_endpoint), m.Ok)
        wait_until(silent.meanwhile(lambda: honest_id in {p.node_id for p in x.peers().peers}),
                   10, "H linked to X")
        reply = x.peers()
        linked_at = time.monotonic()
        assert linked_at - asked_at < REPLY_TIMEOUT_S - 2, "too slow to link H: no evidence"
        assert reply.syncing and reply.sync_target == claim[0]  # still on the silent peer
        assert x.status().height == 0

        log.info("X times out on the silent peer and syncs from H")

        def synced() -> bool:
            assert silent.asked == [asked_at], "the silent peer was asked again in its pause"
            return x.status().head == chain.head.hash
        wait_until(silent.meanwhile(synced), REPLY_TIMEOUT_S + 30, "X on H's head")
        synced_at = time.monotonic()
        log.info("synced %.1f s after the GBL to the silent peer", synced_at - asked_at)
        assert synced_at - asked_at >= REPLY_TIMEOUT_S - 1  # 1 s: when we saw the GBL vs sent
        assert x.status().height == honest.status().height == chain.head.height
        text = x.log("p2p")
        silent_hex, honest_hex = scripted.node_id.hex()[:12], honest_id.hex()[:12]
        first = _line_of(text, "syncing from", silent_hex)
        timeout = _line_of(text, silent_hex, f"-{scoring.SYNC_TIMEOUT} (no blocks in time)")
        second = _line_of(text, "syncing from", honest_hex)
        assert first < timeout < second

        log.info("the silent peer is paused, penalized, not banned, still linked")
        wait_until(silent.meanwhile(lambda: "sync from " + honest_hex in x.log("p2p")
                                    and not x.peers().syncing), 10, "X idle again")
        observe_until = time.monotonic() + 1.5 * IDLE_CHECK_S  # X would re-ask by now
        while time.monotonic() < observe_until:
            silent.pump()
            time.sleep(0.1)
        assert time.monotonic() - asked_at < FAILED_PAUSE_S  # so "not asked again" means it
        assert silent.asked == [asked_at]
        reply = x.peers()
        assert not reply.syncing and reply.banned == 0 and silent.byes == []
        scores = {p.node_id: p.score for p in reply.peers}
        assert scores[honest_id] == 0
        assert -scoring.SYNC_TIMEOUT <= scores[scripted.node_id] < 0
        assert "banning peer" not in x.log("p2p")
    finally:
        if scripted is not None:
            scripted.close()
        x.stop()
        honest.stop()

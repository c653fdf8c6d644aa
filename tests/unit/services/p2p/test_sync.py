"""The sync state machine (sync.py, docs/protocol.md §13.5).

First the machine alone, its one collaborator (`SyncHost`) played by the test over real
peers on real inproc:// links; then whole in-process nodes, real state included, syncing
from test peers that serve a chain, a fork, an orphan, or nothing at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from common import consensus, wire
from common.errors import StorageUnavailable
from common.status import PeerDirection
from common.types import Block
from services.p2p import scoring
from services.p2p.blocks import PARALLEL_VERIFY_MIN
from services.p2p.chainview import Tip
from services.p2p.peer import LinkState, Peer
from services.p2p.settings import Timing
from services.p2p.sync import (
    BATCH_BLOCKS,
    FAILED_PAUSE_S,
    FIRST_BATCH_BLOCKS,
    Handover,
    Syncer,
    SyncState,
)
from services.p2p.transport import Link, Transport
from tests.framework import rules
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async
from tests.framework.wire_peer import WirePeer

pytestmark = pytest.mark.anyio

GENESIS = b"\x00" * 32


# --- the machine alone ----------------------------------------------------------------------


class Host:
    """The syncer's collaborator as a test plays it: a chain that takes any batch (our tip
    becomes the sender's), a record of what was asked and charged."""

    def __init__(self, peers: list[Peer]) -> None:
        self.peers = peers
        self.tip = Tip(0, GENESIS, 0)
        self.imported: list[tuple[Peer, tuple[bytes, ...]]] = []
        self.punished: list[tuple[Peer, int, float]] = []
        self.locators: list[float] = []

    def ready_peers(self) -> list[Peer]:
        return self.peers

    def better(self, candidate: Tip, current: Tip) -> bool:
        return candidate.total_weight > current.total_weight

    async def locator(self) -> tuple[bytes, ...]:
        self.locators.append(time.monotonic())
        return (self.tip.hash,)

    async def import_blocks(self, peer: Peer, raws: tuple[bytes, ...],
                            after: Handover | None = None) -> tuple[bytes | None, Handover]:
        self.imported.append((peer, raws))
        self.tip = peer.tip
        handed: Handover = asyncio.get_running_loop().create_future()
        handed.set_result(True)
        return peer.tip.hash, handed

    async def refresh_tip(self) -> None:
        return None

    async def height_of(self, block_hash: bytes) -> int | None:
        return None

    def punish(self, peer: Peer, points: int, why: str) -> None:
        self.punished.append((peer, points, time.monotonic()))


class Machine:
    """Peers for the syncer: each a real DEALER link to a WirePeer's ROUTER."""

    def __init__(self, ctx: zmq.asyncio.Context) -> None:
        self.ctx = ctx
        self.transport = Transport(ctx)
        self.remotes: dict[str, WirePeer] = {}

    def peer(self, name: str, weight: int) -> Peer:
        remote = WirePeer(self.ctx, network_id=1, genesis=GENESIS).bind(f"inproc://{name}")
        self.remotes[name] = remote
        peer = Peer(self.transport.dial(f"inproc://{name}"))
        return self._ready(peer, weight)

    def unlinked(self, weight: int) -> Peer:
        """A peer whose link takes no message: a DEALER connected nowhere."""
        return self._ready(Peer(Link(PeerDirection.OUTBOUND, endpoint="inproc://nowhere",
                                     sock=self.ctx.socket(zmq.DEALER))), weight)

    @staticmethod
    def _ready(peer: Peer, weight: int) -> Peer:
        peer.state = LinkState.READY
        peer.tip = Tip(weight, bytes([weight]) * 32, weight)
        return peer

    def close(self, *peers: Peer) -> None:
        for peer in peers:
            peer.link.close()
        for remote in self.remotes.values():
            remote.close()


@asynccontextmanager
async def running(syncer: Syncer) -> AsyncIterator[None]:
    task = asyncio.create_task(syncer.run())
    try:
        syncer.poke()
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_the_syncer_gives_up_on_a_silent_peer_and_asks_the_next_best() -> None:
    """"silent" claims the most weight and never answers; "honest" claims less (still more
    than ours) and answers."""
    ctx = zmq.asyncio.Context()
    machine = Machine(ctx)
    silent, honest = machine.peer("silent", 9), machine.peer("honest", 2)
    host = Host([silent, honest])
    syncer = Syncer(host, reply_timeout=0.3)
    started = time.monotonic()
    try:
        async with running(syncer):
            asked = await machine.remotes["silent"].expect(wire.GetBlocks)
            request = await machine.remotes["honest"].expect(wire.GetBlocks, timeout=5)
            honest_asked_at = time.monotonic()
            assert syncer.on_blocks(honest, wire.Blocks(
                request.request, (b"block 1", b"block 2"), 2, honest.tip.hash, 2))
            await wait_until_async(lambda: host.imported and syncer.state is SyncState.IDLE,
                                   timeout=5, what="the blocks imported, the machine idle")
    finally:
        machine.close(silent, honest)
        ctx.destroy(linger=0)
    # the heaviest claim was asked first; the next one only after the reply timeout
    assert honest_asked_at - started >= 0.3
    assert [(p, points) for p, points, _ in host.punished] == [(silent, scoring.SYNC_TIMEOUT)]
    assert started < silent.sync.failed_at <= honest_asked_at
    assert honest.sync.failed_at < 0  # untouched
    # we ended on the honest peer's tip, in one round
    assert host.imported == [(honest, (b"block 1", b"block 2"))]
    assert host.tip == honest.tip and syncer.rounds == 1
    # its late answer is no longer awaited, and costs it as unsolicited
    assert not syncer.on_blocks(silent, wire.Blocks(asked.request, (b"late",), 9,
                                                    silent.tip.hash, 9))
    assert host.punished[-1][:2] == (silent, scoring.UNSOLICITED)
    # it still claims more than we have, but is paused; after the pause it is asked again
    assert syncer.choose() is None
    silent.sync.failed_at -= FAILED_PAUSE_S
    assert syncer.choose() is silent


async def test_a_peer_whose_link_takes_no_request_is_paused_not_spun_on() -> None:
    """The heaviest peer's link cannot queue the `GBL` (a DEALER with no connection refuses
    a non-blocking send, as a full one does): it is paused without points and the next-best
    peer is asked, instead of the round picking it again and again."""
    ctx = zmq.asyncio.Context()
    machine = Machine(ctx)
    stuck, honest = machine.unlinked(9), machine.peer("honest", 2)
    host = Host([stuck, honest])
    syncer = Syncer(host)
    started = time.monotonic()
    try:
        async with running(syncer):
            request = await machine.remotes["honest"].expect(wire.GetBlocks)
            assert syncer.on_blocks(honest, wire.Blocks(request.request, (b"block 1",), 2,
                                                        honest.tip.hash, 2))
            await wait_until_async(lambda: host.tip.total_weight == 2
                                   and syncer.state is SyncState.IDLE,
                                   timeout=5, what="the heavier chain in, the machine idle")
    finally:
        machine.close(stuck, honest)
        ctx.destroy(linger=0)
    assert started < stuck.sync.failed_at  # paused for FAILED_PAUSE_S
    assert host.punished == []  # a full link is no offence
    assert len(host.locators) == 2  # one round for the stuck peer, one for the honest one


async def test_the_choice_of_peer() -> None:
    ctx = zmq.asyncio.Context()
    machine = Machine(ctx)
    light, heavy, middle = (machine.peer(n, w) for n, w in (("l", 3), ("h", 7), ("m", 5)))
    host = Host([light, heavy, middle])
    syncer = Syncer(host)
    try:
        assert syncer.choose() is heavy  # the most weight
        heavy.liveness.latency_ms, middle.tip = 80, Tip(7, b"\x07" * 32, 7)
        assert syncer.choose() is middle  # at equal weight, the quicker
        syncer.orphan(light)  # an orphan's sender is asked first
        assert syncer.choose() is light
        for p in (heavy, middle):
            p.sync.exhausted_at = 7  # had nothing for us at this weight
        assert syncer.choose() is light
        light.sync.failed_at = time.monotonic()  # let a round down a moment ago
        assert syncer.choose() is None
        host.tip = Tip(9, b"\x09" * 32, 9)  # nobody is ahead...
        syncer.force()  # ...but the operator asks: any ready peer, a paused one too
        assert syncer.choose() in (heavy, middle, light)
        assert syncer.choose() is None  # once
    finally:
        machine.close(light, heavy, middle)
        ctx.destroy(linger=0)


async def test_a_peer_that_claims_more_but_sends_nothing_is_charged_and_left_alone() -> None:
    ctx = zmq.asyncio.Context()
    machine = Machine(ctx)
    empty = machine.peer("empty", 5)
    host = Host([empty])
    syncer = Syncer(host)
    try:
        async with running(syncer):
            request = await machine.remotes["empty"].expect(wire.GetBlocks)
            syncer.on_blocks(empty, wire.Blocks(request.request, (), 5, empty.tip.hash, 5))
            await wait_until_async(lambda: empty.sync.exhausted_at == 5 and not syncer.syncing,
                                   timeout=5, what="the empty peer exhausted, the sync over")
            assert syncer.choose() is None  # not again at the same weight
    finally:
        machine.close(empty)
        ctx.destroy(linger=0)
    assert [(p, points) for p, points, _ in host.punished] == [(empty, scoring.EMPTY_SYNC)]


class NoRoom(Host):
    """A chain whose state cannot store blocks (its disk is full) until `room` is set."""

    def __init__(self, peers: list[Peer]) -> None:
        super().__init__(peers)
        self.room = False
        self.refused = 0

    async def import_blocks(self, peer: Peer, raws: tuple[bytes, ...],
                            after: Handover | None = None) -> tuple[bytes | None, Handover]:
        if not self.room:
            self.refused += 1
            raise StorageUnavailable("disk space low: 3.0 MB free")
        return await super().import_blocks(peer, raws, after)


async def test_a_state_that_cannot_store_pauses_the_sync_and_says_so_once(
        caplog: pytest.LogCaptureFixture) -> None:
    """Each round's batch is refused by state: no penalty for the peer, a pause between
    rounds, one line when it starts and one when a round goes through again."""
    caplog.set_level(logging.INFO, logger="ccoin.p2p.sync")
    ctx = zmq.asyncio.Context()
    machine = Machine(ctx)
    ahead = machine.peer("ahead", 5)
    host = NoRoom([ahead])
    syncer = Syncer(host, storage_pause=0.05)

    async def round_served() -> None:
        request = await machine.remotes["ahead"].expect(wire.GetBlocks)
        assert syncer.on_blocks(ahead, wire.Blocks(request.request, (b"block 1",), 5,
                                                   ahead.tip.hash, 5))

    try:
        async with running(syncer):
            for n in (1, 2, 3):
                await round_served()
                await wait_until_async(lambda n=n: host.refused == n, timeout=5,  # type: ignore[misc]
                                       what="state to refuse the batch")
            host.room = True
            await round_served()
            await wait_until_async(lambda: host.imported and syncer.state is SyncState.IDLE,
                                   timeout=5, what="the batch stored, the machine idle")
    finally:
        machine.close(ahead)
        ctx.destroy(linger=0)
    assert host.punished == [] and ahead.sync.failed_at < 0  # not the peer's fault
    said = [m for r in caplog.records if (m := r.getMessage()).startswith(("sync paused",
                                                                         "sync resumed"))]
    assert said == ["sync paused: state cannot store blocks: disk space low: 3.0 MB free",
                    "sync resumed: state stores blocks again"], said


class Slow(Host):
    """A chain whose state takes each batch only when the test resolves its hand-over; it
    records, for each batch, whether the one before was still with state when it came."""

    def __init__(self, peers: list[Peer]) -> None:
        super().__init__(peers)
        self.handed: list[Handover] = []
        self.previous_pending: list[bool] = []

    async def import_blocks(self, peer: Peer, raws: tuple[bytes, ...],
                            after: Handover | None = None) -> tuple[bytes | None, Handover]:
        assert after is (self.handed[-1] if self.handed else None)  # chained in order
        self.previous_pending.append(after is not None and not after.done())
        self.imported.append((peer, raws))
        if raws[-1] == peer.tip.hash:
            self.tip = peer.tip
        self.handed.append(asyncio.get_running_loop().create_future())
        return raws[-1], self.handed[-1]


async def test_the_next_batch_is_verified_while_state_still_imports_the_last() -> None:
    """The round goes on to the next batch without waiting for state's import of the one
    before, and ends only when state took the last batch."""
    ctx = zmq.asyncio.Context()
    machine = Machine(ctx)
    ahead = machine.peer("ahead", 5)
    host = Slow([ahead])
    syncer = Syncer(host)
    remote = machine.remotes["ahead"]
    try:
        async with running(syncer):
            first = await remote.expect(wire.GetBlocks)
            assert syncer.on_blocks(ahead, wire.Blocks(first.request, (b"block 1",), 5,
                                                       ahead.tip.hash, 5))
            second = await remote.expect(wire.GetBlocks)
            assert not host.handed[0].done()  # asked for while state holds the first batch
            assert syncer.on_blocks(ahead, wire.Blocks(second.request, (ahead.tip.hash,), 5,
                                                       ahead.tip.hash, 5))
            await wait_until_async(lambda: len(host.imported) == 2, timeout=5,
                                   what="the second batch verified")
            assert host.previous_pending == [False, True]
            assert syncer.syncing  # the round waits for state to take its last batch
            for handed in host.handed:
                handed.set_result(True)
            await wait_until_async(lambda: not syncer.syncing, timeout=5, what="round over")
    finally:
        machine.close(ahead)
        ctx.destroy(linger=0)
    assert host.punished == [] and ahead.sync.failed_at < 0 and syncer.rounds == 2


# --- whole nodes --------------------------------------------------------------------------


async def _peer_holding(net: LocalNet, blocks: list[Block]) -> tuple[WirePeer, int]:
    """A peer past its handshake, whose chain is `blocks` (on the genesis), and its weight."""
    weight = _weight(net, blocks)
    peer = net.peer().connect("inproc://p2p-a")
    await peer.handshake(height=blocks[-1].height, head=blocks[-1].hash, total_weight=weight)
    return peer, weight


def _chain(genesis_blocks: rules.Chain, count: int, extra: bytes = b"") -> list[Block]:
    return [genesis_blocks.build_and_apply(extra=extra) for _ in range(count)]


def _weight(net: LocalNet, blocks: list[Block]) -> int:
    return sum(consensus.block_weight(net.genesis, b.header, net.genesis.miners)
               for b in blocks)


async def test_a_node_syncs_in_locator_batches_asking_for_each_while_the_last_is_imported(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        blocks = _chain(rules.Chain(net.genesis), 25)
        peer, weight = await _peer_holding(net, blocks)
        # a small first batch, then full ones, each asked for after the last block of the
        # batch before it (which leads the locator), before that batch is imported
        for first, last, limit in ((0, FIRST_BATCH_BLOCKS, FIRST_BATCH_BLOCKS),
                                   (4, 14, BATCH_BLOCKS), (14, 24, BATCH_BLOCKS),
                                   (24, 25, BATCH_BLOCKS)):
            request = await peer.expect(wire.GetBlocks)
            want = blocks[first - 1].hash if first else net.genesis_hash
            assert request.locator[0] == want and request.locator[-1] == net.genesis_hash
            assert request.limit == limit
            reply = await peer.serve(request, blocks, weight, limit=10)
            assert reply.blocks == tuple(b.raw for b in blocks[first:last])
        await wait_until_async(lambda: node.chain.tip.hash == blocks[-1].hash,
                               timeout=5, what="the node synced")
        await wait_until_async(lambda: not node.syncer.syncing, timeout=5, what="the sync over")
        assert node.syncer.rounds == 4
        assert (await net.state("a").status()).height == 25
        assert node.peers.by_id[peer.node_id].standing.score == 0


async def test_the_answer_to_a_batch_asked_ahead_and_then_not_wanted_costs_nothing(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        blocks = _chain(rules.Chain(net.genesis), 10)
        peer, weight = await _peer_holding(net, blocks)
        first = await peer.expect(wire.GetBlocks)
        raws = [b.raw for b in blocks[:FIRST_BATCH_BLOCKS]]
        raws[2] = raws[2][:-1]  # undecodable: the round ends at it
        await peer.send(wire.Blocks(first.request, tuple(raws), 10, blocks[-1].hash, weight))
        ahead = await peer.expect(wire.GetBlocks)  # asked for before the batch was read
        assert ahead.locator[0] == blocks[FIRST_BATCH_BLOCKS - 1].hash
        await wait_until_async(lambda: not node.syncer.syncing, timeout=5, what="round over")
        assert (await net.state("a").status()).height == 2
        await peer.serve(ahead, blocks, weight)  # late, and no longer wanted
        await peer.sync_with_ping()
        assert node.peers.by_id[peer.node_id].standing.score == -scoring.MALFORMED


async def test_a_heavier_fork_from_a_peer_reorganises_the_node(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        state = net.state("a")
        ours = rules.Chain(net.genesis)
        main = _chain(ours, 6)
        await state.submit_blocks(main)
        fork_chain = rules.Chain(net.genesis)
        for block in main[:2]:
            fork_chain.apply(block)
        fork = main[:2] + _chain(fork_chain, 8, extra=b"fork")  # off block 2, heavier
        weight = _weight(net, fork)
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()
        server = asyncio.create_task(peer.serve_forever(fork, weight, limit=3))
        try:
            await peer.send(wire.NewBlock(fork[-1].raw, weight))  # its tip: an orphan to us
            await wait_until_async(lambda: node.chain.tip.hash == fork[-1].hash,
                                   timeout=5, what="the reorg")
        finally:
            server.cancel()
        first = next(m for m in peer.received if isinstance(m, wire.GetBlocks))
        assert first.locator[0] == main[-1].hash  # asked from our head down
        assert (await state.status()).height == 10


async def test_an_orphan_makes_the_node_ask_its_sender_for_the_parents(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        blocks = _chain(rules.Chain(net.genesis), 3)
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()
        await peer.send(wire.NewBlock(blocks[2].raw, _weight(net, blocks)))  # height 3 on 0
        request = await peer.expect(wire.GetBlocks)
        assert request.locator == (net.genesis_hash,)
        await peer.serve(request, blocks, _weight(net, blocks))
        await wait_until_async(lambda: node.chain.tip.hash == blocks[2].hash,
                               timeout=5, what="the chain in")
        # a block one above our head whose parent state does not know: state says so
        stray = rules.Chain(net.genesis)
        stray.apply(blocks[0])
        side = _chain(stray, 3, extra=b"side")  # heights 2..4: 4 is "next" to our 3
        await peer.send(wire.NewBlock(side[-1].raw, 1))
        request = await peer.expect(wire.GetBlocks)
        assert request.locator[0] == blocks[2].hash


async def test_a_silent_peer_times_out_and_an_honest_one_syncs_the_node(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The node (empty chain) links first to a peer that claims twice the honest chain's
    weight and never answers `GBL`, then to an honest peer with a 30-block chain. It stays
    with the silent peer until the reply timeout, then syncs from the honest one; the
    silent peer loses points but is neither banned nor dropped, and is not asked again
    during its pause."""
    caplog.set_level(logging.INFO, logger="ccoin.p2p")
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", timing=Timing(tick=3600.0, sync_reply=0.3))
        blocks = _chain(rules.Chain(net.genesis), 30)
        weight = _weight(net, blocks)
        silent = net.peer().connect("inproc://p2p-a")
        claim = {"height": 60, "head": os.urandom(32), "total_weight": 2 * weight}
        await silent.handshake(**claim)
        await silent.expect(wire.GetBlocks)
        asked_at = time.monotonic()
        honest = net.peer().connect("inproc://p2p-a")
        await honest.handshake(height=30, head=blocks[-1].hash, total_weight=weight)
        assert node.syncer.syncing and node.syncer.sync_target == 60  # still on the silent one
        server = asyncio.create_task(honest.serve_forever(blocks, weight))
        try:
            await wait_until_async(lambda: node.chain.tip.hash == blocks[-1].hash,
                                   timeout=5, what="synced")
        finally:
            server.cancel()
        assert time.monotonic() - asked_at >= 0.3
        await wait_until_async(lambda: not node.syncer.syncing, timeout=5, what="the sync over")
        await silent.sync_with_ping()
        assert silent.message_count[wire.GetBlocks] == 1  # paused: not asked again
        link = node.peers.by_id[silent.node_id]  # still linked, not banned
        assert link.standing.score == -scoring.SYNC_TIMEOUT
        assert node.peers.by_id[honest.node_id].standing.score == 0
        assert node.discipline.bans.count("node") == 0 and silent.message_count[wire.Bye] == 0
        lines = caplog.text.splitlines()
        silent_hex, honest_hex = silent.node_id.hex()[:12], honest.node_id.hex()[:12]

        def line(*needles: str) -> int:
            return next(i for i, text in enumerate(lines) if all(n in text for n in needles))

        assert (line("syncing from", silent_hex)
                < line(silent_hex, f"-{scoring.SYNC_TIMEOUT} (no blocks in time)")
                < line("syncing from", honest_hex))


@pytest.mark.parametrize("theirs_lower", [True, False])
async def test_an_equal_weight_tip_is_taken_only_with_a_lower_hash(
        tmp_path: Path, theirs_lower: bool) -> None:
    """PoA fork choice at equal weight: the lower hash wins (EIP-3436), so two nodes each
    holding another block at one height agree as soon as they talk."""
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        base = rules.Chain(net.genesis)
        common_part = _chain(base, 2)
        other = rules.Chain(net.genesis)
        for block in common_part:
            other.apply(block)
        candidates = [base.build(extra=b"c"), other.build(extra=b"d")]
        candidates.sort(key=lambda b: b.hash, reverse=theirs_lower)
        ours, theirs = candidates
        await net.state("a").submit_blocks([*common_part, ours])
        await wait_until_async(lambda: node.chain.tip.hash == ours.hash,
                               timeout=5, what="our own tip in")
        weight = _weight(net, [*common_part, ours])
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake(height=3, head=theirs.hash, total_weight=weight)
        chain = [*common_part, theirs]
        if theirs_lower:
            await peer.serve(await peer.expect(wire.GetBlocks), chain, weight)
            await wait_until_async(lambda: node.chain.tip.hash == theirs.hash,
                                   timeout=5, what="the lower hash")
        else:
            await peer.sync_with_ping()
            assert node.syncer.choose() is None  # it is not ahead of us
            assert wire.GetBlocks not in peer.message_count
            assert node.chain.tip.hash == ours.hash


@pytest.mark.parametrize("bad", ["forged", "undecodable"])
async def test_a_batch_is_imported_up_to_its_first_bad_block_and_its_sender_charged(
        tmp_path: Path, bad: str) -> None:
    # Block 3 is read while block 2's signatures are still on the verify threads: the good
    # blocks before the bad one are imported all the same, nothing after it is.
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        chain = rules.Chain(net.genesis)
        per_sender = PARALLEL_VERIFY_MIN // 3 + 2  # enough to go to the verify threads
        count = 3 * per_sender
        blocks = []
        for height in range(5):
            txs = [rules.transfer(1 + i % 3, bytes(20), 1, nonce=height * per_sender + i // 3)
                   for i in range(count)]
            if height == 3:
                txs[count - 2] = txs[count - 2].with_signature(bytes(64))
            blocks.append(chain.build(txs))
            chain.apply(blocks[-1], validate=False)
        raws = [b.raw for b in blocks]
        if bad == "undecodable":
            raws[3] = raws[3][:-1]
        peer, weight = await _peer_holding(net, blocks)
        request = await peer.expect(wire.GetBlocks)
        await peer.send(wire.Blocks(request.request, tuple(raws), 5, blocks[-1].hash, weight))
        await wait_until_async(lambda: not node.syncer.syncing and node.syncer.rounds == 1,
                               timeout=10, what="the round over")
        assert (await net.state("a").status()).head == blocks[2].hash
        if bad == "forged":
            bye = await peer.expect(wire.Bye)
            assert f"transaction {count - 2} has a bad signature" in bye.reason
        else:
            assert node.peers.by_id[peer.node_id].standing.score == -scoring.MALFORMED


async def test_a_block_state_refuses_ends_the_round_though_the_next_batch_was_verified(
        tmp_path: Path) -> None:
    # The last block of the first batch is one only state can refuse (its clock an hour
    # ahead): the syncer has gone on to the next batch before state answers. The refusal
    # still ends the round, charges the peer once, and keeps the blocks before it.
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        chain = rules.Chain(net.genesis)
        blocks = _chain(chain, FIRST_BATCH_BLOCKS - 1)
        blocks.append(chain.build(timestamp=int(time.time() * 1000) + 3_600_000))
        chain.apply(blocks[-1], validate=False)
        blocks += _chain(chain, 3 * FIRST_BATCH_BLOCKS)
        peer, weight = await _peer_holding(net, blocks)
        server = asyncio.create_task(peer.serve_forever(blocks, weight,
                                                        limit=FIRST_BATCH_BLOCKS))
        try:
            await wait_until_async(lambda: node.syncer.rounds >= 1 and not node.syncer.syncing,
                                   timeout=10, what="the round over")
        finally:
            server.cancel()
        assert (await net.state("a").status()).head == blocks[FIRST_BATCH_BLOCKS - 2].hash
        assert node.peers.by_id[peer.node_id].standing.score == -scoring.MINOR_BLOCK
        # the round stopped at the batch after the refused one (and the one asked ahead)
        assert peer.message_count[wire.GetBlocks] <= 3
        assert node.syncer.choose() is None  # paused: not synced from again at once


async def test_a_peer_that_falls_silent_on_a_batch_asked_ahead_keeps_what_it_sent(
        tmp_path: Path) -> None:
    # The fault while a batch is asked for ahead: the first batch arrives, the peer then
    # never answers the next request. What it sent is imported, it pays for the silence
    # once, and an honest peer brings the rest.
    async with LocalNet(tmp_path) as net:
        node = await net.node("a", timing=Timing(tick=3600.0, sync_reply=0.3))
        blocks = _chain(rules.Chain(net.genesis), 12)
        frozen, weight = await _peer_holding(net, blocks)
        first = await frozen.expect(wire.GetBlocks)
        await frozen.serve(first, blocks, weight)
        ahead = await frozen.expect(wire.GetBlocks)  # left unanswered
        assert ahead.locator[0] == blocks[FIRST_BATCH_BLOCKS - 1].hash
        await wait_until_async(lambda: not node.syncer.syncing, timeout=5,
                               what="the round given up")
        assert (await net.state("a").status()).height == FIRST_BATCH_BLOCKS
        assert node.peers.by_id[frozen.node_id].standing.score == -scoring.SYNC_TIMEOUT
        honest, _ = await _peer_holding(net, blocks)
        server = asyncio.create_task(honest.serve_forever(blocks, weight))
        try:
            await wait_until_async(lambda: node.chain.tip.hash == blocks[-1].hash,
                                   timeout=5, what="synced from the honest peer")
        finally:
            server.cancel()
        assert node.peers.by_id[honest.node_id].standing.score == 0

"""Block relay (blocks.py, docs/protocol.md §13.4, §13.5), in-process with the real state
service: blocks from peers reach state once and every other peer once, our new heads are
announced, block requests are served from the main chain, and signatures verified once."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import consensus, wire
from common.encoding import pack
from common.types import Block
from common.wire import ByeCode
from services.p2p.blocks import PARALLEL_VERIFY_MIN
from services.p2p.settings import Timing
from tests.framework import rules
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async
from tests.framework.wire_peer import WirePeer

pytestmark = pytest.mark.anyio


async def _ready(net: LocalNet) -> WirePeer:
    peer = net.peer().connect("inproc://p2p-a")
    await peer.handshake()
    return peer


def _announced(peer: WirePeer) -> list[bytes]:
    return [m.block for m in peer.received if isinstance(m, wire.NewBlock)]


def _weight(net: LocalNet, blocks: list[Block]) -> int:
    return sum(consensus.block_weight(net.genesis, b.header, net.genesis.miners)
               for b in blocks)


async def test_a_block_from_a_peer_reaches_state_once_and_each_other_peer_once(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        state = net.state("a")
        source, other = await _ready(net), await _ready(net)
        block = rules.Chain(net.genesis).build()
        await source.send(wire.NewBlock(block.raw, 2))
        announced = await other.expect(wire.NewBlock)
        assert (announced.block, announced.total_weight) == (block.raw, 2)
        assert (await state.status()).head == block.hash
        await source.sync_with_ping()
        assert _announced(source) == []  # it sent it: it knows it
        served = state.server.requests_served
        await source.send(wire.NewBlock(block.raw, 2))  # again: not for state any more
        await source.send(wire.GetBlocks(1, (net.genesis_hash,), 10))  # queued behind it
        await source.expect(wire.Blocks)
        assert state.server.requests_served - served == 1  # the GBL's request only
        await other.sync_with_ping()
        assert _announced(other) == [block.raw]
        assert node.peers.by_id[source.node_id].standing.score == 0


async def test_our_new_heads_are_announced_and_the_genesis_never(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peers = [await _ready(net), await _ready(net)]
        for peer in peers:
            await peer.sync_with_ping()
            assert _announced(peer) == []  # a new link learns no genesis block
        chain = rules.Chain(net.genesis)
        blocks = [chain.build_and_apply() for _ in range(2)]
        await net.state("a").submit_blocks(blocks[:1])  # as the miner does
        for peer in peers:
            msg = await peer.expect(wire.NewBlock)
            assert (msg.block, msg.total_weight) == (blocks[0].raw, 2)
        await net.state("a").submit_blocks(blocks[1:])
        await peers[0].expect(wire.NewBlock)
        assert node.chain.tip.hash == blocks[1].hash


async def test_a_head_no_event_told_of_is_found_by_the_head_check_and_announced(
        tmp_path: Path) -> None:
    """The backstop behind the event subscription: a node that hears none of state's events
    (here its subscription points nowhere) still learns a new head within one head check,
    and announces it."""
    async with LocalNet(tmp_path) as net:
        timing = Timing(tick=0.02, head_check=0.1, ping_interval=3600.0)
        node = await net.node("a", events="inproc://nobody-publishes-here", timing=timing)
        peer = await _ready(net)
        block = rules.Chain(net.genesis).build()
        await net.state("a").submit_blocks([block])  # as the miner does; no event arrives
        announced = await peer.expect(wire.NewBlock)
        assert announced.block == block.raw and node.chain.tip.hash == block.hash


async def test_block_requests_are_served_from_the_main_chain(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        await net.node("a")
        chain = rules.Chain(net.genesis)
        blocks = [chain.build_and_apply() for _ in range(5)]
        await net.state("a").submit_blocks(blocks)
        peer = await _ready(net)
        await peer.send(wire.GetBlocks(7, (net.genesis_hash,), 3))
        reply = await peer.expect(wire.Blocks)
        assert reply.request == 7 and reply.blocks == tuple(b.raw for b in blocks[:3])
        assert (reply.height, reply.head, reply.total_weight) == (
            5, blocks[-1].hash, _weight(net, blocks))
        # the first hash it knows decides: unknown ones are skipped
        await peer.send(wire.GetBlocks(8, (bytes(32), blocks[1].hash, net.genesis_hash), 500))
        reply = await peer.expect(wire.Blocks)
        assert reply.request == 8 and reply.blocks == tuple(b.raw for b in blocks[2:])


async def test_a_block_of_relayed_transactions_costs_no_second_signature_check(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = await _ready(net)
        txs = tuple(rules.transfer(1, bytes(20), 1, nonce=i) for i in range(3))
        await peer.send(wire.Txs(tuple(t.raw for t in txs)))
        await wait_until_async(lambda: node.txs.handed == 3,
                               timeout=5, what="the transactions relayed in")
        assert node.verifier.signature_checks == 3
        block = rules.Chain(net.genesis).build(txs)
        await peer.send(wire.NewBlock(block.raw, 2))
        await wait_until_async(lambda: node.chain.tip.hash == block.hash,
                               timeout=5, what="the block in")
        assert node.verifier.signature_checks == 3 and node.verifier.cache_hits == 3


@pytest.mark.parametrize("forged_at", [None, PARALLEL_VERIFY_MIN + 5])
async def test_a_big_block_is_verified_on_the_worker_threads(tmp_path: Path,
                                                             forged_at: int | None) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        peer = await _ready(net)
        count = PARALLEL_VERIFY_MIN + 10
        txs = [rules.transfer(1 + i % 3, bytes(20), 1, nonce=i // 3) for i in range(count)]
        if forged_at is not None:
            txs[forged_at] = txs[forged_at].with_signature(bytes(64))
        block = rules.Chain(net.genesis).build(txs)
        await peer.send(wire.NewBlock(block.raw, 2))
        if forged_at is None:
            await wait_until_async(lambda: node.chain.tip.hash == block.hash,
                                   timeout=5, what="the block in")
            assert node.verifier.signature_checks == count
        else:
            bye = await peer.expect(wire.Bye)
            assert bye.code == ByeCode.BANNED
            assert f"transaction {forged_at} has a bad signature" in bye.reason
            assert node.peers.by_id.get(peer.node_id) is None


async def test_a_block_state_has_is_not_checked_again_when_another_peer_announces_it(
        tmp_path: Path) -> None:
    """A syncing peer may announce every block it imports; a node that has the block
    already reads only its header: no signature is checked again and nobody is blamed,
    not even for a body that does not match (the block it has is the one it keeps)."""
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        first, second = await _ready(net), await _ready(net)
        txs = tuple(rules.transfer(1, bytes(20), 1, nonce=i) for i in range(3))
        block = rules.Chain(net.genesis).build(txs)
        await first.send(wire.NewBlock(block.raw, 2))
        await wait_until_async(lambda: node.chain.tip.hash == block.hash,
                               timeout=5, what="the block in")
        assert node.verifier.signature_checks == 3
        cut = pack([block.header.fields(), [txs[0].raw]])  # the same header, one transaction
        for raw in (block.raw, cut):
            await second.send(wire.NewBlock(raw, 5))
        await second.sync_with_ping()
        assert node.verifier.signature_checks == 3
        seen_by = node.peers.by_id[second.node_id]
        assert block.hash in seen_by.known_blocks and seen_by.standing.score == 0
        assert (seen_by.tip.height, seen_by.tip.total_weight) == (1, 5)


async def test_a_head_is_announced_only_to_peers_not_past_it(tmp_path: Path) -> None:
    """What a syncing node imports is history to a peer with a heavier chain: only the peer
    behind hears of the new head."""
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        ahead = net.peer().connect("inproc://p2p-a")
        await ahead.handshake(height=50, head=b"\x07" * 32, total_weight=100)
        behind = await _ready(net)
        block = rules.Chain(net.genesis).build()
        await net.state("a").submit_blocks([block])  # as the miner does
        assert (await behind.expect(wire.NewBlock)).block == block.raw
        await wait_until_async(lambda: node.chain.tip.hash == block.hash,
                               timeout=5, what="the new head")
        await ahead.sync_with_ping()
        assert _announced(ahead) == []

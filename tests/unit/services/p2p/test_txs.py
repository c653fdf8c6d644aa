"""Transaction relay (txs.py, docs/protocol.md §13.4), in-process with the real state
service: what peers send reaches state once, and what state pools reaches every other peer
once."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path

import pytest

from common import wire
from services.p2p import scoring
from tests.framework import rules
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async
from tests.framework.wire_peer import WirePeer

pytestmark = pytest.mark.anyio


async def _ready(net: LocalNet, endpoint: str = "inproc://p2p-a") -> WirePeer:
    peer = net.peer().connect(endpoint)
    await peer.handshake()
    return peer


def _txs_to(peer: WirePeer) -> list[bytes]:
    return [raw for m in peer.received if isinstance(m, wire.Txs) for raw in m.txs]


async def test_a_transaction_reaches_state_once_and_each_other_peer_once(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        state = net.state("a")
        source, other = await _ready(net), await _ready(net)
        tx = rules.transfer(1, rules.address(2), 5, nonce=0)
        await source.send(wire.Txs((tx.raw,)))
        relayed = await other.expect(wire.Txs)
        assert relayed.txs == (tx.raw,)
        assert await state.tx_status(tx.id) == "pending"
        await source.sync_with_ping()  # the relay to every peer went out at once
        assert _txs_to(source) == []  # it sent it: it knows it
        await other.send(wire.Txs((tx.raw,)))  # echoed back, and sent again
        await source.send(wire.Txs((tx.raw,)))
        await wait_until_async(lambda: len(node.peers.by_id[source.node_id].known_txs) == 1,
                               timeout=5, what="the transaction's source known")
        for peer in (source, other):
            await peer.sync_with_ping()
        assert node.txs.handed == 1 and node.verifier.signature_checks == 1
        assert _txs_to(other) == [tx.raw] and _txs_to(source) == []
        assert node.peers.by_id[other.node_id].standing.score == 0


async def test_pooled_transactions_are_relayed_in_bulk(tmp_path: Path) -> None:
    """40 transactions behind a nonce gap: node A's state pools them (queued, not minable)
    and A relays the batch in one message; node B pools them too. The gap filled, all of
    them are ready on both."""
    async with LocalNet(tmp_path) as net:
        node_a, node_b = await net.node("a"), await net.node("b")
        node_b.dial("inproc://p2p-a")
        await wait_until_async(lambda: node_a.peers.ready() and node_b.peers.ready(),
                               timeout=5, what="a-b linked")
        watcher = await _ready(net)
        queued = [rules.transfer(1, bytes(20), 1, nonce=1 + i) for i in range(40)]
        assert await net.state("a").submit_txs(queued) == [""] * 40
        batch = await watcher.expect(wire.Txs)
        assert batch.txs == tuple(t.raw for t in queued)  # one message for all 40
        state_b = net.state("b")
        await wait_until_async(lambda: _all(state_b.statuses(queued), "queued"),
                               timeout=5, what="queued on B")
        gap = rules.transfer(1, bytes(20), 1, nonce=0)
        assert await net.state("a").submit_txs([gap]) == [""]
        await wait_until_async(lambda: _all(state_b.statuses([gap, *queued]), "pending"),
                               timeout=5, what="all ready on B")
        assert await net.state("a").statuses([gap, *queued]) == {"pending"}


async def _all(statuses: Awaitable[set[str]], status: str) -> bool:
    return await statuses == {status}


async def test_a_batch_with_bad_transactions_costs_its_sender_and_the_rest_goes_on(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        sender = await _ready(net)
        good = rules.transfer(1, bytes(20), 1, nonce=0)
        forged = rules.transfer(2, bytes(20), 1, nonce=0).with_signature(bytes(64))
        await sender.send(wire.Txs((forged.raw, good.raw, b"\x00junk")))
        await wait_until_async(lambda: node.txs.handed == 1,
                               timeout=5, what="the good one handed to state")
        await wait_until_async(lambda: node.peers.by_id[sender.node_id].standing.score
                               == -scoring.BAD_TX, timeout=5, what="one charge for the batch")
        assert await net.state("a").tx_status(good.id) == "pending"


async def test_what_state_refuses_is_not_relayed(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        node = await net.node("a")
        source, other = await _ready(net), await _ready(net)
        broke = rules.transfer(4, bytes(20), 10, nonce=0)  # key 4 has no funds
        funded = rules.transfer(1, bytes(20), 10, nonce=0)
        await source.send(wire.Txs((broke.raw,)))
        await wait_until_async(lambda: node.txs.handed == 1, timeout=5, what="handed to state")
        await source.send(wire.Txs((funded.raw,)))
        assert (await other.expect(wire.Txs)).txs == (funded.raw,)  # only what state pooled
        assert await net.state("a").tx_status(broke.id) == "rejected"

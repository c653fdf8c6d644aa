"""Assume-valid sync (services/p2p/assumevalid.py and its headers walk in sync.py): which
blocks skip their signatures, worked out from a peer's headers; and a node that syncs with it
against the real state service, in-process."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from common import consensus, errors, wire
from common import messages as m
from common.status import AssumeValidState
from common.types import Block
from services.p2p.assumevalid import BrokenRun, ancestry, check_run, decode_header
from tests.framework import rules
from tests.framework.localnet import LocalNet
from tests.framework.util import wait_until_async
from tests.framework.wire_peer import WirePeer

TXS_PER_BLOCK = 2


def _chain(chain: rules.Chain, count: int, *, forged_at: int | None = None,
           extra: bytes = b"") -> list[Block]:
    """`count` blocks of `TXS_PER_BLOCK` transfers each on `chain`'s tip; the block at index
    `forged_at` carries a transaction whose signature does not verify (everything else about
    it, its state root included, is right)."""
    out = []
    for i in range(count):
        nonce = chain.view(rules.address(1)).nonce
        txs = [rules.transfer(1, rules.address(2), 1, nonce=nonce + k)
               for k in range(TXS_PER_BLOCK)]
        if i == forged_at:
            txs[1] = txs[1].with_signature(bytes(64))
        block = chain.build(txs, extra=extra)
        chain.apply(block, validate=i != forged_at)
        out.append(block)
    return out


# --- the pure part: headers + hash -> ancestors -----------------------------------------------


def test_the_ancestry_is_the_run_up_to_the_assumed_hash() -> None:
    run = [bytes([i]) * 32 for i in range(6)]
    assert ancestry(run, run[3]) == frozenset(run[:4])
    assert ancestry(run, run[0]) == frozenset(run[:1])
    assert ancestry(run, b"\xff" * 32) is None
    assert ancestry([], run[0]) is None


def test_a_run_of_headers_must_link_and_carry_its_proofs_and_seals() -> None:
    genesis = rules.poa_genesis(n_miners=1)
    chain = rules.Chain(genesis)
    headers = [b.header for b in _chain(chain, 5)]
    start = (chain.blocks[0].hash,)  # our locator: the genesis block
    check_run(genesis, headers, None, start)
    check_run(genesis, headers[2:], headers[1], ())  # continued after the last one
    with pytest.raises(BrokenRun):  # does not follow our locator
        check_run(genesis, headers[1:], None, start)
    with pytest.raises(BrokenRun):  # a gap
        check_run(genesis, [headers[0], headers[2]], None, start)
    with pytest.raises(BrokenRun):  # not after the last header we have
        check_run(genesis, headers[3:], headers[1], ())
    forged = headers[2].replace(signature=bytes(64))
    with pytest.raises(errors.BadSeal):
        check_run(genesis, [*headers[:2], forged], None, start)
    assert decode_header(headers[0].raw) == headers[0]
    with pytest.raises(errors.Malformed):
        decode_header(headers[0].raw + b"\x00")


# --- a node that syncs with assume-valid ------------------------------------------------------


async def _serving(net: LocalNet, blocks: list[Block]) -> tuple[WirePeer, asyncio.Task[None]]:
    weight = sum(consensus.block_weight(net.genesis, b.header, net.genesis.miners)
                 for b in blocks)
    peer = net.peer().connect("inproc://p2p-a")
    await peer.handshake(height=blocks[-1].height, head=blocks[-1].hash, total_weight=weight)
    return peer, asyncio.create_task(peer.serve_forever(blocks, weight, limit=4))


@pytest.mark.anyio
async def test_blocks_below_the_assumed_one_skip_signatures_and_those_above_do_not(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccoin.p2p.sync")
    async with LocalNet(tmp_path) as net:
        blocks = _chain(rules.Chain(net.genesis), 10)
        assumed = blocks[5]  # blocks 1..6 are it and its ancestors
        node = await net.node("a", assume_valid=assumed.hash)
        peer, server = await _serving(net, blocks)
        try:
            await wait_until_async(lambda: node.chain.tip.hash == blocks[-1].hash,
                                   timeout=10, what="the node synced")
            await wait_until_async(lambda: not node.syncer.syncing, timeout=5,
                                   what="the sync over")
        finally:
            server.cancel()
        assert node.assume is not None
        assert node.assume.skipped == 6 * TXS_PER_BLOCK
        assert node.verifier.signature_checks == 4 * TXS_PER_BLOCK  # blocks 7..10
        assert any(isinstance(m, wire.GetHeaders) for m in peer.received)
        assert f"{6 * TXS_PER_BLOCK} signatures skipped under assume-valid" in caplog.text
        status = await net.state("a").status()
        assert status.height == 10  # state checked every state root and balance meanwhile
        # p2p's status says it all: the block, where it is, what was skipped for it
        reply = await net.control("a").request(m.GetPeers(), m.PeersReply)
        assert reply.assume_valid == m.AssumeValidInfo(
            assumed.hash, AssumeValidState.REACHED, 6, 6 * TXS_PER_BLOCK, 6)


@pytest.mark.anyio
async def test_a_forged_signature_on_another_branch_below_the_assumed_height_is_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The assumed block is on our branch; the peer serves a heavier fork from block 2 whose
    block 4 (below the assumed height 6) carries a bad signature: the fork's headers never
    reach the assumed hash, so every signature of the fork is verified and block 4 refused."""
    caplog.set_level(logging.INFO, logger="ccoin.p2p.sync")
    async with LocalNet(tmp_path) as net:
        ours = rules.Chain(net.genesis)
        main = _chain(ours, 6)
        fork_chain = rules.Chain(net.genesis)
        for block in main[:2]:
            fork_chain.apply(block)
        fork = main[:2] + _chain(fork_chain, 8, forged_at=1, extra=b"fork")  # bad: height 4
        node = await net.node("a", assume_valid=main[5].hash)
        await net.state("a").submit_blocks(main[:2])
        peer, server = await _serving(net, fork)
        try:
            await wait_until_async(lambda: any(isinstance(m, wire.Bye) for m in peer.received),
                                   timeout=10, what="the peer banned")
        finally:
            server.cancel()
        bye = next(m for m in peer.received if isinstance(m, wire.Bye))
        assert bye.code == wire.ByeCode.BANNED
        assert "transaction 1 has a bad signature" in bye.reason
        assert node.assume is not None and node.assume.skipped == 0
        assert "is not on" in caplog.text  # said once: the assumed block is not on its chain
        reply = await net.control("a").request(m.GetPeers(), m.PeersReply)
        assert reply.assume_valid == m.AssumeValidInfo(
            main[5].hash, AssumeValidState.MISSING, 0, 0, 0)
        assert (await net.state("a").status()).height == 3  # the good block before it only


@pytest.mark.anyio
async def test_a_header_with_a_bad_seal_costs_the_peer_and_nothing_is_assumed(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        blocks = _chain(rules.Chain(net.genesis), 4)
        node = await net.node("a", assume_valid=blocks[2].hash)
        weight = 2 * len(blocks)
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake(height=4, head=blocks[-1].hash, total_weight=weight)
        request = await peer.expect(wire.GetHeaders)
        assert request.locator[-1] == net.genesis_hash and request.limit == 2000
        forged = blocks[1].header.replace(signature=bytes(64))
        await peer.send(wire.Headers(request.request, (blocks[0].header.raw, forged.raw),
                                     4, blocks[-1].hash, weight))
        bye = await peer.expect(wire.Bye)
        assert bye.code == wire.ByeCode.BANNED and "bad header" in bye.reason
        assert node.assume is not None and not node.assume.found
        assert not any(isinstance(m, wire.GetBlocks) for m in peer.received)  # round over
        reply = await net.control("a").request(m.GetPeers(), m.PeersReply)
        assert reply.assume_valid.state == AssumeValidState.SEARCHING  # nothing learnt


@pytest.mark.anyio
async def test_a_node_serves_its_main_chain_headers_after_a_locator(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        await net.node("a")
        blocks = _chain(rules.Chain(net.genesis), 5)
        await net.state("a").submit_blocks(blocks)
        peer = net.peer().connect("inproc://p2p-a")
        await peer.handshake()
        await peer.send(wire.GetHeaders(7, (net.genesis_hash,), 3))
        reply = await peer.expect(wire.Headers)
        assert reply.request == 7
        assert reply.headers == tuple(b.header.raw for b in blocks[:3])
        assert (reply.height, reply.head) == (5, blocks[-1].hash)
        # the first hash it knows on its main chain decides; unknown ones are skipped
        await peer.send(wire.GetHeaders(8, (bytes(32), blocks[1].hash, net.genesis_hash),
                                        2000))
        reply = await peer.expect(wire.Headers)
        assert reply.headers == tuple(b.header.raw for b in blocks[2:])
        await peer.send(wire.GetHeaders(9, (blocks[-1].hash,), 2000))
        assert (await peer.expect(wire.Headers)).headers == ()  # nothing after its head


@pytest.mark.anyio
async def test_once_our_chain_holds_the_assumed_block_no_headers_are_walked(
        tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        blocks = _chain(rules.Chain(net.genesis), 5)
        node = await net.node("a", assume_valid=blocks[2].hash)
        await net.state("a").submit_blocks(blocks[:3])
        peer, server = await _serving(net, blocks)
        try:
            await wait_until_async(lambda: node.chain.tip.hash == blocks[-1].hash,
                                   timeout=10, what="the node synced")
        finally:
            server.cancel()
        assert node.assume is not None and node.assume.reached and node.assume.skipped == 0
        assert node.verifier.signature_checks == 2 * TXS_PER_BLOCK  # blocks 4 and 5
        assert not any(isinstance(m, wire.GetHeaders) for m in peer.received)
        reply = await net.control("a").request(m.GetPeers(), m.PeersReply)
        assert reply.assume_valid == m.AssumeValidInfo(
            blocks[2].hash, AssumeValidState.REACHED, 3, 0, 0)


@pytest.mark.anyio
async def test_a_node_that_holds_the_assumed_block_when_it_starts_says_so_at_once(
        tmp_path: Path) -> None:
    """A node restarted after syncing past the assumed block: no peer, no sync round, and
    its status says the block is reached (not still searched for)."""
    async with LocalNet(tmp_path) as net:
        blocks = _chain(rules.Chain(net.genesis), 3)
        await net.state("a").submit_blocks(blocks)
        node = await net.node("a", assume_valid=blocks[1].hash)
        control = net.control("a")

        async def reached() -> bool:
            reply = await control.request(m.GetPeers(), m.PeersReply)
            return reply.assume_valid.state == AssumeValidState.REACHED

        await wait_until_async(reached, timeout=5, what="the assumed block reached")
        reply = await control.request(m.GetPeers(), m.PeersReply)
        assert reply.assume_valid == m.AssumeValidInfo(
            blocks[1].hash, AssumeValidState.REACHED, 2, 0, 0)
        assert node.syncer.rounds == 0


@pytest.mark.anyio
async def test_without_assume_valid_the_status_says_off(tmp_path: Path) -> None:
    async with LocalNet(tmp_path) as net:
        await net.node("a")
        reply = await net.control("a").request(m.GetPeers(), m.PeersReply)
        assert reply.assume_valid == m.ASSUME_VALID_OFF
        assert reply.assume_valid.state == AssumeValidState.OFF and not reply.assume_valid.target

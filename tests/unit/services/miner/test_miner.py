"""The miner (services/miner/miner.py): its timing policy as a pure function, and the miner
itself, in this test's event loop, against a scripted state service on real bus sockets
(inproc://): rejected blocks are logged and re-planned, a new head drops stale work, a stop
stops asking for work. (Real state and miner processes: functional/mining_miner.py.)"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio

from common import consensus, messages
from common.crypto import Signer
from common.errors import BadTimestamp
from common.genesis import Genesis
from common.merkle import EMPTY_ROOT
from common.status import BlockStatus
from common.types import Block, BlockHeader
from runtime.bus import Publisher, Server
from runtime.config import load_config, load_genesis
from services.miner import miner as miner_module
from services.miner.miner import Miner, out_of_turn_delay, plan
from tests.framework.util import wait_until_async
from tools.devchain import DevChain, create_dev_chain

INTERVAL = 300


# --- the timing policy ------------------------------------------------------------------------


def _genesis(miners: int = 1, **changes: object) -> tuple[Genesis, list[bytes]]:
    addrs = [bytes([i + 1]) * 20 for i in range(miners)]
    base = Genesis(network_id=1, miners=tuple(addrs), interval_ms=1000, max_bound=10,
                   min_bound=3, reward=1, difficulty=1, allow_empty=True,
                   placeholder=("rnd", 15), max_peers=1, retarget_blocks=10,
                   genesis_coinbase=bytes(20), genesis_reward=0, genesis_difficulty=0,
                   genesis_timestamp=0, alloc=())
    return replace(base, **changes), addrs  # type: ignore[arg-type]


def _status(genesis: Genesis, height: int = 4, ts: int = 10_000, ready: int = 0,
            recent: tuple[bytes, ...] = ()) -> messages.StatusReply:
    return messages.StatusReply(1, bytes(32), height, b"h" * 32, ts, 0, bytes(32), ready, 0, ready,
                           genesis.is_poa, genesis.miners, recent, genesis.difficulty)


def test_in_turn_signer_seals_at_the_slot() -> None:
    g, (a,) = _genesis()
    st = _status(g, ready=5)
    assert plan(g, st, a, 10_500, 0) == plan(g, st, a, 10_500, 0)
    early = plan(g, st, a, 10_500, 0)
    assert not early.seal and early.wake_ms == 11_000
    assert plan(g, st, a, 11_000, 0).seal


def test_empty_blocks_follow_allow_empty() -> None:
    g, (a,) = _genesis()
    assert plan(g, _status(g), a, 11_000, 0).seal
    g2, (a2,) = _genesis(allow_empty=False)
    waiting = plan(g2, _status(g2), a2, 50_000, 0)
    assert not waiting.seal and waiting.wake_ms is None


def test_full_pool_seals_at_once() -> None:
    g, (a,) = _genesis()
    assert plan(g, _status(g, ready=10), a, 10_001, 0).seal
    assert not plan(g, _status(g, ready=9), a, 10_001, 0).seal


def test_under_min_bound_waits_one_more_interval() -> None:
    g, (a,) = _genesis()
    st = _status(g, ready=2)
    at_slot = plan(g, st, a, 11_000, 0)
    assert not at_slot.seal and at_slot.wake_ms == 12_000
    assert plan(g, st, a, 12_000, 0).seal
    assert plan(g, _status(g, ready=3), a, 11_000, 0).seal


def test_zero_min_bound_never_seals_empty_when_not_allowed() -> None:
    g, (a,) = _genesis(min_bound=0, allow_empty=False)
    assert not plan(g, _status(g, ready=0), a, 99_000, 0).seal
    assert plan(g, _status(g, ready=1), a, 11_000, 0).seal


def test_out_of_turn_waits_its_delay_and_respects_recency() -> None:
    g, addrs = _genesis(miners=3)
    st = _status(g, height=4, ready=3)  # height 5: in turn is miners[5 % 3] = addrs[2]
    in_turn, out = addrs[2], addrs[0]
    assert plan(g, st, in_turn, 11_000, 700).seal
    late = plan(g, st, out, 11_000, 700)
    assert not late.seal and late.wake_ms == 11_700
    assert plan(g, st, out, 11_700, 700).seal
    full = _status(g, height=4, ready=10)
    assert plan(g, full, in_turn, 10_001, 700).seal
    assert plan(g, full, out, 10_001, 700).wake_ms == 10_700
    recent = _status(g, height=4, ready=10, recent=(out,))
    assert not plan(g, recent, out, 99_000, 700).seal
    assert not plan(g, st, bytes(20), 99_000, 0).seal  # not an authority


def test_pow_has_no_turns() -> None:
    g, _ = _genesis(miners=0)
    me = b"\x09" * 20
    assert plan(g, _status(g, ready=3), me, 11_000, 999).seal
    assert not plan(g, _status(g, ready=3), bytes(20), 11_000, 0).seal


def test_out_of_turn_delay_is_clique_wiggle() -> None:
    g, _ = _genesis()
    rng = random.Random(1)
    delays = {out_of_turn_delay(g, rng) for _ in range(200)}
    assert min(delays) >= 500 and max(delays) <= 1000 and len(delays) > 50




# --- against a scripted state service on the real bus -----------------------------------------


class ScriptedState:
    """Answers like state would; rejects the first `reject` blocks; heads move on demand."""

    def __init__(self, genesis: Genesis, difficulty: int, reject: int = 0) -> None:
        self.genesis = genesis
        self.difficulty = difficulty
        self.reject = reject
        self.height = 0
        self.head = b"g" * 32
        self.head_ts = 0
        self.templates: list[BlockHeader] = []
        self.blocks: list[Block] = []
        self.rejected = 0
        self.pub: Publisher | None = None
        self.storage = ""  # a storage problem the status names
        self.status_reads = 0
        self.ready = 0

    def status(self, _: messages.GetStatus) -> messages.StatusReply:
        g = self.genesis
        self.status_reads += 1
        return messages.StatusReply(g.network_id, bytes(32), self.height, self.head,
                                    self.head_ts, 0, bytes(32), self.ready, 0, self.ready,
                                    g.is_poa, g.miners, (), self.difficulty, self.storage)

    def template(self, req: messages.GetTemplate) -> messages.TemplateReply:
        header = BlockHeader(self.height + 1, self.head, req.timestamp, req.coinbase, EMPTY_ROOT,
                             bytes(32), self.difficulty, 0, req.extra)
        self.templates.append(header)
        return messages.TemplateReply(header.raw, 0, Block(header, ()).body)

    def submit(self, req: messages.SubmitBlock) -> messages.BlockResult:
        block = Block.decode(req.block)
        if self.rejected < self.reject:
            self.rejected += 1
            raise BadTimestamp("scripted rejection")
        consensus.check_proof(block.header)
        consensus.check_seal(self.genesis, block.header, self.genesis.miners)
        self.blocks.append(block)
        self.advance(block.hash, block.header.timestamp)
        return messages.BlockResult(BlockStatus.HEAD, block.hash, block.height)

    def advance(self, head: bytes, ts: int) -> None:
        self.height += 1
        self.head, self.head_ts = head, ts
        assert self.pub is not None
        self.pub.publish(b"head", messages.HeadEvent(self.height, head, 0, 0, ts, 0))


async def _with_miner(dev: DevChain, state: ScriptedState,
                      body: Callable[[Miner], object]) -> None:
    config = load_config(dev.config_path)
    genesis = load_genesis(config.genesis_file())
    ctx = zmq.asyncio.Context()
    server = Server(ctx, config.endpoint("state"), "state", {
        messages.GetStatus: state.status, messages.GetTemplate: state.template,
        messages.SubmitBlock: state.submit})
    state.pub = Publisher(ctx, config.endpoint("events"))
    miner = Miner(config, genesis, Signer(dev.validator), ctx)
    tasks = [asyncio.create_task(server.serve_forever()), asyncio.create_task(miner.run())]
    try:
        await body(miner)  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.close()
        state.pub.close()
        ctx.destroy(linger=0)


def dev_chain(tmp_path: Path, **genesis: Any) -> DevChain:
    """A dev chain whose bus runs over inproc://: the scripted state and the miner share
    this test's ZeroMQ context."""
    dev = create_dev_chain(tmp_path, interval_ms=INTERVAL, **genesis)
    doc = json.loads(dev.config_path.read_text())
    doc["endpoints"] = {name: f"inproc://{tmp_path.name}-{name}"
                        for name in ("state", "events", "miner")}
    dev.config_path.write_text(json.dumps(doc))
    return dev


def test_rejected_block_is_logged_and_replanned(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    dev = dev_chain(tmp_path)
    genesis = load_genesis(dev.genesis_path)
    state = ScriptedState(genesis, difficulty=4, reject=3)

    async def body(miner: Miner) -> None:
        # while its rounds fail, its status says since when and why (readiness reads it)
        failing = await wait_until_async(
            lambda: miner.status() if miner.status().failing_since_ms else None, timeout=5,
            what="the miner's status to show its failing rounds")
        assert failing.last_error == "rejected by state: bad_timestamp: scripted rejection"
        assert failing.failing_since_ms <= failing.last_round_ms
        # the miner counts the block once state's answer is back, after state took it
        await wait_until_async(lambda: miner.blocks_sealed >= 1, timeout=10,
                               what="a block the scripted state took")
        assert miner.blocks_sealed == 1 and miner.last_block == state.blocks[0].hash
        recovered = miner.status()
        assert (recovered.failing_since_ms, recovered.last_error) == (0, "")
        assert recovered.last_round_ms >= recovered.last_sealed_ms

    caplog.set_level("WARNING", logger="ccoin.miner")
    asyncio.run(_with_miner(dev, state, body))
    assert state.rejected == 3
    assert sum("bad_timestamp" in r.getMessage() for r in caplog.records) == 3
    header = state.blocks[0].header
    assert header.coinbase == dev.validator.address and header.extra  # empty: placeholder


def test_new_head_drops_stale_work(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dev = dev_chain(tmp_path)
    genesis = load_genesis(dev.genesis_path)
    state = ScriptedState(genesis, difficulty=60)  # never solved in this test

    async def body(miner: Miner) -> None:
        await wait_until_async(lambda: len(state.templates) == 1, timeout=5,
                               what="the miner's first template")
        state.advance(b"n" * 32, int(time.time() * 1000) - INTERVAL)  # someone else's block
        await wait_until_async(lambda: len(state.templates) == 2, timeout=5,
                               what="a template on the new head")
        assert state.templates[1].parent == b"n" * 32 and state.templates[1].height == 2
        miner.set_mining(messages.SetMining(False))
        # the behaviour under test is that nothing happens: no more work once stopped
        await asyncio.sleep(0.3)
        assert not miner.status().enabled and len(state.templates) == 2

    caplog.set_level("INFO", logger="ccoin.miner")
    asyncio.run(_with_miner(dev, state, body))
    # the search on height 1 was given up for the new head, not finished
    assert any("dropping work on height 1" in r.getMessage() for r in caplog.records)


def test_no_sealing_while_state_cannot_store(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """A status naming a storage problem pauses sealing: no template is asked for, the
    rounds do not fail (the storage check of readiness names the cause), the pause and its
    end are logged once each; sealing resumes when the status clears."""
    dev = dev_chain(tmp_path)
    genesis = load_genesis(dev.genesis_path)
    state = ScriptedState(genesis, difficulty=4)
    state.storage = "disk space low: 3.0 MB free"

    async def body(miner: Miner) -> None:
        await wait_until_async(lambda: state.status_reads >= 5, timeout=5,
                               what="the miner to look at the status a few times")
        assert state.templates == [] and miner.status().failing_since_ms == 0
        state.storage = ""
        await wait_until_async(lambda: len(state.blocks) >= 1, timeout=10,
                               what="a block once state can store it")

    caplog.set_level("INFO", logger="ccoin.miner")
    asyncio.run(_with_miner(dev, state, body))
    said = [r.getMessage() for r in caplog.records]
    assert said.count("sealing paused: state cannot store blocks: disk space low: 3.0 MB "
                      "free") == 1
    assert said.count("sealing resumed: state stores blocks again") == 1


def test_plan_waits_while_state_cannot_store() -> None:
    g, (a,) = _genesis()
    st = replace(_status(g, ready=50), storage="disk space low")
    decision = plan(g, st, a, 20_000, 0)
    assert not decision.seal and decision.wake_ms is None
    assert decision.reason == "state cannot store blocks: disk space low"


def test_new_transactions_that_fill_a_block_are_built_without_waiting_for_a_poll(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = dev_chain(tmp_path, allow_empty=False, max_bound=10, difficulty=0)
    genesis = load_genesis(dev.genesis_path)
    state = ScriptedState(genesis, difficulty=0)
    state.head_ts = int(time.time() * 1000) - 10 * INTERVAL  # the slot has passed
    # an empty pool and no empty blocks: without a txs event nothing would be looked at
    # again for a minute
    monkeypatch.setattr(miner_module, "POLL_MS", 60_000)

    async def body(miner: Miner) -> None:
        await wait_until_async(lambda: state.status_reads >= 1, timeout=5,
                               what="the miner's first look at the pool")
        assert state.templates == []
        state.ready = genesis.max_bound
        assert state.pub is not None
        # the event names enough new transactions to fill a block
        state.pub.publish(b"txs", messages.TxsEvent(tuple(bytes([i]) * 32
                                                          for i in range(genesis.max_bound))))
        await wait_until_async(lambda: len(state.templates) == 1, timeout=5,
                               what="a template for the full block after the txs event")

    asyncio.run(_with_miner(dev, state, body))
